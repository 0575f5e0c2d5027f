/*
 * check.c — the integrity walk behind cairn_check().
 *
 * Walks every tree of the newest commit (the catalog and each column family)
 * and the freelist chain, and proves: every page passes its checksum and
 * structure checks; keys are strictly increasing inside each page and lie
 * within the range their parent's separators give; all leaves sit at the
 * recorded depth; entry counts match the catalog; and every page below the
 * high-water mark is reachable from exactly one place or is free — none
 * lost, none twice. It also reads both meta pages from the file: a damaged
 * slot goes unnoticed by open (which takes the other one), so only the
 * check can report it. It reports every problem it finds, not just the
 * first.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"
#include "engine.h"
#include "error.h"

#define MAX_REPORTS 1000

typedef struct checker {
  cairn_txn *txn;
  uint8_t *owner; /* per page: 0 unseen, else what claimed it */
  uint64_t npages;
  uint64_t problems;
  void (*report)(void *, const char *);
  void *ctx;
  char first[256];
  int err;          /* the walk stopped: out of memory or I/O, not damage */
  char errmsg[256]; /* its message */
} checker;

enum { OWN_META = 1, OWN_TREE, OWN_OVERFLOW, OWN_FREELIST, OWN_FREE };
static const char *own_name[] = {"",         "meta",          "tree",
                                 "overflow", "freelist page", "free"};

static void problem(checker *ck, const char *fmt, ...) {
  char msg[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (!ck->problems)
    memcpy(ck->first, msg, sizeof msg);
  ck->problems++;
  if (ck->report && ck->problems <= MAX_REPORTS)
    ck->report(ck->ctx, msg);
  else if (ck->report && ck->problems == MAX_REPORTS + 1)
    ck->report(ck->ctx, "(further problems not listed)");
}

/* A failed read or lookup: damage is a problem of the database; running
 * out of memory (or an I/O error) says nothing about it and ends the check
 * with that error. */
static void failure(checker *ck, int rc, const char *tree) {
  if (rc == CAIRN_NOMEM || rc == CAIRN_IO || rc == CAIRN_NOSPC) {
    if (!ck->err) {
      ck->err = rc;
      /* (cut to fit: the message names the tree and the cause) */
      snprintf(ck->errmsg, sizeof ck->errmsg, "%.60s: %.180s", tree,
               cairn_errmsg());
    }
    return;
  }
  problem(ck, "%s: %s", tree, cairn_errmsg());
}

static void claim(checker *ck, uint64_t pg, uint64_t n, int what) {
  for (uint64_t i = 0; i < n; i++) {
    uint64_t p = pg + i;
    if (p >= ck->npages) {
      problem(ck, "page %llu: beyond the last page (%llu)",
              (unsigned long long)p, (unsigned long long)ck->npages);
      return;
    }
    if (ck->owner[p])
      problem(ck, "page %llu: used twice (as %s and as %s)",
              (unsigned long long)p, own_name[ck->owner[p]], own_name[what]);
    else
      ck->owner[p] = (uint8_t)what;
  }
}

static int kcmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl) {
  size_t n = al < bl ? al : bl;
  int c = n ? memcmp(a, b, n) : 0;
  return c ? c : (al < bl ? -1 : al > bl);
}

static uint64_t walk_page(checker *ck, const char *tree, uint64_t pg,
                          uint32_t level, uint32_t depth, const uint8_t *lo,
                          size_t lol, const uint8_t *hi, size_t hil);

/* Walk the subtree at pg; keys must lie in [lo, hi) (NULL = unbounded). */
static uint64_t walk(checker *ck, const char *tree, uint64_t pg, uint32_t level,
                     uint32_t depth, const uint8_t *lo, size_t lol,
                     const uint8_t *hi, size_t hil) {
  cairn_txn *txn = ck->txn;
  if (pg < 2 || pg >= ck->npages) {
    problem(ck, "%s: child page %llu out of range", tree,
            (unsigned long long)pg);
    return 0;
  }
  if (ck->owner[pg]) {
    problem(ck, "page %llu: used twice (as %s and as tree of %s)",
            (unsigned long long)pg, own_name[ck->owner[pg]], tree);
    return 0; /* do not walk a subtree twice (or loop) */
  }
  ck->owner[pg] = OWN_TREE;
  /* Pin only the current path, so checking a database larger than memory
   * works on hosts without a map. */
  pgmap scope, *saved;
  txn_scope_begin(txn, &scope, &saved);
  uint64_t entries = walk_page(ck, tree, pg, level, depth, lo, lol, hi, hil);
  txn_scope_end(txn, &scope, saved);
  return entries;
}

static uint64_t walk_page(checker *ck, const char *tree, uint64_t pg,
                          uint32_t level, uint32_t depth, const uint8_t *lo,
                          size_t lol, const uint8_t *hi, size_t hil) {
  cairn_txn *txn = ck->txn;
  const uint8_t *p;
  int leaf = level + 1 == depth;
  int rc = txn_page(txn, pg, TYPE_BIT(PAGE_LEAF) | TYPE_BIT(PAGE_BRANCH), &p);
  if (rc) {
    failure(ck, rc, tree);
    return 0;
  }
  if ((pg_type(p) == PAGE_LEAF) != leaf) {
    problem(ck, "page %llu: %s at level %u of a tree of depth %u (%s)",
            (unsigned long long)pg, leaf ? "branch" : "leaf", level, depth,
            tree);
    return 0;
  }
  uint32_t n = pg_count(p);
  if (n == 0)
    problem(ck, "page %llu: empty %s page (%s)", (unsigned long long)pg,
            leaf ? "leaf" : "branch", tree);
  uint64_t entries = 0;
  const uint8_t *prev = NULL;
  size_t prevl = 0;
  for (uint32_t i = 0; i < n; i++) {
    const uint8_t *e = leaf ? leaf_entry(p, i) : branch_entry(p, i);
    const uint8_t *k = leaf ? leaf_key(e) : branch_key(e);
    size_t kl = leaf ? leaf_klen(e) : branch_klen(e);
    int has_key = leaf || i > 0;
    if (has_key) {
      if (prev && kcmp(prev, prevl, k, kl) >= 0)
        problem(ck, "page %llu: key %u out of order (%s)",
                (unsigned long long)pg, i, tree);
      if (lo && kcmp(k, kl, lo, lol) < 0)
        problem(ck, "page %llu: key %u below its parent's separator (%s)",
                (unsigned long long)pg, i, tree);
      if (hi && kcmp(k, kl, hi, hil) >= 0)
        problem(ck, "page %llu: key %u not below the next separator (%s)",
                (unsigned long long)pg, i, tree);
      prev = k;
      prevl = kl;
    }
    if (leaf) {
      entries++;
      if (leaf_flags(e) & LEAF_OVERFLOW) {
        const uint8_t *v;
        uint64_t np = overflow_pages(leaf_vlen(e), txn->snap.page_size);
        int orc = txn_overflow(txn, leaf_ovpg(e), leaf_vlen(e), &v);
        if (orc)
          failure(ck, orc, tree);
        claim(ck, leaf_ovpg(e), np, OWN_OVERFLOW);
      }
    } else {
      const uint8_t *clo = i ? k : lo;
      size_t clol = i ? kl : lol;
      const uint8_t *chi = hi;
      size_t chil = hil;
      if (i + 1 < n) {
        const uint8_t *ne = branch_entry(p, i + 1);
        chi = branch_key(ne);
        chil = branch_klen(ne);
      }
      entries += walk(ck, tree, branch_child(e), level + 1, depth, clo, clol,
                      chi, chil);
    }
  }
  return entries;
}

static void check_tree(checker *ck, const char *name, const cf_state *s) {
  if (!s->root)
    return;
  if (s->depth == 0 || s->depth > MAX_DEPTH) {
    problem(ck, "%s: depth %u", name, s->depth);
    return;
  }
  uint64_t n = walk(ck, name, s->root, 0, s->depth, NULL, 0, NULL, 0);
  if (n != s->entries && !ck->err) /* a stopped walk counts fewer */
    problem(ck, "%s: %llu entries found, %llu recorded", name,
            (unsigned long long)n, (unsigned long long)s->entries);
}

static void check_freelist(checker *ck) {
  cairn_txn *txn = ck->txn;
  uint64_t count = 0, hops = 0;
  for (uint64_t pg = txn->snap.freelist_head; pg;) {
    const uint8_t *p;
    if (++hops > ck->npages) {
      problem(ck, "freelist chain loops");
      return;
    }
    if (pg >= ck->npages || ck->owner[pg]) {
      problem(ck, "freelist chain page %llu out of range or used twice",
              (unsigned long long)pg);
      return;
    }
    int rc = txn_page(txn, pg, TYPE_BIT(PAGE_FREELIST), &p);
    if (rc) {
      failure(ck, rc, "freelist");
      return;
    }
    claim(ck, pg, 1, OWN_FREELIST);
    for (uint32_t i = 0; i < pg_count(p); i++) {
      uint64_t id = ld64(p + FREELIST_HDR + 8 * i);
      if (id < 2 || id >= ck->npages)
        problem(ck, "freelist page %llu names page %llu, out of range",
                (unsigned long long)pg, (unsigned long long)id);
      else
        claim(ck, id, 1, OWN_FREE);
      count++;
    }
    pg = ld64(p + PAGE_HDR);
  }
  if (count != txn->snap.freelist_count)
    problem(ck, "freelist holds %llu pages, meta records %llu",
            (unsigned long long)count,
            (unsigned long long)txn->snap.freelist_count);
}

static int check_cf(void *ctx, const char *name, cairn_cf cf) {
  checker *ck = ctx;
  int rc;
  cf_state *s = txn_cf(ck->txn, cf, &rc);
  char what[CAIRN_MAX_CF_NAME + 32];
  snprintf(what, sizeof what, "column family '%s'", name);
  if (!s)
    failure(ck, rc, what);
  else
    check_tree(ck, name, s);
  return 0;
}

/* Read-only handle after a replay: pages the replayed commits freed. */
static void check_replayed_free(checker *ck, cairn_db *db) {
  if (ck->txn->snap.txnid == db->durable_txnid)
    return;
  for (size_t i = 0; i < db->fl.ready.len; i++)
    if (db->fl.ready.v[i] < ck->npages)
      claim(ck, db->fl.ready.v[i], 1, OWN_FREE);
  for (pending_free *p = db->fl.pending; p; p = p->next)
    for (size_t i = 0; i < p->pages.len; i++)
      if (p->pages.v[i] < ck->npages)
        claim(ck, p->pages.v[i], 1, OWN_FREE);
}

/* Why a meta slot is unsound (NULL if it is sound). cur is the newest
 * commit, read while no commit or sync can run. */
static const char *meta_problem(const uint8_t *p, uint64_t slot, uint32_t ps,
                                const meta *cur, char *buf, size_t len) {
  if (memcmp(p + 32, META_MAGIC, 8) != 0)
    return "no meta magic";
  if (ld32(p) != cairn_crc32c(0, p + 4, META_SPAN - 4))
    return "checksum mismatch";
  if (ld16(p + 4) != PAGE_META || ld64(p + 8) != slot)
    return "wrong page type or page number in its header";
  if (ld32(p + 48) != BYTE_ORDER_MARK)
    return "bad byte-order mark";
  if (ld32(p + 40) != CAIRN_FORMAT_VERSION)
    return "another format version";
  if (ld32(p + 44) != ps) {
    snprintf(buf, len, "page size %u, the database's is %u", ld32(p + 44), ps);
    return buf;
  }
  if (memcmp(p + 104, cur->db_id, 16) != 0)
    return "another database id than the current meta";
  uint64_t txnid = ld64(p + 16), count = ld64(p + 56), root = ld64(p + 64);
  uint64_t flhead = ld64(p + 80), flcount = ld64(p + 88);
  uint32_t depth = ld32(p + 52);
  if (txnid > cur->txnid) {
    snprintf(buf, len, "txn %llu is newer than the current commit %llu",
             (unsigned long long)txnid, (unsigned long long)cur->txnid);
    return buf;
  }
  if (count < 2 || count > cur->page_count || root >= count || root == 1 ||
      flhead >= count || flhead == 1 || flcount >= count || depth > MAX_DEPTH ||
      (root == 0) != (depth == 0))
    return "fields out of range (page count, roots or freelist)";
  return NULL;
}

/* Both meta slots, read from the file while holding the writer's lock (or
 * as the writer), so a concurrent commit or sync is never caught halfway. */
static void check_meta(checker *ck, cairn_db *db) {
  uint8_t b[2][META_SPAN];
  int rc[2];
  cairn_file *f = db->pg.file;
  uint32_t ps = db->pg.psize;
  int writer_is_me = db_writer_is_this_thread(db);
  int lock = !db->rdonly && !writer_is_me;
  if (lock)
    cairn_mutex_lock(&db->write_mu);
  if (!db->rdonly) /* a fold in the background may be writing one */
    ckpt_bg_wait(db);
  for (int s = 0; s < 2; s++)
    rc[s] = f->methods->read(f, b[s], META_SPAN, (uint64_t)s * ps);
  cairn_mutex_lock(&db->meta_mu);
  meta cur = db->cur;
  uint64_t durable = db->durable_txnid;
  cairn_mutex_unlock(&db->meta_mu);
  if (lock)
    cairn_mutex_unlock(&db->write_mu);
  int durable_seen = 0;
  for (int s = 0; s < 2; s++) {
    char buf[128];
    const char *why =
        rc[s] ? cairn_errmsg()
              : meta_problem(b[s], (uint64_t)s, ps, &cur, buf, sizeof buf);
    if (why)
      problem(ck, "meta page %d: %s", s, why);
    else if (ld64(b[s] + 16) == durable)
      durable_seen = 1;
  }
  if (!durable_seen)
    problem(ck, "no sound meta page holds the newest durable commit %llu",
            (unsigned long long)durable);
}

int cairn_check(cairn_db *db, void (*report)(void *ctx, const char *problem),
                void *ctx) {
  if (!db)
    return cairn__seterr(CAIRN_INVALID, "cairn_check: db is NULL");
  checker ck;
  memset(&ck, 0, sizeof ck);
  ck.report = report;
  ck.ctx = ctx;
  /* A checkpointed snapshot: its persisted free list describes it (a
   * read-only handle adds what a replay freed, below). */
  int rc = db_begin_checkpointed(db, &ck.txn);
  if (rc)
    return rc;
  ck.npages = ck.txn->snap.page_count;
  ck.owner = calloc(ck.npages ? ck.npages : 1, 1);
  if (!ck.owner) {
    cairn_abort(ck.txn);
    return cairn__seterr(CAIRN_NOMEM, "out of memory checking %llu pages",
                         (unsigned long long)ck.npages);
  }
  ck.owner[0] = ck.owner[1] = OWN_META;
  check_tree(&ck, "catalog", &ck.txn->catalog);
  rc = cairn_cf_list(ck.txn, check_cf, &ck);
  if (rc)
    failure(&ck, rc, "catalog");
  check_freelist(&ck);
  if (db->rdonly)
    check_replayed_free(&ck, db);
  check_meta(&ck, db);
  uint64_t lost = 0, first_lost = 0;
  for (uint64_t p = 2; p < ck.npages && !ck.err; p++)
    if (!ck.owner[p] && !lost++)
      first_lost = p;
  if (lost)
    problem(&ck,
            "%llu page(s) lost: neither reachable nor free (first: "
            "page %llu)",
            (unsigned long long)lost, (unsigned long long)first_lost);
  free(ck.owner);
  cairn_abort(ck.txn);
  if (ck.err) /* not walked to the end: the pages it missed are not lost */
    return cairn__seterr(ck.err, "cairn_check stopped: %s", ck.errmsg);
  if (ck.problems)
    return cairn__seterr(CAIRN_CORRUPT, "%llu problem(s); first: %s",
                         (unsigned long long)ck.problems, ck.first);
  cairn__clearerr();
  return CAIRN_OK;
}
