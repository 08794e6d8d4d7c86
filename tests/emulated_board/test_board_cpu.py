"""The emulated board's CPU is a Raspberry Pi 4's Cortex-A72, for every program on it.

A probe program is cross-compiled at test time with the host's aarch64-linux-gnu-gcc;
it runs an ARMv8.2 dot product (`sdot`) or an ARMv8.1 LSE atomic (`ldadd`), which
qemu's default CPU executes and a Cortex-A72 does not: on the board both must die
with SIGILL, over real SSH, with a cleared environment and through `board.run`.
"""

from __future__ import annotations

import logging
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from conftest import require_real_part
from elkbuild.emulated_board import EmulatedBoard, free_port, images
from elkbuild.executor import LocalExecutor

pytestmark = pytest.mark.slow

PROBE_SOURCE = Path(__file__).resolve().parent / "probes" / "isa_probe.c"
CROSS_CC = "aarch64-linux-gnu-gcc"
SIGILL_EXIT = 128 + 4
# AT_HWCAP bits of arm64 Linux (asm/hwcap.h): what a Cortex-A72 lacks.
HWCAP_ATOMICS = 1 << 8
HWCAP_FPHP = 1 << 9
HWCAP_ASIMDDP = 1 << 20
BOARD_PROBE = "/tmp/isa_probe"


@pytest.fixture(scope="module")
def probe(tmp_path_factory) -> Path:
    require_real_part(shutil.which(CROSS_CC) is not None, CROSS_CC,
                      "apt-get install gcc-aarch64-linux-gnu")
    binary = tmp_path_factory.mktemp("isa") / "isa_probe"
    subprocess.run([CROSS_CC, "-O2", "-o", str(binary), str(PROBE_SOURCE)], check=True)
    return binary


@pytest.fixture
def board(fresh_emulated_board, probe):
    shutil.copy(probe, fresh_emulated_board.path(BOARD_PROBE))
    fresh_emulated_board.path(BOARD_PROBE).chmod(0o755)
    return fresh_emulated_board


def ssh(board, command: str) -> subprocess.CompletedProcess:
    return subprocess.run(board.ssh_argv(command), capture_output=True, text=True, timeout=60)


def exit_codes(board, prefix: str) -> dict[str, int]:
    """The probe's exit code per mode in one SSH session (`prefix` runs before it)."""
    script = "; ".join(f"{prefix}{BOARD_PROBE} {mode} >/dev/null 2>&1; echo {mode}=$?"
                       for mode in ("sdot", "ldadd", "plain"))
    done = ssh(board, script)
    assert done.returncode == 0, done.stderr
    return {mode: int(code) for mode, code in
            (line.split("=") for line in done.stdout.split())}


def test_probe_uses_instructions_qemus_default_cpu_has(probe):
    """The control: the same program runs on qemu's default CPU, so a SIGILL on the
    board comes from the CPU model, not from a broken probe."""
    require_real_part(shutil.which("qemu-aarch64-static") is not None, "qemu-aarch64-static",
                      "apt-get install qemu-user-static")
    for mode in ("sdot", "ldadd"):
        done = subprocess.run(["qemu-aarch64-static", "-L", "/usr/aarch64-linux-gnu",
                               str(probe), mode], capture_output=True, text=True)
        assert done.returncode == 0 and "ran" in done.stdout, done.stderr


@pytest.mark.parametrize("prefix", ["", "env -i "], ids=["ssh-session", "env-i"])
def test_instructions_a_cortex_a72_lacks_raise_sigill_over_ssh(board, prefix):
    assert exit_codes(board, prefix) == {"sdot": SIGILL_EXIT, "ldadd": SIGILL_EXIT, "plain": 0}


def test_hwcap_shows_no_atomics_dot_product_or_fp16(board):
    done = ssh(board, f"{BOARD_PROBE} hwcap; env -i {BOARD_PROBE} hwcap")
    assert done.returncode == 0, done.stderr
    for word in done.stdout.split():
        hwcap = int(word, 16)
        assert hwcap & (HWCAP_ATOMICS | HWCAP_FPHP | HWCAP_ASIMDDP) == 0, word


def test_programs_run_by_board_run_are_pinned_too(board):
    """board.run enters the board's user namespace, where its binfmt_misc lives."""
    assert board.run([BOARD_PROBE, "sdot"]).returncode == -signal.SIGILL
    assert board.run([BOARD_PROBE, "plain"], check=True).stdout == "plain ok\n"


def test_every_board_process_runs_on_the_board_cpu_under_its_own_name(board):
    done = ssh(board, "sleep 30 & child=$!; cat /proc/$child/comm; pidof sleep; "
                      "pkill -x sleep && echo killed")
    assert done.returncode == 0, done.stderr
    comm, pid, killed = done.stdout.split()
    assert (comm, killed) == ("sleep", "killed") and pid.isdigit()
    # From the host: each process of the board (sshd, sessions, ...) is a qemu
    # started with the board's CPU model, and is named after its program.
    for host_pid in board.processes(with_listener=True):
        try:
            argv = Path(f"/proc/{host_pid}/cmdline").read_bytes().split(b"\0")
            comm = Path(f"/proc/{host_pid}/comm").read_text().strip()
        except OSError:
            continue  # ended meanwhile
        if argv == [b""]:
            continue  # a zombie (a session's child not yet reaped)
        assert b"-cpu" in argv and argv[argv.index(b"-cpu") + 1] == images.BOARD_CPU.encode()
        assert not comm.startswith("qemu"), (comm, argv)


def test_host_binfmt_misc_is_left_as_it_was(board):
    host_entry = Path("/proc/sys/fs/binfmt_misc/qemu-aarch64").read_text()
    assert "interpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P" in host_entry
    launcher = str(images.BINFMT_INTERPRETER.name)
    for entry in Path("/proc/sys/fs/binfmt_misc").iterdir():
        if entry.name not in ("register", "status"):
            assert launcher not in entry.read_text(), entry
    # The board's own instance, seen from its user and mount namespaces.
    pid = board.pid()
    inside = subprocess.run(["nsenter", "--target", str(pid), "--user", "--mount", "cat",
                             "/proc/sys/fs/binfmt_misc/qemu-aarch64"],
                            capture_output=True, text=True, check=True).stdout
    assert launcher in inside and "flags: PF" in inside
    assert board.cpu_pinning() == "binfmt"


def test_without_a_binfmt_misc_of_its_own_qemu_cpu_pins_ssh_sessions(
        emulated_board, probe, monkeypatch, caplog):
    """What a kernel before 6.7 gets (forced here): QEMU_CPU from the board's init and
    sshd's SetEnv. SSH sessions and board.run are pinned; `env -i` escapes, as the
    board's README says."""
    monkeypatch.setenv("ELKBUILD_BOARD_PINNING", "env")
    board = EmulatedBoard(LocalExecutor(), emulated_board.cache_dir,
                          name=f"{emulated_board.name}-envpin", port=free_port())
    try:
        with caplog.at_level(logging.WARNING, logger="elkbuild.board"):
            board.up()
        assert board.cpu_pinning() == "env"
        assert any("env -i" in record.getMessage() for record in caplog.records)
        shutil.copy(probe, board.path(BOARD_PROBE))
        assert exit_codes(board, "") == {"sdot": SIGILL_EXIT, "ldadd": SIGILL_EXIT, "plain": 0}
        assert exit_codes(board, "env -i ")["sdot"] == 0
        assert board.run([BOARD_PROBE, "sdot"]).returncode == -signal.SIGILL
    finally:
        board.destroy()
