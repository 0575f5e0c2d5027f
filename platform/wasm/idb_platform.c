/*
 * idb_platform.c — the "idb" platform: cairn files persisted in IndexedDB,
 * for browsing contexts without OPFS sync access handles.
 *
 * Every call here is a call into the chunk store of web/src/idb-store.js
 * (class IdbStore, through idb_platform.js): files as 4096-byte chunk
 * records, a bounded cache of them in JavaScript memory.
 *
 * IndexedDB is asynchronous. Where the browser has JSPI, the store runs in
 * 'wait' mode: a read that misses the cache, a partial write of a chunk not
 * in memory, sync() and sync_dir() return a Promise from JavaScript and the
 * engine's call is suspended until it settles (web/src/jspi.js wraps these
 * imports in WebAssembly.Suspending and the exports in
 * WebAssembly.promising). sync() writes everything changed since the last
 * flush in ONE IndexedDB readwrite transaction (durability "strict") and
 * returns when it completed, so a cairn commit (log append + one sync) is
 * one transaction, durable when it completes. Without JSPI the store runs in
 * 'preload' mode: every chunk is read at open, calls never wait, sync() is
 * a no-op and the Worker flushes after each commit.
 *
 * A flush that fails poisons the store (every later call is CAIRN_IO) until
 * the database is reopened.
 *
 * Locks: one Worker owns a database (a Web Lock per name, see worker.js);
 * within it locks are per open handle with flock semantics, per file id.
 */
#include "em_platforms.h"

#define EM_SLOT idb
#define EM_SLOT_NAME "idb"
#define EM_SLOT_SYNC_DIR_FLUSHES 1
#include "em_slot_platform.h"

/* Tests: power loss (forget everything IndexedDB does not hold); make the
 * n-th flush from now fail (its transaction aborted). */
extern int cairn_idb_js_crash(void);
extern int cairn_idb_js_fail_flush(int n);

cairn_platform *cairn_platform_idb(void) { return &slot_platform; }

void cairn_platform_idb_reset(void) { cairn_idb_js_reset(); }

int cairn_platform_idb_crash(void) {
  free(locks);
  locks = NULL;
  nlocks = 0;
  int rc = cairn_idb_js_crash();
  return rc < 0 ? js_fail(rc, "crash", "") : CAIRN_OK;
}

void cairn_platform_idb_fail_flush(int n) { cairn_idb_js_fail_flush(n); }
