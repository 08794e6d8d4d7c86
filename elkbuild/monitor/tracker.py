"""Counting mode switches: per-thread counts, deltas, and the increases that count.

Pure: time is passed in, so a replayed capture gives exactly what a live run gave.
A mode switch is a thread leaving the real-time domain for Linux; after start-up
the MSW (0.11) / ISW (1.x) count of every real-time thread must stay constant.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Iterator

from elkbuild.monitor.parsers import FORMATS, Snapshot, ThreadRow



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
