/*
 * fuzz_open.c — fuzz target for the open path and the page decoder.
 *
 * Proves that any bytes opened as a database are handled safely: the input
 * becomes a file on the memory platform, which is opened read-only and
 * read-write (page size auto-detected from the file); if it opens, every
 * column family listed is scanned forward and backward, a few keys are
 * looked up and sought, cf and db stats are taken, cairn_check runs, and
 * (read-write, when check calls the file clean) a commit is made. Under
 * ASan/UBSan nothing may crash, leak or hang, and results must agree with
 * each other: when cairn_check says CAIRN_OK, the scans must complete with
 * keys strictly ascending (descending backwards), both directions must see
 * the same number of keys, equal to the cf's entry count, and every key
 * scanned must be found by get. A violation calls abort() so the fuzzer
 * records the input.
 *
 * Reaching past the checksums. Random bytes almost never pass a page
 * checksum, so the target also builds, on its first call, two small valid
 * databases (4 KiB and 16 KiB pages: three column families, small and
 * overflow values, free pages after several commits) and interprets inputs
 * that start with a magic byte as edits of them:
 *   0xCA s ops...  golden image s&1, then 6-byte edit ops
 *                  [op][off: 3 bytes LE][val][len]:
 *                  op%6 = 0 xor byte at off with val; 1 fill len%32 bytes at
 *                  off with val; 2 like 1, then recompute the page's checksum
 *                  (per core/FORMAT.md) and fix its page number, so the
 *                  engine's structural checks, not the CRC, must catch it;
 *                  3 truncate to off (scaled to the image); 4 copy page val
 *                  over page off; 5 write val into byte off of the newest
 *                  meta page and reseal it.
 *   0xCB s bytes   golden image s&1 with the bytes XORed in from page 2 on;
 *                  every changed page gets a correct page number and checksum.
 * Anything else is used as the file as is. Seeds in tests/corpus/fuzz_open/
 * start with these magic bytes, so the deterministic driver (and libFuzzer)
 * mutate edit scripts of real databases from the first run on.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn.h"
#include "platform.h"

#include "test_support.h"

#define FUZZ_PATH "fuzz.db"
#define MAX_CFS 16
#define MAX_STEPS 200000

#define FUZZ_ASSERT(c)                                                         \
  do {                                                                         \
    if (!(c)) {                                                                \
      fprintf(stderr, "fuzz_open: %s:%d: assertion failed: %s (errmsg: %s)\n", \
              __FILE__, __LINE__, #c, cairn_errmsg());                         \
      abort();                                                                 \
    }                                                                          \
  } while (0)

/* ---- golden databases -------------------------------------------------------
 */

typedef struct image {
  uint8_t *data;
  size_t n;
  uint32_t psize;
} image;

static image golden[2];
static int golden_ready;

static void build_golden(image *g, uint32_t psize) {
  cairn_options o;
  cairn_db *db = NULL;
  const char *path = "fuzz-golden.db";
  cairn_options_init(&o);
  o.platform = "memory";
  o.page_size = psize;
  g->psize = psize;
  if (cairn_open(path, &o, &db) != CAIRN_OK)
    abort();
  for (int c = 0; c < 4; c++) {
    cairn_txn *t = NULL;
    cairn_cf cf[3] = {CAIRN_DEFAULT_CF, 0, 0};
    if (cairn_begin(db, 0, &t) != CAIRN_OK ||
        cairn_cf_open(t, "alpha", CAIRN_CF_CREATE, &cf[1]) != CAIRN_OK ||
        cairn_cf_open(t, "beta", CAIRN_CF_CREATE, &cf[2]) != CAIRN_OK)
      abort();
    for (int i = 0; i < (c == 0 ? 300 : 40); i++) {
      char k[24];
      int j = (i * 37 + c * 11) % 300;
      size_t vn =
          (i % 29 == 0) ? psize + 100u * (unsigned)c : 8u + (unsigned)(j % 40);
      void *v = ts_value_new(vn, (uint64_t)(j + c));
      snprintf(k, sizeof k, "key%04d", j);
      if (c && i % 5 == 0)
        cairn_del(t, cf[i % 3], ts_str(k));
      else if (cairn_put(t, cf[i % 3], ts_str(k), ts_sl(v, vn), 0) != CAIRN_OK)
        abort();
      free(v);
    }
    if (cairn_commit(t) != CAIRN_OK)
      abort();
  }
  if (cairn_close(db) != CAIRN_OK)
    abort();
  if (ts_file_read("memory", path, &g->data, &g->n) != CAIRN_OK)
    abort();
  ts_file_remove("memory", path);
}

static void ensure_golden(void) {
  if (golden_ready)
    return;
  build_golden(&golden[0], 4096);
  build_golden(&golden[1], 16384);
  golden_ready = 1;
}

/* ---- turning an input into a file image -------------------------------------
 */

static void st64le(uint8_t *p, uint64_t v) {
  for (int i = 0; i < 8; i++)
    p[i] = (uint8_t)(v >> (8 * i));
}

/* Fix page pg's number and checksum so it passes the checksum test. */
static void forge_page(uint8_t *img, size_t n, uint32_t ps, size_t pg) {
  size_t off = pg * ps;
  if (off + 32 > n)
    return;
  if (pg >= 2)
    st64le(img + off + 8, (uint64_t)pg);
  ts_reseal_page(img + off, n - off, ps);
}

static uint8_t *make_image(const uint8_t *d, size_t n, size_t *out_n) {
  uint8_t *img;
  if (n >= 2 && (d[0] == 0xCA || d[0] == 0xCB)) {
    const image *g;
    ensure_golden();
    g = &golden[d[1] & 1];
    size_t m = g->n, ps = g->psize, pages = m / ps;
    img = malloc(m + 1);
    if (!img)
      abort();
    memcpy(img, g->data, m);
    if (d[0] == 0xCB) {
      size_t from = 2 * ps;
      uint8_t *touched = calloc(pages + 1, 1);
      if (!touched)
        abort();
      for (size_t i = 2; i < n && from + (i - 2) < m; i++) {
        if (d[i]) {
          img[from + i - 2] ^= d[i];
          touched[(from + i - 2) / ps] = 1;
        }
      }
      for (size_t pg = 2; pg < pages; pg++)
        if (touched[pg])
          forge_page(img, m, (uint32_t)ps, pg);
      free(touched);
    } else {
      uint64_t t0, t1;
      memcpy(&t0, img + 16, 8);
      memcpy(&t1, img + ps + 16, 8);
      size_t meta = t1 > t0 ? ps : 0;
      for (size_t i = 2; i + 6 <= n; i += 6) {
        unsigned op = d[i] % 6;
        size_t off =
            (size_t)d[i + 1] | (size_t)d[i + 2] << 8 | (size_t)d[i + 3] << 16;
        uint8_t val = d[i + 4];
        size_t len = d[i + 5] % 32;
        if (!m)
          break;
        switch (op) {
        case 0: img[off % m] ^= val; break;
        case 1:
        case 2:
          off %= m;
          if (len > m - off)
            len = m - off;
          memset(img + off, val, len);
          if (op == 2)
            forge_page(img, m, (uint32_t)ps, off / ps);
          break;
        case 3: m = (size_t)((uint64_t)off * m >> 24); break;
        case 4: {
          size_t pg = m / ps;
          if (pg < 2)
            break;
          size_t a = val % pg, b = off % pg;
          if (a != b)
            memcpy(img + b * ps, img + a * ps, ps);
          break;
        }
        default:
          if (meta + 256 <= m) {
            img[meta + 4 + off % 252] = val;
            ts_reseal_page(img + meta, m - meta, (uint32_t)ps);
          }
          break;
        }
      }
    }
    *out_n = m;
    return img;
  }
  img = malloc(n ? n : 1);
  if (!img)
    abort();
  if (n)
    memcpy(img, d, n);
  *out_n = n;
  return img;
}

/* ---- exercising an opened database
 * ------------------------------------------- */

typedef struct cf_list {
  int n;
  char name[MAX_CFS][CAIRN_MAX_CF_NAME + 1];
  cairn_cf cf[MAX_CFS];
} cf_list;

static int list_cb(void *ctx, const char *name, cairn_cf cf) {
  cf_list *l = ctx;
  if (l->n >= MAX_CFS)
    return 1;
  snprintf(l->name[l->n], sizeof l->name[l->n], "%s", name);
  l->cf[l->n++] = cf;
  return 0;
}

static int allowed(int rc) {
  return rc == CAIRN_OK || rc == CAIRN_CORRUPT || rc == CAIRN_NOTFOUND ||
         rc == CAIRN_NOTADB || rc == CAIRN_VERSION || rc == CAIRN_NOMEM;
}

typedef struct scan {
  int complete; /* reached the end without an error */
  int ordered;
  uint64_t count;
  int corrupt;
  int get_missing; /* a scanned key that get did not find */
} scan;

/* Walk a cf in one direction; also gets each key found (must exist) and
 * the first few keys are sought back. */
static void walk(cairn_txn *t, cairn_cf cf, int forward, scan *s) {
  cairn_cursor *c = NULL;
  uint8_t prev[CAIRN_MAX_KEY_SIZE];
  size_t pn = 0;
  int rc, have = 0;
  memset(s, 0, sizeof *s);
  s->ordered = 1;
  rc = cairn_cursor_open(t, cf, &c);
  FUZZ_ASSERT(allowed(rc));
  if (rc) {
    s->corrupt = rc == CAIRN_CORRUPT;
    return;
  }
  for (rc = forward ? cairn_cursor_first(c) : cairn_cursor_last(c);
       rc == CAIRN_OK && s->count < MAX_STEPS;
       rc = forward ? cairn_cursor_next(c) : cairn_cursor_prev(c)) {
    cairn_slice k, v;
    rc = cairn_cursor_get(c, &k, &v);
    if (rc)
      break;
    FUZZ_ASSERT(k.size <= CAIRN_MAX_KEY_SIZE);
    if (have) {
      int cmp = ts_keycmp(prev, pn, k.data, k.size);
      if (forward ? cmp >= 0 : cmp <= 0)
        s->ordered = 0;
    }
    memcpy(prev, k.data, k.size);
    pn = k.size;
    have = 1;
    /* touch every value byte (ASan sees any out-of-bounds slice) */
    volatile uint8_t sink = 0;
    for (size_t i = 0; i < v.size; i += 512)
      sink ^= ((const uint8_t *)v.data)[i];
    if (v.size)
      sink ^= ((const uint8_t *)v.data)[v.size - 1];
    (void)sink;
    if (s->count < 8) {
      cairn_slice gv;
      uint8_t kc[CAIRN_MAX_KEY_SIZE];
      memcpy(kc, k.data, k.size);
      int g = cairn_get(t, cf, ts_sl(kc, k.size), &gv);
      FUZZ_ASSERT(allowed(g));
      if (g == CAIRN_CORRUPT)
        s->corrupt = 1;
      if (g == CAIRN_NOTFOUND)
        s->get_missing = 1;
      int sk = cairn_cursor_seek(c, ts_sl(kc, k.size));
      FUZZ_ASSERT(allowed(sk));
      if (sk != CAIRN_OK) {
        rc = sk;
        break;
      }
    }
    s->count++;
  }
  if (rc == CAIRN_NOTFOUND)
    s->complete = 1;
  else if (rc == CAIRN_CORRUPT)
    s->corrupt = 1;
  else if (rc != CAIRN_OK) /* OK: stopped at MAX_STEPS */
    FUZZ_ASSERT(allowed(rc));
  cairn_cursor_close(c);
}

static void exercise(cairn_db *db, int rdonly) {
  cairn_txn *t = NULL;
  cf_list l;
  scan fw[MAX_CFS], bw[MAX_CFS];
  uint64_t entries[MAX_CFS];
  int have_stat[MAX_CFS];
  int rc, corrupt = 0, listed = 0;
  memset(&l, 0, sizeof l);
  memset(have_stat, 0, sizeof have_stat);
  rc = cairn_begin(db, CAIRN_TXN_RDONLY, &t);
  FUZZ_ASSERT(allowed(rc));
  if (rc == CAIRN_OK) {
    rc = cairn_cf_list(t, list_cb, &l);
    FUZZ_ASSERT(rc == 1 || allowed(rc));
    listed = rc == CAIRN_OK;
    corrupt |= rc == CAIRN_CORRUPT;
    for (int i = 0; i < l.n; i++) {
      cairn_cf cf;
      rc = cairn_cf_open(t, l.name[i], 0, &cf);
      FUZZ_ASSERT(allowed(rc));
      corrupt |= rc == CAIRN_CORRUPT;
      if (rc == CAIRN_OK)
        FUZZ_ASSERT(cf == l.cf[i]);
      walk(t, l.cf[i], 1, &fw[i]);
      walk(t, l.cf[i], 0, &bw[i]);
      corrupt |= fw[i].corrupt | bw[i].corrupt;
      cairn_cf_stat cs;
      rc = cairn_cf_stat_get(t, l.cf[i], &cs);
      FUZZ_ASSERT(allowed(rc));
      corrupt |= rc == CAIRN_CORRUPT;
      if (rc == CAIRN_OK) {
        have_stat[i] = 1;
        entries[i] = cs.entries;
      }
      /* a few probes */
      static const char *const probes[] = {"", "a", "key0100", "key0299",
                                           "\xff\xff"};
      for (size_t p = 0; p < sizeof probes / sizeof probes[0]; p++) {
        cairn_slice v;
        rc = cairn_get(t, l.cf[i], ts_str(probes[p]), &v);
        FUZZ_ASSERT(allowed(rc));
        corrupt |= rc == CAIRN_CORRUPT;
      }
    }
    cairn_abort(t);
  }
  cairn_db_stat st;
  rc = cairn_db_stat_get(db, &st);
  FUZZ_ASSERT(allowed(rc));
  corrupt |= rc == CAIRN_CORRUPT;
  rc = cairn_check(db, NULL, NULL);
  FUZZ_ASSERT(rc == CAIRN_OK || rc == CAIRN_CORRUPT || rc == CAIRN_NOMEM);
  if (rc == CAIRN_OK && listed) {
    /* a clean file: every read succeeded and all of them agree */
    FUZZ_ASSERT(!corrupt);
    for (int i = 0; i < l.n; i++) {
      FUZZ_ASSERT(fw[i].ordered && bw[i].ordered);
      FUZZ_ASSERT(!fw[i].get_missing && !bw[i].get_missing);
      if (fw[i].complete && bw[i].complete)
        FUZZ_ASSERT(fw[i].count == bw[i].count);
      if (fw[i].complete && have_stat[i])
        FUZZ_ASSERT(fw[i].count == entries[i]);
    }
    if (!rdonly) {
      rc = cairn_begin(db, 0, &t);
      FUZZ_ASSERT(rc == CAIRN_OK);
      rc = cairn_put(t, CAIRN_DEFAULT_CF, ts_str("fuzz-key"), ts_str("v"), 0);
      FUZZ_ASSERT(rc == CAIRN_OK);
      rc = cairn_commit(t);
      FUZZ_ASSERT(rc == CAIRN_OK);
      FUZZ_ASSERT(cairn_check(db, NULL, NULL) == CAIRN_OK);
    }
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) {
  size_t m = 0;
  uint8_t *img = make_image(d, n, &m);
  if (ts_file_write("memory", FUZZ_PATH, img, m) != CAIRN_OK)
    abort();
  free(img);
  for (int rdonly = 1; rdonly >= 0; rdonly--) {
    cairn_options o;
    cairn_db *db = NULL;
    cairn_options_init(&o);
    o.platform = "memory";
    o.flags = rdonly ? CAIRN_OPEN_RDONLY : 0;
    int rc = cairn_open(FUZZ_PATH, &o, &db);
    FUZZ_ASSERT(rc == CAIRN_OK || rc == CAIRN_CORRUPT || rc == CAIRN_NOTADB ||
                rc == CAIRN_VERSION || rc == CAIRN_NOMEM);
    FUZZ_ASSERT((rc == CAIRN_OK) == (db != NULL));
    if (rc != CAIRN_OK) {
      FUZZ_ASSERT(cairn_errmsg()[0] != 0);
      continue;
    }
    exercise(db, rdonly);
    rc = cairn_close(db);
    FUZZ_ASSERT(rc == CAIRN_OK);
  }
  ts_file_remove("memory", FUZZ_PATH);
  return 0;
}
