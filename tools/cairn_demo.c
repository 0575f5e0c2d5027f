/*
 * cairn_demo.c — `cairn-demo`: a first run of cairn on chain-like data.
 *
 * Creates ./cairn-demo.db (replacing an old one), writes a synthetic chain of
 * blocks — one durable write transaction per block — into three column
 * families, reads every key back and compares it with what was written,
 * scans a height range, a hash prefix and the chain tip with cursors, and
 * prints database statistics and the time each phase took. The data comes
 * from splitmix64 with a fixed seed, so every run writes the same bytes and
 * the verifier can regenerate what it expects instead of keeping it in
 * memory. Exit status 0 when everything matched, 1 otherwise.
 *
 * Layout, as a node would store it:
 *   headers         8-byte big-endian height -> 200-byte header (big-endian
 *                   keys sort in height order, so a height range is a scan)
 *   blocks_by_hash  32-byte block hash -> 8-byte big-endian height
 *   txs             32-byte tx hash -> 100-byte receipt, 20 per block
 */
#include "cairn.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEMO_PATH "cairn-demo.db"
#define DEFAULT_BLOCKS 3000u
#define MAX_BLOCKS 10000000u
#define TXS_PER_BLOCK 20u
#define HASH_SIZE 32u
#define HEADER_SIZE 200u
#define RECEIPT_SIZE 100u
#define SEED 0x636169726e2d3031ull /* "cairn-01" */

/* Tags keep the streams of different kinds of data apart. */
enum { TAG_BLOCK_HASH = 1, TAG_HEADER = 2, TAG_TX_HASH = 3, TAG_RECEIPT = 4 };

static const char *const cf_names[] = {"headers", "blocks_by_hash", "txs"};
enum { CF_HEADERS, CF_BY_HASH, CF_TXS, NUM_CFS };

/* ---- deterministic data -------------------------------------------------- */

static uint64_t splitmix64(uint64_t *state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* Fill out[0..n) with the bytes of stream (tag, n_th item). Each item gets
 * its own scrambled starting state, so items are independent and any one of
 * them can be regenerated on its own. */
static void fill(unsigned tag, uint64_t item, unsigned char *out, size_t n) {
  uint64_t st = SEED ^ ((uint64_t)tag << 56);
  st = splitmix64(&st) ^ item;
  st = splitmix64(&st);
  for (size_t i = 0; i < n; i += 8) {
    uint64_t r = splitmix64(&st);
    for (size_t k = 0; k < 8 && i + k < n; k++)
      out[i + k] = (unsigned char)(r >> (8 * k));
  }
}

static void put_be64(unsigned char *p, uint64_t v) {
  for (int i = 7; i >= 0; i--, v >>= 8)
    p[i] = (unsigned char)v;
}

static uint64_t get_be64(const unsigned char *p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++)
    v = v << 8 | p[i];
  return v;
}

static void block_hash(uint64_t height, unsigned char out[HASH_SIZE]) {
  fill(TAG_BLOCK_HASH, height, out, HASH_SIZE);
}

/* A header: height, parent hash, a 12-second timestamp, then filler that
 * stands in for the state root, tx root and the rest. */
static void block_header(uint64_t height, unsigned char out[HEADER_SIZE]) {
  fill(TAG_HEADER, height, out, HEADER_SIZE);
  put_be64(out, height);
  if (height > 0)
    block_hash(height - 1, out + 8);
  else
    memset(out + 8, 0, HASH_SIZE);
  put_be64(out + 8 + HASH_SIZE, 1700000000u + 12u * height);
}

static void tx_hash(uint64_t height, unsigned i, unsigned char out[HASH_SIZE]) {
  fill(TAG_TX_HASH, height * TXS_PER_BLOCK + i, out, HASH_SIZE);
}

/* A receipt: block height and index in the block, then filler. */
static void tx_receipt(uint64_t height, unsigned i,
                       unsigned char out[RECEIPT_SIZE]) {
  fill(TAG_RECEIPT, height * TXS_PER_BLOCK + i, out, RECEIPT_SIZE);
  put_be64(out, height);
  put_be64(out + 8, i);
}

static cairn_slice sl(const void *p, size_t n) {
  cairn_slice s = {p, n};
  return s;
}

/* ---- reporting ----------------------------------------------------------- */

static double now_seconds(void) {
  struct timespec ts;
  /* C11's timespec_get keeps the demo portable to every host cairn runs on;
   * it is wall-clock time, which is fine for phases of a second or so. */
  if (timespec_get(&ts, TIME_UTC) != TIME_UTC)
    return 0;
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Print an engine failure with its detail; returns 1 (the exit status). */
static int engine_fail(int rc, const char *what) {
  const char *detail = cairn_errmsg();
  fprintf(stderr, "cairn-demo: %s: %s%s%s%s\n", what, cairn_strerror(rc),
          detail[0] ? " (" : "", detail, detail[0] ? ")" : "");
  return 1;
}

static int mismatch(const char *what, uint64_t height) {
  fprintf(stderr, "cairn-demo: verify: %s at height %llu does not match\n",
          what, (unsigned long long)height);
  return 1;
}

static void print_hex(const unsigned char *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    printf("%02x", p[i]);
}

/* ---- phases -------------------------------------------------------------- */

/* Open each demo column family in txn (creating them if create is set). */
static int open_cfs(cairn_txn *txn, unsigned flags, cairn_cf cf[NUM_CFS]) {
  for (int i = 0; i < NUM_CFS; i++) {
    int rc = cairn_cf_open(txn, cf_names[i], flags, &cf[i]);
    if (rc != CAIRN_OK)
      return engine_fail(rc, cf_names[i]);
  }
  return 0;
}

/* Write one block (header, hash index, receipts) as one durable commit. */
static int write_block(cairn_db *db, const cairn_cf cf[NUM_CFS],
                       uint64_t height) {
  unsigned char key[HASH_SIZE], hdr[HEADER_SIZE], hkey[8], rcpt[RECEIPT_SIZE];
  cairn_txn *txn;
  int rc = cairn_begin(db, 0, &txn);
  if (rc != CAIRN_OK)
    return engine_fail(rc, "begin");
  put_be64(hkey, height);
  block_header(height, hdr);
  rc = cairn_put(txn, cf[CF_HEADERS], sl(hkey, 8), sl(hdr, HEADER_SIZE), 0);
  if (rc == CAIRN_OK) {
    block_hash(height, key);
    rc = cairn_put(txn, cf[CF_BY_HASH], sl(key, HASH_SIZE), sl(hkey, 8), 0);
  }
  for (unsigned i = 0; i < TXS_PER_BLOCK && rc == CAIRN_OK; i++) {
    tx_hash(height, i, key);
    tx_receipt(height, i, rcpt);
    rc = cairn_put(txn, cf[CF_TXS], sl(key, HASH_SIZE), sl(rcpt, RECEIPT_SIZE),
                   0);
  }
  if (rc != CAIRN_OK) {
    int e = engine_fail(rc, "put");
    cairn_abort(txn);
    return e;
  }
  rc = cairn_commit_ex(txn, CAIRN_DURABILITY_SYNC);
  return rc == CAIRN_OK ? 0 : engine_fail(rc, "commit");
}

static int phase_write(cairn_db *db, uint64_t blocks) {
  cairn_cf cf[NUM_CFS];
  cairn_txn *txn;
  int rc = cairn_begin(db, 0, &txn);
  if (rc != CAIRN_OK)
    return engine_fail(rc, "begin");
  if (open_cfs(txn, CAIRN_CF_CREATE, cf)) {
    cairn_abort(txn);
    return 1;
  }
  if ((rc = cairn_commit(txn)) != CAIRN_OK)
    return engine_fail(rc, "commit column families");
  for (uint64_t h = 0; h < blocks; h++)
    if (write_block(db, cf, h))
      return 1;
  return 0;
}

/* Compare one stored value with the expected bytes. */
static int same(cairn_txn *txn, cairn_cf cf, cairn_slice key, const void *want,
                size_t n, int *rc) {
  cairn_slice v;
  *rc = cairn_get(txn, cf, key, &v);
  return *rc == CAIRN_OK && v.size == n && memcmp(v.data, want, n) == 0;
}

static int verify_all(cairn_txn *txn, const cairn_cf cf[NUM_CFS],
                      uint64_t blocks) {
  unsigned char key[HASH_SIZE], hdr[HEADER_SIZE], hkey[8], rcpt[RECEIPT_SIZE];
  int rc;
  for (uint64_t h = 0; h < blocks; h++) {
    put_be64(hkey, h);
    block_header(h, hdr);
    if (!same(txn, cf[CF_HEADERS], sl(hkey, 8), hdr, HEADER_SIZE, &rc))
      return rc != CAIRN_OK && rc != CAIRN_NOTFOUND
                 ? engine_fail(rc, "get header")
                 : mismatch("header", h);
    block_hash(h, key);
    if (!same(txn, cf[CF_BY_HASH], sl(key, HASH_SIZE), hkey, 8, &rc))
      return rc != CAIRN_OK && rc != CAIRN_NOTFOUND
                 ? engine_fail(rc, "get block hash")
                 : mismatch("block hash index", h);
    for (unsigned i = 0; i < TXS_PER_BLOCK; i++) {
      tx_hash(h, i, key);
      tx_receipt(h, i, rcpt);
      if (!same(txn, cf[CF_TXS], sl(key, HASH_SIZE), rcpt, RECEIPT_SIZE, &rc))
        return rc != CAIRN_OK && rc != CAIRN_NOTFOUND
                   ? engine_fail(rc, "get receipt")
                   : mismatch("tx receipt", h);
    }
  }
  /* Every key read back is necessary but not sufficient: the trees must
   * also hold nothing else. */
  const uint64_t want[NUM_CFS] = {blocks, blocks, blocks * TXS_PER_BLOCK};
  for (int i = 0; i < NUM_CFS; i++) {
    cairn_cf_stat st;
    if ((rc = cairn_cf_stat_get(txn, cf[i], &st)) != CAIRN_OK)
      return engine_fail(rc, "cf stat");
    if (st.entries != want[i]) {
      fprintf(stderr, "cairn-demo: verify: %s holds %llu entries, not %llu\n",
              cf_names[i], (unsigned long long)st.entries,
              (unsigned long long)want[i]);
      return 1;
    }
  }
  return 0;
}

static int phase_verify(cairn_db *db, uint64_t blocks) {
  cairn_cf cf[NUM_CFS];
  cairn_txn *txn;
  int rc = cairn_begin(db, CAIRN_TXN_RDONLY, &txn);
  if (rc != CAIRN_OK)
    return engine_fail(rc, "begin read");
  int e = open_cfs(txn, 0, cf);
  if (!e)
    e = verify_all(txn, cf, blocks);
  cairn_abort(txn);
  return e;
}

/* Headers [lo, hi) by a bounded cursor: exactly those heights, in order. */
static int scan_heights(cairn_txn *txn, cairn_cf headers, uint64_t lo,
                        uint64_t hi) {
  unsigned char from[8], to[8], hdr[HEADER_SIZE];
  cairn_cursor *c;
  put_be64(from, lo);
  put_be64(to, hi);
  int rc = cairn_cursor_open(txn, headers, &c);
  if (rc != CAIRN_OK)
    return engine_fail(rc, "cursor open");
  uint64_t h = lo;
  rc = cairn_cursor_bounds(c, sl(from, 8), sl(to, 8));
  if (rc == CAIRN_OK)
    rc = cairn_cursor_first(c);
  for (; rc == CAIRN_OK; rc = cairn_cursor_next(c), h++) {
    cairn_slice k, v;
    if ((rc = cairn_cursor_get(c, &k, &v)) != CAIRN_OK)
      break;
    block_header(h, hdr);
    if (h >= hi || k.size != 8 || get_be64(k.data) != h ||
        v.size != HEADER_SIZE || memcmp(v.data, hdr, HEADER_SIZE) != 0) {
      cairn_cursor_close(c);
      return mismatch("height range scan", h);
    }
  }
  cairn_cursor_close(c);
  if (rc != CAIRN_NOTFOUND)
    return engine_fail(rc, "height range scan");
  if (h != hi)
    return mismatch("height range scan (too few keys)", h);
  printf("  headers %llu..%llu: %llu headers in height order\n",
         (unsigned long long)lo, (unsigned long long)(hi - 1),
         (unsigned long long)(hi - lo));
  return 0;
}

/* Transactions whose hash starts with one byte, by a prefix cursor: as many
 * as were written with that first byte, ascending, each with its receipt. */
static int scan_prefix(cairn_txn *txn, cairn_cf txs, uint64_t blocks,
                       unsigned char prefix) {
  unsigned char key[HASH_SIZE];
  uint64_t want = 0, got = 0;
  for (uint64_t h = 0; h < blocks; h++)
    for (unsigned i = 0; i < TXS_PER_BLOCK; i++) {
      tx_hash(h, i, key);
      want += key[0] == prefix;
    }
  cairn_cursor *c;
  int rc = cairn_cursor_open(txn, txs, &c);
  if (rc != CAIRN_OK)
    return engine_fail(rc, "cursor open");
  unsigned char prev[HASH_SIZE] = {0};
  rc = cairn_cursor_prefix(c, sl(&prefix, 1));
  if (rc == CAIRN_OK)
    rc = cairn_cursor_first(c);
  for (; rc == CAIRN_OK; rc = cairn_cursor_next(c), got++) {
    cairn_slice k, v;
    if ((rc = cairn_cursor_get(c, &k, &v)) != CAIRN_OK)
      break;
    const unsigned char *kp = k.data, *vp = v.data;
    unsigned char rcpt[RECEIPT_SIZE];
    int ok = k.size == HASH_SIZE && kp[0] == prefix &&
             (got == 0 || memcmp(prev, kp, HASH_SIZE) < 0) &&
             v.size == RECEIPT_SIZE;
    if (ok) {
      uint64_t h = get_be64(vp), i = get_be64(vp + 8);
      ok = h < blocks && i < TXS_PER_BLOCK;
      if (ok) {
        tx_hash(h, (unsigned)i, key);
        tx_receipt(h, (unsigned)i, rcpt);
        ok = memcmp(key, kp, HASH_SIZE) == 0 &&
             memcmp(rcpt, vp, RECEIPT_SIZE) == 0;
      }
    }
    if (!ok) {
      cairn_cursor_close(c);
      fprintf(stderr, "cairn-demo: verify: prefix scan key %llu is wrong\n",
              (unsigned long long)got);
      return 1;
    }
    memcpy(prev, kp, HASH_SIZE);
  }
  cairn_cursor_close(c);
  if (rc != CAIRN_NOTFOUND)
    return engine_fail(rc, "prefix scan");
  if (got != want) {
    fprintf(stderr,
            "cairn-demo: verify: prefix 0x%02x gave %llu txs, not "
            "%llu\n",
            prefix, (unsigned long long)got, (unsigned long long)want);
    return 1;
  }
  printf("  txs with hash prefix 0x%02x: %llu of %llu, in hash order\n", prefix,
         (unsigned long long)got, (unsigned long long)(blocks * TXS_PER_BLOCK));
  return 0;
}

/* The chain tip from the last header, then a walk back along parent hashes
 * through the blocks_by_hash index, as a node does when it follows a chain. */
static int scan_tip(cairn_txn *txn, const cairn_cf cf[NUM_CFS],
                    uint64_t blocks) {
  cairn_cursor *c;
  cairn_slice k, v;
  int rc = cairn_cursor_open(txn, cf[CF_HEADERS], &c);
  if (rc != CAIRN_OK)
    return engine_fail(rc, "cursor open");
  rc = cairn_cursor_last(c);
  if (rc == CAIRN_OK)
    rc = cairn_cursor_get(c, &k, &v);
  if (rc != CAIRN_OK) {
    cairn_cursor_close(c);
    return engine_fail(rc, "tip");
  }
  uint64_t tip = k.size == 8 ? get_be64(k.data) : UINT64_MAX;
  cairn_cursor_close(c);
  if (tip != blocks - 1)
    return mismatch("chain tip", tip);
  unsigned char hkey[8], hdr[HEADER_SIZE], hash[HASH_SIZE];
  uint64_t h = tip, steps = 0;
  put_be64(hkey, h);
  while (steps < 10 && h > 0) {
    /* parent hash from the header -> height via the hash index */
    if ((rc = cairn_get(txn, cf[CF_HEADERS], sl(hkey, 8), &v)) != CAIRN_OK)
      return engine_fail(rc, "get header");
    if (v.size != HEADER_SIZE)
      return mismatch("header size", h);
    memcpy(hdr, v.data, HEADER_SIZE);
    rc = cairn_get(txn, cf[CF_BY_HASH], sl(hdr + 8, HASH_SIZE), &v);
    if (rc != CAIRN_OK)
      return engine_fail(rc, "get parent by hash");
    if (v.size != 8 || get_be64(v.data) != h - 1)
      return mismatch("parent link", h);
    memcpy(hkey, v.data, 8);
    h--, steps++;
  }
  block_hash(tip, hash);
  printf("  tip: height %llu, hash ", (unsigned long long)tip);
  print_hex(hash, HASH_SIZE);
  printf("; followed %llu parent links\n", (unsigned long long)steps);
  return 0;
}

static int phase_scan(cairn_db *db, uint64_t blocks) {
  cairn_cf cf[NUM_CFS];
  cairn_txn *txn;
  unsigned char first[HASH_SIZE];
  int rc = cairn_begin(db, CAIRN_TXN_RDONLY, &txn);
  if (rc != CAIRN_OK)
    return engine_fail(rc, "begin read");
  uint64_t lo = blocks / 3, hi = lo + 100 < blocks ? lo + 100 : blocks;
  tx_hash(blocks / 2, 0, first);
  int e = open_cfs(txn, 0, cf);
  if (!e)
    e = scan_heights(txn, cf[CF_HEADERS], lo, hi);
  if (!e)
    e = scan_prefix(txn, cf[CF_TXS], blocks, first[0]);
  if (!e)
    e = scan_tip(txn, cf, blocks);
  cairn_abort(txn);
  return e;
}

static int print_stats(cairn_db *db) {
  cairn_db_stat st;
  cairn_cf cf[NUM_CFS];
  cairn_txn *txn;
  /* Commits are durable in the write-ahead log; a checkpoint puts their
   * pages into the database file, so its size below is the data's. */
  int rc = cairn_checkpoint(db);
  if (rc != CAIRN_OK)
    return engine_fail(rc, "checkpoint");
  rc = cairn_db_stat_get(db, &st);
  if (rc != CAIRN_OK)
    return engine_fail(rc, "stat");
  printf("stats\n  file %llu bytes: %llu pages of %u bytes, %llu in use, "
         "%llu free\n",
         (unsigned long long)st.file_size, (unsigned long long)st.page_count,
         (unsigned)st.page_size, (unsigned long long)st.pages_in_use,
         (unsigned long long)st.pages_free);
  printf("  last commit %llu (durable %llu), %u column families, "
         "platform %s%s\n",
         (unsigned long long)st.last_txn_id,
         (unsigned long long)st.durable_txn_id, (unsigned)st.column_families,
         st.platform ? st.platform : "?", st.mapped ? ", memory-mapped" : "");
  if ((rc = cairn_begin(db, CAIRN_TXN_RDONLY, &txn)) != CAIRN_OK)
    return engine_fail(rc, "begin read");
  int e = open_cfs(txn, 0, cf);
  for (int i = 0; i < NUM_CFS && !e; i++) {
    cairn_cf_stat cs;
    if ((rc = cairn_cf_stat_get(txn, cf[i], &cs)) != CAIRN_OK) {
      e = engine_fail(rc, "cf stat");
      break;
    }
    printf("  %-15s %7llu entries, depth %u, %llu branch + %llu leaf + "
           "%llu overflow pages\n",
           cf_names[i], (unsigned long long)cs.entries, (unsigned)cs.depth,
           (unsigned long long)cs.branch_pages,
           (unsigned long long)cs.leaf_pages,
           (unsigned long long)cs.overflow_pages);
  }
  cairn_abort(txn);
  return e;
}

/* ---- main ---------------------------------------------------------------- */

/* One summary line per phase, columns aligned. */
static void phase_line(const char *phase, const char *what, double secs,
                       double per_sec, const char *unit) {
  printf("%-7s %-44s %8.3f s", phase, what, secs);
  if (unit)
    printf("  %9.0f %s/s", secs > 0 ? per_sec / secs : 0.0, unit);
  printf("\n");
  fflush(stdout);
}

static int run(cairn_db *db, uint64_t blocks) {
  uint64_t keys = blocks * (2 + TXS_PER_BLOCK);
  char what[128];
  double t0 = now_seconds();
  if (phase_write(db, blocks))
    return 1;
  double t1 = now_seconds();
  snprintf(what, sizeof what, "%llu blocks, %llu keys, %llu commits",
           (unsigned long long)blocks, (unsigned long long)keys,
           (unsigned long long)blocks);
  phase_line("write", what, t1 - t0, (double)blocks, "commits");
  if (phase_verify(db, blocks))
    return 1;
  double t2 = now_seconds();
  snprintf(what, sizeof what, "%llu gets, every value matches",
           (unsigned long long)keys);
  phase_line("verify", what, t2 - t1, (double)keys, "gets");
  if (phase_scan(db, blocks))
    return 1;
  double t3 = now_seconds();
  phase_line("scan", "range, prefix and tip cursors all match", t3 - t2, 0,
             NULL);
  return print_stats(db);
}

int main(int argc, char **argv) {
  uint64_t blocks = DEFAULT_BLOCKS;
  if (argc > 2 || (argc == 2 && (strcmp(argv[1], "--help") == 0 ||
                                 strcmp(argv[1], "-h") == 0))) {
    fprintf(argc > 2 ? stderr : stdout,
            "usage: cairn-demo [BLOCKS]\n"
            "Writes BLOCKS (default %u) chain-like blocks to ./%s (replacing "
            "it),\nverifies them, scans them and prints statistics.\n",
            DEFAULT_BLOCKS, DEMO_PATH);
    return argc > 2 ? 2 : 0;
  }
  if (argc == 2) {
    char *end;
    unsigned long long n = strtoull(argv[1], &end, 10);
    if (argv[1][0] < '1' || argv[1][0] > '9' || *end || n > MAX_BLOCKS) {
      fprintf(stderr, "cairn-demo: BLOCKS must be 1..%u, not '%s'\n",
              MAX_BLOCKS, argv[1]);
      return 2;
    }
    blocks = n;
  }

  /* Start from nothing so every run does the same work. */
  remove(DEMO_PATH);
  FILE *old = fopen(DEMO_PATH, "rb");
  if (old) {
    fclose(old);
    fprintf(stderr, "cairn-demo: cannot remove the old ./%s\n", DEMO_PATH);
    return 1;
  }

  cairn_options o;
  cairn_options_init(&o);
  o.flags = CAIRN_OPEN_CREATE;
  o.durability = CAIRN_DURABILITY_SYNC;
  cairn_db *db;
  int rc = cairn_open(DEMO_PATH, &o, &db);
  if (rc != CAIRN_OK)
    return engine_fail(rc, "open ./" DEMO_PATH);
  printf("cairn-demo %s: %llu blocks of %u txs into ./%s\n"
         "  column families: headers (height -> header), blocks_by_hash "
         "(hash -> height),\n  txs (tx hash -> receipt); one durable write "
         "transaction per block\n",
         CAIRN_VERSION_STRING, (unsigned long long)blocks, TXS_PER_BLOCK,
         DEMO_PATH);
  fflush(stdout);
  int e = run(db, blocks);
  rc = cairn_close(db);
  if (rc != CAIRN_OK && !e)
    e = engine_fail(rc, "close");
  if (!e)
    printf("ok. Explore it: cairn stat %s; cairn scan %s --cf headers "
           "--limit 3\n",
           DEMO_PATH, DEMO_PATH);
  return e;
}
