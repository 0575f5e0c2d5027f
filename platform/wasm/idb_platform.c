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
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "em_platforms.h"
#include "error.h"
#include "platform.h"

/* ---- the JavaScript side (idb_platform.js) ----------------------------- */

/* File id (a "slot") of path (opening adds a reference), or a negative CAIRN_*
 * code. */
extern int cairn_idb_js_open(const char *path, int create, int excl);
/* Drop a reference taken by open; a nameless slot with none left is freed. */
extern void cairn_idb_js_unref(int slot);
/* Bytes read (short at the end of the file), or a negative CAIRN_* code. */
extern int cairn_idb_js_read(int slot, void *buf, size_t n, double off);
extern int cairn_idb_js_write(int slot, const void *buf, size_t n, double off);
extern int cairn_idb_js_flush(int slot);
/* Size in bytes of the cairn file, or a negative CAIRN_* code. */
extern double cairn_idb_js_size(int slot);
extern int cairn_idb_js_truncate(int slot, double size);
extern int cairn_idb_js_remove(const char *path);
extern int cairn_idb_js_rename(const char *from, const char *to);
extern void cairn_idb_js_reset(void);
/* Tests: power loss (forget everything IndexedDB does not hold); make the
 * n-th flush from now fail (its transaction aborted). */
extern int cairn_idb_js_crash(void);
extern int cairn_idb_js_fail_flush(int n);
/* Copy the message of the last failure (NUL-terminated) into buf. */
extern void cairn_idb_js_errmsg(char *buf, size_t cap);

/* Offsets go to JavaScript as double: exact below 2^53. */
#define MAX_OFFSET ((uint64_t)1 << 52)

typedef struct idb_file {
  cairn_file base; /* first, so a cairn_file * is an idb_file * */
  int slot;
  unsigned flags;
  int lock;
  char *path;
} idb_file;

/* Lock counts per file id. */
typedef struct slot_locks {
  int shared;
  int exclusive;
} slot_locks;

static slot_locks *locks;
static int nlocks;

static int js_fail(int rc, const char *what, const char *path) {
  char msg[512];
  cairn_idb_js_errmsg(msg, sizeof msg);
  return cairn__seterr(rc, "idb %s %s: %s", what, path ? path : "", msg);
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

static int idb_read(cairn_file *f, void *buf, size_t n, uint64_t off) {
  idb_file *of = (idb_file *)f;
  if (!of || (!buf && n))
    return cairn__seterr(CAIRN_INVALID, "idb read: NULL handle or buffer");
  if (n == 0)
    return CAIRN_OK;
  if (off >= MAX_OFFSET) {
    memset(buf, 0, n);
    return CAIRN_OK;
  }
  int got = cairn_idb_js_read(of->slot, buf, n, (double)off);
  if (got < 0)
    return js_fail(got, "read", of->path);
  if ((size_t)got < n)
    memset((unsigned char *)buf + got, 0, n - (size_t)got);
  return CAIRN_OK;
}

static int idb_write(cairn_file *f, const void *buf, size_t n, uint64_t off) {
  idb_file *of = (idb_file *)f;
  if (!of || (!buf && n))
    return cairn__seterr(CAIRN_INVALID, "idb write: NULL handle or buffer");
  if (of->flags & CAIRN_PF_RDONLY)
    return cairn__seterr(CAIRN_IO,
                         "write idb file %s at offset %llu: file is open "
                         "read-only",
                         of->path, (unsigned long long)off);
  if (n == 0)
    return CAIRN_OK;
  if (off > MAX_OFFSET - n)
    return cairn__seterr(CAIRN_NOSPC,
                         "write idb file %s: offset %llu + %zu is past the "
                         "largest supported file size",
                         of->path, (unsigned long long)off, n);
  int rc = cairn_idb_js_write(of->slot, buf, n, (double)off);
  return rc < 0 ? js_fail(rc, "write", of->path) : CAIRN_OK;
}

static int idb_sync(cairn_file *f) {
  idb_file *of = (idb_file *)f;
  if (!of)
    return cairn__seterr(CAIRN_INVALID, "idb sync: NULL handle");
  int rc = cairn_idb_js_flush(of->slot); /* checks the store is healthy */
  return rc < 0 ? js_fail(rc, "sync", of->path) : CAIRN_OK;
}

static int idb_size(cairn_file *f, uint64_t *out) {
  idb_file *of = (idb_file *)f;
  if (!of || !out)
    return cairn__seterr(CAIRN_INVALID, "idb size: NULL argument");
  double s = cairn_idb_js_size(of->slot);
  if (s < 0)
    return js_fail((int)s, "size", of->path);
  *out = (uint64_t)s;
  return CAIRN_OK;
}

static int idb_truncate(cairn_file *f, uint64_t size) {
  idb_file *of = (idb_file *)f;
  if (!of)
    return cairn__seterr(CAIRN_INVALID, "idb truncate: NULL handle");
  if (of->flags & CAIRN_PF_RDONLY)
    return cairn__seterr(CAIRN_IO,
                         "truncate idb file %s to %llu: file is open "
                         "read-only",
                         of->path, (unsigned long long)size);
  if (size > MAX_OFFSET)
    return cairn__seterr(CAIRN_NOSPC,
                         "truncate idb file %s to %llu: past the largest "
                         "supported file size",
                         of->path, (unsigned long long)size);
  int rc = cairn_idb_js_truncate(of->slot, (double)size);
  return rc < 0 ? js_fail(rc, "truncate", of->path) : CAIRN_OK;
}

static void release_lock(idb_file *of) {
  slot_locks *l = &locks[of->slot];
  if (of->lock == CAIRN_LOCK_SHARED)
    l->shared--;
  else if (of->lock == CAIRN_LOCK_EXCLUSIVE)
    l->exclusive--;
  of->lock = CAIRN_LOCK_NONE;
}

/* flock semantics per open handle (see platform_memory.c). */
static int idb_lock(cairn_file *f, int mode) {
  idb_file *of = (idb_file *)f;
  if (!of)
    return cairn__seterr(CAIRN_INVALID, "idb lock: NULL handle");
  if (mode != CAIRN_LOCK_NONE && mode != CAIRN_LOCK_SHARED &&
      mode != CAIRN_LOCK_EXCLUSIVE)
    return cairn__seterr(CAIRN_INVALID, "lock idb file %s: bad mode %d",
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
                         "idb file %s)",
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

static void idb_close(cairn_file *f) {
  idb_file *of = (idb_file *)f;
  if (!of)
    return;
  release_lock(of);
  cairn_idb_js_unref(of->slot);
  free(of->path);
  free(of);
}

static const cairn_file_methods idb_methods = {
    idb_read, idb_write, idb_sync, idb_size,  idb_truncate,
    idb_lock, NULL,      NULL,     idb_close,
};

static int bad_path(const char *op, const char *path) {
  return cairn__seterr(CAIRN_INVALID, "idb %s: %s path", op,
                       path ? "empty" : "NULL");
}

static int idb_open(cairn_platform *p, const char *path, unsigned flags,
                    cairn_file **out) {
  (void)p;
  if (!out)
    return cairn__seterr(CAIRN_INVALID, "idb open: NULL out pointer");
  *out = NULL;
  if (!path || !path[0])
    return bad_path("open", path);
  size_t len = strlen(path);
  idb_file *of = calloc(1, sizeof *of);
  char *copy = malloc(len + 1);
  if (!of || !copy) {
    free(of);
    free(copy);
    return cairn__seterr(CAIRN_NOMEM, "open idb file %s: out of memory", path);
  }
  memcpy(copy, path, len + 1);
  int slot = cairn_idb_js_open(path, (flags & CAIRN_PF_CREATE) != 0,
                               (flags & CAIRN_PF_EXCL) != 0);
  if (slot < 0) {
    free(of);
    free(copy);
    return js_fail(slot, "open", path);
  }
  if (!locks_of(slot)) {
    cairn_idb_js_unref(slot);
    free(of);
    free(copy);
    return cairn__seterr(CAIRN_NOMEM, "open idb file %s: out of memory", path);
  }
  of->base.methods = &idb_methods;
  of->slot = slot;
  of->flags = flags;
  of->path = copy;
  *out = &of->base;
  return CAIRN_OK;
}

static int idb_remove(cairn_platform *p, const char *path) {
  (void)p;
  if (!path || !path[0])
    return bad_path("remove", path);
  int rc = cairn_idb_js_remove(path);
  return rc < 0 ? js_fail(rc, "remove", path) : CAIRN_OK;
}

static int idb_rename_noreplace(cairn_platform *p, const char *from,
                                const char *to) {
  (void)p;
  if (!from || !from[0])
    return bad_path("rename", from);
  if (!to || !to[0])
    return bad_path("rename", to);
  int rc = cairn_idb_js_rename(from, to);
  return rc < 0 ? js_fail(rc, "rename", from) : CAIRN_OK;
}

static int idb_sync_dir(cairn_platform *p, const char *path) {
  (void)p;
  if (!path)
    return bad_path("sync_dir", path);
  int rc = cairn_idb_js_flush(-1); /* names go with the chunks */
  return rc < 0 ? js_fail(rc, "sync_dir", path) : CAIRN_OK;
}

static cairn_platform idb_platform = {
    "idb", idb_open, idb_remove, idb_rename_noreplace, idb_sync_dir, NULL,
};

cairn_platform *cairn_platform_idb(void) { return &idb_platform; }

void cairn_platform_idb_reset(void) { cairn_idb_js_reset(); }

int cairn_platform_idb_crash(void) {
  free(locks);
  locks = NULL;
  nlocks = 0;
  int rc = cairn_idb_js_crash();
  return rc < 0 ? js_fail(rc, "crash", "") : CAIRN_OK;
}

void cairn_platform_idb_fail_flush(int n) { cairn_idb_js_fail_flush(n); }
