/*
 * txn.c — transactions: snapshots, the write transaction's dirty pages, and
 * the commit protocol. This is where a commit becomes durable.
 *
 * Commit protocol (sync durability):
 *   1. fold column family roots into the catalog, write the free set;
 *   2. write every dirty page (sealed with its checksum) to free or new
 *      page numbers only — nothing the last durable commit can reach;
 *   3. sync; 4. write the meta page into the slot NOT holding the last
 *      durable meta; 5. sync. Then publish the new state to readers.
 * A crash before 5 leaves the previous durable meta valid and its pages
 * untouched; a torn meta fails its checksum and open takes the other slot.
 * Lazy durability stops after 2 and publishes; cairn_sync (or the automatic
 * sync) later performs 3-5 for the newest commit. Pages freed by commits
 * newer than the durable one are not reused until then (freelist.c).
 */
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "crc32c.h"
#include "error.h"

int txn_fail(cairn_txn *txn, int rc) {
  /* Only failures that can strike in the middle of changing the tree make
   * a write txn unusable; misuse is refused before anything changes, and a
   * read txn never changes anything. */
  int severe = rc == CAIRN_IO || rc == CAIRN_NOSPC || rc == CAIRN_NOMEM ||
               rc == CAIRN_CORRUPT || rc == CAIRN_TOOBIG;
  if (severe && !txn->rdonly)
    txn->failed = 1;
  return rc;
}

int txn_check_live(const cairn_txn *txn) {
  if (!txn)
    return cairn__seterr(CAIRN_INVALID, "transaction handle is NULL");
  if (txn->failed)
    return cairn__seterr(CAIRN_BADTXN,
                         "transaction failed earlier; it can only be aborted");
  return CAIRN_OK;
}

static int check_type(const uint8_t *p, uint64_t pgno, unsigned types) {
  unsigned t = pg_type(p);
  if (t > 31 || !(types & TYPE_BIT(t)))
    return cairn__seterr(CAIRN_CORRUPT, "page %llu: unexpected type %u",
                         (unsigned long long)pgno, t);
  return CAIRN_OK;
}

int txn_page(cairn_txn *txn, uint64_t pgno, unsigned types,
             const uint8_t **out) {
  if (!txn->rdonly && txn->dirty.len) {
    dirty_page *d = pgmap_get(&txn->dirty, pgno);
    if (d) {
      *out = d->buf;
      return check_type(d->buf, pgno, types);
    }
  }
  return pager_get(&txn->db->pg, txn, pgno, 1, types, out);
}

void txn_scope_begin(cairn_txn *txn, pgmap *scope, pgmap **saved) {
  memset(scope, 0, sizeof *scope);
  *saved = txn->pin_to;
  txn->pin_to = scope;
}

void txn_scope_end(cairn_txn *txn, pgmap *scope, pgmap *saved) {
  txn->pin_to = saved;
  pager_release_set(&txn->db->pg, scope);
  pgmap_free(scope);
}

int txn_overflow(cairn_txn *txn, uint64_t pgno, uint32_t vlen,
                 const uint8_t **out) {
  uint64_t np = overflow_pages(vlen, txn->snap.page_size);
  const uint8_t *p = NULL;
  dirty_page *d = txn->rdonly ? NULL : pgmap_get(&txn->dirty, pgno);
  int rc;
  if (d) {
    p = d->buf;
    rc = d->npages == np ? check_type(p, pgno, TYPE_BIT(PAGE_OVERFLOW))
                         : CAIRN_CORRUPT;
  } else {
    rc = pager_get(&txn->db->pg, txn, pgno, np, TYPE_BIT(PAGE_OVERFLOW), &p);
  }
  if (rc == CAIRN_OK && pg_upper(p) != vlen)
    rc = CAIRN_CORRUPT;
  if (rc == CAIRN_CORRUPT && p)
    return cairn__seterr(CAIRN_CORRUPT,
                         "page %llu: overflow value length does not match "
                         "its leaf entry",
                         (unsigned long long)pgno);
  if (rc)
    return rc;
  *out = p + PAGE_HDR;
  return CAIRN_OK;
}

/* While a checkpoint folds in the background, only it may change pages
 * (ckpt_bg.c): the write txn must have moved onto its tree first. */
static int pages_mine(cairn_txn *txn) {
  if (txn->db->bg && !txn->checkpoint)
    return txn_fail(txn, cairn__seterr(CAIRN_INVALID,
                                       "a page changed while a checkpoint "
                                       "folds in the background (a bug)"));
  return CAIRN_OK;
}

/* zero: the caller does not overwrite the whole page (a fresh page must not
 * carry stale bytes to disk). */
static int alloc_pages(cairn_txn *txn, uint64_t n, int zero, uint8_t **buf,
                       uint64_t *pgno) {
  uint32_t psize = txn->snap.page_size;
  uint64_t pg;
  int rc = pages_mine(txn);
  if (rc)
    return rc;
  if (pgvec_reserve(&txn->taken, txn->taken.len + n))
    return txn_fail(txn, cairn__seterr(CAIRN_NOMEM, "out of memory"));
  if (n == 1 && txn->local_free.len) {
    pg = txn->local_free.v[--txn->local_free.len];
  } else if (freelist_take(&txn->db->fl, n, &pg) == CAIRN_OK) {
    for (uint64_t i = 0; i < n; i++)
      txn->taken.v[txn->taken.len++] = pg + i; /* reserved above */
    METRIC_ADD(&txn->db->metrics, pages_reused, n);
  } else {
    METRIC_ADD(&txn->db->metrics, pages_allocated_new, n);
    if (txn->snap.page_count + n < txn->snap.page_count ||
        txn->snap.page_count + n > (UINT64_MAX / psize))
      return txn_fail(txn,
                      cairn__seterr(CAIRN_NOSPC, "page numbers exhausted"));
    pg = txn->snap.page_count;
    txn->snap.page_count += n;
  }
  dirty_page *d = NULL;
  if (n == 1) {
    if ((d = page_pool_get(&txn->db->pool)) != NULL && zero)
      memset(d->buf, 0, psize);
  } else if ((d = malloc(sizeof *d)) != NULL &&
             !(d->buf = calloc((size_t)n, psize))) {
    free(d);
    d = NULL;
  }
  if (d) { /* before pgmap_put: its failure path reads them */
    d->pgno = pg;
    d->npages = n;
  }
  if (!d || (rc = pgmap_put(&txn->dirty, pg, d)) != CAIRN_OK) {
    page_pool_put(&txn->db->pool, d);
    pgvec_push(&txn->local_free, pg); /* best effort; txn is failed anyway */
    return txn_fail(
        txn, cairn__seterr(CAIRN_NOMEM, "out of memory for a dirty page"));
  }
  uint8_t *b = d->buf;
  if (zero)
    page_init(b, psize, 0, pg);
  *buf = b;
  *pgno = pg;
  return CAIRN_OK;
}

int txn_alloc(cairn_txn *txn, uint64_t n, uint8_t **buf, uint64_t *pgno) {
  return alloc_pages(txn, n, 1, buf, pgno);
}

int txn_alloc_page_to_build(cairn_txn *txn, uint8_t **buf, uint64_t *pgno) {
  return alloc_pages(txn, 1, 0, buf, pgno);
}

static int retire(cairn_txn *txn, dirty_page *d) {
  if (txn->nretired == txn->capretired) {
    size_t cap = txn->capretired ? txn->capretired * 2 : 16;
    dirty_page **n = realloc(txn->retired, cap * sizeof *n);
    if (!n) {
      page_pool_put(&txn->db->pool, d); /* cannot defer: free now */
      return CAIRN_OK;
    }
    txn->retired = n;
    txn->capretired = cap;
  }
  txn->retired[txn->nretired++] = d;
  return CAIRN_OK;
}

int txn_free(cairn_txn *txn, uint64_t pgno, uint64_t n) {
  int rc = pages_mine(txn);
  if (rc)
    return rc;
  dirty_page *d = pgmap_del(&txn->dirty, pgno);
  pgvec *to = &txn->freed;
  if (d) {
    /* Never visible to anyone: reusable within this txn. Its buffer lives
     * until the txn ends, since callers may still hold pointers into it. */
    retire(txn, d);
    to = &txn->local_free;
  }
  for (uint64_t i = 0; i < n; i++)
    if (pgvec_push(to, pgno + i))
      return txn_fail(txn, cairn__seterr(CAIRN_NOMEM, "out of memory"));
  txn->gen++;
  return CAIRN_OK;
}

int txn_touch(cairn_txn *txn, uint64_t pgno, uint8_t **buf, uint64_t *newpg) {
  dirty_page *d = pgmap_get(&txn->dirty, pgno);
  if (d) {
    *buf = d->buf;
    *newpg = pgno;
    return CAIRN_OK;
  }
  const uint8_t *p;
  int rc = pager_get(&txn->db->pg, txn, pgno, 1,
                     TYPE_BIT(PAGE_BRANCH) | TYPE_BIT(PAGE_LEAF), &p);
  if (rc)
    return txn_fail(txn, rc);
  uint8_t *b = NULL; /* set by txn_alloc on success */
  uint64_t pg = 0;
  rc = alloc_pages(txn, 1, 0, &b, &pg);
  if (rc)
    return rc;
  memcpy(b, p, txn->snap.page_size);
  st64(b + 8, pg);
  rc = txn_free(txn, pgno, 1);
  if (rc)
    return rc;
  *buf = b;
  *newpg = pg;
  return CAIRN_OK;
}

/* ---- column family lookup ---------------------------------------------- */

static cf_state *find_cf(cairn_txn *txn, uint32_t id) {
  for (size_t i = 0; i < txn->ncfs; i++)
    if (txn->cfs[i]->id == id && !txn->cfs[i]->dropped)
      return txn->cfs[i];
  return NULL;
}

static int add_cf(cairn_txn *txn, cf_state *s) {
  if (txn->ncfs == txn->capcfs) {
    size_t cap = txn->capcfs ? txn->capcfs * 2 : 8;
    cf_state **n = realloc(txn->cfs, cap * sizeof *n);
    if (!n)
      return cairn__seterr(CAIRN_NOMEM, "out of memory");
    txn->cfs = n;
    txn->capcfs = cap;
  }
  txn->cfs[txn->ncfs++] = s;
  return CAIRN_OK;
}

cf_state *txn_cf(cairn_txn *txn, cairn_cf cf, int *rc) {
  cf_state *s = find_cf(txn, cf);
  if (s) {
    *rc = CAIRN_OK;
    return s;
  }
  size_t nlen;
  char name[CAIRN_MAX_CF_NAME + 1];
  if (cf == CAIRN_DEFAULT_CF) {
    strcpy(name, "default");
    nlen = 7;
  } else {
    cairn_mutex_lock(&txn->db->meta_mu);
    const char *n = catalog_name_of(txn->db, cf, &nlen);
    if (n)
      memcpy(name, n, nlen);
    cairn_mutex_unlock(&txn->db->meta_mu);
    if (!n) {
      *rc =
          cairn__seterr(CAIRN_NOTFOUND, "unknown column family handle %u", cf);
      return NULL;
    }
  }
  s = calloc(1, sizeof *s);
  if (!s) {
    *rc = cairn__seterr(CAIRN_NOMEM, "out of memory");
    return NULL;
  }
  int found;
  *rc = catalog_load_cf(txn, name, nlen, s, &found);
  if (*rc == CAIRN_OK && !found && cf != CAIRN_DEFAULT_CF)
    *rc = cairn__seterr(CAIRN_NOTFOUND,
                        "column family '%.*s' does not exist in this "
                        "transaction (dropped?)",
                        (int)nlen, name);
  if (*rc == CAIRN_OK && found && s->id != cf)
    *rc = cairn__seterr(CAIRN_NOTFOUND,
                        "column family '%.*s' was dropped (and recreated)",
                        (int)nlen, name);
  if (*rc == CAIRN_OK) {
    s->id = cf;
    memcpy(s->name, name, nlen);
    s->name[nlen] = 0;
    s->namelen = (uint8_t)nlen;
    *rc = add_cf(txn, s);
  }
  if (*rc) {
    free(s);
    return NULL;
  }
  return s;
}

/* ---- begin ------------------------------------------------------------- */

static void live_add(cairn_db *db, cairn_txn *txn) {
  txn->next_live = db->live;
  db->live = txn;
}

static void live_remove(cairn_db *db, cairn_txn *txn) {
  for (cairn_txn **p = &db->live; *p; p = &(*p)->next_live)
    if (*p == txn) {
      *p = txn->next_live;
      return;
    }
}

static int snap_add(cairn_db *db, uint64_t id) {
  for (size_t i = 0; i < db->nsnaps; i++)
    if (db->snaps[i].txnid == id) {
      db->snaps[i].count++;
      return CAIRN_OK;
    }
  if (db->nsnaps == db->capsnaps) {
    size_t cap = db->capsnaps ? db->capsnaps * 2 : 8;
    snapshot_count *n = realloc(db->snaps, cap * sizeof *n);
    if (!n)
      return cairn__seterr(CAIRN_NOMEM, "out of memory");
    db->snaps = n;
    db->capsnaps = cap;
  }
  db->snaps[db->nsnaps].txnid = id;
  db->snaps[db->nsnaps].count = 1;
  db->nsnaps++;
  return CAIRN_OK;
}

static void snap_remove(cairn_db *db, uint64_t id) {
  for (size_t i = 0; i < db->nsnaps; i++)
    if (db->snaps[i].txnid == id) {
      if (--db->snaps[i].count == 0)
        db->snaps[i] = db->snaps[--db->nsnaps];
      return;
    }
}

uint64_t db_oldest_snapshot(cairn_db *db) {
  uint64_t oldest = db->cur.txnid;
  for (size_t i = 0; i < db->nsnaps; i++)
    if (db->snaps[i].txnid < oldest)
      oldest = db->snaps[i].txnid;
  return oldest;
}

static void catalog_state_from(cairn_txn *txn) {
  memset(&txn->catalog, 0, sizeof txn->catalog);
  txn->catalog.id = CATALOG_CF_ID;
  txn->catalog.root = txn->snap.catalog_root;
  txn->catalog.depth = txn->snap.catalog_depth;
  txn->catalog.entries = txn->snap.catalog_entries;
}

int cairn_begin(cairn_db *db, unsigned flags, cairn_txn **out) {
  if (!out)
    return cairn__seterr(CAIRN_INVALID, "cairn_begin: out is NULL");
  *out = NULL;
  if (!db)
    return cairn__seterr(CAIRN_INVALID, "cairn_begin: db is NULL");
  if (flags & ~CAIRN_TXN_RDONLY)
    return cairn__seterr(CAIRN_INVALID, "cairn_begin: unknown flags 0x%x",
                         flags);
  int rdonly = (flags & CAIRN_TXN_RDONLY) != 0;
  if (!rdonly && db->rdonly)
    return cairn__seterr(CAIRN_READONLY,
                         "database was opened read-only: no write txn");
  cairn_txn *txn = calloc(1, sizeof *txn);
  if (!txn)
    return cairn__seterr(CAIRN_NOMEM, "out of memory");
  txn->db = db;
  txn->rdonly = rdonly;
  if (rdonly) {
    cairn_mutex_lock(&db->meta_mu);
    txn->snap = db->cur;
    txn->map = db->pg.map;
    int rc = snap_add(db, txn->snap.txnid);
    if (!rc) {
      live_add(db, txn);
      txn->ov = db->ov; /* the overlay that goes with cur's tree */
      if (txn->ov)
        overlay_ref(txn->ov);
      txn->ov_old = db->ov_frozen;
      if (txn->ov_old)
        overlay_ref(txn->ov_old);
      txn->tree_gen = db->tree_gen;
    }
    cairn_mutex_unlock(&db->meta_mu);
    if (rc) {
      free(txn);
      return rc;
    }
    catalog_state_from(txn);
    *out = txn;
    cairn__clearerr();
    return CAIRN_OK;
  }
  int mine = db_writer_is_this_thread(db);
  if (mine) {
    free(txn);
    return cairn__seterr(CAIRN_BUSY,
                         "this thread already has the write transaction open");
  }
  free(txn);
  int rc = txn_begin_writer(db, out);
  if (!rc && (*out)->failed) { /* it could not release free pages */
    cairn_abort(*out);
    *out = NULL;
    return cairn__seterr(CAIRN_NOMEM, "out of memory beginning a write "
                                      "transaction");
  }
  return rc;
}

/* The smallest snapshot id of a live read txn, UINT64_MAX if none. Caller
 * holds meta_mu. */
static uint64_t oldest_reader(cairn_db *db) {
  uint64_t oldest = UINT64_MAX;
  for (size_t i = 0; i < db->nsnaps; i++)
    if (db->snaps[i].txnid < oldest)
      oldest = db->snaps[i].txnid;
  return oldest;
}

/* Writer: pages no snapshot reaches any more become free. */
static int release_free_pages(cairn_db *db) {
  cairn_mutex_lock(&db->meta_mu);
  uint64_t readers = oldest_reader(db);
  uint64_t limit = db_oldest_snapshot(db);
  uint64_t young_limit = limit;
  if (db->durable_txnid < limit)
    limit = db->durable_txnid;
  int checkpointed_ok = db->stale_readers == 0;
  cairn_mutex_unlock(&db->meta_mu);
  pgvec young = {0};
  int rc =
      freelist_release(&db->fl, limit, young_limit, checkpointed_ok, &young);
  /* Released young pages are dead: nothing can look them up any more. */
  for (size_t i = 0; i < young.len; i++)
    deferred_remove(&db->def, young.v[i]);
  pgvec_free(&young);
  deferred_collect(&db->def, readers);
  return rc;
}

int txn_rebase(cairn_txn *txn) {
  cairn_db *db = txn->db;
  if (txn->rdonly || txn->checkpoint || !txn->ov_old)
    return CAIRN_OK; /* no fold ran when it began, and none starts before
                      * it ends */
  int rc = ckpt_bg_finish(db);
  if (rc) /* the frozen overlay stays; the txn changed nothing yet */
    return rc;
  cairn_mutex_lock(&db->meta_mu);
  uint64_t id = txn->snap.txnid;
  /* (Until its first page changes, a txn's meta is cur's but the id.) */
  txn->snap = db->cur;
  txn->snap.txnid = id;
  txn->map = db->pg.map;
  txn->tree_gen = db->tree_gen;
  cairn_mutex_unlock(&db->meta_mu);
  catalog_state_from(txn);
  for (size_t i = 0; i < txn->ncfs && !rc; i++) {
    cf_state *s = txn->cfs[i], t;
    int found;
    rc = catalog_load_cf(txn, s->name, s->namelen, &t, &found);
    if (!rc && !found && s->id != CAIRN_DEFAULT_CF)
      rc = cairn__seterr(CAIRN_CORRUPT,
                         "column family '%s' is missing from "
                         "the checkpoint's catalog",
                         s->name);
    s->root = found ? t.root : 0;
    s->depth = found ? t.depth : 0;
    s->entries = found ? t.entries : 0;
  }
  if (rc)
    return txn_fail(txn, rc);
  /* Cursors may point into the frozen overlay: it lives as long as the
   * txn. Their tree positions re-seek (gen). */
  txn->ov_rebased = txn->ov_old;
  txn->ov_old = NULL;
  for (size_t i = 0; i < txn->nedges; i++)
    free(txn->edges[i].key);
  txn->nedges = 0;
  txn->gen++;
  if (release_free_pages(db))
    return txn_fail(txn, cairn__seterr(CAIRN_NOMEM, "out of memory"));
  return CAIRN_OK;
}

/* The state a write or checkpoint txn starts from; the caller holds
 * write_mu. The writer (not a checkpoint) also becomes db's writer. */
static int begin_locked(cairn_db *db, int writer, cairn_txn **out) {
  *out = NULL;
  cairn_txn *txn = calloc(1, sizeof *txn);
  if (!txn)
    return cairn__seterr(CAIRN_NOMEM, "out of memory");
  txn->db = db;
  txn->scratch = malloc(db->pg.psize);
  if (!txn->scratch) {
    free(txn);
    return cairn__seterr(CAIRN_NOMEM, "out of memory");
  }
  cairn_mutex_lock(&db->meta_mu);
  if (db->poisoned) {
    cairn_mutex_unlock(&db->meta_mu);
    free(txn->scratch);
    free(txn);
    return cairn__seterr(CAIRN_IO,
                         "an earlier commit failed while writing its meta "
                         "page or log; close and reopen the database to "
                         "write again");
  }
  txn->snap = db->cur;
  txn->map = db->pg.map;
  txn->ov = db->ov; /* only a writer replaces it */
  txn->ov_old = db->ov_frozen;
  if (txn->ov_old)
    overlay_ref(txn->ov_old);
  txn->tree_gen = db->tree_gen;
  if (writer) {
    db->writer_active = 1;
    db->writer = cairn_thread_self();
    live_add(db, txn);
  }
  cairn_mutex_unlock(&db->meta_mu);
  catalog_state_from(txn);
  *out = txn;
  return CAIRN_OK;
}

int txn_begin_writer(cairn_db *db, cairn_txn **out) {
  cairn_mutex_lock(&db->write_mu);
  int rc = begin_locked(db, 1, out);
  if (rc) {
    cairn_mutex_unlock(&db->write_mu);
    return rc;
  }
  cairn_txn *txn = *out;
  if (db->spare_log) {
    txn->log = db->spare_log;
    txn->logcap = db->spare_logcap;
    txn->loglen = WAL_REC_HDR;
    db->spare_log = NULL;
  }
  /* (A running fold owns the free set and the deferred pages.) */
  if (!db->bg && release_free_pages(db))
    txn->failed = 1;
  txn->snap.txnid++;
  cairn__clearerr();
  return CAIRN_OK;
}

int txn_begin_checkpoint(cairn_db *db, overlay *ov, uint64_t txnid,
                         cairn_txn **out) {
  int rc = begin_locked(db, 0, out);
  if (rc)
    return rc;
  cairn_txn *txn = *out;
  overlay_unref(txn->ov_old);
  txn->ov_old = NULL;
  txn->ov = ov;
  txn->detached = 1;
  txn->checkpoint = 1;
  /* A checkpoint records the newest commit it folds; it is not a commit of
   * its own (same txn id, so backups and stats name the state users
   * committed, and recovery replays the log's records after it). */
  txn->snap.txnid = txnid;
  return CAIRN_OK;
}

int db_writer_is_this_thread(cairn_db *db) {
  cairn_mutex_lock(&db->meta_mu);
  int mine =
      db->writer_active && cairn_thread_equal(db->writer, cairn_thread_self());
  cairn_mutex_unlock(&db->meta_mu);
  return mine;
}

uint64_t cairn_txn_id(const cairn_txn *txn) {
  return txn ? txn->snap.txnid : 0;
}

/* ---- end --------------------------------------------------------------- */

void cursor_detach_all(cairn_txn *txn); /* cursor.c */

static void txn_free_all(cairn_txn *txn, int keep_buffers_for_cache) {
  cairn_db *db = txn->db;
  cursor_detach_all(txn);
  for (size_t i = 0; i < txn->dirty.cap; i++) {
    dirty_page *d = txn->dirty.slots[i].val;
    if (!txn->dirty.slots[i].key || !d)
      continue;
    if (keep_buffers_for_cache) /* the page cache owns the buffer now */
      free(d);
    else
      page_pool_put(&db->pool, d);
  }
  pgmap_free(&txn->dirty);
  for (size_t i = 0; i < txn->nretired; i++)
    page_pool_put(&db->pool, txn->retired[i]);
  free(txn->retired);
  pager_release(&db->pg, txn);
  pgmap_free(&txn->pins);
  pgvec_free(&txn->freed);
  pgvec_free(&txn->taken);
  pgvec_free(&txn->local_free);
  for (size_t i = 0; i < txn->ncfs; i++)
    free(txn->cfs[i]);
  free(txn->cfs);
  free(txn->scratch);
  if (!txn->rdonly && !db->spare_log && txn->logcap <= (8u << 20)) {
    /* the next commit's record grows into it without reallocating */
    db->spare_log = txn->log;
    db->spare_logcap = txn->logcap;
  } else {
    free(txn->log);
  }
  free(txn->ov_written);
  for (size_t i = 0; i < txn->nedges; i++)
    free(txn->edges[i].key);
  if (txn->rdonly)
    overlay_unref(txn->ov);
  overlay_unref(txn->ov_old);
  overlay_unref(txn->ov_rebased);
  if (txn->detached) { /* a checkpoint: never in the live list */
    free(txn);
    return;
  }
  cairn_mutex_lock(&db->meta_mu);
  live_remove(db, txn);
  if (txn->rdonly) {
    snap_remove(db, txn->snap.txnid);
    if (txn->tree_gen != db->tree_gen)
      db->stale_readers--;
  } else {
    db->writer_active = 0;
  }
  cairn_mutex_unlock(&db->meta_mu);
  if (!txn->rdonly)
    cairn_mutex_unlock(&db->write_mu);
  free(txn);
}

void cairn_abort(cairn_txn *txn) {
  if (!txn)
    return;
  if (!txn->rdonly) {
    METRIC_ADD(&txn->db->metrics, aborts, 1);
    view_abort(txn); /* before the next writer can take the txn id */
  }
  if (!txn->rdonly && txn->taken.len)
    freelist_return(&txn->db->fl, &txn->taken);
  txn_free_all(txn, 0);
}

static int cmp_dirty(const void *a, const void *b) {
  uint64_t x = (*(dirty_page *const *)a)->pgno;
  uint64_t y = (*(dirty_page *const *)b)->pgno;
  return x < y ? -1 : x > y;
}

/* Stamp pages with the id of the commit that wrote them and their
 * checksum. */
static void seal_pages(dirty_page **ds, size_t n, uint32_t psize,
                       uint64_t txnid) {
  for (size_t i = 0; i < n; i++) {
    dirty_page *d = ds[i];
    uint64_t span = page_crc_span(d->buf, psize);
    if (span > d->npages * psize)
      span = d->npages * psize;
    if (txnid)
      page_seal(d->buf, txnid, (uint32_t)span);
    else /* readers may be reading the page: leave its stamp alone */
      st32(d->buf, cairn_crc32c(0, d->buf + 4, (size_t)span - 4));
  }
}

/* A logged commit's pages stay in memory, where nothing checks their
 * checksum: they get one when a checkpoint writes them (seal_pages with
 * txnid 0 keeps the stamp). */
static void stamp_pages(dirty_page **ds, size_t n, uint64_t txnid) {
  for (size_t i = 0; i < n; i++)
    pg_set_txnid(ds[i]->buf, txnid);
}

/* Every dirty page of txn, in a new array of *n (NULL without memory). */
static dirty_page **dirty_list(cairn_txn *txn, size_t *n) {
  dirty_page **ds = malloc((txn->dirty.len + 1) * sizeof *ds);
  *n = 0;
  for (size_t i = 0; ds && i < txn->dirty.cap; i++)
    if (txn->dirty.slots[i].key)
      ds[(*n)++] = txn->dirty.slots[i].val;
  return ds;
}

/* Write sealed pages (sorted by number), coalescing neighbours into larger
 * writes. */
static int write_dirty(cairn_txn *txn, dirty_page **ds, size_t n) {
  pager *pg = &txn->db->pg;
  uint32_t psize = pg->psize;
  cairn_file *f = pg->file;
  enum { BATCH = 1 << 20 };
  uint8_t *batch = NULL;
  for (size_t i = 0; i < n; i++)
    pager_invalidate(pg, ds[i]->pgno, ds[i]->npages);
  uint64_t pages = 0;
  for (size_t k = 0; k < n; k++)
    pages += ds[k]->npages;
  metrics *m = &txn->db->metrics;
  METRIC_ADD(m, pages_written, pages);
  METRIC_ADD(m, bytes_written, pages * psize);
  if (!txn->detached) { /* (a fold in the background is no commit) */
    METRIC_SET(m, last_commit_pages, pages + txn->spilled);
    METRIC_SET(m, last_commit_bytes, (pages + txn->spilled) * psize);
  }
  size_t i = 0;
  int rc = CAIRN_OK;
  while (i < n && !rc) {
    size_t j = i;
    uint64_t bytes = ds[i]->npages * psize;
    while (j + 1 < n && ds[j + 1]->pgno == ds[j]->pgno + ds[j]->npages &&
           bytes + ds[j + 1]->npages * psize <= BATCH)
      bytes += ds[++j]->npages * psize;
    if (j == i) {
      rc = f->methods->write(f, ds[i]->buf, (size_t)bytes, ds[i]->pgno * psize);
    } else {
      if (!batch && !(batch = malloc(BATCH)))
        return cairn__seterr(CAIRN_NOMEM, "out of memory writing pages");
      size_t at = 0;
      for (size_t k = i; k <= j; k++) {
        memcpy(batch + at, ds[k]->buf, (size_t)(ds[k]->npages * psize));
        at += (size_t)(ds[k]->npages * psize);
      }
      rc = f->methods->write(f, batch, at, ds[i]->pgno * psize);
    }
    i = j + 1;
  }
  free(batch);
  if (rc)
    return rc;
  for (size_t k = 0; k < n; k++)
    pager_mark_written(pg, ds[k]->pgno);
  cairn_db *db = txn->db;
  if (txn->checkpoint && pg->mapped)
    for (size_t k = 0; k < n; k++)
      if (ds[k]->npages == 1 && pgvec_push(&db->warm_pages, ds[k]->pgno))
        break; /* only a hint */
  /* Pages allocated at the end and freed again in this txn were never
   * written; the file must still hold every page the commit counts (a
   * mapped reader would fault past the end of the file). */
  uint64_t end = n ? ds[n - 1]->pgno + ds[n - 1]->npages : 0;
  if (end > db->file_pages)
    db->file_pages = end;
  if (txn->snap.page_count > db->file_pages) {
    rc = f->methods->truncate(f, txn->snap.page_count * psize);
    if (rc)
      return rc;
    db->file_pages = txn->snap.page_count;
  }
  return CAIRN_OK;
}

uint64_t db_now_ms(void); /* db.c */
/* Write finished pages of this txn ahead of its commit and recycle their
 * buffers. Safe because the page numbers are fresh or free (no snapshot
 * reaches them) and nothing references them until the meta page is
 * written; a checkpoint's fold writes the new tree this way, so it never
 * holds the whole tree in memory. The pages must not be read again by the
 * txn (they are no longer in its dirty table). */
int txn_spill(cairn_txn *txn, const uint64_t *pgnos, size_t n) {
  dirty_page **ds = malloc((n + 1) * sizeof *ds);
  if (!ds)
    return txn_fail(txn, cairn__seterr(CAIRN_NOMEM, "out of memory"));
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    dirty_page *d = pgmap_del(&txn->dirty, pgnos[i]);
    if (d)
      ds[k++] = d;
  }
  qsort(ds, k, sizeof *ds, cmp_dirty);
  seal_pages(ds, k, txn->snap.page_size, txn->snap.txnid);
  int rc = write_dirty(txn, ds, k);
  for (size_t i = 0; i < k; i++) {
    txn->spilled += ds[i]->npages;
    page_pool_put(&txn->db->pool, ds[i]);
  }
  free(ds);
  return rc ? txn_fail(txn, rc) : CAIRN_OK;
}

/* The end of a sync that makes commits durable: a failure leaves their
 * outcome unknown (the handle refuses writes until a reopen); a success
 * is counted. */
static int sync_done(cairn_db *db, int rc, uint64_t t0) {
  if (rc) {
    db->poisoned = 1;
    return rc;
  }
  METRIC_ADD(&db->metrics, syncs, 1);
  histo_record(&db->metrics.sync, metrics_now_ns() - t0);
  return CAIRN_OK;
}

/* Make meta m durable in slot: sync the pages it names, write it, sync.
 * A failure before the meta write leaves nothing referencing the unsynced
 * pages (safe to retry); one at or after it leaves the outcome unknown, so
 * the handle refuses further writes until a reopen. */
static int write_meta_durably(cairn_db *db, const meta *m, int slot) {
  cairn_file *f = db->pg.file;
  uint64_t t0 = metrics_now_ns();
  int rc = f->methods->sync(f);
  if (rc)
    return rc;
  meta w = *m; /* numbered, so it wins over a meta of the same txn id */
  w.seq = ++db->meta_seq;
  rc = meta_write(f, &w, slot, db->pg.psize);
  if (!rc)
    rc = f->methods->sync(f);
  return sync_done(db, rc, t0);
}

/* Sync the log; a failure leaves unknown which records survive. */
static int sync_log(cairn_db *db) {
  uint64_t t0 = metrics_now_ns();
  return sync_done(db, wal_sync(&db->wal), t0);
}

int db_sync_locked(cairn_db *db) {
  if (db->wal_on) {
    if (db->rdonly || !db->wal.unsynced)
      return CAIRN_OK;
    if (db->poisoned)
      return cairn__seterr(CAIRN_IO, "an earlier commit failed writing the "
                                     "log; reopen the database");
    int rc = sync_log(db);
    if (rc)
      return rc;
    db->lazy_commits = 0;
    db->last_sync_ms = db_now_ms();
    cairn_mutex_lock(&db->meta_mu);
    db->logged_durable = db->cur.txnid;
    cairn_mutex_unlock(&db->meta_mu);
    return CAIRN_OK;
  }
  cairn_mutex_lock(&db->meta_mu);
  meta m = db->cur;
  int slot = 1 - db->durable_slot;
  int done = db->durable_txnid == m.txnid;
  cairn_mutex_unlock(&db->meta_mu);
  if (done || db->rdonly)
    return CAIRN_OK;
  if (db->poisoned)
    return cairn__seterr(CAIRN_IO, "an earlier commit failed writing its "
                                   "meta page; reopen the database");
  int rc = write_meta_durably(db, &m, slot);
  if (rc)
    return rc;
  cairn_mutex_lock(&db->meta_mu);
  db->durable_txnid = m.txnid;
  db->durable_slot = slot;
  cairn_mutex_unlock(&db->meta_mu);
  db->lazy_commits = 0;
  db->last_sync_ms = db_now_ms();
  return CAIRN_OK;
}

/* Writer: the automatic sync of lazy commits. With the log, where the
 * platform syncs in the background, it only starts the log's sync: the
 * commits are durable a sync's time later and no commit waits for it (a
 * second of W7's commits took ~0.2 s to sync). Nothing counts as durable
 * until a sync that returned (cairn_sync, a durable commit, a checkpoint,
 * close), so durable_txn_id may lag behind what is on disk. */
static void auto_sync(cairn_db *db) {
  cairn_file *lf = db->wal.file;
  if (db->wal_on && lf && lf->methods->start_sync && !db->poisoned &&
      lf->methods->start_sync(lf) == CAIRN_OK) {
    db->lazy_commits = 0;
    db->last_sync_ms = db_now_ms();
    return;
  }
  (void)db_sync_locked(db);
}

static uint64_t checkpoint_bytes(const cairn_db *db) {
  return (uint64_t)(db->opts.checkpoint_mib ? db->opts.checkpoint_mib : 64)
         << 20;
}

/* Lazy checkpoints leave the log in place; the first checkpoint to find it
 * this many budgets long syncs, and restarts it. */
#define LOG_BUDGETS 4

/* Writer: make the last lazy checkpoint's tree the one a crash falls back
 * to (where the platform can, a background sync began when it was
 * written, so this one mostly finds it done). The pages it replaced become
 * reusable. */
static int finish_lazy_checkpoint(cairn_db *db) {
  if (!db->ckpt_unsynced)
    return CAIRN_OK;
  int slot = 1 - db->durable_slot;
  int rc = write_meta_durably(db, &db->ckpt_meta, slot);
  if (rc)
    return rc;
  cairn_mutex_lock(&db->meta_mu);
  db->durable_txnid = db->ckpt_meta.txnid;
  db->durable_slot = slot;
  cairn_mutex_unlock(&db->meta_mu);
  db->ckpt_unsynced = 0;
  return CAIRN_OK;
}

int ckpt_finish_lazy(cairn_db *db) {
  if (!db->ckpt_unsynced)
    return CAIRN_OK;
  int rc = finish_lazy_checkpoint(db);
  if (!rc && release_free_pages(db))
    rc = cairn__seterr(CAIRN_NOMEM, "out of memory releasing free pages");
  return rc;
}

/* Log mode: append the commit's record (synced if durable), then hand its
 * pages to the deferred page table, where readers find them. */
static int commit_logged(cairn_txn *txn, int sync, dirty_page **ds, size_t n) {
  cairn_db *db = txn->db;
  /* Room for the pages first: once the record is in the log the commit
   * must be applied in memory too. */
  int rrc = deferred_reserve(&db->def, n, db->cur.txnid);
  if (rrc)
    return rrc;
  if (!db->replaying) {
    uint8_t empty[WAL_REC_HDR];
    uint8_t *rec = txn->log ? txn->log : empty;
    size_t body = txn->log ? txn->loglen - WAL_REC_HDR : 0;
    int rc = wal_append(&db->wal, txn->snap.txnid, rec, body);
    if (rc)
      return rc; /* nothing is durable; the next record overwrites it */
    METRIC_SET(&db->metrics, last_commit_bytes, WAL_REC_HDR + body);
    METRIC_ADD(&db->metrics, bytes_logged, WAL_REC_HDR + body);
    if (sync && (rc = sync_log(db)) != CAIRN_OK)
      return rc;
  }
  METRIC_SET(&db->metrics, last_commit_pages, 0);
  uint64_t published = db->cur.txnid; /* only the writer changes cur */
  for (size_t i = 0; i < n; i++) {
    pager_invalidate(&db->pg, ds[i]->pgno, ds[i]->npages);
    int rc = deferred_put(&db->def, ds[i], published);
    if (rc) {
      /* Logged but not applied in memory: only replaying the log at the
       * next open can finish it. */
      db->poisoned = 1;
      for (size_t j = 0; j < i; j++)
        pgmap_del(&txn->dirty, ds[j]->pgno);
      return rc;
    }
  }
  return CAIRN_OK;
}

/* Log mode: move the pages this commit freed that exist only in the
 * deferred table (never written by a checkpoint) from freed to young. */
static int split_young(cairn_txn *txn, pgvec *young) {
  pgvec *f = &txn->freed;
  size_t k = 0;
  int rc = CAIRN_OK;
  uint64_t run_end = 0; /* pages of a young overflow run are young too */
  pgvec_sort(f);
  for (size_t i = 0; i < f->len; i++) {
    uint64_t pg = f->v[i];
    if (!rc && pg >= run_end) {
      dirty_page *d = deferred_get(&txn->db->def, pg, 0);
      if (d)
        run_end = pg + d->npages;
    }
    if (!rc && pg < run_end)
      rc = pgvec_push(young, pg);
    else
      f->v[k++] = pg;
  }
  f->len = k;
  return rc ? cairn__seterr(rc, "out of memory recording free pages") : 0;
}

/* Write the commit's pages (and, for a checkpoint, every deferred page) to
 * the file; if durable, sync and write the meta page. */
static int commit_pages(cairn_txn *txn, int sync, dirty_page **ds, size_t n) {
  cairn_db *db = txn->db;
  dirty_page **all = ds, **def = NULL;
  size_t total = n, nd = 0;
  int rc = CAIRN_OK;
  if (txn->checkpoint) {
    rc = deferred_list(&db->def, &def, &nd);
    if (!rc)
      seal_pages(def, nd, db->pg.psize, 0);
    if (!rc && nd) {
      all = malloc((n + nd) * sizeof *all);
      if (!all)
        rc = cairn__seterr(CAIRN_NOMEM, "out of memory checkpointing");
      else {
        memcpy(all, ds, n * sizeof *all);
        memcpy(all + n, def, nd * sizeof *all);
        total = n + nd;
        qsort(all, total, sizeof *all, cmp_dirty);
      }
    }
  }
  if (!rc)
    rc = write_dirty(txn, all, total);
  if (all != ds)
    free(all);
  free(def);
  if (!rc) {
    /* Readers copy the map pointer under meta_mu at begin. */
    cairn_mutex_lock(&db->meta_mu);
    rc = pager_ensure_map(&db->pg, txn->snap.page_count * db->pg.psize);
    cairn_mutex_unlock(&db->meta_mu);
  }
  if (!rc && sync)
    rc = write_meta_durably(db, &txn->snap, 1 - db->durable_slot);
  else if (!rc && txn->checkpoint && db->pg.file->methods->start_sync)
    /* A lazy checkpoint: the disk writes its tree while commits go on. */
    (void)db->pg.file->methods->start_sync(db->pg.file);
  return rc;
}

/* Caller holds meta_mu: cur names a new tree; every live reader holds an
 * older one, whose pages wait until they are gone (stale_readers). */
static void new_tree_locked(cairn_db *db) {
  db->tree_gen++;
  db->stale_readers = 0;
  for (size_t i = 0; i < db->nsnaps; i++)
    db->stale_readers += db->snaps[i].count;
}

/* A checkpoint's tree is published (newest: the newest commit's id): the
 * deferred pages are in the file, the pages it replaced need not stay in
 * memory, the pages it wrote may be warmed. */
static void replaced_tree(cairn_txn *txn, uint64_t newest, int warm) {
  cairn_db *db = txn->db;
  /* Readers that start from here on read the deferred pages in the file;
   * those that began before may hold pointers into them. */
  dp_table *written = deferred_detach(&db->def);
  cairn_mutex_lock(&db->meta_mu);
  uint64_t readers = oldest_reader(db);
  cairn_mutex_unlock(&db->meta_mu);
  deferred_retire_written(&db->def, written, readers, newest);
  METRIC_ADD(&db->metrics, checkpoints, 1);
  db->freed_since_ckpt = 0;
  pgvec_sort(&txn->freed);
  if (warm) {
    /* (A commit that folded itself replaced a few pages at the trees'
     * edges and wrote pages it has just had in hand: neither the madvise
     * with its TLB flushes nor the warmer pays there.) The warmer may
     * still be mapping the replaced tree's pages. */
    warmer_cancel(db->warm);
    pager_forget(&db->pg, &txn->freed);
    warmer_submit(&db->warm, db->pg.map, db->pg.map_len, db->pg.psize,
                  &db->warm_pages);
  }
  db->warm_pages.len = 0;
  cairn_mutex_lock(&db->meta_mu);
  db->free_pages = txn->snap.freelist_count;
  cairn_mutex_unlock(&db->meta_mu);
}

/* The pages a checkpoint freed wait for readers of the tree it replaced
 * (it shares its txn id with them); those it took and freed again are
 * free now. Room in ready was made before its commit point. */
static int checkpoint_frees(cairn_txn *txn) {
  cairn_db *db = txn->db;
  int rc = freelist_add_pending(&db->fl, txn->snap.txnid, &txn->freed,
                                PENDING_CHECKPOINT);
  if (!rc && txn->local_free.len) {
    pgvec_sort(&txn->local_free);
    rc = pgvec_merge(&db->fl.ready, &txn->local_free);
  }
  return rc;
}

int ckpt_write(cairn_txn *txn) {
  cairn_db *db = txn->db;
  int rc = view_fold(txn);
  if (!rc)
    rc = catalog_flush(txn);
  if (!rc)
    rc = freelist_persist(txn);
  dirty_page **ds = NULL;
  size_t n = 0;
  if (!rc) {
    ds = dirty_list(txn, &n);
    if (!ds || pgvec_reserve(&db->fl.ready,
                             db->fl.ready.len + txn->local_free.len + 1))
      rc = cairn__seterr(CAIRN_NOMEM, "out of memory checkpointing");
  }
  if (!rc) {
    qsort(ds, n, sizeof *ds, cmp_dirty);
    seal_pages(ds, n, db->pg.psize, txn->snap.txnid);
    rc = commit_pages(txn, 0, ds, n);
  }
  free(ds);
  return rc ? txn_fail(txn, rc) : CAIRN_OK;
}

void txn_end_checkpoint(cairn_txn *txn) {
  if (txn->taken.len)
    freelist_return(&txn->db->fl, &txn->taken);
  txn_free_all(txn, 0);
}

int ckpt_publish(cairn_txn *txn, int rc) {
  cairn_db *db = txn->db;
  if (rc) {
    txn_end_checkpoint(txn);
    return rc;
  }
  /* The cache must hold the new content of reused page numbers before any
   * reader can reach them through the new tree (the cache owns the
   * buffers then). */
  for (size_t i = 0; !db->pg.mapped && i < txn->dirty.cap; i++) {
    dirty_page *d = txn->dirty.slots[i].val;
    if (txn->dirty.slots[i].key && d)
      pager_adopt(&db->pg, d->pgno, d->npages, d->buf);
  }
  cairn_mutex_lock(&db->meta_mu);
  uint64_t newest = db->cur.txnid;
  /* The commits since the freeze changed no page: cur's tree is still the
   * one this fold started from, and the new tree replaces it whole. */
  db->cur = txn->snap;
  db->cur.txnid = newest;
  overlay *folded = db->ov_frozen;
  db->ov_frozen = NULL;
  new_tree_locked(db);
  cairn_mutex_unlock(&db->meta_mu);
  overlay_unref(folded); /* readers that began before keep theirs */
  /* Like any lazy checkpoint: the next one writes its meta page first,
   * and until then the log holds everything since the durable tree. */
  db->ckpt_unsynced = 1;
  db->ckpt_meta = txn->snap;
  replaced_tree(txn, newest, 1);
  METRIC_ADD(&db->metrics, pages_freed, txn->freed.len);
  if (checkpoint_frees(txn)) /* the pages are lost until reopen */
    cairn__seterr(CAIRN_NOMEM, "out of memory recording free pages");
  txn_free_all(txn, !db->pg.mapped);
  return CAIRN_OK;
}

/* lazy: write the new tree but not its meta page, and keep the log (it
 * still holds everything since the tree a crash falls back to), so no
 * commit waits for the disk; the next checkpoint makes it durable first. */
static int checkpoint(cairn_db *db, cairn_txn **snap_out, int lazy) {
  cairn_txn *txn;
  int rc = txn_begin_writer(db, &txn);
  if (rc)
    return rc;
  if (ckpt_bg_pending(db) && !txn->failed) {
    /* One fold at a time, in commit order: the one in flight (or one
     * that failed) is published first. */
    rc = ckpt_bg_finish(db);
    cairn_abort(txn);
    if (rc || (rc = txn_begin_writer(db, &txn)) != CAIRN_OK)
      return rc;
  }
  if (lazy && !snap_out && db->ov && db->ov->nodes && !txn->failed) {
    rc = ckpt_bg_start(db);
    cairn_abort(txn); /* unlocks: commits go on while it folds */
    return rc;
  }
  db->warm_pages.len = 0; /* of a checkpoint that failed */
  if (db->ckpt_unsynced && !txn->failed) {
    /* Folding over a durable tree keeps at most two trees in the file:
     * the pages of the one before are free again from the next begin (a
     * synced checkpoint's own meta page would supersede the lazy one's,
     * but its fold could not reuse those pages). */
    rc = finish_lazy_checkpoint(db);
    cairn_abort(txn);
    if (rc || (rc = txn_begin_writer(db, &txn)) != CAIRN_OK)
      return rc;
  }
  if (txn->failed) {
    cairn_abort(txn);
    return cairn__seterr(CAIRN_NOMEM, "out of memory starting a checkpoint");
  }
  if (!db->def.bytes && (!db->ov || !db->ov->nodes) && db->wal.pos == WAL_HDR &&
      db->durable_txnid == db->cur.txnid) {
    /* Nothing to write; the snapshot starts while no commit can run. */
    rc = snap_out ? cairn_begin(db, CAIRN_TXN_RDONLY, snap_out) : CAIRN_OK;
    cairn_abort(txn);
    return rc;
  }
  /* A checkpoint records the newest commit; it is not a commit of its own
   * (same txn id, so backups and stats name the state users committed). */
  txn->checkpoint = 1;
  txn->snap_out = snap_out;
  txn->snap.txnid = db->cur.txnid;
  return cairn_commit_ex(txn,
                         lazy ? CAIRN_DURABILITY_LAZY : CAIRN_DURABILITY_SYNC);
}

int db_checkpoint(cairn_db *db) {
  if (!db->wal_on || db->rdonly || !db->wal.file)
    return CAIRN_OK;
  return checkpoint(db, NULL, 0);
}

int db_begin_checkpointed(cairn_db *db, cairn_txn **out) {
  *out = NULL;
  if (!db->wal_on || db->rdonly || !db->wal.file)
    return cairn_begin(db, CAIRN_TXN_RDONLY, out);
  int mine = db_writer_is_this_thread(db);
  if (mine)
    return cairn__seterr(CAIRN_BUSY, "commit or abort this thread's write "
                                     "transaction first (a checkpoint is "
                                     "needed)");
  int rc = checkpoint(db, out, 0);
  if (rc && *out) {
    cairn_abort(*out);
    *out = NULL;
  }
  return rc;
}

int cairn_checkpoint(cairn_db *db) {
  if (!db)
    return cairn__seterr(CAIRN_INVALID, "cairn_checkpoint: db is NULL");
  int mine = db_writer_is_this_thread(db);
  if (mine)
    return cairn__seterr(CAIRN_BUSY, "commit or abort this thread's write "
                                     "transaction before cairn_checkpoint");
  int rc = db_checkpoint(db);
  if (!rc)
    cairn__clearerr();
  return rc;
}

int cairn_commit(cairn_txn *txn) {
  return cairn_commit_ex(txn, CAIRN_DURABILITY_DEFAULT);
}

/* A durable commit this big folds itself into the tree instead of being
 * logged, when folding writes at most half as much again as logging would
 * (appends: their entries land in fresh pages at the trees' right edges;
 * a few other writes may come with them). Logged, every byte is written
 * twice — to the log now, to the tree by the next checkpoint; folded,
 * once, for one more sync (the meta page's). */
#define FOLD_AT_COMMIT_BYTES (128u << 10)

/* Only over an empty log, which leaves nothing in the overlay but this
 * txn's writes (and aborted ones): the fold is then exactly this commit,
 * and the log needs no record of it. */
static int folds_itself(const cairn_txn *txn) {
  const cairn_db *db = txn->db;
  return !db->replaying && !db->poisoned && db->ov && !ckpt_bg_pending(db) &&
         db->wal.pos == WAL_HDR && !db->ckpt_unsynced && !db->def.bytes &&
         txn->loglen >= FOLD_AT_COMMIT_BYTES &&
         txn->fold_bytes <= txn->loglen + txn->loglen / 2;
}

int cairn_commit_ex(cairn_txn *txn, cairn_durability durability) {
  if (!txn)
    return cairn__seterr(CAIRN_INVALID, "cairn_commit: txn is NULL");
  if (durability != CAIRN_DURABILITY_DEFAULT &&
      durability != CAIRN_DURABILITY_SYNC &&
      durability != CAIRN_DURABILITY_LAZY) {
    cairn_abort(txn);
    return cairn__seterr(CAIRN_INVALID, "cairn_commit_ex: bad durability %d",
                         (int)durability);
  }
  if (txn->rdonly) {
    txn_free_all(txn, 0);
    cairn__clearerr();
    return CAIRN_OK;
  }
  if (txn->failed) {
    cairn_abort(txn);
    return cairn__seterr(CAIRN_BADTXN,
                         "transaction failed earlier and was aborted");
  }
  cairn_db *db = txn->db;
  int changed = txn->dirty.len || txn->freed.len || txn->nov_written;
  for (size_t i = 0; i < txn->ncfs && !changed; i++)
    changed = txn->cfs[i]->dirty || txn->cfs[i]->dropped;
  if (!changed && !txn->checkpoint) {
    if (txn->taken.len) /* pages taken and given back within the txn */
      freelist_return(&db->fl, &txn->taken);
    txn_free_all(txn, 0);
    METRIC_ADD(&db->metrics, commits_empty, 1);
    cairn__clearerr();
    return CAIRN_OK;
  }
  uint64_t t0 = metrics_now_ns();
  int sync = durability == CAIRN_DURABILITY_SYNC ||
             (durability == CAIRN_DURABILITY_DEFAULT &&
              db->opts.durability != CAIRN_DURABILITY_LAZY);
  int logged = db->wal_on && !txn->checkpoint;
  int self_fold = logged && sync && folds_itself(txn);
  if (self_fold) { /* a commit that is also a checkpoint (its own txn id) */
    txn->checkpoint = 1;
    logged = 0;
  }
  overlay *fresh = NULL; /* a checkpoint's empty overlay for what follows */
  int rc = CAIRN_OK;
  if (txn->checkpoint && db->ov) {
    fresh = overlay_new(db->ov->nodes);
    rc = fresh ? view_fold(txn)
               : cairn__seterr(CAIRN_NOMEM, "out of memory checkpointing");
  }
  if (!rc)
    rc = catalog_flush(txn);
  if (!rc && !logged)
    rc = freelist_persist(txn);
  dirty_page **ds = NULL;
  size_t n = 0;
  /* Nothing after the commit point may allocate (a failure there would
   * drop the pages the commit freed from the free set for good): room for
   * them is made now. */
  pgvec young = {0};
  if (!rc) {
    ds = dirty_list(txn, &n);
    /* (While a checkpoint folds in the background a commit frees nothing
     * and the free set is the fold's.) */
    if (!ds || (logged && pgvec_reserve(&young, txn->freed.len + 1)) ||
        (!db->bg && pgvec_reserve(&db->fl.ready,
                                  db->fl.ready.len + txn->local_free.len + 1)))
      rc = cairn__seterr(CAIRN_NOMEM, "out of memory committing");
  }
  if (!rc) {
    if (!logged) /* written in page order, neighbours coalesced */
      qsort(ds, n, sizeof *ds, cmp_dirty);
    if (logged)
      stamp_pages(ds, n, txn->snap.txnid);
    else
      seal_pages(ds, n, db->pg.psize, txn->snap.txnid);
    rc = logged ? commit_logged(txn, sync, ds, n)
                : commit_pages(txn, sync, ds, n);
  }
  if (rc) {
    free(ds);
    pgvec_free(&young);
    overlay_unref(fresh);
    cairn_abort(txn);
    return rc;
  }
  if (!logged) {
    /* The cache must hold the new content of reused page numbers before
     * any reader can reach them through the new state. */
    int cached = !db->pg.mapped;
    for (size_t i = 0; i < n && cached; i++)
      pager_adopt(&db->pg, ds[i]->pgno, ds[i]->npages, ds[i]->buf);
  }
  free(ds);
  /* Publish: readers walk the list, so this txn's new nodes join it now. */
  overlay_link_pending(txn->ov);
  int frc = logged ? split_young(txn, &young) : CAIRN_OK;
  uint64_t free_pages = 0;
  if (!frc && logged) {
    free_pages = db->bg ? db->free_pages
                        : freelist_total(&db->fl) + txn->freed.len + young.len +
                              txn->local_free.len;
  }
  overlay *folded = NULL;
  cairn_mutex_lock(&db->meta_mu);
  db->cur = txn->snap;
  if (fresh) { /* the new tree holds what the overlay held */
    folded = db->ov;
    db->ov = fresh;
    new_tree_locked(db);
  }
  if (logged) {
    db->free_pages = free_pages;
    if (sync && !db->replaying)
      db->logged_durable = txn->snap.txnid;
  }
  if (sync && !logged) {
    db->durable_txnid = txn->snap.txnid;
    db->durable_slot = 1 - db->durable_slot;
  }
  cairn_mutex_unlock(&db->meta_mu);
  overlay_unref(folded); /* readers that began before keep theirs */
  if (txn->checkpoint) {
    int wrc = CAIRN_OK;
    if (self_fold) { /* the log held no record: its header can wait */
      wal_reset_later(&db->wal, txn->snap.db_id, txn->snap.txnid);
    } else if (sync) {
      db->ckpt_unsynced = 0; /* this meta page supersedes a lazy one's */
      wrc = wal_reset(&db->wal, txn->snap.db_id, txn->snap.txnid);
    } else {
      db->ckpt_unsynced = 1;
      db->ckpt_meta = txn->snap;
    }
    db->log_ckpt_pos = db->wal.pos;
    if (wrc) {
      /* New records must never follow the old ones (their ids would leave
       * a gap recovery stops at): no more writes until a reopen. */
      db->poisoned = 1;
      rc = wrc;
    }
    replaced_tree(txn, txn->snap.txnid, !self_fold);
    if (!rc && txn->snap_out) /* still holding write_mu: no commit between */
      rc = cairn_begin(db, CAIRN_TXN_RDONLY, txn->snap_out);
    if (sync) {
      cairn_mutex_lock(&db->meta_mu);
      db->logged_durable = txn->snap.txnid;
      cairn_mutex_unlock(&db->meta_mu);
    }
  }
  METRIC_ADD(&db->metrics, pages_freed, txn->freed.len + young.len);
  if (logged) /* checkpointed pages replaced: reusable after a checkpoint */
    db->freed_since_ckpt += txn->freed.len;
  if (!frc && txn->checkpoint)
    frc = checkpoint_frees(txn);
  if (!frc && !txn->checkpoint)
    frc = freelist_add_pending(&db->fl, txn->snap.txnid, &txn->freed,
                               PENDING_OLD);
  if (!frc)
    frc = freelist_add_pending(&db->fl, txn->snap.txnid, &young, 1);
  pgvec_free(&young);
  if (!frc && !txn->checkpoint && txn->local_free.len) {
    pgvec_sort(&txn->local_free);
    frc = pgvec_merge(&db->fl.ready, &txn->local_free);
  }
  if (frc) /* the pages are lost until reopen, nothing worse */
    cairn__seterr(frc, "out of memory recording free pages");
  /* Still holding write_mu (released by txn_free_all): the sync
   * bookkeeping belongs to the writer. */
  if (sync) {
    db->lazy_commits = 0;
    db->last_sync_ms = db_now_ms();
  } else if (!db->replaying && !txn->checkpoint) {
    db->lazy_commits++;
    if ((db->opts.lazy_sync_commits &&
         db->lazy_commits >= db->opts.lazy_sync_commits) ||
        (db->opts.lazy_sync_ms &&
         db_now_ms() - db->last_sync_ms >= db->opts.lazy_sync_ms))
      /* The commit itself succeeded; a failed automatic sync is retried
       * by the next one and reported by cairn_sync. */
      auto_sync(db);
  }
  if (logged) /* the deferred page table owns the pages now */
    pgmap_clear(&txn->dirty);
  /* A fold that finished in the background is published here, by the
   * writer, between commits. */
  if (logged && !db->replaying)
    ckpt_bg_poll(db);
  /* Pages of the checkpointed tree that commits replaced cannot be reused
   * before the next checkpoint: checkpointing once they pass a quarter of
   * the file bounds the file's growth. */
  uint64_t budget = checkpoint_bytes(db);
  uint64_t logged_since =
      db->wal.pos > db->log_ckpt_pos ? db->wal.pos - db->log_ckpt_pos : 0;
  int ckpt = logged && !db->replaying && !db->rdonly &&
             /* (a running fold owns def; no commit adds to it meanwhile) */
             ((!db->bg && db->def.bytes >= budget) || logged_since >= budget ||
              (db->ov && db->ov->bytes >= budget) ||
              (db->freed_since_ckpt > 16 &&
               db->freed_since_ckpt > txn->snap.page_count / 4));
  /* After a lazy commit the checkpoint is lazy too, while the log it
   * keeps is short enough to replay. */
  int lazy_ckpt = !sync && db->wal.pos < LOG_BUDGETS * budget;
  int is_checkpoint = txn->checkpoint && !self_fold;
  METRIC_ADD(&db->metrics, commits_folded, self_fold ? 1 : 0);
  txn_free_all(txn, !logged && !db->pg.mapped);
  metrics *m = &db->metrics;
  if (!is_checkpoint) {
    METRIC_ADD(m, commits, 1);
    METRIC_ADD(m, commits_sync, sync ? 1 : 0);
    METRIC_ADD(m, commits_lazy, sync ? 0 : 1);
    histo_record(&m->commit, metrics_now_ns() - t0);
  }
  /* (A fold still running when the next checkpoint is due is waited for:
   * checkpoints then fall where the budget says whatever the folds' speed,
   * and with them the file's growth.) */
  if (ckpt)
    /* The commit is durable in the log; a failed checkpoint leaves its
     * pages in memory and is retried after the next commit. */
    (void)checkpoint(db, NULL, lazy_ckpt);
  if (rc)
    return rc;
  cairn__clearerr();
  return CAIRN_OK;
}
