#!/usr/bin/env bash
# Prepares this checkout on a Debian or Ubuntu machine: the system packages listed
# in scripts/apt-packages.txt and a Python virtual environment in .venv with
# elkbuild and its pinned dependencies. Idempotent, and instant when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."

stamp=.venv/.bootstrap-inputs
inputs=$(cat scripts/apt-packages.txt pyproject.toml | sha256sum | cut -c1-16)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$inputs" ]; then
    exit 0
fi

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

mapfile -t wanted < <(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' scripts/apt-packages.txt | sort -u)
missing=()
for pkg in "${wanted[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "elkbuild: installing system packages: ${missing[*]}" >&2
    $sudo apt-get update -q >&2
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
fi

if [ ! -x .venv/bin/python ]; then
    echo "elkbuild: creating .venv" >&2
    python3 -m venv .venv
fi
echo "elkbuild: installing Python packages into .venv" >&2
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]' >&2
echo "$inputs" > "$stamp"
