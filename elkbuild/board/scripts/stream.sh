# Runs "$@" with its stdin detached, and kills it when our channel's stdin reaches
# EOF: sshd closes that pipe when the client closes the channel or the connection
# drops, so a `tail -f` never outlives its reader. (Without a pty, sshd sends no
# SIGHUP; background jobs of a non-interactive sh read /dev/null, hence fd 3.)
exec 3<&0; "$@" </dev/null & p=$!
{ cat <&3 >/dev/null; kill "$p"; } >/dev/null 2>&1 &
wait "$p"
