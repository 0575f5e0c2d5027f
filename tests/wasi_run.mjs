// tests/wasi_run.mjs — run a wasm32-wasi command module under Node's built-in
// WASI (preview1), the way ctest runs every test of the `wasi` preset.
//
//   node --no-warnings --no-turbo-fast-api-calls tests/wasi_run.mjs program.wasm [args...]
//
// (--no-turbo-fast-api-calls: without it Node's WASI calls can corrupt V8's
// heap when they trigger a GC, nodejs/node#46777; see cmake/wasi.cmake.)
//
// What the module sees, and the wasmtime command line that gives it the same:
//   - the current directory, preopened as "." (relative paths work);
//     wasmtime: --dir=.
//   - every argument that is an absolute path of an existing host file or
//     directory: its directory preopened under the same absolute path (so a
//     seed corpus or a database given by full path opens unchanged), plus
//     the directories in CAIRN_WASI_DIRS (colon-separated);
//     wasmtime: --dir=/that/dir (wasmtime >= 14; older: --mapdir=/d::/d)
//   - the environment variables whose names start with CAIRN_ (scale knobs,
//     seeds); wasmtime: --env CAIRN_TEST_SCALE=0.1
// The exit status is the module's; a trap (abort(), unreachable, out of
// bounds) prints the error and exits 134 like an abort on a native host.
import { WASI } from 'node:wasi';
import { readFileSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

const [file, ...args] = process.argv.slice(2);
if (!file) {
  process.stderr.write('usage: node wasi_run.mjs program.wasm [args...]\n');
  process.exit(2);
}

function isDir(p) {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

const preopens = { '.': process.cwd() };
const extra = (process.env.CAIRN_WASI_DIRS || '').split(':').filter(Boolean);
for (const a of args) {
  if (!a.startsWith('/')) continue;
  if (isDir(a)) extra.push(a);
  else if (isDir(dirname(a))) extra.push(dirname(a));
}
for (const d of extra) {
  const abs = resolve(d);
  if (isDir(abs)) preopens[abs] = abs;
}

const env = {};
for (const [k, v] of Object.entries(process.env))
  if (k.startsWith('CAIRN_')) env[k] = v;

const wasi = new WASI({
  version: 'preview1',
  args: [file.replace(/^.*\//, ''), ...args],
  env,
  preopens,
  returnOnExit: true,
});

try {
  const module = await WebAssembly.compile(readFileSync(file));
  const instance = await WebAssembly.instantiate(module, {
    wasi_snapshot_preview1: wasi.wasiImport,
  });
  process.exitCode = wasi.start(instance);
} catch (err) {
  process.stdout.write(''); // keep ordering with what the module printed
  process.stderr.write(`wasi_run: ${file}: ${err && err.stack ? err.stack : err}\n`);
  process.exitCode = 134;
}
