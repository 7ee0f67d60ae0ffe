/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz-virtio-blk.c - libFuzzer target: a whole virtio-blk
 * handle_vq pass (parsing, range checks, merging, submission, completion,
 * error actions, restart) over arbitrary guest memory and ring contents,
 * against null-co through blkdebug, in this thread's polled main loop.
 *
 *   python3 tests/fuzz/run.py build && build/fuzz/fuzz-virtio-blk CORPUS
 *
 * Parameters (input bytes 16-31, after the common header):
 *   16  werror (BlockdevOnError, mod 5)     17  rerror (mod 5)
 *   18  injected errors: bit 0 write EIO, 1 read EIO, 2 flush EIO,
 *       3 write ENOSPC, 4 discard EIO, 5 write-zeroes EIO
 *   19  bit 0 request merging off, bit 1 logical block size 4096,
 *       bit 2 no discard/write-zeroes offered
 *   20     the disk: 8 MiB, 64.5 KiB, 4 KiB or 512 bytes (mod 4)
 * Each input gets a fresh device (realize checks run every time), one
 * kick (two with flag bit 3), every request drained, parked requests
 * restarted once with the errors cleared, then unrealize.  Properties:
 * no crash, no access outside guest RAM, the BlockBackend idle at the
 * end, bounded time.
 */
#include <errno.h>
#include <stdio.h>
#include "fuzz-common.h"

static BlockBackend *blks[4], *blk;
static BlockDriverState *dbg;

static void init_once(void)
{
    static const char *sizes[] = { "8M", "66048", "4096", "512" };
    char opts[128];

    fuzz_global_init();
    for (int i = 0; i < 4; i++) {
        BlockDriverState *null;

        snprintf(opts, sizeof(opts), "driver=null-co,size=%s,node-name=n%d",
                 sizes[i], i);
        null = bdrv_open(NULL, NULL, opts, BDRV_O_RDWR, &error_abort);
        snprintf(opts, sizeof(opts), "driver=blkdebug,image=n%d", i);
        blks[i] = blk_new_open(NULL, NULL, opts, BDRV_O_RDWR, &error_abort);
        bdrv_unref(null);
    }
}

static void drain(void)
{
    AioContext *ctx = qemu_get_aio_context();

    /* null-co completes from BHs in this context: bounded. */
    while (blk_get_in_flight(blk) > 0) {
        aio_poll(ctx, true);
    }
    while (aio_poll(ctx, false)) {
        /* run whatever the completions scheduled */
    }
}

static void inject(uint8_t mask)
{
    static const struct { const char *iotype; int err; } rules[] = {
        { "write", EIO }, { "read", EIO }, { "flush", EIO },
        { "write", ENOSPC }, { "discard", EIO }, { "write-zeroes", EIO },
    };

    aiolab_blkdebug_clear_errors(dbg);
    for (unsigned i = 0; i < ARRAY_SIZE(rules); i++) {
        if (mask & (1u << i)) {
            aiolab_blkdebug_inject_error(dbg, rules[i].iotype, rules[i].err,
                                         0, 0, false);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool inited;
    AiolabVirtIOBlkStats st;
    VirtIOBlkConf conf;
    VirtIODevice *vdev;
    VirtIOBlock *s;
    FuzzInput in;

    if (!inited) {
        init_once();
        inited = true;
    }
    if (!fuzz_parse(data, size, &in)) {
        return -1;
    }
    blk = blks[in.param[4] % 4];
    dbg = blk_bs(blk);
    virtio_blk_conf_init(&conf);
    conf.blk = blk;
    conf.ioeventfd = false;
    conf.queue_size = 64;
    conf.werror = in.param[0] % 5;
    conf.rerror = in.param[1] % 5;
    conf.request_merging = !(in.param[3] & 1);
    if (in.param[3] & 2) {
        conf.logical_block_size = conf.physical_block_size = 4096;
    }
    conf.discard = conf.write_zeroes = !(in.param[3] & 4);
    conf.serial = "fuzz";
    s = virtio_blk_new(&conf, fuzz_mem, NULL, NULL, &error_abort);
    vdev = aiolab_virtio_blk_get_vdev(s);
    inject(in.param[2]);
    fuzz_load_image(&in);
    fuzz_driver_setup(vdev, &in);
    virtio_queue_notify(vdev, 0);               /* handled inline (BQL) */
    drain();
    if (in.flags & 8) {
        virtio_queue_notify(vdev, 0);
        drain();
    }
    aiolab_virtio_blk_get_stats(s, &st);
    if (st.parked) {
        aiolab_blkdebug_clear_errors(dbg);
        virtio_blk_dma_restart_cb(s, true, 0);
        drain();
    }
    virtio_blk_free(s);
    if (blk_get_in_flight(blk) != 0) {
        abort();
    }
    return 0;
}
