/* SPDX-License-Identifier: MIT */
/*
 * block/blockjob_int.h - the insides of a job, shared by job.c (the state
 * machine, pause points, completion), blockjob.c (edges to nodes, speed,
 * errors, query) and mirror.c (QEMU's include/qemu/job.h Job fields and
 * include/block/blockjob_int.h).  Not a public header.
 */
#ifndef AIOLAB_BLOCKJOB_INT_H
#define AIOLAB_BLOCKJOB_INT_H

#include "block/block_int.h"

#define JOB_MAGIC 0x4a4f4221u       /* "JOB!" */

/* QEMU's BLOCK_JOB_SLICE_TIME: a job yields to its event loop at least
 * this often, and rate limits count bytes per slice. */
#define BLOCK_JOB_SLICE_TIME 100000000LL    /* 100 ms */

struct Job {
    unsigned magic;

    /* --- Set at creation, then read-only ------------------------------ */
    char *id;
    const JobDriver *driver;
    void *opaque;                   /* the driver's state */
    bool auto_dismiss;

    /* --- Main loop, BQL held ------------------------------------------- */
    int refcnt;
    QTAILQ_ENTRY(Job) job_list;     /* until dismissed */
    bool in_list;
    bool early_fail;                /* job_early_fail(): no driver free */
    BdrvChild **nodes;              /* edges to the job's nodes (child_job) */
    int nb_nodes;
    QEMUTimer *sleep_timer;         /* in the main context, as QEMU's */

    /* --- Protected by job_mutex (job_lock()) ----------------------------
     * The job's coroutine (any thread) and the main loop both use these. */
    AioContext *aio_context;        /* changes only while paused/finished */
    Coroutine *co;                  /* NULL until job_start() */
    JobStatus status;
    int pause_count;                /* pause requests (drains, user, start) */
    bool paused;                    /* stopped at a pause point */
    bool busy;                      /* not paused, not sleeping */
    bool user_paused;
    bool cancelled;                 /* job_cancel() was called */
    bool force_cancel;              /* ... and it is a hard cancel */
    bool deferred_to_main_loop;     /* run() returned; job_exit() pending */
    int ret;                        /* run()/prepare() result */
    Error *err;                     /* run()'s error, if any */
    uint64_t progress_current;
    uint64_t progress_total;
    int64_t speed;
    BlockDeviceIoStatus iostatus;

    /* --- The job's coroutine only -------------------------------------- */
    int64_t slice_end_ns;           /* rate limit: current slice */
    uint64_t slice_quota;           /* bytes allowed in it */
    uint64_t slice_done;            /* bytes dispatched in it */
    int64_t last_yield_ns;          /* for the yield-every-slice rule */
};

/* job.c */
void job_lock(void);
void job_unlock(void);
/* Assertable: does this thread hold job_mutex? */
bool job_locked(void);
/* Post an event (any thread; with or without job_mutex held).  The
 * event's id/type fields are filled from @job. */
void job_event_post(Job *job, AiolabJobEvent *ev);
/* Under job_mutex: status transitions and helpers. */
void job_state_transition_locked(Job *job, JobStatus s);
bool job_is_completed_locked(Job *job);
bool job_is_cancelled_locked(Job *job);
void job_enter_cond_locked(Job *job, bool (*fn)(Job *job));
/* Allocate a job in @ctx and list it (block_job_create adds the rest). */
Job *job_create(const char *job_id, const JobDriver *driver, AioContext *ctx,
                int flags, void *opaque, Error **errp);
void job_early_fail(Job *job);
void job_progress_snapshot_locked(Job *job, int64_t *current,
                                  int64_t *total);

/* QMP verbs (job.c checks them against the status) */
enum { VERB_CANCEL, VERB_PAUSE, VERB_RESUME, VERB_SET_SPEED, VERB_COMPLETE,
       VERB_DISMISS, VERB__MAX };
bool job_apply_verb_locked(Job *job, int verb, Error **errp);
void job_do_dismiss_locked(Job *job);

/* blockjob.c */
extern const BdrvChildClass child_job;
bool block_job_has_bdrv(Job *job, BlockDriverState *bs);

#endif
