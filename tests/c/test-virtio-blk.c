/* SPDX-License-Identifier: MIT */
/*
 * tests/c/test-virtio-blk.c - the virtio-blk device (catalogue 9, items
 * 12-21): request types and status codes, range checks, fatal parse
 * errors, drains with ioeventfd started, ioeventfd start/stop, placement
 * (ioeventfd off, main loop, IOThreads, iothread-vq-mapping) checked by
 * thread in the trace, irqfd batching, request merging, and the
 * rerror/werror actions with restart in the queue's context.
 *
 * A guest driver in this process (aiolab/hw/virtio-guest.h) builds the
 * chains in memfd-backed guest RAM and kicks; the test thread holds the
 * BQL throughout, as the main loop does, and polls the main context
 * while it waits (completions of the inline and main-loop placements
 * come there).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>
#include <aiolab/aiolab.h>
#include "harness.h"

#define RAM_SIZE   (16u << 20)
#define BUF_BASE   (1u << 20)
#define MAXQ       4
#define DISK_SIZE  (64ll << 20)
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

typedef struct Req {
    int head;
    uint64_t hdr, data, status;
    uint32_t len;
} Req;

typedef struct Env {
    GuestMemory *mem;
    uint8_t *ram;
    BlockDriverState *bs;           /* the BlockBackend's root */
    BlockBackend *blk;
    VirtIOBlock *s;
    VirtIODevice *vdev;
    AiolabVring vr[MAXQ];
    int nq;
    uint64_t next_buf;
    IOThread *iot[2];
    char path[64];
    int errors[3];                  /* block_io_error calls per action */
} Env;

static Env env;

/* ------------------------------------------------------------------------
 * The environment: block backend, device, guest driver
 * ------------------------------------------------------------------------ */

static void io_error_hook(void *opaque, BlockErrorAction action, bool is_read,
                          int error)
{
    Env *e = opaque;

    __atomic_fetch_add(&e->errors[action], 1, __ATOMIC_SEQ_CST);
}

/* Main loop, BQL, guest RAM and the BlockBackend over @opts. */
static void env_open(const char *opts)
{
    qemu_init_main_loop(&error_abort);
    bql_lock();
    aiolab_trace_set_enabled(true);
    env.mem = aiolab_guest_mem_new();
    env.ram = aiolab_guest_mem_add_ram(env.mem, 0, RAM_SIZE, "guest-ram",
                                       &error_abort);
    env.next_buf = BUF_BASE;
    if (opts) {
        env.blk = blk_new_open(NULL, NULL, opts, BDRV_O_RDWR, &error_abort);
        env.bs = blk_bs(env.blk);
    }
}

/* A raw disk image file (threads: the aio engine every build can use). */
static char *file_opts(const char *node_name)
{
    static char opts[256];
    int fd;

    snprintf(env.path, sizeof(env.path), "/tmp/aiolab-vblk-XXXXXX");
    fd = mkstemp(env.path);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(ftruncate(fd, DISK_SIZE), 0);
    close(fd);
    snprintf(opts, sizeof(opts), "driver=file,filename=%s,aio=threads%s%s",
             env.path, node_name ? ",node-name=" : "",
             node_name ? node_name : "");
    return opts;
}

static void iothreads(int n)
{
    static const char *ids[] = { "t0", "t1" };

    for (int i = 0; i < n; i++) {
        env.iot[i] = iothread_create(ids[i], &error_abort);
    }
}

static void conf_defaults(VirtIOBlkConf *conf)
{
    virtio_blk_conf_init(conf);
    conf->blk = env.blk;
    conf->queue_size = 64;
    conf->serial = "aiolab-serial";
    conf->block_io_error = io_error_hook;
    conf->opaque = &env;
}

/* The driver's side of start-up: features, rings, DRIVER_OK. */
static void driver_setup(uint64_t extra)
{
    uint64_t f = aiolab_virtio_get_host_features(env.vdev) &
                 ~(1ull << VIRTIO_RING_F_EVENT_IDX);
    uint8_t st = VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
                 VIRTIO_CONFIG_S_FEATURES_OK;

    ASSERT_EQ(virtio_set_features(env.vdev, f | extra), 0);
    ASSERT_EQ(aiolab_virtio_bus_set_status(env.vdev, st), 0);
    env.nq = virtio_get_num_queues(env.vdev);
    for (int q = 0; q < env.nq; q++) {
        unsigned num = virtio_queue_get_max_num(env.vdev, q);
        uint64_t d, a, u;

        aiolab_vring_layout(num, 0x10000 * (q + 1), &d, &a, &u);
        aiolab_vring_cleanup(&env.vr[q]);
        ASSERT_EQ(aiolab_vring_init(&env.vr[q], env.mem, num, d, a, u,
                                    extra >> VIRTIO_RING_F_EVENT_IDX & 1), 0);
        virtio_queue_set_num(env.vdev, q, num);
        ASSERT_EQ(virtio_queue_set_rings(env.vdev, q, d, a, u), 0);
    }
    ASSERT_EQ(aiolab_virtio_bus_set_status(env.vdev,
                                           st | VIRTIO_CONFIG_S_DRIVER_OK), 0);
}

static void env_device_nosetup(VirtIOBlkConf *conf)
{
    env.s = virtio_blk_new(conf, env.mem, NULL, NULL, &error_abort);
    env.vdev = aiolab_virtio_blk_get_vdev(env.s);
}

static void env_device(VirtIOBlkConf *conf)
{
    env_device_nosetup(conf);
    driver_setup(0);
}

static void env_close(void)
{
    if (env.s) {
        virtio_blk_free(env.s);
    }
    blk_unref(env.blk);
    for (int i = 0; i < 2; i++) {
        if (env.iot[i]) {
            iothread_destroy(env.iot[i]);
        }
    }
    for (int q = 0; q < MAXQ; q++) {
        aiolab_vring_cleanup(&env.vr[q]);
    }
    aiolab_guest_mem_free(env.mem);
    if (env.path[0]) {
        unlink(env.path);
    }
    bql_unlock();
}

/* ------------------------------------------------------------------------
 * Requests, kicks, waiting
 * ------------------------------------------------------------------------ */

static uint64_t guest_alloc(uint32_t len)
{
    uint64_t gpa = env.next_buf;

    env.next_buf = (env.next_buf + len + 63) & ~63ull;
    ASSERT_LE(env.next_buf, RAM_SIZE);
    return gpa;
}

/* Write the chain [header][data (out for writes, else in)][status] into
 * guest RAM; published only if @publish (else the caller does it). */
static Req req_build(int q, uint32_t type, uint64_t sector, uint32_t len,
                     bool data_out, bool publish)
{
    AiolabVringBuf bufs[3];
    unsigned n = 0;
    Req r = { .len = len };

    r.hdr = guest_alloc(16);
    stl_le_p(env.ram + r.hdr, type);
    stl_le_p(env.ram + r.hdr + 4, 0);
    stq_le_p(env.ram + r.hdr + 8, sector);
    r.status = guest_alloc(1);
    env.ram[r.status] = 0xee;               /* "not written" */
    bufs[n++] = (AiolabVringBuf){ r.hdr, 16, false };
    if (len) {
        r.data = guest_alloc(len);
        bufs[n++] = (AiolabVringBuf){ r.data, len, !data_out };
    }
    bufs[n++] = (AiolabVringBuf){ r.status, 1, true };
    if (publish) {
        r.head = aiolab_vring_add_chain(&env.vr[q], bufs, n);
        ASSERT_GE(r.head, 0);
    } else {
        /* Raw: consecutive descriptors from the next free one; the caller
         * publishes. */
        r.head = env.vr[q].free_head;
        for (unsigned i = 0; i < n; i++) {
            aiolab_vring_set_desc(&env.vr[q], r.head + i, bufs[i].gpa,
                                  bufs[i].len,
                                  (bufs[i].write ? VRING_DESC_F_WRITE : 0) |
                                  (i + 1 < n ? VRING_DESC_F_NEXT : 0),
                                  r.head + i + 1);
        }
        env.vr[q].free_head += n;
    }
    return r;
}

static Req req(int q, uint32_t type, uint64_t sector, uint32_t len)
{
    return req_build(q, type, sector, len, type & VIRTIO_BLK_T_OUT, true);
}

/* Publish several raw-built heads with one avail.idx store. */
static void publish_batch(int q, const Req *r, int n)
{
    AiolabVring *vr = &env.vr[q];

    for (int i = 0; i < n; i++) {
        stw_le_p(vr->avail_p + VRING_AVAIL_RING_OFF((vr->avail_idx + i) %
                                                    vr->num), r[i].head);
    }
    vr->avail_idx += n;
    __atomic_store_n((uint16_t *)(vr->avail_p + VRING_AVAIL_IDX_OFF),
                     vr->avail_idx, __ATOMIC_RELEASE);
}

static void kick(int q)
{
    aiolab_virtio_guest_kick(env.vdev, q);
}

static int used_idx(int q)
{
    return aiolab_vring_used_idx(&env.vr[q]);
}

/* Wait (polling the main loop, BQL held) until queue @q's used.idx is @n. */
static void wait_used(int q, int n)
{
    for (int i = 0; used_idx(q) < n; i++) {
        ASSERT_LT(i, 20000);                /* 20 s */
        main_loop_wait(true);
        usleep(1000);
    }
    ASSERT_EQ(used_idx(q), n);
}

/* Poll for a while and make sure nothing happens on @q. */
static void expect_idle(int q, int n)
{
    for (int i = 0; i < 50; i++) {
        main_loop_wait(true);
        usleep(1000);
    }
    ASSERT_EQ(used_idx(q), n);
}

/*
 * Used entries, by head: requests in flight together may complete in
 * any order, so expect_used() looks its request up rather than assuming
 * it is next.
 */
static struct {
    bool valid;
    uint32_t len;
} used_tab[MAXQ][VIRTQUEUE_MAX_SIZE];

static void collect_used(int q)
{
    uint32_t id, len;

    while (aiolab_vring_get_used(&env.vr[q], &id, &len)) {
        ASSERT_LT(id, VIRTQUEUE_MAX_SIZE);
        ASSERT_FALSE(used_tab[q][id].valid);
        used_tab[q][id].valid = true;
        used_tab[q][id].len = len;
    }
}

static void expect_used(int q, const Req *r, uint32_t len, uint8_t status)
{
    collect_used(q);
    ASSERT_TRUE(used_tab[q][r->head].valid);
    ASSERT_EQ(used_tab[q][r->head].len, len);
    used_tab[q][r->head].valid = false;
    ASSERT_EQ(env.ram[r->status], status);
}

/* How many times was the irqfd of @q written since the last call? */
static uint64_t irqfd_count(int q)
{
    EventNotifier *n = virtio_queue_get_guest_notifier(
        virtio_get_queue(env.vdev, q));
    uint64_t v = 0;

    if (read(event_notifier_get_fd(n), &v, sizeof(v)) != sizeof(v)) {
        return 0;
    }
    return v;
}

/* Which threads recorded trace mark @name with @arg (or any arg if -1)? */
static int trace_tids(const char *name, int64_t arg, int *tids, int max)
{
    static AiolabTraceRecord rec[1 << 16];
    size_t n = aiolab_trace_collect(rec, 1 << 16, 0);
    int k = 0;

    for (size_t i = 0; i < n && i < (1 << 16); i++) {
        if (rec[i].name && strcmp(rec[i].name, name) == 0 &&
            (arg < 0 || rec[i].arg == arg) && rec[i].phase != 'E') {
            bool seen = false;

            for (int j = 0; j < k; j++) {
                seen |= tids[j] == rec[i].tid;
            }
            if (!seen && k < max) {
                tids[k++] = rec[i].tid;
            }
        }
    }
    return k;
}

/* Every thread that recorded @name/@arg is @tid. */
static void assert_only_thread(const char *name, int64_t arg, int tid)
{
    int tids[8];
    int n = trace_tids(name, arg, tids, 8);

    ASSERT_EQ(n, 1);
    ASSERT_EQ(tids[0], tid);
}

static int my_tid(void)
{
    return (int)gettid();
}

/* Capture what the library prints on stderr. */
static int capture_begin(char *path)
{
    int saved, fd;

    fflush(stderr);
    saved = dup(2);
    strcpy(path, "/tmp/aiolab-stderr-XXXXXX");
    fd = mkstemp(path);
    dup2(fd, 2);
    close(fd);
    return saved;
}

static char *capture_end(int saved, const char *path)
{
    static char buf[4096];
    int fd;
    ssize_t n;

    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    fd = open(path, O_RDONLY);
    n = read(fd, buf, sizeof(buf) - 1);
    buf[n > 0 ? n : 0] = 0;
    close(fd);
    unlink(path);
    return buf;
}


/* ------------------------------------------------------------------------
 * Realize and configuration space
 * ------------------------------------------------------------------------ */

static void expect_realize_error(VirtIOBlkConf *conf, const VirtioBusOps *bus,
                                 const char *msg)
{
    Error *err = NULL;

    ASSERT_PTR_EQ(virtio_blk_new(conf, env.mem, bus, NULL, &err), NULL);
    ASSERT_TRUE(err != NULL);
    ASSERT_STR_EQ(error_get_pretty(err), msg);
    error_free(err);
}

static void test_realize_errors(void)
{
    static const VirtioBusOps no_notifiers = { .no_notifiers = true };
    VirtIOBlkConf conf;

    env_open("driver=null-co,size=64M");
    iothreads(1);
    conf_defaults(&conf);
    conf.blk = NULL;
    expect_realize_error(&conf, NULL, "drive property not set");
    conf_defaults(&conf);
    conf.num_queues = 0;
    expect_realize_error(&conf, NULL,
                         "num-queues property must be larger than 0");
    /* Above VIRTIO_QUEUE_MAX: an error (QEMU aborts in virtio_add_queue);
     * 1024 itself and AUTO (0xffff, one queue) are fine. */
    conf.num_queues = VIRTIO_QUEUE_MAX + 1;
    expect_realize_error(&conf, NULL, "invalid num-queues property (1025), "
                         "must be at most 1024");
    conf.num_queues = 2000;
    expect_realize_error(&conf, NULL, "invalid num-queues property (2000), "
                         "must be at most 1024");
    conf.num_queues = VIRTIO_QUEUE_MAX;
    env.s = virtio_blk_new(&conf, env.mem, NULL, NULL, &error_abort);
    ASSERT_EQ(virtio_get_num_queues(aiolab_virtio_blk_get_vdev(env.s)), VIRTIO_QUEUE_MAX);
    virtio_blk_free(env.s);
    conf.num_queues = VIRTIO_BLK_AUTO_NUM_QUEUES;
    env.s = virtio_blk_new(&conf, env.mem, NULL, NULL, &error_abort);
    ASSERT_EQ(virtio_get_num_queues(aiolab_virtio_blk_get_vdev(env.s)), 1);
    virtio_blk_free(env.s);
    env.s = NULL;
    conf_defaults(&conf);
    conf.queue_size = 2;
    expect_realize_error(&conf, NULL,
                         "invalid queue-size property (2), must be > 2");
    conf.queue_size = 100;
    expect_realize_error(&conf, NULL, "invalid queue-size property (100), "
                         "must be a power of 2 (max 1024)");
    conf.queue_size = 2048;
    expect_realize_error(&conf, NULL, "invalid queue-size property (2048), "
                         "must be a power of 2 (max 1024)");
    conf_defaults(&conf);
    conf.max_discard_sectors = 0;
    expect_realize_error(&conf, NULL, "invalid max-discard-sectors property "
                         "(0), must be between 1 and 4194303");
    conf_defaults(&conf);
    conf.max_write_zeroes_sectors = BDRV_REQUEST_MAX_SECTORS + 1;
    expect_realize_error(&conf, NULL, "invalid max-write-zeroes-sectors "
                         "property (4194304), must be between 1 and 4194303");
    conf_defaults(&conf);
    conf.iothread = "t0";
    conf.iothread_vq_mapping = &(IOThreadVirtQueueMapping){ "t0", NULL, 0 };
    conf.iothread_vq_mapping_len = 1;
    expect_realize_error(&conf, NULL, "iothread and iothread-vq-mapping "
                         "properties cannot be set at the same time");
    conf_defaults(&conf);
    conf.iothread = "t0";
    conf.ioeventfd = false;
    expect_realize_error(&conf, NULL, "ioeventfd is required for iothread");
    conf.ioeventfd = true;
    expect_realize_error(&conf, &no_notifiers, "device is incompatible with "
                         "iothread (transport does not support notifiers)");
    conf.iothread = "nope";
    expect_realize_error(&conf, NULL, "IOThread \"nope\" object does not "
                         "exist");
    /* A transport without notifiers and no iothread: ioeventfd off. */
    conf_defaults(&conf);
    env.s = virtio_blk_new(&conf, env.mem, &no_notifiers, NULL, &error_abort);
    ASSERT_EQ(aiolab_virtio_blk_ioeventfd_state(env.s),
              AIOLAB_VIRTIO_BLK_IOEVENTFD_DISABLED);
    env_close();
}

static void test_config(void)
{
    struct virtio_blk_config c;
    VirtIOBlkConf conf;
    uint64_t f;
    uint8_t wce = 0;

    env_open("driver=null-co,size=64M");
    conf_defaults(&conf);
    conf.num_queues = 2;
    conf.queue_size = 128;
    conf.logical_block_size = 4096;
    conf.physical_block_size = 4096;
    env_device_nosetup(&conf);
    f = aiolab_virtio_get_host_features(env.vdev);
    ASSERT_TRUE(f & 1ull << VIRTIO_F_VERSION_1);
    ASSERT_TRUE(f & 1ull << VIRTIO_RING_F_INDIRECT_DESC);
    ASSERT_TRUE(f & 1ull << VIRTIO_RING_F_EVENT_IDX);
    ASSERT_TRUE(f & 1ull << VIRTIO_BLK_F_SEG_MAX);
    ASSERT_TRUE(f & 1ull << VIRTIO_BLK_F_BLK_SIZE);
    ASSERT_TRUE(f & 1ull << VIRTIO_BLK_F_FLUSH);
    ASSERT_TRUE(f & 1ull << VIRTIO_BLK_F_CONFIG_WCE);
    ASSERT_TRUE(f & 1ull << VIRTIO_BLK_F_MQ);
    ASSERT_TRUE(f & 1ull << VIRTIO_BLK_F_DISCARD);
    ASSERT_TRUE(f & 1ull << VIRTIO_BLK_F_WRITE_ZEROES);
    ASSERT_FALSE(f & 1ull << VIRTIO_BLK_F_RO);
    ASSERT_FALSE(f & 1ull << VIRTIO_F_RING_PACKED);
    ASSERT_EQ(aiolab_virtio_get_config_len(env.vdev), 57);
    memset(&c, 0xff, sizeof(c));
    ASSERT_EQ(aiolab_virtio_config_read(env.vdev, 0, &c, sizeof(c)), 57);
    ASSERT_EQ(c.capacity, DISK_SIZE / 512);
    ASSERT_EQ(c.seg_max, 126);
    ASSERT_EQ(c.blk_size, 4096);
    ASSERT_EQ(c.num_queues, 2);
    ASSERT_EQ(c.wce, 1);
    ASSERT_EQ(c.max_discard_sectors, BDRV_REQUEST_MAX_SECTORS);
    ASSERT_EQ(c.discard_sector_alignment, 8);
    ASSERT_EQ(c.max_write_zeroes_seg, 1);
    ASSERT_EQ(c.write_zeroes_may_unmap, 1);
    ASSERT_EQ(aiolab_virtio_config_read(env.vdev, 100, &c, 4), 0);
    /* The guest turns the cache to writethrough (CONFIG_WCE). */
    ASSERT_EQ(aiolab_virtio_config_write(env.vdev, 32, &wce, 1), 1);
    aiolab_virtio_config_read(env.vdev, 32, &wce, 1);
    ASSERT_EQ(wce, 0);
    /* Without discard and write-zeroes: a shorter config space. */
    virtio_blk_free(env.s);
    conf.discard = conf.write_zeroes = false;
    conf.num_queues = 1;
    env_device_nosetup(&conf);
    ASSERT_EQ(aiolab_virtio_get_config_len(env.vdev), 36);
    f = aiolab_virtio_get_host_features(env.vdev);
    ASSERT_FALSE(f & 1ull << VIRTIO_BLK_F_MQ);
    ASSERT_FALSE(f & 1ull << VIRTIO_BLK_F_DISCARD);
    env_close();
}

/* ------------------------------------------------------------------------
 * Items 12-15: request types, status codes, fatal errors
 * ------------------------------------------------------------------------ */

static void setup_inline(const char *opts, uint32_t lbs)
{
    VirtIOBlkConf conf;

    env_open(opts);
    conf_defaults(&conf);
    conf.ioeventfd = false;             /* kicks handled inline (BQL) */
    conf.logical_block_size = lbs;
    conf.physical_block_size = lbs;
    env_device(&conf);
}

/* Item 12: valid read/write/flush/get-id complete OK, used.len = in bytes. */
static void test_req_ok(void)
{
    Req w, r, f, id, id2, wz, d;

    setup_inline(file_opts(NULL), 512);
    w = req(0, VIRTIO_BLK_T_OUT, 8, 4096);
    for (int i = 0; i < 4096; i++) {
        env.ram[w.data + i] = (uint8_t)(i * 7 + 1);
    }
    kick(0);
    wait_used(0, 1);
    expect_used(0, &w, 1, VIRTIO_BLK_S_OK);         /* in: status only */
    r = req(0, VIRTIO_BLK_T_IN, 8, 4096);
    kick(0);
    wait_used(0, 2);
    expect_used(0, &r, 4097, VIRTIO_BLK_S_OK);
    ASSERT_EQ(memcmp(env.ram + r.data, env.ram + w.data, 4096), 0);
    f = req(0, VIRTIO_BLK_T_FLUSH, 0, 0);
    kick(0);
    wait_used(0, 3);
    expect_used(0, &f, 1, VIRTIO_BLK_S_OK);
    id = req(0, VIRTIO_BLK_T_GET_ID, 0, 32);
    memset(env.ram + id.data, 'x', 32);
    kick(0);
    wait_used(0, 4);
    expect_used(0, &id, 33, VIRTIO_BLK_S_OK);
    ASSERT_STR_EQ((char *)env.ram + id.data, "aiolab-serial");
    ASSERT_EQ(env.ram[id.data + 14], 'x');          /* strlen + 1 only */
    /* A short buffer gets what fits, without the NUL. */
    id2 = req(0, VIRTIO_BLK_T_GET_ID, 0, 6);
    kick(0);
    wait_used(0, 5);
    expect_used(0, &id2, 7, VIRTIO_BLK_S_OK);
    ASSERT_EQ(memcmp(env.ram + id2.data, "aiolab", 6), 0);
    /* Write zeroes (with UNMAP) and discard: 16-byte segments. */
    wz = req(0, VIRTIO_BLK_T_WRITE_ZEROES, 0, 16);
    stq_le_p(env.ram + wz.data, 8);
    stl_le_p(env.ram + wz.data + 8, 8);
    stl_le_p(env.ram + wz.data + 12, VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP);
    d = req(0, VIRTIO_BLK_T_DISCARD, 0, 16);
    stq_le_p(env.ram + d.data, 64);
    stl_le_p(env.ram + d.data + 8, 8);
    stl_le_p(env.ram + d.data + 12, 0);
    kick(0);
    wait_used(0, 7);
    expect_used(0, &wz, 1, VIRTIO_BLK_S_OK);
    expect_used(0, &d, 1, VIRTIO_BLK_S_OK);
    r = req(0, VIRTIO_BLK_T_IN, 8, 4096);
    kick(0);
    wait_used(0, 8);
    expect_used(0, &r, 4097, VIRTIO_BLK_S_OK);
    for (int i = 0; i < 4096; i++) {
        ASSERT_EQ(env.ram[r.data + i], 0);
    }
    ASSERT_FALSE(aiolab_virtio_device_is_broken(env.vdev));
    env_close();
}

/* Item 13: anything else is UNSUPP (and so are malformed discards). */
static void test_req_unsupp(void)
{
    static const uint32_t types[] = {
        3, 0x20, VIRTIO_BLK_T_SCSI_CMD, VIRTIO_BLK_T_ZONE_REPORT,
        VIRTIO_BLK_T_SECURE_ERASE, VIRTIO_BLK_T_DISCARD & ~VIRTIO_BLK_T_OUT,
    };
    AiolabVirtIOBlkStats st;
    Req r[8], big, unmap, wzflags;
    int n = ARRAY_SIZE(types);

    setup_inline("driver=null-co,size=64M", 512);
    for (int i = 0; i < n; i++) {
        r[i] = req_build(0, types[i], 0, 8, false, true);
    }
    big = req_build(0, VIRTIO_BLK_T_DISCARD, 0, 32, true, true);
    unmap = req(0, VIRTIO_BLK_T_DISCARD, 0, 16);
    stl_le_p(env.ram + unmap.data + 8, 1);
    stl_le_p(env.ram + unmap.data + 12, VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP);
    wzflags = req(0, VIRTIO_BLK_T_WRITE_ZEROES, 0, 16);
    stl_le_p(env.ram + wzflags.data + 8, 1);
    stl_le_p(env.ram + wzflags.data + 12, 2);
    kick(0);
    wait_used(0, n + 3);
    for (int i = 0; i < n; i++) {
        expect_used(0, &r[i], 9, VIRTIO_BLK_S_UNSUPP);
    }
    expect_used(0, &big, 1, VIRTIO_BLK_S_UNSUPP);
    expect_used(0, &unmap, 1, VIRTIO_BLK_S_UNSUPP);
    expect_used(0, &wzflags, 1, VIRTIO_BLK_S_UNSUPP);
    aiolab_virtio_blk_get_stats(env.s, &st);
    ASSERT_EQ(st.unsupported, n + 3);
    ASSERT_FALSE(aiolab_virtio_device_is_broken(env.vdev));
    env_close();
}

/* Item 14: misaligned or out-of-range requests complete with IOERR. */
static void test_req_ioerr(void)
{
    uint64_t cap = DISK_SIZE / 512;
    Req r[7];

    setup_inline("driver=null-co,size=64M", 4096);
    r[0] = req(0, VIRTIO_BLK_T_OUT, 1, 4096);       /* sector misaligned */
    r[1] = req(0, VIRTIO_BLK_T_OUT, 8, 512);        /* size misaligned */
    r[2] = req(0, VIRTIO_BLK_T_IN, cap, 4096);      /* at the end */
    r[3] = req(0, VIRTIO_BLK_T_IN, cap - 8, 8192);  /* across the end */
    r[4] = req(0, VIRTIO_BLK_T_IN, 1ull << 63, 4096);
    r[5] = req(0, VIRTIO_BLK_T_DISCARD, 0, 16);     /* beyond capacity */
    stq_le_p(env.ram + r[5].data, cap);
    stl_le_p(env.ram + r[5].data + 8, 8);
    r[6] = req(0, VIRTIO_BLK_T_IN, cap - 8, 4096);  /* the last block: ok */
    kick(0);
    wait_used(0, 7);
    for (int i = 0; i < 6; i++) {
        expect_used(0, &r[i], i == 0 || i == 1 || i == 5 ? 1 : r[i].len + 1,
                    VIRTIO_BLK_S_IOERR);
    }
    expect_used(0, &r[6], 4097, VIRTIO_BLK_S_OK);
    ASSERT_FALSE(aiolab_virtio_device_is_broken(env.vdev));
    env_close();
}

/* Item 15: a fatal parse error breaks the device; kicks are ignored
 * until a reset. */
static void broken_then_reset(const char *msg)
{
    char buf[128];
    Req ok;

    ASSERT_TRUE(aiolab_virtio_device_is_broken(env.vdev));
    aiolab_virtio_device_get_last_error(env.vdev, buf, sizeof(buf));
    ASSERT_STR_EQ(buf, msg);
    ASSERT_TRUE(aiolab_virtio_get_status(env.vdev) &
                VIRTIO_CONFIG_S_NEEDS_RESET);
    /* The config interrupt (no bus callback: the config notifier). */
    ASSERT_EQ(event_notifier_test_and_clear(
                  aiolab_virtio_get_config_notifier(env.vdev)), 1);
    ASSERT_EQ(aiolab_virtio_queue_get_inuse(env.vdev, 0), 0);  /* detached */
    ok = req(0, VIRTIO_BLK_T_GET_ID, 0, 20);
    kick(0);
    expect_idle(0, 0);
    ASSERT_EQ(virtio_queue_get_last_avail_idx(env.vdev, 0), 1);
    aiolab_virtio_bus_set_status(env.vdev, 0);
    ASSERT_FALSE(aiolab_virtio_device_is_broken(env.vdev));
    driver_setup(0);
    ok = req(0, VIRTIO_BLK_T_GET_ID, 0, 20);
    kick(0);
    wait_used(0, 1);
    expect_used(0, &ok, 21, VIRTIO_BLK_S_OK);
    env_close();
}

static void test_broken_no_in(void)
{
    AiolabVringBuf b = { BUF_BASE, 16, false };

    setup_inline("driver=null-co,size=64M", 512);
    aiolab_vring_add_chain(&env.vr[0], &b, 1);
    kick(0);
    broken_then_reset("virtio-blk missing headers");
}

static void test_broken_short_outhdr(void)
{
    AiolabVringBuf b[2] = { { BUF_BASE, 8, false }, { BUF_BASE + 64, 1, true } };

    setup_inline("driver=null-co,size=64M", 512);
    aiolab_vring_add_chain(&env.vr[0], b, 2);
    kick(0);
    broken_then_reset("virtio-blk request outhdr too short");
}

static void test_broken_short_discard(void)
{
    setup_inline("driver=null-co,size=64M", 512);
    req_build(0, VIRTIO_BLK_T_DISCARD, 0, 8, true, true);
    kick(0);
    broken_then_reset("virtio-blk discard/write_zeroes header too short");
}

/* Item 16 through the device: a looped chain found by handle_vq. */
static void test_broken_chain(void)
{
    setup_inline("driver=null-co,size=64M", 512);
    aiolab_vring_set_desc(&env.vr[0], 0, BUF_BASE, 16, VRING_DESC_F_NEXT, 1);
    aiolab_vring_set_desc(&env.vr[0], 1, BUF_BASE, 16, VRING_DESC_F_NEXT, 0);
    aiolab_vring_publish(&env.vr[0], 0);
    kick(0);
    env.vr[0].free_head = 2;        /* keep broken_then_reset's chains off */
    broken_then_reset("Looped descriptor");
}

/* A request through an indirect table, and EVENT_IDX end to end. */
static void test_req_indirect_event_idx(void)
{
    VirtIOBlkConf conf;
    uint64_t table;
    Req r;

    env_open("driver=null-co,size=64M");
    conf_defaults(&conf);
    conf.ioeventfd = false;
    env_device_nosetup(&conf);
    aiolab_virtio_bus_set_status(env.vdev, 0);
    driver_setup(1ull << VIRTIO_RING_F_EVENT_IDX);
    r = req_build(0, VIRTIO_BLK_T_GET_ID, 0, 20, false, false);
    table = guest_alloc(48);
    memcpy(env.ram + table, env.vr[0].desc_p, 48);  /* the 3 descriptors */
    stw_le_p(env.ram + table + 14, 1);
    stw_le_p(env.ram + table + 30, 2);
    aiolab_vring_set_desc(&env.vr[0], 5, table, 48, VRING_DESC_F_INDIRECT, 0);
    r.head = 5;
    aiolab_vring_set_used_event(&env.vr[0], 0);
    publish_batch(0, &r, 1);
    ASSERT_TRUE(aiolab_vring_kick_needed(&env.vr[0]));
    kick(0);
    wait_used(0, 1);
    expect_used(0, &r, 21, VIRTIO_BLK_S_OK);
    ASSERT_EQ(irqfd_count(0), 1);           /* used 0 -> 1 passed event 0 */
    ASSERT_EQ(aiolab_vring_avail_event(&env.vr[0]), 1);
    env_close();
}

/* ------------------------------------------------------------------------
 * Item 17: drained sections with ioeventfd started
 * ------------------------------------------------------------------------ */

static void setup_iothread(const char *opts, int nq)
{
    VirtIOBlkConf conf;

    env_open(opts);
    iothreads(1);
    conf_defaults(&conf);
    conf.iothread = "t0";
    conf.num_queues = nq;
    env_device(&conf);
    ASSERT_EQ(aiolab_virtio_blk_ioeventfd_state(env.s),
              AIOLAB_VIRTIO_BLK_IOEVENTFD_STARTED);
}

static void test_drain(void)
{
    VirtQueue *vq;
    Req a, b;

    setup_iothread("driver=null-co,size=64M,latency-ns=200000000", 1);
    vq = virtio_get_queue(env.vdev, 0);
    ASSERT_PTR_EQ(blk_get_aio_context(env.blk),
                  iothread_get_aio_context(env.iot[0]));
    a = req(0, VIRTIO_BLK_T_IN, 0, 4096);
    kick(0);
    /* In the node, not just counted by the BlockBackend: a request still
     * on its way in when the drain begins is parked, not waited for. */
    for (int i = 0; bdrv_get_in_flight(env.bs) == 0; i++) {
        ASSERT_LT(i, 10000);
        usleep(100);
    }
    /* A is in flight (200 ms of latency): the drain waits for it. */
    bdrv_drained_begin(env.bs);
    ASSERT_EQ(blk_get_in_flight(env.blk), 0);
    ASSERT_EQ(used_idx(0), 1);
    expect_used(0, &a, 4097, VIRTIO_BLK_S_OK);
    /* As if the IOThread had been busy polling when the handler was
     * detached: poll_end never ran, notifications are off. */
    virtio_queue_set_notification(vq, 0);
    ASSERT_EQ(aiolab_vring_used_flags(&env.vr[0]), VRING_USED_F_NO_NOTIFY);
    /* Kicks during the drain are not processed. */
    b = req(0, VIRTIO_BLK_T_IN, 8, 4096);
    kick(0);
    expect_idle(0, 1);
    ASSERT_EQ(virtio_queue_get_last_avail_idx(env.vdev, 0), 1);
    ASSERT_EQ(blk_get_in_flight(env.blk), 0);
    /* drained_end re-attaches: notifications back on, and a kick. */
    bdrv_drained_end(env.bs);
    ASSERT_EQ(aiolab_vring_used_flags(&env.vr[0]), 0);
    ASSERT_TRUE(virtio_queue_get_notification(vq));
    wait_used(0, 2);
    expect_used(0, &b, 4097, VIRTIO_BLK_S_OK);
    assert_only_thread("virtio_blk_handle_vq", 0,
                       iothread_get_thread_id(env.iot[0]));
    env_close();
}

/* ------------------------------------------------------------------------
 * Item 18: placement, iothread-vq-mapping, irqfd batching
 * ------------------------------------------------------------------------ */

static void setup_mapping(const IOThreadVirtQueueMapping *m, size_t n, int nq)
{
    VirtIOBlkConf conf;

    env_open("driver=null-co,size=64M");
    iothreads(2);
    conf_defaults(&conf);
    conf.num_queues = nq;
    conf.iothread_vq_mapping = m;
    conf.iothread_vq_mapping_len = n;
    env_device(&conf);
}

static void test_mapping_round_robin(void)
{
    static const IOThreadVirtQueueMapping m[] = { { "t0" }, { "t1" } };
    AioContext *t0, *t1;
    Req r[4];

    setup_mapping(m, 2, 4);
    t0 = iothread_get_aio_context(env.iot[0]);
    t1 = iothread_get_aio_context(env.iot[1]);
    ASSERT_PTR_EQ(aiolab_virtio_blk_get_vq_aio_context(env.s, 0), t0);
    ASSERT_PTR_EQ(aiolab_virtio_blk_get_vq_aio_context(env.s, 1), t1);
    ASSERT_PTR_EQ(aiolab_virtio_blk_get_vq_aio_context(env.s, 2), t0);
    ASSERT_PTR_EQ(aiolab_virtio_blk_get_vq_aio_context(env.s, 3), t1);
    ASSERT_PTR_EQ(blk_get_aio_context(env.blk), t0);  /* vq 0's */
    aiolab_trace_clear();
    for (int q = 0; q < 4; q++) {
        r[q] = req(q, VIRTIO_BLK_T_IN, 8 * q, 4096);
        kick(q);
    }
    for (int q = 0; q < 4; q++) {
        wait_used(q, 1);
        expect_used(q, &r[q], 4097, VIRTIO_BLK_S_OK);
    }
    /* Queue i's requests were handled in queue i's IOThread. */
    for (int q = 0; q < 4; q++) {
        assert_only_thread("virtio_blk_handle_vq", q,
                           iothread_get_thread_id(env.iot[q % 2]));
    }
    env_close();
}

static void test_mapping_explicit(void)
{
    static const uint16_t v0[] = { 0, 3 }, v1[] = { 2, 1 };
    static const IOThreadVirtQueueMapping m[] = { { "t0", v0, 2 },
                                                  { "t1", v1, 2 } };
    Req r;

    setup_mapping(m, 2, 4);
    ASSERT_PTR_EQ(aiolab_virtio_blk_get_vq_aio_context(env.s, 0),
                  iothread_get_aio_context(env.iot[0]));
    ASSERT_PTR_EQ(aiolab_virtio_blk_get_vq_aio_context(env.s, 1),
                  iothread_get_aio_context(env.iot[1]));
    ASSERT_PTR_EQ(aiolab_virtio_blk_get_vq_aio_context(env.s, 2),
                  iothread_get_aio_context(env.iot[1]));
    ASSERT_PTR_EQ(aiolab_virtio_blk_get_vq_aio_context(env.s, 3),
                  iothread_get_aio_context(env.iot[0]));
    r = req(3, VIRTIO_BLK_T_GET_ID, 0, 20);
    kick(3);
    wait_used(3, 1);
    expect_used(3, &r, 21, VIRTIO_BLK_S_OK);
    assert_only_thread("virtio_blk_handle_vq", 3,
                       iothread_get_thread_id(env.iot[0]));
    env_close();
}

static void test_mapping_errors(void)
{
    static const uint16_t v01[] = { 0, 1 }, v2[] = { 2 }, v1[] = { 1 },
                          v3[] = { 3 }, v9[] = { 9 };
    static const struct {
        IOThreadVirtQueueMapping m[2];
        size_t n;
        const char *msg;
    } cases[] = {
        { { { "t9" } }, 1, "IOThread \"t9\" object does not exist" },
        { { { "t0" }, { "t0" } }, 2,
          "duplicate IOThread name \"t0\" in iothread-vq-mapping" },
        { { { "t0", v01, 2 }, { "t1" } }, 2, "either all items in "
          "iothread-vq-mapping must have vqs or none of them must have it" },
        { { { "t0", v01, 2 }, { "t1", v9, 1 } }, 2, "vq index 9 for IOThread "
          "\"t1\" must be less than num_queues 4 in iothread-vq-mapping" },
        { { { "t0", v01, 2 }, { "t1", v1, 1 } }, 2, "cannot assign vq 1 to "
          "IOThread \"t1\" because it is already assigned" },
        { { { "t0", v01, 2 }, { "t1", v2, 1 } }, 2,
          "missing vq 3 IOThread assignment in iothread-vq-mapping" },
        { { { "t0", v3, 1 } }, 1,
          "missing vq 0 IOThread assignment in iothread-vq-mapping" },
    };
    VirtIOBlkConf conf;

    env_open("driver=null-co,size=64M");
    iothreads(2);
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        conf_defaults(&conf);
        conf.num_queues = 4;
        conf.iothread_vq_mapping = cases[i].m;
        conf.iothread_vq_mapping_len = cases[i].n;
        expect_realize_error(&conf, NULL, cases[i].msg);
    }
    env_close();
}

/* Completions in an IOThread: one irqfd write per handle pass.  In the
 * main loop: one interrupt per completion. */
static void batched_get_ids(int n, uint64_t expect_irqs)
{
    Req r[8];
    AiolabVirtQueueStats st;

    for (int i = 0; i < n; i++) {
        r[i] = req_build(0, VIRTIO_BLK_T_GET_ID, 0, 20, false, false);
    }
    publish_batch(0, r, n);
    kick(0);
    wait_used(0, n);
    for (int i = 0; i < n; i++) {
        expect_used(0, &r[i], 21, VIRTIO_BLK_S_OK);
    }
    ASSERT_EQ(irqfd_count(0), expect_irqs);
    aiolab_virtio_queue_get_stats(virtio_get_queue(env.vdev, 0), &st);
    ASSERT_EQ(st.pushes, n);
}

static void test_irqfd_batched(void)
{
    setup_iothread("driver=null-co,size=64M", 1);
    batched_get_ids(5, 1);
    assert_only_thread("virtio_notify_irqfd", 0,
                       iothread_get_thread_id(env.iot[0]));
    env_close();
    memset(&env, 0, sizeof(env));
    memset(used_tab, 0, sizeof(used_tab));
    setup_inline("driver=null-co,size=64M", 512);
    batched_get_ids(5, 5);
    assert_only_thread("virtio_notify", 0, my_tid());
    env_close();
}

/* ioeventfd on, no iothread: the main loop handles kicks. */
static void test_main_loop_placement(void)
{
    VirtIOBlkConf conf;
    Req r;

    env_open("driver=null-co,size=64M");
    conf_defaults(&conf);
    env_device(&conf);
    ASSERT_EQ(aiolab_virtio_blk_ioeventfd_state(env.s),
              AIOLAB_VIRTIO_BLK_IOEVENTFD_STARTED);
    ASSERT_PTR_EQ(aiolab_virtio_blk_get_vq_aio_context(env.s, 0),
                  qemu_get_aio_context());
    r = req(0, VIRTIO_BLK_T_IN, 0, 4096);
    kick(0);                                 /* an eventfd write only */
    ASSERT_EQ(used_idx(0), 0);
    wait_used(0, 1);                         /* dispatched by aio_poll */
    expect_used(0, &r, 4097, VIRTIO_BLK_S_OK);
    assert_only_thread("virtio_blk_handle_vq", 0, my_tid());
    env_close();
}

/* ioeventfd off: a vCPU thread takes the BQL and handles the kick
 * itself; the completion comes in the main loop. */
typedef struct VcpuArgs {
    int tid;
    bool done;
} VcpuArgs;

static void *vcpu_thread(void *opaque)
{
    VcpuArgs *a = opaque;

    a->tid = (int)gettid();
    aiolab_thread_set_name("vcpu0");
    kick(0);                                 /* MMIO exit: takes the BQL */
    __atomic_store_n(&a->done, true, __ATOMIC_SEQ_CST);
    return NULL;
}

static void test_inline_vcpu(void)
{
    VcpuArgs a = { 0 };
    pthread_t th;
    Req r;

    setup_inline("driver=null-co,size=64M", 512);
    r = req(0, VIRTIO_BLK_T_IN, 0, 4096);
    bql_unlock();
    pthread_create(&th, NULL, vcpu_thread, &a);
    for (int i = 0; used_idx(0) < 1; i++) {
        ASSERT_LT(i, 20000);
        bql_lock();                          /* the main loop polls with it */
        main_loop_wait(true);
        bql_unlock();
        usleep(1000);
    }
    pthread_join(th, NULL);
    bql_lock();
    expect_used(0, &r, 4097, VIRTIO_BLK_S_OK);
    assert_only_thread("virtio_blk_handle_vq", 0, a.tid);
    assert_only_thread("virtio_blk_req_complete", -1, my_tid());
    env_close();
}

/* ------------------------------------------------------------------------
 * Item 19: request merging
 * ------------------------------------------------------------------------ */

/* The aiolab-test driver counts the requests that reach it; a file below
 * it keeps the data, so the merged vectors are checked byte by byte. */
static void setup_counting(bool merging)
{
    VirtIOBlkConf conf;
    BlockDriverState *file;

    env_open(NULL);
    file = bdrv_open(NULL, NULL, file_opts("f0"), BDRV_O_RDWR, &error_abort);
    env.blk = blk_new_open(NULL, NULL, "driver=aiolab-test,file=f0,size=64M",
                           BDRV_O_RDWR, &error_abort);
    bdrv_unref(file);
    env.bs = blk_bs(env.blk);
    conf_defaults(&conf);
    conf.ioeventfd = false;
    conf.queue_size = 256;
    conf.request_merging = merging;
    env_device(&conf);
}

static AiolabTestDriverStats backend(void)
{
    AiolabTestDriverStats st;

    ASSERT_TRUE(aiolab_test_driver_get_stats(env.bs, &st));
    return st;
}

static Req write_pattern(int q, uint64_t sector, uint32_t len, uint8_t seed,
                         bool publish)
{
    Req r = req_build(q, VIRTIO_BLK_T_OUT, sector, len, true, publish);

    for (uint32_t i = 0; i < len; i++) {
        env.ram[r.data + i] = (uint8_t)(seed + i * 13);
    }
    return r;
}

static void test_merge_contiguous(void)
{
    AiolabVirtIOBlkStats st;
    Req w[3], r;
    int tids[2];

    setup_counting(true);
    aiolab_trace_clear();
    /* Out of order in the ring: sorted by sector before merging. */
    w[0] = write_pattern(0, 16, 4096, 3, true);
    w[1] = write_pattern(0, 0, 4096, 1, true);
    w[2] = write_pattern(0, 8, 4096, 2, true);
    kick(0);
    wait_used(0, 3);
    for (int i = 0; i < 3; i++) {
        expect_used(0, &w[i], 1, VIRTIO_BLK_S_OK);
    }
    ASSERT_EQ(backend().writes, 1);               /* one 12 KiB write */
    aiolab_virtio_blk_get_stats(env.s, &st);
    ASSERT_EQ(st.submits_rw, 1);
    ASSERT_EQ(st.merged, 2);
    ASSERT_EQ(trace_tids("virtio_blk_submit_multireq", 3, tids, 2), 1);
    r = req(0, VIRTIO_BLK_T_IN, 0, 12288);
    kick(0);
    wait_used(0, 4);
    expect_used(0, &r, 12289, VIRTIO_BLK_S_OK);
    ASSERT_EQ(memcmp(env.ram + r.data, env.ram + w[1].data, 4096), 0);
    ASSERT_EQ(memcmp(env.ram + r.data + 4096, env.ram + w[2].data, 4096), 0);
    ASSERT_EQ(memcmp(env.ram + r.data + 8192, env.ram + w[0].data, 4096), 0);
    env_close();
}

static void test_merge_direction_change(void)
{
    AiolabVirtIOBlkStats st;

    setup_counting(true);
    write_pattern(0, 0, 4096, 1, true);
    write_pattern(0, 8, 4096, 2, true);
    req(0, VIRTIO_BLK_T_IN, 16, 4096);
    write_pattern(0, 24, 4096, 3, true);
    kick(0);
    wait_used(0, 4);
    /* [W0 W8] merged | R16 | W24: the batch splits where direction does. */
    ASSERT_EQ(backend().writes, 2);
    ASSERT_EQ(backend().reads, 1);
    aiolab_virtio_blk_get_stats(env.s, &st);
    ASSERT_EQ(st.submits_rw, 3);
    ASSERT_EQ(st.merged, 1);
    env_close();
}

static void test_merge_flush_first(void)
{
    static AiolabTraceRecord rec[4096];
    size_t n;
    int submit_at = -1, flush_at = -1;
    Req f;

    setup_counting(true);
    aiolab_trace_clear();
    write_pattern(0, 0, 4096, 1, true);
    write_pattern(0, 8, 4096, 2, true);
    f = req(0, VIRTIO_BLK_T_FLUSH, 0, 0);
    kick(0);
    wait_used(0, 3);
    n = aiolab_trace_collect(rec, 4096, 0);
    for (size_t i = 0; i < n && i < 4096; i++) {
        if (!rec[i].name) {
            continue;
        }
        if (!strcmp(rec[i].name, "virtio_blk_submit_multireq") &&
            submit_at < 0) {
            submit_at = i;
            ASSERT_EQ(rec[i].arg, 2);
        }
        if (!strcmp(rec[i].name, "virtio_blk_handle_flush")) {
            flush_at = i;
        }
    }
    /* The pending writes went down before the flush was issued. */
    ASSERT_GE(submit_at, 0);
    ASSERT_GT(flush_at, submit_at);
    ASSERT_EQ(backend().writes, 1);
    ASSERT_EQ(backend().flushes, 1);
    expect_used(0, &f, 1, VIRTIO_BLK_S_OK);
    env_close();
}

static void test_merge_max_32(void)
{
    AiolabVirtIOBlkStats st;
    static Req w[40];

    setup_counting(true);
    for (int i = 0; i < 40; i++) {
        w[i] = write_pattern(0, 8 * i, 4096, i, false);
    }
    publish_batch(0, w, 40);
    kick(0);
    wait_used(0, 40);
    /* 32 merged into one, the other 8 into another. */
    aiolab_virtio_blk_get_stats(env.s, &st);
    ASSERT_EQ(st.submits_rw, 2);
    ASSERT_EQ(st.merged, 38);
    ASSERT_EQ(backend().writes, 2);
    env_close();
}

static void test_merge_off(void)
{
    AiolabVirtIOBlkStats st;

    setup_counting(false);
    for (int i = 0; i < 3; i++) {
        write_pattern(0, 8 * i, 4096, i, true);
    }
    kick(0);
    wait_used(0, 3);
    aiolab_virtio_blk_get_stats(env.s, &st);
    ASSERT_EQ(st.submits_rw, 3);
    ASSERT_EQ(st.merged, 0);
    ASSERT_EQ(backend().writes, 3);
    env_close();
}

/* ------------------------------------------------------------------------
 * Item 20: ioeventfd start/stop
 * ------------------------------------------------------------------------ */

static void test_start_while_drained(void)
{
    VirtIOBlkConf conf;
    Req r;

    env_open("driver=null-co,size=64M");
    iothreads(1);
    conf_defaults(&conf);
    conf.iothread = "t0";
    env_device_nosetup(&conf);
    bdrv_drained_begin(env.bs);
    driver_setup(0);                    /* DRIVER_OK: start, while drained */
    ASSERT_EQ(aiolab_virtio_blk_ioeventfd_state(env.s),
              AIOLAB_VIRTIO_BLK_IOEVENTFD_STARTED);
    r = req(0, VIRTIO_BLK_T_IN, 0, 4096);
    kick(0);
    expect_idle(0, 0);                  /* not attached yet */
    bdrv_drained_end(env.bs);           /* attaches, and kicks */
    wait_used(0, 1);
    expect_used(0, &r, 4097, VIRTIO_BLK_S_OK);
    assert_only_thread("virtio_blk_handle_vq", 0,
                       iothread_get_thread_id(env.iot[0]));
    env_close();
}

static bool sleeper_running;

static void sleeper_bh(void *opaque)
{
    __atomic_store_n(&sleeper_running, true, __ATOMIC_SEQ_CST);
    usleep(100 * 1000);
}

/* Keep IOThread @i busy for 100 ms, from now. */
static void block_iothread(int i)
{
    __atomic_store_n(&sleeper_running, false, __ATOMIC_SEQ_CST);
    aio_bh_schedule_oneshot(iothread_get_aio_context(env.iot[i]), sleeper_bh,
                            NULL);
    while (!__atomic_load_n(&sleeper_running, __ATOMIC_SEQ_CST)) {
        usleep(100);
    }
}

static void test_stop_last_kick(void)
{
    Req r;

    setup_iothread("driver=null-co,size=64M,latency-ns=50000000", 1);
    aiolab_trace_clear();
    /* The IOThread is busy: the kick waits in the eventfd when stop
     * begins.  Stop's per-queue BH (detach + last read) handles it in the
     * IOThread, then stop drains the I/O it started. */
    block_iothread(0);
    r = req(0, VIRTIO_BLK_T_IN, 0, 4096);
    kick(0);
    aiolab_virtio_bus_set_status(env.vdev, VIRTIO_CONFIG_S_ACKNOWLEDGE |
                                 VIRTIO_CONFIG_S_DRIVER |
                                 VIRTIO_CONFIG_S_FEATURES_OK);
    ASSERT_EQ(aiolab_virtio_blk_ioeventfd_state(env.s), 0);
    ASSERT_EQ(blk_get_in_flight(env.blk), 0);
    ASSERT_EQ(used_idx(0), 1);
    expect_used(0, &r, 4097, VIRTIO_BLK_S_OK);
    assert_only_thread("virtio_blk_handle_vq", 0,
                       iothread_get_thread_id(env.iot[0]));
    ASSERT_PTR_EQ(blk_get_aio_context(env.blk), qemu_get_aio_context());
    /* Stopped: a kick is now an MMIO exit handled by the BQL holder
     * (here it restarts ioeventfd, as QEMU does for an early kick). */
    env_close();
}

static void dummy_drained(void *opaque)
{
}

static const BlockDevOps other_device_ops = {
    .drained_begin = dummy_drained,
    .drained_end = dummy_drained,
};

static void test_set_aio_context_fails(void)
{
    VirtIOBlkConf conf;
    BlockBackend *other;
    char path[64];
    char *out;
    int saved;
    Req r;

    env_open("driver=null-co,size=64M");
    iothreads(1);
    /* Another device on the same node keeps it in the main loop. */
    other = blk_new(qemu_get_aio_context());
    ASSERT_EQ(blk_insert_bs(other, env.bs, &error_abort), 0);
    blk_set_dev_ops(other, &other_device_ops, NULL);
    conf_defaults(&conf);
    conf.iothread = "t0";
    env_device_nosetup(&conf);
    saved = capture_begin(path);
    driver_setup(0);
    out = capture_end(saved, path);
    ASSERT_STR_CONTAINS(out, "warning: ");
    ASSERT_STR_CONTAINS(out, "Cannot change iothread of active block backend");
    /* Started anyway; the block layer runs requests in the IOThread. */
    ASSERT_EQ(aiolab_virtio_blk_ioeventfd_state(env.s),
              AIOLAB_VIRTIO_BLK_IOEVENTFD_STARTED);
    ASSERT_PTR_EQ(blk_get_aio_context(env.blk), qemu_get_aio_context());
    r = req(0, VIRTIO_BLK_T_IN, 0, 4096);
    kick(0);
    wait_used(0, 1);
    expect_used(0, &r, 4097, VIRTIO_BLK_S_OK);
    assert_only_thread("virtio_blk_handle_vq", 0,
                       iothread_get_thread_id(env.iot[0]));
    virtio_blk_free(env.s);
    env.s = NULL;
    blk_set_dev_ops(other, NULL, NULL);
    blk_unref(other);
    env_close();
}

/* ------------------------------------------------------------------------
 * Item 21: rerror/werror
 * ------------------------------------------------------------------------ */

static void setup_errors(BlockdevOnError werror, BlockdevOnError rerror,
                         bool iothread)
{
    VirtIOBlkConf conf;

    BlockDriverState *null;

    env_open(NULL);
    null = bdrv_open(NULL, NULL, "driver=null-co,size=64M,node-name=n0",
                     BDRV_O_RDWR, &error_abort);
    env.blk = blk_new_open(NULL, NULL,
                           "driver=blkdebug,image=n0,node-name=dbg0",
                           BDRV_O_RDWR, &error_abort);
    bdrv_unref(null);
    env.bs = blk_bs(env.blk);
    if (iothread) {
        iothreads(1);
    }
    conf_defaults(&conf);
    conf.werror = werror;
    conf.rerror = rerror;
    conf.ioeventfd = iothread;
    conf.iothread = iothread ? "t0" : NULL;
    env_device(&conf);
}

static void test_error_report(void)
{
    Req w, r;

    setup_errors(BLOCKDEV_ON_ERROR_REPORT, BLOCKDEV_ON_ERROR_REPORT, false);
    ASSERT_EQ(aiolab_blkdebug_inject_error(env.bs, "write", EIO, 0, 0, false),
              0);
    w = write_pattern(0, 0, 4096, 1, true);
    r = req(0, VIRTIO_BLK_T_IN, 0, 4096);
    kick(0);
    wait_used(0, 2);
    expect_used(0, &w, 1, VIRTIO_BLK_S_IOERR);
    expect_used(0, &r, 4097, VIRTIO_BLK_S_OK);
    ASSERT_EQ(env.errors[BLOCK_ERROR_ACTION_REPORT], 1);
    env_close();
}

static void test_error_ignore(void)
{
    Req w;

    setup_errors(BLOCKDEV_ON_ERROR_IGNORE, BLOCKDEV_ON_ERROR_REPORT, false);
    aiolab_blkdebug_inject_error(env.bs, "write", EIO, 0, 0, false);
    w = write_pattern(0, 0, 4096, 1, true);
    kick(0);
    wait_used(0, 1);
    expect_used(0, &w, 1, VIRTIO_BLK_S_OK);
    ASSERT_EQ(env.errors[BLOCK_ERROR_ACTION_IGNORE], 1);
    env_close();
}

/* enospc: stop on ENOSPC, report anything else. */
static void test_error_enospc(void)
{
    AiolabVirtIOBlkStats st;
    Req w;

    setup_errors(BLOCKDEV_ON_ERROR_ENOSPC, BLOCKDEV_ON_ERROR_REPORT, false);
    aiolab_blkdebug_inject_error(env.bs, "write", EIO, 0, 4096, true);
    aiolab_blkdebug_inject_error(env.bs, "write", ENOSPC, 4096, 4096, true);
    w = write_pattern(0, 0, 4096, 1, true);
    req(0, VIRTIO_BLK_T_FLUSH, 0, 0);       /* no merging across a flush */
    write_pattern(0, 8, 4096, 2, true);
    kick(0);
    wait_used(0, 2);                        /* IOERR + flush; one parked */
    expect_used(0, &w, 1, VIRTIO_BLK_S_IOERR);
    aiolab_virtio_blk_get_stats(env.s, &st);
    ASSERT_EQ(st.parked, 1);
    ASSERT_EQ(env.errors[BLOCK_ERROR_ACTION_STOP], 1);
    ASSERT_EQ(env.errors[BLOCK_ERROR_ACTION_REPORT], 1);
    env_close();
}

static void test_error_stop(void)
{
    AiolabVirtIOBlkStats st;
    Req w, r;

    setup_errors(BLOCKDEV_ON_ERROR_STOP, BLOCKDEV_ON_ERROR_STOP, true);
    aiolab_blkdebug_inject_error(env.bs, "write", EIO, 0, 0, false);
    aiolab_blkdebug_inject_error(env.bs, "read", EIO, 0, 0, false);
    w = write_pattern(0, 0, 4096, 1, true);
    r = req(0, VIRTIO_BLK_T_IN, 64, 4096);
    kick(0);
    for (int i = 0; __atomic_load_n(&env.errors[BLOCK_ERROR_ACTION_STOP],
                                    __ATOMIC_SEQ_CST) < 2; i++) {
        ASSERT_LT(i, 20000);
        usleep(1000);
    }
    /* Parked: no used entry, still popped, not in flight. */
    aiolab_virtio_blk_get_stats(env.s, &st);
    ASSERT_EQ(st.parked, 2);
    expect_idle(0, 0);
    ASSERT_EQ(aiolab_virtio_queue_get_inuse(env.vdev, 0), 2);
    blk_drain(env.blk);                     /* does not wait for them */
    /* The VM is "resumed" with the disk fixed: both re-issued from a BH
     * in the queue's IOThread, which holds the BlockBackend in flight. */
    aiolab_blkdebug_clear_errors(env.bs);
    aiolab_trace_clear();
    block_iothread(0);
    virtio_blk_dma_restart_cb(env.s, true, 0);
    ASSERT_EQ(blk_get_in_flight(env.blk), 1);
    aiolab_virtio_blk_get_stats(env.s, &st);
    ASSERT_EQ(st.parked, 0);
    wait_used(0, 2);
    expect_used(0, &w, 1, VIRTIO_BLK_S_OK);
    expect_used(0, &r, 4097, VIRTIO_BLK_S_OK);
    assert_only_thread("virtio_blk_restart_bh", 0,
                       iothread_get_thread_id(env.iot[0]));
    assert_only_thread("virtio_blk_req_complete", -1,
                       iothread_get_thread_id(env.iot[0]));
    env_close();
}

/* A reset drops what is parked. */
static void test_error_stop_reset(void)
{
    AiolabVirtIOBlkStats st;

    setup_errors(BLOCKDEV_ON_ERROR_STOP, BLOCKDEV_ON_ERROR_REPORT, false);
    aiolab_blkdebug_inject_error(env.bs, "write", EIO, 0, 0, false);
    write_pattern(0, 0, 4096, 1, true);
    kick(0);
    for (int i = 0; __atomic_load_n(&env.errors[BLOCK_ERROR_ACTION_STOP],
                                    __ATOMIC_SEQ_CST) < 1; i++) {
        ASSERT_LT(i, 20000);
        main_loop_wait(true);
        usleep(1000);
    }
    ASSERT_EQ(aiolab_virtio_queue_get_inuse(env.vdev, 0), 1);
    aiolab_virtio_bus_set_status(env.vdev, 0);
    aiolab_virtio_blk_get_stats(env.s, &st);
    ASSERT_EQ(st.parked, 0);
    ASSERT_EQ(aiolab_virtio_queue_get_inuse(env.vdev, 0), 0);
    ASSERT_EQ(used_idx(0), 0);
    env_close();
}

static const TestCase tests[] = {
    { "/virtio-blk/realize/errors", test_realize_errors },
    { "/virtio-blk/config", test_config },
    { "/virtio-blk/req/ok", test_req_ok },
    { "/virtio-blk/req/unsupp", test_req_unsupp },
    { "/virtio-blk/req/ioerr", test_req_ioerr },
    { "/virtio-blk/req/indirect-event-idx", test_req_indirect_event_idx },
    { "/virtio-blk/broken/no-in", test_broken_no_in },
    { "/virtio-blk/broken/short-outhdr", test_broken_short_outhdr },
    { "/virtio-blk/broken/short-discard", test_broken_short_discard },
    { "/virtio-blk/broken/looped-chain", test_broken_chain },
    { "/virtio-blk/drain/ioeventfd", test_drain },
    { "/virtio-blk/placement/main-loop", test_main_loop_placement },
    { "/virtio-blk/placement/inline-vcpu", test_inline_vcpu },
    { "/virtio-blk/vq-mapping/round-robin", test_mapping_round_robin },
    { "/virtio-blk/vq-mapping/explicit", test_mapping_explicit },
    { "/virtio-blk/vq-mapping/errors", test_mapping_errors },
    { "/virtio-blk/irqfd-batched", test_irqfd_batched },
    { "/virtio-blk/merge/contiguous", test_merge_contiguous },
    { "/virtio-blk/merge/direction-change", test_merge_direction_change },
    { "/virtio-blk/merge/flush-first", test_merge_flush_first },
    { "/virtio-blk/merge/max-32", test_merge_max_32 },
    { "/virtio-blk/merge/off", test_merge_off },
    { "/virtio-blk/ioeventfd/start-while-drained", test_start_while_drained },
    { "/virtio-blk/ioeventfd/stop-last-kick", test_stop_last_kick },
    { "/virtio-blk/ioeventfd/set-aio-context-fails",
      test_set_aio_context_fails },
    { "/virtio-blk/error/report", test_error_report },
    { "/virtio-blk/error/ignore", test_error_ignore },
    { "/virtio-blk/error/enospc", test_error_enospc },
    { "/virtio-blk/error/stop-resume", test_error_stop },
    { "/virtio-blk/error/stop-reset", test_error_stop_reset },
    { NULL }
};

int main(int argc, char **argv)
{
    return harness_main(argc, argv, tests);
}
