/* cc -Ic/include tutorial/ch07-drained-sections/device.c -o build/device -Lbuild -laiolab -Wl,-rpath,$PWD/build */
/*
 * SPDX-License-Identifier: MIT
 *
 * ch07-drained-sections/device.c - the device's side of a drain.
 *
 * A virtio-blk device (QEMU 9.0's, c/hw) whose queue IOThread io0
 * handles; this program plays its guest.  The main loop drains the
 * disk's node, and inside the section the guest sends a write and a
 * GET_ID, and kicks.  Twice: first with the device's drained_begin/end
 * callbacks taken away (its BlockDevOps replaced by empty ones), then as
 * QEMU has them: drained_begin detaches the queue's host notifier from
 * io0, drained_end attaches it again and kicks.
 */
#include "../tutorial.h"
#include <aiolab/aiolab.h>

#define RAM_SIZE (1 << 20)

typedef struct Guest {
    GuestMemory *mem;
    uint8_t *ram;
    AiolabVring vr;
    uint64_t next;                  /* next free guest address */
    VirtIOBlock *dev;
    VirtIODevice *vdev;
} Guest;

/* The guest driver's start-up: features, one ring, DRIVER_OK (which
 * starts ioeventfd: the queue's kicks go to io0). */
static void guest_start(Guest *g, BlockBackend *blk)
{
    uint8_t st = VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
                 VIRTIO_CONFIG_S_FEATURES_OK;
    uint64_t d, a, u;
    VirtIOBlkConf conf;

    virtio_blk_conf_init(&conf);
    conf.blk = blk;                 /* -device virtio-blk,drive=disk0, */
    conf.iothread = "io0";          /*         iothread=io0            */
    conf.queue_size = 16;
    g->dev = virtio_blk_new(&conf, g->mem, NULL, NULL, &error_abort);
    g->vdev = aiolab_virtio_blk_get_vdev(g->dev);
    virtio_set_features(g->vdev, aiolab_virtio_get_host_features(g->vdev) &
                        ~(1ull << VIRTIO_RING_F_EVENT_IDX));
    aiolab_virtio_bus_set_status(g->vdev, st);
    aiolab_vring_layout(16, 0x1000, &d, &a, &u);   /* not at 0: unset */
    aiolab_vring_init(&g->vr, g->mem, 16, d, a, u, false);
    virtio_queue_set_num(g->vdev, 0, 16);
    virtio_queue_set_rings(g->vdev, 0, d, a, u);
    aiolab_virtio_bus_set_status(g->vdev, st | VIRTIO_CONFIG_S_DRIVER_OK);
    g->next = 0x10000;
}

/* Publish one request: header, data (@len bytes), status byte. */
static void guest_request(Guest *g, uint32_t type, uint32_t len)
{
    uint64_t hdr = g->next, data = hdr + 16, status = data + len;
    AiolabVringBuf bufs[3] = {
        { hdr, 16, false },
        { data, len, type != VIRTIO_BLK_T_OUT },
        { status, 1, true },
    };

    memset(g->ram + hdr, 0, 16);
    g->ram[hdr] = type;             /* little-endian u32 type, sector 0 */
    g->ram[status] = 0xff;
    aiolab_vring_add_chain(&g->vr, bufs, 3);
    g->next = status + 64;
}

static int used(Guest *g)
{
    return aiolab_vring_used_idx(&g->vr);
}

/* Give io0 up to @ms to handle the kick: it is done sooner if it takes
 * both requests (the write parked, GET_ID completed).  Returns how many
 * requests it took off the ring. */
static int settle(Guest *g, int before, int ms)
{
    int popped = 0;

    for (int i = 0; i < ms; i++) {
        popped = (int)virtio_queue_get_last_avail_idx(g->vdev, 0) - before;
        if (popped == 2 && used(g) == before + 1) {
            break;
        }
        usleep(1000);
    }
    return popped;
}

static void wait_used(Guest *g, int n)
{
    for (int i = 0; used(g) < n && i < 5000; i++) {
        usleep(1000);
    }
    CHECK_EQ("the guest's requests complete", used(g), n);
}

static int64_t node_writes(BlockDriverState *bs)
{
    AiolabTestDriverStats st;

    aiolab_test_driver_get_stats(bs, &st);
    return st.writes;
}

static const BlockDevOps no_drained_callbacks = { 0 };

static void run(bool callbacks)
{
    Guest g = { .mem = aiolab_guest_mem_new() };
    BlockBackend *blk = blk_new_open(NULL, NULL, "driver=aiolab-test,"
                                     "size=64M,node-name=disk0",
                                     BDRV_O_RDWR, &error_abort);
    BlockDriverState *disk = blk_bs(blk);
    int popped, seen, writes;

    g.ram = aiolab_guest_mem_add_ram(g.mem, 0, RAM_SIZE, "ram",
                                     &error_abort);
    guest_start(&g, blk);
    if (!callbacks) {
        /* [region: without] */
        blk_set_dev_ops(blk, &no_drained_callbacks, NULL);
        /* [endregion] */
    }
    guest_request(&g, VIRTIO_BLK_T_OUT, 4096);  /* before: a write */
    aiolab_virtio_guest_kick(g.vdev, 0);
    wait_used(&g, 1);

    /* [region: section] */
    bdrv_drained_begin(disk);
    writes = node_writes(disk);
    guest_request(&g, VIRTIO_BLK_T_OUT, 4096);  /* inside: a write */
    guest_request(&g, VIRTIO_BLK_T_GET_ID, 20); /* ... and GET_ID */
    aiolab_virtio_guest_kick(g.vdev, 0);
    popped = settle(&g, 1, 300);                /* give io0 300 ms */
    seen = used(&g) - 1;
    printf("%s: io0 took %d of the 2 requests off the ring inside the "
           "section; the guest saw %d complete\n",
           callbacks ? "with the callbacks" : "without them", popped,
           seen);
    CHECK("nothing reached the node inside the section: no write, "
          "nothing in flight", node_writes(disk) == writes &&
          bdrv_get_in_flight(disk) == 0 && blk_get_in_flight(blk) == 0);
    bdrv_drained_end(disk);
    /* [endregion] */
    if (callbacks) {
        CHECK_EQ("with them, the device took nothing off the ring",
                 popped, 0);
        CHECK_EQ("... and the guest saw nothing complete", seen, 0);
    } else {
        CHECK_EQ("without them, io0 took both requests off the ring",
                 popped, 2);
        CHECK_EQ("... and completed GET_ID: the guest saw progress in a "
                 "section that should be quiet", seen, 1);
    }
    wait_used(&g, 3);
    CHECK("after drained_end both requests complete, the write on the "
          "node", node_writes(disk) == writes + 1);
    virtio_blk_free(g.dev);
    aiolab_vring_cleanup(&g.vr);
    aiolab_guest_mem_free(g.mem);
    blk_unref(blk);
}

int main(void)
{
    qemu_init_main_loop(&error_abort);
    bql_lock();
    iothread_create("io0", &error_abort);   /* -object iothread,id=io0 */
    run(false);
    run(true);
    bql_unlock();
    return 0;
}
