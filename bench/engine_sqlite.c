/*
 * engine_sqlite.c — SQLite (libsqlite3-dev) behind the bench interface
 * (engine.h).
 *
 * Configuration (BENCH.md): one table `kv (k BLOB PRIMARY KEY, v BLOB)
 * WITHOUT ROWID` in WAL mode, 64 MiB page cache (PRAGMA cache_size=-65536),
 * default page size and autocheckpoint. Durable commits run with
 * synchronous=FULL, lazy ones with synchronous=OFF. Two connections: the
 * writer's and the readers' (so a read snapshot can stay open while the
 * writer commits, W9, and a reader thread runs beside the writer, W8); each
 * has the 64 MiB cache. Every statement is prepared once per connection.
 * sync() (after the lazy commits of W7) checkpoints and fdatasyncs the
 * database and its WAL.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "engine.h"

typedef struct conn {
  sqlite3 *db;
  sqlite3_stmt *begin, *commit, *put, *get, *seek, *first;
  int sync_full; /* current synchronous setting (writer) */
} conn;

struct eng {
  conn w, r;
};

struct eng_txn {
  eng *e;
  conn *c;
  int write;
};

static int fail(const char *what, sqlite3 *db) {
  fprintf(stderr, "sqlite: %s: %s\n", what,
          db ? sqlite3_errmsg(db) : "out of memory");
  return -1;
}

static const char *sqlite_version(void) { return sqlite3_libversion(); }

static int exec(conn *c, const char *sql) {
  char *msg = NULL;
  if (sqlite3_exec(c->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
    fprintf(stderr, "sqlite: %s: %s\n", sql, msg ? msg : "failed");
    sqlite3_free(msg);
    return -1;
  }
  return 0;
}

static int prep(conn *c, const char *sql, sqlite3_stmt **st) {
  if (sqlite3_prepare_v2(c->db, sql, -1, st, NULL) != SQLITE_OK)
    return fail(sql, c->db);
  return 0;
}

static void conn_close(conn *c) {
  sqlite3_finalize(c->begin);
  sqlite3_finalize(c->commit);
  sqlite3_finalize(c->put);
  sqlite3_finalize(c->get);
  sqlite3_finalize(c->seek);
  sqlite3_finalize(c->first);
  if (c->db && sqlite3_close(c->db) != SQLITE_OK)
    fail("close", c->db);
  c->db = NULL;
}

static int conn_open(conn *c, const char *path, int writer) {
  if (sqlite3_open_v2(path, &c->db,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                          SQLITE_OPEN_NOMUTEX,
                      NULL) != SQLITE_OK)
    return fail("open", c->db);
  /* WAL readers and the writer do not block each other; the timeout only
   * covers rare transient SQLITE_BUSY (WAL recovery, checkpoints). */
  sqlite3_busy_timeout(c->db, 10000);
  if (exec(c, "PRAGMA journal_mode=WAL") ||
      exec(c, "PRAGMA synchronous=FULL") || exec(c, "PRAGMA cache_size=-65536"))
    return -1;
  c->sync_full = 1;
  if (writer && exec(c, "CREATE TABLE IF NOT EXISTS kv (k BLOB PRIMARY KEY, "
                        "v BLOB) WITHOUT ROWID"))
    return -1;
  if (prep(c, writer ? "BEGIN IMMEDIATE" : "BEGIN", &c->begin) ||
      prep(c, "COMMIT", &c->commit) ||
      prep(c, "INSERT OR REPLACE INTO kv (k, v) VALUES (?1, ?2)", &c->put) ||
      prep(c, "SELECT v FROM kv WHERE k = ?1", &c->get) ||
      prep(c, "SELECT k, v FROM kv WHERE k >= ?1 ORDER BY k", &c->seek) ||
      prep(c, "SELECT k, v FROM kv ORDER BY k", &c->first))
    return -1;
  return 0;
}

static int sqlite_open(const char *dir, eng **out) {
  char path[4096];
  eng *e = calloc(1, sizeof *e);
  if (!e)
    return fail("open", NULL);
  snprintf(path, sizeof path, "%s/bench.sqlite", dir);
  if (conn_open(&e->w, path, 1) || conn_open(&e->r, path, 0)) {
    conn_close(&e->r);
    conn_close(&e->w);
    free(e);
    return -1;
  }
  *out = e;
  return 0;
}

/* fdatasync one file by name (on Linux this flushes what any descriptor of
 * it wrote). A missing file has nothing to sync. */
static int sync_file(const char *path) {
  int fd = open(path, O_RDONLY);
  if (fd < 0)
    return errno == ENOENT ? 0 : -1;
  int rc = fdatasync(fd);
  close(fd);
  return rc;
}

static int sqlite_sync(eng *e) {
  /* Lazy commits sit in the WAL (or, once checkpointed, in the database)
   * unsynced. Checkpoint with synchronous=FULL, then sync both files
   * ourselves: a checkpoint that finds nothing to copy syncs nothing. */
  const char *db = sqlite3_db_filename(e->w.db, "main");
  char wal[4200];
  if (!e->w.sync_full) {
    if (exec(&e->w, "PRAGMA synchronous=FULL"))
      return -1;
    e->w.sync_full = 1;
  }
  if (exec(&e->w, "PRAGMA wal_checkpoint(FULL)"))
    return -1;
  snprintf(wal, sizeof wal, "%s-wal", db);
  if (sync_file(db) || sync_file(wal)) {
    fprintf(stderr, "sqlite: sync: %s\n", strerror(errno));
    return -1;
  }
  return 0;
}

static int sqlite_close(eng *e) {
  int rc = sqlite_sync(e);
  conn_close(&e->r);
  conn_close(&e->w);
  free(e);
  return rc;
}

static int step_done(conn *c, sqlite3_stmt *st, const char *what) {
  int rc = sqlite3_step(st);
  sqlite3_reset(st);
  return rc == SQLITE_DONE ? 0 : fail(what, c->db);
}

static int sqlite_begin(eng *e, int flags, eng_txn **out) {
  eng_txn *t = calloc(1, sizeof *t);
  if (!t)
    return fail("begin", NULL);
  t->e = e;
  t->write = (flags & ENG_WRITE) != 0;
  t->c = t->write ? &e->w : &e->r;
  if (t->write) {
    int full = !(flags & ENG_LAZY);
    if (full != t->c->sync_full) {
      if (exec(t->c,
               full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=OFF")) {
        free(t);
        return -1;
      }
      t->c->sync_full = full;
    }
  }
  if (step_done(t->c, t->c->begin, "begin")) {
    free(t);
    return -1;
  }
  if (!t->write) {
    /* A deferred transaction takes its snapshot at its first read: read now,
     * so the snapshot is the newest commit at begin, as in the others. */
    int rc = sqlite3_step(t->c->first);
    sqlite3_reset(t->c->first);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
      fail("begin read", t->c->db);
      free(t);
      return -1;
    }
  }
  *out = t;
  return 0;
}

static int sqlite_commit(eng_txn *t) {
  conn *c = t->c;
  int rc;
  sqlite3_reset(c->get);
  rc = step_done(c, c->commit, "commit");
  free(t);
  return rc;
}

static int sqlite_put(eng_txn *t, const void *k, size_t kl, const void *v,
                      size_t vl) {
  sqlite3_stmt *st = t->c->put;
  if (sqlite3_bind_blob(st, 1, k, (int)kl, SQLITE_STATIC) != SQLITE_OK ||
      sqlite3_bind_blob(st, 2, v, (int)vl, SQLITE_STATIC) != SQLITE_OK)
    return fail("bind", t->c->db);
  return step_done(t->c, st, "put");
}

static int sqlite_get(eng_txn *t, const void *k, size_t kl, const void **v,
                      size_t *vl) {
  sqlite3_stmt *st = t->c->get;
  int rc;
  sqlite3_reset(st); /* the previous value stayed valid until now */
  if (sqlite3_bind_blob(st, 1, k, (int)kl, SQLITE_STATIC) != SQLITE_OK)
    return fail("bind", t->c->db);
  rc = sqlite3_step(st);
  if (rc == SQLITE_DONE)
    return 0;
  if (rc != SQLITE_ROW)
    return fail("get", t->c->db);
  *v = sqlite3_column_blob(st, 0);
  *vl = (size_t)sqlite3_column_bytes(st, 0);
  return 1;
}

static int sqlite_scan(eng_txn *t, const void *from, size_t fl, size_t limit,
                       eng_scan_fn fn, void *ctx, size_t *count) {
  conn *c = t->c;
  sqlite3_stmt *st = from ? c->seek : c->first;
  size_t n = 0;
  int rc;
  if (from && sqlite3_bind_blob(st, 1, from, (int)fl, SQLITE_STATIC))
    return fail("bind", c->db);
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    const void *k = sqlite3_column_blob(st, 0);
    size_t kl = (size_t)sqlite3_column_bytes(st, 0);
    const void *v = sqlite3_column_blob(st, 1);
    size_t vl = (size_t)sqlite3_column_bytes(st, 1);
    n++;
    if (fn(ctx, k, kl, v, vl) || (limit && n == limit)) {
      rc = SQLITE_DONE;
      break;
    }
  }
  sqlite3_reset(st);
  if (rc != SQLITE_DONE)
    return fail("scan", c->db);
  *count = n;
  return 0;
}

const engine engine_sqlite = {
    .name = "sqlite",
    .version = sqlite_version,
    .config = "WAL, WITHOUT ROWID table, 64 MiB cache per connection; "
              "synchronous=FULL / OFF",
    .open = sqlite_open,
    .close = sqlite_close,
    .sync = sqlite_sync,
    .begin = sqlite_begin,
    .commit = sqlite_commit,
    .put = sqlite_put,
    .get = sqlite_get,
    .scan = sqlite_scan,
};
