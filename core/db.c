/*
 * db.c — opening, creating, syncing and closing a database.
 *
 * Creation is atomic: the first two meta pages are written to a temporary
 * file, synced, and renamed into place without replacing anything, then the
 * directory entry is synced. A crash leaves either no database or a whole
 * one — never a half-made file at the path. The lock (exclusive for
 * writers, shared for read-only opens) is taken before anything is read, so
 * two writers can never interleave commits.
 */
#if !defined(_GNU_SOURCE) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine.h"
#include "error.h"

void cairn_options_init(cairn_options *o) {
  if (!o)
    return;
  memset(o, 0, sizeof *o);
  o->flags = CAIRN_OPEN_CREATE;
  o->page_size = 4096;
  o->durability = CAIRN_DURABILITY_SYNC;
  o->cache_pages = 4096;
  o->lazy_sync_commits = 1000;
  o->lazy_sync_ms = 1000;
}

uint64_t db_now_ms(void) {
  struct timespec ts;
  if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
    return 0;
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* "<path>-wal", malloc'd (NULL when out of memory). */
static char *log_path(const char *path) {
  size_t plen = strlen(path);
  char *lp = malloc(plen + 5);
  if (lp) {
    memcpy(lp, path, plen);
    memcpy(lp + plen, "-wal", 5);
  }
  return lp;
}

static int create_file(cairn_platform *plat, const char *path, uint32_t psize) {
  static _Atomic unsigned counter;
  size_t plen = strlen(path);
  char *tmp = malloc(plen + 48);
  uint8_t *buf = calloc(2, psize);
  if (!tmp || !buf) {
    free(tmp);
    free(buf);
    return cairn__seterr(CAIRN_NOMEM, "out of memory creating %s", path);
  }
  snprintf(tmp, plen + 48, "%s.cairn-new-%llx-%u", path,
           (unsigned long long)db_now_ms(), (unsigned)++counter);
  meta m;
  memset(&m, 0, sizeof m);
  m.page_size = psize;
  m.page_count = 2;
  m.next_cf_id = 1;
  /* An identity that backups and restores check. No entropy source is
   * common to every host, so mix the clock, an address and a counter. */
  uint64_t seed = metrics_now_ns() ^ (uint64_t)(uintptr_t)&m ^
                  ((uint64_t)counter << 48) ^ (uint64_t)(uintptr_t)path;
  for (int i = 0; i < 2; i++) {
    uint64_t z = (seed += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    memcpy(m.db_id + 8 * i, &z, 8);
  }
  m.txnid = 1;
  meta_encode(&m, buf, 0);
  m.txnid = 0;
  meta_encode(&m, buf + psize, 1);
  cairn_file *f = NULL;
  int rc = plat->open(plat, tmp, CAIRN_PF_CREATE | CAIRN_PF_EXCL, &f);
  if (!rc)
    rc = f->methods->write(f, buf, 2 * (size_t)psize, 0);
  if (!rc)
    rc = f->methods->sync(f);
  if (f)
    f->methods->close(f);
  if (!rc) {
    /* A log left by an earlier database of this name belongs to it, not to
     * this one: a new database starts without one. */
    char *lp = log_path(path);
    if (!lp)
      rc = cairn__seterr(CAIRN_NOMEM, "out of memory creating %s", path);
    else {
      int r = plat->remove(plat, lp);
      if (r != CAIRN_OK && r != CAIRN_NOTFOUND)
        rc = r;
      free(lp);
    }
  }
  if (!rc) {
    rc = plat->rename_noreplace(plat, tmp, path);
    if (rc == CAIRN_EXISTS) /* someone else created it first: use theirs */
      rc = CAIRN_OK;
    else if (!rc)
      rc = plat->sync_dir(plat, path);
  }
  if (f) /* after a rename the temporary name is already gone */
    plat->remove(plat, tmp);
  free(tmp);
  free(buf);
  return rc;
}

/* Open "<path>-wal" and replay what it holds past the meta page; a writer
 * then checkpoints and starts the log afresh. Without the log
 * (CAIRN_OPEN_NOLOG) a log that exists is still recovered and folded in,
 * so no acknowledged commit is ever skipped. */
static int open_log(cairn_db *db, cairn_platform *plat, const char *path) {
  int nolog = !db->wal_on;
  char *lp = log_path(path);
  if (!lp)
    return cairn__seterr(CAIRN_NOMEM, "out of memory opening the log");
  unsigned pflags = db->rdonly ? CAIRN_PF_RDONLY : nolog ? 0 : CAIRN_PF_CREATE;
  int rc = plat->open(plat, lp, pflags, &db->wal.file);
  if (rc == CAIRN_NOTFOUND && (db->rdonly || nolog)) {
    free(lp); /* no log: nothing was committed through one */
    cairn__clearerr();
    return CAIRN_OK;
  }
  db->wal_on = 1;
  if (!rc && !db->ov && !(db->ov = overlay_new(0)))
    rc = cairn__seterr(CAIRN_NOMEM, "out of memory opening the log");
  uint64_t size = 0;
  if (!rc)
    rc = db->wal.file->methods->size(db->wal.file, &size);
  uint64_t replayed = 0;
  if (!rc)
    rc = wal_recover(db, &replayed);
  if (!rc && !db->rdonly) {
    if (replayed || db->def.bytes)
      rc = db_checkpoint(db); /* restarts the log too */
    else
      rc = wal_reset(&db->wal, db->cur.db_id, db->cur.txnid);
    if (!rc && size == 0) /* a new log: its name must survive a crash */
      rc = plat->sync_dir(plat, lp);
  }
  if (!rc && nolog && !db->rdonly) { /* folded in: commit without it now */
    db->wal_on = 0;
    overlay_unref(db->ov); /* empty, and no reader yet */
    db->ov = NULL;
    db->wal.file->methods->close(db->wal.file);
    db->wal.file = NULL;
  }
  if (!rc) {
    cairn_mutex_lock(&db->meta_mu);
    db->logged_durable = db->cur.txnid;
    cairn_mutex_unlock(&db->meta_mu);
  }
  free(lp);
  return rc;
}

static int valid_page_size(uint32_t ps) {
  return ps >= CAIRN_MIN_PAGE_SIZE && ps <= CAIRN_MAX_PAGE_SIZE &&
         (ps & (ps - 1)) == 0;
}

int cairn_open(const char *path, const cairn_options *opts, cairn_db **out) {
  if (!out)
    return cairn__seterr(CAIRN_INVALID, "cairn_open: out is NULL");
  *out = NULL;
  if (!path || !*path)
    return cairn__seterr(CAIRN_INVALID, "cairn_open: empty path");
  cairn_options o;
  if (opts)
    o = *opts;
  else
    cairn_options_init(&o);
  if (o.page_size == 0)
    o.page_size = 4096;
  if (!valid_page_size(o.page_size))
    return cairn__seterr(CAIRN_INVALID,
                         "page size %u: must be a power of two from %u to %u",
                         o.page_size, CAIRN_MIN_PAGE_SIZE, CAIRN_MAX_PAGE_SIZE);
  if (o.flags & ~(CAIRN_OPEN_CREATE | CAIRN_OPEN_RDONLY | CAIRN_OPEN_NOMMAP |
                  CAIRN_OPEN_NOLOG))
    return cairn__seterr(CAIRN_INVALID, "cairn_open: unknown flags 0x%x",
                         o.flags);
  if (o.durability == CAIRN_DURABILITY_DEFAULT)
    o.durability = CAIRN_DURABILITY_SYNC;
  if (o.durability != CAIRN_DURABILITY_SYNC &&
      o.durability != CAIRN_DURABILITY_LAZY)
    return cairn__seterr(CAIRN_INVALID, "cairn_open: bad durability %d",
                         (int)o.durability);
  if (o.cache_pages == 0)
    o.cache_pages = 4096;
  if (o.cache_pages < 16)
    o.cache_pages = 16;
  cairn_platform *plat = cairn_platform_find(o.platform);
  if (!plat)
    return cairn__seterr(CAIRN_INVALID, "no platform named '%s'",
                         o.platform ? o.platform : "(default)");
  int rdonly = (o.flags & CAIRN_OPEN_RDONLY) != 0;
  unsigned pflags = rdonly ? CAIRN_PF_RDONLY : 0;
  cairn_file *f = NULL;
  int rc = plat->open(plat, path, pflags, &f);
  if (rc == CAIRN_NOTFOUND && (o.flags & CAIRN_OPEN_CREATE) && !rdonly) {
    rc = create_file(plat, path, o.page_size);
    if (!rc)
      rc = plat->open(plat, path, pflags, &f);
  }
  if (rc) {
    if (rc == CAIRN_NOTFOUND)
      cairn__seterr(rc, "%s: no such database (open without create)", path);
    return rc;
  }
  rc = f->methods->lock(f, rdonly ? CAIRN_LOCK_SHARED : CAIRN_LOCK_EXCLUSIVE);
  uint64_t size = 0;
  if (!rc)
    rc = f->methods->size(f, &size);
  if (!rc && size == 0)
    rc = cairn__seterr(CAIRN_NOTADB, "%s: empty file, not a database", path);
  meta m;
  int slot = 0;
  uint32_t psize = 0;
  if (!rc)
    rc = meta_read(f, size, &m, &slot, &psize);
  cairn_db *db = NULL;
  if (!rc) {
    db = calloc(1, sizeof *db);
    if (db)
      db->path = malloc(strlen(path) + 1);
    if (!db || !db->path)
      rc = cairn__seterr(CAIRN_NOMEM, "out of memory opening %s", path);
  }
  if (rc) {
    if (db)
      free(db->path);
    free(db);
    f->methods->close(f);
    return rc;
  }
  strcpy(db->path, path);
  db->opts = o;
  db->opts.platform = plat->name;
  db->rdonly = rdonly;
  db->cur = m;
  db->file_pages = size / psize;
  db->durable_txnid = m.txnid;
  db->durable_slot = slot;
  db->meta_seq = m.seq;
  db->last_sync_ms = db_now_ms();
  cairn_mutex_init(&db->write_mu);
  cairn_mutex_init(&db->meta_mu);
  deferred_init(&db->def);
  db->def.psize = psize;
  page_pool_init(&db->pool, psize, 4096);
  db->def.pool = &db->pool;
  db->wal_on = !(o.flags & CAIRN_OPEN_NOLOG);
  db->free_pages = m.freelist_count;
  db->logged_durable = m.txnid;
  rc = pager_open(&db->pg, plat, f, psize, !(o.flags & CAIRN_OPEN_NOMMAP),
                  o.cache_pages, size);
  db->pg.metrics = &db->metrics;
  if (!rc)
    rc = pager_ensure_map(&db->pg, m.page_count * psize);
  if (!rc && !rdonly) {
    /* The writer needs the free set; readers never do. */
    cairn_txn tmp;
    memset(&tmp, 0, sizeof tmp);
    tmp.db = db;
    tmp.rdonly = 1;
    tmp.snap = m;
    tmp.map = db->pg.map;
    rc = freelist_load(&tmp, &db->fl);
    pager_release(&db->pg, &tmp);
    pgmap_free(&tmp.pins);
  }
  if (!rc)
    rc = open_log(db, plat, path);
  if (rc) {
    db->rdonly = 1; /* nothing to sync */
    cairn_close(db);
    return rc;
  }
  *out = db;
  cairn__clearerr();
  return CAIRN_OK;
}

int cairn_sync(cairn_db *db) {
  if (!db)
    return cairn__seterr(CAIRN_INVALID, "cairn_sync: db is NULL");
  if (db->rdonly)
    return CAIRN_OK;
  int mine = db_writer_is_this_thread(db);
  if (mine)
    return cairn__seterr(CAIRN_BUSY, "commit or abort this thread's write "
                                     "transaction before cairn_sync");
  cairn_mutex_lock(&db->write_mu);
  int rc = db_sync_locked(db);
  cairn_mutex_unlock(&db->write_mu);
  if (!rc)
    cairn__clearerr();
  return rc;
}

int cairn_close(cairn_db *db) {
  if (!db)
    return CAIRN_OK;
  while (db->live)
    cairn_abort(db->live);
  int rc = CAIRN_OK;
  if (!db->rdonly && !db->poisoned) {
    if (db->wal_on && db->wal.file) {
      rc = db_checkpoint(db);
      /* Everything is in the database file: leave the log as just its
       * header (its records are all older than the meta page anyway). */
      cairn_file *lf = db->wal.file;
      if (!rc && db->wal.pos == WAL_HDR) {
        rc = lf->methods->truncate(lf, WAL_HDR);
        if (!rc)
          rc = lf->methods->sync(lf);
      }
    } else {
      cairn_mutex_lock(&db->write_mu);
      rc = db_sync_locked(db);
      cairn_mutex_unlock(&db->write_mu);
    }
    /* Everything is durable and no snapshot is left: free pages need take
     * no disk space while the database is closed. */
    if (!rc)
      freelist_punch(&db->fl, db->pg.file, db->pg.psize);
  }
  ckpt_bg_free(db);      /* a fold left running: its commits are in the log */
  warmer_free(db->warm); /* before the map goes */
  pgvec_free(&db->warm_pages);
  deferred_free(&db->def);
  page_pool_free(&db->pool);
  overlay_unref(db->ov);
  overlay_unref(db->ov_frozen);
  free(db->spare_log);
  if (db->wal.file)
    db->wal.file->methods->close(db->wal.file);
  cairn_file *f = db->pg.file;
  if (f)
    pager_close(&db->pg);
  if (f)
    f->methods->close(f);
  freelist_free(&db->fl);
  free(db->snaps);
  free(db->names);
  free(db->path);
  cairn_mutex_destroy(&db->write_mu);
  cairn_mutex_destroy(&db->meta_mu);
  free(db);
  return rc;
}
