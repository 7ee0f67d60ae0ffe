/* SPDX-License-Identifier: MIT */
/*
 * util/trace-internal.h - recording a trace event.
 *
 * The hot path is inline: one relaxed load of the global switch, the
 * thread's ring (TLS), a cycle-counter read, and a 32-byte store.  No lock
 * and no system call.  The ring keeps the newest TRACE_RING_SIZE events of
 * the thread; older ones are overwritten.
 */
#ifndef AIOLAB_UTIL_TRACE_INTERNAL_H
#define AIOLAB_UTIL_TRACE_INTERNAL_H

#include <stdint.h>
#include "util/atomic.h"

#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#endif

/* Event ids: the names are in trace.c; QEMU's where QEMU has the event. */
typedef enum TraceEventId {
    TE_AIO_POLL,              /* B/E label=ctx arg=blocking / progress */
    TE_RUN_POLL_HANDLERS,     /* B/E busy-polling, arg=max_ns / progress */
    TE_FDMON_WAIT,            /* B/E sleeping in poll/epoll/io_uring */
    TE_POLL_GROW,             /* i arg=new poll_ns */
    TE_POLL_SHRINK,           /* i arg=new poll_ns */
    TE_BH_SCHEDULE,           /* i label=bh name */
    TE_BH_CALL,               /* B/E label=bh name */
    TE_REENTRANT_AIO,         /* i label=bh name: guard already engaged */
    TE_DISPATCH_HANDLER,      /* B/E arg=fd */
    TE_TIMER_CB,              /* B/E arg=clock */
    TE_AIO_NOTIFY_WAKEUP,     /* i label=ctx: eventfd written */
    TE_BQL_WAIT,              /* B/E waiting for the BQL */
    TE_BQL_HELD,              /* B/E holding the BQL */
    TE_AIO_CO_SCHEDULE,       /* i label=ctx */
    TE_AIO_CO_SCHEDULE_BH_CB, /* i label=ctx */
    TE_COROUTINE_ENTER,       /* i */
    TE_COROUTINE_YIELD,       /* i */
    TE_COROUTINE_TERMINATE,   /* i */
    TE_THREAD_POOL_SUBMIT,    /* i */
    TE_THREAD_POOL_WORK,      /* B/E on the worker */
    TE_THREAD_POOL_COMPLETE,  /* i arg=ret */
    TE_THREAD_POOL_CANCEL,    /* i */
    TE_AIO_WAIT,              /* B/E AIO_WAIT_WHILE */
    TE_MAIN_LOOP_WAIT,        /* B/E main_loop_wait */
    TE_USER,                  /* label is the name (aiolab_trace_mark...) */
    TE_DRAINED_BEGIN,         /* block layer (later issues) */
    TE_DRAINED_END,
    TE_REQUEST,               /* B/E a block request */
    TE__MAX
} TraceEventId;

typedef struct TraceEvent {
    uint64_t ticks;
    const char *label;
    int64_t arg;
    uint16_t id;
    char phase;
} TraceEvent;

#define TRACE_RING_SHIFT 15
#define TRACE_RING_SIZE (1u << TRACE_RING_SHIFT)

typedef struct TraceRing {
    uint64_t head;             /* events ever recorded; owner writes */
    uint64_t cleared;          /* head value at the last clear */
    TraceEvent ev[TRACE_RING_SIZE];
} TraceRing;

extern int aiolab_trace_on;                 /* relaxed reads */
extern __thread TraceRing *trace_ring_tls AIOLAB_TLS_IE;
TraceRing *trace_ring_alloc_self(void);

static inline uint64_t trace_ticks(void)
{
#if defined(__x86_64__) || defined(__i386__)
    return __rdtsc();
#else
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000ull + ts.tv_nsec;
#endif
}

static inline void trace_event(TraceEventId id, char phase, const char *label,
                               int64_t arg)
{
    TraceRing *r;
    TraceEvent *e;
    uint64_t h;

    if (likely(!qatomic_read(&aiolab_trace_on))) {
        return;
    }
    r = trace_ring_tls;
    if (unlikely(!r)) {
        r = trace_ring_alloc_self();
        if (!r) {
            return;
        }
    }
    h = r->head;
    e = &r->ev[h & (TRACE_RING_SIZE - 1)];
    /* Relaxed atomic stores (plain moves on x86): a collector may read a
     * slot while it is overwritten, and must not be a data race. */
    qatomic_set(&e->ticks, trace_ticks());
    qatomic_set(&e->label, label);
    qatomic_set(&e->arg, arg);
    qatomic_set(&e->id, (uint16_t)id);
    qatomic_set(&e->phase, phase);
    /* Pairs with the acquire load of head in trace_collect(). */
    qatomic_store_release(&r->head, h + 1);
}

#define trace_begin(id, label, arg)   trace_event((id), 'B', (label), (arg))
#define trace_end(id, label, arg)     trace_event((id), 'E', (label), (arg))
#define trace_instant(id, label, arg) trace_event((id), 'i', (label), (arg))

/* Convert trace ticks to CLOCK_MONOTONIC ns. */
int64_t trace_ticks_to_ns(uint64_t ticks);

#endif
