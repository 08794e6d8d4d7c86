"""elkbuild's invoke tasks: a thin shell over the `elkbuild` package.

Run `invoke --list` for the tasks, `invoke --help TASK` for a task's flags.
"""

from __future__ import annotations

from elkbuild.cli import elk_task

# ==== config ====
from pathlib import Path

from elkbuild import config as _config

PROJECT_DIR = Path(__file__).resolve().parent


def project_dir() -> Path:
    """This checkout, or another project's folder named by ELKBUILD_PROJECT_DIR."""
    import os

    return Path(os.environ.get("ELKBUILD_PROJECT_DIR") or PROJECT_DIR)


def load(overrides: dict | None = None) -> _config.Config:
    """The project's configuration, with command-line flags as the top layer."""
    return _config.load_config(project_dir(), overrides)


@elk_task(help={"json": "print the configuration as one JSON object (value and origin per key)",
                "key": "show only keys under this path, e.g. boards.studio"})
def config(c, key="", json=False):
    """Print the effective configuration and where each value came from."""
    from elkbuild.config_report import print_config

    print_config(load(), prefix=key, as_json=json)
# ==== end config ====

# ==== sushi ====
def _sushi_versions(os_flag: str | None, cfg: _config.Config) -> list[str]:
    from elkbuild.sushi import VERSIONS, normalize_version

    if os_flag in ("all", "both"):
        return list(VERSIONS)
    return [normalize_version(os_flag or cfg.get("sushi.os_version", "1.x"))]


@elk_task(help={"rig": "a rig name in sushi-configs/ or a rig file; repeat the flag or "
                       "separate with commas for several; all rigs when left out",
                "os": "Sushi version: 0.11, 1.x or all (default: sushi.os_version, 1.x)",
                "out": "write to this file instead of sushi-configs/rendered/<rig>.<os>.json "
                       "(one rig, one version)",
                "check": "write nothing; fail when a rendered file differs from its rig",
                "json": "print one JSON object per rendered config"},
          iterable=["rig"])
def sushi_config(c, rig=None, os=None, out=None, check=False, json=False):
    """Render rigs (YAML) to Sushi JSON configs, validated as Sushi would before writing."""
    from elkbuild.cli import emit_json
    from elkbuild.errors import ValidationFailed
    from elkbuild.sushi import render_rigs

    cfg = load()
    names = [n.strip() for item in rig or [] for n in item.split(",") if n.strip()]
    versions = _sushi_versions(os or ("all" if check else None), cfg)
    results = render_rigs(cfg, names, versions, Path(out) if out else None, check_only=check)
    for result in results:
        shown = result.dest.relative_to(cfg.root) if result.dest.is_relative_to(cfg.root) \
            else result.dest
        if json:
            emit_json(result.as_dict())
        elif check:
            print(f"{'up to date' if result.up_to_date else 'OUT OF DATE'}: {shown}")
        else:
            print(f"{'wrote' if result.changed else 'unchanged'}: {shown}")
    stale = [r for r in results if not r.up_to_date]
    if check and stale:
        raise ValidationFailed("rendered Sushi configs differ from their rigs",
                               [f"{r.dest}: differs from what {r.rig} renders to" for r in stale],
                               "run `invoke sushi-config` and commit the result")


@elk_task(help={"file": "the Sushi JSON file to check",
                "os": "Sushi version to check against: 0.11 or 1.x (default: guessed from "
                      "the file's shape)",
                "json": "print the verdict as one JSON object"})
def sushi_check(c, file, os=None, json=False):
    """Check a Sushi JSON config: exit 0 when Sushi would accept it, else one line a problem."""
    import sys

    from invoke.exceptions import Exit

    from elkbuild.cli import PROG, emit_json
    from elkbuild.errors import ValidationFailed
    from elkbuild.sushi import check_file, normalize_version

    verdict = check_file(Path(file), normalize_version(os) if os else None)
    if json:
        emit_json(verdict.as_dict())
        if not verdict.ok:
            raise Exit(code=1)
        return
    assumed = (f" (assumed Sushi {verdict.version}: {verdict.assumed}; pass --os to choose)"
               if verdict.assumed else "")
    for warning in verdict.json_warnings + verdict.report.warnings:
        print(f"{PROG}: warning: {file}: {warning}", file=sys.stderr)
    if not verdict.ok:
        raise ValidationFailed(f"{file}: Sushi {verdict.version} would refuse it{assumed}",
                               verdict.report.problems)
    print(f"{file}: accepted by Sushi {verdict.version}{assumed}")
# ==== end sushi ====

# ==== board ====
def _emulated_board(name: str, port: int | None = None, os_version: str | None = None):
    from elkbuild.emulated_board import EmulatedBoard
    from elkbuild.executor import LocalExecutor

    return EmulatedBoard(LocalExecutor(), load().cache_dir, name=name, port=port,
                         os_version=os_version)


@elk_task(help={"name": "board instance name (default: default); each keeps its own "
                        "host key, port and files",
                "port": "loopback port for its sshd (default 2222, then the last one used)",
                "os": "OS profile: 0.11 (Xenomai 3) or 1.x (EVL) (default: the last one used, 1.x)",
                "record_host_key": "add the board's host key to this known_hosts file "
                                   "(e.g. ~/.ssh/known_hosts), replacing an old entry",
                "json": "print the board's status as one JSON object"})
def board_up(c, name="default", port=None, os=None, record_host_key=None, json=False):
    """Start the emulated Elk board (builds it from nothing the first time, minutes)."""
    from elkbuild.cli import emit_json

    board = _emulated_board(name, int(port) if port else None, os)
    if os and board.is_running() and os != board.os_version:
        board.set_profile(os)
    seconds = board.up(progress=None if json else print)
    if record_host_key:
        board.record_host_key(Path(record_host_key).expanduser())
    status = board.status()
    if json:
        emit_json({**status, "seconds": round(seconds, 2)})
        return
    state = f"up in {seconds:.1f} s" if seconds else "already running"
    print(f"emulated board {name!r} {state}: {board.user}@{board.host} port {board.port}, "
          f"Elk Audio OS {board.os_version} profile")
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
    from elkbuild.cli import emit_json

    status = _emulated_board(name).status()
    if json:
        emit_json(status)
        return
    for key, value in status.items():
        print(f"{key:>14}: {value}")
# ==== end board ====

# ==== deploy ====
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

    from elkbuild.cli import PROG, emit_json
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
    from elkbuild.cli import emit_json

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
# ==== end deploy ====

# ==== monitor ====
def _monitor_target(host: str, board: str, port=0, user="", os_version=""):
    """The one board named by --board or --host (or the only configured one), and
    where its os_version comes from, to check against the board (None: detect)."""
    from elkbuild.board.ssh import select_boards
    from elkbuild.errors import UsageError

    if host and board:
        raise UsageError("give --host or --board, not both")
    cfg = load()
    (target,) = select_boards(cfg, [host] if host else (), [board] if board else (), False,
                              int(port) if port else None, user or None, os_version or None)
    if host:
        return target, ("--os-version" if os_version else None)
    return target, f"boards.{target.name}.os_version"


_MONITOR_BOARD_HELP = {
    "host": "board address",
    "board": "a board from elkbuild.yaml",
    "port": "SSH port for --host (default 22)",
    "user": "login user for --host (default mind)",
    "os_version": "Elk Audio OS line of --host: 0.11 or 1.x (checked against the board)",
    "password": "ask for the board password (or set ELKBUILD_BOARD_PASSWORD); never stored",
    "trust_host_key": "accept and record an UNKNOWN host key (prints its fingerprint)",
}


def _monitor_connect(target, password: bool, trust_host_key: bool):
    from elkbuild.board.ssh import connect, resolve_password

    return connect(target, trust_host_key=trust_host_key,
                   password=resolve_password(password, target))


@elk_task(help={**_MONITOR_BOARD_HELP,
                "host": "board address (an ad-hoc board; its OS version is detected)",
                "board": "a board from elkbuild.yaml (its os_version is checked)",
                "interval": "seconds between snapshots (default 0.5)",
                "duration": "stop after this many seconds (default: until Ctrl-C)",
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
            trust_host_key=False):
    """Watch the real-time threads' mode switches (MSW on 0.11, ISW on 1.x) live."""
    from elkbuild.monitor import session as _monitor
    from elkbuild.cli import emit_json
    from elkbuild.errors import UsageError

    if duration < 0:
        raise UsageError(f"--duration {duration}: must be 0 (no limit) or more")
    options = _monitor.MonitorOptions(interval=float(interval), duration=float(duration) or None,
                                      grace=float(grace), fail_on_switch=fail_on_switch)
    presenter = _monitor.JsonPresenter(emit_json) if json else _monitor.TablePresenter()
    if source:
        if host or board or save:
            raise UsageError("--source reads a capture: leave out --host, --board and --save")
        _monitor.monitor_capture(Path(source), options, presenter)
        return
    target, config_key = _monitor_target(host, board, port, user, os_version)
    with _monitor_connect(target, password, trust_host_key) as conn:
        _monitor.monitor_board(conn, options, presenter,
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
    from elkbuild.monitor import debug as _debug
    from elkbuild.cli import emit_json

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
                                             gdb=gdb or "gdb-multiarch", timeout=float(timeout))
        else:
            result = _debug.debug_on_board(conn.executor, program, arguments,
                                           gdb=gdb or "gdb", timeout=float(timeout))
    if json:
        emit_json(result.to_json())
    else:
        print(_debug.render(result))
    _debug.conclude(result)
# ==== end monitor ====

# ==== docker ====
@elk_task(help={
    "toolchain": "toolchain whose image to build (default: the project's toolchain)",
    "seed_base": "make the base image from Debian packages even if it exists (air-gapped hosts)",
    "sdk_installer": "a local Elk-PI SDK installer (.sh) instead of downloading it",
    "sdk_sha256": "the installer's sha256, checked before it is used",
    "force": "rebuild even when the image's inputs are unchanged",
    "mirror": "Debian mirror for the base image and the sysroot (default: deb.debian.org)",
    "json": "print the result as one JSON object",
})
def docker_image(c, toolchain="", seed_base=False, sdk_installer="", sdk_sha256="", force=False,
                 mirror="", json=False, verbose=False):
    """Build a toolchain's Docker image; reused while its inputs are unchanged."""
    from elkbuild.cli import emit_json
    from elkbuild.docker.commands import BuildDisplay, build_image, image_toolchain

    cfg = load()
    chosen = image_toolchain(toolchain or cfg.toolchain, sdk_installer=sdk_installer,
                             sdk_sha256=sdk_sha256, cfg=cfg)
    result = build_image(cfg, chosen, seed_base=seed_base, force=force, mirror=mirror or None,
                         display=BuildDisplay(verbose=verbose, quiet=json))
    if json:
        emit_json(result.as_dict())
    else:
        how = "unchanged, reused" if result.reused else "built"
        seeded = " (base image seeded from Debian packages)" if result.seeded_base else ""
        print(f"{result.tag}: {how} in {result.seconds:.1f} s{seeded}")


@elk_task(help={
    "start": "start elkbuild's private Docker engine if no engine answers",
    "stop": "stop elkbuild's private Docker engine",
    "json": "print the engine's state as one JSON object",
})
def docker_engine(c, start=False, stop=False, json=False):
    """Show, start or stop the Docker engine elkbuild builds with."""
    from elkbuild.cli import emit_json
    from elkbuild.docker.commands import engine_command

    state = engine_command(load(), start=start, stop=stop)
    if json:
        emit_json(state)
    else:
        print("  ".join(f"{key}={value}" for key, value in sorted(state.items())))
# ==== end docker ====

# ==== deps ====
@elk_task(help={
    "toolchain": "toolchain to build for (default: the project's toolchain)",
    "only": "build only this dependency (e.g. tflite, onnxruntime)",
    "offline": "never touch the network; list what is missing from the source cache",
    "jobs": "parallel compile jobs (default: one per core)",
    "local": "build on this host instead of in the toolchain's container",
    "from_source": "use a recipe that compiles the dependency where one exists",
    "variant": "prefer recipes of this variant: source, or debian (Debian's own engine builds)",
    "allow_unpinned": "download sources whose sha256 is not known yet and pin them in elkbuild-deps.lock.yaml",
    "force": "rebuild even when every input is unchanged",
    "json": "print one JSON object per dependency",
}, auto_shortflags=False)
def build_deps(c, toolchain="", only="", offline=False, jobs=0, local=False, from_source=False,
               variant="", allow_unpinned=False, force=False, json=False, verbose=False):
    """Fetch, patch, build and stage dependencies into build/deps/<toolchain>/<name>-<version>/."""
    from elkbuild.cli import emit_json
    from elkbuild.deps import commands

    reporter = commands.RichReporter(verbose=verbose, quiet=json)
    runner = commands.make_runner(load(), toolchain or None, local=local, offline=offline, jobs=jobs,
                                  from_source=from_source, variant=variant,
                                  allow_unpinned=allow_unpinned, reporter=reporter)
    results = commands.build_deps(runner, only or None, force=force)
    if json:
        for result in results:
            emit_json(result.as_json())
    else:
        commands.print_summary(results)


@elk_task(help={
    "toolchain": "toolchain whose recipes to prefetch (default: the project's toolchain)",
    "only": "prefetch only this dependency",
    "from_source": "prefetch the from-source recipes' inputs",
    "variant": "prefetch the inputs of this variant's recipes (source or debian)",
    "allow_unpinned": "download sources whose sha256 is not known yet and pin them",
    "update": "resolve Debian packages again (moving suites like sid) and re-pin them",
    "json": "print what was fetched as one JSON object",
}, auto_shortflags=False)
def fetch_sources(c, toolchain="", only="", from_source=False, variant="", allow_unpinned=False,
                  update=False, json=False, verbose=False):
    """Download every source the toolchain's recipes need into the verified source cache."""
    from elkbuild.cli import emit_json
    from elkbuild.deps import commands

    reporter = commands.RichReporter(verbose=verbose, quiet=json)
    runner = commands.make_runner(load(), toolchain or None, from_source=from_source,
                                  variant=variant, allow_unpinned=allow_unpinned, update=update,
                                  reporter=reporter)
    report = commands.fetch_sources(runner, only or None)
    if json:
        emit_json({"fetched": report.fetched, "cached": report.cached, "pinned": report.pinned_now})
    else:
        print(f"{len(report.fetched)} fetched, {len(report.cached)} already cached")
        for pin in report.pinned_now:
            print(f"pinned: {pin}")
# ==== end deps ====

# ==== project ====
@elk_task(help={"json": "print each step as one JSON object",
                "board_name": "the emulated board instance to use (default: default)",
                "port": "its loopback SSH port (default 2222, then the last one used)",
                "monitor_seconds": "how long to watch the real-time threads (default 3)",
                "rigs_only": "only render and check the example rigs"},
          auto_shortflags=False)
def demo(c, json=False, board_name="default", port=0, monitor_seconds=3.0, rigs_only=False):
    """The main job on defaults: rigs, image, cross-built plugin, emulated board, deploy,
    offline check on the board, monitor."""
    from elkbuild.cli import emit_json
    from elkbuild.demo import DemoOptions, run_demo

    def say(step):
        if json:
            emit_json({"step": step.what, "detail": step.detail})
        else:
            print(f"{step.what:>9}  {step.detail}", flush=True)

    options = DemoOptions(board_name=board_name, port=int(port) or None,
                          monitor_seconds=float(monitor_seconds), rigs_only=rigs_only, quiet=json)
    steps = run_demo(load(), say, options)
    if not json:
        print(f"demo: done, {len(steps)} steps")


@elk_task(help={"k": "only tests whose names match this pytest -k expression",
                "fast": "leave out tests marked slow (CI runs them all)"},
          auto_shortflags=False)
def test(c, k="", fast=False):
    """Run the test suite (the real Docker engine and emulated board are started as needed)."""
    import os
    import sys

    argv = [sys.executable, "-m", "pytest", str(PROJECT_DIR / "tests")]
    if k:
        argv += ["-k", k]
    if fast:
        argv += ["-m", "not slow"]
    os.chdir(PROJECT_DIR)
    os.execv(sys.executable, argv)  # pytest's own output and exit code, unchanged


@elk_task(help={"engine": "inference engine: onnx or tflite",
                "kind": "effect (inference on every block) or classifier (onsets -> worker)",
                "model": "the trained model: a .onnx or .tflite file",
                "manufacturer": "company name hosts show (kept from plugin.yaml when re-rendering)",
                "manufacturer_code": "JUCE manufacturer code: 4 characters, first uppercase",
                "plugin_code": "JUCE plugin code: 4 characters, first uppercase (default: from NAME)",
                "description": "one line describing the plugin",
                "force": "render an existing project again (its identity is kept)",
                "json": "print the result as one JSON object"})
def new_plugin(c, name, engine="", kind="", model="", manufacturer=None, manufacturer_code=None,
               plugin_code=None, description=None, force=False, json=False):
    """Render a JUCE VST3 plugin project for a model into plugins/NAME."""
    from elkbuild.cli import emit_json
    from elkbuild.errors import UsageError
    from elkbuild.plugin.identity import plugins_dir
    from elkbuild.plugin.project import NewPlugin, new_plugin as render

    for flag, value in (("--engine", engine), ("--kind", kind), ("--model", model)):
        if not value:
            raise UsageError(f"{flag} is required", "e.g. invoke new-plugin Fuzz --engine onnx "
                             "--kind effect --model fuzz.onnx")
    cfg = load()
    request = NewPlugin(name=name, engine=engine, kind=kind, model=Path(model),
                        manufacturer=manufacturer, manufacturer_code=manufacturer_code,
                        plugin_code=plugin_code, description=description)
    project = render(request, plugins_dir(cfg.root, cfg.get("project.plugins_dir")), force=force)
    if json:
        emit_json({"project": str(project.root), "name": project.identity.name,
                   "engine": project.engine, "kind": project.kind, "model": str(project.model)})
    else:
        print(f"new-plugin: {project.root} ({project.kind}, {project.engine}, "
              f"model {project.model.name})")


@elk_task(help={"plugin": "a plugin project in plugins/ (repeatable; default: all of them)",
                "toolchain": "toolchain to build with (default: the project's toolchain)",
                "config": "CMake build configuration: Release or Debug",
                "board_profile": "board whose ABI the bundle must fit: elk-0.11, elk-1.x or "
                                 "emulated (default: the toolchain's)",
                "local": "build on this host instead of in the toolchain's container",
                "jobs": "parallel compile jobs (default 2)",
                "force": "rebuild even when every input is unchanged",
                "json": "print one JSON object per plugin"},
          auto_shortflags=False, iterable=["plugin"])
def build(c, plugin=None, toolchain="", config="Release", board_profile="", local=False, jobs=0,
          force=False, json=False, verbose=False):
    """Cross-build plugin projects into deployable bundles (engine .so files, model, ABI gate)."""
    from elkbuild.cli import emit_json
    from elkbuild.deps.commands import RichReporter
    from elkbuild.plugin.cross_build import build_plugins

    builds = build_plugins(load(), list(plugin or ()), toolchain_name=toolchain or None,
                           config=config, profile_name=board_profile or None, local=local,
                           jobs=int(jobs), force=force,
                           reporter=RichReporter(verbose=verbose, quiet=json))
    for result in builds:
        if json:
            emit_json(result.as_json())
        elif result.status == "up to date":
            print(f"{result.project.identity.name}: up to date ({result.bundle.path})")
        else:
            libraries = ", ".join(p.name for p in result.bundle.libraries) or "none"
            print(f"{result.project.identity.name}: built in {result.seconds:.0f} s -> "
                  f"{result.bundle.path} (bundled: {libraries}; ABI gate: {result.profile} ok)")


@elk_task(help={"plugin": "a plugin project in plugins/: built for this machine, then checked",
                "bundle": "check this .vst3 bundle (built for this machine) instead of a project",
                "buffer": "samples per block (default 64, Elk's default)",
                "rate": "sample rate (default 48000)",
                "blocks": "blocks processed and counted (default 10000)",
                "allow_engine": "judge only the plugin's own code: calls made inside the engine "
                                "library (ONNX Runtime allocates in every run) are reported, "
                                "not failed",
                "json": "print the report as one JSON object"},
          auto_shortflags=False)
def rt_check(c, plugin="", bundle="", buffer=64, rate=48000.0, blocks=10000, allow_engine=False,
             json=False):
    """Count allocations, locks and waits on the audio thread of a plugin's process()."""
    from dataclasses import asdict

    from elkbuild.cli import emit_json
    from elkbuild.errors import UsageError, ValidationFailed
    from elkbuild.executor import LocalExecutor
    from elkbuild.plugin.identity import plugins_dir
    from elkbuild.plugin.project import build_native as build
    from elkbuild.vst3host.rt_check import format_report, rt_check as check

    if bool(plugin) == bool(bundle):
        raise UsageError("give --plugin NAME or --bundle PATH", "e.g. invoke rt-check --plugin NeuralSaturator")
    cfg = load()
    if plugin:
        project = plugins_dir(cfg.root, cfg.get("project.plugins_dir")) / plugin
        target = build(project, LocalExecutor(), cfg.cache_dir, cfg.build_dir).bundle
    else:
        target = Path(bundle)
    report = check(target, LocalExecutor(), cfg.build_dir / "rt-check", blocks=int(blocks),
                   block=int(buffer), rate=float(rate))
    if json:
        emit_json({**asdict(report), "bundle": str(report.bundle), "unsafe": report.unsafe,
                   "engine_calls": report.engine_calls, "plugin_unsafe": report.plugin_unsafe,
                   "pass": report.passes(allow_engine)})
    else:
        print(format_report(report, allow_engine))
    if not report.passes(allow_engine):
        raise ValidationFailed(f"rt-check {report.plugin}", [
            f"{name}: {count} calls on the audio thread" for name, count in report.offenders.items()],
            "make process() allocation- and lock-free (see the table above)")


@elk_task(help={"out": "folder for the models (default: <cache>/example-models)",
                "json": "print the models and their reference outputs as JSON"})
def example_models(c, out="", json=False):
    """Make the example models (ONNX saturator, TFLite classifier) and print reference outputs."""
    from elkbuild.cli import emit_json
    from elkbuild.plugin.example_models import reference_outputs, write_examples

    cfg = load()
    folder = Path(out) if out else cfg.cache_dir / "example-models"
    written = write_examples(folder)
    for name, path in written.items():
        ref = reference_outputs(path)
        if json:
            emit_json({"model": str(path), **ref})
        else:
            print(f"{path}: {ref['engine']} {ref['input_shape']} -> {ref['output_shape']}, "
                  f"first outputs {[round(v, 6) for v in ref['output'][:4]]}")


@elk_task(help={"jobs": "parallel compile jobs (default 2)",
                "json": "print the result as one JSON object"})
def build_native(c, name, jobs=2, json=False):
    """Build plugins/NAME for this machine (x86_64) with JUCE and ONNX Runtime's wheel."""
    from elkbuild.cli import emit_json
    from elkbuild.executor import LocalExecutor
    from elkbuild.plugin.identity import plugins_dir
    from elkbuild.plugin.project import build_native as build

    cfg = load()
    project = plugins_dir(cfg.root, cfg.get("project.plugins_dir")) / name
    result = build(project, LocalExecutor(), cfg.cache_dir, cfg.build_dir, jobs=int(jobs),
                   on_line=None if json else (lambda line: print(line, flush=True)))
    if json:
        emit_json({"bundle": str(result.bundle), "binary": str(result.binary),
                   "seconds": round(result.seconds, 1)})
    else:
        print(f"build-native: {result.bundle} in {result.seconds:.0f} s")
# ==== end project ====
