/*
 * fault_platform.c — the "fault" platform: an in-memory file system that can
 * lose power (see fault_platform.h for the test-facing API).
 *
 * The model, and the invariants that keep it honest:
 *   - Each file (node) has a durable image D (what survives power loss), a
 *     current image C (what the program sees) and the list of operations
 *     (writes and truncates) since its last sync, in order. Always
 *     C == D with the list applied; sync applies the list to D and empties it.
 *   - Names live in two namespaces: the current one (open/create, rename,
 *     remove act on it) and the durable one. sync_dir(path) copies the
 *     current entries of path's directory into the durable namespace; a
 *     crash makes the current namespace a copy of the durable one, so
 *     creations and renames that were never dir-synced vanish or revert.
 *   - fault_crash() resolves each pending operation independently from a
 *     seeded PRNG (kept, dropped, or torn at 512-byte sector granularity),
 *     so a given seed always produces the same post-crash files.
 *   - After the crash point every boundary operation fails before touching
 *     any state, so "no effect" holds by construction.
 *   - Handles carry the epoch they were opened in; a crash or reset starts a
 *     new epoch, drops every lock, and stale handles may only be closed.
 *   - One mutex (mu) guards everything, reads included.
 * Portable C11 plus core/threads.h: this file also builds for WASI and
 * Emscripten.
 */
#include <stddef.h> /* before fault_platform.h, which uses size_t */

#include "fault_platform.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "platform.h"
#include "threads.h"

#define SECTOR 512u

/* ---- images ------------------------------------------------------------ */

typedef struct image {
  unsigned char *data;
  size_t size;
  size_t cap;
} image;

static int img_reserve(image *img, uint64_t need) {
  if (need > SIZE_MAX)
    return CAIRN_NOSPC;
  if ((size_t)need <= img->cap)
    return CAIRN_OK;
  size_t cap = img->cap ? img->cap : 4096;
  while (cap < need)
    cap = cap > SIZE_MAX / 2 ? (size_t)need : cap * 2;
  unsigned char *d = realloc(img->data, cap);
  if (!d)
    return CAIRN_NOMEM;
  img->data = d;
  img->cap = cap;
  return CAIRN_OK;
}

/* Callers reserve first; these never allocate when capacity suffices. */
static int img_write(image *img, uint64_t off, const void *buf, size_t n) {
  if (n == 0)
    return CAIRN_OK;
  int rc = img_reserve(img, off + n);
  if (rc != CAIRN_OK)
    return rc;
  if (off > img->size)
    memset(img->data + img->size, 0, (size_t)off - img->size);
  memcpy(img->data + off, buf, n);
  if (off + n > img->size)
    img->size = (size_t)(off + n);
  return CAIRN_OK;
}

static int img_truncate(image *img, uint64_t size) {
  int rc = img_reserve(img, size);
  if (rc != CAIRN_OK)
    return rc;
  if (size > img->size)
    memset(img->data + img->size, 0, (size_t)size - img->size);
  img->size = (size_t)size;
  return CAIRN_OK;
}

static void img_read(const image *img, uint64_t off, void *buf, size_t n) {
  size_t have = 0;
  if (off < img->size) {
    have = img->size - (size_t)off;
    if (have > n)
      have = n;
    memcpy(buf, img->data + off, have);
  }
  memset((unsigned char *)buf + have, 0, n - have);
}

static int img_copy(image *dst, const image *src) {
  int rc = img_reserve(dst, src->size);
  if (rc != CAIRN_OK)
    return rc;
  if (src->size)
    memcpy(dst->data, src->data, src->size);
  dst->size = src->size;
  return CAIRN_OK;
}

/* ---- nodes, namespaces, handles ---------------------------------------- */

enum { OP_WRITE, OP_TRUNCATE };

typedef struct fop {
  int kind;
  uint64_t off; /* write offset, or the new size of a truncate */
  size_t n;
  unsigned char *data;
} fop;

typedef struct fnode {
  image durable;
  image current;
  fop *ops; /* unsynced, in order */
  size_t nops;
  size_t capops;
  int refs; /* entries in both namespaces + open handles */
  int shared_locks;
  int exclusive_locks;
  struct fnode *next; /* all nodes, oldest first (a deterministic order) */
} fnode;

typedef struct entry {
  char *name;
  fnode *node;
} entry;

typedef struct nspace {
  entry *e;
  size_t n;
  size_t cap;
} nspace;

typedef struct fault_file {
  cairn_file base; /* first, so a cairn_file * is a fault_file * */
  fnode *node;
  unsigned flags;
  int lock;
  uint64_t epoch;
  char path[];
} fault_file;

static cairn_mutex mu = CAIRN_MUTEX_INIT;
static fnode *nodes;
static nspace cur_ns, dur_ns;
static uint64_t epoch = 1;
static long op_count;
static long crash_at = -1;
static long error_at = -1;
static int error_rc;
static int error_persistent;
static int full_rc; /* set once a persistent error fired */
static int crashed;

static char *dup_str(const char *s) {
  size_t n = strlen(s) + 1;
  char *d = malloc(n);
  if (d)
    memcpy(d, s, n);
  return d;
}

static void ops_clear(fnode *node) {
  for (size_t i = 0; i < node->nops; i++)
    free(node->ops[i].data);
  node->nops = 0;
}

static void node_unref(fnode *node) {
  if (--node->refs > 0)
    return;
  for (fnode **pp = &nodes; *pp; pp = &(*pp)->next) {
    if (*pp == node) {
      *pp = node->next;
      break;
    }
  }
  ops_clear(node);
  free(node->ops);
  free(node->durable.data);
  free(node->current.data);
  free(node);
}

static fnode *node_new(void) {
  fnode *node = calloc(1, sizeof *node);
  if (!node)
    return NULL;
  fnode **pp = &nodes;
  while (*pp)
    pp = &(*pp)->next;
  *pp = node;
  return node;
}

static entry *ns_find(nspace *ns, const char *name) {
  for (size_t i = 0; i < ns->n; i++)
    if (strcmp(ns->e[i].name, name) == 0)
      return &ns->e[i];
  return NULL;
}

/* Make room for extra more entries. */
static int ns_reserve(nspace *ns, size_t extra) {
  if (ns->cap - ns->n >= extra)
    return CAIRN_OK;
  size_t cap = ns->cap ? ns->cap : 16;
  while (cap - ns->n < extra)
    cap *= 2;
  entry *e = realloc(ns->e, cap * sizeof *e);
  if (!e)
    return CAIRN_NOMEM;
  ns->e = e;
  ns->cap = cap;
  return CAIRN_OK;
}

/* Takes ownership of name. */
static int ns_add(nspace *ns, char *name, fnode *node) {
  if (ns_reserve(ns, 1) != CAIRN_OK) {
    free(name);
    return CAIRN_NOMEM;
  }
  ns->e[ns->n].name = name;
  ns->e[ns->n].node = node;
  ns->n++;
  node->refs++;
  return CAIRN_OK;
}

static void ns_del(nspace *ns, size_t i) {
  fnode *node = ns->e[i].node;
  free(ns->e[i].name);
  ns->e[i] = ns->e[--ns->n];
  node_unref(node);
}

static void ns_clear(nspace *ns) {
  while (ns->n)
    ns_del(ns, ns->n - 1);
}

/* Length of the directory part of name (up to its last '/'), or -1 when the
 * name has no directory part. Two names share a directory when these match
 * and so do the prefixes. */
static long dir_len(const char *name) {
  const char *slash = strrchr(name, '/');
  return slash ? (long)(slash - name) : -1;
}

static int same_dir(const char *name, const char *dir, long dlen) {
  return dir_len(name) == dlen &&
         (dlen <= 0 || memcmp(name, dir, (size_t)dlen) == 0);
}

/* ---- injection --------------------------------------------------------- */

static const char *injected_name(int rc) {
  switch (rc) {
  case CAIRN_NOSPC: return "injected ENOSPC";
  case CAIRN_IO: return "injected EIO";
  default: return "injected error";
  }
}

/* Count one boundary operation (mu held) and decide whether it may run.
 * what names the operation and path for the message. */
static int boundary(int write_or_sync, const char *what) {
  long n = op_count++;
  if (crashed || (crash_at >= 0 && n >= crash_at)) {
    crashed = 1;
    return cairn__seterr(CAIRN_IO, "%s: simulated power loss", what);
  }
  if (error_at >= 0 && n == error_at) {
    if (error_persistent)
      full_rc = error_rc;
    return cairn__seterr(error_rc, "%s: %s", what, injected_name(error_rc));
  }
  if (full_rc && write_or_sync)
    return cairn__seterr(full_rc, "%s: %s", what, injected_name(full_rc));
  return CAIRN_OK;
}

static void clear_injection_locked(void) {
  op_count = 0;
  crash_at = -1;
  error_at = -1;
  error_rc = 0;
  error_persistent = 0;
  full_rc = 0;
  crashed = 0;
}

/* ---- file methods ------------------------------------------------------ */

static int stale(const fault_file *ff) {
  return cairn__seterr(CAIRN_IO,
                       "fault file %s: handle predates a simulated crash or "
                       "fault_reset and may only be closed",
                       ff->path);
}

static int oom(const char *what, const char *path) {
  return cairn__seterr(CAIRN_NOMEM, "fault %s %s: out of memory", what, path);
}

static int flt_read(cairn_file *f, void *buf, size_t n, uint64_t off) {
  fault_file *ff = (fault_file *)f;
  if (!ff || (!buf && n))
    return cairn__seterr(CAIRN_INVALID, "fault read: NULL handle or buffer");
  int rc = CAIRN_OK;
  cairn_mutex_lock(&mu);
  if (ff->epoch != epoch)
    rc = stale(ff);
  else if (n)
    img_read(&ff->node->current, off, buf, n);
  cairn_mutex_unlock(&mu);
  return rc;
}

static int flt_write(cairn_file *f, const void *buf, size_t n, uint64_t off) {
  fault_file *ff = (fault_file *)f;
  if (!ff || (!buf && n))
    return cairn__seterr(CAIRN_INVALID, "fault write: NULL handle or buffer");
  if (ff->flags & CAIRN_PF_RDONLY)
    return cairn__seterr(CAIRN_IO,
                         "write %s at offset %llu: file is open read-only",
                         ff->path, (unsigned long long)off);
  if (off > UINT64_MAX - n || off + n > SIZE_MAX)
    return cairn__seterr(CAIRN_NOSPC, "write %s at offset %llu: file too large",
                         ff->path, (unsigned long long)off);
  char what[320];
  snprintf(what, sizeof what, "write %s at offset %llu", ff->path,
           (unsigned long long)off);
  int rc = CAIRN_OK;
  cairn_mutex_lock(&mu);
  fnode *node = ff->node;
  if (ff->epoch != epoch) {
    rc = stale(ff);
  } else if ((rc = boundary(1, what)) == CAIRN_OK && n) {
    /* Allocate everything first so a failure leaves no trace. */
    unsigned char *copy = malloc(n);
    if (node->nops == node->capops) {
      size_t cap = node->capops ? node->capops * 2 : 16;
      fop *ops = realloc(node->ops, cap * sizeof *ops);
      if (ops) {
        node->ops = ops;
        node->capops = cap;
      }
    }
    if (!copy || node->nops == node->capops ||
        img_reserve(&node->current, off + n) != CAIRN_OK) {
      free(copy);
      rc = oom("write", ff->path);
    } else {
      memcpy(copy, buf, n);
      node->ops[node->nops++] = (fop){OP_WRITE, off, n, copy};
      img_write(&node->current, off, buf, n);
    }
  }
  cairn_mutex_unlock(&mu);
  return rc;
}

/* Apply the pending operations to the durable image (mu held). */
static int apply_ops_durable(fnode *node) {
  uint64_t size = node->durable.size, peak = size;
  for (size_t i = 0; i < node->nops; i++) {
    const fop *op = &node->ops[i];
    if (op->kind == OP_WRITE) {
      if (op->off + op->n > size)
        size = op->off + op->n;
    } else {
      size = op->off;
    }
    if (size > peak)
      peak = size;
  }
  int rc = img_reserve(&node->durable, peak);
  if (rc != CAIRN_OK)
    return rc;
  for (size_t i = 0; i < node->nops; i++) {
    const fop *op = &node->ops[i];
    if (op->kind == OP_WRITE)
      img_write(&node->durable, op->off, op->data, op->n);
    else
      img_truncate(&node->durable, op->off);
  }
  ops_clear(node);
  return CAIRN_OK;
}

static int flt_sync(cairn_file *f) {
  fault_file *ff = (fault_file *)f;
  if (!ff)
    return cairn__seterr(CAIRN_INVALID, "fault sync: NULL handle");
  char what[300];
  snprintf(what, sizeof what, "sync %s", ff->path);
  int rc;
  cairn_mutex_lock(&mu);
  if (ff->epoch != epoch)
    rc = stale(ff);
  else if ((rc = boundary(1, what)) == CAIRN_OK &&
           apply_ops_durable(ff->node) != CAIRN_OK)
    rc = oom("sync", ff->path);
  cairn_mutex_unlock(&mu);
  return rc;
}

/* A background sync promises nothing, so the model is the worst case: it
 * never completes before the crash. Not a boundary (no I/O is issued), so
 * crash points stay where they were. Having it makes the engine take its
 * background paths (lazy checkpoints, the automatic lazy sync) here, where
 * power loss can be simulated. */
static int flt_start_sync(cairn_file *f) {
  fault_file *ff = (fault_file *)f;
  if (!ff)
    return cairn__seterr(CAIRN_INVALID, "fault start_sync: NULL handle");
  int rc = CAIRN_OK;
  cairn_mutex_lock(&mu);
  if (ff->epoch != epoch)
    rc = stale(ff);
  cairn_mutex_unlock(&mu);
  return rc;
}

static int flt_size(cairn_file *f, uint64_t *out) {
  fault_file *ff = (fault_file *)f;
  if (!ff || !out)
    return cairn__seterr(CAIRN_INVALID, "fault size: NULL argument");
  int rc = CAIRN_OK;
  cairn_mutex_lock(&mu);
  if (ff->epoch != epoch)
    rc = stale(ff);
  else
    *out = ff->node->current.size;
  cairn_mutex_unlock(&mu);
  return rc;
}

static int flt_truncate(cairn_file *f, uint64_t size) {
  fault_file *ff = (fault_file *)f;
  if (!ff)
    return cairn__seterr(CAIRN_INVALID, "fault truncate: NULL handle");
  if (ff->flags & CAIRN_PF_RDONLY)
    return cairn__seterr(CAIRN_IO,
                         "truncate %s to %llu: file is open "
                         "read-only",
                         ff->path, (unsigned long long)size);
  if (size > SIZE_MAX)
    return cairn__seterr(CAIRN_NOSPC, "truncate %s to %llu: file too large",
                         ff->path, (unsigned long long)size);
  char what[320];
  snprintf(what, sizeof what, "truncate %s to %llu", ff->path,
           (unsigned long long)size);
  int rc;
  cairn_mutex_lock(&mu);
  fnode *node = ff->node;
  if (ff->epoch != epoch) {
    rc = stale(ff);
  } else if ((rc = boundary(0, what)) == CAIRN_OK) {
    if (node->nops == node->capops) {
      size_t cap = node->capops ? node->capops * 2 : 16;
      fop *ops = realloc(node->ops, cap * sizeof *ops);
      if (ops) {
        node->ops = ops;
        node->capops = cap;
      }
    }
    if (node->nops == node->capops ||
        img_reserve(&node->current, size) != CAIRN_OK) {
      rc = oom("truncate", ff->path);
    } else {
      node->ops[node->nops++] = (fop){OP_TRUNCATE, size, 0, NULL};
      img_truncate(&node->current, size);
    }
  }
  cairn_mutex_unlock(&mu);
  return rc;
}

static void release_lock_locked(fault_file *ff) {
  if (ff->epoch == epoch) {
    if (ff->lock == CAIRN_LOCK_SHARED)
      ff->node->shared_locks--;
    else if (ff->lock == CAIRN_LOCK_EXCLUSIVE)
      ff->node->exclusive_locks--;
  }
  ff->lock = CAIRN_LOCK_NONE;
}

/* flock semantics per handle, as in the memory platform: a refused
 * conversion keeps the lock the handle had. */
static int flt_lock(cairn_file *f, int mode) {
  fault_file *ff = (fault_file *)f;
  if (!ff)
    return cairn__seterr(CAIRN_INVALID, "fault lock: NULL handle");
  if (mode != CAIRN_LOCK_NONE && mode != CAIRN_LOCK_SHARED &&
      mode != CAIRN_LOCK_EXCLUSIVE)
    return cairn__seterr(CAIRN_INVALID, "lock %s: bad mode %d", ff->path, mode);
  int rc = CAIRN_OK;
  cairn_mutex_lock(&mu);
  fnode *node = ff->node;
  if (ff->epoch != epoch) {
    rc = stale(ff);
  } else if (mode == ff->lock) {
    /* nothing to do */
  } else if (mode == CAIRN_LOCK_NONE) {
    release_lock_locked(ff);
  } else {
    int other_sh = node->shared_locks - (ff->lock == CAIRN_LOCK_SHARED);
    int other_ex = node->exclusive_locks - (ff->lock == CAIRN_LOCK_EXCLUSIVE);
    int busy = mode == CAIRN_LOCK_EXCLUSIVE ? (other_sh + other_ex > 0)
                                            : (other_ex > 0);
    if (busy) {
      rc = cairn__seterr(CAIRN_BUSY,
                         "database is locked by another process or handle "
                         "(%s lock on fault file %s)",
                         mode == CAIRN_LOCK_EXCLUSIVE ? "exclusive" : "shared",
                         ff->path);
    } else {
      release_lock_locked(ff);
      if (mode == CAIRN_LOCK_SHARED)
        node->shared_locks++;
      else
        node->exclusive_locks++;
      ff->lock = mode;
    }
  }
  cairn_mutex_unlock(&mu);
  return rc;
}

static void flt_close(cairn_file *f) {
  fault_file *ff = (fault_file *)f;
  if (!ff)
    return;
  cairn_mutex_lock(&mu);
  release_lock_locked(ff);
  node_unref(ff->node);
  cairn_mutex_unlock(&mu);
  free(ff);
}

static const cairn_file_methods fault_methods = {
    flt_read, flt_write, flt_sync,  flt_size, flt_truncate, flt_lock,
    NULL,     NULL,      flt_close, NULL,     NULL,         flt_start_sync,
};

/* ---- platform methods -------------------------------------------------- */

static int bad_path(const char *op, const char *path) {
  return cairn__seterr(CAIRN_INVALID, "fault %s: %s path", op,
                       path ? "empty" : "NULL");
}

static int flt_open(cairn_platform *p, const char *path, unsigned flags,
                    cairn_file **out) {
  (void)p;
  if (!out)
    return cairn__seterr(CAIRN_INVALID, "fault open: NULL out pointer");
  *out = NULL;
  if (!path || !path[0])
    return bad_path("open", path);
  size_t len = strlen(path);
  fault_file *ff = malloc(sizeof *ff + len + 1);
  if (!ff)
    return oom("open", path);
  memcpy(ff->path, path, len + 1);
  ff->base.methods = &fault_methods;
  ff->flags = flags;
  ff->lock = CAIRN_LOCK_NONE;

  int rc = CAIRN_OK;
  cairn_mutex_lock(&mu);
  ff->epoch = epoch;
  entry *e = ns_find(&cur_ns, path);
  fnode *node = e ? e->node : NULL;
  if (node) {
    if ((flags & CAIRN_PF_CREATE) && (flags & CAIRN_PF_EXCL))
      rc = cairn__seterr(CAIRN_EXISTS, "create %s: file exists", path);
  } else if (!(flags & CAIRN_PF_CREATE)) {
    rc = cairn__seterr(CAIRN_NOTFOUND, "open %s: no such file or directory",
                       path);
  } else {
    char *name = dup_str(path);
    node = name ? node_new() : NULL;
    if (!node) {
      free(name);
      rc = oom("create", path);
    } else if (ns_add(&cur_ns, name, node) != CAIRN_OK) {
      node->refs = 1;
      node_unref(node);
      node = NULL;
      rc = oom("create", path);
    }
  }
  if (rc == CAIRN_OK) {
    node->refs++;
    ff->node = node;
  }
  cairn_mutex_unlock(&mu);
  if (rc != CAIRN_OK) {
    free(ff);
    return rc;
  }
  *out = &ff->base;
  return CAIRN_OK;
}

/* Not a boundary operation: it changes only the current namespace, which a
 * crash discards unless sync_dir made it durable. */
static int flt_remove(cairn_platform *p, const char *path) {
  (void)p;
  if (!path || !path[0])
    return bad_path("remove", path);
  int rc = CAIRN_OK;
  cairn_mutex_lock(&mu);
  entry *e = ns_find(&cur_ns, path);
  if (!e)
    rc = cairn__seterr(CAIRN_NOTFOUND, "remove %s: no such file or directory",
                       path);
  else
    ns_del(&cur_ns, (size_t)(e - cur_ns.e));
  cairn_mutex_unlock(&mu);
  return rc;
}

static int flt_rename_noreplace(cairn_platform *p, const char *from,
                                const char *to) {
  (void)p;
  if (!from || !from[0])
    return bad_path("rename", from);
  if (!to || !to[0])
    return bad_path("rename", to);
  char what[600];
  snprintf(what, sizeof what, "rename %s to %s", from, to);
  char *name = dup_str(to);
  if (!name)
    return oom("rename", from);
  int rc;
  cairn_mutex_lock(&mu);
  if ((rc = boundary(0, what)) == CAIRN_OK) {
    entry *e = ns_find(&cur_ns, from);
    if (!e)
      rc = cairn__seterr(CAIRN_NOTFOUND, "%s: no such file or directory", what);
    else if (ns_find(&cur_ns, to))
      rc = cairn__seterr(CAIRN_EXISTS, "%s: target exists", what);
    else {
      free(e->name);
      e->name = name;
      name = NULL;
    }
  }
  cairn_mutex_unlock(&mu);
  free(name);
  return rc;
}

static int flt_sync_dir(cairn_platform *p, const char *path) {
  (void)p;
  if (!path)
    return bad_path("sync_dir", path);
  char what[300];
  snprintf(what, sizeof what, "sync_dir %s", path);
  long dlen = dir_len(path);
  int rc;
  cairn_mutex_lock(&mu);
  if ((rc = boundary(0, what)) == CAIRN_OK) {
    /* Build the directory's new durable entries before dropping the old
     * ones, so a node named in both is never freed in between and an
     * allocation failure leaves the durable namespace untouched. */
    size_t add = 0;
    for (size_t i = 0; i < cur_ns.n; i++)
      add += same_dir(cur_ns.e[i].name, path, dlen) ? 1u : 0u;
    entry *fresh = add ? calloc(add, sizeof *fresh) : NULL;
    size_t k = 0;
    if (add && !fresh)
      rc = oom("sync_dir", path);
    for (size_t i = 0; rc == CAIRN_OK && i < cur_ns.n; i++) {
      if (!same_dir(cur_ns.e[i].name, path, dlen))
        continue;
      fresh[k].name = dup_str(cur_ns.e[i].name);
      fresh[k].node = cur_ns.e[i].node;
      if (!fresh[k].name)
        rc = oom("sync_dir", path);
      else
        k++;
    }
    if (rc == CAIRN_OK && ns_reserve(&dur_ns, add) != CAIRN_OK)
      rc = oom("sync_dir", path);
    if (rc == CAIRN_OK) {
      for (size_t i = 0; i < k; i++)
        fresh[i].node->refs++;
      for (size_t i = dur_ns.n; i-- > 0;)
        if (same_dir(dur_ns.e[i].name, path, dlen))
          ns_del(&dur_ns, i);
      for (size_t i = 0; i < k; i++)
        dur_ns.e[dur_ns.n++] = fresh[i];
    } else {
      for (size_t i = 0; i < k; i++)
        free(fresh[i].name);
    }
    free(fresh);
  }
  cairn_mutex_unlock(&mu);
  return rc;
}

static cairn_platform fault_platform = {
    "fault", flt_open, flt_remove, flt_rename_noreplace, flt_sync_dir, NULL,
};

/* ---- test API ---------------------------------------------------------- */

void fault_platform_install(void) { cairn_platform_register(&fault_platform); }

/* Start a new epoch: stale handles keep their nodes alive until closed but
 * no longer hold locks. */
static void new_epoch_locked(void) {
  epoch++;
  for (fnode *n = nodes; n; n = n->next) {
    n->shared_locks = 0;
    n->exclusive_locks = 0;
  }
}

void fault_reset(void) {
  cairn_mutex_lock(&mu);
  ns_clear(&cur_ns);
  ns_clear(&dur_ns);
  free(cur_ns.e);
  free(dur_ns.e);
  cur_ns = (nspace){NULL, 0, 0};
  dur_ns = (nspace){NULL, 0, 0};
  new_epoch_locked();
  clear_injection_locked();
  cairn_mutex_unlock(&mu);
}

long fault_op_count(void) {
  cairn_mutex_lock(&mu);
  long n = op_count;
  cairn_mutex_unlock(&mu);
  return n;
}

void fault_set_crash_at(long n) {
  cairn_mutex_lock(&mu);
  crash_at = n < 0 ? -1 : n;
  cairn_mutex_unlock(&mu);
}

void fault_set_error_at(long n, int rc, int persistent) {
  cairn_mutex_lock(&mu);
  error_at = n < 0 ? -1 : n;
  error_rc = rc < 0 ? rc : CAIRN_IO;
  error_persistent = persistent != 0;
  cairn_mutex_unlock(&mu);
}

void fault_clear_injection(void) {
  cairn_mutex_lock(&mu);
  clear_injection_locked();
  cairn_mutex_unlock(&mu);
}

int fault_crashed(void) {
  cairn_mutex_lock(&mu);
  int c = crashed;
  cairn_mutex_unlock(&mu);
  return c;
}

static uint64_t splitmix64(uint64_t *s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/* Copy the part of write op that falls in sector sec into img. */
static void apply_sector(image *img, const fop *op, uint64_t sec) {
  uint64_t lo = sec * SECTOR, hi = lo + SECTOR;
  if (lo < op->off)
    lo = op->off;
  if (hi > op->off + op->n)
    hi = op->off + op->n;
  img_write(img, lo, op->data + (lo - op->off), (size_t)(hi - lo));
}

/* What power loss leaves of one file: D plus each pending op kept, dropped
 * or torn. Writes are torn along absolute 512-byte sectors: usually a prefix
 * of the sectors reached the disk, sometimes (disks reorder) any subset; a
 * single sector is atomic. */
static void resolve_node(fnode *node, uint64_t *rng) {
  uint64_t size = node->durable.size, peak = size;
  for (size_t i = 0; i < node->nops; i++) {
    const fop *op = &node->ops[i];
    size = op->kind == OP_WRITE
               ? (op->off + op->n > size ? op->off + op->n : size)
               : op->off;
    if (size > peak)
      peak = size;
  }
  /* With capacity for the largest size any outcome can reach, applying
   * cannot fail. If even that is impossible, the pending ops are lost
   * whole, which is also an outcome a real crash may produce. */
  if (img_reserve(&node->durable, peak) == CAIRN_OK) {
    for (size_t i = 0; i < node->nops; i++) {
      const fop *op = &node->ops[i];
      unsigned r = (unsigned)(splitmix64(rng) % 16);
      if (op->kind == OP_TRUNCATE) {
        if (r < 8)
          img_truncate(&node->durable, op->off);
        continue;
      }
      if (r < 6) { /* kept whole */
        img_write(&node->durable, op->off, op->data, op->n);
        continue;
      }
      if (r < 11) /* dropped */
        continue;
      uint64_t s0 = op->off / SECTOR, s1 = (op->off + op->n - 1) / SECTOR;
      uint64_t nsec = s1 - s0 + 1;
      if (nsec == 1) {
        if (splitmix64(rng) & 1)
          apply_sector(&node->durable, op, s0);
      } else if (r == 15) { /* any subset of sectors */
        uint64_t bits = 0;
        for (uint64_t k = 0; k < nsec; k++) {
          if (k % 64 == 0)
            bits = splitmix64(rng);
          if (bits & 1)
            apply_sector(&node->durable, op, s0 + k);
          bits >>= 1;
        }
      } else { /* a prefix of 1 .. nsec-1 sectors */
        uint64_t keep = 1 + splitmix64(rng) % (nsec - 1);
        for (uint64_t k = 0; k < keep; k++)
          apply_sector(&node->durable, op, s0 + k);
      }
    }
  }
  ops_clear(node);
  /* current must equal the result; if the copy cannot be made, fall back
   * to an empty file in both images rather than lie. */
  if (img_copy(&node->current, &node->durable) != CAIRN_OK) {
    node->durable.size = 0;
    node->current.size = 0;
  }
}

void fault_crash(uint64_t seed) {
  uint64_t rng = seed;
  cairn_mutex_lock(&mu);
  for (fnode *n = nodes; n; n = n->next)
    resolve_node(n, &rng);
  /* The current namespace becomes the durable one. Take the new references
   * first so no node shared by both is freed on the way. */
  nspace fresh = {NULL, 0, 0};
  if (dur_ns.n) {
    fresh.e = calloc(dur_ns.n, sizeof *fresh.e);
    fresh.cap = fresh.e ? dur_ns.n : 0;
  }
  for (size_t i = 0; i < fresh.cap; i++) {
    char *name = dup_str(dur_ns.e[i].name);
    if (name)
      ns_add(&fresh, name, dur_ns.e[i].node);
  }
  ns_clear(&cur_ns);
  free(cur_ns.e);
  cur_ns = fresh;
  new_epoch_locked();
  clear_injection_locked();
  cairn_mutex_unlock(&mu);
}

long long fault_file_size(const char *path) {
  if (!path)
    return -1;
  long long size = -1;
  cairn_mutex_lock(&mu);
  entry *e = ns_find(&cur_ns, path);
  if (e)
    size = (long long)e->node->current.size;
  cairn_mutex_unlock(&mu);
  return size;
}

int fault_file_poke(const char *path, uint64_t off, const void *buf, size_t n) {
  if (!path || (!buf && n))
    return cairn__seterr(CAIRN_INVALID, "fault_file_poke: NULL argument");
  if (off > UINT64_MAX - n || off + n > SIZE_MAX)
    return cairn__seterr(CAIRN_INVALID, "fault_file_poke %s: offset too large",
                         path);
  int rc = CAIRN_OK;
  cairn_mutex_lock(&mu);
  entry *e = ns_find(&cur_ns, path);
  if (!e) {
    rc = cairn__seterr(CAIRN_NOTFOUND,
                       "fault_file_poke %s: no such file or directory", path);
  } else {
    fnode *node = e->node;
    if (img_reserve(&node->durable, off + n) != CAIRN_OK ||
        img_reserve(&node->current, off + n) != CAIRN_OK) {
      rc = oom("poke", path);
    } else {
      img_write(&node->durable, off, buf, n);
      img_write(&node->current, off, buf, n);
      /* Pending writes over the range carry the poked bytes too, so a later
       * sync or crash does not silently undo the corruption. */
      for (size_t i = 0; i < node->nops; i++) {
        fop *op = &node->ops[i];
        if (op->kind != OP_WRITE)
          continue;
        uint64_t lo = op->off > off ? op->off : off;
        uint64_t hi = op->off + op->n < off + n ? op->off + op->n : off + n;
        if (lo < hi)
          memcpy(op->data + (lo - op->off),
                 (const unsigned char *)buf + (lo - off), (size_t)(hi - lo));
      }
    }
  }
  cairn_mutex_unlock(&mu);
  return rc;
}

int fault_file_peek(const char *path, uint64_t off, void *buf, size_t n) {
  if (!path || (!buf && n))
    return cairn__seterr(CAIRN_INVALID, "fault_file_peek: NULL argument");
  int rc = CAIRN_OK;
  cairn_mutex_lock(&mu);
  entry *e = ns_find(&cur_ns, path);
  if (!e)
    rc = cairn__seterr(CAIRN_NOTFOUND,
                       "fault_file_peek %s: no such file or directory", path);
  else if (n)
    img_read(&e->node->current, off, buf, n);
  cairn_mutex_unlock(&mu);
  return rc;
}
