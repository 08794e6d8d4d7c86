"""Sushi on the board: start, stop, restart, status, logs, and the health window.

Two ways Sushi runs on an Elk board:
- service: `sushi.service` under systemd (Elk's images). Controlled with systemctl
  (through `sudo -n` when we are not root); the unit's ExecStart decides the config.
- process: no systemd unit (a bare image, the emulated board). Sushi is started
  detached with setsid + nohup, its pid kept in a pid file under /tmp (a pid is
  meaningless after a reboot, and /tmp is cleared by one).

The shell side lives in SUSHI_FUNCTIONS so a deploy can stop, switch and start in
the same remote command; the Python side builds the variables it needs.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterator

from elkbuild.board.ssh import COMMON_FUNCTIONS, BoardConnection, run_script, shell_assign
from elkbuild.errors import BoardError, UsageError

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
            raise UsageError(f"--multicore-processing {multicore}: must be 1 or more")
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


# The active config's file name is kept in <release>/sushi-config (one line), so any
# later `start` or a rollback starts Sushi with the config its release was made for.
SUSHI_FUNCTIONS = COMMON_FUNCTIONS + r'''
sushi_detect_mode() {  # SUSHI_M := service | process
  case "$SUSHI_MODE" in service|process) SUSHI_M=$SUSHI_MODE; return;; esac
  SUSHI_M=process
  if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1 \
     && systemctl cat "$SUSHI_UNIT.service" >/dev/null 2>&1; then SUSHI_M=service; fi
}
sushi_sudo() {  # systemctl as root: directly when we are root, else sudo without a prompt
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo -n "$@"; fi
}
sushi_find() {  # SUSHI_P := Sushi's pid; fails when Sushi does not run
  SUSHI_P=""
  if [ "$SUSHI_M" = service ]; then
    SUSHI_P=$(systemctl show -p MainPID --value "$SUSHI_UNIT" 2>/dev/null)
  else
    elk_read SUSHI_P "$SUSHI_PIDFILE"
  fi
  [ "${SUSHI_P:-0}" != 0 ] && elk_pid_alive "$SUSHI_P" || { SUSHI_P=""; return 1; }
}
sushi_stop() {
  if [ "$SUSHI_M" = service ]; then sushi_sudo systemctl stop "$SUSHI_UNIT"; return; fi
  sushi_find || return 0
  kill "$SUSHI_P" 2>/dev/null
  # Sushi usually exits within a moment: poll with builtins first (each `sleep` is a
  # new process, slow under emulation), then give it up to 5 s before SIGKILL
  elk_i=0
  while elk_pid_alive "$SUSHI_P" && [ "$elk_i" -lt 300 ]; do elk_i=$((elk_i + 1)); done
  elk_i=0
  while elk_pid_alive "$SUSHI_P" && [ "$elk_i" -lt 50 ]; do sleep 0.1; elk_i=$((elk_i + 1)); done
  elk_pid_alive "$SUSHI_P" && kill -9 "$SUSHI_P" 2>/dev/null
  : >"$SUSHI_PIDFILE"
  return 0
}
sushi_config_of() {  # RELEASE_DIR: SUSHI_CFG := the config that release starts Sushi with
  elk_read elk_name "$1/sushi-config"
  SUSHI_CFG=""
  [ -n "$elk_name" ] && SUSHI_CFG="$SUSHI_CONFIG_DIR/$elk_name"
  return 0
}
sushi_start() {  # CONFIG_PATH FLAG...
  elk_cfg=$1; shift
  # Sushi appends to its log: keep the last run's apart so the health check reads this one
  [ -f "$SUSHI_LOG" ] && mv -f "$SUSHI_LOG" "$SUSHI_LOG.1" 2>/dev/null
  if [ "$SUSHI_M" = service ]; then
    sushi_sudo systemctl start "$SUSHI_UNIT" || { echo "reason=systemctl start $SUSHI_UNIT failed"; return 1; }
    return 0
  fi
  [ -n "$elk_cfg" ] && [ -f "$elk_cfg" ] || { echo "reason=no Sushi config at ${elk_cfg:-<none>}"; return 1; }
  command -v "$SUSHI_BIN" >/dev/null 2>&1 || { echo "reason=Sushi binary $SUSHI_BIN not found on the board"; return 1; }
  [ -n "$SUSHI_LIBPATH" ] && export LD_LIBRARY_PATH="$SUSHI_LIBPATH${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  # like sushi.service: run from /udata, in a session of its own (setsid), so the
  # end of our SSH session signals nothing to it; without a terminal no SIGHUP
  # comes either, so nohup would only add one more exec (slow under emulation)
  ( cd /udata 2>/dev/null || cd /
    exec setsid "$SUSHI_BIN" "$@" -c "$elk_cfg" >"$SUSHI_OUT" 2>&1 </dev/null ) &
  echo $! >"$SUSHI_PIDFILE"
  return 0
}
sushi_dead_reason() {  # why Sushi stopped: its first logged error, else its last line
  elk_err=""; elk_last=""
  for elk_f in "$SUSHI_LOG" "$SUSHI_OUT"; do
    [ -r "$elk_f" ] || continue
    while IFS= read -r elk_line || [ -n "$elk_line" ]; do
      case "$elk_line" in *"[error]"*|*"[critical]"*) [ -n "$elk_err" ] || elk_err=$elk_line;; esac
      [ -n "$elk_line" ] && elk_last=$elk_line
    done <"$elk_f"
  done
  echo "${elk_err:-$elk_last}"
}
sushi_scan() {  # WANTED (newline-separated bundles): ELK_MISSING := those not loaded yet
  # one pass over the logs in the shell, no extra processes: an error fails at once
  elk_seen=""
  for elk_f in "$SUSHI_LOG" "$SUSHI_OUT"; do
    [ -r "$elk_f" ] || continue
    while IFS= read -r elk_line || [ -n "$elk_line" ]; do
      case "$elk_line" in
        *"[error]"*|*"[critical]"*|*"[ERROR]"*|*"[CRITICAL]"*)
          echo "reason=Sushi logged an error: $elk_line"; return 2;;
      esac
      elk_rest=$1
      while [ -n "$elk_rest" ]; do
        elk_b=${elk_rest%%
*}
        elk_rest=${elk_rest#*
}
        case "$elk_line" in *"$elk_b"*) elk_seen="$elk_seen
$elk_b
";; esac
      done
    done <"$elk_f"
  done
  ELK_MISSING=""
  elk_rest=$1
  while [ -n "$elk_rest" ]; do
    elk_b=${elk_rest%%
*}
    elk_rest=${elk_rest#*
}
    case "$elk_seen" in *"
$elk_b
"*) continue;; esac
    # not named in the log: a real Sushi has the plugin's binary mapped (dlopen)
    grep -qF -e "/${elk_b%.vst3}.so" "/proc/$SUSHI_P/maps" 2>/dev/null && continue
    ELK_MISSING="$ELK_MISSING$elk_b "
  done
  return 0
}
sushi_health() {  # [FILE of bundle names]: Sushi runs through the window, logs no error,
  # and loads every bundle (a slow start may take longer than the window: wait for it)
  elk_want=""
  [ -n "$1" ] && [ -r "$1" ] && while IFS= read -r elk_b; do
    [ -n "$elk_b" ] && elk_want="$elk_want$elk_b
"
  done <"$1"
  sleep "$SUSHI_HEALTH"
  elk_polls=0
  while :; do
    if ! sushi_find; then
      echo "reason=Sushi exited within the ${SUSHI_HEALTH}s health window: $(sushi_dead_reason)"
      return 1
    fi
    sushi_scan "$elk_want" || return 1
    [ -z "$ELK_MISSING" ] && break
    if [ "$elk_polls" -ge "$SUSHI_LOAD_POLLS" ]; then
      echo "reason=Sushi (pid $SUSHI_P) runs but did not load plugin ${ELK_MISSING% }"
      return 1
    fi
    sleep 0.2; elk_polls=$((elk_polls + 1))
  done
  echo "sushi-pid=$SUSHI_P"
  return 0
}
'''


def shell_settings(settings: SushiSettings) -> str:
    """Variable assignments for SUSHI_FUNCTIONS (all values quoted)."""
    return shell_assign(
        SUSHI_MODE=settings.mode, SUSHI_UNIT=settings.unit, SUSHI_BIN=settings.binary,
        SUSHI_LOG=settings.log_file, SUSHI_OUT=settings.out_file,
        SUSHI_PIDFILE=settings.pid_file, SUSHI_LIBPATH=settings.library_path or "",
        SUSHI_HEALTH=f"{settings.health_seconds:g}", SUSHI_CONFIG_DIR=settings.config_dir,
        SUSHI_LOAD_POLLS=int(settings.load_timeout * 5),
    ) + "sushi_detect_mode\n"


def start_line(settings: SushiSettings, config_expr: str) -> str:
    """`sushi_start "<config>" flags...` where config_expr is shell (e.g. "$cfg")."""
    return f'sushi_start "{config_expr}" {shlex.join(settings.flags)}'


def parse_fields(text: str) -> dict[str, str]:
    """key=value lines printed by the remote scripts (later keys win)."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key and " " not in key:
            fields[key.strip()] = value.strip()
    return fields


def _script(settings: SushiSettings, body: str) -> str:
    return SUSHI_FUNCTIONS + shell_settings(settings) + \
        shell_assign(CURRENT=f"{settings.release_root}/current") + body


def status(conn: BoardConnection, settings: SushiSettings) -> dict[str, Any]:
    body = r'''
echo "mode=$SUSHI_M"
if sushi_find; then echo "running=yes"; echo "pid=$SUSHI_P"
  echo "cmdline=$(tr '\000' ' ' </proc/$SUSHI_P/cmdline 2>/dev/null | cut -c1-300)"
else echo "running=no"; fi
echo "release=$(basename "$(readlink "$CURRENT" 2>/dev/null)" 2>/dev/null)"
sushi_config_of "$CURRENT"
echo "config=$SUSHI_CFG"
'''
    fields = parse_fields(run_script(conn, _script(settings, body)).stdout)
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
    body = (shell_assign(CFG=config or "") + r'''
[ -n "$CFG" ] || { sushi_config_of "$CURRENT"; CFG=$SUSHI_CFG; }
''' + ("sushi_stop\n" if restart else r'''
if sushi_find; then echo "already=$SUSHI_P"; echo "mode=$SUSHI_M"; return 0; fi
''') + start_line(settings, "$CFG") + r''' || return 1
echo "mode=$SUSHI_M"
echo "config=$CFG"
sushi_health "$CURRENT/sushi-plugins" || return 1
''')
    done = run_script(conn, _script(settings, body), check=False)
    fields = parse_fields(done.stdout)
    if done.returncode != 0:
        reason = fields.get("reason") or (done.stderr.strip().splitlines() or ["unknown"])[-1]
        raise BoardError(f"{conn.board.address}: Sushi did not start: {reason}",
                         "see `invoke logs` for Sushi's own output")
    return {"host": conn.board.name, "mode": fields.get("mode"),
            "pid": int(fields.get("sushi-pid") or fields.get("already") or 0) or None,
            "already_running": "already" in fields, "config": fields.get("config")}


def stop(conn: BoardConnection, settings: SushiSettings) -> dict[str, Any]:
    body = r'''
sushi_find; was=$SUSHI_P
sushi_stop || { echo "reason=could not stop Sushi"; return 1; }
echo "mode=$SUSHI_M"; echo "was=$was"
'''
    done = run_script(conn, _script(settings, body), check=False)
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
        mode = parse_fields(run_script(conn, _script(settings, 'echo "mode=$SUSHI_M"\n'))
                            .stdout).get("mode", "process")
    argv = log_command(settings, mode, lines, follow)
    if follow:
        yield from conn.stream(argv)
        return
    done = conn.executor.run(argv, check=False)
    yield from (done.stdout + done.stderr).splitlines()


def plugins_in_config(config_text: str | bytes) -> list[str]:
    """Bundle names (X.vst3) of the VST3 plugins a Sushi config loads."""
    try:
        data = json.loads(config_text)
    except (ValueError, TypeError):
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
