/*
 * test_dump.c — cairn_dump and cairn_load (core/dump.c).
 *
 *   - dump | load | dump is byte for byte, over every column family
 *     (including an empty one and one with a binary name), binary keys
 *     (empty, NUL, 0xff, ':' and newline bytes, the longest allowed),
 *     empty values, overflow values and one value larger than the I/O
 *     buffers; the loaded database equals the reference model;
 *   - load streams: input delivered a few bytes at a time, or with CRLF line
 *     ends, gives the same database;
 *   - the format is what core/OPERATIONS.md says (header, section lines,
 *     " key:value" hex lines, end line);
 *   - damaged input is refused naming the line (truncated, bad hex, odd
 *     digits, wrong counts, a repeated section, keys out of order or
 *     repeated, data after the end, not a dump, a newer version), and load
 *     never writes into a database that holds anything;
 *   - errors of the callbacks come back as status codes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn.h"
#include "platform.h"
#include "test_util.h"

#include "test_support.h"

#define MEM "memory"

/* ---- memory streams ------------------------------------------------------ */

typedef struct buf {
  char *p;
  size_t n, cap;
  int fail_with; /* returned by the write callback once n passes fail_at */
  size_t fail_at;
} buf;

static int buf_write(void *ctx, const void *data, size_t n) {
  buf *b = ctx;
  if (b->fail_with && b->n + n > b->fail_at)
    return b->fail_with;
  if (b->n + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->n + n + 1)
      cap *= 2;
    char *q = realloc(b->p, cap);
    if (!q)
      return CAIRN_NOMEM;
    b->p = q;
    b->cap = cap;
  }
  memcpy(b->p + b->n, data, n);
  b->n += n;
  b->p[b->n] = 0;
  return 0;
}

typedef struct src {
  const char *p;
  size_t n, at;
  ts_rng *chunky; /* deliver 1..7 bytes per call */
  int fail_with;
} src;

static int src_read(void *ctx, void *out, size_t cap, size_t *got) {
  src *s = ctx;
  if (s->fail_with && s->at > s->n / 2)
    return s->fail_with;
  size_t k = s->n - s->at;
  if (k > cap)
    k = cap;
  if (s->chunky && k > 0) {
    size_t c = 1 + (size_t)ts_below(s->chunky, 7);
    if (k > c)
      k = c;
  }
  memcpy(out, s->p + s->at, k);
  s->at += k;
  *got = k;
  return 0;
}

static int dump_to(const char *path, buf *out) {
  cairn_options o;
  ts_options(&o, MEM, 0);
  o.flags = CAIRN_OPEN_RDONLY;
  cairn_db *db;
  int rc = cairn_open(path, &o, &db);
  memset(out, 0, sizeof *out);
  if (rc)
    return rc;
  rc = cairn_dump(db, buf_write, out);
  cairn_close(db);
  return rc;
}

static char last_msg[512];

/* Load text into a new database at path (page size ps). */
static int load_from(const char *path, uint32_t ps, const char *text, size_t n,
                     ts_rng *chunky) {
  cairn_options o;
  ts_options(&o, MEM, ps);
  cairn_db *db;
  int rc = cairn_open(path, &o, &db);
  if (rc)
    return rc;
  src s = {text, n, 0, chunky, 0};
  rc = cairn_load(db, src_read, &s);
  char msg[512];
  snprintf(msg, sizeof msg, "%s", cairn_errmsg());
  cairn_close(db);
  /* the load's own message (close may clear the thread's) */
  snprintf(last_msg, sizeof last_msg, "%s", rc ? msg : "");
  return rc;
}

/* ---- the source database ------------------------------------------------- */

static const char *const CF[4] = {"default", "blocks", "\x01\xff\x7f", "empty"};

/* Put into db and model alike. */
static void put_both(cairn_txn *w, cairn_cf cf, ts_map *m, const void *k,
                     size_t kn, uint64_t vseed, size_t vlen) {
  void *v = ts_value_new(vlen, vseed);
  TCHECK_OK(cairn_put(w, cf, ts_sl(k, kn), ts_sl(v, vlen), 0));
  free(v);
  ts_map_put(m, k, kn, vseed, vlen);
}

static void build_source(const char *path, uint32_t ps, ts_state *model,
                         uint64_t seed) {
  cairn_options o;
  ts_options(&o, MEM, ps);
  cairn_db *db;
  ts_state_init(model);
  if (!TCHECK_OK(cairn_open(path, &o, &db)))
    return;
  cairn_txn *w;
  TCHECK_OK(cairn_begin(db, 0, &w));
  cairn_cf cf[4] = {CAIRN_DEFAULT_CF};
  for (int i = 1; i < 4; i++) {
    TCHECK_OK(cairn_cf_open(w, CF[i], CAIRN_CF_CREATE, &cf[i]));
    ts_state_add(model, CF[i]);
  }
  ts_map *m[4];
  for (int i = 0; i < 4; i++)
    m[i] = &model->map[ts_state_find(model, CF[i])];
  /* binary keys with every awkward byte, empty values */
  static const char *const odd[] = {
      "",  "\0",   "\0\0",         ":",     "\n", "\r\n",
      " ", "\xff", "\xff\xff\xff", "a:b\nc"};
  static const size_t oddn[] = {0, 1, 2, 1, 1, 2, 1, 1, 3, 5};
  for (size_t i = 0; i < sizeof oddn / sizeof *oddn; i++) {
    put_both(w, cf[0], m[0], odd[i], oddn[i], 1000 + i, i % 3 ? 0 : 7);
    put_both(w, cf[2], m[2], odd[i], oddn[i], 2000 + i, 0);
  }
  /* the longest key, overflow values, one larger than the I/O buffers */
  uint8_t big[CAIRN_MAX_KEY_SIZE];
  ts_fill(big, sizeof big, 5);
  put_both(w, cf[0], m[0], big, sizeof big, 3, 5);
  put_both(w, cf[1], m[1], "overflow", 8, 4, 3 * 4096 + 17);
  put_both(w, cf[1], m[1], "huge", 4, 5, 300 * 1024 + 3);
  TCHECK_OK(cairn_commit(w));
  /* and a random bulk over several commits, with deletes */
  ts_rng r;
  ts_rng_seed(&r, seed);
  long commits = ts_scaled(20, 4);
  for (long c = 0; c < commits; c++) {
    TCHECK_OK(cairn_begin(db, 0, &w));
    for (int i = 0; i < 150; i++) {
      int which = ts_chance(&r, 1, 2) ? 1 : 0;
      uint8_t k[12];
      size_t kn = 1 + (size_t)ts_below(&r, sizeof k);
      for (size_t b = 0; b < kn; b++)
        k[b] = (uint8_t)ts_below(&r, 4) * 0x55; /* 00 55 aa ff */
      if (ts_chance(&r, 1, 5)) {
        int rc = cairn_del(w, cf[which], ts_sl(k, kn));
        TCHECK(rc == CAIRN_OK || rc == CAIRN_NOTFOUND);
        ts_map_del(m[which], k, kn);
      } else {
        size_t vlen = ts_chance(&r, 1, 30) ? 2000 + (size_t)ts_below(&r, 6000)
                                           : (size_t)ts_below(&r, 60);
        put_both(w, cf[which], m[which], k, kn, ts_next(&r), vlen);
      }
    }
    TCHECK_OK(cairn_commit(w));
  }
  TCHECK_OK(cairn_close(db));
}

static void compare_with(const char *path, const ts_state *model) {
  cairn_options o;
  ts_options(&o, MEM, 0);
  o.flags = CAIRN_OPEN_RDONLY;
  cairn_db *db;
  if (!TCHECK_OK(cairn_open(path, &o, &db)))
    return;
  cairn_txn *t;
  if (TCHECK_OK(cairn_begin(db, CAIRN_TXN_RDONLY, &t))) {
    char why[256] = "";
    int rc = ts_db_compare(t, model, why, sizeof why);
    if (!TCHECK(rc == 0))
      printf("  %s\n", why);
    cairn_abort(t);
  }
  TCHECK_OK(cairn_check(db, NULL, NULL));
  cairn_close(db);
}

/* ---- round trips ----------------------------------------------------------
 */

static void test_round_trip(uint32_t ps) {
  cairn_platform_memory_reset();
  ts_set_ctx("round trip, page size %u", (unsigned)ps);
  ts_state model;
  build_source("src.db", ps, &model, ps);
  buf a, b;
  TCHECK_OK(dump_to("src.db", &a));
  /* the documented shape */
  char head[64];
  snprintf(head, sizeof head, "cairn-dump 1 page_size=%u\n", (unsigned)ps);
  TCHECK(a.n > 0 && strncmp(a.p, head, strlen(head)) == 0);
  char tail[64];
  snprintf(tail, sizeof tail, "end cfs=4 entries=%zu\n",
           ts_state_entries(&model));
  TCHECK(a.n > strlen(tail) && strcmp(a.p + a.n - strlen(tail), tail) == 0);
  TCHECK(strstr(a.p, "\ncf 656d707479 entries=0\nend") != NULL); /* empty */
  TCHECK(strstr(a.p, "\ncf 01ff7f entries=10\n :\n 00:\n 0000:\n") != NULL);
  /* every line is a keyword line or " hex:hex" */
  size_t lines = 0, bad = 0;
  for (char *l = a.p; *l; lines++) {
    char *nl = strchr(l, '\n');
    if (!TCHECK(nl != NULL))
      break;
    if (*l == ' ') {
      size_t colon = 0;
      for (char *c = l + 1; c < nl; c++) {
        if (*c == ':')
          colon++;
        else if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f')))
          bad++;
      }
      bad += colon != 1;
    }
    l = nl + 1;
  }
  TCHECK(bad == 0);
  TCHECK(lines == ts_state_entries(&model) + 4 + 2);

  /* load into a new database of the same page size, dump again */
  TCHECK_OK(load_from("copy.db", ps, a.p, a.n, NULL));
  TCHECK_OK(dump_to("copy.db", &b));
  TCHECK(a.n == b.n && memcmp(a.p, b.p, a.n) == 0);
  compare_with("copy.db", &model);
  free(b.p);

  /* streamed a few bytes at a time */
  ts_rng r;
  ts_rng_seed(&r, 3);
  TCHECK_OK(load_from("chunky.db", ps, a.p, a.n, &r));
  TCHECK_OK(dump_to("chunky.db", &b));
  TCHECK(a.n == b.n && memcmp(a.p, b.p, a.n) == 0);
  free(b.p);

  /* CRLF line ends (and comment and blank lines) load the same */
  buf crlf = {0};
  buf_write(&crlf, "# a comment\r\n\r\n", 15);
  for (size_t i = 0; i < a.n; i++)
    buf_write(&crlf, a.p[i] == '\n' ? "\r\n" : a.p + i, a.p[i] == '\n' ? 2 : 1);
  ts_rng_seed(&r, 4);
  TCHECK_OK(load_from("crlf.db", ps, crlf.p, crlf.n, &r));
  TCHECK_OK(dump_to("crlf.db", &b));
  TCHECK(a.n == b.n && memcmp(a.p, b.p, a.n) == 0);
  free(b.p);
  free(crlf.p);

  /* another page size: the same content, only the header differs */
  uint32_t other = ps == 4096 ? 65536 : 4096;
  TCHECK_OK(load_from("other.db", other, a.p, a.n, NULL));
  TCHECK_OK(dump_to("other.db", &b));
  const char *a1 = strchr(a.p, '\n'), *b1 = b.p ? strchr(b.p, '\n') : NULL;
  TCHECK(a1 && b1 && strcmp(a1, b1) == 0);
  compare_with("other.db", &model);
  free(b.p);
  free(a.p);
  ts_state_free(&model);
}

/* ---- refusals ---------------------------------------------------------------
 */

static void expect_bad(const char *what, const char *text, int want,
                       const char *word) {
  ts_set_ctx("bad dump: %s", what);
  ts_file_remove(MEM, "bad.db");
  TCHECK_RC(load_from("bad.db", 0, text, strlen(text), NULL), want);
  if (!TCHECK(strstr(last_msg, word) != NULL))
    printf("  message lacks \"%s\": %s\n", word, last_msg);
}

static void test_refusals(void) {
  cairn_platform_memory_reset();
  const char *H = "cairn-dump 1 page_size=4096\n";
  char t[512];
#define BAD(what, body, want, word)                                            \
  do {                                                                         \
    snprintf(t, sizeof t, "%s%s", H, body);                                    \
    expect_bad(what, t, want, word);                                           \
  } while (0)
  BAD("sound", "cf 64656661756c74 entries=1\n 6b:76\nend cfs=1 entries=1\n",
      CAIRN_OK, "");
  BAD("truncated before the end line", "cf 64656661756c74 entries=1\n 6b:76\n",
      CAIRN_CORRUPT, "truncated");
  BAD("truncated inside a data line", "cf 64656661756c74 entries=1\n 6b:7",
      CAIRN_CORRUPT, "truncated");
  BAD("bad hex in a key", "cf 64656661756c74 entries=1\n 6g:76\nend\n",
      CAIRN_CORRUPT, "dump line 3: bad character in a key");
  BAD("bad hex in a value", "cf 64656661756c74 entries=1\n 6b:7x\nend\n",
      CAIRN_CORRUPT, "dump line 3: bad character in a value");
  BAD("odd digits", "cf 64656661756c74 entries=1\n 6b:767\nend\n",
      CAIRN_CORRUPT, "dump line 3: odd number of hex digits");
  BAD("no colon", "cf 64656661756c74 entries=1\n 6b76\nend\n", CAIRN_CORRUPT,
      "dump line 3: data line without ':'");
  BAD("section count",
      "cf 64656661756c74 entries=2\n 6b:76\nend cfs=1 "
      "entries=1\n",
      CAIRN_CORRUPT, "dump line 4: column family 'default' has 1 entries");
  BAD("end count", "cf 64656661756c74 entries=1\n 6b:76\nend cfs=1 entries=5\n",
      CAIRN_CORRUPT, "dump line 4: the dump holds 1 column families");
  BAD("repeated section",
      "cf 61 entries=0\ncf 61 entries=0\nend cfs=2 entries=0\n", CAIRN_CORRUPT,
      "dump line 3: column family 'a' appears twice");
  BAD("keys out of order", "cf 61 entries=2\n 6c:\n 6b:\nend cfs=1 entries=2\n",
      CAIRN_CORRUPT, "dump line 4: key is below the previous one");
  BAD("repeated key", "cf 61 entries=2\n 6b:\n 6b:01\nend cfs=1 entries=2\n",
      CAIRN_CORRUPT, "dump line 4: key repeats");
  BAD("data after the end", "end cfs=0 entries=0\nmore\n", CAIRN_CORRUPT,
      "data after the end line");
  BAD("data outside a section", " 6b:76\nend cfs=0 entries=0\n", CAIRN_CORRUPT,
      "dump line 2: a data line outside");
  BAD("unknown line", "cf 61 entries=0\nfoo bar\n", CAIRN_CORRUPT,
      "dump line 3: unknown line");
  BAD("bad cf name", "cf 6 entries=0\nend cfs=1 entries=0\n", CAIRN_CORRUPT,
      "dump line 2: column family name");
  BAD("NUL in cf name", "cf 6100 entries=0\nend cfs=1 entries=0\n",
      CAIRN_CORRUPT, "NUL");
  BAD("CR inside a line", "cf 61 entries=1\n 6b:76\r76\nend\n", CAIRN_CORRUPT,
      "dump line 3: carriage return");
  expect_bad("not a dump", "hello world\n", CAIRN_CORRUPT, "not a cairn dump");
  expect_bad("empty", "", CAIRN_CORRUPT, "empty");
  expect_bad("newer version",
             "cairn-dump 2 page_size=4096\nend cfs=0 "
             "entries=0\n",
             CAIRN_VERSION, "version 2");
  /* a key one byte over the limit */
  {
    buf k = {0};
    buf_write(&k, H, strlen(H));
    buf_write(&k, "cf 61 entries=1\n ", 17);
    for (unsigned i = 0; i <= CAIRN_MAX_KEY_SIZE; i++)
      buf_write(&k, "ab", 2);
    buf_write(&k, ":\nend cfs=1 entries=1\n", 22);
    expect_bad("key too long", k.p, CAIRN_CORRUPT, "key longer than");
    free(k.p);
  }
#undef BAD

  /* never into a database that holds anything */
  ts_set_ctx("load into a non-empty database");
  cairn_options o;
  ts_options(&o, MEM, 0);
  cairn_db *db;
  const char *dump = "cairn-dump 1\ncf 61 entries=1\n 6b:76\nend cfs=1 "
                     "entries=1\n";
  static const char *const setups[] = {"key in default", "empty cf"};
  for (int s = 0; s < 2; s++) {
    char path[32];
    snprintf(path, sizeof path, "full%d.db", s);
    if (!TCHECK_OK(cairn_open(path, &o, &db)))
      continue;
    cairn_txn *w;
    cairn_cf cf;
    TCHECK_OK(cairn_begin(db, 0, &w));
    if (s == 0)
      TCHECK_OK(cairn_put(w, CAIRN_DEFAULT_CF, ts_str("x"), ts_str("y"), 0));
    else
      TCHECK_OK(cairn_cf_open(w, "z", CAIRN_CF_CREATE, &cf));
    TCHECK_OK(cairn_commit(w));
    src in = {dump, strlen(dump), 0, NULL, 0};
    ts_set_ctx("load into a non-empty database: %s", setups[s]);
    TCHECK_RC(cairn_load(db, src_read, &in), CAIRN_EXISTS);
    TCHECK(strstr(cairn_errmsg(), "not empty") != NULL);
    cairn_txn *t;
    TCHECK_OK(cairn_begin(db, CAIRN_TXN_RDONLY, &t));
    TCHECK_RC(cairn_cf_open(t, "a", 0, &cf), CAIRN_NOTFOUND);
    cairn_abort(t);
    cairn_close(db);
  }
  /* a header without page_size is fine; an empty database loads */
  ts_set_ctx("minimal dump");
  TCHECK_OK(load_from("min.db", 0, dump, strlen(dump), NULL));

  /* callback failures */
  ts_set_ctx("callback errors");
  TCHECK_OK(cairn_open("cb.db", &o, &db));
  buf out = {0};
  out.fail_with = CAIRN_NOSPC;
  TCHECK_RC(cairn_dump(db, buf_write, &out), CAIRN_NOSPC);
  out.fail_with = 7; /* not a cairn code */
  TCHECK_RC(cairn_dump(db, buf_write, &out), CAIRN_IO);
  free(out.p);
  cairn_close(db);
  TCHECK_OK(cairn_open("cb2.db", &o, &db));
  src in = {dump, strlen(dump), 0, NULL, CAIRN_IO};
  TCHECK_RC(cairn_load(db, src_read, &in), CAIRN_IO);
  TCHECK_RC(cairn_dump(NULL, buf_write, &out), CAIRN_INVALID);
  TCHECK_RC(cairn_load(db, NULL, NULL), CAIRN_INVALID);
  cairn_close(db);
}

int main(void) {
  test_round_trip(4096);
  test_round_trip(16384);
  test_refusals();
  cairn_platform_memory_reset();
  return test_summary();
}
