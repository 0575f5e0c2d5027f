/*
 * em_test_idb_crash.c — power loss on the "idb" platform, against the real
 * IndexedDB of the browser (built as tests/test_em_idb_crash by the
 * emscripten block of CMakeLists.txt; run-c-suite.mjs runs it on idb only).
 *
 * The fault platform simulates crashes in memory; this test does it on the
 * store itself. Each round makes commits of random puts and deletes
 * (values up to a few pages, so some are overflow runs; checkpoints every
 * few commits), and an IndexedDB transaction of the store fails at a random
 * flush (aborted: nothing of it reaches IndexedDB). Then power is lost:
 * cairn_platform_idb_crash() forgets everything IndexedDB does not hold
 * (cache, chunks written since the last flush, names) and reads the file
 * table back; the database handle is abandoned, never closed. After
 * reopening (recovery reads the chunks back from IndexedDB), the database
 * must hold exactly every commit reported durable, or also the one whose
 * commit failed (indeterminate by the engine's contract), pass cairn_check,
 * and take new commits.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn.h"
#include "em_platforms.h"
#include "test_support.h"
#include "test_util.h"

#define KEYS 400

static uint64_t hash_of(cairn_db *db, uint64_t *entries) {
  cairn_txn *t = NULL;
  uint64_t h = 0;
  *entries = 0;
  if (!CHECK_OK(cairn_begin(db, CAIRN_TXN_RDONLY, &t)))
    return 0;
  CHECK_OK(ts_db_hash(t, &h, entries));
  cairn_abort(t);
  return h;
}

static void report(void *ctx, const char *problem) {
  (void)ctx;
  printf("  check: %s\n", problem);
}

int main(void) {
  long rounds = ts_scaled(40, 12);
  long commits = ts_scaled(40, 12);
  int outcomes[3] = {0, 0, 0}; /* all durable, failed commit absent, present */
  for (long r = 0; r < rounds; r++) {
    ts_rng rng;
    ts_rng_seed(&rng, 0x1dbu + (uint64_t)r);
    cairn_platform_idb_reset();
    cairn_options o;
    ts_options(&o, "idb", 4096);
    o.checkpoint_mib = 1; /* checkpoints (db pages + log restart) happen */
    o.cache_pages = 64;
    cairn_db *db = NULL;
    if (!CHECK_OK(cairn_open("crash.db", &o, &db)))
      break;
    ts_state durable, pending;
    ts_state_init(&durable);
    ts_state_init(&pending);
    int fail_at = 1 + (int)ts_below(&rng, (uint64_t)commits + 8);
    cairn_platform_idb_fail_flush(fail_at);
    int failed = 0;
    long done = 0;
    for (long c = 0; c < commits && !failed; c++) {
      ts_state_free(&pending);
      ts_state_copy(&pending, &durable);
      cairn_txn *t = NULL;
      int rc = cairn_begin(db, 0, &t);
      if (rc != CAIRN_OK) {
        failed = -1; /* nothing of this commit can be there */
        break;
      }
      int nops = 1 + (int)ts_below(&rng, 24);
      for (int i = 0; i < nops && rc == CAIRN_OK; i++) {
        char k[16];
        snprintf(k, sizeof k, "k%04u", (unsigned)ts_below(&rng, KEYS));
        if (ts_chance(&rng, 1, 5)) {
          rc = cairn_del(t, CAIRN_DEFAULT_CF, ts_str(k));
          if (rc == CAIRN_NOTFOUND)
            rc = CAIRN_OK;
          ts_map_del(&pending.map[0], k, strlen(k));
          continue;
        }
        size_t vlen = ts_chance(&rng, 1, 8) ? 4000 + ts_below(&rng, 9000)
                                            : ts_below(&rng, 600);
        uint64_t vseed =
            ((uint64_t)r << 40) | ((uint64_t)c << 16) | (unsigned)i;
        void *v = ts_value_new(vlen, vseed);
        rc = cairn_put(t, CAIRN_DEFAULT_CF, ts_str(k), ts_sl(v, vlen), 0);
        free(v);
        ts_map_put(&pending.map[0], k, strlen(k), vseed, vlen);
      }
      if (rc != CAIRN_OK) {
        cairn_abort(t);
        failed = -1;
        break;
      }
      rc = cairn_commit(t);
      if (rc == CAIRN_OK) {
        ts_state_free(&durable);
        ts_state_copy(&durable, &pending);
        done++;
      } else {
        failed = 1; /* indeterminate: durable or pending */
      }
    }
    /* Power loss: the handle is abandoned (closing would sync). */
    CHECK_OK(cairn_platform_idb_crash());
    cairn_platform_idb_fail_flush(0);
    cairn_db *db2 = NULL;
    if (!CHECK_OK(cairn_open("crash.db", &o, &db2))) {
      ts_state_free(&durable);
      ts_state_free(&pending);
      break;
    }
    uint64_t n = 0, h = hash_of(db2, &n);
    int is_durable = h == ts_state_hash(&durable);
    int is_pending = failed == 1 && h == ts_state_hash(&pending);
    ts_set_ctx("round %ld: flush %d failed, %ld commits durable, failed "
               "commit %d, %llu entries after recovery",
               r, fail_at, done, failed, (unsigned long long)n);
    ts_ctx_note(CHECK(is_durable || is_pending));
    outcomes[failed != 1 ? 0 : is_pending ? 2 : 1]++;
    CHECK_OK(cairn_check(db2, report, NULL));
    /* It takes new commits and closes cleanly. */
    cairn_txn *t = NULL;
    if (CHECK_OK(cairn_begin(db2, 0, &t))) {
      CHECK_OK(
          cairn_put(t, CAIRN_DEFAULT_CF, ts_str("after"), ts_str("crash"), 0));
      CHECK_OK(cairn_commit(t));
    }
    CHECK_OK(cairn_close(db2));
    ts_state_free(&durable);
    ts_state_free(&pending);
  }
  printf("idb crash rounds: %d with every commit durable, %d with the failed "
         "commit absent, %d with it present\n",
         outcomes[0], outcomes[1], outcomes[2]);
  return test_summary();
}
