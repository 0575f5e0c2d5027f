/*
 * error.h — how the engine reports failures: a status code plus a detailed
 * message kept per thread, so cairn_errmsg() always describes the last error
 * the calling thread got back from cairn.
 */
#ifndef CAIRN_ERROR_H
#define CAIRN_ERROR_H

#include "cairn.h"

#if defined(__GNUC__)
#define CAIRN_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define CAIRN_PRINTF(a, b)
#endif

/* Record a detailed message for rc on this thread and return rc, so call
 * sites read: return cairn__seterr(CAIRN_CORRUPT, "page %llu: ...", pg); */
int cairn__seterr(int rc, const char *fmt, ...) CAIRN_PRINTF(2, 3);

/* Clear the thread's message (done at the start of public calls that succeed
 * so a stale message never describes a later success). */
void cairn__clearerr(void);

#endif /* CAIRN_ERROR_H */
