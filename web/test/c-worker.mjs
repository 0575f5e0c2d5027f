// c-worker.mjs — runs one C test program (built by the `emscripten` preset)
// in this dedicated Worker, on the platform the driver names. Message in:
// { module, args, env, platform }; messages out: { line } per output line,
// then { done: true, code } or { done: true, error }.
import { OpfsRegistry } from '../src/opfs-pool.js';

self.onmessage = async (ev) => {
  const { module, args = [], env = {}, platform = 'memory' } = ev.data;
  const out = (line) => self.postMessage({ line });
  let registry = null;
  try {
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
      preRun: [
        (mod) => {
          Object.assign(mod.ENV, env, { CAIRN_BROWSER_PLATFORM: platform });
        },
      ],
    });
    const code = M.callMain(args);
    if (registry) {
      registry.reset();
      for (const p of [...registry.pools]) registry.closePool(p);
    }
    self.postMessage({ done: true, code });
  } catch (e) {
    self.postMessage({ done: true, error: String(e && e.stack ? e.stack : e) });
  }
};
