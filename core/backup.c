/*
 * backup.c — hot, compact and incremental backups, their verification, and
 * restore from a chain of them (format: core/OPERATIONS.md).
 *
 * Invariants this file relies on and keeps:
 *   - A backup copies the pages of one read snapshot. While that snapshot
 *     lives, no page reachable from it is rewritten (freelist.c). They are
 *     read through the engine's page reads one page (or overflow run) at a
 *     time, each pinned only while it is copied (snap_pages below): memory
 *     stays bounded by the largest value, two I/O buffers and the walk's
 *     stack.
 *   - The snapshot is made durable before it is copied. Durable history is
 *     never undone by a crash, so a page stamped with txnid <= T that is
 *     reachable later is the same page every backup at T saw. That is what
 *     makes incremental backups sound: copy-on-write rewrites the whole path
 *     from a changed page to the root, so a tree page stamped <= base (and
 *     everything below it) is unchanged since the base backup and is
 *     skipped without reading further.
 *   - dest never holds a partial file: backups and restores are built under
 *     a temporary name, synced, and renamed without replacing anything.
 *   - Restore verifies every file of the chain (all checksums, the chain's
 *     order, ids and page sizes) before it writes anything, and runs
 *     cairn_check on the result before it gives it the destination name.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crc32c.h"
#include "engine.h"
#include "error.h"
#include "ops.h"

#define BK_MAGIC "cairnBK"      /* 8 bytes with the NUL */
#define BK_END_MAGIC "cairnEND" /* 8 bytes, no NUL */
#define BK_VERSION 1u
#define BK_HDR 4096u
#define BK_PATH_OFF 128u
#define BK_PATH_MAX (BK_HDR - BK_PATH_OFF - 4u)
#define BK_REC_HDR 16u
#define BK_REC_CRC 4u
#define BK_TRAILER 40u
#define BK_CHUNK (1u << 20) /* I/O unit for overflow runs and buffers */

/* ---- the header --------------------------------------------------------- */

typedef struct bk_header {
  uint32_t version, kind, page_size, flags;
  uint8_t db_id[16];
  uint64_t base_txnid, txnid;
  meta m; /* the database state the backup (chain) restores to */
  uint64_t created;
  uint32_t srclen;
  char source[BK_PATH_MAX + 1];
} bk_header;

static void header_encode(const bk_header *h, uint8_t *b) {
  memset(b, 0, BK_HDR);
  memcpy(b, BK_MAGIC, 8);
  st32(b + 8, h->version);
  st32(b + 12, h->kind);
  st32(b + 16, h->page_size);
  st32(b + 20, h->flags);
  memcpy(b + 24, h->db_id, 16);
  st64(b + 40, h->base_txnid);
  st64(b + 48, h->txnid);
  st64(b + 56, h->m.page_count);
  st64(b + 64, h->m.catalog_root);
  st64(b + 72, h->m.catalog_entries);
  st32(b + 80, h->m.catalog_depth);
  st64(b + 88, h->m.freelist_head);
  st64(b + 96, h->m.freelist_count);
  st64(b + 104, h->m.next_cf_id);
  st64(b + 112, h->created);
  st32(b + 120, h->srclen);
  memcpy(b + BK_PATH_OFF, h->source, h->srclen);
  st32(b + BK_HDR - 4, cairn_crc32c(0, b, BK_HDR - 4));
}

static int valid_psize(uint32_t ps) {
  return ps >= CAIRN_MIN_PAGE_SIZE && ps <= CAIRN_MAX_PAGE_SIZE &&
         (ps & (ps - 1)) == 0;
}

/* Decode and validate a header; msg-ready errors name the file. */
static int header_decode(const uint8_t *b, const char *path, bk_header *h) {
  if (memcmp(b, BK_MAGIC, 8) != 0)
    return cairn__seterr(CAIRN_NOTADB, "%s: not a cairn backup file", path);
  memset(h, 0, sizeof *h);
  h->version = ld32(b + 8);
  if (h->version != BK_VERSION)
    return cairn__seterr(CAIRN_VERSION,
                         "%s: backup format version %u (this cairn reads %u)",
                         path, h->version, BK_VERSION);
  if (ld32(b + BK_HDR - 4) != cairn_crc32c(0, b, BK_HDR - 4))
    return cairn__seterr(CAIRN_CORRUPT, "%s: header checksum mismatch", path);
  h->kind = ld32(b + 12);
  h->page_size = ld32(b + 16);
  h->flags = ld32(b + 20);
  memcpy(h->db_id, b + 24, 16);
  h->base_txnid = ld64(b + 40);
  h->txnid = ld64(b + 48);
  h->m.page_count = ld64(b + 56);
  h->m.catalog_root = ld64(b + 64);
  h->m.catalog_entries = ld64(b + 72);
  h->m.catalog_depth = ld32(b + 80);
  h->m.freelist_head = ld64(b + 88);
  h->m.freelist_count = ld64(b + 96);
  h->m.next_cf_id = ld64(b + 104);
  h->created = ld64(b + 112);
  h->srclen = ld32(b + 120);
  h->m.txnid = h->txnid;
  h->m.page_size = h->page_size;
  memcpy(h->m.db_id, h->db_id, 16);
  const meta *m = &h->m;
  if (h->kind < CAIRN_BACKUP_FULL || h->kind > CAIRN_BACKUP_COMPACTED ||
      !valid_psize(h->page_size) || h->srclen > BK_PATH_MAX ||
      m->page_count < 2 || m->catalog_root >= m->page_count ||
      m->freelist_head >= m->page_count || m->catalog_depth > MAX_DEPTH ||
      (m->catalog_root == 0) != (m->catalog_depth == 0) ||
      m->catalog_root == 1 || m->freelist_head == 1 ||
      (h->kind == CAIRN_BACKUP_INCREMENTAL) != (h->base_txnid != 0) ||
      (h->kind == CAIRN_BACKUP_INCREMENTAL && h->base_txnid > h->txnid))
    return cairn__seterr(CAIRN_CORRUPT,
                         "%s: header fields are inconsistent (kind %u, page "
                         "size %u, txn %llu, base %llu)",
                         path, h->kind, h->page_size,
                         (unsigned long long)h->txnid,
                         (unsigned long long)h->base_txnid);
  memcpy(h->source, b + BK_PATH_OFF, h->srclen);
  h->source[h->srclen] = 0;
  return CAIRN_OK;
}

static const char *kind_name(uint32_t kind) {
  switch (kind) {
  case CAIRN_BACKUP_FULL: return "full";
  case CAIRN_BACKUP_INCREMENTAL: return "incremental";
  case CAIRN_BACKUP_COMPACTED: return "compact";
  default: return "unknown";
  }
}

static void hex_id(const uint8_t id[16], char out[33]) {
  static const char d[] = "0123456789abcdef";
  for (int i = 0; i < 16; i++) {
    out[2 * i] = d[id[i] >> 4];
    out[2 * i + 1] = d[id[i] & 15];
  }
  out[32] = 0;
}

/* ---- small helpers ------------------------------------------------------ */

static char *str_dup(const char *s) {
  size_t n = strlen(s) + 1;
  char *d = malloc(n);
  if (d)
    memcpy(d, s, n);
  return d;
}

/* A name next to path that nobody else uses: path.<what>-<clock>-<n>. */
static char *temp_name(const char *path, const char *what) {
  static _Atomic unsigned counter;
  size_t n = strlen(path) + strlen(what) + 64;
  char *t = malloc(n);
  if (t)
    snprintf(t, n, "%s.%s-%llx-%u", path, what,
             (unsigned long long)metrics_now_ns(), (unsigned)++counter);
  return t;
}

/* The platform called name (NULL = the host's default). */
static int find_platform(const char *name, cairn_platform **out) {
  *out = cairn_platform_find(name);
  return *out ? CAIRN_OK
              : cairn__seterr(CAIRN_INVALID, "no platform named '%s'",
                              name ? name : "(default)");
}

/* CAIRN_OK if nothing exists at path, CAIRN_EXISTS if something does. */
static int must_not_exist(cairn_platform *plat, const char *path,
                          const char *what) {
  cairn_file *f = NULL;
  int rc = plat->open(plat, path, CAIRN_PF_RDONLY, &f);
  if (rc == CAIRN_OK) {
    f->methods->close(f);
    return cairn__seterr(CAIRN_EXISTS, "%s: %s already exists (never replaced)",
                         path, what);
  }
  return rc == CAIRN_NOTFOUND ? CAIRN_OK : rc;
}

/* A new random database id. No entropy source is common to every host, so
 * mix both clocks, addresses and a counter through splitmix64. */
static void new_db_id(uint8_t id[16], const char *salt) {
  static _Atomic uint64_t counter;
  uint64_t seed = metrics_now_ns() ^ ((uint64_t)time(NULL) << 20) ^
                  (uint64_t)(uintptr_t)id ^ (++counter << 48) ^
                  cairn_crc32c(0, salt, strlen(salt));
  for (int i = 0; i < 2; i++) {
    uint64_t z = (seed += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    st64(id + 8 * i, z);
  }
}

/* ---- buffered output with a running checksum ---------------------------- */

typedef struct bk_out {
  cairn_file *f;
  uint64_t off; /* file offset of buf[0] */
  uint32_t crc; /* of every byte handed to out_put */
  uint8_t *buf;
  size_t used;
} bk_out;

static int out_flush(bk_out *o) {
  if (!o->used)
    return CAIRN_OK;
  int rc = o->f->methods->write(o->f, o->buf, o->used, o->off);
  o->off += o->used;
  o->used = 0;
  return rc;
}

static int out_put(bk_out *o, const void *p, size_t n) {
  const uint8_t *b = p;
  o->crc = cairn_crc32c(o->crc, b, n);
  while (n) {
    size_t k = BK_CHUNK - o->used < n ? BK_CHUNK - o->used : n;
    memcpy(o->buf + o->used, b, k);
    o->used += k;
    b += k;
    n -= k;
    if (o->used == BK_CHUNK) {
      int rc = out_flush(o);
      if (rc)
        return rc;
    }
  }
  return CAIRN_OK;
}

/* ---- the job ------------------------------------------------------------ */

/* Pages still to visit. Tree pages carry their level and the tree's depth;
 * overflow runs their value length. */
enum { W_CATALOG = 1, W_TREE, W_OVERFLOW, W_FREELIST };
typedef struct witem {
  uint64_t pgno;
  uint32_t kind, level, depth, vlen;
} witem;

enum { PH_BUILD = 1, PH_COPY, PH_DONE };

struct cairn_backup_job {
  cairn_db *db;    /* the source */
  cairn_txn *snap; /* the source snapshot: pins every page we copy */
  cairn_platform *plat;
  char *dest, *tmp;
  uint32_t kind;
  uint64_t base_txnid;
  int phase;
  int rc; /* first failure: every later call returns it */
  /* the database whose pages are copied: the source, or the compact copy */
  cairn_db *pdb;
  cairn_txn *ptxn;
  uint32_t psize;
  bk_out out;
  witem *stack;
  size_t nstack, capstack;
  uint64_t records, pages, hops, visited;
  /* compact: a fresh database filled in key order */
  char *cpath;
  cairn_db *cdb;
  cairn_txn *cw;
  cairn_cursor *cur;
  ops_cfs cfs;     /* the source's column families */
  size_t cfi;      /* the one being copied */
  cairn_cf cf_dst; /* its handle in the copy */
  uint64_t batch_bytes;
};

static int push(cairn_backup_job *j, uint64_t pgno, uint32_t kind,
                uint32_t level, uint32_t depth, uint32_t vlen) {
  if (j->nstack == j->capstack) {
    size_t cap = j->capstack ? 2 * j->capstack : 256;
    witem *n = realloc(j->stack, cap * sizeof *n);
    if (!n)
      return cairn__seterr(CAIRN_NOMEM, "out of memory walking the database");
    j->stack = n;
    j->capstack = cap;
  }
  witem *w = &j->stack[j->nstack++];
  w->pgno = pgno;
  w->kind = kind;
  w->level = level;
  w->depth = depth;
  w->vlen = vlen;
  return CAIRN_OK;
}

/* ---- reading the snapshot: the only place a backup reads the database ---
 *
 * Pages come through the engine's own page reads (pager_get): zero-copy
 * from the map where the host maps, else through the page cache, pinned in
 * the pin scope the caller opened (one page or one overflow run at a time)
 * and validated (checksum, type, self number, bounds). Assumed of the
 * engine (notes in /work/notes/engine-notes.md): every page reachable from
 * the snapshot's meta stays readable and unchanged while the snapshot
 * lives, and those pages hold the snapshot's whole state: with the
 * write-ahead log the snapshot is a checkpoint's (db_begin_checkpointed),
 * and pager_get finds pages still in the deferred page table too. */
static int snap_pages(cairn_backup_job *j, uint64_t pgno, uint64_t npages,
                      unsigned types, const uint8_t **out) {
  return pager_get(&j->pdb->pg, j->ptxn, pgno, npages, types, out);
}

/* The txn id stamped on the run at pgno, from its header alone: whether an
 * incremental backup copies an overflow run depends on it, and validating
 * the whole run to learn it would read the whole value. */
static int snap_stamp(cairn_backup_job *j, uint64_t pgno, uint64_t *txnid) {
  uint64_t count = j->ptxn->snap.page_count;
  if (pgno < 2 || pgno >= count)
    return cairn__seterr(CAIRN_CORRUPT,
                         "page %llu: out of range (the snapshot has %llu "
                         "pages)",
                         (unsigned long long)pgno, (unsigned long long)count);
  /* Pages of logged commits not yet checkpointed live in the deferred
   * page table, sealed with their commit's id. */
  dirty_page *d = deferred_get(&j->pdb->def, pgno, j->ptxn->snap.txnid + 1);
  if (d) {
    *txnid = pg_txnid(d->buf);
    return CAIRN_OK;
  }
  uint8_t h[PAGE_HDR];
  cairn_file *f = j->pdb->pg.file;
  int rc = f->methods->read(f, h, sizeof h, pgno * j->psize);
  if (!rc)
    *txnid = pg_txnid(h);
  return rc;
}

/* out.crc is the whole-file crc; each record also needs its own, so keep
 * both: rec_crc accumulates the record, file_crc everything. */
typedef struct rec_state {
  uint32_t file_crc, rec_crc;
} rec_state;

static int rec_put(cairn_backup_job *j, rec_state *s, const void *p, size_t n) {
  s->rec_crc = cairn_crc32c(s->rec_crc, p, n);
  j->out.crc = s->file_crc;
  int rc = out_put(&j->out, p, n);
  s->file_crc = j->out.crc;
  return rc;
}

static int rec_begin(cairn_backup_job *j, rec_state *s, uint64_t pgno,
                     uint32_t npages) {
  uint8_t h[BK_REC_HDR];
  st64(h, pgno);
  st32(h + 8, npages);
  st32(h + 12, 0);
  s->file_crc = j->out.crc;
  s->rec_crc = 0;
  return rec_put(j, s, h, sizeof h);
}

static int rec_end(cairn_backup_job *j, rec_state *s) {
  uint8_t c[BK_REC_CRC];
  st32(c, s->rec_crc);
  j->out.crc = s->file_crc;
  int rc = out_put(&j->out, c, sizeof c);
  j->records++;
  return rc;
}

static int emit_page(cairn_backup_job *j, uint64_t pgno, const uint8_t *p) {
  rec_state s;
  int rc = rec_begin(j, &s, pgno, 1);
  if (!rc)
    rc = rec_put(j, &s, p, j->psize);
  if (!rc)
    rc = rec_end(j, &s);
  j->pages++;
  return rc;
}

/* Queue what the tree page p (already copied) points to. */
static int push_children(cairn_backup_job *j, const witem *w, const uint8_t *p,
                         int leaf) {
  int rc = CAIRN_OK;
  for (uint32_t i = pg_count(p); i-- > 0 && !rc;) {
    if (!leaf) {
      rc = push(j, branch_child(branch_entry(p, i)), w->kind, w->level + 1,
                w->depth, 0);
      continue;
    }
    const uint8_t *e = leaf_entry(p, i);
    if (w->kind == W_CATALOG) {
      if ((leaf_flags(e) & LEAF_OVERFLOW) || leaf_vlen(e) != CF_RECORD_SIZE)
        return cairn__seterr(CAIRN_CORRUPT, "page %llu: bad catalog entry %u",
                             (unsigned long long)w->pgno, i);
      cf_state s;
      catalog_decode(leaf_val(e), &s);
      if (s.depth > MAX_DEPTH || (s.root == 0) != (s.depth == 0))
        return cairn__seterr(CAIRN_CORRUPT,
                             "page %llu: catalog entry %u is inconsistent",
                             (unsigned long long)w->pgno, i);
      if (s.root)
        rc = push(j, s.root, W_TREE, 0, s.depth, 0);
    } else if (leaf_flags(e) & LEAF_OVERFLOW) {
      rc = push(j, leaf_ovpg(e), W_OVERFLOW, 0, 0, leaf_vlen(e));
    }
  }
  return rc;
}

/* A tree page (catalog or column family) at level of a tree of depth. */
static int visit_tree(cairn_backup_job *j, const witem *w) {
  if (w->level >= w->depth || w->depth > MAX_DEPTH)
    return cairn__seterr(CAIRN_CORRUPT, "page %llu: tree deeper than %u",
                         (unsigned long long)w->pgno, w->depth);
  int leaf = w->level + 1 == w->depth;
  pgmap scope, *saved;
  txn_scope_begin(j->ptxn, &scope, &saved);
  const uint8_t *p;
  int rc =
      snap_pages(j, w->pgno, 1, TYPE_BIT(leaf ? PAGE_LEAF : PAGE_BRANCH), &p);
  /* a page stamped at or before the base backup is unchanged since then,
   * with its whole subtree (copy-on-write rewrites the path to the root) */
  if (!rc && pg_txnid(p) > j->base_txnid) {
    rc = emit_page(j, w->pgno, p);
    if (!rc)
      rc = push_children(j, w, p, leaf);
  }
  txn_scope_end(j->ptxn, &scope, saved);
  return rc;
}

/* An overflow run, as one record. */
static int visit_overflow(cairn_backup_job *j, const witem *w) {
  uint64_t np = overflow_pages(w->vlen, j->psize);
  unsigned long long pg = (unsigned long long)w->pgno;
  if (np > UINT32_MAX)
    return cairn__seterr(CAIRN_CORRUPT, "page %llu: overflow run too long", pg);
  uint64_t stamp = 0;
  int rc = j->base_txnid ? snap_stamp(j, w->pgno, &stamp) : CAIRN_OK;
  if (rc || (j->base_txnid && stamp <= j->base_txnid))
    return rc; /* unchanged since the base backup */
  pgmap scope, *saved;
  txn_scope_begin(j->ptxn, &scope, &saved);
  const uint8_t *p;
  rc = snap_pages(j, w->pgno, np, TYPE_BIT(PAGE_OVERFLOW), &p);
  if (!rc && (pg_count(p) != np || pg_upper(p) != w->vlen))
    rc = cairn__seterr(CAIRN_CORRUPT,
                       "page %llu: not the overflow run of %llu pages its "
                       "leaf entry names",
                       pg, (unsigned long long)np);
  rec_state s;
  if (!rc)
    rc = rec_begin(j, &s, w->pgno, (uint32_t)np);
  if (!rc)
    rc = rec_put(j, &s, p, (size_t)(np * j->psize));
  if (!rc)
    rc = rec_end(j, &s);
  j->pages += np;
  txn_scope_end(j->ptxn, &scope, saved);
  return rc;
}

static int visit_freelist(cairn_backup_job *j, const witem *w) {
  if (++j->hops > j->ptxn->snap.page_count)
    return cairn__seterr(CAIRN_CORRUPT, "freelist chain loops");
  pgmap scope, *saved;
  txn_scope_begin(j->ptxn, &scope, &saved);
  const uint8_t *p;
  int rc = snap_pages(j, w->pgno, 1, TYPE_BIT(PAGE_FREELIST), &p);
  uint64_t next = rc ? 0 : ld64(p + PAGE_HDR);
  if (!rc && pg_txnid(p) > j->base_txnid)
    rc = emit_page(j, w->pgno, p);
  txn_scope_end(j->ptxn, &scope, saved);
  if (!rc && next)
    rc = push(j, next, W_FREELIST, 0, 0, 0);
  return rc;
}

/* Start copying: the header, then the roots of the walk. */
static int copy_start(cairn_backup_job *j) {
  const meta *m = &j->ptxn->snap;
  const meta *src = &j->snap->snap;
  bk_header h;
  memset(&h, 0, sizeof h);
  h.version = BK_VERSION;
  h.kind = j->kind;
  h.page_size = j->psize;
  memcpy(h.db_id, src->db_id, 16);
  h.base_txnid = j->base_txnid;
  h.txnid = src->txnid; /* the source snapshot, for compact ones too */
  h.m = *m;
  h.created = (uint64_t)time(NULL);
  size_t len = strlen(j->db->path);
  h.srclen = (uint32_t)(len < BK_PATH_MAX ? len : BK_PATH_MAX);
  memcpy(h.source, j->db->path, h.srclen);
  uint8_t *b = malloc(BK_HDR);
  if (!b)
    return cairn__seterr(CAIRN_NOMEM, "out of memory");
  header_encode(&h, b);
  j->out.crc = 0;
  int rc = out_put(&j->out, b, BK_HDR);
  free(b);
  if (!rc && m->freelist_head)
    rc = push(j, m->freelist_head, W_FREELIST, 0, 0, 0);
  if (!rc && m->catalog_root)
    rc = push(j, m->catalog_root, W_CATALOG, 0, m->catalog_depth, 0);
  j->phase = PH_COPY;
  return rc;
}

static int copy_step(cairn_backup_job *j, uint64_t budget) {
  int rc = CAIRN_OK;
  uint64_t start = j->visited;
  /* the budget counts pages looked at, copied or (incremental) skipped */
  while (j->nstack && !rc && (budget == 0 || j->visited - start < budget)) {
    witem w = j->stack[--j->nstack];
    j->visited++;
    switch (w.kind) {
    case W_OVERFLOW: rc = visit_overflow(j, &w); break;
    case W_FREELIST: rc = visit_freelist(j, &w); break;
    default: rc = visit_tree(j, &w); break;
    }
  }
  if (!rc && !j->nstack)
    j->phase = PH_DONE;
  return rc;
}

/* ---- compact: rewrite the snapshot into a fresh database ----------------- */

#define COMPACT_BATCH (16u << 20) /* bytes of data per commit of the copy */

static int compact_commit(cairn_backup_job *j) {
  int rc = cairn_commit_ex(j->cw, CAIRN_DURABILITY_SYNC);
  j->cw = NULL;
  j->batch_bytes = 0;
  return rc;
}

/* Copy up to budget bytes of keys and values in key order. Appending at the
 * end of a tree leaves every split's left page full, so the copy's leaves
 * are packed. */
static int compact_step(cairn_backup_job *j, uint64_t budget) {
  uint64_t copied = 0;
  int rc = CAIRN_OK;
  while (!rc && (budget == 0 || copied < budget)) {
    if (!j->cw && (rc = cairn_begin(j->cdb, 0, &j->cw)) != CAIRN_OK) {
      j->cw = NULL;
      return rc;
    }
    if (!j->cur) {
      if (j->cfi == j->cfs.n) { /* everything copied */
        if ((rc = compact_commit(j)) != CAIRN_OK)
          return rc;
        if ((rc = cairn_begin(j->cdb, CAIRN_TXN_RDONLY, &j->ptxn)) != 0)
          return rc;
        j->pdb = j->cdb;
        return copy_start(j);
      }
      rc = cairn_cf_open(j->cw, j->cfs.name[j->cfi], CAIRN_CF_CREATE,
                         &j->cf_dst);
      if (!rc)
        rc = cairn_cursor_open(j->snap, j->cfs.cf[j->cfi], &j->cur);
      if (rc)
        return rc;
      rc = cairn_cursor_first(j->cur);
    } else {
      rc = cairn_cursor_next(j->cur);
    }
    if (rc == CAIRN_NOTFOUND) {
      cairn_cursor_close(j->cur);
      j->cur = NULL;
      j->cfi++;
      rc = CAIRN_OK;
      continue;
    }
    cairn_slice k, v;
    if (!rc)
      rc = cairn_cursor_get(j->cur, &k, &v);
    if (!rc)
      rc = cairn_put(j->cw, j->cf_dst, k, v, 0);
    if (rc)
      return rc;
    copied += k.size + v.size + 16;
    j->batch_bytes += k.size + v.size + 16;
    if (j->batch_bytes >= COMPACT_BATCH)
      rc = compact_commit(j);
  }
  return rc;
}

/* ---- public: options, begin, step, finish, abort ------------------------ */

void cairn_backup_options_init(cairn_backup_options *o) {
  if (o)
    memset(o, 0, sizeof *o);
}

/* The header of a backup and a cheap truncation check (the trailer's magic
 * and the length it implies); the checksums are left to verify/restore. */
static int read_header(cairn_platform *plat, const char *path, bk_header *h) {
  cairn_file *f = NULL;
  uint8_t *b = malloc(BK_HDR);
  if (!b)
    return cairn__seterr(CAIRN_NOMEM, "out of memory");
  uint64_t size = 0;
  int rc = plat->open(plat, path, CAIRN_PF_RDONLY, &f);
  if (rc == CAIRN_NOTFOUND)
    cairn__seterr(rc, "%s: no such backup file", path);
  if (!rc)
    rc = f->methods->size(f, &size);
  if (!rc && size < 8)
    rc = cairn__seterr(CAIRN_NOTADB, "%s: not a cairn backup file", path);
  if (!rc)
    rc = f->methods->read(f, b, size < BK_HDR ? (size_t)size : BK_HDR, 0);
  if (!rc && size < BK_HDR + BK_TRAILER)
    rc = memcmp(b, BK_MAGIC, 8)
             ? cairn__seterr(CAIRN_NOTADB, "%s: not a cairn backup file", path)
             : cairn__seterr(CAIRN_CORRUPT,
                             "%s: truncated (%llu bytes, shorter than a "
                             "header and an end marker)",
                             path, (unsigned long long)size);
  if (!rc)
    rc = header_decode(b, path, h);
  uint8_t t[BK_TRAILER];
  if (!rc)
    rc = f->methods->read(f, t, BK_TRAILER, size - BK_TRAILER);
  if (!rc && memcmp(t, BK_END_MAGIC, 8) != 0)
    rc = cairn__seterr(CAIRN_CORRUPT, "%s: truncated (no end marker)", path);
  if (!rc && ld64(t + 24) != size - BK_HDR - BK_TRAILER)
    rc =
        cairn__seterr(CAIRN_CORRUPT,
                      "%s: truncated or extended (%llu bytes; the end "
                      "marker says %llu)",
                      path, (unsigned long long)size,
                      (unsigned long long)(ld64(t + 24) + BK_HDR + BK_TRAILER));
  if (f)
    f->methods->close(f);
  free(b);
  return rc;
}

static void job_free(cairn_backup_job *j) {
  if (j->cur)
    cairn_cursor_close(j->cur);
  cairn_abort(j->cw);
  if (j->ptxn && j->ptxn != j->snap)
    cairn_abort(j->ptxn);
  cairn_abort(j->snap);
  if (j->cdb)
    cairn_close(j->cdb);
  if (j->cpath) {
    cairn_platform *p = j->plat;
    p->remove(p, j->cpath);
    free(j->cpath);
  }
  if (j->out.f) {
    j->out.f->methods->close(j->out.f);
    j->plat->remove(j->plat, j->tmp); /* only ever the temporary name */
  }
  ops_cfs_free(&j->cfs);
  free(j->stack);
  free(j->out.buf);
  free(j->dest);
  free(j->tmp);
  free(j);
}

/* Free a failed job and return rc with the failure's message, which the
 * cleanup (removing temporary files that may not exist) must not replace. */
static int job_fail(cairn_backup_job *j, int rc) {
  char msg[1024];
  snprintf(msg, sizeof msg, "%s", cairn_errmsg());
  job_free(j);
  return cairn__seterr(rc, "%s", msg);
}

int cairn_backup_begin(cairn_db *db, const char *dest,
                       const cairn_backup_options *opts,
                       cairn_backup_job **out) {
  if (!out)
    return cairn__seterr(CAIRN_INVALID, "cairn_backup_begin: out is NULL");
  *out = NULL;
  if (!db || !dest || !*dest)
    return cairn__seterr(CAIRN_INVALID,
                         "cairn_backup_begin: db or dest missing");
  cairn_backup_options o;
  if (opts)
    o = *opts;
  else
    cairn_backup_options_init(&o);
  if (o.flags & ~CAIRN_BACKUP_COMPACT)
    return cairn__seterr(CAIRN_INVALID, "cairn_backup: unknown flags 0x%x",
                         o.flags);
  if ((o.flags & CAIRN_BACKUP_COMPACT) && o.incremental_from)
    return cairn__seterr(CAIRN_INVALID,
                         "cairn_backup: a compact backup cannot be "
                         "incremental");
  cairn_platform *plat =
      cairn_platform_find(o.platform ? o.platform : db->opts.platform);
  if (!plat)
    return cairn__seterr(CAIRN_INVALID, "cairn_backup: no platform named '%s'",
                         o.platform ? o.platform : db->opts.platform);
  int rc = must_not_exist(plat, dest, "backup destination");
  if (rc)
    return rc;
  cairn_backup_job *j = calloc(1, sizeof *j);
  if (!j)
    return cairn__seterr(CAIRN_NOMEM, "out of memory");
  j->db = db;
  j->plat = plat;
  j->psize = db->pg.psize;
  j->kind = (o.flags & CAIRN_BACKUP_COMPACT) ? CAIRN_BACKUP_COMPACTED
            : o.incremental_from             ? CAIRN_BACKUP_INCREMENTAL
                                             : CAIRN_BACKUP_FULL;
  j->dest = str_dup(dest);
  j->tmp = temp_name(dest, "cairn-backup");
  j->out.buf = malloc(BK_CHUNK);
  if (!j->dest || !j->tmp || !j->out.buf) {
    job_free(j);
    return cairn__seterr(CAIRN_NOMEM, "out of memory");
  }
  bk_header base;
  if (o.incremental_from) {
    rc = read_header(plat, o.incremental_from, &base);
    if (!rc && base.kind == CAIRN_BACKUP_COMPACTED)
      rc = cairn__seterr(CAIRN_INVALID,
                         "%s is a compact backup: its pages are not the "
                         "database's, so an incremental backup cannot "
                         "continue it (use a full or incremental one)",
                         o.incremental_from);
    if (!rc && base.page_size != j->psize)
      rc = cairn__seterr(CAIRN_INVALID, "%s has page size %u, this database %u",
                         o.incremental_from, base.page_size, j->psize);
    if (rc) {
      return job_fail(j, rc);
    }
    j->base_txnid = base.txnid;
  }
  /* The snapshot. It must be durable: an incremental backup may one day
   * continue this one, and a crash must not rewind history behind it. With
   * the log it is a checkpoint's, so its meta page and free list describe
   * it exactly. */
  rc = db_begin_checkpointed(db, &j->snap);
  if (!rc) {
    cairn_mutex_lock(&db->meta_mu);
    int durable = db->durable_txnid >= j->snap->snap.txnid;
    cairn_mutex_unlock(&db->meta_mu);
    if (!durable && (rc = cairn_sync(db)) != CAIRN_OK)
      cairn__seterr(rc, "cairn_backup: cannot make the snapshot durable: %s",
                    cairn_errmsg());
  }
  if (!rc && o.incremental_from &&
      memcmp(base.db_id, j->snap->snap.db_id, 16) != 0) {
    char a[33], b[33];
    hex_id(base.db_id, a);
    hex_id(j->snap->snap.db_id, b);
    rc = cairn__seterr(CAIRN_INVALID,
                       "%s was taken from database %s, not from this one "
                       "(%s)",
                       o.incremental_from, a, b);
  }
  if (!rc && o.incremental_from && j->base_txnid > j->snap->snap.txnid)
    rc = cairn__seterr(CAIRN_INVALID,
                       "%s holds txn %llu, newer than this database's "
                       "newest commit %llu",
                       o.incremental_from, (unsigned long long)j->base_txnid,
                       (unsigned long long)j->snap->snap.txnid);
  if (!rc)
    rc = plat->open(plat, j->tmp, CAIRN_PF_CREATE | CAIRN_PF_EXCL, &j->out.f);
  if (rc) {
    j->out.f = NULL;
    return job_fail(j, rc);
  }
  if (j->kind == CAIRN_BACKUP_COMPACTED) {
    cairn_options co;
    cairn_options_init(&co);
    co.page_size = j->psize;
    co.platform = plat->name;
    co.flags = CAIRN_OPEN_CREATE | CAIRN_OPEN_NOLOG; /* a scratch file */
    j->cpath = temp_name(dest, "cairn-compact");
    if (!j->cpath)
      rc = cairn__seterr(CAIRN_NOMEM, "out of memory");
    if (!rc)
      rc = cairn_open(j->cpath, &co, &j->cdb);
    if (!rc)
      rc = ops_cfs_get(j->snap, &j->cfs);
    j->phase = PH_BUILD;
  } else {
    j->pdb = db;
    j->ptxn = j->snap;
    rc = copy_start(j);
  }
  if (rc) {
    return job_fail(j, rc);
  }
  *out = j;
  cairn__clearerr();
  return CAIRN_OK;
}

uint64_t cairn_backup_txn_id(const cairn_backup_job *job) {
  return job && job->snap ? job->snap->snap.txnid : 0;
}

int cairn_backup_step(cairn_backup_job *j, uint64_t max_pages, int *done) {
  if (done)
    *done = 0;
  if (!j)
    return cairn__seterr(CAIRN_INVALID, "cairn_backup_step: job is NULL");
  if (j->rc)
    return cairn__seterr(j->rc, "the backup failed earlier; abort it");
  int rc = CAIRN_OK;
  if (j->phase == PH_BUILD)
    rc = compact_step(j, max_pages * j->psize);
  else if (j->phase == PH_COPY)
    rc = copy_step(j, max_pages);
  if (rc)
    return j->rc = rc;
  if (done)
    *done = j->phase == PH_DONE;
  cairn__clearerr();
  return CAIRN_OK;
}

int cairn_backup_finish(cairn_backup_job *j) {
  if (!j)
    return cairn__seterr(CAIRN_INVALID, "cairn_backup_finish: job is NULL");
  int rc = j->rc;
  while (!rc && j->phase != PH_DONE)
    rc = cairn_backup_step(j, 0, NULL);
  if (!rc) {
    uint8_t t[BK_TRAILER];
    memcpy(t, BK_END_MAGIC, 8);
    st64(t + 8, j->records);
    st64(t + 16, j->pages);
    st64(t + 24, j->out.off + j->out.used - BK_HDR);
    st32(t + 32, 0);
    uint32_t crc = cairn_crc32c(j->out.crc, t, BK_TRAILER - 4);
    st32(t + 36, crc);
    rc = out_put(&j->out, t, BK_TRAILER);
  }
  if (!rc)
    rc = out_flush(&j->out);
  if (!rc)
    rc = j->out.f->methods->sync(j->out.f);
  if (!rc) {
    j->out.f->methods->close(j->out.f);
    j->out.f = NULL;
    rc = j->plat->rename_noreplace(j->plat, j->tmp, j->dest);
    if (rc == CAIRN_EXISTS)
      cairn__seterr(rc,
                    "%s: backup destination appeared meanwhile (never "
                    "replaced)",
                    j->dest);
    if (rc)
      j->plat->remove(j->plat, j->tmp);
    else
      rc = j->plat->sync_dir(j->plat, j->dest);
  }
  if (rc)
    return job_fail(j, rc);
  job_free(j);
  cairn__clearerr();
  return CAIRN_OK;
}

void cairn_backup_abort(cairn_backup_job *j) {
  if (j)
    job_free(j);
}

int cairn_backup(cairn_db *db, const char *dest,
                 const cairn_backup_options *opts) {
  cairn_backup_job *j;
  int rc = cairn_backup_begin(db, dest, opts, &j);
  return rc ? rc : cairn_backup_finish(j);
}

/* ---- reading a backup: verification and restore ------------------------- */

typedef struct bk_in {
  cairn_file *f;
  const char *path;
  uint64_t size, off; /* off: file offset of the next byte to consume */
  uint32_t crc;       /* of every byte consumed */
  uint8_t *buf;
  size_t have, at; /* buf[at..have) holds the bytes from off on */
} bk_in;

/* Refill the (empty) buffer from the current offset. */
static int in_fill(bk_in *in) {
  uint64_t left = in->size - in->off;
  size_t k = left < BK_CHUNK ? (size_t)left : BK_CHUNK;
  in->have = in->at = 0;
  int rc = in->f->methods->read(in->f, in->buf, k, in->off);
  if (!rc)
    in->have = k;
  return rc;
}

/* Consume n bytes (into dst if not NULL); CAIRN_CORRUPT "truncated" when the
 * file ends first. */
static int in_get(bk_in *in, void *dst, size_t n, const char *where) {
  uint8_t *d = dst;
  if (in->size - in->off < n)
    return cairn__seterr(CAIRN_CORRUPT,
                         "%s: truncated (the file ends inside "
                         "%s)",
                         in->path, where);
  while (n) {
    int rc = in->at == in->have ? in_fill(in) : CAIRN_OK;
    if (rc)
      return rc;
    size_t k = in->have - in->at < n ? in->have - in->at : n;
    in->crc = cairn_crc32c(in->crc, in->buf + in->at, k);
    if (d) {
      memcpy(d, in->buf + in->at, k);
      d += k;
    }
    in->at += k;
    in->off += k;
    n -= k;
  }
  return CAIRN_OK;
}

/* Peek at the next 8 bytes without consuming them (0 bytes left: 0). */
static int in_peek8(bk_in *in, uint8_t out[8], int *avail) {
  *avail = in->size - in->off >= 8;
  if (!*avail)
    return CAIRN_OK;
  if (in->have - in->at >= 8) {
    memcpy(out, in->buf + in->at, 8);
    return CAIRN_OK;
  }
  return in->f->methods->read(in->f, out, 8, in->off);
}

/* Where verified pages go during a restore (NULL: only verify). */
typedef struct bk_sink {
  cairn_file *f;
  uint32_t psize;
} bk_sink;

/* Read a whole backup file, checking every checksum and bound; with a sink,
 * also write each record's pages to their place in the new database. */
static int scan_backup(cairn_platform *plat, const char *path, bk_header *h,
                       cairn_backup_info *info, bk_sink *sink) {
  bk_in in;
  memset(&in, 0, sizeof in);
  in.path = path;
  in.buf = malloc(BK_CHUNK);
  uint8_t *hb = malloc(BK_HDR);
  int rc =
      in.buf && hb ? CAIRN_OK : cairn__seterr(CAIRN_NOMEM, "out of memory");
  if (!rc) {
    rc = plat->open(plat, path, CAIRN_PF_RDONLY, &in.f);
    if (rc == CAIRN_NOTFOUND)
      cairn__seterr(rc, "%s: no such backup file", path);
    if (rc)
      in.f = NULL;
  }
  if (!rc)
    rc = in.f->methods->size(in.f, &in.size);
  if (!rc && in.size < 8)
    rc = cairn__seterr(CAIRN_NOTADB, "%s: not a cairn backup file", path);
  if (!rc && in.size < BK_HDR) {
    rc = in.f->methods->read(in.f, hb, 8, 0);
    if (!rc)
      rc =
          memcmp(hb, BK_MAGIC, 8)
              ? cairn__seterr(CAIRN_NOTADB, "%s: not a cairn backup file", path)
              : cairn__seterr(CAIRN_CORRUPT,
                              "%s: truncated (the file ends inside the "
                              "header)",
                              path);
  }
  if (!rc)
    rc = in_get(&in, hb, BK_HDR, "the header");
  if (!rc)
    rc = header_decode(hb, path, h);
  uint64_t records = 0, pages = 0;
  uint32_t ps = h->page_size;
  while (!rc) {
    uint8_t peek[8];
    int avail;
    rc = in_peek8(&in, peek, &avail);
    if (rc)
      break;
    if (!avail) {
      rc = cairn__seterr(CAIRN_CORRUPT,
                         "%s: truncated (no end marker after %llu page "
                         "records)",
                         path, (unsigned long long)records);
      break;
    }
    if (memcmp(peek, BK_END_MAGIC, 8) == 0)
      break;
    char where[96];
    snprintf(where, sizeof where, "page record %llu",
             (unsigned long long)records + 1);
    uint8_t rh[BK_REC_HDR];
    uint32_t rcrc = 0;
    rc = in_get(&in, rh, BK_REC_HDR, where);
    if (rc)
      break;
    rcrc = cairn_crc32c(0, rh, BK_REC_HDR);
    uint64_t pgno = ld64(rh);
    uint32_t np = ld32(rh + 8);
    snprintf(where, sizeof where, "page record %llu (page %llu)",
             (unsigned long long)records + 1, (unsigned long long)pgno);
    if (pgno < 2 || np == 0 || ld32(rh + 12) != 0 || pgno >= h->m.page_count ||
        np > h->m.page_count - pgno) {
      rc = cairn__seterr(CAIRN_CORRUPT,
                         "%s: %s: bad record header (%u pages; the database "
                         "has %llu)",
                         path, where, np, (unsigned long long)h->m.page_count);
      break;
    }
    uint64_t bytes = (uint64_t)np * ps;
    if (in.size - in.off < bytes + BK_REC_CRC) {
      rc =
          cairn__seterr(CAIRN_CORRUPT,
                        "%s: truncated (the file ends inside %s)", path, where);
      break;
    }
    for (uint64_t at = 0; at < bytes && !rc;) {
      /* straight out of the input buffer: no copy */
      if (in.at == in.have && (rc = in_fill(&in)) != CAIRN_OK)
        break;
      size_t k = in.have - in.at;
      if (k > bytes - at)
        k = (size_t)(bytes - at);
      const uint8_t *d = in.buf + in.at;
      rcrc = cairn_crc32c(rcrc, d, k);
      in.crc = cairn_crc32c(in.crc, d, k);
      if (sink)
        rc = sink->f->methods->write(sink->f, d, k, pgno * ps + at);
      in.at += k;
      in.off += k;
      at += k;
    }
    uint8_t cb[BK_REC_CRC];
    if (!rc)
      rc = in_get(&in, cb, BK_REC_CRC, where);
    if (!rc && ld32(cb) != rcrc)
      rc = cairn__seterr(CAIRN_CORRUPT, "%s: %s: checksum mismatch", path,
                         where);
    records++;
    pages += np;
  }
  uint8_t t[BK_TRAILER];
  if (!rc)
    rc = in_get(&in, t, BK_TRAILER - 4, "the end marker");
  uint32_t crc = in.crc;
  if (!rc)
    rc = in_get(&in, t + BK_TRAILER - 4, 4, "the end marker");
  if (!rc && (ld64(t + 8) != records || ld64(t + 16) != pages ||
              ld64(t + 24) != in.off - BK_HDR - BK_TRAILER))
    rc = cairn__seterr(CAIRN_CORRUPT,
                       "%s: the end marker counts %llu records, the file "
                       "holds %llu",
                       path, (unsigned long long)ld64(t + 8),
                       (unsigned long long)records);
  if (!rc && ld32(t + BK_TRAILER - 4) != crc)
    rc = cairn__seterr(CAIRN_CORRUPT, "%s: whole-file checksum mismatch", path);
  if (!rc && in.off != in.size)
    rc = cairn__seterr(CAIRN_CORRUPT,
                       "%s: %llu bytes after the end marker (appended to?)",
                       path, (unsigned long long)(in.size - in.off));
  if (!rc && info) {
    memset(info, 0, sizeof *info);
    info->kind = h->kind;
    info->page_size = h->page_size;
    memcpy(info->db_id, h->db_id, 16);
    info->base_txn_id = h->base_txnid;
    info->txn_id = h->txnid;
    info->db_pages = h->m.page_count;
    info->pages = pages;
    info->file_size = in.size;
    size_t sl = h->srclen < sizeof info->source - 1 ? h->srclen
                                                    : sizeof info->source - 1;
    memcpy(info->source, h->source, sl);
    info->source[sl] = 0;
  }
  if (in.f)
    in.f->methods->close(in.f);
  free(in.buf);
  free(hb);
  return rc;
}

int cairn_backup_verify(const char *path, const char *platform,
                        cairn_backup_info *out) {
  if (!path || !*path)
    return cairn__seterr(CAIRN_INVALID, "cairn_backup_verify: no path");
  cairn_platform *plat;
  int prc = find_platform(platform, &plat);
  if (prc)
    return prc;
  bk_header h;
  int rc = scan_backup(plat, path, &h, out, NULL);
  if (!rc)
    cairn__clearerr();
  return rc;
}

/* The chain rules, checked before anything is written. */
static int check_chain(const char *const *paths, const bk_header *h, size_t n) {
  if (h[0].kind == CAIRN_BACKUP_INCREMENTAL) {
    for (size_t k = 1; k < n; k++)
      if (h[k].kind != CAIRN_BACKUP_INCREMENTAL)
        return cairn__seterr(CAIRN_INVALID,
                             "wrong order: backup 1 (%s) is incremental and "
                             "backup %zu (%s) is %s; the full backup comes "
                             "first",
                             paths[0], k + 1, paths[k], kind_name(h[k].kind));
    return cairn__seterr(CAIRN_INVALID,
                         "backup 1 (%s) is incremental (it continues txn "
                         "%llu): a restore starts with a full backup",
                         paths[0], (unsigned long long)h[0].base_txnid);
  }
  for (size_t i = 1; i < n; i++) {
    const char *p = paths[i];
    if (h[i].kind != CAIRN_BACKUP_INCREMENTAL)
      return cairn__seterr(CAIRN_INVALID,
                           "backup %zu (%s) is a %s backup: only the first "
                           "backup of a chain may be",
                           i + 1, p, kind_name(h[i].kind));
    if (memcmp(h[i].db_id, h[0].db_id, 16) != 0) {
      char a[33], b[33];
      hex_id(h[i].db_id, a);
      hex_id(h[0].db_id, b);
      return cairn__seterr(CAIRN_INVALID,
                           "backup %zu (%s) was taken from database %s, "
                           "backup 1 (%s) from database %s: not one chain",
                           i + 1, p, a, paths[0], b);
    }
    if (h[i].page_size != h[0].page_size)
      return cairn__seterr(CAIRN_INVALID,
                           "backup %zu (%s) has page size %u, backup 1 (%s) "
                           "%u: not one chain",
                           i + 1, p, h[i].page_size, paths[0], h[0].page_size);
    if (h[0].kind == CAIRN_BACKUP_COMPACTED)
      return cairn__seterr(CAIRN_INVALID,
                           "backup 1 (%s) is compact: incremental backups "
                           "(backup %zu, %s) continue a full backup's pages, "
                           "never a compact one",
                           paths[0], i + 1, p);
    uint64_t prev = h[i - 1].txnid, base = h[i].base_txnid;
    if (base == prev)
      continue;
    for (size_t k = 0; k < n; k++)
      if (k != i && h[k].txnid == base)
        return cairn__seterr(CAIRN_INVALID,
                             "wrong order: backup %zu (%s) continues txn "
                             "%llu, which backup %zu (%s) holds, but follows "
                             "backup %zu (txn %llu); list backups in the "
                             "order they were taken",
                             i + 1, p, (unsigned long long)base, k + 1,
                             paths[k], i, (unsigned long long)prev);
    if (base > prev)
      return cairn__seterr(CAIRN_INVALID,
                           "gap in the chain: backup %zu (%s) continues txn "
                           "%llu but backup %zu ends at txn %llu; the "
                           "backup(s) in between are missing",
                           i + 1, p, (unsigned long long)base, i,
                           (unsigned long long)prev);
    return cairn__seterr(CAIRN_INVALID,
                         "backup %zu (%s) continues txn %llu, not backup %zu "
                         "(txn %llu): it belongs to another chain (or the "
                         "order is wrong)",
                         i + 1, p, (unsigned long long)base, i,
                         (unsigned long long)prev);
  }
  return CAIRN_OK;
}

static void count_problem(void *ctx, const char *problem) {
  (void)problem;
  ++*(uint64_t *)ctx;
}

/* Open the restored file read-only and run the integrity check on it. */
static int check_restored(cairn_platform *plat, const char *tmp,
                          const char *dest) {
  cairn_options o;
  cairn_options_init(&o);
  o.flags = CAIRN_OPEN_RDONLY;
  o.platform = plat->name;
  cairn_db *db = NULL;
  int rc = cairn_open(tmp, &o, &db);
  uint64_t problems = 0;
  if (!rc)
    rc = cairn_check(db, count_problem, &problems);
  if (rc) {
    char msg[512];
    snprintf(msg, sizeof msg, "%s", cairn_errmsg());
    cairn_close(db);
    return cairn__seterr(rc,
                         "%s: the restored database fails the integrity "
                         "check (%s)",
                         dest, msg);
  }
  return cairn_close(db);
}

/* Check the arguments naming a chain; who = the API function. */
static int chain_args(const char *const *backups, size_t n, const char *who) {
  if (!backups || n == 0)
    return cairn__seterr(CAIRN_INVALID, "%s: no backups", who);
  for (size_t i = 0; i < n; i++)
    if (!backups[i] || !*backups[i])
      return cairn__seterr(CAIRN_INVALID, "%s: backup %zu has no path", who,
                           i + 1);
  return CAIRN_OK;
}

/* Pass 1 of a restore: every file whole and sound (h[i] gets its header),
 * and the chain in order. */
static int verify_chain(cairn_platform *plat, const char *const *backups,
                        size_t n, bk_header *h) {
  int rc = CAIRN_OK;
  for (size_t i = 0; i < n && !rc; i++) {
    rc = scan_backup(plat, backups[i], &h[i], NULL, NULL);
    if (rc) {
      char msg[1024];
      snprintf(msg, sizeof msg, "%s", cairn_errmsg());
      cairn__seterr(rc, "backup %zu: %s", i + 1, msg);
    }
  }
  return rc ? rc : check_chain(backups, h, n);
}

int cairn_backup_verify_chain(const char *const *backups, size_t n,
                              const char *platform) {
  int rc = chain_args(backups, n, "cairn_backup_verify_chain");
  if (rc)
    return rc;
  cairn_platform *plat;
  int prc = find_platform(platform, &plat);
  if (prc)
    return prc;
  bk_header *h = calloc(n, sizeof *h);
  if (!h)
    return cairn__seterr(CAIRN_NOMEM, "out of memory");
  rc = verify_chain(plat, backups, n, h);
  free(h);
  if (!rc)
    cairn__clearerr();
  return rc;
}

int cairn_restore(const char *const *backups, size_t n, const char *dest,
                  const char *platform) {
  int rc = chain_args(backups, n, "cairn_restore");
  if (rc)
    return rc;
  if (!dest || !*dest)
    return cairn__seterr(CAIRN_INVALID, "cairn_restore: no destination");
  cairn_platform *plat;
  int prc = find_platform(platform, &plat);
  if (prc)
    return prc;
  rc = must_not_exist(plat, dest, "restore destination");
  if (rc)
    return rc;
  bk_header *h = calloc(n, sizeof *h);
  if (!h)
    return cairn__seterr(CAIRN_NOMEM, "out of memory");
  /* Pass 1: every file whole and sound, and the chain in order. */
  rc = verify_chain(plat, backups, n, h);
  char *tmp = rc ? NULL : temp_name(dest, "cairn-restore");
  if (!rc && !tmp)
    rc = cairn__seterr(CAIRN_NOMEM, "out of memory");
  /* Pass 2: lay the pages of each file over the previous ones. */
  cairn_file *f = NULL;
  if (!rc) {
    rc = plat->open(plat, tmp, CAIRN_PF_CREATE | CAIRN_PF_EXCL, &f);
    if (rc)
      f = NULL;
  }
  bk_sink sink = {f, h[0].page_size};
  for (size_t i = 0; i < n && !rc; i++) {
    bk_header again;
    rc = scan_backup(plat, backups[i], &again, NULL, &sink);
    if (!rc &&
        (again.txnid != h[i].txnid || memcmp(again.db_id, h[i].db_id, 16) != 0))
      rc = cairn__seterr(CAIRN_IO, "%s changed during the restore", backups[i]);
  }
  const bk_header *last = &h[n - 1];
  uint32_t ps = h[0].page_size;
  if (!rc)
    rc = f->methods->truncate(f, last->m.page_count * ps);
  if (!rc)
    rc = f->methods->sync(f);
  if (!rc) {
    /* The meta pages last: both slots, the same commit, a new identity. */
    meta m = last->m;
    new_db_id(m.db_id, dest);
    uint8_t *page = calloc(1, ps);
    if (!page)
      rc = cairn__seterr(CAIRN_NOMEM, "out of memory");
    for (uint64_t slot = 0; slot < 2 && !rc; slot++) {
      meta_encode(&m, page, slot);
      rc = f->methods->write(f, page, ps, slot * ps);
    }
    free(page);
  }
  if (!rc)
    rc = f->methods->sync(f);
  if (f)
    f->methods->close(f);
  if (!rc)
    rc = check_restored(plat, tmp, dest);
  if (!rc) {
    rc = plat->rename_noreplace(plat, tmp, dest);
    if (rc == CAIRN_EXISTS)
      cairn__seterr(rc,
                    "%s: restore destination appeared meanwhile (never "
                    "replaced)",
                    dest);
    if (!rc)
      rc = plat->sync_dir(plat, dest);
    else
      plat->remove(plat, tmp);
  } else if (f) {
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", cairn_errmsg());
    plat->remove(plat, tmp);
    cairn__seterr(rc, "%s", msg);
  }
  free(tmp);
  free(h);
  if (!rc)
    cairn__clearerr();
  return rc;
}
