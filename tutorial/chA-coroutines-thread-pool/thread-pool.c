/* cc -Ic/include tutorial/chA-coroutines-thread-pool/thread-pool.c -o build/thread-pool -Lbuild -laiolab -Wl,-rpath,$PWD/build */
/*
 * SPDX-License-Identifier: MIT
 *
 * chA-coroutines-thread-pool/thread-pool.c - blocking work without
 * blocking the loop.
 *
 * wait_for_ticks() blocks: it returns once the event loop has ticked three
 * times (a 10 ms timer posts a semaphore), or -ETIMEDOUT.  Called in the
 * loop's own thread it can only time out: the loop cannot tick while it
 * is stuck in there.  Run by the thread pool it gets its ticks, and its
 * result comes back to the context that submitted it.
 */
#include "../tutorial.h"
#include <errno.h>
#include <semaphore.h>
#include <aiolab/aiolab.h>

typedef struct {
    sem_t ticks;            /* posted by the loop's ticker */
    int timeout_ms;
    int ran_in;             /* thread that ran it */
    AioContext *ctx_there;  /* qemu_get_current_aio_context() there */
} Blocking;

typedef struct {
    Blocking *b;
    bool done;
    int ret;
    int ran_in;             /* thread the result arrived in */
} Result;

static QEMUTimer *ticker;
static int ticks;

/* [region: blocking] */
/* A ThreadPoolFunc: blocks until three ticks, or times out. */
static int wait_for_ticks(void *opaque)
{
    Blocking *b = opaque;
    struct timespec deadline;
    int i;

    b->ran_in = tut_gettid();
    b->ctx_there = qemu_get_current_aio_context();
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += b->timeout_ms / 1000;
    deadline.tv_nsec += (b->timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    for (i = 0; i < 3; i++) {
        if (sem_timedwait(&b->ticks, &deadline) < 0) {
            return -ETIMEDOUT;
        }
    }
    return 0;
}
/* [endregion] */

/* The loop's heartbeat: every 10 ms, one tick. */
static void tick_cb(void *opaque)
{
    Blocking *b = opaque;

    ticks++;
    sem_post(&b->ticks);
    timer_mod(ticker, qemu_clock_get_ms(QEMU_CLOCK_REALTIME) + 10);
}

/* [region: done] */
/* The completion callback: in the submitting context's thread. */
static void done_cb(void *opaque, int ret)
{
    Result *r = opaque;

    r->ret = ret;
    r->ran_in = tut_gettid();
    r->done = true;
}
/* [endregion] */

/* [region: co] */
static void coroutine_fn offload_co(void *opaque)
{
    Result *r = opaque;

    r->ret = thread_pool_submit_co(wait_for_ticks, r->b);   /* yields */
    r->ran_in = tut_gettid();           /* resumed in its own context */
    r->done = true;
}
/* [endregion] */

int main(void)
{
    Blocking b = { .timeout_ms = 300 };
    Result r = { .b = &b }, rc = { .b = &b };
    AiolabThreadPoolStats st;
    AioContext *ctx;
    int ret;

    qemu_init_main_loop(&error_abort);
    bql_lock();
    ctx = qemu_get_aio_context();
    sem_init(&b.ticks, 0, 0);
    ticker = aio_timer_new(ctx, QEMU_CLOCK_REALTIME, SCALE_MS, tick_cb, &b);
    timer_mod(ticker, qemu_clock_get_ms(QEMU_CLOCK_REALTIME) + 10);

    /* [region: inline] */
    ret = wait_for_ticks(&b);           /* in the loop's own thread */
    /* [endregion] */
    CHECK_EQ("called in the loop's thread, it times out", ret, -ETIMEDOUT);
    CHECK_EQ("the loop could not tick meanwhile", ticks, 0);

    /* [region: pool] */
    b.timeout_ms = 10000;
    thread_pool_submit_aio(wait_for_ticks, &b, done_cb, &r);
    CHECK("the callback never runs inside thread_pool_submit_aio()",
          !r.done);
    while (!r.done) {
        aio_poll(ctx, true);            /* the ticks, then the completion */
    }
    /* [endregion] */
    printf("the loop ticked %d times while the worker waited\n", ticks);
    CHECK_EQ("in the pool, it got its three ticks", r.ret, 0);
    CHECK("it ran in a worker thread, which has no AioContext",
          b.ran_in != tut_gettid() && b.ctx_there == NULL);
    CHECK_EQ("the completion ran in the submitting thread", r.ran_in,
             tut_gettid());

    qemu_coroutine_enter(qemu_coroutine_create(offload_co, &rc));
    CHECK("thread_pool_submit_co() yields: the coroutine is waiting",
          !rc.done);
    while (!rc.done) {
        aio_poll(ctx, true);
    }
    CHECK_EQ("thread_pool_submit_co() returned the function's result",
             rc.ret, 0);
    CHECK_EQ("the coroutine resumed in its own thread", rc.ran_in,
             tut_gettid());

    aiolab_thread_pool_get_stats(ctx, &st);
    printf("the pool has %d worker(s); %lld request(s) completed\n",
           st.cur_threads, (long long)st.completed);
    /* In https://ui.perfetto.dev: the worker's track, the loop's ticks. */
    CHECK("the Perfetto trace chA-thread-pool.json was written",
          aiolab_trace_write_json("chA-thread-pool.json", 0, &error_abort));
    timer_free(ticker);
    bql_unlock();
    return 0;
}
