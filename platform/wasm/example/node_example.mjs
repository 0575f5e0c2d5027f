// node_example.mjs — embed cairn in Node through WASI: load the reactor build
// (cairn_reactor.wasm: no main, the C API exported), then put, get and a
// range scan on a database in a preopened directory.
//
//   cmake --preset wasi && cmake --build --preset wasi
//   node --no-turbo-fast-api-calls platform/wasm/example/node_example.mjs \
//        build/wasi/cairn_reactor.wasm [DATA_DIR]
//
// DATA_DIR (default: a new temporary directory) is preopened as /data; the
// database is /data/example.db. The script checks what it reads back and
// exits non-zero on any mismatch (ctest runs it as wasi_node_example).
//
// Calling convention (wasm32): pointers and size_t are numbers, uint64_t is
// a BigInt, a cairn_slice argument is a pointer to an 8-byte {data, size}
// struct, out-parameters are pointers we allocate with the exported malloc.
// Re-read memory.buffer after every call: it changes when memory grows.
import { WASI } from 'node:wasi';
import { readFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import assert from 'node:assert/strict';

const wasmPath = resolve(process.argv[2] || 'build/wasi/cairn_reactor.wasm');
const dataDir = resolve(process.argv[3] || mkdtempSync(join(tmpdir(), 'cairn-example-')));

const wasi = new WASI({ version: 'preview1', args: ['cairn'], env: {}, preopens: { '/data': dataDir } });
const { instance } = await WebAssembly.instantiate(readFileSync(wasmPath), wasi.getImportObject());
wasi.initialize(instance); // runs the reactor's _initialize (libc constructors)
const c = instance.exports;

const enc = new TextEncoder();
const dec = new TextDecoder();
const u8 = () => new Uint8Array(c.memory.buffer);
const dv = () => new DataView(c.memory.buffer);

function cstring(ptr) {
  const m = u8();
  let end = ptr;
  while (m[end]) end++;
  return dec.decode(m.subarray(ptr, end));
}
function check(rc, what) {
  if (rc !== 0) throw new Error(`${what}: ${cstring(c.cairn_strerror(rc))}: ${cstring(c.cairn_errmsg())}`);
}
// Copy bytes (a string, zero-terminated) into module memory.
function alloc(bytes) {
  const p = c.malloc(Math.max(bytes.length, 1));
  u8().set(bytes, p);
  return p;
}
const cstr = (s) => alloc(enc.encode(s + '\0'));
// A cairn_slice {data, size} in module memory, over a copy of s.
function slice(s) {
  const b = enc.encode(s);
  const data = alloc(b);
  const p = c.malloc(8);
  dv().setUint32(p, data, true);
  dv().setUint32(p + 4, b.length, true);
  return p;
}
function freeSlice(p) {
  c.free(dv().getUint32(p, true));
  c.free(p);
}
const readSlice = (p) => dec.decode(u8().slice(dv().getUint32(p, true), dv().getUint32(p, true) + dv().getUint32(p + 4, true)));
const ptrOut = () => { const p = c.malloc(4); dv().setUint32(p, 0, true); return p; };
const load32 = (p) => dv().getUint32(p, true);

const CAIRN_TXN_RDONLY = 1;
const CAIRN_NOTFOUND = -1;

function withTxn(db, flags, fn) {
  const out = ptrOut();
  check(c.cairn_begin(db, flags, out), 'begin');
  const txn = load32(out);
  c.free(out);
  try {
    const r = fn(txn);
    if (flags & CAIRN_TXN_RDONLY) c.cairn_abort(txn);
    else check(c.cairn_commit(txn), 'commit');
    return r;
  } catch (e) {
    c.cairn_abort(txn);
    throw e;
  }
}

function get(txn, key) {
  const k = slice(key), v = c.malloc(8);
  try {
    const rc = c.cairn_get(txn, 0, k, v);
    if (rc === CAIRN_NOTFOUND) return undefined;
    check(rc, `get ${key}`);
    return readSlice(v);
  } finally {
    freeSlice(k);
    c.free(v);
  }
}

function open(path) {
  const p = cstr(path), out = ptrOut();
  check(c.cairn_open(p, 0, out), `open ${path}`); // NULL options: defaults, create
  const db = load32(out);
  c.free(p);
  c.free(out);
  return db;
}

const path = '/data/example.db';
let db = open(path);

// put: 100 blocks in one durable commit
const height = (i) => `block:${String(i).padStart(4, '0')}`;
withTxn(db, 0, (txn) => {
  for (let i = 0; i < 100; i++) {
    const k = slice(height(i)), v = slice(`hash-${(i * 2654435761) % 4294967296}`);
    check(c.cairn_put(txn, 0, k, v, 0), 'put');
    freeSlice(k);
    freeSlice(v);
  }
});

// get
const got = withTxn(db, CAIRN_TXN_RDONLY, (txn) => [get(txn, height(42)), get(txn, 'block:9999')]);
console.log(`get ${height(42)} -> ${got[0]}; get block:9999 -> ${got[1]}`);
assert.equal(got[0], `hash-${(42 * 2654435761) % 4294967296}`);
assert.equal(got[1], undefined);

// range scan: [block:0010, block:0015)
const scanned = withTxn(db, CAIRN_TXN_RDONLY, (txn) => {
  const out = ptrOut();
  check(c.cairn_cursor_open(txn, 0, out), 'cursor_open');
  const cur = load32(out);
  c.free(out);
  const from = slice(height(10)), to = slice(height(15)), k = c.malloc(8), v = c.malloc(8);
  const rows = [];
  try {
    check(c.cairn_cursor_bounds(cur, from, to), 'cursor_bounds');
    for (let rc = c.cairn_cursor_first(cur); rc === 0; rc = c.cairn_cursor_next(cur)) {
      check(c.cairn_cursor_get(cur, k, v), 'cursor_get');
      rows.push([readSlice(k), readSlice(v)]);
    }
  } finally {
    c.cairn_cursor_close(cur);
    freeSlice(from);
    freeSlice(to);
    c.free(k);
    c.free(v);
  }
  return rows;
});
for (const [k, v] of scanned) console.log(`scan ${k} = ${v}`);
assert.deepEqual(scanned.map(([k]) => k), [10, 11, 12, 13, 14].map(height));

// close, reopen: the data is in the file
check(c.cairn_close(db), 'close');
db = open(path);
assert.equal(withTxn(db, CAIRN_TXN_RDONLY, (txn) => get(txn, height(99))), `hash-${(99 * 2654435761) % 4294967296}`);
check(c.cairn_close(db), 'close');
console.log(`ok: ${path} (host ${dataDir}/example.db)`);
