/* cc -Ic/include tutorial/chC-malicious-guests/exercise-walk-chain.c -o build/exercise-walk-chain -Lbuild -laiolab -Wl,-rpath,$PWD/build */
/*
 * SPDX-License-Identifier: MIT
 *
 * chC-malicious-guests/exercise-walk-chain.c - EXERCISE: walk a
 * descriptor chain the way a device must, trusting nothing.
 *
 * walk_chain() below follows a chain through a split ring's descriptor
 * table in guest RAM and collects its buffers.  The program writes
 * chains into a real device's ring, asks the device's virtqueue_pop()
 * for its verdict, runs walk_chain() on the same bytes, and checks that
 * the two agree: the same buffers for a good chain, QEMU's message for a
 * bad one.  walk_chain() already refuses a next pointer past the table,
 * a zero-length buffer and a buffer outside guest RAM.  It misses two
 * rules, and one of them lets a guest keep the device walking forever.
 *
 * Make walk_chain() agree with virtqueue_pop() on every chain.
 */
#include "../tutorial.h"
#include <aiolab/aiolab.h>

#define RAM_SIZE (1 << 20)
#define QSIZE    16
#define BUF      0x10000

typedef struct Desc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags, next;
} Desc;

typedef struct Buf {
    uint64_t gpa;
    uint32_t len;
    bool write;                     /* device-writable */
} Buf;

static GuestMemory *mem;
static unsigned reads;              /* read_desc() calls in this walk */

/*
 * read_desc: descriptor @i of @table, copied out of guest memory once
 * (look only at the copy: the guest may rewrite the table meanwhile).
 */
static void read_desc(const uint8_t *table, unsigned i, Desc *d)
{
    const uint8_t *p = table + 16 * (size_t)i;

    if (++reads > 1000) {
        printf("check: walk_chain() stops on every chain: FAILED (it read "
               "1000 descriptors from a %d-entry table and was still "
               "going; hint: a chain can visit each descriptor at most "
               "once, so more than the table holds means a loop: "
               "\"Looped descriptor\")\n", QSIZE);
        exit(1);
    }
    d->addr = ldq_le_p(p);
    d->len = ldl_le_p(p + 8);
    d->flags = lduw_le_p(p + 12);
    d->next = lduw_le_p(p + 14);
}

/*
 * walk_chain: collect the chain at @head (< @num) of the @num-entry
 * table at guest address @desc into @bufs (room for 1024).  Returns
 * NULL, or the message of the first rule the chain breaks (QEMU's
 * words, as virtqueue_pop() says them).
 */
static const char *walk_chain(uint64_t desc, unsigned num, unsigned head,
                              Buf *bufs, unsigned *nbufs)
{
    static char msg[64];
    const uint8_t *table = aiolab_guest_mem_translate(mem, desc, 16 * num);
    Desc d;

    *nbufs = 0;
    read_desc(table, head, &d);
    for (;;) {
        /*
         * TODO: two rules are missing here:
         *   - a chain visits each descriptor at most once: more than
         *     @num descriptors means it loops ("Looped descriptor");
         *   - device-readable buffers come first: a readable one after
         *     a writable one is "Incorrect order for descriptors".
         */
        if (d.len == 0) {
            return "virtio: zero sized buffers are not allowed";
        }
        if (!aiolab_guest_mem_translate(mem, d.addr, d.len)) {
            return "virtio: bogus descriptor or out of resources";
        }
        bufs[(*nbufs)++] = (Buf){ d.addr, d.len,
                                  d.flags & VRING_DESC_F_WRITE };
        if (!(d.flags & VRING_DESC_F_NEXT)) {
            return NULL;
        }
        if (d.next >= num) {
            snprintf(msg, sizeof(msg), "Desc next is %u", d.next);
            return msg;
        }
        read_desc(table, d.next, &d);
    }
}

/* --- the test bench: a real device's ring and its verdict ------------- */

typedef struct Bench {
    VirtIODevice *vdev;
    VirtQueue *vq;
    AiolabVring vr;
} Bench;

static void bench_reset(Bench *b)
{
    uint8_t st = VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
                 VIRTIO_CONFIG_S_FEATURES_OK;
    uint64_t d, a, u;

    aiolab_virtio_bus_set_status(b->vdev, 0);
    virtio_set_features(b->vdev, 1ull << VIRTIO_F_VERSION_1);
    aiolab_virtio_bus_set_status(b->vdev, st);
    aiolab_vring_layout(QSIZE, 0x1000, &d, &a, &u);
    aiolab_vring_cleanup(&b->vr);
    aiolab_vring_init(&b->vr, mem, QSIZE, d, a, u, false);
    virtio_queue_set_num(b->vdev, 0, QSIZE);
    virtio_queue_set_rings(b->vdev, 0, d, a, u);
    aiolab_virtio_bus_set_status(b->vdev, st | VIRTIO_CONFIG_S_DRIVER_OK);
}

#define D(i, addr, len, flags, next) \
    aiolab_vring_set_desc(&b->vr, i, addr, len, flags, next)
#define N VRING_DESC_F_NEXT
#define W VRING_DESC_F_WRITE

static void good(Bench *b)
{
    D(0, BUF, 16, N, 5);
    D(5, BUF + 16, 512, N | W, 2);
    D(2, BUF + 528, 1, W, 0);
}

static void whole_table(Bench *b)   /* all 16 descriptors: not a loop */
{
    for (unsigned i = 0; i < QSIZE; i++) {
        D(i, BUF + 64 * i, 64, i + 1 < QSIZE ? N : 0, i + 1);
    }
}

static void next_past(Bench *b)
{
    D(0, BUF, 16, N, 77);
}

static void off_the_end(Bench *b)
{
    D(0, BUF, 16, N, 1);
    D(1, RAM_SIZE - 8, 16, W, 0);
}

static void zero_len(Bench *b)
{
    D(0, BUF, 0, 0, 0);
}

static void loop(Bench *b)
{
    D(0, BUF, 16, N, 1);
    D(1, BUF + 16, 16, N, 2);
    D(2, BUF + 32, 16, N, 1);       /* 1 -> 2 -> 1 -> ... */
}

static void wrong_order(Bench *b)
{
    D(0, BUF, 16, N, 1);
    D(1, BUF + 16, 1, N | W, 2);
    D(2, BUF + 32, 16, 0, 0);       /* readable after writable */
}

static const struct {
    const char *what;
    void (*build)(Bench *b);
} cases[] = {
    { "a good chain", good },
    { "a chain through the whole table", whole_table },
    { "a next pointer past the table", next_past },
    { "a buffer off the end of RAM", off_the_end },
    { "a zero-length buffer", zero_len },
    { "a chain that loops", loop },
    { "a readable buffer after a writable one", wrong_order },
};

static void compare(Bench *b, int i)
{
    const char *mine, *want = NULL;
    VirtQueueElement *e;
    char theirs[128], claim[160];
    Buf bufs[1024];                 /* read_desc() stops at 1000 */
    unsigned n, k;
    bool same;

    bench_reset(b);
    cases[i].build(b);
    aiolab_vring_publish(&b->vr, 0);
    e = virtqueue_pop(b->vq, sizeof(*e));
    if (!e) {
        aiolab_virtio_device_get_last_error(b->vdev, theirs,
                                            sizeof(theirs));
        want = theirs;
    }
    reads = 0;
    mine = walk_chain(b->vr.desc, QSIZE, 0, bufs, &n);
    printf("  %-40s device: %s / walk_chain: %s\n", cases[i].what,
           want ? want : "ok", mine ? mine : "ok");
    same = (!mine && !want) || (mine && want && strcmp(mine, want) == 0);
    if (same && e) {
        same = n == e->out_num + e->in_num;
        for (k = 0; same && k < n; k++) {
            bool w = k >= e->out_num;
            uint64_t a = w ? e->in_addr[k - e->out_num] : e->out_addr[k];

            same = bufs[k].gpa == a && bufs[k].write == w;
        }
    }
    snprintf(claim, sizeof(claim), "walk_chain() agrees with "
             "virtqueue_pop() on %s", cases[i].what);
    CHECK_HINT(claim, same, "compare the two verdicts printed above");
    if (e) {
        virtqueue_push(b->vq, e, 0);
        free(e);
    }
}

int main(void)
{
    VirtIOBlkConf conf;
    BlockBackend *blk;
    VirtIOBlock *dev;
    Bench b = { 0 };

    qemu_init_main_loop(&error_abort);
    bql_lock();
    mem = aiolab_guest_mem_new();
    aiolab_guest_mem_add_ram(mem, 0, RAM_SIZE, "guest-ram", &error_abort);
    blk = blk_new_open(NULL, NULL, "driver=null-co,size=1M", BDRV_O_RDWR,
                       &error_abort);
    virtio_blk_conf_init(&conf);
    conf.blk = blk;
    conf.ioeventfd = false;
    conf.queue_size = QSIZE;
    dev = virtio_blk_new(&conf, mem, NULL, NULL, &error_abort);
    b.vdev = aiolab_virtio_blk_get_vdev(dev);
    b.vq = virtio_get_queue(b.vdev, 0);
    for (int i = 0; i < (int)(sizeof(cases) / sizeof(cases[0])); i++) {
        compare(&b, i);
    }
    virtio_blk_free(dev);
    blk_unref(blk);
    aiolab_vring_cleanup(&b.vr);
    aiolab_guest_mem_free(mem);
    bql_unlock();
    return 0;
}
