// fill-idb.mjs — by hand, not in CI: fill an IndexedDB database to SIZE MiB
// (default 1100, i.e. > 1 GiB) through the package with bounded memory
// (web/test/api-tests.js `bounded`: 2 MiB chunk cache, 256-page engine cache,
// checkpoints every 4 MiB), then reopen it in a fresh Worker after a page
// reload and verify every entry (scan) plus random gets; prints times, the
// wasm heap and the store's peak memory. Needs ~2.5x SIZE of free disk.
//
//   node web/test/fill-idb.mjs BUILD_DIR [SIZE_MIB]
import path from 'node:path';
import fs from 'node:fs';
import os from 'node:os';
import { chromium } from 'playwright-core';
import { serve, CHROMIUM, CHROMIUM_ARGS, REPO_DIR } from './serve.mjs';

const buildDir = path.resolve(process.argv[2] || path.join(REPO_DIR, 'build/emscripten'));
const sizeMiB = Number(process.argv[3] || 1100);
const { server, origin } = await serve({ buildDir });
const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-fill-'));
const context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
let failed = 0;
try {
  const page = await context.newPage();
  await page.goto(`${origin}/web/test/blank.html`);
  const call = (fn, ...args) =>
    page.evaluate(async ([fn, args]) => (await import('/web/test/api-tests.js'))[fn](...args), [fn, args]);
  await call('wipe', 'indexeddb', 'fill');
  for (const phase of ['write', 'read']) {
    if (phase === 'read') await page.reload();
    const t0 = Date.now();
    const r = await call('bounded', phase, sizeMiB, 'fill');
    const du = execDu(profile);
    console.log(
      `${r.failures.length ? 'FAIL' : 'PASS'} ${phase} ${sizeMiB} MiB: ${((Date.now() - t0) / 1000).toFixed(1)} s, ` +
        `${JSON.stringify(r.info)}, profile on disk ${du}`,
    );
    for (const f of r.failures) console.log('  - ' + f);
    if (r.failures.length) failed++;
  }
  await call('wipe', 'indexeddb', 'fill');
} finally {
  await context.close();
  server.close();
  fs.rmSync(profile, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);

function execDu(dir) {
  let total = 0;
  const walk = (d) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) total += fs.statSync(p).size;
    }
  };
  walk(dir);
  return `${(total / 1048576).toFixed(0)} MiB`;
}
