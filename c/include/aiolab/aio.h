/* SPDX-License-Identifier: MIT */
/*
 * aiolab/aio.h - AioContext: an event loop with fd handlers, bottom halves
 * and timers, polled by exactly one thread at a time (its home thread).
 *
 *   aio_poll(ctx, blocking) runs one iteration:
 *     compute timeout -> (adaptive busy-poll) -> announce (notify_me)
 *     -> wait in poll/epoll/io_uring -> accept the notification
 *     -> run BHs -> run ready fd handlers -> run expired timers
 *
 * It returns true if some callback other than the internal notifier and
 * idle BHs ran ("progress").  Everything another thread wants from this
 * loop goes through a thread-safe door: a BH (qemu_bh_schedule), a timer,
 * an event notifier, aio_co_schedule(), or aio_notify().
 *
 * Header sections are grouped by who may call the functions, as in
 * QEMU's include/block/aio.h.
 */
#ifndef AIOLAB_AIO_H
#define AIOLAB_AIO_H

#include <aiolab/compiler.h>
#include <aiolab/error.h>
#include <aiolab/event_notifier.h>

typedef struct AioContext AioContext;
typedef struct QEMUBH QEMUBH;
typedef struct Coroutine Coroutine;
typedef void QEMUBHFunc(void *opaque);
typedef void IOHandler(void *opaque);
typedef bool AioPollFn(void *opaque);

/*
 * MemReentrancyGuard: set while a device is handling an access (MMIO, or a
 * guarded BH's callback).  A DMA from the device's BH back into its own
 * MMIO sees the guard engaged and is refused, which closes a classic class
 * of use-after-free bugs (QEMU 8.0).
 */
typedef struct {
    bool engaged_in_io;
} MemReentrancyGuard;

/* ---------------------------------------------------------------------
 * Any thread: creating, referencing and configuring a context
 * --------------------------------------------------------------------- */

/**
 * aio_context_new: create an AioContext with its notifier, its BH used by
 * aio_co_schedule() and its timer lists.  Polling is off (poll-max-ns 0);
 * an IOThread turns it on.  The fd monitor is poll(2), upgraded to epoll at
 * 64 fds, unless AIOLAB_FDMON=poll|epoll|io_uring says otherwise.
 * Returns: a context with one reference, or NULL with @errp set.
 * Context: any thread.  The context has no home thread until a thread
 * makes it its own with qemu_set_current_aio_context() (an IOThread does);
 * polling it from any other thread breaks the home-thread rule.
 */
AIOLAB_API AioContext *aio_context_new(Error **errp);

/** aio_context_ref: take a reference.  Context: any thread. */
AIOLAB_API void aio_context_ref(AioContext *ctx);

/**
 * aio_context_unref: drop a reference; the last one frees the context.
 * Every BH must have been deleted by then: a live BH aborts with
 * "BH '<name>' leaked".
 * Context: any thread (the last reference: no thread may still poll it).
 */
AIOLAB_API void aio_context_unref(AioContext *ctx);

/**
 * aio_context_set_poll_params: adaptive polling parameters.
 * @max_ns: longest busy-poll before sleeping; 0 disables polling.
 * @grow: factor applied to poll_ns when it was too short (0 means 2).
 * @shrink: divisor applied when polling was useless (0 means "to 0").
 * Negative values are refused with an error and change nothing.
 * Resets the current poll time to 0 and notifies the context.
 * Context: any thread.
 */
AIOLAB_API void aio_context_set_poll_params(AioContext *ctx, int64_t max_ns,
                                            int64_t grow, int64_t shrink,
                                            Error **errp);

/**
 * aio_context_set_aio_params: the largest batch an io_uring submission
 * may hold (0 = the engine's default).  QEMU 9.0 has no errp here: the
 * value is validated where it comes in (the IOThread's aio-max-batch).
 * Context: any thread.
 */
AIOLAB_API void aio_context_set_aio_params(AioContext *ctx, int64_t max_batch);

/**
 * aio_context_set_thread_pool_params: bounds of this context's thread pool.
 * Refuses min > max, max == 0, negative values and values above INT_MAX with
 * "bad thread-pool-min/thread-pool-max values".
 * Context: any thread.
 */
AIOLAB_API void aio_context_set_thread_pool_params(AioContext *ctx,
                                                   int64_t min, int64_t max,
                                                   Error **errp);

/* ---------------------------------------------------------------------
 * Home thread only
 * --------------------------------------------------------------------- */

/**
 * aio_poll: run one iteration of @ctx's event loop.
 * @blocking: wait for an event (or the next timer) when nothing is ready.
 *
 * Order: BHs, then ready fd/poll handlers, then expired timers.  With
 * @blocking false and every handler pollable, the fd monitor is not
 * consulted at all (QEMU's need_wait rule): fd events then wait for the
 * next blocking call.
 *
 * Returns: true if progress was made (a callback other than the context's
 * own notifier or an idle BH ran).  A blocking call woken only by
 * aio_notify() returns false.
 * Context: home thread only (for the main context: a thread holding the
 * BQL, or the main-loop thread -- which must hold the BQL too once any
 * other thread has taken it).  Never from a coroutine.
 */
AIOLAB_API bool aio_poll(AioContext *ctx, bool blocking);

/**
 * qemu_set_current_aio_context: make @ctx the calling thread's context,
 * so that qemu_get_current_aio_context() returns it and the thread becomes
 * its home thread.  Once per thread.
 * Context: the thread that will poll @ctx.
 */
AIOLAB_API void qemu_set_current_aio_context(AioContext *ctx);

/**
 * aiolab_clear_current_aio_context: if @ctx is the calling thread's current
 * context, forget it, so that the thread may adopt another (the Python
 * binding does this when a context is closed).  Never for the main
 * context.  aiolab only: QEMU threads keep their context for life.
 * Context: the thread whose current context @ctx is.
 */
AIOLAB_API void aiolab_clear_current_aio_context(AioContext *ctx);

/*
 * Embedding an AioContext in another event loop (asyncio, a GUI toolkit):
 * the job QEMU gives to its GSource callbacks aio_ctx_prepare/check/
 * dispatch.  Waiting on the context's fd alone loses wake-ups: aio_notify()
 * only writes the notifier while a waiter has announced itself, and
 * aio_context_prepare() is that announcement.
 *
 *     for (;;) {
 *         int64_t ns = aio_context_prepare(ctx);        // announce
 *         if (ns != 0) {
 *             poll(aio_context_get_fd(ctx) ... ns ...); // sleep
 *         }
 *         if (aio_context_check(ctx)) {                 // withdraw
 *             aio_context_dispatch(ctx);                // run
 *         }
 *     }
 *
 * Using these switches the context's fd monitor to epoll (as QEMU's
 * aio_get_g_source() turns io_uring off): the epoll fd is the one fd that
 * becomes readable when anything in the context is.
 */

/**
 * aio_context_get_fd: the fd to poll for readability.
 * Context: home thread only.
 */
AIOLAB_API int aio_context_get_fd(AioContext *ctx);

/**
 * aio_context_prepare: announce a wait.
 * Returns: ns until the next timer, -1 if none, 0 if work is ready (then
 * do not sleep).
 * Context: home thread only.
 */
AIOLAB_API int64_t aio_context_prepare(AioContext *ctx);

/**
 * aio_context_check: withdraw the announcement after the wait.  Call it
 * after every aio_context_prepare().
 * Returns: true if aio_context_dispatch() has something to run.
 * Context: home thread only.
 */
AIOLAB_API bool aio_context_check(AioContext *ctx);

/**
 * aio_context_dispatch: run ready BHs, handlers and timers (whether they
 * made progress is not returned: the embedding loop does not need it).
 * Context: home thread only.
 */
AIOLAB_API void aio_context_dispatch(AioContext *ctx);

/* ---------------------------------------------------------------------
 * Any thread
 * --------------------------------------------------------------------- */

/**
 * aio_notify: make the current or next aio_poll(@ctx) return instead of
 * sleeping.  Cheap when nobody sleeps: it sets a flag, and writes the
 * eventfd only if a poller has announced a wait (notify_me).
 * Context: any thread.
 */
AIOLAB_API void aio_notify(AioContext *ctx);

/**
 * aio_set_fd_handler: register, replace or remove @fd's handler.
 * @io_read: called when readable (or HUP/ERR).
 * @io_write: called when writable (or ERR).
 * @io_poll: busy-poll check: returns true when there is work.  Ignored
 *           unless @io_poll_ready is given too.
 * @io_poll_ready: called instead of @io_read when @io_poll found work.
 * All of @io_read, @io_write and @io_poll NULL removes the handler.  A
 * handler may remove itself (or another) from inside any callback.
 * One handler per fd per context: registering again replaces it.
 * Context: any thread.
 */
AIOLAB_API void aio_set_fd_handler(AioContext *ctx, int fd, IOHandler *io_read,
                                   IOHandler *io_write, AioPollFn *io_poll,
                                   IOHandler *io_poll_ready, void *opaque);

/**
 * aio_set_event_notifier: aio_set_fd_handler() on @e's fd, with @e as the
 * callbacks' argument.  All NULL removes it.
 * Context: any thread.
 */
AIOLAB_API void aio_set_event_notifier(AioContext *ctx, EventNotifier *e,
                                       EventNotifierHandler *io_read,
                                       AioPollFn *io_poll,
                                       EventNotifierHandler *io_poll_ready);

/**
 * aio_set_event_notifier_poll: callbacks run when @ctx starts and stops
 * busy-polling @e's handler (virtio disables guest notifications while
 * polling).  Does nothing if @e is not registered.  A begin is not always
 * followed by an end: removing the handler while polling skips it.
 * Context: any thread.
 */
AIOLAB_API void aio_set_event_notifier_poll(AioContext *ctx, EventNotifier *e,
                                            EventNotifierHandler *io_poll_begin,
                                            EventNotifierHandler *io_poll_end);

/*
 * Bottom halves.  A BH is a callback scheduled to run once, soon, in its
 * context's home thread.  Scheduling is wait-free and thread-safe; a BH
 * scheduled N times before it runs runs once.  A BH scheduled while BHs
 * run (even by itself) runs in the next aio_poll(), not this one.  BHs of
 * one pass run in reverse scheduling order.
 *
 * The BH names (for "BH 'name' leaked" and traces) come from macros, as in
 * QEMU: aio_bh_new(ctx, cb, opaque) records "cb".  Bindings, which have no
 * C identifier to stringify, call the *_full functions with a name.
 */

/**
 * aio_bh_new_full: create a BH in @ctx.
 * @name: a string that outlives the BH (a literal), shown in traces.
 * @guard: a device's MemReentrancyGuard, engaged while @cb runs, or NULL.
 * Context: any thread.
 */
AIOLAB_API QEMUBH *aio_bh_new_full(AioContext *ctx, QEMUBHFunc *cb,
                                   void *opaque, const char *name,
                                   MemReentrancyGuard *guard);
#define aio_bh_new(ctx, cb, opaque) \
    aio_bh_new_full((ctx), (cb), (opaque), #cb, NULL)
#define aio_bh_new_guarded(ctx, cb, opaque, guard) \
    aio_bh_new_full((ctx), (cb), (opaque), #cb, (guard))
/* The same as functions, named after their callback "aio_bh_new". */
AIOLAB_API QEMUBH *(aio_bh_new)(AioContext *ctx, QEMUBHFunc *cb, void *opaque);
AIOLAB_API QEMUBH *(aio_bh_new_guarded)(AioContext *ctx, QEMUBHFunc *cb,
                                        void *opaque,
                                        MemReentrancyGuard *guard);

/**
 * aio_bh_schedule_oneshot_full: run @cb(@opaque) once in @ctx's home
 * thread, then free the BH.  Not cancellable.
 * Context: any thread.
 */
AIOLAB_API void aio_bh_schedule_oneshot_full(AioContext *ctx, QEMUBHFunc *cb,
                                             void *opaque, const char *name);
#define aio_bh_schedule_oneshot(ctx, cb, opaque) \
    aio_bh_schedule_oneshot_full((ctx), (cb), (opaque), #cb)
AIOLAB_API void (aio_bh_schedule_oneshot)(AioContext *ctx, QEMUBHFunc *cb,
                                          void *opaque);

/** qemu_bh_schedule: run @bh at the next aio_poll().  Context: any thread. */
AIOLAB_API void qemu_bh_schedule(QEMUBH *bh);

/**
 * qemu_bh_schedule_idle: like qemu_bh_schedule(), but running it is not
 * progress, and a blocking poll may sleep up to 10 ms before running it.
 * Context: any thread.
 */
AIOLAB_API void qemu_bh_schedule_idle(QEMUBH *bh);

/**
 * qemu_bh_cancel: unschedule @bh if it has not run yet.  From another
 * thread this races with the home thread running it.
 * Context: any thread; exact only in the home thread.
 */
AIOLAB_API void qemu_bh_cancel(QEMUBH *bh);

/**
 * qemu_bh_delete: cancel and free @bh; the memory goes at the next
 * aio_poll().  @bh must not be used afterwards.
 * Context: any thread.
 */
AIOLAB_API void qemu_bh_delete(QEMUBH *bh);

/**
 * qemu_get_current_aio_context: the calling thread's context: its own (an
 * IOThread's, or the main loop's in the main thread), else the main
 * context if the thread holds the BQL (a vCPU), else NULL (pool workers).
 * Context: any thread.
 */
AIOLAB_API AioContext *qemu_get_current_aio_context(void);

/**
 * in_aio_context_home_thread: may the calling thread poll @ctx?
 * True when @ctx is its current context, or @ctx is the main context and
 * the thread holds the BQL.  For use in assertions.
 * Context: any thread.
 */
AIOLAB_API bool in_aio_context_home_thread(AioContext *ctx);

/*
 * Coroutines in contexts (the Coroutine type is in coroutine.h).
 */

/**
 * aio_co_schedule: enter @co in @ctx's home thread, from a BH.  Coroutines
 * scheduled into one context are entered in FIFO order.  Scheduling a
 * coroutine that is already scheduled aborts ("already scheduled").
 * @co must have yielded (or be the caller, about to yield in @ctx).
 * Context: any thread.
 */
AIOLAB_API void aio_co_schedule(AioContext *ctx, Coroutine *co);

/**
 * aio_co_wake: resume @co in the context where it last ran.
 * Context: any thread, in or out of a coroutine.
 */
AIOLAB_API void aio_co_wake(Coroutine *co);

/**
 * aio_co_enter: enter @co in @ctx: scheduled if @ctx is not the caller's
 * context; queued to run when the caller yields if the caller is a
 * coroutine (no stack nesting); entered at once otherwise.
 * Context: any thread.
 */
AIOLAB_API void aio_co_enter(AioContext *ctx, Coroutine *co);

/* ---------------------------------------------------------------------
 * aiolab additions (QEMU reads these fields directly)
 * --------------------------------------------------------------------- */

/**
 * aiolab_aio_context_get_poll_ns: the current adaptive poll time.
 * Context: any thread (a snapshot: the home thread adjusts it in every
 * aio_poll()).
 */
AIOLAB_API int64_t aiolab_aio_context_get_poll_ns(AioContext *ctx);

/**
 * aiolab_aio_context_get_poll_params: the parameters set above.
 * Context: any thread.
 */
AIOLAB_API void aiolab_aio_context_get_poll_params(AioContext *ctx,
                                                   int64_t *max_ns,
                                                   int64_t *grow,
                                                   int64_t *shrink);

/**
 * aiolab_aio_context_get_aio_max_batch: aio-max-batch (0 = default).
 * Context: any thread.
 */
AIOLAB_API int64_t aiolab_aio_context_get_aio_max_batch(AioContext *ctx);

/**
 * aiolab_aio_context_compute_timeout: what a blocking aio_poll() would wait
 * for now, in ns: 0 if a BH is scheduled, at most 10 ms with an idle BH,
 * else the next timer's deadline, -1 for none.  QEMU: aio_compute_timeout.
 * Context: home thread only.
 */
AIOLAB_API int64_t aiolab_aio_context_compute_timeout(AioContext *ctx);

/**
 * aiolab_aio_poll_ready: one blocking aio_poll() iteration if it would
 * not sleep (aiolab_aio_context_compute_timeout() is 0); -1, without
 * polling, if it would.  For a binding that must arm a wake-up before a
 * poll that sleeps (Python's Ctrl-C): a busy loop then costs it one call
 * per iteration instead of two.  Returns aio_poll()'s result otherwise.
 * Context: home thread only.
 */
AIOLAB_API int aiolab_aio_poll_ready(AioContext *ctx);

/**
 * aiolab_aio_context_set_name: a name for traces and aiolab_dump_state()
 * ("main", "iohandler", "IO <id>").  Copied.  Context: any thread.
 */
AIOLAB_API void aiolab_aio_context_set_name(AioContext *ctx, const char *name);
AIOLAB_API const char *aiolab_aio_context_get_name(AioContext *ctx);

/**
 * aiolab_aio_context_fdmon_name: "poll", "epoll" or "io_uring": the fd
 * monitor (QEMU's FDMonOps) this context is using now.
 * Context: any thread; exact only in the home thread (which may switch
 * the monitor: aiolab_aio_context_set_fdmon(), aio_context_get_fd()).
 */
AIOLAB_API const char *aiolab_aio_context_fdmon_name(AioContext *ctx);

/**
 * aiolab_aio_context_set_fdmon: switch the fd monitor ("poll", "epoll",
 * "io_uring").  Refused while handlers are being dispatched, and for
 * io_uring when the kernel refuses it or liburing is not built in.
 * Context: home thread only, outside aio_poll().
 */
AIOLAB_API bool aiolab_aio_context_set_fdmon(AioContext *ctx, const char *name,
                                             Error **errp);

#endif
