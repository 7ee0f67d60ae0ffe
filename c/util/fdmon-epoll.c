/* SPDX-License-Identifier: MIT */
/*
 * util/fdmon-epoll.c - the epoll fd monitor.
 *
 * The kernel keeps the interest set, so a wait costs O(ready fds), not
 * O(registered fds).  Each registration carries its AioHandler pointer;
 * handlers are only freed after EPOLL_CTL_DEL and while nobody walks the
 * list, so a pointer returned by epoll_wait() is always valid memory
 * (possibly marked deleted, which dispatch then skips).
 *
 * Timeouts are nanoseconds: epoll_pwait2() takes a timespec (Linux 5.11),
 * where epoll_wait()'s milliseconds would make every 1 ms timer late.
 */
#include <errno.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>
#include "util/aio-internal.h"
#include "util/check.h"

#define EPOLL_BATCH 128

static int epoll_events_from_pfd(int pfd_events)
{
    return (pfd_events & POLLIN ? EPOLLIN : 0) |
           (pfd_events & POLLOUT ? EPOLLOUT : 0) |
           (pfd_events & POLLHUP ? EPOLLHUP : 0) |
           (pfd_events & POLLERR ? EPOLLERR : 0);
}

static int pfd_events_from_epoll(int epoll_events)
{
    return (epoll_events & EPOLLIN ? POLLIN : 0) |
           (epoll_events & EPOLLOUT ? POLLOUT : 0) |
           (epoll_events & EPOLLHUP ? POLLHUP : 0) |
           (epoll_events & EPOLLERR ? POLLERR : 0);
}

void fdmon_epoll_disable(AioContext *ctx)
{
    if (ctx->epollfd >= 0) {
        close(ctx->epollfd);
        ctx->epollfd = -1;
    }
    ctx->fdmon_ops = &fdmon_poll_ops;
}

static void fdmon_epoll_update(AioContext *ctx, AioHandler *old_node,
                               AioHandler *new_node)
{
    struct epoll_event event = {
        .data.ptr = new_node,
        .events = new_node ? epoll_events_from_pfd(new_node->pfd.events) : 0,
    };
    int r;

    if (!new_node) {
        r = epoll_ctl(ctx->epollfd, EPOLL_CTL_DEL, old_node->pfd.fd, &event);
    } else if (!old_node) {
        r = epoll_ctl(ctx->epollfd, EPOLL_CTL_ADD, new_node->pfd.fd, &event);
    } else {
        r = epoll_ctl(ctx->epollfd, EPOLL_CTL_MOD, new_node->pfd.fd, &event);
    }
    if (r) {
        /* e.g. a regular file, which epoll refuses: back to poll(2). */
        AIOLAB_ASSERT(!ctx->fdmon_locked_epoll, "epoll_ctl failed on fd %d "
                      "of embedded AioContext '%s'",
                      new_node ? new_node->pfd.fd : old_node->pfd.fd,
                      qatomic_read(&ctx->name));
        fdmon_epoll_disable(ctx);
    }
}

static int fdmon_epoll_wait(AioContext *ctx, AioHandlerList *ready_list,
                            int64_t timeout)
{
    struct epoll_event events[EPOLL_BATCH];
    struct timespec ts, *tsp = NULL;
    int ret, i;

    if (timeout <= 0) {
        /* 0 or forever: no rounding question, and the cheaper call. */
        ret = epoll_wait(ctx->epollfd, events, EPOLL_BATCH,
                         timeout < 0 ? -1 : 0);
    } else {
        ts.tv_sec = timeout / 1000000000LL;
        ts.tv_nsec = timeout % 1000000000LL;
        tsp = &ts;
        ret = epoll_pwait2(ctx->epollfd, events, EPOLL_BATCH, tsp, NULL);
        if (ret < 0 && errno == ENOSYS) {
            /* Kernel older than 5.11: millisecond precision, rounded up. */
            ret = epoll_wait(ctx->epollfd, events, EPOLL_BATCH,
                             qemu_timeout_ns_to_ms(timeout));
        }
    }
    for (i = 0; i < ret; i++) {
        AioHandler *node = events[i].data.ptr;
        aio_add_ready_handler(ready_list, node,
                              pfd_events_from_epoll(events[i].events));
    }
    return ret;
}

static bool fdmon_epoll_need_wait(AioContext *ctx)
{
    return aio_poll_disabled(ctx);
}

static void fdmon_epoll_destroy(AioContext *ctx)
{
    fdmon_epoll_disable(ctx);
}

const FDMonOps fdmon_epoll_ops = {
    .name = "epoll",
    .update = fdmon_epoll_update,
    .wait = fdmon_epoll_wait,
    .need_wait = fdmon_epoll_need_wait,
    .destroy = fdmon_epoll_destroy,
};

/* Register every live handler.  list_lock's mutex held. */
static bool fdmon_epoll_fill(AioContext *ctx)
{
    AioHandler *node;

    QLIST_FOREACH(node, &ctx->aio_handlers, node) {
        struct epoll_event event = {
            .data.ptr = node,
            .events = epoll_events_from_pfd(node->pfd.events),
        };
        if (aio_handler_is_deleted(node)) {
            continue;
        }
        if (epoll_ctl(ctx->epollfd, EPOLL_CTL_ADD, node->pfd.fd, &event)) {
            return false;
        }
    }
    return true;
}

/* Switch to epoll.  list_lock's mutex held (no handler changes meanwhile). */
bool fdmon_epoll_setup_locked(AioContext *ctx)
{
    ctx->epollfd = epoll_create1(EPOLL_CLOEXEC);
    if (ctx->epollfd < 0) {
        return false;
    }
    if (!fdmon_epoll_fill(ctx)) {
        close(ctx->epollfd);
        ctx->epollfd = -1;
        return false;
    }
    ctx->fdmon_ops = &fdmon_epoll_ops;
    return true;
}


/*
 * Switch a poll(2) context to epoll from inside fdmon_poll_wait().  Only
 * the sole walker may do it (a nested aio_poll must not swap the monitor
 * under its parent).
 */
bool fdmon_epoll_try_upgrade(AioContext *ctx, unsigned npfd)
{
    bool ok;

    if (!qemu_lockcnt_dec_if_lock(&ctx->list_lock)) {
        return false;
    }
    ctx->epollfd = epoll_create1(EPOLL_CLOEXEC);
    ok = ctx->epollfd >= 0 && fdmon_epoll_fill(ctx);
    if (ok) {
        ctx->fdmon_ops = &fdmon_epoll_ops;
    } else if (ctx->epollfd >= 0) {
        close(ctx->epollfd);
        ctx->epollfd = -1;
    }
    qemu_lockcnt_inc_and_unlock(&ctx->list_lock);
    return ok;
}
