"""The emulated board as a board every board task can name: `--board emulated`
(the instance `default`), `--board emulated:NAME`, or an instance's bare NAME.

It is reached as the demo reaches it: elkbuild's own client key, and the host key
recorded from the instance (no --trust-host-key, no password). Its port and Elk
Audio OS line are the running instance's.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from elkbuild.emulated_board.instance import DEFAULT_NAME, EmulatedBoard
from elkbuild.errors import BoardError, UsageError
from elkbuild.executor import Executor

if TYPE_CHECKING:
    from elkbuild.config import Board, Config

EMULATED = "emulated"
OS_SOURCE = "the emulated board's profile"
"""Where an emulated board's os_version comes from, for messages."""


def instance_of(name: str, cache_dir: Path, executor: Executor) -> str | None:
    """The instance a board name means (`emulated`, `emulated:NAME`, or the NAME of an
    instance that exists), or None when it names no emulated board."""
    if name == EMULATED:
        return DEFAULT_NAME
    if name.startswith(f"{EMULATED}:"):
        return name.partition(":")[2]
    board = EmulatedBoard(executor, cache_dir, name=name) if _plain(name) else None
    return name if board is not None and board.instance_dir.is_dir() else None


def _plain(name: str) -> bool:
    return bool(name) and "/" not in name and not name.startswith(".")


def board_name(instance: str) -> str:
    """The board name that means `instance` (`emulated` for the default one)."""
    return EMULATED if instance == DEFAULT_NAME else f"{EMULATED}:{instance}"


def instance_board(instance: str, cache_dir: Path, executor: Executor) -> EmulatedBoard:
    """The emulated board instance called `instance`, refused when that is no name."""
    if not _plain(instance):
        raise UsageError(f"--board {board_name(instance)!r}: not an emulated board name",
                         "use --board emulated, or emulated:NAME for `invoke board-up --name NAME`")
    return EmulatedBoard(executor, cache_dir, name=instance)


def emulated_target(cfg: Config | None, instance: EmulatedBoard, **flags: Any) -> Board:
    """The running instance as a board: its address, OS line, recorded host key and
    client key, on the project's board defaults (timeouts, folders). `flags` are
    --port/--user/--os-version: refused when they disagree with the instance."""
    from elkbuild.config import Board

    name = board_name(instance.name)
    if not instance.is_running():
        start = "" if instance.name == DEFAULT_NAME else f" --name {instance.name}"
        raise BoardError(f"board {name!r}: the emulated board {instance.name!r} is not running",
                         f"start it with `invoke board-up{start}` (or `invoke demo`)")
    for flag, given, has in (("port", flags.get("port"), instance.port),
                             ("user", flags.get("user"), instance.user),
                             ("os-version", flags.get("os_version"), instance.os_version)):
        if given and str(given) != str(has):
            raise UsageError(f"--{flag} {given!r}: the emulated board {instance.name!r} has "
                             f"{has!r}", f"leave --{flag} out (to change the OS line: "
                             f"`invoke board-up --os ...`)" if flag == "os-version"
                             else f"leave --{flag} out")
    known_hosts = instance.instance_dir / "known_hosts"
    instance.record_host_key(known_hosts)
    entry = {"host": instance.host, "port": int(instance.port), "user": instance.user,
             "os_version": instance.os_version, "auth": "key", "known_hosts": known_hosts,
             "identity_file": Path(instance.client_key)}
    if cfg is None:
        return Board(name=name, **entry)
    return cfg.board_from_defaults(name, entry)
