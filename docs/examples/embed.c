/* cc -Ic/include docs/examples/embed.c -Lbuild -laiolab -Wl,-rpath,$PWD/build -lpthread */
/* SPDX-License-Identifier: MIT */
/*
 * docs/examples/embed.c - an AioContext driven by somebody else's event
 * loop (here a bare poll(2) loop), the job QEMU gives to GLib through its
 * GSource callbacks.  docs/qemu-map.md includes the region below;
 * tests/docs-check.py builds and runs this file.
 *
 * Another thread schedules a BH while the loop sleeps in poll(): the wake-
 * up reaches poll() only because aio_context_prepare() announced the wait.
 */
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <time.h>
#include <aiolab/aiolab.h>

static bool stop;
static int timer_runs;

static void stop_bh(void *opaque)
{
    stop = true;                        /* runs in the loop's thread */
}

static void timer_cb(void *opaque)
{
    timer_runs++;
}

static void *other_thread(void *opaque)
{
    struct timespec ts = { 0, 20 * 1000 * 1000 };

    nanosleep(&ts, NULL);               /* the loop is asleep by now */
    qemu_bh_schedule(opaque);           /* any thread: wakes poll() */
    return NULL;
}

/* [region: embed] */
/* The other loop's iteration, in the context's home thread. */
static void run_embedded(AioContext *ctx)
{
    struct pollfd pfd = { .fd = aio_context_get_fd(ctx), .events = POLLIN };

    while (!stop) {
        int64_t ns = aio_context_prepare(ctx);      /* announce the wait */

        if (ns != 0) {                              /* -1: no deadline */
            poll(&pfd, 1, qemu_timeout_ns_to_ms(ns));
        }
        if (aio_context_check(ctx)) {               /* withdraw; ready? */
            aio_context_dispatch(ctx);              /* BHs, fds, timers */
        }
    }
}
/* [endregion] */

int main(void)
{
    AioContext *ctx = aio_context_new(&error_abort);
    QEMUBH *bh = aio_bh_new(ctx, stop_bh, NULL);
    QEMUTimer *timer = aio_timer_new(ctx, QEMU_CLOCK_REALTIME, SCALE_MS,
                                     timer_cb, NULL);
    pthread_t thread;

    qemu_set_current_aio_context(ctx);
    timer_mod(timer, qemu_clock_get_ms(QEMU_CLOCK_REALTIME) + 5);
    pthread_create(&thread, NULL, other_thread, bh);
    run_embedded(ctx);
    pthread_join(thread, NULL);

    if (timer_runs != 1) {
        fprintf(stderr, "embed: the timer ran %d times\n", timer_runs);
        return 1;
    }
    printf("embed: timer ran, cross-thread BH woke poll(), fdmon %s\n",
           aiolab_aio_context_fdmon_name(ctx));
    timer_free(timer);
    qemu_bh_delete(bh);
    aio_context_unref(ctx);
    return 0;
}
