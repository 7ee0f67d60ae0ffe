/* SPDX-License-Identifier: MIT */
/*
 * util/fdmon-io_uring.c - the io_uring fd monitor.
 *
 * Each handler has an IORING_OP_POLL_ADD in flight.  A poll is one-shot:
 * when its completion arrives the handler goes on the ready list and the
 * poll is submitted again, which keeps QEMU's level-triggered semantics
 * (a still-readable fd completes again at once).
 *
 * Unlike poll and epoll, completions land in a ring in our own memory, so
 * aio_poll() can see fd events while busy-polling without a system call:
 * need_wait() is true only when completions or submissions are pending,
 * and userspace polling works even with handlers that have no io_poll.
 *
 * Removal is asynchronous: a removed handler stays allocated (marked
 * deleted) until the kernel returns its POLL_ADD completion; only then
 * does it go on the deleted list to be freed.
 *
 *   update (any thread) --push--> submit_list --wait() fills SQEs-->
 *   kernel --CQE--> ready list (and re-arm) | deleted list (if removing)
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "util/aio-internal.h"
#include "util/check.h"
#include "util/mem.h"

#ifdef CONFIG_LIBURING
#include <liburing.h>

enum {
    FDMON_IO_URING_ENTRIES = 128,
    FDMON_IO_URING_PENDING = (1 << 0),  /* on submit_list */
    FDMON_IO_URING_ADD     = (1 << 1),  /* needs a POLL_ADD */
    FDMON_IO_URING_REMOVE  = (1 << 2),  /* needs a POLL_REMOVE, then free */
};

typedef struct FDMonIoUring {
    struct io_uring ring;
    QSLIST_HEAD(, AioHandler) submit_list;     /* atomic pushes */
} FDMonIoUring;

static FDMonIoUring *iou(AioContext *ctx)
{
    return ctx->io_uring;
}

static int poll_events_from_pfd(int pfd_events)
{
    return pfd_events;  /* POLLIN etc. are the io_uring poll mask */
}

/* Push @node on the submit list with @flags.  Any thread. */
static void enqueue(FDMonIoUring *u, AioHandler *node, unsigned flags)
{
    unsigned old = qatomic_fetch_or(&node->iou_flags,
                                    FDMON_IO_URING_PENDING | flags);
    if (!(old & FDMON_IO_URING_PENDING)) {
        QSLIST_INSERT_HEAD_ATOMIC(&u->submit_list, node, node_submitted);
    }
}

static struct io_uring_sqe *get_sqe(AioContext *ctx)
{
    struct io_uring *ring = &iou(ctx)->ring;
    struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
    int ret;

    if (likely(sqe)) {
        return sqe;
    }
    /* The submission queue is full: flush it and try again. */
    do {
        ret = io_uring_submit(ring);
    } while (ret == -EINTR);
    sqe = io_uring_get_sqe(ring);
    AIOLAB_ASSERT(sqe, "io_uring submission queue stays full");
    return sqe;
}

static void add_poll_add_sqe(AioContext *ctx, AioHandler *node)
{
    struct io_uring_sqe *sqe = get_sqe(ctx);

    io_uring_prep_poll_add(sqe, node->pfd.fd,
                           poll_events_from_pfd(node->pfd.events));
    io_uring_sqe_set_data(sqe, node);
}

static void add_poll_remove_sqe(AioContext *ctx, AioHandler *node)
{
    struct io_uring_sqe *sqe = get_sqe(ctx);

    io_uring_prep_poll_remove(sqe, (__u64)(uintptr_t)node);
    io_uring_sqe_set_data(sqe, NULL);
}

static void add_timeout_sqe(AioContext *ctx, int64_t ns)
{
    /* The kernel copies the timespec when it takes the SQE. */
    struct __kernel_timespec ts = {
        .tv_sec = ns / 1000000000LL,
        .tv_nsec = ns % 1000000000LL,
    };
    struct io_uring_sqe *sqe = get_sqe(ctx);

    io_uring_prep_timeout(sqe, &ts, 1, 0);
    io_uring_sqe_set_data(sqe, NULL);
    io_uring_submit(&iou(ctx)->ring);
}

/* Turn queued handler changes into SQEs.  Home thread. */
static void fill_sq_ring(AioContext *ctx)
{
    QSLIST_HEAD(, AioHandler) list;
    AioHandler *node;

    QSLIST_MOVE_ATOMIC(&list, &iou(ctx)->submit_list);
    while ((node = QSLIST_FIRST(&list))) {
        unsigned flags;

        QSLIST_REMOVE_HEAD(&list, node_submitted);
        flags = qatomic_fetch_and(&node->iou_flags,
                                  ~(FDMON_IO_URING_PENDING |
                                    FDMON_IO_URING_ADD));
        if (flags & FDMON_IO_URING_ADD) {
            add_poll_add_sqe(ctx, node);
        }
        if (flags & FDMON_IO_URING_REMOVE) {
            add_poll_remove_sqe(ctx, node);
        }
    }
}

/* Returns: true if @cqe made a handler ready. */
static bool process_cqe(AioContext *ctx, AioHandlerList *ready_list,
                        struct io_uring_cqe *cqe)
{
    AioHandler *node = io_uring_cqe_get_data(cqe);
    unsigned flags;

    if (!node) {
        return false;       /* a timeout or a POLL_REMOVE completion */
    }
    flags = qatomic_fetch_and(&node->iou_flags, ~FDMON_IO_URING_REMOVE);
    if (flags & FDMON_IO_URING_REMOVE) {
        /* The kernel is done with it: now it may be freed. */
        qemu_lockcnt_lock(&ctx->list_lock);
        QLIST_INSERT_HEAD_RCU(&ctx->deleted_aio_handlers, node, node_deleted);
        qemu_lockcnt_unlock(&ctx->list_lock);
        return false;
    }
    if (cqe->res < 0) {
        /* e.g. -ECANCELED: re-arm unless the handler went away. */
        if (!aio_handler_is_deleted(node)) {
            add_poll_add_sqe(ctx, node);
        }
        return false;
    }
    aio_add_ready_handler(ready_list, node, cqe->res);
    add_poll_add_sqe(ctx, node);    /* one-shot: arm it again */
    return true;
}

static int process_cq_ring(AioContext *ctx, AioHandlerList *ready_list)
{
    struct io_uring *ring = &iou(ctx)->ring;
    struct io_uring_cqe *cqe;
    unsigned head, n = 0;
    int ready = 0;

    io_uring_for_each_cqe(ring, head, cqe) {
        ready += process_cqe(ctx, ready_list, cqe);
        n++;
    }
    io_uring_cq_advance(ring, n);
    return ready;
}

static int fdmon_io_uring_wait(AioContext *ctx, AioHandlerList *ready_list,
                               int64_t timeout)
{
    unsigned wait_nr = 1;
    int ret;

    if (timeout == 0) {
        wait_nr = 0;
    } else if (timeout > 0) {
        add_timeout_sqe(ctx, timeout);
    }
    fill_sq_ring(ctx);
    do {
        ret = io_uring_submit_and_wait(&iou(ctx)->ring, wait_nr);
    } while (ret == -EINTR);
    AIOLAB_ASSERT(ret >= 0 || ret == -ETIME, "io_uring_submit_and_wait: %s",
                  strerror(-ret));
    return process_cq_ring(ctx, ready_list);
}

static void fdmon_io_uring_update(AioContext *ctx, AioHandler *old_node,
                                  AioHandler *new_node)
{
    if (new_node) {
        enqueue(iou(ctx), new_node, FDMON_IO_URING_ADD);
    }
    if (old_node) {
        /*
         * Deleted now (never dispatched again), but freed only after its
         * POLL_ADD completes: marking it deleted here makes
         * aio_remove_fd_handler() leave it alone.
         */
        qatomic_store_release(&old_node->deleted, true);
        enqueue(iou(ctx), old_node, FDMON_IO_URING_REMOVE);
    }
}

static bool fdmon_io_uring_need_wait(AioContext *ctx)
{
    struct io_uring *ring = &iou(ctx)->ring;

    return io_uring_cq_ready(ring) || io_uring_sq_ready(ring) ||
           qatomic_load_acquire(&iou(ctx)->submit_list.slh_first);
}

static void fdmon_io_uring_destroy(AioContext *ctx)
{
    FDMonIoUring *u = iou(ctx);

    if (!u) {
        return;
    }
    io_uring_queue_exit(&u->ring);
    free(u);
    ctx->io_uring = NULL;
    /* Handlers removed but never completed: hand them to the free path. */
    AioHandler *node;
    QLIST_FOREACH(node, &ctx->aio_handlers, node) {
        unsigned flags = qatomic_fetch_and(&node->iou_flags, 0);
        if ((flags & FDMON_IO_URING_REMOVE) &&
            !QLIST_IS_INSERTED(node, node_deleted)) {
            QLIST_INSERT_HEAD(&ctx->deleted_aio_handlers, node, node_deleted);
        }
    }
}

const FDMonOps fdmon_io_uring_ops = {
    .name = "io_uring",
    .update = fdmon_io_uring_update,
    .wait = fdmon_io_uring_wait,
    .need_wait = fdmon_io_uring_need_wait,
    .destroy = fdmon_io_uring_destroy,
};

/* Switch to io_uring.  list_lock's mutex held. */
bool fdmon_io_uring_setup_locked(AioContext *ctx)
{
    FDMonIoUring *u = aiolab_xcalloc(1, sizeof(*u));
    AioHandler *node;

    if (io_uring_queue_init(FDMON_IO_URING_ENTRIES, &u->ring, 0) != 0) {
        free(u);
        return false;
    }
    QSLIST_INIT(&u->submit_list);
    ctx->io_uring = u;
    ctx->fdmon_ops = &fdmon_io_uring_ops;
    QLIST_FOREACH(node, &ctx->aio_handlers, node) {
        if (!aio_handler_is_deleted(node)) {
            enqueue(u, node, FDMON_IO_URING_ADD);
        }
    }
    return true;
}

#else /* !CONFIG_LIBURING */

bool fdmon_io_uring_setup_locked(AioContext *ctx)
{
    return false;       /* built without liburing */
}

#endif
