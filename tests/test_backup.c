/*
 * test_backup.c — hot, compact and incremental backups and restore
 * (core/backup.c), checked against a reference model.
 *
 *   - hot backups (full, a chain of incrementals, compact) taken in small
 *     steps while a writer thread keeps committing restore to exactly the
 *     snapshot their txn id names: the writer logs every operation with its
 *     txn id, and the model is the log replayed up to that id;
 *   - compact backups are smaller than the source and restore identically;
 *   - incremental chains of 12 (with column families created and dropped,
 *     overflow values, an empty incremental) restore exactly at every link;
 *   - every corrupt, truncated, reordered, gapped, mismatched (another
 *     database) or otherwise wrong chain is refused with a message naming
 *     the reason, and the destination is never created;
 *   - restore and backup never replace an existing path.
 * Memory platform for most, the unix platform (mapped reads) once.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cairn.h"
#include "platform.h"
#include "test_util.h"
#include "threads.h" /* CAIRN_SINGLE_THREADED on hosts without threads */

#include "test_support.h"

#ifndef CAIRN_SINGLE_THREADED
#include <pthread.h>
#include <sched.h>
#endif

#define MEM "memory"

/* ---- workload with a log ------------------------------------------------ */

/* One logged operation of a commit. */
typedef struct op {
  uint64_t txnid;
  uint8_t kind; /* 'p' put, 'd' del, 'c' create cf, 'x' drop cf */
  uint8_t cf;   /* index into CF_NAMES */
  uint32_t key;
  uint32_t vlen;
  uint64_t vseed;
} op;

typedef struct oplog {
  op *v;
  size_t n, cap;
} oplog;

static void log_add(oplog *l, op o) {
  if (l->n == l->cap) {
    l->cap = l->cap ? 2 * l->cap : 1024;
    l->v = realloc(l->v, l->cap * sizeof *l->v);
    if (!l->v)
      abort();
  }
  l->v[l->n++] = o;
}

static const char *const CF_NAMES[4] = {"default", "blocks", "state",
                                        "\x01\xff odd"};

static void key_of(uint32_t k, char out[16]) {
  snprintf(out, 16, "k%07u", (unsigned)k);
}

/* Apply one op to the model. */
static void model_apply(ts_state *s, const op *o) {
  char k[16];
  key_of(o->key, k);
  int idx = ts_state_find(s, CF_NAMES[o->cf]);
  switch (o->kind) {
  case 'p':
    if (idx >= 0)
      ts_map_put(&s->map[idx], k, strlen(k), o->vseed, o->vlen);
    break;
  case 'd':
    if (idx >= 0)
      ts_map_del(&s->map[idx], k, strlen(k));
    break;
  case 'c':
    if (idx < 0)
      ts_state_add(s, CF_NAMES[o->cf]);
    break;
  case 'x':
    if (idx > 0)
      ts_state_drop(s, idx);
    break;
  }
}

/* The model at txnid: the log replayed up to it. */
static void model_at(const oplog *l, uint64_t txnid, ts_state *s) {
  ts_state_init(s);
  for (size_t i = 0; i < l->n && l->v[i].txnid <= txnid; i++)
    model_apply(s, &l->v[i]);
}

/* Apply one op to the database (write txn). Returns a status. */
static int db_apply(cairn_txn *w, const op *o) {
  char k[16];
  key_of(o->key, k);
  cairn_cf cf = CAIRN_DEFAULT_CF;
  int rc;
  if (o->kind == 'c')
    return cairn_cf_open(w, CF_NAMES[o->cf], CAIRN_CF_CREATE, &cf);
  rc = cairn_cf_open(w, CF_NAMES[o->cf], 0, &cf);
  if (rc == CAIRN_NOTFOUND)
    return CAIRN_OK; /* the model ignores ops on a missing cf too */
  if (rc)
    return rc;
  if (o->kind == 'x')
    return o->cf ? cairn_cf_drop(w, cf) : CAIRN_OK;
  if (o->kind == 'd') {
    rc = cairn_del(w, cf, ts_str(k));
    return rc == CAIRN_NOTFOUND ? CAIRN_OK : rc;
  }
  void *v = ts_value_new(o->vlen, o->vseed);
  rc = cairn_put(w, cf, ts_str(k), ts_sl(v, o->vlen), 0);
  free(v);
  return rc;
}

/* A random op; cf_churn allows creating and dropping column families. */
static op random_op(ts_rng *r, uint32_t keys, int cf_churn) {
  op o;
  memset(&o, 0, sizeof o);
  o.cf = (uint8_t)ts_below(r, 4);
  o.key = (uint32_t)ts_below(r, keys);
  unsigned x = (unsigned)ts_below(r, 100);
  if (cf_churn && x < 2)
    o.kind = 'x';
  else if (cf_churn && x < 6)
    o.kind = 'c';
  else if (x < 30)
    o.kind = 'd';
  else {
    o.kind = 'p';
    o.vseed = ts_next(r);
    /* empty, small, and now and then an overflow run */
    o.vlen = ts_chance(r, 1, 20)   ? (uint32_t)(2000 + ts_below(r, 9000))
             : ts_chance(r, 1, 10) ? 0
                                   : (uint32_t)ts_below(r, 200);
  }
  return o;
}

/* One commit of nops random ops, logged under its txn id. */
static int commit_random(cairn_db *db, ts_rng *r, oplog *l, int nops,
                         uint32_t keys, int cf_churn) {
  cairn_txn *w;
  int rc = cairn_begin(db, 0, &w);
  if (rc)
    return rc;
  uint64_t id = cairn_txn_id(w);
  size_t mark = l->n;
  for (int i = 0; i < nops && !rc; i++) {
    op o = random_op(r, keys, cf_churn);
    o.txnid = id;
    rc = db_apply(w, &o);
    log_add(l, o);
  }
  if (rc) {
    cairn_abort(w);
    l->n = mark;
    return rc;
  }
  return cairn_commit(w);
}

/* Create the named column families (txn logged like the rest). */
static int create_cfs(cairn_db *db, oplog *l) {
  cairn_txn *w;
  int rc = cairn_begin(db, 0, &w);
  if (rc)
    return rc;
  for (uint8_t i = 1; i < 4 && !rc; i++) {
    op o = {cairn_txn_id(w), 'c', i, 0, 0, 0};
    rc = db_apply(w, &o);
    log_add(l, o);
  }
  if (rc) {
    cairn_abort(w);
    return rc;
  }
  return cairn_commit(w);
}

/* ---- restore and compare ------------------------------------------------ */

static int dest_exists(const char *plat, const char *path) {
  uint8_t *d = NULL;
  size_t n = 0;
  int rc = ts_file_read(plat, path, &d, &n);
  free(d);
  return rc != CAIRN_NOTFOUND;
}

static void check_report(void *ctx, const char *problem) {
  (void)ctx;
  printf("  check: %s\n", problem);
}

/* Restore chain[0..n) to dest and compare it with the model; the restored
 * database must also pass the integrity check and hold txn id want_txn. */
static void restore_compare(const char *plat, const char *const *chain,
                            size_t n, const char *dest, const ts_state *model,
                            uint64_t want_txn) {
  ts_set_ctx("restore of %zu backup(s) ending %s into %s", n, chain[n - 1],
             dest);
  TCHECK_OK(cairn_backup_verify_chain(chain, n, plat));
  if (!TCHECK_OK(cairn_restore(chain, n, dest, plat)))
    return;
  cairn_options o;
  ts_options(&o, plat, 0);
  o.flags = CAIRN_OPEN_RDONLY;
  cairn_db *db = NULL;
  if (!TCHECK_OK(cairn_open(dest, &o, &db)))
    return;
  cairn_txn *t;
  if (TCHECK_OK(cairn_begin(db, CAIRN_TXN_RDONLY, &t))) {
    char why[256] = "";
    int rc = ts_db_compare(t, model, why, sizeof why);
    if (!TCHECK(rc == 0))
      printf("  mismatch (%d): %s\n", rc, why);
    TCHECK(cairn_txn_id(t) == want_txn);
    cairn_abort(t);
  }
  TCHECK_OK(cairn_check(db, check_report, NULL));
  cairn_close(db);
}

static uint64_t file_size(const char *plat, const char *path) {
  uint8_t *d = NULL;
  size_t n = 0;
  if (ts_file_read(plat, path, &d, &n))
    n = 0;
  free(d);
  return n;
}

/* ---- hot backups under a concurrent writer ------------------------------ */

typedef struct writer {
  const char *plat;
  cairn_db *db;
  oplog log;
  ts_rng rng;
  atomic_int stop;
  atomic_ulong commits;
  atomic_ulong granted; /* commits the writer may make so far */
  int rc;
} writer;

static void writer_commit(writer *w) {
  int rc = commit_random(w->db, &w->rng, &w->log, 1 + (int)ts_below(&w->rng, 8),
                         3000, 0);
  if (rc && !w->rc)
    w->rc = rc;
  atomic_fetch_add(&w->commits, 1);
}

#ifndef CAIRN_SINGLE_THREADED
static void *writer_main(void *arg) {
  writer *w = arg;
  while (!atomic_load(&w->stop) && !w->rc) {
    if (atomic_load(&w->commits) < atomic_load(&w->granted)) {
      writer_commit(w);
    } else {
      struct timespec ts = {0, 200000};
      nanosleep(&ts, NULL);
    }
  }
  return NULL;
}
#endif

/* Let the writer commit at least once more (or commit here when single
 * threaded), so every backup step overlaps commits. */
static void let_writer_commit(writer *w) {
#ifdef CAIRN_SINGLE_THREADED
  writer_commit(w);
#else
  unsigned long seen = atomic_load(&w->commits);
  /* two more: one to wait for, one that may overlap the next step */
  atomic_store(&w->granted, seen + 2);
  while (atomic_load(&w->commits) == seen && !w->rc)
    sched_yield();
#endif
}

/* A backup in steps of a few pages, with commits between the steps.
 * Returns the txn id it holds (0 on failure). */
static uint64_t stepped_backup(writer *w, const char *dest, unsigned flags,
                               const char *from, unsigned long *during) {
  cairn_backup_options bo;
  cairn_backup_options_init(&bo);
  bo.flags = flags;
  bo.incremental_from = from;
  cairn_backup_job *job = NULL;
  unsigned long c0 = atomic_load(&w->commits);
  if (!TCHECK_OK(cairn_backup_begin(w->db, dest, &bo, &job)))
    return 0;
  uint64_t id = cairn_backup_txn_id(job);
  int done = 0, rc = CAIRN_OK, steps = 0;
  while (!done && !rc) {
    rc = cairn_backup_step(job, 3, &done);
    if (steps++ < 40)
      let_writer_commit(w);
  }
  TCHECK_OK(rc);
  TCHECK(!dest_exists(w->plat, dest)); /* nothing at dest before finish */
  if (!TCHECK_OK(cairn_backup_finish(job)))
    return 0;
  *during = atomic_load(&w->commits) - c0;
  return id;
}

static void test_hot_backups(const char *plat, const char *dir) {
  char path[512], dest[512];
  snprintf(path, sizeof path, "%s%shot.db", dir, *dir ? "/" : "");
  ts_set_ctx("hot backups on %s", plat);
  cairn_options o;
  ts_options(&o, plat, 0);
  o.durability = CAIRN_DURABILITY_LAZY; /* backups must sync the snapshot */
  o.lazy_sync_commits = 1000000;
  o.lazy_sync_ms = 1000000;
  writer w;
  memset(&w, 0, sizeof w);
  w.plat = plat;
  ts_rng_seed(&w.rng, 0xbac0u);
  if (!TCHECK_OK(cairn_open(path, &o, &w.db)))
    return;
  TCHECK_OK(create_cfs(w.db, &w.log));
  long pre = ts_scaled(150, 30);
  for (long i = 0; i < pre; i++)
    TCHECK_OK(commit_random(w.db, &w.rng, &w.log, 20, 3000, 0));

#ifndef CAIRN_SINGLE_THREADED
  pthread_t th;
  if (!TCHECK(pthread_create(&th, NULL, writer_main, &w) == 0)) {
    cairn_close(w.db);
    return;
  }
#endif
  enum { NINC = 4 };
  char names[NINC + 2][512];
  const char *chain[NINC + 1];
  uint64_t ids[NINC + 2];
  unsigned long during = 0, total_during = 0;
  for (int i = 0; i <= NINC; i++) {
    snprintf(names[i], sizeof names[i], "%s%shot-%d.bk", dir, *dir ? "/" : "",
             i);
    chain[i] = names[i];
    ids[i] = stepped_backup(&w, names[i], 0, i ? names[i - 1] : NULL, &during);
    total_during += during;
  }
  snprintf(names[NINC + 1], sizeof names[NINC + 1], "%s%shot-compact.bk", dir,
           *dir ? "/" : "");
  ids[NINC + 1] =
      stepped_backup(&w, names[NINC + 1], CAIRN_BACKUP_COMPACT, NULL, &during);
  total_during += during;
#ifndef CAIRN_SINGLE_THREADED
  atomic_store(&w.stop, 1);
  pthread_join(th, NULL);
#endif
  TCHECK_OK(w.rc);
  /* the writer really committed while the backups ran */
  TCHECK(total_during >= 6);
  for (int i = 1; i <= NINC + 1; i++)
    TCHECK(ids[i] > ids[i - 1] || i == NINC + 1);
  TCHECK_OK(cairn_close(w.db));

  for (int i = 0; i <= NINC; i++) {
    ts_state m;
    model_at(&w.log, ids[i], &m);
    snprintf(dest, sizeof dest, "%s%shot-restored-%d.db", dir, *dir ? "/" : "",
             i);
    restore_compare(plat, chain, (size_t)i + 1, dest, &m, ids[i]);
    ts_state_free(&m);
  }
  ts_state m;
  model_at(&w.log, ids[NINC + 1], &m);
  snprintf(dest, sizeof dest, "%s%shot-restored-compact.db", dir,
           *dir ? "/" : "");
  const char *c1[1] = {names[NINC + 1]};
  restore_compare(plat, c1, 1, dest, &m, ids[NINC + 1]);
  ts_state_free(&m);
  free(w.log.v);
}

/* An incremental backup of the database at path from the backup `from` is
 * refused with want and a message containing word; dest is not created. */
static void expect_incremental_refused(const char *path, const char *from,
                                       const char *dest, int want,
                                       const char *word) {
  cairn_db *db;
  cairn_options o;
  ts_options(&o, MEM, 0);
  if (!TCHECK_OK(cairn_open(path, &o, &db)))
    return;
  cairn_backup_options bo;
  cairn_backup_options_init(&bo);
  bo.incremental_from = from;
  TCHECK_RC(cairn_backup(db, dest, &bo), want);
  if (!TCHECK(strstr(cairn_errmsg(), word) != NULL))
    printf("  message lacks \"%s\": %s\n", word, cairn_errmsg());
  TCHECK(!dest_exists(MEM, dest));
  cairn_close(db);
}

/* ---- compact ------------------------------------------------------------ */

static void test_compact(void) {
  cairn_platform_memory_reset();
  ts_set_ctx("compact backup");
  cairn_db *db;
  cairn_options o;
  ts_options(&o, MEM, 0);
  if (!TCHECK_OK(cairn_open("churn.db", &o, &db)))
    return;
  oplog l = {0};
  ts_rng r;
  ts_rng_seed(&r, 77);
  TCHECK_OK(create_cfs(db, &l));
  long rounds = ts_scaled(60, 20);
  /* fill, then delete most of it: a churned file with many free pages and
   * half-empty leaves */
  for (long i = 0; i < rounds; i++) {
    cairn_txn *w;
    if (!TCHECK_OK(cairn_begin(db, 0, &w)))
      break;
    for (int k = 0; k < 60; k++) {
      op x = {cairn_txn_id(w),
              'p',
              (uint8_t)ts_below(&r, 4),
              (uint32_t)ts_below(&r, 100000),
              (uint32_t)ts_below(&r, 120),
              ts_next(&r)};
      if (ts_chance(&r, 1, 50))
        x.vlen = 5000;
      TCHECK_OK(db_apply(w, &x));
      log_add(&l, x);
    }
    TCHECK_OK(cairn_commit(w));
  }
  for (long i = 0; i < rounds; i++)
    TCHECK_OK(commit_random(db, &r, &l, 80, 100000, 0));
  {
    /* delete two thirds of what is left, in random order */
    ts_state m;
    model_at(&l, UINT64_MAX, &m);
    cairn_txn *w;
    TCHECK_OK(cairn_begin(db, 0, &w));
    for (int c = 0; c < m.ncf; c++) {
      int cfi = 0;
      for (int k = 0; k < 4; k++)
        if (strcmp(CF_NAMES[k], m.name[c]) == 0)
          cfi = k;
      for (size_t e = 0; e < m.map[c].n; e++) {
        if (ts_chance(&r, 2, 3)) {
          op x = {cairn_txn_id(w), 'd', (uint8_t)cfi, 0, 0, 0};
          char kb[16] = {0};
          memcpy(kb, m.map[c].e[e].key,
                 m.map[c].e[e].klen < 15 ? m.map[c].e[e].klen : 15);
          x.key = (uint32_t)strtoul(kb + 1, NULL, 10);
          TCHECK_OK(db_apply(w, &x));
          log_add(&l, x);
        }
      }
    }
    TCHECK_OK(cairn_commit(w));
    ts_state_free(&m);
  }
  cairn_txn *t;
  /* page counts describe the checkpointed tree: fold the overlay in */
  TCHECK_OK(cairn_checkpoint(db));
  TCHECK_OK(cairn_begin(db, CAIRN_TXN_RDONLY, &t));
  uint64_t id = cairn_txn_id(t);
  cairn_cf_stat src_stat;
  TCHECK_OK(cairn_cf_stat_get(t, CAIRN_DEFAULT_CF, &src_stat));
  cairn_abort(t);
  cairn_backup_options bo;
  cairn_backup_options_init(&bo);
  TCHECK_OK(cairn_backup(db, "churn-full.bk", &bo));
  bo.flags = CAIRN_BACKUP_COMPACT;
  TCHECK_OK(cairn_backup(db, "churn-compact.bk", &bo));
  cairn_backup_info info;
  TCHECK_OK(cairn_backup_verify("churn-compact.bk", MEM, &info));
  TCHECK(info.kind == CAIRN_BACKUP_COMPACTED);
  TCHECK(info.txn_id == id);
  /* an incremental backup cannot continue a compact one */
  cairn_backup_options_init(&bo);
  bo.incremental_from = "churn-compact.bk";
  TCHECK_RC(cairn_backup(db, "churn-inc.bk", &bo), CAIRN_INVALID);
  TCHECK(strstr(cairn_errmsg(), "compact") != NULL);
  TCHECK(!dest_exists(MEM, "churn-inc.bk"));
  TCHECK_OK(cairn_close(db));

  uint64_t src = file_size(MEM, "churn.db");
  uint64_t full = file_size(MEM, "churn-full.bk");
  uint64_t compact = file_size(MEM, "churn-compact.bk");
  printf("compact: source %llu bytes, full backup %llu, compact %llu\n",
         (unsigned long long)src, (unsigned long long)full,
         (unsigned long long)compact);
  TCHECK(compact < src);
  TCHECK(compact < full);

  ts_state m;
  model_at(&l, id, &m);
  const char *c1[1] = {"churn-compact.bk"};
  restore_compare(MEM, c1, 1, "churn-from-compact.db", &m, id);
  const char *f1[1] = {"churn-full.bk"};
  restore_compare(MEM, f1, 1, "churn-from-full.db", &m, id);
  /* the compact copy packs its leaves */
  cairn_options ro;
  ts_options(&ro, MEM, 0);
  ro.flags = CAIRN_OPEN_RDONLY;
  if (TCHECK_OK(cairn_open("churn-from-compact.db", &ro, &db))) {
    TCHECK_OK(cairn_begin(db, CAIRN_TXN_RDONLY, &t));
    cairn_cf_stat cs;
    TCHECK_OK(cairn_cf_stat_get(t, CAIRN_DEFAULT_CF, &cs));
    TCHECK(cs.entries == src_stat.entries);
    /* (a checkpoint folds the log's changes in key order, which packs the
     * source's leaves too: the copy can only match it) */
    if (!TCHECK(cs.leaf_pages <= src_stat.leaf_pages))
      printf("    compact copy: %llu leaves, source %llu\n",
             (unsigned long long)cs.leaf_pages,
             (unsigned long long)src_stat.leaf_pages);
    cairn_abort(t);
    cairn_close(db);
  }
  TCHECK(file_size(MEM, "churn-from-compact.db") < src);
  ts_state_free(&m);
  free(l.v);
}

/* ---- incremental chains ---------------------------------------------------
 */

#define CHAIN 12

static void test_chain(uint32_t page_size) {
  cairn_platform_memory_reset();
  ts_set_ctx("incremental chain, page size %u", (unsigned)page_size);
  cairn_db *db;
  cairn_options o;
  ts_options(&o, MEM, page_size);
  if (!TCHECK_OK(cairn_open("chain.db", &o, &db)))
    return;
  oplog l = {0};
  ts_rng r;
  ts_rng_seed(&r, 1000 + page_size);
  TCHECK_OK(create_cfs(db, &l));
  char names[CHAIN + 1][32];
  const char *chain[CHAIN + 1];
  uint64_t ids[CHAIN + 1];
  long per = ts_scaled(12, 3);
  for (int i = 0; i <= CHAIN; i++) {
    /* link 7 follows link 6 with no commit in between: an empty one */
    int commits = i == 7 ? 0 : (int)per + (int)ts_below(&r, (uint64_t)per);
    for (int c = 0; c < commits; c++)
      TCHECK_OK(commit_random(db, &r, &l, 1 + (int)ts_below(&r, 40), 2000, 1));
    snprintf(names[i], sizeof names[i], "chain-%02d.bk", i);
    chain[i] = names[i];
    cairn_backup_options bo;
    cairn_backup_options_init(&bo);
    bo.incremental_from = i ? names[i - 1] : NULL;
    cairn_backup_job *job;
    if (!TCHECK_OK(cairn_backup_begin(db, names[i], &bo, &job)))
      break;
    ids[i] = cairn_backup_txn_id(job);
    TCHECK_OK(cairn_backup_finish(job));
    cairn_backup_info info;
    TCHECK_OK(cairn_backup_verify(names[i], MEM, &info));
    TCHECK(info.txn_id == ids[i]);
    TCHECK(info.kind ==
           (i ? CAIRN_BACKUP_INCREMENTAL : (uint32_t)CAIRN_BACKUP_FULL));
    TCHECK(info.base_txn_id == (i ? ids[i - 1] : 0));
    TCHECK(info.page_size == (page_size ? page_size : 4096));
    if (i == 7)
      TCHECK(ids[7] == ids[6]);
    /* an incremental holds fewer pages than the database */
    if (i)
      TCHECK(info.pages < info.db_pages);
  }
  /* one more commit after the last backup: not in any restore */
  TCHECK_OK(commit_random(db, &r, &l, 10, 2000, 1));
  TCHECK_OK(cairn_close(db));
  for (int i = 0; i <= CHAIN; i++) {
    ts_state m;
    model_at(&l, ids[i], &m);
    char dest[32];
    snprintf(dest, sizeof dest, "chain-restored-%02d.db", i);
    restore_compare(MEM, chain, (size_t)i + 1, dest, &m, ids[i]);
    ts_state_free(&m);
  }
  /* a restored database is a new database: it can be backed up and
   * restored again, but the old chain does not continue it */
  cairn_options ro;
  ts_options(&ro, MEM, 0);
  char last[32];
  snprintf(last, sizeof last, "chain-restored-%02d.db", CHAIN);
  if (TCHECK_OK(cairn_open(last, &ro, &db))) {
    cairn_backup_options bo;
    cairn_backup_options_init(&bo);
    bo.incremental_from = chain[CHAIN];
    TCHECK_RC(cairn_backup(db, "chain-next.bk", &bo), CAIRN_INVALID);
    TCHECK(strstr(cairn_errmsg(), "database") != NULL);
    TCHECK_OK(cairn_backup(db, "chain-again.bk", NULL));
    cairn_close(db);
    ts_state m;
    model_at(&l, ids[CHAIN], &m);
    const char *c1[1] = {"chain-again.bk"};
    restore_compare(MEM, c1, 1, "chain-again.db", &m, ids[CHAIN]);
    ts_state_free(&m);
  }
  free(l.v);
}

/* ---- refusals ------------------------------------------------------------ */

/* Expect restore of chain to fail with want and a message containing
 * every word in need (NULL-terminated), leaving dest absent. */
static void expect_refused(const char *what, const char *const *chain, size_t n,
                           int want, const char *const *need) {
  ts_set_ctx("refusal: %s", what);
  /* verify_chain refuses exactly as restore does, without writing */
  for (int verify = 0; verify < 2; verify++) {
    TCHECK_RC(verify ? cairn_backup_verify_chain(chain, n, MEM)
                     : cairn_restore(chain, n, "refused.db", MEM),
              want);
    const char *msg = cairn_errmsg();
    for (const char *const *w = need; *w; w++)
      if (!TCHECK(strstr(msg, *w) != NULL))
        printf("  message lacks \"%s\": %s\n", *w, msg);
  }
  TCHECK(!dest_exists(MEM, "refused.db"));
}

#define NEED(...)                                                              \
  (const char *const[]) { __VA_ARGS__, NULL }

/* A copy of file src at dst with edit applied. */
static void forge(const char *src, const char *dst, size_t keep, long flip_at,
                  const char *append) {
  uint8_t *d = NULL;
  size_t n = 0;
  if (!TCHECK_OK(ts_file_read(MEM, src, &d, &n)))
    return;
  if (flip_at < 0)
    flip_at += (long)n;
  if (flip_at >= 0 && (size_t)flip_at < n)
    d[flip_at] ^= 0x20;
  size_t len = keep < n ? keep : n;
  uint8_t *out = malloc(len + (append ? strlen(append) : 0) + 1);
  memcpy(out, d, len);
  if (append) {
    memcpy(out + len, append, strlen(append));
    len += strlen(append);
  }
  ts_file_remove(MEM, dst);
  TCHECK_OK(ts_file_write(MEM, dst, out, len));
  free(out);
  free(d);
}

static void make_chain(const char *db_path, const char *prefix, int n,
                       uint64_t seed, char names[][32]) {
  cairn_db *db;
  cairn_options o;
  ts_options(&o, MEM, 0);
  if (!TCHECK_OK(cairn_open(db_path, &o, &db)))
    return;
  oplog l = {0};
  ts_rng r;
  ts_rng_seed(&r, seed);
  for (int i = 0; i < n; i++) {
    for (int c = 0; c < 5; c++)
      TCHECK_OK(commit_random(db, &r, &l, 20, 500, 0));
    snprintf(names[i], 32, "%s-%d.bk", prefix, i);
    cairn_backup_options bo;
    cairn_backup_options_init(&bo);
    bo.incremental_from = i ? names[i - 1] : NULL;
    TCHECK_OK(cairn_backup(db, names[i], &bo));
  }
  cairn_backup_options bo;
  cairn_backup_options_init(&bo);
  bo.flags = CAIRN_BACKUP_COMPACT;
  char c[40];
  snprintf(c, sizeof c, "%s-compact.bk", prefix);
  TCHECK_OK(cairn_backup(db, c, &bo));
  TCHECK_OK(cairn_close(db));
  free(l.v);
}

static void test_refusals(void) {
  cairn_platform_memory_reset();
  char a[4][32], b[4][32];
  /* two databases with the same history of txn ids */
  make_chain("a.db", "a", 4, 1, a);
  make_chain("b.db", "b", 4, 2, b);
  const size_t full = file_size(MEM, a[0]);
  const size_t inc = file_size(MEM, a[1]);
  TCHECK(full > 4096 + 40 && inc > 4096 + 40);

  /* the sound chain restores (and the refusals below are about the edit) */
  {
    const char *ok[4] = {a[0], a[1], a[2], a[3]};
    TCHECK_OK(cairn_restore(ok, 4, "sound.db", MEM));
  }
  /* order and composition of the chain */
  expect_refused("incremental first", (const char *[]){a[1], a[2]}, 2,
                 CAIRN_INVALID, NEED("a-1.bk", "full backup"));
  expect_refused("incremental alone", (const char *[]){a[2]}, 1, CAIRN_INVALID,
                 NEED("a-2.bk", "incremental"));
  expect_refused("reordered", (const char *[]){a[0], a[2], a[1], a[3]}, 4,
                 CAIRN_INVALID, NEED("wrong order", "a-2.bk"));
  expect_refused("full last", (const char *[]){a[1], a[0]}, 2, CAIRN_INVALID,
                 NEED("wrong order"));
  expect_refused("gap", (const char *[]){a[0], a[1], a[3]}, 3, CAIRN_INVALID,
                 NEED("gap", "a-3.bk"));
  expect_refused("two fulls", (const char *[]){a[0], a[0]}, 2, CAIRN_INVALID,
                 NEED("full"));
  expect_refused("repeated incremental", (const char *[]){a[0], a[1], a[1]}, 3,
                 CAIRN_INVALID, NEED("a-1.bk"));
  expect_refused("other database", (const char *[]){a[0], b[1]}, 2,
                 CAIRN_INVALID, NEED("b-1.bk", "database"));
  expect_refused("other database in the middle",
                 (const char *[]){a[0], a[1], b[2], a[3]}, 4, CAIRN_INVALID,
                 NEED("b-2.bk", "database"));
  expect_refused("compact base", (const char *[]){"a-compact.bk", a[1]}, 2,
                 CAIRN_INVALID, NEED("compact"));
  expect_refused("missing file", (const char *[]){a[0], "nope.bk"}, 2,
                 CAIRN_NOTFOUND, NEED("nope.bk", "no such"));

  /* damaged files: each refused with its reason, naming the file */
  struct {
    const char *what;
    size_t keep;
    long flip;
    const char *append;
    int rc;
    const char *word;
  } cases[] = {
      {"empty", 0, -1000000, NULL, CAIRN_NOTADB, "not a cairn backup"},
      {"4 bytes", 4, -1000000, NULL, CAIRN_NOTADB, "not a cairn backup"},
      {"inside the header", 1000, -1000000, NULL, CAIRN_CORRUPT, "truncated"},
      {"inside a record", 4096 + 2000, -1000000, NULL, CAIRN_CORRUPT,
       "truncated"},
      {"no end marker", inc - 40, -1000000, NULL, CAIRN_CORRUPT, "truncated"},
      {"inside the end marker", inc - 7, -1000000, NULL, CAIRN_CORRUPT,
       "truncated"},
      {"flipped magic", SIZE_MAX, 1, NULL, CAIRN_NOTADB, "not a cairn backup"},
      {"flipped header", SIZE_MAX, 50, NULL, CAIRN_CORRUPT, "header checksum"},
      {"flipped page byte", SIZE_MAX, 4096 + 16 + 500, NULL, CAIRN_CORRUPT,
       "checksum mismatch"},
      {"flipped record header", SIZE_MAX, 4096 + 1, NULL, CAIRN_CORRUPT,
       "record 1"},
      {"flipped last record", SIZE_MAX, -50, NULL, CAIRN_CORRUPT,
       "checksum mismatch"},
      {"flipped file checksum", SIZE_MAX, -2, NULL, CAIRN_CORRUPT,
       "whole-file checksum"},
      {"flipped record count", SIZE_MAX, -32, NULL, CAIRN_CORRUPT,
       "end marker"},
      {"appended bytes", SIZE_MAX, -1000000, "more", CAIRN_CORRUPT,
       "after the end marker"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    forge(a[1], "damaged.bk", cases[i].keep, cases[i].flip, cases[i].append);
    char what[96];
    snprintf(what, sizeof what, "damaged incremental: %s", cases[i].what);
    expect_refused(what, (const char *[]){a[0], "damaged.bk"}, 2, cases[i].rc,
                   NEED("damaged.bk", "backup 2", cases[i].word));
    ts_set_ctx("verify: %s", cases[i].what);
    TCHECK_RC(cairn_backup_verify("damaged.bk", MEM, NULL), cases[i].rc);
    TCHECK(strstr(cairn_errmsg(), cases[i].word) != NULL);
    /* and as the base of a new incremental backup, where it is cheap to
     * notice (header, length, end marker) */
    if (cases[i].keep != SIZE_MAX || cases[i].flip == 1 || cases[i].flip == 50)
      expect_incremental_refused("a.db", "damaged.bk", "from-damaged.bk",
                                 cases[i].rc, "damaged.bk");
  }
  /* a damaged full backup: named as backup 1 */
  forge(a[0], "damaged-full.bk", SIZE_MAX, (long)full / 2, NULL);
  expect_refused("damaged full", (const char *[]){"damaged-full.bk", a[1]}, 2,
                 CAIRN_CORRUPT, NEED("backup 1", "damaged-full.bk"));

  /* incremental from another database's backup */
  expect_incremental_refused("a.db", b[3], "cross.bk", CAIRN_INVALID,
                             "database");
}

/* ---- never overwrite ------------------------------------------------------
 */

static void test_never_overwrite(void) {
  cairn_platform_memory_reset();
  ts_set_ctx("never overwrite");
  char a[2][32];
  make_chain("live.db", "live", 2, 9, a);
  uint8_t *before = NULL, *after = NULL;
  size_t nb = 0, na = 0;
  TCHECK_OK(ts_file_read(MEM, "live.db", &before, &nb));
  /* restore onto a live database, onto a plain file, onto a backup */
  TCHECK_RC(cairn_restore((const char *[]){a[0], a[1]}, 2, "live.db", MEM),
            CAIRN_EXISTS);
  TCHECK(strstr(cairn_errmsg(), "live.db") != NULL);
  TCHECK_OK(ts_file_read(MEM, "live.db", &after, &na));
  TCHECK(na == nb && memcmp(before, after, nb) == 0);
  free(after);
  TCHECK_OK(ts_file_write(MEM, "note.txt", "hello", 5));
  TCHECK_RC(cairn_restore((const char *[]){a[0]}, 1, "note.txt", MEM),
            CAIRN_EXISTS);
  TCHECK(file_size(MEM, "note.txt") == 5);
  uint64_t bsize = file_size(MEM, a[1]);
  TCHECK_RC(cairn_restore((const char *[]){a[0]}, 1, a[1], MEM), CAIRN_EXISTS);
  TCHECK(file_size(MEM, a[1]) == bsize);
  /* a backup onto an existing file */
  cairn_db *db;
  cairn_options o;
  ts_options(&o, MEM, 0);
  if (TCHECK_OK(cairn_open("live.db", &o, &db))) {
    TCHECK_RC(cairn_backup(db, "note.txt", NULL), CAIRN_EXISTS);
    TCHECK(file_size(MEM, "note.txt") == 5);
    TCHECK_RC(cairn_backup(db, a[0], NULL), CAIRN_EXISTS);
    /* an aborted backup leaves nothing behind */
    cairn_backup_job *job;
    if (TCHECK_OK(cairn_backup_begin(db, "aborted.bk", NULL, &job))) {
      int done = 0;
      TCHECK_OK(cairn_backup_step(job, 1, &done));
      cairn_backup_abort(job);
    }
    TCHECK(!dest_exists(MEM, "aborted.bk"));
    /* the destination appears while the backup runs: still not replaced */
    if (TCHECK_OK(cairn_backup_begin(db, "late.bk", NULL, &job))) {
      TCHECK_OK(ts_file_write(MEM, "late.bk", "mine", 4));
      TCHECK_RC(cairn_backup_finish(job), CAIRN_EXISTS);
      TCHECK(file_size(MEM, "late.bk") == 4);
    }
    /* misuse */
    TCHECK_RC(cairn_backup(db, "", NULL), CAIRN_INVALID);
    cairn_backup_options bo;
    cairn_backup_options_init(&bo);
    bo.flags = CAIRN_BACKUP_COMPACT;
    bo.incremental_from = a[0];
    TCHECK_RC(cairn_backup(db, "x.bk", &bo), CAIRN_INVALID);
    bo.flags = 0x80;
    bo.incremental_from = NULL;
    TCHECK_RC(cairn_backup(db, "x.bk", &bo), CAIRN_INVALID);
    TCHECK(!dest_exists(MEM, "x.bk"));
    cairn_close(db);
  }
  TCHECK_RC(cairn_restore(NULL, 0, "y.db", MEM), CAIRN_INVALID);
  TCHECK_OK(ts_file_read(MEM, "live.db", &after, &na));
  TCHECK(na == nb && memcmp(before, after, nb) == 0);
  free(after);
  free(before);
}

/* ---- edge cases ------------------------------------------------------------
 */

/* A backup of a database that has never committed (its meta says txn 1),
 * continued by an incremental one, and a compact backup of one commit. */
static void test_fresh_database(void) {
  cairn_platform_memory_reset();
  ts_set_ctx("backup of a fresh database");
  cairn_db *db;
  cairn_options o;
  ts_options(&o, MEM, 0);
  if (!TCHECK_OK(cairn_open("fresh.db", &o, &db)))
    return;
  cairn_backup_info info;
  TCHECK_OK(cairn_backup(db, "fresh-0.bk", NULL));
  TCHECK_OK(cairn_backup_verify("fresh-0.bk", MEM, &info));
  TCHECK(info.txn_id == 1 && info.pages == 0 && info.db_pages == 2);
  ts_state empty;
  ts_state_init(&empty);
  const char *c0[1] = {"fresh-0.bk"};
  restore_compare(MEM, c0, 1, "fresh-restored-0.db", &empty, 1);
  oplog l = {0};
  ts_rng r;
  ts_rng_seed(&r, 5);
  TCHECK_OK(commit_random(db, &r, &l, 30, 100, 1));
  cairn_backup_options bo;
  cairn_backup_options_init(&bo);
  bo.incremental_from = "fresh-0.bk";
  TCHECK_OK(cairn_backup(db, "fresh-1.bk", &bo));
  TCHECK_OK(cairn_backup_verify("fresh-1.bk", MEM, &info));
  TCHECK(info.kind == CAIRN_BACKUP_INCREMENTAL && info.base_txn_id == 1 &&
         info.txn_id == 2);
  bo.flags = CAIRN_BACKUP_COMPACT;
  bo.incremental_from = NULL;
  TCHECK_OK(cairn_backup(db, "fresh-c.bk", &bo));
  TCHECK_OK(cairn_close(db));
  ts_state m;
  model_at(&l, 2, &m);
  const char *c1[2] = {"fresh-0.bk", "fresh-1.bk"};
  restore_compare(MEM, c1, 2, "fresh-restored-1.db", &m, 2);
  const char *cc[1] = {"fresh-c.bk"};
  restore_compare(MEM, cc, 1, "fresh-restored-c.db", &m, 2);
  ts_state_free(&m);
  ts_state_free(&empty);
  free(l.v);
}

#ifdef CAIRN_HAVE_UNIX_PLATFORM
/* The backup files on another platform than the database (options
 * .platform): a memory database backed up to files, restored there. */
static void test_other_platform(void) {
  cairn_platform_memory_reset();
  ts_set_ctx("backup to another platform");
  char *dir = ts_mkdtemp();
  if (!TCHECK(dir != NULL))
    return;
  cairn_db *db;
  cairn_options o;
  ts_options(&o, MEM, 0);
  oplog l = {0};
  ts_rng r;
  ts_rng_seed(&r, 11);
  char full[512], inc[512], dest[512];
  snprintf(full, sizeof full, "%s/full.bk", dir);
  snprintf(inc, sizeof inc, "%s/inc.bk", dir);
  snprintf(dest, sizeof dest, "%s/restored.db", dir);
  uint64_t id = 0;
  if (TCHECK_OK(cairn_open("mem.db", &o, &db))) {
    TCHECK_OK(create_cfs(db, &l));
    for (int i = 0; i < 5; i++)
      TCHECK_OK(commit_random(db, &r, &l, 40, 500, 0));
    cairn_backup_options bo;
    cairn_backup_options_init(&bo);
    bo.platform = "unix";
    TCHECK_OK(cairn_backup(db, full, &bo));
    for (int i = 0; i < 5; i++)
      TCHECK_OK(commit_random(db, &r, &l, 40, 500, 0));
    bo.incremental_from = full;
    cairn_backup_job *job;
    if (TCHECK_OK(cairn_backup_begin(db, inc, &bo, &job))) {
      id = cairn_backup_txn_id(job);
      TCHECK_OK(cairn_backup_finish(job));
    }
    TCHECK(!dest_exists(MEM, full)); /* not on the database's platform */
    TCHECK_OK(cairn_close(db));
  }
  ts_state m;
  model_at(&l, id, &m);
  const char *chain[2] = {full, inc};
  restore_compare("unix", chain, 2, dest, &m, id);
  ts_state_free(&m);
  free(l.v);
  ts_rmtree(dir);
  free(dir);
}
#endif

int main(void) {
  cairn_platform_memory_reset();
  test_hot_backups(MEM, "");
#ifdef CAIRN_HAVE_UNIX_PLATFORM
  {
    char *dir = ts_mkdtemp();
    if (CHECK(dir != NULL)) {
      test_hot_backups("unix", dir);
      ts_rmtree(dir);
      free(dir);
    }
  }
#endif
  test_compact();
  test_chain(0);
  test_chain(8192);
  test_refusals();
  test_never_overwrite();
  test_fresh_database();
#ifdef CAIRN_HAVE_UNIX_PLATFORM
  test_other_platform();
#endif
  cairn_platform_memory_reset();
  return test_summary();
}
