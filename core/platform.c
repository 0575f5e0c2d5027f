/*
 * platform.c — the registry of platforms by name.
 *
 * Owns the process-wide table that cairn_open() consults through
 * cairn_platform_find(). Invariant: the table is only read or changed under
 * registry_mu, and the built-in platforms are in it before any lookup or
 * user registration is served, so a user registration of a built-in name
 * always wins (later registrations replace earlier ones).
 *
 * Platforms are never unregistered and the table holds borrowed pointers, so
 * a pointer returned by cairn_platform_find() stays valid for the life of the
 * process without reference counting.
 */
#include <string.h>

#include "error.h"
#include "platform.h"
#include "threads.h"
/* ---- wasi (owner: WASI engineer) ---------------------------------------- */
#ifdef __wasi__
cairn_platform *cairn_platform_wasi(void); /* platform/wasm/wasi_platform.h */
#endif
/* ---- end wasi ----------------------------------------------------------- */
#ifdef __EMSCRIPTEN__
#include "em_platforms.h" /* browser platforms (platform/wasm) */
#endif

/* A handful of platforms exist per process (built-ins plus test doubles); a
 * fixed table keeps registration allocation-free and leak-free. */
#define REGISTRY_MAX 32

static cairn_mutex registry_mu = CAIRN_MUTEX_INIT;
static cairn_platform *registry[REGISTRY_MAX];
static int registry_len;
static int builtins_done;

/* The host default is the first of these that is registered. A WASI build
 * will register "wasi" from platform/wasm; until it exists such builds fall
 * through to "memory". */
static const char *const default_names[] = {
#ifdef CAIRN_HAVE_UNIX_PLATFORM
    "unix",
#endif
#ifdef __wasi__
    "wasi",
#endif
    "memory",
};

static int find_index_locked(const char *name) {
  for (int i = 0; i < registry_len; i++)
    if (strcmp(registry[i]->name, name) == 0)
      return i;
  return -1;
}

static int register_locked(cairn_platform *p) {
  int i = find_index_locked(p->name);
  if (i >= 0) {
    registry[i] = p;
    return CAIRN_OK;
  }
  if (registry_len == REGISTRY_MAX)
    return cairn__seterr(CAIRN_NOMEM,
                         "platform registry full (%d platforms): cannot "
                         "register \"%s\"",
                         REGISTRY_MAX, p->name);
  registry[registry_len++] = p;
  return CAIRN_OK;
}

static void builtins_locked(void) {
  if (builtins_done)
    return;
  builtins_done = 1;
  /* Cannot fail: the table is empty here and far larger than this list. */
  register_locked(cairn_platform_memory());
#ifdef CAIRN_HAVE_UNIX_PLATFORM
  register_locked(cairn_platform_unix());
#endif
  /* ---- wasi (owner: WASI engineer) ------------------------------------ */
#ifdef __wasi__
  register_locked(cairn_platform_wasi()); /* platform/wasm/wasi_platform.c */
#endif
  /* ---- end wasi ------------------------------------------------------- */
  /* ---- browser (Emscripten) platforms: platform/wasm/em_platforms.h ---- */
#ifdef __EMSCRIPTEN__
  register_locked(cairn_platform_opfs());
  register_locked(cairn_platform_idb());
#endif
  /* ---- end browser ---- */
}

int cairn_platform_register(cairn_platform *p) {
  if (!p || !p->name || !p->name[0] || !p->open)
    return cairn__seterr(CAIRN_INVALID,
                         "cairn_platform_register: platform or its name or "
                         "open method is missing");
  cairn_mutex_lock(&registry_mu);
  builtins_locked();
  int rc = register_locked(p);
  cairn_mutex_unlock(&registry_mu);
  return rc;
}

cairn_platform *cairn_platform_find(const char *name) {
  cairn_platform *p = NULL;
  cairn_mutex_lock(&registry_mu);
  builtins_locked();
  if (name) {
    int i = find_index_locked(name);
    if (i >= 0)
      p = registry[i];
  } else {
    for (size_t k = 0; !p && k < sizeof default_names / sizeof *default_names;
         k++) {
      int i = find_index_locked(default_names[k]);
      if (i >= 0)
        p = registry[i];
    }
  }
  cairn_mutex_unlock(&registry_mu);
  if (!p)
    cairn__seterr(CAIRN_NOTFOUND, "no platform named \"%s\" is registered",
                  name ? name : "(host default)");
  return p;
}
