/*
 * engine.h — the tiny interface every benchmarked engine sits behind.
 *
 * bench.c drives cairn and its peers (LMDB, RocksDB, LevelDB, SQLite) through
 * this table only, so every engine runs exactly the same workload code. Each
 * adapter lives in its own file (engine_NAME.c) and owns the configuration
 * that makes its numbers fair (see BENCH.md and the comment in each file).
 *
 * Contract every adapter keeps:
 *   - Every function returns 0 on success and -1 on failure, after printing
 *     one line on stderr naming the engine, the operation and the engine's
 *     own error. get() returns 1 when found, 0 when absent.
 *   - A database lives in the directory given to open(), which exists and is
 *     empty (or holds what an earlier open of the same engine left there).
 *   - begin(ENG_WRITE) starts the one write transaction; its commit is
 *     durable when commit() returns (the engine's fully synced commit) unless
 *     ENG_LAZY was given, in which case it is the engine's cheap unsynced
 *     commit and sync() makes it durable. put() is used only in write
 *     transactions.
 *   - begin(0) starts a read snapshot: get() and scan() see one commit until
 *     commit() ends it, while another thread may write. get() and scan() are
 *     used only in read transactions.
 *   - One thread uses a transaction at a time; a reader and the writer may
 *     run on two threads at once (W8), and one thread may hold a read
 *     snapshot open while it writes (W9).
 *   - Data returned by get() stays valid until the next call on the same
 *     transaction; data passed to a scan callback only during the callback.
 */
#ifndef BENCH_ENGINE_H
#define BENCH_ENGINE_H

#include <stddef.h>

typedef struct eng eng;         /* an open database (adapter-defined) */
typedef struct eng_txn eng_txn; /* a transaction (adapter-defined) */

#define ENG_WRITE 0x1 /* begin the write transaction */
#define ENG_LAZY 0x2  /* with ENG_WRITE: commit without syncing */

/* Called per key in order; non-zero stops the scan. */
typedef int (*eng_scan_fn)(void *ctx, const void *k, size_t kl, const void *v,
                           size_t vl);

typedef struct engine {
  const char *name;             /* "cairn", "lmdb", ... */
  const char *(*version)(void); /* library version string */
  const char *config;           /* how it is configured, for the report */
  int (*open)(const char *dir, eng **out); /* create or reopen */
  int (*close)(eng *e);                    /* syncs pending lazy commits */
  int (*sync)(eng *e);                     /* make lazy commits durable */
  int (*begin)(eng *e, int flags, eng_txn **out);
  int (*commit)(eng_txn *t); /* write: commit; read: end the snapshot */
  int (*put)(eng_txn *t, const void *k, size_t kl, const void *v, size_t vl);
  int (*get)(eng_txn *t, const void *k, size_t kl, const void **v, size_t *vl);
  /* Visit keys >= from (from == NULL: from the first key) in order, at most
   * limit of them (0 = no limit); *count = keys visited. A transaction may
   * reuse one cursor or iterator for all its scans. */
  int (*scan)(eng_txn *t, const void *from, size_t fl, size_t limit,
              eng_scan_fn fn, void *ctx, size_t *count);
} engine;

extern const engine engine_cairn;
extern const engine engine_lmdb;
extern const engine engine_rocksdb;
extern const engine engine_leveldb;
extern const engine engine_sqlite;

#endif /* BENCH_ENGINE_H */
