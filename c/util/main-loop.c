/* SPDX-License-Identifier: MIT */
/*
 * util/main-loop.c - the main loop: two AioContexts and a timer group,
 * waited on together, with the BQL dropped only while sleeping.
 *
 *   main_loop_wait():
 *     prepare(main ctx), prepare(iohandler ctx)  announce; get timeouts
 *     timeout = min(those, main-loop timers)
 *     bql_unlock(); ppoll(both contexts' fds); bql_lock()
 *     check+dispatch(main ctx), check+dispatch(iohandler ctx)
 *     run main-loop timers
 *
 * Where QEMU differs: QEMU hands both contexts to GLib as GSources and
 * lets g_main_context_prepare/query/check/dispatch do this; aiolab calls
 * the same prepare/check/dispatch steps itself (no GLib in the core).
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>
#include <aiolab/aiolab.h>
#include "util/aio-internal.h"
#include "util/check.h"
#include "util/thread.h"
#include "util/trace-internal.h"

static AioContext *qemu_aio_context;
static AioContext *iohandler_ctx;
static QEMUBH *qemu_notify_bh;
QEMUTimerListGroup main_loop_tlg;
extern int aiolab_main_loop_tid;          /* bql.c */

AioContext *qemu_get_aio_context(void)
{
    return qatomic_load_acquire(&qemu_aio_context);
}

AioContext *iohandler_get_aio_context(void)
{
    return qatomic_load_acquire(&iohandler_ctx);
}

static void notify_event_cb(void *opaque)
{
    /* Nothing: running at all wakes the main loop. */
}

static void main_loop_timer_notify(void *opaque, QEMUClockType type)
{
    qemu_notify_event();
}

int qemu_init_main_loop(Error **errp)
{
    static pthread_mutex_t init_lock = PTHREAD_MUTEX_INITIALIZER;
    AioContext *ctx, *ioh;
    int ret = 0;

    pthread_mutex_lock(&init_lock);
    if (qemu_get_aio_context()) {
        goto out;
    }
    init_clocks();
    /* Both contexts first: a failure leaves this thread as it was. */
    /*
     * On epoll from the start: main_loop_wait() sleeps on their epoll fds.
     * (Created on io_uring and switched, their rings' teardown would
     * interrupt the next wait: a spurious wake-up.)
     */
    ctx = aio_context_new_fdmon("epoll", errp);
    ioh = ctx ? aio_context_new_fdmon("epoll", errp) : NULL;
    if (!ioh) {
        if (ctx) {
            aio_context_unref(ctx);
        }
        ret = -EMFILE;          /* QEMU's answer, whatever the cause */
        goto out;
    }
    aiolab_aio_context_set_name(ctx, "main");
    aiolab_aio_context_set_name(ioh, "iohandler");
    qemu_set_current_aio_context(ctx);
    qatomic_set(&aiolab_main_loop_tid, aiolab_gettid());
    snprintf(aiolab_thread_self()->name, sizeof(aiolab_thread_self()->name),
             "main");
    timerlistgroup_init(&main_loop_tlg, main_loop_timer_notify, NULL);
    qatomic_store_release(&qemu_aio_context, ctx);
    qatomic_store_release(&iohandler_ctx, ioh);
    qemu_notify_bh = qemu_bh_new(notify_event_cb, NULL);
    /* main_loop_wait() sleeps on one fd per context: their epoll fds. */
    aio_context_use_embedded_mode(ctx);
    aio_context_use_embedded_mode(ioh);
    aiolab_install_sigquit_handler();
out:
    pthread_mutex_unlock(&init_lock);
    return ret;
}

QEMUBH *qemu_bh_new_full(QEMUBHFunc *cb, void *opaque, const char *name,
                         MemReentrancyGuard *guard)
{
    AIOLAB_REQUIRE(qemu_get_aio_context(), "needs the main loop: call "
                   "qemu_init_main_loop() first");
    return aio_bh_new_full(qemu_get_aio_context(), cb, opaque, name, guard);
}

QEMUBH *(qemu_bh_new)(QEMUBHFunc *cb, void *opaque)
{
    return qemu_bh_new_full(cb, opaque, "qemu_bh_new", NULL);
}

QEMUBH *(qemu_bh_new_guarded)(QEMUBHFunc *cb, void *opaque,
                              MemReentrancyGuard *guard)
{
    return qemu_bh_new_full(cb, opaque, "qemu_bh_new_guarded", guard);
}

void qemu_set_fd_handler(int fd, IOHandler *fd_read, IOHandler *fd_write,
                         void *opaque)
{
    AIOLAB_REQUIRE(iohandler_get_aio_context(), "needs the main loop: call "
                   "qemu_init_main_loop() first");
    aio_set_fd_handler(iohandler_get_aio_context(), fd, fd_read, fd_write,
                       NULL, NULL, opaque);
}

void qemu_notify_event(void)
{
    if (qemu_notify_bh) {
        qemu_bh_schedule(qemu_notify_bh);
    }
}

bool qemu_in_iothread(void)
{
    return qemu_get_current_aio_context() != qemu_get_aio_context();
}

void main_loop_wait(int nonblocking)
{
    AioContext *ctx = qemu_get_aio_context();
    AioContext *ioh = iohandler_get_aio_context();
    struct pollfd pfd[2];
    struct timespec ts, *tsp = NULL;
    int64_t timeout;

    AIOLAB_REQUIRE(ctx, "needs the main loop: call qemu_init_main_loop() "
                   "first");
    AIOLAB_REQUIRE(aiolab_gettid() == qatomic_read(&aiolab_main_loop_tid),
                   "must run in the main-loop thread " RULE_GS);
    AIOLAB_REQUIRE(bql_locked(), "requires the BQL " RULE_GS);

    trace_begin(TE_MAIN_LOOP_WAIT, NULL, nonblocking);
    timeout = aio_context_prepare(ctx);
    timeout = qemu_soonest_timeout(timeout, aio_context_prepare(ioh));
    timeout = qemu_soonest_timeout(timeout,
                                   timerlistgroup_deadline_ns(&main_loop_tlg));
    if (nonblocking) {
        timeout = 0;
    }
    if (timeout != 0) {
        pfd[0] = (struct pollfd){ .fd = aio_context_get_fd(ctx),
                                  .events = POLLIN };
        pfd[1] = (struct pollfd){ .fd = aio_context_get_fd(ioh),
                                  .events = POLLIN };
        if (timeout > 0) {
            ts.tv_sec = timeout / 1000000000LL;
            ts.tv_nsec = timeout % 1000000000LL;
            tsp = &ts;
        }
        /* The one place the main loop lets other threads take the BQL. */
        bql_unlock();
        trace_begin(TE_FDMON_WAIT, "main", timeout);
        ppoll(pfd, 2, tsp, NULL);
        trace_end(TE_FDMON_WAIT, "main", timeout);
        bql_lock();
    }
    if (aio_context_check(ctx)) {
        aio_context_dispatch(ctx);
    }
    if (aio_context_check(ioh)) {
        aio_context_dispatch(ioh);
    }
    timerlistgroup_run_timers(&main_loop_tlg);
    trace_end(TE_MAIN_LOOP_WAIT, NULL, 0);
}
