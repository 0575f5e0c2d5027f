// demo.js — a light-client view on cairn: imports a synthetic header chain
// (column family "headers": 8-byte big-endian height -> 80-byte header;
// "by-hash": double-SHA-256 of the header -> height), looks headers up by
// height and by hash, and shows the database's stats. Data stays across
// reloads (OPFS or IndexedDB backend).
import { open } from '../src/index.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const engineUrl = params.get('engine') || '../dist/cairn-engine.mjs';
const hex = (b) => [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
const unhex = (s) => new Uint8Array(s.match(/../g).map((h) => parseInt(h, 16)));

let db = null, headers = null, byHash = null;

function heightKey(h) {
  const k = new Uint8Array(8);
  new DataView(k.buffer).setBigUint64(0, BigInt(h));
  return k;
}

async function sha256d(b) {
  const once = await crypto.subtle.digest('SHA-256', b);
  return new Uint8Array(await crypto.subtle.digest('SHA-256', once));
}

// header = version(4) | prev hash(32) | merkle root(32) | time(4) | bits(4) | nonce(4)
function makeHeader(height, prevHash) {
  const h = new Uint8Array(80);
  const dv = new DataView(h.buffer);
  dv.setUint32(0, 0x20000000, true);
  h.set(prevHash, 4);
  for (let i = 0; i < 32; i++) h[36 + i] = (height * 131 + i * 17) & 255;
  dv.setUint32(68, 1231006505 + height * 600, true);
  dv.setUint32(72, 0x1d00ffff, true);
  dv.setUint32(76, (height * 2654435761) >>> 0, true);
  return h;
}

async function tip() {
  for await (const [k] of headers.iterate({ reverse: true, limit: 1 })) return Number(new DataView(k.buffer, k.byteOffset).getBigUint64(0));
  return -1;
}

async function openDb(backend) {
  if (db) await db.close();
  db = null;
  $('status').textContent = 'opening…';
  try {
    db = await open('light-client', { backend, engineUrl });
    headers = await db.cf('headers', { create: true });
    byHash = await db.cf('by-hash', { create: true });
    $('status').textContent = `open on ${backend}; tip height ${await tip()}`;
    $('status').className = '';
    await showStats();
  } catch (e) {
    $('status').textContent = `${e.codeName || e.name}: ${e.message}`;
    $('status').className = 'err';
  }
}

async function importHeaders() {
  const n = Number($('count').value);
  const start = (await tip()) + 1;
  let prev = new Uint8Array(32);
  if (start > 0) prev = await sha256d(await headers.get(heightKey(start - 1)));
  const BATCH = 500;
  const t0 = performance.now();
  $('progress').max = n;
  for (let done = 0; done < n; ) {
    const ops = [];
    const m = Math.min(BATCH, n - done);
    for (let i = 0; i < m; i++) {
      const h = start + done + i;
      const header = makeHeader(h, prev);
      const hash = await sha256d(header);
      ops.push({ type: 'put', cf: headers, key: heightKey(h), value: header });
      ops.push({ type: 'put', cf: byHash, key: hash, value: heightKey(h) });
      prev = hash;
    }
    await db.batch(ops); // atomic and durable: both indexes move together
    done += m;
    $('progress').value = done;
    $('import-status').textContent = `${done} / ${n} headers`;
  }
  const secs = (performance.now() - t0) / 1000;
  $('import-status').textContent = `imported ${n} headers (heights ${start}..${start + n - 1}) in ${secs.toFixed(2)} s`;
  $('status').textContent = `open on ${db.backend}; tip height ${await tip()}`;
  await showStats();
}

async function lookupHeight() {
  const h = Number($('height').value);
  const header = await headers.get(heightKey(h));
  if (!header) {
    $('height-out').textContent = `no header at height ${h}`;
    return;
  }
  const hash = await sha256d(header);
  $('height-out').textContent = `height ${h}\nhash   ${hex(hash)}\nprev   ${hex(header.subarray(4, 36))}\nheader ${hex(header)}`;
  $('hash').value = hex(hash);
}

async function lookupHash() {
  const s = $('hash').value.trim().toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(s)) {
    $('hash-out').textContent = 'a hash is 64 hex digits';
    return;
  }
  const v = await byHash.get(unhex(s));
  $('hash-out').textContent = v ? `height ${Number(new DataView(v.buffer, v.byteOffset).getBigUint64(0))}` : 'unknown hash';
}

async function showStats() {
  const st = await db.stats();
  const rows = [
    ['backend', st.backend],
    ['tip height', await tip()],
    ['file size', `${st.db.file_size} bytes`],
    ['page size', st.db.page_size],
    ['pages in use / free', `${st.db.pages_in_use} / ${st.db.pages_free}`],
    ['last commit', st.db.last_txn_id],
  ];
  for (const cf of st.column_families) rows.push([`entries in ${cf.name}`, cf.entries]);
  $('stats').innerHTML = rows.map(([k, v]) => `<tr><td>${k}</td><td>${v}</td></tr>`).join('');
}

async function clearAll() {
  const backend = db.backend;
  await db.dropCf('headers');
  await db.dropCf('by-hash');
  await openDb(backend);
  $('import-status').textContent = 'cleared';
}

const guard = (fn) => async () => {
  try {
    await fn();
  } catch (e) {
    $('status').textContent = `${e.codeName || e.name}: ${e.message}`;
    $('status').className = 'err';
  }
};
$('import').onclick = guard(importHeaders);
$('by-height').onclick = guard(lookupHeight);
$('by-hash').onclick = guard(lookupHash);
$('refresh').onclick = guard(showStats);
$('clear').onclick = guard(clearAll);
$('backend').onchange = () => {
  localStorage.setItem('cairn-demo-backend', $('backend').value);
  openDb($('backend').value);
};
const hasOpfs = typeof FileSystemHandle !== 'undefined';
const backend = params.get('backend') || localStorage.getItem('cairn-demo-backend') || (hasOpfs ? 'opfs' : 'indexeddb');
$('backend').value = backend;
openDb(backend);
