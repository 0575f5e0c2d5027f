/*
 * test_check.c — cairn_check (core/check.c) finds each class of damage and
 * passes on sound databases.
 *
 * Damage is planted byte by byte in a database image on the memory
 * platform, following the documented format (core/FORMAT.md), and resealed
 * (checksum recomputed) wherever the class is not "bad checksum", so the
 * check's structural rules are what must catch it. One test per class:
 * bad checksum, key order within a page, separator violation, a page
 * reachable twice, a lost page, free-list corruption (a live page listed as
 * free; a page missing from the list), a damaged meta slot (checksum;
 * another database's id). Each must be reported, naming the page or slot,
 * with CAIRN_CORRUPT; several problems are all reported. Random workloads
 * (column families created and dropped, overflow values, deletes, lazy
 * commits, page sizes 4 KiB to 64 KiB, open snapshots, reopen) must pass.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn.h"
#include "platform.h"
#include "test_util.h"

#include "test_support.h"

#define MEM "memory"

/* ---- the format, read and written by hand -------------------------------- */

static uint64_t rd(const uint8_t *p, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; i--)
    v = v << 8 | p[i];
  return v;
}

static void wr(uint8_t *p, int n, uint64_t v) {
  for (int i = 0; i < n; i++, v >>= 8)
    p[i] = (uint8_t)v;
}

typedef struct image {
  uint8_t *b;
  size_t n;
  uint32_t ps;
  int slot; /* the meta slot in use (higher txnid) */
} image;

static uint8_t *page(image *im, uint64_t pg) { return im->b + pg * im->ps; }
static uint8_t *meta(image *im) { return page(im, (uint64_t)im->slot); }

static int load(const char *path, image *im) {
  memset(im, 0, sizeof *im);
  if (!CHECK_OK(ts_file_read(MEM, path, &im->b, &im->n)))
    return 0;
  im->ps = ts_image_page_size(im->b, im->n);
  if (!CHECK(im->ps != 0))
    return 0;
  im->slot = rd(page(im, 1) + 16, 8) > rd(page(im, 0) + 16, 8);
  return 1;
}

static void save(image *im, const char *path) {
  ts_file_remove(MEM, path);
  CHECK_OK(ts_file_write(MEM, path, im->b, im->n));
  free(im->b);
  im->b = NULL;
}

static void reseal(image *im, uint64_t pg) {
  ts_reseal_page(page(im, pg), im->n - pg * im->ps, im->ps);
}

static uint32_t count(const uint8_t *p) { return (uint32_t)rd(p + 24, 4); }
static uint32_t type(const uint8_t *p) { return (uint32_t)rd(p + 4, 2); }
static uint32_t slot_off(const uint8_t *p, uint32_t i) {
  return (uint32_t)rd(p + 32 + 2 * i, 2);
}
/* branch entry i: child page, key */
static uint64_t child(const uint8_t *p, uint32_t i) {
  return rd(p + slot_off(p, i), 8);
}
static uint8_t *bkey(uint8_t *p, uint32_t i, uint32_t *klen) {
  uint8_t *e = p + slot_off(p, i);
  *klen = (uint32_t)rd(e + 8, 2);
  return e + 10;
}

/* Root and depth of the column family called name (via the catalog, which
 * in these tests is one leaf). */
static int cf_root(image *im, const char *name, uint64_t *root,
                   uint32_t *depth) {
  uint64_t cat = rd(meta(im) + 64, 8);
  if (!cat || rd(meta(im) + 52, 4) != 1)
    return 0;
  uint8_t *p = page(im, cat);
  for (uint32_t i = 0; i < count(p); i++) {
    uint8_t *e = p + slot_off(p, i);
    uint32_t kl = (uint32_t)rd(e, 2);
    if (kl == strlen(name) && memcmp(e + 8, name, kl) == 0) {
      uint8_t *rec = e + 8 + kl;
      *depth = (uint32_t)rd(rec + 4, 4);
      *root = rd(rec + 8, 8);
      return 1;
    }
  }
  return 0;
}

/* ---- the database every damage test starts from -------------------------- */

#define NKEYS 2500

static void build_template(void) {
  cairn_platform_memory_reset();
  cairn_db *db;
  cairn_options o;
  ts_options(&o, MEM, 0);
  if (!CHECK_OK(cairn_open("template.db", &o, &db)))
    return;
  cairn_txn *w;
  cairn_cf cf;
  char k[32], v[100];
  CHECK_OK(cairn_begin(db, 0, &w));
  CHECK_OK(cairn_cf_open(w, "data", CAIRN_CF_CREATE, &cf));
  for (int i = 0; i < NKEYS; i++) {
    snprintf(k, sizeof k, "key%06d", i);
    ts_fill(v, sizeof v, (uint64_t)i);
    CHECK_OK(cairn_put(w, cf, ts_str(k), ts_sl(v, sizeof v), 0));
  }
  CHECK_OK(cairn_commit(w));
  /* churn: the free list gets pages */
  for (int r = 0; r < 4; r++) {
    CHECK_OK(cairn_begin(db, 0, &w));
    for (int i = r; i < NKEYS; i += 7) {
      snprintf(k, sizeof k, "key%06d", i);
      ts_fill(v, sizeof v, (uint64_t)(i + r * 7919));
      CHECK_OK(cairn_put(w, cf, ts_str(k), ts_sl(v, 40), 0));
    }
    CHECK_OK(cairn_commit(w));
    /* the checkpoint copies the changed leaves: the old ones become free */
    CHECK_OK(cairn_checkpoint(db));
  }
  CHECK_OK(cairn_check(db, NULL, NULL));
  CHECK_OK(cairn_close(db));
}

typedef struct reports {
  int n;
  char all[8192];
} reports;

static void collect(void *ctx, const char *problem) {
  reports *r = ctx;
  r->n++;
  size_t used = strlen(r->all);
  snprintf(r->all + used, sizeof r->all - used, "%s\n", problem);
}

/* Run the check on the damaged image at path: CAIRN_CORRUPT, and a report
 * containing every word in need. Returns the number of problems. */
static int expect_found(const char *what, const char *path,
                        const char *const *need) {
  ts_set_ctx("damage class: %s", what);
  cairn_db *db;
  cairn_options o;
  ts_options(&o, MEM, 0);
  o.flags = CAIRN_OPEN_RDONLY;
  if (!TCHECK_OK(cairn_open(path, &o, &db)))
    return 0;
  reports r;
  memset(&r, 0, sizeof r);
  TCHECK_RC(cairn_check(db, collect, &r), CAIRN_CORRUPT);
  TCHECK(r.n >= 1);
  /* the status message counts the problems and repeats the first */
  char want[32];
  snprintf(want, sizeof want, "%d problem(s)", r.n);
  TCHECK(strstr(cairn_errmsg(), want) != NULL);
  for (const char *const *w = need; *w; w++)
    if (!TCHECK(strstr(r.all, *w) != NULL))
      printf("  report lacks \"%s\":\n%s", *w, r.all);
  printf("%s: %d problem(s): %s", what, r.n, r.all);
  cairn_close(db);
  return r.n;
}

#define NEED(...)                                                              \
  (const char *const[]) { __VA_ARGS__, NULL }

/* Root (a branch page) of "data" and its first leaf children. */
static int data_tree(image *im, uint64_t *root, uint8_t **rp) {
  uint32_t depth = 0;
  if (!CHECK(cf_root(im, "data", root, &depth)) || !CHECK(depth == 2))
    return 0;
  *rp = page(im, *root);
  return CHECK(type(*rp) == 2 && count(*rp) >= 4);
}

static void test_bad_checksum(void) {
  image im;
  uint64_t root;
  uint8_t *rp;
  if (!load("template.db", &im) || !data_tree(&im, &root, &rp))
    return;
  uint64_t leaf = child(rp, 2);
  page(&im, leaf)[im.ps - 10] ^= 1; /* inside the entry area, not resealed */
  save(&im, "d.db");
  char pg[32];
  snprintf(pg, sizeof pg, "page %llu", (unsigned long long)leaf);
  /* the leaf's entries are missing from the count as well */
  int n = expect_found("bad checksum", "d.db",
                       NEED(pg, "checksum", "entries found"));
  TCHECK(n == 2);
}

static void test_key_order(void) {
  image im;
  uint64_t root;
  uint8_t *rp;
  if (!load("template.db", &im) || !data_tree(&im, &root, &rp))
    return;
  uint64_t leaf = child(rp, 1);
  uint8_t *p = page(&im, leaf);
  TCHECK(type(p) == 3 && count(p) >= 3);
  /* swap the slots of entries 1 and 2: both keys stay in the page's range */
  uint8_t tmp[2];
  memcpy(tmp, p + 32 + 2, 2);
  memcpy(p + 32 + 2, p + 32 + 4, 2);
  memcpy(p + 32 + 4, tmp, 2);
  reseal(&im, leaf);
  save(&im, "d.db");
  char pg[48];
  snprintf(pg, sizeof pg, "page %llu: key 2 out of order",
           (unsigned long long)leaf);
  int n = expect_found("key order within a page", "d.db", NEED(pg));
  TCHECK(n == 1);
}

static void test_separator(void) {
  image im;
  uint64_t root;
  uint8_t *rp;
  if (!load("template.db", &im) || !data_tree(&im, &root, &rp))
    return;
  /* raise separator 2 above the first key of child 2 (but below the next
   * separator): that key now lies below its parent's separator */
  uint32_t kl;
  uint8_t *k = bkey(rp, 2, &kl);
  TCHECK(kl == 9);
  k[kl - 1]++;
  uint64_t c2 = child(rp, 2);
  reseal(&im, root);
  save(&im, "d.db");
  char pg[64];
  snprintf(pg, sizeof pg, "page %llu: key 0 below its parent's separator",
           (unsigned long long)c2);
  int n = expect_found("separator violation", "d.db", NEED(pg));
  TCHECK(n == 1);
}

static void test_reachable_twice(void) {
  image im;
  uint64_t root;
  uint8_t *rp;
  if (!load("template.db", &im) || !data_tree(&im, &root, &rp))
    return;
  uint64_t c1 = child(rp, 1), c2 = child(rp, 2);
  wr(rp + slot_off(rp, 2), 8, c1); /* child 2 := child 1 */
  reseal(&im, root);
  save(&im, "d.db");
  char twice[64], lost[64];
  snprintf(twice, sizeof twice, "page %llu: used twice",
           (unsigned long long)c1);
  snprintf(lost, sizeof lost, "first: page %llu)", (unsigned long long)c2);
  /* also: child 2's old page is lost, and its keys are out of range */
  expect_found("page reachable twice", "d.db", NEED(twice, "lost", lost));
}

static void test_lost_page(void) {
  image im;
  if (!load("template.db", &im))
    return;
  /* one more page in the file and in the meta's page count, owned by
   * nobody */
  uint64_t pages = rd(meta(&im) + 56, 8);
  TCHECK(pages * im.ps == im.n);
  uint8_t *b = realloc(im.b, im.n + im.ps);
  if (!CHECK(b))
    return;
  im.b = b;
  memset(im.b + im.n, 0, im.ps);
  im.n += im.ps;
  wr(meta(&im) + 56, 8, pages + 1);
  reseal(&im, (uint64_t)im.slot);
  save(&im, "d.db");
  char lost[80];
  snprintf(lost, sizeof lost,
           "1 page(s) lost: neither reachable nor free (first: page %llu)",
           (unsigned long long)pages);
  int n = expect_found("lost page", "d.db", NEED(lost));
  TCHECK(n == 1);
}

static void test_freelist(void) {
  image im;
  uint64_t root;
  uint8_t *rp;
  if (!load("template.db", &im) || !data_tree(&im, &root, &rp))
    return;
  uint64_t head = rd(meta(&im) + 80, 8);
  if (!CHECK(head != 0))
    return;
  uint8_t *fp = page(&im, head);
  TCHECK(type(fp) == 5 && count(fp) >= 2);
  /* (a) a live leaf listed as free */
  uint64_t live = child(rp, 0), was = rd(fp + 40, 8);
  wr(fp + 40, 8, live);
  reseal(&im, head);
  save(&im, "d.db");
  char twice[64], lost[64];
  snprintf(twice, sizeof twice, "page %llu: used twice (as tree and as free)",
           (unsigned long long)live);
  snprintf(lost, sizeof lost,
           "lost: neither reachable nor free (first: page "
           "%llu)",
           (unsigned long long)was);
  int n =
      expect_found("free list names a live page", "d.db", NEED(twice, lost));
  TCHECK(n == 2);

  /* (b) the list drops its last id: count disagrees with the meta and the
   * page is lost */
  if (!load("template.db", &im))
    return;
  fp = page(&im, head);
  uint32_t c = count(fp);
  uint64_t last = rd(fp + 40 + 8 * (c - 1), 8);
  wr(fp + 24, 4, c - 1);
  uint64_t recorded = rd(meta(&im) + 88, 8);
  reseal(&im, head);
  save(&im, "d.db");
  char holds[96];
  snprintf(holds, sizeof holds, "freelist holds %llu pages, meta records %llu",
           (unsigned long long)(recorded - 1), (unsigned long long)recorded);
  snprintf(lost, sizeof lost, "(first: page %llu)", (unsigned long long)last);
  n = expect_found("free list lost an id", "d.db", NEED(holds, lost));
  TCHECK(n == 2);

  /* (c) the list names a page beyond the end */
  if (!load("template.db", &im))
    return;
  fp = page(&im, head);
  wr(fp + 48, 8, 1u << 30);
  reseal(&im, head);
  save(&im, "d.db");
  char range[64];
  snprintf(range, sizeof range, "freelist page %llu names page %llu",
           (unsigned long long)head, (unsigned long long)(1u << 30));
  expect_found("free list out of range", "d.db", NEED(range, "out of range"));
}

static void test_meta(void) {
  image im;
  if (!load("template.db", &im))
    return;
  int other = !im.slot;
  page(&im, (uint64_t)other)[200] ^= 1; /* the slot open does not use */
  save(&im, "d.db");
  char what[64];
  snprintf(what, sizeof what, "meta page %d: checksum mismatch", other);
  int n = expect_found("damaged meta slot (checksum)", "d.db", NEED(what));
  TCHECK(n == 1);

  /* a sound-looking slot from another database */
  if (!load("template.db", &im))
    return;
  page(&im, (uint64_t)other)[104] ^= 0x5a;
  reseal(&im, (uint64_t)other);
  save(&im, "d.db");
  snprintf(what, sizeof what, "meta page %d: another database id", other);
  n = expect_found("damaged meta slot (database id)", "d.db", NEED(what));
  TCHECK(n == 1);

  /* the slot in use damaged: open falls back to the older commit; the
   * check still reports the damaged slot */
  if (!load("template.db", &im))
    return;
  page(&im, (uint64_t)im.slot)[100] ^= 1;
  save(&im, "d.db");
  snprintf(what, sizeof what, "meta page %d: checksum mismatch", !other);
  expect_found("damaged meta slot (the newer one)", "d.db", NEED(what));
}

static void test_many_problems(void) {
  image im;
  uint64_t root;
  uint8_t *rp;
  if (!load("template.db", &im) || !data_tree(&im, &root, &rp))
    return;
  /* three classes at once: every one is reported, not just the first
   * (plus the entry count the unreadable leaf spoils) */
  page(&im, child(rp, 3))[im.ps - 10] ^= 1;
  uint8_t *p = page(&im, child(rp, 1));
  uint8_t tmp[2];
  memcpy(tmp, p + 32 + 2, 2);
  memcpy(p + 32 + 2, p + 32 + 4, 2);
  memcpy(p + 32 + 4, tmp, 2);
  reseal(&im, child(rp, 1));
  page(&im, (uint64_t)!im.slot)[200] ^= 1;
  save(&im, "d.db");
  int n = expect_found("three problems", "d.db",
                       NEED("checksum", "out of order", "meta page"));
  TCHECK(n == 4);
}

/* ---- sound databases ------------------------------------------------------
 */

static void random_workload(const char *plat, const char *path, uint64_t seed,
                            uint32_t ps, int lazy) {
  ts_set_ctx("random workload seed %llu page size %u lazy %d on %s",
             (unsigned long long)seed, (unsigned)ps, lazy, plat);
  ts_rng r;
  ts_rng_seed(&r, seed);
  cairn_options o;
  ts_options(&o, plat, ps);
  if (lazy)
    o.durability = CAIRN_DURABILITY_LAZY;
  cairn_db *db;
  if (!TCHECK_OK(cairn_open(path, &o, &db)))
    return;
  static const char *names[] = {"default", "a", "b", "c"};
  long rounds = ts_scaled(40, 8);
  cairn_txn *snap = NULL;
  for (long i = 0; i < rounds; i++) {
    cairn_txn *w;
    if (!TCHECK_OK(cairn_begin(db, 0, &w)))
      break;
    int nops = 1 + (int)ts_below(&r, 150);
    for (int k = 0; k < nops; k++) {
      const char *name = names[ts_below(&r, 4)];
      cairn_cf cf;
      int rc = cairn_cf_open(w, name, CAIRN_CF_CREATE, &cf);
      if (!TCHECK_OK(rc))
        break;
      char key[24];
      snprintf(key, sizeof key, "%llx", (unsigned long long)ts_below(&r, 4000));
      unsigned x = (unsigned)ts_below(&r, 100);
      if (x < 2 && cf != CAIRN_DEFAULT_CF) {
        TCHECK_OK(cairn_cf_drop(w, cf));
      } else if (x < 35) {
        rc = cairn_del(w, cf, ts_str(key));
        TCHECK(rc == CAIRN_OK || rc == CAIRN_NOTFOUND);
      } else {
        size_t vlen = ts_chance(&r, 1, 25)
                          ? (size_t)(ps / 3 + ts_below(&r, 3 * (uint64_t)ps))
                          : (size_t)ts_below(&r, 300);
        void *v = ts_value_new(vlen, ts_next(&r));
        TCHECK_OK(cairn_put(w, cf, ts_str(key), ts_sl(v, vlen), 0));
        free(v);
      }
    }
    if (ts_chance(&r, 1, 10)) {
      cairn_abort(w);
    } else {
      TCHECK_OK(cairn_commit(w));
    }
    /* now and then hold a snapshot across commits (pinned free pages) */
    if (!snap && ts_chance(&r, 1, 6))
      TCHECK_OK(cairn_begin(db, CAIRN_TXN_RDONLY, &snap));
    else if (snap && ts_chance(&r, 1, 3)) {
      cairn_abort(snap);
      snap = NULL;
    }
    if (i % 5 == 4 || i + 1 == rounds) {
      reports rep;
      memset(&rep, 0, sizeof rep);
      if (!TCHECK_OK(cairn_check(db, collect, &rep)))
        printf("%s", rep.all);
      TCHECK(rep.n == 0);
    }
    if (ts_chance(&r, 1, 15)) { /* reopen */
      cairn_abort(snap);
      snap = NULL;
      TCHECK_OK(cairn_close(db));
      if (!TCHECK_OK(cairn_open(path, &o, &db)))
        return;
      TCHECK_OK(cairn_check(db, NULL, NULL));
    }
  }
  cairn_abort(snap);
  TCHECK_OK(cairn_close(db));
  o.flags = CAIRN_OPEN_RDONLY;
  if (TCHECK_OK(cairn_open(path, &o, &db))) {
    TCHECK_OK(cairn_check(db, NULL, NULL));
    cairn_close(db);
  }
}

static void test_sound(void) {
  static const uint32_t sizes[] = {4096, 8192, 16384, 65536};
  long seeds = ts_scaled(12, 4);
  for (long s = 0; s < seeds; s++) {
    cairn_platform_memory_reset();
    random_workload(MEM, "sound.db", (uint64_t)s + 1, sizes[s % 4], s % 3 == 2);
  }
#ifdef CAIRN_HAVE_UNIX_PLATFORM
  char *dir = ts_mkdtemp();
  if (CHECK(dir != NULL)) {
    char path[512];
    snprintf(path, sizeof path, "%s/sound.db", dir);
    random_workload("unix", path, 99, 4096, 1);
    ts_rmtree(dir);
    free(dir);
  }
#endif
}

/* A catalog record that counts fewer entries than the tree holds: the
 * check reports it, and counting entries over the write-ahead log's
 * overlay refuses to go below zero with CAIRN_CORRUPT and a message. */
static void test_entry_count(void) {
  image im;
  if (!load("template.db", &im))
    return;
  uint64_t cat = rd(meta(&im) + 64, 8);
  uint8_t *p = page(&im, cat);
  int done = 0;
  for (uint32_t i = 0; i < count(p) && !done; i++) {
    uint8_t *e = p + slot_off(p, i);
    uint32_t kl = (uint32_t)rd(e, 2);
    if (kl == 4 && memcmp(e + 8, "data", 4) == 0) {
      wr(e + 8 + kl + 16, 8, 0); /* the record's entries */
      done = 1;
    }
  }
  if (!CHECK(done))
    return;
  reseal(&im, cat);
  save(&im, "e.db");
  expect_found("entry count", "e.db", NEED("entries found"));
  ts_set_ctx("entry count below the overlay's deletions");
  cairn_db *db;
  cairn_options o;
  ts_options(&o, MEM, 0);
  if (!TCHECK_OK(cairn_open("e.db", &o, &db)))
    return;
  cairn_txn *w;
  cairn_cf cf;
  cairn_cf_stat cs;
  if (TCHECK_OK(cairn_begin(db, 0, &w))) {
    TCHECK_OK(cairn_cf_open(w, "data", 0, &cf));
    TCHECK_OK(cairn_del(w, cf, ts_str("key000000")));
    TCHECK_RC(cairn_cf_stat_get(w, cf, &cs), CAIRN_CORRUPT);
    TCHECK(strstr(cairn_errmsg(), "deletes more entries") != NULL);
    cairn_abort(w);
  }
  cairn_close(db);
}

int main(void) {
  build_template();
  test_bad_checksum();
  test_key_order();
  test_separator();
  test_reachable_twice();
  test_lost_page();
  test_freelist();
  test_meta();
  test_many_problems();
  test_entry_count();
  test_sound();
  cairn_platform_memory_reset();
  return test_summary();
}
