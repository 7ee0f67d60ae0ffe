/* SPDX-License-Identifier: MIT */
/*
 * tests/c/test-aio.c - AioContext: BHs, event notifiers, fd handlers,
 * timers and aio_poll()'s return value.  Ports the scenarios of QEMU's
 * tests/unit/test-aio.c (see the catalogue, section 1) and the extra
 * assertions of section 1.3.  Each case asserts after every step.
 *
 * AIOLAB_FDMON=poll|epoll|io_uring runs the whole file on another fd
 * monitor (make test runs it three times).
 */
#include <errno.h>
#include <string.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>
#include <aiolab/aiolab.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#include "harness.h"

static AioContext *ctx;

/*
 * Each case (its own process) polls a fresh context from this thread, on
 * the fd monitor AIOLAB_FDMON picks.  (The main context is always on
 * epoll: main_loop_wait() embeds it, see test-main-loop.c.)
 */
static void setup(void)
{
    ctx = aio_context_new(&error_abort);
    qemu_set_current_aio_context(ctx);
    while (aio_poll(ctx, false)) {
    }
}

/* A non-blocking poll finds nothing to do, and @count is @n. */
#define ASSERT_IDLE(count, n) do {                                        \
    ASSERT_FALSE(aio_poll(ctx, false));                                   \
    ASSERT_EQ(count, n);                                                  \
} while (0)

/* --- BHs ------------------------------------------------------------ */

typedef struct {
    QEMUBH *bh;
    int n;
    int max;
} BHTestData;

static void bh_test_cb(void *opaque)
{
    BHTestData *data = opaque;

    if (++data->n < data->max) {
        qemu_bh_schedule(data->bh);
    }
}

static void bh_delete_cb(void *opaque)
{
    BHTestData *data = opaque;

    if (++data->n < data->max) {
        qemu_bh_schedule(data->bh);
    } else {
        qemu_bh_delete(data->bh);
        data->bh = NULL;
    }
}

/* A fresh context (setup()) and @data's BH, with @cb, scheduled: it has
 * not run yet. */
static void bh_start(BHTestData *data, QEMUBHFunc *cb)
{
    setup();
    data->bh = aio_bh_new(ctx, cb, data);
    qemu_bh_schedule(data->bh);
    ASSERT_EQ(data->n, 0);
}

static void test_bh_schedule(void)
{
    BHTestData data = { .n = 0 };

    bh_start(&data, bh_test_cb);
    ASSERT_TRUE(aio_poll(ctx, true));
    ASSERT_EQ(data.n, 1);
    ASSERT_IDLE(data.n, 1);
    qemu_bh_delete(data.bh);
}

static void test_bh_schedule10(void)
{
    BHTestData data = { .n = 0, .max = 10 };

    bh_start(&data, bh_test_cb);
    ASSERT_TRUE(aio_poll(ctx, false));
    ASSERT_EQ(data.n, 1);       /* the reschedule waits for the next poll */
    ASSERT_TRUE(aio_poll(ctx, true));
    ASSERT_EQ(data.n, 2);
    while (data.n < 10) {
        aio_poll(ctx, true);
    }
    ASSERT_EQ(data.n, 10);
    ASSERT_IDLE(data.n, 10);
    qemu_bh_delete(data.bh);
}

static void test_bh_cancel(void)
{
    BHTestData data = { .n = 0 };

    bh_start(&data, bh_test_cb);
    qemu_bh_cancel(data.bh);
    ASSERT_EQ(data.n, 0);
    ASSERT_IDLE(data.n, 0);
    qemu_bh_delete(data.bh);
}

static void test_bh_delete(void)
{
    BHTestData data = { .n = 0 };

    bh_start(&data, bh_test_cb);
    qemu_bh_delete(data.bh);
    ASSERT_EQ(data.n, 0);
    ASSERT_IDLE(data.n, 0);
}

static void test_bh_delete_from_cb(void)
{
    BHTestData data = { .n = 0, .max = 1 };

    bh_start(&data, bh_delete_cb);
    while (data.n < data.max) {
        aio_poll(ctx, true);
    }
    ASSERT_EQ(data.n, 1);
    ASSERT_PTR_EQ(data.bh, NULL);
    ASSERT_FALSE(aio_poll(ctx, false));
}

static void test_bh_delete_from_cb_many(void)
{
    BHTestData d1 = { .max = 1 }, d2 = { .max = 3 };
    BHTestData d3 = { .max = 2 }, d4 = { .max = 4 };

    setup();
    d1.bh = aio_bh_new(ctx, bh_delete_cb, &d1);
    d2.bh = aio_bh_new(ctx, bh_delete_cb, &d2);
    d3.bh = aio_bh_new(ctx, bh_delete_cb, &d3);
    d4.bh = aio_bh_new(ctx, bh_delete_cb, &d4);
    qemu_bh_schedule(d1.bh);
    qemu_bh_schedule(d2.bh);
    qemu_bh_schedule(d3.bh);
    qemu_bh_schedule(d4.bh);
    ASSERT_EQ(d1.n + d2.n + d3.n + d4.n, 0);
    ASSERT_TRUE(aio_poll(ctx, false));
    ASSERT_EQ(d1.n, 1);
    ASSERT_EQ(d2.n, 1);
    ASSERT_EQ(d3.n, 1);
    ASSERT_EQ(d4.n, 1);
    ASSERT_PTR_EQ(d1.bh, NULL);
    while (d1.n < d1.max || d2.n < d2.max || d3.n < d3.max ||
           d4.n < d4.max) {
        aio_poll(ctx, true);
    }
    ASSERT_EQ(d1.n, 1);
    ASSERT_EQ(d2.n, 3);
    ASSERT_EQ(d3.n, 2);
    ASSERT_EQ(d4.n, 4);
    ASSERT_PTR_EQ(d1.bh, NULL);
    ASSERT_PTR_EQ(d2.bh, NULL);
    ASSERT_PTR_EQ(d3.bh, NULL);
    ASSERT_PTR_EQ(d4.bh, NULL);
}

static void test_bh_schedule_three_times_runs_once(void)
{
    BHTestData data = { .n = 0 };

    bh_start(&data, bh_test_cb);
    qemu_bh_schedule(data.bh);
    qemu_bh_schedule(data.bh);
    ASSERT_TRUE(aio_poll(ctx, false));
    ASSERT_EQ(data.n, 1);
    ASSERT_IDLE(data.n, 1);
    qemu_bh_delete(data.bh);
}

/* Record the order callbacks (BHs, timers) run in. */
static int order_log[8], order_len;

static void order_cb(void *opaque)
{
    order_log[order_len++] = (int)(intptr_t)opaque;
}

static void test_bh_order_lifo(void)
{
    QEMUBH *bh[3];
    int i;

    setup();
    for (i = 0; i < 3; i++) {
        bh[i] = aio_bh_new(ctx, order_cb, (void *)(intptr_t)i);
        qemu_bh_schedule(bh[i]);
    }
    ASSERT_TRUE(aio_poll(ctx, false));
    ASSERT_EQ(order_len, 3);
    /* Reverse scheduling order within one pass. */
    ASSERT_EQ(order_log[0], 2);
    ASSERT_EQ(order_log[1], 1);
    ASSERT_EQ(order_log[2], 0);
    for (i = 0; i < 3; i++) {
        qemu_bh_delete(bh[i]);
    }
}

static void test_bh_idle(void)
{
    BHTestData data = { .n = 0 };
    int64_t t;

    setup();
    data.bh = aio_bh_new(ctx, bh_test_cb, &data);
    qemu_bh_schedule_idle(data.bh);
    t = aiolab_aio_context_compute_timeout(ctx);
    ASSERT_GT(t, 0);
    ASSERT_LE(t, 10000000);
    ASSERT_FALSE(aio_poll(ctx, true));  /* ran, but idle is not progress */
    ASSERT_EQ(data.n, 1);
    qemu_bh_schedule(data.bh);
    ASSERT_EQ(aiolab_aio_context_compute_timeout(ctx), 0);
    ASSERT_TRUE(aio_poll(ctx, false));
    ASSERT_EQ(data.n, 2);
    qemu_bh_delete(data.bh);
}

/*
 * aiolab_aio_poll_ready: polls only when nothing would sleep.  An idle BH
 * makes the timeout non-zero, so it is left for a real poll.
 */
static void test_poll_ready(void)
{
    BHTestData data = { .n = 0 }, idle = { .n = 0 };

    setup();
    data.bh = aio_bh_new(ctx, bh_test_cb, &data);
    idle.bh = aio_bh_new(ctx, bh_test_cb, &idle);
    ASSERT_EQ(aiolab_aio_poll_ready(ctx), -1); /* would sleep */
    qemu_bh_schedule_idle(idle.bh);
    ASSERT_EQ(aiolab_aio_poll_ready(ctx), -1); /* would wait 10 ms */
    ASSERT_EQ(idle.n, 0);
    qemu_bh_schedule(data.bh);
    ASSERT_EQ(aiolab_aio_poll_ready(ctx), 1); /* ran both */
    ASSERT_EQ(data.n, 1);
    ASSERT_EQ(idle.n, 1);
    ASSERT_EQ(aiolab_aio_poll_ready(ctx), -1);
    qemu_bh_delete(data.bh);
    qemu_bh_delete(idle.bh);
}

static void test_bh_oneshot(void)
{
    BHTestData data = { .n = 0 };

    setup();
    aio_bh_schedule_oneshot(ctx, bh_test_cb, &data);
    ASSERT_EQ(data.n, 0);
    ASSERT_TRUE(aio_poll(ctx, false));
    ASSERT_EQ(data.n, 1);
    ASSERT_FALSE(aio_poll(ctx, false));
}

/* A BH that polls: the nested poll finishes the outer slice. */
static BHTestData nested_other;

static void nested_poll_cb(void *opaque)
{
    int *ran_nested = opaque;

    ASSERT_EQ(nested_other.n, 0);
    aio_poll(ctx, false);
    *ran_nested = nested_other.n;
}

static void test_bh_nested_poll(void)
{
    int ran_nested = -1;
    QEMUBH *outer;

    setup();
    nested_other = (BHTestData){ .n = 0 };
    nested_other.bh = aio_bh_new(ctx, bh_test_cb, &nested_other);
    outer = aio_bh_new(ctx, nested_poll_cb, &ran_nested);
    /* LIFO: outer runs first, other is still in the outer slice. */
    qemu_bh_schedule(nested_other.bh);
    qemu_bh_schedule(outer);
    ASSERT_TRUE(aio_poll(ctx, false));
    ASSERT_EQ(ran_nested, 1);
    ASSERT_EQ(nested_other.n, 1);
    qemu_bh_delete(outer);
    qemu_bh_delete(nested_other.bh);
}

/* A guarded BH engages its device's guard while it runs. */
static MemReentrancyGuard guard;
static bool guard_seen_engaged;

static void guarded_cb(void *opaque)
{
    guard_seen_engaged = guard.engaged_in_io;
}

static void test_bh_guarded(void)
{
    QEMUBH *bh;

    setup();
    bh = aio_bh_new_guarded(ctx, guarded_cb, NULL, &guard);
    qemu_bh_schedule(bh);
    ASSERT_TRUE(aio_poll(ctx, false));
    ASSERT_TRUE(guard_seen_engaged);
    ASSERT_FALSE(guard.engaged_in_io);      /* restored afterwards */
    /* Already engaged (the device is mid-access): still runs, and the
     * previous value is restored. */
    guard.engaged_in_io = true;
    guard_seen_engaged = false;
    qemu_bh_schedule(bh);
    ASSERT_TRUE(aio_poll(ctx, false));
    ASSERT_TRUE(guard_seen_engaged);
    ASSERT_TRUE(guard.engaged_in_io);
    qemu_bh_delete(bh);
}

/* --- event notifiers ------------------------------------------------ */

typedef struct {
    EventNotifier e;
    int n;
    int active;
    bool auto_set;
} EventNotifierTestData;

static void event_ready_cb(EventNotifier *e)
{
    EventNotifierTestData *data = (EventNotifierTestData *)e;

    ASSERT_TRUE(event_notifier_test_and_clear(e));
    data->n++;
    if (data->active > 0) {
        data->active--;
    }
    if (data->auto_set && data->active) {
        event_notifier_set(e);
    }
}

static void set_event_notifier(EventNotifier *e, EventNotifierHandler *h)
{
    aio_set_event_notifier(ctx, e, h, NULL, NULL);
}

/* A fresh context (setup()) and @data's notifier, not set, watched by
 * event_ready_cb. */
static void event_start(EventNotifierTestData *data)
{
    setup();
    event_notifier_init(&data->e, false);
    set_event_notifier(&data->e, event_ready_cb);
}

static void test_event_add_remove(void)
{
    EventNotifierTestData data = { .n = 0, .active = 0 };

    event_start(&data);
    ASSERT_IDLE(data.n, 0);
    set_event_notifier(&data.e, NULL);
    ASSERT_IDLE(data.n, 0);
    event_notifier_cleanup(&data.e);
}

static void test_event_wait(void)
{
    EventNotifierTestData data = { .n = 0, .active = 1 };

    event_start(&data);
    while (aio_poll(ctx, false)) {
    }
    ASSERT_EQ(data.n, 0);
    ASSERT_EQ(data.active, 1);
    event_notifier_set(&data.e);
    ASSERT_TRUE(aio_poll(ctx, false));
    ASSERT_EQ(data.n, 1);
    ASSERT_EQ(data.active, 0);
    ASSERT_IDLE(data.n, 1);
    ASSERT_EQ(data.active, 0);
    set_event_notifier(&data.e, NULL);
    ASSERT_IDLE(data.n, 1);
    event_notifier_cleanup(&data.e);
}

static void test_event_wait_no_flush_cb(void)
{
    EventNotifierTestData data = { .n = 0, .active = 0 };
    EventNotifierTestData dummy = { .n = 0, .active = 1 };

    event_start(&data);
    ASSERT_IDLE(data.n, 0);
    event_notifier_set(&data.e);
    ASSERT_TRUE(aio_poll(ctx, true));   /* must not block */
    data.n = 0;

    event_notifier_init(&dummy.e, false);
    set_event_notifier(&dummy.e, event_ready_cb);
    event_notifier_set(&data.e);
    ASSERT_TRUE(aio_poll(ctx, false));
    ASSERT_EQ(data.n, 1);
    ASSERT_IDLE(data.n, 1);
    event_notifier_set(&data.e);
    ASSERT_TRUE(aio_poll(ctx, false));
    ASSERT_EQ(data.n, 2);
    ASSERT_IDLE(data.n, 2);

    event_notifier_set(&dummy.e);
    while (dummy.active) {
        aio_poll(ctx, true);
    }
    ASSERT_EQ(data.n, 2);
    ASSERT_EQ(dummy.n, 1);
    ASSERT_EQ(dummy.active, 0);
    set_event_notifier(&dummy.e, NULL);
    event_notifier_cleanup(&dummy.e);
    set_event_notifier(&data.e, NULL);
    ASSERT_IDLE(data.n, 2);
    event_notifier_cleanup(&data.e);
}

static void test_event_flush(void)
{
    EventNotifierTestData data = { .n = 0, .active = 10, .auto_set = true };

    event_start(&data);
    while (aio_poll(ctx, false)) {
    }
    ASSERT_EQ(data.n, 0);
    ASSERT_EQ(data.active, 10);
    event_notifier_set(&data.e);
    ASSERT_TRUE(aio_poll(ctx, false));
    ASSERT_EQ(data.n, 1);
    ASSERT_EQ(data.active, 9);
    ASSERT_TRUE(aio_poll(ctx, false));
    while (data.active > 0) {
        aio_poll(ctx, true);
    }
    ASSERT_EQ(data.n, 10);
    ASSERT_EQ(data.active, 0);
    ASSERT_FALSE(aio_poll(ctx, false));
    set_event_notifier(&data.e, NULL);
    ASSERT_FALSE(aio_poll(ctx, false));
    event_notifier_cleanup(&data.e);
}

static void test_notify_then_blocking_poll(void)
{
    setup();
    aio_notify(ctx);
    ASSERT_FALSE(aio_poll(ctx, true));      /* returns without blocking */
    ASSERT_FALSE(aio_poll(ctx, false));
}

/* --- fd handlers ------------------------------------------------------ */

typedef struct {
    int fds[2];
    int reads;
    bool remove_self;
} PipeData;

static void pipe_read_cb(void *opaque)
{
    PipeData *p = opaque;
    char c;

    ASSERT_EQ(read(p->fds[0], &c, 1), 1);
    p->reads++;
    if (p->remove_self) {
        aio_set_fd_handler(ctx, p->fds[0], NULL, NULL, NULL, NULL, NULL);
    }
}

static void test_fd_remove_unregistered(void)
{
    setup();
    /* Removing an fd that was never registered is a no-op. */
    aio_set_fd_handler(ctx, 1000, NULL, NULL, NULL, NULL, NULL);
    ASSERT_FALSE(aio_poll(ctx, false));
}

static void test_fd_level_triggered_and_replace(void)
{
    PipeData p = { .reads = 0 };
    int other = 0;

    setup();
    ASSERT_EQ(pipe(p.fds), 0);
    aio_set_fd_handler(ctx, p.fds[0], pipe_read_cb, NULL, NULL, NULL, &p);
    ASSERT_EQ(write(p.fds[1], "ab", 2), 2);
    ASSERT_TRUE(aio_poll(ctx, false));
    ASSERT_EQ(p.reads, 1);
    ASSERT_TRUE(aio_poll(ctx, false));  /* still readable: fires again */
    ASSERT_EQ(p.reads, 2);
    ASSERT_FALSE(aio_poll(ctx, false));

    /* Registering again replaces the callbacks. */
    aio_set_fd_handler(ctx, p.fds[0], (IOHandler *)(void *)pipe_read_cb,
                       NULL, NULL, NULL, &p);
    (void)other;
    ASSERT_EQ(write(p.fds[1], "c", 1), 1);
    ASSERT_TRUE(aio_poll(ctx, false));
    ASSERT_EQ(p.reads, 3);
    aio_set_fd_handler(ctx, p.fds[0], NULL, NULL, NULL, NULL, NULL);
    close(p.fds[0]);
    close(p.fds[1]);
}

static void test_fd_remove_self(void)
{
    PipeData p = { .reads = 0, .remove_self = true };

    setup();
    ASSERT_EQ(pipe(p.fds), 0);
    aio_set_fd_handler(ctx, p.fds[0], pipe_read_cb, NULL, NULL, NULL, &p);
    ASSERT_EQ(write(p.fds[1], "ab", 2), 2);
    ASSERT_TRUE(aio_poll(ctx, false));
    ASSERT_EQ(p.reads, 1);
    /* Removed from inside its own callback: never fires again. */
    ASSERT_IDLE(p.reads, 1);
    close(p.fds[0]);
    close(p.fds[1]);
}

/* A handler that removes another from a nested aio_poll. */
static PipeData nested_a, nested_b;

static void nested_remove_cb(void *opaque)
{
    char c;

    ASSERT_EQ(read(nested_a.fds[0], &c, 1), 1);
    nested_a.reads++;
    aio_poll(ctx, false);   /* dispatches b (ready too) */
    aio_set_fd_handler(ctx, nested_b.fds[0], NULL, NULL, NULL, NULL, NULL);
    aio_set_fd_handler(ctx, nested_a.fds[0], NULL, NULL, NULL, NULL, NULL);
}

static void test_fd_remove_in_nested_poll(void)
{
    setup();
    nested_a = (PipeData){ .reads = 0 };
    nested_b = (PipeData){ .reads = 0 };
    ASSERT_EQ(pipe(nested_a.fds), 0);
    ASSERT_EQ(pipe(nested_b.fds), 0);
    aio_set_fd_handler(ctx, nested_a.fds[0], nested_remove_cb, NULL, NULL,
                       NULL, NULL);
    aio_set_fd_handler(ctx, nested_b.fds[0], pipe_read_cb, NULL, NULL, NULL,
                       &nested_b);
    ASSERT_EQ(write(nested_a.fds[1], "a", 1), 1);
    ASSERT_EQ(write(nested_b.fds[1], "bb", 2), 2);
    ASSERT_TRUE(aio_poll(ctx, false));
    ASSERT_EQ(nested_a.reads, 1);
    ASSERT_GE(nested_b.reads, 1);
    /* Both removed: b stays readable but never fires again. */
    int before = nested_b.reads;
    ASSERT_IDLE(nested_b.reads, before);
}

/* --- timers ----------------------------------------------------------- */

typedef struct {
    int n;
    int max;
    int64_t ns;
    QEMUTimer *timer;
} TimerTestData;

static void timer_test_cb(void *opaque)
{
    TimerTestData *data = opaque;

    if (++data->n < data->max) {
        timer_mod(data->timer, qemu_clock_get_ns(QEMU_CLOCK_REALTIME) +
                  data->ns);
    }
}

static void dummy_io_handler_read(EventNotifier *e)
{
}

static void test_timer_schedule(void)
{
    TimerTestData data = { .n = 0, .ns = 750 * SCALE_MS, .max = 2 };
    EventNotifier e;
    int64_t t0;

    setup();
    /* A notifier without io_poll makes non-blocking polls consult fds. */
    event_notifier_init(&e, false);
    aio_set_event_notifier(ctx, &e, dummy_io_handler_read, NULL, NULL);
    aio_poll(ctx, false);

    data.timer = aio_timer_new(ctx, QEMU_CLOCK_REALTIME, SCALE_NS,
                               timer_test_cb, &data);
    timer_mod(data.timer, qemu_clock_get_ns(QEMU_CLOCK_REALTIME) + data.ns);
    ASSERT_EQ(data.n, 0);
    while (aio_poll(ctx, false)) {
    }
    ASSERT_IDLE(data.n, 0);
    usleep(1000000);
    ASSERT_EQ(data.n, 0);   /* nothing runs without polling */
    ASSERT_TRUE(aio_poll(ctx, false));
    ASSERT_EQ(data.n, 1);
    while (aio_poll(ctx, false)) {
    }
    ASSERT_IDLE(data.n, 1);
    t0 = qemu_clock_get_ns(QEMU_CLOCK_REALTIME);
    ASSERT_TRUE(aio_poll(ctx, true));   /* blocks until the deadline */
    ASSERT_EQ(data.n, 2);
    ASSERT_GE(qemu_clock_get_ns(QEMU_CLOCK_REALTIME) - t0, 500 * SCALE_MS);
    ASSERT_IDLE(data.n, 2);
    aio_set_event_notifier(ctx, &e, NULL, NULL, NULL);
    event_notifier_cleanup(&e);
    timer_free(data.timer);
}

static void test_timer_fifo_equal_expiry(void)
{
    QEMUTimer *t[3];
    int64_t when;
    int i;

    setup();
    when = qemu_clock_get_ns(QEMU_CLOCK_REALTIME) + 1000000;
    for (i = 0; i < 3; i++) {
        t[i] = aio_timer_new(ctx, QEMU_CLOCK_REALTIME, SCALE_NS, order_cb,
                             (void *)(intptr_t)i);
        timer_mod(t[i], when);
    }
    while (order_len < 3) {
        aio_poll(ctx, true);
    }
    ASSERT_EQ(order_log[0], 0);
    ASSERT_EQ(order_log[1], 1);
    ASSERT_EQ(order_log[2], 2);
    for (i = 0; i < 3; i++) {
        timer_free(t[i]);
    }
}

static void test_timer_anticipate_and_pending(void)
{
    TimerTestData data = { .n = 0, .max = 1 };
    QEMUTimer *t;
    int64_t now;

    setup();
    t = aio_timer_new(ctx, QEMU_CLOCK_REALTIME, SCALE_MS, timer_test_cb,
                      &data);
    data.timer = t;
    ASSERT_FALSE(timer_pending(t));
    ASSERT_EQ((int64_t)timer_expire_time_ns(t), -1);
    now = qemu_clock_get_ms(QEMU_CLOCK_REALTIME);
    timer_mod(t, now + 1000);
    ASSERT_TRUE(timer_pending(t));
    /* Only ever earlier: a later time leaves it alone. */
    timer_mod_anticipate(t, now + 5000);
    ASSERT_EQ((int64_t)timer_expire_time_ns(t), (now + 1000) * SCALE_MS);
    timer_mod_anticipate(t, now + 10);
    ASSERT_EQ((int64_t)timer_expire_time_ns(t), (now + 10) * SCALE_MS);
    ASSERT_FALSE(timer_expired(t, now));
    ASSERT_TRUE(timer_expired(t, now + 10));
    timer_del(t);
    ASSERT_FALSE(timer_pending(t));
    timer_mod(t, -5);           /* clamped to 0: due at once */
    ASSERT_EQ((int64_t)timer_expire_time_ns(t), 0);
    ASSERT_TRUE(aio_poll(ctx, false));
    ASSERT_EQ(data.n, 1);
    timer_free(t);
}

static void test_timer_deadline_is_timeout(void)
{
    TimerTestData data = { .n = 0, .max = 1 };
    QEMUTimer *t;
    int64_t to;

    setup();
    t = aio_timer_new(ctx, QEMU_CLOCK_REALTIME, SCALE_NS, timer_test_cb,
                      &data);
    ASSERT_EQ(aiolab_aio_context_compute_timeout(ctx), -1);
    timer_mod(t, qemu_clock_get_ns(QEMU_CLOCK_REALTIME) + 50 * SCALE_MS);
    to = aiolab_aio_context_compute_timeout(ctx);
    ASSERT_GT(to, 40 * SCALE_MS);
    ASSERT_LE(to, 50 * SCALE_MS);
    timer_free(t);
}

static void test_virtual_clock_disabled(void)
{
    TimerTestData data = { .n = 0, .max = 1 };
    QEMUTimer *t;

    setup();
    ASSERT_FALSE(aiolab_clock_is_enabled(QEMU_CLOCK_VIRTUAL));
    ASSERT_EQ(qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL), 0);
    t = aio_timer_new(ctx, QEMU_CLOCK_VIRTUAL, SCALE_NS, timer_test_cb,
                      &data);
    data.timer = t;
    timer_mod(t, 0);
    ASSERT_EQ(aiolab_aio_context_compute_timeout(ctx), -1);
    ASSERT_FALSE(aio_poll(ctx, false));     /* disabled: never runs */
    ASSERT_EQ(data.n, 0);
    qemu_clock_enable(QEMU_CLOCK_VIRTUAL, true);
    cpu_enable_ticks();
    ASSERT_TRUE(aio_poll(ctx, false));
    ASSERT_EQ(data.n, 1);
    usleep(2000);
    ASSERT_GT(qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL), 0);
    cpu_disable_ticks();
    int64_t frozen = qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL);
    usleep(2000);
    ASSERT_EQ(qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL), frozen);
    timer_free(t);
}

/* --- fd monitors --------------------------------------------------- */

/*
 * The catalogue's 9.0 replacement for test-fdmon-epoll: 100 notifiers
 * (past the 64-fd threshold where poll(2) upgrades itself to epoll); one
 * set runs only its own handler; handlers removed while in epoll mode.
 */
static void test_many_fds(void)
{
    EventNotifierTestData data[100];
    const char *fdmon = getenv("AIOLAB_FDMON");
    int i;

    setup();
    for (i = 0; i < 100; i++) {
        data[i] = (EventNotifierTestData){ .n = 0 };
        event_notifier_init(&data[i].e, false);
        set_event_notifier(&data[i].e, event_ready_cb);
    }
    event_notifier_set(&data[0].e);
    ASSERT_TRUE(aio_poll(ctx, true));
    ASSERT_EQ(data[0].n, 1);
    for (i = 1; i < 100; i++) {
        ASSERT_EQ(data[i].n, 0);
    }
    if (!fdmon || !strcmp(fdmon, "poll") || !strcmp(fdmon, "epoll")) {
        ASSERT_STR_EQ(aiolab_aio_context_fdmon_name(ctx), "epoll");
    }
    for (i = 0; i < 50; i++) {
        set_event_notifier(&data[i].e, NULL);
        event_notifier_cleanup(&data[i].e);
    }
    event_notifier_set(&data[70].e);
    ASSERT_TRUE(aio_poll(ctx, true));
    ASSERT_EQ(data[70].n, 1);
    for (i = 50; i < 100; i++) {
        set_event_notifier(&data[i].e, NULL);
        event_notifier_cleanup(&data[i].e);
    }
    ASSERT_FALSE(aio_poll(ctx, false));
}

static void test_fdmon_switch(void)
{
    EventNotifierTestData data = { .n = 0 };
    static const char *const names[] = { "epoll", "poll", "io_uring" };
    Error *err = NULL;
    size_t i;

    event_start(&data);
    for (i = 0; i < ARRAY_SIZE(names); i++) {
        if (!aiolab_aio_context_set_fdmon(ctx, names[i], &err)) {
            /* io_uring may be refused by this kernel: say so, go on. */
            ASSERT_STR_EQ(names[i], "io_uring");
            printf("# io_uring fd monitor unavailable: %s\n",
                   error_get_pretty(err));
            error_free(err);
            err = NULL;
            continue;
        }
        ASSERT_STR_EQ(aiolab_aio_context_fdmon_name(ctx), names[i]);
        event_notifier_set(&data.e);
        ASSERT_TRUE(aio_poll(ctx, true));
        ASSERT_EQ(data.n, (int)i + 1);
    }
    ASSERT_FALSE(aiolab_aio_context_set_fdmon(ctx, "kqueue", &err));
    ASSERT_STR_CONTAINS(error_get_pretty(err), "unknown fd monitor");
    error_free(err);
    set_event_notifier(&data.e, NULL);
    event_notifier_cleanup(&data.e);
}

static const TestCase tests[] = {
    { "/aio/bh/schedule", test_bh_schedule },
    { "/aio/bh/schedule10", test_bh_schedule10 },
    { "/aio/bh/cancel", test_bh_cancel },
    { "/aio/bh/delete", test_bh_delete },
    { "/aio/bh/callback-delete/one", test_bh_delete_from_cb },
    { "/aio/bh/callback-delete/many", test_bh_delete_from_cb_many },
    { "/aio/bh/flush", test_bh_schedule },
    { "/aio/bh/schedule-three-times", test_bh_schedule_three_times_runs_once },
    { "/aio/bh/order-lifo", test_bh_order_lifo },
    { "/aio/bh/idle", test_bh_idle },
    { "/aio/bh/poll-ready", test_poll_ready },
    { "/aio/bh/oneshot", test_bh_oneshot },
    { "/aio/bh/nested-poll", test_bh_nested_poll },
    { "/aio/event/add-remove", test_event_add_remove },
    { "/aio/event/wait", test_event_wait },
    { "/aio/event/wait/no-flush-cb", test_event_wait_no_flush_cb },
    { "/aio/event/flush", test_event_flush },
    { "/aio/notify/then-blocking-poll", test_notify_then_blocking_poll },
    { "/aio/fd/remove-unregistered", test_fd_remove_unregistered },
    { "/aio/fd/level-triggered-replace", test_fd_level_triggered_and_replace },
    { "/aio/fd/remove-self", test_fd_remove_self },
    { "/aio/fd/remove-in-nested-poll", test_fd_remove_in_nested_poll },
    { "/aio/timer/schedule", test_timer_schedule },
    { "/aio/timer/fifo", test_timer_fifo_equal_expiry },
    { "/aio/timer/anticipate", test_timer_anticipate_and_pending },
    { "/aio/timer/deadline", test_timer_deadline_is_timeout },
    { "/aio/timer/virtual-disabled", test_virtual_clock_disabled },
    { "/aio/bh/guarded", test_bh_guarded },
    { "/aio/fdmon/many-fds", test_many_fds },
    { "/aio/fdmon/switch", test_fdmon_switch },
    { NULL }
};

int main(int argc, char **argv)
{
    return harness_main(argc, argv, tests);
}
