// c-worker.mjs — runs one C test program (built by the `emscripten` preset)
// in this dedicated Worker, on the platform the driver names. Message in:
// { module, args, env, platform }; messages out: { line } per output line,
// then { done: true, code } or { done: true, error }.
import { OpfsRegistry } from '../src/opfs-pool.js';
import { IdbStore } from '../src/idb-store.js';

self.onmessage = async (ev) => {
  const { module, args = [], env = {}, platform = 'memory' } = ev.data;
  const out = (line) => self.postMessage({ line });
  let registry = null;
  let idb = null;
  try {
    if (platform === 'idb') {
      idb = await IdbStore.open('cairn-c-tests');
      idb.reset(); // leftovers of an earlier run
      await idb.flush();
    }
    if (platform === 'opfs') {
      registry = new OpfsRegistry();
      await registry.openPool('cairn-c-tests', { prefix: '', minSlots: 96 });
      registry.reset(); // leftovers of an earlier run
    }
    const factory = (await import(module)).default;
    const M = await factory({
      print: out,
      printErr: out,
      cairnOpfs: registry,
      cairnIdb: idb,
      preRun: [
        (mod) => {
          Object.assign(mod.ENV, env, { CAIRN_BROWSER_PLATFORM: platform });
        },
      ],
    });
    let code = M.callMain(args);
    if (registry) {
      registry.reset();
      for (const p of [...registry.pools]) registry.closePool(p);
    }
    if (idb) {
      // Persist what the program left and read it back from IndexedDB.
      await idb.flush();
      const back = await IdbStore.open('cairn-c-tests');
      const bad = compareStores(idb, back);
      out(`idb persistence: ${idb.names().length} files flushed and read back, ${bad.length} differences`);
      for (const b of bad) out('  ' + b);
      back.reset();
      await back.flush();
      back.close();
      idb.close();
      if (bad.length && code === 0) code = 1;
    }
    self.postMessage({ done: true, code });
  } catch (e) {
    self.postMessage({ done: true, error: String(e && e.stack ? e.stack : e) });
  }
};

function compareStores(a, b) {
  const bad = [];
  const names = a.names();
  if (JSON.stringify(names) !== JSON.stringify(b.names())) bad.push(`names ${names} vs ${b.names()}`);
  for (const n of names) {
    const fa = a.byName.get(n), fb = b.byName.get(n);
    if (!fb) continue;
    if (fa.size !== fb.size) bad.push(`${n}: size ${fa.size} vs ${fb.size}`);
    const va = new Uint8Array(fa.size), vb = new Uint8Array(fb.size);
    a.read(fa.id, va, 0);
    b.read(fb.id, vb, 0);
    if (va.some((x, i) => x !== vb[i])) bad.push(`${n}: bytes differ`);
  }
  return bad;
}
