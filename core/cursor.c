/*
 * cursor.c — ordered iteration over one column family, within optional
 * bounds [lo, hi) or a prefix, forward and reverse.
 *
 * With the write-ahead log, a cursor merges two ordered sources: the tree
 * (the last checkpoint) and the overlay of later commits (overlay.h), where
 * a visible version shadows the tree's entry of the same key and a
 * tombstone hides it. Invariant after a move in direction d at key K: each
 * source is positioned at its first entry >= K (d = 1) or its last entry
 * <= K (d = -1); the next move in the same direction steps the sources that
 * sit on K, a move the other way re-seeks both from K. In a write txn the
 * overlay source is re-sought from K on every move: the txn may have added
 * nodes between K and where it was. While a checkpoint folds in the
 * background there is a third source between the two, the overlay it folds
 * (frozen: no txn adds to it); at one key the newer overlay's visible
 * version wins over the older's, either over the tree's entry.
 *
 * A cursor remembers the key it is on and the txn's modification counter;
 * when the txn changed the tree since (no log: writes change the tree), the
 * next move re-seeks from that key (page numbers on its stack may have been
 * copied or freed). With the log, writes go to the overlay, whose nodes
 * never move, and cursor_get looks the key up again there.
 * Cursors outlive their transaction only as detached handles: every call
 * but close then fails with CAIRN_BADTXN.
 *
 * On hosts without a map, a cursor pins the pages of its current position
 * in its own set and releases the old set after each move, so a scan holds
 * a bounded number of pages; this is why data from cairn_cursor_get is
 * valid until the cursor moves rather than until the txn ends.
 */
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "error.h"

struct cairn_cursor {
  cairn_txn *txn;
  cf_state *cf;
  tree_pos pos; /* the tree source; depth 0 = exhausted */
  /* the overlay sources, NULL = exhausted: the txn's overlay, and the one
   * a background checkpoint is folding into the next tree (ckpt_bg.c) */
  ov_node *on[2];
  const ov_version *ov_cur; /* the current key's overlay version, or NULL */
  const uint8_t *entry;     /* read txns: the tree entry at pos (the leaf stays
                             * mapped, or pinned in pins, until the next move) */
  int on_tree;              /* the tree source sits on the current key */
  int dir;   /* direction of the last move (0: re-seek from key first) */
  int state; /* 0 unpositioned, 1 on key, 2 key deleted by its txn */
  uint64_t gen;
  int has_lo, has_hi;
  size_t lolen, hilen, klen;
  uint8_t lo[CAIRN_MAX_KEY_SIZE];
  uint8_t hi[CAIRN_MAX_KEY_SIZE + 1];
  uint8_t key[CAIRN_MAX_KEY_SIZE]; /* write txns: a copy of the key it is on */
  /* The key it is on: key (write txns, whose pages change under it) or its
   * bytes in the overlay or the tree (read txns: they stay put until the
   * cursor's next move releases the leaf's pin; a scan copies no keys). */
  const uint8_t *kp;
  pgmap pins;  /* cached mode: pages of this position */
  pgmap spare; /* an empty pin set kept for the next move (no allocation) */
  cairn_cursor *next;
};

typedef struct move {
  pgmap old;
  pgmap *saved, *saved_from;
} move;

static void move_begin(cairn_cursor *c, move *m) {
  m->old = c->pins;
  c->pins = c->spare; /* empty, keeps its slots */
  memset(&c->spare, 0, sizeof c->spare);
  m->saved = c->txn->pin_to;
  c->txn->pin_to = &c->pins;
  m->saved_from = c->txn->pin_from; /* pages still needed move over */
  c->txn->pin_from = &m->old;
}

static int move_end(cairn_cursor *c, move *m, int rc) {
  c->txn->pin_to = m->saved;
  c->txn->pin_from = m->saved_from;
  /* Cached mode: the leaf the position keeps was read without the pager
   * in this move, so its pin is still in the old set; it moves over. */
  if (c->pos.leaf && m->old.len) {
    void *e = pgmap_get(&m->old, c->pos.leaf_pg);
    if (e && !c->pins.len && m->old.len == 1) {
      /* a step within the leaf (most steps of a scan): the old set is
       * just that pin, so it stays as it is */
      c->spare = c->pins;
      c->pins = m->old;
      return rc;
    }
    if (e) {
      void **slot = pgmap_ref(&c->pins, c->pos.leaf_pg);
      if (slot) {
        *slot = e;
        pgmap_del(&m->old, c->pos.leaf_pg);
      } else {
        c->pos.leaf = NULL; /* no memory: read it through the pager */
      }
    }
  }
  pager_release_set(&c->txn->db->pg, &m->old); /* leaves it empty */
  if (m->old.cap <= 64 && !c->spare.slots)
    c->spare = m->old; /* reused by the next move */
  else
    pgmap_free(&m->old);
  return rc;
}

static void drop_pins(cairn_cursor *c) {
  pager_release_set(&c->txn->db->pg, &c->pins);
  pgmap_free(&c->pins);
  pgmap_free(&c->spare);
}

void cursor_detach_all(cairn_txn *txn) {
  for (cairn_cursor *c = txn->cursors; c; c = c->next) {
    drop_pins(c);
    c->txn = NULL;
    c->cf = NULL;
  }
  txn->cursors = NULL;
}

static int live(cairn_cursor *c) {
  if (!c)
    return cairn__seterr(CAIRN_INVALID, "cursor is NULL");
  if (!c->txn)
    return cairn__seterr(CAIRN_BADTXN, "the cursor's transaction has ended");
  return txn_check_live(c->txn);
}

int cairn_cursor_open(cairn_txn *txn, cairn_cf cf, cairn_cursor **out) {
  if (!out)
    return cairn__seterr(CAIRN_INVALID, "cairn_cursor_open: out is NULL");
  *out = NULL;
  int rc = txn_check_live(txn);
  if (rc)
    return rc;
  cf_state *s = txn_cf(txn, cf, &rc);
  if (!s)
    return rc;
  cairn_cursor *c = calloc(1, sizeof *c);
  if (!c)
    return cairn__seterr(CAIRN_NOMEM, "out of memory");
  c->txn = txn;
  c->cf = s;
  c->pos.keep = txn->rdonly;
  s->ncursors++;
  c->next = txn->cursors;
  txn->cursors = c;
  *out = c;
  cairn__clearerr();
  return CAIRN_OK;
}

void cairn_cursor_close(cairn_cursor *c) {
  if (!c)
    return;
  if (c->txn) {
    drop_pins(c);
    for (cairn_cursor **p = &c->txn->cursors; *p; p = &(*p)->next)
      if (*p == c) {
        *p = c->next;
        break;
      }
    c->cf->ncursors--;
  }
  free(c);
}

static int check_slice(cairn_slice s, const char *what) {
  if (!s.data && s.size)
    return cairn__seterr(CAIRN_INVALID, "%s: NULL data with size %zu", what,
                         s.size);
  if (s.size > CAIRN_MAX_KEY_SIZE)
    return cairn__seterr(CAIRN_TOOBIG, "%s: %zu bytes, the limit is %u", what,
                         s.size, CAIRN_MAX_KEY_SIZE);
  return CAIRN_OK;
}

int cairn_cursor_bounds(cairn_cursor *c, cairn_slice from, cairn_slice to) {
  int rc = live(c);
  if (!rc)
    rc = check_slice(from, "cursor lower bound");
  if (!rc)
    rc = check_slice(to, "cursor upper bound");
  if (rc)
    return rc;
  c->pos.depth = 0;
  c->dir = 0;
  c->state = 0;
  drop_pins(c);
  c->has_lo = from.data != NULL;
  c->lolen = from.size;
  if (from.size)
    memcpy(c->lo, from.data, from.size);
  c->has_hi = to.data != NULL;
  c->hilen = to.size;
  if (to.size)
    memcpy(c->hi, to.data, to.size);
  cairn__clearerr();
  return CAIRN_OK;
}

int cairn_cursor_prefix(cairn_cursor *c, cairn_slice prefix) {
  int rc = live(c);
  if (!rc)
    rc = check_slice(prefix, "cursor prefix");
  if (rc)
    return rc;
  c->pos.depth = 0;
  c->dir = 0;
  c->state = 0;
  drop_pins(c);
  c->has_lo = 1;
  c->lolen = prefix.size;
  if (prefix.size)
    memcpy(c->lo, prefix.data, prefix.size);
  /* The upper bound is the smallest key above every key with the prefix:
   * drop trailing 0xff bytes and increment the last remaining one. */
  size_t n = prefix.size;
  const uint8_t *p = prefix.data;
  while (n && p[n - 1] == 0xff)
    n--;
  c->has_hi = n > 0;
  if (n) {
    memcpy(c->hi, p, n);
    c->hi[n - 1]++;
  }
  c->hilen = n;
  cairn__clearerr();
  return CAIRN_OK;
}

/* ---- the two sources ---------------------------------------------------- */

/* A tree move's NOTFOUND only exhausts the tree source. */
static int tree_rc(cairn_cursor *c, int rc) {
  if (rc == CAIRN_NOTFOUND) {
    c->pos.depth = 0;
    return CAIRN_OK;
  }
  return rc;
}

static int tree_key(cairn_cursor *c, const uint8_t **k, size_t *kl,
                    const uint8_t **e) {
  int rc = tree_entry(c->txn, &c->pos, e);
  if (!rc) {
    *k = leaf_key(*e);
    *kl = leaf_klen(*e);
  }
  return rc;
}

/* Overlay source i. A write txn's own new nodes join the list before its
 * cursor walks it. */
static overlay *ov_of(cairn_cursor *c, int i) {
  if (i)
    return c->txn->ov_old;
  if (!c->txn->rdonly)
    overlay_link_pending(c->txn->ov);
  return c->txn->ov;
}

/* Tree source to its first entry >= k (after = 0) or > k (after = 1). */
static int tree_ge(cairn_cursor *c, const uint8_t *k, size_t kl, int after) {
  int found;
  int rc = tree_seek(c->txn, c->cf, k, kl, &c->pos, &found);
  if (!rc && found && after)
    rc = tree_next(c->txn, &c->pos);
  return tree_rc(c, rc);
}

/* Tree source to its last entry < k (or <= k with or_equal; k NULL: the
 * last entry). */
static int tree_le(cairn_cursor *c, const uint8_t *k, size_t kl, int or_equal) {
  if (!k)
    return tree_rc(c, tree_last(c->txn, c->cf, &c->pos));
  int found;
  int rc = tree_seek(c->txn, c->cf, k, kl, &c->pos, &found);
  if (rc == CAIRN_NOTFOUND)
    return tree_rc(c, tree_last(c->txn, c->cf, &c->pos));
  if (!rc && !(found && or_equal))
    rc = tree_prev(c->txn, &c->pos);
  return tree_rc(c, rc);
}

static ov_node *ov_ge(cairn_cursor *c, int i, const uint8_t *k, size_t kl,
                      int after) {
  overlay *ov = ov_of(c, i);
  if (!ov)
    return NULL;
  ov_node *n = overlay_seek(ov, c->cf->id, k, kl);
  if (n && after && key_cmp(n->key, n->klen, k, kl) == 0)
    n = overlay_next(n);
  return n;
}

static ov_node *ov_le(cairn_cursor *c, int i, const uint8_t *k, size_t kl,
                      int or_equal) {
  overlay *ov = ov_of(c, i);
  if (!ov)
    return NULL;
  if (k && or_equal) {
    ov_node *n = overlay_seek(ov, c->cf->id, k, kl);
    if (n && key_cmp(n->key, n->klen, k, kl) == 0)
      return n;
  }
  return overlay_seek_lt(ov, c->cf->id, k, kl);
}

/* Every overlay source to its first node >= k (> k with after). */
static void ovs_ge(cairn_cursor *c, const uint8_t *k, size_t kl, int after) {
  for (int i = 0; i < 2; i++)
    c->on[i] = ov_ge(c, i, k, kl, after);
}

/* Every overlay source to its last node < k (<= k with or_equal). */
static void ovs_le(cairn_cursor *c, const uint8_t *k, size_t kl, int or_equal) {
  for (int i = 0; i < 2; i++)
    c->on[i] = ov_le(c, i, k, kl, or_equal);
}

static ov_node *ov_step(cairn_cursor *c, int i, ov_node *n, int dir) {
  return dir > 0 ? overlay_next(n)
                 : overlay_seek_lt(ov_of(c, i), c->cf->id, n->key, n->klen);
}

/* Step, in dir, the overlay sources that sit on key k. */
static void ovs_step_at(cairn_cursor *c, const uint8_t *k, size_t kl, int dir) {
  ov_node *at[2];
  for (int i = 0; i < 2; i++) /* (k may be a key of on[0]: compare first) */
    at[i] = c->on[i] && key_cmp(c->on[i]->key, c->on[i]->klen, k, kl) == 0
                ? c->on[i]
                : NULL;
  for (int i = 0; i < 2; i++)
    if (at[i])
      c->on[i] = ov_step(c, i, at[i], dir);
}

static int tree_step(cairn_cursor *c, int dir) {
  return tree_rc(c, dir > 0 ? tree_next(c->txn, &c->pos)
                            : tree_prev(c->txn, &c->pos));
}

/* Pick the current key from the sources' positions, moving in dir past
 * overlay nodes the snapshot cannot see and keys a tombstone deletes; then
 * enforce the bound on that side and remember the key. */
static int settle(cairn_cursor *c, int rc, int dir) {
  uint64_t snap = c->txn->snap.txnid;
  while (!rc) {
    const uint8_t *tk = NULL, *te = NULL;
    size_t tkl = 0;
    if (c->pos.depth && (rc = tree_key(c, &tk, &tkl, &te)) != CAIRN_OK)
      break;
    ov_node *n = NULL; /* the overlays' first key in dir */
    for (int i = 0; i < 2; i++)
      if (c->on[i] &&
          (!n ||
           dir * key_cmp(c->on[i]->key, c->on[i]->klen, n->key, n->klen) < 0))
        n = c->on[i];
    int order = 0; /* <0: the overlay's key comes first in dir */
    if (n && tk)
      order = dir * key_cmp(n->key, n->klen, tk, tkl);
    if (n && (!tk || order <= 0)) {
      const ov_version *v = NULL; /* the newest overlay's at n's key */
      for (int i = 0; i < 2 && !v; i++)
        if (c->on[i] &&
            key_cmp(c->on[i]->key, c->on[i]->klen, n->key, n->klen) == 0)
          v = ov_visible(c->on[i], snap);
      if (!v) { /* not in this snapshot: the tree has the say */
        ovs_step_at(c, n->key, n->klen, dir);
        continue;
      }
      if (v->tomb) {
        if (order == 0 && tk)
          rc = tree_step(c, dir);
        ovs_step_at(c, n->key, n->klen, dir);
        continue;
      }
      c->ov_cur = v;
      c->entry = NULL;
      c->on_tree = tk && order == 0;
      c->kp = c->txn->rdonly ? n->key : memcpy(c->key, n->key, n->klen);
      c->klen = n->klen;
    } else if (tk) {
      c->ov_cur = NULL;
      c->entry = c->txn->rdonly ? te : NULL;
      c->on_tree = 1;
      c->kp = c->txn->rdonly ? tk : memcpy(c->key, tk, tkl);
      c->klen = tkl;
    } else {
      rc = CAIRN_NOTFOUND;
      break;
    }
    if ((dir > 0 && c->has_hi &&
         key_cmp(c->kp, c->klen, c->hi, c->hilen) >= 0) ||
        (dir < 0 && c->has_lo &&
         key_cmp(c->kp, c->klen, c->lo, c->lolen) < 0)) {
      c->dir = 0;
      c->state = 0;
      c->pos.depth = 0;
      return cairn__seterr(CAIRN_NOTFOUND, "cursor: no more keys in range");
    }
    c->dir = dir;
    c->state = 1;
    c->gen = c->txn->gen;
    cairn__clearerr();
    return CAIRN_OK;
  }
  c->dir = 0;
  c->state = 0;
  c->pos.depth = 0;
  if (rc == CAIRN_NOTFOUND)
    return cairn__seterr(CAIRN_NOTFOUND, "cursor: no more keys");
  return rc;
}

int cairn_cursor_first(cairn_cursor *c) {
  int rc = live(c);
  if (rc)
    return rc;
  move m;
  move_begin(c, &m);
  const uint8_t *lo = c->has_lo ? c->lo : (const uint8_t *)"";
  size_t lolen = c->has_lo ? c->lolen : 0;
  rc = tree_ge(c, lo, lolen, 0);
  ovs_ge(c, lo, lolen, 0);
  return move_end(c, &m, settle(c, rc, 1));
}

int cairn_cursor_last(cairn_cursor *c) {
  int rc = live(c);
  if (rc)
    return rc;
  move m;
  move_begin(c, &m);
  const uint8_t *hi = c->has_hi ? c->hi : NULL;
  rc = tree_le(c, hi, c->hilen, 0);
  ovs_le(c, hi, c->hilen, 0);
  return move_end(c, &m, settle(c, rc, -1));
}

int cairn_cursor_seek(cairn_cursor *c, cairn_slice key) {
  int rc = live(c);
  if (!rc)
    rc = check_slice(key, "cursor seek key");
  if (rc)
    return rc;
  const uint8_t *k = key.data;
  size_t kl = key.size;
  if (c->has_lo && key_cmp(k, kl, c->lo, c->lolen) < 0) {
    k = c->lo;
    kl = c->lolen;
  }
  if (!k)
    k = (const uint8_t *)"";
  move m;
  move_begin(c, &m);
  rc = tree_ge(c, k, kl, 0);
  ovs_ge(c, k, kl, 0);
  return move_end(c, &m, settle(c, rc, 1));
}

int cairn_cursor_seek_le(cairn_cursor *c, cairn_slice key) {
  int rc = live(c);
  if (!rc)
    rc = check_slice(key, "cursor seek key");
  if (rc)
    return rc;
  if (c->has_hi && key_cmp(key.data, key.size, c->hi, c->hilen) >= 0)
    return cairn_cursor_last(c);
  const uint8_t *k = key.data ? key.data : (const uint8_t *)"";
  move m;
  move_begin(c, &m);
  rc = tree_le(c, k, key.size, 1);
  ovs_le(c, k, key.size, 1);
  return move_end(c, &m, settle(c, rc, -1));
}

/* Was the tree changed under the cursor since its last move? (Only
 * without the log: there the txn's writes copy and free tree pages.) */
static int tree_moved(const cairn_cursor *c) {
  return !c->txn->rdonly && c->gen != c->txn->gen;
}

int cairn_cursor_next(cairn_cursor *c) {
  int rc = live(c);
  if (rc)
    return rc;
  if (c->state == 0)
    return cairn_cursor_first(c);
  move m;
  move_begin(c, &m);
  if (c->dir != 1 || tree_moved(c)) {
    rc = tree_ge(c, c->kp, c->klen, 1);
    ovs_ge(c, c->kp, c->klen, 1);
  } else {
    if (c->on_tree)
      rc = tree_step(c, 1);
    ovs_step_at(c, c->kp, c->klen, 1);
    if (!c->txn->rdonly) /* the txn may have added nodes after the key */
      c->on[0] = ov_ge(c, 0, c->kp, c->klen, 1);
  }
  return move_end(c, &m, settle(c, rc, 1));
}

int cairn_cursor_prev(cairn_cursor *c) {
  int rc = live(c);
  if (rc)
    return rc;
  if (c->state == 0)
    return cairn_cursor_last(c);
  move m;
  move_begin(c, &m);
  if (c->dir != -1 || tree_moved(c)) {
    rc = tree_le(c, c->kp, c->klen, 0);
    ovs_le(c, c->kp, c->klen, 0);
  } else {
    if (c->on_tree)
      rc = tree_step(c, -1);
    ovs_step_at(c, c->kp, c->klen, -1);
    if (!c->txn->rdonly)
      c->on[0] = ov_le(c, 0, c->kp, c->klen, 0);
  }
  return move_end(c, &m, settle(c, rc, -1));
}

static int cursor_get(cairn_cursor *c, cairn_slice *key, cairn_slice *val);

int cairn_cursor_get(cairn_cursor *c, cairn_slice *key, cairn_slice *val) {
  int rc = live(c);
  if (rc)
    return rc;
  pgmap *saved = c->txn->pin_to;
  c->txn->pin_to = &c->pins;
  rc = cursor_get(c, key, val);
  c->txn->pin_to = saved;
  return rc;
}

/* The key the cursor is on was deleted by its own txn: stay at the key, so
 * next/prev continue from it. */
static int deleted(cairn_cursor *c) {
  c->dir = 0;
  c->state = 2;
  c->ov_cur = NULL;
  c->on_tree = 0;
  return cairn__seterr(CAIRN_NOTFOUND, "the key at the cursor was deleted");
}

static int cursor_get(cairn_cursor *c, cairn_slice *key, cairn_slice *val) {
  int rc;
  if (c->state == 0)
    return cairn__seterr(CAIRN_NOTFOUND, "cursor is not positioned");
  if (c->state == 2)
    return deleted(c);
  if (!c->txn->rdonly) {
    /* The txn may have written the key since the cursor moved. */
    if (c->txn->ov) {
      ov_node *n = overlay_find(c->txn->ov, c->cf->id, c->kp, c->klen);
      const ov_version *v = n ? ov_visible(n, c->txn->snap.txnid) : NULL;
      if (v && v->tomb)
        return deleted(c);
      if (v)
        c->ov_cur = v;
    }
    if (!c->ov_cur && tree_moved(c)) {
      int found;
      rc = tree_seek(c->txn, c->cf, c->kp, c->klen, &c->pos, &found);
      if (rc == CAIRN_OK && !found)
        rc = CAIRN_NOTFOUND;
      if (rc == CAIRN_NOTFOUND)
        return deleted(c);
      if (rc) {
        c->dir = 0;
        c->state = 0;
        return rc;
      }
      c->gen = c->txn->gen;
    }
  }
  if (c->ov_cur) {
    if (key) {
      key->data = c->kp;
      key->size = c->klen;
    }
    if (val) {
      val->data = c->ov_cur->val;
      val->size = c->ov_cur->vlen;
    }
    cairn__clearerr();
    return CAIRN_OK;
  }
  const uint8_t *e = c->entry;
  if (!e && (rc = tree_entry(c->txn, &c->pos, &e)) != CAIRN_OK)
    return rc;
  if (key) {
    key->data = leaf_key(e);
    key->size = leaf_klen(e);
  }
  if (val) {
    rc = btree_entry_value(c->txn, e, val);
    if (rc)
      return rc;
  }
  cairn__clearerr();
  return CAIRN_OK;
}
