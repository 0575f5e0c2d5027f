/*
 * page.c — page headers, checksums and structural validation.
 *
 * page_validate() is the gate between bytes from the file and the code that
 * walks them: after it accepts a page, no slot, entry or length inside it can
 * point outside the page, so corrupt or hostile files yield CAIRN_CORRUPT
 * instead of out-of-bounds reads.
 */
#include "page.h"

#include <string.h>

#include "cairn.h"
#include "crc32c.h"
#include "error.h"

void page_init(uint8_t *p, uint32_t psize, uint16_t type, uint64_t pgno) {
  memset(p, 0, PAGE_HDR);
  st16(p + 4, type);
  st64(p + 8, pgno);
  pg_set_upper(p, psize);
}

uint64_t page_crc_span(const uint8_t *p, uint32_t psize) {
  if (pg_type(p) == PAGE_OVERFLOW)
    return PAGE_HDR + (uint64_t)pg_upper(p);
  return psize;
}

void page_seal(uint8_t *p, uint64_t txnid, uint32_t span) {
  st64(p + 16, txnid);
  st32(p, cairn_crc32c(0, p + 4, span - 4));
}

static const char *type_name(unsigned t) {
  switch (t) {
  case PAGE_META: return "meta";
  case PAGE_BRANCH: return "branch";
  case PAGE_LEAF: return "leaf";
  case PAGE_OVERFLOW: return "overflow";
  case PAGE_FREELIST: return "freelist";
  default: return "unknown";
  }
}

#define BAD(...) cairn__seterr(CAIRN_CORRUPT, "page %llu: " __VA_ARGS__)

int page_validate(const uint8_t *p, uint64_t pgno, uint32_t psize,
                  uint64_t npages, unsigned allowed_types) {
  unsigned long long pg = (unsigned long long)pgno;
  unsigned type = pg_type(p);
  if (type > 31 || !(allowed_types & TYPE_BIT(type)))
    return BAD("unexpected page type %u", pg, type);
  if (pg_no(p) != pgno)
    return BAD("page header names page %llu (misdirected or stale write)", pg,
               (unsigned long long)pg_no(p));
  uint64_t span;
  if (type == PAGE_OVERFLOW) {
    if (pg_count(p) != npages)
      return BAD("overflow run of %u pages, expected %llu", pg, pg_count(p),
                 (unsigned long long)npages);
    span = PAGE_HDR + (uint64_t)pg_upper(p);
    if (span > npages * psize)
      return BAD("overflow value length %u exceeds its run", pg, pg_upper(p));
  } else {
    span = psize;
  }
  uint32_t crc = cairn_crc32c(0, p + 4, (size_t)span - 4);
  if (crc != pg_crc(p))
    return BAD("checksum mismatch (%s page)", pg, type_name(type));

  if (type == PAGE_LEAF || type == PAGE_BRANCH) {
    uint32_t n = pg_count(p), upper = pg_upper(p);
    uint32_t ehdr = type == PAGE_LEAF ? LEAF_ENTRY_HDR : BRANCH_ENTRY_HDR;
    if ((uint64_t)PAGE_HDR + 2ull * n > upper || upper > psize)
      return BAD("slot array overlaps entries (%u keys)", pg, n);
    if (type == PAGE_BRANCH && n < 1)
      return BAD("empty branch page", pg);
    for (uint32_t i = 0; i < n; i++) {
      uint32_t off = pg_slot(p, i);
      if (off < upper || (uint64_t)off + ehdr > psize)
        return BAD("slot %u out of bounds", pg, i);
      const uint8_t *e = p + off;
      uint32_t klen, size;
      if (type == PAGE_LEAF) {
        klen = leaf_klen(e);
        if (leaf_flags(e) & ~LEAF_OVERFLOW)
          return BAD("entry %u has unknown flags", pg, i);
        if (leaf_flags(e) & LEAF_OVERFLOW) {
          if (leaf_vlen(e) > CAIRN_MAX_VALUE_SIZE)
            return BAD("entry %u value too long", pg, i);
          size = ehdr + klen + 8;
        } else {
          size = ehdr + klen + leaf_vlen(e);
          if (leaf_vlen(e) > psize)
            return BAD("entry %u inline value too long", pg, i);
        }
      } else {
        klen = branch_klen(e);
        size = ehdr + klen;
        if (branch_child(e) < 2)
          return BAD("entry %u points to page %llu", pg, i,
                     (unsigned long long)branch_child(e));
      }
      if (klen > CAIRN_MAX_KEY_SIZE)
        return BAD("entry %u key too long (%u bytes)", pg, i, klen);
      if ((uint64_t)off + size > psize)
        return BAD("entry %u runs past the page end", pg, i);
      if (type == PAGE_LEAF && (leaf_flags(e) & LEAF_OVERFLOW) &&
          leaf_ovpg(e) < 2)
        return BAD("entry %u points to overflow page %llu", pg, i,
                   (unsigned long long)leaf_ovpg(e));
    }
  } else if (type == PAGE_FREELIST) {
    if (pg_count(p) > (psize - FREELIST_HDR) / 8)
      return BAD("freelist count %u too large", pg, pg_count(p));
  }
  return CAIRN_OK;
}
