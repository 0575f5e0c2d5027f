/*
 * threads.h — the few synchronisation primitives the core needs: a mutex, a
 * condition variable, a helper thread, and atomics. pthreads where the host has
 * threads; no-ops on single-threaded WebAssembly builds (WASI preview1,
 * Emscripten without -pthread), where no second thread can exist to race with.
 */
#ifndef CAIRN_THREADS_H
#define CAIRN_THREADS_H

#include <stdatomic.h>
#include <stdint.h>

#if (defined(__wasi__) || defined(__EMSCRIPTEN__)) && !defined(_REENTRANT)
#define CAIRN_SINGLE_THREADED 1
#endif

#ifdef CAIRN_SINGLE_THREADED
typedef struct {
  int unused;
} cairn_mutex;
#define CAIRN_MUTEX_INIT                                                       \
  { 0 }
static inline int cairn_mutex_init(cairn_mutex *m) {
  (void)m;
  return 0;
}
static inline void cairn_mutex_destroy(cairn_mutex *m) { (void)m; }
static inline void cairn_mutex_lock(cairn_mutex *m) { (void)m; }
static inline void cairn_mutex_unlock(cairn_mutex *m) { (void)m; }
typedef int cairn_thread_id;
static inline cairn_thread_id cairn_thread_self(void) { return 1; }
static inline int cairn_thread_equal(cairn_thread_id a, cairn_thread_id b) {
  return a == b;
}
#else
#include <pthread.h>
typedef struct {
  pthread_mutex_t m;
} cairn_mutex;
#define CAIRN_MUTEX_INIT                                                       \
  { PTHREAD_MUTEX_INITIALIZER }
static inline int cairn_mutex_init(cairn_mutex *m) {
  return pthread_mutex_init(&m->m, 0);
}
static inline void cairn_mutex_destroy(cairn_mutex *m) {
  pthread_mutex_destroy(&m->m);
}
static inline void cairn_mutex_lock(cairn_mutex *m) {
  pthread_mutex_lock(&m->m);
}
static inline void cairn_mutex_unlock(cairn_mutex *m) {
  pthread_mutex_unlock(&m->m);
}
typedef pthread_t cairn_thread_id;
static inline cairn_thread_id cairn_thread_self(void) { return pthread_self(); }
static inline int cairn_thread_equal(cairn_thread_id a, cairn_thread_id b) {
  return pthread_equal(a, b);
}
typedef struct {
  pthread_cond_t c;
} cairn_cond;
static inline int cairn_cond_init(cairn_cond *c) {
  return pthread_cond_init(&c->c, 0);
}
static inline void cairn_cond_destroy(cairn_cond *c) {
  pthread_cond_destroy(&c->c);
}
static inline void cairn_cond_wait(cairn_cond *c, cairn_mutex *m) {
  pthread_cond_wait(&c->c, &m->m);
}
static inline void cairn_cond_broadcast(cairn_cond *c) {
  pthread_cond_broadcast(&c->c);
}
/* A helper thread: 0 on success. */
static inline int cairn_thread_start(cairn_thread_id *t, void *(*fn)(void *),
                                     void *arg) {
  return pthread_create(t, 0, fn, arg);
}
static inline void cairn_thread_join(cairn_thread_id t) { pthread_join(t, 0); }

/* A helper thread and the mutex and condition variable it shares with its
 * owner, made and released together. The thread's loop waits on cv under
 * mu and exits when it finds stop set. */
typedef struct {
  cairn_mutex mu;
  cairn_cond cv;
  cairn_thread_id thread;
  int stop; /* mu */
} cairn_helper;
/* 0 on success (fn(arg) runs on the thread); else an errno value, with
 * nothing left to release. */
static inline int cairn_helper_start(cairn_helper *h, void *(*fn)(void *),
                                     void *arg) {
  h->stop = 0;
  int e = pthread_mutex_init(&h->mu.m, 0);
  if (e)
    return e;
  if ((e = pthread_cond_init(&h->cv.c, 0)) != 0) {
    pthread_mutex_destroy(&h->mu.m);
    return e;
  }
  if ((e = cairn_thread_start(&h->thread, fn, arg)) != 0) {
    pthread_cond_destroy(&h->cv.c);
    pthread_mutex_destroy(&h->mu.m);
  }
  return e;
}
/* Set stop, wake the thread, wait for it to exit, release everything. */
static inline void cairn_helper_stop(cairn_helper *h) {
  cairn_mutex_lock(&h->mu);
  h->stop = 1;
  cairn_cond_broadcast(&h->cv);
  cairn_mutex_unlock(&h->mu);
  cairn_thread_join(h->thread);
  cairn_cond_destroy(&h->cv);
  cairn_mutex_destroy(&h->mu);
}
#endif

#endif /* CAIRN_THREADS_H */
