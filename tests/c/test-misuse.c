/* SPDX-License-Identifier: MIT */
/*
 * tests/c/test-misuse.c - death tests: every misuse the debug build
 * catches aborts with a message naming the function and the rule
 * (docs/aborts.md), and the always-on safety aborts (a leaked BH).
 * Also aiolab_dump_state(), which a learner uses when something hangs.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <aiolab/aiolab.h>
#include "harness.h"

static void cb(void *opaque)
{
}

static void death_bh_leaked(void)
{
    AioContext *ctx = aio_context_new(&error_abort);
    QEMUBH *bh = aio_bh_new(ctx, cb, NULL);

    (void)bh;
    aio_context_unref(ctx);     /* the BH was never deleted */
}

static void death_oneshot_never_ran(void)
{
    AioContext *ctx = aio_context_new(&error_abort);

    aio_bh_schedule_oneshot(ctx, cb, NULL);
    aio_context_unref(ctx);     /* it never ran: leaked too */
}

static void test_deleted_bh_is_no_leak(void)
{
    AioContext *ctx = aio_context_new(&error_abort);
    QEMUBH *bh = aio_bh_new(ctx, cb, NULL);

    qemu_bh_schedule(bh);
    qemu_bh_delete(bh);         /* freed by finalize, never run */
    aio_context_unref(ctx);
}

static void death_null_ctx(void)
{
    aio_poll(NULL, false);
}

static void death_destroyed_ctx(void)
{
    AioContext *ctx = aio_context_new(&error_abort);
    AioContext *ctx2;

    aio_context_ref(ctx);
    aio_context_unref(ctx);
    aio_context_unref(ctx);
    /* Use after the last unref: the magic is gone.  (Reads freed memory;
     * ASan reports that instead, so this case does not run under ASan.) */
    ctx2 = ctx;
    aio_notify(ctx2);
}

static void death_set_current_twice(void)
{
    AioContext *a = aio_context_new(&error_abort);
    AioContext *b = aio_context_new(&error_abort);

    qemu_set_current_aio_context(a);
    qemu_set_current_aio_context(b);
}

static void death_error_abort(void)
{
    error_setg(&error_abort, "the disk is on fire");
}

static void death_error_fatal(void)
{
    error_setg(&error_fatal, "the disk is on fire");
}

static void death_defer_call_end(void)
{
    defer_call_end();
}

static void death_notifier_uninitialised(void)
{
    EventNotifier e = { .rfd = -1, .wfd = -1, .initialized = false };

    event_notifier_set(&e);
}

static void death_bad_fd(void)
{
    AioContext *ctx = aio_context_new(&error_abort);

    aio_set_fd_handler(ctx, -1, cb, NULL, NULL, NULL, NULL);
}

static void death_bad_clock(void)
{
    qemu_clock_get_ns((QEMUClockType)7);
}

static IOThread *self_it;

static void stop_self_bh(void *opaque)
{
    iothread_stop(self_it);
}

static void death_iothread_stop_self(void)
{
    qemu_init_main_loop(&error_abort);
    bql_lock();
    self_it = iothread_create("io0", &error_abort);
    /* The IOThread has no BQL: the GLOBAL_STATE_CODE rule fires first. */
    aio_wait_bh_oneshot(iothread_get_aio_context(self_it), stop_self_bh,
                        NULL);
}

static void wait_bh_from_iothread(void *opaque)
{
    aio_wait_bh_oneshot(qemu_get_aio_context(), cb, NULL);
}

static void death_wait_bh_oneshot_from_iothread(void)
{
    IOThread *it;

    qemu_init_main_loop(&error_abort);
    bql_lock();
    it = iothread_create("io0", &error_abort);
    aio_wait_bh_oneshot(iothread_get_aio_context(it), wait_bh_from_iothread,
                        NULL);
}

static void wait_null_from_iothread(void *opaque)
{
    AIO_WAIT_WHILE(NULL, true);
}

static void death_wait_null_from_iothread(void)
{
    IOThread *it;

    qemu_init_main_loop(&error_abort);
    bql_lock();
    it = iothread_create("io0", &error_abort);
    aio_wait_bh_oneshot(iothread_get_aio_context(it), wait_null_from_iothread,
                        NULL);
}

static void death_submit_co_outside_coroutine(void)
{
    qemu_init_main_loop(&error_abort);
    thread_pool_submit_co((ThreadPoolFunc *)(void *)cb, NULL);
}

static void death_negative_max_batch(void)
{
    AioContext *ctx = aio_context_new(&error_abort);

    aio_context_set_aio_params(ctx, -1);
}

static void death_embed_wrong_thread(void)
{
    IOThread *it;

    qemu_init_main_loop(&error_abort);
    bql_lock();
    it = iothread_create("io0", &error_abort);
    aio_context_prepare(iothread_get_aio_context(it));
}

/* --- more misuse, one case per abort message ------------------------- */

static void death_notifier_handler_uninitialised(void)
{
    AioContext *ctx = aio_context_new(&error_abort);
    EventNotifier e = { .rfd = -1, .wfd = -1, .initialized = false };

    qemu_set_current_aio_context(ctx);
    aio_set_event_notifier(ctx, &e, NULL, NULL, NULL);
}

static void death_notifier_init_bad_fd(void)
{
    EventNotifier e;

    event_notifier_init_fd(&e, -1);
}

static void death_notifier_test_uninitialised(void)
{
    EventNotifier e;

    event_notifier_init(&e, false);
    event_notifier_cleanup(&e);
    event_notifier_test_and_clear(&e);
}

static AioContext *co_ctx;

static void coroutine_fn poll_in_coroutine(void *opaque)
{
    aio_poll(co_ctx, false);
}

static void death_poll_in_coroutine(void)
{
    co_ctx = aio_context_new(&error_abort);
    qemu_set_current_aio_context(co_ctx);
    qemu_coroutine_enter(qemu_coroutine_create(poll_in_coroutine, NULL));
}

static void coroutine_fn co_nothing(void *opaque)
{
}

static void death_co_wake_never_ran(void)
{
    co_ctx = aio_context_new(&error_abort);
    qemu_set_current_aio_context(co_ctx);
    aio_co_wake(qemu_coroutine_create(co_nothing, NULL));
}

static void coroutine_fn enter_self(void *opaque)
{
    aio_co_enter(co_ctx, qemu_coroutine_self());
}

static void death_co_enter_self(void)
{
    co_ctx = aio_context_new(&error_abort);
    qemu_set_current_aio_context(co_ctx);
    qemu_coroutine_enter(qemu_coroutine_create(enter_self, NULL));
}

static void death_reschedule_self_outside(void)
{
    co_ctx = aio_context_new(&error_abort);
    qemu_set_current_aio_context(co_ctx);
    aio_co_reschedule_self(co_ctx);
}

static void death_ctx_freed_with_scheduled_coroutine(void)
{
    AioContext *ctx = aio_context_new(&error_abort);

    aio_co_schedule(ctx, qemu_coroutine_create(co_nothing, NULL));
    aio_context_unref(ctx);     /* the coroutine never ran */
}

static void unref_ctx_bh(void *opaque)
{
    aio_context_unref(opaque);
}

static void death_ctx_freed_in_its_bh(void)
{
    AioContext *ctx = aio_context_new(&error_abort);

    qemu_set_current_aio_context(ctx);
    aio_bh_schedule_oneshot(ctx, unref_ctx_bh, ctx);
    aio_poll(ctx, false);
}

static void *take_bql_thread(void *opaque)
{
    bql_lock();
    bql_unlock();
    return NULL;
}

static void death_main_poll_while_others_take_bql(void)
{
    pthread_t th;

    qemu_init_main_loop(&error_abort);
    pthread_create(&th, NULL, take_bql_thread, NULL);
    pthread_join(th, NULL);
    aio_poll(qemu_get_aio_context(), false);    /* without the BQL */
}

static void stop_self_with_bql_bh(void *opaque)
{
    bql_lock();
    iothread_stop(self_it);
}

static void death_iothread_stop_self_with_bql(void)
{
    qemu_init_main_loop(&error_abort);
    bql_lock();
    self_it = iothread_create("io0", &error_abort);
    aio_bh_schedule_oneshot(iothread_get_aio_context(self_it),
                            stop_self_with_bql_bh, NULL);
    bql_unlock();               /* the BH takes it */
    pause();
}

static void death_bad_clock_enable(void)
{
    qemu_clock_enable((QEMUClockType)9, true);
}

static void death_bad_timer_scale(void)
{
    AioContext *ctx = aio_context_new(&error_abort);

    aio_timer_new(ctx, QEMU_CLOCK_REALTIME, 0, cb, NULL);
}

static void death_error_set_twice(void)
{
    Error *err = NULL;

    error_setg(&err, "first");
    error_setg(&err, "second");
}

static void death_bh_new_without_main_loop(void)
{
    qemu_bh_new(cb, NULL);
}

static void death_fd_handler_without_main_loop(void)
{
    qemu_set_fd_handler(0, NULL, NULL, NULL);
}

static int slow_work(void *opaque)
{
    usleep(500000);
    return 0;
}

static void done_cb(void *opaque, int ret)
{
}

static void death_pool_freed_with_work(void)
{
    AioContext *ctx = aio_context_new(&error_abort);

    qemu_set_current_aio_context(ctx);
    thread_pool_submit_aio(slow_work, NULL, done_cb, NULL);
    aio_context_unref(ctx);     /* the request has not completed */
}

/* --- aiolab_dump_state -------------------------------------------------- */

static void named_bh_cb(void *opaque)
{
}

static void test_dump_state(void)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f;
    QEMUBH *bh;
    IOThread *it;

    qemu_init_main_loop(&error_abort);
    bql_lock();
    it = iothread_create("io7", &error_abort);
    bh = qemu_bh_new(named_bh_cb, NULL);
    qemu_bh_schedule(bh);
    f = open_memstream(&buf, &len);
    aiolab_dump_state(f);
    fclose(f);
    ASSERT_STR_CONTAINS(buf, "=== aiolab state");
    ASSERT_STR_CONTAINS(buf, "BQL: held by tid");
    ASSERT_STR_CONTAINS(buf, "AioContext 'main'");
    ASSERT_STR_CONTAINS(buf, "AioContext 'IO io7'");
    ASSERT_STR_CONTAINS(buf, "BH 'named_bh_cb' scheduled");
    ASSERT_STR_CONTAINS(buf, "IO io7");
    free(buf);
    qemu_bh_delete(bh);
    iothread_destroy(it);
}

static void test_sigquit_dumps(void)
{
    qemu_init_main_loop(&error_abort);
    /* Death-test style: stderr is captured by the harness below. */
    raise(SIGQUIT);
    abort();
}

static const TestCase tests[] = {
    { "/misuse/bh-leaked", death_bh_leaked,
      .death = "BH 'cb' leaked, aborting" },
    { "/misuse/oneshot-never-ran", death_oneshot_never_ran,
      .death = "BH 'cb' leaked, aborting" },
    { "/misuse/deleted-bh-is-no-leak", test_deleted_bh_is_no_leak },
    { "/misuse/null-ctx", death_null_ctx,
      .death = "aiolab: aio_poll() got NULL for 'ctx'" },
    { "/misuse/destroyed-ctx", death_destroyed_ctx,
      .death = "aio_notify() got a destroyed or invalid AioContext",
      .no_asan = "ASan reports the use after free itself",
      .no_tsan = "TSan reports the use after free itself" },
    { "/misuse/set-current-twice", death_set_current_twice,
      .death = "qemu_set_current_aio_context() called twice in one thread" },
    { "/misuse/error-abort", death_error_abort,
      .death = "unexpected error: the disk is on fire" },
    { "/misuse/error-fatal", death_error_fatal,
      .death = "aiolab: the disk is on fire" },
    { "/misuse/defer-call-end", death_defer_call_end,
      .death = "defer_call_end() without a matching defer_call_begin()" },
    { "/misuse/notifier-uninitialised", death_notifier_uninitialised,
      .death = "event_notifier_set() on an EventNotifier that is not "
               "initialised" },
    { "/misuse/bad-fd", death_bad_fd,
      .death = "aio_set_fd_handler() got an invalid fd -1" },
    { "/misuse/bad-clock", death_bad_clock,
      .death = "qemu_clock_get_ns() got an invalid clock type 7" },
    { "/misuse/iothread-stop-self", death_iothread_stop_self,
      .death = "iothread_stop() requires the BQL" },
    { "/misuse/wait-bh-oneshot-from-iothread",
      death_wait_bh_oneshot_from_iothread,
      .death = "aio_wait_bh_oneshot() must be called from the main loop" },
    { "/misuse/wait-null-from-iothread", death_wait_null_from_iothread,
      .death = "waits on context '(NULL)': only the main loop" },
    { "/misuse/submit-co-outside-coroutine",
      death_submit_co_outside_coroutine,
      .death = "thread_pool_submit_co() must be called from coroutine "
               "context" },
    { "/misuse/negative-max-batch", death_negative_max_batch,
      .death = "aio_context_set_aio_params() got a negative max_batch" },
    { "/misuse/embed-wrong-thread", death_embed_wrong_thread,
      .death = "aio_context_prepare() called outside the home thread" },
    { "/misuse/notifier-handler-uninitialised",
      death_notifier_handler_uninitialised,
      .death = "aio_set_event_notifier() got an EventNotifier that is not "
               "initialised" },
    { "/misuse/notifier-init-bad-fd", death_notifier_init_bad_fd,
      .death = "event_notifier_init_fd() got an invalid fd -1" },
    { "/misuse/notifier-test-after-cleanup", death_notifier_test_uninitialised,
      .death = "event_notifier_test_and_clear() on an EventNotifier that is "
               "not initialised" },
    { "/misuse/poll-in-coroutine", death_poll_in_coroutine,
      .death = "aio_poll() must not be called from a coroutine" },
    { "/misuse/co-wake-never-ran", death_co_wake_never_ran,
      .death = "aio_co_wake() got a coroutine that has never run" },
    { "/misuse/co-enter-self", death_co_enter_self,
      .death = "aio_co_enter() cannot enter the calling coroutine itself" },
    { "/misuse/reschedule-self-outside-coroutine",
      death_reschedule_self_outside,
      .death = "aio_co_reschedule_self() must be called from coroutine "
               "context" },
    { "/misuse/ctx-freed-with-scheduled-coroutine",
      death_ctx_freed_with_scheduled_coroutine,
      .death = "freed with coroutines still scheduled into it" },
    { "/misuse/ctx-freed-in-its-bh", death_ctx_freed_in_its_bh,
      .death = "freed while aio_bh_poll() runs" },
    { "/misuse/main-poll-while-others-take-bql",
      death_main_poll_while_others_take_bql,
      .death = "aio_poll() polls the main context without the BQL while "
               "other threads take it" },
    { "/misuse/iothread-stop-self-with-bql", death_iothread_stop_self_with_bql,
      .death = "iothread_stop() called from IOThread 'io0' itself" },
    { "/misuse/bad-clock-enable", death_bad_clock_enable,
      .death = "qemu_clock_enable() got an invalid clock type 9" },
    { "/misuse/bad-timer-scale", death_bad_timer_scale,
      .death = "got an invalid scale 0" },
    { "/misuse/error-set-twice", death_error_set_twice,
      .death = "overwrites an error already set: 'first'" },
    { "/misuse/bh-new-without-main-loop", death_bh_new_without_main_loop,
      .death = "needs the main loop: call qemu_init_main_loop() first" },
    { "/misuse/fd-handler-without-main-loop",
      death_fd_handler_without_main_loop,
      .death = "qemu_set_fd_handler() needs the main loop" },
    { "/misuse/pool-freed-with-work", death_pool_freed_with_work,
      .death = "freed with requests outstanding" },
    { "/debug/dump-state", test_dump_state },
    { "/debug/sigquit-dumps", test_sigquit_dumps,
      .death = "=== end of aiolab state ===" },
    { NULL }
};

int main(int argc, char **argv)
{
    return harness_main(argc, argv, tests);
}
