/*
 * test_support.c — the shared test helpers declared in test_support.h: PRNG,
 * generated values, hashing, the sorted reference model and public-API
 * database walkers. Nothing here knows the engine's internals.
 */
#include "test_support.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "platform.h"

#ifdef CAIRN_HAVE_UNIX_PLATFORM
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>
#endif

/* ---- failure context ---------------------------------------------------- */

char ts_ctx[512];

void ts_set_ctx(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(ts_ctx, sizeof ts_ctx, fmt, ap);
  va_end(ap);
}

int ts_ctx_note(int ok) {
  if (!ok && ts_ctx[0]) {
    printf("    at: %s\n", ts_ctx);
    fflush(stdout);
  }
  return ok;
}

/* ---- PRNG and scale ----------------------------------------------------- */

uint64_t ts_splitmix64(uint64_t *state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

void ts_rng_seed(ts_rng *r, uint64_t seed) { r->s = seed; }

uint64_t ts_next(ts_rng *r) { return ts_splitmix64(&r->s); }

uint64_t ts_below(ts_rng *r, uint64_t n) { return n ? ts_next(r) % n : 0; }

int ts_chance(ts_rng *r, unsigned num, unsigned den) {
  return ts_below(r, den) < num;
}

/* Sanitizer builds run the engine several times slower; their default scale
 * is smaller so the suite stays tolerable (an explicit CAIRN_TEST_SCALE is
 * always taken as given). */
#if defined(__SANITIZE_ADDRESS__)
#define TS_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(memory_sanitizer)
#define TS_SANITIZED 1
#endif
#endif
#ifdef TS_SANITIZED
#define TS_DEFAULT_SCALE 0.3
#else
#define TS_DEFAULT_SCALE 1.0
#endif

double ts_scale(void) {
  static double scale = -1;
  if (scale < 0) {
    const char *e = getenv("CAIRN_TEST_SCALE");
    scale = e && *e ? atof(e) : TS_DEFAULT_SCALE;
    if (!(scale > 0))
      scale = TS_DEFAULT_SCALE;
  }
  return scale;
}

long ts_scaled(long n, long lo) {
  double v = (double)n * ts_scale();
  long r = (long)(v + 0.5);
  return r < lo ? lo : r;
}

double ts_now_ms(void) {
  struct timespec ts; /* C11's clock: portable to WASI and Emscripten */
  if (timespec_get(&ts, TIME_UTC) != TIME_UTC)
    return 0;
  return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

/* ---- generated values --------------------------------------------------- */

static uint64_t value_word(uint64_t vseed, uint64_t i) {
  uint64_t s = vseed ^ (i * 0xd6e8feb86659fd93ull);
  return ts_splitmix64(&s);
}

void ts_fill(void *buf, size_t n, uint64_t vseed) {
  uint8_t *p = buf;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w = value_word(vseed, i / 8);
    memcpy(p + i, &w, 8);
  }
  if (i < n) {
    uint64_t w = value_word(vseed, i / 8);
    memcpy(p + i, &w, n - i);
  }
}

int ts_value_eq(const void *p, size_t n, uint64_t vseed, size_t vlen) {
  const uint8_t *b = p;
  size_t i = 0;
  if (n != vlen)
    return 0;
  if (n && !p)
    return 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w = value_word(vseed, i / 8);
    if (memcmp(b + i, &w, 8) != 0)
      return 0;
  }
  if (i < n) {
    uint64_t w = value_word(vseed, i / 8);
    if (memcmp(b + i, &w, n - i) != 0)
      return 0;
  }
  return 1;
}

void *ts_value_new(size_t n, uint64_t vseed) {
  void *p = malloc(n ? n : 1);
  if (!p) {
    fprintf(stderr, "out of memory allocating %zu bytes\n", n);
    abort();
  }
  ts_fill(p, n, vseed);
  return p;
}

/* ---- hashing ------------------------------------------------------------ */

static uint64_t mix64(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ull;
  x ^= x >> 33;
  return x;
}

uint64_t ts_hash_bytes(const void *p, size_t n, uint64_t h) {
  const uint8_t *b = p;
  size_t i = 0;
  h ^= (uint64_t)n * 0x9e3779b97f4a7c15ull;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    memcpy(&w, b + i, 8);
    h = (h ^ mix64(w + i)) * 0x100000001b3ull;
  }
  if (i < n) {
    uint64_t w = 0;
    memcpy(&w, b + i, n - i);
    h = (h ^ mix64(w + i + 0x55)) * 0x100000001b3ull;
  }
  return mix64(h);
}

uint64_t ts_entry_hash(const char *cf, const void *k, size_t kn, const void *v,
                       size_t vn) {
  uint64_t h = ts_hash_bytes(cf, strlen(cf), 0x1234567);
  h = ts_hash_bytes(k, kn, h);
  h = ts_hash_bytes(v, vn, h);
  return mix64(h + 0x2545f4914f6cdd1dull);
}

/* ---- reference model ---------------------------------------------------- */

int ts_keycmp(const void *a, size_t an, const void *b, size_t bn) {
  size_t m = an < bn ? an : bn;
  int c = m ? memcmp(a, b, m) : 0;
  if (c)
    return c < 0 ? -1 : 1;
  return an < bn ? -1 : an > bn ? 1 : 0;
}

size_t ts_map_lower(const ts_map *m, const void *k, size_t kn, int *found) {
  size_t lo = 0, hi = m->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (ts_keycmp(m->e[mid].key, m->e[mid].klen, k, kn) < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  if (found)
    *found = lo < m->n && ts_keycmp(m->e[lo].key, m->e[lo].klen, k, kn) == 0;
  return lo;
}

const ts_ent *ts_map_get(const ts_map *m, const void *k, size_t kn) {
  int found;
  size_t i = ts_map_lower(m, k, kn, &found);
  return found ? &m->e[i] : NULL;
}

static void *xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (!p) {
    fprintf(stderr, "out of memory\n");
    abort();
  }
  return p;
}

void ts_map_put(ts_map *m, const void *k, size_t kn, uint64_t vseed,
                size_t vlen) {
  int found;
  size_t i = ts_map_lower(m, k, kn, &found);
  if (found) {
    m->e[i].vseed = vseed;
    m->e[i].vlen = (uint32_t)vlen;
    return;
  }
  if (m->n == m->cap) {
    size_t nc = m->cap ? m->cap * 2 : 16;
    ts_ent *ne = realloc(m->e, nc * sizeof *ne);
    if (!ne) {
      fprintf(stderr, "out of memory\n");
      abort();
    }
    m->e = ne;
    m->cap = nc;
  }
  memmove(&m->e[i + 1], &m->e[i], (m->n - i) * sizeof *m->e);
  m->e[i].key = xmalloc(kn);
  if (kn)
    memcpy(m->e[i].key, k, kn);
  m->e[i].klen = (uint32_t)kn;
  m->e[i].vseed = vseed;
  m->e[i].vlen = (uint32_t)vlen;
  m->n++;
}

int ts_map_del(ts_map *m, const void *k, size_t kn) {
  int found;
  size_t i = ts_map_lower(m, k, kn, &found);
  if (!found)
    return 0;
  free(m->e[i].key);
  memmove(&m->e[i], &m->e[i + 1], (m->n - i - 1) * sizeof *m->e);
  m->n--;
  return 1;
}

void ts_map_clear(ts_map *m) {
  for (size_t i = 0; i < m->n; i++)
    free(m->e[i].key);
  m->n = 0;
}

void ts_map_copy(ts_map *dst, const ts_map *src) {
  dst->n = src->n;
  dst->cap = src->n;
  dst->e = src->n ? xmalloc(src->n * sizeof *dst->e) : NULL;
  for (size_t i = 0; i < src->n; i++) {
    dst->e[i] = src->e[i];
    dst->e[i].key = xmalloc(src->e[i].klen);
    if (src->e[i].klen)
      memcpy(dst->e[i].key, src->e[i].key, src->e[i].klen);
  }
}

void ts_map_free(ts_map *m) {
  ts_map_clear(m);
  free(m->e);
  m->e = NULL;
  m->cap = 0;
}

void ts_state_init(ts_state *s) {
  memset(s, 0, sizeof *s);
  s->ncf = 1;
  strcpy(s->name[0], "default");
}

void ts_state_free(ts_state *s) {
  for (int i = 0; i < s->ncf; i++)
    ts_map_free(&s->map[i]);
  s->ncf = 0;
}

void ts_state_copy(ts_state *dst, const ts_state *src) {
  memset(dst, 0, sizeof *dst);
  dst->ncf = src->ncf;
  for (int i = 0; i < src->ncf; i++) {
    memcpy(dst->name[i], src->name[i], sizeof dst->name[i]);
    ts_map_copy(&dst->map[i], &src->map[i]);
  }
}

int ts_state_find(const ts_state *s, const char *name) {
  for (int i = 0; i < s->ncf; i++)
    if (strcmp(s->name[i], name) == 0)
      return i;
  return -1;
}

int ts_state_add(ts_state *s, const char *name) {
  if (s->ncf >= TS_MAX_CF || strlen(name) >= sizeof s->name[0]) {
    fprintf(stderr, "ts_state_add: too many cfs or name too long\n");
    abort();
  }
  int i = s->ncf++;
  strcpy(s->name[i], name);
  memset(&s->map[i], 0, sizeof s->map[i]);
  return i;
}

void ts_state_drop(ts_state *s, int idx) {
  ts_map_free(&s->map[idx]);
  for (int i = idx; i + 1 < s->ncf; i++) {
    memcpy(s->name[i], s->name[i + 1], sizeof s->name[i]);
    s->map[i] = s->map[i + 1];
  }
  s->ncf--;
}

uint64_t ts_state_hash(const ts_state *s) {
  uint64_t h = 0;
  size_t cap = 0;
  uint8_t *buf = NULL;
  for (int c = 0; c < s->ncf; c++) {
    for (size_t i = 0; i < s->map[c].n; i++) {
      const ts_ent *e = &s->map[c].e[i];
      if (e->vlen > cap) {
        free(buf);
        cap = e->vlen;
        buf = xmalloc(cap);
      }
      ts_fill(buf, e->vlen, e->vseed);
      h += ts_entry_hash(s->name[c], e->key, e->klen, buf, e->vlen);
    }
  }
  free(buf);
  return h;
}

size_t ts_state_entries(const ts_state *s) {
  size_t n = 0;
  for (int c = 0; c < s->ncf; c++)
    n += s->map[c].n;
  return n;
}

/* ---- database helpers --------------------------------------------------- */

cairn_slice ts_sl(const void *p, size_t n) {
  cairn_slice s;
  s.data = p;
  s.size = n;
  return s;
}

cairn_slice ts_str(const char *s) { return ts_sl(s, strlen(s)); }

typedef struct name_list {
  int n;
  char name[64][CAIRN_MAX_CF_NAME + 1];
  cairn_cf cf[64];
} name_list;

static int collect_cb(void *ctx, const char *name, cairn_cf cf) {
  name_list *l = ctx;
  if (l->n >= 64)
    return 1;
  snprintf(l->name[l->n], sizeof l->name[l->n], "%s", name);
  l->cf[l->n] = cf;
  l->n++;
  return 0;
}

int ts_db_hash(cairn_txn *txn, uint64_t *out, uint64_t *entries) {
  name_list *l = calloc(1, sizeof *l);
  uint64_t h = 0, cnt = 0;
  int rc;
  if (!l)
    return CAIRN_NOMEM;
  rc = cairn_cf_list(txn, collect_cb, l);
  for (int i = 0; rc == CAIRN_OK && i < l->n; i++) {
    cairn_cursor *c = NULL;
    uint8_t prev[CAIRN_MAX_KEY_SIZE];
    size_t prevn = 0;
    int have_prev = 0;
    rc = cairn_cursor_open(txn, l->cf[i], &c);
    if (rc)
      break;
    for (rc = cairn_cursor_first(c); rc == CAIRN_OK;
         rc = cairn_cursor_next(c)) {
      cairn_slice k, v;
      rc = cairn_cursor_get(c, &k, &v);
      if (rc)
        break;
      if (k.size > CAIRN_MAX_KEY_SIZE ||
          (have_prev && ts_keycmp(prev, prevn, k.data, k.size) >= 0)) {
        rc = -1000;
        break;
      }
      memcpy(prev, k.data, k.size);
      prevn = k.size;
      have_prev = 1;
      h += ts_entry_hash(l->name[i], k.data, k.size, v.data, v.size);
      cnt++;
    }
    if (rc == CAIRN_NOTFOUND)
      rc = CAIRN_OK;
    cairn_cursor_close(c);
  }
  free(l);
  if (rc == CAIRN_OK) {
    *out = h;
    if (entries)
      *entries = cnt;
  }
  return rc;
}

static void hexkey(char *out, size_t outn, const void *k, size_t n) {
  const uint8_t *b = k;
  size_t o = 0;
  out[0] = 0;
  for (size_t i = 0; i < n && o + 3 < outn; i++)
    o += (size_t)snprintf(out + o, outn - o, "%02x", b[i]);
  if (n * 2 + 1 > outn && outn > 4)
    strcpy(out + outn - 4, "..");
}

int ts_db_compare(cairn_txn *txn, const ts_state *s, char *why, size_t whylen) {
  name_list *l = calloc(1, sizeof *l);
  int rc, result = 0;
  if (!l)
    return CAIRN_NOMEM;
  rc = cairn_cf_list(txn, collect_cb, l);
  if (rc) {
    free(l);
    snprintf(why, whylen, "cf_list failed: %s", cairn_strerror(rc));
    return rc;
  }
  /* Same set of cf names. */
  int seen[TS_MAX_CF] = {0};
  for (int i = 0; i < l->n; i++) {
    int idx = ts_state_find(s, l->name[i]);
    if (idx < 0) {
      snprintf(why, whylen, "cf '%s' exists in the db, not in the model",
               l->name[i]);
      free(l);
      return 1;
    }
    seen[idx] = 1;
  }
  for (int i = 0; i < s->ncf; i++) {
    if (!seen[i]) {
      snprintf(why, whylen, "cf '%s' missing from the db", s->name[i]);
      free(l);
      return 1;
    }
  }
  for (int i = 0; i < l->n && result == 0; i++) {
    const ts_map *m = &s->map[ts_state_find(s, l->name[i])];
    cairn_cursor *c = NULL;
    size_t j = 0;
    rc = cairn_cursor_open(txn, l->cf[i], &c);
    if (rc) {
      snprintf(why, whylen, "cursor_open(%s) failed: %s", l->name[i],
               cairn_strerror(rc));
      result = rc;
      break;
    }
    for (rc = cairn_cursor_first(c); rc == CAIRN_OK;
         rc = cairn_cursor_next(c), j++) {
      cairn_slice k, v;
      char hk[80];
      rc = cairn_cursor_get(c, &k, &v);
      if (rc)
        break;
      hexkey(hk, sizeof hk, k.data, k.size);
      if (j >= m->n) {
        snprintf(why, whylen, "cf '%s': extra key %s at position %zu",
                 l->name[i], hk, j);
        result = 1;
        break;
      }
      const ts_ent *e = &m->e[j];
      if (ts_keycmp(k.data, k.size, e->key, e->klen) != 0) {
        char hm[80];
        hexkey(hm, sizeof hm, e->key, e->klen);
        snprintf(why, whylen,
                 "cf '%s': key %zu is %s in the db, %s in the model",
                 l->name[i], j, hk, hm);
        result = 1;
        break;
      }
      if (!ts_value_eq(v.data, v.size, e->vseed, e->vlen)) {
        snprintf(why, whylen,
                 "cf '%s': value of key %s differs (db %zu bytes, model %u)",
                 l->name[i], hk, v.size, e->vlen);
        result = 1;
        break;
      }
    }
    if (result == 0) {
      if (rc != CAIRN_NOTFOUND) {
        snprintf(why, whylen, "cf '%s': cursor failed at %zu: %s (%s)",
                 l->name[i], j, cairn_strerror(rc), cairn_errmsg());
        result = rc;
      } else if (j != m->n) {
        snprintf(why, whylen, "cf '%s': db has %zu keys, model %zu", l->name[i],
                 j, m->n);
        result = 1;
      }
    }
    cairn_cursor_close(c);
  }
  free(l);
  return result;
}

void ts_options(cairn_options *o, const char *platform, uint32_t page_size) {
  cairn_options_init(o);
  o->platform = platform;
  if (page_size)
    o->page_size = page_size;
}

int ts_file_write(const char *platform, const char *path, const void *data,
                  size_t n) {
  cairn_platform *p = cairn_platform_find(platform);
  cairn_file *f = NULL;
  int rc;
  if (!p)
    return CAIRN_NOTSUPP;
  rc = p->open(p, path, CAIRN_PF_CREATE, &f);
  if (rc)
    return rc;
  rc = f->methods->truncate(f, 0);
  if (rc == CAIRN_OK && n)
    rc = f->methods->write(f, data, n, 0);
  if (rc == CAIRN_OK)
    rc = f->methods->sync(f);
  f->methods->close(f);
  if (rc == CAIRN_OK)
    rc = p->sync_dir(p, path);
  return rc;
}

int ts_file_read(const char *platform, const char *path, uint8_t **data,
                 size_t *n) {
  cairn_platform *p = cairn_platform_find(platform);
  cairn_file *f = NULL;
  uint64_t size = 0;
  int rc;
  *data = NULL;
  *n = 0;
  if (!p)
    return CAIRN_NOTSUPP;
  rc = p->open(p, path, CAIRN_PF_RDONLY, &f);
  if (rc)
    return rc;
  rc = f->methods->size(f, &size);
  if (rc == CAIRN_OK) {
    *data = xmalloc((size_t)size);
    rc = f->methods->read(f, *data, (size_t)size, 0);
    if (rc) {
      free(*data);
      *data = NULL;
    } else {
      *n = (size_t)size;
    }
  }
  f->methods->close(f);
  return rc;
}

int ts_file_remove(const char *platform, const char *path) {
  cairn_platform *p = cairn_platform_find(platform);
  if (!p)
    return CAIRN_NOTSUPP;
  return p->remove(p, path);
}

/* ---- the documented file format ------------------------------------------ */

uint32_t ts_crc32c(const void *p, size_t n) {
  static uint32_t table[256];
  static int ready;
  const uint8_t *b = p;
  uint32_t c = 0xffffffffu;
  if (!ready) {
    for (uint32_t i = 0; i < 256; i++) {
      uint32_t x = i;
      for (int k = 0; k < 8; k++)
        x = (x & 1) ? (x >> 1) ^ 0x82f63b78u : x >> 1;
      table[i] = x;
    }
    ready = 1;
  }
  for (size_t i = 0; i < n; i++)
    c = table[(c ^ b[i]) & 0xff] ^ (c >> 8);
  return c ^ 0xffffffffu;
}

static uint32_t ld32le(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
         (uint32_t)p[3] << 24;
}

void ts_reseal_page(uint8_t *buf, size_t avail, uint32_t psize) {
  uint64_t span = psize;
  unsigned type = (unsigned)buf[4] | (unsigned)buf[5] << 8;
  if (avail < 32)
    return;
  if (type == 1)
    span = 256;
  else if (type == 4)
    span = 32 + (uint64_t)ld32le(buf + 28);
  if (span > avail)
    span = avail;
  uint32_t crc = ts_crc32c(buf + 4, (size_t)span - 4);
  for (int i = 0; i < 4; i++)
    buf[i] = (uint8_t)(crc >> (8 * i));
}

uint32_t ts_image_page_size(const uint8_t *img, size_t n) {
  if (n < 256 || memcmp(img + 32, "cairnDB", 8) != 0)
    return 0;
  return ld32le(img + 44);
}

#ifdef CAIRN_HAVE_UNIX_PLATFORM
char *ts_mkdtemp(void) {
  const char *base = getenv("TMPDIR");
  char *p = malloc(4096);
  if (!p)
    abort();
  snprintf(p, 4096, "%s/cairn-test-XXXXXX", base && *base ? base : "/tmp");
  if (!mkdtemp(p)) {
    perror("mkdtemp");
    abort();
  }
  return p;
}

void ts_rmtree(const char *dir) {
  DIR *d = opendir(dir);
  if (d) {
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
      char path[4096];
      struct stat st;
      if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
        continue;
      snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
      if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode))
        ts_rmtree(path);
      else
        unlink(path);
    }
    closedir(d);
  }
  rmdir(dir);
}
#else
char *ts_mkdtemp(void) { return NULL; }
void ts_rmtree(const char *dir) { (void)dir; }
#endif
