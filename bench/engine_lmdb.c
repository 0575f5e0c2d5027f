/*
 * engine_lmdb.c — LMDB (liblmdb-dev) behind the bench interface (engine.h).
 *
 * Configuration: LMDB's default flags (a durable commit syncs data and meta)
 * plus MDB_NOTLS, which only lets a thread hold a read snapshot while it also
 * writes (W9) and does not change durability. LMDB needs a map size chosen up
 * front: 64 GiB of address space here (cairn needs none). A lazy commit sets
 * MDB_NOSYNC for that transaction; sync() is mdb_env_sync(force). Reads are
 * zero-copy from the map; a transaction keeps one cursor for all its scans.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include <lmdb.h>

#include "engine.h"

#define LMDB_MAP_SIZE (64ull << 30)

struct eng {
  MDB_env *env;
  MDB_dbi dbi;
  int nosync; /* MDB_NOSYNC currently set on env */
};

struct eng_txn {
  eng *e;
  MDB_txn *txn;
  MDB_cursor *cur;
};

static int fail(const char *what, int rc) {
  fprintf(stderr, "lmdb: %s: %s\n", what, mdb_strerror(rc));
  return -1;
}

static const char *lmdb_version(void) { return mdb_version(NULL, NULL, NULL); }

static int lmdb_open(const char *dir, eng **out) {
  eng *e = calloc(1, sizeof *e);
  MDB_txn *txn;
  int rc;
  if (!e)
    return fail("open", ENOMEM);
  if ((rc = mdb_env_create(&e->env)) != 0) {
    free(e);
    return fail("env_create", rc);
  }
  if ((rc = mdb_env_set_mapsize(e->env, LMDB_MAP_SIZE)) != 0 ||
      (rc = mdb_env_open(e->env, dir, MDB_NOTLS, 0644)) != 0 ||
      (rc = mdb_txn_begin(e->env, NULL, 0, &txn)) != 0) {
    mdb_env_close(e->env);
    free(e);
    return fail("open", rc);
  }
  if ((rc = mdb_dbi_open(txn, NULL, 0, &e->dbi)) != 0 ||
      (rc = mdb_txn_commit(txn)) != 0) {
    mdb_env_close(e->env);
    free(e);
    return fail("dbi_open", rc);
  }
  *out = e;
  return 0;
}

static int lmdb_sync(eng *e) {
  int rc = mdb_env_sync(e->env, 1);
  return rc == 0 ? 0 : fail("env_sync", rc);
}

static int lmdb_close(eng *e) {
  int rc = mdb_env_sync(e->env, 1);
  mdb_env_close(e->env);
  free(e);
  return rc == 0 ? 0 : fail("close", rc);
}

static int lmdb_begin(eng *e, int flags, eng_txn **out) {
  eng_txn *t = calloc(1, sizeof *t);
  int rc;
  if (!t)
    return fail("begin", ENOMEM);
  if (flags & ENG_WRITE) {
    /* Only the writer touches the sync flags, and only between its own
     * transactions, so this never races with a commit. */
    int want = (flags & ENG_LAZY) != 0;
    if (want != e->nosync) {
      if ((rc = mdb_env_set_flags(e->env, MDB_NOSYNC, want)) != 0) {
        free(t);
        return fail("env_set_flags", rc);
      }
      e->nosync = want;
    }
  }
  rc = mdb_txn_begin(e->env, NULL, (flags & ENG_WRITE) ? 0 : MDB_RDONLY,
                     &t->txn);
  if (rc != 0) {
    free(t);
    return fail("txn_begin", rc);
  }
  t->e = e;
  *out = t;
  return 0;
}

static int lmdb_commit(eng_txn *t) {
  int rc;
  if (t->cur)
    mdb_cursor_close(t->cur);
  rc = mdb_txn_commit(t->txn);
  free(t);
  return rc == 0 ? 0 : fail("txn_commit", rc);
}

static int lmdb_put(eng_txn *t, const void *k, size_t kl, const void *v,
                    size_t vl) {
  MDB_val key = {kl, (void *)k}, val = {vl, (void *)v};
  int rc = mdb_put(t->txn, t->e->dbi, &key, &val, 0);
  return rc == 0 ? 0 : fail("put", rc);
}

static int lmdb_get(eng_txn *t, const void *k, size_t kl, const void **v,
                    size_t *vl) {
  MDB_val key = {kl, (void *)k}, val;
  int rc = mdb_get(t->txn, t->e->dbi, &key, &val);
  if (rc == MDB_NOTFOUND)
    return 0;
  if (rc != 0)
    return fail("get", rc);
  *v = val.mv_data;
  *vl = val.mv_size;
  return 1;
}

static int lmdb_scan(eng_txn *t, const void *from, size_t fl, size_t limit,
                     eng_scan_fn fn, void *ctx, size_t *count) {
  MDB_val key = {fl, (void *)from}, val;
  size_t n = 0;
  int rc;
  if (!t->cur && (rc = mdb_cursor_open(t->txn, t->e->dbi, &t->cur)) != 0)
    return fail("cursor_open", rc);
  rc = mdb_cursor_get(t->cur, &key, &val, from ? MDB_SET_RANGE : MDB_FIRST);
  while (rc == 0) {
    n++;
    if (fn(ctx, key.mv_data, key.mv_size, val.mv_data, val.mv_size))
      break;
    if (limit && n == limit)
      break;
    rc = mdb_cursor_get(t->cur, &key, &val, MDB_NEXT);
  }
  if (rc != 0 && rc != MDB_NOTFOUND)
    return fail("cursor_get", rc);
  *count = n;
  return 0;
}

const engine engine_lmdb = {
    .name = "lmdb",
    .version = lmdb_version,
    .config = "default flags + MDB_NOTLS, 64 GiB map size; lazy = MDB_NOSYNC",
    .open = lmdb_open,
    .close = lmdb_close,
    .sync = lmdb_sync,
    .begin = lmdb_begin,
    .commit = lmdb_commit,
    .put = lmdb_put,
    .get = lmdb_get,
    .scan = lmdb_scan,
};
