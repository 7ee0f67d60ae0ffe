/* SPDX-License-Identifier: MIT */
/*
 * util/aio-posix.c - fd handlers, adaptive polling and aio_poll().
 *
 * aio_poll(ctx, blocking), step by step (QEMU 9.0's order):
 *
 *   1  check the caller is the home thread; become a list walker
 *   2  timeout = blocking ? aio_compute_timeout() : 0
 *   3  busy-poll the pollable handlers for up to poll_ns (adaptive), if
 *      every handler is pollable and there is time to spend
 *   4  if about to sleep: notify_me += 2, then re-check notified
 *   5  stop busy-polling (io_poll_end + one last io_poll), then sleep in
 *      the fd monitor (poll/epoll/io_uring) until an fd is ready, the
 *      timeout passes, or aio_notify() writes the notifier
 *   6  notify_me -= 2; accept the notification (notified = false)
 *   7  adjust poll_ns from how long we blocked
 *   8  run BHs, then ready handlers, then free deleted handlers
 *   9  run expired timers
 *
 * The lost-wake-up argument (steps 4 and 6, and aio_notify()):
 *
 *   poller                          notifier (any thread)
 *   notify_me += 2      (RMW)       publish work (BH flags, RMW)
 *   read notified       (seq_cst)   notified = true         (xchg)
 *   sleep unless set                read notify_me (seq_cst): if set,
 *                                   write the eventfd
 *
 * All four are sequentially consistent, so at least one side sees the
 * other: either the poller sees notified and does not sleep, or the
 * notifier sees notify_me and writes the eventfd the poller sleeps on.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <aiolab/aiolab.h>
#include "util/aio-internal.h"
#include "util/check.h"
#include "util/thread.h"
#include "util/trace-internal.h"
#include "util/mem.h"

/* A handler busy-polled without success for this long stops being polled
 * (io_uring only: poll and epoll cannot see fd events in userspace). */
#define POLL_IDLE_INTERVAL_NS (7 * 1000000000LL)

extern int aiolab_inject_skip_notify_me;        /* async.c */
static AiolabBeforeWaitHook *before_wait_hook;

void aiolab_set_before_wait_hook(AiolabBeforeWaitHook *hook)
{
    qatomic_store_release(&before_wait_hook, hook);
}

bool aio_handler_is_deleted(AioHandler *node)
{
    return qatomic_load_acquire(&node->deleted);
}

bool aio_poll_disabled(AioContext *ctx)
{
    return qatomic_read(&ctx->poll_disable_cnt);
}

static int64_t now_ns(void)
{
    return qemu_clock_get_ns(QEMU_CLOCK_REALTIME);
}

void aio_add_ready_handler(AioHandlerList *ready_list, AioHandler *node,
                           int revents)
{
    /* A nested aio_poll() takes the node from its parent's list. */
    QLIST_SAFE_REMOVE(node, node_ready);
    node->pfd.revents = revents;
    QLIST_INSERT_HEAD(ready_list, node, node_ready);
}

static void aio_add_poll_ready_handler(AioHandlerList *ready_list,
                                       AioHandler *node)
{
    QLIST_SAFE_REMOVE(node, node_ready);
    node->poll_ready = true;
    QLIST_INSERT_HEAD(ready_list, node, node_ready);
}

/* --- registering handlers ----------------------------------------- */

/* list_lock's mutex held. */
static AioHandler *find_aio_handler(AioContext *ctx, int fd)
{
    AioHandler *node;

    QLIST_FOREACH(node, &ctx->aio_handlers, node) {
        if (node->pfd.fd == fd && !aio_handler_is_deleted(node)) {
            return node;
        }
    }
    return NULL;
}

/*
 * Take @node out of service.  list_lock's mutex held.  If somebody walks
 * the list, only mark it deleted: the last walker frees it.
 * Returns: true if the caller must free it now.
 */
static bool aio_remove_fd_handler(AioContext *ctx, AioHandler *node)
{
    if (aio_handler_is_deleted(node)) {
        return false;
    }
    if (qemu_lockcnt_count(&ctx->list_lock)) {
        /* The home thread peeks at this list without the mutex. */
        QLIST_INSERT_HEAD_RCU(&ctx->deleted_aio_handlers, node, node_deleted);
        /* Pairs with the acquire in aio_handler_is_deleted(). */
        qatomic_store_release(&node->deleted, true);
        return false;
    }
    /* Nobody walks, and nobody can start: unlink for real. */
    QLIST_SAFE_REMOVE(node, node_poll);
    QLIST_SAFE_REMOVE(node, node_ready);
    QLIST_REMOVE(node, node);
    return true;
}

void aio_set_fd_handler(AioContext *ctx, int fd, IOHandler *io_read,
                        IOHandler *io_write, AioPollFn *io_poll,
                        IOHandler *io_poll_ready, void *opaque)
{
    AioHandler *node, *new_node = NULL;
    bool deleted = false;
    int poll_disable_change;

    REQUIRE_LIVE(ctx, AIO_CONTEXT_MAGIC, "AioContext");
    AIOLAB_REQUIRE(fd >= 0, "got an invalid fd %d", fd);
    if (io_poll && !io_poll_ready) {
        io_poll = NULL;     /* polling needs somewhere to report */
    }

    qemu_lockcnt_lock(&ctx->list_lock);
    node = find_aio_handler(ctx, fd);
    if (!io_read && !io_write && !io_poll) {
        if (!node) {
            qemu_lockcnt_unlock(&ctx->list_lock);
            return;                     /* removing nothing is fine */
        }
        poll_disable_change = node->io_poll ? 0 : -1;
    } else {
        poll_disable_change = !io_poll - (node && !node->io_poll);
        /* Replace rather than modify: a walker may be using @node. */
        new_node = aiolab_xcalloc(1, sizeof(*new_node));
        new_node->io_read = io_read;
        new_node->io_write = io_write;
        new_node->io_poll = io_poll;
        new_node->io_poll_ready = io_poll_ready;
        new_node->opaque = opaque;
        new_node->pfd.fd = fd;
        new_node->pfd.events = (io_read ? POLLIN | POLLHUP | POLLERR : 0) |
                               (io_write ? POLLOUT | POLLERR : 0);
        QLIST_INSERT_HEAD_RCU(&ctx->aio_handlers, new_node, node);
    }
    /* Only an optimisation hint: a stale value costs a little polling. */
    qatomic_set(&ctx->poll_disable_cnt,
                qatomic_read(&ctx->poll_disable_cnt) + poll_disable_change);
    ctx->fdmon_ops->update(ctx, node, new_node);
    if (node) {
        deleted = aio_remove_fd_handler(ctx, node);
    }
    qemu_lockcnt_unlock(&ctx->list_lock);
    /* A sleeping poller must see the new set of fds. */
    aio_notify(ctx);
    if (deleted) {
        free(node);
    }
}

void aio_set_event_notifier(AioContext *ctx, EventNotifier *e,
                            EventNotifierHandler *io_read, AioPollFn *io_poll,
                            EventNotifierHandler *io_poll_ready)
{
    REQUIRE_NONNULL(e);
    AIOLAB_REQUIRE(e->initialized, "got an EventNotifier that is not "
                   "initialised");
    aio_set_fd_handler(ctx, event_notifier_get_fd(e), (IOHandler *)io_read,
                       NULL, io_poll, (IOHandler *)io_poll_ready, e);
}

void aio_set_event_notifier_poll(AioContext *ctx, EventNotifier *e,
                                 EventNotifierHandler *io_poll_begin,
                                 EventNotifierHandler *io_poll_end)
{
    AioHandler *node;

    REQUIRE_LIVE(ctx, AIO_CONTEXT_MAGIC, "AioContext");
    REQUIRE_NONNULL(e);
    qemu_lockcnt_lock(&ctx->list_lock);
    node = find_aio_handler(ctx, event_notifier_get_fd(e));
    if (node) {
        /* Written before the home thread can read them: it only calls
         * them for handlers on the poll list, which it joins later. */
        qatomic_set(&node->io_poll_begin, (IOHandler *)io_poll_begin);
        qatomic_set(&node->io_poll_end, (IOHandler *)io_poll_end);
    }
    qemu_lockcnt_unlock(&ctx->list_lock);
}

/* --- busy polling ------------------------------------------------- */

/*
 * Start or stop polling mode: tell every polled handler (virtio turns
 * guest notifications off while polled, and back on after).  When
 * stopping, check each handler once more: an event may have arrived
 * between its last io_poll and io_poll_end.
 * Returns: true if that last check found work.
 */
static bool poll_set_started(AioContext *ctx, AioHandlerList *ready_list,
                             bool started)
{
    AioHandler *node;
    bool progress = false;

    if (started == ctx->poll_started) {
        return false;
    }
    ctx->poll_started = started;
    qemu_lockcnt_inc(&ctx->list_lock);
    QLIST_FOREACH(node, &ctx->poll_aio_handlers, node_poll) {
        IOHandler *fn;

        if (aio_handler_is_deleted(node)) {
            continue;
        }
        fn = qatomic_read(started ? &node->io_poll_begin : &node->io_poll_end);
        if (fn) {
            fn(node->opaque);
        }
        if (!started && node->io_poll(node->opaque)) {
            aio_add_poll_ready_handler(ready_list, node);
            progress = true;
        }
    }
    qemu_lockcnt_dec(&ctx->list_lock);
    return progress;
}

static bool run_poll_handlers_once(AioContext *ctx, AioHandlerList *ready_list,
                                   int64_t now, int64_t *timeout)
{
    AioHandler *node;
    bool progress = false;

    QLIST_FOREACH(node, &ctx->poll_aio_handlers, node_poll) {
        if (!aio_handler_is_deleted(node) && node->io_poll(node->opaque)) {
            aio_add_poll_ready_handler(ready_list, node);
            node->poll_idle_timeout = now + POLL_IDLE_INTERVAL_NS;
            /* Found something: stop polling and go dispatch it. */
            *timeout = 0;
            if (node->opaque != &ctx->notifier) {
                progress = true;
            }
        }
        /* Deleted nodes are freed by aio_free_deleted_handlers(). */
    }
    return progress;
}

static bool fdmon_supports_polling(AioContext *ctx)
{
    /* poll/epoll need a system call to see an fd: an idle poll handler
     * must keep being polled or its fd would starve. */
    return strcmp(ctx->fdmon_ops->name, "io_uring") == 0;
}

static bool remove_idle_poll_handlers(AioContext *ctx,
                                      AioHandlerList *ready_list, int64_t now)
{
    AioHandler *node, *tmp;
    bool progress = false;

    if (!fdmon_supports_polling(ctx)) {
        return false;
    }
    QLIST_FOREACH_SAFE(node, &ctx->poll_aio_handlers, node_poll, tmp) {
        if (node->poll_idle_timeout == 0) {
            node->poll_idle_timeout = now + POLL_IDLE_INTERVAL_NS;
        } else if (now >= node->poll_idle_timeout) {
            node->poll_idle_timeout = 0;
            QLIST_SAFE_REMOVE(node, node_poll);
            if (ctx->poll_started) {
                IOHandler *end = qatomic_read(&node->io_poll_end);
                if (end) {
                    end(node->opaque);
                }
                if (node->io_poll(node->opaque)) {
                    aio_add_poll_ready_handler(ready_list, node);
                    progress = true;
                }
            }
        }
    }
    return progress;
}

/*
 * Busy-poll for up to @max_ns.  If nothing is found, *timeout shrinks by
 * the time spent, so the overall deadline is kept.
 */
static bool run_poll_handlers(AioContext *ctx, AioHandlerList *ready_list,
                              int64_t max_ns, int64_t *timeout)
{
    bool progress;
    int64_t start_time, elapsed_time;

    trace_begin(TE_RUN_POLL_HANDLERS, qatomic_read(&ctx->name), max_ns);
    start_time = now_ns();
    do {
        progress = run_poll_handlers_once(ctx, ready_list, start_time,
                                          timeout);
        elapsed_time = now_ns() - start_time;
        max_ns = qemu_soonest_timeout(*timeout, max_ns);
    } while (elapsed_time < max_ns && !ctx->fdmon_ops->need_wait(ctx));

    if (remove_idle_poll_handlers(ctx, ready_list,
                                  start_time + elapsed_time)) {
        *timeout = 0;
        progress = true;
    }
    if (*timeout != -1) {
        *timeout -= MIN(*timeout, elapsed_time);
    }
    trace_end(TE_RUN_POLL_HANDLERS, qatomic_read(&ctx->name), progress);
    return progress;
}

static bool try_poll_mode(AioContext *ctx, AioHandlerList *ready_list,
                          int64_t *timeout)
{
    int64_t max_ns;

    if (QLIST_EMPTY(&ctx->poll_aio_handlers)) {
        return false;
    }
    max_ns = qemu_soonest_timeout(*timeout, qatomic_read(&ctx->poll_ns));
    if (max_ns && !ctx->fdmon_ops->need_wait(ctx)) {
        poll_set_started(ctx, ready_list, true);
        if (run_poll_handlers(ctx, ready_list, max_ns, timeout)) {
            return true;
        }
    }
    return false;
}

/*
 * Grow poll_ns when we blocked for less than poll_max_ns (polling a bit
 * longer would have caught the event without sleeping); drop it when we
 * blocked longer (polling was wasted CPU).
 *
 *   block_ns <= poll_ns            keep        (the sweet spot)
 *   block_ns >  poll_max_ns        shrink      (÷shrink, or to 0)
 *   block_ns <  poll_max_ns        grow        (×grow, from 4000 ns)
 */
static void adjust_polling_time(AioContext *ctx, int64_t block_ns)
{
    int64_t poll_ns = qatomic_read(&ctx->poll_ns);
    int64_t max_ns = qatomic_read(&ctx->poll_max_ns);

    if (block_ns <= poll_ns) {
        return;
    }
    if (block_ns > max_ns) {
        int64_t shrink = qatomic_read(&ctx->poll_shrink);
        int64_t old = poll_ns;

        poll_ns = shrink ? poll_ns / shrink : 0;
        if (poll_ns != old) {
            qatomic_set(&ctx->poll_ns, poll_ns);
            trace_instant(TE_POLL_SHRINK, qatomic_read(&ctx->name), poll_ns);
        }
    } else if (poll_ns < max_ns && block_ns < max_ns) {
        int64_t grow = qatomic_read(&ctx->poll_grow);

        if (grow == 0) {
            grow = 2;
        }
        poll_ns = poll_ns ? poll_ns * grow : 4000;
        if (poll_ns > max_ns) {
            poll_ns = max_ns;
        }
        qatomic_set(&ctx->poll_ns, poll_ns);
        trace_instant(TE_POLL_GROW, qatomic_read(&ctx->name), poll_ns);
    }
}

/* --- dispatch ----------------------------------------------------- */

static bool aio_dispatch_handler(AioContext *ctx, AioHandler *node)
{
    bool progress = false;
    bool poll_ready;
    int revents;

    revents = node->pfd.revents & node->pfd.events;
    node->pfd.revents = 0;
    poll_ready = node->poll_ready;
    node->poll_ready = false;

    /* A pollable handler joins polling the first time it fires. */
    if (!aio_handler_is_deleted(node) && !QLIST_IS_INSERTED(node, node_poll) &&
        node->io_poll) {
        IOHandler *begin = qatomic_read(&node->io_poll_begin);
        if (ctx->poll_started && begin) {
            begin(node->opaque);
        }
        QLIST_INSERT_HEAD(&ctx->poll_aio_handlers, node, node_poll);
    }

    trace_begin(TE_DISPATCH_HANDLER, qatomic_read(&ctx->name), node->pfd.fd);
    if (!aio_handler_is_deleted(node) && poll_ready && revents == 0 &&
        node->io_poll_ready) {
        /*
         * Off the poll list while it runs: if it calls aio_poll() before
         * clearing its condition, the nested poll must not find it ready
         * again and recurse forever.
         */
        QLIST_SAFE_REMOVE(node, node_poll);
        node->io_poll_ready(node->opaque);
        if (!QLIST_IS_INSERTED(node, node_poll)) {
            QLIST_INSERT_HEAD(&ctx->poll_aio_handlers, node, node_poll);
        }
        trace_end(TE_DISPATCH_HANDLER, qatomic_read(&ctx->name), node->pfd.fd);
        return node->opaque != &ctx->notifier;
    }
    if (!aio_handler_is_deleted(node) &&
        (revents & (POLLIN | POLLHUP | POLLERR)) && node->io_read) {
        node->io_read(node->opaque);
        /* The notifier only wakes us: not progress. */
        if (node->opaque != &ctx->notifier) {
            progress = true;
        }
    }
    if (!aio_handler_is_deleted(node) && (revents & (POLLOUT | POLLERR)) &&
        node->io_write) {
        node->io_write(node->opaque);
        progress = true;
    }
    trace_end(TE_DISPATCH_HANDLER, qatomic_read(&ctx->name), node->pfd.fd);
    return progress;
}

bool aio_dispatch_ready_handlers(AioContext *ctx, AioHandlerList *ready_list)
{
    bool progress = false;
    AioHandler *node;

    while ((node = QLIST_FIRST(ready_list))) {
        QLIST_REMOVE(node, node_ready);
        progress = aio_dispatch_handler(ctx, node) || progress;
    }
    return progress;
}

/* Free deleted handlers, if we are the last walker. */
void aio_free_deleted_handlers(AioContext *ctx)
{
    AioHandler *node;

    /* A cheap peek first; writers insert with a release store. */
    if (!QLIST_FIRST_RCU(&ctx->deleted_aio_handlers)) {
        return;
    }
    if (!qemu_lockcnt_dec_if_lock(&ctx->list_lock)) {
        return;     /* an outer (or nested) walker will do it */
    }
    while ((node = QLIST_FIRST(&ctx->deleted_aio_handlers))) {
        QLIST_REMOVE(node, node);
        QLIST_REMOVE(node, node_deleted);
        QLIST_SAFE_REMOVE(node, node_poll);
        QLIST_SAFE_REMOVE(node, node_ready);
        free(node);
    }
    qemu_lockcnt_inc_and_unlock(&ctx->list_lock);
}

/* --- aio_poll ----------------------------------------------------- */

static void aio_poll_check_rules(AioContext *ctx, const char *func)
{
    AioContext *main_ctx = qemu_get_aio_context();
    AioContext *home = ctx;

    /* The iohandler context lives in the main loop's thread. */
    if (ctx == iohandler_get_aio_context()) {
        home = main_ctx;
    }
    if (!aiolab_is_home_thread(ctx)) {
        aiolab_home_thread_violation(func, ctx);
    }
    if (qemu_in_coroutine()) {
        aiolab_die(func, "must not be called from a coroutine " RULE_NOCO);
    }
    if (home == main_ctx && main_ctx && !aiolab_main_ctx_poll_allowed()) {
        aiolab_die(func, "polls the main context without the BQL while "
                   "other threads take it: two threads could dispatch it at "
                   "once " RULE_HOME);
    }
}

bool aio_poll(AioContext *ctx, bool blocking)
{
    AioHandlerList ready_list = QLIST_HEAD_INITIALIZER(ready_list);
    bool progress, use_notify_me;
    int64_t timeout, start = 0;
    int64_t poll_max_ns;
    /* Sampled once: announce and withdraw must match. */
    bool skip_notify_me = qatomic_read(&aiolab_inject_skip_notify_me);

    REQUIRE_LIVE(ctx, AIO_CONTEXT_MAGIC, "AioContext");
    if (AIOLAB_CHECKS) {
        aio_poll_check_rules(ctx, __func__);
    }
    /*
     * Only a blocking poll is a slice of its own: it is where a thread
     * waits for work.  A non-blocking one is a dispatch pass whose
     * callbacks are traced themselves, and two events more per pass
     * would double tracing's cost on a busy loop.
     */
    if (blocking) {
        trace_begin(TE_AIO_POLL, qatomic_read(&ctx->name), blocking);
    }

    /* Handlers removed from now on are only marked deleted. */
    qemu_lockcnt_inc(&ctx->list_lock);

    poll_max_ns = qatomic_read(&ctx->poll_max_ns);
    if (poll_max_ns) {
        start = now_ns();
    }

    timeout = blocking ? aio_compute_timeout(ctx) : 0;
    progress = try_poll_mode(ctx, &ready_list, &timeout);

    /* Announce that we may sleep; see the comment at the top. */
    use_notify_me = timeout != 0;
    if (use_notify_me && !skip_notify_me) {
        (void)qatomic_fetch_add(&ctx->notify_me, 2);
        /* Pairs with the exchange of notified in aio_notify(). */
        if (qatomic_load_sc(&ctx->notified)) {
            timeout = 0;
        }
    }

    /* With timeout 0 and every handler pollable, skip the system call. */
    if (timeout || ctx->fdmon_ops->need_wait(ctx)) {
        AiolabBeforeWaitHook *hook;

        if (poll_set_started(ctx, &ready_list, false)) {
            timeout = 0;
            progress = true;
        }
        hook = qatomic_load_acquire(&before_wait_hook);
        if (hook && timeout) {
            hook(ctx);
        }
        if (timeout) {
            trace_begin(TE_FDMON_WAIT, qatomic_read(&ctx->name), timeout);
        }
        ctx->fdmon_ops->wait(ctx, &ready_list, timeout);
        if (timeout) {
            trace_end(TE_FDMON_WAIT, qatomic_read(&ctx->name), timeout);
        }
    }

    if (use_notify_me && !skip_notify_me) {
        /* Done sleeping: aio_notify() need not write the eventfd. */
        (void)qatomic_fetch_sub(&ctx->notify_me, 2);
    }
    aio_notify_accept(ctx);

    if (poll_max_ns) {
        adjust_polling_time(ctx, now_ns() - start);
    }

    progress |= aio_bh_poll(ctx);
    progress |= aio_dispatch_ready_handlers(ctx, &ready_list);
    aio_free_deleted_handlers(ctx);
    qemu_lockcnt_dec(&ctx->list_lock);

    progress |= timerlistgroup_run_timers(&ctx->tlg);
    if (blocking) {
        trace_end(TE_AIO_POLL, qatomic_read(&ctx->name), progress);
    }
    return progress;
}

/* --- fd monitor selection ------------------------------------------ */

void aio_context_setup(AioContext *ctx, const char *want)
{
    ctx->fdmon_ops = &fdmon_poll_ops;
    if (!want || !strcmp(want, "poll")) {
        return;
    }
    qemu_lockcnt_lock(&ctx->list_lock);
    if (!strcmp(want, "epoll") ||
        (!strcmp(want, "io_uring") && !fdmon_io_uring_setup_locked(ctx))) {
        fdmon_epoll_setup_locked(ctx);      /* QEMU's fallback order */
    }
    qemu_lockcnt_unlock(&ctx->list_lock);
}

void aio_context_destroy(AioContext *ctx)
{
    if (ctx->fdmon_ops->destroy) {
        ctx->fdmon_ops->destroy(ctx);
    }
    ctx->fdmon_ops = &fdmon_poll_ops;
}

const char *aiolab_aio_context_fdmon_name(AioContext *ctx)
{
    const char *name;

    REQUIRE_LIVE(ctx, AIO_CONTEXT_MAGIC, "AioContext");
    /* The monitor is swapped under the mutex (from any thread, by a
     * poll(2) -> epoll upgrade or aiolab_aio_context_set_fdmon()). */
    qemu_lockcnt_lock(&ctx->list_lock);
    name = ctx->fdmon_ops->name;
    qemu_lockcnt_unlock(&ctx->list_lock);
    return name;
}

bool aiolab_aio_context_set_fdmon(AioContext *ctx, const char *name,
                                  Error **errp)
{
    bool ok = true;

    REQUIRE_LIVE(ctx, AIO_CONTEXT_MAGIC, "AioContext");
    REQUIRE_NONNULL(name);
    if (ctx->home_tid) {
        HOME_THREAD_CODE(ctx);
    }
    if (strcmp(name, "poll") && strcmp(name, "epoll") &&
        strcmp(name, "io_uring")) {
        error_setg(errp, "unknown fd monitor '%s' (poll, epoll or io_uring)",
                   name);
        return false;
    }
    /*
     * With the mutex held no handler can change (aio_set_fd_handler() calls
     * the monitor's update under it, from any thread), and a count of 0
     * means nobody polls and nobody can start.
     */
    qemu_lockcnt_lock(&ctx->list_lock);
    if (qemu_lockcnt_count(&ctx->list_lock)) {
        error_setg(errp, "cannot change the fd monitor of AioContext '%s' "
                   "while it is being polled", qatomic_read(&ctx->name));
        ok = false;
    } else if (ctx->fdmon_locked_epoll && strcmp(name, "epoll") != 0) {
        error_setg(errp, "AioContext '%s' is embedded in another event loop "
                   "and must stay on epoll", qatomic_read(&ctx->name));
        ok = false;
    } else if (strcmp(name, ctx->fdmon_ops->name) != 0) {
        aio_context_destroy(ctx);
        if (!strcmp(name, "epoll") && !fdmon_epoll_setup_locked(ctx)) {
            error_setg(errp, "epoll is not available");
            ok = false;
        } else if (!strcmp(name, "io_uring") &&
                   !fdmon_io_uring_setup_locked(ctx)) {
            error_setg(errp, "io_uring is not available (not built with "
                       "liburing, or refused by the kernel)");
            ok = false;
        }
    }
    qemu_lockcnt_unlock(&ctx->list_lock);
    if (ok) {
        aio_notify(ctx);
    }
    return ok;
}

/* --- embedding in another event loop -------------------------------- */

void aio_context_use_embedded_mode(AioContext *ctx)
{
    if (!ctx->fdmon_locked_epoll) {
        qemu_lockcnt_lock(&ctx->list_lock);
        if (strcmp(ctx->fdmon_ops->name, "epoll") != 0) {
            aio_context_destroy(ctx);
            AIOLAB_ASSERT(fdmon_epoll_setup_locked(ctx), "cannot create an "
                          "epoll fd for AioContext '%s'", qatomic_read(&ctx->name));
        }
        ctx->fdmon_locked_epoll = true;
        qemu_lockcnt_unlock(&ctx->list_lock);
    }
}

int aio_context_get_fd(AioContext *ctx)
{
    REQUIRE_LIVE(ctx, AIO_CONTEXT_MAGIC, "AioContext");
    HOME_THREAD_CODE(ctx);
    aio_context_use_embedded_mode(ctx);
    return ctx->epollfd;
}

/*
 * The embedded ready list lives across prepare -> check -> dispatch.  The
 * home thread touches it only as a walker (list_lock count held), and a
 * writer that frees a handler for real (count 0) first unlinks it from
 * whatever ready list it is on, so no freed node stays on it.
 */
int64_t aio_context_prepare(AioContext *ctx)
{
    int64_t timeout;

    REQUIRE_LIVE(ctx, AIO_CONTEXT_MAGIC, "AioContext");
    HOME_THREAD_CODE(ctx);
    aio_context_use_embedded_mode(ctx);
    qemu_lockcnt_inc(&ctx->list_lock);
    /* Announce the wait.  Pairs with the exchange in aio_notify(). */
    (void)qatomic_fetch_or(&ctx->notify_me, 1);
    /* We cannot busy-poll inside someone else's loop. */
    poll_set_started(ctx, &ctx->embed_ready_list, false);
    timeout = aio_compute_timeout(ctx);
    if (!QLIST_EMPTY(&ctx->embed_ready_list) ||
        qatomic_load_sc(&ctx->notified)) {
        timeout = 0;
    }
    qemu_lockcnt_dec(&ctx->list_lock);
    return timeout;
}

bool aio_context_check(AioContext *ctx)
{
    REQUIRE_LIVE(ctx, AIO_CONTEXT_MAGIC, "AioContext");
    HOME_THREAD_CODE(ctx);
    (void)qatomic_fetch_and(&ctx->notify_me, ~1u);
    aio_notify_accept(ctx);
    qemu_lockcnt_inc(&ctx->list_lock);
    /* Collect ready fds without sleeping. */
    ctx->fdmon_ops->wait(ctx, &ctx->embed_ready_list, 0);
    qemu_lockcnt_dec(&ctx->list_lock);
    return !QLIST_EMPTY(&ctx->embed_ready_list) ||
           aio_compute_timeout(ctx) == 0;
}

void aio_context_dispatch(AioContext *ctx)
{
    bool progress;

    REQUIRE_LIVE(ctx, AIO_CONTEXT_MAGIC, "AioContext");
    HOME_THREAD_CODE(ctx);
    qemu_lockcnt_inc(&ctx->list_lock);
    progress = aio_bh_poll(ctx);
    progress |= aio_dispatch_ready_handlers(ctx, &ctx->embed_ready_list);
    aio_free_deleted_handlers(ctx);
    qemu_lockcnt_dec(&ctx->list_lock);
    progress |= timerlistgroup_run_timers(&ctx->tlg);
    (void)progress;     /* API.md: no result (GLib ignores it too) */
}

/* Free handlers still registered when the context dies (finalize). */
void aio_context_free_handlers(AioContext *ctx)
{
    AioHandler *node, *tmp;

    QLIST_FOREACH_SAFE(node, &ctx->aio_handlers, node, tmp) {
        QLIST_REMOVE(node, node);
        free(node);
    }
    QLIST_INIT(&ctx->deleted_aio_handlers);
    QLIST_INIT(&ctx->poll_aio_handlers);
    QLIST_INIT(&ctx->embed_ready_list);
}
