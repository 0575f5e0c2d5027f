/*
 * dump.c — cairn_dump and cairn_load: every column family of a database as
 * portable, line-oriented hex text (format: core/OPERATIONS.md), streamed
 * in both directions.
 *
 *   cairn-dump 1 page_size=4096
 *   cf 64656661756c74 entries=2
 *    6b31:7631
 *    :
 *   end cfs=1 entries=2
 *
 * Invariants: the dump is a pure function of the snapshot's content and
 * page size (no txn ids, times or paths), so dump | load | dump is byte for
 * byte; memory is bounded by the largest key + value on both sides; load
 * refuses a database that already holds anything, so loading never merges
 * into (or silently overwrites) existing data.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "error.h"
#include "ops.h"

#define DUMP_VERSION 1
#define DUMP_BUF (64u * 1024u)
#define LOAD_BATCH_BYTES (8u << 20) /* data per commit while loading */

static const char hexd[] = "0123456789abcdef";

/* ---- dump --------------------------------------------------------------- */

typedef struct dumper {
  cairn_write_fn write;
  void *ctx;
  uint8_t *buf;
  size_t used;
} dumper;

int ops_cb_status(int r, const char *what) {
  if (r == 0)
    return CAIRN_OK;
  if (r < 0 && r >= CAIRN_NOTSUPP)
    return cairn__seterr(r, "the %s callback failed (%s)", what,
                         cairn_strerror(r));
  return cairn__seterr(CAIRN_IO, "the %s callback failed (%d)", what, r);
}

static int d_flush(dumper *d) {
  int r = d->used ? d->write(d->ctx, d->buf, d->used) : 0;
  d->used = 0;
  return ops_cb_status(r, "output");
}

static int d_put(dumper *d, const void *p, size_t n) {
  const uint8_t *b = p;
  while (n) {
    size_t k = DUMP_BUF - d->used < n ? DUMP_BUF - d->used : n;
    memcpy(d->buf + d->used, b, k);
    d->used += k;
    b += k;
    n -= k;
    if (d->used == DUMP_BUF) {
      int rc = d_flush(d);
      if (rc)
        return rc;
    }
  }
  return CAIRN_OK;
}

static int d_str(dumper *d, const char *s) { return d_put(d, s, strlen(s)); }

static int d_hex(dumper *d, const void *p, size_t n) {
  const uint8_t *b = p;
  for (size_t i = 0; i < n; i++) {
    if (DUMP_BUF - d->used < 2) {
      int rc = d_flush(d);
      if (rc)
        return rc;
    }
    d->buf[d->used++] = (uint8_t)hexd[b[i] >> 4];
    d->buf[d->used++] = (uint8_t)hexd[b[i] & 15];
  }
  return CAIRN_OK;
}

static int collect(void *ctx, const char *name, cairn_cf cf) {
  ops_cfs *l = ctx;
  if (l->n == l->cap) {
    size_t cap = l->cap ? 2 * l->cap : 16;
    char **nn = realloc(l->name, cap * sizeof *nn);
    if (!nn)
      return 1;
    l->name = nn;
    cairn_cf *nc = realloc(l->cf, cap * sizeof *nc);
    if (!nc)
      return 1;
    l->cf = nc;
    l->cap = cap;
  }
  size_t len = strlen(name);
  if (!(l->name[l->n] = malloc(len + 1)))
    return 1;
  memcpy(l->name[l->n], name, len + 1);
  l->cf[l->n++] = cf;
  return 0;
}

void ops_cfs_free(ops_cfs *l) {
  for (size_t i = 0; i < l->n; i++)
    free(l->name[i]);
  free(l->name);
  free(l->cf);
  memset(l, 0, sizeof *l);
}

int ops_cfs_get(cairn_txn *txn, ops_cfs *l) {
  int rc = cairn_cf_list(txn, collect, l);
  if (rc == 1)
    rc = cairn__seterr(CAIRN_NOMEM, "out of memory listing column families");
  return rc;
}

static int dump_cf(dumper *d, cairn_txn *txn, const char *name, cairn_cf cf,
                   uint64_t *total) {
  int rc;
  cf_state *s = txn_cf(txn, cf, &rc);
  if (!s)
    return rc;
  uint64_t entries;
  if ((rc = view_entries(txn, s, &entries)) != CAIRN_OK)
    return rc;
  char line[64];
  snprintf(line, sizeof line, " entries=%llu\n", (unsigned long long)entries);
  if ((rc = d_str(d, "cf ")) || (rc = d_hex(d, name, strlen(name))) ||
      (rc = d_str(d, line)))
    return rc;
  cairn_cursor *c;
  if ((rc = cairn_cursor_open(txn, cf, &c)) != CAIRN_OK)
    return rc;
  uint64_t n = 0;
  for (rc = cairn_cursor_first(c); rc == CAIRN_OK; rc = cairn_cursor_next(c)) {
    cairn_slice k, v;
    if ((rc = cairn_cursor_get(c, &k, &v)) || (rc = d_put(d, " ", 1)) ||
        (rc = d_hex(d, k.data, k.size)) || (rc = d_put(d, ":", 1)) ||
        (rc = d_hex(d, v.data, v.size)) || (rc = d_put(d, "\n", 1)))
      break;
    n++;
  }
  cairn_cursor_close(c);
  if (rc != CAIRN_NOTFOUND)
    return rc;
  if (n != entries)
    return cairn__seterr(CAIRN_CORRUPT,
                         "column family '%s': %llu entries found, the "
                         "catalog records %llu",
                         name, (unsigned long long)n,
                         (unsigned long long)entries);
  *total += n;
  return CAIRN_OK;
}

int cairn_dump(cairn_db *db, cairn_write_fn write, void *ctx) {
  if (!db || !write)
    return cairn__seterr(CAIRN_INVALID, "cairn_dump: db or write is NULL");
  dumper d = {write, ctx, malloc(DUMP_BUF), 0};
  if (!d.buf)
    return cairn__seterr(CAIRN_NOMEM, "out of memory");
  cairn_txn *txn = NULL;
  ops_cfs l = {0};
  uint64_t total = 0;
  int rc = cairn_begin(db, CAIRN_TXN_RDONLY, &txn);
  if (!rc)
    rc = ops_cfs_get(txn, &l);
  char line[96];
  if (!rc) {
    snprintf(line, sizeof line, "cairn-dump %d page_size=%u\n", DUMP_VERSION,
             (unsigned)txn->snap.page_size);
    rc = d_str(&d, line);
  }
  for (size_t i = 0; i < l.n && !rc; i++)
    rc = dump_cf(&d, txn, l.name[i], l.cf[i], &total);
  if (!rc) {
    snprintf(line, sizeof line, "end cfs=%zu entries=%llu\n", l.n,
             (unsigned long long)total);
    rc = d_str(&d, line);
  }
  if (!rc)
    rc = d_flush(&d);
  cairn_abort(txn);
  ops_cfs_free(&l);
  free(d.buf);
  if (!rc)
    cairn__clearerr();
  return rc;
}

/* ---- load --------------------------------------------------------------- */

enum { L_START, L_WORD, L_KEY, L_VAL, L_CR, L_DONE };

typedef struct loader {
  cairn_db *db;
  cairn_txn *txn;
  uint64_t line;
  int state;
  int seen_header;
  /* keyword line being gathered */
  char word[1200];
  size_t wlen;
  /* the current data line */
  uint8_t key[CAIRN_MAX_KEY_SIZE];
  size_t klen;
  uint8_t prev[CAIRN_MAX_KEY_SIZE]; /* the previous key of the section */
  size_t prevlen;
  int have_prev;
  uint8_t *val;
  size_t vlen, vcap;
  int nib; /* pending high nibble, or -1 */
  /* the current column family */
  int in_cf;
  cairn_cf cf;
  char cfname[CAIRN_MAX_CF_NAME + 1];
  uint64_t cf_want, cf_got;
  char **done; /* names of finished sections, to refuse duplicates */
  size_t ndone;
  uint64_t total, cfs, batch;
} loader;

#define BAD(l, ...) bad_line(l, __VA_ARGS__)

static int bad_line(loader *l, const char *fmt, ...) CAIRN_PRINTF(2, 3);
static int bad_line(loader *l, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return cairn__seterr(CAIRN_CORRUPT, "dump line %llu: %s",
                       (unsigned long long)l->line, msg);
}

static int hexv(int c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

static int ensure_txn(loader *l) {
  if (l->txn)
    return CAIRN_OK;
  int rc = cairn_begin(l->db, 0, &l->txn);
  if (rc)
    l->txn = NULL;
  return rc;
}

/* Commit the batch; the final one is durable on return. */
static int commit_batch(loader *l, int final) {
  if (!l->txn)
    return CAIRN_OK;
  int rc = cairn_commit_ex(l->txn, final ? CAIRN_DURABILITY_SYNC
                                         : CAIRN_DURABILITY_LAZY);
  l->txn = NULL;
  l->batch = 0;
  return rc;
}

static int finish_cf(loader *l) {
  if (!l->in_cf)
    return CAIRN_OK;
  if (l->cf_got != l->cf_want)
    return BAD(l,
               "column family '%s' has %llu entries, its section line says "
               "%llu (truncated or edited dump?)",
               l->cfname, (unsigned long long)l->cf_got,
               (unsigned long long)l->cf_want);
  char **n = realloc(l->done, (l->ndone + 1) * sizeof *n);
  if (!n)
    return cairn__seterr(CAIRN_NOMEM, "out of memory");
  l->done = n;
  size_t len = strlen(l->cfname);
  if (!(n[l->ndone] = malloc(len + 1)))
    return cairn__seterr(CAIRN_NOMEM, "out of memory");
  memcpy(n[l->ndone++], l->cfname, len + 1);
  l->in_cf = 0;
  return CAIRN_OK;
}

/* Parse "name=<decimal>" into *out. */
static int parse_field(const char *tok, const char *name, uint64_t *out) {
  size_t n = strlen(name);
  if (strncmp(tok, name, n) != 0 || tok[n] != '=' || !tok[n + 1])
    return -1;
  uint64_t v = 0;
  for (const char *p = tok + n + 1; *p; p++) {
    if (*p < '0' || *p > '9' || v > (UINT64_MAX - 9) / 10)
      return -1;
    v = v * 10 + (uint64_t)(*p - '0');
  }
  *out = v;
  return 0;
}

/* Split the keyword line into at most 8 space-separated tokens. */
static int tokens(char *s, char **tok, int max) {
  int n = 0;
  while (*s && n < max) {
    while (*s == ' ')
      *s++ = 0;
    if (!*s)
      break;
    tok[n++] = s;
    while (*s && *s != ' ')
      s++;
  }
  return *s ? -1 : n;
}

static int word_line(loader *l) {
  l->word[l->wlen] = 0;
  if (l->wlen && l->word[l->wlen - 1] == '\r')
    l->word[--l->wlen] = 0;
  if (l->wlen == 0 || l->word[0] == '#')
    return CAIRN_OK; /* blank lines and comments */
  char *tok[8];
  int n = tokens(l->word, tok, 8);
  if (n < 1)
    return BAD(l, "too many fields");
  if (!l->seen_header) {
    uint64_t ps;
    if (strcmp(tok[0], "cairn-dump") != 0 || n < 2)
      return BAD(l, "not a cairn dump (the first line must be "
                    "\"cairn-dump 1 page_size=N\")");
    if (strcmp(tok[1], "1") != 0)
      return cairn__seterr(CAIRN_VERSION,
                           "dump line %llu: dump format version %s (this "
                           "cairn reads %d)",
                           (unsigned long long)l->line, tok[1], DUMP_VERSION);
    for (int i = 2; i < n; i++)
      if (strncmp(tok[i], "page_size=", 10) == 0 &&
          parse_field(tok[i], "page_size", &ps))
        return BAD(l, "bad page_size field");
    l->seen_header = 1;
    return CAIRN_OK;
  }
  if (strcmp(tok[0], "cf") == 0) {
    int rc = finish_cf(l);
    if (rc)
      return rc;
    uint64_t want;
    if (n != 3 || parse_field(tok[2], "entries", &want))
      return BAD(l, "expected \"cf NAME-IN-HEX entries=N\"");
    size_t hl = strlen(tok[1]);
    if (hl % 2 || hl == 0 || hl / 2 > CAIRN_MAX_CF_NAME)
      return BAD(l, "column family name must be 1..%u bytes of hex",
                 CAIRN_MAX_CF_NAME);
    for (size_t i = 0; i < hl / 2; i++) {
      int hi = hexv((unsigned char)tok[1][2 * i]);
      int lo = hexv((unsigned char)tok[1][2 * i + 1]);
      if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
        return BAD(l, "column family name: bad hex or a NUL byte");
      l->cfname[i] = (char)(hi << 4 | lo);
    }
    l->cfname[hl / 2] = 0;
    for (size_t i = 0; i < l->ndone; i++)
      if (strcmp(l->done[i], l->cfname) == 0)
        return BAD(l, "column family '%s' appears twice", l->cfname);
    if ((rc = ensure_txn(l)) != CAIRN_OK)
      return rc;
    rc = cairn_cf_open(l->txn, l->cfname, CAIRN_CF_CREATE, &l->cf);
    if (rc)
      return rc;
    l->in_cf = 1;
    l->have_prev = 0;
    l->cf_want = want;
    l->cf_got = 0;
    l->cfs++;
    return CAIRN_OK;
  }
  if (strcmp(tok[0], "end") == 0) {
    uint64_t cfs, entries;
    int rc = finish_cf(l);
    if (rc)
      return rc;
    if (n != 3 || parse_field(tok[1], "cfs", &cfs) ||
        parse_field(tok[2], "entries", &entries))
      return BAD(l, "expected \"end cfs=N entries=N\"");
    if (cfs != l->cfs || entries != l->total)
      return BAD(l,
                 "the dump holds %llu column families and %llu entries, the "
                 "end line says %llu and %llu",
                 (unsigned long long)l->cfs, (unsigned long long)l->total,
                 (unsigned long long)cfs, (unsigned long long)entries);
    l->state = L_DONE;
    return CAIRN_OK;
  }
  return BAD(l, "unknown line \"%.40s\"", tok[0]);
}

static cairn_slice slice(const void *p, size_t n) {
  cairn_slice s = {n ? p : "", n};
  return s;
}

static int put_entry(loader *l) {
  if (l->nib >= 0)
    return BAD(l, "odd number of hex digits in the value");
  /* Keys ascend strictly: a repeated key would silently replace the
   * earlier value and the counts would no longer describe the data. */
  if (l->have_prev) {
    size_t m = l->prevlen < l->klen ? l->prevlen : l->klen;
    int c = m ? memcmp(l->prev, l->key, m) : 0;
    if (c > 0 || (c == 0 && l->prevlen >= l->klen))
      return BAD(l, "key %s the previous one (keys must ascend strictly)",
                 c == 0 && l->prevlen == l->klen ? "repeats" : "is below");
  }
  memcpy(l->prev, l->key, l->klen);
  l->prevlen = l->klen;
  l->have_prev = 1;
  int rc = ensure_txn(l);
  if (!rc)
    rc = cairn_put(l->txn, l->cf, slice(l->key, l->klen),
                   slice(l->val, l->vlen), 0);
  if (rc)
    return rc;
  l->cf_got++;
  l->total++;
  l->batch += l->klen + l->vlen + 16;
  if (l->batch >= LOAD_BATCH_BYTES)
    rc = commit_batch(l, 0);
  return rc;
}

/* Append one decoded byte to the value being read. */
static int val_push(loader *l, int byte) {
  if (l->vlen == l->vcap) {
    if (l->vcap >= CAIRN_MAX_VALUE_SIZE)
      return BAD(l, "value longer than %u bytes", CAIRN_MAX_VALUE_SIZE);
    size_t cap = l->vcap ? 2 * l->vcap : 4096;
    uint8_t *nv = realloc(l->val, cap);
    if (!nv)
      return cairn__seterr(CAIRN_NOMEM, "out of memory");
    l->val = nv;
    l->vcap = cap;
  }
  l->val[l->vlen++] = (uint8_t)byte;
  return CAIRN_OK;
}

/* Feed n bytes of input through the line state machine. */
static int feed(loader *l, const uint8_t *p, size_t n) {
  for (size_t i = 0; i < n; i++) {
    int c = p[i];
    switch (l->state) {
    case L_DONE:
      if (c != '\n' && c != '\r' && c != ' ')
        return BAD(l, "data after the end line");
      break;
    case L_START:
      l->line++;
      if (c == ' ') {
        if (!l->seen_header || !l->in_cf)
          return BAD(l, "a data line outside a column family section");
        l->state = L_KEY;
        l->klen = l->vlen = 0;
        l->nib = -1;
        break;
      }
      l->state = L_WORD;
      l->wlen = 0;
      /* fall through */
    case L_WORD:
      if (c == '\n') {
        int rc = word_line(l);
        if (rc)
          return rc;
        if (l->state != L_DONE)
          l->state = L_START;
        break;
      }
      if (l->wlen == sizeof l->word - 1)
        return BAD(l, "line too long");
      l->word[l->wlen++] = (char)c;
      break;
    case L_KEY:
      if (c == ':') {
        if (l->nib >= 0)
          return BAD(l, "odd number of hex digits in the key");
        l->state = L_VAL;
        break;
      }
      if (hexv(c) < 0)
        return BAD(l, c == '\n' ? "data line without ':'"
                                : "bad character in a key");
      if (l->nib < 0) {
        l->nib = hexv(c);
        break;
      }
      if (l->klen == CAIRN_MAX_KEY_SIZE)
        return BAD(l, "key longer than %u bytes", CAIRN_MAX_KEY_SIZE);
      l->key[l->klen++] = (uint8_t)(l->nib << 4 | hexv(c));
      l->nib = -1;
      break;
    case L_CR:
      if (c != '\n')
        return BAD(l, "carriage return inside a data line");
      {
        int rc = put_entry(l);
        if (rc)
          return rc;
      }
      l->state = L_START;
      break;
    case L_VAL: {
      /* the hot loop: decode a run of hex digits at once */
      size_t j = i;
      while (j + 1 < n && hexv(p[j]) >= 0 && hexv(p[j + 1]) >= 0 &&
             l->nib < 0) {
        int rc = val_push(l, hexv(p[j]) << 4 | hexv(p[j + 1]));
        if (rc)
          return rc;
        j += 2;
      }
      if (j > i) {
        i = j - 1;
        break;
      }
      if (c == '\r') { /* CRLF line ends (a dump that went through DOS) */
        l->state = L_CR;
        break;
      }
      if (c == '\n') {
        int rc = put_entry(l);
        if (rc)
          return rc;
        l->state = L_START;
        break;
      }
      if (hexv(c) < 0)
        return BAD(l, "bad character in a value");
      if (l->nib < 0) {
        l->nib = hexv(c);
        break;
      }
      int rc = val_push(l, l->nib << 4 | hexv(c));
      if (rc)
        return rc;
      l->nib = -1;
      break;
    }
    }
  }
  return CAIRN_OK;
}

/* Refuse anything but an empty database. */
static int check_empty(loader *l) {
  int rc = ensure_txn(l);
  ops_cfs cl = {0};
  if (!rc)
    rc = ops_cfs_get(l->txn, &cl);
  for (size_t i = 0; i < cl.n && !rc; i++) {
    cf_state *s = txn_cf(l->txn, cl.cf[i], &rc);
    uint64_t n = 0;
    if (s)
      rc = view_entries(l->txn, s, &n);
    if (s && !rc && (cl.cf[i] != CAIRN_DEFAULT_CF || n))
      rc = cairn__seterr(CAIRN_EXISTS,
                         "cairn_load: the database is not empty (column "
                         "family '%s'%s); load into a new database",
                         cl.name[i], n ? " holds data" : " exists");
  }
  ops_cfs_free(&cl);
  return rc;
}

int cairn_load(cairn_db *db, cairn_read_fn read, void *ctx) {
  if (!db || !read)
    return cairn__seterr(CAIRN_INVALID, "cairn_load: db or read is NULL");
  loader l;
  memset(&l, 0, sizeof l);
  l.db = db;
  l.state = L_START;
  l.nib = -1;
  uint8_t *buf = malloc(DUMP_BUF);
  int rc = buf ? check_empty(&l) : cairn__seterr(CAIRN_NOMEM, "out of memory");
  while (!rc) {
    size_t got = 0;
    int r = read(ctx, buf, DUMP_BUF, &got);
    if (r) {
      rc = ops_cb_status(r, "input");
      break;
    }
    if (got > DUMP_BUF) {
      rc = cairn__seterr(CAIRN_INVALID, "the input callback returned more "
                                        "than it was asked for");
      break;
    }
    if (got == 0)
      break;
    rc = feed(&l, buf, got);
  }
  if (!rc && l.state != L_DONE)
    rc = l.state == L_START && !l.seen_header && l.line == 0
             ? cairn__seterr(CAIRN_CORRUPT, "the dump is empty")
             : cairn__seterr(CAIRN_CORRUPT,
                             "the dump ends at line %llu before its end line "
                             "(truncated?)",
                             (unsigned long long)l.line);
  if (!rc)
    rc = commit_batch(&l, 1);
  if (rc) {
    char msg[600];
    snprintf(msg, sizeof msg, "%s", cairn_errmsg());
    cairn_abort(l.txn);
    cairn__seterr(rc, "%s", msg);
  }
  for (size_t i = 0; i < l.ndone; i++)
    free(l.done[i]);
  free(l.done);
  free(l.val);
  free(buf);
  if (!rc)
    cairn__clearerr();
  return rc;
}
