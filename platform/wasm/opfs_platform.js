// opfs_platform.js — the JavaScript half of the "opfs" platform
// (opfs_platform.c), linked with --js-library. Every function is a thin,
// synchronous call into the pool registry that the Worker put in
// Module.cairnOpfs before the engine ran (web/src/opfs-pool.js,
// class OpfsRegistry); returns follow the C side: >= 0 success, else a
// negative CAIRN_* code with the message kept for cairn_opfs_js_errmsg.
//
// Never keep a HEAPU8 view across a call that may grow memory: each view
// here is made and used inside one call that allocates nothing on the heap.

mergeInto(LibraryManager.library, {
  $cairnOpfsReg: function () {
    var r = Module['cairnOpfs'];
    if (!r) {
      Module['cairnOpfsLastError'] =
        'no OPFS pool is open in this Worker (open one with OpfsRegistry before the engine runs)';
      return null;
    }
    return r;
  },
  $cairnOpfsCall__deps: ['$cairnOpfsReg'],
  $cairnOpfsCall: function (fn) {
    var r = cairnOpfsReg();
    if (!r) return -15; // CAIRN_NOTSUPP
    try {
      return fn(r);
    } catch (e) {
      Module['cairnOpfsLastError'] = (e && e.name ? e.name + ': ' : '') + (e && e.message ? e.message : String(e));
      if (e && e.cairnCode) return e.cairnCode;
      if (e && e.name === 'QuotaExceededError') return -6; // CAIRN_NOSPC
      return -5; // CAIRN_IO
    }
  },

  cairn_opfs_js_open__deps: ['$cairnOpfsCall'],
  cairn_opfs_js_open: function (path, create, excl) {
    var name = UTF8ToString(path);
    return cairnOpfsCall(function (r) { return r.open(name, !!create, !!excl); });
  },
  cairn_opfs_js_unref__deps: ['$cairnOpfsCall'],
  cairn_opfs_js_unref: function (slot) {
    cairnOpfsCall(function (r) { r.unref(slot); return 0; });
  },
  cairn_opfs_js_read__deps: ['$cairnOpfsCall'],
  cairn_opfs_js_read: function (slot, buf, n, off) {
    return cairnOpfsCall(function (r) { return r.read(slot, HEAPU8.subarray(buf, buf + n), off); });
  },
  cairn_opfs_js_write__deps: ['$cairnOpfsCall'],
  cairn_opfs_js_write: function (slot, buf, n, off) {
    return cairnOpfsCall(function (r) { return r.write(slot, HEAPU8.subarray(buf, buf + n), off); });
  },
  cairn_opfs_js_flush__deps: ['$cairnOpfsCall'],
  cairn_opfs_js_flush: function (slot) {
    return cairnOpfsCall(function (r) { r.flush(slot); return 0; });
  },
  cairn_opfs_js_size__deps: ['$cairnOpfsCall'],
  cairn_opfs_js_size: function (slot) {
    return cairnOpfsCall(function (r) { return r.size(slot); });
  },
  cairn_opfs_js_truncate__deps: ['$cairnOpfsCall'],
  cairn_opfs_js_truncate: function (slot, size) {
    return cairnOpfsCall(function (r) { r.truncate(slot, size); return 0; });
  },
  cairn_opfs_js_remove__deps: ['$cairnOpfsCall'],
  cairn_opfs_js_remove: function (path) {
    var name = UTF8ToString(path);
    return cairnOpfsCall(function (r) { return r.remove(name); });
  },
  cairn_opfs_js_rename__deps: ['$cairnOpfsCall'],
  cairn_opfs_js_rename: function (from, to) {
    var a = UTF8ToString(from), b = UTF8ToString(to);
    return cairnOpfsCall(function (r) { return r.rename(a, b); });
  },
  cairn_opfs_js_reset__deps: ['$cairnOpfsCall'],
  cairn_opfs_js_reset: function () {
    cairnOpfsCall(function (r) { r.reset(); return 0; });
  },
  cairn_opfs_js_errmsg: function (buf, cap) {
    var m = Module['cairnOpfsLastError'] || 'unknown OPFS error';
    stringToUTF8(m, buf, cap);
  },
});
