"""Tasks: deploy, rollback and Sushi on the board(s)."""

from __future__ import annotations

from pathlib import Path

from elkbuild.cli import elk_task

from tasks.shell import load

_BOARD_HELP = {
    "host": "board host name or address (repeatable: deploys in parallel)",
    "board": "a board named in elkbuild.yaml (repeatable)",
    "all": "every board in the configuration",
    "port": "SSH port for --host (default 22)",
    "user": "login user for --host (default mind)",
    "os_version": "Elk Audio OS line of --host: 0.11 or 1.x",
    "password": "ask for the board password (or set ELKBUILD_BOARD_PASSWORD); never stored",
    "trust_host_key": "accept and record an UNKNOWN host key (prints its fingerprint); "
                      "a changed key is always refused",
}
_ONE_BOARD_HELP = {k: v for k, v in _BOARD_HELP.items() if k != "all"}
_SUSHI_HELP = {
    "multicore_processing": "pass --multicore-processing=N to Sushi",
    "timing_statistics": "pass --timing-statistics to Sushi",
    "health_seconds": "how long Sushi must stay healthy after a start (default 3)",
}


def _targets(host, board, all, port, user, os_version):
    from elkbuild.board.ssh import select_boards

    return select_boards(load(), host or (), board or (), all, int(port) if port else None,
                         user or None, os_version or None)


def _sushi(cfg, multicore_processing=None, timing_statistics=False, health_seconds=None):
    from elkbuild.sushi.service import settings_for

    def of(b):
        return settings_for(b, cfg, multicore=int(multicore_processing)
                            if multicore_processing else None,
                            timing_statistics=timing_statistics,
                            health_seconds=float(health_seconds) if health_seconds else None)
    return of


def _one_board(boards):
    from elkbuild.errors import UsageError

    if len(boards) != 1:
        raise UsageError(f"this command acts on one board; {len(boards)} given",
                         "pass a single --host or --board")
    return boards[0]


def _password(ask, boards=()):
    from elkbuild.board.ssh import resolve_password

    return resolve_password(ask, boards[0] if len(boards) == 1 else None)


@elk_task(auto_shortflags=False, iterable=["host", "board", "plugin", "model"],
          help={**_BOARD_HELP, **_SUSHI_HELP,
                "plugin": "a .vst3 bundle folder or a built plugin project's name (repeatable)",
                "model": "a model file to put in plugins/models/ (repeatable)",
                "config": "a ready Sushi JSON config to deploy and start",
                "rig": "a rig (YAML file or name in sushi-configs/) rendered to the Sushi "
                       "config for the board's OS",
                "json": "print one JSON result (files and bytes sent per board)",
                "no_progress": "no progress bars"})
def deploy(c, host=None, board=None, all=False, port=0, user="", os_version="", plugin=None,
           model=None, config="", rig="", password=False, trust_host_key=False,
           multicore_processing=0, timing_statistics=False, health_seconds="", json=False,
           no_progress=False):
    """Send plugins and a Sushi config to the board(s): incremental, atomic, health-checked."""
    import sys

    from elkbuild.deploy import deployment as dep
    from elkbuild.errors import UsageError

    cfg = load()
    boards = _targets(host, board, all, port, user, os_version)
    if config and rig:
        raise UsageError("--config and --rig both given", "pass one of them")
    sushi_config = None
    if config:
        path = Path(config)
        if not path.is_file():
            raise UsageError(f"--config {config!r}: no such file", "check the path")
        sushi_config = (path.name, path.read_bytes(), str(path))
    elif rig:
        if len({(b.os_version, b.plugin_dir) for b in boards}) != 1:
            raise UsageError("--rig with boards of different OS versions or plugin folders",
                             "deploy to each kind of board separately")
        name, data = dep.render_rig_config(cfg, rig, boards[0])
        sushi_config = (name, data, rig)
    bundles = [dep.resolve_plugin(p, cfg) for p in plugin or ()]
    payload = dep.collect_payload(bundles, sushi_config, [Path(m) for m in model or ()])
    results = dep.deploy_many(boards, payload,
                              _sushi(cfg, multicore_processing, timing_statistics,
                                     health_seconds),
                              trust_host_key=trust_host_key,
                              password=_password(password, boards),
                              show_progress=not (json or no_progress) and sys.stderr.isatty())
    _report(results, json, extra={"files_sent": sum(r.files_sent for r in results),
                                  "bytes_sent": sum(r.bytes_sent for r in results)},
            table=dep.summary_table)


def _report(results, as_json, extra=None, table=None):
    """JSON or a table; a failure is one error line per board and exit code 1."""
    import sys

    from invoke.exceptions import Exit
    from rich.console import Console

    from elkbuild.reporting import PROG, emit_json
    from elkbuild.errors import BoardError

    failed = [r for r in results if not r.ok]
    if as_json:
        emit_json({"ok": not failed, "boards": [r.as_json() for r in results], **(extra or {})})
    elif len(results) > 1 or not failed:
        if table is not None:
            Console().print(table(results))
        for r in results:
            if r.ok:
                print(f"{r.host}: {r.files_sent} files, {r.bytes_sent} bytes sent; {r.message}")
    if not failed:
        return
    if len(results) == 1:
        raise BoardError(f"{failed[0].host}: {failed[0].message}")
    for r in failed:
        print(f"{PROG}: error: {r.host}: {r.message}", file=sys.stderr)
    raise Exit(code=1)


@elk_task(auto_shortflags=False, iterable=["host", "board"], help={**_BOARD_HELP, **_SUSHI_HELP,
                                            "json": "print the result as JSON"})
def rollback(c, host=None, board=None, all=False, port=0, user="", os_version="",
             password=False, trust_host_key=False, multicore_processing=0,
             timing_statistics=False, health_seconds="", json=False):
    """Return the board(s) to the previous release and restart Sushi."""
    from elkbuild.deploy import deployment as dep

    cfg = load()
    boards = _targets(host, board, all, port, user, os_version)
    secret = _password(password, boards)
    settings = _sushi(cfg, multicore_processing, timing_statistics, health_seconds)
    results = [dep.rollback(b, settings(b), trust_host_key=trust_host_key, password=secret)
               for b in boards]
    _report(results, json)


@elk_task(auto_shortflags=False, iterable=["host", "board"], help={**_BOARD_HELP,
                                            "key": "public key file (default ~/.ssh/id_*.pub)"})
def ssh_setup(c, host=None, board=None, all=False, port=0, user="", os_version="",
              key="", password=False, trust_host_key=False):
    """Install your SSH public key on the board (logs in with the password once)."""
    from elkbuild.board.ssh import connect, default_public_key, install_public_key

    boards = _targets(host, board, all, port, user, os_version)
    key_file = Path(key).expanduser() if key else default_public_key()
    line = key_file.read_text()
    secret = _password(True, boards)  # the key is not there yet: log in with the password
    for b in boards:
        with connect(b, trust_host_key=trust_host_key, password=secret) as conn:
            added = install_public_key(conn, line)
        print(f"{b.name}: {'installed' if added else 'already had'} {key_file}")


def _sushi_task(action, host, board, port, user, os_version, password, trust_host_key,
                multicore_processing=0, timing_statistics=False, health_seconds="",
                config="", json=False):
    from elkbuild.sushi import service as sushi_service
    from elkbuild.board.ssh import connect
    from elkbuild.reporting import emit_json

    cfg = load()
    boards = _targets(host, board, False, port, user, os_version)
    b = _one_board(boards)
    settings = _sushi(cfg, multicore_processing, timing_statistics, health_seconds)(b)
    with connect(b, trust_host_key=trust_host_key, password=_password(password, boards)) as conn:
        if action == "status":
            result = sushi_service.status(conn, settings)
        elif action == "stop":
            result = sushi_service.stop(conn, settings)
        else:
            result = sushi_service.start(conn, settings, config or None,
                                         restart=action == "restart")
    if json:
        emit_json(result)
    else:
        print(" ".join(f"{k}={v}" for k, v in result.items()))


_RUN_HELP = {**_ONE_BOARD_HELP, **_SUSHI_HELP, "json": "print the result as JSON",
             "config": "config name in config_files/ or absolute path (default: the current "
                       "release's)"}


@elk_task(auto_shortflags=False, iterable=["host", "board"], help=_RUN_HELP)
def start(c, host=None, board=None, port=0, user="", os_version="", password=False,
          trust_host_key=False, multicore_processing=0, timing_statistics=False,
          health_seconds="", config="", json=False):
    """Start Sushi on the board (service where present, else a detached process)."""
    _sushi_task("start", host, board, port, user, os_version, password, trust_host_key,
                multicore_processing, timing_statistics, health_seconds, config, json)


@elk_task(auto_shortflags=False, iterable=["host", "board"], help=_RUN_HELP)
def restart(c, host=None, board=None, port=0, user="", os_version="", password=False,
            trust_host_key=False, multicore_processing=0, timing_statistics=False,
            health_seconds="", config="", json=False):
    """Stop and start Sushi on the board."""
    _sushi_task("restart", host, board, port, user, os_version, password, trust_host_key,
                multicore_processing, timing_statistics, health_seconds, config, json)


@elk_task(auto_shortflags=False, iterable=["host", "board"], help={**_ONE_BOARD_HELP,
                                            "json": "print the result as JSON"})
def stop(c, host=None, board=None, port=0, user="", os_version="", password=False,
         trust_host_key=False, json=False):
    """Stop Sushi on the board."""
    _sushi_task("stop", host, board, port, user, os_version, password, trust_host_key,
                json=json)


@elk_task(auto_shortflags=False, iterable=["host", "board"], help={**_ONE_BOARD_HELP,
                                            "json": "print the result as JSON"})
def status(c, host=None, board=None, port=0, user="", os_version="", password=False,
           trust_host_key=False, json=False):
    """Is Sushi running on the board, with which release and config."""
    _sushi_task("status", host, board, port, user, os_version, password, trust_host_key,
                json=json)


@elk_task(auto_shortflags=False, iterable=["host", "board"], help={**_ONE_BOARD_HELP, "follow": "keep printing new lines",
                                            "lines": "how many lines to show (default 100)"})
def logs(c, host=None, board=None, port=0, user="", os_version="", password=False,
         trust_host_key=False, follow=False, lines=100):
    """Show Sushi's log on the board (journal for the service, log files otherwise)."""
    from elkbuild.sushi import service as sushi_service
    from elkbuild.board.ssh import connect

    cfg = load()
    boards = _targets(host, board, False, port, user, os_version)
    b = _one_board(boards)
    settings = _sushi(cfg)(b)
    with connect(b, trust_host_key=trust_host_key, password=_password(password, boards)) as conn:
        try:
            for line in sushi_service.logs(conn, settings, int(lines), follow):
                print(line, flush=True)
        except KeyboardInterrupt:
            pass
