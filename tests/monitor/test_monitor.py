"""The monitor's tracker, presenters, remote loop and capture replay (no board)."""

from __future__ import annotations

import io
import json
import shlex
import subprocess
from pathlib import Path

import pytest
from rich.console import Console

from cli_helpers import assert_one_line_error, run_task
from elkbuild.errors import BoardError, ModeSwitchDetected, UsageError
from elkbuild.monitor.parsers import Snapshot, ThreadRow
from elkbuild.monitor.presenter import JsonPresenter, TablePresenter
from elkbuild.monitor.session import MonitorOptions, monitor_capture, monitor_stream
from elkbuild.monitor.sources import (
    FAILURE_MARKER, SNAPSHOT_MARKER, board_lines, choose_profile, stream_command)
from elkbuild.monitor.tracker import SwitchTracker

CAPTURES = Path(__file__).parent


def snap(*rows: tuple[int, str, int], profile: str = "0.11") -> Snapshot:
    return Snapshot(profile, tuple(ThreadRow(0, pid, name, count) for pid, name, count in rows), 1)


# --------------------------------------------------------------------------- tracker

def test_increase_inside_grace_is_shown_but_not_flagged() -> None:
    tracker = SwitchTracker(grace=1.0)
    tracker.update(snap((812, "sushi_b64", 1)), 0.0)
    report = tracker.update(snap((812, "sushi_b64", 2)), 0.5)
    assert report.threads[0].delta == 1 and not report.threads[0].flagged
    assert report.increases == ()
    report = tracker.update(snap((812, "sushi_b64", 4)), 1.0)
    (increase,) = report.increases
    assert (increase.before, increase.after, increase.delta) == (2, 4, 2)
    assert report.threads[0].total == 3
    assert tracker.increases == [increase]


def test_steady_counts_give_no_increase() -> None:
    tracker = SwitchTracker(grace=0.0)
    for t in range(5):
        report = tracker.update(snap((812, "sushi_b64", 7), (0, "[ROOT/0]", 0)), float(t))
    assert tracker.increases == [] and report.threads[0].delta == 0


def test_restart_with_new_pid_is_a_new_thread_with_its_own_grace() -> None:
    tracker = SwitchTracker(grace=1.0)
    tracker.update(snap((812, "sushi_b64", 5)), 0.0)
    report = tracker.update(snap(), 2.0)  # empty snapshot: Sushi stopped
    assert report.gone == ((812, "sushi_b64"),) and report.threads == ()
    report = tracker.update(snap((977, "sushi_b64", 1)), 3.0)
    assert report.threads[0].new and report.threads[0].delta == 0
    report = tracker.update(snap((977, "sushi_b64", 2)), 3.5)  # its own start-up switch
    assert report.increases == ()
    report = tracker.update(snap((977, "sushi_b64", 3)), 4.5)
    assert [i.pid for i in report.increases] == [977]


def test_thread_missing_from_one_report_keeps_its_history() -> None:
    tracker = SwitchTracker(grace=1.0)
    tracker.update(snap((812, "sushi_b64", 2)), 0.0)
    tracker.update(snap(), 1.5)
    report = tracker.update(snap((812, "sushi_b64", 3)), 2.0)
    assert not report.threads[0].new and report.threads[0].delta == 1
    assert [i.after for i in report.increases] == [3]  # no fresh grace period


def test_counter_going_down_is_a_reset_not_a_switch() -> None:
    tracker = SwitchTracker(grace=0.0)
    tracker.update(snap((977, "sushi_b64", 9)), 0.0)
    report = tracker.update(snap((977, "sushi_b64", 0)), 1.0)
    assert report.threads[0].reset and report.threads[0].delta == 0
    assert report.increases == ()
    report = tracker.update(snap((977, "sushi_b64", 1)), 2.0)
    assert report.increases[0].before == 0 and report.threads[0].total == 1


def test_threads_with_same_pid_and_name_are_told_apart_by_order() -> None:
    tracker = SwitchTracker(grace=0.0)
    irq = "[IRQ16: [timer]]"
    tracker.update(snap((0, irq, 0), (0, irq, 0)), 0.0)
    report = tracker.update(snap((0, irq, 0), (0, irq, 3)), 1.0)
    assert [t.delta for t in report.threads] == [0, 3]
    assert len(report.increases) == 1


# --------------------------------------------------------------------------- capture replay

def replay(name: str, **options) -> tuple[list[dict], object]:
    out: list[dict] = []
    summary = monitor_capture(CAPTURES / name, MonitorOptions(**options), JsonPresenter(out.append))
    return out, summary


def test_capture_replay_json_reports_the_switch() -> None:
    out, summary = replay("xenomai_steady_then_switch.txt", interval=1.0, grace=1.0)
    assert [o["snapshot"] for o in out] == [0, 1, 2]
    assert [o["timestamp"] for o in out] == [0.0, 1.0, 2.0]
    assert out[2]["increases"] == [{"pid": 812, "name": "sushi_b64", "before": 2,
                                    "after": 3, "delta": 1}]
    names = [t["name"] for t in out[0]["threads"]]
    assert "[IRQ16: [timer]]" in names and "sushi worker 1" in names
    assert out[0]["counter"] == "MSW" and out[0]["wallclock"] is None
    json.dumps(out)  # every snapshot is plain JSON


def test_capture_grace_longer_than_the_capture_flags_nothing() -> None:
    out, summary = replay("xenomai_steady_then_switch.txt", interval=1.0, grace=5.0)
    assert summary.increases == [] and out[2]["threads"][2]["delta"] == 1


def test_fail_on_switch_raises_with_one_line_summary() -> None:
    with pytest.raises(ModeSwitchDetected) as caught:
        replay("evl_blank_stat_and_spaces.txt", interval=0.5, grace=0.5, fail_on_switch=True)
    line = caught.value.one_line()
    assert "sushi rt worker (pid 614)" in line and "ISW 0 -> 2" in line
    assert caught.value.exit_code == 3


def test_capture_restart_replay() -> None:
    out, summary = replay("xenomai_restart_and_empty.txt", interval=1.0, grace=0.0)
    assert out[1]["gone"] == [{"pid": 812, "name": "sushi_b64"}]
    assert out[2]["threads"] == []
    assert out[3]["threads"][1]["new"] is True
    assert out[4]["threads"][1]["reset"] is True
    assert summary.increases == []


def test_duration_limits_a_replay() -> None:
    out, _ = replay("xenomai_steady_then_switch.txt", interval=1.0, duration=1.0)
    assert [o["timestamp"] for o in out] == [0.0, 1.0]


def test_table_presenter_prints_switch_line_and_table() -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=False, width=120)
    monitor_capture(CAPTURES / "xenomai_steady_then_switch.txt",
                    MonitorOptions(interval=1.0, grace=1.0), TablePresenter(console))
    text = buffer.getvalue()
    assert "MODE SWITCH sushi_b64 (pid 812): MSW 2 -> 3 (+1) at 2.0 s" in text
    assert "[IRQ16: [timer]]" in text and "sushi worker 1" in text
    assert "1 mode-switch increase(s)" in text


def test_empty_or_missing_capture(tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    with pytest.raises(UsageError, match="holds no report"):
        monitor_capture(empty, MonitorOptions(), JsonPresenter(lambda o: None))
    with pytest.raises(UsageError, match="no such file"):
        monitor_capture(tmp_path / "nope.txt", MonitorOptions(), JsonPresenter(lambda o: None))


@pytest.mark.parametrize("options, flag", [
    ({"interval": 0}, "--interval"), ({"grace": -1}, "--grace"), ({"duration": -2}, "--duration")])
def test_bad_options(options: dict, flag: str) -> None:
    with pytest.raises(UsageError, match=flag):
        MonitorOptions(**options)


# --------------------------------------------------------------------------- live plumbing

def test_profile_must_match_the_configured_os_version() -> None:
    assert choose_profile("1.x", None, "pi", None) == "1.x"
    assert choose_profile("0.11", "0.11", "pi", "boards.pi.os_version") == "0.11"
    with pytest.raises(BoardError, match="boards.pi.os_version is '1.x'.*0.11"):
        choose_profile("0.11", "1.x", "pi", "boards.pi.os_version")
    with pytest.raises(BoardError, match="neither /proc/xenomai/sched/stat"):
        choose_profile(None, None, "pi", None)


@pytest.mark.parametrize("profile, reader", [("0.11", "cat /proc/xenomai/sched/stat"),
                                             ("1.x", "evl ps -s")])
def test_stream_command_is_one_quoted_shell_loop(profile: str, reader: str) -> None:
    argv = stream_command(profile, 0.25)
    assert argv[:2] == ["sh", "-c"] and len(argv) == 3
    assert f"do {reader} 2>&1 ||" in argv[2] and "sleep 0.25" in argv[2]
    assert shlex.split(shlex.join(argv)) == argv


def test_stream_loop_runs_in_a_real_shell_and_reports_its_reader_failing() -> None:
    # This machine has no /proc/xenomai: the loop must stop with its failure line.
    argv = stream_command("0.11", 0.1)
    done = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    assert done.returncode == 1
    error, marker = done.stdout.splitlines()
    assert "/proc/xenomai/sched/stat" in error and marker == FAILURE_MARKER
    with pytest.raises(BoardError, match="failed on the board: cat: /proc/xenomai"):
        list(board_lines(done.stdout.splitlines(), "pi", "cat /proc/xenomai/sched/stat"))


def test_stream_loop_with_a_local_reader_yields_snapshots(tmp_path: Path) -> None:
    """The same loop with the reader swapped for a local file: one process, many
    snapshots, each closed by its marker."""
    capture = tmp_path / "stat"
    capture.write_text((CAPTURES / "xenomai_published_sample.txt").read_text())
    argv = stream_command("0.11", 0.05)
    argv[2] = argv[2].replace("/proc/xenomai/sched/stat", shlex.quote(str(capture)))
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    out: list[dict] = []
    saved = tmp_path / "saved.txt"
    try:
        with pytest.raises(BoardError, match="loop on the board ended"):
            monitor_stream(lambda _argv, silence=None: _limited(proc.stdout, 3), "0.11",
                           MonitorOptions(interval=0.05, grace=0), JsonPresenter(out.append),
                           "local", save=saved)
    finally:
        proc.kill()
        proc.wait()
    assert len(out) == 3 and all(o["threads"][1]["name"] == "bela-audio" for o in out)
    assert out[0]["wallclock"] and out[2]["timestamp"] >= out[0]["timestamp"]
    # --save wrote exactly the reports, replayable with --source
    assert saved.read_text() == capture.read_text() * 3
    replayed: list[dict] = []
    monitor_capture(saved, MonitorOptions(interval=0.05), JsonPresenter(replayed.append))
    assert [o["threads"] for o in replayed] == [o["threads"] for o in out]


def _limited(stream, snapshots: int):
    for line in stream:
        yield line.rstrip("\n")
        if line.strip() == SNAPSHOT_MARKER:
            snapshots -= 1
            if snapshots == 0:
                return


# --------------------------------------------------------------------------- the task

def test_task_replays_capture_as_json_and_fails_on_switch() -> None:
    result = run_task("monitor", "--source", str(CAPTURES / "xenomai_steady_then_switch.txt"),
                      "--json", "--fail-on-switch", "--grace", "0.5", "--interval", "1")
    assert result.returncode == 3, result.stderr
    objects = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(objects) == 3 and objects[2]["increases"][0]["name"] == "sushi_b64"
    assert "sushi_b64 (pid 812)" in result.stderr and "Traceback" not in result.stderr


def test_task_replay_without_switch_exits_zero() -> None:
    result = run_task("monitor", "--source", str(CAPTURES / "evl_wide_numbers.txt"),
                      "--fail-on-switch", "--grace", "5")
    assert result.returncode == 0, result.stderr
    assert "no mode switches after the 5 s grace period (2 snapshots)" in result.stdout


def test_task_malformed_capture_is_one_line_naming_file_and_line() -> None:
    path = CAPTURES / "malformed_row_crlf.txt"
    result = run_task("monitor", "--source", str(path))
    assert_one_line_error(result, f"{path}:6:", "CSW", code=1)


def test_task_missing_capture_is_a_usage_error(tmp_path: Path) -> None:
    result = run_task("monitor", "--source", str(tmp_path / "none.txt"))
    assert_one_line_error(result, "none.txt: no such file", code=2)


def test_table_presenter_on_a_terminal_uses_a_live_table() -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=120)
    presenter = TablePresenter(console)
    monitor_capture(CAPTURES / "evl_blank_stat_and_spaces.txt",
                    MonitorOptions(interval=1.0, grace=1.0), presenter)
    text = buffer.getvalue()
    assert presenter.live is None  # stopped, the terminal handed back
    assert "MODE SWITCH" in text and "sushi rt worker (pid 614): ISW 0 -> 2" in text
    assert "\x1b[" in text  # drawn with terminal control codes


def test_task_host_and_board_together_is_a_usage_error() -> None:
    result = run_task("monitor", "--host", "elk-pi", "--board", "studio")
    assert_one_line_error(result, "--host or --board, not both", code=2)


def test_task_source_with_save_is_a_usage_error(tmp_path: Path) -> None:
    result = run_task("monitor", "--source", str(CAPTURES / "evl_wide_numbers.txt"),
                      "--save", str(tmp_path / "x.txt"))
    assert_one_line_error(result, "--source reads a capture", code=2)
    assert not (tmp_path / "x.txt").exists()
