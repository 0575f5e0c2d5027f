/*
 * test_crc32c.c — the engine's CRC-32C (core/crc32c.c) against the bitwise
 * definition in test_support (ts_crc32c): every length up to a few pages,
 * every start alignment, page-sized spans, and chained calls. The engine
 * sums long buffers as three interleaved lanes joined by a shift table on
 * x86-64 and slices by 8 elsewhere; a file checksummed on one host must
 * verify on every other, so both must equal the definition bit for bit.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "crc32c.h"
#include "test_util.h"

#include "test_support.h"

static uint64_t rng = 0x243f6a8885a308d3ull;
static uint8_t next_byte(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return (uint8_t)(rng >> 24);
}

int main(void) {
  enum { MAX = 3 * 65536 + 64 };
  uint8_t *buf = malloc(MAX);
  if (!CHECK(buf != NULL))
    return test_summary();
  for (size_t i = 0; i < MAX; i++)
    buf[i] = next_byte();
  /* the known answer of the standard check string */
  CHECK(cairn_crc32c(0, "123456789", 9) == 0xe3069283u);
  /* every length around the three-lane block (3 × 1360), at every start
   * alignment */
  int bad = 0;
  for (size_t n = 0; n <= 3 * 4096 + 17 && bad < 5; n += n < 4200 ? 1 : 7)
    for (size_t off = 0; off < 8; off++)
      if (cairn_crc32c(0, buf + off, n) != ts_crc32c(buf + off, n)) {
        printf("  length %zu at offset %zu differs\n", n, off);
        bad++;
      }
  CHECK(bad == 0);
  /* page spans of every page size, and large buffers */
  static const size_t spans[] = {252,   4092,  4096,  8188,     16380,
                                 32764, 65532, 65536, 3 * 65536};
  for (size_t i = 0; i < sizeof spans / sizeof *spans; i++)
    CHECK(cairn_crc32c(0, buf + 4, spans[i]) == ts_crc32c(buf + 4, spans[i]));
  /* a sum continued across calls equals one call over the whole */
  long rounds = ts_scaled(200, 50);
  for (long round = 0; round < rounds; round++) {
    size_t n = 1 + next_byte() * 64u + next_byte();
    size_t cut = next_byte() * n / 256;
    uint32_t a = cairn_crc32c(0, buf, cut);
    CHECK(cairn_crc32c(a, buf + cut, n - cut) == cairn_crc32c(0, buf, n));
  }
  free(buf);
  return test_summary();
}
