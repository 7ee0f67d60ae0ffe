/* SPDX-License-Identifier: MIT */
/*
 * block/blockjob.c - what makes a job a *block* job: edges from the job
 * to its nodes, the speed limit, error actions, query-block-jobs (QEMU's
 * blockjob.c).
 *
 * The edges are the whole trick.  A job is a parent of each of its nodes
 * through a BdrvChild of class child_job, so the block layer treats it
 * like any other user of those nodes:
 *
 *   bdrv_drained_begin(node) ---> child_job.drained_begin: job_pause()
 *       (poll)               ---> child_job.drained_poll: busy until the
 *                                 job sits at a pause point
 *   bdrv_drained_end(node)   ---> child_job.drained_end: job_resume()
 *                                 (re-entered later, in its context)
 *   bdrv_try_change_aio_context(node, ctx)
 *                            ---> child_job.change_aio_ctx: every other
 *                                 node of the job moves too, then
 *                                 job->aio_context = ctx (commit, while
 *                                 all of them are drained)
 *
 * Draining a node below one of the job's nodes quiesces the job's node
 * by propagation (drains go up), so it pauses the job as well; drain_all
 * quiesces every edge, so a job with two nodes counts two pauses.
 *
 * Where QEMU differs: no permissions on the edges; the job has no
 * BlockBackend of its own (the mirror issues requests on its edges).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "block/blockjob_int.h"
#include "util/mem.h"

/* --- child_job: the job as the parent of an edge ------------------------- */

static void child_job_drained_begin(BdrvChild *c)
{
    job_pause(c->opaque);
}

static void child_job_drained_end(BdrvChild *c)
{
    job_resume(c->opaque);
}

/*
 * Busy means "job code may still run and issue requests": the job is
 * neither parked nor finished.  A job whose run() has returned issues no
 * more requests (its end is main-loop work), so it is not busy either.
 */
static bool child_job_drained_poll(BdrvChild *c)
{
    Job *job = c->opaque;
    bool busy;

    job_lock();
    busy = job->busy && !job->deferred_to_main_loop &&
           !job_is_completed_locked(job);
    job_unlock();
    if (!busy) {
        return false;
    }
    return job->driver->drained_poll ? job->driver->drained_poll(job)
                                     : true;
}

typedef struct JobChangeCtx {
    Job *job;
    AioContext *new_ctx;
} JobChangeCtx;

static void child_job_set_ctx_commit(void *opaque)
{
    JobChangeCtx *s = opaque;
    Job *job = s->job;

    job_lock();
    /* Invariant 2 of job.c: parked, finished or not yet started. */
    AIOLAB_ASSERT(!job->busy || job->deferred_to_main_loop || !job->co,
                  "job '%s' changes AioContext while running", job->id);
    job->aio_context = s->new_ctx;
    job_unlock();
}

static void child_job_set_ctx_clean(void *opaque)
{
    JobChangeCtx *s = opaque;

    job_unref(s->job);
    free(s);
}

static const TransactionActionDrv change_child_job_context = {
    .commit = child_job_set_ctx_commit,
    .clean = child_job_set_ctx_clean,
};

static bool child_job_change_aio_ctx(BdrvChild *c, AioContext *ctx,
                                     BdrvVisited *visited, Transaction *tran,
                                     Error **errp)
{
    Job *job = c->opaque;
    JobChangeCtx *s;
    int i;

    /* All of the job's nodes go, or none. */
    for (i = 0; i < job->nb_nodes; i++) {
        BdrvChild *sibling = job->nodes[i];

        if (bdrv_visited_add(visited, sibling) &&
            !bdrv_change_aio_context(sibling->bs, ctx, visited, tran,
                                     errp)) {
            return false;
        }
    }
    s = aiolab_xcalloc(1, sizeof(*s));
    s->job = job;
    s->new_ctx = ctx;
    job_ref(job);       /* it may conclude before the commit (a poll) */
    tran_add(tran, &change_child_job_context, s);
    return true;
}

static AioContext *child_job_get_parent_aio_context(BdrvChild *c)
{
    Job *job = c->opaque;
    AioContext *ctx;

    job_lock();
    ctx = job->aio_context;
    job_unlock();
    return ctx;
}

const BdrvChildClass child_job = {
    .parent_is_bds = false,
    .drained_begin = child_job_drained_begin,
    .drained_end = child_job_drained_end,
    .drained_poll = child_job_drained_poll,
    .change_aio_ctx = child_job_change_aio_ctx,
    .get_parent_aio_context = child_job_get_parent_aio_context,
};

/* --- creation and nodes -------------------------------------------------- */

int block_job_add_bdrv(Job *job, const char *name, BlockDriverState *bs,
                       Error **errp)
{
    BdrvChild *c;

    GLOBAL_STATE_CODE();
    REQUIRE_LIVE(job, JOB_MAGIC, "Job");
    REQUIRE_LIVE(bs, BDS_MAGIC, "BlockDriverState");
    REQUIRE_NONNULL(name);
    c = bdrv_attach_child_common(bs, name, &child_job, job, errp);
    if (!c) {
        return -EPERM;
    }
    job->nodes = aiolab_xreallocarray(job->nodes, job->nb_nodes + 1,
                                      sizeof(*job->nodes));
    job->nodes[job->nb_nodes++] = c;
    return 0;
}

void block_job_remove_all_bdrv(Job *job)
{
    GLOBAL_STATE_CODE();
    REQUIRE_LIVE(job, JOB_MAGIC, "Job");
    /* One at a time, the array kept consistent: detaching may drain and
     * poll, and a nested caller must not see a dangling edge. */
    while (job->nb_nodes > 0) {
        BdrvChild *c = job->nodes[--job->nb_nodes];

        bdrv_root_unref_child(c);
    }
    free(job->nodes);
    job->nodes = NULL;
}

bool block_job_has_bdrv(Job *job, BlockDriverState *bs)
{
    int i;

    for (i = 0; i < job->nb_nodes; i++) {
        if (job->nodes[i]->bs == bs) {
            return true;
        }
    }
    return false;
}

Job *block_job_create(const char *job_id, const JobDriver *driver,
                      BlockDriverState *bs, int64_t speed, int flags,
                      void *opaque, Error **errp)
{
    Job *job;

    GLOBAL_STATE_CODE();
    REQUIRE_LIVE(bs, BDS_MAGIC, "BlockDriverState");
    if (speed < 0) {
        error_setg(errp, "Parameter 'speed' expects a non-negative value");
        return NULL;
    }
    job = job_create(job_id ? job_id : bdrv_get_node_name(bs), driver,
                     bdrv_get_aio_context(bs), flags, opaque, errp);
    if (!job) {
        return NULL;
    }
    job->speed = speed;
    if (block_job_add_bdrv(job, "main node", bs, errp) < 0) {
        job_early_fail(job);
        return NULL;
    }
    return job;
}

/* --- speed --------------------------------------------------------------- */

void block_job_ratelimit_processed_bytes(Job *job, uint64_t n)
{
    job->slice_done += n;           /* the job's coroutine only */
}

void coroutine_fn block_job_ratelimit_sleep(Job *job)
{
    int64_t now = qemu_clock_get_ns(QEMU_CLOCK_REALTIME);
    int64_t delay = 0, speed;

    job_lock();
    speed = job->speed;
    job_unlock();
    if (speed > 0) {
        uint64_t quota = MAX(1, speed * BLOCK_JOB_SLICE_TIME / 1000000000);

        if (now >= job->slice_end_ns) {
            /* A new slice; what the last one overdrew is carried over. */
            job->slice_done = now >= job->slice_end_ns + BLOCK_JOB_SLICE_TIME
                              || job->slice_done < quota ? 0
                              : job->slice_done - quota;
            job->slice_end_ns = now + BLOCK_JOB_SLICE_TIME;
        }
        if (job->slice_done >= quota) {
            delay = job->slice_end_ns - now;
        }
    }
    /* Sleeping through the main loop's timer costs a round trip: do it
     * when the limit says so, or once per slice so that the job's
     * context runs its other work even when the job never waits. */
    if (delay > 0 || now - job->last_yield_ns >= BLOCK_JOB_SLICE_TIME) {
        job_sleep_ns(job, delay);
    } else {
        job_pause_point(job);
    }
}

/* --- errors -------------------------------------------------------------- */

BlockErrorAction block_job_error_action(Job *job, BlockdevOnError on_err,
                                        bool is_read, int error)
{
    AiolabJobEvent ev = { .type = AIOLAB_JOB_EVENT_ERROR,
                          .is_read = is_read };
    BlockErrorAction action;

    REQUIRE_LIVE(job, JOB_MAGIC, "Job");
    switch (on_err) {
    case BLOCKDEV_ON_ERROR_ENOSPC:
        action = error == ENOSPC ? BLOCK_ERROR_ACTION_STOP
                                 : BLOCK_ERROR_ACTION_REPORT;
        break;
    case BLOCKDEV_ON_ERROR_STOP:
        action = BLOCK_ERROR_ACTION_STOP;
        break;
    case BLOCKDEV_ON_ERROR_IGNORE:
        action = BLOCK_ERROR_ACTION_IGNORE;
        break;
    default:
        action = BLOCK_ERROR_ACTION_REPORT;
        break;
    }
    job_lock();
    ev.action = action;
    job_event_post(job, &ev);
    if (action == BLOCK_ERROR_ACTION_STOP && !job->user_paused) {
        /* A user pause (job_pause() without the main-loop rule: we are
         * the job, running; it stops at its next pause point). */
        job->user_paused = true;
        job->pause_count++;
        job->iostatus = error == ENOSPC ? BLOCK_DEVICE_IO_STATUS_NOSPACE
                                        : BLOCK_DEVICE_IO_STATUS_FAILED;
    }
    job_unlock();
    return action;
}

/* --- query-block-jobs ---------------------------------------------------- */

void block_job_query(Job *job, BlockJobInfo *info)
{
    int64_t current, total;

    GLOBAL_STATE_CODE();
    REQUIRE_LIVE(job, JOB_MAGIC, "Job");
    REQUIRE_NONNULL(info);
    memset(info, 0, sizeof(*info));
    snprintf(info->type, sizeof(info->type), "%s", job->driver->job_type);
    snprintf(info->device, sizeof(info->device), "%s", job->id);
    info->auto_finalize = true;
    info->auto_dismiss = job->auto_dismiss;
    job_lock();
    job_progress_snapshot_locked(job, &current, &total);
    info->len = total;
    info->offset = current;
    info->busy = job->busy;
    info->paused = job->pause_count > 0;
    info->speed = job->speed;
    info->io_status = job->iostatus;
    info->ready = job->status == JOB_STATUS_READY ||
                  job->status == JOB_STATUS_STANDBY;
    info->status = job->status;
    if (job->ret < 0 && job->err) {
        snprintf(info->error, sizeof(info->error), "%s",
                 error_get_pretty(job->err));
    }
    job_unlock();
}

size_t aiolab_block_job_query_all(BlockJobInfo *out, size_t max)
{
    Job *job;
    size_t n = 0;

    GLOBAL_STATE_CODE();
    for (job = job_next(NULL); job; job = job_next(job)) {
        if (n < max) {
            block_job_query(job, &out[n]);
        }
        n++;
    }
    return n;
}
