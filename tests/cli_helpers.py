"""Run elkbuild's invoke tasks as a user would, in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def run_task(*args: str, project: Path | None = None, env: dict[str, str] | None = None,
             timeout: float = 120, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """`./elk <args>` (elkbuild's invoke program) against this repo's tasks; project files come from `project`."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("ELKBUILD_")}
    full_env["ELKBUILD_USER_CONFIG"] = str((project or REPO) / "no-user-config.yaml")
    if project is not None:
        full_env["ELKBUILD_PROJECT_DIR"] = str(project)
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "elkbuild.program", "--search-root", str(REPO), *args],
                          capture_output=True, text=True, env=full_env, timeout=timeout,
                          cwd=cwd or REPO)


def assert_one_line_error(result: subprocess.CompletedProcess, *needles: str,
                          code: int = 1) -> str:
    """The contract for bad input: exit code, one line on stderr, no traceback."""
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]
