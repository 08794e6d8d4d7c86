"""Real-time safety monitor: source -> parser -> tracker -> presenter.

- Source: lines of mode-switch reports, either from ONE long-lived remote loop on
  the board (no new SSH session or process per poll) or from a saved capture.
- Parser: elkbuild.monitor.parsers (pure).
- Tracker: per-thread counts, deltas, and the increases that count as mode switches
  (pure; time is passed in, so captures replay exactly like a live run).
- Presenter: a live table (rich) or one JSON object per snapshot.

A mode switch is a thread leaving the real-time domain for Linux; after start-up
the MSW (0.11) / ISW (1.x) count of every real-time thread must stay constant.
"""

from __future__ import annotations

import datetime as _dt
import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, Protocol

from elkbuild.errors import BoardError, ModeSwitchDetected, UsageError
from elkbuild.executor import Executor
from elkbuild.monitor.parsers import FORMATS, Snapshot, ThreadRow, split_snapshots

# --------------------------------------------------------------------------- options

DEFAULT_INTERVAL = 0.5
DEFAULT_GRACE = 3.0
MIN_INTERVAL = 0.05


@dataclass(frozen=True)
class MonitorOptions:
    interval: float = DEFAULT_INTERVAL
    duration: float | None = None
    grace: float = DEFAULT_GRACE
    fail_on_switch: bool = False

    def __post_init__(self) -> None:
        if not self.interval >= MIN_INTERVAL:
            raise UsageError(f"--interval {self.interval}: must be at least {MIN_INTERVAL} s",
                             "the board is polled once per interval; 0.5 is a good start")
        if self.duration is not None and not self.duration > 0:
            raise UsageError(f"--duration {self.duration}: must be more than 0 s",
                             "leave it out to monitor until Ctrl-C")
        if not self.grace >= 0:
            raise UsageError(f"--grace {self.grace}: must be 0 s or more",
                             "the start-up switches of a new thread fall in this window")


# --------------------------------------------------------------------------- tracker

@dataclass(frozen=True)
class ThreadStatus:
    """One thread in one snapshot, as presented."""

    pid: int
    name: str
    cpu: int
    count: int
    delta: int        # since the previous snapshot
    total: int        # since the thread was first seen (or its counter restarted)
    new: bool         # first seen in this snapshot
    reset: bool       # its counter went down: restarted under the same pid and name
    flagged: bool     # this snapshot's delta counts as a mode switch

    def to_json(self) -> dict:
        return {"pid": self.pid, "name": self.name, "cpu": self.cpu, "count": self.count,
                "delta": self.delta, "total": self.total, "new": self.new,
                "reset": self.reset}


@dataclass(frozen=True)
class Increase:
    """A count that went up after the thread's grace period: a mode switch."""

    pid: int
    name: str
    before: int
    after: int
    elapsed: float

    @property
    def delta(self) -> int:
        return self.after - self.before

    def to_json(self) -> dict:
        return {"pid": self.pid, "name": self.name, "before": self.before,
                "after": self.after, "delta": self.delta}

    def describe(self, counter: str) -> str:
        return (f"{self.name} (pid {self.pid}): {counter} {self.before} -> {self.after} "
                f"(+{self.delta}) at {self.elapsed:.1f} s")


@dataclass(frozen=True)
class SnapshotReport:
    index: int
    elapsed: float
    wallclock: str | None
    profile: str
    counter: str
    threads: tuple[ThreadStatus, ...]
    increases: tuple[Increase, ...]
    gone: tuple[tuple[int, str], ...]

    def to_json(self) -> dict:
        return {"snapshot": self.index, "timestamp": round(self.elapsed, 3),
                "wallclock": self.wallclock, "profile": self.profile,
                "counter": self.counter,
                "threads": [t.to_json() for t in self.threads],
                "increases": [i.to_json() for i in self.increases],
                "gone": [{"pid": pid, "name": name} for pid, name in self.gone]}


ThreadKey = tuple[int, str, int]


@dataclass
class _Tracked:
    row: ThreadRow
    baseline: int
    since: float


def thread_keys(rows: Iterable[ThreadRow]) -> Iterator[tuple[ThreadKey, ThreadRow]]:
    """Key threads by pid and name; per-CPU kernel threads can share both (pid 0,
    `[IRQ16: [timer]]` on every CPU), so repeats are numbered in report order."""
    seen: dict[tuple[int, str], int] = {}
    for row in rows:
        nth = seen.get((row.pid, row.name), 0)
        seen[(row.pid, row.name)] = nth + 1
        yield (row.pid, row.name, nth), row


class SwitchTracker:
    """Follows counts from snapshot to snapshot and decides what is a mode switch.

    Each thread has its own grace period from when it was first seen, so a Sushi
    restarted mid-run (new pid) gets its start-up switches tolerated too. A count
    that goes down means the counter restarted (same pid and name reused, or a
    32-bit wrap): the thread is re-based, not flagged.
    """

    # Threads missing from a report are remembered: one that comes back under the
    # same pid and name is the same thread (a report taken mid-update can miss a
    # row), and must not get a fresh grace period.
    REMEMBER_GONE = 256

    def __init__(self, grace: float) -> None:
        self.grace = grace
        self.threads: dict[ThreadKey, _Tracked] = {}
        self.gone: dict[ThreadKey, _Tracked] = {}
        self.increases: list[Increase] = []
        self.snapshots = 0

    def update(self, snapshot: Snapshot, elapsed: float,
               wallclock: str | None = None) -> SnapshotReport:
        fmt = FORMATS[snapshot.profile]
        current: dict[ThreadKey, _Tracked] = {}
        statuses: list[ThreadStatus] = []
        flagged: list[Increase] = []
        for key, row in thread_keys(snapshot.rows):
            known = self.threads.get(key) or self.gone.pop(key, None)
            new = known is None
            reset = known is not None and row.switches < known.row.switches
            if known is None or reset:
                tracked = _Tracked(row, row.switches, elapsed)
                delta = 0
            else:
                tracked = _Tracked(row, known.baseline, known.since)
                delta = row.switches - known.row.switches
            is_switch = delta > 0 and elapsed - tracked.since >= self.grace
            if is_switch:
                assert known is not None
                flagged.append(Increase(row.pid, row.name, known.row.switches,
                                        row.switches, elapsed))
            current[key] = tracked
            statuses.append(ThreadStatus(row.pid, row.name, row.cpu, row.switches, delta,
                                         row.switches - tracked.baseline, new, reset,
                                         is_switch))
        gone = tuple((key[0], key[1]) for key in self.threads if key not in current)
        for key, tracked in self.threads.items():
            if key not in current:
                self.gone[key] = tracked
        while len(self.gone) > self.REMEMBER_GONE:
            del self.gone[next(iter(self.gone))]
        self.threads = current
        self.increases.extend(flagged)
        report = SnapshotReport(self.snapshots, elapsed, wallclock, fmt.profile, fmt.counter,
                                tuple(statuses), tuple(flagged), gone)
        self.snapshots += 1
        return report


# --------------------------------------------------------------------------- sources

SNAPSHOT_MARKER = "--elkbuild-monitor-snapshot--"
FAILURE_MARKER = "--elkbuild-monitor-failed--"
XENOMAI_STAT = "/proc/xenomai/sched/stat"

READERS: dict[str, list[str]] = {
    "0.11": ["cat", XENOMAI_STAT],
    "1.x": ["evl", "ps", "-s"],
}

PROBE_SCRIPT = (
    f"if [ -r {shlex.quote(XENOMAI_STAT)} ]; then echo 0.11; "
    "elif command -v evl >/dev/null 2>&1; then echo 1.x; else echo none; fi"
)


def detect_profile(executor: Executor) -> str | None:
    """0.11 if Cobalt's stat file exists, 1.x if the `evl` tool does, else None."""
    found = executor.run(["sh", "-c", PROBE_SCRIPT]).stdout.strip()
    return found if found in FORMATS else None


def choose_profile(detected: str | None, configured: str | None, where: str,
                   config_key: str | None) -> str:
    """The profile to monitor; a configured os_version must agree with the board."""
    if detected is None:
        raise BoardError(f"{where}: neither {XENOMAI_STAT} (Elk Audio OS 0.11) nor the `evl` "
                         f"tool (1.x) was found; no real-time kernel to monitor",
                         "is this an Elk Audio OS board, and is Sushi's kernel running?")
    if configured is not None and config_key is not None and configured != detected:
        raise BoardError(f"{where}: {config_key} is {configured!r} but the board runs "
                         f"Elk Audio OS {detected}",
                         f"set {config_key}: {detected!r} in elkbuild.yaml")
    return detected


def stream_command(profile: str, interval: float) -> list[str]:
    """ONE remote process that prints a report, a marker, and sleeps, forever.

    The marker closes each snapshot at once (no waiting for the next header). A
    failing reader ends the loop with a failure marker after its own message.
    """
    reader = shlex.join(READERS[profile])
    script = (f"while :; do {reader} 2>&1 || {{ echo {FAILURE_MARKER}; exit 1; }}; "
              f"echo {SNAPSHOT_MARKER}; sleep {interval:g}; done")
    return ["sh", "-c", script]


def board_lines(lines: Iterable[str], where: str, reader: str) -> Iterator[str]:
    """Pass the remote loop's lines on one report at a time (held until its
    marker), so a failing reader's message becomes one BoardError instead of a
    parse error."""
    held: list[str] = []
    for line in lines:
        marker = line.strip()
        if marker == FAILURE_MARKER:
            said = " ".join(" ".join(held).split()) or "no output"
            raise BoardError(f"{where}: `{reader}` failed on the board: {said[:200]}",
                             "check that Sushi's real-time kernel is loaded and that the "
                             "board user may read it")
        held.append(line)
        if marker == SNAPSHOT_MARKER:
            yield from held
            held = []
    yield from held


def capture_lines(path: Path) -> Iterator[str]:
    """The lines of a saved capture; the file is opened at once so a wrong path
    is reported before anything is shown."""
    try:
        handle = path.open(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        raise UsageError(f"--source {path}: no such file",
                         "give a capture saved from `cat /proc/xenomai/sched/stat` or "
                         "`evl ps -s`") from None
    except OSError as exc:
        raise UsageError(f"--source {path}: cannot be read: {exc.strerror}") from None

    def lines() -> Iterator[str]:
        with handle:
            yield from handle

    return lines()


# --------------------------------------------------------------------------- presenters

class Presenter(Protocol):
    def start(self, title: str) -> None: ...
    def show(self, report: SnapshotReport) -> None: ...
    def finish(self, summary: Summary) -> None: ...
    def abort(self) -> None: ...


@dataclass
class Summary:
    title: str
    counter: str
    grace: float
    snapshots: int = 0
    stopped: str = "source ended"
    increases: list[Increase] = field(default_factory=list)
    last: SnapshotReport | None = None

    def message(self) -> str:
        if not self.increases:
            return (f"no mode switches after the {self.grace:g} s grace period "
                    f"({self.snapshots} snapshots)")
        first = self.increases[0]
        more = f"; first: {first.describe(self.counter)}"
        threads = sorted({(i.name, i.pid) for i in self.increases})
        names = ", ".join(f"{name} (pid {pid})" for name, pid in threads)
        return (f"{len(self.increases)} mode-switch increase(s) after the {self.grace:g} s "
                f"grace period in {names}{more}")


class JsonPresenter:
    """One JSON object per snapshot on stdout, for CI."""

    def __init__(self, emit: Callable[[dict], None]) -> None:
        self.emit = emit

    def start(self, title: str) -> None:
        pass

    def show(self, report: SnapshotReport) -> None:
        self.emit(report.to_json())

    def finish(self, summary: Summary) -> None:
        pass

    def abort(self) -> None:
        pass


class TablePresenter:
    """A live table on a terminal; elsewhere one line per switch and a final table.

    Every switch is also printed as a line of its own the moment it is seen, so it
    stays visible (and in a scrollback or log) after the table moves on.
    """

    def __init__(self, console=None) -> None:
        from rich.console import Console

        self.console = console or Console()
        self.live = None
        self.title = ""
        self.flag_counts: dict[tuple[int, str], int] = {}

    def start(self, title: str) -> None:
        self.title = title
        self.console.print(f"monitoring {title}", highlight=False)
        if self.console.is_terminal:
            from rich.live import Live

            self.live = Live(console=self.console, auto_refresh=False, transient=False)
            self.live.start()

    def show(self, report: SnapshotReport) -> None:
        for increase in report.increases:
            key = (increase.pid, increase.name)
            self.flag_counts[key] = self.flag_counts.get(key, 0) + increase.delta
            self.console.print(f"[bold red]MODE SWITCH[/] {increase.describe(report.counter)}",
                               highlight=False)
        if self.live is not None:
            self.live.update(self.table(report), refresh=True)

    def abort(self) -> None:
        """An error ends the run: leave the terminal clean for its one-line message."""
        if self.live is not None:
            self.live.stop()
            self.live = None

    def finish(self, summary: Summary) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None
        elif summary.last is not None:
            self.console.print(self.table(summary.last))
        if summary.snapshots == 0:
            return
        style = "bold red" if summary.increases else "green"
        self.console.print(f"[{style}]{summary.message()}[/]", highlight=False)

    def table(self, report: SnapshotReport):
        from rich.table import Table
        from rich.text import Text

        table = Table(title=f"t={report.elapsed:.1f} s, snapshot {report.index}",
                      title_justify="left")
        for column, justify in (("CPU", "right"), ("PID", "right"), ("NAME", "left"),
                                (report.counter, "right"), ("Δ", "right"),
                                ("since start", "right"), ("flagged", "right")):
            table.add_column(column, justify=justify)  # type: ignore[arg-type]
        for thread in report.threads:
            flagged = self.flag_counts.get((thread.pid, thread.name), 0)
            style = "bold red" if thread.flagged else ("yellow" if thread.delta else "")
            note = " (new)" if thread.new else (" (restarted)" if thread.reset else "")
            table.add_row(str(thread.cpu), str(thread.pid), Text(thread.name + note),
                          str(thread.count), f"+{thread.delta}" if thread.delta else "",
                          str(thread.total), str(flagged) if flagged else "", style=style)
        return table


# --------------------------------------------------------------------------- the loop

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


class CaptureWriter:
    """Saves what the board printed as a capture `--source` can replay: reports
    one after another, exactly as the reader printed them. Written to a temporary
    name and renamed when the run ends, so a capture is never half a line."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.partial = path.with_name(f".{path.name}.partial")
        try:
            self.handle = self.partial.open("w", encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"--save {path}: cannot be written: {exc.strerror}") from None

    def tee(self, lines: Iterable[str]) -> Iterator[str]:
        for line in lines:
            if line.strip() != SNAPSHOT_MARKER:
                self.handle.write(line + "\n")
            else:
                self.handle.flush()
            yield line

    def close(self) -> None:
        self.handle.close()
        self.partial.replace(self.path)


def monitor_stream(open_stream: Callable[[list[str]], Iterable[str]], profile: str,
                   options: MonitorOptions, presenter: Presenter, where: str,
                   save: Path | None = None) -> Summary:
    """Monitor a board through one long-lived remote loop opened by `open_stream`."""
    argv = stream_command(profile, options.interval)
    reader = shlex.join(READERS[profile])
    writer = CaptureWriter(save) if save is not None else None
    stream = open_stream(argv)
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
    return monitor_stream(conn.stream, profile, options, presenter, where, save=save)
