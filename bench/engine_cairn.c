/*
 * engine_cairn.c — cairn behind the bench interface (engine.h).
 *
 * Configuration: cairn's defaults (4 KiB pages, mapped reads, no map size to
 * set). A durable commit is cairn_commit_ex(CAIRN_DURABILITY_SYNC); a lazy one
 * CAIRN_DURABILITY_LAZY with the default automatic sync (every 1,000 commits
 * or 1 s). Reads are zero-copy from the map; a transaction keeps one cursor
 * for all its scans.
 */
#include <stdio.h>
#include <stdlib.h>

#include "cairn.h"
#include "engine.h"

struct eng {
  cairn_db *db;
};

struct eng_txn {
  cairn_txn *txn;
  cairn_cursor *cur;
  int lazy;
};

static int fail(const char *what, int rc) {
  fprintf(stderr, "cairn: %s: %s (%s)\n", what, cairn_strerror(rc),
          cairn_errmsg());
  return -1;
}

static const char *cairn_version(void) { return CAIRN_VERSION_STRING; }

static int cairn_eng_open(const char *dir, eng **out) {
  char path[4096];
  cairn_options opts;
  eng *e = calloc(1, sizeof *e);
  int rc;
  if (!e)
    return fail("open", CAIRN_NOMEM);
  snprintf(path, sizeof path, "%s/bench.cairn", dir);
  cairn_options_init(&opts);
  opts.durability = CAIRN_DURABILITY_SYNC;
  if ((rc = cairn_open(path, &opts, &e->db)) != CAIRN_OK) {
    free(e);
    return fail("open", rc);
  }
  *out = e;
  return 0;
}

static int cairn_eng_close(eng *e) {
  int rc = cairn_close(e->db);
  free(e);
  return rc == CAIRN_OK ? 0 : fail("close", rc);
}

static int cairn_eng_sync(eng *e) {
  int rc = cairn_sync(e->db);
  return rc == CAIRN_OK ? 0 : fail("sync", rc);
}

static int cairn_eng_begin(eng *e, int flags, eng_txn **out) {
  eng_txn *t = calloc(1, sizeof *t);
  int rc;
  if (!t)
    return fail("begin", CAIRN_NOMEM);
  rc = cairn_begin(e->db, (flags & ENG_WRITE) ? 0 : CAIRN_TXN_RDONLY, &t->txn);
  if (rc != CAIRN_OK) {
    free(t);
    return fail("begin", rc);
  }
  t->lazy = (flags & ENG_LAZY) != 0;
  *out = t;
  return 0;
}

static int cairn_eng_commit(eng_txn *t) {
  int rc;
  if (t->cur)
    cairn_cursor_close(t->cur);
  rc = cairn_commit_ex(t->txn,
                       t->lazy ? CAIRN_DURABILITY_LAZY : CAIRN_DURABILITY_SYNC);
  free(t);
  return rc == CAIRN_OK ? 0 : fail("commit", rc);
}

static int cairn_eng_put(eng_txn *t, const void *k, size_t kl, const void *v,
                         size_t vl) {
  cairn_slice key = {k, kl}, val = {v, vl};
  int rc = cairn_put(t->txn, CAIRN_DEFAULT_CF, key, val, 0);
  return rc == CAIRN_OK ? 0 : fail("put", rc);
}

static int cairn_eng_get(eng_txn *t, const void *k, size_t kl, const void **v,
                         size_t *vl) {
  cairn_slice key = {k, kl}, val;
  int rc = cairn_get(t->txn, CAIRN_DEFAULT_CF, key, &val);
  if (rc == CAIRN_NOTFOUND)
    return 0;
  if (rc != CAIRN_OK)
    return fail("get", rc);
  *v = val.data;
  *vl = val.size;
  return 1;
}

static int cairn_eng_scan(eng_txn *t, const void *from, size_t fl, size_t limit,
                          eng_scan_fn fn, void *ctx, size_t *count) {
  size_t n = 0;
  int rc;
  if (!t->cur &&
      (rc = cairn_cursor_open(t->txn, CAIRN_DEFAULT_CF, &t->cur)) != CAIRN_OK)
    return fail("cursor_open", rc);
  if (from) {
    cairn_slice key = {from, fl};
    rc = cairn_cursor_seek(t->cur, key);
  } else {
    rc = cairn_cursor_first(t->cur);
  }
  while (rc == CAIRN_OK) {
    cairn_slice k, v;
    if ((rc = cairn_cursor_get(t->cur, &k, &v)) != CAIRN_OK)
      return fail("cursor_get", rc);
    n++;
    if (fn(ctx, k.data, k.size, v.data, v.size))
      break;
    if (limit && n == limit)
      break;
    rc = cairn_cursor_next(t->cur);
  }
  if (rc != CAIRN_OK && rc != CAIRN_NOTFOUND)
    return fail("cursor", rc);
  *count = n;
  return 0;
}

const engine engine_cairn = {
    .name = "cairn",
    .version = cairn_version,
    .config = "defaults: 4 KiB pages, mmap reads, no map size; sync / lazy "
              "commits",
    .open = cairn_eng_open,
    .close = cairn_eng_close,
    .sync = cairn_eng_sync,
    .begin = cairn_eng_begin,
    .commit = cairn_eng_commit,
    .put = cairn_eng_put,
    .get = cairn_eng_get,
    .scan = cairn_eng_scan,
};
