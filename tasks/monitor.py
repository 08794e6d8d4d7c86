"""Tasks: mode-switch monitor and debug."""

from __future__ import annotations

from pathlib import Path

from elkbuild.cli import elk_task

from tasks.shell import load, load_for_boards


def _monitor_target(host: str, board: str, port=0, user="", os_version=""):
    """The one board named by --board or --host (or the only configured one), and
    where its os_version comes from, to check against the board (None: detect)."""
    from elkbuild.board.selection import select_boards
    from elkbuild.errors import UsageError
    from elkbuild.executor import LocalExecutor

    if host and board:
        raise UsageError("give --host or --board, not both")
    # Without --host or --board the only configured board is meant: flags apply to it.
    named = [board] if board else ([] if host else list(load().boards))
    cfg = load_for_boards(named, port, user, os_version)
    (target,) = select_boards(cfg, [host] if host else (), [board] if board else (), False,
                              int(port) if port else None, user or None, os_version or None,
                              executor=LocalExecutor())
    if host:
        return target, ("--os-version" if os_version else None)
    if target.name not in cfg.boards:
        from elkbuild.emulated_board.target import OS_SOURCE

        return target, OS_SOURCE
    return target, f"boards.{target.name}.os_version"


_MONITOR_BOARD_HELP = {
    "host": "board address",
    "board": "a board from elkbuild.yaml, or `emulated` (emulated:NAME) for the emulated board",
    "port": "SSH port for --host (default 22), or instead of the --board's",
    "user": "login user for --host (default mind), or instead of the --board's",
    "os_version": "Elk Audio OS line of the board: 0.11 or 1.x (checked against the board)",
    "password": "ask for the board password (or set ELKBUILD_BOARD_PASSWORD); never stored",
    "trust_host_key": "accept and record an UNKNOWN host key (prints its fingerprint)",
}


def _monitor_connect(target, password: bool, trust_host_key: bool):
    from elkbuild.board.connection import connect
    from elkbuild.board.passwords import resolve_password

    return connect(target, trust_host_key=trust_host_key,
                   password=resolve_password(password, target))


@elk_task(help={**_MONITOR_BOARD_HELP,
                "host": "board address (an ad-hoc board; its OS version is detected)",
                "board": "a board from elkbuild.yaml (its os_version is checked), or "
                         "`emulated` (emulated:NAME) for the emulated board",
                "interval": "seconds between snapshots (default 0.5)",
                "duration": "stop after this many seconds (default: until Ctrl-C)",
                "stall": "fail when the board sends no snapshot for this many seconds "
                         "(default 10, at least 10 intervals)",
                "grace": "seconds after a thread appears during which its switches are "
                         "tolerated (start-up; default 3)",
                "json": "print one JSON object per snapshot instead of the live table",
                "fail_on_switch": "exit with code 3 if any switch is seen after the grace period",
                "source": "analyse a saved capture (concatenated `cat /proc/xenomai/sched/"
                          "stat` or `evl ps -s` output) instead of a board",
                "save": "also write what the board printed to this file (replay it with "
                        "--source)"},
          auto_shortflags=False)
def monitor(c, host="", board="", port=0, user="", os_version="", interval=0.5, duration=0.0,
            grace=3.0, json=False, fail_on_switch=False, source="", save="", password=False,
            trust_host_key=False, stall=10.0):
    """Watch the real-time threads' mode switches (MSW on 0.11, ISW on 1.x) live."""
    from elkbuild.errors import UsageError
    from elkbuild.monitor.presenter import JsonPresenter, TablePresenter
    from elkbuild.monitor.session import MonitorOptions, monitor_board, monitor_capture

    if duration < 0:
        raise UsageError(f"--duration {duration}: must be 0 (no limit) or more")
    options = MonitorOptions(interval=float(interval), duration=float(duration) or None,
                             grace=float(grace), fail_on_switch=fail_on_switch, stall=float(stall))
    presenter = JsonPresenter() if json else TablePresenter()
    if source:
        if host or board or save:
            raise UsageError("--source reads a capture: leave out --host, --board and --save")
        monitor_capture(Path(source), options, presenter)
        return
    target, config_key = _monitor_target(host, board, port, user, os_version)
    with _monitor_connect(target, password, trust_host_key) as conn:
        monitor_board(conn, options, presenter,
                      expected_os=target.os_version if config_key else None,
                      config_key=config_key, save=Path(save) if save else None)


@elk_task(help={**_MONITOR_BOARD_HELP,
                "config": "the Sushi JSON config on the board (passed to sushi -c)",
                "sushi": "the Sushi binary to run (default sushi_b64: gdb needs the ELF, "
                         "not the /usr/bin/sushi wrapper)",
                "timeout": "give up after this many seconds without a mode switch",
                "gdbserver": "run the program under this gdb server on the board (gdbserver, "
                             "or a qemu gdb stub) and debug it from here through SSH",
                "gdb": "the gdb to use (default: gdb on the board; gdb-multiarch here "
                       "with --gdbserver)",
                "json": "print the result as one JSON object"},
          auto_shortflags=False)
def debug(c, config="", host="", board="", port=0, user="", os_version="", sushi="",
          timeout=60.0, gdbserver="", gdb="", json=False, password=False, trust_host_key=False):
    """Run Sushi under gdb with --debug-mode-sw; print the backtrace of the first mode switch."""
    from elkbuild.executor import LocalExecutor
    from elkbuild.monitor import debug as _debug
    from elkbuild.reporting import emit_json

    arguments = _debug.sushi_args(config)
    program = sushi or _debug.DEFAULT_SUSHI
    target, _ = _monitor_target(host, board, port, user, os_version)
    with _monitor_connect(target, password, trust_host_key) as conn:
        if not json:
            where = f"under {gdbserver} on the board, gdb here" if gdbserver else "under gdb"
            print(f"running {program} {where} ({target.address}); waiting up to "
                  f"{float(timeout):g} s for its first mode switch", flush=True)
        if gdbserver:
            result = _debug.debug_via_server(conn, program, arguments, server=gdbserver,
                                             gdb=gdb or "gdb-multiarch", timeout=float(timeout),
                                             local=LocalExecutor())
        else:
            result = _debug.debug_on_board(conn.executor, program, arguments,
                                           gdb=gdb or "gdb", timeout=float(timeout))
    if json:
        emit_json(result.to_json())
    else:
        print(_debug.render(result))
    _debug.conclude(result)
