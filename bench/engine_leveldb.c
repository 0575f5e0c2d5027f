/*
 * engine_leveldb.c — LevelDB (libleveldb-dev, C API leveldb/c.h) behind the
 * bench interface (engine.h).
 *
 * Configuration: LevelDB's defaults (8 MiB block cache, no bloom filter,
 * snappy). A write transaction is a WriteBatch written with sync=true
 * (durable) or sync=false (lazy); sync() writes an empty batch with
 * sync=true, which syncs the log. A read transaction is a snapshot; gets copy
 * the value (the C API has no pinned get), and one iterator serves all scans
 * of a transaction.
 */
#include <stdio.h>
#include <stdlib.h>

#include <leveldb/c.h>

#include "engine.h"

struct eng {
  leveldb_t *db;
  leveldb_options_t *opts;
  leveldb_writeoptions_t *wsync, *wlazy;
};

struct eng_txn {
  eng *e;
  leveldb_writebatch_t *batch; /* write transaction */
  int lazy;
  const leveldb_snapshot_t *snap; /* read transaction */
  leveldb_readoptions_t *ropts;
  leveldb_iterator_t *it;
  char *val; /* value of the last get */
};

static int fail(const char *what, char *err) {
  fprintf(stderr, "leveldb: %s: %s\n", what, err ? err : "failed");
  leveldb_free(err);
  return -1;
}

static const char *ldb_version(void) {
  static char buf[32];
  snprintf(buf, sizeof buf, "%d.%d", leveldb_major_version(),
           leveldb_minor_version());
  return buf;
}

static void ldb_free(eng *e) {
  if (e->db)
    leveldb_close(e->db);
  if (e->wsync)
    leveldb_writeoptions_destroy(e->wsync);
  if (e->wlazy)
    leveldb_writeoptions_destroy(e->wlazy);
  if (e->opts)
    leveldb_options_destroy(e->opts);
  free(e);
}

static int ldb_open(const char *dir, eng **out) {
  eng *e = calloc(1, sizeof *e);
  char *err = NULL;
  if (!e)
    return fail("open", NULL);
  e->opts = leveldb_options_create();
  leveldb_options_set_create_if_missing(e->opts, 1);
  e->wsync = leveldb_writeoptions_create();
  leveldb_writeoptions_set_sync(e->wsync, 1);
  e->wlazy = leveldb_writeoptions_create();
  leveldb_writeoptions_set_sync(e->wlazy, 0);
  e->db = leveldb_open(e->opts, dir, &err);
  if (err) {
    e->db = NULL;
    ldb_free(e);
    return fail("open", err);
  }
  *out = e;
  return 0;
}

static int ldb_sync(eng *e) {
  char *err = NULL;
  leveldb_writebatch_t *b = leveldb_writebatch_create();
  leveldb_write(e->db, e->wsync, b, &err);
  leveldb_writebatch_destroy(b);
  return err ? fail("sync", err) : 0;
}

static int ldb_close(eng *e) {
  int rc = ldb_sync(e);
  ldb_free(e);
  return rc;
}

static int ldb_begin(eng *e, int flags, eng_txn **out) {
  eng_txn *t = calloc(1, sizeof *t);
  if (!t)
    return fail("begin", NULL);
  t->e = e;
  if (flags & ENG_WRITE) {
    t->batch = leveldb_writebatch_create();
    t->lazy = (flags & ENG_LAZY) != 0;
  } else {
    t->snap = leveldb_create_snapshot(e->db);
    t->ropts = leveldb_readoptions_create();
    leveldb_readoptions_set_snapshot(t->ropts, t->snap);
  }
  *out = t;
  return 0;
}

static int ldb_commit(eng_txn *t) {
  eng *e = t->e;
  char *err = NULL;
  if (t->batch) {
    leveldb_write(e->db, t->lazy ? e->wlazy : e->wsync, t->batch, &err);
    leveldb_writebatch_destroy(t->batch);
  } else {
    leveldb_free(t->val);
    if (t->it)
      leveldb_iter_destroy(t->it);
    leveldb_readoptions_destroy(t->ropts);
    leveldb_release_snapshot(e->db, t->snap);
  }
  free(t);
  return err ? fail("write", err) : 0;
}

static int ldb_put(eng_txn *t, const void *k, size_t kl, const void *v,
                   size_t vl) {
  leveldb_writebatch_put(t->batch, (const char *)k, kl, (const char *)v, vl);
  return 0;
}

static int ldb_get(eng_txn *t, const void *k, size_t kl, const void **v,
                   size_t *vl) {
  char *err = NULL;
  leveldb_free(t->val);
  t->val = leveldb_get(t->e->db, t->ropts, (const char *)k, kl, vl, &err);
  if (err)
    return fail("get", err);
  if (!t->val)
    return 0;
  *v = t->val;
  return 1;
}

static int ldb_scan(eng_txn *t, const void *from, size_t fl, size_t limit,
                    eng_scan_fn fn, void *ctx, size_t *count) {
  size_t n = 0;
  char *err = NULL;
  if (!t->it)
    t->it = leveldb_create_iterator(t->e->db, t->ropts);
  if (from)
    leveldb_iter_seek(t->it, (const char *)from, fl);
  else
    leveldb_iter_seek_to_first(t->it);
  while (leveldb_iter_valid(t->it)) {
    size_t kl, vl;
    const char *k = leveldb_iter_key(t->it, &kl);
    const char *v = leveldb_iter_value(t->it, &vl);
    n++;
    if (fn(ctx, k, kl, v, vl))
      break;
    if (limit && n == limit)
      break;
    leveldb_iter_next(t->it);
  }
  leveldb_iter_get_error(t->it, &err);
  if (err)
    return fail("iterator", err);
  *count = n;
  return 0;
}

const engine engine_leveldb = {
    .name = "leveldb",
    .version = ldb_version,
    .config = "defaults (8 MiB cache, no bloom); WriteBatch per txn, "
              "sync=true / false",
    .open = ldb_open,
    .close = ldb_close,
    .sync = ldb_sync,
    .begin = ldb_begin,
    .commit = ldb_commit,
    .put = ldb_put,
    .get = ldb_get,
    .scan = ldb_scan,
};
