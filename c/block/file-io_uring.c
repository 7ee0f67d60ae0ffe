/* SPDX-License-Identifier: MIT */
/*
 * block/file-io_uring.c - the file driver's io_uring engine (QEMU's
 * block/io_uring.c): one ring per AioContext, created on first use and
 * freed with the context.
 *
 *   request coroutine (ctx X)         ring of X             kernel
 *   -------------------------         ---------             ------
 *   luring_co_submit: prep an SQE
 *     -> submit_queue, in_queue++
 *     batch full?  ioq_submit now
 *     else defer_call(submit) ........ at the end of the current
 *     yield                            defer_call section (a completion
 *                                      pass, virtio-blk's handle_vq, a
 *                                      caller's own section) or at once
 *                                      outside one: io_uring_submit
 *                                      -----------------------------> I/O
 *                                      the ring's own fd polls readable
 *   completion handler in X  <-------- while its CQ ring holds a CQE
 *     (or X's busy-poll sees io_uring_cq_ready(): no system call)
 *     for each CQE: short read? resubmit the rest; else ret, and
 *     aio_co_wake(request)  (queued to run, not nested, if it is us)
 *
 * The ring belongs to X's home thread: it is only touched by request
 * coroutines and handlers running in X, so it needs no lock.  In-flight
 * SQEs are capped at MAX_ENTRIES; beyond that requests wait in
 * submit_queue ("blocked") until completions make room.  A batch is at
 * most the context's aio-max-batch (0: MAX_ENTRIES).
 *
 * X watches the ring fd itself, as QEMU 9.0 does (aio_set_fd_handler on
 * ring_fd, with a poll handler that peeks the CQ ring).  Readiness is
 * the CQ ring being non-empty (level-triggered), so there is nothing to
 * clear and nothing goes stale: an eventfd registered with the ring
 * (io_uring_register_eventfd, an earlier aiolab design and QEMU's Linux
 * AIO engine's pattern) costs the kernel a write per completion batch
 * and us a read per wake-up, and after a busy-poll found the CQEs it
 * still holds a count that wakes the next sleep for nothing.  A nested
 * aio_poll() in a completion callback sees the CQEs still in the ring
 * (the fd stays readable) and completes them itself; each CQE is marked
 * seen before its request is woken, so the outer pass then finds the
 * ring empty.  (QEMU 9.0 also schedules a BH around a completion pass
 * for nested event loops; aiolab has no such BH.)
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "block/block_int.h"
#include "util/aio-internal.h"
#include "util/mem.h"

#ifdef CONFIG_LIBURING
#include <liburing.h>

#define MAX_ENTRIES 128

typedef struct LuringAIOCB {
    Coroutine *co;
    struct io_uring_sqe sqeq;       /* prepared SQE, copied into the ring */
    ssize_t ret;                    /* -EINPROGRESS until completed */
    QEMUIOVector *qiov;
    bool is_read;
    /* Short reads: what was read so far, and the rest to read. */
    int total_read;
    QEMUIOVector resubmit_qiov;
    QSIMPLEQ_ENTRY(LuringAIOCB) next;
} LuringAIOCB;

struct LuringState {
    AioContext *aio_context;
    struct io_uring ring;           /* ring.ring_fd: X's fd handler */
    /* Home thread of aio_context only. */
    struct {
        unsigned int in_queue;      /* prepared, not yet submitted */
        unsigned int in_flight;     /* submitted, not yet completed */
        bool blocked;               /* the ring is full: wait */
        QSIMPLEQ_HEAD(, LuringAIOCB) submit_queue;
    } io_q;
};

/* Set once the kernel has refused io_uring: do not ask again. */
static int luring_refused;          /* atomic: -errno */

static void ioq_submit(LuringState *s);

static void luring_resubmit(LuringState *s, LuringAIOCB *luringcb)
{
    QSIMPLEQ_INSERT_TAIL(&s->io_q.submit_queue, luringcb, next);
    s->io_q.in_queue++;
}

/* A read returned less than asked: read the rest. */
static void luring_resubmit_short_read(LuringState *s, LuringAIOCB *luringcb,
                                       int nread)
{
    QEMUIOVector *resubmit_qiov = &luringcb->resubmit_qiov;
    struct io_uring_sqe *sqe = &luringcb->sqeq;
    size_t remaining;

    luringcb->total_read += nread;
    remaining = luringcb->qiov->size - luringcb->total_read;
    if (resubmit_qiov->iov) {
        qemu_iovec_reset(resubmit_qiov);
    } else {
        qemu_iovec_init(resubmit_qiov, luringcb->qiov->niov);
    }
    qemu_iovec_concat(resubmit_qiov, luringcb->qiov, luringcb->total_read,
                      remaining);
    sqe->addr = (uintptr_t)resubmit_qiov->iov;
    sqe->len = resubmit_qiov->niov;
    sqe->off += nread;
    luring_resubmit(s, luringcb);
}

static void luring_process_completions(LuringState *s)
{
    struct io_uring_cqe *cqe;

    while (io_uring_peek_cqe(&s->ring, &cqe) == 0 && cqe) {
        LuringAIOCB *luringcb = io_uring_cqe_get_data(cqe);
        int ret = cqe->res;

        io_uring_cqe_seen(&s->ring, cqe);
        s->io_q.in_flight--;

        if (ret == -EINTR || ret == -EAGAIN) {
            luring_resubmit(s, luringcb);
            continue;
        }
        if (ret >= 0 && luringcb->qiov) {
            size_t want = luringcb->qiov->size - luringcb->total_read;

            if (luringcb->is_read) {
                if (ret > 0 && (size_t)ret < want) {
                    luring_resubmit_short_read(s, luringcb, ret);
                    continue;
                }
                if (ret == 0) {
                    /* End of file: the rest reads as zeroes. */
                    qemu_iovec_memset(luringcb->qiov, luringcb->total_read,
                                      0, want);
                }
                ret = 0;
            } else {
                ret = (size_t)ret == want ? 0 : -ENOSPC;
            }
        } else if (ret > 0) {
            ret = 0;
        }
        if (luringcb->resubmit_qiov.iov) {
            qemu_iovec_destroy(&luringcb->resubmit_qiov);
        }
        luringcb->ret = ret;
        /* Still inside ioq_submit() of its own coroutine?  It sees ret
         * when it returns; a coroutine must never be entered twice. */
        if (!qemu_coroutine_entered(luringcb->co)) {
            aio_co_wake(luringcb->co);
        }
    }
}

/* The kernel refused a submission and nothing is in flight to retry it
 * later: fail what is still queued (QEMU returns the error instead). */
static void luring_fail_queue(LuringState *s, int ret)
{
    LuringAIOCB *luringcb;

    while ((luringcb = QSIMPLEQ_FIRST(&s->io_q.submit_queue))) {
        QSIMPLEQ_REMOVE_HEAD(&s->io_q.submit_queue, next);
        s->io_q.in_queue--;
        luringcb->ret = ret;
        if (!qemu_coroutine_entered(luringcb->co)) {
            aio_co_wake(luringcb->co);
        }
    }
}

static void ioq_submit(LuringState *s)
{
    int ret = 0;

    while (s->io_q.in_queue > 0 && s->io_q.in_flight < MAX_ENTRIES) {
        LuringAIOCB *luringcb;

        /* Fill the SQ ring, within the in-flight cap. */
        while ((luringcb = QSIMPLEQ_FIRST(&s->io_q.submit_queue)) &&
               io_uring_sq_ready(&s->ring) + s->io_q.in_flight <
               MAX_ENTRIES) {
            struct io_uring_sqe *sqe = io_uring_get_sqe(&s->ring);

            if (!sqe) {
                break;
            }
            *sqe = luringcb->sqeq;
            QSIMPLEQ_REMOVE_HEAD(&s->io_q.submit_queue, next);
        }
        ret = io_uring_submit(&s->ring);
        if (ret == -EINTR) {
            continue;
        }
        if (ret <= 0) {
            break;
        }
        s->io_q.in_flight += ret;
        s->io_q.in_queue -= ret;
    }
    if (ret < 0 && ret != -EAGAIN && ret != -EBUSY && !s->io_q.in_flight) {
        luring_fail_queue(s, ret);
    }
    s->io_q.blocked = s->io_q.in_queue > 0;
    if (s->io_q.in_flight) {
        /* Something may have completed already: reap it now. */
        luring_process_completions(s);
    }
}

static void luring_process_completions_and_submit(LuringState *s)
{
    defer_call_begin();             /* batch what the callbacks submit */
    luring_process_completions(s);
    if (s->io_q.in_queue > 0) {
        ioq_submit(s);
    }
    defer_call_end();
}

/* The ring fd is readable (or busy-polling saw a CQE): reap and
 * resubmit.  Both the fd handler and the poll-ready handler. */
static void luring_completion_cb(void *opaque)
{
    luring_process_completions_and_submit(opaque);
}

static bool luring_poll_cb(void *opaque)
{
    LuringState *s = opaque;

    return io_uring_cq_ready(&s->ring) > 0;
}

static void luring_deferred_fn(void *opaque)
{
    LuringState *s = opaque;

    if (!s->io_q.blocked && s->io_q.in_queue > 0) {
        ioq_submit(s);
    }
}

int coroutine_fn luring_co_submit(LuringState *s, int fd, int64_t offset,
                                  QEMUIOVector *qiov, int type)
{
    LuringAIOCB luringcb = {
        .co = qemu_coroutine_self(),
        .ret = -EINPROGRESS,
        .qiov = qiov,
        .is_read = type == QEMU_AIO_READ,
    };
    struct io_uring_sqe *sqe = &luringcb.sqeq;
    int64_t max_batch = aiolab_aio_context_get_aio_max_batch(s->aio_context);

    memset(sqe, 0, sizeof(*sqe));
    if (type == QEMU_AIO_READ) {
        io_uring_prep_readv(sqe, fd, qiov->iov, qiov->niov, offset);
    } else if (type == QEMU_AIO_WRITE) {
        io_uring_prep_writev(sqe, fd, qiov->iov, qiov->niov, offset);
    } else {
        io_uring_prep_fsync(sqe, fd, IORING_FSYNC_DATASYNC);
    }
    io_uring_sqe_set_data(sqe, &luringcb);

    QSIMPLEQ_INSERT_TAIL(&s->io_q.submit_queue, &luringcb, next);
    s->io_q.in_queue++;
    if (!s->io_q.blocked) {
        if (max_batch <= 0 || max_batch > MAX_ENTRIES) {
            max_batch = MAX_ENTRIES;
        }
        if (s->io_q.in_flight + s->io_q.in_queue >= MAX_ENTRIES ||
            s->io_q.in_queue >= max_batch) {
            ioq_submit(s);
        } else {
            defer_call(luring_deferred_fn, s);
        }
    }
    if (luringcb.ret == -EINPROGRESS) {
        qemu_coroutine_yield();
    }
    return luringcb.ret;
}

static LuringState *luring_init(AioContext *ctx, Error **errp)
{
    LuringState *s = aiolab_xcalloc(1, sizeof(*s));
    int rc = qatomic_read(&luring_refused);

    if (!rc) {
        rc = io_uring_queue_init(MAX_ENTRIES, &s->ring, 0);
        if (rc == -ENOSYS || rc == -EPERM || rc == -EACCES) {
            qatomic_set(&luring_refused, rc);
        }
    }
    if (rc < 0) {
        error_setg_errno(errp, -rc, "failed to init linux io_uring ring");
        free(s);
        return NULL;
    }
    QSIMPLEQ_INIT(&s->io_q.submit_queue);
    s->aio_context = ctx;
    aio_set_fd_handler(ctx, s->ring.ring_fd, luring_completion_cb, NULL,
                       luring_poll_cb, luring_completion_cb, s);
    return s;
}

static void luring_free(LuringState *s)
{
    aio_set_fd_handler(s->aio_context, s->ring.ring_fd, NULL, NULL, NULL,
                       NULL, NULL);
    io_uring_queue_exit(&s->ring);
    free(s);
}

LuringState *aio_get_linux_io_uring(AioContext *ctx, Error **errp)
{
    LuringState *s = qatomic_load_acquire(&ctx->linux_io_uring);
    LuringState *other;

    if (likely(s)) {
        return s;
    }
    s = luring_init(ctx, errp);
    if (!s) {
        return NULL;
    }
    /* Created from the main loop (open, attach) or lazily by a request
     * in the context's own thread: the first one wins. */
    other = qatomic_cmpxchg(&ctx->linux_io_uring, NULL, s);
    if (other) {
        luring_free(s);
        return other;
    }
    return s;
}

void luring_cleanup(AioContext *ctx)
{
    LuringState *s = ctx->linux_io_uring;

    if (s) {
        AIOLAB_ASSERT(!s->io_q.in_flight && !s->io_q.in_queue,
                      "AioContext '%s' freed with io_uring requests in "
                      "flight", ctx->name);
        ctx->linux_io_uring = NULL;
        luring_free(s);
    }
}

#else /* !CONFIG_LIBURING */

LuringState *aio_get_linux_io_uring(AioContext *ctx, Error **errp)
{
    error_setg(errp, "aiolab was built without liburing");
    return NULL;
}

int coroutine_fn luring_co_submit(LuringState *s, int fd, int64_t offset,
                                  QEMUIOVector *qiov, int type)
{
    return -ENOTSUP;
}

void luring_cleanup(AioContext *ctx)
{
}

#endif
