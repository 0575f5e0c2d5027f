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

#if defined(__linux__) && !defined(__EMSCRIPTEN__)
#include <sys/mman.h>
#endif

struct ov_block {
  ov_block *next;
  size_t size;
  size_t used;   /* bytes of data handed out (overlay_sorted scans them) */
  size_t mapped; /* bytes of a big_alloc map, 0 when malloc'd */
  uint8_t data[];
};

/* A slot is one word: the node's address in the low 48 bits and the top
 * 16 bits of its hash above them, so a probe that meets another key's slot
 * rejects it without loading that node (a cache miss per rejected slot in
 * a large overlay), and a slot costs 8 bytes (with 16, the index and its
 * outgrown tables took a fifth of a full overlay). User addresses fit in 48
 * bits on every host cairn runs on; a node that does not (never seen) is left
 * out and the index marked partial, so lookups use the skip list. */
typedef struct ov_slot {
  _Atomic uint64_t word; /* 0: empty */
} ov_slot;

#define SLOT_ADDR_BITS 48
#define SLOT_ADDR_MASK ((UINT64_C(1) << SLOT_ADDR_BITS) - 1)

struct ov_index {
  struct ov_index *older;
  size_t mapped; /* bytes of a big_alloc map, 0 when calloc'd */
  size_t cap;    /* a power of two */
  ov_slot slot[];
};

static uint64_t hash_tag(uint64_t h) { return h >> SLOT_ADDR_BITS; }
static ov_node *slot_node(uint64_t word) {
  return (ov_node *)(uintptr_t)(word & SLOT_ADDR_MASK);
}
static uint64_t slot_tag(uint64_t word) { return word >> SLOT_ADDR_BITS; }
static int slot_fits(const ov_node *n) {
  return ((uint64_t)(uintptr_t)n & ~SLOT_ADDR_MASK) == 0;
}

#if defined(__linux__) && !defined(__EMSCRIPTEN__) && defined(MADV_HUGEPAGE)
#define OV_HUGE 1 /* transparent huge pages can be asked for */
#else
#define OV_HUGE 0
#endif

/* An arena's blocks (header included) are 256 KiB; where huge pages can be
 * had they grow to 2 MiB, so a small overlay stays small. */
#define OV_BLOCK_MIN (256u << 10)
#define OV_BLOCK_MAX (2u << 20)
#define OV_BLOCK_GROWN (OV_HUGE ? OV_BLOCK_MAX : OV_BLOCK_MIN)

/* Fresh memory costs a page fault per 4 KiB at first touch: filling the
 * overlay spent a fifth of an append workload in faults (perf, W6). On
 * Linux, 2 MiB blocks and large indexes are mapped 2 MiB-aligned and
 * offered transparent huge pages, one fault per 2 MiB; they are unmapped
 * when the overlay goes (from malloc's heap they stayed resident after a
 * checkpoint freed them: +130 MiB RSS measured). *mapped is the size of the
 * map, 0 for plain malloc (other hosts, other sizes). */
static void *big_alloc(size_t size, size_t *mapped) {
  *mapped = 0;
#if OV_HUGE
  if (size % OV_BLOCK_MAX == 0) {
    size_t span = size + OV_BLOCK_MAX; /* room to align */
    uint8_t *m = mmap(NULL, span, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
      return NULL;
    uintptr_t a =
        ((uintptr_t)m + OV_BLOCK_MAX - 1) & ~(uintptr_t)(OV_BLOCK_MAX - 1);
    uint8_t *p = (uint8_t *)a;
    if (p > m)
      munmap(m, (size_t)(p - m));
    if (p + size < m + span)
      munmap(p + size, (size_t)(m + span - (p + size)));
    (void)madvise(p, size, MADV_HUGEPAGE); /* a hint; may be refused */
    *mapped = size;
    return p;
  }
#endif
  return malloc(size);
}

static void big_free(void *p, size_t mapped) {
#if OV_HUGE
  if (mapped) {
    munmap(p, mapped);
    return;
  }
#endif
  (void)mapped;
  free(p);
}

static void *arena_alloc(overlay *ov, ov_arena *a, size_t n) {
  n = (n + 7) & ~(size_t)7;
  if (n > a->left) {
    if (n > OV_BLOCK_MIN / 4) { /* a big value: its own block, keep the rest */
      ov_block *b = malloc(sizeof *b + n);
      if (!b)
        return NULL;
      b->size = n;
      b->used = n;
      b->mapped = 0;
      ov->bytes += sizeof *b + n;
      b->next = a->blocks ? a->blocks->next : NULL;
      if (a->blocks)
        a->blocks->next = b;
      else
        a->blocks = b;
      return b->data;
    }
    size_t size = a->next_size ? a->next_size : OV_BLOCK_MIN;
    size_t mapped;
    ov_block *b = big_alloc(size, &mapped);
    if (!b)
      return NULL;
    b->mapped = mapped;
    b->size = size - sizeof *b;
    b->used = 0;
    ov->bytes += size;
    a->next_size = size < OV_BLOCK_GROWN ? 2 * size : OV_BLOCK_GROWN;
    b->next = a->blocks;
    a->blocks = b;
    a->cur = b->data;
    a->left = b->size;
  }
  void *p = a->cur;
  a->cur += n;
  a->left -= n;
  a->blocks->used += n; /* the current block heads the list */
  return p;
}

static void arena_free(ov_arena *a) {
  for (ov_block *b = a->blocks, *n; b; b = n) {
    n = b->next;
    big_free(b, b->mapped);
  }
}

static struct ov_index *index_new(overlay *ov, size_t cap);
static void filter_new(overlay *ov, uint64_t expect_nodes);

overlay *overlay_new(uint64_t expect_nodes) {
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
  /* Sized for the nodes expected, the index never grows by copying, and
   * the tables it would have outgrown (as much memory again as the last
   * one, kept for readers that may be probing them) never exist. */
  size_t cap = 1024;
  while (cap / 2 < expect_nodes && cap < SIZE_MAX / 4 / sizeof(ov_slot))
    cap *= 2;
  if (expect_nodes) {
    struct ov_index *x = index_new(ov, cap);
    if (x) /* else the index starts small and grows */
      atomic_store_explicit(&ov->index, x, memory_order_relaxed);
    filter_new(ov, expect_nodes);
  }
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
  free(ov->filter);
  struct ov_index *ix = atomic_load_explicit(&ov->index, memory_order_relaxed);
  if (ix)
    big_free(ix, ix->mapped);
  for (struct ov_index *x = ov->old_indexes, *o; x; x = o) {
    o = x->older;
    big_free(x, x->mapped);
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

/* ---- the Bloom filter in front of the index ---- */

/* A key sets one bit in each word of one 64-byte line: a lookup reads one
 * cache line. At 8 to 16 bits a key (sized by the expected node count,
 * rounded up to a power of two) a miss is answered wrongly about 1% to
 * 0.05% of the time, and then only costs the index probe. */
#define FILTER_WORDS 8

static void filter_new(overlay *ov, uint64_t expect_nodes) {
  uint64_t lines = 1;
  while (lines * FILTER_WORDS * 8 < expect_nodes && lines < (UINT64_C(1) << 32))
    lines *= 2;
  size_t bytes = (size_t)lines * FILTER_WORDS * sizeof(uint64_t);
  void *f = aligned_alloc(64, bytes); /* a line is one cache line */
  if (!f)
    return; /* lookups probe the index */
  memset(f, 0, bytes);
  ov->filter = f;
  ov->filter_lines = lines;
  ov->bytes += bytes;
}

static _Atomic uint64_t *filter_line(const overlay *ov, uint64_t h) {
  return ov->filter + ((h >> 32) & (ov->filter_lines - 1)) * FILTER_WORDS;
}

/* The bit a key sets in word i of its line: six bits of a second hash. */
static uint64_t filter_bit(uint64_t h2, int i) {
  return UINT64_C(1) << ((h2 >> (6 * i)) & 63);
}

static void filter_add(overlay *ov, uint64_t h) {
  if (!ov->filter)
    return;
  _Atomic uint64_t *w = filter_line(ov, h);
  uint64_t h2 = h * 0x9e3779b97f4a7c15ull;
  for (int i = 0; i < FILTER_WORDS; i++) /* one writer: no read-modify-write */
    atomic_store_explicit(&w[i],
                          atomic_load_explicit(&w[i], memory_order_relaxed) |
                              filter_bit(h2, i),
                          memory_order_relaxed);
}

/* 0: the key is surely not in the overlay. */
static int filter_may_hold(const overlay *ov, uint64_t h) {
  if (!ov->filter)
    return 1;
  _Atomic uint64_t *w = filter_line(ov, h);
  uint64_t h2 = h * 0x9e3779b97f4a7c15ull;
  for (int i = 0; i < FILTER_WORDS; i++)
    if (!(atomic_load_explicit(&w[i], memory_order_relaxed) &
          filter_bit(h2, i)))
      return 0;
  return 1;
}

int overlay_may_hold(const overlay *ov, uint32_t cf, const uint8_t *key,
                     size_t klen) {
  return filter_may_hold(ov, key_hash(cf, key, klen));
}

/* A table of cap slots, counted in ov's memory. */
static struct ov_index *index_new(overlay *ov, size_t cap) {
  size_t bytes = sizeof(struct ov_index) + cap * sizeof(ov_slot);
  struct ov_index *x;
  size_t mapped = 0;
  if (OV_HUGE && bytes >= OV_BLOCK_MAX) { /* rounded: huge pages */
    bytes = (bytes + OV_BLOCK_MAX - 1) / OV_BLOCK_MAX * OV_BLOCK_MAX;
    if ((x = big_alloc(bytes, &mapped)) != NULL && !mapped)
      memset(x, 0, bytes); /* a fresh map is zero already */
  } else {
    x = calloc(1, bytes);
  }
  if (x) {
    x->mapped = mapped;
    x->cap = cap;
    ov->bytes += sizeof *x + cap * sizeof(ov_slot);
  }
  return x;
}

static void index_put(struct ov_index *x, ov_node *n) {
  for (size_t i = n->hash & (x->cap - 1);; i = (i + 1) & (x->cap - 1))
    if (!atomic_load_explicit(&x->slot[i].word, memory_order_relaxed)) {
      atomic_store_explicit(&x->slot[i].word,
                            (uint64_t)(uintptr_t)n | hash_tag(n->hash)
                                                         << SLOT_ADDR_BITS,
                            memory_order_release);
      return;
    }
}

/* Writer: index a new node; without memory it is simply not indexed and
 * lookups fall back to the skip list (the overlay stays correct). */
static void index_add(overlay *ov, ov_node *n) {
  struct ov_index *x = atomic_load_explicit(&ov->index, memory_order_relaxed);
  if (!slot_fits(n)) {
    atomic_store_explicit(&ov->index_partial, 1, memory_order_relaxed);
    return;
  }
  if (x && ov->indexed + 1 <= x->cap / 2) {
    index_put(x, n);
    ov->indexed++;
    return;
  }
  size_t cap = x ? 2 * x->cap : 1024;
  struct ov_index *y = index_new(ov, cap);
  if (!y) { /* incomplete from now on: lookups use the skip list */
    atomic_store_explicit(&ov->index_partial, 1, memory_order_relaxed);
    return;
  }
  for (size_t i = 0; x && i < x->cap; i++) {
    uint64_t w = atomic_load_explicit(&x->slot[i].word, memory_order_relaxed);
    if (w)
      index_put(y, slot_node(w));
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
    if (!filter_may_hold(ov, h))
      return NULL;
    uint64_t tag = hash_tag(h);
    for (size_t i = h & (x->cap - 1);; i = (i + 1) & (x->cap - 1)) {
      uint64_t w = atomic_load_explicit(&x->slot[i].word, memory_order_acquire);
      if (!w)
        return NULL;
      ov_node *n = slot_node(w);
      if (slot_tag(w) == tag && n->hash == h &&
          node_cmp(n, cf, p, key, klen) == 0)
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
  filter_add(ov, n->hash);
  n->cf = cf;
  n->klen = (uint16_t)klen;
  n->height = (uint8_t)h;
  atomic_store_explicit(&n->in_base, OV_BASE_UNKNOWN, memory_order_relaxed);
  n->key = k;
  atomic_store_explicit(&n->newest, NULL, memory_order_relaxed);
  ov->nodes++;
  if (cf < OV_GREATEST_CFS &&
      (!ov->greatest[cf] ||
       node_cmp(ov->greatest[cf], cf, n->prefix, k, klen) < 0))
    ov->greatest[cf] = n;
  return n;
}

/* Writer: is (cf, key) surely not in the overlay, known without a search? */
static int beyond_greatest(const overlay *ov, uint32_t cf, const uint8_t *key,
                           size_t klen) {
  if (cf >= OV_GREATEST_CFS)
    return 0;
  const ov_node *g = ov->greatest[cf];
  return !g || node_cmp(g, cf, key_prefix(key, klen), key, klen) < 0;
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
  if (!link(n, 0))
    ov->tail = n;
}

ov_node *overlay_node(overlay *ov, uint32_t cf, const uint8_t *key,
                      size_t klen) {
  ov_node *n = beyond_greatest(ov, cf, key, klen)
                   ? NULL
                   : overlay_find(ov, cf, key, klen);
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
  ov_node *n = beyond_greatest(ov, cf, key, klen)
                   ? NULL
                   : overlay_find(ov, cf, key, klen);
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

/* Searches run this many at a time, interleaved (see overlay_link_pending). */
#define LINK_GROUP 16

/* Find each node's predecessors at every level for a group of pending
 * nodes (sorted), all from the head. One step of a search loads one node,
 * a likely cache miss in a large list; the searches are independent, so
 * taking a step of each in turn, with the next node asked for ahead,
 * keeps several misses in flight instead of waiting for each in turn. */
static void group_find_lt(overlay *ov, ov_node *const *ns, size_t m,
                          ov_node *(*preds)[OV_MAX_HEIGHT]) {
  ov_node *x[LINK_GROUP];
  int level[LINK_GROUP];
  int height = atomic_load_explicit(&ov->height, memory_order_relaxed);
  for (size_t i = 0; i < m; i++) {
    x[i] = ov->head;
    level[i] = height - 1;
    for (int l = height; l < OV_MAX_HEIGHT; l++)
      preds[i][l] = ov->head;
  }
  size_t active = m;
  while (active) {
    for (size_t i = 0; i < m; i++) {
      int l = level[i];
      if (l < 0)
        continue;
      if (next_before(x[i], l, ns[i])) {
        x[i] = link(x[i], l);
        __builtin_prefetch(&x[i]->next[l]);
        continue;
      }
      preds[i][l] = x[i];
      if (--level[i] < 0)
        active--;
    }
  }
}

/* Dense batches (a bulk load, appends): each search starts from the
 * previous node's predecessors (a finger) and climbs only as high as the
 * gap to the previous key needs. */
static void link_with_finger(overlay *ov) {
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
}

/* Sparse batches (block commits into a large overlay): the gaps between
 * the new keys are wide, so the finger saves little; searches from the
 * head, run LINK_GROUP at a time interleaved, overlap their misses. */
static void link_in_groups(overlay *ov) {
  ov_node *preds[LINK_GROUP][OV_MAX_HEIGHT];
  for (size_t g = 0; g < ov->npending; g += LINK_GROUP) {
    size_t m = ov->npending - g < LINK_GROUP ? ov->npending - g : LINK_GROUP;
    ov_node **ns = ov->pending + g;
    group_find_lt(ov, ns, m, preds);
    /* The searches saw the list before this group's nodes joined it: at
     * each level, the group's last node linked there (smaller than the
     * rest) may stand after the predecessor a search found. */
    ov_node *last[OV_MAX_HEIGHT] = {0};
    for (size_t i = 0; i < m; i++) {
      ov_node **p = preds[i];
      for (int l = 0; l < OV_MAX_HEIGHT; l++)
        if (last[l] &&
            (p[l] == ov->head || node_cmp(p[l], last[l]->cf, last[l]->prefix,
                                          last[l]->key, last[l]->klen) < 0))
          p[l] = last[l];
      link_node(ov, ns[i], p);
      for (int l = 0; l < ns[i]->height; l++)
        last[l] = ns[i];
    }
  }
}

/* A batch is sparse when the list holds more than this many nodes per new
 * one (measured: a 10,000-key bulk commit links faster with the finger, a
 * 500-key block commit into 200,000 nodes in groups). */
#define LINK_SPARSE 64

typedef struct sort_item {
  uint64_t key; /* the byte source of the current passes */
  ov_node *n;
} sort_item;

/* One stable counting pass over byte `shift` of key; skipped when every
 * item has the same byte there. Returns the array now in order. */
static sort_item *radix_pass(sort_item *a, sort_item *b, size_t n, int shift) {
  size_t count[256] = {0};
  for (size_t i = 0; i < n; i++)
    count[(a[i].key >> shift) & 255]++;
  if (count[(a[0].key >> shift) & 255] == n)
    return a;
  for (size_t k = 0, pos = 0; k < 256; k++) {
    size_t c = count[k];
    count[k] = pos;
    pos += c;
  }
  for (size_t i = 0; i < n; i++)
    b[count[(a[i].key >> shift) & 255]++] = a[i];
  return b;
}

/* Sort a by the low `bits` bits of key, stably; b is as large. Returns the
 * array holding the result (a or b). */
static sort_item *radix_sort(sort_item *a, sort_item *b, size_t n, int bits) {
  for (int shift = 0; shift < bits; shift += 8) {
    sort_item *r = radix_pass(a, b, n, shift);
    b = r == a ? b : a;
    a = r;
  }
  return a;
}

/* Working memory for a sort: a big one mapped (rounded to 2 MiB) so it
 * leaves the process when freed — a fold's sort of 200,000 nodes took 8 MB
 * of a peak RSS the benchmark holds to LMDB's. */
static void *scratch_alloc(size_t bytes, size_t *mapped) {
  if (bytes < OV_BLOCK_MAX) {
    *mapped = 0;
    return malloc(bytes);
  }
  return big_alloc((bytes + OV_BLOCK_MAX - 1) / OV_BLOCK_MAX * OV_BLOCK_MAX,
                   mapped);
}

/* Sort nodes by (cf, key). A block's puts took 5-8% of a lazy commit in
 * qsort (a compare through a function pointer, two nodes loaded each): a
 * radix sort on (cf, first 8 key bytes) orders them from copies of those,
 * and full compares remain only within runs that share both. */
static void sort_nodes(ov_node **p, size_t n) {
  size_t mapped = 0;
  sort_item *buf = n >= 64 ? scratch_alloc(2 * n * sizeof *buf, &mapped) : NULL;
  if (!buf) {
    qsort(p, n, sizeof *p, pending_cmp);
    return;
  }
  sort_item *a = buf, *b = buf + n;
  for (size_t i = 0; i < n; i++)
    a[i] = (sort_item){p[i]->prefix, p[i]};
  a = radix_sort(a, b, n, 64);
  b = a == buf ? buf + n : buf;
  for (size_t i = 0; i < n; i++) /* then by cf, stably */
    a[i].key = a[i].n->cf;
  a = radix_sort(a, b, n, 32);
  for (size_t i = 0; i < n; i++)
    p[i] = a[i].n;
  big_free(buf, mapped);
  for (size_t i = 0, j; i < n; i = j) {
    for (j = i + 1;
         j < n && p[j]->prefix == p[i]->prefix && p[j]->cf == p[i]->cf; j++)
      ;
    if (j - i > 1)
      qsort(p + i, j - i, sizeof *p, pending_cmp);
  }
}

void overlay_link_pending(overlay *ov) {
  if (!ov || !ov->npending)
    return;
  sort_nodes(ov->pending, ov->npending);
  const ov_node *first = ov->pending[0];
  int appended = !ov->tail || node_cmp(ov->tail, first->cf, first->prefix,
                                       first->key, first->klen) < 0;
  if (!appended && ov->nodes > LINK_SPARSE * ov->npending)
    link_in_groups(ov);
  else
    link_with_finger(ov);
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

/* A node's bytes in the arena, as node_new asked for them. */
static size_t node_bytes(const ov_node *n) {
  return (sizeof *n + (size_t)n->height * sizeof(ov_link) + n->klen + 7) &
         ~(size_t)7;
}

int overlay_sorted(overlay *ov, ov_node ***out, size_t *count,
                   size_t *out_mapped) {
  *out = NULL;
  *count = 0;
  size_t n = (size_t)ov->nodes;
  size_t mapped;
  ov_node **p = scratch_alloc((n + 1) * sizeof *p, &mapped);
  if (!p)
    return -1;
  size_t k = 0;
  for (ov_block *b = ov->nodes_arena.blocks; b; b = b->next)
    for (size_t off = 0; off < b->used && k <= n;) {
      ov_node *x = (ov_node *)(b->data + off);
      off += node_bytes(x);
      if (x != ov->head)
        p[k++] = x;
    }
  if (k != n) { /* the arena holds nodes and the head only: a bug */
    big_free(p, mapped);
    return -2;
  }
  sort_nodes(p, n);
  *out = p;
  *count = n;
  *out_mapped = mapped;
  return 0;
}

void overlay_sorted_free(ov_node **nodes, size_t mapped) {
  big_free(nodes, mapped);
}

ov_node *overlay_next_any(const ov_node *n) { return link((ov_node *)n, 0); }
