// run-c-suite.mjs — the C test suite (unit, model-based, crash simulation,
// ...) compiled by the `emscripten` CMake preset, run in headless Chromium,
// each test program in a fresh dedicated Worker, on each browser platform.
//
//   node web/test/run-c-suite.mjs BUILD_DIR [--platform memory,opfs,idb] [--only test_api,...] [--skip test_x,...]
//
// A test passes when its main() returns 0 (the C checks print every failure).
// Environment passed to the programs: CAIRN_TEST_SCALE (if set; on idb a
// fifth of it, or CAIRN_IDB_TEST_SCALE).
import path from 'node:path';
import fs from 'node:fs';
import { chromium } from 'playwright-core';
import { serve, CHROMIUM, CHROMIUM_ARGS } from './serve.mjs';

const argv = process.argv.slice(2);
const buildDir = path.resolve(argv[0] || 'build/emscripten');
const opt = (name, def) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : def;
};
const platforms = opt('--platform', 'memory,opfs,idb').split(',');
const only = opt('--only', '');
const skip = opt('--skip', '').split(',').filter(Boolean);
const perTestLimitMs = Number(process.env.CAIRN_BROWSER_TEST_LIMIT_S || 1200) * 1000;

// Which programs run on which platform. The crash test runs on the fault
// platform whatever the host, so once is enough; concurrency needs threads
// (the single-threaded build runs its sequential part) and runs once too.
// test_em_idb_crash (platform/wasm/em_test_idb_crash.c) simulates power
// loss on the IndexedDB store itself: idb only.
const ON_STORAGE = /^test_(api|platform|model|corrupt|backup|wal)$/;
const PER_PLATFORM = {
  memory: /^test_(?!em_)/ /* all but the browser platforms' own */,
  opfs: ON_STORAGE,
  idb: /^test_(api|platform|model|corrupt|backup|wal|em_idb_crash)$/,
};

const testsDir = path.join(buildDir, 'tests');
let tests = fs
  .readdirSync(testsDir)
  .filter((f) => /^test_\w+\.mjs$/.test(f))
  .map((f) => f.replace(/\.mjs$/, ''))
  .sort();
if (only) tests = tests.filter((t) => only.split(',').includes(t));
if (skip.length) console.log(`skipped: ${skip.join(', ')}`);
tests = tests.filter((t) => !skip.includes(t));
if (!tests.length) {
  console.error(`no test programs in ${testsDir}`);
  process.exit(1);
}

const env = {};
if (process.env.CAIRN_TEST_SCALE) env.CAIRN_TEST_SCALE = process.env.CAIRN_TEST_SCALE;
// On idb every sync is a real IndexedDB transaction (a few ms each) and the
// cache is small, so the programs run at a fifth of the scale there unless
// CAIRN_IDB_TEST_SCALE says otherwise.
const idbScale = process.env.CAIRN_IDB_TEST_SCALE || String(Number(process.env.CAIRN_TEST_SCALE || 1) / 5);

const { server, origin } = await serve({ buildDir });
const userDataDir = fs.mkdtempSync('/tmp/cairn-chromium-');
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath: CHROMIUM,
  headless: true,
  args: CHROMIUM_ARGS,
});
let failed = 0,
  passed = 0;
const results = [];
try {
  const page = await context.newPage();
  await page.goto(`${origin}/web/test/blank.html`);
  await page.exposeFunction('cairnLine', (line) => {
    if (process.env.CAIRN_BROWSER_VERBOSE) console.log('  | ' + line);
    lastLines.push(line);
    if (lastLines.length > 400) lastLines.shift();
  });
  var lastLines = [];
  for (const platform of platforms) {
    const re = PER_PLATFORM[platform];
    for (const t of tests) {
      if (re && !re.test(t)) continue;
      lastLines = [];
      const t0 = Date.now();
      const res = await page.evaluate(
        ({ module, env, platform, limit }) =>
          new Promise((resolve) => {
            const w = new Worker('/web/test/c-worker.mjs', { type: 'module' });
            const timer = setTimeout(() => {
              w.terminate();
              resolve({ error: `still running after ${limit / 1000} s: stopped` });
            }, limit);
            w.onmessage = (ev) => {
              if (ev.data.line !== undefined) window.cairnLine(ev.data.line);
              if (ev.data.done) {
                clearTimeout(timer);
                w.terminate();
                resolve(ev.data);
              }
            };
            w.onerror = (e) => {
              clearTimeout(timer);
              w.terminate();
              resolve({ error: 'worker error: ' + (e.message || e) });
            };
            w.postMessage({ module, env, platform });
          }),
        {
          module: `/build/tests/${t}.mjs`,
          env: platform === 'idb' ? { ...env, CAIRN_TEST_SCALE: idbScale } : env,
          platform,
          limit: perTestLimitMs,
        },
      );
      // Let the last output lines arrive before judging.
      await page.waitForTimeout(50);
      const secs = ((Date.now() - t0) / 1000).toFixed(1);
      const ok = res.code === 0 && !res.error;
      const summary = lastLines.filter((l) => /passed, \d+ failed/.test(l)).pop() || '';
      results.push({ platform, test: t, ok, secs, summary });
      if (ok) passed++;
      else failed++;
      console.log(`${ok ? 'PASS' : 'FAIL'} ${platform.padEnd(6)} ${t.padEnd(18)} ${secs.padStart(6)} s  ${summary}`);
      if (!ok) {
        console.log(res.error ? res.error : `exit code ${res.code}`);
        for (const l of lastLines.slice(-60)) console.log('  | ' + l);
      }
    }
  }
} finally {
  await context.close();
  server.close();
  fs.rmSync(userDataDir, { recursive: true, force: true });
}
console.log(`browser C suite: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
