/*
 * overlay.c — the overlay's skip list and arena (see overlay.h).
 *
 * A node is published by storing it into its predecessors' links bottom up
 * with release order, after its key and first version are written, so a
 * reader that reaches it (acquire) sees it whole. Versions are prepended
 * the same way. Nothing is freed before the last reference goes: the arena
 * is released as one.
 */
#include "overlay.h"

#include <stdlib.h>
#include <string.h>

struct ov_block {
  ov_block *next;
  size_t size;
  uint8_t data[];
};

/* A slot keeps the high bits of its node's hash beside the pointer, so a
 * probe that meets another key's slot rejects it without loading that
 * node (a cache miss per rejected slot in a large overlay). */
typedef struct ov_slot {
  ov_node *_Atomic node;
  _Atomic uint32_t tag; /* written before node is published */
} ov_slot;

struct ov_index {
  struct ov_index *older;
  size_t cap; /* a power of two */
  ov_slot slot[];
};

static uint32_t hash_tag(uint64_t h) { return (uint32_t)(h >> 32); }

#define OV_BLOCK (256u << 10)

static void *arena_alloc(overlay *ov, ov_arena *a, size_t n) {
  n = (n + 7) & ~(size_t)7;
  if (n > a->left) {
    size_t size = n > OV_BLOCK / 4 ? n : OV_BLOCK;
    ov_block *b = malloc(sizeof *b + size);
    if (!b)
      return NULL;
    b->size = size;
    ov->bytes += sizeof *b + size;
    if (size != OV_BLOCK) { /* a big value: its own block, keep the rest */
      b->next = a->blocks ? a->blocks->next : NULL;
      if (a->blocks)
        a->blocks->next = b;
      else
        a->blocks = b;
      return b->data;
    }
    b->next = a->blocks;
    a->blocks = b;
    a->cur = b->data;
    a->left = size;
  }
  void *p = a->cur;
  a->cur += n;
  a->left -= n;
  return p;
}

static void arena_free(ov_arena *a) {
  for (ov_block *b = a->blocks, *n; b; b = n) {
    n = b->next;
    free(b);
  }
}

overlay *overlay_new(void) {
  overlay *ov = calloc(1, sizeof *ov);
  if (!ov)
    return NULL;
  ov->rng = 0x2545f4914f6cdd1dull;
  ov->head = arena_alloc(ov, &ov->nodes_arena,
                         sizeof(ov_node) + OV_MAX_HEIGHT * sizeof(ov_link));
  if (!ov->head) {
    free(ov);
    return NULL;
  }
  memset(ov->head, 0, sizeof(ov_node) + OV_MAX_HEIGHT * sizeof(ov_link));
  ov->head->height = OV_MAX_HEIGHT;
  atomic_store(&ov->height, 1);
  atomic_store(&ov->refs, 1);
  return ov;
}

void overlay_ref(overlay *ov) {
  atomic_fetch_add_explicit(&ov->refs, 1, memory_order_relaxed);
}

void overlay_unref(overlay *ov) {
  if (!ov || atomic_fetch_sub_explicit(&ov->refs, 1, memory_order_acq_rel) != 1)
    return;
  arena_free(&ov->nodes_arena);
  arena_free(&ov->data_arena);
  free(ov->pending);
  free(atomic_load_explicit(&ov->index, memory_order_relaxed));
  for (struct ov_index *x = ov->old_indexes, *o; x; x = o) {
    o = x->older;
    free(x);
  }
  free(ov);
}

static uint64_t key_prefix(const uint8_t *key, size_t klen) {
  uint64_t p = 0;
  for (size_t i = 0; i < 8; i++)
    p = p << 8 | (i < klen ? key[i] : 0u);
  return p;
}

/* (cf, key) order: column family first, then bytes, shorter first. The
 * prefix decides most compares without touching the key bytes. */
static int node_cmp(const ov_node *n, uint32_t cf, uint64_t prefix,
                    const uint8_t *key, size_t klen) {
  if (n->cf != cf)
    return n->cf < cf ? -1 : 1;
  if (n->prefix != prefix)
    return n->prefix < prefix ? -1 : 1;
  size_t m = n->klen < klen ? n->klen : klen;
  int c = m ? memcmp(n->key, key, m) : 0;
  if (c)
    return c;
  return n->klen < klen ? -1 : n->klen > klen;
}

static ov_node *link(ov_node *n, int level) {
  return atomic_load_explicit(&n->next[level].node, memory_order_acquire);
}

/* The last node < (cf, key): readers' search (the writer's, which also
 * records each level's predecessor, is writer_find_lt). */
static ov_node *find_lt(overlay *ov, uint32_t cf, const uint8_t *key,
                        size_t klen) {
  ov_node *x = ov->head;
  uint64_t prefix = key_prefix(key, klen);
  for (int level = atomic_load_explicit(&ov->height, memory_order_relaxed) - 1;
       level >= 0; level--) {
    ov_node *n;
    while ((n = link(x, level)) && node_cmp(n, cf, prefix, key, klen) < 0)
      x = n;
  }
  return x;
}

/* ---- the exact-match index ---- */

static uint64_t key_hash(uint32_t cf, const uint8_t *key, size_t klen) {
  uint64_t h = 0xcbf29ce484222325ull ^ cf;
  size_t i = 0;
  for (; i + 8 <= klen; i += 8) {
    uint64_t w;
    memcpy(&w, key + i, 8);
    h = (h ^ w) * 0x100000001b3ull;
    h ^= h >> 29;
  }
  for (; i < klen; i++)
    h = (h ^ key[i]) * 0x100000001b3ull;
  h ^= h >> 32;
  h *= 0xd6e8feb86659fd93ull;
  return h ^ (h >> 32);
}

static struct ov_index *index_new(size_t cap) {
  struct ov_index *x = calloc(1, sizeof *x + cap * sizeof(ov_slot));
  if (x)
    x->cap = cap;
  return x;
}

static void index_put(struct ov_index *x, ov_node *n) {
  for (size_t i = n->hash & (x->cap - 1);; i = (i + 1) & (x->cap - 1))
    if (!atomic_load_explicit(&x->slot[i].node, memory_order_relaxed)) {
      atomic_store_explicit(&x->slot[i].tag, hash_tag(n->hash),
                            memory_order_relaxed);
      atomic_store_explicit(&x->slot[i].node, n, memory_order_release);
      return;
    }
}

/* Writer: index a new node; without memory it is simply not indexed and
 * lookups fall back to the skip list (the overlay stays correct). */
static void index_add(overlay *ov, ov_node *n) {
  struct ov_index *x = atomic_load_explicit(&ov->index, memory_order_relaxed);
  if (x && ov->indexed + 1 <= x->cap / 2) {
    index_put(x, n);
    ov->indexed++;
    return;
  }
  size_t cap = x ? 2 * x->cap : 1024;
  struct ov_index *y = index_new(cap);
  if (!y) { /* incomplete from now on: lookups use the skip list */
    atomic_store_explicit(&ov->index_partial, 1, memory_order_relaxed);
    return;
  }
  ov->bytes += sizeof *y + cap * sizeof(ov_slot);
  for (size_t i = 0; x && i < x->cap; i++) {
    ov_node *m = atomic_load_explicit(&x->slot[i].node, memory_order_relaxed);
    if (m)
      index_put(y, m);
  }
  index_put(y, n);
  ov->indexed++;
  if (x) {
    x->older = ov->old_indexes;
    ov->old_indexes = x;
  }
  atomic_store_explicit(&ov->index, y, memory_order_release);
}

/* The writer's find_lt: the links' copies of cf and prefix decide, the
 * node is loaded only when both are equal. */
static ov_node *writer_find_lt(overlay *ov, uint32_t cf, const uint8_t *key,
                               size_t klen, ov_node **prev) {
  ov_node *x = ov->head;
  uint64_t prefix = key_prefix(key, klen);
  for (int level = atomic_load_explicit(&ov->height, memory_order_relaxed) - 1;
       level >= 0; level--) {
    for (;;) {
      const ov_link *l = &x->next[level];
      ov_node *n = atomic_load_explicit(&l->node, memory_order_relaxed);
      if (!n)
        break;
      int c = l->cf != cf           ? (l->cf < cf ? -1 : 1)
              : l->prefix != prefix ? (l->prefix < prefix ? -1 : 1)
                                    : node_cmp(n, cf, prefix, key, klen);
      if (c >= 0)
        break;
      x = n;
    }
    prev[level] = x;
  }
  return x;
}

ov_node *overlay_find(overlay *ov, uint32_t cf, const uint8_t *key,
                      size_t klen) {
  struct ov_index *x = atomic_load_explicit(&ov->index, memory_order_acquire);
  /* (an index that could not be allocated at all is partial too) */
  if (!atomic_load_explicit(&ov->index_partial, memory_order_relaxed)) {
    if (!x)
      return NULL; /* nothing was ever added */
    uint64_t h = key_hash(cf, key, klen), p = key_prefix(key, klen);
    uint32_t tag = hash_tag(h);
    for (size_t i = h & (x->cap - 1);; i = (i + 1) & (x->cap - 1)) {
      ov_node *n = atomic_load_explicit(&x->slot[i].node, memory_order_acquire);
      if (!n)
        return NULL;
      if (atomic_load_explicit(&x->slot[i].tag, memory_order_relaxed) == tag &&
          n->hash == h && node_cmp(n, cf, p, key, klen) == 0)
        return n;
    }
  }
  ov_node *n = link(find_lt(ov, cf, key, klen), 0);
  return n && node_cmp(n, cf, key_prefix(key, klen), key, klen) == 0 ? n : NULL;
}

static int random_height(overlay *ov) {
  int h = 1;
  while (h < OV_MAX_HEIGHT) {
    ov->rng ^= ov->rng << 13;
    ov->rng ^= ov->rng >> 7;
    ov->rng ^= ov->rng << 17;
    if (ov->rng & 3) /* one in four goes up a level */
      break;
    h++;
  }
  return h;
}

static ov_node *node_new(overlay *ov, uint32_t cf, const uint8_t *key,
                         size_t klen) {
  int h = random_height(ov);
  ov_node *n = arena_alloc(ov, &ov->nodes_arena,
                           sizeof *n + (size_t)h * sizeof(ov_link) + klen);
  if (!n)
    return NULL;
  uint8_t *k = (uint8_t *)n + sizeof *n + (size_t)h * sizeof(ov_link);
  if (klen)
    memcpy(k, key, klen);
  n->prefix = key_prefix(key, klen);
  n->hash = key_hash(cf, key, klen);
  n->cf = cf;
  n->klen = (uint16_t)klen;
  n->height = (uint8_t)h;
  atomic_store_explicit(&n->in_base, OV_BASE_UNKNOWN, memory_order_relaxed);
  n->key = k;
  atomic_store_explicit(&n->newest, NULL, memory_order_relaxed);
  ov->nodes++;
  return n;
}

/* Link n after prev[i] at each of its levels; prev[i] becomes n there (the
 * predecessor of anything after n). */
static void link_node(overlay *ov, ov_node *n, ov_node **prev) {
  int h = n->height;
  int height = atomic_load_explicit(&ov->height, memory_order_relaxed);
  for (int i = height; i < h; i++)
    prev[i] = ov->head;
  if (h > height) /* readers seeing the new height find head links NULL */
    atomic_store_explicit(&ov->height, h, memory_order_relaxed);
  for (int i = 0; i < h; i++) {
    ov_link *pl = &prev[i]->next[i];
    n->next[i].prefix = pl->prefix;
    n->next[i].cf = pl->cf;
    atomic_store_explicit(&n->next[i].node, link(prev[i], i),
                          memory_order_relaxed);
    pl->prefix = n->prefix;
    pl->cf = n->cf;
    atomic_store_explicit(&pl->node, n, memory_order_release);
    prev[i] = n;
  }
}

ov_node *overlay_node(overlay *ov, uint32_t cf, const uint8_t *key,
                      size_t klen) {
  ov_node *n = overlay_find(ov, cf, key, klen);
  if (n)
    return n;
  ov_node *prev[OV_MAX_HEIGHT];
  n = link(writer_find_lt(ov, cf, key, klen, prev), 0);
  if (n && node_cmp(n, cf, key_prefix(key, klen), key, klen) == 0)
    return n; /* (only when the index is incomplete) */
  if (!(n = node_new(ov, cf, key, klen)))
    return NULL;
  link_node(ov, n, prev);
  index_add(ov, n); /* after the node is whole and linked */
  if (atomic_load_explicit(&ov->index_partial, memory_order_relaxed))
    overlay_link_pending(ov); /* lookups use the list from now on */
  return n;
}

ov_node *overlay_node_unlinked(overlay *ov, uint32_t cf, const uint8_t *key,
                               size_t klen) {
  ov_node *n = overlay_find(ov, cf, key, klen);
  if (n)
    return n;
  if (atomic_load_explicit(&ov->index_partial, memory_order_relaxed))
    return overlay_node(ov, cf, key, klen); /* a miss proves nothing */
  if (ov->npending == ov->cappending) {
    size_t cap = ov->cappending ? 2 * ov->cappending : 1024;
    ov_node **p = realloc(ov->pending, cap * sizeof *p);
    if (!p)
      return overlay_node(ov, cf, key, klen);
    ov->bytes += (cap - ov->cappending) * sizeof *p;
    ov->pending = p;
    ov->cappending = cap;
  }
  if (!(n = node_new(ov, cf, key, klen)))
    return NULL;
  index_add(ov, n);
  ov->pending[ov->npending++] = n;
  if (atomic_load_explicit(&ov->index_partial, memory_order_relaxed))
    overlay_link_pending(ov); /* lookups use the list from now on */
  return n;
}

static int pending_cmp(const void *a, const void *b) {
  const ov_node *x = *(ov_node *const *)a, *y = *(ov_node *const *)b;
  return node_cmp(x, y->cf, y->prefix, y->key, y->klen);
}

/* Is the node after x at level l before n? (The link's copies decide
 * unless cf and prefix are equal.) */
static int next_before(const ov_node *x, int l, const ov_node *n) {
  const ov_link *lk = &x->next[l];
  ov_node *m = atomic_load_explicit(&lk->node, memory_order_relaxed);
  if (!m)
    return 0;
  if (lk->cf != n->cf)
    return lk->cf < n->cf;
  if (lk->prefix != n->prefix)
    return lk->prefix < n->prefix;
  return node_cmp(m, n->cf, n->prefix, n->key, n->klen) < 0;
}

void overlay_link_pending(overlay *ov) {
  if (!ov || !ov->npending)
    return;
  /* In key order, each search starts from the previous node's
   * predecessors (a finger): it climbs only as high as the gap to the
   * previous key needs, instead of descending from the head through every
   * level's cache misses. */
  qsort(ov->pending, ov->npending, sizeof *ov->pending, pending_cmp);
  ov_node *prev[OV_MAX_HEIGHT];
  ov_node *first = ov->pending[0];
  writer_find_lt(ov, first->cf, first->key, first->klen, prev);
  for (size_t i = 0; i < ov->npending; i++) {
    ov_node *n = ov->pending[i];
    int height = atomic_load_explicit(&ov->height, memory_order_relaxed);
    int top = -1; /* the highest level whose predecessor moved */
    while (top + 1 < height && next_before(prev[top + 1], top + 1, n))
      top++;
    ov_node *x = top >= 0 ? prev[top] : NULL;
    for (int l = top; l >= 0; l--) {
      while (next_before(x, l, n))
        x = link(x, l);
      prev[l] = x;
    }
    link_node(ov, n, prev);
  }
  ov->npending = 0;
}

ov_version *overlay_add(overlay *ov, ov_node *node, uint64_t txnid,
                        const uint8_t *val, size_t vlen, int tomb) {
  ov_version *v = arena_alloc(ov, &ov->data_arena, sizeof *v);
  uint8_t *copy = vlen ? arena_alloc(ov, &ov->data_arena, vlen) : NULL;
  if (!v || (vlen && !copy))
    return NULL;
  if (vlen)
    memcpy(copy, val, vlen);
  atomic_store_explicit(&v->txnid, txnid, memory_order_relaxed);
  v->older = atomic_load_explicit(&node->newest, memory_order_relaxed);
  v->val = copy;
  v->vlen = (uint32_t)vlen;
  v->tomb = (uint8_t) !!tomb;
  atomic_store_explicit(&node->newest, v, memory_order_release);
  return v;
}

ov_node *overlay_seek(overlay *ov, uint32_t cf, const uint8_t *key,
                      size_t klen) {
  ov_node *n = link(find_lt(ov, cf, key, klen), 0);
  return n && n->cf == cf ? n : NULL;
}

ov_node *overlay_seek_lt(overlay *ov, uint32_t cf, const uint8_t *key,
                         size_t klen) {
  ov_node *x;
  if (key) {
    x = find_lt(ov, cf, key, klen);
  } else if (cf == UINT32_MAX) { /* the last node of all */
    x = ov->head;
    for (int level =
             atomic_load_explicit(&ov->height, memory_order_relaxed) - 1;
         level >= 0; level--) {
      ov_node *n;
      while ((n = link(x, level)))
        x = n;
    }
  } else {
    x = find_lt(ov, cf + 1, NULL, 0);
  }
  return x != ov->head && x->cf == cf ? x : NULL;
}

ov_node *overlay_next(const ov_node *n) {
  ov_node *x = link((ov_node *)n, 0);
  return x && x->cf == n->cf ? x : NULL;
}

ov_node *overlay_first_any(overlay *ov) { return link(ov->head, 0); }

ov_node *overlay_next_any(const ov_node *n) { return link((ov_node *)n, 0); }
