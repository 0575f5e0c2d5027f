/*
 * em_platforms.h — the browser platforms of an Emscripten build.
 *
 *   "opfs"  files of the Origin Private File System through synchronous
 *           access handles (opfs_platform.c + opfs_platform.js). Only in a
 *           dedicated Worker, and only for names under a pool that the
 *           JavaScript side opened before the engine runs
 * (web/src/opfs-pool.js). "idb"   files kept in memory and persisted to
 * IndexedDB, one IndexedDB transaction per flush (idb_platform.c +
 * idb_platform.js).
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

#endif /* CAIRN_EM_PLATFORMS_H */
