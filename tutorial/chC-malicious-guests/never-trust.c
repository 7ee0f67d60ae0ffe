/* cc -Ic/include tutorial/chC-malicious-guests/never-trust.c -o build/never-trust -Lbuild -laiolab -Wl,-rpath,$PWD/build */
/*
 * SPDX-License-Identifier: MIT
 *
 * chC-malicious-guests/never-trust.c - two things a device must never
 * trust: guest memory to hold still, and itself not to be re-entered.
 *
 * 1. Double fetch.  Guest RAM is shared with the guest's other vCPUs,
 *    which keep running while the device works.  A toy device reads a
 *    request's length from guest memory, checks it, and reads it again
 *    to use it; between the two reads another vCPU rewrites it.  (The
 *    race is made deterministic: the "other vCPU" stores right after
 *    the device's first load.)  The fix is QEMU's rule: copy what you
 *    read out of guest memory once, and only look at the copy.  aiolab's
 *    virtqueue_pop() does that with every descriptor: the element it
 *    returns does not change when the guest rewrites the ring.
 *
 * 2. Re-entrancy.  A toy device finishes a DMA in a bottom half; the
 *    guest aimed the DMA at the device's own MMIO registers, so the
 *    write becomes an MMIO access to the same device - its reset, which
 *    frees the buffer the BH is still using.  QEMU's MemReentrancyGuard
 *    stops that: a guarded BH marks the device "engaged in I/O", and the
 *    memory core refuses an MMIO access to an engaged device.
 */
#include "../tutorial.h"
#include <aiolab/aiolab.h>

#define RAM_SIZE  (1 << 20)
#define REQ       0x8000            /* a toy request: le32 len, payload */
#define DEV_BUF   64                /* the device's own buffer */

static GuestMemory *mem;
static uint8_t *ram;

/* --- 1. double fetch ------------------------------------------------- */

static int loads;                   /* the device's loads of len */

/* The device's load of the request's length, from guest RAM.  The racing
 * vCPU's store lands right after the device's first load. */
static uint32_t load_len(void)
{
    uint32_t v = ldl_le_p(ram + REQ);

    if (++loads == 1) {
        stl_le_p(ram + REQ, 4096);  /* the other vCPU, just in time */
    }
    return v;
}

typedef struct ToyDev {
    uint8_t buf[DEV_BUF];
    uint32_t copied;
    bool overflow;                  /* a copy past buf was attempted */
} ToyDev;

/* memcpy() into the device's buffer, refusing (and recording) what would
 * have overflowed it - what ASan or a crash would tell you otherwise. */
static void copy_in(ToyDev *d, uint32_t len)
{
    if (len > sizeof(d->buf)) {
        d->overflow = true;
        return;
    }
    memcpy(d->buf, ram + REQ + 4, len);
    d->copied = len;
}

/* [region: double-fetch] */
static int handle_twice(ToyDev *d)      /* WRONG: reads len twice */
{
    if (load_len() > sizeof(d->buf)) {
        return -1;                      /* checked the first value... */
    }
    copy_in(d, load_len());             /* ...used the second */
    return 0;
}

static int handle_once(ToyDev *d)       /* right: one load, a copy */
{
    uint32_t len = load_len();

    if (len > sizeof(d->buf)) {
        return -1;
    }
    copy_in(d, len);
    return 0;
}
/* [endregion] */

static void double_fetch(void)
{
    ToyDev twice = { 0 }, once = { 0 };

    stl_le_p(ram + REQ, 32);            /* a valid request: 32 bytes */
    loads = 0;
    handle_twice(&twice);
    stl_le_p(ram + REQ, 32);
    loads = 0;
    handle_once(&once);
    printf("double fetch: copied %u bytes%s; single fetch: copied %u\n",
           twice.copied, twice.overflow ? " (tried 4096 into 64!)" : "",
           once.copied);
    CHECK("the double-fetching device checks 32, then tries to copy 4096 "
          "bytes into its 64-byte buffer", twice.overflow);
    CHECK("the single-fetching device copies the 32 bytes it checked",
          !once.overflow && once.copied == 32);
}

/* aiolab's virtqueue_pop(): the element is a copy, validated once. */
static void pop_is_a_snapshot(void)
{
    BlockBackend *blk = blk_new_open(NULL, NULL, "driver=null-co,size=1M",
                                     BDRV_O_RDWR, &error_abort);
    uint8_t st = VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
                 VIRTIO_CONFIG_S_FEATURES_OK;
    VirtQueueElement *e;
    VirtIOBlkConf conf;
    VirtIODevice *vdev;
    VirtIOBlock *dev;
    AiolabVring vr;
    uint64_t d, a, u;

    virtio_blk_conf_init(&conf);
    conf.blk = blk;
    conf.ioeventfd = false;
    conf.queue_size = 16;
    dev = virtio_blk_new(&conf, mem, NULL, NULL, &error_abort);
    vdev = aiolab_virtio_blk_get_vdev(dev);
    virtio_set_features(vdev, 1ull << VIRTIO_F_VERSION_1);
    aiolab_virtio_bus_set_status(vdev, st);
    aiolab_vring_layout(16, 0x1000, &d, &a, &u);
    aiolab_vring_init(&vr, mem, 16, d, a, u, false);
    virtio_queue_set_num(vdev, 0, 16);
    virtio_queue_set_rings(vdev, 0, d, a, u);
    aiolab_virtio_bus_set_status(vdev, st | VIRTIO_CONFIG_S_DRIVER_OK);

    /* [region: snapshot] */
    aiolab_vring_set_desc(&vr, 0, 0x9000, 512, VRING_DESC_F_WRITE, 0);
    aiolab_vring_publish(&vr, 0);
    e = virtqueue_pop(virtio_get_queue(vdev, 0), sizeof(*e));
    /* The guest now points the descriptor outside RAM, too late. */
    aiolab_vring_set_desc(&vr, 0, RAM_SIZE + 0x1000, 1 << 20,
                          VRING_DESC_F_WRITE, 0);
    /* [endregion] */
    CHECK("virtqueue_pop()'s element keeps what was validated when the "
          "guest rewrites the descriptor",
          e && e->in_num == 1 && e->in_addr[0] == 0x9000 &&
          e->in_sg[0].iov_len == 512 &&
          e->in_sg[0].iov_base == (void *)(ram + 0x9000));
    virtqueue_push(virtio_get_queue(vdev, 0), e, 0);
    free(e);
    virtio_blk_free(dev);
    blk_unref(blk);
    aiolab_vring_cleanup(&vr);
}

/* --- 2. re-entrancy -------------------------------------------------- */

#define MMIO_BASE  0xfe000000ull    /* the device's registers */
#define REG_RESET  0x10

typedef struct Nic {
    MemReentrancyGuard guard;       /* QEMU: DeviceState's */
    uint8_t *dma_buf;               /* freed by a reset */
    int resets, blocked, stale;
} Nic;

/* [region: dispatch] */
/* The memory core's MMIO dispatch (QEMU's access_with_adjusted_size):
 * an access to an engaged device is refused, without calling it. */
static bool mmio_write(Nic *n, uint64_t addr, uint32_t val)
{
    if (n->guard.engaged_in_io) {
        n->blocked++;                   /* "Blocked re-entrant IO" */
        return false;                   /* MEMTX_ACCESS_ERROR */
    }
    n->guard.engaged_in_io = true;
    if (addr == MMIO_BASE + REG_RESET && val) {
        free(n->dma_buf);               /* the device's reset */
        n->dma_buf = NULL;
        n->resets++;
    }
    n->guard.engaged_in_io = false;
    return true;
}

/* The device's DMA write to guest physical @gpa: RAM, or MMIO. */
static void dma_write(Nic *n, uint64_t gpa, uint32_t val)
{
    if (gpa >= MMIO_BASE && gpa < MMIO_BASE + 0x1000) {
        mmio_write(n, gpa, val);        /* it lands on a device */
    } else if (aiolab_guest_mem_write(mem, gpa, &val, 4) < 0) {
        printf("DMA outside guest RAM dropped\n");
    }
}

/* The device's DMA completion, in a BH; the guest chose the target. */
static void dma_done_bh(void *opaque)
{
    Nic *n = opaque;
    uint8_t *buf = n->dma_buf;          /* in use until we return */

    dma_write(n, MMIO_BASE + REG_RESET, 1);
    if (n->dma_buf != buf) {
        n->stale++;                     /* buf was freed under us */
        return;                         /* (a real device would use it) */
    }
    buf[0] = 0xaa;
}
/* [endregion] */

static void reentrancy(AioContext *ctx, bool guarded)
{
    Nic n = { .dma_buf = calloc(1, 4096) };
    QEMUBH *bh;

    /* [region: guarded] */
    bh = guarded ? aio_bh_new_guarded(ctx, dma_done_bh, &n, &n.guard)
                 : aio_bh_new(ctx, dma_done_bh, &n);
    qemu_bh_schedule(bh);
    aio_poll(ctx, false);               /* the BH runs */
    /* [endregion] */
    qemu_bh_delete(bh);
    printf("%s BH: resets %d, re-entrant accesses blocked %d, buffer "
           "freed under the BH %d\n", guarded ? "guarded" : "plain",
           n.resets, n.blocked, n.stale);
    if (!guarded) {
        CHECK("without the guard, the DMA re-enters the device and its "
              "reset frees the buffer the BH is using",
              n.resets == 1 && n.stale == 1 && n.blocked == 0);
    } else {
        CHECK("with aio_bh_new_guarded(), the re-entrant access is blocked "
              "and the buffer survives",
              n.resets == 0 && n.stale == 0 && n.blocked == 1 &&
              n.dma_buf[0] == 0xaa);
        CHECK("the guard is released when the BH returns: the vCPU's own "
              "reset still works",
              !n.guard.engaged_in_io &&
              mmio_write(&n, MMIO_BASE + REG_RESET, 1) && n.resets == 1);
    }
    free(n.dma_buf);
}

int main(void)
{
    AioContext *ctx;

    qemu_init_main_loop(&error_abort);
    bql_lock();
    ctx = qemu_get_aio_context();
    mem = aiolab_guest_mem_new();
    ram = aiolab_guest_mem_add_ram(mem, 0, RAM_SIZE, "guest-ram",
                                   &error_abort);
    double_fetch();
    pop_is_a_snapshot();
    reentrancy(ctx, false);
    reentrancy(ctx, true);
    aiolab_guest_mem_free(mem);
    bql_unlock();
    return 0;
}
