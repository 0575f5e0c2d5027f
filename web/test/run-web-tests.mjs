// run-web-tests.mjs — tests of the JS package in headless Chromium:
// the API on every backend (incl. error cases), one owner per database,
// persistence across a page reload and a crashed tab (with the database left
// open: the lock and OPFS handles of the dead page must recover by
// themselves) and across a browser restart with the same profile, and file interchange with the
// native `cairn` CLI in both directions.
//
//   node web/test/run-web-tests.mjs BUILD_DIR NATIVE_CAIRN_CLI
import path from 'node:path';
import fs from 'node:fs';
import os from 'node:os';
import { execFileSync } from 'node:child_process';
import { chromium } from 'playwright-core';
import { serve, CHROMIUM, CHROMIUM_ARGS, REPO_DIR } from './serve.mjs';

const buildDir = path.resolve(process.argv[2] || path.join(REPO_DIR, 'build/emscripten'));
const cli = path.resolve(process.argv[3] || path.join(REPO_DIR, 'build/release/cairn'));
const BACKENDS = ['memory', 'opfs', 'indexeddb'];
const PERSISTENT = ['opfs', 'indexeddb'];

let passed = 0,
  failed = 0;
function report(what, r) {
  const ok = r.failures.length === 0;
  if (ok) passed++;
  else failed++;
  console.log(`${ok ? 'PASS' : 'FAIL'} ${what} (${r.checks} checks)${r.info ? ' ' + JSON.stringify(r.info) : ''}`);
  for (const f of r.failures) console.log('  - ' + f);
}

const { server, origin } = await serve({ buildDir });
const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-chromium-'));
const launch = () => chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-web-'));

async function newPage(context) {
  const page = await context.newPage();
  page.on('pageerror', (e) => console.log('page error: ' + e));
  await page.goto(`${origin}/web/test/blank.html`);
  return page;
}
const call = (page, fn, ...args) =>
  page.evaluate(async ([fn, args]) => (await import('/web/test/api-tests.js'))[fn](...args), [fn, args]);

let context = await launch();
try {
  let page = await newPage(context);
  for (const b of PERSISTENT) {
    for (const n of [`persist-${b}`, `excl-${b}`, 'exported', 'imported']) await call(page, 'wipe', b, n);
  }

  for (const b of BACKENDS) report(`api on ${b}`, await call(page, 'basics', b));
  for (const b of PERSISTENT) report(`one owner per database on ${b}`, await call(page, 'exclusive', b));

  // More than one load page of IndexedDB records (and a bigger OPFS file).
  for (const b of PERSISTENT) {
    await call(page, 'wipe', b, 'large');
    report(`${b}: 24 MiB database written`, await call(page, 'large', b, 'write'));
    report(`${b}: 24 MiB database reopened and read back`, await call(page, 'large', b, 'read'));
  }

  // IndexedDB with bounded memory: a database far beyond what the Worker
  // holds, reopened in a fresh Worker and read back (CAIRN_BROWSER_BOUNDED_MIB).
  const bmib = Number(process.env.CAIRN_BROWSER_BOUNDED_MIB || 64);
  await call(page, 'wipe', 'indexeddb', 'bounded');
  report(`indexeddb: ${bmib} MiB database written with bounded memory`, await call(page, 'bounded', 'write', bmib));
  report(`indexeddb: ${bmib} MiB database reopened and read back with bounded memory`, await call(page, 'bounded', 'read', bmib));
  await call(page, 'wipe', 'indexeddb', 'bounded');

  // Reload with the databases still open: locks and handles must recover.
  for (const b of PERSISTENT) report(`${b}: write, leave open`, await call(page, 'persist', b, 'write', 'reload', true));
  await page.reload();
  for (const b of PERSISTENT) report(`${b}: data after page reload (stale lock recovered)`, await call(page, 'persist', b, 'read', 'reload'));

  // A crashed tab (renderer killed with the databases open): a new tab recovers.
  for (const b of PERSISTENT) report(`${b}: write, leave open, then the tab crashes`, await call(page, 'persist', b, 'write', 'crash', true));
  // SIGKILL every renderer process of this browser (found by our unique profile directory).
  const renderers = execFileSync('ps', ['-eo', 'pid=,args='], { encoding: 'utf8' })
    .split('\n')
    .filter((l) => l.includes('--type=renderer') && l.includes(profile))
    .map((l) => Number(l.trim().split(/\s+/)[0]));
  if (!renderers.length) throw new Error('no renderer process found to kill');
  for (const pid of renderers) process.kill(pid, 'SIGKILL');
  await page.close().catch(() => {});
  page = await newPage(context);
  for (const b of PERSISTENT) report(`${b}: data in a new tab after a crashed tab`, await call(page, 'persist', b, 'read', 'crash'));

  // Browser restart with the same profile.
  for (const b of PERSISTENT) report(`${b}: write before restart`, await call(page, 'persist', b, 'write', 'restart'));
  await context.close();
  context = await launch();
  page = await newPage(context);
  for (const b of PERSISTENT) report(`${b}: data after browser restart`, await call(page, 'persist', b, 'read', 'restart'));

  // Export in the browser -> the native CLI opens it.
  for (const b of PERSISTENT) {
    const bytes = Buffer.from(await call(page, 'exportDb', b, 'exported'), 'hex');
    const file = path.join(tmp, `exported-${b}.db`);
    fs.writeFileSync(file, bytes);
    const failures = [];
    const run = (...a) => execFileSync(cli, a, { encoding: 'utf8' });
    try {
      run('check', file);
      const v = run('get', file, 'h/000999').trim();
      if (v !== 'header 999') failures.push(`native get h/000999: ${v}`);
      const r = run('get', file, '--cf', 'receipts', 'r1').trim();
      if (r !== 'receipt one') failures.push(`native get --cf receipts r1: ${r}`);
      const lines = run('scan', file, '--prefix', 'h/').trim().split('\n');
      if (lines.length !== 1000) failures.push(`native scan: ${lines.length} lines`);
    } catch (e) {
      failures.push(`native cairn failed: ${e.message}`);
    }
    report(`${b}: export() opens with the native cairn CLI`, { failures, checks: 4 });
  }

  // A native file -> import() in the browser.
  const nfile = path.join(tmp, 'native.db');
  execFileSync(cli, ['put', nfile, 'native-key', 'native value']);
  execFileSync(cli, ['cf', nfile, 'create', 'blocks']);
  execFileSync(cli, ['put', nfile, '--cf', 'blocks', '0x00000001', 'block one']);
  const nbytes = fs.readFileSync(nfile).toString('hex');
  for (const b of BACKENDS) {
    const r = await call(page, 'importDb', b, 'imported', nbytes);
    if (JSON.stringify(r.native) !== JSON.stringify([['native-key', 'native value']]))
      r.failures.push(`imported content: ${JSON.stringify(r.native)}`);
    r.checks++;
    report(`${b}: import() of a native database`, r);
  }
} finally {
  await context.close();
  server.close();
  fs.rmSync(profile, { recursive: true, force: true });
  fs.rmSync(tmp, { recursive: true, force: true });
}
console.log(`browser JS tests: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
