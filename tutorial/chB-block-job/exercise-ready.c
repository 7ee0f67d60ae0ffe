/* cc -Ic/include tutorial/chB-block-job/exercise-ready.c -o build/exercise-ready -Lbuild -laiolab -Wl,-rpath,$PWD/build */
/*
 * SPDX-License-Identifier: MIT
 *
 * chB-block-job/exercise-ready.c - EXERCISE: complete a mirror on READY,
 * like a management tool.
 *
 * A management tool (libvirt, say) starts a mirror and, when it hears the
 * READY event, sends block-job-complete.  But events reach listeners
 * late: between the job becoming ready and the tool hearing about it,
 * something else may have drained the disk (here: a backup tool), and a
 * paused ready job is on standby, which refuses to complete.  As given,
 * the tool tries once, fails, and the job stays ready forever.
 *
 * Fix tool_event() so that the job completes whatever the order of
 * events: the robust answer is to try again when the job reports it is
 * ready again (a STATUS_CHANGE event to "ready").
 */
#include "../tutorial.h"
#include <aiolab/aiolab.h>

typedef struct Tool {
    Job *job;
    int attempts;                   /* block-job-complete sent */
    int refused;                    /* ... and refused */
} Tool;

/* The management tool's listener: main loop, BQL held. */
static void tool_event(const AiolabJobEvent *ev, void *opaque)
{
    Tool *t = opaque;
    Error *err = NULL;

    if (ev->type == AIOLAB_JOB_EVENT_READY) {
        t->attempts++;
        job_complete(t->job, &err);
        if (err) {
            printf("block-job-complete: %s\n", error_get_pretty(err));
            error_free(err);
            t->refused++;
        }
    }
}

/* --- the test rig below: no need to change it --------------------------- */

static BlockDriverState *src;
static QEMUTimer *end_timer;

static void end_drain(void *opaque)
{
    bdrv_drained_end(src);
}

/* Another tool: when the job's status first turns "ready" (an event
 * that comes just before READY) it drains the source for 20 ms (a backup
 * tool taking a snapshot, say). */
static void backup_event(const AiolabJobEvent *ev, void *opaque)
{
    static bool once;

    if (ev->type == AIOLAB_JOB_EVENT_STATUS_CHANGE &&
        ev->status == JOB_STATUS_READY && !once) {
        once = true;
        bdrv_drained_begin(src);
        timer_mod(end_timer, qemu_clock_get_ms(QEMU_CLOCK_REALTIME) + 20);
    }
}

static void rescue_cb(void *opaque)
{
    *(bool *)opaque = true;
}

int main(void)
{
    BlockDriverState *tgt;
    BlockBackend *blk;
    QEMUTimer *rescue;
    bool rescued = false;
    Tool t = { 0 };

    qemu_init_main_loop(&error_abort);
    bql_lock();
    src = bdrv_open(NULL, NULL, "driver=null-co,size=1M,node-name=src",
                    BDRV_O_RDWR, &error_abort);
    tgt = bdrv_open(NULL, NULL, "driver=null-co,size=1M,node-name=tgt",
                    BDRV_O_RDWR, &error_abort);
    blk = blk_new(qemu_get_aio_context());
    blk_insert_bs(blk, src, &error_abort);
    end_timer = aio_timer_new(qemu_get_aio_context(), QEMU_CLOCK_REALTIME,
                              SCALE_MS, end_drain, NULL);
    rescue = aio_timer_new(qemu_get_aio_context(), QEMU_CLOCK_REALTIME,
                           SCALE_MS, rescue_cb, &rescued);
    aiolab_job_add_event_listener(backup_event, NULL);
    aiolab_job_add_event_listener(tool_event, &t);

    t.job = mirror_start("mirror0", src, tgt, JOB_DEFAULT, 0, 0, 0,
                         BLOCKDEV_ON_ERROR_REPORT, BLOCKDEV_ON_ERROR_REPORT,
                         NULL, &error_abort);
    timer_mod(rescue, qemu_clock_get_ms(QEMU_CLOCK_REALTIME) + 2000);
    AIO_WAIT_WHILE(NULL, !rescued &&
                   aiolab_job_get_status(t.job) != JOB_STATUS_NULL);
    printf("the tool sent block-job-complete %d time(s), %d refused; the "
           "job is %s\n", t.attempts, t.refused,
           JobStatus_str(aiolab_job_get_status(t.job)));
    CHECK_HINT("the job completed and switched the guest over",
               !rescued && blk_bs(blk) == tgt,
               "when the tool heard READY the job was already paused by "
               "a drain (standby) and refused; try again when a "
               "STATUS_CHANGE event says it is ready again");
    CHECK("the first attempt, on READY, was refused (the race happened)",
          t.refused >= 1);

    aiolab_job_remove_event_listener(tool_event, &t);
    aiolab_job_remove_event_listener(backup_event, NULL);
    job_unref(t.job);
    timer_free(rescue);
    timer_free(end_timer);
    blk_unref(blk);
    bdrv_unref(src);
    bdrv_unref(tgt);
    bql_unlock();
    return 0;
}
