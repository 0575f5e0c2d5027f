/*
 * cursor.c — ordered iteration over one column family, within optional
 * bounds [lo, hi) or a prefix, forward and reverse.
 *
 * A cursor in a write transaction remembers the key it is on and the txn's
 * modification counter; when the txn changed the tree since, the next move
 * re-seeks from that key (page numbers on its stack may have been copied or
 * freed). Read transactions never change, so their cursors skip this.
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
  tree_pos pos;
  uint64_t gen;
  int stale; /* its key was deleted: re-seek before the next move */
  int has_lo, has_hi;
  size_t lolen, hilen, klen;
  uint8_t lo[CAIRN_MAX_KEY_SIZE];
  uint8_t hi[CAIRN_MAX_KEY_SIZE + 1];
  uint8_t key[CAIRN_MAX_KEY_SIZE]; /* write txns: the key it is on */
  pgmap pins;                      /* cached mode: pages of this position */
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

static int cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen) {
  size_t n = alen < blen ? alen : blen;
  int c = n ? memcmp(a, b, n) : 0;
  return c ? c : (alen < blen ? -1 : alen > blen);
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

/* After a successful move: enforce the bound on the side we moved toward
 * and remember where we are. */
static int settle(cairn_cursor *c, int rc, int dir) {
  if (rc) {
    c->pos.depth = 0;
    if (rc == CAIRN_NOTFOUND)
      return cairn__seterr(CAIRN_NOTFOUND, "cursor: no more keys");
    return rc;
  }
  const uint8_t *e;
  rc = tree_entry(c->txn, &c->pos, &e);
  if (rc) {
    c->pos.depth = 0;
    return rc;
  }
  const uint8_t *k = leaf_key(e);
  size_t kl = leaf_klen(e);
  if ((dir >= 0 && c->has_hi && cmp(k, kl, c->hi, c->hilen) >= 0) ||
      (dir <= 0 && c->has_lo && cmp(k, kl, c->lo, c->lolen) < 0)) {
    c->pos.depth = 0;
    return cairn__seterr(CAIRN_NOTFOUND, "cursor: no more keys in range");
  }
  if (!c->txn->rdonly) {
    memcpy(c->key, k, kl);
    c->klen = kl;
    c->gen = c->txn->gen;
    c->stale = 0;
  }
  cairn__clearerr();
  return CAIRN_OK;
}

static int seek_ge(cairn_cursor *c, const uint8_t *k, size_t kl, int *found) {
  return tree_seek(c->txn, c->cf, k, kl, &c->pos, found);
}

int cairn_cursor_first(cairn_cursor *c) {
  int rc = live(c);
  if (rc)
    return rc;
  move m;
  move_begin(c, &m);
  int found;
  if (c->has_lo)
    rc = seek_ge(c, c->lo, c->lolen, &found);
  else
    rc = tree_first(c->txn, c->cf, &c->pos);
  return move_end(c, &m, settle(c, rc, 1));
}

/* Position on the last key < k (or the last key at all if k is NULL). */
static int seek_lt(cairn_cursor *c, const uint8_t *k, size_t kl) {
  if (!k)
    return tree_last(c->txn, c->cf, &c->pos);
  int found;
  int rc = seek_ge(c, k, kl, &found);
  if (rc == CAIRN_NOTFOUND)
    return tree_last(c->txn, c->cf, &c->pos);
  if (rc)
    return rc;
  return tree_prev(c->txn, &c->pos);
}

int cairn_cursor_last(cairn_cursor *c) {
  int rc = live(c);
  if (rc)
    return rc;
  move m;
  move_begin(c, &m);
  rc = seek_lt(c, c->has_hi ? c->hi : NULL, c->hilen);
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
  if (c->has_lo && cmp(k, kl, c->lo, c->lolen) < 0) {
    k = c->lo;
    kl = c->lolen;
  }
  int found;
  move m;
  move_begin(c, &m);
  rc = seek_ge(c, k, kl, &found);
  return move_end(c, &m, settle(c, rc, 1));
}

int cairn_cursor_seek_le(cairn_cursor *c, cairn_slice key) {
  int rc = live(c);
  if (!rc)
    rc = check_slice(key, "cursor seek key");
  if (rc)
    return rc;
  if (c->has_hi && cmp(key.data, key.size, c->hi, c->hilen) >= 0)
    return cairn_cursor_last(c);
  int found;
  move m;
  move_begin(c, &m);
  rc = seek_ge(c, key.data, key.size, &found);
  if (rc == CAIRN_NOTFOUND)
    rc = tree_last(c->txn, c->cf, &c->pos);
  else if (!rc && !found)
    rc = tree_prev(c->txn, &c->pos);
  return move_end(c, &m, settle(c, rc, -1));
}

/* Write txns: if the tree changed under the cursor, find its key again.
 * *moved is set when the re-seek already landed on the next key. */
static int revalidate(cairn_cursor *c, int dir, int *moved) {
  *moved = 0;
  if (c->txn->rdonly || (c->gen == c->txn->gen && !c->stale))
    return CAIRN_OK;
  int found;
  int rc = seek_ge(c, c->key, c->klen, &found);
  if (dir > 0) {
    if (rc == CAIRN_OK && !found)
      *moved = 1;
    return rc;
  }
  if (rc == CAIRN_NOTFOUND) {
    *moved = 1;
    return tree_last(c->txn, c->cf, &c->pos);
  }
  return rc;
}

int cairn_cursor_next(cairn_cursor *c) {
  int rc = live(c);
  if (rc)
    return rc;
  if (c->pos.depth == 0)
    return cairn_cursor_first(c);
  int moved;
  move m;
  move_begin(c, &m);
  rc = revalidate(c, 1, &moved);
  if (!rc && !moved)
    rc = tree_next(c->txn, &c->pos);
  return move_end(c, &m, settle(c, rc, 1));
}

int cairn_cursor_prev(cairn_cursor *c) {
  int rc = live(c);
  if (rc)
    return rc;
  if (c->pos.depth == 0)
    return cairn_cursor_last(c);
  int moved;
  move m;
  move_begin(c, &m);
  rc = revalidate(c, -1, &moved);
  if (!rc && !moved)
    rc = tree_prev(c->txn, &c->pos);
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

static int cursor_get(cairn_cursor *c, cairn_slice *key, cairn_slice *val) {
  int rc;
  if (c->pos.depth == 0)
    return cairn__seterr(CAIRN_NOTFOUND, "cursor is not positioned");
  if (!c->txn->rdonly && c->gen != c->txn->gen) {
    int found;
    rc = seek_ge(c, c->key, c->klen, &found);
    if (rc == CAIRN_OK && !found)
      rc = CAIRN_NOTFOUND;
    if (rc) {
      if (rc == CAIRN_NOTFOUND) {
        /* Stay where the key was, so next/prev continue from it. */
        c->pos.depth = 1;
        c->stale = 1;
        return cairn__seterr(CAIRN_NOTFOUND,
                             "the key at the cursor was deleted");
      }
      c->pos.depth = 0;
      return rc;
    }
    c->gen = c->txn->gen;
  }
  const uint8_t *e;
  rc = tree_entry(c->txn, &c->pos, &e);
  if (rc)
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
