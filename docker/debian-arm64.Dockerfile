# Image of the debian-arm64 toolchain (and of native, which uses its host g++):
# Debian's aarch64 cross compiler, build tools, and an arm64 sysroot made of
# Debian packages. Built by `invoke docker-image --toolchain debian-arm64`.
FROM debian:bookworm-slim

ARG SYSROOT=/opt/sysroots/debian-arm64
ARG SYSROOT_SUITE=bookworm
ARG SYSROOT_PACKAGES="libc6-dev libstdc++-12-dev"
ARG DEBIAN_MIRROR=http://deb.debian.org/debian

ENV CCACHE_DIR=/ccache

# One RUN on purpose: with the vfs storage driver every layer is a full copy of
# the file system. Of qemu-user-static only the aarch64 emulator is kept (the
# package carries every architecture, ~500 MB).
# The sysroot is unpacked, not installed (--variant=extract): no maintainer
# scripts run for the foreign architecture. Absolute symlinks inside it would
# point into this image's own /lib, so they are made relative within the sysroot.
# JUCE 7.0.5 (its CMake package, modules and the host tool juceaide, which needs
# libfreetype6) is unpacked rather than installed: the package depends on GTK,
# WebKit and curl -dev packages for GUIs that a headless plugin never builds, and
# what the plugin does link (X11 headers, freetype, png, jpeg) comes from the sysroot.
RUN set -eux; \
    export DEBIAN_FRONTEND=noninteractive; \
    apt-get update; \
    apt-get install -y --no-install-recommends \
        ca-certificates cmake ninja-build ccache pkg-config python3 make file \
        g++ g++-aarch64-linux-gnu qemu-user-static mmdebstrap patchelf xz-utils \
        libfreetype6; \
    cd /tmp; apt-get download juce-modules-source juce-modules-source-data; \
    for deb in juce-modules-source*.deb; do dpkg-deb -x "$deb" /; done; rm -f juce-*.deb; cd /; \
    mkdir -p "$SYSROOT"; \
    mmdebstrap --mode=root --variant=extract --architectures=arm64 --quiet \
        --include="$(echo $SYSROOT_PACKAGES | tr ' ' ',')" \
        "$SYSROOT_SUITE" "$SYSROOT" "$DEBIAN_MIRROR"; \
    rm -rf "$SYSROOT/var/cache/apt" "$SYSROOT/var/lib/apt/lists" "$SYSROOT/usr/share/doc" "$SYSROOT/usr/share/man"; \
    find "$SYSROOT" -type l -lname '/*' | while read -r link; do \
        ln -snf "$(realpath -m --relative-to="$(dirname "$link")" "$SYSROOT$(readlink "$link")")" "$link"; \
    done; \
    find /usr/bin -name 'qemu-*-static' ! -name qemu-aarch64-static -delete; \
    apt-get clean; rm -rf /var/lib/apt/lists/*
