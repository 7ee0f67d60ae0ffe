/* SPDX-License-Identifier: MIT */
/*
 * block/job-qmp.c - what the monitor asks of a job besides complete and
 * cancel (block-job-pause/resume, job-dismiss, block-job-set-speed), the
 * progress meter, and the read-only accessors (QEMU's job-qmp.c,
 * util/progress_meter.c and the field reads of blockdev.c).  Each verb is
 * checked against the job's status first, with QEMU's message ("Job 'x'
 * in state 'y' cannot accept command verb 'z'").
 */
#include <errno.h>
#include "block/blockjob_int.h"

void job_dismiss(Job *job, Error **errp)
{
    GLOBAL_STATE_CODE();
    REQUIRE_LIVE(job, JOB_MAGIC, "Job");
    job_lock();
    if (!job_apply_verb_locked(job, VERB_DISMISS, errp)) {
        job_unlock();
        return;
    }
    job_do_dismiss_locked(job);
    job_unlock();
    job_unref(job);                 /* the list's reference */
}

void job_user_pause(Job *job, Error **errp)
{
    GLOBAL_STATE_CODE();
    REQUIRE_LIVE(job, JOB_MAGIC, "Job");
    job_lock();
    if (!job_apply_verb_locked(job, VERB_PAUSE, errp)) {
        job_unlock();
        return;
    }
    if (job->user_paused) {
        error_setg(errp, "Job is already paused");
        job_unlock();
        return;
    }
    job->user_paused = true;
    job_unlock();
    job_pause(job);
}

void job_user_resume(Job *job, Error **errp)
{
    GLOBAL_STATE_CODE();
    REQUIRE_LIVE(job, JOB_MAGIC, "Job");
    job_lock();
    if (!job_apply_verb_locked(job, VERB_RESUME, errp)) {
        job_unlock();
        return;
    }
    if (!job->user_paused) {
        error_setg(errp, "Can't resume a job that was not paused");
        job_unlock();
        return;
    }
    job->user_paused = false;
    job->iostatus = BLOCK_DEVICE_IO_STATUS_OK;
    job_unlock();
    job_resume(job);
}

bool job_user_paused(Job *job)
{
    bool ret;

    GLOBAL_STATE_CODE();
    REQUIRE_LIVE(job, JOB_MAGIC, "Job");
    job_lock();
    ret = job->user_paused;
    job_unlock();
    return ret;
}

bool block_job_set_speed(Job *job, int64_t speed, Error **errp)
{
    GLOBAL_STATE_CODE();
    REQUIRE_LIVE(job, JOB_MAGIC, "Job");
    job_lock();
    if (!job_apply_verb_locked(job, VERB_SET_SPEED, errp)) {
        job_unlock();
        return false;
    }
    if (speed < 0) {
        error_setg(errp, "Parameter 'speed' expects a non-negative value");
        job_unlock();
        return false;
    }
    job->speed = speed;
    /* A job sleeping off the old limit re-checks the new one. */
    job_enter_cond_locked(job, NULL);
    job_unlock();
    return true;
}

/* --- progress and accessors ---------------------------------------------- */

void job_progress_update(Job *job, uint64_t done)
{
    job_lock();
    job->progress_current += done;
    if (job->progress_total < job->progress_current) {
        job->progress_total = job->progress_current;
    }
    job_unlock();
}

void job_progress_set_remaining(Job *job, uint64_t remaining)
{
    job_lock();
    job->progress_total = job->progress_current + remaining;
    job_unlock();
}

void job_progress_increase_remaining(Job *job, uint64_t delta)
{
    job_lock();
    job->progress_total += delta;
    job_unlock();
}

void job_progress_snapshot_locked(Job *job, int64_t *current, int64_t *total)
{
    *current = job->progress_current;
    *total = job->progress_total;
}

#define JOB_GETTER(type, name, expr)                                      \
    type name(Job *job)                                                   \
    {                                                                     \
        type v;                                                           \
        REQUIRE_LIVE(job, JOB_MAGIC, "Job");                              \
        job_lock();                                                       \
        v = (expr);                                                       \
        job_unlock();                                                     \
        return v;                                                         \
    }

JOB_GETTER(bool, job_is_ready, job->status == JOB_STATUS_READY ||
                               job->status == JOB_STATUS_STANDBY)
JOB_GETTER(bool, job_is_completed, job_is_completed_locked(job))
JOB_GETTER(bool, job_is_cancelled, job_is_cancelled_locked(job))
JOB_GETTER(bool, job_cancel_requested, job->cancelled)
JOB_GETTER(JobStatus, aiolab_job_get_status, job->status)
JOB_GETTER(AioContext *, aiolab_job_get_aio_context, job->aio_context)
JOB_GETTER(int, aiolab_job_get_pause_count, job->pause_count)
JOB_GETTER(bool, aiolab_job_is_paused, job->paused)
JOB_GETTER(bool, aiolab_job_is_busy, job->busy)
JOB_GETTER(int, aiolab_job_get_ret, job->ret)

void aiolab_job_get_progress(Job *job, uint64_t *current, uint64_t *total)
{
    REQUIRE_LIVE(job, JOB_MAGIC, "Job");
    job_lock();
    if (current) {
        *current = job->progress_current;
    }
    if (total) {
        *total = job->progress_total;
    }
    job_unlock();
}

const char *aiolab_job_get_id(Job *job)
{
    REQUIRE_LIVE(job, JOB_MAGIC, "Job");
    return job->id;
}

void *aiolab_job_get_opaque(Job *job)
{
    REQUIRE_LIVE(job, JOB_MAGIC, "Job");
    return job->opaque;
}
