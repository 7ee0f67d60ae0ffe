/* SPDX-License-Identifier: MIT */
/*
 * tests/c/test-coroutine.c - coroutines, CoMutex, CoQueue, sleep, the
 * pool, the abort paths, and the gdb script.
 *
 * Ports the functional scenarios of QEMU's tests/unit/test-coroutine.c
 * (catalogue section 7; aiolab has no CoRwlock) and the two coroutine
 * cases of test-aio.c (queue-chaining, worker-thread-co-enter), plus
 * aiolab's own.  Each case asserts after every step.  The /perf cases
 * print timings and assert nothing.
 *
 * A few cases look inside (util/coroutine-int.h) where QEMU's do too:
 * /basic/no-dangling-access scribbles over a terminated coroutine.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <aiolab/aiolab.h>

#include "harness.h"
#include "util/coroutine-int.h"

#ifndef ARRAY_SIZE
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#endif

static AioContext *ctx;

/* Cases that wake coroutines need a context: the main one. */
static void setup(void)
{
    qemu_init_main_loop(&error_abort);
    ctx = qemu_get_aio_context();
    while (aio_poll(ctx, false)) {
    }
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* --- /basic ----------------------------------------------------------- */

static void coroutine_fn c2_yield_fn(void *opaque)
{
    qemu_coroutine_yield();
}

static void coroutine_fn c1_enter_fn(void *opaque)
{
    qemu_coroutine_enter(opaque);
}

/* Finishing c2 must not touch c1, its former caller, now pooled. */
static void test_no_dangling_access(void)
{
    Coroutine *c2 = qemu_coroutine_create(c2_yield_fn, NULL);
    Coroutine *c1 = qemu_coroutine_create(c1_enter_fn, c2);
    Coroutine saved;

    qemu_coroutine_enter(c1);
    ASSERT_FALSE(qemu_coroutine_entered(c1));
    ASSERT_FALSE(qemu_coroutine_entered(c2));
    ASSERT_TRUE(c1->pooled);

    saved = *c1;
    memset(c1, 0xff, sizeof(*c1));
    qemu_coroutine_enter(c2);
    *c1 = saved;
    ASSERT_TRUE(c2->pooled);
}

static void coroutine_fn set_done_fn(void *opaque)
{
    *(bool *)opaque = true;
}

static void test_lifecycle(void)
{
    bool done = false;
    Coroutine *co = qemu_coroutine_create(set_done_fn, &done);

    qemu_coroutine_enter(co);
    ASSERT_TRUE(done);

    done = false;
    co = qemu_coroutine_create(set_done_fn, &done);
    qemu_coroutine_enter(co);
    ASSERT_TRUE(done);
}

static void coroutine_fn yield_5_times_fn(void *opaque)
{
    bool *done = opaque;
    int i;

    for (i = 0; i < 5; i++) {
        qemu_coroutine_yield();
    }
    *done = true;
}

static void test_yield(void)
{
    bool done = false;
    Coroutine *co = qemu_coroutine_create(yield_5_times_fn, &done);
    int i = -1;    /* the last enter only terminates: not a yield */

    while (!done) {
        qemu_coroutine_enter(co);
        i++;
        ASSERT_TRUE(i == 5 || !done);
    }
    ASSERT_EQ(i, 5);
}

typedef struct {
    unsigned n_enter;
    unsigned n_return;
    unsigned max;
} NestData;

static void coroutine_fn nest_fn(void *opaque)
{
    NestData *nd = opaque;

    nd->n_enter++;
    if (nd->n_enter < nd->max) {
        Coroutine *child = qemu_coroutine_create(nest_fn, nd);

        qemu_coroutine_enter(child);
        ASSERT_FALSE(qemu_coroutine_entered(child));
    }
    nd->n_return++;
}

static void test_nesting(void)
{
    NestData nd = { .max = 128 };
    Coroutine *root = qemu_coroutine_create(nest_fn, &nd);

    qemu_coroutine_enter(root);
    ASSERT_EQ(nd.n_enter, 128);
    ASSERT_EQ(nd.n_return, 128);
}

static void coroutine_fn check_self_fn(void *opaque)
{
    Coroutine **expected = opaque;

    ASSERT_PTR_EQ(qemu_coroutine_self(), *expected);
}

static void test_self(void)
{
    Coroutine *co = qemu_coroutine_create(check_self_fn, &co);

    ASSERT_TRUE(qemu_coroutine_self() != NULL);   /* the leader */
    ASSERT_TRUE(qemu_coroutine_self() != co);
    qemu_coroutine_enter(co);
}

static void coroutine_fn entered_inner_fn(void *opaque)
{
    Coroutine *outer = opaque;

    ASSERT_TRUE(qemu_coroutine_entered(outer));   /* it entered us */
    ASSERT_TRUE(qemu_coroutine_entered(qemu_coroutine_self()));
    qemu_coroutine_yield();
    ASSERT_TRUE(qemu_coroutine_entered(outer));
    ASSERT_TRUE(qemu_coroutine_entered(qemu_coroutine_self()));
}

static void coroutine_fn entered_outer_fn(void *opaque)
{
    Coroutine *self = qemu_coroutine_self();
    Coroutine *inner;

    ASSERT_TRUE(qemu_coroutine_entered(self));
    inner = qemu_coroutine_create(entered_inner_fn, self);
    ASSERT_FALSE(qemu_coroutine_entered(inner));
    qemu_coroutine_enter(inner);
    ASSERT_FALSE(qemu_coroutine_entered(inner));   /* it yielded */
    qemu_coroutine_enter(inner);
    ASSERT_FALSE(qemu_coroutine_entered(inner));   /* it terminated */
}

static void test_entered(void)
{
    Coroutine *outer = qemu_coroutine_create(entered_outer_fn, NULL);

    ASSERT_FALSE(qemu_coroutine_entered(outer));
    qemu_coroutine_enter(outer);
    ASSERT_FALSE(qemu_coroutine_entered(outer));
}

static void coroutine_fn in_coroutine_fn(void *opaque)
{
    ASSERT_TRUE(qemu_in_coroutine());
}

static void test_in_coroutine(void)
{
    Coroutine *co;

    ASSERT_FALSE(qemu_in_coroutine());
    co = qemu_coroutine_create(in_coroutine_fn, NULL);
    qemu_coroutine_enter(co);
    ASSERT_FALSE(qemu_in_coroutine());
}

typedef struct {
    int func, state;
} OrderRecord;

static OrderRecord order_log[8];
static int order_n;

static void order_push(int func, int state)
{
    order_log[order_n].func = func;
    order_log[order_n].state = state;
    order_n++;
}

static void coroutine_fn order_fn(void *opaque)
{
    ASSERT_TRUE(qemu_in_coroutine());
    order_push(2, 1);
    qemu_coroutine_yield();
    order_push(2, 2);
    ASSERT_TRUE(qemu_in_coroutine());
}

static void test_order(void)
{
    static const OrderRecord expected[] = {
        { 1, 1 }, { 2, 1 }, { 1, 2 }, { 2, 2 }, { 1, 3 },
    };
    Coroutine *co = qemu_coroutine_create(order_fn, NULL);
    size_t i;

    order_push(1, 1);
    qemu_coroutine_enter(co);
    order_push(1, 2);
    ASSERT_FALSE(qemu_in_coroutine());
    qemu_coroutine_enter(co);
    order_push(1, 3);
    ASSERT_FALSE(qemu_in_coroutine());

    ASSERT_EQ(order_n, ARRAY_SIZE(expected));
    for (i = 0; i < ARRAY_SIZE(expected); i++) {
        ASSERT_EQ(order_log[i].func, expected[i].func);
        ASSERT_EQ(order_log[i].state, expected[i].state);
    }
}

/* Wake-ups run depth-first: what a woken coroutine wakes runs before the
 * older pending ones. */
static char wake_log[8];
static int wake_n;
static Coroutine *wake_b, *wake_c, *wake_d;

static void coroutine_fn wake_log_fn(void *opaque)
{
    wake_log[wake_n++] = *(const char *)opaque;
    if (*(const char *)opaque == 'B') {
        aio_co_wake(wake_d);
    }
}

static void coroutine_fn wake_parent_fn(void *opaque)
{
    wake_log[wake_n++] = 'A';
    aio_co_wake(wake_b);        /* queued: they run when we yield */
    aio_co_wake(wake_c);
    ASSERT_EQ(wake_n, 1);
    qemu_coroutine_yield();
}

static void coroutine_fn wake_stub_fn(void *opaque)
{
    qemu_coroutine_yield();
    wake_log_fn(opaque);
}

static void test_wake_depth_first(void)
{
    Coroutine *a = qemu_coroutine_create(wake_parent_fn, NULL);

    setup();
    /* Enter each once so that it has yielded in ctx (aio_co_wake needs
     * the context where it last ran). */
    wake_b = qemu_coroutine_create(wake_stub_fn, "B");
    wake_c = qemu_coroutine_create(wake_stub_fn, "C");
    wake_d = qemu_coroutine_create(wake_stub_fn, "D");
    qemu_coroutine_enter(wake_b);
    qemu_coroutine_enter(wake_c);
    qemu_coroutine_enter(wake_d);

    qemu_coroutine_enter(a);
    ASSERT_EQ(wake_n, 4);
    ASSERT_EQ(memcmp(wake_log, "ABDC", 4), 0);
    qemu_coroutine_enter(a);
}

/* --- /locking ---------------------------------------------------------- */

static CoMutex test_mutex;
static bool mutex_locked;
static int mutex_done;

static void coroutine_fn mutex_fn(void *opaque)
{
    qemu_co_mutex_lock(&test_mutex);
    qemu_co_mutex_assert_locked(&test_mutex);
    ASSERT_FALSE(mutex_locked);
    mutex_locked = true;
    qemu_coroutine_yield();
    mutex_locked = false;
    qemu_co_mutex_unlock(&test_mutex);
    mutex_done++;
}

static void test_co_mutex(void)
{
    Coroutine *c1 = qemu_coroutine_create(mutex_fn, NULL);
    Coroutine *c2 = qemu_coroutine_create(mutex_fn, NULL);

    setup();
    qemu_co_mutex_init(&test_mutex);
    qemu_coroutine_enter(c1);
    ASSERT_TRUE(mutex_locked);
    ASSERT_EQ(mutex_done, 0);
    ASSERT_PTR_EQ(test_mutex.holder, c1);
    ASSERT_PTR_EQ(test_mutex.ctx, ctx);

    qemu_coroutine_enter(c2);           /* blocks on the mutex, yields */
    ASSERT_TRUE(mutex_locked);
    ASSERT_EQ(mutex_done, 0);
    ASSERT_PTR_EQ(test_mutex.holder, c1);
    ASSERT_EQ(test_mutex.locked, 2);

    /* c1 unlocks and terminates; the wake-up of c2 was queued and runs
     * right after, taking the lock and yielding. */
    qemu_coroutine_enter(c1);
    ASSERT_EQ(mutex_done, 1);
    ASSERT_TRUE(mutex_locked);
    ASSERT_PTR_EQ(test_mutex.holder, c2);

    qemu_coroutine_enter(c2);
    ASSERT_EQ(mutex_done, 2);
    ASSERT_FALSE(mutex_locked);
    ASSERT_EQ(test_mutex.locked, 0);
    ASSERT_PTR_EQ(test_mutex.holder, NULL);
    ASSERT_PTR_EQ(test_mutex.ctx, NULL);
}

/* A zero-filled CoMutex (static storage) needs no init; waiters are
 * served first come, first served. */
static CoMutex zero_mutex;
static char fifo_log[8];
static int fifo_n;

static void coroutine_fn fifo_fn(void *opaque)
{
    qemu_co_mutex_lock(&zero_mutex);
    fifo_log[fifo_n++] = *(const char *)opaque;
    qemu_coroutine_yield();
    qemu_co_mutex_unlock(&zero_mutex);
}

static void test_co_mutex_zeroed_fifo(void)
{
    static const char *names[] = { "1", "2", "3", "4" };
    Coroutine *co[4];
    int i;

    setup();
    for (i = 0; i < 4; i++) {
        co[i] = qemu_coroutine_create(fifo_fn, (void *)names[i]);
        qemu_coroutine_enter(co[i]);
        ASSERT_EQ(fifo_n, 1);           /* only the first got it */
        ASSERT_EQ(zero_mutex.locked, i + 1);
    }
    /* Each holder resumes, unlocks (waking the next) and terminates. */
    for (i = 0; i < 4; i++) {
        qemu_coroutine_enter(co[i]);
        ASSERT_EQ(fifo_n, i < 3 ? i + 2 : 4);
    }
    ASSERT_EQ(memcmp(fifo_log, "1234", 4), 0);
    ASSERT_EQ(zero_mutex.locked, 0);
}

static CoQueue test_queue;
static int queue_woken;

static void coroutine_fn queue_wait_fn(void *opaque)
{
    CoMutex *lock = opaque;

    if (lock) {
        qemu_co_mutex_lock(lock);
    }
    qemu_co_queue_wait(&test_queue, lock);
    if (lock) {
        qemu_co_mutex_assert_locked(lock);   /* re-taken when woken */
    }
    queue_woken++;
    if (lock) {
        qemu_co_mutex_unlock(lock);
    }
}

typedef enum { WAKE_NEXT, WAKE_ALL } WakeHow;

static void coroutine_fn queue_waker_fn(void *opaque)
{
    WakeHow how = *(WakeHow *)opaque;
    int before = queue_woken;

    if (how == WAKE_NEXT) {
        ASSERT_TRUE(qemu_co_queue_next(&test_queue));
    } else {
        qemu_co_queue_restart_all(&test_queue);
    }
    ASSERT_EQ(queue_woken, before);     /* they run when we terminate */
}

static void test_co_queue_next(void)
{
    WakeHow how = WAKE_NEXT;
    CoMutex lock;
    int i;

    setup();
    qemu_co_queue_init(&test_queue);
    qemu_co_mutex_init(&lock);
    ASSERT_TRUE(qemu_co_queue_empty(&test_queue));
    for (i = 0; i < 3; i++) {
        qemu_coroutine_enter(qemu_coroutine_create(queue_wait_fn, &lock));
    }
    ASSERT_FALSE(qemu_co_queue_empty(&test_queue));
    ASSERT_EQ(lock.locked, 0);      /* waiting released it */

    for (i = 1; i <= 3; i++) {
        qemu_coroutine_enter(qemu_coroutine_create(queue_waker_fn, &how));
        ASSERT_EQ(queue_woken, i);
    }
    ASSERT_TRUE(qemu_co_queue_empty(&test_queue));
    ASSERT_EQ(lock.locked, 0);
}

static void test_co_queue_restart_all(void)
{
    WakeHow how = WAKE_ALL;
    int i;

    setup();
    qemu_co_queue_init(&test_queue);
    for (i = 0; i < 3; i++) {
        qemu_coroutine_enter(qemu_coroutine_create(queue_wait_fn, NULL));
    }
    qemu_coroutine_enter(qemu_coroutine_create(queue_waker_fn, &how));
    ASSERT_EQ(queue_woken, 3);
    ASSERT_TRUE(qemu_co_queue_empty(&test_queue));
}

/* From outside a coroutine, the woken waiter has run on return. */
static void test_co_enter_next(void)
{
    int i;

    setup();
    qemu_co_queue_init(&test_queue);
    ASSERT_FALSE(qemu_co_enter_next(&test_queue, NULL));
    for (i = 0; i < 3; i++) {
        qemu_coroutine_enter(qemu_coroutine_create(queue_wait_fn, NULL));
    }
    ASSERT_TRUE(qemu_co_enter_next(&test_queue, NULL));
    ASSERT_EQ(queue_woken, 1);
    qemu_co_enter_all(&test_queue, NULL);
    ASSERT_EQ(queue_woken, 3);
    ASSERT_TRUE(qemu_co_queue_empty(&test_queue));
}

/* From a coroutine holding the CoMutex: dropped around the wake-up. */
static void coroutine_fn enter_next_locked_fn(void *opaque)
{
    CoMutex *lock = opaque;

    qemu_co_mutex_lock(lock);
    ASSERT_TRUE(qemu_co_enter_next(&test_queue, lock));
    qemu_co_mutex_assert_locked(lock);
    ASSERT_EQ(queue_woken, 0);      /* queued behind us */
    qemu_co_mutex_unlock(lock);
}

static void test_co_enter_next_locked(void)
{
    CoMutex lock;

    setup();
    qemu_co_queue_init(&test_queue);
    qemu_co_mutex_init(&lock);
    qemu_coroutine_enter(qemu_coroutine_create(queue_wait_fn, &lock));
    qemu_coroutine_enter(qemu_coroutine_create(enter_next_locked_fn, &lock));
    ASSERT_EQ(queue_woken, 1);
    ASSERT_EQ(lock.locked, 0);
}

/* --- /sleep ------------------------------------------------------------ */

static void coroutine_fn sleep_fn(void *opaque)
{
    qemu_co_sleep_ns(QEMU_CLOCK_REALTIME, 20 * SCALE_MS);
    *(bool *)opaque = true;
}

static void test_sleep(void)
{
    bool done = false;
    Coroutine *co;
    int64_t t0;
    int polls = 0;

    setup();
    co = qemu_coroutine_create(sleep_fn, &done);
    t0 = qemu_clock_get_ns(QEMU_CLOCK_REALTIME);
    qemu_coroutine_enter(co);
    ASSERT_FALSE(done);
    ASSERT_STR_EQ(co->scheduled, "qemu_co_sleep_ns");
    while (!done) {
        aio_poll(ctx, true);
        polls++;
    }
    ASSERT_GE(qemu_clock_get_ns(QEMU_CLOCK_REALTIME) - t0, 20 * SCALE_MS);
    ASSERT_GE(polls, 1);
    ASSERT_FALSE(aio_poll(ctx, false));
}

/* Gotcha 16.15: waking a coroutine that sleeps on a timer. */
static void death_schedule_sleeper(void)
{
    bool done = false;
    Coroutine *co;

    setup();
    co = qemu_coroutine_create(sleep_fn, &done);
    qemu_coroutine_enter(co);
    aio_co_schedule(ctx, co);
}

/* --- /pool ------------------------------------------------------------- */

static void coroutine_fn nop_fn(void *opaque)
{
}

static void test_pool_reuse(void)
{
    uint64_t alloc0, alloc1, pooled;
    int i;

    qemu_coroutine_enter(qemu_coroutine_create(nop_fn, NULL));
    aiolab_coroutine_pool_stats(&alloc0, &pooled);
    ASSERT_EQ(alloc0, 1);
    ASSERT_EQ(pooled, 1);
    for (i = 0; i < 1000; i++) {
        qemu_coroutine_enter(qemu_coroutine_create(nop_fn, NULL));
    }
    aiolab_coroutine_pool_stats(&alloc1, &pooled);
    ASSERT_EQ(alloc1, alloc0);          /* no new allocation */
    ASSERT_EQ(pooled, 1);
}

/* Many coroutines terminating at once overflow the thread's pool into
 * the global one, whose cap qemu_coroutine_inc_pool_size() raises. */
static void run_batch(Coroutine **co, int n)
{
    int i;

    for (i = 0; i < n; i++) {
        co[i] = qemu_coroutine_create(c2_yield_fn, NULL);
        qemu_coroutine_enter(co[i]);
    }
    ASSERT_EQ(aiolab_coroutine_list(NULL, 0), n);
    for (i = 0; i < n; i++) {
        qemu_coroutine_enter(co[i]);    /* terminates */
    }
    ASSERT_EQ(aiolab_coroutine_list(NULL, 0), 0);
}

static void test_pool_global_cap(void)
{
    enum { N = 600 };
    static Coroutine *co[N];
    uint64_t alloc, pooled, pooled_before;

    run_batch(co, N);
    aiolab_coroutine_pool_stats(&alloc, &pooled);
    ASSERT_EQ(alloc, N);
    ASSERT_LT(pooled, N);               /* some were freed */
    ASSERT_GT(pooled, 0);

    /* A second batch reuses every pooled one and allocates the rest. */
    pooled_before = pooled;
    run_batch(co, N);
    aiolab_coroutine_pool_stats(&alloc, &pooled);
    ASSERT_EQ(alloc, N + (N - pooled_before));
    ASSERT_EQ(pooled, pooled_before);

    /* With room for all of them, none is freed. */
    qemu_coroutine_inc_pool_size(N);
    run_batch(co, N);
    aiolab_coroutine_pool_stats(NULL, &pooled);
    ASSERT_EQ(pooled, N);
    qemu_coroutine_dec_pool_size(N);
}

/* A thread's pool is freed when the thread exits. */
static void *pool_thread_fn(void *opaque)
{
    int i;

    for (i = 0; i < 10; i++) {
        qemu_coroutine_enter(qemu_coroutine_create(nop_fn, NULL));
    }
    aiolab_coroutine_pool_stats(NULL, opaque);
    return NULL;
}

static void test_pool_thread_exit(void)
{
    pthread_t th;
    uint64_t alloc, pooled, pooled_in_thread = 0;

    pthread_create(&th, NULL, pool_thread_fn, &pooled_in_thread);
    pthread_join(th, NULL);
    ASSERT_EQ(pooled_in_thread, 1);
    aiolab_coroutine_pool_stats(&alloc, &pooled);
    ASSERT_EQ(alloc, 1);
    ASSERT_EQ(pooled, 0);
}

/* aiolab_coroutine_list: the state of each live coroutine. */
static void coroutine_fn list_self_fn(void *opaque)
{
    AiolabCoroutineInfo info[4];
    size_t n = aiolab_coroutine_list(info, 4), i;
    bool found = false;

    ASSERT_EQ(n, 3);
    for (i = 0; i < n; i++) {
        if (info[i].co == qemu_coroutine_self()) {
            ASSERT_STR_EQ(info[i].state, "running");
            ASSERT_PTR_EQ(info[i].entry, (void *)list_self_fn);
            found = true;
        }
    }
    ASSERT_TRUE(found);
}

static void test_list(void)
{
    AiolabCoroutineInfo info[4];
    Coroutine *yielded, *scheduled;
    size_t n, i;

    setup();
    yielded = qemu_coroutine_create(c2_yield_fn, NULL);
    scheduled = qemu_coroutine_create(c2_yield_fn, NULL);
    qemu_coroutine_enter(yielded);
    qemu_coroutine_enter(scheduled);
    aio_co_schedule(ctx, scheduled);
    qemu_coroutine_enter(qemu_coroutine_create(list_self_fn, NULL));

    n = aiolab_coroutine_list(info, 4);
    ASSERT_EQ(n, 2);
    for (i = 0; i < n; i++) {
        ASSERT_PTR_EQ(info[i].entry, (void *)c2_yield_fn);
        if (info[i].co == yielded) {
            ASSERT_STR_EQ(info[i].state, "yielded");
            ASSERT_PTR_EQ(info[i].scheduled_by, NULL);
        } else {
            ASSERT_PTR_EQ(info[i].co, scheduled);
            ASSERT_STR_EQ(info[i].state, "scheduled");
            ASSERT_STR_EQ(info[i].scheduled_by, "aio_co_schedule");
        }
        ASSERT_STR_EQ(info[i].ctx_name, aiolab_aio_context_get_name(ctx));
    }
    ASSERT_TRUE(aio_poll(ctx, false));  /* runs (and ends) `scheduled` */
    ASSERT_EQ(aiolab_coroutine_list(NULL, 0), 1);
}

/* A coroutine may outlive the context it last ran in: the list must not
 * touch the dead context (ctx_name is then NULL). */
static void test_list_dead_context(void)
{
    AioContext *ctx2 = aio_context_new(&error_abort);
    Coroutine *co = qemu_coroutine_create(c2_yield_fn, NULL);
    AiolabCoroutineInfo info;

    qemu_aio_coroutine_enter(ctx2, co);
    ASSERT_PTR_EQ(qemu_coroutine_get_aio_context(co), ctx2);
    ASSERT_EQ(aiolab_coroutine_list(&info, 1), 1);
    ASSERT_STR_EQ(info.ctx_name, aiolab_aio_context_get_name(ctx2));

    aio_context_unref(ctx2);
    ASSERT_EQ(aiolab_coroutine_list(&info, 1), 1);
    ASSERT_PTR_EQ(info.co, co);
    ASSERT_STR_EQ(info.state, "yielded");
    ASSERT_PTR_EQ(info.ctx_name, NULL);
}

/* --- /aio/coroutine (from test-aio.c) ---------------------------------- */

typedef struct {
    unsigned i, max;
    Coroutine *other;
} ChainData;

static void coroutine_fn chain_fn(void *opaque)
{
    ChainData *data = opaque;

    for (data->i = 0; data->i < data->max; data->i++) {
        aio_co_enter(ctx, data->other);     /* queued, not nested */
        ASSERT_FALSE(qemu_coroutine_entered(data->other));
        qemu_coroutine_yield();
        /* Resumed by the enter loop, not from inside the other one's
         * stack: it has yielded (or ended), so stacks never nest. */
        ASSERT_FALSE(qemu_coroutine_entered(data->other));
    }
}

static void test_queue_chaining(void)
{
    ChainData data_a = { .max = 25000 }, data_b = { .max = 25000 };
    Coroutine *x, *y;

    setup();
    x = qemu_coroutine_create(chain_fn, &data_a);
    y = qemu_coroutine_create(chain_fn, &data_b);
    data_a.other = y;
    data_b.other = x;

    /* 50,000 hand-offs in one enter: each runs when the other yields. */
    qemu_coroutine_enter(x);
    ASSERT_EQ(data_a.i, 25000);
    ASSERT_EQ(data_b.i, 24999);
    ASSERT_FALSE(qemu_coroutine_entered(y));

    qemu_coroutine_enter(y);            /* let it terminate */
    ASSERT_EQ(data_b.i, 25000);
}

static pthread_t main_thread;

static void coroutine_fn check_main_thread_fn(void *opaque)
{
    ASSERT_TRUE(pthread_equal(pthread_self(), main_thread));
    *(bool *)opaque = true;
}

static void *worker_co_enter(void *co)
{
    /* No context and no BQL here: the enter becomes aio_co_schedule. */
    ASSERT_PTR_EQ(qemu_get_current_aio_context(), NULL);
    aio_co_enter(qemu_get_aio_context(), co);
    return NULL;
}

static void test_worker_thread_co_enter(void)
{
    pthread_t worker;
    bool ran = false;
    Coroutine *co;

    setup();
    main_thread = pthread_self();
    co = qemu_coroutine_create(check_main_thread_fn, &ran);
    pthread_create(&worker, NULL, worker_co_enter, co);
    pthread_join(worker, NULL);
    ASSERT_FALSE(ran);
    ASSERT_TRUE(aio_poll(ctx, true));
    ASSERT_TRUE(ran);
    ASSERT_FALSE(aio_poll(ctx, false));
}

/* aio_co_schedule: coroutines are entered FIFO (BHs run LIFO). */
static char sched_log[4];
static int sched_n;

static void coroutine_fn sched_log_fn(void *opaque)
{
    qemu_coroutine_yield();
    sched_log[sched_n++] = *(const char *)opaque;
}

static void test_schedule_fifo(void)
{
    Coroutine *co[3];
    int i;

    setup();
    for (i = 0; i < 3; i++) {
        co[i] = qemu_coroutine_create(sched_log_fn, (void *)&"abc"[i]);
        qemu_coroutine_enter(co[i]);
        aio_co_schedule(ctx, co[i]);
    }
    ASSERT_EQ(sched_n, 0);
    ASSERT_TRUE(aio_poll(ctx, false));
    ASSERT_EQ(sched_n, 3);
    ASSERT_EQ(memcmp(sched_log, "abc", 3), 0);
}

/* --- death tests ------------------------------------------------------- */

static void coroutine_fn enter_self_fn(void *opaque)
{
    qemu_coroutine_enter(qemu_coroutine_self());
}

static void death_enter_recursive(void)
{
    qemu_coroutine_enter(qemu_coroutine_create(enter_self_fn, NULL));
}

static void death_yield_outside(void)
{
    qemu_coroutine_yield();
}

static void coroutine_fn lock_and_return_fn(void *opaque)
{
    qemu_co_mutex_lock(opaque);
}

static void death_terminate_locked(void)
{
    CoMutex m;

    setup();
    qemu_co_mutex_init(&m);
    qemu_coroutine_enter(qemu_coroutine_create(lock_and_return_fn, &m));
}

static void death_double_schedule(void)
{
    Coroutine *co = qemu_coroutine_create(c2_yield_fn, NULL);

    setup();
    qemu_coroutine_enter(co);
    aio_co_schedule(ctx, co);
    aio_co_schedule(ctx, co);
}

static void death_enter_scheduled(void)
{
    Coroutine *co = qemu_coroutine_create(c2_yield_fn, NULL);

    setup();
    qemu_coroutine_enter(co);
    aio_co_schedule(ctx, co);
    qemu_coroutine_enter(co);
}

static void death_mutex_outside(void)
{
    CoMutex m;

    if (!aiolab_checks_enabled()) {
        SKIP("rule checks are compiled out");
    }
    qemu_co_mutex_init(&m);
    qemu_co_mutex_lock(&m);
}

static void coroutine_fn unlock_unheld_fn(void *opaque)
{
    qemu_co_mutex_unlock(opaque);
}

static void death_unlock_unheld(void)
{
    CoMutex m;

    qemu_co_mutex_init(&m);
    qemu_coroutine_enter(qemu_coroutine_create(unlock_unheld_fn, &m));
}

/* NULL arguments abort with the function and the parameter named. */
static void death_create_null_entry(void)
{
    qemu_coroutine_create(NULL, NULL);
}

static void death_enter_null(void)
{
    qemu_coroutine_enter(NULL);
}

static void death_queue_init_null(void)
{
    qemu_co_queue_init(NULL);
}

static void coroutine_fn lock_null_fn(void *opaque)
{
    qemu_co_mutex_lock(NULL);
}

static void death_mutex_lock_null(void)
{
    qemu_coroutine_enter(qemu_coroutine_create(lock_null_fn, NULL));
}

/* --- /perf: printed, never asserted ------------------------------------ */

static void coroutine_fn yield_forever_fn(void *opaque)
{
    for (;;) {
        qemu_coroutine_yield();
    }
}

/*
 * Like QEMU's /perf/yield and /perf/lifecycle.  Run with tracing off
 * (the benchmark rule) and on (each enter and yield records an event).
 */
static void test_perf_switch(void)
{
    long n = harness_sanitizer() ? 200000 : harness_scale(3000000);
    Coroutine *co;
    double t0, t;
    long i;
    int trace;

    setup();
    co = qemu_coroutine_create(yield_forever_fn, NULL);
    qemu_coroutine_enter(co);           /* warm up: start the stack */
    for (trace = 0; trace <= 1; trace++) {
        aiolab_trace_set_enabled(trace);
        t0 = now_s();
        for (i = 0; i < n; i++) {
            qemu_coroutine_enter(co);
        }
        t = now_s() - t0;
        printf("# switch (tracing %s): %ld enter/yield round trips in "
               "%.3f s: %.1f ns per switch\n", trace ? "on" : "off", n, t,
               t * 1e9 / (2.0 * n));
    }

    aiolab_trace_set_enabled(false);
    t0 = now_s();
    for (i = 0; i < n; i++) {
        qemu_coroutine_enter(qemu_coroutine_create(nop_fn, NULL));
    }
    t = now_s() - t0;
    printf("# lifecycle (tracing off): %ld create+enter+terminate (pooled) "
           "in %.3f s: %.1f ns each\n", n, t, t * 1e9 / n);
}

/* --- the gdb script ---------------------------------------------------- */

static Coroutine *gdb_target_co;

/* gdb stops here; the test reads its output. */
void aiolab_gdb_test_stop(void);
__attribute__((noinline)) void aiolab_gdb_test_stop(void)
{
    __asm__ __volatile__("" ::: "memory");
}

__attribute__((noinline)) static void gdb_target_inner(void)
{
    qemu_coroutine_yield();
    __asm__ __volatile__("" ::: "memory");
}

static void coroutine_fn gdb_target_fn(void *opaque)
{
    gdb_target_inner();
}

/* Run on its own: a yielded coroutine, then a stop for gdb. */
static void test_gdb_target(void)
{
    Coroutine *sched = qemu_coroutine_create(c2_yield_fn, NULL);

    setup();
    gdb_target_co = qemu_coroutine_create(gdb_target_fn, NULL);
    qemu_coroutine_enter(gdb_target_co);
    qemu_coroutine_enter(sched);
    aio_co_schedule(ctx, sched);
    qemu_coroutine_enter(qemu_coroutine_create(nop_fn, NULL));  /* pooled */
    aiolab_gdb_test_stop();
    qemu_coroutine_enter(gdb_target_co);
    ASSERT_TRUE(aio_poll(ctx, false));
}

static char *run_capture(char *const argv[])
{
    int fds[2];
    pid_t pid;
    char *buf = calloc(1, 1 << 16);
    size_t len = 0;
    ssize_t r;
    int status;

    ASSERT_EQ(pipe(fds), 0);
    pid = fork();
    if (pid == 0) {
        dup2(fds[1], 1);
        dup2(fds[1], 2);
        close(fds[0]);
        execvp(argv[0], argv);
        _exit(127);
    }
    close(fds[1]);
    while (len < (1 << 16) - 1 &&
           (r = read(fds[0], buf + len, (1 << 16) - 1 - len)) > 0) {
        len += r;
    }
    close(fds[0]);
    waitpid(pid, &status, 0);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 127) {
        free(buf);
        return NULL;
    }
    return buf;
}

static void test_gdb_script(void)
{
    const char *script = "scripts/aiolab-gdb.py";
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    char *out;
    char *argv[] = {
        "gdb", "-batch", "-nx", "-x", (char *)script,
        "-ex", "break aiolab_gdb_test_stop",
        "-ex", "run",
        "-ex", "aiolab coroutines",
        "-ex", "echo ==bt==\\n",
        "-ex", "aiolab bt gdb_target_co",
        "-ex", "echo ==after==\\n",
        "-ex", "bt 1",
        "-ex", "kill",
        "--args", exe, "-p", "/gdb/target", "--no-fork", NULL
    };

    if (access(script, R_OK) != 0) {
        SKIP("run from the source tree (scripts/aiolab-gdb.py not found)");
    }
    ASSERT_GT(n, 0);
    exe[n] = '\0';
    out = run_capture(argv);
    if (!out) {
        SKIP("gdb is not installed");
    }
    if (strstr(out, "ptrace: Operation not permitted") ||
        strstr(out, "Couldn't get registers")) {
        SKIP("ptrace is not permitted here");
    }
    if (!strstr(out, "gdb_target_inner") || getenv("V")) {
        printf("%s", out);              /* show what gdb said */
    }
    ASSERT_STR_CONTAINS(out, "3 coroutine(s)");
    ASSERT_STR_CONTAINS(out, "yielded");
    ASSERT_STR_CONTAINS(out, "scheduled by aio_co_schedule");
    ASSERT_STR_CONTAINS(out, "pooled");
    ASSERT_STR_CONTAINS(out, "gdb_target_fn");
    ASSERT_STR_CONTAINS(out, "main");           /* the context's name */
    ASSERT_STR_CONTAINS(strstr(out, "==bt=="), "gdb_target_inner");
    ASSERT_STR_CONTAINS(strstr(out, "==bt=="), "qemu_coroutine_yield");
    /* The thread's own registers are back afterwards. */
    ASSERT_STR_CONTAINS(strstr(out, "==after=="), "aiolab_gdb_test_stop");
    free(out);
}

static const TestCase tests[] = {
    { "/basic/no-dangling-access", test_no_dangling_access },
    { "/basic/lifecycle", test_lifecycle },
    { "/basic/yield", test_yield },
    { "/basic/nesting", test_nesting },
    { "/basic/self", test_self },
    { "/basic/entered", test_entered },
    { "/basic/in_coroutine", test_in_coroutine },
    { "/basic/order", test_order },
    { "/basic/wake-depth-first", test_wake_depth_first },
    { "/locking/co-mutex", test_co_mutex },
    { "/locking/co-mutex/zeroed-fifo", test_co_mutex_zeroed_fifo },
    { "/locking/co-queue/next", test_co_queue_next },
    { "/locking/co-queue/restart-all", test_co_queue_restart_all },
    { "/locking/co-queue/enter-next", test_co_enter_next },
    { "/locking/co-queue/enter-next-locked", test_co_enter_next_locked },
    { "/sleep/aio-poll", test_sleep },
    { "/pool/reuse", test_pool_reuse },
    { "/pool/global-cap", test_pool_global_cap },
    { "/pool/thread-exit", test_pool_thread_exit },
    { "/pool/list", test_list },
    { "/pool/list/dead-context", test_list_dead_context },
    { "/aio/coroutine/queue-chaining", test_queue_chaining },
    { "/aio/coroutine/worker-thread-co-enter", test_worker_thread_co_enter },
    { "/aio/coroutine/schedule-fifo", test_schedule_fifo },
    { "/death/enter-recursive", death_enter_recursive,
      .death = "Co-routine re-entered recursively" },
    { "/death/yield-outside", death_yield_outside,
      .death = "Co-routine is yielding to no one" },
    { "/death/terminate-locked", death_terminate_locked,
      .death = "terminated while holding 1 CoMutex" },
    { "/death/double-schedule", death_double_schedule,
      .death = "already scheduled in 'aio_co_schedule'" },
    { "/death/enter-scheduled", death_enter_scheduled,
      .death = "already scheduled in 'aio_co_schedule'" },
    { "/death/schedule-sleeper", death_schedule_sleeper,
      .death = "already scheduled in 'qemu_co_sleep_ns'" },
    { "/death/mutex-outside", death_mutex_outside,
      .death = "called outside a coroutine (coroutine_fn" },
    { "/death/unlock-unheld", death_unlock_unheld,
      .death = "does not hold it" },
    { "/death/create-null-entry", death_create_null_entry,
      .death = "qemu_coroutine_create() got NULL for 'entry'" },
    { "/death/enter-null", death_enter_null,
      .death = "qemu_coroutine_enter() got NULL for 'co'" },
    { "/death/queue-init-null", death_queue_init_null,
      .death = "qemu_co_queue_init() got NULL for 'queue'" },
    { "/death/mutex-lock-null", death_mutex_lock_null,
      .death = "qemu_co_mutex_lock() got NULL for 'mutex'" },
    { "/perf/switch", test_perf_switch, .timeout = 60 },
    { "/gdb/target", test_gdb_target },
    { "/gdb/script", test_gdb_script, .timeout = 60,
      .no_asan = "gdb and LeakSanitizer do not mix",
      .no_tsan = "gdb and TSan's memory layout do not mix" },
    { NULL }
};

int main(int argc, char **argv)
{
    return harness_main(argc, argv, tests);
}
