/*
 * wasi_mem.c — memset, memcpy and memmove as single bulk-memory instructions
 * (memory.fill / memory.copy) for the WASI build, and a word-wise memcmp.
 *
 * Debian's wasi-libc is built for the wasm MVP, so its memset/memcpy are C
 * loops; the engine's cached pager clears and copies page-sized and pin-map
 * buffers all the time (calloc inside wasi-libc calls memset too). Measured
 * under Node 20: memcpy of 0-4 KiB ~4-10x and calloc+memset of 1 KiB up to
 * ~5x faster, on par with glibc natively. These definitions take the place
 * of libc's (the linker takes the first definition; libc.a comes last).
 * cmake/wasi_targets.cmake compiles this file alone with -mbulk-memory (a
 * wasm 2.0 feature every WASI runtime has: wasmtime, Node, wasmer); without
 * it the file defines nothing, since __builtin_memset would call memset.
 */
#include <stddef.h>

#if defined(__wasi__) && defined(__wasm_bulk_memory__)

void *memset(void *d, int c, size_t n) { return __builtin_memset(d, c, n); }

void *memcpy(void *restrict d, const void *restrict s, size_t n) {
  return __builtin_memcpy(d, s, n);
}

void *memmove(void *d, const void *s, size_t n) {
  return __builtin_memmove(d, s, n);
}

/* wasi-libc's memcmp compares a byte per loop turn; the B+tree's key
 * comparisons (binary search in every page on the way to a key) were ~13%
 * of a random get under Node. Eight bytes at a time (unaligned i64 loads
 * are valid wasm); the first difference decides, as bytes, big-endian. */
int memcmp(const void *a, const void *b, size_t n) {
  const unsigned char *l = a, *r = b;
  for (; n >= 8; n -= 8, l += 8, r += 8) {
    unsigned long long x, y;
    __builtin_memcpy(&x, l, 8);
    __builtin_memcpy(&y, r, 8);
    if (x != y) {
      x = __builtin_bswap64(x); /* wasm is little-endian */
      y = __builtin_bswap64(y);
      return x < y ? -1 : 1;
    }
  }
  for (; n && *l == *r; n--, l++, r++)
    ;
  return n ? *l - *r : 0;
}

#else
typedef int cairn_wasi_mem_not_built; /* ISO C: no empty file */
#endif
