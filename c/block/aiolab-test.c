/* SPDX-License-Identifier: MIT */
/*
 * block/aiolab-test.c - the "aiolab-test" driver: QEMU's unit tests'
 * bdrv_test (tests/unit/test-bdrv-drain.c), as a driver a test, a
 * notebook or a tutorial can open by name.
 *
 *   "driver=aiolab-test,size=64M,latency-ns=100000,file=<node>,
 *    backing=<node>,sleep-in-drain-begin=on,bh-indirection=<iothread id>"
 *
 * - drain_begin/drain_end count in drain_count: a test sees exactly when
 *   the driver callbacks run (0 -> 1 and 1 -> 0 only).
 * - sleep-in-drain-begin: drain_begin starts a coroutine that keeps the
 *   node busy (in_flight) for 100 us: the drain must wait for work the
 *   driver itself started.
 * - latency-ns: every request sleeps first, so it is still in flight
 *   when a drain begins.
 * - bh-indirection: a read then completes through a BH in that IOThread's
 *   context before returning: the drain must wait for work that finishes
 *   in another thread.
 * - file: requests go on to that child (a filter); without it reads
 *   return zeroes and writes vanish.  backing: a second child, only for
 *   the graph (drains propagate up from it).
 * - close asserts drain_count > 0: nodes are closed drained.
 * - aiolab_test_driver_set_drain_begin_hook(): a C test's function runs
 *   in drain_begin, before sleep-in-drain-begin's coroutine starts.  It
 *   stands in for QEMU's test-bdrv-drain giving an edge its own child
 *   class (detach/driver_cb): a drain callback that schedules a graph
 *   change, which only the drain's single poll may run.
 *
 * Where QEMU differs: QEMU's test driver lives in the test file; aiolab
 * builds it into the library so that Python can use it too.
 */
#include <errno.h>
#include <string.h>
#include "block/block_int.h"

typedef struct BDRVTestState {
    int64_t size;
    int64_t latency_ns;
    bool sleep_in_drain_begin;
    AioContext *bh_indirection_ctx;
    /* Main loop only. */
    AiolabTestDrainHook *drain_begin_hook;
    void *drain_begin_opaque;
    /* Main loop writes; atomic for readers in other threads. */
    int drain_count;
    /* Atomic: requests of any thread count. */
    int64_t reads, writes, flushes, other;
    int64_t drain_begins, drain_ends;
} BDRVTestState;

static int test_open(BlockDriverState *bs, BlockOpts *opts, int flags,
                     Error **errp)
{
    BDRVTestState *s = bs->opaque;
    const char *iothread_id;
    Error *local_err = NULL;

    s->size = 64LL << 20;
    if (!block_opts_get_size(opts, "size", &s->size, errp) ||
        !block_opts_get_int(opts, "latency-ns", 0, INT64_MAX,
                            &s->latency_ns, errp) ||
        !block_opts_get_bool(opts, "sleep-in-drain-begin",
                             &s->sleep_in_drain_begin, errp)) {
        return -EINVAL;
    }
    iothread_id = block_opts_get(opts, "bh-indirection");
    if (iothread_id) {
        IOThread *t = iothread_by_id(iothread_id);

        if (!t) {
            error_setg(errp, "No IOThread with id '%s'", iothread_id);
            return -EINVAL;
        }
        s->bh_indirection_ctx = iothread_get_aio_context(t);
    }
    bdrv_open_child_ref(bs, opts, "file", false, &local_err);
    if (!local_err) {
        bdrv_open_child_ref(bs, opts, "backing", false, &local_err);
    }
    if (local_err) {
        error_propagate(errp, local_err);
        return -EINVAL;
    }
    return 0;
}

static void test_close(BlockDriverState *bs)
{
    BDRVTestState *s = bs->opaque;

    AIOLAB_ASSERT(s->drain_count > 0, "node '%s' closed while not drained",
                  bs->node_name);
}

static int64_t test_getlength(BlockDriverState *bs)
{
    BDRVTestState *s = bs->opaque;

    return bs->file ? bdrv_getlength(bs->file->bs) : s->size;
}

static void coroutine_fn sleep_in_drain_begin(void *opaque)
{
    BlockDriverState *bs = opaque;

    qemu_co_sleep_ns(QEMU_CLOCK_REALTIME, 100000);
    bdrv_dec_in_flight(bs);
}

static void test_drain_begin(BlockDriverState *bs)
{
    BDRVTestState *s = bs->opaque;

    qatomic_inc(&s->drain_count);
    qatomic_inc(&s->drain_begins);
    if (s->drain_begin_hook) {
        s->drain_begin_hook(bs, s->drain_begin_opaque);
    }
    if (s->sleep_in_drain_begin) {
        Coroutine *co = qemu_coroutine_create(sleep_in_drain_begin, bs);

        bdrv_inc_in_flight(bs);
        aio_co_enter(bdrv_get_aio_context(bs), co);
    }
}

static void test_drain_end(BlockDriverState *bs)
{
    BDRVTestState *s = bs->opaque;

    qatomic_dec(&s->drain_count);
    qatomic_inc(&s->drain_ends);
}

static void co_reenter_bh(void *opaque)
{
    aio_co_wake(opaque);
}

static void coroutine_fn test_latency(BlockDriverState *bs)
{
    BDRVTestState *s = bs->opaque;

    if (s->latency_ns) {
        qemu_co_sleep_ns(QEMU_CLOCK_REALTIME, s->latency_ns);
    }
}

static int coroutine_fn test_co_preadv(BlockDriverState *bs, int64_t offset,
                                       int64_t bytes, QEMUIOVector *qiov,
                                       BdrvRequestFlags flags)
{
    BDRVTestState *s = bs->opaque;

    qatomic_inc(&s->reads);
    test_latency(bs);
    if (s->bh_indirection_ctx) {
        aio_bh_schedule_oneshot(s->bh_indirection_ctx, co_reenter_bh,
                                qemu_coroutine_self());
        qemu_coroutine_yield();
    }
    if (bs->file) {
        return bdrv_co_preadv(bs->file, offset, bytes, qiov, flags);
    }
    qemu_iovec_memset(qiov, 0, 0, bytes);
    return 0;
}

static int coroutine_fn test_co_pwritev(BlockDriverState *bs, int64_t offset,
                                        int64_t bytes, QEMUIOVector *qiov,
                                        BdrvRequestFlags flags)
{
    BDRVTestState *s = bs->opaque;

    qatomic_inc(&s->writes);
    test_latency(bs);
    return bs->file ? bdrv_co_pwritev(bs->file, offset, bytes, qiov, flags)
                    : 0;
}

static int coroutine_fn test_co_pwrite_zeroes(BlockDriverState *bs,
                                              int64_t offset, int64_t bytes,
                                              BdrvRequestFlags flags)
{
    BDRVTestState *s = bs->opaque;

    qatomic_inc(&s->other);
    test_latency(bs);
    return bs->file ? bdrv_co_pwrite_zeroes(bs->file, offset, bytes, flags)
                    : 0;
}

static int coroutine_fn test_co_pdiscard(BlockDriverState *bs,
                                         int64_t offset, int64_t bytes)
{
    BDRVTestState *s = bs->opaque;

    qatomic_inc(&s->other);
    return bs->file ? bdrv_co_pdiscard(bs->file, offset, bytes) : 0;
}

static int coroutine_fn test_co_flush(BlockDriverState *bs)
{
    BDRVTestState *s = bs->opaque;

    qatomic_inc(&s->flushes);
    test_latency(bs);
    return 0;                   /* the generic layer flushes children */
}

static int coroutine_fn test_co_truncate(BlockDriverState *bs,
                                         int64_t offset, bool exact,
                                         int prealloc, BdrvRequestFlags flags,
                                         Error **errp)
{
    BDRVTestState *s = bs->opaque;

    qatomic_inc(&s->other);
    if (bs->file) {
        return bdrv_co_truncate(bs->file, offset, exact, prealloc, flags,
                                errp);
    }
    s->size = offset;
    return 0;
}

const BlockDriver bdrv_aiolab_test = {
    .format_name = "aiolab-test",
    .instance_size = sizeof(BDRVTestState),
    .bdrv_open = test_open,
    .bdrv_close = test_close,
    .bdrv_getlength = test_getlength,
    .bdrv_co_preadv = test_co_preadv,
    .bdrv_co_pwritev = test_co_pwritev,
    .bdrv_co_pwrite_zeroes = test_co_pwrite_zeroes,
    .bdrv_co_pdiscard = test_co_pdiscard,
    .bdrv_co_flush_to_disk = test_co_flush,
    .bdrv_co_truncate = test_co_truncate,
    .bdrv_drain_begin = test_drain_begin,
    .bdrv_drain_end = test_drain_end,
};

bool aiolab_test_driver_get_stats(BlockDriverState *bs,
                                  AiolabTestDriverStats *stats)
{
    BDRVTestState *s;

    REQUIRE_LIVE(bs, BDS_MAGIC, "BlockDriverState");
    REQUIRE_NONNULL(stats);
    if (bs->drv != &bdrv_aiolab_test) {
        return false;
    }
    s = bs->opaque;
    stats->drain_count = qatomic_read(&s->drain_count);
    stats->reads = qatomic_read(&s->reads);
    stats->writes = qatomic_read(&s->writes);
    stats->flushes = qatomic_read(&s->flushes);
    stats->other = qatomic_read(&s->other);
    stats->drain_begins = qatomic_read(&s->drain_begins);
    stats->drain_ends = qatomic_read(&s->drain_ends);
    return true;
}

int aiolab_test_driver_get_drain_count(BlockDriverState *bs)
{
    AiolabTestDriverStats st;

    return aiolab_test_driver_get_stats(bs, &st) ? st.drain_count : -1;
}

bool aiolab_test_driver_set_drain_begin_hook(BlockDriverState *bs,
                                             AiolabTestDrainHook *hook,
                                             void *opaque)
{
    BDRVTestState *s;

    GLOBAL_STATE_CODE();
    REQUIRE_LIVE(bs, BDS_MAGIC, "BlockDriverState");
    if (bs->drv != &bdrv_aiolab_test) {
        return false;
    }
    s = bs->opaque;
    s->drain_begin_hook = hook;
    s->drain_begin_opaque = hook ? opaque : NULL;
    return true;
}
