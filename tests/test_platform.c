/*
 * test_platform.c — tests of the platform seam (core/platform.h) on every
 * built-in platform plus the fault-injecting one, called directly, without
 * the engine.
 *
 * The same contract checks run on "memory", "fault" and (where it exists)
 * "unix"; each platform then gets the checks only it can pass: the map and
 * errno mapping on unix, concurrent readers on memory, and the crash model
 * on fault. Unix files live in a fresh mkdtemp directory that is removed at
 * the end.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* mkdtemp */
#endif
#include <stddef.h> /* fault_platform.h uses size_t without including it */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "fault_platform.h"
#include "platform.h"
#include "test_util.h"
#include "threads.h"

#if defined(CAIRN_HAVE_UNIX_PLATFORM) || defined(__wasi__)
#include <sys/stat.h>
#include <unistd.h>
#endif
#ifndef CAIRN_SINGLE_THREADED
#include <pthread.h>
#endif

static char path_buf[8][512];
static int path_next;

/* dir/name in one of a few rotating buffers (enough for one call's args). */
static const char *P(const char *dir, const char *name) {
  char *b = path_buf[path_next++ % 8];
  snprintf(b, sizeof path_buf[0], "%s/%s", dir, name);
  return b;
}

static cairn_file *open_file(cairn_platform *p, const char *path,
                             unsigned flags) {
  cairn_file *f = NULL;
  if (!CHECK_OK(p->open(p, path, flags, &f)))
    return NULL;
  return f;
}

static int fill_check(const unsigned char *b, size_t n, unsigned char v) {
  for (size_t i = 0; i < n; i++)
    if (b[i] != v)
      return 0;
  return 1;
}

/* ---- the contract, on any platform -------------------------------------- */

static void test_read_write(cairn_platform *p, const char *dir) {
  const char *path = P(dir, "rw");
  cairn_file *f = open_file(p, path, CAIRN_PF_CREATE | CAIRN_PF_EXCL);
  if (!f)
    return;
  uint64_t size = 99;
  CHECK_OK(f->methods->size(f, &size));
  CHECK(size == 0);

  unsigned char buf[256], got[512];
  memset(buf, 0xAB, sizeof buf);
  CHECK_OK(f->methods->write(f, buf, 100, 0));
  CHECK_OK(f->methods->size(f, &size));
  CHECK(size == 100);

  /* A read that straddles the end: data, then zeros. */
  memset(got, 0x55, sizeof got);
  CHECK_OK(f->methods->read(f, got, 200, 50));
  CHECK(fill_check(got, 50, 0xAB));
  CHECK(fill_check(got + 50, 150, 0));
  /* Entirely past the end: zeros, and the file does not grow. */
  memset(got, 0x55, sizeof got);
  CHECK_OK(f->methods->read(f, got, 64, 1u << 20));
  CHECK(fill_check(got, 64, 0));
  CHECK_OK(f->methods->size(f, &size));
  CHECK(size == 100);

  /* A write past the end leaves a hole of zeros. */
  memset(buf, 0xCD, sizeof buf);
  CHECK_OK(f->methods->write(f, buf, 10, 300));
  CHECK_OK(f->methods->size(f, &size));
  CHECK(size == 310);
  CHECK_OK(f->methods->read(f, got, 310, 0));
  CHECK(fill_check(got, 100, 0xAB));
  CHECK(fill_check(got + 100, 200, 0));
  CHECK(fill_check(got + 300, 10, 0xCD));

  /* Overwrite in the middle. */
  memset(buf, 0x11, sizeof buf);
  CHECK_OK(f->methods->write(f, buf, 20, 90));
  CHECK_OK(f->methods->read(f, got, 30, 80));
  CHECK(fill_check(got, 10, 0xAB) && fill_check(got + 10, 20, 0x11));

  /* Zero-length read and write are no-ops. */
  CHECK_OK(f->methods->write(f, buf, 0, 5000));
  CHECK_OK(f->methods->read(f, got, 0, 5000));
  CHECK_OK(f->methods->size(f, &size));
  CHECK(size == 310);

  /* Truncate down, then up: the regrown part reads as zeros. */
  CHECK_OK(f->methods->truncate(f, 60));
  CHECK_OK(f->methods->size(f, &size));
  CHECK(size == 60);
  CHECK_OK(f->methods->truncate(f, 120));
  CHECK_OK(f->methods->size(f, &size));
  CHECK(size == 120);
  CHECK_OK(f->methods->read(f, got, 120, 0));
  CHECK(fill_check(got, 60, 0xAB) && fill_check(got + 60, 60, 0));
  CHECK_OK(f->methods->sync(f));
  CHECK_RC(f->methods->lock(f, 7), CAIRN_INVALID);
  f->methods->close(f);

  /* Reopen: the bytes are still there. */
  f = open_file(p, path, 0);
  if (f) {
    CHECK_OK(f->methods->size(f, &size));
    CHECK(size == 120);
    CHECK_OK(f->methods->read(f, got, 1, 0));
    CHECK(got[0] == 0xAB);
    f->methods->close(f);
  }
  CHECK_OK(p->remove(p, path));
}

static void test_open_flags(cairn_platform *p, const char *dir) {
  const char *path = P(dir, "flags");
  cairn_file *f = (cairn_file *)1;
  CHECK_RC(p->open(p, path, 0, &f), CAIRN_NOTFOUND);
  CHECK(f == NULL);
  CHECK(strstr(cairn_errmsg(), "flags") != NULL);
  CHECK_RC(p->open(p, path, CAIRN_PF_RDONLY, &f), CAIRN_NOTFOUND);
  f = open_file(p, path, CAIRN_PF_CREATE | CAIRN_PF_EXCL);
  if (!f)
    return;
  CHECK_OK(f->methods->write(f, "hello", 5, 0));
  f->methods->close(f);
  cairn_file *g = NULL;
  CHECK_RC(p->open(p, path, CAIRN_PF_CREATE | CAIRN_PF_EXCL, &g), CAIRN_EXISTS);
  CHECK(g == NULL);
  /* CREATE without EXCL opens the existing file without truncating it. */
  g = open_file(p, path, CAIRN_PF_CREATE);
  if (g) {
    uint64_t size = 0;
    CHECK_OK(g->methods->size(g, &size));
    CHECK(size == 5);
    g->methods->close(g);
  }
  /* A read-only handle reads but refuses writes and truncates. */
  g = open_file(p, path, CAIRN_PF_RDONLY);
  if (g) {
    char got[5];
    CHECK_OK(g->methods->read(g, got, 5, 0));
    CHECK(memcmp(got, "hello", 5) == 0);
    CHECK_RC(g->methods->write(g, "x", 1, 0), CAIRN_IO);
    CHECK(strstr(cairn_errmsg(), path) != NULL);
    CHECK(g->methods->truncate(g, 0) != CAIRN_OK);
    CHECK_OK(g->methods->read(g, got, 5, 0));
    CHECK(memcmp(got, "hello", 5) == 0);
    g->methods->close(g);
  }
  CHECK_OK(p->remove(p, path));
  CHECK_RC(p->remove(p, path), CAIRN_NOTFOUND);
  CHECK(strstr(cairn_errmsg(), path) != NULL);
  CHECK_RC(p->open(p, path, 0, &g), CAIRN_NOTFOUND);
  CHECK_RC(p->open(p, NULL, 0, &g), CAIRN_INVALID);
}

static int file_holds(cairn_platform *p, const char *path, const char *want) {
  cairn_file *f = NULL;
  if (p->open(p, path, CAIRN_PF_RDONLY, &f) != CAIRN_OK)
    return 0;
  size_t n = strlen(want);
  char got[64] = {0};
  uint64_t size = 0;
  int ok = f->methods->size(f, &size) == CAIRN_OK && size == n &&
           n < sizeof got && f->methods->read(f, got, n, 0) == CAIRN_OK &&
           memcmp(got, want, n) == 0;
  f->methods->close(f);
  return ok;
}

static void make_file(cairn_platform *p, const char *path, const char *data) {
  cairn_file *f = open_file(p, path, CAIRN_PF_CREATE);
  if (!f)
    return;
  CHECK_OK(f->methods->truncate(f, 0));
  CHECK_OK(f->methods->write(f, data, strlen(data), 0));
  CHECK_OK(f->methods->sync(f));
  f->methods->close(f);
}

static void test_rename(cairn_platform *p, const char *dir) {
  const char *a = P(dir, "ren-a"), *b = P(dir, "ren-b"), *c = P(dir, "ren-c");
  make_file(p, a, "aaa");
  CHECK_OK(p->rename_noreplace(p, a, b));
  CHECK(file_holds(p, b, "aaa"));
  CHECK_RC(p->remove(p, a), CAIRN_NOTFOUND);
  CHECK_RC(p->rename_noreplace(p, a, c), CAIRN_NOTFOUND);
  /* Never replaces: both files keep their contents. */
  make_file(p, c, "ccc");
  CHECK_RC(p->rename_noreplace(p, c, b), CAIRN_EXISTS);
  CHECK(strstr(cairn_errmsg(), b) != NULL);
  CHECK(file_holds(p, b, "aaa"));
  CHECK(file_holds(p, c, "ccc"));
  CHECK_OK(p->sync_dir(p, b));
  CHECK_OK(p->remove(p, b));
  CHECK_OK(p->remove(p, c));
}

static void test_remove_while_open(cairn_platform *p, const char *dir) {
  const char *path = P(dir, "unlinked");
  cairn_file *f = open_file(p, path, CAIRN_PF_CREATE);
  if (!f)
    return;
  CHECK_OK(f->methods->write(f, "abc", 3, 0));
  CHECK_OK(p->remove(p, path));
  /* Like an unlinked inode: the handle still works, the name is gone. */
  char got[3];
  CHECK_OK(f->methods->read(f, got, 3, 0));
  CHECK(memcmp(got, "abc", 3) == 0);
  CHECK_OK(f->methods->write(f, "d", 1, 3));
  cairn_file *g = NULL;
  CHECK_RC(p->open(p, path, 0, &g), CAIRN_NOTFOUND);
  f->methods->close(f);
}

static void test_locks(cairn_platform *p, const char *dir) {
  const char *path = P(dir, "lock");
  cairn_file *a = open_file(p, path, CAIRN_PF_CREATE);
  cairn_file *b = open_file(p, path, 0);
  cairn_file *c = open_file(p, path, CAIRN_PF_RDONLY);
  if (!a || !b || !c)
    goto out;
  /* EX vs EX */
  CHECK_OK(a->methods->lock(a, CAIRN_LOCK_EXCLUSIVE));
  CHECK_OK(a->methods->lock(a, CAIRN_LOCK_EXCLUSIVE)); /* already held */
  CHECK_RC(b->methods->lock(b, CAIRN_LOCK_EXCLUSIVE), CAIRN_BUSY);
  CHECK(strstr(cairn_errmsg(), "locked") && strstr(cairn_errmsg(), path));
  /* EX vs SH */
  CHECK_RC(b->methods->lock(b, CAIRN_LOCK_SHARED), CAIRN_BUSY);
  CHECK_OK(a->methods->lock(a, CAIRN_LOCK_NONE));
  /* SH vs SH */
  CHECK_OK(b->methods->lock(b, CAIRN_LOCK_SHARED));
  CHECK_OK(c->methods->lock(c, CAIRN_LOCK_SHARED));
  CHECK_RC(a->methods->lock(a, CAIRN_LOCK_EXCLUSIVE), CAIRN_BUSY);
  /* A refused upgrade keeps the shared lock it had. */
  CHECK_RC(b->methods->lock(b, CAIRN_LOCK_EXCLUSIVE), CAIRN_BUSY);
  CHECK_OK(c->methods->lock(c, CAIRN_LOCK_NONE));
  CHECK_RC(a->methods->lock(a, CAIRN_LOCK_EXCLUSIVE), CAIRN_BUSY);
  /* Upgrade once alone, downgrade back. */
  CHECK_OK(b->methods->lock(b, CAIRN_LOCK_EXCLUSIVE));
  CHECK_RC(c->methods->lock(c, CAIRN_LOCK_SHARED), CAIRN_BUSY);
  CHECK_OK(b->methods->lock(b, CAIRN_LOCK_SHARED));
  CHECK_OK(c->methods->lock(c, CAIRN_LOCK_SHARED));
  /* Release by unlock and by close. */
  CHECK_OK(c->methods->lock(c, CAIRN_LOCK_NONE));
  b->methods->close(b);
  b = NULL;
  CHECK_OK(a->methods->lock(a, CAIRN_LOCK_EXCLUSIVE));
  a->methods->close(a);
  a = NULL;
  CHECK_OK(c->methods->lock(c, CAIRN_LOCK_EXCLUSIVE));
out:
  if (a)
    a->methods->close(a);
  if (b)
    b->methods->close(b);
  if (c)
    c->methods->close(c);
  p->remove(p, path);
}

static void test_contract(cairn_platform *p, const char *dir) {
  if (!CHECK(p != NULL))
    return;
  test_read_write(p, dir);
  test_open_flags(p, dir);
  test_rename(p, dir);
  test_remove_while_open(p, dir);
  test_locks(p, dir);
}

/* ---- registry ------------------------------------------------------------ */

static int dummy_open(cairn_platform *p, const char *path, unsigned flags,
                      cairn_file **out) {
  (void)p;
  (void)path;
  (void)flags;
  *out = NULL;
  return CAIRN_NOTSUPP;
}

static void test_registry(void) {
  cairn_platform *def = cairn_platform_find(NULL);
  CHECK(def != NULL);
#ifdef CAIRN_HAVE_UNIX_PLATFORM
  CHECK(def && strcmp(def->name, "unix") == 0);
  CHECK(cairn_platform_find("unix") == cairn_platform_unix());
#elif defined(__wasi__)
  CHECK(def && strcmp(def->name, "wasi") == 0);
#else
  CHECK(def && strcmp(def->name, "memory") == 0);
#endif
  CHECK(cairn_platform_find("memory") == cairn_platform_memory());
  CHECK(cairn_platform_find("no-such-platform") == NULL);
  CHECK_RC(cairn_platform_register(NULL), CAIRN_INVALID);
  static cairn_platform nameless = {NULL, dummy_open, NULL, NULL, NULL, NULL};
  CHECK_RC(cairn_platform_register(&nameless), CAIRN_INVALID);

  static cairn_platform d1 = {"test-dummy", dummy_open, NULL, NULL, NULL, NULL};
  static cairn_platform d2 = {"test-dummy", dummy_open, NULL, NULL, NULL, NULL};
  CHECK_OK(cairn_platform_register(&d1));
  CHECK(cairn_platform_find("test-dummy") == &d1);
  CHECK_OK(cairn_platform_register(&d2)); /* same name: replaces */
  CHECK(cairn_platform_find("test-dummy") == &d2);

  fault_platform_install();
  fault_platform_install(); /* idempotent */
  cairn_platform *f = cairn_platform_find("fault");
  CHECK(f && strcmp(f->name, "fault") == 0);
}

/* ---- memory platform only ------------------------------------------------ */

#ifndef CAIRN_SINGLE_THREADED
typedef struct reader_arg {
  cairn_file *f;
  int bad;
} reader_arg;

static atomic_int writer_done;

/* Every byte the writer ever writes at offset i is (i & 0xff), so any read
 * must see that value or zero (not yet written), whatever the interleaving. */
static void *reader_main(void *v) {
  reader_arg *a = v;
  unsigned char buf[4096];
  unsigned rounds = 0;
  while (!atomic_load(&writer_done) || rounds < 50) {
    uint64_t off = (uint64_t)(rounds * 7919u) % (1u << 20);
    if (a->f->methods->read(a->f, buf, sizeof buf, off) != CAIRN_OK)
      a->bad++;
    for (size_t i = 0; i < sizeof buf; i++)
      if (buf[i] != 0 && buf[i] != (unsigned char)((off + i) & 0xff))
        a->bad++;
    rounds++;
  }
  return NULL;
}

static void test_memory_concurrent_reads(cairn_platform *p) {
  cairn_file *w = open_file(p, "mem/conc", CAIRN_PF_CREATE);
  cairn_file *r = open_file(p, "mem/conc", CAIRN_PF_RDONLY);
  if (!w || !r)
    return;
  atomic_store(&writer_done, 0);
  pthread_t th[3];
  reader_arg args[3] = {{r, 0}, {r, 0}, {w, 0}};
  int started = 0;
  for (int i = 0; i < 3; i++)
    if (pthread_create(&th[i], NULL, reader_main, &args[i]) == 0)
      started++;
  CHECK(started == 3);
  /* Grow the file by many small writes so the buffer is reallocated while
   * readers copy from it. */
  unsigned char chunk[1000];
  for (uint64_t off = 0; off < (1u << 20); off += sizeof chunk) {
    for (size_t i = 0; i < sizeof chunk; i++)
      chunk[i] = (unsigned char)((off + i) & 0xff);
    if (w->methods->write(w, chunk, sizeof chunk, off) != CAIRN_OK) {
      CHECK(0);
      break;
    }
  }
  atomic_store(&writer_done, 1);
  for (int i = 0; i < started; i++)
    pthread_join(th[i], NULL);
  CHECK(args[0].bad == 0 && args[1].bad == 0 && args[2].bad == 0);
  w->methods->close(w);
  r->methods->close(r);
  p->remove(p, "mem/conc");
}
#endif

static void test_memory(void) {
  cairn_platform *p = cairn_platform_memory();
  cairn_platform_memory_reset();
  test_contract(p, "mem");
  /* The memory platform cannot map: the engine must use its cache. */
  cairn_file *f = open_file(p, "mem/x", CAIRN_PF_CREATE);
  if (f) {
    CHECK(f->methods->map == NULL && f->methods->unmap == NULL);
    CHECK_OK(f->methods->write(f, "x", 1, 0));
    f->methods->close(f);
  }
  /* Names are exact strings: no directories to create first. */
  make_file(p, "no/such/dir/file", "ok");
  CHECK(file_holds(p, "no/such/dir/file", "ok"));
  /* reset drops every file; an open handle keeps working on its copy. */
  f = open_file(p, "mem/kept", CAIRN_PF_CREATE);
  cairn_platform_memory_reset();
  cairn_file *g = NULL;
  CHECK_RC(p->open(p, "mem/x", 0, &g), CAIRN_NOTFOUND);
  CHECK_RC(p->open(p, "no/such/dir/file", 0, &g), CAIRN_NOTFOUND);
  if (f) {
    CHECK_OK(f->methods->write(f, "y", 1, 0));
    f->methods->close(f);
  }
  CHECK_RC(p->open(p, "mem/kept", 0, &g), CAIRN_NOTFOUND);
#ifndef CAIRN_SINGLE_THREADED
  test_memory_concurrent_reads(p);
#endif
  cairn_platform_memory_reset();
}

/* ---- unix platform only -------------------------------------------------- */

#ifdef CAIRN_HAVE_UNIX_PLATFORM
static void test_unix_specific(cairn_platform *p, const char *dir) {
  const char *path = P(dir, "map");
  cairn_file *g = NULL;
  cairn_file *f = open_file(p, path, CAIRN_PF_CREATE);
  if (!f)
    return;
  unsigned char buf[8192];
  memset(buf, 0x42, sizeof buf);
  CHECK_OK(f->methods->write(f, buf, sizeof buf, 0));
  /* The map may be longer than the file (the engine maps ahead). */
  const void *addr = NULL;
  uint64_t maplen = 1u << 20;
  if (CHECK(f->methods->map != NULL) &&
      CHECK_OK(f->methods->map(f, maplen, &addr))) {
    const unsigned char *m = addr;
    CHECK(m[0] == 0x42 && m[8191] == 0x42);
    /* pwrite shows through the map (unified page cache), also past the
     * old end once the file has grown. */
    CHECK_OK(f->methods->write(f, "Z", 1, 100));
    CHECK(m[100] == 'Z');
    CHECK_OK(f->methods->write(f, "Q", 1, 20000));
    CHECK(m[20000] == 'Q');
    CHECK_OK(f->methods->unmap(f, addr, maplen));
  }
  CHECK_RC(f->methods->map(f, 0, &addr), CAIRN_INVALID);
  CHECK_OK(f->methods->sync(f));
  /* Background syncs: requested, requested again while one may run,
   * then waited for by sync; the file reads back whole. */
  if (CHECK(f->methods->start_sync != NULL)) {
    CHECK_OK(f->methods->start_sync(f));
    CHECK_OK(f->methods->write(f, buf, sizeof buf, 8192));
    CHECK_OK(f->methods->start_sync(f));
    CHECK_OK(f->methods->start_sync(f));
    CHECK_OK(f->methods->sync(f));
    unsigned char back[8192];
    CHECK_OK(f->methods->read(f, back, sizeof back, 8192));
    CHECK(memcmp(back, buf, sizeof buf) == 0);
    CHECK_OK(f->methods->start_sync(f)); /* close waits for it */
  }
  f->methods->close(f);
  g = open_file(p, path, CAIRN_PF_RDONLY); /* close with one queued */
  if (g) {
    CHECK_OK(g->methods->start_sync(g));
    g->methods->close(g);
  }

  /* errno mapping and messages */
  const char *missing = P(dir, "missing");
  CHECK_RC(p->open(p, missing, 0, &g), CAIRN_NOTFOUND);
  CHECK(strstr(cairn_errmsg(), missing) != NULL);
  CHECK(strstr(cairn_errmsg(), "No such file") != NULL);
  CHECK_RC(p->open(p, P(dir, "nodir/x"), CAIRN_PF_CREATE, &g), CAIRN_NOTFOUND);
  CHECK_RC(p->open(p, dir, CAIRN_PF_RDONLY, &g), CAIRN_IO); /* a directory */
  CHECK(strstr(cairn_errmsg(), "not a regular file") != NULL);
  CHECK_RC(p->open(p, dir, 0, &g), CAIRN_IO);
  g = open_file(p, path, CAIRN_PF_RDONLY);
  if (g) {
    CHECK_RC(g->methods->write(g, "x", 1, 0), CAIRN_IO);
    CHECK(strstr(cairn_errmsg(), "pwrite") && strstr(cairn_errmsg(), path) &&
          strstr(cairn_errmsg(), "at offset 0"));
    CHECK_RC(g->methods->truncate(g, 0), CAIRN_IO);
    CHECK_OK(g->methods->sync(g)); /* syncing a read-only handle is fine */
    g->methods->close(g);
  }
  CHECK_RC(p->remove(p, missing), CAIRN_NOTFOUND);
  CHECK_RC(p->rename_noreplace(p, missing, P(dir, "other")), CAIRN_NOTFOUND);
  CHECK_RC(p->sync_dir(p, P(dir, "nodir/x")), CAIRN_NOTFOUND);
  CHECK_OK(p->sync_dir(p, path));
  CHECK_OK(p->sync_dir(p, "relative-name")); /* the current directory */
  CHECK_OK(p->remove(p, path));
}

static void test_unix(void) {
  const char *tmp = getenv("TMPDIR");
  char dir[400];
  snprintf(dir, sizeof dir, "%s/cairn-test-platform-XXXXXX",
           tmp && tmp[0] ? tmp : "/tmp");
  if (!CHECK(mkdtemp(dir) != NULL)) {
    perror("mkdtemp");
    return;
  }
  cairn_platform *p = cairn_platform_unix();
  test_contract(p, dir);
  test_unix_specific(p, dir);
  /* Every test removes what it made, so rmdir proves nothing leaked. */
  CHECK(rmdir(dir) == 0);
}
#endif

/* ---- wasi platform (wasm32-wasi builds): the same contract --------------- */

#ifdef __wasi__
static void test_wasi(void) {
  /* The current directory is the one the runner preopens ("."). */
  const char *dir = "cairn-test-platform-wasi";
  if (!CHECK(mkdir(dir, 0755) == 0))
    return;
  test_contract(cairn_platform_find("wasi"), dir);
  /* Every test removes what it made (lock files too). */
  CHECK(rmdir(dir) == 0);
}
#endif

/* ---- fault platform only ------------------------------------------------- */

#define SEEDS 64

static cairn_platform *fp;

/* A durable file (data synced, name dir-synced) with content old[0..n). */
static void fault_durable_file(const char *path, const void *old, size_t n) {
  cairn_file *f = NULL;
  if (!CHECK_OK(fp->open(fp, path, CAIRN_PF_CREATE, &f)))
    return;
  CHECK_OK(f->methods->write(f, old, n, 0));
  CHECK_OK(f->methods->sync(f));
  CHECK_OK(fp->sync_dir(fp, path));
  f->methods->close(f);
}

static int fault_write(const char *path, const void *buf, size_t n,
                       uint64_t off, int sync) {
  cairn_file *f = NULL;
  int rc = fp->open(fp, path, 0, &f);
  if (rc != CAIRN_OK)
    return rc;
  rc = f->methods->write(f, buf, n, off);
  if (rc == CAIRN_OK && sync)
    rc = f->methods->sync(f);
  f->methods->close(f);
  return rc;
}

static void test_fault_drop_and_keep(void) {
  int dropped = 0, kept = 0;
  for (uint64_t seed = 0; seed < SEEDS; seed++) {
    fault_reset();
    fault_durable_file("d/f", "old!", 4);
    CHECK_OK(fault_write("d/f", "new!", 4, 0, 0));
    char got[4];
    CHECK_OK(fault_file_peek("d/f", 0, got, 4));
    CHECK(memcmp(got, "new!", 4) == 0); /* the program sees its write */
    fault_crash(seed);
    CHECK_OK(fault_file_peek("d/f", 0, got, 4));
    /* One sector: atomic, so all old or all new. */
    CHECK(memcmp(got, "old!", 4) == 0 || memcmp(got, "new!", 4) == 0);
    dropped += memcmp(got, "old!", 4) == 0;
    kept += memcmp(got, "new!", 4) == 0;
  }
  CHECK(dropped > 0);
  CHECK(kept > 0);

  /* A crash is a function of the seed. */
  char first[4], again[4];
  for (int round = 0; round < 2; round++) {
    fault_reset();
    fault_durable_file("d/f", "old!", 4);
    CHECK_OK(fault_write("d/f", "new!", 4, 0, 0));
    CHECK_OK(fault_write("d/f", "NEW?", 4, 2000, 0));
    fault_crash(12345);
    CHECK_OK(fault_file_peek("d/f", 0, round ? again : first, 4));
  }
  CHECK(memcmp(first, again, 4) == 0);

  /* Appends that are dropped do not grow the file. */
  int small = 0;
  for (uint64_t seed = 0; seed < SEEDS; seed++) {
    fault_reset();
    fault_durable_file("d/f", "old!", 4);
    CHECK_OK(fault_write("d/f", "tail", 4, 4096, 0));
    fault_crash(seed);
    long long size = fault_file_size("d/f");
    CHECK(size == 4 || size == 4100);
    small += size == 4;
  }
  CHECK(small > 0);
}

static void test_fault_synced_survive(void) {
  unsigned char data[3000];
  for (size_t i = 0; i < sizeof data; i++)
    data[i] = (unsigned char)(i * 31 + 7);
  for (uint64_t seed = 0; seed < SEEDS; seed++) {
    fault_reset();
    fault_durable_file("d/f", "x", 1);
    CHECK_OK(fault_write("d/f", data, sizeof data, 700, 1));
    /* A later unsynced truncate or write may or may not survive, but must
     * never take the synced bytes with it except where it overwrote them. */
    CHECK_OK(fault_write("d/f", "zz", 2, 10000, 0));
    fault_crash(seed);
    unsigned char got[sizeof data];
    CHECK_OK(fault_file_peek("d/f", 700, got, sizeof got));
    CHECK(memcmp(got, data, sizeof data) == 0);
    long long size = fault_file_size("d/f");
    CHECK(size == 3700 || size == 10002);
  }
}

static void test_fault_torn(void) {
  enum { N = 8 * 512 };
  static unsigned char old[N], neu[N], got[N];
  memset(old, 'o', N);
  memset(neu, 'n', N);
  int mixed = 0, holes = 0;
  for (uint64_t seed = 0; seed < 4 * SEEDS; seed++) {
    fault_reset();
    fault_durable_file("d/t", old, N);
    CHECK_OK(fault_write("d/t", neu, N, 0, 0));
    fault_crash(seed);
    CHECK(fault_file_size("d/t") == N);
    CHECK_OK(fault_file_peek("d/t", 0, got, N));
    int news = 0, prefix = 1;
    for (int s = 0; s < 8; s++) {
      int all_new = fill_check(got + s * 512, 512, 'n');
      int all_old = fill_check(got + s * 512, 512, 'o');
      if (!CHECK(all_new || all_old))
        break;
      news += all_new;
      if (all_new && s > 0 && fill_check(got + (s - 1) * 512, 512, 'o'))
        prefix = 0;
    }
    mixed += news > 0 && news < 8;
    holes += !prefix;
  }
  CHECK(mixed > 0); /* tearing happens */
  CHECK(holes > 0); /* and sometimes not as a prefix (reordered sectors) */

  /* An unaligned write tears on absolute sector boundaries: within each
   * sector its bytes are all old or all new, and outside it nothing moves. */
  for (uint64_t seed = 0; seed < 2 * SEEDS; seed++) {
    fault_reset();
    fault_durable_file("d/t", old, N);
    CHECK_OK(fault_write("d/t", neu, 1500, 100, 0)); /* sectors 0..3 */
    fault_crash(seed);
    CHECK_OK(fault_file_peek("d/t", 0, got, N));
    CHECK(fill_check(got, 100, 'o'));
    CHECK(fill_check(got + 1600, N - 1600, 'o'));
    for (int s = 0; s < 4; s++) {
      size_t lo = s == 0 ? 100 : (size_t)s * 512;
      size_t hi = s == 3 ? 1600 : (size_t)(s + 1) * 512;
      CHECK(fill_check(got + lo, hi - lo, 'n') ||
            fill_check(got + lo, hi - lo, 'o'));
    }
  }
}

static void test_fault_crash_at(void) {
  fault_reset();
  fault_durable_file("d/c", "AAAA", 4);
  fault_durable_file("d/r", "R", 1);
  fault_clear_injection();
  CHECK(fault_op_count() == 0);
  cairn_file *f = NULL;
  if (!CHECK_OK(fp->open(fp, "d/c", 0, &f)))
    return;
  fault_set_crash_at(2);
  CHECK_OK(f->methods->write(f, "BB", 2, 0)); /* op 0 */
  CHECK_OK(f->methods->sync(f));              /* op 1 */
  CHECK(!fault_crashed());
  CHECK(fault_op_count() == 2);
  CHECK_RC(f->methods->write(f, "CC", 2, 2), CAIRN_IO); /* op 2: power off */
  CHECK(strstr(cairn_errmsg(), "simulated power loss") != NULL);
  CHECK(fault_crashed());
  /* Everything after fails too and changes nothing; reads still work. */
  CHECK_RC(f->methods->write(f, "DDDDDD", 6, 0), CAIRN_IO);
  CHECK_RC(f->methods->sync(f), CAIRN_IO);
  CHECK_RC(f->methods->truncate(f, 0), CAIRN_IO);
  CHECK_RC(fp->rename_noreplace(fp, "d/r", "d/r2"), CAIRN_IO);
  CHECK_RC(fp->sync_dir(fp, "d/c"), CAIRN_IO);
  CHECK(strstr(cairn_errmsg(), "simulated power loss") != NULL);
  char got[8] = {0};
  uint64_t size = 0;
  CHECK_OK(f->methods->read(f, got, 4, 0));
  CHECK(memcmp(got, "BBAA", 4) == 0);
  CHECK_OK(f->methods->size(f, &size));
  CHECK(size == 4);
  CHECK(fault_file_size("d/r") == 1 && fault_file_size("d/r2") == -1);
  fault_crash(7);
  CHECK(!fault_crashed());
  CHECK(fault_op_count() == 0);
  /* The handle is stale now: only close is allowed. */
  CHECK_RC(f->methods->read(f, got, 4, 0), CAIRN_IO);
  CHECK_RC(f->methods->write(f, "x", 1, 0), CAIRN_IO);
  f->methods->close(f);
  CHECK_OK(fault_file_peek("d/c", 0, got, 4));
  CHECK(memcmp(got, "BBAA", 4) == 0); /* op 0 was synced by op 1 */
  CHECK(fault_file_size("d/c") == 4);
  /* Power is back: operations work again. */
  CHECK_OK(fault_write("d/c", "E", 1, 0, 1));

  /* Crash at op 0 of a fresh count: the very first write has no effect. */
  fault_clear_injection();
  fault_set_crash_at(0);
  CHECK_RC(fault_write("d/c", "F", 1, 0, 1), CAIRN_IO);
  CHECK_OK(fault_file_peek("d/c", 0, got, 1));
  CHECK(got[0] == 'E');
  fault_crash(1);
  CHECK_OK(fault_file_peek("d/c", 0, got, 1));
  CHECK(got[0] == 'E');
  fault_set_crash_at(-1);
}

static void test_fault_errors(void) {
  fault_reset();
  fault_durable_file("d/e", "1234", 4);
  fault_clear_injection();
  cairn_file *f = NULL;
  if (!CHECK_OK(fp->open(fp, "d/e", 0, &f)))
    return;
  char got[8];
  /* One-shot ENOSPC at op 1. */
  fault_set_error_at(1, CAIRN_NOSPC, 0);
  CHECK_OK(f->methods->write(f, "a", 1, 0));                 /* op 0 */
  CHECK_RC(f->methods->write(f, "bbbb", 4, 4), CAIRN_NOSPC); /* op 1 */
  CHECK(strstr(cairn_errmsg(), "injected ENOSPC") != NULL);
  CHECK(fault_file_size("d/e") == 4);        /* no effect */
  CHECK_OK(f->methods->write(f, "c", 1, 1)); /* op 2: works again */
  CHECK_OK(f->methods->sync(f));             /* op 3 */
  CHECK_OK(fault_file_peek("d/e", 0, got, 4));
  CHECK(memcmp(got, "ac34", 4) == 0);
  CHECK(!fault_crashed());

  /* One-shot EIO on a sync: the write before it stays unsynced. */
  fault_clear_injection();
  fault_set_error_at(1, CAIRN_IO, 0);
  CHECK_OK(f->methods->write(f, "X", 1, 3));
  CHECK_RC(f->methods->sync(f), CAIRN_IO);
  CHECK(strstr(cairn_errmsg(), "injected EIO") != NULL);
  CHECK_OK(f->methods->sync(f));

  /* Persistent ENOSPC from op 1: later writes and syncs fail too, while
   * reads, truncates and renames still work; clearing ends it. */
  fault_clear_injection();
  fault_set_error_at(1, CAIRN_NOSPC, 1);
  CHECK_OK(f->methods->write(f, "q", 1, 0));
  CHECK_RC(f->methods->write(f, "r", 1, 0), CAIRN_NOSPC);
  CHECK_RC(f->methods->write(f, "s", 1, 0), CAIRN_NOSPC);
  CHECK_RC(f->methods->sync(f), CAIRN_NOSPC);
  CHECK(strstr(cairn_errmsg(), "injected ENOSPC") != NULL);
  CHECK_OK(f->methods->read(f, got, 1, 0));
  CHECK(got[0] == 'q');
  CHECK_OK(f->methods->truncate(f, 4));
  CHECK(!fault_crashed());
  fault_clear_injection();
  CHECK_OK(f->methods->write(f, "t", 1, 0));
  CHECK_OK(f->methods->sync(f));
  f->methods->close(f);
  CHECK_OK(fault_file_peek("d/e", 0, got, 4));
  CHECK(memcmp(got, "tc3X", 4) == 0);
}

static void test_fault_namespace(void) {
  /* A new file whose directory entry was never synced vanishes, even though
   * its data was synced. */
  for (uint64_t seed = 0; seed < 8; seed++) {
    fault_reset();
    cairn_file *f = NULL;
    if (!CHECK_OK(fp->open(fp, "d/new", CAIRN_PF_CREATE | CAIRN_PF_EXCL, &f)))
      return;
    CHECK_OK(f->methods->write(f, "data", 4, 0));
    CHECK_OK(f->methods->sync(f));
    f->methods->close(f);
    fault_crash(seed);
    CHECK(fault_file_size("d/new") == -1);
    CHECK_RC(fp->open(fp, "d/new", 0, &f), CAIRN_NOTFOUND);
  }
  /* sync_dir makes it stay. */
  for (uint64_t seed = 0; seed < 8; seed++) {
    fault_reset();
    fault_durable_file("d/new", "data", 4);
    fault_crash(seed);
    CHECK(fault_file_size("d/new") == 4);
    CHECK(file_holds(fp, "d/new", "data"));
  }
  /* sync_dir covers only its own directory. */
  fault_reset();
  make_file(fp, "d/one", "1");
  make_file(fp, "e/two", "2");
  make_file(fp, "top", "3");
  CHECK_OK(fp->sync_dir(fp, "d/anything"));
  fault_crash(3);
  CHECK(fault_file_size("d/one") == 1);
  CHECK(fault_file_size("e/two") == -1);
  CHECK(fault_file_size("top") == -1);

  /* A rename not yet dir-synced reverts; once synced it stays. */
  fault_reset();
  fault_durable_file("d/a", "A", 1);
  CHECK_OK(fp->rename_noreplace(fp, "d/a", "d/b"));
  CHECK(fault_file_size("d/a") == -1 && fault_file_size("d/b") == 1);
  fault_crash(5);
  CHECK(fault_file_size("d/a") == 1 && fault_file_size("d/b") == -1);
  CHECK(file_holds(fp, "d/a", "A"));
  CHECK_OK(fp->rename_noreplace(fp, "d/a", "d/b"));
  CHECK_OK(fp->sync_dir(fp, "d/b"));
  fault_crash(5);
  CHECK(fault_file_size("d/a") == -1 && fault_file_size("d/b") == 1);
  CHECK(file_holds(fp, "d/b", "A"));

  /* A remove not yet dir-synced reverts too. */
  CHECK_OK(fp->remove(fp, "d/b"));
  CHECK(fault_file_size("d/b") == -1);
  fault_crash(6);
  CHECK(file_holds(fp, "d/b", "A"));
  CHECK_OK(fp->remove(fp, "d/b"));
  CHECK_OK(fp->sync_dir(fp, "d/b"));
  fault_crash(6);
  CHECK(fault_file_size("d/b") == -1);

  /* Locks die with the power: a handle from before the crash no longer
   * holds anything. */
  fault_reset();
  fault_durable_file("d/l", "L", 1);
  cairn_file *a = open_file(fp, "d/l", 0);
  if (a) {
    CHECK_OK(a->methods->lock(a, CAIRN_LOCK_EXCLUSIVE));
    fault_crash(1);
    cairn_file *b = open_file(fp, "d/l", 0);
    if (b) {
      CHECK_OK(b->methods->lock(b, CAIRN_LOCK_EXCLUSIVE));
      a->methods->close(a); /* must not release b's lock */
      a = NULL;
      cairn_file *c = open_file(fp, "d/l", 0);
      if (c) {
        CHECK_RC(c->methods->lock(c, CAIRN_LOCK_SHARED), CAIRN_BUSY);
        c->methods->close(c);
      }
      b->methods->close(b);
    }
    if (a)
      a->methods->close(a);
  }
}

static void test_fault_misc(void) {
  fault_reset();
  fault_durable_file("d/p", "abcdef", 6);
  /* poke changes both images, including under pending writes. */
  CHECK_OK(fault_write("d/p", "XYZ", 3, 0, 0));
  CHECK_OK(fault_file_poke("d/p", 1, "!!", 2));
  char got[6];
  CHECK_OK(fault_file_peek("d/p", 0, got, 6));
  CHECK(memcmp(got, "X!!def", 6) == 0);
  fault_crash(2);
  CHECK_OK(fault_file_peek("d/p", 0, got, 6));
  CHECK(memcmp(got, "X!!def", 6) == 0 || memcmp(got, "a!!def", 6) == 0);
  CHECK_RC(fault_file_poke("d/none", 0, "x", 1), CAIRN_NOTFOUND);
  CHECK_RC(fault_file_peek("d/none", 0, got, 1), CAIRN_NOTFOUND);
  CHECK(fault_file_size("d/none") == -1);

  /* Unsynced truncates are resolved at a crash like writes. */
  int kept = 0, dropped = 0;
  for (uint64_t seed = 0; seed < SEEDS; seed++) {
    fault_reset();
    fault_durable_file("d/p", "abcdef", 6);
    cairn_file *f = open_file(fp, "d/p", 0);
    if (!f)
      return;
    CHECK_OK(f->methods->truncate(f, 2));
    f->methods->close(f);
    fault_crash(seed);
    long long size = fault_file_size("d/p");
    CHECK(size == 2 || size == 6);
    kept += size == 2;
    dropped += size == 6;
  }
  CHECK(kept > 0 && dropped > 0);

  /* fault_reset removes every file and stales every handle. */
  cairn_file *f = open_file(fp, "d/p", 0);
  fault_reset();
  CHECK(fault_file_size("d/p") == -1);
  if (f) {
    char c;
    CHECK_RC(f->methods->read(f, &c, 1, 0), CAIRN_IO);
    f->methods->close(f);
  }
}

static void test_fault(void) {
  fault_platform_install();
  fp = cairn_platform_find("fault");
  if (!CHECK(fp != NULL))
    return;
  fault_reset();
  test_contract(fp, "fdir");
  test_fault_drop_and_keep();
  test_fault_synced_survive();
  test_fault_torn();
  test_fault_crash_at();
  test_fault_errors();
  test_fault_namespace();
  test_fault_misc();
  fault_reset();
}

int main(void) {
  test_registry();
  test_memory();
#ifdef CAIRN_HAVE_UNIX_PLATFORM
  test_unix();
#endif
#ifdef __wasi__
  test_wasi();
#endif
  test_fault();
  return test_summary();
}
