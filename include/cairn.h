/*
 * cairn.h — the public C API of cairn, a portable crash-safe storage engine.
 *
 * One header, everything a user needs. The engine is a copy-on-write B+tree
 * in one file: any number of concurrent read snapshots, one writer at a time,
 * named column families, cursors, and a durability mode per database that a
 * commit may override.
 *
 * Conventions kept by every function here:
 *   - Every function that can fail returns an int status: CAIRN_OK (0) or a
 *     negative CAIRN_E* code. cairn_strerror() names the code; cairn_errmsg()
 *     gives the detailed message of the last failure on the calling thread
 *     (for example which page failed its checksum).
 *   - Misuse (a NULL handle, writing in a read transaction, an oversize key,
 *     a finished transaction) is reported as an error, never an abort.
 *   - A failed write or sync leaves the file at its last good commit.
 *
 * Threads: a cairn_db may be shared by all threads. A transaction and its
 * cursors belong to the thread that uses them (one thread at a time). Read
 * transactions never block and are never blocked by the writer. Beginning a
 * write transaction waits while another thread holds one.
 *
 * Lifetime of returned data: returned slices point into the database
 * (zero-copy where the host maps the file).
 *   - from cairn_get: valid until the transaction ends;
 *   - from cairn_cursor_get: valid until that cursor moves or closes, or
 *     the transaction ends (the usual iterator contract; it lets a scan of
 *     any size run in bounded memory on hosts without a map);
 *   - in a write transaction, additionally only until the next
 *     modification in it (put, del, cf create/drop), as in LMDB.
 * On hosts without a map a read transaction keeps in memory the pages its
 * cairn_get calls returned data from; prefer cursors for bulk reads there.
 */
#ifndef CAIRN_H
#define CAIRN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CAIRN_VERSION_MAJOR 0
#define CAIRN_VERSION_MINOR 1
#define CAIRN_VERSION_PATCH 0
#define CAIRN_VERSION_STRING "0.1.0"

/* ---- status codes ------------------------------------------------------ */

#define CAIRN_OK 0
#define CAIRN_NOTFOUND (-1) /* key, column family or file does not exist */
#define CAIRN_EXISTS (-2)   /* put-if-absent or create of something present */
#define CAIRN_BUSY (-3)     /* file locked by another process or handle */
#define CAIRN_CORRUPT (-4)  /* a page or meta page failed validation */
#define CAIRN_IO (-5)       /* the platform reported an I/O error */
#define CAIRN_NOSPC (-6)    /* no space left on the device */
#define CAIRN_NOMEM (-7)    /* out of memory */
#define CAIRN_INVALID (-8)  /* bad argument or misuse of the API */
#define CAIRN_READONLY (-9) /* write attempted in a read-only txn or db */
#define CAIRN_TOOBIG (-10)  /* key or value over the size limit */
#define CAIRN_BADTXN (-11)  /* txn failed earlier or is finished: abort it */
#define CAIRN_NOTADB (-12)  /* the file is not a cairn database */
#define CAIRN_VERSION (-13) /* file format version not supported */
#define CAIRN_INUSE (-14)   /* resource in use (e.g. cf with open cursors) */
#define CAIRN_NOTSUPP (-15) /* operation not supported by this platform */

/* Static name of a status code ("CAIRN_CORRUPT: database page is corrupt"). */
const char *cairn_strerror(int rc);
/* Detailed message of the last error on the calling thread ("" if none). */
const char *cairn_errmsg(void);

/* ---- limits ------------------------------------------------------------ */

#define CAIRN_MAX_KEY_SIZE 1024u /* bytes; keys may be empty */
#define CAIRN_MAX_VALUE_SIZE (1024u * 1024u * 1024u) /* 1 GiB */
#define CAIRN_MAX_CF_NAME 255u
#define CAIRN_MIN_PAGE_SIZE 4096u
#define CAIRN_MAX_PAGE_SIZE 65536u

/* ---- types ------------------------------------------------------------- */

typedef struct cairn_db cairn_db;
typedef struct cairn_txn cairn_txn;
typedef struct cairn_cursor cairn_cursor;

/* A column family handle. Valid for the life of the cairn_db in every
 * transaction; CAIRN_DEFAULT_CF always exists. */
typedef uint32_t cairn_cf;
#define CAIRN_DEFAULT_CF 0u

/* A borrowed byte range. */
typedef struct cairn_slice {
  const void *data;
  size_t size;
} cairn_slice;

/* Durability of a commit. */
typedef enum cairn_durability {
  CAIRN_DURABILITY_DEFAULT = 0, /* the database's option (commit only) */
  CAIRN_DURABILITY_SYNC = 1,    /* durable when commit returns */
  CAIRN_DURABILITY_LAZY = 2     /* durable at the next sync; integrity always */
} cairn_durability;

/* cairn_options.flags */
#define CAIRN_OPEN_CREATE 0x1u /* create the file if it does not exist */
#define CAIRN_OPEN_RDONLY 0x2u /* read-only: shared lock, no writes */
#define CAIRN_OPEN_NOMMAP 0x4u /* use the page cache even if the host maps */
/* No write-ahead log: every commit writes its tree pages and a meta page
 * (the plain copy-on-write path; one file, slower durable commits). */
#define CAIRN_OPEN_NOLOG 0x8u

typedef struct cairn_options {
  uint32_t flags;              /* CAIRN_OPEN_*; default CAIRN_OPEN_CREATE */
  uint32_t page_size;          /* new files only: power of two 4096..65536 */
  cairn_durability durability; /* default CAIRN_DURABILITY_SYNC */
  const char *platform;        /* NULL = the host's default ("unix", "wasi") */
  size_t cache_pages;          /* page cache bound in cached mode; 0 = 4096 */
  uint32_t lazy_sync_commits;  /* lazy mode: sync after this many commits */
  uint32_t lazy_sync_ms;       /* lazy mode: sync when this much time passed */
  /* With the log: checkpoint (fold the in-memory overlay of commits into
   * the tree, then restart the log) when it or the log pass this many
   * MiB; 0 = 64. */
  uint32_t checkpoint_mib;
} cairn_options;

/* Fill *opts with the defaults. */
void cairn_options_init(cairn_options *opts);

/* ---- database ---------------------------------------------------------- */

/* Open (and with CAIRN_OPEN_CREATE, atomically create) the database at path.
 * opts may be NULL for the defaults. On failure *out is NULL. A second open
 * for writing of the same file (by any process or handle) is CAIRN_BUSY. */
int cairn_open(const char *path, const cairn_options *opts, cairn_db **out);

/* Close the database: syncs lazy commits, frees everything. Transactions
 * still open are aborted. NULL is accepted. Returns the sync status. */
int cairn_close(cairn_db *db);

/* Make every commit so far durable (lazy mode); a no-op when nothing is
 * pending. */
int cairn_sync(cairn_db *db);

/* Fold the in-memory overlay of commits into the tree in key order, write
 * the pages, make them durable with a meta page, and restart the
 * write-ahead log (as sqlite3_wal_checkpoint). cairn does this by itself
 * when the log or the overlay pass checkpoint_mib, and at close; call it
 * before copying the database file by other means. CAIRN_BUSY from the
 * thread that holds the write transaction. */
int cairn_checkpoint(cairn_db *db);

/* ---- transactions ------------------------------------------------------ */

#define CAIRN_TXN_RDONLY 0x1u

/* Begin a read snapshot (CAIRN_TXN_RDONLY) or the write transaction. */
int cairn_begin(cairn_db *db, unsigned flags, cairn_txn **out);
/* Commit with the database's durability; frees txn in every case.
 * An error means the commit did not happen, except when the handle then
 * refuses further writes (CAIRN_IO "reopen the database"): the failure came
 * after the commit's log record or meta page was written, and after a
 * reopen the database holds either the commit or the state before it,
 * whole. */
int cairn_commit(cairn_txn *txn);
/* Commit with an explicit durability; frees txn in every case. */
int cairn_commit_ex(cairn_txn *txn, cairn_durability durability);
/* Discard the transaction's changes and free it. NULL is accepted. */
void cairn_abort(cairn_txn *txn);
/* The id of the snapshot (read) or of the commit being built (write). */
uint64_t cairn_txn_id(const cairn_txn *txn);

/* ---- column families --------------------------------------------------- */

#define CAIRN_CF_CREATE 0x1u

/* Open the column family called name (1..255 bytes, not "default" unless
 * opening the default one). With CAIRN_CF_CREATE in a write transaction it is
 * created if missing; the creation commits or aborts with the transaction. */
int cairn_cf_open(cairn_txn *txn, const char *name, unsigned flags,
                  cairn_cf *out);
/* Drop a column family and all its keys (write transaction; not the default
 * one; CAIRN_INUSE while a cursor of this transaction is open on it). */
int cairn_cf_drop(cairn_txn *txn, cairn_cf cf);
/* Call fn once per column family name in order; a non-zero return stops the
 * walk and is returned. */
int cairn_cf_list(cairn_txn *txn,
                  int (*fn)(void *ctx, const char *name, cairn_cf cf),
                  void *ctx);

/* ---- data -------------------------------------------------------------- */

#define CAIRN_PUT_NOOVERWRITE 0x1u /* CAIRN_EXISTS if the key is present */

int cairn_get(cairn_txn *txn, cairn_cf cf, cairn_slice key, cairn_slice *val);
int cairn_put(cairn_txn *txn, cairn_cf cf, cairn_slice key, cairn_slice val,
              unsigned flags);
/* CAIRN_NOTFOUND if the key was absent. */
int cairn_del(cairn_txn *txn, cairn_cf cf, cairn_slice key);

/* ---- cursors ----------------------------------------------------------- */

/* A cursor walks one column family of one transaction. Each move returns
 * CAIRN_NOTFOUND at the end of the range and leaves the cursor unpositioned.
 * A cursor in a write transaction stays correct while the transaction
 * modifies the tree: the next move continues from the key it was on. */
int cairn_cursor_open(cairn_txn *txn, cairn_cf cf, cairn_cursor **out);
/* Restrict the cursor to [from, to); a NULL data pointer (size 0 slice with
 * data NULL) means unbounded on that side. Resets its position. */
int cairn_cursor_bounds(cairn_cursor *c, cairn_slice from, cairn_slice to);
/* Restrict the cursor to keys starting with prefix. Resets its position. */
int cairn_cursor_prefix(cairn_cursor *c, cairn_slice prefix);
int cairn_cursor_first(cairn_cursor *c);
int cairn_cursor_last(cairn_cursor *c);
/* Position at the first key >= key (within the bounds). */
int cairn_cursor_seek(cairn_cursor *c, cairn_slice key);
/* Position at the last key <= key (within the bounds). */
int cairn_cursor_seek_le(cairn_cursor *c, cairn_slice key);
int cairn_cursor_next(cairn_cursor *c);
int cairn_cursor_prev(cairn_cursor *c);
/* The key and value at the cursor; either pointer may be NULL. */
int cairn_cursor_get(cairn_cursor *c, cairn_slice *key, cairn_slice *val);
void cairn_cursor_close(cairn_cursor *c);

/* ---- statistics -------------------------------------------------------- */

/* With the write-ahead log, entries counts what the txn sees; depth and the
 * page counts describe the tree of the last checkpoint (later commits are
 * in the in-memory overlay until the next one). */
typedef struct cairn_cf_stat {
  uint64_t entries;
  uint32_t depth; /* 0 for an empty tree */
  uint64_t branch_pages;
  uint64_t leaf_pages;
  uint64_t overflow_pages;
} cairn_cf_stat;

typedef struct cairn_db_stat {
  uint32_t page_size;
  uint64_t file_size;          /* bytes of the database file */
  uint64_t log_size;           /* bytes of its -wal file; 0 without a log */
  uint64_t overlay_bytes;      /* memory holding commits since the checkpoint */
  uint64_t page_count;         /* pages the file holds (high-water mark) */
  uint64_t pages_in_use;       /* reachable from the current commit */
  uint64_t pages_free;         /* reusable now or once snapshots end */
  uint64_t last_txn_id;        /* newest commit */
  uint64_t durable_txn_id;     /* newest commit known durable */
  uint64_t snapshots;          /* live read transactions */
  uint64_t oldest_snapshot_id; /* 0 when there are none */
  uint64_t pages_pinned; /* freed pages kept alive by the oldest snapshot */
  uint32_t column_families;
  int mapped; /* 1 if reads come from a memory map */
  const char *platform;
} cairn_db_stat;

/* Statistics of one column family as seen by txn. */
int cairn_cf_stat_get(cairn_txn *txn, cairn_cf cf, cairn_cf_stat *out);
/* Statistics of the whole database (pages_in_use walks every tree). */
int cairn_db_stat_get(cairn_db *db, cairn_db_stat *out);

/* ---- metrics ------------------------------------------------------------ */

/* Latency of one kind of operation since the database was opened.
 * Percentiles come from a log-linear histogram (within 1/8 of the true
 * value). get and put are sampled (every 16th call per thread) so timing
 * stays off the hot path; commit and sync are timed every call. */
typedef struct cairn_latency {
  uint64_t count; /* operations timed */
  uint64_t mean_ns;
  uint64_t p50_ns;
  uint64_t p99_ns;
  uint64_t p999_ns;
  uint64_t max_ns;
} cairn_latency;

/* Counters since the database was opened (this handle, this process). */
typedef struct cairn_metrics {
  uint64_t gets, get_misses, puts, dels;
  uint64_t commits, commits_sync, commits_lazy, commits_empty, aborts;
  uint64_t syncs; /* durable points: sync commits and lazy-mode syncs */
  uint64_t pages_written, bytes_written;         /* by commits, in total */
  uint64_t last_commit_pages, last_commit_bytes; /* by the newest commit */
  uint64_t pages_allocated_new;                  /* file growth, in pages */
  uint64_t pages_reused; /* allocations served by the freelist */
  uint64_t pages_freed;  /* pages commits released */
  uint64_t cache_hits, cache_misses, cache_evictions; /* cached mode only */
  uint64_t checkpoints;  /* overlay folded into the tree + meta (log mode) */
  uint64_t bytes_logged; /* write-ahead log records appended */
  /* durable commits of appends that folded themselves into the tree
   * instead of being logged (log mode; each is a checkpoint too) */
  uint64_t commits_folded;
  /* lazy checkpoints whose fold ran while commits went on (counted as they
   * begin; published ones count in checkpoints too) */
  uint64_t checkpoints_background;
  cairn_latency get, put, commit, sync;
} cairn_metrics;

int cairn_metrics_get(cairn_db *db, cairn_metrics *out);

/* ---- operations --------------------------------------------------------- */

/* Backup, restore, dump/load and stats output (core/OPERATIONS.md documents
 * every file format).
 *
 * A backup is one file holding the database as of one read snapshot, taken
 * while writers keep committing (the snapshot pins its pages; they are never
 * rewritten while the backup reads them). The snapshot is made durable first
 * (cairn_sync), so a later crash can never take the database back behind a
 * backup that an incremental one builds on. A backup file is written under a
 * temporary name and renamed into place only when complete: dest never holds
 * a partial backup, and an existing dest is never replaced (CAIRN_EXISTS).
 *
 *   full         every page reachable from the snapshot, page for page.
 *   compact      (CAIRN_BACKUP_COMPACT) only the live data, rewritten in key
 *                order with full leaves: smaller than a churned source.
 *                Cannot be the base of an incremental backup.
 *   incremental  (incremental_from = a previous full or incremental backup of
 *                this database) only the pages written since that backup's
 *                snapshot. Restore needs the whole chain.
 *
 * Every backup file carries its source database id, page size, snapshot txn
 * id (and, if incremental, the txn id it continues), a checksum per page
 * record and a checksum of the whole file. */
#define CAIRN_BACKUP_COMPACT 0x1u

typedef struct cairn_backup_options {
  unsigned flags;               /* CAIRN_BACKUP_* */
  const char *incremental_from; /* previous backup to continue; NULL = full */
  const char *platform; /* platform of the backup files; NULL = the db's */
} cairn_backup_options;

/* Fill *opts with the defaults (a full backup on the database's platform). */
void cairn_backup_options_init(cairn_backup_options *opts);

/* Back up db to a new file dest in one call (begin + finish below). opts may
 * be NULL. The calling thread must not hold db's write transaction. */
int cairn_backup(cairn_db *db, const char *dest,
                 const cairn_backup_options *opts);

/* A backup in steps, like SQLite's backup API: begin takes the snapshot,
 * each step copies up to max_pages pages (0 = all; *done = 1 when nothing is
 * left),
 * finish copies whatever remains, seals the file and renames it to dest;
 * abort discards it. The job (and the snapshot it pins, which keeps freed
 * pages from being reused) belongs to one thread; finish and abort free it
 * in every case. A compact backup rewrites the data in its steps before it
 * copies pages. */
typedef struct cairn_backup_job cairn_backup_job;
int cairn_backup_begin(cairn_db *db, const char *dest,
                       const cairn_backup_options *opts,
                       cairn_backup_job **out);
int cairn_backup_step(cairn_backup_job *job, uint64_t max_pages, int *done);
int cairn_backup_finish(cairn_backup_job *job);
void cairn_backup_abort(cairn_backup_job *job);
/* The txn id of the snapshot the job copies. */
uint64_t cairn_backup_txn_id(const cairn_backup_job *job);

#define CAIRN_BACKUP_FULL 1u
#define CAIRN_BACKUP_INCREMENTAL 2u
#define CAIRN_BACKUP_COMPACTED 3u

/* What a backup file holds, as its header and trailer say. */
typedef struct cairn_backup_info {
  uint32_t kind;        /* CAIRN_BACKUP_FULL / _INCREMENTAL / _COMPACTED */
  uint32_t page_size;   /* of the source database */
  uint8_t db_id[16];    /* the source database's id (FORMAT.md, meta) */
  uint64_t base_txn_id; /* incremental: the txn id it continues, else 0 */
  uint64_t txn_id;      /* the snapshot it holds */
  uint64_t db_pages;    /* pages of the database at txn_id */
  uint64_t pages;       /* pages stored in the file */
  uint64_t file_size;   /* bytes */
  char source[256];     /* source path as given to backup (truncated) */
} cairn_backup_info;

/* Read and verify a whole backup file (every checksum); out may be NULL.
 * CAIRN_CORRUPT names the damage (truncated, which record, which checksum);
 * CAIRN_NOTADB if it is not a cairn backup. platform NULL = host default. */
int cairn_backup_verify(const char *path, const char *platform,
                        cairn_backup_info *out);

/* Verify a chain as cairn_restore would before writing anything: every file
 * whole (all checksums), then its order, database ids and page sizes. The
 * same refusals and messages as cairn_restore; nothing is written. */
int cairn_backup_verify_chain(const char *const *backups, size_t nbackups,
                              const char *platform);

/* Restore a full (or compact) backup followed by zero or more incremental
 * ones, in the order they were taken, into a new database at dest, which
 * must not exist (CAIRN_EXISTS otherwise; nothing is touched). Every file
 * is verified before anything is written; a gap in the chain, a wrong order,
 * files of another database or page size are CAIRN_INVALID and damaged files
 * CAIRN_CORRUPT, each with a message naming the file and the reason. The
 * result is built under a temporary name, synced, checked (cairn_check) and
 * renamed into place. It holds exactly the last backup's snapshot and gets a
 * new database id: a restored database is a new database, whose backups
 * start with a new full one. platform NULL = host default. */
int cairn_restore(const char *const *backups, size_t nbackups, const char *dest,
                  const char *platform);

/* Streams for dump, load and stats output. A write callback returns 0 or a
 * CAIRN_* code (anything else non-zero is reported as CAIRN_IO); a read
 * callback stores up to cap bytes and their number in *got (0 = end). */
typedef int (*cairn_write_fn)(void *ctx, const void *buf, size_t n);
typedef int (*cairn_read_fn)(void *ctx, void *buf, size_t cap, size_t *got);

/* Write every column family of one snapshot in the portable text format
 * (core/OPERATIONS.md): a header line, per column family a section line and
 * one hex "key:value" line per entry in key order, and an end line. Memory
 * use is bounded by the largest value. The output depends only on the
 * content and the page size (named in the header), so dump | load | dump is
 * byte for byte when the loaded database has the same page size (`cairn
 * load` creates it so). */
int cairn_dump(cairn_db *db, cairn_write_fn write, void *ctx);

/* Load a dump into db, which must be empty (only an empty default column
 * family; CAIRN_EXISTS otherwise). Keys must ascend strictly within each
 * section and every count must match. Commits in batches of bounded size;
 * the last commit is durable. A failed load (bad input: CAIRN_CORRUPT naming
 * the line; a newer format: CAIRN_VERSION) leaves what the finished batches
 * wrote: load again into a new database. */
int cairn_load(cairn_db *db, cairn_read_fn read, void *ctx);

#define CAIRN_STAT_JSON 1
#define CAIRN_STAT_PROMETHEUS 2

/* Write the database statistics, per column family statistics and the
 * metrics of this handle as one JSON object or as Prometheus text exposition
 * format (metrics named cairn_*, latencies as summaries in seconds). */
int cairn_stat_write(cairn_db *db, int format, cairn_write_fn write, void *ctx);

/* ---- integrity ---------------------------------------------------------- */

/* Walk every page of the newest commit: page checksums, key order within and
 * across pages, branch separators, and page accounting (each page reachable
 * from exactly one place or free, none lost), the free list, and both meta
 * pages as the file holds them (a damaged slot that open silently passes
 * over is reported). report (may be NULL) is called once per problem found,
 * every problem, not only the first. CAIRN_OK if clean, CAIRN_CORRUPT
 * ("N problem(s); first: ...") otherwise. */
int cairn_check(cairn_db *db, void (*report)(void *ctx, const char *problem),
                void *ctx);

#ifdef __cplusplus
}
#endif
#endif /* CAIRN_H */
