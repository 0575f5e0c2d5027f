/*
 * test_overlay.c — the in-memory overlay of the write-ahead log mode
 * (core/overlay.c, core/view.c): commits since the last checkpoint live
 * there, over the checkpointed tree, until a checkpoint folds them in.
 *
 *   - gets, cursors (both directions, bounds) and entry counts merge the
 *     overlay with the tree: overwrites shadow tree entries, deletions
 *     hide them, and a key only in the overlay appears in order;
 *   - delete of a missing key is NOTFOUND and NOOVERWRITE of a present key
 *     is EXISTS whether the key is in the tree or only in the overlay;
 *   - an aborted txn's versions stay hidden, also from the next txn (which
 *     takes the same txn id);
 *   - a read txn and its cursor that began before a checkpoint keep their
 *     state while commits and checkpoints go on (readers hold the old
 *     overlay and tree), and the overlay's memory goes with the last one;
 *   - a cursor in a write txn sees the txn's own writes, including keys
 *     inserted right after its position;
 *   - the fold leaves the same content and counts in the tree (checked by
 *     cairn_check and a reopen);
 *   - the pages a checkpoint replaces are reused by the next one once no
 *     reader holds the old tree, so rewriting everything checkpoint after
 *     checkpoint does not grow the file; a reader of the old tree pins
 *     them until it ends;
 *   - appends (keys beyond their cf's greatest) skip the index and link at
 *     the tail, rewrites of present keys still find their node, and the
 *     Bloom filter in front of the index answers most absent keys;
 *   - the skip list itself: after new nodes join in groups (searched
 *     interleaved, then linked in key order), every level is the level
 *     below filtered by height, in order, with the writer's copies of the
 *     next key's prefix and cf beside each link.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn.h"
#include "overlay.h"
#include "platform.h"
#include "test_util.h"

#include "test_support.h"

static cairn_db *open_mem(const char *path, int create) {
  cairn_options o;
  ts_options(&o, "memory", 4096);
  if (create)
    o.flags |= CAIRN_OPEN_CREATE;
  cairn_db *db = NULL;
  CHECK_OK(cairn_open(path, &o, &db));
  return db;
}

static int put(cairn_txn *t, const char *k, const char *v) {
  return cairn_put(t, CAIRN_DEFAULT_CF, ts_str(k), ts_str(v), 0);
}

static int get_is(cairn_txn *t, const char *k, const char *want) {
  cairn_slice v;
  int rc = cairn_get(t, CAIRN_DEFAULT_CF, ts_str(k), &v);
  if (!want)
    return rc == CAIRN_NOTFOUND;
  return rc == CAIRN_OK && v.size == strlen(want) &&
         memcmp(v.data, want, v.size) == 0;
}

static uint64_t entries(cairn_txn *t) {
  cairn_cf_stat cs;
  return CHECK_OK(cairn_cf_stat_get(t, CAIRN_DEFAULT_CF, &cs)) ? cs.entries
                                                               : UINT64_MAX;
}

/* The keys a cursor visits, joined by ',' (forward or reverse). */
static void walk(cairn_txn *t, int forward, const char *lo, const char *hi,
                 char *out, size_t cap) {
  cairn_cursor *c = NULL;
  out[0] = 0;
  if (!CHECK_OK(cairn_cursor_open(t, CAIRN_DEFAULT_CF, &c)))
    return;
  if (lo || hi)
    CHECK_OK(cairn_cursor_bounds(c, lo ? ts_str(lo) : (cairn_slice){0},
                                 hi ? ts_str(hi) : (cairn_slice){0}));
  int rc = forward ? cairn_cursor_first(c) : cairn_cursor_last(c);
  size_t n = 0;
  while (rc == CAIRN_OK) {
    cairn_slice k, v;
    if (!CHECK_OK(cairn_cursor_get(c, &k, &v)))
      break;
    if (n + k.size + 2 < cap) {
      if (n)
        out[n++] = ',';
      memcpy(out + n, k.data, k.size);
      n += k.size;
      out[n] = 0;
    }
    rc = forward ? cairn_cursor_next(c) : cairn_cursor_prev(c);
  }
  CHECK_RC(rc, CAIRN_NOTFOUND);
  cairn_cursor_close(c);
}

static void test_merge(void) {
  ts_set_ctx("merge of overlay and tree");
  cairn_platform_memory_reset();
  cairn_db *db = open_mem("ov.db", 1);
  if (!db)
    return;
  cairn_txn *t = NULL;
  /* the tree: b d f h */
  CHECK_OK(cairn_begin(db, 0, &t));
  CHECK_OK(put(t, "b", "tree-b"));
  CHECK_OK(put(t, "d", "tree-d"));
  CHECK_OK(put(t, "f", "tree-f"));
  CHECK_OK(put(t, "h", "tree-h"));
  CHECK_OK(cairn_commit(t));
  CHECK_OK(cairn_checkpoint(db));
  /* the overlay: a new, d overwritten, f deleted, g new, z new then
   * deleted */
  CHECK_OK(cairn_begin(db, 0, &t));
  CHECK_OK(put(t, "a", "ov-a"));
  CHECK_OK(put(t, "d", "ov-d"));
  CHECK_OK(cairn_del(t, CAIRN_DEFAULT_CF, ts_str("f")));
  CHECK_OK(put(t, "g", "ov-g"));
  CHECK_OK(put(t, "z", "ov-z"));
  CHECK_OK(cairn_del(t, CAIRN_DEFAULT_CF, ts_str("z")));
  CHECK_RC(cairn_del(t, CAIRN_DEFAULT_CF, ts_str("f")), CAIRN_NOTFOUND);
  CHECK_RC(cairn_del(t, CAIRN_DEFAULT_CF, ts_str("q")), CAIRN_NOTFOUND);
  CHECK_RC(cairn_put(t, CAIRN_DEFAULT_CF, ts_str("b"), ts_str("x"),
                     CAIRN_PUT_NOOVERWRITE),
           CAIRN_EXISTS);
  CHECK_RC(cairn_put(t, CAIRN_DEFAULT_CF, ts_str("g"), ts_str("x"),
                     CAIRN_PUT_NOOVERWRITE),
           CAIRN_EXISTS);
  CHECK_OK(cairn_put(t, CAIRN_DEFAULT_CF, ts_str("f"), ts_str("ov-f2"),
                     CAIRN_PUT_NOOVERWRITE));
  CHECK_OK(cairn_del(t, CAIRN_DEFAULT_CF, ts_str("f")));
  CHECK(entries(t) == 5); /* a b d g h */
  CHECK_OK(cairn_commit(t));

  char got[256];
  for (int pass = 0; pass < 2; pass++) { /* before and after the fold */
    CHECK_OK(cairn_begin(db, CAIRN_TXN_RDONLY, &t));
    CHECK(get_is(t, "a", "ov-a") && get_is(t, "b", "tree-b") &&
          get_is(t, "d", "ov-d") && get_is(t, "f", NULL) &&
          get_is(t, "g", "ov-g") && get_is(t, "h", "tree-h") &&
          get_is(t, "z", NULL));
    CHECK(entries(t) == 5);
    walk(t, 1, NULL, NULL, got, sizeof got);
    if (!CHECK(strcmp(got, "a,b,d,g,h") == 0))
      printf("    forward: %s (pass %d)\n", got, pass);
    walk(t, 0, NULL, NULL, got, sizeof got);
    if (!CHECK(strcmp(got, "h,g,d,b,a") == 0))
      printf("    reverse: %s (pass %d)\n", got, pass);
    walk(t, 1, "c", "h", got, sizeof got);
    if (!CHECK(strcmp(got, "d,g") == 0))
      printf("    bounded: %s (pass %d)\n", got, pass);
    walk(t, 0, "b", "g", got, sizeof got);
    if (!CHECK(strcmp(got, "d,b") == 0))
      printf("    bounded reverse: %s (pass %d)\n", got, pass);
    cairn_abort(t);
    CHECK_OK(cairn_checkpoint(db));
  }
  CHECK_OK(cairn_check(db, NULL, NULL));
  CHECK_OK(cairn_close(db));
  db = open_mem("ov.db", 0);
  if (db) {
    CHECK_OK(cairn_begin(db, CAIRN_TXN_RDONLY, &t));
    walk(t, 1, NULL, NULL, got, sizeof got);
    CHECK(strcmp(got, "a,b,d,g,h") == 0);
    CHECK(entries(t) == 5);
    cairn_abort(t);
    CHECK_OK(cairn_close(db));
  }
}

static void test_abort_hides(void) {
  ts_set_ctx("aborted versions stay hidden");
  cairn_platform_memory_reset();
  cairn_db *db = open_mem("ab.db", 1);
  if (!db)
    return;
  cairn_txn *t = NULL;
  CHECK_OK(cairn_begin(db, 0, &t));
  CHECK_OK(put(t, "k", "committed"));
  CHECK_OK(cairn_commit(t));
  CHECK_OK(cairn_begin(db, 0, &t));
  uint64_t id = cairn_txn_id(t);
  CHECK_OK(put(t, "k", "aborted"));
  CHECK_OK(put(t, "new", "aborted"));
  CHECK_OK(cairn_del(t, CAIRN_DEFAULT_CF, ts_str("k")));
  CHECK(get_is(t, "k", NULL));
  cairn_abort(t);
  CHECK_OK(cairn_begin(db, 0, &t));
  CHECK(cairn_txn_id(t) == id); /* the same id as the aborted one */
  CHECK(get_is(t, "k", "committed") && get_is(t, "new", NULL));
  CHECK(entries(t) == 1);
  CHECK_OK(put(t, "other", "v"));
  CHECK_OK(cairn_commit(t));
  CHECK_OK(cairn_begin(db, CAIRN_TXN_RDONLY, &t));
  CHECK(get_is(t, "k", "committed") && get_is(t, "new", NULL) &&
        get_is(t, "other", "v"));
  CHECK(entries(t) == 2);
  cairn_abort(t);
  CHECK_OK(cairn_checkpoint(db));
  CHECK_OK(cairn_begin(db, CAIRN_TXN_RDONLY, &t));
  CHECK(get_is(t, "k", "committed") && get_is(t, "new", NULL));
  CHECK(entries(t) == 2);
  cairn_abort(t);
  CHECK_OK(cairn_close(db));
}

/* A reader and its cursor began before several checkpoints: its state and
 * its position hold while the writer rewrites everything. */
static void test_reader_spans_checkpoints(void) {
  ts_set_ctx("a cursor across checkpoints");
  cairn_platform_memory_reset();
  cairn_db *db = open_mem("span.db", 1);
  if (!db)
    return;
  cairn_txn *t = NULL;
  int n = (int)ts_scaled(3000, 300);
  CHECK_OK(cairn_begin(db, 0, &t));
  for (int i = 0; i < n; i++) {
    char k[16], v[16];
    snprintf(k, sizeof k, "k%06d", i);
    snprintf(v, sizeof v, "v0-%d", i);
    CHECK_OK(put(t, k, v));
  }
  CHECK_OK(cairn_commit(t));
  CHECK_OK(cairn_checkpoint(db));
  CHECK_OK(cairn_begin(db, 0, &t)); /* half the keys in the overlay */
  for (int i = 0; i < n; i += 2) {
    char k[16], v[16];
    snprintf(k, sizeof k, "k%06d", i);
    snprintf(v, sizeof v, "v1-%d", i);
    CHECK_OK(put(t, k, v));
  }
  CHECK_OK(cairn_commit(t));
  cairn_txn *r = NULL;
  cairn_cursor *c = NULL;
  CHECK_OK(cairn_begin(db, CAIRN_TXN_RDONLY, &r));
  CHECK_OK(cairn_cursor_open(r, CAIRN_DEFAULT_CF, &c));
  int rc = cairn_cursor_first(c), seen = 0, bad = 0;
  for (int round = 0; rc == CAIRN_OK; round++) {
    cairn_slice k, v;
    if (!CHECK_OK(cairn_cursor_get(c, &k, &v)))
      break;
    char want[16];
    snprintf(want, sizeof want, "v%d-%d", seen % 2 ? 0 : 1, seen);
    bad += v.size != strlen(want) || memcmp(v.data, want, v.size) != 0;
    seen++;
    if (round % (n / 6) == 0) { /* the writer rewrites, deletes, folds */
      cairn_txn *w = NULL;
      CHECK_OK(cairn_begin(db, 0, &w));
      for (int i = 0; i < n; i += 3) {
        char key[16];
        snprintf(key, sizeof key, "k%06d", i);
        if (i % 2) { /* (gone already after the first round) */
          int drc = cairn_del(w, CAIRN_DEFAULT_CF, ts_str(key));
          CHECK(drc == CAIRN_OK || drc == CAIRN_NOTFOUND);
        } else
          CHECK_OK(put(w, key, "rewritten"));
      }
      CHECK_OK(cairn_commit(w));
      CHECK_OK(cairn_checkpoint(db));
    }
    rc = cairn_cursor_next(c);
  }
  CHECK_RC(rc, CAIRN_NOTFOUND);
  CHECK(seen == n && bad == 0);
  CHECK(entries(r) == (uint64_t)n);
  cairn_cursor_close(c);
  cairn_abort(r);
  CHECK_OK(cairn_check(db, NULL, NULL));
  CHECK_OK(cairn_close(db));
}

/* A write txn's cursor sees keys the txn inserts right after it. */
static void test_writer_cursor(void) {
  ts_set_ctx("a write txn's cursor");
  cairn_platform_memory_reset();
  cairn_db *db = open_mem("wc.db", 1);
  if (!db)
    return;
  cairn_txn *t = NULL;
  CHECK_OK(cairn_begin(db, 0, &t));
  CHECK_OK(put(t, "b", "1"));
  CHECK_OK(put(t, "e", "1"));
  CHECK_OK(cairn_commit(t));
  CHECK_OK(cairn_checkpoint(db));
  CHECK_OK(cairn_begin(db, 0, &t));
  cairn_cursor *c = NULL;
  CHECK_OK(cairn_cursor_open(t, CAIRN_DEFAULT_CF, &c));
  CHECK_OK(cairn_cursor_first(c)); /* on b */
  CHECK_OK(put(t, "c", "2"));      /* right after the cursor */
  CHECK_OK(put(t, "d", "2"));
  CHECK_OK(cairn_del(t, CAIRN_DEFAULT_CF, ts_str("e")));
  cairn_slice k, v;
  CHECK_OK(cairn_cursor_next(c));
  if (CHECK_OK(cairn_cursor_get(c, &k, &v)))
    CHECK(k.size == 1 && *(const char *)k.data == 'c');
  CHECK_OK(put(t, "c", "3")); /* overwrite under the cursor */
  if (CHECK_OK(cairn_cursor_get(c, &k, &v)))
    CHECK(v.size == 1 && *(const char *)v.data == '3');
  CHECK_OK(cairn_cursor_next(c));
  if (CHECK_OK(cairn_cursor_get(c, &k, &v)))
    CHECK(k.size == 1 && *(const char *)k.data == 'd');
  CHECK_RC(cairn_cursor_next(c), CAIRN_NOTFOUND); /* e is deleted */
  CHECK_OK(cairn_cursor_last(c));
  if (CHECK_OK(cairn_cursor_get(c, &k, &v)))
    CHECK(k.size == 1 && *(const char *)k.data == 'd');
  CHECK_OK(cairn_del(t, CAIRN_DEFAULT_CF, ts_str("d")));
  CHECK_RC(cairn_cursor_get(c, &k, &v), CAIRN_NOTFOUND);
  CHECK_OK(cairn_cursor_prev(c));
  if (CHECK_OK(cairn_cursor_get(c, &k, &v)))
    CHECK(k.size == 1 && *(const char *)k.data == 'c');
  cairn_cursor_close(c);
  CHECK(entries(t) == 2);
  CHECK_OK(cairn_commit(t));
  CHECK_OK(cairn_close(db));
}

/* Keys of the default cf a cursor of t sees, in order: how many, and
 * whether they ascend. */
static int scan_ordered(cairn_txn *t, uint64_t *n) {
  cairn_cursor *c = NULL;
  char last[32] = "";
  size_t lastn = 0;
  int ordered = 1;
  *n = 0;
  if (!CHECK_OK(cairn_cursor_open(t, CAIRN_DEFAULT_CF, &c)))
    return 0;
  int rc = cairn_cursor_first(c);
  while (rc == CAIRN_OK) {
    cairn_slice k, v;
    if (!CHECK_OK(cairn_cursor_get(c, &k, &v)) || k.size > sizeof last)
      break;
    size_t m = k.size < lastn ? k.size : lastn;
    int cmpv = memcmp(last, k.data, m);
    if (*n && (cmpv > 0 || (cmpv == 0 && lastn >= k.size)))
      ordered = 0;
    memcpy(last, k.data, k.size);
    lastn = k.size;
    (*n)++;
    rc = cairn_cursor_next(c);
  }
  CHECK_RC(rc, CAIRN_NOTFOUND);
  cairn_cursor_close(c);
  return ordered;
}

/* A write txn's new keys join the ordered list lazily (sorted, at its
 * cursor, count, commit or abort): whatever comes first must see them. */
static void test_new_keys_join_in_order(void) {
  ts_set_ctx("new keys join the ordered list");
  cairn_platform_memory_reset();
  cairn_db *db = open_mem("join.db", 1);
  if (!db)
    return;
  cairn_txn *t = NULL, *r = NULL;
  uint64_t n;
  /* abort first: hidden, but a later put of the same key must work */
  CHECK_OK(cairn_begin(db, 0, &t));
  for (int i = 0; i < 500; i++) {
    char k[16];
    snprintf(k, sizeof k, "k%05d", (i * 7919) % 1000);
    CHECK_OK(put(t, k, "aborted"));
  }
  CHECK_RC(cairn_del(t, CAIRN_DEFAULT_CF, ts_str("absent")), CAIRN_NOTFOUND);
  cairn_abort(t);
  CHECK_OK(cairn_begin(db, CAIRN_TXN_RDONLY, &r));
  CHECK(scan_ordered(r, &n) && n == 0);
  cairn_abort(r);
  /* the writer's count and cursor see its own keys, in order, and keys
   * added while its cursor is open */
  CHECK_OK(cairn_begin(db, 0, &t));
  for (int i = 0; i < 1000; i += 2) {
    char k[16];
    snprintf(k, sizeof k, "k%05d", (i * 7919) % 1000);
    CHECK_OK(put(t, k, "even"));
  }
  CHECK(entries(t) == 500);
  CHECK(scan_ordered(t, &n) && n == 500);
  cairn_cursor *c = NULL;
  CHECK_OK(cairn_cursor_open(t, CAIRN_DEFAULT_CF, &c));
  CHECK_OK(cairn_cursor_first(c));
  for (int i = 1; i < 1000; i += 2) {
    char k[16];
    snprintf(k, sizeof k, "k%05d", (i * 7919) % 1000);
    CHECK_OK(put(t, k, "odd"));
  }
  uint64_t seen = 1;
  while (cairn_cursor_next(c) == CAIRN_OK)
    seen++;
  CHECK(seen == 1000);
  cairn_cursor_close(c);
  CHECK_OK(put(t, "zz-last", "1")); /* joins at commit */
  CHECK_OK(cairn_commit(t));
  /* a reader sees the commit whole and in order, also the last put */
  CHECK_OK(cairn_begin(db, CAIRN_TXN_RDONLY, &r));
  CHECK(scan_ordered(r, &n) && n == 1001);
  CHECK(get_is(r, "zz-last", "1"));
  cairn_abort(r);
  CHECK_OK(cairn_checkpoint(db));
  CHECK_OK(cairn_begin(db, CAIRN_TXN_RDONLY, &r));
  CHECK(scan_ordered(r, &n) && n == 1001);
  cairn_abort(r);
  CHECK_OK(cairn_check(db, NULL, NULL));
  CHECK_OK(cairn_close(db));
}

static uint64_t file_bytes(cairn_db *db) {
  cairn_db_stat st;
  return CHECK_OK(cairn_db_stat_get(db, &st)) ? st.file_size : 0;
}

static void rewrite_all(cairn_db *db, int n, int round) {
  cairn_txn *t = NULL;
  if (!CHECK_OK(cairn_begin(db, 0, &t)))
    return;
  for (int i = 0; i < n; i++) {
    char k[16], v[64];
    snprintf(k, sizeof k, "k%06d", (i * 7919) % n);
    snprintf(v, sizeof v, "round %d value %d with some padding", round, i);
    CHECK_OK(put(t, k, v));
  }
  CHECK_OK(cairn_commit(t));
  CHECK_OK(cairn_checkpoint(db));
}

static void test_checkpoint_reuse(void) {
  ts_set_ctx("checkpoints reuse the pages they replace");
  cairn_platform_memory_reset();
  cairn_db *db = open_mem("reuse.db", 1);
  if (!db)
    return;
  int n = (int)ts_scaled(4000, 1000);
  for (int r = 0; r < 3; r++)
    rewrite_all(db, n, r);
  uint64_t warm = file_bytes(db);
  for (int r = 3; r < 12; r++)
    rewrite_all(db, n, r);
  uint64_t after = file_bytes(db);
  if (!CHECK(after <= warm + warm / 8))
    printf("    file grew from %llu to %llu bytes\n", (unsigned long long)warm,
           (unsigned long long)after);
  /* a reader of the old tree pins what the checkpoints replace */
  cairn_txn *r = NULL;
  CHECK_OK(cairn_begin(db, CAIRN_TXN_RDONLY, &r));
  for (int k = 12; k < 16; k++)
    rewrite_all(db, n, k);
  cairn_db_stat st;
  if (CHECK_OK(cairn_db_stat_get(db, &st)))
    CHECK(st.pages_pinned > 0);
  CHECK(file_bytes(db) > after);
  CHECK(get_is(r, "k000000", "round 11 value 0 with some padding"));
  cairn_abort(r);
  if (CHECK_OK(cairn_db_stat_get(db, &st)))
    CHECK(st.pages_pinned == 0);
  CHECK_OK(cairn_check(db, NULL, NULL));
  CHECK_OK(cairn_close(db));
}

static uint64_t rng_state = 0x2545f4914f6cdd1dull;
static uint64_t rnd(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return rng_state;
}

static int node_less(const ov_node *a, const ov_node *b) {
  if (a->cf != b->cf)
    return a->cf < b->cf;
  size_t m = a->klen < b->klen ? a->klen : b->klen;
  int c = memcmp(a->key, b->key, m);
  return c ? c < 0 : a->klen < b->klen;
}

static uint64_t prefix_of(const ov_node *n) {
  uint64_t p = 0;
  for (size_t i = 0; i < 8; i++)
    p = p << 8 | (i < n->klen ? n->key[i] : 0);
  return p;
}

/* Every level of the list, checked against level 0. */
static int list_well_formed(overlay *ov, uint64_t want_nodes) {
  uint64_t n0 = 0; /* bounded: a broken list may hold a cycle */
  for (ov_node *x = ov->head->next[0].node; x && n0 <= want_nodes;
       x = x->next[0].node)
    n0++;
  if (n0 != want_nodes) {
    printf("  level 0 holds %llu nodes, expected %llu\n",
           (unsigned long long)n0, (unsigned long long)want_nodes);
    return 0;
  }
  for (int l = 0; l < OV_MAX_HEIGHT; l++) {
    /* the level-l chain must be level 0 filtered by height > l */
    ov_node *x = ov->head, *y = ov->head->next[0].node;
    for (;;) {
      while (y && y->height <= l)
        y = y->next[0].node;
      ov_node *nx = x->next[l].node;
      if (nx != y) {
        printf("  level %d: wrong successor\n", l);
        return 0;
      }
      if (!nx)
        break;
      if (x != ov->head && !node_less(x, nx)) {
        printf("  level %d: out of order\n", l);
        return 0;
      }
      if (x->next[l].cf != nx->cf || x->next[l].prefix != prefix_of(nx)) {
        printf("  level %d: stale link copy\n", l);
        return 0;
      }
      x = nx;
      y = y->next[0].node;
    }
  }
  return 1;
}

/* The exact-match index finds every node and nothing else, whether it
 * starts small and grows (keeping the old tables for readers) or starts
 * at the size the last overlay needed (and so never holds old tables). */
static void index_key(uint8_t key[12], uint32_t i, const char *tag) {
  uint64_t r = (uint64_t)i * 0x9e3779b97f4a7c15ull;
  memcpy(key, tag, 4);
  for (int b = 0; b < 8; b++)
    key[4 + b] = (uint8_t)(r >> (8 * b));
}

static void test_index_sizing(void) {
  ts_set_ctx("exact-match index, grown or presized");
  enum { N = 6000 };
  uint64_t bytes[2] = {0, 0};
  for (int presized = 0; presized < 2; presized++) {
    overlay *ov = overlay_new(presized ? N : 0);
    if (!CHECK(ov != NULL))
      return;
    static ov_node *made[N];
    for (uint32_t i = 0; i < N; i++) {
      uint8_t key[12];
      index_key(key, i, "idx-");
      made[i] = overlay_node(ov, i % 2, key, sizeof key);
      if (!CHECK(made[i] != NULL) ||
          !CHECK(overlay_add(ov, made[i], 1, key, 4, 0)))
        return;
    }
    for (uint32_t i = 0; i < N; i++) {
      uint8_t key[12];
      index_key(key, i, "idx-");
      CHECK(overlay_find(ov, i % 2, key, sizeof key) == made[i]);
      CHECK(overlay_find(ov, 1 - i % 2, key, sizeof key) == NULL);
      index_key(key, i, "idy-");
      CHECK(overlay_find(ov, i % 2, key, sizeof key) == NULL);
    }
    CHECK(ov->indexed == N && !ov->index_partial);
    bytes[presized] = ov->bytes;
    overlay_unref(ov);
  }
  CHECK(bytes[1] < bytes[0]); /* no outgrown tables */
}

/* Groups of every size around the interleaving width (16), keys that
 * share their first 8 bytes (the link copies cannot decide), several
 * column families, a key repeated within a group (found by the index,
 * not linked twice), and nodes tall enough to raise the list's height
 * within a group. */
static void test_grouped_linking(void) {
  ts_set_ctx("grouped linking keeps every level");
  overlay *ov = overlay_new(0);
  if (!CHECK(ov != NULL))
    return;
  static const size_t groups[] = {1, 2, 15, 16, 17, 31, 33, 500, 3000, 1};
  uint64_t nodes = 0;
  for (size_t g = 0; g < sizeof groups / sizeof *groups; g++) {
    for (size_t i = 0; i < groups[g]; i++) {
      uint8_t key[24];
      uint64_t r = rnd();
      size_t klen = 9 + r % 12;
      memcpy(key, "same8pfx", 8); /* half the keys share 8 bytes */
      if (r & 1)
        for (size_t b = 0; b < 8; b++)
          key[b] = (uint8_t)(rnd() >> 56);
      for (size_t b = 8; b < klen; b++)
        key[b] = (uint8_t)(rnd() >> 59);
      uint32_t cf = (uint32_t)(r >> 40) % 3;
      uint64_t before = ov->nodes;
      ov_node *n = overlay_node_unlinked(ov, cf, key, klen);
      if (!CHECK(n != NULL) || !CHECK(overlay_add(ov, n, 1, key, 4, 0)))
        return;
      if (i == 0 && g > 0) /* again: the index finds it */
        CHECK(overlay_node_unlinked(ov, cf, key, klen) == n);
      nodes += ov->nodes - before;
    }
    overlay_link_pending(ov);
    if (!CHECK(list_well_formed(ov, nodes)))
      break;
  }
  CHECK(nodes > 3000);
  overlay_unref(ov);
}

/* An 8-byte big-endian height: appends sort after everything before. */
static void height_key(uint8_t key[8], uint64_t h) {
  for (int b = 0; b < 8; b++)
    key[b] = (uint8_t)(h >> (56 - 8 * b));
}

/* Appends skip the index probe (a key beyond its cf's greatest is new) and
 * link at the tail; the Bloom filter answers most absent keys. Batches of
 * appends in three cfs (one beyond the per-cf shortcut) interleave with
 * rewrites of present keys (which must find their node, not make a second
 * one) and with keys below the greatest (not appends). */
static void test_appends_and_filter(void) {
  ts_set_ctx("appends, the greatest key per cf, and the filter");
  enum { BATCHES = 40, PER = 300 };
  static const uint32_t cfs[] = {0, 5, OV_GREATEST_CFS + 1};
  overlay *ov = overlay_new(BATCHES * PER * 3);
  if (!CHECK(ov != NULL) || !CHECK(ov->filter != NULL))
    return;
  static ov_node *made[3][BATCHES * PER];
  uint64_t nodes = 0;
  for (int b = 0; b < BATCHES; b++) {
    for (int i = 0; i < PER; i++)
      for (int c = 0; c < 3; c++) {
        uint8_t key[8];
        uint64_t h = 2 * (uint64_t)(b * PER + i) + 2; /* even heights */
        height_key(key, h);
        ov_node *n = overlay_node_unlinked(ov, cfs[c], key, sizeof key);
        if (!CHECK(n != NULL) || !CHECK(overlay_add(ov, n, 1, key, 8, 0)))
          return;
        made[c][b * PER + i] = n;
        nodes++;
        if (i % 50 == 7) { /* the same key again within the batch */
          CHECK(overlay_node_unlinked(ov, cfs[c], key, sizeof key) == n);
          /* and one from an earlier batch */
          uint64_t old = rnd() % (uint64_t)(b * PER + i + 1);
          height_key(key, 2 * old + 2);
          CHECK(overlay_node_unlinked(ov, cfs[c], key, sizeof key) ==
                made[c][old]);
        }
      }
    if (b % 4 == 3) /* odd heights below the greatest: not appends */
      for (int i = 0; i < 20; i++) {
        uint8_t key[8];
        height_key(key, 2 * (rnd() % (uint64_t)(b * PER)) + 1);
        uint64_t before = ov->nodes;
        ov_node *n = overlay_node_unlinked(ov, cfs[i % 3], key, sizeof key);
        if (!CHECK(n != NULL) || !CHECK(overlay_add(ov, n, 1, key, 8, 0)))
          return;
        nodes += ov->nodes - before;
      }
    overlay_link_pending(ov);
    if (!CHECK(list_well_formed(ov, nodes)))
      break;
  }
  CHECK(ov->nodes == nodes);
  uint64_t maybe = 0, absent = 0;
  for (int c = 0; c < 3; c++)
    for (uint64_t i = 0; i < BATCHES * PER; i++) {
      uint8_t key[8];
      height_key(key, 2 * i + 2);
      CHECK(overlay_find(ov, cfs[c], key, sizeof key) == made[c][i]);
      CHECK(overlay_may_hold(ov, cfs[c], key, sizeof key));
      height_key(key, 2 * i + 2 + 2 * BATCHES * PER); /* beyond: absent */
      CHECK(overlay_find(ov, cfs[c], key, sizeof key) == NULL);
      maybe += (uint64_t)overlay_may_hold(ov, cfs[c], key, sizeof key);
      absent++;
    }
  /* 8 to 16 bits a key: about 1% pass; a filter that never says no fails */
  CHECK(maybe * 20 < absent);
  overlay_unref(ov);
}

int main(void) {
  test_appends_and_filter();
  test_grouped_linking();
  test_index_sizing();
  test_merge();
  test_abort_hides();
  test_reader_spans_checkpoints();
  test_writer_cursor();
  test_new_keys_join_in_order();
  test_checkpoint_reuse();
  return test_summary();
}
