# The lock is a file created with O_EXCL (the shell's noclobber). It names the sshd
# process serving our connection: when the client dies or the link drops, that
# process exits, so a later deploy can tell a stale lock from a live one without
# guessing by age. A finaliser that outlives its client (it ignores SIGPIPE) adds
# its own pid, so the lock stays held until it is really done.
elk_session_pid() {  # ELK_SESSION := the sshd process serving this connection
  ELK_SESSION=$$; elk_p=$$
  while [ "${elk_p:-1}" -gt 1 ]; do
    IFS= read -r elk_comm 2>/dev/null <"/proc/$elk_p/comm" || return 0
    case "$elk_comm" in sshd*) ELK_SESSION=$elk_p; return 0;; esac
    read -r elk_stat 2>/dev/null <"/proc/$elk_p/stat" || return 0
    set -- ${elk_stat##*) }
    elk_p=$2
  done
}
elk_lock_live() {  # FILE: does a live process hold this lock?
  [ -f "$1" ] || return 1
  while IFS='=' read -r elk_k elk_v; do
    [ "$elk_k" = pid ] && elk_pid_alive "$elk_v" && return 0
  done <"$1"
  return 1
}
elk_lock() {  # FILE WHO SINCE WAIT_SECONDS
  elk_waited=0; elk_ownerless=0
  elk_session_pid
  while :; do
    # noclobber: the shell creates the file with O_EXCL, atomically, no process needed
    set -C
    if { printf 'pid=%s\nwho=%s\nsince=%s\n' "$ELK_SESSION" "$2" "$3" >"$1"; } 2>/dev/null; then
      set +C; return 0
    fi
    set +C
    if [ ! -s "$1" ] && [ "$elk_ownerless" -lt 3 ]; then
      elk_ownerless=$((elk_ownerless + 1))  # being written right now: give it a moment
    elif ! elk_lock_live "$1"; then
      mv -f "$1" "$1.stale.$$" 2>/dev/null && rm -f "$1.stale.$$"
      continue
    elif [ "$elk_waited" -ge "$4" ]; then
      elk_owner=""
      while IFS= read -r elk_line; do elk_owner="$elk_owner $elk_line"; done <"$1"
      echo "lock-busy=$elk_owner"
      return 75
    fi
    sleep 1; elk_waited=$((elk_waited + 1))
  done
}
elk_lock_adopt() {  # FILE: keep the lock held past our SSH session (a finaliser
  # that must finish even if the client dies). Our pid goes in first, then we check
  # that the session which took the lock is ours and still alive: if it was, the
  # lock never looked free, so nobody took it over and nobody saw it free. A script
  # that starts after its client died (reparented, no sshd above it) gives up,
  # changing nothing: the lock may already be another deploy's.
  echo "pid=$$" >>"$1" 2>/dev/null || return 1
  elk_session_pid
  elk_k=""; elk_first=""
  IFS='=' read -r elk_k elk_first 2>/dev/null <"$1"
  [ "$elk_k" = pid ] && [ "$elk_first" = "$ELK_SESSION" ] && elk_pid_alive "$ELK_SESSION"
}
elk_unlock() { rm -f "$1"; }
