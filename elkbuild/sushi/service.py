"""Sushi on the board: start, stop, restart, status, logs, and the health window.

Two ways Sushi runs on an Elk board:
- service: `sushi.service` under systemd (Elk's images). Controlled with systemctl
  (through `sudo -n` when we are not root); the unit's ExecStart decides the config.
- process: no systemd unit (a bare image, the emulated board). Sushi is started
  detached with setsid + nohup, its pid kept in a pid file under /tmp (a pid is
  meaningless after a reboot, and /tmp is cleared by one).

The shell side lives in scripts/sushi.sh (SUSHI_FUNCTIONS) so a deploy can stop,
switch and start in the same remote command; the Python side builds the
variables it needs.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from elkbuild.board.connection import BoardConnection
from elkbuild.board.remote_scripts import COMMON_FUNCTIONS, run_script, script_text, shell_assign
from elkbuild.errors import BoardError, UsageError
from elkbuild.sushi.check import InvalidJson, parse_json

if TYPE_CHECKING:
    from elkbuild.config import Board, Config

MODES = ("auto", "service", "process")


@dataclass(frozen=True)
class SushiSettings:
    """How Sushi is run on one board."""

    binary: str = "/usr/bin/sushi"
    frontend: tuple[str, ...] = ("-r",)
    extra_flags: tuple[str, ...] = ()
    mode: str = "auto"
    unit: str = "sushi"
    log_file: str = "/tmp/sushi.log"
    out_file: str = "/tmp/elkbuild-sushi.out"
    pid_file: str = "/tmp/elkbuild-sushi.pid"
    base_plugin_path: str | None = None
    library_path: str | None = None
    health_seconds: float = 3.0
    load_timeout: float = 30.0      # a slow start may take this long to load its plugins
    config_dir: str = "/home/mind/config_files"
    release_root: str = "/udata/elkbuild"
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def flags(self) -> list[str]:
        flags = [*self.frontend, *self.extra_flags]
        if self.base_plugin_path:
            flags.append(f"--base-plugin-path={self.base_plugin_path}")
        return flags


def settings_for(board: Board, cfg: Config | None = None, *, multicore: int | None = None,
                 timing_statistics: bool = False, health_seconds: float | None = None,
                 mode: str | None = None) -> SushiSettings:
    """Settings from the board profile, the `sushi.*` config keys and CLI flags."""
    get = (lambda key, default: cfg.get(key, default)) if cfg is not None else \
        (lambda key, default: default)
    chosen_mode = mode or get("sushi.run_mode", "auto")
    if chosen_mode not in MODES:
        raise UsageError(f"Sushi run mode {chosen_mode!r} is not known; allowed: "
                         + ", ".join(MODES))
    frontend = get("sushi.frontend_flags", ["-r"])
    if isinstance(frontend, str):
        frontend = shlex.split(frontend)
    extra: list[str] = []
    if multicore is not None:
        if multicore < 1:
            raise UsageError(f"Sushi multicore processing {multicore}: must be 1 or more")
        extra.append(f"--multicore-processing={multicore}")
    if timing_statistics:
        extra.append("--timing-statistics")
    # 0.11's service adds the Xenomai libraries itself; a detached process needs it too.
    library_path = "/usr/xenomai/lib" if board.os_version == "0.11" else None
    # Sushi 1.x resolves relative plugin paths against --base-plugin-path (the
    # service wrapper passes the same directory); 0.11 configs use absolute paths.
    base = board.plugin_dir if board.os_version == "1.x" else None
    seconds = health_seconds if health_seconds is not None else \
        float(get("deploy.health_seconds", 3.0))
    return SushiSettings(
        binary=str(get("sushi.binary", "/usr/bin/sushi")),
        frontend=tuple(str(f) for f in frontend),
        extra_flags=tuple(extra),
        mode=chosen_mode,
        base_plugin_path=base,
        library_path=library_path,
        health_seconds=seconds,
        config_dir=board.config_dir,
        release_root=board.release_root,
    )


SCRIPTS = Path(__file__).resolve().parent / "scripts"
SUSHI_FUNCTIONS = COMMON_FUNCTIONS + script_text("sushi.sh", SCRIPTS)
ALREADY_RUNNING = 5
"""start.sh's status when a config was asked for but Sushi already runs another."""


def shell_settings(settings: SushiSettings) -> str:
    """Variable assignments for SUSHI_FUNCTIONS (all values quoted)."""
    return shell_assign(
        SUSHI_MODE=settings.mode, SUSHI_UNIT=settings.unit, SUSHI_BIN=settings.binary,
        SUSHI_LOG=settings.log_file, SUSHI_OUT=settings.out_file,
        SUSHI_PIDFILE=settings.pid_file, SUSHI_LIBPATH=settings.library_path or "",
        SUSHI_HEALTH=f"{settings.health_seconds:g}", SUSHI_CONFIG_DIR=settings.config_dir,
        SUSHI_LOAD_POLLS=int(settings.load_timeout * 5), SUSHI_FLAGS=shlex.join(settings.flags),
    ) + "sushi_detect_mode\n"


def parse_fields(text: str) -> dict[str, str]:
    """key=value lines printed by the remote scripts (later keys win)."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key and " " not in key:
            fields[key.strip()] = value.strip()
    return fields


def _script(settings: SushiSettings, body: str, **values: object) -> str:
    return SUSHI_FUNCTIONS + shell_settings(settings) + \
        shell_assign(CURRENT=f"{settings.release_root}/current", **values) + body


def status(conn: BoardConnection, settings: SushiSettings) -> dict[str, Any]:
    fields = parse_fields(run_script(conn.executor, _script(settings, script_text(
        "status.sh", SCRIPTS)), label="sushi/status.sh").stdout)
    return {
        "host": conn.board.name,
        "mode": fields.get("mode", "?"),
        "running": fields.get("running") == "yes",
        "pid": int(fields["pid"]) if fields.get("pid", "").isdigit() else None,
        "cmdline": fields.get("cmdline", ""),
        "release": fields.get("release") or None,
        "config": fields.get("config") or None,
    }


def start(conn: BoardConnection, settings: SushiSettings, config: str | None = None,
          restart: bool = False) -> dict[str, Any]:
    """Start Sushi with `config` (a name in config_dir or an absolute path), or with
    the current release's config; then wait out the health window."""
    if config and not config.startswith("/"):
        config = f"{settings.config_dir}/{config}"
    done = run_script(conn.executor, _script(settings, script_text("start.sh", SCRIPTS),
                                             CFG=config or "",
                                             RESTART="yes" if restart else "no"),
                      check=False, label="sushi/start.sh")
    fields = parse_fields(done.stdout)
    if done.returncode == ALREADY_RUNNING:
        raise UsageError(f"{conn.board.address}: {fields.get('reason', 'Sushi already runs')}",
                         "use `restart --config ...` to switch Sushi to that config")
    if done.returncode != 0:
        reason = fields.get("reason") or (done.stderr.strip().splitlines() or ["unknown"])[-1]
        raise BoardError(f"{conn.board.address}: Sushi did not start: {reason}",
                         "see `invoke logs` for Sushi's own output")
    return {"host": conn.board.name, "mode": fields.get("mode"),
            "pid": int(fields.get("sushi-pid") or fields.get("already") or 0) or None,
            "already_running": "already" in fields, "config": fields.get("config")}


def stop(conn: BoardConnection, settings: SushiSettings) -> dict[str, Any]:
    done = run_script(conn.executor, _script(settings, script_text("stop.sh", SCRIPTS)),
                      check=False, label="sushi/stop.sh")
    fields = parse_fields(done.stdout)
    if done.returncode != 0:
        reason = fields.get("reason") or done.stderr.strip() or "unknown"
        raise BoardError(f"{conn.board.address}: {reason}",
                         "in service mode the user needs passwordless sudo for systemctl")
    return {"host": conn.board.name, "mode": fields.get("mode"),
            "stopped_pid": int(fields["was"]) if fields.get("was", "").isdigit() else None}


def log_command(settings: SushiSettings, mode: str, lines: int, follow: bool) -> list[str]:
    """The argv that shows Sushi's log: journalctl for the service, tail otherwise."""
    if mode == "service":
        argv = ["journalctl", "-u", settings.unit, "-n", str(lines), "--no-pager"]
        return argv + (["-f"] if follow else [])
    argv = ["tail", "-n", str(lines)]
    if follow:
        argv.append("-F")
    return argv + [settings.log_file, settings.out_file]


def logs(conn: BoardConnection, settings: SushiSettings, lines: int = 100,
         follow: bool = False) -> Iterator[str]:
    """Lines of Sushi's log; with follow, a live stream until the caller stops."""
    mode = settings.mode
    if mode == "auto":
        mode = parse_fields(run_script(conn.executor, _script(settings, 'echo "mode=$SUSHI_M"\n'),
                                       label="sushi mode").stdout).get("mode", "process")
    argv = log_command(settings, mode, lines, follow)
    if follow:
        yield from conn.stream(argv)
        return
    done = conn.executor.run(argv, check=False)
    yield from (done.stdout + done.stderr).splitlines()


def plugins_in_config(config_text: str | bytes) -> list[str]:
    """Bundle names (X.vst3) of the VST3 plugins a Sushi config loads."""
    try:
        data, _warnings = parse_json(config_text, "the Sushi config")
    except InvalidJson:
        return []
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if str(node.get("type", "")).lower().startswith("vst3") and \
                    isinstance(node.get("path"), str):
                bundle = node["path"].rstrip("/").rsplit("/", 1)[-1]
                if bundle.endswith(".vst3"):
                    found.append(bundle)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(data)
    return sorted(set(found))
