/*
 * test_fold.c — the checkpoint's fold of the overlay into the tree
 * (core/fold.c), against an in-test model.
 *
 * What must hold:
 *   - after every checkpoint the tree holds exactly the model's keys and
 *     values (inline and overflow values, several column families, aborted
 *     txns, deletes down to an empty tree and back), cairn_check passes and
 *     the entry count is exact, also after reopen;
 *   - a fold rewrites only the part of the tree the overlay touches:
 *     appending a few keys to a large tree writes a handful of pages;
 *   - folded leaves are packed: a tree loaded by random folds needs barely
 *     more leaves than its entries fill, and stays so through rewrites;
 *   - at close the free pages' disk blocks go back to the filesystem (holes),
 *     and the database reopens whole: no page a meta reaches was punched,
 *     even after two checkpoints that share one txn id (the later meta
 *     wins), and punched pages are reused by later commits;
 *   - the page warmer (core/warm.c) touches only pages inside the map it
 *     was given, and a cancel or a new job stops a running one.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn.h"
#include "platform.h"
#include "test_util.h"

#include "test_support.h"
#include "warm.h"

#ifdef CAIRN_HAVE_UNIX_PLATFORM
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#endif

#define KEYS 3000
#define NCF 2

typedef struct model {
  uint32_t vlen[NCF][KEYS]; /* 0 = absent */
  uint64_t seed[NCF][KEYS];
} model;

static cairn_db *open_db(const char *path, int create) {
  cairn_options o;
  ts_options(&o, "memory", 4096);
  if (create)
    o.flags |= CAIRN_OPEN_CREATE;
  cairn_db *db = NULL;
  CHECK_OK(cairn_open(path, &o, &db));
  return db;
}

/* Model index i is key "key%07d" of i * 7919 % KEYS (a permutation, so
 * consecutive indexes land all over the key space). */
static int index_of[KEYS];

static void key_of(int i, char *k) {
  snprintf(k, 16, "key%07d", i * 7919 % KEYS);
}

/* Values: mostly small, some past the inline limit (overflow runs). */
static uint32_t pick_len(ts_rng *r) {
  return ts_chance(r, 1, 20) ? 1500 + (uint32_t)ts_below(r, 9000)
                             : 1 + (uint32_t)ts_below(r, 200);
}

static void random_txn(cairn_db *db, cairn_cf *cfs, model *m, ts_rng *r,
                       int ops, int abort_it) {
  cairn_txn *t = NULL;
  if (!CHECK_OK(cairn_begin(db, 0, &t)))
    return;
  model *next = malloc(sizeof *next);
  if (!next) {
    cairn_abort(t);
    return;
  }
  memcpy(next, m, sizeof *next);
  uint8_t *v = malloc(16384);
  for (int j = 0; j < ops && v; j++) {
    int c = (int)ts_below(r, NCF), i = (int)ts_below(r, KEYS);
    char k[16];
    key_of(i, k);
    if (ts_chance(r, 1, 3)) {
      int rc = cairn_del(t, cfs[c], ts_str(k));
      CHECK_RC(rc, next->vlen[c][i] ? CAIRN_OK : CAIRN_NOTFOUND);
      next->vlen[c][i] = 0;
    } else {
      uint32_t n = pick_len(r);
      uint64_t s = ts_next(r);
      ts_fill(v, n, s);
      CHECK_OK(cairn_put(t, cfs[c], ts_str(k), ts_sl(v, n), 0));
      next->vlen[c][i] = n;
      next->seed[c][i] = s;
    }
  }
  free(v);
  if (abort_it) {
    cairn_abort(t);
  } else if (CHECK_OK(cairn_commit(t))) {
    memcpy(m, next, sizeof *m);
  }
  free(next);
}

/* Every key of the model, in key order through a cursor, and the count. */
static void verify(cairn_db *db, cairn_cf *cfs, const model *m) {
  cairn_txn *t = NULL;
  if (!CHECK_OK(cairn_begin(db, CAIRN_TXN_RDONLY, &t)))
    return;
  uint8_t *want = malloc(16384);
  for (int c = 0; c < NCF && want; c++) {
    uint64_t n = 0;
    for (int i = 0; i < KEYS; i++)
      n += m->vlen[c][i] != 0;
    cairn_cf_stat cs;
    if (CHECK_OK(cairn_cf_stat_get(t, cfs[c], &cs)))
      CHECK(cs.entries == n);
    cairn_cursor *cur = NULL;
    if (!CHECK_OK(cairn_cursor_open(t, cfs[c], &cur)))
      continue;
    uint64_t seen = 0;
    int rc = cairn_cursor_first(cur);
    while (rc == CAIRN_OK) {
      cairn_slice k, v;
      if (!CHECK_OK(cairn_cursor_get(cur, &k, &v)))
        break;
      int idx = -1;
      if (k.size == 10 && memcmp(k.data, "key", 3) == 0) {
        int num = 0;
        for (int d = 3; d < 10; d++)
          num = num * 10 + (((const char *)k.data)[d] - '0');
        if (num >= 0 && num < KEYS)
          idx = index_of[num];
      }
      if (!CHECK(idx >= 0 && m->vlen[c][idx] == v.size))
        break;
      ts_fill(want, v.size, m->seed[c][idx]);
      CHECK(memcmp(want, v.data, v.size) == 0);
      seen++;
      rc = cairn_cursor_next(cur);
    }
    CHECK_RC(rc, CAIRN_NOTFOUND);
    CHECK(seen == n);
    cairn_cursor_close(cur);
  }
  free(want);
  cairn_abort(t);
  CHECK_OK(cairn_check(db, NULL, NULL));
}

static void open_cfs(cairn_db *db, cairn_cf *cfs) {
  cairn_txn *t = NULL;
  cfs[0] = CAIRN_DEFAULT_CF;
  if (!CHECK_OK(cairn_begin(db, 0, &t)))
    return;
  CHECK_OK(cairn_cf_open(t, "second", CAIRN_CF_CREATE, &cfs[1]));
  CHECK_OK(cairn_commit(t));
}

static void test_random_folds(void) {
  ts_set_ctx("random folds against a model");
  cairn_platform_memory_reset();
  cairn_db *db = open_db("fold.db", 1);
  if (!db)
    return;
  model *m = calloc(1, sizeof *m);
  cairn_cf cfs[NCF];
  open_cfs(db, cfs);
  ts_rng r;
  ts_rng_seed(&r, 7);
  int rounds = (int)ts_scaled(60, 12);
  for (int round = 0; round < rounds && m; round++) {
    int txns = 1 + (int)ts_below(&r, 4);
    for (int x = 0; x < txns; x++)
      random_txn(db, cfs, m, &r, 1 + (int)ts_below(&r, 400),
                 ts_chance(&r, 1, 6));
    CHECK_OK(cairn_checkpoint(db));
    verify(db, cfs, m);
    if (round % 10 == 9) {
      /* delete everything: the fold must leave empty trees */
      cairn_txn *t = NULL;
      CHECK_OK(cairn_begin(db, 0, &t));
      for (int c = 0; c < NCF; c++)
        for (int i = 0; i < KEYS; i++)
          if (m->vlen[c][i]) {
            char k[16];
            key_of(i, k);
            CHECK_OK(cairn_del(t, cfs[c], ts_str(k)));
            m->vlen[c][i] = 0;
          }
      CHECK_OK(cairn_commit(t));
      CHECK_OK(cairn_checkpoint(db));
      cairn_txn *rt = NULL;
      cairn_cf_stat cs;
      if (CHECK_OK(cairn_begin(db, CAIRN_TXN_RDONLY, &rt)) &&
          CHECK_OK(cairn_cf_stat_get(rt, cfs[1], &cs)))
        CHECK(cs.entries == 0 && cs.depth == 0 && cs.leaf_pages == 0);
      cairn_abort(rt);
      verify(db, cfs, m);
    }
    if (round % 7 == 6) {
      CHECK_OK(cairn_close(db));
      db = open_db("fold.db", 0);
      if (!db)
        break;
      open_cfs(db, cfs);
      verify(db, cfs, m);
    }
  }
  free(m);
  if (db)
    CHECK_OK(cairn_close(db));
}

static uint64_t pages_written(cairn_db *db) {
  cairn_metrics mt;
  return CHECK_OK(cairn_metrics_get(db, &mt)) ? mt.pages_written : 0;
}

static void put_range(cairn_db *db, int from, int to, int stride) {
  cairn_txn *t = NULL;
  if (!CHECK_OK(cairn_begin(db, 0, &t)))
    return;
  for (int i = from; i < to; i += stride) {
    char k[24], v[64];
    snprintf(k, sizeof k, "h%010d", i);
    snprintf(v, sizeof v, "value %d with some padding to fill", i);
    CHECK_OK(cairn_put(t, CAIRN_DEFAULT_CF, ts_str(k), ts_str(v), 0));
  }
  CHECK_OK(cairn_commit(t));
}

static void test_fold_touches_only_its_range(void) {
  ts_set_ctx("a fold rewrites only what the overlay touches");
  cairn_platform_memory_reset();
  cairn_db *db = open_db("append.db", 1);
  if (!db)
    return;
  int n = (int)ts_scaled(40000, 20000);
  for (int i = 0; i < n; i += 5000)
    put_range(db, i, i + 5000, 1);
  CHECK_OK(cairn_checkpoint(db));
  cairn_txn *t = NULL;
  cairn_cf_stat before;
  CHECK_OK(cairn_begin(db, CAIRN_TXN_RDONLY, &t));
  CHECK_OK(cairn_cf_stat_get(t, CAIRN_DEFAULT_CF, &before));
  cairn_abort(t);
  CHECK(before.depth >= 3);
  /* append 50 heights: the rightmost path plus a new leaf or two */
  uint64_t w0 = pages_written(db);
  put_range(db, n, n + 50, 1);
  CHECK_OK(cairn_checkpoint(db));
  uint64_t w = pages_written(db) - w0;
  if (!CHECK(w <= before.depth + 8))
    printf("    appending 50 keys to %llu leaves wrote %llu pages\n",
           (unsigned long long)before.leaf_pages, (unsigned long long)w);
  /* one key in the middle: its path only */
  w0 = pages_written(db);
  put_range(db, n / 2 + 1, n / 2 + 2, 1);
  CHECK_OK(cairn_checkpoint(db));
  w = pages_written(db) - w0;
  if (!CHECK(w <= before.depth + 8))
    printf("    one key wrote %llu pages\n", (unsigned long long)w);
  CHECK_OK(cairn_check(db, NULL, NULL));
  CHECK_OK(cairn_close(db));
}

/* Bytes the default cf's entries take in leaves (entries + slots). */
static void test_folded_leaves_are_packed(void) {
  ts_set_ctx("folded leaves are packed");
  cairn_platform_memory_reset();
  cairn_db *db = open_db("packed.db", 1);
  if (!db)
    return;
  int n = (int)ts_scaled(30000, 10000);
  ts_rng r;
  ts_rng_seed(&r, 3);
  /* random order, a checkpoint every few thousand keys: each fold lands
   * keys all over the tree (a B-tree insert would split leaves in half) */
  for (int base = 0; base < n; base += 3000) {
    cairn_txn *t = NULL;
    CHECK_OK(cairn_begin(db, 0, &t));
    for (int j = 0; j < 3000; j++) {
      uint8_t k[32], v[100];
      ts_fill(k, sizeof k, ts_next(&r));
      ts_fill(v, sizeof v, ts_next(&r));
      CHECK_OK(cairn_put(t, CAIRN_DEFAULT_CF, ts_sl(k, 32), ts_sl(v, 100), 0));
    }
    CHECK_OK(cairn_commit(t));
    CHECK_OK(cairn_checkpoint(db));
  }
  cairn_txn *t = NULL;
  cairn_cf_stat cs;
  CHECK_OK(cairn_begin(db, CAIRN_TXN_RDONLY, &t));
  CHECK_OK(cairn_cf_stat_get(t, CAIRN_DEFAULT_CF, &cs));
  cairn_abort(t);
  /* an entry: 8-byte header + 32 + 100 and a 2-byte slot; 28 fit in the
   * 4064 bytes a page has for them */
  uint64_t need = (cs.entries + 27) / 28;
  if (!CHECK(cs.leaf_pages <= need + need / 50 + 2))
    printf("    %llu entries in %llu leaves (%llu would hold them)\n",
           (unsigned long long)cs.entries, (unsigned long long)cs.leaf_pages,
           (unsigned long long)need);
  CHECK_OK(cairn_check(db, NULL, NULL));
  CHECK_OK(cairn_close(db));
}

#ifdef CAIRN_HAVE_UNIX_PLATFORM
static uint64_t disk_bytes(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 ? (uint64_t)st.st_blocks * 512 : 0;
}

/* Does this filesystem give punched blocks back? (tmpfs and ext4 do.) */
static int fs_punches(void) {
  static char buf[65536];
  int fd = open("probe.bin", O_CREAT | O_TRUNC | O_RDWR, 0644);
  if (fd < 0)
    return 0;
  memset(buf, 1, sizeof buf);
  int ok = write(fd, buf, sizeof buf) == (ssize_t)sizeof buf && fsync(fd) == 0;
  uint64_t before = disk_bytes("probe.bin");
#ifdef FALLOC_FL_PUNCH_HOLE
  ok = ok &&
       fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 32768) == 0;
#else
  ok = 0;
#endif
  ok = ok && disk_bytes("probe.bin") < before;
  close(fd);
  unlink("probe.bin");
  return ok;
}

static void load_random(cairn_db *db, ts_rng *r, int n) {
  cairn_txn *t = NULL;
  if (!CHECK_OK(cairn_begin(db, 0, &t)))
    return;
  for (int j = 0; j < n; j++) {
    uint8_t k[32], v[100];
    ts_fill(k, sizeof k, ts_next(r));
    ts_fill(v, sizeof v, ts_next(r));
    CHECK_OK(cairn_put(t, CAIRN_DEFAULT_CF, ts_sl(k, 32), ts_sl(v, 100), 0));
  }
  CHECK_OK(cairn_commit(t));
  CHECK_OK(cairn_checkpoint(db));
}

static uint64_t count_keys_in(cairn_txn *t) {
  cairn_cursor *c = NULL;
  uint64_t n = 0;
  if (CHECK_OK(cairn_cursor_open(t, CAIRN_DEFAULT_CF, &c))) {
    int rc = cairn_cursor_first(c);
    while (rc == CAIRN_OK) {
      n++;
      rc = cairn_cursor_next(c);
    }
    CHECK_RC(rc, CAIRN_NOTFOUND);
    cairn_cursor_close(c);
  }
  return n;
}

static uint64_t count_keys(cairn_db *db) {
  cairn_txn *t = NULL;
  if (!CHECK_OK(cairn_begin(db, CAIRN_TXN_RDONLY, &t)))
    return 0;
  uint64_t n = count_keys_in(t);
  cairn_abort(t);
  return n;
}

static void test_close_punches_free_pages(void) {
  ts_set_ctx("close gives free pages' blocks back");
  cairn_options o;
  ts_options(&o, "unix", 4096);
  o.flags |= CAIRN_OPEN_CREATE;
  unlink("punch.db"); /* a new database each run */
  unlink("punch.db-wal");
  cairn_db *db = NULL;
  if (!CHECK_OK(cairn_open("punch.db", &o, &db)))
    return;
  ts_rng r;
  ts_rng_seed(&r, 11);
  int n = (int)ts_scaled(20000, 4000);
  load_random(db, &r, n / 4);
  /* a snapshot of the first tree: the checkpoints below drop its pages
   * from the process's memory (mapped mode), it must read them back */
  cairn_txn *old = NULL;
  CHECK_OK(cairn_begin(db, CAIRN_TXN_RDONLY, &old));
  for (int i = 1; i < 4; i++) /* each fold rewrites the tree: free pages */
    load_random(db, &r, n / 4);
  CHECK(count_keys_in(old) == (uint64_t)(n / 4));
  cairn_abort(old);
  CHECK_OK(cairn_checkpoint(db)); /* two metas of one txn id */
  cairn_db_stat st;
  CHECK_OK(cairn_db_stat_get(db, &st));
  CHECK(st.pages_free > st.pages_in_use / 4);
  CHECK_OK(cairn_close(db));
  uint64_t used = (st.pages_in_use + 2) * 4096;
  if (fs_punches()) {
    if (!CHECK(disk_bytes("punch.db") <= used + 64 * 4096))
      printf("    %llu bytes on disk, %llu in use, file %llu\n",
             (unsigned long long)disk_bytes("punch.db"),
             (unsigned long long)used, (unsigned long long)st.file_size);
  } else {
    printf("    (this filesystem keeps punched blocks: size not checked)\n");
  }
  o.flags &= ~CAIRN_OPEN_CREATE;
  if (!CHECK_OK(cairn_open("punch.db", &o, &db)))
    return;
  CHECK(count_keys(db) == (uint64_t)(n / 4) * 4);
  CHECK_OK(cairn_check(db, NULL, NULL));
  load_random(db, &r, n / 4); /* reuses punched pages */
  CHECK_OK(cairn_close(db));
  if (!CHECK_OK(cairn_open("punch.db", &o, &db)))
    return;
  CHECK(count_keys(db) == (uint64_t)(n / 4) * 5);
  CHECK_OK(cairn_check(db, NULL, NULL));
  CHECK_OK(cairn_close(db));
}
#endif /* CAIRN_HAVE_UNIX_PLATFORM */

/* The warmer over a plain buffer standing in for a map: jobs with pages
 * past its end (skipped), replaced by newer jobs, cancelled, and freed
 * while one runs. ASan/valgrind catch a read outside the buffer or of a
 * freed one. */
static void test_warmer(void) {
  ts_set_ctx("page warmer");
  enum { PS = 4096, NPG = 256 };
  uint8_t *map = calloc(NPG, PS);
  warmer *w = NULL;
  if (!CHECK(map != NULL))
    return;
  for (int round = 0; round < 50; round++) {
    pgvec pages = {0};
    for (uint64_t i = 0; i < 4000; i++)
      if (pgvec_push(&pages, (i * 37 + (uint64_t)round) % (2 * NPG)))
        break;
    warmer_submit(&w, map, (uint64_t)NPG * PS, PS, &pages);
    CHECK(pages.len == 0 && pages.v == NULL); /* taken over */
    if (round % 3 == 0)
      warmer_cancel(w);
  }
  pgvec none = {0};
  warmer_submit(&w, map, (uint64_t)NPG * PS, PS, &none); /* nothing to do */
  warmer_free(w);
  free(map); /* after warmer_free nothing reads it */
  warmer_free(NULL);
  warmer_cancel(NULL);
}

int main(void) {
  test_warmer();
  for (int i = 0; i < KEYS; i++)
    index_of[i * 7919 % KEYS] = i;
  test_random_folds();
  test_fold_touches_only_its_range();
  test_folded_leaves_are_packed();
#ifdef CAIRN_HAVE_UNIX_PLATFORM
  test_close_punches_free_pages();
#endif
  return test_summary();
}
