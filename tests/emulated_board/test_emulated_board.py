"""The emulated Elk board, end to end: real sshd, arm64 userland, stand-ins.

Everything here talks to a running board (the `emulated_board` session fixture):
over real SSH (the OpenSSH client and paramiko) the way deploy and monitor do,
and directly (`board.run`) for set-up and inspection.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import paramiko
import pytest

from elkbuild.emulated_board import SUSHI_AUDIO_THREAD as AUDIO_THREAD
from elkbuild.emulated_board import EmulatedBoard, free_port
from elkbuild.errors import UsageError
from elkbuild.executor import LocalExecutor

pytestmark = pytest.mark.slow

# Sushi's own example configs: shared/ sits beside the checkout.
REFERENCE = next((p for p in (Path(__file__).resolve().parents[3] / "shared/reference/sushi",
                              Path("/work/shared/reference/sushi")) if p.is_dir()),
                 Path("/work/shared/reference/sushi"))
COBALT_HEADER = "CPU  PID    MSW        CSW        XSC        PF    STAT       %CPU  NAME"
EVL_HEADER = "CPU   PID   ISW     CTXSW     SYS       RWA       STAT     NAME"
LOG_LINE = re.compile(r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}\] "
                      r"\[(debug|info|warning|error|critical)\] ")
EM_AARCH64 = 183


# --------------------------------------------------------------------------- helpers

def ssh(board: EmulatedBoard, command: str, known_hosts: Path | None = None,
        timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(board.ssh_argv(command, known_hosts=known_hosts),
                          capture_output=True, text=True, timeout=timeout)


def counter_of(report: str, name: str) -> int:
    """The MSW (0.11) or ISW (1.x) column of the row whose NAME is `name`."""
    for line in report.splitlines()[1:]:
        fields = line.split(None, 8 if "MSW" in report.splitlines()[0] else 7)
        if fields and fields[-1] == name:
            return int(fields[2])
    raise AssertionError(f"no row named {name!r} in:\n{report}")


def make_bundle(board: EmulatedBoard, tmp_path: Path, name: str, compiler: str,
                folder: str = "aarch64-linux") -> str:
    """A VST3-shaped bundle holding a real shared library built by `compiler`."""
    if shutil.which(compiler) is None:
        pytest.skip(f"{compiler} is not installed")
    source = tmp_path / "plugin.c"
    source.write_text("int elk_plugin_marker(void) { return 42; }\n")
    binary = tmp_path / f"{name}.so"
    subprocess.run([compiler, "-shared", "-fPIC", "-o", str(binary), str(source)], check=True)
    board_dir = f"/home/mind/plugins/{name}.vst3/Contents/{folder}"
    board.run(["install", "-d", "-o", "mind", "-g", "mind", board_dir], check=True)
    shutil.copy(binary, board.path(f"{board_dir}/{name}.so"))
    board.run(["chown", "-R", "mind:mind", f"/home/mind/plugins/{name}.vst3"], check=True)
    return f"/home/mind/plugins/{name}.vst3"


def write_config(board: EmulatedBoard, plugin_path: str | None, name: str = "config.json",
                 os_version: str | None = None) -> str:
    version = os_version or board.os_version
    track = {"name": "main", "inputs": [{"engine_bus": 0, "track_bus": 0}],
             "outputs": [{"engine_bus": 0, "track_bus": 0}],
             "plugins": [{"uid": "sushi.testing.gain", "name": "gain", "type": "internal"}]}
    if version == "0.11":
        track["mode"] = "stereo"
    else:
        track["channels"] = 2
    if plugin_path:
        track["plugins"].append({"uid": "Elk Test Plugin", "name": "model", "type": "vst3x",
                                 "path": plugin_path})
    path = f"/home/mind/config_files/{name}"
    board.path(path).write_text(json.dumps({"host_config": {"samplerate": 48000},
                                            "tracks": [track]}, indent=2))
    board.run(["chown", "mind:mind", path], check=True)
    return path


def wait_for(predicate, timeout: float = 20.0, step: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    return predicate()


# --------------------------------------------------------------------------- access

def test_ssh_with_client_key_reaches_elk_shaped_arm64_board(fresh_emulated_board):
    board = fresh_emulated_board
    done = ssh(board, "hostname; id -un; id -Gn; pwd; uname -m")
    assert done.returncode == 0, done.stderr
    hostname, user, groups, home, machine = done.stdout.split("\n")[:5]
    assert (hostname, user, home, machine) == ("elk-pi", "mind", "/home/mind", "aarch64")
    assert {"xenomai", "audio", "sudo"} <= set(groups.split())


def test_password_login_and_writable_elk_folders_over_paramiko(fresh_emulated_board, tmp_path):
    board = fresh_emulated_board
    known = tmp_path / "known_hosts"
    known.write_text(board.host_key_line + "\n")
    client = paramiko.SSHClient()
    client.load_host_keys(str(known))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect(board.host, port=board.port, username=board.user, password=board.password,
                   look_for_keys=False, allow_agent=False, timeout=30)
    try:
        _, out, _ = client.exec_command(
            "touch /udata/u /home/mind/plugins/p /home/mind/config_files/c && echo written")
        assert out.read().decode().strip() == "written"
        with client.open_sftp() as sftp:
            with sftp.open("/home/mind/config_files/sent.json", "w") as remote:
                remote.write('{"sent": true}')
    finally:
        client.close()
    for board_path in ("/udata/u", "/home/mind/plugins/p", "/home/mind/config_files/c"):
        assert board.path(board_path).stat().st_uid == 1000
    assert json.loads(board.path("/home/mind/config_files/sent.json").read_text()) == {"sent": True}


def test_wrong_password_is_refused(fresh_emulated_board):
    board = fresh_emulated_board
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    with pytest.raises(paramiko.AuthenticationException):
        client.connect(board.host, port=board.port, username=board.user, password="not-elk",
                       look_for_keys=False, allow_agent=False, timeout=30)
    client.close()


def test_board_programs_are_aarch64_and_run_in_their_own_namespaces(fresh_emulated_board):
    board = fresh_emulated_board
    header = board.path("/usr/sbin/sshd").read_bytes()[:20]
    assert header[:4] == b"\x7fELF" and int.from_bytes(header[18:20], "little") == EM_AARCH64
    assert board.run(["id", "-u"], check=True).stdout.strip() == "0"
    assert board.run(["hostname"], check=True).stdout.strip() == "elk-pi"
    # PID 1 is the board's sshd: the board sees its own processes only.
    ps = board.run(["ps", "-e", "-o", "pid=,args="], check=True).stdout
    first = next(line for line in ps.splitlines() if line.split()[0] == "1")
    assert "/usr/sbin/sshd" in first
    assert "pytest" not in ps


@pytest.fixture
def second_board(emulated_board):
    """A board of its own (own host key and port), for tests that restart or rekey it."""
    board = EmulatedBoard(LocalExecutor(), emulated_board.cache_dir,
                          name=f"{emulated_board.name}-second", port=free_port())
    board.up()
    yield board
    board.destroy()


def test_host_key_is_kept_across_restarts_and_can_be_regenerated(second_board, tmp_path):
    board = second_board
    before = board.host_key_line
    board.down()
    assert not board.is_running()
    board.up()
    assert board.host_key_line == before
    old_known = tmp_path / "old_known_hosts"
    old_known.write_text(before + "\n")
    assert ssh(board, "true", known_hosts=old_known).returncode == 0

    after = board.regenerate_host_key()
    assert after != before and after.split()[0] == before.split()[0]
    refused = ssh(board, "true", known_hosts=old_known)
    assert refused.returncode != 0
    assert "REMOTE HOST IDENTIFICATION HAS CHANGED" in refused.stderr
    new_known = tmp_path / "new_known_hosts"
    new_known.write_text(after + "\n")
    assert ssh(board, "true", known_hosts=new_known).returncode == 0


def test_a_folder_of_the_layers_can_be_replaced_and_stays_replaced(second_board):
    """The writable layer records a removed folder of the read-only layers (an
    opaque folder), also inside the board's user namespace; after a restart too."""
    board = second_board
    done = board.run(["/bin/sh", "-c", "rm -rf /etc/default && mkdir /etc/default && "
                                       "ls -A /etc/default"])
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    board.down()
    board.up()
    assert board.run(["ls", "-A", "/etc/default"], check=True).stdout == ""


# --------------------------------------------------------------------------- real-time views

def test_profile_0_11_has_cobalt_stat_file_and_no_evl(fresh_emulated_board):
    board = fresh_emulated_board
    board.set_profile("0.11")
    done = ssh(board, "cat /proc/xenomai/sched/stat; test -e /proc/xenomai/sched/stat && "
                      "echo present; command -v evl || echo no-evl")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == COBALT_HEADER
    assert "  0  0      0          1000       0          0     00018000   99.0  [ROOT/0]" in lines
    assert lines[-2:] == ["present", "no-evl"]
    # The rest of /proc is the real procfs of the board.
    listing = ssh(board, "ls /proc; ps -e -o pid= | wc -l").stdout.split()
    assert "self" in listing and "1" in listing and "xenomai" not in listing
    assert int(listing[-1]) >= 2


def test_profile_1x_has_evl_ps_and_no_proc_xenomai(fresh_emulated_board):
    board = fresh_emulated_board
    board.set_profile("1.x")
    done = ssh(board, "evl ps -s; test -e /proc/xenomai || echo no-proc-xenomai")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == EVL_HEADER
    assert "  0   0     0       1000      0         0                  [ROOT/0]" in lines
    assert lines[-1] == "no-proc-xenomai"
    assert ssh(board, "evl ps -l").stdout.splitlines()[0].split() == [
        "CPU", "PID", "SCHED", "PRIO", "ISW", "CTXSW", "SYS", "RWA", "STAT", "TIMEOUT",
        "%CPU", "CPUTIME", "NAME"]


@pytest.mark.parametrize("profile", ["0.11", "1.x"])
def test_raise_switches_counts_on_a_thread_whose_name_has_spaces(fresh_emulated_board, profile):
    board = fresh_emulated_board
    board.set_profile(profile)
    board.add_thread("model worker 2", pid=4242, cpu=1)
    assert counter_of(board.rt_report(), "model worker 2") == 0
    board.raise_switches("model worker 2", 3)
    board.raise_switches("model worker 2")
    report = ssh(board, "cat /proc/xenomai/sched/stat" if profile == "0.11"
                 else "evl ps -s").stdout
    assert counter_of(report, "model worker 2") == 4
    assert counter_of(report, "[ROOT/0]") == 0


def test_raise_switches_on_unknown_thread_fails(fresh_emulated_board):
    with pytest.raises(Exception, match="no real-time thread named"):
        fresh_emulated_board.raise_switches("no such thread", 1)
    with pytest.raises(UsageError):
        fresh_emulated_board.raise_switches("[ROOT/0]", -1)


# --------------------------------------------------------------------------- sushi

@pytest.mark.parametrize("profile", ["0.11", "1.x"])
def test_sushi_service_runs_registers_audio_threads_and_counts_switches(
        fresh_emulated_board, tmp_path, profile):
    board = fresh_emulated_board
    board.set_profile(profile)
    bundle = make_bundle(board, tmp_path, "elk_test_plugin", "aarch64-linux-gnu-gcc")
    config = write_config(board, bundle)
    started = ssh(board, f"sushi-service start -- -r -m 2 -c {config}")
    assert started.returncode == 0, started.stdout + started.stderr
    assert ssh(board, "sushi-service status").returncode == 0

    first = wait_for(lambda: AUDIO_THREAD in board.rt_report() and board.rt_report())
    assert "sushi_b64" in first and "sushi_rt_worker_1" in first
    assert counter_of(first, AUDIO_THREAD) == 0
    board.raise_switches(AUDIO_THREAD, 2)
    later = wait_for(lambda: (r := board.rt_report()) and counter_of(r, AUDIO_THREAD) == 2 and r)
    assert later, board.rt_report()

    # The context switch counter moves while Sushi runs.
    def csw(report: str) -> int:
        row = next(l for l in report.splitlines() if l.endswith(AUDIO_THREAD))
        return int(row.split()[3])
    assert wait_for(lambda: csw(board.rt_report()) > csw(first))

    stopped = ssh(board, "sushi-service stop; sushi-service status")
    assert stopped.returncode == 3 and "not running" in stopped.stdout
    assert AUDIO_THREAD not in board.rt_report()
    log = board.path("/tmp/sushi.log").read_text().splitlines()
    assert log and all(LOG_LINE.match(line) for line in log), log
    assert "[info] [main] Setting up Xenomai RASPA frontend" in "\n".join(log)
    assert log[-1].endswith("Sushi exited normally." if profile == "0.11"
                            else "Sushi exiting normally!")


@pytest.mark.parametrize("case", ["missing", "x86_64", "arm64-linux folder"])
def test_sushi_refuses_a_plugin_it_could_not_load(fresh_emulated_board, tmp_path, case):
    board = fresh_emulated_board
    if case == "missing":
        bundle, reason = "/home/mind/plugins/absent.vst3", "Could not find plugin bundle"
    elif case == "x86_64":
        bundle = make_bundle(board, tmp_path, "host_built", "gcc")
        reason = "built for x86-64, not AArch64"
    else:
        bundle = make_bundle(board, tmp_path, "juce6", "aarch64-linux-gnu-gcc",
                             folder="arm64-linux")
        reason = "rename that folder to aarch64-linux"
    config = write_config(board, bundle)
    done = ssh(board, f"sushi -r -c {config} -L /tmp/bad.log")
    assert done.returncode != 0
    assert "Failed to load tracks from the Json config file." in done.stderr
    log = board.path("/tmp/bad.log").read_text()
    assert "[error] [vst3] Failed to load VST3 Module: " in log and reason in log
    assert AUDIO_THREAD not in board.rt_report()


def test_sushi_reports_malformed_json_like_sushi(fresh_emulated_board):
    board = fresh_emulated_board
    board.path("/home/mind/config_files/broken.json").write_text('{"host_config": {"samplerate"')
    done = ssh(board, "sushi -r -c /home/mind/config_files/broken.json; echo rc=$?")
    assert done.stdout.strip().endswith("rc=1")
    assert "Error reading host config, check logs for details." in done.stderr
    assert "[error] [jsonconfig] Error parsing JSON config file: " in \
        board.path("/tmp/sushi.log").read_text()
    missing = ssh(board, "sushi -r -c /home/mind/config_files/none.json")
    assert missing.returncode != 0
    assert "invalid file path: /home/mind/config_files/none.json" in missing.stderr


def test_sushi_options_log_level_dump_plugins_and_offline(fresh_emulated_board, tmp_path):
    board = fresh_emulated_board
    bundle = make_bundle(board, tmp_path, "elk_test_plugin", "aarch64-linux-gnu-gcc")
    config = write_config(board, bundle)
    dumped = ssh(board, f"sushi -d --dump-plugins -c {config} -l warning -L /udata/q.log")
    assert dumped.returncode == 0, dumped.stderr
    document = dumped.stdout[:dumped.stdout.rindex("}") + 1]
    assert [p["name"] for p in json.loads(document)["plugins"]] == ["gain", "model"]
    quiet = board.path("/udata/q.log").read_text()
    assert "[warning]" in quiet and "[info]" not in quiet

    # Offline mode really runs the config's VST3 plugins with the board's aarch64 VST3
    # host (tests/test_full_loop.py processes audio through a real one). This stand-in
    # binary is no VST3 module and the file no WAV: Sushi fails as Sushi does, and
    # leaves no output file.
    board.path("/udata/in.wav").write_bytes(b"RIFF" + os.urandom(64))
    offline = ssh(board, f"cd /udata && sushi -o -i in.wav -O out.wav -c {config}")
    assert offline.returncode == 1
    assert "Error processing the input file offline." in offline.stderr
    assert "through 1 VST3 plugin(s)" in board.path("/tmp/sushi.log").read_text()
    assert not board.path("/udata/out.wav").exists()
    missing = ssh(board, f"cd /udata && sushi -o -i nothing.wav -O out.wav -c {config}")
    assert missing.returncode == 1
    assert "Error opening input file for offline processing." in missing.stderr


def test_sushi_versions_differ_like_0_11_and_1x(fresh_emulated_board, tmp_path):
    board = fresh_emulated_board
    relative = make_bundle(board, tmp_path, "elk_test_plugin", "aarch64-linux-gnu-gcc")
    config = write_config(board, "elk_test_plugin.vst3", os_version="1.x")
    board.set_profile("1.x")
    ok = ssh(board, f"sushi -d --dump-plugins --base-plugin-path=/home/mind/plugins -c {config}")
    assert ok.returncode == 0, ok.stderr
    assert relative.endswith("elk_test_plugin.vst3")
    board.set_profile("0.11")
    refused = ssh(board, f"sushi -d --base-plugin-path=/home/mind/plugins -c {config}")
    assert refused.returncode != 0 and "--base-plugin-path" in refused.stderr
    wrong_format = ssh(board, f"sushi -d --dump-plugins -c {config}")
    assert wrong_format.returncode != 0
    assert "Schema validation failure at /tracks/0/mode" in \
        board.path("/tmp/sushi.log").read_text()


@pytest.mark.parametrize("version,example", [
    ("1.x", "prepost_tracks.json"), ("1.x", "fx.json"), ("1.x", "play_vst3.json"),
    ("0.11", "config_play_vst3.json")])
def test_sushi_accepts_real_sushi_example_configs(fresh_emulated_board, tmp_path, version,
                                                  example):
    """Sushi's own example configs pass unchanged once their VST3 bundles exist."""
    source = REFERENCE / version / "examples" / example
    if not source.exists():
        pytest.skip(f"{source} is not in this checkout's shared reference")
    board = fresh_emulated_board
    board.set_profile(version)
    document = json.loads(source.read_text())
    tracks = document.get("tracks", []) + [document[key] for key in ("pre_track", "post_track")
                                           if key in document]
    for track in tracks:
        for plugin in track.get("plugins", []):
            if plugin["type"] != "vst3x":
                continue
            path = plugin["path"]
            full = path if path.startswith("/") else f"/home/mind/plugins/{path}"
            stem = Path(full).name.removesuffix(".vst3")
            if not board.path(full).exists():
                bundle = make_bundle(board, tmp_path, stem, "aarch64-linux-gnu-gcc")
                if bundle != full:
                    board.run(["mkdir", "-p", str(Path(full).parent)], check=True)
                    board.run(["mv", bundle, full], check=True)
    board.path(f"/home/mind/config_files/{example}").write_text(source.read_text())
    base = "--base-plugin-path=/home/mind/plugins" if version == "1.x" else ""
    done = ssh(board, f"sushi -d --dump-plugins {base} -c /home/mind/config_files/{example}")
    assert done.returncode == 0, board.path("/tmp/sushi.log").read_text()
    names = [p["name"] for p in json.loads(done.stdout[:done.stdout.rindex("}") + 1])["plugins"]]
    expected = [p["name"] for track in tracks for p in track.get("plugins", [])]
    assert sorted(names) == sorted(expected)


# --------------------------------------------------------------------------- debugging

def test_gdb_backtrace_names_the_call_that_broke_real_time(fresh_emulated_board):
    trace = fresh_emulated_board.gdb_backtrace(["modeswitch-demo", "3"])
    assert "hit Catchpoint 1 (signal SIGXCPU)" in trace
    assert "log_peak_from_audio_thread" in trace and "process_block" in trace


def test_sushi_debug_mode_sw_stops_in_the_audio_thread(fresh_emulated_board):
    board = fresh_emulated_board
    config = write_config(board, None)

    def raise_a_switch() -> None:
        assert wait_for(lambda: AUDIO_THREAD in board.rt_report(), timeout=60)
        board.raise_switches(AUDIO_THREAD, 1)

    trace = board.gdb_backtrace(["sushi_b64", "-r", "--debug-mode-sw", "-c", config],
                                after_start=raise_a_switch)
    assert "signal SIGXCPU" in trace
    assert "report_mode_switch" in trace and "audio_thread_main" in trace


# --------------------------------------------------------------------------- reset

def test_reset_stops_sushi_empties_folders_and_restores_profile(emulated_board, tmp_path):
    board = emulated_board
    profile = board.os_version
    bundle = make_bundle(board, tmp_path, "elk_test_plugin", "aarch64-linux-gnu-gcc")
    config = write_config(board, bundle)
    board.path("/udata/leftover").write_text("x")
    assert ssh(board, f"sushi-service start -- -r -c {config}").returncode == 0
    board.set_profile("0.11" if profile == "1.x" else "1.x")
    board.add_thread("stray")

    board.reset()
    assert board.os_version == profile
    for folder in ("/udata", "/home/mind/plugins", "/home/mind/config_files"):
        assert list(board.path(folder).iterdir()) == []
    assert ssh(board, "sushi-service status").returncode == 3
    report = board.rt_report()
    assert "stray" not in report and AUDIO_THREAD not in report
