"""deploy -> start -> monitor against the emulated board, for both OS profiles.

Real parts only: the board's sshd, its Sushi stand-in (real-time threads in
/proc/xenomai/sched/stat or `evl ps`), the deploy stage that starts it, and the
monitor's one long-lived SSH stream.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from cli_helpers import REPO
from elkbuild.board.connection import connect
from elkbuild.board.host_keys import known_hosts_name
from elkbuild.config import Board
from elkbuild.deploy.deployer import deploy_to_board
from elkbuild.deploy.payload import collect_payload
from elkbuild.errors import BoardError, ModeSwitchDetected
from elkbuild.monitor.presenter import JsonPresenter
from elkbuild.monitor.session import MonitorOptions, monitor_board, monitor_capture
from elkbuild.sushi.service import settings_for

pytestmark = pytest.mark.slow

AUDIO_THREAD = "sushi_rt_audio"  # the stand-in's audio thread, as Sushi names it


def sushi_config(os_version: str) -> dict:
    """A one-track Sushi config; 0.11 names the channel layout `mode`, 1.x counts channels."""
    track = {"name": "main", "inputs": [], "outputs": [], "plugins": []}
    track.update({"mode": "stereo"} if os_version == "0.11" else {"channels": 2})
    return {"host_config": {"samplerate": 48000}, "tracks": [track], "midi": {}}


def board_for(emulated, directory: Path, os_version: str) -> Board:
    known_hosts = directory / "known_hosts"
    words = emulated.host_key_line.split()
    if not words[0].startswith(("[", emulated.host)):
        words = [known_hosts_name(emulated.host, int(emulated.port)), *words]
    known_hosts.write_text(" ".join(words[:3]) + "\n")
    return Board(name="emu", host=emulated.host, port=int(emulated.port), user=emulated.user,
                 os_version=os_version, auth="key", known_hosts=known_hosts,
                 identity_file=Path(emulated.client_key))


def deploy_and_start(board: Board) -> None:
    config = json.dumps(sushi_config(board.os_version)).encode()
    payload = collect_payload(config=("monitor.json", config, "test"))
    result = deploy_to_board(board, payload, settings_for(board, health_seconds=1.0))
    assert result.ok, result.message


class Recorder:
    """A presenter that keeps every snapshot with the moment it was shown."""

    def __init__(self) -> None:
        self.seen: list[tuple[float, dict]] = []
        self.presenter = JsonPresenter(lambda obj: self.seen.append((time.monotonic(), obj)))

    def wait_for(self, predicate, timeout: float) -> tuple[float, dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for moment, obj in list(self.seen):
                if predicate(obj):
                    return moment, obj
            time.sleep(0.02)
        raise AssertionError(f"no snapshot matched within {timeout} s; last: "
                             f"{self.seen[-1][1] if self.seen else None}")


def has_thread(obj: dict, name: str) -> bool:
    return any(t["name"] == name for t in obj["threads"])


@pytest.fixture(scope="module", params=["0.11", "1.x"])
def profile_board(emulated_board, request, tmp_path_factory):
    """Sushi deployed and started once per OS profile; the tests only read the
    board and raise counters, so they share it."""
    profile = request.param
    previous = emulated_board.os_version
    emulated_board.reset()
    emulated_board.set_profile(profile)
    board = board_for(emulated_board, tmp_path_factory.mktemp(f"board-{profile}"), profile)
    deploy_and_start(board)
    yield emulated_board, board
    emulated_board.reset()
    emulated_board.set_profile(previous)


def test_live_monitor_reports_a_raised_counter_within_a_second(profile_board, tmp_path) -> None:
    emulated, board = profile_board
    recorder = Recorder()
    saved = tmp_path / "live-capture.txt"
    options = MonitorOptions(interval=0.1, duration=5.0, grace=0.5, fail_on_switch=True)
    outcome: dict = {}

    def run() -> None:
        try:
            with connect(board) as conn:
                outcome["summary"] = monitor_board(conn, options, recorder.presenter,
                                                   expected_os=board.os_version,
                                                   config_key="boards.emu.os_version",
                                                   save=saved)
        except BaseException as error:  # handed to the test thread
            outcome["error"] = error

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    # Sushi's threads are listed, past their start-up grace period
    _, first = recorder.wait_for(lambda o: has_thread(o, AUDIO_THREAD), timeout=10)
    counter = "MSW" if board.os_version == "0.11" else "ISW"
    assert first["counter"] == counter and first["profile"] == board.os_version
    names = {t["name"] for t in first["threads"]}
    assert "[ROOT/0]" in names and any(n.startswith("[IRQ") and " " in n for n in names)
    # past the audio thread's grace period, which starts when it was first seen
    recorder.wait_for(lambda o: o["timestamp"] >= first["timestamp"] + options.grace, 10)
    before = len(recorder.seen)
    called_at = time.monotonic()
    emulated.raise_switches(AUDIO_THREAD, 2)  # raised when this returns
    raised_at = time.monotonic()
    reported_at, hit = recorder.wait_for(lambda o: bool(o["increases"]), timeout=5)
    latency = reported_at - raised_at
    print(f"{board.os_version}: raised counter reported {latency:.3f} s after it was raised "
          f"({reported_at - called_at:.3f} s after the raise was asked for)")
    assert latency < 1.0
    assert len(recorder.seen) > before
    (increase,) = hit["increases"]
    assert increase["name"] == AUDIO_THREAD and increase["delta"] == 2
    worker.join(timeout=20)
    assert not worker.is_alive()
    assert isinstance(outcome.get("error"), ModeSwitchDetected), outcome
    assert AUDIO_THREAD in outcome["error"].one_line()

    # The saved stream replays offline to the same switch. A capture holds no
    # times: replay it at the period the live run actually had.
    live = [obj for _, obj in recorder.seen]
    period = live[-1]["timestamp"] / (len(live) - 1)
    replay: list[dict] = []
    with pytest.raises(ModeSwitchDetected):
        monitor_capture(saved, MonitorOptions(interval=period, grace=0.5, fail_on_switch=True),
                        JsonPresenter(replay.append))
    assert [o["threads"] for o in replay] == [o["threads"] for o in live]
    replayed = [i for obj in replay for i in obj["increases"]]
    assert [(i["pid"], i["name"], i["before"], i["after"]) for i in replayed] == \
        [(increase["pid"], increase["name"], increase["before"], increase["after"])]


def test_monitor_task_fails_on_switch_and_passes_without(profile_board, tmp_path) -> None:
    emulated, board = profile_board
    project = tmp_path / "project"
    project.mkdir()
    (project / "elkbuild.yaml").write_text(
        "boards:\n  emu:\n"
        f"    host: {board.host}\n    port: {board.port}\n    os_version: '{board.os_version}'\n"
        f"    known_hosts: {board.known_hosts}\n    identity_file: {board.identity_file}\n")
    env = {"ELKBUILD_PROJECT_DIR": str(project),
           "ELKBUILD_USER_CONFIG": str(project / "none.yaml")}
    argv = [sys.executable, "-m", "invoke", "--search-root", str(REPO), "monitor",
            "--board", "emu", "--json", "--fail-on-switch", "--interval", "0.2",
            "--grace", "0.5", "--duration", "2.5"]

    quiet = subprocess.run(argv, capture_output=True, text=True, env=_env(env), timeout=60)
    assert quiet.returncode == 0, quiet.stderr
    snapshots = [json.loads(line) for line in quiet.stdout.splitlines()]
    assert len(snapshots) >= 3 and all(has_thread(o, AUDIO_THREAD) for o in snapshots)

    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=_env(env))
    first = proc.stdout.readline()  # the monitor is streaming
    assert has_thread(json.loads(first), AUDIO_THREAD)
    time.sleep(1.0)
    emulated.raise_switches(AUDIO_THREAD, 1)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 3, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    counter = "MSW" if board.os_version == "0.11" else "ISW"
    assert f"{AUDIO_THREAD} (pid" in err and counter in err
    increases = [i for line in out.splitlines() for i in json.loads(line)["increases"]]
    assert [i["delta"] for i in increases] == [1]


def test_monitor_task_with_host_detects_the_os(profile_board, tmp_path) -> None:
    """An ad-hoc --host board: no configured os_version, the board says which."""
    emulated, board = profile_board
    env = _env({"ELKBUILD_PROJECT_DIR": str(tmp_path),
                "ELKBUILD_USER_CONFIG": str(tmp_path / "none.yaml"),
                "ELKBUILD_BOARD_DEFAULTS__KNOWN_HOSTS": str(board.known_hosts),
                "ELKBUILD_BOARD_DEFAULTS__IDENTITY_FILE": str(board.identity_file)})
    done = subprocess.run([sys.executable, "-m", "invoke", "--search-root", str(REPO),
                           "monitor", "--host", board.host, "--port", str(board.port),
                           "--duration", "1", "--interval", "0.2", "--json"],
                          capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    snapshots = [json.loads(line) for line in done.stdout.splitlines()]
    assert snapshots and {o["profile"] for o in snapshots} == {board.os_version}


def test_configured_os_version_is_checked_against_the_board(profile_board, tmp_path) -> None:
    emulated, board = profile_board
    other = "1.x" if board.os_version == "0.11" else "0.11"
    with connect(board) as conn, pytest.raises(BoardError) as caught:
        monitor_board(conn, MonitorOptions(duration=1), JsonPresenter(lambda o: None),
                      expected_os=other, config_key="boards.emu.os_version")
    assert (f"boards.emu.os_version is {other!r} but the board runs Elk Audio OS "
            f"{board.os_version}") in caught.value.one_line()


def _env(extra: dict[str, str]) -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("ELKBUILD_")}
    env.update(extra)
    return env


# --------------------------------------------------------------------------- debug

@pytest.fixture(scope="module")
def debug_board(emulated_board, tmp_path_factory):
    """No Sushi running; a rig on the board for the one `invoke debug` starts."""
    previous = emulated_board.os_version
    emulated_board.reset()
    emulated_board.set_profile("1.x")
    directory = tmp_path_factory.mktemp("debug")
    board = board_for(emulated_board, directory, "1.x")
    rig = "/udata/debug-rig.json"
    emulated_board.path(rig).write_text(json.dumps(sushi_config("1.x")))
    yield emulated_board, board, rig
    emulated_board.reset()
    emulated_board.set_profile(previous)


def test_debug_task_prints_the_backtrace_of_the_first_mode_switch(debug_board, tmp_path):
    """`invoke debug` on the emulated board: Sushi runs under qemu's gdb stub (the
    board's gdb server), gdb-multiarch here drives it through the SSH connection,
    and a raised counter makes the stand-in's audio thread get SIGXCPU."""
    emulated, board, rig = debug_board
    project = tmp_path / "project"
    project.mkdir()
    (project / "elkbuild.yaml").write_text(
        "boards:\n  emu:\n"
        f"    host: {board.host}\n    port: {board.port}\n    os_version: '1.x'\n"
        f"    known_hosts: {board.known_hosts}\n    identity_file: {board.identity_file}\n")
    env = _env({"ELKBUILD_PROJECT_DIR": str(project),
                "ELKBUILD_USER_CONFIG": str(project / "none.yaml")})
    argv = [sys.executable, "-m", "invoke", "--search-root", str(REPO), "debug",
            "--board", "emu", "--config", rig, "--gdbserver", "elk-gdbstub",
            "--timeout", "90", "--json"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)
    try:
        deadline = time.monotonic() + 60
        while AUDIO_THREAD not in emulated.rt_report():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "Sushi under gdb never started its audio thread"
            time.sleep(0.3)
        emulated.raise_switches(AUDIO_THREAD, 1)
        out, err = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    result = json.loads(out)
    assert result["caught"] is True, result
    # qemu's stub does not tell thread names; a real gdbserver does
    assert result["thread"] in (None, AUDIO_THREAD)
    functions = [frame["function"] for frame in result["frames"]]
    assert "report_mode_switch" in functions and "process_audio_block" in functions
    assert result["culprit"].split()[1] == "report_mode_switch"
    libc = [f["location"] for f in result["frames"] if "libc.so" in (f["location"] or "")]
    assert libc and all(path.startswith("/lib/") for path in libc)  # board paths
    assert AUDIO_THREAD not in emulated.rt_report()  # gdb killed it: nothing left behind


def test_debug_without_gdb_on_the_board_is_one_clear_error(debug_board, tmp_path):
    emulated, board, rig = debug_board
    project = tmp_path / "project"
    project.mkdir()
    (project / "elkbuild.yaml").write_text(
        "boards:\n  emu:\n"
        f"    host: {board.host}\n    port: {board.port}\n"
        f"    known_hosts: {board.known_hosts}\n    identity_file: {board.identity_file}\n")
    env = _env({"ELKBUILD_PROJECT_DIR": str(project),
                "ELKBUILD_USER_CONFIG": str(project / "none.yaml")})
    done = subprocess.run([sys.executable, "-m", "invoke", "--search-root", str(REPO), "debug",
                           "--board", "emu", "--config", rig], capture_output=True, text=True,
                          env=env, timeout=120)
    assert done.returncode == 1, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert "required program 'gdb' not found" in line and "--gdbserver" in line
