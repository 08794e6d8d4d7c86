"""What every task module shares: the project folder and its configuration."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Sequence

from elkbuild import config as _config

PROJECT_DIR = Path(__file__).resolve().parents[1]


def project_dir() -> Path:
    """This checkout, or another project's folder named by ELKBUILD_PROJECT_DIR."""
    return Path(os.environ.get("ELKBUILD_PROJECT_DIR") or PROJECT_DIR)


def load(flags: Mapping[str, Any] | None = None) -> _config.Config:
    """The project's configuration with the flags that are configuration keys as the
    top layer ("command line"), e.g. {"toolchain": toolchain}. A flag left at its
    default ("", 0 or None) was not given, so it sets nothing."""
    given = {key: value for key, value in (flags or {}).items() if _was_given(value)}
    return _config.load_config(project_dir(), given)


def _was_given(value: Any) -> bool:
    if isinstance(value, bool):
        return True
    return value not in (None, "", 0)


def load_for_boards(boards: Sequence[str], port: int = 0, user: str = "",
                    os_version: str = "") -> _config.Config:
    """The configuration with --port/--user/--os-version as the command-line layer of
    each configured board named in `boards`. For --host (or an unknown name, which
    keeps its "no board named" error) those flags describe an ad-hoc board instead."""
    cfg = load()
    named = [name for name in boards if name in cfg.boards]
    if not named or not (port or user or os_version):
        return cfg
    flags: dict[str, Any] = {}
    for name in named:
        flags.update({f"boards.{name}.port": int(port) if port else None,
                      f"boards.{name}.user": user,
                      f"boards.{name}.os_version": os_version})
    return load(flags)
