/*
 * unix_platform.c — the "unix" platform: real files through POSIX calls
 * (Linux, macOS, the BSDs).
 *
 * Owns the translation from system calls to the platform contract in
 * core/platform.h. Invariants kept here:
 *   - read/write either transfer the whole buffer or fail: EINTR and short
 *     transfers are retried, so callers never see partial I/O.
 *   - Every failure maps errno to a CAIRN_* code (ENOSPC/EDQUOT -> NOSPC,
 *     ENOENT -> NOTFOUND, EEXIST -> EXISTS, ENOMEM -> NOMEM, the rest -> IO)
 *     and records a message naming the call, the path and strerror text.
 *   - sync() returns only once the data is on stable storage as far as the
 *     OS can promise: fdatasync, or F_FULLFSYNC on macOS where plain fsync
 *     only reaches the drive's volatile cache.
 *   - rename_noreplace never replaces an existing target, even on systems
 *     without an atomic no-replace rename (link + unlink fallback).
 *   - Locks are flock() locks, so they belong to the open handle: two handles
 *     on one file in one process conflict just as two processes do.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* renameat2, RENAME_NOREPLACE, GNU strerror_r */
#endif
#ifndef _FILE_OFFSET_BITS
#define _FILE_OFFSET_BITS 64 /* 64-bit off_t on 32-bit hosts too */
#endif

#include "platform.h"

/* Built only where platform.h says the host has this platform, so a build
 * that globs platform/unix/ for WASI or Emscripten still compiles. */
#ifdef CAIRN_HAVE_UNIX_PLATFORM

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "error.h"
#include "threads.h"

#if defined(__linux__) && defined(__GLIBC__) &&                                \
    (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 28))
#define HAVE_RENAMEAT2 1
#endif
#if defined(__APPLE__)
#define HAVE_RENAMEX_NP 1
#endif

#ifndef O_CLOEXEC
#define O_CLOEXEC 0
#endif
#ifndef PATH_MAX
#define PATH_MAX 4096
#endif

/* Large transfers are split so each call stays within ssize_t on every
 * system (Linux caps a single pread at ~2 GiB anyway). */
#define IO_CHUNK ((size_t)1 << 30)

/* A file's background syncer (see ux_start_sync), started at its first
 * use. Invariant: a sync error it meets is kept in err and returned by every
 * later ux_sync of the file: the kernel reports a writeback error to one
 * fdatasync per open file only, and it may have been the syncer's. */
typedef struct bg_syncer {
  cairn_helper h;
  int requested, running; /* h.mu */
  int err; /* h.mu: errno of a failed background sync, 0 if none */
} bg_syncer;

typedef struct unix_file {
  cairn_file base; /* first, so a cairn_file * is a unix_file * */
  int fd;
  int lock;
  bg_syncer *bg;
  char path[]; /* the path it was opened by, for messages */
} unix_file;

static const char *errtext(int e, char *buf, size_t n) {
#if defined(__GLIBC__) && defined(_GNU_SOURCE)
  return strerror_r(e, buf, n); /* GNU: may return a static string */
#else
  if (strerror_r(e, buf, n) != 0)
    snprintf(buf, n, "error %d", e);
  return buf;
#endif
}

static int map_errno(int e) {
  switch (e) {
  case ENOSPC: return CAIRN_NOSPC;
#ifdef EDQUOT
  case EDQUOT: return CAIRN_NOSPC;
#endif
  case ENOENT: return CAIRN_NOTFOUND;
  case EEXIST: return CAIRN_EXISTS;
  case ENOMEM: return CAIRN_NOMEM;
  default: return CAIRN_IO;
  }
}

/* Record errno e for the operation described by what (already formatted,
 * naming the path) and return its CAIRN_* code. */
static int sys_fail(int e, const char *what) {
  char buf[128];
  return cairn__seterr(map_errno(e), "%s: %s", what,
                       errtext(e, buf, sizeof buf));
}

static int fail_at(int e, const char *call, const char *path, uint64_t off) {
  char what[400];
  snprintf(what, sizeof what, "%s %s at offset %llu", call, path,
           (unsigned long long)off);
  return sys_fail(e, what);
}

static int fail_path(int e, const char *call, const char *path) {
  char what[400];
  snprintf(what, sizeof what, "%s %s", call, path);
  return sys_fail(e, what);
}

/* The largest offset off_t can hold (off_t is signed). */
#define OFF_MAX ((uint64_t)(((uint64_t)1 << (sizeof(off_t) * 8 - 1)) - 1))

static int off_ok(uint64_t off, size_t n) {
  return off <= OFF_MAX && n <= OFF_MAX - off;
}

static int ux_read(cairn_file *f, void *buf, size_t n, uint64_t off) {
  unix_file *uf = (unix_file *)f;
  if (!uf || (!buf && n))
    return cairn__seterr(CAIRN_INVALID, "read: NULL handle or buffer");
  if (!off_ok(off, n))
    return cairn__seterr(CAIRN_INVALID, "pread %s: offset %llu + %zu too large",
                         uf->path, (unsigned long long)off, n);
  unsigned char *p = buf;
  while (n > 0) {
    size_t want = n < IO_CHUNK ? n : IO_CHUNK;
    ssize_t got = pread(uf->fd, p, want, (off_t)off);
    if (got < 0) {
      if (errno == EINTR)
        continue;
      return fail_at(errno, "pread", uf->path, off);
    }
    if (got == 0) { /* end of file: the contract says zeros */
      memset(p, 0, n);
      break;
    }
    p += got;
    n -= (size_t)got;
    off += (uint64_t)got;
  }
  return CAIRN_OK;
}

static int ux_write(cairn_file *f, const void *buf, size_t n, uint64_t off) {
  unix_file *uf = (unix_file *)f;
  if (!uf || (!buf && n))
    return cairn__seterr(CAIRN_INVALID, "write: NULL handle or buffer");
  if (!off_ok(off, n))
    return cairn__seterr(CAIRN_INVALID,
                         "pwrite %s: offset %llu + %zu too large", uf->path,
                         (unsigned long long)off, n);
  const unsigned char *p = buf;
  while (n > 0) {
    size_t want = n < IO_CHUNK ? n : IO_CHUNK;
    ssize_t put = pwrite(uf->fd, p, want, (off_t)off);
    if (put < 0) {
      if (errno == EINTR)
        continue;
      return fail_at(errno, "pwrite", uf->path, off);
    }
    if (put == 0) /* no progress and no error: treat as a full device */
      return fail_at(ENOSPC, "pwrite", uf->path, off);
    p += put;
    n -= (size_t)put;
    off += (uint64_t)put;
  }
  return CAIRN_OK;
}

static int full_sync(int fd) {
#if defined(__APPLE__) && defined(F_FULLFSYNC)
  /* Some file systems (network, FUSE) refuse F_FULLFSYNC; fsync is then the
   * best the OS offers. */
  if (fcntl(fd, F_FULLFSYNC) == 0)
    return 0;
  return fsync(fd);
#elif defined(__linux__) ||                                                    \
    (defined(_POSIX_SYNCHRONIZED_IO) && _POSIX_SYNCHRONIZED_IO > 0)
  return fdatasync(fd);
#else
  return fsync(fd);
#endif
}

#if defined(__APPLE__)
#define SYNC_CALL "fsync"
#elif defined(__linux__) ||                                                    \
    (defined(_POSIX_SYNCHRONIZED_IO) && _POSIX_SYNCHRONIZED_IO > 0)
#define SYNC_CALL "fdatasync"
#else
#define SYNC_CALL "fsync"
#endif

static int ux_sync(cairn_file *f) {
  unix_file *uf = (unix_file *)f;
  if (!uf)
    return cairn__seterr(CAIRN_INVALID, "sync: NULL handle");
  if (uf->bg) { /* a queued background sync is covered by this one */
    bg_syncer *bg = uf->bg;
    cairn_mutex_lock(&bg->h.mu);
    bg->requested = 0;
    while (bg->running)
      cairn_cond_wait(&bg->h.cv, &bg->h.mu);
    int e = bg->err;
    cairn_mutex_unlock(&bg->h.mu);
    if (e)
      return fail_path(e, SYNC_CALL, uf->path);
  }
  /* Only EINTR is retried: after any other failure the kernel may have
   * dropped the dirty pages, so a retry that succeeds would lie. */
  while (full_sync(uf->fd) != 0) {
    if (errno != EINTR)
      return fail_path(errno, SYNC_CALL, uf->path);
  }
  return CAIRN_OK;
}

static int ux_size(cairn_file *f, uint64_t *out) {
  unix_file *uf = (unix_file *)f;
  if (!uf || !out)
    return cairn__seterr(CAIRN_INVALID, "size: NULL argument");
  struct stat st;
  if (fstat(uf->fd, &st) != 0)
    return fail_path(errno, "fstat", uf->path);
  *out = (uint64_t)st.st_size;
  return CAIRN_OK;
}

static int ux_truncate(cairn_file *f, uint64_t size) {
  unix_file *uf = (unix_file *)f;
  if (!uf)
    return cairn__seterr(CAIRN_INVALID, "truncate: NULL handle");
  if (size > OFF_MAX)
    return cairn__seterr(CAIRN_INVALID, "ftruncate %s to %llu: too large",
                         uf->path, (unsigned long long)size);
  while (ftruncate(uf->fd, (off_t)size) != 0) {
    if (errno != EINTR) {
      char what[400];
      snprintf(what, sizeof what, "ftruncate %s to %llu", uf->path,
               (unsigned long long)size);
      return sys_fail(errno, what);
    }
  }
  return CAIRN_OK;
}

static int do_flock(int fd, int op) {
  int r;
  do
    r = flock(fd, op);
  while (r != 0 && errno == EINTR);
  return r;
}

static int ux_lock(cairn_file *f, int mode) {
  unix_file *uf = (unix_file *)f;
  if (!uf)
    return cairn__seterr(CAIRN_INVALID, "lock: NULL handle");
  int op;
  switch (mode) {
  case CAIRN_LOCK_NONE: op = LOCK_UN; break;
  case CAIRN_LOCK_SHARED: op = LOCK_SH | LOCK_NB; break;
  case CAIRN_LOCK_EXCLUSIVE: op = LOCK_EX | LOCK_NB; break;
  default:
    return cairn__seterr(CAIRN_INVALID, "lock %s: bad mode %d", uf->path, mode);
  }
  if (mode == uf->lock)
    return CAIRN_OK;
  if (do_flock(uf->fd, op) == 0) {
    uf->lock = mode;
    return CAIRN_OK;
  }
  int e = errno;
  if (e != EWOULDBLOCK && e != EAGAIN)
    return fail_path(e, "flock", uf->path);
  /* Linux drops the old lock before trying a conversion, so a refused
   * conversion can leave the handle unlocked; take the old one back so the
   * caller keeps what it had (as the memory platform does). */
  if (uf->lock != CAIRN_LOCK_NONE) {
    int old = uf->lock == CAIRN_LOCK_SHARED ? LOCK_SH : LOCK_EX;
    if (do_flock(uf->fd, old | LOCK_NB) != 0)
      uf->lock = CAIRN_LOCK_NONE;
  }
  return cairn__seterr(CAIRN_BUSY,
                       "database is locked by another process or handle "
                       "(flock on %s)",
                       uf->path);
}

static int ux_map(cairn_file *f, uint64_t len, const void **addr) {
  unix_file *uf = (unix_file *)f;
  if (!uf || !addr)
    return cairn__seterr(CAIRN_INVALID, "map: NULL argument");
  *addr = NULL;
  if (len == 0 || len > SIZE_MAX || len > OFF_MAX)
    return cairn__seterr(CAIRN_INVALID, "mmap %s: bad length %llu", uf->path,
                         (unsigned long long)len);
  void *p = mmap(NULL, (size_t)len, PROT_READ, MAP_SHARED, uf->fd, 0);
  if (p == MAP_FAILED) {
    char what[400];
    snprintf(what, sizeof what, "mmap %s (%llu bytes)", uf->path,
             (unsigned long long)len);
    return sys_fail(errno, what);
  }
  *addr = p;
  return CAIRN_OK;
}

static int ux_unmap(cairn_file *f, const void *addr, uint64_t len) {
  unix_file *uf = (unix_file *)f;
  if (!uf || !addr || len == 0 || len > SIZE_MAX)
    return cairn__seterr(CAIRN_INVALID, "munmap: bad argument");
  if (munmap((void *)(uintptr_t)addr, (size_t)len) != 0)
    return fail_path(errno, "munmap", uf->path);
  return CAIRN_OK;
}

static void ux_close(cairn_file *f) {
  unix_file *uf = (unix_file *)f;
  if (!uf)
    return;
  if (uf->bg) { /* waits for a sync it is running */
    cairn_helper_stop(&uf->bg->h);
    free(uf->bg);
  }
  /* close() releases the flock; its errors cannot be acted on (and must
   * not be retried on EINTR: the descriptor is gone either way on Linux). */
  close(uf->fd);
  free(uf);
}

/* Hole punching where the host has it (Linux); elsewhere the caller sees
 * CAIRN_INVALID and keeps the blocks. */
static int ux_punch(cairn_file *f, uint64_t off, uint64_t len) {
  unix_file *uf = (unix_file *)f;
  if (!uf)
    return cairn__seterr(CAIRN_INVALID, "punch: NULL handle");
#ifdef FALLOC_FL_PUNCH_HOLE
  if (off > OFF_MAX || len > OFF_MAX - off)
    return cairn__seterr(CAIRN_INVALID, "punch %s: range too large", uf->path);
  while (fallocate(uf->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                   (off_t)off, (off_t)len) != 0) {
    if (errno != EINTR) {
      char what[400];
      snprintf(what, sizeof what, "punch a hole in %s", uf->path);
      return sys_fail(errno, what);
    }
  }
  return CAIRN_OK;
#else
  (void)off;
  (void)len;
  return cairn__seterr(CAIRN_INVALID, "punch %s: not supported here", uf->path);
#endif
}

/* Drop the map's pages in [addr, addr + len) from the resident set (whole
 * system pages inside the range only); the file's bytes stay cached. */
static int ux_forget(cairn_file *f, const void *addr, uint64_t len) {
  unix_file *uf = (unix_file *)f;
  long sys = sysconf(_SC_PAGESIZE);
  if (!uf || !addr || sys <= 0)
    return cairn__seterr(CAIRN_INVALID, "forget: bad argument");
  uintptr_t a = (uintptr_t)addr, e = a + (uintptr_t)len, ps = (uintptr_t)sys;
  a = (a + ps - 1) / ps * ps;
  e = e / ps * ps;
  if (e > a && madvise((void *)a, e - a, MADV_DONTNEED) != 0)
    return fail_path(errno, "madvise", uf->path);
  return CAIRN_OK;
}

static void *bg_sync_main(void *arg) {
  unix_file *uf = arg;
  bg_syncer *bg = uf->bg;
  cairn_mutex_lock(&bg->h.mu);
  for (;;) {
    while (!bg->requested && !bg->h.stop)
      cairn_cond_wait(&bg->h.cv, &bg->h.mu);
    if (bg->h.stop)
      break;
    bg->requested = 0;
    bg->running = 1;
    cairn_mutex_unlock(&bg->h.mu);
    int e = 0;
    while (full_sync(uf->fd) != 0 && (e = errno) == EINTR)
      e = 0;
    cairn_mutex_lock(&bg->h.mu);
    bg->running = 0;
    if (e && !bg->err)
      bg->err = e;
    cairn_cond_broadcast(&bg->h.cv);
  }
  cairn_mutex_unlock(&bg->h.mu);
  return NULL;
}

/* Sync the file on a thread of its own and return at once: the disk writes
 * while the caller goes on, and the ux_sync that must make the data
 * durable waits only for what is left (measured: a checkpoint's 230 MB
 * took a writer 0.2 s of fdatasync; sync_file_range blocked it half as
 * long again in submitting the writes). */
static int ux_start_sync(cairn_file *f) {
  unix_file *uf = (unix_file *)f;
  if (!uf)
    return cairn__seterr(CAIRN_INVALID, "start_sync: NULL handle");
  if (!uf->bg) {
    bg_syncer *bg = calloc(1, sizeof *bg);
    if (!bg)
      return cairn__seterr(CAIRN_NOMEM, "start_sync %s: out of memory",
                           uf->path);
    uf->bg = bg; /* the thread finds it there */
    int e = cairn_helper_start(&bg->h, bg_sync_main, uf);
    if (e) {
      uf->bg = NULL;
      free(bg);
      return fail_path(e, "start a sync thread for", uf->path);
    }
  }
  bg_syncer *bg = uf->bg;
  cairn_mutex_lock(&bg->h.mu);
  bg->requested = 1;
  cairn_cond_broadcast(&bg->h.cv);
  cairn_mutex_unlock(&bg->h.mu);
  return CAIRN_OK;
}

static const cairn_file_methods unix_methods = {
    ux_read, ux_write, ux_sync,  ux_size,  ux_truncate, ux_lock,
    ux_map,  ux_unmap, ux_close, ux_punch, ux_forget,   ux_start_sync,
};

static int ux_open(cairn_platform *p, const char *path, unsigned flags,
                   cairn_file **out) {
  (void)p;
  if (!out)
    return cairn__seterr(CAIRN_INVALID, "open: NULL out pointer");
  *out = NULL;
  if (!path)
    return cairn__seterr(CAIRN_INVALID, "open: NULL path");
  size_t len = strlen(path);
  unix_file *uf = malloc(sizeof *uf + len + 1);
  if (!uf)
    return cairn__seterr(CAIRN_NOMEM, "open %s: out of memory", path);
  memcpy(uf->path, path, len + 1);
  uf->base.methods = &unix_methods;
  uf->lock = CAIRN_LOCK_NONE;
  uf->bg = NULL;

  int oflags = O_CLOEXEC | ((flags & CAIRN_PF_RDONLY) ? O_RDONLY : O_RDWR);
  if (flags & CAIRN_PF_CREATE) {
    oflags |= O_CREAT;
    if (flags & CAIRN_PF_EXCL)
      oflags |= O_EXCL;
  }
  int fd;
  do
    fd = open(path, oflags, 0644);
  while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    int e = errno;
    free(uf);
    return fail_path(e, "open", path);
  }
  /* A directory opens read-only without error; refuse anything that is not
   * a regular file so it fails here with a clear message, not later. */
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int e = errno;
    close(fd);
    free(uf);
    return fail_path(e, "fstat", path);
  }
  if (!S_ISREG(st.st_mode)) {
    close(fd);
    free(uf);
    return cairn__seterr(CAIRN_IO, "open %s: not a regular file", path);
  }
  uf->fd = fd;
  *out = &uf->base;
  return CAIRN_OK;
}

static int ux_remove(cairn_platform *p, const char *path) {
  (void)p;
  if (!path)
    return cairn__seterr(CAIRN_INVALID, "remove: NULL path");
  if (unlink(path) != 0)
    return fail_path(errno, "unlink", path);
  return CAIRN_OK;
}

static int rename_fail(int e, const char *call, const char *from,
                       const char *to) {
  char what[700];
  snprintf(what, sizeof what, "%s %s to %s", call, from, to);
  return sys_fail(e, what);
}

static int ux_rename_noreplace(cairn_platform *p, const char *from,
                               const char *to) {
  (void)p;
  if (!from || !to)
    return cairn__seterr(CAIRN_INVALID, "rename: NULL path");
#if defined(HAVE_RENAMEAT2)
  if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0)
    return CAIRN_OK;
  /* Old kernels (ENOSYS) and some file systems (EINVAL) lack the flag; fall
   * through to link + unlink. */
  if (errno != ENOSYS && errno != EINVAL)
    return rename_fail(errno, "renameat2", from, to);
#elif defined(HAVE_RENAMEX_NP)
  if (renamex_np(from, to, RENAME_EXCL) == 0)
    return CAIRN_OK;
  if (errno != ENOTSUP && errno != EINVAL)
    return rename_fail(errno, "renamex_np", from, to);
#endif
  /* link() refuses an existing target with EEXIST, which is exactly the
   * no-replace rule. Not atomic: a crash between the two calls leaves both
   * names, which the caller's recovery must tolerate. */
  if (link(from, to) != 0)
    return rename_fail(errno, "link", from, to);
  if (unlink(from) != 0) {
    int e = errno;
    unlink(to); /* undo, so a failed rename leaves only the old name */
    return rename_fail(e, "unlink (after link)", from, to);
  }
  return CAIRN_OK;
}

static int ux_sync_dir(cairn_platform *p, const char *path) {
  (void)p;
  if (!path)
    return cairn__seterr(CAIRN_INVALID, "sync_dir: NULL path");
  const char *slash = strrchr(path, '/');
  char dir[PATH_MAX];
  if (!slash) {
    strcpy(dir, ".");
  } else if (slash == path) {
    strcpy(dir, "/");
  } else {
    size_t n = (size_t)(slash - path);
    if (n >= sizeof dir)
      return cairn__seterr(CAIRN_INVALID, "sync_dir %s: path too long", path);
    memcpy(dir, path, n);
    dir[n] = 0;
  }
  int fd;
  do
    fd = open(dir, O_RDONLY | O_CLOEXEC
#ifdef O_DIRECTORY
                       | O_DIRECTORY
#endif
    );
  while (fd < 0 && errno == EINTR);
  if (fd < 0)
    return fail_path(errno, "open directory", dir);
  int r;
  do
    r = fsync(fd);
  while (r != 0 && errno == EINTR);
  int e = errno;
  close(fd);
  /* Some file systems cannot fsync a directory (EINVAL); there the entry is
   * as durable as the system can make it. */
  if (r != 0 && e != EINVAL)
    return fail_path(e, "fsync directory", dir);
  return CAIRN_OK;
}

static cairn_platform unix_platform = {
    "unix", ux_open, ux_remove, ux_rename_noreplace, ux_sync_dir, NULL,
};

cairn_platform *cairn_platform_unix(void) { return &unix_platform; }

#else
typedef int cairn_unix_platform_not_built; /* ISO C: no empty file */
#endif /* CAIRN_HAVE_UNIX_PLATFORM */
