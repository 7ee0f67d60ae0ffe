/* SPDX-License-Identifier: MIT */
/*
 * aiolab/thread-pool.h - run blocking functions on worker threads and get
 * the result back in the submitting AioContext.
 *
 * Each AioContext has its own pool, created on first use.  Workers are
 * created lazily (one at a time, from a BH in the pool's context so they
 * inherit its CPU affinity), at most thread-pool-max of them; a worker idle
 * for 10 s exits unless that would leave fewer than thread-pool-min.
 *
 *   request:  QUEUED --worker takes it--> ACTIVE --func returns--> DONE
 *                |                                                  |
 *                +--cancel: ret = -ECANCELED------------------------+
 *                                                                   v
 *                             completion BH in the pool's context: cb(opaque, ret)
 *
 * The completion callback runs exactly once, in the submitting context,
 * never inside thread_pool_submit_aio().  Cancelling only stops work that
 * has not started.
 */
#ifndef AIOLAB_THREAD_POOL_H
#define AIOLAB_THREAD_POOL_H

#include <aiolab/aio.h>

typedef struct BlockAIOCB BlockAIOCB;
typedef int ThreadPoolFunc(void *opaque);
typedef void BlockCompletionFunc(void *opaque, int ret);

#define THREAD_POOL_MAX_THREADS_DEFAULT 64

/**
 * thread_pool_submit_aio: run @func(@arg) on a worker of the current
 * context's pool; then @cb(@opaque, ret) in this context.
 * Returns: a handle for bdrv_aio_cancel(), valid until @cb has run.
 * Context: a thread with an AioContext (home thread of the current one).
 */
AIOLAB_API BlockAIOCB *thread_pool_submit_aio(ThreadPoolFunc *func, void *arg,
                                              BlockCompletionFunc *cb,
                                              void *opaque);

/**
 * thread_pool_submit: fire and forget: run @func(@arg) on a worker.
 * Context: as thread_pool_submit_aio().
 */
AIOLAB_API void thread_pool_submit(ThreadPoolFunc *func, void *arg);

/**
 * thread_pool_submit_co: run @func(@arg) on a worker; yield until done.
 * Returns: @func's return value.
 * Context: coroutine_fn, in a thread with an AioContext.
 */
AIOLAB_API int coroutine_fn thread_pool_submit_co(ThreadPoolFunc *func,
                                                  void *arg);

/**
 * bdrv_aio_cancel: cancel @acb if it has not started, and wait until its
 * callback has run (with -ECANCELED, or the real result).
 * Context: main loop (BQL held), or the home thread of @acb's context.
 */
AIOLAB_API void bdrv_aio_cancel(BlockAIOCB *acb);

/**
 * bdrv_aio_cancel_async: request cancellation; the callback still runs
 * exactly once, later, in @acb's context.  Context: any thread (the pool
 * takes its lock; QEMU calls it from the home thread).
 */
AIOLAB_API void bdrv_aio_cancel_async(BlockAIOCB *acb);

/*
 * aiolab additions: observing a pool (for tests, the tutorial and the
 * dump) and shortening the idle timeout in tests.
 */
typedef struct AiolabThreadPoolStats {
    int cur_threads;       /* workers alive (or being created) */
    int idle_threads;      /* workers waiting for work */
    int max_threads;
    int min_threads;
    int queued;            /* requests not yet taken by a worker */
    int64_t completed;     /* callbacks run so far */
    int64_t threads_created;
} AiolabThreadPoolStats;

/**
 * aiolab_thread_pool_get_stats: a snapshot of @ctx's pool.
 * Returns: false if @ctx has no pool yet.  Context: any thread.
 */
AIOLAB_API bool aiolab_thread_pool_get_stats(AioContext *ctx,
                                             AiolabThreadPoolStats *stats);

/**
 * aiolab_thread_pool_set_idle_timeout_ns: how long a worker waits for work
 * before exiting (default 10 s), for every pool created afterwards and
 * for the workers' next wait.  Context: any thread.
 */
AIOLAB_API void aiolab_thread_pool_set_idle_timeout_ns(int64_t ns);

#endif
