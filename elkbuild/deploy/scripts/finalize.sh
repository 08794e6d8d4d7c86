# After the upload: stage (elk_stage_files copies unchanged files and syncs, made
# by the planner), rename NEW.partial into place, switch, health-check, prune.
# From here on the board finishes the job even if our client dies (no SIGPIPE,
# no SIGHUP); the finaliser's pid keeps the lock held until it is done.
trap '' HUP PIPE
elk_lock_adopt "$ROOT/lock" || { echo "reason=the SSH session that took the lock ended before this step began; nothing was changed"; return 1; }
elk_stage() {
  elk_stage_files || return 1
  mv "$ROOT/releases/$NEW.partial" "$ROOT/releases/$NEW" || { echo "reason=cannot rename the staged release"; return 1; }
}
if elk_stage; then
  elk_activate "$NEW" "$PREV"; status=$?
  if [ "$status" = 2 ]; then rm -rf "$ROOT/releases/$NEW"; fi
  if [ "$status" = 0 ]; then
    # a release found changed on the board must not stay a rollback target
    [ -n "$DROP" ] && [ "$DROP" != "$NEW" ] && rm -rf "$ROOT/releases/$DROP"
    elk_prune "$KEEP"
  fi
else
  status=1; rm -rf "$ROOT/releases/$NEW.partial"
fi
elk_unlock "$ROOT/lock"
return $status
