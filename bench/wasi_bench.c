/*
 * wasi_bench.c — workloads W1–W5 of shared/BENCH.md on cairn alone, one
 * source built twice: natively (cmake/wasi_native) and for wasm32-wasi (the
 * `wasi` preset). bench/wasi_bench.sh runs both in the same run on the same
 * disk and reports WASI / native. N = 100,000 by default (BENCH.md: WASI).
 *
 *   wasi_bench [--n N] [--commits C] [--scans S] [--cache-pages P] [--dir D]
 *              [--nommap 1]   (natively: page cache instead of the map)
 *              [--keep 1]     (leave the database file at the end)
 *              [--reads 1]    (only W3-W5, on the file --keep left with the
 *                              same --n and --commits: for profiling reads)
 *
 *   W1  bulk load: N puts, 100-byte values, 10,000 per durable commit
 *   W2  C (1,000) durable commits x 500 puts, half overwrite, 150-byte values
 *   W3  N random gets of existing keys after reopen, second pass
 *   W4  full ordered scan
 *   W5  S (100,000) x (seek a random existing key, read the next 50)
 *
 * Keys are 32 bytes from splitmix64 (fixed seed) as in bench/bench.c; a
 * value's first 8 bytes name its key, and every get and scan checks them, so
 * a wrong answer fails the run (exit 1) instead of looking fast. Results go
 * to stdout as "RESULT Wn value unit" lines (read by wasi_bench.sh), progress
 * to stderr. The database is DIR/wasi_bench.cairn (DIR default "."), removed
 * at the end. Under WASI, DIR must be inside a preopened directory, and reads
 * go through the page cache (no mmap in WASI preview1): --cache-pages
 * (default 16384 = 64 MiB of 4 KiB pages, the peers' cache budget in
 * BENCH.md) sets its bound; natively reads come from the map.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cairn.h"

#define KEY_SIZE 32
#define W1_VAL 100
#define W1_TXN 10000
#define W2_VAL 150
#define W2_PUTS 500
#define W3_BATCH 1000
#define W5_LEN 50
#define W5_BATCH 1000
#define SEED 0x5eed0f5ca1ab1e5ull

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t splitmix64(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static void make_key(uint64_t i, uint8_t k[KEY_SIZE]) {
  uint64_t s = SEED ^ (i * 0xd1b54a32d192ed03ull);
  for (int w = 0; w < KEY_SIZE / 8; w++) {
    uint64_t v = splitmix64(&s);
    memcpy(k + 8 * w, &v, 8);
  }
}

static void make_val(uint64_t i, uint8_t *v, size_t n) {
  for (int b = 0; b < 8; b++)
    v[b] = (uint8_t)(i >> (8 * b));
  for (size_t j = 8; j < n; j++)
    v[j] = (uint8_t)(i * 31 + j);
}

static uint64_t val_id(const void *v) {
  const uint8_t *p = v;
  uint64_t i = 0;
  for (int b = 0; b < 8; b++)
    i |= (uint64_t)p[b] << (8 * b);
  return i;
}

static void die(const char *what, int rc) {
  fprintf(stderr, "wasi_bench: %s: %s (%s)\n", what, cairn_strerror(rc),
          cairn_errmsg());
  exit(1);
}

static void ck(int rc, const char *what) {
  if (rc != CAIRN_OK)
    die(what, rc);
}

static uint64_t rng_state = 42;
static uint64_t below(uint64_t n) { return splitmix64(&rng_state) % n; }

static cairn_db *metrics_db; /* the database result() reports on */
static uint64_t last_hits, last_misses;

/* One result line; "INFO cache Wn hits misses" follows when the phase used
 * the page cache (cached mode), to tell hit-path from miss-path costs. */
static void result(const char *w, double v, const char *unit, double secs) {
  printf("RESULT %s %.1f %s\n", w, v, unit);
  cairn_metrics m;
  if (metrics_db && cairn_metrics_get(metrics_db, &m) == CAIRN_OK) {
    uint64_t h = m.cache_hits - last_hits, x = m.cache_misses - last_misses;
    if (h || x)
      printf("INFO cache %s %llu %llu\n", w, (unsigned long long)h,
             (unsigned long long)x);
    last_hits = m.cache_hits;
    last_misses = m.cache_misses;
  }
  fflush(stdout);
  fprintf(stderr, "  %s: %.0f %s (%.2f s)\n", w, v, unit, secs);
}

/* Start counting cache hits and misses for the next result(). */
static void count_cache(cairn_db *db) {
  cairn_metrics m;
  metrics_db = db;
  if (cairn_metrics_get(db, &m) == CAIRN_OK) {
    last_hits = m.cache_hits;
    last_misses = m.cache_misses;
  }
}

typedef struct {
  uint64_t n, commits, scans;
  size_t cache_pages;
  const char *dir;
  int nommap, keep, reads;
} opts;

static cairn_db *open_db(const char *path, const opts *o) {
  cairn_options co;
  cairn_options_init(&co);
  co.durability = CAIRN_DURABILITY_SYNC;
  co.cache_pages = o->cache_pages;
  if (o->nommap)
    co.flags |= CAIRN_OPEN_NOMMAP;
  cairn_db *db = NULL;
  ck(cairn_open(path, &co, &db), "open");
  return db;
}

int main(int argc, char **argv) {
  opts o = {100000, 1000, 100000, 16384, ".", 0, 0, 0};
  for (int i = 1; i < argc; i += 2) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!v) {
      fprintf(stderr, "wasi_bench: %s needs a value\n", a);
      return 2;
    }
    if (!strcmp(a, "--n"))
      o.n = strtoull(v, NULL, 10);
    else if (!strcmp(a, "--commits"))
      o.commits = strtoull(v, NULL, 10);
    else if (!strcmp(a, "--scans"))
      o.scans = strtoull(v, NULL, 10);
    else if (!strcmp(a, "--cache-pages"))
      o.cache_pages = (size_t)strtoull(v, NULL, 10);
    else if (!strcmp(a, "--dir"))
      o.dir = v;
    else if (!strcmp(a, "--nommap"))
      o.nommap = atoi(v) != 0;
    else if (!strcmp(a, "--keep"))
      o.keep = atoi(v) != 0;
    else if (!strcmp(a, "--reads"))
      o.reads = atoi(v) != 0;
    else {
      fprintf(stderr, "usage: wasi_bench [--n N] [--commits C] [--scans S] "
                      "[--cache-pages P] [--dir D] [--nommap 1] [--keep 1] "
                      "[--reads 1]\n");
      return 2;
    }
  }
  if (o.n < 1000)
    o.n = 1000;
  char path[4096];
  snprintf(path, sizeof path, "%s/wasi_bench.cairn", o.dir);
  if (!o.reads)
    remove(path);

  cairn_db *db = open_db(path, &o);
  cairn_db_stat st;
  ck(cairn_db_stat_get(db, &st), "stat");
  fprintf(stderr,
          "wasi_bench: N=%llu, %llu commits, %llu scans, platform %s, "
          "%s\n",
          (unsigned long long)o.n, (unsigned long long)o.commits,
          (unsigned long long)o.scans, st.platform,
          st.mapped ? "mapped reads" : "page cache");
  printf("INFO platform %s %s cache_pages %zu n %llu\n", st.platform,
         st.mapped ? "mapped" : "cached", o.cache_pages,
         (unsigned long long)o.n);

  uint8_t k[KEY_SIZE], v[W2_VAL];
  cairn_txn *t = NULL;

  uint64_t nkeys = o.n + o.commits * (W2_PUTS / 2);
  double t0, dt;
  if (o.reads)
    goto reads;

  /* W1: bulk load */
  t0 = now_s();
  for (uint64_t i = 0; i < o.n; i++) {
    if (i % W1_TXN == 0)
      ck(cairn_begin(db, 0, &t), "begin");
    make_key(i, k);
    make_val(i, v, W1_VAL);
    ck(cairn_put(t, CAIRN_DEFAULT_CF, (cairn_slice){k, KEY_SIZE},
                 (cairn_slice){v, W1_VAL}, 0),
       "put");
    if (i % W1_TXN == W1_TXN - 1 || i == o.n - 1)
      ck(cairn_commit(t), "commit");
  }
  dt = now_s() - t0;
  result("W1", (double)o.n / dt, "keys/s", dt);

  /* W2: block commits, half overwrites, half new keys */
  nkeys = o.n;
  t0 = now_s();
  for (uint64_t c = 0; c < o.commits; c++) {
    ck(cairn_begin(db, 0, &t), "begin");
    for (int p = 0; p < W2_PUTS; p++) {
      uint64_t i = (p & 1) ? nkeys++ : below(nkeys);
      make_key(i, k);
      make_val(i, v, W2_VAL);
      ck(cairn_put(t, CAIRN_DEFAULT_CF, (cairn_slice){k, KEY_SIZE},
                   (cairn_slice){v, W2_VAL}, 0),
         "put");
    }
    ck(cairn_commit(t), "commit");
  }
  dt = now_s() - t0;
  if (o.commits)
    result("W2", (double)o.commits / dt, "commits/s", dt);
reads:
  ck(cairn_close(db), "close");

  /* W3: reopen, then two passes of random gets; the second is measured */
  db = open_db(path, &o);
  for (int pass = 0; pass < 2; pass++) {
    uint64_t bad = 0;
    rng_state = 7 + (uint64_t)pass;
    count_cache(db);
    t0 = now_s();
    for (uint64_t g = 0; g < o.n; g++) {
      if (g % W3_BATCH == 0)
        ck(cairn_begin(db, CAIRN_TXN_RDONLY, &t), "begin");
      uint64_t i = below(nkeys);
      cairn_slice val;
      make_key(i, k);
      ck(cairn_get(t, CAIRN_DEFAULT_CF, (cairn_slice){k, KEY_SIZE}, &val),
         "get");
      bad += val.size < 8 || val_id(val.data) != i;
      if (g % W3_BATCH == W3_BATCH - 1 || g == o.n - 1)
        cairn_abort(t);
    }
    dt = now_s() - t0;
    if (bad) {
      fprintf(stderr, "wasi_bench: W3: %llu wrong values\n",
              (unsigned long long)bad);
      return 1;
    }
    if (pass == 1)
      result("W3", (double)o.n / dt, "gets/s", dt);
  }

  /* W4: full ordered scan */
  cairn_cursor *cur = NULL;
  uint64_t seen = 0, order_bad = 0;
  uint8_t prev[KEY_SIZE];
  t0 = now_s();
  ck(cairn_begin(db, CAIRN_TXN_RDONLY, &t), "begin");
  ck(cairn_cursor_open(t, CAIRN_DEFAULT_CF, &cur), "cursor_open");
  for (int rc = cairn_cursor_first(cur); rc == CAIRN_OK;
       rc = cairn_cursor_next(cur)) {
    cairn_slice ks, vs;
    ck(cairn_cursor_get(cur, &ks, &vs), "cursor_get");
    if (seen && memcmp(prev, ks.data, KEY_SIZE) >= 0)
      order_bad++;
    memcpy(prev, ks.data, KEY_SIZE);
    seen++;
  }
  cairn_cursor_close(cur);
  cairn_abort(t);
  dt = now_s() - t0;
  if (seen != nkeys || order_bad) {
    fprintf(stderr,
            "wasi_bench: W4 saw %llu keys (want %llu), %llu out of "
            "order\n",
            (unsigned long long)seen, (unsigned long long)nkeys,
            (unsigned long long)order_bad);
    return 1;
  }
  result("W4", (double)seen / dt, "keys/s", dt);

  /* W5: short range scans */
  uint64_t rows = 0;
  rng_state = 99;
  t0 = now_s();
  for (uint64_t s = 0; s < o.scans; s++) {
    if (s % W5_BATCH == 0) {
      ck(cairn_begin(db, CAIRN_TXN_RDONLY, &t), "begin");
      ck(cairn_cursor_open(t, CAIRN_DEFAULT_CF, &cur), "cursor_open");
    }
    uint64_t i = below(nkeys);
    make_key(i, k);
    int rc = cairn_cursor_seek(cur, (cairn_slice){k, KEY_SIZE});
    cairn_slice ks, vs;
    if (rc != CAIRN_OK || cairn_cursor_get(cur, &ks, &vs) != CAIRN_OK ||
        val_id(vs.data) != i) {
      fprintf(stderr, "wasi_bench: W5: seek to key %llu failed\n",
              (unsigned long long)i);
      return 1;
    }
    for (int j = 1; j < W5_LEN && cairn_cursor_next(cur) == CAIRN_OK; j++) {
      ck(cairn_cursor_get(cur, &ks, &vs), "cursor_get");
      rows++;
    }
    if (s % W5_BATCH == W5_BATCH - 1 || s == o.scans - 1) {
      cairn_cursor_close(cur);
      cairn_abort(t);
    }
  }
  dt = now_s() - t0;
  if (o.scans)
    result("W5", (double)o.scans / dt, "scans/s", dt);
  (void)rows;

  ck(cairn_db_stat_get(db, &st), "stat");
  printf("INFO file_bytes %llu\n", (unsigned long long)st.file_size);
  ck(cairn_close(db), "close");
  if (!o.keep)
    remove(path);
  return 0;
}
