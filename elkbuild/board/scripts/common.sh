# Shell functions shared by every script elkbuild runs on a board. Scripts are
# static text; values reach them only as quoted assignments or positional words.
elk_pid_alive() {  # PID: a live process (a zombie is not); builtins only, forks are slow
  [ -n "$1" ] || return 1
  read -r elk_stat 2>/dev/null <"/proc/$1/stat" || return 1
  case "${elk_stat##*) }" in Z*|X*|"") return 1;; esac
}
elk_read() {  # VAR FILE: the first line of FILE into VAR, empty when absent
  eval "$1="
  [ -r "$2" ] && IFS= read -r "$1" <"$2"
  return 0
}
