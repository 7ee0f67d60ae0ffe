/* SPDX-License-Identifier: MIT */
/*
 * tests/c/test-aio-multithread.c - coroutines across IOThreads: cross-thread
 * aio_co_schedule, and CoMutex between coroutines of different threads.
 *
 * Ports QEMU's tests/unit/test-aio-multithread.c (catalogue section 2):
 * lifecycle, schedule, mutex/contended, mutex/handoff and the pthread
 * baseline (aiolab has no MCS lock).  Durations are about 1 s by default
 * (QEMU's quick mode); AIOLAB_TEST_SCALE stretches them.  The rates are
 * printed, never asserted.
 *
 * The thread-local "id" of QEMU's test is computed here from the current
 * AioContext instead: a coroutine may move between threads, and a
 * __thread variable read after a yield may come from the wrong thread if
 * the compiler kept its address (see coroutine-ucontext.c).
 */
#include <pthread.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <aiolab/aiolab.h>

#include "harness.h"
#include "util/atomic.h"

#define NUM_CONTEXTS 5

static IOThread *threads[NUM_CONTEXTS];
static AioContext *ctx[NUM_CONTEXTS];

static void create_aio_contexts(void)
{
    int i;

    qemu_init_main_loop(&error_abort);
    bql_lock();
    for (i = 0; i < NUM_CONTEXTS; i++) {
        char id[16];

        snprintf(id, sizeof(id), "iothread%d", i);
        threads[i] = iothread_create(id, &error_abort);
        ctx[i] = iothread_get_aio_context(threads[i]);
        ASSERT_TRUE(ctx[i] != NULL);
    }
}

static void join_aio_contexts(void)
{
    int i;

    for (i = 0; i < NUM_CONTEXTS; i++) {
        iothread_destroy(threads[i]);
        threads[i] = NULL;
        ctx[i] = NULL;
    }
}

/* Which of our IOThreads is running the caller (-1: none). */
static int my_id(void)
{
    AioContext *cur = qemu_get_current_aio_context();
    int i;

    for (i = 0; i < NUM_CONTEXTS; i++) {
        if (ctx[i] == cur) {
            return i;
        }
    }
    return -1;
}

/* Run @cb in IOThread @i and wait for it (main loop, BQL held). */
static void ctx_run(int i, QEMUBHFunc *cb, void *opaque)
{
    aio_wait_bh_oneshot(ctx[i], cb, opaque);
}

static long duration_ms(void)
{
    return harness_scale(1000);
}

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

    while (nanosleep(&ts, &ts) != 0) {
    }
}

/* Per-thread random numbers without shared state (rand() is not). */
static unsigned next_rand(unsigned *seed)
{
    *seed = *seed * 1103515245u + 12345u;
    return *seed >> 16;
}

/* --- /aio/multi/lifecycle ---------------------------------------------- */

static void check_id_cb(void *opaque)
{
    ASSERT_EQ(my_id(), (int)(intptr_t)opaque);
}

static void test_lifecycle(void)
{
    int i;

    create_aio_contexts();
    for (i = 0; i < NUM_CONTEXTS; i++) {
        ctx_run(i, check_id_cb, (void *)(intptr_t)i);
    }
    join_aio_contexts();
}

/* --- /aio/multi/schedule ------------------------------------------------
 *
 * One coroutine per context.  Each loops: take the coroutine parked in a
 * random slot to_schedule[n] (atomic exchange with NULL) and schedule it
 * back into its context n; park itself in its own slot; yield.  Nobody
 * may ever schedule a coroutine twice, and a coroutine always finds its
 * slot empty when it runs (whoever scheduled it emptied it).
 *
 * Where QEMU differs: QEMU's coroutine parks itself even when its pick
 * found nobody to wake ("retry").  The number of runnable coroutines can
 * then only shrink, and after a few retries all five are parked and the
 * exchange stops for the rest of the run.  Here at most four may be
 * parked at once (a coroutine reserves its place in `parked` first); one
 * that finds no room schedules itself back into its own context instead
 * (allowed: it is about to yield there), so the exchange runs for the
 * whole duration.
 */
static Coroutine *to_schedule[NUM_CONTEXTS];
static bool stop[NUM_CONTEXTS];
static int count_retry, count_here, count_other, count_requeue;
static int parked;
static int sched_running;

static bool schedule_next(int n)
{
    Coroutine *co = qatomic_xchg(&to_schedule[n], NULL);

    if (!co) {
        qatomic_inc(&count_retry);
        return false;
    }
    qatomic_dec(&parked);
    if (n == my_id()) {
        qatomic_inc(&count_here);
    } else {
        qatomic_inc(&count_other);
    }
    aio_co_schedule(ctx[n], co);
    return true;
}

static void finish_cb(void *opaque)
{
    int id = my_id();

    qatomic_set(&stop[id], true);
    schedule_next(id);
}

static void coroutine_fn schedule_entry(void *opaque)
{
    int id = my_id();
    unsigned seed = 0x5eed + id;

    ASSERT_GE(id, 0);
    ASSERT_PTR_EQ(qatomic_read(&to_schedule[id]), NULL);
    while (!qatomic_read(&stop[id])) {
        schedule_next(next_rand(&seed) % NUM_CONTEXTS);
        if (qatomic_fetch_add(&parked, 1) < NUM_CONTEXTS - 1) {
            /* Park, then yield.  The exchange is a full barrier: whoever
             * takes us sees everything we did.  finish_cb may run now. */
            (void)qatomic_xchg(&to_schedule[id], qemu_coroutine_self());
        } else {
            qatomic_dec(&parked);
            qatomic_inc(&count_requeue);
            aio_co_schedule(ctx[id], qemu_coroutine_self());
        }
        qemu_coroutine_yield();
        ASSERT_EQ(my_id(), id);         /* scheduled back into ctx[id] */
        ASSERT_PTR_EQ(qatomic_read(&to_schedule[id]), NULL);
    }
    qatomic_dec(&sched_running);
    aio_wait_kick();
}

static void test_schedule(void)
{
    long ms = duration_ms();
    int i;

    create_aio_contexts();
    sched_running = NUM_CONTEXTS;
    for (i = 0; i < NUM_CONTEXTS; i++) {
        aio_co_schedule(ctx[i], qemu_coroutine_create(schedule_entry, NULL));
    }
    sleep_ms(ms);

    for (i = 0; i < NUM_CONTEXTS; i++) {
        ctx_run(i, finish_cb, NULL);
        ASSERT_PTR_EQ(qatomic_read(&to_schedule[i]), NULL);
    }
    AIO_WAIT_WHILE(NULL, qatomic_read(&sched_running) > 0);
    ASSERT_EQ(qatomic_read(&sched_running), 0);
    for (i = 0; i < NUM_CONTEXTS; i++) {
        ASSERT_PTR_EQ(qatomic_read(&to_schedule[i]), NULL);
    }
    join_aio_contexts();

    ASSERT_EQ(qatomic_read(&parked), 0);
    ASSERT_GT(count_other, 0);
    printf("# scheduled %d, queued %d, retry %d, total %d "
           "(self-requeued %d)\n", count_other, count_here, count_retry,
           count_here + count_other + count_retry, count_requeue);
}

/* --- /aio/multi/mutex ---------------------------------------------------
 *
 * One coroutine per context loops: lock; counter++; unlock;
 * atomic_counter++.  A lost update under the lock would make the two
 * counts differ.
 */
static CoMutex comutex;
static pthread_mutex_t pmutex = PTHREAD_MUTEX_INITIALIZER;
static int counter, atomic_counter;
static bool now_stopping;
static int mutex_running;

static void coroutine_fn co_mutex_entry(void *opaque)
{
    while (!qatomic_read(&now_stopping)) {
        qemu_co_mutex_lock(&comutex);
        counter++;
        qemu_co_mutex_unlock(&comutex);
        /* After the unlock: the woken waiter may run in its own thread
         * right away, and must find atomic_counter up to date only once
         * this iteration is over. */
        qatomic_inc(&atomic_counter);
    }
    qatomic_dec(&mutex_running);
    aio_wait_kick();
}

static void coroutine_fn pthread_mutex_entry(void *opaque)
{
    while (!qatomic_read(&now_stopping)) {
        pthread_mutex_lock(&pmutex);
        counter++;
        pthread_mutex_unlock(&pmutex);
        qatomic_inc(&atomic_counter);
    }
    qatomic_dec(&mutex_running);
    aio_wait_kick();
}

static void run_mutex_test(const char *what, CoroutineEntry *entry,
                           int nthreads, long ms)
{
    int i;

    qemu_co_mutex_init(&comutex);
    counter = 0;
    atomic_counter = 0;
    now_stopping = false;
    create_aio_contexts();
    ASSERT_LE(nthreads, NUM_CONTEXTS);
    mutex_running = nthreads;
    for (i = 0; i < nthreads; i++) {
        aio_co_schedule(ctx[i], qemu_coroutine_create(entry, NULL));
    }
    sleep_ms(ms);
    qatomic_set(&now_stopping, true);
    AIO_WAIT_WHILE(NULL, qatomic_read(&mutex_running) > 0);
    join_aio_contexts();

    printf("# %s, %d threads: %ld iterations/second\n", what, nthreads,
           (long)(counter * 1000.0 / ms));
    ASSERT_GT(counter, 0);
    ASSERT_EQ(counter, qatomic_read(&atomic_counter));
    ASSERT_EQ(comutex.locked, 0);
    ASSERT_PTR_EQ(comutex.waiters_head, NULL);
    ASSERT_FALSE(comutex.handoff);
}

static void test_mutex_contended(void)
{
    run_mutex_test("CoMutex", co_mutex_entry, NUM_CONTEXTS, duration_ms());
}

/* Two threads make the race the handoff covers (an unlocker finding a
 * locker that has counted itself but not yet enqueued) frequent. */
static void test_mutex_handoff(void)
{
    run_mutex_test("CoMutex", co_mutex_entry, 2, duration_ms());
}

static void test_mutex_pthread(void)
{
    run_mutex_test("pthread mutex", pthread_mutex_entry, NUM_CONTEXTS,
                   duration_ms());
}

/* --- /aio/multi/reschedule-self -----------------------------------------
 *
 * One coroutine hops from IOThread to IOThread with aio_co_reschedule_self
 * and checks, after each hop, that it runs where it asked to: what it
 * reads about "self" and "current" after a yield must come from the new
 * thread (the coroutine-safe TLS of coroutine-ucontext.c).
 */
static int hops_done;

static void coroutine_fn hop_entry(void *opaque)
{
    long hops = (long)(intptr_t)opaque;
    Coroutine *self = qemu_coroutine_self();
    long i;

    for (i = 0; i < hops; i++) {
        int target = (int)(i % NUM_CONTEXTS);

        aio_co_reschedule_self(ctx[target]);
        ASSERT_EQ(my_id(), target);
        ASSERT_PTR_EQ(qemu_coroutine_self(), self);
        ASSERT_TRUE(qemu_in_coroutine());
        ASSERT_PTR_EQ(qemu_coroutine_get_aio_context(self), ctx[target]);
    }
    qatomic_set(&hops_done, 1);
    aio_wait_kick();
}

static void test_reschedule_self(void)
{
    long hops = harness_sanitizer() ? 2000 : harness_scale(20000);

    create_aio_contexts();
    aio_co_schedule(ctx[0],
                    qemu_coroutine_create(hop_entry, (void *)(intptr_t)hops));
    AIO_WAIT_WHILE(NULL, !qatomic_read(&hops_done));
    ASSERT_EQ(qatomic_read(&hops_done), 1);
    join_aio_contexts();
}

static const TestCase tests[] = {
    { "/aio/multi/lifecycle", test_lifecycle },
    { "/aio/multi/schedule", test_schedule, .timeout = 60 },
    { "/aio/multi/mutex/contended", test_mutex_contended, .timeout = 60 },
    { "/aio/multi/mutex/handoff", test_mutex_handoff, .timeout = 60 },
    { "/aio/multi/mutex/pthread", test_mutex_pthread, .timeout = 60 },
    { "/aio/multi/reschedule-self", test_reschedule_self, .timeout = 60 },
    { NULL }
};

int main(int argc, char **argv)
{
    return harness_main(argc, argv, tests);
}
