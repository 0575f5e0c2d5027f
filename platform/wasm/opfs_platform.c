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
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "em_platforms.h"
#include "error.h"
#include "platform.h"

/* ---- the JavaScript side (opfs_platform.js) ----------------------------- */

/* Slot of path (opening adds a reference), or a negative CAIRN_* code. */
extern int cairn_opfs_js_open(const char *path, int create, int excl);
/* Drop a reference taken by open; a nameless slot with none left is freed. */
extern void cairn_opfs_js_unref(int slot);
/* Bytes read (short at the end of the file), or a negative CAIRN_* code. */
extern int cairn_opfs_js_read(int slot, void *buf, size_t n, double off);
extern int cairn_opfs_js_write(int slot, const void *buf, size_t n, double off);
extern int cairn_opfs_js_flush(int slot);
/* Size in bytes of the cairn file, or a negative CAIRN_* code. */
extern double cairn_opfs_js_size(int slot);
extern int cairn_opfs_js_truncate(int slot, double size);
extern int cairn_opfs_js_remove(const char *path);
extern int cairn_opfs_js_rename(const char *from, const char *to);
extern void cairn_opfs_js_reset(void);
/* Copy the message of the last failure (NUL-terminated) into buf. */
extern void cairn_opfs_js_errmsg(char *buf, size_t cap);

/* Offsets go to JavaScript as double: exact below 2^53. */
#define MAX_OFFSET ((uint64_t)1 << 52)

typedef struct opfs_file {
  cairn_file base; /* first, so a cairn_file * is an opfs_file * */
  int slot;
  unsigned flags;
  int lock;
  char *path;
} opfs_file;

/* Lock counts per slot, indexed by slot number. */
typedef struct slot_locks {
  int shared;
  int exclusive;
} slot_locks;

static slot_locks *locks;
static int nlocks;

static int js_fail(int rc, const char *what, const char *path) {
  char msg[512];
  cairn_opfs_js_errmsg(msg, sizeof msg);
  return cairn__seterr(rc, "opfs %s %s: %s", what, path ? path : "", msg);
}

static slot_locks *locks_of(int slot) {
  if (slot >= nlocks) {
    int n = nlocks ? nlocks : 16;
    while (n <= slot)
      n *= 2;
    slot_locks *l = realloc(locks, (size_t)n * sizeof *l);
    if (!l)
      return NULL;
    memset(l + nlocks, 0, (size_t)(n - nlocks) * sizeof *l);
    locks = l;
    nlocks = n;
  }
  return &locks[slot];
}

static int opfs_read(cairn_file *f, void *buf, size_t n, uint64_t off) {
  opfs_file *of = (opfs_file *)f;
  if (!of || (!buf && n))
    return cairn__seterr(CAIRN_INVALID, "opfs read: NULL handle or buffer");
  if (n == 0)
    return CAIRN_OK;
  if (off >= MAX_OFFSET) {
    memset(buf, 0, n);
    return CAIRN_OK;
  }
  int got = cairn_opfs_js_read(of->slot, buf, n, (double)off);
  if (got < 0)
    return js_fail(got, "read", of->path);
  if ((size_t)got < n)
    memset((unsigned char *)buf + got, 0, n - (size_t)got);
  return CAIRN_OK;
}

static int opfs_write(cairn_file *f, const void *buf, size_t n, uint64_t off) {
  opfs_file *of = (opfs_file *)f;
  if (!of || (!buf && n))
    return cairn__seterr(CAIRN_INVALID, "opfs write: NULL handle or buffer");
  if (of->flags & CAIRN_PF_RDONLY)
    return cairn__seterr(CAIRN_IO,
                         "write opfs file %s at offset %llu: file is open "
                         "read-only",
                         of->path, (unsigned long long)off);
  if (n == 0)
    return CAIRN_OK;
  if (off > MAX_OFFSET - n)
    return cairn__seterr(CAIRN_NOSPC,
                         "write opfs file %s: offset %llu + %zu is past the "
                         "largest supported file size",
                         of->path, (unsigned long long)off, n);
  int rc = cairn_opfs_js_write(of->slot, buf, n, (double)off);
  return rc < 0 ? js_fail(rc, "write", of->path) : CAIRN_OK;
}

static int opfs_sync(cairn_file *f) {
  opfs_file *of = (opfs_file *)f;
  if (!of)
    return cairn__seterr(CAIRN_INVALID, "opfs sync: NULL handle");
  int rc = cairn_opfs_js_flush(of->slot);
  return rc < 0 ? js_fail(rc, "flush", of->path) : CAIRN_OK;
}

static int opfs_size(cairn_file *f, uint64_t *out) {
  opfs_file *of = (opfs_file *)f;
  if (!of || !out)
    return cairn__seterr(CAIRN_INVALID, "opfs size: NULL argument");
  double s = cairn_opfs_js_size(of->slot);
  if (s < 0)
    return js_fail((int)s, "size", of->path);
  *out = (uint64_t)s;
  return CAIRN_OK;
}

static int opfs_truncate(cairn_file *f, uint64_t size) {
  opfs_file *of = (opfs_file *)f;
  if (!of)
    return cairn__seterr(CAIRN_INVALID, "opfs truncate: NULL handle");
  if (of->flags & CAIRN_PF_RDONLY)
    return cairn__seterr(CAIRN_IO,
                         "truncate opfs file %s to %llu: file is open "
                         "read-only",
                         of->path, (unsigned long long)size);
  if (size > MAX_OFFSET)
    return cairn__seterr(CAIRN_NOSPC,
                         "truncate opfs file %s to %llu: past the largest "
                         "supported file size",
                         of->path, (unsigned long long)size);
  int rc = cairn_opfs_js_truncate(of->slot, (double)size);
  return rc < 0 ? js_fail(rc, "truncate", of->path) : CAIRN_OK;
}

static void release_lock(opfs_file *of) {
  slot_locks *l = &locks[of->slot];
  if (of->lock == CAIRN_LOCK_SHARED)
    l->shared--;
  else if (of->lock == CAIRN_LOCK_EXCLUSIVE)
    l->exclusive--;
  of->lock = CAIRN_LOCK_NONE;
}

/* flock semantics per open handle (see platform_memory.c). */
static int opfs_lock(cairn_file *f, int mode) {
  opfs_file *of = (opfs_file *)f;
  if (!of)
    return cairn__seterr(CAIRN_INVALID, "opfs lock: NULL handle");
  if (mode != CAIRN_LOCK_NONE && mode != CAIRN_LOCK_SHARED &&
      mode != CAIRN_LOCK_EXCLUSIVE)
    return cairn__seterr(CAIRN_INVALID, "lock opfs file %s: bad mode %d",
                         of->path, mode);
  if (mode == of->lock)
    return CAIRN_OK;
  if (mode == CAIRN_LOCK_NONE) {
    release_lock(of);
    return CAIRN_OK;
  }
  slot_locks *l = &locks[of->slot];
  int other_sh = l->shared - (of->lock == CAIRN_LOCK_SHARED);
  int other_ex = l->exclusive - (of->lock == CAIRN_LOCK_EXCLUSIVE);
  int busy =
      mode == CAIRN_LOCK_EXCLUSIVE ? (other_sh + other_ex > 0) : (other_ex > 0);
  if (busy)
    return cairn__seterr(CAIRN_BUSY,
                         "database is locked by another handle (%s lock on "
                         "opfs file %s)",
                         mode == CAIRN_LOCK_EXCLUSIVE ? "exclusive" : "shared",
                         of->path);
  release_lock(of);
  if (mode == CAIRN_LOCK_SHARED)
    l->shared++;
  else
    l->exclusive++;
  of->lock = mode;
  return CAIRN_OK;
}

static void opfs_close(cairn_file *f) {
  opfs_file *of = (opfs_file *)f;
  if (!of)
    return;
  release_lock(of);
  cairn_opfs_js_unref(of->slot);
  free(of->path);
  free(of);
}

static const cairn_file_methods opfs_methods = {
    opfs_read, opfs_write, opfs_sync, opfs_size,  opfs_truncate,
    opfs_lock, NULL,       NULL,      opfs_close,
};

static int bad_path(const char *op, const char *path) {
  return cairn__seterr(CAIRN_INVALID, "opfs %s: %s path", op,
                       path ? "empty" : "NULL");
}

static int opfs_open(cairn_platform *p, const char *path, unsigned flags,
                     cairn_file **out) {
  (void)p;
  if (!out)
    return cairn__seterr(CAIRN_INVALID, "opfs open: NULL out pointer");
  *out = NULL;
  if (!path || !path[0])
    return bad_path("open", path);
  size_t len = strlen(path);
  opfs_file *of = calloc(1, sizeof *of);
  char *copy = malloc(len + 1);
  if (!of || !copy) {
    free(of);
    free(copy);
    return cairn__seterr(CAIRN_NOMEM, "open opfs file %s: out of memory", path);
  }
  memcpy(copy, path, len + 1);
  int slot = cairn_opfs_js_open(path, (flags & CAIRN_PF_CREATE) != 0,
                                (flags & CAIRN_PF_EXCL) != 0);
  if (slot < 0) {
    free(of);
    free(copy);
    return js_fail(slot, "open", path);
  }
  if (!locks_of(slot)) {
    cairn_opfs_js_unref(slot);
    free(of);
    free(copy);
    return cairn__seterr(CAIRN_NOMEM, "open opfs file %s: out of memory", path);
  }
  of->base.methods = &opfs_methods;
  of->slot = slot;
  of->flags = flags;
  of->path = copy;
  *out = &of->base;
  return CAIRN_OK;
}

static int opfs_remove(cairn_platform *p, const char *path) {
  (void)p;
  if (!path || !path[0])
    return bad_path("remove", path);
  int rc = cairn_opfs_js_remove(path);
  return rc < 0 ? js_fail(rc, "remove", path) : CAIRN_OK;
}

static int opfs_rename_noreplace(cairn_platform *p, const char *from,
                                 const char *to) {
  (void)p;
  if (!from || !from[0])
    return bad_path("rename", from);
  if (!to || !to[0])
    return bad_path("rename", to);
  int rc = cairn_opfs_js_rename(from, to);
  return rc < 0 ? js_fail(rc, "rename", from) : CAIRN_OK;
}

static int opfs_sync_dir(cairn_platform *p, const char *path) {
  (void)p;
  if (!path)
    return bad_path("sync_dir", path);
  return CAIRN_OK; /* header changes are flushed when they are made */
}

static cairn_platform opfs_platform = {
    "opfs", opfs_open, opfs_remove, opfs_rename_noreplace, opfs_sync_dir, NULL,
};

cairn_platform *cairn_platform_opfs(void) { return &opfs_platform; }

void cairn_platform_opfs_reset(void) { cairn_opfs_js_reset(); }
