#!/usr/bin/env bash
# cli_test.sh — end-to-end tests of the `cairn` command-line tool: every
# command's real output and exit status, and every error path (bad arguments,
# missing, corrupt and locked files, unknown keys and column families).
#
# usage: bash tests/cli_test.sh /path/to/cairn
# Works in a private temporary directory; prints "N passed, N failed" last and
# exits non-zero if anything failed.
set -euo pipefail

if [[ $# -ne 1 || ! -x $1 ]]; then
  echo "usage: $0 /path/to/cairn" >&2
  exit 2
fi
# Absolute, because the tests run inside the temporary directory.
CAIRN=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")

T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
cd "$T"

passed=0
failed=0

# run ARGS...: run cairn; stdout in $T/out, stderr in $T/err, status in $rc.
# set -e is suspended so that expected failures do not end the script.
run() {
  set +e
  "$CAIRN" "$@" >"$T/out" 2>"$T/err"
  rc=$?
  set -e
}

pass() { passed=$((passed + 1)); }
fail() {
  failed=$((failed + 1))
  {
    echo "FAIL: $1"
    echo "  command: cairn ${*:2}"
    echo "  exit status: $rc"
    echo "  stdout: $(head -c 600 "$T/out")"
    echo "  stderr: $(head -c 600 "$T/err")"
  } >&2
}

# True if file $1 is empty or ends with a newline (no dangling last line).
ends_in_newline() { [[ -z $(tail -c1 "$1" | tr -d '\n') ]]; }

# expect_out DESC EXPECTED ARGS...: exit 0, nothing on stderr, stdout exactly
# EXPECTED (plus its final newline).
expect_out() {
  local desc=$1 want=$2
  shift 2
  run "$@"
  if [[ $rc -eq 0 && ! -s $T/err && "$(cat "$T/out")" == "$want" ]] &&
    ends_in_newline "$T/out"; then
    pass
  else
    echo "  expected stdout: $(printf '%q' "$want")" >&2
    fail "$desc" "$@"
  fi
}

# expect_fail DESC STATUS REGEX ARGS...: exit STATUS, nothing on stdout, and
# exactly one stderr line starting "cairn: " that matches the extended REGEX.
expect_fail() {
  local desc=$1 want_rc=$2 re=$3
  shift 3
  run "$@"
  if [[ $rc -eq $want_rc && ! -s $T/out && $(wc -l <"$T/err") -eq 1 ]] &&
    ends_in_newline "$T/err" && grep -Eq "^cairn: .*($re)" "$T/err"; then
    pass
  else
    echo "  expected: exit $want_rc, one stderr line matching /$re/" >&2
    fail "$desc" "$@"
  fi
}

# expect DESC CONDITION...: a plain assertion on the shell side.
expect() {
  local desc=$1
  shift
  if "$@"; then pass; else
    rc=-
    : >"$T/out"
    : >"$T/err"
    fail "$desc" "(shell) $*"
  fi
}

# ---- help, version, usage errors -------------------------------------------

run --version
expect "--version prints the version" \
  grep -Eq '^cairn [0-9]+\.[0-9]+\.[0-9]+$' "$T/out"
expect "--version exits 0" test "$rc" -eq 0
run --help
expect "--help prints usage" grep -q '^usage: cairn' "$T/out"
expect "--help documents exit statuses" grep -q 'exit status' "$T/out"
expect "--help exits 0" test "$rc" -eq 0

expect_fail "no arguments" 2 "missing command"
expect_fail "unknown command" 2 "unknown command" frobnicate db
expect_fail "get without a key" 2 "missing" get db
expect_fail "get without a db" 2 "missing.*usage: cairn get DB" get
expect_fail "too many arguments" 2 "too many" get db k extra
expect_fail "unknown option" 2 "unknown option" get db --bogus k
expect_fail "option missing its value" 2 "needs a value" get db k --cf
expect_fail "option given twice" 2 "twice" get --cf a --cf b db k
expect_fail "option not for this command" 2 "does not apply" put db k v --reverse
expect_fail "bad hex digit" 2 "hex" get db 0xzz
expect_fail "odd hex length" 2 "odd number" get db 0x123
expect_fail "bad --limit" 2 "limit" scan db --limit ten
expect_fail "negative --limit" 2 "limit" scan db --limit=-1
expect_fail "--prefix with --from" 2 "prefix" scan db --prefix a --from b
expect_fail "bad --page-size" 2 "page-size" put db k v --page-size 1000
expect_fail "page size not a power of two" 2 "page-size" \
  put db k v --page-size 12288
expect_fail "unknown cf subcommand" 2 "subcommand" cf db rename x
expect_fail "cf create without a name" 2 "name" cf db create
expect_fail "cf list with a name" 2 "no name" cf db list x
expect_fail "key over the size limit" 2 "limit" \
  get db "$(head -c 1025 /dev/zero | tr '\0' k)"
expect_fail "drop the default cf" 2 "default" cf db drop default
expect "usage errors create no file" test ! -e db

# ---- missing database file --------------------------------------------------

for cmd in "get missing.db k" "del missing.db k" "scan missing.db" \
  "stat missing.db" "check missing.db" "cf missing.db list" \
  "cf missing.db create x" "cf missing.db drop x"; do
  # shellcheck disable=SC2086 # split the command on purpose
  expect_fail "$cmd on a missing file" 3 "open .*missing\.db" $cmd
done
expect_fail "put --cf on a missing file" 3 "open .*missing\.db" \
  put --cf x missing.db k v
expect "read commands never create the file" test ! -e missing.db
expect_fail "directory as database" 3 "open" get . k

# ---- put / get / del ---------------------------------------------------------

expect_out "put creates the database" "" put t.db hello world
expect "the file exists after put" test -s t.db
expect_out "get after put" "world" get t.db hello
expect_out "put overwrites" "" put t.db hello there
expect_out "get sees the overwrite" "there" get t.db hello
expect_out "--hex forces hex output" "0x7468657265" get --hex t.db hello
expect_out "hex key names the same bytes as text" "there" \
  get t.db 0x68656c6c6f
expect_out "put binary key and value" "" put t.db 0x00ff01 0x000102ff
expect_out "get binary value prints hex" "0x000102ff" get t.db 0x00ff01
expect_out "uppercase hex digits" "0x000102ff" get t.db 0x00FF01
expect_out "put value with a newline" "" put t.db nl $'a\nb'
expect_out "value with a control char prints hex" "0x610a62" get t.db nl
expect_out "put utf-8" "" put t.db "clé" "héllo wörld ✓"
expect_out "utf-8 prints as text" "héllo wörld ✓" get t.db "clé"
expect_out "put invalid utf-8" "" put t.db bad8 0xc328
expect_out "invalid utf-8 prints hex" "0xc328" get t.db bad8
expect_out "put text that starts with 0x" "" put t.db zx 0x30783132
expect_out "text starting with 0x prints as hex" "0x30783132" get t.db zx
expect_out "put empty value" "" put t.db empty ""
expect_out "empty value prints an empty line" "" get t.db empty
expect "empty value is one newline" test "$(wc -c <"$T/out")" -eq 1
expect_out "empty value in hex is 0x" "0x" get --hex t.db empty
expect_out "put empty key" "" put t.db "" "for the empty key"
expect_out "get empty key" "for the empty key" get t.db ""
expect_out "empty hex key is the empty key" "for the empty key" get t.db 0x
expect_out "key starting with - after --" "" put t.db -- -dash v1
expect_out "get key starting with -" "v1" get t.db -- -dash
expect_out "--opt=value form" "there" get --cf=default t.db hello
big=$(head -c 60000 /dev/zero | tr '\0' 'x')
expect_out "put a 60000-byte value" "" put t.db big "$big"
expect_out "get a 60000-byte value" "$big" get t.db big
expect_out "max-size key" "" put t.db "$(head -c 1024 /dev/zero | tr '\0' k)" v
expect_out "get max-size key" "v" get t.db "$(head -c 1024 /dev/zero | tr '\0' k)"

expect_out "del an existing key" "" del t.db hello
expect_fail "get after del" 1 "get: key not found" get t.db hello
expect_fail "del a missing key" 1 "del: key not found" del t.db hello
expect_fail "get a never-written key" 1 "get: key not found" get t.db nope
expect_out "del a binary key" "" del t.db 0x00ff01
expect_fail "binary key is gone" 1 "key not found" get t.db 0x00ff01
expect_out "other keys survive" "v1" get t.db -- -dash

# ---- scan --------------------------------------------------------------------

for kv in a=1 ab=2 abc=3 b=4 ba=5 c=6; do
  expect_out "scan setup put $kv" "" put s.db "${kv%%=*}" "${kv#*=}"
done
TAB=$'\t'
expect_out "scan all" "a${TAB}1
ab${TAB}2
abc${TAB}3
b${TAB}4
ba${TAB}5
c${TAB}6" scan s.db
expect_out "scan --prefix" "ab${TAB}2
abc${TAB}3" scan s.db --prefix ab
expect_out "scan --from --to (to is exclusive)" "ab${TAB}2
abc${TAB}3" scan s.db --from ab --to b
expect_out "scan --from alone" "b${TAB}4
ba${TAB}5
c${TAB}6" scan s.db --from b
expect_out "scan --from between keys" "b${TAB}4
ba${TAB}5
c${TAB}6" scan s.db --from abd
expect_out "scan --to alone" "a${TAB}1" scan s.db --to ab
expect_out "scan --reverse" "c${TAB}6
ba${TAB}5
b${TAB}4
abc${TAB}3
ab${TAB}2
a${TAB}1" scan s.db --reverse
expect_out "scan --reverse --prefix" "abc${TAB}3
ab${TAB}2
a${TAB}1" scan s.db --reverse --prefix a
expect_out "scan --reverse --from --to" "ba${TAB}5
b${TAB}4
abc${TAB}3" scan s.db --reverse --from abc --to c
expect_out "scan --limit" "a${TAB}1
ab${TAB}2" scan s.db --limit 2
expect_out "scan --reverse --limit 1" "c${TAB}6" scan s.db --reverse --limit 1
expect_out "scan --limit 0" "" scan s.db --limit 0
expect_out "scan --limit over the count" "b${TAB}4
ba${TAB}5
c${TAB}6" scan s.db --from b --limit 100
expect_out "scan empty range" "" scan s.db --from b --to b
expect_out "scan prefix matching nothing" "" scan s.db --prefix zz
expect_out "scan --hex" "0x61${TAB}0x31
0x6162${TAB}0x32" scan s.db --hex --limit 2
expect_out "put a binary key for scan" "" put s.db 0x00 0x09
expect_out "binary keys sort first and print hex" "0x00${TAB}0x09
a${TAB}1" scan s.db --limit 2
expect_out "scan --prefix in hex" "0x00${TAB}0x09" scan s.db --prefix 0x00
expect_out "scan --to in hex" "0x00${TAB}0x09" scan s.db --to 0x01

# ---- column families ---------------------------------------------------------

expect_out "cf list on a new db" "default" cf s.db list
expect_out "cf create" "" cf s.db create blocks
expect_fail "cf create twice" 1 "already exists" cf s.db create blocks
expect_fail "cf create default" 1 "already exists" cf s.db create default
expect_out "cf create another" "" cf s.db create "a cf"
run cf s.db list
expect "cf list exits 0" test "$rc" -eq 0
expect "cf list shows default" grep -qx default "$T/out"
expect "cf list shows blocks" grep -qx blocks "$T/out"
expect "cf list shows 'a cf'" grep -qx "a cf" "$T/out"
expect "cf list shows exactly three" test "$(wc -l <"$T/out")" -eq 3
expect_out "put --cf" "" put s.db --cf blocks a in-blocks
expect_out "get --cf" "in-blocks" get s.db --cf blocks a
expect_out "default cf keeps its own value" "1" get s.db a
expect_out "--cf default is the default cf" "1" get s.db --cf default a
expect_fail "key only in the default cf" 1 "key not found" \
  get s.db --cf blocks ab
expect_out "scan --cf" "a${TAB}in-blocks" scan s.db --cf blocks
expect_out "put into a cf whose name has a space" "" put s.db --cf "a cf" x y
expect_out "del --cf" "" del s.db --cf "a cf" x
expect_fail "get --cf after del" 1 "key not found" get s.db --cf "a cf" x
expect_fail "get --cf unknown" 1 "column family 'nope' not found" \
  get s.db --cf nope a
expect_fail "put --cf unknown" 1 "column family 'nope' not found" \
  put s.db --cf nope a b
expect_fail "del --cf unknown" 1 "column family 'nope' not found" \
  del s.db --cf nope a
expect_fail "scan --cf unknown" 1 "column family 'nope' not found" \
  scan s.db --cf nope
expect_out "cf drop" "" cf s.db drop blocks
expect_fail "get from a dropped cf" 1 "not found" get s.db --cf blocks a
expect_fail "cf drop twice" 1 "not found" cf s.db drop blocks
expect_out "cf list after drop" "a cf
default" cf s.db list
expect_out "cf create after drop starts empty" "" cf s.db create blocks
expect_out "recreated cf is empty" "" scan s.db --cf blocks
expect_out "cf with a hex name" "" cf s.db create 0x0102
# Names come in byte order, binary ones in hex.
expect_out "cf list prints a binary name in hex" "0x0102
a cf
blocks
default" cf s.db list
expect_out "cf list --hex" "0x0102
0x61206366
0x626c6f636b73
0x64656661756c74" cf s.db list --hex
expect_out "put into a hex-named cf" "" put s.db --cf 0x0102 k v
expect_out "get from a hex-named cf" "v" get s.db --cf 0x0102 k

# ---- stat --------------------------------------------------------------------

run stat s.db
expect "stat exits 0" test "$rc" -eq 0
expect "stat writes no stderr" test ! -s "$T/err"
for field in page_size file_size page_count pages_in_use pages_free \
  last_txn_id durable_txn_id snapshots oldest_snapshot_id pages_pinned \
  column_families mapped; do
  expect "stat shows $field" grep -Eq "^$field: [0-9]+$" "$T/out"
done
expect "stat shows platform" grep -Eq '^platform: .+' "$T/out"
expect "stat counts 4 column families" grep -qx 'column_families: 4' "$T/out"
expect "stat lists the default cf" grep -qx 'cf: default' "$T/out"
expect "stat lists a binary cf name in hex" grep -qx 'cf: 0x0102' "$T/out"
# The default cf holds a ab abc b ba c and 0x00: 7 entries.
expect "stat counts default cf entries" \
  bash -c "grep -A1 -x 'cf: default' '$T/out' | grep -qx '  entries: 7'"
for field in depth branch_pages leaf_pages overflow_pages; do
  expect "stat shows cf $field" grep -Eq "^  $field: [0-9]+$" "$T/out"
done
expect_out "create with --page-size" "" put p.db k v --page-size 8192
run stat p.db
expect "stat shows the chosen page size" grep -qx 'page_size: 8192' "$T/out"
expect_fail "--page-size against an existing db" 2 "page size" \
  put p.db k v --page-size 16384
expect_out "--page-size matching the db is fine" "" \
  put p.db k v2 --page-size 8192

# ---- check -------------------------------------------------------------------

expect_out "check a good database" "ok" check s.db
expect_out "check the put/get database" "ok" check t.db

# ---- corrupt files -----------------------------------------------------------

head -c 65536 /dev/urandom >bad.db
cp bad.db bad.copy
for cmd in "get bad.db k" "put bad.db k v" "del bad.db k" "scan bad.db" \
  "stat bad.db" "check bad.db" "cf bad.db list" "cf bad.db create x"; do
  # shellcheck disable=SC2086
  expect_fail "$cmd on random bytes" 3 "bad\.db" $cmd
done
expect "a failed put leaves a foreign file untouched" cmp -s bad.db bad.copy
: >empty.db
expect_fail "get on an empty file" 3 "empty\.db" get empty.db k
echo "hello, I am not a database" >text.db
expect_fail "get on a text file" 3 "text\.db" get text.db k
expect_fail "check on a text file" 3 "text\.db" check text.db
cp s.db trunc.db
truncate -s 100 trunc.db
expect_fail "get on a truncated database" 3 "trunc\.db" get trunc.db a
# Keep the first two pages (where the meta pages live) and overwrite the
# rest: every tree page now fails its checksum. t.db holds a 60000-byte
# value, so it has plenty of pages past the first two.
page=$(grep -E '^page_size:' <("$CAIRN" stat t.db) | cut -d' ' -f2)
cp t.db smashed.db
size=$(wc -c <smashed.db)
expect "test database is over two pages" test "$size" -gt $((2 * page))
head -c $((size > 2 * page ? size - 2 * page : 0)) /dev/urandom |
  dd of=smashed.db bs="$page" seek=2 conv=notrunc status=none
run check smashed.db
expect "check on damaged pages exits 3" test "$rc" -eq 3
expect "check on damaged pages prints one stderr line" \
  test "$(wc -l <"$T/err")" -eq 1
expect "check on damaged pages names the problem" \
  grep -Eq '^cairn: .*CAIRN_(CORRUPT|NOTADB)' "$T/err"
run scan smashed.db
expect "scan on damaged pages exits 3" test "$rc" -eq 3
expect "scan on damaged pages: one stderr line" \
  test "$(wc -l <"$T/err")" -eq 1

# ---- locked file -------------------------------------------------------------

if [[ ${CAIRN_CLI_LOCK:-} == lockfile ]]; then
  # WASI build (CAIRN_CLI_LOCK set by cmake/wasi_targets.cmake): WASI has no
  # flock; another writer holds the lock file next to the database
  # (platform/wasm/wasi_platform.h), which must conflict the same way.
  cp s.db locked.db
  printf 'cairn-lock 1\nmode exclusive\nowner cli-test\n' >locked.db.lock
  expect_fail "put on a locked file" 3 "open .*locked\.db.*CAIRN_BUSY" \
    put locked.db k v
  expect_fail "get on a locked file" 3 "open .*locked\.db.*CAIRN_BUSY" \
    get locked.db a
  rm locked.db.lock
  expect_out "put after the lock is released" "" put locked.db k v
  expect_out "get after the lock is released" "v" get locked.db k
elif command -v flock >/dev/null; then
  cp s.db locked.db
  # Hold an exclusive flock from this shell on fd 9, as another writer
  # process would; cairn opens its own descriptor, which must conflict.
  exec 9<>locked.db
  flock -x 9
  expect_fail "put on a locked file" 3 "open .*locked\.db.*CAIRN_BUSY" \
    put locked.db k v
  expect_fail "get on a locked file" 3 "open .*locked\.db.*CAIRN_BUSY" \
    get locked.db a
  flock -u 9
  exec 9>&-
  expect_out "put after the lock is released" "" put locked.db k v
  expect_out "get after the lock is released" "v" get locked.db k
else
  echo "note: flock(1) not found; lock tests skipped" >&2
fi

echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
