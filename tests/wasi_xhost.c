/*
 * wasi_xhost.c — one file format across hosts: databases written by one build
 * (native Unix or wasm32-wasi) are read, checked and extended by the other.
 *
 *   wasi_xhost write DIR    create DIR/{normal,crash,p16k,p64k}.db
 *   wasi_xhost verify DIR   check every database in DIR against the model
 *   wasi_xhost              both, in the current directory (one host)
 *
 * The content of every database is a deterministic workload (seeded PRNG, the
 * reference model of tests/test_support.h), so the verifier rebuilds what the
 * writer committed on its own instead of trusting anything the writer says:
 *   normal.db  4 KiB pages: hash-like and ordered keys, overwrites, deletes,
 *              a second column family, values spanning overflow pages;
 *   p16k.db    the same kind of content with 16 KiB pages;
 *   p64k.db    with 64 KiB pages;
 *   crash.db   left by a simulated power loss in the middle of a commit
 *              (the "fault" platform drops or tears unsynced writes), its
 *              bytes then copied to a real file; crash.db.expect holds the
 *              range [acknowledged, attempted] of commits it may hold.
 * verify opens each database read-only on the host's default platform
 * ("unix" or "wasi"), compares every entry with the model (for crash.db: the
 * state after some commit in the range), runs cairn_check, checks the page
 * size in the file header, and then extends a copy with one more commit
 * (with a 16-page cache, so the cached pager evicts) and reads it back.
 * ctest (the `wasi` preset) runs write natively and verify under WASI, and
 * the reverse (cmake/wasi_targets.cmake).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn.h"
#include "fault_platform.h"
#include "platform.h"
#include "test_util.h"

#include "test_support.h"

typedef struct spec {
  const char *name;
  uint32_t psize;
  int commits;
  int puts; /* per commit */
  uint64_t seed;
} spec;

static const spec SPECS[] = {
    {"normal", 4096, 6, 400, 11},
    {"p16k", 16384, 5, 400, 12},
    {"p64k", 65536, 4, 300, 13},
};
static const spec CRASH = {"crash", 4096, 7, 250, 14};

static const char *host_platform(void) {
  cairn_platform *p = cairn_platform_find(NULL);
  return p ? p->name : "?";
}

/* ---- the workload ---------------------------------------------------------
 */

/* Apply commit j (1-based) of spec s to the model and, when t is not NULL,
 * to the database in the same order. The PRNG is seeded per commit, so any
 * commit can be replayed from the model alone. Returns the first engine
 * error. */
static int apply_commit(const spec *s, int j, ts_state *m, cairn_txn *t) {
  ts_rng r;
  ts_rng_seed(&r, s->seed * 1000003u + (uint64_t)j);
  int rc = CAIRN_OK;
  cairn_cf cfs[2] = {CAIRN_DEFAULT_CF, 0};
  if (ts_state_find(m, "aux") < 0)
    ts_state_add(m, "aux");
  if (t)
    rc = cairn_cf_open(t, "aux", CAIRN_CF_CREATE, &cfs[1]);
  for (int i = 0; !rc && i < s->puts; i++) {
    int c = ts_chance(&r, 1, 5) ? 1 : 0;
    int mi = ts_state_find(m, c ? "aux" : "default");
    ts_map *map = &m->map[mi];
    uint8_t key[40];
    size_t klen;
    if (map->n && ts_chance(&r, 3, 10)) { /* overwrite an existing key */
      const ts_ent *e = &map->e[ts_below(&r, map->n)];
      klen = e->klen;
      memcpy(key, e->key, klen);
    } else if (ts_chance(&r, 1, 4)) { /* ordered: 8-byte big-endian */
      uint64_t h = ((uint64_t)j << 32) | (uint64_t)i;
      for (int b = 0; b < 8; b++)
        key[b] = (uint8_t)(h >> (56 - 8 * b));
      klen = 8;
    } else { /* hash-like: 32 random bytes */
      for (int b = 0; b < 32; b += 8) {
        uint64_t v = ts_next(&r);
        memcpy(key + b, &v, 8);
      }
      klen = 32;
    }
    size_t vlen = (size_t)ts_below(&r, 200);
    if (ts_chance(&r, 1, 40)) /* spans overflow pages */
      vlen = 2 * (size_t)s->psize + (size_t)ts_below(&r, s->psize);
    uint64_t vseed = ts_next(&r);
    ts_map_put(map, key, klen, vseed, vlen);
    if (t) {
      void *v = ts_value_new(vlen, vseed);
      rc = cairn_put(t, cfs[c], ts_sl(key, klen), ts_sl(v, vlen), 0);
      free(v);
    }
  }
  /* From the third commit on, delete a tenth as many keys as were put. */
  for (int i = 0; !rc && j >= 3 && i < s->puts / 10; i++) {
    int mi = ts_state_find(m, "default");
    ts_map *map = &m->map[mi];
    if (!map->n)
      break;
    const ts_ent *e = &map->e[ts_below(&r, map->n)];
    uint8_t key[CAIRN_MAX_KEY_SIZE];
    size_t klen = e->klen;
    memcpy(key, e->key, klen);
    ts_map_del(map, key, klen);
    if (t)
      rc = cairn_del(t, CAIRN_DEFAULT_CF, ts_sl(key, klen));
  }
  return rc;
}

static void path_of(char *out, size_t n, const char *dir, const char *name,
                    const char *ext) {
  snprintf(out, n, "%s/%s%s", dir, name, ext);
}

/* A database is its file and its write-ahead log ("<path>-wal"): copy
 * both (a missing log is removed at the destination). */
static int copy_db(const char *from_plat, const char *from, const char *to_plat,
                   const char *to) {
  char fl[600], tl[600];
  snprintf(fl, sizeof fl, "%s-wal", from);
  snprintf(tl, sizeof tl, "%s-wal", to);
  uint8_t *img = NULL;
  size_t n = 0;
  int rc = ts_file_read(from_plat, from, &img, &n);
  if (!rc) {
    ts_file_remove(to_plat, to);
    rc = ts_file_write(to_plat, to, img, n);
  }
  free(img);
  img = NULL;
  ts_file_remove(to_plat, tl);
  if (!rc && ts_file_read(from_plat, fl, &img, &n) == CAIRN_OK)
    rc = ts_file_write(to_plat, tl, img, n);
  free(img);
  return rc;
}

/* ---- write -----------------------------------------------------------------
 */

static void write_normal(const char *dir, const spec *s) {
  char path[512];
  path_of(path, sizeof path, dir, s->name, ".db");
  ts_file_remove(NULL, path);
  cairn_options o;
  ts_options(&o, NULL, s->psize);
  cairn_db *db = NULL;
  if (!CHECK_OK(cairn_open(path, &o, &db)))
    return;
  ts_state m;
  ts_state_init(&m);
  for (int j = 1; j <= s->commits; j++) {
    cairn_txn *t = NULL;
    if (!CHECK_OK(cairn_begin(db, 0, &t)))
      break;
    ts_set_ctx("write %s commit %d", path, j);
    if (!TCHECK_OK(apply_commit(s, j, &m, t))) {
      cairn_abort(t);
      break;
    }
    TCHECK_OK(cairn_commit(t));
  }
  TCHECK_OK(cairn_check(db, NULL, NULL));
  TCHECK_OK(cairn_close(db));
  printf("  wrote %s (%u-byte pages, %d commits, %zu entries) on %s\n", path,
         s->psize, s->commits, ts_state_entries(&m), host_platform());
  ts_state_free(&m);
}

/* Run the crash workload on the fault platform with power failing at
 * boundary operation k of commit `from`; copy what the crash left to a real
 * file and record the range of commits it may hold. */
static void write_crash(const char *dir, const spec *s) {
  const int from = 5; /* commits 1..4 complete, power fails in 5 */
  const long k = 1;   /* boundary ops into commit 5: its log sync (the log
                       * record written but not yet durable) */
  fault_platform_install();
  fault_reset();
  cairn_options o;
  ts_options(&o, "fault", s->psize);
  cairn_db *db = NULL;
  if (!CHECK_OK(cairn_open("crash.db", &o, &db)))
    return;
  ts_state m;
  ts_state_init(&m);
  int acked = 0, attempted = 0;
  for (int j = 1; j <= s->commits; j++) {
    if (j == from) {
      fault_clear_injection();
      fault_set_crash_at(k);
    }
    cairn_txn *t = NULL;
    attempted = j;
    if (cairn_begin(db, 0, &t) != CAIRN_OK)
      break;
    if (apply_commit(s, j, &m, t) != CAIRN_OK) {
      cairn_abort(t);
      break;
    }
    if (cairn_commit(t) != CAIRN_OK)
      break;
    acked = j;
  }
  CHECK(fault_crashed());
  CHECK(acked >= from - 1 && acked < s->commits);
  cairn_close(db); /* fails: power is off; frees the handle */
  fault_crash(s->seed);
  fault_clear_injection();
  char path[512];
  path_of(path, sizeof path, dir, s->name, ".db");
  CHECK_OK(copy_db("fault", "crash.db", NULL, path));
  long long n = fault_file_size("crash.db") + fault_file_size("crash.db-wal");
  char expect[64];
  int len = snprintf(expect, sizeof expect, "%d %d\n", acked, attempted);
  path_of(path, sizeof path, dir, s->name, ".db.expect");
  CHECK_OK(ts_file_write(NULL, path, expect, (size_t)len));
  printf("  wrote %s/%s.db (%lld bytes with its log left by power loss in "
         "commit %d of %d; acknowledged %d) on %s\n",
         dir, s->name, n, from, s->commits, acked, host_platform());
  ts_state_free(&m);
  fault_reset();
}

static void write_all(const char *dir) {
  for (size_t i = 0; i < sizeof SPECS / sizeof *SPECS; i++)
    write_normal(dir, &SPECS[i]);
  write_crash(dir, &CRASH);
}

/* ---- verify ----------------------------------------------------------------
 */

/* Extend a copy of the database with commit `next` and read it back. */
static void extend_copy(const char *path, const spec *s, ts_state *m,
                        int next) {
  char copy[600];
  snprintf(copy, sizeof copy, "%s.copy", path);
  if (!TCHECK_OK(copy_db(NULL, path, NULL, copy)))
    return;
  cairn_options o;
  ts_options(&o, NULL, 0);
  o.flags = 0; /* must exist */
  o.cache_pages = 16;
  cairn_db *db = NULL;
  if (!TCHECK_OK(cairn_open(copy, &o, &db)))
    return;
  cairn_txn *t = NULL;
  if (TCHECK_OK(cairn_begin(db, 0, &t))) {
    if (TCHECK_OK(apply_commit(s, next, m, t)))
      TCHECK_OK(cairn_commit(t));
    else
      cairn_abort(t);
  }
  TCHECK_OK(cairn_close(db));
  db = NULL;
  if (TCHECK_OK(cairn_open(copy, &o, &db))) {
    char why[300] = "";
    if (TCHECK_OK(cairn_begin(db, CAIRN_TXN_RDONLY, &t))) {
      int c = ts_db_compare(t, m, why, sizeof why);
      if (!TCHECK(c == 0))
        printf("    after extending on %s: %s\n", host_platform(), why);
      cairn_abort(t);
    }
    TCHECK_OK(cairn_check(db, NULL, NULL));
    TCHECK_OK(cairn_close(db));
  }
  TCHECK_OK(ts_file_remove(NULL, copy));
  char copylog[610];
  snprintf(copylog, sizeof copylog, "%s-wal", copy);
  ts_file_remove(NULL, copylog);
}

static void verify_one(const char *dir, const spec *s, int is_crash) {
  char path[512];
  path_of(path, sizeof path, dir, s->name, ".db");
  ts_set_ctx("verify %s on %s", path, host_platform());
  int lo = s->commits, hi = s->commits;
  if (is_crash) {
    char ep[520];
    uint8_t *txt = NULL;
    size_t n = 0;
    path_of(ep, sizeof ep, dir, s->name, ".db.expect");
    if (!TCHECK_OK(ts_file_read(NULL, ep, &txt, &n)))
      return;
    char buf[64] = "";
    memcpy(buf, txt, n < sizeof buf - 1 ? n : sizeof buf - 1);
    free(txt);
    if (!TCHECK(sscanf(buf, "%d %d", &lo, &hi) == 2 && 0 <= lo && lo <= hi &&
                hi <= s->commits))
      return;
  }
  /* The header names the page size the writer chose. */
  uint8_t *img = NULL;
  size_t n = 0;
  if (TCHECK_OK(ts_file_read(NULL, path, &img, &n)))
    TCHECK(ts_image_page_size(img, n) == s->psize);
  free(img);

  cairn_options o;
  ts_options(&o, NULL, 0);
  o.flags = CAIRN_OPEN_RDONLY;
  cairn_db *db = NULL;
  if (!TCHECK_OK(cairn_open(path, &o, &db)))
    return;
  cairn_txn *t = NULL;
  int found = -1;
  ts_state m;
  ts_state_init(&m); /* the state after commit 0: empty */
  if (TCHECK_OK(cairn_begin(db, CAIRN_TXN_RDONLY, &t))) {
    uint64_t h = 0, entries = 0;
    TCHECK_OK(ts_db_hash(t, &h, &entries));
    if (lo == 0 && ts_state_hash(&m) == h)
      found = 0;
    for (int j = 1; found < 0 && j <= hi; j++) {
      apply_commit(s, j, &m, NULL);
      if (j >= lo && ts_state_hash(&m) == h)
        found = j;
    }
    if (TCHECK(found >= 0)) {
      char why[300] = "";
      int c = ts_db_compare(t, &m, why, sizeof why);
      if (!TCHECK(c == 0))
        printf("    %s: %s\n", path, why);
    } else {
      printf("    %s holds none of the states after commits %d..%d "
             "(%llu entries)\n",
             path, lo, hi, (unsigned long long)entries);
    }
    cairn_abort(t);
  }
  TCHECK_OK(cairn_check(db, NULL, NULL));
  TCHECK_OK(cairn_close(db));
  if (found >= 0) {
    printf("  verified %s on %s: state after commit %d (allowed %d..%d), "
           "%zu entries, check ok\n",
           path, host_platform(), found, lo, hi, ts_state_entries(&m));
    extend_copy(path, s, &m, found + 1);
  }
  ts_state_free(&m);
}

static void verify_all(const char *dir) {
  for (size_t i = 0; i < sizeof SPECS / sizeof *SPECS; i++)
    verify_one(dir, &SPECS[i], 0);
  verify_one(dir, &CRASH, 1);
}

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "write") == 0) {
    write_all(argv[2]);
  } else if (argc == 3 && strcmp(argv[1], "verify") == 0) {
    verify_all(argv[2]);
  } else if (argc == 1) {
    write_all(".");
    verify_all(".");
  } else {
    fprintf(stderr, "usage: %s [write DIR | verify DIR]\n", argv[0]);
    return 2;
  }
  return test_summary();
}
