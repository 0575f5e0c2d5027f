// bench-worker.js — B1-B3 of shared/BENCH.md for one engine, in a dedicated
// Worker. Message in: { engine, phase: 'load' | 'reread', n }; out: results.
//   B1  bulk load: n puts (32-byte splitmix64 keys, 100 random bytes), 1000 per durable commit
//   B2  n random gets of existing keys
//   B3  (after a page reload) reopen and read everything back in key order
// Engines: cairn-opfs, cairn-idb (this package, called in-Worker without
// postMessage; cairn-idb-preload: the IndexedDB store in 'preload' mode), sqlite-opfs (official sqlite-wasm, opfs-sahpool VFS, table
// k BLOB PRIMARY KEY, v BLOB WITHOUT ROWID), browser-level (IndexedDB).
import { ops as cairn } from '../src/worker.js';

const PER_COMMIT = 1000;

function splitmix(seed) {
  let s = BigInt.asUintN(64, BigInt(seed));
  return () => {
    s = BigInt.asUintN(64, s + 0x9e3779b97f4a7c15n);
    let z = s;
    z = BigInt.asUintN(64, (z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n);
    z = BigInt.asUintN(64, (z ^ (z >> 27n)) * 0x94d049bb133111ebn);
    return z ^ (z >> 31n);
  };
}

function keys(n) {
  const next = splitmix(42);
  const out = new Array(n);
  for (let i = 0; i < n; i++) {
    const k = new Uint8Array(32);
    const dv = new DataView(k.buffer);
    for (let w = 0; w < 4; w++) dv.setBigUint64(w * 8, next(), true);
    out[i] = k;
  }
  return out;
}

function values(n) {
  // Random bytes (IndexedDB compresses values: no easy wins for anyone).
  const out = new Array(n);
  const buf = new Uint8Array(100 * n);
  for (let off = 0; off < buf.length; off += 65536) crypto.getRandomValues(buf.subarray(off, Math.min(buf.length, off + 65536)));
  // slice, not subarray: a view would carry (and IndexedDB would clone) the whole buffer.
  for (let i = 0; i < n; i++) out[i] = buf.slice(i * 100, i * 100 + 100);
  return out;
}

function shuffled(n) {
  const next = splitmix(7);
  const idx = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Number(next() % BigInt(i + 1));
    [idx[i], idx[j]] = [idx[j], idx[i]];
  }
  return idx;
}

const ENGINE = '/web/dist/cairn-engine.mjs';

const engines = {
  cairn: (backend, idbMode) => ({
    async wipe() {
      if (backend === 'opfs') {
        const root = await navigator.storage.getDirectory();
        await root.getDirectoryHandle('cairn').then((d) => d.removeEntry('bench', { recursive: true })).catch(() => {});
      } else {
        await new Promise((r) => {
          const q = indexedDB.deleteDatabase('cairn-bench');
          q.onsuccess = q.onerror = q.onblocked = () => r();
        });
      }
    },
    open: () => cairn.open({ name: 'bench', backend, engineUrl: ENGINE, ...(idbMode ? { idbMode } : {}) }),
    async load(ks, vs, from, to) {
      const list = [];
      for (let i = from; i < to; i++) list.push({ type: 'put', cf: 0, key: ks[i], value: vs[i] });
      await cairn.batch({ ops: list });
    },
    get: (k) => cairn.get({ key: k }),
    async scan() {
      const it = await cairn.iterOpen({});
      let n = 0;
      for (;;) {
        const r = await cairn.iterNext({ iter: it, max: 4096 });
        n += r.entries.length;
        if (r.done) return n;
      }
    },
    close: () => cairn.close(),
  }),

  sqlite: () => {
    let sqlite3, pool, db, ins, sel;
    return {
      async init() {
        const mod = await import('/web/node_modules/@sqlite.org/sqlite-wasm/dist/index.mjs');
        sqlite3 = await mod.default();
        pool = await sqlite3.installOpfsSAHPoolVfs({ name: 'cairn-bench-sahpool', directory: '/cairn-bench-sahpool' });
      },
      async wipe() {
        await this.init();
        await pool.wipeFiles();
      },
      async open() {
        if (!pool) await this.init();
        db = new pool.OpfsSAHPoolDb('/bench.sqlite3');
        db.exec('PRAGMA synchronous=FULL; PRAGMA cache_size=-65536;');
        db.exec('CREATE TABLE IF NOT EXISTS kv(k BLOB PRIMARY KEY, v BLOB) WITHOUT ROWID');
        ins = db.prepare('INSERT OR REPLACE INTO kv(k, v) VALUES (?, ?)');
        sel = db.prepare('SELECT v FROM kv WHERE k = ?');
      },
      async load(ks, vs, from, to) {
        db.exec('BEGIN');
        for (let i = from; i < to; i++) ins.bind([ks[i], vs[i]]).stepReset();
        db.exec('COMMIT');
      },
      get(k) {
        sel.bind([k]);
        const v = sel.step() ? sel.get(0) : undefined;
        sel.reset();
        return v;
      },
      async scan() {
        let n = 0;
        const st = db.prepare('SELECT k, v FROM kv ORDER BY k');
        while (st.step()) {
          st.get(0);
          st.get(1);
          n++;
        }
        st.finalize();
        return n;
      },
      async close() {
        ins.finalize();
        sel.finalize();
        db.close();
      },
    };
  },

  level: () => {
    let db;
    return {
      async wipe() {
        await new Promise((r) => {
          const q = indexedDB.deleteDatabase('level-js-cairn-bench');
          q.onsuccess = q.onerror = q.onblocked = () => r();
        });
      },
      async open() {
        const { BrowserLevel } = await import('/web/dist/browser-level.js');
        db = new BrowserLevel('cairn-bench', { keyEncoding: 'view', valueEncoding: 'view' });
        await db.open();
      },
      async load(ks, vs, from, to) {
        const list = [];
        for (let i = from; i < to; i++) list.push({ type: 'put', key: ks[i], value: vs[i] });
        await db.batch(list);
      },
      get: (k) => db.get(k),
      async scan() {
        let n = 0;
        for await (const _ of db.iterator()) n++;
        return n;
      },
      close: () => db.close(),
    };
  },
};

function make(engine) {
  if (engine === 'cairn-opfs') return engines.cairn('opfs');
  if (engine === 'cairn-idb') return engines.cairn('indexeddb'); // 'wait' mode where JSPI exists
  if (engine === 'cairn-idb-preload') return engines.cairn('indexeddb', 'preload');
  if (engine === 'sqlite-opfs') return engines.sqlite();
  if (engine === 'browser-level') return engines.level();
  throw new Error('unknown engine ' + engine);
}

self.onmessage = async (ev) => {
  const { engine, phase, n } = ev.data;
  try {
    const e = make(engine);
    const ks = keys(n);
    const res = { engine, n };
    if (phase === 'load') {
      const vs = values(n);
      await e.wipe();
      await e.open();
      let t0 = performance.now();
      for (let i = 0; i < n; i += PER_COMMIT) await e.load(ks, vs, i, Math.min(n, i + PER_COMMIT));
      res.b1 = n / ((performance.now() - t0) / 1000);
      const order = shuffled(n);
      let missing = 0;
      t0 = performance.now();
      for (const i of order) {
        const v = await e.get(ks[i]);
        if (!v || v.length !== 100 || v[0] !== vs[i][0] || v[99] !== vs[i][99]) missing++;
      }
      res.b2 = n / ((performance.now() - t0) / 1000);
      res.b2_wrong = missing;
      await e.close();
    } else {
      const t0 = performance.now();
      await e.open();
      const got = await e.scan();
      res.b3 = got / ((performance.now() - t0) / 1000);
      res.b3_entries = got;
      await e.close();
    }
    self.postMessage(res);
  } catch (err) {
    self.postMessage({ engine, error: String(err && err.stack ? err.stack : err) });
  }
};
