/* cc -Ic/include tutorial/ch07-drained-sections/race.c -o build/race -Lbuild -laiolab -Wl,-rpath,$PWD/build */
/*
 * SPDX-License-Identifier: MIT
 *
 * ch07-drained-sections/race.c - the race drained sections exist for.
 *
 * A guest's disk moves to new storage while an IOThread writes to it:
 * the main loop copies the old node to the new one, then switches the
 * guest's BlockBackend over.  One write is held in the old node by a
 * blkdebug breakpoint (the injected latency that makes the race certain)
 * and released by a timer 100 ms later.  First without a drained section
 * (the write is acknowledged and lost), then inside one (it is not).
 */
#include "../tutorial.h"
#include <aiolab/aiolab.h>

#define DISK_SIZE (64 * 1024)
#define BLOCK 4096

static AioContext *io_ctx;

/* One disk: blkdebug (node @name) over a file holding @fill everywhere. */
static BlockDriverState *disk_open(const char *name, char fill)
{
    static char buf[DISK_SIZE];
    BlockDriverState *file, *dbg;
    char path[64], opts[256];
    int fd;

    snprintf(path, sizeof(path), "%s.img", name);
    fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    memset(buf, fill, sizeof(buf));
    if (fd < 0 || write(fd, buf, sizeof(buf)) != sizeof(buf)) {
        perror(path);
        exit(1);
    }
    close(fd);
    snprintf(opts, sizeof(opts), "driver=file,filename=%s,aio=threads,"
             "node-name=%s-file", path, name);
    file = bdrv_open(NULL, NULL, opts, BDRV_O_RDWR, &error_abort);
    unlink(path);                   /* the node keeps it open */
    snprintf(opts, sizeof(opts), "driver=blkdebug,image=%s-file,"
             "node-name=%s", name, name);
    dbg = bdrv_open(NULL, NULL, opts, BDRV_O_RDWR, &error_abort);
    bdrv_unref(file);               /* dbg holds it now */
    return dbg;
}

/* The byte at @offset of node @bs, read through a BlockBackend of its
 * own (request queuing off: it may read inside a drained section). */
static char peek(BlockDriverState *bs, int64_t offset)
{
    BlockBackend *blk = blk_new(qemu_get_aio_context());
    char c;

    blk_insert_bs(blk, bs, &error_abort);
    blk_set_disable_request_queuing(blk, true);
    if (blk_pread(blk, offset, 1, &c, 0) < 0) {
        exit(1);
    }
    blk_unref(blk);
    return c;
}

/*
 * The copy: every byte of one node to another (a mirror job does this in
 * the background: chapter B), through two BlockBackends of its own,
 * made before the race starts (request queuing off: they may work inside
 * a drained section; and freeing one drains its node, which would hide
 * the race).
 */
typedef struct Copier {
    BlockBackend *src, *dst;
} Copier;

static Copier copier_new(BlockDriverState *from, BlockDriverState *to)
{
    Copier c = { blk_new(qemu_get_aio_context()),
                 blk_new(qemu_get_aio_context()) };

    blk_insert_bs(c.src, from, &error_abort);
    blk_insert_bs(c.dst, to, &error_abort);
    blk_set_disable_request_queuing(c.src, true);
    blk_set_disable_request_queuing(c.dst, true);
    return c;
}

static void copy_disk(Copier *c)
{
    static char buf[DISK_SIZE];

    if (blk_pread(c->src, 0, DISK_SIZE, buf, 0) < 0 ||
        blk_pwrite(c->dst, 0, DISK_SIZE, buf, 0) < 0) {
        exit(1);
    }
}

/* --- the guest's writes, issued in the IOThread --------------------------- */

typedef struct Write {
    BlockBackend *blk;
    int64_t offset;
    char data[BLOCK];
    QEMUIOVector qiov;
    bool submitted, acked;          /* atomic: set in the IOThread */
    int ret;
} Write;

static void write_done(void *opaque, int ret)
{
    Write *w = opaque;

    w->ret = ret;
    __atomic_store_n(&w->acked, true, __ATOMIC_SEQ_CST);
    aio_wait_kick();                /* the main loop may be waiting */
}

static void write_bh(void *opaque)
{
    Write *w = opaque;

    qemu_iovec_init_buf(&w->qiov, w->data, BLOCK);
    blk_aio_pwritev(w->blk, w->offset, &w->qiov, 0, write_done, w);
    __atomic_store_n(&w->submitted, true, __ATOMIC_SEQ_CST);
    aio_wait_kick();
}

static void guest_write(Write *w, BlockBackend *blk, int64_t off, char c)
{
    memset(w, 0, sizeof(*w));
    w->blk = blk;
    w->offset = off;
    memset(w->data, c, BLOCK);
    aio_bh_schedule_oneshot(io_ctx, write_bh, w);
    AIO_WAIT_WHILE(NULL, !__atomic_load_n(&w->submitted, __ATOMIC_SEQ_CST));
}

static bool acked(Write *w)
{
    return __atomic_load_n(&w->acked, __ATOMIC_SEQ_CST);
}

/* --- the release timer ---------------------------------------------------- */

static int64_t t0;

static void release_cb(void *opaque)
{
    printf("  %6.1f ms  the timer releases the held write\n",
           (tut_now_ns() - t0) / 1e6);
    bdrv_debug_resume(opaque, "held");
}

/* One move of the guest's disk from @old to @new; @drained: inside a
 * drained section.  Returns the byte the guest reads back at 0. */
static char move_disk(BlockBackend *blk, BlockDriverState *old,
                      BlockDriverState *new, bool drained)
{
    QEMUTimer *release = aio_timer_new(qemu_get_aio_context(),
                                       QEMU_CLOCK_REALTIME, SCALE_MS,
                                       release_cb, old);
    Copier copier = copier_new(old, new);
    Write held, parked;
    char c;

    bdrv_debug_breakpoint(old, "write-aio", "held");
    guest_write(&held, blk, 0, 'B');        /* stops in the old node */
    AIO_WAIT_WHILE(NULL, !bdrv_debug_is_suspended(old, "held"));
    CHECK_EQ("the guest's write is held in flight in the old node",
             bdrv_get_in_flight(old), 1);
    t0 = tut_now_ns();
    timer_mod(release, qemu_clock_get_ms(QEMU_CLOCK_REALTIME) + 100);

    if (!drained) {
        /* [region: unsafe] */
        copy_disk(&copier);
        aiolab_test_replace_node_undrained(old, new, &error_abort);
        /* [endregion] */
        printf("  %6.1f ms  copied and switched\n",
               (tut_now_ns() - t0) / 1e6);
        CHECK("the switch was done while the write was still in the "
              "old node", !acked(&held) && bdrv_get_in_flight(old) == 1);
    } else {
        /* [region: safe] */
        bdrv_drained_begin(old);        /* waits for the held write */
        bdrv_drained_begin(new);
        CHECK("bdrv_drained_begin() returned only after the held write "
              "had completed", acked(&held));
        guest_write(&parked, blk, BLOCK, 'C');
        CHECK("a write sent inside the section is parked: not run, not "
              "in flight", !acked(&parked) && blk_get_in_flight(blk) == 0);
        copy_disk(&copier);
        aiolab_test_replace_node_undrained(old, new, &error_abort);
        bdrv_drained_end(new);
        bdrv_drained_end(old);
        /* [endregion] */
        printf("  %6.1f ms  copied and switched\n",
               (tut_now_ns() - t0) / 1e6);
    }
    AIO_WAIT_WHILE(NULL, !acked(&held));
    CHECK_EQ("the guest's write was acknowledged (ret 0)", held.ret, 0);
    CHECK("the guest's BlockBackend now points to the new node",
          blk_bs(blk) == new);
    CHECK_EQ("the acknowledged write is on the old node", peek(old, 0),
             'B');
    if (blk_pread(blk, 0, 1, &c, 0) < 0) {
        exit(1);
    }
    if (drained) {
        AIO_WAIT_WHILE(NULL, !acked(&parked));
        CHECK("the parked write ran after drained_end, on the new node",
              peek(new, BLOCK) == 'C' && peek(old, BLOCK) == 'A');
    }
    timer_free(release);
    blk_unref(copier.src);
    blk_unref(copier.dst);
    return c;
}

int main(void)
{
    BlockDriverState *old, *new;
    BlockBackend *blk;
    IOThread *it;
    char got;

    qemu_init_main_loop(&error_abort);
    bql_lock();
    it = iothread_create("io0", &error_abort);
    io_ctx = iothread_get_aio_context(it);

    printf("Without a drained section:\n");
    old = disk_open("old", 'A');
    new = disk_open("new", '?');
    blk = blk_new(qemu_get_aio_context());
    blk_insert_bs(blk, old, &error_abort);
    got = move_disk(blk, old, new, false);
    printf("  the guest wrote 'B' at 0 and reads back '%c'\n", got);
    CHECK_EQ("without the section, the guest reads stale data ('A')",
             got, 'A');
    blk_unref(blk);
    bdrv_unref(old);
    bdrv_unref(new);

    printf("Inside a drained section:\n");
    old = disk_open("old2", 'A');
    new = disk_open("new2", '?');
    blk = blk_new(qemu_get_aio_context());
    blk_insert_bs(blk, old, &error_abort);
    got = move_disk(blk, old, new, true);
    printf("  the guest wrote 'B' at 0 and reads back '%c'\n", got);
    CHECK_EQ("inside the section, the guest reads what it wrote ('B')",
             got, 'B');
    blk_unref(blk);
    bdrv_unref(old);
    bdrv_unref(new);

    iothread_destroy(it);
    bql_unlock();
    return 0;
}
