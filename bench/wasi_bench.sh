#!/usr/bin/env bash
# bench/wasi_bench.sh — W1–W5 (shared/BENCH.md) of cairn under WASI (Node's
# node:wasi) and natively, in the same run on the same disk, reported as
# WASI / native.
#
#   bench/wasi_bench.sh                      N = 100,000 (BENCH.md: WASI)
#   bench/wasi_bench.sh --n 20000 --commits 100 --scans 20000   quick
#   bench/wasi_bench.sh --repeat 3           medians of 3 interleaved runs
#
# Both programs are bench/wasi_bench.c: the .wasm from the `wasi` preset and
# its native twin built with the host compiler (cmake/wasi_native). Other
# arguments go to both. Databases go to ./bench-data-wasi under the current
# directory (--dir D) and are removed. Markdown report on stdout.
#
# Environment:
#   CAIRN_WASI_BUILD  the wasi build directory (default: build/wasi in the repo)
#   CAIRN_WASI_RUN    how to run a .wasm (default: node with tests/wasi_run.mjs);
#                     e.g. "wasmtime run --dir=." for wasmtime
#   CAIRN_WASI_BENCH_ARGS  extra arguments for the WASI run only (default
#                     "--cache-pages 32768": a 128 MiB page cache, as large as
#                     the file at N = 100,000 (~100 MB), i.e. the memory the
#                     native build reads through the OS page cache via its
#                     map; "" keeps wasi_bench's 64 MiB, the peers' budget)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${CAIRN_WASI_BUILD:-$ROOT/build/wasi}
RUN=${CAIRN_WASI_RUN:-node --no-warnings --no-turbo-fast-api-calls $ROOT/tests/wasi_run.mjs}
DIR=$PWD/bench-data-wasi
REPEAT=1
read -r -a WASI_ARGS <<<"${CAIRN_WASI_BENCH_ARGS---cache-pages 32768}"
ARGS=()
while (($#)); do
  case $1 in
    --dir) DIR=$(realpath -m "$2"); shift 2 ;;
    --repeat) REPEAT=$2; shift 2 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) ARGS+=("$1"); shift ;;
  esac
done

die() { printf 'bench/wasi_bench.sh: %s\n' "$*" >&2; exit 1; }

(cd "$ROOT" && cmake --preset wasi -B "$BUILD") >/dev/null || die "configure failed (cmake --preset wasi)"
cmake --build "$BUILD" --target wasi_bench cairn_wasi_native >"$BUILD/wasi-bench-build.log" 2>&1 ||
  { cat "$BUILD/wasi-bench-build.log" >&2; die "build failed"; }
NATIVE=$BUILD/native/wasi_bench
WASM=$BUILD/wasi_bench.wasm
[[ -x $NATIVE && -f $WASM ]] || die "missing $NATIVE or $WASM"

mkdir -p "$DIR"
trap 'rm -f "$DIR"/wasi_bench.cairn*; rmdir "$DIR" 2>/dev/null || true' EXIT
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"; rm -f "$DIR"/wasi_bench.cairn*; rmdir "$DIR" 2>/dev/null || true' EXIT

# Interleave the hosts so drift in the machine's state hits both alike.
for ((r = 1; r <= REPEAT; r++)); do
  printf 'run %d/%d: native\n' "$r" "$REPEAT" >&2
  (cd "$DIR" && "$NATIVE" "${ARGS[@]}") >"$OUT/native.$r" || die "native run failed"
  printf 'run %d/%d: wasi\n' "$r" "$REPEAT" >&2
  # shellcheck disable=SC2086 # RUN is a command line
  (cd "$DIR" && $RUN "$WASM" "${ARGS[@]}" "${WASI_ARGS[@]}") >"$OUT/wasi.$r" || die "WASI run failed"
done

median() { sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
value() { # value HOST W
  local r
  for ((r = 1; r <= REPEAT; r++)); do
    awk -v w="$2" '$1=="RESULT" && $2==w {print $3}' "$OUT/$1.$r"
  done | median
}
unit() { awk -v w="$1" '$1=="RESULT" && $2==w {print $4; exit}' "$OUT/native.1"; }
info() { awk '$1=="INFO" && $2=="platform" {print $3" ("$4", cache_pages "$6"), N = "$8; exit}' "$1"; }

NODEV=$(node --version 2>/dev/null || echo "?")
printf '## cairn under WASI vs native (bench/wasi_bench.sh)\n\n'
printf -- '- native: %s\n' "$(info "$OUT/native.1")"
printf -- '- WASI: %s, run by: %s (node %s)\n' "$(info "$OUT/wasi.1")" "${RUN%% *}" "$NODEV"
printf -- '- arguments: %s (WASI also: %s); medians of %d run(s); commit %s\n\n' "${ARGS[*]:-(defaults)}" \
  "${WASI_ARGS[*]:-nothing}" "$REPEAT" \
  "$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)"
printf '| workload | unit | native | WASI | WASI / native | target |\n'
printf '|---|---|---:|---:|---:|---:|\n'
declare -A NAME=([W1]="W1 bulk load, 10k puts/txn, durable" [W2]="W2 block commits, 500 puts, durable"
  [W3]="W3 random gets, reopened, 2nd pass" [W4]="W4 full ordered scan" [W5]="W5 range scans, seek + 50")
declare -A TARGET=([W1]="≥ 0.4" [W2]="≥ 0.4" [W3]="≥ 0.5" [W4]="≥ 0.5" [W5]="≥ 0.5")
for w in W1 W2 W3 W4 W5; do
  n=$(value native $w)
  x=$(value wasi $w)
  [[ -n $n && -n $x ]] || continue
  ratio=$(awk -v a="$x" -v b="$n" 'BEGIN {printf "%.2f", (b > 0 ? a / b : 0)}')
  printf '| %s | %s | %.0f | %.0f | %s | %s |\n' "${NAME[$w]}" "$(unit $w)" "$n" "$x" "$ratio" "${TARGET[$w]}"
done
