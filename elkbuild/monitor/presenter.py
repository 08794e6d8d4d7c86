"""Showing snapshots: a live table (rich) for people, one JSON object each for CI."""

from __future__ import annotations

from typing import Callable, Protocol

from elkbuild.monitor.tracker import SnapshotReport, Summary
from elkbuild.reporting import emit_json


class Presenter(Protocol):
    def start(self, title: str) -> None: ...
    def show(self, report: SnapshotReport) -> None: ...
    def finish(self, summary: Summary) -> None: ...
    def abort(self) -> None: ...


class JsonPresenter:
    """One JSON object per snapshot on stdout, for CI."""

    def __init__(self, emit: Callable[[dict], None] = emit_json) -> None:
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
