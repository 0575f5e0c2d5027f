// worker.js — the dedicated Worker that runs one cairn database for the page
// (index.js). One engine module instance per Worker; every request is
// { id, op, args }, every reply { id, result } or { id, error }.
//
// Ownership: a database is owned by one Worker per origin, enforced with a
// Web Lock named "cairn:<backend>:<name>" held from open to close. The
// browser drops a Web Lock when the holding page or Worker dies (reload,
// crash, tab closed), so a lock left behind recovers by itself; OPFS sync
// access handles of a dead Worker are released shortly after, and the pool
// waits for them (opfs-pool.js).
//
// Writes are serialised here: an explicit write transaction holds the write
// turn until it commits or aborts; single puts, deletes and batches wait
// for their turn. Reads never wait.
//
// `ops` is exported for the benchmark (web/bench), which calls it directly.
import { OpfsRegistry } from './opfs-pool.js';
import { IdbStore } from './idb-store.js';

const CAIRN = {
  OK: 0, NOTFOUND: -1, EXISTS: -2, BUSY: -3, INVALID: -8, TOOBIG: -10,
};
const enc = new TextEncoder();
const dec = new TextDecoder();

let M = null; // the engine module
let db = 0; // cairn_db *
let state = null; // { name, backend, platform, path, durability }
let registry = null;
let pool = null;
let idb = null;
let releaseLock = null;
const txns = new Map(); // id -> { ptr, write }
const iters = new Map(); // id -> { cursor, txn, ownTxn, first, resume, reverse, left }
let nextId = 1;
let writeTail = Promise.resolve();

class CairnError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

function fail(rc) {
  const name = M.UTF8ToString(M._em_strerror(rc));
  const detail = M.UTF8ToString(M._em_errmsg());
  throw new CairnError(rc, detail ? `${name} (${detail})` : name);
}
const check = (rc) => {
  if (rc < 0) fail(rc);
  return rc;
};

// Copy bytes into a fresh malloc'd block (read HEAPU8 after malloc: it may grow memory).
function alloc(bytes) {
  const p = M._malloc(bytes.length || 1);
  if (!p) throw new CairnError(-7, 'CAIRN_NOMEM: out of memory in the engine');
  M.HEAPU8.set(bytes, p);
  return p;
}
const cstr = (s) => {
  const b = enc.encode(s);
  const z = new Uint8Array(b.length + 1);
  z.set(b);
  return alloc(z);
};
const copyOut = (ptr, len) => M.HEAPU8.slice(ptr, ptr + len);

// Arguments go through one reusable scratch block (calls never nest);
// anything larger gets its own malloc.
let scratch = 0;
function withBytes(list, fn) {
  let total = 0;
  for (const b of list) if (b != null) total += (b.length + 7) & ~7;
  if (total > 65536) {
    const ptrs = list.map((b) => (b == null ? 0 : alloc(b)));
    try {
      return fn(...ptrs);
    } finally {
      for (const p of ptrs) if (p) M._free(p);
    }
  }
  if (!scratch) {
    scratch = M._malloc(65536);
    if (!scratch) throw new CairnError(-7, 'CAIRN_NOMEM: out of memory in the engine');
  }
  const heap = M.HEAPU8;
  const ptrs = [];
  let off = scratch;
  for (const b of list) {
    if (b == null) {
      ptrs.push(0);
      continue;
    }
    heap.set(b, off);
    ptrs.push(off);
    off += (b.length + 7) & ~7;
  }
  return fn(...ptrs);
}

// Reads outside a transaction share one snapshot, dropped before every
// write of this Worker (the only writer), so it is always the newest.
let readTxn = 0;
function dropReadTxn() {
  if (readTxn) M._em_abort(readTxn);
  readTxn = 0;
}

function needOpen() {
  if (!db) throw new CairnError(CAIRN.INVALID, 'CAIRN_INVALID: the database is closed');
}

// ---- write turns ----------------------------------------------------------

function takeWriteTurn() {
  let release;
  const mine = new Promise((r) => (release = r));
  const ready = writeTail;
  writeTail = writeTail.then(() => mine);
  return ready.then(() => release);
}

async function afterCommit() {
  if (idb) await idb.flush(M); // durable only once its IndexedDB transaction completed
  if (registry) await registry.ensureFree(2);
}

function runWrite(fn) {
  return takeWriteTurn().then(async (release) => {
    try {
      needOpen();
      dropReadTxn();
      check(M._em_begin(db, 0));
      const t = M._em_out();
      try {
        fn(t);
      } catch (e) {
        M._em_abort(t);
        throw e;
      }
      check(M._em_commit(t, 0));
      await afterCommit();
    } finally {
      release();
    }
  });
}

function withRead(txnId, fn) {
  needOpen();
  if (txnId) {
    const t = txns.get(txnId);
    if (!t) throw new CairnError(CAIRN.INVALID, 'CAIRN_INVALID: the transaction is finished');
    return fn(t.ptr);
  }
  if (!readTxn) {
    check(M._em_begin(db, 1));
    readTxn = M._em_out();
  }
  return fn(readTxn);
}

// ---- batches ------------------------------------------------------------------

function encodeOps(ops) {
  let n = 0;
  for (const o of ops) n += 13 + o.key.length + (o.value ? o.value.length : 0);
  const buf = new Uint8Array(n);
  const dv = new DataView(buf.buffer);
  let off = 0;
  for (const o of ops) {
    const v = o.type === 'put' ? o.value : null;
    buf[off] = o.type === 'put' ? 1 : 2;
    dv.setUint32(off + 1, o.cf >>> 0, true);
    dv.setUint32(off + 5, o.key.length, true);
    dv.setUint32(off + 9, v ? v.length : 0, true);
    buf.set(o.key, off + 13);
    if (v) buf.set(v, off + 13 + o.key.length);
    off += 13 + o.key.length + (v ? v.length : 0);
  }
  return buf;
}

// ---- iteration -------------------------------------------------------------

const FILL_BYTES = 1 << 20;

function iterFill(it, max) {
  const buf = M._malloc(FILL_BYTES);
  try {
    const rc = M._em_cursor_fill(it.cursor, it.first ? 1 : 0, it.reverse ? 1 : 0, it.resume ? 1 : 0, buf, FILL_BYTES, max);
    it.first = false;
    const count = M._em_out();
    const done = rc === CAIRN.NOTFOUND;
    if (rc === CAIRN.TOOBIG && count === 0) {
      // One entry larger than the buffer: it is current; copy it directly.
      check(M._em_cursor_move(it.cursor, 4));
      it.resume = false;
      const k = copyOut(M._em_key_ptr(), M._em_key_len());
      return { entries: [[k, copyOut(M._em_val_ptr(), M._em_val_len())]], done: false };
    }
    if (rc < 0 && rc !== CAIRN.NOTFOUND) fail(rc);
    it.resume = rc === CAIRN.OK;
    const out = [];
    const heap = M.HEAPU8;
    const dv = new DataView(heap.buffer, buf, FILL_BYTES);
    let off = 0;
    for (let i = 0; i < count; i++) {
      const kl = dv.getUint32(off, true), vl = dv.getUint32(off + 4, true);
      const k = heap.slice(buf + off + 8, buf + off + 8 + kl);
      const v = heap.slice(buf + off + 8 + kl, buf + off + 8 + kl + vl);
      out.push([k, v]);
      off += 8 + kl + vl;
    }
    return { entries: out, done };
  } finally {
    M._free(buf);
  }
}

function iterClose(id) {
  const it = iters.get(id);
  if (!it) return;
  iters.delete(id);
  M._em_cursor_close(it.cursor);
  if (it.ownTxn) M._em_abort(it.txn);
}

// ---- backends ----------------------------------------------------------------

async function acquireLock(key) {
  if (!self.navigator.locks) return () => {};
  return new Promise((resolve, reject) => {
    self.navigator.locks
      .request(key, { ifAvailable: true }, (lock) => {
        if (!lock) {
          reject(
            new CairnError(CAIRN.BUSY, `CAIRN_BUSY: database is in use by another tab or worker (Web Lock "${key}" is held)`),
          );
          return undefined;
        }
        return new Promise((release) => resolve(release));
      })
      .catch(reject);
  });
}

// ---- requests -----------------------------------------------------------------

const ops = {
  async open({ name, backend = 'opfs', engineUrl, durability = 'sync', pageSize = 0, cachePages = 0 }) {
    if (db) throw new CairnError(CAIRN.INVALID, 'CAIRN_INVALID: already open');
    if (typeof name !== 'string' || !name || name.includes('/') || name.length > 200)
      throw new CairnError(CAIRN.INVALID, 'CAIRN_INVALID: the database name must be 1..200 characters without "/"');
    if (!['opfs', 'indexeddb', 'memory'].includes(backend))
      throw new CairnError(CAIRN.INVALID, `CAIRN_INVALID: unknown backend "${backend}" (opfs, indexeddb or memory)`);
    if (backend !== 'memory') releaseLock = await acquireLock(`cairn:${backend}:${name}`);
    try {
      const factory = (await import(engineUrl)).default;
      let platform, path;
      if (backend === 'opfs') {
        if (typeof FileSystemFileHandle === 'undefined' || !FileSystemFileHandle.prototype.createSyncAccessHandle)
          throw new CairnError(-15, 'CAIRN_NOTSUPP: OPFS sync access handles are not available here');
        registry = new OpfsRegistry();
        pool = await registry.openPool(`cairn/${name}`, { prefix: `${name}/`, minSlots: 4 });
        platform = 'opfs';
        path = `${name}/db`;
      } else if (backend === 'indexeddb') {
        idb = await IdbStore.open(`cairn-${name}`);
        platform = 'idb';
        path = 'db';
      } else {
        platform = 'memory';
        path = name;
      }
      M = M || (await factory({ cairnOpfs: registry, cairnIdb: idb }));
      M.cairnOpfs = registry;
      M.cairnIdb = idb;
      const dur = durability === 'lazy' ? 2 : 1;
      const rc = withBytes([enc.encode(path + '\0'), enc.encode(platform + '\0')], (p, pl) =>
        M._em_open(p, pl, 1 /* CREATE */, pageSize, dur, cachePages),
      );
      check(rc);
      db = M._em_out();
      state = { name, backend, platform, path, durability: dur };
      await afterCommit();
      return { backend, name };
    } catch (e) {
      await closeBackends();
      throw e;
    }
  },

  async close() {
    if (!db) return;
    dropReadTxn();
    for (const id of [...iters.keys()]) iterClose(id);
    for (const [, t] of txns) M._em_abort(t.ptr);
    txns.clear();
    const rc = M._em_close(db);
    db = 0;
    await afterCommit().catch(() => {});
    await closeBackends();
    check(rc);
  },

  get({ cf = 0, key, txn }) {
    return withRead(txn, (t) =>
      withBytes([key], (k) => {
        const rc = M._em_get(t, cf, k, key.length);
        if (rc === CAIRN.NOTFOUND) return undefined;
        check(rc);
        return copyOut(M._em_val_ptr(), M._em_val_len());
      }),
    );
  },

  async put({ cf = 0, key, value }) {
    await runWrite((t) => withBytes([key, value], (k, v) => check(M._em_put(t, cf, k, key.length, v, value.length, 0))));
  },

  async del({ cf = 0, key }) {
    let found = true;
    await runWrite((t) =>
      withBytes([key], (k) => {
        const rc = M._em_del(t, cf, k, key.length);
        if (rc === CAIRN.NOTFOUND) found = false;
        else check(rc);
      }),
    );
    return found;
  },

  async batch({ ops: list }) {
    await runWrite((t) => applyEncoded(t, list));
  },

  async cf({ name, create = false }) {
    needOpen();
    if (!create) return withRead(0, (t) => withBytes([enc.encode(name + '\0')], (p) => (check(M._em_cf_open(t, p, 0)), M._em_out())));
    let id = 0;
    await runWrite((t) => withBytes([enc.encode(name + '\0')], (p) => (check(M._em_cf_open(t, p, 1)), (id = M._em_out()))));
    return id;
  },

  async dropCf({ name }) {
    await runWrite((t) =>
      withBytes([enc.encode(name + '\0')], (p) => {
        check(M._em_cf_open(t, p, 0));
        check(M._em_cf_drop(t, M._em_out()));
      }),
    );
  },

  listCfs({ txn }) {
    return withRead(txn, (t) => {
      check(M._em_cf_list(t));
      const p = M._em_out();
      const n = M._em_key_len();
      const names = n ? dec.decode(copyOut(p, n)).split('\0').filter((s) => s.length) : [];
      M._free(p);
      return names;
    });
  },

  async begin({ mode }) {
    needOpen();
    const write = mode === 'readwrite';
    let release = null;
    if (write) release = await takeWriteTurn();
    try {
      needOpen();
      if (write) dropReadTxn();
      check(M._em_begin(db, write ? 0 : 1));
    } catch (e) {
      if (release) release();
      throw e;
    }
    const id = nextId++;
    txns.set(id, { ptr: M._em_out(), write, release });
    return id;
  },

  txPut({ txn, cf = 0, key, value }) {
    const t = txnOf(txn, true);
    withBytes([key, value], (k, v) => check(M._em_put(t.ptr, cf, k, key.length, v, value.length, 0)));
  },

  txDel({ txn, cf = 0, key }) {
    const t = txnOf(txn, true);
    return withBytes([key], (k) => {
      const rc = M._em_del(t.ptr, cf, k, key.length);
      if (rc === CAIRN.NOTFOUND) return false;
      check(rc);
      return true;
    });
  },

  txBatch({ txn, ops: list }) {
    applyEncoded(txnOf(txn, true).ptr, list);
  },

  txCf({ txn, name, create = false }) {
    const t = txnOf(txn, create);
    return withBytes([enc.encode(name + '\0')], (p) => (check(M._em_cf_open(t.ptr, p, create ? 1 : 0)), M._em_out()));
  },

  async commit({ txn }) {
    const t = txnOf(txn, false);
    txns.delete(txn);
    for (const [id, it] of iters) if (it.txn === t.ptr) iterClose(id);
    try {
      check(M._em_commit(t.ptr, 0));
      if (t.write) await afterCommit();
    } finally {
      if (t.release) t.release();
    }
  },

  abort({ txn }) {
    const t = txns.get(txn);
    if (!t) return;
    txns.delete(txn);
    for (const [id, it] of iters) if (it.txn === t.ptr) iterClose(id);
    M._em_abort(t.ptr);
    if (t.release) t.release();
  },

  iterOpen({ cf = 0, txn, gte, gt, lt, lte, prefix, reverse = false }) {
    needOpen();
    let t, ownTxn = false;
    if (txn) t = txnOf(txn, false).ptr;
    else {
      check(M._em_begin(db, 1));
      t = M._em_out();
      ownTxn = true;
    }
    try {
      check(M._em_cursor_open(t, cf));
    } catch (e) {
      if (ownTxn) M._em_abort(t);
      throw e;
    }
    const cursor = M._em_out();
    const id = nextId++;
    iters.set(id, { cursor, txn: t, ownTxn, first: true, resume: false, reverse });
    try {
      if (prefix) withBytes([prefix], (p) => check(M._em_cursor_prefix(cursor, p, prefix.length)));
      else {
        // [from, to): gt k = gte k+"\0"; lte k = lt k+"\0".
        const from = gte || (gt ? concat0(gt) : null);
        const to = lt || (lte ? concat0(lte) : null);
        if (from || to)
          withBytes([from, to], (f, tt) =>
            check(M._em_cursor_bounds(cursor, f, from ? from.length : 0, from ? 1 : 0, tt, to ? to.length : 0, to ? 1 : 0)),
          );
      }
    } catch (e) {
      iterClose(id);
      throw e;
    }
    return id;
  },

  iterNext({ iter, max = 256 }) {
    const it = iters.get(iter);
    if (!it) return { entries: [], done: true };
    const r = iterFill(it, max);
    if (r.done) iterClose(iter);
    return r;
  },

  iterClose({ iter }) {
    iterClose(iter);
  },

  stats() {
    needOpen();
    check(M._em_stat_json(db));
    const p = M._em_out();
    const s = M.UTF8ToString(p);
    M._free(p);
    return { backend: state.backend, name: state.name, ...JSON.parse(s) };
  },

  check() {
    needOpen();
    check(M._em_check(db));
    return true;
  },

  async export() {
    needOpen();
    if (txns.size) throw new CairnError(CAIRN.INVALID, 'CAIRN_INVALID: finish open transactions before export');
    dropReadTxn();
    check(M._em_sync(db));
    check(M._em_checkpoint(db)); // the file alone holds every commit (log restarted)
    await afterCommit();
    return readFile(state.platform, state.path);
  },

  async import({ bytes }) {
    needOpen();
    if (txns.size || iters.size)
      throw new CairnError(CAIRN.INVALID, 'CAIRN_INVALID: finish open transactions and iterators before import');
    const release = await takeWriteTurn();
    try {
      const { platform, path } = state;
      const tmp = `${path}.import`;
      const withPath = (s, fn) => withBytes([enc.encode(platform + '\0'), enc.encode(s + '\0')], fn);
      const removeIfThere = (s) => {
        const rc = withPath(s, (pl, p) => M._em_file_remove(pl, p));
        if (rc !== CAIRN.NOTFOUND) check(rc);
      };
      removeIfThere(tmp); // leftovers of an interrupted import
      removeIfThere(`${tmp}-wal`);
      writeFile(platform, tmp, bytes);
      // Validate: it must open and pass the integrity check.
      let rc = withPath(tmp, (pl, p) => M._em_open(p, pl, 0, 0, 1, 0));
      if (rc === 0) {
        const tdb = M._em_out();
        rc = M._em_check(tdb);
        const crc = M._em_close(tdb);
        if (rc === 0) rc = crc;
      }
      if (rc < 0) {
        const msg = M.UTF8ToString(M._em_errmsg());
        withPath(tmp, (pl, p) => M._em_file_remove(pl, p));
        withPath(`${tmp}-wal`, (pl, p) => M._em_file_remove(pl, p));
        await afterCommit();
        throw new CairnError(rc, `${M.UTF8ToString(M._em_strerror(rc))} (import: the bytes are not a valid cairn database: ${msg})`);
      }
      // The closes above checkpointed both databases: each file holds all of
      // it, and the write-ahead logs ("-wal") can go.
      removeIfThere(`${tmp}-wal`);
      dropReadTxn();
      check(M._em_close(db));
      db = 0;
      check(withPath(path, (pl, p) => M._em_file_remove(pl, p)));
      removeIfThere(`${path}-wal`);
      check(withBytes([enc.encode(platform + '\0'), enc.encode(tmp + '\0'), enc.encode(path + '\0')], (pl, a, b) => M._em_file_rename(pl, a, b)));
      check(withPath(path, (pl, p) => M._em_open(p, pl, 0, 0, state.durability, 0)));
      db = M._em_out();
      await afterCommit();
    } finally {
      release();
    }
  },
};

function txnOf(id, write) {
  const t = txns.get(id);
  if (!t) throw new CairnError(CAIRN.INVALID, 'CAIRN_INVALID: the transaction is finished');
  if (write && !t.write) throw new CairnError(-9, 'CAIRN_READONLY: write in a read-only transaction');
  return t;
}

function concat0(k) {
  const b = new Uint8Array(k.length + 1);
  b.set(k);
  return b;
}

function applyEncoded(t, list) {
  if (!list.length) return;
  const buf = encodeOps(list);
  withBytes([buf], (p) => {
    const rc = M._em_apply(t, p, buf.length);
    if (rc < 0) {
      const i = M._em_out();
      try {
        fail(rc);
      } catch (e) {
        e.message += ` (batch operation ${i})`;
        throw e;
      }
    }
  });
}

function readFile(platform, path) {
  return withBytes([enc.encode(platform + '\0'), enc.encode(path + '\0')], (pl, p) => {
    check(M._em_file_open(pl, p, 1 /* RDONLY */));
    const f = M._em_out();
    try {
      const size = M._em_file_size(f);
      if (size < 0) fail(size);
      const out = new Uint8Array(size);
      const CH = 1 << 20;
      const buf = M._malloc(CH);
      try {
        for (let off = 0; off < size; off += CH) {
          const n = Math.min(CH, size - off);
          check(M._em_file_read(f, buf, n, off));
          out.set(M.HEAPU8.subarray(buf, buf + n), off);
        }
      } finally {
        M._free(buf);
      }
      return out;
    } finally {
      M._em_file_close(f);
    }
  });
}

function writeFile(platform, path, bytes) {
  withBytes([enc.encode(platform + '\0'), enc.encode(path + '\0')], (pl, p) => {
    check(M._em_file_open(pl, p, 2 | 4 /* CREATE | EXCL */));
    const f = M._em_out();
    try {
      const CH = 1 << 20;
      const buf = M._malloc(CH);
      try {
        for (let off = 0; off < bytes.length; off += CH) {
          const n = Math.min(CH, bytes.length - off);
          M.HEAPU8.set(bytes.subarray(off, off + n), buf);
          check(M._em_file_write(f, buf, n, off));
        }
      } finally {
        M._free(buf);
      }
      check(M._em_file_sync(f));
    } finally {
      M._em_file_close(f);
    }
  });
}

async function closeBackends() {
  if (registry && pool) registry.closePool(pool);
  pool = null;
  if (idb) idb.close();
  idb = null;
  if (releaseLock) releaseLock();
  releaseLock = null;
}

self.onmessage = async (ev) => {
  const { id, op, args } = ev.data;
  try {
    const fn = ops[op];
    if (!fn) throw new CairnError(CAIRN.INVALID, `CAIRN_INVALID: unknown request ${op}`);
    const result = await fn(args || {});
    const transfer = [];
    if (result instanceof Uint8Array) transfer.push(result.buffer);
    else if (result && Array.isArray(result.entries)) for (const [k, v] of result.entries) transfer.push(k.buffer, v.buffer);
    self.postMessage({ id, result }, transfer);
  } catch (e) {
    const code = typeof e.code === 'number' ? e.code : typeof e.cairnCode === 'number' ? e.cairnCode : -5;
    self.postMessage({ id, error: { code, message: e.message || String(e), name: e.name } });
  }
};
export { ops };
