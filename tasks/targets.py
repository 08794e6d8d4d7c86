"""The board-target flags every board task shares, defined once.

`board_task` is `elk_task` plus --host/--board/[--all]/--port/--user/--os-version/
--password/--trust-host-key (and, with `sushi=True`, the Sushi run flags); the
task body receives the chosen boards as a `Targets` instead of those flags.
"""

from __future__ import annotations

import inspect
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from elkbuild.cli import elk_task

from tasks.shell import load_for_boards

if TYPE_CHECKING:
    from elkbuild.board.connection import ConnectOptions
    from elkbuild.config import Board, Config
    from elkbuild.sushi.service import SushiSettings

BOARD_HELP = {
    "host": "board host name or address (repeatable: deploys in parallel)",
    "board": "a board named in elkbuild.yaml, or `emulated` (emulated:NAME) for the "
             "emulated board (repeatable)",
    "all": "every board in the configuration",
    "port": "SSH port for --host (default 22)",
    "user": "login user for --host (default mind)",
    "os_version": "Elk Audio OS line of --host: 0.11 or 1.x",
    "password": "ask for the board password (or set ELKBUILD_BOARD_PASSWORD); never stored",
    "trust_host_key": "accept and record an UNKNOWN host key (prints its fingerprint); "
                      "a changed key is always refused",
}
SUSHI_HELP = {
    "multicore_processing": "pass --multicore-processing=N to Sushi",
    "timing_statistics": "pass --timing-statistics to Sushi",
    "health_seconds": "how long Sushi must stay healthy after a start (default 3)",
}
_BOARD_DEFAULTS = {"host": None, "board": None, "all": False, "port": 0, "user": "",
                   "os_version": "", "password": False, "trust_host_key": False}
_SUSHI_DEFAULTS = {"multicore_processing": 0, "timing_statistics": False, "health_seconds": ""}
FLAG_LABELS = {"plugin": "--plugin", "model": "--model", "config": "--config", "rig": "--rig"}
"""How library messages name the values that came from these flags."""


@dataclass
class Targets:
    """The boards a task acts on, and how to reach them."""

    cfg: Config
    boards: list[Board]
    password_asked: bool
    trust_host_key: bool
    sushi_flags: dict[str, Any]

    def password(self, ask: bool | None = None) -> str | None:
        from elkbuild.board.passwords import resolve_password

        asked = self.password_asked if ask is None else ask
        return resolve_password(asked, self.boards[0] if len(self.boards) == 1 else None)

    def connect_options(self, *, dry_run: bool = False,
                        ask: bool | None = None) -> ConnectOptions:
        from elkbuild.board.connection import ConnectOptions

        return ConnectOptions(trust_host_key=self.trust_host_key, password=self.password(ask),
                              dry_run=dry_run)

    def only(self) -> Board:
        from elkbuild.board.selection import NoBoardChosen, only_board

        try:
            return only_board(self.boards)
        except NoBoardChosen as error:
            raise _flag_hint(error) from None

    def settings_of(self) -> Callable[[Board], SushiSettings]:
        """Sushi settings per board, from the profile, the config and the Sushi flags."""
        from elkbuild.sushi.service import settings_for

        flags = self.sushi_flags
        multicore = flags.get("multicore_processing")
        seconds = flags.get("health_seconds")
        return lambda board: settings_for(
            board, self.cfg, multicore=int(multicore) if multicore else None,
            timing_statistics=bool(flags.get("timing_statistics")),
            health_seconds=float(seconds) if seconds else None)


_SELECTION_HINTS = {
    "none-configured": "add a boards: section to elkbuild.yaml, or use --host",
    "none-given": "pass --host HOST, --board NAME (from elkbuild.yaml) or --all",
    "not-one": "pass a single --host or --board",
}


def _flag_hint(error: Any) -> Exception:
    """The selection error with a hint that names this command's flags."""
    from elkbuild.errors import UsageError

    message = error.message.replace("all boards:", "--all:")
    return UsageError(message, _SELECTION_HINTS.get(error.why, error.hint))


def flags_without_value(argv: list[str], names: tuple[str, ...] = ("--host", "--board")) -> list[str]:
    """Target flags given with no value. invoke turns `--host` alone (last, or
    before another flag) into an empty list, the same as no --host at all, and a
    missing target must never mean "the configured board"."""
    missing = []
    for index, word in enumerate(argv):
        name, eq, value = word.partition("=")
        if name not in names:
            continue
        if eq and not value.strip():
            missing.append(name)
        elif not eq and (index + 1 == len(argv) or argv[index + 1].startswith("-")):
            missing.append(name)
    return missing


def _check_flags(flags: dict[str, Any]) -> None:
    """Target and Sushi flags invoke cannot check, refused before any board is touched."""
    from elkbuild.config import os_version
    from elkbuild.errors import UsageError

    for name in flags_without_value(sys.argv[1:]):
        raise UsageError(f"{name} needs a value", f"give {name} VALUE, or leave {name} out")
    for name in ("host", "board"):
        if any(not str(value).strip() for value in flags.get(name) or ()):
            raise UsageError(f"--{name} needs a value", f"give --{name} VALUE")
    if flags.get("os_version"):
        try:
            os_version(flags["os_version"])
        except ValueError as exc:
            raise UsageError(f"--os-version {flags['os_version']!r}: {exc}",
                             "use 0.11 or 1.x") from None
    seconds = flags.get("health_seconds")
    if seconds not in (None, ""):
        try:
            value = float(seconds)
        except (TypeError, ValueError):
            value = -1.0
        if not 0 <= value <= 600:
            raise UsageError(f"--health-seconds {seconds!r}: not a number of seconds "
                             f"between 0 and 600", "for example --health-seconds 3")


def _select(cfg: Config, flags: dict[str, Any]) -> list[Board]:
    from elkbuild.board.selection import NoBoardChosen, select_boards
    from elkbuild.executor import LocalExecutor

    port = flags.get("port")
    try:
        return select_boards(cfg, flags.get("host") or (), flags.get("board") or (),
                             bool(flags.get("all")), int(port) if port else None,
                             flags.get("user") or None, flags.get("os_version") or None,
                             executor=LocalExecutor())
    except NoBoardChosen as error:
        raise _flag_hint(error) from None


def board_task(*, many: bool = True, sushi: bool = False, help: dict | None = None,
               iterable: tuple[str, ...] = ()) -> Callable:
    """Decorator over `def name(c, targets, ...own flags)`: adds the board flags."""

    def decorate(body: Callable) -> Any:
        own = list(inspect.signature(body).parameters.values())
        shared = dict(_BOARD_DEFAULTS)
        if not many:
            shared.pop("all")
        if sushi:
            shared.update(_SUSHI_DEFAULTS)
        params = [own[0]] + [inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                               default=default)
                             for name, default in shared.items()] + own[2:]

        signature = inspect.Signature(params)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            kwargs = dict(bound.arguments)
            c = kwargs.pop(own[0].name)
            flags = {name: kwargs.pop(name) for name in shared}
            _check_flags(flags)
            cfg = load_for_boards(flags["board"] or [], flags["port"], flags["user"],
                                  flags["os_version"])
            targets = Targets(cfg=cfg, boards=_select(cfg, flags),
                              password_asked=bool(flags["password"]),
                              trust_host_key=bool(flags["trust_host_key"]),
                              sushi_flags={k: flags[k] for k in _SUSHI_DEFAULTS if k in flags})
            return body(c, targets, **kwargs)

        wrapper.__name__ = body.__name__
        wrapper.__qualname__ = body.__qualname__
        wrapper.__doc__ = body.__doc__
        wrapper.__module__ = body.__module__
        wrapper.__signature__ = signature  # type: ignore[attr-defined]
        helps = {k: v for k, v in BOARD_HELP.items() if k in shared}
        if sushi:
            helps.update(SUSHI_HELP)
        helps.update(help or {})
        return elk_task(auto_shortflags=False, iterable=["host", "board", *iterable],
                        help=helps)(wrapper)

    return decorate


def report_deploys(group, as_json: bool, extra: dict | None = None,
                   table: bool = False, reraise: bool = False) -> None:
    """JSON or a table; a failure is one error line per board and exit code 1.

    With `reraise`, a single board's error is raised as it came (its own exit code).
    """
    from invoke.exceptions import Exit

    from elkbuild.deploy.many import SUMMARY_COLUMNS, summary_rows
    from elkbuild.errors import BoardError
    from elkbuild.reporting import PROG, Reporter, emit_json

    results = list(group)
    failed = [r for r in results if not r.ok]
    if reraise and len(results) == 1 and results[0].host in group.raised:
        raise group.raised[results[0].host]
    if as_json:
        emit_json({"ok": not failed, "boards": [r.as_json() for r in results], **(extra or {})})
    elif len(results) > 1 or not failed:
        if table:
            Reporter().table(SUMMARY_COLUMNS, summary_rows(group), title="deploy")
        for r in results:
            if r.ok:
                gate = f"; {r.abi_gate}" if r.abi_gate else ""
                print(f"{r.host}: {r.files_sent} files, {r.bytes_sent} bytes sent; {r.message}{gate}")
    if not failed:
        return
    if len(results) == 1:
        raise BoardError(f"{failed[0].host}: {failed[0].message}")
    for r in failed:
        print(f"{PROG}: error: {r.host}: {r.message}", file=sys.stderr)
    raise Exit(code=1)


def report_sushi(group, as_json: bool) -> None:
    """One board: its result as before (JSON or key=value); several: one summary."""
    from invoke.exceptions import Exit

    from elkbuild.deploy.control import SUMMARY_COLUMNS, summary_rows
    from elkbuild.reporting import PROG, Reporter, emit_json

    if len(group) == 1:
        (name,) = group.boards
        if name in group.raised:
            raise group.raised[name]
        result = group.values[name]
        if as_json:
            emit_json(result)
        else:
            print(" ".join(f"{k}={v}" for k, v in result.items()))
        return
    failed = group.failed
    if as_json:
        emit_json({"ok": not failed, "boards": [
            group.values.get(name, {"host": name, "error": failed.get(name)})
            for name in group.boards]})
    else:
        Reporter().table(SUMMARY_COLUMNS, summary_rows(group), title="sushi")
    if failed:
        if not as_json:
            for name, message in failed.items():
                print(f"{PROG}: error: {name}: {message}", file=sys.stderr)
        raise Exit(code=1)
