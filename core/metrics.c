/*
 * metrics.c — log-linear latency histograms (8 sub-buckets per power of
 * two, so any percentile is within 1/8 of the truth) and the public
 * cairn_metrics_get snapshot.
 */
#if !defined(_GNU_SOURCE) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#endif
#include "metrics.h"

#include <string.h>
#include <time.h>

#include "engine.h"
#include "error.h"

uint64_t metrics_now_ns(void) {
  struct timespec ts;
  if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
    return 0;
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int metrics_sample(void) {
  static _Thread_local unsigned tick;
  return (++tick & 15) == 0;
}

static unsigned bucket_of(uint64_t v) {
  if (v < 8)
    return (unsigned)v;
  unsigned e = 63u - (unsigned)__builtin_clzll(v); /* >= 3 */
  unsigned sub = (unsigned)(v >> (e - 3)) & 7u;
  unsigned b = 8u + (e - 3u) * 8u + sub;
  return b < HISTO_BUCKETS ? b : HISTO_BUCKETS - 1;
}

/* The middle of a bucket's range. */
static uint64_t bucket_value(unsigned b) {
  if (b < 8)
    return b;
  unsigned e = (b - 8u) / 8u + 3u, sub = (b - 8u) % 8u;
  uint64_t lo = (8ull + sub) << (e - 3);
  return lo + ((1ull << (e - 3)) >> 1);
}

void histo_record(histo *h, uint64_t ns) {
  atomic_fetch_add_explicit(&h->bucket[bucket_of(ns)], 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&h->sum_ns, ns, memory_order_relaxed);
  uint64_t m = atomic_load_explicit(&h->max_ns, memory_order_relaxed);
  while (ns > m &&
         !atomic_compare_exchange_weak_explicit(
             &h->max_ns, &m, ns, memory_order_relaxed, memory_order_relaxed)) {
  }
}

static void summarize(histo *h, cairn_latency *out) {
  uint64_t counts[HISTO_BUCKETS], total = 0;
  for (unsigned i = 0; i < HISTO_BUCKETS; i++) {
    counts[i] = atomic_load_explicit(&h->bucket[i], memory_order_relaxed);
    total += counts[i];
  }
  memset(out, 0, sizeof *out);
  out->count = total;
  if (!total)
    return;
  out->mean_ns = atomic_load_explicit(&h->sum_ns, memory_order_relaxed) /
                 (atomic_load_explicit(&h->count, memory_order_relaxed)
                      ? atomic_load_explicit(&h->count, memory_order_relaxed)
                      : 1);
  out->max_ns = atomic_load_explicit(&h->max_ns, memory_order_relaxed);
  /* rank = ceil(q * total) for q = 0.5, 0.99, 0.999 */
  uint64_t want[3] = {(total + 1) / 2, (total * 99 + 99) / 100,
                      (total * 999 + 999) / 1000};
  uint64_t *dst[3] = {&out->p50_ns, &out->p99_ns, &out->p999_ns};
  uint64_t seen = 0;
  unsigned q = 0;
  for (unsigned i = 0; i < HISTO_BUCKETS && q < 3; i++) {
    seen += counts[i];
    while (q < 3 && seen >= want[q]) {
      uint64_t v = bucket_value(i);
      *dst[q++] = v < out->max_ns ? v : out->max_ns;
    }
  }
}

#define GET(f) atomic_load_explicit(&m->f, memory_order_relaxed)

int cairn_metrics_get(cairn_db *db, cairn_metrics *out) {
  if (!db || !out)
    return cairn__seterr(CAIRN_INVALID, "cairn_metrics_get: NULL argument");
  metrics *m = &db->metrics;
  memset(out, 0, sizeof *out);
  out->gets = GET(gets);
  out->get_misses = GET(get_misses);
  out->puts = GET(puts);
  out->dels = GET(dels);
  out->commits = GET(commits);
  out->commits_sync = GET(commits_sync);
  out->commits_lazy = GET(commits_lazy);
  out->commits_empty = GET(commits_empty);
  out->aborts = GET(aborts);
  out->syncs = GET(syncs);
  out->pages_written = GET(pages_written);
  out->bytes_written = GET(bytes_written);
  out->last_commit_pages = GET(last_commit_pages);
  out->last_commit_bytes = GET(last_commit_bytes);
  out->pages_allocated_new = GET(pages_allocated_new);
  out->pages_reused = GET(pages_reused);
  out->pages_freed = GET(pages_freed);
  out->cache_hits = GET(cache_hits);
  out->cache_misses = GET(cache_misses);
  out->cache_evictions = GET(cache_evictions);
  out->checkpoints = GET(checkpoints);
  out->bytes_logged = GET(bytes_logged);
  out->commits_folded = GET(commits_folded);
  out->checkpoints_background = GET(checkpoints_background);
  summarize(&m->get, &out->get);
  summarize(&m->put, &out->put);
  summarize(&m->commit, &out->commit);
  summarize(&m->sync, &out->sync);
  cairn__clearerr();
  return CAIRN_OK;
}
