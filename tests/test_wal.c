/*
 * test_wal.c — the write-ahead log (core/wal.c, core/view.c) on the
 * fault platform, where a crash keeps, drops or tears unsynced writes:
 *
 *   - acknowledged commits (puts, deletes, column family creates and drops,
 *     overflow values) survive a crash by replay, exactly;
 *   - lazy commits: after a crash the database holds a prefix of the commits
 *     that contains every one made before the last cairn_sync;
 *   - garbage after the last record is ignored; a damaged record with
 *     commits after it is refused (never silently dropped), and moving the
 *     log away opens the last checkpoint;
 *   - a log of another database, or one newer than its database file, is
 *     refused with a message naming it;
 *   - read-only opens replay in memory and leave both files untouched;
 *   - CAIRN_OPEN_NOLOG folds a pending log in instead of skipping it;
 *   - a snapshot taken before checkpoints keeps reading its own state;
 *   - lazy commits checkpoint lazily (the log is kept until the next
 *     checkpoint makes the tree durable, and restarted at four budgets),
 *     the file stays bounded, and a crash after cairn_sync loses nothing;
 *   - a big durable commit of appends over an empty log folds itself into
 *     the tree instead of being logged (the next logged commit writes the
 *     log's header with its record); random writes, small or lazy commits
 *     and a log that holds records keep the log path; crashes after
 *     either recover every commit;
 *   - lazy checkpoints fold in the background (at once on the fault
 *     platform, on a helper thread on unix): while the frozen overlay
 *     waits to be published, reads, counts, cursors, deletes, no-overwrite
 *     puts and column family changes see exactly the model;
 *   - creating a database removes a stale log of an earlier one.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn.h"
#include "fault_platform.h"
#include "platform.h"
#include "test_util.h"

#include "test_support.h"

#define DB "wal.db"
#define LOG "wal.db-wal"

static cairn_db *open_db(uint32_t flags) {
  cairn_options o;
  ts_options(&o, "fault", 4096);
  o.flags |= flags;
  cairn_db *db = NULL;
  CHECK_OK(cairn_open(DB, &o, &db));
  return db;
}

/* Apply commit number c of a deterministic workload to db and model. */
static int do_commit(cairn_db *db, ts_state *st, int c, cairn_durability dur) {
  cairn_txn *t = NULL;
  int rc = cairn_begin(db, 0, &t);
  if (rc)
    return rc;
  ts_rng r;
  ts_rng_seed(&r, 1000 + (uint64_t)c);
  if (c % 7 == 3) { /* column family churn, logged as ops */
    const char *name = (c / 7) % 2 ? "blocks" : "receipts";
    int idx = ts_state_find(st, name);
    cairn_cf cf;
    if (idx >= 0) {
      CHECK_OK(cairn_cf_open(t, name, 0, &cf));
      CHECK_OK(cairn_cf_drop(t, cf));
      ts_state_drop(st, idx);
    } else {
      CHECK_OK(cairn_cf_open(t, name, CAIRN_CF_CREATE, &cf));
      ts_state_add(st, name);
    }
  }
  for (int i = 0; i < 40; i++) {
    int ci = (int)ts_below(&r, (uint64_t)st->ncf);
    cairn_cf cf = CAIRN_DEFAULT_CF;
    if (ci && !CHECK_OK(cairn_cf_open(t, st->name[ci], 0, &cf)))
      break;
    char k[32];
    snprintf(k, sizeof k, "k%04d", (int)ts_below(&r, 300));
    ts_map *m = &st->map[ci];
    if (ts_chance(&r, 1, 5) && ts_map_get(m, k, strlen(k))) {
      CHECK_OK(cairn_del(t, cf, ts_str(k)));
      ts_map_del(m, k, strlen(k));
      continue;
    }
    size_t vn =
        ts_chance(&r, 1, 30) ? 9000 + ts_below(&r, 9000) : ts_below(&r, 200);
    uint64_t vs = ts_next(&r);
    void *v = ts_value_new(vn, vs);
    CHECK_OK(cairn_put(t, cf, ts_str(k), ts_sl(v, vn), 0));
    free(v);
    ts_map_put(m, k, strlen(k), vs, vn);
  }
  return cairn_commit_ex(t, dur);
}

/* Power fails now: the handle's close can write nothing (it only frees),
 * then the unsynced writes are resolved from seed. */
static void crash(cairn_db *db, uint64_t seed) {
  fault_set_crash_at(fault_op_count());
  cairn_close(db);
  fault_crash(seed);
  fault_clear_injection();
}

static int matches(cairn_db *db, const ts_state *st) {
  cairn_txn *t = NULL;
  if (!CHECK_OK(cairn_begin(db, CAIRN_TXN_RDONLY, &t)))
    return 0;
  char why[256] = "";
  int rc = ts_db_compare(t, st, why, sizeof why);
  cairn_abort(t);
  if (rc)
    printf("    differs: %s (rc %d)\n", why, rc);
  return rc == 0;
}

static void test_replay_after_crash(void) {
  ts_set_ctx("replay after a crash");
  fault_reset();
  cairn_db *db = open_db(0);
  if (!db)
    return;
  ts_state st;
  ts_state_init(&st);
  for (int c = 1; c <= 30; c++)
    CHECK_OK(do_commit(db, &st, c, CAIRN_DURABILITY_SYNC));
  cairn_metrics m;
  CHECK_OK(cairn_metrics_get(db, &m));
  CHECK(m.bytes_logged > 0);
  crash(db, 1); /* no checkpoint: the log alone holds the commits */
  db = open_db(0);
  if (db) {
    CHECK(matches(db, &st));
    CHECK_OK(cairn_check(db, NULL, NULL));
    CHECK_OK(cairn_close(db));
  }
  /* and once more after a clean close */
  db = open_db(0);
  if (db) {
    CHECK(matches(db, &st));
    CHECK_OK(cairn_close(db));
  }
  ts_state_free(&st);
}

static void test_lazy_prefix(void) {
  uint64_t seeds = (uint64_t)ts_scaled(12, 3);
  for (uint64_t seed = 1; seed <= seeds; seed++) {
    ts_set_ctx("lazy commits, crash seed %llu", (unsigned long long)seed);
    fault_reset();
    cairn_options o;
    ts_options(&o, "fault", 4096);
    o.durability = CAIRN_DURABILITY_LAZY;
    o.lazy_sync_commits = 0;
    o.lazy_sync_ms = 0;
    cairn_db *db = NULL;
    if (!CHECK_OK(cairn_open(DB, &o, &db)))
      return;
    ts_state st[21];
    ts_state_init(&st[0]);
    for (int c = 1; c <= 20; c++) {
      ts_state_copy(&st[c], &st[c - 1]);
      CHECK_OK(do_commit(db, &st[c], c, CAIRN_DURABILITY_DEFAULT));
      if (c == 8)
        CHECK_OK(cairn_sync(db));
    }
    crash(db, seed);
    CHECK_OK(cairn_open(DB, &o, &db));
    int found = -1;
    cairn_txn *t = NULL;
    if (db && CHECK_OK(cairn_begin(db, CAIRN_TXN_RDONLY, &t))) {
      uint64_t h, n;
      if (CHECK_OK(ts_db_hash(t, &h, &n)))
        for (int c = 20; c >= 0 && found < 0; c--)
          if (ts_state_hash(&st[c]) == h)
            found = c;
      cairn_abort(t);
    }
    if (!CHECK(found >= 8))
      printf("    recovered state %d; commits 1..8 were synced\n", found);
    if (db)
      CHECK_OK(cairn_close(db));
    for (int c = 0; c <= 20; c++)
      ts_state_free(&st[c]);
  }
}

/* Crash with 12 commits logged; returns the model. */
static void crashed_db(ts_state *st) {
  fault_reset();
  ts_state_init(st);
  cairn_db *db = open_db(0);
  if (!db)
    return;
  for (int c = 1; c <= 12; c++)
    CHECK_OK(do_commit(db, st, c, CAIRN_DURABILITY_SYNC));
  crash(db, 2);
}

static void test_damaged_logs(void) {
  ts_state st;
  ts_set_ctx("garbage after the last record");
  crashed_db(&st);
  long long n = fault_file_size(LOG);
  uint8_t junk[700];
  ts_fill(junk, sizeof junk, 5);
  CHECK_OK(fault_file_poke(LOG, (uint64_t)n, junk, sizeof junk));
  cairn_db *db = open_db(0);
  if (db) {
    CHECK(matches(db, &st));
    CHECK_OK(cairn_close(db));
  }
  ts_state_free(&st);

  ts_set_ctx("a damaged record in the middle");
  crashed_db(&st);
  n = fault_file_size(LOG);
  uint8_t b = 0;
  uint64_t mid = 512 + (uint64_t)(n - 512) / 3;
  CHECK_OK(fault_file_peek(LOG, mid, &b, 1));
  b ^= 0x40;
  CHECK_OK(fault_file_poke(LOG, mid, &b, 1));
  cairn_options o;
  ts_options(&o, "fault", 4096);
  db = NULL;
  CHECK_RC(cairn_open(DB, &o, &db), CAIRN_CORRUPT);
  CHECK(db == NULL);
  CHECK(strstr(cairn_errmsg(), "log record") != NULL);
  CHECK(strstr(cairn_errmsg(), "-wal") != NULL);
  /* moving the log away opens the last checkpoint (here: empty) */
  cairn_platform *p = cairn_platform_find("fault");
  CHECK_OK(p->rename_noreplace(p, LOG, "moved-away-wal"));
  db = open_db(0);
  if (db) {
    ts_state empty;
    ts_state_init(&empty);
    CHECK(matches(db, &empty));
    ts_state_free(&empty);
    CHECK_OK(cairn_close(db));
  }
  ts_state_free(&st);

  ts_set_ctx("a log of another database");
  crashed_db(&st);
  uint8_t *img = NULL;
  size_t len = 0;
  CHECK_OK(ts_file_read("fault", LOG, &img, &len));
  CHECK_OK(ts_file_remove("fault", DB));
  db = open_db(0); /* a new database: the stale log goes */
  if (db) {
    ts_state empty;
    ts_state_init(&empty);
    CHECK(matches(db, &empty));
    ts_state_free(&empty);
    CHECK_OK(cairn_close(db));
  }
  CHECK_OK(ts_file_write("fault", LOG, img, len)); /* the old one back */
  db = NULL;
  CHECK_RC(cairn_open(DB, &o, &db), CAIRN_CORRUPT);
  CHECK(strstr(cairn_errmsg(), "another database") != NULL);
  free(img);
  ts_state_free(&st);

  ts_set_ctx("a database file older than its log");
  fault_reset();
  db = open_db(0);
  ts_state_init(&st);
  uint8_t *old = NULL;
  size_t oldn = 0;
  if (db) {
    CHECK_OK(do_commit(db, &st, 1, CAIRN_DURABILITY_SYNC));
    CHECK_OK(cairn_close(db)); /* checkpoint: txn 2 */
    CHECK_OK(ts_file_read("fault", DB, &old, &oldn));
    db = open_db(0);
  }
  if (db) {
    for (int c = 2; c <= 5; c++)
      CHECK_OK(do_commit(db, &st, c, CAIRN_DURABILITY_SYNC));
    CHECK_OK(cairn_close(db)); /* the log now follows a newer checkpoint */
    CHECK_OK(ts_file_write("fault", DB, old, oldn));
    db = NULL;
    CHECK_RC(cairn_open(DB, &o, &db), CAIRN_CORRUPT);
    CHECK(strstr(cairn_errmsg(), "older copy") != NULL);
  }
  free(old);
  ts_state_free(&st);
}

static void test_readonly_and_nolog(void) {
  ts_state st;
  ts_set_ctx("read-only open replays in memory");
  crashed_db(&st);
  long long dbsize = fault_file_size(DB), logsize = fault_file_size(LOG);
  uint8_t *before = NULL;
  size_t bn = 0;
  CHECK_OK(ts_file_read("fault", DB, &before, &bn));
  cairn_db *db = open_db(CAIRN_OPEN_RDONLY);
  if (db) {
    CHECK(matches(db, &st));
    CHECK_OK(cairn_check(db, NULL, NULL));
    CHECK_OK(cairn_close(db));
  }
  uint8_t *after = NULL;
  size_t an = 0;
  CHECK_OK(ts_file_read("fault", DB, &after, &an));
  CHECK(an == bn && memcmp(before, after, bn) == 0);
  CHECK(fault_file_size(DB) == dbsize && fault_file_size(LOG) == logsize);
  free(before);
  free(after);

  ts_set_ctx("CAIRN_OPEN_NOLOG folds a pending log in");
  db = open_db(CAIRN_OPEN_NOLOG);
  if (db) {
    CHECK(matches(db, &st));
    CHECK_OK(do_commit(db, &st, 13, CAIRN_DURABILITY_SYNC));
    cairn_db_stat ds; /* no log, no overlay: nothing outside the file */
    if (CHECK_OK(cairn_db_stat_get(db, &ds)))
      CHECK(ds.log_size == 0 && ds.overlay_bytes == 0);
    crash(db, 3); /* a NOLOG commit is durable in the file itself */
    db = open_db(0);
  }
  if (db) {
    CHECK(matches(db, &st));
    CHECK_OK(cairn_close(db));
  }
  ts_state_free(&st);
}

/* A fresh database on the fault platform with a 1 MiB checkpoint budget
 * (lazy: lazy commits, synced only by cairn_sync). */
static cairn_db *open_small_budget(cairn_options *o, int lazy) {
  fault_reset();
  ts_options(o, "fault", 4096);
  o->checkpoint_mib = 1;
  if (lazy) {
    o->durability = CAIRN_DURABILITY_LAZY;
    o->lazy_sync_commits = 0;
    o->lazy_sync_ms = 0;
  }
  cairn_db *db = NULL;
  return CHECK_OK(cairn_open(DB, o, &db)) ? db : NULL;
}

/* Power fails, and the database reopens holding st, whole. */
static void crash_and_verify(cairn_db *db, const cairn_options *o,
                             const ts_state *st, uint64_t seed) {
  crash(db, seed);
  db = NULL;
  CHECK_OK(cairn_open(DB, o, &db));
  if (db) {
    CHECK(matches(db, st));
    CHECK_OK(cairn_check(db, NULL, NULL));
    CHECK_OK(cairn_close(db));
  }
}

static void test_snapshot_across_checkpoints(void) {
  ts_set_ctx("a snapshot across checkpoints");
  cairn_options o;
  cairn_db *db = open_small_budget(&o, 0);
  if (!db)
    return;
  ts_state st;
  ts_state_init(&st);
  for (int c = 1; c <= 10; c++)
    CHECK_OK(do_commit(db, &st, c, CAIRN_DURABILITY_SYNC));
  cairn_txn *snap = NULL;
  CHECK_OK(cairn_begin(db, CAIRN_TXN_RDONLY, &snap));
  uint64_t h0 = 0, n0 = 0;
  CHECK_OK(ts_db_hash(snap, &h0, &n0));
  CHECK(h0 == ts_state_hash(&st));
  cairn_metrics m0, m1;
  CHECK_OK(cairn_metrics_get(db, &m0));
  for (int c = 11; c <= 80; c++) {
    CHECK_OK(do_commit(db, &st, c, CAIRN_DURABILITY_SYNC));
    if (c % 20 == 0)
      CHECK_OK(cairn_checkpoint(db));
  }
  CHECK_OK(cairn_metrics_get(db, &m1));
  CHECK(m1.checkpoints >= m0.checkpoints + 3);
  uint64_t h1 = 0, n1 = 0;
  CHECK_OK(ts_db_hash(snap, &h1, &n1));
  CHECK(h1 == h0 && n1 == n0);
  cairn_abort(snap);
  CHECK(matches(db, &st));
  CHECK_OK(cairn_check(db, NULL, NULL));
  crash(db, 4);
  CHECK_OK(cairn_open(DB, &o, &db));
  if (db) {
    CHECK(matches(db, &st));
    CHECK_OK(cairn_close(db));
  }
  ts_state_free(&st);
}

static void test_lazy_checkpoints(void) {
  ts_set_ctx("lazy checkpoints");
  cairn_options o;
  cairn_db *db = open_small_budget(&o, 1);
  if (!db)
    return;
  ts_state st;
  ts_state_init(&st);
  cairn_metrics m0, m1;
  CHECK_OK(cairn_metrics_get(db, &m0));
  long long log_max = 0, db_max = 0;
  for (int c = 1; c <= 400; c++) {
    CHECK_OK(do_commit(db, &st, c, CAIRN_DURABILITY_DEFAULT));
    long long ls = fault_file_size(LOG), fs = fault_file_size(DB);
    log_max = ls > log_max ? ls : log_max;
    db_max = fs > db_max ? fs : db_max;
  }
  CHECK_OK(cairn_metrics_get(db, &m1));
  CHECK(m1.checkpoints >= m0.checkpoints + 6);
  /* Kept past a checkpoint (a synced one restarts it at about 1 MiB), and
   * restarted once four budgets long (plus the commit that crossed it). */
  CHECK(log_max > (2ll << 20) && log_max < (4ll << 20) + (1ll << 20));
  /* Each checkpoint folds over a durable tree, so the file holds a few
   * trees (0.8 MB measured; 3.5 MB when lazy checkpoints chained without
   * making the last one durable first). */
  if (!CHECK(db_max < (2ll << 20)))
    printf("    file grew to %lld bytes\n", db_max);
  CHECK(matches(db, &st));
  CHECK_OK(cairn_check(db, NULL, NULL));
  CHECK_OK(cairn_sync(db));
  crash_and_verify(db, &o, &st, 5);
  ts_state_free(&st);
}

/* What txn sees of the model's default cf, key by key (gets), backwards
 * (a reverse cursor) and in total (the cf's entry count). */
static int sees_default(cairn_txn *txn, const ts_map *m) {
  int ok = 1;
  cairn_cf_stat cs;
  if (!CHECK_OK(cairn_cf_stat_get(txn, CAIRN_DEFAULT_CF, &cs)) ||
      !CHECK(cs.entries == m->n))
    ok = 0;
  for (size_t i = 0; i < m->n && ok; i++) {
    cairn_slice v;
    ok = CHECK_OK(cairn_get(txn, CAIRN_DEFAULT_CF,
                            ts_sl(m->e[i].key, m->e[i].klen), &v)) &&
         CHECK(ts_value_eq(v.data, v.size, m->e[i].vseed, m->e[i].vlen));
  }
  cairn_cursor *c = NULL;
  if (!ok || !CHECK_OK(cairn_cursor_open(txn, CAIRN_DEFAULT_CF, &c)))
    return 0;
  size_t j = m->n;
  int rc;
  for (rc = cairn_cursor_last(c); rc == CAIRN_OK && ok;
       rc = cairn_cursor_prev(c)) {
    cairn_slice k;
    ok = CHECK(j > 0) && CHECK_OK(cairn_cursor_get(c, &k, NULL)) &&
         CHECK(ts_keycmp(k.data, k.size, m->e[j - 1].key, m->e[j - 1].klen) ==
               0);
    j--;
  }
  ok = ok && CHECK_RC(rc, CAIRN_NOTFOUND) && CHECK(j == 0);
  cairn_cursor_close(c);
  return ok;
}

/* Lazy checkpoints fold in the background: commits go into a fresh
 * overlay while the frozen one is folded. On the fault platform (no map)
 * the fold runs at once and is published at the end of the next commit, so
 * every commit after a checkpoint begins sees the tree, the frozen overlay
 * and the fresh one. Reads, counts, cursors both ways, deletes and
 * no-overwrite puts of keys only the frozen overlay holds, a column family
 * created or dropped meanwhile (the txn moves onto the new tree first), a
 * snapshot from before, and crashes all come out as the model says. */
static void test_background_checkpoints(const char *plat, const char *path) {
  ts_set_ctx("lazy checkpoints fold in the background (%s)", plat);
  /* on unix the fold runs on a helper thread, so when it is published
   * depends on timing, except where a page change waits for it */
  int threaded = strcmp(plat, "fault") != 0;
  cairn_options o;
  cairn_db *db = NULL;
  if (threaded) {
    ts_options(&o, plat, 4096);
    o.checkpoint_mib = 1;
    o.durability = CAIRN_DURABILITY_LAZY;
    o.lazy_sync_commits = 0;
    o.lazy_sync_ms = 0;
    CHECK_OK(cairn_open(path, &o, &db));
  } else {
    db = open_small_budget(&o, 1);
  }
  if (!db)
    return;
  ts_state st, held_st;
  ts_state_init(&st);
  cairn_txn *held = NULL; /* a snapshot from before the first fold */
  cairn_metrics m, m0;
  CHECK_OK(cairn_metrics_get(db, &m0));
  int windows = 0, rebased = 0;
  for (int c = 1; c <= 300; c++) {
    CHECK_OK(do_commit(db, &st, c, CAIRN_DURABILITY_DEFAULT));
    if (!held && c == 20) {
      CHECK_OK(cairn_begin(db, CAIRN_TXN_RDONLY, &held));
      ts_state_copy(&held_st, &st);
    }
    CHECK_OK(cairn_metrics_get(db, &m));
    if (m.checkpoints_background == m0.checkpoints_background) {
      m0 = m;
      continue;
    }
    /* A fold began at this commit; the next one publishes it. */
    windows++;
    CHECK(threaded || m.checkpoints == m0.checkpoints);
    CHECK(matches(db, &st));
    cairn_txn *r = NULL, *t = NULL;
    if (CHECK_OK(cairn_begin(db, CAIRN_TXN_RDONLY, &r))) {
      CHECK(sees_default(r, &st.map[0]));
      cairn_abort(r);
    }
    if (!CHECK_OK(cairn_begin(db, 0, &t)))
      break;
    ts_map *dm = &st.map[0];
    CHECK(sees_default(t, dm));
    for (size_t i = 0; i < dm->n && i < 60; i += 3) { /* the frozen ones */
      cairn_slice k = ts_sl(dm->e[i].key, dm->e[i].klen);
      CHECK_RC(
          cairn_put(t, CAIRN_DEFAULT_CF, k, ts_str("x"), CAIRN_PUT_NOOVERWRITE),
          CAIRN_EXISTS);
    }
    for (size_t i = 0; i < dm->n && i < 40; i += 4) {
      char k[32];
      snprintf(k, sizeof k, "%.*s", (int)dm->e[i].klen, dm->e[i].key);
      CHECK_OK(cairn_del(t, CAIRN_DEFAULT_CF, ts_str(k)));
      ts_map_del(dm, k, strlen(k));
    }
    CHECK_RC(cairn_del(t, CAIRN_DEFAULT_CF, ts_str("k-never")), CAIRN_NOTFOUND);
    CHECK(sees_default(t, dm));
    if (windows % 2) { /* a page change: the fold is published first */
      const char *name = "during-fold";
      int idx = ts_state_find(&st, name);
      cairn_cf cf;
      if (idx < 0) {
        CHECK_OK(cairn_cf_open(t, name, CAIRN_CF_CREATE, &cf));
        ts_state_add(&st, name);
        CHECK_OK(cairn_put(t, cf, ts_str("a"), ts_sl("", 0), 0));
        ts_map_put(&st.map[ts_state_find(&st, name)], "a", 1, 0, 0);
      } else {
        CHECK_OK(cairn_cf_open(t, name, 0, &cf));
        CHECK_OK(cairn_cf_drop(t, cf));
        ts_state_drop(&st, idx);
      }
      CHECK_OK(cairn_metrics_get(db, &m));
      rebased += CHECK(m.checkpoints >= m0.checkpoints + 1);
      CHECK(sees_default(t, dm));
    }
    CHECK_OK(cairn_commit(t));
    CHECK_OK(cairn_metrics_get(db, &m));
    CHECK(threaded || m.checkpoints == m0.checkpoints + 1); /* published */
    CHECK(matches(db, &st));
    m0 = m;
  }
  CHECK(windows >= 3 && rebased >= 2);
  if (held) { /* it spanned every fold */
    char why[256] = "";
    CHECK(ts_db_compare(held, &held_st, why, sizeof why) == 0);
    cairn_abort(held);
    ts_state_free(&held_st);
  }
  CHECK_OK(cairn_check(db, NULL, NULL));
  CHECK_OK(cairn_sync(db));
  if (!threaded) {
    crash_and_verify(db, &o, &st, 9);
  } else {
    CHECK_OK(cairn_close(db));
    db = NULL;
    if (CHECK_OK(cairn_open(path, &o, &db))) {
      CHECK(matches(db, &st));
      CHECK_OK(cairn_close(db));
    }
  }
  ts_state_free(&st);
}

/* A background fold that fails (a write error) leaves its frozen overlay
 * in place; the next checkpoint (even crash points) or the next txn about
 * to change a page (odd ones) folds it again, under the id of the newest
 * commit it holds — not the newest commit — so a crash once that tree's
 * meta page is durable replays the commits made since. */
static void test_background_fold_fails(void) {
  ts_set_ctx("a background fold that fails is folded again");
  int first = -1;  /* the commit whose end starts the first fold */
  long op_at = -1; /* the operation count before it */
  cairn_options o;
  cairn_db *db = open_small_budget(&o, 1);
  ts_state st;
  ts_state_init(&st);
  cairn_metrics m, m0;
  CHECK_OK(cairn_metrics_get(db, &m0));
  for (int c = 1; db && c <= 300 && first < 0; c++) {
    long before = fault_op_count();
    CHECK_OK(do_commit(db, &st, c, CAIRN_DURABILITY_DEFAULT));
    CHECK_OK(cairn_metrics_get(db, &m));
    if (m.checkpoints_background > m0.checkpoints_background) {
      first = c;
      op_at = before;
    }
  }
  if (db)
    CHECK_OK(cairn_close(db));
  ts_state_free(&st);
  if (!CHECK(first > 1))
    return;
  int done[2] = {0, 0}; /* each way of folding it again, to its end */
  for (long k = 0; k < 400 && !(done[0] && done[1]); k++) {
    ts_set_ctx("a background fold that fails is folded again (crash at %ld)",
               k);
    if (!(db = open_small_budget(&o, 1)))
      return;
    ts_state_init(&st);
    for (int c = 1; c < first; c++)
      CHECK_OK(do_commit(db, &st, c, CAIRN_DURABILITY_DEFAULT));
    CHECK(fault_op_count() == op_at);
    /* the commit writes its log record, then the fold fails */
    fault_set_error_at(op_at + 1, CAIRN_NOSPC, 0);
    CHECK_OK(cairn_metrics_get(db, &m0));
    CHECK_OK(do_commit(db, &st, first, CAIRN_DURABILITY_DEFAULT));
    for (int c = first + 1, n = 0; n < 4; c++) /* (a cf change would */
      if (c % 7 != 3 && ++n)                   /* fold it again now) */
        CHECK_OK(do_commit(db, &st, c, CAIRN_DURABILITY_DEFAULT));
    CHECK_OK(cairn_metrics_get(db, &m));
    CHECK(m.checkpoints_background == m0.checkpoints_background + 1 &&
          m.checkpoints == m0.checkpoints); /* failed, not published */
    CHECK(matches(db, &st));
    if (k % 2) { /* a txn about to change pages folds it again first */
      cairn_txn *t = NULL;
      cairn_cf cf;
      if (CHECK_OK(cairn_begin(db, 0, &t))) {
        CHECK_OK(cairn_cf_open(t, "after-failure", CAIRN_CF_CREATE, &cf));
        ts_state_add(&st, "after-failure");
        CHECK_OK(cairn_metrics_get(db, &m));
        CHECK(m.checkpoints == m0.checkpoints + 1);
        CHECK_OK(cairn_commit(t));
      }
    }
    CHECK_OK(cairn_sync(db));
    fault_set_crash_at(fault_op_count() + k);
    int rc = cairn_checkpoint(db); /* folds it again (if not yet), then
                                    * the rest */
    if (!fault_crashed()) {
      done[k % 2] = 1;
      CHECK_OK(rc);
    }
    crash(db, (uint64_t)k);
    db = NULL;
    if (CHECK_OK(cairn_open(DB, &o, &db))) {
      CHECK(matches(db, &st));
      CHECK_OK(cairn_check(db, NULL, NULL));
      CHECK_OK(cairn_close(db));
    }
    ts_state_free(&st);
  }
  CHECK(done[0] && done[1]);
}

/* One txn of n puts in cf: 8-byte big-endian keys from first on (step
 * apart), values of vlen bytes. */
static int put_heights(cairn_db *db, ts_state *st, cairn_cf cf, int ci,
                       uint64_t first, uint64_t step, int n, size_t vlen) {
  cairn_txn *t = NULL;
  int rc = cairn_begin(db, 0, &t);
  if (rc)
    return rc;
  for (int i = 0; i < n && !rc; i++) {
    uint8_t k[8];
    uint64_t h = first + step * (uint64_t)i;
    for (int b = 0; b < 8; b++)
      k[b] = (uint8_t)(h >> (56 - 8 * b));
    uint64_t vs = h * 31 + vlen;
    void *v = ts_value_new(vlen, vs);
    rc = cairn_put(t, cf, ts_sl(k, 8), ts_sl(v, vlen), 0);
    free(v);
    ts_map_put(&st->map[ci], (const char *)k, 8, vs, vlen);
  }
  if (rc) {
    cairn_abort(t);
    return rc;
  }
  return cairn_commit_ex(t, CAIRN_DURABILITY_SYNC);
}

/* A durable commit of appends big enough (128 KiB of log) over an empty
 * log folds itself into the tree: nothing is logged, and the next logged
 * commit writes the log's new header with its record. Random writes, a
 * small commit, a non-empty log, or a lazy commit keep the log path. */
static void test_fold_at_commit(void) {
  ts_set_ctx("commits of appends fold themselves");
  cairn_options o;
  cairn_db *db = open_small_budget(&o, 0);
  if (!db)
    return;
  ts_state st;
  ts_state_init(&st);
  cairn_txn *t = NULL;
  cairn_cf blocks = CAIRN_DEFAULT_CF;
  CHECK_OK(cairn_begin(db, 0, &t));
  CHECK_OK(cairn_cf_open(t, "blocks", CAIRN_CF_CREATE, &blocks));
  CHECK_OK(cairn_commit(t));
  ts_state_add(&st, "blocks");
  CHECK_OK(cairn_checkpoint(db)); /* the log is empty from here */
  cairn_metrics m0, m;
  CHECK_OK(cairn_metrics_get(db, &m0));
  uint64_t next = 1;
  for (int c = 0; c < 3; c++, next += 700) /* ~190 KiB each, two cfs */
    CHECK_OK(put_heights(db, &st, c % 2 ? blocks : CAIRN_DEFAULT_CF, c % 2,
                         next, 1, 700, 250));
  CHECK_OK(cairn_metrics_get(db, &m));
  CHECK(m.commits_folded == m0.commits_folded + 3);
  CHECK(m.bytes_logged == m0.bytes_logged);
  CHECK(m.commits == m0.commits + 3 && m.commits_sync == m0.commits_sync + 3);
  CHECK(matches(db, &st));
  /* too small to fold: logged, after the log's new header */
  CHECK_OK(put_heights(db, &st, CAIRN_DEFAULT_CF, 0, next, 1, 10, 250));
  next += 10;
  /* appends again, but the log holds a record now */
  CHECK_OK(put_heights(db, &st, blocks, 1, next, 1, 700, 250));
  next += 700;
  CHECK_OK(cairn_metrics_get(db, &m0));
  CHECK(m0.commits_folded == m.commits_folded);
  CHECK(m0.bytes_logged > m.bytes_logged + 700 * 250);
  /* a crash replays the logged ones over the folded ones */
  crash(db, 7);
  CHECK_OK(cairn_open(DB, &o, &db));
  if (!db) {
    ts_state_free(&st);
    return;
  }
  CHECK(matches(db, &st));
  CHECK_OK(cairn_begin(db, 0, &t));
  CHECK_OK(cairn_cf_open(t, "blocks", 0, &blocks));
  CHECK_OK(cairn_commit(t));
  CHECK_OK(cairn_metrics_get(db, &m0));
  /* rewriting old keys, out of order, is not an append: logged */
  CHECK_OK(put_heights(db, &st, CAIRN_DEFAULT_CF, 0, 1, 3, 700, 250));
  /* the open restarted the log, but lazy commits are never folded */
  CHECK_OK(cairn_checkpoint(db));
  CHECK_OK(cairn_begin(db, 0, &t));
  for (int i = 0; i < 700; i++) {
    uint8_t k[8] = {0xff, 0, 0, 0, 0, 0, (uint8_t)(i >> 8), (uint8_t)i};
    void *v = ts_value_new(250, 77 + (uint64_t)i);
    CHECK_OK(cairn_put(t, CAIRN_DEFAULT_CF, ts_sl(k, 8), ts_sl(v, 250), 0));
    free(v);
    ts_map_put(&st.map[0], (const char *)k, 8, 77 + (uint64_t)i, 250);
  }
  CHECK_OK(cairn_commit_ex(t, CAIRN_DURABILITY_LAZY));
  CHECK_OK(cairn_metrics_get(db, &m));
  CHECK(m.commits_folded == m0.commits_folded);
  CHECK_OK(cairn_sync(db));
  /* and the log's header written late: a crash right after a fold, and
   * one right after the next logged commit */
  CHECK_OK(cairn_checkpoint(db));
  CHECK_OK(put_heights(db, &st, blocks, 1, next, 1, 700, 250));
  next += 700;
  CHECK_OK(cairn_metrics_get(db, &m0));
  CHECK(m0.commits_folded == m.commits_folded + 1);
  crash(db, 8);
  CHECK_OK(cairn_open(DB, &o, &db));
  if (db) {
    CHECK(matches(db, &st));
    CHECK_OK(put_heights(db, &st, blocks, 1, next, 1, 700, 250)); /* folds */
    next += 700;
    /* the late header's write fails: that commit fails, nothing of it
     * stays, and the next one writes the header */
    ts_state lost;
    ts_state_init(&lost);
    ts_state_copy(&lost, &st);
    fault_set_error_at(fault_op_count(), CAIRN_IO, 0);
    int rc = put_heights(db, &lost, blocks, 1, next, 1, 5, 250);
    fault_clear_injection();
    CHECK_RC(rc, CAIRN_IO);
    CHECK(cairn_errmsg()[0] != 0);
    ts_state_free(&lost);
    CHECK(matches(db, &st));
    CHECK_OK(put_heights(db, &st, blocks, 1, next, 1, 5, 250)); /* logged */
    crash_and_verify(db, &o, &st, 9);
  }
  ts_state_free(&st);
}

int main(void) {
  fault_platform_install();
  test_fold_at_commit();
  test_replay_after_crash();
  test_lazy_prefix();
  test_damaged_logs();
  test_readonly_and_nolog();
  test_snapshot_across_checkpoints();
  test_lazy_checkpoints();
  test_background_checkpoints("fault", DB);
  test_background_fold_fails();
#ifdef CAIRN_HAVE_UNIX_PLATFORM
  {
    char *dir = ts_mkdtemp();
    char path[4200];
    snprintf(path, sizeof path, "%s/bg.db", dir);
    test_background_checkpoints("unix", path);
    ts_rmtree(dir);
    free(dir);
  }
#endif
  fault_reset();
  return test_summary();
}
