/* SPDX-License-Identifier: MIT */
/*
 * util/qemu-timer.c - clocks, timer lists and timers.
 *
 * A timer list is a singly-linked list sorted by expiry, behind a mutex,
 * so timer_mod()/timer_del() work from any thread.  When a change makes
 * a timer the new head (the soonest), the list's notify callback runs:
 * for an AioContext that is aio_notify(), which wakes a sleeping
 * aio_poll() so it recomputes its timeout.
 *
 * Cost: arming is O(n) in the list length (lists are short: a handful of
 * timers per context).  QEMU does the same; a heap would be the road to
 * take for thousands of timers.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <time.h>
#include <aiolab/timer.h>
#include "util/atomic.h"
#include "util/check.h"
#include "util/thread.h"
#include "util/trace-internal.h"
#include "util/timer-internal.h"
#include "util/mem.h"

typedef struct QEMUClock {
    bool enabled;               /* atomic */
    QEMUTimerList *lists;       /* under clocks_lock */
} QEMUClock;

static QEMUClock clocks[QEMU_CLOCK_MAX];
static pthread_mutex_t clocks_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t clocks_once = PTHREAD_ONCE_INIT;

/*
 * QEMU_CLOCK_VIRTUAL: frozen at virtual_frozen_ns while ticks are off;
 * while on, host monotonic time + virtual_offset_ns.  Under virtual_lock.
 */
static pthread_mutex_t virtual_lock = PTHREAD_MUTEX_INITIALIZER;
static bool virtual_ticking;
static int64_t virtual_offset_ns;
static int64_t virtual_frozen_ns;

static void clocks_init_once(void)
{
    int i;

    for (i = 0; i < QEMU_CLOCK_MAX; i++) {
        /* Guest time does not run until a machine does. */
        clocks[i].enabled = (i != QEMU_CLOCK_VIRTUAL);
    }
}

void init_clocks(void)
{
    pthread_once(&clocks_once, clocks_init_once);
    aiolab_thread_set_timer_slack();
}

static int64_t get_clock_monotonic(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int64_t get_clock_realtime(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int64_t get_virtual_clock(void)
{
    int64_t v;

    pthread_mutex_lock(&virtual_lock);
    v = virtual_ticking ? get_clock_monotonic() + virtual_offset_ns
                        : virtual_frozen_ns;
    pthread_mutex_unlock(&virtual_lock);
    return v;
}

int64_t qemu_clock_get_ns(QEMUClockType type)
{
    switch (type) {
    case QEMU_CLOCK_REALTIME:
        return get_clock_monotonic();
    case QEMU_CLOCK_HOST:
        return get_clock_realtime();
    case QEMU_CLOCK_VIRTUAL:
    case QEMU_CLOCK_VIRTUAL_RT:
        return get_virtual_clock();
    default:
        aiolab_die(__func__, "got an invalid clock type %d", (int)type);
    }
}

int64_t qemu_clock_get_us(QEMUClockType type)
{
    return qemu_clock_get_ns(type) / SCALE_US;
}

int64_t qemu_clock_get_ms(QEMUClockType type)
{
    return qemu_clock_get_ns(type) / SCALE_MS;
}

void cpu_enable_ticks(void)
{
    pthread_mutex_lock(&virtual_lock);
    if (!virtual_ticking) {
        virtual_offset_ns = virtual_frozen_ns - get_clock_monotonic();
        virtual_ticking = true;
    }
    pthread_mutex_unlock(&virtual_lock);
    /* Deadlines of VIRTUAL timers just changed: wake their pollers. */
    qemu_clock_enable(QEMU_CLOCK_VIRTUAL, aiolab_clock_is_enabled(
                          QEMU_CLOCK_VIRTUAL));
}

void cpu_disable_ticks(void)
{
    pthread_mutex_lock(&virtual_lock);
    if (virtual_ticking) {
        virtual_frozen_ns = get_clock_monotonic() + virtual_offset_ns;
        virtual_ticking = false;
    }
    pthread_mutex_unlock(&virtual_lock);
}

static void timerlist_notify(QEMUTimerList *tl)
{
    if (tl->notify_cb) {
        tl->notify_cb(tl->notify_opaque, tl->type);
    }
}

bool aiolab_clock_is_enabled(QEMUClockType type)
{
    AIOLAB_REQUIRE(type >= 0 && type < QEMU_CLOCK_MAX,
                   "got an invalid clock type %d", (int)type);
    init_clocks();
    return qatomic_load_sc(&clocks[type].enabled);
}

void qemu_clock_enable(QEMUClockType type, bool enabled)
{
    QEMUClock *clock;
    QEMUTimerList *tl;
    bool old;

    AIOLAB_REQUIRE(type >= 0 && type < QEMU_CLOCK_MAX,
                   "got an invalid clock type %d", (int)type);
    init_clocks();
    clock = &clocks[type];
    old = qatomic_xchg(&clock->enabled, enabled);
    pthread_mutex_lock(&clocks_lock);
    for (tl = clock->lists; tl; tl = tl->next_of_clock) {
        if (enabled) {
            /* Timers may be due now: let their pollers recompute. */
            timerlist_notify(tl);
        } else if (old) {
            /* Wait for callbacks running in other threads to return. */
            pthread_mutex_lock(&tl->active_timers_lock);
            while (tl->running &&
                   !pthread_equal(tl->running_thread, pthread_self())) {
                pthread_cond_wait(&tl->done_cond, &tl->active_timers_lock);
            }
            pthread_mutex_unlock(&tl->active_timers_lock);
        }
    }
    pthread_mutex_unlock(&clocks_lock);
}

/* --- timer lists --------------------------------------------------- */

static QEMUTimerList *timerlist_new(QEMUClockType type,
                                    QEMUTimerListNotifyCB *cb, void *opaque)
{
    QEMUTimerList *tl = aiolab_xcalloc(1, sizeof(*tl));

    tl->type = type;
    tl->notify_cb = cb;
    tl->notify_opaque = opaque;
    pthread_mutex_init(&tl->active_timers_lock, NULL);
    pthread_cond_init(&tl->done_cond, NULL);
    pthread_mutex_lock(&clocks_lock);
    tl->next_of_clock = clocks[type].lists;
    clocks[type].lists = tl;
    pthread_mutex_unlock(&clocks_lock);
    return tl;
}

static void timerlist_free(QEMUTimerList *tl)
{
    QEMUTimerList **p;

    pthread_mutex_lock(&clocks_lock);
    for (p = &clocks[tl->type].lists; *p; p = &(*p)->next_of_clock) {
        if (*p == tl) {
            *p = tl->next_of_clock;
            break;
        }
    }
    pthread_mutex_unlock(&clocks_lock);
    pthread_mutex_destroy(&tl->active_timers_lock);
    pthread_cond_destroy(&tl->done_cond);
    free(tl);
}

void timerlistgroup_init(QEMUTimerListGroup *tlg, QEMUTimerListNotifyCB *cb,
                         void *opaque)
{
    int type;

    init_clocks();
    for (type = 0; type < QEMU_CLOCK_MAX; type++) {
        tlg->tl[type] = timerlist_new(type, cb, opaque);
    }
}

void timerlistgroup_deinit(QEMUTimerListGroup *tlg)
{
    int type;

    for (type = 0; type < QEMU_CLOCK_MAX; type++) {
        if (tlg->tl[type]) {
            timerlist_free(tlg->tl[type]);
            tlg->tl[type] = NULL;
        }
    }
}

int64_t timerlist_deadline_ns(QEMUTimerList *tl)
{
    int64_t expire, delta;

    /* Empty lists (the common case) cost one atomic load. */
    if (!qatomic_load_acquire(&tl->active_timers) ||
        !qatomic_read(&clocks[tl->type].enabled)) {
        return -1;
    }
    pthread_mutex_lock(&tl->active_timers_lock);
    expire = tl->active_timers ? tl->active_timers->expire_time : -1;
    pthread_mutex_unlock(&tl->active_timers_lock);
    if (expire < 0) {
        return -1;
    }
    delta = expire - qemu_clock_get_ns(tl->type);
    return delta <= 0 ? 0 : delta;
}

int64_t timerlistgroup_deadline_ns(QEMUTimerListGroup *tlg)
{
    int64_t deadline = -1;
    int type;

    for (type = 0; type < QEMU_CLOCK_MAX; type++) {
        deadline = qemu_soonest_timeout(deadline,
                                        timerlist_deadline_ns(tlg->tl[type]));
    }
    return deadline;
}

/*
 * Run every timer of @tl that has expired.  The time is sampled once, so
 * a timer re-armed for "now" inside its callback runs again in this pass
 * only if it expires at or before that sample.  The lock is dropped around
 * each callback: it may re-arm or delete any timer.
 */
bool timerlist_run_timers(QEMUTimerList *tl)
{
    QEMUTimer *ts;
    QEMUTimerCB *cb;
    void *opaque;
    int64_t now;
    bool progress = false;

    if (!qatomic_load_acquire(&tl->active_timers)) {
        return false;
    }
    pthread_mutex_lock(&tl->active_timers_lock);
    if (!qatomic_read(&clocks[tl->type].enabled)) {
        pthread_mutex_unlock(&tl->active_timers_lock);
        return false;
    }
    tl->running++;
    tl->running_thread = pthread_self();
    now = qemu_clock_get_ns(tl->type);
    while ((ts = tl->active_timers) && ts->expire_time <= now) {
        qatomic_store_release(&tl->active_timers, ts->next);
        ts->next = NULL;
        qatomic_set(&ts->expire_time, -1);
        cb = ts->cb;
        opaque = ts->opaque;
        pthread_mutex_unlock(&tl->active_timers_lock);

        trace_begin(TE_TIMER_CB, NULL, tl->type);
        cb(opaque);
        trace_end(TE_TIMER_CB, NULL, tl->type);
        progress = true;

        pthread_mutex_lock(&tl->active_timers_lock);
    }
    if (--tl->running == 0) {
        pthread_cond_broadcast(&tl->done_cond);
    }
    pthread_mutex_unlock(&tl->active_timers_lock);
    return progress;
}

bool timerlistgroup_run_timers(QEMUTimerListGroup *tlg)
{
    bool progress = false;
    int type;

    /* REALTIME, VIRTUAL, HOST, VIRTUAL_RT: QEMU's order. */
    for (type = 0; type < QEMU_CLOCK_MAX; type++) {
        progress |= timerlist_run_timers(tlg->tl[type]);
    }
    return progress;
}

void timerlistgroup_foreach(QEMUTimerListGroup *tlg,
                            void (*fn)(QEMUTimer *ts, void *opaque),
                            void *opaque)
{
    int type;
    QEMUTimer *ts;

    for (type = 0; type < QEMU_CLOCK_MAX; type++) {
        QEMUTimerList *tl = tlg->tl[type];
        if (!tl || pthread_mutex_trylock(&tl->active_timers_lock) != 0) {
            continue;
        }
        for (ts = tl->active_timers; ts; ts = ts->next) {
            fn(ts, opaque);
        }
        pthread_mutex_unlock(&tl->active_timers_lock);
    }
}

/* --- timers -------------------------------------------------------- */

QEMUTimer *timer_new_tl(QEMUTimerListGroup *tlg, QEMUClockType type,
                        int scale, QEMUTimerCB *cb, void *opaque)
{
    QEMUTimer *ts;

    AIOLAB_REQUIRE(type >= 0 && type < QEMU_CLOCK_MAX,
                   "got an invalid clock type %d", (int)type);
    AIOLAB_REQUIRE(scale > 0, "got an invalid scale %d", scale);
    REQUIRE_NONNULL(cb);
    ts = aiolab_xcalloc(1, sizeof(*ts));
    ts->timer_list = tlg->tl[type];
    ts->cb = cb;
    ts->opaque = opaque;
    ts->scale = scale;
    ts->expire_time = -1;
    return ts;
}

QEMUTimer *timer_new_ns(QEMUClockType type, QEMUTimerCB *cb, void *opaque)
{
    AIOLAB_REQUIRE(main_loop_tlg.tl[0] != NULL,
                   "needs the main loop: call qemu_init_main_loop() first");
    return timer_new_tl(&main_loop_tlg, type, SCALE_NS, cb, opaque);
}

QEMUTimer *timer_new_us(QEMUClockType type, QEMUTimerCB *cb, void *opaque)
{
    AIOLAB_REQUIRE(main_loop_tlg.tl[0] != NULL,
                   "needs the main loop: call qemu_init_main_loop() first");
    return timer_new_tl(&main_loop_tlg, type, SCALE_US, cb, opaque);
}

QEMUTimer *timer_new_ms(QEMUClockType type, QEMUTimerCB *cb, void *opaque)
{
    AIOLAB_REQUIRE(main_loop_tlg.tl[0] != NULL,
                   "needs the main loop: call qemu_init_main_loop() first");
    return timer_new_tl(&main_loop_tlg, type, SCALE_MS, cb, opaque);
}

/* Unlink @ts if pending.  List lock held. */
static void timer_del_locked(QEMUTimerList *tl, QEMUTimer *ts)
{
    QEMUTimer **pt;

    qatomic_set(&ts->expire_time, -1);
    for (pt = &tl->active_timers; *pt; pt = &(*pt)->next) {
        if (*pt == ts) {
            qatomic_store_release(pt, ts->next);
            ts->next = NULL;
            return;
        }
    }
}

/*
 * Insert @ts after every timer expiring at or before it (so equal times
 * keep arming order).  List lock held.  Returns: true if @ts is the new
 * head.
 */
static bool timer_mod_ns_locked(QEMUTimerList *tl, QEMUTimer *ts,
                                int64_t expire_time)
{
    QEMUTimer **pt;

    if (expire_time < 0) {
        expire_time = 0;
    }
    for (pt = &tl->active_timers; *pt; pt = &(*pt)->next) {
        if ((*pt)->expire_time > expire_time) {
            break;
        }
    }
    qatomic_set(&ts->expire_time, expire_time);
    ts->next = *pt;
    qatomic_store_release(pt, ts);
    return pt == &tl->active_timers;
}

void timer_mod_ns(QEMUTimer *ts, int64_t expire_time)
{
    QEMUTimerList *tl;
    bool rearm;

    REQUIRE_NONNULL(ts);
    tl = ts->timer_list;
    pthread_mutex_lock(&tl->active_timers_lock);
    timer_del_locked(tl, ts);
    rearm = timer_mod_ns_locked(tl, ts, expire_time);
    pthread_mutex_unlock(&tl->active_timers_lock);
    if (rearm) {
        timerlist_notify(tl);
    }
}

void timer_mod(QEMUTimer *ts, int64_t expire_time)
{
    REQUIRE_NONNULL(ts);
    timer_mod_ns(ts, expire_time * ts->scale);
}

void timer_mod_anticipate_ns(QEMUTimer *ts, int64_t expire_time)
{
    QEMUTimerList *tl;
    bool rearm = false;

    REQUIRE_NONNULL(ts);
    tl = ts->timer_list;
    pthread_mutex_lock(&tl->active_timers_lock);
    if (ts->expire_time == -1 || ts->expire_time > expire_time) {
        if (ts->expire_time != -1) {
            timer_del_locked(tl, ts);
        }
        rearm = timer_mod_ns_locked(tl, ts, expire_time);
    }
    pthread_mutex_unlock(&tl->active_timers_lock);
    if (rearm) {
        timerlist_notify(tl);
    }
}

void timer_mod_anticipate(QEMUTimer *ts, int64_t expire_time)
{
    REQUIRE_NONNULL(ts);
    timer_mod_anticipate_ns(ts, expire_time * ts->scale);
}

void timer_del(QEMUTimer *ts)
{
    QEMUTimerList *tl;

    REQUIRE_NONNULL(ts);
    tl = ts->timer_list;
    pthread_mutex_lock(&tl->active_timers_lock);
    if (ts->expire_time != -1) {
        timer_del_locked(tl, ts);
    }
    pthread_mutex_unlock(&tl->active_timers_lock);
}

void timer_free(QEMUTimer *ts)
{
    if (!ts) {
        return;
    }
    timer_del(ts);
    free(ts);
}

bool timer_pending(QEMUTimer *ts)
{
    REQUIRE_NONNULL(ts);
    return qatomic_read(&ts->expire_time) >= 0;
}

bool timer_expired(QEMUTimer *ts, int64_t current_time)
{
    int64_t t;

    REQUIRE_NONNULL(ts);
    t = qatomic_read(&ts->expire_time);
    return t >= 0 && t <= current_time * ts->scale;
}

uint64_t timer_expire_time_ns(QEMUTimer *ts)
{
    REQUIRE_NONNULL(ts);
    return timer_pending(ts) ? (uint64_t)qatomic_read(&ts->expire_time)
                             : (uint64_t)-1;
}

int qemu_timeout_ns_to_ms(int64_t ns)
{
    int64_t ms;

    if (ns < 0) {
        return -1;
    }
    if (!ns) {
        return 0;
    }
    ms = (ns + SCALE_MS - 1) / SCALE_MS;   /* round up */
    return ms > INT32_MAX ? INT32_MAX : (int)ms;
}
