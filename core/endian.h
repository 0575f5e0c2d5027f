/*
 * endian.h — little-endian loads and stores of the on-disk format.
 *
 * The file format is little-endian on every host; these helpers are the only
 * way format code touches multi-byte fields, so a big-endian host reads the
 * same bytes. On little-endian hosts they compile to plain moves.
 */
#ifndef CAIRN_ENDIAN_H
#define CAIRN_ENDIAN_H

#include <stdint.h>
#include <string.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define CAIRN_BIG_ENDIAN 1
#endif

static inline uint16_t ld16(const void *p) {
  uint16_t v;
  memcpy(&v, p, 2);
#ifdef CAIRN_BIG_ENDIAN
  v = __builtin_bswap16(v);
#endif
  return v;
}
static inline uint32_t ld32(const void *p) {
  uint32_t v;
  memcpy(&v, p, 4);
#ifdef CAIRN_BIG_ENDIAN
  v = __builtin_bswap32(v);
#endif
  return v;
}
static inline uint64_t ld64(const void *p) {
  uint64_t v;
  memcpy(&v, p, 8);
#ifdef CAIRN_BIG_ENDIAN
  v = __builtin_bswap64(v);
#endif
  return v;
}
static inline void st16(void *p, uint16_t v) {
#ifdef CAIRN_BIG_ENDIAN
  v = __builtin_bswap16(v);
#endif
  memcpy(p, &v, 2);
}
static inline void st32(void *p, uint32_t v) {
#ifdef CAIRN_BIG_ENDIAN
  v = __builtin_bswap32(v);
#endif
  memcpy(p, &v, 4);
}
static inline void st64(void *p, uint64_t v) {
#ifdef CAIRN_BIG_ENDIAN
  v = __builtin_bswap64(v);
#endif
  memcpy(p, &v, 8);
}

#endif /* CAIRN_ENDIAN_H */
