/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz-virtqueue.c - libFuzzer target: virtqueue_pop and
 * friends over arbitrary guest memory and ring contents.
 *
 *   python3 tests/fuzz/run.py build && build/fuzz/fuzz-virtqueue CORPUS
 *
 * Each input sets a queue up (size, ring addresses, starting index,
 * features: see fuzz-common.h), fills guest RAM, then pops until the
 * queue is empty or the device breaks, completing, dropping or putting
 * back each element as the parameter bytes say, and asking whether to
 * notify.  Properties: no crash, no access outside guest RAM (guard
 * pages + ASan), every element's buffers are where the translation puts
 * them, inuse never exceeds the queue size, bounded time.
 */
#include "fuzz-common.h"

#define MAX_HELD 64

static VirtIOBlock *dev;
static BlockBackend *blk;

static void init_once(void)
{
    VirtIOBlkConf conf;

    fuzz_global_init();
    blk = blk_new_open(NULL, NULL, "driver=null-co,size=1M", BDRV_O_RDWR,
                       &error_abort);
    virtio_blk_conf_init(&conf);
    conf.blk = blk;
    conf.ioeventfd = false;
    conf.queue_size = 64;
    dev = virtio_blk_new(&conf, fuzz_mem, NULL, NULL, &error_abort);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool inited;
    VirtQueueElement *held[MAX_HELD];
    unsigned nheld = 0, step = 0;
    VirtIODevice *vdev;
    VirtQueue *vq;
    FuzzInput in;

    if (!inited) {
        init_once();
        inited = true;
    }
    if (!fuzz_parse(data, size, &in)) {
        return -1;
    }
    vdev = aiolab_virtio_blk_get_vdev(dev);
    vq = virtio_get_queue(vdev, 0);
    aiolab_virtio_bus_set_status(vdev, 0);      /* reset */
    fuzz_load_image(&in);
    fuzz_driver_setup(vdev, &in);
    if (in.flags & 4) {
        virtio_queue_set_notification(vq, 0);
    }
    /* At most 256 pops: an unpop hands the same chain back. */
    for (step = 0; step < 256; step++) {
        uint8_t op = in.param[step % 16] >> (2 * (step / 16 % 4)) & 3;
        VirtQueueElement *elem = virtqueue_pop(vq, sizeof(*elem) + (op * 8));

        if (!elem) {
            break;
        }
        fuzz_check_elem(elem);
        if (aiolab_virtio_queue_get_inuse(vdev, 0) >
            (unsigned)virtio_queue_get_num(vdev, 0)) {
            abort();
        }
        switch (op) {
        case 0:                                 /* complete now */
            virtqueue_push(vq, elem, elem->in_num ? 1 : 0);
            virtio_notify(vdev, vq);
            free(elem);
            break;
        case 1:                                 /* drop it */
            virtqueue_detach_element(vq, elem, 0);
            free(elem);
            break;
        case 2:                                 /* not now */
            virtqueue_unpop(vq, elem, 0);
            free(elem);
            break;
        default:                                /* keep it in flight */
            if (nheld < MAX_HELD) {
                held[nheld++] = elem;
            } else {
                virtqueue_push(vq, elem, 0);
                free(elem);
            }
            break;
        }
    }
    /* Complete what is held as one batch, last first. */
    defer_call_begin();
    for (unsigned i = 0; i < nheld; i++) {
        virtqueue_fill(vq, held[nheld - 1 - i], 0, i);
    }
    virtqueue_flush(vq, nheld);
    virtio_notify_irqfd(vdev, vq);
    defer_call_end();
    for (unsigned i = 0; i < nheld; i++) {
        free(held[i]);
    }
    if (aiolab_virtio_queue_get_inuse(vdev, 0) != 0) {
        abort();                                /* every element accounted */
    }
    event_notifier_test_and_clear(virtio_queue_get_guest_notifier(vq));
    event_notifier_test_and_clear(aiolab_virtio_get_config_notifier(vdev));
    return 0;
}
