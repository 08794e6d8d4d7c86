#!/bin/sh
# Assembles the stand-in Elk-PI SDK installer inside the debian-arm64 image, from
# that image's Debian cross compiler and arm64 sysroot.
# Usage: build.sh VERSION OUTPUT STANDIN_DIR SYSROOT
set -eu
version=$1
output=$2
here=$3
sysroot=$4

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
sdk=$work/sdk
native=$sdk/sysroots/x86_64-pokysdk-linux
target=$sdk/sysroots/cortexa72-elk-linux
mkdir -p "$native/usr/share/cmake" "$native/usr/bin/aarch64-elk-linux" "$target"

# Target sysroot: the arm64 Debian packages of the image.
cp -dR --preserve=mode,timestamps "$sysroot/." "$target/"

# Native sysroot: every file of Debian's cross packages, except the target C
# library, which a Yocto SDK keeps in the target sysroot only. GCC finds its own
# parts relative to its binary, so the copy works from any install dir.
# (cp --parents resolves the source's parent directories from the working dir.)
cd /
dpkg-query -W -f='${Package}\n' \
    | grep -E -- '-arm64-cross$|aarch64-linux-gnu' \
    | grep -v -E '^(libc6|libc6-dev|linux-libc-dev)-arm64-cross$' \
    | while read -r pkg; do dpkg -L "$pkg"; done \
    | sort -u \
    | while read -r file; do
        case $file in /usr/share/doc/*|/usr/share/man/*|/usr/share/lintian/*) continue ;; esac
        if [ -L "$file" ] || [ -f "$file" ]; then
            cp -d --preserve=mode,timestamps --parents "$file" "$native"
        fi
    done
for root in "$native" "$target"; do
    find "$root" -type l -lname '/*' | while read -r link; do
        ln -snf "$(realpath -m --relative-to="$(dirname "$link")" "$root$(readlink "$link")")" "$link"
    done
done

# Debian's binutils find their libbfd/libopcodes in /usr/lib; a Yocto SDK's tools
# find theirs inside the SDK, wherever it is installed.
for tool in "$native"/usr/bin/aarch64-linux-gnu-*; do
    if [ ! -L "$tool" ] && head -c 4 "$tool" | grep -q ELF; then
        patchelf --set-rpath '$ORIGIN/../lib/x86_64-linux-gnu' "$tool"
    fi
done

# Yocto's tool names, in Yocto's place, for the image's one cross GCC.
gcc_version=$(basename "$(ls /usr/bin/aarch64-linux-gnu-gcc-[0-9]* | head -n 1)" | sed 's/.*-//')
for tool in gcc g++ cpp; do
    printf '#!/bin/sh\nexec "$(dirname "$0")/../aarch64-linux-gnu-%s-%s" "$@"\n' "$tool" "$gcc_version" \
        > "$native/usr/bin/aarch64-elk-linux/aarch64-elk-linux-$tool"
done
for tool in ar as ld nm objcopy objdump ranlib readelf strip; do
    printf '#!/bin/sh\nexec "$(dirname "$0")/../aarch64-linux-gnu-%s" "$@"\n' "$tool" \
        > "$native/usr/bin/aarch64-elk-linux/aarch64-elk-linux-$tool"
done
chmod 755 "$native"/usr/bin/aarch64-elk-linux/*

cp "$here/OEToolchainConfig.cmake" "$native/usr/share/cmake/"
sed "s/@SDK_VERSION@/$version/g" "$here/environment-setup-cortexa72-elk-linux" \
    > "$sdk/environment-setup-cortexa72-elk-linux"
printf 'Distro: Elk Audio OS (stand-in)\nDistro Version: %s\n' "$version" > "$sdk/version-cortexa72-elk-linux"

mkdir -p "$(dirname "$output")"
sed "s/@SDK_VERSION@/$version/g" "$here/installer-header.sh" > "$output.tmp"
tar -C "$sdk" -cf - . | gzip -1 >> "$output.tmp"
chmod 755 "$output.tmp"
mv "$output.tmp" "$output"
