/*
 * btree.c — the copy-on-write B+tree: search, insert, delete, split, merge,
 * and the position stack cursors walk with.
 *
 * Invariants kept here:
 *   - A page reachable from the snapshot a write txn started from is never
 *     modified: every change first copies the root-to-leaf path (txn_touch),
 *     so older snapshots and the last durable commit stay intact.
 *   - Keys inside a page are strictly increasing (memcmp order, shorter
 *     first on a common prefix); a branch entry i > 0 holds the smallest key
 *     of its subtree's range, entry 0 stands for -infinity.
 *   - Every entry is at most half a page's usable space, so a split of a
 *     full page plus one entry always yields two pages that fit.
 *   - All leaves are at depth t->depth; an empty tree has root 0, depth 0.
 */
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "error.h"

/* First index whose key >= key; *found when equal. */
static uint32_t leaf_search(const uint8_t *p, const uint8_t *key, size_t klen,
                            int *found) {
  uint32_t lo = 0, hi = pg_count(p);
  *found = 0;
  while (lo < hi) {
    uint32_t mid = lo + (hi - lo) / 2;
    const uint8_t *e = leaf_entry(p, mid);
    int c = key_cmp(leaf_key(e), leaf_klen(e), key, klen);
    if (c < 0)
      lo = mid + 1;
    else {
      if (c == 0)
        *found = 1;
      hi = mid;
    }
  }
  return lo;
}

/* Index of the child whose range holds key. */
static uint32_t branch_search(const uint8_t *p, const uint8_t *key,
                              size_t klen) {
  uint32_t lo = 1, hi = pg_count(p);
  while (lo < hi) {
    uint32_t mid = lo + (hi - lo) / 2;
    const uint8_t *e = branch_entry(p, mid);
    if (key_cmp(branch_key(e), branch_klen(e), key, klen) <= 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo - 1;
}

static unsigned level_type(uint32_t depth, int level) {
  return level + 1 == (int)depth ? TYPE_BIT(PAGE_LEAF) : TYPE_BIT(PAGE_BRANCH);
}

uint32_t btree_max_inline(uint32_t psize) { return (psize - PAGE_HDR) / 4; }

static int value_inline(uint32_t psize, size_t klen, size_t vlen) {
  return vlen <= 8 ||
         LEAF_ENTRY_HDR + klen + vlen + 2 <= btree_max_inline(psize);
}

int btree_entry_value(cairn_txn *txn, const uint8_t *e, cairn_slice *val) {
  if (leaf_flags(e) & LEAF_OVERFLOW) {
    const uint8_t *v;
    int rc = txn_overflow(txn, leaf_ovpg(e), leaf_vlen(e), &v);
    if (rc)
      return rc;
    val->data = v;
  } else {
    val->data = leaf_val(e);
  }
  val->size = leaf_vlen(e);
  return CAIRN_OK;
}

/* ---- positions --------------------------------------------------------- */

/* Note p as pos's leaf where its address is stable (see tree_pos). */
static void keep_leaf(cairn_txn *txn, tree_pos *pos, uint64_t pg,
                      const uint8_t *p) {
  if (txn->rdonly && (txn->db->pg.mapped || pos->keep)) {
    pos->leaf_pg = pg;
    pos->leaf = p;
  }
}

static int pos_leaf(cairn_txn *txn, tree_pos *pos, const uint8_t **p) {
  uint64_t pg = pos->pg[pos->depth - 1];
  if (pos->leaf && pos->leaf_pg == pg) {
    *p = pos->leaf;
    return CAIRN_OK;
  }
  int rc = txn_page(txn, pg, TYPE_BIT(PAGE_LEAF), p);
  if (!rc)
    keep_leaf(txn, pos, pg, *p);
  return rc;
}

int tree_entry(cairn_txn *txn, tree_pos *pos, const uint8_t **e) {
  const uint8_t *p;
  int rc = pos_leaf(txn, pos, &p);
  if (rc)
    return rc;
  if (pos->idx[pos->depth - 1] >= pg_count(p))
    return cairn__seterr(CAIRN_CORRUPT, "page %llu: position out of range",
                         (unsigned long long)pos->pg[pos->depth - 1]);
  *e = leaf_entry(p, pos->idx[pos->depth - 1]);
  return CAIRN_OK;
}

/* Descend from level l (whose pg/idx are set) to the leaf, taking the first
 * (dir > 0) or last (dir < 0) child at every level below. */
static int descend_edge(cairn_txn *txn, uint32_t depth, tree_pos *pos, int l,
                        int dir) {
  for (;;) {
    const uint8_t *p;
    int rc = txn_page(txn, pos->pg[l], level_type(depth, l), &p);
    if (rc)
      return rc;
    uint32_t n = pg_count(p);
    if (l + 1 == (int)depth) {
      if (n == 0)
        return CAIRN_NOTFOUND; /* only an empty root leaf can be empty */
      keep_leaf(txn, pos, pos->pg[l], p);
      pos->idx[l] = dir > 0 ? 0 : n - 1;
      pos->depth = l + 1;
      return CAIRN_OK;
    }
    pos->idx[l] = dir > 0 ? 0 : n - 1;
    pos->pg[l + 1] = branch_child(branch_entry(p, pos->idx[l]));
    l++;
  }
}

static int check_depth(const cf_state *t) {
  if (t->depth > MAX_DEPTH || (t->depth == 0) != (t->root == 0))
    return cairn__seterr(CAIRN_CORRUPT, "tree of column family %u: depth %u",
                         t->id, t->depth);
  return CAIRN_OK;
}

int tree_first(cairn_txn *txn, cf_state *t, tree_pos *pos) {
  pos->depth = 0;
  pos->leaf = NULL;
  int rc = check_depth(t);
  if (rc || !t->root)
    return rc ? rc : CAIRN_NOTFOUND;
  pos->pg[0] = t->root;
  pos->depth = (int)t->depth;
  rc = descend_edge(txn, t->depth, pos, 0, 1);
  if (rc)
    pos->depth = 0;
  return rc;
}

int tree_last(cairn_txn *txn, cf_state *t, tree_pos *pos) {
  pos->depth = 0;
  pos->leaf = NULL;
  int rc = check_depth(t);
  if (rc || !t->root)
    return rc ? rc : CAIRN_NOTFOUND;
  pos->pg[0] = t->root;
  pos->depth = (int)t->depth;
  rc = descend_edge(txn, t->depth, pos, 0, -1);
  if (rc)
    pos->depth = 0;
  return rc;
}

/* The tree a position belongs to is implied by its depth: levels below the
 * last are branches. A small cf_state stand-in carries that. */
static int step(cairn_txn *txn, tree_pos *pos, int dir) {
  if (pos->depth <= 0)
    return CAIRN_NOTFOUND;
  uint32_t depth = (uint32_t)pos->depth;
  int L = pos->depth - 1;
  for (int l = L; l >= 0; l--) {
    const uint8_t *p;
    int rc = l == L ? pos_leaf(txn, pos, &p)
                    : txn_page(txn, pos->pg[l], level_type(depth, l), &p);
    if (rc)
      return rc;
    uint32_t n = pg_count(p);
    int can = dir > 0 ? pos->idx[l] + 1 < n : pos->idx[l] > 0;
    if (!can)
      continue;
    pos->idx[l] = dir > 0 ? pos->idx[l] + 1 : pos->idx[l] - 1;
    if (l == L)
      return CAIRN_OK;
    pos->pg[l + 1] = branch_child(branch_entry(p, pos->idx[l]));
    return descend_edge(txn, depth, pos, l + 1, dir);
  }
  return CAIRN_NOTFOUND;
}

int tree_next(cairn_txn *txn, tree_pos *pos) {
  int rc = step(txn, pos, 1);
  if (rc)
    pos->depth = 0;
  return rc;
}

int tree_prev(cairn_txn *txn, tree_pos *pos) {
  int rc = step(txn, pos, -1);
  if (rc)
    pos->depth = 0;
  return rc;
}

int tree_seek(cairn_txn *txn, cf_state *t, const uint8_t *key, size_t klen,
              tree_pos *pos, int *found) {
  *found = 0;
  pos->depth = 0;
  pos->leaf = NULL;
  int rc = check_depth(t);
  if (rc || !t->root)
    return rc ? rc : CAIRN_NOTFOUND;
  uint64_t pg = t->root;
  for (int l = 0; l < (int)t->depth; l++) {
    const uint8_t *p;
    rc = txn_page(txn, pg, level_type(t->depth, l), &p);
    if (rc)
      return rc;
    pos->pg[l] = pg;
    if (l + 1 == (int)t->depth) {
      keep_leaf(txn, pos, pg, p);
      uint32_t i = leaf_search(p, key, klen, found);
      pos->depth = l + 1;
      if (i < pg_count(p)) {
        pos->idx[l] = i;
        return CAIRN_OK;
      }
      if (pg_count(p) == 0) {
        pos->depth = 0;
        return CAIRN_NOTFOUND;
      }
      pos->idx[l] = pg_count(p) - 1; /* past this leaf: step to the next */
      return tree_next(txn, pos);
    }
    uint32_t i = branch_search(p, key, klen);
    pos->idx[l] = i;
    pg = branch_child(branch_entry(p, i));
  }
  return CAIRN_NOTFOUND;
}

int btree_last_key(cairn_txn *txn, cf_state *t, const uint8_t **key,
                   size_t *klen) {
  int rc = check_depth(t);
  if (rc)
    return rc;
  uint64_t pg = t->root;
  for (int l = 0; pg && l < (int)t->depth; l++) {
    const uint8_t *p;
    if ((rc = txn_page(txn, pg, level_type(t->depth, l), &p)) != CAIRN_OK)
      return rc;
    uint32_t n = pg_count(p);
    if (!n)
      break;
    if (l + 1 == (int)t->depth) {
      const uint8_t *e = leaf_entry(p, n - 1);
      *key = leaf_key(e);
      *klen = leaf_klen(e);
      return CAIRN_OK;
    }
    pg = branch_child(branch_entry(p, n - 1));
  }
  return CAIRN_NOTFOUND;
}

int btree_get(cairn_txn *txn, cf_state *t, const uint8_t *key, size_t klen,
              cairn_slice *val) {
  int rc = check_depth(t);
  if (rc)
    return rc;
  uint64_t pg = t->root;
  if (!pg)
    return CAIRN_NOTFOUND;
  for (int l = 0;; l++) {
    const uint8_t *p;
    rc = txn_page(txn, pg, level_type(t->depth, l), &p);
    if (rc)
      return rc;
    if (l + 1 == (int)t->depth) {
      int found;
      uint32_t i = leaf_search(p, key, klen, &found);
      if (!found)
        return CAIRN_NOTFOUND;
      return btree_entry_value(txn, leaf_entry(p, i), val);
    }
    pg = branch_child(branch_entry(p, branch_search(p, key, klen)));
  }
}

/* ---- page surgery ------------------------------------------------------ */

static uint32_t used_bytes(const uint8_t *p) {
  uint32_t n = pg_count(p), used = 2 * n;
  for (uint32_t i = 0; i < n; i++)
    used += pg_entry_size(p, p + pg_slot(p, i));
  return used;
}

/* Lay entries out in buf as a fresh page of the given type. The entries
 * must not point into buf. */
void btree_node_build(uint8_t *buf, uint32_t psize, uint16_t type,
                      uint64_t pgno, const page_ent *es, uint32_t n) {
  page_init(buf, psize, type, pgno);
  uint32_t upper = psize;
  for (uint32_t i = 0; i < n; i++) {
    upper -= es[i].size;
    memcpy(buf + upper, es[i].ptr, es[i].size);
    pg_set_slot(buf, i, upper);
  }
  pg_set_count(buf, n);
  pg_set_upper(buf, upper);
  /* between the slots and the entries: no stale bytes reach the disk */
  memset(buf + PAGE_HDR + 2 * n, 0, upper - (PAGE_HDR + 2 * n));
}

/* Rewrite page p in place without holes (through the txn's scratch page). */
static void node_compact(cairn_txn *txn, uint8_t *p, uint32_t psize) {
  uint8_t *s = txn->scratch;
  memcpy(s, p, psize);
  uint32_t n = pg_count(s), upper = psize;
  for (uint32_t i = 0; i < n; i++) {
    const uint8_t *e = s + pg_slot(s, i);
    uint32_t sz = pg_entry_size(s, e);
    upper -= sz;
    memcpy(p + upper, e, sz);
    pg_set_slot(p, i, upper);
  }
  pg_set_upper(p, upper);
}

/* Insert an entry at idx if it fits; 0 if the page is too full. */
static int node_insert(cairn_txn *txn, uint8_t *p, uint32_t psize, uint32_t idx,
                       const uint8_t *e, uint32_t size) {
  if (pg_free_space(p) < size + 2) {
    if (psize - PAGE_HDR - used_bytes(p) < size + 2)
      return 0;
    node_compact(txn, p, psize);
  }
  uint32_t n = pg_count(p);
  uint8_t *slots = p + PAGE_HDR;
  memmove(slots + 2 * (idx + 1), slots + 2 * idx, 2 * (n - idx));
  uint32_t upper = pg_upper(p) - size;
  memcpy(p + upper, e, size);
  pg_set_slot(p, idx, upper);
  pg_set_count(p, n + 1);
  pg_set_upper(p, upper);
  return 1;
}

static void node_remove(uint8_t *p, uint32_t idx) {
  uint32_t n = pg_count(p);
  uint8_t *slots = p + PAGE_HDR;
  uint32_t off = pg_slot(p, idx);
  memmove(slots + 2 * idx, slots + 2 * (idx + 1), 2 * (n - idx - 1));
  pg_set_count(p, n - 1);
  if (off == pg_upper(p)) /* the lowest entry: give its bytes back */
    pg_set_upper(p, off + pg_entry_size(p, p + off));
}

static void set_child(uint8_t *branch, uint32_t idx, uint64_t child) {
  st64((uint8_t *)branch_entry(branch, idx), child);
}

/* ---- insert ------------------------------------------------------------ */

typedef struct path {
  int depth;
  uint64_t pg[MAX_DEPTH];
  uint32_t idx[MAX_DEPTH];
  uint8_t *buf[MAX_DEPTH];
} path;

/* Descend to the leaf for key, copying every page on the way (COW). */
static int path_touch(cairn_txn *txn, cf_state *t, const uint8_t *key,
                      size_t klen, path *ph, int *found) {
  int rc = check_depth(t);
  if (rc)
    return rc;
  uint64_t pg = t->root;
  ph->depth = (int)t->depth;
  for (int l = 0; l < ph->depth; l++) {
    const uint8_t *p;
    rc =
        txn_page(txn, pg, level_type(t->depth, l), &p); /* validates the type */
    if (rc)
      return rc;
    uint8_t *buf;
    uint64_t npg;
    rc = txn_touch(txn, pg, &buf, &npg);
    if (rc)
      return rc;
    if (l == 0) {
      if (t->root != npg) {
        t->root = npg;
        t->dirty = 1;
      }
    } else if (npg != pg) {
      set_child(ph->buf[l - 1], ph->idx[l - 1], npg);
    }
    ph->pg[l] = npg;
    ph->buf[l] = buf;
    if (l + 1 == ph->depth) {
      ph->idx[l] = leaf_search(buf, key, klen, found);
    } else {
      ph->idx[l] = branch_search(buf, key, klen);
      pg = branch_child(branch_entry(buf, ph->idx[l]));
    }
  }
  return CAIRN_OK;
}

/* Split point for n entries (sizes include the slot): the first index s
 * such that both sides fit, as balanced as possible; when the new entry was
 * appended at the end, leave the left page full (sequential loads). */
static uint32_t split_point(const page_ent *es, uint32_t n, uint32_t usable,
                            int appending, uint32_t extra_right0) {
  uint64_t total = 0;
  for (uint32_t i = 0; i < n; i++)
    total += es[i].size + 2;
  if (appending) {
    uint64_t right = es[n - 1].size + 2 + extra_right0;
    if (total - es[n - 1].size - 2 <= usable && right <= usable)
      return n - 1;
  }
  uint64_t left = 0;
  uint32_t best = 1;
  for (uint32_t s = 1; s < n; s++) {
    left += es[s - 1].size + 2;
    uint64_t right = total - left + extra_right0;
    if (left <= usable && right <= usable) {
      best = s;
      if (left >= right)
        break;
    }
    if (left > usable)
      break;
  }
  return best;
}

static int insert_into(cairn_txn *txn, cf_state *t, path *ph, int l,
                       uint32_t idx, const uint8_t *e, uint32_t size);

/* Split ph->buf[l] with the new entry at idx, push the separator up. */
static int split_node(cairn_txn *txn, cf_state *t, path *ph, int l,
                      uint32_t idx, const uint8_t *e, uint32_t size) {
  uint32_t psize = txn->snap.page_size, usable = psize - PAGE_HDR;
  uint8_t *p = ph->buf[l];
  uint16_t type = pg_type(p);
  uint32_t n = pg_count(p);
  uint8_t *copy = malloc(psize);
  page_ent *es = malloc((n + 1) * sizeof *es);
  uint8_t *rbuf;
  uint64_t rpg;
  int rc = CAIRN_NOMEM;
  if (!copy || !es) {
    rc = cairn__seterr(CAIRN_NOMEM, "out of memory splitting a page");
    goto out;
  }
  memcpy(copy, p, psize);
  for (uint32_t i = 0, j = 0; i <= n; i++) {
    if (i == idx) {
      es[i].ptr = e;
      es[i].size = size;
    } else {
      const uint8_t *x = copy + pg_slot(copy, j++);
      es[i].ptr = x;
      es[i].size = pg_entry_size(copy, x);
    }
  }
  /* In a branch, the right page's first key moves up; its entry 0 keeps
   * only the child pointer. */
  /* Appending past the rightmost key of the whole tree (heights, sequence
   * numbers) leaves the left page full instead of half empty. */
  int rightmost = idx == n;
  for (int k = 0; k < l && rightmost; k++)
    rightmost = ph->idx[k] + 1 == pg_count(ph->buf[k]);
  uint32_t s = split_point(es, n + 1, usable, rightmost, 0);
  rc = txn_alloc(txn, 1, &rbuf, &rpg);
  if (rc)
    goto out;
  uint8_t sep[BRANCH_ENTRY_HDR + CAIRN_MAX_KEY_SIZE];
  uint32_t seplen;
  uint8_t r0[BRANCH_ENTRY_HDR];
  if (type == PAGE_LEAF) {
    const uint8_t *first = es[s].ptr;
    seplen = BRANCH_ENTRY_HDR + leaf_klen(first);
    st16(sep + 8, (uint16_t)leaf_klen(first));
    memcpy(sep + BRANCH_ENTRY_HDR, leaf_key(first), leaf_klen(first));
  } else {
    const uint8_t *first = es[s].ptr;
    seplen = BRANCH_ENTRY_HDR + branch_klen(first);
    memcpy(sep + 8, first + 8, 2 + branch_klen(first));
    memcpy(r0, first, 8);
    st16(r0 + 8, 0);
    es[s].ptr = r0;
    es[s].size = BRANCH_ENTRY_HDR;
  }
  st64(sep, rpg);
  btree_node_build(p, psize, type, ph->pg[l], es, s);
  btree_node_build(rbuf, psize, type, rpg, es + s, n + 1 - s);
  txn->gen++;
  if (l == 0) {
    /* The root split: a new root with two children, one level deeper. */
    if (t->depth >= MAX_DEPTH) {
      rc = cairn__seterr(CAIRN_TOOBIG, "tree deeper than %d levels", MAX_DEPTH);
      goto out;
    }
    uint8_t *nbuf;
    uint64_t npg;
    rc = txn_alloc(txn, 1, &nbuf, &npg);
    if (rc)
      goto out;
    uint8_t left[BRANCH_ENTRY_HDR];
    st64(left, ph->pg[0]);
    st16(left + 8, 0);
    page_ent two[2] = {{left, BRANCH_ENTRY_HDR}, {sep, seplen}};
    btree_node_build(nbuf, psize, PAGE_BRANCH, npg, two, 2);
    t->root = npg;
    t->depth++;
    t->dirty = 1;
    rc = CAIRN_OK;
    goto out;
  }
  rc = insert_into(txn, t, ph, l - 1, ph->idx[l - 1] + 1, sep, seplen);
out:
  free(copy);
  free(es);
  return rc;
}

static int insert_into(cairn_txn *txn, cf_state *t, path *ph, int l,
                       uint32_t idx, const uint8_t *e, uint32_t size) {
  if (node_insert(txn, ph->buf[l], txn->snap.page_size, idx, e, size))
    return CAIRN_OK;
  return split_node(txn, t, ph, l, idx, e, size);
}

int btree_free_value(cairn_txn *txn, const uint8_t *e) {
  if (!(leaf_flags(e) & LEAF_OVERFLOW))
    return CAIRN_OK;
  return txn_free(txn, leaf_ovpg(e),
                  overflow_pages(leaf_vlen(e), txn->snap.page_size));
}

int btree_make_entry(cairn_txn *txn, const uint8_t *key, size_t klen,
                     const uint8_t *val, size_t vlen, uint8_t *e,
                     uint32_t *esize) {
  uint32_t psize = txn->snap.page_size;
  st16(e, (uint16_t)klen);
  e[3] = 0;
  st32(e + 4, (uint32_t)vlen);
  if (klen)
    memcpy(e + LEAF_ENTRY_HDR, key, klen);
  if (value_inline(psize, klen, vlen)) {
    e[2] = 0;
    if (vlen)
      memcpy(e + LEAF_ENTRY_HDR + klen, val, vlen);
    *esize = LEAF_ENTRY_HDR + (uint32_t)(klen + vlen);
    return CAIRN_OK;
  }
  uint64_t np = overflow_pages(vlen, psize), opg;
  uint8_t *obuf;
  int rc = txn_alloc(txn, np, &obuf, &opg);
  if (rc)
    return rc;
  page_init(obuf, psize, PAGE_OVERFLOW, opg);
  pg_set_count(obuf, (uint32_t)np);
  pg_set_upper(obuf, (uint32_t)vlen);
  memcpy(obuf + PAGE_HDR, val, vlen);
  e[2] = LEAF_OVERFLOW;
  st64(e + LEAF_ENTRY_HDR + klen, opg);
  *esize = LEAF_ENTRY_HDR + (uint32_t)klen + 8;
  return CAIRN_OK;
}

int btree_put(cairn_txn *txn, cf_state *t, const uint8_t *key, size_t klen,
              const uint8_t *val, size_t vlen, unsigned flags) {
  uint32_t psize = txn->snap.page_size;
  int found = 0, rc;
  path ph;
  uint8_t *e = malloc(LEAF_ENTRY_HDR + klen + (vlen > 8 ? vlen : 8));
  if (!e)
    return cairn__seterr(CAIRN_NOMEM, "out of memory building an entry");
  uint32_t esize;
  if (t->root) {
    rc = path_touch(txn, t, key, klen, &ph, &found);
    if (rc)
      goto out;
    if (found && (flags & CAIRN_PUT_NOOVERWRITE)) {
      rc = CAIRN_EXISTS;
      goto out;
    }
  }
  /* The entry (and its overflow run) only once the put will happen. */
  rc = btree_make_entry(txn, key, klen, val, vlen, e, &esize);
  if (rc)
    goto out;
  txn->gen++;
  if (!t->root) {
    uint8_t *buf;
    uint64_t pg;
    rc = txn_alloc(txn, 1, &buf, &pg);
    if (rc)
      goto out;
    page_ent one = {e, esize};
    btree_node_build(buf, psize, PAGE_LEAF, pg, &one, 1);
    t->root = pg;
    t->depth = 1;
    t->entries = 1;
    t->dirty = 1;
    goto out;
  }
  int L = ph.depth - 1;
  if (found) {
    const uint8_t *old = leaf_entry(ph.buf[L], ph.idx[L]);
    rc = btree_free_value(txn, old);
    if (rc)
      goto out;
    node_remove(ph.buf[L], ph.idx[L]);
  }
  rc = insert_into(txn, t, &ph, L, ph.idx[L], e, esize);
  if (rc)
    goto out;
  if (!found)
    t->entries++;
  t->dirty = 1;
out:
  free(e);
  if (rc && rc != CAIRN_EXISTS)
    txn_fail(txn, rc);
  return rc;
}

/* ---- delete ------------------------------------------------------------ */

static int rebalance(cairn_txn *txn, cf_state *t, path *ph, int l) {
  uint32_t psize = txn->snap.page_size, usable = psize - PAGE_HDR;
  uint8_t *p = ph->buf[l];
  uint32_t n = pg_count(p);
  int rc;
  if (l == 0) {
    if (pg_type(p) == PAGE_LEAF && n == 0) {
      rc = txn_free(txn, ph->pg[0], 1);
      t->root = 0;
      t->depth = 0;
      t->dirty = 1;
      return rc;
    }
    if (pg_type(p) == PAGE_BRANCH && n == 1) {
      uint64_t child = branch_child(branch_entry(p, 0));
      rc = txn_free(txn, ph->pg[0], 1);
      t->root = child;
      t->depth--;
      t->dirty = 1;
      return rc;
    }
    return CAIRN_OK;
  }
  if (n > 0 && used_bytes(p) >= usable / 4)
    return CAIRN_OK;
  uint8_t *parent = ph->buf[l - 1];
  uint32_t pidx = ph->idx[l - 1], pn = pg_count(parent);
  if (pn < 2)
    return CAIRN_OK;
  /* Merge the right one of (node, sibling) into the left one. */
  uint32_t li = pidx > 0 ? pidx - 1 : pidx, ri = li + 1;
  uint64_t sib = branch_child(branch_entry(parent, pidx > 0 ? li : ri));
  uint8_t *sbuf;
  uint64_t spg;
  rc = txn_touch(txn, sib, &sbuf, &spg);
  if (rc)
    return rc;
  set_child(parent, pidx > 0 ? li : ri, spg);
  uint8_t *left = pidx > 0 ? sbuf : p, *right = pidx > 0 ? p : sbuf;
  uint64_t rpg = pidx > 0 ? ph->pg[l] : spg;
  const uint8_t *pe = branch_entry(parent, ri);
  uint32_t extra = pg_type(right) == PAGE_BRANCH ? branch_klen(pe) : 0;
  if (used_bytes(left) + used_bytes(right) + extra > usable)
    return CAIRN_OK; /* too full to merge: an underfull page is legal */
  uint32_t ln = pg_count(left), rn = pg_count(right);
  page_ent *es = malloc((ln + rn) * sizeof *es);
  uint8_t *copy = malloc(2 * psize);
  uint8_t *r0 = malloc(BRANCH_ENTRY_HDR + CAIRN_MAX_KEY_SIZE);
  if (!es || !copy || !r0) {
    free(es);
    free(copy);
    free(r0);
    return cairn__seterr(CAIRN_NOMEM, "out of memory merging pages");
  }
  memcpy(copy, left, psize);
  memcpy(copy + psize, right, psize);
  const uint8_t *lc = copy, *rcp = copy + psize;
  for (uint32_t i = 0; i < ln; i++) {
    es[i].ptr = lc + pg_slot(lc, i);
    es[i].size = pg_entry_size(lc, es[i].ptr);
  }
  for (uint32_t i = 0; i < rn; i++) {
    es[ln + i].ptr = rcp + pg_slot(rcp, i);
    es[ln + i].size = pg_entry_size(rcp, es[ln + i].ptr);
  }
  if (pg_type(right) == PAGE_BRANCH && rn > 0) {
    /* The right page's -inf entry takes the parent's separator key. */
    memcpy(r0, es[ln].ptr, 8);
    st16(r0 + 8, (uint16_t)branch_klen(pe));
    memcpy(r0 + BRANCH_ENTRY_HDR, branch_key(pe), branch_klen(pe));
    es[ln].ptr = r0;
    es[ln].size = BRANCH_ENTRY_HDR + branch_klen(pe);
  }
  uint64_t lpg = pidx > 0 ? spg : ph->pg[l];
  btree_node_build(left, psize, pg_type(copy), lpg, es, ln + rn);
  free(es);
  free(copy);
  free(r0);
  rc = txn_free(txn, rpg, 1);
  if (rc)
    return rc;
  node_remove(parent, ri);
  txn->gen++;
  return rebalance(txn, t, ph, l - 1);
}

int btree_del(cairn_txn *txn, cf_state *t, const uint8_t *key, size_t klen) {
  if (!t->root)
    return CAIRN_NOTFOUND;
  /* Look first, so deleting a missing key copies nothing. */
  cairn_slice v;
  int rc = btree_get(txn, t, key, klen, &v);
  if (rc)
    return rc;
  path ph;
  int found;
  rc = path_touch(txn, t, key, klen, &ph, &found);
  if (!rc && !found)
    rc = cairn__seterr(CAIRN_CORRUPT, "key vanished during delete");
  int L = ph.depth - 1;
  if (!rc)
    rc = btree_free_value(txn, leaf_entry(ph.buf[L], ph.idx[L]));
  if (!rc) {
    node_remove(ph.buf[L], ph.idx[L]);
    t->entries--;
    t->dirty = 1;
    txn->gen++;
    rc = rebalance(txn, t, &ph, L);
  }
  if (rc)
    txn_fail(txn, rc);
  return rc;
}

/* ---- drop -------------------------------------------------------------- */

static int free_subtree(cairn_txn *txn, cf_state *t, uint64_t pg, int l) {
  const uint8_t *p;
  int rc = txn_page(txn, pg, level_type(t->depth, l), &p);
  if (rc)
    return rc;
  uint32_t n = pg_count(p);
  for (uint32_t i = 0; i < n && !rc; i++) {
    if (pg_type(p) == PAGE_LEAF) {
      const uint8_t *e = leaf_entry(p, i);
      if (leaf_flags(e) & LEAF_OVERFLOW)
        rc = txn_free(txn, leaf_ovpg(e),
                      overflow_pages(leaf_vlen(e), txn->snap.page_size));
    } else {
      rc = free_subtree(txn, t, branch_child(branch_entry(p, i)), l + 1);
    }
  }
  return rc ? rc : txn_free(txn, pg, 1);
}

int btree_free_all(cairn_txn *txn, cf_state *t) {
  int rc = check_depth(t);
  if (!rc && t->root)
    rc = free_subtree(txn, t, t->root, 0);
  if (rc)
    return txn_fail(txn, rc);
  t->root = 0;
  t->depth = 0;
  t->entries = 0;
  t->dirty = 1;
  txn->gen++;
  return CAIRN_OK;
}
