/*
 * test_pgvec.c — the page-number vector the free lists are built on:
 * sorting (an introsort of its own, run on every commit) against qsort on
 * adversarial and random inputs, and merging sorted vectors.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn.h"
#include "pgmap.h"
#include "test_util.h"

#include "test_support.h"

static int cmp(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next(void) {
  uint64_t z = (rng += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* Fill by pattern, sort both ways, compare. */
static int sorts_like_qsort(size_t n, int pattern) {
  pgvec a = {0};
  if (pgvec_reserve(&a, n ? n : 1))
    return 0;
  for (size_t i = 0; i < n; i++) {
    uint64_t x;
    switch (pattern) {
    case 0: x = next(); break;                          /* random */
    case 1: x = i; break;                               /* sorted */
    case 2: x = n - i; break;                           /* reversed */
    case 3: x = 7; break;                               /* all equal */
    case 4: x = next() % 4; break;                      /* few values */
    case 5: x = i % 2 ? i : n - i; break;               /* organ pipe */
    default: x = i < n / 2 ? UINT64_MAX - i : i; break; /* extremes */
    }
    a.v[a.len++] = x;
  }
  uint64_t *want = malloc((n ? n : 1) * sizeof *want);
  if (!want) {
    pgvec_free(&a);
    return 0;
  }
  memcpy(want, a.v, n * sizeof *want);
  qsort(want, n, sizeof *want, cmp);
  pgvec_sort(&a);
  int ok = a.len == n && memcmp(a.v, want, n * sizeof *want) == 0;
  free(want);
  pgvec_free(&a);
  return ok;
}

int main(void) {
  static const size_t sizes[] = {0, 1, 2, 3, 15, 16, 17, 33, 100, 1000, 65537};
  for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++)
    for (int p = 0; p < 7; p++)
      if (!CHECK(sorts_like_qsort(sizes[s], p)))
        printf("  size %zu pattern %d\n", sizes[s], p);
  long rounds = ts_scaled(200, 50);
  for (long round = 0; round < rounds; round++)
    CHECK(sorts_like_qsort(next() % 3000, (int)(next() % 7)));

  /* merge keeps the union, sorted, duplicates included */
  pgvec a = {0}, b = {0};
  for (uint64_t i = 0; i < 50; i++) {
    CHECK_OK(pgvec_push(&a, i * 3));
    CHECK_OK(pgvec_push(&b, i * 2));
  }
  CHECK_OK(pgvec_merge(&a, &b));
  CHECK(a.len == 100);
  int sorted = 1;
  for (size_t i = 1; i < a.len; i++)
    sorted &= a.v[i - 1] <= a.v[i];
  CHECK(sorted);
  pgvec_free(&a);
  pgvec_free(&b);
  return test_summary();
}
