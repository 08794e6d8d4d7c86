"""A monitoring run: source -> parser -> tracker -> presenter, until the source ends,
the duration passes or Ctrl-C; then the verdict.

- sources: the board's remote loop or a saved capture (elkbuild.monitor.sources);
- parsers: report text to snapshots (elkbuild.monitor.parsers, pure);
- tracker: counts and the increases that are mode switches (elkbuild.monitor.tracker);
- presenter: table or JSON (elkbuild.monitor.presenter).
"""

from __future__ import annotations

import datetime as _dt
import shlex
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from elkbuild.errors import BoardError, BoardUnresponsive, ModeSwitchDetected, StreamSilent, UsageError
from elkbuild.monitor.parsers import FORMATS, Snapshot, split_snapshots
from elkbuild.monitor.presenter import Presenter
from elkbuild.monitor.sources import (
    READERS, SNAPSHOT_MARKER, CaptureWriter, board_lines, capture_lines, choose_profile,
    detect_profile, stream_command)
from elkbuild.monitor.tracker import Summary, SwitchTracker

DEFAULT_INTERVAL = 0.5
DEFAULT_GRACE = 3.0
MIN_INTERVAL = 0.05
DEFAULT_STALL = 10.0
"""Seconds without a snapshot after which a board counts as stopped (at least ten
intervals): a frozen board must end the run with an error, not pass for quiet."""


@dataclass(frozen=True)
class MonitorOptions:
    interval: float = DEFAULT_INTERVAL
    duration: float | None = None
    grace: float = DEFAULT_GRACE
    fail_on_switch: bool = False
    stall: float = DEFAULT_STALL

    @property
    def silence(self) -> float:
        """The longest wait for the board's next line: the stall bound, but never
        less than ten snapshot intervals."""
        return max(self.stall, 10 * self.interval)

    def __post_init__(self) -> None:
        if not self.interval >= MIN_INTERVAL:
            raise UsageError(f"--interval {self.interval}: must be at least {MIN_INTERVAL} s",
                             "the board is polled once per interval; 0.5 is a good start")
        if self.duration is not None and not self.duration > 0:
            raise UsageError(f"--duration {self.duration}: must be more than 0 s",
                             "leave it out to monitor until Ctrl-C")
        if not self.stall > 0:
            raise UsageError(f"--stall {self.stall}: must be more than 0 s",
                             "a board silent for that long fails the run")
        if not self.grace >= 0:
            raise UsageError(f"--grace {self.grace}: must be 0 s or more",
                             "the start-up switches of a new thread fall in this window")


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds")


def watch(snapshots: Iterable[Snapshot], options: MonitorOptions, presenter: Presenter,
          title: str, clock: Callable[[int], tuple[float, str | None]]) -> Summary:
    """Feed snapshots through the tracker to the presenter until the source ends,
    the duration passes, or Ctrl-C. `clock(index)` gives (elapsed, wallclock)."""
    tracker = SwitchTracker(options.grace)
    summary = Summary(title, "", options.grace)
    presenter.start(title)
    try:
        for snapshot in snapshots:
            elapsed, wallclock = clock(tracker.snapshots)
            report = tracker.update(snapshot, elapsed, wallclock)
            summary.counter = report.counter
            summary.last = report
            presenter.show(report)
            if options.duration is not None and elapsed >= options.duration:
                summary.stopped = "duration"
                break
    except KeyboardInterrupt:
        summary.stopped = "interrupted"  # Ctrl-C ends an open-ended run: still summarise
    except BaseException:
        presenter.abort()
        raise
    summary.snapshots = tracker.snapshots
    summary.increases = list(tracker.increases)
    presenter.finish(summary)
    return summary


def conclude(summary: Summary, options: MonitorOptions) -> Summary:
    if options.fail_on_switch and summary.increases:
        raise ModeSwitchDetected(summary.message(),
                                 "run `invoke debug` to get the backtrace of the first switch")
    return summary


def monitor_capture(path: Path, options: MonitorOptions, presenter: Presenter,
                    profile: str | None = None) -> Summary:
    """Replay a saved capture; snapshot i is taken to be i x interval seconds in."""
    snapshots = split_snapshots(capture_lines(path), str(path), profile=profile)
    summary = watch(snapshots, options, presenter, f"{path} (capture)",
                    lambda index: (index * options.interval, None))
    if summary.snapshots == 0:
        raise UsageError(f"--source {path}: holds no report (no header line found)",
                         "a capture starts with the header printed by "
                         "`cat /proc/xenomai/sched/stat` or `evl ps -s`")
    return conclude(summary, options)


def monitor_stream(open_stream: Callable[..., Iterable[str]], profile: str,
                   options: MonitorOptions, presenter: Presenter, where: str,
                   save: Path | None = None) -> Summary:
    """Monitor a board through one long-lived remote loop opened by `open_stream`."""
    argv = stream_command(profile, options.interval)
    reader = shlex.join(READERS[profile])
    writer = CaptureWriter(save) if save is not None else None
    stream = open_stream(argv, silence=options.silence)
    start = time.monotonic()
    lines = board_lines(stream, where, reader)
    if writer is not None:
        lines = writer.tee(lines)
    snapshots = split_snapshots(lines, f"{where} ({reader})", marker=SNAPSHOT_MARKER,
                                profile=profile)
    fmt = FORMATS[profile]
    title = f"{where} (Elk Audio OS {profile}, {fmt.counter} from `{reader}`)"
    try:
        summary = watch(snapshots, options, presenter, title,
                        lambda index: (time.monotonic() - start, _now()))
    except StreamSilent as silent:
        raise BoardUnresponsive(
            f"{where}: no snapshot for {silent.seconds:g} s, {time.monotonic() - start:.1f} s "
            f"into monitoring: the board or the network stopped answering",
            "check that the board runs and is reachable; nothing seen is not a clean run") from None
    finally:
        close = getattr(stream, "close", None)
        if close is not None:
            close()
        if writer is not None:
            writer.close()
    conclude(summary, options)
    if summary.stopped == "source ended":
        raise BoardError(f"{where}: the monitoring loop on the board ended after "
                         f"{time.monotonic() - start:.1f} s ({summary.snapshots} snapshots)",
                         "check the board's network and that the SSH session was not killed")
    return summary


def monitor_board(conn, options: MonitorOptions, presenter: Presenter,
                  expected_os: str | None = None, config_key: str | None = None,
                  save: Path | None = None) -> Summary:
    """Detect the OS profile of a connected board, then monitor it live."""
    where = conn.board.name if conn.board.name == conn.board.host else \
        f"{conn.board.name} ({conn.board.host})"
    profile = choose_profile(detect_profile(conn.executor), expected_os, where, config_key)
    return monitor_stream(conn.executor.stream, profile, options, presenter, where, save=save)
