// idb-store.js — the files of the "idb" platform (platform/wasm/idb_platform.c)
// as 4096-byte chunk records in IndexedDB, with a BOUNDED chunk cache.
//
// Two modes (chosen at open; README "## Browser" has the measurements):
//   'wait'    (default where the browser has JSPI: WebAssembly.Suspending)
//             Only a bounded LRU cache of clean chunks (cacheBytes) plus the
//             chunks written since the last flush stay in memory. A read that
//             misses returns a Promise: the engine's call is suspended
//             (idb_platform.js imports are wrapped in WebAssembly.Suspending,
//             web/src/jspi.js) while the chunks are fetched, with readahead
//             that grows on sequential misses. The engine's sync() is a flush
//             and waits for it, so a cairn commit (the log append + its one
//             sync) is ONE IndexedDB transaction and durable when it completes.
//             Chunks written but not yet flushed are never evicted; if they
//             pass spillBytes (a transaction bigger than the cache, or a large
//             checkpoint), a write flushes early: allowed by the platform
//             contract (unsynced writes may reach storage at any time), the
//             engine's own log/meta protocol keeps commits atomic then.
//   'preload' (where JSPI is missing) the design before: every chunk loaded
//             at open, nothing evicted, the Worker flushes after each commit.
//
// A flush writes everything changed since the previous one (chunks, sizes,
// names, removals) in ONE readwrite transaction (durability 'strict') and
// resolves only when it completed; a failed flush poisons the store (every
// later call is CAIRN_IO) until it is reopened.
//
// IndexedDB layout (database "cairn-<name>", version 2):
//   files   key: file name      value: { id, size }
//   chunks  key: [id, index]    value: Uint8Array (<= 4096; the last chunk of
//                                      a file is stored cut at its size)
// Ids make rename a metadata update and let a removed file that is still
// open keep its chunks until its last handle closes. Chunks whose id has no
// file record (a removal or crash left them) are deleted at open. Version 1
// (chunks keyed by name) is migrated in the upgrade transaction.

export const CHUNK = 4096;
const LOAD_PAGE = 4096; // chunk records per request when preloading
const RA_MIN = 4; // chunks fetched on a random miss
const RA_MAX = 256; // readahead cap on sequential misses (1 MiB)
const SPAN = 4294967296; // cache key = id * SPAN + index
const key = (id, idx) => id * SPAN + idx;

function cairnError(code, message) {
  const e = new Error(message);
  e.cairnCode = code;
  return e;
}

const req = (r) =>
  new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });

const txDone = (tx) =>
  new Promise((resolve, reject) => {
    tx.oncomplete = resolve;
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error || new DOMException('transaction aborted', 'AbortError'));
  });

function asChunk(v) {
  if (v instanceof Uint8Array && v.length === CHUNK) return v;
  const c = new Uint8Array(CHUNK);
  c.set(new Uint8Array(v.buffer || v, v.byteOffset || 0, Math.min(CHUNK, v.byteLength)));
  return c;
}

function upgrade(r, ev) {
  const db = r.result;
  const tx = r.transaction;
  if (ev.oldVersion < 1) {
    db.createObjectStore('files');
    db.createObjectStore('chunks');
    return;
  }
  // Version 1 -> 2: chunk keys [name, index] become [id, index].
  tx.objectStore('files').name = 'files_v1';
  tx.objectStore('chunks').name = 'chunks_v1';
  const files = db.createObjectStore('files');
  const chunks = db.createObjectStore('chunks');
  const ids = new Map();
  tx.objectStore('files_v1').openCursor().onsuccess = (e) => {
    const cur = e.target.result;
    if (cur) {
      ids.set(cur.key, ids.size + 1);
      files.put({ id: ids.size, size: cur.value.size }, cur.key);
      cur.continue();
      return;
    }
    tx.objectStore('chunks_v1').openCursor().onsuccess = (e2) => {
      const c2 = e2.target.result;
      if (c2) {
        const id = ids.get(c2.key[0]);
        if (id) chunks.put(c2.value, [id, c2.key[1]]);
        c2.continue();
        return;
      }
      db.deleteObjectStore('files_v1');
      db.deleteObjectStore('chunks_v1');
    };
  };
}

export class IdbStore {
  // opts: { mode: 'wait' | 'preload', cacheBytes, spillBytes, durability }
  constructor(idb, opts = {}) {
    this.idb = idb; // IDBDatabase (null: memory only, for tests)
    this.mode = opts.mode || IdbStore.defaultMode();
    this.cacheBytes = this.mode === 'preload' ? Infinity : Math.max(16 * CHUNK, opts.cacheBytes || 16 << 20);
    this.durability = opts.durability || 'strict'; // tests may relax it (c-worker.mjs)
    this.spillBytes = this.mode === 'preload' ? Infinity : Math.max(16 * CHUNK, opts.spillBytes || this.cacheBytes);
    this.files = new Map(); // id -> file
    this.byName = new Map(); // name -> file
    this.cache = new Map(); // key -> Uint8Array(CHUNK), clean, LRU order (oldest first)
    this.dirty = new Map(); // key -> Uint8Array(CHUNK), written since the last flush
    this.chunkDeletes = []; // [id, from index] ranges to delete at the next flush
    this.nameDeletes = new Set(); // file records to delete at the next flush
    this.nextId = 1;
    this.failed = null;
    this.failAt = 0; // tests: the failAt-th flush from now aborts its transaction
    this.flushing = Promise.resolve();
    this.stats = { reads: 0, misses: 0, fetches: 0, fetchedChunks: 0, flushes: 0, spills: 0, peakBytes: 0 };
  }

  static defaultMode() {
    return typeof WebAssembly !== 'undefined' && typeof WebAssembly.Suspending === 'function' ? 'wait' : 'preload';
  }

  static async open(dbName, opts = {}) {
    const idb = await new Promise((resolve, reject) => {
      const r = indexedDB.open(dbName, 2);
      r.onupgradeneeded = (ev) => upgrade(r, ev);
      r.onsuccess = () => resolve(r.result);
      r.onerror = () => reject(r.error);
      r.onblocked = () => reject(cairnError(-3, `IndexedDB database ${dbName} is blocked by another connection`));
    });
    const store = new IdbStore(idb, opts);
    await store._load();
    return store;
  }

  // Read the file table (and in preload mode every chunk); delete orphans.
  async _load() {
    const tx = this.idb.transaction(['files', 'chunks'], 'readwrite');
    const done = txDone(tx);
    const [fnames, fvals] = await Promise.all([
      req(tx.objectStore('files').getAllKeys()),
      req(tx.objectStore('files').getAll()),
    ]);
    fnames.forEach((name, i) => {
      const f = this._newFile(name, fvals[i].id);
      f.size = f.psize = fvals[i].size;
      f.pname = name;
      f.persisted = true;
    });
    // Orphans: skip from id to id with a key cursor.
    const chunks = tx.objectStore('chunks');
    await new Promise((resolve, reject) => {
      const c = chunks.openKeyCursor();
      c.onerror = () => reject(c.error);
      c.onsuccess = () => {
        const cur = c.result;
        if (!cur) return resolve();
        const id = cur.key[0];
        if (id >= this.nextId) this.nextId = id + 1;
        if (!this.files.has(id)) chunks.delete(IDBKeyRange.bound([id, 0], [id, Infinity]));
        cur.continue([id + 1, 0]);
      };
    });
    if (this.mode === 'preload') {
      for (let after = null; ; ) {
        const range = after === null ? null : IDBKeyRange.lowerBound(after, true);
        const [ks, vs] = await Promise.all([req(chunks.getAllKeys(range, LOAD_PAGE)), req(chunks.getAll(range, LOAD_PAGE))]);
        for (let i = 0; i < ks.length; i++) {
          const [id, idx] = ks[i];
          const f = this.files.get(id);
          if (f && idx * CHUNK < f.size) this.cache.set(key(id, idx), asChunk(vs[i]));
        }
        if (ks.length < LOAD_PAGE) break;
        after = ks[ks.length - 1];
      }
      this._account();
    }
    await done;
  }

  _newFile(name, id = this.nextId) {
    if (id >= this.nextId) this.nextId = id + 1;
    const f = { id, name, size: 0, psize: 0, pname: null, refs: 0, persisted: false, staleFrom: Infinity, ra: 0, lastMiss: -2 };
    this.files.set(id, f);
    if (name !== null) this.byName.set(name, f);
    return f;
  }

  _file(id) {
    const f = this.files.get(id);
    if (!f) throw cairnError(-5, `no file ${id}`);
    if (this.failed) throw cairnError(-5, `an earlier IndexedDB transaction failed (${this.failed}): reopen the database`);
    return f;
  }

  _account() {
    const bytes = (this.cache.size + this.dirty.size) * CHUNK;
    if (bytes > this.stats.peakBytes) this.stats.peakBytes = bytes;
  }

  // The chunk idx of f in memory (touching the LRU), or null if it must be
  // fetched; ZERO if it holds only zeros (never written / past the end).
  _resident(f, idx) {
    const k = key(f.id, idx);
    let c = this.dirty.get(k);
    if (c) return c;
    c = this.cache.get(k);
    if (c) {
      this.cache.delete(k);
      this.cache.set(k, c);
      return c;
    }
    if (!f.persisted || idx >= f.staleFrom || idx * CHUNK >= f.psize || this.mode === 'preload') return ZERO;
    return null;
  }

  _evict() {
    if (this.cache.size * CHUNK <= this.cacheBytes) return;
    let over = this.cache.size - Math.floor(this.cacheBytes / CHUNK);
    for (const k of this.cache.keys()) {
      if (over-- <= 0) break;
      this.cache.delete(k);
    }
  }

  // Fetch the chunks idxs (sorted) of f plus readahead, in one read-only
  // transaction; they land in the cache.
  async _fetch(f, idxs) {
    const first = idxs[0];
    const seq = first === f.lastMiss + 1 || (first > f.lastMiss && first <= f.lastMiss + f.ra);
    f.ra = seq ? Math.min(RA_MAX, Math.max(RA_MIN, f.ra * 2)) : RA_MIN;
    const lastNeeded = idxs[idxs.length - 1];
    const limit = Math.min(Math.ceil(f.psize / CHUNK), f.staleFrom) - 1;
    const last = Math.min(limit, Math.max(lastNeeded, first + f.ra - 1));
    f.lastMiss = last;
    this.stats.misses += idxs.length;
    this.stats.fetches++;
    const tx = this.idb.transaction('chunks', 'readonly');
    const range = IDBKeyRange.bound([f.id, first], [f.id, last]);
    const store = tx.objectStore('chunks');
    const [ks, vs] = await Promise.all([req(store.getAllKeys(range)), req(store.getAll(range))]);
    if (!this.files.has(f.id)) return; // freed meanwhile (crash() in tests)
    for (let i = 0; i < ks.length; i++) {
      const idx = ks[i][1];
      const k = key(f.id, idx);
      if (idx >= f.staleFrom || this.dirty.has(k) || this.cache.has(k)) continue;
      this.cache.set(k, asChunk(vs[i]));
      this.stats.fetchedChunks++;
    }
    // Chunks with no record are holes: zeros.
    for (const idx of idxs) {
      const k = key(f.id, idx);
      if (!this.dirty.has(k) && !this.cache.has(k)) this.cache.set(k, new Uint8Array(CHUNK));
    }
    this._account();
  }

  _missing(f, from, to) {
    let miss = null;
    for (let idx = Math.floor(from / CHUNK); idx * CHUNK < to; idx++) {
      if (this._resident(f, idx) === null) (miss || (miss = [])).push(idx);
    }
    return miss;
  }

  // ---- calls from idb_platform.js: a number, or (mode 'wait') a Promise ----

  open(name, create, excl) {
    if (this.failed) throw cairnError(-5, `an earlier IndexedDB transaction failed (${this.failed}): reopen the database`);
    let f = this.byName.get(name);
    if (f) {
      if (create && excl) throw cairnError(-2, 'file exists');
    } else {
      if (!create) throw cairnError(-1, 'no such file');
      f = this._newFile(name);
    }
    f.refs++;
    return f.id;
  }

  unref(id) {
    const f = this.files.get(id);
    if (!f || f.refs <= 0) return;
    if (--f.refs > 0) return;
    if (f.name === null) this._free(f);
    else if (this.mode === 'wait') this._dropClean(f); // a reopen reads IndexedDB
  }

  _dropClean(f) {
    for (const k of [...this.cache.keys()]) if (Math.floor(k / SPAN) === f.id) this.cache.delete(k);
  }

  _free(f) {
    this._dropClean(f);
    for (const k of [...this.dirty.keys()]) if (Math.floor(k / SPAN) === f.id) this.dirty.delete(k);
    if (f.persisted) this.chunkDeletes.push([f.id, 0]);
    this.files.delete(f.id);
  }

  // Bytes read (short at the end of the file) into M.HEAPU8[ptr, ptr+n).
  read(id, M, ptr, n, off) {
    const f = this._file(id);
    const end = Math.min(f.size, off + n);
    if (end <= off) return 0;
    const miss = this._missing(f, off, end);
    if (!miss) return this._copyOut(f, M, ptr, off, end);
    return this._fetch(f, miss).then(() => this._copyOut(this._file(id), M, ptr, off, end));
  }

  _copyOut(f, M, ptr, off, end) {
    const heap = M.HEAPU8;
    for (let pos = off; pos < end; ) {
      const idx = Math.floor(pos / CHUNK),
        at = pos % CHUNK;
      const len = Math.min(CHUNK - at, end - pos);
      let c = this._resident(f, idx);
      if (c === null) c = ZERO; // evicted between fetch and copy: cannot happen (no eviction here)
      heap.set(c.subarray(at, at + len), ptr + (pos - off));
      pos += len;
    }
    this.stats.reads++;
    this._evict();
    return end - off;
  }

  write(id, M, ptr, n, off) {
    const f = this._file(id);
    const end = off + n;
    // Only chunks written in part need their old bytes.
    const first = Math.floor(off / CHUNK),
      last = Math.floor((end - 1) / CHUNK);
    let miss = null;
    for (const idx of first === last ? [first] : [first, last]) {
      const whole = off <= idx * CHUNK && end >= (idx + 1) * CHUNK;
      if (!whole && idx * CHUNK < f.size && this._resident(f, idx) === null) (miss || (miss = [])).push(idx);
    }
    if (!miss) return this._writeNow(f, M, ptr, off, end);
    return this._fetch(f, miss).then(() => this._writeNow(this._file(id), M, ptr, off, end));
  }

  _dirtyChunk(f, idx) {
    const k = key(f.id, idx);
    let c = this.dirty.get(k);
    if (c) return c;
    c = this.cache.get(k);
    if (c) this.cache.delete(k);
    else if (f.persisted && idx < f.staleFrom && idx * CHUNK < f.psize && this.mode !== 'preload')
      throw cairnError(-5, `chunk ${idx} of ${f.name} is not in memory`);
    else c = new Uint8Array(CHUNK);
    this.dirty.set(k, c);
    return c;
  }

  _writeNow(f, M, ptr, off, end) {
    const heap = M.HEAPU8;
    for (let pos = off; pos < end; ) {
      const idx = Math.floor(pos / CHUNK),
        at = pos % CHUNK;
      const len = Math.min(CHUNK - at, end - pos);
      const k = key(f.id, idx);
      let c;
      if (at === 0 && len === CHUNK && !this.dirty.has(k)) {
        c = this.cache.get(k) || new Uint8Array(CHUNK);
        this.cache.delete(k);
        this.dirty.set(k, c);
      } else c = this._dirtyChunk(f, idx);
      c.set(heap.subarray(ptr + (pos - off), ptr + (pos - off) + len), at);
      pos += len;
    }
    if (end > f.size) f.size = end;
    this._account();
    if (this.dirty.size * CHUNK > this.spillBytes && this.idb) {
      this.stats.spills++;
      return this.flush().then(() => 0);
    }
    return 0;
  }

  flushCall(id) {
    if (id >= 0) this._file(id);
    if (this.mode !== 'wait') return 0; // the Worker flushes after the commit
    return this.flush().then(() => 0);
  }

  size(id) {
    return this._file(id).size;
  }

  truncate(id, size) {
    const f = this._file(id);
    const tail = Math.floor(size / CHUNK);
    if (size < f.size && size % CHUNK && this._resident(f, tail) === null)
      return this._fetch(f, [tail]).then(() => this._truncateNow(this._file(id), size));
    return this._truncateNow(f, size);
  }

  _truncateNow(f, size) {
    if (size < f.size) {
      const keep = Math.ceil(size / CHUNK);
      for (const m of [this.cache, this.dirty])
        for (const k of [...m.keys()]) if (Math.floor(k / SPAN) === f.id && k % SPAN >= keep) m.delete(k);
      if (keep < f.staleFrom) f.staleFrom = keep;
      if (size % CHUNK) this._dirtyChunk(f, keep - 1).fill(0, size % CHUNK);
    }
    f.size = size;
    return 0;
  }

  _unname(f) {
    this.byName.delete(f.name);
    if (f.pname !== null) this.nameDeletes.add(f.pname);
    f.pname = null;
    f.name = null;
    if (f.refs === 0) this._free(f);
  }

  remove(name) {
    const f = this.byName.get(name);
    if (!f) throw cairnError(-1, 'no such file');
    this._unname(f);
    return 0;
  }

  rename(from, to) {
    const f = this.byName.get(from);
    if (!f) throw cairnError(-1, 'no such file');
    if (this.byName.has(to)) throw cairnError(-2, `target ${to} exists`);
    this.byName.delete(from);
    f.name = to;
    this.byName.set(to, f);
    return 0;
  }

  reset() {
    for (const f of [...this.byName.values()]) this._unname(f);
  }

  names() {
    return [...this.byName.keys()].sort();
  }

  memory() {
    return {
      mode: this.mode,
      cacheLimit: this.cacheBytes,
      cachedBytes: this.cache.size * CHUNK,
      dirtyBytes: this.dirty.size * CHUNK,
      ...this.stats,
    };
  }

  // Tests: power loss. Everything not in a completed IndexedDB transaction
  // is gone; the file table is read back from IndexedDB. Open handles
  // (slots) must not be used again. Waits for a flush in flight first.
  async crash() {
    await this.flushing;
    this.files = new Map();
    this.byName = new Map();
    this.cache = new Map();
    this.dirty = new Map();
    this.chunkDeletes = [];
    this.nameDeletes = new Set();
    this.failed = null;
    this.failAt = 0;
    if (this.idb) await this._load();
    return 0;
  }

  // ---- persistence ----

  // Write everything changed since the last flush in one IndexedDB
  // transaction; resolves when it completed. Flushes run one at a time.
  flush() {
    const run = this.flushing.then(() => this._flushNow());
    this.flushing = run.catch(() => {});
    return run;
  }

  async _flushNow() {
    if (this.failed) throw cairnError(-5, `an earlier IndexedDB transaction failed (${this.failed}): reopen the database`);
    if (!this.idb) return;
    const changed = [];
    for (const f of this.files.values()) {
      if (f.name === null) continue;
      if (f.pname !== f.name || f.size !== f.psize || f.staleFrom !== Infinity) changed.push(f);
    }
    const puts = [];
    for (const [k, c] of this.dirty) {
      const f = this.files.get(Math.floor(k / SPAN));
      if (f && f.name !== null) puts.push([k, c, f]);
    }
    if (!changed.length && !puts.length && !this.nameDeletes.size && !this.chunkDeletes.length) return;
    this.stats.flushes++;
    const tx = this.idb.transaction(['files', 'chunks'], 'readwrite', { durability: this.durability });
    const done = txDone(tx);
    const files = tx.objectStore('files');
    const chunks = tx.objectStore('chunks');
    // Order matters within the transaction: removals, then cuts, then puts.
    for (const name of this.nameDeletes) files.delete(name);
    for (const f of changed) if (f.pname !== null && f.pname !== f.name) files.delete(f.pname);
    for (const [id, from] of this.chunkDeletes) chunks.delete(IDBKeyRange.bound([id, from], [id, Infinity]));
    for (const f of changed) {
      const cut = Math.min(f.staleFrom, Math.ceil(f.size / CHUNK));
      if (f.persisted && cut * CHUNK < f.psize) chunks.delete(IDBKeyRange.bound([f.id, cut], [f.id, Infinity]));
      files.put({ id: f.id, size: f.size }, f.name);
    }
    for (const [k, c, f] of puts) {
      const idx = k % SPAN;
      const len = Math.min(CHUNK, f.size - idx * CHUNK);
      // put() clones the value now: later writes to the chunk do not leak in.
      if (len > 0) chunks.put(len === CHUNK ? c : c.subarray(0, len), [f.id, idx]);
    }
    // What this transaction carries is no longer pending, whatever happens next.
    this.nameDeletes.clear();
    this.chunkDeletes = [];
    for (const f of changed) {
      f.pname = f.name;
      f.staleFrom = Infinity;
    }
    for (const [k, c, f] of puts) {
      this.dirty.delete(k);
      this.cache.set(k, c);
      f.persisted = true;
    }
    for (const f of changed) {
      f.persisted = true;
      f.psize = f.size;
    }
    if (this.failAt > 0 && --this.failAt === 0) tx.abort(); // tests: power fails here
    try {
      await done;
    } catch (e) {
      this.failed = `${e && e.name ? e.name : 'Error'}: ${e && e.message ? e.message : e}`;
      throw cairnError(e && e.name === 'QuotaExceededError' ? -6 : -5, `IndexedDB transaction failed: ${this.failed}`);
    } finally {
      this._evict();
    }
  }

  close() {
    if (this.idb) this.idb.close();
    this.idb = null;
  }
}

const ZERO = new Uint8Array(CHUNK);
