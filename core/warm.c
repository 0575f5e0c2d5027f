/*
 * warm.c — the page-warming helper thread (see warm.h).
 *
 * One job at a time: the writer hands over the page list and bumps the
 * generation; the helper touches pages while the generation it started
 * under is current, checking every WARM_CHECK pages, and reports itself
 * idle under the mutex, so warmer_cancel can wait for that.
 */
#include "warm.h"

#include <stdlib.h>

#include "threads.h"

#ifdef CAIRN_SINGLE_THREADED

void warmer_submit(warmer **w, const uint8_t *map, uint64_t map_len,
                   uint32_t psize, pgvec *pages) {
  (void)w;
  (void)map;
  (void)map_len;
  (void)psize;
  pgvec_free(pages);
}
void warmer_cancel(warmer *w) { (void)w; }
void warmer_free(warmer *w) { (void)w; }

#else

#define WARM_CHECK 64 /* pages between looks at the generation */

struct warmer {
  cairn_helper h;
  _Atomic uint64_t gen; /* bumped by every submit and cancel */
  int busy;             /* h.mu: the helper is reading pages */
  /* h.mu: the job waiting to be picked up (job_gen == gen) */
  pgvec job;
  uint64_t job_gen;
  const uint8_t *map;
  uint64_t map_len;
  uint32_t psize;
};

static void touch(warmer *w, const pgvec *pages, const uint8_t *map,
                  uint64_t map_len, uint32_t psize, uint64_t gen) {
  unsigned sum = 0;
  for (size_t i = 0; i < pages->len; i++) {
    if (i % WARM_CHECK == 0 &&
        atomic_load_explicit(&w->gen, memory_order_acquire) != gen)
      return;
    uint64_t pg = pages->v[i];
    if (pg < map_len / psize)
      sum += *(volatile const uint8_t *)(map + pg * psize);
  }
  (void)sum;
}

static void *warm_main(void *arg) {
  warmer *w = arg;
  cairn_mutex_lock(&w->h.mu);
  for (;;) {
    while (!w->h.stop && (!w->job.len || w->job_gen != w->gen))
      cairn_cond_wait(&w->h.cv, &w->h.mu);
    if (w->h.stop)
      break;
    pgvec job = w->job;
    w->job = (pgvec){0};
    uint64_t gen = w->job_gen;
    const uint8_t *map = w->map;
    uint64_t map_len = w->map_len;
    uint32_t psize = w->psize;
    w->busy = 1;
    cairn_mutex_unlock(&w->h.mu);
    touch(w, &job, map, map_len, psize, gen);
    pgvec_free(&job);
    cairn_mutex_lock(&w->h.mu);
    w->busy = 0;
    cairn_cond_broadcast(&w->h.cv);
  }
  cairn_mutex_unlock(&w->h.mu);
  return NULL;
}

static warmer *warmer_new(void) {
  warmer *w = calloc(1, sizeof *w);
  if (w && cairn_helper_start(&w->h, warm_main, w)) {
    free(w);
    return NULL;
  }
  return w;
}

/* Under h.mu: end the current job and drop a waiting one. */
static void cancel_locked(warmer *w) {
  atomic_fetch_add_explicit(&w->gen, 1, memory_order_release);
  pgvec_free(&w->job);
  while (w->busy)
    cairn_cond_wait(&w->h.cv, &w->h.mu);
}

void warmer_submit(warmer **wp, const uint8_t *map, uint64_t map_len,
                   uint32_t psize, pgvec *pages) {
  if (!*wp && pages->len && map)
    *wp = warmer_new();
  warmer *w = *wp;
  if (!w || !pages->len || !map || !psize) {
    pgvec_free(pages);
    return;
  }
  cairn_mutex_lock(&w->h.mu);
  cancel_locked(w);
  w->job = *pages;
  *pages = (pgvec){0};
  w->job_gen = atomic_load_explicit(&w->gen, memory_order_relaxed);
  w->map = map;
  w->map_len = map_len;
  w->psize = psize;
  cairn_cond_broadcast(&w->h.cv);
  cairn_mutex_unlock(&w->h.mu);
}

void warmer_cancel(warmer *w) {
  if (!w)
    return;
  cairn_mutex_lock(&w->h.mu);
  cancel_locked(w);
  cairn_mutex_unlock(&w->h.mu);
}

void warmer_free(warmer *w) {
  if (!w)
    return;
  warmer_cancel(w);
  cairn_helper_stop(&w->h);
  free(w);
}

#endif
