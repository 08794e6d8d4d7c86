"""The one way out of elkbuild: every process, container command, remote command,
file transfer and stream goes through an Executor.

Every command is an argv list (never a shell string built by formatting), every
action is logged before it happens and recorded in `history`, and a dry-run
executor only says what it would do. Library functions take an Executor as a
parameter, so unit tests pass a fake and integration tests the real thing.
Backends: LocalExecutor here, ContainerExecutor (elkbuild.docker.container),
SshExecutor (elkbuild.board.ssh_executor); EXECUTORS is their explicit registry.
"""

from __future__ import annotations

import logging
import os
import queue
import shlex
import shutil
import subprocess
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Mapping, Sequence

from elkbuild.errors import CommandFailed, StreamSilent, ToolMissing

log = logging.getLogger("elkbuild.exec")

LineSink = Callable[[str], None]


def require(program: str, install: str | None = None) -> str:
    """The path of `program`, or the one "missing program" error (with how to install it)."""
    found = shutil.which(program)
    if found is None:
        raise ToolMissing(program, install)
    return found


def installed(program: str) -> bool:
    """Whether `program` is on PATH: for choosing between tools (ninja or make);
    a program the work cannot do without goes through `require`."""
    return shutil.which(program) is not None


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

    # Transfers and streams: recorded and logged like commands, skipped in dry-run.
    def _record(self, action: str, *what: object) -> bool:
        """Log and record one non-command action; False when it must not happen (dry-run)."""
        entry = [f"<{action}>", *(str(w) for w in what)]
        self.history.append(entry)
        shown = " ".join(entry[1:])
        if self.dry_run:
            log.info("[%s] would %s: %s", self.name, action, shown)
            return False
        log.debug("[%s] %s: %s", self.name, action, shown)
        return True

    def send_file(self, local: Path, remote: str) -> None:
        """Copy a local file to `remote` on this executor's side."""
        if self._record("send", local, "->", remote):
            self._send_file(Path(local), remote)

    def write_bytes(self, remote: str, data: bytes) -> None:
        if self._record("write", remote, f"({len(data)} bytes)"):
            self._write_bytes(remote, data)

    def read_bytes(self, remote: str) -> bytes:
        """Reading changes nothing, so it happens in dry-run too."""
        self.history.append(["<read>", remote])
        log.debug("[%s] read: %s", self.name, remote)
        return self._read_bytes(remote)

    def fetch_file(self, remote: str, local: Path) -> None:
        if self._record("fetch", remote, "->", local):
            self._fetch_file(remote, Path(local))

    def stream(self, argv: Sequence[str], *, silence: float | None = None) -> "LineStream":
        """A long-lived command whose stdout is read line by line (monitor, logs --follow).

        With `silence`, a gap of more than that many seconds between lines raises
        StreamSilent (and ends the command): a frozen source must not hang its reader.
        """
        args = [str(a) for a in argv]
        self.history.append(args)
        if self.dry_run:
            log.info("[%s] would stream: %s", self.name, shlex.join(args))
            return LineStream(iter(()), lambda: None)
        log.debug("[%s] stream: %s", self.name, shlex.join(args))
        stream = self._stream_lines(args)
        if silence is None:
            return stream
        return bounded(stream, silence, self.name, shlex.join(args)[:80])

    def _send_file(self, local: Path, remote: str) -> None:
        raise NotImplementedError(f"{self.name} executor cannot send files")

    def _write_bytes(self, remote: str, data: bytes) -> None:
        raise NotImplementedError(f"{self.name} executor cannot write files")

    def _read_bytes(self, remote: str) -> bytes:
        raise NotImplementedError(f"{self.name} executor cannot read files")

    def _fetch_file(self, remote: str, local: Path) -> None:
        raise NotImplementedError(f"{self.name} executor cannot fetch files")

    def _stream_lines(self, argv: list[str]) -> "LineStream":
        raise NotImplementedError(f"{self.name} executor cannot stream")


_END = object()


def bounded(stream: "LineStream", silence: float, where: str, command: str) -> "LineStream":
    """`stream`, read by a helper thread so that the reader waits at most `silence`
    seconds for each line, whatever the backend's own reads block on."""
    lines: queue.Queue = queue.Queue(maxsize=1024)

    def pump() -> None:
        try:
            for line in stream:
                lines.put(line)
        except BaseException as exc:  # handed to the reader, which raises it
            lines.put(exc)
        lines.put(_END)

    threading.Thread(target=pump, daemon=True, name=f"stream:{where}").start()

    def read() -> Iterator[str]:
        while True:
            try:
                item = lines.get(timeout=silence)
            except queue.Empty:
                stream.close()
                raise StreamSilent(where, command, silence) from None
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    wrapped = LineStream(read(), stream.close)
    wrapped.source = stream  # type: ignore[attr-defined]  # e.g. its returncode
    return wrapped


class LineStream:
    """Lines of a running command; `close()` ends it. A context manager and an iterator."""

    def __init__(self, lines: Iterator[str], close: Callable[[], None]) -> None:
        self._lines = lines
        self._close = close

    def __iter__(self) -> Iterator[str]:
        return self._lines

    def close(self) -> None:
        self._close()

    def __enter__(self) -> "LineStream":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


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


    # This machine's files: transfers are copies.
    def _send_file(self, local: Path, remote: str) -> None:
        shutil.copyfile(local, remote)

    def _write_bytes(self, remote: str, data: bytes) -> None:
        Path(remote).write_bytes(data)

    def _read_bytes(self, remote: str) -> bytes:
        return Path(remote).read_bytes()

    def _fetch_file(self, remote: str, local: Path) -> None:
        shutil.copyfile(remote, local)

    def _stream_lines(self, argv: list[str]) -> LineStream:
        proc = subprocess.Popen(argv, text=True, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)

        def close() -> None:
            if proc.poll() is None:
                proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            proc.stdout.close()

        return LineStream((line.rstrip("\n") for line in proc.stdout), close)


EXECUTORS: dict[str, type[Executor]] = {"local": LocalExecutor}
"""Backends by kind; the container and SSH backends add themselves on import."""
