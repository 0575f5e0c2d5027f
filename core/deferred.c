/*
 * deferred.c — the deferred page table: pages that commits made durable by
 * the write-ahead log copied but did not write to the file yet (the next
 * checkpoint writes them). Data changes live in the overlay (overlay.c);
 * what comes here are the catalog pages of column family creates and drops.
 *
 * One writer changes the table; readers on any thread look pages up without
 * a lock. Invariants that make that safe:
 *   - a slot's page pointer is stored before its key (release), and a
 *     reader loads the key before the page (acquire);
 *   - an entry is replaced or removed only when its page is dead: freed by
 *     a commit no live snapshot predates, so no reader can be looking for it;
 *   - a whole table that readers may still probe (grown out of, or written
 *     out by a checkpoint) is retired with the newest published txn id, and
 *     freed only when every live reader's snapshot is newer than that;
 *   - a read txn marks a slot with its snapshot before it uses the page and
 *     then checks that the table is still current (a writer swaps the table
 *     before it reads the marks: sequentially consistent on both sides), so
 *     a checkpoint frees at once every written page no live reader can
 *     hold, and keeps only the others until their readers end. A long
 *     snapshot therefore pins only the pages it actually read.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "error.h"

#define TOMBSTONE UINT64_MAX

struct dp_table {
  size_t cap;  /* power of two */
  size_t used; /* live + tombstones: probing chains */
  size_t live;
  int owns_pages; /* retired by a checkpoint: the pages go with it */
  dp_slot slots[];
};

static size_t hash(uint64_t k, size_t cap) {
  k ^= k >> 33;
  k *= 0xff51afd7ed558ccdull;
  k ^= k >> 33;
  return (size_t)k & (cap - 1);
}

static dp_table *table_new(size_t cap) {
  dp_table *t = calloc(1, sizeof *t + cap * sizeof(dp_slot));
  if (t)
    t->cap = cap;
  return t;
}

static void page_free(deferred *d, dirty_page *p) {
  if (d->pool) {
    page_pool_put(d->pool, p);
  } else if (p) {
    free(p->buf);
    free(p);
  }
}

static void table_free(deferred *d, dp_table *t) {
  if (!t)
    return;
  if (t->owns_pages)
    for (size_t i = 0; i < t->cap; i++) {
      uint64_t k = atomic_load_explicit(&t->slots[i].key, memory_order_relaxed);
      if (k && k != TOMBSTONE)
        page_free(
            d, atomic_load_explicit(&t->slots[i].page, memory_order_relaxed));
    }
  free(t);
}

void deferred_init(deferred *d) {
  memset(d, 0, sizeof *d);
  atomic_store_explicit(&d->tab, NULL, memory_order_relaxed);
}

static dp_slot *find(dp_table *t, uint64_t pgno) {
  for (size_t i = hash(pgno, t->cap), n = 0; n < t->cap;
       i = (i + 1) & (t->cap - 1), n++) {
    uint64_t k = atomic_load_explicit(&t->slots[i].key, memory_order_acquire);
    if (k == pgno)
      return &t->slots[i];
    if (k == 0)
      return NULL;
  }
  return NULL;
}

dirty_page *deferred_get(deferred *d, uint64_t pgno, uint64_t reader) {
  for (;;) {
    dp_table *t = atomic_load(&d->tab);
    if (!t || !atomic_load_explicit(&d->live, memory_order_relaxed))
      return NULL;
    dp_slot *s = find(t, pgno);
    if (!s)
      return NULL;
    if (!reader)
      return atomic_load_explicit(&s->page, memory_order_acquire);
    uint64_t seen = atomic_load(&s->read_by);
    while (seen < reader &&
           !atomic_compare_exchange_weak(&s->read_by, &seen, reader))
      ;
    if (atomic_load(&d->tab) == t) /* the mark is visible to a checkpoint */
      return atomic_load_explicit(&s->page, memory_order_acquire);
    /* swapped meanwhile: the page may be gone; look again */
  }
}

static void retire(deferred *d, dp_table *t, uint64_t tag) {
  retired_table *r = malloc(sizeof *r);
  if (!r) {
    /* Without the bookkeeping the table can only leak: readers may still
     * probe it, so freeing it now is never an option. */
    return;
  }
  r->table = t;
  r->tag = tag;
  r->next = d->retired;
  d->retired = r;
}

/* Insert into t, which has room (writer only): replace the key's entry if
 * the chain holds it, else take the first free or removed slot. */
static void insert(deferred *d, dp_table *t, dirty_page *page,
                   uint64_t read_by) {
  size_t i = hash(page->pgno, t->cap), slot = SIZE_MAX;
  for (;; i = (i + 1) & (t->cap - 1)) {
    uint64_t k = atomic_load_explicit(&t->slots[i].key, memory_order_relaxed);
    if (k == page->pgno) {
      dirty_page *old =
          atomic_load_explicit(&t->slots[i].page, memory_order_relaxed);
      atomic_store_explicit(&t->slots[i].page, page, memory_order_release);
      atomic_store_explicit(&t->slots[i].read_by, read_by,
                            memory_order_relaxed);
      page_free(d, old); /* dead: see the invariants above */
      return;
    }
    if (k == TOMBSTONE && slot == SIZE_MAX)
      slot = i;
    if (k == 0)
      break;
  }
  if (slot == SIZE_MAX) {
    slot = i;
    t->used++;
  }
  atomic_store_explicit(&t->slots[slot].page, page, memory_order_release);
  atomic_store_explicit(&t->slots[slot].read_by, read_by, memory_order_relaxed);
  atomic_store_explicit(&t->slots[slot].key, page->pgno, memory_order_release);
  t->live++;
}

/* A new table with room for n more pages than t holds, swapped in (t is
 * retired: readers may still probe it). NULL when out of memory. */
static dp_table *grow(deferred *d, dp_table *t, size_t n, uint64_t published) {
  size_t cap = t ? t->cap : 1024;
  while ((t ? t->live + n : n) * 10 > cap * 4)
    cap *= 2;
  dp_table *g = table_new(cap);
  if (!g)
    return NULL;
  if (t) {
    for (size_t i = 0; i < t->cap; i++) {
      uint64_t k = atomic_load_explicit(&t->slots[i].key, memory_order_relaxed);
      if (k && k != TOMBSTONE)
        insert(d, g,
               atomic_load_explicit(&t->slots[i].page, memory_order_relaxed),
               0);
    }
  }
  atomic_store(&d->tab, g);
  /* Marks made before the swap must follow their pages (readers that
   * mark the old table after it see the swap and look again). */
  for (size_t i = 0; t && i < t->cap; i++) {
    uint64_t k = atomic_load_explicit(&t->slots[i].key, memory_order_relaxed);
    uint64_t r = atomic_load(&t->slots[i].read_by);
    dp_slot *ns = k && k != TOMBSTONE && r ? find(g, k) : NULL;
    if (ns)
      atomic_store_explicit(&ns->read_by, r, memory_order_relaxed);
  }
  if (t)
    retire(d, t, published);
  return g;
}

static int fits(const dp_table *t, size_t n) {
  return t && (t->used + n) * 10 <= t->cap * 7;
}

int deferred_reserve(deferred *d, size_t n, uint64_t published) {
  dp_table *t = atomic_load_explicit(&d->tab, memory_order_relaxed);
  if (!n || fits(t, n) || grow(d, t, n, published))
    return CAIRN_OK;
  return cairn__seterr(CAIRN_NOMEM,
                       "out of memory growing the deferred page table");
}

int deferred_put(deferred *d, dirty_page *page, uint64_t published) {
  dp_table *t = atomic_load_explicit(&d->tab, memory_order_relaxed);
  if (!fits(t, 1)) {
    dp_table *g = grow(d, t, 1, published);
    if (g)
      t = g;
    else if (!t || t->used + 2 > t->cap)
      /* (a probe chain needs one empty slot to end) */
      return cairn__seterr(CAIRN_NOMEM, "out of memory growing the deferred "
                                        "page table");
    /* else: fuller than the load factor wants, still correct */
  }
  dirty_page *old = deferred_get(d, page->pgno, 0);
  if (old)
    d->bytes -= old->npages * (uint64_t)d->psize;
  insert(d, t, page, 0);
  d->bytes += page->npages * (uint64_t)d->psize;
  atomic_store_explicit(&d->live, t->live, memory_order_relaxed);
  return CAIRN_OK;
}

void deferred_remove(deferred *d, uint64_t pgno) {
  dp_table *t = atomic_load_explicit(&d->tab, memory_order_relaxed);
  if (!t)
    return;
  for (size_t i = hash(pgno, t->cap), n = 0; n < t->cap;
       i = (i + 1) & (t->cap - 1), n++) {
    uint64_t k = atomic_load_explicit(&t->slots[i].key, memory_order_relaxed);
    if (k == 0)
      return;
    if (k != pgno)
      continue;
    dirty_page *old =
        atomic_load_explicit(&t->slots[i].page, memory_order_relaxed);
    atomic_store_explicit(&t->slots[i].key, TOMBSTONE, memory_order_release);
    d->bytes -= old->npages * (uint64_t)d->psize;
    page_free(d, old); /* dead: no reader looks for it */
    t->live--;
    atomic_store_explicit(&d->live, t->live, memory_order_relaxed);
    return;
  }
}

int deferred_list(deferred *d, dirty_page ***out, size_t *n) {
  dp_table *t = atomic_load_explicit(&d->tab, memory_order_relaxed);
  *out = NULL;
  *n = 0;
  if (!t || !t->live)
    return CAIRN_OK;
  dirty_page **v = malloc(t->live * sizeof *v);
  if (!v)
    return cairn__seterr(CAIRN_NOMEM, "out of memory listing deferred pages");
  size_t k = 0;
  for (size_t i = 0; i < t->cap; i++) {
    uint64_t key = atomic_load_explicit(&t->slots[i].key, memory_order_relaxed);
    if (key && key != TOMBSTONE)
      v[k++] = atomic_load_explicit(&t->slots[i].page, memory_order_relaxed);
  }
  *out = v;
  *n = k;
  return CAIRN_OK;
}

dp_table *deferred_detach(deferred *d) {
  dp_table *t = atomic_load_explicit(&d->tab, memory_order_relaxed);
  atomic_store(&d->tab, NULL); /* before the marks are read */
  atomic_store_explicit(&d->live, 0, memory_order_relaxed);
  d->bytes = 0;
  return t;
}

void deferred_retire_written(deferred *d, dp_table *t, uint64_t oldest_reader,
                             uint64_t published) {
  if (!t)
    return;
  for (size_t i = 0; i < t->cap; i++) {
    uint64_t k = atomic_load_explicit(&t->slots[i].key, memory_order_relaxed);
    if (!k || k == TOMBSTONE)
      continue;
    uint64_t r = atomic_load(&t->slots[i].read_by);
    if (r && r - 1 >= oldest_reader) {
      /* a live reader may hold it */
      continue;
    }
    page_free(d, atomic_load_explicit(&t->slots[i].page, memory_order_relaxed));
    atomic_store_explicit(&t->slots[i].key, TOMBSTONE, memory_order_relaxed);
  }
  t->owns_pages = 1; /* what is left */
  retire(d, t, published);
}

void deferred_collect(deferred *d, uint64_t oldest_reader) {
  for (retired_table **p = &d->retired; *p;) {
    retired_table *r = *p;
    if (r->tag < oldest_reader) {
      *p = r->next;
      table_free(d, r->table);
      free(r);
    } else {
      p = &r->next;
    }
  }
}

void deferred_free(deferred *d) {
  deferred_retire_written(d, deferred_detach(d), UINT64_MAX, 0);
  deferred_collect(d, UINT64_MAX);
}
