/*
 * wasi_platform.c — the "wasi" platform: files in preopened directories of a
 * WASI preview1 runtime (wasmtime, Node's node:wasi), through wasi-libc.
 *
 * Owns the translation from WASI calls to the contract in core/platform.h:
 *   - read/write are pread/pwrite (fd_pread/fd_pwrite) that transfer the
 *     whole buffer or fail; short transfers and EINTR are retried; bytes past
 *     the end of the file read as zeros.
 *   - sync is fdatasync (fd_datasync): durable as far as the runtime's host
 *     can promise.
 *   - No map: WASI preview1 cannot map files, so the pager runs in its
 *     cached mode, a page cache bounded by cairn_options.cache_pages.
 *   - No file locks exist in preview1: lock() uses lock files created with
 *     O_EXCL next to the database. The protocol and its limits are described
 *     in wasi_platform.h; in short, writers and readers each create a file
 *     and then look for the other kind, and whoever finds one backs out with
 *     CAIRN_BUSY. Locks belong to the open handle, like flock: two handles on
 *     one file in one process conflict just as two processes do.
 *   - rename_noreplace never replaces: link + unlink (path_link), or where
 *     the runtime refuses hard links, an existence check then rename (not
 *     atomic against a concurrent creator; documented below).
 *   - Errors map errno to CAIRN_* codes like the unix platform, with a
 *     message naming the call and path; a path outside every preopened
 *     directory says so.
 */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE /* getentropy */

#include "platform.h"

#ifdef __wasi__

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "error.h"
#include "wasi_platform.h"

#define WLOCK_SUFFIX ".lock"
#define RLOCK_INFIX ".lock-r."
/* A writer refreshes its lock file's mtime at most this often (on sync). */
#define TOUCH_SECONDS 5

typedef struct wasi_file {
  cairn_file base; /* first, so a cairn_file * is a wasi_file * */
  int fd;
  int lock;       /* CAIRN_LOCK_* held by this handle */
  int wlock_fd;   /* open lock file while holding EXCLUSIVE, else -1 */
  double touched; /* monotonic seconds of the last mtime refresh */
  char owner[17]; /* random id naming this handle in its lock files */
  char *wlock;    /* path.lock */
  char *rlock;    /* path.lock-r.<owner> */
  char path[];    /* the path it was opened by */
} wasi_file;

/* ---- errors ------------------------------------------------------------ */

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

static const char *preopen_hint(int e) {
#ifdef ENOTCAPABLE
  if (e == ENOTCAPABLE)
    return " (the path is outside every preopened directory: give the runtime "
           "its directory, e.g. wasmtime --dir=DIR or node:wasi preopens)";
#endif
  if (e == ENOENT)
    return " (if the directory exists, is it preopened? e.g. wasmtime "
           "--dir=DIR or node:wasi preopens)";
  return "";
}

static int fail_path(int e, const char *call, const char *path) {
  return cairn__seterr(map_errno(e), "%s %s: %s%s", call, path, strerror(e),
                       strcmp(call, "open") == 0 ? preopen_hint(e) : "");
}

static int fail_at(int e, const char *call, const char *path, uint64_t off) {
  return cairn__seterr(map_errno(e), "%s %s at offset %llu: %s", call, path,
                       (unsigned long long)off, strerror(e));
}

/* off_t is 64-bit in wasi-libc. */
#define OFF_MAX ((uint64_t)INT64_MAX)
/* Transfers are split so each call stays far below 2 GiB (32-bit size_t). */
#define IO_CHUNK ((size_t)1 << 26)

static int off_ok(uint64_t off, size_t n) {
  return off <= OFF_MAX && n <= OFF_MAX - off;
}

static double mono_seconds(void) {
  struct timespec ts;
  if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
    return 0;
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static char *str_cat3(const char *a, const char *b, const char *c) {
  size_t na = strlen(a), nb = strlen(b), nc = strlen(c);
  char *s = malloc(na + nb + nc + 1);
  if (s) {
    memcpy(s, a, na);
    memcpy(s + na, b, nb);
    memcpy(s + na + nb, c, nc + 1);
  }
  return s;
}

/* ---- file methods ------------------------------------------------------ */

static int wf_read(cairn_file *f, void *buf, size_t n, uint64_t off) {
  wasi_file *wf = (wasi_file *)f;
  if (!wf || (!buf && n))
    return cairn__seterr(CAIRN_INVALID, "read: NULL handle or buffer");
  if (!off_ok(off, n))
    return cairn__seterr(CAIRN_INVALID, "pread %s: offset %llu + %zu too large",
                         wf->path, (unsigned long long)off, n);
  unsigned char *p = buf;
  while (n > 0) {
    size_t want = n < IO_CHUNK ? n : IO_CHUNK;
    ssize_t got = pread(wf->fd, p, want, (off_t)off);
    if (got < 0) {
      if (errno == EINTR)
        continue;
      return fail_at(errno, "pread", wf->path, off);
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

static int wf_write(cairn_file *f, const void *buf, size_t n, uint64_t off) {
  wasi_file *wf = (wasi_file *)f;
  if (!wf || (!buf && n))
    return cairn__seterr(CAIRN_INVALID, "write: NULL handle or buffer");
  if (!off_ok(off, n))
    return cairn__seterr(CAIRN_INVALID,
                         "pwrite %s: offset %llu + %zu too large", wf->path,
                         (unsigned long long)off, n);
  const unsigned char *p = buf;
  while (n > 0) {
    size_t want = n < IO_CHUNK ? n : IO_CHUNK;
    ssize_t put = pwrite(wf->fd, p, want, (off_t)off);
    if (put < 0) {
      if (errno == EINTR)
        continue;
      return fail_at(errno, "pwrite", wf->path, off);
    }
    if (put == 0) /* no progress and no error: treat as a full device */
      return fail_at(ENOSPC, "pwrite", wf->path, off);
    p += put;
    n -= (size_t)put;
    off += (uint64_t)put;
  }
  return CAIRN_OK;
}

static int wf_sync(cairn_file *f) {
  wasi_file *wf = (wasi_file *)f;
  if (!wf)
    return cairn__seterr(CAIRN_INVALID, "sync: NULL handle");
  /* Only EINTR is retried: after another failure the host may have dropped
   * the dirty pages, so a retry that succeeds would lie. */
  while (fdatasync(wf->fd) != 0) {
    if (errno != EINTR)
      return fail_path(errno, "fdatasync", wf->path);
  }
  /* Show other openers that the lock's owner is alive (see stale locks). */
  if (wf->wlock_fd >= 0) {
    double now = mono_seconds();
    if (now - wf->touched >= TOUCH_SECONDS) {
      wf->touched = now;
      (void)futimens(wf->wlock_fd, NULL); /* advisory: failure is harmless */
    }
  }
  return CAIRN_OK;
}

static int wf_size(cairn_file *f, uint64_t *out) {
  wasi_file *wf = (wasi_file *)f;
  if (!wf || !out)
    return cairn__seterr(CAIRN_INVALID, "size: NULL argument");
  struct stat st;
  if (fstat(wf->fd, &st) != 0)
    return fail_path(errno, "fstat", wf->path);
  *out = (uint64_t)st.st_size;
  return CAIRN_OK;
}

static int wf_truncate(cairn_file *f, uint64_t size) {
  wasi_file *wf = (wasi_file *)f;
  if (!wf)
    return cairn__seterr(CAIRN_INVALID, "truncate: NULL handle");
  if (size > OFF_MAX)
    return cairn__seterr(CAIRN_INVALID, "ftruncate %s to %llu: too large",
                         wf->path, (unsigned long long)size);
  while (ftruncate(wf->fd, (off_t)size) != 0) {
    if (errno != EINTR)
      return cairn__seterr(map_errno(errno), "ftruncate %s to %llu: %s",
                           wf->path, (unsigned long long)size, strerror(errno));
  }
  return CAIRN_OK;
}

/* ---- lock files -------------------------------------------------------- */

/* Split path into its directory ("." if none) and base name. */
static int split_path(const char *path, char **dir, const char **base) {
  const char *slash = strrchr(path, '/');
  if (!slash) {
    *dir = str_cat3(".", "", "");
    *base = path;
  } else if (slash == path) {
    *dir = str_cat3("/", "", "");
    *base = slash + 1;
  } else {
    size_t n = (size_t)(slash - path);
    *dir = malloc(n + 1);
    if (*dir) {
      memcpy(*dir, path, n);
      (*dir)[n] = 0;
    }
    *base = slash + 1;
  }
  return *dir ? CAIRN_OK
              : cairn__seterr(CAIRN_NOMEM, "out of memory locking %s", path);
}

/* Write the text of a lock file to fd (best effort: the O_EXCL create is
 * the lock; the text only explains it). */
static void write_lock_text(int fd, const wasi_file *wf, const char *mode) {
  char text[1024];
  time_t now = time(NULL);
  struct tm tm;
  char when[40] = "unknown";
  if (gmtime_r(&now, &tm))
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
  int n = snprintf(text, sizeof text,
                   "cairn-lock 1\n"
                   "mode %s\n"
                   "owner %s\n"
                   "runtime wasi\n"
                   "created %s\n"
                   "database %s\n"
                   "If no process has %s open (for example after a crash), "
                   "delete this file and open it again.\n",
                   mode, wf->owner, when, wf->path, wf->path);
  if (n < 0)
    return;
  size_t len = (size_t)n < sizeof text ? (size_t)n : sizeof text - 1;
  (void)!pwrite(fd, text, len, 0);
}

/* Fill *field with the value of "key value" in the lock file's text. */
static void lock_field(const char *text, const char *key, char *out, size_t n) {
  size_t kl = strlen(key);
  snprintf(out, n, "?");
  for (const char *l = text; l && *l;
       l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
    if (strncmp(l, key, kl) == 0 && l[kl] == ' ') {
      const char *v = l + kl + 1, *e = strchr(v, '\n');
      size_t vl = e ? (size_t)(e - v) : strlen(v);
      if (vl >= n)
        vl = n - 1;
      memcpy(out, v, vl);
      out[vl] = 0;
      return;
    }
  }
}

/* CAIRN_BUSY with a message that names the lock file found, its owner and
 * age, and the way out. */
static int busy(const wasi_file *wf, const char *found) {
  char text[1024] = "";
  char owner[40], created[40];
  int fd = open(found, O_RDONLY);
  if (fd >= 0) {
    ssize_t got = pread(fd, text, sizeof text - 1, 0);
    text[got > 0 ? got : 0] = 0;
    close(fd);
  }
  lock_field(text, "owner", owner, sizeof owner);
  lock_field(text, "created", created, sizeof created);
  struct stat st;
  long long idle = -1;
  if (stat(found, &st) == 0) {
    idle = (long long)(time(NULL) - st.st_mtim.tv_sec);
    if (idle < 0)
      idle = 0;
  }
  char age[160] = "";
  if (idle >= 0)
    snprintf(age, sizeof age, ", last active %llds ago%s", idle,
             idle >= CAIRN_WASI_STALE_SECONDS
                 ? "; probably stale (left by a process that crashed?)"
                 : "");
  return cairn__seterr(
      CAIRN_BUSY,
      "database %s is locked by another process or handle: lock file %s "
      "(owner %s, created %s%s). WASI has no file locks or process ids to "
      "prove its owner gone: if no process has the database open, delete the "
      "lock file (cairn_wasi_break_lock) and open again",
      wf->path, found, owner, created, age);
}

/* Look in the database's directory for a reader lock file other than
 * skip; on finding one return CAIRN_BUSY describing it. */
static int find_reader(const wasi_file *wf, const char *skip) {
  char *dir;
  const char *base;
  int rc = split_path(wf->path, &dir, &base);
  if (rc)
    return rc;
  char *prefix = str_cat3(base, RLOCK_INFIX, "");
  if (!prefix) {
    free(dir);
    return cairn__seterr(CAIRN_NOMEM, "out of memory locking %s", wf->path);
  }
  DIR *d = opendir(dir);
  if (!d) {
    rc = fail_path(errno, "opendir (lock check)", dir);
  } else {
    size_t pl = strlen(prefix);
    const char *skip_base = skip ? strrchr(skip, '/') : NULL;
    skip_base = skip_base ? skip_base + 1 : skip;
    struct dirent *de;
    while (!rc && (de = readdir(d)) != NULL) {
      if (strncmp(de->d_name, prefix, pl) != 0)
        continue;
      if (skip_base && strcmp(de->d_name, skip_base) == 0)
        continue;
      char *found = strcmp(dir, ".") == 0 ? str_cat3(de->d_name, "", "")
                                          : str_cat3(dir, "/", de->d_name);
      rc = found ? busy(wf, found)
                 : cairn__seterr(CAIRN_NOMEM, "out of memory locking %s",
                                 wf->path);
      free(found);
    }
    closedir(d);
  }
  free(prefix);
  free(dir);
  return rc;
}

/* Create a lock file with O_EXCL; CAIRN_BUSY if it exists. Returns the open
 * descriptor in *fd_out. */
static int create_lock(wasi_file *wf, const char *lpath, const char *mode,
                       int *fd_out) {
  int fd;
  do
    fd = open(lpath, O_WRONLY | O_CREAT | O_EXCL, 0644);
  while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    if (errno == EEXIST)
      return busy(wf, lpath);
    return fail_path(errno, "create lock file", lpath);
  }
  write_lock_text(fd, wf, mode);
  *fd_out = fd;
  return CAIRN_OK;
}

static void drop_writer(wasi_file *wf) {
  if (wf->wlock_fd >= 0) {
    close(wf->wlock_fd);
    wf->wlock_fd = -1;
  }
  unlink(wf->wlock);
}

static int wf_lock(cairn_file *f, int mode) {
  wasi_file *wf = (wasi_file *)f;
  if (!wf)
    return cairn__seterr(CAIRN_INVALID, "lock: NULL handle");
  if (mode != CAIRN_LOCK_NONE && mode != CAIRN_LOCK_SHARED &&
      mode != CAIRN_LOCK_EXCLUSIVE)
    return cairn__seterr(CAIRN_INVALID, "lock %s: bad mode %d", wf->path, mode);
  if (mode == wf->lock)
    return CAIRN_OK;
  int rc = CAIRN_OK, fd = -1;
  switch (mode) {
  case CAIRN_LOCK_NONE:
    if (wf->lock == CAIRN_LOCK_EXCLUSIVE)
      drop_writer(wf);
    else
      unlink(wf->rlock);
    break;
  case CAIRN_LOCK_EXCLUSIVE:
    /* Writer file first, then look for readers (other than our own file
     * when converting from SHARED): a reader does the mirror image, so at
     * least one of two racing openers sees the other. */
    rc = create_lock(wf, wf->wlock, "exclusive", &fd);
    if (rc)
      break;
    wf->wlock_fd = fd;
    wf->touched = mono_seconds();
    rc = find_reader(wf, wf->lock == CAIRN_LOCK_SHARED ? wf->rlock : NULL);
    if (rc) {
      drop_writer(wf);
      break;
    }
    if (wf->lock == CAIRN_LOCK_SHARED)
      unlink(wf->rlock);
    break;
  case CAIRN_LOCK_SHARED:
    rc = create_lock(wf, wf->rlock, "shared", &fd);
    if (rc)
      break;
    close(fd);
    if (wf->lock == CAIRN_LOCK_EXCLUSIVE) { /* downgrade: the writer is us */
      drop_writer(wf);
      break;
    }
    if (access(wf->wlock, F_OK) == 0) {
      rc = busy(wf, wf->wlock);
      unlink(wf->rlock);
    }
    break;
  }
  /* A refused request leaves the handle with what it had (like flock's
   * conversion in the unix platform, as the contract wants). */
  if (!rc)
    wf->lock = mode;
  return rc;
}

static void wf_close(cairn_file *f) {
  wasi_file *wf = (wasi_file *)f;
  if (!wf)
    return;
  if (wf->lock != CAIRN_LOCK_NONE)
    wf_lock(f, CAIRN_LOCK_NONE);
  close(wf->fd);
  free(wf->wlock);
  free(wf->rlock);
  free(wf);
}

static const cairn_file_methods wasi_methods = {
    wf_read, wf_write, wf_sync, wf_size, wf_truncate,
    wf_lock, NULL, /* no map in WASI preview1: the pager uses its
                      page cache */
    NULL,    wf_close, NULL,    NULL,    NULL,
};

/* ---- platform methods -------------------------------------------------- */

static void new_owner(char out[17]) {
  static unsigned counter;
  uint64_t v = 0;
  if (getentropy(&v, sizeof v) != 0) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    v = (uint64_t)ts.tv_sec * 1000000007u + (uint64_t)ts.tv_nsec;
    v ^= (uint64_t)(uintptr_t)out << 20;
  }
  v += (uint64_t)++counter * 0x9e3779b97f4a7c15ull;
  snprintf(out, 17, "%016llx", (unsigned long long)v);
}

static int wp_open(cairn_platform *p, const char *path, unsigned flags,
                   cairn_file **out) {
  (void)p;
  if (!out)
    return cairn__seterr(CAIRN_INVALID, "open: NULL out pointer");
  *out = NULL;
  if (!path || !*path)
    return cairn__seterr(CAIRN_INVALID, "open: empty path");
  size_t len = strlen(path);
  wasi_file *wf = calloc(1, sizeof *wf + len + 1);
  if (!wf)
    return cairn__seterr(CAIRN_NOMEM, "open %s: out of memory", path);
  memcpy(wf->path, path, len + 1);
  wf->base.methods = &wasi_methods;
  wf->lock = CAIRN_LOCK_NONE;
  wf->wlock_fd = -1;
  new_owner(wf->owner);
  wf->wlock = str_cat3(path, WLOCK_SUFFIX, "");
  wf->rlock = str_cat3(path, RLOCK_INFIX, wf->owner);
  if (!wf->wlock || !wf->rlock) {
    free(wf->wlock);
    free(wf->rlock);
    free(wf);
    return cairn__seterr(CAIRN_NOMEM, "open %s: out of memory", path);
  }

  int oflags = (flags & CAIRN_PF_RDONLY) ? O_RDONLY : O_RDWR;
  if (flags & CAIRN_PF_CREATE) {
    oflags |= O_CREAT;
    if (flags & CAIRN_PF_EXCL)
      oflags |= O_EXCL;
  }
  int fd;
  do
    fd = open(path, oflags, 0644);
  while (fd < 0 && errno == EINTR);
  int rc = CAIRN_OK;
  if (fd < 0) {
    rc = fail_path(errno, "open", path);
  } else {
    /* Refuse anything that is not a regular file here, with a clear
     * message, rather than failing later. */
    struct stat st;
    if (fstat(fd, &st) != 0)
      rc = fail_path(errno, "fstat", path);
    else if (!S_ISREG(st.st_mode))
      rc = cairn__seterr(CAIRN_IO, "open %s: not a regular file", path);
    if (rc)
      close(fd);
  }
  if (rc) {
    free(wf->wlock);
    free(wf->rlock);
    free(wf);
    return rc;
  }
  wf->fd = fd;
  *out = &wf->base;
  return CAIRN_OK;
}

static int wp_remove(cairn_platform *p, const char *path) {
  (void)p;
  if (!path)
    return cairn__seterr(CAIRN_INVALID, "remove: NULL path");
  if (unlink(path) != 0)
    return fail_path(errno, "unlink", path);
  return CAIRN_OK;
}

static int rename_fail(int e, const char *call, const char *from,
                       const char *to) {
  return cairn__seterr(map_errno(e), "%s %s to %s: %s", call, from, to,
                       strerror(e));
}

static int wp_rename_noreplace(cairn_platform *p, const char *from,
                               const char *to) {
  (void)p;
  if (!from || !to)
    return cairn__seterr(CAIRN_INVALID, "rename: NULL path");
  /* path_link refuses an existing target with EEXIST: the no-replace rule,
   * atomically. A crash between link and unlink leaves both names, which
   * the caller's recovery tolerates (db.c removes its temporary name). */
  if (link(from, to) == 0) {
    if (unlink(from) != 0) {
      int e = errno;
      unlink(to); /* undo, so a failed rename leaves only the old name */
      return rename_fail(e, "unlink (after link)", from, to);
    }
    return CAIRN_OK;
  }
  int e = errno;
  if (e == EEXIST)
    return rename_fail(e, "link", from, to);
  if (e != ENOTSUP && e != ENOSYS && e != EPERM && e != EXDEV && e != EMLINK &&
      e != EACCES
#ifdef ENOTCAPABLE
      && e != ENOTCAPABLE
#endif
  )
    return rename_fail(e, "link", from, to);
  /* The runtime or file system has no hard links: check, then rename. Not
   * atomic: a file created at `to` between the two calls is replaced. Only
   * database creation renames, and two creators of one path in that window
   * would each have made a valid empty database. */
  struct stat st;
  if (stat(to, &st) == 0)
    return rename_fail(EEXIST, "rename", from, to);
  if (rename(from, to) != 0)
    return rename_fail(errno, "rename", from, to);
  return CAIRN_OK;
}

static int wp_sync_dir(cairn_platform *p, const char *path) {
  (void)p;
  if (!path)
    return cairn__seterr(CAIRN_INVALID, "sync_dir: NULL path");
  char *dir;
  const char *base;
  int rc = split_path(path, &dir, &base);
  if (rc)
    return rc;
  int fd;
  do
    fd = open(dir, O_RDONLY | O_DIRECTORY);
  while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    rc = fail_path(errno, "open directory", dir);
    free(dir);
    return rc;
  }
  int r;
  do
    r = fsync(fd);
  while (r != 0 && errno == EINTR);
  int e = errno;
  close(fd);
  /* Runtimes differ: some refuse fd_sync on a directory (no right, EBADF,
   * EINVAL, ENOTSUP). There the entry is as durable as the host makes it;
   * only a real I/O error is reported. */
  if (r != 0 && e == EIO)
    rc = fail_path(e, "fsync directory", dir);
  free(dir);
  return rc;
}

static cairn_platform wasi_platform = {
    "wasi", wp_open, wp_remove, wp_rename_noreplace, wp_sync_dir, NULL,
};

cairn_platform *cairn_platform_wasi(void) { return &wasi_platform; }

int cairn_wasi_break_lock(const char *db_path) {
  if (!db_path || !*db_path)
    return cairn__seterr(CAIRN_INVALID, "cairn_wasi_break_lock: empty path");
  int removed = 0;
  char *w = str_cat3(db_path, WLOCK_SUFFIX, "");
  if (!w)
    return cairn__seterr(CAIRN_NOMEM, "out of memory");
  if (unlink(w) == 0)
    removed++;
  free(w);
  char *dir;
  const char *base;
  int rc = split_path(db_path, &dir, &base);
  if (rc)
    return rc;
  char *prefix = str_cat3(base, RLOCK_INFIX, "");
  DIR *d = prefix ? opendir(dir) : NULL;
  if (!d) {
    rc = prefix ? fail_path(errno, "opendir", dir)
                : cairn__seterr(CAIRN_NOMEM, "out of memory");
  } else {
    size_t pl = strlen(prefix);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
      if (strncmp(de->d_name, prefix, pl) != 0)
        continue;
      char *found = str_cat3(dir, "/", de->d_name);
      if (found && unlink(found) == 0)
        removed++;
      free(found);
    }
    closedir(d);
  }
  free(prefix);
  free(dir);
  if (rc)
    return rc;
  if (!removed)
    return cairn__seterr(CAIRN_NOTFOUND, "%s: no lock files to remove",
                         db_path);
  cairn__clearerr();
  return CAIRN_OK;
}

#else
typedef int cairn_wasi_platform_not_built; /* ISO C: no empty file */
#endif /* __wasi__ */
