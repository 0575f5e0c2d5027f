// api-tests.js — tests of the JS package (src/index.js) that run in the page;
// driven by run-web-tests.mjs. Each exported function returns a list of
// failures (empty = pass); every check compares a real outcome.
import { open, CairnError, codes } from '../src/index.js';

const ENGINE = '/web/dist/cairn-engine.mjs';
const enc = new TextEncoder();
const dec = new TextDecoder();
const txt = (b) => (b === undefined ? undefined : dec.decode(b));
const hex = (b) => [...b].map((x) => x.toString(16).padStart(2, '0')).join('');

function checker() {
  const failures = [];
  let n = 0;
  const ok = (cond, what) => {
    n++;
    if (!cond) failures.push(what);
  };
  const eq = (a, b, what) => ok(JSON.stringify(a) === JSON.stringify(b), `${what}: got ${JSON.stringify(a)}, want ${JSON.stringify(b)}`);
  const rejects = async (p, code, what, msgPart) => {
    try {
      await p;
      ok(false, `${what}: resolved, expected rejection with ${code}`);
    } catch (e) {
      ok(e instanceof CairnError, `${what}: not a CairnError: ${e}`);
      ok(e.code === codes[code] && e.codeName === code, `${what}: code ${e.code} ${e.codeName}, want ${code} (${e.message})`);
      if (msgPart) ok(e.message.includes(msgPart), `${what}: message "${e.message}" lacks "${msgPart}"`);
    }
  };
  return { failures, ok, eq, rejects, count: () => n };
}

async function collect(it, f = (k, v) => [txt(k), txt(v)]) {
  const out = [];
  for await (const [k, v] of it) out.push(f(k, v));
  return out;
}

export async function basics(backend) {
  const { failures, ok, eq, rejects, count } = checker();
  const name = `basics-${backend}-${Math.random().toString(36).slice(2)}`;
  const db = await open(name, { backend, engineUrl: ENGINE });
  try {
    // put / get / del, strings and bytes
    await db.put('a', 'one');
    await db.put(new Uint8Array([0, 255, 1]), new Uint8Array([9, 8, 7]));
    eq(txt(await db.get('a')), 'one', 'get a');
    eq([...(await db.get(new Uint8Array([0, 255, 1])))], [9, 8, 7], 'binary get');
    eq(await db.get('missing'), undefined, 'get missing');
    eq(await db.del('a'), true, 'del existing');
    eq(await db.del('a'), false, 'del missing');
    eq(await db.get('a'), undefined, 'get after del');
    await db.put('', 'empty key');
    eq(txt(await db.get('')), 'empty key', 'empty key');
    const big = new Uint8Array(3 * 1024 * 1024).map((_, i) => (i * 7) & 255);
    await db.put('big', big);
    const bigBack = await db.get('big');
    ok(bigBack.length === big.length && bigBack.every((x, i) => x === big[i]), 'a 3 MiB value round-trips');

    // batch: atomic
    const ops = [];
    for (let i = 0; i < 200; i++) ops.push({ type: 'put', key: `k/${String(i).padStart(3, '0')}`, value: `v${i}` });
    await db.batch(ops);
    eq(txt(await db.get('k/199')), 'v199', 'batch put');
    await rejects(
      db.batch([{ type: 'put', key: 'atomic-1', value: 'x' }, { type: 'put', key: new Uint8Array(2000), value: 'too big key' }]),
      'CAIRN_TOOBIG', 'batch with an oversize key', 'batch operation 1');
    eq(await db.get('atomic-1'), undefined, 'a failed batch leaves nothing');
    await db.batch([{ type: 'del', key: 'k/000' }, { type: 'del', key: 'not-there' }, { type: 'put', key: 'k/000x', value: 'y' }]);
    eq(await db.get('k/000'), undefined, 'batch del');

    // iteration
    const fwd = await collect(db.iterate({ prefix: 'k/00' }));
    eq(fwd.map((e) => e[0]), ['k/000x', 'k/001', 'k/002', 'k/003', 'k/004', 'k/005', 'k/006', 'k/007', 'k/008', 'k/009'], 'prefix forward');
    const rev = await collect(db.iterate({ prefix: 'k/00', reverse: true }));
    eq(rev.map((e) => e[0]), fwd.map((e) => e[0]).reverse(), 'prefix reverse');
    eq((await collect(db.iterate({ gte: 'k/010', lt: 'k/013' }))).map((e) => e[0]), ['k/010', 'k/011', 'k/012'], 'gte/lt');
    eq((await collect(db.iterate({ gt: 'k/010', lte: 'k/013' }))).map((e) => e[0]), ['k/011', 'k/012', 'k/013'], 'gt/lte');
    eq((await collect(db.iterate({ gt: 'k/010', lte: 'k/013', reverse: true }))).map((e) => e[0]), ['k/013', 'k/012', 'k/011'], 'gt/lte reverse');
    eq((await collect(db.iterate({ prefix: 'k/', limit: 3, reverse: true }))).map((e) => e[0]), ['k/199', 'k/198', 'k/197'], 'limit reverse');
    const all = await collect(db.iterate({ prefix: 'k/' }));
    eq(all.length, 200, 'iterate 200 entries across chunks');
    eq(all[150], ['k/150', 'v150'], 'entry 150');
    let early = 0;
    for await (const _ of db.iterate({ prefix: 'k/' })) if (++early === 5) break; // return() closes the cursor
    eq(early, 5, 'break out of an iteration');
    const keys = [];
    for await (const k of db.keys({ prefix: 'k/19' })) keys.push(txt(k));
    eq(keys.length, 10, 'keys()');
    const bigIt = await collect(db.iterate({ gte: 'big', lt: 'bih' }), (k, v) => [txt(k), v.length]);
    eq(bigIt, [['big', big.length]], 'iterate over a value larger than the transfer buffer');

    // column families
    const headers = await db.cf('headers', { create: true });
    await headers.put('a', 'in cf');
    eq(txt(await headers.get('a')), 'in cf', 'cf get');
    eq(await db.get('a'), undefined, 'cf isolation');
    eq((await db.listCfs()).sort(), ['default', 'headers'], 'listCfs');
    await rejects(db.cf('nope'), 'CAIRN_NOTFOUND', 'open a missing cf');
    eq((await collect(headers.iterate())).map((e) => e[0]), ['a'], 'cf iterate');
    await db.batch([{ type: 'put', cf: headers, key: 'b', value: 'batched' }]);
    eq(txt(await headers.get('b')), 'batched', 'batch into a cf');
    await db.dropCf('headers');
    eq(await db.listCfs(), ['default'], 'dropCf');

    // transactions
    const snap = await db.transaction('readonly');
    const tx = await db.transaction('readwrite');
    await tx.put('t1', 'in tx');
    eq(txt(await tx.get('t1')), 'in tx', 'read your writes');
    eq(await db.get('t1'), undefined, 'uncommitted write invisible');
    const pending = db.put('t2', 'waits for the writer'); // queued behind tx
    await tx.commit();
    await pending;
    eq(txt(await db.get('t1')), 'in tx', 'committed');
    eq(txt(await db.get('t2')), 'waits for the writer', 'queued write ran after commit');
    eq(await snap.get('t1'), undefined, 'snapshot isolation');
    await rejects(snap.put('x', 'y'), 'CAIRN_READONLY', 'put in a read-only transaction');
    await snap.commit();
    await rejects(snap.get('t1'), 'CAIRN_INVALID', 'use of a finished transaction');
    const tx2 = await db.transaction('readwrite');
    await tx2.put('t3', 'aborted');
    const c2 = await tx2.cf('txcf', { create: true });
    await tx2.put('in', 'cf', { cf: c2 });
    await tx2.abort();
    eq(await db.get('t3'), undefined, 'abort discards');
    eq(await db.listCfs(), ['default'], 'abort discards a cf creation');

    // errors
    await rejects(db.put(42, 'x'), 'CAIRN_INVALID', 'a number key');
    await rejects(db.put(new Uint8Array(1025), 'x'), 'CAIRN_TOOBIG', 'key over 1024 bytes');
    await rejects(db.batch([{ type: 'frob', key: 'x' }]), 'CAIRN_INVALID', 'bad batch op type');

    // stats
    const st = await db.stats();
    eq(st.backend, backend, 'stats backend');
    ok(JSON.stringify(st).includes('"page_size"'), 'stats has page_size: ' + JSON.stringify(st).slice(0, 200));
    eq(await db.check(), true, 'integrity check');
  } finally {
    await db.close();
  }
  await rejects(db.get('a'), 'CAIRN_INVALID', 'call after close', 'closed');
  await rejects(open('bad/name', { backend, engineUrl: ENGINE }), 'CAIRN_INVALID', 'a name with /');
  await rejects(open('x', { backend: 'floppy', engineUrl: ENGINE }), 'CAIRN_INVALID', 'unknown backend');
  return { failures, checks: count() };
}

// A second owner of the same database is refused while the first is open,
// and succeeds after close.
export async function exclusive(backend) {
  const { failures, eq, rejects, count } = checker();
  const name = `excl-${backend}`;
  const a = await open(name, { backend, engineUrl: ENGINE });
  await a.put('owner', 'a');
  await rejects(open(name, { backend, engineUrl: ENGINE }), 'CAIRN_BUSY', 'second open', 'in use');
  await a.close();
  const b = await open(name, { backend, engineUrl: ENGINE });
  eq(txt(await b.get('owner')), 'a', 'reopen after close');
  await b.close();
  return { failures, checks: count() };
}

// Persistence across reload / browser restart: phase 'write' leaves data
// (and, with leaveOpen, the database open: a reload must recover the lock
// and the handles by itself); phase 'read' checks it.
let leftOpen = [];
export async function persist(backend, phase, tag, leaveOpen = false) {
  const { failures, eq, ok, count } = checker();
  const name = `persist-${backend}`;
  const db = await open(name, { backend, engineUrl: ENGINE });
  if (phase === 'write') {
    const ops = [];
    for (let i = 0; i < 500; i++) ops.push({ type: 'put', key: `${tag}/${i}`, value: `value ${i} of ${tag}` });
    await db.batch(ops);
    await db.put(`${tag}/last`, 'durable');
    if (leaveOpen) leftOpen.push(db);
    else await db.close();
  } else {
    eq(txt(await db.get(`${tag}/last`)), 'durable', `${tag}: last put survived`);
    let n = 0;
    for await (const [k, v] of db.iterate({ prefix: `${tag}/` })) {
      if (txt(k) !== `${tag}/last`) ok(txt(v) === `value ${txt(k).split('/')[1]} of ${tag}`, `${tag}: value of ${txt(k)}`);
      n++;
    }
    eq(n, 501, `${tag}: entries after reopen`);
    eq(await db.check(), true, `${tag}: check after reopen`);
    await db.close();
  }
  return { failures, checks: count() };
}

export async function exportDb(backend, name) {
  const db = await open(name, { backend, engineUrl: ENGINE });
  try {
    const ops = [];
    for (let i = 0; i < 1000; i++) ops.push({ type: 'put', key: `h/${String(i).padStart(6, '0')}`, value: `header ${i}` });
    await db.batch(ops);
    const cf = await db.cf('receipts', { create: true });
    await cf.put('r1', 'receipt one');
    return hex(await db.export());
  } finally {
    await db.close();
  }
}

// Import the bytes (hex) of a native database; return what it holds.
export async function importDb(backend, name, bytesHex) {
  const { failures, eq, rejects, count } = checker();
  const bytes = new Uint8Array(bytesHex.match(/../g).map((h) => parseInt(h, 16)));
  const db = await open(name, { backend, engineUrl: ENGINE });
  try {
    await db.put('before', 'import');
    await rejects(db.import(enc.encode('definitely not a database'.repeat(400))), 'CAIRN_NOTADB', 'import of garbage');
    eq(txt(await db.get('before')), 'import', 'a failed import changes nothing');
    await db.import(bytes);
    eq(await db.get('before'), undefined, 'import replaced the content');
    const native = await collect(db.iterate());
    eq(await db.check(), true, 'imported database passes check');
    return { failures, checks: count(), native };
  } finally {
    await db.close();
  }
}

export async function wipe(backend, name) {
  if (backend === 'opfs') {
    const root = await navigator.storage.getDirectory();
    try {
      await (await root.getDirectoryHandle('cairn')).removeEntry(name, { recursive: true });
    } catch (e) {
      /* absent */
    }
  } else if (backend === 'indexeddb') {
    await new Promise((r) => {
      const q = indexedDB.deleteDatabase(`cairn-${name}`);
      q.onsuccess = q.onerror = q.onblocked = () => r();
    });
  }
}

// A database of more than one load page of IndexedDB chunk records
// (idb-store.js loads 4096 records per request): write ~24 MiB, close,
// reopen in a fresh Worker, read every value back.
export async function large(backend, phase) {
  const { failures, ok, eq, count } = checker();
  const db = await open('large', { backend, engineUrl: ENGINE });
  const val = (i) => new Uint8Array(8192).map((_, j) => (i * 31 + j * 7) & 255);
  try {
    if (phase === 'write') {
      for (let b = 0; b < 3000; b += 250) {
        const ops = [];
        for (let i = b; i < b + 250; i++) ops.push({ type: 'put', key: `big/${String(i).padStart(5, '0')}`, value: val(i) });
        await db.batch(ops);
      }
    } else {
      let n = 0;
      for await (const [k, v] of db.iterate({ prefix: 'big/' })) {
        const i = Number(dec.decode(k).slice(4));
        const want = val(i);
        ok(v.length === want.length && v.every((x, j) => x === want[j]), `value ${i}`);
        n++;
      }
      eq(n, 3000, 'entries after reopen');
      const st = await db.stats();
      ok(st.db.file_size > 24 * 1024 * 1024, `file size ${st.db.file_size} > 24 MiB`);
      eq(await db.check(), true, 'check after reopen');
    }
  } finally {
    await db.close();
  }
  return { failures, checks: count() };
}

// IndexedDB with bounded memory ('wait' mode): a database far larger than
// everything the Worker may hold (a 2 MiB chunk cache, a 256-page engine
// cache, checkpoints every 4 MiB), written, then reopened in a fresh Worker
// and read back whole (a key-order scan and random gets on a cold cache).
// Checks the wasm heap and the store's peak stay bounded. The same function,
// at >= 1 GiB, is web/test/fill-idb.mjs (by hand, not in CI).
export const BOUNDED = { idbMode: 'wait', idbCacheMiB: 2, cachePages: 256, checkpointMiB: 4 };
const VAL = 4000;
function bval(i) {
  // Incompressible bytes from (i): IndexedDB compresses values.
  const v = new Uint8Array(VAL);
  let x = (i + 1) * 2654435761 >>> 0 || 1;
  for (let j = 0; j < VAL; j += 4) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    v[j] = x; v[j + 1] = x >>> 8; v[j + 2] = x >>> 16; v[j + 3] = x >>> 24;
  }
  return v;
}
const bkey = (i) => `b/${String(i).padStart(8, '0')}`;

export async function bounded(phase, sizeMiB, name = 'bounded') {
  const { failures, ok, eq, count } = checker();
  const n = Math.ceil((sizeMiB * 1048576) / VAL);
  const limits = { heap: 48 << 20, store: 8 << 20 }; // bytes; the database is sizeMiB
  const t0 = performance.now();
  const db = await open(name, { backend: 'indexeddb', engineUrl: ENGINE, ...BOUNDED });
  const info = { entries: n };
  const mem = async (what) => {
    const m = (await db.stats()).memory;
    info[`${what}_wasm_heap`] = m.wasmHeapBytes;
    info[`${what}_store_peak`] = m.idb.peakBytes;
    eq(m.idb.mode, 'wait', 'store mode');
    ok(m.wasmHeapBytes <= limits.heap, `${what}: wasm heap ${m.wasmHeapBytes} <= ${limits.heap}`);
    ok(m.idb.peakBytes <= limits.store, `${what}: store peak ${m.idb.peakBytes} <= ${limits.store}`);
    return m;
  };
  try {
    if (phase === 'write') {
      const PER = 256; // 1 MiB per commit
      for (let b = 0; b < n; b += PER) {
        const ops = [];
        for (let i = b; i < Math.min(n, b + PER); i++) ops.push({ type: 'put', key: bkey(i), value: bval(i) });
        await db.batch(ops);
      }
      await mem('write');
      const st = await db.stats();
      info.write_s = (performance.now() - t0) / 1000;
      info.db_bytes = st.db.file_size;
    } else {
      let i = 0, bad = 0;
      for await (const [k, v] of db.iterate({ prefix: 'b/' })) {
        const want = bval(i);
        if (dec.decode(k) !== bkey(i) || v.length !== VAL || v.some((x, j) => x !== want[j])) bad++;
        i++;
      }
      eq(i, n, 'entries after reopen (scan)');
      eq(bad, 0, 'entries with a wrong key or value');
      info.scan_s = (performance.now() - t0) / 1000;
      const t1 = performance.now();
      let gbad = 0;
      const G = Math.min(2000, n);
      for (let g = 0; g < G; g++) {
        const j = (g * 7919 + 13) % n;
        const v = await db.get(bkey(j));
        const want = bval(j);
        if (!v || v.length !== VAL || v[0] !== want[0] || v[VAL - 1] !== want[VAL - 1]) gbad++;
      }
      eq(gbad, 0, 'random gets with a wrong value');
      info.gets_per_s = G / ((performance.now() - t1) / 1000);
      const st = await db.stats();
      info.db_bytes = st.db.file_size;
      ok(st.db.file_size >= sizeMiB * 1048576, `file size ${st.db.file_size} >= ${sizeMiB} MiB`);
      const m = await mem('read');
      const held = m.wasmHeapBytes + m.idb.peakBytes;
      ok(st.db.file_size > 2 * held, `the database (${st.db.file_size}) is > 2x what the Worker held (${held})`);
      info.fetches = m.idb.fetches;
      info.fetched_chunks = m.idb.fetchedChunks;
      eq(await db.check(), true, 'check after reopen (every page)');
    }
  } finally {
    await db.close();
  }
  return { failures, checks: count(), info };
}
