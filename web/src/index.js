// index.js — cairn for web pages: the engine runs in a dedicated Worker
// (worker.js); every call here is a Promise.
//
//   import { open } from 'cairn-web';
//   const db = await open('chain', { backend: 'opfs' });   // or 'indexeddb', 'memory'
//   await db.put('height/1', header);
//   for await (const [k, v] of db.iterate({ prefix: 'height/' })) ...
//   await db.close();
//
// Keys and values are Uint8Array; strings are accepted and encoded as UTF-8.
// Errors reject with a CairnError carrying the cairn status code (e.code,
// e.g. -3) and its name (e.codeName, e.g. 'CAIRN_BUSY').

const enc = new TextEncoder();

export const codes = {
  CAIRN_NOTFOUND: -1, CAIRN_EXISTS: -2, CAIRN_BUSY: -3, CAIRN_CORRUPT: -4, CAIRN_IO: -5,
  CAIRN_NOSPC: -6, CAIRN_NOMEM: -7, CAIRN_INVALID: -8, CAIRN_READONLY: -9, CAIRN_TOOBIG: -10,
  CAIRN_BADTXN: -11, CAIRN_NOTADB: -12, CAIRN_VERSION: -13, CAIRN_INUSE: -14, CAIRN_NOTSUPP: -15,
};
const codeNames = Object.fromEntries(Object.entries(codes).map(([k, v]) => [v, k]));

export class CairnError extends Error {
  constructor(code, message) {
    super(message);
    this.name = 'CairnError';
    this.code = code;
    this.codeName = codeNames[code] || 'CAIRN_IO';
  }
}

export function toBytes(x, what = 'key') {
  if (typeof x === 'string') return enc.encode(x);
  if (x instanceof Uint8Array) return x;
  if (x instanceof ArrayBuffer) return new Uint8Array(x);
  if (ArrayBuffer.isView(x)) return new Uint8Array(x.buffer, x.byteOffset, x.byteLength);
  throw new CairnError(codes.CAIRN_INVALID, `CAIRN_INVALID: ${what} must be a Uint8Array or a string`);
}

const DEFAULT_ENGINE = new URL('../dist/cairn-engine.mjs', import.meta.url).href;
const DEFAULT_WORKER = new URL('./worker.js', import.meta.url);

/**
 * Open (creating if needed) the database `name` of this origin.
 * options.backend: 'opfs' (default), 'indexeddb' or 'memory'.
 */
export async function open(name, options = {}) {
  const worker = new Worker(options.workerUrl || DEFAULT_WORKER, { type: 'module' });
  const db = new Database(worker);
  try {
    await db._call('open', {
      name,
      backend: options.backend || 'opfs',
      engineUrl: new URL(options.engineUrl || DEFAULT_ENGINE, location.href).href,
      durability: options.durability || 'sync',
      pageSize: options.pageSize || 0,
      cachePages: options.cachePages || 0,
      checkpointMiB: options.checkpointMiB || 0,
      idbMode: options.idbMode,
      idbCacheMiB: options.idbCacheMiB || 16,
    });
  } catch (e) {
    worker.terminate();
    throw e;
  }
  db.name = name;
  db.backend = options.backend || 'opfs';
  return db;
}

function rangeArgs(opts = {}) {
  const a = { reverse: !!opts.reverse };
  for (const k of ['gt', 'gte', 'lt', 'lte', 'prefix']) if (opts[k] !== undefined) a[k] = toBytes(opts[k], k);
  return a;
}

async function* iterate(db, base, opts = {}) {
  const limit = opts.limit === undefined ? Infinity : opts.limit;
  if (limit <= 0) return;
  const iter = await db._call('iterOpen', { ...base, ...rangeArgs(opts) });
  let n = 0;
  try {
    for (;;) {
      const { entries, done } = await db._call('iterNext', { iter, max: Math.min(1024, limit - n) });
      for (const e of entries) {
        yield e;
        if (++n >= limit) return;
      }
      if (done) return;
    }
  } finally {
    if (!db._closed) await db._call('iterClose', { iter }).catch(() => {});
  }
}

function normOps(ops, cfOf) {
  return ops.map((o) => {
    if (o.type !== 'put' && o.type !== 'del')
      throw new CairnError(codes.CAIRN_INVALID, `CAIRN_INVALID: batch operation type must be 'put' or 'del'`);
    return {
      type: o.type,
      cf: cfOf(o.cf),
      key: toBytes(o.key),
      value: o.type === 'put' ? toBytes(o.value, 'value') : undefined,
    };
  });
}

class Reader {
  async get(key, opts = {}) {
    return this._db._call('get', { ...this._base(opts), key: toBytes(key) });
  }
  iterate(opts = {}) {
    return iterate(this._db, this._base(opts), opts);
  }
  keys(opts = {}) {
    const it = this.iterate(opts);
    return (async function* () {
      for await (const [k] of it) yield k;
    })();
  }
}

export class Database extends Reader {
  constructor(worker) {
    super();
    this._db = this;
    this._worker = worker;
    this._pending = new Map();
    this._next = 1;
    this._closed = false;
    worker.onmessage = (ev) => {
      const { id, result, error } = ev.data;
      const p = this._pending.get(id);
      if (!p) return;
      this._pending.delete(id);
      if (error) p.reject(new CairnError(error.code, error.message));
      else p.resolve(result);
    };
    worker.onerror = (ev) => {
      const err = new CairnError(codes.CAIRN_IO, `CAIRN_IO: the cairn Worker failed: ${ev.message || ev}`);
      for (const p of this._pending.values()) p.reject(err);
      this._pending.clear();
    };
  }

  _call(op, args) {
    if (this._closed) return Promise.reject(new CairnError(codes.CAIRN_INVALID, 'CAIRN_INVALID: the database is closed'));
    return new Promise((resolve, reject) => {
      const id = this._next++;
      this._pending.set(id, { resolve, reject });
      this._worker.postMessage({ id, op, args });
    });
  }

  _base(opts) {
    return { cf: opts.cf ? opts.cf.id : 0 };
  }

  async put(key, value, opts = {}) {
    return this._call('put', { ...this._base(opts), key: toBytes(key), value: toBytes(value, 'value') });
  }
  /** Resolves true if the key existed. */
  async del(key, opts = {}) {
    return this._call('del', { ...this._base(opts), key: toBytes(key) });
  }
  /** Atomic: all operations commit together or none does. */
  async batch(ops) {
    return this._call('batch', { ops: normOps(ops, (cf) => (cf ? cf.id : 0)) });
  }
  /** A column family (created if options.create). */
  async cf(name, options = {}) {
    const id = await this._call('cf', { name, create: !!options.create });
    return new ColumnFamily(this, name, id);
  }
  dropCf(name) {
    return this._call('dropCf', { name });
  }
  listCfs() {
    return this._call('listCfs', {});
  }
  /** mode 'readonly' (a snapshot) or 'readwrite' (the one writer). */
  async transaction(mode = 'readonly') {
    const id = await this._call('begin', { mode });
    return new Transaction(this, id, mode);
  }
  stats() {
    return this._call('stats', {});
  }
  check() {
    return this._call('check', {});
  }
  /** The whole database as bytes: a file the native `cairn` tool opens. */
  export() {
    return this._call('export', {});
  }
  /** Replace the content with a database file's bytes (validated first). */
  async import(bytes) {
    return this._call('import', { bytes: toBytes(bytes, 'bytes') });
  }
  async close() {
    if (this._closed) return;
    try {
      await this._call('close', {});
    } finally {
      this._closed = true;
      this._worker.terminate();
    }
  }
}

export class ColumnFamily extends Reader {
  constructor(db, name, id) {
    super();
    this._db = db;
    this.name = name;
    this.id = id;
  }
  _base() {
    return { cf: this.id };
  }
  async put(key, value) {
    return this._db.put(key, value, { cf: this });
  }
  async del(key) {
    return this._db.del(key, { cf: this });
  }
}

export class Transaction extends Reader {
  constructor(db, id, mode) {
    super();
    this._db = db;
    this.id = id;
    this.mode = mode;
  }
  _base(opts = {}) {
    return { txn: this.id, cf: opts.cf ? opts.cf.id : 0 };
  }
  async put(key, value, opts = {}) {
    return this._db._call('txPut', { ...this._base(opts), key: toBytes(key), value: toBytes(value, 'value') });
  }
  async del(key, opts = {}) {
    return this._db._call('txDel', { ...this._base(opts), key: toBytes(key) });
  }
  async batch(ops) {
    return this._db._call('txBatch', { txn: this.id, ops: normOps(ops, (cf) => (cf ? cf.id : 0)) });
  }
  async cf(name, options = {}) {
    const id = await this._db._call('txCf', { txn: this.id, name, create: !!options.create });
    return new ColumnFamily(this._db, name, id);
  }
  listCfs() {
    return this._db._call('listCfs', { txn: this.id });
  }
  commit() {
    return this._db._call('commit', { txn: this.id });
  }
  abort() {
    return this._db._call('abort', { txn: this.id });
  }
}
