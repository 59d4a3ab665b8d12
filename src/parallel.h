/*
 * parallel.h: a call's work cut into fixed chunks and run on a few threads.
 *
 * The chunks are the same whatever the number of threads, and each chunk's
 * partial sums are kept apart and merged in chunk order, so results are
 * bitwise identical for any thread count.  Threads are started for the call
 * and joined before it returns: nothing survives a call, so there is no pool
 * to break across fork() and no state shared between calls.
 *
 * Memory does not grow with the input: a chunk's results live in one of
 * CHUNK_SLOTS slots (chunk k in slot k % CHUNK_SLOTS) and are merged as soon
 * as every earlier chunk has been; a chunk is not started while its slot still
 * holds an unmerged result.  A call on 2**63 elements needs the same slots as
 * a call on a thousand.
 *
 * A long call stays interruptible: while the workers run without the GIL, the
 * calling thread runs Python's signal handlers every SIGNAL_POLL_SECONDS
 * between its own chunks (and between the pieces of a long softmax row); an
 * exception from a handler (KeyboardInterrupt for Ctrl-C) stops every worker
 * at its next check and is raised by the call.
 */
#ifndef FOCAL_PARALLEL_H
#define FOCAL_PARALLEL_H

#include "glue.h"

/* the chunks whose results may be held at once (in flight or awaiting merge) */
enum { CHUNK_SLOTS = 64 };

/* what a worker returns for its chunk */
enum {
    CHUNK_DONE = 0,
    CHUNK_FAILED = -1,   /* a problem was recorded in the chunk's slot */
    CHUNK_ABANDONED = 1, /* the call was interrupted (chunk_abandon said so) */
};

/* one thread's share of a run_chunks call (opaque) */
typedef struct chunk_thread chunk_thread;

/*
 * Processes the iteration indices [start, end) of one chunk on `iter` (the
 * calling thread's own copy), keeping its results in slot number `slot`.
 * Runs without the GIL.  Returns a CHUNK_* code.
 */
typedef int (*chunk_worker)(void *shared, chunk_thread *self, NpyIter *iter, int slot,
                            npy_intp start, npy_intp end);

/* Folds slot `slot` into the call's totals; called once per successful chunk,
   in chunk order, by one thread at a time, without the GIL. */
typedef void (*chunk_merger)(void *shared, int slot);

/*
 * Whether a worker should give up its chunk at once because the call was
 * interrupted.  A worker whose chunk can take long (a softmax row of millions
 * of classes) asks between pieces; in the calling thread this is also where
 * signals are looked at.  Cheap: an atomic load, and a clock read in the
 * calling thread.
 */
int chunk_abandon(chunk_thread *self);

/*
 * A chunk that writes its results in a scattered order (an `out=` transposed,
 * a softmax along axis 0) may be the first to touch as many pages as it has
 * elements: the kernel's page faults on fresh memory then took 0.3 to 2.3 s
 * of one chunk on a virtual machine (one run of a transposed out= can touch
 * every page of it).  So the passes also ask chunk_abandon every
 * CHUNK_ABANDON_ELEMENTS elements (between blocks: a multiple of
 * FOCAL_BLOCK; a clock read in the calling thread per 4,096 elements).
 * What is left is a single page fault's own stall (a huge page the kernel
 * compacts memory for), which no check between elements can shorten.
 */
enum { CHUNK_ABANDON_ELEMENTS = 4096 };

/* The number of chunks of `chunk_size` (> 0) iteration indices in `total`,
   without forming total + chunk_size - 1 (which overflows near 2**63). */
static inline npy_intp
chunk_count(npy_intp total, npy_intp chunk_size)
{
    return total / chunk_size + (total % chunk_size != 0);
}

/* [*start, *end): the iteration indices of chunk number `chunk` < chunk_count() */
static inline void
chunk_range(npy_intp total, npy_intp chunk_size, npy_intp chunk, npy_intp *start,
            npy_intp *end)
{
    *start = chunk * chunk_size; /* < total, so no overflow */
    *end = total - *start > chunk_size ? *start + chunk_size : total;
}

/*
 * Positions a worker's iterator on [start, end) without the GIL and returns
 * its iternext, or NULL after recording the problem: LOOP_NO_MEMORY when the
 * iterator's buffers could not be allocated (they are allocated at its first
 * reset), else LOOP_ITERATOR_FAILED with NumPy's message.
 */
static inline NpyIter_IterNextFunc *
start_chunk(NpyIter *iter, npy_intp start, npy_intp end, loop_problem *problem)
{
    char *message = NULL;
    NpyIter_IterNextFunc *iternext = NULL;
    /* the buffers of an iterator made with NPY_ITER_DELAY_BUFALLOC are
       allocated by its first reset; our casts (between real types) cannot
       fail, so a first reset that fails ran out of memory (NumPy then reports
       a generic "casting failure" message) */
    int allocates = NpyIter_HasDelayedBufAlloc(iter);
    if (NpyIter_ResetToIterIndexRange(iter, start, end, &message) == NPY_SUCCEED) {
        iternext = NpyIter_GetIterNext(iter, &message);
    }
    if (iternext == NULL) {
        int memory = allocates || (message != NULL && strstr(message, "memory") != NULL);
        report(problem, memory ? LOOP_NO_MEMORY : LOOP_ITERATOR_FAILED, 0.0, 0);
        problem->message = message;
    }
    return iternext;
}

/*
 * The arguments of NpyIter_AdvancedNew that made a call's iterator: every
 * extra thread gets an iterator of its own made the same way.  (NpyIter_Copy
 * would be cheaper, but some NumPy releases, 2.4 among them, do not check its
 * allocation and crash when memory runs out; it is used only when NumPy
 * replaced an operand by a copy, which a second construction would copy
 * again.)
 */
typedef struct {
    int nop;
    PyArrayObject **ops;
    npy_uint32 flags;
    NPY_ORDER order;
    NPY_CASTING casting;
    npy_uint32 *op_flags;
    PyArray_Descr **dtypes;  /* may be NULL */
    int oa_ndim;             /* -1: op_axes unused */
    int **op_axes;
} iterator_recipe;

/* A new iterator from the recipe, or NULL with a Python exception set. */
NpyIter *make_iterator(const iterator_recipe *recipe);

/*
 * Runs `worker` over every chunk of `chunk_size` iteration indices of `iter`
 * (made from `recipe`) with up to `num_threads` threads, and `merge` (may be
 * NULL) over each successful chunk's slot in chunk order.  Call it with the
 * GIL held; it releases the GIL while the workers run.  Returns 0 when every
 * chunk succeeded; -1 with a Python exception set when the machinery failed
 * or a signal handler raised; or 1 when a worker failed, with *failed_slot the
 * slot of the lowest chunk that did (the first failure in iteration order,
 * whatever the threads).
 */
int run_chunks(const iterator_recipe *recipe, NpyIter *iter, npy_intp chunk_size,
               int num_threads, chunk_worker worker, chunk_merger merge, void *shared,
               int *failed_slot);

/*
 * For a long loop of the calling thread outside run_chunks: runs Python's
 * signal handlers when SIGNAL_POLL_SECONDS have passed since the last look.
 * `*saved` is the thread's state while the loop runs with the GIL released
 * (the GIL is taken back for the look, then released again), or NULL when the
 * GIL is held.  Returns -1 with the handler's exception set, else 0.
 */
typedef struct {
    double next;  /* when to look next (seconds, monotonic) */
    int state;    /* 0: main thread not yet checked; 1: polling; -1: never */
} signal_poll;

void signal_poll_init(signal_poll *poll);
int signal_poll_check(signal_poll *poll, PyThreadState **saved);

/* for the tests of the chunk arithmetic near 2**63 */
PyObject *chunk_plan_entry(PyObject *module, PyObject *args);

/* Raises the Python exception describing `problem`; returns NULL. */
PyObject *raise_loop_problem(const loop_problem *problem);

#endif  /* FOCAL_PARALLEL_H */
