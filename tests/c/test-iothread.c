/* SPDX-License-Identifier: MIT */
/*
 * tests/c/test-iothread.c - IOThreads, AIO_WAIT_WHILE, the BQL, adaptive
 * polling and the lost-wake-up stress test (catalogue section 9 items
 * 1-8, section 1.3, and the stress requirement).
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <aiolab/aiolab.h>
#include "harness.h"

static void main_loop_setup(void)
{
    qemu_init_main_loop(&error_abort);
    bql_lock();
}

static int64_t now_ns(void)
{
    return qemu_clock_get_ns(QEMU_CLOCK_REALTIME);
}

/* --- IOThread lifecycle ---------------------------------------------- */

typedef struct {
    AioContext *ctx;
    AioContext *current;
    bool in_iothread;
    bool home;
    bool main_home;
    char name[16];
    int tid;
    bool done;
} ProbeData;

static void probe_cb(void *opaque)
{
    ProbeData *p = opaque;

    p->current = qemu_get_current_aio_context();
    p->in_iothread = qemu_in_iothread();
    p->home = in_aio_context_home_thread(p->ctx);
    p->main_home = in_aio_context_home_thread(qemu_get_aio_context());
    prctl(PR_GET_NAME, p->name);
    p->tid = (int)gettid();
}

static void test_lifecycle(void)
{
    IOThread *it;
    ProbeData p = { 0 };
    char *id;
    int64_t v;

    main_loop_setup();
    it = iothread_create("io0", &error_abort);
    ASSERT_PTR_EQ(iothread_by_id("io0"), it);
    ASSERT_PTR_EQ(iothread_by_id("nope"), NULL);
    id = iothread_get_id(it);
    ASSERT_STR_EQ(id, "io0");
    free(id);
    ASSERT_GT(iothread_get_thread_id(it), 0);
    ASSERT_TRUE(aiolab_iothread_get_param(it, "poll-max-ns", &v));
    ASSERT_EQ(v, 32768);
    ASSERT_TRUE(aiolab_iothread_get_param(it, "poll-grow", &v));
    ASSERT_EQ(v, 0);
    ASSERT_TRUE(aiolab_iothread_get_param(it, "thread-pool-max", &v));
    ASSERT_EQ(v, 64);
    ASSERT_FALSE(aiolab_iothread_get_param(it, "bogus", &v));

    p.ctx = iothread_get_aio_context(it);
    aio_wait_bh_oneshot(p.ctx, probe_cb, &p);
    ASSERT_PTR_EQ(p.current, p.ctx);
    ASSERT_TRUE(p.in_iothread);
    ASSERT_TRUE(p.home);
    ASSERT_FALSE(p.main_home);
    ASSERT_STR_EQ(p.name, "IO io0");
    ASSERT_EQ(p.tid, iothread_get_thread_id(it));
    ASSERT_STR_EQ(aiolab_aio_context_get_name(p.ctx), "IO io0");

    /* Here, in the main thread. */
    ASSERT_FALSE(qemu_in_iothread());
    ASSERT_PTR_EQ(qemu_get_current_aio_context(), qemu_get_aio_context());
    ASSERT_FALSE(in_aio_context_home_thread(p.ctx));

    iothread_stop(it);
    iothread_stop(it);      /* idempotent */
    iothread_destroy(it);
    ASSERT_PTR_EQ(iothread_by_id("io0"), NULL);
}

static void test_stop_is_prompt(void)
{
    IOThread *it;
    int64_t t0;

    main_loop_setup();
    it = iothread_create("io0", &error_abort);
    usleep(50000);          /* let it block in aio_poll with no timeout */
    t0 = now_ns();
    iothread_stop(it);
    /* The stop BH's notify wakes the blocked poll at once. */
    ASSERT_LT(now_ns() - t0, 1000 * SCALE_MS);
    iothread_destroy(it);
}

static void test_bad_values(void)
{
    IOThread *it;
    Error *err = NULL;
    int64_t v;

    main_loop_setup();
    it = iothread_create("io0", &error_abort);
    ASSERT_PTR_EQ(iothread_create("io0", &err), NULL);
    ASSERT_STR_CONTAINS(error_get_pretty(err), "Duplicate ID 'io0'");
    error_free(err);
    err = NULL;
    ASSERT_PTR_EQ(iothread_create("0bad", &err), NULL);
    ASSERT_STR_CONTAINS(error_get_pretty(err), "expects an identifier");
    error_free(err);
    err = NULL;
    ASSERT_PTR_EQ(iothread_create("", &err), NULL);
    error_free(err);
    err = NULL;

    ASSERT_FALSE(iothread_set_poll_params(it, -1, 0, 0, &err));
    ASSERT_STR_EQ(error_get_pretty(err),
                  "poll-max-ns value must be in range [0, INT64_MAX]");
    error_free(err);
    err = NULL;
    ASSERT_TRUE(aiolab_iothread_get_param(it, "poll-max-ns", &v));
    ASSERT_EQ(v, 32768);        /* unchanged */
    ASSERT_FALSE(iothread_set_aio_max_batch(it, -5, &err));
    ASSERT_STR_CONTAINS(error_get_pretty(err), "aio-max-batch");
    error_free(err);
    err = NULL;
    ASSERT_FALSE(iothread_set_thread_pool_params(it, 8, 4, &err));
    ASSERT_STR_EQ(error_get_pretty(err),
                  "bad thread-pool-min/thread-pool-max values");
    error_free(err);
    err = NULL;
    ASSERT_TRUE(aiolab_iothread_get_param(it, "thread-pool-min", &v));
    ASSERT_EQ(v, 0);
    ASSERT_TRUE(iothread_set_poll_params(it, 1000, 2, 2, &error_abort));
    ASSERT_TRUE(iothread_set_aio_max_batch(it, 16, &error_abort));
    ASSERT_EQ(aiolab_aio_context_get_aio_max_batch(
                  iothread_get_aio_context(it)), 16);
    iothread_destroy(it);
}

/* --- AIO_WAIT_WHILE ----------------------------------------------------- */

typedef struct {
    bool done;
    bool kick;
} WaitData;

static void set_done_bh(void *opaque)
{
    WaitData *w = opaque;

    __atomic_store_n(&w->done, true, __ATOMIC_SEQ_CST);
    if (w->kick) {
        aio_wait_kick();
    }
}

static void test_wait_from_main(void)
{
    IOThread *it;
    WaitData w = { .kick = true };
    AioContext *ctx;
    bool waited;

    main_loop_setup();
    it = iothread_create("io0", &error_abort);
    ctx = iothread_get_aio_context(it);
    aio_bh_schedule_oneshot(ctx, set_done_bh, &w);
    waited = AIO_WAIT_WHILE(ctx, !__atomic_load_n(&w.done, __ATOMIC_SEQ_CST));
    ASSERT_TRUE(__atomic_load_n(&w.done, __ATOMIC_SEQ_CST));
    (void)waited;
    ASSERT_EQ(aiolab_aio_wait_num_waiters(), 0);
    /* Nothing to wait for: returns false at once. */
    ASSERT_FALSE(AIO_WAIT_WHILE(ctx, false));
    iothread_destroy(it);
}

static void wait_in_own_ctx_bh(void *opaque)
{
    WaitData *inner = opaque;
    AioContext *ctx = qemu_get_current_aio_context();

    /* The IOThread waits on its own context: it polls it itself. */
    aio_bh_schedule_oneshot(ctx, set_done_bh, inner);
    ASSERT_TRUE(AIO_WAIT_WHILE(ctx, !inner->done));
}

static void test_wait_in_iothread_own_ctx(void)
{
    IOThread *it;
    WaitData inner = { .kick = false };

    main_loop_setup();
    it = iothread_create("io0", &error_abort);
    aio_wait_bh_oneshot(iothread_get_aio_context(it), wait_in_own_ctx_bh,
                        &inner);
    ASSERT_TRUE(inner.done);
    iothread_destroy(it);
}

static void test_wait_bh_oneshot(void)
{
    IOThread *it;
    WaitData w = { .kick = false };

    main_loop_setup();
    it = iothread_create("io0", &error_abort);
    aio_wait_bh_oneshot(iothread_get_aio_context(it), set_done_bh, &w);
    ASSERT_TRUE(w.done);    /* returned after the callback ran */
    iothread_destroy(it);
}

static AioContext *other_ctx;

static void wait_on_other_iothread_bh(void *opaque)
{
    /* IOThread io0 waits on io1's context: the rule forbids it. */
    AIO_WAIT_WHILE(other_ctx, true);
}

static void death_wait_across_iothreads(void)
{
    IOThread *a, *b;

    main_loop_setup();
    a = iothread_create("io0", &error_abort);
    b = iothread_create("io1", &error_abort);
    other_ctx = iothread_get_aio_context(b);
    aio_wait_bh_oneshot(iothread_get_aio_context(a),
                        wait_on_other_iothread_bh, NULL);
}

/* --- BQL -------------------------------------------------------------- */

static void test_bql_basics(void)
{
    AiolabBqlStats st[8];
    size_t n, i;
    bool found = false;

    main_loop_setup();          /* holds it */
    ASSERT_TRUE(bql_locked());
    ASSERT_TRUE(qemu_in_main_thread());
    {
        BQL_LOCK_GUARD();       /* already held: no-op */
        ASSERT_TRUE(bql_locked());
    }
    ASSERT_TRUE(bql_locked());  /* the guard did not release it */
    bql_unlock();
    ASSERT_FALSE(bql_locked());
    ASSERT_FALSE(qemu_in_main_thread());
    {
        BQL_LOCK_GUARD();
        ASSERT_TRUE(bql_locked());
    }
    ASSERT_FALSE(bql_locked()); /* released at scope exit */
    n = aiolab_bql_get_stats(st, 8);
    ASSERT_GE(n, 1);
    for (i = 0; i < n && i < 8; i++) {
        if (st[i].tid == (int)gettid()) {
            found = true;
            ASSERT_EQ(st[i].acquisitions, 2);
            ASSERT_GE(st[i].hold_ns_total, 0);
            ASSERT_STR_EQ(st[i].thread_name, "main");
        }
    }
    ASSERT_TRUE(found);
    aiolab_bql_reset_stats();
    n = aiolab_bql_get_stats(st, 8);
    ASSERT_EQ(n, 0);
}

static void *bql_holder_thread(void *opaque)
{
    bool *locked_here = opaque;

    *locked_here = bql_locked();    /* per thread: false */
    bql_lock();
    usleep(20000);                  /* hold it 20 ms */
    bql_unlock();
    return NULL;
}

static void test_bql_per_thread_and_contention(void)
{
    pthread_t th;
    bool other_locked = true;
    AiolabBqlStats st[8];
    size_t n, i;
    int64_t waited = -1;

    main_loop_setup();
    ASSERT_TRUE(bql_locked());
    bql_unlock();
    aiolab_bql_reset_stats();
    pthread_create(&th, NULL, bql_holder_thread, &other_locked);
    usleep(5000);
    bql_lock();                     /* waits ~15 ms for the holder */
    pthread_join(th, NULL);
    ASSERT_FALSE(other_locked);
    n = aiolab_bql_get_stats(st, 8);
    for (i = 0; i < n && i < 8; i++) {
        if (st[i].tid == (int)gettid()) {
            waited = st[i].wait_ns_max;
            ASSERT_EQ(st[i].contended, 1);
        } else {
            ASSERT_GE(st[i].hold_ns_max, 15 * SCALE_MS);
        }
    }
    ASSERT_GE(waited, 5 * SCALE_MS);
}

static void death_bql_double_lock(void)
{
    main_loop_setup();
    bql_lock();
}

static void death_bql_unlock_unheld(void)
{
    qemu_init_main_loop(&error_abort);
    bql_unlock();
}

static void death_iothread_create_without_bql(void)
{
    qemu_init_main_loop(&error_abort);
    iothread_create("io0", NULL);
}

static void death_poll_wrong_thread(void)
{
    IOThread *it;

    main_loop_setup();
    it = iothread_create("io0", &error_abort);
    aio_poll(iothread_get_aio_context(it), false);
}

/* --- adaptive polling ------------------------------------------------ */

/*
 * A context polled from this thread with one pollable handler.  The
 * before-wait hook decides how long a "blocking" poll blocks: it spins
 * for spin_ns (after busy-polling has already used poll_ns), then sets
 * the handler's notifier so the wait returns at once.
 */
static EventNotifier poll_e;
static int64_t spin_ns;
static int poll_reads;

static void poll_read(EventNotifier *e)
{
    event_notifier_test_and_clear(e);
    poll_reads++;
}

static bool poll_never(void *opaque)
{
    return false;
}

static void poll_ready_none(EventNotifier *e)
{
}

static void spin_hook(void *ctx)
{
    int64_t t0 = now_ns();

    while (now_ns() - t0 < spin_ns) {
    }
    event_notifier_set(&poll_e);
}

/* Called again by a retried attempt: the thread keeps its first context. */
static AioContext *polling_setup(int64_t max, int64_t grow, int64_t shrink)
{
    static AioContext *ctx;

    if (!ctx) {
        ctx = aio_context_new(&error_abort);
        qemu_set_current_aio_context(ctx);
        event_notifier_init(&poll_e, false);
        aio_set_event_notifier(ctx, &poll_e, poll_read, poll_never,
                               poll_ready_none);
    }
    aiolab_set_before_wait_hook(NULL);
    aio_context_set_poll_params(ctx, max, grow, shrink, &error_abort);
    /* Fire once so the handler joins the poll list. */
    poll_reads = 0;
    event_notifier_set(&poll_e);
    while (poll_reads == 0) {
        aio_poll(ctx, true);
    }
    aiolab_set_before_wait_hook(spin_hook);
    /* The warm-up above adapted poll_ns already: start from 0. */
    aio_context_set_poll_params(ctx, max, grow, shrink, &error_abort);
    aio_poll(ctx, false);       /* consume the parameters' notify */
    aio_context_set_poll_params(ctx, max, grow, shrink, &error_abort);
    return ctx;
}

/*
 * poll-max-ns is 20 ms in these tests, not QEMU's 32 us default: a
 * blocking poll whose wait (polling included) outlasts poll-max-ns
 * because the thread was preempted (easy on a loaded machine, or under
 * a sanitizer) shrinks poll_ns and breaks the expected sequence.  The
 * last step below the cap polls 8.7 ms, so 20 ms leaves 11 ms of margin
 * (10 ms left 1.3 ms, and a loaded run failed).  A "long" wait spins
 * 30 ms, beyond poll-max-ns on its own.
 */
#define POLL_MAX (20 * SCALE_MS)
#define LONG_WAIT (30 * SCALE_MS)

static bool preempted;      /* during the last blocking_poll_after() */

static long involuntary_switches(void)
{
    struct rusage ru;

    getrusage(RUSAGE_THREAD, &ru);
    return ru.ru_nivcsw;
}

/*
 * A preemption shows as an involuntary context switch, or (when the
 * hypervisor takes the virtual CPU away, which the guest does not count)
 * as a short wait that lasted longer than poll-max-ns on the wall clock.
 */
static int64_t blocking_poll_after(AioContext *ctx, int64_t spin)
{
    long before = involuntary_switches();
    int64_t t0 = now_ns();

    spin_ns = spin;
    aio_poll(ctx, true);
    preempted = involuntary_switches() != before ||
                (spin < POLL_MAX && now_ns() - t0 > POLL_MAX);
    return aiolab_aio_context_get_poll_ns(ctx);
}

/*
 * One step of an adaptive-polling sequence.  A preemption can only make
 * a wait look longer, so a step that found a smaller poll_ns than
 * expected after the scheduler took the CPU away proves nothing: the
 * sequence is restarted (see RETRY_PREEMPTED).  Without a preemption a
 * wrong value fails the test.
 */
#define POLL_STEP(ctx, spin, expect)                                       \
    do {                                                                   \
        int64_t got_ = blocking_poll_after(ctx, spin);                     \
        if (got_ != (expect) && preempted) {                               \
            aiolab_set_before_wait_hook(NULL);                             \
            return false;                                                  \
        }                                                                  \
        ASSERT_EQ(got_, (expect));                                         \
    } while (0)

/* Run @once until one attempt was not disturbed by a preemption. */
static void retry_preempted(bool (*once)(void))
{
    for (int i = 0; i < 50; i++) {
        if (once()) {
            return;
        }
    }
    ASSERT_FALSE("every attempt was preempted in the middle: machine too "
                 "loaded to check the polling arithmetic");
}


static bool poll_grow_shrink_default_once(void)
{
    AioContext *ctx = polling_setup(POLL_MAX, 0, 0);
    int64_t expect = 4000;

    aio_context_set_poll_params(ctx, POLL_MAX, 0, 0, &error_abort);
    ASSERT_EQ(aiolab_aio_context_get_poll_ns(ctx), 0);
    /* The first growth starts at 4 us, then it doubles. */
    for (int i = 0; i < 4; i++, expect *= 2) {
        POLL_STEP(ctx, 1000, expect);
    }
    /* One long wait (> poll-max-ns) drops it straight to 0. */
    POLL_STEP(ctx, LONG_WAIT, 0);
    aiolab_set_before_wait_hook(NULL);
    return true;
}

static void test_poll_grow_shrink_default(void)
{
    retry_preempted(poll_grow_shrink_default_once);
}

static bool poll_grow_cap_and_shrink_once(void)
{
    AioContext *ctx = polling_setup(POLL_MAX, 3, 2);
    int64_t expect = 4000;

    /* 4 us, then x3 per wait that outlasted the polling, up to the cap. */
    while (expect < POLL_MAX) {
        POLL_STEP(ctx, 1000, expect);
        expect *= 3;
    }
    POLL_STEP(ctx, 1000, POLL_MAX);                         /* capped */
    POLL_STEP(ctx, LONG_WAIT, POLL_MAX / 2);
    POLL_STEP(ctx, LONG_WAIT, POLL_MAX / 4);
    /* Setting parameters resets the poll time. */
    aio_context_set_poll_params(ctx, POLL_MAX, 3, 2, &error_abort);
    ASSERT_EQ(aiolab_aio_context_get_poll_ns(ctx), 0);
    aiolab_set_before_wait_hook(NULL);
    return true;
}

static void test_poll_grow_cap_and_shrink(void)
{
    retry_preempted(poll_grow_cap_and_shrink_once);
}

static void test_poll_only_when_all_pollable(void)
{
    AioContext *ctx = polling_setup(POLL_MAX, 0, 0);
    EventNotifier other;
    int64_t t0, busy;

    /* Grow first. */
    blocking_poll_after(ctx, 1000);
    blocking_poll_after(ctx, 1000);
    ASSERT_EQ(aiolab_aio_context_get_poll_ns(ctx), 8000);
    /* A handler without io_poll: polling must stop (it cannot see that
     * fd), so a blocking poll goes straight to the fd monitor. */
    event_notifier_init(&other, false);
    aio_set_event_notifier(ctx, &other, poll_read, NULL, NULL);
    aiolab_set_before_wait_hook(NULL);
    event_notifier_set(&poll_e);
    t0 = now_ns();
    aio_poll(ctx, true);
    busy = now_ns() - t0;
    ASSERT_LT(busy, 1000 * SCALE_MS);
    aio_set_event_notifier(ctx, &other, NULL, NULL, NULL);
    event_notifier_cleanup(&other);
}

static void test_bad_poll_params(void)
{
    AioContext *ctx = aio_context_new(&error_abort);
    Error *err = NULL;
    int64_t max;

    aio_context_set_poll_params(ctx, 100, 0, 0, &error_abort);
    aio_context_set_poll_params(ctx, 5, -1, 0, &err);
    ASSERT_STR_EQ(error_get_pretty(err),
                  "poll-grow value must be in range [0, INT64_MAX]");
    error_free(err);
    aiolab_aio_context_get_poll_params(ctx, &max, NULL, NULL);
    ASSERT_EQ(max, 100);
    err = NULL;
    aio_context_set_thread_pool_params(ctx, 0, 0, &err);
    ASSERT_STR_EQ(error_get_pretty(err),
                  "bad thread-pool-min/thread-pool-max values");
    error_free(err);
    aio_context_unref(ctx);
}

/* --- timers armed from another thread -------------------------------- */

/*
 * Catalogue section 1.3: a timer_mod() that makes a timer the new head of
 * a list wakes the poll that sleeps on the old deadline, and timer_del()
 * from another thread is safe.  The IOThread's poll is blocking (polling
 * off); without the wake-up the 1 ms timer would fire only at the 10 s
 * deadline, after the wait below has failed the test.
 */
static int timer_fired;

static void timer_fired_cb(void *opaque)
{
    __atomic_fetch_add(&timer_fired, 1, __ATOMIC_SEQ_CST);
}

static void test_timer_from_other_thread(void)
{
    IOThread *it;
    QEMUTimer *far, *near;
    int64_t deadline;

    main_loop_setup();
    it = iothread_create("io0", &error_abort);
    iothread_set_poll_params(it, 0, 0, 0, &error_abort);
    far = aio_timer_new(iothread_get_aio_context(it), QEMU_CLOCK_REALTIME,
                        SCALE_MS, timer_fired_cb, NULL);
    near = aio_timer_new(iothread_get_aio_context(it), QEMU_CLOCK_REALTIME,
                         SCALE_MS, timer_fired_cb, NULL);
    timer_mod(far, qemu_clock_get_ms(QEMU_CLOCK_REALTIME) + 10000);
    usleep(50000);          /* let it sleep on the 10 s deadline */
    ASSERT_EQ(__atomic_load_n(&timer_fired, __ATOMIC_SEQ_CST), 0);

    /* A new head: the sleeping poll must recompute its timeout. */
    timer_mod(near, qemu_clock_get_ms(QEMU_CLOCK_REALTIME) + 1);
    deadline = now_ns() + (int64_t)5000 * SCALE_MS;
    while (__atomic_load_n(&timer_fired, __ATOMIC_SEQ_CST) == 0) {
        ASSERT_LT(now_ns(), deadline);
        usleep(1000);
    }
    ASSERT_EQ(__atomic_load_n(&timer_fired, __ATOMIC_SEQ_CST), 1);
    ASSERT_FALSE(timer_pending(near));
    ASSERT_TRUE(timer_pending(far));

    /* Deleted from here before it expires: it never runs, and a later
     * head (re-armed, then deleted again) leaves the list consistent. */
    timer_mod(near, qemu_clock_get_ms(QEMU_CLOCK_REALTIME) + 100);
    timer_del(near);
    ASSERT_FALSE(timer_pending(near));
    timer_del(far);
    ASSERT_FALSE(timer_pending(far));
    usleep(300000);         /* past the 100 ms the deleted timer had */
    ASSERT_EQ(__atomic_load_n(&timer_fired, __ATOMIC_SEQ_CST), 1);

    /* Deleting a timer that is not pending is a no-op; re-arming works. */
    timer_del(near);
    timer_mod(near, qemu_clock_get_ms(QEMU_CLOCK_REALTIME) + 1);
    deadline = now_ns() + (int64_t)5000 * SCALE_MS;
    while (__atomic_load_n(&timer_fired, __ATOMIC_SEQ_CST) == 1) {
        ASSERT_LT(now_ns(), deadline);
        usleep(1000);
    }
    ASSERT_EQ(__atomic_load_n(&timer_fired, __ATOMIC_SEQ_CST), 2);
    timer_free(far);
    timer_free(near);
    iothread_destroy(it);
}

/* --- lost wake-ups ------------------------------------------------------ */

/*
 * Round trips main -> IOThread: schedule a BH into a blocking IOThread
 * (polling off, so it really sleeps), which bumps a counter; wait for it.
 * Every schedule must wake the poller; a lost wake-up hangs (the case's
 * timeout catches it).  The count is checked exactly.
 */
static unsigned long pong;

static void pong_bh(void *opaque)
{
    __atomic_fetch_add(&pong, 1, __ATOMIC_SEQ_CST);
}

static void random_delay_hook(void *ctx)
{
    /* Widen the window between "announced" and "asleep". */
    static __thread unsigned seed = 1;
    int n = rand_r(&seed) % 2000;
    volatile int i;

    for (i = 0; i < n; i++) {
    }
}

static void run_round_trips(long n, bool use_notify, bool hook)
{
    IOThread *it;
    AioContext *ctx;
    QEMUBH *bh;
    long i;

    main_loop_setup();
    it = iothread_create("io0", &error_abort);
    iothread_set_poll_params(it, 0, 0, 0, &error_abort);
    ctx = iothread_get_aio_context(it);
    bh = aio_bh_new(ctx, pong_bh, NULL);
    if (hook) {
        aiolab_set_before_wait_hook(random_delay_hook);
    }
    bql_unlock();
    for (i = 1; i <= n; i++) {
        if (use_notify && (i & 1)) {
            /* a bare notify first: must not be lost or be progress */
            aio_notify(ctx);
        }
        qemu_bh_schedule(bh);
        while (__atomic_load_n(&pong, __ATOMIC_SEQ_CST) != (unsigned long)i) {
        }
    }
    ASSERT_EQ(__atomic_load_n(&pong, __ATOMIC_SEQ_CST), n);
    bql_lock();
    aiolab_set_before_wait_hook(NULL);
    qemu_bh_delete(bh);
    iothread_destroy(it);
}

static void test_lost_wakeup_stress(void)
{
    run_round_trips(harness_scale(100000), true, false);
}

static void test_lost_wakeup_stress_hook(void)
{
    run_round_trips(harness_scale(20000), false, true);
}

/*
 * The bug made visible: without the notify_me announcement, a BH scheduled
 * while the IOThread is between "compute timeout" and "sleep" is not
 * noticed until something else wakes it.  We expect a stall.
 */
static void nudge_read(EventNotifier *e)
{
    event_notifier_test_and_clear(e);
}

static void test_injected_bug_loses_wakeups(void)
{
    IOThread *it;
    AioContext *ctx;
    QEMUBH *bh;
    EventNotifier nudge;
    int64_t t0;
    long i, stalls = 0;

    main_loop_setup();
    it = iothread_create("io0", &error_abort);
    iothread_set_poll_params(it, 0, 0, 0, &error_abort);
    ctx = iothread_get_aio_context(it);
    bh = aio_bh_new(ctx, pong_bh, NULL);
    /* A real fd in its poll set: the only way to wake it when the
     * notify protocol is broken. */
    event_notifier_init(&nudge, false);
    aio_set_event_notifier(ctx, &nudge, nudge_read, NULL, NULL);
    ASSERT_TRUE(aiolab_test_inject_bug("skip-notify-me"));
    bql_unlock();
    for (i = 1; i <= 20 && stalls == 0; i++) {
        usleep(2000);           /* let it fall asleep */
        qemu_bh_schedule(bh);
        t0 = now_ns();
        while (__atomic_load_n(&pong, __ATOMIC_SEQ_CST) != (unsigned long)i) {
            if (now_ns() - t0 > 200 * SCALE_MS) {
                stalls++;       /* lost: nudge it through its own fd */
                event_notifier_set(&nudge);
                t0 = now_ns();
            }
        }
    }
    aiolab_test_inject_bug("none");
    ASSERT_GT(stalls, 0);
    /* It may be asleep unannounced: wake it once more, for the stop BH. */
    event_notifier_set(&nudge);
    bql_lock();
    aio_set_event_notifier(ctx, &nudge, NULL, NULL, NULL);
    qemu_bh_delete(bh);
    iothread_destroy(it);
}

static const TestCase tests[] = {
    { "/iothread/lifecycle", test_lifecycle },
    { "/iothread/stop-is-prompt", test_stop_is_prompt },
    { "/iothread/bad-values", test_bad_values },
    { "/aio-wait/from-main", test_wait_from_main },
    { "/aio-wait/in-own-iothread", test_wait_in_iothread_own_ctx },
    { "/aio-wait/bh-oneshot", test_wait_bh_oneshot },
    { "/aio-wait/death/across-iothreads", death_wait_across_iothreads,
      .death = "waits on context 'IO io1': only the main loop (BQL held) or "
               "the context's own thread may wait" },
    { "/bql/basics", test_bql_basics },
    { "/bql/per-thread-and-contention", test_bql_per_thread_and_contention },
    { "/bql/death/double-lock", death_bql_double_lock,
      .death = "bql_lock() called by thread 'main', which already holds" },
    { "/bql/death/unlock-unheld", death_bql_unlock_unheld,
      .death = "bql_unlock() called by thread 'main', which does not hold" },
    { "/iothread/death/create-without-bql", death_iothread_create_without_bql,
      .death = "iothread_create() requires the BQL (GLOBAL_STATE_CODE" },
    { "/aio/death/poll-wrong-thread", death_poll_wrong_thread,
      .death = "aio_poll() called outside the home thread of AioContext "
               "'IO io0'" },
    { "/poll/grow-shrink-default", test_poll_grow_shrink_default },
    { "/poll/grow-cap-and-shrink", test_poll_grow_cap_and_shrink },
    { "/poll/only-when-all-pollable", test_poll_only_when_all_pollable },
    { "/poll/bad-params", test_bad_poll_params },
    { "/aio/timer/from-other-thread", test_timer_from_other_thread },
    { "/notify/lost-wakeup-stress", test_lost_wakeup_stress, .timeout = 120 },
    { "/notify/lost-wakeup-stress-hook", test_lost_wakeup_stress_hook,
      .timeout = 120 },
    { "/notify/injected-bug-loses-wakeups", test_injected_bug_loses_wakeups,
      .timeout = 60 },
    { NULL }
};

int main(int argc, char **argv)
{
    return harness_main(argc, argv, tests);
}
