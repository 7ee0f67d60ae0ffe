/* SPDX-License-Identifier: MIT */
/*
 * tests/c/test-mirror.c - block jobs and the mirror job (QEMU's
 * tests/unit/test-bdrv-drain.c /bdrv-drain/blockjob/..., test-block-iothread.c
 * /attach/blockjob and /propagate/mirror, and the mirror's own promises).
 *
 *   - switch-over under load: a writer coroutine in an IOThread writes
 *     stamped blocks all along (each block: offset + generation); after
 *     the switch every acknowledged write is on the target, and the
 *     source holds what it had at the switch;
 *   - cancel before and after ready (hard and soft);
 *   - drains pause the job (pause_count 1 per drain, 2 for drain_all with
 *     two nodes, also when a child of the job's node is drained), the
 *     drain waits until the job is parked, and it resumes later;
 *   - the job follows its node between the main loop and an IOThread;
 *   - changing the context of source or target moves the whole graph
 *     with the job, and a device's BlockBackend refuses it all-or-nothing;
 *   - injected EIO/ENOSPC reach the job's completion, nothing hangs and
 *     every in-flight counter returns to zero;
 *   - QEMU's test job (a JobDriver of the test's own) for the catalogue's
 *     /bdrv-drain/blockjob/... table, with FAIL_RUN and FAIL_PREPARE.
 */
#include <errno.h>
#include <string.h>
#include <aiolab/aiolab.h>
#include "block-harness.h"
#include "stamp.h"

#define DISK_SIZE (4 << 20)
#define NBLOCKS (DISK_SIZE / STAMP_BLOCK)

static BlockDriverState *open_file_node(const char *name, int fd)
{
    return open_node("driver=file,filename=/proc/self/fd/%d,aio=threads,"
                     "node-name=%s", fd, name);
}

static BlockBackend *blk_on(BlockDriverState *bs)
{
    BlockBackend *blk = blk_new(bdrv_get_aio_context(bs));

    ASSERT_EQ(blk_insert_bs(blk, bs, &error_abort), 0);
    return blk;
}

/* --- events -------------------------------------------------------------- */

#define MAX_EVENTS 64

static AiolabJobEvent events[MAX_EVENTS];   /* main loop only */
static int nb_events, nb_status_changes;

static void record_event(const AiolabJobEvent *ev, void *opaque)
{
    if (ev->type == AIOLAB_JOB_EVENT_STATUS_CHANGE) {
        nb_status_changes++;
    } else if (nb_events < MAX_EVENTS) {
        events[nb_events++] = *ev;
    }
}

static void listen_events(void)
{
    nb_events = nb_status_changes = 0;
    aiolab_job_add_event_listener(record_event, NULL);
}

static int find_event(AiolabJobEventType type)
{
    int i;

    for (i = 0; i < nb_events; i++) {
        if (events[i].type == type) {
            return i;
        }
    }
    return -1;
}

static const AiolabJobEvent *wait_event(AiolabJobEventType type)
{
    AIO_WAIT_WHILE(NULL, find_event(type) < 0);
    return &events[find_event(type)];
}

/* --- the writer: stamped random writes from an IOThread ------------------ */

typedef struct Writer {
    BlockBackend *blk;
    int64_t *gens;              /* atomic: last acknowledged gen per block */
    unsigned seed;
    int64_t delay_ns;           /* between writes */
    bool stop, done;            /* atomic */
    int64_t writes;             /* atomic */
    TestFailures fail;
} Writer;

static void coroutine_fn writer_co(void *opaque)
{
    Writer *w = opaque;
    uint8_t *buf = aligned_alloc(4096, STAMP_BLOCK);

    while (!__atomic_load_n(&w->stop, __ATOMIC_SEQ_CST)) {
        int64_t b = rand_r(&w->seed) % NBLOCKS;
        int64_t off = b * STAMP_BLOCK;
        int64_t last = __atomic_load_n(&w->gens[b], __ATOMIC_SEQ_CST);
        int ret;

        /* Reads see the last acknowledged write, whatever the job does
         * (this writer is the only one). */
        if (rand_r(&w->seed) % 4 == 0) {
            ret = blk_co_pread(w->blk, off, STAMP_BLOCK, buf, 0);
            if (ret < 0 || stamp_gen(buf, off) != last) {
                test_failures_add(&w->fail, "block %lld: read %d gen %lld, "
                                  "expected %lld", (long long)b, ret,
                                  (long long)stamp_gen(buf, off),
                                  (long long)last);
            }
        }
        stamp_fill(buf, off, last + 1);
        ret = blk_co_pwrite(w->blk, off, STAMP_BLOCK, buf, 0);
        if (ret < 0) {
            test_failures_add(&w->fail, "block %lld: write failed: %s",
                              (long long)b, strerror(-ret));
        } else {
            __atomic_store_n(&w->gens[b], last + 1, __ATOMIC_SEQ_CST);
        }
        __atomic_fetch_add(&w->writes, 1, __ATOMIC_SEQ_CST);
        aio_wait_kick();
        if (w->delay_ns) {
            qemu_co_sleep_ns(QEMU_CLOCK_REALTIME, w->delay_ns);
        }
    }
    free(buf);
    __atomic_store_n(&w->done, true, __ATOMIC_SEQ_CST);
    aio_wait_kick();
}

static void writer_start(Writer *w, BlockBackend *blk, int64_t *gens,
                         AioContext *ctx)
{
    *w = (Writer){ .blk = blk, .gens = gens, .seed = 42,
                   .delay_ns = 200000 };
    aio_co_enter(ctx, qemu_coroutine_create(writer_co, w));
}

static int64_t writer_writes(Writer *w)
{
    return __atomic_load_n(&w->writes, __ATOMIC_SEQ_CST);
}

/* Let the writer do @n more writes (the main loop runs meanwhile). */
static void writer_wait(Writer *w, int64_t n)
{
    int64_t target = writer_writes(w) + n;

    AIO_WAIT_WHILE(NULL, writer_writes(w) < target);
}

static void writer_stop(Writer *w)
{
    __atomic_store_n(&w->stop, true, __ATOMIC_SEQ_CST);
    AIO_WAIT_WHILE(NULL, !__atomic_load_n(&w->done, __ATOMIC_SEQ_CST));
    if (w->fail.count) {
        harness_fail(__FILE__, __LINE__, "writer: %lld failures, first: %s",
                     (long long)w->fail.count, w->fail.first);
    }
}

/* The generation of every block of @bs (through a BlockBackend of its
 * own, in the main loop). */
static void read_gens(BlockDriverState *bs, int64_t *out)
{
    BlockBackend *blk = blk_on(bs);
    uint8_t *buf = aligned_alloc(4096, STAMP_BLOCK);
    int64_t b;

    for (b = 0; b < NBLOCKS; b++) {
        ASSERT_EQ(blk_pread(blk, b * STAMP_BLOCK, STAMP_BLOCK, buf, 0), 0);
        out[b] = stamp_gen(buf, b * STAMP_BLOCK);
    }
    free(buf);
    blk_unref(blk);
}

/* Every block of @blk holds exactly the last acknowledged write. */
static void check_blk(BlockBackend *blk, const int64_t *gens)
{
    uint8_t *buf = aligned_alloc(4096, STAMP_BLOCK);
    int64_t b;

    for (b = 0; b < NBLOCKS; b++) {
        ASSERT_EQ(blk_pread(blk, b * STAMP_BLOCK, STAMP_BLOCK, buf, 0), 0);
        if (stamp_gen(buf, b * STAMP_BLOCK) != gens[b]) {
            harness_fail(__FILE__, __LINE__, "block %lld holds gen %lld, "
                         "the last acknowledged write was gen %lld",
                         (long long)b,
                         (long long)stamp_gen(buf, b * STAMP_BLOCK),
                         (long long)gens[b]);
        }
    }
    free(buf);
}

static void wait_ready(Job *job)
{
    AIO_WAIT_WHILE(NULL, !job_is_ready(job) && !job_is_completed(job));
    ASSERT_TRUE(job_is_ready(job));
}

static void wait_concluded(Job *job)
{
    AIO_WAIT_WHILE(NULL, aiolab_job_get_status(job) != JOB_STATUS_CONCLUDED &&
                         aiolab_job_get_status(job) != JOB_STATUS_NULL);
}

/* A mirror's world: files src and tgt, a BlockBackend "guest" on src,
 * optionally in an IOThread, and a writer in an IOThread of its own. */
typedef struct World {
    int src_fd, tgt_fd;
    BlockDriverState *src, *tgt;
    BlockBackend *blk;
    IOThread *disk_thread, *writer_thread;
    int64_t gens[NBLOCKS];
    Writer w;
} World;

static void world_init(World *wd, bool disk_in_iothread)
{
    memset(wd, 0, sizeof(*wd));
    wd->src_fd = stamp_make_file(DISK_SIZE, true);
    wd->tgt_fd = stamp_make_file(DISK_SIZE, false);
    wd->src = open_file_node("src", wd->src_fd);
    wd->tgt = open_file_node("tgt", wd->tgt_fd);
    wd->blk = blk_on(wd->src);
    if (disk_in_iothread) {
        wd->disk_thread = iothread_create("disk", &error_abort);
        ASSERT_EQ(blk_set_aio_context(wd->blk, iothread_get_aio_context(
                      wd->disk_thread), &error_abort), 0);
    }
    wd->writer_thread = iothread_create("writer", &error_abort);
    writer_start(&wd->w, wd->blk, wd->gens,
                 iothread_get_aio_context(wd->writer_thread));
    writer_wait(&wd->w, 20);
}

static void world_check_idle(World *wd)
{
    ASSERT_EQ(bdrv_get_in_flight(wd->src), 0);
    ASSERT_EQ(bdrv_get_in_flight(wd->tgt), 0);
    ASSERT_EQ(blk_get_in_flight(wd->blk), 0);
    ASSERT_EQ(bdrv_get_quiesce_counter(wd->src), 0);
    ASSERT_EQ(bdrv_get_quiesce_counter(wd->tgt), 0);
}

static void world_free(World *wd)
{
    world_check_idle(wd);
    ASSERT_EQ(blk_set_aio_context(wd->blk, qemu_get_aio_context(),
                                  &error_abort), 0);
    blk_unref(wd->blk);
    bdrv_unref(wd->src);
    bdrv_unref(wd->tgt);
    if (wd->disk_thread) {
        iothread_destroy(wd->disk_thread);
    }
    iothread_destroy(wd->writer_thread);
    close(wd->src_fd);
    close(wd->tgt_fd);
}

static Job *start_mirror(World *wd, const char *id, int64_t speed)
{
    return mirror_start(id, wd->src, wd->tgt, JOB_DEFAULT, speed, 0, 0,
                        BLOCKDEV_ON_ERROR_REPORT, BLOCKDEV_ON_ERROR_REPORT,
                        NULL, &error_abort);
}

/* --- switch-over under load ---------------------------------------------- */

static void test_switch_common(bool disk_in_iothread)
{
    World wd;
    Job *job;
    BlockJobInfo info;
    int64_t *src_gens = calloc(NBLOCKS, sizeof(int64_t));
    int64_t *tgt_gens = calloc(NBLOCKS, sizeof(int64_t));
    uint64_t cur, total;
    int64_t b, newer = 0, before = 0;

    block_test_setup();
    listen_events();
    world_init(&wd, disk_in_iothread);
    job = start_mirror(&wd, "mirror0", 0);
    ASSERT_STR_EQ(bdrv_get_format_name(blk_bs(wd.blk)), "mirror_top");
    ASSERT_PTR_EQ(aiolab_job_get_aio_context(job),
                  bdrv_get_aio_context(wd.src));
    wait_ready(job);
    writer_wait(&wd.w, 50);             /* ready: new writes copied too */

    ASSERT_EQ(aiolab_block_job_query_all(&info, 1), 1);
    ASSERT_STR_EQ(info.type, "mirror");
    ASSERT_STR_EQ(info.device, "mirror0");
    ASSERT_TRUE(info.ready);
    ASSERT_GE(info.len, DISK_SIZE);
    ASSERT_TRUE(info.status == JOB_STATUS_READY ||
                info.status == JOB_STATUS_STANDBY);
    ASSERT_EQ(info.io_status, BLOCK_DEVICE_IO_STATUS_OK);

    /* The switch, with the writer still writing. */
    ASSERT_EQ(job_complete_sync(job, &error_abort), 0);
    ASSERT_PTR_EQ(blk_bs(wd.blk), wd.tgt);
    ASSERT_EQ(aiolab_job_get_status(job), JOB_STATUS_NULL);
    ASSERT_TRUE(job_get("mirror0") == NULL);      /* auto-dismissed */
    writer_wait(&wd.w, 50);             /* these land on the target only */
    writer_stop(&wd.w);

    /* Every acknowledged write is on the target (through the guest's
     * BlockBackend, now on it)... */
    check_blk(wd.blk, wd.gens);
    /* ... and the source holds what it held at the switch: the target
     * is never older, and it is newer exactly where the writer wrote
     * after the switch. */
    read_gens(wd.src, src_gens);
    read_gens(wd.tgt, tgt_gens);
    for (b = 0; b < NBLOCKS; b++) {
        ASSERT_GE(src_gens[b], 0);
        ASSERT_GE(tgt_gens[b], src_gens[b]);
        newer += tgt_gens[b] > src_gens[b];
        before += src_gens[b] > 0;
    }
    ASSERT_GT(newer, 0);
    ASSERT_GT(before, 0);

    aiolab_job_get_progress(job, &cur, &total);
    ASSERT_EQ(cur, total);
    ASSERT_GE(cur, DISK_SIZE);
    AIO_WAIT_WHILE(NULL, find_event(AIOLAB_JOB_EVENT_COMPLETED) < 0);
    ASSERT_LT(find_event(AIOLAB_JOB_EVENT_READY),
              find_event(AIOLAB_JOB_EVENT_COMPLETED));
    ASSERT_EQ(wait_event(AIOLAB_JOB_EVENT_COMPLETED)->ret, 0);
    ASSERT_STR_EQ(wait_event(AIOLAB_JOB_EVENT_COMPLETED)->error, "");
    ASSERT_STR_EQ(wait_event(AIOLAB_JOB_EVENT_READY)->id, "mirror0");
    ASSERT_GT(nb_status_changes, 5);
    job_unref(job);
    aiolab_job_remove_event_listener(record_event, NULL);
    world_free(&wd);
    free(src_gens);
    free(tgt_gens);
}

static void test_switch_main(void)
{
    test_switch_common(false);
}

static void test_switch_iothread(void)
{
    test_switch_common(true);
}

/* --- cancel -------------------------------------------------------------- */

static void test_cancel_before_ready(void)
{
    World wd;
    Job *job;
    uint64_t cur, total;

    block_test_setup();
    listen_events();
    world_init(&wd, false);
    job = start_mirror(&wd, "slow", 512 * 1024);    /* 8 s for the disk */
    AIO_WAIT_WHILE(NULL, (aiolab_job_get_progress(job, &cur, &total),
                          cur < 128 * 1024));
    ASSERT_FALSE(job_is_ready(job));
    ASSERT_EQ(job_cancel_sync(job, false), -ECANCELED);
    ASSERT_PTR_EQ(blk_bs(wd.blk), wd.src);          /* users stay */
    aiolab_job_get_progress(job, &cur, &total);
    ASSERT_LT(cur, DISK_SIZE);                       /* a partial copy */
    ASSERT_EQ(wait_event(AIOLAB_JOB_EVENT_CANCELLED)->offset, (int64_t)cur);
    ASSERT_LT(find_event(AIOLAB_JOB_EVENT_READY), 0);
    ASSERT_LT(find_event(AIOLAB_JOB_EVENT_COMPLETED), 0);
    writer_wait(&wd.w, 20);
    writer_stop(&wd.w);
    check_blk(wd.blk, wd.gens);                      /* source intact */
    job_unref(job);
    aiolab_job_remove_event_listener(record_event, NULL);
    world_free(&wd);
}

static void test_cancel_after_ready(void)
{
    World wd;
    Job *job;

    block_test_setup();
    listen_events();
    world_init(&wd, true);
    job = start_mirror(&wd, "mirror0", 0);
    wait_ready(job);
    ASSERT_EQ(job_cancel_sync(job, true), -ECANCELED);
    ASSERT_PTR_EQ(blk_bs(wd.blk), wd.src);
    ASSERT_GE(wait_event(AIOLAB_JOB_EVENT_CANCELLED)->offset, DISK_SIZE);
    ASSERT_LT(find_event(AIOLAB_JOB_EVENT_COMPLETED), 0);
    writer_wait(&wd.w, 20);
    writer_stop(&wd.w);
    check_blk(wd.blk, wd.gens);
    job_unref(job);
    aiolab_job_remove_event_listener(record_event, NULL);
    world_free(&wd);
}

/* QEMU: block-job-cancel of a ready mirror without force completes the
 * copy (event COMPLETED) and leaves the users where they are. */
static void test_cancel_after_ready_soft(void)
{
    World wd;
    Job *job;
    int64_t *src_gens = calloc(NBLOCKS, sizeof(int64_t));
    int64_t *tgt_gens = calloc(NBLOCKS, sizeof(int64_t));

    block_test_setup();
    listen_events();
    world_init(&wd, false);
    job = start_mirror(&wd, "mirror0", 0);
    wait_ready(job);
    writer_wait(&wd.w, 20);
    writer_stop(&wd.w);
    ASSERT_EQ(job_cancel_sync(job, false), 0);
    ASSERT_PTR_EQ(blk_bs(wd.blk), wd.src);
    ASSERT_EQ(wait_event(AIOLAB_JOB_EVENT_COMPLETED)->ret, 0);
    ASSERT_LT(find_event(AIOLAB_JOB_EVENT_CANCELLED), 0);
    read_gens(wd.src, src_gens);
    read_gens(wd.tgt, tgt_gens);
    ASSERT_EQ(memcmp(src_gens, tgt_gens, NBLOCKS * sizeof(int64_t)), 0);
    check_blk(wd.blk, wd.gens);
    job_unref(job);
    aiolab_job_remove_event_listener(record_event, NULL);
    world_free(&wd);
    free(src_gens);
    free(tgt_gens);
}

/* --- drains pause the mirror (catalogue 3.3, the real job) --------------- */

/*
 * src-file <- src (blkdebug) <- [filter] <- guest BlockBackend (writer)
 * tgt-file <- tgt (blkdebug)
 * Drain src, src-file (a child of the job's node: drains go up) and tgt.
 * @copying: the job is still copying (a speed limit keeps it busy), so
 * the drain must also wait for its copy operations.
 */
static void test_mirror_drain_common(enum drain_type type, bool iothread,
                                     bool copying)
{
    int src_fd = stamp_make_file(DISK_SIZE, true);
    int tgt_fd = stamp_make_file(DISK_SIZE, false);
    BlockDriverState *src_file, *src, *tgt_file, *tgt, *drain_bs;
    IOThread *disk_thread = NULL, *writer_thread;
    int64_t *gens = calloc(NBLOCKS, sizeof(int64_t));
    BlockBackend *blk;
    Writer w;
    Job *job;
    int i;

    src_file = open_file_node("src-file", src_fd);
    tgt_file = open_file_node("tgt-file", tgt_fd);
    src = open_node("driver=blkdebug,image=src-file,node-name=src");
    tgt = open_node("driver=blkdebug,image=tgt-file,node-name=tgt");
    blk = blk_on(src);
    if (iothread) {
        disk_thread = iothread_create("disk", &error_abort);
        ASSERT_EQ(blk_set_aio_context(blk, iothread_get_aio_context(
                      disk_thread), &error_abort), 0);
    }
    writer_thread = iothread_create("writer", &error_abort);
    writer_start(&w, blk, gens, iothread_get_aio_context(writer_thread));
    job = mirror_start("mirror0", src, tgt, JOB_DEFAULT,
                       copying ? 256 * 1024 : 0, 16 * 1024, 0,
                       BLOCKDEV_ON_ERROR_REPORT, BLOCKDEV_ON_ERROR_REPORT,
                       NULL, &error_abort);
    if (copying) {
        uint64_t cur = 0;

        AIO_WAIT_WHILE(NULL, (aiolab_job_get_progress(job, &cur, NULL),
                              cur == 0));
        ASSERT_FALSE(job_is_ready(job));
    } else {
        wait_ready(job);
    }

    for (i = 0; i < 3; i++) {
        drain_bs = i == 0 ? src : i == 1 ? src_file : tgt;
        ASSERT_EQ(aiolab_job_get_pause_count(job), 0);
        AIO_WAIT_WHILE(NULL, aiolab_job_is_paused(job));

        do_drain_begin(type, drain_bs);
        /* drain_all: both of the job's edges (filter, tgt) are quiesced;
         * one drain: one edge, also from below (src-file). */
        ASSERT_EQ(aiolab_job_get_pause_count(job),
                  type == BDRV_DRAIN_ALL ? 2 : 1);
        ASSERT_TRUE(aiolab_job_is_paused(job));
        ASSERT_FALSE(aiolab_job_is_busy(job));
        ASSERT_EQ(aiolab_job_get_status(job),
                  copying ? JOB_STATUS_PAUSED : JOB_STATUS_STANDBY);
        /* The job parked only after its copies finished. */
        ASSERT_EQ(bdrv_get_in_flight(tgt), 0);
        ASSERT_EQ(bdrv_get_in_flight(tgt_file), 0);
        if (drain_bs != tgt) {
            ASSERT_EQ(bdrv_get_in_flight(src), 0);
            ASSERT_EQ(blk_get_in_flight(blk), 0);
        }

        do_drain_end(type, drain_bs);
        ASSERT_EQ(aiolab_job_get_pause_count(job), 0);
        /* drained_end never runs the job: it resumes in its own time. */
        AIO_WAIT_WHILE(NULL, aiolab_job_is_paused(job));
        ASSERT_EQ(aiolab_job_get_status(job),
                  copying ? JOB_STATUS_RUNNING : JOB_STATUS_READY);
        writer_wait(&w, 5);
    }

    ASSERT_TRUE(block_job_set_speed(job, 0, &error_abort));
    wait_ready(job);
    ASSERT_EQ(job_complete_sync(job, &error_abort), 0);
    ASSERT_PTR_EQ(blk_bs(blk), tgt);
    writer_stop(&w);
    check_blk(blk, gens);
    job_unref(job);
    ASSERT_EQ(blk_set_aio_context(blk, qemu_get_aio_context(), &error_abort),
              0);
    blk_unref(blk);
    bdrv_unref(src);
    bdrv_unref(tgt);
    bdrv_unref(src_file);
    bdrv_unref(tgt_file);
    if (disk_thread) {
        iothread_destroy(disk_thread);
    }
    iothread_destroy(writer_thread);
    close(src_fd);
    close(tgt_fd);
    free(gens);
}

static void test_mirror_drain_all(void)
{
    block_test_setup();
    test_mirror_drain_common(BDRV_DRAIN_ALL, false, false);
}

static void test_mirror_drain(void)
{
    block_test_setup();
    test_mirror_drain_common(BDRV_DRAIN, false, false);
}

static void test_mirror_drain_iothread(void)
{
    block_test_setup();
    test_mirror_drain_common(BDRV_DRAIN, true, false);
}

static void test_mirror_drain_all_iothread(void)
{
    block_test_setup();
    test_mirror_drain_common(BDRV_DRAIN_ALL, true, false);
}

static void test_mirror_drain_copying(void)
{
    block_test_setup();
    test_mirror_drain_common(BDRV_DRAIN, true, true);
}

static void test_mirror_drain_all_copying(void)
{
    block_test_setup();
    test_mirror_drain_common(BDRV_DRAIN_ALL, false, true);
}

/* --- QEMU's test job (catalogue 3.3 and 4.2 /attach/blockjob) ------------ */

enum test_result { TEST_JOB_SUCCESS, TEST_JOB_FAIL_RUN, TEST_JOB_FAIL_PREPARE };

typedef struct TestJob {
    BlockDriverState *flush_bs;     /* prepare/commit/abort flush it */
    int result;
    bool should_complete;           /* atomic */
    bool running;                   /* atomic */
    int64_t n;                      /* atomic: iterations */
    bool wrong_ctx;                 /* atomic: an iteration ran elsewhere */
    bool end_outside_main;          /* main loop only */
    int prepared, committed, aborted, cleaned;
} TestJob;

static int coroutine_fn test_job_run(Job *job, Error **errp)
{
    TestJob *s = aiolab_job_get_opaque(job);

    __atomic_store_n(&s->running, true, __ATOMIC_SEQ_CST);
    job_transition_to_ready(job);
    while (!__atomic_load_n(&s->should_complete, __ATOMIC_SEQ_CST)) {
        if (qemu_get_current_aio_context() !=
            aiolab_job_get_aio_context(job)) {
            __atomic_store_n(&s->wrong_ctx, true, __ATOMIC_SEQ_CST);
        }
        __atomic_fetch_add(&s->n, 1, __ATOMIC_SEQ_CST);
        aio_wait_kick();
        /* Not job_sleep_ns(): the job stays busy, so a drain really has
         * to wait for the pause point. */
        qemu_co_sleep_ns(QEMU_CLOCK_REALTIME, 1000000);
        job_pause_point(job);
    }
    return s->result == TEST_JOB_FAIL_RUN ? -EIO : 0;
}

static void test_job_complete(Job *job, Error **errp)
{
    TestJob *s = aiolab_job_get_opaque(job);

    __atomic_store_n(&s->should_complete, true, __ATOMIC_SEQ_CST);
}

static void test_job_end_check(TestJob *s)
{
    if (qemu_get_current_aio_context() != qemu_get_aio_context()) {
        s->end_outside_main = true;
    }
    /* A nested AIO_WAIT_WHILE inside the job's completion. */
    ASSERT_EQ(bdrv_flush(s->flush_bs), 0);
}

static int test_job_prepare(Job *job)
{
    TestJob *s = aiolab_job_get_opaque(job);

    test_job_end_check(s);
    s->prepared++;
    return s->result == TEST_JOB_FAIL_PREPARE ? -EIO : 0;
}

static void test_job_commit(Job *job)
{
    TestJob *s = aiolab_job_get_opaque(job);

    test_job_end_check(s);
    s->committed++;
}

static void test_job_abort(Job *job)
{
    TestJob *s = aiolab_job_get_opaque(job);

    test_job_end_check(s);
    s->aborted++;
}

static void test_job_clean(Job *job)
{
    TestJob *s = aiolab_job_get_opaque(job);

    s->cleaned++;
}

static const JobDriver test_job_driver = {
    .job_type = "test",
    .run = test_job_run,
    .complete = test_job_complete,
    .prepare = test_job_prepare,
    .commit = test_job_commit,
    .abort = test_job_abort,
    .clean = test_job_clean,
};

static int64_t test_job_n(TestJob *s)
{
    return __atomic_load_n(&s->n, __ATOMIC_SEQ_CST);
}

static void test_job_wait_iterations(TestJob *s, int64_t k)
{
    int64_t n = test_job_n(s);

    AIO_WAIT_WHILE(NULL, test_job_n(s) < n + k);
}

/*
 * blk_src -> src-overlay -> (backing) source -> (backing) src-backing;
 * a test job on source, with target as its second node.  Drain source,
 * src-backing (below the job's node) and target.
 */
static void test_blockjob_common(enum drain_type type, bool use_iothread,
                                 int result)
{
    BlockDriverState *src_backing, *src, *src_overlay, *target, *drain_bs;
    BlockBackend *blk_src;
    IOThread *iothread = NULL;
    TestJob s = { .result = result };
    Job *job;
    int i, ret;

    src_backing = open_node("driver=aiolab-test,node-name=src-backing");
    src = open_node("driver=aiolab-test,node-name=source,"
                    "backing=src-backing");
    src_overlay = open_node("driver=aiolab-test,node-name=src-overlay,"
                            "backing=source");
    target = open_node("driver=aiolab-test,node-name=target");
    blk_src = blk_on(src_overlay);
    s.flush_bs = src;
    job = block_job_create("job0", &test_job_driver, src, 0, JOB_DEFAULT,
                           &s, &error_abort);
    ASSERT_EQ(block_job_add_bdrv(job, "target", target, &error_abort), 0);
    if (use_iothread) {
        iothread = iothread_create("job", &error_abort);
        /* The whole graph moves, the job and its target with it. */
        ASSERT_EQ(blk_set_aio_context(blk_src, iothread_get_aio_context(
                      iothread), &error_abort), 0);
        ASSERT_PTR_EQ(bdrv_get_aio_context(target),
                      iothread_get_aio_context(iothread));
        ASSERT_PTR_EQ(aiolab_job_get_aio_context(job),
                      iothread_get_aio_context(iothread));
    }
    ASSERT_EQ(aiolab_job_get_pause_count(job), 1);     /* not started */
    job_start(job);
    AIO_WAIT_WHILE(NULL, !__atomic_load_n(&s.running, __ATOMIC_SEQ_CST));
    test_job_wait_iterations(&s, 2);

    for (i = 0; i < 3; i++) {
        drain_bs = i == 0 ? src : i == 1 ? src_backing : target;
        ASSERT_EQ(aiolab_job_get_pause_count(job), 0);
        ASSERT_FALSE(aiolab_job_is_paused(job));
        ASSERT_TRUE(__atomic_load_n(&s.running, __ATOMIC_SEQ_CST));
        ASSERT_TRUE(aiolab_job_is_busy(job));

        do_drain_begin(type, drain_bs);
        ASSERT_EQ(aiolab_job_get_pause_count(job),
                  type == BDRV_DRAIN_ALL ? 2 : 1);
        ASSERT_TRUE(aiolab_job_is_paused(job));
        ASSERT_FALSE(aiolab_job_is_busy(job));

        do_drain_end(type, drain_bs);
        ASSERT_EQ(aiolab_job_get_pause_count(job), 0);
        AIO_WAIT_WHILE(NULL, aiolab_job_is_paused(job));
        ASSERT_FALSE(aiolab_job_is_paused(job));
        ASSERT_TRUE(aiolab_job_is_busy(job));
        test_job_wait_iterations(&s, 2);
    }

    ret = job_complete_sync(job, &error_abort);
    ASSERT_EQ(ret, result == TEST_JOB_SUCCESS ? 0 : -EIO);
    ASSERT_FALSE(__atomic_load_n(&s.wrong_ctx, __ATOMIC_SEQ_CST));
    ASSERT_FALSE(s.end_outside_main);
    ASSERT_EQ(s.prepared, result == TEST_JOB_FAIL_RUN ? 0 : 1);
    ASSERT_EQ(s.committed, result == TEST_JOB_SUCCESS ? 1 : 0);
    ASSERT_EQ(s.aborted, result == TEST_JOB_SUCCESS ? 0 : 1);
    ASSERT_EQ(s.cleaned, 1);
    ASSERT_EQ(aiolab_job_get_ret(job), ret);
    job_unref(job);
    if (use_iothread) {
        ASSERT_EQ(blk_set_aio_context(blk_src, qemu_get_aio_context(),
                                      &error_abort), 0);
        iothread_destroy(iothread);
    }
    blk_unref(blk_src);
    bdrv_unref(src_overlay);
    bdrv_unref(src);
    bdrv_unref(src_backing);
    bdrv_unref(target);
}

static void test_blockjob_drain_all(void)
{
    block_test_setup();
    test_blockjob_common(BDRV_DRAIN_ALL, false, TEST_JOB_SUCCESS);
}

static void test_blockjob_drain(void)
{
    block_test_setup();
    test_blockjob_common(BDRV_DRAIN, false, TEST_JOB_SUCCESS);
}

static void test_blockjob_error_drain_all(void)
{
    block_test_setup();
    test_blockjob_common(BDRV_DRAIN_ALL, false, TEST_JOB_FAIL_RUN);
    test_blockjob_common(BDRV_DRAIN_ALL, false, TEST_JOB_FAIL_PREPARE);
}

static void test_blockjob_error_drain(void)
{
    block_test_setup();
    test_blockjob_common(BDRV_DRAIN, false, TEST_JOB_FAIL_RUN);
    test_blockjob_common(BDRV_DRAIN, false, TEST_JOB_FAIL_PREPARE);
}

static void test_blockjob_iothread_drain_all(void)
{
    block_test_setup();
    test_blockjob_common(BDRV_DRAIN_ALL, true, TEST_JOB_SUCCESS);
}

static void test_blockjob_iothread_drain(void)
{
    block_test_setup();
    test_blockjob_common(BDRV_DRAIN, true, TEST_JOB_SUCCESS);
}

static void test_blockjob_iothread_error_drain_all(void)
{
    block_test_setup();
    test_blockjob_common(BDRV_DRAIN_ALL, true, TEST_JOB_FAIL_RUN);
    test_blockjob_common(BDRV_DRAIN_ALL, true, TEST_JOB_FAIL_PREPARE);
}

static void test_blockjob_iothread_error_drain(void)
{
    block_test_setup();
    test_blockjob_common(BDRV_DRAIN, true, TEST_JOB_FAIL_RUN);
    test_blockjob_common(BDRV_DRAIN, true, TEST_JOB_FAIL_PREPARE);
}

/*
 * Catalogue 3.5 commit_by_drained_end, in spirit: a job told to finish
 * while drained does not run inside bdrv_drained_end() - it resumes
 * from the event loop afterwards.
 */
static void test_blockjob_drained_end_runs_nothing(void)
{
    BlockDriverState *bs;
    TestJob s = { 0 };
    Job *job;
    int64_t n;

    block_test_setup();
    bs = open_node("driver=aiolab-test,node-name=base");
    s.flush_bs = bs;
    job = block_job_create(NULL, &test_job_driver, bs, 0, JOB_DEFAULT, &s,
                           &error_abort);
    ASSERT_STR_EQ(aiolab_job_get_id(job), "base");
    job_start(job);
    test_job_wait_iterations(&s, 2);
    bdrv_drained_begin(bs);
    ASSERT_TRUE(aiolab_job_is_paused(job));
    __atomic_store_n(&s.should_complete, true, __ATOMIC_SEQ_CST);
    n = test_job_n(&s);
    bdrv_drained_end(bs);
    ASSERT_EQ(test_job_n(&s), n);
    ASSERT_TRUE(aiolab_job_is_paused(job));     /* not yet run */
    ASSERT_FALSE(job_is_completed(job));
    wait_concluded(job);
    ASSERT_EQ(aiolab_job_get_ret(job), 0);
    ASSERT_EQ(s.committed, 1);
    job_unref(job);
    bdrv_unref(bs);
}

/* Catalogue 4.2 /attach/blockjob: the job follows its node. */
static void test_attach_blockjob(void)
{
    BlockDriverState *bs;
    BlockBackend *blk;
    IOThread *iothread;
    AioContext *ctx;
    TestJob s = { 0 };
    Job *job;
    int i;

    block_test_setup();
    iothread = iothread_create("job", &error_abort);
    bs = open_node("driver=aiolab-test,node-name=base");
    blk = blk_on(bs);
    s.flush_bs = bs;
    job = block_job_create("job0", &test_job_driver, bs, 0, JOB_DEFAULT, &s,
                           &error_abort);
    job_start(job);
    test_job_wait_iterations(&s, 2);
    for (i = 0; i < 4; i++) {
        ctx = i % 2 ? qemu_get_aio_context()
                    : iothread_get_aio_context(iothread);
        ASSERT_EQ(blk_set_aio_context(blk, ctx, &error_abort), 0);
        ASSERT_PTR_EQ(aiolab_job_get_aio_context(job), ctx);
        test_job_wait_iterations(&s, 2);
        ASSERT_FALSE(__atomic_load_n(&s.wrong_ctx, __ATOMIC_SEQ_CST));
    }
    ASSERT_EQ(job_complete_sync(job, &error_abort), 0);
    ASSERT_FALSE(s.end_outside_main);
    job_unref(job);
    ASSERT_EQ(blk_set_aio_context(blk, qemu_get_aio_context(), &error_abort),
              0);
    blk_unref(blk);
    bdrv_unref(bs);
    iothread_destroy(iothread);
}

/* The same with the mirror, under load: it keeps copying in each new
 * context (mirror.c asserts every iteration runs in the job's). */
static void test_mirror_follows_node(void)
{
    World wd;
    Job *job;
    IOThread *t;
    AioContext *ctx;
    int i;

    block_test_setup();
    world_init(&wd, false);
    t = iothread_create("disk2", &error_abort);
    job = start_mirror(&wd, "mirror0", 0);
    wait_ready(job);
    for (i = 0; i < 6; i++) {
        ctx = i % 2 ? qemu_get_aio_context() : iothread_get_aio_context(t);
        ASSERT_EQ(blk_set_aio_context(wd.blk, ctx, &error_abort), 0);
        ASSERT_PTR_EQ(aiolab_job_get_aio_context(job), ctx);
        ASSERT_PTR_EQ(bdrv_get_aio_context(wd.src), ctx);
        ASSERT_PTR_EQ(bdrv_get_aio_context(wd.tgt), ctx);
        ASSERT_PTR_EQ(bdrv_get_aio_context(blk_bs(wd.blk)), ctx);
        writer_wait(&wd.w, 30);
    }
    ASSERT_EQ(job_complete_sync(job, &error_abort), 0);
    writer_stop(&wd.w);
    check_blk(wd.blk, wd.gens);
    job_unref(job);
    world_free(&wd);
    iothread_destroy(t);
}

/* --- catalogue 4.2 /propagate/mirror ------------------------------------- */

static const BlockDevOps device_ops;     /* a device: no callbacks needed */

static void assert_all_in(AioContext *ctx, BlockDriverState *src,
                          BlockDriverState *target, BlockDriverState *filter,
                          Job *job)
{
    ASSERT_PTR_EQ(bdrv_get_aio_context(src), ctx);
    ASSERT_PTR_EQ(bdrv_get_aio_context(target), ctx);
    ASSERT_PTR_EQ(bdrv_get_aio_context(filter), ctx);
    ASSERT_PTR_EQ(aiolab_job_get_aio_context(job), ctx);
}

static void test_propagate_mirror(void)
{
    AioContext *main_ctx, *ctx;
    BlockDriverState *src, *target, *filter;
    BlockBackend *blk;
    IOThread *iothread;
    Error *err = NULL;
    Job *job;

    block_test_setup();
    main_ctx = qemu_get_aio_context();
    iothread = iothread_create("iot", &error_abort);
    ctx = iothread_get_aio_context(iothread);
    src = open_node("driver=null-co,size=1M,node-name=src");
    target = open_node("driver=null-co,size=1M,node-name=target");
    job = mirror_start("job0", src, target, JOB_DEFAULT, 0, 0, 0,
                       BLOCKDEV_ON_ERROR_REPORT, BLOCKDEV_ON_ERROR_REPORT,
                       "filter0", &error_abort);
    filter = bdrv_find_node("filter0");
    ASSERT_TRUE(filter != NULL);
    ASSERT_STR_EQ(bdrv_get_format_name(filter), "mirror_top");

    /* The source moves: filter, job and target follow. */
    ASSERT_EQ(bdrv_try_change_aio_context(src, ctx, NULL, &error_abort), 0);
    assert_all_in(ctx, src, target, filter, job);
    /* And back, from the target's side. */
    ASSERT_EQ(bdrv_try_change_aio_context(target, main_ctx, NULL,
                                          &error_abort), 0);
    assert_all_in(main_ctx, src, target, filter, job);

    /* A device on the source refuses: nothing moves. */
    blk = blk_new(main_ctx);
    ASSERT_EQ(blk_insert_bs(blk, src, &error_abort), 0);
    blk_set_dev_ops(blk, &device_ops, NULL);
    ASSERT_EQ(bdrv_try_change_aio_context(target, ctx, NULL, &err), -EPERM);
    ASSERT_STR_CONTAINS(error_get_pretty(err),
                        "Cannot change iothread of active block backend");
    error_free(err);
    assert_all_in(main_ctx, src, target, filter, job);
    ASSERT_PTR_EQ(blk_get_aio_context(blk), main_ctx);
    /* Moving the device's own BlockBackend is allowed (QEMU: allow
     * change): everything follows. */
    ASSERT_EQ(blk_set_aio_context(blk, ctx, &error_abort), 0);
    assert_all_in(ctx, src, target, filter, job);
    ASSERT_PTR_EQ(blk_get_aio_context(blk), ctx);

    job_cancel_sync_all();
    ASSERT_EQ(aiolab_job_get_status(job), JOB_STATUS_NULL);
    ASSERT_TRUE(bdrv_find_node("filter0") == NULL);
    ASSERT_EQ(blk_set_aio_context(blk, main_ctx, &error_abort), 0);
    ASSERT_PTR_EQ(bdrv_get_aio_context(src), main_ctx);
    job_unref(job);
    blk_set_dev_ops(blk, NULL, NULL);
    blk_unref(blk);
    bdrv_unref(src);
    bdrv_unref(target);
    iothread_destroy(iothread);
}

/* --- errors -------------------------------------------------------------- */

/*
 * src-file <- src (blkdebug) <- guest BlockBackend; tgt-file <- tgt
 * (blkdebug).  @iotype/@error injected on @inject (src or tgt), always
 * (@once false) or once.
 */
typedef struct ErrWorld {
    int src_fd, tgt_fd;
    BlockDriverState *src_file, *src, *tgt_file, *tgt;
    BlockBackend *blk;
} ErrWorld;

static void err_world_init(ErrWorld *e)
{
    e->src_fd = stamp_make_file(DISK_SIZE, true);
    e->tgt_fd = stamp_make_file(DISK_SIZE, false);
    e->src_file = open_file_node("src-file", e->src_fd);
    e->tgt_file = open_file_node("tgt-file", e->tgt_fd);
    e->src = open_node("driver=blkdebug,image=src-file,node-name=src");
    e->tgt = open_node("driver=blkdebug,image=tgt-file,node-name=tgt");
    e->blk = blk_on(e->src);
}

static void err_world_free(ErrWorld *e)
{
    uint8_t buf[STAMP_BLOCK];

    /* Nothing hangs, nothing is left in flight, the guest still works. */
    ASSERT_EQ(bdrv_get_in_flight(e->src), 0);
    ASSERT_EQ(bdrv_get_in_flight(e->src_file), 0);
    ASSERT_EQ(bdrv_get_in_flight(e->tgt), 0);
    ASSERT_EQ(bdrv_get_in_flight(e->tgt_file), 0);
    ASSERT_EQ(blk_get_in_flight(e->blk), 0);
    ASSERT_EQ(aiolab_blkdebug_clear_errors(e->src), 0);
    stamp_fill(buf, 0, 99);
    ASSERT_EQ(blk_pwrite(e->blk, 0, STAMP_BLOCK, buf, 0), 0);
    ASSERT_EQ(blk_pread(e->blk, 0, STAMP_BLOCK, buf, 0), 0);
    ASSERT_EQ(stamp_gen(buf, 0), 99);
    blk_unref(e->blk);
    bdrv_unref(e->src);
    bdrv_unref(e->tgt);
    bdrv_unref(e->src_file);
    bdrv_unref(e->tgt_file);
    close(e->src_fd);
    close(e->tgt_fd);
}

static void test_error_report_common(bool on_source, int error)
{
    ErrWorld e;
    const AiolabJobEvent *ev;
    Job *job;

    block_test_setup();
    listen_events();
    err_world_init(&e);
    ASSERT_EQ(aiolab_blkdebug_inject_error(on_source ? e.src : e.tgt,
                                           on_source ? "read" : "write",
                                           error, 1 << 20, STAMP_BLOCK,
                                           false), 0);
    job = mirror_start("mirror0", e.src, e.tgt, JOB_DEFAULT, 0, 0, 0,
                       BLOCKDEV_ON_ERROR_REPORT, BLOCKDEV_ON_ERROR_REPORT,
                       NULL, &error_abort);
    wait_concluded(job);
    ASSERT_EQ(aiolab_job_get_ret(job), -error);
    ASSERT_PTR_EQ(blk_bs(e.blk), e.src);            /* users stay */
    ASSERT_TRUE(bdrv_find_node("src") == e.src);
    ev = wait_event(AIOLAB_JOB_EVENT_COMPLETED);
    ASSERT_EQ(ev->ret, -error);
    ASSERT_STR_EQ(ev->error, strerror(error));
    ev = &events[find_event(AIOLAB_JOB_EVENT_ERROR)];
    ASSERT_EQ(ev->is_read, on_source);
    ASSERT_EQ(ev->action, BLOCK_ERROR_ACTION_REPORT);
    ASSERT_LT(find_event(AIOLAB_JOB_EVENT_ERROR),
              find_event(AIOLAB_JOB_EVENT_COMPLETED));
    ASSERT_LT(find_event(AIOLAB_JOB_EVENT_READY), 0);
    job_unref(job);
    aiolab_job_remove_event_listener(record_event, NULL);
    err_world_free(&e);
}

static void test_error_target_eio(void)
{
    test_error_report_common(false, EIO);
}

static void test_error_target_enospc(void)
{
    test_error_report_common(false, ENOSPC);
}

static void test_error_source_eio(void)
{
    test_error_report_common(true, EIO);
}

/* on-target-error=enospc: the job stops (a user pause), and resumes. */
static void test_error_enospc_stop(void)
{
    ErrWorld e;
    BlockJobInfo info;
    const AiolabJobEvent *ev;
    int64_t *src_gens = calloc(NBLOCKS, sizeof(int64_t));
    int64_t *tgt_gens = calloc(NBLOCKS, sizeof(int64_t));
    Job *job;

    block_test_setup();
    listen_events();
    err_world_init(&e);
    ASSERT_EQ(aiolab_blkdebug_inject_error(e.tgt, "write", ENOSPC, 1 << 20,
                                           STAMP_BLOCK, false), 0);
    job = mirror_start("mirror0", e.src, e.tgt, JOB_DEFAULT, 0, 0, 0,
                       BLOCKDEV_ON_ERROR_REPORT, BLOCKDEV_ON_ERROR_ENOSPC,
                       NULL, &error_abort);
    AIO_WAIT_WHILE(NULL, !aiolab_job_is_paused(job));
    ASSERT_TRUE(job_user_paused(job));
    ASSERT_EQ(aiolab_job_get_status(job), JOB_STATUS_PAUSED);
    block_job_query(job, &info);
    ASSERT_EQ(info.io_status, BLOCK_DEVICE_IO_STATUS_NOSPACE);
    ASSERT_TRUE(info.paused);
    ev = wait_event(AIOLAB_JOB_EVENT_ERROR);
    ASSERT_EQ(ev->action, BLOCK_ERROR_ACTION_STOP);
    ASSERT_FALSE(ev->is_read);

    /* The operator makes room, then resumes the job. */
    ASSERT_EQ(aiolab_blkdebug_clear_errors(e.tgt), 0);
    job_user_resume(job, &error_abort);
    block_job_query(job, &info);
    ASSERT_EQ(info.io_status, BLOCK_DEVICE_IO_STATUS_OK);
    wait_ready(job);
    ASSERT_EQ(job_complete_sync(job, &error_abort), 0);
    ASSERT_PTR_EQ(blk_bs(e.blk), e.tgt);
    read_gens(e.src, src_gens);
    read_gens(e.tgt, tgt_gens);
    ASSERT_EQ(memcmp(src_gens, tgt_gens, NBLOCKS * sizeof(int64_t)), 0);
    job_unref(job);
    aiolab_job_remove_event_listener(record_event, NULL);
    err_world_free(&e);
    free(src_gens);
    free(tgt_gens);
}

/* on-target-error=ignore: the chunk is copied again later. */
static void test_error_ignore(void)
{
    ErrWorld e;
    Job *job;

    block_test_setup();
    listen_events();
    err_world_init(&e);
    ASSERT_EQ(aiolab_blkdebug_inject_error(e.tgt, "write", EIO, 0, 0, true),
              0);
    job = mirror_start("mirror0", e.src, e.tgt, JOB_DEFAULT, 0, 0, 0,
                       BLOCKDEV_ON_ERROR_REPORT, BLOCKDEV_ON_ERROR_IGNORE,
                       NULL, &error_abort);
    wait_ready(job);
    ASSERT_EQ(wait_event(AIOLAB_JOB_EVENT_ERROR)->action,
              BLOCK_ERROR_ACTION_IGNORE);
    ASSERT_EQ(job_complete_sync(job, &error_abort), 0);
    job_unref(job);
    aiolab_job_remove_event_listener(record_event, NULL);
    err_world_free(&e);
}

/* --- the API's refusals -------------------------------------------------- */

static void expect_start_error(BlockDriverState *bs, BlockDriverState *t,
                               const char *id, uint32_t granularity,
                               const char *msg)
{
    Error *err = NULL;

    ASSERT_TRUE(mirror_start(id, bs, t, JOB_DEFAULT, 0, granularity, 0,
                             BLOCKDEV_ON_ERROR_REPORT,
                             BLOCKDEV_ON_ERROR_REPORT, NULL, &err) == NULL);
    ASSERT_TRUE(err != NULL);
    ASSERT_STR_CONTAINS(error_get_pretty(err), msg);
    error_free(err);
}

static void test_api_errors(void)
{
    BlockDriverState *a, *b, *small, *filter, *ro;
    Error *err = NULL;
    Job *job;

    block_test_setup();
    a = open_node("driver=null-co,size=1M,node-name=a");
    b = open_node("driver=null-co,size=1M,node-name=b");
    small = open_node("driver=null-co,size=512K,node-name=small");
    filter = open_node("driver=blkdebug,image=b,node-name=filter");
    ro = bdrv_open(NULL, NULL, "driver=null-co,size=1M,node-name=ro", 0,
                   &error_abort);
    expect_start_error(a, small, NULL, 0, "different sizes");
    expect_start_error(a, a, NULL, 0, "one is part of the other");
    expect_start_error(filter, b, NULL, 0, "one is part of the other");
    expect_start_error(a, ro, NULL, 0, "read-only");
    expect_start_error(a, b, NULL, 1000, "granularity");
    expect_start_error(a, b, "#bad", 0, "Invalid job ID '#bad'");
    ASSERT_EQ(aiolab_bdrv_parent_count(a), 0);      /* nothing changed */

    /* A slow job: not ready yet. */
    job = mirror_start(NULL, a, b, JOB_DEFAULT, 1024, 0, 0,
                       BLOCKDEV_ON_ERROR_REPORT, BLOCKDEV_ON_ERROR_REPORT,
                       NULL, &error_abort);
    ASSERT_STR_EQ(aiolab_job_get_id(job), "a");
    ASSERT_PTR_EQ(job_get("a"), job);
    expect_start_error(a, small, "a", 0, "different sizes");
    expect_start_error(small, small, "a", 0, "one is part of the other");

    job_complete(job, &err);
    ASSERT_STR_CONTAINS(error_get_pretty(err), "Job 'a' in state 'running' "
                        "cannot accept command verb 'complete'");
    error_free(err);
    err = NULL;
    ASSERT_EQ(job_complete_sync(job, &err), -EBUSY);
    error_free(err);
    err = NULL;
    job_user_resume(job, &err);
    ASSERT_STR_CONTAINS(error_get_pretty(err), "not paused");
    error_free(err);
    err = NULL;
    ASSERT_FALSE(block_job_set_speed(job, -1, &err));
    ASSERT_STR_CONTAINS(error_get_pretty(err), "speed");
    error_free(err);
    err = NULL;
    job_user_pause(job, &error_abort);
    job_user_pause(job, &err);
    ASSERT_STR_CONTAINS(error_get_pretty(err), "already paused");
    error_free(err);
    err = NULL;
    AIO_WAIT_WHILE(NULL, !aiolab_job_is_paused(job));
    ASSERT_EQ(aiolab_job_get_status(job), JOB_STATUS_PAUSED);
    /* A cancel undoes the user pause. */
    ASSERT_EQ(job_cancel_sync(job, false), -ECANCELED);
    job_dismiss(job, &err);
    ASSERT_STR_CONTAINS(error_get_pretty(err), "in state 'null'");
    error_free(err);
    job_unref(job);
    ASSERT_TRUE(job_next(NULL) == NULL);

    bdrv_unref(filter);
    bdrv_unref(a);
    bdrv_unref(b);
    bdrv_unref(small);
    bdrv_unref(ro);
}

static void test_api_manual_dismiss(void)
{
    BlockDriverState *a, *b, *c, *d;
    BlockJobInfo info[4];
    Job *j1, *j2;

    block_test_setup();
    a = open_node("driver=null-co,size=1M,node-name=a");
    b = open_node("driver=null-co,size=1M,node-name=b");
    c = open_node("driver=null-co,size=1M,node-name=c");
    d = open_node("driver=null-co,size=1M,node-name=d");
    j1 = mirror_start("first", a, b, JOB_MANUAL_DISMISS, 0, 0, 0,
                      BLOCKDEV_ON_ERROR_REPORT, BLOCKDEV_ON_ERROR_REPORT,
                      NULL, &error_abort);
    j2 = mirror_start("second", c, d, JOB_DEFAULT, 0, 0, 0,
                      BLOCKDEV_ON_ERROR_REPORT, BLOCKDEV_ON_ERROR_REPORT,
                      NULL, &error_abort);
    ASSERT_EQ(aiolab_block_job_query_all(info, 4), 2);
    ASSERT_STR_EQ(info[0].device, "first");
    ASSERT_STR_EQ(info[1].device, "second");
    ASSERT_FALSE(info[0].auto_dismiss);
    ASSERT_TRUE(info[1].auto_dismiss);
    ASSERT_TRUE(info[0].auto_finalize);
    wait_ready(j1);
    ASSERT_EQ(job_complete_sync(j1, &error_abort), 0);
    ASSERT_EQ(aiolab_job_get_status(j1), JOB_STATUS_CONCLUDED);
    ASSERT_PTR_EQ(job_get("first"), j1);
    ASSERT_EQ(aiolab_block_job_query_all(info, 4), 2);
    ASSERT_EQ(info[0].status, JOB_STATUS_CONCLUDED);
    ASSERT_STR_EQ(JobStatus_str(info[0].status), "concluded");
    job_dismiss(j1, &error_abort);
    ASSERT_TRUE(job_get("first") == NULL);
    ASSERT_EQ(aiolab_job_get_status(j1), JOB_STATUS_NULL);
    ASSERT_EQ(aiolab_block_job_query_all(info, 4), 1);
    ASSERT_EQ(job_cancel_sync(j2, true), -ECANCELED);
    ASSERT_EQ(aiolab_block_job_query_all(info, 4), 0);
    job_unref(j1);
    job_unref(j2);
    bdrv_unref(a);
    bdrv_unref(b);
    bdrv_unref(c);
    bdrv_unref(d);
}

/* --- death tests --------------------------------------------------------- */

static void death_unbalanced_resume(void)
{
    BlockDriverState *bs;
    TestJob s = { 0 };
    Job *job;

    block_test_setup();
    bs = open_node("driver=aiolab-test,node-name=base");
    job = block_job_create("job0", &test_job_driver, bs, 0, JOB_DEFAULT, &s,
                           &error_abort);
    job_resume(job);            /* takes the "not started" pause away */
    job_resume(job);            /* one too many */
}

static void death_no_bql(void)
{
    BlockDriverState *a, *b;

    block_test_setup();
    a = open_node("driver=null-co,size=1M,node-name=a");
    b = open_node("driver=null-co,size=1M,node-name=b");
    bql_unlock();
    mirror_start(NULL, a, b, JOB_DEFAULT, 0, 0, 0, BLOCKDEV_ON_ERROR_REPORT,
                 BLOCKDEV_ON_ERROR_REPORT, NULL, NULL);
}

static void death_remove_unknown_listener(void)
{
    block_test_setup();
    aiolab_job_remove_event_listener(record_event, NULL);
}

static const TestCase tests[] = {
    { "/mirror/switch/main", test_switch_main, .timeout = 60 },
    { "/mirror/switch/iothread", test_switch_iothread, .timeout = 60 },
    { "/mirror/cancel/before-ready", test_cancel_before_ready,
      .timeout = 60 },
    { "/mirror/cancel/after-ready", test_cancel_after_ready, .timeout = 60 },
    { "/mirror/cancel/after-ready-soft", test_cancel_after_ready_soft,
      .timeout = 60 },
    { "/mirror/drain/drain_all", test_mirror_drain_all, .timeout = 60 },
    { "/mirror/drain/drain", test_mirror_drain, .timeout = 60 },
    { "/mirror/drain/iothread/drain_all", test_mirror_drain_all_iothread,
      .timeout = 60 },
    { "/mirror/drain/iothread/drain", test_mirror_drain_iothread,
      .timeout = 60 },
    { "/mirror/drain/copying/drain_all", test_mirror_drain_all_copying,
      .timeout = 60 },
    { "/mirror/drain/copying/iothread/drain", test_mirror_drain_copying,
      .timeout = 60 },
    { "/mirror/follows-node", test_mirror_follows_node, .timeout = 60 },
    { "/mirror/error/target-eio", test_error_target_eio },
    { "/mirror/error/target-enospc", test_error_target_enospc },
    { "/mirror/error/source-eio", test_error_source_eio },
    { "/mirror/error/enospc-stop", test_error_enospc_stop },
    { "/mirror/error/ignore", test_error_ignore },
    { "/mirror/api/errors", test_api_errors },
    { "/mirror/api/manual-dismiss", test_api_manual_dismiss },
    { "/propagate/mirror", test_propagate_mirror },
    { "/blockjob/drain_all", test_blockjob_drain_all },
    { "/blockjob/drain", test_blockjob_drain },
    { "/blockjob/error/drain_all", test_blockjob_error_drain_all },
    { "/blockjob/error/drain", test_blockjob_error_drain },
    { "/blockjob/iothread/drain_all", test_blockjob_iothread_drain_all },
    { "/blockjob/iothread/drain", test_blockjob_iothread_drain },
    { "/blockjob/iothread/error/drain_all",
      test_blockjob_iothread_error_drain_all },
    { "/blockjob/iothread/error/drain", test_blockjob_iothread_error_drain },
    { "/blockjob/drained-end-runs-nothing",
      test_blockjob_drained_end_runs_nothing },
    { "/attach/blockjob", test_attach_blockjob },
    { "/blockjob/death/unbalanced-resume", death_unbalanced_resume,
      .death = "job 'job0' is not paused" },
    { "/blockjob/death/no-bql", death_no_bql,
      .death = "mirror_start() requires the BQL" },
    { "/blockjob/death/remove-unknown-listener",
      death_remove_unknown_listener, .death = "no job event listener" },
    { NULL }
};

int main(int argc, char **argv)
{
    return harness_main(argc, argv, tests);
}
