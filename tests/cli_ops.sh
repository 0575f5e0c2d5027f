#!/usr/bin/env bash
# cli_ops.sh — end-to-end tests of the operations commands of the `cairn`
# tool (core/OPERATIONS.md): backup (full, incremental, compact), verify,
# restore of a chain, check, dump/load, stat --json / --prometheus; their
# outputs, exit statuses and refusals.
#
# usage: bash tests/cli_ops.sh /path/to/cairn
# Works in a private temporary directory; prints "N passed, N failed" last and
# exits non-zero if anything failed.
set -euo pipefail

if [[ $# -ne 1 || ! -x $1 ]]; then
  echo "usage: $0 /path/to/cairn" >&2
  exit 2
fi
CAIRN=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")

T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
cd "$T"

passed=0
failed=0

# run ARGS...: stdout in out, stderr in err, status in $rc.
run() {
  set +e
  "$CAIRN" "$@" >out 2>err
  rc=$?
  set -e
}

check() { # check DESC CONDITION-EXIT-STATUS
  if [[ $2 -eq 0 ]]; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    {
      echo "FAIL: $1"
      echo "  exit status: $rc"
      echo "  stdout: $(head -c 600 out)"
      echo "  stderr: $(head -c 600 err)"
    } >&2
  fi
}

# expect DESC STATUS STDERR-SUBSTRING ARGS...: exit status and (if not
# empty) a substring of the one stderr line.
expect() {
  local desc=$1 want=$2 msg=$3
  shift 3
  run "$@"
  local ok=0
  [[ $rc -eq $want ]] || ok=1
  if [[ -n $msg ]] && ! grep -qF -- "$msg" err; then ok=1; fi
  if [[ $want -eq 0 && -s err ]]; then ok=1; fi
  check "$desc" $ok
}

# flip_byte FILE OFFSET: invert one byte in place.
flip_byte() {
  local b
  b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
  printf "$(printf '\\%03o' $((b ^ 255)))" |
    dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

# ---- a database and a chain of backups ---------------------------------------

# many keys in one go: the CLI has no batch mode, so load a dump
{
  echo "cairn-dump 1 page_size=4096"
  echo "cf 64656661756c74 entries=300"
  awk 'function hex(s,   i, h) {
         h = ""
         for (i = 1; i <= length(s); i++) h = h sprintf("%02x", ord[substr(s, i, 1)])
         return h
       }
       BEGIN {
         for (i = 32; i < 127; i++) ord[sprintf("%c", i)] = i
         for (i = 1000; i < 1300; i++)
           printf " %s:%s\n", hex("key" i), hex("value " i " with some padding ........................")
       }'
  echo "cf 626c6f636b73 entries=2"
  echo " 00:"
  echo " 00ff:0a0d"
  echo "end cfs=2 entries=302"
} >seed.txt
expect "load a hand-written dump" 0 "" load src.db <seed.txt
expect "put" 0 "" put src.db alpha 1
expect "load into a non-empty database" 1 "not empty" load src.db <seed.txt
expect "check" 0 "" check src.db
check "check prints ok" "$([[ $(cat out) == ok ]]; echo $?)"

expect "full backup" 0 "" backup src.db full.bk
check "full backup says so" "$(grep -q '^full.bk: full backup of txn ' out; echo $?)"
"$CAIRN" dump src.db >at-full.txt
expect "put after full" 0 "" put src.db alpha 2
expect "del after full" 0 "" del src.db key1000
expect "cf create" 0 "" cf src.db create extra
expect "put into cf" 0 "" put src.db --cf extra 0x00 0x
expect "incremental 1" 0 "" backup src.db inc1.bk --incremental-from full.bk
"$CAIRN" dump src.db >at-inc1.txt
expect "put after inc1" 0 "" put src.db beta 0xdeadbeef
expect "incremental 2" 0 "" backup src.db inc2.bk --incremental-from inc1.bk
"$CAIRN" dump src.db >at-inc2.txt
expect "compact backup" 0 "" backup src.db compact.bk --compact
expect "full backup of the same state" 0 "" backup src.db full-now.bk
expect "put after the last backup" 0 "" put src.db gamma 3

expect "verify inc2" 0 "" verify inc2.bk
check "verify names the kind" "$(grep -qx 'kind: incremental' out; echo $?)"
check "verify says ok" "$(tail -n1 out | grep -qx ok; echo $?)"
expect "verify a chain" 0 "" verify full.bk inc1.bk inc2.bk
check "verify of a chain lists each file and ends ok" "$([[ $(grep -c '^backup: ' out) -eq 3 &&
  $(grep -c '^kind: incremental$' out) -eq 2 && $(tail -n1 out) == ok ]]; echo $?)"
expect "verify a chain in the wrong order" 2 "wrong order" verify full.bk inc2.bk inc1.bk
expect "verify a chain with a gap" 2 "gap" verify full.bk inc2.bk
expect "verify a missing backup" 1 "no such backup file" verify nope.bk
full_txn=$("$CAIRN" verify full.bk | sed -n 's/^txn_id: //p')
inc1_base=$("$CAIRN" verify inc1.bk | sed -n 's/^base_txn_id: //p')
check "incremental continues the full backup's txn" \
  "$([[ -n $full_txn && $full_txn == "$inc1_base" ]]; echo $?)"
# (checkpoints fold the log in key order, so the source's leaves are nearly
# packed already: the compact copy packs them fully, never worse)
check "compact backup is no larger than a full one of the same state" \
  "$([[ $(stat -c %s compact.bk) -le $(stat -c %s full-now.bk) ]]; echo $?)"

# ---- restore ------------------------------------------------------------------

expect "restore full" 0 "" restore full.bk r0.db
"$CAIRN" dump r0.db >r0.txt
check "restored full = source at the full backup" "$(cmp -s r0.txt at-full.txt; echo $?)"
expect "restore chain of 2" 0 "" restore full.bk inc1.bk r1.db
"$CAIRN" dump r1.db >r1.txt
check "restored chain = source at inc1" "$(cmp -s r1.txt at-inc1.txt; echo $?)"
expect "restore chain of 3" 0 "" restore full.bk inc1.bk inc2.bk r2.db
"$CAIRN" dump r2.db >r2.txt
check "restored chain = source at inc2" "$(cmp -s r2.txt at-inc2.txt; echo $?)"
expect "restore compact" 0 "" restore compact.bk rc.db
"$CAIRN" dump rc.db >rc.txt
check "restored compact = source at inc2" "$(cmp -s rc.txt at-inc2.txt; echo $?)"
expect "restored database passes check" 0 "" check r2.db

cp r0.db r0.copy
expect "restore onto an existing database" 1 "already exists" restore full.bk r0.db
check "the existing database is untouched" "$(cmp -s r0.db r0.copy; echo $?)"
expect "restore in the wrong order" 2 "wrong order" restore full.bk inc2.bk inc1.bk rx.db
expect "restore with a gap" 2 "gap" restore full.bk inc2.bk rx.db
expect "restore starting with an incremental" 2 "full backup" restore inc1.bk inc2.bk rx.db
expect "restore of a missing file" 1 "no such backup file" restore full.bk nope.bk rx.db
head -c 5000 inc1.bk >trunc.bk
expect "restore of a truncated backup" 3 "truncated" restore full.bk trunc.bk rx.db
cp inc1.bk bad.bk
flip_byte bad.bk 5000
expect "restore of a corrupt backup" 3 "checksum mismatch" restore full.bk bad.bk rx.db
expect "verify a corrupt backup" 3 "checksum mismatch" verify bad.bk
check "no refused restore left a file" "$([[ ! -e rx.db ]]; echo $?)"
# another database's backup in the chain
expect "other db" 0 "" put other.db a b
expect "other db full backup" 0 "" backup other.db other.bk
expect "restore mixing databases" 2 "database" restore other.bk inc1.bk rx.db
expect "incremental from another database's backup" 2 "database" \
  backup src.db x.bk --incremental-from other.bk
expect "incremental from a compact backup" 2 "compact" \
  backup src.db x.bk --incremental-from compact.bk
expect "backup onto an existing file" 1 "already exists" backup src.db full.bk
expect "--compact with --incremental-from" 2 "exclude" \
  backup src.db x.bk --compact --incremental-from full.bk
check "no refused backup left a file" "$([[ ! -e x.bk ]]; echo $?)"
expect "restore needs a destination" 2 "" restore full.bk

# ---- dump / load ---------------------------------------------------------------

"$CAIRN" dump src.db >d1.txt
expect "load into a new database" 0 "" load copy.db <d1.txt
"$CAIRN" dump copy.db >d2.txt
check "dump | load | dump is byte for byte" "$(cmp -s d1.txt d2.txt; echo $?)"
check "dump starts with its header" "$(head -n1 d1.txt | grep -qx 'cairn-dump 1 page_size=4096'; echo $?)"
expect "big-page database" 0 "" put --page-size 16384 big.db k v
"$CAIRN" dump big.db >b1.txt
expect "load keeps the page size" 0 "" load big2.db <b1.txt
"$CAIRN" dump big2.db >b2.txt
check "16 KiB dump round-trips byte for byte" "$(cmp -s b1.txt b2.txt; echo $?)"
head -n 5 d1.txt >cut.txt
expect "load of a truncated dump" 3 "truncated" load cut.db <cut.txt
check "a failed load leaves no new database" "$([[ ! -e cut.db ]]; echo $?)"

# ---- check finds damage ---------------------------------------------------------

cp r2.db damaged.db
pages=$(($(stat -c %s damaged.db) / 4096))
for ((p = 2; p < pages; p++)); do flip_byte damaged.db $((4096 * p + 2000)); done
expect "check of a damaged database" 3 "problem" check damaged.db
check "check lists the damaged pages" "$(grep -q 'page [0-9]*: checksum mismatch' out; echo $?)"

# ---- stat ------------------------------------------------------------------------

expect "stat --json" 0 "" stat src.db --json
cp out stat.json
if command -v python3 >/dev/null; then
  check "stat --json is valid JSON with the cf counts" "$(python3 - <<'EOF' >/dev/null 2>&1; echo $?
import json
d = json.load(open("stat.json"))
cfs = {c["name"]: c["entries"] for c in d["column_families"]}
assert d["db"]["page_size"] == 4096
assert cfs["default"] == 302 and cfs["blocks"] == 2 and cfs["extra"] == 1, cfs
assert d["metrics"]["puts"] == 0 and "p99" in d["metrics"]["latency_ns"]["commit"]
EOF
)"
elif command -v jq >/dev/null; then
  check "stat --json is valid JSON" "$(jq -e '.db.page_size == 4096' stat.json >/dev/null; echo $?)"
fi
expect "stat --prometheus" 0 "" stat src.db --prometheus
cp out stat.prom
check "every Prometheus sample line is well formed" "$(grep -v '^#' stat.prom |
  grep -Evq '^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_][a-zA-Z0-9_]*="[^"]*"(,[a-zA-Z_][a-zA-Z0-9_]*="[^"]*")*\})? [0-9.eE+-]+$'
  [[ $? -eq 1 ]]; echo $?)"
check "Prometheus has the counters" "$(grep -qx 'cairn_puts_total 0' stat.prom &&
  grep -qx 'cairn_cf_entries{cf="default"} 302' stat.prom &&
  grep -qx '# TYPE cairn_commit_latency_seconds summary' stat.prom; echo $?)"
expect "--json with --prometheus" 2 "exclude" stat src.db --json --prometheus

echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
