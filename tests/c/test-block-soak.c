/* SPDX-License-Identifier: MIT */
/*
 * tests/c/test-block-soak.c - everything at once, for a while.
 *
 * Four IOThreads issue verified random I/O through one BlockBackend (no
 * device attached, so its node may move); each IOThread runs two writer
 * coroutines, and each coroutine owns a disjoint set of 4 KiB blocks
 * (block b belongs to coroutine b % 8), so it alone knows what each of
 * its blocks must hold: every block encodes its offset and a generation
 * (tests/c/stamp.h), bumped by each write.  A coroutine reads its blocks
 * back now and then and checks the generation it last had acknowledged.
 *
 * Meanwhile the main loop, at random:
 *   - drains the disk (and checks nothing is in flight while drained),
 *   - drains everything (drain_all),
 *   - moves the disk's graph to another AioContext (main loop or one of
 *     the IOThreads),
 *   - mirrors the disk to the other file and switches over (or, now and
 *     then, cancels), doing drains and moves while the job runs.
 * At the end every block must read back exactly as last acknowledged.
 *
 * Short in `make test`: 2 s (AIOLAB_TEST_SCALE multiplies it: `make
 * stress` runs 20 times longer).  The alarm is re-armed to match.
 */
#include <errno.h>
#include <string.h>
#include <time.h>
#include <aiolab/aiolab.h>
#include "block-harness.h"
#include "stamp.h"

#define DISK_SIZE (8 << 20)
#define NBLOCKS (DISK_SIZE / STAMP_BLOCK)
#define NTHREADS 4
#define CO_PER_THREAD 2
#define NWORKERS (NTHREADS * CO_PER_THREAD)

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

typedef struct Worker {
    BlockBackend *blk;
    int64_t *gens;                  /* shared; only this worker's blocks */
    int first;                      /* owns first, first + NWORKERS, ... */
    unsigned seed;
    int64_t delay_ns;
    bool *stop;                     /* atomic */
    bool done;                      /* atomic */
    int64_t writes, reads;          /* atomic */
    TestFailures fail;
} Worker;

static int64_t total_writes;        /* atomic: all workers */

static void coroutine_fn worker_co(void *opaque)
{
    Worker *w = opaque;
    uint8_t *buf = aligned_alloc(4096, STAMP_BLOCK);
    int64_t owned = (NBLOCKS - w->first + NWORKERS - 1) / NWORKERS;

    while (!__atomic_load_n(w->stop, __ATOMIC_SEQ_CST)) {
        int64_t b = w->first + (rand_r(&w->seed) % owned) * NWORKERS;
        int64_t off = b * STAMP_BLOCK;
        int64_t gen = w->gens[b];   /* ours alone */
        int ret;

        if (rand_r(&w->seed) % 3 == 0) {
            ret = blk_co_pread(w->blk, off, STAMP_BLOCK, buf, 0);
            if (ret < 0 || stamp_gen(buf, off) != gen) {
                test_failures_add(&w->fail, "block %lld: read %d gen %lld, "
                                  "the last acknowledged write was gen %lld",
                                  (long long)b, ret,
                                  (long long)stamp_gen(buf, off),
                                  (long long)gen);
            }
            __atomic_fetch_add(&w->reads, 1, __ATOMIC_SEQ_CST);
        }
        stamp_fill(buf, off, gen + 1);
        ret = blk_co_pwrite(w->blk, off, STAMP_BLOCK, buf, 0);
        if (ret < 0) {
            test_failures_add(&w->fail, "block %lld: write: %s",
                              (long long)b, strerror(-ret));
        } else {
            __atomic_store_n(&w->gens[b], gen + 1, __ATOMIC_SEQ_CST);
        }
        __atomic_fetch_add(&w->writes, 1, __ATOMIC_SEQ_CST);
        __atomic_fetch_add(&total_writes, 1, __ATOMIC_SEQ_CST);
        aio_wait_kick();
        qemu_co_sleep_ns(QEMU_CLOCK_REALTIME,
                         w->delay_ns / 2 + rand_r(&w->seed) % w->delay_ns);
    }
    free(buf);
    __atomic_store_n(&w->done, true, __ATOMIC_SEQ_CST);
    aio_wait_kick();
}

/* --- the world -------------------------------------------------------------- */

typedef struct Soak {
    int fd[2];
    BlockDriverState *disk[2];
    BlockBackend *blk;
    IOThread *threads[NTHREADS];
    AioContext *ctxs[NTHREADS + 1]; /* [0]: the main loop */
    Worker workers[NWORKERS];
    int64_t *gens;
    bool stop;
    unsigned seed;
    /* what happened */
    int drains, drain_alls, moves, mirrors, cancels, job_moves, job_drains;
} Soak;

static int64_t writes_now(void)
{
    return __atomic_load_n(&total_writes, __ATOMIC_SEQ_CST);
}

/* Let the workers make progress: @n more writes, all workers counted. */
static void let_run(int64_t n)
{
    int64_t target = writes_now() + n;

    AIO_WAIT_WHILE(NULL, writes_now() < target);
}

static BlockDriverState *cur_disk(Soak *s)
{
    return blk_bs(s->blk);
}

/*
 * A drained section of the disk's top node, held for a moment: no request
 * may be inside it meanwhile.  (Not the BlockBackend's counter: a request
 * on its way to being parked counts there for an instant - increment,
 * see the drain, park, decrement - as in QEMU.)  A mirror may finish
 * inside the drain's poll (its exit is a main-loop BH) and take its
 * filter - our node - away: hence the reference; the guest then sits on
 * the target, outside our drained section, so the disks are idle only if
 * the guest is still above the drained node (or everything is drained).
 */
static void do_drain(Soak *s, bool all)
{
    BlockDriverState *bs = cur_disk(s);
    int i;

    bdrv_ref(bs);
    if (all) {
        bdrv_drain_all_begin();
    } else {
        bdrv_drained_begin(bs);
    }
    for (i = 0; i < 3; i++) {
        ASSERT_EQ(bdrv_get_in_flight(bs), 0);
        if (all || cur_disk(s) == bs) {
            ASSERT_EQ(bdrv_get_in_flight(s->disk[0]), 0);
            ASSERT_EQ(bdrv_get_in_flight(s->disk[1]), 0);
        }
        usleep(200);
    }
    if (all) {
        bdrv_drain_all_end();
        s->drain_alls++;
    } else {
        bdrv_drained_end(bs);
        s->drains++;
    }
    bdrv_unref(bs);
}

/* Move the disk's whole graph (with a running job, if any). */
static void do_move(Soak *s)
{
    AioContext *ctx = s->ctxs[rand_r(&s->seed) % (NTHREADS + 1)];

    ASSERT_EQ(bdrv_try_change_aio_context(cur_disk(s), ctx, NULL,
                                          &error_abort), 0);
    ASSERT_PTR_EQ(blk_get_aio_context(s->blk), ctx);
    s->moves++;
}

static void job_wait_until(Soak *s, Job *job, bool (*done)(Job *),
                           double deadline, const char *what)
{
    while (!done(job)) {
        int r = rand_r(&s->seed) % 8;

        if (now_s() > deadline) {
            uint64_t cur, total;

            aiolab_job_get_progress(job, &cur, &total);
            harness_fail(__FILE__, __LINE__, "mirror not %s in 60 s "
                         "(status %s, %llu/%llu bytes)", what,
                         JobStatus_str(aiolab_job_get_status(job)),
                         (unsigned long long)cur,
                         (unsigned long long)total);
        }
        if (r == 0) {
            do_drain(s, false);
            s->job_drains++;
        } else if (r == 1) {
            do_move(s);
            s->job_moves++;
        }
        let_run(20);
    }
}

static bool job_done(Job *job)
{
    JobStatus st = aiolab_job_get_status(job);

    return st == JOB_STATUS_CONCLUDED || st == JOB_STATUS_NULL;
}

/* Mirror the disk to the other one; switch over, or now and then cancel
 * (the users stay), with drains and moves while the job runs. */
static void do_mirror(Soak *s)
{
    BlockDriverState *src = cur_disk(s);
    BlockDriverState *tgt = src == s->disk[0] ? s->disk[1] : s->disk[0];
    bool cancel = rand_r(&s->seed) % 5 == 0;
    double deadline = now_s() + 60;
    Job *job;

    job = mirror_start("soak", src, tgt, JOB_DEFAULT, 0, 16384, 0,
                       BLOCKDEV_ON_ERROR_REPORT, BLOCKDEV_ON_ERROR_REPORT,
                       NULL, &error_abort);
    job_wait_until(s, job, job_is_ready, deadline, "ready");
    let_run(50);
    if (cancel) {
        job_cancel(job, rand_r(&s->seed) % 2);
        job_wait_until(s, job, job_done, deadline, "cancelled");
        ASSERT_PTR_EQ(cur_disk(s), src);
        s->cancels++;
    } else {
        job_complete(job, &error_abort);
        job_wait_until(s, job, job_done, deadline, "completed");
        ASSERT_EQ(aiolab_job_get_ret(job), 0);
        ASSERT_PTR_EQ(cur_disk(s), tgt);
        s->mirrors++;
    }
    job_unref(job);
}

static void check_all(Soak *s)
{
    uint8_t *buf = aligned_alloc(4096, STAMP_BLOCK);
    int64_t b;

    for (b = 0; b < NBLOCKS; b++) {
        ASSERT_EQ(blk_pread(s->blk, b * STAMP_BLOCK, STAMP_BLOCK, buf, 0),
                  0);
        if (stamp_gen(buf, b * STAMP_BLOCK) != s->gens[b]) {
            harness_fail(__FILE__, __LINE__, "block %lld holds gen %lld, "
                         "the last acknowledged write was gen %lld",
                         (long long)b,
                         (long long)stamp_gen(buf, b * STAMP_BLOCK),
                         (long long)s->gens[b]);
        }
    }
    free(buf);
}

static void test_soak(void)
{
    const char *san = harness_sanitizer();
    double seconds = 2.0 * harness_scale(10) / 10;
    double end;
    Soak *s = calloc(1, sizeof(*s));
    char name[16];
    int i, actions = 0;
    int64_t writes = 0, reads = 0;

    /* The harness armed 30 s (x3 under a sanitizer); a longer soak
     * needs longer. */
    alarm((unsigned)((60 + 3 * seconds) * (san ? 3 : 1)));
    block_test_setup();
    s->seed = 1;
    s->gens = calloc(NBLOCKS, sizeof(int64_t));
    for (i = 0; i < 2; i++) {
        char opts[128];

        s->fd[i] = stamp_make_file(DISK_SIZE, i == 0);
        snprintf(opts, sizeof(opts), "driver=file,filename=/proc/self/fd/"
                 "%d,aio=threads,node-name=disk%d", s->fd[i], i);
        s->disk[i] = bdrv_open(NULL, NULL, opts, BDRV_O_RDWR, &error_abort);
    }
    s->blk = blk_new(qemu_get_aio_context());
    ASSERT_EQ(blk_insert_bs(s->blk, s->disk[0], &error_abort), 0);
    s->ctxs[0] = qemu_get_aio_context();
    for (i = 0; i < NTHREADS; i++) {
        snprintf(name, sizeof(name), "soak%d", i);
        s->threads[i] = iothread_create(name, &error_abort);
        s->ctxs[i + 1] = iothread_get_aio_context(s->threads[i]);
    }
    for (i = 0; i < NWORKERS; i++) {
        Worker *w = &s->workers[i];

        *w = (Worker){ .blk = s->blk, .gens = s->gens, .first = i,
                       .seed = 100 + i, .stop = &s->stop,
                       .delay_ns = san ? 8000000 : 2000000 };
        aio_co_enter(s->ctxs[1 + i / CO_PER_THREAD],
                     qemu_coroutine_create(worker_co, w));
    }
    let_run(100);

    end = now_s() + seconds;
    while (now_s() < end) {
        int r = rand_r(&s->seed) % 10;

        if (r < 3) {
            do_drain(s, false);
        } else if (r < 4) {
            do_drain(s, true);
        } else if (r < 7) {
            do_move(s);
        } else {
            do_mirror(s);
        }
        actions++;
        let_run(30);
    }

    __atomic_store_n(&s->stop, true, __ATOMIC_SEQ_CST);
    for (i = 0; i < NWORKERS; i++) {
        Worker *w = &s->workers[i];

        AIO_WAIT_WHILE(NULL, !__atomic_load_n(&w->done, __ATOMIC_SEQ_CST));
        if (w->fail.count) {
            harness_fail(__FILE__, __LINE__, "worker %d: %lld failures, "
                         "first: %s", i, (long long)w->fail.count,
                         w->fail.first);
        }
        writes += w->writes;
        reads += w->reads;
    }
    check_all(s);
    ASSERT_EQ(blk_get_in_flight(s->blk), 0);
    ASSERT_EQ(bdrv_get_in_flight(s->disk[0]), 0);
    ASSERT_EQ(bdrv_get_in_flight(s->disk[1]), 0);
    ASSERT_EQ(bdrv_get_quiesce_counter(cur_disk(s)), 0);
    ASSERT_TRUE(job_next(NULL) == NULL);
    printf("# %.1f s: %d actions: %d drains, %d drain_alls, %d moves, "
           "%d mirrors switched, %d cancelled (%d drains, %d moves during "
           "jobs); %lld writes, %lld verified reads\n", seconds, actions,
           s->drains, s->drain_alls, s->moves, s->mirrors, s->cancels,
           s->job_drains, s->job_moves, (long long)writes, (long long)reads);
    ASSERT_GT(s->mirrors + s->cancels, 0);

    ASSERT_EQ(blk_set_aio_context(s->blk, qemu_get_aio_context(),
                                  &error_abort), 0);
    blk_unref(s->blk);
    for (i = 0; i < 2; i++) {
        bdrv_unref(s->disk[i]);
        close(s->fd[i]);
    }
    for (i = 0; i < NTHREADS; i++) {
        iothread_destroy(s->threads[i]);
    }
    free(s->gens);
    free(s);
}

static const TestCase tests[] = {
    { "/block-soak/all-at-once", test_soak, .timeout = 120 },
    { NULL }
};

int main(int argc, char **argv)
{
    return harness_main(argc, argv, tests);
}
