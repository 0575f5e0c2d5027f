/*
 * em_platforms.h — the browser platforms of an Emscripten build.
 *
 *   "opfs"  files of the Origin Private File System through synchronous
 *           access handles (opfs_platform.c + opfs_platform.js). Only in a
 *           dedicated Worker, and only for names under a pool that the
 *           JavaScript side opened before the engine runs
 *           (web/src/opfs-pool.js).
 *   "idb"   files as 4 KiB chunk records in IndexedDB behind a bounded
 *           cache; misses and syncs wait for IndexedDB through JSPI, one
 *           IndexedDB transaction per sync (idb_platform.c +
 *           idb_platform.js + web/src/idb-store.js, web/src/jspi.js).
 *
 * Both are registered by core/platform.c in Emscripten builds. The host
 * default stays "memory": the browser platforms need JavaScript set-up.
 */
#ifndef CAIRN_EM_PLATFORMS_H
#define CAIRN_EM_PLATFORMS_H

#include "platform.h"

cairn_platform *cairn_platform_opfs(void);

/* Remove every file of every OPFS pool / of the IndexedDB store (tests only).
 * Open handles keep working on their now nameless files, as with
 * cairn_platform_memory_reset. */
void cairn_platform_opfs_reset(void);

cairn_platform *cairn_platform_idb(void);
void cairn_platform_idb_reset(void);
/* Tests of the idb platform: simulate power loss (everything not in a
 * completed IndexedDB transaction is forgotten, the file table is read back;
 * open handles and databases must be abandoned, not closed), and make the
 * n-th flush from now fail with its transaction aborted. */
int cairn_platform_idb_crash(void);
void cairn_platform_idb_fail_flush(int n);

#endif /* CAIRN_EM_PLATFORMS_H */
