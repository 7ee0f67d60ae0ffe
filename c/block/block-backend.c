/* SPDX-License-Identifier: MIT */
/*
 * block/block-backend.c - BlockBackend: a user's handle on a root node
 * (QEMU's block/block-backend.c).
 *
 * A request on a BlockBackend (blk_co_preadv and every wrapper):
 *
 *   blk in_flight++
 *   drained?  (and queuing not disabled)
 *     +--> take queued_requests_lock; still drained?  park: enqueue self,
 *     |    blk in_flight-- (under the lock), yield ........ not counted:
 *     |                                                    the drain can
 *     |    <-- the last drained_end wakes every parked one  finish
 *     |        and counts it in flight again before the wake-up
 *   root = blk->root (re-read: the graph may have changed meanwhile)
 *   range check: -ENOMEDIUM without a node, -EIO negative/overflow/EOF
 *   bdrv_co_*(root, ...): the node's in_flight, the driver
 *   blk in_flight-- + aio_wait_kick()
 *
 * Why park after dropping in_flight, and under a lock: a drain waits for
 * in_flight == 0, so a request counted in flight while it waits for the
 * drain to end would deadlock it (semantics 16, item 12).  Taking the
 * lock before the decrement, and re-checking the counter under it, means
 * the drained_end that wakes the queue (it takes the same lock after the
 * counter reaches 0) cannot run between our check and our enqueue.
 *
 * Why the waker counts the request, not the request itself: a woken
 * request in another thread runs only when its context gets round to it.
 * Counted by itself, it would be in flight nowhere in between, and a
 * drain starting then would find in_flight == 0, finish, and let the
 * request pass through the graph inside that drained section - after a
 * mirror's "nothing dirty" check, past a node swap (a write acknowledged
 * but never copied to the target; seen once in test-mirror under TSan).
 * Counted from the wake-up, that drain waits for it.  QEMU closes the
 * same window with its graph lock: bdrv_replace_node() takes the writer
 * side, which waits for every request holding the reader side.
 *
 * blk_aio_*: the same request in a coroutine entered in the caller's
 * context; if it completes before blk_aio_*() returns, the callback is
 * deferred to a oneshot BH so that it never runs inside the call; the
 * callback runs before the BlockBackend's in_flight drops.
 *
 * Where QEMU differs: QEMU parks on a CoQueue protected by a QemuMutex
 * (qemu_co_queue_wait + qemu_co_enter_next).  aiolab's CoQueue takes only
 * a CoMutex, which the main loop cannot lock outside a coroutine, so the
 * BlockBackend keeps its own FIFO of parked coroutines under a pthread
 * mutex and wakes them with aio_co_wake() - the same protocol.  No
 * throttling, permissions, names, I/O status or error actions.
 */
#include <errno.h>
#include <stdlib.h>
#include "block/block_int.h"
#include "util/mem.h"

typedef struct BlkParked {
    Coroutine *co;
    QSIMPLEQ_ENTRY(BlkParked) next;
} BlkParked;

typedef struct BlockBackendAioNotifier {
    void (*attached_aio_context)(AioContext *new_context, void *opaque);
    void (*detach_aio_context)(void *opaque);
    void *opaque;
    QLIST_ENTRY(BlockBackendAioNotifier) list;
} BlockBackendAioNotifier;

struct BlockBackend {
    unsigned magic;

    /* --- Main loop, BQL held ----------------------------------------- */
    int refcnt;
    const BlockDevOps *dev_ops;
    void *dev_opaque;
    bool allow_aio_context_change;  /* blk_set_aio_context, exports */
    QLIST_HEAD(, BlockBackendAioNotifier) aio_notifiers;
    QTAILQ_ENTRY(BlockBackend) link;

    /* --- Atomic ------------------------------------------------------ */
    BdrvChild *root;                /* changed in the main loop, drained */
    AioContext *ctx;
    int in_flight;                  /* dec kicks AIO_WAIT_WHILE waiters */
    int quiesce_counter;            /* main loop writes */
    bool disable_request_queuing;

    /* --- Protected by queued_requests_lock ---------------------------- */
    pthread_mutex_t queued_requests_lock;
    QSIMPLEQ_HEAD(, BlkParked) queued_requests;
};

static QTAILQ_HEAD(, BlockBackend) all_blks =
    QTAILQ_HEAD_INITIALIZER(all_blks);

void blk_inc_in_flight(BlockBackend *blk)
{
    qatomic_inc(&blk->in_flight);
}

void blk_dec_in_flight(BlockBackend *blk)
{
    qatomic_dec(&blk->in_flight);
    aio_wait_kick();
}

/* --- the root edge (child_root) -------------------------------------------- */

static void blk_root_drained_begin(BdrvChild *child)
{
    BlockBackend *blk = child->opaque;

    if (qatomic_fetch_add(&blk->quiesce_counter, 1) == 0) {
        if (blk->dev_ops && blk->dev_ops->drained_begin) {
            blk->dev_ops->drained_begin(blk->dev_opaque);
        }
    }
}

static bool blk_root_drained_poll(BdrvChild *child)
{
    BlockBackend *blk = child->opaque;
    bool busy = false;

    if (blk->dev_ops && blk->dev_ops->drained_poll) {
        busy = blk->dev_ops->drained_poll(blk->dev_opaque);
    }
    /* Pairs with the RMW in blk_dec_in_flight(). */
    return busy || qatomic_load_acquire(&blk->in_flight) > 0;
}

static void blk_root_drained_end(BdrvChild *child)
{
    BlockBackend *blk = child->opaque;
    BlkParked *p;

    AIOLAB_ASSERT(qatomic_read(&blk->quiesce_counter) > 0,
                  "BlockBackend not quiesced " RULE_DRAIN_BALANCE);
    if (qatomic_fetch_sub(&blk->quiesce_counter, 1) != 1) {
        return;
    }
    if (blk->dev_ops && blk->dev_ops->drained_end) {
        blk->dev_ops->drained_end(blk->dev_opaque);
    }
    /* Resume every parked request.  A request of this thread's context
     * runs now, up to its next yield (its I/O completes later, in the
     * event loop); others are scheduled into their own contexts. */
    pthread_mutex_lock(&blk->queued_requests_lock);
    while ((p = QSIMPLEQ_FIRST(&blk->queued_requests))) {
        Coroutine *co = p->co;

        QSIMPLEQ_REMOVE_HEAD(&blk->queued_requests, next);
        /* In flight from now, not from when it runs (see the top). */
        blk_inc_in_flight(blk);
        pthread_mutex_unlock(&blk->queued_requests_lock);
        aio_co_wake(co);        /* @p is gone after this */
        pthread_mutex_lock(&blk->queued_requests_lock);
    }
    pthread_mutex_unlock(&blk->queued_requests_lock);
}

static void blk_root_attach(BdrvChild *child)
{
    BlockBackend *blk = child->opaque;
    BlockBackendAioNotifier *n;

    QLIST_FOREACH(n, &blk->aio_notifiers, list) {
        bdrv_add_aio_context_notifier(child->bs, n->attached_aio_context,
                                      n->detach_aio_context, n->opaque);
    }
}

static void blk_root_detach(BdrvChild *child)
{
    BlockBackend *blk = child->opaque;
    BlockBackendAioNotifier *n;

    QLIST_FOREACH(n, &blk->aio_notifiers, list) {
        bdrv_remove_aio_context_notifier(child->bs, n->attached_aio_context,
                                         n->detach_aio_context, n->opaque);
    }
}

static void blk_root_resize(BdrvChild *child)
{
    BlockBackend *blk = child->opaque;

    if (blk->dev_ops && blk->dev_ops->resize_cb) {
        blk->dev_ops->resize_cb(blk->dev_opaque);
    }
}

typedef struct BdrvStateBlkRootContext {
    AioContext *new_ctx;
    BlockBackend *blk;
} BdrvStateBlkRootContext;

static void blk_root_set_aio_ctx_commit(void *opaque)
{
    BdrvStateBlkRootContext *s = opaque;

    qatomic_set(&s->blk->ctx, s->new_ctx);
}

static const TransactionActionDrv set_blk_root_context = {
    .commit = blk_root_set_aio_ctx_commit,
    .clean = free,
};

static bool blk_root_change_aio_ctx(BdrvChild *child, AioContext *ctx,
                                    BdrvVisited *visited, Transaction *tran,
                                    Error **errp)
{
    BlockBackend *blk = child->opaque;
    BdrvStateBlkRootContext *s;

    /*
     * A device's contexts are fixed when it is created (it attached its
     * handlers there): a change through the graph is refused unless its
     * user allowed it (an export, blk_set_aio_context() for its own
     * move).  A BlockBackend with no BlockDevOps follows.  QEMU decides
     * by name instead: only a named BlockBackend (-drive) without a
     * device follows; aiolab's BlockBackends have no names, and the
     * anonymous ones here (tests, Python, the tutorial's consumers) have
     * no handlers a move could strand (docs/qemu-map.md).
     */
    if (!blk->allow_aio_context_change && blk->dev_ops) {
        error_setg(errp, "Cannot change iothread of active block backend");
        return false;
    }
    s = aiolab_xcalloc(1, sizeof(*s));
    s->new_ctx = ctx;
    s->blk = blk;
    tran_add(tran, &set_blk_root_context, s);
    return true;
}

static AioContext *blk_root_get_parent_aio_context(BdrvChild *child)
{
    BlockBackend *blk = child->opaque;

    return qatomic_read(&blk->ctx);
}

static const BdrvChildClass child_root = {
    .parent_is_bds = false,
    .drained_begin = blk_root_drained_begin,
    .drained_end = blk_root_drained_end,
    .drained_poll = blk_root_drained_poll,
    .attach = blk_root_attach,
    .detach = blk_root_detach,
    .resize = blk_root_resize,
    .change_aio_ctx = blk_root_change_aio_ctx,
    .get_parent_aio_context = blk_root_get_parent_aio_context,
};

/* --- life ------------------------------------------------------------------ */

BlockBackend *blk_new(AioContext *ctx)
{
    BlockBackend *blk;

    GLOBAL_STATE_CODE();
    blk = aiolab_xcalloc(1, sizeof(*blk));
    blk->magic = BLK_MAGIC;
    blk->refcnt = 1;
    blk->ctx = ctx ? ctx : qemu_get_aio_context();
    pthread_mutex_init(&blk->queued_requests_lock, NULL);
    QSIMPLEQ_INIT(&blk->queued_requests);
    QLIST_INIT(&blk->aio_notifiers);
    QTAILQ_INSERT_TAIL(&all_blks, blk, link);
    return blk;
}

BlockBackend *blk_new_open(const char *filename, const char *reference,
                           const char *options, int flags, Error **errp)
{
    BlockDriverState *bs;
    BlockBackend *blk;

    GLOBAL_STATE_CODE();
    bs = bdrv_open(filename, reference, options, flags, errp);
    if (!bs) {
        return NULL;
    }
    blk = blk_new(bdrv_get_aio_context(bs));
    if (blk_insert_bs(blk, bs, errp) < 0) {
        blk_unref(blk);
        blk = NULL;
    }
    bdrv_unref(bs);
    return blk;
}

void blk_ref(BlockBackend *blk)
{
    GLOBAL_STATE_CODE();
    REQUIRE_LIVE(blk, BLK_MAGIC, "BlockBackend");
    blk->refcnt++;
}

void blk_unref(BlockBackend *blk)
{
    GLOBAL_STATE_CODE();
    if (!blk) {
        return;
    }
    REQUIRE_LIVE(blk, BLK_MAGIC, "BlockBackend");
    if (blk->refcnt > 1) {
        blk->refcnt--;
        return;
    }
    blk_drain(blk);
    AIOLAB_ASSERT(blk->refcnt == 1, "BlockBackend referenced again while "
                  "its last blk_unref() drained it");
    blk->refcnt = 0;
    if (blk->root) {
        blk_remove_bs(blk);
    }
    AIOLAB_ASSERT(QLIST_EMPTY(&blk->aio_notifiers), "BlockBackend freed "
                  "with AioContext notifiers still added (remove them "
                  "first) " RULE_NOTIFIER);
    QTAILQ_REMOVE(&all_blks, blk, link);
    pthread_mutex_destroy(&blk->queued_requests_lock);
    blk->magic = 0;
    free(blk);
}

int blk_insert_bs(BlockBackend *blk, BlockDriverState *bs, Error **errp)
{
    BdrvChild *root;

    GLOBAL_STATE_CODE();
    REQUIRE_LIVE(blk, BLK_MAGIC, "BlockBackend");
    REQUIRE_LIVE(bs, BDS_MAGIC, "BlockDriverState");
    AIOLAB_REQUIRE(!blk->root, "BlockBackend already has a root node");
    root = bdrv_attach_child_common(bs, "root", &child_root, blk, errp);
    if (!root) {
        return -EPERM;
    }
    qatomic_store_release(&blk->root, root);
    return 0;
}

void blk_remove_bs(BlockBackend *blk)
{
    BdrvChild *root;

    GLOBAL_STATE_CODE();
    REQUIRE_LIVE(blk, BLK_MAGIC, "BlockBackend");
    if (!blk->root) {
        return;
    }
    /* No request may hold the edge when it goes. */
    blk_drain(blk);
    root = blk->root;
    qatomic_set(&blk->root, NULL);
    bdrv_root_unref_child(root);
}

BlockDriverState *blk_bs(BlockBackend *blk)
{
    BdrvChild *root;

    REQUIRE_LIVE(blk, BLK_MAGIC, "BlockBackend");
    root = qatomic_load_acquire(&blk->root);
    return root ? root->bs : NULL;
}

void blk_set_dev_ops(BlockBackend *blk, const BlockDevOps *ops, void *opaque)
{
    GLOBAL_STATE_CODE();
    REQUIRE_LIVE(blk, BLK_MAGIC, "BlockBackend");
    blk->dev_ops = ops;
    blk->dev_opaque = opaque;
    /* Attached in the middle of a drained section: catch up. */
    if (qatomic_read(&blk->quiesce_counter) && ops && ops->drained_begin) {
        ops->drained_begin(opaque);
    }
}

void blk_set_allow_aio_context_change(BlockBackend *blk, bool allow)
{
    GLOBAL_STATE_CODE();
    REQUIRE_LIVE(blk, BLK_MAGIC, "BlockBackend");
    blk->allow_aio_context_change = allow;
}

void blk_set_disable_request_queuing(BlockBackend *blk, bool disable)
{
    GLOBAL_STATE_CODE();
    REQUIRE_LIVE(blk, BLK_MAGIC, "BlockBackend");
    qatomic_set(&blk->disable_request_queuing, disable);
}

/* --- AioContext ------------------------------------------------------------ */

AioContext *blk_get_aio_context(BlockBackend *blk)
{
    if (!blk) {
        return qemu_get_aio_context();
    }
    REQUIRE_LIVE(blk, BLK_MAGIC, "BlockBackend");
    return qatomic_read(&blk->ctx);
}

int blk_set_aio_context(BlockBackend *blk, AioContext *new_context,
                        Error **errp)
{
    BlockDriverState *bs;
    bool old_allow_change;
    int ret;

    GLOBAL_STATE_CODE();
    REQUIRE_LIVE(blk, BLK_MAGIC, "BlockBackend");
    REQUIRE_NONNULL(new_context);
    bs = blk_bs(blk);
    if (!bs) {
        qatomic_set(&blk->ctx, new_context);
        return 0;
    }
    bdrv_ref(bs);
    old_allow_change = blk->allow_aio_context_change;
    blk->allow_aio_context_change = true;
    ret = bdrv_try_change_aio_context(bs, new_context, NULL, errp);
    blk->allow_aio_context_change = old_allow_change;
    bdrv_unref(bs);
    return ret;
}

void blk_add_aio_context_notifier(BlockBackend *blk,
        void (*attached_aio_context)(AioContext *new_context, void *opaque),
        void (*detach_aio_context)(void *opaque), void *opaque)
{
    BlockBackendAioNotifier *n;
    BlockDriverState *bs;

    GLOBAL_STATE_CODE();
    REQUIRE_LIVE(blk, BLK_MAGIC, "BlockBackend");
    n = aiolab_xcalloc(1, sizeof(*n));
    n->attached_aio_context = attached_aio_context;
    n->detach_aio_context = detach_aio_context;
    n->opaque = opaque;
    QLIST_INSERT_HEAD(&blk->aio_notifiers, n, list);
    bs = blk_bs(blk);
    if (bs) {
        bdrv_add_aio_context_notifier(bs, attached_aio_context,
                                      detach_aio_context, opaque);
    }
}

void blk_remove_aio_context_notifier(BlockBackend *blk,
        void (*attached_aio_context)(AioContext *, void *),
        void (*detach_aio_context)(void *), void *opaque)
{
    BlockBackendAioNotifier *n;

    GLOBAL_STATE_CODE();
    REQUIRE_LIVE(blk, BLK_MAGIC, "BlockBackend");
    QLIST_FOREACH(n, &blk->aio_notifiers, list) {
        if (n->attached_aio_context == attached_aio_context &&
            n->detach_aio_context == detach_aio_context &&
            n->opaque == opaque) {
            BlockDriverState *bs = blk_bs(blk);

            if (bs) {
                bdrv_remove_aio_context_notifier(bs, attached_aio_context,
                                                 detach_aio_context, opaque);
            }
            QLIST_REMOVE(n, list);
            free(n);
            return;
        }
    }
    aiolab_die(__func__, "the BlockBackend has no notifier "
               "(attached_aio_context %p, detach_aio_context %p, opaque %p) "
               RULE_NOTIFIER, (void *)attached_aio_context,
               (void *)detach_aio_context, opaque);
}

/* --- drains ------------------------------------------------------------- */

void blk_drain(BlockBackend *blk)
{
    BlockDriverState *bs;

    GLOBAL_STATE_CODE();
    REQUIRE_LIVE(blk, BLK_MAGIC, "BlockBackend");
    bs = blk_bs(blk);
    if (bs) {
        bdrv_ref(bs);
        bdrv_drained_begin(bs);
    }
    /* Requests that found no node complete with -ENOMEDIUM: wait for
     * them too.  Pairs with the RMW in blk_dec_in_flight(). */
    AIO_WAIT_WHILE(blk_get_aio_context(blk),
                   qatomic_load_acquire(&blk->in_flight) > 0);
    if (bs) {
        bdrv_drained_end(bs);
        bdrv_unref(bs);
    }
}

void blk_drain_all(void)
{
    BlockBackend *blk;

    GLOBAL_STATE_CODE();
    bdrv_drain_all_begin();
    QTAILQ_FOREACH(blk, &all_blks, link) {
        AIO_WAIT_WHILE(NULL, qatomic_load_acquire(&blk->in_flight) > 0);
    }
    bdrv_drain_all_end();
}

bool blk_in_drain(BlockBackend *blk)
{
    GLOBAL_STATE_CODE();
    REQUIRE_LIVE(blk, BLK_MAGIC, "BlockBackend");
    return qatomic_read(&blk->quiesce_counter) != 0;
}

int blk_get_in_flight(BlockBackend *blk)
{
    REQUIRE_LIVE(blk, BLK_MAGIC, "BlockBackend");
    return qatomic_load_acquire(&blk->in_flight);
}

int64_t blk_getlength(BlockBackend *blk)
{
    BlockDriverState *bs = blk_bs(blk);

    return bs ? bdrv_getlength(bs) : -ENOMEDIUM;
}

/* --- the request path (the wrappers are in block-backend-io.c) ----------- */

static void coroutine_fn blk_wait_while_drained(BlockBackend *blk)
{
    BlkParked p;

    /* Acquire: pairs with the RMW in blk_root_drained_end(), so a request
     * that starts after a drained section sees the graph changes made in
     * it (the edge it is about to read). */
    if (!qatomic_load_acquire(&blk->quiesce_counter) ||
        qatomic_read(&blk->disable_request_queuing)) {
        return;
    }
    pthread_mutex_lock(&blk->queued_requests_lock);
    /* Re-check under the lock: the last drained_end decrements the
     * counter before it takes the lock to wake the queue. */
    if (!qatomic_load_sc(&blk->quiesce_counter)) {
        pthread_mutex_unlock(&blk->queued_requests_lock);
        return;
    }
    p.co = qemu_coroutine_self();
    QSIMPLEQ_INSERT_TAIL(&blk->queued_requests, &p, next);
    blk_dec_in_flight(blk);         /* parked: not in flight */
    pthread_mutex_unlock(&blk->queued_requests_lock);
    /* A waker in another thread schedules us through our context's BH,
     * which runs only after this yield.  It counted us in flight again. */
    qemu_coroutine_yield();
}

static int blk_check_byte_request(BlockBackend *blk, BdrvChild *root,
                                  int64_t offset, int64_t bytes)
{
    int64_t len;

    if (bytes < 0) {
        return -EIO;
    }
    if (!root || !root->bs) {
        return -ENOMEDIUM;
    }
    if (offset < 0) {
        return -EIO;
    }
    len = bdrv_getlength(root->bs);
    if (len < 0) {
        return len;
    }
    if (offset > len || len - offset < bytes) {
        return -EIO;
    }
    return 0;
}

/* One request, with the BlockBackend's in_flight already raised. */
int coroutine_fn blk_co_do_request(BlockBackend *blk, int type,
                                          int64_t offset, int64_t bytes,
                                          QEMUIOVector *qiov,
                                          BdrvRequestFlags flags)
{
    BdrvChild *root;
    int ret;

    blk_wait_while_drained(blk);
    root = qatomic_load_acquire(&blk->root);
    if (type == BLK_REQ_FLUSH) {
        return root && root->bs ? bdrv_co_flush(root->bs) : -ENOMEDIUM;
    }
    ret = blk_check_byte_request(blk, root, offset, bytes);
    if (ret < 0) {
        return ret;
    }
    switch (type) {
    case BLK_REQ_READ:
        return bdrv_co_preadv(root, offset, bytes, qiov, flags);
    case BLK_REQ_WRITE:
        return bdrv_co_pwritev(root, offset, bytes, qiov, flags);
    default:
        return bdrv_co_pdiscard(root, offset, bytes);
    }
}

int coroutine_fn blk_co_request(BlockBackend *blk, int type,
                                int64_t offset, int64_t bytes,
                                QEMUIOVector *qiov, BdrvRequestFlags flags)
{
    int ret;

    REQUIRE_LIVE(blk, BLK_MAGIC, "BlockBackend");
    AIOLAB_REQUIRE(qemu_in_coroutine(), "called outside a coroutine "
                   RULE_CO);
    blk_inc_in_flight(blk);
    ret = blk_co_do_request(blk, type, offset, bytes, qiov, flags);
    blk_dec_in_flight(blk);
    return ret;
}

int coroutine_fn blk_co_preadv(BlockBackend *blk, int64_t offset,
                               int64_t bytes, QEMUIOVector *qiov,
                               BdrvRequestFlags flags)
{
    return blk_co_request(blk, BLK_REQ_READ, offset, bytes, qiov, flags);
}

int coroutine_fn blk_co_pwritev(BlockBackend *blk, int64_t offset,
                                int64_t bytes, QEMUIOVector *qiov,
                                BdrvRequestFlags flags)
{
    return blk_co_request(blk, BLK_REQ_WRITE, offset, bytes, qiov, flags);
}

int coroutine_fn blk_co_pread(BlockBackend *blk, int64_t offset,
                              int64_t bytes, void *buf,
                              BdrvRequestFlags flags)
{
    QEMUIOVector qiov;

    qemu_iovec_init_buf(&qiov, buf, bytes < 0 ? 0 : bytes);
    return blk_co_request(blk, BLK_REQ_READ, offset, bytes, &qiov, flags);
}

int coroutine_fn blk_co_pwrite(BlockBackend *blk, int64_t offset,
                               int64_t bytes, const void *buf,
                               BdrvRequestFlags flags)
{
    QEMUIOVector qiov;

    qemu_iovec_init_buf(&qiov, buf, bytes < 0 ? 0 : bytes);
    return blk_co_request(blk, BLK_REQ_WRITE, offset, bytes, &qiov, flags);
}

int coroutine_fn blk_co_flush(BlockBackend *blk)
{
    return blk_co_request(blk, BLK_REQ_FLUSH, 0, 0, NULL, 0);
}

int coroutine_fn blk_co_pwrite_zeroes(BlockBackend *blk, int64_t offset,
                                      int64_t bytes, BdrvRequestFlags flags)
{
    return blk_co_request(blk, BLK_REQ_WRITE, offset, bytes, NULL,
                          flags | BDRV_REQ_ZERO_WRITE);
}

int coroutine_fn blk_co_pdiscard(BlockBackend *blk, int64_t offset,
                                 int64_t bytes)
{
    return blk_co_request(blk, BLK_REQ_DISCARD, offset, bytes, NULL, 0);
}

/* The root edge, for block-backend-io.c (truncate). */
BdrvChild *blk_root(BlockBackend *blk)
{
    return qatomic_load_acquire(&blk->root);
}
