/* SPDX-License-Identifier: MIT */
/*
 * block/block-backend-io.c - the BlockBackend's asynchronous (blk_aio_*)
 * and synchronous (blk_pread, ...) request wrappers, and blk_truncate.
 *
 * Both kinds run the one coroutine request path of block-backend.c:
 *
 *   blk_aio_preadv(blk, ..., cb)            blk_pread(blk, ...)
 *     blk in_flight++                         co = coroutine(entry)
 *     co = coroutine(entry)                   aio_co_enter(current ctx, co)
 *     aio_co_enter(current ctx, co)           AIO_WAIT_WHILE(current ctx,
 *     has_returned = true                                    in_progress)
 *     done already? -> oneshot BH             return ret
 *     return acb                              (entry: ret = request;
 *   (entry: ret = request; if has_returned     in_progress = false; kick)
 *    complete: cb(opaque, ret),
 *    blk in_flight--, unref acb)
 *
 * The current context, not the BlockBackend's: since QEMU 8.2 a request
 * runs where it is submitted (multiqueue), and the node's context only
 * says where its users and event sources live.
 *
 * Where QEMU differs: QEMU generates the synchronous wrappers with
 * scripts/block-coroutine-wrapper.py (co_wrapper_mixed); aiolab writes
 * one by hand for all of them.
 */
#include <errno.h>
#include <stdlib.h>
#include "block/block_int.h"
#include "util/aiocb.h"

#define NOT_DONE 0x7fffffff

/* --- blk_aio_* ---------------------------------------------------------- */

typedef struct BlkAioEmAIOCB {
    BlockAIOCB common;
    BlockBackend *blk;
    AioContext *ctx;                /* the submitter's: cb runs there */
    int type;
    int64_t offset, bytes;
    QEMUIOVector *qiov;
    BdrvRequestFlags flags;
    int ret;                        /* NOT_DONE until the request ends */
    bool has_returned;              /* blk_aio_*() has returned */
} BlkAioEmAIOCB;

static AioContext *blk_aio_em_aiocb_get_aio_context(BlockAIOCB *acb)
{
    return ((BlkAioEmAIOCB *)acb)->ctx;
}

static const AIOCBInfo blk_aio_em_aiocb_info = {
    .aiocb_size = sizeof(BlkAioEmAIOCB),
    .get_aio_context = blk_aio_em_aiocb_get_aio_context,
};

static void blk_aio_complete(BlkAioEmAIOCB *acb)
{
    if (acb->has_returned) {
        acb->common.cb(acb->common.opaque, acb->ret);
        /* After the callback: a drain waiting for this BlockBackend sees
         * the request gone only once its callback has run. */
        blk_dec_in_flight(acb->blk);
        qemu_aio_unref(acb);
    }
}

static void blk_aio_complete_bh(void *opaque)
{
    BlkAioEmAIOCB *acb = opaque;

    AIOLAB_ASSERT(acb->has_returned, "completion BH ran before "
                  "blk_aio_*() returned");
    blk_aio_complete(acb);
}

static void coroutine_fn blk_aio_entry(void *opaque)
{
    BlkAioEmAIOCB *acb = opaque;

    acb->ret = blk_co_do_request(acb->blk, acb->type, acb->offset,
                                 acb->bytes, acb->qiov, acb->flags);
    blk_aio_complete(acb);
}

static BlockAIOCB *blk_aio_prwv(BlockBackend *blk, int type, int64_t offset,
                                int64_t bytes, QEMUIOVector *qiov,
                                BdrvRequestFlags flags,
                                BlockCompletionFunc *cb, void *opaque)
{
    AioContext *ctx = qemu_get_current_aio_context();
    BlkAioEmAIOCB *acb;
    Coroutine *co;

    REQUIRE_NONNULL(blk);
    REQUIRE_NONNULL(cb);
    AIOLAB_REQUIRE(ctx, "must be called from a thread with an AioContext "
                   "(the request runs there) " RULE_HOME);
    blk_inc_in_flight(blk);
    acb = qemu_aio_get(&blk_aio_em_aiocb_info, cb, opaque);
    acb->blk = blk;
    acb->ctx = ctx;
    acb->type = type;
    acb->offset = offset;
    acb->bytes = bytes;
    acb->qiov = qiov;
    acb->flags = flags;
    acb->ret = NOT_DONE;
    acb->has_returned = false;

    co = qemu_coroutine_create(blk_aio_entry, acb);
    aio_co_enter(ctx, co);

    acb->has_returned = true;
    if (acb->ret != NOT_DONE) {
        /* Done already: never call back from inside blk_aio_*(). */
        aio_bh_schedule_oneshot(ctx, blk_aio_complete_bh, acb);
    }
    return &acb->common;
}

BlockAIOCB *blk_aio_preadv(BlockBackend *blk, int64_t offset,
                           QEMUIOVector *qiov, BdrvRequestFlags flags,
                           BlockCompletionFunc *cb, void *opaque)
{
    REQUIRE_NONNULL(qiov);
    return blk_aio_prwv(blk, BLK_REQ_READ, offset, qiov->size, qiov, flags,
                        cb, opaque);
}

BlockAIOCB *blk_aio_pwritev(BlockBackend *blk, int64_t offset,
                            QEMUIOVector *qiov, BdrvRequestFlags flags,
                            BlockCompletionFunc *cb, void *opaque)
{
    REQUIRE_NONNULL(qiov);
    return blk_aio_prwv(blk, BLK_REQ_WRITE, offset, qiov->size, qiov, flags,
                        cb, opaque);
}

BlockAIOCB *blk_aio_flush(BlockBackend *blk, BlockCompletionFunc *cb,
                          void *opaque)
{
    return blk_aio_prwv(blk, BLK_REQ_FLUSH, 0, 0, NULL, 0, cb, opaque);
}

BlockAIOCB *blk_aio_pwrite_zeroes(BlockBackend *blk, int64_t offset,
                                  int64_t bytes, BdrvRequestFlags flags,
                                  BlockCompletionFunc *cb, void *opaque)
{
    return blk_aio_prwv(blk, BLK_REQ_WRITE, offset, bytes, NULL,
                        flags | BDRV_REQ_ZERO_WRITE, cb, opaque);
}

BlockAIOCB *blk_aio_pdiscard(BlockBackend *blk, int64_t offset,
                             int64_t bytes, BlockCompletionFunc *cb,
                             void *opaque)
{
    return blk_aio_prwv(blk, BLK_REQ_DISCARD, offset, bytes, NULL, 0, cb,
                        opaque);
}

/* --- synchronous wrappers ------------------------------------------------ */

typedef struct BlkRwCo {
    BdrvPollCo poll;
    BlockBackend *blk;
    int type;
    int64_t offset, bytes;
    QEMUIOVector *qiov;
    BdrvRequestFlags flags;
    int ret;
} BlkRwCo;

static void coroutine_fn blk_rw_co_entry(void *opaque)
{
    BlkRwCo *s = opaque;

    s->ret = blk_co_request(s->blk, s->type, s->offset, s->bytes, s->qiov,
                            s->flags);
    bdrv_poll_co_done(&s->poll);
}

static int blk_rw(BlockBackend *blk, int type, int64_t offset, int64_t bytes,
                  QEMUIOVector *qiov, BdrvRequestFlags flags)
{
    BlkRwCo s = {
        .blk = blk, .type = type, .offset = offset, .bytes = bytes,
        .qiov = qiov, .flags = flags,
    };

    REQUIRE_NONNULL(blk);
    if (qemu_in_coroutine()) {
        return blk_co_request(blk, type, offset, bytes, qiov, flags);
    }
    s.poll.co = qemu_coroutine_create(blk_rw_co_entry, &s);
    bdrv_poll_co(&s.poll);
    return s.ret;
}

int blk_pread(BlockBackend *blk, int64_t offset, int64_t bytes, void *buf,
              BdrvRequestFlags flags)
{
    QEMUIOVector qiov;

    qemu_iovec_init_buf(&qiov, buf, bytes < 0 ? 0 : bytes);
    return blk_rw(blk, BLK_REQ_READ, offset, bytes, &qiov, flags);
}

int blk_pwrite(BlockBackend *blk, int64_t offset, int64_t bytes,
               const void *buf, BdrvRequestFlags flags)
{
    QEMUIOVector qiov;

    qemu_iovec_init_buf(&qiov, buf, bytes < 0 ? 0 : bytes);
    return blk_rw(blk, BLK_REQ_WRITE, offset, bytes, &qiov, flags);
}

int blk_preadv(BlockBackend *blk, int64_t offset, int64_t bytes,
               QEMUIOVector *qiov, BdrvRequestFlags flags)
{
    return blk_rw(blk, BLK_REQ_READ, offset, bytes, qiov, flags);
}

int blk_pwritev(BlockBackend *blk, int64_t offset, int64_t bytes,
                QEMUIOVector *qiov, BdrvRequestFlags flags)
{
    return blk_rw(blk, BLK_REQ_WRITE, offset, bytes, qiov, flags);
}

int blk_flush(BlockBackend *blk)
{
    return blk_rw(blk, BLK_REQ_FLUSH, 0, 0, NULL, 0);
}

int blk_pwrite_zeroes(BlockBackend *blk, int64_t offset, int64_t bytes,
                      BdrvRequestFlags flags)
{
    return blk_rw(blk, BLK_REQ_WRITE, offset, bytes, NULL,
                  flags | BDRV_REQ_ZERO_WRITE);
}

int blk_pdiscard(BlockBackend *blk, int64_t offset, int64_t bytes)
{
    return blk_rw(blk, BLK_REQ_DISCARD, offset, bytes, NULL, 0);
}

/* --- truncate ------------------------------------------------------------- */

typedef struct BlkTruncateCo {
    BdrvPollCo poll;
    BlockBackend *blk;
    int64_t offset;
    bool exact;
    int prealloc;
    BdrvRequestFlags flags;
    Error **errp;
    int ret;
} BlkTruncateCo;

static int coroutine_fn blk_co_truncate(BlockBackend *blk, int64_t offset,
                                        bool exact, int prealloc,
                                        BdrvRequestFlags flags, Error **errp)
{
    BdrvChild *root = blk_root(blk);

    if (!root || !root->bs) {
        error_setg(errp, "No medium inserted");
        return -ENOMEDIUM;
    }
    return bdrv_co_truncate(root, offset, exact, prealloc, flags, errp);
}

static void coroutine_fn blk_truncate_co_entry(void *opaque)
{
    BlkTruncateCo *s = opaque;

    s->ret = blk_co_truncate(s->blk, s->offset, s->exact, s->prealloc,
                             s->flags, s->errp);
    bdrv_poll_co_done(&s->poll);
}

int blk_truncate(BlockBackend *blk, int64_t offset, bool exact, int prealloc,
                 BdrvRequestFlags flags, Error **errp)
{
    BlkTruncateCo s = {
        .blk = blk, .offset = offset, .exact = exact, .prealloc = prealloc,
        .flags = flags, .errp = errp,
    };

    REQUIRE_NONNULL(blk);
    if (qemu_in_coroutine()) {
        return blk_co_truncate(blk, offset, exact, prealloc, flags, errp);
    }
    s.poll.co = qemu_coroutine_create(blk_truncate_co_entry, &s);
    bdrv_poll_co(&s.poll);
    return s.ret;
}
