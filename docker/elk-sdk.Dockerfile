# Image of an elk-sdk-<V> toolchain, like Elk's own builder image: a Debian base,
# the Elk-PI SDK installed by its installer, and cmake, ninja, ccache, python.
# Built by `invoke docker-image --toolchain elk-sdk-<V> [--sdk-installer PATH]`.
FROM debian:bookworm-slim

# Where the SDK goes, and where to get its installer. elkbuild serves a verified
# local copy on the build host's loopback (builds use the host's network), so the
# installer never becomes a layer of the image.
ARG SDK_DIR=/opt/elk/1.0.0
ARG SDK_INSTALLER_URL
ARG SDK_INSTALLER_SHA256

ENV CCACHE_DIR=/ccache

# One RUN: fewer layers, and no copy of the installer left in any of them. The
# SDK's relocation step needs python3, file and xz; g++ builds host tools such as
# JUCE's juceaide. JUCE 7.0.5 itself (CMake package, modules, juceaide) is
# unpacked, not installed: its package pulls GTK/WebKit -dev packages a headless
# plugin never uses; the libraries the plugin links come from the SDK's sysroot.
RUN set -eux; \
    export DEBIAN_FRONTEND=noninteractive; \
    apt-get update; \
    apt-get install -y --no-install-recommends \
        ca-certificates cmake ninja-build ccache pkg-config python3 make file \
        g++ xz-utils bzip2 git libfreetype6; \
    cd /tmp; apt-get download juce-modules-source juce-modules-source-data; \
    for deb in juce-modules-source*.deb; do dpkg-deb -x "$deb" /; done; rm -f juce-*.deb; cd /; \
    python3 -c 'import sys, urllib.request; urllib.request.urlretrieve(sys.argv[1], sys.argv[2])' \
        "$SDK_INSTALLER_URL" /tmp/elk-sdk-installer.sh; \
    echo "$SDK_INSTALLER_SHA256  /tmp/elk-sdk-installer.sh" | sha256sum -c -; \
    sh /tmp/elk-sdk-installer.sh -y -d "$SDK_DIR"; \
    rm -f /tmp/elk-sdk-installer.sh; \
    test -f "$SDK_DIR"/environment-setup-cortexa72-elk-linux; \
    apt-get clean; rm -rf /var/lib/apt/lists/*
