/* SPDX-License-Identifier: MIT */
/*
 * tests/c/test-thread-pool.c - the thread pool (catalogue section 5):
 * submission, completion in the submitting context, coroutine submission,
 * cancellation of queued but not running work, min/max and idle exit.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>
#include <aiolab/aiolab.h>
#include "harness.h"

typedef struct {
    BlockAIOCB *aiocb;
    int n;
    int ret;
} WorkerTestData;

static AioContext *ctx;
static int active;

static void setup(void)
{
    qemu_init_main_loop(&error_abort);
    ctx = qemu_get_aio_context();
}

static int worker_cb(void *opaque)
{
    WorkerTestData *data = opaque;

    return __atomic_fetch_add(&data->n, 1, __ATOMIC_SEQ_CST);
}

/* Runs until it sees cancellation could not stop it: n goes 0 -> 1 -> 3. */
static int long_cb(void *opaque)
{
    WorkerTestData *data = opaque;
    int expected = 0;

    if (__atomic_compare_exchange_n(&data->n, &expected, 1, false,
                                    __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {
        usleep(harness_sanitizer() ? 500000 : 200000);
        __atomic_fetch_or(&data->n, 2, __ATOMIC_SEQ_CST);
        return 0;
    }
    /*
     * The test claimed it (n = 4) after a worker had already taken it:
     * too late to cancel, so it runs (and does nothing).  QEMU's test has
     * the same window; it is tiny unless a sanitizer slows things down.
     */
    return 1;
}

static void done_cb(void *opaque, int ret)
{
    WorkerTestData *data = opaque;

    ASSERT_TRUE(data->ret == -EINPROGRESS || data->ret == -ECANCELED);
    data->ret = ret;
    data->aiocb = NULL;
    /* Callbacks are serialized: they run in this context's thread. */
    active--;
}

static void test_submit(void)
{
    WorkerTestData data = { .n = 0 };

    setup();
    thread_pool_submit(worker_cb, &data);
    while (__atomic_load_n(&data.n, __ATOMIC_SEQ_CST) == 0) {
        aio_poll(ctx, true);
    }
    ASSERT_EQ(data.n, 1);
}

static void test_submit_aio(void)
{
    WorkerTestData data = { .n = 0, .ret = -EINPROGRESS };

    setup();
    active = 1;
    data.aiocb = thread_pool_submit_aio(worker_cb, &data, done_cb, &data);
    /* Never called back synchronously. */
    ASSERT_EQ(data.ret, -EINPROGRESS);
    while (data.ret == -EINPROGRESS) {
        aio_poll(ctx, true);
    }
    ASSERT_EQ(active, 0);
    ASSERT_EQ(data.n, 1);
    ASSERT_EQ(data.ret, 0);
}

static void co_test_cb(void *opaque)
{
    WorkerTestData *data = opaque;

    active = 1;
    data->n = 0;
    data->ret = -EINPROGRESS;
    thread_pool_submit_co(worker_cb, data);
    /* The worker has run and we were woken with aio_co_wake(). */
    ASSERT_EQ(data->n, 1);
    data->ret = 0;
    active--;
}

static void test_submit_co(void)
{
    WorkerTestData data;
    Coroutine *co;

    setup();
    co = qemu_coroutine_create(co_test_cb, &data);
    qemu_coroutine_enter(co);
    /* Back here while the coroutine waits for the worker. */
    ASSERT_EQ(active, 1);
    ASSERT_EQ(data.ret, -EINPROGRESS);
    while (data.ret == -EINPROGRESS) {
        aio_poll(ctx, true);
    }
    ASSERT_EQ(active, 0);
    ASSERT_EQ(data.ret, 0);
}

#define MANY 100
static WorkerTestData many[MANY];

static void submit_many(void)
{
    int i;

    active = MANY;
    for (i = 0; i < MANY; i++) {
        many[i] = (WorkerTestData){ .n = 0, .ret = -EINPROGRESS };
        many[i].aiocb = thread_pool_submit_aio(worker_cb, &many[i], done_cb,
                                               &many[i]);
    }
    while (active > 0) {
        aio_poll(ctx, true);
    }
    for (i = 0; i < MANY; i++) {
        ASSERT_EQ(many[i].n, 1);
        ASSERT_EQ(many[i].ret, 0);
    }
}

static void test_submit_many(void)
{
    AiolabThreadPoolStats st;

    setup();
    submit_many();
    ASSERT_TRUE(aiolab_thread_pool_get_stats(ctx, &st));
    ASSERT_LE(st.cur_threads, 64);
    ASSERT_GE(st.completed, MANY);
}

static void do_test_cancel(bool sync)
{
    int i, num_canceled;

    setup();
    /* Warm up the pool. */
    submit_many();

    active = MANY;
    for (i = 0; i < MANY; i++) {
        many[i] = (WorkerTestData){ .n = 0, .ret = -EINPROGRESS };
        many[i].aiocb = thread_pool_submit_aio(long_cb, &many[i], done_cb,
                                               &many[i]);
    }
    /* Let the spawn BH run, then give the workers a moment. */
    aio_notify(ctx);
    aio_poll(ctx, false);
    ASSERT_EQ(active, MANY);
    usleep(50000);
    ASSERT_GT(active, 50);          /* few finished */

    /* Cancel the jobs that have not started yet. */
    num_canceled = 0;
    for (i = 0; i < MANY; i++) {
        int expected = 0;
        if (__atomic_compare_exchange_n(&many[i].n, &expected, 4, false,
                                        __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {
            many[i].ret = -ECANCELED;
            if (sync) {
                bdrv_aio_cancel(many[i].aiocb);
            } else {
                bdrv_aio_cancel_async(many[i].aiocb);
            }
            num_canceled++;
        }
    }
    ASSERT_GT(active, 0);
    ASSERT_LT(num_canceled, MANY);

    /* Cancelling running ones waits for them (sync), or does nothing. */
    for (i = 0; i < MANY; i++) {
        if (many[i].aiocb && __atomic_load_n(&many[i].n, __ATOMIC_SEQ_CST) < 4) {
            if (sync) {
                bdrv_aio_cancel(many[i].aiocb);
            } else {
                bdrv_aio_cancel_async(many[i].aiocb);
            }
        }
    }
    while (active > 0) {
        aio_poll(ctx, true);
    }
    ASSERT_EQ(active, 0);
    for (i = 0; i < MANY; i++) {
        ASSERT_PTR_EQ(many[i].aiocb, NULL);
        if (many[i].n == 3) {
            ASSERT_EQ(many[i].ret, 0);              /* ran to the end */
        } else if (many[i].n == 4) {
            /* never started, or taken by a worker just before the cancel */
            ASSERT_TRUE(many[i].ret == -ECANCELED || many[i].ret == 1);
        } else {
            harness_fail(__FILE__, __LINE__, "job %d: n=%d (never started "
                         "but not cancelled, or stopped while running)", i,
                         many[i].n);
        }
    }
}

static void test_cancel(void)
{
    do_test_cancel(true);
}

static void test_cancel_async(void)
{
    do_test_cancel(false);
}

/* The completion runs in the submitting context's thread. */
typedef struct {
    int submit_tid;
    int complete_tid;
    bool done;
} WhereData;

static int noop_work(void *opaque)
{
    return 42;
}

static void where_done(void *opaque, int ret)
{
    WhereData *w = opaque;

    ASSERT_EQ(ret, 42);
    w->complete_tid = (int)gettid();
    __atomic_store_n(&w->done, true, __ATOMIC_SEQ_CST);
    aio_wait_kick();
}

static void submit_in_iothread_bh(void *opaque)
{
    WhereData *w = opaque;

    w->submit_tid = (int)gettid();
    thread_pool_submit_aio(noop_work, NULL, where_done, w);
}

static void test_completion_in_submitting_ctx(void)
{
    IOThread *it;
    WhereData w = { 0 };

    setup();
    bql_lock();
    it = iothread_create("io0", &error_abort);
    aio_bh_schedule_oneshot(iothread_get_aio_context(it),
                            submit_in_iothread_bh, &w);
    AIO_WAIT_WHILE(NULL, !__atomic_load_n(&w.done, __ATOMIC_SEQ_CST));
    ASSERT_EQ(w.complete_tid, w.submit_tid);
    ASSERT_EQ(w.submit_tid, iothread_get_thread_id(it));
    iothread_destroy(it);
}

static void test_idle_exit_and_min(void)
{
    AiolabThreadPoolStats st;
    int64_t t0;

    setup();
    aiolab_thread_pool_set_idle_timeout_ns(100 * SCALE_MS);
    submit_many();
    ASSERT_TRUE(aiolab_thread_pool_get_stats(ctx, &st));
    ASSERT_GE(st.cur_threads, 1);
    /* Idle workers above min (0) exit after the timeout. */
    t0 = qemu_clock_get_ns(QEMU_CLOCK_REALTIME);
    do {
        usleep(20000);
        aio_poll(ctx, false);
        ASSERT_TRUE(aiolab_thread_pool_get_stats(ctx, &st));
        ASSERT_LT(qemu_clock_get_ns(QEMU_CLOCK_REALTIME) - t0,
                  10000LL * SCALE_MS);
    } while (st.cur_threads > 0);

    /* With min 2, two workers are created and stay. */
    aio_context_set_thread_pool_params(ctx, 2, 4, &error_abort);
    do {
        aio_poll(ctx, false);
        usleep(1000);
        ASSERT_TRUE(aiolab_thread_pool_get_stats(ctx, &st));
    } while (st.cur_threads < 2 || st.idle_threads < 2);
    usleep(300000);
    aio_poll(ctx, false);
    ASSERT_TRUE(aiolab_thread_pool_get_stats(ctx, &st));
    ASSERT_EQ(st.cur_threads, 2);
    ASSERT_EQ(st.min_threads, 2);
    ASSERT_EQ(st.max_threads, 4);

    /* Never more than max. */
    int64_t created = st.threads_created;
    submit_many();
    ASSERT_TRUE(aiolab_thread_pool_get_stats(ctx, &st));
    ASSERT_LE(st.cur_threads, 4);
    ASSERT_LE(st.threads_created - created, 2);
}

static void death_submit_without_ctx(void)
{
    /* No main loop, no context in this thread. */
    thread_pool_submit(noop_work, NULL);
}

static const TestCase tests[] = {
    { "/thread-pool/submit", test_submit },
    { "/thread-pool/submit-aio", test_submit_aio },
    { "/thread-pool/submit-co", test_submit_co },
    { "/thread-pool/submit-many", test_submit_many },
    { "/thread-pool/cancel", test_cancel, .timeout = 60 },
    { "/thread-pool/cancel-async", test_cancel_async, .timeout = 60 },
    { "/thread-pool/completion-in-submitting-ctx",
      test_completion_in_submitting_ctx },
    { "/thread-pool/idle-exit-and-min", test_idle_exit_and_min },
    { "/thread-pool/death/no-context", death_submit_without_ctx,
      .death = "thread_pool_submit_aio() must be called from a thread with "
               "an AioContext" },
    { NULL }
};

int main(int argc, char **argv)
{
    return harness_main(argc, argv, tests);
}
