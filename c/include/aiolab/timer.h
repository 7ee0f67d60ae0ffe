/* SPDX-License-Identifier: MIT */
/*
 * aiolab/timer.h - clocks and timers.
 *
 * Every AioContext has one timer list per clock; the soonest deadline of
 * its lists is the longest a blocking aio_poll() sleeps.  The main loop
 * has a second group of lists of its own (timer_new_ns/ms), run only by
 * main_loop_wait(), never by a nested aio_poll().
 *
 *   QEMU_CLOCK_REALTIME     CLOCK_MONOTONIC; always runs
 *   QEMU_CLOCK_VIRTUAL      guest time: disabled until a machine runs, and
 *                           frozen while it is stopped
 *   QEMU_CLOCK_HOST         CLOCK_REALTIME (wall clock; may jump)
 *   QEMU_CLOCK_VIRTUAL_RT   as VIRTUAL (QEMU uses it for icount warps)
 *
 * Timers on one list are kept sorted; equal expiry times fire in the order
 * they were armed.  The precision is the nanosecond: aiolab sets the
 * kernel's timer slack to 1 ns, as QEMU does, so a 1 ms timer is not 50 us
 * late.
 */
#ifndef AIOLAB_TIMER_H
#define AIOLAB_TIMER_H

#include <aiolab/aio.h>

typedef enum {
    QEMU_CLOCK_REALTIME = 0,
    QEMU_CLOCK_VIRTUAL = 1,
    QEMU_CLOCK_HOST = 2,
    QEMU_CLOCK_VIRTUAL_RT = 3,
    QEMU_CLOCK_MAX
} QEMUClockType;

#define SCALE_MS 1000000
#define SCALE_US 1000
#define SCALE_NS 1

typedef struct QEMUTimer QEMUTimer;
typedef void QEMUTimerCB(void *opaque);

/* Any thread */

/** qemu_clock_get_ns: the clock's time in ns.  Context: any thread. */
AIOLAB_API int64_t qemu_clock_get_ns(QEMUClockType type);
AIOLAB_API int64_t qemu_clock_get_us(QEMUClockType type);
AIOLAB_API int64_t qemu_clock_get_ms(QEMUClockType type);

/**
 * qemu_clock_enable: enable or disable a clock's timers.  A disabled
 * clock has no deadline and its timers do not run.  Disabling waits until
 * timer callbacks of this clock that are running in other threads return.
 * VIRTUAL starts disabled.
 * Context: any thread (not from a timer callback of the same clock in
 * another list's thread while that thread waits on this one).
 */
AIOLAB_API void qemu_clock_enable(QEMUClockType type, bool enabled);

/**
 * aiolab_clock_is_enabled: the flag above.
 * Context: any thread.
 */
AIOLAB_API bool aiolab_clock_is_enabled(QEMUClockType type);

/**
 * cpu_enable_ticks / cpu_disable_ticks: start and freeze QEMU_CLOCK_VIRTUAL
 * (QEMU's system/cpu-timers.c; vm_start and vm_stop call them).
 * Context: any thread, normally the main loop with the BQL.
 */
AIOLAB_API void cpu_enable_ticks(void);
AIOLAB_API void cpu_disable_ticks(void);

/**
 * aio_timer_new: a timer on @ctx's list for @type; @cb runs in @ctx's home
 * thread.  @scale is SCALE_NS, SCALE_US or SCALE_MS: the unit of
 * timer_mod().  Free it with timer_free().
 * Context: any thread.
 */
AIOLAB_API QEMUTimer *aio_timer_new(AioContext *ctx, QEMUClockType type,
                                    int scale, QEMUTimerCB *cb, void *opaque);

/**
 * timer_new_ns / timer_new_ms: a timer on the main loop's own lists, run
 * only by main_loop_wait() (with the BQL), never inside AIO_WAIT_WHILE or
 * a drain.
 * Context: any thread; qemu_init_main_loop() must have run.
 */
AIOLAB_API QEMUTimer *timer_new_ns(QEMUClockType type, QEMUTimerCB *cb,
                                   void *opaque);
AIOLAB_API QEMUTimer *timer_new_us(QEMUClockType type, QEMUTimerCB *cb,
                                   void *opaque);
AIOLAB_API QEMUTimer *timer_new_ms(QEMUClockType type, QEMUTimerCB *cb,
                                   void *opaque);

/**
 * timer_mod: arm @ts to expire at @expire_time (in its scale, on its
 * clock).  Re-arming moves it; a negative time is clamped to 0.  If it
 * becomes the soonest timer of its list, the context is notified so a
 * sleeping poll recomputes its timeout.
 * Context: any thread.
 */
AIOLAB_API void timer_mod(QEMUTimer *ts, int64_t expire_time);
/**
 * timer_mod_ns: timer_mod() with the time in ns whatever the scale.
 * Context: any thread.
 */
AIOLAB_API void timer_mod_ns(QEMUTimer *ts, int64_t expire_time);
/**
 * timer_mod_anticipate: like timer_mod(), but only ever moves the timer
 * earlier: a pending timer that expires sooner is left alone.
 * Context: any thread.
 */
AIOLAB_API void timer_mod_anticipate(QEMUTimer *ts, int64_t expire_time);
AIOLAB_API void timer_mod_anticipate_ns(QEMUTimer *ts, int64_t expire_time);

/** timer_del: disarm @ts (no-op if not pending).  Context: any thread. */
AIOLAB_API void timer_del(QEMUTimer *ts);

/**
 * timer_free: disarm and free @ts.  No other thread may use it
 * concurrently (it may not be running in its own callback elsewhere).
 * Context: any thread, as the last user of @ts (it does not wait for a
 * running callback).
 */
AIOLAB_API void timer_free(QEMUTimer *ts);

/** timer_pending: is @ts armed?  Context: any thread. */
AIOLAB_API bool timer_pending(QEMUTimer *ts);

/**
 * timer_expired: is @ts armed to expire at or before @current_time (in
 * the timer's scale, as timer_mod())?
 * Context: any thread.
 */
AIOLAB_API bool timer_expired(QEMUTimer *ts, int64_t current_time);

/**
 * timer_expire_time_ns: expiry in ns, or -1 (as uint64_t) if not pending.
 * Context: any thread.
 */
AIOLAB_API uint64_t timer_expire_time_ns(QEMUTimer *ts);

/**
 * qemu_soonest_timeout: the sooner of two timeouts, -1 meaning infinite.
 * Context: any thread (pure arithmetic).
 */
static inline int64_t qemu_soonest_timeout(int64_t a, int64_t b)
{
    return ((uint64_t)a < (uint64_t)b) ? a : b;
}

/**
 * qemu_timeout_ns_to_ms: round a ns timeout up to ms (-1 stays -1), capped
 * at INT32_MAX, for APIs that sleep in ms.
 * Context: any thread (pure arithmetic).
 */
AIOLAB_API int qemu_timeout_ns_to_ms(int64_t ns);

#endif
