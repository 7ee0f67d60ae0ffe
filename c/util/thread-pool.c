/* SPDX-License-Identifier: MIT */
/*
 * util/thread-pool.c - one pool of worker threads per AioContext, for
 * blocking work (preadv, fsync, ...) that must not stall the loop.
 *
 *   submitting context                  worker threads
 *   ------------------                  --------------
 *   thread_pool_submit_aio()
 *     elem QUEUED, on request_list --->  take the oldest: ACTIVE
 *                                        ret = func(arg)
 *                                        DONE; schedule completion_bh
 *   completion_bh  <-----------------    (aio_notify wakes the context)
 *     for each DONE elem: cb(opaque, ret)
 *
 * Locking: pool->lock protects request_list and the thread counters.
 * pool->head (every element not yet completed) belongs to the home thread
 * of the pool's context.  elem->state is written by the worker with
 * release semantics after elem->ret, and read with acquire by the
 * completion BH.
 *
 * Threads are created lazily, one at a time: a request that finds more
 * requests queued than idle or starting workers (and room under max) asks
 * for one; the first new worker creates the next, so no caller creates
 * many threads while holding the lock, and threads are created from the
 * pool's own context (a BH), inheriting its CPU affinity rather than a
 * vCPU's.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <aiolab/aiolab.h>
#include "util/aio-internal.h"
#include "util/aiocb.h"
#include "util/check.h"
#include "util/thread.h"
#include "util/trace-internal.h"
#include "util/mem.h"

enum ThreadState {
    THREAD_QUEUED,
    THREAD_ACTIVE,
    THREAD_DONE,
};

typedef struct ThreadPoolElement ThreadPoolElement;
typedef struct ThreadPool ThreadPool;

struct ThreadPoolElement {
    BlockAIOCB common;
    ThreadPool *pool;
    ThreadPoolFunc *func;
    void *arg;
    int state;                  /* enum ThreadState; see the top */
    int ret;
    QTAILQ_ENTRY(ThreadPoolElement) reqs;   /* request_list, under lock */
    QLIST_ENTRY(ThreadPoolElement) all;     /* head, home thread */
};

typedef struct ExitedThread {
    pthread_t thread;
    struct ExitedThread *next;
} ExitedThread;

struct ThreadPool {
    AioContext *ctx;
    QEMUBH *completion_bh;
    QEMUBH *new_thread_bh;

    /* Home thread of ctx */
    QLIST_HEAD(, ThreadPoolElement) head;
    int64_t completed;                      /* atomic (stats) */

    /* Protected by lock */
    pthread_mutex_t lock;
    pthread_cond_t worker_stopped;
    pthread_cond_t request_cond;
    QTAILQ_HEAD(, ThreadPoolElement) request_list;
    int cur_threads;        /* alive or about to be created */
    int idle_threads;       /* waiting on request_cond */
    int queued;             /* elements on request_list */
    int new_threads;        /* backlog: counted but not yet created */
    int pending_threads;    /* created, not yet running */
    int min_threads;
    int max_threads;
    int64_t threads_created;
    ExitedThread *exited;   /* to be joined */
};

static int64_t idle_timeout_ns = 10 * 1000000000LL;      /* atomic */

void aiolab_thread_pool_set_idle_timeout_ns(int64_t ns)
{
    AIOLAB_REQUIRE(ns > 0, "got a non-positive timeout %lld",
                   (long long)ns);
    qatomic_set(&idle_timeout_ns, ns);
}

/* --- BlockAIOCB ---------------------------------------------------- */

void *qemu_aio_get(const AIOCBInfo *aiocb_info, BlockCompletionFunc *cb,
                   void *opaque)
{
    BlockAIOCB *acb = aiolab_xcalloc(1, aiocb_info->aiocb_size);

    acb->aiocb_info = aiocb_info;
    acb->cb = cb;
    acb->opaque = opaque;
    acb->refcnt = 1;
    return acb;
}

void qemu_aio_ref(void *p)
{
    BlockAIOCB *acb = p;

    qatomic_inc(&acb->refcnt);
}

void qemu_aio_unref(void *p)
{
    BlockAIOCB *acb = p;

    if (qatomic_sub_fetch(&acb->refcnt, 1) == 0) {
        free(acb);
    } else {
        /* A synchronous cancel may wait for this reference to go. */
        aio_wait_kick();
    }
}

/* --- workers ------------------------------------------------------- */

static void do_spawn_thread(ThreadPool *pool);

static void *worker_thread(void *opaque)
{
    ThreadPool *pool = opaque;
    ExitedThread *me;

    pthread_mutex_lock(&pool->lock);
    pool->pending_threads--;
    do_spawn_thread(pool);          /* create the next one, if owed */

    while (pool->cur_threads <= pool->max_threads) {
        ThreadPoolElement *req;
        int ret;

        if (QTAILQ_EMPTY(&pool->request_list)) {
            struct timespec ts;
            int64_t ns = qatomic_read(&idle_timeout_ns);

            clock_gettime(CLOCK_MONOTONIC, &ts);
            ts.tv_sec += ns / 1000000000LL;
            ts.tv_nsec += ns % 1000000000LL;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pool->idle_threads++;
            ret = pthread_cond_timedwait(&pool->request_cond, &pool->lock,
                                         &ts);
            pool->idle_threads--;
            if (ret == ETIMEDOUT && QTAILQ_EMPTY(&pool->request_list) &&
                pool->cur_threads > pool->min_threads) {
                break;      /* idle too long, and not needed warm */
            }
            continue;
        }
        req = QTAILQ_FIRST(&pool->request_list);
        QTAILQ_REMOVE(&pool->request_list, req, reqs);
        pool->queued--;
        qatomic_set(&req->state, THREAD_ACTIVE);
        pthread_mutex_unlock(&pool->lock);

        trace_begin(TE_THREAD_POOL_WORK, NULL, 0);
        ret = req->func(req->arg);
        trace_end(TE_THREAD_POOL_WORK, NULL, ret);
        req->ret = ret;
        /* Publish ret before state.  Pairs with the acquire load in
         * thread_pool_completion_bh(). */
        qatomic_store_release(&req->state, THREAD_DONE);
        qemu_bh_schedule(pool->completion_bh);

        pthread_mutex_lock(&pool->lock);
    }
    pool->cur_threads--;
    me = aiolab_xmalloc(sizeof(*me));
    me->thread = pthread_self();
    me->next = pool->exited;
    pool->exited = me;
    pthread_cond_signal(&pool->worker_stopped);
    /* We may have taken a wake-up meant for a worker that stays. */
    pthread_cond_signal(&pool->request_cond);
    pthread_mutex_unlock(&pool->lock);
    return NULL;
}

/* Join workers that have exited.  Not with pool->lock held. */
static void reap_exited(ThreadPool *pool)
{
    ExitedThread *list, *next;

    pthread_mutex_lock(&pool->lock);
    list = pool->exited;
    pool->exited = NULL;
    pthread_mutex_unlock(&pool->lock);
    for (; list; list = next) {
        next = list->next;
        pthread_join(list->thread, NULL);
        free(list);
    }
}

/* pool->lock held. */
static void do_spawn_thread(ThreadPool *pool)
{
    pthread_t thread;

    if (!pool->new_threads) {
        return;
    }
    pool->new_threads--;
    pool->pending_threads++;
    if (aiolab_thread_create(&thread, "worker", worker_thread, pool) != 0) {
        pool->pending_threads--;
        pool->cur_threads--;
        return;
    }
    pool->threads_created++;
}

static void spawn_thread_bh_fn(void *opaque)
{
    ThreadPool *pool = opaque;

    reap_exited(pool);
    pthread_mutex_lock(&pool->lock);
    do_spawn_thread(pool);
    pthread_mutex_unlock(&pool->lock);
}

/* pool->lock held. */
static void spawn_thread(ThreadPool *pool)
{
    pool->cur_threads++;
    pool->new_threads++;
    /*
     * If a worker is being created, it will create this one too (see
     * worker_thread).  Otherwise ask the pool's context to do it.
     */
    if (!pool->pending_threads) {
        qemu_bh_schedule(pool->new_thread_bh);
    }
}

/* --- completion and cancellation ------------------------------------ */

static void thread_pool_completion_bh(void *opaque)
{
    ThreadPool *pool = opaque;
    ThreadPoolElement *elem, *next;

    defer_call_begin();     /* batch what the callbacks trigger */
restart:
    QLIST_FOREACH_SAFE(elem, &pool->head, all, next) {
        if (qatomic_load_acquire(&elem->state) != THREAD_DONE) {
            continue;
        }
        trace_instant(TE_THREAD_POOL_COMPLETE, NULL, elem->ret);
        QLIST_REMOVE(elem, all);
        qatomic_inc(&pool->completed);
        if (elem->common.cb) {
            /*
             * The callback may aio_poll() waiting for another request that
             * completed at the same time: keep ourselves scheduled so that
             * nested poll runs us again.
             */
            qemu_bh_schedule(pool->completion_bh);
            elem->common.cb(elem->common.opaque, elem->ret);
            /* We rescan anyway (restart), so we need not run again. */
            qemu_bh_cancel(pool->completion_bh);
            qemu_aio_unref(elem);
            goto restart;
        }
        qemu_aio_unref(elem);
    }
    defer_call_end();
}

static void thread_pool_cancel(BlockAIOCB *acb)
{
    ThreadPoolElement *elem = (ThreadPoolElement *)acb;
    ThreadPool *pool = elem->pool;

    trace_instant(TE_THREAD_POOL_CANCEL, NULL, 0);
    pthread_mutex_lock(&pool->lock);
    if (qatomic_read(&elem->state) == THREAD_QUEUED) {
        /* Not started: it never will.  Running work is not interrupted. */
        QTAILQ_REMOVE(&pool->request_list, elem, reqs);
        pool->queued--;
        qemu_bh_schedule(pool->completion_bh);
        elem->ret = -ECANCELED;
        qatomic_store_release(&elem->state, THREAD_DONE);
    }
    pthread_mutex_unlock(&pool->lock);
}

static AioContext *thread_pool_get_aio_context(BlockAIOCB *acb)
{
    return ((ThreadPoolElement *)acb)->pool->ctx;
}

static const AIOCBInfo thread_pool_aiocb_info = {
    .aiocb_size = sizeof(ThreadPoolElement),
    .cancel_async = thread_pool_cancel,
    .get_aio_context = thread_pool_get_aio_context,
};

void bdrv_aio_cancel_async(BlockAIOCB *acb)
{
    REQUIRE_NONNULL(acb);
    if (acb->aiocb_info->cancel_async) {
        acb->aiocb_info->cancel_async(acb);
    }
}

void bdrv_aio_cancel(BlockAIOCB *acb)
{
    AioContext *ctx;

    REQUIRE_NONNULL(acb);
    qemu_aio_ref(acb);
    bdrv_aio_cancel_async(acb);
    ctx = acb->aiocb_info->get_aio_context(acb);
    /* Until the callback has run and dropped its reference. */
    AIO_WAIT_WHILE(ctx, qatomic_load_sc(&acb->refcnt) > 1);
    qemu_aio_unref(acb);
}

/* --- submission ---------------------------------------------------- */

BlockAIOCB *thread_pool_submit_aio(ThreadPoolFunc *func, void *arg,
                                   BlockCompletionFunc *cb, void *opaque)
{
    AioContext *ctx = qemu_get_current_aio_context();
    ThreadPoolElement *req;
    ThreadPool *pool;

    REQUIRE_NONNULL(func);
    AIOLAB_REQUIRE(ctx, "must be called from a thread with an AioContext "
                   "(the completion runs there) " RULE_HOME);
    pool = aio_get_thread_pool(ctx);
    req = qemu_aio_get(&thread_pool_aiocb_info, cb, opaque);
    req->func = func;
    req->arg = arg;
    req->state = THREAD_QUEUED;
    req->pool = pool;
    QLIST_INSERT_HEAD(&pool->head, req, all);
    trace_instant(TE_THREAD_POOL_SUBMIT, qatomic_read(&ctx->name), 0);

    pthread_mutex_lock(&pool->lock);
    QTAILQ_INSERT_TAIL(&pool->request_list, req, reqs);
    pool->queued++;
    /*
     * One more thread only if the queue outgrows the workers on their way
     * to it: the idle ones (each signalled takes one request) and those
     * being created.  Fast work (page-cache reads) is then carried by a
     * few busy workers instead of max_threads mostly idle ones, and slow
     * work still gets one worker per request in flight.
     */
    if (pool->queued > pool->idle_threads + pool->pending_threads +
                       pool->new_threads &&
        pool->cur_threads < pool->max_threads) {
        spawn_thread(pool);
    }
    pthread_mutex_unlock(&pool->lock);
    pthread_cond_signal(&pool->request_cond);
    return &req->common;
}

void thread_pool_submit(ThreadPoolFunc *func, void *arg)
{
    thread_pool_submit_aio(func, arg, NULL, NULL);
}

typedef struct ThreadPoolCo {
    Coroutine *co;
    int ret;
} ThreadPoolCo;

static void thread_pool_co_cb(void *opaque, int ret)
{
    ThreadPoolCo *co = opaque;

    co->ret = ret;
    aio_co_wake(co->co);
}

int coroutine_fn thread_pool_submit_co(ThreadPoolFunc *func, void *arg)
{
    ThreadPoolCo tpc = { .co = qemu_coroutine_self(), .ret = -EINPROGRESS };

    AIOLAB_REQUIRE(qemu_in_coroutine(), "must be called from coroutine "
                   "context " RULE_CO);
    thread_pool_submit_aio(func, arg, thread_pool_co_cb, &tpc);
    qemu_coroutine_yield();
    return tpc.ret;
}

/* --- lifetime ------------------------------------------------------ */

void thread_pool_update_params(ThreadPool *pool, AioContext *ctx)
{
    int i;

    pthread_mutex_lock(&pool->lock);
    pool->min_threads = qatomic_read(&ctx->thread_pool_min);
    pool->max_threads = qatomic_read(&ctx->thread_pool_max);
    /* Below min: create threads.  Above max: wake some so they exit. */
    for (i = pool->cur_threads; i < pool->min_threads; i++) {
        spawn_thread(pool);
    }
    for (i = pool->cur_threads; i > pool->max_threads; i--) {
        pthread_cond_signal(&pool->request_cond);
    }
    pthread_mutex_unlock(&pool->lock);
}

ThreadPool *thread_pool_new(AioContext *ctx)
{
    ThreadPool *pool = aiolab_xcalloc(1, sizeof(*pool));
    pthread_condattr_t attr;

    pool->ctx = ctx;
    pool->completion_bh = aio_bh_new(ctx, thread_pool_completion_bh, pool);
    pool->new_thread_bh = aio_bh_new(ctx, spawn_thread_bh_fn, pool);
    pthread_mutex_init(&pool->lock, NULL);
    pthread_cond_init(&pool->worker_stopped, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&pool->request_cond, &attr);
    pthread_condattr_destroy(&attr);
    QLIST_INIT(&pool->head);
    QTAILQ_INIT(&pool->request_list);
    thread_pool_update_params(pool, ctx);
    return pool;
}

void thread_pool_free(ThreadPool *pool)
{
    AIOLAB_ASSERT(QLIST_EMPTY(&pool->head), "thread pool of AioContext '%s' "
                  "freed with requests outstanding", qatomic_read(&pool->ctx->name));
    pthread_mutex_lock(&pool->lock);
    /* No more spawning; forget the backlog. */
    qemu_bh_delete(pool->new_thread_bh);
    pool->cur_threads -= pool->new_threads;
    pool->new_threads = 0;
    /* Make every worker exit, and wait for them. */
    pool->max_threads = 0;
    pthread_cond_broadcast(&pool->request_cond);
    while (pool->cur_threads > 0) {
        pthread_cond_wait(&pool->worker_stopped, &pool->lock);
    }
    pthread_mutex_unlock(&pool->lock);
    reap_exited(pool);

    qemu_bh_delete(pool->completion_bh);
    pthread_cond_destroy(&pool->worker_stopped);
    pthread_cond_destroy(&pool->request_cond);
    pthread_mutex_destroy(&pool->lock);
    free(pool);
}

bool aiolab_thread_pool_get_stats(AioContext *ctx, AiolabThreadPoolStats *st)
{
    ThreadPool *pool;
    ThreadPoolElement *e;

    REQUIRE_LIVE(ctx, AIO_CONTEXT_MAGIC, "AioContext");
    REQUIRE_NONNULL(st);
    pool = qatomic_load_acquire(&ctx->thread_pool);
    if (!pool) {
        return false;
    }
    memset(st, 0, sizeof(*st));
    pthread_mutex_lock(&pool->lock);
    st->cur_threads = pool->cur_threads;
    st->idle_threads = pool->idle_threads;
    st->max_threads = pool->max_threads;
    st->min_threads = pool->min_threads;
    QTAILQ_FOREACH(e, &pool->request_list, reqs) {
        st->queued++;
    }
    st->threads_created = pool->threads_created;
    pthread_mutex_unlock(&pool->lock);
    st->completed = qatomic_read(&pool->completed);
    return true;
}
