# Nothing changed: drop the staging folder, start Sushi if it is not running.
trap '' HUP PIPE
elk_lock_adopt "$ROOT/lock" || { echo "reason=the SSH session that took the lock ended before this step began; nothing was changed"; return 1; }
rm -rf "$ROOT/releases/$NEW.partial"
status=0
if sushi_find; then echo "running=$SUSHI_P"
else
  sushi_config_of "$ROOT/current"
  if [ -n "$SUSHI_CFG" ] || [ "$SUSHI_M" = service ]; then
    if elk_start_sushi "$SUSHI_CFG" && sushi_health "$ROOT/current/sushi-plugins"; then echo "health=ok"; else status=2; fi
  fi
fi
elk_unlock "$ROOT/lock"
return $status
