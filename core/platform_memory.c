/*
 * platform_memory.c — the "memory" platform: named files that live in the
 * process, for tests and for hosts without a file system.
 *
 * Files are byte buffers in a process-wide namespace. The model is a Unix
 * file system without crashes: a name refers to a node; removing or renaming
 * a name never disturbs handles already open on the node (they keep it alive,
 * like an unlinked inode), and locks belong to open handles, as with flock.
 * Everything is durable at once, so sync and sync_dir are no-ops, and there
 * is no map (the engine uses its page cache).
 *
 * Invariants and the locks that keep them:
 *   - files_mu guards the namespace (names, the list), every node's refs and
 *     lock counts, and every handle's lock mode.
 *   - node->mu guards the node's bytes (data, size, cap). read() holds it
 *     while copying, so a concurrent write that reallocates the buffer can
 *     never free memory a reader is copying from.
 *   - A node is freed exactly when refs (its name, if any, plus open handles)
 *     drops to zero.
 *   - Bytes in [size, cap) are unspecified; whatever extends size zeroes the
 *     newly covered bytes first.
 * Only portable C11 plus core/threads.h: this file also builds for WASI and
 * Emscripten.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "platform.h"
#include "threads.h"

typedef struct mem_node {
  cairn_mutex mu;
  unsigned char *data;
  size_t size;
  size_t cap;
  /* Below: guarded by files_mu. */
  char *name; /* NULL once removed */
  struct mem_node *next;
  int refs;
  int shared_locks;    /* open handles holding CAIRN_LOCK_SHARED */
  int exclusive_locks; /* 0 or 1 handles holding CAIRN_LOCK_EXCLUSIVE */
} mem_node;

typedef struct mem_file {
  cairn_file base; /* first, so a cairn_file * is a mem_file * */
  mem_node *node;
  unsigned flags;
  int lock;   /* guarded by files_mu */
  char *path; /* the name it was opened by, for messages */
} mem_file;

static cairn_mutex files_mu = CAIRN_MUTEX_INIT;
static mem_node *files; /* the namespace: every node that has a name */

static char *dup_str(const char *s) {
  size_t n = strlen(s) + 1;
  char *d = malloc(n);
  if (d)
    memcpy(d, s, n);
  return d;
}

static mem_node *find_locked(const char *name) {
  for (mem_node *n = files; n; n = n->next)
    if (strcmp(n->name, name) == 0)
      return n;
  return NULL;
}

static void unlink_locked(mem_node *node) {
  for (mem_node **pp = &files; *pp; pp = &(*pp)->next) {
    if (*pp == node) {
      *pp = node->next;
      break;
    }
  }
  node->next = NULL;
}

static void unref_locked(mem_node *node) {
  if (--node->refs > 0)
    return;
  cairn_mutex_destroy(&node->mu);
  free(node->data);
  free(node->name);
  free(node);
}

/* Make room for end bytes (node->mu held). Zero-fills [size, end) so holes
 * and extensions read as zeros; does not change size. */
static int reserve(mem_node *node, uint64_t end, const char *path) {
  if (end > SIZE_MAX)
    return cairn__seterr(CAIRN_NOSPC,
                         "memory file %s: size %llu exceeds what this host "
                         "can hold in memory",
                         path, (unsigned long long)end);
  size_t need = (size_t)end;
  if (need > node->cap) {
    size_t cap = node->cap ? node->cap : 4096;
    while (cap < need)
      cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    unsigned char *d = realloc(node->data, cap);
    if (!d)
      return cairn__seterr(CAIRN_NOMEM,
                           "memory file %s: out of memory growing to %zu "
                           "bytes",
                           path, need);
    node->data = d;
    node->cap = cap;
  }
  if (need > node->size)
    memset(node->data + node->size, 0, need - node->size);
  return CAIRN_OK;
}

static int mem_read(cairn_file *f, void *buf, size_t n, uint64_t off) {
  mem_file *mf = (mem_file *)f;
  if (!mf || (!buf && n))
    return cairn__seterr(CAIRN_INVALID, "memory read: NULL handle or buffer");
  if (n == 0)
    return CAIRN_OK;
  mem_node *node = mf->node;
  unsigned char *out = buf;
  cairn_mutex_lock(&node->mu);
  size_t have = 0;
  if (off < node->size) {
    have = node->size - (size_t)off;
    if (have > n)
      have = n;
    memcpy(out, node->data + off, have);
  }
  cairn_mutex_unlock(&node->mu);
  memset(out + have, 0, n - have);
  return CAIRN_OK;
}

static int mem_write(cairn_file *f, const void *buf, size_t n, uint64_t off) {
  mem_file *mf = (mem_file *)f;
  if (!mf || (!buf && n))
    return cairn__seterr(CAIRN_INVALID, "memory write: NULL handle or buffer");
  if (mf->flags & CAIRN_PF_RDONLY)
    return cairn__seterr(CAIRN_IO,
                         "write memory file %s at offset %llu: file is open "
                         "read-only",
                         mf->path, (unsigned long long)off);
  if (n == 0)
    return CAIRN_OK;
  if (off > UINT64_MAX - n)
    return cairn__seterr(CAIRN_INVALID,
                         "write memory file %s: offset %llu + %zu overflows",
                         mf->path, (unsigned long long)off, n);
  mem_node *node = mf->node;
  cairn_mutex_lock(&node->mu);
  int rc = reserve(node, off + n, mf->path);
  if (rc == CAIRN_OK) {
    memcpy(node->data + off, buf, n);
    if (off + n > node->size)
      node->size = (size_t)(off + n);
  }
  cairn_mutex_unlock(&node->mu);
  return rc;
}

static int mem_sync(cairn_file *f) {
  if (!f)
    return cairn__seterr(CAIRN_INVALID, "memory sync: NULL handle");
  return CAIRN_OK;
}

static int mem_size(cairn_file *f, uint64_t *out) {
  mem_file *mf = (mem_file *)f;
  if (!mf || !out)
    return cairn__seterr(CAIRN_INVALID, "memory size: NULL argument");
  cairn_mutex_lock(&mf->node->mu);
  *out = mf->node->size;
  cairn_mutex_unlock(&mf->node->mu);
  return CAIRN_OK;
}

static int mem_truncate(cairn_file *f, uint64_t size) {
  mem_file *mf = (mem_file *)f;
  if (!mf)
    return cairn__seterr(CAIRN_INVALID, "memory truncate: NULL handle");
  if (mf->flags & CAIRN_PF_RDONLY)
    return cairn__seterr(CAIRN_IO,
                         "truncate memory file %s to %llu: file is open "
                         "read-only",
                         mf->path, (unsigned long long)size);
  mem_node *node = mf->node;
  int rc = CAIRN_OK;
  cairn_mutex_lock(&node->mu);
  if (size > node->size)
    rc = reserve(node, size, mf->path);
  if (rc == CAIRN_OK) {
    node->size = (size_t)size;
    /* Give memory back when a file shrinks a lot (tests truncate often). */
    if (node->cap > 65536 && node->size < node->cap / 4) {
      size_t cap = node->size < 4096 ? 4096 : node->size;
      unsigned char *d = realloc(node->data, cap);
      if (d) {
        node->data = d;
        node->cap = cap;
      }
    }
  }
  cairn_mutex_unlock(&node->mu);
  return rc;
}

/* Punched bytes read as zeros (so a test reading a punched page sees its
 * checksum fail); memory is not given back. */
static int mem_punch(cairn_file *f, uint64_t off, uint64_t len) {
  mem_file *mf = (mem_file *)f;
  if (!mf)
    return cairn__seterr(CAIRN_INVALID, "memory punch: NULL handle");
  if (mf->flags & CAIRN_PF_RDONLY)
    return cairn__seterr(CAIRN_IO, "punch memory file %s: open read-only",
                         mf->path);
  mem_node *node = mf->node;
  cairn_mutex_lock(&node->mu);
  if (off < node->size) {
    uint64_t n = len < node->size - off ? len : node->size - off;
    memset(node->data + off, 0, (size_t)n);
  }
  cairn_mutex_unlock(&node->mu);
  return CAIRN_OK;
}

static const char *lock_name(int mode) {
  return mode == CAIRN_LOCK_EXCLUSIVE ? "exclusive" : "shared";
}

static void release_lock_locked(mem_file *mf) {
  if (mf->lock == CAIRN_LOCK_SHARED)
    mf->node->shared_locks--;
  else if (mf->lock == CAIRN_LOCK_EXCLUSIVE)
    mf->node->exclusive_locks--;
  mf->lock = CAIRN_LOCK_NONE;
}

/* flock semantics per open handle: any number of shared holders or one
 * exclusive holder; a handle may convert its own lock. Unlike Linux flock, a
 * refused conversion keeps the lock the handle already had. */
static int mem_lock(cairn_file *f, int mode) {
  mem_file *mf = (mem_file *)f;
  if (!mf)
    return cairn__seterr(CAIRN_INVALID, "memory lock: NULL handle");
  if (mode != CAIRN_LOCK_NONE && mode != CAIRN_LOCK_SHARED &&
      mode != CAIRN_LOCK_EXCLUSIVE)
    return cairn__seterr(CAIRN_INVALID, "lock memory file %s: bad mode %d",
                         mf->path, mode);
  int rc = CAIRN_OK;
  cairn_mutex_lock(&files_mu);
  mem_node *node = mf->node;
  if (mode == mf->lock) {
    /* nothing to do */
  } else if (mode == CAIRN_LOCK_NONE) {
    release_lock_locked(mf);
  } else {
    int mine_sh = mf->lock == CAIRN_LOCK_SHARED;
    int mine_ex = mf->lock == CAIRN_LOCK_EXCLUSIVE;
    int other_sh = node->shared_locks - mine_sh;
    int other_ex = node->exclusive_locks - mine_ex;
    int busy = mode == CAIRN_LOCK_EXCLUSIVE ? (other_sh + other_ex > 0)
                                            : (other_ex > 0);
    if (busy) {
      rc = cairn__seterr(CAIRN_BUSY,
                         "database is locked by another process or handle "
                         "(%s lock on memory file %s)",
                         lock_name(mode), mf->path);
    } else {
      release_lock_locked(mf);
      if (mode == CAIRN_LOCK_SHARED)
        node->shared_locks++;
      else
        node->exclusive_locks++;
      mf->lock = mode;
    }
  }
  cairn_mutex_unlock(&files_mu);
  return rc;
}

static void mem_close(cairn_file *f) {
  mem_file *mf = (mem_file *)f;
  if (!mf)
    return;
  cairn_mutex_lock(&files_mu);
  release_lock_locked(mf);
  unref_locked(mf->node);
  cairn_mutex_unlock(&files_mu);
  free(mf->path);
  free(mf);
}

static const cairn_file_methods mem_methods = {
    mem_read, mem_write, mem_sync,  mem_size,  mem_truncate, mem_lock,
    NULL,     NULL,      mem_close, mem_punch, NULL,         NULL,
};

static int bad_path(const char *op, const char *path) {
  return cairn__seterr(CAIRN_INVALID, "memory %s: %s path", op,
                       path ? "empty" : "NULL");
}

static int mem_open(cairn_platform *p, const char *path, unsigned flags,
                    cairn_file **out) {
  (void)p;
  if (!out)
    return cairn__seterr(CAIRN_INVALID, "memory open: NULL out pointer");
  *out = NULL;
  if (!path || !path[0])
    return bad_path("open", path);
  mem_file *mf = calloc(1, sizeof *mf);
  char *pathcopy = dup_str(path);
  if (!mf || !pathcopy) {
    free(mf);
    free(pathcopy);
    return cairn__seterr(CAIRN_NOMEM, "open memory file %s: out of memory",
                         path);
  }
  mf->base.methods = &mem_methods;
  mf->flags = flags;
  mf->path = pathcopy;

  int rc = CAIRN_OK;
  cairn_mutex_lock(&files_mu);
  mem_node *node = find_locked(path);
  if (node) {
    if ((flags & CAIRN_PF_CREATE) && (flags & CAIRN_PF_EXCL))
      rc = cairn__seterr(CAIRN_EXISTS, "create memory file %s: file exists",
                         path);
  } else if (!(flags & CAIRN_PF_CREATE)) {
    rc = cairn__seterr(CAIRN_NOTFOUND,
                       "open memory file %s: no such file or directory", path);
  } else {
    node = calloc(1, sizeof *node);
    char *name = dup_str(path);
    if (!node || !name || cairn_mutex_init(&node->mu) != 0) {
      free(node);
      free(name);
      node = NULL;
      rc = cairn__seterr(CAIRN_NOMEM, "create memory file %s: out of memory",
                         path);
    } else {
      node->name = name;
      node->refs = 1; /* the name */
      node->next = files;
      files = node;
    }
  }
  if (rc == CAIRN_OK) {
    node->refs++;
    mf->node = node;
  }
  cairn_mutex_unlock(&files_mu);
  if (rc != CAIRN_OK) {
    free(mf->path);
    free(mf);
    return rc;
  }
  *out = &mf->base;
  return CAIRN_OK;
}

static int mem_remove(cairn_platform *p, const char *path) {
  (void)p;
  if (!path || !path[0])
    return bad_path("remove", path);
  int rc = CAIRN_OK;
  cairn_mutex_lock(&files_mu);
  mem_node *node = find_locked(path);
  if (!node) {
    rc =
        cairn__seterr(CAIRN_NOTFOUND,
                      "remove memory file %s: no such file or directory", path);
  } else {
    unlink_locked(node);
    free(node->name);
    node->name = NULL;
    unref_locked(node);
  }
  cairn_mutex_unlock(&files_mu);
  return rc;
}

static int mem_rename_noreplace(cairn_platform *p, const char *from,
                                const char *to) {
  (void)p;
  if (!from || !from[0])
    return bad_path("rename", from);
  if (!to || !to[0])
    return bad_path("rename", to);
  char *name = dup_str(to);
  if (!name)
    return cairn__seterr(CAIRN_NOMEM,
                         "rename memory file %s to %s: out of "
                         "memory",
                         from, to);
  int rc = CAIRN_OK;
  cairn_mutex_lock(&files_mu);
  mem_node *node = find_locked(from);
  if (!node)
    rc = cairn__seterr(CAIRN_NOTFOUND,
                       "rename memory file %s to %s: no such file or "
                       "directory",
                       from, to);
  else if (find_locked(to))
    rc = cairn__seterr(CAIRN_EXISTS,
                       "rename memory file %s to %s: target exists", from, to);
  else {
    free(node->name);
    node->name = name;
    name = NULL;
  }
  cairn_mutex_unlock(&files_mu);
  free(name);
  return rc;
}

static int mem_sync_dir(cairn_platform *p, const char *path) {
  (void)p;
  if (!path)
    return bad_path("sync_dir", path);
  return CAIRN_OK;
}

static cairn_platform memory_platform = {
    "memory", mem_open, mem_remove, mem_rename_noreplace, mem_sync_dir, NULL,
};

cairn_platform *cairn_platform_memory(void) { return &memory_platform; }

void cairn_platform_memory_reset(void) {
  cairn_mutex_lock(&files_mu);
  while (files) {
    mem_node *node = files;
    files = node->next;
    node->next = NULL;
    free(node->name);
    node->name = NULL;
    unref_locked(node);
  }
  cairn_mutex_unlock(&files_mu);
}
