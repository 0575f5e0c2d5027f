/*
 * opfs_platform.c — the "opfs" platform: cairn files in the browser's Origin
 * Private File System, read and written through synchronous access handles
 * (FileSystemSyncAccessHandle) from a dedicated Worker.
 *
 * Creating a sync access handle is asynchronous, and the engine's platform
 * calls are synchronous, so files live in a pool, as in sqlite-wasm's
 * opfs-sahpool VFS: before the engine runs, JavaScript (web/src/opfs-pool.js)
 * opens a directory of slot files and a sync access handle on each. Every
 * slot file starts with a 4096-byte header naming the cairn file it holds
 * (or none); the cairn file's bytes follow, so the database's pages stay
 * 4096-aligned in the slot. Opening, creating, renaming and removing a cairn
 * file are then synchronous header updates, and reads, writes, flush, size
 * and truncate map one to one onto the handle (opfs_platform.js).
 *
 * Durability: write() reaches the OPFS file; sync() is handle.flush(). A
 * header change (create, rename, remove) is flushed before it returns, so
 * sync_dir has nothing left to do. A slot whose header is torn by a crash
 * reads as free (the header carries a checksum of the name).
 *
 * Locks: the pool's directory belongs to one Worker (a second
 * createSyncAccessHandle on a file fails, and the JS package holds a Web Lock
 * per database). Within that Worker, locks are per open handle with flock
 * semantics, kept here per slot, exactly like the memory platform.
 *
 * Names: a removed file whose handles are still open keeps its slot (nameless)
 * until the last handle closes, like an unlinked inode; then the slot is
 * truncated and free again.
 */
#include "em_platforms.h"

#define EM_SLOT opfs
#define EM_SLOT_NAME "opfs"
#define EM_SLOT_SYNC_DIR_FLUSHES 0
#include "em_slot_platform.h"

cairn_platform *cairn_platform_opfs(void) { return &slot_platform; }

void cairn_platform_opfs_reset(void) { cairn_opfs_js_reset(); }
