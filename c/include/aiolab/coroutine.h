/* SPDX-License-Identifier: MIT */
/*
 * aiolab/coroutine.h - coroutines: functions with their own stack that can
 * stop in the middle (yield) and be resumed later (entered again).
 *
 * Block I/O in QEMU is written as coroutines: a request yields while the
 * kernel or a worker thread does the work, and is woken by the completion
 * callback.  One thread runs many requests this way without locks.
 *
 *   enter(co) --> co runs --> yield --> back in the enterer
 *                     ^                        |
 *                     +----- aio_co_wake(co) --+  (from any thread)
 *
 * A coroutine runs in one AioContext at a time (the one that entered it);
 * aio_co_wake() resumes it there.  Entering a coroutine that is already
 * running, or scheduling one twice, aborts loudly: those are the bugs.
 *
 * Implementation: each coroutine has a 1 MiB stack (with a guard page),
 * started once with makecontext/swapcontext and switched afterwards with
 * sigsetjmp/siglongjmp, which costs tens of ns where swapcontext costs
 * hundreds (it makes a sigprocmask system call).  Terminated coroutines
 * go back to a per-thread pool.
 */
#ifndef AIOLAB_COROUTINE_H
#define AIOLAB_COROUTINE_H

#include <pthread.h>
#include <aiolab/aio.h>
#include <aiolab/timer.h>

/* typedef struct Coroutine Coroutine; is in aio.h */
typedef void coroutine_fn CoroutineEntry(void *opaque);

/**
 * qemu_coroutine_create: a coroutine that will run @entry(@opaque) when
 * first entered.  Taken from the thread's pool when possible.
 * Context: any thread.
 */
AIOLAB_API Coroutine *qemu_coroutine_create(CoroutineEntry *entry,
                                            void *opaque);

/**
 * qemu_coroutine_enter: run @co until it yields or returns, in the
 * caller's current AioContext.  Aborts if @co is already running
 * ("re-entered recursively") or scheduled.
 * Context: any thread (its current AioContext becomes @co's).
 */
AIOLAB_API void qemu_coroutine_enter(Coroutine *co);

/**
 * qemu_aio_coroutine_enter: qemu_coroutine_enter() in @ctx.
 * Context: @ctx's home thread (not checked: @co runs in the calling
 * thread, and aio_co_wake() will resume it in @ctx).
 */
AIOLAB_API void qemu_aio_coroutine_enter(AioContext *ctx, Coroutine *co);

/**
 * qemu_coroutine_enter_if_inactive: enter @co unless it is running.
 * Context: as qemu_coroutine_enter().
 */
AIOLAB_API void qemu_coroutine_enter_if_inactive(Coroutine *co);

/**
 * qemu_coroutine_yield: go back to whoever entered this coroutine.
 * Context: coroutine_fn.
 */
AIOLAB_API void coroutine_fn qemu_coroutine_yield(void);

/**
 * qemu_coroutine_self: the running coroutine (the thread's leader
 * pseudo-coroutine outside any coroutine).
 * Context: any thread.
 */
AIOLAB_API Coroutine *qemu_coroutine_self(void);

/**
 * qemu_in_coroutine: is the caller running in a coroutine?
 * Context: any thread.
 */
AIOLAB_API bool qemu_in_coroutine(void);

/**
 * qemu_coroutine_entered: has @co been entered and not yet yielded?
 * (True also while @co has entered another coroutine.)
 * Context: any thread (from another thread than @co's, a snapshot).
 */
AIOLAB_API bool qemu_coroutine_entered(Coroutine *co);

/**
 * qemu_coroutine_get_aio_context: where @co last ran.
 * Context: any thread.
 */
AIOLAB_API AioContext *qemu_coroutine_get_aio_context(Coroutine *co);

/**
 * aio_co_reschedule_self: move the calling coroutine to @new_ctx's home
 * thread.  Goes through a BH in the old context, so the new thread cannot
 * enter it before it has yielded.
 * Context: coroutine_fn.
 */
AIOLAB_API void coroutine_fn aio_co_reschedule_self(AioContext *new_ctx);

/**
 * qemu_co_sleep_ns: sleep @ns on clock @type; the rest of the context
 * keeps running.  Context: coroutine_fn (in a thread with an AioContext).
 */
AIOLAB_API void coroutine_fn qemu_co_sleep_ns(QEMUClockType type, int64_t ns);

/**
 * qemu_coroutine_inc_pool_size / dec_pool_size: let the global pool keep
 * @additional_pool_size more coroutines (virtio-blk grows it by
 * num_queues * queue_size / 2).
 * Context: any thread (an atomic add; QEMU's devices call it with the
 * BQL held, from realize and unrealize).
 */
AIOLAB_API void qemu_coroutine_inc_pool_size(unsigned int additional_pool_size);
AIOLAB_API void qemu_coroutine_dec_pool_size(unsigned int removing_pool_size);

/*
 * CoMutex: a mutex for coroutines.  Waiting yields instead of blocking the
 * thread; it works across threads (the waker resumes the waiter in its
 * own context with aio_co_wake()).  Uncontended lock/unlock are one
 * atomic operation each.  A coroutine must not terminate holding one.
 *
 * Where QEMU differs: QEMU's waiter queue is lock-free with a handoff
 * protocol; aiolab protects it with a small pthread mutex (never held
 * across a yield) and keeps only the handoff to a locker still enqueueing.
 */
typedef struct CoMutex {
    unsigned locked;             /* atomic: holder + lockers on the way */
    Coroutine *holder;           /* for assertions and the dump */
    AioContext *ctx;             /* where the holder runs */
    pthread_mutex_t wait_lock;   /* protects waiters and handoff */
    Coroutine *waiters_head;     /* FIFO of coroutines waiting for it */
    Coroutine *waiters_tail;
    bool handoff;                /* an unlocker found no waiter yet: the
                                  * next locker to enqueue takes it */
} CoMutex;

/**
 * qemu_co_mutex_init: initialise (or a zeroed CoMutex is valid).
 * Context: any thread, before the mutex is used.
 */
AIOLAB_API void qemu_co_mutex_init(CoMutex *mutex);
/**
 * qemu_co_mutex_lock: take @mutex, yielding while it is held.
 * Context: coroutine_fn.
 */
AIOLAB_API void coroutine_fn qemu_co_mutex_lock(CoMutex *mutex);
/**
 * qemu_co_mutex_unlock: release; wakes the first waiter, if any.
 * Context: coroutine_fn, in the coroutine that holds @mutex.
 */
AIOLAB_API void coroutine_fn qemu_co_mutex_unlock(CoMutex *mutex);
/**
 * qemu_co_mutex_assert_locked: abort unless the caller holds it.
 * Context: coroutine_fn (outside a coroutine it always aborts: plain code
 * cannot hold a CoMutex).
 */
AIOLAB_API void qemu_co_mutex_assert_locked(CoMutex *mutex);

/*
 * CoQueue: coroutines waiting for a condition, protected by a CoMutex
 * (or used by coroutines of one context only, with NULL).
 */
typedef struct CoQueue {
    Coroutine *head;
    Coroutine *tail;
} CoQueue;

/**
 * qemu_co_queue_init: initialise @queue, empty (a zeroed CoQueue is too).
 * Context: any thread, before the queue is used.
 */
AIOLAB_API void qemu_co_queue_init(CoQueue *queue);
/**
 * qemu_co_queue_wait: add self to @queue, release @lock (CoMutex or
 * NULL), yield; re-take @lock when woken.  Context: coroutine_fn.
 */
AIOLAB_API void coroutine_fn qemu_co_queue_wait(CoQueue *queue, CoMutex *lock);
/**
 * qemu_co_queue_next: wake the first waiter (it runs when the caller
 * yields).  Returns: false if the queue was empty.  Context: coroutine_fn.
 */
AIOLAB_API bool coroutine_fn qemu_co_queue_next(CoQueue *queue);
/** qemu_co_queue_restart_all: wake every waiter.  Context: coroutine_fn. */
AIOLAB_API void coroutine_fn qemu_co_queue_restart_all(CoQueue *queue);
/**
 * qemu_co_enter_next: wake the first waiter.  Called outside any
 * coroutine with @lock NULL, the waiter (of the caller's context) runs
 * before this returns; called from a coroutine holding @lock (a CoMutex),
 * the lock is released around the wake-up and the waiter runs when the
 * caller yields.  Returns: false if the queue was empty.
 * Context: with @lock NULL, the home thread of the one AioContext that
 * uses @queue; with a CoMutex, only a coroutine holding it (coroutine_fn).
 */
AIOLAB_API bool qemu_co_enter_next(CoQueue *queue, CoMutex *lock);
/**
 * qemu_co_enter_all: qemu_co_enter_next() until the queue is empty.
 * Context: as qemu_co_enter_next().
 */
AIOLAB_API void qemu_co_enter_all(CoQueue *queue, CoMutex *lock);
/**
 * qemu_co_queue_empty: no waiter?
 * Context: wherever @queue may be used: a coroutine holding its CoMutex,
 * or the home thread of the one AioContext that uses it.
 */
AIOLAB_API bool qemu_co_queue_empty(CoQueue *queue);

/*
 * aiolab additions: coroutine statistics and listing (for the dump, the
 * gdb script and the tutorial).
 */
typedef struct AiolabCoroutineInfo {
    const void *co;
    const char *state;          /* "running", "yielded", "scheduled", "pooled" */
    const char *scheduled_by;   /* function that scheduled it, or NULL */
    const char *ctx_name;       /* context it last ran in, or NULL */
    void *entry;                /* entry function */
} AiolabCoroutineInfo;

/**
 * aiolab_coroutine_list: up to @max live coroutines (not pooled ones).
 * Returns: how many there are.  Racy snapshot, for diagnostics.
 * Context: any thread, also aiolab_dump_state()'s SIGQUIT handler (it
 * only try-locks, and returns 0 when it cannot get the lock).
 */
AIOLAB_API size_t aiolab_coroutine_list(AiolabCoroutineInfo *out, size_t max);

/**
 * aiolab_coroutine_pool_stats: coroutines ever allocated, and pooled now.
 * Context: any thread (not a signal handler: it takes the registry lock).
 */
AIOLAB_API void aiolab_coroutine_pool_stats(uint64_t *allocated,
                                            uint64_t *pooled);

#endif
