// jspi.js — lets the engine wait for IndexedDB without Asyncify, through
// JSPI (WebAssembly.Suspending / WebAssembly.promising; Chromium >= 137).
//
// Emscripten 3.1.6 knows nothing of JSPI, so we instantiate its module
// ourselves (Module.instantiateWasm): the imports of the idb platform that may
// return a Promise (idb_platform.js) are wrapped in WebAssembly.Suspending;
// promisingExports() then gives the exports that can reach them as
// WebAssembly.promising functions (they return a Promise; the wasm stack is
// suspended while the import's Promise is pending). A Suspending import that
// returns a plain value (a cache hit) does not suspend.
//
// While one such call is suspended, nothing else may enter the module (it
// has one shadow stack): callers serialise their calls (worker.js: `engine`).

export const hasJspi =
  typeof WebAssembly !== 'undefined' &&
  typeof WebAssembly.Suspending === 'function' &&
  typeof WebAssembly.promising === 'function';

// Library functions (by their JavaScript name) that may return a Promise.
const SUSPENDING = new Set([
  '_cairn_idb_js_read',
  '_cairn_idb_js_write',
  '_cairn_idb_js_flush',
  '_cairn_idb_js_truncate',
  '_cairn_idb_js_crash',
]);

// Module options for an Emscripten factory: instantiate wasmUrl with the
// idb imports wrapped. onError receives an instantiation failure.
export function jspiModuleOptions(wasmUrl, onError) {
  return {
    cairnJspi: true,
    instantiateWasm(info, receiveInstance) {
      const imports = {};
      for (const [mod, obj] of Object.entries(info)) {
        imports[mod] = {};
        for (const [k, v] of Object.entries(obj))
          imports[mod][k] = typeof v === 'function' && SUSPENDING.has(v.name) ? new WebAssembly.Suspending(v) : v;
      }
      WebAssembly.instantiateStreaming(fetch(wasmUrl, { credentials: 'same-origin' }), imports)
        .then(({ instance, module }) => receiveInstance(instance, module))
        .catch((e) => onError(e));
      return {};
    },
  };
}

// The raw wasm export behind Module[name] ('_em_get'): Emscripten's wrapper
// names the (minified) export in its source until its first call, after
// which Module[name] is the export itself.
export function rawExport(M, name) {
  const f = M[name];
  if (typeof f !== 'function') throw new Error(`no export ${name}`);
  for (const k of Object.keys(M.asm)) if (M.asm[k] === f) return f;
  const m = /\["asm"\]\["([^"]+)"\]/.exec(Function.prototype.toString.call(f));
  if (!m || typeof M.asm[m[1]] !== 'function') throw new Error(`cannot find the wasm export of ${name}`);
  return M.asm[m[1]];
}

// { name: promising(export) } for the names given.
export function promisingExports(M, names) {
  const out = {};
  for (const n of names) out[n] = WebAssembly.promising(rawExport(M, n));
  return out;
}
