/*
 * test_model.c — model-based random testing of the whole engine.
 *
 * Proves that every observable result of cairn equals that of a trivially
 * correct reference (sorted in-memory maps, tests/test_support.c) over
 * thousands of seeded random operation sequences: put, put-if-absent, del,
 * get, commit (sync and lazy), abort, close+reopen (with transactions still
 * open, which close must abort), column family create/drop/list, read
 * snapshots held across later commits, cursor walks (forward, reverse, seek,
 * seek_le, mixed directions, [from,to) bounds, prefixes), cursors that keep
 * walking while their write transaction modifies the tree, cf statistics and
 * cairn_check. Keys are 0..40 bytes with many shared prefixes (including
 * 0x00 and 0xff runs); values are mostly small with some large ones (up to
 * ~200 KiB), at 4, 16 and 64 KiB pages, on the memory platform (cached
 * mode, sometimes with a tiny page cache) and a share on the unix platform
 * (mmap) where it exists. Every step is checked as it happens; the whole
 * content is compared with the model often and after every commit/reopen.
 *
 * A failure prints the seed and op index. Replay one sequence with
 *   CAIRN_MODEL_SEED=N [CAIRN_MODEL_VERBOSE=1] ./test_model
 * CAIRN_TEST_SCALE scales the number of sequences (default 1: 1500, every
 * tenth of them 1000 ops long instead of 150).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn.h"
#include "platform.h"
#include "test_util.h"

#include "test_support.h"

#define NNAMES 4
static const char *const NAMES[NNAMES] = {"default", "c1", "c2", "c3"};

#define MAXSNAP 2

typedef struct snap {
  cairn_txn *t;
  ts_state st;
} snap;

typedef struct seq {
  uint64_t seed;
  ts_rng r;
  int op;
  int verbose;
  const char *plat;
  char path[4200];
  uint32_t psize;
  cairn_durability dur;
  cairn_db *db;
  ts_state com;  /* committed */
  ts_state pend; /* the write txn's view (valid while w) */
  cairn_txn *w;
  cairn_cf hcom[NNAMES];
  int hcom_ok[NNAMES];
  cairn_cf hpend[NNAMES];
  int hpend_ok[NNAMES];
  snap snaps[MAXSNAP];
  int nsnaps;
  int failed;
  uint8_t *vbuf; /* scratch for values */
} seq;

static int g_verbose;
static long g_ops, g_commits, g_reopens, g_walks, g_checks;

/* ---- failure bookkeeping ------------------------------------------------- */

static int note(seq *s, int ok) {
  if (!ok)
    s->failed = 1;
  return ok && !s->failed;
}
#define SCHECK(s, c) note(s, TCHECK(c))
#define SCHECK_RC(s, e, w) note(s, TCHECK_RC(e, w))
#define SCHECK_OK(s, e) SCHECK_RC(s, e, CAIRN_OK)

static void set_ctx(seq *s, const char *what) {
  ts_set_ctx("seed=%llu op=%d (%s) platform=%s page=%u",
             (unsigned long long)s->seed, s->op, what, s->plat, s->psize);
  if (s->verbose)
    printf("  op %d: %s\n", s->op, what);
}

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void
vlog(seq *s, const char *fmt, ...) {
  va_list ap;
  if (!s->verbose)
    return;
  printf("    ");
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  printf("\n");
}

/* ---- generators ---------------------------------------------------------- */

static const uint8_t PREFIXES[][6] = {{0},
                                      {1, 'a'},
                                      {2, 'a', 'b'},
                                      {3, 'a', 'b', 'c'},
                                      {1, 'b'},
                                      {5, 'u', 's', 'e', 'r', '/'},
                                      {1, 0xff},
                                      {2, 0xff, 0xff},
                                      {1, 0x00},
                                      {2, 0x00, 0x00},
                                      {3, 0xff, 0xff, 0xff}};
static const uint8_t ALPHA[] = {0x00, 0x01, 'a',  'b',  'c',
                                'z',  0x7f, 0x80, 0xfe, 0xff};

/* A fresh key: a shared prefix plus a short suffix, 0..40 bytes. */
static size_t gen_key(ts_rng *r, uint8_t *k) {
  const uint8_t *p = PREFIXES[ts_below(r, sizeof PREFIXES / sizeof *PREFIXES)];
  size_t n = p[0], suf;
  memcpy(k, p + 1, n);
  if (ts_chance(r, 1, 10))
    suf = ts_below(r, 41 - n);
  else
    suf = ts_below(r, 5);
  for (size_t i = 0; i < suf; i++)
    k[n + i] = ts_chance(r, 1, 3) ? ALPHA[ts_below(r, sizeof ALPHA)]
                                  : (uint8_t)ts_below(r, 256);
  return n + suf;
}

/* A key: usually an existing one of m, else fresh. */
static size_t pick_key(ts_rng *r, const ts_map *m, uint8_t *k, int existing) {
  if (m && m->n && (unsigned)ts_below(r, 100) < (unsigned)existing) {
    const ts_ent *e = &m->e[ts_below(r, m->n)];
    memcpy(k, e->key, e->klen);
    /* sometimes a neighbour: the key with one byte more or less */
    if (ts_chance(r, 1, 8)) {
      if (e->klen > 0 && ts_chance(r, 1, 2))
        return e->klen - 1;
      if (e->klen < 40) {
        k[e->klen] = ALPHA[ts_below(r, sizeof ALPHA)];
        return e->klen + 1;
      }
    }
    return e->klen;
  }
  return gen_key(r, k);
}

static size_t gen_vlen(seq *s) {
  uint64_t x = ts_below(&s->r, 1000);
  if (x < 700)
    return (size_t)ts_below(&s->r, 101);
  if (x < 900)
    return (size_t)(100 + ts_below(&s->r, 2 * s->psize));
  if (x < 985)
    return (size_t)ts_below(&s->r, 20001);
  return (size_t)ts_below(&s->r, 200001);
}

/* ---- handles ---------------------------------------------------------------
 */

/* The handle of NAMES[i] in txn t, whose view is st. hk/hok: handles known to
 * be valid in this view (may be NULL). Returns 1 if the cf exists (*out
 * set), 0 if it does not, -1 on a failed check. */
static int handle(seq *s, cairn_txn *t, const ts_state *st, cairn_cf *hk,
                  int *hok, int i, cairn_cf *out) {
  int exists = ts_state_find(st, NAMES[i]) >= 0;
  if (hk && hok[i] && ts_chance(&s->r, 3, 4)) {
    *out = hk[i];
    vlog(s, "cf %s: known handle %u", NAMES[i], (unsigned)hk[i]);
    return 1;
  }
  cairn_cf h = 0xdeadbeef;
  int rc = cairn_cf_open(t, NAMES[i], 0, &h);
  if (!SCHECK_RC(s, rc, exists ? CAIRN_OK : CAIRN_NOTFOUND))
    return -1;
  vlog(s, "cf_open(%s) = %d, handle %u (model: %s)", NAMES[i], rc, (unsigned)h,
       exists ? "exists" : "absent");
  if (!exists)
    return 0;
  if (hk && hok[i] && !SCHECK(s, h == hk[i]))
    return -1;
  if (hk) {
    hk[i] = h;
    hok[i] = 1;
  }
  *out = h;
  return 1;
}

/* ---- checks of one read ----------------------------------------------------
 */

static int check_get(seq *s, cairn_txn *t, cairn_cf h, const ts_map *m,
                     const uint8_t *k, size_t kn) {
  const ts_ent *e = ts_map_get(m, k, kn);
  cairn_slice v = {0, 0};
  int rc = cairn_get(t, h, ts_sl(k, kn), &v);
  if (!SCHECK_RC(s, rc, e ? CAIRN_OK : CAIRN_NOTFOUND))
    return 0;
  if (e && !SCHECK(s, ts_value_eq(v.data, v.size, e->vseed, e->vlen))) {
    printf("    value of a %zu-byte key: got %zu bytes, want %u\n", kn, v.size,
           e->vlen);
    return 0;
  }
  return 1;
}

static int full_compare(seq *s, cairn_txn *t, const ts_state *st) {
  char why[512];
  int rc = ts_db_compare(t, st, why, sizeof why);
  if (rc != 0) {
    SCHECK(s, rc == 0);
    printf("    content differs from the model: %s\n", why);
    return 0;
  }
  return 1;
}

/* ---- cursor walks
 * ------------------------------------------------------------ */

/* Check the cursor is at model index idx (or unpositioned if idx < 0 after
 * rc NOTFOUND). */
static int at(seq *s, cairn_cursor *c, int rc, const ts_map *m, long idx,
              const char *move) {
  if (idx < 0) {
    if (!SCHECK_RC(s, rc, CAIRN_NOTFOUND)) {
      printf("    cursor %s: expected the end of the range\n", move);
      return 0;
    }
    return 1;
  }
  if (!SCHECK_OK(s, rc)) {
    printf("    cursor %s: expected model entry %ld of %zu\n", move, idx, m->n);
    return 0;
  }
  cairn_slice k, v;
  if (!SCHECK_OK(s, cairn_cursor_get(c, &k, &v)))
    return 0;
  const ts_ent *e = &m->e[idx];
  if (!SCHECK(s, ts_keycmp(k.data, k.size, e->key, e->klen) == 0) ||
      !SCHECK(s, ts_value_eq(v.data, v.size, e->vseed, e->vlen))) {
    printf("    cursor %s: at a %zu-byte key, model entry %ld (%u-byte key)\n",
           move, k.size, idx, e->klen);
    return 0;
  }
  return 1;
}

/* First index whose key is > k. */
static size_t upper_idx(const ts_map *m, const uint8_t *k, size_t kn) {
  int found;
  size_t i = ts_map_lower(m, k, kn, &found);
  return i + (size_t)found;
}

static int has_prefix(const ts_ent *e, const uint8_t *p, size_t pn) {
  return e->klen >= pn && (pn == 0 || memcmp(e->key, p, pn) == 0);
}

/* A random walk of a cursor over cf h of txn t against map m: a random range
 * (none, bounds or prefix), then positioning moves and runs of next/prev. */
static int cursor_walk(seq *s, cairn_txn *t, cairn_cf h, const ts_map *m) {
  cairn_cursor *c = NULL;
  uint8_t a[48], b[48];
  size_t an = 0, bn = 0;
  long lo = 0, hi = (long)m->n;
  int ok = 1;
  g_walks++;
  if (!SCHECK_OK(s, cairn_cursor_open(t, h, &c)))
    return 0;
  int range = (int)ts_below(&s->r, 4);
  if (range == 1) { /* bounds, either side may be open */
    int has_from = ts_chance(&s->r, 4, 5), has_to = ts_chance(&s->r, 4, 5);
    an = pick_key(&s->r, m, a, 60);
    bn = pick_key(&s->r, m, b, 60);
    if (ts_keycmp(a, an, b, bn) > 0 && ts_chance(&s->r, 9, 10)) {
      uint8_t tmp[48];
      size_t tn = an;
      memcpy(tmp, a, an);
      memcpy(a, b, bn);
      an = bn;
      memcpy(b, tmp, tn);
      bn = tn;
    }
    if (has_from)
      lo = (long)ts_map_lower(m, a, an, NULL);
    if (has_to)
      hi = (long)ts_map_lower(m, b, bn, NULL);
    if (hi < lo)
      hi = lo;
    ok = SCHECK_OK(
        s, cairn_cursor_bounds(c, has_from ? ts_sl(a, an) : ts_sl(NULL, 0),
                               has_to ? ts_sl(b, bn) : ts_sl(NULL, 0)));
  } else if (range == 2) { /* prefix */
    an = pick_key(&s->r, m, a, 70);
    if (an > 0 && ts_chance(&s->r, 2, 3))
      an = (size_t)ts_below(&s->r, an + 1);
    lo = (long)ts_map_lower(m, a, an, NULL);
    hi = lo;
    while (hi < (long)m->n && has_prefix(&m->e[hi], a, an))
      hi++;
    ok = SCHECK_OK(s, cairn_cursor_prefix(c, ts_sl(a, an)));
  }
  int kind = (int)ts_below(&s->r, 4);
  long idx = -1;
  int rc;
  for (int round = 0; ok && round < 3; round++) {
    /* position */
    switch (round == 0 ? kind : (int)ts_below(&s->r, 4)) {
    case 0:
      rc = cairn_cursor_first(c);
      idx = lo < hi ? lo : -1;
      ok = at(s, c, rc, m, idx, "first");
      break;
    case 1:
      rc = cairn_cursor_last(c);
      idx = lo < hi ? hi - 1 : -1;
      ok = at(s, c, rc, m, idx, "last");
      break;
    case 2: {
      bn = pick_key(&s->r, m, b, 50);
      rc = cairn_cursor_seek(c, ts_sl(b, bn));
      long i = (long)ts_map_lower(m, b, bn, NULL);
      if (i < lo)
        i = lo;
      idx = i < hi ? i : -1;
      ok = at(s, c, rc, m, idx, "seek");
      break;
    }
    default: {
      bn = pick_key(&s->r, m, b, 50);
      rc = cairn_cursor_seek_le(c, ts_sl(b, bn));
      long i = (long)upper_idx(m, b, bn) - 1;
      if (i >= hi)
        i = hi - 1;
      idx = (i >= lo && i >= 0) ? i : -1;
      ok = at(s, c, rc, m, idx, "seek_le");
      break;
    }
    }
    /* a run of moves: full length sometimes, mixed directions sometimes */
    int full = ts_chance(&s->r, 1, 3);
    int dir = (kind == 1) ? -1 : 1;
    long steps = full ? (long)m->n + 2 : (long)ts_below(&s->r, 12);
    for (long st = 0; ok && idx >= 0 && st < steps; st++) {
      if (!full && ts_chance(&s->r, 1, 4))
        dir = -dir;
      if (dir > 0) {
        rc = cairn_cursor_next(c);
        idx = idx + 1 < hi ? idx + 1 : -1;
        ok = at(s, c, rc, m, idx, "next");
      } else {
        rc = cairn_cursor_prev(c);
        idx = idx - 1 >= lo ? idx - 1 : -1;
        ok = at(s, c, rc, m, idx, "prev");
      }
    }
  }
  cairn_cursor_close(c);
  return ok;
}

/* A cursor of the write txn walks while the txn puts and deletes around it,
 * including the key it is on; each move must land on the model's next key
 * after (or before) the key it was on. */
static int cursor_mutating_walk(seq *s, cairn_cf h, ts_map *m) {
  cairn_cursor *c = NULL;
  int forward = ts_chance(&s->r, 1, 2);
  uint8_t cur[48], k[48];
  size_t cn;
  int ok = 1, rc;
  if (!SCHECK_OK(s, cairn_cursor_open(s->w, h, &c)))
    return 0;
  rc = forward ? cairn_cursor_first(c) : cairn_cursor_last(c);
  long idx = m->n ? (forward ? 0 : (long)m->n - 1) : -1;
  ok = at(s, c, rc, m, idx, forward ? "first" : "last");
  for (int st = 0; ok && idx >= 0 && st < 30; st++) {
    cairn_slice ks;
    if (!SCHECK_OK(s, cairn_cursor_get(c, &ks, NULL)))
      break;
    cn = ks.size;
    memcpy(cur, ks.data, cn);
    int act = (int)ts_below(&s->r, 5);
    if (act == 0) { /* delete the current key */
      ok = SCHECK_OK(s, cairn_del(s->w, h, ts_sl(cur, cn)));
      ts_map_del(m, cur, cn);
    } else if (act == 1) { /* insert a key (maybe right next to us) */
      size_t kn = pick_key(&s->r, m, k, 30);
      size_t vn = (size_t)ts_below(&s->r, 64);
      uint64_t vs = ts_next(&s->r);
      ts_fill(s->vbuf, vn, vs);
      ok =
          SCHECK_OK(s, cairn_put(s->w, h, ts_sl(k, kn), ts_sl(s->vbuf, vn), 0));
      ts_map_put(m, k, kn, vs, vn);
    } else if (act == 2 && m->n) { /* delete some key */
      const ts_ent *e = &m->e[ts_below(&s->r, m->n)];
      memcpy(k, e->key, e->klen);
      size_t kn = e->klen;
      ok = SCHECK_OK(s, cairn_del(s->w, h, ts_sl(k, kn)));
      ts_map_del(m, k, kn);
    } else if (act == 3) { /* overwrite the current value */
      size_t vn = (size_t)ts_below(&s->r, 300);
      uint64_t vs = ts_next(&s->r);
      ts_fill(s->vbuf, vn, vs);
      ok = SCHECK_OK(s,
                     cairn_put(s->w, h, ts_sl(cur, cn), ts_sl(s->vbuf, vn), 0));
      ts_map_put(m, cur, cn, vs, vn);
    }
    if (!ok)
      break;
    size_t up = upper_idx(m, cur, cn);
    size_t lw = ts_map_lower(m, cur, cn, NULL);
    if (forward) {
      rc = cairn_cursor_next(c);
      idx = up < m->n ? (long)up : -1;
      ok = at(s, c, rc, m, idx, "next after a modification");
    } else {
      rc = cairn_cursor_prev(c);
      idx = lw > 0 ? (long)lw - 1 : -1;
      ok = at(s, c, rc, m, idx, "prev after a modification");
    }
  }
  cairn_cursor_close(c);
  return ok;
}

/* ---- operations ------------------------------------------------------------
 */

static int begin_write(seq *s) {
  if (s->w)
    return 1;
  set_ctx(s, "begin write");
  if (!SCHECK_OK(s, cairn_begin(s->db, 0, &s->w)))
    return 0;
  ts_state_copy(&s->pend, &s->com);
  memcpy(s->hpend, s->hcom, sizeof s->hpend);
  memcpy(s->hpend_ok, s->hcom_ok, sizeof s->hpend_ok);
  return 1;
}

/* A random existing cf of the write txn's view; its index in pend. */
static int pick_cf(seq *s, const ts_state *st) {
  return (int)ts_below(&s->r, (uint64_t)st->ncf);
}

static int name_index(const char *name) {
  for (int i = 0; i < NNAMES; i++)
    if (strcmp(NAMES[i], name) == 0)
      return i;
  return -1;
}

static int op_put(seq *s, unsigned flags) {
  uint8_t k[48];
  if (!begin_write(s))
    return 0;
  set_ctx(s, flags ? "put NOOVERWRITE" : "put");
  int ci = pick_cf(s, &s->pend);
  cairn_cf h;
  if (handle(s, s->w, &s->pend, s->hpend, s->hpend_ok,
             name_index(s->pend.name[ci]), &h) != 1)
    return 0;
  ts_map *m = &s->pend.map[ci];
  size_t kn = pick_key(&s->r, m, k, flags ? 50 : 40);
  size_t vn = gen_vlen(s);
  uint64_t vs = ts_next(&s->r);
  ts_fill(s->vbuf, vn, vs);
  const ts_ent *e = ts_map_get(m, k, kn);
  int want = (flags && e) ? CAIRN_EXISTS : CAIRN_OK;
  vlog(s, "put %zu-byte key, %zu-byte value in %s", kn, vn, s->pend.name[ci]);
  if (!SCHECK_RC(s, cairn_put(s->w, h, ts_sl(k, kn), ts_sl(s->vbuf, vn), flags),
                 want))
    return 0;
  if (want == CAIRN_OK)
    ts_map_put(m, k, kn, vs, vn);
  if (ts_chance(&s->r, 1, 2))
    return check_get(s, s->w, h, m, k, kn);
  return 1;
}

static int op_del(seq *s) {
  uint8_t k[48];
  if (!begin_write(s))
    return 0;
  set_ctx(s, "del");
  int ci = pick_cf(s, &s->pend);
  cairn_cf h;
  if (handle(s, s->w, &s->pend, s->hpend, s->hpend_ok,
             name_index(s->pend.name[ci]), &h) != 1)
    return 0;
  ts_map *m = &s->pend.map[ci];
  size_t kn = pick_key(&s->r, m, k, 75);
  int present = ts_map_get(m, k, kn) != NULL;
  vlog(s, "del %zu-byte key in %s (%s)", kn, s->pend.name[ci],
       present ? "present" : "absent");
  if (!SCHECK_RC(s, cairn_del(s->w, h, ts_sl(k, kn)),
                 present ? CAIRN_OK : CAIRN_NOTFOUND))
    return 0;
  ts_map_del(m, k, kn);
  if (ts_chance(&s->r, 1, 3))
    return check_get(s, s->w, h, m, k, kn);
  return 1;
}

/* Reads go to the write txn, a fresh read txn or a held snapshot. */
static int op_read(seq *s, int walk) {
  cairn_txn *t = NULL;
  const ts_state *st;
  cairn_cf *hk = NULL;
  int *hok = NULL, temp = 0;
  uint64_t x = ts_below(&s->r, 10);
  set_ctx(s, walk ? "cursor walk" : "get");
  if (s->w && x < 6) {
    t = s->w;
    st = &s->pend;
    hk = s->hpend;
    hok = s->hpend_ok;
  } else if (s->nsnaps && x < 8) {
    snap *sn = &s->snaps[ts_below(&s->r, (uint64_t)s->nsnaps)];
    t = sn->t;
    st = &sn->st;
  } else {
    if (!SCHECK_OK(s, cairn_begin(s->db, CAIRN_TXN_RDONLY, &t)))
      return 0;
    temp = 1;
    st = &s->com;
    hk = s->hcom;
    hok = s->hcom_ok;
  }
  int ok = 1;
  /* usually an existing cf, sometimes any name (maybe missing) */
  int ni;
  if (ts_chance(&s->r, 1, 8))
    ni = (int)ts_below(&s->r, NNAMES);
  else
    ni = name_index(st->name[pick_cf(s, st)]);
  cairn_cf h;
  int ex = handle(s, t, st, hk, hok, ni, &h);
  if (ex < 0) {
    ok = 0;
  } else if (ex == 1) {
    const ts_map *m = &st->map[ts_state_find(st, NAMES[ni])];
    if (walk) {
      ok = cursor_walk(s, t, h, m);
    } else {
      for (int i = 0; ok && i < 4; i++) {
        uint8_t k[48];
        size_t kn = pick_key(&s->r, m, k, 60);
        ok = check_get(s, t, h, m, k, kn);
      }
      if (ok && ts_chance(&s->r, 1, 4)) {
        cairn_cf_stat cs;
        /* (depth and pages describe the checkpointed tree; with the log,
         * later commits are in the overlay, so only entries is exact) */
        ok = SCHECK_OK(s, cairn_cf_stat_get(t, h, &cs)) &&
             SCHECK(s, cs.entries == m->n);
      }
    }
  }
  if (temp)
    cairn_abort(t);
  return ok;
}

/* Many puts at once (deep trees, splits) or the deletion of a run of
 * adjacent keys (merges, rebalancing). */
static int op_bulk(seq *s) {
  if (!begin_write(s))
    return 0;
  int ci = pick_cf(s, &s->pend);
  cairn_cf h;
  if (handle(s, s->w, &s->pend, s->hpend, s->hpend_ok,
             name_index(s->pend.name[ci]), &h) != 1)
    return 0;
  ts_map *m = &s->pend.map[ci];
  if (ts_chance(&s->r, 2, 3)) {
    set_ctx(s, "bulk put");
    int n = 20 + (int)ts_below(&s->r, 300);
    vlog(s, "bulk put of %d keys in %s", n, s->pend.name[ci]);
    for (int i = 0; i < n; i++) {
      uint8_t k[48];
      size_t kn = gen_key(&s->r, k);
      size_t vn = (size_t)ts_below(&s->r, 60);
      uint64_t vs = ts_next(&s->r);
      ts_fill(s->vbuf, vn, vs);
      if (!SCHECK_OK(s,
                     cairn_put(s->w, h, ts_sl(k, kn), ts_sl(s->vbuf, vn), 0)))
        return 0;
      ts_map_put(m, k, kn, vs, vn);
    }
    return 1;
  }
  set_ctx(s, "bulk delete of a run");
  if (!m->n)
    return 1;
  size_t from = (size_t)ts_below(&s->r, m->n);
  size_t n = 1 + (size_t)ts_below(&s->r, 150);
  if (from + n > m->n)
    n = m->n - from;
  vlog(s, "delete %zu adjacent keys in %s", n, s->pend.name[ci]);
  for (size_t i = 0; i < n; i++) {
    const ts_ent *e = &m->e[from];
    if (!SCHECK_OK(s, cairn_del(s->w, h, ts_sl(e->key, e->klen))))
      return 0;
    ts_map_del(m, e->key, e->klen);
  }
  return 1;
}

static int op_mutating_walk(seq *s) {
  if (!begin_write(s))
    return 0;
  set_ctx(s, "cursor walk while modifying");
  int ci = pick_cf(s, &s->pend);
  cairn_cf h;
  if (handle(s, s->w, &s->pend, s->hpend, s->hpend_ok,
             name_index(s->pend.name[ci]), &h) != 1)
    return 0;
  return cursor_mutating_walk(s, h, &s->pend.map[ci]);
}

static int compare_now(seq *s, const char *what) {
  cairn_txn *t = NULL;
  set_ctx(s, what);
  if (!SCHECK_OK(s, cairn_begin(s->db, CAIRN_TXN_RDONLY, &t)))
    return 0;
  int ok = full_compare(s, t, &s->com);
  cairn_abort(t);
  return ok;
}

static int op_commit(seq *s) {
  if (!s->w)
    return 1;
  cairn_durability d = CAIRN_DURABILITY_DEFAULT;
  uint64_t x = ts_below(&s->r, 10);
  if (x < 2)
    d = CAIRN_DURABILITY_SYNC;
  else if (x < 4)
    d = CAIRN_DURABILITY_LAZY;
  set_ctx(s, "commit");
  /* the write txn sees exactly its view before it commits */
  if (ts_chance(&s->r, 1, 4) && !full_compare(s, s->w, &s->pend))
    return 0;
  int rc = d == CAIRN_DURABILITY_DEFAULT && ts_chance(&s->r, 1, 2)
               ? cairn_commit(s->w)
               : cairn_commit_ex(s->w, d);
  s->w = NULL;
  if (!SCHECK_OK(s, rc))
    return 0;
  ts_state_free(&s->com);
  s->com = s->pend;
  memset(&s->pend, 0, sizeof s->pend);
  memcpy(s->hcom, s->hpend, sizeof s->hcom);
  memcpy(s->hcom_ok, s->hpend_ok, sizeof s->hcom_ok);
  g_commits++;
  if (ts_chance(&s->r, 1, 2))
    return compare_now(s, "compare after commit");
  return 1;
}

static void drop_pending(seq *s) {
  if (s->pend.ncf)
    ts_state_free(&s->pend);
  memset(&s->pend, 0, sizeof s->pend);
}

static int op_abort(seq *s) {
  if (!s->w)
    return 1;
  set_ctx(s, "abort");
  cairn_abort(s->w);
  s->w = NULL;
  drop_pending(s);
  return ts_chance(&s->r, 1, 3) ? compare_now(s, "compare after abort") : 1;
}

static void end_snap(seq *s, int i, int abort_it) {
  if (abort_it)
    cairn_abort(s->snaps[i].t);
  ts_state_free(&s->snaps[i].st);
  s->snaps[i] = s->snaps[--s->nsnaps];
}

static int op_snapshot(seq *s) {
  uint64_t x = ts_below(&s->r, 3);
  if (x == 0 && s->nsnaps < MAXSNAP) {
    set_ctx(s, "begin snapshot");
    snap *sn = &s->snaps[s->nsnaps];
    if (!SCHECK_OK(s, cairn_begin(s->db, CAIRN_TXN_RDONLY, &sn->t)))
      return 0;
    ts_state_copy(&sn->st, &s->com);
    s->nsnaps++;
    return 1;
  }
  if (!s->nsnaps)
    return 1;
  int i = (int)ts_below(&s->r, (uint64_t)s->nsnaps);
  set_ctx(s, "verify snapshot");
  int ok = full_compare(s, s->snaps[i].t, &s->snaps[i].st);
  if (x == 2)
    end_snap(s, i, 1);
  return ok;
}

static int op_cf_create(seq *s) {
  if (!begin_write(s))
    return 0;
  int ni = 1 + (int)ts_below(&s->r, NNAMES - 1);
  set_ctx(s, "cf create");
  int exists = ts_state_find(&s->pend, NAMES[ni]) >= 0;
  cairn_cf h = 0xdeadbeef;
  if (!SCHECK_OK(s, cairn_cf_open(s->w, NAMES[ni], CAIRN_CF_CREATE, &h)))
    return 0;
  vlog(s, "created %s: handle %u (model: %s)", NAMES[ni], (unsigned)h,
       exists ? "existed" : "new");
  if (exists) {
    if (s->hpend_ok[ni] && !SCHECK(s, h == s->hpend[ni]))
      return 0;
  } else {
    ts_state_add(&s->pend, NAMES[ni]);
    for (int j = 0; j < NNAMES; j++)
      if (j != ni && s->hpend_ok[j] && !SCHECK(s, s->hpend[j] != h))
        return 0;
  }
  s->hpend[ni] = h;
  s->hpend_ok[ni] = 1;
  return 1;
}

static int op_cf_drop(seq *s) {
  if (!begin_write(s))
    return 0;
  int ni = 1 + (int)ts_below(&s->r, NNAMES - 1);
  set_ctx(s, "cf drop");
  int idx = ts_state_find(&s->pend, NAMES[ni]);
  cairn_cf h;
  int ex = handle(s, s->w, &s->pend, s->hpend, s->hpend_ok, ni, &h);
  if (ex < 0)
    return 0;
  if (ex == 0)
    return 1;
  vlog(s, "drop %s (handle %u)", NAMES[ni], (unsigned)h);
  if (!SCHECK_OK(s, cairn_cf_drop(s->w, h)))
    return 0;
  ts_state_drop(&s->pend, idx);
  s->hpend_ok[ni] = 0;
  /* the dropped handle is dead at once */
  cairn_slice v;
  if (!SCHECK_RC(s, cairn_get(s->w, h, ts_sl("", 0), &v), CAIRN_NOTFOUND))
    return 0;
  return SCHECK_RC(s, cairn_cf_open(s->w, NAMES[ni], 0, &h), CAIRN_NOTFOUND);
}

static int open_db(seq *s, int create) {
  cairn_options o;
  ts_options(&o, s->plat, s->psize);
  o.flags = create ? CAIRN_OPEN_CREATE : 0;
  o.durability = s->dur;
  if (ts_chance(&s->r, 1, 4)) {
    o.flags |= CAIRN_OPEN_NOMMAP;
    o.cache_pages = 8 + (size_t)ts_below(&s->r, 64);
  }
  s->db = NULL;
  return SCHECK_OK(s, cairn_open(s->path, &o, &s->db));
}

static void report_problem(void *ctx, const char *problem) {
  (void)ctx;
  printf("    cairn_check: %s\n", problem);
}

static int op_check(seq *s) {
  if (s->w)
    return 1;
  set_ctx(s, "cairn_check");
  g_checks++;
  return SCHECK_OK(s, cairn_check(s->db, report_problem, NULL));
}

static int op_reopen(seq *s) {
  set_ctx(s, "close and reopen");
  /* close aborts whatever is still open: the write txn and snapshots */
  if (s->w && ts_chance(&s->r, 1, 2)) {
    cairn_abort(s->w);
  }
  s->w = NULL;
  drop_pending(s);
  while (s->nsnaps)
    end_snap(s, 0, ts_chance(&s->r, 1, 2));
  int rc = cairn_close(s->db);
  s->db = NULL;
  if (!SCHECK_OK(s, rc))
    return 0;
  if (!open_db(s, 0))
    return 0;
  memset(s->hcom_ok, 0, sizeof s->hcom_ok);
  s->hcom[0] = CAIRN_DEFAULT_CF;
  s->hcom_ok[0] = 1;
  g_reopens++;
  return compare_now(s, "compare after reopen");
}

/* ---- one sequence ----------------------------------------------------------
 */

static void run_seq(uint64_t seed, const char *plat, const char *dir,
                    int nops) {
  seq *s = calloc(1, sizeof *s);
  if (!s)
    abort();
  s->seed = seed;
  ts_rng_seed(&s->r, seed * 0x9e3779b97f4a7c15ull + 17);
  s->plat = plat;
  s->verbose = g_verbose;
  static const uint32_t ps[] = {4096, 16384, 65536};
  s->psize = ps[ts_below(&s->r, 3)];
  s->dur =
      ts_chance(&s->r, 1, 3) ? CAIRN_DURABILITY_LAZY : CAIRN_DURABILITY_SYNC;
  s->vbuf = malloc(200001 + 2 * 65536);
  if (!s->vbuf)
    abort();
  if (dir)
    snprintf(s->path, sizeof s->path, "%s/m%llu.db", dir,
             (unsigned long long)seed);
  else
    snprintf(s->path, sizeof s->path, "model-%llu.db",
             (unsigned long long)seed);
  ts_state_init(&s->com);
  s->hcom[0] = CAIRN_DEFAULT_CF;
  s->hcom_ok[0] = 1;
  if (s->verbose)
    printf("seed %llu: %s, %u-byte pages, %s, %d ops\n",
           (unsigned long long)seed, plat, s->psize,
           s->dur == CAIRN_DURABILITY_LAZY ? "lazy" : "sync", nops);
  s->op = -1;
  set_ctx(s, "create");
  if (!open_db(s, 1))
    goto out;
  for (s->op = 0; s->op < nops && !s->failed; s->op++) {
    uint64_t x = ts_below(&s->r, 1000);
    int ok;
    g_ops++;
    if (x < 300)
      ok = op_put(s, 0);
    else if (x < 350)
      ok = op_put(s, CAIRN_PUT_NOOVERWRITE);
    else if (x < 470)
      ok = op_del(s);
    else if (x < 610)
      ok = op_read(s, 0);
    else if (x < 700)
      ok = op_read(s, 1);
    else if (x < 730)
      ok = op_mutating_walk(s);
    else if (x < 800)
      ok = op_commit(s);
    else if (x < 820)
      ok = op_abort(s);
    else if (x < 835)
      ok = op_reopen(s);
    else if (x < 860)
      ok = op_cf_create(s);
    else if (x < 875)
      ok = op_cf_drop(s);
    else if (x < 925)
      ok = op_snapshot(s);
    else if (x < 935)
      ok = op_check(s);
    else if (x < 945)
      ok = op_bulk(s);
    else if (x < 985)
      ok = s->w ? (set_ctx(s, "compare write txn"),
                   full_compare(s, s->w, &s->pend))
                : compare_now(s, "compare");
    else
      ok = 1;
    if (!ok)
      s->failed = 1;
  }
  if (!s->failed) {
    s->op = nops;
    if (s->w && ts_chance(&s->r, 1, 2))
      op_commit(s);
    else
      op_abort(s);
  }
  if (!s->failed) {
    while (s->nsnaps)
      end_snap(s, 0, 1);
    compare_now(s, "final compare");
  }
  if (!s->failed)
    op_check(s);
  if (!s->failed)
    op_reopen(s);
  if (!s->failed)
    op_check(s);
out:
  if (s->failed)
    printf("FAILED: seed %llu at op %d (replay: CAIRN_MODEL_SEED=%llu "
           "CAIRN_MODEL_VERBOSE=1)\n",
           (unsigned long long)seed, s->op, (unsigned long long)seed);
  if (s->w)
    cairn_abort(s->w);
  s->w = NULL;
  drop_pending(s);
  while (s->nsnaps)
    end_snap(s, 0, 1);
  if (s->db)
    cairn_close(s->db);
  ts_state_free(&s->com);
  ts_file_remove(plat, s->path);
  free(s->vbuf);
  free(s);
}

/* Most sequences are short; every tenth is long and grows deeper trees. */
static int seq_ops(uint64_t seed) { return seed % 10 == 0 ? 1000 : 150; }

int main(void) {
  double t0 = ts_now_ms();
  const char *e = getenv("CAIRN_MODEL_SEED");
  const char *v = getenv("CAIRN_MODEL_VERBOSE");
  g_verbose = v && *v && *v != '0';
  char *dir = NULL;
#ifdef CAIRN_HAVE_UNIX_PLATFORM
  dir = ts_mkdtemp();
#endif
  int failed_seqs = 0;
  if (e && *e) {
    uint64_t seed = strtoull(e, NULL, 10);
    const char *plat = "memory";
#ifdef CAIRN_HAVE_UNIX_PLATFORM
    if (seed % 20 == 19)
      plat = "unix";
#endif
    run_seq(seed, plat, strcmp(plat, "unix") == 0 ? dir : NULL, seq_ops(seed));
  } else {
    long n = ts_scaled(1500, 20);
    for (long i = 0; i < n; i++) {
      uint64_t seed = (uint64_t)i + 1;
      const char *plat = "memory";
#ifdef CAIRN_HAVE_UNIX_PLATFORM
      if (seed % 20 == 19)
        plat = "unix";
#endif
      int before = test_failed_count;
      run_seq(seed, plat, strcmp(plat, "unix") == 0 ? dir : NULL,
              seq_ops(seed));
      if (test_failed_count != before && ++failed_seqs >= 10) {
        printf("stopping after 10 failed sequences\n");
        break;
      }
      cairn_platform_memory_reset();
    }
  }
  cairn_platform_memory_reset();
  if (dir) {
    ts_rmtree(dir);
    free(dir);
  }
  printf("test_model: %ld ops, %ld commits, %ld reopens, %ld cursor walks, "
         "%ld checks in %.1f s\n",
         g_ops, g_commits, g_reopens, g_walks, g_checks,
         (ts_now_ms() - t0) / 1000.0);
  return test_summary();
}
