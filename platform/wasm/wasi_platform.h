/*
 * wasi_platform.h — the "wasi" platform (WASI preview1: wasmtime, Node's
 * node:wasi), and what an embedder can do about its lock files.
 *
 * Files are reached through the host's preopened directories; a path must
 * lie inside one (wasmtime --dir=DIR, node:wasi `preopens`).
 *
 * Locking. WASI preview1 has no file locks, so a database "x.db" is guarded
 * by lock files next to it, created with O_EXCL (atomic on every host file
 * system WASI runtimes use):
 *   x.db.lock            the writer (CAIRN_LOCK_EXCLUSIVE)
 *   x.db.lock-r.<owner>  one per read-only open (CAIRN_LOCK_SHARED)
 * Each names its owner: a random id per open handle, the mode, the creation
 * time, and the runtime ("wasi"). A writer creates x.db.lock and then looks
 * for reader files; a reader creates its file and then looks for x.db.lock;
 * whoever finds the other backs out with CAIRN_BUSY (both may back out in a
 * race; neither ever proceeds alongside the other). A writer refreshes the
 * lock file's modification time at most every few seconds when it syncs, so
 * the age of the file says when its owner was last active.
 *
 * Limits, honestly:
 *   - Only cairn programs built for WASI see these files. A native program
 *     (flock in platform/unix) and a WASI one do not exclude each other:
 *     never open one database from both at the same time.
 *   - WASI gives no process ids, so a lock left by a process that crashed or
 *     was killed cannot be told apart from one held by a live process that
 *     is idle. Opening then fails with CAIRN_BUSY and a message naming the
 *     lock file, its owner and age, flagged "probably stale" when the owner
 *     has shown no activity for CAIRN_WASI_STALE_SECONDS. The remedy, once
 *     you know no process uses the database: delete the lock file(s), or
 *     call cairn_wasi_break_lock(). Breaking a live lock lets two writers
 *     corrupt the file, so cairn never does it on its own.
 *   - The lock files live in the database's directory, which must be
 *     writable (also for read-only opens).
 */
#ifndef CAIRN_WASI_PLATFORM_H
#define CAIRN_WASI_PLATFORM_H

#include "platform.h"

/* A lock whose owner has not synced or been created for this long is
 * reported as probably stale (never broken automatically). */
#define CAIRN_WASI_STALE_SECONDS 60

#ifdef __wasi__
/* The "wasi" platform (registered as a built-in under __wasi__). */
cairn_platform *cairn_platform_wasi(void);

/* Remove every lock file of the database at db_path (the writer's and the
 * readers'). Only for recovery after a crash: the caller must know that no
 * process has the database open. CAIRN_OK if at least one was removed,
 * CAIRN_NOTFOUND if there were none. */
int cairn_wasi_break_lock(const char *db_path);
#endif /* __wasi__ */

#endif /* CAIRN_WASI_PLATFORM_H */
