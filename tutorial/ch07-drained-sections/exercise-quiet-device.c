/* cc -Ic/include tutorial/ch07-drained-sections/exercise-quiet-device.c -o build/exercise-quiet-device -Lbuild -laiolab -Wl,-rpath,$PWD/build */
/*
 * SPDX-License-Identifier: MIT
 *
 * ch07-drained-sections/exercise-quiet-device.c - EXERCISE: a device
 * that keeps quiet while its disk is drained.
 *
 * A toy device: its guest kicks an EventNotifier (the device's host
 * notifier); the handler runs in IOThread io0 and writes one block per
 * kick.  Like QEMU's block exports, its BlockBackend does not park
 * requests while drained (blk_set_disable_request_queuing): only the
 * device itself can stop them.  As given, a kick inside a drained section
 * sends a write straight to the node the main loop believes is quiet.
 *
 * Write dev_drained_begin() and dev_drained_end(), as virtio-blk does
 * (c/hw/virtio-blk-device.c): no kick handled inside the section, and
 * the kicks that came meanwhile handled once it ends.
 */
#include "../tutorial.h"
#include <aiolab/aiolab.h>

typedef struct Dev {
    EventNotifier kick;             /* the guest writes it */
    AioContext *ctx;                /* io0: where kicks are handled */
    BlockBackend *blk;
    char buf[4096];
    QEMUIOVector qiov;
    int submitted, completed;       /* atomic */
} Dev;

static void dev_write_done(void *opaque, int ret)
{
    Dev *d = opaque;

    __atomic_fetch_add(&d->completed, 1, __ATOMIC_SEQ_CST);
    aio_wait_kick();
}

/* The kick handler, in io0: one write per kick. */
static void dev_kick(EventNotifier *n)
{
    Dev *d = container_of(n, Dev, kick);

    if (!event_notifier_test_and_clear(n)) {
        return;
    }
    __atomic_fetch_add(&d->submitted, 1, __ATOMIC_SEQ_CST);
    blk_aio_pwritev(d->blk, 0, &d->qiov, 0, dev_write_done, d);
    aio_wait_kick();
}

/* Main loop, BQL held: the disk's first drain (0 -> 1). */
static void dev_drained_begin(void *opaque)
{
    /* TODO: stop handling kicks. */
}

/* Main loop, BQL held: the last end (1 -> 0). */
static void dev_drained_end(void *opaque)
{
    /* TODO: handle kicks again, including those that came meanwhile. */
}

/* --- the test rig below: no need to change it --------------------------- */

static const BlockDevOps dev_ops = {
    .drained_begin = dev_drained_begin,
    .drained_end = dev_drained_end,
};

static int64_t node_writes(BlockDriverState *bs)
{
    AiolabTestDriverStats st;

    aiolab_test_driver_get_stats(bs, &st);
    return st.writes;
}

static int get(int *p)
{
    return __atomic_load_n(p, __ATOMIC_SEQ_CST);
}

int main(void)
{
    BlockDriverState *disk;
    IOThread *it;
    int64_t writes;
    Dev d = { 0 };
    int i;

    qemu_init_main_loop(&error_abort);
    bql_lock();
    it = iothread_create("io0", &error_abort);
    d.ctx = iothread_get_aio_context(it);
    d.blk = blk_new_open(NULL, NULL, "driver=aiolab-test,size=1M,"
                         "node-name=disk", BDRV_O_RDWR, &error_abort);
    disk = blk_bs(d.blk);
    blk_set_disable_request_queuing(d.blk, true);
    blk_set_dev_ops(d.blk, &dev_ops, &d);
    qemu_iovec_init_buf(&d.qiov, d.buf, sizeof(d.buf));
    event_notifier_init(&d.kick, false);
    aio_set_event_notifier(d.ctx, &d.kick, dev_kick, NULL, NULL);

    event_notifier_set(&d.kick);                /* a kick: one write */
    AIO_WAIT_WHILE(NULL, get(&d.completed) < 1);

    bdrv_drained_begin(disk);
    writes = node_writes(disk);
    event_notifier_set(&d.kick);                /* the guest kicks on */
    for (i = 0; i < 300 && get(&d.submitted) == 1; i++) {
        usleep(1000);                           /* give io0 300 ms */
    }
    printf("inside the section: %d kick(s) handled, %lld write(s) "
           "reached the node\n", get(&d.submitted) - 1,
           (long long)(node_writes(disk) - writes));
    CHECK_HINT("no write reached the node inside the drained section",
               node_writes(disk) == writes && get(&d.submitted) == 1,
               "the BlockBackend does not park requests: the device must "
               "stop handling kicks in drained_begin (detach the handler "
               "from io0's context: aio_set_event_notifier with NULL)");
    bdrv_drained_end(disk);

    for (i = 0; i < 2000 && get(&d.completed) < 2; i++) {
        usleep(1000);
    }
    CHECK_HINT("the kick sent during the section was handled after it",
               get(&d.completed) >= 2 && node_writes(disk) > writes,
               "drained_end must attach the handler again, and kick (an "
               "eventfd that is already set may not wake io0 by itself)");

    aio_set_event_notifier(d.ctx, &d.kick, NULL, NULL, NULL);
    blk_set_dev_ops(d.blk, NULL, NULL);
    blk_unref(d.blk);
    iothread_destroy(it);
    event_notifier_cleanup(&d.kick);
    bql_unlock();
    return 0;
}
