/* SPDX-License-Identifier: MIT */
/*
 * util/coroutine-int.h - the Coroutine structure and the backend
 * interface (QEMU's include/qemu/coroutine_int.h).  Not a public header.
 *
 *   state of a coroutine (co->caller, co->scheduled):
 *
 *     created/pooled --enter--> running (caller set)
 *     running --yield--> yielded (caller NULL)
 *     yielded --aio_co_schedule--> scheduled (scheduled = "function name")
 *     scheduled --co_schedule_bh--> running
 *     running --entry returns--> terminated --> back to the pool
 */
#ifndef AIOLAB_UTIL_COROUTINE_INT_H
#define AIOLAB_UTIL_COROUTINE_INT_H

#include <aiolab/coroutine.h>
#include "util/queue.h"

#define COROUTINE_STACK_SIZE (1 << 20)

typedef enum {
    COROUTINE_YIELD = 1,
    COROUTINE_TERMINATE = 2,
    COROUTINE_ENTER = 3,
} CoroutineAction;

struct Coroutine {
    CoroutineEntry *entry;
    void *entry_arg;
    Coroutine *caller;          /* who entered us; NULL when not running */

    /* Only used when the coroutine has terminated: pool link. */
    QSLIST_ENTRY(Coroutine) pool_next;

    size_t locks_held;          /* CoMutexes held (must be 0 at the end) */

    /* Only used when the coroutine is scheduled: the function that
     * scheduled it (atomic; NULL otherwise). */
    const char *scheduled;
    QSLIST_ENTRY(Coroutine) co_scheduled_next;   /* ctx list */

    /* Coroutines to enter when this one yields or terminates (aio_co_enter
     * from inside a coroutine queues here instead of nesting). */
    QSIMPLEQ_HEAD(, Coroutine) co_queue_wakeup;
    /* Link in a CoQueue, a CoMutex's waiters or a co_queue_wakeup. */
    QSIMPLEQ_ENTRY(Coroutine) co_queue_next;

    AioContext *ctx;            /* where it last ran (atomic) */

    /* Registry of all allocated coroutines, for the dump and gdb. */
    Coroutine *all_next;
    bool pooled;
};

/* Backend (coroutine-ucontext.c) */
Coroutine *qemu_coroutine_new(void);
void qemu_coroutine_delete(Coroutine *co);
CoroutineAction qemu_coroutine_switch(Coroutine *from, Coroutine *to,
                                      CoroutineAction action);

#endif
