"""elkbuild's invoke tasks: a thin shell over the `elkbuild` package.

Run `invoke --list` for the tasks, `invoke --help TASK` for a task's flags.
"""

from __future__ import annotations

from elkbuild.cli import elk_task

# ==== config ====
from pathlib import Path

from elkbuild import config as _config

PROJECT_DIR = Path(__file__).resolve().parent


def project_dir() -> Path:
    """This checkout, or another project's folder named by ELKBUILD_PROJECT_DIR."""
    import os

    return Path(os.environ.get("ELKBUILD_PROJECT_DIR") or PROJECT_DIR)


def load(overrides: dict | None = None) -> _config.Config:
    """The project's configuration, with command-line flags as the top layer."""
    return _config.load_config(project_dir(), overrides)


@elk_task(help={"json": "print the configuration as one JSON object (value and origin per key)",
                "key": "show only keys under this path, e.g. boards.studio"})
def config(c, key="", json=False):
    """Print the effective configuration and where each value came from."""
    from elkbuild.config_report import print_config

    print_config(load(), prefix=key, as_json=json)
# ==== end config ====

# ==== sushi ====
# ==== end sushi ====

# ==== board ====
# ==== end board ====

# ==== deploy ====
# ==== end deploy ====

# ==== monitor ====
# ==== end monitor ====

# ==== docker ====
# ==== end docker ====

# ==== deps ====
# ==== end deps ====

# ==== project ====
@elk_task(help={"k": "only tests whose names match this pytest -k expression",
                "fast": "leave out tests marked slow (CI runs them all)"},
          auto_shortflags=False)
def test(c, k="", fast=False):
    """Run the test suite (the real Docker engine and emulated board are started as needed)."""
    import os
    import sys

    argv = [sys.executable, "-m", "pytest", str(PROJECT_DIR / "tests")]
    if k:
        argv += ["-k", k]
    if fast:
        argv += ["-m", "not slow"]
    os.chdir(PROJECT_DIR)
    os.execv(sys.executable, argv)  # pytest's own output and exit code, unchanged
# ==== end project ====
