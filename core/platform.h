/*
 * platform.h — the seam between the engine and a host: files and nothing else.
 *
 * A platform is a small table of functions on named files (like SQLite's VFS
 * or LevelDB's Env). It holds no policy: no caching, no retries, no knowledge
 * of the file format. Everything else in cairn is the same on every host.
 *
 * Contract every implementation keeps:
 *   - Every function returns CAIRN_OK or a negative CAIRN_* code and, on
 *     failure, sets a detailed message with cairn__seterr() (core/error.h).
 *     ENOSPC maps to CAIRN_NOSPC, a missing file to CAIRN_NOTFOUND, an
 *     existing file under CAIRN_PF_EXCL to CAIRN_EXISTS, other I/O failures
 *     to CAIRN_IO.
 *   - read() fills the whole buffer; bytes past the end of the file read as
 *     zeros (the engine detects that through page checksums and bounds).
 *   - write() writes the whole buffer or fails; it extends the file as needed.
 *   - Data written is durable only after sync() returns CAIRN_OK. Until then a
 *     crash may lose or tear any write (the fault platform simulates exactly
 *     this).
 *   - lock() never waits: a conflicting lock is CAIRN_BUSY.
 *   - map is optional (NULL where the host cannot map). A mapping of len bytes
 *     may extend past the end of the file; the engine only touches bytes that
 *     exist. Writes through write() must become visible through the map (a
 *     unified page cache, as on Linux and the BSDs).
 *   - A file handle is used by one thread at a time for write/sync/truncate;
 *     read() may be called from several threads at once.
 */
#ifndef CAIRN_PLATFORM_H
#define CAIRN_PLATFORM_H

#include <stddef.h>
#include <stdint.h>

#include "cairn.h"

typedef struct cairn_platform cairn_platform;
typedef struct cairn_file cairn_file;

/* flags of cairn_platform.open */
#define CAIRN_PF_RDONLY 0x1u /* open for reading only */
#define CAIRN_PF_CREATE 0x2u /* create if missing */
#define CAIRN_PF_EXCL                                                          \
  0x4u /* with CREATE: fail with CAIRN_EXISTS if present                       \
        */

/* modes of cairn_file_methods.lock */
#define CAIRN_LOCK_NONE 0      /* release */
#define CAIRN_LOCK_SHARED 1    /* readers of the file */
#define CAIRN_LOCK_EXCLUSIVE 2 /* the one writer */

typedef struct cairn_file_methods {
  int (*read)(cairn_file *f, void *buf, size_t n, uint64_t off);
  int (*write)(cairn_file *f, const void *buf, size_t n, uint64_t off);
  int (*sync)(cairn_file *f);
  int (*size)(cairn_file *f, uint64_t *out);
  int (*truncate)(cairn_file *f, uint64_t size);
  int (*lock)(cairn_file *f, int mode);
  /* Optional (NULL if the host cannot map): map the first len bytes
   * read-only; *addr receives the address. */
  int (*map)(cairn_file *f, uint64_t len, const void **addr);
  int (*unmap)(cairn_file *f, const void *addr, uint64_t len);
  /* Close and free the handle (releases its lock). Never fails. */
  void (*close)(cairn_file *f);
  /* Optional (NULL if the host cannot): give the storage of len bytes at
   * off back to the filesystem; they read as zeros, the size stays. */
  int (*punch)(cairn_file *f, uint64_t off, uint64_t len);
  /* Optional: the process will not read these bytes of a map soon; give
   * the memory they hold back (they read the same when touched again). */
  int (*forget)(cairn_file *f, const void *addr, uint64_t len);
  /* Optional: start writing what was written to the file out to storage
   * without waiting, so that a later sync waits for less. Promises
   * nothing about durability. */
  int (*start_sync)(cairn_file *f);
} cairn_file_methods;

/* Implementations embed this as their first member. */
struct cairn_file {
  const cairn_file_methods *methods;
};

struct cairn_platform {
  const char *name;
  int (*open)(cairn_platform *p, const char *path, unsigned flags,
              cairn_file **out);
  /* Remove a file; CAIRN_NOTFOUND if it does not exist. */
  int (*remove)(cairn_platform *p, const char *path);
  /* Rename from to to, failing with CAIRN_EXISTS if to exists (never
   * replaces); durable once sync_dir(to) returns. */
  int (*rename_noreplace)(cairn_platform *p, const char *from, const char *to);
  /* Make the directory entry of path durable (a no-op where meaningless). */
  int (*sync_dir)(cairn_platform *p, const char *path);
  void *ctx; /* the implementation's own state */
};

/* Register a platform under its name (later registrations of the same name
 * replace earlier ones). The built-in ones ("memory", and "unix" or "wasi"
 * where they exist) are registered on first use. Thread-safe. */
int cairn_platform_register(cairn_platform *p);
/* Find a platform by name; NULL name gives the host default. NULL if none. */
cairn_platform *cairn_platform_find(const char *name);

/* Built-in platforms (each defined in its own file). */
cairn_platform *cairn_platform_memory(void);
#if defined(__unix__) || defined(__APPLE__)
#if !defined(__wasi__) && !defined(__EMSCRIPTEN__)
#define CAIRN_HAVE_UNIX_PLATFORM 1
cairn_platform *cairn_platform_unix(void);
#endif
#endif

/* Memory platform helpers for tests: drop every file (test isolation). */
void cairn_platform_memory_reset(void);

#endif /* CAIRN_PLATFORM_H */
