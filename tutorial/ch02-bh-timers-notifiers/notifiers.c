/* cc -Ic/include tutorial/ch02-bh-timers-notifiers/notifiers.c -o build/notifiers -Lbuild -laiolab -Wl,-rpath,$PWD/build */
/*
 * SPDX-License-Identifier: MIT
 *
 * ch02-bh-timers-notifiers/notifiers.c - event notifiers, and the doors
 * through which other threads reach a sleeping loop.
 *
 * Another thread must never call a context's callbacks itself.  It goes
 * through a thread-safe door: set an event notifier, schedule a BH, arm a
 * timer, or just aio_notify().  Each wakes the sleeping aio_poll(), and
 * the callback runs in the context's home thread.
 */
#include "../tutorial.h"
#include <pthread.h>
#include <aiolab/aiolab.h>

static AioContext *ctx;
static EventNotifier e;
static QEMUBH *bh;
static QEMUTimer *timer;
static int home_tid, calls, calls_at_home;

/* Every callback below: count it, and note in which thread it ran. */
static void ran(void)
{
    calls++;
    calls_at_home += tut_gettid() == home_tid;
}

/* [region: handler] */
static void on_event(EventNotifier *n)
{
    if (event_notifier_test_and_clear(n)) {    /* read, and so reset */
        ran();
    }
}
/* [endregion] */

static void bh_cb(void *opaque)
{
    ran();
}

static void timer_cb(void *opaque)
{
    ran();
}

/* The doors, opened from another thread 20 ms after it starts. */
static void door_event(void)
{
    event_notifier_set(&e);
}

static void door_bh(void)
{
    qemu_bh_schedule(bh);
}

static void door_timer(void)
{
    timer_mod(timer, qemu_clock_get_ms(QEMU_CLOCK_REALTIME) + 10);
}

static void *opener(void *opaque)
{
    usleep(20 * 1000);
    ((void (*)(void))opaque)();
    return NULL;
}

/* Sleep in aio_poll() until a callback has run; open @door meanwhile. */
static int wait_for_callback(void (*door)(void))
{
    pthread_t th;
    int before = calls, polls = 0;

    pthread_create(&th, NULL, opener, door);
    while (calls == before) {
        aio_poll(ctx, true);
        polls++;
    }
    pthread_join(th, NULL);
    return polls;
}

int main(void)
{
    ctx = aio_context_new(&error_abort);
    qemu_set_current_aio_context(ctx);
    home_tid = tut_gettid();

    /* [region: coalesce] */
    event_notifier_init(&e, 0);
    aio_set_event_notifier(ctx, &e, on_event, NULL, NULL);
    event_notifier_set(&e);
    event_notifier_set(&e);
    event_notifier_set(&e);
    aio_poll(ctx, false);
    /* [endregion] */
    CHECK_EQ("three sets before the loop looks give one callback", calls, 1);
    CHECK("the notifier was cleared: the next poll is idle",
          !aio_poll(ctx, false));

    bh = aio_bh_new(ctx, bh_cb, NULL);
    timer = aio_timer_new(ctx, QEMU_CLOCK_REALTIME, SCALE_MS, timer_cb, NULL);
    printf("aio_poll(ctx, true) calls until the callback ran: "
           "notifier %d, ", wait_for_callback(door_event));
    printf("BH %d, ", wait_for_callback(door_bh));
    printf("timer %d\n", wait_for_callback(door_timer));
    CHECK_EQ("each door, opened by another thread, woke the sleeping loop",
             calls, 4);
    CHECK_EQ("every callback ran in the context's home thread",
             calls_at_home, calls);

    aio_set_event_notifier(ctx, &e, NULL, NULL, NULL);
    event_notifier_cleanup(&e);
    qemu_bh_delete(bh);
    timer_free(timer);
    aio_context_unref(ctx);
    return 0;
}
