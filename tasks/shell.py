"""What every task module shares: the project folder and its configuration."""

from __future__ import annotations

from pathlib import Path

from elkbuild import config as _config

PROJECT_DIR = Path(__file__).resolve().parents[1]


def project_dir() -> Path:
    """This checkout, or another project's folder named by ELKBUILD_PROJECT_DIR."""
    import os

    return Path(os.environ.get("ELKBUILD_PROJECT_DIR") or PROJECT_DIR)


def load(overrides: dict | None = None) -> _config.Config:
    """The project's configuration, with command-line flags as the top layer."""
    return _config.load_config(project_dir(), overrides)
