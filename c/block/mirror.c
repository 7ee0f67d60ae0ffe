/* SPDX-License-Identifier: MIT */
/*
 * block/mirror.c - the mirror job: copy a disk that is in use to another
 * node, then switch its users over (QEMU's block/mirror.c, background
 * copy mode, sync=full).
 *
 * The graph while the job runs, and after:
 *
 *     BlockBackend (guest)          BlockBackend (guest)
 *          | root                        | root
 *     [mirror_top] <--- job ---+     [target]          (completed)
 *          | file              |
 *     [source]             [target]  [source] untouched, no user left
 *
 * mirror_top is a filter: every request of every user passes through it
 * to the source, and each write marks the chunks it touched in the dirty
 * bitmap *after* it reached the source and *before* it is acknowledged.
 *
 * The job's loop (its coroutine, in the source's AioContext):
 *
 *     all dirty at start
 *       |
 *       v
 *   +-> pause point (and a rate-limit / once-a-slice sleep)
 *   |   dirty chunk, free slot?  --> start a copy op: reset the bits,
 *   |        |                       read source, write target (a few
 *   |        | no                    in flight; a chunk being copied is
 *   |        v                       never copied twice at once)
 *   |   ops in flight? --> wait for one
 *   |        | none, nothing dirty: in sync
 *   |        v
 *   |   the first time: flush target, READY (event); then keep copying
 *   |   new writes.  Complete (or soft cancel) asked?
 *   |        | no: sleep a slice (woken by complete/cancel/pause)
 *   +--------+
 *            | yes: flush target; in the main loop, drain the source
 *            | (every user parked, every write done and marked); clean?
 *            |   no: end the drain, go on copying
 *            v   yes: run() returns, the source still drained
 *   job_exit -> prepare, in the main loop: drain the target too; then
 *     complete: bdrv_replace_node(mirror_top, target): users -> target
 *     cancel:   bdrv_replace_node(mirror_top, source): users -> source
 *   drop the job's edges, end both drains (the parked users' requests
 *   resume on their new node), unref the filter
 *
 * Why no acknowledged write is lost: a write is acknowledged only after
 * its bits are set; a copy resets bits before it reads.  At the switch
 * the source is drained (no write in flight, none can start), nothing is
 * dirty and no copy is in flight, so target == source; every user's next
 * request goes to the target.  tests/c/test-block-race.c shows the switch
 * without the drain losing a write.
 *
 * Where QEMU differs: QEMU's mirror_top is also where the "active" copy
 * mode (write-blocking) hooks in, and QEMU has sync=top/none,
 * zero-target, replaces and unmap.  QEMU drains the source from the
 * job's coroutine (bdrv_drained_begin bounces to the main loop); aiolab
 * does the drain and the clean check in a main-loop BH of its own, so
 * that the job's drained_poll can tell its own drain from everybody
 * else's (QEMU's in_drain flag excuses the job from every drain while it
 * holds its own).  A user attached to the source itself after the start,
 * beside the filter, is not tracked (QEMU restricts that with
 * permissions).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "block/blockjob_int.h"
#include "block/dirty-bitmap.h"
#include "util/mem.h"

#define MIRROR_MAX_IN_FLIGHT 16             /* QEMU's MAX_IN_FLIGHT */
#define MIRROR_DEFAULT_GRANULARITY (64 * 1024)
#define MIRROR_DEFAULT_BUF_SIZE (1 << 20)
#define MIRROR_MAX_OP_BYTES (1 << 20)

typedef struct MirrorBlockJob {
    Job *job;

    /* --- Set at start, then read-only ------------------------------------ */
    BlockDriverState *source;       /* references held until the exit */
    BlockDriverState *target;
    BlockDriverState *mirror_top;
    BdrvChild *source_child;        /* mirror_top's "file" edge: reads */
    BdrvChild *target_child;        /* the job's edge on target: writes */
    int64_t len;
    uint32_t granularity;
    int64_t buf_size;
    int64_t max_op_bytes;
    BlockdevOnError on_source_error;
    BlockdevOnError on_target_error;

    /* --- Any thread: guest writes set bits, the job resets them ---------- */
    BdrvDirtyBitmap *dirty;

    /* --- The job's context only (its coroutine and its copy ops) --------- */
    uint8_t *busy;                  /* chunks being copied */
    int in_flight;                  /* copy ops */
    int64_t bytes_in_flight;
    int64_t cursor;                 /* where the next search starts */
    int ret;                        /* the first reported error */
    CoQueue op_done;                /* the job waits here for its ops */

    /* --- Main loop ------------------------------------------------------- */
    bool should_complete;           /* atomic: the coroutine reads it */
    bool own_drain;                 /* inside our own switch-check drain */
    bool in_drain;                  /* the source is drained by us */
    bool exited;                    /* mirror_exit_common() ran */
} MirrorBlockJob;

/* --- mirror_top: the filter that marks writes ---------------------------- */

typedef struct MirrorTopState {
    MirrorBlockJob *s;              /* atomic; NULL once the job is done */
} MirrorTopState;

static int mirror_top_open(BlockDriverState *bs, BlockOpts *opts, int flags,
                           Error **errp)
{
    return bdrv_open_child_ref(bs, opts, "file", true, errp) ? 0 : -EINVAL;
}

static int64_t mirror_top_getlength(BlockDriverState *bs)
{
    return bs->file ? bdrv_getlength(bs->file->bs) : -ENOMEDIUM;
}

/* After the request reached the source, before it is acknowledged; the
 * request is still counted in mirror_top's in_flight, so the switch's
 * drain waits for this mark too. */
static void mirror_top_mark(BlockDriverState *bs, int64_t offset,
                            int64_t bytes)
{
    MirrorTopState *t = bs->opaque;
    /* Pairs with the store-release in mirror_start(). */
    MirrorBlockJob *s = qatomic_load_acquire(&t->s);

    if (s) {
        bdrv_set_dirty_bitmap(s->dirty, offset, bytes);
    }
}

static int coroutine_fn mirror_top_preadv(BlockDriverState *bs,
                                          int64_t offset, int64_t bytes,
                                          QEMUIOVector *qiov,
                                          BdrvRequestFlags flags)
{
    return bdrv_co_preadv(bs->file, offset, bytes, qiov, flags);
}

static int coroutine_fn mirror_top_pwritev(BlockDriverState *bs,
                                           int64_t offset, int64_t bytes,
                                           QEMUIOVector *qiov,
                                           BdrvRequestFlags flags)
{
    int ret = bdrv_co_pwritev(bs->file, offset, bytes, qiov, flags);

    mirror_top_mark(bs, offset, bytes);     /* failed writes too */
    return ret;
}

static int coroutine_fn mirror_top_pwrite_zeroes(BlockDriverState *bs,
                                                 int64_t offset,
                                                 int64_t bytes,
                                                 BdrvRequestFlags flags)
{
    int ret = bdrv_co_pwrite_zeroes(bs->file, offset, bytes, flags);

    mirror_top_mark(bs, offset, bytes);
    return ret;
}

static int coroutine_fn mirror_top_pdiscard(BlockDriverState *bs,
                                            int64_t offset, int64_t bytes)
{
    int ret = bdrv_co_pdiscard(bs->file, offset, bytes);

    mirror_top_mark(bs, offset, bytes);
    return ret;
}

/* Not in the list users open by name: bdrv_new_open_driver() only. */
static const BlockDriver bdrv_mirror_top = {
    .format_name = "mirror_top",
    .instance_size = sizeof(MirrorTopState),
    .is_filter = true,
    .bdrv_open = mirror_top_open,
    .bdrv_getlength = mirror_top_getlength,
    .bdrv_co_preadv = mirror_top_preadv,
    .bdrv_co_pwritev = mirror_top_pwritev,
    .bdrv_co_pwrite_zeroes = mirror_top_pwrite_zeroes,
    .bdrv_co_pdiscard = mirror_top_pdiscard,
};

/* --- copy operations ----------------------------------------------------- */

typedef struct MirrorOp {
    MirrorBlockJob *s;
    int64_t offset;
    int64_t bytes;
} MirrorOp;

static void mirror_set_busy(MirrorBlockJob *s, int64_t offset, int64_t bytes,
                            bool busy)
{
    int64_t i;

    for (i = offset / s->granularity;
         i * s->granularity < offset + bytes; i++) {
        s->busy[i] = busy;
    }
}

/* A request failed: decide (report/ignore/stop); the chunk is copied
 * again unless the job fails. */
static void mirror_op_error(MirrorBlockJob *s, int64_t offset, int64_t bytes,
                            bool is_read, int ret)
{
    BlockErrorAction action;

    action = block_job_error_action(s->job, is_read ? s->on_source_error
                                                    : s->on_target_error,
                                    is_read, -ret);
    bdrv_set_dirty_bitmap(s->dirty, offset, bytes);
    if (action == BLOCK_ERROR_ACTION_REPORT && s->ret == 0) {
        s->ret = ret;
    }
}

static void coroutine_fn mirror_co_copy(void *opaque)
{
    MirrorOp *op = opaque;
    MirrorBlockJob *s = op->s;
    QEMUIOVector qiov;
    void *buf = qemu_blockalign(s->target, op->bytes);
    bool is_read = true;
    int ret;

    qemu_iovec_init_buf(&qiov, buf, op->bytes);
    ret = bdrv_co_preadv(s->source_child, op->offset, op->bytes, &qiov, 0);
    if (ret == 0) {
        is_read = false;
        ret = bdrv_co_pwritev(s->target_child, op->offset, op->bytes, &qiov,
                              0);
    }
    if (ret < 0) {
        mirror_op_error(s, op->offset, op->bytes, is_read, ret);
    } else {
        job_progress_update(s->job, op->bytes);
    }
    free(buf);
    mirror_set_busy(s, op->offset, op->bytes, false);
    s->in_flight--;
    s->bytes_in_flight -= op->bytes;
    qemu_co_queue_restart_all(&s->op_done);
    free(op);
}

/*
 * Start copying the next dirty run of chunks, if there is room.
 * Returns: false if nothing could start (no room, or the next dirty chunk
 * is being copied: wait for an op first).
 */
static bool coroutine_fn mirror_start_op(MirrorBlockJob *s)
{
    int64_t gran = s->granularity, offset, bytes;
    MirrorOp *op;

    if (s->in_flight >= MIRROR_MAX_IN_FLIGHT ||
        s->bytes_in_flight + gran > s->buf_size) {
        return false;
    }
    offset = bdrv_dirty_bitmap_next_dirty(s->dirty, s->cursor,
                                          s->len - s->cursor);
    if (offset < 0) {
        offset = bdrv_dirty_bitmap_next_dirty(s->dirty, 0, s->len);
    }
    if (offset < 0 || s->busy[offset / gran]) {
        return false;
    }
    /* Extend over dirty, idle chunks while the op and the buffer allow. */
    bytes = gran;
    while (offset + bytes < s->len && bytes + gran <= s->max_op_bytes &&
           s->bytes_in_flight + bytes + gran <= s->buf_size &&
           !s->busy[(offset + bytes) / gran] &&
           bdrv_dirty_bitmap_get(s->dirty, offset + bytes)) {
        bytes += gran;
    }
    bytes = MIN(bytes, s->len - offset);
    /* Reset before the read: a write landing later sets the bits again. */
    bdrv_reset_dirty_bitmap(s->dirty, offset, bytes);
    mirror_set_busy(s, offset, bytes, true);
    s->cursor = offset + bytes < s->len ? offset + bytes : 0;
    s->in_flight++;
    s->bytes_in_flight += bytes;
    block_job_ratelimit_processed_bytes(s->job, bytes);

    op = aiolab_xmalloc(sizeof(*op));
    *op = (MirrorOp){ .s = s, .offset = offset, .bytes = bytes };
    qemu_coroutine_enter(qemu_coroutine_create(mirror_co_copy, op));
    return true;
}

static void coroutine_fn mirror_wait_for_any_op(MirrorBlockJob *s)
{
    qemu_co_queue_wait(&s->op_done, NULL);
    s->job->last_yield_ns = qemu_clock_get_ns(QEMU_CLOCK_REALTIME);
}

static void coroutine_fn mirror_wait_for_all_ops(MirrorBlockJob *s)
{
    while (s->in_flight > 0) {
        mirror_wait_for_any_op(s);
    }
}

static int coroutine_fn mirror_flush_target(MirrorBlockJob *s)
{
    int ret = bdrv_co_flush(s->target);

    if (ret < 0) {
        BlockErrorAction action;

        action = block_job_error_action(s->job, s->on_target_error, false,
                                        -ret);
        if (action == BLOCK_ERROR_ACTION_REPORT && s->ret == 0) {
            s->ret = ret;
        }
    }
    return ret;
}

/* --- the switch check: a drained section of the source, in the main loop */

typedef struct MirrorDrainCheck {
    MirrorBlockJob *s;
    Coroutine *co;
    bool clean;
    bool done;
} MirrorDrainCheck;

static void mirror_drain_check_bh(void *opaque)
{
    MirrorDrainCheck *c = opaque;
    MirrorBlockJob *s = c->s;
    Coroutine *co = c->co;

    /* The job is parked in mirror_drain_and_check(): this drain need not
     * wait for it (mirror_drained_poll); any other drain does. */
    s->own_drain = true;
    bdrv_drained_begin(s->source);
    s->own_drain = false;
    /* No user request is in flight or can start: every acknowledged
     * write is marked.  Clean now means clean at the switch. */
    c->clean = bdrv_get_dirty_count(s->dirty) == 0;
    if (c->clean) {
        s->in_drain = true;         /* mirror_exit_common() ends it */
    } else {
        bdrv_drained_end(s->source);
    }
    c->done = true;
    aio_co_wake(co);                /* @c lives on its stack: last touch */
}

/* Returns: true if in sync with the source drained (stay drained). */
static bool coroutine_fn mirror_drain_and_check(MirrorBlockJob *s)
{
    MirrorDrainCheck c = { .s = s, .co = qemu_coroutine_self() };

    aio_bh_schedule_oneshot(qemu_get_aio_context(), mirror_drain_check_bh,
                            &c);
    qemu_coroutine_yield();
    AIOLAB_ASSERT(c.done, "the mirror's switch check was woken early");
    return c.clean;
}

/* --- the job ------------------------------------------------------------- */

static void mirror_assert_home(MirrorBlockJob *s)
{
    /* Invariant 2 of job.c, seen from the job: every iteration runs in
     * the job's current context (tests move nodes under a running job). */
    AIOLAB_ASSERT(qemu_get_current_aio_context() ==
                  aiolab_job_get_aio_context(s->job),
                  "mirror '%s' runs outside its AioContext", s->job->id);
}

static int coroutine_fn mirror_run(Job *job, Error **errp)
{
    MirrorBlockJob *s = job->opaque;
    int64_t cnt;

    for (;;) {
        mirror_assert_home(s);
        if (s->ret < 0) {
            break;
        }
        block_job_ratelimit_sleep(job);     /* a pause point */
        if (job_is_cancelled(job)) {
            break;
        }
        cnt = bdrv_get_dirty_count(s->dirty);
        job_progress_set_remaining(job, s->bytes_in_flight + cnt);
        if (cnt > 0 && mirror_start_op(s)) {
            continue;
        }
        if (s->in_flight > 0) {
            mirror_wait_for_any_op(s);
            continue;
        }
        if (cnt > 0) {
            continue;               /* dirtied meanwhile: go round */
        }
        /* In sync: nothing dirty, nothing being copied. */
        if (!job_is_ready(job)) {
            if (mirror_flush_target(s) < 0) {
                continue;
            }
            job_transition_to_ready(job);
        }
        if (qatomic_read(&s->should_complete) || job_cancel_requested(job)) {
            if (mirror_flush_target(s) == 0 && mirror_drain_and_check(s)) {
                break;              /* the source stays drained */
            }
            continue;
        }
        job_sleep_ns(job, BLOCK_JOB_SLICE_TIME);
    }
    mirror_wait_for_all_ops(s);
    return s->ret;
}

static void coroutine_fn mirror_pause(Job *job)
{
    mirror_wait_for_all_ops(job->opaque);
}

static void mirror_complete(Job *job, Error **errp)
{
    MirrorBlockJob *s = job->opaque;

    qatomic_set(&s->should_complete, true);
}

/* A soft cancel of a ready mirror finishes the copy without switching. */
static bool mirror_cancel(Job *job, bool force)
{
    return force || !job_is_ready(job);
}

static bool mirror_drained_poll(Job *job)
{
    MirrorBlockJob *s = job->opaque;

    return !s->own_drain;
}

/*
 * The end, in the main loop, on success (prepare) or not (abort): take
 * the filter out again, handing its users to the target (completed) or
 * back to the source, inside drained sections of both.
 */
static void mirror_exit_common(Job *job)
{
    MirrorBlockJob *s = job->opaque;
    MirrorTopState *t;
    bool pivot;

    GLOBAL_STATE_CODE();
    if (s->exited) {
        return;
    }
    s->exited = true;
    t = s->mirror_top->opaque;
    pivot = aiolab_job_get_ret(job) == 0 &&
            qatomic_read(&s->should_complete) && !job_cancel_requested(job);
    if (!s->in_drain) {
        bdrv_drained_begin(s->source);
        s->in_drain = true;
    }
    bdrv_drained_begin(s->target);
    /* Nothing in flight in source, filter or target, nothing starts. */
    qatomic_store_release(&t->s, NULL);
    bdrv_replace_node(s->mirror_top, pivot ? s->target : s->source,
                      &error_abort);    /* one context: it cannot fail */
    block_job_remove_all_bdrv(job);
    bdrv_drained_end(s->target);
    bdrv_drained_end(s->source);
    s->in_drain = false;
    /* The filter has no parent left: closing it detaches the source. */
    bdrv_unref(s->mirror_top);
    s->mirror_top = NULL;
    bdrv_unref(s->source);
    bdrv_unref(s->target);
}

static int mirror_prepare(Job *job)
{
    mirror_exit_common(job);
    return 0;
}

static void mirror_abort(Job *job)
{
    mirror_exit_common(job);
}

static void mirror_free_state(MirrorBlockJob *s)
{
    bdrv_release_dirty_bitmap(s->dirty);
    free(s->busy);
    free(s);
}

static void mirror_free(Job *job)
{
    mirror_free_state(job->opaque);
}

static const JobDriver mirror_job_driver = {
    .job_type = "mirror",
    .run = mirror_run,
    .pause = mirror_pause,
    .complete = mirror_complete,
    .cancel = mirror_cancel,
    .drained_poll = mirror_drained_poll,
    .prepare = mirror_prepare,
    .abort = mirror_abort,
    .free = mirror_free,
};

/* --- starting ------------------------------------------------------------ */

/* Is @bs @top, or below it?  (block.c's bdrv_is_below is static.) */
static bool mirror_is_below(BlockDriverState *top, BlockDriverState *bs)
{
    BdrvChild *c;

    if (top == bs) {
        return true;
    }
    QLIST_FOREACH(c, &top->children, next) {
        if (c->bs && mirror_is_below(c->bs, bs)) {
            return true;
        }
    }
    return false;
}

static bool mirror_check_args(BlockDriverState *bs, BlockDriverState *target,
                              int64_t len, uint32_t granularity,
                              int64_t buf_size, Error **errp)
{
    if (len < 0) {
        error_setg_errno(errp, -len, "Cannot get the size of node '%s'",
                         bs->node_name);
        return false;
    }
    if (mirror_is_below(bs, target) || mirror_is_below(target, bs)) {
        error_setg(errp, "Can't mirror node '%s' into '%s': one is part of "
                   "the other", bs->node_name, target->node_name);
        return false;
    }
    if (bdrv_getlength(target) != len) {
        error_setg(errp, "Source and target image have different sizes");
        return false;
    }
    if (bdrv_is_read_only(target)) {
        error_setg(errp, "Target node '%s' is read-only", target->node_name);
        return false;
    }
    if (granularity && (granularity < 512 || granularity > (64u << 20) ||
                        (granularity & (granularity - 1)))) {
        error_setg(errp, "Parameter 'granularity' expects a power of 2 "
                   "between 512 B and 64 MiB");
        return false;
    }
    if (buf_size < 0) {
        error_setg(errp, "Parameter 'buf-size' expects a positive value");
        return false;
    }
    return true;
}

static BlockDriverState *mirror_open_filter(BlockDriverState *bs,
                                            const char *filter_node_name,
                                            Error **errp)
{
    char opts[128];

    if (filter_node_name) {
        snprintf(opts, sizeof(opts), "file=%s,node-name=%s", bs->node_name,
                 filter_node_name);
    } else {
        snprintf(opts, sizeof(opts), "file=%s", bs->node_name);
    }
    /* It lives where its child lives (block.c: a node being opened). */
    return bdrv_new_open_driver(&bdrv_mirror_top, opts, BDRV_O_RDWR, errp);
}

/* The job's state, everything dirty (sync=full). */
static MirrorBlockJob *mirror_state_new(BlockDriverState *bs,
                                        BlockDriverState *target,
                                        BlockDriverState *top, int64_t len,
                                        uint32_t granularity,
                                        int64_t buf_size)
{
    MirrorBlockJob *s = aiolab_xcalloc(1, sizeof(*s));

    s->source = bs;
    s->target = target;
    s->mirror_top = top;
    s->source_child = top->file;
    s->len = len;
    s->granularity = granularity;
    s->buf_size = buf_size;
    s->max_op_bytes = MAX(granularity, MIN(MIRROR_MAX_OP_BYTES,
                                           buf_size / MIRROR_MAX_IN_FLIGHT));
    s->dirty = aiolab_dirty_bitmap_new(len, granularity);
    s->busy = aiolab_xcalloc(len / granularity + 1, 1);
    qemu_co_queue_init(&s->op_done);
    bdrv_set_dirty_bitmap(s->dirty, 0, len);
    return s;
}

Job *mirror_start(const char *job_id, BlockDriverState *bs,
                  BlockDriverState *target, int creation_flags,
                  int64_t speed, uint32_t granularity, int64_t buf_size,
                  BlockdevOnError on_source_error,
                  BlockdevOnError on_target_error,
                  const char *filter_node_name, Error **errp)
{
    int64_t len;
    BlockDriverState *top;
    MirrorBlockJob *s;
    Job *job;

    GLOBAL_STATE_CODE();
    REQUIRE_LIVE(bs, BDS_MAGIC, "BlockDriverState");
    REQUIRE_LIVE(target, BDS_MAGIC, "BlockDriverState");
    len = bdrv_getlength(bs);
    if (!mirror_check_args(bs, target, len, granularity, buf_size, errp)) {
        return NULL;
    }
    job_id = job_id ? job_id : bs->node_name;  /* not the filter's name */
    if (job_get(job_id)) {
        error_setg(errp, "Job ID '%s' already in use", job_id);
        return NULL;
    }
    granularity = granularity ? granularity : MIRROR_DEFAULT_GRANULARITY;
    buf_size = buf_size ? buf_size : MIRROR_DEFAULT_BUF_SIZE;
    buf_size = MAX(buf_size, granularity);
    /* One context for everything the job touches. */
    if (bdrv_try_change_aio_context(target, bdrv_get_aio_context(bs), NULL,
                                    errp) < 0) {
        return NULL;
    }
    top = mirror_open_filter(bs, filter_node_name, errp);
    if (!top) {
        return NULL;
    }

    s = mirror_state_new(bs, target, top, len, granularity, buf_size);
    s->on_source_error = on_source_error;
    s->on_target_error = on_target_error;
    job = block_job_create(job_id, &mirror_job_driver, top, speed,
                           creation_flags, s, errp);
    if (!job) {
        goto fail;
    }
    s->job = job;
    if (block_job_add_bdrv(job, "target", target, errp) < 0) {
        job_early_fail(job);
        goto fail;
    }
    s->target_child = job->nodes[job->nb_nodes - 1];
    bdrv_ref(bs);
    bdrv_ref(target);

    /* Mark from now on; then put the filter above the source, with
     * nothing in flight: every user of @bs now goes through it. */
    qatomic_store_release(&((MirrorTopState *)top->opaque)->s, s);
    bdrv_drained_begin(bs);
    bdrv_replace_node(bs, top, &error_abort);   /* one context */
    bdrv_drained_end(bs);
    job_progress_set_remaining(job, len);
    job_start(job);
    return job;

fail:
    mirror_free_state(s);
    bdrv_unref(top);
    return NULL;
}

/* --- test-only ----------------------------------------------------------- */

/*
 * TEST ONLY: bdrv_replace_node() without its drained section.  Exactly
 * the edge switch the real one makes, minus bdrv_drained_begin/end of
 * @from and @to: a request already inside @from finishes there, after
 * its user was moved - its write is acknowledged, yet it is not on the
 * node the user now reads.  Kept next to the mirror because the mirror's
 * switch-over is where this bug would hurt.
 */
int aiolab_test_replace_node_undrained(BlockDriverState *from,
                                       BlockDriverState *to, Error **errp)
{
    BdrvChild *c, *next;

    GLOBAL_STATE_CODE();
    REQUIRE_LIVE(from, BDS_MAGIC, "BlockDriverState");
    REQUIRE_LIVE(to, BDS_MAGIC, "BlockDriverState");
    if (bdrv_get_aio_context(from) != bdrv_get_aio_context(to)) {
        error_setg(errp, "Cannot replace node '%s' by node '%s': they are "
                   "in different AioContexts", from->node_name,
                   to->node_name);
        return -EINVAL;
    }
    bdrv_ref(from);
    QLIST_FOREACH_SAFE(c, &from->parents, next_parent, next) {
        if (c->klass->parent_is_bds && mirror_is_below(to, c->opaque)) {
            continue;
        }
        bdrv_ref(to);
        bdrv_replace_child_noperm(c, to);   /* no drain: the bug */
        bdrv_unref(from);
    }
    bdrv_unref(from);
    return 0;
}
