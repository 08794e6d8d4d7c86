# Before a deploy: stop early when the board already runs this payload (DIGEST),
# else (or with FORCE, to repair it) take the lock and drop leftovers of deploys that were cut short.
elk_current
sushi_find
elk_read elk_digest "$ROOT/current/digest"
if [ -z "$FORCE" ] && [ -n "$ELK_CUR" ] && [ "$elk_digest" = "$DIGEST" ] && [ -n "$SUSHI_P" ] && [ ! -e "$ROOT/lock" ]; then
  # the board already runs exactly this payload and no deploy is under way
  echo "current=$ELK_CUR"
  echo "unchanged=yes"
  return 0
fi
[ -d "$ROOT/releases" ] || mkdir -p "$ROOT/releases" 2>/dev/null \
  || { echo "reason=cannot create $ROOT/releases (is $ROOT writable by $(id -un)?)"; return 3; }
elk_lock "$ROOT/lock" "$WHO" "$SINCE" "$WAIT" || return 75
echo "lock=ok"
elk_current
echo "current=$ELK_CUR"
echo "mode=$SUSHI_M"
sushi_find && echo "running=$SUSHI_P"
# leftovers of deploys that were cut short: never used, safe to drop under the lock
for elk_d in "$ROOT/releases/"*.partial "$ROOT/releases/"*.stale.* "$ROOT"/current.new.* "$ROOT"/lock.stale.*; do
  { [ -e "$elk_d" ] || [ -L "$elk_d" ]; } && rm -rf "$elk_d"
done
return 0
