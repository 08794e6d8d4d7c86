"""Where snapshots come from: the board, through ONE long-lived remote loop (no new
SSH session or process per poll), or a capture saved earlier.

The loop's lines arrive through the executor's `stream`; a capture is a file of
reports one after another, exactly as the board's reader printed them.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Iterable, Iterator

from elkbuild.errors import BoardError, UsageError
from elkbuild.executor import Executor
from elkbuild.monitor.parsers import FORMATS

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
