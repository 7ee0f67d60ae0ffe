/* SPDX-License-Identifier: MIT */
/*
 * aiolab/block-backend.h - BlockBackend: how a user (a device, an export,
 * a job, a test) reaches the block graph (QEMU's
 * include/sysemu/block-backend-{common,global-state,io}.h).
 *
 * A BlockBackend is the parent of one root node.  Its requests:
 *   - run in the caller's current AioContext (multiqueue: any thread may
 *     submit), counted in the BlockBackend's and the nodes' in_flight;
 *   - are parked while the BlockBackend is drained (not counted in
 *     flight, so they cannot hold the drain up) and resume after the last
 *     bdrv_drained_end(), unless blk_set_disable_request_queuing(true);
 *   - check their range: a negative offset, an overflow or a range beyond
 *     the end gives -EIO; a write to a read-only node -EPERM.
 *
 * A device attaches with blk_set_dev_ops(): its drained_begin/end/poll
 * callbacks then see every drain of the root node, and the BlockBackend
 * refuses AioContext changes made through the graph ("Cannot change
 * iothread of active block backend"): a device's contexts are fixed when
 * it is created.  Other users follow their node with AioContext notifiers.
 *
 * Where QEMU differs: no permissions, no throttling, no names or
 * removable media, no I/O status or error policy; anonymous
 * BlockBackends without a device follow their node when it moves (QEMU
 * lets only named ones do that).
 */
#ifndef AIOLAB_BLOCK_BACKEND_H
#define AIOLAB_BLOCK_BACKEND_H

#include <aiolab/block.h>

typedef struct BlockDevOps {     /* aiolab: no removable-media callbacks */
    /* The root node's first drain (0 -> 1): stop submitting requests. */
    void (*drained_begin)(void *opaque);
    /* The last end (1 -> 0): you may submit again. */
    void (*drained_end)(void *opaque);
    /* Still busy?  A drain polls until false; whoever makes it false from
     * another thread must call aio_wait_kick(). */
    bool (*drained_poll)(void *opaque);
    /* The root node changed size (truncate), in the thread that did it. */
    void (*resize_cb)(void *opaque);
} BlockDevOps;

/* ---------------------------------------------------------------------
 * Global state: main loop, BQL held
 * --------------------------------------------------------------------- */

/**
 * blk_new: a BlockBackend without a node, in @ctx (NULL: the main
 * context).  Context: main loop, BQL held.
 */
AIOLAB_API BlockBackend *blk_new(AioContext *ctx);

/**
 * blk_new_open: bdrv_open() a node and a BlockBackend on it, in the
 * node's context.  Returns: NULL with @errp set on failure.
 * Context: main loop, BQL held.
 */
AIOLAB_API BlockBackend *blk_new_open(const char *filename,
                                      const char *reference,
                                      const char *options, int flags,
                                      Error **errp);

/**
 * blk_unref: drop a reference; the last one drains the BlockBackend,
 * removes its node and frees it.  Its AioContext notifiers must have been
 * removed.  NULL is allowed.
 * Context: main loop, BQL held (also from a coroutine in the main loop, as
 * long as the last reference has nothing left to wait for: it drains).
 */
AIOLAB_API void blk_unref(BlockBackend *blk);

/** blk_ref: take a reference.  Context: main loop, BQL held. */
AIOLAB_API void blk_ref(BlockBackend *blk);

/**
 * blk_insert_bs: make @bs the root node (taking a reference).  The node
 * moves to the BlockBackend's context if it can, else the BlockBackend
 * to the node's.  Returns: 0 or -EPERM with @errp set.
 * Context: main loop, BQL held.
 */
AIOLAB_API int blk_insert_bs(BlockBackend *blk, BlockDriverState *bs,
                             Error **errp);

/**
 * blk_remove_bs: drain, then detach the root node.  The BlockBackend
 * keeps its context; the node goes back to the main context if nothing
 * else uses it.  Context: main loop, BQL held.
 */
AIOLAB_API void blk_remove_bs(BlockBackend *blk);

/**
 * blk_set_dev_ops: attach a device (@ops may be NULL to detach).  If the
 * BlockBackend is drained now, @ops->drained_begin is called at once.
 * Context: main loop, BQL held.
 */
AIOLAB_API void blk_set_dev_ops(BlockBackend *blk, const BlockDevOps *ops,
                                void *opaque);

/**
 * blk_set_allow_aio_context_change: let the graph move this BlockBackend
 * to another AioContext even with a device attached (an export that
 * follows its node: the device's AioContext notifier moves its handlers).
 * Context: main loop, BQL held.
 */
AIOLAB_API void blk_set_allow_aio_context_change(BlockBackend *blk,
                                                 bool allow);

/**
 * blk_set_disable_request_queuing: let requests run even while drained
 * (block jobs and tests do).  Context: main loop, BQL held.
 */
AIOLAB_API void blk_set_disable_request_queuing(BlockBackend *blk,
                                                bool disable);

/**
 * blk_set_aio_context: move the BlockBackend and its whole graph to
 * @new_context (bdrv_try_change_aio_context with this BlockBackend's own
 * device allowed to move).  Without a node it just stores the context.
 * Returns: 0 or -EPERM with @errp set (another device refused).
 * Context: main loop, BQL held.
 */
AIOLAB_API int blk_set_aio_context(BlockBackend *blk, AioContext *new_context,
                                   Error **errp);

/**
 * blk_add_aio_context_notifier: as bdrv_add_aio_context_notifier() on
 * whichever node is the root, now and after the root changes.
 * Context: main loop, BQL held.
 */
AIOLAB_API void blk_add_aio_context_notifier(BlockBackend *blk,
        void (*attached_aio_context)(AioContext *new_context, void *opaque),
        void (*detach_aio_context)(void *opaque), void *opaque);

/**
 * blk_remove_aio_context_notifier: remove one added with exactly these
 * values; one never added aborts.  Context: main loop, BQL held.
 */
AIOLAB_API void blk_remove_aio_context_notifier(BlockBackend *blk,
        void (*attached_aio_context)(AioContext *, void *),
        void (*detach_aio_context)(void *), void *opaque);

/**
 * blk_drain: drain the root node, then wait until this BlockBackend has
 * nothing in flight.
 * Context: main loop, BQL held.
 */
AIOLAB_API void blk_drain(BlockBackend *blk);

/**
 * blk_drain_all: bdrv_drain_all() plus every BlockBackend's requests.
 * Context: main loop, BQL held.
 */
AIOLAB_API void blk_drain_all(void);

/**
 * blk_in_drain: is the BlockBackend quiesced now?
 * Context: main loop, BQL held.
 */
AIOLAB_API bool blk_in_drain(BlockBackend *blk);

/**
 * blk_truncate: resize the root node to @offset bytes.
 * @exact: must the size be exactly @offset (else it may be larger)?
 * @prealloc: aiolab: 0 (off) only.
 * Returns: 0, or -errno with @errp set (-EINVAL negative size, -EACCES
 * read-only, -ENOTSUP driver cannot).  The device's resize_cb runs.
 * Context: like the synchronous I/O functions below.
 */
AIOLAB_API int blk_truncate(BlockBackend *blk, int64_t offset, bool exact,
                            int prealloc, BdrvRequestFlags flags,
                            Error **errp);

/* ---------------------------------------------------------------------
 * Any thread (I/O code)
 * --------------------------------------------------------------------- */

/**
 * blk_bs: the root node or NULL.
 * Context: any thread; the answer is stable only where no graph change
 * can run (the main loop, or inside a request).
 */
AIOLAB_API BlockDriverState *blk_bs(BlockBackend *blk);

/**
 * blk_get_aio_context: the BlockBackend's context.
 * Context: any thread.
 */
AIOLAB_API AioContext *blk_get_aio_context(BlockBackend *blk);

/**
 * blk_getlength: the root node's size, or -ENOMEDIUM.
 * Context: any thread.
 */
AIOLAB_API int64_t blk_getlength(BlockBackend *blk);

/**
 * blk_inc_in_flight / blk_dec_in_flight: count something as a request of
 * the BlockBackend, so that blk_drain() and drained sections wait for it
 * (virtio-blk holds one while a restart BH is scheduled).  The decrement
 * calls aio_wait_kick().  Context: any thread.
 */
AIOLAB_API void blk_inc_in_flight(BlockBackend *blk);
AIOLAB_API void blk_dec_in_flight(BlockBackend *blk);

/**
 * blk_get_in_flight: the BlockBackend's in_flight (aiolab accessor).
 * Context: any thread (a snapshot).
 */
AIOLAB_API int blk_get_in_flight(BlockBackend *blk);

/**
 * blk_pread: synchronous requests.  From outside a coroutine they create
 * one, enter it in the caller's current AioContext and poll that context
 * until it is done (AIO_WAIT_WHILE); from a coroutine they just run.
 * Never call one while the caller itself keeps the BlockBackend drained,
 * unless request queuing is disabled: the request would stay parked.
 * Returns: 0 or -errno.
 * Context: a thread with an AioContext - the main loop (BQL held) or an
 * IOThread's own thread - or a coroutine.
 */
AIOLAB_API int blk_pread(BlockBackend *blk, int64_t offset, int64_t bytes,
                         void *buf, BdrvRequestFlags flags);
AIOLAB_API int blk_pwrite(BlockBackend *blk, int64_t offset, int64_t bytes,
                          const void *buf, BdrvRequestFlags flags);
AIOLAB_API int blk_preadv(BlockBackend *blk, int64_t offset, int64_t bytes,
                          QEMUIOVector *qiov, BdrvRequestFlags flags);
AIOLAB_API int blk_pwritev(BlockBackend *blk, int64_t offset, int64_t bytes,
                           QEMUIOVector *qiov, BdrvRequestFlags flags);
AIOLAB_API int blk_flush(BlockBackend *blk);
AIOLAB_API int blk_pwrite_zeroes(BlockBackend *blk, int64_t offset,
                                 int64_t bytes, BdrvRequestFlags flags);
AIOLAB_API int blk_pdiscard(BlockBackend *blk, int64_t offset, int64_t bytes);

/**
 * blk_aio_preadv: asynchronous requests: a coroutine runs the request in
 * the caller's current AioContext, and @cb(@opaque, ret) runs there when
 * it is done - never before blk_aio_*() has returned (a request that
 * completes at once is completed from a BH), and before the
 * BlockBackend's in_flight drops.  @qiov must stay valid until then.
 * Returns: the request's BlockAIOCB.
 * Context: a thread with an AioContext (its home thread).
 */
AIOLAB_API BlockAIOCB *blk_aio_preadv(BlockBackend *blk, int64_t offset,
                                      QEMUIOVector *qiov,
                                      BdrvRequestFlags flags,
                                      BlockCompletionFunc *cb, void *opaque);
AIOLAB_API BlockAIOCB *blk_aio_pwritev(BlockBackend *blk, int64_t offset,
                                       QEMUIOVector *qiov,
                                       BdrvRequestFlags flags,
                                       BlockCompletionFunc *cb,
                                       void *opaque);
AIOLAB_API BlockAIOCB *blk_aio_flush(BlockBackend *blk,
                                     BlockCompletionFunc *cb, void *opaque);
AIOLAB_API BlockAIOCB *blk_aio_pwrite_zeroes(BlockBackend *blk,
                                             int64_t offset, int64_t bytes,
                                             BdrvRequestFlags flags,
                                             BlockCompletionFunc *cb,
                                             void *opaque);
AIOLAB_API BlockAIOCB *blk_aio_pdiscard(BlockBackend *blk, int64_t offset,
                                        int64_t bytes,
                                        BlockCompletionFunc *cb,
                                        void *opaque);

/**
 * blk_co_preadv: coroutine requests: the same, from a coroutine (they
 * yield while the I/O is in progress).
 * Returns: 0 or -errno.
 * Context: coroutine_fn, in any thread with an AioContext.
 */
AIOLAB_API int coroutine_fn blk_co_preadv(BlockBackend *blk, int64_t offset,
                                          int64_t bytes, QEMUIOVector *qiov,
                                          BdrvRequestFlags flags);
AIOLAB_API int coroutine_fn blk_co_pwritev(BlockBackend *blk, int64_t offset,
                                           int64_t bytes, QEMUIOVector *qiov,
                                           BdrvRequestFlags flags);
AIOLAB_API int coroutine_fn blk_co_pread(BlockBackend *blk, int64_t offset,
                                         int64_t bytes, void *buf,
                                         BdrvRequestFlags flags);
AIOLAB_API int coroutine_fn blk_co_pwrite(BlockBackend *blk, int64_t offset,
                                          int64_t bytes, const void *buf,
                                          BdrvRequestFlags flags);
AIOLAB_API int coroutine_fn blk_co_flush(BlockBackend *blk);
AIOLAB_API int coroutine_fn blk_co_pwrite_zeroes(BlockBackend *blk,
                                                 int64_t offset,
                                                 int64_t bytes,
                                                 BdrvRequestFlags flags);
AIOLAB_API int coroutine_fn blk_co_pdiscard(BlockBackend *blk, int64_t offset,
                                            int64_t bytes);

#endif
