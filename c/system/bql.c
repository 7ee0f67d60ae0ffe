/* SPDX-License-Identifier: MIT */
/*
 * system/bql.c - the Big QEMU Lock.
 *
 * A plain pthread mutex plus a per-thread "I hold it" flag, which is what
 * makes bql_locked() cheap and the double-lock check possible.  Each
 * acquisition is timed (wait and hold), per thread, so the tutorial can
 * show what a vCPU holding the BQL for 1 ms does to the main loop.
 *
 * Cost: an uncontended lock is a trylock plus two clock reads (~70 ns
 * here); a contended one also records a trace slice for the wait.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <aiolab/aiolab.h>
#include "util/atomic.h"
#include "util/check.h"
#include "util/thread.h"
#include "util/trace-internal.h"

static pthread_mutex_t bql = PTHREAD_MUTEX_INITIALIZER;
static __thread bool bql_held AIOLAB_TLS_IE;
static int bql_holder_tid;                /* atomic, diagnostics only */

/* Set once a thread other than the main-loop thread took the BQL: from
 * then on the main loop must hold it to poll the main context. */
static bool bql_taken_by_others;
int aiolab_main_loop_tid;                 /* set by qemu_init_main_loop */

static void stat_max(int64_t *max, int64_t v)
{
    if (v > qatomic_read(max)) {
        qatomic_set(max, v);
    }
}

void bql_lock(void)
{
    AiolabThread *t = aiolab_thread_self();
    int64_t t0, now;

    if (unlikely(bql_held)) {
        char buf[256];
        aiolab_fmt_bql_double_lock(buf, sizeof(buf), __func__);
        fprintf(stderr, "%s\n", buf);
        abort();
    }
    if (pthread_mutex_trylock(&bql) == 0) {
        now = aiolab_now_ns();
    } else {
        trace_begin(TE_BQL_WAIT, NULL, 0);
        t0 = aiolab_now_ns();
        pthread_mutex_lock(&bql);
        now = aiolab_now_ns();
        trace_end(TE_BQL_WAIT, NULL, now - t0);
        qatomic_set(&t->bql_contended, qatomic_read(&t->bql_contended) + 1);
        qatomic_set(&t->bql_wait_ns_total, qatomic_read(&t->bql_wait_ns_total) + (now - t0));
        stat_max(&t->bql_wait_ns_max, now - t0);
    }
    bql_held = true;
    qatomic_set(&bql_holder_tid, t->tid);
    qatomic_set(&t->bql_acquisitions, qatomic_read(&t->bql_acquisitions) + 1);
    qatomic_set(&t->bql_locked_at_ns, now);
    if (t->tid != qatomic_read(&aiolab_main_loop_tid) &&
        !qatomic_read(&bql_taken_by_others)) {
        qatomic_set(&bql_taken_by_others, true);
    }
    trace_begin(TE_BQL_HELD, NULL, 0);
}

void bql_unlock(void)
{
    AiolabThread *t = aiolab_thread_self();
    int64_t held;

    if (unlikely(!bql_held)) {
        char buf[256];
        aiolab_fmt_bql_not_held(buf, sizeof(buf), __func__);
        fprintf(stderr, "%s\n", buf);
        abort();
    }
    held = aiolab_now_ns() - qatomic_read(&t->bql_locked_at_ns);
    qatomic_set(&t->bql_hold_ns_total, qatomic_read(&t->bql_hold_ns_total) + held);
    stat_max(&t->bql_hold_ns_max, held);
    trace_end(TE_BQL_HELD, NULL, held);
    qatomic_set(&bql_holder_tid, 0);
    bql_held = false;
    pthread_mutex_unlock(&bql);
}

bool bql_locked(void)
{
    return bql_held;
}

bool aiolab_bql_guard_lock(void)
{
    if (bql_held) {
        return false;
    }
    bql_lock();
    return true;
}

void aiolab_bql_guard_unlock(bool *taken)
{
    if (*taken) {
        bql_unlock();
    }
}

bool qemu_in_main_thread(void)
{
    return bql_held;
}

bool aiolab_main_ctx_poll_allowed(void)
{
    return bql_held || !qatomic_read(&bql_taken_by_others);
}

int aiolab_bql_holder_tid(void)
{
    return qatomic_read(&bql_holder_tid);
}

size_t aiolab_bql_get_stats(AiolabBqlStats *out, size_t max)
{
    AiolabThread *t;
    size_t n = 0;

    aiolab_thread_registry_lock();
    for (t = aiolab_thread_registry_first(); t; t = t->next) {
        if (!qatomic_read(&t->bql_acquisitions)) {
            continue;
        }
        if (n < max) {
            AiolabBqlStats *s = &out[n];
            memset(s, 0, sizeof(*s));
            snprintf(s->thread_name, sizeof(s->thread_name), "%s", t->name);
            s->tid = t->tid;
            s->acquisitions = qatomic_read(&t->bql_acquisitions);
            s->contended = qatomic_read(&t->bql_contended);
            s->wait_ns_total = qatomic_read(&t->bql_wait_ns_total);
            s->wait_ns_max = qatomic_read(&t->bql_wait_ns_max);
            s->hold_ns_total = qatomic_read(&t->bql_hold_ns_total);
            s->hold_ns_max = qatomic_read(&t->bql_hold_ns_max);
        }
        n++;
    }
    aiolab_thread_registry_unlock();
    return n;
}

void aiolab_bql_reset_stats(void)
{
    AiolabThread *t;

    /*
     * Only the owner writes its counters; a reset from another thread is
     * a racy store of zeros (tolerable for statistics, and done with
     * atomics so it is not a data race).
     */
    aiolab_thread_registry_lock();
    for (t = aiolab_thread_registry_first(); t; t = t->next) {
        qatomic_set(&t->bql_acquisitions, 0);
        qatomic_set(&t->bql_contended, 0);
        qatomic_set(&t->bql_wait_ns_total, 0);
        qatomic_set(&t->bql_wait_ns_max, 0);
        qatomic_set(&t->bql_hold_ns_total, 0);
        qatomic_set(&t->bql_hold_ns_max, 0);
    }
    aiolab_thread_registry_unlock();
}
