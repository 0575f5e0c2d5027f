/*
 * engine_rocksdb.c — RocksDB (librocksdb-dev, C API rocksdb/c.h) behind the
 * bench interface (engine.h).
 *
 * Configuration: RocksDB's defaults except a block-based table with a 64 MiB
 * LRU block cache and a 10-bit bloom filter (BENCH.md). A write transaction is
 * a WriteBatch written with sync=true (durable) or sync=false (lazy); sync()
 * is rocksdb_flush_wal(sync=true). A read transaction is a snapshot; gets are
 * pinned (no copy), and one iterator serves all scans of a transaction.
 */
#include <stdio.h>
#include <stdlib.h>

#include <rocksdb/c.h>

#include "engine.h"

struct eng {
  rocksdb_t *db;
  rocksdb_options_t *opts;
  rocksdb_block_based_table_options_t *bbto;
  rocksdb_cache_t *cache;
  rocksdb_filterpolicy_t *bloom; /* owned by bbto once set */
  rocksdb_writeoptions_t *wsync, *wlazy;
};

struct eng_txn {
  eng *e;
  rocksdb_writebatch_t *batch; /* write transaction */
  int lazy;
  const rocksdb_snapshot_t *snap; /* read transaction */
  rocksdb_readoptions_t *ropts;
  rocksdb_iterator_t *it;
  rocksdb_pinnableslice_t *pin; /* value of the last get */
};

static int fail(const char *what, char *err) {
  fprintf(stderr, "rocksdb: %s: %s\n", what, err ? err : "failed");
  rocksdb_free(err);
  return -1;
}

#ifndef BENCH_ROCKSDB_VERSION /* CMakeLists.txt reads rocksdb/version.h */
#define BENCH_ROCKSDB_VERSION "unknown"
#endif
static const char *rocksdb_version(void) { return BENCH_ROCKSDB_VERSION; }

static void rdb_free(eng *e) {
  if (e->db)
    rocksdb_close(e->db);
  if (e->wsync)
    rocksdb_writeoptions_destroy(e->wsync);
  if (e->wlazy)
    rocksdb_writeoptions_destroy(e->wlazy);
  if (e->opts)
    rocksdb_options_destroy(e->opts);
  if (e->bbto)
    rocksdb_block_based_options_destroy(e->bbto);
  if (e->cache)
    rocksdb_cache_destroy(e->cache);
  free(e);
}

static int rdb_open(const char *dir, eng **out) {
  eng *e = calloc(1, sizeof *e);
  char *err = NULL;
  if (!e)
    return fail("open", NULL);
  e->opts = rocksdb_options_create();
  rocksdb_options_set_create_if_missing(e->opts, 1);
  e->bbto = rocksdb_block_based_options_create();
  e->cache = rocksdb_cache_create_lru(64u << 20);
  rocksdb_block_based_options_set_block_cache(e->bbto, e->cache);
  e->bloom = rocksdb_filterpolicy_create_bloom(10);
  rocksdb_block_based_options_set_filter_policy(e->bbto, e->bloom);
  rocksdb_options_set_block_based_table_factory(e->opts, e->bbto);
  e->wsync = rocksdb_writeoptions_create();
  rocksdb_writeoptions_set_sync(e->wsync, 1);
  e->wlazy = rocksdb_writeoptions_create();
  rocksdb_writeoptions_set_sync(e->wlazy, 0);
  e->db = rocksdb_open(e->opts, dir, &err);
  if (err) {
    e->db = NULL;
    rdb_free(e);
    return fail("open", err);
  }
  *out = e;
  return 0;
}

static int rdb_sync(eng *e) {
  char *err = NULL;
  rocksdb_flush_wal(e->db, 1, &err);
  return err ? fail("flush_wal", err) : 0;
}

static int rdb_close(eng *e) {
  int rc = rdb_sync(e);
  rdb_free(e);
  return rc;
}

static int rdb_begin(eng *e, int flags, eng_txn **out) {
  eng_txn *t = calloc(1, sizeof *t);
  if (!t)
    return fail("begin", NULL);
  t->e = e;
  if (flags & ENG_WRITE) {
    t->batch = rocksdb_writebatch_create();
    t->lazy = (flags & ENG_LAZY) != 0;
  } else {
    t->snap = rocksdb_create_snapshot(e->db);
    t->ropts = rocksdb_readoptions_create();
    rocksdb_readoptions_set_snapshot(t->ropts, t->snap);
  }
  *out = t;
  return 0;
}

static int rdb_commit(eng_txn *t) {
  eng *e = t->e;
  char *err = NULL;
  if (t->batch) {
    rocksdb_write(e->db, t->lazy ? e->wlazy : e->wsync, t->batch, &err);
    rocksdb_writebatch_destroy(t->batch);
  } else {
    if (t->pin)
      rocksdb_pinnableslice_destroy(t->pin);
    if (t->it)
      rocksdb_iter_destroy(t->it);
    rocksdb_readoptions_destroy(t->ropts);
    rocksdb_release_snapshot(e->db, t->snap);
  }
  free(t);
  return err ? fail("write", err) : 0;
}

static int rdb_put(eng_txn *t, const void *k, size_t kl, const void *v,
                   size_t vl) {
  rocksdb_writebatch_put(t->batch, (const char *)k, kl, (const char *)v, vl);
  return 0;
}

static int rdb_get(eng_txn *t, const void *k, size_t kl, const void **v,
                   size_t *vl) {
  char *err = NULL;
  if (t->pin) {
    rocksdb_pinnableslice_destroy(t->pin);
    t->pin = NULL;
  }
  t->pin = rocksdb_get_pinned(t->e->db, t->ropts, (const char *)k, kl, &err);
  if (err)
    return fail("get", err);
  if (!t->pin)
    return 0;
  *v = rocksdb_pinnableslice_value(t->pin, vl);
  return 1;
}

static int rdb_scan(eng_txn *t, const void *from, size_t fl, size_t limit,
                    eng_scan_fn fn, void *ctx, size_t *count) {
  size_t n = 0;
  char *err = NULL;
  if (!t->it)
    t->it = rocksdb_create_iterator(t->e->db, t->ropts);
  if (from)
    rocksdb_iter_seek(t->it, (const char *)from, fl);
  else
    rocksdb_iter_seek_to_first(t->it);
  while (rocksdb_iter_valid(t->it)) {
    size_t kl, vl;
    const char *k = rocksdb_iter_key(t->it, &kl);
    const char *v = rocksdb_iter_value(t->it, &vl);
    n++;
    if (fn(ctx, k, kl, v, vl))
      break;
    if (limit && n == limit)
      break;
    rocksdb_iter_next(t->it);
  }
  rocksdb_iter_get_error(t->it, &err);
  if (err)
    return fail("iterator", err);
  *count = n;
  return 0;
}

const engine engine_rocksdb = {
    .name = "rocksdb",
    .version = rocksdb_version,
    .config = "defaults + 64 MiB LRU block cache, 10-bit bloom; WriteBatch "
              "per txn, sync=true / false",
    .open = rdb_open,
    .close = rdb_close,
    .sync = rdb_sync,
    .begin = rdb_begin,
    .commit = rdb_commit,
    .put = rdb_put,
    .get = rdb_get,
    .scan = rdb_scan,
};
