/* SPDX-License-Identifier: MIT */
/*
 * util/fdmon-poll.c - the poll(2) fd monitor.
 *
 * Every wait rebuilds a pollfd array from the handler list: simple, and
 * O(fds) per iteration.  At 64 fds a context upgrades itself to epoll,
 * whose cost does not grow with the number of idle fds (QEMU's
 * EPOLL_ENABLE_THRESHOLD).
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>
#include "util/aio-internal.h"
#include "util/mem.h"

#define EPOLL_ENABLE_THRESHOLD 64

/* Home thread only, and not used across a dispatch: thread-local arrays
 * can be shared by every context this thread polls. */
static __thread struct pollfd *pollfds;
static __thread AioHandler **nodes;
static __thread unsigned npfd, nalloc;
static pthread_key_t arrays_key;
static pthread_once_t arrays_once = PTHREAD_ONCE_INIT;

/* Free this thread's arrays when it exits. */
static void arrays_destructor(void *unused)
{
    free(pollfds);
    free(nodes);
    pollfds = NULL;
    nodes = NULL;
    nalloc = 0;
}

static void arrays_key_init(void)
{
    pthread_key_create(&arrays_key, arrays_destructor);
}

static void add_pollfd(AioHandler *node)
{
    if (nalloc == 0) {
        pthread_once(&arrays_once, arrays_key_init);
        pthread_setspecific(arrays_key, (void *)1);
    }
    if (npfd == nalloc) {
        nalloc = nalloc ? nalloc * 2 : 8;
        pollfds = aiolab_xrealloc(pollfds, nalloc * sizeof(*pollfds));
        nodes = aiolab_xrealloc(nodes, nalloc * sizeof(*nodes));
    }
    pollfds[npfd] = (struct pollfd){
        .fd = node->pfd.fd,
        .events = node->pfd.events,
    };
    nodes[npfd] = node;
    npfd++;
}

static int fdmon_poll_wait(AioContext *ctx, AioHandlerList *ready_list,
                           int64_t timeout)
{
    struct timespec ts, *tsp = NULL;
    AioHandler *node;
    int ret;
    unsigned i;

    npfd = 0;
    QLIST_FOREACH_RCU(node, &ctx->aio_handlers, node) {
        if (!aio_handler_is_deleted(node) && node->pfd.events) {
            add_pollfd(node);
        }
    }
    if (npfd >= EPOLL_ENABLE_THRESHOLD && !ctx->fdmon_locked_epoll &&
        fdmon_epoll_try_upgrade(ctx, npfd)) {
        npfd = 0;
        return ctx->fdmon_ops->wait(ctx, ready_list, timeout);
    }
    if (timeout >= 0) {
        ts.tv_sec = timeout / 1000000000LL;
        ts.tv_nsec = timeout % 1000000000LL;
        tsp = &ts;
    }
    ret = ppoll(pollfds, npfd, tsp, NULL);
    if (ret > 0) {
        for (i = 0; i < npfd; i++) {
            if (pollfds[i].revents) {
                aio_add_ready_handler(ready_list, nodes[i],
                                      pollfds[i].revents);
            }
        }
    }
    npfd = 0;
    return ret;
}

static void fdmon_poll_update(AioContext *ctx, AioHandler *old_node,
                              AioHandler *new_node)
{
    /* Nothing to do: the array is rebuilt by every wait. */
}

static bool fdmon_poll_need_wait(AioContext *ctx)
{
    return aio_poll_disabled(ctx);
}

const FDMonOps fdmon_poll_ops = {
    .name = "poll",
    .update = fdmon_poll_update,
    .wait = fdmon_poll_wait,
    .need_wait = fdmon_poll_need_wait,
};
