/* cc -Ic/include tutorial/chB-block-job/cancel.c -o build/cancel -Lbuild -laiolab -Wl,-rpath,$PWD/build */
/*
 * SPDX-License-Identifier: MIT
 *
 * chB-block-job/cancel.c - the three ways a mirror ends without a switch.
 *
 * block-job-cancel, as QEMU has it: before READY the job stops (event
 * CANCELLED, a partial copy); after READY a hard cancel (force) does the
 * same; a soft cancel of a ready mirror instead finishes the copy and
 * ends with COMPLETED - a consistent copy to take away, the guest left on
 * its disk.  And a user pause, which a cancel undoes.
 */
#include "../tutorial.h"
#include <aiolab/aiolab.h>
#include <errno.h>

#define DISK_SIZE (1 << 20)

static int cancelled, completed;

static void on_event(const AiolabJobEvent *ev, void *opaque)
{
    cancelled += ev->type == AIOLAB_JOB_EVENT_CANCELLED;
    completed += ev->type == AIOLAB_JOB_EVENT_COMPLETED;
}

/* The guest's disk (node src, 'g' everywhere) and a target of zeroes. */
static BlockBackend *guest_on(BlockDriverState **src, BlockDriverState **tgt)
{
    static char buf[DISK_SIZE];
    BlockBackend *blk;

    *src = bdrv_open(NULL, NULL, "driver=file,filename=src.img,"
                     "node-name=src", BDRV_O_RDWR, &error_abort);
    *tgt = bdrv_open(NULL, NULL, "driver=file,filename=tgt.img,"
                     "node-name=tgt", BDRV_O_RDWR, &error_abort);
    blk = blk_new(qemu_get_aio_context());
    blk_insert_bs(blk, *src, &error_abort);
    memset(buf, 'g', sizeof(buf));
    if (blk_pwrite(blk, 0, DISK_SIZE, buf, 0) < 0) {
        exit(1);
    }
    return blk;
}

static void make_images(void)
{
    const char *names[2] = { "src.img", "tgt.img" };

    for (int i = 0; i < 2; i++) {
        int fd = open(names[i], O_RDWR | O_CREAT | O_TRUNC, 0644);

        if (fd < 0 || ftruncate(fd, DISK_SIZE) < 0) {
            perror(names[i]);
            exit(1);
        }
        close(fd);
    }
}

static char byte_at(BlockDriverState *bs, int64_t offset)
{
    BlockBackend *blk = blk_new(qemu_get_aio_context());
    char c;

    blk_insert_bs(blk, bs, &error_abort);
    if (blk_pread(blk, offset, 1, &c, 0) < 0) {
        exit(1);
    }
    blk_unref(blk);
    return c;
}

static void teardown(BlockBackend *blk, BlockDriverState *src,
                     BlockDriverState *tgt, Job *job)
{
    job_unref(job);
    blk_unref(blk);
    bdrv_unref(src);
    bdrv_unref(tgt);
    cancelled = completed = 0;
}

int main(void)
{
    BlockDriverState *src, *tgt;
    BlockBackend *blk;
    uint64_t done = 0;
    Error *err = NULL;
    Job *job;
    int ret;

    qemu_init_main_loop(&error_abort);
    bql_lock();
    aiolab_job_add_event_listener(on_event, NULL);

    /* 1. Before READY: a slow job (256 KiB/s), cancelled while copying. */
    make_images();
    blk = guest_on(&src, &tgt);
    job = mirror_start("slow", src, tgt, JOB_DEFAULT, 256 << 10, 0, 0,
                       BLOCKDEV_ON_ERROR_REPORT, BLOCKDEV_ON_ERROR_REPORT,
                       NULL, &error_abort);
    AIO_WAIT_WHILE(NULL, (aiolab_job_get_progress(job, &done, NULL),
                          done == 0));
    /* [region: pause] */
    job_user_pause(job, &error_abort);          /* block-job-pause */
    AIO_WAIT_WHILE(NULL, !aiolab_job_is_paused(job));
    printf("user-paused: status %s, pause_count %d\n",
           JobStatus_str(aiolab_job_get_status(job)),
           aiolab_job_get_pause_count(job));
    /* [endregion] */
    CHECK("a user pause stops the job at its next pause point",
          aiolab_job_get_status(job) == JOB_STATUS_PAUSED &&
          job_user_paused(job));
    /* [region: before-ready] */
    ret = job_cancel_sync(job, false);          /* block-job-cancel */
    /* [endregion] */
    aiolab_job_get_progress(job, &done, NULL);
    printf("cancelled before READY: ret %d (%s), %llu of %d bytes "
           "copied\n", ret, strerror(-ret), (unsigned long long)done,
           DISK_SIZE);
    AIO_WAIT_WHILE(NULL, cancelled == 0);
    CHECK("before READY, a cancel stops the job: -ECANCELED, event "
          "CANCELLED, a partial copy", ret == -ECANCELED && !completed &&
          done < DISK_SIZE);
    CHECK("the guest stays on its disk, the mirror's filter gone",
          blk_bs(blk) == src && aiolab_bdrv_parent_count(src) == 1);
    teardown(blk, src, tgt, job);

    /* 2. After READY, a hard cancel (force). */
    make_images();
    blk = guest_on(&src, &tgt);
    job = mirror_start("hard", src, tgt, JOB_DEFAULT, 0, 0, 0,
                       BLOCKDEV_ON_ERROR_REPORT, BLOCKDEV_ON_ERROR_REPORT,
                       NULL, &error_abort);
    AIO_WAIT_WHILE(NULL, !job_is_ready(job));
    ret = job_cancel_sync(job, true);
    AIO_WAIT_WHILE(NULL, cancelled == 0);
    CHECK("after READY, a forced cancel: -ECANCELED, event CANCELLED, "
          "no switch", ret == -ECANCELED && !completed && blk_bs(blk) == src);
    teardown(blk, src, tgt, job);

    /* 3. After READY, a soft cancel: finish the copy, do not switch. */
    make_images();
    blk = guest_on(&src, &tgt);
    job = mirror_start("soft", src, tgt, JOB_DEFAULT, 0, 0, 0,
                       BLOCKDEV_ON_ERROR_REPORT, BLOCKDEV_ON_ERROR_REPORT,
                       NULL, &error_abort);
    AIO_WAIT_WHILE(NULL, !job_is_ready(job));
    /* [region: soft] */
    ret = job_cancel_sync(job, false);
    /* [endregion] */
    AIO_WAIT_WHILE(NULL, completed == 0);
    printf("soft cancel of a ready mirror: ret %d; COMPLETED %d, "
           "CANCELLED %d; the target holds '%c'\n", ret, completed,
           cancelled, byte_at(tgt, DISK_SIZE - 1));
    CHECK("after READY, a soft cancel completes the copy without the "
          "switch: ret 0, event COMPLETED", ret == 0 && !cancelled &&
          blk_bs(blk) == src && byte_at(tgt, DISK_SIZE - 1) == 'g');
    job_complete(job, &err);
    CHECK("a concluded job takes no more verbs", err != NULL);
    error_free(err);
    teardown(blk, src, tgt, job);

    aiolab_job_remove_event_listener(on_event, NULL);
    unlink("src.img");
    unlink("tgt.img");
    bql_unlock();
    return 0;
}
