"""Deploy to, and roll back, several boards at once: one parallel run through the
fleet helper, one DeployResult per board (a board that raised carries its error),
one summary table."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Sequence

from rich.table import Column

from elkbuild.board.connection import ConnectOptions
from elkbuild.deploy.deployer import DeployResult, deploy_to_board, rollback
from elkbuild.deploy.fleet import BoardProgress, GroupResult, on_boards
from elkbuild.deploy.payload import Payload
from elkbuild.reporting import LOG, Reporter
from elkbuild.sushi.service import SushiSettings

if TYPE_CHECKING:
    from elkbuild.config import Board

SettingsOf = Callable[["Board"], SushiSettings]


def deploy_many(boards: Sequence[Board], payload: Payload, settings_of: SettingsOf, *,
                options: ConnectOptions = ConnectOptions(), show_progress: bool = True,
                lock_wait: int = 10, reporter: Reporter | None = None,
                verify: bool = False, abi_check: bool = True) -> GroupResult[DeployResult]:
    """Deploy to several boards in parallel, one progress line per board (a dry run
    when `options.dry_run`). Each board's bundles pass the ABI gate for that board's
    OS line first: a board they do not fit fails, untouched; the others go on."""

    def one(board: Board, line: BoardProgress) -> DeployResult:
        return deploy_to_board(board, payload, settings_of(board),
                               trust_host_key=options.trust_host_key, password=options.password,
                               progress=line.advance, lock_wait=lock_wait,
                               dry_run=options.dry_run, verify=verify, abi_check=abi_check)

    group = on_boards(boards, one, reporter=reporter or Reporter(), show_progress=show_progress,
                      bytes_done=lambda r: r.bytes_sent)
    return with_failures_as_results(group)


def rollback_many(boards: Sequence[Board], settings_of: SettingsOf, *,
                  options: ConnectOptions = ConnectOptions(),
                  lock_wait: int = 10) -> GroupResult[DeployResult]:
    """Roll several boards back in parallel."""
    group = on_boards(boards, lambda board, _line: rollback(
        board, settings_of(board), trust_host_key=options.trust_host_key,
        password=options.password, lock_wait=lock_wait), reporter=LOG)
    return with_failures_as_results(group)


def with_failures_as_results(group: GroupResult[DeployResult]) -> GroupResult[DeployResult]:
    """Every board gets a DeployResult; one that raised carries its error as message."""
    for name, message in group.errors.items():
        group.values[name] = DeployResult(host=name, ok=False, message=message)
    group.errors.clear()
    return group


def summary_rows(group: GroupResult[DeployResult]) -> list[list[str]]:
    """The deploy table: one row per board."""
    return [[r.host, r.verdict, r.release or "-", str(r.files_sent), f"{r.bytes_sent:,}",
             str(r.files_linked), f"{r.seconds:.1f}s", r.message] for r in group]


SUMMARY_COLUMNS = tuple(Column(name, overflow="fold") for name in (
    "board", "result", "release", "sent", "bytes", "linked", "time", "note"))
"""The deploy table's columns: long release names fold instead of being cut."""
