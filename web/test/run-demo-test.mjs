// run-demo-test.mjs — clicks through the demo page (web/demo) in headless
// Chromium: imports a header chain, looks a header up by height and by hash,
// reloads and checks the chain is still there, and saves a screenshot.
//
//   node web/test/run-demo-test.mjs BUILD_DIR [SCREENSHOT.png]
import path from 'node:path';
import fs from 'node:fs';
import os from 'node:os';
import { chromium } from 'playwright-core';
import { serve, CHROMIUM, CHROMIUM_ARGS } from './serve.mjs';

const buildDir = path.resolve(process.argv[2] || 'build/emscripten');
const shot = path.resolve(process.argv[3] || path.join(buildDir, 'demo.png'));
const { server, origin } = await serve({ buildDir });
const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-demo-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, viewport: { width: 1000, height: 900 },
});
const failures = [];
const expect = (cond, what) => cond || failures.push(what);
try {
  const page = await context.newPage();
  page.on('pageerror', (e) => failures.push('page error: ' + e));
  await page.goto(`${origin}/web/demo/index.html`);
  await page.waitForSelector('#status:has-text("tip height -1")');
  expect((await page.textContent('#status')).includes('open on opfs'), 'opens on OPFS by default');
  await page.fill('#count', '3000');
  await page.click('#import');
  await page.waitForSelector('#import-status:has-text("imported 3000 headers")', { timeout: 120000 });
  expect((await page.getAttribute('#progress', 'value')) === '3000', 'progress bar full');
  await page.fill('#height', '1234');
  await page.click('#by-height');
  await page.waitForSelector('#height-out:has-text("height 1234")');
  const hash = await page.inputValue('#hash');
  expect(/^[0-9a-f]{64}$/.test(hash), `hash filled in: ${hash}`);
  await page.click('#by-hash');
  await page.waitForSelector('#hash-out:has-text("height")');
  expect((await page.textContent('#hash-out')).trim() === 'height 1234', 'hash -> height 1234');
  // The header at 1235 links back to 1234's hash.
  await page.fill('#height', '1235');
  await page.click('#by-height');
  await page.waitForSelector('#height-out:has-text("height 1235")');
  expect((await page.textContent('#height-out')).includes(`prev   ${hash}`), 'header chain links by hash');
  // Reload: the chain is still there.
  await page.reload();
  await page.waitForSelector('#status:has-text("tip height 2999")', { timeout: 30000 });
  const stats = await page.textContent('#stats');
  expect(stats.includes('entries in headers3000'), `stats after reload: ${stats}`);
  expect(stats.includes('entries in by-hash3000'), `stats after reload: ${stats}`);
  await page.fill('#height', '2999');
  await page.click('#by-height');
  await page.waitForSelector('#height-out:has-text("height 2999")');
  await page.screenshot({ path: shot, fullPage: true });
  expect(fs.statSync(shot).size > 10000, 'screenshot written');
} catch (e) {
  failures.push(String(e));
} finally {
  await context.close();
  server.close();
  fs.rmSync(profile, { recursive: true, force: true });
}
for (const f of failures) console.log('  - ' + f);
console.log(`demo test: ${failures.length ? 'FAIL' : 'PASS'} (screenshot ${shot})`);
process.exit(failures.length ? 1 : 0);
