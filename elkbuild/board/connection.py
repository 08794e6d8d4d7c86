"""An authenticated SSH connection to one board; everything elkbuild does there
goes through it:

    with connect(board) as conn:
        conn.executor.run(["uname", "-a"])            # argv, quoted with shlex.join
        for line in conn.stream(["tail", "-f", "/tmp/sushi.log"]): ...
        conn.executor.write_bytes("/udata/x", data)   # SFTP, or SCP without SFTP

Host keys are checked first (host_keys.py). Passwords are used only when passed
in, and are never written anywhere.
"""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import paramiko

from elkbuild.board.host_keys import TrustOnRequest, fingerprint, forget_hint, load_known_hosts
from elkbuild.board.ssh_executor import SshExecutor
from elkbuild.errors import BoardError, BoardUnresponsive, HostKeyError
from elkbuild.executor import LineStream

if TYPE_CHECKING:
    from elkbuild.config import Board

# paramiko's transport thread logs a failed handshake itself ("Exception (client):
# Error reading SSH protocol banner"); the error raised here says it in one line
logging.getLogger("paramiko").addHandler(logging.NullHandler())


class BoardConnection:
    """An open SSH connection to one board (use as a context manager)."""

    def __init__(self, board: Board, client: paramiko.SSHClient, *, dry_run: bool = False) -> None:
        self.board = board
        self.client = client
        transport = client.get_transport()
        assert transport is not None
        self.transport = transport
        self.executor = SshExecutor(name=board.name, transport=transport, dry_run=dry_run,
                                    command_timeout=float(board.command_timeout),
                                    io_timeout=float(board.io_timeout))

    def stream(self, argv: Sequence[str]) -> LineStream:
        """Iterate over the output lines of one remote process (stderr merged); a
        RemoteStream, whose `returncode` is set once the process has ended."""
        return self.executor.stream(argv)

    def close(self) -> None:
        self.executor.close()
        self.client.close()

    def __enter__(self) -> BoardConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AuthenticationFailed(BoardError):
    """The board answered but would not log us in: a key or password matter, not the
    network's and not the host key's."""

    def __init__(self, message: str) -> None:
        super().__init__(f"{message} (authentication failed)",
                         "install your key on the board once with `invoke ssh-setup`, log in "
                         "with the board password (--password or ELKBUILD_BOARD_PASSWORD), or "
                         "set identity_file for the board in elkbuild.yaml")


def connect(board: Board, *, trust_host_key: bool = False, password: str | None = None,
            dry_run: bool = False) -> BoardConnection:
    """Open an SSH connection to `board`, checking its host key first.

    Raises HostKeyError for an unknown (unless trusted) or changed key, BoardError
    when the board cannot be reached or refuses to log us in. With `dry_run`, the
    connection only reads: its executor says what it would change.
    """
    client = paramiko.SSHClient()
    known_hosts = Path(board.known_hosts)
    if known_hosts.is_file():
        try:
            load_known_hosts(known_hosts, client.get_host_keys())
        except OSError as exc:
            raise HostKeyError(f"{known_hosts}: cannot be read: {exc.strerror}",
                               "check the file's permissions") from None
    client.set_missing_host_key_policy(TrustOnRequest(board, trust_host_key))
    key_filename = str(board.identity_file) if board.identity_file else None
    use_keys = board.auth in ("key", "agent") or password is None
    bound = float(board.connect_timeout)
    try:
        client.connect(
            board.host, port=board.port, username=board.user,
            password=password, key_filename=key_filename,
            look_for_keys=use_keys and key_filename is None,
            allow_agent=board.auth == "agent" or (use_keys and key_filename is None),
            timeout=bound, banner_timeout=bound, auth_timeout=bound, channel_timeout=bound,
        )
    except HostKeyError:
        client.close()
        raise
    except paramiko.BadHostKeyException as exc:
        client.close()
        raise HostKeyError(
            f"host key of {board.address} has CHANGED (expected "
            f"{fingerprint(exc.expected_key)}, got {exc.key.get_name()} "
            f"{fingerprint(exc.key)}); refusing to connect: this may be an attack",
            forget_hint(board)) from None
    except paramiko.AuthenticationException:
        transport = client.get_transport()
        alive = transport is not None and transport.is_active()
        client.close()
        if not alive:  # the link died while logging in: no refusal was ever heard
            raise BoardUnresponsive(
                f"{board.address}: the board stopped answering while logging in "
                f"(network or board)", "check the board's power and network") from None
        how = "password" if password else (f"SSH key {board.identity_file}"
                                            if board.identity_file else "SSH keys")
        raise AuthenticationFailed(f"{board.address} refused our {how}") from None
    except (socket.timeout, TimeoutError):
        client.close()
        raise BoardUnresponsive(f"{board.address}: no answer within {bound:.0f} s "
                                f"(network or board)",
                                "check that the board is powered and on this network "
                                "(or raise connect_timeout)") from None
    except (paramiko.SSHException, OSError, EOFError) as exc:
        client.close()
        reason = " ".join(str(exc).split()) or type(exc).__name__
        if "authentication methods" in reason.lower():  # paramiko: no key, agent or password
            raise AuthenticationFailed(f"{board.address}: we have no SSH key or password "
                                       f"to log in with") from None
        if "banner" in reason.lower() or "timeout" in reason.lower() \
                or "no existing session" in reason.lower():
            raise BoardUnresponsive(
                f"{board.address}: the board accepted the connection but did not answer "
                f"within {bound:.0f} s (network or board)",
                "check that the board is not frozen or overloaded; power-cycle it") from None
        raise BoardError(f"cannot reach {board.address}: {reason}",
                         "check the host name, port and that sshd runs on the board") from None
    transport = client.get_transport()
    if transport is not None and board.keepalive:
        transport.set_keepalive(int(board.keepalive))
    return BoardConnection(board, client, dry_run=dry_run)


@dataclass(frozen=True)
class ConnectOptions:
    """How to open connections for one command (the same for each of its boards)."""

    trust_host_key: bool = False
    password: str | None = field(default=None, repr=False)  # never shown
    dry_run: bool = False

    def open(self, board: Board) -> BoardConnection:
        return connect(board, trust_host_key=self.trust_host_key, password=self.password,
                       dry_run=self.dry_run)
