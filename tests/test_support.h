/*
 * test_support.h — helpers shared by the engine tests (test_api, test_model,
 * test_crash, test_concurrency, test_corrupt): a seeded PRNG, the scale knob
 * CAIRN_TEST_SCALE, deterministic value bytes generated from a seed (so a
 * reference model stores 12 bytes per value, not the value), a trivially
 * correct sorted reference map per column family, an order-independent
 * content hash that the model and a database snapshot compute identically,
 * and a few database helpers written on the public API only.
 */
#ifndef CAIRN_TEST_SUPPORT_H
#define CAIRN_TEST_SUPPORT_H

#include <stddef.h>
#include <stdint.h>

#include "cairn.h"

/* ---- failure context ---------------------------------------------------- */

/* What the program is doing (seed, op index, ...), printed under every failed
 * T* check so a failure can be replayed. The T* macros wrap test_util.h's
 * CHECK macros (include test_util.h first). */
extern char ts_ctx[512];
void ts_set_ctx(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;
/* Returns ok; when !ok prints the context. */
int ts_ctx_note(int ok);
#define TCHECK(c) ts_ctx_note(CHECK(c))
#define TCHECK_RC(e, w) ts_ctx_note(CHECK_RC(e, w))
#define TCHECK_OK(e) ts_ctx_note(CHECK_OK(e))

/* ---- PRNG and scale ----------------------------------------------------- */

typedef struct ts_rng {
  uint64_t s;
} ts_rng;

uint64_t ts_splitmix64(uint64_t *state);
void ts_rng_seed(ts_rng *r, uint64_t seed);
uint64_t ts_next(ts_rng *r);
/* Uniform in [0, n); n == 0 gives 0. */
uint64_t ts_below(ts_rng *r, uint64_t n);
/* 1 with probability num/den. */
int ts_chance(ts_rng *r, unsigned num, unsigned den);

/* CAIRN_TEST_SCALE (float; default 1, or 0.3 in ASan/MSan builds). */
double ts_scale(void);
/* n scaled, at least lo. */
long ts_scaled(long n, long lo);

/* Milliseconds from a monotonic clock. */
double ts_now_ms(void);

/* ---- generated values --------------------------------------------------- */

/* Fill buf with the n bytes of the value named by vseed. */
void ts_fill(void *buf, size_t n, uint64_t vseed);
/* 1 if p[0..n) are exactly the value (vseed, vlen). */
int ts_value_eq(const void *p, size_t n, uint64_t vseed, size_t vlen);
/* A malloc'd copy of the value (never NULL; 1 byte allocated for n == 0). */
void *ts_value_new(size_t n, uint64_t vseed);

/* ---- hashing ------------------------------------------------------------ */

uint64_t ts_hash_bytes(const void *p, size_t n, uint64_t h);
/* Hash of one (column family, key, value) entry. */
uint64_t ts_entry_hash(const char *cf, const void *k, size_t kn, const void *v,
                       size_t vn);

/* ---- reference model ---------------------------------------------------- */

typedef struct ts_ent {
  uint8_t *key;
  uint32_t klen;
  uint32_t vlen;
  uint64_t vseed;
} ts_ent;

/* A sorted map (memcmp order, shorter prefix first). */
typedef struct ts_map {
  ts_ent *e;
  size_t n, cap;
} ts_map;

int ts_keycmp(const void *a, size_t an, const void *b, size_t bn);
/* Index of the first entry with key >= k; *found set if equal. */
size_t ts_map_lower(const ts_map *m, const void *k, size_t kn, int *found);
const ts_ent *ts_map_get(const ts_map *m, const void *k, size_t kn);
void ts_map_put(ts_map *m, const void *k, size_t kn, uint64_t vseed,
                size_t vlen);
/* 1 if the key was present. */
int ts_map_del(ts_map *m, const void *k, size_t kn);
void ts_map_clear(ts_map *m);
void ts_map_copy(ts_map *dst, const ts_map *src); /* dst uninitialised */
void ts_map_free(ts_map *m);

#define TS_MAX_CF 8

/* The content of a whole database: named column families (index 0 is
 * "default", always present) and their maps. */
typedef struct ts_state {
  int ncf;
  char name[TS_MAX_CF][32];
  ts_map map[TS_MAX_CF];
} ts_state;

void ts_state_init(ts_state *s); /* just the empty default cf */
void ts_state_free(ts_state *s);
void ts_state_copy(ts_state *dst, const ts_state *src); /* dst uninitialised */
/* Index of a cf by name or -1. */
int ts_state_find(const ts_state *s, const char *name);
/* Add an empty cf (must not exist); returns its index. */
int ts_state_add(ts_state *s, const char *name);
void ts_state_drop(ts_state *s, int idx);
/* Order-independent content hash: sum over entries of ts_entry_hash. */
uint64_t ts_state_hash(const ts_state *s);
/* Total number of entries. */
size_t ts_state_entries(const ts_state *s);

/* ---- database helpers (public API only) --------------------------------- */

cairn_slice ts_sl(const void *p, size_t n);
cairn_slice ts_str(const char *s);

/* Content hash of everything txn sees (cf_list + a forward cursor walk per
 * cf), the same function as ts_state_hash. Also checks that keys ascend
 * strictly. Returns the first engine error, or CAIRN_CORRUPT-like -1000 if
 * the keys are out of order. *entries gets the number of entries. */
int ts_db_hash(cairn_txn *txn, uint64_t *out, uint64_t *entries);

/* Compare everything txn sees with the state: the list of cfs and, for
 * each, a forward walk entry by entry. Returns 0 if equal, an engine error
 * code if the engine failed, or 1 on a mismatch (described in why). */
int ts_db_compare(cairn_txn *txn, const ts_state *s, char *why, size_t whylen);

/* Open a database with the usual test options on a platform. */
void ts_options(cairn_options *o, const char *platform, uint32_t page_size);

/* Raw file access through a registered platform (by name), for building and
 * damaging files byte by byte. ts_file_read returns a malloc'd buffer. */
int ts_file_write(const char *platform, const char *path, const void *data,
                  size_t n);
int ts_file_read(const char *platform, const char *path, uint8_t **data,
                 size_t *n);
int ts_file_remove(const char *platform, const char *path);

/* ---- the documented file format (core/FORMAT.md), for forging damage ---- */

/* CRC-32C (Castagnoli), a plain independent implementation. */
uint32_t ts_crc32c(const void *p, size_t n);
/* Recompute the checksum of the page at buf (psize bytes available) the way
 * FORMAT.md defines it: meta pages (type 1) over bytes 4..255, overflow
 * runs (type 4) over header + value (clipped to avail bytes), all others
 * over the whole page. Lets a test plant damage that passes the checksum,
 * so the engine's structural validation is what must catch it. */
void ts_reseal_page(uint8_t *buf, size_t avail, uint32_t psize);
/* Page size of a database image from its meta page 0 (0 if unreadable). */
uint32_t ts_image_page_size(const uint8_t *img, size_t n);

/* Directory helpers for the unix platform (native builds only). */
char *ts_mkdtemp(void); /* malloc'd path of a new empty directory */
void ts_rmtree(const char *dir);

#endif /* CAIRN_TEST_SUPPORT_H */
