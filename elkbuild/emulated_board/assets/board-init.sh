#!/bin/sh
# First process of an emulated Elk board. Runs on the HOST, as root, as PID 1 of
# the user, UTS, mount and PID namespaces that userns.py made for it, sets up the
# board's file system view, then becomes the board's sshd.
#
# usage: board-init.sh ROOTFS ASSETS INSTANCE_DIR PORT PROFILE SFTP BINFMT_RULE
#   SFTP: sftp or no-sftp; BINFMT_RULE: the qemu-aarch64 line for binfmt_misc's
#   register file, with the board's launcher as interpreter
set -eu
echo "---- board start $(date -u +%FT%TZ)"
rootfs=$1 assets=$2 instance=$3 port=$4 profile=$5 sftp=$6 binfmt_rule=$7
root=$instance/root

# /proc is still the host's here, so /proc/self/stat tells our host PID: the one
# the host uses to enter the board (nsenter) and to stop it.
read -r host_pid _ < /proc/self/stat
echo "$host_pid" > "$instance/board.pid.tmp"

hostname elk-pi
mount --make-rprivate /

# The Pi 4's CPU for every program on the board: its own binfmt_misc instance
# (Linux 6.7+ gives one to each user namespace; the host's stays as it is) runs
# arm64 programs through the launcher, which starts qemu with -cpu. Older kernels
# refuse the mount: then qemu reads the model from QEMU_CPU, which sshd passes to
# its sessions, but a program started with a cleared environment runs on qemu's
# default CPU. ELKBUILD_BOARD_PINNING=env picks that way on any kernel.
cpu=$(cat "$assets/usr/lib/elk-board/cpu")
if [ "${ELKBUILD_BOARD_PINNING:-}" != env ] &&
        mount -t binfmt_misc elk-board-binfmt /proc/sys/fs/binfmt_misc 2>/dev/null; then
    printf '%s' "$binfmt_rule" > /proc/sys/fs/binfmt_misc/register
    pinning=binfmt
else
    echo "warning: no binfmt_misc of the board's own (Linux < 6.7): $cpu only through QEMU_CPU; env -i, su - and sudo escape it"
    pinning=env
fi
echo "$pinning" > "$instance/cpu-pinning"

# The root: the cached Debian arm64 userland and the stand-ins layer, read-only,
# under this instance's own writable layer (which survives restarts). userxattr:
# in a user namespace overlayfs may keep its marks (opaque folders) only in user.*
# extended attributes; without them a folder of the layers cannot be removed.
mount -t overlay elk-board-root \
    -o "userxattr,lowerdir=$assets:$rootfs,upperdir=$instance/upper,workdir=$instance/work" "$root"

mount -t proc -o nosuid,nodev,noexec proc "$root/proc"
# A user namespace may not mount sysfs (that needs a network namespace of its own).
mount --rbind /sys "$root/sys"
mount -o remount,bind,ro,nosuid,nodev,noexec "$root/sys"

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
# The launcher's per-user folders of qemu links (named like the programs).
install -d -m 1777 "$root/run/elk-board/qemu"
install -d -m 0755 "$root/run/elk-board/qemu/0"
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
path=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
if [ "$pinning" = env ]; then
    exec env -i PATH="$path" LANG=C.UTF-8 QEMU_CPU="$cpu" \
        chroot "$root" /usr/sbin/sshd -D -e -f "$config" -p "$port" -o ListenAddress=127.0.0.1 \
        -o SetEnv="QEMU_CPU=$cpu"
fi
exec env -i PATH="$path" LANG=C.UTF-8 \
    chroot "$root" /usr/sbin/sshd -D -e -f "$config" -p "$port" -o ListenAddress=127.0.0.1
