/*
 * test_crash.c — crash safety and I/O-error safety, simulated with the
 * "fault" platform (tests/fault_platform.h).
 *
 * Proves, for deterministic workloads of commits (puts and deletes across
 * two column families, small values and multi-page ones, cf create/drop;
 * sync durability, and lazy durability with periodic cairn_sync and an
 * automatic-sync variant), that:
 *   1. power loss at EVERY boundary operation (write, sync, truncate,
 *      rename, sync_dir) — densely for short workloads, a dense random
 *      sample for long ones — with several seeds deciding which unsynced
 *      writes survive or tear, leaves a database that opens, passes
 *      cairn_check and holds exactly the state after some commit j with
 *      (last commit acknowledged durable) <= j <= (last commit attempted),
 *      and that stays writable;
 *   2. creating a new database crashed at any point leaves a path that
 *      opens with CREATE as a working empty database (never CAIRN_CORRUPT
 *      for a database that was never acknowledged), and a database whose
 *      creation was acknowledged opens without CREATE;
 *   3. ENOSPC and EIO injected at every boundary operation (one-shot and
 *      persistent) make the failing call return CAIRN_NOSPC / CAIRN_IO with
 *      a message, without crashing, and after fault_clear_injection a
 *      reopen finds exactly the last committed state (or, when the failing
 *      call was the commit itself, possibly that commit whole — the
 *      engine's documented "indeterminate" outcome of a meta-step failure),
 *      passing cairn_check.
 * Failures print the workload, crash point and seed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn.h"
#include "fault_platform.h"
#include "platform.h"
#include "test_util.h"

#include "test_support.h"

#define PATH "crash.db"
#define AUX "aux"

/* ---- workloads -------------------------------------------------------------
 */

enum { OP_PUT, OP_DEL, OP_CF_CREATE, OP_CF_DROP };

typedef struct wop {
  uint8_t kind;
  uint8_t cf; /* 0 default, 1 aux */
  uint8_t klen;
  uint8_t key[16];
  uint32_t vlen;
  uint64_t vseed;
} wop;

typedef struct wcommit {
  int nops;
  wop *ops;
  int sync_after; /* lazy: cairn_sync after this commit */
} wcommit;

typedef struct workload {
  const char *name;
  int lazy;
  uint32_t auto_sync; /* lazy_sync_commits */
  uint32_t psize;
  int n;             /* commits */
  wcommit *c;        /* 1..n */
  uint64_t *sig;     /* 0..n: signature of the state after commit j */
  ts_state *states;  /* 0..n */
  uint32_t ckpt_mib; /* options.checkpoint_mib (0: the default) */
  int appends;       /* two commits in three append big values */
} workload;

/* Signature of a state: content hash plus the set of cf names. */
static uint64_t names_sig(const char *name) {
  return ts_hash_bytes(name, strlen(name), 0xabcdef) * 3;
}

static uint64_t state_sig(const ts_state *s) {
  uint64_t h = ts_state_hash(s);
  for (int i = 0; i < s->ncf; i++)
    h += names_sig(s->name[i]);
  return h;
}

static void apply(ts_state *st, const wop *o) {
  int aux = ts_state_find(st, AUX);
  switch (o->kind) {
  case OP_PUT:
    ts_map_put(&st->map[o->cf ? aux : 0], o->key, o->klen, o->vseed, o->vlen);
    break;
  case OP_DEL: ts_map_del(&st->map[o->cf ? aux : 0], o->key, o->klen); break;
  case OP_CF_CREATE: ts_state_add(st, AUX); break;
  default: ts_state_drop(st, aux); break;
  }
}

static void gen_workload(workload *w, uint64_t seed, int keyspace, int maxops) {
  ts_rng r;
  ts_state st;
  ts_rng_seed(&r, seed);
  ts_state_init(&st);
  int next_append = 0;
  w->c = calloc((size_t)w->n + 1, sizeof *w->c);
  w->sig = calloc((size_t)w->n + 1, sizeof *w->sig);
  w->states = calloc((size_t)w->n + 1, sizeof *w->states);
  if (!w->c || !w->sig || !w->states)
    abort();
  ts_state_copy(&w->states[0], &st);
  w->sig[0] = state_sig(&st);
  for (int j = 1; j <= w->n; j++) {
    wcommit *c = &w->c[j];
    int aux = ts_state_find(&st, AUX) >= 0;
    c->ops = calloc((size_t)maxops + 2, sizeof *c->ops);
    if (!c->ops)
      abort();
    if (!aux && ts_chance(&r, 1, 3)) {
      c->ops[c->nops].kind = OP_CF_CREATE;
      apply(&st, &c->ops[c->nops++]);
      aux = 1;
    } else if (aux && j > 2 && ts_chance(&r, 1, 12)) {
      c->ops[c->nops].kind = OP_CF_DROP;
      apply(&st, &c->ops[c->nops++]);
      aux = 0;
    }
    int nops = 1 + (int)ts_below(&r, (uint64_t)maxops);
    if (w->appends && j % 3) { /* keys beyond all before, ~0.5 MB a commit */
      for (int i = 0; i < maxops; i++) {
        wop *o = &c->ops[c->nops++];
        o->kind = OP_PUT;
        o->cf = (uint8_t)(aux && ts_chance(&r, 1, 3));
        o->klen = (uint8_t)snprintf((char *)o->key, sizeof o->key, "z%07d",
                                    next_append++);
        o->vlen = w->psize / 2 + (uint32_t)ts_below(&r, 3 * w->psize);
        o->vseed = ts_next(&r);
        apply(&st, o);
      }
      nops = 0;
    }
    for (int i = 0; i < nops; i++) {
      wop *o = &c->ops[c->nops];
      o->cf = (uint8_t)(aux && ts_chance(&r, 1, 3));
      const ts_map *m = &st.map[o->cf ? ts_state_find(&st, AUX) : 0];
      if (m->n && ts_chance(&r, 1, 5)) {
        const ts_ent *e = &m->e[ts_below(&r, m->n)];
        o->kind = OP_DEL;
        o->klen = (uint8_t)e->klen;
        memcpy(o->key, e->key, e->klen);
      } else {
        o->kind = OP_PUT;
        o->klen = (uint8_t)snprintf((char *)o->key, sizeof o->key, "k%05d",
                                    (int)ts_below(&r, (uint64_t)keyspace));
        uint64_t x = ts_below(&r, 100);
        o->vlen = x < 80   ? 10 + (uint32_t)ts_below(&r, 190)
                  : x < 95 ? w->psize / 2 + (uint32_t)ts_below(&r, 3 * w->psize)
                           : 20000 + (uint32_t)ts_below(&r, 40000);
        o->vseed = ts_next(&r);
      }
      apply(&st, o);
      c->nops++;
    }
    c->sync_after = w->lazy && (j % 4 == 0);
    ts_state_copy(&w->states[j], &st);
    w->sig[j] = state_sig(&st);
  }
  ts_state_free(&st);
}

static void free_workload(workload *w) {
  for (int j = 0; j <= w->n; j++) {
    if (j)
      free(w->c[j].ops);
    ts_state_free(&w->states[j]);
  }
  free(w->c);
  free(w->sig);
  free(w->states);
}

/* ---- running a workload ------------------------------------------------- */

typedef struct progress {
  int created;   /* open with CREATE returned OK */
  int acked;     /* last commit known durable (-1: none, 0: creation) */
  int attempted; /* last commit whose commit call was made */
  int committed; /* last commit whose commit call returned OK */
  int fail_rc;   /* the first error (0 if none) */
  const char *fail_where;
  char fail_msg[256];
  uint64_t folded; /* commits that folded themselves (metrics) */
} progress;

/* Extra open flags for every workload: CAIRN_OPEN_NOLOG runs the plain
 * copy-on-write commit path instead of the write-ahead log. */
static uint32_t g_mode_flags;

static void options_for(const workload *w, cairn_options *o, uint32_t flags) {
  ts_options(o, "fault", w->psize);
  o->flags = flags | g_mode_flags;
  o->durability = w->lazy ? CAIRN_DURABILITY_LAZY : CAIRN_DURABILITY_SYNC;
  o->lazy_sync_commits = w->auto_sync;
  o->lazy_sync_ms = 0;
  o->checkpoint_mib = w->ckpt_mib;
}

static int failed_at(progress *p, int rc, const char *where) {
  p->fail_rc = rc;
  p->fail_where = where;
  snprintf(p->fail_msg, sizeof p->fail_msg, "%s", cairn_errmsg());
  return rc;
}

static cairn_cf g_aux;

static int apply_db(cairn_txn *t, const wop *o) {
  cairn_cf cf = CAIRN_DEFAULT_CF;
  int rc;
  if (o->kind == OP_CF_CREATE)
    return cairn_cf_open(t, AUX, CAIRN_CF_CREATE, &g_aux);
  if (o->kind == OP_CF_DROP || o->cf) {
    rc = cairn_cf_open(t, AUX, 0, &g_aux);
    if (rc)
      return rc;
    cf = g_aux;
  }
  if (o->kind == OP_CF_DROP)
    return cairn_cf_drop(t, cf);
  if (o->kind == OP_DEL)
    return cairn_del(t, cf, ts_sl(o->key, o->klen));
  void *v = ts_value_new(o->vlen, o->vseed);
  rc = cairn_put(t, cf, ts_sl(o->key, o->klen), ts_sl(v, o->vlen), 0);
  free(v);
  return rc;
}

/* Run the workload on the fault platform until the first error. The db is
 * closed on return (whatever close returns). */
static void run_workload(const workload *w, progress *p) {
  cairn_options o;
  cairn_db *db = NULL;
  int rc;
  memset(p, 0, sizeof *p);
  p->acked = -1;
  p->attempted = 0;
  p->committed = 0;
  options_for(w, &o, CAIRN_OPEN_CREATE);
  rc = cairn_open(PATH, &o, &db);
  if (rc) {
    failed_at(p, rc, "open (create)");
    return;
  }
  p->created = 1;
  p->acked = 0;
  for (int j = 1; j <= w->n; j++) {
    cairn_txn *t = NULL;
    rc = cairn_begin(db, 0, &t);
    if (rc) {
      failed_at(p, rc, "begin");
      break;
    }
    for (int i = 0; i < w->c[j].nops && rc == CAIRN_OK; i++)
      rc = apply_db(t, &w->c[j].ops[i]);
    if (rc) {
      failed_at(p, rc, "put/del/cf");
      cairn_abort(t);
      break;
    }
    p->attempted = j;
    rc = cairn_commit(t);
    if (rc) {
      failed_at(p, rc, "commit");
      break;
    }
    p->committed = j;
    if (!w->lazy)
      p->acked = j;
    if (w->c[j].sync_after) {
      rc = cairn_sync(db);
      if (rc) {
        failed_at(p, rc, "sync");
        break;
      }
      p->acked = j;
    }
  }
  cairn_metrics m;
  if (cairn_metrics_get(db, &m) == CAIRN_OK)
    p->folded = m.commits_folded;
  rc = cairn_close(db);
  if (rc == CAIRN_OK && p->fail_rc == 0)
    p->acked = p->committed;
  else if (rc && p->fail_rc == 0)
    failed_at(p, rc, "close");
}

static long g_trials;
/* Where recoveries landed: on the last attempted commit, or earlier (a lost
 * unsynced commit); shows the crash points really exercise both. */
static long g_at_attempted, g_before_attempted;

static int names_cb(void *ctx, const char *name, cairn_cf cf) {
  (void)cf;
  *(uint64_t *)ctx += names_sig(name);
  return 0;
}

/* Everything of the database matches one of states[lo..hi]; returns the
 * index found or -1 (then prints a diff against hi). */
static int match_state(const workload *w, cairn_txn *t, int lo, int hi) {
  uint64_t h = 0, n = 0, names = 0;
  if (!TCHECK_OK(ts_db_hash(t, &h, &n)))
    return -1;
  if (!TCHECK_OK(cairn_cf_list(t, names_cb, &names)))
    return -1;
  h += names;
  for (int j = hi; j >= lo; j--)
    if (j >= 0 && w->sig[j] == h)
      return j;
  char why[512];
  int d = ts_db_compare(t, &w->states[hi < 0 ? 0 : hi], why, sizeof why);
  TCHECK(!"content equals a committed state in [acked, attempted]");
  printf("    %llu entries; expected a state in [%d, %d]; vs state %d: %s\n",
         (unsigned long long)n, lo, hi, hi, d ? why : "equal?");
  return -1;
}

static void report_problem(void *ctx, const char *problem) {
  (void)ctx;
  printf("    cairn_check: %s\n", problem);
}

/* After a crash or injected error: open, check, compare with the model,
 * then prove the database is still writable. Returns 1 if all fine. */
static int verify_after(const workload *w, const progress *p, int lo, int hi) {
  cairn_options o;
  cairn_db *db = NULL;
  cairn_txn *t = NULL;
  int ok = 1;
  options_for(w, &o, p->created ? 0 : CAIRN_OPEN_CREATE);
  int rc = cairn_open(PATH, &o, &db);
  if (!TCHECK_OK(rc)) {
    printf("    opening after the failure (created=%d)\n", p->created);
    return 0;
  }
  ok &= TCHECK_OK(cairn_check(db, report_problem, NULL));
  if (TCHECK_OK(cairn_begin(db, CAIRN_TXN_RDONLY, &t))) {
    int j = match_state(w, t, p->created ? lo : 0, p->created ? hi : 0);
    ok &= j >= 0;
    if (j >= 0 && j == hi)
      g_at_attempted++;
    else if (j >= 0)
      g_before_attempted++;
    cairn_abort(t);
  } else {
    ok = 0;
  }
  /* still writable, and that commit survives a reopen */
  if (ok && TCHECK_OK(cairn_begin(db, 0, &t))) {
    ok &= TCHECK_OK(cairn_put(t, 0, ts_str("after-crash"), ts_str("ok"), 0));
    ok &= TCHECK_OK(cairn_commit_ex(t, CAIRN_DURABILITY_SYNC));
  }
  ok &= TCHECK_OK(cairn_close(db));
  if (ok) {
    db = NULL;
    options_for(w, &o, 0);
    if (TCHECK_OK(cairn_open(PATH, &o, &db))) {
      cairn_slice v;
      ok &= TCHECK_OK(cairn_begin(db, CAIRN_TXN_RDONLY, &t));
      if (ok) {
        ok &= TCHECK_OK(cairn_get(t, 0, ts_str("after-crash"), &v));
        cairn_abort(t);
      }
      ok &= TCHECK_OK(cairn_check(db, report_problem, NULL));
      cairn_close(db);
    } else {
      ok = 0;
    }
  }
  return ok;
}

/* ---- 1. power loss at every boundary ----------------------------------- */

static long g_trials;

static long count_ops(const workload *w) {
  progress p;
  fault_reset();
  run_workload(w, &p);
  if (!TCHECK(p.fail_rc == 0))
    printf("    reference run of %s failed in %s: %s (%s)\n", w->name,
           p.fail_where, cairn_strerror(p.fail_rc), p.fail_msg);
  long n = fault_op_count();
  if (w->appends && !(g_mode_flags & CAIRN_OPEN_NOLOG) &&
      !TCHECK(p.folded > 0)) /* the path the workload is there for */
    printf("    %s: no commit folded itself\n", w->name);
  /* the reference run's final content is the last state */
  if (p.fail_rc == 0) {
    ts_set_ctx("%s: reference run", w->name);
    fault_clear_injection();
    cairn_options o;
    cairn_db *db = NULL;
    cairn_txn *t = NULL;
    options_for(w, &o, 0);
    if (TCHECK_OK(cairn_open(PATH, &o, &db))) {
      if (TCHECK_OK(cairn_begin(db, CAIRN_TXN_RDONLY, &t))) {
        match_state(w, t, w->n, w->n);
        cairn_abort(t);
      }
      TCHECK_OK(cairn_check(db, report_problem, NULL));
      cairn_close(db);
    }
  }
  return n;
}

static void crash_trial(const workload *w, long k, uint64_t seed) {
  progress p;
  fault_reset();
  fault_set_crash_at(k);
  run_workload(w, &p);
  int crashed = fault_crashed();
  fault_crash(seed);
  fault_clear_injection();
  g_trials++;
  ts_set_ctx("%s: crash at op %ld, seed %llu (created=%d acked=%d "
             "attempted=%d; first error in %s: %s)",
             w->name, k, (unsigned long long)seed, p.created, p.acked,
             p.attempted, p.fail_where ? p.fail_where : "-", p.fail_msg);
  if (crashed && !TCHECK(p.fail_rc != 0))
    printf("    the workload reached the crash point but saw no error\n");
  if (p.fail_rc && !TCHECK(p.fail_rc == CAIRN_IO))
    printf("    power loss reported as %s\n", cairn_strerror(p.fail_rc));
  verify_after(w, &p, p.acked < 0 ? 0 : p.acked, p.attempted);
}

static void crash_all_points(const workload *w, int nseeds, long sample) {
  long total = count_ops(w);
  double t0 = ts_now_ms();
  long points = 0;
  ts_rng r;
  ts_rng_seed(&r, 4242 + (uint64_t)w->n);
  int before = test_failed_count;
  for (long k = 0; k <= total; k++) {
    /* dense when sample == 0 or the workload is short; else a sample
     * that always includes the first 64 ops (creation) */
    if (sample && total > sample && k >= 64 &&
        ts_below(&r, (uint64_t)total) >= (uint64_t)sample)
      continue;
    points++;
    for (int s = 0; s < nseeds; s++) {
      crash_trial(w, k, (uint64_t)k * 1000003u + (uint64_t)s * 7919u + 1);
      if (test_failed_count - before > 20)
        break;
    }
    if (test_failed_count - before > 20) {
      printf("  %s: stopping after 20 failures\n", w->name);
      break;
    }
  }
  printf("  %s: %ld boundary ops, %ld crash points x %d seeds in %.1f s\n",
         w->name, total, points, nseeds, (ts_now_ms() - t0) / 1000.0);
}

/* ---- 2. creation crashed at every op ------------------------------------- */

static void creation_crashes(uint32_t psize) {
  workload w;
  memset(&w, 0, sizeof w);
  w.name = "create";
  w.psize = psize;
  w.n = 0;
  gen_workload(&w, 1, 1, 1);
  long total = count_ops(&w);
  int before = test_failed_count;
  for (long k = 0; k <= total && test_failed_count - before < 10; k++) {
    for (uint64_t seed = 1; seed <= 4; seed++) {
      progress p;
      fault_reset();
      fault_set_crash_at(k);
      run_workload(&w, &p);
      fault_crash(seed * 31 + (uint64_t)k);
      fault_clear_injection();
      ts_set_ctx("create (page %u): crash at op %ld of %ld, seed %llu, "
                 "created=%d",
                 psize, k, total, (unsigned long long)seed, p.created);
      cairn_options o;
      cairn_db *db = NULL;
      options_for(&w, &o, 0);
      int rc = cairn_open(PATH, &o, &db);
      if (p.created) {
        /* acknowledged: must exist and open without CREATE */
        TCHECK_OK(rc);
      } else {
        /* never acknowledged: absent, or a complete empty database */
        if (!TCHECK(rc == CAIRN_NOTFOUND || rc == CAIRN_OK))
          printf("    got %s (%s)\n", cairn_strerror(rc), cairn_errmsg());
      }
      if (rc == CAIRN_OK)
        cairn_close(db);
      verify_after(&w, &p, 0, 0);
    }
  }
  free_workload(&w);
}

/* ---- 3. ENOSPC / EIO at every op ----------------------------------------- */

static void error_trial(const workload *w, long k, int err, int persistent) {
  progress p;
  fault_reset();
  fault_set_error_at(k, err, persistent);
  run_workload(w, &p);
  fault_clear_injection();
  g_trials++;
  ts_set_ctx("%s: %s %s at op %ld (created=%d committed=%d attempted=%d; "
             "first error in %s: %s)",
             w->name, persistent ? "persistent" : "one-shot",
             err == CAIRN_NOSPC ? "ENOSPC" : "EIO", k, p.created, p.committed,
             p.attempted, p.fail_where ? p.fail_where : "-", p.fail_msg);
  if (!TCHECK(p.fail_rc != 0)) /* every op of the run is a target */
    return;
  if (!TCHECK_RC(p.fail_rc, err))
    return;
  TCHECK(p.fail_msg[0] != 0);
  /* after clearing the fault: the last committed state; when the failing
   * call was the commit itself, that commit may have landed whole */
  int hi = p.committed;
  if (p.fail_where &&
      (strcmp(p.fail_where, "commit") == 0 ||
       strcmp(p.fail_where, "sync") == 0 || strcmp(p.fail_where, "close") == 0))
    hi = p.attempted;
  int lo = p.committed;
  if (w->lazy) /* lazy commits not yet synced may be lost */
    lo = p.acked < 0 ? 0 : p.acked;
  verify_after(w, &p, lo, hi);
}

static void errors_all_points(const workload *w) {
  long total = count_ops(w);
  double t0 = ts_now_ms();
  int before = test_failed_count;
  for (long k = 0; k < total && test_failed_count - before < 20; k++) {
    error_trial(w, k, CAIRN_NOSPC, 0);
    error_trial(w, k, CAIRN_IO, 0);
    error_trial(w, k, CAIRN_NOSPC, 1);
    error_trial(w, k, CAIRN_IO, 1);
  }
  printf("  %s: ENOSPC/EIO one-shot/persistent at each of %ld ops in %.1f s\n",
         w->name, total, (ts_now_ms() - t0) / 1000.0);
}

int main(void) {
  double t0 = ts_now_ms();
  double sc = ts_scale();
  int seeds = sc >= 1 ? 3 : 1;
  fault_platform_install();

  creation_crashes(4096);
  creation_crashes(65536);

  workload w1 = {"sync-short", 0, 0, 4096, 12, 0, 0, 0, 0, 0};
  gen_workload(&w1, 11, 40, 8);
  crash_all_points(&w1, seeds, 0);
  errors_all_points(&w1);

  workload w2 = {"lazy-short", 1, 0, 4096, 24, 0, 0, 0, 0, 0};
  gen_workload(&w2, 22, 40, 8);
  crash_all_points(&w2, seeds, 0);
  errors_all_points(&w2);

  workload w3 = {"lazy-autosync", 1, 3, 16384, 20, 0, 0, 0, 0, 0};
  gen_workload(&w3, 33, 60, 10);
  crash_all_points(&w3, seeds, ts_scaled(150, 30));

  /* The same short workloads without the log (tree pages + meta per
   * commit), which every host can choose. */
  g_mode_flags = CAIRN_OPEN_NOLOG;
  crash_all_points(&w1, 1, 0);
  errors_all_points(&w1);
  crash_all_points(&w2, 1, 0);
  crash_all_points(&w3, 1, ts_scaled(150, 30));
  g_mode_flags = 0;

  workload w4 = {"sync-long", 0, 0, 4096, (int)ts_scaled(60, 20),
                 0,           0, 0, 0,    0};
  gen_workload(&w4, 44, 800, 60);
  crash_all_points(&w4, seeds > 1 ? 2 : 1, ts_scaled(250, 40));

  workload w5 = {"lazy-long", 1, 0, 4096, (int)ts_scaled(60, 20),
                 0,           0, 0, 0,    0};
  gen_workload(&w5, 55, 800, 60);
  crash_all_points(&w5, seeds > 1 ? 2 : 1, ts_scaled(250, 40));

  /* Lazy commits over a 1 MiB checkpoint budget: lazy checkpoints (tree
   * written, meta page and log restart left to the next checkpoint), the
   * next one making the last durable first, and the synced checkpoint
   * that restarts the log once it holds four budgets. */
  workload w6 = {
      "lazy-checkpoints", 1, 0, 4096, (int)ts_scaled(60, 20), 0, 0, 0, 1, 0};
  gen_workload(&w6, 66, 800, 60);
  crash_all_points(&w6, 1, ts_scaled(200, 40));

  /* Durable commits of appends, big enough to fold themselves into the
   * tree (no log record; the next logged commit writes the log's header
   * with its record), between logged ones and checkpoints. */
  workload w7 = {
      "sync-appends", 0, 0, 4096, (int)ts_scaled(30, 12), 0, 0, 0, 1, 1};
  gen_workload(&w7, 77, 800, 60);
  crash_all_points(&w7, 1, ts_scaled(200, 40));

  free_workload(&w1);
  free_workload(&w2);
  free_workload(&w3);
  free_workload(&w4);
  free_workload(&w5);
  free_workload(&w6);
  free_workload(&w7);
  fault_reset();
  printf("test_crash: %ld trials (recovered the last attempted commit %ld "
         "times, an earlier one %ld times) in %.1f s\n",
         g_trials, g_at_attempted, g_before_attempted,
         (ts_now_ms() - t0) / 1000.0);
  TCHECK(g_before_attempted > 0 && g_at_attempted > 0);
  return test_summary();
}
