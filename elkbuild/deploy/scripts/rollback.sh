# Switch back to the newest release older than the current one.
elk_lock "$ROOT/lock" "$WHO" "$SINCE" "$WAIT" || return 75
trap '' HUP PIPE
elk_lock_adopt "$ROOT/lock" || { echo "reason=the SSH session that took the lock ended before this step began; nothing was changed"; return 1; }
elk_current; cur=$ELK_CUR; prev=""
for elk_r in $(elk_releases); do [ "$elk_r" = "$cur" ] && break; prev=$elk_r; done
echo "from=$cur"
if [ -z "$prev" ]; then echo "reason=no release older than ${cur:-<none>} is kept on the board"; elk_unlock "$ROOT/lock"; return 4; fi
elk_activate "$prev" "$cur"; status=$?
elk_unlock "$ROOT/lock"
return $status
