/*
 * pager.c — turns page numbers into validated bytes, and owns the meta pages.
 *
 * Two modes behind one function, pager_get():
 *   mapped  zero-copy pointers into a read-only map of the file. A page is
 *           validated (checksum + structure) the first time this process
 *           touches it; a bitmap remembers that, and the writer clears the
 *           bit before it rewrites a page number. Pages reachable from a live
 *           snapshot are never rewritten (copy-on-write + freelist rules), so
 *           a validated page stays valid while anyone can reach it.
 *   cached  a bounded cache of page buffers read with read(). A txn pins
 *           every entry it was given until it ends, which keeps returned
 *           slices valid for the txn's life; the bound applies to unpinned
 *           entries. A page is validated once, when it is read into the
 *           cache. Eviction is CLOCK (a "used" bit per entry, a hand that
 *           sweeps the cache's table): a hit touches only its own entry,
 *           where a list LRU also wrote its two neighbours (cache misses
 *           that dominated hits under WASI).
 * Old maps are kept until close because a snapshot may still read through
 * the map it started with.
 */
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"
#include "engine.h"
#include "error.h"

/* ---- validated-page bitmap (mapped mode) ------------------------------- */

#define VTOP 4096u
#define VCHUNK_PAGES (1u << 20)
struct verified_map {
  _Atomic(_Atomic uint64_t *) chunk[VTOP];
};

static _Atomic uint64_t *vchunk(verified_map *v, uint64_t pgno, int create) {
  uint64_t top = pgno / VCHUNK_PAGES;
  if (top >= VTOP)
    return NULL; /* beyond 2^32 pages: validate every time */
  _Atomic uint64_t *c = atomic_load(&v->chunk[top]);
  if (!c && create) {
    _Atomic uint64_t *n = calloc(VCHUNK_PAGES / 64, sizeof(uint64_t));
    if (!n)
      return NULL;
    _Atomic uint64_t *expected = NULL;
    if (atomic_compare_exchange_strong(&v->chunk[top], &expected, n))
      c = n;
    else {
      free((void *)n);
      c = expected;
    }
  }
  return c;
}

static int vtest(verified_map *v, uint64_t pgno) {
  _Atomic uint64_t *c = vchunk(v, pgno, 0);
  if (!c)
    return 0;
  uint64_t bit = pgno % VCHUNK_PAGES;
  return (atomic_load_explicit(&c[bit / 64], memory_order_acquire) >>
          (bit % 64)) &
         1;
}

static void vset(verified_map *v, uint64_t pgno) {
  _Atomic uint64_t *c = vchunk(v, pgno, 1);
  if (!c)
    return;
  uint64_t bit = pgno % VCHUNK_PAGES;
  atomic_fetch_or_explicit(&c[bit / 64], 1ull << (bit % 64),
                           memory_order_release);
}

static void vclear(verified_map *v, uint64_t pgno) {
  _Atomic uint64_t *c = vchunk(v, pgno, 0);
  if (!c)
    return;
  uint64_t bit = pgno % VCHUNK_PAGES;
  atomic_fetch_and_explicit(&c[bit / 64], ~(1ull << (bit % 64)),
                            memory_order_release);
}

/* ---- open / close ------------------------------------------------------ */

static uint64_t initial_map_len(uint64_t file_size, uint32_t psize) {
  uint64_t len = sizeof(void *) == 8 ? (1ull << 30) : (64ull << 20);
  while (len < file_size * 2)
    len *= 2;
  return (len + psize - 1) / psize * psize;
}

int pager_open(pager *pg, cairn_platform *plat, cairn_file *file,
               uint32_t psize, int want_map, size_t cache_cap,
               uint64_t file_size) {
  memset(pg, 0, sizeof *pg);
  pg->plat = plat;
  pg->file = file;
  pg->psize = psize;
  pg->cache_cap = cache_cap ? cache_cap : 4096;
  cairn_mutex_init(&pg->cache_mu);
  if (want_map && file->methods->map) {
    pg->verified = calloc(1, sizeof *pg->verified);
    if (!pg->verified)
      return cairn__seterr(CAIRN_NOMEM, "out of memory for the page map");
    uint64_t len = initial_map_len(file_size, psize);
    const void *addr;
    int rc = file->methods->map(file, len, &addr);
    if (rc == CAIRN_OK) {
      pg->mapped = 1;
      pg->map = addr;
      pg->map_len = len;
    } else {
      free(pg->verified); /* fall back to the page cache */
      pg->verified = NULL;
    }
  }
  return CAIRN_OK;
}

/* A cached page shares one allocation with its entry, at a fixed offset:
 * the page header sits next to the entry (one cache miss less per hit) and
 * the page's address is known before the entry is read. */
#define ENTRY_HDR 64u
_Static_assert(sizeof(cache_entry) <= ENTRY_HDR, "cache_entry fits ENTRY_HDR");
#define ENTRY_DATA(e) ((uint8_t *)(e) + ENTRY_HDR)

static cache_entry *entry_alloc(uint64_t npages, uint32_t psize) {
  if (npages > (SIZE_MAX - ENTRY_HDR) / psize)
    return NULL;
  return malloc(ENTRY_HDR + (size_t)(npages * psize));
}

static void entry_free(cache_entry *e) { free(e); }

void pager_close(pager *pg) {
  if (pg->mapped) {
    pg->file->methods->unmap(pg->file, pg->map, pg->map_len);
    for (old_map *m = pg->old_maps, *n; m; m = n) {
      n = m->next;
      pg->file->methods->unmap(pg->file, m->addr, m->len);
      free(m);
    }
  }
  if (pg->verified) {
    for (unsigned i = 0; i < VTOP; i++)
      free((void *)atomic_load(&pg->verified->chunk[i]));
    free(pg->verified);
  }
  for (size_t i = 0; i < pg->cache.cap; i++)
    if (pg->cache.slots[i].key)
      entry_free(pg->cache.slots[i].val);
  pgmap_free(&pg->cache);
  cairn_mutex_destroy(&pg->cache_mu);
  memset(pg, 0, sizeof *pg);
}

int pager_ensure_map(pager *pg, uint64_t bytes) {
  if (!pg->mapped || bytes <= pg->map_len)
    return CAIRN_OK;
  uint64_t len = pg->map_len;
  while (len < bytes)
    len *= 2;
  const void *addr;
  int rc = pg->file->methods->map(pg->file, len, &addr);
  if (rc)
    return rc;
  old_map *om = malloc(sizeof *om);
  if (!om) {
    pg->file->methods->unmap(pg->file, addr, len);
    return cairn__seterr(CAIRN_NOMEM, "out of memory growing the map");
  }
  om->addr = pg->map;
  om->len = pg->map_len;
  om->next = pg->old_maps;
  pg->old_maps = om;
  pg->map = addr;
  pg->map_len = len;
  return CAIRN_OK;
}

/* ---- cached mode ------------------------------------------------------- */

/* Evict unpinned entries, not used since the hand last passed them, until
 * the cache is within its bound. The sweep is bounded: when nearly every
 * entry is pinned, the few unpinned ones are found over several calls
 * rather than by walking the whole table each time. */
static void evict(pager *pg) {
  if (pg->cache_pages <= pg->cache_cap || !pg->unpinned_pages)
    return;
  size_t over = pg->cache_pages - pg->cache_cap;
  if (over > pg->unpinned_pages)
    over = pg->unpinned_pages;
  size_t budget = 256 + 4 * over;
  while (pg->cache_pages > pg->cache_cap && pg->unpinned_pages && budget--) {
    pgmap_slot *s = &pg->cache.slots[pg->clock_hand & (pg->cache.cap - 1)];
    cache_entry *e = s->val;
    if (!s->key || e->refs > 0) {
      pg->clock_hand++;
      continue;
    }
    if (e->used) {
      e->used = 0;
      pg->clock_hand++;
      continue;
    }
    /* Deleting shifts a later entry into this slot: look at it next. */
    pgmap_del(&pg->cache, e->pgno);
    pg->cache_pages -= e->npages;
    pg->unpinned_pages -= e->npages;
    entry_free(e);
    METRIC_ADD(pg->metrics, cache_evictions, 1);
  }
}

static void unpin(pager *pg, cache_entry *e) {
  if (--e->refs > 0)
    return;
  if (e->detached) {
    entry_free(e);
    return;
  }
  pg->unpinned_pages += e->npages;
}

static int check_type(const uint8_t *p, uint64_t pgno, unsigned types,
                      uint64_t npages) {
  unsigned t = pg_type(p);
  if (t > 31 || !(types & TYPE_BIT(t)))
    return cairn__seterr(CAIRN_CORRUPT,
                         "page %llu: unexpected page type %u here",
                         (unsigned long long)pgno, t);
  if (t == PAGE_OVERFLOW && pg_count(p) != npages)
    return cairn__seterr(CAIRN_CORRUPT,
                         "page %llu: overflow run length mismatch",
                         (unsigned long long)pgno);
  return CAIRN_OK;
}

/* The npages and type checks every pinned page gets when handed out. */
static int pinned_page(cache_entry *e, uint64_t pgno, uint64_t npages,
                       unsigned types, const uint8_t **out) {
  if (e->npages != npages)
    return cairn__seterr(CAIRN_CORRUPT,
                         "page %llu: referenced with two different lengths",
                         (unsigned long long)pgno);
  *out = ENTRY_DATA(e);
  return check_type(ENTRY_DATA(e), pgno, types, npages);
}

/* A page taken from the cache (not from a pin the txn holds) is usually
 * cold in the CPU's caches, and what follows reads it at scattered places:
 * a binary search, then a cursor stepping through entries that sit in
 * insertion order. One cache miss at a time, each waited for; ask for the
 * page's lines up front instead, all in flight at once. Natively a
 * prefetch; wasm has none, so plain loads whose result goes nowhere useful
 * (they still overlap: no load depends on another). At most 4 KiB. */
#define TOUCH_MAX 4096u
#define LINE 64u
#if defined(__wasm__)
static volatile uint8_t touch_sink;
#endif

static void touch_page(const uint8_t *p, size_t bytes) {
  if (bytes > TOUCH_MAX)
    bytes = TOUCH_MAX;
#if defined(__wasm__)
  uint8_t acc = 0;
  for (size_t i = 0; i < bytes; i += LINE)
    acc |= p[i];
  touch_sink = acc;
#else
  for (size_t i = 0; i < bytes; i += LINE)
    __builtin_prefetch(p + i);
#endif
}

static int cached_get(pager *pg, cairn_txn *txn, uint64_t pgno, uint64_t npages,
                      unsigned types, const uint8_t **out) {
  /* A page already pinned for the txn's life needs no pin of its own. */
  pgmap *set = txn->pin_to ? txn->pin_to : &txn->pins;
  cache_entry *e = pgmap_get(set, pgno);
  if (!e && set != &txn->pins && txn->pins.len)
    e = pgmap_get(&txn->pins, pgno);
  if (e)
    return pinned_page(e, pgno, npages, types, out);
  /* A pin of the position being left (a cursor's previous one) moves to
   * the new set as it is: no cache lookup, no reference count change. */
  pgmap *from = txn->pin_from;
  if (from && from != set && from->len && (e = pgmap_get(from, pgno)) != NULL) {
    void **slot = pgmap_ref(set, pgno);
    if (!slot)
      return cairn__seterr(CAIRN_NOMEM, "out of memory pinning page");
    *slot = e;
    pgmap_del(from, pgno);
    return pinned_page(e, pgno, npages, types, out);
  }
  void **slot = pgmap_ref(set, pgno); /* reserve before pinning */
  if (!slot)
    return cairn__seterr(CAIRN_NOMEM, "out of memory pinning page");
  cairn_mutex_lock(&pg->cache_mu);
  e = pgmap_get(&pg->cache, pgno);
  if (e) /* first, so the entry's and the page's misses overlap */
    touch_page(ENTRY_DATA(e), pg->psize);
  if (e && e->npages != npages) {
    cairn_mutex_unlock(&pg->cache_mu);
    pgmap_del(set, pgno);
    return cairn__seterr(CAIRN_CORRUPT,
                         "page %llu: referenced with two different lengths",
                         (unsigned long long)pgno);
  }
  if (!e) {
    size_t bytes = (size_t)(npages * pg->psize);
    e = entry_alloc(npages, pg->psize);
    if (!e || pgmap_put(&pg->cache, pgno, e)) {
      free(e);
      cairn_mutex_unlock(&pg->cache_mu);
      pgmap_del(set, pgno);
      return cairn__seterr(CAIRN_NOMEM, "out of memory reading page %llu",
                           (unsigned long long)pgno);
    }
    uint8_t *buf = ENTRY_DATA(e);
    int rc = pg->file->methods->read(pg->file, buf, bytes, pgno * pg->psize);
    if (!rc)
      rc = page_validate(buf, pgno, pg->psize, npages, types);
    if (rc) {
      pgmap_del(&pg->cache, pgno);
      free(e);
      cairn_mutex_unlock(&pg->cache_mu);
      pgmap_del(set, pgno);
      return rc;
    }
    memset(e, 0, sizeof *e);
    e->pgno = pgno;
    e->npages = npages;
    pg->cache_pages += npages;
    METRIC_ADD(pg->metrics, cache_misses, 1);
  } else {
    if (e->refs == 0)
      pg->unpinned_pages -= e->npages;
    METRIC_ADD(pg->metrics, cache_hits, 1);
  }
  e->refs++;
  e->used = 1;
  cairn_mutex_unlock(&pg->cache_mu);
  *slot = e; /* set has not changed since pgmap_ref */
  *out = ENTRY_DATA(e);
  return check_type(ENTRY_DATA(e), pgno, types, npages);
}

int pager_get(pager *pg, cairn_txn *txn, uint64_t pgno, uint64_t npages,
              unsigned types, const uint8_t **out) {
  if (pgno < 2 || pgno >= txn->snap.page_count ||
      npages > txn->snap.page_count - pgno)
    return cairn__seterr(
        CAIRN_CORRUPT, "page %llu: out of range (file has %llu pages)",
        (unsigned long long)pgno, (unsigned long long)txn->snap.page_count);
  /* Pages of logged commits that no checkpoint has written yet. */
  dirty_page *d =
      deferred_get(&txn->db->def, pgno, txn->rdonly ? txn->snap.txnid + 1 : 0);
  if (d) {
    int rc = check_type(d->buf, pgno, types, npages);
    if (!rc && d->npages != npages)
      rc = cairn__seterr(
          CAIRN_CORRUPT, "page %llu: a run of %llu pages, expected %llu",
          (unsigned long long)pgno, (unsigned long long)d->npages,
          (unsigned long long)npages);
    if (!rc)
      *out = d->buf;
    return rc;
  }
  if (!pg->mapped)
    return cached_get(pg, txn, pgno, npages, types, out);
  const uint8_t *p = txn->map + pgno * pg->psize;
  if (!vtest(pg->verified, pgno)) {
    int rc = page_validate(p, pgno, pg->psize, npages, types);
    if (rc)
      return rc;
    vset(pg->verified, pgno);
  } else {
    int rc = check_type(p, pgno, types, npages);
    if (rc)
      return rc;
  }
  *out = p;
  return CAIRN_OK;
}

void pager_release_set(pager *pg, pgmap *set) {
  if (!set->len)
    return;
  cairn_mutex_lock(&pg->cache_mu);
  for (size_t i = 0; i < set->cap; i++) {
    cache_entry *e = set->slots[i].val;
    if (set->slots[i].key && e)
      unpin(pg, e);
  }
  evict(pg);
  cairn_mutex_unlock(&pg->cache_mu);
  pgmap_clear(set);
}

void pager_release(pager *pg, cairn_txn *txn) {
  pager_release_set(pg, &txn->pins);
}

/* Cached mode: forget the cached content of pgno (caller holds cache_mu);
 * a reader still pinning it keeps it until it lets go. */
static void drop_cached(pager *pg, uint64_t pgno) {
  cache_entry *old = pgmap_del(&pg->cache, pgno);
  if (!old)
    return;
  pg->cache_pages -= old->npages;
  if (old->refs > 0)
    old->detached = 1;
  else {
    pg->unpinned_pages -= old->npages;
    entry_free(old);
  }
}

void pager_invalidate(pager *pg, uint64_t pgno, uint64_t npages) {
  if (pg->mapped) {
    for (uint64_t i = 0; i < npages; i++)
      vclear(pg->verified, pgno + i);
    return;
  }
  cairn_mutex_lock(&pg->cache_mu);
  drop_cached(pg, pgno);
  cairn_mutex_unlock(&pg->cache_mu);
}

/* Freed pages closer than this are forgotten with one call, the pages
 * between them too. A checkpoint frees a whole tree whose pages lie among
 * the new tree's, and each call costs a system call and a TLB flush (under
 * a hypervisor, the most of all): one call per run of adjacent pages made
 * forgetting a fifth of a checkpoint once free space had fragmented. The
 * pages in between belong mostly to the tree just written through the
 * file, so are not mapped anyway; one a reader did map faults back in,
 * unchanged, when read again. */
#define FORGET_GAP 64u

/* Forget [off, off + len) of one map, as far as that map reaches (older
 * maps are shorter). */
static void forget_in(pager *pg, const uint8_t *map, uint64_t map_len,
                      uint64_t off, uint64_t len) {
  if (map && off < map_len)
    (void)pg->file->methods->forget(pg->file, map + off,
                                    len < map_len - off ? len : map_len - off);
}

void pager_forget(pager *pg, const pgvec *pages) {
  const cairn_file_methods *m = pg->file->methods;
  if (!pg->mapped || !m->forget)
    return;
  for (size_t i = 0; i < pages->len;) {
    size_t j = i + 1;
    while (j < pages->len && pages->v[j] - pages->v[j - 1] <= FORGET_GAP)
      j++;
    uint64_t off = pages->v[i] * pg->psize,
             len = (pages->v[j - 1] + 1 - pages->v[i]) * pg->psize;
    forget_in(pg, pg->map, pg->map_len, off, len);
    for (old_map *o = pg->old_maps; o; o = o->next)
      forget_in(pg, o->addr, o->len, off, len);
    i = j;
  }
  cairn__clearerr(); /* best effort: the pages stay resident */
}

void pager_mark_written(pager *pg, uint64_t pgno) {
  if (pg->mapped)
    vset(pg->verified, pgno);
}

void pager_adopt(pager *pg, uint64_t pgno, uint64_t npages, uint8_t *buf) {
  cache_entry *n = entry_alloc(npages, pg->psize);
  if (n) { /* a copy: every entry holds its page at ENTRY_DATA */
    memset(n, 0, sizeof *n);
    memcpy(ENTRY_DATA(n), buf, (size_t)(npages * pg->psize));
  }
  free(buf);
  cairn_mutex_lock(&pg->cache_mu);
  drop_cached(pg, pgno);
  if (n && pgmap_put(&pg->cache, pgno, n) == CAIRN_OK) {
    n->pgno = pgno;
    n->npages = npages;
    n->used = 1;
    pg->cache_pages += npages;
    pg->unpinned_pages += npages;
    evict(pg);
  } else {
    free(n); /* no memory: simply do not cache it */
  }
  cairn_mutex_unlock(&pg->cache_mu);
}

/* ---- meta pages -------------------------------------------------------- */

void meta_encode(const meta *m, uint8_t *b, uint64_t slot) {
  memset(b, 0, META_SPAN);
  st16(b + 4, PAGE_META);
  st64(b + 8, slot);
  st64(b + 16, m->txnid);
  memcpy(b + 32, META_MAGIC, 8);
  st32(b + 40, CAIRN_FORMAT_VERSION);
  st32(b + 44, m->page_size);
  st32(b + 48, BYTE_ORDER_MARK);
  st32(b + 52, m->catalog_depth);
  st64(b + 56, m->page_count);
  st64(b + 64, m->catalog_root);
  st64(b + 72, m->catalog_entries);
  st64(b + 80, m->freelist_head);
  st64(b + 88, m->freelist_count);
  st64(b + 96, m->next_cf_id);
  memcpy(b + 104, m->db_id, 16);
  st64(b + 120, m->seq);
  st32(b, cairn_crc32c(0, b + 4, META_SPAN - 4));
}

static int valid_psize(uint32_t ps) {
  return ps >= CAIRN_MIN_PAGE_SIZE && ps <= CAIRN_MAX_PAGE_SIZE &&
         (ps & (ps - 1)) == 0;
}

/* 1 valid, 0 not a meta page, CAIRN_VERSION for a newer format. */
static int meta_decode(const uint8_t *b, uint64_t slot, meta *m) {
  if (memcmp(b + 32, META_MAGIC, 8) != 0)
    return 0;
  if (ld32(b) != cairn_crc32c(0, b + 4, META_SPAN - 4))
    return 0;
  if (ld16(b + 4) != PAGE_META || ld64(b + 8) != slot ||
      ld32(b + 48) != BYTE_ORDER_MARK)
    return 0;
  if (ld32(b + 40) != CAIRN_FORMAT_VERSION)
    return CAIRN_VERSION;
  m->txnid = ld64(b + 16);
  m->page_size = ld32(b + 44);
  m->catalog_depth = ld32(b + 52);
  m->page_count = ld64(b + 56);
  m->catalog_root = ld64(b + 64);
  m->catalog_entries = ld64(b + 72);
  m->freelist_head = ld64(b + 80);
  m->freelist_count = ld64(b + 88);
  m->next_cf_id = ld64(b + 96);
  memcpy(m->db_id, b + 104, 16);
  m->seq = ld64(b + 120);
  if (!valid_psize(m->page_size) || m->page_count < 2 ||
      m->catalog_root >= m->page_count || m->freelist_head >= m->page_count ||
      m->freelist_count >= m->page_count || m->catalog_depth > MAX_DEPTH ||
      (m->catalog_root == 0) != (m->catalog_depth == 0) ||
      m->catalog_root == 1 || m->freelist_head == 1)
    return 0;
  return 1;
}

int meta_read(cairn_file *f, uint64_t file_size, meta *out, int *slot,
              uint32_t *psize) {
  uint8_t b[META_SPAN];
  meta m[2];
  int ok[2] = {0, 0}, version_error = 0, magic_seen = 0;
  int rc = f->methods->read(f, b, META_SPAN, 0);
  if (rc)
    return rc;
  magic_seen |= memcmp(b + 32, META_MAGIC, 8) == 0;
  ok[0] = meta_decode(b, 0, &m[0]);
  if (ok[0] == CAIRN_VERSION) {
    version_error = 1;
    ok[0] = 0;
  }
  /* Slot 1 sits one page in; if slot 0 is damaged, try every page size. */
  for (uint32_t ps = CAIRN_MIN_PAGE_SIZE; ps <= CAIRN_MAX_PAGE_SIZE; ps *= 2) {
    if (ok[0] && ps != m[0].page_size)
      continue;
    if ((uint64_t)ps + META_SPAN > file_size)
      break;
    rc = f->methods->read(f, b, META_SPAN, ps);
    if (rc)
      return rc;
    magic_seen |= memcmp(b + 32, META_MAGIC, 8) == 0;
    int r = meta_decode(b, 1, &m[1]);
    if (r == CAIRN_VERSION) {
      version_error = 1;
      continue;
    }
    if (r == 1 && m[1].page_size == ps) {
      ok[1] = 1;
      break;
    }
  }
  if (!ok[0] && !ok[1]) {
    if (version_error)
      return cairn__seterr(CAIRN_VERSION,
                           "file format version is not %u (newer cairn?)",
                           CAIRN_FORMAT_VERSION);
    if (magic_seen)
      return cairn__seterr(CAIRN_CORRUPT,
                           "both meta pages (0 and 1) fail validation");
    return cairn__seterr(CAIRN_NOTADB, "no cairn meta page found");
  }
  int s = ok[0] && ok[1] ? (m[1].txnid > m[0].txnid ||
                            (m[1].txnid == m[0].txnid && m[1].seq > m[0].seq))
                         : ok[1];
  *out = m[s];
  *slot = s;
  *psize = m[s].page_size;
  if (out->page_count > file_size / out->page_size)
    return cairn__seterr(CAIRN_CORRUPT,
                         "meta page %d: file holds %llu pages, commit %llu "
                         "needs %llu (truncated file)",
                         s, (unsigned long long)(file_size / out->page_size),
                         (unsigned long long)out->txnid,
                         (unsigned long long)out->page_count);
  return CAIRN_OK;
}

int meta_write(cairn_file *f, const meta *m, int slot, uint32_t psize) {
  uint8_t b[META_SPAN];
  meta_encode(m, b, (uint64_t)slot);
  return f->methods->write(f, b, META_SPAN, (uint64_t)slot * psize);
}
