/*
 * test_concurrency.c — snapshot isolation under real concurrency.
 *
 * Proves that while one writer commits a few hundred transactions (puts,
 * overwrites and deletes over two column families, small values and
 * multi-page ones that grow the file and move the map), reader threads that
 * hold snapshots see a content that
 *   - never changes during the snapshot's life (the whole-content checksum,
 *     computed by cursor walks of every cf, is taken twice with work and
 *     commits in between, and a value slice obtained at the start still holds
 *     the same bytes at the end), and
 *   - is exactly a state the writer committed: the writer publishes the
 *     checksum of every commit under its txn id, and the snapshot's
 *     cairn_txn_id says which one it must equal;
 * and that threads doing point gets while the writer commits always get
 * whole, self-consistent values (each value carries its key's hash and the
 * seed of its bytes). Runs on the unix platform in a temp dir (mmap reads),
 * on unix with NOMMAP, and on the memory platform (cached mode with a small
 * page cache, so pages are evicted under the readers' feet). Lazy commits
 * with a 1 MiB checkpoint budget and an automatic sync every 16 commits
 * make dozens of lazy checkpoints and automatic syncs (in the background
 * on unix) happen under the readers; with a map, each checkpoint's fold
 * runs on a helper thread while the writer commits into a fresh overlay.
 * Single-threaded hosts (WASI, Emscripten without pthreads) run the same
 * checks with the reader steps interleaved between the writer's commits.
 */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cairn.h"
#include "platform.h"
#include "test_util.h"
#include "threads.h"

#include "test_support.h"

#ifndef CAIRN_SINGLE_THREADED
#include <pthread.h>
#include <sched.h>
#endif

static const char *const CFS[2] = {"default", "second"};

/* ---- self-describing values ------------------------------------------------
 */

#define VHDR 16u

static uint64_t key_hash(const void *k, size_t n) {
  return ts_hash_bytes(k, n, 0x5eed);
}

/* [vseed][hash of key][bytes from vseed]; vlen >= VHDR. */
static void make_value(uint8_t *buf, const void *k, size_t kn, uint64_t vseed,
                       size_t vlen) {
  uint64_t kh = key_hash(k, kn);
  memcpy(buf, &vseed, 8);
  memcpy(buf + 8, &kh, 8);
  ts_fill(buf + VHDR, vlen - VHDR, vseed);
}

static int value_ok(const void *k, size_t kn, const uint8_t *v, size_t vn) {
  uint64_t vseed, kh;
  if (vn < VHDR)
    return 0;
  memcpy(&vseed, v, 8);
  memcpy(&kh, v + 8, 8);
  return kh == key_hash(k, kn) &&
         ts_value_eq(v + VHDR, vn - VHDR, vseed, vn - VHDR);
}

/* ---- shared state
 * ------------------------------------------------------------ */

typedef struct shared {
  cairn_db *db;
  int ncommits;
  size_t maxid;
  _Atomic uint64_t *pub_hash; /* by txn id */
  _Atomic int *pub_set;
  atomic_int writer_done;
  atomic_long snapshots_checked;
  atomic_long gets_checked;
  atomic_long commits_during_snapshots;
} shared;

/* Failures seen by a thread (CHECK's counters are not thread-safe). */
typedef struct tfail {
  int n;
  char first[512];
} tfail;

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void
tfail_add(tfail *f, const char *fmt, ...) {
  if (f->n++ == 0) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->first, sizeof f->first, fmt, ap);
    va_end(ap);
  }
}

static void publish(shared *sh, uint64_t id, uint64_t h) {
  if (id >= sh->maxid)
    return;
  atomic_store(&sh->pub_hash[id], h);
  atomic_store(&sh->pub_set[id], 1);
}

/* ---- the writer
 * ---------------------------------------------------------------- */

typedef struct writer {
  shared *sh;
  ts_state com;
  uint64_t sum; /* content hash of com */
  ts_rng r;
  uint8_t *vbuf;
  uint32_t psize;
  tfail f;
  int committed;
} writer;

static uint64_t entry_hash(writer *w, const char *cf, const ts_ent *e) {
  make_value(w->vbuf, e->key, e->klen, e->vseed, e->vlen);
  return ts_entry_hash(cf, e->key, e->klen, w->vbuf, e->vlen);
}

static void writer_init(writer *w, shared *sh, uint32_t psize, uint64_t seed) {
  memset(w, 0, sizeof *w);
  w->sh = sh;
  w->psize = psize;
  ts_rng_seed(&w->r, seed);
  ts_state_init(&w->com);
  ts_state_add(&w->com, CFS[1]);
  w->vbuf = malloc(200000 + 4 * (size_t)CAIRN_MAX_PAGE_SIZE);
  if (!w->vbuf)
    abort();
}

static void writer_free(writer *w) {
  ts_state_free(&w->com);
  free(w->vbuf);
}

/* One write transaction; returns 1 if it committed. */
static int writer_step(writer *w, int i) {
  cairn_txn *t = NULL;
  cairn_cf h[2] = {CAIRN_DEFAULT_CF, 0};
  int rc = cairn_begin(w->sh->db, 0, &t);
  if (rc) {
    tfail_add(&w->f, "writer: begin: %s", cairn_strerror(rc));
    return 0;
  }
  uint64_t id = cairn_txn_id(t);
  rc = cairn_cf_open(t, CFS[1], 0, &h[1]);
  if (rc) {
    tfail_add(&w->f, "writer: cf_open: %s", cairn_strerror(rc));
    cairn_abort(t);
    return 0;
  }
  ts_state pend;
  ts_state_copy(&pend, &w->com);
  uint64_t sum = w->sum;
  int nops = 1 + (int)ts_below(&w->r, 20);
  for (int k = 0; k < nops && rc == CAIRN_OK; k++) {
    int c = (int)ts_below(&w->r, 2);
    ts_map *m = &pend.map[c];
    char key[24];
    size_t kn = (size_t)snprintf(key, sizeof key, "%c%05d", 'a' + c,
                                 (int)ts_below(&w->r, 1500));
    const ts_ent *old = ts_map_get(m, key, kn);
    if (old)
      sum -= entry_hash(w, CFS[c], old);
    if (old && ts_chance(&w->r, 1, 4)) {
      rc = cairn_del(t, h[c], ts_sl(key, kn));
      ts_map_del(m, key, kn);
      continue;
    }
    uint64_t x = ts_below(&w->r, 100);
    size_t vn =
        x < 90   ? VHDR + (size_t)ts_below(&w->r, 300)
        : x < 98 ? (size_t)w->psize / 2 + (size_t)ts_below(&w->r, 3 * w->psize)
                 : 50000 + (size_t)ts_below(&w->r, 140000);
    uint64_t vs = ts_next(&w->r);
    make_value(w->vbuf, key, kn, vs, vn);
    rc = cairn_put(t, h[c], ts_sl(key, kn), ts_sl(w->vbuf, vn), 0);
    ts_map_put(m, key, kn, vs, vn);
    sum += ts_entry_hash(CFS[c], key, kn, w->vbuf, vn);
  }
  if (rc) {
    tfail_add(&w->f, "writer: put/del in txn %llu: %s (%s)",
              (unsigned long long)id, cairn_strerror(rc), cairn_errmsg());
    cairn_abort(t);
    ts_state_free(&pend);
    return 0;
  }
  if (i % 37 == 36) { /* an aborted txn now and then */
    cairn_abort(t);
    ts_state_free(&pend);
    return 0;
  }
  rc = cairn_commit_ex(t, i % 10 == 9 ? CAIRN_DURABILITY_SYNC
                                      : CAIRN_DURABILITY_LAZY);
  if (rc) {
    tfail_add(&w->f, "writer: commit %llu: %s (%s)", (unsigned long long)id,
              cairn_strerror(rc), cairn_errmsg());
    ts_state_free(&pend);
    return 0;
  }
  ts_state_free(&w->com);
  w->com = pend;
  w->sum = sum;
  publish(w->sh, id, sum);
  w->committed++;
  return 1;
}

/* ---- readers
 * ------------------------------------------------------------------- */

typedef struct reader {
  shared *sh;
  int idx;
  ts_rng r;
  tfail f;
  long snapshots;
} reader;

static void pause_a_little(void) {
#ifndef CAIRN_SINGLE_THREADED
  struct timespec ts = {0, 200000}; /* 0.2 ms */
  nanosleep(&ts, NULL);
  sched_yield();
#endif
}

/* Random self-checking gets in t; returns the number of failures. */
static int random_gets(reader *rd, cairn_txn *t, int n) {
  int bad = 0;
  for (int i = 0; i < n; i++) {
    int c = (int)ts_below(&rd->r, 2);
    cairn_cf cf = CAIRN_DEFAULT_CF;
    if (c && cairn_cf_open(t, CFS[1], 0, &cf) != CAIRN_OK) {
      tfail_add(&rd->f, "reader %d: cf_open failed", rd->idx);
      return bad + 1;
    }
    char key[24];
    size_t kn = (size_t)snprintf(key, sizeof key, "%c%05d", 'a' + c,
                                 (int)ts_below(&rd->r, 1500));
    cairn_slice v;
    int rc = cairn_get(t, cf, ts_sl(key, kn), &v);
    if (rc == CAIRN_OK && !value_ok(key, kn, v.data, v.size)) {
      tfail_add(&rd->f, "reader %d: get %s: value of %zu bytes is not whole",
                rd->idx, key, v.size);
      bad++;
    } else if (rc != CAIRN_OK && rc != CAIRN_NOTFOUND) {
      tfail_add(&rd->f, "reader %d: get %s: %s (%s)", rd->idx, key,
                cairn_strerror(rc), cairn_errmsg());
      bad++;
    }
    atomic_fetch_add(&rd->sh->gets_checked, 1);
  }
  return bad;
}

/* One snapshot: checksum twice with work between; compare to what the
 * writer published for its id. Returns 0 on failure. */
static int reader_snapshot(reader *rd, int work_rounds) {
  shared *sh = rd->sh;
  cairn_txn *t = NULL;
  int rc = cairn_begin(sh->db, CAIRN_TXN_RDONLY, &t);
  if (rc) {
    tfail_add(&rd->f, "reader %d: begin: %s", rd->idx, cairn_strerror(rc));
    return 0;
  }
  uint64_t id = cairn_txn_id(t), h1 = 0, h2 = 0, n1 = 0, n2 = 0;
  int ok = 1;
  /* a slice that must stay valid and unchanged for the txn's life */
  cairn_slice pin = {0, 0};
  char pkey[24];
  size_t pkn =
      (size_t)snprintf(pkey, sizeof pkey, "a%05d", (int)ts_below(&rd->r, 1500));
  int have_pin = cairn_get(t, CAIRN_DEFAULT_CF, ts_sl(pkey, pkn), &pin) == 0;
  uint64_t pin_hash = have_pin ? ts_hash_bytes(pin.data, pin.size, 1) : 0;
  rc = ts_db_hash(t, &h1, &n1);
  if (rc) {
    tfail_add(&rd->f, "reader %d: walk of snapshot %llu: %s (%s)", rd->idx,
              (unsigned long long)id,
              rc == -1000 ? "keys out of order" : cairn_strerror(rc),
              cairn_errmsg());
    ok = 0;
  }
  for (int i = 0; ok && i < work_rounds; i++) {
    if (random_gets(rd, t, 20))
      ok = 0;
    pause_a_little();
  }
  cairn_db_stat st;
  if (ok && cairn_db_stat_get(sh->db, &st) == CAIRN_OK && st.last_txn_id > id)
    atomic_fetch_add(&sh->commits_during_snapshots,
                     (long)(st.last_txn_id - id));
  if (ok) {
    rc = ts_db_hash(t, &h2, &n2);
    if (rc) {
      tfail_add(&rd->f, "reader %d: second walk of snapshot %llu: %s", rd->idx,
                (unsigned long long)id, cairn_strerror(rc));
      ok = 0;
    } else if (h1 != h2 || n1 != n2) {
      tfail_add(&rd->f,
                "reader %d: snapshot %llu changed during its life (%llu "
                "entries, then %llu)",
                rd->idx, (unsigned long long)id, (unsigned long long)n1,
                (unsigned long long)n2);
      ok = 0;
    }
  }
  if (ok && have_pin &&
      (ts_hash_bytes(pin.data, pin.size, 1) != pin_hash ||
       !value_ok(pkey, pkn, pin.data, pin.size))) {
    tfail_add(&rd->f, "reader %d: a value slice of snapshot %llu changed",
              rd->idx, (unsigned long long)id);
    ok = 0;
  }
  cairn_abort(t);
  if (!ok)
    return 0;
  /* the state must be one the writer committed under this id */
  if (id >= sh->maxid) {
    tfail_add(&rd->f, "reader %d: snapshot id %llu out of range", rd->idx,
              (unsigned long long)id);
    return 0;
  }
  double t0 = ts_now_ms();
  while (!atomic_load(&sh->pub_set[id])) {
    if (atomic_load(&sh->writer_done) || ts_now_ms() - t0 > 30000) {
      if (atomic_load(&sh->pub_set[id]))
        break;
      tfail_add(&rd->f, "reader %d: snapshot id %llu was never committed",
                rd->idx, (unsigned long long)id);
      return 0;
    }
    pause_a_little();
  }
  if (atomic_load(&sh->pub_hash[id]) != h1) {
    tfail_add(&rd->f,
              "reader %d: snapshot %llu (%llu entries) is not the state the "
              "writer committed as txn %llu",
              rd->idx, (unsigned long long)id, (unsigned long long)n1,
              (unsigned long long)id);
    return 0;
  }
  rd->snapshots++;
  atomic_fetch_add(&sh->snapshots_checked, 1);
  return 1;
}

#ifndef CAIRN_SINGLE_THREADED
static void *reader_main(void *arg) {
  reader *rd = arg;
  while (!atomic_load(&rd->sh->writer_done) || rd->snapshots < 3) {
    if (!reader_snapshot(rd, 1 + (int)ts_below(&rd->r, 4)) && rd->f.n > 5)
      break;
  }
  return NULL;
}

/* Point gets while the writer commits, each in a short read txn. */
static void *getter_main(void *arg) {
  reader *rd = arg;
  while (!atomic_load(&rd->sh->writer_done)) {
    cairn_txn *t = NULL;
    if (cairn_begin(rd->sh->db, CAIRN_TXN_RDONLY, &t) != CAIRN_OK) {
      tfail_add(&rd->f, "getter %d: begin failed", rd->idx);
      break;
    }
    int bad = random_gets(rd, t, 1 + (int)ts_below(&rd->r, 30));
    cairn_abort(t);
    if (bad && rd->f.n > 5)
      break;
  }
  return NULL;
}
#endif

/* ---- one configuration
 * ------------------------------------------------------- */

static void run_config(const char *plat, const char *path, uint32_t flags,
                       size_t cache_pages, uint32_t psize, int nreaders,
                       int ngetters) {
  shared sh;
  writer w;
  cairn_options o;
  double t0 = ts_now_ms();
  memset(&sh, 0, sizeof sh);
  ts_options(&o, plat, psize);
  o.flags = CAIRN_OPEN_CREATE | flags;
  o.cache_pages = cache_pages;
  o.durability = CAIRN_DURABILITY_LAZY;
  o.checkpoint_mib = 1;     /* lazy checkpoints under the readers */
  o.lazy_sync_commits = 16; /* and automatic (background) syncs */
  ts_set_ctx("concurrency on %s (flags 0x%x, cache %zu, page %u)", plat,
             (unsigned)flags, cache_pages, psize);
  if (!TCHECK_OK(cairn_open(path, &o, &sh.db)))
    return;
  sh.ncommits = (int)ts_scaled(500, 40);
  sh.maxid = (size_t)sh.ncommits * 2 + 64;
  sh.pub_hash = calloc(sh.maxid, sizeof *sh.pub_hash);
  sh.pub_set = calloc(sh.maxid, sizeof *sh.pub_set);
  if (!sh.pub_hash || !sh.pub_set)
    abort();
  writer_init(&w, &sh, psize, 77 + psize);
  /* create the second cf and publish the initial state */
  cairn_txn *t = NULL;
  cairn_cf cf;
  TCHECK_OK(cairn_begin(sh.db, 0, &t));
  uint64_t id0 = cairn_txn_id(t);
  TCHECK_OK(cairn_cf_open(t, CFS[1], CAIRN_CF_CREATE, &cf));
  TCHECK_OK(cairn_commit(t));
  publish(&sh, id0, 0);

  reader readers[8];
  int nr = nreaders + ngetters;
  for (int i = 0; i < nr; i++) {
    memset(&readers[i], 0, sizeof readers[i]);
    readers[i].sh = &sh;
    readers[i].idx = i;
    ts_rng_seed(&readers[i].r, 1000 + (uint64_t)i);
  }
#ifndef CAIRN_SINGLE_THREADED
  pthread_t th[8];
  for (int i = 0; i < nr; i++)
    TCHECK(pthread_create(&th[i], NULL,
                          i < nreaders ? reader_main : getter_main,
                          &readers[i]) == 0);
  for (int i = 0; i < sh.ncommits && w.f.n == 0; i++)
    writer_step(&w, i);
  atomic_store(&sh.writer_done, 1);
  for (int i = 0; i < nr; i++)
    pthread_join(th[i], NULL);
#else
  /* one thread: snapshots taken between commits, verified later */
  (void)ngetters;
  for (int i = 0; i < sh.ncommits && w.f.n == 0; i++) {
    writer_step(&w, i);
    if (i % 7 == 0)
      reader_snapshot(&readers[i % nr], 0);
  }
  atomic_store(&sh.writer_done, 1);
  for (int i = 0; i < nr; i++)
    reader_snapshot(&readers[i], 1);
  {
    /* a snapshot held across many commits */
    cairn_txn *held = NULL;
    uint64_t h1 = 0, h2 = 0, n = 0;
    TCHECK_OK(cairn_begin(sh.db, CAIRN_TXN_RDONLY, &held));
    TCHECK_OK(ts_db_hash(held, &h1, &n));
    for (int i = 0; i < 30; i++)
      writer_step(&w, sh.ncommits + i);
    TCHECK_OK(ts_db_hash(held, &h2, &n));
    TCHECK(h1 == h2);
    cairn_abort(held);
  }
#endif
  /* results */
  if (!TCHECK(w.f.n == 0))
    printf("    %d writer failures; first: %s\n", w.f.n, w.f.first);
  TCHECK(w.committed > sh.ncommits / 2);
  for (int i = 0; i < nr; i++)
    if (!TCHECK(readers[i].f.n == 0))
      printf("    thread %d: %d failures; first: %s\n", i, readers[i].f.n,
             readers[i].f.first);
  TCHECK(atomic_load(&sh.snapshots_checked) >= nreaders);
  /* the final content equals the writer's model */
  uint64_t fh = 0, fn = 0;
  TCHECK_OK(cairn_begin(sh.db, CAIRN_TXN_RDONLY, &t));
  TCHECK_OK(ts_db_hash(t, &fh, &fn));
  TCHECK(fh == w.sum && fn == ts_state_entries(&w.com));
  cairn_abort(t);
  TCHECK_OK(cairn_check(sh.db, NULL, NULL));
  cairn_metrics met;
  TCHECK_OK(cairn_metrics_get(sh.db, &met));
  TCHECK(met.checkpoints >= 4); /* snapshots spanned lazy checkpoints */
  /* folded in the background (on a helper thread on unix with a map) */
  TCHECK(met.checkpoints_background >= 4);
  /* An automatic sync counts nothing durable before it returns; an
   * explicit one makes everything durable. */
  cairn_db_stat ds;
  TCHECK_OK(cairn_sync(sh.db));
  if (TCHECK_OK(cairn_db_stat_get(sh.db, &ds)))
    TCHECK(ds.durable_txn_id == ds.last_txn_id);
  TCHECK_OK(cairn_close(sh.db));
  printf("  %s (flags 0x%x, cache %zu, page %u): %d commits, %ld snapshots "
         "verified (%ld commits landed during them), %ld gets, %.1f s\n",
         plat, (unsigned)flags, cache_pages, psize, w.committed,
         atomic_load(&sh.snapshots_checked),
         atomic_load(&sh.commits_during_snapshots),
         atomic_load(&sh.gets_checked), (ts_now_ms() - t0) / 1000.0);
  writer_free(&w);
  free(sh.pub_hash);
  free(sh.pub_set);
}

int main(void) {
  double t0 = ts_now_ms();
#ifdef CAIRN_HAVE_UNIX_PLATFORM
  {
    char *dir = ts_mkdtemp();
    char path[4200];
    snprintf(path, sizeof path, "%s/conc.db", dir);
    run_config("unix", path, 0, 0, 4096, 3, 2);
    snprintf(path, sizeof path, "%s/conc-nommap.db", dir);
    run_config("unix", path, CAIRN_OPEN_NOMMAP, 64, 16384, 2, 2);
    ts_rmtree(dir);
    free(dir);
  }
#endif
  cairn_platform_memory_reset();
  run_config("memory", "conc.db", 0, 32, 4096, 4, 2);
  cairn_platform_memory_reset();
  run_config("memory", "conc64.db", 0, 0, 65536, 2, 1);
  cairn_platform_memory_reset();
  printf("test_concurrency: %.1f s\n", (ts_now_ms() - t0) / 1000.0);
  return test_summary();
}
