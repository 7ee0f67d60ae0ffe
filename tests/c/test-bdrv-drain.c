/* SPDX-License-Identifier: MIT */
/*
 * tests/c/test-bdrv-drain.c - drained sections (catalogue section 3,
 * QEMU's tests/unit/test-bdrv-drain.c): driver callbacks and quiesce
 * counters, nesting, drain_all with nodes coming and going, IOThreads,
 * a "paused consumer" standing in for a block job, deletion in the
 * middle of a drain, attaching to a drained node, AioContext changes
 * inside a drain, drained_end never polling, replacing a child
 * mid-drain; and the misuse that must abort.
 *
 * The nodes are "aiolab-test" nodes (block/aiolab-test.c), QEMU's
 * bdrv_test driver: drain_count follows the driver callbacks.
 */
#include <errno.h>
#include <string.h>
#include <aiolab/aiolab.h>
#include "block-harness.h"

static int dc(BlockDriverState *bs)
{
    return aiolab_test_driver_get_drain_count(bs);
}

static int qc(BlockDriverState *bs)
{
    return bdrv_get_quiesce_counter(bs);
}

static void aio_ret_cb(void *opaque, int ret)
{
    int *aio_ret = opaque;

    *aio_ret = ret;
}

/* blk (main) -> "test-node" (reads sleep 100 us) -> backing "backing" */
typedef struct TestGraph {
    BlockBackend *blk;
    BlockDriverState *bs;
    BlockDriverState *backing;
} TestGraph;

static TestGraph test_setup(void)
{
    TestGraph g;

    g.backing = open_node("driver=aiolab-test,node-name=backing");
    g.bs = open_node("driver=aiolab-test,node-name=test-node,"
                     "backing=backing,latency-ns=100000");
    g.blk = blk_new(qemu_get_aio_context());
    ASSERT_EQ(blk_insert_bs(g.blk, g.bs, &error_abort), 0);
    return g;
}

static void test_teardown(TestGraph *g)
{
    blk_unref(g->blk);
    bdrv_unref(g->bs);
    bdrv_unref(g->backing);
}

/* Run @fn in a coroutine of the main context; poll until it is done. */
static bool co_done;
static void (*co_fn)(void);

static void coroutine_fn co_entry(void *opaque)
{
    co_fn();
    co_done = true;
}

static void call_in_coroutine(void (*fn)(void))
{
    co_fn = fn;
    co_done = false;
    qemu_coroutine_enter(qemu_coroutine_create(co_entry, NULL));
    while (!co_done) {
        aio_poll(qemu_get_aio_context(), true);
    }
}

/* --- 3.1: driver callbacks and quiesce counters ---------------------- */

static void test_drv_cb_common(enum drain_type type, bool recursive)
{
    TestGraph g = test_setup();
    QEMUIOVector qiov;
    BlockAIOCB *acb;
    int aio_ret;

    qemu_iovec_init_buf(&qiov, NULL, 0);
    ASSERT_EQ(dc(g.bs), 0);
    ASSERT_EQ(dc(g.backing), 0);

    /* Simple drain_begin/end */
    do_drain_begin(type, g.bs);
    ASSERT_EQ(dc(g.bs), 1);
    ASSERT_EQ(dc(g.backing), !!recursive);
    do_drain_end(type, g.bs);
    ASSERT_EQ(dc(g.bs), 0);
    ASSERT_EQ(dc(g.backing), 0);

    /* Now with a request in flight */
    aio_ret = -EINPROGRESS;
    acb = blk_aio_preadv(g.blk, 0, &qiov, 0, aio_ret_cb, &aio_ret);
    ASSERT_TRUE(acb != NULL);
    ASSERT_EQ(aio_ret, -EINPROGRESS);
    ASSERT_EQ(dc(g.bs), 0);
    ASSERT_EQ(dc(g.backing), 0);

    do_drain_begin(type, g.bs);
    ASSERT_EQ(aio_ret, 0);          /* the drain waited for it */
    ASSERT_EQ(bdrv_get_in_flight(g.bs), 0);
    ASSERT_EQ(blk_get_in_flight(g.blk), 0);
    ASSERT_EQ(dc(g.bs), 1);
    ASSERT_EQ(dc(g.backing), !!recursive);
    do_drain_end(type, g.bs);
    ASSERT_EQ(dc(g.bs), 0);
    ASSERT_EQ(dc(g.backing), 0);

    test_teardown(&g);
}

static void test_drv_cb_drain_all(void)
{
    block_test_setup();
    test_drv_cb_common(BDRV_DRAIN_ALL, true);
}

static void test_drv_cb_drain(void)
{
    block_test_setup();
    test_drv_cb_common(BDRV_DRAIN, false);
}

static void drv_cb_drain_all_body(void)
{
    test_drv_cb_common(BDRV_DRAIN_ALL, true);
}

static void drv_cb_drain_body(void)
{
    test_drv_cb_common(BDRV_DRAIN, false);
}

static void test_drv_cb_co_drain_all(void)
{
    block_test_setup();
    call_in_coroutine(drv_cb_drain_all_body);
}

static void test_drv_cb_co_drain(void)
{
    block_test_setup();
    call_in_coroutine(drv_cb_drain_body);
}

static void test_quiesce_common(enum drain_type type, bool recursive)
{
    TestGraph g = test_setup();

    ASSERT_EQ(qc(g.bs), 0);
    ASSERT_EQ(qc(g.backing), 0);
    do_drain_begin(type, g.bs);
    if (type == BDRV_DRAIN_ALL) {
        /* Its own drain, plus the one propagated up from its child. */
        ASSERT_EQ(qc(g.bs), 2);
    } else {
        ASSERT_EQ(qc(g.bs), 1);
    }
    ASSERT_EQ(qc(g.backing), !!recursive);
    do_drain_end(type, g.bs);
    ASSERT_EQ(qc(g.bs), 0);
    ASSERT_EQ(qc(g.backing), 0);
    test_teardown(&g);
}

static void test_quiesce_drain_all(void)
{
    block_test_setup();
    test_quiesce_common(BDRV_DRAIN_ALL, true);
}

static void test_quiesce_drain(void)
{
    block_test_setup();
    test_quiesce_common(BDRV_DRAIN, false);
}

static void quiesce_drain_all_body(void)
{
    test_quiesce_common(BDRV_DRAIN_ALL, true);
}

static void quiesce_drain_body(void)
{
    test_quiesce_common(BDRV_DRAIN, false);
}

static void test_quiesce_co_drain_all(void)
{
    block_test_setup();
    call_in_coroutine(quiesce_drain_all_body);
}

static void test_quiesce_co_drain(void)
{
    block_test_setup();
    call_in_coroutine(quiesce_drain_body);
}

static void test_nested(void)
{
    TestGraph g;
    enum drain_type outer, inner;

    block_test_setup();
    g = test_setup();
    for (outer = 0; outer <= BDRV_DRAIN; outer++) {
        for (inner = 0; inner <= BDRV_DRAIN; inner++) {
            int backing_quiesce = (outer == BDRV_DRAIN_ALL) +
                                  (inner == BDRV_DRAIN_ALL);

            ASSERT_EQ(qc(g.bs), 0);
            ASSERT_EQ(qc(g.backing), 0);
            ASSERT_EQ(dc(g.bs), 0);
            ASSERT_EQ(dc(g.backing), 0);

            do_drain_begin(outer, g.bs);
            do_drain_begin(inner, g.bs);

            ASSERT_EQ(qc(g.bs), 2 + !!backing_quiesce);
            ASSERT_EQ(qc(g.backing), backing_quiesce);
            ASSERT_EQ(dc(g.bs), 1);     /* callbacks on 0 -> 1 only */
            ASSERT_EQ(dc(g.backing), !!backing_quiesce);

            do_drain_end(inner, g.bs);
            do_drain_end(outer, g.bs);

            ASSERT_EQ(qc(g.bs), 0);
            ASSERT_EQ(qc(g.backing), 0);
            ASSERT_EQ(dc(g.bs), 0);
            ASSERT_EQ(dc(g.backing), 0);
        }
    }
    test_teardown(&g);
}

static void test_graph_change_drain_all(void)
{
    BlockBackend *blk_a, *blk_b;
    BlockDriverState *bs_a, *bs_b;

    block_test_setup();
    blk_a = blk_new(qemu_get_aio_context());
    bs_a = open_node("driver=aiolab-test,node-name=test-node-a");
    ASSERT_EQ(blk_insert_bs(blk_a, bs_a, &error_abort), 0);

    bdrv_drain_all_begin();
    ASSERT_EQ(qc(bs_a), 1);
    ASSERT_EQ(dc(bs_a), 1);

    /* A node created inside the section starts drained. */
    blk_b = blk_new(qemu_get_aio_context());
    bs_b = open_node("driver=aiolab-test,node-name=test-node-b");
    ASSERT_EQ(blk_insert_bs(blk_b, bs_b, &error_abort), 0);
    ASSERT_EQ(qc(bs_a), 1);
    ASSERT_EQ(qc(bs_b), 1);
    ASSERT_EQ(dc(bs_a), 1);
    ASSERT_EQ(dc(bs_b), 1);
    ASSERT_TRUE(blk_in_drain(blk_b));

    blk_unref(blk_a);
    ASSERT_EQ(qc(bs_a), 1);
    ASSERT_EQ(qc(bs_b), 1);
    ASSERT_EQ(dc(bs_a), 1);
    ASSERT_EQ(dc(bs_b), 1);

    /* Deleting a node still in the section (its close asserts that it is
     * drained). */
    bdrv_unref(bs_a);
    ASSERT_EQ(qc(bs_b), 1);
    ASSERT_EQ(dc(bs_b), 1);

    bdrv_drain_all_end();
    ASSERT_EQ(qc(bs_b), 0);
    ASSERT_EQ(dc(bs_b), 0);
    ASSERT_FALSE(blk_in_drain(blk_b));

    bdrv_unref(bs_b);
    blk_unref(blk_b);
}

/* --- 3.2: IOThreads --------------------------------------------------- */

typedef struct IOThreadData {
    BlockDriverState *bs;
    enum drain_type drain_type;
    int *aio_ret;
    bool co_done;
} IOThreadData;

/* In IOThread a: a synchronous flush there (it polls ctx_a), then let
 * the main thread's drain go on. */
static void iothread_flush_bh(void *opaque)
{
    IOThreadData *data = opaque;

    ASSERT_EQ(bdrv_flush(data->bs), 0);
    bdrv_dec_in_flight(data->bs);   /* incremented by the main thread */
}

static void coroutine_fn iothread_drain_co(void *opaque)
{
    IOThreadData *data = opaque;

    /* From a coroutine in IOThread a: this bounces to the main loop. */
    do_drain_begin(data->drain_type, data->bs);
    ASSERT_EQ(*data->aio_ret, 0);
    ASSERT_EQ(bdrv_get_in_flight(data->bs), 0);
    do_drain_end(data->drain_type, data->bs);
    __atomic_store_n(&data->co_done, true, __ATOMIC_SEQ_CST);
    aio_wait_kick();
}

static void test_iothread_common(enum drain_type drain_type, int drain_thread)
{
    IOThread *a = iothread_create("a", &error_abort);
    IOThread *b = iothread_create("b", &error_abort);
    AioContext *ctx_a = iothread_get_aio_context(a);
    BlockDriverState *bs;
    BlockBackend *blk;
    QEMUIOVector qiov;
    char buf[512];
    int aio_ret = -EINPROGRESS;
    IOThreadData data;

    bs = open_node("driver=aiolab-test,node-name=test-node,"
                   "latency-ns=100000,bh-indirection=b");
    blk = blk_new(qemu_get_aio_context());
    ASSERT_EQ(blk_insert_bs(blk, bs, &error_abort), 0);
    blk_set_disable_request_queuing(blk, true);
    ASSERT_EQ(blk_set_aio_context(blk, ctx_a, &error_abort), 0);
    ASSERT_PTR_EQ(bdrv_get_aio_context(bs), ctx_a);

    /* The request runs in the main context (where it is submitted) and
     * completes through a BH in IOThread b. */
    qemu_iovec_init_buf(&qiov, buf, sizeof(buf));
    ASSERT_TRUE(blk_aio_preadv(blk, 0, &qiov, 0, aio_ret_cb, &aio_ret));
    ASSERT_EQ(aio_ret, -EINPROGRESS);

    data = (IOThreadData){ .bs = bs, .drain_type = drain_type,
                           .aio_ret = &aio_ret };
    if (drain_thread == 0) {
        bdrv_inc_in_flight(bs);
        aio_bh_schedule_oneshot(ctx_a, iothread_flush_bh, &data);
        do_drain_begin(drain_type, bs);
        ASSERT_EQ(bdrv_get_in_flight(bs), 0);
        ASSERT_EQ(aio_ret, 0);
        do_drain_end(drain_type, bs);
    } else {
        aio_co_enter(ctx_a, qemu_coroutine_create(iothread_drain_co, &data));
        AIO_WAIT_WHILE(NULL, !__atomic_load_n(&data.co_done,
                                              __ATOMIC_SEQ_CST));
        ASSERT_EQ(aio_ret, 0);
    }
    ASSERT_EQ(qc(bs), 0);

    ASSERT_EQ(blk_set_aio_context(blk, qemu_get_aio_context(),
                                  &error_abort), 0);
    blk_unref(blk);
    bdrv_unref(bs);
    iothread_destroy(a);
    iothread_destroy(b);
}

static void test_iothread_drain_all(void)
{
    block_test_setup();
    test_iothread_common(BDRV_DRAIN_ALL, 0);
    /* QEMU skips this one ("drain_all only from the main loop thread");
     * aiolab bounces drain_all from a coroutine too. */
    test_iothread_common(BDRV_DRAIN_ALL, 1);
}

static void test_iothread_drain(void)
{
    block_test_setup();
    test_iothread_common(BDRV_DRAIN, 0);
    test_iothread_common(BDRV_DRAIN, 1);
}

/* --- 3.3 adapted: a paused consumer instead of a block job ----------------
 *
 * A "job" owns two BlockBackends (on its source and target nodes) with
 * dev_ops: drained_begin counts a pause, drained_poll reports it busy
 * until its coroutine reaches a pause point, drained_end resumes it.
 * pause_count, paused and the resume are protected by a mutex; the
 * coroutine parks itself under it (QEMU's job_pause_point in small).
 */
typedef struct TestJob {
    BlockBackend *blk_src;
    BlockBackend *blk_target;
    AioContext *ctx;
    Coroutine *co;
    pthread_mutex_t lock;
    int pause_count;                /* lock */
    bool paused;                    /* lock */
    bool resume_pending;            /* lock */
    bool busy;                      /* atomic */
    bool cancelled;                 /* atomic */
    bool done;                      /* atomic */
    int64_t n;                      /* atomic: iterations */
} TestJob;

static void job_drained_begin(void *opaque)
{
    TestJob *job = opaque;

    pthread_mutex_lock(&job->lock);
    job->pause_count++;
    pthread_mutex_unlock(&job->lock);
}

static bool job_drained_poll(void *opaque)
{
    TestJob *job = opaque;

    return __atomic_load_n(&job->busy, __ATOMIC_SEQ_CST);
}

static void job_drained_end(void *opaque)
{
    TestJob *job = opaque;
    bool wake;

    pthread_mutex_lock(&job->lock);
    ASSERT_GT(job->pause_count, 0);
    job->pause_count--;
    wake = job->pause_count == 0 && job->paused && !job->resume_pending;
    if (wake) {
        job->resume_pending = true;
    }
    pthread_mutex_unlock(&job->lock);
    if (wake) {
        /* Resumes later in the job's context: drained_end never runs
         * the job itself. */
        aio_co_wake(job->co);
    }
}

static const BlockDevOps job_dev_ops = {
    .drained_begin = job_drained_begin,
    .drained_poll = job_drained_poll,
    .drained_end = job_drained_end,
};

static void coroutine_fn consumer_pause_point(TestJob *job)
{
    pthread_mutex_lock(&job->lock);
    while (job->pause_count > 0) {
        job->paused = true;
        __atomic_store_n(&job->busy, false, __ATOMIC_SEQ_CST);
        pthread_mutex_unlock(&job->lock);
        aio_wait_kick();            /* the drain polls job->busy */
        qemu_coroutine_yield();
        pthread_mutex_lock(&job->lock);
        job->resume_pending = false;
    }
    job->paused = false;
    __atomic_store_n(&job->busy, true, __ATOMIC_SEQ_CST);
    pthread_mutex_unlock(&job->lock);
    aio_wait_kick();                /* the main loop may wait for !paused */
}

static void coroutine_fn job_entry(void *opaque)
{
    TestJob *job = opaque;
    char buf[512];

    __atomic_store_n(&job->busy, true, __ATOMIC_SEQ_CST);
    while (!__atomic_load_n(&job->cancelled, __ATOMIC_SEQ_CST)) {
        ASSERT_PTR_EQ(qemu_get_current_aio_context(), job->ctx);
        ASSERT_EQ(blk_co_pread(job->blk_src, 0, sizeof(buf), buf, 0), 0);
        ASSERT_EQ(blk_co_pwrite(job->blk_target, 0, sizeof(buf), buf, 0),
                  0);
        __atomic_fetch_add(&job->n, 1, __ATOMIC_SEQ_CST);
        aio_wait_kick();
        qemu_co_sleep_ns(QEMU_CLOCK_REALTIME, 1000000);
        consumer_pause_point(job);
    }
    __atomic_store_n(&job->busy, false, __ATOMIC_SEQ_CST);
    __atomic_store_n(&job->done, true, __ATOMIC_SEQ_CST);
    aio_wait_kick();
}

static BlockBackend *job_blk(TestJob *job, BlockDriverState *bs)
{
    BlockBackend *blk = blk_new(qemu_get_aio_context());

    ASSERT_EQ(blk_insert_bs(blk, bs, &error_abort), 0);
    blk_set_disable_request_queuing(blk, true);     /* as QEMU's jobs */
    blk_set_dev_ops(blk, &job_dev_ops, job);
    return blk;
}

static int consumer_get(TestJob *job, int *field)
{
    int v;

    pthread_mutex_lock(&job->lock);
    v = *field;
    pthread_mutex_unlock(&job->lock);
    return v;
}

static bool job_paused(TestJob *job)
{
    bool v;

    pthread_mutex_lock(&job->lock);
    v = job->paused;
    pthread_mutex_unlock(&job->lock);
    return v;
}

static void wait_for_iterations(TestJob *job)
{
    int64_t n = __atomic_load_n(&job->n, __ATOMIC_SEQ_CST);

    AIO_WAIT_WHILE(NULL, __atomic_load_n(&job->n, __ATOMIC_SEQ_CST) < n + 2);
}

static void test_consumer_common(enum drain_type drain_type,
                                 bool use_iothread)
{
    BlockDriverState *src_backing, *src, *src_overlay, *target;
    BlockBackend *blk_src;
    IOThread *iothread = NULL;
    TestJob job = { .busy = false };    /* until it runs */
    int drain_node;

    pthread_mutex_init(&job.lock, NULL);
    src_backing = open_node("driver=aiolab-test,node-name=src-backing");
    src = open_node("driver=aiolab-test,node-name=source,"
                    "backing=src-backing");
    src_overlay = open_node("driver=aiolab-test,node-name=src-overlay,"
                            "backing=source");
    target = open_node("driver=aiolab-test,node-name=target");
    blk_src = blk_new(qemu_get_aio_context());
    ASSERT_EQ(blk_insert_bs(blk_src, src_overlay, &error_abort), 0);

    job.blk_src = job_blk(&job, src);
    job.blk_target = job_blk(&job, target);
    job.ctx = qemu_get_aio_context();
    if (use_iothread) {
        iothread = iothread_create("job", &error_abort);
        job.ctx = iothread_get_aio_context(iothread);
        /* The job's own BlockBackends may move; blk_src follows (no
         * device attached). */
        ASSERT_EQ(blk_set_aio_context(job.blk_src, job.ctx, &error_abort),
                  0);
        ASSERT_EQ(blk_set_aio_context(job.blk_target, job.ctx,
                                      &error_abort), 0);
        ASSERT_PTR_EQ(blk_get_aio_context(blk_src), job.ctx);
        ASSERT_PTR_EQ(bdrv_get_aio_context(src_backing), job.ctx);
    }
    job.co = qemu_coroutine_create(job_entry, &job);
    aio_co_enter(job.ctx, job.co);
    wait_for_iterations(&job);

    for (drain_node = 0; drain_node < 3; drain_node++) {
        BlockDriverState *drain_bs = drain_node == 0 ? src :
                                     drain_node == 1 ? src_backing : target;

        ASSERT_EQ(consumer_get(&job, &job.pause_count), 0);
        ASSERT_FALSE(job_paused(&job));

        do_drain_begin(drain_type, drain_bs);
        /* drain_all: the job's two nodes each drained; a drain: one,
         * also when the drained node is below the job's (src-backing):
         * propagation goes up. */
        ASSERT_EQ(consumer_get(&job, &job.pause_count),
                  drain_type == BDRV_DRAIN_ALL ? 2 : 1);
        ASSERT_TRUE(job_paused(&job));
        ASSERT_FALSE(__atomic_load_n(&job.busy, __ATOMIC_SEQ_CST));
        ASSERT_EQ(blk_get_in_flight(job.blk_src), 0);

        do_drain_end(drain_type, drain_bs);
        ASSERT_EQ(consumer_get(&job, &job.pause_count), 0);
        /* drained_end never polls: the job resumes in its own time. */
        AIO_WAIT_WHILE(NULL, job_paused(&job));
        ASSERT_TRUE(__atomic_load_n(&job.busy, __ATOMIC_SEQ_CST) ||
                    !job_paused(&job));
        wait_for_iterations(&job);
    }

    __atomic_store_n(&job.cancelled, true, __ATOMIC_SEQ_CST);
    AIO_WAIT_WHILE(NULL, !__atomic_load_n(&job.done, __ATOMIC_SEQ_CST));
    if (use_iothread) {
        ASSERT_EQ(blk_set_aio_context(job.blk_src, qemu_get_aio_context(),
                                      &error_abort), 0);
        ASSERT_EQ(blk_set_aio_context(job.blk_target,
                                      qemu_get_aio_context(), &error_abort),
                  0);
    }
    blk_set_dev_ops(job.blk_src, NULL, NULL);
    blk_set_dev_ops(job.blk_target, NULL, NULL);
    blk_unref(job.blk_src);
    blk_unref(job.blk_target);
    blk_unref(blk_src);
    bdrv_unref(src_overlay);
    bdrv_unref(src);
    bdrv_unref(src_backing);
    bdrv_unref(target);
    if (iothread) {
        iothread_destroy(iothread);
    }
    pthread_mutex_destroy(&job.lock);
}

static void test_consumer_drain_all(void)
{
    block_test_setup();
    test_consumer_common(BDRV_DRAIN_ALL, false);
}

static void test_consumer_drain(void)
{
    block_test_setup();
    test_consumer_common(BDRV_DRAIN, false);
}

static void test_consumer_iothread_drain_all(void)
{
    block_test_setup();
    test_consumer_common(BDRV_DRAIN_ALL, true);
}

static void test_consumer_iothread_drain(void)
{
    block_test_setup();
    test_consumer_common(BDRV_DRAIN, true);
}

/* --- 3.4 adapted: deleting and detaching during the drain's poll ------- */

typedef struct DeleteData {
    BlockBackend *blk;
    BlockDriverState *top;
    bool detach_instead;
    bool done;
} DeleteData;

static void delete_bh(void *opaque)
{
    DeleteData *d = opaque;

    if (d->detach_instead) {
        BdrvChild *c = aiolab_bdrv_find_child(d->top, "file");

        ASSERT_TRUE(c != NULL);
        bdrv_unref_child(d->top, c);
    } else {
        blk_unref(d->blk);          /* the last reference to top */
        d->blk = NULL;
    }
    d->done = true;
}

static void delete_read_cb(void *opaque, int ret)
{
    ASSERT_EQ(ret, 0);
    /* A graph change scheduled from a completion: it runs while the
     * main loop still polls in the drain. */
    aio_bh_schedule_oneshot(qemu_get_aio_context(), delete_bh, opaque);
}

static void test_delete_by_drain(enum drain_type type, bool detach)
{
    BlockDriverState *wait, *top;
    DeleteData d = { .detach_instead = detach };
    QEMUIOVector qiov;
    char buf[65536];

    block_test_setup();
    wait = open_node("driver=aiolab-test,node-name=wait,latency-ns=100000");
    top = open_node("driver=aiolab-test,node-name=top,file=wait");
    d.top = top;
    d.blk = blk_new(qemu_get_aio_context());
    ASSERT_EQ(blk_insert_bs(d.blk, top, &error_abort), 0);
    if (!detach) {
        bdrv_unref(top);            /* the BlockBackend holds it now */
    }
    ASSERT_EQ(aiolab_bdrv_get_refcnt(wait), 2);

    qemu_iovec_init_buf(&qiov, buf, sizeof(buf));
    ASSERT_TRUE(blk_aio_preadv(d.blk, 0, &qiov, 0, delete_read_cb, &d));
    if (type == BDRV_DRAIN_ALL) {
        bdrv_drain_all_begin();
        bdrv_drain_all_end();
    } else {
        bdrv_drain(wait);
    }
    /* The BH ran during or right after the drain's poll. */
    while (!d.done) {
        aio_poll(qemu_get_aio_context(), true);
    }
    ASSERT_EQ(aiolab_bdrv_get_refcnt(wait), 1);
    ASSERT_EQ(aiolab_bdrv_parent_count(wait), 0);
    ASSERT_EQ(qc(wait), 0);
    ASSERT_EQ(bdrv_get_in_flight(wait), 0);
    if (detach) {
        ASSERT_TRUE(aiolab_bdrv_find_child(top, "file") == NULL);
        ASSERT_EQ(qc(top), 0);
        blk_unref(d.blk);
        bdrv_unref(top);
    }
    ASSERT_TRUE(bdrv_find_node("top") == NULL);
    bdrv_unref(wait);
}

static void test_delete_by_drain_drain(void)
{
    test_delete_by_drain(BDRV_DRAIN, false);
}

static void test_detach_by_drain_all(void)
{
    test_delete_by_drain(BDRV_DRAIN_ALL, true);
}

static void test_detach_by_drain(void)
{
    test_delete_by_drain(BDRV_DRAIN, true);
}

/*
 * 3.4 detach/parent_cb: a request's completion callback changes the
 * graph through a BH (B leaves PB, C joins it) while the test drains PB,
 * A, B and C one after the other.  Graph:
 *
 *     blk -> PA -> A <- PB -> B          and C alone
 *
 * Whichever drain's poll runs the BH (A's waits for the read through PA,
 * B's for the in-flight count the callback took on B; here it is B's, so
 * the edge PB-B that B's drain has just quiesced goes away in the middle
 * of that drain), the counters and references end as in QEMU: PB keeps no
 * quiesce from B, and C joined PB before C's drain quiesced it.
 */
typedef struct DetachData {
    BlockDriverState *parent_b, *b, *c;
    BdrvChild *child_b, *child_c;
    bool bh_ran;
    BlockDriverState *parent_a, *a;
    /* detach/driver_cb only */
    bool detach_on_drain;           /* armed: the next drain_begin fires */
    int hook_calls;                 /* PA's drain_begin calls while hooked */
    int bh_dc_a, bh_qc_a, bh_qc_pa, bh_qc_pb, bh_in_flight_b;
} DetachData;

/*
 * The graph above, with @pa_opts appended to PA's options: blk (returned)
 * holds PA, d's nodes and d->child_b are set, *@child_a is PB-A.
 */
static BlockBackend *detach_graph_new(DetachData *d, const char *pa_opts,
                                      BdrvChild **child_a)
{
    BlockBackend *blk;

    d->parent_a = open_node("driver=aiolab-test,node-name=parent-a,"
                            "latency-ns=100000%s", pa_opts);
    d->parent_b = open_node("driver=aiolab-test,node-name=parent-b");
    d->a = open_node("driver=aiolab-test,node-name=a");
    d->b = open_node("driver=aiolab-test,node-name=b");
    d->c = open_node("driver=aiolab-test,node-name=c");
    blk = blk_new(qemu_get_aio_context());
    ASSERT_EQ(blk_insert_bs(blk, d->parent_a, &error_abort), 0);
    bdrv_unref(d->parent_a);

    d->child_b = aiolab_bdrv_attach_child(d->parent_b, d->b, "PB-B",
                                          &error_abort);
    *child_a = aiolab_bdrv_attach_child(d->parent_b, d->a, "PB-A",
                                        &error_abort);
    ASSERT_TRUE(aiolab_bdrv_attach_child(d->parent_a, d->a, "PA-A",
                                         &error_abort));
    /* Attaching PA-A quiesced PA for a moment: if PA's driver sleeps in
     * drain_begin, let the sleep finish. */
    while (bdrv_get_in_flight(d->parent_a)) {
        aio_poll(qemu_get_aio_context(), true);
    }
    ASSERT_EQ(aiolab_bdrv_get_refcnt(d->parent_a), 1);
    ASSERT_EQ(aiolab_bdrv_get_refcnt(d->parent_b), 1);
    ASSERT_EQ(aiolab_bdrv_get_refcnt(d->a), 3);
    ASSERT_EQ(aiolab_bdrv_get_refcnt(d->b), 2);
    ASSERT_EQ(aiolab_bdrv_get_refcnt(d->c), 1);
    return blk;
}

/* The graph gone: PB, then blk with PA; A, B and C back to one
 * reference each (the test's), then released. */
static void detach_graph_free(DetachData *d, BlockBackend *blk)
{
    bdrv_unref(d->parent_b);
    blk_unref(blk);
    ASSERT_EQ(aiolab_bdrv_get_refcnt(d->a), 1);
    ASSERT_EQ(aiolab_bdrv_get_refcnt(d->b), 1);
    ASSERT_EQ(aiolab_bdrv_get_refcnt(d->c), 1);
    bdrv_unref(d->a);
    bdrv_unref(d->b);
    bdrv_unref(d->c);
}

static void detach_indirect_bh(void *opaque)
{
    DetachData *d = opaque;

    bdrv_dec_in_flight(d->b);
    bdrv_unref_child(d->parent_b, d->child_b);
    d->child_c = aiolab_bdrv_attach_child(d->parent_b, d->c, "PB-C",
                                          &error_abort);
    d->bh_ran = true;
}

static void detach_by_parent_aio_cb(void *opaque, int ret)
{
    DetachData *d = opaque;

    ASSERT_EQ(ret, 0);
    bdrv_inc_in_flight(d->b);
    aio_bh_schedule_oneshot(qemu_get_current_aio_context(),
                            detach_indirect_bh, d);
}

static void test_detach_by_parent_cb(void)
{
    BlockDriverState *pa, *pb, *a, *b, *c;
    BlockBackend *blk;
    BdrvChild *child_a;
    DetachData d = { 0 };
    QEMUIOVector qiov;
    char buf[512];

    block_test_setup();
    blk = detach_graph_new(&d, "", &child_a);
    pa = d.parent_a;
    pb = d.parent_b;
    a = d.a;
    b = d.b;
    c = d.c;

    qemu_iovec_init_buf(&qiov, buf, sizeof(buf));
    ASSERT_TRUE(blk_aio_preadv(blk, 0, &qiov, 0, detach_by_parent_aio_cb,
                               &d));
    ASSERT_FALSE(d.bh_ran);

    bdrv_drained_begin(pb);
    ASSERT_FALSE(d.bh_ran);         /* nothing in flight in PB: no poll */
    bdrv_drained_begin(a);
    bdrv_drained_begin(b);
    bdrv_drained_begin(c);
    ASSERT_TRUE(d.bh_ran);
    ASSERT_TRUE(d.child_c != NULL);
    ASSERT_EQ(aiolab_bdrv_get_refcnt(pa), 1);
    ASSERT_EQ(aiolab_bdrv_get_refcnt(pb), 1);
    ASSERT_EQ(aiolab_bdrv_get_refcnt(a), 3);
    ASSERT_EQ(aiolab_bdrv_get_refcnt(b), 1);
    ASSERT_EQ(aiolab_bdrv_get_refcnt(c), 2);
    ASSERT_TRUE(aiolab_bdrv_find_child(pb, "PB-B") == NULL);
    ASSERT_PTR_EQ(aiolab_bdrv_find_child(pb, "PB-C"), d.child_c);
    ASSERT_PTR_EQ(aiolab_bdrv_find_child(pb, "PB-A"), child_a);
    ASSERT_PTR_EQ(aiolab_bdrv_child_bs(d.child_c), c);
    ASSERT_EQ(aiolab_bdrv_parent_count(b), 0);
    ASSERT_EQ(qc(pa), 1);           /* from A */
    ASSERT_EQ(qc(pb), 3);           /* its own, from A, from C */
    ASSERT_EQ(qc(a), 1);
    ASSERT_EQ(qc(b), 1);
    ASSERT_EQ(qc(c), 1);
    ASSERT_EQ(bdrv_get_in_flight(b), 0);
    ASSERT_EQ(blk_get_in_flight(blk), 0);

    bdrv_drained_end(c);
    bdrv_drained_end(b);
    bdrv_drained_end(a);
    bdrv_drained_end(pb);
    ASSERT_EQ(qc(pa), 0);
    ASSERT_EQ(qc(pb), 0);
    ASSERT_EQ(qc(a), 0);
    ASSERT_EQ(qc(b), 0);
    ASSERT_EQ(qc(c), 0);

    detach_graph_free(&d, blk);
}

/*
 * 3.4 detach/driver_cb: the same graph change (B leaves PB, C joins it),
 * scheduled this time from a driver's drain callback.  PA's driver
 * (aiolab-test, sleep-in-drain-begin) runs a hook in its drain_begin that
 * takes an in-flight count on B and schedules the BH, then starts its
 * 100 us sleep, so PA is busy.  The rule under test: a driver's
 * drain_begin is called without polling; the only poll is the top-level
 * drain's, after all of its callbacks.  A drain that polled for the
 * driver's own work right after calling it (QEMU's bdrv_drain_invoke()
 * once did) would run the graph change inside A's parent walk.
 *
 * QEMU gives the edge PA-A a child class whose drained_begin schedules
 * the BH before quiescing PA (whose driver sleeps).  aiolab has no public
 * child classes; PA's drain_begin runs at the same moment, when the edge
 * PA-A quiesces PA during A's drained_begin, so the hook is on PA's
 * driver.  It fires once (armed after the graph is built: attaching PA-A
 * quiesces PA for a moment too), as QEMU's detach_on_drain.
 *
 * The BH records what it finds, which is what a polling callback breaks:
 * A's drain must have finished every callback - both parents quiesced (PA
 * 1, PB 2: its own and from A) and A's own driver called (drain_count 1,
 * the last step before the poll).  Then the counters and references end
 * as in QEMU (the same as detach/parent_cb).
 */
static void detach_by_driver_cb_bh(void *opaque)
{
    DetachData *d = opaque;

    d->bh_dc_a = dc(d->a);
    d->bh_qc_a = qc(d->a);
    d->bh_qc_pa = qc(d->parent_a);
    d->bh_qc_pb = qc(d->parent_b);
    d->bh_in_flight_b = bdrv_get_in_flight(d->b);
    detach_indirect_bh(d);
}

static void detach_by_driver_cb_drain_begin(BlockDriverState *bs,
                                            void *opaque)
{
    DetachData *d = opaque;

    ASSERT_PTR_EQ(bs, d->parent_a);
    d->hook_calls++;
    if (!d->detach_on_drain) {
        return;
    }
    d->detach_on_drain = false;
    bdrv_inc_in_flight(d->b);
    aio_bh_schedule_oneshot(qemu_get_current_aio_context(),
                            detach_by_driver_cb_bh, d);
}

static void test_detach_by_driver_cb(void)
{
    BlockDriverState *pa, *pb, *a, *b, *c;
    BlockBackend *blk;
    BdrvChild *child_a;
    DetachData d = { 0 };
    QEMUIOVector qiov;
    char buf[512];
    int aio_ret = -EINPROGRESS;

    block_test_setup();
    blk = detach_graph_new(&d, ",sleep-in-drain-begin=on", &child_a);
    pa = d.parent_a;
    pb = d.parent_b;
    a = d.a;
    b = d.b;
    c = d.c;
    ASSERT_EQ(qc(pa) + qc(pb) + qc(a) + qc(b) + qc(c), 0);
    ASSERT_EQ(dc(pa) + dc(pb) + dc(a) + dc(b) + dc(c), 0);

    d.detach_on_drain = true;
    ASSERT_TRUE(aiolab_test_driver_set_drain_begin_hook(
        pa, detach_by_driver_cb_drain_begin, &d));
    qemu_iovec_init_buf(&qiov, buf, sizeof(buf));
    ASSERT_TRUE(blk_aio_preadv(blk, 0, &qiov, 0, aio_ret_cb, &aio_ret));
    ASSERT_EQ(aio_ret, -EINPROGRESS);
    ASSERT_EQ(blk_get_in_flight(blk), 1);

    /* PB: nothing in flight in it or above it, no poll; PA untouched. */
    bdrv_drained_begin(pb);
    ASSERT_EQ(d.hook_calls, 0);
    ASSERT_FALSE(d.bh_ran);
    ASSERT_EQ(aio_ret, -EINPROGRESS);
    ASSERT_EQ(qc(pa), 0);
    ASSERT_EQ(qc(pb), 1);
    ASSERT_EQ(qc(a), 0);
    ASSERT_EQ(dc(pb), 1);
    ASSERT_EQ(aiolab_bdrv_get_refcnt(b), 2);
    ASSERT_EQ(aiolab_bdrv_get_refcnt(c), 1);

    /* A: quiesces PA (whose drain_begin hooks the BH and sleeps) and PB,
     * then polls once, for the read, PA's sleep and the BH. */
    bdrv_drained_begin(a);
    ASSERT_EQ(d.hook_calls, 1);
    ASSERT_TRUE(d.bh_ran);
    ASSERT_EQ(d.bh_dc_a, 1);        /* the BH ran in A's poll, not in */
    ASSERT_EQ(d.bh_qc_a, 1);        /* a callback of A's drain */
    ASSERT_EQ(d.bh_qc_pa, 1);
    ASSERT_EQ(d.bh_qc_pb, 2);
    ASSERT_EQ(d.bh_in_flight_b, 1); /* the hook's count, until the BH */
    ASSERT_EQ(aio_ret, 0);          /* the drain waited for the read */
    ASSERT_EQ(blk_get_in_flight(blk), 0);
    ASSERT_EQ(bdrv_get_in_flight(pa), 0);
    ASSERT_EQ(bdrv_get_in_flight(a), 0);
    ASSERT_EQ(bdrv_get_in_flight(b), 0);
    ASSERT_TRUE(aiolab_bdrv_find_child(pb, "PB-B") == NULL);
    ASSERT_PTR_EQ(aiolab_bdrv_find_child(pb, "PB-C"), d.child_c);
    ASSERT_PTR_EQ(aiolab_bdrv_find_child(pb, "PB-A"), child_a);
    ASSERT_PTR_EQ(aiolab_bdrv_child_bs(d.child_c), c);
    ASSERT_EQ(aiolab_bdrv_parent_count(a), 2);
    ASSERT_EQ(aiolab_bdrv_parent_count(b), 0);
    ASSERT_EQ(aiolab_bdrv_parent_count(c), 1);
    ASSERT_EQ(aiolab_bdrv_get_refcnt(a), 3);
    ASSERT_EQ(aiolab_bdrv_get_refcnt(b), 1);
    ASSERT_EQ(aiolab_bdrv_get_refcnt(c), 2);
    ASSERT_EQ(qc(pa), 1);           /* from A */
    ASSERT_EQ(qc(pb), 2);           /* its own, from A */
    ASSERT_EQ(qc(a), 1);
    ASSERT_EQ(qc(b), 0);
    ASSERT_EQ(qc(c), 0);
    ASSERT_EQ(dc(pa), 1);
    ASSERT_EQ(dc(a), 1);

    /* B: no longer PB's child, so PB gets nothing from it. */
    bdrv_drained_begin(b);
    ASSERT_EQ(qc(b), 1);
    ASSERT_EQ(qc(pb), 2);
    ASSERT_EQ(dc(b), 1);

    /* C: PB's child now. */
    bdrv_drained_begin(c);
    ASSERT_EQ(d.hook_calls, 1);
    ASSERT_EQ(aiolab_bdrv_get_refcnt(pa), 1);
    ASSERT_EQ(aiolab_bdrv_get_refcnt(pb), 1);
    ASSERT_EQ(aiolab_bdrv_get_refcnt(a), 3);
    ASSERT_EQ(aiolab_bdrv_get_refcnt(b), 1);
    ASSERT_EQ(aiolab_bdrv_get_refcnt(c), 2);
    ASSERT_EQ(qc(pa), 1);           /* from A */
    ASSERT_EQ(qc(pb), 3);           /* its own, from A, from C */
    ASSERT_EQ(qc(a), 1);
    ASSERT_EQ(qc(b), 1);
    ASSERT_EQ(qc(c), 1);
    ASSERT_EQ(dc(c), 1);

    /* The ends in QEMU's order; only 1 -> 0 calls the drivers. */
    bdrv_drained_end(pb);
    ASSERT_EQ(qc(pb), 2);
    ASSERT_EQ(dc(pb), 1);
    bdrv_drained_end(a);
    ASSERT_EQ(qc(pa), 0);
    ASSERT_EQ(qc(pb), 1);
    ASSERT_EQ(qc(a), 0);
    ASSERT_EQ(dc(pa), 0);
    ASSERT_EQ(dc(a), 0);
    bdrv_drained_end(b);
    ASSERT_EQ(qc(b), 0);
    ASSERT_EQ(dc(b), 0);
    bdrv_drained_end(c);
    ASSERT_EQ(qc(pb), 0);
    ASSERT_EQ(qc(c), 0);
    ASSERT_EQ(dc(pb), 0);
    ASSERT_EQ(dc(c), 0);
    ASSERT_EQ(d.hook_calls, 1);     /* drain_end does not call it */
    ASSERT_EQ(aiolab_bdrv_get_refcnt(b), 1);
    ASSERT_EQ(aiolab_bdrv_get_refcnt(c), 2);

    /* Closing PA drains it: without the hook from here on. */
    ASSERT_TRUE(aiolab_test_driver_set_drain_begin_hook(pa, NULL, NULL));
    detach_graph_free(&d, blk);
    ASSERT_EQ(d.hook_calls, 1);
}

/* A node of another driver has no such hook. */
static void test_drain_begin_hook_other_driver(void)
{
    BlockDriverState *bs;

    block_test_setup();
    bs = bdrv_open(NULL, NULL, "driver=null-co,node-name=n", BDRV_O_RDWR,
                   &error_abort);
    ASSERT_FALSE(aiolab_test_driver_set_drain_begin_hook(
        bs, detach_by_driver_cb_drain_begin, NULL));
    bdrv_unref(bs);
}

/* --- 3.5: attach, set-context, drained_end, replace ------------------- */

static void test_append_to_drained(void)
{
    BlockBackend *blk;
    BlockDriverState *base, *overlay;

    block_test_setup();
    blk = blk_new(qemu_get_aio_context());
    base = open_node("driver=aiolab-test,node-name=base");
    ASSERT_EQ(blk_insert_bs(blk, base, &error_abort), 0);

    bdrv_drained_begin(base);
    ASSERT_EQ(qc(base), 1);
    ASSERT_EQ(dc(base), 1);
    ASSERT_EQ(bdrv_get_in_flight(base), 0);

    /* bdrv_append(): the overlay gets base as backing child, then takes
     * base's place under the BlockBackend. */
    overlay = open_node("driver=aiolab-test,node-name=overlay,backing=base");
    ASSERT_EQ(bdrv_replace_node(base, overlay, &error_abort), 0);
    ASSERT_PTR_EQ(blk_bs(blk), overlay);

    ASSERT_EQ(bdrv_get_in_flight(base), 0);
    ASSERT_EQ(bdrv_get_in_flight(overlay), 0);
    ASSERT_EQ(qc(base), 1);
    ASSERT_EQ(dc(base), 1);
    /* A parent attached to a drained child is quiesced. */
    ASSERT_EQ(qc(overlay), 1);
    ASSERT_EQ(dc(overlay), 1);
    ASSERT_TRUE(aiolab_bdrv_child_quiesced_parent(
                    aiolab_bdrv_find_child(overlay, "backing")));
    ASSERT_TRUE(blk_in_drain(blk));

    bdrv_drained_end(base);
    ASSERT_EQ(qc(base), 0);
    ASSERT_EQ(dc(base), 0);
    ASSERT_EQ(qc(overlay), 0);
    ASSERT_EQ(dc(overlay), 0);
    ASSERT_FALSE(blk_in_drain(blk));

    blk_unref(blk);
    bdrv_unref(base);
    bdrv_unref(overlay);
}

static void test_set_aio_context(void)
{
    IOThread *a, *b;
    AioContext *ctx_a, *ctx_b;
    BlockDriverState *bs;

    block_test_setup();
    a = iothread_create("a", &error_abort);
    b = iothread_create("b", &error_abort);
    ctx_a = iothread_get_aio_context(a);
    ctx_b = iothread_get_aio_context(b);
    bs = open_node("driver=aiolab-test,node-name=test-node");

    bdrv_drained_begin(bs);
    ASSERT_EQ(bdrv_try_change_aio_context(bs, ctx_a, NULL, &error_abort), 0);
    ASSERT_PTR_EQ(bdrv_get_aio_context(bs), ctx_a);
    ASSERT_EQ(qc(bs), 1);           /* the change's own drain is over */
    bdrv_drained_end(bs);

    bdrv_drained_begin(bs);
    ASSERT_EQ(bdrv_try_change_aio_context(bs, ctx_b, NULL, &error_abort), 0);
    ASSERT_EQ(bdrv_try_change_aio_context(bs, qemu_get_aio_context(), NULL,
                                          &error_abort), 0);
    bdrv_drained_end(bs);
    ASSERT_PTR_EQ(bdrv_get_aio_context(bs), qemu_get_aio_context());
    ASSERT_EQ(qc(bs), 0);

    bdrv_unref(bs);
    iothread_destroy(a);
    iothread_destroy(b);
}

/* drained_end never polls: what its callbacks schedule runs later. */
typedef struct EndData {
    BlockDriverState *parent;
    bool bh_ran;
} EndData;

static void graph_change_bh(void *opaque)
{
    EndData *d = opaque;

    /* A graph change right after the drain: detach the parent's child. */
    bdrv_unref_child(d->parent, aiolab_bdrv_find_child(d->parent, "file"));
    d->bh_ran = true;
}

static void end_drained_end(void *opaque)
{
    aio_bh_schedule_oneshot(qemu_get_aio_context(), graph_change_bh, opaque);
}

static const BlockDevOps end_dev_ops = {
    .drained_end = end_drained_end,
};

static void test_drained_end_no_poll(void)
{
    BlockDriverState *child, *parent[3];
    BlockBackend *blk;
    EndData d = { 0 };
    int i;

    block_test_setup();
    child = open_node("driver=aiolab-test,node-name=child");
    for (i = 0; i < 3; i++) {
        parent[i] = open_node("driver=aiolab-test,node-name=parent-node-%d,"
                              "file=child", i);
    }
    d.parent = parent[2];
    blk = blk_new(qemu_get_aio_context());
    ASSERT_EQ(blk_insert_bs(blk, parent[2], &error_abort), 0);
    blk_set_dev_ops(blk, &end_dev_ops, &d);

    bdrv_drained_begin(child);
    ASSERT_FALSE(d.bh_ran);
    ASSERT_EQ(aiolab_bdrv_parent_count(child), 3);
    bdrv_drained_end(child);
    ASSERT_FALSE(d.bh_ran);         /* scheduled, not run */
    ASSERT_EQ(aiolab_bdrv_parent_count(child), 3);
    aio_poll(qemu_get_aio_context(), false);
    ASSERT_TRUE(d.bh_ran);
    ASSERT_EQ(aiolab_bdrv_parent_count(child), 2);

    blk_set_dev_ops(blk, NULL, NULL);
    blk_unref(blk);
    for (i = 0; i < 3; i++) {
        bdrv_unref(parent[i]);
    }
    bdrv_unref(child);
}

/*
 * replace_child/mid-drain: the parent stays quiesced across the switch
 * whenever either child is drained, and no read reaches a drained child.
 */
static void do_test_replace_child_mid_drain(int old_drain_count,
                                            int new_drain_count)
{
    BlockDriverState *parent, *old_child, *new_child;
    AiolabTestDriverStats before, st, old_st, new_st;
    BlockBackend *blk;
    QEMUIOVector qiov;
    char buf[512];
    int aio_ret = -EINPROGRESS, i;

    old_child = open_node("driver=aiolab-test,node-name=old-child");
    new_child = open_node("driver=aiolab-test,node-name=new-child");
    parent = open_node("driver=aiolab-test,node-name=parent,file=old-child,"
                       "latency-ns=100000");
    blk = blk_new(qemu_get_aio_context());
    ASSERT_EQ(blk_insert_bs(blk, parent, &error_abort), 0);

    for (i = 0; i < old_drain_count; i++) {
        bdrv_drained_begin(old_child);
    }
    for (i = 0; i < new_drain_count; i++) {
        bdrv_drained_begin(new_child);
    }
    if (!old_drain_count) {
        /* A read that sleeps in the parent before going to the child: the
         * drain below must let it reach old_child first. */
        qemu_iovec_init_buf(&qiov, buf, sizeof(buf));
        ASSERT_TRUE(blk_aio_preadv(blk, 0, &qiov, 0, aio_ret_cb, &aio_ret));
    }
    ASSERT_TRUE(aiolab_test_driver_get_stats(parent, &before));
    ASSERT_EQ(qc(parent), old_drain_count);

    bdrv_drained_begin(old_child);
    bdrv_drained_begin(new_child);
    ASSERT_EQ(bdrv_replace_node(old_child, new_child, &error_abort), 0);
    bdrv_drained_end(new_child);
    bdrv_drained_end(old_child);
    ASSERT_EQ(qc(parent), new_drain_count);

    ASSERT_TRUE(aiolab_test_driver_get_stats(parent, &st));
    ASSERT_EQ(st.drain_begins > before.drain_begins, !old_drain_count);
    ASSERT_EQ(st.drain_ends > before.drain_ends, !new_drain_count);

    ASSERT_TRUE(aiolab_test_driver_get_stats(old_child, &old_st));
    ASSERT_TRUE(aiolab_test_driver_get_stats(new_child, &new_st));
    ASSERT_EQ(old_st.reads, !old_drain_count);     /* before the switch */
    ASSERT_EQ(new_st.reads, 0);
    if (!old_drain_count) {
        ASSERT_EQ(aio_ret, 0);
    }

    for (i = 0; i < old_drain_count; i++) {
        bdrv_drained_end(old_child);
    }
    for (i = 0; i < new_drain_count; i++) {
        bdrv_drained_end(new_child);
    }
    ASSERT_EQ(qc(parent), 0);
    ASSERT_EQ(blk_pread(blk, 0, sizeof(buf), buf, 0), 0);
    ASSERT_TRUE(aiolab_test_driver_get_stats(new_child, &new_st));
    ASSERT_EQ(new_st.reads, 1);     /* now reads reach the new child */

    blk_unref(blk);
    bdrv_unref(parent);
    bdrv_unref(old_child);
    bdrv_unref(new_child);
}

static void test_replace_child_mid_drain(void)
{
    int old, new;

    block_test_setup();
    for (old = 0; old < 2; old++) {
        for (new = 0; new < 2; new++) {
            do_test_replace_child_mid_drain(old, new);
        }
    }
}

/* A driver's drain_begin that starts work of its own: the drain waits. */
static void test_sleep_in_drain_begin(void)
{
    BlockDriverState *bs;

    block_test_setup();
    bs = open_node("driver=aiolab-test,node-name=sleepy,"
                   "sleep-in-drain-begin=on");
    bdrv_drained_begin(bs);
    ASSERT_EQ(bdrv_get_in_flight(bs), 0);
    ASSERT_EQ(dc(bs), 1);
    bdrv_drained_end(bs);
    bdrv_unref(bs);
}

/* --- misuse ----------------------------------------------------------- */

static void drain_in_iothread_bh(void *opaque)
{
    bdrv_drained_begin(opaque);     /* not a coroutine, no BQL: abort */
}

static void death_drain_from_iothread(void)
{
    IOThread *t;
    BlockDriverState *bs;

    block_test_setup();
    t = iothread_create("t", &error_abort);
    bs = open_node("driver=null-co,node-name=n0");
    aio_bh_schedule_oneshot(iothread_get_aio_context(t),
                            drain_in_iothread_bh, bs);
    for (;;) {
        aio_poll(qemu_get_aio_context(), true);
    }
}

static void death_drain_all_from_iothread_bh(void *opaque)
{
    bdrv_drain_all_begin();
}

static void death_drain_all_from_iothread(void)
{
    IOThread *t;

    block_test_setup();
    t = iothread_create("t", &error_abort);
    aio_bh_schedule_oneshot(iothread_get_aio_context(t),
                            death_drain_all_from_iothread_bh, NULL);
    for (;;) {
        aio_poll(qemu_get_aio_context(), true);
    }
}

static void death_unbalanced_drained_end(void)
{
    BlockDriverState *bs;

    block_test_setup();
    bs = open_node("driver=null-co,node-name=n0");
    bdrv_drained_begin(bs);
    bdrv_drained_end(bs);
    bdrv_drained_end(bs);
}

/*
 * An option the driver does not know is refused after the driver opened
 * the node, so the node is closed the way every node is: drained first
 * (the aiolab-test driver's close asserts it), inside drain_all too, and
 * with a child, which is left as it was.  The old code called the
 * driver's close directly and aborted "closed while not drained".
 */
static void expect_unknown_option(const char *options)
{
    Error *err = NULL;

    ASSERT_TRUE(bdrv_open(NULL, NULL, options, BDRV_O_RDWR, &err) == NULL);
    ASSERT_TRUE(err != NULL);
    ASSERT_STR_CONTAINS(error_get_pretty(err), "Block format 'aiolab-test' "
                        "does not support the option 'bogus'");
    error_free(err);
    ASSERT_TRUE(bdrv_find_node("t") == NULL);
}

static void test_open_unknown_option(void)
{
    BlockDriverState *base;

    block_test_setup();
    base = open_node("driver=aiolab-test,node-name=base");
    expect_unknown_option("driver=aiolab-test,node-name=t,bogus=1");
    expect_unknown_option("driver=aiolab-test,node-name=t,file=base,bogus=1");
    ASSERT_EQ(aiolab_bdrv_parent_count(base), 0);
    ASSERT_EQ(qc(base), 0);
    ASSERT_EQ(dc(base), 0);

    /* Born drained by drain_all, refused, closed: the section's count
     * on the surviving node is untouched and ends cleanly. */
    bdrv_drain_all_begin();
    expect_unknown_option("driver=aiolab-test,node-name=t,bogus=1");
    expect_unknown_option("driver=aiolab-test,node-name=t,file=base,bogus=1");
    ASSERT_EQ(qc(base), 1);
    ASSERT_EQ(dc(base), 1);
    bdrv_drain_all_end();
    ASSERT_EQ(qc(base), 0);
    ASSERT_EQ(dc(base), 0);
    ASSERT_EQ(aiolab_bdrv_parent_count(base), 0);
    ASSERT_EQ(aiolab_bdrv_list(NULL, 0), 1);
    bdrv_unref(base);
    ASSERT_EQ(aiolab_bdrv_list(NULL, 0), 0);
}

static void death_unbalanced_drain_all_end(void)
{
    block_test_setup();
    bdrv_drain_all_end();
}

static void death_drain_without_bql(void)
{
    BlockDriverState *bs;

    block_test_setup();
    bs = open_node("driver=null-co,node-name=n0");
    bql_unlock();
    bdrv_drained_begin(bs);
}

static const TestCase tests[] = {
    { "/bdrv-drain/driver-cb/drain_all", test_drv_cb_drain_all },
    { "/bdrv-drain/driver-cb/drain", test_drv_cb_drain },
    { "/bdrv-drain/driver-cb/co/drain_all", test_drv_cb_co_drain_all },
    { "/bdrv-drain/driver-cb/co/drain", test_drv_cb_co_drain },
    { "/bdrv-drain/quiesce/drain_all", test_quiesce_drain_all },
    { "/bdrv-drain/quiesce/drain", test_quiesce_drain },
    { "/bdrv-drain/quiesce/co/drain_all", test_quiesce_co_drain_all },
    { "/bdrv-drain/quiesce/co/drain", test_quiesce_co_drain },
    { "/bdrv-drain/nested", test_nested },
    { "/bdrv-drain/graph-change/drain_all", test_graph_change_drain_all },
    { "/bdrv-drain/iothread/drain_all", test_iothread_drain_all },
    { "/bdrv-drain/iothread/drain", test_iothread_drain },
    { "/bdrv-drain/consumer/drain_all", test_consumer_drain_all },
    { "/bdrv-drain/consumer/drain", test_consumer_drain },
    { "/bdrv-drain/consumer/iothread/drain_all",
      test_consumer_iothread_drain_all },
    { "/bdrv-drain/consumer/iothread/drain", test_consumer_iothread_drain },
    { "/bdrv-drain/deletion/drain", test_delete_by_drain_drain },
    { "/bdrv-drain/detach/drain_all", test_detach_by_drain_all },
    { "/bdrv-drain/detach/drain", test_detach_by_drain },
    { "/bdrv-drain/detach/parent_cb", test_detach_by_parent_cb },
    { "/bdrv-drain/detach/driver_cb", test_detach_by_driver_cb },
    { "/bdrv-drain/detach/driver_cb/other-driver",
      test_drain_begin_hook_other_driver },
    { "/bdrv-drain/attach/drain", test_append_to_drained },
    { "/bdrv-drain/set_aio_context", test_set_aio_context },
    { "/bdrv-drain/drained_end/no-poll", test_drained_end_no_poll },
    { "/bdrv-drain/replace_child/mid-drain", test_replace_child_mid_drain },
    { "/bdrv-drain/sleep-in-drain-begin", test_sleep_in_drain_begin },
    { "/bdrv-drain/open/unknown-option", test_open_unknown_option },
    { "/bdrv-drain/death/drain-from-iothread", death_drain_from_iothread,
      .death = "bdrv_drained_begin() requires the BQL (GLOBAL_STATE_CODE" },
    { "/bdrv-drain/death/drain-all-from-iothread",
      death_drain_all_from_iothread,
      .death = "bdrv_drain_all_begin() requires the BQL (GLOBAL_STATE_CODE" },
    { "/bdrv-drain/death/unbalanced-end", death_unbalanced_drained_end,
      .death = "bdrv_drained_end() called on node 'n0', which is not "
               "drained" },
    { "/bdrv-drain/death/unbalanced-drain-all-end",
      death_unbalanced_drain_all_end,
      .death = "bdrv_drain_all_end() without a bdrv_drain_all_begin()" },
    { "/bdrv-drain/death/no-bql", death_drain_without_bql,
      .death = "bdrv_drained_begin() requires the BQL" },
    { NULL }
};

int main(int argc, char **argv)
{
    return harness_main(argc, argv, tests);
}
