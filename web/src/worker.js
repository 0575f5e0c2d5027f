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
// for their turn. Reads never wait for the write turn.
//
// IndexedDB in 'wait' mode (idb-store.js; browsers with JSPI): engine calls
// may suspend while the store reads IndexedDB or commits, so they are made
// through WebAssembly.promising exports (jspi.js) and return Promises. Every
// section that calls into the engine therefore runs under `exclusive` (one
// at a time: the module has one stack), for every backend alike.
//
// `ops` is exported for the benchmark (web/bench), which calls it directly.
import { OpfsRegistry } from './opfs-pool.js';
import { IdbStore } from './idb-store.js';
import { hasJspi, jspiModuleOptions, promisingExports } from './jspi.js';

const CAIRN = {
  OK: 0, NOTFOUND: -1, EXISTS: -2, BUSY: -3, INVALID: -8, TOOBIG: -10,
};
const enc = new TextEncoder();
const dec = new TextDecoder();

let M = null; // the engine module
let X = null; // its engine calls: M itself, or (idb 'wait' mode) promising exports over M
let jspiModule = false; // M was instantiated through jspi.js
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

// Engine sections run one at a time (never wait for a write turn inside).
let engineTail = Promise.resolve();
let engineBusy = 0; // sections queued or running
function exclusive(fn) {
  engineBusy++;
  const run = engineTail.then(fn);
  engineTail = run.then(
    () => void engineBusy--,
    () => void engineBusy--,
  );
  return run;
}
// Engine calls that can never suspend (no JSPI exports) may run at once
// when no section is queued: the hot read path (get) stays synchronous.
const syncNow = () => X === M && engineBusy === 0;

// Exports that may reach the store (suspend in 'wait' mode).
const ENGINE_CALLS = [
  '_em_open', '_em_close', '_em_sync', '_em_checkpoint', '_em_begin', '_em_commit', '_em_abort',
  '_em_cf_open', '_em_cf_drop', '_em_cf_list', '_em_get', '_em_put', '_em_del', '_em_apply',
  '_em_cursor_open', '_em_cursor_bounds', '_em_cursor_prefix', '_em_cursor_move', '_em_cursor_fill',
  '_em_cursor_close', '_em_stat_json', '_em_check', '_em_file_open', '_em_file_size', '_em_file_read',
  '_em_file_write', '_em_file_sync', '_em_file_close', '_em_file_remove', '_em_file_rename',
];

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
async function withBytes(list, fn) {
  let total = 0;
  for (const b of list) if (b != null) total += (b.length + 7) & ~7;
  if (total > 65536) {
    const ptrs = list.map((b) => (b == null ? 0 : alloc(b)));
    try {
      return await fn(...ptrs);
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
  return await fn(...ptrs);
}

// Reads outside a transaction share one snapshot, dropped before every
// write of this Worker (the only writer), so it is always the newest.
let readTxn = 0;
async function dropReadTxn() {
  const t = readTxn;
  readTxn = 0;
  if (t) await X._em_abort(t);
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

// Durable only once its IndexedDB transaction completed. In 'wait' mode the
// commit's sync already was that transaction (nothing is left but lazy
// commits); in 'preload' mode this is the commit's transaction.
async function afterCommit() {
  if (idb) await idb.flush();
  if (registry) await registry.ensureFree(2);
}

function runWrite(fn) {
  return takeWriteTurn().then(async (release) => {
    try {
      await exclusive(async () => {
        needOpen();
        await dropReadTxn();
        check(await X._em_begin(db, 0));
        const t = M._em_out();
        try {
          await fn(t);
        } catch (e) {
          await X._em_abort(t);
          throw e;
        }
        check(await X._em_commit(t, 0));
      });
      await afterCommit();
    } finally {
      release();
    }
  });
}

// fn(txn) for a read in the transaction txnId, or in the shared snapshot.
function withRead(txnId, fn) {
  return exclusive(async () => {
    needOpen();
    if (txnId) {
      const t = txns.get(txnId);
      if (!t) throw new CairnError(CAIRN.INVALID, 'CAIRN_INVALID: the transaction is finished');
      return fn(t.ptr);
    }
    if (!readTxn) {
      check(await X._em_begin(db, 1));
      readTxn = M._em_out();
    }
    return fn(readTxn);
  });
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

async function iterFill(it, max) {
  const buf = M._malloc(FILL_BYTES);
  try {
    const rc = await X._em_cursor_fill(it.cursor, it.first ? 1 : 0, it.reverse ? 1 : 0, it.resume ? 1 : 0, buf, FILL_BYTES, max);
    it.first = false;
    const count = M._em_out();
    const done = rc === CAIRN.NOTFOUND;
    if (rc === CAIRN.TOOBIG && count === 0) {
      // One entry larger than the buffer: it is current; copy it directly.
      check(await X._em_cursor_move(it.cursor, 4));
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

async function iterClose(id) {
  const it = iters.get(id);
  if (!it) return;
  iters.delete(id);
  await X._em_cursor_close(it.cursor);
  if (it.ownTxn) await X._em_abort(it.txn);
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
  async open({
    name, backend = 'opfs', engineUrl, durability = 'sync', pageSize = 0, cachePages = 0, checkpointMiB = 0,
    idbMode, idbCacheMiB = 16,
  }) {
    if (db) throw new CairnError(CAIRN.INVALID, 'CAIRN_INVALID: already open');
    if (typeof name !== 'string' || !name || name.includes('/') || name.length > 200)
      throw new CairnError(CAIRN.INVALID, 'CAIRN_INVALID: the database name must be 1..200 characters without "/"');
    if (!['opfs', 'indexeddb', 'memory'].includes(backend))
      throw new CairnError(CAIRN.INVALID, `CAIRN_INVALID: unknown backend "${backend}" (opfs, indexeddb or memory)`);
    if (idbMode !== undefined && !['wait', 'preload'].includes(idbMode))
      throw new CairnError(CAIRN.INVALID, `CAIRN_INVALID: unknown idbMode "${idbMode}" (wait or preload)`);
    if (idbMode === 'wait' && !hasJspi)
      throw new CairnError(-15, "CAIRN_NOTSUPP: idbMode 'wait' needs JSPI (WebAssembly.Suspending), missing here");
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
        idb = await IdbStore.open(`cairn-${name}`, { mode: idbMode, cacheBytes: idbCacheMiB * 1048576 });
        platform = 'idb';
        path = 'db';
      } else {
        platform = 'memory';
        path = name;
      }
      // The IndexedDB store in 'wait' mode needs a module instantiated through
      // jspi.js (its idb imports are Suspending: every call that may reach
      // them must then be a promising one); other backends use a plain one.
      const wantJspi = !!(idb && idb.mode === 'wait');
      if (!M || jspiModule !== wantJspi) {
        let instFail;
        const failed = new Promise((_, reject) => (instFail = reject));
        const url = new URL(engineUrl, import.meta.url); // as import() resolves it
        const wasmUrl = url.href.replace(/\.mjs(?=$|[?#])/, '.wasm');
        const opts = wantJspi ? jspiModuleOptions(wasmUrl, instFail) : {};
        M = await Promise.race([failed, factory({ ...opts, cairnOpfs: registry, cairnIdb: idb })]);
        jspiModule = wantJspi;
        scratch = 0;
      }
      M.cairnOpfs = registry;
      M.cairnIdb = idb;
      X = wantJspi ? Object.assign(Object.create(M), promisingExports(M, ENGINE_CALLS)) : M;
      const dur = durability === 'lazy' ? 2 : 1;
      await exclusive(async () => {
        const rc = await withBytes([enc.encode(path + '\0'), enc.encode(platform + '\0')], (p, pl) =>
          X._em_open(p, pl, 1 /* CREATE */, pageSize, dur, cachePages, checkpointMiB),
        );
        check(rc);
        db = M._em_out();
      });
      state = { name, backend, platform, path, durability: dur, checkpointMiB };
      await afterCommit();
      return { backend, name, ...(idb ? { idbMode: idb.mode } : {}) };
    } catch (e) {
      await closeBackends();
      throw e;
    }
  },

  async close() {
    if (!db) return;
    const rc = await exclusive(async () => {
      await dropReadTxn();
      for (const id of [...iters.keys()]) await iterClose(id);
      for (const [, t] of txns) await X._em_abort(t.ptr);
      txns.clear();
      const r = await X._em_close(db);
      db = 0;
      return r;
    });
    await afterCommit().catch(() => {});
    await closeBackends();
    check(rc);
  },

  get({ cf = 0, key, txn }) {
    if (syncNow()) return getSync(cf, key, txn);
    return withRead(txn, (t) =>
      withBytes([key], async (k) => {
        const rc = await X._em_get(t, cf, k, key.length);
        if (rc === CAIRN.NOTFOUND) return undefined;
        check(rc);
        return copyOut(M._em_val_ptr(), M._em_val_len());
      }),
    );
  },

  async put({ cf = 0, key, value }) {
    await runWrite((t) =>
      withBytes([key, value], async (k, v) => check(await X._em_put(t, cf, k, key.length, v, value.length, 0))),
    );
  },

  async del({ cf = 0, key }) {
    let found = true;
    await runWrite((t) =>
      withBytes([key], async (k) => {
        const rc = await X._em_del(t, cf, k, key.length);
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
    if (!create)
      return withRead(0, (t) =>
        withBytes([enc.encode(name + '\0')], async (p) => (check(await X._em_cf_open(t, p, 0)), M._em_out())),
      );
    let id = 0;
    await runWrite((t) =>
      withBytes([enc.encode(name + '\0')], async (p) => (check(await X._em_cf_open(t, p, 1)), (id = M._em_out()))),
    );
    return id;
  },

  async dropCf({ name }) {
    await runWrite((t) =>
      withBytes([enc.encode(name + '\0')], async (p) => {
        check(await X._em_cf_open(t, p, 0));
        check(await X._em_cf_drop(t, M._em_out()));
      }),
    );
  },

  listCfs({ txn }) {
    return withRead(txn, async (t) => {
      check(await X._em_cf_list(t));
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
      const ptr = await exclusive(async () => {
        needOpen();
        if (write) await dropReadTxn();
        check(await X._em_begin(db, write ? 0 : 1));
        return M._em_out();
      });
      const id = nextId++;
      txns.set(id, { ptr, write, release });
      return id;
    } catch (e) {
      if (release) release();
      throw e;
    }
  },

  txPut({ txn, cf = 0, key, value }) {
    return exclusive(() => {
      const t = txnOf(txn, true);
      return withBytes([key, value], async (k, v) => check(await X._em_put(t.ptr, cf, k, key.length, v, value.length, 0)));
    });
  },

  txDel({ txn, cf = 0, key }) {
    return exclusive(() => {
      const t = txnOf(txn, true);
      return withBytes([key], async (k) => {
        const rc = await X._em_del(t.ptr, cf, k, key.length);
        if (rc === CAIRN.NOTFOUND) return false;
        check(rc);
        return true;
      });
    });
  },

  txBatch({ txn, ops: list }) {
    return exclusive(() => applyEncoded(txnOf(txn, true).ptr, list));
  },

  txCf({ txn, name, create = false }) {
    return exclusive(() => {
      const t = txnOf(txn, create);
      return withBytes(
        [enc.encode(name + '\0')],
        async (p) => (check(await X._em_cf_open(t.ptr, p, create ? 1 : 0)), M._em_out()),
      );
    });
  },

  async commit({ txn }) {
    const t = txnOf(txn, false);
    txns.delete(txn);
    try {
      await exclusive(async () => {
        for (const [id, it] of iters) if (it.txn === t.ptr) await iterClose(id);
        check(await X._em_commit(t.ptr, 0));
      });
      if (t.write) await afterCommit();
    } finally {
      if (t.release) t.release();
    }
  },

  async abort({ txn }) {
    const t = txns.get(txn);
    if (!t) return;
    txns.delete(txn);
    try {
      await exclusive(async () => {
        for (const [id, it] of iters) if (it.txn === t.ptr) await iterClose(id);
        await X._em_abort(t.ptr);
      });
    } finally {
      if (t.release) t.release();
    }
  },

  iterOpen({ cf = 0, txn, gte, gt, lt, lte, prefix, reverse = false }) {
    return exclusive(async () => {
      needOpen();
      let t,
        ownTxn = false;
      if (txn) t = txnOf(txn, false).ptr;
      else {
        check(await X._em_begin(db, 1));
        t = M._em_out();
        ownTxn = true;
      }
      let cursor;
      try {
        check(await X._em_cursor_open(t, cf));
        cursor = M._em_out();
      } catch (e) {
        if (ownTxn) await X._em_abort(t);
        throw e;
      }
      const id = nextId++;
      iters.set(id, { cursor, txn: t, ownTxn, first: true, resume: false, reverse });
      try {
        if (prefix) await withBytes([prefix], async (p) => check(await X._em_cursor_prefix(cursor, p, prefix.length)));
        else {
          // [from, to): gt k = gte k+"\0"; lte k = lt k+"\0".
          const from = gte || (gt ? concat0(gt) : null);
          const to = lt || (lte ? concat0(lte) : null);
          if (from || to)
            await withBytes([from, to], async (f, tt) =>
              check(
                await X._em_cursor_bounds(cursor, f, from ? from.length : 0, from ? 1 : 0, tt, to ? to.length : 0, to ? 1 : 0),
              ),
            );
        }
      } catch (e) {
        await iterClose(id);
        throw e;
      }
      return id;
    });
  },

  iterNext({ iter, max = 256 }) {
    return exclusive(async () => {
      const it = iters.get(iter);
      if (!it) return { entries: [], done: true };
      const r = await iterFill(it, max);
      if (r.done) await iterClose(iter);
      return r;
    });
  },

  iterClose({ iter }) {
    return exclusive(() => iterClose(iter));
  },

  stats() {
    return exclusive(async () => {
      needOpen();
      check(await X._em_stat_json(db));
      const p = M._em_out();
      const s = M.UTF8ToString(p);
      M._free(p);
      const memory = { wasmHeapBytes: M.HEAPU8.length };
      if (idb) memory.idb = idb.memory();
      return { backend: state.backend, name: state.name, ...JSON.parse(s), memory };
    });
  },

  check() {
    return exclusive(async () => {
      needOpen();
      check(await X._em_check(db));
      return true;
    });
  },

  async export() {
    needOpen();
    if (txns.size) throw new CairnError(CAIRN.INVALID, 'CAIRN_INVALID: finish open transactions before export');
    await exclusive(async () => {
      await dropReadTxn();
      check(await X._em_sync(db));
      check(await X._em_checkpoint(db)); // the file alone holds every commit (log restarted)
    });
    await afterCommit();
    return exclusive(() => readFile(state.platform, state.path));
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
      const removeIfThere = async (s) => {
        const rc = await withPath(s, (pl, p) => X._em_file_remove(pl, p));
        if (rc !== CAIRN.NOTFOUND) check(rc);
      };
      const bad = await exclusive(async () => {
        await removeIfThere(tmp); // leftovers of an interrupted import
        await removeIfThere(`${tmp}-wal`);
        await writeFile(platform, tmp, bytes);
        // Validate: it must open and pass the integrity check.
        let rc = await withPath(tmp, (pl, p) => X._em_open(p, pl, 0, 0, 1, 0, 0));
        if (rc === 0) {
          const tdb = M._em_out();
          rc = await X._em_check(tdb);
          const crc = await X._em_close(tdb);
          if (rc === 0) rc = crc;
        }
        if (rc < 0) {
          const msg = M.UTF8ToString(M._em_errmsg());
          await withPath(tmp, (pl, p) => X._em_file_remove(pl, p));
          await withPath(`${tmp}-wal`, (pl, p) => X._em_file_remove(pl, p));
          return { rc, msg };
        }
        return null;
      });
      if (bad) {
        await afterCommit();
        const name = M.UTF8ToString(M._em_strerror(bad.rc));
        throw new CairnError(bad.rc, `${name} (import: the bytes are not a valid cairn database: ${bad.msg})`);
      }
      await exclusive(async () => {
        // The closes above checkpointed both databases: each file holds all
        // of it, and the write-ahead logs ("-wal") can go.
        await removeIfThere(`${tmp}-wal`);
        await dropReadTxn();
        check(await X._em_close(db));
        db = 0;
        check(await withPath(path, (pl, p) => X._em_file_remove(pl, p)));
        await removeIfThere(`${path}-wal`);
        check(
          await withBytes([enc.encode(platform + '\0'), enc.encode(tmp + '\0'), enc.encode(path + '\0')], (pl, a, b) =>
            X._em_file_rename(pl, a, b),
          ),
        );
        check(await withPath(path, (pl, p) => X._em_open(p, pl, 0, 0, state.durability, 0, state.checkpointMiB)));
        db = M._em_out();
      });
      await afterCommit();
    } finally {
      release();
    }
  },
};

// get() without a Promise (opfs, memory, idb 'preload'): as withRead + withBytes.
function getSync(cf, key, txnId) {
  needOpen();
  let t;
  if (txnId) {
    const tx = txns.get(txnId);
    if (!tx) throw new CairnError(CAIRN.INVALID, 'CAIRN_INVALID: the transaction is finished');
    t = tx.ptr;
  } else {
    if (!readTxn) {
      check(M._em_begin(db, 1));
      readTxn = M._em_out();
    }
    t = readTxn;
  }
  let k;
  if (key.length <= 65536) {
    if (!scratch) {
      scratch = M._malloc(65536);
      if (!scratch) throw new CairnError(-7, 'CAIRN_NOMEM: out of memory in the engine');
    }
    M.HEAPU8.set(key, scratch);
    k = scratch;
  } else k = alloc(key);
  try {
    const rc = M._em_get(t, cf, k, key.length);
    if (rc === CAIRN.NOTFOUND) return undefined;
    check(rc);
    return copyOut(M._em_val_ptr(), M._em_val_len());
  } finally {
    if (k !== scratch) M._free(k);
  }
}

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

async function applyEncoded(t, list) {
  if (!list.length) return;
  const buf = encodeOps(list);
  await withBytes([buf], async (p) => {
    const rc = await X._em_apply(t, p, buf.length);
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

// Whole files through the platform (export/import), in 1 MiB pieces.
function readFile(platform, path) {
  return withBytes([enc.encode(platform + '\0'), enc.encode(path + '\0')], async (pl, p) => {
    check(await X._em_file_open(pl, p, 1 /* RDONLY */));
    const f = M._em_out();
    try {
      const size = await X._em_file_size(f);
      if (size < 0) fail(size);
      const out = new Uint8Array(size);
      const CH = 1 << 20;
      const buf = M._malloc(CH);
      try {
        for (let off = 0; off < size; off += CH) {
          const n = Math.min(CH, size - off);
          check(await X._em_file_read(f, buf, n, off));
          out.set(M.HEAPU8.subarray(buf, buf + n), off);
        }
      } finally {
        M._free(buf);
      }
      return out;
    } finally {
      await X._em_file_close(f);
    }
  });
}

function writeFile(platform, path, bytes) {
  return withBytes([enc.encode(platform + '\0'), enc.encode(path + '\0')], async (pl, p) => {
    check(await X._em_file_open(pl, p, 2 | 4 /* CREATE | EXCL */));
    const f = M._em_out();
    try {
      const CH = 1 << 20;
      const buf = M._malloc(CH);
      try {
        for (let off = 0; off < bytes.length; off += CH) {
          const n = Math.min(CH, bytes.length - off);
          M.HEAPU8.set(bytes.subarray(off, off + n), buf);
          check(await X._em_file_write(f, buf, n, off));
        }
      } finally {
        M._free(buf);
      }
      check(await X._em_file_sync(f));
    } finally {
      await X._em_file_close(f);
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
