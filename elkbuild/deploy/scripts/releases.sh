# The releases kept on the board, newest first, and the current one.
r=$(readlink "$ROOT/current" 2>/dev/null); echo "current=${r##*/}"
ls -1 "$ROOT/releases" 2>/dev/null | grep -v -e '\.partial$' -e '\.stale\.' | sort -r | sed 's/^/release=/'
