/*
 * view.c — what a transaction sees with the write-ahead log: the overlay of
 * commits since the last checkpoint (overlay.h) over the checkpointed tree,
 * and the checkpoint's fold of the one into the other.
 *
 * Invariant: between checkpoints no data write changes a tree; a put or
 * delete only adds an overlay version stamped with its txn id, so a reader
 * sees exactly the versions at or below its snapshot over the tree it began
 * with, and the writer sees its own. A plain put writes blind (no tree
 * read); a node records, once someone needs it, whether its key is in the
 * tree (fixed while the overlay lives), so counting entries and deciding
 * delete-or-NOTFOUND read the tree at most once per key. While a checkpoint
 * folds in the background (ckpt_bg.c), the overlay it folds lies between
 * the txn's overlay and the tree.
 */
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "error.h"

/* The newest version of (cf, key) in ov a snapshot sees, or NULL. */
static const ov_version *find_visible(overlay *ov, uint32_t cf,
                                      const uint8_t *key, size_t klen,
                                      uint64_t snap) {
  ov_node *n = ov ? overlay_find(ov, cf, key, klen) : NULL;
  return n ? ov_visible(n, snap) : NULL;
}

int view_get(cairn_txn *txn, cf_state *s, const uint8_t *key, size_t klen,
             cairn_slice *val) {
  if (txn->ov) {
    uint64_t snap = txn->snap.txnid;
    const ov_version *v = find_visible(txn->ov, s->id, key, klen, snap);
    if (!v && txn->ov_old) /* a checkpoint is folding it into a new tree */
      v = find_visible(txn->ov_old, s->id, key, klen, snap);
    if (v) {
      if (v->tomb)
        return CAIRN_NOTFOUND;
      val->data = v->val;
      val->size = v->vlen;
      return CAIRN_OK;
    }
  }
  return btree_get(txn, s, key, klen, val);
}

/* Room to remember one more version: one the txn could not hide on abort
 * must never be added. */
static int reserve_written(cairn_txn *txn) {
  if (txn->nov_written == txn->capov_written) {
    size_t cap = txn->capov_written ? 2 * txn->capov_written : 64;
    ov_version **n = realloc(txn->ov_written, cap * sizeof *n);
    if (!n)
      return CAIRN_NOMEM;
    txn->ov_written = n;
    txn->capov_written = cap;
  }
  return CAIRN_OK;
}

/* Is n's key in what lies beneath n's overlay: the checkpointed tree, and
 * over it the overlay a background checkpoint folds into the next tree
 * (under; NULL if none, or if n is in that one)? Fixed while n's overlay
 * lives (the next tree holds the same), so it is looked up once per node. */
static int in_base(cairn_txn *txn, cf_state *s, ov_node *n, overlay *under,
                   int *out) {
  unsigned b = atomic_load_explicit(&n->in_base, memory_order_relaxed);
  if (b == OV_BASE_UNKNOWN) {
    /* (every version in a frozen overlay is committed or aborted) */
    const ov_version *v =
        under ? find_visible(under, s->id, n->key, n->klen, OV_ABORTED - 1)
              : NULL;
    cairn_slice old;
    int rc = v ? CAIRN_OK : btree_get(txn, s, n->key, n->klen, &old);
    if (rc && rc != CAIRN_NOTFOUND)
      return rc;
    b = v ? !v->tomb : rc == CAIRN_OK;
    atomic_store_explicit(&n->in_base, (uint8_t)b, memory_order_relaxed);
  }
  *out = (int)b;
  return CAIRN_OK;
}

/* s's greatest tree key, looked up once per txn; NULL when the txn
 * tracks too many cfs to remember it (or has no memory for it). */
static const tree_edge *tree_edge_of(cairn_txn *txn, cf_state *s) {
  for (size_t i = 0; i < txn->nedges; i++)
    if (txn->edges[i].cf == s->id)
      return &txn->edges[i];
  if (txn->nedges == TXN_EDGES)
    return NULL;
  const uint8_t *k = NULL;
  size_t klen = 0;
  int rc = btree_last_key(txn, s, &k, &klen);
  if (rc && rc != CAIRN_NOTFOUND) {
    cairn__clearerr(); /* only an estimate: the commit will see the error */
    return NULL;
  }
  tree_edge *e = &txn->edges[txn->nedges];
  e->cf = s->id;
  e->empty = rc == CAIRN_NOTFOUND;
  e->klen = klen;
  e->key = NULL;
  if (klen && !(e->key = malloc(klen)))
    return NULL;
  if (klen)
    memcpy(e->key, k, klen);
  txn->nedges++;
  return e;
}

/* What folding this write into the tree would write, in bytes: a key
 * beyond the tree's greatest lands in fresh pages at its right edge (its
 * entry's bytes); any other write rewrites a leaf (a page). */
static uint64_t fold_cost(cairn_txn *txn, cf_state *s, const uint8_t *key,
                          size_t klen, size_t vlen, int tomb) {
  uint64_t page = txn->db->pg.psize;
  const tree_edge *e = tomb ? NULL : tree_edge_of(txn, s);
  if (!e)
    return page;
  if (!e->empty && key_cmp(key, klen, e->key, e->klen) <= 0)
    return page;
  return klen + vlen + LEAF_ENTRY_HDR + 2;
}

int view_write(cairn_txn *txn, cf_state *s, const uint8_t *key, size_t klen,
               const uint8_t *val, size_t vlen, int tomb, int noover) {
  overlay *ov = txn->ov;
  ov_node *n = overlay_node_unlinked(ov, s->id, key, klen);
  if (!n)
    return txn_fail(
        txn, cairn__seterr(CAIRN_NOMEM, "out of memory for the overlay"));
  if (tomb || noover) { /* a plain put need not know: it writes blind */
    const ov_version *v = ov_visible(n, txn->snap.txnid);
    int exists = v && !v->tomb;
    if (!v) {
      int rc = in_base(txn, s, n, txn->ov_old, &exists);
      if (rc)
        return txn_fail(txn, rc);
    }
    if (noover && exists)
      return CAIRN_EXISTS;
    if (tomb && !exists)
      return CAIRN_NOTFOUND;
  }
  ov_version *v = NULL;
  if (reserve_written(txn) == CAIRN_OK)
    v = overlay_add(ov, n, txn->snap.txnid, val, vlen, tomb);
  if (!v)
    return txn_fail(
        txn, cairn__seterr(CAIRN_NOMEM, "out of memory for the overlay"));
  txn->ov_written[txn->nov_written++] = v;
  if (!txn->db->replaying)
    txn->fold_bytes += fold_cost(txn, s, key, klen, vlen, tomb);
  return CAIRN_OK;
}

void view_abort(cairn_txn *txn) {
  overlay_link_pending(txn->ov); /* hidden, but indexed: keep them whole */
  for (size_t i = 0; i < txn->nov_written; i++)
    atomic_store_explicit(&txn->ov_written[i]->txnid, OV_ABORTED,
                          memory_order_relaxed);
  txn->nov_written = 0;
}

/* What ov's versions a snapshot sees add to the entries beneath it. */
static int entries_delta(cairn_txn *txn, cf_state *s, overlay *ov,
                         overlay *under, int64_t *delta) {
  for (ov_node *n = overlay_seek(ov, s->id, (const uint8_t *)"", 0); n;
       n = overlay_next(n)) {
    const ov_version *v = ov_visible(n, txn->snap.txnid);
    int base;
    if (!v)
      continue;
    int rc = in_base(txn, s, n, under, &base);
    if (rc)
      return rc;
    *delta += (int64_t)!v->tomb - (int64_t)base;
  }
  return CAIRN_OK;
}

int view_entries(cairn_txn *txn, cf_state *s, uint64_t *out) {
  int64_t delta = 0;
  if (!txn->rdonly)
    overlay_link_pending(txn->ov);
  int rc =
      txn->ov ? entries_delta(txn, s, txn->ov, txn->ov_old, &delta) : CAIRN_OK;
  if (!rc && txn->ov_old)
    rc = entries_delta(txn, s, txn->ov_old, NULL, &delta);
  if (rc)
    return rc;
  if (delta < 0 && (uint64_t)-delta > s->entries)
    return cairn__seterr(CAIRN_CORRUPT,
                         "column family '%s': the overlay deletes more "
                         "entries than the tree holds",
                         s->name);
  *out = s->entries + (uint64_t)delta;
  return CAIRN_OK;
}

int view_fold(cairn_txn *txn) {
  overlay *ov = txn->ov;
  if (!ov)
    return CAIRN_OK;
  overlay_link_pending(ov);
  ov_node **nodes;
  size_t n, i = 0, mapped;
  int src = overlay_sorted(ov, &nodes, &n, &mapped);
  if (src)
    return txn_fail(
        txn, src == -1
                 ? cairn__seterr(CAIRN_NOMEM, "out of memory checkpointing")
                 : cairn__seterr(CAIRN_CORRUPT, "the overlay's nodes do not "
                                                "add up (a bug)"));
  int rc = CAIRN_OK;
  while (i < n && !rc) {
    cf_state *s = txn_cf(txn, nodes[i]->cf, &rc);
    if (rc == CAIRN_NOTFOUND) { /* dropped since: its versions are moot */
      cairn__clearerr();
      rc = CAIRN_OK;
      uint32_t cf = nodes[i]->cf;
      while (i < n && nodes[i]->cf == cf)
        i++;
      continue;
    }
    if (!rc)
      rc = btree_fold(txn, s, nodes, n, &i);
  }
  overlay_sorted_free(nodes, mapped);
  return rc;
}
