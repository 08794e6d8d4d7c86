"""One deploy at a time on a board: the remote lock (scripts/lock.sh) and its messages."""

from __future__ import annotations

import getpass
import os
import socket
import time
from typing import TYPE_CHECKING

from elkbuild.board.remote_scripts import COMMON_FUNCTIONS, script_text
from elkbuild.errors import BoardError

if TYPE_CHECKING:
    from elkbuild.config import Board

LOCK_FUNCTIONS = COMMON_FUNCTIONS + script_text("lock.sh")
LOCK_BUSY = 75
"""Exit status of a script that found the lock held (EX_TEMPFAIL)."""
LOCK_WAIT_SECONDS = 10


def lock_since() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def lock_owner_text() -> str:
    """Who holds the lock, for the message another user sees."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}/pid{os.getpid()}"


def lock_busy_error(board: Board, owner_line: str) -> BoardError:
    fields = dict(part.split("=", 1) for part in owner_line.split() if "=" in part)
    who = fields.get("who", "another elkbuild")
    since = fields.get("since", "an unknown time")
    return BoardError(
        f"{board.address} is locked by another deploy: {who} since {since}",
        "wait for it to finish; a lock whose SSH session died is cleared automatically")
