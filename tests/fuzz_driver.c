/*
 * fuzz_driver.c — a main() for libFuzzer-style targets, so every fuzz target
 * (tests/fuzz_*.c, defining LLVMFuzzerTestOneInput) also runs as an ordinary
 * deterministic test on any compiler and host, without libFuzzer.
 *
 * It feeds the target, in order:
 *   1. every file named on the command line (directories: every regular
 *      file in them, sorted by name), unchanged;
 *   2. N generated inputs from a seeded pseudo-random stream: random bytes,
 *      sparse and page-shaped buffers, and mutations (bit flips, interesting
 *      values, copied/inserted/erased chunks, truncation, splices) of the
 *      inputs so far.
 * The same seed and arguments give the same inputs, so a failure reproduces.
 *
 * Usage: fuzz_NAME [-runs=N | --iters N | N] [-seed=S] [-max_len=B]
 *                  [FILE|DIR]...
 * Environment: CAIRN_FUZZ_ITERS (N, default 5000), CAIRN_FUZZ_SEED (S,
 * default 1), CAIRN_FUZZ_MAX_LEN (B, default 262144). Arguments win.
 *
 * If the target crashes under a sanitizer (or on a fatal signal), the input
 * is written to ./fuzz-crash-NAME-SEED-ITER and the run can be replayed by
 * passing that file. Quiet when nothing fails: one summary line.
 */
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(__unix__) || defined(__APPLE__) || defined(__wasi__)
#include <dirent.h>
#include <sys/stat.h>
#define FD_HAVE_DIRS 1
#if !defined(__wasi__) && !defined(__EMSCRIPTEN__)
#include <signal.h>
#include <unistd.h>
#define FD_HAVE_SIGNALS 1
#endif
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
/* Optional in the target, as with libFuzzer. */
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));
/* Present when linked with a sanitizer runtime. */
void __sanitizer_set_death_callback(void (*cb)(void)) __attribute__((weak));

/* ---- deterministic pseudo-random numbers (splitmix64) ------------------ */

static uint64_t rng_state;

static uint64_t rng_next(void) {
  uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* Uniform in [0, n); n > 0. */
static size_t rng_below(size_t n) { return (size_t)(rng_next() % n); }

/* ---- the input being run, kept for crash reports ------------------------ */

static const char *prog_name = "fuzz";
static uint64_t run_seed;
static long run_iter = -1; /* -1 while replaying files */
static const char *run_file;
static const uint8_t *cur_data;
static size_t cur_size;

static void save_current_input(void) {
  static int saved;
  char path[512];
  FILE *f;
  if (saved || !cur_data)
    return;
  saved = 1;
  if (run_iter < 0) {
    fprintf(stderr, "fuzz_driver: %s failed on file %s\n", prog_name,
            run_file ? run_file : "?");
    return;
  }
  snprintf(path, sizeof path, "fuzz-crash-%s-%llu-%ld", prog_name,
           (unsigned long long)run_seed, run_iter);
  f = fopen(path, "wb");
  if (f) {
    fwrite(cur_data, 1, cur_size, f);
    fclose(f);
  }
  fprintf(stderr,
          "fuzz_driver: %s failed on generated input %ld (seed %llu, %zu "
          "bytes), saved to %s\n",
          prog_name, run_iter, (unsigned long long)run_seed, cur_size,
          f ? path : "(could not save)");
}

#ifdef FD_HAVE_SIGNALS
static void on_fatal_signal(int sig) {
  save_current_input();
  signal(sig, SIG_DFL);
  raise(sig);
}
#endif

/* ---- a small pool of inputs that mutations start from ------------------ */

#define POOL_MAX 64

typedef struct buf {
  uint8_t *data;
  size_t size;
} buf;

static buf pool[POOL_MAX];
static size_t pool_n;

static void *xrealloc(void *p, size_t n) {
  void *q = realloc(p, n ? n : 1);
  if (!q) {
    fprintf(stderr, "fuzz_driver: out of memory (%zu bytes)\n", n);
    exit(2);
  }
  return q;
}

static void pool_add(const uint8_t *data, size_t size) {
  size_t slot = pool_n < POOL_MAX ? pool_n++ : rng_below(POOL_MAX);
  pool[slot].data = xrealloc(pool[slot].data, size);
  if (size)
    memcpy(pool[slot].data, data, size);
  pool[slot].size = size;
}

static void run_one(const uint8_t *data, size_t size) {
  /* A private copy of exactly size bytes, so reads past the end are caught
   * by ASan/valgrind as they would be under libFuzzer. */
  uint8_t *copy = malloc(size ? size : 1);
  if (!copy) {
    fprintf(stderr, "fuzz_driver: out of memory (%zu bytes)\n", size);
    exit(2);
  }
  if (size)
    memcpy(copy, data, size);
  cur_data = copy;
  cur_size = size;
  (void)LLVMFuzzerTestOneInput(copy, size);
  cur_data = NULL;
  free(copy);
}

/* ---- input generation ---------------------------------------------------- */

static const size_t shape_sizes[] = {0,     1,     7,     64,    512,
                                     4095,  4096,  4097,  8192,  12288,
                                     16384, 32768, 65536, 131072};

static const uint8_t interesting8[] = {0x00, 0x01, 0x02, 0x10, 0x40,
                                       0x7f, 0x80, 0x81, 0xfe, 0xff};

static size_t pick_size(size_t max_len) {
  size_t n;
  switch (rng_below(4)) {
  case 0: n = rng_below(64); break;
  case 1: n = rng_below(4096 + 1); break;
  case 2:
    n = shape_sizes[rng_below(sizeof shape_sizes / sizeof shape_sizes[0])];
    break;
  default: n = rng_below(max_len + 1); break;
  }
  return n > max_len ? max_len : n;
}

static void fill_random(uint8_t *p, size_t n) {
  size_t i;
  for (i = 0; i < n; i++)
    p[i] = (uint8_t)rng_next();
}

/* A fresh input: random, sparse (mostly zero), or repeated short patterns. */
static void generate(buf *out, size_t max_len) {
  size_t n = pick_size(max_len), i;
  out->data = xrealloc(out->data, n);
  out->size = n;
  switch (rng_below(3)) {
  case 0: fill_random(out->data, n); break;
  case 1:
    memset(out->data, 0, n);
    for (i = 0; n && i < 1 + n / 64; i++)
      out->data[rng_below(n)] = (uint8_t)rng_next();
    break;
  default: {
    uint8_t pat[16];
    size_t plen = 1 + rng_below(sizeof pat);
    fill_random(pat, plen);
    for (i = 0; i < n; i++)
      out->data[i] = pat[i % plen];
    break;
  }
  }
}

/* Apply 1..8 random edits to out (a copy of a pool entry). */
static void mutate(buf *out, size_t max_len) {
  int edits = 1 + (int)rng_below(8), e;
  for (e = 0; e < edits; e++) {
    size_t n = out->size;
    switch (rng_below(9)) {
    case 0: /* flip a bit */
      if (n)
        out->data[rng_below(n)] ^= (uint8_t)(1u << rng_below(8));
      break;
    case 1: /* an interesting byte */
      if (n)
        out->data[rng_below(n)] = interesting8[rng_below(sizeof interesting8)];
      break;
    case 2: /* a random 16/32/64-bit little-endian word */
    {
      size_t w = (size_t)1 << (1 + rng_below(3)), i, at;
      uint64_t v = rng_below(2) ? rng_next() : rng_below(0x10000);
      if (n < w)
        break;
      at = rng_below(n - w + 1);
      for (i = 0; i < w; i++)
        out->data[at + i] = (uint8_t)(v >> (8 * i));
      break;
    }
    case 3: /* randomise a run */
      if (n) {
        size_t at = rng_below(n), len = 1 + rng_below(n - at);
        if (len > 64)
          len = 1 + rng_below(64);
        fill_random(out->data + at, len);
      }
      break;
    case 4: /* copy a chunk over another place */
      if (n > 1) {
        size_t from = rng_below(n), to = rng_below(n);
        size_t len = 1 + rng_below(n - (from > to ? from : to));
        memmove(out->data + to, out->data + from, len);
      }
      break;
    case 5: /* truncate */
      if (n)
        out->size = rng_below(n);
      break;
    case 6: /* insert random bytes */
    {
      size_t len = 1 + rng_below(64), at = rng_below(n + 1);
      if (n + len > max_len)
        break;
      out->data = xrealloc(out->data, n + len);
      memmove(out->data + at + len, out->data + at, n - at);
      fill_random(out->data + at, len);
      out->size = n + len;
      break;
    }
    case 7: /* erase a chunk */
      if (n) {
        size_t at = rng_below(n), len = 1 + rng_below(n - at);
        memmove(out->data + at, out->data + at + len, n - at - len);
        out->size = n - len;
      }
      break;
    default: /* splice: our head, another pool entry's tail */
      if (pool_n) {
        const buf *o = &pool[rng_below(pool_n)];
        size_t head = n ? rng_below(n + 1) : 0;
        size_t tail_from = o->size ? rng_below(o->size + 1) : 0;
        size_t tail = o->size - tail_from;
        if (head > max_len)
          head = max_len;
        if (head + tail > max_len)
          tail = max_len - head;
        out->data = xrealloc(out->data, head + tail);
        if (tail)
          memcpy(out->data + head, o->data + tail_from, tail);
        out->size = head + tail;
      }
      break;
    }
  }
}

/* ---- files given as arguments -------------------------------------------- */

static long files_run;

static int run_file_path(const char *path) {
  FILE *f = fopen(path, "rb");
  uint8_t *data = NULL;
  size_t size = 0, cap = 0, got;
  if (!f) {
    fprintf(stderr, "fuzz_driver: cannot open %s: %s\n", path, strerror(errno));
    return 1;
  }
  do {
    if (size == cap) {
      cap = cap ? cap * 2 : 65536;
      data = xrealloc(data, cap);
    }
    got = fread(data + size, 1, cap - size, f);
    size += got;
  } while (got > 0);
  if (ferror(f)) {
    fprintf(stderr, "fuzz_driver: cannot read %s\n", path);
    fclose(f);
    free(data);
    return 1;
  }
  fclose(f);
  run_file = path;
  run_one(data, size);
  run_file = NULL;
  pool_add(data, size);
  free(data);
  files_run++;
  return 0;
}

#ifdef FD_HAVE_DIRS
static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static int run_dir(const char *dir) {
  DIR *d = opendir(dir);
  struct dirent *de;
  char **names = NULL;
  size_t n = 0, i;
  int rc = 0;
  if (!d) {
    fprintf(stderr, "fuzz_driver: cannot open %s: %s\n", dir, strerror(errno));
    return 1;
  }
  while ((de = readdir(d)) != NULL) {
    size_t len;
    if (de->d_name[0] == '.')
      continue;
    len = strlen(dir) + strlen(de->d_name) + 2;
    names = xrealloc(names, (n + 1) * sizeof *names);
    names[n] = xrealloc(NULL, len);
    snprintf(names[n], len, "%s/%s", dir, de->d_name);
    n++;
  }
  closedir(d);
  if (n)
    qsort(names, n, sizeof *names, cmp_str);
  for (i = 0; i < n; i++) {
    struct stat st;
    if (rc == 0 && stat(names[i], &st) == 0 && S_ISREG(st.st_mode))
      rc = run_file_path(names[i]);
    free(names[i]);
  }
  free(names);
  return rc;
}
#endif

static int run_path(const char *path) {
#ifdef FD_HAVE_DIRS
  struct stat st;
  if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
    return run_dir(path);
#endif
  return run_file_path(path);
}

/* ---- main ---------------------------------------------------------------- */

static int parse_u64(const char *s, uint64_t *out) {
  char *end;
  unsigned long long v;
  if (!s || !*s || *s == '-')
    return 0;
  errno = 0;
  v = strtoull(s, &end, 10);
  if (errno || *end)
    return 0;
  *out = v;
  return 1;
}

static void usage(void) {
  fprintf(stderr,
          "usage: %s [-runs=N | --iters N | N] [-seed=S] [-max_len=B] "
          "[FILE|DIR]...\n"
          "env: CAIRN_FUZZ_ITERS, CAIRN_FUZZ_SEED, CAIRN_FUZZ_MAX_LEN\n",
          prog_name);
}

int main(int argc, char **argv) {
  uint64_t iters = 5000, seed = 1, max_len = 262144, v;
  const char **paths;
  int npaths = 0, i;
  long it;
  buf work = {NULL, 0};
  clock_t t0 = clock();

  if (argc > 0 && argv[0]) {
    const char *slash = strrchr(argv[0], '/');
    prog_name = slash ? slash + 1 : argv[0];
  }
  if (parse_u64(getenv("CAIRN_FUZZ_ITERS"), &v))
    iters = v;
  if (parse_u64(getenv("CAIRN_FUZZ_SEED"), &v))
    seed = v;
  if (parse_u64(getenv("CAIRN_FUZZ_MAX_LEN"), &v))
    max_len = v;

  paths = malloc(sizeof *paths * (size_t)(argc > 0 ? argc : 1));
  if (!paths)
    return 2;
  for (i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strncmp(a, "-runs=", 6) == 0 && parse_u64(a + 6, &v)) {
      iters = v;
    } else if (strcmp(a, "--iters") == 0 && i + 1 < argc &&
               parse_u64(argv[i + 1], &v)) {
      iters = v;
      i++;
    } else if (strncmp(a, "--iters=", 8) == 0 && parse_u64(a + 8, &v)) {
      iters = v;
    } else if (strncmp(a, "-seed=", 6) == 0 && parse_u64(a + 6, &v)) {
      seed = v;
    } else if (strncmp(a, "-max_len=", 9) == 0 && parse_u64(a + 9, &v)) {
      max_len = v;
    } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
      usage();
      free(paths);
      return 0;
    } else if (a[0] == '-') {
      fprintf(stderr, "%s: unknown option %s\n", prog_name, a);
      usage();
      free(paths);
      return 2;
    } else if (parse_u64(a, &v)) {
#ifdef FD_HAVE_DIRS
      struct stat st;
      if (stat(a, &st) == 0) { /* a file that happens to be named "123" */
        paths[npaths++] = a;
        continue;
      }
#endif
      iters = v;
    } else {
      paths[npaths++] = a;
    }
  }
  if (iters > LONG_MAX)
    iters = LONG_MAX;
  if (max_len > ((size_t)1 << 30))
    max_len = (size_t)1 << 30;
  run_seed = seed;
  rng_state = seed;

#ifdef FD_HAVE_SIGNALS
  signal(SIGSEGV, on_fatal_signal);
  signal(SIGBUS, on_fatal_signal);
  signal(SIGABRT, on_fatal_signal);
  signal(SIGFPE, on_fatal_signal);
  signal(SIGILL, on_fatal_signal);
#endif
  if (__sanitizer_set_death_callback)
    __sanitizer_set_death_callback(save_current_input);
  if (LLVMFuzzerInitialize)
    (void)LLVMFuzzerInitialize(&argc, &argv);

  for (i = 0; i < npaths; i++) {
    if (run_path(paths[i]) != 0) {
      free(paths);
      return 1;
    }
  }
  free(paths);

  for (it = 0; it < (long)iters; it++) {
    run_iter = it;
    if (pool_n && rng_below(4) != 0) {
      const buf *src = &pool[rng_below(pool_n)];
      work.data = xrealloc(work.data, src->size);
      if (src->size)
        memcpy(work.data, src->data, src->size);
      work.size = src->size;
      mutate(&work, (size_t)max_len);
    } else {
      generate(&work, (size_t)max_len);
    }
    run_one(work.data, work.size);
    /* Keep some inputs as future mutation sources: a cheap stand-in for
     * coverage feedback that still lets structure accumulate. */
    if (rng_below(8) == 0)
      pool_add(work.data, work.size);
  }

  free(work.data);
  for (i = 0; i < (int)pool_n; i++)
    free(pool[i].data);
  printf("%s: %ld file input(s) and %ld generated input(s) ok (seed %llu, "
         "%.1f s)\n",
         prog_name, files_run, (long)iters, (unsigned long long)seed,
         (double)(clock() - t0) / CLOCKS_PER_SEC);
  return 0;
}
