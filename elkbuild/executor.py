"""The one way elkbuild runs external commands: locally, in a container, over SSH.

Every command is an argv list (never a shell string built by formatting), is
logged before it runs, and honours dry-run. Library functions take an Executor
as a parameter, so unit tests pass a fake and integration tests the real thing.
Backends register themselves in EXECUTORS (an explicit registry, no discovery).
"""

from __future__ import annotations

import logging
import os
import shlex
import subprocess
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

from elkbuild.errors import CommandFailed, ToolMissing

log = logging.getLogger("elkbuild.exec")

LineSink = Callable[[str], None]


@dataclass(frozen=True)
class Completed:
    argv: list[str]
    returncode: int
    stdout: str = ""
    stderr: str = ""

    @property
    def ok(self) -> bool:
        return self.returncode == 0


@dataclass
class Executor(ABC):
    """Base of all backends. `name` appears in logs and error messages."""

    dry_run: bool = False
    history: list[list[str]] = field(default_factory=list)

    name: str = "local"

    def run(self, argv: Sequence[str], *, cwd: str | None = None,
            env: Mapping[str, str] | None = None, check: bool = True,
            input: str | bytes | None = None, timeout: float | None = None,
            on_line: LineSink | None = None, hint: str | None = None) -> Completed:
        """Run argv; raise CommandFailed on a non-zero exit when `check`.

        With `on_line`, stdout and stderr are streamed line by line as they come
        (long builds show progress) and still captured for the result.
        """
        args = [str(a) for a in argv]
        self.history.append(args)
        shown = shlex.join(args)
        if self.dry_run:
            log.info("[%s] would run: %s", self.name, shown)
            return Completed(args, 0)
        log.debug("[%s] run: %s", self.name, shown)
        done = self._run(args, cwd=cwd, env=env, input=input, timeout=timeout, on_line=on_line)
        if check and done.returncode != 0:
            raise CommandFailed(self.name, args, done.returncode, done.stderr or done.stdout, hint)
        return done

    @abstractmethod
    def _run(self, argv: list[str], *, cwd: str | None, env: Mapping[str, str] | None,
             input: str | bytes | None, timeout: float | None,
             on_line: LineSink | None) -> Completed:
        ...


def pump_lines(stream, sink: LineSink, store: list[str]) -> threading.Thread:
    """Read a text stream line by line into `store`, handing each line to `sink`."""

    def pump() -> None:
        for line in iter(stream.readline, ""):
            store.append(line)
            sink(line.rstrip("\n"))
        stream.close()

    thread = threading.Thread(target=pump, daemon=True)
    thread.start()
    return thread


@dataclass
class LocalExecutor(Executor):
    name: str = "local"

    def _run(self, argv, *, cwd, env, input, timeout, on_line):
        full_env = None if env is None else {**os.environ, **env}
        try:
            if on_line is None:
                proc = subprocess.run(argv, cwd=cwd, env=full_env, input=input,
                                      capture_output=True, timeout=timeout,
                                      text=not isinstance(input, bytes))
                out, err = proc.stdout, proc.stderr
                if isinstance(out, bytes):
                    out, err = out.decode(errors="replace"), err.decode(errors="replace")
                return Completed(argv, proc.returncode, out, err)
            return self._stream(argv, cwd, full_env, input, timeout, on_line)
        except FileNotFoundError as exc:
            if cwd and not os.path.isdir(cwd):
                raise
            raise ToolMissing(argv[0]) from exc

    @staticmethod
    def _stream(argv, cwd, env, input, timeout, on_line) -> Completed:
        proc = subprocess.Popen(argv, cwd=cwd, env=env, text=True,
                                stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out: list[str] = []
        err: list[str] = []
        pumps = [pump_lines(proc.stdout, on_line, out), pump_lines(proc.stderr, on_line, err)]
        if input is not None:
            proc.stdin.write(input if isinstance(input, str) else input.decode())
            proc.stdin.close()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        for pump in pumps:
            pump.join()
        return Completed(argv, proc.returncode, "".join(out), "".join(err))


EXECUTORS: dict[str, type[Executor]] = {"local": LocalExecutor}
"""Backends by kind; the container and SSH backends add themselves on import."""
