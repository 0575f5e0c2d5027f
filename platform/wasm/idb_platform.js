// idb_platform.js — the JavaScript half of the "idb" platform
// (idb_platform.c), linked with --js-library. Every function is a thin call
// into the IdbStore that the Worker put in Module.cairnIdb before the engine
// ran (web/src/idb-store.js). Returns follow the C side: >= 0 success, else a
// negative CAIRN_* code with the message kept for cairn_idb_js_errmsg.
//
// In the store's 'wait' mode, read, write, truncate, flush and crash may
// return a Promise (a cache miss, a flush): web/src/jspi.js wraps exactly
// these imports in WebAssembly.Suspending when it instantiates the module
// (Module.cairnJspi is then true), and the caller's export in
// WebAssembly.promising, so the engine waits without Asyncify.

mergeInto(LibraryManager.library, {
  $cairnIdbReg: function () {
    var r = Module['cairnIdb'];
    if (!r) {
      Module['cairnIdbLastError'] =
        'no IndexedDB store is open in this Worker (open one with IdbStore.open before the engine runs)';
      return null;
    }
    return r;
  },
  $cairnIdbFail: function (e) {
    Module['cairnIdbLastError'] = (e && e.name ? e.name + ': ' : '') + (e && e.message ? e.message : String(e));
    if (e && e.cairnCode) return e.cairnCode;
    if (e && e.name === 'QuotaExceededError') return -6; // CAIRN_NOSPC
    return -5; // CAIRN_IO
  },
  $cairnIdbCall__deps: ['$cairnIdbReg', '$cairnIdbFail'],
  $cairnIdbCall: function (fn) {
    var r = cairnIdbReg();
    if (!r) return -15; // CAIRN_NOTSUPP
    var v;
    try {
      v = fn(r);
    } catch (e) {
      return cairnIdbFail(e);
    }
    if (v && typeof v.then === 'function') {
      if (!Module['cairnJspi']) {
        v.catch(function () {});
        return cairnIdbFail(new Error('the store must wait for IndexedDB but this module was not instantiated with JSPI (web/src/jspi.js)'));
      }
      return v.then(function (x) { return x; }, cairnIdbFail);
    }
    return v;
  },

  cairn_idb_js_open__deps: ['$cairnIdbCall'],
  cairn_idb_js_open: function (path, create, excl) {
    var name = UTF8ToString(path);
    return cairnIdbCall(function (r) { return r.open(name, !!create, !!excl); });
  },
  cairn_idb_js_unref__deps: ['$cairnIdbCall'],
  cairn_idb_js_unref: function (slot) {
    cairnIdbCall(function (r) { r.unref(slot); return 0; });
  },
  cairn_idb_js_read__deps: ['$cairnIdbCall'],
  cairn_idb_js_read: function (slot, buf, n, off) {
    return cairnIdbCall(function (r) { return r.read(slot, Module, buf, n, off); });
  },
  cairn_idb_js_write__deps: ['$cairnIdbCall'],
  cairn_idb_js_write: function (slot, buf, n, off) {
    return cairnIdbCall(function (r) { return r.write(slot, Module, buf, n, off); });
  },
  cairn_idb_js_flush__deps: ['$cairnIdbCall'],
  cairn_idb_js_flush: function (slot) {
    return cairnIdbCall(function (r) { return r.flushCall(slot); });
  },
  cairn_idb_js_size__deps: ['$cairnIdbCall'],
  cairn_idb_js_size: function (slot) {
    return cairnIdbCall(function (r) { return r.size(slot); });
  },
  cairn_idb_js_truncate__deps: ['$cairnIdbCall'],
  cairn_idb_js_truncate: function (slot, size) {
    return cairnIdbCall(function (r) { return r.truncate(slot, size); });
  },
  cairn_idb_js_remove__deps: ['$cairnIdbCall'],
  cairn_idb_js_remove: function (path) {
    var name = UTF8ToString(path);
    return cairnIdbCall(function (r) { return r.remove(name); });
  },
  cairn_idb_js_rename__deps: ['$cairnIdbCall'],
  cairn_idb_js_rename: function (from, to) {
    var a = UTF8ToString(from), b = UTF8ToString(to);
    return cairnIdbCall(function (r) { return r.rename(a, b); });
  },
  cairn_idb_js_reset__deps: ['$cairnIdbCall'],
  cairn_idb_js_reset: function () {
    cairnIdbCall(function (r) { r.reset(); return 0; });
  },
  // Tests (em_test_idb_crash.c): power loss, and a flush that fails.
  cairn_idb_js_crash__deps: ['$cairnIdbCall'],
  cairn_idb_js_crash: function () {
    return cairnIdbCall(function (r) { return r.crash(); });
  },
  cairn_idb_js_fail_flush__deps: ['$cairnIdbCall'],
  cairn_idb_js_fail_flush: function (n) {
    return cairnIdbCall(function (r) { r.failAt = n; return 0; });
  },
  cairn_idb_js_errmsg: function (buf, cap) {
    var m = Module['cairnIdbLastError'] || 'unknown IndexedDB store error';
    stringToUTF8(m, buf, cap);
  },
});
