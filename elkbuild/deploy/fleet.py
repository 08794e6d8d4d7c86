"""Several boards at once: one operation per board in parallel, one group result.

Like fabric's GroupResult: every board either succeeded (its value) or failed (one
line saying why); one board's failure never stops the others.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Generic, Iterator, Sequence, TypeVar

from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

from elkbuild.board.interrupts import first_interrupt_cancels
from elkbuild.board.ssh_executor import CONNECTION_LOST
from elkbuild.errors import BoardError, ElkbuildError
from elkbuild.reporting import LOG, Reporter

if TYPE_CHECKING:
    from elkbuild.config import Board

T = TypeVar("T")
MAX_PARALLEL = 8


@dataclass
class GroupResult(Generic[T]):
    """Per board (in the order given): its value, or the error that stopped it."""

    boards: list[str] = field(default_factory=list)
    values: dict[str, T] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    raised: dict[str, ElkbuildError] = field(default_factory=dict)
    """The error behind each entry of `errors` (a single-board command re-raises it)."""

    @property
    def succeeded(self) -> dict[str, T]:
        """Boards whose operation finished and whose value says ok (when it says)."""
        return {name: self.values[name] for name in self.boards
                if name in self.values and getattr(self.values[name], "ok", True)}

    @property
    def failed(self) -> dict[str, str]:
        """Boards that failed, with why (an error, or a value that is not ok)."""
        failed = {name: getattr(value, "message", "failed")
                  for name, value in self.values.items() if not getattr(value, "ok", True)}
        failed.update(self.errors)
        return {name: failed[name] for name in self.boards if name in failed}

    @property
    def ok(self) -> bool:
        return not self.failed

    def __iter__(self) -> Iterator[T]:
        """The values in board order (boards that raised have none)."""
        return (self.values[name] for name in self.boards if name in self.values)

    def __len__(self) -> int:
        return len(self.boards)


Operation = Callable[["Board", "BoardProgress"], T]


class BoardProgress:
    """One board's line in the group's progress display (a no-op without one)."""

    def __init__(self, progress: Progress | None = None, task: Any = None) -> None:
        self._progress = progress
        self._task = task

    def advance(self, description: str, delta: int, total: int) -> None:
        if self._progress is not None:
            self._progress.update(self._task, advance=delta, total=total,
                                  description=description.rsplit("/", 1)[-1][:40])

    def finish(self, ok: bool, done: int) -> None:
        if self._progress is not None:
            size = max(done, 1)
            self._progress.update(self._task, description="done" if ok else "FAILED",
                                  total=size, completed=size)


def on_boards(boards: Sequence[Board], operation: Operation, *,
              reporter: Reporter = LOG, show_progress: bool = False,
              bytes_done: Callable[[T], int] = lambda value: 0) -> GroupResult[T]:
    """Run `operation(board, progress)` on every board in parallel.

    An ElkbuildError (or a lost connection) fails that board only. With
    `show_progress`, each board has a progress line on the reporter's console.
    The first Ctrl-C cancels every board's operation at its next step (each runs
    its own clean-up), then raises KeyboardInterrupt.
    """
    columns = (TextColumn("{task.fields[host]:<14}"), BarColumn(), DownloadColumn(),
               TransferSpeedColumn(), TextColumn("{task.description}"))
    display = Progress(*columns, console=reporter.console, transient=False,
                       disable=not show_progress or reporter.quiet)
    group: GroupResult[T] = GroupResult(boards=[board.name for board in boards])

    def one(board: Board) -> None:
        line = BoardProgress(display, display.add_task("connecting", host=board.name,
                                                       total=None))
        try:
            value = operation(board, line)
        except ElkbuildError as error:
            group.errors[board.name] = error.one_line()
            group.raised[board.name] = error
            line.finish(False, 0)
            return
        except CONNECTION_LOST as error:
            detail = " ".join(str(error).split())
            lost = BoardError(f"connection lost to {board.address}"
                              f"{': ' + detail if detail else ''} (network or board)",
                              "check the board's power and network")
            group.errors[board.name] = lost.message
            group.raised[board.name] = lost
            line.finish(False, 0)
            return
        group.values[board.name] = value
        line.finish(getattr(value, "ok", True), bytes_done(value))

    with first_interrupt_cancels(), display:
        if len(boards) == 1:
            one(boards[0])
        else:
            with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL, len(boards))) as pool:
                list(pool.map(one, boards))
    return group
