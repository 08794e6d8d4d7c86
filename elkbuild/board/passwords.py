"""The board password: asked for only when wanted, never written anywhere."""

from __future__ import annotations

import getpass
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from elkbuild.config import Board

PASSWORD_ENV = "ELKBUILD_BOARD_PASSWORD"


def resolve_password(prompt: bool, board: Board | None = None) -> str | None:
    """The board password when the user asked for password authentication.

    Asking means: a prompt requested, ELKBUILD_BOARD_PASSWORD set (CI), or a board
    whose auth policy is "password". Otherwise None: keys only.
    """
    from_env = os.environ.get(PASSWORD_ENV)
    if from_env:
        return from_env
    if prompt or (board is not None and board.auth == "password"):
        where = board.address if board is not None else "the board"
        return getpass.getpass(f"password for {where}: ")
    return None
