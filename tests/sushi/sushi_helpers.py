"""Helpers for the Sushi configuration tests: throw-away projects with rigs and plugins."""

from __future__ import annotations

import shutil
from pathlib import Path

from elkbuild.config import Config, load_config

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
EXAMPLES = HERE / "examples"          # copies of Sushi's own example configs
BAD_CONFIGS = HERE / "bad_configs"
BAD_RIGS = HERE / "bad_rigs"
RIGS = HERE / "rigs"
GOLDEN = HERE / "golden"


def make_project(root: Path, elkbuild_yaml: str = "") -> Path:
    """A project folder holding this repo's example rigs and plugin identities."""
    shutil.copytree(REPO / "sushi-configs", root / "sushi-configs",
                    ignore=shutil.ignore_patterns("rendered"))
    shutil.copytree(REPO / "plugins", root / "plugins")
    if elkbuild_yaml:
        (root / "elkbuild.yaml").write_text(elkbuild_yaml, encoding="utf-8")
    return root


def project_config(root: Path) -> Config:
    return load_config(root, env={"ELKBUILD_USER_CONFIG": str(root / "no-user-config.yaml")})

