/*
 * fold.c — a checkpoint's fold of the overlay into a column family's tree:
 * one walk of the tree in key order beside the overlay's nodes, which
 * rebuilds only the pages whose key range holds overlay versions.
 *
 * Invariants kept here:
 *   - A subtree whose key range holds no overlay version keeps its page
 *     numbers and is never read (appends and small checkpoints stay cheap).
 *   - The leaves under one parent that the overlay changes are rebuilt as
 *     one run: their entries merged with the overlay's and laid out packed
 *     and balanced (every leaf of a run at least half full unless the whole
 *     run is smaller). There is no fill-factor slack: later commits never
 *     insert into a leaf, the next fold rebuilds it, so the tree stays near
 *     the size of its data.
 *   - An untouched leaf after a run that would end less than half full, or
 *     alone between two changed leaves, joins the run instead, so runs do
 *     not leave a trail of half-empty leaves.
 *   - Separators stay valid: a kept page keeps the separator its parent gave
 *     it, a rebuilt page is separated by its first key, and the first child
 *     of a branch has no key (its range starts where the parent's does).
 *   - All leaves stay at one depth; a root with one child is collapsed.
 */
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "error.h"

/* A page of the tree being built: its range's lower bound and number. */
typedef struct kid {
  const uint8_t *key; /* in the fold's key arena, or an old page */
  uint16_t klen;
  uint64_t pg;
} kid;

typedef struct kids {
  kid *v;
  size_t len, cap;
} kids;

typedef struct key_block {
  struct key_block *next;
  size_t used;
  uint8_t bytes[];
} key_block;

#define KEY_BLOCK 65536u
#define SPILL_BATCH 256u

typedef struct fold {
  cairn_txn *txn;
  cf_state *t;
  uint64_t snap;
  uint32_t psize, usable, depth;
  ov_node *n;          /* next overlay node of this cf with a version */
  const ov_version *v; /* its visible version */
  ov_node **nodes;     /* every overlay node in key order (overlay_sorted) */
  size_t nnodes;
  size_t i;     /* nodes[i] is n; past this cf's nodes once n is NULL */
  size_t ahead; /* the prefetches' position (see prefetch_step) */
  kids *out;    /* where the run's leaves go */
  uint8_t *run; /* entries of the current run of leaves, packed */
  size_t run_len, run_cap;
  uint32_t *run_off; /* entry offsets in run */
  size_t run_n, run_ncap;
  size_t run_first;    /* entries before it were written (emit_front) */
  uint64_t run_bytes;  /* entries + slots */
  uint32_t run_leaves; /* old leaves merged into it */
  int64_t dentries;
  key_block *keys;
  page_ent *ents; /* scratch for laying out one page */
  size_t ents_cap;
  uint8_t *scratch; /* one entry being built / one branch page's entries */
  uint64_t spill[SPILL_BATCH]; /* leaves built, not yet written */
  size_t nspill;
} fold;

/* ---- overlay side ------------------------------------------------------ */

#define PREFETCH_AHEAD 8

/* The nodes lie in memory in the order they were made, so the walk in key
 * order misses the cache at every node, at its version and at the value.
 * Their addresses are all known (the sorted array), so the prefetches run
 * ahead without waiting on each other: a node 2 x PREFETCH_AHEAD in front,
 * and the version and value of the one PREFETCH_AHEAD in front, whose
 * node has arrived by then. (Walking the list itself, each step waited for
 * the last: a tenth of a lazy commit's time went there, W7.) */
static void prefetch_at(const fold *f, size_t k) {
  if (k + PREFETCH_AHEAD < f->nnodes) {
    const uint8_t *x = (const uint8_t *)f->nodes[k + PREFETCH_AHEAD];
    __builtin_prefetch(x);
    __builtin_prefetch(x + 64);
  }
  if (k < f->nnodes) {
    const uint8_t *v = (const uint8_t *)atomic_load_explicit(
        &f->nodes[k]->newest, memory_order_relaxed);
    if (v) { /* the value follows its version in the arena */
      __builtin_prefetch(v);
      __builtin_prefetch(v + 64);
      __builtin_prefetch(v + 128);
    }
  }
}

static void prefetch_step(fold *f) {
  prefetch_at(f, f->ahead++ + PREFETCH_AHEAD);
}

static void prefetch_start(fold *f, size_t i) {
  for (size_t k = i; k < i + PREFETCH_AHEAD && k < f->nnodes; k++)
    __builtin_prefetch(f->nodes[k]);
  for (size_t k = i; k < i + PREFETCH_AHEAD; k++)
    prefetch_at(f, k);
  f->ahead = i;
}

/* Step to the first node from nodes[i] on of this cf whose newest visible
 * version changes something (aborted and invisible versions do not). */
static void ov_step(fold *f, size_t i) {
  for (; i < f->nnodes && f->nodes[i]->cf == f->t->id; i++) {
    ov_node *n = f->nodes[i];
    prefetch_step(f);
    const ov_version *v = ov_visible(n, f->snap);
    if (!v)
      continue;
    if (v->tomb && atomic_load_explicit(&n->in_base, memory_order_relaxed) == 0)
      continue; /* a delete of a key the tree does not hold */
    f->i = i;
    f->n = n;
    f->v = v;
    return;
  }
  f->i = i;
  f->n = NULL;
  f->v = NULL;
}

/* Does the overlay hold a change below hi (NULL: +infinity)? */
static int ov_below(const fold *f, const kid *hi) {
  return f->n && (!hi || key_cmp(f->n->key, f->n->klen, hi->key, hi->klen) < 0);
}

/* ---- small containers -------------------------------------------------- */

static int nomem(void) {
  return cairn__seterr(CAIRN_NOMEM, "out of memory folding the overlay");
}

/* v (capacity *cap elements of size elem) with room for need: v itself,
 * a larger copy (*cap updated), or NULL without memory (v intact). */
static void *grow(void *v, size_t *cap, size_t need, size_t elem) {
  if (need <= *cap)
    return v;
  size_t c = *cap ? *cap : 64;
  while (c < need)
    c *= 2;
  void *n = realloc(v, c * elem);
  if (n)
    *cap = c;
  return n;
}

static int kids_push(fold *f, kids *k, const uint8_t *key, size_t klen,
                     uint64_t pg) {
  kid *v = grow(k->v, &k->cap, k->len + 1, sizeof *v);
  if (!v)
    return nomem();
  k->v = v;
  key_block *b = f->keys;
  if (!b || b->used + klen > KEY_BLOCK) {
    b = malloc(sizeof *b + KEY_BLOCK);
    if (!b)
      return nomem();
    b->next = f->keys;
    b->used = 0;
    f->keys = b;
  }
  uint8_t *dst = b->bytes + b->used;
  if (klen)
    memcpy(dst, key, klen);
  b->used += klen;
  k->v[k->len++] = (kid){dst, (uint16_t)klen, pg};
  return CAIRN_OK;
}

static int reserve_ents(fold *f, size_t n) {
  page_ent *e = grow(f->ents, &f->ents_cap, n, sizeof *e);
  if (!e)
    return nomem();
  f->ents = e;
  return CAIRN_OK;
}

/* ---- laying out pages -------------------------------------------------- */

/* Split n entries (sizes without slots) into the fewest pages that hold
 * them, as even as possible: ends[i] is one past the last entry of page i.
 * Returns the page count. */
static size_t plan_pages(const page_ent *es, size_t n, uint32_t usable,
                         size_t *ends) {
  uint64_t total = 0;
  for (size_t i = 0; i < n; i++)
    total += es[i].size + 2;
  size_t k = (size_t)((total + usable - 1) / usable);
  if (k == 0)
    k = 1;
  for (;; k++) {
    size_t i = 0, pages = 0;
    uint64_t rem = total;
    while (i < n && pages < k) {
      uint64_t target = (rem + (k - pages) - 1) / (k - pages), cum = 0;
      while (i < n && cum < target && cum + es[i].size + 2 <= usable)
        cum += es[i++].size + 2;
      rem -= cum;
      ends[pages++] = i;
    }
    if (i == n)
      return pages;
  }
}

/* Leaves are written as soon as a batch is complete (txn_spill): the fold
 * of a large overlay would otherwise hold the whole new tree in memory. */
static int spill(fold *f) {
  int rc = f->nspill ? txn_spill(f->txn, f->spill, f->nspill) : CAIRN_OK;
  f->nspill = 0;
  return rc;
}

static int new_page(fold *f, uint16_t type, const page_ent *es, size_t n,
                    uint64_t *pg) {
  uint8_t *buf;
  int rc = txn_alloc_page_to_build(f->txn, &buf, pg);
  if (rc)
    return rc;
  btree_node_build(buf, f->psize, type, *pg, es, (uint32_t)n);
  if (type != PAGE_LEAF)
    return CAIRN_OK; /* branches are few, and the root is read again */
  f->spill[f->nspill++] = *pg;
  return f->nspill == SPILL_BATCH ? spill(f) : CAIRN_OK;
}

/* Write the rest of the run as packed, balanced leaves. */
static int flush_run(fold *f) {
  kids *out = f->out;
  size_t n = f->run_n - f->run_first;
  if (!n)
    return CAIRN_OK;
  int rc = reserve_ents(f, 2 * n + 1);
  if (rc)
    return rc;
  page_ent *es = f->ents;
  size_t *ends = (size_t *)malloc(n * sizeof *ends);
  if (!ends)
    return nomem();
  for (size_t i = 0; i < n; i++) {
    const uint8_t *e = f->run + f->run_off[f->run_first + i];
    es[i] = (page_ent){e, leaf_entry_size(e)};
  }
  size_t pages = plan_pages(es, n, f->usable, ends), start = 0;
  for (size_t p = 0; p < pages && !rc; p++) {
    uint64_t pg;
    rc = new_page(f, PAGE_LEAF, es + start, ends[p] - start, &pg);
    if (!rc)
      rc = kids_push(f, out, leaf_key(es[start].ptr), leaf_klen(es[start].ptr),
                     pg);
    start = ends[p];
  }
  free(ends);
  f->run_n = 0;
  f->run_first = 0;
  f->run_len = 0;
  f->run_bytes = 0;
  f->run_leaves = 0;
  return rc;
}

/* Write the run's first page, packed full, and drop its entries: a run
 * longer than a few pages (appends, dense folds) streams out this way, so
 * it never holds more than those few pages. */
static int emit_front(fold *f) {
  size_t first = f->run_first, n = 0;
  uint64_t cum = 0;
  while (first + n < f->run_n) {
    uint32_t sz = leaf_entry_size(f->run + f->run_off[first + n]);
    if (cum + sz + 2 > f->usable)
      break;
    cum += sz + 2;
    n++;
  }
  int rc = reserve_ents(f, n);
  if (rc)
    return rc;
  for (size_t i = 0; i < n; i++) {
    const uint8_t *e = f->run + f->run_off[first + i];
    f->ents[i] = (page_ent){e, leaf_entry_size(e)};
  }
  uint64_t pg;
  rc = new_page(f, PAGE_LEAF, f->ents, n, &pg);
  if (!rc)
    rc = kids_push(f, f->out, leaf_key(f->ents[0].ptr),
                   leaf_klen(f->ents[0].ptr), pg);
  if (rc)
    return rc;
  f->run_first = first + n;
  f->run_bytes -= cum;
  /* Move the rest to the front only once eight pages went out: moving it
   * after every page copied each entry three more times. */
  size_t gone = f->run_first < f->run_n ? f->run_off[f->run_first] : f->run_len;
  if (gone >= 8 * (size_t)f->usable) {
    memmove(f->run, f->run + gone, f->run_len - gone);
    for (size_t i = f->run_first; i < f->run_n; i++)
      f->run_off[i - f->run_first] = f->run_off[i] - (uint32_t)gone;
    f->run_n -= f->run_first;
    f->run_first = 0;
    f->run_len -= gone;
  }
  return CAIRN_OK;
}

/* Append one leaf entry (copied) to the run. */
static int run_add(fold *f, const uint8_t *e, uint32_t size) {
  uint8_t *r = grow(f->run, &f->run_cap, f->run_len + size, 1);
  if (r)
    f->run = r;
  uint32_t *o =
      r ? grow(f->run_off, &f->run_ncap, f->run_n + 1, sizeof *o) : NULL;
  if (!o)
    return nomem();
  f->run_off = o;
  memcpy(f->run + f->run_len, e, size);
  f->run_off[f->run_n++] = (uint32_t)f->run_len;
  f->run_len += size;
  f->run_bytes += size + 2;
  return f->run_bytes > 4 * (uint64_t)f->usable ? emit_front(f) : CAIRN_OK;
}

/* The overlay's current version as a run entry (a put) or nothing (a
 * delete); then step on. existed: the key was in the tree. */
static int run_add_overlay(fold *f, int existed) {
  int rc = CAIRN_OK;
  if (!f->v->tomb) {
    uint32_t size;
    rc = btree_make_entry(f->txn, f->n->key, f->n->klen, f->v->val, f->v->vlen,
                          f->scratch, &size);
    if (!rc)
      rc = run_add(f, f->scratch, size);
    f->dentries += !existed;
  } else {
    f->dentries -= existed;
  }
  ov_step(f, f->i + 1);
  return rc;
}

/* Merge leaf p (range below hi) with the overlay's changes into the run. */
static int merge_leaf(fold *f, const uint8_t *p, const kid *hi) {
  uint32_t n = pg_count(p), i = 0;
  int rc = CAIRN_OK;
  while (!rc && (i < n || ov_below(f, hi))) {
    const uint8_t *e = i < n ? leaf_entry(p, i) : NULL;
    int c = !ov_below(f, hi) ? -1
            : !e             ? 1
                 : key_cmp(leaf_key(e), leaf_klen(e), f->n->key, f->n->klen);
    if (c < 0) {
      rc = run_add(f, e, leaf_entry_size(e));
      i++;
    } else if (c == 0) {
      rc = btree_free_value(f->txn, e);
      i++;
      if (!rc)
        rc = run_add_overlay(f, 1);
    } else {
      rc = run_add_overlay(f, 0);
    }
  }
  return rc;
}

/* ---- the walk ---------------------------------------------------------- */

/* Lay out a level's rebuilt pages as branch pages and add those to out. */
static int pack_branches(fold *f, const kids *in, kids *out) {
  if (!in->len)
    return CAIRN_OK;
  int rc = reserve_ents(f, 2 * in->len + 1);
  if (rc)
    return rc;
  page_ent *es = f->ents;
  for (size_t i = 0; i < in->len; i++)
    es[i] = (page_ent){NULL, BRANCH_ENTRY_HDR + in->v[i].klen};
  size_t *ends = (size_t *)malloc(in->len * sizeof *ends);
  if (!ends)
    return nomem();
  size_t pages = plan_pages(es, in->len, f->usable, ends), start = 0;
  for (size_t p = 0; p < pages && !rc; p++) {
    uint8_t *b = f->scratch;
    for (size_t i = start; i < ends[p]; i++) {
      /* a page's first child has no key: its range starts at the
       * separator its parent holds */
      uint16_t klen = i == start ? 0 : in->v[i].klen;
      st64(b, in->v[i].pg);
      st16(b + 8, klen);
      memcpy(b + BRANCH_ENTRY_HDR, in->v[i].key, klen);
      es[i] = (page_ent){b, BRANCH_ENTRY_HDR + klen};
      b += BRANCH_ENTRY_HDR + klen;
    }
    uint64_t pg;
    rc = new_page(f, PAGE_BRANCH, es + start, ends[p] - start, &pg);
    if (!rc)
      rc = kids_push(f, out, in->v[start].key, in->v[start].klen, pg);
    start = ends[p];
  }
  free(ends);
  return rc;
}

static int walk(fold *f, uint32_t level, const kid *ks, size_t nk,
                const kid *hi, kids *out);

/* The children of branch page k (at level), their range ending at hi. */
static int walk_branch(fold *f, uint32_t level, const kid *k, const kid *hi,
                       kids *out) {
  const uint8_t *p;
  int rc = txn_page(f->txn, k->pg, TYPE_BIT(PAGE_BRANCH), &p);
  if (rc)
    return rc;
  uint32_t n = pg_count(p);
  if (n == 0)
    return cairn__seterr(CAIRN_CORRUPT, "page %llu: empty branch page",
                         (unsigned long long)k->pg);
  kid *ks = malloc(n * sizeof *ks);
  kids sub = {0};
  if (!ks)
    return nomem();
  for (uint32_t i = 0; i < n; i++) {
    const uint8_t *e = branch_entry(p, i);
    ks[i] = i ? (kid){branch_key(e), (uint16_t)branch_klen(e), branch_child(e)}
              : (kid){k->key, k->klen, branch_child(e)};
  }
  rc = walk(f, level + 1, ks, n, hi, &sub);
  free(ks);
  if (!rc)
    rc = txn_free(f->txn, k->pg, 1);
  if (!rc)
    rc = pack_branches(f, &sub, out);
  free(sub.v);
  return rc;
}

/* Pages ks[0..nk) at level (their ranges ending at hi): keep those the
 * overlay does not touch, rebuild the rest; add the result to out. */
static int walk(fold *f, uint32_t level, const kid *ks, size_t nk,
                const kid *hi, kids *out) {
  int leaves = level + 1 == f->depth, rc = CAIRN_OK;
  if (leaves)
    f->out = out;
  for (size_t i = 0; i < nk && !rc; i++) {
    const kid *end = i + 1 < nk ? &ks[i + 1] : hi;
    int touched = ov_below(f, end);
    if (!leaves) {
      rc = touched ? walk_branch(f, level, &ks[i], end, out)
                   : kids_push(f, out, ks[i].key, ks[i].klen, ks[i].pg);
      continue;
    }
    /* An untouched leaf joins a run that would end less than half full,
     * and a lone one between two changed leaves joins their run (one more
     * page written beats a half-empty page left in the tree). */
    const kid *next_end = i + 2 < nk ? &ks[i + 2] : hi;
    int lone = f->run_leaves >= 2 && i + 1 < nk && ov_below(f, next_end);
    if (!touched && (f->run_n == f->run_first ||
                     (f->run_bytes >= f->usable / 2 && !lone))) {
      rc = flush_run(f);
      if (!rc)
        rc = kids_push(f, out, ks[i].key, ks[i].klen, ks[i].pg);
      continue;
    }
    const uint8_t *p;
    rc = txn_page(f->txn, ks[i].pg, TYPE_BIT(PAGE_LEAF), &p);
    if (!rc)
      rc = merge_leaf(f, p, end);
    if (!rc)
      rc = txn_free(f->txn, ks[i].pg, 1);
    f->run_leaves++;
  }
  if (!rc && leaves)
    rc = flush_run(f);
  return rc;
}

/* ---- one column family ------------------------------------------------- */

static int fold_cf(fold *f) {
  cf_state *t = f->t;
  kids level = {0}, up = {0};
  int rc = CAIRN_OK;
  uint32_t depth;
  if (!t->root) {
    f->depth = 1;
    f->out = &level;
    while (!rc && f->n)
      rc = run_add_overlay(f, 0);
    if (!rc)
      rc = flush_run(f);
    depth = 1;
  } else {
    f->depth = t->depth;
    kid root = {(const uint8_t *)"", 0, t->root};
    rc = walk(f, 0, &root, 1, NULL, &level);
    depth = t->depth;
  }
  if (!rc)
    rc = spill(f);
  /* Levels above the old root while a level has more than one page. */
  while (!rc && level.len > 1) {
    if (depth >= MAX_DEPTH) {
      rc = cairn__seterr(CAIRN_TOOBIG, "tree deeper than %d levels", MAX_DEPTH);
      break;
    }
    up.len = 0;
    rc = pack_branches(f, &level, &up);
    kids tmp = level;
    level = up;
    up = tmp;
    depth++;
  }
  uint64_t root = !rc && level.len ? level.v[0].pg : 0;
  if (!root)
    depth = 0;
  /* A root left with one child gives way to it. */
  while (!rc && depth > 1) {
    const uint8_t *p;
    rc = txn_page(f->txn, root, TYPE_BIT(PAGE_BRANCH), &p);
    if (rc || pg_count(p) != 1)
      break;
    uint64_t child = branch_child(branch_entry(p, 0));
    rc = txn_free(f->txn, root, 1);
    root = child;
    depth--;
  }
  free(level.v);
  free(up.v);
  if (rc)
    return rc;
  if (f->dentries < 0 && (uint64_t)-f->dentries > t->entries)
    return cairn__seterr(CAIRN_CORRUPT,
                         "column family '%s': the fold deletes more entries "
                         "than the tree holds",
                         t->name);
  t->root = root;
  t->depth = depth;
  t->entries += (uint64_t)f->dentries;
  t->dirty = 1;
  f->txn->gen++;
  return CAIRN_OK;
}

int btree_fold(cairn_txn *txn, cf_state *t, ov_node **nodes, size_t nnodes,
               size_t *ip) {
  fold f = {0};
  f.txn = txn;
  f.t = t;
  f.snap = txn->snap.txnid;
  f.psize = txn->snap.page_size;
  f.usable = f.psize - PAGE_HDR;
  f.nodes = nodes;
  f.nnodes = nnodes;
  prefetch_start(&f, *ip);
  ov_step(&f, *ip);
  int rc = CAIRN_OK;
  if (f.n) {
    f.scratch = malloc(f.psize + LEAF_ENTRY_HDR + CAIRN_MAX_KEY_SIZE);
    rc = f.scratch ? fold_cf(&f) : nomem();
  }
  /* the rest of this cf's nodes change nothing: find the next cf */
  size_t i = f.i;
  while (i < nnodes && nodes[i]->cf == t->id)
    i++;
  *ip = i;
  free(f.scratch);
  free(f.run);
  free(f.run_off);
  free(f.ents);
  while (f.keys) {
    key_block *b = f.keys;
    f.keys = b->next;
    free(b);
  }
  if (rc)
    txn_fail(txn, rc);
  return rc;
}
