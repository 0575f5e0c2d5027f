/*
 * freelist.c — which pages are free, and when a freed page may be reused.
 *
 * A page freed by commit T is still part of every tree version before T.
 * It joins `ready` (reusable) only once T <= every live snapshot's id AND
 * T <= the newest durable commit: the first keeps snapshots intact, the
 * second keeps intact the tree a crash would fall back to (lazy commits are
 * not durable, so their frees wait for the next sync).
 *
 * With the write-ahead log, pages that no checkpoint has written yet
 * ("young": they live only in the deferred page table) are part of no tree
 * a crash falls back to, so they are reusable as soon as no snapshot sees
 * them, durable or not.
 *
 * On disk, each commit records the whole free set (ready + pending +
 * what it freed itself) as a chain of freelist pages; after a restart no
 * snapshot exists, so everything in it is reusable.
 */
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "error.h"

/* Spare pending records: a commit adds at most this many after its commit
 * point, where running out of memory would lose the pages for good (the
 * next commit persists a freelist without them). */
#define FL_SPARES 3

void freelist_free(freelist *fl) {
  pgvec_free(&fl->ready);
  for (pending_free *p = fl->pending, *n; p; p = n) {
    n = p->next;
    pgvec_free(&p->pages);
    free(p);
  }
  fl->pending = NULL;
  for (pending_free *p = fl->spare, *n; p; p = n) {
    n = p->next;
    free(p);
  }
  fl->spare = NULL;
  fl->nspare = 0;
}

static void spare_put(freelist *fl, pending_free *p) {
  if (fl->nspare >= FL_SPARES) {
    free(p);
    return;
  }
  memset(p, 0, sizeof *p);
  p->next = fl->spare;
  fl->spare = p;
  fl->nspare++;
}

static pending_free *spare_get(freelist *fl) {
  pending_free *p = fl->spare;
  if (p) {
    fl->spare = p->next;
    fl->nspare--;
    p->next = NULL;
  }
  return p;
}

int freelist_release(freelist *fl, uint64_t limit, uint64_t young_limit,
                     int checkpointed_ok, pgvec *young) {
  for (pending_free **pp = &fl->pending; *pp;) {
    pending_free *p = *pp;
    if (p->txnid > (p->young == PENDING_YOUNG ? young_limit : limit) ||
        (p->young == PENDING_CHECKPOINT && !checkpointed_ok)) {
      pp = &p->next;
      continue;
    }
    int rc = pgvec_merge(&fl->ready, &p->pages); /* sorted when added */
    if (!rc && p->young == PENDING_YOUNG && young) {
      rc = pgvec_reserve(young, young->len + p->pages.len);
      if (!rc) {
        memcpy(young->v + young->len, p->pages.v,
               p->pages.len * sizeof *p->pages.v);
        young->len += p->pages.len;
      }
    }
    if (rc)
      return cairn__seterr(rc, "out of memory releasing free pages");
    *pp = p->next;
    pgvec_free(&p->pages);
    spare_put(fl, p);
  }
  while (fl->nspare < FL_SPARES) {
    pending_free *p = calloc(1, sizeof *p);
    if (!p)
      return cairn__seterr(CAIRN_NOMEM, "out of memory for free page records");
    spare_put(fl, p);
  }
  return CAIRN_OK;
}

int freelist_take(freelist *fl, uint64_t n, uint64_t *pgno) {
  pgvec *r = &fl->ready;
  if (!r->len || n > r->len)
    return CAIRN_NOTFOUND;
  if (n == 1) {
    *pgno = r->v[--r->len]; /* the highest: O(1) */
    return CAIRN_OK;
  }
  for (size_t i = r->len - n + 1; i-- > 0;) {
    if (r->v[i + n - 1] - r->v[i] == n - 1) {
      *pgno = r->v[i];
      memmove(r->v + i, r->v + i + n, (r->len - i - n) * sizeof *r->v);
      r->len -= n;
      return CAIRN_OK;
    }
  }
  return CAIRN_NOTFOUND;
}

int freelist_return(freelist *fl, const pgvec *pages) {
  pgvec tmp = {0};
  int rc = pgvec_reserve(&tmp, pages->len);
  if (!rc) {
    if (pages->len)
      memcpy(tmp.v, pages->v, pages->len * sizeof *tmp.v);
    tmp.len = pages->len;
    pgvec_sort(&tmp);
    rc = pgvec_merge(&fl->ready, &tmp);
    pgvec_free(&tmp);
  }
  if (rc && fl->ready.cap - fl->ready.len >= pages->len) {
    /* Out of memory, but the pages came out of ready during this txn, so
     * its buffer has room for them: append and sort in place (an abort
     * must never lose pages; the next commit would persist the loss). */
    if (pages->len)
      memcpy(fl->ready.v + fl->ready.len, pages->v,
             pages->len * sizeof *pages->v);
    fl->ready.len += pages->len;
    pgvec_sort(&fl->ready);
    rc = CAIRN_OK;
  }
  return rc ? cairn__seterr(rc, "out of memory returning free pages") : 0;
}

int freelist_add_pending(freelist *fl, uint64_t txnid, pgvec *pages,
                         int young) {
  if (!pages->len)
    return CAIRN_OK;
  pending_free *p = spare_get(fl);
  if (!p && !(p = calloc(1, sizeof *p)))
    return cairn__seterr(CAIRN_NOMEM, "out of memory recording freed pages");
  p->txnid = txnid;
  p->young = young;
  pgvec_sort(pages);
  p->pages = *pages; /* takes ownership */
  memset(pages, 0, sizeof *pages);
  pending_free **tail = &fl->pending;
  while (*tail)
    tail = &(*tail)->next;
  *tail = p;
  return CAIRN_OK;
}

void freelist_punch(const freelist *fl, cairn_file *f, uint32_t psize) {
  if (!f->methods->punch)
    return;
  pgvec all = {0};
  int rc = pgvec_merge(&all, &fl->ready);
  for (const pending_free *p = fl->pending; p && !rc; p = p->next)
    rc = pgvec_merge(&all, &p->pages);
  for (size_t i = 0; i < all.len && !rc;) {
    size_t j = i + 1;
    while (j < all.len && all.v[j] == all.v[j - 1] + 1)
      j++;
    rc = f->methods->punch(f, all.v[i] * psize, (j - i) * (uint64_t)psize);
    i = j;
  }
  if (rc) /* the blocks stay allocated: nothing is lost */
    cairn__clearerr();
  pgvec_free(&all);
}

uint64_t freelist_total(const freelist *fl) {
  uint64_t n = fl->ready.len;
  for (const pending_free *p = fl->pending; p; p = p->next)
    n += p->pages.len;
  return n;
}

uint64_t freelist_pinned_after(const freelist *fl, uint64_t txnid,
                               int checkpointed_pinned) {
  uint64_t n = 0;
  for (const pending_free *p = fl->pending; p; p = p->next)
    if (p->txnid > txnid ||
        (p->young == PENDING_CHECKPOINT && checkpointed_pinned))
      n += p->pages.len;
  return n;
}

static uint32_t per_page(uint32_t psize) { return (psize - FREELIST_HDR) / 8; }

int freelist_load(cairn_txn *txn, freelist *fl) {
  const meta *m = &txn->snap;
  pgvec all = {0};
  uint64_t pg = m->freelist_head, hops = 0;
  int rc = pgvec_reserve(&all, m->freelist_count);
  if (rc)
    return cairn__seterr(rc, "out of memory loading the freelist");
  while (pg) {
    const uint8_t *p;
    if (++hops > m->page_count) {
      rc = cairn__seterr(CAIRN_CORRUPT, "page %llu: freelist chain loops",
                         (unsigned long long)pg);
      goto fail;
    }
    rc = txn_page(txn, pg, TYPE_BIT(PAGE_FREELIST), &p);
    if (rc)
      goto fail;
    uint32_t n = pg_count(p);
    if (all.len + n > m->freelist_count) {
      rc = cairn__seterr(CAIRN_CORRUPT,
                         "page %llu: freelist holds more than the %llu ids "
                         "the meta page records",
                         (unsigned long long)pg,
                         (unsigned long long)m->freelist_count);
      goto fail;
    }
    for (uint32_t i = 0; i < n; i++) {
      uint64_t id = ld64(p + FREELIST_HDR + 8 * i);
      if (id < 2 || id >= m->page_count) {
        rc = cairn__seterr(CAIRN_CORRUPT,
                           "page %llu: freelist names page %llu, out of range",
                           (unsigned long long)pg, (unsigned long long)id);
        goto fail;
      }
      all.v[all.len++] = id;
    }
    pg = ld64(p + PAGE_HDR);
  }
  if (all.len != m->freelist_count) {
    rc = cairn__seterr(
        CAIRN_CORRUPT, "freelist holds %llu ids, meta page records %llu",
        (unsigned long long)all.len, (unsigned long long)m->freelist_count);
    goto fail;
  }
  pgvec_sort(&all);
  for (size_t i = 1; i < all.len; i++)
    if (all.v[i] == all.v[i - 1]) {
      rc = cairn__seterr(CAIRN_CORRUPT, "freelist names page %llu twice",
                         (unsigned long long)all.v[i]);
      goto fail;
    }
  pgvec_free(&fl->ready);
  fl->ready = all;
  return CAIRN_OK;
fail:
  pgvec_free(&all);
  return rc;
}

static uint64_t free_set_size(cairn_txn *txn) {
  return freelist_total(&txn->db->fl) + txn->freed.len + txn->local_free.len;
}

/* Merge sorted b into sorted a, whose capacity the caller reserved: every
 * list of the free set is kept sorted, so a commit merges instead of sorting
 * the whole set again. */
static void merge_ids(pgvec *a, const pgvec *b) {
  (void)pgvec_merge(a, b); /* cannot fail: capacity reserved */
}

int freelist_persist(cairn_txn *txn) {
  freelist *fl = &txn->db->fl;
  uint32_t psize = txn->snap.page_size, per = per_page(psize);
  int rc;
  /* The previous chain is part of the durable state until this commit is. */
  for (uint64_t pg = txn->snap.freelist_head, hops = 0; pg;) {
    const uint8_t *p;
    if (++hops > txn->snap.page_count)
      return cairn__seterr(CAIRN_CORRUPT, "freelist chain loops");
    rc = txn_page(txn, pg, TYPE_BIT(PAGE_FREELIST), &p);
    if (rc)
      return rc;
    uint64_t next = ld64(p + PAGE_HDR);
    rc = txn_free(txn, pg, 1);
    if (rc)
      return rc;
    pg = next;
  }
  /* Allocating chain pages only shrinks the free set, so allocate until the
   * chain can hold it; a page left with no ids is still part of the chain. */
  pgvec chain = {0};
  while ((uint64_t)chain.len * per < free_set_size(txn)) {
    uint8_t *buf;
    uint64_t pg;
    rc = txn_alloc(txn, 1, &buf, &pg);
    if (!rc && pgvec_push(&chain, pg))
      rc = cairn__seterr(CAIRN_NOMEM, "out of memory writing the freelist");
    if (rc) {
      pgvec_free(&chain);
      return rc;
    }
    page_init(buf, psize, PAGE_FREELIST, pg);
  }
  pgvec all = {0};
  rc = pgvec_reserve(&all, free_set_size(txn));
  if (rc) {
    pgvec_free(&chain);
    return cairn__seterr(rc, "out of memory writing the freelist");
  }
  pgvec_sort(&txn->freed);
  pgvec_sort(&txn->local_free);
  merge_ids(&all, &fl->ready);
  for (const pending_free *p = fl->pending; p; p = p->next)
    merge_ids(&all, &p->pages);
  merge_ids(&all, &txn->freed);
  merge_ids(&all, &txn->local_free);
  size_t at = 0;
  for (size_t i = 0; i < chain.len; i++) {
    dirty_page *d = pgmap_get(&txn->dirty, chain.v[i]);
    uint32_t n = (uint32_t)(all.len - at < per ? all.len - at : per);
    st64(d->buf + PAGE_HDR, i + 1 < chain.len ? chain.v[i + 1] : 0);
    for (uint32_t j = 0; j < n; j++)
      st64(d->buf + FREELIST_HDR + 8 * j, all.v[at + j]);
    pg_set_count(d->buf, n);
    at += n;
  }
  txn->snap.freelist_head = chain.len ? chain.v[0] : 0;
  txn->snap.freelist_count = all.len;
  pgvec_free(&chain);
  pgvec_free(&all);
  return CAIRN_OK;
}
