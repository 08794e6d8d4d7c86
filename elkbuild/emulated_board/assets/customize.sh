#!/bin/sh
# Turns a fresh Debian arm64 root into the Elk board's userland (runs inside it,
# under qemu-user, once per rootfs recipe). Files that change more often live in
# the assets layer instead, so editing them does not rebuild the root.
set -eu

# Elk's user: mind/elk, in the groups Elk gives it.
groupadd --system xenomai
useradd --create-home --uid 1000 --user-group --shell /bin/bash \
    --groups xenomai,audio,sudo mind
echo 'mind:elk' | chpasswd

# Elk's writable places: the user partition and Sushi's folders.
install -d -o mind -g mind -m 0755 /udata /home/mind/plugins /home/mind/config_files
install -d -o mind -g mind -m 0700 /home/mind/.ssh

echo elk-pi > /etc/hostname
printf '127.0.0.1\tlocalhost\n127.0.1.1\telk-pi elk-pi.local\n::1\tlocalhost\n' > /etc/hosts

# Every board instance brings its own host key (kept across restarts).
rm -f /etc/ssh/ssh_host_*
# The board has no systemd: nothing may try to start services while packages change.
rm -f /usr/sbin/policy-rc.d
