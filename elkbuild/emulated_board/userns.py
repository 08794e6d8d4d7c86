"""Start an emulated board's first process in namespaces of its own.

    python userns.py LOG_FILE -- PROGRAM ARGS...

PROGRAM runs as PID 1 of new user, mount, UTS and PID namespaces, as root there,
with stdout and stderr appended to LOG_FILE. The user namespace maps uids and
gids 0..65535 one to one (root stays root, the board's mind stays 1000), and it is
what gives the board a binfmt_misc instance of its own (Linux 6.7 and later), in
which arm64 programs run on the board's CPU model without touching the host's
registrations. The maps are written from here, for the child's PID, because a
process cannot map its own namespace beyond its single uid, and the host may have
no newuidmap.

Run by EmulatedBoard.up() through the executor; standard library only, so it
runs with any Python 3 as a plain file.
"""

from __future__ import annotations

import ctypes
import os
import sys

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
ID_MAP = "0 0 65536\n"


def _unshare(flags: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(flags) != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"unshare: {os.strerror(error)}")


def _child(argv: list[str], ready: int, mapped: int) -> None:
    """In the new namespaces: wait for the maps, then fork PID 1 and leave."""
    _unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWPID)
    os.write(ready, b"u")
    os.close(ready)
    if os.read(mapped, 1) != b"m":
        os._exit(1)
    os.setresgid(0, 0, 0)
    os.setgroups([])
    os.setresuid(0, 0, 0)
    if os.fork() == 0:  # the first child in a new PID namespace is its PID 1
        os.execvp(argv[0], argv)
    os._exit(0)


def main(args: list[str]) -> int:
    if len(args) < 3 or args[1] != "--":
        print("usage: userns.py LOG_FILE -- PROGRAM ARGS...", file=sys.stderr)
        return 2
    log, argv = args[0], args[2:]
    output = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    nothing = os.open(os.devnull, os.O_RDONLY)
    os.dup2(nothing, 0)
    os.dup2(output, 1)
    os.dup2(output, 2)
    ready_r, ready_w = os.pipe()
    mapped_r, mapped_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(ready_r)
        os.close(mapped_w)
        try:
            _child(argv, ready_w, mapped_r)
        except OSError as error:
            print(f"board: cannot make its namespaces: {error}", file=sys.stderr)
        os._exit(1)
    os.close(ready_w)
    os.close(mapped_r)
    if os.read(ready_r, 1) == b"u":
        # setgroups stays "allow": the board's root may set supplementary groups
        # (sshd does for mind's sessions).
        for name in ("uid_map", "gid_map"):
            with open(f"/proc/{pid}/{name}", "w") as map_file:
                map_file.write(ID_MAP)
        os.write(mapped_w, b"m")
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
