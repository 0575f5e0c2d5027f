/*
 * warm.h — a helper thread that maps a checkpoint's new tree into the
 * process's page tables while the writer goes on.
 *
 * The next fold reads every page a checkpoint wrote, and the first touch of
 * a page the process has not mapped costs a page-table fill (~1.7 µs a page
 * on the benchmark VM, a hundred milliseconds per fold of a 1 M-key tree).
 * Touching them on the helper takes that off the writer's path. It is only
 * a hint: nothing waits for it, and on single-threaded hosts it does
 * nothing.
 *
 * Invariant: the helper reads only pages of the job it was given, through a
 * map that stays valid until the database closes, and has stopped reading
 * when warmer_cancel returns — the writer cancels before it lets those
 * pages go (pager_forget) and before close unmaps.
 */
#ifndef CAIRN_WARM_H
#define CAIRN_WARM_H

#include <stdint.h>

#include "pgmap.h"

typedef struct warmer warmer;

/* Touch one byte of every page in pages (page numbers, psize bytes each,
 * read through map, those past map_len skipped) on the helper, started at
 * the first job. Takes pages over (left empty). A job still running is
 * cancelled first. Failures (no memory, no thread) only skip the work. */
void warmer_submit(warmer **w, const uint8_t *map, uint64_t map_len,
                   uint32_t psize, pgvec *pages);
/* Stop the running job, if any; returns once the helper touches nothing. */
void warmer_cancel(warmer *w);
/* Cancel, stop the thread, free. NULL is fine. */
void warmer_free(warmer *w);

#endif
