// idb-store.js — the files of the "idb" platform (platform/wasm/idb_platform.c):
// kept in memory as 4096-byte chunks, loaded from IndexedDB at open, and
// persisted by flush(): everything changed since the previous flush goes
// into ONE readwrite IndexedDB transaction (durability 'strict'), and flush
// resolves only when that transaction completed. The Worker flushes after
// every cairn commit, so a commit is atomic and reported durable only then.
//
// IndexedDB layout (database "cairn-<name>", version 1):
//   files   key: file name            value: { size }
//   chunks  key: [file name, index]   value: Uint8Array(4096) (the last one may be shorter)

export const CHUNK = 4096;
const LOAD_PAGE = 4096; // chunk records per request when loading

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

export class IdbStore {
  constructor(idb) {
    this.idb = idb; // IDBDatabase (null: memory only, for tests)
    this.files = []; // id -> { name, size, chunks: Map, dirty: Set, refs, pname, psize }
    this.byName = new Map();
    this.toDelete = new Set(); // persisted names to delete at the next flush
    this.failed = null;
    this.flushing = Promise.resolve();
  }

  static async open(dbName) {
    const idb = await new Promise((resolve, reject) => {
      const r = indexedDB.open(dbName, 1);
      r.onupgradeneeded = () => {
        r.result.createObjectStore('files');
        r.result.createObjectStore('chunks');
      };
      r.onsuccess = () => resolve(r.result);
      r.onerror = () => reject(r.error);
      r.onblocked = () => reject(cairnError(-3, `IndexedDB database ${dbName} is blocked by another connection`));
    });
    const store = new IdbStore(idb);
    const tx = idb.transaction(['files', 'chunks'], 'readonly');
    const [fnames, fvals] = await Promise.all([
      req(tx.objectStore('files').getAllKeys()),
      req(tx.objectStore('files').getAll()),
    ]);
    const byPersisted = new Map();
    fnames.forEach((name, i) => {
      const f = store._newFile(name);
      f.size = f.psize = fvals[i].size;
      f.pname = name;
      byPersisted.set(name, f);
    });
    // Chunks in pages of LOAD_PAGE records, so a large database never needs
    // one giant request (the whole load is one read-only transaction).
    const chunks = tx.objectStore('chunks');
    for (let after = null; ; ) {
      const range = after === null ? null : IDBKeyRange.lowerBound(after, true);
      const [ks, vs] = await Promise.all([req(chunks.getAllKeys(range, LOAD_PAGE)), req(chunks.getAll(range, LOAD_PAGE))]);
      for (let i = 0; i < ks.length; i++) {
        const [name, idx] = ks[i];
        const f = byPersisted.get(name);
        const v = vs[i];
        if (!f || idx * CHUNK >= f.size) continue;
        let c = v;
        if (!(v instanceof Uint8Array) || v.length !== CHUNK) {
          c = new Uint8Array(CHUNK);
          c.set(new Uint8Array(v.buffer || v, v.byteOffset || 0, Math.min(CHUNK, v.byteLength)));
        }
        f.chunks.set(idx, c);
      }
      if (ks.length < LOAD_PAGE) break;
      after = ks[ks.length - 1];
    }
    return store;
  }

  _newFile(name) {
    const f = { id: this.files.length, name, size: 0, chunks: new Map(), dirty: new Set(), refs: 0, pname: null, psize: 0 };
    this.files.push(f);
    if (name !== null) this.byName.set(name, f);
    return f;
  }

  _file(id) {
    const f = this.files[id];
    if (!f) throw cairnError(-5, `no file ${id}`);
    if (this.failed) throw cairnError(-5, `an earlier IndexedDB transaction failed (${this.failed}): reopen the database`);
    return f;
  }

  // ---- synchronous calls from idb_platform.js ----

  open(name, create, excl) {
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
    const f = this.files[id];
    if (f && f.refs > 0) f.refs--;
    if (f && f.refs === 0 && f.name === null) f.chunks = new Map();
  }

  read(id, view, off) {
    const f = this._file(id);
    const end = Math.min(f.size, off + view.length);
    let pos = off;
    while (pos < end) {
      const idx = Math.floor(pos / CHUNK), at = pos % CHUNK;
      const n = Math.min(CHUNK - at, end - pos);
      const c = f.chunks.get(idx);
      if (c) view.set(c.subarray(at, at + n), pos - off);
      else view.fill(0, pos - off, pos - off + n);
      pos += n;
    }
    return Math.max(0, end - off);
  }

  write(id, view, off) {
    const f = this._file(id);
    const end = off + view.length;
    // Zero what a hole would expose of the old last chunk.
    if (off > f.size) this._zeroTail(f, f.size, off);
    let pos = off;
    while (pos < end) {
      const idx = Math.floor(pos / CHUNK), at = pos % CHUNK;
      const n = Math.min(CHUNK - at, end - pos);
      let c = f.chunks.get(idx);
      if (!c) f.chunks.set(idx, (c = new Uint8Array(CHUNK)));
      c.set(view.subarray(pos - off, pos - off + n), at);
      f.dirty.add(idx);
      pos += n;
    }
    if (end > f.size) f.size = end;
    return 0;
  }

  _zeroTail(f, from, to) {
    const idx = Math.floor(from / CHUNK);
    const c = f.chunks.get(idx);
    if (c && from % CHUNK) {
      c.fill(0, from % CHUNK, Math.min(CHUNK, from % CHUNK + (to - from)));
      f.dirty.add(idx);
    }
  }

  flush(id) {
    this._file(id); // durability comes with the Worker's flush after the commit
    return 0;
  }

  size(id) {
    return this._file(id).size;
  }

  truncate(id, size) {
    const f = this._file(id);
    if (size < f.size) {
      const keep = Math.ceil(size / CHUNK);
      for (const idx of [...f.chunks.keys()]) if (idx >= keep) f.chunks.delete(idx);
      for (const idx of [...f.dirty]) if (idx >= keep) f.dirty.delete(idx);
      f.size = size;
      this._zeroTail(f, size, size + CHUNK);
    } else if (size > f.size) {
      this._zeroTail(f, f.size, size);
      f.size = size;
    }
    return 0;
  }

  _unname(f) {
    this.byName.delete(f.name);
    if (f.pname !== null) this.toDelete.add(f.pname);
    f.pname = null;
    f.name = null;
    if (f.refs === 0) f.chunks = new Map();
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
    if (f.pname !== null) this.toDelete.add(f.pname);
    f.pname = null; // rewritten whole under the new name at the next flush
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
    const work = [];
    for (const f of this.files) {
      if (f.name === null) continue;
      const whole = f.pname !== f.name;
      if (!whole && !f.dirty.size && f.size === f.psize) continue;
      work.push({ f, whole, dirty: whole ? [...f.chunks.keys()] : [...f.dirty], size: f.size });
    }
    if (!work.length && !this.toDelete.size) return;
    const deletes = [...this.toDelete];
    const tx = this.idb.transaction(['files', 'chunks'], 'readwrite', { durability: 'strict' });
    const files = tx.objectStore('files');
    const chunks = tx.objectStore('chunks');
    for (const name of deletes) {
      files.delete(name);
      chunks.delete(IDBKeyRange.bound([name, 0], [name, Infinity]));
    }
    for (const w of work) {
      const f = w.f;
      const nchunks = Math.ceil(w.size / CHUNK);
      if (!w.whole && w.size < f.psize) chunks.delete(IDBKeyRange.bound([f.name, nchunks], [f.name, Infinity]));
      for (const idx of w.dirty) {
        if (idx >= nchunks) continue;
        const c = f.chunks.get(idx);
        const len = Math.min(CHUNK, w.size - idx * CHUNK);
        // put() clones the value now: later writes to the chunk do not leak in.
        if (c) chunks.put(len === CHUNK ? c : c.subarray(0, len), [f.name, idx]);
        else chunks.delete([f.name, idx]);
      }
      files.put({ size: w.size }, f.name);
    }
    // What this transaction carries is no longer pending, whatever happens next.
    this.toDelete.clear();
    for (const w of work) {
      w.f.dirty.clear();
      w.f.pname = w.f.name;
    }
    try {
      await new Promise((resolve, reject) => {
        tx.oncomplete = resolve;
        tx.onerror = () => reject(tx.error);
        tx.onabort = () => reject(tx.error || new Error('transaction aborted'));
      });
    } catch (e) {
      this.failed = `${e && e.name ? e.name : 'Error'}: ${e && e.message ? e.message : e}`;
      const err = cairnError(e && e.name === 'QuotaExceededError' ? -6 : -5, `IndexedDB transaction failed: ${this.failed}`);
      throw err;
    }
    for (const w of work) w.f.psize = w.size;
  }

  close() {
    if (this.idb) this.idb.close();
    this.idb = null;
  }
}
