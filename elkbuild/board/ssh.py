"""SSH to an Elk board: host-key policy, remote commands, transfers, a remote lock.

Everything elkbuild does on a board goes through `connect(board)`:

    with connect(board) as conn:
        conn.executor.run(["uname", "-a"])        # argv, quoted with shlex.join
        for line in conn.stream(["tail", "-f", "/tmp/sushi.log"]): ...
        conn.sftp.put(local, remote)

Host keys are checked against the board's known_hosts file. An unknown key is
refused unless the caller trusts it explicitly (then its fingerprint is printed
and recorded); a changed key is always refused. Passwords are used only when
passed in, and are never written anywhere.
"""

from __future__ import annotations

import base64
import getpass
import hashlib
import logging
import os
import shlex
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Mapping, Sequence

import paramiko

from elkbuild.errors import BoardError, HostKeyError
from elkbuild.executor import EXECUTORS, Completed, Executor, LineSink

if TYPE_CHECKING:
    from elkbuild.config import Board, Config

log = logging.getLogger("elkbuild.board")

PASSWORD_ENV = "ELKBUILD_BOARD_PASSWORD"
CONNECT_TIMEOUT = 15.0


# --------------------------------------------------------------------------- host keys

def fingerprint(key: paramiko.PKey) -> str:
    """The SHA256 fingerprint exactly as `ssh-keygen -lf` and `ssh` print it."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def known_hosts_name(host: str, port: int) -> str:
    """OpenSSH writes non-default ports as [host]:port."""
    return host if port == 22 else f"[{host}]:{port}"


def _forget_hint(board: Board) -> str:
    name = known_hosts_name(board.host, board.port)
    return (f"if the board was reflashed, check its new key on the console "
            f"(ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub), then remove the old one "
            f"with: ssh-keygen -R {shlex.quote(name)} -f {shlex.quote(str(board.known_hosts))}")


class _HostKeyPolicy(paramiko.MissingHostKeyPolicy):
    """Called by paramiko only for a host that known_hosts does not list at all."""

    def __init__(self, board: Board, trust: bool) -> None:
        self.board = board
        self.trust = trust

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str,
                         key: paramiko.PKey) -> None:
        shown = f"{key.get_name()} {fingerprint(key)}"
        if not self.trust:
            raise HostKeyError(
                f"host key of {self.board.address} is unknown ({shown}); refusing to connect",
                f"compare the fingerprint with the board's, then run again with "
                f"--trust-host-key to record it in {self.board.known_hosts}")
        record_host_key(self.board.known_hosts, hostname, key)
        # stderr: stdout may carry --json output
        print(f"elkbuild: trusted host key of {self.board.address}: {shown} "
              f"(recorded in {self.board.known_hosts})", file=sys.stderr, flush=True)


def record_host_key(known_hosts: Path, name: str, key: paramiko.PKey) -> None:
    """Append one line to known_hosts (existing lines, hashed or not, stay untouched)."""
    known_hosts = Path(known_hosts)
    known_hosts.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    line = f"{name} {key.get_name()} {key.get_base64()}\n"
    prefix = ""
    if known_hosts.exists() and known_hosts.stat().st_size:
        with known_hosts.open("rb") as handle:
            handle.seek(-1, os.SEEK_END)
            if handle.read(1) != b"\n":
                prefix = "\n"
    with known_hosts.open("a", encoding="utf-8") as handle:
        handle.write(prefix + line)
    os.chmod(known_hosts, 0o600)


# --------------------------------------------------------------------------- passwords

def resolve_password(prompt: bool, board: Board | None = None) -> str | None:
    """The board password when the user asked for password authentication.

    Asking means: `--password` (prompt), ELKBUILD_BOARD_PASSWORD set (CI), or a
    board whose auth policy is "password". Otherwise None: keys only.
    """
    from_env = os.environ.get(PASSWORD_ENV)
    if from_env:
        return from_env
    if prompt or (board is not None and board.auth == "password"):
        where = board.address if board is not None else "the board"
        return getpass.getpass(f"password for {where}: ")
    return None


# --------------------------------------------------------------------------- executor

def _remote_command(argv: Sequence[str], cwd: str | None,
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

    def _run(self, argv, *, cwd, env, input, timeout, on_line) -> Completed:
        if self.transport is None or not self.transport.is_active():
            raise BoardError(f"[{self.name}] the SSH connection is closed",
                             "connect again; check the board's network")
        command = _remote_command(argv, cwd, env)
        try:
            channel = self.transport.open_session(timeout=CONNECT_TIMEOUT)
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise BoardError(f"[{self.name}] cannot open a session: {exc}",
                             "check the board's network and sshd") from None
        try:
            channel.exec_command(command)
            writer = None
            if input is not None:
                data = input.encode() if isinstance(input, str) else input
                writer = threading.Thread(target=_send_all, args=(channel, data), daemon=True)
                writer.start()
            else:
                channel.shutdown_write()
            out, err = _collect(channel, timeout, on_line)
            if writer is not None:
                writer.join(timeout=1)
            if channel.exit_status_ready():
                code = channel.recv_exit_status()
            else:  # timed out, or the connection dropped before an exit status came
                code = -1
                if not self.transport.is_active():
                    raise BoardError(f"[{self.name}] the SSH connection was lost while "
                                     f"running `{shlex.join(argv)[:80]}`",
                                     "check the board's network and power")
            return Completed(list(argv), code, out, err)
        finally:
            channel.close()


def _send_all(channel: paramiko.Channel, data: bytes) -> None:
    try:
        view = memoryview(data)
        while view:
            sent = channel.send(view[:32768])
            if sent <= 0:
                break
            view = view[sent:]
        channel.shutdown_write()
    except (OSError, EOFError, paramiko.SSHException):
        pass


def _collect(channel: paramiko.Channel, timeout: float | None,
             on_line: LineSink | None) -> tuple[str, str]:
    """Read stdout and stderr until the command exits (or the timeout passes)."""
    out = bytearray()
    err = bytearray()
    pending = {"out": b"", "err": b""}
    deadline = None if timeout is None else time.monotonic() + timeout
    channel.settimeout(0.2)

    def feed(kind: str, chunk: bytes) -> None:
        if on_line is None:
            return
        buffered = pending[kind] + chunk
        *lines, pending[kind] = buffered.split(b"\n")
        for line in lines:
            on_line(line.decode(errors="replace").rstrip("\r"))

    while True:
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
        if not got:
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
    return out.decode(errors="replace"), err.decode(errors="replace")


EXECUTORS["ssh"] = SshExecutor


# --------------------------------------------------------------------------- streaming

# Runs argv with its stdin detached, and kills it when our channel's stdin reaches
# EOF: sshd closes that pipe when the client closes the channel or the connection
# drops, so a `tail -f` never outlives its reader. (Without a pty, sshd sends no
# SIGHUP; background jobs of a non-interactive sh read /dev/null, hence fd 3.)
_STREAM_WRAPPER = (
    'exec 3<&0; "$@" </dev/null & p=$!; '
    '{ cat <&3 >/dev/null; kill "$p"; } >/dev/null 2>&1 & '
    'wait "$p"'
)


class RemoteStream:
    """Lines from one long-lived remote process; close() (or leaving `with`) kills it."""

    def __init__(self, transport: paramiko.Transport, argv: Sequence[str]) -> None:
        self.argv = [str(a) for a in argv]
        self.channel = transport.open_session(timeout=CONNECT_TIMEOUT)
        self.channel.set_combine_stderr(True)
        self.channel.exec_command(shlex.join(["sh", "-c", _STREAM_WRAPPER, "elkbuild-stream",
                                              *self.argv]))
        self._file = self.channel.makefile("rb")
        self.returncode: int | None = None

    def __iter__(self) -> Iterator[str]:
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
            except (OSError, EOFError, paramiko.SSHException):
                pass
            self.channel.close()

    def __enter__(self) -> RemoteStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --------------------------------------------------------------------------- connection

class BoardConnection:
    """An authenticated SSH connection to one board (use as a context manager)."""

    def __init__(self, board: Board, client: paramiko.SSHClient) -> None:
        self.board = board
        self.client = client
        transport = client.get_transport()
        assert transport is not None
        self.transport = transport
        self.executor = SshExecutor(name=board.name, transport=transport)
        self._sftp: paramiko.SFTPClient | None = None

    @property
    def sftp(self) -> paramiko.SFTPClient:
        if self._sftp is None:
            try:
                self._sftp = self.client.open_sftp()
            except (paramiko.SSHException, OSError, EOFError) as exc:
                raise BoardError(f"{self.board.address}: SFTP is not available: {exc}",
                                 "the board's sshd needs the sftp subsystem enabled") from None
        return self._sftp

    def stream(self, argv: Sequence[str]) -> RemoteStream:
        """Iterate over the output lines of one remote process (stderr merged)."""
        try:
            return RemoteStream(self.transport, argv)
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise BoardError(f"{self.board.address}: cannot start `{shlex.join(argv)}`: {exc}",
                             "check the board's network") from None

    def close(self) -> None:
        if self._sftp is not None:
            try:
                self._sftp.close()
            except (OSError, EOFError, paramiko.SSHException):
                pass
            self._sftp = None
        self.client.close()

    def __enter__(self) -> BoardConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def connect(board: Board, *, trust_host_key: bool = False,
            password: str | None = None) -> BoardConnection:
    """Open an SSH connection to `board`, checking its host key first.

    Raises HostKeyError for an unknown (unless trusted) or changed key, BoardError
    when the board cannot be reached or refuses to log us in.
    """
    client = paramiko.SSHClient()
    known_hosts = Path(board.known_hosts)
    if known_hosts.is_file():
        try:
            client.load_host_keys(str(known_hosts))
        except (OSError, paramiko.SSHException) as exc:
            raise HostKeyError(f"{known_hosts}: cannot be read: {exc}",
                               "fix or remove the broken line") from None
    client.set_missing_host_key_policy(_HostKeyPolicy(board, trust_host_key))
    key_filename = str(board.identity_file) if board.identity_file else None
    use_keys = board.auth in ("key", "agent") or password is None
    try:
        client.connect(
            board.host, port=board.port, username=board.user,
            password=password, key_filename=key_filename,
            look_for_keys=use_keys and key_filename is None,
            allow_agent=board.auth == "agent" or (use_keys and key_filename is None),
            timeout=CONNECT_TIMEOUT, banner_timeout=CONNECT_TIMEOUT,
            auth_timeout=CONNECT_TIMEOUT,
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
            _forget_hint(board)) from None
    except paramiko.AuthenticationException:
        client.close()
        how = "password" if password else "SSH key"
        raise BoardError(
            f"{board.address} refused our {how}",
            "install your key with `invoke ssh-setup --host HOST --password`, "
            "or use --password (or ELKBUILD_BOARD_PASSWORD)") from None
    except (socket.timeout, TimeoutError):
        client.close()
        raise BoardError(f"{board.address}: no answer within {CONNECT_TIMEOUT:.0f} s",
                         "check that the board is powered and on this network") from None
    except (paramiko.SSHException, OSError, EOFError) as exc:
        client.close()
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise BoardError(f"cannot reach {board.address}: {reason}",
                         "check the host name, port and that sshd runs on the board") from None
    return BoardConnection(board, client)


# --------------------------------------------------------------------------- ssh-setup

def install_public_key(conn: BoardConnection, public_key_line: str) -> bool:
    """Add a public key to ~/.ssh/authorized_keys on the board; False if already there."""
    line = " ".join(public_key_line.split())
    parts = line.split(" ")
    if len(parts) < 2 or not parts[0].startswith(("ssh-", "ecdsa-", "sk-")):
        raise BoardError(f"not an OpenSSH public key: {line[:40]!r}",
                         "pass the .pub file made by ssh-keygen")
    # The key travels on stdin, never inside the command line.
    script = (
        'umask 077; mkdir -p "$HOME/.ssh"; f="$HOME/.ssh/authorized_keys"; touch "$f"; '
        'read -r key; '
        'if grep -qxF -- "$key" "$f"; then echo present; '
        'else printf "%s\\n" "$key" >>"$f" && echo added; fi'
    )
    done = conn.executor.run(["sh", "-c", script], input=line + "\n")
    return done.stdout.strip() == "added"


def default_public_key() -> Path:
    for name in ("id_ed25519.pub", "id_ecdsa.pub", "id_rsa.pub"):
        path = Path.home() / ".ssh" / name
        if path.is_file():
            return path
    raise BoardError("no SSH public key found in ~/.ssh",
                     "make one with: ssh-keygen -t ed25519")


# --------------------------------------------------------------------------- remote shell

# Shell functions shared by every script elkbuild runs on a board. Scripts are static
# text; values reach them only as shlex.quote'd assignments or shlex.join'ed argv.
COMMON_FUNCTIONS = r'''
elk_pid_alive() {  # PID: a live process (a zombie is not); builtins only, forks are slow
  [ -n "$1" ] || return 1
  read -r elk_stat <"/proc/$1/stat" 2>/dev/null || return 1
  case "${elk_stat##*) }" in Z*|X*|"") return 1;; esac
}
elk_read() {  # VAR FILE: the first line of FILE into VAR, empty when absent
  eval "$1="
  [ -r "$2" ] && IFS= read -r "$1" <"$2"
  return 0
}
'''


def shell_assign(**values: object) -> str:
    """`NAME='value'` lines for a remote script, every value quoted."""
    return "".join(f"{name}={shlex.quote(str(value))}\n" for name, value in values.items())


def run_script(conn: BoardConnection, body: str, *, check: bool = True,
               timeout: float | None = None) -> Completed:
    """Run a multi-line script with ONE remote command (`sh -s`, script on stdin).

    The body is wrapped in a function that is called on the last line: sh parses the
    whole function before running any of it, so a script cut short in transit (client
    killed, link dropped) runs nothing at all instead of its first half.
    """
    script = "elk_main() {\n" + body + "\n}\nelk_main\n"
    return conn.executor.run(["sh", "-s"], input=script, check=check, timeout=timeout)


# --------------------------------------------------------------------------- remote lock

LOCK_WAIT_SECONDS = 10

# The lock is a file created with O_EXCL (the shell's noclobber). It names the sshd process
# serving our connection: when the client dies or the link drops, that process
# exits, so a later deploy can tell a stale lock from a live one without guessing
# by age. A finaliser that outlives its client (it ignores SIGPIPE) adds its own
# pid, so the lock stays held until it is really done.
LOCK_FUNCTIONS = COMMON_FUNCTIONS + r'''
elk_session_pid() {  # ELK_SESSION := the sshd process serving this connection
  ELK_SESSION=$$; elk_p=$$
  while [ "${elk_p:-1}" -gt 1 ]; do
    IFS= read -r elk_comm <"/proc/$elk_p/comm" 2>/dev/null || return 0
    case "$elk_comm" in sshd*) ELK_SESSION=$elk_p; return 0;; esac
    read -r elk_stat <"/proc/$elk_p/stat" 2>/dev/null || return 0
    set -- ${elk_stat##*) }
    elk_p=$2
  done
}
elk_lock_live() {  # FILE: does a live process hold this lock?
  [ -f "$1" ] || return 1
  while IFS='=' read -r elk_k elk_v; do
    [ "$elk_k" = pid ] && elk_pid_alive "$elk_v" && return 0
  done <"$1"
  return 1
}
elk_lock() {  # FILE WHO SINCE WAIT_SECONDS
  elk_waited=0; elk_ownerless=0
  elk_session_pid
  while :; do
    # noclobber: the shell creates the file with O_EXCL, atomically, no process needed
    set -C
    if { printf 'pid=%s\nwho=%s\nsince=%s\n' "$ELK_SESSION" "$2" "$3" >"$1"; } 2>/dev/null; then
      set +C; return 0
    fi
    set +C
    if [ ! -s "$1" ] && [ "$elk_ownerless" -lt 3 ]; then
      elk_ownerless=$((elk_ownerless + 1))  # being written right now: give it a moment
    elif ! elk_lock_live "$1"; then
      mv -f "$1" "$1.stale.$$" 2>/dev/null && rm -f "$1.stale.$$"
      continue
    elif [ "$elk_waited" -ge "$4" ]; then
      elk_owner=""
      while IFS= read -r elk_line; do elk_owner="$elk_owner $elk_line"; done <"$1"
      echo "lock-busy=$elk_owner"
      return 75
    fi
    sleep 1; elk_waited=$((elk_waited + 1))
  done
}
elk_unlock() { rm -f "$1"; }
'''


def lock_since() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def lock_owner_text() -> str:
    """Who holds the lock, for the message another user sees."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}/pid{os.getpid()}"


def lock_busy_error(board: Board, owner_line: str) -> BoardError:
    fields = dict(part.split("=", 1) for part in owner_line.split() if "=" in part)
    who = fields.get("who", "another elkbuild")
    since = fields.get("since", "an unknown time")
    return BoardError(
        f"{board.address} is locked by another deploy: {who} since {since}",
        "wait for it to finish; a lock whose SSH session died is cleared automatically")


# --------------------------------------------------------------------------- choosing boards

def select_boards(cfg: Config, hosts: Sequence[str] = (), names: Sequence[str] = (),
                  every: bool = False, port: int | None = None, user: str | None = None,
                  os_version: str | None = None) -> list[Board]:
    """The boards a command acts on: --host (repeatable), --board (repeatable), --all."""
    from elkbuild.errors import UsageError

    chosen: list[Board] = []
    if every:
        chosen.extend(cfg.boards.values())
        if not chosen:
            raise UsageError("--all: no boards are configured",
                             "add a boards: section to elkbuild.yaml, or use --host")
    chosen.extend(cfg.board(name) for name in names)
    chosen.extend(cfg.board_for_host(host, port=port, user=user, os_version_=os_version)
                  for host in hosts)
    if not chosen:
        configured = list(cfg.boards.values())
        if len(configured) == 1:
            return configured
        raise UsageError("which board? none given",
                         "pass --host HOST, --board NAME (from elkbuild.yaml) or --all")
    unique: dict[tuple[str, int], Board] = {}
    for board in chosen:
        unique.setdefault((board.host, board.port), board)
    return list(unique.values())
