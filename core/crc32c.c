/*
 * crc32c.c — CRC-32C with a slicing-by-8 software table and, on x86-64, the
 * SSE4.2 crc32 instruction chosen at run time. Both paths must agree bit for
 * bit: a file checksummed on one host is verified on another.
 */
#include "crc32c.h"

#include <string.h>

#define POLY 0x82f63b78u

static uint32_t table[8][256];
static int table_ready;

static void init_table(void) {
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = i;
    for (int k = 0; k < 8; k++)
      c = c & 1 ? (c >> 1) ^ POLY : c >> 1;
    table[0][i] = c;
  }
  for (uint32_t i = 0; i < 256; i++)
    for (int t = 1; t < 8; t++)
      table[t][i] = (table[t - 1][i] >> 8) ^ table[0][table[t - 1][i] & 0xff];
  table_ready = 1;
}

static uint32_t crc_sw(uint32_t crc, const uint8_t *p, size_t n) {
  if (!table_ready)
    init_table(); /* idempotent; a race writes identical values */
  while (n && ((uintptr_t)p & 7)) {
    crc = table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
    n--;
  }
  while (n >= 8) {
    uint32_t lo, hi;
    memcpy(&lo, p, 4);
    memcpy(&hi, p + 4, 4);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    lo = __builtin_bswap32(lo);
    hi = __builtin_bswap32(hi);
#endif
    lo ^= crc;
    crc = table[7][lo & 0xff] ^ table[6][(lo >> 8) & 0xff] ^
          table[5][(lo >> 16) & 0xff] ^ table[4][lo >> 24] ^
          table[3][hi & 0xff] ^ table[2][(hi >> 8) & 0xff] ^
          table[1][(hi >> 16) & 0xff] ^ table[0][hi >> 24];
    p += 8;
    n -= 8;
  }
  while (n--)
    crc = table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
  return crc;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define HAVE_HW_CRC 1

/* The crc32 instruction takes 3 cycles but can start one every cycle, so a
 * single stream runs at a third of its speed (perf: 7% of a checkpoint-heavy
 * workload). Pages are summed as three lanes at once and joined: the CRC
 * register is linear, so the register after lanes A then B equals A's
 * register moved past LANE zero bytes, xor B's register from zero. */
#define LANE 1360u /* three lanes cover a 4 KiB page */

static uint32_t lane_shift[4][256]; /* A's register, a byte at a time */
static int lane_ready;

static void init_lane_shift(void) {
  uint32_t basis[32]; /* where each register bit ends up after LANE zeros */
  for (int k = 0; k < 32; k++) {
    uint32_t c = 1u << k;
    for (uint32_t bit = 0; bit < 8 * LANE; bit++)
      c = c & 1 ? (c >> 1) ^ POLY : c >> 1;
    basis[k] = c;
  }
  for (int b = 0; b < 4; b++)
    for (uint32_t v = 0; v < 256; v++) {
      uint32_t x = 0;
      for (int k = 0; k < 8; k++)
        if (v >> k & 1)
          x ^= basis[8 * b + k];
      lane_shift[b][v] = x;
    }
  __atomic_store_n(&lane_ready, 1, __ATOMIC_RELEASE);
}

static uint32_t shift_lane(uint32_t c) {
  return lane_shift[0][c & 0xff] ^ lane_shift[1][(c >> 8) & 0xff] ^
         lane_shift[2][(c >> 16) & 0xff] ^ lane_shift[3][c >> 24];
}

__attribute__((target("sse4.2"))) static uint32_t
crc_hw(uint32_t crc, const uint8_t *p, size_t n) {
  uint64_t c = crc;
  while (n && ((uintptr_t)p & 7)) {
    c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
    n--;
  }
  if (n >= 3 * LANE && !__atomic_load_n(&lane_ready, __ATOMIC_ACQUIRE))
    init_lane_shift(); /* idempotent; a race writes identical values */
  while (n >= 3 * LANE) {
    uint64_t c1 = 0, c2 = 0;
    for (size_t i = 0; i < LANE; i += 8) {
      uint64_t a, b, d;
      memcpy(&a, p + i, 8);
      memcpy(&b, p + LANE + i, 8);
      memcpy(&d, p + 2 * LANE + i, 8);
      c = __builtin_ia32_crc32di(c, a);
      c1 = __builtin_ia32_crc32di(c1, b);
      c2 = __builtin_ia32_crc32di(c2, d);
    }
    c = shift_lane((uint32_t)c) ^ (uint32_t)c1;
    c = shift_lane((uint32_t)c) ^ (uint32_t)c2;
    p += 3 * LANE;
    n -= 3 * LANE;
  }
  while (n >= 8) {
    uint64_t v;
    memcpy(&v, p, 8);
    c = __builtin_ia32_crc32di(c, v);
    p += 8;
    n -= 8;
  }
  while (n--)
    c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
  return (uint32_t)c;
}
#endif

uint32_t cairn_crc32c(uint32_t crc, const void *buf, size_t n) {
  crc = ~crc;
#ifdef HAVE_HW_CRC
  static int hw = -1;
  if (hw < 0)
    hw = __builtin_cpu_supports("sse4.2") ? 1 : 0;
  if (hw)
    return ~crc_hw(crc, buf, n);
#endif
  return ~crc_sw(crc, buf, n);
}
