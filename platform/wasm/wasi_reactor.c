/*
 * wasi_reactor.c — the reactor build of cairn for WASI embedders:
 * cairn_reactor.wasm has no main; it exports every function of
 * include/cairn.h, cairn_wasi_break_lock, malloc/free (so the host can place
 * strings, slices and out-parameters in the module's memory) and the few
 * layout facts below. The host calls _initialize once (node:wasi:
 * wasi.initialize(instance)); platform/wasm/example/node_example.mjs shows
 * put, get and a range scan.
 *
 * ABI notes for hosts (wasm32, clang's C ABI):
 *   - pointers and size_t are 32-bit; uint64_t is a JS BigInt;
 *   - a cairn_slice argument passed by value is passed as a pointer to an
 *     8-byte {data, size} struct in memory (aggregates go indirectly);
 *   - out-parameters (cairn_db **, cairn_slice *) are pointers the host
 *     allocates (4 and 8 bytes).
 */
#include <stddef.h>

#include "cairn.h"

/* sizeof(cairn_options), so a host can allocate one and fill it with
 * cairn_options_init before setting fields at cairn_wasi_options_offset. */
size_t cairn_wasi_options_size(void) { return sizeof(cairn_options); }

/* Byte offset of a cairn_options field, by number: 0 flags, 1 page_size,
 * 2 durability, 3 platform, 4 cache_pages, 5 lazy_sync_commits,
 * 6 lazy_sync_ms; (size_t)-1 for any other. */
size_t cairn_wasi_options_offset(int field) {
  switch (field) {
  case 0: return offsetof(cairn_options, flags);
  case 1: return offsetof(cairn_options, page_size);
  case 2: return offsetof(cairn_options, durability);
  case 3: return offsetof(cairn_options, platform);
  case 4: return offsetof(cairn_options, cache_pages);
  case 5: return offsetof(cairn_options, lazy_sync_commits);
  case 6: return offsetof(cairn_options, lazy_sync_ms);
  default: return (size_t)-1;
  }
}
