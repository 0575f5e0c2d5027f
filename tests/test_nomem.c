/*
 * test_nomem.c — out-of-memory injection: every allocation an operation
 * makes is made to fail in turn, and the engine must cope.
 *
 * This program defines malloc, calloc, realloc, free (and the aligned
 * allocators) itself, forwarding to glibc's __libc_* functions, and mmap
 * for anonymous maps (the overlay's 2 MiB blocks and large indexes on
 * Linux; file maps pass through), so every allocation of the engine (and
 * of the unix platform under it) goes through a countdown: armed with k, the
 * k-th allocation from then on fails (mode "once"), or every allocation from
 * the k-th on fails (mode "every"). The harness arms it only around the
 * operation under test.
 *
 * For each scenario (create, open with log replay, read-only open, a write
 * txn with small and overflow values, deletes and a cursor, a commit that
 * triggers a checkpoint, cairn_checkpoint, column family create/drop and
 * the drop of one only the log holds, the overlay's hash index growing,
 * an overlay large enough for its 2 MiB mapped blocks (Linux),
 * read txns with cursors, cairn_check, cairn_backup, cairn_close, a NOLOG
 * commit, and reads, a checkpoint and cairn_check through the page cache of
 * CAIRN_OPEN_NOMMAP) and each mode, k runs 1, 2, 3, ... until the operation
 * completes with no failure injected. After each run it asserts:
 *   - every call that failed returned CAIRN_NOMEM (or CAIRN_BADTXN in a txn
 *     that had failed) with a non-empty cairn_errmsg();
 *   - values read while allocations failed are the right ones;
 *   - the handle still reads exactly the last committed state, and a write
 *     txn on it either commits or is refused with a message;
 *   - after close and a reopen without injection the database holds exactly
 *     the last committed state (a simple model: per column family an array
 *     of key -> value seed/length) and cairn_check passes — except that a
 *     commit that failed on a handle that then refuses writes may have been
 *     logged whole (cairn.h, cairn_commit: indeterminate then), so there
 *     either state is accepted;
 *   - the process holds as many live allocations as before the run (no
 *     leak; the valgrind stage checks the same with --leak-check=full).
 *
 * Interposing malloc needs glibc and no sanitizer runtime that owns malloc:
 * under ASan/MSan/TSan, on WASI and Emscripten, and wherever the program's
 * malloc is replaced anyway (a self-test at start finds out), it prints why
 * and exits 0. valgrind's memcheck replaces it too unless run with
 * --soname-synonyms=somalloc=nouserintercepts (the valgrind stage of
 * tests/run.sh passes that): then our malloc forwards to memcheck's, which
 * checks every failure path for memory errors and leaks.
 * Every k is swept down to CAIRN_TEST_SCALE 0.1 (the valgrind stage: runs
 * are cheap, and memcheck is where the failure paths are checked for
 * uninitialised reads and use after free); below that every
 * round(0.1/scale)-th k.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn.h"
#include "error.h"
#include "test_util.h"

#include "test_support.h"

/* ---- the interposer ------------------------------------------------------ */

#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(memory_sanitizer) ||     \
    __has_feature(thread_sanitizer)
#define NM_SANITIZED 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define NM_SANITIZED 1
#endif
#if defined(__GLIBC__) && !defined(__EMSCRIPTEN__) && !defined(__wasi__) &&    \
    !defined(NM_SANITIZED)
#define NM_ENABLED 1
#define NM_BUILT 1
#define NM_WHY ""
#else
#define NM_BUILT 0
#if defined(NM_SANITIZED)
#define NM_WHY "a sanitizer"
#else
#define NM_WHY "no glibc"
#endif
#endif

static atomic_long nm_left = -1; /* allocations to let through; < 0: off */
static atomic_int nm_every;      /* after the first failure, fail all */
static atomic_long nm_injected;  /* failures injected since armed */
static atomic_long nm_live;      /* blocks allocated and not freed */

static void nm_arm(long k, int every) {
  atomic_store(&nm_injected, 0);
  atomic_store(&nm_every, every);
  atomic_store(&nm_left, k - 1);
}

/* Disarm; returns the number of failures injected. */
static long nm_disarm(void) {
  atomic_store(&nm_left, -1);
  return atomic_load(&nm_injected);
}

#ifdef NM_ENABLED
extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t n);
extern void *__libc_memalign(size_t align, size_t n);
extern void __libc_free(void *p);

/* Called at the first injected failure of a run: a place for a debugger's
 * breakpoint (see main's CAIRN_NOMEM_ONLY). */
__attribute__((noinline)) void nm_first_failure(void);
void nm_first_failure(void) { __asm__ volatile(""); }

static int nm_fail(void) {
  long left = atomic_load(&nm_left);
  if (left < 0)
    return 0;
  if (left > 0) {
    atomic_store(&nm_left, left - 1);
    return 0;
  }
  if (!atomic_load(&nm_every))
    atomic_store(&nm_left, -1);
  if (atomic_fetch_add(&nm_injected, 1) == 0)
    nm_first_failure();
  errno = ENOMEM;
  return 1;
}

static void *nm_count(void *p) {
  if (p)
    atomic_fetch_add(&nm_live, 1);
  return p;
}

void *malloc(size_t n) { return nm_fail() ? NULL : nm_count(__libc_malloc(n)); }

void *calloc(size_t n, size_t size) {
  return nm_fail() ? NULL : nm_count(__libc_calloc(n, size));
}

void free(void *p) {
  if (p)
    atomic_fetch_sub(&nm_live, 1);
  __libc_free(p);
}

void *realloc(void *p, size_t n) {
  if (!p)
    return malloc(n);
  if (n == 0) { /* glibc frees and returns NULL */
    free(p);
    return NULL;
  }
  return nm_fail() ? NULL : __libc_realloc(p, n);
}

void *aligned_alloc(size_t align, size_t n) {
  return nm_fail() ? NULL : nm_count(__libc_memalign(align, n));
}

int posix_memalign(void **out, size_t align, size_t n) {
  if (align < sizeof(void *) || (align & (align - 1)))
    return EINVAL;
  void *p = nm_fail() ? NULL : nm_count(__libc_memalign(align, n));
  if (!p)
    return ENOMEM;
  *out = p;
  return 0;
}

/* Anonymous maps count as allocations (not as live blocks: munmap is not
 * interposed); glibc's malloc maps through its own internal entry, so only
 * the engine's maps come here. 64-bit hosts only: SYS_mmap takes its six
 * arguments directly there. */
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#if defined(SYS_mmap) && UINTPTR_MAX > 0xffffffffu
void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
  if ((flags & MAP_ANONYMOUS) && nm_fail())
    return MAP_FAILED;
  return (void *)syscall(SYS_mmap, addr, len, prot, flags, fd, off);
}
#endif
#endif

#ifdef NM_ENABLED
#include <pthread.h>
static void *idle_thread(void *arg) { return arg; }
/* glibc keeps a joined thread's stack and its TLS block (malloc'd) for the
 * next thread: two threads alive at once up front (a database runs a
 * background sync thread and a page warmer) keep the first ones a run
 * starts from counting as a leak of that run. */
static void warm_thread_cache(void) {
  pthread_t t[2];
  int ok[2];
  for (int i = 0; i < 2; i++)
    ok[i] = pthread_create(&t[i], NULL, idle_thread, NULL) == 0;
  for (int i = 0; i < 2; i++)
    if (ok[i])
      pthread_join(t[i], NULL);
}
#else
static void warm_thread_cache(void) {}
#endif

/* 1 if an armed allocation really fails (our malloc is the one called). */
static int nm_works(void) {
  void *(*volatile alloc)(size_t) = malloc;
  void (*volatile release)(void *) = free;
  nm_arm(1, 0);
  void *p = alloc(64);
  long injected = nm_disarm();
  release(p);
  return p == NULL && injected == 1;
}

/* ---- the model ----------------------------------------------------------- */

#define NCF 3
#define NK 640
#define BIG 9000           /* an overflow value at 4 KiB pages */
#define HUGE (1100u << 10) /* over checkpoint_mib = 1 by itself */
#define DB "n.db"          /* every scenario's database */
#define COPY "r.db"        /* a copy of it with a log to replay */
#define BACKUP "n.backup"
#define RESTORED "x.db" /* cairn_restore's destination */

static const char *const cf_names[NCF] = {"default", "side", "side2"};

typedef struct model {
  uint8_t exists[NCF];
  uint8_t present[NCF][NK];
  uint32_t len[NCF][NK];
  uint32_t ver[NCF][NK];
} model;

static uint64_t vseed(int ci, int key, uint32_t ver) {
  return ((uint64_t)(ci + 1) * 1000003u) ^ ((uint64_t)key * 7919u) ^
         ((uint64_t)ver << 32);
}

static void model_init(model *m) {
  memset(m, 0, sizeof *m);
  m->exists[0] = 1;
}

static char keybuf[16];
static cairn_slice key_of(int key) {
  snprintf(keybuf, sizeof keybuf, "k%04d", key);
  return ts_sl(keybuf, 5);
}

/* Entries of cf ci with from <= key < to. */
static int count(const model *m, int ci, int from, int to) {
  int n = 0;
  for (int i = from; i < to; i++)
    n += m->present[ci][i];
  return n;
}

/* The index of a key "kNNNN", or -1. */
static int key_index(cairn_slice k) {
  const char *p = k.data;
  int i = 0;
  if (k.size != 5 || p[0] != 'k')
    return -1;
  for (int j = 1; j < 5; j++) {
    if (p[j] < '0' || p[j] > '9')
      return -1;
    i = i * 10 + (p[j] - '0');
  }
  return i;
}

static uint8_t *vbuf; /* HUGE bytes, allocated before anything is armed */

/* Streams for dump, load and stats output, in buffers allocated before
 * anything is armed (a callback must not allocate). */
#define STREAM (1u << 20)
typedef struct stream {
  char *buf;
  size_t len, pos;
} stream;
static stream ref, out; /* a dump made without injection; one made with */

static int stream_write(void *ctx, const void *p, size_t n) {
  stream *s = ctx;
  if (n > STREAM - s->len)
    return CAIRN_NOSPC;
  memcpy(s->buf + s->len, p, n);
  s->len += n;
  return CAIRN_OK;
}

static int stream_read(void *ctx, void *p, size_t cap, size_t *got) {
  stream *s = ctx;
  size_t n = s->len - s->pos < cap ? s->len - s->pos : cap;
  memcpy(p, s->buf + s->pos, n);
  s->pos += n;
  *got = n;
  return CAIRN_OK;
}

/* ---- one run of one scenario --------------------------------------------- */

typedef struct run {
  const char *scen;
  long k;
  int every;
  const char *path;  /* the database the run ends with */
  unsigned flags;    /* extra open flags (CAIRN_OPEN_NOLOG) */
  uint32_t ckpt_mib; /* options.checkpoint_mib */
  cairn_db *db;      /* open handle, or NULL */
  int rdonly;        /* db was opened read-only */
  model committed;   /* what the database holds */
  model pending;     /* what the write txn under way holds */
  model alt;         /* a commit that failed: maybe logged whole */
  int have_alt;
  int failed;       /* a call failed during the operation */
  int setting_up;   /* in the scenario's setup */
  int no_db_ok;     /* a create failed: there may be no database */
  int alt_always;   /* alt stays possible whatever the probe does */
  int took_alt;     /* the reopened database held alt */
  int completed;    /* the operation got to its end with no failure */
  int checkpointed; /* checkpoints counted during the operation */
} run;

static run R;

/* A call under injection: OK, or a failure that must be CAIRN_NOMEM (or
 * CAIRN_BADTXN once the txn failed) with a message. Returns rc. */
static int call(int rc, const char *what, int line) {
  if (rc == CAIRN_OK)
    return rc;
  /* CAIRN_BADTXN only after a failure the caller saw (a begin that cannot
   * set the txn up fails itself, it returns no failed txn). */
  int want = rc == CAIRN_NOMEM || (rc == CAIRN_BADTXN && R.failed);
  if (!want || !cairn_errmsg()[0]) {
    ts_set_ctx("%s, %s mode, k=%ld: line %d: %s", R.scen,
               R.every ? "every" : "once", R.k, line, what);
    TCHECK(want);
    TCHECK(cairn_errmsg()[0] != 0);
    printf("  returned %s, message \"%s\"\n", cairn_strerror(rc),
           cairn_errmsg());
  }
  R.failed = 1;
  return rc;
}
#define CALL(e) (cairn__clearerr(), call((e), #e, __LINE__))
/* A cursor move: CAIRN_NOTFOUND at the end is no failure. */
static int move(int rc, const char *what, int line) {
  return rc == CAIRN_NOTFOUND ? rc : call(rc, what, line);
}
#define MOVE(e) (cairn__clearerr(), move((e), #e, __LINE__))

/* A check outside injection, with the run named. */
#define RCHECK(c)                                                              \
  (ts_set_ctx("%s, %s mode, k=%ld", R.scen, R.every ? "every" : "once", R.k),  \
   TCHECK(c))
#define RCHECK_OK(e)                                                           \
  (ts_set_ctx("%s, %s mode, k=%ld", R.scen, R.every ? "every" : "once", R.k),  \
   TCHECK_OK(e))

static void options(cairn_options *o, unsigned flags) {
  ts_options(o, NULL, 4096);
  o->flags |= R.flags | flags;
  o->checkpoint_mib = R.ckpt_mib;
}

static int cf_handle(cairn_txn *t, int ci, unsigned flags, cairn_cf *cf) {
  *cf = CAIRN_DEFAULT_CF;
  return ci ? cairn_cf_open(t, cf_names[ci], flags, cf) : CAIRN_OK;
}

/* put/del in t, and in R.pending when it succeeded. */
static int put(cairn_txn *t, int ci, int key, uint32_t len) {
  cairn_cf cf;
  int rc = CALL(cf_handle(t, ci, 0, &cf));
  if (rc)
    return rc;
  uint32_t ver = R.pending.ver[ci][key] + 1;
  ts_fill(vbuf, len, vseed(ci, key, ver));
  rc = CALL(cairn_put(t, cf, key_of(key), ts_sl(vbuf, len), 0));
  if (!rc) {
    R.pending.present[ci][key] = 1;
    R.pending.len[ci][key] = len;
    R.pending.ver[ci][key] = ver;
  }
  return rc;
}

static int del(cairn_txn *t, int ci, int key) {
  cairn_cf cf;
  int rc = CALL(cf_handle(t, ci, 0, &cf));
  if (rc)
    return rc;
  rc = CALL(cairn_del(t, cf, key_of(key)));
  if (!rc)
    R.pending.present[ci][key] = 0;
  return rc;
}

/* get in t: OK with the model's value, or a failure. */
static int get(cairn_txn *t, const model *m, int ci, int key) {
  cairn_cf cf;
  int rc = CALL(cf_handle(t, ci, 0, &cf));
  if (rc)
    return rc;
  cairn_slice v;
  cairn__clearerr();
  rc = cairn_get(t, cf, key_of(key), &v);
  if (rc == CAIRN_NOTFOUND) {
    RCHECK(!m->present[ci][key]);
    return CAIRN_OK;
  }
  if (call(rc, "cairn_get", __LINE__))
    return rc;
  RCHECK(m->present[ci][key] &&
         ts_value_eq(v.data, v.size, vseed(ci, key, m->ver[ci][key]),
                     m->len[ci][key]));
  return CAIRN_OK;
}

static int begin_write(cairn_txn **t) {
  R.pending = R.committed;
  return CALL(cairn_begin(R.db, 0, t));
}

/* Commit t (or abort it when something failed, every other k, to test that
 * a failed txn's commit commits nothing). */
static int end_write(cairn_txn *t) {
  if (R.failed && R.k % 2) {
    cairn_abort(t);
    return CAIRN_OK;
  }
  int had_failed = R.failed;
  /* Setup commits are lazy (fewer syncs; the operation's sync commit or
   * checkpoint makes them durable, close does anyway). */
  int rc = CALL(cairn_commit_ex(t, R.setting_up ? CAIRN_DURABILITY_LAZY
                                                : CAIRN_DURABILITY_DEFAULT));
  if (!rc) {
    R.committed = R.pending;
    R.completed = !had_failed; /* the txn ran to its end */
  } else if (!had_failed) {
    R.alt = R.pending; /* failed in the commit itself */
    R.have_alt = 1;
  }
  return rc;
}

/* ---- comparing a database with a model ----------------------------------- */

typedef struct cf_seen {
  int seen[NCF];
  int other;
} cf_seen;

static int on_cf(void *ctx, const char *name, cairn_cf cf) {
  cf_seen *s = ctx;
  (void)cf;
  for (int i = 0; i < NCF; i++)
    if (strcmp(name, cf_names[i]) == 0) {
      s->seen[i]++;
      return 0;
    }
  s->other++;
  return 0;
}

/* Everything a read txn of db sees against m: 0 equal, 1 different (why
 * says how), or the engine's error. Under injection the walk may fail. */
static int compare(cairn_db *db, const model *m, char *why, size_t whyn) {
  cairn_txn *t = NULL;
  int rc = cairn_begin(db, CAIRN_TXN_RDONLY, &t);
  if (rc) {
    snprintf(why, whyn, "begin: %s", cairn_errmsg());
    return rc;
  }
  cf_seen s = {{0}, 0};
  rc = cairn_cf_list(t, on_cf, &s);
  int diff = 0;
  if (!rc) {
    for (int i = 0; i < NCF; i++)
      if (s.seen[i] != m->exists[i]) {
        snprintf(why, whyn, "cf %s: seen %d, expected %d", cf_names[i],
                 s.seen[i], m->exists[i]);
        diff = 1;
      }
    if (s.other) {
      snprintf(why, whyn, "%d unexpected column families", s.other);
      diff = 1;
    }
  }
  for (int ci = 0; ci < NCF && !rc && !diff; ci++) {
    if (!m->exists[ci])
      continue;
    cairn_cf cf;
    cairn_cursor *c = NULL;
    rc = cf_handle(t, ci, 0, &cf);
    if (!rc)
      rc = cairn_cursor_open(t, cf, &c);
    int i = 0;
    for (int step = rc ? rc : cairn_cursor_first(c); !rc && !diff;
         step = cairn_cursor_next(c)) {
      while (i < NK && !m->present[ci][i])
        i++;
      if (step == CAIRN_NOTFOUND) {
        if (i < NK) {
          snprintf(why, whyn, "cf %s: k%04d missing at the end", cf_names[ci],
                   i);
          diff = 1;
        }
        break;
      }
      if (step) {
        rc = step;
        break;
      }
      cairn_slice k, v;
      if ((rc = cairn_cursor_get(c, &k, &v)) != CAIRN_OK)
        break;
      char want[16];
      snprintf(want, sizeof want, "k%04d", i);
      if (i >= NK || k.size != 5 || memcmp(k.data, want, 5) != 0) {
        snprintf(why, whyn, "cf %s: key %.*s where %s was expected",
                 cf_names[ci], (int)k.size, (const char *)k.data,
                 i < NK ? want : "the end");
        diff = 1;
      } else if (!ts_value_eq(v.data, v.size, vseed(ci, i, m->ver[ci][i]),
                              m->len[ci][i])) {
        snprintf(why, whyn,
                 "cf %s: %s has the wrong value (%zu bytes, "
                 "expected version %u, %u bytes)",
                 cf_names[ci], want, v.size, m->ver[ci][i], m->len[ci][i]);
        diff = 1;
      }
      i++;
    }
    cairn_cursor_close(c);
  }
  if (rc && !diff)
    snprintf(why, whyn, "walk: %s: %s", cairn_strerror(rc), cairn_errmsg());
  cairn_abort(t);
  return diff ? 1 : rc;
}

/* ---- setups (no injection) ----------------------------------------------- */

static void remove_files(void) {
  const char *names[] = {DB, DB "-wal", COPY, COPY "-wal", BACKUP, RESTORED};
  for (size_t i = 0; i < sizeof names / sizeof *names; i++)
    remove(names[i]);
}

static int setup_open(void) {
  cairn_options o;
  options(&o, 0);
  R.path = DB;
  return RCHECK_OK(cairn_open(DB, &o, &R.db));
}

/* A setup commit: fn fills the txn. */
static int setup_commit(void (*fn)(cairn_txn *t)) {
  cairn_txn *t = NULL;
  if (!RCHECK_OK(begin_write(&t)))
    return 0;
  fn(t);
  return RCHECK(!R.failed) && RCHECK_OK(end_write(t));
}

static void fill_base(cairn_txn *t) {
  cairn_cf cf;
  CALL(cairn_cf_open(t, "side", CAIRN_CF_CREATE, &cf));
  R.pending.exists[1] = 1;
  for (int i = 0; i < 30; i++)
    put(t, 0, i, i % 7 == 3 ? BIG : 10 + (uint32_t)i);
  for (int i = 0; i < 10; i++)
    put(t, 1, i, i == 4 ? BIG : 20);
}

static void fill_more(cairn_txn *t) {
  for (int i = 0; i < 30; i += 4)
    put(t, 0, i, 30 + (uint32_t)i);
  put(t, 0, 10, BIG); /* small -> overflow */
  del(t, 0, 5);
  del(t, 0, 17); /* an overflow value in the tree */
  put(t, 1, 11, 7);
  put(t, 0, 40, 0); /* an empty value */
}

static int copy_file(const char *from, const char *to) {
  FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
  int ok = in && out;
  char buf[8192];
  size_t n;
  while (ok && (n = fread(buf, 1, sizeof buf, in)) > 0)
    ok = fwrite(buf, 1, n, out) == n;
  if (in)
    fclose(in);
  if (out && fclose(out))
    ok = 0;
  return ok;
}

/* A setup has two parts: "pre" makes files once per sweep (they are copied
 * back before each run: creating the database and its checkpoint costs
 * syncs), "post" runs before each run on the restored files (live lazy
 * commits: the log and the in-memory overlay a run starts with). */

/* The checkpointed tree every database starts from. */
static void pre_base(void) {
  remove_files();
  if (setup_open() && setup_commit(fill_base) &&
      RCHECK_OK(cairn_checkpoint(R.db)))
    RCHECK_OK(cairn_close(R.db));
  R.db = NULL;
}

static void pre_none(void) { remove_files(); }

static void pre_nolog(void) {
  R.flags = CAIRN_OPEN_NOLOG;
  pre_base();
}

/* Reads through the page cache (no memory map): cache entries are
 * allocated on reads. */
static void pre_cached(void) {
  R.flags = CAIRN_OPEN_NOMMAP;
  pre_base();
}

static void pre_ckpt(void) {
  R.ckpt_mib = 1;
  pre_base();
}

/* The usual database: the checkpointed tree plus commits in the log. */
static int post_more(void) { return setup_open() && setup_commit(fill_more); }

static void post_db(void) { post_more(); }

static void post_none(void) {}

/* A copy of the usual database taken while it was open: its log holds the
 * commits after the checkpoint, which an open replays. */
static void pre_replay(void) {
  pre_base();
  if (post_more() && RCHECK_OK(cairn_sync(R.db)))
    RCHECK(copy_file(DB, COPY) && copy_file(DB "-wal", COPY "-wal"));
  RCHECK_OK(cairn_close(R.db));
  R.db = NULL;
  R.path = COPY;
}

static void pre_closed(void) {
  pre_base();
  if (post_more())
    RCHECK_OK(cairn_close(R.db));
  R.db = NULL;
}

/* A backup of the usual database, for cairn_restore. */
static void pre_backup(void) {
  pre_base();
  if (post_more())
    RCHECK_OK(cairn_backup(R.db, BACKUP, NULL));
  RCHECK_OK(cairn_close(R.db));
  R.db = NULL;
}

/* The usual database and its dump, made without injection. */
static void post_dump(void) {
  if (post_more()) {
    ref.len = 0;
    RCHECK_OK(cairn_dump(R.db, stream_write, &ref));
  }
}

static model dumped; /* what ref holds */

/* An empty database to load ref, the dump of the usual one, into. */
static void pre_load(void) {
  pre_base();
  if (post_more()) {
    ref.len = 0;
    RCHECK_OK(cairn_dump(R.db, stream_write, &ref));
    RCHECK_OK(cairn_close(R.db));
  }
  dumped = R.committed;
  R.db = NULL;
  remove_files();
  model_init(&R.committed);
  if (setup_open())
    RCHECK_OK(cairn_close(R.db));
  R.db = NULL;
}

static void post_open(void) { setup_open(); }

static void fill_index(cairn_txn *t) {
  for (int i = 100; i < 590; i++) /* 503 keys in the overlay */
    put(t, 0, i, 8);
}

static void post_index(void) {
  if (post_more())
    setup_commit(fill_index);
}

static void fill_side2(cairn_txn *t) {
  cairn_cf cf;
  CALL(cairn_cf_open(t, "side2", CAIRN_CF_CREATE, &cf));
  R.pending.exists[2] = 1;
  put(t, 2, 7, 70);
}

/* A column family created after the checkpoint: its catalog pages live
 * only in memory (the deferred page table) until the next one. */
static void post_cf_logged(void) {
  if (post_more())
    setup_commit(fill_side2);
}

/* ---- operations (under injection) ---------------------------------------- */

/* cairn_open under injection: on failure *out must come back NULL. */
static int open_db(const char *path, unsigned flags) {
  cairn_options o;
  options(&o, 0);
  if (flags)
    o.flags = flags;
  cairn_db *db = (cairn_db *)&R; /* anything but NULL */
  int rc = CALL(cairn_open(path, &o, &db));
  if (rc) {
    RCHECK(db == NULL);
    return rc;
  }
  R.db = db;
  R.completed = 1;
  return rc;
}

static void op_create(void) {
  R.path = DB;
  R.no_db_ok = open_db(DB, 0) != CAIRN_OK;
}

static void op_open(void) { open_db(R.path, 0); }

static void op_open_rdonly(void) {
  if (open_db(R.path, CAIRN_OPEN_RDONLY))
    return;
  R.completed = 0;
  R.rdonly = 1;
  /* What the replay gave the handle, read while allocations fail. */
  cairn_txn *t = NULL;
  if (CALL(cairn_begin(R.db, CAIRN_TXN_RDONLY, &t)))
    return;
  int rc = CAIRN_OK;
  for (int i = 0; i < 42 && !rc; i++)
    rc = get(t, &R.committed, 0, i);
  cairn_abort(t);
  R.completed = !R.failed;
}

static void op_write(void) {
  cairn_txn *t = NULL;
  if (begin_write(&t))
    return;
  int rc = put(t, 0, 2, 50);                /* overwrite a small value */
  rc = rc ? rc : put(t, 0, 3, 60);          /* overflow -> small */
  rc = rc ? rc : put(t, 0, 41, BIG);        /* a new overflow value */
  rc = rc ? rc : put(t, 0, 45, 12);         /* a new key */
  rc = rc ? rc : del(t, 0, 24);             /* an overflow value */
  rc = rc ? rc : del(t, 0, 6);              /* a tree value */
  rc = rc ? rc : put(t, 1, 3, 2 * BIG);     /* in another cf */
  rc = rc ? rc : get(t, &R.pending, 0, 41); /* reads its own writes */
  rc = rc ? rc : get(t, &R.pending, 0, 24);
  rc = rc ? rc : get(t, &R.pending, 1, 4);
  if (!rc) { /* a cursor over tree and overlay, inside the write txn */
    cairn_cursor *c = NULL;
    rc = CALL(cairn_cursor_open(t, CAIRN_DEFAULT_CF, &c));
    int n = 0;
    for (int s = rc ? rc : MOVE(cairn_cursor_seek(c, key_of(20)));
         s == CAIRN_OK; s = MOVE(cairn_cursor_next(c)))
      n++;
    if (!R.failed)
      RCHECK(n == count(&R.pending, 0, 20, NK));
    cairn_cursor_close(c);
  }
  end_write(t);
}

static void op_commit_checkpoint(void) {
  cairn_metrics m0, m1;
  RCHECK_OK(cairn_metrics_get(R.db, &m0));
  cairn_txn *t = NULL;
  if (begin_write(&t))
    return;
  int rc = put(t, 0, 7, HUGE);
  rc = rc ? rc : put(t, 0, 8, 5);
  rc = rc ? rc : del(t, 1, 4);
  int ok = end_write(t) == CAIRN_OK && !R.failed;
  RCHECK_OK(cairn_metrics_get(R.db, &m1));
  if (ok) { /* the commit's own checkpoint must have run (or failed) */
    R.completed = 1;
    R.checkpointed = (int)(m1.checkpoints - m0.checkpoints);
  }
}

static void op_checkpoint(void) {
  if (!CALL(cairn_checkpoint(R.db)))
    R.completed = !R.failed;
}

/* Drop column family ci in t, and in R.pending when it succeeded. */
static int drop_cf(cairn_txn *t, int ci) {
  cairn_cf cf;
  int rc = CALL(cf_handle(t, ci, 0, &cf));
  rc = rc ? rc : CALL(cairn_cf_drop(t, cf));
  if (!rc) {
    R.pending.exists[ci] = 0;
    memset(R.pending.present[ci], 0, sizeof R.pending.present[ci]);
    memset(R.pending.ver[ci], 0, sizeof R.pending.ver[ci]);
  }
  return rc;
}

static void op_cf(void) {
  cairn_txn *t = NULL;
  if (begin_write(&t))
    return;
  cairn_cf cf;
  int rc = CALL(cairn_cf_open(t, "side2", CAIRN_CF_CREATE, &cf));
  if (!rc)
    R.pending.exists[2] = 1;
  rc = rc ? rc : put(t, 2, 1, 3);
  rc = rc ? rc : put(t, 2, 2, BIG);
  rc = rc ? rc : drop_cf(t, 1);
  end_write(t);
}

/* Drop the column family the log created and one the tree holds: the
 * commit frees catalog pages that only the deferred table holds ("young")
 * and checkpointed ones. */
static void op_cf_drop(void) {
  cairn_txn *t = NULL;
  if (begin_write(&t))
    return;
  int rc = drop_cf(t, 2);
  rc = rc ? rc : drop_cf(t, 1);
  end_write(t);
}

/* One write txn: put keys [from, to) of column family ci with values of
 * len bytes, read back [check, to) in the txn, commit. */
static void write_range(int ci, int from, int to, uint32_t len, int check) {
  cairn_txn *t = NULL;
  if (begin_write(&t))
    return;
  int rc = CAIRN_OK;
  for (int i = from; i < to && !rc; i++)
    rc = put(t, ci, i, len);
  for (int i = check; i < to && !rc; i++)
    rc = get(t, &R.pending, ci, i);
  end_write(t);
}

/* 30 new keys after 503 in the overlay: its hash index (1024 slots, grown
 * past half full) must grow, or fall back to the skip list. */
static void op_index(void) {
  write_range(0, 590, 620, 9, 580);
  cairn_txn *r = NULL;
  if (!CALL(cairn_begin(R.db, CAIRN_TXN_RDONLY, &r))) {
    for (int i = 585; i < 620 && !get(r, &R.committed, 0, i); i++)
      ;
    cairn_abort(r);
  }
}

/* 300 values of 9000 bytes into the overlay in one txn: its data arena
 * grows through 256 KiB, 512 KiB and 1 MiB blocks to 2 MiB ones, which on
 * Linux are mapped (the interposed mmap fails them too). */
static void op_big_overlay(void) { write_range(1, 300, 600, BIG, 590); }

static void op_read(void) {
  cairn_txn *t = NULL;
  if (CALL(cairn_begin(R.db, CAIRN_TXN_RDONLY, &t)))
    return;
  const model *m = &R.committed;
  int rc = get(t, m, 0, 10);
  rc = rc ? rc : get(t, m, 0, 17);
  rc = rc ? rc : get(t, m, 1, 4);
  cairn_cursor *c = NULL;
  cairn_cf side;
  rc = rc ? rc : CALL(cairn_cf_open(t, "side", 0, &side));
  rc = rc ? rc : CALL(cairn_cursor_open(t, side, &c));
  int n = 0;
  for (int s = rc ? rc : MOVE(cairn_cursor_last(c)); s == CAIRN_OK;
       s = MOVE(cairn_cursor_prev(c))) {
    cairn_slice k, v;
    if (CALL(cairn_cursor_get(c, &k, &v)))
      break;
    n++;
  }
  cairn_cursor_close(c);
  c = NULL;
  if (!R.failed)
    RCHECK(n == count(m, 1, 0, NK));
  rc = rc ? rc : CALL(cairn_cursor_open(t, CAIRN_DEFAULT_CF, &c));
  rc = rc ? rc : CALL(cairn_cursor_prefix(c, ts_str("k002")));
  n = 0;
  for (int s = rc ? rc : MOVE(cairn_cursor_first(c)); s == CAIRN_OK;
       s = MOVE(cairn_cursor_next(c))) {
    cairn_slice k, v;
    if (CALL(cairn_cursor_get(c, &k, &v)))
      break;
    int i = key_index(k);
    RCHECK(
        i >= 20 && i < 30 && m->present[0][i] &&
        ts_value_eq(v.data, v.size, vseed(0, i, m->ver[0][i]), m->len[0][i]));
    n++;
  }
  if (!R.failed)
    RCHECK(n == count(m, 0, 20, 30));
  cairn_cursor_close(c);
  cairn_cf_stat st;
  if (!rc && !CALL(cairn_cf_stat_get(t, CAIRN_DEFAULT_CF, &st)))
    RCHECK(st.entries == (uint64_t)count(m, 0, 0, NK));
  cairn_abort(t);
  R.completed = !R.failed;
}

static void op_check(void) {
  if (!CALL(cairn_check(R.db, NULL, NULL)))
    R.completed = !R.failed;
}

static void op_backup(void) {
  int rc = CALL(cairn_backup(R.db, BACKUP, NULL));
  if (rc) { /* never a partial backup under its name */
    FILE *f = fopen(BACKUP, "rb");
    RCHECK(f == NULL);
    if (f)
      fclose(f);
    return;
  }
  R.completed = !R.failed;
}

/* A restore that fails leaves nothing at its destination; one that
 * succeeds holds the backup's state, and passes cairn_check. */
static void op_restore(void) {
  const char *chain[] = {BACKUP};
  int rc = CALL(cairn_restore(chain, 1, RESTORED, NULL));
  nm_disarm(); /* the checks below run without injection */
  FILE *f = fopen(RESTORED, "rb");
  if (rc) {
    RCHECK(f == NULL);
  } else {
    RCHECK(f != NULL);
    cairn_options o;
    ts_options(&o, NULL, 0);
    o.flags = CAIRN_OPEN_RDONLY;
    cairn_db *db = NULL;
    char why[300] = "";
    if (RCHECK_OK(cairn_open(RESTORED, &o, &db))) {
      if (!RCHECK(compare(db, &R.committed, why, sizeof why) == 0))
        printf("  restored: %s\n", why);
      RCHECK_OK(cairn_check(db, NULL, NULL));
      RCHECK_OK(cairn_close(db));
    }
    R.completed = !R.failed;
  }
  if (f)
    fclose(f);
}

static void op_dump(void) {
  out.len = 0;
  if (!CALL(cairn_dump(R.db, stream_write, &out))) {
    RCHECK(out.len == ref.len && memcmp(out.buf, ref.buf, ref.len) == 0);
    R.completed = !R.failed;
  }
}

/* A load that fails may leave what its finished batches committed (the
 * whole dump is one batch here): either the empty database or all of it. */
static void op_load(void) {
  ref.pos = 0;
  int rc = CALL(cairn_load(R.db, stream_read, &ref));
  if (!rc) {
    R.committed = dumped;
    R.completed = !R.failed;
  } else {
    R.alt = dumped;
    R.have_alt = 1;
    R.alt_always = 1;
  }
}

static void op_stat(void) {
  out.len = 0;
  if (!CALL(cairn_stat_write(R.db, CAIRN_STAT_JSON, stream_write, &out))) {
    RCHECK(out.len > 2 && out.buf[0] == '{');
    R.completed = !R.failed;
  }
}

static void op_close(void) {
  CALL(cairn_close(R.db));
  R.db = NULL;
  R.completed = !R.failed;
}

/* ---- after the operation (no injection) ---------------------------------- */

static void probe_and_close(void) {
  char why[300] = "";
  if (!R.db)
    return;
  /* The handle reads exactly the last commit (a failed commit published
   * nothing). */
  int rc = compare(R.db, &R.committed, why, sizeof why);
  if (!RCHECK(rc == 0))
    printf("  the handle after the operation: %s\n", why);
  if (!R.rdonly) {
    /* It still works, or refuses writes with a message. */
    cairn_txn *t = NULL;
    R.failed = 0;
    R.pending = R.committed;
    cairn__clearerr();
    rc = cairn_begin(R.db, 0, &t);
    if (!rc) {
      ts_fill(vbuf, 33, vseed(0, NK - 1, R.committed.ver[0][NK - 1] + 1));
      cairn_txn *tt = t;
      rc = cairn_put(tt, CAIRN_DEFAULT_CF, key_of(NK - 1), ts_sl(vbuf, 33), 0);
      if (!rc)
        rc = cairn_commit_ex(tt, CAIRN_DURABILITY_LAZY); /* close syncs */
      else
        cairn_abort(tt);
    }
    if (!rc) {
      R.committed.present[0][NK - 1] = 1;
      R.committed.len[0][NK - 1] = 33;
      R.committed.ver[0][NK - 1]++;
      /* A failed commit's record is overwritten by this one; a failed
       * load's batches stay (and get this write too). */
      R.have_alt = R.alt_always;
      R.alt.present[0][NK - 1] = 1;
      R.alt.len[0][NK - 1] = 33;
      R.alt.ver[0][NK - 1] = R.committed.ver[0][NK - 1];
    } else {
      RCHECK(cairn_errmsg()[0] != 0);
    }
  }
  cairn__clearerr();
  rc = cairn_close(R.db);
  R.db = NULL;
  if (rc)
    RCHECK(cairn_errmsg()[0] != 0);
}

/* Read-only: replays what the log holds in memory and leaves the files as
 * they are (and costs no checkpoint and syncs at close). */
static void reopen_and_verify(void) {
  cairn_options o;
  options(&o, 0);
  o.flags = CAIRN_OPEN_RDONLY;
  cairn_db *db = NULL;
  cairn__clearerr();
  int rc = cairn_open(R.path, &o, &db);
  if (rc == CAIRN_NOTFOUND && R.no_db_ok) {
    /* A create that failed left no database: a create now works. */
    o.flags = CAIRN_OPEN_CREATE;
    if (RCHECK_OK(cairn_open(R.path, &o, &db)))
      RCHECK_OK(cairn_close(db));
    return;
  }
  if (!RCHECK_OK(rc))
    return;
  char why[300] = "", why2[300] = "";
  rc = compare(db, &R.committed, why, sizeof why);
  if (rc && R.have_alt && compare(db, &R.alt, why2, sizeof why2) == 0) {
    rc = 0;
    R.took_alt = 1;
  }
  if (!RCHECK(rc == 0))
    printf("  after reopen: %s\n", why);
  cairn__clearerr();
  RCHECK_OK(cairn_check(db, NULL, NULL));
  RCHECK_OK(cairn_close(db));
}

/* ---- the sweep ----------------------------------------------------------- */

typedef struct scenario {
  const char *name;
  void (*pre)(void);  /* once per sweep: the files */
  void (*post)(void); /* before each run, on the restored files */
  void (*op)(void);
  int want_checkpoint; /* the clean run must checkpoint */
} scenario;

static const scenario scenarios[] = {
    {"create", pre_none, post_none, op_create, 0},
    {"open with log replay", pre_replay, post_none, op_open, 0},
    {"read-only open with log replay", pre_replay, post_none, op_open_rdonly,
     0},
    {"open checkpointed", pre_closed, post_none, op_open, 0},
    {"write txn", pre_base, post_db, op_write, 0},
    {"commit that checkpoints", pre_ckpt, post_db, op_commit_checkpoint, 1},
    {"cairn_checkpoint", pre_base, post_db, op_checkpoint, 0},
    {"column family create/drop", pre_base, post_db, op_cf, 0},
    {"drop logged and checkpointed cfs", pre_base, post_cf_logged, op_cf_drop,
     0},
    {"overlay index growth", pre_base, post_index, op_index, 0},
    {"overlay in 2 MiB blocks", pre_base, post_db, op_big_overlay, 0},
    {"read txn and cursors", pre_base, post_db, op_read, 0},
    {"cairn_check", pre_base, post_db, op_check, 0},
    {"cairn_backup", pre_base, post_db, op_backup, 0},
    {"cairn_close", pre_base, post_db, op_close, 0},
    {"cairn_restore", pre_backup, post_none, op_restore, 0},
    {"cairn_dump", pre_base, post_dump, op_dump, 0},
    {"cairn_load", pre_load, post_open, op_load, 0},
    {"cairn_stat_write", pre_base, post_db, op_stat, 0},
    {"NOLOG write txn", pre_nolog, post_db, op_write, 0},
    {"cached: read txn and cursors", pre_cached, post_db, op_read, 0},
    {"cached: cairn_checkpoint", pre_cached, post_db, op_checkpoint, 0},
    {"cached: cairn_check", pre_cached, post_db, op_check, 0},
};

static long stride;
static long only_k; /* CAIRN_NOMEM_ONLY: just this run */

/* The state a scenario's setup leaves, made once per sweep and restored
 * for each run by copying files (a run's database starts byte for byte the
 * same, without paying for creating it and its checkpoint every time). */
static const char *const run_files[] = {DB, DB "-wal", COPY, COPY "-wal",
                                        BACKUP};
static const char *const tpl_files[] = {"t.db", "t.db-wal", "tc.db",
                                        "tc.db-wal", "t.backup"};
#define NFILES (sizeof run_files / sizeof *run_files)

typedef struct tpl {
  int have[NFILES];
  const char *path;
  unsigned flags;
  uint32_t ckpt_mib;
  model committed;
} tpl;

static tpl T;

static int make_template(const scenario *s) {
  int failed0 = test_failed_count;
  memset(&R, 0, sizeof R);
  R.scen = s->name;
  R.path = DB;
  model_init(&R.committed);
  R.setting_up = 1;
  s->pre(); /* leaves no handle open */
  R.setting_up = 0;
  memset(&T, 0, sizeof T);
  for (size_t i = 0; i < NFILES; i++) {
    remove(tpl_files[i]);
    FILE *f = fopen(run_files[i], "rb");
    if (f) {
      fclose(f);
      T.have[i] = 1;
      RCHECK(copy_file(run_files[i], tpl_files[i]));
    }
  }
  T.path = R.path;
  T.flags = R.flags;
  T.ckpt_mib = R.ckpt_mib;
  T.committed = R.committed;
  return test_failed_count == failed0;
}

static void restore_template(const scenario *s) {
  remove_files();
  for (size_t i = 0; i < NFILES; i++)
    if (T.have[i])
      RCHECK(copy_file(tpl_files[i], run_files[i]));
  R.path = T.path;
  R.flags = T.flags;
  R.ckpt_mib = T.ckpt_mib;
  R.committed = T.committed;
  R.setting_up = 1;
  s->post();
  R.setting_up = 0;
}

static void sweep(const scenario *s, int every) {
  long sites = 0, failures = 0, alts = 0, k;
  double t0 = ts_now_ms();
  if (!make_template(s))
    return;
  for (k = only_k ? only_k : 1;; k += stride) {
    memset(&R, 0, sizeof R);
    R.scen = s->name;
    R.k = k;
    R.every = every;
    long live0 = atomic_load(&nm_live);
    int failed0 = test_failed_count;
    restore_template(s);
    if (test_failed_count != failed0) /* reported by the checks */
      break;
    R.completed = 0; /* (setup commits set it) */
    nm_arm(k, every);
    s->op();
    long injected = nm_disarm();
    failures += R.failed;
    if (injected == 0) {
      /* The operation ran to its end without a failure: the sweep is
       * complete, and this run must have succeeded. */
      RCHECK(!R.failed && R.completed);
      if (s->want_checkpoint)
        RCHECK(R.checkpointed == 1);
    }
    probe_and_close();
    reopen_and_verify();
    alts += R.took_alt;
    long live1 = atomic_load(&nm_live);
    if (!RCHECK(live1 == live0))
      printf("  %ld allocation(s) not freed\n", live1 - live0);
    if (test_failed_count != failed0)
      printf("  to replay: CAIRN_NOMEM_ONLY=%d,%d,%ld\n", (int)(s - scenarios),
             every, k);
    if (injected == 0 || only_k) {
      sites = k - 1;
      break;
    }
    if (!RCHECK(k < 20000))
      break;
  }
  printf("%2d,%d %-32s: k = 1..%ld step %ld, %4ld runs failed cleanly, %ld "
         "kept the failed commit (%.0f ms)\n",
         (int)(s - scenarios), every, s->name, sites + 1, stride, failures,
         alts, ts_now_ms() - t0);
  fflush(stdout);
}

int main(void) {
  printf("test_nomem: allocation failure injection\n");
  fflush(stdout);
  /* (read before the skips: a build whose every getenv call is dead code
   * leaves out Emscripten's ENV, which the browser harness fills in) */
  const char *only = getenv("CAIRN_NOMEM_ONLY");
  if (!NM_BUILT) {
    printf("SKIPPED: needs glibc's allocator and no sanitizer runtime, "
           "which owns malloc (this build has %s)\n",
           NM_WHY);
    return 0;
  }
  if (!nm_works()) {
    printf("SKIPPED: malloc is replaced in this process (valgrind?); an "
           "armed allocation did not fail\n");
    return 0;
  }
  warm_thread_cache();
  vbuf = malloc(HUGE);
  ref.buf = malloc(STREAM);
  out.buf = malloc(STREAM);
  double scale = ts_scale();
  stride = scale >= 0.1 ? 1 : (long)(0.1 / scale + 0.5);
  if (stride < 1)
    stride = 1;
  /* CAIRN_NOMEM_ONLY=S,M,K runs only scenario S (0-based, the first
   * number of its lines), mode M (0 once, 1 every), k = K: for a debugger
   * (break nm_first_failure). */
  int only_s = -1, only_m = 0;
  if (only && sscanf(only, "%d,%d,%ld", &only_s, &only_m, &only_k) != 3)
    only_s = -1, only_k = 0;
  for (size_t i = 0; i < sizeof scenarios / sizeof *scenarios; i++)
    for (int every = 0; every < 2; every++)
      if (only_s < 0 || (only_s == (int)i && only_m == every))
        sweep(&scenarios[i], every);
  free(vbuf);
  free(ref.buf);
  free(out.buf);
  remove_files();
  for (size_t i = 0; i < NFILES; i++)
    remove(tpl_files[i]);
  return test_summary();
}
