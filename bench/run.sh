#!/usr/bin/env bash
# bench/run.sh — install the peers if missing, build the benchmark, run it.
#
#   bench/run.sh --quick                 smoke run (N = 10,000), < 1 minute
#   bench/run.sh --scale 0.1 --json r.json
#   bench/run.sh --engines cairn,lmdb --workloads W2,W3
#
# Every argument goes to cairn-bench (bench/bench.c; --help lists them). The
# databases go under ./bench-data of the directory you call it from (or
# --dir D) and are removed afterwards. The report (markdown) is on stdout,
# progress on stderr. Exit status: 0 when every engine passed its correctness
# checks; speed is reported, never asserted.
#
# Environment:
#   CAIRN_BENCH_BUILD   build directory (default: build/bench in the repo)
#   CAIRN_NO_INSTALL=1  never run apt-get (fail if something is missing)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${CAIRN_BENCH_BUILD:-$ROOT/build/bench}
PACKAGES=(build-essential cmake ninja-build liblmdb-dev librocksdb-dev
  libleveldb-dev libsqlite3-dev)

die() {
  printf 'bench/run.sh: %s\n' "$*" >&2
  exit 1
}

install_missing() {
  local missing=() p
  if ! command -v dpkg-query >/dev/null 2>&1; then
    return 0 # not Debian: cmake says what is missing
  fi
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
      missing+=("$p")
  done
  ((${#missing[@]} == 0)) && return 0
  [[ ${CAIRN_NO_INSTALL:-0} != 1 ]] ||
    die "missing packages: ${missing[*]} (CAIRN_NO_INSTALL=1)"
  local sudo=()
  if ((EUID != 0)); then
    command -v sudo >/dev/null 2>&1 ||
      die "missing packages ${missing[*]}; not root and no sudo"
    sudo=(sudo)
  fi
  local apt=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get)
  printf 'bench/run.sh: installing %s\n' "${missing[*]}" >&2
  # Try without refreshing the package lists first; update only if needed.
  if ! "${apt[@]}" install -y -q --no-install-recommends "${missing[@]}" \
    >/dev/null 2>&1; then
    "${apt[@]}" update -q >/dev/null ||
      die "apt-get update failed"
    "${apt[@]}" install -y -q --no-install-recommends "${missing[@]}" \
      >/dev/null || die "apt-get install ${missing[*]} failed"
  fi
}

install_missing

cmake -S "$ROOT/bench" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  >/dev/null || die "cmake configure failed"
cmake --build "$BUILD" >"$BUILD/build.log" 2>&1 || {
  cat "$BUILD/build.log" >&2
  die "build failed"
}

# Which cairn was measured, for the report.
CAIRN_BENCH_COMMIT=$(git -C "$ROOT" describe --always --dirty 2>/dev/null ||
  echo unknown)
export CAIRN_BENCH_COMMIT
exec "$BUILD/cairn-bench" "$@"
