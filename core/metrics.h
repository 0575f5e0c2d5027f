/*
 * metrics.h — counters and latency histograms of one open database.
 *
 * Everything is a relaxed atomic so readers on any thread can count without
 * a lock; a snapshot (cairn_metrics_get) may mix values from moments a few
 * nanoseconds apart, which no counter user can observe.
 */
#ifndef CAIRN_METRICS_H
#define CAIRN_METRICS_H

#include <stdatomic.h>
#include <stdint.h>

#define HISTO_BUCKETS 512

typedef struct histo {
  _Atomic uint64_t bucket[HISTO_BUCKETS];
  _Atomic uint64_t count, sum_ns, max_ns;
} histo;

typedef struct metrics {
  _Atomic uint64_t gets, get_misses, puts, dels;
  _Atomic uint64_t commits, commits_sync, commits_lazy, commits_empty, aborts;
  _Atomic uint64_t syncs, pages_written, bytes_written;
  _Atomic uint64_t last_commit_pages, last_commit_bytes;
  _Atomic uint64_t pages_allocated_new, pages_reused, pages_freed;
  _Atomic uint64_t cache_hits, cache_misses, cache_evictions;
  _Atomic uint64_t checkpoints, bytes_logged, commits_folded;
  _Atomic uint64_t checkpoints_background;
  histo get, put, commit, sync;
} metrics;

#define METRIC_ADD(m, field, n)                                                \
  atomic_fetch_add_explicit(&(m)->field, (uint64_t)(n), memory_order_relaxed)
#define METRIC_SET(m, field, n)                                                \
  atomic_store_explicit(&(m)->field, (uint64_t)(n), memory_order_relaxed)

uint64_t metrics_now_ns(void);
void histo_record(histo *h, uint64_t ns);
/* 1 on every 16th call per thread: which get/put calls to time. */
int metrics_sample(void);

#endif /* CAIRN_METRICS_H */
