# Switch back to the newest release older than the current one.
elk_lock "$ROOT/lock" "$WHO" "$SINCE" "$WAIT" || return 75
trap '' HUP PIPE
echo "pid=$$" >>"$ROOT/lock"
elk_current; cur=$ELK_CUR; prev=""
for elk_r in $(elk_releases); do [ "$elk_r" = "$cur" ] && break; prev=$elk_r; done
echo "from=$cur"
if [ -z "$prev" ]; then echo "reason=no release older than ${cur:-<none>} is kept on the board"; elk_unlock "$ROOT/lock"; return 4; fi
elk_activate "$prev" "$cur"; status=$?
elk_unlock "$ROOT/lock"
return $status
