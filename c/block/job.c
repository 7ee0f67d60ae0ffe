/* SPDX-License-Identifier: MIT */
/*
 * block/job.c - the job core: a coroutine that pauses for drained
 * sections, and the state machine the main loop drives (QEMU's job.c).
 *
 * A job's life:
 *
 *                 block_job_create (pause_count 1, one "not started" pause)
 *                      |
 *                  [created] --job_cancel--------------------------+
 *                      | job_start: pause_count--, coroutine entered |
 *                      v  in the job's AioContext                    |
 *     +--------->  [running] <-----------> [paused]                  |
 *     |                |       pause point    (pause_count > 0)      |
 *     |                | job_transition_to_ready (mirror: in sync)   |
 *     |                v                                             |
 *     |             [ready] <-------------> [standby]                |
 *     |                |       pause point                           |
 *     |                | job_complete: the mirror drains its source,  |
 *     |                | checks nothing is dirty, leaves run() with  |
 *     |                | the source still drained                    |
 *     |                v                                             |
 *     |   run() returns: job_exit() is a BH in the main loop          |
 *     |        ret == 0, not cancelled        error, or cancelled    |
 *     |                v                              v              |
 *     |   [waiting] -> [pending]: prepare  --fails--> [aborting] <----+
 *     |                | commit (mirror: switch the   | abort (mirror:
 *     |                | users to the target, inside  | users back to
 *     |                | drains of source and target) | the source)
 *     |                v                              v
 *     |               [concluded]: clean, COMPLETED or CANCELLED event
 *     |                | auto-dismiss, or job_dismiss()
 *     |                v
 *     |             [null]: out of the list; freed at the last job_unref
 *     |
 *     +-- job_resume: pause_count 0 -> re-entered (scheduled in its
 *         context; drained_end never runs job code itself)
 *
 * Invariants:
 *  1. A job stops only at pause points, and only its own coroutine runs
 *     it; busy is false exactly while the coroutine is parked (paused or
 *     sleeping) - so a drain that waits for !busy knows no job code runs.
 *  2. job->aio_context changes only while the job is parked by a drain
 *     (the edges' change_aio_ctx hook, inside the drained section of
 *     every node involved); the coroutine moves itself there when it
 *     wakes up (job_do_yield_locked), before running any job code.
 *  3. pause_count counts requests, not callers: one per quiesced edge,
 *     one for a user pause, one before the start.  A hard-cancelled job
 *     does not pause: it is on its way out.
 *  4. Every field two threads share is under job_mutex; every change a
 *     waiter polls for (busy, status) is followed by aio_wait_kick().
 *
 * Neighbours: blockjob.c (the job's edges to its nodes: how drains and
 * AioContext changes reach a job), job-events.c (events for the monitor),
 * job-qmp.c (pause/resume/dismiss/set-speed verbs, accessors), mirror.c.
 *
 * Where QEMU differs: one Job type (QEMU's BlockJob embeds a Job); no
 * transactions and no manual finalize, so waiting -> pending -> prepare
 * happen in one step; job_enter() always schedules the coroutine (QEMU's
 * aio_co_wake() enters a job of the caller's own context at once - a
 * main-loop job then runs inside bdrv_drained_end() up to its next
 * yield); a deferred job (run() returned) is not busy for drains.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <ctype.h>
#include "block/blockjob_int.h"
#include "util/mem.h"

/* job_mutex protects every Job field marked so, in every job. */
static pthread_mutex_t job_mutex = PTHREAD_MUTEX_INITIALIZER;

static QTAILQ_HEAD(, Job) jobs = QTAILQ_HEAD_INITIALIZER(jobs);

/*
 * For job_locked(): how deep this thread is in job_lock().  Job code
 * runs in coroutines that move between threads, and compilers cache TLS
 * addresses across the move (see c/util/coroutine-ucontext.c).  noinline
 * alone is not enough: clang still propagates the returned address into
 * the caller and reuses it after a yield.  The empty asm makes the
 * result opaque, so each call computes it on the thread that runs it.
 */
static __thread int job_lock_depth;

static __attribute__((noinline)) int *job_lock_depth_ptr(void)
{
    int *p = &job_lock_depth;

    __asm__ __volatile__("" : "+r"(p));
    return p;
}

void job_lock(void)
{
    pthread_mutex_lock(&job_mutex);
    (*job_lock_depth_ptr())++;
}

void job_unlock(void)
{
    (*job_lock_depth_ptr())--;
    pthread_mutex_unlock(&job_mutex);
}

bool job_locked(void)
{
    return *job_lock_depth_ptr() > 0;
}

/* --- states and verbs ---------------------------------------------------- */

static const char *const job_status_names[JOB_STATUS__MAX] = {
    "undefined", "created", "running", "paused", "ready", "standby",
    "waiting", "pending", "aborting", "concluded", "null",
};

const char *JobStatus_str(JobStatus status)
{
    return status >= 0 && status < JOB_STATUS__MAX ?
           job_status_names[status] : "invalid";
}

/* Which status may follow which (the diagram above, as QEMU's JobSTT).
 * Rows: from; bits: to (1 << JOB_STATUS_*). */
#define S(x) (1u << JOB_STATUS_##x)
static const unsigned job_transitions[JOB_STATUS__MAX] = {
    [JOB_STATUS_UNDEFINED] = S(CREATED),
    [JOB_STATUS_CREATED]   = S(RUNNING) | S(ABORTING) | S(NULL),
    [JOB_STATUS_RUNNING]   = S(PAUSED) | S(READY) | S(WAITING) | S(ABORTING),
    [JOB_STATUS_PAUSED]    = S(RUNNING),
    [JOB_STATUS_READY]     = S(STANDBY) | S(WAITING) | S(ABORTING),
    [JOB_STATUS_STANDBY]   = S(READY),
    [JOB_STATUS_WAITING]   = S(PENDING) | S(ABORTING),
    [JOB_STATUS_PENDING]   = S(ABORTING) | S(CONCLUDED),
    [JOB_STATUS_ABORTING]  = S(ABORTING) | S(CONCLUDED),
    [JOB_STATUS_CONCLUDED] = S(NULL),
    [JOB_STATUS_NULL]      = 0,
};

/* QMP verbs and the states that accept them (QEMU's JobVerbTable). */
static const char *const verb_names[VERB__MAX] = {
    "cancel", "pause", "resume", "set-speed", "complete", "dismiss",
};
#define LIVE (S(CREATED) | S(RUNNING) | S(PAUSED) | S(READY) | S(STANDBY))
static const unsigned job_verbs[VERB__MAX] = {
    [VERB_CANCEL] = LIVE | S(WAITING) | S(PENDING),
    [VERB_PAUSE] = LIVE,
    [VERB_RESUME] = LIVE,
    [VERB_SET_SPEED] = LIVE,
    [VERB_COMPLETE] = S(READY),
    [VERB_DISMISS] = S(CONCLUDED),
};
#undef LIVE
#undef S

bool job_apply_verb_locked(Job *job, int verb, Error **errp)
{
    if (job_verbs[verb] & (1u << job->status)) {
        return true;
    }
    error_setg(errp, "Job '%s' in state '%s' cannot accept command verb "
               "'%s'", job->id, JobStatus_str(job->status),
               verb_names[verb]);
    return false;
}

void job_state_transition_locked(Job *job, JobStatus s)
{
    AiolabJobEvent ev = { .type = AIOLAB_JOB_EVENT_STATUS_CHANGE,
                          .status = s };

    AIOLAB_ASSERT(job_locked(), "job '%s': job_mutex not held", job->id);
    AIOLAB_ASSERT(job_transitions[job->status] & (1u << s),
                  "job '%s': no transition from '%s' to '%s'", job->id,
                  JobStatus_str(job->status), JobStatus_str(s));
    if (job->status == s) {
        return;
    }
    job->status = s;
    job_event_post(job, &ev);
    aio_wait_kick();                /* sync waiters poll the status */
}

bool job_is_completed_locked(Job *job)
{
    return job->status >= JOB_STATUS_WAITING;
}

bool job_is_cancelled_locked(Job *job)
{
    return job->cancelled && job->force_cancel;
}

/* --- the job list, references -------------------------------------------- */

/* QEMU's id_wellformed(). */
static bool job_id_wellformed(const char *id)
{
    if (!isalpha((unsigned char)id[0])) {
        return false;
    }
    for (id++; *id; id++) {
        if (!isalnum((unsigned char)*id) && !strchr("-._", *id)) {
            return false;
        }
    }
    return true;
}

Job *job_get(const char *id)
{
    Job *job;

    GLOBAL_STATE_CODE();
    REQUIRE_NONNULL(id);
    QTAILQ_FOREACH(job, &jobs, job_list) {
        if (!strcmp(job->id, id)) {
            return job;
        }
    }
    return NULL;
}

Job *job_next(Job *job)
{
    GLOBAL_STATE_CODE();
    if (!job) {
        return QTAILQ_FIRST(&jobs);
    }
    REQUIRE_LIVE(job, JOB_MAGIC, "Job");
    return job->in_list ? QTAILQ_NEXT(job, job_list) : NULL;
}

static void job_sleep_timer_cb(void *opaque)
{
    job_enter(opaque);
}

/* Allocate and list a job (block_job_create adds the block parts). */
Job *job_create(const char *job_id, const JobDriver *driver, AioContext *ctx,
                int flags, void *opaque, Error **errp)
{
    Job *job;

    GLOBAL_STATE_CODE();
    REQUIRE_NONNULL(driver);
    REQUIRE_NONNULL(driver->run);
    if (flags & JOB_MANUAL_FINALIZE) {
        error_setg(errp, "aiolab jobs finalize automatically "
                   "(auto-finalize=off is not supported)");
        return NULL;
    }
    if (!job_id_wellformed(job_id) || strlen(job_id) >= 64) {
        error_setg(errp, "Invalid job ID '%s'", job_id);
        return NULL;
    }
    if (job_get(job_id)) {
        error_setg(errp, "Job ID '%s' already in use", job_id);
        return NULL;
    }
    job = aiolab_xcalloc(1, sizeof(*job));
    job->magic = JOB_MAGIC;
    job->id = aiolab_xstrdup(job_id);
    job->driver = driver;
    job->opaque = opaque;
    job->auto_dismiss = !(flags & JOB_MANUAL_DISMISS);
    job->refcnt = 2;                /* the list's and the creator's */
    job->aio_context = ctx;
    job->pause_count = 1;           /* job_start() takes it away */
    job->paused = true;
    job->sleep_timer = aio_timer_new(qemu_get_aio_context(),
                                     QEMU_CLOCK_REALTIME, SCALE_NS,
                                     job_sleep_timer_cb, job);
    QTAILQ_INSERT_TAIL(&jobs, job, job_list);   /* creation order */
    job->in_list = true;
    job_lock();
    job_state_transition_locked(job, JOB_STATUS_CREATED);
    job_unlock();
    return job;
}

/* Creation failed half-way (block_job_create, mirror_start): unlist and
 * free the job; the driver state stays the caller's (no driver free). */
void job_early_fail(Job *job)
{
    GLOBAL_STATE_CODE();
    REQUIRE_LIVE(job, JOB_MAGIC, "Job");
    job_lock();
    AIOLAB_ASSERT(job->status == JOB_STATUS_CREATED && !job->co &&
                  job->refcnt == 2, "job '%s': job_early_fail() after "
                  "the job went public", job->id);
    job_do_dismiss_locked(job);
    job_unlock();
    job->early_fail = true;
    job_unref(job);
    job_unref(job);
}

void job_ref(Job *job)
{
    GLOBAL_STATE_CODE();
    REQUIRE_LIVE(job, JOB_MAGIC, "Job");
    job->refcnt++;
}

void job_unref(Job *job)
{
    GLOBAL_STATE_CODE();
    if (!job) {
        return;
    }
    REQUIRE_LIVE(job, JOB_MAGIC, "Job");
    AIOLAB_ASSERT(job->refcnt > 0, "job '%s' has no reference left",
                  job->id);
    if (--job->refcnt > 0) {
        return;
    }
    AIOLAB_ASSERT(!job->in_list, "job '%s' freed while still listed",
                  job->id);
    block_job_remove_all_bdrv(job);
    if (job->driver->free && !job->early_fail) {
        job->driver->free(job);
    }
    timer_del(job->sleep_timer);
    timer_free(job->sleep_timer);
    error_free(job->err);
    free(job->id);
    job->magic = 0;
    free(job);
}

/* --- entering, pausing, sleeping ----------------------------------------- */

void job_enter_cond_locked(Job *job, bool (*fn)(Job *job))
{
    Coroutine *co;

    if (!job->co || job->busy || job->deferred_to_main_loop) {
        return;
    }
    if (fn && !fn(job)) {
        return;
    }
    timer_del(job->sleep_timer);
    job->busy = true;
    co = job->co;
    job_unlock();
    /* Always through the context's BH: the coroutine may still be on
     * its way into qemu_coroutine_yield() in its own thread (the BH runs
     * only after that), and the caller (drained_end) must not run it. */
    aio_co_schedule(qemu_coroutine_get_aio_context(co), co);
    job_lock();
}

void job_enter(Job *job)
{
    REQUIRE_LIVE(job, JOB_MAGIC, "Job");
    job_lock();
    job_enter_cond_locked(job, NULL);
    job_unlock();
}

static bool job_timer_not_pending(Job *job)
{
    return !timer_pending(job->sleep_timer);
}

void job_pause(Job *job)
{
    GLOBAL_STATE_CODE();
    REQUIRE_LIVE(job, JOB_MAGIC, "Job");
    job_lock();
    job->pause_count++;
    if (!job->paused) {
        job_enter_cond_locked(job, NULL);   /* a sleeper must come out */
    }
    job_unlock();
}

void job_resume(Job *job)
{
    GLOBAL_STATE_CODE();
    REQUIRE_LIVE(job, JOB_MAGIC, "Job");
    job_lock();
    if (job->pause_count <= 0) {
        aiolab_die(__func__, "job '%s' is not paused (pause_count 0) "
                   "(every job_resume matches a job_pause)", job->id);
    }
    if (--job->pause_count == 0) {
        /* A sleeping job wakes at its timer, not now. */
        job_enter_cond_locked(job, job_timer_not_pending);
    }
    job_unlock();
}

/*
 * Park the job's coroutine until job_enter() (or the sleep timer at @ns,
 * unless -1).  Then follow the job's AioContext if it changed meanwhile.
 * Called and returns with job_mutex held.
 */
static void coroutine_fn job_do_yield_locked(Job *job, int64_t ns)
{
    AioContext *ctx;

    if (ns != -1) {
        timer_mod_ns(job->sleep_timer, ns);
    }
    job->busy = false;
    job_unlock();
    aio_wait_kick();                /* a drain polls !busy */
    qemu_coroutine_yield();
    job_lock();
    /* Woken in the context we slept in; moved meanwhile?  Invariant 2. */
    while ((ctx = job->aio_context) != qemu_get_current_aio_context()) {
        job_unlock();
        aio_co_reschedule_self(ctx);
        job_lock();
    }
    AIOLAB_ASSERT(job->busy, "job '%s' woken without job_enter()",
                  job->id);
}

static bool job_should_pause_locked(Job *job)
{
    return job->pause_count > 0;
}

void coroutine_fn job_pause_point(Job *job)
{
    JobStatus status;

    AIOLAB_REQUIRE(qemu_in_coroutine(), "called outside a coroutine "
                   RULE_CO);
    job_lock();
    if (!job_should_pause_locked(job) || job_is_cancelled_locked(job)) {
        job_unlock();
        return;
    }
    job_unlock();
    if (job->driver->pause) {
        job->driver->pause(job);    /* e.g. wait for requests in flight */
    }
    job_lock();
    status = job->status;
    if (job_should_pause_locked(job) && !job_is_cancelled_locked(job)) {
        job_state_transition_locked(job, status == JOB_STATUS_READY ?
                                    JOB_STATUS_STANDBY : JOB_STATUS_PAUSED);
        job->paused = true;
        /* Woken by job_enter (a resume, a cancel, a completion): pause
         * again unless the reason to pause is gone. */
        while (job_should_pause_locked(job) &&
               !job_is_cancelled_locked(job)) {
            job_do_yield_locked(job, -1);
        }
        job->paused = false;
        job_state_transition_locked(job, status);
        aio_wait_kick();            /* tests wait for !paused */
    }
    job_unlock();
    if (job->driver->resume) {
        job->driver->resume(job);
    }
}

/* job_sleep_ns() and job_yield(): unless cancelled, yield until
 * @deadline_ns (-1: until job_enter()) if no pause is due, then the
 * pause point. */
static void coroutine_fn job_yield_until(Job *job, int64_t deadline_ns)
{
    job_lock();
    if (job_is_cancelled_locked(job)) {
        job_unlock();
        return;
    }
    if (!job_should_pause_locked(job)) {
        job_do_yield_locked(job, deadline_ns);
    }
    job->last_yield_ns = qemu_clock_get_ns(QEMU_CLOCK_REALTIME);
    job_unlock();
    job_pause_point(job);
}

void coroutine_fn job_sleep_ns(Job *job, int64_t ns)
{
    AIOLAB_REQUIRE(qemu_in_coroutine(), "called outside a coroutine "
                   RULE_CO);
    job_yield_until(job, qemu_clock_get_ns(QEMU_CLOCK_REALTIME) + ns);
}

void coroutine_fn job_yield(Job *job)
{
    AIOLAB_REQUIRE(qemu_in_coroutine(), "called outside a coroutine "
                   RULE_CO);
    job_yield_until(job, -1);
}

/* --- running and finishing ----------------------------------------------- */

static void job_exit(void *opaque);

static void coroutine_fn job_co_entry(void *opaque)
{
    Job *job = opaque;
    Error *err = NULL;
    int ret;

    job->last_yield_ns = qemu_clock_get_ns(QEMU_CLOCK_REALTIME);
    job_pause_point(job);           /* a drain may have come first */
    ret = job->driver->run(job, &err);
    job_lock();
    job->ret = ret;
    if (err) {
        error_free(job->err);
        job->err = err;
    }
    job->deferred_to_main_loop = true;  /* job_enter() does nothing now */
    job_unlock();
    aio_wait_kick();
    /* The rest happens in the main loop; the job outlives this
     * coroutine (the list holds it) and we touch it no more. */
    aio_bh_schedule_oneshot(qemu_get_aio_context(), job_exit, job);
}

void job_start(Job *job)
{
    AioContext *ctx;

    GLOBAL_STATE_CODE();
    REQUIRE_LIVE(job, JOB_MAGIC, "Job");
    job_lock();
    AIOLAB_REQUIRE(job->status == JOB_STATUS_CREATED && !job->co,
                   "job '%s' already started", job->id);
    job->co = qemu_coroutine_create(job_co_entry, job);
    job->pause_count--;
    job->busy = true;
    job->paused = false;
    job_state_transition_locked(job, JOB_STATUS_RUNNING);
    ctx = job->aio_context;
    job_unlock();
    aio_co_enter(ctx, job->co);
}

void job_do_dismiss_locked(Job *job)
{
    job_state_transition_locked(job, JOB_STATUS_NULL);
    QTAILQ_REMOVE(&jobs, job, job_list);
    job->in_list = false;
}

static void job_post_final_event_locked(Job *job)
{
    AiolabJobEvent ev = { .type = AIOLAB_JOB_EVENT_COMPLETED };

    if (job_is_cancelled_locked(job)) {
        ev.type = AIOLAB_JOB_EVENT_CANCELLED;
    } else if (job->ret) {
        snprintf(ev.error, sizeof(ev.error), "%s", job->err ?
                 error_get_pretty(job->err) : strerror(-job->ret));
    }
    ev.ret = job->ret;
    ev.len = job->progress_total;
    ev.offset = job->progress_current;
    ev.speed = job->speed;
    job_event_post(job, &ev);
}

/*
 * The end of a job, in the main loop: the job's coroutine has returned
 * (or it never started).  Graph changes are main-loop work, so the
 * driver's prepare/commit/abort run here.
 */
static void job_finish_in_main_loop(Job *job)
{
    int ret;

    job_lock();
    ret = job->ret;
    if (ret == 0 && job_is_cancelled_locked(job)) {
        ret = -ECANCELED;           /* QEMU's job_update_rc() */
    }
    if (ret == 0) {
        job_state_transition_locked(job, JOB_STATUS_WAITING);
        job_state_transition_locked(job, JOB_STATUS_PENDING);
        job_unlock();
        ret = job->driver->prepare ? job->driver->prepare(job) : 0;
        job_lock();
    }
    job->ret = ret;
    if (ret < 0 && !job->err) {
        error_setg(&job->err, "%s", strerror(-ret));
    }
    if (ret == 0) {
        job_unlock();
        if (job->driver->commit) {
            job->driver->commit(job);
        }
    } else {
        job_state_transition_locked(job, JOB_STATUS_ABORTING);
        job_unlock();
        if (job->driver->abort) {
            job->driver->abort(job);
        }
    }
    if (job->driver->clean) {
        job->driver->clean(job);
    }
    block_job_remove_all_bdrv(job);     /* a concluded job holds no node */
    job_lock();
    job_post_final_event_locked(job);
    job_state_transition_locked(job, JOB_STATUS_CONCLUDED);
    if (job->auto_dismiss) {
        job_do_dismiss_locked(job);
    }
    job_unlock();
    aio_wait_kick();
}

static void job_exit(void *opaque)
{
    Job *job = opaque;
    bool listed;

    GLOBAL_STATE_CODE();
    job_ref(job);
    job_finish_in_main_loop(job);
    listed = job->in_list;
    job_unref(job);
    if (!listed) {
        job_unref(job);             /* the list's reference */
    }
}

/* --- what the main loop asks of a job ------------------------------------ */

void job_complete(Job *job, Error **errp)
{
    GLOBAL_STATE_CODE();
    REQUIRE_LIVE(job, JOB_MAGIC, "Job");
    job_lock();
    if (!job_apply_verb_locked(job, VERB_COMPLETE, errp)) {
        job_unlock();
        return;
    }
    if (job->cancelled || !job->driver->complete) {
        error_setg(errp, "The active block job '%s' cannot be completed",
                   job->id);
        job_unlock();
        return;
    }
    job_unlock();
    job->driver->complete(job, errp);
    job_enter(job);                 /* a sleeping job notices now */
}

static bool job_finished(Job *job)
{
    bool done;

    job_lock();
    done = job->status == JOB_STATUS_CONCLUDED ||
           job->status == JOB_STATUS_NULL;
    job_unlock();
    return done;
}

/* Wait (the main loop running) until @job has concluded. */
static int job_wait_concluded(Job *job)
{
    int ret;

    AIO_WAIT_WHILE(qemu_get_aio_context(), !job_finished(job));
    job_lock();
    ret = job->ret;
    job_unlock();
    return ret;
}

int job_complete_sync(Job *job, Error **errp)
{
    Error *local_err = NULL;
    int ret;

    GLOBAL_STATE_CODE();
    REQUIRE_LIVE(job, JOB_MAGIC, "Job");
    job_ref(job);
    job_complete(job, &local_err);
    if (local_err) {
        error_propagate(errp, local_err);
        job_unref(job);
        return -EBUSY;
    }
    ret = job_wait_concluded(job);
    job_unref(job);
    return ret;
}

void job_cancel(Job *job, bool force)
{
    GLOBAL_STATE_CODE();
    REQUIRE_LIVE(job, JOB_MAGIC, "Job");
    job_lock();
    if (job->status == JOB_STATUS_CONCLUDED) {
        job_do_dismiss_locked(job);
        job_unlock();
        job_unref(job);             /* the list's reference */
        return;
    }
    if (job_is_completed_locked(job) || job->status == JOB_STATUS_NULL) {
        job_unlock();
        return;                     /* already on its way out */
    }
    job_unlock();
    if (job->driver->cancel) {
        force = job->driver->cancel(job, force);
    } else {
        force = true;               /* a job without a soft cancel */
    }
    job_lock();
    if (job->user_paused) {
        job->user_paused = false;
        job->iostatus = BLOCK_DEVICE_IO_STATUS_OK;
        job->pause_count--;
    }
    job->cancelled = true;
    job->force_cancel |= force;
    if (!job->co) {
        /* Never started: there is no coroutine to notice. */
        job->pause_count--;
        job->deferred_to_main_loop = true;
        job_unlock();
        job_ref(job);
        job_finish_in_main_loop(job);
        if (!job->in_list) {
            job_unref(job);         /* the list's reference */
        }
        job_unref(job);
        return;
    }
    job_enter_cond_locked(job, NULL);
    job_unlock();
}

int job_cancel_sync(Job *job, bool force)
{
    int ret;

    GLOBAL_STATE_CODE();
    REQUIRE_LIVE(job, JOB_MAGIC, "Job");
    job_ref(job);
    if (job_finished(job)) {
        ret = aiolab_job_get_ret(job);
        job_cancel(job, force);     /* dismisses a concluded job */
        job_unref(job);
        return ret;
    }
    job_cancel(job, force);
    ret = job_wait_concluded(job);
    job_unref(job);
    return ret;
}

void job_cancel_sync_all(void)
{
    Job *job;

    GLOBAL_STATE_CODE();
    while ((job = QTAILQ_FIRST(&jobs))) {
        job_cancel_sync(job, true);
    }
}

/* --- ready --------------------------------------------------------------- */

void job_transition_to_ready(Job *job)
{
    AiolabJobEvent ev = { .type = AIOLAB_JOB_EVENT_READY };

    REQUIRE_LIVE(job, JOB_MAGIC, "Job");
    job_lock();
    job_state_transition_locked(job, JOB_STATUS_READY);
    ev.len = job->progress_total;
    ev.offset = job->progress_current;
    ev.speed = job->speed;
    job_event_post(job, &ev);
    job_unlock();
}
