/*
 * test_corrupt.c — damaged files never crash, hang or lie.
 *
 * Builds valid databases (several commits, three column families, small and
 * overflow values, free pages) at 4, 16 and 64 KiB pages, then damages
 * copies of them in many seeded ways: flipped bytes, zeroed pages, random
 * pages, copies of other pages, truncation, appended garbage, and damage
 * whose checksum is recomputed ("resealed", per core/FORMAT.md) so that the
 * engine's structural validation rather than the checksum must catch it.
 * Each damaged file is opened (read-only and read-write) and exercised:
 * cf_list, full scans of every cf, point gets, cf and db stats, cairn_check,
 * and a write when check says the file is clean. The only acceptable
 * outcomes are CAIRN_CORRUPT / CAIRN_NOTADB (with a message; naming the
 * page where a page is at fault) or exactly the right data: the last
 * commit's, or the one before it when the newest meta page itself was
 * damaged. With resealed damage the data may legitimately differ, but never
 * a crash, a hang, or keys out of order once cairn_check calls the file
 * clean. Runs on the memory platform, on real files through the unix
 * platform (mmap reads), and on the fault platform through
 * fault_file_poke.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn.h"
#include "fault_platform.h"
#include "platform.h"
#include "test_util.h"

#include "test_support.h"

#ifdef CAIRN_HAVE_UNIX_PLATFORM
#include <signal.h>
#include <unistd.h>
#endif

static const char *const CFNAMES[3] = {"default", "alpha", "beta"};

/* ---- golden databases ------------------------------------------------------
 */

typedef struct golden {
  uint32_t psize;
  uint8_t *img;
  size_t n;
  ts_state st[2]; /* [1] the last commit, [0] the one before */
  int slot_last;  /* meta slot (0/1) holding the last commit */
} golden;

static int put_val(cairn_txn *t, cairn_cf cf, ts_map *m, const char *k,
                   size_t vlen, uint64_t vs) {
  void *v = ts_value_new(vlen, vs);
  int rc = cairn_put(t, cf, ts_str(k), ts_sl(v, vlen), 0);
  free(v);
  ts_map_put(m, k, strlen(k), vs, vlen);
  return rc;
}

static void build_golden(golden *g, uint32_t psize, uint64_t seed) {
  cairn_options o;
  cairn_db *db = NULL;
  ts_state st;
  ts_rng r;
  const char *path = "golden.db";
  memset(g, 0, sizeof *g);
  g->psize = psize;
  ts_rng_seed(&r, seed);
  ts_state_init(&st);
  ts_state_add(&st, CFNAMES[1]);
  ts_state_add(&st, CFNAMES[2]);
  ts_options(&o, "memory", psize);
  if (!CHECK_OK(cairn_open(path, &o, &db)))
    abort();
  int ncommits = 6;
  for (int c = 0; c < ncommits; c++) {
    cairn_txn *t = NULL;
    cairn_cf h[3] = {CAIRN_DEFAULT_CF, 0, 0};
    CHECK_OK(cairn_begin(db, 0, &t));
    for (int i = 1; i < 3; i++)
      CHECK_OK(cairn_cf_open(t, CFNAMES[i], CAIRN_CF_CREATE, &h[i]));
    int nops = c == 0 ? 1500 : 150;
    for (int i = 0; i < nops; i++) {
      int ci = (int)ts_below(&r, 3);
      char k[32];
      snprintf(k, sizeof k, "%s/%05d", CFNAMES[ci], (int)ts_below(&r, 2000));
      ts_map *m = &st.map[ci];
      if (c > 0 && ts_chance(&r, 1, 4) && ts_map_get(m, k, strlen(k))) {
        CHECK_OK(cairn_del(t, h[ci], ts_str(k)));
        ts_map_del(m, k, strlen(k));
        continue;
      }
      uint64_t x = ts_below(&r, 1000);
      size_t vn = x < 985 ? (size_t)ts_below(&r, 120)
                          : (size_t)(psize / 3 + ts_below(&r, 2 * psize));
      CHECK_OK(put_val(t, h[ci], m, k, vn, ts_next(&r)));
    }
    CHECK_OK(cairn_commit(t));
    if (c == ncommits - 2) {
      /* With the log, a meta page is written at checkpoints: make this
       * state the one a damaged newest meta falls back to. */
      CHECK_OK(cairn_checkpoint(db));
      ts_state_copy(&g->st[0], &st);
    }
  }
  ts_state_copy(&g->st[1], &st);
  ts_state_free(&st);
  CHECK_OK(cairn_check(db, NULL, NULL));
  CHECK_OK(cairn_close(db));
  if (!CHECK_OK(ts_file_read("memory", path, &g->img, &g->n)))
    abort();
  ts_file_remove("memory", path);
  /* which meta slot holds the newest commit (txnid at offset 16) */
  uint64_t t0 = 0, t1 = 0;
  memcpy(&t0, g->img + 16, 8); /* little-endian hosts only matter here */
  memcpy(&t1, g->img + psize + 16, 8);
  g->slot_last = t1 > t0;
  /* the documented checksum matches the engine's: resealing the two meta
   * pages and the first leaf or branch page found changes nothing */
  int checked = 0, tree_pages = 0;
  for (size_t pg = 0; pg < g->n / psize && tree_pages < 1; pg++) {
    uint8_t *p = g->img + pg * psize;
    unsigned type = p[4];
    if (pg >= 2 && type != 2 && type != 3)
      continue;
    uint8_t *copy = malloc(psize);
    if (!copy)
      abort();
    memcpy(copy, p, psize);
    ts_reseal_page(copy, psize, psize);
    if (!CHECK(memcmp(copy, p, 4) == 0))
      printf("    page %zu (type %u): documented checksum differs\n", pg, type);
    free(copy);
    checked++;
    tree_pages += pg >= 2;
  }
  CHECK(checked == 3);
  CHECK(ts_image_page_size(g->img, g->n) == psize);
}

static void free_golden(golden *g) {
  ts_state_free(&g->st[0]);
  ts_state_free(&g->st[1]);
  free(g->img);
}

/* ---- damage
 * ------------------------------------------------------------------ */

enum {
  D_FLIP,
  D_ZERO_PAGE,
  D_TRUNCATE,
  D_RANDOM_PAGE,
  D_COPY_PAGE,
  D_HEADER_FLIP,
  D_RESEAL,
  D_RESEAL_META,
  D_APPEND,
  D_KINDS
};
static const char *const DNAMES[D_KINDS] = {
    "flip bytes",      "zero a page",   "truncate",
    "random page",     "copy a page",   "flip header bytes",
    "resealed damage", "resealed meta", "append garbage"};

typedef struct damage {
  int kind;
  int meta_last_hit; /* the newest meta page was touched (fallback allowed) */
  int forged;        /* checksums recomputed: data may legitimately differ */
  char what[160];
} damage;

static void note_touch(const golden *g, damage *d, size_t off, size_t len) {
  size_t ms = (size_t)g->slot_last * g->psize;
  if (off < ms + 256 && off + len > ms)
    d->meta_last_hit = 1;
}

/* Damage the image (which may be reallocated); *n is its size. */
static void do_damage(const golden *g, uint8_t **img, size_t *n, ts_rng *r,
                      damage *d) {
  uint32_t ps = g->psize;
  size_t pages = *n / ps;
  memset(d, 0, sizeof *d);
  d->kind = (int)ts_below(r, D_KINDS);
  switch (d->kind) {
  case D_FLIP: {
    int k = 1 + (int)ts_below(r, 8);
    for (int i = 0; i < k; i++) {
      size_t off = (size_t)ts_below(r, *n);
      (*img)[off] ^= (uint8_t)(1 + ts_below(r, 255));
      note_touch(g, d, off, 1);
    }
    snprintf(d->what, sizeof d->what, "%d bytes flipped", k);
    break;
  }
  case D_HEADER_FLIP: {
    size_t pg = (size_t)ts_below(r, pages);
    size_t off = pg * ps + (size_t)ts_below(r, 64);
    (*img)[off] ^= (uint8_t)(1u << ts_below(r, 8));
    note_touch(g, d, off, 1);
    snprintf(d->what, sizeof d->what, "bit flipped at %zu (page %zu)", off, pg);
    break;
  }
  case D_ZERO_PAGE:
  case D_RANDOM_PAGE: {
    size_t pg = (size_t)ts_below(r, pages);
    for (size_t i = 0; i < ps; i++)
      (*img)[pg * ps + i] = d->kind == D_ZERO_PAGE ? 0 : (uint8_t)ts_next(r);
    note_touch(g, d, pg * ps, ps);
    snprintf(d->what, sizeof d->what, "page %zu %s", pg,
             d->kind == D_ZERO_PAGE ? "zeroed" : "randomised");
    break;
  }
  case D_COPY_PAGE: {
    size_t a = (size_t)ts_below(r, pages), b = (size_t)ts_below(r, pages);
    if (a == b)
      b = (b + 1) % pages;
    memcpy(*img + b * ps, *img + a * ps, ps);
    note_touch(g, d, b * ps, ps);
    snprintf(d->what, sizeof d->what, "page %zu copied over page %zu", a, b);
    break;
  }
  case D_TRUNCATE: {
    size_t to = (size_t)ts_below(r, *n);
    if (ts_chance(r, 1, 2))
      to -= to % ps;
    *n = to;
    d->meta_last_hit = 1; /* the newest commit may be unreachable */
    snprintf(d->what, sizeof d->what, "truncated to %zu bytes", to);
    break;
  }
  case D_APPEND: {
    size_t extra = (size_t)(1 + ts_below(r, 3)) * ps + (size_t)ts_below(r, 2);
    uint8_t *p = realloc(*img, *n + extra);
    if (!p)
      abort();
    for (size_t i = 0; i < extra; i++)
      p[*n + i] = (uint8_t)ts_next(r);
    *img = p;
    *n += extra;
    snprintf(d->what, sizeof d->what, "%zu garbage bytes appended", extra);
    break;
  }
  case D_RESEAL: {
    /* change 1..4 bytes of a non-overflow page, mostly in the header, slot
     * array and first entries, then fix its checksum */
    size_t pg = 0;
    unsigned type = 0;
    for (int tries = 0; tries < 20; tries++) {
      pg = 2 + (size_t)ts_below(r, pages > 2 ? pages - 2 : 1);
      if (pg >= pages)
        pg = pages - 1;
      type = (*img)[pg * ps + 4];
      if (type == 2 || type == 3 || type == 5)
        break;
    }
    int k = 1 + (int)ts_below(r, 4);
    for (int i = 0; i < k; i++) {
      size_t off;
      uint64_t x = ts_below(r, 10);
      if (x < 4)
        off = 4 + (size_t)ts_below(r, 28); /* header after the crc */
      else if (x < 7)
        off = 32 + (size_t)ts_below(r, 64); /* slot array */
      else
        off = (size_t)ts_below(r, ps);
      uint64_t v = ts_below(r, 4);
      (*img)[pg * ps + off] = v == 0   ? 0
                              : v == 1 ? 0xff
                                       : (uint8_t)((*img)[pg * ps + off] + 1);
    }
    ts_reseal_page(*img + pg * ps, ps, ps);
    d->forged = 1;
    snprintf(d->what, sizeof d->what,
             "%d bytes of page %zu (type %u) changed, "
             "checksum recomputed",
             k, pg, type);
    break;
  }
  default: { /* D_RESEAL_META: a field of the newest meta, resealed */
    static const size_t fields[] = {8,  16, 40, 44, 48, 52,
                                    56, 64, 72, 80, 88, 96};
    size_t f = fields[ts_below(r, sizeof fields / sizeof fields[0])];
    size_t base = (size_t)g->slot_last * ps;
    uint64_t v;
    uint64_t x = ts_below(r, 5);
    uint64_t old;
    memcpy(&old, *img + base + f, 8);
    v = x == 0   ? 0
        : x == 1 ? old + 1
        : x == 2 ? old - 1
        : x == 3 ? (uint64_t)pages + ts_below(r, 4)
                 : ts_next(r);
    size_t width = (f == 40 || f == 44 || f == 48 || f == 52) ? 4 : 8;
    memcpy(*img + base + f, &v, width);
    ts_reseal_page(*img + base, ps, ps);
    d->forged = 1;
    d->meta_last_hit = 1;
    snprintf(d->what, sizeof d->what,
             "meta field at %zu set to %llu, checksum recomputed", f,
             (unsigned long long)v);
    break;
  }
  }
}

/* ---- exercising a damaged file ----------------------------------------------
 */

typedef struct verdict {
  int opened, check_ok, saw_corrupt, identified;
} verdict;

static long g_trials, g_opened, g_corrupt, g_clean, g_fallback;

static int acceptable_failure(int rc, const damage *d) {
  if (rc == CAIRN_CORRUPT || rc == CAIRN_NOTADB)
    return 1;
  /* a forged meta may claim a newer format version */
  return d->forged && rc == CAIRN_VERSION;
}

/* A CORRUPT result names the page it blames (open-level NOTADB need not). */
static int message_ok(int rc) {
  const char *m = cairn_errmsg();
  if (rc == CAIRN_CORRUPT)
    return m &&
           (strstr(m, "page") || strstr(m, "truncated") || strstr(m, "meta"));
  return m && m[0];
}

static void problem_cb(void *ctx, const char *p) {
  (void)p;
  (*(int *)ctx)++;
}

/* The state the database may legitimately show: 1 = the last commit, 0 =
 * the one before (only when the newest meta was hit). Compare the whole
 * content with each allowed state. Returns the state index matched, -1 for
 * an engine error (acceptable if CORRUPT), -2 for wrong data. */
static int identify(const golden *g, cairn_txn *t, const damage *d, int *rc) {
  char why[512];
  int r1 = ts_db_compare(t, &g->st[1], why, sizeof why);
  *rc = 0;
  if (r1 == 0)
    return 1;
  if (r1 < 0) {
    *rc = r1;
    return -1;
  }
  if (d->meta_last_hit) {
    int r0 = ts_db_compare(t, &g->st[0], why, sizeof why);
    if (r0 == 0)
      return 0;
    if (r0 < 0) {
      *rc = r0;
      return -1;
    }
  }
  if (!d->forged)
    printf("    wrong data: %s\n", why);
  return -2;
}

static void exercise(const golden *g, const char *plat, const char *path,
                     const damage *d, int rdonly, ts_rng *r) {
  cairn_options o;
  cairn_db *db = NULL;
  cairn_txn *t = NULL;
  int rc;
  ts_options(&o, plat, 0);
  o.flags = rdonly ? CAIRN_OPEN_RDONLY : 0;
  g_trials++;
  rc = cairn_open(path, &o, &db);
  if (rc != CAIRN_OK) {
    if (!TCHECK(acceptable_failure(rc, d)))
      printf("    open returned %s (%s)\n", cairn_strerror(rc), cairn_errmsg());
    if (!TCHECK(message_ok(rc)))
      printf("    open: %s\n", cairn_errmsg());
    TCHECK(db == NULL);
    g_corrupt++;
    return;
  }
  g_opened++;
  int corrupt_seen = 0, state = -1;
  /* cf_list */
  if (TCHECK(db != NULL) && (rc = cairn_begin(db, CAIRN_TXN_RDONLY, &t)) == 0) {
    int ident_rc = 0;
    state = identify(g, t, d, &ident_rc);
    if (state == -1) {
      if (!TCHECK(acceptable_failure(ident_rc, d)))
        printf("    scan failed with %s (%s)\n", cairn_strerror(ident_rc),
               cairn_errmsg());
      corrupt_seen = 1;
    } else if (state == -2) {
      TCHECK(d->forged); /* wrong data only from a forged page */
    } else if (state == 0) {
      g_fallback++;
    }
    /* point gets: right value, right absence, or CORRUPT */
    const ts_state *want = &g->st[state >= 0 ? state : 1];
    for (int i = 0; i < 40; i++) {
      int ci = (int)ts_below(r, 3);
      int si = ts_state_find(want, CFNAMES[ci]);
      const ts_map *m = &want->map[si];
      char k[32];
      if (m->n && ts_chance(r, 3, 4)) {
        const ts_ent *e = &m->e[ts_below(r, m->n)];
        memcpy(k, e->key, e->klen);
        k[e->klen] = 0;
      } else {
        snprintf(k, sizeof k, "%s/%05d", CFNAMES[ci], (int)ts_below(r, 2100));
      }
      cairn_cf cf = CAIRN_DEFAULT_CF;
      if (ci) {
        rc = cairn_cf_open(t, CFNAMES[ci], 0, &cf);
        if (rc) {
          if (!d->forged && state != -2 && !TCHECK(acceptable_failure(rc, d)))
            printf("    cf_open(%s): %s\n", CFNAMES[ci], cairn_strerror(rc));
          if (rc == CAIRN_CORRUPT)
            corrupt_seen = 1;
          continue;
        }
      }
      cairn_slice v;
      rc = cairn_get(t, cf, ts_str(k), &v);
      if (rc == CAIRN_CORRUPT) {
        corrupt_seen = 1;
        TCHECK(message_ok(rc));
        continue;
      }
      if (d->forged || state == -2) {
        TCHECK(rc == CAIRN_OK || rc == CAIRN_NOTFOUND);
        continue;
      }
      /* the other allowed state may answer when the scan hit CORRUPT early */
      const ts_ent *e = ts_map_get(m, k, strlen(k));
      int okv =
          e ? rc == CAIRN_OK && ts_value_eq(v.data, v.size, e->vseed, e->vlen)
            : rc == CAIRN_NOTFOUND;
      if (!okv && state < 0 && d->meta_last_hit) {
        const ts_state *alt = &g->st[0];
        int ai = ts_state_find(alt, CFNAMES[ci]);
        const ts_ent *ae =
            ai >= 0 ? ts_map_get(&alt->map[ai], k, strlen(k)) : NULL;
        okv = ae ? rc == CAIRN_OK &&
                       ts_value_eq(v.data, v.size, ae->vseed, ae->vlen)
                 : rc == CAIRN_NOTFOUND;
      }
      if (!TCHECK(okv))
        printf("    get %s: %s, %zu bytes; wrong answer\n", k,
               cairn_strerror(rc), rc ? (size_t)0 : v.size);
    }
    /* reverse scans of every cf: ordered, or CORRUPT */
    for (int ci = 0; ci < 3; ci++) {
      cairn_cf cf = CAIRN_DEFAULT_CF;
      if (ci && cairn_cf_open(t, CFNAMES[ci], 0, &cf) != CAIRN_OK)
        continue;
      cairn_cursor *c = NULL;
      if (cairn_cursor_open(t, cf, &c) != CAIRN_OK)
        continue;
      uint8_t prev[CAIRN_MAX_KEY_SIZE];
      size_t pn = 0;
      int have = 0, steps = 0;
      for (rc = cairn_cursor_last(c); rc == CAIRN_OK && steps < 100000;
           rc = cairn_cursor_prev(c), steps++) {
        cairn_slice k;
        if ((rc = cairn_cursor_get(c, &k, NULL)) != CAIRN_OK)
          break;
        if (have && ts_keycmp(k.data, k.size, prev, pn) >= 0 && !d->forged) {
          TCHECK(!"reverse scan out of order");
          break;
        }
        if (k.size <= sizeof prev) {
          memcpy(prev, k.data, k.size);
          pn = k.size;
          have = 1;
        }
      }
      if (rc == CAIRN_CORRUPT)
        corrupt_seen = 1;
      else if (rc != CAIRN_NOTFOUND && rc != CAIRN_OK)
        TCHECK(acceptable_failure(rc, d));
      cairn_cursor_close(c);
    }
    /* stats */
    for (int ci = 0; ci < 3; ci++) {
      cairn_cf cf = CAIRN_DEFAULT_CF;
      cairn_cf_stat cs;
      if (ci && cairn_cf_open(t, CFNAMES[ci], 0, &cf) != CAIRN_OK)
        continue;
      rc = cairn_cf_stat_get(t, cf, &cs);
      if (rc == CAIRN_CORRUPT)
        corrupt_seen = 1;
      else if (rc)
        TCHECK(acceptable_failure(rc, d));
    }
    cairn_abort(t);
  } else if (db) {
    TCHECK(acceptable_failure(rc, d));
  }
  cairn_db_stat dst;
  rc = cairn_db_stat_get(db, &dst);
  if (rc == CAIRN_CORRUPT)
    corrupt_seen = 1;
  else if (!TCHECK(rc == CAIRN_OK || acceptable_failure(rc, d)))
    printf("    db_stat: %s\n", cairn_strerror(rc));
  /* the integrity check */
  int problems = 0;
  rc = cairn_check(db, problem_cb, &problems);
  if (rc == CAIRN_OK) {
    g_clean++;
    TCHECK(problems == 0);
    /* clean means every page of the commit verified: no CORRUPT anywhere,
     * and (unless forged) exactly the right data */
    if (!TCHECK(!corrupt_seen))
      printf("    cairn_check passed but a read reported corruption\n");
    if (!d->forged && !TCHECK(state >= 0))
      printf("    cairn_check passed but the data is not a committed state\n");
    if (d->forged) {
      /* keys in order in every cf */
      if (TCHECK_OK(cairn_begin(db, CAIRN_TXN_RDONLY, &t))) {
        uint64_t h, n;
        rc = ts_db_hash(t, &h, &n);
        if (!TCHECK(rc == CAIRN_OK))
          printf("    check passed, yet a scan says %d (%s)\n", rc,
                 rc == -1000 ? "keys out of order" : cairn_strerror(rc));
        cairn_abort(t);
      }
    }
    /* a clean file is writable (read-write handle) */
    if (!rdonly && !d->forged && state >= 0) {
      if (TCHECK_OK(cairn_begin(db, 0, &t))) {
        TCHECK_OK(cairn_put(t, 0, ts_str("zz-after"), ts_str("1"), 0));
        TCHECK_OK(cairn_commit(t));
      }
      TCHECK_OK(cairn_check(db, NULL, NULL));
      if (TCHECK_OK(cairn_begin(db, CAIRN_TXN_RDONLY, &t))) {
        ts_state s2;
        char why[512];
        ts_state_copy(&s2, &g->st[state]);
        /* the new key's value "1" is not a generated value: compare the rest
         * by deleting it from a copy and checking it separately */
        cairn_slice v;
        TCHECK(cairn_get(t, 0, ts_str("zz-after"), &v) == CAIRN_OK &&
               v.size == 1);
        cairn_abort(t);
        if (TCHECK_OK(cairn_begin(db, 0, &t))) {
          TCHECK_OK(cairn_del(t, 0, ts_str("zz-after")));
          if (!TCHECK(ts_db_compare(t, &s2, why, sizeof why) == 0))
            printf("    after a write: %s\n", why);
          cairn_abort(t);
        }
        ts_state_free(&s2);
      }
    }
  } else {
    if (!TCHECK(acceptable_failure(rc, d)))
      printf("    cairn_check returned %s\n", cairn_strerror(rc));
    if (rc == CAIRN_CORRUPT)
      TCHECK(problems > 0);
  }
  cairn_close(db);
}

/* ---- drivers
 * ------------------------------------------------------------------ */

#ifdef CAIRN_HAVE_UNIX_PLATFORM
static void on_alarm(int sig) {
  (void)sig;
  static const char msg[] = "\ntest_corrupt: HANG (no progress for 60 s)\n";
  ssize_t w = write(1, msg, sizeof msg - 1);
  (void)w;
  if (ts_ctx[0]) {
    w = write(1, ts_ctx, strlen(ts_ctx));
    (void)w;
  }
  _exit(3);
}
#define WATCHDOG() alarm(60)
#else
#define WATCHDOG() ((void)0)
#endif

static void trials_on(const golden *g, const char *plat, const char *path,
                      long ntrials, uint64_t seed0) {
  double t0 = ts_now_ms();
  int before = test_failed_count;
  for (long i = 0; i < ntrials; i++) {
    uint64_t seed = seed0 + (uint64_t)i;
    ts_rng r;
    damage d;
    size_t n = g->n;
    uint8_t *img = malloc(n);
    if (!img)
      abort();
    memcpy(img, g->img, n);
    ts_rng_seed(&r, seed * 0x2545f4914f6cdd1dull);
    do_damage(g, &img, &n, &r, &d);
    if (ts_chance(&r, 1, 5)) { /* sometimes two kinds at once */
      damage d2;
      do_damage(g, &img, &n, &r, &d2);
      d.meta_last_hit |= d2.meta_last_hit;
      d.forged |= d2.forged;
      size_t l = strlen(d.what), l2 = strlen(d2.what);
      if (l + 2 + l2 < sizeof d.what) {
        memcpy(d.what + l, "; ", 2);
        memcpy(d.what + l + 2, d2.what, l2 + 1);
      }
    }
    ts_set_ctx("%s, page %u, trial seed %llu: %s (%s)", plat, g->psize,
               (unsigned long long)seed, DNAMES[d.kind], d.what);
    WATCHDOG();
    double t1 = ts_now_ms();
    if (TCHECK_OK(ts_file_write(plat, path, img, n))) {
      exercise(g, plat, path, &d, (int)(seed & 1), &r);
      ts_file_remove(plat, path);
    }
    if (getenv("CAIRN_CORRUPT_SLOW") && ts_now_ms() - t1 > 200)
      printf("  slow trial (%.0f ms): %s\n", ts_now_ms() - t1, ts_ctx);
    free(img);
    if (test_failed_count - before > 30) {
      printf("  stopping %s trials after 30 failures\n", plat);
      break;
    }
  }
  printf("  %s, %u-byte pages: %ld trials in %.1f s\n", plat, g->psize, ntrials,
         (ts_now_ms() - t0) / 1000.0);
}

/* Damage in place with fault_file_poke: a database created on the fault
 * platform, poked, reopened. */
static void fault_poke_trials(long ntrials) {
  golden g;
  int before = test_failed_count;
  build_golden(&g, 4096, 99);
  for (long i = 0; i < ntrials && test_failed_count - before < 20; i++) {
    ts_rng r;
    damage d;
    memset(&d, 0, sizeof d);
    ts_rng_seed(&r, 5000 + (uint64_t)i);
    fault_reset();
    if (!TCHECK_OK(ts_file_write("fault", "poke.db", g.img, g.n)))
      break;
    size_t off;
    uint8_t buf[64];
    size_t len = 1 + (size_t)ts_below(&r, sizeof buf);
    if (ts_chance(&r, 1, 4)) { /* in a page header */
      size_t pg = (size_t)ts_below(&r, g.n / g.psize);
      off = pg * g.psize + (size_t)ts_below(&r, 32);
    } else {
      off = (size_t)ts_below(&r, g.n - len);
    }
    TCHECK_OK(fault_file_peek("poke.db", off, buf, len));
    for (size_t j = 0; j < len; j++)
      buf[j] ^= (uint8_t)(1 + ts_below(&r, 255));
    TCHECK_OK(fault_file_poke("poke.db", off, buf, len));
    note_touch(&g, &d, off, len);
    d.kind = D_FLIP;
    snprintf(d.what, sizeof d.what, "%zu bytes poked at %zu", len, off);
    ts_set_ctx("fault poke trial %ld: %s", i, d.what);
    WATCHDOG();
    exercise(&g, "fault", "poke.db", &d, (int)(i & 1), &r);
  }
  fault_reset();
  free_golden(&g);
}

int main(void) {
  double t0 = ts_now_ms();
  static const uint32_t ps[] = {4096, 16384, 65536};
  fault_platform_install();
#ifdef CAIRN_HAVE_UNIX_PLATFORM
  signal(SIGALRM, on_alarm);
#endif
  for (int i = 0; i < 3; i++) {
    golden g;
    cairn_platform_memory_reset();
    build_golden(&g, ps[i], 10 + (uint64_t)i);
    ts_set_ctx("golden %u", ps[i]);
    trials_on(&g, "memory", "damaged.db", ts_scaled(i == 0 ? 1500 : 700, 40),
              100000 * (uint64_t)(i + 1));
#ifdef CAIRN_HAVE_UNIX_PLATFORM
    {
      char *dir = ts_mkdtemp();
      char path[4200];
      snprintf(path, sizeof path, "%s/damaged.db", dir);
      trials_on(&g, "unix", path, ts_scaled(i == 0 ? 300 : 150, 10),
                900000 + 100000 * (uint64_t)i);
      ts_rmtree(dir);
      free(dir);
    }
#endif
    free_golden(&g);
  }
  fault_poke_trials(ts_scaled(300, 20));
#ifdef CAIRN_HAVE_UNIX_PLATFORM
  alarm(0);
#endif
  cairn_platform_memory_reset();
  printf("test_corrupt: %ld opens attempted: %ld opened, %ld refused as "
         "corrupt; cairn_check clean %ld times; fell back to the previous "
         "commit %ld times; %.1f s\n",
         g_trials, g_opened, g_corrupt, g_clean, g_fallback,
         (ts_now_ms() - t0) / 1000.0);
  return test_summary();
}
