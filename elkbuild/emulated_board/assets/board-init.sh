#!/bin/sh
# First process of an emulated Elk board. Runs on the HOST, as root, inside the
# fresh UTS, mount and PID namespaces that `unshare` made for it (so it is PID 1
# there), sets up the board's file system view, then becomes the board's sshd.
#
# usage: board-init.sh launch ROOTFS ASSETS INSTANCE_DIR PORT PROFILE [sftp|no-sftp]
#   (launch: detach from the caller's output, then re-run inside the namespaces)
set -eu
if [ "$1" = launch ]; then
    shift
    exec >>"$3/board.log" 2>&1 </dev/null
    echo "---- board start $(date -u +%FT%TZ)"
    exec unshare --uts --mount --pid --fork --propagation private -- /bin/sh "$0" init "$@"
fi
shift
rootfs=$1 assets=$2 instance=$3 port=$4 profile=$5 sftp=${6:-sftp}
root=$instance/root

# /proc is still the host's here, so /proc/self/stat tells our host PID: the one
# the host uses to enter the board (nsenter) and to stop it.
read -r host_pid _ < /proc/self/stat
echo "$host_pid" > "$instance/board.pid.tmp"

hostname elk-pi

# The root: the cached Debian arm64 userland and the stand-ins layer, read-only,
# under this instance's own writable layer (which survives restarts).
mount -t overlay elk-board-root \
    -o "lowerdir=$assets:$rootfs,upperdir=$instance/upper,workdir=$instance/work" "$root"

mount -t proc -o nosuid,nodev,noexec proc "$root/proc"
mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$root/sys"

# A minimal /dev: the usual character devices, private ptys for ssh sessions.
mount -t tmpfs -o mode=0755,nosuid elk-board-dev "$root/dev"
for node in null zero full random urandom tty; do
    : > "$root/dev/$node"
    mount --bind "/dev/$node" "$root/dev/$node"
done
mkdir -p "$root/dev/pts" "$root/dev/shm"
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620,gid=5 devpts "$root/dev/pts"
ln -s pts/ptmx "$root/dev/ptmx"
mount -t tmpfs -o mode=1777,nosuid,nodev elk-board-shm "$root/dev/shm"
ln -s /proc/self/fd "$root/dev/fd"
ln -s /proc/self/fd/0 "$root/dev/stdin"
ln -s /proc/self/fd/1 "$root/dev/stdout"
ln -s /proc/self/fd/2 "$root/dev/stderr"

# Elk clears /tmp and /run at boot; /udata is the writable user partition.
mount -t tmpfs -o mode=1777,nosuid,nodev elk-board-tmp "$root/tmp"
mount -t tmpfs -o mode=0755,nosuid,nodev elk-board-run "$root/run"
mkdir -p "$root/run/sshd" "$root/udata"
mount --bind "$instance/udata" "$root/udata"

# This instance's host key (persistent: known_hosts stays valid across restarts)
# and the client key the instance authorises for mind.
mkdir -p "$root/etc/ssh/elk-board"
mount --bind -o ro "$instance/hostkey" "$root/etc/ssh/elk-board"
install -d -o 1000 -g 1000 -m 0700 "$root/home/mind/.ssh"
install -o 1000 -g 1000 -m 0600 "$instance/client/id_ed25519.pub" \
    "$root/home/mind/.ssh/authorized_keys"

# The real-time thread table and the OS profile (Xenomai 3 or EVL view of it).
chroot "$root" /usr/lib/elk-board/rtstat boot "$profile"

# no-sftp: sshd without the sftp subsystem, as Yocto images with Dropbear are
# (sshd refuses a second Subsystem line, so the config is copied without it).
config=/etc/ssh/sshd_config
if [ "$sftp" = no-sftp ]; then
    config=/run/sshd_config.no-sftp
    grep -v '^[[:space:]]*Subsystem[[:space:]]' "$root/etc/ssh/sshd_config" > "$root$config"
fi

mv "$instance/board.pid.tmp" "$instance/board.pid"
# sshd becomes PID 1: it reaps every orphan (a detached Sushi included), and the
# board ends with it.
exec env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LANG=C.UTF-8 \
    chroot "$root" /usr/sbin/sshd -D -e -f "$config" -p "$port" -o ListenAddress=127.0.0.1
