/* SPDX-License-Identifier: MIT */
/*
 * block/block-aio-context.c - moving nodes between AioContexts, and the
 * AioContext notifiers through which their users follow them (QEMU's
 * block.c: bdrv_try_change_aio_context and friends).
 *
 * A node's context is where its users and its driver's event sources
 * live: a device's ioeventfd handlers, an export's socket, a job's
 * coroutine, the file driver's io_uring.  Moving one node means moving
 * everything connected to it, because a parent and its child must agree
 * (a filter in the main loop over a disk in an IOThread would submit from
 * the wrong thread).  The change is a transaction:
 *
 *   bdrv_try_change_aio_context(bs, ctx)
 *     |
 *     | phase 1, recursion over the connected graph (each edge once: a
 *     | visited set of BdrvChild, so diamonds terminate):
 *     |   for each parent edge: ask the parent  --refuses--> fail
 *     |       (a BlockBackend with a device attached refuses;
 *     |        a parent node recurses into its own parents/children)
 *     |   for each child edge: recurse into the child
 *     |   quiesce the node (no poll yet), take a reference; queue
 *     |   "switch it" (commit) + "undrain" (clean)
 *     v
 *   one poll: until no quiesced node has a request in flight
 *   phase 2, linear:
 *     fail:    clean only: every drain ends; nothing changed; -EPERM
 *     success: commit each node, LIFO:   notifiers' detach_aio_context()
 *                                        driver's detach hook
 *                                        aio_context = new
 *                                        driver's attach hook
 *                                        notifiers' attached_aio_context()
 *              then clean: every drain ends
 *
 * So every node switches while the whole component is drained: no
 * request is inside any of them, and none can start.
 *
 * Why one poll after the walk, not one per node as QEMU 9.0 does: a poll
 * runs BHs, and a BH may change the graph - a block job finishing
 * (job_exit) swaps and frees nodes and edges - while the walk is in the
 * middle of a node's parent list.  Quiescing is enough to stop new
 * requests; the poll then waits for old ones once, with no walk on the
 * stack, and the references keep every node alive until its clean.
 * (Later QEMU versions also drain before the walk.)
 *
 * Where QEMU differs: QEMU's Transaction (util/transactions.c) and the
 * GHashTable visited set are replaced by a list and an array (graphs here
 * are small: the search is linear).  There is no graph lock to drop
 * around the drains.
 */
#include <errno.h>
#include <stdlib.h>
#include "block/block_int.h"
#include "util/trace-internal.h"
#include "util/mem.h"

/* --- a minimal transaction ----------------------------------------------- */

typedef struct TransactionAction {
    const TransactionActionDrv *drv;
    void *opaque;
    QSLIST_ENTRY(TransactionAction) entry;
} TransactionAction;

struct Transaction {
    QSLIST_HEAD(, TransactionAction) actions;
};

Transaction *tran_new(void)
{
    Transaction *tran = aiolab_xcalloc(1, sizeof(*tran));

    QSLIST_INIT(&tran->actions);
    return tran;
}

void tran_add(Transaction *tran, const TransactionActionDrv *drv,
              void *opaque)
{
    TransactionAction *act = aiolab_xcalloc(1, sizeof(*act));

    act->drv = drv;
    act->opaque = opaque;
    QSLIST_INSERT_HEAD(&tran->actions, act, entry);   /* LIFO */
}

static void tran_finish(Transaction *tran, bool commit)
{
    TransactionAction *act;

    QSLIST_FOREACH(act, &tran->actions, entry) {
        if (commit && act->drv->commit) {
            act->drv->commit(act->opaque);
        } else if (!commit && act->drv->abort) {
            act->drv->abort(act->opaque);
        }
    }
    while ((act = QSLIST_FIRST(&tran->actions))) {
        QSLIST_REMOVE_HEAD(&tran->actions, entry);
        if (act->drv->clean) {
            act->drv->clean(act->opaque);
        }
        free(act);
    }
    free(tran);
}

void tran_commit(Transaction *tran)
{
    tran_finish(tran, true);
}

void tran_abort(Transaction *tran)
{
    tran_finish(tran, false);
}

/* --- the visited set ---------------------------------------------------- */

/* Returns: false if @c was visited already. */
bool bdrv_visited_add(BdrvVisited *visited, BdrvChild *c)
{
    int i;

    for (i = 0; i < visited->n; i++) {
        if (visited->v[i] == c) {
            return false;
        }
    }
    if (visited->n == visited->cap) {
        visited->cap = visited->cap ? 2 * visited->cap : 8;
        visited->v = aiolab_xreallocarray(visited->v, visited->cap,
                                          sizeof(*visited->v));
    }
    visited->v[visited->n++] = c;
    return true;
}

/* --- notifiers ------------------------------------------------------------ */

static void bdrv_do_remove_aio_context_notifier(BdrvAioNotifier *ban)
{
    QLIST_REMOVE(ban, list);
    free(ban);
}

void bdrv_add_aio_context_notifier(BlockDriverState *bs,
        void (*attached_aio_context)(AioContext *new_context, void *opaque),
        void (*detach_aio_context)(void *opaque), void *opaque)
{
    BdrvAioNotifier *ban;

    GLOBAL_STATE_CODE();
    REQUIRE_LIVE(bs, BDS_MAGIC, "BlockDriverState");
    REQUIRE_NONNULL(attached_aio_context);
    REQUIRE_NONNULL(detach_aio_context);
    ban = aiolab_xcalloc(1, sizeof(*ban));
    ban->attached_aio_context = attached_aio_context;
    ban->detach_aio_context = detach_aio_context;
    ban->opaque = opaque;
    QLIST_INSERT_HEAD(&bs->aio_notifiers, ban, list);
}

void bdrv_remove_aio_context_notifier(BlockDriverState *bs,
        void (*attached_aio_context)(AioContext *, void *),
        void (*detach_aio_context)(void *), void *opaque)
{
    BdrvAioNotifier *ban;

    GLOBAL_STATE_CODE();
    REQUIRE_LIVE(bs, BDS_MAGIC, "BlockDriverState");
    QLIST_FOREACH(ban, &bs->aio_notifiers, list) {
        if (ban->attached_aio_context == attached_aio_context &&
            ban->detach_aio_context == detach_aio_context &&
            ban->opaque == opaque && !ban->deleted) {
            if (bs->walking_aio_notifiers) {
                ban->deleted = true;    /* the walker frees it */
            } else {
                bdrv_do_remove_aio_context_notifier(ban);
            }
            return;
        }
    }
    aiolab_die(__func__, "node '%s' has no notifier (attached_aio_context "
               "%p, detach_aio_context %p, opaque %p) " RULE_NOTIFIER,
               bs->node_name, (void *)attached_aio_context,
               (void *)detach_aio_context, opaque);
}

void bdrv_free_aio_notifiers(BlockDriverState *bs)
{
    BdrvAioNotifier *ban, *next;

    QLIST_FOREACH_SAFE(ban, &bs->aio_notifiers, list, next) {
        bdrv_do_remove_aio_context_notifier(ban);
    }
}

static void bdrv_detach_aio_context(BlockDriverState *bs)
{
    BdrvAioNotifier *ban, *next;

    AIOLAB_ASSERT(!bs->walking_aio_notifiers, "node '%s': AioContext "
                  "change from inside a notifier", bs->node_name);
    bs->walking_aio_notifiers = true;
    QLIST_FOREACH_SAFE(ban, &bs->aio_notifiers, list, next) {
        if (ban->deleted) {
            bdrv_do_remove_aio_context_notifier(ban);
        } else {
            ban->detach_aio_context(ban->opaque);
        }
    }
    bs->walking_aio_notifiers = false;
    if (bs->drv && bs->drv->bdrv_detach_aio_context) {
        bs->drv->bdrv_detach_aio_context(bs);
    }
    qatomic_set(&bs->aio_context, NULL);
}

static void bdrv_attach_aio_context(BlockDriverState *bs,
                                    AioContext *new_context)
{
    BdrvAioNotifier *ban, *next;

    qatomic_set(&bs->aio_context, new_context);
    if (bs->drv && bs->drv->bdrv_attach_aio_context) {
        bs->drv->bdrv_attach_aio_context(bs, new_context);
    }
    bs->walking_aio_notifiers = true;
    QLIST_FOREACH_SAFE(ban, &bs->aio_notifiers, list, next) {
        if (ban->deleted) {
            bdrv_do_remove_aio_context_notifier(ban);
        } else {
            ban->attached_aio_context(new_context, ban->opaque);
        }
    }
    bs->walking_aio_notifiers = false;
}

/* --- the change ----------------------------------------------------------- */

typedef struct BdrvStateSetAioContext {
    AioContext *new_ctx;
    BlockDriverState *bs;
} BdrvStateSetAioContext;

static void bdrv_set_aio_context_commit(void *opaque)
{
    BdrvStateSetAioContext *state = opaque;

    bdrv_detach_aio_context(state->bs);
    bdrv_attach_aio_context(state->bs, state->new_ctx);
}

static void bdrv_set_aio_context_clean(void *opaque)
{
    BdrvStateSetAioContext *state = opaque;

    /* Pairs with the quiesce and the ref in bdrv_change_aio_context(). */
    bdrv_drained_end(state->bs);
    bdrv_unref(state->bs);
    free(state);
}

static const TransactionActionDrv set_aio_context = {
    .commit = bdrv_set_aio_context_commit,
    .clean = bdrv_set_aio_context_clean,
};

static bool bdrv_parent_change_aio_context(BdrvChild *c, AioContext *ctx,
                                           BdrvVisited *visited,
                                           Transaction *tran, Error **errp)
{
    if (!bdrv_visited_add(visited, c)) {
        return true;
    }
    /* Every parent class in aiolab has the hook; QEMU's message for one
     * that does not is "Changing iothreads is not supported by ...". */
    AIOLAB_ASSERT(c->klass->change_aio_ctx, "edge '%s' has no "
                  "change_aio_ctx", c->name);
    return c->klass->change_aio_ctx(c, ctx, visited, tran, errp);
}

static bool bdrv_child_change_aio_context(BdrvChild *c, AioContext *ctx,
                                          BdrvVisited *visited,
                                          Transaction *tran, Error **errp)
{
    if (!bdrv_visited_add(visited, c)) {
        return true;
    }
    return bdrv_change_aio_context(c->bs, ctx, visited, tran, errp);
}

bool bdrv_change_aio_context(BlockDriverState *bs, AioContext *ctx,
                             BdrvVisited *visited, Transaction *tran,
                             Error **errp)
{
    BdrvStateSetAioContext *state;
    BdrvChild *c;

    GLOBAL_STATE_CODE();
    if (bdrv_get_aio_context(bs) == ctx) {
        return true;
    }
    QLIST_FOREACH(c, &bs->parents, next_parent) {
        if (!bdrv_parent_change_aio_context(c, ctx, visited, tran, errp)) {
            return false;
        }
    }
    QLIST_FOREACH(c, &bs->children, next) {
        if (!bdrv_child_change_aio_context(c, ctx, visited, tran, errp)) {
            return false;
        }
    }
    state = aiolab_xcalloc(1, sizeof(*state));
    state->new_ctx = ctx;
    state->bs = bs;
    /* Paired with bdrv_set_aio_context_clean().  No poll here (see the
     * top of the file): bdrv_change_aio_context_poll() waits, later. */
    bdrv_ref(bs);
    trace_begin(TE_DRAINED_BEGIN, bs->trace_name,
                qatomic_read(&bs->quiesce_counter));
    bdrv_do_drained_begin_quiesce(bs, NULL);
    trace_end(TE_DRAINED_BEGIN, bs->trace_name,
              qatomic_read(&bs->quiesce_counter));
    if (visited->n_drained == visited->cap_drained) {
        visited->cap_drained = visited->cap_drained ? 2 * visited->cap_drained
                                                    : 8;
        visited->drained = aiolab_xreallocarray(visited->drained,
                                                visited->cap_drained,
                                                sizeof(*visited->drained));
    }
    visited->drained[visited->n_drained++] = bs;
    tran_add(tran, &set_aio_context, state);
    return true;
}

static bool bdrv_visited_busy(BdrvVisited *visited)
{
    int i;

    for (i = 0; i < visited->n_drained; i++) {
        if (bdrv_drain_poll(visited->drained[i], NULL, false)) {
            return true;
        }
    }
    return false;
}

/* The one poll of a change: every quiesced node idle (and its parents). */
static void bdrv_change_aio_context_poll(BdrvVisited *visited)
{
    AIO_WAIT_WHILE(qemu_get_aio_context(), bdrv_visited_busy(visited));
}

int bdrv_try_change_aio_context(BlockDriverState *bs, AioContext *ctx,
                                BdrvChild *ignore_child, Error **errp)
{
    BdrvVisited visited = { 0 };
    Transaction *tran;
    bool ok;

    GLOBAL_STATE_CODE();
    REQUIRE_LIVE(bs, BDS_MAGIC, "BlockDriverState");
    REQUIRE_NONNULL(ctx);
    if (bdrv_get_aio_context(bs) == ctx) {
        return 0;
    }
    if (ignore_child) {
        bdrv_visited_add(&visited, ignore_child);
    }
    tran = tran_new();
    ok = bdrv_change_aio_context(bs, ctx, &visited, tran, errp);
    if (ok) {
        bdrv_change_aio_context_poll(&visited);
    }
    free(visited.v);
    free(visited.drained);
    if (!ok) {
        tran_abort(tran);       /* only the drains end; nothing moved */
        return -EPERM;
    }
    tran_commit(tran);
    return 0;
}

/*
 * A new edge between nodes of different contexts: first try to move the
 * child's side into the parent's context; if something there refuses,
 * try to move the parent's side into the child's.
 */
int bdrv_child_try_change_aio_context_for_attach(BdrvChild *new_child,
                                                 BlockDriverState *child_bs,
                                                 Error **errp)
{
    AioContext *parent_ctx =
        new_child->klass->get_parent_aio_context(new_child);
    AioContext *child_ctx = bdrv_get_aio_context(child_bs);
    Error *local_err = NULL;
    int ret;

    ret = bdrv_try_change_aio_context(child_bs, parent_ctx, NULL,
                                      &local_err);
    if (ret < 0 && new_child->klass->change_aio_ctx) {
        BdrvVisited visited = { 0 };
        Transaction *tran = tran_new();

        bdrv_visited_add(&visited, new_child);
        if (new_child->klass->change_aio_ctx(new_child, child_ctx, &visited,
                                             tran, NULL)) {
            bdrv_change_aio_context_poll(&visited);
            tran_commit(tran);
            error_free(local_err);
            local_err = NULL;
            ret = 0;
        } else {
            tran_abort(tran);
        }
        free(visited.v);
        free(visited.drained);
    }
    if (ret < 0) {
        error_propagate(errp, local_err);
    }
    return ret;
}
