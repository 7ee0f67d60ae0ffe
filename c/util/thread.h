/* SPDX-License-Identifier: MIT */
/*
 * util/thread.h - the registry of threads that use aiolab.
 *
 * Every thread that records a trace event, takes the BQL or polls a
 * context gets an AiolabThread on first use.  Records stay after the
 * thread exits, so its trace and BQL statistics can still be exported.
 */
#ifndef AIOLAB_UTIL_THREAD_H
#define AIOLAB_UTIL_THREAD_H

#include <pthread.h>
#include <stdint.h>
#include <stdbool.h>

struct AioContext;
struct TraceRing;

typedef struct AiolabThread {
    /* Set at registration; name may be changed by the thread itself. */
    int tid;
    char name[32];

    /* Written by this thread only; read (racily) by exporters. */
    struct TraceRing *ring;

    /* BQL statistics: written by this thread only, with relaxed atomics,
     * so that aiolab_bql_get_stats() may read them from anywhere. */
    uint64_t bql_acquisitions;
    uint64_t bql_contended;
    int64_t bql_wait_ns_total;
    int64_t bql_wait_ns_max;
    int64_t bql_hold_ns_total;
    int64_t bql_hold_ns_max;
    int64_t bql_locked_at_ns;   /* while held */

    /* What this thread waits for in AIO_WAIT_WHILE, for the dump. */
    const char *wait_func;
    const char *wait_file;
    const char *wait_cond;
    int wait_line;
    struct AioContext *wait_ctx;

    bool exited;
    struct AiolabThread *next;  /* registry list, protected by its lock */
} AiolabThread;

/* The calling thread's record, created on first use. */
AiolabThread *aiolab_thread_self(void);

/* Walk the registry under its lock. */
void aiolab_thread_registry_lock(void);
void aiolab_thread_registry_unlock(void);
AiolabThread *aiolab_thread_registry_first(void);

/*
 * aiolab_thread_create: pthread_create() a thread that is named @name
 * (kernel name and registry), has timer slack 1 ns, and blocks the signals
 * the main thread handles (SIGQUIT stays for the main thread).
 */
int aiolab_thread_create(pthread_t *thread, const char *name,
                         void *(*fn)(void *), void *arg);

/* The kernel tid of the calling thread. */
int aiolab_gettid(void);

/* Set the kernel timer slack of the calling thread to 1 ns (once). */
void aiolab_thread_set_timer_slack(void);

/*
 * aiolab_intern: a copy of @s that lives forever (one per distinct
 * string).  Names that trace events point to are interned, so an export
 * after the object died still reads valid memory.
 */
const char *aiolab_intern(const char *s);

/* Monotonic ns, cheap: the trace clock (TSC-based when available). */
int64_t aiolab_now_ns(void);

#endif
