# Image of the debian-arm64 toolchain (and of native, which uses its host g++):
# Debian's aarch64 cross compiler, build tools, and an arm64 sysroot made of
# Debian packages. Built by `invoke docker-image --toolchain debian-arm64`.
#
# The userland is bookworm (cmake 3.25, ninja, JUCE 7.0.5 and its juceaide), but
# the aarch64 cross compiler, its target libc and the sysroot come from the
# sysroot's suite, bullseye: glibc 2.31 is Elk Audio OS 0.11's, so what this
# image builds loads on Elk 0.11 and 1.x alike. bookworm's cross GCC 12 cannot
# target 2.31: its static libstdc++ and unwinder need glibc 2.32-2.36 symbols.
FROM debian:bookworm-slim

ARG SYSROOT=/opt/sysroots/debian-arm64
ARG SYSROOT_SUITE=bullseye
ARG SYSROOT_PACKAGES="libc6-dev libstdc++-10-dev"
ARG DEBIAN_MIRROR=http://deb.debian.org/debian
# Where the sysroot's suite comes from. bullseye is past its LTS: once it leaves
# deb.debian.org, set toolchain/debian-arm64.yaml's sysroot.mirror to
# http://archive.debian.org/debian.
ARG SYSROOT_MIRROR=http://deb.debian.org/debian
ARG GCC_VERSION=10

ENV CCACHE_DIR=/ccache

# One RUN on purpose: with the vfs storage driver every layer is a full copy of
# the file system. Of qemu-user-static only the aarch64 emulator is kept (the
# package carries every architecture, ~500 MB), and bullseye's cross cc1, cc1plus
# and lto1 lose their debug information (~550 MB).
# The cross compiler is pinned by name to the sysroot's suite: GCC's packages
# and the *-arm64-cross libraries (libc6-dev-arm64-cross: the libc gcc really
# links, from /usr/aarch64-linux-gnu, ahead of any --sysroot). binutils stays
# bookworm's (bullseye's wants bookworm-incompatible binutils-common), and
# g++-aarch64-linux-gnu is not installed: it would pull bookworm's glibc 2.36
# cross libc back in. The build fails when the two libcs disagree.
# The sysroot is unpacked, not installed (--variant=extract): no maintainer
# scripts run for the foreign architecture. Absolute symlinks inside it would
# point into this image's own /lib, so they are made relative within the sysroot.
# JUCE 7.0.5 (its CMake package, modules and the host tool juceaide, which needs
# libfreetype6, libpng16-16 and libjpeg62-turbo) is unpacked rather than
# installed: the package depends on GTK, WebKit and curl -dev packages for GUIs
# that a headless plugin never builds, and what the plugin does link (X11
# headers, freetype, png, jpeg) comes from the sysroot.
RUN set -eux; \
    export DEBIAN_FRONTEND=noninteractive; \
    echo "deb [check-valid-until=no] $SYSROOT_MIRROR $SYSROOT_SUITE main" > /etc/apt/sources.list.d/cross.list; \
    printf 'Package: *-arm64-cross gcc-%s-aarch64-linux-gnu* g++-%s-aarch64-linux-gnu cpp-%s-aarch64-linux-gnu gcc-%s-cross-base*\nPin: release n=%s\nPin-Priority: 990\n' \
        "$GCC_VERSION" "$GCC_VERSION" "$GCC_VERSION" "$GCC_VERSION" "$SYSROOT_SUITE" \
        > /etc/apt/preferences.d/cross-toolchain; \
    apt-get update; \
    apt-get install -y --no-install-recommends \
        ca-certificates cmake ninja-build ccache pkg-config python3 make file \
        g++ "g++-$GCC_VERSION-aarch64-linux-gnu" qemu-user-static mmdebstrap patchelf xz-utils \
        libfreetype6 libpng16-16 libjpeg62-turbo; \
    cd /tmp; apt-get download juce-modules-source juce-modules-source-data; \
    for deb in juce-modules-source*.deb; do dpkg-deb -x "$deb" /; done; rm -f juce-*.deb; cd /; \
    mkdir -p "$SYSROOT"; \
    mmdebstrap --mode=root --variant=extract --architectures=arm64 --quiet \
        --include="$(echo $SYSROOT_PACKAGES | tr ' ' ',')" \
        "$SYSROOT_SUITE" "$SYSROOT" "$SYSROOT_MIRROR"; \
    rm -rf "$SYSROOT/var/cache/apt" "$SYSROOT/var/lib/apt/lists" "$SYSROOT/usr/share/doc" "$SYSROOT/usr/share/man"; \
    find "$SYSROOT" -type l -lname '/*' | while read -r link; do \
        ln -snf "$(realpath -m --relative-to="$(dirname "$link")" "$SYSROOT$(readlink "$link")")" "$link"; \
    done; \
    cross_libc=$(grep -ao 'release version [0-9.]*' /usr/aarch64-linux-gnu/lib/libc.so.6); \
    sysroot_libc=$(grep -ao 'release version [0-9.]*' "$SYSROOT/lib/aarch64-linux-gnu/libc.so.6"); \
    [ "$cross_libc" = "$sysroot_libc" ] || { echo "cross libc ($cross_libc) is not the sysroot's ($sysroot_libc)" >&2; exit 1; }; \
    find /usr/bin -name 'qemu-*-static' ! -name qemu-aarch64-static -delete; \
    for program in /usr/lib/gcc-cross/aarch64-linux-gnu/"$GCC_VERSION"/*; do \
        if file -b "$program" | grep -q 'x86-64.*with debug_info'; then strip --strip-debug "$program"; fi; \
    done; \
    apt-get clean; rm -rf /var/lib/apt/lists/*
