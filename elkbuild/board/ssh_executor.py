"""The SSH backend of the executor: commands, streams and transfers on a board.

Commands are argv lists quoted into one command line with shlex (nothing is
interpolated); streams are long-lived commands killed when their reader leaves;
transfers use SFTP, or SCP on boards without SFTP (see transfers.py).
"""

from __future__ import annotations

import contextlib
import io
import shlex
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Callable, Iterator, Mapping, Sequence

import paramiko

from elkbuild.board.interrupts import raise_if_cancelled
from elkbuild.board.remote_scripts import script_text
from elkbuild.board.transfers import ByteSink, Transfers, open_transfers, within
from elkbuild.errors import BoardError, BoardUnresponsive, CommandTooLong
from elkbuild.executor import EXECUTORS, Completed, Executor, LineSink, LineStream

CONNECT_TIMEOUT = 10.0
COMMAND_TIMEOUT = 60.0
IO_TIMEOUT = 15.0
KEEPALIVE_PROBE_SECONDS = 5.0
"""How long a command that ran past its bound waits for the board to answer a probe:
the difference between a slow command and a board that is gone."""
_STREAM_WRAPPER = script_text("stream.sh")
CONNECTION_LOST = (paramiko.SSHException, OSError, EOFError)
"""What a dropped link raises (paramiko's own error, or the socket's)."""


def remote_command(argv: Sequence[str], cwd: str | None,
                   env: Mapping[str, str] | None) -> str:
    """One shell command line from argv; every word quoted, nothing interpolated."""
    words = [str(a) for a in argv]
    if env:
        words = ["env", *(f"{k}={v}" for k, v in env.items()), *words]
    command = shlex.join(words)
    if cwd:
        command = f"cd {shlex.quote(cwd)} && {command}"
    return command


@dataclass
class SshExecutor(Executor):
    """Runs argv on the board over an open SSH transport (see BoardConnection)."""

    name: str = "ssh"
    transport: paramiko.Transport | None = field(default=None, repr=False)
    command_timeout: float = COMMAND_TIMEOUT
    """Each remote command's bound, unless the caller gives its own."""
    io_timeout: float = IO_TIMEOUT
    """How long a transfer may make no progress before the board counts as stalled."""
    step: str = ""
    """What the caller is doing (`upload`), for the message when the board stops answering."""
    _transfers: Transfers | None = field(default=None, repr=False)

    @contextlib.contextmanager
    def during(self, step: str) -> Iterator[None]:
        """Name the step in progress; a lost link or a stall inside it says so."""
        before, self.step = self.step, step
        try:
            yield
        finally:
            self.step = before

    def unresponsive(self, seconds: float, what: str = "") -> BoardUnresponsive:
        """The one message for a board that went silent: whose fault, and for how long."""
        doing = self.step or what or "a command"
        return BoardUnresponsive(
            f"[{self.name}] the board stopped answering during {doing}: nothing for "
            f"{seconds:.0f} s (network or board)",
            "check the board's power and network; the next deploy repairs a cut one")

    def too_long(self, bound: float, what: str) -> CommandTooLong:
        """A command still running at its bound on a board that answers: slow, not gone."""
        return CommandTooLong(
            f"[{self.name}] {what} was still running after {bound:.0f} s, its bound "
            f"(the board answers; the command is slow or waits for something)",
            "raise the board's command_timeout in elkbuild.yaml if it needs longer")

    def _answers(self, within: float) -> bool:
        """Does the board's sshd still reply to a request on this connection? (any
        reply counts: OpenSSH refuses an unknown global request, and that is an answer)"""
        transport = self.transport
        if transport is None or not transport.is_active():
            return False
        # paramiko waits for the reply without a bound: wait for it in a thread
        asking = threading.Thread(target=transport.global_request,
                                  args=("keepalive@openssh.com",), kwargs={"wait": True},
                                  daemon=True)
        asking.start()
        asking.join(within)
        return not asking.is_alive() and transport.is_active()

    def lost(self, what: str = "") -> BoardUnresponsive:
        doing = self.step or what or "a command"
        return BoardUnresponsive(
            f"[{self.name}] the connection to the board was lost during {doing} "
            f"(network or board)",
            "check the board's power and network; the next deploy repairs a cut one")

    # ------------------------------------------------------------------ commands
    def _open_channel(self) -> paramiko.Channel:
        raise_if_cancelled()
        if self.transport is None or not self.transport.is_active():
            raise self.lost()
        try:
            return self.transport.open_session(timeout=self.io_timeout)
        except CONNECTION_LOST:
            if self.transport.is_active():
                raise self.unresponsive(self.io_timeout, "opening a session") from None
            raise self.lost("opening a session") from None

    def _run(self, argv, *, cwd, env, input, timeout, on_line) -> Completed:
        bound = self.command_timeout if timeout is None else timeout
        what = f"`{shlex.join(str(a) for a in argv)[:60]}`"
        channel = self._open_channel()
        try:
            try:
                within(self.io_timeout, channel,
                       lambda: channel.exec_command(remote_command(argv, cwd, env)))
            except socket.timeout:
                raise self.unresponsive(self.io_timeout, what) from None
            writer = None
            if input is not None:
                data = input.encode() if isinstance(input, str) else input
                writer = threading.Thread(target=_send_all, args=(channel, data), daemon=True)
                writer.start()
            else:
                channel.shutdown_write()
            out, err, idle = _collect(channel, bound, on_line)
            if writer is not None:
                writer.join(timeout=1)
            if channel.exit_status_ready():
                code = channel.recv_exit_status()
            elif self.transport is None or not self.transport.is_active():
                raise self.lost(what)
            elif self._answers(min(self.io_timeout, KEEPALIVE_PROBE_SECONDS)):
                raise self.too_long(bound, what)
            else:  # no exit status within the bound, and the board is silent
                raise self.unresponsive(idle, what)
            return Completed(list(argv), code, out, err)
        except CONNECTION_LOST:
            if self.transport is not None and self.transport.is_active():
                raise self.unresponsive(bound, what) from None
            raise self.lost(what) from None
        finally:
            channel.close()

    def _stream_lines(self, argv: list[str]) -> RemoteStream:
        try:
            return RemoteStream(self._open_channel(), argv, self.io_timeout)
        except socket.timeout:
            raise self.unresponsive(self.io_timeout, f"starting `{shlex.join(argv)[:60]}`") \
                from None
        except CONNECTION_LOST as exc:
            raise BoardError(f"[{self.name}] cannot start `{shlex.join(argv)}`: {exc}",
                             "check the board's network") from None

    # ------------------------------------------------------------------ transfers
    @property
    def transfers(self) -> Transfers:
        """SFTP, or SCP when the board refuses SFTP; opened on first use."""
        if self._transfers is None:
            if self.transport is None or not self.transport.is_active():
                raise BoardError(f"[{self.name}] the SSH connection is closed",
                                 "connect again; check the board's network")
            try:
                self._transfers = open_transfers(self.transport, self._mkdir_command, self.name,
                                                 self.io_timeout, self._stdout_of)
            except socket.timeout:
                raise self.unresponsive(self.io_timeout, "opening SFTP") from None
            except CONNECTION_LOST:
                raise self.lost("opening SFTP") from None
        return self._transfers

    @contextlib.contextmanager
    def _transferring(self, what: str) -> Iterator[None]:
        """A failed or interrupted transfer leaves its session unusable (replies still
        due): drop it without waiting for them, and say whose fault a stall is."""
        try:
            yield
        except (FileNotFoundError, PermissionError):
            raise
        except BaseException as exc:
            self.close()
            if isinstance(exc, socket.timeout):
                raise self.unresponsive(self.io_timeout, what) from None
            alive = self.transport is not None and self.transport.is_active()
            if isinstance(exc, CONNECTION_LOST) and not alive:
                raise self.lost(what) from None
            if isinstance(exc, OSError) and alive:  # the board said no (disk full, ...)
                reason = " ".join(str(exc).split()) or type(exc).__name__
                raise BoardError(f"[{self.name}] {what}: the board refused: {reason}",
                                 "check free space and permissions on the board") from None
            raise

    @property
    def transfer_protocol(self) -> str:
        """"sftp" or "scp": what this board's transfers use."""
        return self.transfers.protocol

    def _stdout_of(self, argv: Sequence[str]) -> str:
        return self._run(list(argv), cwd=None, env=None, input=None, timeout=None,
                         on_line=None).stdout

    def _mkdir_command(self, paths: Sequence[str]) -> None:
        self._run(["mkdir", "-p", "--", *paths], cwd=None, env=None, input=None,
                  timeout=None, on_line=None)

    def _send_file(self, local: Path, remote: str) -> None:
        with local.open("rb") as source, self._transferring(f"sending {remote}"):
            self.transfers.send(source, remote, local.stat().st_size,
                                local.stat().st_mode & 0o777)

    def _write_bytes(self, remote: str, data: bytes) -> None:
        with self._transferring(f"writing {remote}"):
            self.transfers.send(io.BytesIO(data), remote, len(data), None)

    def _read_bytes(self, remote: str) -> bytes:
        with self._transferring(f"reading {remote}"):
            return self.transfers.read(remote)

    def _fetch_file(self, remote: str, local: Path) -> None:
        with self._transferring(f"reading {remote}"):
            local.write_bytes(self.transfers.read(remote))

    def upload(self, opener: Callable[[], BinaryIO], remote: str, *, size: int, mode: int,
               on_bytes: ByteSink | None = None) -> None:
        """Stream a file of `size` bytes to `remote` with `mode`, reporting progress."""
        if self._record("send", remote, f"({size} bytes, mode {mode:04o})"):
            with opener() as source, self._transferring(f"sending {remote}"):
                self.transfers.send(source, remote, size, mode, on_bytes)

    def make_dirs(self, paths: Sequence[str]) -> None:
        """Make these directories in order (parents first); existing ones are fine."""
        if paths and self._record("mkdir", *paths):
            with self._transferring("making directories"):
                self.transfers.make_dirs(paths)

    def file_stats(self, paths: Sequence[str]) -> dict[str, tuple[int, int, int] | None]:
        """(size, mtime, permission bits) of each regular file, None where there is none.
        Reads only, so a dry run asks too."""
        with self._transferring("checking files"):
            return self.transfers.stats(paths)

    def close(self) -> None:
        if self._transfers is not None:
            self._transfers.close()
            self._transfers = None


EXECUTORS["ssh"] = SshExecutor


class RemoteStream(LineStream):
    """Lines from one long-lived remote process (stderr merged); close() kills it."""

    def __init__(self, channel: paramiko.Channel, argv: Sequence[str],
                 start_timeout: float = IO_TIMEOUT) -> None:
        self.argv = [str(a) for a in argv]
        self.channel = channel
        self.channel.set_combine_stderr(True)
        command = shlex.join(["sh", "-c", _STREAM_WRAPPER, "elkbuild-stream", *self.argv])
        within(start_timeout, channel, lambda: self.channel.exec_command(command))
        self._file = self.channel.makefile("rb")
        self.returncode: int | None = None
        super().__init__(self._read(), self.close)

    def _read(self) -> Iterator[str]:
        try:
            for raw in self._file:
                yield raw.decode(errors="replace").rstrip("\r\n")
            self.returncode = self.channel.recv_exit_status()
        finally:
            self.close()

    def close(self) -> None:
        if not self.channel.closed:
            try:
                self.channel.shutdown_write()
            except CONNECTION_LOST:
                pass
            self.channel.close()


def _send_all(channel: paramiko.Channel, data: bytes) -> None:
    try:
        view = memoryview(data)
        while view:
            sent = channel.send(view[:32768])
            if sent <= 0:
                break
            view = view[sent:]
        channel.shutdown_write()
    except CONNECTION_LOST:
        pass


def _collect(channel: paramiko.Channel, timeout: float | None,
             on_line: LineSink | None) -> tuple[str, str, float]:
    """Read stdout and stderr until the command exits (or the timeout passes); also
    how long nothing arrived at the end."""
    out = bytearray()
    err = bytearray()
    pending = {"out": b"", "err": b""}
    deadline = None if timeout is None else time.monotonic() + timeout
    last_seen = time.monotonic()
    channel.settimeout(0.2)

    def feed(kind: str, chunk: bytes) -> None:
        if on_line is None:
            return
        buffered = pending[kind] + chunk
        *lines, pending[kind] = buffered.split(b"\n")
        for line in lines:
            on_line(line.decode(errors="replace").rstrip("\r"))

    while True:
        raise_if_cancelled()
        got = False
        if channel.recv_ready():
            chunk = channel.recv(65536)
            out += chunk
            feed("out", chunk)
            got = True
        if channel.recv_stderr_ready():
            chunk = channel.recv_stderr(65536)
            err += chunk
            feed("err", chunk)
            got = True
        if got:
            last_seen = time.monotonic()
        else:
            # sshd may send the exit status before the last output: only the
            # channel's EOF says that everything has arrived
            if (channel.eof_received or channel.closed) and not channel.recv_ready() \
                    and not channel.recv_stderr_ready():
                channel.status_event.wait(5)
                break
            if deadline is not None and time.monotonic() > deadline:
                break
            if not channel.get_transport() or not channel.get_transport().is_active():
                break
            channel.status_event.wait(0.05)
    # drain what arrived together with the exit status
    while channel.recv_ready():
        chunk = channel.recv(65536)
        out += chunk
        feed("out", chunk)
    while channel.recv_stderr_ready():
        chunk = channel.recv_stderr(65536)
        err += chunk
        feed("err", chunk)
    if on_line is not None:
        for kind in ("out", "err"):
            if pending[kind]:
                on_line(pending[kind].decode(errors="replace").rstrip("\r"))
    return out.decode(errors="replace"), err.decode(errors="replace"), \
        time.monotonic() - last_seen
