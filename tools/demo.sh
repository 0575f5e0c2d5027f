#!/usr/bin/env bash
# tools/demo.sh — build cairn (release preset) and run the demo.
#
# On a fresh Debian 12 machine it first installs the minimum with apt-get
# (build-essential cmake ninja-build). The demo creates its database under
# the current directory: writes a few thousand blocks' worth of keys, reads
# them back, scans a range and prints stats. Arguments go to cairn-demo.
set -euo pipefail

HERE=$(pwd)
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=$ROOT/build/release
PACKAGES=(build-essential cmake ninja-build)

missing=()
if command -v dpkg-query >/dev/null 2>&1; then
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
      missing+=("$p")
  done
fi
if ((${#missing[@]} > 0)); then
  echo "==== demo: installing ${missing[*]} ===="
  sudo=()
  if ((EUID != 0)); then sudo=(sudo); fi
  apt=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get)
  "${apt[@]}" update -q >/dev/null
  "${apt[@]}" install -y -q --no-install-recommends "${PACKAGES[@]}" >/dev/null
fi

if [[ ! -f $ROOT/tools/cairn_demo.c ]]; then
  echo "demo: tools/cairn_demo.c does not exist yet" >&2
  exit 1
fi

echo "==== demo: building (release preset) ===="
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cd "$ROOT"
if ! { cmake --preset release && cmake --build --preset release --target cairn-demo; } >"$log" 2>&1; then
  tail -n 100 "$log"
  echo "demo: build failed" >&2
  exit 1
fi

echo "==== demo: running build/release/cairn-demo in $HERE ===="
cd "$HERE"
exec "$BUILD/cairn-demo" "$@"
