/*
 * parallel.c: run_chunks (parallel.h), on POSIX threads; elsewhere serial.
 */
#include "parallel.h"

#if !defined(_WIN32) && !defined(__STDC_NO_ATOMICS__)
#include <pthread.h>
#include <stdatomic.h>
#define FOCAL_THREADS 1
#endif

enum { MAX_THREADS = 256 };

typedef struct {
    chunk_worker worker;
    void *shared;
    npy_intp chunk_size, total, chunks;
#ifdef FOCAL_THREADS
    atomic_llong next;   /* the next chunk to hand out */
    atomic_int stop;     /* a chunk failed: hand out no more */
    atomic_llong failed; /* the lowest chunk that failed */
#else
    long long next;
    int stop;
    long long failed;
#endif
} chunk_queue;

typedef struct {
    chunk_queue *queue;
    NpyIter *iter;
} thread_job;

static void
record_failure(chunk_queue *queue, long long chunk)
{
#ifdef FOCAL_THREADS
    long long current = atomic_load(&queue->failed);
    while (chunk < current && !atomic_compare_exchange_weak(&queue->failed, &current, chunk)) {
    }
    atomic_store(&queue->stop, 1);
#else
    if (chunk < queue->failed) {
        queue->failed = chunk;
    }
    queue->stop = 1;
#endif
}

static void *
run_job(void *argument)
{
    thread_job *job = (thread_job *)argument;
    chunk_queue *queue = job->queue;
    for (;;) {
#ifdef FOCAL_THREADS
        if (atomic_load(&queue->stop)) {
            break;
        }
        long long chunk = atomic_fetch_add(&queue->next, 1);
#else
        if (queue->stop) {
            break;
        }
        long long chunk = queue->next++;
#endif
        if (chunk >= queue->chunks) {
            break;
        }
        npy_intp start = (npy_intp)chunk * queue->chunk_size;
        npy_intp end = start + queue->chunk_size < queue->total ? start + queue->chunk_size
                                                                : queue->total;
        if (queue->worker(queue->shared, job->iter, (npy_intp)chunk, start, end) != 0) {
            record_failure(queue, chunk);
        }
    }
    return NULL;
}

int
run_chunks(NpyIter *iter, npy_intp chunk_size, int num_threads, chunk_worker worker,
           void *shared, npy_intp *failed_chunk)
{
    chunk_queue queue;
    queue.worker = worker;
    queue.shared = shared;
    queue.chunk_size = chunk_size;
    queue.total = NpyIter_GetIterSize(iter);
    queue.chunks = (queue.total + chunk_size - 1) / chunk_size;
#ifdef FOCAL_THREADS
    atomic_init(&queue.next, 0);
    atomic_init(&queue.stop, 0);
    atomic_init(&queue.failed, (long long)queue.chunks);
#else
    queue.next = 0;
    queue.stop = 0;
    queue.failed = (long long)queue.chunks;
    num_threads = 1;
#endif
    if (queue.chunks == 0) {
        return 0;
    }
    int needs_api = NpyIter_IterationNeedsAPI(iter);
    int threads = num_threads < 1 ? 1 : num_threads;
    if (threads > MAX_THREADS) {
        threads = MAX_THREADS;
    }
    if (threads > queue.chunks) {
        threads = (int)queue.chunks;
    }
    if (needs_api) {
        threads = 1; /* a cast that calls into Python: keep the GIL, one thread */
    }

    /* every extra thread walks its own copy of the iterator (made with the GIL) */
    thread_job jobs[MAX_THREADS];
    int copies = 0;
    jobs[0].queue = &queue;
    jobs[0].iter = iter;
    for (int k = 1; k < threads; k++) {
        NpyIter *copy = NpyIter_Copy(iter);
        if (copy == NULL) {
            PyErr_Clear(); /* fewer threads, not a failure */
            break;
        }
        jobs[k].queue = &queue;
        jobs[k].iter = copy;
        copies++;
    }

    if (needs_api) {
        run_job(&jobs[0]);
    }
    else {
        Py_BEGIN_ALLOW_THREADS
#ifdef FOCAL_THREADS
        pthread_t handles[MAX_THREADS];
        int started[MAX_THREADS] = {0};
        for (int k = 1; k <= copies; k++) {
            started[k] = pthread_create(&handles[k], NULL, run_job, &jobs[k]) == 0;
        }
        run_job(&jobs[0]); /* a thread that failed to start leaves its chunks to the others */
        for (int k = 1; k <= copies; k++) {
            if (started[k]) {
                pthread_join(handles[k], NULL);
            }
        }
#else
        run_job(&jobs[0]);
#endif
        Py_END_ALLOW_THREADS
    }

    int status = 0;
    for (int k = 1; k <= copies; k++) {
        if (NpyIter_Deallocate(jobs[k].iter) != NPY_SUCCEED) {
            status = -1;
        }
    }
    if (PyErr_Occurred()) {
        return -1;
    }
#ifdef FOCAL_THREADS
    long long failed = atomic_load(&queue.failed);
#else
    long long failed = queue.failed;
#endif
    if (failed < queue.chunks) {
        *failed_chunk = (npy_intp)failed;
        return 1;
    }
    return status;
}
