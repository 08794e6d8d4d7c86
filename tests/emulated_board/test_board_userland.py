"""Each OS view of the emulated board has a userland of its Elk release's age.

A board started with `--os 0.11` runs Debian bullseye (glibc 2.31, libstdc++ of
GCC 10), as old as Elk 0.11's dunfell, so a program or plugin built against a newer
glibc fails to load there as on the real OS; `--os 1.x` runs bookworm (glibc 2.36).
The probes are built at test time with the host's bookworm cross compiler
(glibc 2.36), so they need GLIBC_2.34.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import require_real_part
from elkbuild.elf import read_elf, version_key

pytestmark = pytest.mark.slow

PROBE_SOURCE = Path(__file__).resolve().parent / "probes" / "needs_glibc_2_34.c"
CROSS_CC = "aarch64-linux-gnu-gcc"
NOT_FOUND = "version `GLIBC_2.34' not found"
# perl-base is Essential in Debian, so every board has it; its DynaLoader is a
# plain dlopen(RTLD_LAZY) of the file, done by a program built for the board's glibc.
DLOPEN = ('my $h = DynaLoader::dl_load_file($ARGV[0], 0) or die DynaLoader::dl_error(), "\\n"; '
          'DynaLoader::dl_find_symbol($h, "elk_probe_entry") or die "no entry\\n"; '
          'print "dlopen ok\\n"')


@pytest.fixture(scope="module")
def probes(tmp_path_factory) -> dict[str, Path]:
    require_real_part(shutil.which(CROSS_CC) is not None, CROSS_CC,
                      "apt-get install gcc-aarch64-linux-gnu")
    folder = tmp_path_factory.mktemp("glibc")
    program, plugin = folder / "needs_glibc_2_34", folder / "plugin_2_34.so"
    subprocess.run([CROSS_CC, "-O2", "-o", str(program), str(PROBE_SOURCE)], check=True)
    subprocess.run([CROSS_CC, "-O2", "-DPLUGIN", "-shared", "-fPIC", "-pthread",
                    "-o", str(plugin), str(PROBE_SOURCE)], check=True)
    for path in (program, plugin):  # the premise: both need GLIBC_2.34
        assert version_key(read_elf(path).highest_needed("GLIBC")) >= (2, 34), path
    return {"program": program, "plugin": plugin}


def install(board, probes: dict[str, Path]) -> None:
    for path in probes.values():
        shutil.copy(path, board.path(f"/tmp/{path.name}"))
        board.path(f"/tmp/{path.name}").chmod(0o755)


def ssh(board, command: str) -> subprocess.CompletedProcess:
    return subprocess.run(board.ssh_argv(command), capture_output=True, text=True, timeout=60)


def glibc_of(board) -> str:
    done = ssh(board, "getconf GNU_LIBC_VERSION")
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_0_11_board_has_glibc_2_31_and_gcc_10_libstdcxx(emulated_board_0_11):
    board = emulated_board_0_11
    assert glibc_of(board) == "glibc 2.31"
    assert board.userland() == "bullseye"
    libstdcxx = read_elf(board.path("/usr/lib/aarch64-linux-gnu/libstdc++.so.6"))
    assert libstdcxx.highest_defined("GLIBCXX") == "3.4.28"


def test_1x_board_has_bookworms_glibc_2_36(emulated_board):
    assert glibc_of(emulated_board) == "glibc 2.36"
    assert emulated_board.userland() == "bookworm"


def test_too_new_program_and_plugin_fail_to_load_on_0_11(emulated_board_0_11, probes):
    board = emulated_board_0_11
    install(board, probes)
    program = ssh(board, "/tmp/needs_glibc_2_34")
    assert program.returncode != 0 and NOT_FOUND in program.stderr, program
    plugin = ssh(board, f"perl -MDynaLoader -e '{DLOPEN}' /tmp/plugin_2_34.so")
    assert plugin.returncode != 0, plugin
    assert NOT_FOUND in plugin.stderr and "plugin_2_34.so" in plugin.stderr, plugin.stderr


def test_the_same_program_and_plugin_load_on_1x(fresh_emulated_board, probes):
    board = fresh_emulated_board
    install(board, probes)
    program = ssh(board, "/tmp/needs_glibc_2_34")
    assert program.returncode == 0 and "loaded" in program.stdout, program.stderr
    plugin = ssh(board, f"perl -MDynaLoader -e '{DLOPEN}' /tmp/plugin_2_34.so")
    assert plugin.returncode == 0 and plugin.stdout == "dlopen ok\n", plugin.stderr
