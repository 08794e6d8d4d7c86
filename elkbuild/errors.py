"""One exception tree for everything elkbuild reports to a user.

Library code raises these; only the task layer (elkbuild.cli) turns them into a
one-line message and an exit code. Messages carry the value found and the fix,
and say whose fault it is: your file, your command line, the network, the board.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable


class ElkbuildError(Exception):
    """Base of every error a user may see. `hint` says how to fix it."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def one_line(self) -> str:
        text = self.message if not self.hint else f"{self.message} (hint: {self.hint})"
        return " ".join(text.split())  # never more than one line


class UsageError(ElkbuildError):
    """The command line itself is wrong (unknown choice, missing argument)."""

    exit_code = 2


SHOWN_CHARACTERS = 80
"""A value quoted in a message is cut to this length: the line stays one line a
person can read, even for a 5000-digit number or a pasted file."""


def _show(value: Any) -> str:
    text = repr(value) if value is not None else "nothing"
    if len(text) > SHOWN_CHARACTERS:
        return f"{text[:SHOWN_CHARACTERS - 20]}… ({len(text)} characters)"
    return text


class ConfigError(ElkbuildError):
    """A value in a project file, user file, rig or environment is not allowed.

    Always names the file (or `environment`/`command line`), the key path such as
    `boards.studio.os_version`, the value found, and what is allowed.
    """

    def __init__(self, source: str | Path, key: str, found: Any, allowed: str,
                 hint: str | None = None) -> None:
        self.source = str(source)
        self.key = key
        self.found = found
        self.allowed = allowed
        where = f"{self.source}: {key}" if key else self.source
        shown = "" if found is _MISSING else f" is {_show(found)};"
        super().__init__(f"{where}{shown} {allowed}", hint)


_MISSING = object()
"""Pass as `found` when the key is absent altogether."""
MISSING = _MISSING


class SushiConfigError(ConfigError):
    """A rig asks for something the chosen Sushi version cannot express."""


class ValidationFailed(ElkbuildError):
    """A document broke several rules; each problem is one line of its own."""

    def __init__(self, subject: str, problems: Iterable[str], hint: str | None = None) -> None:
        self.subject = subject
        self.problems = list(problems)
        noun = "problem" if len(self.problems) == 1 else "problems"
        super().__init__(f"{subject}: {len(self.problems)} {noun}", hint)


class ToolMissing(ElkbuildError):
    """A program elkbuild needs is not installed."""

    def __init__(self, program: str, install_hint: str | None = None) -> None:
        super().__init__(f"required program {program!r} not found",
                         install_hint or f"install {program} or add it to PATH")
        self.program = program


class CommandFailed(ElkbuildError):
    """An external command exited non-zero."""

    def __init__(self, where: str, argv: list[str], returncode: int, output: str = "",
                 hint: str | None = None) -> None:
        self.argv = argv
        self.returncode = returncode
        self.output = output
        tail = output.strip().splitlines()[-1] if output.strip() else ""
        shown = " ".join(argv)
        if len(shown) > 120:
            shown = shown[:117] + "..."
        msg = f"{where}: `{shown}` exited with {returncode}"
        if tail:
            msg += f": {tail[:200]}"
        super().__init__(msg, hint)


class BoardError(ElkbuildError):
    """The board refused, is unreachable, or is in a state elkbuild will not touch."""


class BoardUnresponsive(BoardError):
    """The board (or the network to it) stopped answering: a timeout or a lost link."""


class CommandTooLong(BoardError):
    """A remote command ran past its bound while the board itself still answered."""


class StreamSilent(ElkbuildError):
    """A stream printed nothing for longer than its bound (its source froze or the
    link to it died without closing)."""

    def __init__(self, where: str, command: str, seconds: float) -> None:
        super().__init__(f"[{where}] `{command}` printed nothing for {seconds:g} s",
                         "check that the other side still runs")
        self.seconds = seconds


class HostKeyError(BoardError):
    """An SSH host key is unknown or has changed."""


class BuildError(ElkbuildError):
    """A toolchain, dependency or plugin build failed."""


class CaptureError(ElkbuildError):
    """A mode-switch report (a saved capture or the board's live output) has a line
    that fits neither /proc/xenomai/sched/stat nor `evl ps -s`."""

    def __init__(self, source: str | Path, line: int, text: str, problem: str,
                 hint: str | None = None) -> None:
        self.source = str(source)
        self.line = line
        self.text = text
        shown = text.strip()
        if len(shown) > 80:
            shown = shown[:77] + "..."
        super().__init__(f"{self.source}:{line}: {problem}: {shown!r}",
                         hint or "fix or delete that line; a capture is reports exactly as "
                                 "`cat /proc/xenomai/sched/stat` or `evl ps -s` print them")


class ModeSwitchDetected(ElkbuildError):
    """Real-time threads switched to Linux after the start-up grace period."""

    exit_code = 3
