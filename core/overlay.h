/*
 * overlay.h — the in-memory ordered overlay of committed-but-not-
 * checkpointed changes (write-ahead log mode).
 *
 * Readers and the writer consult it before the tree: for (cf, key) the
 * newest version whose txn id is <= the reader's snapshot wins; a deletion
 * is a version too (a tombstone). The tree underneath is the last
 * checkpoint's and does not change while the overlay lives; a checkpoint
 * folds the overlay into a new tree in key order and starts a new overlay.
 *
 * Concurrency: one writer (the holder of the write lock) inserts; any
 * number of readers search and iterate without locks. Nodes and versions
 * are never unlinked or freed while the overlay lives, so a pointer a
 * reader holds stays valid until it drops its reference. Versions of an
 * aborted txn are hidden by setting their txn id to OV_ABORTED.
 */
#ifndef CAIRN_OVERLAY_H
#define CAIRN_OVERLAY_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define OV_MAX_HEIGHT 16
#define OV_ABORTED UINT64_MAX
#define OV_GREATEST_CFS 16

typedef struct ov_version {
  _Atomic uint64_t txnid;
  struct ov_version *older;
  const uint8_t *val;
  uint32_t vlen;
  uint8_t tomb;
} ov_version;

#define OV_BASE_UNKNOWN 2

/* A link to the next node at one level. The writer keeps a copy of that
 * node's cf and key prefix beside the pointer, so its searches (every put)
 * decide most steps without loading the node: one cache miss fewer per
 * level. Readers use only the pointer. */
typedef struct ov_link {
  struct ov_node *_Atomic node;
  uint64_t prefix; /* writer-only */
  uint32_t cf;     /* writer-only */
} ov_link;

typedef struct ov_node {
  uint64_t prefix; /* the key's first 8 bytes, big-endian: most compares */
  uint64_t hash;   /* of (cf, key), for the exact-match index */
  uint32_t cf;
  uint16_t klen;
  uint8_t height;
  /* Is the key in the checkpointed tree? 0/1, or OV_BASE_UNKNOWN until
   * someone needs it: a function of a tree that does not change while the
   * overlay lives, so any thread may fill it in. */
  _Atomic uint8_t in_base;
  ov_version *_Atomic newest;
  const uint8_t *key;
  struct ov_link next[]; /* height links */
} ov_node;

typedef struct ov_block ov_block;
typedef struct ov_arena {
  ov_block *blocks;
  uint8_t *cur;
  size_t left;
  size_t next_size; /* of the next block */
} ov_arena;

typedef struct overlay {
  ov_node *head; /* sentinel: OV_MAX_HEIGHT links, no key */
  _Atomic int height;
  _Atomic long refs; /* the db's + one per read txn using it */
  /* memory held (the checkpoint budget): the writer adds, statistics read
   * it from any thread */
  _Atomic uint64_t bytes;
  uint64_t nodes; /* writer */
  uint64_t rng;
  /* two arenas: nodes packed together keep searches in fewer cache lines
   * than nodes interleaved with values */
  ov_arena nodes_arena, data_arena;
  /* Exact-match index: open addressing over node pointers, at most half
   * full. Grown by copying into a table twice the size and publishing it;
   * old tables stay (readers may be probing them) until the overlay goes.
   * A reader probing an old table can miss only nodes created after it
   * was replaced, whose versions are all newer than that reader's
   * snapshot. */
  struct ov_index *_Atomic index;
  struct ov_index *old_indexes;
  uint64_t indexed; /* writer: nodes in the index */
  /* Writer: new nodes in the index but not yet in the list (see
   * overlay_node_unlinked). */
  ov_node **pending;
  size_t npending, cappending;
  _Atomic int index_partial; /* out of memory once: misses prove nothing */
  /* A Bloom filter of every node's key, sized with the index (NULL for a
   * first overlay or without memory): most lookups are of keys the
   * overlay lacks (a block's puts over a large tree, readers' gets), and
   * the filter answers those from a table a tenth of the index's size,
   * without the index probe's likely cache miss. Bits are set before a
   * node is published and never cleared. */
  _Atomic uint64_t *filter;
  uint64_t filter_lines; /* of 8 words; a power of two */
  /* Writer: for each cf below OV_GREATEST_CFS, its node with the greatest
   * key (linked or pending), NULL while it has none. A key beyond it is
   * new without an index probe, a likely cache miss: appends by height
   * skip it. */
  ov_node *greatest[OV_GREATEST_CFS];
  /* Writer: the last node of the list (NULL: empty). A batch of pending
   * nodes all beyond it links at the end (see overlay_link_pending). */
  ov_node *tail;
} overlay;

/* expect_nodes: how many nodes to size the exact-match index for (the last
 * overlay's count; 0 = start small). */
overlay *overlay_new(uint64_t expect_nodes);
void overlay_ref(overlay *ov);
/* Drop a reference; the last one frees everything. */
void overlay_unref(overlay *ov);

/* Writer: the node for (cf, key), or NULL. */
ov_node *overlay_find(overlay *ov, uint32_t cf, const uint8_t *key,
                      size_t klen);
/* Any thread: 0 if (cf, key) is surely not in the overlay (the filter
 * says so); 1 if it may be. */
int overlay_may_hold(const overlay *ov, uint32_t cf, const uint8_t *key,
                     size_t klen);
/* Writer: the node for (cf, key), created if missing (one search). */
ov_node *overlay_node(overlay *ov, uint32_t cf, const uint8_t *key,
                      size_t klen);
/* Writer: the same, but a new node only goes into the index; it joins the
 * ordered list at overlay_link_pending, with the others in key order. The
 * writer calls that before anything walks the list (its cursors, counting,
 * the fold) and before a commit or abort ends its txn. */
ov_node *overlay_node_unlinked(overlay *ov, uint32_t cf, const uint8_t *key,
                               size_t klen);
void overlay_link_pending(overlay *ov);
/* Writer: a new newest version of node (val copied; tomb = deletion). */
ov_version *overlay_add(overlay *ov, ov_node *node, uint64_t txnid,
                        const uint8_t *val, size_t vlen, int tomb);

/* The version a snapshot sees (txn ids <= snap), or NULL. */
static inline const ov_version *ov_visible(const ov_node *n, uint64_t snap) {
  const ov_version *v =
      atomic_load_explicit(&((ov_node *)n)->newest, memory_order_acquire);
  while (v && atomic_load_explicit(&((ov_version *)v)->txnid,
                                   memory_order_relaxed) > snap)
    v = v->older;
  return v;
}

/* Any thread: the first node >= (cf, key) (NULL: none, or another cf). */
ov_node *overlay_seek(overlay *ov, uint32_t cf, const uint8_t *key,
                      size_t klen);
/* Any thread: the last node < (cf, key) of the same cf; key NULL = the
 * last node of cf. */
ov_node *overlay_seek_lt(overlay *ov, uint32_t cf, const uint8_t *key,
                         size_t klen);
/* The next node of the same cf, or NULL. */
ov_node *overlay_next(const ov_node *n);
/* Every node in (cf, key) order: the first, and the one after n. */
ov_node *overlay_first_any(overlay *ov);
/* Writer: every node, in (cf, key) order, in a new array of *count
 * (*out, freed by overlay_sorted_free), found by one sequential scan of the
 * nodes' memory and a sort: a walk of the list misses the cache at every
 * node, one after another. 0; -1 without memory (*out NULL); -2 if the
 * nodes' memory does not add up (a bug). */
int overlay_sorted(overlay *ov, ov_node ***out, size_t *count, size_t *mapped);
/* Free overlay_sorted's array (mapped: as it returned). */
void overlay_sorted_free(ov_node **nodes, size_t mapped);
ov_node *overlay_next_any(const ov_node *n);

#endif
