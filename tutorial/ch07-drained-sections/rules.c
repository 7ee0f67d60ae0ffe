/* cc -Ic/include tutorial/ch07-drained-sections/rules.c -o build/rules -Lbuild -laiolab -Wl,-rpath,$PWD/build */
/*
 * SPDX-License-Identifier: MIT
 *
 * ch07-drained-sections/rules.c - what a drained section covers and when.
 *
 *     guest's BlockBackend (a "device": counts its drained callbacks)
 *          | root
 *     [top: blkdebug]      a job's BlockBackend (request queuing off)
 *          | image              |
 *     [disk: null-co, 50 ms per request] <--+
 *
 * Which nodes a drain quiesces (the node and its parents, never its
 * children), how sections nest, when the device hears about them, that
 * begin waits for requests in flight and end waits for nothing, and that
 * only the main loop may drain.
 */
#include "../tutorial.h"
#include <aiolab/aiolab.h>

static int dev_begins, dev_ends;

static void dev_drained_begin(void *opaque)
{
    dev_begins++;
}

static void dev_drained_end(void *opaque)
{
    dev_ends++;
}

static const BlockDevOps dev_ops = {
    .drained_begin = dev_drained_begin,
    .drained_end = dev_drained_end,
};

typedef struct Req {
    char buf[512];
    QEMUIOVector qiov;
    bool done;
} Req;

static void req_done(void *opaque, int ret)
{
    ((Req *)opaque)->done = true;
}

/* A read of 512 bytes through @blk, from the main loop. */
static void submit(BlockBackend *blk, Req *r)
{
    r->done = false;
    qemu_iovec_init_buf(&r->qiov, r->buf, sizeof(r->buf));
    blk_aio_preadv(blk, 0, &r->qiov, 0, req_done, r);
}

static void drain_bh(void *opaque)
{
    bdrv_drained_begin(opaque);     /* from an IOThread: forbidden */
}

/* The child process of tut_run_self(): an IOThread tries to drain. */
static int misuse(void)
{
    IOThread *it;
    BlockDriverState *bs;

    qemu_init_main_loop(&error_abort);
    bql_lock();
    bs = bdrv_open(NULL, NULL, "driver=null-co,size=1M", BDRV_O_RDWR,
                   &error_abort);
    it = iothread_create("io0", &error_abort);
    aio_wait_bh_oneshot(iothread_get_aio_context(it), drain_bh, bs);
    return 0;                       /* not reached */
}

int main(int argc, char **argv)
{
    BlockDriverState *disk, *top;
    BlockBackend *guest, *job;
    Req a, b, c;
    char err[2048];
    int status;

    if (argc > 1 && strcmp(argv[1], "@misuse") == 0) {
        return misuse();
    }
    qemu_init_main_loop(&error_abort);
    bql_lock();
    disk = bdrv_open(NULL, NULL, "driver=null-co,size=1M,latency-ns="
                     "50000000,node-name=disk", BDRV_O_RDWR, &error_abort);
    top = bdrv_open(NULL, NULL, "driver=blkdebug,image=disk,node-name=top",
                    BDRV_O_RDWR, &error_abort);
    guest = blk_new(qemu_get_aio_context());
    blk_insert_bs(guest, top, &error_abort);
    blk_set_dev_ops(guest, &dev_ops, NULL);
    job = blk_new(qemu_get_aio_context());
    blk_insert_bs(job, disk, &error_abort);
    blk_set_disable_request_queuing(job, true);

    /* [region: waits] */
    submit(guest, &a);                      /* 50 ms in the disk */
    bdrv_drained_begin(top);
    printf("drained top: quiesce top %d, disk %d; guest in drain %d\n",
           bdrv_get_quiesce_counter(top), bdrv_get_quiesce_counter(disk),
           blk_in_drain(guest));
    /* [endregion] */
    CHECK("bdrv_drained_begin() returned after the request in flight "
          "completed", a.done && bdrv_get_in_flight(disk) == 0);
    CHECK("the drained node and its parent are quiesced, its child is "
          "not", bdrv_get_quiesce_counter(top) == 1 &&
          blk_in_drain(guest) && bdrv_get_quiesce_counter(disk) == 0);
    CHECK_EQ("the device heard drained_begin once", dev_begins, 1);

    /* [region: nest] */
    bdrv_drained_begin(top);                /* nested */
    bdrv_drained_begin(disk);               /* the child: its parents too */
    printf("nested: quiesce top %d, disk %d; device begins %d\n",
           bdrv_get_quiesce_counter(top), bdrv_get_quiesce_counter(disk),
           dev_begins);
    /* [endregion] */
    CHECK("sections nest: top is quiesced 3 times (twice, and once by "
          "its child's drain), disk once", bdrv_get_quiesce_counter(top)
          == 3 && bdrv_get_quiesce_counter(disk) == 1);
    CHECK_EQ("the device still heard drained_begin only once (0 -> 1)",
             dev_begins, 1);

    submit(guest, &b);                      /* parked */
    submit(job, &c);                        /* queuing off: runs */
    AIO_WAIT_WHILE(NULL, !c.done);
    CHECK("inside the section, the guest's request is parked (not in "
          "flight) while the job's ran", !b.done &&
          blk_get_in_flight(guest) == 0);

    bdrv_drained_end(disk);
    bdrv_drained_end(top);
    CHECK_EQ("two ends later the device has not heard drained_end",
             dev_ends, 0);
    /* [region: end] */
    bdrv_drained_end(top);                  /* the last end: 1 -> 0 */
    printf("after the last end: parked request done %d, in flight %d\n",
           b.done, bdrv_get_in_flight(disk));
    /* [endregion] */
    CHECK_EQ("the last end called the device's drained_end once",
             dev_ends, 1);
    CHECK("bdrv_drained_end() waited for nothing: the parked request is "
          "not done yet", !b.done);
    AIO_WAIT_WHILE(NULL, !b.done);
    CHECK("it completes later, in the event loop", b.done);

    status = tut_run_self("@misuse", err, sizeof(err));
    printf("an IOThread that drains:\n%s", err);
    CHECK("a drain from an IOThread aborts, naming the rule",
          WIFSIGNALED(status) && strstr(err, "bdrv_drained_begin()") &&
          strstr(err, "BQL"));

    blk_unref(job);
    blk_set_dev_ops(guest, NULL, NULL);
    blk_unref(guest);
    bdrv_unref(top);
    bdrv_unref(disk);
    bql_unlock();
    return 0;
}
