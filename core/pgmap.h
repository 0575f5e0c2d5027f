/*
 * pgmap.h — an open-addressing hash map from page number to pointer, and a
 * growable vector of page numbers. Page 0 is a meta page and never a key,
 * so 0 marks an empty slot.
 */
#ifndef CAIRN_PGMAP_H
#define CAIRN_PGMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct pgmap_slot {
  uint64_t key;
  void *val;
} pgmap_slot;

typedef struct pgmap {
  pgmap_slot *slots;
  size_t cap; /* power of two, or 0 */
  size_t len;
  size_t hint; /* slot of the latest insertion: looked at first by get */
} pgmap;

void pgmap_free(pgmap *m);
void pgmap_clear(pgmap *m);
void *pgmap_get(const pgmap *m, uint64_t key);
/* Insert or replace; CAIRN_NOMEM on allocation failure. */
int pgmap_put(pgmap *m, uint64_t key, void *val);
/* The value slot of key, inserted with NULL if absent (one probe instead of
 * a get and a put); NULL on allocation failure. Valid until the map next
 * changes. */
void **pgmap_ref(pgmap *m, uint64_t key);
/* Remove and return the value (NULL if absent). */
void *pgmap_del(pgmap *m, uint64_t key);

typedef struct pgvec {
  uint64_t *v;
  size_t len, cap;
} pgvec;

void pgvec_free(pgvec *a);
int pgvec_push(pgvec *a, uint64_t x);
int pgvec_reserve(pgvec *a, size_t n);
void pgvec_sort(pgvec *a);
/* Merge sorted b into sorted a (a keeps the union, duplicates kept). */
int pgvec_merge(pgvec *a, const pgvec *b);

#endif /* CAIRN_PGMAP_H */
