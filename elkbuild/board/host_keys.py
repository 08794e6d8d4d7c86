"""Host keys: the board's key is checked against its known_hosts file.

An unknown key is refused unless the caller trusts it explicitly (then its
fingerprint is printed and recorded); a changed key is always refused.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import paramiko

from elkbuild.errors import HostKeyError

log = logging.getLogger("elkbuild.board")

if TYPE_CHECKING:
    from elkbuild.config import Board


def fingerprint(key: paramiko.PKey) -> str:
    """The SHA256 fingerprint exactly as `ssh-keygen -lf` and `ssh` print it."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def known_hosts_name(host: str, port: int) -> str:
    """OpenSSH writes non-default ports as [host]:port."""
    return host if port == 22 else f"[{host}]:{port}"


def forget_hint(board: Board) -> str:
    """How to replace the recorded key of a reflashed board, once it is checked."""
    name = known_hosts_name(board.host, board.port)
    return (f"if the board was reflashed, check its new key on the console "
            f"(ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub), then remove the old one "
            f"with: ssh-keygen -R {shlex.quote(name)} -f {shlex.quote(str(board.known_hosts))}")


def load_known_hosts(known_hosts: Path, keys: paramiko.HostKeys) -> list[int]:
    """Add every usable line of known_hosts to `keys`; returns the lines skipped.

    Like OpenSSH, one malformed line (bad base64, an unknown key type, a marker
    paramiko cannot honour) is skipped with a warning instead of making every
    board unreachable.
    """
    skipped = []
    text = Path(known_hosts).read_bytes().decode("utf-8", errors="replace")
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            entry = None if line.startswith("@") else paramiko.hostkeys.HostKeyEntry.from_line(
                line, number)
        except Exception:  # paramiko raises InvalidHostKey, binascii and struct errors
            entry = None
        if entry is None or entry.key is None:
            skipped.append(number)
            continue
        for name in entry.hostnames:
            keys.add(name, entry.key.get_name(), entry.key)
    if skipped:
        shown = ", ".join(str(n) for n in skipped[:5]) + (" ..." if len(skipped) > 5 else "")
        print(f"elkbuild: warning: {known_hosts}: skipped malformed line(s) {shown}",
              file=sys.stderr, flush=True)
        log.warning("%s: skipped malformed lines %s", known_hosts, skipped)
    return skipped


class TrustOnRequest(paramiko.MissingHostKeyPolicy):
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
