/* cc -Ic/include tutorial/chC-malicious-guests/malformed-chains.c -o build/malformed-chains -Lbuild -laiolab -Wl,-rpath,$PWD/build */
/*
 * SPDX-License-Identifier: MIT
 *
 * chC-malicious-guests/malformed-chains.c - a hostile guest's descriptor
 * chains against the device's virtqueue_pop().
 *
 * A virtio-blk device (QEMU 9.0's, c/hw) with ioeventfd off, so this
 * thread, holding the BQL, is its queue's home and can pop the queue
 * itself.  The guest writes one malformed chain after another: a loop,
 * a buffer running off the end of RAM, heads and next pointers past the
 * table, a readable buffer after a writable one, a zero-length buffer,
 * bad indirect tables, a chain of 1100 descriptors.  Each must break the
 * device with QEMU's message (NEEDS_RESET and a configuration
 * interrupt), touch nothing outside guest RAM, and leave the device deaf
 * to the guest until a reset.  One odd chain is not an error: an
 * INDIRECT flag inside an indirect table.
 */
#include "../tutorial.h"
#include <aiolab/aiolab.h>

#define RAM_SIZE (1 << 20)
#define QSIZE    16
#define BUF      0x10000            /* where the chains' buffers point */
#define TABLE    0x20000            /* indirect tables */

typedef struct Guest {
    GuestMemory *mem;
    uint8_t *ram;
    VirtIOBlock *dev;
    VirtIODevice *vdev;
    VirtQueue *vq;
    AiolabVring vr;
    int config_irqs;                /* configuration interrupts seen */
} Guest;

/* The transport's interrupt line: count configuration interrupts. */
static void bus_notify(void *opaque, int n)
{
    Guest *g = opaque;

    if (n == VIRTIO_CONFIG_IRQ_IDX) {
        g->config_irqs++;
    }
}

static const VirtioBusOps bus = { .notify = bus_notify };

/* The driver's start-up: VERSION_1 and INDIRECT_DESC, one ring. */
static void driver_setup(Guest *g)
{
    uint8_t st = VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
                 VIRTIO_CONFIG_S_FEATURES_OK;
    uint64_t d, a, u;

    virtio_set_features(g->vdev, (1ull << VIRTIO_F_VERSION_1) |
                        (1ull << VIRTIO_RING_F_INDIRECT_DESC));
    aiolab_virtio_bus_set_status(g->vdev, st);
    aiolab_vring_layout(QSIZE, 0x1000, &d, &a, &u);
    aiolab_vring_cleanup(&g->vr);
    aiolab_vring_init(&g->vr, g->mem, QSIZE, d, a, u, false);
    virtio_queue_set_num(g->vdev, 0, QSIZE);
    virtio_queue_set_rings(g->vdev, 0, d, a, u);
    aiolab_virtio_bus_set_status(g->vdev, st | VIRTIO_CONFIG_S_DRIVER_OK);
}

/* One descriptor of an indirect table, written as the guest would. */
static void table_desc(Guest *g, uint64_t table, unsigned i, uint64_t addr,
                       uint32_t len, uint16_t flags, uint16_t next)
{
    uint8_t *p = g->ram + table + 16 * i;

    stq_le_p(p, addr);
    stl_le_p(p + 8, len);
    stw_le_p(p + 12, flags);
    stw_le_p(p + 14, next);
}

#define NEXT  VRING_DESC_F_NEXT
#define WRITE VRING_DESC_F_WRITE
#define INDIR VRING_DESC_F_INDIRECT

/* [region: cases] */
/* Each builds a chain at descriptor 0 (or says which head to publish). */
static int loop(Guest *g)
{
    aiolab_vring_set_desc(&g->vr, 0, BUF, 16, NEXT, 1);
    aiolab_vring_set_desc(&g->vr, 1, BUF + 16, 16, NEXT, 0);   /* to 0 */
    return 0;
}

static int off_the_end(Guest *g)
{
    aiolab_vring_set_desc(&g->vr, 0, BUF, 16, NEXT, 1);
    aiolab_vring_set_desc(&g->vr, 1, RAM_SIZE - 256, 512, WRITE, 0);
    return 0;
}

static int head_past_table(Guest *g)
{
    return 99;                      /* the table has QSIZE entries */
}

static int next_past_table(Guest *g)
{
    aiolab_vring_set_desc(&g->vr, 0, BUF, 16, NEXT, 42);
    return 0;
}

static int wrong_direction(Guest *g)
{
    aiolab_vring_set_desc(&g->vr, 0, BUF, 1, WRITE | NEXT, 1);
    aiolab_vring_set_desc(&g->vr, 1, BUF + 16, 16, 0, 0);  /* readable */
    return 0;
}

static int zero_length(Guest *g)
{
    aiolab_vring_set_desc(&g->vr, 0, BUF, 0, 0, 0);
    return 0;
}

static int odd_table_size(Guest *g)
{
    aiolab_vring_set_desc(&g->vr, 0, TABLE, 20, INDIR, 0);  /* not 16*n */
    return 0;
}

static int table_off_the_end(Guest *g)
{
    aiolab_vring_set_desc(&g->vr, 0, RAM_SIZE - 32, 64, INDIR, 0);
    return 0;
}

static int too_long(Guest *g)
{
    for (unsigned i = 0; i < 1100; i++) {   /* 1100 > 1024 iovecs */
        table_desc(g, TABLE, i, BUF, 16, i < 1099 ? NEXT : 0, i + 1);
    }
    aiolab_vring_set_desc(&g->vr, 0, TABLE, 1100 * 16, INDIR, 0);
    return 0;
}

static const struct {
    const char *what;
    int (*build)(Guest *g);
    const char *message;            /* QEMU's virtio_error() text */
} cases[] = {
    { "a chain that loops", loop, "Looped descriptor" },
    { "a buffer running off the end of RAM", off_the_end,
      "virtio: bogus descriptor or out of resources" },
    { "a head past the table", head_past_table,
      "Guest says index 99 is available" },
    { "a next pointer past the table", next_past_table, "Desc next is 42" },
    { "a readable buffer after a writable one", wrong_direction,
      "Incorrect order for descriptors" },
    { "a zero-length buffer", zero_length,
      "virtio: zero sized buffers are not allowed" },
    { "an indirect table of 20 bytes", odd_table_size,
      "Invalid size for indirect buffer table" },
    { "an indirect table off the end of RAM", table_off_the_end,
      "Cannot map indirect buffer" },
    { "1100 descriptors in one chain", too_long,
      "virtio: too many write descriptors in indirect table" },
};
/* [endregion] */

/* The last 256 bytes of guest RAM, and what they must stay. */
static uint8_t canary[256];

static void plant_canary(Guest *g)
{
    for (unsigned i = 0; i < sizeof(canary); i++) {
        canary[i] = (uint8_t)(i * 7 + 1);
    }
    memcpy(g->ram + RAM_SIZE - sizeof(canary), canary, sizeof(canary));
}

/* A well-formed one-descriptor chain; returns what pop made of it. */
static VirtQueueElement *valid_pop(Guest *g)
{
    aiolab_vring_set_desc(&g->vr, 2, BUF, 16, 0, 0);
    aiolab_vring_publish(&g->vr, 2);
    return virtqueue_pop(g->vq, sizeof(VirtQueueElement));
}

static void run_case(Guest *g, int i)
{
    AiolabVirtQueueStats before, after;
    int irqs = g->config_irqs;
    char msg[128], claim[256];
    VirtQueueElement *e;
    bool deaf, repaired;

    plant_canary(g);
    /* [region: pop] */
    aiolab_vring_publish(&g->vr, cases[i].build(g));
    e = virtqueue_pop(g->vq, sizeof(VirtQueueElement));
    aiolab_virtio_device_get_last_error(g->vdev, msg, sizeof(msg));
    /* [endregion] */
    printf("  %-40s -> \"%s\"\n", cases[i].what, msg);
    snprintf(claim, sizeof(claim), "%s: no element; broken with QEMU's "
             "message, NEEDS_RESET, a config interrupt; RAM's end intact",
             cases[i].what);
    CHECK(claim, e == NULL && aiolab_virtio_device_is_broken(g->vdev) &&
                 strcmp(msg, cases[i].message) == 0 &&
                 (aiolab_virtio_get_status(g->vdev) &
                  VIRTIO_CONFIG_S_NEEDS_RESET) &&
                 g->config_irqs == irqs + 1 &&
                 memcmp(g->ram + RAM_SIZE - sizeof(canary), canary,
                        sizeof(canary)) == 0);
    /* [region: deaf] */
    aiolab_virtio_queue_get_stats(g->vq, &before);
    virtio_queue_notify(g->vdev, 0);            /* the guest kicks */
    e = valid_pop(g);                           /* a valid chain */
    aiolab_virtio_queue_get_stats(g->vq, &after);
    deaf = e == NULL && after.kicks == before.kicks;
    aiolab_virtio_bus_set_status(g->vdev, 0);   /* the driver resets */
    repaired = !aiolab_virtio_device_is_broken(g->vdev) &&
               aiolab_virtio_get_status(g->vdev) == 0;
    driver_setup(g);                            /* and starts over */
    e = valid_pop(g);
    /* [endregion] */
    snprintf(claim, sizeof(claim), "%s: deaf to kicks and valid chains "
             "until a reset, then well again", cases[i].what);
    CHECK(claim, deaf && repaired && e != NULL);
    virtqueue_push(g->vq, e, 0);
    free(e);
}

/* A bad head still counts as taken: last_avail_idx never goes back. */
static void consumed(Guest *g)
{
    unsigned before = virtio_queue_get_last_avail_idx(g->vdev, 0);

    aiolab_vring_publish(&g->vr, 200);
    virtqueue_pop(g->vq, sizeof(VirtQueueElement));
    CHECK_EQ("a bad head counts as consumed (last_avail_idx is not rewound)",
             virtio_queue_get_last_avail_idx(g->vdev, 0), before + 1);
    aiolab_virtio_bus_set_status(g->vdev, 0);
    driver_setup(g);
}

/* An INDIRECT flag inside a table: a plain buffer, never followed. */
static void nested_indirect(Guest *g)
{
    VirtQueueElement *e;

    /* [region: nested] */
    table_desc(g, TABLE, 0, BUF, 16, NEXT, 1);
    table_desc(g, TABLE, 1, TABLE + 0x1000, 32, WRITE | INDIR, 0);
    aiolab_vring_set_desc(&g->vr, 0, TABLE, 32, INDIR, 0);
    aiolab_vring_publish(&g->vr, 0);
    e = virtqueue_pop(g->vq, sizeof(VirtQueueElement));
    /* [endregion] */
    CHECK("an INDIRECT flag inside an indirect table is a plain buffer "
          "(not followed, not an error)",
          e && !aiolab_virtio_device_is_broken(g->vdev) && e->in_num == 1 &&
          e->in_addr[0] == TABLE + 0x1000 && e->in_sg[0].iov_len == 32);
    virtqueue_push(g->vq, e, 0);
    free(e);
}

int main(void)
{
    Guest g = { 0 };
    VirtIOBlkConf conf;
    BlockBackend *blk;

    qemu_init_main_loop(&error_abort);
    bql_lock();
    g.mem = aiolab_guest_mem_new();
    g.ram = aiolab_guest_mem_add_ram(g.mem, 0, RAM_SIZE, "guest-ram",
                                     &error_abort);
    blk = blk_new_open(NULL, NULL, "driver=null-co,size=1M", BDRV_O_RDWR,
                       &error_abort);
    virtio_blk_conf_init(&conf);
    conf.blk = blk;
    conf.ioeventfd = false;         /* this thread (BQL) is the home */
    conf.queue_size = QSIZE;
    g.dev = virtio_blk_new(&conf, g.mem, &bus, &g, &error_abort);
    g.vdev = aiolab_virtio_blk_get_vdev(g.dev);
    g.vq = virtio_get_queue(g.vdev, 0);
    driver_setup(&g);

    /* The device prints each error on stderr, as QEMU does. */
    printf("malformed chain                              virtio_error()\n");
    for (int i = 0; i < (int)(sizeof(cases) / sizeof(cases[0])); i++) {
        run_case(&g, i);
    }
    consumed(&g);
    nested_indirect(&g);

    virtio_blk_free(g.dev);
    blk_unref(blk);
    aiolab_vring_cleanup(&g.vr);
    aiolab_guest_mem_free(g.mem);
    bql_unlock();
    return 0;
}
