// copy-engine.mjs — put the engine module built by the `emscripten` CMake
// preset (BUILD/web/cairn-engine.{mjs,wasm}) into web/dist/, where
// src/index.js loads it from by default, for packaging (npm pack) or for
// serving web/ as it is.
//
//   npm run build -- [BUILD_DIR]     (default ../build/emscripten)
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const web = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const build = path.resolve(process.argv[2] || path.join(web, '..', 'build', 'emscripten'));
const dist = path.join(web, 'dist');
fs.mkdirSync(dist, { recursive: true });
for (const f of ['cairn-engine.mjs', 'cairn-engine.wasm']) {
  const src = path.join(build, 'web', f);
  if (!fs.existsSync(src)) {
    console.error(`${src} is missing: cmake --preset emscripten && cmake --build build/emscripten first`);
    process.exit(1);
  }
  fs.copyFileSync(src, path.join(dist, f));
  console.log(`${path.relative(web, path.join(dist, f))} <- ${src}`);
}
