#!/bin/sh
# Stand-in for an Elk-PI SDK installer, in the shape of a Yocto SDK installer
# (a shell script with a tarball appended): -y answers yes, -d DIR installs to DIR.
# Its compiler is Debian's aarch64 cross GCC under the Yocto names.
DEFAULT_INSTALL_DIR="/opt/elk/@SDK_VERSION@"
target_sdk_dir=""
answer=""
while getopts ":yd:h" option; do
    case $option in
        y) answer="Y" ;;
        d) target_sdk_dir=$OPTARG ;;
        h) echo "Usage: $(basename "$0") [-y] [-d <dir>]"; exit 0 ;;
        *) echo "Invalid option: -$OPTARG" >&2; exit 1 ;;
    esac
done
echo "Elk Audio OS SDK installer version @SDK_VERSION@ (stand-in)"
if [ -z "$target_sdk_dir" ]; then
    if [ "$answer" != "Y" ]; then
        printf "Enter target directory for SDK (default: %s): " "$DEFAULT_INSTALL_DIR"
        read -r target_sdk_dir
    fi
    [ -n "$target_sdk_dir" ] || target_sdk_dir=$DEFAULT_INSTALL_DIR
fi
mkdir -p "$target_sdk_dir" || exit 1
target_sdk_dir=$(cd "$target_sdk_dir" && pwd)
printf "Extracting SDK..."
payload_line=$(grep -na -m1 '^__SDK_PAYLOAD__$' "$0" | cut -d: -f1)
tail -n +$((payload_line + 1)) "$0" | tar -xz -C "$target_sdk_dir" || exit 1
echo "done"
printf "Setting it up..."
for script in "$target_sdk_dir"/environment-setup-*; do
    sed -i "s#@SDKPATH@#$target_sdk_dir#g" "$script"
done
echo "done"
echo "SDK has been successfully set up and is ready to be used."
echo "Each time you wish to use the SDK in a new shell session, you need to source the environment setup script e.g."
echo " \$ . $target_sdk_dir/environment-setup-cortexa72-elk-linux"
exit 0
__SDK_PAYLOAD__
