"""Fixtures for the emulated Elk board (pytest plugin loaded by tests/conftest.py).

`emulated_board` (session): a running board of its own for this test session
(own instance name, free loopback port), removed at the end. It is an
elkbuild.emulated_board.EmulatedBoard:

    board.host, board.port, board.user, board.password, board.os_version
    board.host_key_line        known_hosts line for the board's host key
    board.client_key           private key authorised for mind
    board.run(argv)            run inside the board as root, no SSH -> Completed
    board.path("/udata/x")     host path of a board path
    board.set_profile("0.11")  Xenomai 3 (/proc/xenomai/sched/stat) or "1.x" (evl ps)
    board.raise_switches(name, count) / board.add_thread(name, ...)
    board.regenerate_host_key()
    board.processes()          host PIDs of its SSH sessions and what they run (to SIGSTOP)
    board.signal_processes(pids, signal.SIGSTOP)
    board.reset()              no Sushi, empty /udata, plugins, config_files

`fresh_emulated_board` (function): the same board, reset before the test and its
profile restored after it.
"""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path
from typing import Iterator

import pytest

from elkbuild.emulated_board import EmulatedBoard, free_port
from elkbuild.emulated_board.host import host_usable
from elkbuild.errors import ElkbuildError
from elkbuild.executor import LocalExecutor

HOW_TO_GET = ("run as root on Debian with scripts/bootstrap.sh's packages "
              "(qemu-user-static, binfmt-support, mmdebstrap) and a Docker engine (the "
              "stand-ins are compiled in the debian-arm64 image); "
              "`invoke board-up` shows what is missing")


def _cache_dir() -> Path:
    return Path(os.environ.get("ELKBUILD_CACHE", "~/.cache/elkbuild")).expanduser()


def _remove_boards_of_dead_sessions(cache_dir: Path) -> None:
    """A test session killed before its teardown leaves its board running."""
    instances = cache_dir / "board" / "instances"
    if not instances.is_dir():
        return
    for entry in instances.iterdir():
        if not entry.name.startswith("pytest-"):
            continue
        owner = entry.name.removeprefix("pytest-").split("-")[0]
        if owner.isdigit() and not Path(f"/proc/{owner}").exists():
            EmulatedBoard(LocalExecutor(), cache_dir, name=entry.name).destroy()


@contextlib.contextmanager
def running_board(suffix: str = "", **options: object) -> Iterator[EmulatedBoard]:
    """A board of this test session's own (free port, 1.x), removed at the end.
    `suffix` names a second instance; `options` go to EmulatedBoard (sftp=False)."""
    from conftest import require_real_part

    usable, why = host_usable()
    require_real_part(usable, "the emulated Elk board", f"{why}; {HOW_TO_GET}")
    _remove_boards_of_dead_sessions(_cache_dir())
    board = EmulatedBoard(LocalExecutor(), _cache_dir(), name=f"pytest-{os.getpid()}{suffix}",
                          port=free_port(), os_version="1.x", **options)
    try:
        board.up()
    except ElkbuildError as error:
        board.destroy()
        require_real_part(False, "the emulated Elk board", f"{error.one_line()}; {HOW_TO_GET}")
    try:
        yield board
    finally:
        board.destroy()


@pytest.fixture(scope="session")
def emulated_board() -> Iterator[EmulatedBoard]:
    with running_board() as board:
        yield board


@pytest.fixture
def fresh_emulated_board(emulated_board: EmulatedBoard) -> Iterator[EmulatedBoard]:
    profile = emulated_board.os_version
    emulated_board.reset()
    yield emulated_board
    if emulated_board.os_version != profile:
        emulated_board.set_profile(profile)


@contextlib.contextmanager
def frozen(elk, *, with_listener: bool = False):
    """The board's SSH processes stopped from the host, resumed whatever happens."""
    pids = elk.processes(with_listener=with_listener)
    assert pids, "no board processes found"
    elk.signal_processes(pids, signal.SIGSTOP)
    try:
        yield pids
    finally:
        elk.signal_processes(pids, signal.SIGCONT)
