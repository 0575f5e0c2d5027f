/*
 * pgmap.c — see pgmap.h. Linear probing with backward-shift deletion keeps
 * every probe run contiguous, so lookups stop at the first empty slot.
 */
#include "pgmap.h"

#include <stdlib.h>
#include <string.h>

#include "cairn.h"

static size_t hash64(uint64_t k) {
  k ^= k >> 33;
  k *= 0xff51afd7ed558ccdull;
  k ^= k >> 33;
  return (size_t)k;
}

void pgmap_free(pgmap *m) {
  free(m->slots);
  m->slots = NULL;
  m->cap = m->len = m->hint = 0;
}

void pgmap_clear(pgmap *m) {
  if (m->slots)
    memset(m->slots, 0, m->cap * sizeof *m->slots);
  m->len = 0;
}

void *pgmap_get(const pgmap *m, uint64_t key) {
  if (!m->cap)
    return NULL;
  /* The page just pinned is usually the next one asked for (a cursor step
   * fetches its leaf, then reads the entry twice). A stale hint is only a
   * wrong guess: keys are unique and hint < cap. */
  if (m->slots[m->hint].key == key)
    return m->slots[m->hint].val;
  size_t mask = m->cap - 1;
  for (size_t i = hash64(key) & mask;; i = (i + 1) & mask) {
    if (m->slots[i].key == key)
      return m->slots[i].val;
    if (!m->slots[i].key)
      return NULL;
  }
}

static int grow(pgmap *m) {
  /* Small first: a cursor's pin set holds a few pages and is cleared after
   * every move, so its whole table is walked that often. */
  size_t ncap = m->cap ? m->cap * 2 : 8;
  pgmap_slot *ns = calloc(ncap, sizeof *ns);
  if (!ns)
    return CAIRN_NOMEM;
  for (size_t j = 0; j < m->cap; j++) {
    if (!m->slots[j].key)
      continue;
    size_t i = hash64(m->slots[j].key) & (ncap - 1);
    while (ns[i].key)
      i = (i + 1) & (ncap - 1);
    ns[i] = m->slots[j];
  }
  free(m->slots);
  m->slots = ns;
  m->cap = ncap;
  return CAIRN_OK;
}

void **pgmap_ref(pgmap *m, uint64_t key) {
  if ((m->len + 1) * 4 > m->cap * 3 && grow(m))
    return NULL;
  size_t mask = m->cap - 1;
  size_t i = hash64(key) & mask;
  while (m->slots[i].key && m->slots[i].key != key)
    i = (i + 1) & mask;
  if (!m->slots[i].key) {
    m->len++;
    m->slots[i].key = key;
    m->slots[i].val = NULL;
  }
  m->hint = i;
  return &m->slots[i].val;
}

int pgmap_put(pgmap *m, uint64_t key, void *val) {
  void **v = pgmap_ref(m, key);
  if (!v)
    return CAIRN_NOMEM;
  *v = val;
  return CAIRN_OK;
}

void *pgmap_del(pgmap *m, uint64_t key) {
  if (!m->cap)
    return NULL;
  size_t mask = m->cap - 1;
  size_t i = hash64(key) & mask;
  while (m->slots[i].key != key) {
    if (!m->slots[i].key)
      return NULL;
    i = (i + 1) & mask;
  }
  void *val = m->slots[i].val;
  m->len--;
  /* Backward shift: pull later members of the run into the hole. */
  size_t hole = i;
  for (size_t j = (i + 1) & mask; m->slots[j].key; j = (j + 1) & mask) {
    size_t home = hash64(m->slots[j].key) & mask;
    int movable =
        hole <= j ? (home <= hole || home > j) : (home <= hole && home > j);
    if (movable) {
      m->slots[hole] = m->slots[j];
      hole = j;
    }
  }
  m->slots[hole].key = 0;
  m->slots[hole].val = NULL;
  return val;
}

void pgvec_free(pgvec *a) {
  free(a->v);
  a->v = NULL;
  a->len = a->cap = 0;
}

int pgvec_reserve(pgvec *a, size_t n) {
  if (n <= a->cap)
    return CAIRN_OK;
  size_t ncap = a->cap ? a->cap : 16;
  while (ncap < n)
    ncap *= 2;
  uint64_t *nv = realloc(a->v, ncap * sizeof *nv);
  if (!nv)
    return CAIRN_NOMEM;
  a->v = nv;
  a->cap = ncap;
  return CAIRN_OK;
}

int pgvec_push(pgvec *a, uint64_t x) {
  if (a->len == a->cap) {
    int rc = pgvec_reserve(a, a->len + 1);
    if (rc)
      return rc;
  }
  a->v[a->len++] = x;
  return CAIRN_OK;
}

/* Page lists are sorted on every commit: an introsort on the values
 * themselves beats qsort's comparison callback several times over. */
static void sift_down(uint64_t *v, size_t root, size_t n) {
  for (size_t child; (child = 2 * root + 1) < n; root = child) {
    if (child + 1 < n && v[child + 1] > v[child])
      child++;
    if (v[root] >= v[child])
      return;
    uint64_t t = v[root];
    v[root] = v[child];
    v[child] = t;
  }
}

static void heap_sort(uint64_t *v, size_t n) {
  for (size_t i = n / 2; i-- > 0;)
    sift_down(v, i, n);
  for (size_t end = n; end-- > 1;) {
    uint64_t t = v[0];
    v[0] = v[end];
    v[end] = t;
    sift_down(v, 0, end);
  }
}

static void intro_sort(uint64_t *v, size_t n, int depth) {
  while (n > 16) {
    if (depth-- == 0) {
      heap_sort(v, n);
      return;
    }
    uint64_t a = v[0], b = v[n / 2], c = v[n - 1];
    uint64_t pivot =
        a < b ? (b < c ? b : (a < c ? c : a)) : (a < c ? a : (b < c ? c : b));
    size_t i = 0, j = n - 1;
    for (;;) { /* Hoare partition */
      while (v[i] < pivot)
        i++;
      while (v[j] > pivot)
        j--;
      if (i >= j)
        break;
      uint64_t t = v[i];
      v[i++] = v[j];
      v[j--] = t;
    }
    /* [0, j] <= pivot <= [j + 1, n): recurse on the smaller side */
    size_t left = j + 1;
    if (left < n - left) {
      intro_sort(v, left, depth);
      v += left;
      n -= left;
    } else {
      intro_sort(v + left, n - left, depth);
      n = left;
    }
  }
  for (size_t i = 1; i < n; i++) { /* insertion sort */
    uint64_t x = v[i];
    size_t k = i;
    for (; k > 0 && v[k - 1] > x; k--)
      v[k] = v[k - 1];
    v[k] = x;
  }
}

void pgvec_sort(pgvec *a) {
  int depth = 0;
  for (size_t n = a->len; n > 1; n >>= 1)
    depth += 2;
  if (a->len > 1)
    intro_sort(a->v, a->len, depth);
}

int pgvec_merge(pgvec *a, const pgvec *b) {
  if (!b->len)
    return CAIRN_OK;
  int rc = pgvec_reserve(a, a->len + b->len);
  if (rc)
    return rc;
  /* Merge from the back so no scratch buffer is needed. */
  size_t i = a->len, j = b->len, k = a->len + b->len;
  while (j) {
    if (i && a->v[i - 1] > b->v[j - 1])
      a->v[--k] = a->v[--i];
    else
      a->v[--k] = b->v[--j];
  }
  a->len += b->len;
  return CAIRN_OK;
}
