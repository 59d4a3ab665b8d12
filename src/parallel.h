/*
 * parallel.h: a call's work cut into fixed chunks and run on a few threads.
 *
 * The chunks are the same whatever the number of threads, and each chunk's
 * partial sums are kept apart and combined in chunk order by the caller, so
 * results are bitwise identical for any thread count.  Threads are started
 * for the call and joined before it returns: nothing survives a call, so
 * there is no pool to break across fork() and no state shared between calls.
 */
#ifndef FOCAL_PARALLEL_H
#define FOCAL_PARALLEL_H

#include "glue.h"

/*
 * Processes chunk number `chunk`, the iteration indices [start, end), on
 * `iter` (the calling thread's own copy).  Runs without the GIL.  Returns 0,
 * or non-zero after recording a problem for that chunk.
 */
typedef int (*chunk_worker)(void *shared, NpyIter *iter, npy_intp chunk, npy_intp start,
                            npy_intp end);

/*
 * Positions a worker's iterator on [start, end) without the GIL and returns
 * its iternext, or NULL after recording LOOP_ITERATOR_FAILED in `problem`.
 */
static inline NpyIter_IterNextFunc *
start_chunk(NpyIter *iter, npy_intp start, npy_intp end, loop_problem *problem)
{
    char *message = NULL;
    NpyIter_IterNextFunc *iternext = NULL;
    if (NpyIter_ResetToIterIndexRange(iter, start, end, &message) == NPY_SUCCEED) {
        iternext = NpyIter_GetIterNext(iter, &message);
    }
    if (iternext == NULL) {
        report(problem, LOOP_ITERATOR_FAILED, 0.0, 0);
    }
    return iternext;
}

/*
 * Runs `worker` over every chunk of `chunk_size` iteration indices of `iter`
 * with up to `num_threads` threads.  Call it with the GIL held; it releases
 * the GIL while the workers run.  Returns 0 when every chunk succeeded, -1
 * with a Python exception set when the machinery failed, or 1 when a worker
 * failed, with *failed_chunk the lowest chunk that did (chunks are handed
 * out in order, so that is the first failure in iteration order).
 */
int run_chunks(NpyIter *iter, npy_intp chunk_size, int num_threads, chunk_worker worker,
               void *shared, npy_intp *failed_chunk);

#endif  /* FOCAL_PARALLEL_H */
