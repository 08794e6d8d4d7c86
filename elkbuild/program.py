"""The command line: invoke's Program with elkbuild's promise for a wrong command line.

invoke itself prints "No idea what '--bogus' is!" or a ValueError traceback for
`--port abc` and exits 1. Here every such mistake is one `elkbuild: error:` line
with a hint, exit code 2, before any task runs.
"""

from __future__ import annotations

import re
import sys
from typing import Sequence

from invoke import Program
from invoke.exceptions import Exit, ParseError

from elkbuild.reporting import PROG

USAGE_EXIT = 2

_UNKNOWN = re.compile(r"No idea what '(.+)' is!")
_NEEDS_VALUE = re.compile(r"Flag (?:<Argument: ([\w-]+)[^>]*>|'(.+?)') needed value")
_BAD_NUMBER = re.compile(r"invalid literal for (\w+)\(\)(?: with base \d+)?: '(.*)'|could not convert string to (\w+): '(.*)'")


def usage_error(text: str, hint: str) -> Exit:
    return Exit(f"{PROG}: error: {text} (hint: {hint})", code=USAGE_EXIT)


def _task_of(argv: Sequence[str], program: Program) -> str | None:
    """The task named on the command line (for the hint), if one is."""
    names = set(program.collection.task_names) if program.collection else set()
    aliases = {a for task in names for a in program.collection.task_names.get(task, [])} \
        if program.collection else set()
    for token in argv:
        if token in names or token in aliases or token.replace("_", "-") in names:
            return token
    return None


def _flag_given(argv: Sequence[str], value: str) -> str | None:
    """The flag a bad value was given to: `--port abc` or `--port=abc`."""
    for index, token in enumerate(argv):
        if token.startswith("-") and token.endswith(f"={value}"):
            return token.split("=", 1)[0]
        if token == value and index > 0 and argv[index - 1].startswith("-"):
            return argv[index - 1]
    return None


def translate(error: Exception, argv: Sequence[str], task: str | None) -> Exit:
    """invoke's parse error (or a failed number conversion) as elkbuild's one line."""
    help_hint = f"`invoke --help {task}` lists its flags" if task else "`invoke --list` lists the tasks"
    text = str(error)
    if match := _UNKNOWN.search(text):
        what = match.group(1)
        if what.startswith("-"):
            where = f" for task {task}" if task else ""
            return usage_error(f"unknown flag {what}{where}", help_hint)
        return usage_error(f"unknown task {what!r}", "`invoke --list` lists the tasks")
    if match := _NEEDS_VALUE.search(text):
        flag = f"--{match.group(1).replace('_', '-')}" if match.group(1) else match.group(2)
        return usage_error(f"flag {flag} needs a value", help_hint)
    if match := _BAD_NUMBER.search(text):
        kind = match.group(1) or match.group(3)
        value = match.group(2) if match.group(1) else match.group(4)
        flag = _flag_given(argv, value) or "a flag"
        number = "a whole number" if kind == "int" else "a number"
        return usage_error(f"{flag} {value!r}: must be {number}", help_hint)
    return usage_error(" ".join(text.split()), help_hint)


class ElkProgram(Program):
    """`invoke` for elkbuild's tasks; parse mistakes exit 2 with one line."""

    def parse_tasks(self) -> None:
        try:
            super().parse_tasks()
        except (ParseError, ValueError) as error:
            raise translate(error, self.argv, _task_of(self.argv, self)) from None

    def parse_core(self, argv: list[str] | None) -> None:
        try:
            super().parse_core(argv)
        except (ParseError, ValueError) as error:
            raise translate(error, self.argv or [], None) from None

    def parse_collection(self) -> None:
        try:
            super().parse_collection()
        except (ParseError, ValueError) as error:
            raise translate(error, self.argv or [], None) from None


def main(argv: list[str] | None = None) -> None:
    """Entry point of `elk` (and of `./elk`): elkbuild's tasks from this checkout."""
    ElkProgram(name="elkbuild", binary="invoke", binary_names=["invoke", "elk"]).run(
        argv if argv is not None else sys.argv)


if __name__ == "__main__":
    main()
