"""The ABI gate at deploy time: every bundle of a payload must fit the target board.

The board's profile comes from its os_version (profiles.yaml): an Elk 0.11 board
gets elk-0.11's ceilings, a 1.x board elk-1.x's, so one bundle can fit one board of
a fleet and not another. Checked before the board is touched: a misfit sends nothing.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

from elkbuild.build.profiles import BoardProfile, profile_for_os
from elkbuild.bundle.abi_gate import AbiProblem, check_bundle
from elkbuild.deploy.payload import Payload
from elkbuild.errors import BuildError

if TYPE_CHECKING:
    from elkbuild.config import Board

# (profile, the bundle's files by digest) -> problems: a fleet of boards of one OS line
# checks each bundle once, and a bundle changed in place is checked again.
_VERDICTS: dict[tuple[str, tuple[tuple[str, str], ...]], list[AbiProblem]] = {}
_VERDICTS_LOCK = threading.Lock()


class BundleMisfit(BuildError):
    """A bundle of the payload would not load on the target board."""

    def __init__(self, board: Board, profile: BoardProfile, bundle: str,
                 problems: list[AbiProblem]) -> None:
        self.problems = problems
        super().__init__(
            f"{bundle} cannot run on board {board.name} (Elk Audio OS {board.os_version}, "
            f"board profile {profile.name}), nothing was sent: {'; '.join(map(str, problems))}",
            "rebuild it (`invoke build`): it must carry its model and the files the model keeps "
            "its weights in" if all(p.rule == "model" for p in problems) else
            f"rebuild it for that board (`invoke build --board-profile {profile.name}`) "
            f"or deploy it to a board it fits")


def board_profile(board: Board) -> BoardProfile:
    """What the board's system gives a plugin, from its Elk Audio OS line."""
    return profile_for_os(board.os_version)


def _problems(payload: Payload, name: str, source: Path, profile: BoardProfile) -> list[AbiProblem]:
    prefix = f"plugins/{name}/"
    key = (profile.name, tuple(sorted((rel, f.sha256) for rel, f in payload.files.items()
                                      if rel.startswith(prefix))))
    with _VERDICTS_LOCK:
        known = _VERDICTS.get(key)
    if known is None:
        known = check_bundle(source, profile)
        with _VERDICTS_LOCK:
            _VERDICTS[key] = known
    return known


def require_fit(board: Board, payload: Payload) -> str:
    """Raise BundleMisfit for the first bundle that does not fit `board`; else the
    gate's verdict in a few words (empty when the payload carries no bundle)."""
    if not payload.bundle_sources:
        return ""
    profile = board_profile(board)
    for name, source in payload.bundle_sources.items():
        problems = _problems(payload, name, source, profile)
        if problems:
            raise BundleMisfit(board, profile, name, problems)
    return f"ABI gate {profile.name} passed ({', '.join(payload.bundle_sources)})"
