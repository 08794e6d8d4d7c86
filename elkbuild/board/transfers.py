"""File transfers over an open SSH transport: SFTP, or SCP where SFTP is refused.

Elk's images run OpenSSH with the sftp subsystem; Yocto images built with Dropbear
have no SFTP at all but do have `scp`. `open_transfers` asks for SFTP first and
falls back to the SCP protocol (the `scp` package, over the same transport).
Only the SSH executor uses these; everything else calls its transfer methods.
"""

from __future__ import annotations

import logging
import socket
import stat
import tempfile
import threading
from abc import ABC, abstractmethod
from pathlib import Path
from typing import BinaryIO, Callable, Sequence

import paramiko
from scp import SCPClient, SCPException

from elkbuild.board.interrupts import raise_if_cancelled

log = logging.getLogger("elkbuild.board")

BLOCK = 32768
ByteSink = Callable[[int], None]
"""Called with the number of bytes sent since the last call."""
MakeDirs = Callable[[Sequence[str]], None]
RunCommand = Callable[[Sequence[str]], str]
"""Runs argv on the board and returns its stdout (SCP needs commands for what it lacks)."""
FileStat = tuple[int, int, int]
"""(size, mtime in whole seconds, permission bits) of a regular file."""


class Transfers(ABC):
    """One transfer protocol. Paths are board paths; names are data, never code."""

    protocol: str

    @abstractmethod
    def send(self, source: BinaryIO, remote: str, size: int, mode: int | None,
             on_bytes: ByteSink | None = None) -> None:
        """Write `source` to `remote` (replacing it), then set `mode` if given."""

    @abstractmethod
    def read(self, remote: str) -> bytes:
        """The content of `remote`; FileNotFoundError when it does not exist."""

    @abstractmethod
    def make_dirs(self, paths: Sequence[str]) -> None:
        """Make each directory in the order given (parents first); existing ones are fine."""

    @abstractmethod
    def stats(self, paths: Sequence[str]) -> dict[str, FileStat | None]:
        """Each path's FileStat, or None when it is not a regular file."""

    def close(self) -> None:
        pass


class SftpTransfers(Transfers):
    """SFTP; every reply is awaited at most the channel's timeout (a stalled board
    raises socket.timeout instead of hanging)."""

    protocol = "sftp"

    def __init__(self, sftp: paramiko.SFTPClient) -> None:
        self.sftp = sftp

    def send(self, source, remote, size, mode, on_bytes=None) -> None:
        target = self.sftp.open(remote, "wb")
        # no `with`: closing after a failure would wait for every pipelined reply;
        # the caller drops the whole session instead
        target.set_pipelined(True)
        while block := source.read(BLOCK):
            raise_if_cancelled()
            target.write(block)
            if on_bytes:
                on_bytes(len(block))
        if mode is not None:
            target.chmod(mode)
        target.close()

    def stats(self, paths: Sequence[str]) -> dict[str, FileStat | None]:
        found: dict[str, FileStat | None] = {}
        for path in paths:
            raise_if_cancelled()
            try:
                attrs = self.sftp.lstat(path)
            except FileNotFoundError:
                found[path] = None
                continue
            mode = attrs.st_mode or 0
            found[path] = (int(attrs.st_size or 0), int(attrs.st_mtime or 0),
                           stat.S_IMODE(mode)) if stat.S_ISREG(mode) else None
        return found

    def read(self, remote: str) -> bytes:
        with self.sftp.open(remote, "rb") as handle:
            return handle.read()

    def make_dirs(self, paths: Sequence[str]) -> None:
        for path in paths:
            try:
                self.sftp.mkdir(path)
            except OSError:
                self.sftp.stat(path)  # it exists already; anything else is a real error

    def close(self) -> None:
        try:
            self.sftp.close()
        except (OSError, EOFError, paramiko.SSHException):
            pass


class ScpTransfers(Transfers):
    """The SCP protocol: `scp -t`/`scp -f` on the board, paths quoted by the scp package.

    SCP cannot make directories on its own, so `make_dirs` is one `mkdir -p` command.
    """

    protocol = "scp"

    def __init__(self, transport: paramiko.Transport, make_dirs: MakeDirs,
                 run: RunCommand | None = None, io_timeout: float = 15.0) -> None:
        self.transport = transport
        self._make_dirs = make_dirs
        self._run = run
        self.io_timeout = io_timeout

    def send(self, source, remote, size, mode, on_bytes=None) -> None:
        sent = [0]

        def progress(_name: bytes, _size: int, done: int) -> None:
            raise_if_cancelled()
            if on_bytes and done > sent[0]:
                on_bytes(done - sent[0])
                sent[0] = done

        with SCPClient(self.transport, progress=progress,
                       socket_timeout=self.io_timeout) as client:
            client.putfo(source, remote, mode=f"{0o644 if mode is None else mode:04o}",
                         size=size)

    def read(self, remote: str) -> bytes:
        with tempfile.TemporaryDirectory(prefix="elkbuild-scp-") as tmp:
            local = Path(tmp) / "file"
            try:
                with SCPClient(self.transport, socket_timeout=self.io_timeout) as client:
                    client.get(remote, str(local))
            except SCPException as exc:
                if "No such file" in str(exc):
                    raise FileNotFoundError(remote) from None
                raise
            return local.read_bytes()

    def make_dirs(self, paths: Sequence[str]) -> None:
        if paths:
            self._make_dirs(list(paths))

    def stats(self, paths: Sequence[str]) -> dict[str, FileStat | None]:
        """One `stat` command for every path; a path it does not print is absent."""
        found: dict[str, FileStat | None] = {path: None for path in paths}
        if not paths or self._run is None:
            return found
        script = 'for f; do [ -f "$f" ] && [ ! -L "$f" ] && stat -c "%s %Y %a %n" -- "$f"; done; true'
        out = self._run(["sh", "-c", script, "sh", *paths])
        for line in out.splitlines():
            parts = line.split(" ", 3)
            if len(parts) == 4 and parts[3] in found:
                found[parts[3]] = (int(parts[0]), int(parts[1]), int(parts[2], 8))
        return found


def open_transfers(transport: paramiko.Transport, make_dirs: MakeDirs, where: str,
                   io_timeout: float = 15.0, run: RunCommand | None = None) -> Transfers:
    """SFTP when the board offers it, else SCP; each waits `io_timeout` at most."""
    channel = transport.open_session(timeout=io_timeout)
    channel.settimeout(io_timeout)
    try:
        within(io_timeout, channel, lambda: channel.invoke_subsystem("sftp"))
        sftp = paramiko.SFTPClient(channel)
    except socket.timeout:
        channel.close()
        raise
    except (paramiko.SSHException, OSError, EOFError) as exc:
        channel.close()
        log.info("%s: SFTP refused (%s); transferring files with SCP", where,
                 " ".join(str(exc).split()) or type(exc).__name__)
        return ScpTransfers(transport, make_dirs, run, io_timeout)
    return SftpTransfers(sftp)


def within(seconds: float, channel: paramiko.Channel, request: Callable[[], None]) -> None:
    """Make a channel request whose reply paramiko would await forever (exec,
    subsystem): past `seconds`, the channel is closed and socket.timeout raised."""
    fired = threading.Event()

    def expire() -> None:
        fired.set()
        channel.close()

    timer = threading.Timer(seconds, expire)
    timer.daemon = True
    timer.start()
    try:
        request()
    except (paramiko.SSHException, EOFError, OSError):
        if fired.is_set():
            raise socket.timeout(f"no reply within {seconds:.0f} s") from None
        raise
    finally:
        timer.cancel()

