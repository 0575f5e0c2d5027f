/*
 * ckpt_bg.c — lazy checkpoints that fold the overlay into a new tree on a
 * helper thread while commits go on (RocksDB flushes its memtables so).
 *
 * The checkpoint freezes the overlay: commits from then on go into a fresh
 * one, and readers and the writer consult the fresh overlay, then the
 * frozen one, then the tree (view.c, cursor.c). The fold writes a tree that
 * holds exactly the old tree plus the frozen overlay; the writer publishes
 * it at a later commit (a new tree under the same newest commit) and drops
 * the frozen overlay. A fold that fails leaves the frozen overlay in place
 * and is run again by the next checkpoint.
 *
 * Invariant: while a fold runs, it alone touches the free set, the deferred
 * page table, the page buffer pool and the database file's writes; the
 * writer's commits only add overlay versions and log records. A write txn
 * that would change a page first waits for the fold and moves onto the new
 * tree (txn_rebase). On hosts without threads, or without a map (where
 * pages go through the shared cache), the fold runs at once on the writer,
 * and only its publication waits for the next commit: the same states, in
 * a fixed order, which the crash tests walk.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "error.h"
#include "threads.h"

struct ckpt_bg {
  cairn_txn *txn; /* the checkpoint, detached from the write lock */
  int rc;         /* the fold's outcome, once done */
  char msg[256];  /* and its message (set on the fold's thread) */
  _Atomic int done;
  int threaded;
#ifndef CAIRN_SINGLE_THREADED
  cairn_thread_id thread;
#endif
};

/* Folding over a durable tree keeps at most two trees in the file: the
 * fold first writes the last lazy checkpoint's meta page (mostly synced by
 * then: a background sync began when its tree was written), then reuses
 * the pages of the tree before. */
static int fold(cairn_txn *txn) {
  int rc = ckpt_finish_lazy(txn->db);
  return rc ? rc : ckpt_write(txn);
}

static void run(struct ckpt_bg *bg) {
  bg->rc = fold(bg->txn);
  if (bg->rc)
    snprintf(bg->msg, sizeof bg->msg, "%s", cairn_errmsg());
  atomic_store_explicit(&bg->done, 1, memory_order_release);
}

#ifndef CAIRN_SINGLE_THREADED
static void *fold_main(void *arg) {
  run(arg);
  return NULL;
}
#endif

int ckpt_bg_pending(const cairn_db *db) { return db->ov_frozen != NULL; }

int ckpt_bg_start(cairn_db *db) {
  overlay *fresh = overlay_new(db->ov->nodes);
  struct ckpt_bg *bg = calloc(1, sizeof *bg);
  if (!fresh || !bg) {
    overlay_unref(fresh);
    free(bg);
    return cairn__seterr(CAIRN_NOMEM, "out of memory checkpointing");
  }
  cairn_mutex_lock(&db->meta_mu);
  db->ov_frozen = db->ov; /* the db's reference moves with it */
  db->ov = fresh;
  db->frozen_txnid = db->cur.txnid;
  cairn_mutex_unlock(&db->meta_mu);
  db->warm_pages.len = 0; /* of a fold that failed */
  /* (Should this fail, the frozen overlay waits for the next checkpoint,
   * which the next commit starts.) */
  int rc = txn_begin_checkpoint(db, db->ov_frozen, db->frozen_txnid, &bg->txn);
  if (rc) {
    free(bg);
    return rc;
  }
  db->log_ckpt_pos = db->wal.pos; /* the next budget counts from here */
  db->freed_since_ckpt = 0;
  db->bg = bg;
  METRIC_ADD(&db->metrics, checkpoints_background, 1);
#ifndef CAIRN_SINGLE_THREADED
  bg->threaded =
      db->pg.mapped && cairn_thread_start(&bg->thread, fold_main, bg) == 0;
#endif
  if (!bg->threaded)
    run(bg);
  return CAIRN_OK;
}

/* The fold has ended: publish it (or keep the frozen overlay for another
 * try) and forget the job. */
static int reap(cairn_db *db) {
  ckpt_bg_wait(db);
  struct ckpt_bg *bg = db->bg;
  db->bg = NULL;
  int rc = bg->rc;
  if (rc)
    cairn__seterr(rc, "%s", bg->msg);
  rc = ckpt_publish(bg->txn, rc);
  free(bg);
  return rc;
}

void ckpt_bg_poll(cairn_db *db) {
  /* A failed fold is retried by the next checkpoint: the commits it
   * would have folded stay in the frozen overlay and the log. */
  if (db->bg && atomic_load_explicit(&db->bg->done, memory_order_acquire))
    (void)reap(db);
}

void ckpt_bg_wait(cairn_db *db) {
  struct ckpt_bg *bg = db->bg;
#ifndef CAIRN_SINGLE_THREADED
  if (bg && bg->threaded) {
    cairn_thread_join(bg->thread);
    bg->threaded = 0;
  }
#else
  (void)bg;
#endif
}

int ckpt_bg_finish(cairn_db *db) {
  if (db->bg) {
    if (reap(db) == CAIRN_OK)
      return CAIRN_OK;
    cairn__clearerr();
  }
  if (!db->ov_frozen)
    return CAIRN_OK;
  /* The last fold failed: fold the frozen overlay again, here — with the
   * id of its newest commit, not cur's: the new tree holds nothing later,
   * and recovery replays the log from the id its meta page names. */
  cairn_txn *txn;
  int rc = txn_begin_checkpoint(db, db->ov_frozen, db->frozen_txnid, &txn);
  if (rc)
    return rc;
  return ckpt_publish(txn, fold(txn));
}

void ckpt_bg_free(cairn_db *db) {
  if (!db->bg)
    return;
  ckpt_bg_wait(db);
  struct ckpt_bg *bg = db->bg;
  db->bg = NULL;
  txn_end_checkpoint(bg->txn);
  free(bg);
}
