/*
 * em_test_platform.c — runs the unmodified C test suite on a browser
 * platform (Emscripten test builds only; never part of libcairn).
 *
 * The tests name the platform they exercise "memory" and isolate themselves
 * with cairn_platform_memory_reset(). The browser test build compiles them
 * with
 *   -Dcairn_platform_memory=cairn_em_test_platform
 *   -Dcairn_platform_memory_reset=cairn_em_test_reset
 * and, when the environment variable CAIRN_BROWSER_PLATFORM names a browser
 * platform ("opfs" or "idb"), this file registers that platform's functions
 * under the name "memory" before main runs. Every test that opens "memory" then
 * reads and writes the browser's storage, and every reset also wipes it.
 * CAIRN_BROWSER_PLATFORM unset or "memory": the real memory platform.
 */
#include <stdlib.h>
#include <string.h>

#include "em_platforms.h"
#include "platform.h"

cairn_platform *cairn_em_test_platform(void);
void cairn_em_test_reset(void);

static cairn_platform alias;
static int alias_kind; /* 0 memory, 1 opfs, 2 idb */

__attribute__((constructor)) static void install_alias(void) {
  const char *e = getenv("CAIRN_BROWSER_PLATFORM");
  if (e && strcmp(e, "opfs") == 0) {
    alias = *cairn_platform_opfs();
    alias_kind = 1;
  } else if (e && strcmp(e, "idb") == 0) {
    alias = *cairn_platform_idb();
    alias_kind = 2;
  } else {
    return;
  }
  alias.name = "memory";
  cairn_platform_register(&alias);
}

cairn_platform *cairn_em_test_platform(void) {
  return alias_kind ? &alias : cairn_platform_memory();
}

void cairn_em_test_reset(void) {
  cairn_platform_memory_reset();
  if (alias_kind == 1)
    cairn_platform_opfs_reset();
  else if (alias_kind == 2)
    cairn_platform_idb_reset();
}
