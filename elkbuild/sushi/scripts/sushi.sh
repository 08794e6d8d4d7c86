# Sushi on the board, as a service (systemd) or a detached process. Expects the
# SUSHI_* assignments made by service.shell_settings and common.sh's functions.
# The active config's file name is kept in <release>/sushi-config (one line), so
# any later `start` or a rollback starts Sushi with the config its release was
# made for.
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
sushi_start_configured() {  # CONFIG_PATH: sushi_start with the flags in SUSHI_FLAGS
  # SUSHI_FLAGS holds shell-quoted words (shlex.join): eval only splits them back
  elk_cfg_path=$1
  eval "set -- $SUSHI_FLAGS"
  sushi_start "$elk_cfg_path" "$@"
}
