/*
 * bench.c — the cairn benchmark: workloads W1–W9 of shared/BENCH.md run on
 * cairn and its peers (LMDB, RocksDB, LevelDB, SQLite) through engine.h, on
 * the same keys, one engine after another in the same run, with a report.
 *
 * This file owns the workloads, the key and value generator, the timing, the
 * light correctness checks (a benchmark of a broken engine is worthless: any
 * mismatch aborts loudly), the host's physical limits (fdatasync latency,
 * memcpy bandwidth) and the report (markdown on stdout, JSON with --json).
 *
 * Each engine runs its whole workload set in a forked child, which isolates
 * the engines from each other and gives its peak memory (ru_maxrss of the
 * child, from wait4). Results come back through a shared anonymous mapping.
 *
 * Keys: key i is 32 bytes of splitmix64 output at counter 4i+1..4i+4 from a
 * fixed seed, so every engine sees the same keys in the same order. Values
 * start with the key's index (8 bytes, little-endian), so every get and scan
 * can check it read the value of the key it asked for; the rest is
 * incompressible splitmix64 output. W6 keys are 8-byte big-endian heights.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "engine.h"

/* ---- configuration ------------------------------------------------------ */

#define KEY_SIZE 32
#define W1_VAL 100
#define W1_TXN 10000
#define W2_VAL 150
#define W2_PUTS 500
#define W3_BATCH 1000 /* gets per read transaction (W3, W8) */
#define W5_LEN 50
#define W5_BATCH 1000 /* scans per read transaction */
#define W6_VAL 256
#define W6_TXN 1000
#define W9_PASSES 10
#define SEED 0xca1f2b3d4e5f6071ull
#define GOLDEN 0x9e3779b97f4a7c15ull

static const engine *const all_engines[] = {&engine_cairn, &engine_lmdb,
                                            &engine_rocksdb, &engine_leveldb,
                                            &engine_sqlite};
#define N_ENGINES (sizeof all_engines / sizeof all_engines[0])

enum { W1 = 1, W2, W3, W4, W5, W6, W7, W8, W9, NW };

typedef struct opts {
  double scale;
  uint64_t n;       /* keys loaded by W1, gets of W3, puts of W6 */
  uint64_t commits; /* commits of W2, W7, W8 and each W9 pass */
  uint64_t scans;   /* W5 */
  int repeat;       /* runs of every engine; the report gives medians */
  int engine_on[N_ENGINES];
  int wl_on[NW];
  const char *dir;
  const char *json;
} opts;

/* ---- results (shared with the children) --------------------------------- */

enum {
  R_W1,
  R_SPACE,
  R_W2,
  R_W3,
  R_W4,
  R_W5,
  R_W6,
  R_W7,
  R_W8G,
  R_W8C,
  R_W9,
  R_RSS17,
  R_RSS,
  R_COUNT
};

typedef struct row_def {
  int id;     /* R_* */
  int wl;     /* workload that produces it (0: always) */
  int higher; /* 1: higher is better */
  const char *name, *unit;
} row_def;

static const row_def rows[] = {
    {R_W1, W1, 1, "W1 bulk load, 10k puts/txn, durable", "keys/s"},
    {R_SPACE, W1, 0, "W1 space amplification (disk / N×132)", "×, lower"},
    {R_W2, W2, 1, "W2 block commits, 500 puts, durable", "commits/s"},
    {R_W3, W3, 1, "W3 random gets, reopened, 2nd pass", "gets/s"},
    {R_W4, W4, 1, "W4 full ordered scan", "keys/s"},
    {R_W5, W5, 1, "W5 range scans, seek + 50", "scans/s"},
    {R_W6, W6, 1, "W6 append heights, 1k puts/txn, durable", "puts/s"},
    {R_W7, W7, 1, "W7 block commits, lazy", "commits/s"},
    {R_W8G, W8, 1, "W8 gets beside a durable writer", "gets/s"},
    {R_W8C, W8, 1, "W8 durable commits beside a reader", "commits/s"},
    {R_W9, W9, 0, "W9 file growth, pass 10 / pass 1", "×, lower"},
    {R_RSS17, 0, 0, "peak RSS during W1–W7", "MiB, lower"},
    {R_RSS, 0, 0, "peak RSS of the engine's process", "MiB, lower"},
};
#define N_ROWS (sizeof rows / sizeof rows[0])

typedef struct eng_result {
  int ran;    /* the child finished (status says how) */
  int status; /* exit status of the child; -signal if killed */
  double v[R_COUNT];
  unsigned char have[R_COUNT];
  double w1_bytes;               /* bytes on disk after W1 */
  double w9_size1, w9_size10;    /* bytes on disk after pass 1 and 10 */
  double w9_logical;             /* logical data after pass 10 / pass 1 */
  double w9_rate1, w9_rate_rest; /* W9 commits/s: pass 1, passes 2..10 */
  double w8_gets, w8_commits;    /* operations done in W8 */
  double seconds, cpu_seconds;   /* wall and CPU time of the child */
  char version[64];
} eng_result;

/* ---- small helpers ----------------------------------------------------- */

static const char *cur_engine = "bench";

static void die(const char *fmt, ...) {
  va_list ap;
  fprintf(stderr, "\n*** %s: FAILED: ", cur_engine);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fprintf(stderr, "\n");
  fflush(stderr);
  exit(2);
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* splitmix64: a counter-based stream, so any output is cheap to recompute */
typedef struct rng {
  uint64_t s;
} rng;

static uint64_t rng_next(rng *r) {
  r->s += GOLDEN;
  return mix64(r->s);
}

static uint64_t rng_below(rng *r, uint64_t n) { return rng_next(r) % n; }

static void put64le(uint8_t *p, uint64_t x) {
  for (int i = 0; i < 8; i++)
    p[i] = (uint8_t)(x >> (8 * i));
}

static uint64_t get64le(const uint8_t *p) {
  uint64_t x = 0;
  for (int i = 7; i >= 0; i--)
    x = (x << 8) | p[i];
  return x;
}

static void make_key(uint64_t i, uint8_t *k) {
  for (uint64_t j = 0; j < 4; j++)
    put64le(k + 8 * j, mix64(SEED + (4 * i + j + 1) * GOLDEN));
}

static void make_height(uint64_t h, uint8_t *k) {
  for (int i = 0; i < 8; i++)
    k[i] = (uint8_t)(h >> (56 - 8 * i));
}

/* A value of len bytes for key index i: i, then incompressible filler. */
static void make_val(uint64_t i, uint64_t version, size_t len, uint8_t *v) {
  rng r = {mix64(i ^ (version << 40) ^ SEED)};
  put64le(v, i);
  for (size_t off = 8; off < len; off += 8) {
    uint64_t x = rng_next(&r);
    size_t n = len - off < 8 ? len - off : 8;
    memcpy(v + off, &x, n);
  }
}

static void hex(const void *p, size_t n, char *out) {
  static const char d[] = "0123456789abcdef";
  const uint8_t *b = p;
  size_t i;
  for (i = 0; i < n && i < 16; i++) {
    out[2 * i] = d[b[i] >> 4];
    out[2 * i + 1] = d[b[i] & 15];
  }
  out[2 * i] = 0;
}

/* ---- disk usage -------------------------------------------------------- */

static uint64_t du_alloc, du_apparent;

static int du_visit(const char *path, const struct stat *st, int type,
                    struct FTW *f) {
  (void)path;
  (void)f;
  if (type == FTW_F) {
    du_alloc += (uint64_t)st->st_blocks * 512u;
    du_apparent += (uint64_t)st->st_size;
  }
  return 0;
}

/* Bytes of the files under dir: allocated on disk (what `du` says), the
 * default, or their sizes (`du --apparent-size`). The two differ by holes and
 * by space preallocated past the end of a file (RocksDB's WAL). */
static uint64_t disk_bytes(const char *dir, int apparent) {
  du_alloc = du_apparent = 0;
  if (nftw(dir, du_visit, 16, FTW_PHYS) != 0)
    die("cannot walk %s: %s", dir, strerror(errno));
  return apparent ? du_apparent : du_alloc;
}

static int rm_visit(const char *path, const struct stat *st, int type,
                    struct FTW *f) {
  (void)st;
  (void)f;
  if ((type == FTW_DP ? rmdir(path) : unlink(path)) != 0 && errno != ENOENT)
    fprintf(stderr, "bench: cannot remove %s: %s\n", path, strerror(errno));
  return 0;
}

static void rm_rf(const char *path) {
  struct stat st;
  if (lstat(path, &st) == 0)
    nftw(path, rm_visit, 16, FTW_DEPTH | FTW_PHYS);
}

/* out = a/b (and suffix), or die if it does not fit. */
static void path_join(char *out, size_t n, const char *a, const char *b,
                      const char *suffix) {
  int len = snprintf(out, n, "%s/%s%s", a, b, suffix);
  if (len < 0 || (size_t)len >= n)
    die("path too long: %s/%s%s", a, b, suffix);
}

static void make_dir(const char *path) {
  if (mkdir(path, 0755) != 0 && errno != EEXIST)
    die("mkdir %s: %s", path, strerror(errno));
}

/* ---- the workloads ----------------------------------------------------- */

typedef struct run {
  const opts *o;
  const engine *en;
  eng *e;
  char main_dir[4096], w6_dir[4096];
  uint64_t nkeys;   /* keys 0..nkeys-1 exist in the main database */
  uint64_t version; /* bumped per commit: values differ between writes */
  rng choose;       /* which existing keys W2-style commits overwrite */
  uint8_t *wide;    /* bitmap: key i holds a W2_VAL-byte value */
  uint64_t wide_cap;
  double logical; /* bytes of keys and values the database holds */
  eng_result *res;
} run;

static void check(int rc, const char *what) {
  if (rc < 0)
    die("%s returned an error (see above)", what);
}

static void eng_open(run *r) { check(r->en->open(r->main_dir, &r->e), "open"); }

static void eng_close(run *r) {
  check(r->en->close(r->e), "close");
  r->e = NULL;
}

static void progress(run *r, const char *wl, const char *fmt, ...) {
  va_list ap;
  fprintf(stderr, "  [%s] %s: ", r->en->name, wl);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fprintf(stderr, "\n");
}

/* A get of key index i must find a value that starts with i and has one of
 * the sizes this benchmark writes. */
static void check_value(uint64_t i, int found, const void *v, size_t vl) {
  if (found != 1)
    die("get of existing key %llu: not found", (unsigned long long)i);
  if ((vl != W1_VAL && vl != W2_VAL) || get64le(v) != i) {
    char h[40];
    hex(v, vl < 16 ? vl : 16, h);
    die("get of key %llu: wrong value (%zu bytes, starts %s)",
        (unsigned long long)i, vl, h);
  }
}

static void w1_load(run *r) {
  const opts *o = r->o;
  uint8_t k[KEY_SIZE], v[W1_VAL];
  double t0 = now();
  eng_txn *t = NULL;
  for (uint64_t i = 0; i < o->n; i++) {
    if (i % W1_TXN == 0)
      check(r->en->begin(r->e, ENG_WRITE, &t), "begin");
    make_key(i, k);
    make_val(i, 0, W1_VAL, v);
    check(r->en->put(t, k, KEY_SIZE, v, W1_VAL), "put");
    if (i % W1_TXN == W1_TXN - 1 || i == o->n - 1)
      check(r->en->commit(t), "commit");
  }
  double dt = now() - t0;
  r->nkeys = o->n;
  r->logical = (double)o->n * (KEY_SIZE + W1_VAL);
  eng_close(r);
  r->res->w1_bytes = (double)disk_bytes(r->main_dir, 0);
  r->res->v[R_W1] = (double)o->n / dt;
  r->res->v[R_SPACE] = r->res->w1_bytes / ((double)o->n * (KEY_SIZE + W1_VAL));
  r->res->have[R_W1] = r->res->have[R_SPACE] = 1;
  progress(r, "W1", "%.0f keys/s, %.2f s; %.1f MiB on disk (space amp %.2f)",
           r->res->v[R_W1], dt, r->res->w1_bytes / 1048576.0,
           r->res->v[R_SPACE]);
  eng_open(r);
}

/* W2-style block commits: each of `commits` transactions puts W2_PUTS keys,
 * alternately overwriting a random existing key and adding a new one, with
 * W2_VAL-byte values. Returns the seconds it took. */
static double block_commits(run *r, uint64_t commits, int flags) {
  uint8_t k[KEY_SIZE], v[W2_VAL];
  double t0 = now();
  for (uint64_t c = 0; c < commits; c++) {
    eng_txn *t;
    uint64_t next = r->nkeys;
    r->version++;
    check(r->en->begin(r->e, ENG_WRITE | flags, &t), "begin");
    for (int p = 0; p < W2_PUTS; p++) {
      uint64_t i = (p & 1) ? next++ : rng_below(&r->choose, r->nkeys);
      if (i >= r->wide_cap)
        die("internal: key index %llu beyond the plan", (unsigned long long)i);
      if (i >= r->nkeys)
        r->logical += KEY_SIZE + W2_VAL;
      else if (!(r->wide[i / 8] & (1u << (i % 8))))
        r->logical += W2_VAL - W1_VAL;
      r->wide[i / 8] |= (uint8_t)(1u << (i % 8));
      make_key(i, k);
      make_val(i, r->version, W2_VAL, v);
      check(r->en->put(t, k, KEY_SIZE, v, W2_VAL), "put");
    }
    check(r->en->commit(t), "commit");
    r->nkeys = next;
  }
  return now() - t0;
}

static void w2_commits(run *r) {
  double dt = block_commits(r, r->o->commits, 0);
  r->res->v[R_W2] = (double)r->o->commits / dt;
  r->res->have[R_W2] = 1;
  progress(r, "W2", "%.1f commits/s, %.2f s", r->res->v[R_W2], dt);
}

/* `count` random gets of existing keys (below nkeys), W3_BATCH per read
 * transaction; stops early when *stop becomes non-zero. Returns gets done. */
static uint64_t random_gets(run *r, rng *g, uint64_t nkeys, uint64_t count,
                            atomic_int *stop) {
  uint8_t k[KEY_SIZE];
  uint64_t done = 0;
  while (done < count && !(stop && atomic_load(stop))) {
    eng_txn *t;
    check(r->en->begin(r->e, 0, &t), "begin read");
    for (int b = 0; b < W3_BATCH && done < count; b++, done++) {
      uint64_t i = rng_below(g, nkeys);
      const void *v = NULL;
      size_t vl = 0;
      make_key(i, k);
      int found = r->en->get(t, k, KEY_SIZE, &v, &vl);
      check(found, "get");
      check_value(i, found, v, vl);
    }
    check(r->en->commit(t), "end read");
  }
  return done;
}

static void w3_gets(run *r) {
  rng g = {SEED ^ 0x3333};
  eng_close(r); /* "after reopen": nothing cached by the engine itself */
  eng_open(r);
  double t0 = now();
  random_gets(r, &g, r->nkeys, r->o->n, NULL);
  double t1 = now();
  random_gets(r, &g, r->nkeys, r->o->n, NULL);
  double dt = now() - t1;
  r->res->v[R_W3] = (double)r->o->n / dt;
  r->res->have[R_W3] = 1;
  progress(r, "W3", "%.0f gets/s (first pass %.0f gets/s)", r->res->v[R_W3],
           (double)r->o->n / (t1 - t0));
}

typedef struct scan_check {
  uint8_t prev[KEY_SIZE];
  size_t n;
  const uint8_t *first; /* W5: the key the scan must start at */
} scan_check;

static int scan_visit(void *ctx, const void *k, size_t kl, const void *v,
                      size_t vl) {
  scan_check *s = ctx;
  (void)v; /* values are checked by gets, where the key's index is known */
  if (kl != KEY_SIZE || (vl != W1_VAL && vl != W2_VAL))
    die("scan: entry %zu has a %zu-byte key and a %zu-byte value", s->n, kl,
        vl);
  if (s->n == 0 && s->first && memcmp(k, s->first, KEY_SIZE) != 0)
    die("scan: seek to an existing key started at another key");
  if (s->n > 0 && memcmp(s->prev, k, KEY_SIZE) >= 0)
    die("scan: keys out of order at entry %zu", s->n);
  memcpy(s->prev, k, KEY_SIZE);
  s->n++;
  return 0;
}

static void w4_scan(run *r) {
  scan_check s = {{0}, 0, NULL};
  eng_txn *t;
  size_t count = 0;
  double t0 = now();
  check(r->en->begin(r->e, 0, &t), "begin read");
  check(r->en->scan(t, NULL, 0, 0, scan_visit, &s, &count), "scan");
  check(r->en->commit(t), "end read");
  double dt = now() - t0;
  if (count != r->nkeys || s.n != r->nkeys)
    die("full scan saw %zu keys, expected %llu", count,
        (unsigned long long)r->nkeys);
  r->res->v[R_W4] = (double)count / dt;
  r->res->have[R_W4] = 1;
  progress(r, "W4", "%.0f keys/s, %.2f s", r->res->v[R_W4], dt);
}

static void w5_scans(run *r) {
  rng g = {SEED ^ 0x5555};
  uint8_t k[KEY_SIZE];
  uint64_t done = 0, short_scans = 0;
  double t0 = now();
  while (done < r->o->scans) {
    eng_txn *t;
    check(r->en->begin(r->e, 0, &t), "begin read");
    for (int b = 0; b < W5_BATCH && done < r->o->scans; b++, done++) {
      scan_check s = {{0}, 0, k};
      size_t count = 0;
      make_key(rng_below(&g, r->nkeys), k);
      check(r->en->scan(t, k, KEY_SIZE, W5_LEN, scan_visit, &s, &count),
            "scan");
      if (count != s.n || count == 0 || count > W5_LEN)
        die("range scan from an existing key returned %zu keys", count);
      short_scans += count < W5_LEN;
    }
    check(r->en->commit(t), "end read");
  }
  double dt = now() - t0;
  /* Only a seek into the last W5_LEN keys may come back short. */
  if (short_scans > 1 + r->o->scans / 100)
    die("%llu of %llu range scans returned fewer than %d keys",
        (unsigned long long)short_scans, (unsigned long long)r->o->scans,
        W5_LEN);
  r->res->v[R_W5] = (double)r->o->scans / dt;
  r->res->have[R_W5] = 1;
  progress(r, "W5", "%.0f scans/s, %.2f s", r->res->v[R_W5], dt);
}

typedef struct height_check {
  uint64_t n;
} height_check;

static int height_visit(void *ctx, const void *k, size_t kl, const void *v,
                        size_t vl) {
  height_check *h = ctx;
  uint8_t want[8];
  make_height(h->n, want);
  if (kl != 8 || memcmp(k, want, 8) != 0 || vl != W6_VAL || get64le(v) != h->n)
    die("W6 scan: entry %llu is not height %llu with its value",
        (unsigned long long)h->n, (unsigned long long)h->n);
  h->n++;
  return 0;
}

static void w6_append(run *r) {
  const opts *o = r->o;
  uint8_t k[8], v[W6_VAL];
  eng *e;
  eng_txn *t = NULL;
  make_dir(r->w6_dir);
  check(r->en->open(r->w6_dir, &e), "open");
  double t0 = now();
  for (uint64_t h = 0; h < o->n; h++) {
    if (h % W6_TXN == 0)
      check(r->en->begin(e, ENG_WRITE, &t), "begin");
    make_height(h, k);
    make_val(h, 0, W6_VAL, v);
    check(r->en->put(t, k, 8, v, W6_VAL), "put");
    if (h % W6_TXN == W6_TXN - 1 || h == o->n - 1)
      check(r->en->commit(t), "commit");
  }
  double dt = now() - t0;
  /* Untimed: every height is there, in order, with its value. */
  height_check hc = {0};
  size_t count = 0;
  check(r->en->begin(e, 0, &t), "begin read");
  check(r->en->scan(t, NULL, 0, 0, height_visit, &hc, &count), "scan");
  check(r->en->commit(t), "end read");
  if (count != o->n)
    die("W6: scan found %zu heights, expected %llu", count,
        (unsigned long long)o->n);
  check(r->en->close(e), "close");
  rm_rf(r->w6_dir);
  r->res->v[R_W6] = (double)o->n / dt;
  r->res->have[R_W6] = 1;
  progress(r, "W6", "%.0f puts/s, %.2f s", r->res->v[R_W6], dt);
}

static void w7_lazy(run *r) {
  double dt = block_commits(r, r->o->commits, ENG_LAZY);
  double t0 = now();
  check(r->en->sync(r->e), "sync"); /* untimed: make them durable */
  r->res->v[R_W7] = (double)r->o->commits / dt;
  r->res->have[R_W7] = 1;
  progress(r, "W7", "%.1f commits/s, %.2f s (then sync %.3f s)",
           r->res->v[R_W7], dt, now() - t0);
}

typedef struct w8_reader {
  run *r;
  uint64_t nkeys;
  atomic_int go, stop;
  uint64_t gets;
  double seconds;
} w8_reader;

static void *w8_read(void *arg) {
  w8_reader *w = arg;
  rng g = {SEED ^ 0x8888};
  while (!atomic_load(&w->go))
    ;
  double t0 = now();
  w->gets = random_gets(w->r, &g, w->nkeys, UINT64_MAX, &w->stop);
  w->seconds = now() - t0;
  return NULL;
}

static void w8_mixed(run *r) {
  w8_reader w;
  pthread_t th;
  memset(&w, 0, sizeof w);
  w.r = r;
  w.nkeys = r->nkeys; /* the writer only adds keys above these */
  atomic_init(&w.go, 0);
  atomic_init(&w.stop, 0);
  if (pthread_create(&th, NULL, w8_read, &w) != 0)
    die("pthread_create failed");
  atomic_store(&w.go, 1);
  double dt = block_commits(r, r->o->commits, 0);
  atomic_store(&w.stop, 1);
  pthread_join(th, NULL);
  r->res->v[R_W8G] = (double)w.gets / w.seconds;
  r->res->v[R_W8C] = (double)r->o->commits / dt;
  r->res->w8_gets = (double)w.gets;
  r->res->w8_commits = (double)r->o->commits;
  r->res->have[R_W8G] = r->res->have[R_W8C] = 1;
  progress(r, "W8", "%.0f gets/s with %.1f commits/s, %.2f s", r->res->v[R_W8G],
           r->res->v[R_W8C], dt);
}

static void w9_growth(run *r) {
  eng_txn *snap;
  uint8_t k[KEY_SIZE];
  const void *v = NULL;
  size_t vl = 0;
  double size1 = 0, logical1 = 0, dt1 = 0, dt = 0;
  /* The snapshot reads one key so that every engine really holds it. */
  check(r->en->begin(r->e, 0, &snap), "begin snapshot");
  make_key(0, k);
  int found = r->en->get(snap, k, KEY_SIZE, &v, &vl);
  check(found, "get");
  check_value(0, found, v, vl);
  for (int pass = 1; pass <= W9_PASSES; pass++) {
    double t = block_commits(r, r->o->commits, 0);
    dt += t;
    if (pass == 1) {
      dt1 = t;
      check(r->en->commit(snap), "end snapshot");
      size1 = (double)disk_bytes(r->main_dir, 1);
      logical1 = r->logical;
    }
  }
  double size10 = (double)disk_bytes(r->main_dir, 1);
  r->res->w9_size1 = size1;
  r->res->w9_size10 = size10;
  r->res->w9_logical = r->logical / logical1;
  r->res->v[R_W9] = size10 / size1;
  r->res->have[R_W9] = 1;
  /* Not in the table, but telling: how commit speed holds up once the
   * snapshot has pinned, then released, a pass worth of pages. */
  r->res->w9_rate1 = (double)r->o->commits / dt1;
  r->res->w9_rate_rest =
      (double)(W9_PASSES - 1) * (double)r->o->commits / (dt - dt1);
  progress(r, "W9",
           "%.1f MiB after pass 1, %.1f MiB after pass %d: %.2f× (logical "
           "data %.2f×); durable commits/s %.1f in pass 1, %.1f in passes "
           "2-%d",
           size1 / 1048576.0, size10 / 1048576.0, W9_PASSES, r->res->v[R_W9],
           r->res->w9_logical, r->res->w9_rate1, r->res->w9_rate_rest,
           W9_PASSES);
}

static int needs_main(const opts *o) {
  for (int w = W1; w < NW; w++)
    if (o->wl_on[w] && w != W6)
      return 1;
  return 0;
}

/* The whole workload set of one engine (runs in the child). */
/* The process's peak resident set (VmHWM), MiB; 0 if unknown. */
static double peak_rss_mib(void) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  double kib = 0;
  while (f && fgets(line, sizeof line, f))
    if (strncmp(line, "VmHWM:", 6) == 0)
      kib = strtod(line + 6, NULL);
  if (f)
    fclose(f);
  return kib / 1024.0;
}

/* Start the peak over from the current resident set (Linux >= 4.0). */
static void reset_peak_rss(void) {
  FILE *f = fopen("/proc/self/clear_refs", "w");
  if (f) {
    fputs("5", f);
    fclose(f);
  }
}

static void note_peak_rss(eng_result *res) {
  double p = peak_rss_mib();
  if (p > res->v[R_RSS17])
    res->v[R_RSS17] = p;
  res->have[R_RSS17] = p > 0;
}

static void run_engine(const opts *o, const engine *en, const char *dir,
                       eng_result *res) {
  run r;
  memset(&r, 0, sizeof r);
  r.o = o;
  r.en = en;
  r.res = res;
  r.choose.s = SEED ^ 0x2222;
  r.wide_cap = o->n + o->commits * (W2_PUTS / 2) * (3 + W9_PASSES) + 1;
  r.wide = calloc(r.wide_cap / 8 + 1, 1);
  if (!r.wide)
    die("out of memory");
  snprintf(res->version, sizeof res->version, "%s", en->version());
  path_join(r.main_dir, sizeof r.main_dir, dir, en->name, "");
  path_join(r.w6_dir, sizeof r.w6_dir, dir, en->name, "-w6");
  cur_engine = en->name;
  if (needs_main(o)) {
    make_dir(r.main_dir);
    eng_open(&r);
    w1_load(&r); /* every other main-database workload runs on its data */
    if (!o->wl_on[W1])
      res->have[R_W1] = res->have[R_SPACE] = 0;
    if (o->wl_on[W2])
      w2_commits(&r);
    if (o->wl_on[W3])
      w3_gets(&r);
    if (o->wl_on[W4])
      w4_scan(&r);
    if (o->wl_on[W5])
      w5_scans(&r);
    if (o->wl_on[W7])
      w7_lazy(&r);
    note_peak_rss(res);
    if (o->wl_on[W8])
      w8_mixed(&r);
    if (o->wl_on[W9])
      w9_growth(&r);
    eng_close(&r);
    rm_rf(r.main_dir);
  }
  if (o->wl_on[W6]) {
    reset_peak_rss();
    w6_append(&r);
    note_peak_rss(res);
  }
  free(r.wide);
}

/* ---- physical limits of the host ---------------------------------------- */

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

typedef struct sync_lat {
  double p10, p50, p90; /* seconds */
} sync_lat;

/* 200 × (append 4 KiB to a new file in dir + fdatasync): the 10th, 50th and
 * 90th percentile of the time each took. */
static sync_lat fdatasync_latency(const char *dir) {
  enum { ROUNDS = 200 };
  char path[4200], buf[4096];
  double t[ROUNDS];
  sync_lat l;
  path_join(path, sizeof path, dir, "fdatasync.probe", "");
  int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0644);
  if (fd < 0)
    die("open %s: %s", path, strerror(errno));
  memset(buf, 0xa5, sizeof buf);
  for (int i = 0; i < ROUNDS; i++) {
    double t0 = now();
    buf[0] = (char)i;
    if (pwrite(fd, buf, sizeof buf, (off_t)i * (off_t)sizeof buf) !=
            (ssize_t)sizeof buf ||
        fdatasync(fd) != 0)
      die("write %s: %s", path, strerror(errno));
    t[i] = now() - t0;
  }
  close(fd);
  unlink(path);
  qsort(t, ROUNDS, sizeof t[0], cmp_double);
  l.p10 = t[ROUNDS / 10];
  l.p50 = (t[ROUNDS / 2 - 1] + t[ROUNDS / 2]) / 2;
  l.p90 = t[ROUNDS * 9 / 10];
  return l;
}

/* memcpy bandwidth in bytes/s: best of 10 copies of 64 MiB. */
static double memcpy_bandwidth(void) {
  size_t len = 64u << 20;
  char *a = malloc(len), *b = malloc(len);
  double best = 1e9;
  if (!a || !b)
    die("out of memory");
  memset(a, 1, len);
  memset(b, 2, len);
  for (int i = 0; i < 10; i++) {
    double t0 = now();
    memcpy(i & 1 ? a : b, i & 1 ? b : a, len);
    double dt = now() - t0;
    if (dt < best)
      best = dt;
  }
  volatile char sink = a[len / 2] + b[len / 3];
  (void)sink;
  free(a);
  free(b);
  return (double)len / best;
}

typedef struct host_info {
  char name[256], cpu[256], kernel[256], fs[64];
  long cores;
  double mem_gib;
  char load_start[64], load_end[64], commit[64];
  sync_lat fsync_start, fsync_end;
  double memcpy_bps;
} host_info;

/* The 1, 5 and 15 minute load averages: the report says how busy the machine
 * was, since other work on it skews every figure. */
static void loadavg(char *out, size_t n) {
  FILE *f = fopen("/proc/loadavg", "r");
  double a = 0, b = 0, c = 0;
  snprintf(out, n, "unknown");
  if (f) {
    if (fscanf(f, "%lf %lf %lf", &a, &b, &c) == 3)
      snprintf(out, n, "%.2f %.2f %.2f", a, b, c);
    fclose(f);
  }
}

static void host_describe(host_info *h, const char *dir) {
  struct utsname u;
  struct statfs sf;
  FILE *f;
  char line[512];
  snprintf(h->cpu, sizeof h->cpu, "unknown CPU");
  if (gethostname(h->name, sizeof h->name) != 0)
    snprintf(h->name, sizeof h->name, "unknown");
  if (uname(&u) == 0)
    snprintf(h->kernel, sizeof h->kernel, "%s %s %s", u.sysname, u.release,
             u.machine);
  if ((f = fopen("/proc/cpuinfo", "r"))) {
    while (fgets(line, sizeof line, f)) {
      char *c = strchr(line, ':');
      if (!strncmp(line, "model name", 10) && c) {
        snprintf(h->cpu, sizeof h->cpu, "%s", c + 2);
        h->cpu[strcspn(h->cpu, "\n")] = 0;
        break;
      }
    }
    fclose(f);
  }
  h->cores = sysconf(_SC_NPROCESSORS_ONLN);
  loadavg(h->load_start, sizeof h->load_start);
  const char *commit = getenv("CAIRN_BENCH_COMMIT"); /* set by run.sh */
  snprintf(h->commit, sizeof h->commit, "%s",
           commit && *commit ? commit : "unknown");
  h->mem_gib = (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGESIZE) /
               (1024.0 * 1024 * 1024);
  snprintf(h->fs, sizeof h->fs, "unknown fs");
  if (statfs(dir, &sf) == 0) {
    unsigned long t = (unsigned long)sf.f_type;
    snprintf(h->fs, sizeof h->fs, "%s",
             t == 0xEF53       ? "ext4"
             : t == 0x58465342 ? "xfs"
             : t == 0x9123683E ? "btrfs"
             : t == 0x01021994 ? "tmpfs"
             : t == 0x794c7630 ? "overlayfs"
             : t == 0x2fc12fc1 ? "zfs"
                               : "other fs");
  }
}

/* ---- medians of repeated runs -------------------------------------------- */

static double median(double *x, int n) {
  qsort(x, (size_t)n, sizeof *x, cmp_double);
  return n % 2 ? x[n / 2] : (x[n / 2 - 1] + x[n / 2]) / 2;
}

/* out = engine e over its runs: the median of every figure the runs have,
 * total time, the first failure. */
static void summarize(const eng_result *raw, int repeat, size_t e,
                      eng_result *out) {
  double x[64];
  int n;
  memset(out, 0, sizeof *out);
#define MEDIAN_OF(field, cond)                                                 \
  do {                                                                         \
    n = 0;                                                                     \
    for (int r_ = 0; r_ < repeat && r_ < 64; r_++) {                           \
      const eng_result *q = &raw[(size_t)r_ * N_ENGINES + e];                  \
      if (cond)                                                                \
        x[n++] = q->field;                                                     \
    }                                                                          \
    if (n)                                                                     \
      out->field = median(x, n);                                               \
  } while (0)
  for (int i = 0; i < R_COUNT; i++) {
    MEDIAN_OF(v[i], q->have[i]);
    out->have[i] = n > 0;
  }
  MEDIAN_OF(w1_bytes, q->have[R_W1]);
  MEDIAN_OF(w9_size1, q->have[R_W9]);
  MEDIAN_OF(w9_size10, q->have[R_W9]);
  MEDIAN_OF(w9_logical, q->have[R_W9]);
  MEDIAN_OF(w9_rate1, q->have[R_W9]);
  MEDIAN_OF(w9_rate_rest, q->have[R_W9]);
#undef MEDIAN_OF
  for (int r = 0; r < repeat; r++) {
    const eng_result *q = &raw[(size_t)r * N_ENGINES + e];
    out->ran |= q->ran;
    out->seconds += q->seconds;
    out->cpu_seconds += q->cpu_seconds;
    if (q->status && !out->status)
      out->status = q->status;
    if (q->version[0])
      memcpy(out->version, q->version, sizeof out->version);
  }
}

/* ---- the report ------------------------------------------------------- */

static void fmt_value(int id, double x, char *out, size_t n) {
  if (id == R_SPACE || id == R_W9) {
    snprintf(out, n, "%.2f", x);
  } else if (id == R_RSS || id == R_RSS17) {
    snprintf(out, n, "%.0f", x);
  } else if (x >= 1000) {
    /* thousands separators */
    char digits[32], *o = out;
    int len = snprintf(digits, sizeof digits, "%.0f", x);
    for (int i = 0; i < len && (size_t)(o - out) + 2 < n; i++) {
      if (i > 0 && (len - i) % 3 == 0)
        *o++ = ',';
      *o++ = digits[i];
    }
    *o = 0;
  } else {
    snprintf(out, n, "%.1f", x);
  }
}

/* cairn against the best peer, so that > 1 always means cairn is better:
 * cairn ÷ best for rates, best ÷ cairn where lower is better. */
static int versus(const row_def *rd, const eng_result *res, const opts *o,
                  double *ratio, const char **best_name) {
  int best = -1;
  if (!o->engine_on[0] || !res[0].have[rd->id] || res[0].v[rd->id] <= 0)
    return 0;
  for (size_t e = 1; e < N_ENGINES; e++) {
    if (!o->engine_on[e] || !res[e].have[rd->id])
      continue;
    double x = res[e].v[rd->id];
    if (best < 0 ||
        (rd->higher ? x > res[best].v[rd->id] : x < res[best].v[rd->id]))
      best = (int)e;
  }
  if (best < 0 || res[best].v[rd->id] <= 0)
    return 0;
  *ratio = rd->higher ? res[0].v[rd->id] / res[best].v[rd->id]
                      : res[best].v[rd->id] / res[0].v[rd->id];
  *best_name = all_engines[best]->name;
  return 1;
}

static int row_shown(const row_def *rd, const opts *o) {
  return rd->wl == 0 || o->wl_on[rd->wl];
}

static void report_markdown(FILE *f, const opts *o, const host_info *h,
                            const eng_result *res) {
  fprintf(f, "\n### %s — %s, %ld cores, %.0f GiB RAM, %s, %s\n\n", h->name,
          h->cpu, h->cores, h->mem_gib, h->kernel, h->fs);
  fprintf(f,
          "N = %llu keys (scale %g); W2/W7/W8 and each W9 pass: %llu "
          "commits × %d puts; W5: %llu scans\n\n",
          (unsigned long long)o->n, o->scale, (unsigned long long)o->commits,
          W2_PUTS, (unsigned long long)o->scans);
  if (o->repeat > 1)
    fprintf(f,
            "- every figure is the median of %d runs per engine, the engines "
            "interleaved (run 1 of each, then run 2, ...)\n",
            o->repeat);
  fprintf(f, "- cairn commit: %s\n", h->commit);
  fprintf(f,
          "- fdatasync median %.3f ms (200 × append 4 KiB + fdatasync before "
          "the run; p10 %.3f, p90 %.3f ms); after the run: median %.3f ms "
          "(p10 %.3f, p90 %.3f). One sync per commit allows ≤ %.0f durable "
          "commits/s at the median\n",
          h->fsync_start.p50 * 1e3, h->fsync_start.p10 * 1e3,
          h->fsync_start.p90 * 1e3, h->fsync_end.p50 * 1e3,
          h->fsync_end.p10 * 1e3, h->fsync_end.p90 * 1e3,
          1.0 / h->fsync_start.p50);
  fprintf(f, "- memcpy bandwidth: %.1f GB/s (64 MiB blocks, best of 10)\n",
          h->memcpy_bps / 1e9);
  fprintf(f, "- load average (1/5/15 min): %s at the start, %s at the end\n\n",
          h->load_start, h->load_end);
  fprintf(f, "| workload | unit |");
  for (size_t e = 0; e < N_ENGINES; e++)
    if (o->engine_on[e])
      fprintf(f, " %s |", all_engines[e]->name);
  fprintf(f, " cairn / best peer |\n|---|---|");
  for (size_t e = 0; e < N_ENGINES; e++)
    if (o->engine_on[e])
      fprintf(f, "---:|");
  fprintf(f, "---:|\n");
  for (size_t i = 0; i < N_ROWS; i++) {
    const row_def *rd = &rows[i];
    double ratio;
    const char *best;
    if (!row_shown(rd, o))
      continue;
    fprintf(f, "| %s | %s |", rd->name, rd->unit);
    for (size_t e = 0; e < N_ENGINES; e++) {
      char buf[64];
      if (!o->engine_on[e])
        continue;
      if (res[e].have[rd->id])
        fmt_value(rd->id, res[e].v[rd->id], buf, sizeof buf);
      else
        snprintf(buf, sizeof buf, res[e].status ? "FAILED" : "—");
      fprintf(f, " %s |", buf);
    }
    if (versus(rd, res, o, &ratio, &best))
      fprintf(f, " %.2f (%s) |\n", ratio, best);
    else
      fprintf(f, " — |\n");
  }
  fprintf(f, "\n\"cairn / best peer\" > 1 means cairn is better: cairn ÷ the "
             "best peer's rate, and for the lower-is-better rows (space, W9 "
             "growth, RSS) the best peer's figure ÷ cairn's. The best peer is "
             "named.\n");
  if (o->wl_on[W9]) {
    for (size_t e = 0; e < N_ENGINES; e++)
      if (o->engine_on[e] && res[e].have[R_W9]) {
        fprintf(f,
                "W9: the logical data itself grows %.2f× from pass 1 to pass "
                "10 (half of every commit's puts are new keys).",
                res[e].w9_logical);
        break;
      }
    fprintf(f, " W9 durable commits/s, pass 1 (snapshot held) → passes "
               "2–10:");
    for (size_t e = 0; e < N_ENGINES; e++)
      if (o->engine_on[e] && res[e].have[R_W9])
        fprintf(f, " %s %.1f → %.1f;", all_engines[e]->name, res[e].w9_rate1,
                res[e].w9_rate_rest);
    fprintf(f, "\n");
  }
  fprintf(f, "Space amplification counts the bytes allocated on disk (du) "
             "by the closed database after W1; W9 compares file sizes "
             "(apparent size, so RocksDB's preallocated WAL does not count) of "
             "the open database, the whole directory for RocksDB and "
             "LevelDB, the database plus its -wal and -shm for SQLite.\n");
  fprintf(f, "Peak RSS is ru_maxrss of the process that ran the engine's "
             "workloads; for the mmap engines (cairn, LMDB) it includes the "
             "file pages they touched through the map. The W1–W7 row is the "
             "larger of the process's peak (VmHWM) at the end of W7 and its "
             "peak during W6, which runs last (the peak is reset before it "
             "through /proc/self/clear_refs), so W8's and W9's held "
             "snapshots do not count there.\n");
  fprintf(f, "LMDB needs a map size chosen in advance (64 GiB here); cairn "
             "needs none.\n\nEngines:\n\n");
  for (size_t e = 0; e < N_ENGINES; e++)
    if (o->engine_on[e])
      fprintf(f, "- %s %s: %s (ran %.0f s, %.0f s CPU in all)%s\n",
              all_engines[e]->name, res[e].version, all_engines[e]->config,
              res[e].seconds, res[e].cpu_seconds,
              res[e].status ? " — FAILED its checks" : "");
}

static void json_str(FILE *f, const char *s) {
  fputc('"', f);
  for (; *s; s++) {
    if (*s == '"' || *s == '\\')
      fprintf(f, "\\%c", *s);
    else if ((unsigned char)*s < 0x20)
      fprintf(f, "\\u%04x", *s);
    else
      fputc(*s, f);
  }
  fputc('"', f);
}

static const char *const json_keys[R_COUNT] = {
    "W1_keys_per_s",    "W1_space_amplification",
    "W2_commits_per_s", "W3_gets_per_s",
    "W4_keys_per_s",    "W5_scans_per_s",
    "W6_puts_per_s",    "W7_commits_per_s",
    "W8_gets_per_s",    "W8_commits_per_s",
    "W9_growth",        "peak_rss_w1_w7_mib",
    "peak_rss_mib"};

/* The figures of one result as JSON members (", \"key\": value" each). */
static void json_figures(FILE *f, const eng_result *r) {
  for (int i = 0; i < R_COUNT; i++)
    if (r->have[i])
      fprintf(f, ", \"%s\": %.6g", json_keys[i], r->v[i]);
  if (r->have[R_W1])
    fprintf(f, ", \"W1_bytes_on_disk\": %.0f", r->w1_bytes);
  if (r->have[R_W9])
    fprintf(f,
            ", \"W9_bytes_pass1\": %.0f, \"W9_bytes_pass10\": %.0f, "
            "\"W9_logical_growth\": %.4f, \"W9_commits_per_s_pass1\": %.4g, "
            "\"W9_commits_per_s_pass2_10\": %.4g",
            r->w9_size1, r->w9_size10, r->w9_logical, r->w9_rate1,
            r->w9_rate_rest);
}

static void report_json(const char *path, const opts *o, const host_info *h,
                        const eng_result *res, const eng_result *raw) {
  FILE *f = fopen(path, "w");
  if (!f)
    die("cannot write %s: %s", path, strerror(errno));
  fprintf(f, "{\n  \"host\": ");
  json_str(f, h->name);
  fprintf(f, ",\n  \"cpu\": ");
  json_str(f, h->cpu);
  fprintf(f, ",\n  \"cores\": %ld,\n  \"mem_gib\": %.1f,\n  \"kernel\": ",
          h->cores, h->mem_gib);
  json_str(f, h->kernel);
  fprintf(f, ",\n  \"fs\": ");
  json_str(f, h->fs);
  fprintf(f, ",\n  \"cairn_commit\": ");
  json_str(f, h->commit);
  fprintf(f, ",\n  \"loadavg_start\": ");
  json_str(f, h->load_start);
  fprintf(f, ",\n  \"loadavg_end\": ");
  json_str(f, h->load_end);
  fprintf(f,
          ",\n  \"repeat\": %d,\n  \"scale\": %g,\n  \"n\": %llu,\n"
          "  \"commits\": %llu,\n"
          "  \"puts_per_commit\": %d,\n  \"scans\": %llu,\n"
          "  \"fdatasync_median_ms\": %.4f,\n"
          "  \"fdatasync_p10_ms\": %.4f,\n"
          "  \"fdatasync_p90_ms\": %.4f,\n"
          "  \"fdatasync_median_after_ms\": %.4f,\n"
          "  \"memcpy_gb_per_s\": %.2f,\n  \"engines\": {",
          o->repeat, o->scale, (unsigned long long)o->n,
          (unsigned long long)o->commits, W2_PUTS, (unsigned long long)o->scans,
          h->fsync_start.p50 * 1e3, h->fsync_start.p10 * 1e3,
          h->fsync_start.p90 * 1e3, h->fsync_end.p50 * 1e3,
          h->memcpy_bps / 1e9);
  int first = 1;
  for (size_t e = 0; e < N_ENGINES; e++) {
    if (!o->engine_on[e])
      continue;
    fprintf(f, "%s\n    \"%s\": {\"version\": ", first ? "" : ",",
            all_engines[e]->name);
    first = 0;
    json_str(f, res[e].version);
    fprintf(f, ", \"config\": ");
    json_str(f, all_engines[e]->config);
    fprintf(f, ", \"ok\": %s, \"seconds\": %.2f, \"cpu_seconds\": %.2f",
            res[e].ran && res[e].status == 0 ? "true" : "false", res[e].seconds,
            res[e].cpu_seconds);
    json_figures(f, &res[e]);
    fprintf(f, ", \"runs\": [");
    for (int r = 0; r < o->repeat; r++) {
      const eng_result *q = &raw[(size_t)r * N_ENGINES + e];
      fprintf(f, "%s{\"ok\": %s, \"seconds\": %.2f", r ? ", " : "",
              q->ran && q->status == 0 ? "true" : "false", q->seconds);
      json_figures(f, q);
      fprintf(f, "}");
    }
    fprintf(f, "]}");
  }
  fprintf(f, "\n  },\n  \"cairn_vs_best_peer\": {");
  first = 1;
  for (size_t i = 0; i < N_ROWS; i++) {
    double ratio;
    const char *best;
    if (!row_shown(&rows[i], o) || !versus(&rows[i], res, o, &ratio, &best))
      continue;
    fprintf(f, "%s\n    \"%s\": {\"ratio\": %.4f, \"best_peer\": \"%s\"}",
            first ? "" : ",", json_keys[rows[i].id], ratio, best);
    first = 0;
  }
  fprintf(f, "\n  },\n  \"ratio_note\": \"> 1 means cairn is better\"\n}\n");
  if (fclose(f) != 0)
    die("cannot write %s", path);
}

/* ---- main ------------------------------------------------------------ */

/* SIGINT/SIGTERM in the parent: stop the running child and remove the
 * databases before dying of the same signal. */
static volatile sig_atomic_t stop_signal;

static void on_signal(int sig) { stop_signal = sig; }

static void trap_signals(void (*handler)(int)) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = handler; /* no SA_RESTART: wait4 returns EINTR */
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
}

static void stop_now(pid_t child, const char *run_dir, const char *base,
                     int made_base) {
  int sig = stop_signal;
  if (child > 0) {
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
  }
  rm_rf(run_dir);
  if (made_base)
    rmdir(base);
  fprintf(stderr, "cairn-bench: stopped by signal %d; removed %s\n", sig,
          run_dir);
  trap_signals(SIG_DFL);
  raise(sig);
  _exit(128 + sig);
}

static void usage(FILE *f) {
  fprintf(f,
          "usage: cairn-bench [--scale F | --quick] [--repeat K] "
          "[--engines a,b,...]\n"
          "                   [--workloads W1,W2,...] [--dir D] [--json FILE]\n"
          "  --scale F      N = 1,000,000 × F keys; commits and scans scale "
          "too (default 1)\n"
          "  --quick        --scale 0.01, a smoke run\n"
          "  --repeat K     run every engine K times (interleaved) and report "
          "medians\n"
          "  --engines      any of cairn,lmdb,rocksdb,leveldb,sqlite "
          "(default all)\n"
          "  --workloads    any of W1..W9 (default all)\n"
          "  --dir D        where the temporary databases go (default "
          "./bench-data)\n"
          "  --json FILE    also write the results as JSON\n");
}

static void parse_list(const char *arg, const char *what, int *on, int n_on,
                       int (*index_of)(const char *)) {
  char buf[512], *save = NULL;
  snprintf(buf, sizeof buf, "%s", arg);
  memset(on, 0, sizeof(int) * (size_t)n_on);
  for (char *tok = strtok_r(buf, ",", &save); tok;
       tok = strtok_r(NULL, ",", &save)) {
    int i = index_of(tok);
    if (i < 0) {
      fprintf(stderr, "cairn-bench: unknown %s '%s'\n", what, tok);
      usage(stderr);
      exit(2);
    }
    on[i] = 1;
  }
}

static int engine_index(const char *s) {
  for (size_t e = 0; e < N_ENGINES; e++)
    if (!strcmp(s, all_engines[e]->name))
      return (int)e;
  return -1;
}

static int workload_index(const char *s) {
  if ((s[0] == 'W' || s[0] == 'w') && s[1] >= '1' && s[1] <= '9' && !s[2])
    return s[1] - '0';
  return -1;
}

static uint64_t scaled(double base, double scale, double min) {
  double x = base * scale + 0.5;
  return (uint64_t)(x < min ? min : x);
}

int main(int argc, char **argv) {
  opts o;
  host_info h;
  memset(&o, 0, sizeof o);
  memset(&h, 0, sizeof h);
  o.scale = 1;
  o.repeat = 1;
  o.dir = "bench-data";
  for (size_t e = 0; e < N_ENGINES; e++)
    o.engine_on[e] = 1;
  for (int w = W1; w < NW; w++)
    o.wl_on[w] = 1;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *val = i + 1 < argc ? argv[i + 1] : NULL;
    int takes = 1;
    if (!strcmp(a, "--quick")) {
      o.scale = 0.01;
      takes = 0;
    } else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      usage(stdout);
      return 0;
    } else if (!val) {
      fprintf(stderr, "cairn-bench: unknown option or missing value: %s\n", a);
      usage(stderr);
      return 2;
    } else if (!strcmp(a, "--scale")) {
      char *end;
      o.scale = strtod(val, &end);
      if (*end || !(o.scale > 0) || o.scale > 100) {
        fprintf(stderr, "cairn-bench: bad --scale %s\n", val);
        return 2;
      }
    } else if (!strcmp(a, "--repeat")) {
      char *end;
      long k = strtol(val, &end, 10);
      if (*end || k < 1 || k > 64) {
        fprintf(stderr, "cairn-bench: bad --repeat %s (1..64)\n", val);
        return 2;
      }
      o.repeat = (int)k;
    } else if (!strcmp(a, "--engines")) {
      parse_list(val, "engine", o.engine_on, (int)N_ENGINES, engine_index);
    } else if (!strcmp(a, "--workloads")) {
      parse_list(val, "workload", o.wl_on, NW, workload_index);
    } else if (!strcmp(a, "--dir")) {
      o.dir = val;
    } else if (!strcmp(a, "--json")) {
      o.json = val;
    } else {
      fprintf(stderr, "cairn-bench: unknown option %s\n", a);
      usage(stderr);
      return 2;
    }
    i += takes;
  }
  o.n = scaled(1e6, o.scale, 1000);
  o.commits = scaled(1000, o.scale, 10);
  o.scans = scaled(1e5, o.scale, 1000);

  /* A fresh directory for this run, removed at the end. */
  int made_base = mkdir(o.dir, 0755) == 0;
  if (!made_base && errno != EEXIST)
    die("mkdir %s: %s", o.dir, strerror(errno));
  char run_dir[4096];
  path_join(run_dir, sizeof run_dir, o.dir, "run-XXXXXX", "");
  if (!mkdtemp(run_dir))
    die("mkdtemp %s: %s", run_dir, strerror(errno));

  trap_signals(on_signal);
  host_describe(&h, run_dir);
  fprintf(stderr,
          "cairn-bench: N = %llu, %llu commits × %d puts, %llu scans, in "
          "%s (%s)\n",
          (unsigned long long)o.n, (unsigned long long)o.commits, W2_PUTS,
          (unsigned long long)o.scans, run_dir, h.fs);
  h.fsync_start = fdatasync_latency(run_dir);
  h.memcpy_bps = memcpy_bandwidth();
  fprintf(stderr,
          "  fdatasync median %.3f ms (p10 %.3f, p90 %.3f); memcpy %.1f GB/s\n",
          h.fsync_start.p50 * 1e3, h.fsync_start.p10 * 1e3,
          h.fsync_start.p90 * 1e3, h.memcpy_bps / 1e9);

  /* raw[r * N_ENGINES + e]: run r of engine e, written by the child. */
  size_t nraw = (size_t)o.repeat * N_ENGINES;
  eng_result *raw =
      mmap(NULL, sizeof(eng_result) * nraw, PROT_READ | PROT_WRITE,
           MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED)
    die("mmap: %s", strerror(errno));
  memset(raw, 0, sizeof(eng_result) * nraw);

  int failed = 0;
  /* Runs interleave the engines (run 1 of each, then run 2, ...), so a
   * burst of other work on the machine does not land on one engine only. */
  for (int rnum = 0; rnum < o.repeat; rnum++) {
    for (size_t e = 0; e < N_ENGINES; e++) {
      if (!o.engine_on[e])
        continue;
      eng_result *res = &raw[(size_t)rnum * N_ENGINES + e];
      if (o.repeat > 1)
        fprintf(stderr, "%s (run %d of %d):\n", all_engines[e]->name, rnum + 1,
                o.repeat);
      else
        fprintf(stderr, "%s:\n", all_engines[e]->name);
      fflush(stderr);
      fflush(stdout);
      double t0 = now();
      pid_t pid = fork();
      if (pid < 0)
        die("fork: %s", strerror(errno));
      if (pid == 0) {
        trap_signals(SIG_DFL);
        run_engine(&o, all_engines[e], run_dir, res);
        fflush(stderr);
        _exit(0);
      }
      int status;
      struct rusage ru;
      while (wait4(pid, &status, 0, &ru) < 0) {
        if (errno != EINTR)
          die("wait4: %s", strerror(errno));
        if (stop_signal)
          stop_now(pid, run_dir, o.dir, made_base);
      }
      res->ran = 1;
      res->seconds = now() - t0;
      res->cpu_seconds =
          (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
          (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
      res->v[R_RSS] = (double)ru.ru_maxrss / 1024.0; /* KiB on Linux */
      res->have[R_RSS] = 1;
      if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        res->status = 0;
      } else {
        res->status =
            WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
        fprintf(stderr, "*** %s: FAILED (%s %d): its results are incomplete\n",
                all_engines[e]->name,
                WIFEXITED(status) ? "exit status" : "signal",
                WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
        failed = 1;
        /* leftovers of the failed engine */
        char p[4200];
        path_join(p, sizeof p, run_dir, all_engines[e]->name, "");
        rm_rf(p);
        path_join(p, sizeof p, run_dir, all_engines[e]->name, "-w6");
        rm_rf(p);
      }
      fprintf(stderr, "  [%s] %.1f s, peak RSS %.0f MiB\n",
              all_engines[e]->name, res->seconds, res->v[R_RSS]);
    }
  }
  eng_result res[N_ENGINES];
  for (size_t e = 0; e < N_ENGINES; e++)
    summarize(raw, o.repeat, e, &res[e]);

  h.fsync_end = fdatasync_latency(run_dir);
  loadavg(h.load_end, sizeof h.load_end);
  rm_rf(run_dir);
  if (made_base)
    rmdir(o.dir);

  report_markdown(stdout, &o, &h, res);
  if (o.json)
    report_json(o.json, &o, &h, res, raw);
  if (failed)
    fprintf(stderr, "cairn-bench: an engine FAILED its checks (see above)\n");
  return failed ? 1 : 0;
}
