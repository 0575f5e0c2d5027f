/*
 * test_stat_output.c — cairn_stat_write (core/stat_format.c): the JSON and
 * Prometheus outputs parse (a strict JSON parser and a parser of the
 * Prometheus text exposition format live below) and hold the counters that
 * a known sequence of operations must produce, the same numbers as
 * cairn_metrics_get and the column family statistics; names that are not
 * plain text (control bytes, invalid UTF-8, a leading "0x") come out as
 * 0x-hex, quotes and backslashes escaped, so any name yields valid output.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn.h"
#include "platform.h"
#include "test_util.h"

#include "test_support.h"

typedef struct buf {
  char *p;
  size_t n, cap;
} buf;

static int buf_write(void *ctx, const void *data, size_t n) {
  buf *b = ctx;
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

/* ---- parsed values: path -> text ------------------------------------------
 */

#define MAXV 4096
typedef struct kv {
  char path[256];
  char val[256]; /* numbers as written; strings decoded */
  int is_str;
} kv;
static kv vals[MAXV];
static int nvals;

static void add(const char *path, const char *val, size_t vn, int is_str) {
  if (nvals == MAXV)
    return;
  kv *e = &vals[nvals++];
  snprintf(e->path, sizeof e->path, "%s", path);
  if (vn >= sizeof e->val)
    vn = sizeof e->val - 1;
  memcpy(e->val, val, vn);
  e->val[vn] = 0;
  e->is_str = is_str;
}

static const char *get(const char *path) {
  for (int i = 0; i < nvals; i++)
    if (strcmp(vals[i].path, path) == 0)
      return vals[i].val;
  return NULL;
}

static int get_u64(const char *path, unsigned long long *out) {
  const char *v = get(path);
  char *end;
  if (!v || !*v)
    return 0;
  *out = strtoull(v, &end, 10);
  return *end == 0;
}

/* ---- a strict JSON parser (RFC 8259) --------------------------------------
 */

typedef struct jp {
  const char *s;
  int err;
} jp;

static void ws(jp *j) {
  while (*j->s == ' ' || *j->s == '\n' || *j->s == '\r' || *j->s == '\t')
    j->s++;
}

/* A string into out (UTF-8; \u escapes of the BMP only). */
static int jstring(jp *j, char *out, size_t cap, size_t *len) {
  size_t n = 0;
  if (*j->s != '"')
    return 0;
  j->s++;
  for (;;) {
    unsigned char c = (unsigned char)*j->s++;
    if (c == '"')
      break;
    if (c < 0x20) /* raw control characters are not allowed */
      return 0;
    if (c == '\\') {
      char e = *j->s++;
      const char *map = "\"\"\\\\//b\bf\fn\nr\rt\t";
      const char *m = strchr(map, e);
      if (e && m && ((m - map) % 2 == 0)) {
        c = (unsigned char)m[1];
      } else if (e == 'u') {
        unsigned cp = 0;
        for (int i = 0; i < 4; i++) {
          char h = *j->s++;
          cp = cp * 16 + (unsigned)(h >= '0' && h <= '9'   ? h - '0'
                                    : h >= 'a' && h <= 'f' ? h - 'a' + 10
                                    : h >= 'A' && h <= 'F' ? h - 'A' + 10
                                                           : 99);
          if (cp > 0xffff)
            return 0;
        }
        if (n + 3 < cap) {
          if (cp < 0x80)
            out[n++] = (char)cp;
          else if (cp < 0x800) {
            out[n++] = (char)(0xc0 | cp >> 6);
            out[n++] = (char)(0x80 | (cp & 63));
          } else {
            out[n++] = (char)(0xe0 | cp >> 12);
            out[n++] = (char)(0x80 | ((cp >> 6) & 63));
            out[n++] = (char)(0x80 | (cp & 63));
          }
        }
        continue;
      } else {
        return 0;
      }
    }
    if (n + 1 < cap)
      out[n++] = (char)c;
  }
  out[n] = 0;
  *len = n;
  return 1;
}

static int jvalue(jp *j, const char *path);

static int jobject(jp *j, const char *path) {
  j->s++; /* { */
  ws(j);
  if (*j->s == '}') {
    j->s++;
    return 1;
  }
  for (;;) {
    char key[128], sub[256];
    size_t kn;
    ws(j);
    if (!jstring(j, key, sizeof key, &kn))
      return 0;
    ws(j);
    if (*j->s++ != ':')
      return 0;
    snprintf(sub, sizeof sub, "%s%s%s", path, *path ? "." : "", key);
    if (!jvalue(j, sub))
      return 0;
    ws(j);
    if (*j->s == ',') {
      j->s++;
      continue;
    }
    return *j->s++ == '}';
  }
}

static int jarray(jp *j, const char *path) {
  j->s++; /* [ */
  ws(j);
  if (*j->s == ']') {
    j->s++;
    return 1;
  }
  for (int i = 0;; i++) {
    char sub[256];
    snprintf(sub, sizeof sub, "%s[%d]", path, i);
    if (!jvalue(j, sub))
      return 0;
    ws(j);
    if (*j->s == ',') {
      j->s++;
      continue;
    }
    return *j->s++ == ']';
  }
}

static int jvalue(jp *j, const char *path) {
  ws(j);
  char c = *j->s;
  if (c == '{')
    return jobject(j, path);
  if (c == '[')
    return jarray(j, path);
  if (c == '"') {
    char s[256];
    size_t n;
    if (!jstring(j, s, sizeof s, &n))
      return 0;
    add(path, s, n, 1);
    return 1;
  }
  static const char *const lit[] = {"true", "false", "null"};
  for (int i = 0; i < 3; i++)
    if (strncmp(j->s, lit[i], strlen(lit[i])) == 0) {
      add(path, lit[i], strlen(lit[i]), 0);
      j->s += strlen(lit[i]);
      return 1;
    }
  const char *st = j->s;
  if (*j->s == '-')
    j->s++;
  if (*j->s == '0')
    j->s++;
  else if (*j->s >= '1' && *j->s <= '9')
    while (*j->s >= '0' && *j->s <= '9')
      j->s++;
  else
    return 0;
  if (*j->s == '.') {
    j->s++;
    if (!(*j->s >= '0' && *j->s <= '9'))
      return 0;
    while (*j->s >= '0' && *j->s <= '9')
      j->s++;
  }
  add(path, st, (size_t)(j->s - st), 0);
  return 1;
}

static int parse_json(const char *text) {
  nvals = 0;
  jp j = {text, 0};
  if (!jvalue(&j, ""))
    return 0;
  ws(&j);
  return *j.s == 0;
}

/* ---- a parser of the Prometheus text format (0.0.4) -----------------------
 */

static int name_ok(const char *s, size_t n) {
  if (!n)
    return 0;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    int alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                c == ':';
    if (!alpha && !(i > 0 && c >= '0' && c <= '9'))
      return 0;
  }
  return 1;
}

/* Parse every line; samples go to vals as "name{k=\"v\",...}" -> value,
 * with label values decoded. Returns 0 and prints the line if malformed. */
static int parse_prometheus(char *text) {
  nvals = 0;
  char types[128][96];
  int ntypes = 0;
  for (char *l = text; *l;) {
    char *nl = strchr(l, '\n');
    if (!nl) {
      printf("no newline at the end\n");
      return 0;
    }
    *nl = 0;
    if (strncmp(l, "# TYPE ", 7) == 0) {
      char name[96], type[32];
      if (sscanf(l + 7, "%95s %31s", name, type) != 2 ||
          !name_ok(name, strlen(name)) ||
          (strcmp(type, "counter") && strcmp(type, "gauge") &&
           strcmp(type, "summary"))) {
        printf("bad TYPE line: %s\n", l);
        return 0;
      }
      for (int i = 0; i < ntypes; i++)
        if (strcmp(types[i], name) == 0) {
          printf("TYPE twice: %s\n", l);
          return 0;
        }
      if (ntypes < 128)
        snprintf(types[ntypes++], sizeof types[0], "%s", name);
    } else if (strncmp(l, "# HELP ", 7) == 0 || l[0] == '#') {
      /* help text is free-form */
    } else {
      char key[256];
      size_t kn = 0;
      const char *p = l;
      while (*p && *p != '{' && *p != ' ')
        p++;
      if (!name_ok(l, (size_t)(p - l))) {
        printf("bad metric name: %s\n", l);
        return 0;
      }
      /* the family must have been declared */
      char fam[96];
      snprintf(fam, sizeof fam, "%.*s", (int)(p - l), l);
      int declared = 0;
      for (int i = 0; i < ntypes && !declared; i++) {
        size_t tl = strlen(types[i]);
        declared =
            strcmp(types[i], fam) == 0 || (strncmp(types[i], fam, tl) == 0 &&
                                           (strcmp(fam + tl, "_sum") == 0 ||
                                            strcmp(fam + tl, "_count") == 0));
      }
      if (!declared) {
        printf("sample without TYPE: %s\n", l);
        return 0;
      }
      kn = (size_t)snprintf(key, sizeof key, "%s", fam);
      if (*p == '{') {
        p++;
        kn += (size_t)snprintf(key + kn, sizeof key - kn, "{");
        for (int first = 1; *p != '}'; first = 0) {
          if (!first && *p++ != ',') {
            printf("bad label list: %s\n", l);
            return 0;
          }
          const char *ln = p;
          while (*p && *p != '=')
            p++;
          if (!name_ok(ln, (size_t)(p - ln)) || p[0] != '=' || p[1] != '"') {
            printf("bad label: %s\n", l);
            return 0;
          }
          kn += (size_t)snprintf(key + kn, sizeof key - kn, "%s%.*s=\"",
                                 first ? "" : ",", (int)(p - ln), ln);
          p += 2;
          while (*p != '"') {
            char c = *p++;
            if (!c) {
              printf("unterminated label value: %s\n", l);
              return 0;
            }
            if (c == '\\') {
              c = *p++;
              if (c == 'n')
                c = '\n';
              else if (c != '\\' && c != '"') {
                printf("bad escape: %s\n", l);
                return 0;
              }
            }
            if (kn + 2 < sizeof key)
              key[kn++] = c;
          }
          p++;
          kn += (size_t)snprintf(key + kn, sizeof key - kn, "\"");
        }
        p++;
        snprintf(key + kn, sizeof key - kn, "}");
      }
      if (*p++ != ' ') {
        printf("no value: %s\n", l);
        return 0;
      }
      char *end;
      strtod(p, &end);
      if (end == p || *end) {
        printf("bad value: %s\n", l);
        return 0;
      }
      add(key, p, strlen(p), 0);
    }
    l = nl + 1;
  }
  return 1;
}

/* ---- the test ---------------------------------------------------------- */

static const char *const WEIRD = "we\"ird\\name";
static const char *const BINARY = "\x01\xff";
static const char *const HEXLIKE = "0xab";

static void known_ops(cairn_db *db) {
  cairn_txn *w, *r;
  cairn_cf blocks, cf;
  char k[16];
  CHECK_OK(cairn_begin(db, 0, &w));
  CHECK_OK(cairn_cf_open(w, "blocks", CAIRN_CF_CREATE, &blocks));
  CHECK_OK(cairn_cf_open(w, WEIRD, CAIRN_CF_CREATE, &cf));
  CHECK_OK(cairn_cf_open(w, BINARY, CAIRN_CF_CREATE, &cf));
  CHECK_OK(cairn_cf_open(w, HEXLIKE, CAIRN_CF_CREATE, &cf));
  for (int i = 0; i < 10; i++) {
    snprintf(k, sizeof k, "k%d", i);
    CHECK_OK(cairn_put(w, CAIRN_DEFAULT_CF, ts_str(k), ts_str("v"), 0));
  }
  for (int i = 0; i < 5; i++) {
    snprintf(k, sizeof k, "b%d", i);
    CHECK_OK(cairn_put(w, blocks, ts_str(k), ts_str("block"), 0));
  }
  CHECK_OK(cairn_commit(w)); /* commit 1 (sync) */
  CHECK_OK(cairn_begin(db, 0, &w));
  CHECK_OK(cairn_del(w, CAIRN_DEFAULT_CF, ts_str("k0")));
  CHECK_RC(cairn_del(w, CAIRN_DEFAULT_CF, ts_str("nope")), CAIRN_NOTFOUND);
  CHECK_OK(cairn_commit_ex(w, CAIRN_DURABILITY_LAZY)); /* commit 2 (lazy) */
  CHECK_OK(cairn_begin(db, 0, &w));
  CHECK_OK(cairn_put(w, CAIRN_DEFAULT_CF, ts_str("gone"), ts_str("x"), 0));
  cairn_abort(w); /* abort 1 */
  CHECK_OK(cairn_begin(db, 0, &w));
  CHECK_OK(cairn_commit(w)); /* an empty commit */
  CHECK_OK(cairn_begin(db, CAIRN_TXN_RDONLY, &r));
  cairn_slice v;
  CHECK_OK(cairn_get(r, CAIRN_DEFAULT_CF, ts_str("k1"), &v));
  CHECK_OK(cairn_get(r, blocks, ts_str("b4"), &v));
  CHECK_RC(cairn_get(r, CAIRN_DEFAULT_CF, ts_str("k0"), &v), CAIRN_NOTFOUND);
  cairn_abort(r);
  CHECK_OK(cairn_sync(db));
}

static const struct {
  const char *name;
  unsigned long long want; /* ~0 = only compare with cairn_metrics_get,
                            * ~1 = at least cairn_metrics_get's */
  size_t off;
} COUNTERS[] = {
#define C(f, w)                                                                \
  { #f, w, offsetof(cairn_metrics, f) }
    C(gets, 3),
    C(get_misses, 1),
    C(puts, 16),
    C(dels, 2),
    C(commits, 2),
    C(commits_sync, 1),
    C(commits_lazy, 1),
    C(commits_empty, 1),
    C(aborts, 1),
    C(syncs, ~0ull),
    C(pages_written, ~0ull),
    C(bytes_written, ~0ull),
    C(last_commit_pages, ~0ull),
    C(last_commit_bytes, ~0ull),
    C(pages_allocated_new, ~0ull),
    C(pages_reused, ~0ull),
    C(pages_freed, ~0ull),
    C(cache_hits, ~1ull), /* the output's own walk reads through the cache */
    C(cache_misses, ~1ull),
    C(cache_evictions, ~0ull),
    C(checkpoints, 1), /* the explicit cairn_checkpoint */
#undef C
};

static uint64_t mfield(const cairn_metrics *m, size_t off) {
  uint64_t v;
  memcpy(&v, (const char *)m + off, sizeof v);
  return v;
}

/* The parsed value at path is counter i: equal to (or, for counters the
 * output's own reads move, at least) cairn_metrics_get's, and the expected
 * number where there is one. */
static void check_counter(const char *path, size_t i, const cairn_metrics *m) {
  unsigned long long u = 0;
  TCHECK(get_u64(path, &u));
  if (COUNTERS[i].want == ~1ull)
    TCHECK(u >= mfield(m, COUNTERS[i].off));
  else
    TCHECK(u == mfield(m, COUNTERS[i].off));
  if (COUNTERS[i].want < ~1ull)
    TCHECK(u == COUNTERS[i].want);
}

static void test_outputs(const char *plat, const char *path) {
  ts_set_ctx("stat outputs on %s", plat);
  cairn_options o;
  ts_options(&o, plat, 0);
  cairn_db *db;
  ts_file_remove(plat, path); /* a fresh database: counts from zero */
  if (!TCHECK_OK(cairn_open(path, &o, &db)))
    return;
  known_ops(db);
  TCHECK_OK(cairn_checkpoint(db)); /* log mode: pages reach the file here */
  cairn_metrics m;
  TCHECK_OK(cairn_metrics_get(db, &m));
  TCHECK(m.pages_written > 0 && m.bytes_written >= m.pages_written * 4096);
  TCHECK(m.syncs >= 2);
  cairn_cf_stat blocks;
  {
    cairn_txn *r;
    cairn_cf cf;
    TCHECK_OK(cairn_begin(db, CAIRN_TXN_RDONLY, &r));
    TCHECK_OK(cairn_cf_open(r, "blocks", 0, &cf));
    TCHECK_OK(cairn_cf_stat_get(r, cf, &blocks));
    cairn_abort(r);
  }
  TCHECK(blocks.entries == 5 && blocks.leaf_pages == 1);

  /* JSON */
  buf j = {0};
  TCHECK_OK(cairn_stat_write(db, CAIRN_STAT_JSON, buf_write, &j));
  if (!TCHECK(j.p && parse_json(j.p)))
    printf("%s\n", j.p ? j.p : "(nothing)");
  unsigned long long u;
  for (size_t i = 0; i < sizeof COUNTERS / sizeof *COUNTERS; i++) {
    char p[96];
    snprintf(p, sizeof p, "metrics.%s", COUNTERS[i].name);
    ts_set_ctx("JSON %s on %s", p, plat);
    check_counter(p, i, &m);
  }
  ts_set_ctx("JSON on %s", plat);
  TCHECK(get_u64("db.page_size", &u) && u == 4096);
  TCHECK(get_u64("db.column_families", &u) && u == 5);
  TCHECK(get_u64("db.snapshots", &u) && u == 0);
  TCHECK(get("db.mapped") && (strcmp(get("db.mapped"), "true") == 0 ||
                              strcmp(get("db.mapped"), "false") == 0));
  TCHECK(get("db.platform") && strcmp(get("db.platform"), plat) == 0);
  TCHECK(get_u64("metrics.latency_ns.commit.count", &u) && u == 2);
  unsigned long long p50 = 0, p99 = 0, p999 = 0, mx = 0;
  TCHECK(get_u64("metrics.latency_ns.commit.p50", &p50) &&
         get_u64("metrics.latency_ns.commit.p99", &p99) &&
         get_u64("metrics.latency_ns.commit.p999", &p999) &&
         get_u64("metrics.latency_ns.commit.max", &mx));
  TCHECK(p50 <= p99 && p99 <= p999);
  TCHECK(get_u64("metrics.latency_ns.get.count", &u) && u <= 3);
  /* column families: every name, as text or hex */
  int seen = 0;
  for (int i = 0; i < 5; i++) {
    char p[64];
    snprintf(p, sizeof p, "column_families[%d].name", i);
    const char *name = get(p);
    if (!TCHECK(name != NULL))
      continue;
    snprintf(p, sizeof p, "column_families[%d].entries", i);
    TCHECK(get_u64(p, &u));
    if (strcmp(name, "blocks") == 0) {
      seen |= 1;
      TCHECK(u == 5);
      snprintf(p, sizeof p, "column_families[%d].leaf_pages", i);
      unsigned long long lp;
      TCHECK(get_u64(p, &lp) && lp == blocks.leaf_pages);
    } else if (strcmp(name, "default") == 0) {
      seen |= 2;
      TCHECK(u == 9);
    } else if (strcmp(name, WEIRD) == 0) {
      seen |= 4;
    } else if (strcmp(name, "0x01ff") == 0) {
      seen |= 8;
    } else if (strcmp(name, "0x30786162") == 0) {
      seen |= 16;
    }
  }
  TCHECK(seen == 31);
  TCHECK(get("column_families[5].name") == NULL);

  /* Prometheus */
  buf pr = {0};
  TCHECK_OK(cairn_stat_write(db, CAIRN_STAT_PROMETHEUS, buf_write, &pr));
  char *copy = malloc(pr.n + 1);
  if (copy && pr.p)
    memcpy(copy, pr.p, pr.n + 1);
  if (!TCHECK(pr.p && parse_prometheus(pr.p)))
    printf("%s\n", copy ? copy : "(nothing)");
  free(copy);
  for (size_t i = 0; i < sizeof COUNTERS / sizeof *COUNTERS; i++) {
    char p[96];
    int gauge = strncmp(COUNTERS[i].name, "last_", 5) == 0;
    snprintf(p, sizeof p, "cairn_%s%s", COUNTERS[i].name,
             gauge ? "" : "_total");
    ts_set_ctx("Prometheus %s on %s", p, plat);
    check_counter(p, i, &m);
  }
  ts_set_ctx("Prometheus on %s", plat);
  TCHECK(get_u64("cairn_page_size_bytes", &u) && u == 4096);
  TCHECK(get_u64("cairn_column_families", &u) && u == 5);
  TCHECK(get_u64("cairn_cf_entries{cf=\"blocks\"}", &u) && u == 5);
  TCHECK(get_u64("cairn_cf_entries{cf=\"default\"}", &u) && u == 9);
  TCHECK(get_u64("cairn_cf_entries{cf=\"we\"ird\\name\"}", &u) && u == 0);
  TCHECK(get_u64("cairn_cf_entries{cf=\"0x01ff\"}", &u) && u == 0);
  TCHECK(get_u64("cairn_cf_pages{cf=\"blocks\",kind=\"leaf\"}", &u) && u == 1);
  TCHECK(get_u64("cairn_commit_latency_seconds_count", &u) && u == 2);
  char info[96];
  snprintf(info, sizeof info, "cairn_info{version=\"%s\",platform=\"%s\"}",
           CAIRN_VERSION_STRING, plat);
  TCHECK(get_u64(info, &u) && u == 1);
  const char *q50 = get("cairn_commit_latency_seconds{quantile=\"0.5\"}");
  const char *q99 = get("cairn_commit_latency_seconds{quantile=\"0.99\"}");
  TCHECK(q50 && q99 && strtod(q50, NULL) <= strtod(q99, NULL));
  TCHECK(q50 && strtod(q50, NULL) * 1e9 >= (double)p50 - 1 &&
         strtod(q50, NULL) * 1e9 <= (double)p50 + 1);

  /* misuse */
  TCHECK_RC(cairn_stat_write(db, 99, buf_write, &pr), CAIRN_INVALID);
  TCHECK_RC(cairn_stat_write(NULL, CAIRN_STAT_JSON, buf_write, &pr),
            CAIRN_INVALID);
  free(j.p);
  free(pr.p);
  cairn_close(db);
}

int main(void) {
  cairn_platform_memory_reset();
  test_outputs("memory", "stat.db");
#ifdef CAIRN_HAVE_UNIX_PLATFORM
  test_outputs("unix", "stat.db");
#endif
  cairn_platform_memory_reset();
  return test_summary();
}
