/*
 * wasi_sbrk.c — sbrk for the WASI build: the same contiguous break as
 * wasi-libc's, but the wasm memory grows in large steps.
 *
 * wasi-libc's sbrk grows the memory by exactly what malloc asks for, mostly
 * 64 KiB at a time, and each memory.grow is costly in V8: the old ArrayBuffer
 * is detached and a new one made, and the growth is reported to the GC as
 * external memory, which starts collections. Filling the page cache (a 4 KiB
 * buffer per miss) meant thousands of grows: W3 of bench/wasi_bench.sh
 * (random gets) ran ~2.5x faster under Node 20 with the memory grown ahead.
 * Here the memory grows by a quarter of its size (1 MiB to 64 MiB) beyond
 * what is needed, or by exactly what is needed when that fails (a runtime's
 * memory limit). Grown but untouched pages cost the host no physical memory.
 *
 * This definition takes the place of libc's (libcairn.a comes before libc.a
 * on the link line; wasi_mem.c does the same for memset/memcpy). dlmalloc
 * never shrinks (MORECORE_CANNOT_TRIM in wasi-libc), so neither does this.
 */
#ifdef __wasi__
#include <errno.h>
#include <stdint.h>
#include <unistd.h>

#define WASM_PAGE 65536u

static uintptr_t brk_cur, brk_end; /* the break; where our growth ends */

void *sbrk(intptr_t increment) {
  uintptr_t end = __builtin_wasm_memory_size(0) * WASM_PAGE;
  if (end != brk_end) { /* first call, or something else grew the memory */
    brk_cur = end;
    brk_end = end;
  }
  if (increment == 0)
    return (void *)brk_cur;
  if (increment < 0 || (uintptr_t)increment > UINTPTR_MAX - brk_cur) {
    errno = ENOMEM;
    return (void *)-1;
  }
  uintptr_t old = brk_cur, want = old + (uintptr_t)increment;
  if (want > brk_end) {
    uintptr_t need = (want - brk_end + WASM_PAGE - 1) / WASM_PAGE;
    uintptr_t extra = brk_end / WASM_PAGE / 4;
    extra = extra < 16 ? 16 : extra > 1024 ? 1024 : extra;
    if (__builtin_wasm_memory_grow(0, need + extra) == SIZE_MAX) {
      extra = 0;
      if (__builtin_wasm_memory_grow(0, need) == SIZE_MAX) {
        errno = ENOMEM;
        return (void *)-1;
      }
    }
    brk_end += (need + extra) * WASM_PAGE;
  }
  brk_cur = want;
  return (void *)old;
}
#else
typedef int cairn_wasi_sbrk_not_built; /* ISO C: no empty file */
#endif
