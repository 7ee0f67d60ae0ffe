/* SPDX-License-Identifier: MIT */
/*
 * util/timer-internal.h - timer lists (QEMU's QEMUTimerList and
 * QEMUTimerListGroup).  Not a public header.
 */
#ifndef AIOLAB_UTIL_TIMER_INTERNAL_H
#define AIOLAB_UTIL_TIMER_INTERNAL_H

#include <pthread.h>
#include <aiolab/timer.h>

typedef struct QEMUTimerList QEMUTimerList;
typedef void QEMUTimerListNotifyCB(void *opaque, QEMUClockType type);

struct QEMUTimer {
    int64_t expire_time;        /* ns; -1 when not pending. Under the
                                 * list's lock; read atomically */
    QEMUTimerList *timer_list;
    QEMUTimerCB *cb;
    void *opaque;
    QEMUTimer *next;            /* under the list's lock */
    int scale;
};

/*
 * One sorted list of pending timers for one clock.  active_timers and the
 * timers' next/expire_time are protected by active_timers_lock; the head
 * pointer is also read without the lock (atomically) to skip empty lists.
 */
struct QEMUTimerList {
    QEMUClockType type;
    pthread_mutex_t active_timers_lock;
    QEMUTimer *active_timers;
    QEMUTimerListNotifyCB *notify_cb;   /* called when the head changes */
    void *notify_opaque;
    /* Callbacks running now (for qemu_clock_enable(false) to wait on). */
    int running;
    pthread_t running_thread;
    pthread_cond_t done_cond;
    QEMUTimerList *next_of_clock;       /* the clock's lists */
};

typedef struct QEMUTimerListGroup {
    QEMUTimerList *tl[QEMU_CLOCK_MAX];
} QEMUTimerListGroup;

void timerlistgroup_init(QEMUTimerListGroup *tlg,
                         QEMUTimerListNotifyCB *cb, void *opaque);
void timerlistgroup_deinit(QEMUTimerListGroup *tlg);
bool timerlistgroup_run_timers(QEMUTimerListGroup *tlg);
int64_t timerlistgroup_deadline_ns(QEMUTimerListGroup *tlg);
bool timerlist_run_timers(QEMUTimerList *tl);
int64_t timerlist_deadline_ns(QEMUTimerList *tl);

/* Create a timer on @tlg (the AioContext's or the main loop's group). */
QEMUTimer *timer_new_tl(QEMUTimerListGroup *tlg, QEMUClockType type,
                        int scale, QEMUTimerCB *cb, void *opaque);

/* The main loop's own group (main-loop.c). */
extern QEMUTimerListGroup main_loop_tlg;

/* Set the kernel timer slack and start the clocks (idempotent). */
void init_clocks(void);

/* For the dump: call @fn for each pending timer of @tlg (under locks). */
void timerlistgroup_foreach(QEMUTimerListGroup *tlg,
                            void (*fn)(QEMUTimer *ts, void *opaque),
                            void *opaque);

#endif
