/* cc -Ic/include tutorial/ch05-waiting-safely/solution/exercise-kick.c -o build/exercise-kick-solution -Lbuild -laiolab -Wl,-rpath,$PWD/build */
/*
 * SPDX-License-Identifier: MIT
 *
 * ch05-waiting-safely/solution/exercise-kick.c - SOLUTION: wake the waiter.
 *
 * The main loop sends three requests to an IOThread and waits until none
 * is in flight, the way a drain does.  Each request completes in the
 * IOThread, which decrements in_flight.  But the main loop waits by
 * sleeping in aio_poll() of its own context, and nothing wakes it: it
 * notices only when a 1-second rescue timer fires.
 *
 * The answer: request_done() calls aio_wait_kick() after the decrement.
 */
#include "../../tutorial.h"
#include <aiolab/aiolab.h>

static int in_flight;       /* atomic: requests not yet completed */

/* Runs in the IOThread when a request completes. */
static void request_done(void)
{
    __atomic_fetch_sub(&in_flight, 1, __ATOMIC_SEQ_CST);
    /*
     * After the change, never before: the waiter re-evaluates its
     * condition when the kick's BH wakes it, and must see the new value.
     * (QEMU's bdrv_dec_in_flight() does exactly this.)
     */
    aio_wait_kick();
}

/* --- the test rig below: no need to change it --------------------------- */

static bool go;             /* atomic: the main loop is about to sleep */

/* aiolab calls this in aio_poll() just before sleeping: we let the
 * requests complete only then, so the unlucky timing is certain. */
static void before_wait(void *ctx)
{
    if (ctx == qemu_get_aio_context()) {
        __atomic_store_n(&go, true, __ATOMIC_SEQ_CST);
    }
}

static void request_bh(void *opaque)
{
    while (!__atomic_load_n(&go, __ATOMIC_SEQ_CST)) {
        usleep(100);
    }
    request_done();
}

static void rescue_cb(void *opaque)
{
    *(bool *)opaque = true;
}

int main(void)
{
    AioContext *main_ctx, *io_ctx;
    QEMUTimer *rescue;
    bool rescued = false;
    IOThread *it;
    int64_t t0;
    int i, round;

    qemu_init_main_loop(&error_abort);
    bql_lock();
    main_ctx = qemu_get_aio_context();
    it = iothread_create("io0", &error_abort);
    io_ctx = iothread_get_aio_context(it);
    rescue = aio_timer_new(main_ctx, QEMU_CLOCK_REALTIME, SCALE_MS,
                           rescue_cb, &rescued);
    aiolab_set_before_wait_hook(before_wait);

    /* Three rounds: a spurious wake-up may end one wait early by luck. */
    for (round = 1; round <= 3; round++) {
        rescued = false;
        __atomic_store_n(&go, false, __ATOMIC_SEQ_CST);
        timer_mod(rescue, qemu_clock_get_ms(QEMU_CLOCK_REALTIME) + 1000);
        t0 = tut_now_ns();
        for (i = 0; i < 3; i++) {
            __atomic_fetch_add(&in_flight, 1, __ATOMIC_SEQ_CST);
            aio_bh_schedule_oneshot(io_ctx, request_bh, NULL);
        }
        AIO_WAIT_WHILE(io_ctx,
                       __atomic_load_n(&in_flight, __ATOMIC_SEQ_CST) > 0);
        timer_del(rescue);
        printf("round %d: the wait took %.1f ms\n", round,
               (tut_now_ns() - t0) / 1e6);

        CHECK_EQ("all three requests completed", in_flight, 0);
        CHECK_HINT("the last completion ended the wait, not the rescue "
                   "timer", !rescued,
                   "AIO_WAIT_WHILE in the main loop sleeps in aio_poll() of "
                   "the main context; whoever makes its condition false "
                   "from another thread must call aio_wait_kick() "
                   "afterwards");
    }

    aiolab_set_before_wait_hook(NULL);
    timer_free(rescue);
    iothread_destroy(it);
    bql_unlock();
    return 0;
}
