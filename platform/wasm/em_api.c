/*
 * em_api.c — the flat C surface the JavaScript Worker (web/src/worker.js)
 * calls in the engine module (build target cairn_web, cairn-engine.mjs).
 *
 * Only integers and pointers cross the boundary. Results that are not a
 * status come back through em_out (a pointer or id) and em_key/em_val (a
 * borrowed slice, valid under the rules of cairn.h until the next call that
 * moves the cursor or ends the transaction). Every function returns a
 * CAIRN_* status; em_errmsg() describes the last failure.
 */
#include <stdlib.h>
#include <string.h>

#include <emscripten/emscripten.h>

#include "cairn.h"
#include "platform.h"

static uintptr_t out_word;
static cairn_slice out_key, out_val;

EMSCRIPTEN_KEEPALIVE uintptr_t em_out(void) { return out_word; }
EMSCRIPTEN_KEEPALIVE const void *em_key_ptr(void) { return out_key.data; }
EMSCRIPTEN_KEEPALIVE size_t em_key_len(void) { return out_key.size; }
EMSCRIPTEN_KEEPALIVE const void *em_val_ptr(void) { return out_val.data; }
EMSCRIPTEN_KEEPALIVE size_t em_val_len(void) { return out_val.size; }
EMSCRIPTEN_KEEPALIVE const char *em_errmsg(void) { return cairn_errmsg(); }
EMSCRIPTEN_KEEPALIVE const char *em_strerror(int rc) {
  return cairn_strerror(rc);
}

/* durability: 0 default (sync), 1 sync, 2 lazy. cache_pages and
 * checkpoint_mib 0 = the engine's defaults. */
EMSCRIPTEN_KEEPALIVE int em_open(const char *path, const char *platform,
                                 unsigned flags, unsigned page_size,
                                 int durability, unsigned cache_pages,
                                 unsigned checkpoint_mib) {
  cairn_options o;
  cairn_options_init(&o);
  o.flags = flags;
  if (page_size)
    o.page_size = page_size;
  if (durability)
    o.durability = (cairn_durability)durability;
  o.platform = platform;
  if (cache_pages)
    o.cache_pages = cache_pages;
  if (checkpoint_mib)
    o.checkpoint_mib = checkpoint_mib;
  cairn_db *db = NULL;
  int rc = cairn_open(path, &o, &db);
  out_word = (uintptr_t)db;
  return rc;
}

EMSCRIPTEN_KEEPALIVE int em_close(cairn_db *db) { return cairn_close(db); }
EMSCRIPTEN_KEEPALIVE int em_sync(cairn_db *db) { return cairn_sync(db); }
/* Everything in the database file itself (the write-ahead log restarted):
 * before the file's bytes are exported. */
EMSCRIPTEN_KEEPALIVE int em_checkpoint(cairn_db *db) {
  return cairn_checkpoint(db);
}

EMSCRIPTEN_KEEPALIVE int em_begin(cairn_db *db, int rdonly) {
  cairn_txn *t = NULL;
  int rc = cairn_begin(db, rdonly ? CAIRN_TXN_RDONLY : 0, &t);
  out_word = (uintptr_t)t;
  return rc;
}

EMSCRIPTEN_KEEPALIVE int em_commit(cairn_txn *t, int durability) {
  return cairn_commit_ex(t, (cairn_durability)durability);
}
EMSCRIPTEN_KEEPALIVE void em_abort(cairn_txn *t) { cairn_abort(t); }

EMSCRIPTEN_KEEPALIVE int em_cf_open(cairn_txn *t, const char *name,
                                    int create) {
  cairn_cf cf = 0;
  int rc = cairn_cf_open(t, name, create ? CAIRN_CF_CREATE : 0, &cf);
  out_word = cf;
  return rc;
}

EMSCRIPTEN_KEEPALIVE int em_cf_drop(cairn_txn *t, cairn_cf cf) {
  return cairn_cf_drop(t, cf);
}

/* cf names, NUL-separated, into a malloc'd buffer (em_out; caller frees). */
typedef struct names_buf {
  char *p;
  size_t n, cap;
} names_buf;

static int add_name(void *ctx, const char *name, cairn_cf cf) {
  (void)cf;
  names_buf *b = ctx;
  size_t l = strlen(name) + 1;
  if (b->n + l + 1 > b->cap) {
    size_t cap = (b->cap + l + 1) * 2;
    char *p = realloc(b->p, cap);
    if (!p)
      return CAIRN_NOMEM;
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->n, name, l);
  b->n += l;
  return 0;
}

EMSCRIPTEN_KEEPALIVE int em_cf_list(cairn_txn *t) {
  names_buf b = {NULL, 0, 0};
  int rc = cairn_cf_list(t, add_name, &b);
  if (rc == CAIRN_OK && !b.p && !(b.p = malloc(1)))
    rc = CAIRN_NOMEM;
  if (rc != CAIRN_OK) {
    free(b.p);
    out_word = 0;
    return rc;
  }
  b.p[b.n] = 0;
  out_word = (uintptr_t)b.p;
  out_key.size = b.n;
  return CAIRN_OK;
}

EMSCRIPTEN_KEEPALIVE int em_get(cairn_txn *t, cairn_cf cf, const void *k,
                                size_t kn) {
  return cairn_get(t, cf, (cairn_slice){k, kn}, &out_val);
}

EMSCRIPTEN_KEEPALIVE int em_put(cairn_txn *t, cairn_cf cf, const void *k,
                                size_t kn, const void *v, size_t vn,
                                unsigned flags) {
  return cairn_put(t, cf, (cairn_slice){k, kn}, (cairn_slice){v, vn}, flags);
}

EMSCRIPTEN_KEEPALIVE int em_del(cairn_txn *t, cairn_cf cf, const void *k,
                                size_t kn) {
  return cairn_del(t, cf, (cairn_slice){k, kn});
}

/* A batch of puts and deletes encoded by the Worker, applied in one call:
 * records of  u8 op (1 put, 2 del) | u32 cf | u32 klen | u32 vlen | key |
 * value  (little-endian). On failure em_out is the index of the failing
 * record. */
static uint32_t rd32(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
         (uint32_t)p[3] << 24;
}

EMSCRIPTEN_KEEPALIVE int em_apply(cairn_txn *t, const unsigned char *buf,
                                  size_t n) {
  size_t off = 0, i = 0;
  for (; off < n; i++) {
    if (n - off < 13)
      return out_word = i, CAIRN_INVALID;
    unsigned op = buf[off];
    uint32_t cf = rd32(buf + off + 1), kl = rd32(buf + off + 5),
             vl = rd32(buf + off + 9);
    off += 13;
    if (n - off < (size_t)kl + vl)
      return out_word = i, CAIRN_INVALID;
    cairn_slice k = {buf + off, kl}, v = {buf + off + kl, vl};
    off += (size_t)kl + vl;
    int rc;
    if (op == 1)
      rc = cairn_put(t, cf, k, v, 0);
    else if (op == 2) {
      rc = cairn_del(t, cf, k);
      if (rc == CAIRN_NOTFOUND)
        rc = CAIRN_OK;
    } else
      rc = CAIRN_INVALID;
    if (rc != CAIRN_OK)
      return out_word = i, rc;
  }
  return CAIRN_OK;
}

EMSCRIPTEN_KEEPALIVE int em_cursor_open(cairn_txn *t, cairn_cf cf) {
  cairn_cursor *c = NULL;
  int rc = cairn_cursor_open(t, cf, &c);
  out_word = (uintptr_t)c;
  return rc;
}

EMSCRIPTEN_KEEPALIVE int em_cursor_bounds(cairn_cursor *c, const void *from,
                                          size_t fn, int has_from,
                                          const void *to, size_t tn,
                                          int has_to) {
  static const char empty[1];
  cairn_slice a = {has_from ? (from ? from : empty) : NULL, has_from ? fn : 0};
  cairn_slice b = {has_to ? (to ? to : empty) : NULL, has_to ? tn : 0};
  return cairn_cursor_bounds(c, a, b);
}

EMSCRIPTEN_KEEPALIVE int em_cursor_prefix(cairn_cursor *c, const void *p,
                                          size_t n) {
  static const char empty[1];
  return cairn_cursor_prefix(c, (cairn_slice){p ? p : empty, n});
}

/* op: 0 first, 1 last, 2 next, 3 prev, 4 current. On CAIRN_OK the entry is in
 * em_key/em_val. */
EMSCRIPTEN_KEEPALIVE int em_cursor_move(cairn_cursor *c, int op) {
  int rc;
  switch (op) {
  case 0: rc = cairn_cursor_first(c); break;
  case 1: rc = cairn_cursor_last(c); break;
  case 2: rc = cairn_cursor_next(c); break;
  case 3: rc = cairn_cursor_prev(c); break;
  case 4: /* stay: the current entry */ rc = CAIRN_OK; break;
  default: return CAIRN_INVALID;
  }
  if (rc == CAIRN_OK)
    rc = cairn_cursor_get(c, &out_key, &out_val);
  return rc;
}

/* Copy up to max entries into buf (cap bytes) as u32 klen | u32 vlen | key |
 * value records, moving first/last (first=1) or next/prev; reverse picks
 * the direction. em_out = entries written; returns CAIRN_NOTFOUND when the
 * range ended (after the entries written), CAIRN_OK if more may follow. An
 * entry that does not fit stays current: the next call (first=0, resume=1)
 * emits it before moving. */
EMSCRIPTEN_KEEPALIVE int em_cursor_fill(cairn_cursor *c, int first, int reverse,
                                        int resume, unsigned char *buf,
                                        size_t cap, unsigned max) {
  unsigned count = 0;
  size_t off = 0;
  int rc = CAIRN_OK;
  int need_move = !resume;
  for (;;) {
    if (need_move) {
      rc = em_cursor_move(c, first ? (reverse ? 1 : 0) : (reverse ? 3 : 2));
      first = 0;
    } else {
      rc = cairn_cursor_get(c, &out_key, &out_val);
    }
    need_move = 1;
    if (rc != CAIRN_OK)
      break;
    size_t need = 8 + out_key.size + out_val.size;
    if (count >= max || need > cap - off) {
      out_word = count;
      return count == 0 ? CAIRN_TOOBIG : CAIRN_OK; /* resume on this entry */
    }
    unsigned char *p = buf + off;
    uint32_t kl = (uint32_t)out_key.size, vl = (uint32_t)out_val.size;
    memcpy(p, &kl, 4);
    memcpy(p + 4, &vl, 4);
    if (kl)
      memcpy(p + 8, out_key.data, kl);
    if (vl)
      memcpy(p + 8 + kl, out_val.data, vl);
    off += need;
    count++;
  }
  out_word = count;
  return rc;
}

EMSCRIPTEN_KEEPALIVE void em_cursor_close(cairn_cursor *c) {
  cairn_cursor_close(c);
}

/* ---- stats ----------------------------------------------------------------
 */

typedef struct sbuf {
  char *p;
  size_t n, cap;
} sbuf;

static int sbuf_write(void *ctx, const void *buf, size_t n) {
  sbuf *b = ctx;
  if (b->n + n + 1 > b->cap) {
    size_t cap = (b->n + n + 1) * 2;
    char *p = realloc(b->p, cap);
    if (!p)
      return CAIRN_NOMEM;
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->n, buf, n);
  b->n += n;
  b->p[b->n] = 0;
  return 0;
}

/* JSON statistics into a malloc'd NUL-terminated string (em_out). */
EMSCRIPTEN_KEEPALIVE int em_stat_json(cairn_db *db) {
  sbuf b = {NULL, 0, 0};
  int rc = cairn_stat_write(db, CAIRN_STAT_JSON, sbuf_write, &b);
  if (rc != CAIRN_OK) {
    free(b.p);
    out_word = 0;
    return rc;
  }
  out_word = (uintptr_t)b.p;
  return CAIRN_OK;
}

EMSCRIPTEN_KEEPALIVE int em_check(cairn_db *db) {
  return cairn_check(db, NULL, NULL);
}

/* ---- raw files (export / import) --------------------------------------------
 */

EMSCRIPTEN_KEEPALIVE int em_file_open(const char *platform, const char *path,
                                      unsigned flags) {
  cairn_platform *p = cairn_platform_find(platform);
  if (!p)
    return CAIRN_NOTFOUND;
  cairn_file *f = NULL;
  int rc = p->open(p, path, flags, &f);
  out_word = (uintptr_t)f;
  return rc;
}

EMSCRIPTEN_KEEPALIVE double em_file_size(cairn_file *f) {
  uint64_t n = 0;
  int rc = f->methods->size(f, &n);
  return rc ? (double)rc : (double)n;
}

EMSCRIPTEN_KEEPALIVE int em_file_read(cairn_file *f, void *buf, size_t n,
                                      double off) {
  return f->methods->read(f, buf, n, (uint64_t)off);
}

EMSCRIPTEN_KEEPALIVE int em_file_write(cairn_file *f, const void *buf, size_t n,
                                       double off) {
  return f->methods->write(f, buf, n, (uint64_t)off);
}

EMSCRIPTEN_KEEPALIVE int em_file_sync(cairn_file *f) {
  return f->methods->sync(f);
}

EMSCRIPTEN_KEEPALIVE void em_file_close(cairn_file *f) { f->methods->close(f); }

EMSCRIPTEN_KEEPALIVE int em_file_remove(const char *platform,
                                        const char *path) {
  cairn_platform *p = cairn_platform_find(platform);
  return p ? p->remove(p, path) : CAIRN_NOTFOUND;
}

EMSCRIPTEN_KEEPALIVE int em_file_rename(const char *platform, const char *from,
                                        const char *to) {
  cairn_platform *p = cairn_platform_find(platform);
  if (!p)
    return CAIRN_NOTFOUND;
  int rc = p->rename_noreplace(p, from, to);
  if (rc == CAIRN_OK)
    rc = p->sync_dir(p, to);
  return rc;
}
