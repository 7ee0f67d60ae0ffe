/* cc -Ic/include tutorial/chB-block-job/mirror.c -o build/mirror -Lbuild -laiolab -Wl,-rpath,$PWD/build */
/*
 * SPDX-License-Identifier: MIT
 *
 * chB-block-job/mirror.c - a mirror job copies a disk while it is used,
 * and switches the guest over inside a drained section.
 *
 * A "guest" in IOThread io0 keeps writing its disk, four writes in
 * flight (never two on one block: their order would be undefined), each
 * block stamped with a version number.  The main loop starts
 * a mirror to a second disk, waits for READY, completes the job (the
 * switch-over) while the writes go on, and checks that every write the
 * guest was told is done is on the new disk.
 */
#include "../tutorial.h"
#include <aiolab/aiolab.h>

#define DISK_SIZE (2 << 20)
#define BLOCK 4096
#define NBLOCKS (DISK_SIZE / BLOCK)
#define DEPTH 4

/* --- the guest: four chains of writes in io0 ------------------------------ */

typedef struct Guest {
    BlockBackend *blk;
    AioContext *ctx;
    int acked[NBLOCKS];             /* version of each block, acknowledged */
    int next_version;
    unsigned seed;
    bool stop;                      /* atomic */
    int running, writes;            /* atomic */
    int drained_begins, drained_ends;   /* its BlockBackend's callbacks */
} Guest;

typedef struct Write {
    Guest *g;
    int chain;                      /* writes blocks b with b % DEPTH == it:
                                     * one write per block at a time */
    QEMUTimer *pace;                /* a write every millisecond */
    int block, version;
    uint32_t buf[BLOCK / 4];
    QEMUIOVector qiov;
} Write;

static void write_done(void *opaque, int ret)
{
    Write *w = opaque;
    Guest *g = w->g;

    if (ret == 0 && w->version > g->acked[w->block]) {
        g->acked[w->block] = w->version;    /* only io0 touches acked[] */
    }
    __atomic_fetch_add(&g->writes, 1, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&g->stop, __ATOMIC_SEQ_CST)) {
        timer_free(w->pace);
        free(w);
        __atomic_fetch_sub(&g->running, 1, __ATOMIC_SEQ_CST);
    } else {
        timer_mod(w->pace, qemu_clock_get_ms(QEMU_CLOCK_REALTIME) + 1);
    }
    aio_wait_kick();
}

/* In io0: write the next version of a random block. */
static void write_next(void *opaque)
{
    Write *w = opaque;
    Guest *g = w->g;

    w->block = rand_r(&g->seed) % (NBLOCKS / DEPTH) * DEPTH + w->chain;
    w->version = ++g->next_version;
    for (int i = 0; i < BLOCK / 4; i++) {
        w->buf[i] = w->block * 100000 + w->version;     /* the stamp */
    }
    qemu_iovec_init_buf(&w->qiov, w->buf, BLOCK);
    blk_aio_pwritev(g->blk, (int64_t)w->block * BLOCK, &w->qiov, 0,
                    write_done, w);
}

static void guest_start_bh(void *opaque)
{
    Guest *g = opaque;

    for (int i = 0; i < DEPTH; i++) {
        Write *w = calloc(1, sizeof(*w));

        w->g = g;
        w->chain = i;
        w->pace = aio_timer_new(g->ctx, QEMU_CLOCK_REALTIME, SCALE_MS,
                                write_next, w);
        write_next(w);
    }
}

/* The guest's "device": it only counts the drained sections it sees. */
static void guest_drained_begin(void *opaque)
{
    ((Guest *)opaque)->drained_begins++;
}

static void guest_drained_end(void *opaque)
{
    ((Guest *)opaque)->drained_ends++;
}

static const BlockDevOps guest_ops = {
    .drained_begin = guest_drained_begin,
    .drained_end = guest_drained_end,
};

static int get(int *p)
{
    return __atomic_load_n(p, __ATOMIC_SEQ_CST);
}

static void guest_wait(Guest *g, int n)
{
    int target = get(&g->writes) + n;

    AIO_WAIT_WHILE(NULL, get(&g->writes) < target);
}

/* --- job events ----------------------------------------------------------- */

static char events[512];
static AiolabJobEvent ready;        /* the READY event, when it came */

static void on_event(const AiolabJobEvent *ev, void *opaque)
{
    static const char *names[] = { "status", "READY", "COMPLETED",
                                   "CANCELLED", "ERROR" };
    char one[64];

    if (ev->type == AIOLAB_JOB_EVENT_READY) {
        ready = *ev;
    }
    if (ev->type == AIOLAB_JOB_EVENT_STATUS_CHANGE) {
        snprintf(one, sizeof(one), "%s ", JobStatus_str(ev->status));
    } else {
        snprintf(one, sizeof(one), "%s ", names[ev->type]);
    }
    strncat(events, one, sizeof(events) - strlen(events) - 1);
}

/* --- helpers -------------------------------------------------------------- */

/* A file node @name over a new file of DISK_SIZE zeroes. */
static BlockDriverState *disk(const char *name)
{
    char path[64], opts[256];
    BlockDriverState *bs;
    int fd;

    snprintf(path, sizeof(path), "%s.img", name);
    fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || ftruncate(fd, DISK_SIZE) < 0) {
        perror(path);
        exit(1);
    }
    close(fd);
    snprintf(opts, sizeof(opts), "driver=file,filename=%s,aio=threads,"
             "node-name=%s", path, name);
    bs = bdrv_open(NULL, NULL, opts, BDRV_O_RDWR, &error_abort);
    unlink(path);                   /* the node keeps it open */
    return bs;
}

/* The version of every block of node @bs (the stamp's version part). */
static void versions(BlockDriverState *bs, int *out)
{
    BlockBackend *blk = blk_new(qemu_get_aio_context());
    static uint32_t buf[DISK_SIZE / 4];

    blk_insert_bs(blk, bs, &error_abort);
    if (blk_pread(blk, 0, DISK_SIZE, buf, 0) < 0) {
        exit(1);
    }
    for (int b = 0; b < NBLOCKS; b++) {
        out[b] = buf[b * BLOCK / 4] ? buf[b * BLOCK / 4] - b * 100000 : 0;
    }
    blk_unref(blk);
}

static int64_t writes_reaching(BlockDriverState *bs)
{
    AiolabTestDriverStats st;

    aiolab_test_driver_get_stats(bs, &st);
    return st.writes;
}

int main(void)
{
    static int on_target[NBLOCKS], on_source[NBLOCKS];
    BlockDriverState *src, *tgt, *src_file, *tgt_file;
    int64_t src_writes;
    int begins, stale = 0;
    Guest g = { .seed = 1 };
    IOThread *io0;
    Job *job;

    qemu_init_main_loop(&error_abort);
    bql_lock();
    io0 = iothread_create("io0", &error_abort);
    src_file = disk("src-file");
    tgt_file = disk("tgt-file");
    /* aiolab-test: a pass-through node that counts what reaches it */
    src = bdrv_open(NULL, NULL, "driver=aiolab-test,file=src-file,"
                    "node-name=src", BDRV_O_RDWR, &error_abort);
    tgt = bdrv_open(NULL, NULL, "driver=aiolab-test,file=tgt-file,"
                    "node-name=tgt", BDRV_O_RDWR, &error_abort);
    g.blk = blk_new(qemu_get_aio_context());
    blk_insert_bs(g.blk, src, &error_abort);
    blk_set_dev_ops(g.blk, &guest_ops, &g);
    g.running = DEPTH;
    g.ctx = iothread_get_aio_context(io0);
    aio_bh_schedule_oneshot(g.ctx, guest_start_bh, &g);
    guest_wait(&g, 100);
    aiolab_job_add_event_listener(on_event, NULL);

    /* [region: start] */
    job = mirror_start("mirror0", src, tgt, JOB_DEFAULT, 0, BLOCK, 0,
                       BLOCKDEV_ON_ERROR_REPORT, BLOCKDEV_ON_ERROR_REPORT,
                       NULL, &error_abort);
    AIO_WAIT_WHILE(NULL, !job_is_ready(job));   /* the main loop runs */
    /* [endregion] */
    AIO_WAIT_WHILE(NULL, !ready.len);           /* the event follows */
    printf("READY: %lld of %lld bytes copied; the guest has written %d "
           "blocks so far\n", (long long)ready.offset, (long long)ready.len,
           get(&g.writes));
    CHECK("at READY the job had copied everything it knew to be dirty",
          ready.offset == ready.len && ready.len >= DISK_SIZE);
    guest_wait(&g, 200);            /* still in sync: new writes copied */
    CHECK("after READY the job keeps the target in sync (still ready)",
          job_is_ready(job));

    begins = g.drained_begins;
    /* [region: complete] */
    job_complete_sync(job, &error_abort);   /* switch-over, then wait */
    /* [endregion] */
    src_writes = writes_reaching(src);
    printf("switched: the guest's BlockBackend is on '%s'; its device "
           "saw %d drained section(s) meanwhile\n",
           bdrv_get_node_name(blk_bs(g.blk)), g.drained_begins - begins);
    CHECK("the guest now writes to the target", blk_bs(g.blk) == tgt);
    CHECK("the switch happened inside a drained section of the guest's "
          "disk", g.drained_begins > begins &&
          g.drained_ends == g.drained_begins);
    guest_wait(&g, 200);            /* the writes go on, to the target */
    CHECK_EQ("no write reached the source after the switch",
             writes_reaching(src), src_writes);

    __atomic_store_n(&g.stop, true, __ATOMIC_SEQ_CST);
    AIO_WAIT_WHILE(NULL, get(&g.running) > 0);
    versions(tgt, on_target);
    versions(src, on_source);
    for (int b = 0; b < NBLOCKS; b++) {
        stale += on_target[b] != g.acked[b] || on_source[b] > g.acked[b];
    }
    printf("%d writes in all; %d block(s) not as last acknowledged\n",
           get(&g.writes), stale);
    CHECK_EQ("every block on the target is the version last "
             "acknowledged", stale, 0);
    printf("events: %s\n", events);
    CHECK("events: READY before COMPLETED, and the job ended dismissed",
          strstr(events, "READY") < strstr(events, "COMPLETED") &&
          strstr(events, "READY") && strstr(events, "concluded null"));

    aiolab_job_remove_event_listener(on_event, NULL);
    job_unref(job);
    blk_set_dev_ops(g.blk, NULL, NULL);
    blk_unref(g.blk);
    bdrv_unref(src);
    bdrv_unref(tgt);
    bdrv_unref(src_file);
    bdrv_unref(tgt_file);
    iothread_destroy(io0);
    bql_unlock();
    return 0;
}
