/* cc -Ic/include tutorial/chC-malicious-guests/needs-reset.c -o build/needs-reset -Lbuild -laiolab -Wl,-rpath,$PWD/build */
/*
 * SPDX-License-Identifier: MIT
 *
 * chC-malicious-guests/needs-reset.c - a broken device, from the guest's
 * side.
 *
 * A virtio-blk device whose queue IOThread io0 handles (iothread=io0,
 * ioeventfd on), and this program as its guest: it reads a block, then
 * publishes a chain that runs off the end of RAM and kicks.  io0 finds
 * the error while handling the kick; the guest sees NEEDS_RESET in the
 * status register and gets a configuration interrupt.  From then on the
 * device ignores the guest - kicks, valid requests - and NEEDS_RESET
 * sticks, whatever status the guest writes, until the guest resets the
 * device (status 0) and sets it up again.
 */
#include "../tutorial.h"
#include <poll.h>
#include <aiolab/aiolab.h>

#define RAM_SIZE (1 << 20)
#define QSIZE    16

typedef struct Guest {
    GuestMemory *mem;
    uint8_t *ram;
    VirtIOBlock *dev;
    VirtIODevice *vdev;
    AiolabVring vr;
    uint64_t next;                  /* next free guest address */
} Guest;

static const uint8_t ST_FEATURES = VIRTIO_CONFIG_S_ACKNOWLEDGE |
                                   VIRTIO_CONFIG_S_DRIVER |
                                   VIRTIO_CONFIG_S_FEATURES_OK;

/* Features, one ring, DRIVER_OK (which starts ioeventfd: kicks go to
 * io0). */
static void driver_setup(Guest *g)
{
    uint64_t d, a, u;

    virtio_set_features(g->vdev, aiolab_virtio_get_host_features(g->vdev) &
                        ~(1ull << VIRTIO_RING_F_EVENT_IDX));
    aiolab_virtio_bus_set_status(g->vdev, ST_FEATURES);
    aiolab_vring_layout(QSIZE, 0x1000, &d, &a, &u);
    aiolab_vring_cleanup(&g->vr);
    aiolab_vring_init(&g->vr, g->mem, QSIZE, d, a, u, false);
    virtio_queue_set_num(g->vdev, 0, QSIZE);
    virtio_queue_set_rings(g->vdev, 0, d, a, u);
    aiolab_virtio_bus_set_status(g->vdev,
                                 ST_FEATURES | VIRTIO_CONFIG_S_DRIVER_OK);
    g->next = 0x10000;
}

/* A 512-byte read of sector 0: header, data, status (0xee: unwritten).
 * @data_gpa overrides where the data goes (a hostile guest's choice). */
static uint64_t guest_read(Guest *g, uint64_t data_gpa)
{
    uint64_t hdr = g->next, data = hdr + 16, status = data + 512;
    AiolabVringBuf bufs[3] = {
        { hdr, 16, false },
        { data_gpa ? data_gpa : data, 512, true },
        { status, 1, true },
    };

    stl_le_p(g->ram + hdr, VIRTIO_BLK_T_IN);
    stq_le_p(g->ram + hdr + 8, 0);
    g->ram[status] = 0xee;
    g->next = status + 64;
    aiolab_vring_add_chain(&g->vr, bufs, 3);
    aiolab_virtio_guest_kick(g->vdev, 0);       /* an eventfd write */
    return status;
}

/* Wait up to @ms for @e's eventfd (an interrupt): its count, or 0. */
static uint64_t wait_irq(EventNotifier *e, int ms)
{
    struct pollfd p = { .fd = event_notifier_get_fd(e), .events = POLLIN };
    uint64_t n = 0;

    if (poll(&p, 1, ms) == 1 && read(p.fd, &n, sizeof(n)) != sizeof(n)) {
        n = 0;
    }
    return n;
}

/* The thread that recorded trace mark @name (0: none did). */
static int trace_tid(const char *name)
{
    static AiolabTraceRecord rec[1 << 14];
    size_t n = aiolab_trace_collect(rec, 1 << 14, 0);

    for (size_t i = 0; i < n && i < (1 << 14); i++) {
        if (rec[i].name && strcmp(rec[i].name, name) == 0) {
            return rec[i].tid;
        }
    }
    return 0;
}

int main(void)
{
    EventNotifier *irq, *config;
    VirtIOBlkConf conf;
    BlockBackend *blk;
    IOThread *io;
    Guest g = { 0 };
    uint64_t status;
    char msg[128];

    qemu_init_main_loop(&error_abort);
    bql_lock();
    aiolab_trace_set_enabled(true);
    io = iothread_create("io0", &error_abort);
    g.mem = aiolab_guest_mem_new();
    g.ram = aiolab_guest_mem_add_ram(g.mem, 0, RAM_SIZE, "guest-ram",
                                     &error_abort);
    blk = blk_new_open(NULL, NULL, "driver=null-co,size=1M,read-zeroes=on",
                       BDRV_O_RDWR, &error_abort);
    virtio_blk_conf_init(&conf);
    conf.blk = blk;
    conf.iothread = "io0";
    conf.queue_size = QSIZE;
    g.dev = virtio_blk_new(&conf, g.mem, NULL, NULL, &error_abort);
    g.vdev = aiolab_virtio_blk_get_vdev(g.dev);
    irq = virtio_queue_get_guest_notifier(virtio_get_queue(g.vdev, 0));
    config = aiolab_virtio_get_config_notifier(g.vdev);
    driver_setup(&g);

    status = guest_read(&g, 0);
    /* used.idx first: its acquire load orders the status byte's read */
    CHECK("a valid read completes with status OK and an interrupt",
          wait_irq(irq, 5000) > 0 && aiolab_vring_used_idx(&g.vr) == 1 &&
          g.ram[status] == VIRTIO_BLK_S_OK);

    /* [region: hostile] */
    status = guest_read(&g, RAM_SIZE - 256);    /* 256 bytes past RAM */
    CHECK("the hostile chain brings a configuration interrupt",
          wait_irq(config, 5000) > 0);
    aiolab_virtio_device_get_last_error(g.vdev, msg, sizeof(msg));
    /* [endregion] */
    printf("the device said: \"%s\"; status register 0x%02x\n", msg,
           aiolab_virtio_get_status(g.vdev));
    CHECK("the status register says NEEDS_RESET",
          aiolab_virtio_get_status(g.vdev) & VIRTIO_CONFIG_S_NEEDS_RESET);
    CHECK("io0 found the error, not the main loop",
          trace_tid("virtio_error") == iothread_get_thread_id(io));
    CHECK("the hostile request is not completed: no status byte written",
          g.ram[status] == 0xee && aiolab_vring_used_idx(&g.vr) == 1);

    /* [region: deaf] */
    status = guest_read(&g, 0);                 /* a valid read, kicked */
    CHECK("a valid read is now ignored: no interrupt, no used entry",
          wait_irq(irq, 100) == 0 && g.ram[status] == 0xee &&
          aiolab_vring_used_idx(&g.vr) == 1);
    aiolab_virtio_bus_set_status(g.vdev, ST_FEATURES |
                                 VIRTIO_CONFIG_S_DRIVER_OK);
    /* [endregion] */
    CHECK("NEEDS_RESET sticks when the guest writes the status without it",
          aiolab_virtio_get_status(g.vdev) & VIRTIO_CONFIG_S_NEEDS_RESET);

    /* [region: reset] */
    aiolab_virtio_bus_set_status(g.vdev, 0);    /* reset: ioeventfd stops */
    driver_setup(&g);                           /* and starts again */
    status = guest_read(&g, 0);
    /* [endregion] */
    CHECK("after a reset the guest sets up again and reads work",
          wait_irq(irq, 5000) > 0 && aiolab_vring_used_idx(&g.vr) == 1 &&
          g.ram[status] == VIRTIO_BLK_S_OK &&
          !aiolab_virtio_device_is_broken(g.vdev));

    virtio_blk_free(g.dev);
    blk_unref(blk);
    iothread_destroy(io);
    aiolab_vring_cleanup(&g.vr);
    aiolab_guest_mem_free(g.mem);
    bql_unlock();
    return 0;
}
