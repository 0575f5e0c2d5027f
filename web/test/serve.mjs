// serve.mjs — a tiny static file server for the browser tests, bench and
// demo, on 127.0.0.1 only. Routes: /web/... -> the web/ folder,
// /build/... -> the Emscripten build directory.
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const WEB_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const REPO_DIR = path.resolve(WEB_DIR, '..');

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
  '.css': 'text/css',
  '.png': 'image/png',
  '.map': 'application/json',
  '.ts': 'text/plain',
};

// Start serving; resolves to { server, origin }. port 0 = any free port.
export function serve({ buildDir, port = 0 } = {}) {
  const roots = { web: WEB_DIR, build: buildDir };
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://127.0.0.1');
    const parts = decodeURIComponent(url.pathname).split('/').filter(Boolean);
    // /web/dist/* is the engine module the build made (BUILD/web/cairn-engine.*).
    const dist = parts[0] === 'web' && parts[1] === 'dist';
    const root = dist ? path.join(buildDir, 'web') : roots[parts[0]];
    const file = root ? path.resolve(root, parts.slice(dist ? 2 : 1).join('/')) : null;
    if (!file || !file.startsWith(root) || !fs.existsSync(file) || fs.statSync(file).isDirectory()) {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found');
      return;
    }
    res.writeHead(200, {
      'content-type': TYPES[path.extname(file)] || 'application/octet-stream',
      'cache-control': 'no-store',
    });
    fs.createReadStream(file).pipe(res);
  });
  return new Promise((resolve, reject) => {
    server.on('error', reject);
    server.listen(port, '127.0.0.1', () => {
      resolve({ server, origin: `http://127.0.0.1:${server.address().port}` });
    });
  });
}

// Chromium as this machine has it (Debian's package; never a downloaded build).
export const CHROMIUM_ARGS = [
  '--headless=new',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
export const CHROMIUM = process.env.CAIRN_CHROMIUM || '/usr/bin/chromium';

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const buildDir = process.env.CAIRN_EM_BUILD || path.join(REPO_DIR, 'build', 'emscripten');
  const port = Number(process.env.PORT || 8080);
  const { origin } = await serve({ buildDir, port });
  console.log(`serving on ${origin} (pid ${process.pid}): ${origin}/web/demo/index.html`);
}
