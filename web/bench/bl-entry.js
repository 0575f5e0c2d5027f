// Bundled by run-bench.mjs with esbuild (browser-level is CommonJS).
export { BrowserLevel } from 'browser-level';
