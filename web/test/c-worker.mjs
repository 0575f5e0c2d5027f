// c-worker.mjs — runs one C test program (built by the `emscripten` preset)
// in this dedicated Worker, on the platform the driver names. Message in:
// { module, args, env, platform }; messages out: { line } per output line,
// then { done: true, code } or { done: true, error }.
//
// On idb the store runs in 'wait' mode where the browser has JSPI: a bounded
// cache (CAIRN_IDB_CACHE_KIB, default 256 KiB, so the tests really read
// IndexedDB), misses and syncs wait for IndexedDB (the module is instantiated
// through web/src/jspi.js and main() runs as a WebAssembly.promising call).
// A file closed by its last handle drops its cached chunks, so a test that
// reopens a database reads what IndexedDB holds.
import { OpfsRegistry } from '../src/opfs-pool.js';
import { IdbStore } from '../src/idb-store.js';
import { hasJspi, jspiModuleOptions, rawExport } from '../src/jspi.js';

self.onmessage = async (ev) => {
  const { module, args = [], env = {}, platform = 'memory' } = ev.data;
  const out = (line) => self.postMessage({ line });
  let registry = null;
  let idb = null;
  try {
    if (platform === 'idb') {
      const cacheBytes = Number(env.CAIRN_IDB_CACHE_KIB || 256) * 1024;
      // IndexedDB durability 'relaxed' unless CAIRN_IDB_STRICT=1: power loss is
      // simulated at the store (em_test_idb_crash.c), not below the browser,
      // and thousands of fsyncs would make the suite slow.
      const durability = env.CAIRN_IDB_STRICT === '1' ? 'strict' : 'relaxed';
      idb = await IdbStore.open('cairn-c-tests', { mode: hasJspi ? 'wait' : 'preload', cacheBytes, durability });
      idb.reset(); // leftovers of an earlier run
      await idb.flush();
      out(`idb store: mode ${idb.mode}, cache ${idb.cacheBytes} bytes, durability ${durability}`);
    }
    if (platform === 'opfs') {
      registry = new OpfsRegistry();
      await registry.openPool('cairn-c-tests', { prefix: '', minSlots: 96 });
      registry.reset(); // leftovers of an earlier run
    }
    const factory = (await import(module)).default;
    const jspi = idb && idb.mode === 'wait';
    let instFail;
    const failed = new Promise((_, reject) => (instFail = reject));
    const M = await Promise.race([
      failed,
      factory({
      ...(jspi ? jspiModuleOptions(module.replace(/\.mjs$/, '.wasm'), instFail) : {}),
      print: out,
      printErr: out,
      cairnOpfs: registry,
      cairnIdb: idb,
      preRun: [
        (mod) => {
          Object.assign(mod.ENV, env, { CAIRN_BROWSER_PLATFORM: platform });
        },
      ],
      }),
    ]);
    let code = jspi ? await runMainJspi(M) : M.callMain(args);
    if (registry) {
      registry.reset();
      for (const p of [...registry.pools]) registry.closePool(p);
    }
    if (idb) {
      // Persist what the program left and read it back from IndexedDB.
      await idb.flush();
      const back = await IdbStore.open('cairn-c-tests', { mode: 'preload' });
      const bad = await compareStores(idb, back);
      const m = idb.memory();
      out(
        `idb persistence: ${idb.names().length} files flushed and read back, ${bad.length} differences; ` +
          `store: ${m.flushes} flushes, ${m.fetches} fetches (${m.fetchedChunks} chunks), peak ${m.peakBytes} bytes in memory`,
      );
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

// main() as a WebAssembly.promising call: the engine may wait for IndexedDB.
// exit() inside the program throws Emscripten's ExitStatus through it.
async function runMainJspi(M) {
  const main = WebAssembly.promising(rawExport(M, '_main'));
  try {
    return await main(0, 0);
  } catch (e) {
    if (e && e.name === 'ExitStatus') return e.status;
    throw e;
  }
}

async function readAll(s, f) {
  const M = { HEAPU8: new Uint8Array(f.size) };
  await s.read(f.id, M, 0, f.size, 0);
  return M.HEAPU8;
}

async function compareStores(a, b) {
  const bad = [];
  const names = a.names();
  if (JSON.stringify(names) !== JSON.stringify(b.names())) bad.push(`names ${names} vs ${b.names()}`);
  for (const n of names) {
    const fa = a.byName.get(n), fb = b.byName.get(n);
    if (!fb) continue;
    if (fa.size !== fb.size) bad.push(`${n}: size ${fa.size} vs ${fb.size}`);
    const va = await readAll(a, fa), vb = await readAll(b, fb);
    if (va.some((x, i) => x !== vb[i])) bad.push(`${n}: bytes differ`);
  }
  return bad;
}
