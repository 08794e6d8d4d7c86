"""Pure parsers for the two mode-switch reports of Elk Audio OS.

- 0.11 (Xenomai 3, Cobalt): `cat /proc/xenomai/sched/stat`, counter column MSW.
- 1.x (Xenomai 4, EVL): `evl ps -s`, counter column ISW (in-band switches).

A capture is any number of such reports one after another; each starts with its
header line. `split_snapshots` turns a stream of lines (a file, or the output of
one long-lived remote loop) into parsed snapshots as soon as each one is complete.
Nothing here does I/O: the transport lives in elkbuild.monitor.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

from elkbuild.errors import CaptureError


@dataclass(frozen=True)
class ThreadRow:
    """One thread in one report. `switches` is MSW (0.11) or ISW (1.x)."""

    cpu: int
    pid: int
    name: str
    switches: int

    @property
    def kernel(self) -> bool:
        # Both kernels print threads without a user-space counterpart in brackets.
        return self.name.startswith("[") and self.name.endswith("]")


@dataclass(frozen=True)
class Snapshot:
    """One complete report: its rows, and the line its header was on."""

    profile: str
    rows: tuple[ThreadRow, ...]
    line: int


class RowError(ValueError):
    """A row does not have the report's layout; the text says which column."""


def _whole(column: str, text: str) -> int:
    if not text.isdigit():
        raise RowError(f"{column} is {text!r}, expected a whole number")
    return int(text)


# --------------------------------------------------------------------------- 0.11

XENOMAI_HEADER = ("CPU", "PID", "MSW", "CSW", "XSC", "PF", "STAT", "%CPU", "NAME")
_HEX = re.compile(r"[0-9a-fA-F]{1,8}")
_PERCENT = re.compile(r"\d+\.\d")


def parse_xenomai_row(line: str) -> ThreadRow:
    """A row of /proc/xenomai/sched/stat.

    Cobalt prints every numeric column with at least one space after it, so the
    first eight columns split on whitespace; NAME is the rest of the line and may
    hold spaces and nested brackets (`[IRQ16: [timer]]`).
    """
    parts = line.split(None, 8)
    if len(parts) < 9:
        raise RowError(f"expected 9 columns ({' '.join(XENOMAI_HEADER)}), found {len(parts)}")
    cpu, pid, msw, csw, xsc, pf, stat, percent, name = parts
    row = ThreadRow(cpu=_whole("CPU", cpu), pid=_whole("PID", pid), name=name.rstrip(),
                    switches=_whole("MSW", msw))
    for column, value in (("CSW", csw), ("XSC", xsc), ("PF", pf)):
        _whole(column, value)
    if not _HEX.fullmatch(stat):
        raise RowError(f"STAT is {stat!r}, expected up to 8 hex digits")
    if not _PERCENT.fullmatch(percent):
        raise RowError(f"%CPU is {percent!r}, expected a number like 12.5")
    return row


# --------------------------------------------------------------------------- 1.x

EVL_HEADER = ("CPU", "PID", "ISW", "CTXSW", "SYS", "RWA", "STAT", "NAME")
# Field widths of `evl ps -s` (libevl utils/evl-ps.c): "%3d   " "%-6d" "%-8ld"
# "%-10ld" x3, then " %-8s" for STAT, then the name. A value as wide as its field
# is printed with no separator, so a pid of 6+ digits runs into ISW and a CTXSW of
# 10+ digits into SYS. The column where the next value starts tells them apart.
_CPU_GAP = 3
_PID_WIDTH = 6
_ISW_WIDTH = 8
_RWA_WIDTH = 10
_STAT_WIDTH = 8
_STAT_LABELS = re.compile(r"[SWwDpRUZXHb#rtTo]+")
_RUN = re.compile(r"\s*(\d+)(?=\s|$)")


def _digit_runs(line: str, limit: int) -> tuple[list[tuple[int, str]], int]:
    """Leading whitespace-separated digit runs as (column, digits); and where they end."""
    runs: list[tuple[int, str]] = []
    pos = 0
    while len(runs) < limit:
        match = _RUN.match(line, pos)
        if match is None:
            break
        runs.append((match.start(1), match.group(1)))
        pos = match.end()
    return runs, pos


def parse_evl_row(line: str) -> ThreadRow:
    """A row of `evl ps -s`. STAT may be blank (a running thread shows no flag)."""
    runs, end = _digit_runs(line, 6)
    if len(runs) < 3:
        raise RowError(f"expected the columns {' '.join(EVL_HEADER)}, found {line.strip()!r}")
    cpu = int(runs[0][1])
    pid_column, pid_text = runs[1]
    if len(pid_text) < _PID_WIDTH:
        pid, isw_text = int(pid_text), runs[2][1]
        counters = runs[3:]
    else:
        # PID ran into ISW; ISW is padded to its width, so CTXSW starts exactly
        # _ISW_WIDTH columns after the pid ends.
        pid_len = runs[2][0] - pid_column - _ISW_WIDTH
        if not _PID_WIDTH <= pid_len < len(pid_text):
            raise RowError(f"PID and ISW run together as {pid_text!r} and cannot be told apart")
        pid, isw_text = int(pid_text[:pid_len]), pid_text[pid_len:]
        counters = runs[2:]
    if len(isw_text) >= _ISW_WIDTH:
        raise RowError(f"ISW ran into CTXSW as {isw_text!r} (a count of "
                       f"{_ISW_WIDTH}+ digits has no separator)")
    counters = counters[:3]
    if counters:
        end = counters[-1][0] + len(counters[-1][1])
    rest = line[end:].rstrip("\r\n")
    name = None
    if len(counters) == 3:
        name = _evl_name_with_layout(counters[2][1], rest)
    if name is None:
        name = _evl_name_by_tokens(rest)
    if not name:
        raise RowError("NAME is empty")
    return ThreadRow(cpu=cpu, pid=pid, name=name, switches=int(isw_text))


def _evl_name_with_layout(rwa: str, rest: str) -> str | None:
    """The name, found from the exact field widths; None if the row does not fit them."""
    pad = max(0, _RWA_WIDTH - len(rwa)) + 1
    if len(rest) < pad + _STAT_WIDTH or rest[:pad].strip():
        return None
    rest = rest[pad:]
    stat = rest.split(" ", 1)[0]
    if stat and not _STAT_LABELS.fullmatch(stat):
        return None
    width = max(_STAT_WIDTH, len(stat))
    if rest[len(stat):width].strip():
        return None
    name = rest[width:]
    return name if name and not name[0].isspace() else None


def _evl_name_by_tokens(rest: str) -> str:
    """The name when a wide number shifted the layout: STAT is the first word only
    if it is made of state labels and more text follows."""
    words = rest.strip().split(None, 1)
    if len(words) == 2 and _STAT_LABELS.fullmatch(words[0]):
        return words[1]
    return rest.strip()


# --------------------------------------------------------------------------- formats

@dataclass(frozen=True)
class ReportFormat:
    profile: str
    counter: str
    header: tuple[str, ...]
    parse_row: Callable[[str], ThreadRow]
    produced_by: str


FORMATS: dict[str, ReportFormat] = {
    "0.11": ReportFormat("0.11", "MSW", XENOMAI_HEADER, parse_xenomai_row,
                         "cat /proc/xenomai/sched/stat"),
    "1.x": ReportFormat("1.x", "ISW", EVL_HEADER, parse_evl_row, "evl ps -s"),
}


def header_profile(line: str) -> str | None:
    """The profile whose header this line is, or None."""
    words = tuple(line.split())
    for profile, fmt in FORMATS.items():
        if words == fmt.header:
            return profile
    return None


def split_snapshots(lines: Iterable[str], source: str, *, marker: str | None = None,
                    profile: str | None = None) -> Iterator[Snapshot]:
    """Parse a stream of report lines into snapshots, yielding each once complete.

    A snapshot ends at the next header, at `marker` (the live loop prints one
    after each report so a snapshot is seen without waiting for the next), or at
    the end of the stream. A header with no rows is an empty snapshot: every thread
    is gone. `profile`, when given, is the format the caller expects.
    Any line that fits neither layout raises CaptureError naming source and line.
    """
    fmt: ReportFormat | None = FORMATS[profile] if profile else None
    rows: list[ThreadRow] | None = None
    header_line = 0
    number = 0
    for number, raw in enumerate(lines, start=1):
        line = raw.rstrip("\r\n")
        if not line.strip():
            continue
        if marker is not None and line.strip() == marker:
            if rows is not None:
                yield Snapshot(fmt.profile, tuple(rows), header_line)  # type: ignore[union-attr]
                rows = None
            continue
        found = header_profile(line)
        if found is not None:
            if fmt is not None and found != fmt.profile:
                raise CaptureError(source, number, line,
                                   f"a {found} header ({FORMATS[found].produced_by}) where "
                                   f"{fmt.profile} reports ({fmt.produced_by}) were expected",
                                   "keep one OS version per capture; check the board's os_version")
            if rows is not None:
                yield Snapshot(found, tuple(rows), header_line)
            fmt, rows, header_line = FORMATS[found], [], number
            continue
        if rows is None or fmt is None:
            expected = " or ".join(f"`{' '.join(f.header)}`" for f in
                                   ([fmt] if fmt else FORMATS.values()))
            raise CaptureError(source, number, line,
                               "a thread row before any header line",
                               f"each report must start with its header: {expected}")
        try:
            rows.append(fmt.parse_row(line))
        except RowError as error:
            raise CaptureError(source, number, line, f"not a {fmt.produced_by} row: {error}",
                               None) from None
    if rows is not None and fmt is not None:
        yield Snapshot(fmt.profile, tuple(rows), header_line)
