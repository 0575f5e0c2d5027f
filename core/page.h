/*
 * page.h — the on-disk layout of every page kind, and accessors for it.
 *
 * Every page starts with the same 32-byte header (little-endian):
 *    0 u32 crc      CRC-32C of the rest of the page (see page_crc_span)
 *    4 u16 type     PAGE_META / BRANCH / LEAF / OVERFLOW / FREELIST
 *    6 u16 flags    0
 *    8 u64 pgno     the page's own number: catches misdirected writes
 *   16 u64 txnid    the commit that wrote it
 *   24 u32 count    keys (branch, leaf), pages (overflow), ids (freelist)
 *   28 u32 upper    start of the entry area (branch, leaf); value length
 *                   (overflow)
 *
 * Branch and leaf pages are slotted: after the header an array of u16
 * offsets, one per entry in key order; entries are packed from the end of
 * the page down to `upper`.
 *   leaf entry:   u16 klen, u8 flags, u8 0, u32 vlen, key, then the value
 *                 inline or (LEAF_OVERFLOW) the u64 first page of its run
 *   branch entry: u64 child, u16 klen, key   (entry 0's key is empty: -inf)
 * An overflow run is `count` contiguous pages with one header; its crc
 * covers header and value. A freelist page holds u64 next, then count u64s.
 *
 * Invariant kept by page_validate(): once a page passed it, every accessor
 * below stays inside the page, whatever bytes it holds.
 */
#ifndef CAIRN_PAGE_H
#define CAIRN_PAGE_H

#include <stdint.h>

#include "endian.h"

#define PAGE_HDR 32u
#define PAGE_META 1u
#define PAGE_BRANCH 2u
#define PAGE_LEAF 3u
#define PAGE_OVERFLOW 4u
#define PAGE_FREELIST 5u

#define LEAF_OVERFLOW 0x1u
#define LEAF_ENTRY_HDR 8u
#define BRANCH_ENTRY_HDR 10u
#define FREELIST_HDR (PAGE_HDR + 8u)

static inline uint32_t pg_crc(const uint8_t *p) { return ld32(p); }
static inline uint16_t pg_type(const uint8_t *p) { return ld16(p + 4); }
static inline uint64_t pg_no(const uint8_t *p) { return ld64(p + 8); }
static inline uint64_t pg_txnid(const uint8_t *p) { return ld64(p + 16); }
static inline uint32_t pg_count(const uint8_t *p) { return ld32(p + 24); }
static inline uint32_t pg_upper(const uint8_t *p) { return ld32(p + 28); }
static inline void pg_set_txnid(uint8_t *p, uint64_t t) { st64(p + 16, t); }
static inline void pg_set_count(uint8_t *p, uint32_t n) { st32(p + 24, n); }
static inline void pg_set_upper(uint8_t *p, uint32_t u) { st32(p + 28, u); }

static inline uint32_t pg_slot(const uint8_t *p, uint32_t i) {
  return ld16(p + PAGE_HDR + 2 * i);
}
static inline void pg_set_slot(uint8_t *p, uint32_t i, uint32_t off) {
  st16(p + PAGE_HDR + 2 * i, (uint16_t)off);
}

/* leaf entries */
static inline const uint8_t *leaf_entry(const uint8_t *p, uint32_t i) {
  return p + pg_slot(p, i);
}
static inline uint32_t leaf_klen(const uint8_t *e) { return ld16(e); }
static inline uint32_t leaf_flags(const uint8_t *e) { return e[2]; }
static inline uint32_t leaf_vlen(const uint8_t *e) { return ld32(e + 4); }
static inline const uint8_t *leaf_key(const uint8_t *e) {
  return e + LEAF_ENTRY_HDR;
}
static inline const uint8_t *leaf_val(const uint8_t *e) {
  return e + LEAF_ENTRY_HDR + leaf_klen(e);
}
static inline uint64_t leaf_ovpg(const uint8_t *e) { return ld64(leaf_val(e)); }
static inline uint32_t leaf_entry_size(const uint8_t *e) {
  return LEAF_ENTRY_HDR + leaf_klen(e) +
         ((leaf_flags(e) & LEAF_OVERFLOW) ? 8u : leaf_vlen(e));
}

/* branch entries */
static inline const uint8_t *branch_entry(const uint8_t *p, uint32_t i) {
  return p + pg_slot(p, i);
}
static inline uint64_t branch_child(const uint8_t *e) { return ld64(e); }
static inline uint32_t branch_klen(const uint8_t *e) { return ld16(e + 8); }
static inline const uint8_t *branch_key(const uint8_t *e) {
  return e + BRANCH_ENTRY_HDR;
}
static inline uint32_t branch_entry_size(const uint8_t *e) {
  return BRANCH_ENTRY_HDR + branch_klen(e);
}

static inline uint32_t pg_entry_size(const uint8_t *p, const uint8_t *e) {
  return pg_type(p) == PAGE_LEAF ? leaf_entry_size(e) : branch_entry_size(e);
}

/* Free bytes between the slot array and the entry area. */
static inline uint32_t pg_free_space(const uint8_t *p) {
  return pg_upper(p) - (PAGE_HDR + 2 * pg_count(p));
}

/* Pages an overflow value of vlen bytes occupies. */
static inline uint64_t overflow_pages(uint64_t vlen, uint32_t psize) {
  return (PAGE_HDR + vlen + psize - 1) / psize;
}

/* Write the header fields of a fresh page. */
void page_init(uint8_t *p, uint32_t psize, uint16_t type, uint64_t pgno);
/* Stamp txnid and crc before a page goes to disk. span = bytes covered. */
void page_seal(uint8_t *p, uint64_t txnid, uint32_t span);
/* Bytes the crc of this page covers (whole page, or header+value for an
 * overflow run). */
uint64_t page_crc_span(const uint8_t *p, uint32_t psize);

/* Verify crc, self number, type and (branch/leaf/freelist) internal bounds.
 * npages is the run length the caller mapped (1 unless overflow). Returns
 * CAIRN_OK or CAIRN_CORRUPT with a message naming the page. */
int page_validate(const uint8_t *p, uint64_t pgno, uint32_t psize,
                  uint64_t npages, unsigned allowed_types);
#define TYPE_BIT(t) (1u << (t))

#endif /* CAIRN_PAGE_H */
