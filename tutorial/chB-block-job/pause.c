/* cc -Ic/include tutorial/chB-block-job/pause.c -o build/pause -Lbuild -laiolab -Wl,-rpath,$PWD/build */
/*
 * SPDX-License-Identifier: MIT
 *
 * chB-block-job/pause.c - a job pauses for every drain of its nodes.
 *
 * A mirror job is a parent of its nodes: of the filter it puts above the
 * source, and of the target.  Draining one of them pauses the job once
 * (pause_count), and the drain waits until the job has really stopped at
 * a pause point.  The job runs in the main loop's context here, so we
 * can also see that the end of a drain runs no job code.
 */
#include "../tutorial.h"
#include <aiolab/aiolab.h>

static void show(const char *when, Job *job)
{
    printf("%-34s pause_count %d, paused %d, busy %d, status %s\n", when,
           aiolab_job_get_pause_count(job), aiolab_job_is_paused(job),
           aiolab_job_is_busy(job),
           JobStatus_str(aiolab_job_get_status(job)));
}

int main(void)
{
    BlockDriverState *src, *tgt;
    uint64_t done = 0;
    Error *err = NULL;
    Job *job;
    int both;

    qemu_init_main_loop(&error_abort);
    bql_lock();
    src = bdrv_open(NULL, NULL, "driver=null-co,size=8M,read-zeroes=on,"
                    "latency-ns=100000,node-name=src", BDRV_O_RDWR,
                    &error_abort);
    tgt = bdrv_open(NULL, NULL, "driver=null-co,size=8M,latency-ns=100000,"
                    "node-name=tgt", BDRV_O_RDWR, &error_abort);
    /* 4 MiB/s: the copy would take two seconds, time enough to watch */
    job = mirror_start("mirror0", src, tgt, JOB_DEFAULT, 4 << 20, 0, 0,
                       BLOCKDEV_ON_ERROR_REPORT, BLOCKDEV_ON_ERROR_REPORT,
                       NULL, &error_abort);
    AIO_WAIT_WHILE(NULL, (aiolab_job_get_progress(job, &done, NULL),
                          done == 0));
    show("copying:", job);

    /* [region: drain] */
    bdrv_drained_begin(src);
    show("bdrv_drained_begin(src):", job);
    /* [endregion] */
    CHECK_EQ("a drain of the source pauses the job once",
             aiolab_job_get_pause_count(job), 1);
    CHECK("the drain returned only once the job had stopped at a pause "
          "point: paused, not busy, no copy in flight",
          aiolab_job_is_paused(job) && !aiolab_job_is_busy(job) &&
          aiolab_job_get_status(job) == JOB_STATUS_PAUSED &&
          bdrv_get_in_flight(tgt) == 0 && bdrv_get_in_flight(src) == 0);

    /* [region: nest] */
    bdrv_drained_begin(tgt);
    show("... and bdrv_drained_begin(tgt):", job);
    both = aiolab_job_get_pause_count(job);
    bdrv_drained_end(tgt);
    bdrv_drained_end(src);
    show("both ended:", job);
    /* [endregion] */
    CHECK_EQ("draining the target too: pause_count 2 (one per edge)",
             both, 2);
    CHECK("after the last end: pause_count 0, yet the job has not run: "
          "still paused", aiolab_job_get_pause_count(job) == 0 &&
          aiolab_job_is_paused(job));
    AIO_WAIT_WHILE(NULL, aiolab_job_is_paused(job));
    show("after the main loop polled:", job);
    CHECK("it resumed in its own context, later: running again",
          aiolab_job_get_status(job) == JOB_STATUS_RUNNING);

    bdrv_drain_all_begin();
    show("bdrv_drain_all_begin():", job);
    CHECK_EQ("drain-all quiesces both of its edges: pause_count 2",
             aiolab_job_get_pause_count(job), 2);
    bdrv_drain_all_end();

    block_job_set_speed(job, 0, &error_abort);  /* now let it finish */
    AIO_WAIT_WHILE(NULL, !job_is_ready(job));
    bdrv_drained_begin(src);
    show("ready, drained:", job);
    job_complete(job, &err);
    printf("block-job-complete while drained: %s\n",
           err ? error_get_pretty(err) : "ok");
    CHECK("a ready job paused by a drain is on standby, and refuses "
          "to complete", aiolab_job_get_status(job) == JOB_STATUS_STANDBY
          && err && strstr(error_get_pretty(err), "in state 'standby'"));
    error_free(err);
    bdrv_drained_end(src);
    AIO_WAIT_WHILE(NULL, aiolab_job_get_status(job) != JOB_STATUS_READY);
    CHECK_EQ("once it has run again, it completes", job_complete_sync(job,
             &error_abort), 0);

    job_unref(job);
    bdrv_unref(src);
    bdrv_unref(tgt);
    bql_unlock();
    return 0;
}
