"""ssh-setup: put the user's public key on the board, so later logins need no password."""

from __future__ import annotations

from pathlib import Path

from elkbuild.board.remote_scripts import script_text
from elkbuild.errors import BoardError
from elkbuild.executor import Executor


def install_public_key(executor: Executor, public_key_line: str) -> bool:
    """Add a public key to ~/.ssh/authorized_keys on the board; False if already there."""
    line = " ".join(public_key_line.split())
    parts = line.split(" ")
    if len(parts) < 2 or not parts[0].startswith(("ssh-", "ecdsa-", "sk-")):
        raise BoardError(f"not an OpenSSH public key: {line[:40]!r}",
                         "pass the .pub file made by ssh-keygen")
    done = executor.run(["sh", "-c", script_text("install_key.sh")], input=line + "\n")
    return done.stdout.strip() == "added"


def default_public_key() -> Path:
    for name in ("id_ed25519.pub", "id_ecdsa.pub", "id_rsa.pub"):
        path = Path.home() / ".ssh" / name
        if path.is_file():
            return path
    raise BoardError("no SSH public key found in ~/.ssh",
                     "make one with: ssh-keygen -t ed25519")
