/*
 * test_api.c — unit tests of every public function of cairn.h and of every
 * documented error path: options and open/close (page sizes, missing files,
 * foreign bytes, writer locks, read-only), transactions and snapshot
 * isolation, column families, data limits (empty keys, 1024/1025-byte keys,
 * values from 0 B to 64 MiB), misuse (NULL handles and arguments), cursors
 * (ends, seeks, bounds, prefixes incl. 0xff 0xff, iteration while the write
 * transaction modifies the tree), lazy durability, statistics, the integrity
 * check, status strings and free-page reuse. Mostly on the "memory" platform;
 * the real-file behaviour (mmap reads, flock) on "unix" where it exists.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn.h"
#include "fault_platform.h"
#include "platform.h"
#include "test_util.h"

#include "test_support.h"

#define MEM "memory"

/* ---- helpers ------------------------------------------------------------- */

static int open_db(const char *plat, const char *path, uint32_t psize,
                   uint32_t flags, cairn_db **db) {
  cairn_options o;
  ts_options(&o, plat, psize);
  o.flags = flags;
  return cairn_open(path, &o, db);
}

static cairn_db *open_new(const char *path, uint32_t psize) {
  cairn_db *db = NULL;
  if (!CHECK_OK(open_db(MEM, path, psize, CAIRN_OPEN_CREATE, &db)))
    return NULL;
  return db;
}

static cairn_db *reopen(cairn_db *db, const char *path) {
  cairn_db *ndb = NULL;
  CHECK_OK(cairn_close(db));
  CHECK_OK(open_db(MEM, path, 0, 0, &ndb));
  return ndb;
}

static int put_s(cairn_txn *t, cairn_cf cf, const char *k, const char *v) {
  return cairn_put(t, cf, ts_str(k), ts_str(v), 0);
}

/* 1 if key k in cf holds exactly v (NULL: absent). */
static int has(cairn_txn *t, cairn_cf cf, const char *k, const char *v) {
  cairn_slice val = {0, 0};
  int rc = cairn_get(t, cf, ts_str(k), &val);
  if (!v)
    return rc == CAIRN_NOTFOUND;
  return rc == CAIRN_OK && val.size == strlen(v) &&
         memcmp(val.data, v, val.size) == 0;
}

static void report_cb(void *ctx, const char *problem) {
  int *n = ctx;
  (*n)++;
  printf("    check reported: %s\n", problem);
}

/* cairn_check is clean and reports nothing. */
static int check_clean(cairn_db *db) {
  int n = 0;
  int ok = CHECK_OK(cairn_check(db, report_cb, &n));
  ok &= CHECK(n == 0);
  return ok;
}

typedef struct list_ctx {
  int n, stop_after;
  char names[16][CAIRN_MAX_CF_NAME + 1];
  cairn_cf cfs[16];
} list_ctx;

static int list_cb(void *ctx, const char *name, cairn_cf cf) {
  list_ctx *l = ctx;
  if (l->n < 16) {
    snprintf(l->names[l->n], sizeof l->names[l->n], "%s", name);
    l->cfs[l->n] = cf;
  }
  l->n++;
  if (l->stop_after && l->n >= l->stop_after)
    return 7;
  return 0;
}

static uint64_t cf_entries(cairn_txn *t, cairn_cf cf) {
  cairn_cf_stat st;
  memset(&st, 0xab, sizeof st);
  if (!CHECK_OK(cairn_cf_stat_get(t, cf, &st)))
    return (uint64_t)-1;
  return st.entries;
}

/* ---- status strings and messages ------------------------------------------
 */

static void test_strerror(void) {
  const int codes[] = {
      CAIRN_OK,      CAIRN_NOTFOUND, CAIRN_EXISTS, CAIRN_BUSY,
      CAIRN_CORRUPT, CAIRN_IO,       CAIRN_NOSPC,  CAIRN_NOMEM,
      CAIRN_INVALID, CAIRN_READONLY, CAIRN_TOOBIG, CAIRN_BADTXN,
      CAIRN_NOTADB,  CAIRN_VERSION,  CAIRN_INUSE,  CAIRN_NOTSUPP};
  const char *names[] = {
      "CAIRN_OK",      "CAIRN_NOTFOUND", "CAIRN_EXISTS", "CAIRN_BUSY",
      "CAIRN_CORRUPT", "CAIRN_IO",       "CAIRN_NOSPC",  "CAIRN_NOMEM",
      "CAIRN_INVALID", "CAIRN_READONLY", "CAIRN_TOOBIG", "CAIRN_BADTXN",
      "CAIRN_NOTADB",  "CAIRN_VERSION",  "CAIRN_INUSE",  "CAIRN_NOTSUPP"};
  size_t n = sizeof codes / sizeof codes[0];
  for (size_t i = 0; i < n; i++) {
    const char *s = cairn_strerror(codes[i]);
    size_t nl = strlen(names[i]);
    CHECK(s != NULL);
    if (!s)
      continue;
    /* Named by its own code name, then a description. */
    CHECK(strncmp(s, names[i], nl) == 0 && (s[nl] == ':' || s[nl] == 0));
    CHECK(strlen(s) > nl + 2);
    for (size_t j = 0; j < i; j++)
      CHECK(strcmp(s, cairn_strerror(codes[j])) != 0);
  }
  CHECK(cairn_strerror(-999) != NULL && strlen(cairn_strerror(-999)) > 0);
  CHECK(cairn_strerror(12345) != NULL);
}

static void test_errmsg(void) {
  cairn_db *db = NULL;
  cairn_platform_memory_reset();
  CHECK(cairn_errmsg() != NULL);
  CHECK_RC(open_db(MEM, "missing.db", 0, 0, &db), CAIRN_NOTFOUND);
  CHECK(db == NULL);
  CHECK(strlen(cairn_errmsg()) > 0);
  CHECK_RC(cairn_begin(NULL, 0, NULL), CAIRN_INVALID);
  CHECK(strlen(cairn_errmsg()) > 0);
  /* Errors from an open database carry messages too. */
  db = open_new("msg.db", 0);
  if (!db)
    return;
  cairn_txn *t = NULL;
  CHECK_RC(cairn_begin(db, CAIRN_TXN_RDONLY, &t), CAIRN_OK);
  CHECK_RC(put_s(t, CAIRN_DEFAULT_CF, "k", "v"), CAIRN_READONLY);
  CHECK(strlen(cairn_errmsg()) > 0);
  char big[CAIRN_MAX_KEY_SIZE + 1];
  memset(big, 1, sizeof big);
  cairn_slice v;
  int rc = cairn_get(t, CAIRN_DEFAULT_CF, ts_sl(big, sizeof big), &v);
  if (rc != CAIRN_NOTFOUND)
    CHECK(strlen(cairn_errmsg()) > 0);
  cairn_abort(t);
  CHECK_OK(cairn_close(db));
}

static void test_options_defaults(void) {
  cairn_options o;
  memset(&o, 0x5a, sizeof o);
  cairn_options_init(&o);
  CHECK(o.flags == CAIRN_OPEN_CREATE);
  CHECK(o.durability == CAIRN_DURABILITY_SYNC);
  CHECK(o.platform == NULL);
  CHECK(o.page_size == 0 || (o.page_size >= CAIRN_MIN_PAGE_SIZE &&
                             o.page_size <= CAIRN_MAX_PAGE_SIZE &&
                             (o.page_size & (o.page_size - 1)) == 0));

  /* Defaults plus the memory platform: a working database. */
  cairn_platform_memory_reset();
  cairn_db *db = NULL;
  o.platform = MEM;
  if (!CHECK_OK(cairn_open("defaults.db", &o, &db)))
    return;
  cairn_db_stat st;
  if (CHECK_OK(cairn_db_stat_get(db, &st))) {
    CHECK(st.page_size >= CAIRN_MIN_PAGE_SIZE &&
          st.page_size <= CAIRN_MAX_PAGE_SIZE &&
          (st.page_size & (st.page_size - 1)) == 0);
    CHECK(st.platform && strcmp(st.platform, MEM) == 0);
    CHECK(st.mapped == 0); /* the memory platform cannot map */
    CHECK(st.snapshots == 0 && st.oldest_snapshot_id == 0);
  }
  cairn_txn *t = NULL;
  CHECK_OK(cairn_begin(db, 0, &t));
  CHECK_OK(put_s(t, CAIRN_DEFAULT_CF, "a", "1"));
  CHECK_OK(cairn_commit(t));
  check_clean(db);
  CHECK_OK(cairn_close(db));
}

static void test_page_sizes(void) {
  const uint32_t good[] = {4096, 8192, 16384, 32768, 65536};
  const uint32_t bad[] = {1,    512,   1024,  2048,   4095,
                          4097, 12288, 65535, 131072, 1u << 20};
  cairn_platform_memory_reset();
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
    char path[64];
    cairn_db *db = NULL;
    snprintf(path, sizeof path, "ps%u.db", good[i]);
    if (!CHECK_OK(open_db(MEM, path, good[i], CAIRN_OPEN_CREATE, &db)))
      continue;
    cairn_txn *t = NULL;
    CHECK_OK(cairn_begin(db, 0, &t));
    for (int k = 0; k < 300; k++) {
      char key[32], val[64];
      snprintf(key, sizeof key, "key%05d", k);
      snprintf(val, sizeof val, "value-%d-%u", k, good[i]);
      CHECK_OK(put_s(t, CAIRN_DEFAULT_CF, key, val));
    }
    CHECK_OK(cairn_commit(t));
    cairn_db_stat st;
    if (CHECK_OK(cairn_db_stat_get(db, &st)))
      CHECK(st.page_size == good[i]);
    CHECK_OK(cairn_close(db));
    /* Reopen asking for another page size: the file's own size wins. */
    db = NULL;
    uint32_t other = good[i] == 4096 ? 65536 : 4096;
    if (!CHECK_OK(open_db(MEM, path, other, 0, &db)))
      continue;
    if (CHECK_OK(cairn_db_stat_get(db, &st)))
      CHECK(st.page_size == good[i]);
    CHECK_OK(cairn_begin(db, CAIRN_TXN_RDONLY, &t));
    CHECK(has(t, CAIRN_DEFAULT_CF, "key00000", NULL) == 0);
    char val[64];
    snprintf(val, sizeof val, "value-%d-%u", 299, good[i]);
    CHECK(has(t, CAIRN_DEFAULT_CF, "key00299", val));
    CHECK(cf_entries(t, CAIRN_DEFAULT_CF) == 300);
    cairn_abort(t);
    check_clean(db);
    CHECK_OK(cairn_close(db));
  }
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    cairn_db *db = (cairn_db *)1;
    char path[64];
    snprintf(path, sizeof path, "bad%u.db", bad[i]);
    CHECK_RC(open_db(MEM, path, bad[i], CAIRN_OPEN_CREATE, &db), CAIRN_INVALID);
    CHECK(db == NULL);
    /* Nothing was created. */
    CHECK_RC(open_db(MEM, path, 0, 0, &db), CAIRN_NOTFOUND);
  }
}

static void test_open_missing(void) {
  cairn_db *db = (cairn_db *)1;
  cairn_platform_memory_reset();
  CHECK_RC(open_db(MEM, "nothere.db", 0, 0, &db), CAIRN_NOTFOUND);
  CHECK(db == NULL);
  db = (cairn_db *)1;
  CHECK_RC(open_db(MEM, "nothere.db", 0, CAIRN_OPEN_RDONLY, &db),
           CAIRN_NOTFOUND);
  CHECK(db == NULL);
  /* Unknown platform name. */
  cairn_options o;
  cairn_options_init(&o);
  o.platform = "no-such-platform";
  db = (cairn_db *)1;
  CHECK(cairn_open("x.db", &o, &db) != CAIRN_OK);
  CHECK(db == NULL);
}

static void test_open_foreign_bytes(void) {
  const size_t sizes[] = {0, 1, 100, 4095, 4096, 8192, 16384, 65536, 200000};
  ts_rng r;
  ts_rng_seed(&r, 42);
  cairn_platform_memory_reset();
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    for (int fill = 0; fill < 3; fill++) {
      size_t n = sizes[i];
      uint8_t *buf = malloc(n ? n : 1);
      for (size_t j = 0; j < n; j++)
        buf[j] = fill == 0   ? (uint8_t)ts_next(&r)
                 : fill == 1 ? 0
                             : (uint8_t)(j * 7);
      char path[64];
      snprintf(path, sizeof path, "foreign-%zu-%d", n, fill);
      CHECK_OK(ts_file_write(MEM, path, buf, n));
      for (int mode = 0; mode < 3; mode++) {
        uint32_t flags = mode == 0   ? 0
                         : mode == 1 ? CAIRN_OPEN_RDONLY
                                     : CAIRN_OPEN_CREATE;
        cairn_db *db = (cairn_db *)1;
        int rc = open_db(MEM, path, 0, flags, &db);
        /* An empty file may be taken as "not yet created" with CREATE. */
        if (n == 0 && mode == 2 && rc == CAIRN_OK) {
          CHECK(db != NULL);
          check_clean(db);
          CHECK_OK(cairn_close(db));
          CHECK_OK(ts_file_write(MEM, path, buf, n));
          continue;
        }
        if (!CHECK(rc == CAIRN_NOTADB || rc == CAIRN_CORRUPT))
          printf("    foreign file of %zu bytes (fill %d, mode %d): %s\n", n,
                 fill, mode, cairn_strerror(rc));
        else
          CHECK(strlen(cairn_errmsg()) > 0);
        CHECK(db == NULL || rc == CAIRN_OK);
        if (rc == CAIRN_OK)
          cairn_close(db);
        /* Opening never modifies a file that is not a database. */
        uint8_t *after = NULL;
        size_t an = 0;
        if (CHECK_OK(ts_file_read(MEM, path, &after, &an)))
          CHECK(an == n && (n == 0 || memcmp(after, buf, n) == 0));
        free(after);
      }
      free(buf);
    }
  }
}

static void test_busy_and_readonly(void) {
  cairn_db *db = NULL, *db2 = (cairn_db *)1, *ro = NULL, *ro2 = NULL;
  cairn_txn *t = NULL;
  cairn_platform_memory_reset();
  db = open_new("lock.db", 0);
  if (!db)
    return;
  CHECK_OK(cairn_begin(db, 0, &t));
  CHECK_OK(put_s(t, CAIRN_DEFAULT_CF, "k", "v"));
  CHECK_OK(cairn_commit(t));
  /* A second writer handle on the same file is refused. */
  CHECK_RC(open_db(MEM, "lock.db", 0, 0, &db2), CAIRN_BUSY);
  CHECK(db2 == NULL);
  CHECK(strlen(cairn_errmsg()) > 0);
  db2 = (cairn_db *)1;
  CHECK_RC(open_db(MEM, "lock.db", 0, CAIRN_OPEN_CREATE, &db2), CAIRN_BUSY);
  CHECK(db2 == NULL);
  CHECK_OK(cairn_close(db));
  /* Once closed the file opens again. */
  db2 = NULL;
  if (CHECK_OK(open_db(MEM, "lock.db", 0, 0, &db2)))
    CHECK_OK(cairn_close(db2));

  /* Read-only: two at once, reads work, every write is refused. */
  if (!CHECK_OK(open_db(MEM, "lock.db", 0, CAIRN_OPEN_RDONLY, &ro)))
    return;
  if (CHECK_OK(open_db(MEM, "lock.db", 0, CAIRN_OPEN_RDONLY, &ro2)))
    CHECK_OK(cairn_close(ro2));
  t = (cairn_txn *)1;
  CHECK_RC(cairn_begin(ro, 0, &t), CAIRN_READONLY);
  CHECK(t == NULL);
  CHECK_OK(cairn_begin(ro, CAIRN_TXN_RDONLY, &t));
  CHECK(has(t, CAIRN_DEFAULT_CF, "k", "v"));
  cairn_cf cf = 99;
  CHECK_RC(cairn_cf_open(t, "newcf", CAIRN_CF_CREATE, &cf), CAIRN_READONLY);
  CHECK_RC(put_s(t, CAIRN_DEFAULT_CF, "x", "y"), CAIRN_READONLY);
  cairn_abort(t);
  CHECK_OK(cairn_sync(ro));
  check_clean(ro);
  cairn_db_stat st;
  if (CHECK_OK(cairn_db_stat_get(ro, &st)))
    CHECK(st.last_txn_id >= 1);
  CHECK_OK(cairn_close(ro));
}

/* ---- transactions -------------------------------------------------------- */

static void test_txn_basics(void) {
  cairn_db *db;
  cairn_txn *w = NULL, *r1 = NULL, *r2 = NULL;
  cairn_platform_memory_reset();
  db = open_new("txn.db", 0);
  if (!db)
    return;

  CHECK_OK(cairn_begin(db, CAIRN_TXN_RDONLY, &r1));
  uint64_t id0 = cairn_txn_id(r1);
  cairn_db_stat st;
  if (CHECK_OK(cairn_db_stat_get(db, &st))) {
    CHECK(st.last_txn_id == id0);
    CHECK(st.snapshots == 1);
    CHECK(st.oldest_snapshot_id == id0);
  }

  CHECK_OK(cairn_begin(db, 0, &w));
  uint64_t wid = cairn_txn_id(w);
  CHECK(wid > id0);
  CHECK_OK(put_s(w, CAIRN_DEFAULT_CF, "a", "1"));
  CHECK(has(w, CAIRN_DEFAULT_CF, "a", "1")); /* sees its own write */
  CHECK(has(r1, CAIRN_DEFAULT_CF, "a", NULL));
  CHECK_OK(cairn_commit(w));
  /* The old snapshot still does not see it; a new one does. */
  CHECK(has(r1, CAIRN_DEFAULT_CF, "a", NULL));
  CHECK_OK(cairn_begin(db, CAIRN_TXN_RDONLY, &r2));
  CHECK(cairn_txn_id(r2) == wid);
  CHECK(has(r2, CAIRN_DEFAULT_CF, "a", "1"));
  if (CHECK_OK(cairn_db_stat_get(db, &st))) {
    CHECK(st.snapshots == 2);
    CHECK(st.oldest_snapshot_id == id0);
    CHECK(st.last_txn_id == wid);
  }
  cairn_abort(r1);
  if (CHECK_OK(cairn_db_stat_get(db, &st))) {
    CHECK(st.snapshots == 1);
    CHECK(st.oldest_snapshot_id == wid);
  }

  /* Abort discards everything, including deletes. */
  CHECK_OK(cairn_begin(db, 0, &w));
  CHECK_OK(put_s(w, CAIRN_DEFAULT_CF, "b", "2"));
  CHECK_OK(cairn_del(w, CAIRN_DEFAULT_CF, ts_str("a")));
  CHECK(has(w, CAIRN_DEFAULT_CF, "a", NULL));
  cairn_abort(w);
  CHECK_OK(cairn_begin(db, 0, &w));
  CHECK(has(w, CAIRN_DEFAULT_CF, "a", "1"));
  CHECK(has(w, CAIRN_DEFAULT_CF, "b", NULL));
  /* Ids only move forward, also past an aborted transaction. */
  uint64_t wid2 = cairn_txn_id(w);
  CHECK(wid2 > wid);
  CHECK_OK(put_s(w, CAIRN_DEFAULT_CF, "c", "3"));
  CHECK_OK(cairn_commit_ex(w, CAIRN_DURABILITY_SYNC));
  CHECK(has(r2, CAIRN_DEFAULT_CF, "c", NULL));
  cairn_abort(r2);

  CHECK_OK(cairn_begin(db, 0, &w));
  uint64_t wid3 = cairn_txn_id(w);
  CHECK(wid3 > wid2);
  CHECK_OK(put_s(w, CAIRN_DEFAULT_CF, "d", "4"));
  CHECK_OK(cairn_commit_ex(w, CAIRN_DURABILITY_LAZY));
  if (CHECK_OK(cairn_db_stat_get(db, &st))) {
    CHECK(st.last_txn_id == wid3);
    CHECK(st.durable_txn_id <= st.last_txn_id);
    CHECK(st.durable_txn_id >= wid2);
  }
  CHECK_OK(cairn_sync(db));
  if (CHECK_OK(cairn_db_stat_get(db, &st)))
    CHECK(st.durable_txn_id == wid3);
  CHECK_OK(cairn_sync(db)); /* nothing pending: a no-op */

  /* A commit with no changes is fine. */
  CHECK_OK(cairn_begin(db, 0, &w));
  CHECK_OK(cairn_commit(w));

  /* Committing a read transaction ends it (and frees it). */
  CHECK_OK(cairn_begin(db, CAIRN_TXN_RDONLY, &r1));
  int rc = cairn_commit(r1);
  CHECK(rc == CAIRN_OK || rc == CAIRN_READONLY);
  if (CHECK_OK(cairn_db_stat_get(db, &st)))
    CHECK(st.snapshots == 0 && st.oldest_snapshot_id == 0);

  /* An invalid durability value is refused, and the txn is still freed. */
  CHECK_OK(cairn_begin(db, 0, &w));
  CHECK_OK(put_s(w, CAIRN_DEFAULT_CF, "e", "5"));
  CHECK_RC(cairn_commit_ex(w, (cairn_durability)77), CAIRN_INVALID);
  CHECK_OK(cairn_begin(db, 0, &w)); /* the writer slot is free again */
  CHECK(has(w, CAIRN_DEFAULT_CF, "e", NULL));
  cairn_abort(w);

  /* Argument errors inside a write txn do not poison it. */
  CHECK_OK(cairn_begin(db, 0, &w));
  char big[CAIRN_MAX_KEY_SIZE + 1];
  memset(big, 'k', sizeof big);
  CHECK_RC(
      cairn_put(w, CAIRN_DEFAULT_CF, ts_sl(big, sizeof big), ts_str("v"), 0),
      CAIRN_TOOBIG);
  CHECK_RC(cairn_del(w, CAIRN_DEFAULT_CF, ts_str("zzz")), CAIRN_NOTFOUND);
  CHECK_RC(cairn_put(w, CAIRN_DEFAULT_CF, ts_str("a"), ts_str("x"),
                     CAIRN_PUT_NOOVERWRITE),
           CAIRN_EXISTS);
  CHECK_OK(put_s(w, CAIRN_DEFAULT_CF, "f", "6"));
  CHECK_OK(cairn_commit(w));
  CHECK_OK(cairn_begin(db, CAIRN_TXN_RDONLY, &r1));
  CHECK(has(r1, CAIRN_DEFAULT_CF, "f", "6"));
  CHECK(has(r1, CAIRN_DEFAULT_CF, "a", "1"));
  cairn_abort(r1);

  /* close aborts transactions still open. */
  CHECK_OK(cairn_begin(db, 0, &w));
  CHECK_OK(put_s(w, CAIRN_DEFAULT_CF, "g", "7"));
  CHECK_OK(cairn_begin(db, CAIRN_TXN_RDONLY, &r1));
  db = reopen(db, "txn.db");
  if (!db)
    return;
  CHECK_OK(cairn_begin(db, CAIRN_TXN_RDONLY, &r1));
  CHECK(has(r1, CAIRN_DEFAULT_CF, "g", NULL));
  CHECK(has(r1, CAIRN_DEFAULT_CF, "d", "4"));
  CHECK(has(r1, CAIRN_DEFAULT_CF, "c", "3"));
  CHECK(cairn_txn_id(r1) >= wid3);
  cairn_abort(r1);
  check_clean(db);
  CHECK_OK(cairn_close(db));
}

/* ---- column families ----------------------------------------------------- */

static void test_cf(void) {
  cairn_db *db;
  cairn_txn *t = NULL, *r = NULL;
  cairn_cf users = 0, again = 0, tmp = 0, dflt = 77;
  cairn_slice v;
  cairn_platform_memory_reset();
  db = open_new("cf.db", 0);
  if (!db)
    return;

  CHECK_OK(cairn_begin(db, 0, &t));
  CHECK_OK(cairn_cf_open(t, "default", 0, &dflt));
  CHECK(dflt == CAIRN_DEFAULT_CF);
  CHECK_RC(cairn_cf_open(t, "users", 0, &users), CAIRN_NOTFOUND);
  CHECK_OK(cairn_cf_open(t, "users", CAIRN_CF_CREATE, &users));
  CHECK(users != CAIRN_DEFAULT_CF);
  CHECK_OK(cairn_cf_open(t, "users", 0, &again));
  CHECK(again == users);
  CHECK_OK(cairn_cf_open(t, "users", CAIRN_CF_CREATE, &again));
  CHECK(again == users);
  /* Same key, different column families. */
  CHECK_OK(put_s(t, users, "k", "in-users"));
  CHECK_OK(put_s(t, CAIRN_DEFAULT_CF, "k", "in-default"));
  CHECK(has(t, users, "k", "in-users"));
  CHECK(has(t, CAIRN_DEFAULT_CF, "k", "in-default"));
  CHECK_OK(cairn_commit(t));

  /* Reopen by name in a later transaction: the same handle. */
  CHECK_OK(cairn_begin(db, CAIRN_TXN_RDONLY, &r));
  CHECK_OK(cairn_cf_open(r, "users", 0, &again));
  CHECK(again == users);
  CHECK(has(r, users, "k", "in-users"));
  /* The handle is valid without opening it again in this txn too. */
  cairn_abort(r);
  CHECK_OK(cairn_begin(db, CAIRN_TXN_RDONLY, &r));
  CHECK(has(r, users, "k", "in-users"));
  cairn_abort(r);

  /* Create inside a txn, abort: the cf is gone and its handle is dead. */
  CHECK_OK(cairn_begin(db, 0, &t));
  CHECK_OK(cairn_cf_open(t, "temp", CAIRN_CF_CREATE, &tmp));
  CHECK_OK(put_s(t, tmp, "x", "y"));
  cairn_abort(t);
  CHECK_OK(cairn_begin(db, 0, &t));
  CHECK_RC(cairn_cf_open(t, "temp", 0, &again), CAIRN_NOTFOUND);
  if (tmp != users && tmp != CAIRN_DEFAULT_CF) {
    CHECK_RC(cairn_get(t, tmp, ts_str("x"), &v), CAIRN_NOTFOUND);
    CHECK_RC(put_s(t, tmp, "x", "y"), CAIRN_NOTFOUND);
  }
  cairn_abort(t);

  /* Survives reopening the database. */
  db = reopen(db, "cf.db");
  if (!db)
    return;
  CHECK_OK(cairn_begin(db, 0, &t));
  CHECK_OK(cairn_cf_open(t, "users", 0, &users));
  CHECK(has(t, users, "k", "in-users"));
  CHECK(has(t, CAIRN_DEFAULT_CF, "k", "in-default"));
  CHECK_RC(cairn_cf_open(t, "temp", 0, &again), CAIRN_NOTFOUND);

  /* Names: empty, too long, NULL, exactly 255 bytes. */
  char name[300];
  memset(name, 'n', sizeof name);
  name[256] = 0;
  CHECK_RC(cairn_cf_open(t, name, CAIRN_CF_CREATE, &again), CAIRN_INVALID);
  name[255] = 0;
  cairn_cf longcf = 0;
  CHECK_OK(cairn_cf_open(t, name, CAIRN_CF_CREATE, &longcf));
  CHECK_OK(put_s(t, longcf, "lk", "lv"));
  CHECK_RC(cairn_cf_open(t, "", CAIRN_CF_CREATE, &again), CAIRN_INVALID);
  CHECK_RC(cairn_cf_open(t, NULL, CAIRN_CF_CREATE, &again), CAIRN_INVALID);
  CHECK_RC(cairn_cf_open(t, "users", 0, NULL), CAIRN_INVALID);

  /* Dropping the default cf is refused. */
  CHECK_RC(cairn_cf_drop(t, CAIRN_DEFAULT_CF), CAIRN_INVALID);
  CHECK(has(t, CAIRN_DEFAULT_CF, "k", "in-default"));

  /* Drop with a cursor open on it: CAIRN_INUSE; after closing it: fine. */
  cairn_cursor *c = NULL;
  CHECK_OK(cairn_cursor_open(t, users, &c));
  CHECK_RC(cairn_cf_drop(t, users), CAIRN_INUSE);
  CHECK(has(t, users, "k", "in-users"));
  CHECK_OK(cairn_cursor_first(c));
  cairn_cursor_close(c);
  CHECK_OK(cairn_cf_drop(t, users));
  /* A dropped cf's handle is dead, in this txn already. */
  CHECK_RC(cairn_get(t, users, ts_str("k"), &v), CAIRN_NOTFOUND);
  CHECK_RC(put_s(t, users, "k", "again"), CAIRN_NOTFOUND);
  CHECK_RC(cairn_cf_drop(t, users), CAIRN_NOTFOUND);
  CHECK_RC(cairn_cf_open(t, "users", 0, &again), CAIRN_NOTFOUND);
  CHECK_OK(cairn_commit(t));

  CHECK_OK(cairn_begin(db, CAIRN_TXN_RDONLY, &r));
  CHECK_RC(cairn_cf_open(r, "users", 0, &again), CAIRN_NOTFOUND);
  CHECK_RC(cairn_get(r, users, ts_str("k"), &v), CAIRN_NOTFOUND);
  CHECK_OK(cairn_cf_open(r, name, 0, &again));
  CHECK(again == longcf);
  CHECK(has(r, longcf, "lk", "lv"));
  cairn_abort(r);

  /* Re-create a dropped name: it starts empty. Drop+create in one txn. */
  CHECK_OK(cairn_begin(db, 0, &t));
  CHECK_OK(cairn_cf_open(t, "users", CAIRN_CF_CREATE, &users));
  CHECK(has(t, users, "k", NULL));
  CHECK(cf_entries(t, users) == 0);
  CHECK_OK(put_s(t, users, "k2", "v2"));
  CHECK_OK(cairn_cf_drop(t, users));
  CHECK_OK(cairn_cf_open(t, "users", CAIRN_CF_CREATE, &users));
  CHECK(has(t, users, "k2", NULL));
  CHECK_OK(put_s(t, users, "k3", "v3"));
  CHECK_OK(cairn_commit(t));
  /* Drop then abort: the cf and its data come back. */
  CHECK_OK(cairn_begin(db, 0, &t));
  CHECK_OK(cairn_cf_drop(t, users));
  cairn_abort(t);
  CHECK_OK(cairn_begin(db, CAIRN_TXN_RDONLY, &r));
  CHECK_OK(cairn_cf_open(r, "users", 0, &again));
  CHECK(has(r, again, "k3", "v3"));
  CHECK(has(r, again, "k2", NULL));
  cairn_abort(r);

  /* cf_list: sorted by name, includes default, stops on non-zero. */
  CHECK_OK(cairn_begin(db, 0, &t));
  cairn_cf z, a, m;
  CHECK_OK(cairn_cf_drop(t, longcf));
  CHECK_OK(cairn_cf_open(t, "zeta", CAIRN_CF_CREATE, &z));
  CHECK_OK(cairn_cf_open(t, "alpha", CAIRN_CF_CREATE, &a));
  CHECK_OK(cairn_cf_open(t, "mid", CAIRN_CF_CREATE, &m));
  list_ctx l;
  memset(&l, 0, sizeof l);
  CHECK_OK(cairn_cf_list(t, list_cb, &l));
  const char *want[] = {"alpha", "default", "mid", "users", "zeta"};
  if (CHECK(l.n == 5)) {
    for (int i = 0; i < 5; i++)
      CHECK(strcmp(l.names[i], want[i]) == 0);
    CHECK(l.cfs[0] == a && l.cfs[1] == CAIRN_DEFAULT_CF && l.cfs[2] == m &&
          l.cfs[4] == z);
  }
  memset(&l, 0, sizeof l);
  l.stop_after = 2;
  CHECK_RC(cairn_cf_list(t, list_cb, &l), 7);
  CHECK(l.n == 2);
  CHECK_RC(cairn_cf_list(t, NULL, NULL), CAIRN_INVALID);
  cairn_db_stat st;
  CHECK_OK(cairn_commit(t));
  if (CHECK_OK(cairn_db_stat_get(db, &st)))
    CHECK(st.column_families == 5 || st.column_families == 4);
  /* A snapshot taken before a create does not see the new cf. */
  CHECK_OK(cairn_begin(db, CAIRN_TXN_RDONLY, &r));
  CHECK_OK(cairn_begin(db, 0, &t));
  cairn_cf late;
  CHECK_OK(cairn_cf_open(t, "late", CAIRN_CF_CREATE, &late));
  CHECK_OK(put_s(t, late, "a", "b"));
  CHECK_OK(cairn_commit(t));
  CHECK_RC(cairn_cf_open(r, "late", 0, &again), CAIRN_NOTFOUND);
  CHECK(cairn_get(r, late, ts_str("a"), &v) != CAIRN_OK);
  memset(&l, 0, sizeof l);
  CHECK_OK(cairn_cf_list(r, list_cb, &l));
  CHECK(l.n == 5);
  cairn_abort(r);
  check_clean(db);
  CHECK_OK(cairn_close(db));
}

/* ---- data ---------------------------------------------------------------- */

static void check_value(cairn_txn *t, cairn_cf cf, const char *k, size_t n,
                        uint64_t seed) {
  cairn_slice v = {0, 0};
  if (CHECK_OK(cairn_get(t, cf, ts_str(k), &v)))
    if (!CHECK(ts_value_eq(v.data, v.size, seed, n)))
      printf("    key %s: got %zu bytes, want %zu\n", k, v.size, n);
}

static void test_data(void) {
  const uint32_t psizes[] = {4096, 16384, 65536};
  for (size_t pi = 0; pi < 3; pi++) {
    uint32_t ps = psizes[pi];
    cairn_db *db;
    cairn_txn *t = NULL;
    cairn_slice v;
    cairn_platform_memory_reset();
    db = open_new("data.db", ps);
    if (!db)
      continue;
    CHECK_OK(cairn_begin(db, 0, &t));
    /* get/put/del and NOOVERWRITE */
    CHECK_RC(cairn_get(t, 0, ts_str("a"), &v), CAIRN_NOTFOUND);
    CHECK_OK(put_s(t, 0, "a", "1"));
    CHECK(has(t, 0, "a", "1"));
    CHECK_OK(put_s(t, 0, "a", "2"));
    CHECK(has(t, 0, "a", "2"));
    CHECK_RC(cairn_put(t, 0, ts_str("a"), ts_str("3"), CAIRN_PUT_NOOVERWRITE),
             CAIRN_EXISTS);
    CHECK(has(t, 0, "a", "2"));
    CHECK_OK(cairn_put(t, 0, ts_str("b"), ts_str("3"), CAIRN_PUT_NOOVERWRITE));
    CHECK(has(t, 0, "b", "3"));
    CHECK_OK(cairn_del(t, 0, ts_str("b")));
    CHECK(has(t, 0, "b", NULL));
    CHECK_RC(cairn_del(t, 0, ts_str("b")), CAIRN_NOTFOUND);
    CHECK_RC(cairn_del(t, 0, ts_str("never")), CAIRN_NOTFOUND);
    /* empty key, empty value */
    CHECK_OK(cairn_put(t, 0, ts_sl("", 0), ts_str("empty-key"), 0));
    CHECK_OK(cairn_put(t, 0, ts_str("ev"), ts_sl("", 0), 0));
    if (CHECK_OK(cairn_get(t, 0, ts_sl("", 0), &v)))
      CHECK(v.size == 9 && memcmp(v.data, "empty-key", 9) == 0);
    v.size = 99;
    if (CHECK_OK(cairn_get(t, 0, ts_str("ev"), &v)))
      CHECK(v.size == 0);
    /* A NULL data pointer with size 0 is an empty key/value too. */
    if (CHECK_OK(cairn_get(t, 0, ts_sl(NULL, 0), &v)))
      CHECK(v.size == 9);
    CHECK_OK(cairn_put(t, 0, ts_str("nv"), ts_sl(NULL, 0), 0));
    /* key size limits */
    char key[CAIRN_MAX_KEY_SIZE + 1];
    memset(key, 0xa5, sizeof key);
    CHECK_OK(cairn_put(t, 0, ts_sl(key, CAIRN_MAX_KEY_SIZE), ts_str("max"), 0));
    CHECK_RC(
        cairn_put(t, 0, ts_sl(key, CAIRN_MAX_KEY_SIZE + 1), ts_str("over"), 0),
        CAIRN_TOOBIG);
    int rc = cairn_get(t, 0, ts_sl(key, CAIRN_MAX_KEY_SIZE + 1), &v);
    CHECK(rc == CAIRN_TOOBIG || rc == CAIRN_NOTFOUND);
    rc = cairn_del(t, 0, ts_sl(key, CAIRN_MAX_KEY_SIZE + 1));
    CHECK(rc == CAIRN_TOOBIG || rc == CAIRN_NOTFOUND);
    if (CHECK_OK(cairn_get(t, 0, ts_sl(key, CAIRN_MAX_KEY_SIZE), &v)))
      CHECK(v.size == 3 && memcmp(v.data, "max", 3) == 0);
    /* many max-size keys force splits with huge keys */
    for (int i = 0; i < 40; i++) {
      key[0] = (char)i;
      key[CAIRN_MAX_KEY_SIZE - 1] = (char)(i * 3);
      CHECK_OK(
          cairn_put(t, 0, ts_sl(key, CAIRN_MAX_KEY_SIZE), ts_str("big"), 0));
    }
    /* values of many sizes */
    const size_t sizes[] = {0,           1,           100,     ps / 4,
                            ps / 2 - 64, ps - 100,    ps,      ps + 1,
                            2 * ps,      3 * ps + 17, 1u << 20};
    char k[32];
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
      void *buf = ts_value_new(sizes[i], 1000 + i);
      snprintf(k, sizeof k, "val%02zu", i);
      CHECK_OK(cairn_put(t, 0, ts_str(k), ts_sl(buf, sizes[i]), 0));
      free(buf);
      check_value(t, 0, k, sizes[i], 1000 + i);
    }
    CHECK_OK(cairn_commit(t));
    /* overwrite large with small and back */
    CHECK_OK(cairn_begin(db, 0, &t));
    for (int round = 0; round < 5; round++) {
      size_t n = round % 2 ? 3 : (size_t)5 * ps + 11;
      void *buf = ts_value_new(n, 77 + round);
      CHECK_OK(cairn_put(t, 0, ts_str("flip"), ts_sl(buf, n), 0));
      free(buf);
      check_value(t, 0, "flip", n, 77 + round);
    }
    CHECK_OK(cairn_commit(t));
    check_clean(db);
    db = reopen(db, "data.db");
    if (!db)
      continue;
    CHECK_OK(cairn_begin(db, CAIRN_TXN_RDONLY, &t));
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
      snprintf(k, sizeof k, "val%02zu", i);
      check_value(t, 0, k, sizes[i], 1000 + i);
    }
    check_value(t, 0, "flip", (size_t)5 * ps + 11, 77 + 4);
    CHECK(has(t, 0, "a", "2"));
    CHECK(has(t, 0, "ev", ""));
    CHECK(has(t, 0, "nv", ""));
    CHECK(has(t, 0, "", "empty-key"));
    key[0] = (char)0xa5;
    key[CAIRN_MAX_KEY_SIZE - 1] = (char)0xa5;
    if (CHECK_OK(cairn_get(t, 0, ts_sl(key, CAIRN_MAX_KEY_SIZE), &v)))
      CHECK(v.size == 3 && memcmp(v.data, "max", 3) == 0);
    cairn_cf_stat cs;
    if (CHECK_OK(cairn_cf_stat_get(t, 0, &cs))) {
      CHECK(cs.entries == 4 + 1 + 40 + sizeof sizes / sizeof sizes[0] + 1);
      CHECK(cs.overflow_pages > 0);
    }
    cairn_abort(t);
    /* delete the large values: their pages become free */
    CHECK_OK(cairn_begin(db, 0, &t));
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
      snprintf(k, sizeof k, "val%02zu", i);
      CHECK_OK(cairn_del(t, 0, ts_str(k)));
    }
    CHECK_OK(cairn_del(t, 0, ts_str("flip")));
    CHECK_OK(cairn_commit(t));
    check_clean(db);
    CHECK_OK(cairn_close(db));
  }
}

/* 64 MiB (scaled down under valgrind) round-trips and survives reopen. */
static void test_huge_value(void) {
  size_t n = ts_scale() >= 0.5 ? (size_t)64 << 20 : (size_t)8 << 20;
  cairn_db *db;
  cairn_txn *t = NULL;
  cairn_slice v;
  cairn_platform_memory_reset();
  db = open_new("huge.db", 16384);
  if (!db)
    return;
  void *buf = ts_value_new(n, 6464);
  CHECK_OK(cairn_begin(db, 0, &t));
  CHECK_OK(cairn_put(t, 0, ts_str("huge"), ts_sl(buf, n), 0));
  CHECK_OK(put_s(t, 0, "after", "x"));
  CHECK_OK(cairn_commit(t));
  free(buf);
  db = reopen(db, "huge.db");
  if (!db)
    return;
  CHECK_OK(cairn_begin(db, CAIRN_TXN_RDONLY, &t));
  if (CHECK_OK(cairn_get(t, 0, ts_str("huge"), &v)))
    CHECK(ts_value_eq(v.data, v.size, 6464, n));
  CHECK(has(t, 0, "after", "x"));
  cairn_abort(t);
  /* Replace with a small value: the big run is freed and reusable. */
  CHECK_OK(cairn_begin(db, 0, &t));
  CHECK_OK(put_s(t, 0, "huge", "small"));
  CHECK_OK(cairn_commit(t));
  CHECK_OK(cairn_begin(db, 0, &t));
  CHECK_OK(put_s(t, 0, "x", "y"));
  CHECK_OK(cairn_commit(t));
  CHECK_OK(cairn_checkpoint(db)); /* the tree drops the run here */
  cairn_db_stat st;
  if (CHECK_OK(cairn_db_stat_get(db, &st)))
    CHECK(st.pages_free * st.page_size >= n - n / 8);
  check_clean(db);
  CHECK_OK(cairn_close(db));
}

/* Thousands of keys: multi-level trees, then deletes that rebalance. */
static void test_many_keys(void) {
  const uint32_t psizes[] = {4096, 65536};
  for (size_t pi = 0; pi < 2; pi++) {
    cairn_db *db;
    cairn_txn *t = NULL;
    /* At least three leaves' worth of entries (each >= 24 bytes) at every
     * scale, so the structural assertions below hold under valgrind too. */
    long lo = (long)(psizes[pi] / 8) > 2000 ? (long)(psizes[pi] / 8) : 2000;
    int n = (int)ts_scaled(20000, lo);
    cairn_platform_memory_reset();
    db = open_new("many.db", psizes[pi]);
    if (!db)
      continue;
    CHECK_OK(cairn_begin(db, 0, &t));
    for (int i = 0; i < n; i++) {
      char k[32], val[48];
      int j = (int)(((uint64_t)i * 7919u) % (uint64_t)n);
      snprintf(k, sizeof k, "%08d", j);
      snprintf(val, sizeof val, "v%d-%d", j, j * 3);
      if (!CHECK_OK(put_s(t, 0, k, val)))
        break;
    }
    CHECK_OK(cairn_commit(t));
    CHECK_OK(cairn_checkpoint(db)); /* pages: the checkpointed tree */
    CHECK_OK(cairn_begin(db, CAIRN_TXN_RDONLY, &t));
    cairn_cf_stat cs;
    if (CHECK_OK(cairn_cf_stat_get(t, 0, &cs))) {
      CHECK(cs.entries == (uint64_t)n);
      CHECK(cs.depth >= 2);
      CHECK(cs.branch_pages >= 1 && cs.leaf_pages >= 2);
    }
    int bad = 0;
    for (int i = 0; i < n; i++) {
      char k[32], val[48];
      snprintf(k, sizeof k, "%08d", i);
      snprintf(val, sizeof val, "v%d-%d", i, i * 3);
      bad += !has(t, 0, k, val);
    }
    CHECK(bad == 0);
    cairn_abort(t);
    check_clean(db);
    /* delete all but every 10th */
    CHECK_OK(cairn_begin(db, 0, &t));
    for (int i = 0; i < n; i++) {
      char k[32];
      if (i % 10 == 0)
        continue;
      snprintf(k, sizeof k, "%08d", i);
      if (!CHECK_OK(cairn_del(t, 0, ts_str(k))))
        break;
    }
    CHECK_OK(cairn_commit(t));
    CHECK_OK(cairn_begin(db, CAIRN_TXN_RDONLY, &t));
    if (CHECK_OK(cairn_cf_stat_get(t, 0, &cs)))
      CHECK(cs.entries == (uint64_t)(n + 9) / 10);
    cairn_cursor *c = NULL;
    int cnt = 0, order_bad = 0;
    CHECK_OK(cairn_cursor_open(t, 0, &c));
    for (int rc = cairn_cursor_first(c); rc == CAIRN_OK;
         rc = cairn_cursor_next(c)) {
      cairn_slice k;
      char want[32];
      snprintf(want, sizeof want, "%08d", cnt * 10);
      cairn_cursor_get(c, &k, NULL);
      order_bad += !(k.size == 8 && memcmp(k.data, want, 8) == 0);
      cnt++;
    }
    cairn_cursor_close(c);
    CHECK(cnt == (n + 9) / 10);
    CHECK(order_bad == 0);
    cairn_abort(t);
    check_clean(db);
    /* delete everything: an empty tree again */
    CHECK_OK(cairn_begin(db, 0, &t));
    for (int i = 0; i < n; i += 10) {
      char k[32];
      snprintf(k, sizeof k, "%08d", i);
      CHECK_OK(cairn_del(t, 0, ts_str(k)));
    }
    if (CHECK_OK(cairn_cf_stat_get(t, 0, &cs)))
      CHECK(cs.entries == 0);
    CHECK_OK(cairn_commit(t));
    CHECK_OK(cairn_checkpoint(db));
    CHECK_OK(cairn_begin(db, CAIRN_TXN_RDONLY, &t));
    if (CHECK_OK(cairn_cf_stat_get(t, 0, &cs)))
      CHECK(cs.entries == 0 && cs.depth == 0);
    cairn_abort(t);
    check_clean(db);
    CHECK_OK(cairn_close(db));
  }
}

/* ---- misuse -------------------------------------------------------------- */

static int noop_list(void *ctx, const char *name, cairn_cf cf) {
  (void)ctx;
  (void)name;
  (void)cf;
  return 0;
}

static void test_misuse(void) {
  cairn_db *db;
  cairn_txn *t = NULL, *r = NULL;
  cairn_cursor *c = NULL;
  cairn_slice v;
  cairn_cf cf;
  cairn_options o;
  cairn_db_stat dst;
  cairn_cf_stat cst;
  cairn_platform_memory_reset();
  ts_options(&o, MEM, 0);

  CHECK_RC(cairn_open(NULL, &o, &db), CAIRN_INVALID);
  CHECK_RC(cairn_open("x.db", &o, NULL), CAIRN_INVALID);
  CHECK_RC(cairn_open("", &o, &db), CAIRN_INVALID);
  cairn_close(NULL);
  cairn_abort(NULL);
  CHECK_RC(cairn_sync(NULL), CAIRN_INVALID);
  CHECK_RC(cairn_begin(NULL, 0, &t), CAIRN_INVALID);
  CHECK_RC(cairn_commit(NULL), CAIRN_INVALID);
  CHECK_RC(cairn_commit_ex(NULL, CAIRN_DURABILITY_SYNC), CAIRN_INVALID);
  CHECK_RC(cairn_cf_open(NULL, "x", 0, &cf), CAIRN_INVALID);
  CHECK_RC(cairn_cf_drop(NULL, 1), CAIRN_INVALID);
  CHECK_RC(cairn_cf_list(NULL, noop_list, NULL), CAIRN_INVALID);
  CHECK_RC(cairn_get(NULL, 0, ts_str("k"), &v), CAIRN_INVALID);
  CHECK_RC(cairn_put(NULL, 0, ts_str("k"), ts_str("v"), 0), CAIRN_INVALID);
  CHECK_RC(cairn_del(NULL, 0, ts_str("k")), CAIRN_INVALID);
  CHECK_RC(cairn_cursor_open(NULL, 0, &c), CAIRN_INVALID);
  CHECK_RC(cairn_cursor_first(NULL), CAIRN_INVALID);
  CHECK_RC(cairn_cursor_last(NULL), CAIRN_INVALID);
  CHECK_RC(cairn_cursor_next(NULL), CAIRN_INVALID);
  CHECK_RC(cairn_cursor_prev(NULL), CAIRN_INVALID);
  CHECK_RC(cairn_cursor_seek(NULL, ts_str("k")), CAIRN_INVALID);
  CHECK_RC(cairn_cursor_seek_le(NULL, ts_str("k")), CAIRN_INVALID);
  CHECK_RC(cairn_cursor_get(NULL, &v, &v), CAIRN_INVALID);
  CHECK_RC(cairn_cursor_bounds(NULL, ts_sl(NULL, 0), ts_sl(NULL, 0)),
           CAIRN_INVALID);
  CHECK_RC(cairn_cursor_prefix(NULL, ts_str("p")), CAIRN_INVALID);
  CHECK_RC(cairn_cf_stat_get(NULL, 0, &cst), CAIRN_INVALID);
  CHECK_RC(cairn_db_stat_get(NULL, &dst), CAIRN_INVALID);
  CHECK_RC(cairn_check(NULL, NULL, NULL), CAIRN_INVALID);

  db = open_new("misuse.db", 0);
  if (!db)
    return;
  CHECK_RC(cairn_begin(db, 0, NULL), CAIRN_INVALID);
  CHECK_RC(cairn_db_stat_get(db, NULL), CAIRN_INVALID);
  CHECK_OK(cairn_begin(db, 0, &t));
  CHECK_RC(cairn_get(t, 0, ts_str("k"), NULL), CAIRN_INVALID);
  CHECK_RC(cairn_get(t, 0, ts_sl(NULL, 3), &v), CAIRN_INVALID);
  CHECK_RC(cairn_put(t, 0, ts_sl(NULL, 3), ts_str("v"), 0), CAIRN_INVALID);
  CHECK_RC(cairn_put(t, 0, ts_str("k"), ts_sl(NULL, 3), 0), CAIRN_INVALID);
  CHECK_RC(cairn_del(t, 0, ts_sl(NULL, 3)), CAIRN_INVALID);
  CHECK_RC(cairn_put(t, 0, ts_str("k"), ts_str("v"), 0x80), CAIRN_INVALID);
  CHECK_RC(cairn_cursor_open(t, 0, NULL), CAIRN_INVALID);
  CHECK_RC(cairn_cf_stat_get(t, 0, NULL), CAIRN_INVALID);
  /* a cf handle from nowhere */
  const cairn_cf bogus[] = {12345, 0x7fffffff, 0xffffffffu, 0xfffffffeu};
  for (size_t i = 0; i < sizeof bogus / sizeof bogus[0]; i++) {
    int rc = cairn_put(t, bogus[i], ts_str("k"), ts_str("v"), 0);
    CHECK(rc == CAIRN_NOTFOUND || rc == CAIRN_INVALID);
    rc = cairn_get(t, bogus[i], ts_str("k"), &v);
    CHECK(rc == CAIRN_NOTFOUND || rc == CAIRN_INVALID);
    rc = cairn_del(t, bogus[i], ts_str("k"));
    CHECK(rc == CAIRN_NOTFOUND || rc == CAIRN_INVALID);
    c = (cairn_cursor *)1;
    rc = cairn_cursor_open(t, bogus[i], &c);
    CHECK(rc == CAIRN_NOTFOUND || rc == CAIRN_INVALID);
    CHECK(rc == CAIRN_OK || c == NULL);
    rc = cairn_cf_drop(t, bogus[i]);
    CHECK(rc == CAIRN_NOTFOUND || rc == CAIRN_INVALID);
    rc = cairn_cf_stat_get(t, bogus[i], &cst);
    CHECK(rc == CAIRN_NOTFOUND || rc == CAIRN_INVALID);
  }
  CHECK_RC(cairn_cf_open(t, "x", 0x40, &cf), CAIRN_INVALID);
  CHECK_OK(put_s(t, 0, "k", "v"));
  CHECK_OK(cairn_commit(t));

  /* writes in a read transaction */
  CHECK_OK(cairn_begin(db, CAIRN_TXN_RDONLY, &r));
  CHECK_RC(put_s(r, 0, "k", "w"), CAIRN_READONLY);
  CHECK_RC(cairn_del(r, 0, ts_str("k")), CAIRN_READONLY);
  CHECK_RC(cairn_cf_open(r, "newcf", CAIRN_CF_CREATE, &cf), CAIRN_READONLY);
  CHECK_RC(cairn_cf_drop(r, 0), CAIRN_READONLY);
  CHECK(has(r, 0, "k", "v"));
  /* a cursor's get before any positioning */
  CHECK_OK(cairn_cursor_open(r, 0, &c));
  CHECK(cairn_cursor_get(c, &v, &v) != CAIRN_OK);
  cairn_cursor_close(c);
  cairn_abort(r);
  /* unknown begin flags */
  t = (cairn_txn *)1;
  CHECK_RC(cairn_begin(db, 0x100, &t), CAIRN_INVALID);
  CHECK(t == NULL);
  /* unknown open flags */
  cairn_db *db2 = (cairn_db *)1;
  o.flags = 0x1000 | CAIRN_OPEN_CREATE;
  CHECK_RC(cairn_open("other.db", &o, &db2), CAIRN_INVALID);
  CHECK(db2 == NULL);
  check_clean(db);
  CHECK_OK(cairn_close(db));
}

/* ---- cursors ------------------------------------------------------------- */

/* Collect the keys a cursor visits from a starting move in one direction. */
static int walk(cairn_cursor *c, int first_rc, int forward, char out[][16],
                int max) {
  int n = 0, rc = first_rc;
  while (rc == CAIRN_OK && n < max) {
    cairn_slice k;
    if (cairn_cursor_get(c, &k, NULL) != CAIRN_OK)
      return -1;
    size_t m = k.size < 15 ? k.size : 15;
    memcpy(out[n], k.data, m);
    out[n][m] = 0;
    n++;
    rc = forward ? cairn_cursor_next(c) : cairn_cursor_prev(c);
  }
  return rc == CAIRN_NOTFOUND ? n : -1;
}

static int cur_key_is(cairn_cursor *c, const char *want) {
  cairn_slice k, v;
  if (cairn_cursor_get(c, &k, &v) != CAIRN_OK)
    return 0;
  return k.size == strlen(want) && memcmp(k.data, want, k.size) == 0;
}

static void test_cursor_basic(void) {
  cairn_db *db;
  cairn_txn *t = NULL;
  cairn_cursor *c = NULL;
  char keys[200][16];
  cairn_platform_memory_reset();
  db = open_new("cur.db", 4096);
  if (!db)
    return;
  CHECK_OK(cairn_begin(db, 0, &t));
  /* empty tree */
  CHECK_OK(cairn_cursor_open(t, 0, &c));
  CHECK_RC(cairn_cursor_first(c), CAIRN_NOTFOUND);
  CHECK_RC(cairn_cursor_last(c), CAIRN_NOTFOUND);
  CHECK_RC(cairn_cursor_seek(c, ts_str("a")), CAIRN_NOTFOUND);
  CHECK_RC(cairn_cursor_seek_le(c, ts_str("a")), CAIRN_NOTFOUND);
  CHECK(cairn_cursor_get(c, NULL, NULL) != CAIRN_OK);
  cairn_cursor_close(c);
  /* keys k010 .. k1990 step 10 (even tens) */
  for (int i = 1; i < 200; i++) {
    char k[16];
    snprintf(k, sizeof k, "k%04d", i * 10);
    CHECK_OK(put_s(t, 0, k, k + 1));
  }
  CHECK_OK(cairn_commit(t));
  CHECK_OK(cairn_begin(db, CAIRN_TXN_RDONLY, &t));
  CHECK_OK(cairn_cursor_open(t, 0, &c));
  int n = walk(c, cairn_cursor_first(c), 1, keys, 200);
  CHECK(n == 199);
  int bad = 0;
  for (int i = 0; i < n; i++) {
    char k[16];
    snprintf(k, sizeof k, "k%04d", (i + 1) * 10);
    bad += strcmp(keys[i], k) != 0;
  }
  CHECK(bad == 0);
  /* after the end the cursor is unpositioned */
  CHECK(cairn_cursor_get(c, NULL, NULL) != CAIRN_OK);
  n = walk(c, cairn_cursor_last(c), 0, keys, 200);
  CHECK(n == 199);
  CHECK(n > 0 && strcmp(keys[0], "k1990") == 0 &&
        strcmp(keys[n - 1], "k0010") == 0);
  /* key and value through cursor_get, either pointer NULL */
  cairn_slice k, v;
  CHECK_OK(cairn_cursor_first(c));
  if (CHECK_OK(cairn_cursor_get(c, &k, &v)))
    CHECK(k.size == 5 && v.size == 4 && memcmp(v.data, "0010", 4) == 0);
  CHECK_OK(cairn_cursor_get(c, NULL, &v));
  CHECK_OK(cairn_cursor_get(c, &k, NULL));
  CHECK_RC(cairn_cursor_prev(c), CAIRN_NOTFOUND);
  CHECK_OK(cairn_cursor_last(c));
  CHECK_RC(cairn_cursor_next(c), CAIRN_NOTFOUND);
  /* seek: exact, between, before all, after all */
  CHECK_OK(cairn_cursor_seek(c, ts_str("k0500")));
  CHECK(cur_key_is(c, "k0500"));
  CHECK_OK(cairn_cursor_seek(c, ts_str("k0501")));
  CHECK(cur_key_is(c, "k0510"));
  CHECK_OK(cairn_cursor_prev(c));
  CHECK(cur_key_is(c, "k0500"));
  CHECK_OK(cairn_cursor_seek(c, ts_str("")));
  CHECK(cur_key_is(c, "k0010"));
  CHECK_OK(cairn_cursor_seek(c, ts_str("a")));
  CHECK(cur_key_is(c, "k0010"));
  CHECK_RC(cairn_cursor_seek(c, ts_str("k1991")), CAIRN_NOTFOUND);
  CHECK_RC(cairn_cursor_seek(c, ts_str("z")), CAIRN_NOTFOUND);
  /* seek_le */
  CHECK_OK(cairn_cursor_seek_le(c, ts_str("k0500")));
  CHECK(cur_key_is(c, "k0500"));
  CHECK_OK(cairn_cursor_seek_le(c, ts_str("k0509")));
  CHECK(cur_key_is(c, "k0500"));
  CHECK_OK(cairn_cursor_next(c));
  CHECK(cur_key_is(c, "k0510"));
  CHECK_OK(cairn_cursor_seek_le(c, ts_str("zzz")));
  CHECK(cur_key_is(c, "k1990"));
  CHECK_OK(cairn_cursor_seek_le(c, ts_str("k0010")));
  CHECK(cur_key_is(c, "k0010"));
  CHECK_RC(cairn_cursor_seek_le(c, ts_str("k0009")), CAIRN_NOTFOUND);
  CHECK_RC(cairn_cursor_seek_le(c, ts_str("")), CAIRN_NOTFOUND);
  CHECK_RC(cairn_cursor_seek_le(c, ts_str("a")), CAIRN_NOTFOUND);
  /* seek over the whole range, one step each side */
  bad = 0;
  for (int i = 1; i < 200; i++) {
    char want[16], probe[16];
    snprintf(want, sizeof want, "k%04d", i * 10);
    snprintf(probe, sizeof probe, "k%04d", i * 10 - 5);
    bad +=
        cairn_cursor_seek(c, ts_str(probe)) != CAIRN_OK || !cur_key_is(c, want);
    snprintf(probe, sizeof probe, "k%04d", i * 10 + 5);
    bad += cairn_cursor_seek_le(c, ts_str(probe)) != CAIRN_OK ||
           !cur_key_is(c, want);
  }
  CHECK(bad == 0);

  /* bounds [from, to) */
  CHECK_OK(cairn_cursor_bounds(c, ts_str("k0100"), ts_str("k0200")));
  n = walk(c, cairn_cursor_first(c), 1, keys, 200);
  CHECK(n == 10);
  CHECK(n > 0 && strcmp(keys[0], "k0100") == 0 &&
        strcmp(keys[n - 1], "k0190") == 0);
  n = walk(c, cairn_cursor_last(c), 0, keys, 200);
  CHECK(n == 10);
  CHECK(n > 0 && strcmp(keys[0], "k0190") == 0 &&
        strcmp(keys[n - 1], "k0100") == 0);
  CHECK_OK(cairn_cursor_seek(c, ts_str("a")));
  CHECK(cur_key_is(c, "k0100"));
  CHECK_RC(cairn_cursor_seek(c, ts_str("k0191")), CAIRN_NOTFOUND);
  CHECK_RC(cairn_cursor_seek(c, ts_str("k0200")), CAIRN_NOTFOUND);
  CHECK_OK(cairn_cursor_seek_le(c, ts_str("z")));
  CHECK(cur_key_is(c, "k0190"));
  CHECK_OK(cairn_cursor_seek_le(c, ts_str("k0200")));
  CHECK(cur_key_is(c, "k0190"));
  CHECK_RC(cairn_cursor_seek_le(c, ts_str("k0099")), CAIRN_NOTFOUND);
  /* bounds between keys */
  CHECK_OK(cairn_cursor_bounds(c, ts_str("k0095"), ts_str("k0105")));
  n = walk(c, cairn_cursor_first(c), 1, keys, 200);
  CHECK(n == 1 && strcmp(keys[0], "k0100") == 0);
  n = walk(c, cairn_cursor_last(c), 0, keys, 200);
  CHECK(n == 1 && strcmp(keys[0], "k0100") == 0);
  /* empty range */
  CHECK_OK(cairn_cursor_bounds(c, ts_str("k0101"), ts_str("k0105")));
  CHECK_RC(cairn_cursor_first(c), CAIRN_NOTFOUND);
  CHECK_RC(cairn_cursor_last(c), CAIRN_NOTFOUND);
  CHECK_OK(cairn_cursor_bounds(c, ts_str("k0100"), ts_str("k0100")));
  CHECK_RC(cairn_cursor_first(c), CAIRN_NOTFOUND);
  CHECK_RC(cairn_cursor_last(c), CAIRN_NOTFOUND);
  /* one side unbounded */
  CHECK_OK(cairn_cursor_bounds(c, ts_sl(NULL, 0), ts_str("k0030")));
  n = walk(c, cairn_cursor_first(c), 1, keys, 200);
  CHECK(n == 2);
  n = walk(c, cairn_cursor_last(c), 0, keys, 200);
  CHECK(n == 2 && strcmp(keys[0], "k0020") == 0);
  CHECK_OK(cairn_cursor_bounds(c, ts_str("k1980"), ts_sl(NULL, 0)));
  n = walk(c, cairn_cursor_first(c), 1, keys, 200);
  CHECK(n == 2);
  n = walk(c, cairn_cursor_last(c), 0, keys, 200);
  CHECK(n == 2 && strcmp(keys[0], "k1990") == 0);
  /* an empty, non-NULL from is a real bound (the empty key) */
  CHECK_OK(cairn_cursor_bounds(c, ts_sl("", 0), ts_sl(NULL, 0)));
  n = walk(c, cairn_cursor_first(c), 1, keys, 200);
  CHECK(n == 199);
  /* bounds reset: unbounded again */
  CHECK_OK(cairn_cursor_bounds(c, ts_sl(NULL, 0), ts_sl(NULL, 0)));
  n = walk(c, cairn_cursor_first(c), 1, keys, 200);
  CHECK(n == 199);
  /* prefix */
  CHECK_OK(cairn_cursor_prefix(c, ts_str("k01")));
  n = walk(c, cairn_cursor_first(c), 1, keys, 200);
  CHECK(n == 10);
  CHECK(n > 0 && strcmp(keys[0], "k0100") == 0);
  n = walk(c, cairn_cursor_last(c), 0, keys, 200);
  CHECK(n == 10);
  CHECK(n > 0 && strcmp(keys[0], "k0190") == 0);
  CHECK_OK(cairn_cursor_seek_le(c, ts_str("k02")));
  CHECK(cur_key_is(c, "k0190"));
  CHECK_OK(cairn_cursor_seek(c, ts_str("k")));
  CHECK(cur_key_is(c, "k0100"));
  CHECK_OK(cairn_cursor_prefix(c, ts_str("x")));
  CHECK_RC(cairn_cursor_first(c), CAIRN_NOTFOUND);
  CHECK_RC(cairn_cursor_last(c), CAIRN_NOTFOUND);
  CHECK_OK(cairn_cursor_prefix(c, ts_str("")));
  n = walk(c, cairn_cursor_first(c), 1, keys, 200);
  CHECK(n == 199);
  cairn_cursor_close(c);
  cairn_abort(t);

  /* prefix 0xff 0xff: no upper bound exists by incrementing */
  static const uint8_t pk[][5] = {{1, 0xfe},
                                  {2, 0xff, 0xfe},
                                  {2, 0xff, 0xff},
                                  {3, 0xff, 0xff, 0x00},
                                  {3, 0xff, 0xff, 0xff},
                                  {4, 0xff, 0xff, 0xff, 0xff},
                                  {1, 0xff}};
  CHECK_OK(cairn_begin(db, 0, &t));
  cairn_cf ff;
  CHECK_OK(cairn_cf_open(t, "ff", CAIRN_CF_CREATE, &ff));
  for (size_t i = 0; i < sizeof pk / sizeof pk[0]; i++)
    CHECK_OK(cairn_put(t, ff, ts_sl(pk[i] + 1, pk[i][0]), ts_str("v"), 0));
  CHECK_OK(cairn_cursor_open(t, ff, &c));
  static const uint8_t ffff[2] = {0xff, 0xff};
  CHECK_OK(cairn_cursor_prefix(c, ts_sl(ffff, 2)));
  int cnt = 0;
  for (int rc = cairn_cursor_first(c); rc == CAIRN_OK;
       rc = cairn_cursor_next(c)) {
    CHECK_OK(cairn_cursor_get(c, &k, NULL));
    CHECK(k.size >= 2 && memcmp(k.data, ffff, 2) == 0);
    cnt++;
  }
  CHECK(cnt == 4);
  cnt = 0;
  size_t lastsize = 99;
  for (int rc = cairn_cursor_last(c); rc == CAIRN_OK;
       rc = cairn_cursor_prev(c)) {
    CHECK_OK(cairn_cursor_get(c, &k, NULL));
    CHECK(k.size >= 2 && memcmp(k.data, ffff, 2) == 0);
    if (cnt == 0)
      lastsize = k.size;
    cnt++;
  }
  CHECK(cnt == 4);
  CHECK(lastsize == 4);
  CHECK_OK(cairn_cursor_seek_le(c, ts_sl(ffff, 2)));
  CHECK_OK(cairn_cursor_get(c, &k, NULL));
  CHECK(k.size == 2);
  static const uint8_t f1[1] = {0xff};
  CHECK_OK(cairn_cursor_prefix(c, ts_sl(f1, 1)));
  cnt = walk(c, cairn_cursor_last(c), 0, keys, 200);
  CHECK(cnt == 6);
  cairn_cursor_close(c);
  CHECK_OK(cairn_commit(t));
  check_clean(db);
  CHECK_OK(cairn_close(db));
}

/* A cursor in a write txn stays correct while the txn inserts and deletes
 * around it, including the key it is on. Checked against a model. */
static void test_cursor_mutation(void) {
  cairn_db *db;
  cairn_txn *t = NULL;
  cairn_cursor *c = NULL;
  ts_map m = {0};
  cairn_platform_memory_reset();
  db = open_new("curmut.db", 4096);
  if (!db)
    return;
  for (int dir = 0; dir < 2; dir++) {
    int forward = dir == 0;
    ts_rng r;
    ts_rng_seed(&r, 99 + (uint64_t)dir);
    CHECK_OK(cairn_begin(db, 0, &t));
    ts_map_clear(&m);
    for (int i = 0; i < 600; i += 2) {
      char k[16];
      snprintf(k, sizeof k, "m%05d", i * 10);
      CHECK_OK(cairn_put(t, 0, ts_str(k), ts_sl("0123456789abcdef", 16), 0));
      ts_map_put(&m, k, strlen(k), 0, 16);
    }
    CHECK_OK(cairn_cursor_open(t, 0, &c));
    int rc = forward ? cairn_cursor_first(c) : cairn_cursor_last(c);
    int steps = 0, bad = 0;
    while (rc == CAIRN_OK && steps < 5000) {
      cairn_slice k;
      char cur[16];
      if (!CHECK_OK(cairn_cursor_get(c, &k, NULL)))
        break;
      memcpy(cur, k.data, k.size);
      cur[k.size] = 0;
      /* mutate around it */
      int at = atoi(cur + 1);
      int act = (int)ts_below(&r, 6);
      char nk[16];
      if (act == 0 || act == 1) { /* insert near (either side) */
        int off = (int)ts_below(&r, 40) - 20;
        snprintf(nk, sizeof nk, "m%05d", at + off < 0 ? 0 : at + off);
        CHECK_OK(cairn_put(t, 0, ts_str(nk), ts_sl("x", 1), 0));
        ts_map_put(&m, nk, strlen(nk), 0, 1);
      } else if (act == 2) { /* delete the key we are on */
        CHECK_OK(cairn_del(t, 0, ts_str(cur)));
        ts_map_del(&m, cur, strlen(cur));
      } else if (act == 3) { /* delete the neighbour in walk direction */
        int found;
        size_t i = ts_map_lower(&m, cur, strlen(cur), &found);
        size_t j = forward ? i + (size_t)found : i - 1;
        if ((forward && j < m.n) || (!forward && i > 0)) {
          char dk[16];
          memcpy(dk, m.e[j].key, m.e[j].klen);
          dk[m.e[j].klen] = 0;
          CHECK_OK(cairn_del(t, 0, ts_str(dk)));
          ts_map_del(&m, dk, strlen(dk));
        }
      } else if (act == 4) { /* overwrite the current key's value */
        CHECK_OK(cairn_put(t, 0, ts_str(cur), ts_sl("yy", 2), 0));
        if (ts_map_get(&m, cur, strlen(cur)))
          ts_map_put(&m, cur, strlen(cur), 0, 2);
      }
      /* expected next key: strictly after/before cur in the model */
      int found;
      size_t i = ts_map_lower(&m, cur, strlen(cur), &found);
      const ts_ent *want = NULL;
      if (forward)
        want = (i + (size_t)found < m.n) ? &m.e[i + (size_t)found] : NULL;
      else
        want = i > 0 ? &m.e[i - 1] : NULL;
      rc = forward ? cairn_cursor_next(c) : cairn_cursor_prev(c);
      if (want) {
        if (rc != CAIRN_OK || cairn_cursor_get(c, &k, NULL) != CAIRN_OK ||
            ts_keycmp(k.data, k.size, want->key, want->klen) != 0) {
          if (bad++ < 3)
            printf("    cursor after %s (act %d, %s): rc %d, want %.*s\n", cur,
                   act, forward ? "next" : "prev", rc, (int)want->klen,
                   (const char *)want->key);
        }
      } else if (rc != CAIRN_NOTFOUND) {
        bad++;
      }
      steps++;
    }
    CHECK(bad == 0);
    CHECK(rc == CAIRN_NOTFOUND);
    cairn_cursor_close(c);
    /* the txn's final content equals the model */
    CHECK_OK(cairn_cursor_open(t, 0, &c));
    size_t j = 0;
    int mism = 0;
    for (rc = cairn_cursor_first(c); rc == CAIRN_OK;
         rc = cairn_cursor_next(c), j++) {
      cairn_slice k, v;
      cairn_cursor_get(c, &k, &v);
      if (j >= m.n || ts_keycmp(k.data, k.size, m.e[j].key, m.e[j].klen) ||
          v.size != m.e[j].vlen)
        mism++;
    }
    CHECK(mism == 0 && j == m.n);
    cairn_cursor_close(c);
    CHECK_OK(cairn_commit(t));
    check_clean(db);
    /* and the same through a fresh read txn */
    CHECK_OK(cairn_begin(db, CAIRN_TXN_RDONLY, &t));
    CHECK(cf_entries(t, 0) == m.n);
    cairn_abort(t);
    /* clear for the next direction */
    CHECK_OK(cairn_begin(db, 0, &t));
    for (size_t i = 0; i < m.n; i++)
      CHECK_OK(cairn_del(t, 0, ts_sl(m.e[i].key, m.e[i].klen)));
    CHECK_OK(cairn_commit(t));
  }
  ts_map_free(&m);

  /* Several cursors, bounds, and a delete of everything under them. */
  CHECK_OK(cairn_begin(db, 0, &t));
  for (int i = 0; i < 100; i++) {
    char k[16];
    snprintf(k, sizeof k, "d%03d", i);
    CHECK_OK(put_s(t, 0, k, "v"));
  }
  cairn_cursor *c2 = NULL;
  CHECK_OK(cairn_cursor_open(t, 0, &c));
  CHECK_OK(cairn_cursor_open(t, 0, &c2));
  CHECK_OK(cairn_cursor_bounds(c2, ts_str("d050"), ts_str("d060")));
  CHECK_OK(cairn_cursor_seek(c, ts_str("d050")));
  CHECK_OK(cairn_cursor_first(c2));
  for (int i = 0; i < 100; i++) {
    char k[16];
    snprintf(k, sizeof k, "d%03d", i);
    if (i != 99)
      CHECK_OK(cairn_del(t, 0, ts_str(k)));
  }
  CHECK_OK(cairn_cursor_next(c));
  CHECK(cur_key_is(c, "d099"));
  CHECK_RC(cairn_cursor_next(c2), CAIRN_NOTFOUND);
  CHECK_RC(cairn_cursor_first(c2), CAIRN_NOTFOUND);
  CHECK_RC(cairn_cursor_prev(c), CAIRN_NOTFOUND);
  CHECK_OK(cairn_cursor_last(c));
  CHECK(cur_key_is(c, "d099"));
  cairn_cursor_close(c);
  cairn_cursor_close(c2);
  cairn_abort(t);
  CHECK_OK(cairn_close(db));
}

/* ---- durability ---------------------------------------------------------- */

static void test_lazy_durability(void) {
  cairn_db *db = NULL;
  cairn_txn *t = NULL;
  cairn_options o;
  fault_platform_install();
  fault_reset();
  ts_options(&o, "fault", 4096);
  o.durability = CAIRN_DURABILITY_LAZY;
  o.lazy_sync_commits = 0;
  o.lazy_sync_ms = 0;
  if (!CHECK_OK(cairn_open("lazy.db", &o, &db)))
    return;
  for (int i = 0; i < 10; i++) {
    char k[16];
    snprintf(k, sizeof k, "a%d", i);
    CHECK_OK(cairn_begin(db, 0, &t));
    CHECK_OK(put_s(t, 0, k, "1"));
    CHECK_OK(cairn_commit(t));
  }
  CHECK_OK(cairn_sync(db));
  cairn_db_stat st;
  uint64_t synced = 0;
  if (CHECK_OK(cairn_db_stat_get(db, &st))) {
    CHECK(st.durable_txn_id == st.last_txn_id);
    synced = st.last_txn_id;
  }
  for (int i = 0; i < 10; i++) {
    char k[16];
    snprintf(k, sizeof k, "b%d", i);
    CHECK_OK(cairn_begin(db, 0, &t));
    CHECK_OK(put_s(t, 0, k, "2"));
    CHECK_OK(cairn_commit(t));
  }
  if (CHECK_OK(cairn_db_stat_get(db, &st)))
    CHECK(st.durable_txn_id >= synced && st.durable_txn_id <= st.last_txn_id);
  /* power loss: everything up to the sync survives; the rest is a prefix */
  fault_crash(7);
  cairn_close(db);
  db = NULL;
  o.flags = 0;
  if (!CHECK_OK(cairn_open("lazy.db", &o, &db)))
    return;
  check_clean(db);
  CHECK_OK(cairn_begin(db, CAIRN_TXN_RDONLY, &t));
  int bad = 0, nb = 0;
  for (int i = 0; i < 10; i++) {
    char k[16];
    snprintf(k, sizeof k, "a%d", i);
    bad += !has(t, 0, k, "1");
  }
  for (int i = 0; i < 10; i++) {
    char k[16];
    snprintf(k, sizeof k, "b%d", i);
    int here = has(t, 0, k, "2");
    bad += here && nb != i; /* a prefix of the lazy commits */
    nb += here;
  }
  CHECK(bad == 0);
  CHECK(cairn_txn_id(t) >= synced);
  cairn_abort(t);
  /* close syncs lazy commits */
  for (int i = 0; i < 5; i++) {
    char k[16];
    snprintf(k, sizeof k, "c%d", i);
    CHECK_OK(cairn_begin(db, 0, &t));
    CHECK_OK(put_s(t, 0, k, "3"));
    CHECK_OK(cairn_commit_ex(t, CAIRN_DURABILITY_LAZY));
  }
  CHECK_OK(cairn_close(db));
  fault_crash(8);
  db = NULL;
  if (!CHECK_OK(cairn_open("lazy.db", &o, &db)))
    return;
  CHECK_OK(cairn_begin(db, CAIRN_TXN_RDONLY, &t));
  CHECK(has(t, 0, "c4", "3"));
  cairn_abort(t);
  /* a SYNC commit in a lazy database is durable at once */
  CHECK_OK(cairn_begin(db, 0, &t));
  CHECK_OK(put_s(t, 0, "s", "sync"));
  CHECK_OK(cairn_commit_ex(t, CAIRN_DURABILITY_SYNC));
  fault_crash(9);
  cairn_close(db);
  db = NULL;
  if (!CHECK_OK(cairn_open("lazy.db", &o, &db)))
    return;
  CHECK_OK(cairn_begin(db, CAIRN_TXN_RDONLY, &t));
  CHECK(has(t, 0, "s", "sync"));
  cairn_abort(t);
  check_clean(db);
  CHECK_OK(cairn_close(db));
  fault_reset();
}

/* ---- stats ----------------------------------------------------------------
 */

static void test_stats(void) {
  cairn_db *db;
  cairn_txn *t = NULL, *r = NULL;
  cairn_cf_stat cs;
  cairn_db_stat st;
  cairn_cf a;
  cairn_platform_memory_reset();
  db = open_new("stat.db", 4096);
  if (!db)
    return;
  if (CHECK_OK(cairn_db_stat_get(db, &st))) {
    CHECK(st.page_size == 4096);
    CHECK(st.page_count >= 2);
    CHECK(st.pages_in_use <= st.page_count);
    CHECK(st.pages_in_use + st.pages_free <= st.page_count);
    CHECK(st.file_size >= 2 * 4096);
    CHECK(st.snapshots == 0 && st.oldest_snapshot_id == 0);
    CHECK(st.pages_pinned == 0);
    CHECK(st.column_families >= 1);
    CHECK(st.durable_txn_id == st.last_txn_id);
  }
  CHECK_OK(cairn_begin(db, 0, &t));
  CHECK_OK(cairn_cf_open(t, "a", CAIRN_CF_CREATE, &a));
  if (CHECK_OK(cairn_cf_stat_get(t, a, &cs)))
    CHECK(cs.entries == 0 && cs.depth == 0 && cs.leaf_pages == 0 &&
          cs.branch_pages == 0 && cs.overflow_pages == 0);
  CHECK_OK(put_s(t, a, "k", "v"));
  /* with the log, the put waits in the overlay: only entries counts it */
  if (CHECK_OK(cairn_cf_stat_get(t, a, &cs)))
    CHECK(cs.entries == 1 && cs.overflow_pages == 0);
  for (int i = 0; i < 2000; i++) {
    char k[16];
    snprintf(k, sizeof k, "key%06d", i);
    CHECK_OK(put_s(t, 0, k, "some value of a few bytes"));
  }
  void *big = ts_value_new(100000, 5);
  CHECK_OK(cairn_put(t, a, ts_str("big"), ts_sl(big, 100000), 0));
  free(big);
  /* lazy: a durable commit of this many appends would fold itself */
  CHECK_OK(cairn_commit_ex(t, CAIRN_DURABILITY_LAZY));
  /* the commit sits in the log and the overlay until the checkpoint */
  uint64_t held = 0;
  if (CHECK_OK(cairn_db_stat_get(db, &st))) {
    CHECK(st.log_size >= 2000 * 30 + 100000);
    CHECK(st.overlay_bytes >= 2000 * 30 + 100000);
    held = st.overlay_bytes;
  }
  CHECK_OK(cairn_checkpoint(db)); /* every page in the file (log mode) */
  if (CHECK_OK(cairn_db_stat_get(db, &st))) {
    CHECK(st.log_size >= 2000 * 30 + 100000); /* reused, not shrunk */
    CHECK(st.overlay_bytes < held);           /* a fresh overlay */
  }
  CHECK_OK(cairn_begin(db, CAIRN_TXN_RDONLY, &r));
  uint64_t rid = cairn_txn_id(r);
  if (CHECK_OK(cairn_cf_stat_get(r, 0, &cs))) {
    CHECK(cs.entries == 2000);
    CHECK(cs.depth >= 2);
    CHECK(cs.branch_pages >= 1);
    CHECK(cs.leaf_pages >= 2000 * 30 / 4096);
    CHECK(cs.overflow_pages == 0);
  }
  if (CHECK_OK(cairn_cf_stat_get(r, a, &cs))) {
    CHECK(cs.entries == 2 && cs.depth == 1);
    CHECK(cs.overflow_pages >= 100000 / 4096);
  }
  if (CHECK_OK(cairn_db_stat_get(db, &st))) {
    CHECK(st.snapshots == 1);
    CHECK(st.oldest_snapshot_id == rid);
    CHECK(st.last_txn_id == rid);
    CHECK(st.pages_in_use <= st.page_count);
    CHECK(st.pages_in_use >= 2000 * 30 / 4096 + 100000 / 4096);
    CHECK(st.pages_in_use + st.pages_free <= st.page_count);
    CHECK(st.page_count * st.page_size <= st.file_size);
    CHECK(st.column_families == 2 || st.column_families == 1);
  }
  /* rewrite everything while r is live: the freed pages are pinned */
  CHECK_OK(cairn_begin(db, 0, &t));
  for (int i = 0; i < 2000; i++) {
    char k[16];
    snprintf(k, sizeof k, "key%06d", i);
    CHECK_OK(put_s(t, 0, k, "another value"));
  }
  CHECK_OK(cairn_del(t, a, ts_str("big")));
  CHECK_OK(cairn_commit(t));
  CHECK_OK(cairn_checkpoint(db)); /* (with the log, pages change here) */
  CHECK_OK(cairn_begin(db, CAIRN_TXN_RDONLY, &t));
  if (CHECK_OK(cairn_db_stat_get(db, &st))) {
    CHECK(st.snapshots == 2);
    CHECK(st.oldest_snapshot_id == rid);
    CHECK(st.last_txn_id > rid);
    CHECK(st.pages_pinned > 0);
  }
  cairn_abort(t);
  cairn_abort(r);
  if (CHECK_OK(cairn_db_stat_get(db, &st))) {
    CHECK(st.snapshots == 0 && st.oldest_snapshot_id == 0);
    CHECK(st.pages_pinned == 0);
  }
  check_clean(db);
  CHECK_OK(cairn_close(db));
}

/* ---- free-page reuse ------------------------------------------------------
 */

static uint64_t file_size(cairn_db *db) {
  cairn_db_stat st;
  /* With the log, commits reach the file at checkpoints. */
  if (!CHECK_OK(cairn_checkpoint(db)) || !CHECK_OK(cairn_db_stat_get(db, &st)))
    return 0;
  return st.file_size;
}

static void overwrite_round(cairn_db *db, ts_rng *r, int nkeys) {
  cairn_txn *t = NULL;
  if (!CHECK_OK(cairn_begin(db, 0, &t)))
    return;
  for (int j = 0; j < 50; j++) {
    char k[16];
    size_t n = 50 + ts_below(r, 300);
    uint8_t v[400];
    snprintf(k, sizeof k, "r%05d", (int)ts_below(r, (uint64_t)nkeys));
    ts_fill(v, n, ts_next(r));
    CHECK_OK(cairn_put(t, 0, ts_str(k), ts_sl(v, n), 0));
  }
  if (ts_chance(r, 1, 4)) {
    void *big = ts_value_new(30000, 1);
    CHECK_OK(cairn_put(t, 0, ts_str("big"), ts_sl(big, 30000), 0));
    free(big);
  }
  CHECK_OK(cairn_commit(t));
}

static void test_free_reuse(void) {
  cairn_db *db;
  ts_rng r;
  int nkeys = 500, rounds = (int)ts_scaled(400, 60);
  ts_rng_seed(&r, 1);
  cairn_platform_memory_reset();
  db = open_new("reuse.db", 4096);
  if (!db)
    return;
  for (int i = 0; i < 20; i++)
    overwrite_round(db, &r, nkeys);
  uint64_t warm = file_size(db);
  for (int i = 0; i < rounds; i++)
    overwrite_round(db, &r, nkeys);
  uint64_t after = file_size(db);
  if (!CHECK(after <= warm + warm / 2 + 64 * 4096))
    printf("    file grew from %llu to %llu bytes with no snapshot held\n",
           (unsigned long long)warm, (unsigned long long)after);
  /* with a snapshot held, freed pages cannot be reused: the file grows */
  cairn_txn *snap = NULL;
  CHECK_OK(cairn_begin(db, CAIRN_TXN_RDONLY, &snap));
  for (int i = 0; i < rounds; i++) {
    overwrite_round(db, &r, nkeys);
    /* each checkpoint replaces pages the snapshot still reads */
    if (i % 8 == 7)
      CHECK_OK(cairn_checkpoint(db));
  }
  uint64_t held = file_size(db);
  CHECK(held > after + 16 * 4096);
  cairn_db_stat st;
  if (CHECK_OK(cairn_db_stat_get(db, &st)))
    CHECK(st.pages_pinned > 16);
  cairn_abort(snap);
  /* released: growth stops again */
  for (int i = 0; i < 20; i++)
    overwrite_round(db, &r, nkeys);
  uint64_t warm2 = file_size(db);
  for (int i = 0; i < rounds; i++)
    overwrite_round(db, &r, nkeys);
  CHECK(file_size(db) <= warm2 + 64 * 4096);
  check_clean(db);
  CHECK_OK(cairn_close(db));
}

/* ---- cairn_check on assorted good databases -------------------------------
 */

static void test_check_good(void) {
  cairn_db *db;
  cairn_platform_memory_reset();
  db = open_new("check.db", 4096);
  if (!db)
    return;
  check_clean(db); /* fresh */
  CHECK_OK(cairn_check(db, NULL, NULL));
  cairn_txn *t = NULL, *r = NULL;
  cairn_cf cfs[3];
  CHECK_OK(cairn_begin(db, 0, &t));
  for (int i = 0; i < 3; i++) {
    char name[8];
    snprintf(name, sizeof name, "c%d", i);
    CHECK_OK(cairn_cf_open(t, name, CAIRN_CF_CREATE, &cfs[i]));
    for (int j = 0; j < 500 * (i + 1); j++) {
      char k[16];
      snprintf(k, sizeof k, "%d-%05d", i, j);
      CHECK_OK(put_s(t, cfs[i], k, k));
    }
  }
  CHECK_OK(cairn_commit(t));
  check_clean(db);
  CHECK_OK(cairn_begin(db, CAIRN_TXN_RDONLY, &r)); /* pins pages */
  CHECK_OK(cairn_begin(db, 0, &t));
  CHECK_OK(cairn_cf_drop(t, cfs[1]));
  CHECK_OK(cairn_commit(t));
  check_clean(db); /* pinned pages are accounted for */
  cairn_abort(r);
  CHECK_OK(cairn_begin(db, 0, &t));
  CHECK_OK(put_s(t, 0, "x", "y"));
  CHECK_OK(cairn_commit(t));
  check_clean(db);
  db = reopen(db, "check.db");
  if (!db)
    return;
  check_clean(db);
  CHECK_OK(cairn_close(db));
}

/* ---- the real file: mmap reads and flock --------------------------------- */

#ifdef CAIRN_HAVE_UNIX_PLATFORM
static void test_unix(void) {
  char *dir = ts_mkdtemp();
  char path[4200];
  cairn_db *db = NULL, *db2 = NULL;
  cairn_txn *t = NULL;
  cairn_db_stat st;
  snprintf(path, sizeof path, "%s/u.db", dir);
  /* NULL options: the host default platform, CREATE, sync durability */
  if (CHECK_OK(cairn_open(path, NULL, &db))) {
    if (CHECK_OK(cairn_db_stat_get(db, &st))) {
      CHECK(st.platform && strcmp(st.platform, "unix") == 0);
      CHECK(st.mapped == 1);
    }
    CHECK_OK(cairn_begin(db, 0, &t));
    for (int i = 0; i < 3000; i++) {
      char k[16];
      snprintf(k, sizeof k, "u%05d", i);
      CHECK_OK(put_s(t, 0, k, k));
    }
    void *big = ts_value_new(1 << 20, 3);
    CHECK_OK(cairn_put(t, 0, ts_str("big"), ts_sl(big, 1 << 20), 0));
    free(big);
    CHECK_OK(cairn_commit(t));
    /* flock: a second writer handle in this process is refused */
    db2 = (cairn_db *)1;
    CHECK_RC(cairn_open(path, NULL, &db2), CAIRN_BUSY);
    CHECK(db2 == NULL);
    /* reads come from the map and stay valid while the file grows */
    cairn_txn *r = NULL;
    cairn_slice v;
    CHECK_OK(cairn_begin(db, CAIRN_TXN_RDONLY, &r));
    CHECK_OK(cairn_get(r, 0, ts_str("big"), &v));
    const void *p = v.data;
    CHECK_OK(cairn_begin(db, 0, &t));
    big = ts_value_new(4 << 20, 4);
    CHECK_OK(cairn_put(t, 0, ts_str("big2"), ts_sl(big, 4 << 20), 0));
    free(big);
    CHECK_OK(cairn_commit(t));
    CHECK(ts_value_eq(p, v.size, 3, 1 << 20));
    CHECK(has(r, 0, "u01234", "u01234"));
    cairn_abort(r);
    check_clean(db);
    CHECK_OK(cairn_close(db));
  }
  /* reopen mapped and with NOMMAP: same content */
  for (int nommap = 0; nommap < 2; nommap++) {
    cairn_options o;
    cairn_options_init(&o);
    o.flags = nommap ? CAIRN_OPEN_NOMMAP : 0;
    o.cache_pages = nommap ? 16 : 0; /* tiny cache: eviction */
    db = NULL;
    if (!CHECK_OK(cairn_open(path, &o, &db)))
      continue;
    if (CHECK_OK(cairn_db_stat_get(db, &st)))
      CHECK(st.mapped == !nommap);
    CHECK_OK(cairn_begin(db, CAIRN_TXN_RDONLY, &t));
    int bad = 0;
    for (int i = 0; i < 3000; i += 7) {
      char k[16];
      snprintf(k, sizeof k, "u%05d", i);
      bad += !has(t, 0, k, k);
    }
    CHECK(bad == 0);
    /* cursors in both directions and seeks: with 16 cache pages a scan
     * evicts the pages it left behind while it keeps its leaf (ASan checks
     * the slices it returns). A txn of its own: cairn_get pins its pages
     * for the txn's life, which would keep every leaf resident. */
    cairn_abort(t);
    CHECK_OK(cairn_begin(db, CAIRN_TXN_RDONLY, &t));
    cairn_cursor *c = NULL;
    if (CHECK_OK(cairn_cursor_open(t, 0, &c))) {
      int n = 0, order = 1;
      /* "big" and "big2" sort before the u keys */
      for (int rc = cairn_cursor_seek(c, ts_str("u"));
           rc == CAIRN_OK && n < 3000; rc = cairn_cursor_next(c), n++) {
        char k[16];
        cairn_slice ck, cv;
        snprintf(k, sizeof k, "u%05d", n);
        order &= CHECK_OK(cairn_cursor_get(c, &ck, &cv)) && ck.size == 6 &&
                 memcmp(ck.data, k, 6) == 0 && cv.size == 6 &&
                 memcmp(cv.data, k, 6) == 0;
      }
      CHECK(n == 3000 && order);
      int back = 0;
      for (int rc = cairn_cursor_seek(c, ts_str("u02999")); rc == CAIRN_OK;
           rc = cairn_cursor_prev(c))
        back++;
      CHECK(back == 3002);
      int seeks_ok = 1;
      for (int i = 0; i < 3000; i += 97) {
        char k[16];
        cairn_slice ck;
        snprintf(k, sizeof k, "u%05d", i);
        seeks_ok &= cairn_cursor_seek(c, ts_str(k)) == CAIRN_OK;
        for (int j = 0; j < 40 && i + j < 3000; j++) {
          snprintf(k, sizeof k, "u%05d", i + j);
          seeks_ok &= cairn_cursor_get(c, &ck, NULL) == CAIRN_OK &&
                      ck.size == 6 && memcmp(ck.data, k, 6) == 0;
          if (i + j + 1 < 3000)
            seeks_ok &= cairn_cursor_next(c) == CAIRN_OK;
        }
      }
      CHECK(seeks_ok);
      /* a second cursor seeking far away evicts every page no one pins:
       * the first one's leaf must stay pinned across its moves */
      cairn_cursor *far = NULL;
      if (CHECK_OK(cairn_cursor_open(t, 0, &far))) {
        int steady = 1;
        CHECK_OK(cairn_cursor_seek(c, ts_str("u")));
        for (int i = 0; i < 3000; i++) {
          char k[16];
          cairn_slice ck;
          if (i % 50 == 0) /* every leaf once: the cache must evict */
            for (int rc = cairn_cursor_first(far); rc == CAIRN_OK;
                 rc = cairn_cursor_next(far))
              ;
          for (int j = 1; j <= 3; j++) {
            snprintf(k, sizeof k, "u%05d", (i * 7 + j * 1009) % 3000);
            steady &= cairn_cursor_seek(far, ts_str(k)) == CAIRN_OK;
          }
          snprintf(k, sizeof k, "u%05d", i);
          steady &= cairn_cursor_get(c, &ck, NULL) == CAIRN_OK &&
                    ck.size == 6 && memcmp(ck.data, k, 6) == 0;
          if (i + 1 < 3000)
            steady &= cairn_cursor_next(c) == CAIRN_OK;
        }
        CHECK(steady);
        cairn_cursor_close(far);
      }
      cairn_cursor_close(c);
    }
    cairn_slice v;
    if (CHECK_OK(cairn_get(t, 0, ts_str("big2"), &v)))
      CHECK(ts_value_eq(v.data, v.size, 4, 4 << 20));
    cairn_abort(t);
    check_clean(db);
    CHECK_OK(cairn_close(db));
  }
  cairn_options o;
  cairn_options_init(&o);
  o.flags = CAIRN_OPEN_RDONLY;
  db = NULL;
  if (CHECK_OK(cairn_open(path, &o, &db))) {
    CHECK_RC(cairn_begin(db, 0, &t), CAIRN_READONLY);
    CHECK_OK(cairn_begin(db, CAIRN_TXN_RDONLY, &t));
    CHECK(has(t, 0, "u00000", "u00000"));
    cairn_abort(t);
    CHECK_OK(cairn_close(db));
  }
  /* a file of foreign bytes */
  char fpath[4200];
  snprintf(fpath, sizeof fpath, "%s/foreign", dir);
  FILE *f = fopen(fpath, "wb");
  if (f) {
    for (int i = 0; i < 20000; i++)
      fputc((i * 131) & 0xff, f);
    fclose(f);
  }
  db = (cairn_db *)1;
  int rc = cairn_open(fpath, NULL, &db);
  CHECK(rc == CAIRN_NOTADB || rc == CAIRN_CORRUPT);
  CHECK(db == NULL);
  /* missing without CREATE */
  snprintf(fpath, sizeof fpath, "%s/missing.db", dir);
  o.flags = 0;
  CHECK_RC(cairn_open(fpath, &o, &db), CAIRN_NOTFOUND);
  ts_rmtree(dir);
  free(dir);
}
#endif

int main(void) {
  double t0 = ts_now_ms();
  fault_platform_install();
  test_strerror();
  test_errmsg();
  test_options_defaults();
  test_page_sizes();
  test_open_missing();
  test_open_foreign_bytes();
  test_busy_and_readonly();
  test_txn_basics();
  test_cf();
  test_data();
  test_huge_value();
  test_many_keys();
  test_misuse();
  test_cursor_basic();
  test_cursor_mutation();
  test_lazy_durability();
  test_stats();
  test_free_reuse();
  test_check_good();
#ifdef CAIRN_HAVE_UNIX_PLATFORM
  test_unix();
#endif
  cairn_platform_memory_reset();
  fault_reset();
  printf("test_api: %.1f s\n", (ts_now_ms() - t0) / 1000.0);
  return test_summary();
}
