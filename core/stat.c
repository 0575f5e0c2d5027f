/*
 * stat.c — statistics: per column family (entries, depth, pages by kind)
 * and for the whole database (file, free and pinned pages, snapshots).
 * Page counts come from walking the trees of a read snapshot, so they are
 * exact and never disturb the writer.
 */
#include <string.h>

#include "engine.h"
#include "error.h"

static int count_page(cairn_txn *txn, uint64_t pg, uint32_t level,
                      uint32_t depth, cairn_cf_stat *st);

/* Pins only the current path (see txn_scope_begin). */
static int count_pages(cairn_txn *txn, uint64_t pg, uint32_t level,
                       uint32_t depth, cairn_cf_stat *st) {
  pgmap scope, *saved;
  txn_scope_begin(txn, &scope, &saved);
  int rc = count_page(txn, pg, level, depth, st);
  txn_scope_end(txn, &scope, saved);
  return rc;
}

static int count_page(cairn_txn *txn, uint64_t pg, uint32_t level,
                      uint32_t depth, cairn_cf_stat *st) {
  const uint8_t *p;
  int leaf = level + 1 == depth;
  int rc = txn_page(txn, pg, TYPE_BIT(leaf ? PAGE_LEAF : PAGE_BRANCH), &p);
  if (rc)
    return rc;
  uint32_t n = pg_count(p);
  if (leaf) {
    st->leaf_pages++;
    for (uint32_t i = 0; i < n; i++) {
      const uint8_t *e = leaf_entry(p, i);
      if (leaf_flags(e) & LEAF_OVERFLOW)
        st->overflow_pages += overflow_pages(leaf_vlen(e), txn->snap.page_size);
    }
    return CAIRN_OK;
  }
  st->branch_pages++;
  for (uint32_t i = 0; i < n && !rc; i++)
    rc = count_pages(txn, branch_child(branch_entry(p, i)), level + 1, depth,
                     st);
  return rc;
}

static int tree_stat(cairn_txn *txn, cf_state *s, cairn_cf_stat *out) {
  memset(out, 0, sizeof *out);
  int rc = view_entries(txn, s, &out->entries);
  if (rc)
    return rc;
  out->depth = s->depth;
  if (s->depth > MAX_DEPTH)
    return cairn__seterr(CAIRN_CORRUPT, "tree depth %u", s->depth);
  return s->root ? count_pages(txn, s->root, 0, s->depth, out) : CAIRN_OK;
}

int cairn_cf_stat_get(cairn_txn *txn, cairn_cf cf, cairn_cf_stat *out) {
  int rc = txn_check_live(txn);
  if (!rc && !out)
    rc = cairn__seterr(CAIRN_INVALID, "cairn_cf_stat_get: out is NULL");
  if (rc)
    return rc;
  cf_state *s = txn_cf(txn, cf, &rc);
  if (!s)
    return rc;
  rc = tree_stat(txn, s, out);
  if (!rc)
    cairn__clearerr();
  return rc;
}

typedef struct walk_ctx {
  cairn_txn *txn;
  uint64_t pages;
  uint32_t cfs;
  int rc;
} walk_ctx;

static int add_cf_pages(void *ctx, const char *name, cairn_cf cf) {
  (void)name;
  walk_ctx *w = ctx;
  cairn_cf_stat st;
  w->rc = cairn_cf_stat_get(w->txn, cf, &st);
  if (w->rc)
    return 1;
  w->pages += st.branch_pages + st.leaf_pages + st.overflow_pages;
  w->cfs++;
  return 0;
}

int cairn_db_stat_get(cairn_db *db, cairn_db_stat *out) {
  if (!db || !out)
    return cairn__seterr(CAIRN_INVALID, "cairn_db_stat_get: NULL argument");
  memset(out, 0, sizeof *out);
  cairn_txn *txn;
  int rc = cairn_begin(db, CAIRN_TXN_RDONLY, &txn);
  if (rc)
    return rc;
  walk_ctx w = {txn, 2, 0, 0}; /* the two meta pages */
  rc = cairn_cf_list(txn, add_cf_pages, &w);
  if (rc == 1)
    rc = w.rc;
  if (!rc) {
    cairn_cf_stat cat;
    rc = tree_stat(txn, &txn->catalog, &cat);
    w.pages += cat.branch_pages + cat.leaf_pages + cat.overflow_pages;
  }
  uint64_t chain = 0;
  for (uint64_t pg = txn->snap.freelist_head; pg && !rc;) {
    const uint8_t *p;
    if (++chain > txn->snap.page_count)
      rc = cairn__seterr(CAIRN_CORRUPT, "freelist chain loops");
    else
      rc = txn_page(txn, pg, TYPE_BIT(PAGE_FREELIST), &p);
    if (!rc)
      pg = ld64(p + PAGE_HDR);
  }
  const meta snap = txn->snap;
  cairn_abort(txn);
  if (rc)
    return rc;
  out->page_size = snap.page_size;
  out->page_count = snap.page_count;
  out->pages_in_use = w.pages + chain;
  out->pages_free = snap.freelist_count;
  if (db->wal_on) { /* the persisted list is the last checkpoint's */
    cairn_mutex_lock(&db->meta_mu);
    out->pages_free = db->free_pages;
    cairn_mutex_unlock(&db->meta_mu);
  }
  out->column_families = w.cfs;
  out->mapped = db->pg.mapped;
  out->platform = db->opts.platform;
  rc = db->pg.file->methods->size(db->pg.file, &out->file_size);
  if (!rc && db->wal_on && db->wal.file)
    rc = db->wal.file->methods->size(db->wal.file, &out->log_size);
  if (rc)
    return rc;
  cairn_mutex_lock(&db->meta_mu);
  out->overlay_bytes = db->ov ? atomic_load(&db->ov->bytes) : 0;
  if (db->ov_frozen) /* being folded in the background */
    out->overlay_bytes += atomic_load(&db->ov_frozen->bytes);
  out->last_txn_id = db->cur.txnid;
  out->durable_txn_id = db->durable_txnid;
  if (db->wal_on && db->logged_durable > out->durable_txn_id)
    out->durable_txn_id = db->logged_durable;
  for (size_t i = 0; i < db->nsnaps; i++)
    out->snapshots += db->snaps[i].count;
  out->oldest_snapshot_id = out->snapshots ? db_oldest_snapshot(db) : 0;
  int writer_is_me =
      db->writer_active && cairn_thread_equal(db->writer, cairn_thread_self());
  int stale = db->stale_readers > 0;
  cairn_mutex_unlock(&db->meta_mu);
  /* The pending free lists belong to the writer: read them under its lock
   * (or directly when this thread is the writer). */
  if (out->snapshots && !db->rdonly) {
    if (!writer_is_me)
      cairn_mutex_lock(&db->write_mu);
    ckpt_bg_wait(db); /* a fold in the background changes them */
    out->pages_pinned =
        freelist_pinned_after(&db->fl, out->oldest_snapshot_id, stale);
    if (!writer_is_me)
      cairn_mutex_unlock(&db->write_mu);
  }
  cairn__clearerr();
  return CAIRN_OK;
}
