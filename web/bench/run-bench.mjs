// run-bench.mjs — browser benchmarks B1-B3 (shared/BENCH.md) in headless
// Chromium: cairn on OPFS and on IndexedDB against the official sqlite-wasm
// (opfs-sahpool VFS) and browser-level (IndexedDB), in the same run, each
// engine in its own dedicated Worker. Prints a table with ratios.
//
//   node web/bench/run-bench.mjs BUILD_DIR [--scale S] [--repeat R] [--engines a,b]
//   (N = 100,000 x S; R interleaved rounds, medians reported)
//
// BUILD_DIR is the `emscripten` preset's build (it holds web/cairn-engine.*).
import path from 'node:path';
import fs from 'node:fs';
import os from 'node:os';
import { execFileSync } from 'node:child_process';
import { chromium } from 'playwright-core';
import { serve, CHROMIUM, CHROMIUM_ARGS, WEB_DIR } from '../test/serve.mjs';

const argv = process.argv.slice(2);
const buildDir = path.resolve(argv[0] || 'build/emscripten');
const si = argv.indexOf('--scale');
const scale = si >= 0 ? Number(argv[si + 1]) : 1;
const N = Math.max(1000, Math.round(100000 * scale));
const ENGINES = ['cairn-opfs', 'sqlite-opfs', 'cairn-idb', 'browser-level', 'cairn-idb-preload'];
const ei = argv.indexOf('--engines');
// cairn-idb-preload (the IndexedDB store's other design) only when named.
const RUN = ei >= 0 ? argv[ei + 1].split(',') : ENGINES.slice(0, 4);

// browser-level is CommonJS: bundle it as one ES module for the Worker.
execFileSync(path.join(WEB_DIR, 'node_modules/.bin/esbuild'), [
  path.join(WEB_DIR, 'bench/bl-entry.js'), '--bundle', '--format=esm', '--platform=browser',
  '--log-level=warning', `--outfile=${path.join(buildDir, 'web/browser-level.js')}`,
]);

const { server, origin } = await serve({ buildDir });
const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-bench-'));
const context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
const ri = argv.indexOf('--repeat');
const REPEAT = ri >= 0 ? Number(argv[ri + 1]) : 1;
const runs = Object.fromEntries(ENGINES.map((e) => [e, { b1: [], b2: [], b3: [] }]));
const runIn = (page, engine, phase) =>
  page.evaluate(
    ({ engine, phase, n }) =>
      new Promise((resolve) => {
        const w = new Worker('/web/bench/bench-worker.js', { type: 'module' });
        w.onmessage = (ev) => {
          w.terminate();
          resolve(ev.data);
        };
        w.onerror = (e) => {
          w.terminate();
          resolve({ engine, error: e.message });
        };
        w.postMessage({ engine, phase, n });
      }),
    { engine, phase, n: N },
  );
try {
  const page = await context.newPage();
  await page.goto(`${origin}/web/test/blank.html`);
  // Engines interleaved, round after round; the table shows medians.
  for (let round = 0; round < REPEAT; round++) {
    for (const e of RUN) {
      const r = await runIn(page, e, 'load');
      if (r.error) throw new Error(`${e}: ${r.error}`);
      if (r.b2_wrong) throw new Error(`${e}: ${r.b2_wrong} gets returned a wrong value`);
      runs[e].b1.push(r.b1);
      runs[e].b2.push(r.b2);
      console.error(`round ${round + 1} ${e}: B1 ${r.b1.toFixed(0)} puts/s, B2 ${r.b2.toFixed(0)} gets/s`);
    }
    await page.reload();
    for (const e of RUN) {
      const r = await runIn(page, e, 'reread');
      if (r.error) throw new Error(`${e}: ${r.error}`);
      if (r.b3_entries !== N) throw new Error(`${e}: read back ${r.b3_entries} of ${N} entries`);
      runs[e].b3.push(r.b3);
      console.error(`round ${round + 1} ${e}: B3 ${r.b3.toFixed(0)} entries/s`);
    }
  }
} finally {
  await context.close();
  server.close();
  fs.rmSync(profile, { recursive: true, force: true });
}
const median = (a) => {
  if (!a.length) return undefined;
  const s = [...a].sort((x, y) => x - y);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const results = Object.fromEntries(ENGINES.map((e) => [e, { b1: median(runs[e].b1), b2: median(runs[e].b2), b3: median(runs[e].b3) }]));

const fmt = (x) => (x === undefined ? '-' : x >= 1000 ? `${(x / 1000).toFixed(1)} k` : x.toFixed(0)).padStart(9);
const ratio = (a, b) => (a === undefined || b === undefined ? '-' : `${(a / b).toFixed(2)}x`).padStart(8);
const chromiumVersion = execFileSync(CHROMIUM, ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
console.log(`cairn browser benchmarks, N = ${N} (scale ${scale}), median of ${REPEAT} interleaved run(s), ${chromiumVersion}, headless, dedicated Workers`);
console.log(`load average at the end: ${os.loadavg().map((x) => x.toFixed(1)).join(' ')} on ${os.cpus().length} CPUs`);
console.log('rates per second; ratio = cairn / peer on the same storage (OPFS: sqlite-wasm opfs-sahpool; IndexedDB: browser-level)');
console.log('');
console.log('| workload | cairn-opfs | sqlite-opfs | ratio | cairn-idb | browser-level | ratio |');
console.log('|---|---:|---:|---:|---:|---:|---:|');
const rows = [
  ['B1 bulk load, 1000 puts/commit, durable (puts/s)', 'b1'],
  ['B2 random gets (gets/s)', 'b2'],
  ['B3 reload, reopen, read all (entries/s)', 'b3'],
];
for (const [label, k] of rows) {
  const r = results;
  console.log(
    `| ${label} | ${fmt(r['cairn-opfs'][k])} | ${fmt(r['sqlite-opfs'][k])} | ${ratio(r['cairn-opfs'][k], r['sqlite-opfs'][k])} | ` +
      `${fmt(r['cairn-idb'][k])} | ${fmt(r['browser-level'][k])} | ${ratio(r['cairn-idb'][k], r['browser-level'][k])} |`,
  );
}
if (RUN.includes('cairn-idb-preload')) {
  console.log('');
  console.log('IndexedDB store designs: wait = bounded cache, engine suspended (JSPI) on a miss and at sync; preload = every chunk in memory, flush after commit');
  console.log('| workload | cairn-idb (wait) | cairn-idb-preload | wait / preload |');
  console.log('|---|---:|---:|---:|');
  for (const [label, k] of rows) {
    const r = results;
    console.log(`| ${label} | ${fmt(r['cairn-idb'][k])} | ${fmt(r['cairn-idb-preload'][k])} | ${ratio(r['cairn-idb'][k], r['cairn-idb-preload'][k])} |`);
  }
}
console.log('');
console.log('Targets (issue 6): OPFS >= 3x on B1 and >= 2x on B2 vs sqlite-wasm opfs-sahpool; IndexedDB >= 5x on B1 vs browser-level.');
console.log('cairn commits to IndexedDB with durability "strict"; browser-level uses the browser default durability.');
