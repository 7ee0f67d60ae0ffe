/* SPDX-License-Identifier: MIT */
/*
 * aiolab/aio-wait.h - waiting for a condition that another thread makes
 * true, without blocking the loop that must make progress meanwhile.
 *
 * AIO_WAIT_WHILE(ctx, cond) polls until @cond is false:
 *   - in @ctx's home thread, it polls @ctx itself;
 *   - in the main loop (BQL held), it polls the main context, and whoever
 *     changes @cond from another thread must call aio_wait_kick(), which
 *     wakes the main loop with a dummy BH.
 * No other thread may wait: kicks only ever reach the main loop, so an
 * IOThread waiting on another IOThread's context would sleep forever.
 * The debug build aborts on that, saying so.
 *
 * Usage (the main loop waits for work done in an IOThread):
 *
 *     static void work_bh(void *opaque)        // runs in the IOThread
 *     {
 *         Work *w = opaque;
 *         do_it(w);
 *         __atomic_store_n(&w->done, true,   // publish, then ...
 *                          __ATOMIC_SEQ_CST);
 *         aio_wait_kick();                   // ... wake the waiter
 *     }
 *
 *     aio_bh_schedule_oneshot(iothread_ctx, work_bh, &w);
 *     AIO_WAIT_WHILE(iothread_ctx,
 *                    !__atomic_load_n(&w.done, __ATOMIC_SEQ_CST));
 *
 * (aio_wait_bh_oneshot() is exactly this.)  The waiter's own context keeps
 * running BHs and handlers while it waits: to stop the world, drain.
 */
#ifndef AIOLAB_AIO_WAIT_H
#define AIOLAB_AIO_WAIT_H

#include <aiolab/aio.h>

/**
 * aiolab_aio_wait_begin / _end: the two halves of AIO_WAIT_WHILE.  begin
 * counts the caller as a waiter (before @cond is first evaluated: pairs
 * with the check in aio_wait_kick()), checks the home-thread rule, and
 * returns the context to poll.
 * Context: as AIO_WAIT_WHILE (begin aborts otherwise, in every build);
 * end in the thread that called begin.
 */
AIOLAB_API AioContext *aiolab_aio_wait_begin(AioContext *ctx, const char *func,
                                             const char *file, int line,
                                             const char *cond);
AIOLAB_API void aiolab_aio_wait_end(void);

/**
 * AIO_WAIT_WHILE: poll while @cond is true.
 * Returns (as an expression): true if it polled at least once.
 * Context: @ctx's home thread, or the main loop with the BQL held.
 */
#define AIO_WAIT_WHILE(ctx, cond) ({                                      \
    bool waited_ = false;                                                 \
    AioContext *poll_ctx_ = aiolab_aio_wait_begin((ctx), __func__,        \
                                                  __FILE__, __LINE__,     \
                                                  #cond);                 \
    while ((cond)) {                                                      \
        aio_poll(poll_ctx_, true);                                        \
        waited_ = true;                                                   \
    }                                                                     \
    aiolab_aio_wait_end();                                                \
    waited_; })

/**
 * AIO_WAIT_WHILE_UNLOCKED: the same in QEMU 9.0.  (Before the AioContext
 * lock was removed, AIO_WAIT_WHILE released and re-took it around
 * aio_poll.)
 * Context: as AIO_WAIT_WHILE.
 */
#define AIO_WAIT_WHILE_UNLOCKED(ctx, cond) AIO_WAIT_WHILE(ctx, cond)

/**
 * aio_wait_kick: wake AIO_WAIT_WHILE waiters so they re-evaluate their
 * condition.  Costs one atomic operation when nobody waits.  Call it after
 * making a waited-on condition false, and make that write sequentially
 * consistent (an atomic read-modify-write, or __atomic_store_n(...,
 * __ATOMIC_SEQ_CST)): the kick's own seq_cst operation orders it before
 * the read of the waiter count only then (on x86 any write would do).
 * Context: any thread.
 */
AIOLAB_API void aio_wait_kick(void);

/**
 * aio_wait_bh_oneshot: run @cb(@opaque) in @ctx's home thread and wait
 * until it has returned.  The main loop keeps running while it waits.
 * Context: main loop: a thread whose current context is the main one (the
 * main-loop thread, or a thread holding the BQL), as QEMU asserts.
 */
AIOLAB_API void aio_wait_bh_oneshot(AioContext *ctx, QEMUBHFunc *cb,
                                    void *opaque);

/**
 * aiolab_aio_wait_num_waiters: threads inside AIO_WAIT_WHILE now.
 * Context: any thread (a snapshot).
 */
AIOLAB_API unsigned aiolab_aio_wait_num_waiters(void);

#endif
