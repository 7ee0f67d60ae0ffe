/* SPDX-License-Identifier: MIT */
/*
 * tests/c/test-block-race.c - the race drained sections exist for, made
 * deterministic with a blkdebug breakpoint, shown failing without the
 * drain and never failing with it.
 *
 * The main loop swaps the node under a guest's BlockBackend while an
 * IOThread keeps writing through it, and one write ("held", block 0) is
 * stopped by a blkdebug breakpoint inside the old node across the swap:
 *
 *   IOThread                        main loop
 *   write block 0 ---> old node: breakpoint, suspended
 *                                   swap the guest's edge to the new node
 *   (resumed) ---> finishes in the OLD node, acknowledged
 *   read block 0 ---> new node: the acknowledged write is not there
 *
 * Two swaps, each with an UNSAFE arm (aiolab_test_replace_node_undrained,
 * the edge switch without its drained section: the outcome above, and
 * the write reaches the old node after the swap) and a SAFE arm (the real
 * thing: the drain cannot finish while the write is in flight, so the
 * IOThread releases it - only once it sees the drain has begun - and the
 * swap happens after it; nothing reaches the old node afterwards):
 *
 *   /block-race/replace/...: bdrv_replace_node() between two nodes that
 *       hold the same data (no copy: the property is where requests go);
 *   /block-race/mirror/...:  a ready mirror's switch-over; the safe arm is
 *       job_complete(), and the held write is on the target afterwards.
 *
 * Each old/new node is blkdebug over an aiolab-test node (whose request
 * counters say which node a write really reached) over a file.
 *
 * In the unsafe arms the stream of other writes holds off for the instant
 * of the swap: an undrained swap also races with any request reading the
 * edge at that moment (ThreadSanitizer reports it - the same bug seen from
 * the memory model); the held write is the deterministic symptom.
 */
#include <errno.h>
#include <string.h>
#include <aiolab/aiolab.h>
#include "block-harness.h"
#include "stamp.h"

#define DISK_SIZE (1 << 20)
#define NBLOCKS (DISK_SIZE / STAMP_BLOCK)
#define HELD_BLOCK 0            /* only the held write touches block 0 */

/* @name (blkdebug) -> @name-t (aiolab-test) -> @name-file (file) */
typedef struct Disk {
    int fd;
    BlockDriverState *file, *t, *dbg;
} Disk;

static void disk_open(Disk *d, const char *name, bool stamped)
{
    d->fd = stamp_make_file(DISK_SIZE, stamped);
    d->file = open_node("driver=file,filename=/proc/self/fd/%d,aio=threads,"
                        "node-name=%s-file", d->fd, name);
    d->t = open_node("driver=aiolab-test,file=%s-file,node-name=%s-t", name,
                     name);
    d->dbg = open_node("driver=blkdebug,image=%s-t,node-name=%s", name,
                       name);
}

static void disk_close(Disk *d)
{
    ASSERT_EQ(bdrv_get_in_flight(d->dbg), 0);
    ASSERT_EQ(bdrv_get_in_flight(d->t), 0);
    bdrv_unref(d->dbg);
    bdrv_unref(d->t);
    bdrv_unref(d->file);
    close(d->fd);
}

/* Writes that reached @d's aiolab-test node. */
static int64_t disk_writes(Disk *d)
{
    AiolabTestDriverStats st;

    ASSERT_TRUE(aiolab_test_driver_get_stats(d->t, &st));
    return st.writes;
}

/* The generation of one block of @bs, read through a BlockBackend of
 * its own. */
static int64_t node_gen(BlockDriverState *bs, int64_t block)
{
    BlockBackend *blk = blk_new(bdrv_get_aio_context(bs));
    uint8_t buf[STAMP_BLOCK];

    ASSERT_EQ(blk_insert_bs(blk, bs, &error_abort), 0);
    ASSERT_EQ(blk_pread(blk, block * STAMP_BLOCK, STAMP_BLOCK, buf, 0), 0);
    blk_unref(blk);
    return stamp_gen(buf, block * STAMP_BLOCK);
}

static int64_t blk_gen(BlockBackend *blk, int64_t block)
{
    uint8_t buf[STAMP_BLOCK];

    ASSERT_EQ(blk_pread(blk, block * STAMP_BLOCK, STAMP_BLOCK, buf, 0), 0);
    return stamp_gen(buf, block * STAMP_BLOCK);
}

/* --- the IOThread side ------------------------------------------------------ */

typedef struct Gen {
    BlockBackend *blk;
    AioContext *ctx;
    BlockDriverState *held_in;      /* the blkdebug node holding "held" */
    BlockDriverState *watch;        /* safe arms: release it once this
                                     * node is quiesced (a drain began) */
    int64_t gens[NBLOCKS];          /* atomic: stream's last acked gens */
    unsigned seed;
    /* Atomic, main loop <-> IOThread: */
    bool stream_hold, stream_idle, stop, stream_done;
    bool held_acked;
    int held_ret;
    bool released_in_drain;
    int64_t writes;
    int64_t failures;
} Gen;

static bool ld(bool *p)
{
    return __atomic_load_n(p, __ATOMIC_SEQ_CST);
}

static void st(bool *p, bool v)
{
    __atomic_store_n(p, v, __ATOMIC_SEQ_CST);
    aio_wait_kick();
}

/* Random stamped writes to blocks 1..NBLOCKS-1, each read back now and
 * then; holds off while the main loop asks (stream_hold). */
static void coroutine_fn stream_co(void *opaque)
{
    Gen *g = opaque;
    uint8_t buf[STAMP_BLOCK];

    while (!ld(&g->stop)) {
        int64_t b = 1 + rand_r(&g->seed) % (NBLOCKS - 1);
        int64_t off = b * STAMP_BLOCK;
        int64_t gen = __atomic_load_n(&g->gens[b], __ATOMIC_SEQ_CST) + 1;

        if (ld(&g->stream_hold)) {
            st(&g->stream_idle, true);
            qemu_co_sleep_ns(QEMU_CLOCK_REALTIME, 100000);
            continue;
        }
        st(&g->stream_idle, false);
        stamp_fill(buf, off, gen);
        if (blk_co_pwrite(g->blk, off, STAMP_BLOCK, buf, 0) < 0) {
            __atomic_fetch_add(&g->failures, 1, __ATOMIC_SEQ_CST);
        } else {
            __atomic_store_n(&g->gens[b], gen, __ATOMIC_SEQ_CST);
        }
        __atomic_fetch_add(&g->writes, 1, __ATOMIC_SEQ_CST);
        aio_wait_kick();
        qemu_co_sleep_ns(QEMU_CLOCK_REALTIME, 50000);
    }
    st(&g->stream_done, true);
}

static void coroutine_fn held_co(void *opaque)
{
    Gen *g = opaque;
    uint8_t buf[STAMP_BLOCK];
    int ret;

    stamp_fill(buf, HELD_BLOCK * STAMP_BLOCK, 1);
    ret = blk_co_pwrite(g->blk, HELD_BLOCK * STAMP_BLOCK, STAMP_BLOCK, buf,
                        0);
    __atomic_store_n(&g->held_ret, ret, __ATOMIC_SEQ_CST);
    st(&g->held_acked, true);
}

/* Safe arms: the held write may go on only once a drain of @watch has
 * begun - proof that it was in flight when the drain started. */
static void coroutine_fn watcher_co(void *opaque)
{
    Gen *g = opaque;

    while (!(bdrv_get_quiesce_counter(g->watch) > 0 &&
             bdrv_debug_is_suspended(g->held_in, "held"))) {
        qemu_co_sleep_ns(QEMU_CLOCK_REALTIME, 50000);
    }
    ASSERT_EQ(bdrv_debug_resume(g->held_in, "held"), 0);
    st(&g->released_in_drain, true);
}

static void gen_start(Gen *g, BlockBackend *blk, AioContext *ctx)
{
    int64_t b;

    memset(g, 0, sizeof(*g));
    g->blk = blk;
    g->ctx = ctx;
    g->seed = 7;
    aio_co_enter(ctx, qemu_coroutine_create(stream_co, g));
    b = __atomic_load_n(&g->writes, __ATOMIC_SEQ_CST);
    AIO_WAIT_WHILE(NULL, __atomic_load_n(&g->writes, __ATOMIC_SEQ_CST) <
                         b + 20);
}

static void gen_wait_writes(Gen *g, int64_t n)
{
    int64_t target = __atomic_load_n(&g->writes, __ATOMIC_SEQ_CST) + n;

    AIO_WAIT_WHILE(NULL, __atomic_load_n(&g->writes, __ATOMIC_SEQ_CST) <
                         target);
}

/* Suspend the next write reaching @dbg: the held one (the stream is
 * idle meanwhile, so it cannot take the breakpoint). */
static void gen_hold_write(Gen *g, BlockDriverState *dbg)
{
    g->held_in = dbg;
    st(&g->stream_hold, true);
    AIO_WAIT_WHILE(NULL, !ld(&g->stream_idle));
    ASSERT_EQ(bdrv_debug_breakpoint(dbg, "write-aio", "held"), 0);
    aio_co_enter(g->ctx, qemu_coroutine_create(held_co, g));
    AIO_WAIT_WHILE(NULL, !bdrv_debug_is_suspended(dbg, "held"));
    st(&g->stream_hold, false);
}

static void gen_stream_pause(Gen *g)
{
    st(&g->stream_hold, true);
    AIO_WAIT_WHILE(NULL, !ld(&g->stream_idle));
}

static void gen_stream_resume(Gen *g)
{
    st(&g->stream_hold, false);
}

static void gen_stop(Gen *g)
{
    st(&g->stop, true);
    AIO_WAIT_WHILE(NULL, !ld(&g->stream_done));
    AIO_WAIT_WHILE(NULL, !ld(&g->held_acked));
    ASSERT_EQ(__atomic_load_n(&g->failures, __ATOMIC_SEQ_CST), 0);
    ASSERT_EQ(__atomic_load_n(&g->held_ret, __ATOMIC_SEQ_CST), 0);
}

/* Every stream block reads back as last acknowledged. */
static void gen_check_stream(Gen *g, BlockBackend *blk)
{
    int64_t b;

    for (b = 1; b < NBLOCKS; b++) {
        ASSERT_EQ(blk_gen(blk, b), g->gens[b]);
    }
}

/* --- bdrv_replace_node ------------------------------------------------------ */

static void test_replace_common(bool safe)
{
    IOThread *iothread;
    BlockBackend *blk;
    Disk old, new;
    Gen *g = calloc(1, sizeof(*g));
    int64_t old_writes;

    block_test_setup();
    iothread = iothread_create("io", &error_abort);
    disk_open(&old, "old", true);
    disk_open(&new, "new", true);       /* the same data: an up-to-date copy */
    blk = blk_new(qemu_get_aio_context());
    ASSERT_EQ(blk_insert_bs(blk, old.dbg, &error_abort), 0);
    gen_start(g, blk, iothread_get_aio_context(iothread));
    gen_hold_write(g, old.dbg);
    ASSERT_FALSE(ld(&g->held_acked));

    if (safe) {
        g->watch = old.dbg;
        aio_co_enter(g->ctx, qemu_coroutine_create(watcher_co, g));
        /* Drains old: waits for the held write, which the IOThread
         * releases only once it sees the drain; the stream parks. */
        ASSERT_EQ(bdrv_replace_node(old.dbg, new.dbg, &error_abort), 0);
        ASSERT_TRUE(ld(&g->released_in_drain));
        ASSERT_FALSE(bdrv_debug_is_suspended(old.dbg, "held"));
        ASSERT_EQ(bdrv_get_in_flight(old.dbg), 0);  /* it left before */
        old_writes = disk_writes(&old);
    } else {
        gen_stream_pause(g);
        ASSERT_EQ(aiolab_test_replace_node_undrained(old.dbg, new.dbg,
                                                     &error_abort), 0);
        gen_stream_resume(g);
        ASSERT_EQ(bdrv_get_in_flight(old.dbg), 1);  /* still inside */
        old_writes = disk_writes(&old);
        ASSERT_EQ(bdrv_debug_resume(old.dbg, "held"), 0);
    }
    ASSERT_PTR_EQ(blk_bs(blk), new.dbg);
    AIO_WAIT_WHILE(NULL, !ld(&g->held_acked));
    gen_wait_writes(g, 50);             /* the stream goes on, to new */

    /* The acknowledged held write is on the old node either way... */
    ASSERT_EQ(node_gen(old.dbg, HELD_BLOCK), 1);
    if (safe) {
        /* ... but it got there before the swap: after it, no write
         * reached the old node. */
        ASSERT_EQ(disk_writes(&old), old_writes);
    } else {
        /* ... and it got there AFTER the swap: acknowledged to a guest
         * that now reads the new node, which never saw it. */
        ASSERT_EQ(disk_writes(&old), old_writes + 1);
        ASSERT_EQ(blk_gen(blk, HELD_BLOCK), 0);     /* stale */
    }
    gen_stop(g);
    ASSERT_EQ(blk_get_in_flight(blk), 0);
    blk_unref(blk);
    disk_close(&old);
    disk_close(&new);
    iothread_destroy(iothread);
    free(g);
}

static void test_replace_unsafe(void)
{
    test_replace_common(false);
}

static void test_replace_safe(void)
{
    test_replace_common(true);
}

/* --- a mirror's switch-over ------------------------------------------------- */

static void test_mirror_common(bool safe)
{
    IOThread *iothread;
    BlockBackend *blk;
    Disk src, tgt;
    Gen *g = calloc(1, sizeof(*g));
    Job *job;
    int64_t src_writes;

    block_test_setup();
    iothread = iothread_create("io", &error_abort);
    disk_open(&src, "src", true);
    disk_open(&tgt, "tgt", false);
    blk = blk_new(qemu_get_aio_context());
    ASSERT_EQ(blk_insert_bs(blk, src.dbg, &error_abort), 0);
    gen_start(g, blk, iothread_get_aio_context(iothread));
    job = mirror_start("mirror0", src.dbg, tgt.dbg, JOB_DEFAULT, 0,
                       STAMP_BLOCK, 0, BLOCKDEV_ON_ERROR_REPORT,
                       BLOCKDEV_ON_ERROR_REPORT, NULL, &error_abort);
    AIO_WAIT_WHILE(NULL, !job_is_ready(job));
    gen_wait_writes(g, 20);             /* copied as they come */
    gen_hold_write(g, src.dbg);         /* below the mirror's filter */

    if (safe) {
        /* The real switch: its drained section of the source waits for
         * the held write (the IOThread releases it once the drain has
         * begun), sees it dirty, copies it, drains again, switches. */
        g->watch = src.dbg;
        aio_co_enter(g->ctx, qemu_coroutine_create(watcher_co, g));
        ASSERT_EQ(job_complete_sync(job, &error_abort), 0);
        ASSERT_TRUE(ld(&g->released_in_drain));
        ASSERT_TRUE(ld(&g->held_acked));
        src_writes = disk_writes(&src);
    } else {
        /* A switch without the drain: the mirror is stopped so that it
         * cannot repair anything later, then the guest's edge moves. */
        job_user_pause(job, &error_abort);
        AIO_WAIT_WHILE(NULL, !aiolab_job_is_paused(job));
        gen_stream_pause(g);
        ASSERT_EQ(aiolab_test_replace_node_undrained(blk_bs(blk), tgt.dbg,
                                                     &error_abort), 0);
        gen_stream_resume(g);
        src_writes = disk_writes(&src);
        ASSERT_EQ(bdrv_debug_resume(src.dbg, "held"), 0);
        AIO_WAIT_WHILE(NULL, !ld(&g->held_acked));
    }
    ASSERT_PTR_EQ(blk_bs(blk), tgt.dbg);
    gen_wait_writes(g, 50);             /* the stream goes on, to tgt */

    ASSERT_EQ(node_gen(src.dbg, HELD_BLOCK), 1);
    if (safe) {
        /* Every acknowledged write is on the target; nothing reached the
         * source after the switch. */
        ASSERT_EQ(blk_gen(blk, HELD_BLOCK), 1);
        ASSERT_EQ(disk_writes(&src), src_writes);
    } else {
        ASSERT_EQ(disk_writes(&src), src_writes + 1);
        ASSERT_EQ(blk_gen(blk, HELD_BLOCK), 0);     /* stale: lost */
        ASSERT_EQ(job_cancel_sync(job, true), -ECANCELED);
    }
    gen_stop(g);
    if (safe) {
        gen_check_stream(g, blk);       /* every other write made it too */
    }
    /* (Unsafe: stream writes acknowledged between the mirror's last copy
     * and the swap may be missing on the target as well - the same bug.) */
    ASSERT_EQ(blk_get_in_flight(blk), 0);
    job_unref(job);
    blk_unref(blk);
    disk_close(&src);
    disk_close(&tgt);
    iothread_destroy(iothread);
    free(g);
}

static void test_mirror_unsafe(void)
{
    test_mirror_common(false);
}

static void test_mirror_safe(void)
{
    test_mirror_common(true);
}

static const TestCase tests[] = {
    { "/block-race/replace/unsafe", test_replace_unsafe },
    { "/block-race/replace/safe", test_replace_safe },
    { "/block-race/mirror/unsafe", test_mirror_unsafe },
    { "/block-race/mirror/safe", test_mirror_safe },
    { NULL }
};

int main(int argc, char **argv)
{
    return harness_main(argc, argv, tests);
}
