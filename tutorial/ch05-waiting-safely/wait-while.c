/* cc -Ic/include tutorial/ch05-waiting-safely/wait-while.c -o build/wait-while -Lbuild -laiolab -Wl,-rpath,$PWD/build */
/*
 * SPDX-License-Identifier: MIT
 *
 * ch05-waiting-safely/wait-while.c - AIO_WAIT_WHILE and aio_wait_kick().
 *
 * The main loop waits for a job that an IOThread finishes.  It waits by
 * polling its *own* context, so whoever ends the wait from another thread
 * must wake it with aio_wait_kick().  We run the job twice: once without
 * the kick (the waiter sleeps until a rescue timer fires), once with it.
 */
#include "../tutorial.h"
#include <aiolab/aiolab.h>

typedef struct {
    bool done;      /* atomic: set by the IOThread */
    bool kick;      /* call aio_wait_kick() after setting done */
} Work;

static AioContext *io_ctx;
static bool go;     /* atomic: see hold_until_main_loop_sleeps() */

/*
 * A pause point: aiolab calls this hook inside aio_poll(), just before it
 * sleeps.  The IOThread finishes the job only once the main loop is about
 * to sleep: the unlucky timing, made certain.
 */
static void before_wait(void *ctx)
{
    if (ctx == qemu_get_aio_context()) {
        __atomic_store_n(&go, true, __ATOMIC_SEQ_CST);
    }
}

static void hold_until_main_loop_sleeps(void)
{
    while (!__atomic_exchange_n(&go, false, __ATOMIC_SEQ_CST)) {
        usleep(100);
    }
}

/* [region: job] */
/* Runs in the IOThread: finish the job, then wake whoever waits for it. */
static void job_bh(void *opaque)
{
    Work *j = opaque;

    hold_until_main_loop_sleeps();
    __atomic_store_n(&j->done, true, __ATOMIC_SEQ_CST);
    if (j->kick) {
        aio_wait_kick();    /* a dummy BH in the main context */
    }
}
/* [endregion] */

static void rescue_cb(void *opaque)
{
    *(bool *)opaque = true;
}

static void count_bh(void *opaque)
{
    (*(int *)opaque)++;
}

/* Run one job and wait for it; returns the ms the wait took. */
static double run_job(bool kick, int rescue_ms, bool *rescued, int *bhs)
{
    AioContext *main_ctx = qemu_get_aio_context();
    QEMUTimer *rescue = aio_timer_new(main_ctx, QEMU_CLOCK_REALTIME,
                                      SCALE_MS, rescue_cb, rescued);
    Work j = { .kick = kick };
    int64_t t0 = tut_now_ns();
    bool waited;

    *rescued = false;
    timer_mod(rescue, qemu_clock_get_ms(QEMU_CLOCK_REALTIME) + rescue_ms);
    aiolab_set_before_wait_hook(before_wait);
    /* [region: wait] */
    aio_bh_schedule_oneshot(io_ctx, job_bh, &j);
    aio_bh_schedule_oneshot(main_ctx, count_bh, bhs);  /* main loop work */
    waited = AIO_WAIT_WHILE(io_ctx, !__atomic_load_n(&j.done,
                                                     __ATOMIC_SEQ_CST));
    /* [endregion] */
    aiolab_set_before_wait_hook(NULL);
    CHECK("AIO_WAIT_WHILE returned true: it polled at least once", waited);
    timer_free(rescue);
    return (tut_now_ns() - t0) / 1e6;
}

int main(void)
{
    IOThread *it;
    bool rescued;
    int attempt, bhs = 0;
    double ms;

    qemu_init_main_loop(&error_abort);
    bql_lock();
    it = iothread_create("io0", &error_abort);
    io_ctx = iothread_get_aio_context(it);

    /* [region: no-kick] */
    for (attempt = 1; attempt <= 3; attempt++) {
        ms = run_job(false, 500, &rescued, &bhs);
        printf("without aio_wait_kick(): the wait took %.2f ms\n", ms);
        if (rescued) {
            break;
        }
        /* Possible (AIOLAB_FDMON=io_uring has one just after start-up):
         * that is why AIO_WAIT_WHILE re-checks after every wake-up. */
        printf("(ended by a spurious wake-up; trying again)\n");
    }
    /* [endregion] */
    CHECK("without a kick, only the 500 ms rescue timer ended the wait",
          rescued);
    CHECK_EQ("the main loop ran its own BH during each wait", bhs, attempt);

    ms = run_job(true, 10000, &rescued, &bhs);
    printf("with aio_wait_kick():    the wait took %.2f ms\n", ms);
    CHECK("with the kick, the wait ended without the rescue timer",
          !rescued);
    CHECK_EQ("no thread is left waiting", aiolab_aio_wait_num_waiters(), 0);
    CHECK("with a false condition, AIO_WAIT_WHILE does not poll at all",
          !AIO_WAIT_WHILE(io_ctx, false));

    /* In https://ui.perfetto.dev: the two AIO_WAIT_WHILE slices. */
    CHECK("the Perfetto trace ch05-wait-while.json was written",
          aiolab_trace_write_json("ch05-wait-while.json", 0, &error_abort));
    iothread_destroy(it);
    bql_unlock();
    return 0;
}
