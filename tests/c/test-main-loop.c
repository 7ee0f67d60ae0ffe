/* SPDX-License-Identifier: MIT */
/*
 * tests/c/test-main-loop.c - main_loop_wait(), the iohandler context,
 * main-loop timers, and embedding a context in a foreign loop through
 * aio_context_prepare/check/dispatch.
 */
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <unistd.h>
#include <aiolab/aiolab.h>
#include "harness.h"

static void setup(void)
{
    qemu_init_main_loop(&error_abort);
    bql_lock();
}

static int n_runs;
static bool ran_with_bql;

static void count_cb(void *opaque)
{
    n_runs++;
    ran_with_bql = bql_locked();
}

static void test_bh(void)
{
    QEMUBH *bh;

    setup();
    bh = qemu_bh_new(count_cb, NULL);
    qemu_bh_schedule(bh);
    main_loop_wait(false);
    ASSERT_EQ(n_runs, 1);
    ASSERT_TRUE(ran_with_bql);
    ASSERT_TRUE(bql_locked());
    qemu_bh_delete(bh);
}

/* A "vCPU" that wants the BQL while the main loop sleeps. */
static bool vcpu_got_bql;

static void *vcpu_thread(void *opaque)
{
    bql_lock();
    __atomic_store_n(&vcpu_got_bql, true, __ATOMIC_SEQ_CST);
    bql_unlock();
    return NULL;
}

static void test_drops_bql_while_sleeping(void)
{
    QEMUTimer *t;
    pthread_t th;

    setup();
    t = timer_new_ms(QEMU_CLOCK_REALTIME, count_cb, NULL);
    timer_mod(t, qemu_clock_get_ms(QEMU_CLOCK_REALTIME) + 200);
    pthread_create(&th, NULL, vcpu_thread, NULL);
    /* Sleeps up to 200 ms without the BQL: the vCPU gets it meanwhile. */
    while (n_runs == 0) {
        main_loop_wait(false);
    }
    ASSERT_TRUE(__atomic_load_n(&vcpu_got_bql, __ATOMIC_SEQ_CST));
    ASSERT_TRUE(ran_with_bql);      /* timers run with the BQL */
    pthread_join(th, NULL);
    timer_free(t);
}

static int pipe_reads;

static void pipe_read(void *opaque)
{
    int *fds = opaque;
    char c;

    ASSERT_EQ(read(fds[0], &c, 1), 1);
    pipe_reads++;
}

static void test_iohandler_not_nested(void)
{
    int fds[2];

    setup();
    ASSERT_EQ(pipe(fds), 0);
    qemu_set_fd_handler(fds[0], pipe_read, NULL, fds);
    ASSERT_EQ(write(fds[1], "x", 1), 1);
    /* A nested poll of the main context (AIO_WAIT_WHILE, a drain) must
     * not run monitor or chardev handlers. */
    while (aio_poll(qemu_get_aio_context(), false)) {
    }
    ASSERT_EQ(pipe_reads, 0);
    main_loop_wait(false);
    ASSERT_EQ(pipe_reads, 1);
    qemu_set_fd_handler(fds[0], NULL, NULL, NULL);
    ASSERT_EQ(write(fds[1], "y", 1), 1);
    main_loop_wait(true);           /* the notify of the removal */
    main_loop_wait(true);
    ASSERT_EQ(pipe_reads, 1);
}

static void test_main_loop_timers(void)
{
    QEMUTimer *t;

    setup();
    t = timer_new_ns(QEMU_CLOCK_REALTIME, count_cb, NULL);
    timer_mod_ns(t, qemu_clock_get_ns(QEMU_CLOCK_REALTIME));
    /* Not on the main context's own lists: aio_poll does not run it. */
    while (aio_poll(qemu_get_aio_context(), false)) {
    }
    ASSERT_EQ(n_runs, 0);
    main_loop_wait(false);
    ASSERT_EQ(n_runs, 1);
    timer_free(t);
}

static void *notify_later(void *opaque)
{
    usleep(50000);
    qemu_notify_event();
    return NULL;
}

static void test_notify_event_wakes(void)
{
    pthread_t th;
    int64_t t0;

    setup();
    main_loop_wait(true);
    pthread_create(&th, NULL, notify_later, NULL);
    t0 = qemu_clock_get_ns(QEMU_CLOCK_REALTIME);
    main_loop_wait(false);          /* would sleep forever otherwise */
    ASSERT_LT(qemu_clock_get_ns(QEMU_CLOCK_REALTIME) - t0, 5000LL * SCALE_MS);
    pthread_join(th, NULL);
}

/* --- embedding -------------------------------------------------------- */

static AioContext *ectx;
static unsigned long pongs;

static void pong_cb(void *opaque)
{
    __atomic_fetch_add(&pongs, 1, __ATOMIC_SEQ_CST);
}

/*
 * One iteration of a foreign event loop around ectx; @may_block false
 * never sleeps (a drain loop must not wait for news nobody will send).
 */
static bool foreign_iteration(bool may_block)
{
    int64_t ns = aio_context_prepare(ectx);
    struct pollfd pfd = { .fd = aio_context_get_fd(ectx), .events = POLLIN };
    int ms = ns < 0 ? -1 : (int)((ns + 999999) / 1000000);

    if (!may_block) {
        ms = 0;
    }
    if (ns != 0) {
        poll(&pfd, 1, ms);
    }
    if (aio_context_check(ectx)) {
        aio_context_dispatch(ectx);
        return true;
    }
    return false;
}

typedef struct {
    QEMUBH *bh;
    long n;
} PingData;

static void *pinger(void *opaque)
{
    PingData *p = opaque;
    long i;

    for (i = 1; i <= p->n; i++) {
        qemu_bh_schedule(p->bh);
        while (__atomic_load_n(&pongs, __ATOMIC_SEQ_CST) < (unsigned long)i) {
            sched_yield();  /* 2 CPUs: leave one to the loop */
        }
    }
    return NULL;
}

static void test_embed_cross_thread(void)
{
    PingData p;
    pthread_t th;

    ectx = aio_context_new(&error_abort);
    qemu_set_current_aio_context(ectx);
    ASSERT_STR_EQ(aiolab_aio_context_fdmon_name(ectx), "poll");
    ASSERT_GE(aio_context_get_fd(ectx), 0);
    ASSERT_STR_EQ(aiolab_aio_context_fdmon_name(ectx), "epoll");
    p.bh = aio_bh_new(ectx, pong_cb, NULL);
    p.n = harness_scale(20000);
    pthread_create(&th, NULL, pinger, &p);
    while (__atomic_load_n(&pongs, __ATOMIC_RELAXED) < (unsigned long)p.n) {
        foreign_iteration(true);
    }
    pthread_join(th, NULL);
    ASSERT_EQ(pongs, p.n);
    qemu_bh_delete(p.bh);
    /*
     * Run what is left (the deleted BH's free, a last wake-up) without
     * sleeping: with the notifier's last write still pending, one more
     * iteration dispatches it, and a blocking one after it would wait
     * forever (this hung a CI run for 360 s).
     */
    while (foreign_iteration(false)) {
    }
}

static void test_embed_timeouts(void)
{
    QEMUTimer *t;
    QEMUBH *bh;
    int64_t ns;
    int fds[2];

    ectx = aio_context_new(&error_abort);
    qemu_set_current_aio_context(ectx);
    ASSERT_EQ(aio_context_prepare(ectx), 0);   /* the creation's notify */
    ASSERT_FALSE(aio_context_check(ectx));
    ASSERT_EQ(aio_context_prepare(ectx), -1);  /* nothing: sleep forever */
    aio_context_check(ectx);

    t = aio_timer_new(ectx, QEMU_CLOCK_REALTIME, SCALE_MS, pong_cb, NULL);
    timer_mod(t, qemu_clock_get_ms(QEMU_CLOCK_REALTIME) + 100);
    /* A new soonest timer notifies: the next prepare says "do not sleep"
     * (recompute); the one after gives the deadline. */
    ASSERT_EQ(aio_context_prepare(ectx), 0);
    ASSERT_FALSE(aio_context_check(ectx));
    ns = aio_context_prepare(ectx);
    ASSERT_GT(ns, 50 * SCALE_MS);
    ASSERT_LE(ns, 100 * SCALE_MS);
    aio_context_check(ectx);

    bh = aio_bh_new(ectx, pong_cb, NULL);
    qemu_bh_schedule(bh);
    ASSERT_EQ(aio_context_prepare(ectx), 0);   /* work ready */
    ASSERT_TRUE(aio_context_check(ectx));
    aio_context_dispatch(ectx);
    ASSERT_EQ(pongs, 1);

    /* An fd becoming ready shows up in check. */
    ASSERT_EQ(pipe(fds), 0);
    aio_set_fd_handler(ectx, fds[0], pong_cb, NULL, NULL, NULL, NULL);
    aio_context_prepare(ectx);
    aio_context_check(ectx);
    aio_context_dispatch(ectx);
    ASSERT_EQ(write(fds[1], "x", 1), 1);
    aio_context_prepare(ectx);
    ASSERT_TRUE(aio_context_check(ectx));
    aio_context_dispatch(ectx);
    ASSERT_EQ(pongs, 2);
    aio_set_fd_handler(ectx, fds[0], NULL, NULL, NULL, NULL, NULL);
    timer_free(t);
    qemu_bh_delete(bh);
}

/* --- misuse ------------------------------------------------------------ */

static void death_wait_without_bql(void)
{
    qemu_init_main_loop(&error_abort);
    main_loop_wait(true);
}

static void *take_bql_once(void *opaque)
{
    bql_lock();
    bql_unlock();
    return NULL;
}

static void death_main_poll_without_bql(void)
{
    pthread_t th;

    qemu_init_main_loop(&error_abort);
    pthread_create(&th, NULL, take_bql_once, NULL);
    pthread_join(th, NULL);
    /* A vCPU-like thread took the BQL: polling main without it races. */
    aio_poll(qemu_get_aio_context(), false);
}

static void death_timer_without_main_loop(void)
{
    timer_new_ms(QEMU_CLOCK_REALTIME, count_cb, NULL);
}

static const TestCase tests[] = {
    { "/main-loop/bh", test_bh },
    { "/main-loop/drops-bql-while-sleeping", test_drops_bql_while_sleeping },
    { "/main-loop/iohandler-not-nested", test_iohandler_not_nested },
    { "/main-loop/timers", test_main_loop_timers },
    { "/main-loop/notify-event", test_notify_event_wakes },
    { "/embed/cross-thread", test_embed_cross_thread, .timeout = 120 },
    { "/embed/timeouts", test_embed_timeouts },
    { "/main-loop/death/wait-without-bql", death_wait_without_bql,
      .death = "main_loop_wait() requires the BQL" },
    { "/main-loop/death/main-poll-without-bql", death_main_poll_without_bql,
      .death = "aio_poll() polls the main context without the BQL while "
               "other threads take it" },
    { "/main-loop/death/timer-without-main-loop",
      death_timer_without_main_loop,
      .death = "timer_new_ms() needs the main loop" },
    { NULL }
};

int main(int argc, char **argv)
{
    return harness_main(argc, argv, tests);
}
