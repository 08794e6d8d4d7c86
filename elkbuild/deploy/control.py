"""Sushi on several boards at once: start, stop, restart and status through the
group helper, each board's result a dict (see sushi/service.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Sequence

from elkbuild.board.connection import ConnectOptions
from elkbuild.deploy.fleet import GroupResult, on_boards
from elkbuild.errors import UsageError
from elkbuild.sushi import service
from elkbuild.sushi.service import SushiSettings

if TYPE_CHECKING:
    from elkbuild.config import Board

ACTIONS = ("start", "stop", "restart", "status")


def sushi_action(board: Board, action: str, settings: SushiSettings, options: ConnectOptions,
                 config: str | None = None) -> dict[str, Any]:
    """One action on one board's Sushi."""
    if action not in ACTIONS:
        raise UsageError(f"Sushi action {action!r} is not known; allowed: " + ", ".join(ACTIONS))
    with options.open(board) as conn:
        if action == "status":
            return service.status(conn, settings)
        if action == "stop":
            return service.stop(conn, settings)
        return service.start(conn, settings, config, restart=action == "restart")


def sushi_on_boards(boards: Sequence[Board], action: str,
                    settings_of: Callable[[Board], SushiSettings], options: ConnectOptions,
                    config: str | None = None) -> GroupResult[dict[str, Any]]:
    """The same action on every board, in parallel."""
    return on_boards(boards, lambda board, _line: sushi_action(
        board, action, settings_of(board), options, config))


def summary_rows(group: GroupResult[dict[str, Any]]) -> list[list[str]]:
    """One row per board: its result's fields, or FAILED and why."""
    failed = group.failed
    rows = []
    for name in group.boards:
        if name in failed:
            rows.append([name, "FAILED", failed[name]])
        else:
            value = group.values[name]
            rows.append([name, "ok", " ".join(f"{k}={v}" for k, v in value.items()
                                               if k != "host")])
    return rows


SUMMARY_COLUMNS = ("board", "result", "details")
