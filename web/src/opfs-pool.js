// opfs-pool.js — pools of OPFS files with sync access handles, opened
// before the engine runs, for the "opfs" platform (platform/wasm/opfs_platform.c).
//
// A pool is one OPFS directory of slot files ("slot-0000", ...), each with
// a FileSystemSyncAccessHandle held open for as long as the pool is open.
// A slot file = a 4096-byte header + the bytes of one cairn file. Header:
//   0  8  magic "cairnOPF"
//   8  4  version (1), little-endian
//  12  4  name length in bytes (0 = free slot)
//  16  4  FNV-1a hash of the name bytes (a torn header reads as free)
//  20  n  the name, UTF-8
// Names are global across the pools of a registry; a new file goes to the
// pool whose prefix is the longest one its name starts with.
//
// Only in a dedicated Worker (createSyncAccessHandle exists nowhere else).

export const HEADER = 4096;
const MAGIC = [0x63, 0x61, 0x69, 0x72, 0x6e, 0x4f, 0x50, 0x46]; // cairnOPF
const MAX_NAME = HEADER - 20;

const enc = new TextEncoder();
const dec = new TextDecoder();

function fnv1a(bytes) {
  let h = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) {
    h ^= bytes[i];
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

function cairnError(code, message) {
  const e = new Error(message);
  e.cairnCode = code;
  return e;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Sync access handles of a reloaded or crashed page's Worker are released
// shortly after it dies; until then createSyncAccessHandle throws
// NoModificationAllowedError. Retry for up to `waitMs` before giving up.
async function openHandle(fileHandle, waitMs) {
  const t0 = Date.now();
  for (let delay = 10; ; delay = Math.min(delay * 2, 200)) {
    try {
      return await fileHandle.createSyncAccessHandle();
    } catch (e) {
      if (e.name !== 'NoModificationAllowedError' || Date.now() - t0 > waitMs) {
        if (e.name === 'NoModificationAllowedError')
          throw cairnError(-3, `database is in use: an OPFS file of it is open elsewhere (${e.message})`);
        throw e;
      }
      await sleep(delay);
    }
  }
}

export class OpfsPool {
  constructor(registry, dir, dirName, prefix) {
    this.registry = registry;
    this.dir = dir;
    this.dirName = dirName;
    this.prefix = prefix;
    this.slots = []; // global slot numbers
  }

  async addSlots(n, waitMs) {
    for (let i = 0; i < n; i++) {
      const fname = 'slot-' + String(this.slots.length).padStart(4, '0');
      const fh = await this.dir.getFileHandle(fname, { create: true });
      const handle = await openHandle(fh, waitMs);
      this.registry._adopt(this, handle);
    }
  }

  freeSlots() {
    let n = 0;
    for (const s of this.slots) {
      const slot = this.registry.slots[s];
      if (slot.name === null && slot.refs === 0) n++;
    }
    return n;
  }
}

export class OpfsRegistry {
  constructor() {
    this.slots = []; // {pool, handle, name, refs}
    this.byName = new Map();
    this.pools = [];
    this.hdr = new Uint8Array(HEADER);
  }

  // Open (creating if needed) the pool directory `dirName` under the OPFS
  // root, with at least minSlots slot files, serving names starting with
  // prefix. waitMs: how long to wait for handles a dead page still holds.
  async openPool(dirName, { prefix = '', minSlots = 4, waitMs = 5000 } = {}) {
    const root = await navigator.storage.getDirectory();
    let dir = root;
    for (const part of dirName.split('/').filter(Boolean))
      dir = await dir.getDirectoryHandle(part, { create: true });
    const pool = new OpfsPool(this, dir, dirName, prefix);
    const names = [];
    for await (const [name, h] of dir.entries())
      if (h.kind === 'file' && /^slot-\d{4,}$/.test(name)) names.push(name);
    names.sort();
    try {
      for (const name of names) {
        const fh = await dir.getFileHandle(name);
        this._adopt(pool, await openHandle(fh, waitMs));
      }
      if (pool.slots.length < minSlots) await pool.addSlots(minSlots - pool.slots.length, waitMs);
    } catch (e) {
      this._closeSlots(pool);
      throw e;
    }
    this.pools.push(pool);
    return pool;
  }

  // Keep at least n free slots in every pool (call between engine calls).
  async ensureFree(n) {
    for (const pool of this.pools) {
      const free = pool.freeSlots();
      if (free < n) await pool.addSlots(n - free, 0);
    }
  }

  closePool(pool) {
    this._closeSlots(pool);
    this.pools = this.pools.filter((p) => p !== pool);
  }

  _closeSlots(pool) {
    for (const s of pool.slots) {
      const slot = this.slots[s];
      if (!slot.handle) continue;
      try {
        slot.handle.flush();
      } catch (e) {
        /* closing anyway */
      }
      slot.handle.close();
      slot.handle = null;
      if (slot.name !== null && this.byName.get(slot.name) === s) this.byName.delete(slot.name);
      slot.name = null;
    }
  }

  _adopt(pool, handle) {
    const s = this.slots.length;
    const slot = { pool, handle, name: null, refs: 0 };
    this.slots.push(slot);
    pool.slots.push(s);
    const name = this._readHeader(handle);
    if (name !== null && !this.byName.has(name)) {
      slot.name = name;
      this.byName.set(name, s);
    }
    return s;
  }

  _readHeader(handle) {
    const h = this.hdr;
    h.fill(0);
    const got = handle.read(h, { at: 0 });
    if (got < 20) return null;
    for (let i = 0; i < 8; i++) if (h[i] !== MAGIC[i]) return null;
    const dv = new DataView(h.buffer);
    if (dv.getUint32(8, true) !== 1) return null;
    const len = dv.getUint32(12, true);
    if (len === 0 || len > MAX_NAME) return null;
    const bytes = h.subarray(20, 20 + len);
    if (fnv1a(bytes) !== dv.getUint32(16, true)) return null;
    return dec.decode(bytes);
  }

  // Write the header of slot s naming `name` (null = free) and flush it.
  _writeHeader(s, name) {
    const h = this.hdr;
    h.fill(0);
    const dv = new DataView(h.buffer);
    let len = 0;
    if (name !== null) {
      const bytes = enc.encode(name);
      if (bytes.length > MAX_NAME) throw cairnError(-8, `name longer than ${MAX_NAME} bytes`);
      h.set(MAGIC, 0);
      dv.setUint32(8, 1, true);
      dv.setUint32(12, bytes.length, true);
      dv.setUint32(16, fnv1a(bytes), true);
      h.set(bytes, 20);
      len = bytes.length;
    }
    const handle = this.slots[s].handle;
    if (handle.getSize() < HEADER) handle.truncate(HEADER);
    handle.write(len ? h : h.subarray(0, 20), { at: 0 });
    handle.flush();
  }

  _slot(s) {
    const slot = this.slots[s];
    if (!slot || !slot.handle) throw cairnError(-5, `OPFS slot ${s} is closed`);
    return slot;
  }

  _poolFor(name) {
    let best = null;
    for (const p of this.pools)
      if (name.startsWith(p.prefix) && (!best || p.prefix.length > best.prefix.length)) best = p;
    return best;
  }

  // ---- the calls opfs_platform.js makes (synchronous) ----

  open(name, create, excl) {
    let s = this.byName.get(name);
    if (s !== undefined) {
      if (create && excl) throw cairnError(-2, 'file exists');
      this.slots[s].refs++;
      return s;
    }
    if (!create) throw cairnError(-1, 'no such file');
    const pool = this._poolFor(name);
    if (!pool) throw cairnError(-15, 'no OPFS pool serves this name');
    s = pool.slots.find((i) => this.slots[i].name === null && this.slots[i].refs === 0 && this.slots[i].handle);
    if (s === undefined)
      throw cairnError(-6, `OPFS pool ${pool.dirName} has no free slot (${pool.slots.length} slots in use)`);
    this.slots[s].handle.truncate(HEADER);
    this._writeHeader(s, name);
    this.slots[s].name = name;
    this.slots[s].refs = 1;
    this.byName.set(name, s);
    return s;
  }

  unref(s) {
    const slot = this.slots[s];
    if (!slot) return;
    if (slot.refs > 0) slot.refs--;
    if (slot.refs === 0 && slot.name === null && slot.handle) {
      slot.handle.truncate(HEADER);
      slot.handle.flush();
    }
  }

  read(s, view, off) {
    return this._slot(s).handle.read(view, { at: HEADER + off });
  }

  write(s, view, off) {
    const n = this._slot(s).handle.write(view, { at: HEADER + off });
    if (n !== view.length) throw cairnError(-6, `short write (${n} of ${view.length} bytes)`);
    return 0;
  }

  flush(s) {
    this._slot(s).handle.flush();
  }

  size(s) {
    const n = this._slot(s).handle.getSize();
    return n > HEADER ? n - HEADER : 0;
  }

  truncate(s, size) {
    this._slot(s).handle.truncate(HEADER + size);
  }

  _unname(s) {
    const slot = this.slots[s];
    this.byName.delete(slot.name);
    slot.name = null;
    this._writeHeader(s, null);
    if (slot.refs === 0) {
      slot.handle.truncate(HEADER);
      slot.handle.flush();
    }
  }

  remove(name) {
    const s = this.byName.get(name);
    if (s === undefined) throw cairnError(-1, 'no such file');
    this._unname(s);
    return 0;
  }

  rename(from, to) {
    const s = this.byName.get(from);
    if (s === undefined) throw cairnError(-1, 'no such file');
    if (this.byName.has(to)) throw cairnError(-2, `target ${to} exists`);
    if (this._poolFor(to) !== this.slots[s].pool)
      throw cairnError(-15, `cannot rename across OPFS pools (to ${to})`);
    this._writeHeader(s, to);
    this.byName.delete(from);
    this.byName.set(to, s);
    this.slots[s].name = to;
    return 0;
  }

  reset() {
    for (const s of [...this.byName.values()]) this._unname(s);
  }

  // Names of the files that exist (for tests and tools).
  names() {
    return [...this.byName.keys()].sort();
  }
}
