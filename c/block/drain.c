/* SPDX-License-Identifier: MIT */
/*
 * block/drain.c - in-flight accounting and drained sections (QEMU's
 * block/io.c, first part).
 *
 * A drained section is the block layer's way to say "stop the world" for
 * one node: between bdrv_drained_begin(bs) and bdrv_drained_end(bs) no
 * parent of @bs issues a new request, and none is in flight.  The main
 * loop may then change the graph, move nodes between threads, or swap a
 * mirror's source for its target.
 *
 * The quiesce counter of one node (main loop writes, atomic reads):
 *
 *          begin: 0->1                      begin: n->n+1
 *   [0] ------------------> [1] ---------------------------> [n]
 *    ^  parents' drained_begin  \  (no callbacks)              |
 *    |  (parent to child), then  \                             |
 *    |  driver drain_begin        <----------------------------+
 *    |                               end: n->n-1 (no callbacks)
 *    +--- end: 1->0: driver drain_end, then parents'
 *         drained_end (child to parent); parked requests resume
 *
 *   Only the outermost call of a bdrv_drained_begin() polls, once:
 *   AIO_WAIT_WHILE(node's context, bdrv_drain_poll(bs)) - "is anything
 *   still in flight in @bs, or busy in a parent?".  Callbacks never poll,
 *   and bdrv_drained_end() never polls: polling in callbacks re-enters the
 *   event loop in the middle of a graph walk, which is how QEMU met its
 *   use-after-free bugs (semantics section 16, item 13).
 *   tests/c/test-bdrv-drain.c's /bdrv-drain/detach/driver_cb fails if a
 *   driver's or a parent's drain_begin callback polls.
 *
 * Propagation goes up, never down: draining a node quiesces its parents
 * (a BlockBackend stops its device, a filter node above is drained
 * without polling) so nobody sends new I/O into it; its children keep
 * serving the requests already in flight above them.
 *
 * Called from a coroutine, a drain cannot poll (the coroutine would be
 * waiting for itself): bdrv_co_yield_to_drain() hands the job to a BH in
 * the main loop and yields; the BH drains, then aio_co_wake()s it.
 *
 * Where QEMU differs: QEMU takes the graph read lock around the poll
 * conditions and has a replay mode that turns drain_all into a no-op.
 */
#include <errno.h>
#include "block/block_int.h"
#include "util/thread.h"
#include "util/trace-internal.h"

/* How many bdrv_drain_all_begin() sections are open (main loop). */
int bdrv_drain_all_count;

static void bdrv_do_drained_begin(BlockDriverState *bs, BdrvChild *parent,
                                  bool poll);
static void bdrv_do_drained_end(BlockDriverState *bs, BdrvChild *parent);

void bdrv_inc_in_flight(BlockDriverState *bs)
{
    REQUIRE_NONNULL(bs);
    qatomic_inc(&bs->in_flight);
}

void bdrv_dec_in_flight(BlockDriverState *bs)
{
    /* The RMW publishes the request's accesses (release); a drain's poll
     * reads in_flight with acquire.  Then wake a main loop waiting for
     * in_flight to reach 0 (QEMU's bdrv_wakeup). */
    REQUIRE_NONNULL(bs);
    qatomic_dec(&bs->in_flight);
    aio_wait_kick();
}

/* --- parents -------------------------------------------------------------- */

void bdrv_parent_drained_begin_single(BdrvChild *c)
{
    AIOLAB_ASSERT(!c->quiesced_parent, "edge '%s' quiesced twice", c->name);
    c->quiesced_parent = true;
    if (c->klass->drained_begin) {
        c->klass->drained_begin(c);
    }
}

void bdrv_parent_drained_end_single(BdrvChild *c)
{
    AIOLAB_ASSERT(c->quiesced_parent, "edge '%s' released twice", c->name);
    c->quiesced_parent = false;
    if (c->klass->drained_end) {
        c->klass->drained_end(c);
    }
}

static void bdrv_parent_drained_begin(BlockDriverState *bs, BdrvChild *ignore)
{
    BdrvChild *c, *next;

    QLIST_FOREACH_SAFE(c, &bs->parents, next_parent, next) {
        if (c != ignore) {
            bdrv_parent_drained_begin_single(c);
        }
    }
}

static void bdrv_parent_drained_end(BlockDriverState *bs, BdrvChild *ignore)
{
    BdrvChild *c, *next;

    QLIST_FOREACH_SAFE(c, &bs->parents, next_parent, next) {
        if (c != ignore) {
            bdrv_parent_drained_end_single(c);
        }
    }
}

static bool bdrv_parent_drained_poll(BlockDriverState *bs, BdrvChild *ignore,
                                     bool ignore_bds_parents)
{
    BdrvChild *c;
    bool busy = false;

    QLIST_FOREACH(c, &bs->parents, next_parent) {
        if (c == ignore || (ignore_bds_parents && c->klass->parent_is_bds)) {
            continue;
        }
        if (c->klass->drained_poll) {
            busy |= c->klass->drained_poll(c);
        }
    }
    return busy;
}

/*
 * Is @bs busy: a request in flight in it, or in a parent (recursively for
 * parent nodes; for a BlockBackend: its own requests, or its device)?
 */
bool bdrv_drain_poll(BlockDriverState *bs, BdrvChild *ignore_parent,
                     bool ignore_bds_parents)
{
    if (bdrv_parent_drained_poll(bs, ignore_parent, ignore_bds_parents)) {
        return true;
    }
    /* Pairs with the RMW in bdrv_dec_in_flight(). */
    return qatomic_load_acquire(&bs->in_flight) != 0;
}

/* --- from a coroutine: bounce to the main loop ---------------------------- */

typedef struct BdrvCoDrainData {
    Coroutine *co;
    BlockDriverState *bs;           /* NULL: drain_all */
    BdrvChild *parent;
    bool begin;
    bool poll;
    bool done;
} BdrvCoDrainData;

static void bdrv_co_drain_bh_cb(void *opaque)
{
    BdrvCoDrainData *data = opaque;
    Coroutine *co = data->co;
    BlockDriverState *bs = data->bs;

    if (bs) {
        bdrv_dec_in_flight(bs);
        if (data->begin) {
            bdrv_do_drained_begin(bs, data->parent, data->poll);
        } else {
            bdrv_do_drained_end(bs, data->parent);
        }
    } else if (data->begin) {
        bdrv_drain_all_begin();
    } else {
        bdrv_drain_all_end();
    }
    data->done = true;
    /* Last touch of *data: it lives on the coroutine's stack. */
    aio_co_wake(co);
}

static void coroutine_fn bdrv_co_yield_to_drain(BlockDriverState *bs,
                                                bool begin, BdrvChild *parent,
                                                bool poll)
{
    BdrvCoDrainData data = {
        .co = qemu_coroutine_self(),
        .bs = bs,
        .parent = parent,
        .begin = begin,
        .poll = poll,
    };

    /* Keep @bs from changing context or going away meanwhile. */
    if (bs) {
        bdrv_inc_in_flight(bs);
    }
    aio_bh_schedule_oneshot(qemu_get_aio_context(), bdrv_co_drain_bh_cb,
                            &data);
    qemu_coroutine_yield();
    AIOLAB_ASSERT(data.done, "a coroutine waiting for a drain in the main "
                  "loop was woken by something else");
}

/* --- begin and end ----------------------------------------------------- */

static void bdrv_do_drained_begin(BlockDriverState *bs, BdrvChild *parent,
                                  bool poll)
{
    if (qemu_in_coroutine()) {
        bdrv_co_yield_to_drain(bs, true, parent, poll);
        return;
    }
    GLOBAL_STATE_CODE();
    /* Written in the main loop only; atomic because request coroutines
     * of any thread read it.  Stop things in parent-to-child order. */
    if (qatomic_fetch_add(&bs->quiesce_counter, 1) == 0) {
        bdrv_parent_drained_begin(bs, parent);
        if (bs->drv && bs->drv->bdrv_drain_begin) {
            bs->drv->bdrv_drain_begin(bs);
        }
    }
    if (poll) {
        AIO_WAIT_WHILE(bdrv_get_aio_context(bs),
                       bdrv_drain_poll(bs, parent, false));
    }
}

/* Quiesce @bs and its parents, without polling (a parent node's
 * drained_begin callback). */
void bdrv_do_drained_begin_quiesce(BlockDriverState *bs, BdrvChild *parent)
{
    bdrv_do_drained_begin(bs, parent, false);
}

static void bdrv_do_drained_end(BlockDriverState *bs, BdrvChild *parent)
{
    if (qemu_in_coroutine()) {
        bdrv_co_yield_to_drain(bs, false, parent, false);
        return;
    }
    if (unlikely(qatomic_read(&bs->quiesce_counter) <= 0)) {
        aiolab_die("bdrv_drained_end", "called on node '%s', which is not "
                   "drained (quiesce_counter is 0) " RULE_DRAIN_BALANCE,
                   bs->node_name);
    }
    if (qatomic_fetch_sub(&bs->quiesce_counter, 1) == 1) {
        if (bs->drv && bs->drv->bdrv_drain_end) {
            bs->drv->bdrv_drain_end(bs);
        }
        bdrv_parent_drained_end(bs, parent);
    }
}

void bdrv_drained_begin(BlockDriverState *bs)
{
    REQUIRE_LIVE(bs, BDS_MAGIC, "BlockDriverState");
    if (!qemu_in_coroutine()) {
        GLOBAL_STATE_CODE();
    }
    trace_begin(TE_DRAINED_BEGIN, bs->trace_name,
                qatomic_read(&bs->quiesce_counter));
    bdrv_do_drained_begin(bs, NULL, true);
    trace_end(TE_DRAINED_BEGIN, bs->trace_name,
              qatomic_read(&bs->quiesce_counter));
}

void bdrv_drained_end(BlockDriverState *bs)
{
    REQUIRE_LIVE(bs, BDS_MAGIC, "BlockDriverState");
    if (!qemu_in_coroutine()) {
        GLOBAL_STATE_CODE();
    }
    bdrv_do_drained_end(bs, NULL);
    trace_instant(TE_DRAINED_END, bs->trace_name,
                  qatomic_read(&bs->quiesce_counter));
}

void bdrv_drain(BlockDriverState *bs)
{
    bdrv_drained_begin(bs);
    bdrv_drained_end(bs);
}

/* --- drain_all -------------------------------------------------------- */

static bool bdrv_drain_all_poll(void)
{
    BlockDriverState *bs = NULL;
    bool result = false;

    /* Parent nodes are themselves in the list: skip BDS parents. */
    while ((bs = bdrv_next_all_states(bs))) {
        result |= bdrv_drain_poll(bs, NULL, true);
    }
    return result;
}

void bdrv_drain_all_begin(void)
{
    BlockDriverState *bs = NULL;

    if (qemu_in_coroutine()) {
        bdrv_co_yield_to_drain(NULL, true, NULL, true);
        return;
    }
    GLOBAL_STATE_CODE();
    trace_begin(TE_DRAINED_BEGIN, "(all)", bdrv_drain_all_count);
    bdrv_drain_all_count++;
    /* Each node individually, so a node with a drained child counts
     * twice; nobody polls until all are quiesced. */
    while ((bs = bdrv_next_all_states(bs))) {
        bdrv_do_drained_begin(bs, NULL, false);
    }
    AIO_WAIT_WHILE(NULL, bdrv_drain_all_poll());
    trace_end(TE_DRAINED_BEGIN, "(all)", bdrv_drain_all_count);
}

void bdrv_drain_all_end(void)
{
    BlockDriverState *bs = NULL;

    if (qemu_in_coroutine()) {
        bdrv_co_yield_to_drain(NULL, false, NULL, false);
        return;
    }
    GLOBAL_STATE_CODE();
    if (unlikely(bdrv_drain_all_count <= 0)) {
        aiolab_die(__func__, "without a bdrv_drain_all_begin() "
                   RULE_DRAIN_BALANCE);
    }
    while ((bs = bdrv_next_all_states(bs))) {
        bdrv_do_drained_end(bs, NULL);
    }
    bdrv_drain_all_count--;
    trace_instant(TE_DRAINED_END, "(all)", bdrv_drain_all_count);
}

void bdrv_drain_all(void)
{
    bdrv_drain_all_begin();
    bdrv_drain_all_end();
}

/* A node deleted inside drain_all sections: end what they began. */
void bdrv_drain_all_end_quiesce(BlockDriverState *bs)
{
    GLOBAL_STATE_CODE();
    AIOLAB_ASSERT(bs->refcnt == 0, "node '%s' still referenced",
                  bs->node_name);
    while (bs->quiesce_counter) {
        bdrv_do_drained_end(bs, NULL);
    }
}
