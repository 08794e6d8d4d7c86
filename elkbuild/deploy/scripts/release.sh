# The release switch on the board: <ROOT>/current is a symlink replaced with one
# rename(2); the stable paths Sushi uses (PLUGIN_DIR, CONFIG_DIR) point into it
# and are made once. Expects ROOT, PLUGIN_DIR, CONFIG_DIR, KEEP, lock.sh and
# sushi.sh.
elk_start_sushi() { sushi_start_configured "$1"; }
elk_switch() {  # RELEASE: point current at releases/RELEASE with one rename(2)
  ln -s "releases/$1" "$ROOT/current.new.$$" || return 1
  mv -fT "$ROOT/current.new.$$" "$ROOT/current" 2>/dev/null \
    || python3 -c 'import os, sys; os.replace(sys.argv[1], sys.argv[2])' "$ROOT/current.new.$$" "$ROOT/current" \
    || { rm -f "$ROOT/current.new.$$"; return 1; }
}
elk_ensure_link() {  # TARGET LINK: the stable path Sushi uses, made once
  [ -L "$2" ] && [ "$2" -ef "$1" ] && return 0
  [ "$(readlink "$2" 2>/dev/null)" = "$1" ] && return 0
  [ -d "${2%/*}" ] || mkdir -p "${2%/*}"
  if [ -L "$2" ] || [ ! -e "$2" ]; then
    ln -s "$1" "$2.elk.$$" && mv -fT "$2.elk.$$" "$2" 2>/dev/null && return 0
    rm -f "$2.elk.$$" "$2" && ln -s "$1" "$2"
    return
  fi
  # an empty folder (a fresh image) gives way; files put there by hand are kept aside
  rmdir "$2" 2>/dev/null || mv "$2" "$2.before-elkbuild.$$" || return 1
  ln -s "$1" "$2"
}
elk_current() {  # ELK_CUR := the current release's name (cd and pwd are builtins)
  ELK_CUR=""
  [ -L "$ROOT/current" ] || return 0
  ELK_CUR=$(cd -P "$ROOT/current" 2>/dev/null && pwd -P)
  ELK_CUR=${ELK_CUR##*/}
}
elk_releases() {  # the complete releases, oldest first (names sort by time)
  for elk_r in "$ROOT/releases/"*; do
    elk_r=${elk_r##*/}
    case "$elk_r" in *.partial|*.stale.*|"*") continue;; esac
    echo "$elk_r"
  done
}
elk_activate() {  # NEW PREVIOUS: switch, restart Sushi, health window; on failure go back
  elk_new=$1; elk_prev=$2
  elk_ensure_link "$ROOT/current/plugins" "$PLUGIN_DIR" \
    && elk_ensure_link "$ROOT/current/config_files" "$CONFIG_DIR" \
    || { echo "reason=cannot make $PLUGIN_DIR and $CONFIG_DIR point into $ROOT/current (read-only root? run: sudo elk_system_utils --remount-as-rw)"; return 1; }
  sushi_stop
  elk_switch "$elk_new" || { echo "reason=cannot switch $ROOT/current"; return 1; }
  echo "switched=$elk_new"
  sushi_config_of "$ROOT/current"
  if [ -z "$SUSHI_CFG" ] && [ "$SUSHI_M" = process ]; then echo "sushi=no config, not started"; return 0; fi
  if elk_start_sushi "$SUSHI_CFG" && sushi_health "$ROOT/current/sushi-plugins"; then
    echo "health=ok"; return 0
  fi
  sushi_stop
  if [ -n "$elk_prev" ] && [ -d "$ROOT/releases/$elk_prev" ] && elk_switch "$elk_prev"; then
    echo "rolled-back=$elk_prev"
    sushi_config_of "$ROOT/current"
    if { [ -n "$SUSHI_CFG" ] || [ "$SUSHI_M" = service ]; } \
       && elk_start_sushi "$SUSHI_CFG" >/dev/null && sushi_health "$ROOT/current/sushi-plugins" >/dev/null; then
      echo "previous-health=ok"
    else echo "previous-health=failed"; fi
  else
    # nothing to return to (first release): leave no current at all, as before
    rm -f "$ROOT/current"
    echo "rolled-back="
  fi
  return 2
}
elk_prune() {  # KEEP: the newest KEEP releases stay, and always the current one
  elk_current
  elk_n=0
  for elk_r in $(elk_releases); do elk_n=$((elk_n + 1)); done
  for elk_r in $(elk_releases); do
    [ "$elk_n" -le "$1" ] && break
    elk_n=$((elk_n - 1))
    [ "$elk_r" = "$ELK_CUR" ] || rm -rf "$ROOT/releases/$elk_r"
  done
}
