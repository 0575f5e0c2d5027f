/*
 * wasi_platform_test.c — what only the "wasi" platform does (wasm32-wasi
 * builds; the generic platform contract runs on it in test_platform.c):
 *
 *   (no args)   in one process:
 *     - the default platform is "wasi", reads use the page cache (no map),
 *       and the cache stays within cache_pages: a database many times the
 *       cache is written, scanned and point-read with cache_pages = 16, and
 *       evictions happen while every value reads back exactly;
 *     - a second writer on the same file is CAIRN_BUSY naming the lock
 *       file; readers share; a reader keeps writers out and vice versa;
 *     - a lock file left behind with an old time is reported "probably
 *       stale" with the remedy; cairn_wasi_break_lock() clears it and the
 *       database opens and holds its data.
 *   die DB      open DB for writing, commit, and exit without closing (a
 *               process killed mid-use: its lock file stays behind)
 *   recover DB  the next process: open is CAIRN_BUSY and says what to do;
 *               after cairn_wasi_break_lock the data committed by `die` is
 *               there and the database passes cairn_check
 * ctest runs `die` then `recover` as two processes (a fixture).
 */
#define _POSIX_C_SOURCE 200809L

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cairn.h"
#include "platform.h"
#include "test_util.h"
#include "wasi_platform.h"

#include "test_support.h"

static int exists(const char *path) { return access(path, F_OK) == 0; }

static void key_of(uint8_t k[8], uint64_t i) {
  for (int b = 0; b < 8; b++)
    k[b] = (uint8_t)(i >> (56 - 8 * b));
}

static void test_cache_bound(void) {
  const char *path = "cache.db";
  unlink(path);
  cairn_options o;
  cairn_options_init(&o);
  o.cache_pages = 16;
  cairn_db *db = NULL;
  if (!CHECK_OK(cairn_open(path, &o, &db)))
    return;
  cairn_db_stat st;
  if (CHECK_OK(cairn_db_stat_get(db, &st))) {
    CHECK(st.platform && strcmp(st.platform, "wasi") == 0);
    CHECK(st.mapped == 0);
  }
  long n = ts_scaled(20000, 3000);
  for (long i = 0; i < n;) {
    cairn_txn *t = NULL;
    if (!CHECK_OK(cairn_begin(db, 0, &t)))
      break;
    for (long e = i + 1000; i < n && i < e; i++) {
      uint8_t k[8];
      key_of(k, (uint64_t)i * 2654435761u);
      void *v = ts_value_new(100, (uint64_t)i);
      CHECK_OK(cairn_put(t, CAIRN_DEFAULT_CF, ts_sl(k, 8), ts_sl(v, 100), 0));
      free(v);
    }
    CHECK_OK(cairn_commit(t));
  }
  /* Every page in the file, none left in memory by the write-ahead log:
   * the reads below go through the cache. */
  CHECK_OK(cairn_checkpoint(db));
  if (CHECK_OK(cairn_db_stat_get(db, &st)))
    CHECK(st.page_count > 16 * 10); /* the file is many times the cache */
  /* Full scan and point reads, all through a 16-page cache. */
  cairn_txn *t = NULL;
  if (CHECK_OK(cairn_begin(db, CAIRN_TXN_RDONLY, &t))) {
    cairn_cursor *c = NULL;
    long seen = 0, bad = 0;
    if (CHECK_OK(cairn_cursor_open(t, CAIRN_DEFAULT_CF, &c))) {
      for (int rc = cairn_cursor_first(c); rc == CAIRN_OK;
           rc = cairn_cursor_next(c))
        seen++;
      cairn_cursor_close(c);
    }
    CHECK(seen == n);
    for (long i = 0; i < n; i += 7) {
      uint8_t k[8];
      cairn_slice v;
      key_of(k, (uint64_t)i * 2654435761u);
      if (cairn_get(t, CAIRN_DEFAULT_CF, ts_sl(k, 8), &v) != CAIRN_OK ||
          !ts_value_eq(v.data, v.size, (uint64_t)i, 100))
        bad++;
    }
    CHECK(bad == 0);
    cairn_abort(t);
  }
  cairn_metrics m;
  if (CHECK_OK(cairn_metrics_get(db, &m))) {
    CHECK(m.cache_misses > 0);
    CHECK(m.cache_evictions > 0);
    printf("  cache_pages=16 over %llu pages: %llu hits, %llu misses, %llu "
           "evictions\n",
           (unsigned long long)st.page_count, (unsigned long long)m.cache_hits,
           (unsigned long long)m.cache_misses,
           (unsigned long long)m.cache_evictions);
  }
  CHECK_OK(cairn_check(db, NULL, NULL));
  CHECK_OK(cairn_close(db));
  CHECK(!exists("cache.db.lock"));
  unlink(path);
}

static void test_locks(void) {
  const char *path = "lock.db";
  unlink(path);
  cairn_options o, ro;
  cairn_options_init(&o);
  cairn_options_init(&ro);
  ro.flags = CAIRN_OPEN_RDONLY;
  cairn_db *w = NULL, *w2 = NULL, *r1 = NULL, *r2 = NULL;
  if (!CHECK_OK(cairn_open(path, &o, &w)))
    return;
  CHECK(exists("lock.db.lock"));
  CHECK_RC(cairn_open(path, &o, &w2), CAIRN_BUSY);
  CHECK(strstr(cairn_errmsg(), "lock.db.lock") != NULL);
  CHECK(strstr(cairn_errmsg(), "owner") != NULL);
  CHECK(strstr(cairn_errmsg(), "probably stale") == NULL); /* it is fresh */
  CHECK_RC(cairn_open(path, &ro, &r1), CAIRN_BUSY);
  CHECK_OK(cairn_close(w));
  CHECK(!exists("lock.db.lock"));
  /* Readers share, and keep a writer out. */
  CHECK_OK(cairn_open(path, &ro, &r1));
  CHECK_OK(cairn_open(path, &ro, &r2));
  CHECK_RC(cairn_open(path, &o, &w2), CAIRN_BUSY);
  CHECK(strstr(cairn_errmsg(), "lock.db.lock-r.") != NULL);
  CHECK(!exists("lock.db.lock")); /* the refused writer cleaned up */
  CHECK_OK(cairn_close(r1));
  CHECK_RC(cairn_open(path, &o, &w2), CAIRN_BUSY);
  CHECK_OK(cairn_close(r2));
  CHECK_OK(cairn_open(path, &o, &w2));
  CHECK_OK(cairn_close(w2));
  unlink(path);
}

static void test_stale(void) {
  const char *path = "stale.db";
  unlink(path);
  cairn_db *db = NULL;
  if (!CHECK_OK(cairn_open(path, NULL, &db)))
    return;
  cairn_txn *t = NULL;
  if (CHECK_OK(cairn_begin(db, 0, &t))) {
    CHECK_OK(cairn_put(t, 0, ts_str("k"), ts_str("v"), 0));
    CHECK_OK(cairn_commit(t));
  }
  CHECK_OK(cairn_close(db));
  /* What a process that died an hour ago leaves behind. */
  FILE *f = fopen("stale.db.lock", "w");
  if (!CHECK(f != NULL))
    return;
  fputs("cairn-lock 1\nmode exclusive\nowner 0123456789abcdef\nruntime "
        "wasi\ncreated 2026-01-01T00:00:00Z\n",
        f);
  fclose(f);
  struct timespec old[2];
  clock_gettime(CLOCK_REALTIME, &old[0]);
  old[0].tv_sec -= 3600;
  old[1] = old[0];
  CHECK(utimensat(AT_FDCWD, "stale.db.lock", old, 0) == 0);
  CHECK_RC(cairn_open(path, NULL, &db), CAIRN_BUSY);
  const char *msg = cairn_errmsg();
  printf("  stale lock reported as: %s\n", msg);
  CHECK(strstr(msg, "probably stale") != NULL);
  CHECK(strstr(msg, "0123456789abcdef") != NULL);
  CHECK(strstr(msg, "delete the lock file") != NULL);
  CHECK(exists("stale.db.lock")); /* never broken automatically */
  CHECK_OK(cairn_wasi_break_lock(path));
  CHECK(!exists("stale.db.lock"));
  CHECK_RC(cairn_wasi_break_lock(path), CAIRN_NOTFOUND);
  if (CHECK_OK(cairn_open(path, NULL, &db))) {
    cairn_slice v;
    if (CHECK_OK(cairn_begin(db, CAIRN_TXN_RDONLY, &t))) {
      CHECK_OK(cairn_get(t, 0, ts_str("k"), &v));
      CHECK(v.size == 1 && memcmp(v.data, "v", 1) == 0);
      cairn_abort(t);
    }
    CHECK_OK(cairn_close(db));
  }
  unlink(path);
}

/* ---- two processes: die, then recover -------------------------------------
 */

static int run_die(const char *path) {
  unlink(path);
  cairn_wasi_break_lock(path); /* from an earlier run of this test */
  cairn_db *db = NULL;
  if (!CHECK_OK(cairn_open(path, NULL, &db)))
    return test_summary();
  cairn_txn *t = NULL;
  if (CHECK_OK(cairn_begin(db, 0, &t))) {
    for (int i = 0; i < 500; i++) {
      uint8_t k[8];
      key_of(k, (uint64_t)i);
      CHECK_OK(cairn_put(t, 0, ts_sl(k, 8), ts_str("committed"), 0));
    }
    CHECK_OK(cairn_commit(t)); /* durable: sync mode */
  }
  if (CHECK_OK(cairn_begin(db, 0, &t))) /* in flight when the process dies */
    CHECK_OK(cairn_put(t, 0, ts_str("lost"), ts_str("x"), 0));
  char lock[600];
  snprintf(lock, sizeof lock, "%s.lock", path);
  CHECK(exists(lock));
  printf("  exiting without closing %s (its lock file stays)\n", path);
  fflush(stdout);
  _exit(test_failed_count ? 1 : 0);
}

static int run_recover(const char *path) {
  cairn_db *db = NULL;
  CHECK_RC(cairn_open(path, NULL, &db), CAIRN_BUSY);
  printf("  open after the crash: %s\n", cairn_errmsg());
  CHECK(strstr(cairn_errmsg(), "delete the lock file") != NULL);
  CHECK_OK(cairn_wasi_break_lock(path));
  if (CHECK_OK(cairn_open(path, NULL, &db))) {
    cairn_txn *t = NULL;
    if (CHECK_OK(cairn_begin(db, CAIRN_TXN_RDONLY, &t))) {
      int ok = 0;
      for (int i = 0; i < 500; i++) {
        uint8_t k[8];
        cairn_slice v;
        key_of(k, (uint64_t)i);
        ok += cairn_get(t, 0, ts_sl(k, 8), &v) == CAIRN_OK && v.size == 9 &&
              memcmp(v.data, "committed", 9) == 0;
      }
      CHECK(ok == 500);
      cairn_slice v;
      CHECK_RC(cairn_get(t, 0, ts_str("lost"), &v), CAIRN_NOTFOUND);
      cairn_abort(t);
    }
    CHECK_OK(cairn_check(db, NULL, NULL));
    CHECK_OK(cairn_close(db));
  }
  return test_summary();
}

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "die") == 0)
    return run_die(argv[2]);
  if (argc == 3 && strcmp(argv[1], "recover") == 0)
    return run_recover(argv[2]);
  if (argc != 1) {
    fprintf(stderr, "usage: %s [die DB | recover DB]\n", argv[0]);
    return 2;
  }
  cairn_platform *def = cairn_platform_find(NULL);
  CHECK(def && strcmp(def->name, "wasi") == 0);
  test_cache_bound();
  test_locks();
  test_stale();
  return test_summary();
}
