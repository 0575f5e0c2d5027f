/*
 * page_pool.c — recycled one-page buffers for the writer (see
 * page_pool.h). The pool never holds more than cap records, so memory
 * returns to the allocator once a burst of commits is over.
 */
#include "page_pool.h"

#include <stdlib.h>

#include "engine.h"

void page_pool_init(page_pool *p, uint32_t psize, size_t cap) {
  p->v = NULL;
  p->n = 0;
  p->cap = cap;
  p->psize = psize;
}

dirty_page *page_pool_get(page_pool *p) {
  if (p->n)
    return p->v[--p->n];
  dirty_page *d = malloc(sizeof *d);
  uint8_t *b = malloc(p->psize);
  if (!d || !b) {
    free(d);
    free(b);
    return NULL;
  }
  d->buf = b;
  d->npages = 1;
  return d;
}

void page_pool_put(page_pool *p, dirty_page *d) {
  if (!d)
    return;
  if (d->npages == 1 && p->n < p->cap) {
    if (!p->v && !(p->v = malloc(p->cap * sizeof *p->v)))
      p->cap = 0;
    if (p->n < p->cap) {
      p->v[p->n++] = d;
      return;
    }
  }
  free(d->buf);
  free(d);
}

void page_pool_free(page_pool *p) {
  for (size_t i = 0; i < p->n; i++) {
    free(p->v[i]->buf);
    free(p->v[i]);
  }
  free(p->v);
  p->v = NULL;
  p->n = 0;
}
