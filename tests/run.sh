#!/usr/bin/env bash
# tests/run.sh — cairn's whole test suite, the one command CI runs (.ci/run).
#
#   tests/run.sh              every stage, in order, stopping at the first failure
#   tests/run.sh debug fuzz   only the named stages (deps always runs first)
#   tests/run.sh --list       the stages
#
# Stages:
#   deps      install the toolchain with apt-get (Debian 12) if anything is missing
#   format    clang-format --dry-run -Werror over our .c/.h files
#   release   configure, build and ctest the `release` preset (RelWithDebInfo)
#   debug     configure, build and ctest the `debug` preset (clang, ASan + UBSan)
#   valgrind  unit and model tests of the release build under valgrind memcheck
#             (CAIRN_TEST_SCALE=0.1)
#   fuzz      build the `fuzz` preset and run each libFuzzer target for
#             CAIRN_FUZZ_SECONDS (default 30) seconds
#   browser   build the `emscripten` preset; in headless Chromium run the C
#             suite on the memory, opfs and idb platforms (CAIRN_TEST_SCALE,
#             default 0.3 here), the JS package tests and the demo page test
#             (web/test; screenshot in logs/demo.png)
#   bench     a smoke run of bench/run.sh --quick (installs the peers'
#             -dev packages; reports, never asserts, speed)
#   wasi      build the `wasi` preset (wasm32-wasi) and ctest it: every test
#             .wasm under Node's node:wasi (CAIRN_TEST_SCALE, default 0.3 here)
#
# Environment:
#   CAIRN_BUILD_DIR     where the build trees go (default: build/ in the repo)
#   CAIRN_FUZZ_SECONDS  seconds per libFuzzer target (default 30)
#   CAIRN_JOBS          parallel tests (default 2)
#   CAIRN_CTEST_ARGS    extra ctest arguments for every ctest stage, e.g.
#                       "-E test_model" or "-R test_api" (for local use)
#   CAIRN_NO_INSTALL=1  never run apt-get (fail if a tool is missing)
#
# Quiet unless something fails: each stage prints one line; a failing stage
# prints its log and the run stops with a summary.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

BUILD=${CAIRN_BUILD_DIR:-$ROOT/build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
LOGS=$BUILD/logs
JOBS=${CAIRN_JOBS:-2}
read -r -a EXTRA_CTEST <<<"${CAIRN_CTEST_ARGS:-}"
FUZZ_SECONDS=${CAIRN_FUZZ_SECONDS:-30}
ALL_STAGES=(deps format release debug valgrind fuzz browser)
PACKAGES=(build-essential cmake ninja-build clang lld libclang-rt-14-dev valgrind
  clang-format)

# ---- stage bookkeeping -------------------------------------------------------

STAGE=""
STAGE_START=0
RUN_START=$SECONDS
SUMMARY=()
TESTS_PASSED=0
TESTS_FAILED=0

say() { printf '%s\n' "$*"; }
hr() { say "==== $* ===="; }

stage_begin() {
  STAGE=$1
  STAGE_START=$SECONDS
  hr "$1: $2"
}

stage_end() { # $1 = result text
  local t=$((SECONDS - STAGE_START))
  SUMMARY+=("$(printf '  %-9s %-8s %4ds  %s' "$STAGE" "${1%% *}" "$t" "${1#* }")")
  STAGE=""
}

print_summary() {
  local line
  say ""
  hr "summary ($((SECONDS - RUN_START)) s)"
  for line in "${SUMMARY[@]}"; do say "$line"; done
}

on_exit() {
  local rc=$?
  if [[ -n $STAGE ]]; then
    stage_end "FAILED see above (logs in $LOGS)"
    ((rc != 0)) || rc=1
  fi
  print_summary
  if ((rc != 0)); then
    say "tests/run.sh: FAILED"
  fi
  say "summary: $TESTS_PASSED passed, $TESTS_FAILED failed"
  exit "$rc"
}
trap on_exit EXIT

die() {
  say "tests/run.sh: $*" >&2
  exit 1
}

# Run a command with its output in a log; on failure show the log (or its
# tail) and stop.
quiet() { # quiet LOGNAME CMD...
  local log=$LOGS/$1.log
  shift
  if ! "$@" >"$log" 2>&1; then
    say "---- failed: $* ----"
    if (($(wc -l <"$log") > 200)); then
      say "(last 200 lines of $log)"
      tail -n 200 "$log"
    else
      cat "$log"
    fi
    say "---- end of output ----"
    exit 1
  fi
}

# Run ctest with its output in a log; count results; on failure show it all.
run_ctest() { # run_ctest LOGNAME CTEST-ARGS...
  local name=$1 log=$LOGS/$1.log line passed total failed
  shift
  local rc=0
  ctest "$@" "${EXTRA_CTEST[@]}" >"$log" 2>&1 || rc=$?
  line=$(grep -E '^[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -n 1 || true)
  if [[ -n $line ]]; then
    failed=$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\1/' <<<"$line")
    total=$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\2/' <<<"$line")
    passed=$((total - failed))
    TESTS_PASSED=$((TESTS_PASSED + passed))
    TESTS_FAILED=$((TESTS_FAILED + failed))
    CTEST_RESULT="$passed/$total tests passed"
  else
    CTEST_RESULT="no result line"
  fi
  if ((rc != 0)); then
    say "---- ctest failed ($CTEST_RESULT) ----"
    cat "$log"
    say "---- end of ctest output ($log) ----"
    return 1
  fi
}

# ---- stages --------------------------------------------------------------------

stage_deps() {
  stage_begin deps "toolchain"
  local missing=()
  if command -v dpkg-query >/dev/null 2>&1; then
    local p
    for p in "${PACKAGES[@]}"; do
      if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
      fi
    done
  else
    local c
    for c in cc clang cmake ninja valgrind clang-format; do
      command -v "$c" >/dev/null 2>&1 || missing+=("$c")
    done
    ((${#missing[@]} == 0)) || die "not a Debian system and missing: ${missing[*]}"
  fi
  if ((${#missing[@]} == 0)); then
    stage_end "ok all present"
    return
  fi
  [[ ${CAIRN_NO_INSTALL:-0} != 1 ]] || die "missing packages: ${missing[*]} (CAIRN_NO_INSTALL=1)"
  local sudo=()
  if ((EUID != 0)); then
    command -v sudo >/dev/null 2>&1 || die "missing packages ${missing[*]}; not root and no sudo"
    sudo=(sudo)
  fi
  say "installing: ${missing[*]}"
  local apt=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get)
  quiet apt-update "${apt[@]}" update -q
  quiet apt-install "${apt[@]}" install -y -q --no-install-recommends "${PACKAGES[@]}"
  stage_end "ok installed ${missing[*]}"
}

stage_format() {
  stage_begin format "clang-format --dry-run -Werror"
  local files=()
  if git -C "$ROOT" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    # Tracked files and new ones not ignored; never vendored code.
    mapfile -t files < <(git -C "$ROOT" ls-files --cached --others --exclude-standard \
      -- '*.c' '*.h' ':!:build/**' ':!:**/third_party/**' ':!:**/vendor/**' \
      ':!:**/node_modules/**' | sort -u)
  else
    mapfile -t files < <(find core include platform tools tests bench web \
      \( -name build -o -name node_modules -o -name third_party -o -name vendor \) -prune \
      -o -type f \( -name '*.c' -o -name '*.h' \) -print 2>/dev/null | sort)
  fi
  local present=() f
  for f in "${files[@]}"; do [[ -f $f ]] && present+=("$f"); done
  ((${#present[@]} > 0)) || die "format: no .c/.h files found"
  quiet format clang-format --dry-run -Werror "${present[@]}"
  stage_end "ok ${#present[@]} files"
}

# configure_build PRESET [cmake --build args...]
configure_build() {
  local preset=$1 dir=$BUILD/$1
  shift
  quiet "$preset-configure" cmake --preset "$preset" -B "$dir" "${CONFIGURE_ARGS[@]}"
  quiet "$preset-build" cmake --build "$dir" "$@"
}

CONFIGURE_ARGS=()

stage_release() {
  stage_begin release "RelWithDebInfo build and ctest"
  configure_build release
  run_ctest release --test-dir "$BUILD/release" --output-on-failure -j "$JOBS" --no-tests=error
  stage_end "ok $CTEST_RESULT"
}

stage_debug() {
  stage_begin debug "Debug + ASan/UBSan build (clang) and ctest"
  configure_build debug
  run_ctest debug --test-dir "$BUILD/debug" --output-on-failure -j "$JOBS" --no-tests=error
  stage_end "ok $CTEST_RESULT"
}

stage_valgrind() {
  stage_begin valgrind "unit and model tests of the release build under valgrind"
  local dir=$BUILD/release
  if [[ ! -f $dir/CTestTestfile.cmake ]]; then
    configure_build release
  else
    quiet release-build cmake --build "$dir"
  fi
  rm -f "$dir"/Testing/Temporary/MemoryChecker.*.log
  local rc=0
  # somalloc=nouserintercepts: memcheck leaves a test's own malloc alone
  # (tests/test_nomem.c defines one that fails allocations on purpose and
  # forwards the rest to glibc's, i.e. to memcheck's).
  CAIRN_TEST_SCALE=0.1 run_ctest valgrind --test-dir "$dir" -T memcheck \
    -L '^(unit|model)$' --output-on-failure -j "$JOBS" --no-tests=error \
    --overwrite "MemoryCheckCommand=$(command -v valgrind)" \
    --overwrite "MemoryCheckCommandOptions=-q --error-exitcode=1 --leak-check=full --num-callers=40 --soname-synonyms=somalloc=nouserintercepts" ||
    rc=$?
  if ((rc != 0)); then
    local f
    for f in "$dir"/Testing/Temporary/MemoryChecker.*.log; do
      [[ -s $f ]] || continue
      say "---- valgrind report $f ----"
      head -n 300 "$f"
    done
    exit 1
  fi
  stage_end "ok $CTEST_RESULT"
}

stage_fuzz() {
  stage_begin fuzz "libFuzzer targets, ${FUZZ_SECONDS}s each (clang, ASan + UBSan)"
  local targets=() f
  for f in tests/fuzz_*.c; do
    [[ -f $f && $f != tests/fuzz_driver.c ]] && targets+=("$f")
  done
  if ((${#targets[@]} == 0)); then
    stage_end "SKIPPED no tests/fuzz_*.c targets yet"
    return
  fi
  CONFIGURE_ARGS=(-DCAIRN_FUZZ_SECONDS="$FUZZ_SECONDS")
  configure_build fuzz --target fuzzers
  CONFIGURE_ARGS=()
  run_ctest fuzz --test-dir "$BUILD/fuzz" -L '^libfuzzer$' --output-on-failure -j "$JOBS" \
    --no-tests=error
  stage_end "ok $CTEST_RESULT"
}

# ---- BEGIN bench stage (owner: engine lead) -----------------------------------
# A smoke run of the native benchmark (N = 10,000) so the harness never rots:
# it checks every engine's answers, never a speed.
stage_bench() {
  stage_begin bench "bench/run.sh --quick (cairn, LMDB, RocksDB, LevelDB, SQLite)"
  quiet bench env CAIRN_BENCH_BUILD="$BUILD/bench" bash bench/run.sh --quick \
    --dir "$BUILD/bench-data"
  stage_end "ok smoke run"
}
ALL_STAGES+=(bench)
# ---- END bench stage ---------------------------------------------------------

# ---- BEGIN browser stage (owner: browser engineer) ----------------------------
# Emscripten + Debian's chromium from apt-get, npm deps from web/package-lock.json.
# CAIRN_BROWSER_SKIP: C test programs not to run in the browser (comma list).
BROWSER_PACKAGES=(emscripten chromium)
stage_browser() {
  stage_begin browser "C suite and JS package tests in headless Chromium (Emscripten)"
  local missing=() p
  for p in "${BROWSER_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  # node and npm: whatever provides them (a nodejs that bundles npm conflicts with Debian's npm).
  command -v node >/dev/null 2>&1 || missing+=(nodejs)
  command -v npm >/dev/null 2>&1 || missing+=(npm)
  if ((${#missing[@]} > 0)); then
    [[ ${CAIRN_NO_INSTALL:-0} != 1 ]] || die "browser: missing packages: ${missing[*]} (CAIRN_NO_INSTALL=1)"
    local sudo=()
    ((EUID == 0)) || sudo=(sudo)
    quiet browser-apt-update "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
    quiet browser-apt-install "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
      --no-install-recommends "${missing[@]}"
  fi
  if [[ ! -d web/node_modules/playwright-core || web/package-lock.json -nt web/node_modules/.package-lock.json ]]; then
    quiet browser-npm-ci npm ci --prefix web --no-audit --no-fund
  fi
  export NODE_PATH=/usr/share/nodejs # Debian's emcc finds acorn there
  configure_build emscripten
  if [[ ! -x $BUILD/release/cairn ]]; then
    configure_build release --target cairn_cli
  fi
  CAIRN_TEST_SCALE=${CAIRN_TEST_SCALE:-0.3} quiet browser-c-suite \
    node web/test/run-c-suite.mjs "$BUILD/emscripten" --skip "${CAIRN_BROWSER_SKIP:-}"
  quiet browser-js node web/test/run-web-tests.mjs "$BUILD/emscripten" "$BUILD/release/cairn"
  quiet browser-demo node web/test/run-demo-test.mjs "$BUILD/emscripten" "$LOGS/demo.png"
  local c j
  c=$(grep -E '^browser C suite:' "$LOGS/browser-c-suite.log" | sed 's/^browser C suite: //')
  j=$(grep -E '^browser JS tests:' "$LOGS/browser-js.log" | sed 's/^browser JS tests: //')
  local x
  for x in "$c" "$j"; do
    [[ $x =~ ([0-9]+)\ passed,\ ([0-9]+)\ failed ]] || continue
    TESTS_PASSED=$((TESTS_PASSED + BASH_REMATCH[1]))
    TESTS_FAILED=$((TESTS_FAILED + BASH_REMATCH[2]))
  done
  stage_end "ok C suite $c; JS $j; demo ok"
}
# ---- END browser stage -----------------------------------------------------------

# ---- BEGIN wasi stage (owner: WASI engineer) -----------------------------------
# The `wasi` preset: libcairn, the CLI and the whole C suite as wasm32-wasi
# modules (clang + Debian's wasi-libc), run by ctest under Node's node:wasi
# (tests/wasi_run.mjs), plus the cross-host file format tests against a native
# twin and the reactor/Node embedding example. Lean: CAIRN_TEST_SCALE defaults
# to 0.3 here and CAIRN_FUZZ_ITERS to 2000.
PACKAGES+=(wasi-libc libclang-rt-14-dev-wasm32)
command -v node >/dev/null 2>&1 || PACKAGES+=(nodejs)
ALL_STAGES+=(wasi)
stage_wasi() {
  stage_begin wasi "wasm32-wasi build, C suite under Node's node:wasi (ctest)"
  local major
  major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
  ((major >= 20)) || die "wasi: needs Node >= 20 for node:wasi preview1 (found: $(node --version 2>&1))"
  configure_build wasi
  CAIRN_TEST_SCALE=${CAIRN_TEST_SCALE:-0.3} CAIRN_FUZZ_ITERS=${CAIRN_FUZZ_ITERS:-2000} \
    run_ctest wasi --test-dir "$BUILD/wasi" --output-on-failure -j "$JOBS" --no-tests=error
  stage_end "ok $CTEST_RESULT"
}
# ---- END wasi stage ------------------------------------------------------------

# ---- main ----------------------------------------------------------------------

stages=()
for a in "$@"; do
  case $a in
    --list) printf '%s\n' "${ALL_STAGES[@]}"; trap - EXIT; exit 0 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; trap - EXIT; exit 0 ;;
    deps | format | release | debug | valgrind | fuzz | browser | wasi | bench) stages+=("$a") ;;
    *) trap - EXIT; die "unknown stage '$a' (stages: ${ALL_STAGES[*]})" ;;
  esac
done
((${#stages[@]} > 0)) || stages=("${ALL_STAGES[@]}")
[[ ${stages[0]} == deps ]] || stages=(deps "${stages[@]}")

mkdir -p "$LOGS"
for s in "${stages[@]}"; do
  "stage_$s"
done
say "tests/run.sh: all stages passed"
