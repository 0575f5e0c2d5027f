/*
 * em_slot_platform.h — the body shared by the two browser platforms whose
 * files live behind a JavaScript object addressed by small integer "slots":
 * "opfs" (opfs_platform.c: slot files of an OPFS pool) and "idb"
 * (idb_platform.c: the IndexedDB chunk store). Not a normal header: each of
 * those files defines, then includes it once (its functions are static):
 *
 *   #define EM_SLOT idb               the JS functions are cairn_idb_js_*
 *   #define EM_SLOT_NAME "idb"        the platform's name (and in messages)
 *   #define EM_SLOT_SYNC_DIR_FLUSHES 1   sync_dir() flushes (else a no-op)
 *   #include "em_slot_platform.h"
 *
 * It declares the JavaScript functions (NAME_platform.js, --js-library) and
 * defines the file methods, flock-semantics locks per slot and per open
 * handle (like the memory platform), open/remove/rename/sync_dir, and
 * `static cairn_platform slot_platform`. The C calls the JavaScript imports
 * directly (no function pointers to them), so the JSPI wrapping of the idb
 * imports (web/src/jspi.js) sees plain calls.
 */
#ifndef EM_SLOT
#error "define EM_SLOT, EM_SLOT_NAME and EM_SLOT_SYNC_DIR_FLUSHES first"
#endif

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "platform.h"

#define EM_CAT_(a, b) a##b
#define EM_CAT(a, b) EM_CAT_(a, b)
#define EM_JS_FN(fn) EM_CAT(EM_CAT(cairn_, EM_SLOT), EM_CAT(_js_, fn))

/* ---- the JavaScript side (NAME_platform.js) ---------------------------- */

/* Slot (file id) of path (opening adds a reference), or a negative CAIRN_*
 * code. */
extern int EM_JS_FN(open)(const char *path, int create, int excl);
/* Drop a reference taken by open; a nameless slot with none left is freed. */
extern void EM_JS_FN(unref)(int slot);
/* Bytes read (short at the end of the file), or a negative CAIRN_* code. */
extern int EM_JS_FN(read)(int slot, void *buf, size_t n, double off);
extern int EM_JS_FN(write)(int slot, const void *buf, size_t n, double off);
extern int EM_JS_FN(flush)(int slot);
/* Size in bytes of the cairn file, or a negative CAIRN_* code. */
extern double EM_JS_FN(size)(int slot);
extern int EM_JS_FN(truncate)(int slot, double size);
extern int EM_JS_FN(remove)(const char *path);
extern int EM_JS_FN(rename)(const char *from, const char *to);
extern void EM_JS_FN(reset)(void);
/* Copy the message of the last failure (NUL-terminated) into buf. */
extern void EM_JS_FN(errmsg)(char *buf, size_t cap);

/* Offsets go to JavaScript as double: exact below 2^53. */
#define MAX_OFFSET ((uint64_t)1 << 52)

typedef struct slot_file {
  cairn_file base; /* first, so a cairn_file * is an slot_file * */
  int slot;
  unsigned flags;
  int lock;
  char *path;
} slot_file;

/* Lock counts per slot, indexed by slot number. */
typedef struct slot_locks {
  int shared;
  int exclusive;
} slot_locks;

static slot_locks *locks;
static int nlocks;

static int js_fail(int rc, const char *what, const char *path) {
  char msg[512];
  EM_JS_FN(errmsg)(msg, sizeof msg);
  return cairn__seterr(rc, EM_SLOT_NAME " %s %s: %s", what, path ? path : "",
                       msg);
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

static int slot_read(cairn_file *f, void *buf, size_t n, uint64_t off) {
  slot_file *of = (slot_file *)f;
  if (!of || (!buf && n))
    return cairn__seterr(CAIRN_INVALID,
                         EM_SLOT_NAME " read: NULL handle or buffer");
  if (n == 0)
    return CAIRN_OK;
  if (off >= MAX_OFFSET) {
    memset(buf, 0, n);
    return CAIRN_OK;
  }
  int got = EM_JS_FN(read)(of->slot, buf, n, (double)off);
  if (got < 0)
    return js_fail(got, "read", of->path);
  if ((size_t)got < n)
    memset((unsigned char *)buf + got, 0, n - (size_t)got);
  return CAIRN_OK;
}

static int slot_write(cairn_file *f, const void *buf, size_t n, uint64_t off) {
  slot_file *of = (slot_file *)f;
  if (!of || (!buf && n))
    return cairn__seterr(CAIRN_INVALID,
                         EM_SLOT_NAME " write: NULL handle or buffer");
  if (of->flags & CAIRN_PF_RDONLY)
    return cairn__seterr(CAIRN_IO,
                         "write " EM_SLOT_NAME
                         " file %s at offset %llu: file is open "
                         "read-only",
                         of->path, (unsigned long long)off);
  if (n == 0)
    return CAIRN_OK;
  if (off > MAX_OFFSET - n)
    return cairn__seterr(CAIRN_NOSPC,
                         "write " EM_SLOT_NAME
                         " file %s: offset %llu + %zu is past the "
                         "largest supported file size",
                         of->path, (unsigned long long)off, n);
  int rc = EM_JS_FN(write)(of->slot, buf, n, (double)off);
  return rc < 0 ? js_fail(rc, "write", of->path) : CAIRN_OK;
}

static int slot_sync(cairn_file *f) {
  slot_file *of = (slot_file *)f;
  if (!of)
    return cairn__seterr(CAIRN_INVALID, EM_SLOT_NAME " sync: NULL handle");
  int rc = EM_JS_FN(flush)(of->slot); /* checks the store is healthy */
  return rc < 0 ? js_fail(rc, "sync", of->path) : CAIRN_OK;
}

static int slot_size(cairn_file *f, uint64_t *out) {
  slot_file *of = (slot_file *)f;
  if (!of || !out)
    return cairn__seterr(CAIRN_INVALID, EM_SLOT_NAME " size: NULL argument");
  double s = EM_JS_FN(size)(of->slot);
  if (s < 0)
    return js_fail((int)s, "size", of->path);
  *out = (uint64_t)s;
  return CAIRN_OK;
}

static int slot_truncate(cairn_file *f, uint64_t size) {
  slot_file *of = (slot_file *)f;
  if (!of)
    return cairn__seterr(CAIRN_INVALID, EM_SLOT_NAME " truncate: NULL handle");
  if (of->flags & CAIRN_PF_RDONLY)
    return cairn__seterr(CAIRN_IO,
                         "truncate " EM_SLOT_NAME
                         " file %s to %llu: file is open "
                         "read-only",
                         of->path, (unsigned long long)size);
  if (size > MAX_OFFSET)
    return cairn__seterr(CAIRN_NOSPC,
                         "truncate " EM_SLOT_NAME
                         " file %s to %llu: past the largest "
                         "supported file size",
                         of->path, (unsigned long long)size);
  int rc = EM_JS_FN(truncate)(of->slot, (double)size);
  return rc < 0 ? js_fail(rc, "truncate", of->path) : CAIRN_OK;
}

static void release_lock(slot_file *of) {
  slot_locks *l = &locks[of->slot];
  if (of->lock == CAIRN_LOCK_SHARED)
    l->shared--;
  else if (of->lock == CAIRN_LOCK_EXCLUSIVE)
    l->exclusive--;
  of->lock = CAIRN_LOCK_NONE;
}

/* flock semantics per open handle (see platform_memory.c). */
static int slot_lock(cairn_file *f, int mode) {
  slot_file *of = (slot_file *)f;
  if (!of)
    return cairn__seterr(CAIRN_INVALID, EM_SLOT_NAME " lock: NULL handle");
  if (mode != CAIRN_LOCK_NONE && mode != CAIRN_LOCK_SHARED &&
      mode != CAIRN_LOCK_EXCLUSIVE)
    return cairn__seterr(CAIRN_INVALID,
                         "lock " EM_SLOT_NAME " file %s: bad mode %d", of->path,
                         mode);
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
    return cairn__seterr(
        CAIRN_BUSY,
        "database is locked by another handle (%s lock on " EM_SLOT_NAME
        " file %s)",
        mode == CAIRN_LOCK_EXCLUSIVE ? "exclusive" : "shared", of->path);
  release_lock(of);
  if (mode == CAIRN_LOCK_SHARED)
    l->shared++;
  else
    l->exclusive++;
  of->lock = mode;
  return CAIRN_OK;
}

static void slot_close(cairn_file *f) {
  slot_file *of = (slot_file *)f;
  if (!of)
    return;
  release_lock(of);
  EM_JS_FN(unref)(of->slot);
  free(of->path);
  free(of);
}

static const cairn_file_methods slot_methods = {
    slot_read, slot_write, slot_sync,  slot_size, slot_truncate, slot_lock,
    NULL,      NULL,       slot_close, NULL,      NULL,          NULL,
};

static int bad_path(const char *op, const char *path) {
  return cairn__seterr(CAIRN_INVALID, EM_SLOT_NAME " %s: %s path", op,
                       path ? "empty" : "NULL");
}

static int slot_open(cairn_platform *p, const char *path, unsigned flags,
                     cairn_file **out) {
  (void)p;
  if (!out)
    return cairn__seterr(CAIRN_INVALID, EM_SLOT_NAME " open: NULL out pointer");
  *out = NULL;
  if (!path || !path[0])
    return bad_path("open", path);
  size_t len = strlen(path);
  slot_file *of = calloc(1, sizeof *of);
  char *copy = malloc(len + 1);
  if (!of || !copy) {
    free(of);
    free(copy);
    return cairn__seterr(CAIRN_NOMEM,
                         "open " EM_SLOT_NAME " file %s: out of memory", path);
  }
  memcpy(copy, path, len + 1);
  int slot = EM_JS_FN(open)(path, (flags & CAIRN_PF_CREATE) != 0,
                            (flags & CAIRN_PF_EXCL) != 0);
  if (slot < 0) {
    free(of);
    free(copy);
    return js_fail(slot, "open", path);
  }
  if (!locks_of(slot)) {
    EM_JS_FN(unref)(slot);
    free(of);
    free(copy);
    return cairn__seterr(CAIRN_NOMEM,
                         "open " EM_SLOT_NAME " file %s: out of memory", path);
  }
  of->base.methods = &slot_methods;
  of->slot = slot;
  of->flags = flags;
  of->path = copy;
  *out = &of->base;
  return CAIRN_OK;
}

static int slot_remove(cairn_platform *p, const char *path) {
  (void)p;
  if (!path || !path[0])
    return bad_path("remove", path);
  int rc = EM_JS_FN(remove)(path);
  return rc < 0 ? js_fail(rc, "remove", path) : CAIRN_OK;
}

static int slot_rename_noreplace(cairn_platform *p, const char *from,
                                 const char *to) {
  (void)p;
  if (!from || !from[0])
    return bad_path("rename", from);
  if (!to || !to[0])
    return bad_path("rename", to);
  int rc = EM_JS_FN(rename)(from, to);
  return rc < 0 ? js_fail(rc, "rename", from) : CAIRN_OK;
}

static int slot_sync_dir(cairn_platform *p, const char *path) {
  (void)p;
  if (!path)
    return bad_path("sync_dir", path);
#if EM_SLOT_SYNC_DIR_FLUSHES
  int rc = EM_JS_FN(flush)(-1); /* names go with the next flush: do it */
  return rc < 0 ? js_fail(rc, "sync_dir", path) : CAIRN_OK;
#else
  return CAIRN_OK; /* name changes are durable when they are made */
#endif
}

static cairn_platform slot_platform = {
    EM_SLOT_NAME,          slot_open,     slot_remove,
    slot_rename_noreplace, slot_sync_dir, NULL,
};
