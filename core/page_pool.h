/*
 * page_pool.h — recycled one-page buffers for the write transaction.
 *
 * Every commit copies the pages it changes; in log mode the copies live in
 * the deferred table until a checkpoint, and each later commit that touches
 * the same leaf frees the previous copy. Going through malloc/free for
 * each one costs a fresh zeroed allocation and, when the heap trims, page
 * faults. The pool keeps up to a bounded number of freed single-page
 * dirty_page records (with their buffers) for the next allocation.
 *
 * Invariant: only the thread holding the write lock (or close) calls it;
 * a buffer in the pool is reachable by no reader and no txn.
 */
#ifndef CAIRN_PAGE_POOL_H
#define CAIRN_PAGE_POOL_H

#include <stddef.h>
#include <stdint.h>

struct dirty_page;

typedef struct page_pool {
  struct dirty_page **v;
  size_t n, cap;
  uint32_t psize;
} page_pool;

void page_pool_init(page_pool *p, uint32_t psize, size_t cap);
/* A record with a one-page buffer; its content is undefined. NULL if out
 * of memory. */
struct dirty_page *page_pool_get(page_pool *p);
/* Take back a record and its buffer (any page count; only single pages are
 * kept). NULL is ignored. */
void page_pool_put(page_pool *p, struct dirty_page *d);
void page_pool_free(page_pool *p);

#endif
