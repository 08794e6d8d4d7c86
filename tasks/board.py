"""Tasks: the emulated board."""

from __future__ import annotations

from pathlib import Path

from elkbuild.cli import elk_task

from tasks.shell import load

def _emulated_board(name: str, port: int | None = None, os_version: str | None = None,
                    sftp: bool | None = None):
    from elkbuild.emulated_board import EmulatedBoard
    from elkbuild.executor import LocalExecutor

    return EmulatedBoard(LocalExecutor(), load().cache_dir, name=name, port=port,
                         os_version=os_version, sftp=sftp)


@elk_task(help={"name": "board instance name (default: default); each keeps its own "
                        "host key, port and files",
                "port": "loopback port for its sshd (default 2222, then the last one used)",
                "os": "OS profile: 0.11 (Xenomai 3, Debian bullseye userland with glibc 2.31) or "
                      "1.x (EVL, bookworm, glibc 2.36) (default: the last one used, 1.x)",
                "mirror": "Debian mirror the board's userland is built from the first time "
                          "(default: deb.debian.org; bullseye later: http://archive.debian.org/debian)",
                "record_host_key": "add the board's host key to this known_hosts file "
                                   "(e.g. ~/.ssh/known_hosts), replacing an old entry",
                "json": "print the board's status as one JSON object",
                "sftp": "--no-sftp: an instance whose sshd has no SFTP subsystem, like Yocto images "
                           "with Dropbear (transfers then use SCP); kept by the instance"})
def board_up(c, name="default", port=None, os=None, record_host_key=None, json=False,
             sftp=True, mirror=""):
    """Start the emulated Elk board (builds it from nothing the first time, minutes)."""
    from elkbuild.reporting import emit_json

    from elkbuild.emulated_board import images

    board = _emulated_board(name, int(port) if port else None, None, None if sftp else False)
    if os:
        board.set_profile(os)  # a running board shows the new view at once
        if board.is_running() and board.userland() != images.rootfs_recipe(os)["suite"]:
            # The view's userland (glibc, libstdc++) is not the running one: restart.
            if not json:
                print(f"emulated board {name!r}: restarting with the Elk Audio OS {os} userland")
            board.down()
    seconds = board.up(progress=None if json else print, mirror=mirror or images.DEFAULT_MIRROR)
    if record_host_key:
        board.record_host_key(Path(record_host_key).expanduser())
    status = board.status()
    if json:
        emit_json({**status, "seconds": round(seconds, 2)})
        return
    state = f"up in {seconds:.1f} s" if seconds else "already running"
    print(f"emulated board {name!r} {state}: {board.user}@{board.host} port {board.port}, "
          f"Elk Audio OS {board.os_version} profile, Debian {board.userland()} userland, "
          f"qemu {images.BOARD_CPU} CPU")
    print(f"  ssh: {' '.join(board.ssh_argv())}")
    print(f"  password: {board.password}   client key: {board.client_key}")
    print(f"  known_hosts line: {board.host_key_line}")


@elk_task(help={"name": "board instance name (default: default)",
                "destroy": "also delete the instance: its files, host key and client key"})
def board_down(c, name="default", destroy=False):
    """Stop the emulated Elk board (every process on it ends)."""
    board = _emulated_board(name)
    ran = board.down()
    if destroy:
        board.destroy()
    print(f"emulated board {name!r} {'stopped' if ran else 'was not running'}"
          + (", instance deleted" if destroy else ""))


@elk_task(help={"name": "board instance name (default: default)",
                "json": "print the status as one JSON object"})
def board_status(c, name="default", json=False):
    """Show whether the emulated board runs, where, with which profile and keys."""
    from elkbuild.reporting import emit_json

    status = _emulated_board(name).status()
    if json:
        emit_json(status)
        return
    for key, value in status.items():
        print(f"{key:>14}: {value}")
