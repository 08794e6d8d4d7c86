"""The one reporter: what a long task shows while it works, and what it prints at the end.

- `step`: a stage begins or ends ("building image ...") — a line on stderr;
- `line`: output of the work itself (a compiler, apt) — a live one-line status on a
  terminal, every line with --verbose, nothing otherwise;
- `download`: a progress bar for a transfer of known size;
- `table`: a result for people; `emit`: a result for machines (--json, one object a line);
- `warn`: something the user should know that does not stop the task.

A library function takes a Reporter (default: `LOG`, which writes steps to the
elkbuild log only), so tests and --json runs stay quiet and tasks choose how to show.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from typing import Any, Iterator, Sequence

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn
from rich.table import Table

log = logging.getLogger("elkbuild")

PROG = "elkbuild"


def emit_json(obj: Any) -> None:
    """One JSON document per line on stdout, for CI to consume."""
    print(json.dumps(obj, sort_keys=True), flush=True)


class Reporter:
    """Progress on stderr (rich), results on stdout."""

    def __init__(self, *, verbose: bool = False, quiet: bool = False) -> None:
        self.console = Console(stderr=True, highlight=False)
        self.verbose = verbose
        self.quiet = quiet
        self._status: Any = None
        self._download: Progress | None = None
        self._download_task: Any = None

    @contextlib.contextmanager
    def live(self, title: str = "") -> Iterator[Reporter]:
        """A live status line for the duration (only on a terminal, without --verbose)."""
        if self.quiet or self.verbose or not self.console.is_terminal:
            yield self
            return
        with self.console.status(title, spinner="dots") as status:
            self._status = status
            try:
                yield self
            finally:
                self._status = None
                if self._download is not None:
                    self._download.stop()
                    self._download = None

    def step(self, text: str) -> None:
        if not self.quiet:
            self.console.print(text, markup=False)

    def line(self, text: str) -> None:
        if self.quiet:
            return
        if self.verbose:
            self.console.print("  " + text, markup=False, style="dim")
        elif self._status is not None and text.strip():
            self._status.update(text.strip()[:110])

    def download(self, done: int, total: int | None, what: str = "downloading") -> None:
        if self.quiet:
            return
        if self._download is None:
            self._download = Progress(what, BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                                      console=self.console, transient=True)
            self._download.start()
            self._download_task = self._download.add_task(what, total=total)
        self._download.update(self._download_task, completed=done, total=total)

    def warn(self, text: str) -> None:
        print(f"{PROG}: warning: {text}", file=sys.stderr)

    def table(self, columns: Sequence[str], rows: Sequence[Sequence[Any]], title: str | None = None) -> None:
        table = Table(*columns, title=title)
        for row in rows:
            table.add_row(*(str(cell) for cell in row))
        Console(highlight=False).print(table)

    def emit(self, obj: Any) -> None:
        emit_json(obj)


class LogReporter(Reporter):
    """Steps to the elkbuild log (INFO), work output at DEBUG (shown with --verbose)."""

    def __init__(self) -> None:
        super().__init__(quiet=True)

    def step(self, text: str) -> None:
        log.info("%s", text)

    def line(self, text: str) -> None:
        log.debug("  %s", text)


LOG = LogReporter()
