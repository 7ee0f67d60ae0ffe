/* SPDX-License-Identifier: MIT */
/*
 * aiolab/blockjob.h - block jobs: long-running background operations on
 * the block graph that must cooperate with drained sections and follow
 * their nodes between AioContexts; and the mirror job (QEMU's
 * include/qemu/job.h, include/block/blockjob.h, blockjob_int.h and the
 * mirror_start() of block_int-global-state.h).
 *
 * A job is a coroutine in its node's AioContext plus a state machine the
 * main loop drives (complete, cancel, pause, resume):
 *
 *   created --job_start--> running <--pause point--> paused
 *                             |  \
 *                             |   job_transition_to_ready()
 *                             |        v
 *                             |      ready <--pause point--> standby
 *                             |        |  job_complete(): the mirror
 *                             |        |  switches its users over to the
 *                             v        v  target inside a drained section
 *                       run() returned (a BH in the main loop):
 *                         success -> waiting -> pending -> concluded
 *                         error or cancel -> aborting ---> concluded
 *                                   (dismissed: null, then freed)
 *
 * The job is a parent of its nodes (BdrvChild edges, QEMU's child_job):
 *   - draining one of them (or anything below it) pauses the job once per
 *     quiesced edge (pause_count), and the drain waits until the job has
 *     really stopped at a pause point (busy == false);
 *   - the last drained_end resumes it - later, in its own context:
 *     drained_end never runs job code;
 *   - moving one of its nodes to another AioContext moves all of them and
 *     the job: its coroutine continues in the new context.
 *
 * Events (ready, completed, cancelled, I/O errors, status changes) reach
 * listeners in the main loop, in order; aiolab_block_job_query_all() is
 * query-block-jobs.
 *
 * Where QEMU differs: one type, Job, stands for QEMU's Job and BlockJob;
 * no job transactions (txn), no manual finalize (auto-finalize is always
 * on), no job-change; a job's creator gets a reference of its own (QEMU
 * leaves the job to the job list).  The mirror copies whole devices
 * (sync=full) in the background copy mode, with no "replaces", backing
 * or zero-target options.
 */
#ifndef AIOLAB_BLOCKJOB_H
#define AIOLAB_BLOCKJOB_H

#include <aiolab/block.h>

typedef struct Job Job;

/* QEMU's JobStatus, in QEMU's order (qapi/job.json). */
typedef enum JobStatus {
    JOB_STATUS_UNDEFINED,
    JOB_STATUS_CREATED,     /* made, not started */
    JOB_STATUS_RUNNING,
    JOB_STATUS_PAUSED,      /* stopped at a pause point (drain, user) */
    JOB_STATUS_READY,       /* may be completed (mirror: in sync) */
    JOB_STATUS_STANDBY,     /* paused while ready */
    JOB_STATUS_WAITING,     /* run() done; (QEMU: for its transaction) */
    JOB_STATUS_PENDING,     /* about to finalize */
    JOB_STATUS_ABORTING,    /* failed or cancelled: undoing */
    JOB_STATUS_CONCLUDED,   /* finished; waits to be dismissed */
    JOB_STATUS_NULL,        /* dismissed */
    JOB_STATUS__MAX,
} JobStatus;

/* QEMU's JobCreateFlags. */
typedef enum {
    JOB_DEFAULT = 0x00,
    JOB_MANUAL_FINALIZE = 0x01,     /* aiolab: refused (always automatic) */
    JOB_MANUAL_DISMISS = 0x02,      /* stay concluded until job_dismiss() */
} JobCreateFlags;


/* QEMU's BlockDeviceIoStatus, as query-block-jobs shows it. */
typedef enum BlockDeviceIoStatus {
    BLOCK_DEVICE_IO_STATUS_OK,
    BLOCK_DEVICE_IO_STATUS_FAILED,
    BLOCK_DEVICE_IO_STATUS_NOSPACE,
} BlockDeviceIoStatus;

/*
 * JobDriver: what a kind of job does (QEMU's JobDriver and
 * BlockJobDriver in one).  Only run is required.  @job's driver state is
 * aiolab_job_get_opaque(job).
 */
typedef struct JobDriver {
    const char *job_type;           /* "mirror", "test"...: query's type */
    /* The job's work, in a coroutine of the job's context.  Call
     * job_pause_point() (or job_sleep_ns()) often.  0 or -errno. */
    int coroutine_fn (*run)(Job *job, Error **errp);
    /* At a pause point, before pausing: stop issuing requests and wait
     * for those in flight (the drain polls until the job is idle). */
    void coroutine_fn (*pause)(Job *job);
    void coroutine_fn (*resume)(Job *job);
    /* job_complete() on a ready job: make run() finish.  Main loop. */
    void (*complete)(Job *job, Error **errp);
    /* job_cancel(): returns whether it is a hard cancel (the mirror turns
     * a soft cancel of a ready job into "complete without switching").
     * Main loop. */
    bool (*cancel)(Job *job, bool force);
    /* Still busy although not at a pause point?  (Main loop, inside a
     * drain's poll.)  Default: busy. */
    bool (*drained_poll)(Job *job);
    /* After run(), in the main loop: prepare (may fail: then abort),
     * then commit or abort, then clean. */
    int (*prepare)(Job *job);
    void (*commit)(Job *job);
    void (*abort)(Job *job);
    void (*clean)(Job *job);
    /* The last reference is gone: free the driver state. */
    void (*free)(Job *job);
} JobDriver;

/* query-block-jobs, one entry (QEMU's BlockJobInfo). */
typedef struct BlockJobInfo {
    char type[16];                  /* the driver's job_type */
    char device[64];                /* the job id (QEMU calls it device) */
    int64_t len;                    /* progress: bytes to do in all */
    int64_t offset;                 /* progress: bytes done */
    bool busy;                      /* running code now (not at a pause) */
    bool paused;                    /* pause_count > 0, as QEMU reports */
    int64_t speed;                  /* bytes/s, 0 = unlimited */
    BlockDeviceIoStatus io_status;
    bool ready;
    JobStatus status;
    bool auto_finalize;             /* always true in aiolab */
    bool auto_dismiss;
    char error[128];                /* why it failed, or "" */
} BlockJobInfo;

/* Job events, delivered in the main loop (QEMU's QAPI events). */
typedef enum AiolabJobEventType {
    AIOLAB_JOB_EVENT_STATUS_CHANGE, /* JOB_STATUS_CHANGE {id, status} */
    AIOLAB_JOB_EVENT_READY,         /* BLOCK_JOB_READY */
    AIOLAB_JOB_EVENT_COMPLETED,     /* BLOCK_JOB_COMPLETED (error if failed) */
    AIOLAB_JOB_EVENT_CANCELLED,     /* BLOCK_JOB_CANCELLED */
    AIOLAB_JOB_EVENT_ERROR,         /* BLOCK_JOB_ERROR {operation, action} */
} AiolabJobEventType;

typedef struct AiolabJobEvent {
    AiolabJobEventType type;
    char id[64];                    /* the job id ("device" in QEMU) */
    char job_type[16];              /* "mirror" */
    JobStatus status;               /* STATUS_CHANGE: the new status */
    int64_t len, offset, speed;     /* READY, COMPLETED, CANCELLED */
    int ret;                        /* COMPLETED: 0 or -errno */
    char error[128];                /* COMPLETED: "" or the message */
    bool is_read;                   /* ERROR: operation read or write */
    BlockErrorAction action;        /* ERROR: what was done */
} AiolabJobEvent;

typedef void AiolabJobEventFunc(const AiolabJobEvent *event, void *opaque);

/* ---------------------------------------------------------------------
 * Global state: main loop, BQL held
 * --------------------------------------------------------------------- */

/**
 * mirror_start: start copying @bs to @target while @bs stays in use.
 * @job_id: the job's id, or NULL for @bs's node name.
 * @bs: the source node.
 * @target: a node of the same size; it is moved into @bs's AioContext.
 * @creation_flags: JOB_DEFAULT or JOB_MANUAL_DISMISS.
 * @speed: bytes per second, 0 for unlimited.
 * @granularity: bytes per dirty bit, a power of two in [512, 64 MiB], or
 *               0 for 64 KiB.
 * @buf_size: bytes being copied at once at most, or 0 for 1 MiB.
 * @on_source_error: what a failed read of @bs does (QEMU's default is
 *                   BLOCKDEV_ON_ERROR_REPORT).
 * @on_target_error: what a failed write of @target does.
 * @filter_node_name: node name of the filter inserted above @bs, or NULL.
 *
 * A filter node ("mirror_top") is inserted above @bs, in a drained
 * section: every user of @bs (BlockBackends, parent nodes) now writes
 * through it, and it marks what they write in a dirty bitmap.  The job
 * copies every dirty chunk to @target in the background, a few at a
 * time; when nothing is dirty it becomes ready (event READY) and keeps
 * copying new writes.  job_complete() then switches every user over to
 * @target inside a drained section of @bs and @target, once nothing is
 * dirty: every write acknowledged before the switch is on @target.
 * job_cancel() removes the filter instead: the users stay on @bs and
 * @target is left as it is.
 *
 * Returns: the job (started), with a reference for the caller -
 * job_unref() it; or NULL with @errp set (same node, node into its own
 * subtree, different sizes, read-only target, a target that cannot move
 * to @bs's context, bad granularity or buffer size, duplicate job id).
 * Context: main loop, BQL held.
 */
AIOLAB_API Job *mirror_start(const char *job_id, BlockDriverState *bs,
                             BlockDriverState *target, int creation_flags,
                             int64_t speed, uint32_t granularity,
                             int64_t buf_size,
                             BlockdevOnError on_source_error,
                             BlockdevOnError on_target_error,
                             const char *filter_node_name, Error **errp);

/**
 * block_job_create: create (not start) a job of @driver on node @bs.
 * @job_id: an id (a letter, then letters, digits, '-', '.', '_'), or NULL
 *          for @bs's node name.
 * @driver: what the job does; must outlive the job.
 * @bs: the job's main node: an edge "main node" from the job to it.
 * @speed: initial rate limit in bytes per second (0 = none).
 * @flags: JOB_DEFAULT or JOB_MANUAL_DISMISS.
 * @opaque: the driver's state, aiolab_job_get_opaque().
 *
 * The job lives in @bs's AioContext, in status created, with one pause
 * (pause_count 1) that job_start() takes away.
 * Returns: the job, with a reference for the caller; or NULL with @errp
 * set (bad or duplicate id, negative speed, manual finalize).
 * Context: main loop, BQL held.
 */
AIOLAB_API Job *block_job_create(const char *job_id, const JobDriver *driver,
                                 BlockDriverState *bs, int64_t speed,
                                 int flags, void *opaque, Error **errp);

/**
 * block_job_add_bdrv: make the job a parent of @bs too (edge @name): its
 * drains pause the job, and its AioContext moves with the job's.
 * Returns: 0, or -errno with @errp set (@bs cannot join the job's
 * context).
 * Context: main loop, BQL held.
 */
AIOLAB_API int block_job_add_bdrv(Job *job, const char *name,
                                  BlockDriverState *bs, Error **errp);

/**
 * block_job_remove_all_bdrv: drop every edge of the job (a job does it
 * before it changes the graph around its nodes; all are dropped when it
 * concludes).
 * Context: main loop, BQL held.
 */
AIOLAB_API void block_job_remove_all_bdrv(Job *job);

/**
 * job_start: start a created job: its coroutine is entered in the job's
 * AioContext (at once if that is the caller's).
 * Context: main loop, BQL held.
 */
AIOLAB_API void job_start(Job *job);

/** job_ref: take a reference.  Context: main loop, BQL held. */
AIOLAB_API void job_ref(Job *job);

/**
 * job_unref: drop a reference; the last one frees the job (it must be
 * concluded and dismissed, or never started).  NULL is allowed.
 * Context: main loop, BQL held.
 */
AIOLAB_API void job_unref(Job *job);

/**
 * job_get: the job with id @id (not dismissed), or NULL.  No reference.
 * Context: main loop, BQL held.
 */
AIOLAB_API Job *job_get(const char *id);

/**
 * job_next: the job after @job in the job list (the first if NULL), or
 * NULL.  No reference.
 * Context: main loop, BQL held.
 */
AIOLAB_API Job *job_next(Job *job);

/**
 * job_pause: ask the job to pause (pause_count++); a sleeping job is
 * woken so that it reaches a pause point.  Drained sections do this
 * through the job's edges.
 * Context: main loop, BQL held.
 */
AIOLAB_API void job_pause(Job *job);

/**
 * job_resume: undo one job_pause(); at pause_count 0 the job is
 * re-entered (scheduled in its context: it never runs inside this call).
 * Resuming a job that is not paused aborts.
 * Context: main loop, BQL held.
 */
AIOLAB_API void job_resume(Job *job);

/**
 * job_user_pause: QMP block-job-pause: a pause of the user's own.
 * Context: main loop, BQL held.
 */
AIOLAB_API void job_user_pause(Job *job, Error **errp);

/**
 * job_user_resume: QMP block-job-resume; also clears an I/O error status
 * (a job stopped by on-error=stop resumes this way).
 * Context: main loop, BQL held.
 */
AIOLAB_API void job_user_resume(Job *job, Error **errp);

/**
 * job_user_paused: paused by the user (or by on-error=stop)?
 * Context: main loop, BQL held.
 */
AIOLAB_API bool job_user_paused(Job *job);

/**
 * job_complete: QMP block-job-complete: ask a ready job to finish (the
 * mirror: switch over).  Returns at once; the job concludes later.
 * Fails (with QEMU's messages) unless the job is ready and not cancelled.
 * Context: main loop, BQL held.
 */
AIOLAB_API void job_complete(Job *job, Error **errp);

/**
 * job_complete_sync: job_complete(), then wait (AIO_WAIT_WHILE, the main
 * loop keeps running) until the job has concluded.
 * Returns: the job's result: 0, -errno, -ECANCELED; -EBUSY with @errp set
 * if it could not be completed.
 * Context: main loop, BQL held.
 */
AIOLAB_API int job_complete_sync(Job *job, Error **errp);

/**
 * job_cancel: QMP block-job-cancel.  @force: a hard cancel.  A mirror
 * that is ready and cancelled without @force completes without switching
 * over (its target is then a consistent copy, event COMPLETED), as in
 * QEMU; otherwise the job stops soon (event CANCELLED).  A concluded job
 * (manual dismiss) is dismissed.  Also undoes a user pause.
 * Context: main loop, BQL held.
 */
AIOLAB_API void job_cancel(Job *job, bool force);

/**
 * job_cancel_sync: job_cancel(), then wait until the job has concluded.
 * Returns: the job's result (-ECANCELED for a cancelled job).
 * Context: main loop, BQL held.
 */
AIOLAB_API int job_cancel_sync(Job *job, bool force);

/**
 * job_cancel_sync_all: job_cancel_sync(job, true) for every job (QEMU
 * calls it at shutdown).
 * Context: main loop, BQL held.
 */
AIOLAB_API void job_cancel_sync_all(void);

/**
 * job_dismiss: QMP job-dismiss: remove a concluded job of a
 * JOB_MANUAL_DISMISS creator from the list.
 * Context: main loop, BQL held.
 */
AIOLAB_API void job_dismiss(Job *job, Error **errp);

/**
 * block_job_set_speed: QMP block-job-set-speed: bytes per second, 0 for
 * unlimited.  Returns: false with @errp set if @speed is negative or the
 * job has finished.
 * Context: main loop, BQL held.
 */
AIOLAB_API bool block_job_set_speed(Job *job, int64_t speed, Error **errp);

/**
 * block_job_query: fill @info for query-block-jobs.
 * Context: main loop, BQL held.
 */
AIOLAB_API void block_job_query(Job *job, BlockJobInfo *info);

/**
 * aiolab_block_job_query_all: query-block-jobs: up to @max entries into
 * @out, in creation order (dismissed jobs are gone).
 * Returns: how many jobs there are.
 * Context: main loop, BQL held.
 */
AIOLAB_API size_t aiolab_block_job_query_all(BlockJobInfo *out, size_t max);

/**
 * aiolab_job_add_event_listener: call @fn(event, @opaque) for every job
 * event, in the main loop with the BQL held, in the order the events
 * happened (events of a job's coroutine are queued and delivered by a BH,
 * so a state a listener sees may already be older than the job's).
 * Context: main loop, BQL held.
 */
AIOLAB_API void aiolab_job_add_event_listener(AiolabJobEventFunc *fn,
                                              void *opaque);

/**
 * aiolab_job_remove_event_listener: remove a listener added with these
 * values (aborts if there is none).
 * Context: main loop, BQL held (also from inside a listener).
 */
AIOLAB_API void aiolab_job_remove_event_listener(AiolabJobEventFunc *fn,
                                                 void *opaque);

/* ---------------------------------------------------------------------
 * Any thread (snapshots: the job's coroutine moves on meanwhile)
 * --------------------------------------------------------------------- */

/** job_is_ready: ready or standby?  Context: any thread. */
AIOLAB_API bool job_is_ready(Job *job);

/**
 * job_is_completed: has run() finished (waiting, pending, aborting,
 * concluded, null)?  Context: any thread.
 */
AIOLAB_API bool job_is_completed(Job *job);

/** job_is_cancelled: hard-cancelled?  Context: any thread. */
AIOLAB_API bool job_is_cancelled(Job *job);

/**
 * job_cancel_requested: cancelled at all (soft or hard)?
 * Context: any thread.
 */
AIOLAB_API bool job_cancel_requested(Job *job);

/**
 * JobStatus_str: "created", "running", ... (QEMU's QAPI names).
 * Context: any thread.
 */
AIOLAB_API const char *JobStatus_str(JobStatus status);

/** aiolab_job_get_id: the job's id.  Context: any thread. */
AIOLAB_API const char *aiolab_job_get_id(Job *job);

/** aiolab_job_get_status: the job's status.  Context: any thread. */
AIOLAB_API JobStatus aiolab_job_get_status(Job *job);

/**
 * aiolab_job_get_aio_context: where the job's coroutine runs (QEMU's
 * job->aio_context).  Context: any thread.
 */
AIOLAB_API AioContext *aiolab_job_get_aio_context(Job *job);

/**
 * aiolab_job_get_pause_count: pause requests now: one per quiesced edge,
 * one for a user pause, one before job_start().  Context: any thread.
 */
AIOLAB_API int aiolab_job_get_pause_count(Job *job);

/**
 * aiolab_job_is_paused: stopped at a pause point (QEMU's job->paused)?
 * Context: any thread.
 */
AIOLAB_API bool aiolab_job_is_paused(Job *job);

/**
 * aiolab_job_is_busy: running (not paused, not sleeping, QEMU's
 * job->busy)?  Context: any thread.
 */
AIOLAB_API bool aiolab_job_is_busy(Job *job);

/**
 * aiolab_job_get_progress: bytes done (@current) of @total (QEMU's
 * progress_get_snapshot).  Context: any thread.
 */
AIOLAB_API void aiolab_job_get_progress(Job *job, uint64_t *current,
                                        uint64_t *total);

/**
 * aiolab_job_get_ret: the result once completed (0, -errno, -ECANCELED),
 * 0 before.  Context: any thread.
 */
AIOLAB_API int aiolab_job_get_ret(Job *job);

/**
 * aiolab_job_get_opaque: the driver state given to block_job_create().
 * Context: any thread.
 */
AIOLAB_API void *aiolab_job_get_opaque(Job *job);

/**
 * job_enter: wake the job if it sleeps (not if it is paused by a drain:
 * it re-checks and pauses again).  Scheduled in the job's context.
 * Context: any thread.
 */
AIOLAB_API void job_enter(Job *job);

/* ---------------------------------------------------------------------
 * The job's own code (JobDriver.run and its helpers)
 * --------------------------------------------------------------------- */

/**
 * job_pause_point: if a pause was requested (a drain, a user pause):
 * call the driver's pause, stop here (status paused or standby, busy
 * false: now the drain may finish) until the last job_resume(), then
 * the driver's resume.  If the job's AioContext changed meanwhile, the
 * coroutine moves there before it returns.  A hard-cancelled job does
 * not pause.
 * Context: coroutine_fn, the job's coroutine.
 */
AIOLAB_API void coroutine_fn job_pause_point(Job *job);

/**
 * job_sleep_ns: sleep @ns (REALTIME clock), woken early by job_enter()
 * (cancel, complete, a pause request); then a pause point.  Returns at
 * once if the job is hard-cancelled.
 * Context: coroutine_fn, the job's coroutine.
 */
AIOLAB_API void coroutine_fn job_sleep_ns(Job *job, int64_t ns);

/**
 * job_yield: sleep until job_enter(); then a pause point.
 * Context: coroutine_fn, the job's coroutine.
 */
AIOLAB_API void coroutine_fn job_yield(Job *job);

/**
 * job_transition_to_ready: running -> ready, with a READY event.
 * Context: the job's coroutine (any thread).
 */
AIOLAB_API void job_transition_to_ready(Job *job);

/**
 * job_progress_update / job_progress_set_remaining /
 * job_progress_increase_remaining: progress in bytes: @done more bytes
 * are done; @remaining bytes are left to do; @delta more to do.
 * Context: any thread.
 */
AIOLAB_API void job_progress_update(Job *job, uint64_t done);
AIOLAB_API void job_progress_set_remaining(Job *job, uint64_t remaining);
AIOLAB_API void job_progress_increase_remaining(Job *job, uint64_t delta);

/**
 * block_job_error_action: decide what a failed request (-@error, errno
 * positive) does under @on_err, post an ERROR event, and for STOP pause
 * the job as a user pause (io_status failed or nospace).
 * Returns: the action; the caller retries on IGNORE and STOP, fails on
 * REPORT.
 * Context: the job's coroutine (any thread).
 */
AIOLAB_API BlockErrorAction block_job_error_action(Job *job,
                                                   BlockdevOnError on_err,
                                                   bool is_read, int error);

/**
 * block_job_ratelimit_processed_bytes / block_job_ratelimit_sleep: count
 * @n bytes against the speed limit; sleep (a pause point too) if the
 * current 100 ms slice is used up, else just yield once to the event loop
 * (job_sleep_ns(job, 0)).
 * Context: coroutine_fn, the job's coroutine.
 */
AIOLAB_API void block_job_ratelimit_processed_bytes(Job *job, uint64_t n);
AIOLAB_API void coroutine_fn block_job_ratelimit_sleep(Job *job);

/* ---------------------------------------------------------------------
 * Test-only: the bug drained sections exist to prevent
 * --------------------------------------------------------------------- */

/**
 * aiolab_test_replace_node_undrained: TEST ONLY - NEVER USE IT.  Like
 * bdrv_replace_node() (every parent of @from now points to @to) but
 * without draining either node: a request in flight in @from stays
 * there, completes there, and is acknowledged after the switch although
 * its data is on the old node.  tests/c/test-block-race.c calls it to show
 * that outcome next to the drained switch that never has it.
 * Returns: 0, or -errno with @errp set (different AioContexts).
 * Context: main loop, BQL held.
 */
AIOLAB_API int aiolab_test_replace_node_undrained(BlockDriverState *from,
                                                  BlockDriverState *to,
                                                  Error **errp);

#endif
