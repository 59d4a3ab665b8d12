/*
 * parallel.c: run_chunks (parallel.h), on POSIX threads; elsewhere serial;
 * and the messages of the problems the chunks record (raise_loop_problem).
 */
#include "parallel.h"

#include <string.h>
#include <time.h>

#if !defined(_WIN32) && !defined(__STDC_NO_ATOMICS__)
#include <pthread.h>
#include <stdatomic.h>
#define FOCAL_THREADS 1
#endif

enum { MAX_THREADS = 256 };

/* how often the calling thread runs Python's signal handlers during a long
   call: often enough for Ctrl-C to be felt at once, rarely enough that taking
   the GIL back (which can wait for another Python thread's switch interval)
   costs nothing measurable */
#define SIGNAL_POLL_SECONDS 0.02

#ifdef FOCAL_THREADS
typedef atomic_llong shared_llong;
typedef atomic_int shared_int;
#define LOAD(X) atomic_load(&(X))
#define STORE(X, V) atomic_store(&(X), (V))
#else
typedef long long shared_llong;
typedef int shared_int;
#define LOAD(X) (X)
#define STORE(X, V) ((X) = (V))
#endif

typedef struct {
    chunk_worker worker;
    chunk_merger merge;
    void *shared;
    npy_intp chunk_size, total, chunks;
    shared_llong next;      /* the next chunk to hand out */
    shared_int stop;        /* a chunk failed: hand out no more */
    shared_int interrupted; /* a signal handler raised: abandon everything */
    shared_llong failed;    /* the lowest chunk that failed */
#ifdef FOCAL_THREADS
    pthread_mutex_t lock;   /* guards merged and finished */
    pthread_cond_t progress; /* merged grew, or the call stops */
#endif
    long long merged;       /* chunks [0, merged) are merged */
    unsigned char finished[CHUNK_SLOTS]; /* a done chunk's result awaits merging */
} chunk_queue;

struct chunk_thread {
    chunk_queue *queue;
    NpyIter *iter;
    int caller;            /* the calling thread: it looks at signals */
    PyThreadState *saved;  /* the caller's state while the GIL is released, else NULL */
    signal_poll poll;
};

static double
monotonic_seconds(void)
{
    struct timespec now;
#if defined(CLOCK_MONOTONIC)
    clock_gettime(CLOCK_MONOTONIC, &now);
#else
    timespec_get(&now, TIME_UTC);
#endif
    return (double)now.tv_sec + 1e-9 * (double)now.tv_nsec;
}

/* ---------------------------------------------------------------- signals */

void
signal_poll_init(signal_poll *poll)
{
    poll->next = monotonic_seconds() + SIGNAL_POLL_SECONDS;
    poll->state = 0;
}

/* Whether this is the thread in which Python runs signal handlers (with the
   GIL): 1 or 0.  Asked once per long call.  The lookup runs Python code, which
   runs the handlers of signals already pending: a handler's exception (Ctrl-C's
   KeyboardInterrupt) is the call's to raise, so it is kept, and -1 returned. */
static int
in_main_thread(void)
{
    int main = -1;
    PyObject *threading = PyImport_ImportModule("threading");
    PyObject *thread = threading ? PyObject_CallMethod(threading, "main_thread", NULL) : NULL;
    PyObject *ident = thread ? PyObject_GetAttrString(thread, "ident") : NULL;
    if (ident != NULL) {
        unsigned long value = PyLong_AsUnsignedLong(ident);
        if (!(value == (unsigned long)-1 && PyErr_Occurred())) {
            main = value == PyThread_get_thread_ident();
        }
    }
    Py_XDECREF(ident);
    Py_XDECREF(thread);
    Py_XDECREF(threading);
    return main;
}

int
signal_poll_check(signal_poll *poll, PyThreadState **saved)
{
    if (poll->state < 0) {
        return 0;
    }
    double now = monotonic_seconds();
    if (now < poll->next) {
        return 0;
    }
    poll->next = now + SIGNAL_POLL_SECONDS;
    if (saved != NULL && *saved != NULL) {
        PyEval_RestoreThread(*saved);
    }
    if (poll->state == 0) {
        /* only the main thread runs handlers: elsewhere, never take the GIL again */
        int main = in_main_thread();
        poll->state = main > 0 ? 1 : -1;
        if (main < 0) { /* a handler raised during the lookup */
            if (saved != NULL && *saved != NULL) {
                *saved = PyEval_SaveThread();
            }
            return -1;
        }
    }
    int status = poll->state > 0 ? PyErr_CheckSignals() : 0;
    if (saved != NULL && *saved != NULL) {
        *saved = PyEval_SaveThread();
    }
    return status < 0 ? -1 : 0;
}

/* ------------------------------------------------------------ the queue */

static void
lock_queue(chunk_queue *queue)
{
#ifdef FOCAL_THREADS
    pthread_mutex_lock(&queue->lock);
#else
    (void)queue;
#endif
}

static void
unlock_queue(chunk_queue *queue, int wake)
{
#ifdef FOCAL_THREADS
    if (wake) {
        pthread_cond_broadcast(&queue->progress);
    }
    pthread_mutex_unlock(&queue->lock);
#else
    (void)queue;
    (void)wake;
#endif
}

static int
stopping(chunk_queue *queue)
{
    return LOAD(queue->stop) || LOAD(queue->interrupted);
}

int
chunk_abandon(chunk_thread *self)
{
    chunk_queue *queue = self->queue;
    if (self->caller && !LOAD(queue->interrupted) &&
        signal_poll_check(&self->poll, &self->saved) < 0) {
        STORE(queue->interrupted, 1);
        lock_queue(queue);
        unlock_queue(queue, 1); /* wake the threads waiting for a slot */
    }
    return LOAD(queue->interrupted);
}

static void
record_failure(chunk_queue *queue, long long chunk)
{
#ifdef FOCAL_THREADS
    long long current = atomic_load(&queue->failed);
    while (chunk < current && !atomic_compare_exchange_weak(&queue->failed, &current, chunk)) {
    }
#else
    if (chunk < queue->failed) {
        queue->failed = chunk;
    }
#endif
    STORE(queue->stop, 1);
    lock_queue(queue);
    unlock_queue(queue, 1);
}

/*
 * Waits until chunk's slot is free (every chunk CHUNK_SLOTS or more before it
 * merged).  Returns 0 when the call stops meanwhile.  A chunk that waits is
 * later than every chunk started, so one that fails cannot hide behind it.
 */
static int
wait_for_slot(chunk_thread *self, long long chunk)
{
    chunk_queue *queue = self->queue;
    lock_queue(queue);
    while (chunk - queue->merged >= CHUNK_SLOTS && !stopping(queue)) {
#ifdef FOCAL_THREADS
        if (self->caller) {
            /* a timed wait: the caller keeps looking at signals */
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_nsec += 5 * 1000 * 1000;
            if (until.tv_nsec >= 1000 * 1000 * 1000) {
                until.tv_sec += 1;
                until.tv_nsec -= 1000 * 1000 * 1000;
            }
            pthread_cond_timedwait(&queue->progress, &queue->lock, &until);
            unlock_queue(queue, 0);
            chunk_abandon(self);
            lock_queue(queue);
        }
        else {
            pthread_cond_wait(&queue->progress, &queue->lock);
        }
#endif
    }
    int go = !stopping(queue);
    unlock_queue(queue, 0);
    return go;
}

/* marks a chunk done and merges every finished chunk that is next in order */
static void
finish_chunk(chunk_queue *queue, long long chunk)
{
    lock_queue(queue);
    queue->finished[chunk % CHUNK_SLOTS] = 1;
    int merged_any = 0;
    while (queue->merged < queue->chunks && queue->finished[queue->merged % CHUNK_SLOTS]) {
        int slot = (int)(queue->merged % CHUNK_SLOTS);
        queue->finished[slot] = 0;
        if (queue->merge != NULL) {
            queue->merge(queue->shared, slot);
        }
        queue->merged++;
        merged_any = 1;
    }
    unlock_queue(queue, merged_any);
}

static void *
run_job(void *argument)
{
    chunk_thread *self = (chunk_thread *)argument;
    chunk_queue *queue = self->queue;
    for (;;) {
        if (stopping(queue)) {
            break;
        }
#ifdef FOCAL_THREADS
        long long chunk = atomic_fetch_add(&queue->next, 1);
#else
        long long chunk = queue->next++;
#endif
        if (chunk >= queue->chunks || !wait_for_slot(self, chunk)) {
            break;
        }
        npy_intp start, end;
        chunk_range(queue->total, queue->chunk_size, (npy_intp)chunk, &start, &end);
        int slot = (int)(chunk % CHUNK_SLOTS);
        int status = queue->worker(queue->shared, self, self->iter, slot, start, end);
        if (status == CHUNK_DONE) {
            finish_chunk(queue, chunk);
        }
        else if (status == CHUNK_FAILED) {
            record_failure(queue, chunk);
        }
        chunk_abandon(self); /* the caller looks at signals between chunks */
    }
    return NULL;
}

NpyIter *
make_iterator(const iterator_recipe *recipe)
{
    NpyIter *iter = NpyIter_AdvancedNew(recipe->nop, recipe->ops, recipe->flags,
                                        recipe->order, recipe->casting, recipe->op_flags,
                                        recipe->dtypes, recipe->oa_ndim, recipe->op_axes,
                                        NULL, 0);
    if (iter == NULL && !PyErr_Occurred()) {
        /* NumPy 2.4 returns NULL without an exception when one of the
           iterator's own allocations fails (seen under a capped address space) */
        PyErr_NoMemory();
    }
    return iter;
}

/* Another iterator like `iter` for one more thread, or NULL (exception set). */
static NpyIter *
another_iterator(const iterator_recipe *recipe, NpyIter *iter)
{
    PyArrayObject **operands = NpyIter_GetOperandArray(iter);
    for (int k = 0; k < recipe->nop; k++) {
        if (operands[k] != recipe->ops[k]) {
            return NpyIter_Copy(iter); /* share NumPy's copy of an overlapping operand */
        }
    }
    return make_iterator(recipe);
}

int
run_chunks(const iterator_recipe *recipe, NpyIter *iter, npy_intp chunk_size,
           int num_threads, chunk_worker worker, chunk_merger merge, void *shared,
           int *failed_slot)
{
    if (chunk_size < 1) {
        PyErr_SetString(PyExc_SystemError, "focal: chunks must hold at least one index");
        return -1;
    }
    chunk_queue queue;
    memset(&queue, 0, sizeof queue);
    queue.worker = worker;
    queue.merge = merge;
    queue.shared = shared;
    queue.chunk_size = chunk_size;
    queue.total = NpyIter_GetIterSize(iter);
    queue.chunks = chunk_count(queue.total, chunk_size);
    STORE(queue.next, 0);
    STORE(queue.stop, 0);
    STORE(queue.interrupted, 0);
    STORE(queue.failed, (long long)queue.chunks);
    if (queue.chunks == 0) {
        return 0;
    }
#ifdef FOCAL_THREADS
    if (pthread_mutex_init(&queue.lock, NULL) != 0) {
        PyErr_SetString(PyExc_MemoryError, "focal: no mutex for the threads");
        return -1;
    }
    if (pthread_cond_init(&queue.progress, NULL) != 0) {
        pthread_mutex_destroy(&queue.lock);
        PyErr_SetString(PyExc_MemoryError, "focal: no condition variable for the threads");
        return -1;
    }
#else
    num_threads = 1;
#endif
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

    /* every extra thread walks its own iterator (made with the GIL) */
    chunk_thread jobs[MAX_THREADS];
    int copies = 0;
    memset(&jobs[0], 0, sizeof jobs[0]);
    jobs[0].queue = &queue;
    jobs[0].iter = iter;
    jobs[0].caller = 1;
    signal_poll_init(&jobs[0].poll);
    for (int k = 1; k < threads; k++) {
        NpyIter *copy = another_iterator(recipe, iter);
        if (copy == NULL) {
            PyErr_Clear(); /* fewer threads, not a failure */
            break;
        }
        memset(&jobs[k], 0, sizeof jobs[k]);
        jobs[k].queue = &queue;
        jobs[k].iter = copy;
        copies++;
    }

    if (needs_api) {
        run_job(&jobs[0]); /* GIL held: saved stays NULL */
    }
    else {
        jobs[0].saved = PyEval_SaveThread();
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
        PyEval_RestoreThread(jobs[0].saved);
    }
#ifdef FOCAL_THREADS
    pthread_cond_destroy(&queue.progress);
    pthread_mutex_destroy(&queue.lock);
#endif

    int status = 0;
    for (int k = 1; k <= copies; k++) {
        if (NpyIter_Deallocate(jobs[k].iter) != NPY_SUCCEED) {
            status = -1;
        }
    }
    if (status < 0 && !PyErr_Occurred()) {
        PyErr_SetString(PyExc_RuntimeError, "focal: NumPy could not release an iterator");
    }
    if (PyErr_Occurred()) {
        return -1; /* a signal handler's exception, or the iterator's */
    }
    long long failed = LOAD(queue.failed);
    if (failed < queue.chunks) {
        *failed_slot = (int)(failed % CHUNK_SLOTS);
        return 1;
    }
    return status;
}

/*
 * _core.chunk_plan(total, chunk_size) -> (chunks, start, end)
 *
 * The number of chunks and the range of the last one, as run_chunks computes
 * them: the tests check this arithmetic at sizes near 2**63, which no test
 * can iterate over.
 */
PyObject *
chunk_plan_entry(PyObject *Py_UNUSED(module), PyObject *args)
{
    Py_ssize_t total, chunk_size;
    if (!PyArg_ParseTuple(args, "nn", &total, &chunk_size)) {
        return NULL;
    }
    if (total < 0 || chunk_size < 1) {
        PyErr_SetString(PyExc_ValueError, "total: expected >= 0 with chunk_size >= 1");
        return NULL;
    }
    npy_intp chunks = chunk_count((npy_intp)total, (npy_intp)chunk_size);
    npy_intp start = 0, end = 0;
    if (chunks > 0) {
        chunk_range((npy_intp)total, (npy_intp)chunk_size, chunks - 1, &start, &end);
    }
    return Py_BuildValue("(nnn)", (Py_ssize_t)chunks, (Py_ssize_t)start, (Py_ssize_t)end);
}

/* Raises `exception` with a message naming a float value (formatted by repr). */
static PyObject *
raise_with_value(PyObject *exception, const char *format, double value)
{
    PyObject *number = PyFloat_FromDouble(value);
    if (number != NULL) {
        PyErr_Format(exception, format, number);
        Py_DECREF(number);
    }
    return NULL;
}

PyObject *
raise_loop_problem(const loop_problem *problem)
{
    switch (problem->code) {
    case LOOP_BAD_TARGET:
        return raise_with_value(PyExc_ValueError,
                                problem->argument && strcmp(problem->argument, "labels") == 0
                                    ? "labels: dense targets must lie in [0, 1]; found %R"
                                    : "targets: values must lie in [0, 1]; found %R",
                                problem->value);
    case LOOP_BAD_HARD_TARGET: /* (the elementwise driver names its loss instead) */
        return raise_with_value(PyExc_ValueError,
                                "targets: values must be 0 or 1; found %R", problem->value);
    case LOOP_BAD_LABEL:
        if (problem->background) {
            return PyErr_Format(PyExc_ValueError,
                                "targets: class indices must lie in [0, %zd] (%zd marks a "
                                "background row) or equal ignore_index=%zd; found %zd",
                                (Py_ssize_t)problem->num_classes,
                                (Py_ssize_t)problem->num_classes,
                                (Py_ssize_t)problem->ignore_index, (Py_ssize_t)problem->label);
        }
        return PyErr_Format(PyExc_ValueError,
                            "labels: class indices must lie in [0, %zd) or equal "
                            "ignore_index=%zd; found %zd",
                            (Py_ssize_t)problem->num_classes, (Py_ssize_t)problem->ignore_index,
                            (Py_ssize_t)problem->label);
    case LOOP_BAD_WEIGHT:
        return raise_with_value(PyExc_ValueError,
                                "weights: values must be finite and non-negative; found %R",
                                problem->value);
    case LOOP_NO_MEMORY:
        return PyErr_NoMemory();
    case LOOP_ITERATOR_FAILED:
        /* not an allocation (start_chunk reports those as LOOP_NO_MEMORY):
           NumPy's own words */
        return PyErr_Format(PyExc_RuntimeError, "focal: NumPy's iterator failed: %s",
                            problem->message ? problem->message : "(no message)");
    }
    return PyErr_Format(PyExc_RuntimeError, "focal: unknown loop problem %d", problem->code);
}
