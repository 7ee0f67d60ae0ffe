/* SPDX-License-Identifier: MIT */
/*
 * tests/c/test-block-iothread.c - nodes in IOThreads (catalogue section
 * 4, QEMU's tests/unit/test-block-iothread.c): synchronous requests from
 * the main thread on a node homed in an IOThread; attaching nodes and
 * BlockBackends across contexts; AioContext changes propagating through
 * the graph (diamonds included), refused by a device, all or nothing;
 * AioContext notifiers, and a consumer that follows its node between
 * threads with them.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <aiolab/aiolab.h>
#include "block-harness.h"

static IOThread *iothread;
static AioContext *ctx;
static AioContext *main_ctx;

static void setup(void)
{
    block_test_setup();
    iothread = iothread_create("io", &error_abort);
    ctx = iothread_get_aio_context(iothread);
    main_ctx = qemu_get_aio_context();
}

/* --- 4.1: synchronous requests on a node in an IOThread ---------------- */

typedef void SyncOpFn(BlockBackend *blk);

static void sync_op_pread(BlockBackend *blk)
{
    char buf[512];

    ASSERT_EQ(blk_pread(blk, 0, sizeof(buf), buf, 0), 0);
    ASSERT_EQ(blk_pread(blk, -2, sizeof(buf), buf, 0), -EIO);
    ASSERT_EQ(blk_pread(blk, 65536 - 256, sizeof(buf), buf, 0), -EIO);
    ASSERT_EQ(blk_pread(blk, INT64_MAX - 100, sizeof(buf), buf, 0), -EIO);
}

static void sync_op_pwrite(BlockBackend *blk)
{
    char buf[512] = { 0 };

    ASSERT_EQ(blk_pwrite(blk, 0, sizeof(buf), buf, 0), 0);
    ASSERT_EQ(blk_pwrite(blk, -2, sizeof(buf), buf, 0), -EIO);
    ASSERT_EQ(blk_pwrite(blk, 65536, 1, buf, 0), -EIO);
}

static void sync_op_preadv(BlockBackend *blk)
{
    char buf[512] = { 0 };
    QEMUIOVector qiov;

    qemu_iovec_init_buf(&qiov, buf, sizeof(buf));
    ASSERT_EQ(blk_preadv(blk, 0, sizeof(buf), &qiov, 0), 0);
    ASSERT_EQ(blk_preadv(blk, -2, sizeof(buf), &qiov, 0), -EIO);
}

static void sync_op_pwritev(BlockBackend *blk)
{
    char buf[512] = { 0 };
    QEMUIOVector qiov;

    qemu_iovec_init_buf(&qiov, buf, sizeof(buf));
    ASSERT_EQ(blk_pwritev(blk, 0, sizeof(buf), &qiov, 0), 0);
    ASSERT_EQ(blk_pwritev(blk, -2, sizeof(buf), &qiov, 0), -EIO);
}

static void sync_op_pwrite_zeroes(BlockBackend *blk)
{
    ASSERT_EQ(blk_pwrite_zeroes(blk, 0, 512, 0), 0);
    ASSERT_EQ(blk_pwrite_zeroes(blk, -2, 512, 0), -EIO);
}

static void sync_op_pdiscard(BlockBackend *blk)
{
    /* discard=ignore (the default): early success. */
    ASSERT_EQ(blk_pdiscard(blk, 0, 512), 0);
    ASSERT_EQ(blk_pdiscard(blk, -2, 512), -EIO);
}

static void sync_op_truncate(BlockBackend *blk)
{
    Error *err = NULL;

    ASSERT_EQ(blk_truncate(blk, 65536, false, 0, 0, &error_abort), 0);
    ASSERT_EQ(blk_truncate(blk, -2, false, 0, 0, &err), -EINVAL);
    ASSERT_STR_CONTAINS(error_get_pretty(err), "cannot be negative");
    error_free(err);
}

static void sync_op_flush(BlockBackend *blk)
{
    ASSERT_EQ(blk_flush(blk), 0);
}

static void test_sync_op(const char *options, SyncOpFn *fn)
{
    BlockBackend *blk;
    BlockDriverState *bs;

    setup();
    blk = blk_new(main_ctx);
    bs = open_node("%s", options);
    ASSERT_EQ(blk_insert_bs(blk, bs, &error_abort), 0);
    ASSERT_EQ(blk_set_aio_context(blk, ctx, &error_abort), 0);
    ASSERT_PTR_EQ(bdrv_get_aio_context(bs), ctx);

    /* From the main thread: the requests run in the main context and
     * complete there; nothing deadlocks. */
    fn(blk);
    ASSERT_EQ(bdrv_get_in_flight(bs), 0);
    ASSERT_EQ(blk_get_in_flight(blk), 0);

    ASSERT_EQ(blk_set_aio_context(blk, main_ctx, &error_abort), 0);
    blk_unref(blk);
    bdrv_unref(bs);
    iothread_destroy(iothread);
}

#define BASE "driver=aiolab-test,node-name=base,size=64K"

static void test_sync_op_pread(void)
{
    test_sync_op(BASE, sync_op_pread);
}

static void test_sync_op_pwrite(void)
{
    test_sync_op(BASE, sync_op_pwrite);
}

static void test_sync_op_preadv(void)
{
    test_sync_op(BASE, sync_op_preadv);
}

static void test_sync_op_pwritev(void)
{
    test_sync_op(BASE, sync_op_pwritev);
}

static void test_sync_op_pwrite_zeroes(void)
{
    test_sync_op(BASE, sync_op_pwrite_zeroes);
}

static void test_sync_op_pdiscard(void)
{
    test_sync_op(BASE, sync_op_pdiscard);
}

static void test_sync_op_truncate(void)
{
    test_sync_op(BASE, sync_op_truncate);
}

static void test_sync_op_flush(void)
{
    test_sync_op(BASE, sync_op_flush);
}

/* Read-only: truncate -EACCES, flush an early 0, writes -EPERM. */
static void sync_op_read_only(BlockBackend *blk)
{
    char buf[512] = { 0 };
    Error *err = NULL;

    ASSERT_EQ(blk_truncate(blk, 65536, false, 0, 0, &err), -EACCES);
    ASSERT_STR_CONTAINS(error_get_pretty(err), "read-only");
    error_free(err);
    ASSERT_EQ(blk_flush(blk), 0);
    ASSERT_EQ(blk_pread(blk, 0, sizeof(buf), buf, 0), 0);
    ASSERT_EQ(blk_pwrite(blk, 0, sizeof(buf), buf, 0), -EPERM);
    ASSERT_EQ(blk_pwrite_zeroes(blk, 0, sizeof(buf), 0), -EPERM);
    ASSERT_EQ(blk_pdiscard(blk, 0, sizeof(buf)), -EPERM);
}

static void test_sync_op_read_only(void)
{
    test_sync_op(BASE ",read-only=on", sync_op_read_only);
}

/* The file backend, homed in an IOThread, used from the main thread. */
static char file_path[64];

static void make_file(size_t size)
{
    int fd;

    snprintf(file_path, sizeof(file_path), "/tmp/aiolab-iot-XXXXXX");
    fd = mkstemp(file_path);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(ftruncate(fd, size), 0);
    close(fd);
}

static void sync_op_file(BlockBackend *blk)
{
    char wbuf[4096], rbuf[4096];
    Error *err = NULL;

    unlink(file_path);          /* the node keeps it open */
    memset(wbuf, 0xa5, sizeof(wbuf));
    ASSERT_EQ(blk_pwrite(blk, 4096, sizeof(wbuf), wbuf, 0), 0);
    ASSERT_EQ(blk_flush(blk), 0);
    ASSERT_EQ(blk_pread(blk, 4096, sizeof(rbuf), rbuf, 0), 0);
    ASSERT_EQ(memcmp(wbuf, rbuf, sizeof(rbuf)), 0);
    ASSERT_EQ(blk_pdiscard(blk, 4096, 4096), 0);
    ASSERT_EQ(blk_pread(blk, 4096, sizeof(rbuf), rbuf, 0), 0);
    memset(wbuf, 0, sizeof(wbuf));
    ASSERT_EQ(memcmp(wbuf, rbuf, sizeof(rbuf)), 0);      /* a hole */
    ASSERT_EQ(blk_pread(blk, -2, 512, rbuf, 0), -EIO);
    ASSERT_EQ(blk_pread(blk, 65536, 1, rbuf, 0), -EIO);  /* beyond EOF */
    ASSERT_EQ(blk_truncate(blk, 131072, true, 0, 0, &error_abort), 0);
    ASSERT_EQ(blk_getlength(blk), 131072);
    ASSERT_EQ(blk_pread(blk, 65536, 512, rbuf, 0), 0);
    ASSERT_EQ(blk_truncate(blk, -2, true, 0, 0, &err), -EINVAL);
    error_free(err);
}

static void test_sync_op_file_threads(void)
{
    char opts[160];

    make_file(65536);
    snprintf(opts, sizeof(opts), "driver=file,filename=%s,discard=unmap,"
             "node-name=base", file_path);
    test_sync_op(opts, sync_op_file);
}

static void test_sync_op_file_io_uring(void)
{
    char opts[160];

    make_file(65536);
    snprintf(opts, sizeof(opts), "driver=file,filename=%s,discard=unmap,"
             "aio=io_uring,node-name=base", file_path);
    test_sync_op(opts, sync_op_file);
}

/* --- 4.2: attach and propagate ------------------------------------------ */

static void test_attach_second_node(void)
{
    BlockBackend *blk;
    BlockDriverState *bs, *filter;

    setup();
    blk = blk_new(ctx);
    bs = open_node("driver=aiolab-test,node-name=base");
    ASSERT_EQ(blk_insert_bs(blk, bs, &error_abort), 0);
    ASSERT_PTR_EQ(blk_get_aio_context(blk), ctx);
    ASSERT_PTR_EQ(bdrv_get_aio_context(bs), ctx);

    /* A filter opened on a node in an IOThread lives there too. */
    filter = open_node("driver=blkdebug,image=base,node-name=filter");
    ASSERT_PTR_EQ(bdrv_get_aio_context(filter), ctx);
    ASSERT_PTR_EQ(bdrv_get_aio_context(bs), ctx);

    ASSERT_EQ(blk_set_aio_context(blk, main_ctx, &error_abort), 0);
    ASSERT_PTR_EQ(blk_get_aio_context(blk), main_ctx);
    ASSERT_PTR_EQ(bdrv_get_aio_context(bs), main_ctx);
    ASSERT_PTR_EQ(bdrv_get_aio_context(filter), main_ctx);

    bdrv_unref(filter);
    bdrv_unref(bs);
    blk_unref(blk);
    iothread_destroy(iothread);
}

static void test_attach_preserve_blk_ctx(void)
{
    BlockBackend *blk;
    BlockDriverState *bs;

    setup();
    blk = blk_new(ctx);
    bs = open_node("driver=aiolab-test,node-name=base");
    ASSERT_EQ(blk_insert_bs(blk, bs, &error_abort), 0);
    ASSERT_PTR_EQ(blk_get_aio_context(blk), ctx);
    ASSERT_PTR_EQ(bdrv_get_aio_context(bs), ctx);

    /* Remove: the BlockBackend keeps its context, the node goes home. */
    blk_remove_bs(blk);
    ASSERT_PTR_EQ(blk_get_aio_context(blk), ctx);
    ASSERT_PTR_EQ(bdrv_get_aio_context(bs), main_ctx);

    ASSERT_EQ(blk_insert_bs(blk, bs, &error_abort), 0);
    ASSERT_PTR_EQ(blk_get_aio_context(blk), ctx);
    ASSERT_PTR_EQ(bdrv_get_aio_context(bs), ctx);

    ASSERT_EQ(blk_set_aio_context(blk, main_ctx, &error_abort), 0);
    blk_unref(blk);
    bdrv_unref(bs);
    iothread_destroy(iothread);
}

/* blk without a node: it just stores the context. */
static void test_blk_without_node(void)
{
    BlockBackend *blk;
    char buf[512];

    setup();
    blk = blk_new(NULL);
    ASSERT_PTR_EQ(blk_get_aio_context(blk), main_ctx);
    ASSERT_EQ(blk_set_aio_context(blk, ctx, &error_abort), 0);
    ASSERT_PTR_EQ(blk_get_aio_context(blk), ctx);
    ASSERT_EQ(blk_pread(blk, 0, sizeof(buf), buf, 0), -ENOMEDIUM);
    ASSERT_EQ(blk_getlength(blk), -ENOMEDIUM);
    ASSERT_EQ(blk_flush(blk), -ENOMEDIUM);
    blk_unref(blk);
    iothread_destroy(iothread);
}

static void test_propagate_basic(void)
{
    BlockBackend *blk;
    BlockDriverState *bs_a, *bs_b, *bs_verify;

    setup();
    /* blk -> bs_a <- verify -> bs_b: one connected graph. */
    bs_a = open_node("driver=aiolab-test,node-name=bs-a");
    bs_b = open_node("driver=aiolab-test,node-name=bs-b");
    blk = blk_new(main_ctx);
    ASSERT_EQ(blk_insert_bs(blk, bs_a, &error_abort), 0);
    bs_verify = open_node("driver=aiolab-test,node-name=verify,file=bs-a,"
                          "backing=bs-b");

    ASSERT_EQ(blk_set_aio_context(blk, ctx, &error_abort), 0);
    ASSERT_PTR_EQ(blk_get_aio_context(blk), ctx);
    ASSERT_PTR_EQ(bdrv_get_aio_context(bs_a), ctx);
    ASSERT_PTR_EQ(bdrv_get_aio_context(bs_verify), ctx);
    ASSERT_PTR_EQ(bdrv_get_aio_context(bs_b), ctx);

    /* And back, starting from the other end of the graph. */
    ASSERT_EQ(bdrv_try_change_aio_context(bs_b, main_ctx, NULL,
                                          &error_abort), 0);
    ASSERT_PTR_EQ(blk_get_aio_context(blk), main_ctx);
    ASSERT_PTR_EQ(bdrv_get_aio_context(bs_a), main_ctx);
    ASSERT_PTR_EQ(bdrv_get_aio_context(bs_verify), main_ctx);
    ASSERT_PTR_EQ(bdrv_get_aio_context(bs_b), main_ctx);
    ASSERT_EQ(bdrv_get_quiesce_counter(bs_a), 0);
    ASSERT_EQ(bdrv_get_quiesce_counter(bs_verify), 0);

    bdrv_unref(bs_verify);
    blk_unref(blk);
    bdrv_unref(bs_a);
    bdrv_unref(bs_b);
    iothread_destroy(iothread);
}

static void test_propagate_diamond(void)
{
    BlockBackend *blk;
    BlockDriverState *bs_a, *bs_b, *bs_c, *bs_verify;
    int round;

    setup();
    /*
     *         blk
     *          |
     *        verify
     *       /      \
     *    bs-b      bs-c
     *       \      /
     *         bs-a
     */
    bs_a = open_node("driver=aiolab-test,node-name=bs-a");
    bs_b = open_node("driver=aiolab-test,node-name=bs-b,file=bs-a");
    bs_c = open_node("driver=aiolab-test,node-name=bs-c,file=bs-a");
    bs_verify = open_node("driver=aiolab-test,node-name=verify,file=bs-b,"
                          "backing=bs-c");
    blk = blk_new(main_ctx);
    ASSERT_EQ(blk_insert_bs(blk, bs_verify, &error_abort), 0);

    for (round = 0; round < 2; round++) {
        AioContext *want = round == 0 ? ctx : main_ctx;

        ASSERT_EQ(blk_set_aio_context(blk, want, &error_abort), 0);
        ASSERT_PTR_EQ(blk_get_aio_context(blk), want);
        ASSERT_PTR_EQ(bdrv_get_aio_context(bs_verify), want);
        ASSERT_PTR_EQ(bdrv_get_aio_context(bs_a), want);
        ASSERT_PTR_EQ(bdrv_get_aio_context(bs_b), want);
        ASSERT_PTR_EQ(bdrv_get_aio_context(bs_c), want);
        ASSERT_EQ(bdrv_get_quiesce_counter(bs_a), 0);
    }

    blk_unref(blk);
    bdrv_unref(bs_verify);
    bdrv_unref(bs_c);
    bdrv_unref(bs_b);
    bdrv_unref(bs_a);
    iothread_destroy(iothread);
}

/* --- notifiers ----------------------------------------------------------- */

typedef struct NotifierLog {
    BlockDriverState *bs;
    char events[16][32];
    int n;
} NotifierLog;

static void log_detach(void *opaque)
{
    NotifierLog *log = opaque;

    /* Called drained, still in the old context. */
    ASSERT_GT(bdrv_get_quiesce_counter(log->bs), 0);
    snprintf(log->events[log->n++], 32, "detach:%s",
             aiolab_aio_context_get_name(bdrv_get_aio_context(log->bs)));
}

static void log_attach(AioContext *new_ctx, void *opaque)
{
    NotifierLog *log = opaque;

    ASSERT_GT(bdrv_get_quiesce_counter(log->bs), 0);
    ASSERT_PTR_EQ(bdrv_get_aio_context(log->bs), new_ctx);
    snprintf(log->events[log->n++], 32, "attach:%s",
             aiolab_aio_context_get_name(new_ctx));
}

static const BlockDevOps device_ops = { 0 };

/* What a device's BlockBackend says when it refuses a context change. */
#define BLK_REFUSED "Cannot change iothread of active block backend"

/* A change of @bs's graph to @ctx: refused (-EPERM), with the device's
 * message. */
static void expect_refused(BlockDriverState *bs, AioContext *ctx)
{
    Error *err = NULL;

    ASSERT_EQ(bdrv_try_change_aio_context(bs, ctx, NULL, &err), -EPERM);
    ASSERT_STR_EQ(error_get_pretty(err), BLK_REFUSED);
    error_free(err);
}

/*
 * propagate/refuse: a device's BlockBackend refuses a change made
 * through the graph, and nothing changes - not a context, not a
 * notifier, not a counter; through its own blk_set_aio_context() the
 * same change succeeds.
 */
static void test_propagate_refuse(void)
{
    BlockDriverState *src, *target, *filter;
    BlockBackend *dev_blk;
    NotifierLog log = { 0 };

    setup();
    src = open_node("driver=aiolab-test,node-name=src");
    target = open_node("driver=aiolab-test,node-name=target");
    filter = open_node("driver=aiolab-test,node-name=filter,file=src,"
                       "backing=target");
    dev_blk = blk_new(main_ctx);
    ASSERT_EQ(blk_insert_bs(dev_blk, src, &error_abort), 0);
    blk_set_dev_ops(dev_blk, &device_ops, NULL);
    log.bs = target;
    bdrv_add_aio_context_notifier(target, log_attach, log_detach, &log);

    expect_refused(target, ctx);
    ASSERT_PTR_EQ(bdrv_get_aio_context(src), main_ctx);
    ASSERT_PTR_EQ(bdrv_get_aio_context(target), main_ctx);
    ASSERT_PTR_EQ(bdrv_get_aio_context(filter), main_ctx);
    ASSERT_PTR_EQ(blk_get_aio_context(dev_blk), main_ctx);
    ASSERT_EQ(log.n, 0);
    ASSERT_EQ(bdrv_get_quiesce_counter(src), 0);
    ASSERT_EQ(bdrv_get_quiesce_counter(target), 0);
    ASSERT_EQ(bdrv_get_quiesce_counter(filter), 0);

    /* The device's own move is allowed, and takes everything along. */
    ASSERT_EQ(blk_set_aio_context(dev_blk, ctx, &error_abort), 0);
    ASSERT_PTR_EQ(bdrv_get_aio_context(src), ctx);
    ASSERT_PTR_EQ(bdrv_get_aio_context(target), ctx);
    ASSERT_PTR_EQ(bdrv_get_aio_context(filter), ctx);
    ASSERT_PTR_EQ(blk_get_aio_context(dev_blk), ctx);
    ASSERT_EQ(log.n, 2);
    ASSERT_STR_EQ(log.events[0], "detach:main");
    ASSERT_STR_EQ(log.events[1], "attach:IO io");

    /* Without a device attached, the BlockBackend follows. */
    blk_set_dev_ops(dev_blk, NULL, NULL);
    ASSERT_EQ(bdrv_try_change_aio_context(target, main_ctx, NULL,
                                          &error_abort), 0);
    ASSERT_PTR_EQ(blk_get_aio_context(dev_blk), main_ctx);
    ASSERT_EQ(log.n, 4);
    ASSERT_STR_EQ(log.events[2], "detach:IO io");
    ASSERT_STR_EQ(log.events[3], "attach:main");

    bdrv_remove_aio_context_notifier(target, log_attach, log_detach, &log);
    blk_unref(dev_blk);
    bdrv_unref(filter);
    bdrv_unref(src);
    bdrv_unref(target);
    iothread_destroy(iothread);
}

/*
 * propagate/allow-change (QEMU's /propagate/mirror, adapted): who may be
 * moved by a change that comes through the graph.  A BlockBackend with
 * BlockDevOps (a device) refuses unless its user allowed the change; then
 * it follows, and refuses again once the permission is withdrawn.
 * blk_set_aio_context() moves its own BlockBackend whatever the setting,
 * and leaves the setting as it found it.  One refusing BlockBackend among
 * several on the graph stops the whole change: the others, allowed or
 * not, are neither moved nor notified.  A BlockBackend without BlockDevOps
 * follows (aiolab's stand-in for QEMU's named BlockBackend without a
 * device; aiolab has no BlockBackend names: docs/qemu-map.md).
 */
static void expect_all_in(BlockDriverState **nodes, BlockBackend **blks,
                          AioContext *want)
{
    for (; *nodes; nodes++) {
        ASSERT_PTR_EQ(bdrv_get_aio_context(*nodes), want);
        ASSERT_EQ(bdrv_get_quiesce_counter(*nodes), 0);
    }
    for (; *blks; blks++) {
        ASSERT_PTR_EQ(blk_get_aio_context(*blks), want);
    }
}

/* A change of @bs's graph to @ctx: done, and all of @nodes and @blks
 * (NULL-terminated) are in @ctx. */
static void expect_moved(BlockDriverState *bs, AioContext *ctx,
                         BlockDriverState **nodes, BlockBackend **blks)
{
    ASSERT_EQ(bdrv_try_change_aio_context(bs, ctx, NULL, &error_abort), 0);
    expect_all_in(nodes, blks, ctx);
}

static void test_propagate_allow_change(void)
{
    BlockDriverState *src, *target, *filter;
    BlockBackend *user, *other;
    NotifierLog log = { 0 }, other_log = { 0 };
    Error *err = NULL;
    BlockDriverState *nodes[4];
    BlockBackend *blks[2], *both[3];

    setup();
    src = open_node("driver=aiolab-test,node-name=src");
    target = open_node("driver=aiolab-test,node-name=target");
    filter = open_node("driver=aiolab-test,node-name=filter,file=src,"
                       "backing=target");
    user = blk_new(main_ctx);
    ASSERT_EQ(blk_insert_bs(user, src, &error_abort), 0);
    log.bs = src;
    blk_add_aio_context_notifier(user, log_attach, log_detach, &log);
    nodes[0] = src;
    nodes[1] = target;
    nodes[2] = filter;
    nodes[3] = NULL;
    blks[0] = user;
    blks[1] = NULL;

    /* No BlockDevOps: the BlockBackend follows its node, both ways. */
    expect_moved(target, ctx, nodes, blks);
    expect_moved(target, main_ctx, nodes, blks);
    ASSERT_EQ(log.n, 4);

    /* A device: refused, nothing moved, nobody notified or drained. */
    blk_set_dev_ops(user, &device_ops, NULL);
    expect_refused(target, ctx);
    expect_all_in(nodes, blks, main_ctx);
    ASSERT_EQ(log.n, 4);

    /* ... unless its user allows the change: then it follows. */
    blk_set_allow_aio_context_change(user, true);
    expect_moved(target, ctx, nodes, blks);
    ASSERT_EQ(log.n, 6);
    ASSERT_STR_EQ(log.events[4], "detach:main");
    ASSERT_STR_EQ(log.events[5], "attach:IO io");

    /* Permission withdrawn: refused again, from either end. */
    blk_set_allow_aio_context_change(user, false);
    expect_refused(src, main_ctx);
    expect_all_in(nodes, blks, ctx);
    ASSERT_EQ(log.n, 6);

    /* Its own move is allowed, and the setting is restored after it. */
    ASSERT_EQ(blk_set_aio_context(user, main_ctx, &error_abort), 0);
    expect_all_in(nodes, blks, main_ctx);
    ASSERT_EQ(log.n, 8);
    expect_refused(target, ctx);
    expect_all_in(nodes, blks, main_ctx);

    /*
     * A second BlockBackend, on target, that allows the change: the
     * device on src still refuses it for the whole graph, and the
     * allowed one is neither moved nor notified; through the allowed
     * one's own blk_set_aio_context() the device refuses too.
     */
    other = blk_new(main_ctx);
    ASSERT_EQ(blk_insert_bs(other, target, &error_abort), 0);
    blk_set_dev_ops(other, &device_ops, NULL);
    blk_set_allow_aio_context_change(other, true);
    other_log.bs = target;
    blk_add_aio_context_notifier(other, log_attach, log_detach, &other_log);
    both[0] = user;
    both[1] = other;
    both[2] = NULL;
    expect_refused(filter, ctx);
    ASSERT_EQ(blk_set_aio_context(other, ctx, &err), -EPERM);
    ASSERT_STR_EQ(error_get_pretty(err), BLK_REFUSED);
    error_free(err);
    expect_all_in(nodes, both, main_ctx);
    ASSERT_EQ(log.n, 8);
    ASSERT_EQ(other_log.n, 0);

    /* Both allow it: both follow, each notified once each way. */
    blk_set_allow_aio_context_change(user, true);
    expect_moved(filter, ctx, nodes, both);
    ASSERT_EQ(log.n, 10);
    ASSERT_EQ(other_log.n, 2);
    ASSERT_EQ(blk_set_aio_context(other, main_ctx, &error_abort), 0);
    expect_all_in(nodes, both, main_ctx);
    ASSERT_EQ(log.n, 12);
    ASSERT_EQ(other_log.n, 4);

    blk_remove_aio_context_notifier(other, log_attach, log_detach,
                                    &other_log);
    blk_remove_aio_context_notifier(user, log_attach, log_detach, &log);
    blk_unref(other);
    blk_unref(user);
    bdrv_unref(filter);
    bdrv_unref(src);
    bdrv_unref(target);
    iothread_destroy(iothread);
}

/* A notifier may remove itself from inside the walk. */
static void self_removing_detach(void *opaque);
static void self_removing_attach(AioContext *new_ctx, void *opaque)
{
    NotifierLog *log = opaque;

    log->n++;
    bdrv_remove_aio_context_notifier(log->bs, self_removing_attach,
                                     self_removing_detach, log);
}

static void self_removing_detach(void *opaque)
{
}

static void test_notifier_remove_in_walk(void)
{
    BlockDriverState *bs;
    NotifierLog log = { 0 };

    setup();
    bs = open_node("driver=null-co,node-name=n0");
    log.bs = bs;
    bdrv_add_aio_context_notifier(bs, self_removing_attach,
                                  self_removing_detach, &log);
    ASSERT_EQ(bdrv_try_change_aio_context(bs, ctx, NULL, &error_abort), 0);
    ASSERT_EQ(log.n, 1);
    ASSERT_EQ(bdrv_try_change_aio_context(bs, main_ctx, NULL, &error_abort),
              0);
    ASSERT_EQ(log.n, 1);            /* gone */
    bdrv_unref(bs);
    iothread_destroy(iothread);
}

/* blk_add_aio_context_notifier follows the root node. */
static void test_blk_notifier_follows_root(void)
{
    BlockBackend *blk;
    BlockDriverState *a, *b;
    NotifierLog log_a = { 0 }, log_b = { 0 };

    setup();
    a = open_node("driver=null-co,node-name=a");
    b = open_node("driver=null-co,node-name=b");
    blk = blk_new(main_ctx);
    ASSERT_EQ(blk_insert_bs(blk, a, &error_abort), 0);
    log_a.bs = a;
    blk_add_aio_context_notifier(blk, log_attach, log_detach, &log_a);

    ASSERT_EQ(blk_set_aio_context(blk, ctx, &error_abort), 0);
    ASSERT_EQ(log_a.n, 2);
    ASSERT_STR_EQ(log_a.events[1], "attach:IO io");

    /* Replace the root: the notifier moves to b. */
    ASSERT_EQ(blk_set_aio_context(blk, main_ctx, &error_abort), 0);
    ASSERT_EQ(bdrv_replace_node(a, b, &error_abort), 0);
    ASSERT_PTR_EQ(blk_bs(blk), b);
    log_a.n = 0;
    log_a.bs = b;
    ASSERT_EQ(bdrv_try_change_aio_context(a, ctx, NULL, &error_abort), 0);
    ASSERT_EQ(log_a.n, 0);          /* a is no longer the root */
    ASSERT_EQ(blk_set_aio_context(blk, ctx, &error_abort), 0);
    ASSERT_EQ(log_a.n, 2);
    ASSERT_STR_EQ(log_a.events[0], "detach:main");

    ASSERT_EQ(blk_set_aio_context(blk, main_ctx, &error_abort), 0);
    blk_remove_aio_context_notifier(blk, log_attach, log_detach, &log_a);
    (void)log_b;
    blk_unref(blk);
    ASSERT_EQ(bdrv_try_change_aio_context(a, main_ctx, NULL, &error_abort),
              0);
    bdrv_unref(a);
    bdrv_unref(b);
    iothread_destroy(iothread);
}

/*
 * attach/consumer (QEMU's /attach/blockjob): a consumer coroutine follows
 * its node between the main loop and an IOThread through AioContext
 * notifiers: on detach it is parked (the change drains, and its device
 * callbacks park it), on attach it learns the new context and, once
 * resumed, moves itself there with aio_co_reschedule_self().
 */
typedef struct Consumer {
    BlockBackend *blk;
    Coroutine *co;
    AioContext *ctx;                /* where it should run (main loop) */
    pthread_mutex_t lock;
    int quiesced;                   /* lock */
    bool parked;                    /* lock */
    bool busy;                      /* atomic */
    bool stop;                      /* atomic */
    bool done;                      /* atomic */
    int64_t n;                      /* atomic */
    int wrong_ctx;                  /* atomic: iterations in a wrong ctx */
} Consumer;

static void consumer_drained_begin(void *opaque)
{
    Consumer *c = opaque;

    pthread_mutex_lock(&c->lock);
    c->quiesced++;
    pthread_mutex_unlock(&c->lock);
}

static bool consumer_drained_poll(void *opaque)
{
    Consumer *c = opaque;

    return __atomic_load_n(&c->busy, __ATOMIC_SEQ_CST);
}

static void consumer_drained_end(void *opaque)
{
    Consumer *c = opaque;
    bool wake;

    pthread_mutex_lock(&c->lock);
    wake = --c->quiesced == 0 && c->parked;
    if (wake) {
        c->parked = false;
    }
    pthread_mutex_unlock(&c->lock);
    if (wake) {
        aio_co_wake(c->co);
    }
}

static const BlockDevOps consumer_ops = {
    .drained_begin = consumer_drained_begin,
    .drained_poll = consumer_drained_poll,
    .drained_end = consumer_drained_end,
};

static void consumer_detach(void *opaque)
{
    Consumer *c = opaque;

    /* Drained: the coroutine is parked, not between two requests. */
    ASSERT_FALSE(__atomic_load_n(&c->busy, __ATOMIC_SEQ_CST));
}

static void consumer_attached(AioContext *new_ctx, void *opaque)
{
    Consumer *c = opaque;

    __atomic_store_n(&c->ctx, new_ctx, __ATOMIC_SEQ_CST);
}

static void coroutine_fn consumer_entry(void *opaque)
{
    Consumer *c = opaque;
    char buf[512];

    while (!__atomic_load_n(&c->stop, __ATOMIC_SEQ_CST)) {
        AioContext *want = __atomic_load_n(&c->ctx, __ATOMIC_SEQ_CST);

        if (qemu_get_current_aio_context() != want) {
            aio_co_reschedule_self(want);
            continue;
        }
        ASSERT_EQ(blk_co_pread(c->blk, 0, sizeof(buf), buf, 0), 0);
        if (qemu_get_current_aio_context() !=
            __atomic_load_n(&c->ctx, __ATOMIC_SEQ_CST)) {
            __atomic_fetch_add(&c->wrong_ctx, 1, __ATOMIC_SEQ_CST);
        }
        __atomic_fetch_add(&c->n, 1, __ATOMIC_SEQ_CST);
        aio_wait_kick();
        qemu_co_sleep_ns(QEMU_CLOCK_REALTIME, 100000);

        /* Pause point. */
        pthread_mutex_lock(&c->lock);
        if (c->quiesced) {
            c->parked = true;
            __atomic_store_n(&c->busy, false, __ATOMIC_SEQ_CST);
            pthread_mutex_unlock(&c->lock);
            aio_wait_kick();
            qemu_coroutine_yield();
            __atomic_store_n(&c->busy, true, __ATOMIC_SEQ_CST);
        } else {
            pthread_mutex_unlock(&c->lock);
        }
    }
    __atomic_store_n(&c->busy, false, __ATOMIC_SEQ_CST);
    __atomic_store_n(&c->done, true, __ATOMIC_SEQ_CST);
    aio_wait_kick();
}

static void consumer_wait_progress(Consumer *c)
{
    int64_t n = __atomic_load_n(&c->n, __ATOMIC_SEQ_CST);

    AIO_WAIT_WHILE(NULL, __atomic_load_n(&c->n, __ATOMIC_SEQ_CST) < n + 3);
}

static void test_attach_consumer(void)
{
    Consumer c = { 0 };
    BlockDriverState *bs;
    int i;

    setup();
    pthread_mutex_init(&c.lock, NULL);
    bs = open_node("driver=null-co,node-name=base,latency-ns=50000");
    c.blk = blk_new(main_ctx);
    ASSERT_EQ(blk_insert_bs(c.blk, bs, &error_abort), 0);
    blk_set_disable_request_queuing(c.blk, true);
    blk_set_dev_ops(c.blk, &consumer_ops, &c);
    blk_add_aio_context_notifier(c.blk, consumer_attached, consumer_detach,
                                 &c);
    c.ctx = main_ctx;
    c.busy = true;
    c.co = qemu_coroutine_create(consumer_entry, &c);
    aio_co_enter(main_ctx, c.co);
    consumer_wait_progress(&c);

    for (i = 0; i < 4; i++) {
        AioContext *want = i % 2 == 0 ? ctx : main_ctx;

        ASSERT_EQ(blk_set_aio_context(c.blk, want, &error_abort), 0);
        ASSERT_PTR_EQ(bdrv_get_aio_context(bs), want);
        ASSERT_PTR_EQ(__atomic_load_n(&c.ctx, __ATOMIC_SEQ_CST), want);
        consumer_wait_progress(&c);
        ASSERT_EQ(__atomic_load_n(&c.wrong_ctx, __ATOMIC_SEQ_CST), 0);
    }

    __atomic_store_n(&c.stop, true, __ATOMIC_SEQ_CST);
    AIO_WAIT_WHILE(NULL, !__atomic_load_n(&c.done, __ATOMIC_SEQ_CST));
    blk_remove_aio_context_notifier(c.blk, consumer_attached,
                                    consumer_detach, &c);
    blk_set_dev_ops(c.blk, NULL, NULL);
    blk_unref(c.blk);
    bdrv_unref(bs);
    iothread_destroy(iothread);
    pthread_mutex_destroy(&c.lock);
}

/* --- misuse ---------------------------------------------------------------- */

static void never_called(void *opaque)
{
}

static void never_called_attach(AioContext *new_ctx, void *opaque)
{
}

static void death_remove_unknown_notifier(void)
{
    BlockDriverState *bs;

    setup();
    bs = open_node("driver=null-co,node-name=n0");
    bdrv_remove_aio_context_notifier(bs, never_called_attach, never_called,
                                     NULL);
}

static void death_blk_remove_unknown_notifier(void)
{
    BlockBackend *blk;

    setup();
    blk = blk_new(NULL);
    blk_remove_aio_context_notifier(blk, never_called_attach, never_called,
                                    NULL);
}

static void death_change_ctx_without_bql(void)
{
    BlockDriverState *bs;

    setup();
    bs = open_node("driver=null-co,node-name=n0");
    bql_unlock();
    bdrv_try_change_aio_context(bs, ctx, NULL, NULL);
}

static const TestCase tests[] = {
    { "/sync-op/pread", test_sync_op_pread },
    { "/sync-op/pwrite", test_sync_op_pwrite },
    { "/sync-op/preadv", test_sync_op_preadv },
    { "/sync-op/pwritev", test_sync_op_pwritev },
    { "/sync-op/pwrite_zeroes", test_sync_op_pwrite_zeroes },
    { "/sync-op/pdiscard", test_sync_op_pdiscard },
    { "/sync-op/truncate", test_sync_op_truncate },
    { "/sync-op/flush", test_sync_op_flush },
    { "/sync-op/read-only", test_sync_op_read_only },
    { "/sync-op/file/threads", test_sync_op_file_threads },
    { "/sync-op/file/io_uring", test_sync_op_file_io_uring },
    { "/attach/second_node", test_attach_second_node },
    { "/attach/preserve_blk_ctx", test_attach_preserve_blk_ctx },
    { "/attach/no-node", test_blk_without_node },
    { "/attach/consumer", test_attach_consumer },
    { "/propagate/basic", test_propagate_basic },
    { "/propagate/diamond", test_propagate_diamond },
    { "/propagate/refuse", test_propagate_refuse },
    { "/propagate/allow-change", test_propagate_allow_change },
    { "/notifier/remove-in-walk", test_notifier_remove_in_walk },
    { "/notifier/blk-follows-root", test_blk_notifier_follows_root },
    { "/notifier/death/remove-unknown", death_remove_unknown_notifier,
      .death = "bdrv_remove_aio_context_notifier() node 'n0' has no "
               "notifier" },
    { "/notifier/death/blk-remove-unknown",
      death_blk_remove_unknown_notifier,
      .death = "blk_remove_aio_context_notifier() the BlockBackend has no "
               "notifier" },
    { "/propagate/death/no-bql", death_change_ctx_without_bql,
      .death = "bdrv_try_change_aio_context() requires the BQL" },
    { NULL }
};

int main(int argc, char **argv)
{
    return harness_main(argc, argv, tests);
}
