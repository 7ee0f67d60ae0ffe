/* SPDX-License-Identifier: MIT */
/*
 * tests/c/test-block.c - opening nodes, the drivers (file with threads,
 * io_uring and O_DIRECT; null-co; blkdebug), the request path
 * (asynchronous completion, in-flight accounting, parking while drained:
 * catalogue section 9 items 9-11), alignment padding with
 * read-modify-write, device callbacks, QEMUIOVector.
 *
 * Files are made in /tmp and unlinked while open.  io_uring cases fall
 * back to the thread pool (with a warning) where the kernel refuses
 * io_uring, and always under TSan (which cannot see the kernel's writes
 * into the rings).
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <aiolab/aiolab.h>
#include "block-harness.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static AioContext *main_ctx;

static void setup(void)
{
    block_test_setup();
    main_ctx = qemu_get_aio_context();
}

static BlockBackend *open_blk(const char *options)
{
    return blk_new_open(NULL, NULL, options, BDRV_O_RDWR, &error_abort);
}

typedef struct AioResult {
    int ret;
    int calls;
    int blk_in_flight_in_cb;
    BlockBackend *blk;
    AioContext *ctx;
} AioResult;

static void aio_cb(void *opaque, int ret)
{
    AioResult *r = opaque;

    r->ret = ret;
    r->ctx = qemu_get_current_aio_context();
    if (r->blk) {
        r->blk_in_flight_in_cb = blk_get_in_flight(r->blk);
    }
    /* Publishes the fields above to wait_for() in another thread. */
    __atomic_fetch_add(&r->calls, 1, __ATOMIC_SEQ_CST);
    aio_wait_kick();
}

static void wait_for(AioResult *r)
{
    AIO_WAIT_WHILE(NULL, !__atomic_load_n(&r->calls, __ATOMIC_SEQ_CST));
}

/* A file of @size bytes in /tmp, already unlinked; its name for
 * filename=/proc/self/fd/N. */
static char *make_file(size_t size, int *fdp)
{
    static char opts_path[64];
    char path[] = "/tmp/aiolab-block-XXXXXX";
    int fd = mkstemp(path);

    ASSERT_GE(fd, 0);
    ASSERT_EQ(ftruncate(fd, size), 0);
    unlink(path);
    snprintf(opts_path, sizeof(opts_path), "/proc/self/fd/%d", fd);
    if (fdp) {
        *fdp = fd;
    }
    return opts_path;
}

/* --- opening ------------------------------------------------------------ */

static void expect_open_error(const char *filename, const char *options,
                              int flags, const char *msg)
{
    Error *err = NULL;
    BlockDriverState *bs = bdrv_open(filename, NULL, options, flags, &err);

    ASSERT_TRUE(bs == NULL);
    ASSERT_TRUE(err != NULL);
    ASSERT_STR_CONTAINS(error_get_pretty(err), msg);
    error_free(err);
}

static void test_open_errors(void)
{
    BlockDriverState *bs;
    Error *err = NULL;

    setup();
    expect_open_error(NULL, "driver=nonesuch", 0,
                      "Unknown driver 'nonesuch'");
    expect_open_error(NULL, "driver=null-co,colour=blue", 0,
                      "Block protocol 'null-co' doesn't support the option "
                      "'colour'");
    bs = open_node("driver=null-co,node-name=n0");
    expect_open_error(NULL, "driver=blkdebug,image=n0,colour=blue", 0,
                      "Block format 'blkdebug' does not support the option "
                      "'colour'");
    expect_open_error("/nonexistent/disk.img", NULL, 0,
                      "Could not open '/nonexistent/disk.img': No such file");
    expect_open_error(NULL, "driver=null-co,size=-1", 0,
                      "Parameter 'size' expects a non-negative number");
    expect_open_error(NULL, "driver=null-co,size=12Q", 0,
                      "Parameter 'size' expects");
    expect_open_error(NULL, "driver=null-co,size=99999999999999999999", 0,
                      "Parameter 'size' expects");
    expect_open_error(NULL, "driver=null-co,latency-ns=-5", 0,
                      "Parameter 'latency-ns' expects an integer");
    expect_open_error(NULL, "driver=null-co,read-zeroes=maybe", 0,
                      "Parameter 'read-zeroes' expects 'on' or 'off'");
    expect_open_error(NULL, "driver=null-co,node-name=1abc", 0,
                      "Invalid node-name: '1abc'");
    expect_open_error(NULL, "driver=null-co,node-name=n0", 0,
                      "Duplicate nodes with node-name='n0'");
    expect_open_error(NULL, "size=1G", 0,
                      "Must specify either driver or file");
    expect_open_error(NULL, "driver=null-co,size", 0,
                      "Invalid option string");
    expect_open_error(NULL, "driver=null-co,size=1M,size=2M", 0,
                      "'size' given twice");
    expect_open_error(NULL, "driver=blkdebug", 0,
                      "A block device must be specified for \"image\"");
    expect_open_error(NULL, "driver=blkdebug,image=nope", 0,
                      "Cannot find device='nope' nor node-name='nope'");
    expect_open_error(NULL, "driver=blkdebug,image=n0,align=3", 0,
                      "Cannot meet constraints with align 3");
    expect_open_error(NULL, "driver=file", 0,
                      "The 'file' block driver requires a file name");
    expect_open_error(NULL, "driver=file,filename=/dev/null,aio=native", 0,
                      "Invalid aio option 'native'");
    expect_open_error(NULL, "driver=null-co,discard=sometimes", 0,
                      "Invalid discard option");
    expect_open_error(NULL, "driver=aiolab-test,bh-indirection=nope", 0,
                      "No IOThread with id 'nope'");

    /* A reference takes nothing else. */
    ASSERT_TRUE(bdrv_open(NULL, "n0", "size=1", 0, &err) == NULL);
    ASSERT_STR_CONTAINS(error_get_pretty(err), "Cannot reference");
    error_free(err);
    err = NULL;
    ASSERT_TRUE(bdrv_open(NULL, "n1", NULL, 0, &err) == NULL);
    ASSERT_STR_CONTAINS(error_get_pretty(err), "nor node-name='n1'");
    error_free(err);

    /* Failed opens leave nothing behind. */
    ASSERT_EQ(aiolab_bdrv_list(NULL, 0), 1);
    ASSERT_EQ(aiolab_bdrv_parent_count(bs), 0);
    bdrv_unref(bs);
    ASSERT_EQ(aiolab_bdrv_list(NULL, 0), 0);
}

static void test_open_names_refs(void)
{
    BlockDriverState *a, *b, *ref;
    BlockBackend *blk;

    setup();
    a = open_node("driver=null-co");
    b = open_node("driver=null-co,size=64K,node-name=disk0");
    ASSERT_TRUE(strncmp(bdrv_get_node_name(a), "#block", 6) == 0);
    ASSERT_STR_EQ(bdrv_get_node_name(b), "disk0");
    ASSERT_PTR_EQ(bdrv_find_node("disk0"), b);
    ASSERT_PTR_EQ(bdrv_find_node(bdrv_get_node_name(a)), a);
    ASSERT_TRUE(bdrv_find_node("disk1") == NULL);
    ASSERT_STR_EQ(bdrv_get_format_name(b), "null-co");
    ASSERT_EQ(bdrv_getlength(a), 1LL << 30);
    ASSERT_EQ(bdrv_getlength(b), 65536);

    ref = bdrv_open(NULL, "disk0", NULL, 0, &error_abort);
    ASSERT_PTR_EQ(ref, b);
    ASSERT_EQ(aiolab_bdrv_get_refcnt(b), 2);
    bdrv_unref(ref);
    ASSERT_EQ(aiolab_bdrv_get_refcnt(b), 1);

    blk = blk_new_open(NULL, "disk0", NULL, 0, &error_abort);
    ASSERT_PTR_EQ(blk_bs(blk), b);
    ASSERT_EQ(aiolab_bdrv_get_refcnt(b), 2);
    ASSERT_EQ(aiolab_bdrv_parent_count(b), 1);
    ASSERT_EQ(blk_getlength(blk), 65536);
    blk_unref(blk);
    ASSERT_EQ(aiolab_bdrv_get_refcnt(b), 1);
    ASSERT_EQ(aiolab_bdrv_parent_count(b), 0);

    bdrv_unref(a);
    bdrv_unref(b);
    ASSERT_TRUE(bdrv_find_node("disk0") == NULL);
}

static void test_open_read_only(void)
{
    BlockDriverState *bs;

    setup();
    bs = bdrv_open(NULL, NULL, "driver=null-co", 0, &error_abort);
    ASSERT_TRUE(bdrv_is_read_only(bs));         /* no BDRV_O_RDWR */
    bdrv_unref(bs);
    bs = bdrv_open(NULL, NULL, "driver=null-co,read-only=off", 0,
                   &error_abort);
    ASSERT_FALSE(bdrv_is_read_only(bs));        /* the option wins */
    bdrv_unref(bs);
    bs = open_node("driver=null-co,read-only=on");
    ASSERT_TRUE(bdrv_is_read_only(bs));
    bdrv_unref(bs);
}

/* --- QEMUIOVector ----------------------------------------------------------- */

static void test_iov(void)
{
    char a[4] = "abcd", b[3] = "efg", out[8] = { 0 };
    QEMUIOVector q, part, buf;
    struct iovec ext[2] = { { a, 4 }, { b, 3 } };

    qemu_iovec_init(&q, 1);
    ASSERT_EQ(q.nalloc, 1);
    qemu_iovec_add(&q, a, 4);
    qemu_iovec_add(&q, b, 3);
    ASSERT_EQ(q.niov, 2);
    ASSERT_EQ(q.size, 7);
    ASSERT_GE(q.nalloc, 2);
    ASSERT_EQ(qemu_iovec_to_buf(&q, 2, out, 4), 4);
    ASSERT_STR_EQ(out, "cdef");

    qemu_iovec_init(&part, 0);
    qemu_iovec_concat(&part, &q, 3, 2);
    ASSERT_EQ(part.niov, 2);
    ASSERT_EQ(part.size, 2);
    ASSERT_EQ(qemu_iovec_memset(&part, 0, 'x', 10), 2);
    ASSERT_EQ(memcmp(a, "abcx", 4), 0);
    ASSERT_EQ(memcmp(b, "xfg", 3), 0);
    ASSERT_EQ(qemu_iovec_from_buf(&q, 5, "ZZZ", 3), 2);
    ASSERT_EQ(memcmp(b, "xZZ", 3), 0);
    qemu_iovec_destroy(&part);
    qemu_iovec_reset(&q);
    ASSERT_EQ(q.size, 0);
    qemu_iovec_destroy(&q);

    qemu_iovec_init_buf(&buf, out, sizeof(out));
    ASSERT_EQ(buf.nalloc, -1);
    ASSERT_EQ(buf.niov, 1);
    ASSERT_PTR_EQ(buf.iov, &buf.local_iov);
    ASSERT_EQ(buf.size, 8);
    qemu_iovec_destroy(&buf);

    qemu_iovec_init_external(&buf, ext, 2);
    ASSERT_EQ(buf.nalloc, -1);
    ASSERT_EQ(buf.size, 7);
    qemu_iovec_destroy(&buf);
}

static void death_iov_add_external(void)
{
    char c = 0;
    QEMUIOVector q;

    qemu_iovec_init_buf(&q, &c, 1);
    qemu_iovec_add(&q, &c, 1);
}

/* --- the request path ---------------------------------------------------- */

static void test_aio_never_calls_back_early(void)
{
    BlockBackend *blk;
    AioResult r = { .ret = -EINPROGRESS };
    QEMUIOVector qiov;
    char buf[512];

    setup();
    blk = open_blk("driver=null-co");
    r.blk = blk;
    qemu_iovec_init_buf(&qiov, buf, sizeof(buf));
    /* null-co without latency completes without yielding... */
    ASSERT_TRUE(blk_aio_preadv(blk, 0, &qiov, 0, aio_cb, &r) != NULL);
    /* ...but the callback waits for a BH. */
    ASSERT_EQ(r.calls, 0);
    ASSERT_EQ(blk_get_in_flight(blk), 1);
    ASSERT_TRUE(aio_poll(main_ctx, false));
    ASSERT_EQ(r.calls, 1);
    ASSERT_EQ(r.ret, 0);
    ASSERT_EQ(r.blk_in_flight_in_cb, 1);    /* cb before the decrement */
    ASSERT_EQ(blk_get_in_flight(blk), 0);
    ASSERT_PTR_EQ(r.ctx, main_ctx);

    /* Errors come back the same way. */
    r = (AioResult){ .ret = -EINPROGRESS, .blk = blk };
    ASSERT_TRUE(blk_aio_preadv(blk, -512, &qiov, 0, aio_cb, &r) != NULL);
    ASSERT_EQ(r.calls, 0);
    wait_for(&r);
    ASSERT_EQ(r.ret, -EIO);
    ASSERT_EQ(blk_get_in_flight(blk), 0);
    blk_unref(blk);
}

static void test_null_read_zeroes(void)
{
    BlockBackend *blk;
    char buf[512];

    setup();
    blk = open_blk("driver=null-co,read-zeroes=on,size=1M");
    memset(buf, 0xff, sizeof(buf));
    ASSERT_EQ(blk_pread(blk, 0, sizeof(buf), buf, 0), 0);
    ASSERT_EQ(buf[0], 0);
    ASSERT_EQ(buf[511], 0);
    blk_unref(blk);

    blk = open_blk("driver=null-co,size=1M");
    memset(buf, 0xff, sizeof(buf));
    ASSERT_EQ(blk_pread(blk, 0, sizeof(buf), buf, 0), 0);
    ASSERT_EQ((unsigned char)buf[0], 0xff);     /* untouched */
    ASSERT_EQ(blk_pread(blk, 1 << 20, 1, buf, 0), -EIO);    /* EOF */
    ASSERT_EQ(blk_pwrite(blk, (1 << 20) - 512, 512, buf, 0), 0);
    ASSERT_EQ(blk_pwrite(blk, (1 << 20) - 511, 512, buf, 0), -EIO);
    blk_unref(blk);
}

static void test_null_latency(void)
{
    BlockBackend *blk;
    BlockDriverState *bs;
    AioResult r = { .ret = -EINPROGRESS };
    QEMUIOVector qiov;
    char buf[512];
    int64_t t0;

    setup();
    blk = open_blk("driver=null-co,latency-ns=20000000");
    bs = blk_bs(blk);
    qemu_iovec_init_buf(&qiov, buf, sizeof(buf));
    t0 = qemu_clock_get_ns(QEMU_CLOCK_REALTIME);
    ASSERT_TRUE(blk_aio_pwritev(blk, 0, &qiov, 0, aio_cb, &r) != NULL);
    ASSERT_EQ(bdrv_get_in_flight(bs), 1);
    ASSERT_EQ(blk_get_in_flight(blk), 1);
    aio_poll(main_ctx, false);
    ASSERT_EQ(r.calls, 0);
    wait_for(&r);
    ASSERT_EQ(r.ret, 0);
    /* Waited at least the latency (a large injected effect). */
    ASSERT_GE(qemu_clock_get_ns(QEMU_CLOCK_REALTIME) - t0, 20000000);
    ASSERT_EQ(bdrv_get_in_flight(bs), 0);
    ASSERT_EQ(blk_get_in_flight(blk), 0);
    blk_unref(blk);
}

/*
 * Item 9: a request on a drained BlockBackend is parked, not counted in
 * flight, and resumes after the last drained_end.  Item 11: drained_end
 * does no I/O synchronously - the parked request is entered, and its
 * callback comes later from the event loop.
 */
static void test_parking(void)
{
    BlockBackend *blk;
    BlockDriverState *bs;
    AioResult r = { .ret = -EINPROGRESS };
    QEMUIOVector qiov;
    char buf[512];
    int i;

    setup();
    blk = open_blk("driver=null-co,latency-ns=1000000");
    bs = blk_bs(blk);
    qemu_iovec_init_buf(&qiov, buf, sizeof(buf));

    bdrv_drained_begin(bs);
    bdrv_drained_begin(bs);         /* nested: only the last end resumes */
    ASSERT_TRUE(blk_in_drain(blk));
    ASSERT_TRUE(blk_aio_preadv(blk, 0, &qiov, 0, aio_cb, &r) != NULL);
    ASSERT_EQ(blk_get_in_flight(blk), 0);       /* parked */
    ASSERT_EQ(bdrv_get_in_flight(bs), 0);
    for (i = 0; i < 5; i++) {
        aio_poll(main_ctx, false);
    }
    ASSERT_EQ(r.calls, 0);
    bdrv_drained_end(bs);
    ASSERT_EQ(blk_get_in_flight(blk), 0);       /* still parked */
    ASSERT_EQ(r.calls, 0);

    bdrv_drained_end(bs);
    /* Resumed up to its latency sleep: in flight, not completed. */
    ASSERT_EQ(blk_get_in_flight(blk), 1);
    ASSERT_EQ(bdrv_get_in_flight(bs), 1);
    ASSERT_EQ(r.calls, 0);
    wait_for(&r);
    ASSERT_EQ(r.ret, 0);
    ASSERT_EQ(blk_get_in_flight(blk), 0);
    ASSERT_EQ(bdrv_get_in_flight(bs), 0);
    blk_unref(blk);
}

/* Item 10: with request queuing disabled, requests run while drained. */
static void test_parking_disabled(void)
{
    BlockBackend *blk;
    BlockDriverState *bs;
    AioResult r = { .ret = -EINPROGRESS };
    QEMUIOVector qiov;
    char buf[512];

    setup();
    blk = open_blk("driver=null-co,latency-ns=1000000");
    bs = blk_bs(blk);
    blk_set_disable_request_queuing(blk, true);
    qemu_iovec_init_buf(&qiov, buf, sizeof(buf));
    bdrv_drained_begin(bs);
    ASSERT_TRUE(blk_aio_preadv(blk, 0, &qiov, 0, aio_cb, &r) != NULL);
    ASSERT_EQ(blk_get_in_flight(blk), 1);
    ASSERT_EQ(bdrv_get_in_flight(bs), 1);
    wait_for(&r);                   /* completes inside the section */
    ASSERT_EQ(r.ret, 0);
    ASSERT_EQ(bdrv_get_quiesce_counter(bs), 1);
    bdrv_drained_end(bs);
    blk_unref(blk);
}

/* Parking with the request in an IOThread, the drain in the main loop. */
typedef struct SubmitData {
    BlockBackend *blk;
    QEMUIOVector qiov;
    char buf[512];
    AioResult r;
} SubmitData;

static void submit_read_bh(void *opaque)
{
    SubmitData *d = opaque;

    qemu_iovec_init_buf(&d->qiov, d->buf, sizeof(d->buf));
    blk_aio_preadv(d->blk, 0, &d->qiov, 0, aio_cb, &d->r);
}

/*
 * A null-co BlockBackend in IOThread "io", drained, with one read
 * submitted from the IOThread: it ran there up to the parking point.
 */
static IOThread *park_read_in_iothread(SubmitData *d)
{
    IOThread *t;
    AioContext *ctx;

    setup();
    t = iothread_create("io", &error_abort);
    ctx = iothread_get_aio_context(t);
    d->blk = open_blk("driver=null-co,latency-ns=1000000");
    ASSERT_EQ(blk_set_aio_context(d->blk, ctx, &error_abort), 0);
    bdrv_drained_begin(blk_bs(d->blk));
    aio_wait_bh_oneshot(ctx, submit_read_bh, d);
    ASSERT_EQ(blk_get_in_flight(d->blk), 0); /* parked */
    ASSERT_EQ(__atomic_load_n(&d->r.calls, __ATOMIC_SEQ_CST), 0);
    return t;
}

static void park_free(SubmitData *d, IOThread *t)
{
    ASSERT_EQ(blk_set_aio_context(d->blk, main_ctx, &error_abort), 0);
    blk_unref(d->blk);
    iothread_destroy(t);
}

static void test_parking_iothread(void)
{
    SubmitData d = { .r.ret = -EINPROGRESS };
    IOThread *t = park_read_in_iothread(&d);
    AioContext *ctx = iothread_get_aio_context(t);

    bdrv_drained_end(blk_bs(d.blk));
    wait_for(&d.r);
    ASSERT_EQ(d.r.ret, 0);
    ASSERT_PTR_EQ(d.r.ctx, ctx);    /* completed where it was submitted */
    /* The callback runs before the decrement, in the IOThread. */
    AIO_WAIT_WHILE(NULL, blk_get_in_flight(d.blk) > 0);

    park_free(&d, t);
}

/*
 * A woken request is in flight from its wake-up, not from when its
 * context gets round to running it: the IOThread is held busy while the
 * main loop ends the drain, so the woken request waits in io's BH queue;
 * it must count already, and the next drain must wait for it.  (Counted
 * only when it ran, it was in flight nowhere in between: a drain then
 * finished at once and the request went through the graph inside it -
 * test-mirror lost an acknowledged write that way.)
 */
typedef struct HoldData {
    bool holding, release; /* atomic */
} HoldData;

static void hold_bh(void *opaque)
{
    HoldData *h = opaque;

    __atomic_store_n(&h->holding, true, __ATOMIC_SEQ_CST);
    while (!__atomic_load_n(&h->release, __ATOMIC_SEQ_CST)) {
        sched_yield();
    }
}

static void test_parking_woken_counts(void)
{
    SubmitData d = { .r.ret = -EINPROGRESS };
    HoldData h = { false, false };
    IOThread *t = park_read_in_iothread(&d);
    BlockDriverState *bs = blk_bs(d.blk);

    aio_bh_schedule_oneshot(iothread_get_aio_context(t), hold_bh, &h);
    while (!__atomic_load_n(&h.holding, __ATOMIC_SEQ_CST)) {
        sched_yield();
    }
    bdrv_drained_end(bs); /* wakes it: queued behind hold_bh */
    ASSERT_EQ(blk_get_in_flight(d.blk), 1);
    ASSERT_EQ(__atomic_load_n(&d.r.calls, __ATOMIC_SEQ_CST), 0);
    __atomic_store_n(&h.release, true, __ATOMIC_SEQ_CST);
    bdrv_drained_begin(bs); /* waits for the woken request */
    ASSERT_EQ(__atomic_load_n(&d.r.calls, __ATOMIC_SEQ_CST), 1);
    ASSERT_EQ(d.r.ret, 0);
    ASSERT_EQ(blk_get_in_flight(d.blk), 0);
    bdrv_drained_end(bs);
    park_free(&d, t);
}

/* --- device callbacks ------------------------------------------------------ */

typedef struct Device {
    int begins, ends, resizes;
    bool busy;                      /* atomic */
    QEMUTimer *timer;
} Device;

static void dev_drained_begin(void *opaque)
{
    ((Device *)opaque)->begins++;
}

static void dev_drained_end(void *opaque)
{
    ((Device *)opaque)->ends++;
}

static bool dev_drained_poll(void *opaque)
{
    return __atomic_load_n(&((Device *)opaque)->busy, __ATOMIC_SEQ_CST);
}

static void dev_resize(void *opaque)
{
    ((Device *)opaque)->resizes++;
}

static const BlockDevOps dev_ops = {
    .drained_begin = dev_drained_begin,
    .drained_end = dev_drained_end,
    .drained_poll = dev_drained_poll,
    .resize_cb = dev_resize,
};

static void dev_idle_timer(void *opaque)
{
    __atomic_store_n(&((Device *)opaque)->busy, false, __ATOMIC_SEQ_CST);
}

static void test_dev_ops(void)
{
    BlockBackend *blk;
    BlockDriverState *bs;
    Device dev = { 0 };

    setup();
    blk = open_blk("driver=aiolab-test,size=64K");
    bs = blk_bs(blk);
    blk_set_dev_ops(blk, &dev_ops, &dev);

    bdrv_drained_begin(bs);
    bdrv_drained_begin(bs);
    ASSERT_EQ(dev.begins, 1);       /* 0 -> 1 only */
    bdrv_drained_end(bs);
    ASSERT_EQ(dev.ends, 0);
    bdrv_drained_end(bs);
    ASSERT_EQ(dev.ends, 1);

    /* A busy device holds the drain until it reports idle. */
    dev.busy = true;
    dev.timer = aio_timer_new(main_ctx, QEMU_CLOCK_REALTIME, SCALE_MS,
                              dev_idle_timer, &dev);
    timer_mod(dev.timer, qemu_clock_get_ms(QEMU_CLOCK_REALTIME) + 10);
    bdrv_drained_begin(bs);
    ASSERT_FALSE(dev.busy);
    ASSERT_EQ(dev.begins, 2);
    /* Attached in the middle of a section: drained_begin at once. */
    blk_set_dev_ops(blk, NULL, NULL);
    blk_set_dev_ops(blk, &dev_ops, &dev);
    ASSERT_EQ(dev.begins, 3);
    bdrv_drained_end(bs);
    ASSERT_EQ(dev.ends, 2);
    timer_free(dev.timer);

    ASSERT_EQ(blk_truncate(blk, 131072, true, 0, 0, &error_abort), 0);
    ASSERT_EQ(dev.resizes, 1);
    ASSERT_EQ(blk_getlength(blk), 131072);

    blk_set_dev_ops(blk, NULL, NULL);
    blk_unref(blk);
}

static void test_blk_drain(void)
{
    BlockBackend *blk, *blk2;
    AioResult r1 = { .ret = -EINPROGRESS }, r2 = { .ret = -EINPROGRESS };
    QEMUIOVector qiov;
    char buf[512];

    setup();
    blk = open_blk("driver=null-co,latency-ns=2000000");
    blk2 = open_blk("driver=null-co,latency-ns=2000000");
    qemu_iovec_init_buf(&qiov, buf, sizeof(buf));
    blk_aio_preadv(blk, 0, &qiov, 0, aio_cb, &r1);
    blk_aio_preadv(blk2, 0, &qiov, 0, aio_cb, &r2);
    blk_drain(blk);
    ASSERT_EQ(r1.calls, 1);
    ASSERT_EQ(blk_get_in_flight(blk), 0);
    ASSERT_FALSE(blk_in_drain(blk));
    blk_drain_all();
    ASSERT_EQ(r2.calls, 1);
    ASSERT_EQ(blk_get_in_flight(blk2), 0);
    blk_unref(blk);
    blk_unref(blk2);
}

static void test_replace_node(void)
{
    BlockBackend *blk;
    BlockDriverState *a, *b;
    char buf[512];

    setup();
    a = open_node("driver=null-co,node-name=a");
    b = open_node("driver=null-co,node-name=b,size=64K");
    blk = blk_new(NULL);
    ASSERT_EQ(blk_insert_bs(blk, a, &error_abort), 0);
    ASSERT_EQ(bdrv_replace_node(a, b, &error_abort), 0);
    ASSERT_PTR_EQ(blk_bs(blk), b);
    ASSERT_EQ(aiolab_bdrv_get_refcnt(a), 1);
    ASSERT_EQ(aiolab_bdrv_get_refcnt(b), 2);
    ASSERT_EQ(blk_getlength(blk), 65536);
    ASSERT_EQ(blk_pread(blk, 65536 - 512, sizeof(buf), buf, 0), 0);
    ASSERT_EQ(bdrv_get_quiesce_counter(a), 0);
    ASSERT_EQ(bdrv_get_quiesce_counter(b), 0);
    blk_unref(blk);
    bdrv_unref(a);
    bdrv_unref(b);
}

/* --- the file driver ------------------------------------------------------ */

static void fill(char *buf, size_t len, int seed)
{
    size_t i;

    for (i = 0; i < len; i++) {
        buf[i] = (char)(seed * 131 + i * 7);
    }
}

static void file_io_common(const char *extra, bool direct)
{
    BlockBackend *blk;
    char opts[256], *path;
    char *wbuf, *rbuf;
    int fd;
    Error *err = NULL;

    path = make_file(1 << 20, &fd);
    snprintf(opts, sizeof(opts), "driver=file,filename=%s,discard=unmap,"
             "node-name=disk0%s%s", path, extra,
             direct ? ",cache.direct=on" : "");
    blk = open_blk(opts);
    ASSERT_EQ(blk_getlength(blk), 1 << 20);
    if (direct) {
        ASSERT_GE(aiolab_bdrv_get_request_alignment(blk_bs(blk)), 512);
    } else {
        ASSERT_EQ(aiolab_bdrv_get_request_alignment(blk_bs(blk)), 1);
    }
    ASSERT_EQ(posix_memalign((void **)&wbuf, 4096, 65536), 0);
    ASSERT_EQ(posix_memalign((void **)&rbuf, 4096, 65536), 0);

    fill(wbuf, 65536, 1);
    ASSERT_EQ(blk_pwrite(blk, 65536, 65536, wbuf, 0), 0);
    ASSERT_EQ(blk_pwrite(blk, 0, 4096, wbuf, BDRV_REQ_FUA), 0);
    ASSERT_EQ(blk_flush(blk), 0);
    memset(rbuf, 0, 65536);
    ASSERT_EQ(blk_pread(blk, 65536, 65536, rbuf, 0), 0);
    ASSERT_EQ(memcmp(wbuf, rbuf, 65536), 0);
    /* The host sees the data (through its own fd). */
    ASSERT_EQ(pread(fd, rbuf, 4096, 65536), 4096);
    ASSERT_EQ(memcmp(wbuf, rbuf, 4096), 0);

    /* Write zeroes, as a hole and not. */
    ASSERT_EQ(blk_pwrite_zeroes(blk, 65536, 4096, BDRV_REQ_MAY_UNMAP), 0);
    ASSERT_EQ(blk_pwrite_zeroes(blk, 65536 + 8192, 4096, 0), 0);
    ASSERT_EQ(blk_pread(blk, 65536, 16384, rbuf, 0), 0);
    memset(wbuf, 0, 4096);
    ASSERT_EQ(memcmp(rbuf, wbuf, 4096), 0);
    ASSERT_EQ(memcmp(rbuf + 8192, wbuf, 4096), 0);
    fill(wbuf, 65536, 1);
    ASSERT_EQ(memcmp(rbuf + 4096, wbuf + 4096, 4096), 0);
    /* Discard punches a hole (discard=unmap). */
    ASSERT_EQ(blk_pdiscard(blk, 65536 + 4096, 4096), 0);
    ASSERT_EQ(blk_pread(blk, 65536 + 4096, 4096, rbuf, 0), 0);
    memset(wbuf, 0, 4096);
    ASSERT_EQ(memcmp(rbuf, wbuf, 4096), 0);

    /* Ranges and size. */
    ASSERT_EQ(blk_pread(blk, -4096, 4096, rbuf, 0), -EIO);
    ASSERT_EQ(blk_pread(blk, 1 << 20, 4096, rbuf, 0), -EIO);
    ASSERT_EQ(blk_truncate(blk, 2 << 20, true, 0, 0, &error_abort), 0);
    ASSERT_EQ(blk_getlength(blk), 2 << 20);
    ASSERT_EQ(blk_pread(blk, 1 << 20, 4096, rbuf, 0), 0);
    ASSERT_EQ(blk_truncate(blk, 0, true, 1, 0, &err), -ENOTSUP);
    error_free(err);
    ASSERT_EQ(bdrv_get_in_flight(blk_bs(blk)), 0);

    blk_unref(blk);
    close(fd);
    free(wbuf);
    free(rbuf);
}

static void test_file_threads(void)
{
    setup();
    file_io_common("", false);
}

static void test_file_io_uring(void)
{
    setup();
    file_io_common(",aio=io_uring", false);
}

static void test_file_odirect_threads(void)
{
    setup();
    file_io_common("", true);
}

static void test_file_odirect_io_uring(void)
{
    setup();
    file_io_common(",aio=io_uring", true);
}

static void test_file_read_only(void)
{
    BlockBackend *blk;
    char opts[160], buf[512] = { 0 };
    Error *err = NULL;

    setup();
    snprintf(opts, sizeof(opts), "driver=file,filename=%s",
             make_file(65536, NULL));
    blk = blk_new_open(NULL, NULL, opts, 0, &error_abort);
    ASSERT_TRUE(bdrv_is_read_only(blk_bs(blk)));
    ASSERT_EQ(blk_pread(blk, 0, sizeof(buf), buf, 0), 0);
    ASSERT_EQ(blk_pwrite(blk, 0, sizeof(buf), buf, 0), -EPERM);
    ASSERT_EQ(blk_pwrite_zeroes(blk, 0, sizeof(buf), 0), -EPERM);
    ASSERT_EQ(blk_flush(blk), 0);
    ASSERT_EQ(blk_truncate(blk, 4096, true, 0, 0, &err), -EACCES);
    error_free(err);
    blk_unref(blk);
}

/* O_DIRECT with buffers and ranges the kernel would refuse. */
static void odirect_unaligned_common(const char *extra)
{
    BlockBackend *blk;
    char opts[256], *path, *mem, *expect, *rbuf;
    int fd;

    path = make_file(65536, &fd);
    snprintf(opts, sizeof(opts), "driver=file,filename=%s,cache.direct=on%s",
             path, extra);
    blk = open_blk(opts);
    expect = calloc(1, 65536);
    mem = malloc(65536 + 1);
    rbuf = malloc(65536 + 1);

    /* Aligned range, misaligned memory: bounced. */
    fill(mem + 1, 8192, 2);
    memcpy(expect, mem + 1, 8192);
    ASSERT_EQ(blk_pwrite(blk, 0, 8192, mem + 1, 0), 0);
    /* Misaligned range: read-modify-write of the partial blocks. */
    fill(mem + 1, 1000, 3);
    memcpy(expect + 100, mem + 1, 1000);
    ASSERT_EQ(blk_pwrite(blk, 100, 1000, mem + 1, 0), 0);
    fill(mem + 1, 5000, 4);
    memcpy(expect + 6000, mem + 1, 5000);
    ASSERT_EQ(blk_pwrite(blk, 6000, 5000, mem + 1, 0), 0);
    fill(mem + 1, 7, 5);
    memcpy(expect + 65536 - 7, mem + 1, 7);
    ASSERT_EQ(blk_pwrite(blk, 65536 - 7, 7, mem + 1, 0), 0);
    ASSERT_EQ(blk_pwrite_zeroes(blk, 3000, 2000, 0), 0);
    memset(expect + 3000, 0, 2000);

    ASSERT_EQ(blk_pread(blk, 1, 65535, rbuf + 1, 0), 0);
    ASSERT_EQ(memcmp(rbuf + 1, expect + 1, 65535), 0);
    ASSERT_EQ(blk_pread(blk, 6001, 13, rbuf, 0), 0);
    ASSERT_EQ(memcmp(rbuf, expect + 6001, 13), 0);
    /* What the host file holds. */
    ASSERT_EQ(pread(fd, rbuf, 65536, 0), 65536);
    ASSERT_EQ(memcmp(rbuf, expect, 65536), 0);
    ASSERT_EQ(bdrv_get_in_flight(blk_bs(blk)), 0);

    blk_unref(blk);
    close(fd);
    free(expect);
    free(mem);
    free(rbuf);
}

static void test_odirect_unaligned_threads(void)
{
    setup();
    odirect_unaligned_common("");
}

static void test_odirect_unaligned_io_uring(void)
{
    setup();
    odirect_unaligned_common(",aio=io_uring");
}

/*
 * Read-modify-write must serialise: many small writes into one 4K block
 * at once (blkdebug align=4096 pads them, latency-ns widens the window
 * between each one's read and write).  No update may be lost.
 */
static void test_rmw_serialised(void)
{
    enum { N = 8 };
    BlockBackend *blk;
    char expect[4096], rbuf[4096], data[N][512];
    QEMUIOVector qiov[N];
    AioResult r[N];
    int i;

    setup();
    open_node("driver=file,filename=%s,node-name=disk0",
              make_file(65536, NULL));
    blk = open_blk("driver=blkdebug,image=disk0,align=4096,"
                   "latency-ns=200000");
    bdrv_unref(bdrv_find_node("disk0"));        /* blkdebug holds it */
    ASSERT_EQ(aiolab_bdrv_get_request_alignment(blk_bs(blk)), 4096);

    memset(expect, 0, sizeof(expect));
    defer_call_begin();
    for (i = 0; i < N; i++) {
        fill(data[i], 300, 10 + i);
        memcpy(expect + i * 500, data[i], 300);
        qemu_iovec_init_buf(&qiov[i], data[i], 300);
        r[i] = (AioResult){ .ret = -EINPROGRESS };
        ASSERT_TRUE(blk_aio_pwritev(blk, 8192 + i * 500, &qiov[i], 0,
                                    aio_cb, &r[i]));
    }
    defer_call_end();
    for (i = 0; i < N; i++) {
        wait_for(&r[i]);
        ASSERT_EQ(r[i].ret, 0);
    }
    ASSERT_EQ(blk_pread(blk, 8192, 4096, rbuf, 0), 0);
    ASSERT_EQ(memcmp(rbuf, expect, sizeof(expect)), 0);
    blk_unref(blk);
}

/*
 * A plain request and a read-modify-write that overlap wait for each
 * other, whichever starts first (a plain request skips the overlap scan
 * only while no serialising request is in flight).  The first request is
 * held at a blkdebug breakpoint while the second starts, then resumed.
 * @rmw_first: the unaligned write (serialising) is held in its read of
 * the block, and the aligned 4K write of that block must wait for it:
 * the block ends as the aligned write left it.  Else the aligned write
 * is held and the read-modify-write must not read the block before it
 * lands: the block ends as the aligned write with the small one on top.
 * Without the waits the outcomes swap.
 */
static void rmw_and_plain_common(bool rmw_first)
{
    BlockBackend *blk;
    BlockDriverState *dbg;
    char expect[4096], rbuf[4096], small[300], block[4096];
    QEMUIOVector qsmall, qblock;
    AioResult rs = { .ret = -EINPROGRESS }, rb = { .ret = -EINPROGRESS };
    AioResult *second = rmw_first ? &rb : &rs;

    setup();
    open_node("driver=file,filename=%s,node-name=disk0",
              make_file(65536, NULL));
    blk = open_blk("driver=blkdebug,image=disk0,align=4096");
    bdrv_unref(bdrv_find_node("disk0"));        /* blkdebug holds it */
    dbg = blk_bs(blk);
    ASSERT_EQ(aiolab_blkdebug_break(dbg, rmw_first ? "read-aio"
                                                   : "write-aio", "first"),
              0);

    fill(small, sizeof(small), 7);
    fill(block, sizeof(block), 99);
    qemu_iovec_init_buf(&qsmall, small, sizeof(small));
    qemu_iovec_init_buf(&qblock, block, sizeof(block));
    memcpy(expect, block, sizeof(block));
    if (!rmw_first) {
        memcpy(expect + 100, small, sizeof(small));
    }
    if (rmw_first) {
        ASSERT_TRUE(blk_aio_pwritev(blk, 8192 + 100, &qsmall, 0, aio_cb,
                                    &rs));
    } else {
        ASSERT_TRUE(blk_aio_pwritev(blk, 8192, &qblock, 0, aio_cb, &rb));
    }
    AIO_WAIT_WHILE(NULL, !aiolab_blkdebug_is_suspended(dbg, "first"));
    if (rmw_first) {
        ASSERT_TRUE(blk_aio_pwritev(blk, 8192, &qblock, 0, aio_cb, &rb));
    } else {
        ASSERT_TRUE(blk_aio_pwritev(blk, 8192 + 100, &qsmall, 0, aio_cb,
                                    &rs));
    }
    for (int i = 0; i < 20 && !second->calls; i++) {
        aio_poll(main_ctx, false);
        usleep(1000);
    }
    ASSERT_EQ(second->calls, 0);                /* waits for the first */
    ASSERT_EQ(aiolab_blkdebug_resume(dbg, "first"), 0);
    wait_for(&rs);
    wait_for(&rb);
    ASSERT_EQ(rs.ret, 0);
    ASSERT_EQ(rb.ret, 0);
    ASSERT_EQ(blk_pread(blk, 8192, 4096, rbuf, 0), 0);
    ASSERT_EQ(memcmp(rbuf, expect, sizeof(expect)), 0);
    blk_unref(blk);
}

static void test_rmw_then_plain(void)
{
    rmw_and_plain_common(true);
}

static void test_plain_then_rmw(void)
{
    rmw_and_plain_common(false);
}

/* io_uring: 32 requests submitted in one defer_call section. */
static void test_io_uring_batch(void)
{
    enum { N = 32 };
    BlockBackend *blk;
    char opts[200], *buf;
    QEMUIOVector qiov[N];
    AioResult r[N];
    int i;

    setup();
    snprintf(opts, sizeof(opts), "driver=file,filename=%s,aio=io_uring",
             make_file(N * 4096, NULL));
    blk = open_blk(opts);
    buf = malloc(N * 4096);
    for (i = 0; i < N; i++) {
        fill(buf + i * 4096, 4096, i);
    }
    defer_call_begin();
    for (i = 0; i < N; i++) {
        qemu_iovec_init_buf(&qiov[i], buf + i * 4096, 4096);
        r[i] = (AioResult){ .ret = -EINPROGRESS };
        blk_aio_pwritev(blk, i * 4096, &qiov[i], 0, aio_cb, &r[i]);
    }
    ASSERT_EQ(blk_get_in_flight(blk), N);
    defer_call_end();               /* one io_uring_submit for all */
    for (i = 0; i < N; i++) {
        wait_for(&r[i]);
        ASSERT_EQ(r[i].ret, 0);
    }
    memset(buf, 0, N * 4096);
    for (i = 0; i < N; i++) {
        char expect[4096];

        r[i] = (AioResult){ .ret = -EINPROGRESS };
        blk_aio_preadv(blk, i * 4096, &qiov[i], 0, aio_cb, &r[i]);
        wait_for(&r[i]);
        fill(expect, 4096, i);
        ASSERT_EQ(memcmp(buf + i * 4096, expect, 4096), 0);
    }
    ASSERT_EQ(blk_get_in_flight(blk), 0);
    blk_unref(blk);
    free(buf);
}

/* io_uring in an IOThread: that context's ring, freed with it. */
static void test_io_uring_iothread(void)
{
    IOThread *t;
    AioContext *ctx;
    SubmitData d = { .r.ret = -EINPROGRESS };
    char opts[200];

    setup();
    t = iothread_create("io", &error_abort);
    ctx = iothread_get_aio_context(t);
    snprintf(opts, sizeof(opts), "driver=file,filename=%s,aio=io_uring",
             make_file(65536, NULL));
    d.blk = open_blk(opts);
    ASSERT_EQ(blk_set_aio_context(d.blk, ctx, &error_abort), 0);
    aio_wait_bh_oneshot(ctx, submit_read_bh, &d);
    wait_for(&d.r);
    ASSERT_EQ(d.r.ret, 0);
    ASSERT_PTR_EQ(d.r.ctx, ctx);
    /* And from the main thread, in the main context's ring. */
    ASSERT_EQ(blk_pread(d.blk, 0, 512, d.buf, 0), 0);
    ASSERT_EQ(blk_set_aio_context(d.blk, main_ctx, &error_abort), 0);
    blk_unref(d.blk);
    iothread_destroy(t);
}

/*
 * A kernel that refuses io_uring (a seccomp filter makes io_uring_setup
 * fail with ENOSYS, as a locked-down container would): aio=io_uring falls
 * back to the thread pool with a warning, and I/O works.
 */
static void refuse_io_uring(void)
{
    struct sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = { .len = ARRAY_LEN(filter), .filter = filter };

    ASSERT_EQ(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
    ASSERT_EQ(prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog), 0);
}

static void test_io_uring_refused(void)
{
    BlockBackend *blk;
    char opts[200], wbuf[4096], rbuf[4096], log[512] = { 0 };
    int saved_stderr, logfd;
    FILE *f = tmpfile();

    refuse_io_uring();
    setup();
    snprintf(opts, sizeof(opts), "driver=file,filename=%s,aio=io_uring,"
             "node-name=disk0", make_file(65536, NULL));
    fflush(stderr);
    saved_stderr = dup(2);
    logfd = fileno(f);
    dup2(logfd, 2);
    blk = open_blk(opts);
    fflush(stderr);
    dup2(saved_stderr, 2);
    ASSERT_GT(pread(logfd, log, sizeof(log) - 1, 0), 0);
    ASSERT_STR_CONTAINS(log, "node 'disk0': aio=io_uring unavailable");
    ASSERT_STR_CONTAINS(log, "falling back to aio=threads");

    fill(wbuf, sizeof(wbuf), 7);
    ASSERT_EQ(blk_pwrite(blk, 0, sizeof(wbuf), wbuf, 0), 0);
    ASSERT_EQ(blk_pread(blk, 0, sizeof(rbuf), rbuf, 0), 0);
    ASSERT_EQ(memcmp(wbuf, rbuf, sizeof(rbuf)), 0);
    blk_unref(blk);
    fclose(f);
}

/* --- blkdebug ------------------------------------------------------------- */

static void test_blkdebug_errors(void)
{
    BlockBackend *blk;
    BlockDriverState *dbg, *disk;
    char buf[4096] = { 0 };
    AioResult r = { .ret = -EINPROGRESS };
    QEMUIOVector qiov;

    setup();
    disk = open_node("driver=null-co,node-name=disk0,size=1M");
    blk = open_blk("driver=blkdebug,image=disk0,node-name=dbg0,"
                   "inject-error.0.iotype=read,inject-error.0.offset=8192,"
                   "inject-error.0.length=4096,inject-error.0.once=on,"
                   "inject-error.1.iotype=flush,inject-error.1.errno=28");
    dbg = blk_bs(blk);
    ASSERT_PTR_EQ(bdrv_find_node("dbg0"), dbg);

    ASSERT_EQ(blk_pread(blk, 0, 4096, buf, 0), 0);
    ASSERT_EQ(blk_pread(blk, 4096, 8192, buf, 0), -EIO);    /* overlaps */
    ASSERT_EQ(blk_pread(blk, 8192, 4096, buf, 0), 0);       /* once */
    ASSERT_EQ(blk_flush(blk), -ENOSPC);
    ASSERT_EQ(blk_flush(blk), -ENOSPC);                     /* always */
    ASSERT_EQ(aiolab_blkdebug_clear_errors(disk), -ENOTSUP);
    ASSERT_EQ(aiolab_blkdebug_clear_errors(dbg), 0);
    ASSERT_EQ(blk_flush(blk), 0);

    /* ENOSPC on every write of a range, through the aio path. */
    ASSERT_EQ(aiolab_blkdebug_inject_error(dbg, "write", ENOSPC, 65536,
                                           65536, false), 0);
    ASSERT_EQ(aiolab_blkdebug_inject_error(dbg, "sideways", EIO, 0, 0,
                                           false), -EINVAL);
    qemu_iovec_init_buf(&qiov, buf, sizeof(buf));
    ASSERT_TRUE(blk_aio_pwritev(blk, 65536 + 4096, &qiov, 0, aio_cb, &r));
    wait_for(&r);
    ASSERT_EQ(r.ret, -ENOSPC);
    ASSERT_EQ(blk_pwrite(blk, 65536, 1, buf, 0), -ENOSPC);
    ASSERT_EQ(blk_pwrite(blk, 0, 4096, buf, 0), 0);
    ASSERT_EQ(blk_pwrite_zeroes(blk, 65536, 4096, 0), 0);   /* other type */
    ASSERT_EQ(aiolab_blkdebug_inject_error(dbg, "write-zeroes", EIO, 0, 0,
                                           true), 0);
    ASSERT_EQ(blk_pwrite_zeroes(blk, 0, 4096, 0), -EIO);

    /* Nothing stays in flight after errors. */
    ASSERT_EQ(bdrv_get_in_flight(dbg), 0);
    ASSERT_EQ(bdrv_get_in_flight(disk), 0);
    ASSERT_EQ(blk_get_in_flight(blk), 0);
    bdrv_drain_all();
    blk_unref(blk);
    bdrv_unref(disk);
}

static void test_blkdebug_latency(void)
{
    BlockBackend *blk;
    BlockDriverState *dbg;
    char buf[512] = { 0 };
    int64_t t0;

    setup();
    open_node("driver=null-co,node-name=disk0");
    blk = open_blk("driver=blkdebug,image=disk0,latency-ns=5000000");
    bdrv_unref(bdrv_find_node("disk0"));
    dbg = blk_bs(blk);
    t0 = qemu_clock_get_ns(QEMU_CLOCK_REALTIME);
    ASSERT_EQ(blk_pread(blk, 0, sizeof(buf), buf, 0), 0);
    ASSERT_GE(qemu_clock_get_ns(QEMU_CLOCK_REALTIME) - t0, 5000000);
    ASSERT_EQ(aiolab_blkdebug_set_latency_ns(dbg, 0), 0);
    ASSERT_EQ(aiolab_blkdebug_set_latency_ns(dbg, -1), -EINVAL);
    blk_unref(blk);
}

static void test_blkdebug_pause(void)
{
    BlockBackend *blk;
    BlockDriverState *dbg, *disk;
    AioResult r = { .ret = -EINPROGRESS };
    QEMUIOVector qiov;
    char buf[512] = { 0 };

    setup();
    disk = open_node("driver=null-co,node-name=disk0");
    ASSERT_EQ(bdrv_debug_breakpoint(disk, "write-aio", "w"), -ENOTSUP);
    expect_open_error(NULL, "driver=blkdebug,image=disk0,"
                      "break.0.event=nowhere,break.0.tag=x", 0,
                      "Invalid event name 'nowhere'");
    expect_open_error(NULL, "driver=blkdebug,image=disk0,"
                      "break.0.event=read-aio", 0,
                      "break.0 needs both an event and a tag");
    blk = open_blk("driver=blkdebug,image=disk0,break.0.event=read_aio,"
                   "break.0.tag=r");
    dbg = blk_bs(blk);
    ASSERT_EQ(bdrv_debug_remove_breakpoint(dbg, "r"), 0);  /* was set */
    ASSERT_EQ(bdrv_debug_breakpoint(dbg, "no-such-point", "x"), -EINVAL);
    ASSERT_EQ(aiolab_blkdebug_break(dbg, "write-aio", "w"), 0);
    ASSERT_EQ(bdrv_debug_resume(dbg, "w"), -ENOENT);

    /* A read passes; the next write stops at the point. */
    ASSERT_EQ(blk_pread(blk, 0, sizeof(buf), buf, 0), 0);
    qemu_iovec_init_buf(&qiov, buf, sizeof(buf));
    ASSERT_TRUE(blk_aio_pwritev(blk, 0, &qiov, 0, aio_cb, &r));
    AIO_WAIT_WHILE(NULL, !aiolab_blkdebug_is_suspended(dbg, "w"));
    ASSERT_EQ(bdrv_get_in_flight(dbg), 1);
    ASSERT_EQ(bdrv_get_in_flight(disk), 0);     /* not there yet */
    ASSERT_EQ(blk_get_in_flight(blk), 1);
    aio_poll(main_ctx, false);
    ASSERT_EQ(r.calls, 0);
    ASSERT_EQ(aiolab_blkdebug_resume(blk_bs(blk), "w"), 0);
    wait_for(&r);
    ASSERT_EQ(r.ret, 0);
    ASSERT_FALSE(bdrv_debug_is_suspended(dbg, "w"));

    /* The breakpoint was used up; remove_breakpoint resumes too. */
    r = (AioResult){ .ret = -EINPROGRESS };
    ASSERT_EQ(blk_pwrite(blk, 0, sizeof(buf), buf, 0), 0);
    ASSERT_EQ(bdrv_debug_breakpoint(dbg, "flush_to_disk", "f"), 0);
    ASSERT_TRUE(blk_aio_flush(blk, aio_cb, &r));
    AIO_WAIT_WHILE(NULL, !bdrv_debug_is_suspended(dbg, "f"));
    ASSERT_EQ(bdrv_debug_remove_breakpoint(dbg, "f"), 0);
    wait_for(&r);
    ASSERT_EQ(r.ret, 0);
    ASSERT_EQ(bdrv_debug_remove_breakpoint(dbg, "f"), -ENOENT);

    blk_unref(blk);
    bdrv_unref(disk);
}

/*
 * A request held at a pause point in an IOThread keeps a drain in the
 * main loop waiting; resumed from another thread, the drain finishes.
 */
static void resume_bh(void *opaque)
{
    ASSERT_EQ(bdrv_debug_resume(opaque, "r"), 0);
}

static void test_blkdebug_pause_drain_iothread(void)
{
    IOThread *t, *t2;
    AioContext *ctx;
    SubmitData d = { .r.ret = -EINPROGRESS };
    BlockDriverState *dbg;

    setup();
    t = iothread_create("io", &error_abort);
    t2 = iothread_create("io2", &error_abort);
    ctx = iothread_get_aio_context(t);
    open_node("driver=null-co,node-name=disk0");
    d.blk = open_blk("driver=blkdebug,image=disk0,node-name=dbg0");
    bdrv_unref(bdrv_find_node("disk0"));
    dbg = blk_bs(d.blk);
    ASSERT_EQ(blk_set_aio_context(d.blk, ctx, &error_abort), 0);
    ASSERT_EQ(bdrv_debug_breakpoint(dbg, "read-aio", "r"), 0);

    aio_bh_schedule_oneshot(ctx, submit_read_bh, &d);
    AIO_WAIT_WHILE(NULL, !bdrv_debug_is_suspended(dbg, "r"));
    ASSERT_EQ(bdrv_get_in_flight(dbg), 1);

    aio_bh_schedule_oneshot(iothread_get_aio_context(t2), resume_bh, dbg);
    bdrv_drained_begin(dbg);
    ASSERT_EQ(bdrv_get_in_flight(dbg), 0);
    ASSERT_EQ(blk_get_in_flight(d.blk), 0);
    ASSERT_EQ(__atomic_load_n(&d.r.calls, __ATOMIC_SEQ_CST), 1);
    ASSERT_EQ(d.r.ret, 0);
    bdrv_drained_end(dbg);

    ASSERT_EQ(blk_set_aio_context(d.blk, main_ctx, &error_abort), 0);
    blk_unref(d.blk);
    iothread_destroy(t);
    iothread_destroy(t2);
}

/* --- tracing -------------------------------------------------------------- */

static void test_trace_events(void)
{
    BlockBackend *blk;
    AiolabTraceRecord *rec;
    size_t n, i;
    bool begin = false, end = false, req = false;
    char buf[512] = { 0 };

    setup();
    aiolab_trace_set_enabled(true);
    aiolab_trace_clear();
    blk = open_blk("driver=null-co,node-name=traced");
    ASSERT_EQ(blk_pwrite(blk, 0, sizeof(buf), buf, 0), 0);
    bdrv_drained_begin(blk_bs(blk));
    bdrv_drained_end(blk_bs(blk));
    rec = calloc(65536, sizeof(*rec));
    n = aiolab_trace_collect(rec, 65536, 0);
    for (i = 0; i < n && i < 65536; i++) {
        bool ours = rec[i].label && !strcmp(rec[i].label, "traced");

        begin |= ours && !strcmp(rec[i].name, "bdrv_drained_begin");
        end |= ours && !strcmp(rec[i].name, "bdrv_drained_end");
        req |= ours && !strcmp(rec[i].name, "request") &&
               rec[i].phase == 'B' && rec[i].arg == 512;
    }
    ASSERT_TRUE(begin);
    ASSERT_TRUE(end);
    ASSERT_TRUE(req);
    free(rec);
    blk_unref(blk);
}

/* --- misuse --------------------------------------------------------------- */

static void death_blk_unref_with_notifier_cb(void *opaque)
{
}

static void death_blk_unref_with_notifier_attach(AioContext *c, void *o)
{
}

static void death_blk_unref_with_notifier(void)
{
    BlockBackend *blk;

    setup();
    blk = blk_new(NULL);
    blk_add_aio_context_notifier(blk, death_blk_unref_with_notifier_attach,
                                 death_blk_unref_with_notifier_cb, NULL);
    blk_unref(blk);
}

static void death_open_without_bql(void)
{
    setup();
    bql_unlock();
    bdrv_open(NULL, NULL, "driver=null-co", 0, NULL);
}

static void death_in_flight_null(void)
{
    setup();
    bdrv_inc_in_flight(NULL);
}

static void death_aio_without_context_bh(void *opaque)
{
}

static void *death_aio_without_context_thread(void *opaque)
{
    QEMUIOVector qiov;
    char c = 0;

    qemu_iovec_init_buf(&qiov, &c, 1);
    blk_aio_preadv(opaque, 0, &qiov, 0, aio_cb, NULL);
    return NULL;
}

static void death_aio_without_context(void)
{
    BlockBackend *blk;
    pthread_t th;

    setup();
    (void)death_aio_without_context_bh;
    blk = open_blk("driver=null-co");
    pthread_create(&th, NULL, death_aio_without_context_thread, blk);
    pthread_join(th, NULL);
}

static const TestCase tests[] = {
    { "/block/open/errors", test_open_errors },
    { "/block/open/names-refs", test_open_names_refs },
    { "/block/open/read-only", test_open_read_only },
    { "/block/iov", test_iov },
    { "/block/aio/never-early", test_aio_never_calls_back_early },
    { "/block/null/read-zeroes", test_null_read_zeroes },
    { "/block/null/latency", test_null_latency },
    { "/block/parking/not-in-flight", test_parking },
    { "/block/parking/queuing-disabled", test_parking_disabled },
    { "/block/parking/iothread", test_parking_iothread },
    { "/block/parking/woken-counts", test_parking_woken_counts },
    { "/block/dev-ops", test_dev_ops },
    { "/block/blk-drain", test_blk_drain },
    { "/block/replace-node", test_replace_node },
    { "/block/file/threads", test_file_threads },
    { "/block/file/io_uring", test_file_io_uring },
    { "/block/file/odirect/threads", test_file_odirect_threads },
    { "/block/file/odirect/io_uring", test_file_odirect_io_uring },
    { "/block/file/read-only", test_file_read_only },
    { "/block/file/odirect-unaligned/threads", test_odirect_unaligned_threads },
    { "/block/file/odirect-unaligned/io_uring",
      test_odirect_unaligned_io_uring },
    { "/block/file/io_uring-batch", test_io_uring_batch },
    { "/block/file/io_uring-iothread", test_io_uring_iothread },
    { "/block/file/io_uring-refused", test_io_uring_refused },
    { "/block/rmw/serialised", test_rmw_serialised },
    { "/block/rmw/then-plain", test_rmw_then_plain },
    { "/block/rmw/plain-then-rmw", test_plain_then_rmw },
    { "/block/blkdebug/errors", test_blkdebug_errors },
    { "/block/blkdebug/latency", test_blkdebug_latency },
    { "/block/blkdebug/pause", test_blkdebug_pause },
    { "/block/blkdebug/pause-drain-iothread",
      test_blkdebug_pause_drain_iothread },
    { "/block/trace", test_trace_events },
    { "/block/death/iov-add-external", death_iov_add_external,
      .death = "qemu_iovec_add() on a vector it does not own" },
    { "/block/death/blk-unref-with-notifier", death_blk_unref_with_notifier,
      .death = "BlockBackend freed with AioContext notifiers" },
    { "/block/death/open-without-bql", death_open_without_bql,
      .death = "bdrv_open() requires the BQL (GLOBAL_STATE_CODE" },
    { "/block/death/aio-without-context", death_aio_without_context,
      .death = "must be called from a thread with an AioContext" },
    { "/block/death/in-flight-null", death_in_flight_null,
      .death = "bdrv_inc_in_flight() got NULL for 'bs'" },
    { NULL }
};

int main(int argc, char **argv)
{
    return harness_main(argc, argv, tests);
}
