/* SPDX-License-Identifier: MIT */
/*
 * util/async.c - AioContext lifetime, bottom halves, aio_notify, and the
 * coroutine scheduling doors (aio_co_schedule/wake/enter).
 *
 * The BH list is a lock-free LIFO stack: any thread pushes a BH with one
 * compare-and-swap; aio_bh_poll() takes the whole stack with one exchange
 * into a "slice" on its own stack and runs it.  A BH scheduled while a
 * slice runs lands in the fresh list and runs in the *next* aio_poll(),
 * which is what stops a self-rescheduling BH from starving everything.
 *
 *   ctx->bh_list:   C -> B -> A          (A scheduled first)
 *   aio_bh_poll:    slice = {C, B, A}; ctx->bh_list = {}
 *                   runs C, B, A        (reverse scheduling order)
 *
 * Nested aio_bh_poll() (a BH calls aio_poll) appends its own slice; both
 * walk the slice list from the front, so the nested call finishes the
 * outer slice first.  Nothing about BH order is promised except that.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <aiolab/aiolab.h>
#include "util/aio-internal.h"
#include "util/check.h"
#include "util/thread.h"
#include "util/trace-internal.h"
#include "util/mem.h"

/* --- the registry of contexts (for the dump) ------------------------ */

static pthread_mutex_t ctx_registry_lock = PTHREAD_MUTEX_INITIALIZER;
static QLIST_HEAD(, AioContext) ctx_registry = QLIST_HEAD_INITIALIZER(x);
static unsigned ctx_counter;

void aio_context_registry_foreach(void (*fn)(AioContext *ctx, void *opaque),
                                  void *opaque)
{
    AioContext *ctx;

    /* trylock: the dump may run from a signal handler. */
    if (pthread_mutex_trylock(&ctx_registry_lock) != 0) {
        return;
    }
    QLIST_FOREACH(ctx, &ctx_registry, registry) {
        fn(ctx, opaque);
    }
    pthread_mutex_unlock(&ctx_registry_lock);
}

/* --- the current context of a thread -------------------------------- */

static __thread AioContext *my_aiocontext AIOLAB_TLS_IE;

AioContext *aiolab_get_my_aiocontext(void)
{
    return my_aiocontext;
}

void qemu_set_current_aio_context(AioContext *ctx)
{
    REQUIRE_LIVE(ctx, AIO_CONTEXT_MAGIC, "AioContext");
    AIOLAB_REQUIRE(!my_aiocontext, "called twice in one thread (once per "
                   "thread: this thread's context is already '%s')",
                   my_aiocontext->name);
    my_aiocontext = ctx;
    ctx->home_tid = aiolab_gettid();
}

void aiolab_clear_current_aio_context(AioContext *ctx)
{
    REQUIRE_NONNULL(ctx);
    AIOLAB_REQUIRE(ctx != qemu_get_aio_context(), "cannot forget the main "
                   "context: the main-loop thread keeps it");
    if (my_aiocontext == ctx) {
        my_aiocontext = NULL;
        ctx->home_tid = 0;
    }
}

AioContext *qemu_get_current_aio_context(void)
{
    if (my_aiocontext) {
        return my_aiocontext;
    }
    if (bql_locked()) {
        /* A vCPU thread, or any thread holding the BQL. */
        return qemu_get_aio_context();
    }
    return NULL;    /* a thread-pool worker or a foreign thread */
}

bool in_aio_context_home_thread(AioContext *ctx)
{
    if (ctx == qemu_get_current_aio_context()) {
        return true;
    }
    if (ctx == qemu_get_aio_context()) {
        return bql_locked();
    }
    return false;
}

bool aiolab_is_home_thread(AioContext *ctx)
{
    if (ctx && ctx == iohandler_get_aio_context()) {
        ctx = qemu_get_aio_context();
    }
    return in_aio_context_home_thread(ctx);
}

/* --- notify ------------------------------------------------------- */

int aiolab_inject_skip_notify_me;       /* aiolab_test_inject_bug() */

void aio_notify(AioContext *ctx)
{
    REQUIRE_LIVE(ctx, AIO_CONTEXT_MAGIC, "AioContext");
    /*
     * Publish "there is news" before reading notify_me.  Both are seq_cst
     * read-modify-write/load: the exchange is a full barrier that orders
     * the caller's earlier writes (the BH flags, a coroutine on the list)
     * and this store before the load of notify_me.
     * Pairs with the fetch_add of notify_me in aio_poll() and
     * aio_context_prepare(), followed there by a seq_cst load of notified.
     */
    (void)qatomic_xchg(&ctx->notified, true);
    /*
     * Never skip the write because notified was already set: only the
     * accepting side may take that shortcut ("BUG2" of QEMU's
     * docs/spin/aio_notify_accept.promela).
     */
    if (qatomic_load_sc(&ctx->notify_me)) {
        event_notifier_set(&ctx->notifier);
        trace_instant(TE_AIO_NOTIFY_WAKEUP, qatomic_read(&ctx->name), 0);
    }
}

void aio_notify_accept(AioContext *ctx)
{
    /*
     * Clear the flag before the callbacks run, so that an aio_notify()
     * made by any of them (or concurrently) is seen by the next poll.
     * Pairs with the exchange in aio_notify().  When the flag is already
     * clear there is nothing to order (a notification arriving now stays
     * set for the next poll), so the locked exchange is skipped: it is a
     * good part of an idle iteration's cost.
     */
    if (qatomic_load_sc(&ctx->notified)) {
        (void)qatomic_xchg(&ctx->notified, false);
    }
}

/* The notifier's own handlers: none of them is progress. */
static void aio_context_notifier_cb(EventNotifier *e)
{
    AioContext *ctx = container_of(e, AioContext, notifier);

    event_notifier_test_and_clear(&ctx->notifier);
}

static bool aio_context_notifier_poll(void *opaque)
{
    EventNotifier *e = opaque;
    AioContext *ctx = container_of(e, AioContext, notifier);

    /* The fd is only written while someone sleeps; the flag always is. */
    return qatomic_read(&ctx->notified);
}

static void aio_context_notifier_poll_ready(EventNotifier *e)
{
    /* Nothing to do: waking up was the point. */
}

static void aio_timerlist_notify(void *opaque, QEMUClockType type)
{
    aio_notify(opaque);
}

/* --- bottom halves ------------------------------------------------ */

/* Push @bh (if not already queued) with @new_flags, then wake the loop. */
static void aio_bh_enqueue(QEMUBH *bh, unsigned new_flags)
{
    /* Read what we need first: once queued, the home thread may run and
     * free @bh (a delete or a oneshot) before we return. */
    AioContext *ctx = bh->ctx;
    const char *name = bh->name;
    unsigned old_flags;

    /*
     * The fetch_or is a full barrier: the scheduler's earlier writes are
     * visible to the callback (pairs with the fetch_and in
     * aio_bh_dequeue()).  Only the thread that turns PENDING on pushes,
     * so a BH is on at most one list and scheduling it N times before it
     * runs runs it once.
     */
    old_flags = qatomic_fetch_or(&bh->flags, BH_PENDING | new_flags);
    if (!(old_flags & BH_PENDING)) {
        QSLIST_INSERT_HEAD_ATOMIC(&ctx->bh_list, bh, next);
    }
    trace_instant(TE_BH_SCHEDULE, name, new_flags);
    aio_notify(ctx);
}

/* Pop the first BH of a private list and clear its transient flags. */
static QEMUBH *aio_bh_dequeue(BHList *head, unsigned *flags)
{
    QEMUBH *bh = QSLIST_FIRST(head);

    if (!bh) {
        return NULL;
    }
    QSLIST_REMOVE_HEAD(head, next);
    /*
     * From here a new schedule pushes the BH again (PENDING is clear), so
     * it may even run twice: once now, once in the next aio_poll, and
     * never zero times.  Pairs with the fetch_or in aio_bh_enqueue().
     */
    *flags = qatomic_fetch_and(&bh->flags,
                               ~(BH_PENDING | BH_SCHEDULED | BH_IDLE));
    return bh;
}

static QEMUBH *aio_bh_alloc(AioContext *ctx, QEMUBHFunc *cb, void *opaque,
                            const char *name, MemReentrancyGuard *guard)
{
    QEMUBH *bh;

    REQUIRE_LIVE(ctx, AIO_CONTEXT_MAGIC, "AioContext");
    REQUIRE_NONNULL(cb);
    bh = aiolab_xcalloc(1, sizeof(*bh));
    bh->ctx = ctx;
    bh->cb = cb;
    bh->opaque = opaque;
    /* Interned: trace events keep the pointer after the BH is freed, and
     * bindings pass temporary strings. */
    bh->name = aiolab_intern(name ? name : "bh");
    bh->reentrancy_guard = guard;
    bh->magic = QEMU_BH_MAGIC;
    return bh;
}

QEMUBH *aio_bh_new_full(AioContext *ctx, QEMUBHFunc *cb, void *opaque,
                        const char *name, MemReentrancyGuard *guard)
{
    QEMUBH *bh = aio_bh_alloc(ctx, cb, opaque, name, guard);

    pthread_mutex_lock(&ctx->all_bhs_lock);
    QLIST_INSERT_HEAD(&ctx->all_bhs, bh, all);
    pthread_mutex_unlock(&ctx->all_bhs_lock);
    return bh;
}

QEMUBH *(aio_bh_new)(AioContext *ctx, QEMUBHFunc *cb, void *opaque)
{
    return aio_bh_new_full(ctx, cb, opaque, "aio_bh_new", NULL);
}

QEMUBH *(aio_bh_new_guarded)(AioContext *ctx, QEMUBHFunc *cb, void *opaque,
                             MemReentrancyGuard *guard)
{
    return aio_bh_new_full(ctx, cb, opaque, "aio_bh_new_guarded", guard);
}

void aio_bh_schedule_oneshot_full(AioContext *ctx, QEMUBHFunc *cb,
                                  void *opaque, const char *name)
{
    QEMUBH *bh = aio_bh_alloc(ctx, cb, opaque, name, NULL);

    aio_bh_enqueue(bh, BH_SCHEDULED | BH_ONESHOT);
}

void (aio_bh_schedule_oneshot)(AioContext *ctx, QEMUBHFunc *cb, void *opaque)
{
    aio_bh_schedule_oneshot_full(ctx, cb, opaque, "aio_bh_schedule_oneshot");
}

#define REQUIRE_BH(bh) REQUIRE_LIVE(bh, QEMU_BH_MAGIC, "QEMUBH")

void qemu_bh_schedule(QEMUBH *bh)
{
    REQUIRE_BH(bh);
    aio_bh_enqueue(bh, BH_SCHEDULED);
}

void qemu_bh_schedule_idle(QEMUBH *bh)
{
    REQUIRE_BH(bh);
    aio_bh_enqueue(bh, BH_SCHEDULED | BH_IDLE);
}

void qemu_bh_cancel(QEMUBH *bh)
{
    REQUIRE_BH(bh);
    qatomic_and(&bh->flags, ~BH_SCHEDULED);
}

void qemu_bh_delete(QEMUBH *bh)
{
    REQUIRE_BH(bh);
    /* Freed by aio_bh_poll(), which may be running it right now. */
    aio_bh_enqueue(bh, BH_DELETED);
}

void aio_bh_call(QEMUBH *bh)
{
    bool last_engaged_in_io = false;

    if (bh->reentrancy_guard) {
        last_engaged_in_io = bh->reentrancy_guard->engaged_in_io;
        if (last_engaged_in_io) {
            /* Already inside the device: note it; QEMU still runs it. */
            trace_instant(TE_REENTRANT_AIO, bh->name, 0);
        }
        bh->reentrancy_guard->engaged_in_io = true;
    }
    trace_begin(TE_BH_CALL, bh->name, 0);
    bh->cb(bh->opaque);
    trace_end(TE_BH_CALL, bh->name, 0);
    if (bh->reentrancy_guard) {
        bh->reentrancy_guard->engaged_in_io = last_engaged_in_io;
    }
}

static void aio_bh_free(QEMUBH *bh)
{
    AioContext *ctx = bh->ctx;

    if (QLIST_IS_INSERTED(bh, all)) {
        pthread_mutex_lock(&ctx->all_bhs_lock);
        QLIST_REMOVE(bh, all);
        pthread_mutex_unlock(&ctx->all_bhs_lock);
    }
    bh->magic = 0;
    free(bh);
}

int aio_bh_poll(AioContext *ctx)
{
    BHListSlice slice;
    BHListSlice *s;
    int ret = 0;

    /*
     * Nothing scheduled and no slice left by an outer call: skip the
     * atomic exchange below (a locked instruction on every idle
     * iteration).  A BH pushed right after this load is seen by the next
     * aio_poll(), whose wait the push's aio_notify() cuts short.
     */
    if (!qatomic_load_acquire(&ctx->bh_list.slh_first) &&
        QSIMPLEQ_EMPTY(&ctx->bh_slice_list)) {
        return 0;
    }
    /* Take everything scheduled so far.  Pairs with the CAS in
     * aio_bh_enqueue(). */
    QSLIST_MOVE_ATOMIC(&slice.bh_list, &ctx->bh_list);
    QSIMPLEQ_INSERT_TAIL(&ctx->bh_slice_list, &slice, next);

    while ((s = QSIMPLEQ_FIRST(&ctx->bh_slice_list))) {
        QEMUBH *bh;
        unsigned flags;

        bh = aio_bh_dequeue(&s->bh_list, &flags);
        if (!bh) {
            QSIMPLEQ_REMOVE_HEAD(&ctx->bh_slice_list, next);
            continue;
        }
        if ((flags & (BH_SCHEDULED | BH_DELETED)) == BH_SCHEDULED) {
            if (!(flags & BH_IDLE)) {
                ret = 1;        /* idle BHs are not progress */
            }
            aio_bh_call(bh);
        }
        if (flags & (BH_DELETED | BH_ONESHOT)) {
            aio_bh_free(bh);
        }
    }
    return ret;
}

/* The timeout contribution of one BH list: 0, 10 ms (idle) or -1. */
static int64_t aio_compute_bh_timeout(BHList *head, int64_t timeout)
{
    QEMUBH *bh;

    QSLIST_FOREACH_RCU(bh, head, next) {
        unsigned flags = qatomic_read(&bh->flags);
        if ((flags & (BH_SCHEDULED | BH_DELETED)) == BH_SCHEDULED) {
            if (flags & BH_IDLE) {
                /* Idle BHs run "eventually": within 10 ms. */
                timeout = 10000000;
            } else {
                return 0;
            }
        }
    }
    return timeout;
}

int64_t aio_compute_timeout(AioContext *ctx)
{
    BHListSlice *s;
    int64_t timeout = -1, deadline;

    timeout = aio_compute_bh_timeout(&ctx->bh_list, timeout);
    if (timeout == 0) {
        return 0;
    }
    QSIMPLEQ_FOREACH(s, &ctx->bh_slice_list, next) {
        timeout = aio_compute_bh_timeout(&s->bh_list, timeout);
        if (timeout == 0) {
            return 0;
        }
    }
    deadline = timerlistgroup_deadline_ns(&ctx->tlg);
    if (deadline == 0) {
        return 0;
    }
    return qemu_soonest_timeout(timeout, deadline);
}

int64_t aiolab_aio_context_compute_timeout(AioContext *ctx)
{
    REQUIRE_LIVE(ctx, AIO_CONTEXT_MAGIC, "AioContext");
    HOME_THREAD_CODE(ctx);
    return aio_compute_timeout(ctx);
}

int aiolab_aio_poll_ready(AioContext *ctx)
{
    REQUIRE_LIVE(ctx, AIO_CONTEXT_MAGIC, "AioContext");
    HOME_THREAD_CODE(ctx);
    if (aio_compute_timeout(ctx) != 0) {
        return -1;
    }
    return aio_poll(ctx, true);
}

bool aio_bh_has_pending(AioContext *ctx)
{
    return aio_compute_timeout(ctx) == 0;
}

/* --- coroutines --------------------------------------------------- */

static void co_schedule_bh_cb(void *opaque)
{
    AioContext *ctx = opaque;
    QSLIST_HEAD(, Coroutine) straight, reversed;

    QSLIST_MOVE_ATOMIC(&reversed, &ctx->scheduled_coroutines);
    QSLIST_INIT(&straight);

    /* The list was pushed LIFO; reverse it so coroutines run FIFO. */
    while (!QSLIST_EMPTY(&reversed)) {
        Coroutine *co = QSLIST_FIRST(&reversed);
        QSLIST_REMOVE_HEAD(&reversed, co_scheduled_next);
        QSLIST_INSERT_HEAD(&straight, co, co_scheduled_next);
    }

    while (!QSLIST_EMPTY(&straight)) {
        Coroutine *co = QSLIST_FIRST(&straight);
        QSLIST_REMOVE_HEAD(&straight, co_scheduled_next);
        trace_instant(TE_AIO_CO_SCHEDULE_BH_CB, qatomic_read(&ctx->name), 0);
        /* Not scheduled any more: it may be scheduled again from now. */
        qatomic_store_sc(&co->scheduled, NULL);
        qemu_aio_coroutine_enter(ctx, co);
    }
}

void aio_co_schedule(AioContext *ctx, Coroutine *co)
{
    const char *scheduled;

    REQUIRE_LIVE(ctx, AIO_CONTEXT_MAGIC, "AioContext");
    REQUIRE_NONNULL(co);
    trace_instant(TE_AIO_CO_SCHEDULE, qatomic_read(&ctx->name), 0);
    scheduled = qatomic_cmpxchg(&co->scheduled, (const char *)NULL,
                                "aio_co_schedule");
    if (scheduled) {
        aiolab_die(__func__, "Co-routine was already scheduled in '%s'",
                   scheduled);
    }
    /*
     * The coroutine may run (in another thread) and drop the last reference
     * to @ctx before qemu_bh_schedule() returns: hold one meanwhile.
     */
    aio_context_ref(ctx);
    QSLIST_INSERT_HEAD_ATOMIC(&ctx->scheduled_coroutines, co,
                              co_scheduled_next);
    qemu_bh_schedule(ctx->co_schedule_bh);
    aio_context_unref(ctx);
}

void aio_co_wake(Coroutine *co)
{
    AioContext *ctx;

    REQUIRE_NONNULL(co);
    /* Pairs with the store of co->ctx in qemu_aio_coroutine_enter(). */
    ctx = qatomic_load_acquire(&co->ctx);
    if (unlikely(!ctx)) {
        aiolab_die(__func__, "got a coroutine that has never run, so it has "
                   "no context to resume in: enter it first, or use "
                   "aio_co_enter(ctx, co)");
    }
    aio_co_enter(ctx, co);
}

void aio_co_enter(AioContext *ctx, Coroutine *co)
{
    REQUIRE_LIVE(ctx, AIO_CONTEXT_MAGIC, "AioContext");
    REQUIRE_NONNULL(co);
    if (ctx != qemu_get_current_aio_context()) {
        aio_co_schedule(ctx, co);
        return;
    }
    if (qemu_in_coroutine()) {
        Coroutine *self = qemu_coroutine_self();
        AIOLAB_ASSERT(self != co, "cannot enter the calling coroutine itself");
        /* Run it when we yield or terminate: no stack nesting. */
        QSIMPLEQ_INSERT_TAIL(&self->co_queue_wakeup, co, co_queue_next);
    } else {
        qemu_aio_coroutine_enter(ctx, co);
    }
}

typedef struct AioCoRescheduleSelf {
    Coroutine *co;
    AioContext *new_ctx;
} AioCoRescheduleSelf;

static void aio_co_reschedule_self_bh(void *opaque)
{
    AioCoRescheduleSelf *data = opaque;

    aio_co_schedule(data->new_ctx, data->co);
}

void coroutine_fn aio_co_reschedule_self(AioContext *new_ctx)
{
    AioContext *old_ctx = qemu_get_current_aio_context();

    AIOLAB_REQUIRE(qemu_in_coroutine(), "must be called from coroutine "
                   "context " RULE_CO);
    REQUIRE_LIVE(new_ctx, AIO_CONTEXT_MAGIC, "AioContext");
    if (old_ctx != new_ctx) {
        AioCoRescheduleSelf data = {
            .co = qemu_coroutine_self(),
            .new_ctx = new_ctx,
        };
        /*
         * Scheduling ourselves into @new_ctx directly would let its thread
         * enter us before we have yielded.  A BH in the old context runs
         * only after we yield.
         */
        aio_bh_schedule_oneshot(old_ctx, aio_co_reschedule_self_bh, &data);
        qemu_coroutine_yield();
    }
}

/* --- lifetime ----------------------------------------------------- */

AioContext *aio_context_new(Error **errp)
{
    return aio_context_new_fdmon(getenv("AIOLAB_FDMON"), errp);
}

AioContext *aio_context_new_fdmon(const char *fdmon, Error **errp)
{
    AioContext *ctx = aiolab_xcalloc(1, sizeof(*ctx));
    char name[32];
    int ret;

    init_clocks();
    ctx->magic = AIO_CONTEXT_MAGIC;
    ctx->refcnt = 1;
    ret = event_notifier_init(&ctx->notifier, false);
    if (ret < 0) {
        error_setg_errno(errp, -ret, "Failed to initialize event notifier");
        free(ctx);
        return NULL;
    }
    QSLIST_INIT(&ctx->bh_list);
    QSIMPLEQ_INIT(&ctx->bh_slice_list);
    QSLIST_INIT(&ctx->scheduled_coroutines);
    pthread_mutex_init(&ctx->all_bhs_lock, NULL);
    QLIST_INIT(&ctx->all_bhs);
    qemu_lockcnt_init(&ctx->list_lock);
    QLIST_INIT(&ctx->aio_handlers);
    QLIST_INIT(&ctx->deleted_aio_handlers);
    QLIST_INIT(&ctx->poll_aio_handlers);
    QLIST_INIT(&ctx->embed_ready_list);
    ctx->epollfd = -1;
    ctx->thread_pool_min = 0;
    ctx->thread_pool_max = THREAD_POOL_MAX_THREADS_DEFAULT;
    timerlistgroup_init(&ctx->tlg, aio_timerlist_notify, ctx);
    aio_context_setup(ctx, fdmon);

    pthread_mutex_lock(&ctx_registry_lock);
    snprintf(name, sizeof(name), "ctx%u", ++ctx_counter);
    qatomic_set(&ctx->name, aiolab_intern(name));
    QLIST_INSERT_HEAD(&ctx_registry, ctx, registry);
    pthread_mutex_unlock(&ctx_registry_lock);

    aio_set_event_notifier(ctx, &ctx->notifier, aio_context_notifier_cb,
                           aio_context_notifier_poll,
                           aio_context_notifier_poll_ready);
    ctx->co_schedule_bh = aio_bh_new(ctx, co_schedule_bh_cb, ctx);
    return ctx;
}

void aio_context_ref(AioContext *ctx)
{
    REQUIRE_LIVE(ctx, AIO_CONTEXT_MAGIC, "AioContext");
    qatomic_inc(&ctx->refcnt);
}

static void aio_context_finalize(AioContext *ctx)
{
    QEMUBH *bh;
    unsigned flags;

    luring_cleanup(ctx);
    if (ctx->thread_pool) {
        thread_pool_free(ctx->thread_pool);
        ctx->thread_pool = NULL;
    }
    AIOLAB_ASSERT(QSLIST_EMPTY(&ctx->scheduled_coroutines),
                  "AioContext '%s' freed with coroutines still scheduled "
                  "into it", qatomic_read(&ctx->name));
    qemu_bh_delete(ctx->co_schedule_bh);
    AIOLAB_ASSERT(QSIMPLEQ_EMPTY(&ctx->bh_slice_list),
                  "AioContext '%s' freed while aio_bh_poll() runs",
                  qatomic_read(&ctx->name));
    /* Every BH must have been deleted: anything else is a leak. */
    while ((bh = aio_bh_dequeue(&ctx->bh_list, &flags))) {
        if (unlikely(!(flags & BH_DELETED))) {
            fprintf(stderr, "aio_ctx_finalize: BH '%s' leaked, aborting...\n",
                    bh->name);
            abort();
        }
        aio_bh_free(bh);
    }
    /* A BH never scheduled is on no list but this one: a leak too. */
    bh = QLIST_FIRST(&ctx->all_bhs);
    if (unlikely(bh)) {
        fprintf(stderr, "aio_ctx_finalize: BH '%s' leaked, aborting...\n",
                bh->name);
        abort();
    }
    pthread_mutex_destroy(&ctx->all_bhs_lock);
    aio_set_event_notifier(ctx, &ctx->notifier, NULL, NULL, NULL);
    aio_context_destroy(ctx);
    aio_context_free_handlers(ctx);
    event_notifier_cleanup(&ctx->notifier);
    qemu_lockcnt_destroy(&ctx->list_lock);
    timerlistgroup_deinit(&ctx->tlg);

    pthread_mutex_lock(&ctx_registry_lock);
    QLIST_REMOVE(ctx, registry);
    pthread_mutex_unlock(&ctx_registry_lock);
    ctx->magic = 0;
    free(ctx);
}

void aio_context_unref(AioContext *ctx)
{
    REQUIRE_LIVE(ctx, AIO_CONTEXT_MAGIC, "AioContext");
    if (qatomic_sub_fetch(&ctx->refcnt, 1) == 0) {
        aio_context_finalize(ctx);
    }
}

void aiolab_aio_context_set_name(AioContext *ctx, const char *name)
{
    REQUIRE_LIVE(ctx, AIO_CONTEXT_MAGIC, "AioContext");
    REQUIRE_NONNULL(name);
    qatomic_store_release(&ctx->name, aiolab_intern(name));
}

const char *aiolab_aio_context_get_name(AioContext *ctx)
{
    REQUIRE_LIVE(ctx, AIO_CONTEXT_MAGIC, "AioContext");
    return qatomic_read(&ctx->name);
}

/* --- parameters --------------------------------------------------- */

void aio_context_set_poll_params(AioContext *ctx, int64_t max_ns,
                                 int64_t grow, int64_t shrink, Error **errp)
{
    REQUIRE_LIVE(ctx, AIO_CONTEXT_MAGIC, "AioContext");
    if (max_ns < 0 || grow < 0 || shrink < 0) {
        error_setg(errp, "%s value must be in range [0, INT64_MAX]",
                   max_ns < 0 ? "poll-max-ns" :
                   grow < 0 ? "poll-grow" : "poll-shrink");
        return;
    }
    /* The home thread reads these in aio_poll(): atomics, no lock. */
    qatomic_set(&ctx->poll_max_ns, max_ns);
    qatomic_set(&ctx->poll_grow, grow);
    qatomic_set(&ctx->poll_shrink, shrink);
    qatomic_set(&ctx->poll_ns, 0);
    aio_notify(ctx);
}

void aiolab_aio_context_get_poll_params(AioContext *ctx, int64_t *max_ns,
                                        int64_t *grow, int64_t *shrink)
{
    REQUIRE_LIVE(ctx, AIO_CONTEXT_MAGIC, "AioContext");
    if (max_ns) {
        *max_ns = qatomic_read(&ctx->poll_max_ns);
    }
    if (grow) {
        *grow = qatomic_read(&ctx->poll_grow);
    }
    if (shrink) {
        *shrink = qatomic_read(&ctx->poll_shrink);
    }
}

int64_t aiolab_aio_context_get_poll_ns(AioContext *ctx)
{
    REQUIRE_LIVE(ctx, AIO_CONTEXT_MAGIC, "AioContext");
    return qatomic_read(&ctx->poll_ns);
}

void aio_context_set_aio_params(AioContext *ctx, int64_t max_batch)
{
    REQUIRE_LIVE(ctx, AIO_CONTEXT_MAGIC, "AioContext");
    AIOLAB_REQUIRE(max_batch >= 0, "got a negative max_batch %lld",
                   (long long)max_batch);
    qatomic_set(&ctx->aio_max_batch, max_batch);
    aio_notify(ctx);
}

int64_t aiolab_aio_context_get_aio_max_batch(AioContext *ctx)
{
    REQUIRE_LIVE(ctx, AIO_CONTEXT_MAGIC, "AioContext");
    return qatomic_read(&ctx->aio_max_batch);
}

void aio_context_set_thread_pool_params(AioContext *ctx, int64_t min,
                                        int64_t max, Error **errp)
{
    REQUIRE_LIVE(ctx, AIO_CONTEXT_MAGIC, "AioContext");
    if (min > max || max <= 0 || min < 0 || min > INT_MAX || max > INT_MAX) {
        error_setg(errp, "bad thread-pool-min/thread-pool-max values");
        return;
    }
    qatomic_set(&ctx->thread_pool_min, min);
    qatomic_set(&ctx->thread_pool_max, max);
    if (qatomic_load_acquire(&ctx->thread_pool)) {
        thread_pool_update_params(ctx->thread_pool, ctx);
    }
}

struct ThreadPool *aio_get_thread_pool(AioContext *ctx)
{
    if (!ctx->thread_pool) {
        qatomic_store_release(&ctx->thread_pool, thread_pool_new(ctx));
    }
    return ctx->thread_pool;
}

/* --- test hooks ---------------------------------------------------- */

bool aiolab_test_inject_bug(const char *name)
{
    REQUIRE_NONNULL(name);
    if (!strcmp(name, "none")) {
        qatomic_set(&aiolab_inject_skip_notify_me, 0);
    } else if (!strcmp(name, "skip-notify-me")) {
        qatomic_set(&aiolab_inject_skip_notify_me, 1);
    } else {
        return false;
    }
    return true;
}

/* --- timers of a context ------------------------------------------- */

QEMUTimer *aio_timer_new(AioContext *ctx, QEMUClockType type, int scale,
                         QEMUTimerCB *cb, void *opaque)
{
    REQUIRE_LIVE(ctx, AIO_CONTEXT_MAGIC, "AioContext");
    return timer_new_tl(&ctx->tlg, type, scale, cb, opaque);
}
