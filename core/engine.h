/*
 * engine.h — the engine's internal types and the functions each core file
 * offers the others. Nothing here is public API.
 *
 * Ownership at a glance:
 *   pager.c     the file, the map or page cache, reading validated pages,
 *               writing dirty pages, meta pages
 *   freelist.c  which pages are free, and when a freed page may be reused
 *   btree.c     search/insert/delete with copy-on-write and rebalancing
 *   cursor.c    ordered iteration and the public cursor API
 *   catalog.c   column families (a tree of name -> record)
 *   txn.c       begin/commit/abort, snapshots and the commit protocol
 *   db.c        open/create/close/sync and options
 *   stat.c, check.c   statistics and the integrity walk
 */
#ifndef CAIRN_ENGINE_H
#define CAIRN_ENGINE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "cairn.h"
#include "metrics.h"
#include "overlay.h"
#include "page.h"
#include "page_pool.h"
#include "pgmap.h"
#include "platform.h"
#include "threads.h"
#include "warm.h"

#define CAIRN_FORMAT_VERSION 1u
#define META_MAGIC "cairnDB" /* 8 bytes with the NUL */
#define META_SPAN 256u       /* bytes of a meta page the crc covers */
#define BYTE_ORDER_MARK 0x01020304u
#define CATALOG_CF_ID 0xffffffffu

/* The state a commit leaves: what a meta page records. */
typedef struct meta {
  uint64_t txnid;
  uint64_t page_count; /* pages in the file at this commit (high-water) */
  uint64_t catalog_root;
  uint64_t catalog_entries;
  uint32_t catalog_depth;
  uint32_t page_size;
  uint64_t freelist_head;
  uint64_t freelist_count;
  uint64_t next_cf_id;
  uint8_t db_id[16]; /* random at creation: names this database for good */
  /* Meta pages written by this database: a checkpoint keeps the txn id of
   * the commit it records, so two metas may share one; the later wins. */
  uint64_t seq;
} meta;

/* ---- pager ------------------------------------------------------------- */

typedef struct cache_entry cache_entry;
typedef struct verified_map verified_map;

typedef struct old_map {
  const uint8_t *addr;
  uint64_t len;
  struct old_map *next;
} old_map;

typedef struct pager {
  cairn_platform *plat;
  cairn_file *file;
  uint32_t psize;
  int mapped;
  /* mapped mode: the current map (readers copy it at begin); older maps
   * stay valid until close because old snapshots may still use them. */
  const uint8_t *map;
  uint64_t map_len;
  old_map *old_maps;
  verified_map *verified;
  /* cached mode */
  cairn_mutex cache_mu;
  pgmap cache;       /* pgno -> cache_entry */
  size_t clock_hand; /* eviction sweeps cache's slots from here */
  size_t cache_cap, cache_pages;
  size_t unpinned_pages; /* of cache_pages, in entries no one pins */
  metrics *metrics;      /* the owning database's counters */
} pager;

struct cache_entry { /* the page follows, see ENTRY_DATA in pager.c */
  uint64_t pgno;
  uint64_t npages;
  long refs;
  int detached; /* replaced by newer content; freed when unpinned */
  int used;     /* pinned since the clock hand last passed (eviction) */
};

int pager_open(pager *pg, cairn_platform *plat, cairn_file *file,
               uint32_t psize, int want_map, size_t cache_cap,
               uint64_t file_size);
void pager_close(pager *pg);
/* Make the map cover at least bytes (mapped mode). */
int pager_ensure_map(pager *pg, uint64_t bytes);
/* Read, validate and return a clean page (or overflow run) for a txn. */
int pager_get(pager *pg, cairn_txn *txn, uint64_t pgno, uint64_t npages,
              unsigned types, const uint8_t **out);
/* Release the pins a txn holds (cached mode). */
void pager_release(pager *pg, cairn_txn *txn);
/* Release and forget one set of pins (a cursor's or a walk's). */
void pager_release_set(pager *pg, pgmap *set);
/* Pin scopes: pages fetched between begin and end are pinned in scope and
 * released by end, so a walk holds only its current path. */
void txn_scope_begin(cairn_txn *txn, pgmap *scope, pgmap **saved);
void txn_scope_end(cairn_txn *txn, pgmap *scope, pgmap *saved);
/* Forget that a page range was validated (it is about to be rewritten). */
void pager_invalidate(pager *pg, uint64_t pgno, uint64_t npages);
/* Mapped mode: a page this process just wrote from a buffer it built and
 * sealed is known valid; reading it back through the map skips the
 * checksum (a checkpoint reads most of the previous one's pages). */
void pager_mark_written(pager *pg, uint64_t pgno);
/* Mapped mode: pages (sorted) no tree of the newest state reaches; drop
 * them from the process's resident set (a snapshot still reading one
 * faults it back in, unchanged). */
void pager_forget(pager *pg, const pgvec *pages);
/* Cached mode: adopt a freshly written buffer as the page's content. */
void pager_adopt(pager *pg, uint64_t pgno, uint64_t npages, uint8_t *buf);

int meta_read(cairn_file *f, uint64_t file_size, meta *out, int *slot,
              uint32_t *psize);
void meta_encode(const meta *m, uint8_t *buf, uint64_t slot);
int meta_write(cairn_file *f, const meta *m, int slot, uint32_t psize);

/* ---- deferred pages (deferred.c) --------------------------------------- */

typedef struct dirty_page {
  uint64_t pgno;
  uint64_t npages;
  uint8_t *buf;
} dirty_page;

typedef struct dp_slot {
  _Atomic uint64_t key; /* pgno; 0 empty; UINT64_MAX removed */
  dirty_page *_Atomic page;
  _Atomic uint64_t read_by; /* 1 + newest snapshot that read the page */
} dp_slot;
typedef struct dp_table dp_table;
typedef struct retired_table {
  dp_table *table;
  uint64_t tag; /* newest txn id published when it was retired */
  struct retired_table *next;
} retired_table;

typedef struct deferred {
  dp_table *_Atomic tab;
  _Atomic size_t live; /* entries of tab (readers skip an empty table) */
  uint64_t bytes;      /* writer-only (a running fold's): bytes of live pages */
  uint32_t psize;
  retired_table *retired; /* writer-only (a running fold's) */
  page_pool *pool;        /* where freed pages go (the db's) */
} deferred;

void deferred_init(deferred *d);
void deferred_free(deferred *d);
/* Any thread: the page a commit left at pgno, or NULL. A read txn passes
 * 1 + its snapshot id as reader (it may keep the page's address until it
 * ends); the writer passes 0. */
dirty_page *deferred_get(deferred *d, uint64_t pgno, uint64_t reader);
/* Writer: add a sealed page (the table takes it); replaces a dead entry. */
int deferred_put(deferred *d, dirty_page *page, uint64_t published);
/* Room for n more pages, so that n deferred_put calls cannot run out of
 * memory (a commit calls it before its log record makes it durable). */
int deferred_reserve(deferred *d, size_t n, uint64_t published);
/* Writer: drop a dead page. */
void deferred_remove(deferred *d, uint64_t pgno);
/* Writer: every live page (unsorted; the array is the caller's). */
int deferred_list(deferred *d, dirty_page ***out, size_t *n);
/* Writer: the pages are in the file now; start an empty table. Pages no
 * live reader has read are freed at once (oldest_reader: the smallest
 * snapshot id of a live read txn, found after this call began); the rest
 * wait in a retired table until those readers end. */
dp_table *deferred_detach(deferred *d);
void deferred_retire_written(deferred *d, dp_table *t, uint64_t oldest_reader,
                             uint64_t published);
/* Writer: free retired tables no reader with snapshot >= oldest_reader can
 * be probing. */
void deferred_collect(deferred *d, uint64_t oldest_reader);

/* ---- write-ahead log (wal.c) ------------------------------------------- */

#define WAL_HDR 512u
#define WAL_REC_HDR 32u
enum { WAL_PUT = 1, WAL_DEL = 2, WAL_CF_CREATE = 3, WAL_CF_DROP = 4 };

typedef struct wal {
  cairn_file *file;
  uint64_t pos;          /* where the next record goes */
  uint64_t salt;         /* of the current header; records carry it */
  uint64_t base;         /* the checkpoint the records follow */
  int unsynced;          /* records written since the last sync */
  uint64_t last_txnid;   /* of the newest record appended */
  uint64_t synced_txnid; /* newest record a sync made durable */
  int header_due;        /* wal_reset_later: header goes with the next record */
  uint8_t db_id[16];     /* for that header */
} wal;

int wal_reset(wal *w, const uint8_t db_id[16], uint64_t base);
/* The same, for a log that holds no record: the new header is written with
 * the next record (one sync covers both; until then the old header, with
 * no record after it, replays nothing). */
void wal_reset_later(wal *w, const uint8_t db_id[16], uint64_t base);
/* rec holds WAL_REC_HDR bytes of room, then body bytes of ops. */
int wal_append(wal *w, uint64_t txnid, uint8_t *rec, size_t body);
int wal_sync(wal *w);
/* Replay the records newer than db->cur (recovery at open). */
int wal_recover(cairn_db *db, uint64_t *replayed);

/* ---- column family state inside a txn ---------------------------------- */

typedef struct cf_state {
  uint32_t id;
  uint32_t depth; /* 0 = empty tree */
  uint64_t root;  /* 0 = empty tree */
  uint64_t entries;
  int dirty; /* root/entries changed: record goes to the catalog */
  int dropped;
  int ncursors;
  uint8_t namelen;
  char name[CAIRN_MAX_CF_NAME + 1];
} cf_state;

/* ---- transactions ------------------------------------------------------ */

/* A cf's greatest key in the checkpointed tree (copied), looked up once
 * per write txn. */
#define TXN_EDGES 4
typedef struct tree_edge {
  uint32_t cf;
  int empty; /* the tree holds nothing: every key is beyond */
  size_t klen;
  uint8_t *key;
} tree_edge;

struct cairn_txn {
  cairn_db *db;
  int rdonly;
  int failed;         /* an error left the txn unusable: only abort works */
  meta snap;          /* the snapshot (read) or the state being built (write) */
  const uint8_t *map; /* mapped mode: the map this txn reads through */
  uint64_t gen;       /* bumped on every modification (cursor revalidation) */
  uint64_t spilled;   /* pages written ahead of the commit (txn_spill) */
  cf_state catalog;
  cf_state **cfs;
  size_t ncfs, capcfs;
  cairn_cursor *cursors; /* open cursors (linked through next) */
  overlay *ov;           /* log mode: the commits after the tree's checkpoint (a
                          * reader holds a reference; the writer uses db->ov) */
  /* Log mode, while a checkpoint folds in the background (ckpt_bg.c): the
   * overlay it folds, between ov and the tree (a reference); NULL else. */
  overlay *ov_old;
  overlay
      *ov_rebased;   /* writer: ov_old after a rebase (cursors may point in) */
  uint64_t tree_gen; /* db->tree_gen when the txn took its tree */
  pgmap pins;        /* cached mode: pgno -> cache_entry pinned */
  pgmap *pin_to;     /* where new pins go (a cursor's or a walk's own
                      * set); NULL = pins, held until the txn ends */
  pgmap *pin_from;   /* cached mode: pins of the position a cursor is
                      * leaving; a page found there moves to pin_to */
  /* write txn only */
  pgmap dirty;          /* pgno -> dirty_page */
  pgvec freed;          /* pages of the snapshot this txn freed */
  pgvec taken;          /* pages taken from the ready freelist */
  pgvec local_free;     /* pages allocated and freed again in this txn */
  dirty_page **retired; /* buffers of freed dirty pages, freed at end */
  size_t nretired, capretired;
  uint8_t *scratch;        /* one page of working space */
  uint8_t *log;            /* the commit's log record (header room + ops) */
  ov_version **ov_written; /* versions this txn added (hidden on abort) */
  size_t nov_written, capov_written;
  size_t loglen, logcap;
  /* Log mode: what folding this txn's writes into the trees at its commit
   * would write (view.c), and each cf's last tree key it compared with. */
  uint64_t fold_bytes;
  tree_edge edges[TXN_EDGES];
  size_t nedges;
  int checkpoint;       /* internal txn writing the deferred pages */
  int detached;         /* a checkpoint txn without the write lock */
  cairn_txn **snap_out; /* checkpoint: begin a read txn before unlocking */
  cairn_txn *next_live; /* db's list of live txns */
};

/* Pages of a txn: clean ones read-only from the snapshot, dirty ones
 * writable. */
int txn_page(cairn_txn *txn, uint64_t pgno, unsigned types,
             const uint8_t **out);
int txn_overflow(cairn_txn *txn, uint64_t pgno, uint32_t vlen,
                 const uint8_t **out);
/* Make pgno writable: returns the dirty buffer and its (new) number. */
int txn_touch(cairn_txn *txn, uint64_t pgno, uint8_t **buf, uint64_t *newpg);
/* Write the txn's finished fresh pages now and recycle their buffers. */
int txn_spill(cairn_txn *txn, const uint64_t *pgnos, size_t n);
/* Allocate n contiguous fresh dirty pages. */
int txn_alloc(cairn_txn *txn, uint64_t n, uint8_t **buf, uint64_t *pgno);
/* One fresh dirty page, not zeroed: the caller lays it out whole with
 * btree_node_build (a fold builds a tree's worth; zeroing each first was
 * 5% of a lazy commit's time). */
int txn_alloc_page_to_build(cairn_txn *txn, uint8_t **buf, uint64_t *pgno);
/* Free a page run reachable in this txn (clean or dirty). */
int txn_free(cairn_txn *txn, uint64_t pgno, uint64_t n);
int txn_fail(cairn_txn *txn, int rc);
cf_state *txn_cf(cairn_txn *txn, cairn_cf cf, int *rc);
int txn_check_live(const cairn_txn *txn);
/* Begin the write txn for the engine itself (recovery, checkpoints): no
 * read-only or thread checks. */
int txn_begin_writer(cairn_db *db, cairn_txn **out);
/* Append one logical op to the txn's log record (a no-op without a log). */
int wal_log_op(cairn_txn *txn, int kind, const cf_state *cf, const uint8_t *key,
               size_t klen, const uint8_t *val, size_t vlen);

/* ---- what a txn sees: the overlay over the tree (view.c) --------------- */

/* The value of key in cf as txn sees it (CAIRN_NOTFOUND if none). */
int view_get(cairn_txn *txn, cf_state *s, const uint8_t *key, size_t klen,
             cairn_slice *val);
/* Log mode, writer: record a put (tomb = 0) or a deletion in the overlay.
 * CAIRN_EXISTS with noover if the key is there; CAIRN_NOTFOUND for a
 * deletion of a missing key. */
int view_write(cairn_txn *txn, cf_state *s, const uint8_t *key, size_t klen,
               const uint8_t *val, size_t vlen, int tomb, int noover);
/* Entries of cf as txn sees them: the tree's count and the overlay's. */
int view_entries(cairn_txn *txn, cf_state *s, uint64_t *out);
/* Checkpoint: apply every overlay version txn sees to its trees, in key
 * order. */
int view_fold(cairn_txn *txn);
/* Abort: hide the versions the txn added. */
void view_abort(cairn_txn *txn);

/* ---- free pages -------------------------------------------------------- */

enum {
  PENDING_OLD = 0,       /* pages of a state some meta page may name */
  PENDING_YOUNG = 1,     /* pages no checkpoint ever wrote (deferred.c) */
  PENDING_CHECKPOINT = 2 /* the tree a checkpoint replaced: reusable once
                          * no reader holds an overlay older than the
                          * db's (they share the checkpoint's txn id) */
};

typedef struct pending_free {
  uint64_t txnid; /* freed by this commit */
  int young;      /* PENDING_* */
  pgvec pages;
  struct pending_free *next;
} pending_free;

typedef struct freelist {
  pgvec ready;           /* sorted: reusable by the next write txn */
  pending_free *pending; /* oldest first */
  /* Records kept for freelist_add_pending (refilled by freelist_release at
   * each writer's begin), so recording a commit's freed pages after its
   * commit point never needs memory. */
  pending_free *spare;
  int nspare;
} freelist;

void freelist_free(freelist *fl);
/* Move pending runs into ready: those freed at or before limit, young ones
 * freed at or before young_limit (their numbers are appended to young),
 * a checkpoint's only if checkpointed_ok too. */
int freelist_release(freelist *fl, uint64_t limit, uint64_t young_limit,
                     int checkpointed_ok, pgvec *young);
int freelist_take(freelist *fl, uint64_t n, uint64_t *pgno);
int freelist_return(freelist *fl, const pgvec *pages);
int freelist_add_pending(freelist *fl, uint64_t txnid, pgvec *pages, int young);
uint64_t freelist_total(const freelist *fl);
/* Give the disk blocks of every free page back to the filesystem (close:
 * no snapshot is left and the durable meta reaches none of them). Best
 * effort: a host without hole punching keeps the blocks. */
void freelist_punch(const freelist *fl, cairn_file *f, uint32_t psize);
/* Pages pending because of snapshots at or before txnid (and, with
 * checkpointed_pinned, those of checkpoints older readers still hold). */
uint64_t freelist_pinned_after(const freelist *fl, uint64_t txnid,
                               int checkpointed_pinned);
/* Load the persisted list of a meta. */
int freelist_load(cairn_txn *txn, freelist *fl);
/* Write the txn's freelist pages; sets snap.freelist_head/count. */
int freelist_persist(cairn_txn *txn);

/* ---- trees ------------------------------------------------------------- */

/* The greatest key in t (pointing into a page the txn holds), or
 * CAIRN_NOTFOUND for an empty tree. */
int btree_last_key(cairn_txn *txn, cf_state *t, const uint8_t **key,
                   size_t *klen);
int btree_get(cairn_txn *txn, cf_state *t, const uint8_t *key, size_t klen,
              cairn_slice *val);
int btree_put(cairn_txn *txn, cf_state *t, const uint8_t *key, size_t klen,
              const uint8_t *val, size_t vlen, unsigned flags);
int btree_del(cairn_txn *txn, cf_state *t, const uint8_t *key, size_t klen);
/* Free every page of a tree (drop). */
int btree_free_all(cairn_txn *txn, cf_state *t);
/* Read the value of a leaf entry (inline or overflow). */
int btree_entry_value(cairn_txn *txn, const uint8_t *e, cairn_slice *val);
uint32_t btree_max_inline(uint32_t psize);
/* Keys in memcmp order, shorter first on a tie. Inline for the searches:
 * keys of 8 bytes or more are told apart by their first 8 as one
 * big-endian word in most compares (random hashes always), without a call
 * into memcmp (W3 point gets +10%). */
static inline int key_cmp(const uint8_t *a, size_t alen, const uint8_t *b,
                          size_t blen) {
  if (alen >= 8 && blen >= 8) {
    uint64_t x, y;
    memcpy(&x, a, 8);
    memcpy(&y, b, 8);
    if (x != y) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
      x = __builtin_bswap64(x);
      y = __builtin_bswap64(y);
#endif
      return x < y ? -1 : 1;
    }
  }
  size_t n = alen < blen ? alen : blen;
  int c = n ? memcmp(a, b, n) : 0;
  if (c)
    return c;
  return alen < blen ? -1 : alen > blen;
}
/* One entry of a page being laid out (size without its 2-byte slot). */
typedef struct page_ent {
  const uint8_t *ptr;
  uint32_t size;
} page_ent;
/* Lay entries out in buf as a fresh page; they must not point into buf. */
void btree_node_build(uint8_t *buf, uint32_t psize, uint16_t type,
                      uint64_t pgno, const page_ent *es, uint32_t n);
/* Build a leaf entry for (key, val) in e (room for LEAF_ENTRY_HDR + klen +
 * max(vlen, 8) bytes), writing a large value to a fresh overflow run. */
int btree_make_entry(cairn_txn *txn, const uint8_t *key, size_t klen,
                     const uint8_t *val, size_t vlen, uint8_t *e,
                     uint32_t *esize);
/* Free a leaf entry's overflow run, if it has one. */
int btree_free_value(cairn_txn *txn, const uint8_t *e);
/* A checkpoint's fold of one column family's overlay nodes (nodes[*i]
 * onwards; all of the overlay's, in key order: overlay_sorted) into its
 * tree (fold.c); *i becomes the index of the next column family's first. */
int btree_fold(cairn_txn *txn, cf_state *t, ov_node **nodes, size_t nnodes,
               size_t *i);

/* Cursor stack shared by cursors and tree walks. */
#define MAX_DEPTH 32
typedef struct tree_pos {
  int depth; /* entries in stack; 0 = unpositioned */
  uint64_t pg[MAX_DEPTH];
  uint32_t idx[MAX_DEPTH];
  /* Read txns: the address of leaf page leaf_pg as fetched, so steps
   * within a leaf and reading its entries skip the pager. In mapped mode
   * the address stays valid while the txn lives; in cached mode only while
   * the page stays pinned, so only a cursor keeps it (keep = 1), and
   * carries the leaf's pin from move to move. Reset by every seek. */
  uint64_t leaf_pg;
  const uint8_t *leaf;
  int keep;
} tree_pos;

/* Position at the first key >= key (found=1 if equal). CAIRN_NOTFOUND if
 * every key is smaller (pos then is past the end). */
int tree_seek(cairn_txn *txn, cf_state *t, const uint8_t *key, size_t klen,
              tree_pos *pos, int *found);
int tree_first(cairn_txn *txn, cf_state *t, tree_pos *pos);
int tree_last(cairn_txn *txn, cf_state *t, tree_pos *pos);
int tree_next(cairn_txn *txn, tree_pos *pos);
int tree_prev(cairn_txn *txn, tree_pos *pos);
int tree_entry(cairn_txn *txn, tree_pos *pos, const uint8_t **e);

/* ---- catalog ----------------------------------------------------------- */

#define CF_RECORD_SIZE 32u
int catalog_load_cf(cairn_txn *txn, const char *name, size_t namelen,
                    cf_state *out, int *found);
int catalog_flush(cairn_txn *txn);
int catalog_register(cairn_db *db, uint32_t id, const char *name,
                     size_t namelen);
const char *catalog_name_of(cairn_db *db, uint32_t id, size_t *namelen);
void catalog_decode(const uint8_t *rec, cf_state *out);

/* ---- database ---------------------------------------------------------- */

typedef struct snapshot_count {
  uint64_t txnid;
  uint64_t count;
} snapshot_count;

typedef struct cf_name {
  uint32_t id;
  uint8_t namelen;
  char name[CAIRN_MAX_CF_NAME + 1];
} cf_name;

struct cairn_db {
  pager pg;
  cairn_options opts;
  char *path;
  int rdonly;
  /* a commit failed while writing meta: writes refused (atomic: a fold in
   * the background may set it, writing the tree before it durable) */
  _Atomic int poisoned;
  cairn_mutex write_mu; /* held for the life of the write txn */
  int writer_active;
  cairn_thread_id writer;
  cairn_mutex meta_mu; /* cur, durable state, snapshots, cf names, live */
  meta cur;
  uint64_t durable_txnid;
  int durable_slot;
  uint64_t meta_seq; /* seq of the newest meta page written or read */
  snapshot_count *snaps;
  size_t nsnaps, capsnaps;
  freelist fl;    /* writer-only */
  cf_name *names; /* every id handed out by this handle -> its name */
  size_t nnames, capnames;
  uint64_t next_cf_id; /* writer-only: ids from aborted txns are burned too,
                        * so a handle never names two column families */
  cairn_txn *live;     /* open txns, so close can end them */
  metrics metrics;
  uint64_t file_pages; /* writer-only: pages the file is known to hold */
  uint32_t lazy_commits;
  uint64_t last_sync_ms;
  /* write-ahead log: commits are durable in the log; their pages wait in
   * def until a checkpoint writes them and a meta page */
  int wal_on;
  int replaying;             /* recovery is applying the log */
  uint64_t logged_durable;   /* newest commit a log sync made durable */
  uint64_t free_pages;       /* log mode: the free set at the newest commit */
  uint64_t freed_since_ckpt; /* writer: checkpointed pages freed since */
  /* Writer: a lazy checkpoint wrote its tree but not yet its meta page
   * (ckpt_meta): until then a crash falls back to the tree before it, and
   * the log keeps every record since that tree. */
  int ckpt_unsynced;
  meta ckpt_meta;
  uint64_t log_ckpt_pos; /* writer: where the log stood at the checkpoint */
  /* Mapped mode: the pages the running checkpoint wrote (writer), handed
   * to the warmer when it is done; a list cut short by a failed allocation
   * is still a good hint. */
  pgvec warm_pages;
  warmer *warm;
  wal wal;
  deferred def;
  page_pool pool;     /* writer-only: recycled dirty page buffers */
  uint8_t *spare_log; /* writer-only: the last txn's log record buffer */
  size_t spare_logcap;
  overlay *ov; /* log mode: changes since the last checkpoint (swapped
                * with cur under meta_mu) */
  /* meta_mu: read txns holding an older tree than cur's (tree_gen counts
   * the trees checkpoints published) */
  uint64_t stale_readers;
  uint64_t tree_gen;
  /* Log mode: the overlay a background checkpoint is folding (meta_mu;
   * readers consult it between ov and the tree) and that checkpoint
   * (writer-only; ckpt_bg.c). */
  overlay *ov_frozen;
  uint64_t frozen_txnid; /* writer: the newest commit ov_frozen holds */
  struct ckpt_bg *bg;
};

int db_sync_locked(cairn_db *db); /* caller holds write_mu */
/* Does the calling thread hold the write transaction? (Then anything that
 * waits for the writer would wait for itself: CAIRN_BUSY instead.) */
int db_writer_is_this_thread(cairn_db *db);
int db_checkpoint(cairn_db *db); /* takes write_mu itself */
/* A read snapshot of a checkpointed state (its meta page and persisted free
 * list describe it exactly): for backups and the integrity check. Without
 * the log (or read-only) an ordinary snapshot. */
int db_begin_checkpointed(cairn_db *db, cairn_txn **out);
uint64_t db_now_ms(void);
uint64_t db_oldest_snapshot(cairn_db *db); /* caller holds meta_mu */

/* ---- checkpoints in the background (ckpt_bg.c; caller holds write_mu) */
/* Freeze the overlay and fold it into a new tree, on a helper thread
 * where the host has one and reads through a map (else right here). */
int ckpt_bg_start(cairn_db *db);
/* Is a frozen overlay waiting for its fold to be published? */
int ckpt_bg_pending(const cairn_db *db);
/* Publish a finished fold, without waiting. */
void ckpt_bg_poll(cairn_db *db);
/* Wait for the fold and publish it; if it failed, fold the frozen overlay
 * again here. 0 when no frozen overlay is left. */
int ckpt_bg_finish(cairn_db *db);
/* Wait for the fold's thread without publishing (close, stat). */
void ckpt_bg_wait(cairn_db *db);
/* close: wait and drop the fold without publishing. */
void ckpt_bg_free(cairn_db *db);
/* A write txn that began while a fold ran is about to change pages:
 * publish the fold and move the txn onto the new tree (it has changed no
 * page yet, and the new tree holds exactly what the frozen overlay and the
 * old tree held). */
int txn_rebase(cairn_txn *txn);
/* The two halves of a checkpoint's commit (txn.c): write the new tree and
 * every deferred page (any thread, while the writer only logs), then
 * publish it (the writer). */
int ckpt_write(cairn_txn *ckpt);
/* Make the last lazy checkpoint's tree durable (its meta page) and free
 * the pages of the tree before it: a fold's first step when one is due. */
int ckpt_finish_lazy(cairn_db *db);
int ckpt_publish(cairn_txn *ckpt, int rc);
/* A checkpoint txn folding ov, which holds the commits up to txnid, into
 * cur's tree, for a caller holding write_mu; it holds no lock itself, so
 * it can outlive the caller's. */
int txn_begin_checkpoint(cairn_db *db, overlay *ov, uint64_t txnid,
                         cairn_txn **out);
/* Free a checkpoint txn that was not published (its pages go back). */
void txn_end_checkpoint(cairn_txn *ckpt);

#endif /* CAIRN_ENGINE_H */
