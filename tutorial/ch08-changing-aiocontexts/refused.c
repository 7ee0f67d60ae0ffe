/* cc -Ic/include tutorial/ch08-changing-aiocontexts/refused.c -o build/refused -Lbuild -laiolab -Wl,-rpath,$PWD/build */
/*
 * SPDX-License-Identifier: MIT
 *
 * ch08-changing-aiocontexts/refused.c - a device's disk stays put.
 *
 * The toy VM's virtio-blk disk runs in IOThread io0 (-device
 * virtio-blk,drive=disk0,iothread=io0) while the guest writes and
 * verifies it.  Halfway through, the main loop tries what the monitor's
 * x-blockdev-set-iothread does: move node disk0 to io1.  QEMU 9.0 refuses,
 * and so does aiolab.  Node spare, which no device uses, moves at once.
 */
#include "../tutorial.h"
#include "../toy.h"
#include <errno.h>

typedef struct Attempt {
    BlockDriverState *disk, *spare;
    AioContext *io1;
    int ret_disk, ret_spare;
    char err[256];
    bool disk_still_in_io0, spare_in_io1, guest_writing;
    AiolabMachine *m;
} Attempt;

/* A main-loop timer, halfway through the guest's run (BQL held, as a
 * monitor command would be). */
static void attempt_cb(void *opaque)
{
    Attempt *a = opaque;
    AioContext *io0 = iothread_get_aio_context(iothread_by_id("io0"));
    Error *err = NULL;

    a->guest_writing = toy_stats(a->m, 0).writes > 0;
    /* [region: attempt] */
    a->ret_disk = bdrv_try_change_aio_context(a->disk, a->io1, NULL, &err);
    if (err) {
        snprintf(a->err, sizeof(a->err), "%s", error_get_pretty(err));
        error_free(err);
    }
    a->ret_spare = bdrv_try_change_aio_context(a->spare, a->io1, NULL,
                                               &error_abort);
    /* [endregion] */
    a->disk_still_in_io0 = bdrv_get_aio_context(a->disk) == io0;
    a->spare_in_io1 = bdrv_get_aio_context(a->spare) == a->io1;
}

int main(void)
{
    Attempt a = { 0 };
    AiolabWorkloadStats st;
    AioContext *io0;
    VirtIOBlkConf conf;
    VirtIOBlock *dev;
    QEMUTimer *t;

    toy_init();
    io0 = iothread_get_aio_context(iothread_create("io0", &error_abort));
    a.io1 = iothread_get_aio_context(iothread_create("io1", &error_abort));
    a.disk = toy_disk("disk0", 4);
    a.spare = toy_disk("spare", 1);
    a.m = toy_machine(1);

    /* [region: device] */
    virtio_blk_conf_init(&conf);        /* -device virtio-blk,drive=disk0 */
    conf.iothread = "io0";              /*         ,iothread=io0          */
    dev = aiolab_machine_add_virtio_blk(a.m, &conf, "disk0", &error_abort);
    /* [endregion] */
    toy_workload(a.m, "vcpu=0,rw=verify,bs=4096,iodepth=4,runtime=0.4");
    t = timer_new_ms(QEMU_CLOCK_REALTIME, attempt_cb, &a);
    timer_mod(t, qemu_clock_get_ms(QEMU_CLOCK_REALTIME) + 200);
    toy_run(a.m);
    timer_free(t);

    printf("move disk0 to io1: %d (%s)\n", a.ret_disk, a.err);
    printf("move spare to io1: %d\n", a.ret_spare);
    CHECK("the attempt came while the guest was writing", a.guest_writing);
    CHECK("the device's queue and its BlockBackend were in io0, as the "
          "device was created", aiolab_virtio_blk_get_vq_aio_context(dev, 0)
          == io0);
    CHECK("moving the device's node is refused with QEMU's message",
          a.ret_disk == -EPERM && strstr(a.err, "Cannot change iothread "
          "of active block backend"));
    CHECK("... and nothing changed: disk0 is still in io0",
          a.disk_still_in_io0);
    CHECK("the node no device uses moved to io1",
          a.ret_spare == 0 && a.spare_in_io1);
    st = toy_stats(a.m, 0);
    printf("guest: %llu writes, %llu blocks verified, %llu mismatches, "
           "%llu lost\n", (unsigned long long)st.writes,
           (unsigned long long)st.verified,
           (unsigned long long)st.verify_errors,
           (unsigned long long)st.lost);
    CHECK("the guest never noticed: no mismatch, nothing lost",
          st.verified > 0 && st.verify_errors == 0 && st.lost == 0);

    aiolab_machine_free(a.m);
    bdrv_unref(a.disk);
    bdrv_unref(a.spare);
    bql_unlock();
    return 0;
}
