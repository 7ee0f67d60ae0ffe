/* SPDX-License-Identifier: MIT */
/*
 * aiolab/main-loop.h - the main loop and the Big QEMU Lock (BQL).
 *
 * The main-loop thread runs main_loop_wait() in a loop.  It holds the BQL
 * all the time except while it sleeps, so BHs, fd handlers and timers of
 * the main loop all run under the BQL.  Other threads that touch global
 * state (vCPUs on an MMIO exit, monitor commands) take the BQL too.
 *
 * Two contexts belong to the main loop:
 *   qemu_get_aio_context()      the main AioContext: BHs, block I/O
 *                               completions, AIO_WAIT_WHILE polls it
 *   iohandler_get_aio_context() fd handlers registered with
 *                               qemu_set_fd_handler() (monitor, chardevs);
 *                               dispatched only by main_loop_wait(), never
 *                               by a nested aio_poll(), so a monitor
 *                               command cannot run in the middle of a
 *                               drain.
 */
#ifndef AIOLAB_MAIN_LOOP_H
#define AIOLAB_MAIN_LOOP_H

#include <aiolab/aio.h>

/* ---------------------------------------------------------------------
 * Global state: the main-loop thread
 * --------------------------------------------------------------------- */

/**
 * qemu_init_main_loop: create the main and iohandler contexts and the
 * main loop's timer lists; the calling thread becomes the main-loop thread
 * and its current context is the main context.  It does not take the BQL:
 * call bql_lock() next, as QEMU's qemu_init() does.  A second call is a
 * no-op returning 0.
 * Returns: 0, or -errno with @errp set.
 * Context: the thread that is to be the main-loop thread, with no current
 * AioContext yet; normally once, at startup (calls are serialised; the
 * first one wins).  The BQL need not be held.
 */
AIOLAB_API int qemu_init_main_loop(Error **errp);

/**
 * main_loop_wait: one iteration of the main loop: wait for the main and
 * iohandler contexts and the main loop's timers, dropping the BQL only
 * around the sleep, then run what is ready.
 * @nonblocking: do not sleep.
 * Context: main-loop thread, BQL held.
 */
AIOLAB_API void main_loop_wait(int nonblocking);

/* ---------------------------------------------------------------------
 * Any thread
 * --------------------------------------------------------------------- */

/** qemu_get_aio_context: the main AioContext.  Context: any thread. */
AIOLAB_API AioContext *qemu_get_aio_context(void);

/**
 * iohandler_get_aio_context: the iohandler context.
 * Context: any thread.
 */
AIOLAB_API AioContext *iohandler_get_aio_context(void);


/** qemu_bh_new_full: a BH in the main context.  Context: any thread. */
AIOLAB_API QEMUBH *qemu_bh_new_full(QEMUBHFunc *cb, void *opaque,
                                    const char *name,
                                    MemReentrancyGuard *guard);
#define qemu_bh_new(cb, opaque) qemu_bh_new_full((cb), (opaque), #cb, NULL)
#define qemu_bh_new_guarded(cb, opaque, guard) \
    qemu_bh_new_full((cb), (opaque), #cb, (guard))
AIOLAB_API QEMUBH *(qemu_bh_new)(QEMUBHFunc *cb, void *opaque);
AIOLAB_API QEMUBH *(qemu_bh_new_guarded)(QEMUBHFunc *cb, void *opaque,
                                         MemReentrancyGuard *guard);

/**
 * qemu_set_fd_handler: register @fd in the iohandler context (see above).
 * NULL @fd_read and @fd_write remove it.  Context: any thread.
 */
AIOLAB_API void qemu_set_fd_handler(int fd, IOHandler *fd_read,
                                    IOHandler *fd_write, void *opaque);

/** qemu_notify_event: wake the main loop.  Context: any thread. */
AIOLAB_API void qemu_notify_event(void);

/*
 * The BQL.  A plain, non-recursive mutex; bql_locked() is per thread.
 * Locking it twice in one thread, or unlocking it without holding it,
 * aborts with a message.  It must be the outermost lock (take it before
 * any other, and never while holding the GIL in Python).
 */

/** bql_lock: take the BQL.  Context: any thread not holding it. */
AIOLAB_API void bql_lock(void);
/** bql_unlock: release the BQL.  Context: the thread holding it. */
AIOLAB_API void bql_unlock(void);
/** bql_locked: does the calling thread hold the BQL?  Context: any thread. */
AIOLAB_API bool bql_locked(void);

/**
 * BQL_LOCK_GUARD: take the BQL for the rest of the enclosing scope,
 * unless the thread already holds it; release it at scope exit only if it
 * was taken here.
 * Context: any thread; one that does not hold the BQL yet must hold no
 * other lock (the BQL is the outermost lock).
 */
AIOLAB_API bool aiolab_bql_guard_lock(void);
AIOLAB_API void aiolab_bql_guard_unlock(bool *taken);
#define AIOLAB_GLUE_(a, b) a##b
#define AIOLAB_GLUE(a, b) AIOLAB_GLUE_(a, b)
#define BQL_LOCK_GUARD()                                               \
    bool AIOLAB_GLUE(bql_guard_, __LINE__)                            \
        __attribute__((cleanup(aiolab_bql_guard_unlock), unused)) =   \
            aiolab_bql_guard_lock()

/**
 * qemu_in_main_thread: is this global-state code?  As in QEMU's
 * emulators, true when the thread holds the BQL.
 * Context: any thread.
 */
AIOLAB_API bool qemu_in_main_thread(void);

/**
 * qemu_in_iothread: is the current context not the main one?
 * Context: any thread.
 */
AIOLAB_API bool qemu_in_iothread(void);

/*
 * BQL statistics (aiolab): per thread, since the thread first took the
 * BQL or since the last reset.  Times are ns.
 */
typedef struct AiolabBqlStats {
    char thread_name[32];
    int tid;
    uint64_t acquisitions;
    uint64_t contended;          /* acquisitions that had to wait */
    int64_t wait_ns_total;
    int64_t wait_ns_max;
    int64_t hold_ns_total;
    int64_t hold_ns_max;
} AiolabBqlStats;

/**
 * aiolab_bql_get_stats: copy up to @max threads' statistics into @out.
 * Returns: the number of threads with statistics (may exceed @max).
 * Context: any thread (a snapshot; counters of running threads move).
 */
AIOLAB_API size_t aiolab_bql_get_stats(AiolabBqlStats *out, size_t max);
/**
 * aiolab_bql_reset_stats: zero every thread's BQL statistics.
 * Context: any thread (a thread taking the BQL meanwhile may keep counts
 * from before the reset).
 */
AIOLAB_API void aiolab_bql_reset_stats(void);
/**
 * aiolab_bql_holder_tid: the kernel tid of the BQL holder, or 0.
 * For diagnostics only: the answer may be stale when it is returned.
 * Context: any thread.
 */
AIOLAB_API int aiolab_bql_holder_tid(void);

#endif
