"""Shell scripts run on a board: shipped as .sh files, sent as ONE remote command each.

Scripts are static text loaded from a package's `scripts/` folder; values reach
them only as `shell_assign` lines (every value quoted) or as positional words.
"""

from __future__ import annotations

import functools
import logging
import shlex
from pathlib import Path

from elkbuild.executor import Completed, Executor

log = logging.getLogger("elkbuild.board")

SCRIPTS = Path(__file__).resolve().parent / "scripts"


@functools.lru_cache(maxsize=None)
def script_text(name: str, folder: Path = SCRIPTS) -> str:
    """The text of one shipped script (`lock.sh`), read once."""
    return (Path(folder) / name).read_text(encoding="utf-8")


COMMON_FUNCTIONS = script_text("common.sh")


def shell_assign(**values: object) -> str:
    """`NAME='value'` lines for a remote script, every value quoted."""
    return "".join(f"{name}={shlex.quote(str(value))}\n" for name, value in values.items())


def run_script(executor: Executor, body: str, *, check: bool = True,
               timeout: float | None = None, label: str = "script") -> Completed:
    """Run a multi-line script with ONE remote command (`sh -s`, script on stdin).

    The body is wrapped in a function that is called on the last line: sh parses the
    whole function before running any of it, so a script cut short in transit (client
    killed, link dropped) runs nothing at all instead of its first half. `label`
    names the script in logs and in what a dry run prints.
    """
    if executor.dry_run:
        log.info("[%s] would run remote script %s:\n%s", executor.name, label,
                 _assignments(body))
    script = "elk_main() {\n" + body + "\n}\nelk_main\n"
    return executor.run(["sh", "-s"], input=script, check=check, timeout=timeout)


def _assignments(body: str) -> str:
    """The values a script was given (its NAME='value' lines), for a dry run to show."""
    lines = [line for line in body.splitlines()
             if line[:1].isupper() and "=" in line.split(" ", 1)[0]]
    return "\n".join(f"    {line}" for line in lines) or "    (no values)"
