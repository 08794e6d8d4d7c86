"""Which boards a command acts on: named ones, ad-hoc addresses, or all configured."""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

from elkbuild.errors import UsageError

if TYPE_CHECKING:
    from elkbuild.config import Board, Config
    from elkbuild.executor import Executor


class NoBoardChosen(UsageError):
    """The command's targets do not fit it; `why` is none-configured, none-given or not-one
    (the task layer turns it into a hint naming its flags)."""

    def __init__(self, message: str, hint: str, why: str) -> None:
        super().__init__(message, hint)
        self.why = why


def select_boards(cfg: Config, hosts: Sequence[str] = (), names: Sequence[str] = (),
                  every: bool = False, port: int | None = None, user: str | None = None,
                  os_version: str | None = None, *, executor: Executor) -> list[Board]:
    """Boards by address (`hosts`), by name in the configuration, or every one; with
    none given, the only configured board. Each (host, port) once. `executor` looks
    at emulated boards (their instances on this machine)."""
    chosen: list[Board] = []
    if every:
        chosen.extend(cfg.boards.values())
        if not chosen:
            raise NoBoardChosen("all boards: no boards are configured",
                                "add a boards: section to elkbuild.yaml", "none-configured")
    # --port/--user/--os-version describe --host when one is given
    flags = {} if hosts else {"port": port, "user": user, "os_version": os_version}
    chosen.extend(named_board(cfg, name, executor, **flags) for name in names)
    chosen.extend(cfg.board_for_host(host, port=port, user=user, os_version_=os_version)
                  for host in hosts)
    if not chosen:
        configured = list(cfg.boards.values())
        if len(configured) == 1:
            return configured
        raise NoBoardChosen("which board? none given",
                            "name a host, or a board from elkbuild.yaml", "none-given")
    unique: dict[tuple[str, int], Board] = {}
    for board in chosen:
        unique.setdefault((board.host, board.port), board)
    return list(unique.values())


def named_board(cfg: Config, name: str, executor: Executor, **flags: object) -> Board:
    """A board from the configuration or, for a name it does not hold, the emulated
    board that name means (`emulated`, `emulated:NAME`, an instance's NAME)."""
    from elkbuild.emulated_board.target import emulated_target, instance_board, instance_of

    if name in cfg.boards:
        return cfg.board(name)
    instance = instance_of(name, cfg.cache_dir, executor)
    if instance is None:
        return cfg.board(name)  # its "no board named" error
    return emulated_target(cfg, instance_board(instance, cfg.cache_dir, executor), **flags)


def only_board(boards: Sequence[Board]) -> Board:
    """The one board of a command that acts on a single board."""
    if len(boards) != 1:
        raise NoBoardChosen(f"this command acts on one board; {len(boards)} given",
                            "name a single board", "not-one")
    return boards[0]
