# A deploy that failed before the finaliser: drop its staging folder and the lock.
rm -rf "$ROOT/releases/$NEW.partial"
rm -f "$ROOT/lock"
