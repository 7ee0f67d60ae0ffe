/* SPDX-License-Identifier: MIT */
/*
 * util/trace.c - trace rings, their export as Chrome trace-event JSON
 * (Perfetto), and the public recording helpers.
 *
 * Time: events store raw cycle-counter ticks (rdtsc, ~20 ns here, against
 * ~35 ns for clock_gettime), converted to CLOCK_MONOTONIC ns at export
 * with a line through two (ticks, ns) samples: one taken when the library
 * loads, one at export.  The TSC of this machine is constant and
 * non-stop, so the line is straight.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <aiolab/trace.h>
#include "util/thread.h"
#include "util/trace-internal.h"
#include "util/mem.h"

int aiolab_trace_on = 1;
__thread TraceRing *trace_ring_tls AIOLAB_TLS_IE;

static uint64_t calib_ticks0;
static int64_t calib_ns0;

static const char *const event_names[TE__MAX] = {
    [TE_AIO_POLL] = "aio_poll",
    [TE_RUN_POLL_HANDLERS] = "run_poll_handlers",
    [TE_FDMON_WAIT] = "fdmon_wait",
    [TE_POLL_GROW] = "poll_grow",
    [TE_POLL_SHRINK] = "poll_shrink",
    [TE_BH_SCHEDULE] = "qemu_bh_schedule",
    [TE_BH_CALL] = "aio_bh_call",
    [TE_REENTRANT_AIO] = "reentrant_aio",
    [TE_DISPATCH_HANDLER] = "aio_dispatch_handler",
    [TE_TIMER_CB] = "timer_cb",
    [TE_AIO_NOTIFY_WAKEUP] = "aio_notify",
    [TE_BQL_WAIT] = "bql_lock_wait",
    [TE_BQL_HELD] = "bql_held",
    [TE_AIO_CO_SCHEDULE] = "aio_co_schedule",
    [TE_AIO_CO_SCHEDULE_BH_CB] = "aio_co_schedule_bh_cb",
    [TE_COROUTINE_ENTER] = "qemu_aio_coroutine_enter",
    [TE_COROUTINE_YIELD] = "qemu_coroutine_yield",
    [TE_COROUTINE_TERMINATE] = "qemu_coroutine_terminate",
    [TE_THREAD_POOL_SUBMIT] = "thread_pool_submit_aio",
    [TE_THREAD_POOL_WORK] = "thread_pool_work",
    [TE_THREAD_POOL_COMPLETE] = "thread_pool_complete_aio",
    [TE_THREAD_POOL_CANCEL] = "thread_pool_cancel_aio",
    [TE_AIO_WAIT] = "aio_wait_while",
    [TE_MAIN_LOOP_WAIT] = "main_loop_wait",
    [TE_USER] = "user",
    [TE_DRAINED_BEGIN] = "bdrv_drained_begin",
    [TE_DRAINED_END] = "bdrv_drained_end",
    [TE_REQUEST] = "request",
};

__attribute__((constructor)) static void trace_init(void)
{
    const char *env = getenv("AIOLAB_TRACE");

    calib_ticks0 = trace_ticks();
    calib_ns0 = aiolab_now_ns();
    if (env && (!strcmp(env, "0") || !strcmp(env, "off"))) {
        aiolab_trace_on = 0;
    }
}

/* ns per tick, from the load-time sample to now. */
static double trace_calibrate(void)
{
#if defined(__x86_64__) || defined(__i386__)
    uint64_t t1 = trace_ticks();
    int64_t n1 = aiolab_now_ns();

    if (t1 - calib_ticks0 < 1000000) {
        return 1.0 / 2.0;     /* too early to tell; any sane guess */
    }
    return (double)(n1 - calib_ns0) / (double)(t1 - calib_ticks0);
#else
    return 1.0;
#endif
}

static int64_t ticks_to_ns(uint64_t ticks, double ns_per_tick)
{
#if defined(__x86_64__) || defined(__i386__)
    return calib_ns0 +
           (int64_t)((double)(int64_t)(ticks - calib_ticks0) * ns_per_tick);
#else
    return (int64_t)ticks;
#endif
}

int64_t trace_ticks_to_ns(uint64_t ticks)
{
    return ticks_to_ns(ticks, trace_calibrate());
}

TraceRing *trace_ring_alloc_self(void)
{
    AiolabThread *t = aiolab_thread_self();
    TraceRing *r = calloc(1, sizeof(*r));   /* none: this thread untraced */

    if (!r) {
        return NULL;
    }
    qatomic_store_release(&t->ring, r);
    trace_ring_tls = r;
    return r;
}

void aiolab_trace_set_enabled(bool enabled)
{
    qatomic_set(&aiolab_trace_on, enabled ? 1 : 0);
}

bool aiolab_trace_get_enabled(void)
{
    return qatomic_read(&aiolab_trace_on);
}

int64_t aiolab_trace_now_ns(void)
{
    return aiolab_now_ns();
}

void aiolab_trace_mark(const char *name, int64_t arg)
{
    trace_event(TE_USER, 'i', name, arg);
}

void aiolab_trace_begin(const char *name, int64_t arg)
{
    trace_event(TE_USER, 'B', name, arg);
}

void aiolab_trace_end(const char *name, int64_t arg)
{
    trace_event(TE_USER, 'E', name, arg);
}

void aiolab_trace_clear(void)
{
    AiolabThread *t;

    aiolab_thread_registry_lock();
    for (t = aiolab_thread_registry_first(); t; t = t->next) {
        TraceRing *r = qatomic_load_acquire(&t->ring);
        if (r) {
            qatomic_set(&r->cleared, qatomic_load_acquire(&r->head));
        }
    }
    aiolab_thread_registry_unlock();
}

/* One collected event before sorting. */
typedef struct Collected {
    AiolabTraceRecord rec;
    unsigned seq;               /* tie-breaker: order within its thread */
} Collected;

static int collected_cmp(const void *a, const void *b)
{
    const Collected *x = a, *y = b;

    if (x->rec.ts_ns != y->rec.ts_ns) {
        return x->rec.ts_ns < y->rec.ts_ns ? -1 : 1;
    }
    if (x->rec.tid != y->rec.tid) {
        return x->rec.tid < y->rec.tid ? -1 : 1;
    }
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/*
 * Copy every thread's events into a sorted array.  The newest slots a
 * writer may be overwriting are skipped: we read from at most
 * TRACE_RING_SIZE - 64 events back.
 */
static Collected *collect_all(size_t *n_out, int64_t since_ns)
{
    size_t cap = 1024, n = 0;
    Collected *all = aiolab_xmalloc(cap * sizeof(*all));
    double ns_per_tick = trace_calibrate();
    AiolabThread *t;

    aiolab_thread_registry_lock();
    for (t = aiolab_thread_registry_first(); t; t = t->next) {
        TraceRing *r = qatomic_load_acquire(&t->ring);
        uint64_t head, start, i;

        if (!r) {
            continue;
        }
        head = qatomic_load_acquire(&r->head);
        start = qatomic_read(&r->cleared);
        if (head - start > TRACE_RING_SIZE - 64) {
            start = head - (TRACE_RING_SIZE - 64);
        }
        for (i = start; i < head; i++) {
            TraceEvent *e = &r->ev[i & (TRACE_RING_SIZE - 1)];
            Collected *c;
            uint16_t id = qatomic_read(&e->id);
            int64_t ts = ticks_to_ns(qatomic_read(&e->ticks), ns_per_tick);

            if (ts < since_ns || id >= TE__MAX) {
                continue;
            }
            if (n == cap) {
                cap *= 2;
                all = aiolab_xrealloc(all, cap * sizeof(*all));
            }
            c = &all[n++];
            c->seq = (unsigned)(i - start);
            c->rec.ts_ns = ts;
            c->rec.tid = t->tid;
            c->rec.phase = qatomic_read(&e->phase);
            c->rec.arg = qatomic_read(&e->arg);
            if (id == TE_USER) {
                c->rec.name = qatomic_read(&e->label);
                c->rec.label = NULL;
            } else {
                c->rec.name = event_names[id];
                c->rec.label = qatomic_read(&e->label);
            }
        }
    }
    aiolab_thread_registry_unlock();
    qsort(all, n, sizeof(*all), collected_cmp);
    *n_out = n;
    return all;
}

size_t aiolab_trace_collect(AiolabTraceRecord *out, size_t max,
                            int64_t since_ns)
{
    size_t n, i;
    Collected *all = collect_all(&n, since_ns);

    for (i = 0; i < n && i < max; i++) {
        out[i] = all[i].rec;
    }
    free(all);
    return n;
}

size_t aiolab_trace_threads(AiolabTraceThread *out, size_t max)
{
    AiolabThread *t;
    size_t n = 0;

    aiolab_thread_registry_lock();
    for (t = aiolab_thread_registry_first(); t; t = t->next) {
        if (n < max) {
            out[n].tid = t->tid;
            snprintf(out[n].name, sizeof(out[n].name), "%s", t->name);
        }
        n++;
    }
    aiolab_thread_registry_unlock();
    return n;
}

static void json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; s && *s; s++) {
        unsigned char c = *s;
        if (c == '"' || c == '\\') {
            fprintf(f, "\\%c", c);
        } else if (c < 0x20) {
            fprintf(f, "\\u%04x", c);
        } else {
            fputc(c, f);
        }
    }
    fputc('"', f);
}

/* Per-thread slice depth, to drop unmatched ends and close open slices. */
typedef struct Depth {
    int tid;
    int depth;
} Depth;

static Depth *depth_of(Depth **tab, size_t *n, int tid)
{
    size_t i;

    for (i = 0; i < *n; i++) {
        if ((*tab)[i].tid == tid) {
            return &(*tab)[i];
        }
    }
    *tab = aiolab_xrealloc(*tab, (*n + 1) * sizeof(**tab));
    (*tab)[*n] = (Depth){ tid, 0 };
    return &(*tab)[(*n)++];
}

static void json_event(FILE *f, const AiolabTraceRecord *r, int pid,
                       bool *first)
{
    fprintf(f, "%s\n{\"name\":", *first ? "" : ",");
    *first = false;
    if (r->label && r->phase == 'B') {
        char buf[160];
        snprintf(buf, sizeof(buf), "%s %s", r->name, r->label);
        json_string(f, buf);
    } else {
        json_string(f, r->name);
    }
    fprintf(f, ",\"ph\":\"%c\",\"ts\":%.3f,\"pid\":%d,\"tid\":%d",
            r->phase, r->ts_ns / 1000.0, pid, r->tid);
    if (r->phase == 'i') {
        fputs(",\"s\":\"t\"", f);
    }
    fprintf(f, ",\"args\":{\"arg\":%lld", (long long)r->arg);
    if (r->label) {
        fputs(",\"label\":", f);
        json_string(f, r->label);
    }
    fputs("}}", f);
}

bool aiolab_trace_write_json(const char *path, int64_t since_ns, Error **errp)
{
    size_t n, i, ndepth = 0;
    Collected *all;
    Depth *depth = NULL;
    AiolabThread *t;
    int pid = getpid();
    int64_t end_ns = aiolab_now_ns();
    bool first = true;
    FILE *f = fopen(path, "w");

    if (!f) {
        error_setg_errno(errp, errno, "cannot write trace file '%s'", path);
        return false;
    }
    all = collect_all(&n, since_ns);
    fputs("{\"displayTimeUnit\":\"ns\",\"traceEvents\":[", f);
    aiolab_thread_registry_lock();
    for (t = aiolab_thread_registry_first(); t; t = t->next) {
        fprintf(f, "%s\n{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":%d,"
                "\"tid\":%d,\"args\":{\"name\":", first ? "" : ",", pid,
                t->tid);
        json_string(f, t->name);
        fputs("}}", f);
        first = false;
    }
    aiolab_thread_registry_unlock();
    for (i = 0; i < n; i++) {
        AiolabTraceRecord *r = &all[i].rec;
        Depth *d = depth_of(&depth, &ndepth, r->tid);

        if (r->phase == 'E') {
            if (d->depth == 0) {
                continue;       /* its begin was overwritten or cleared */
            }
            d->depth--;
        } else if (r->phase == 'B') {
            d->depth++;
        }
        json_event(f, r, pid, &first);
    }
    /* Close slices still open (a thread asleep right now). */
    for (i = 0; i < ndepth; i++) {
        while (depth[i].depth-- > 0) {
            AiolabTraceRecord r = { end_ns, depth[i].tid, 'E', "open", NULL, 0 };
            json_event(f, &r, pid, &first);
        }
    }
    fputs("\n]}\n", f);
    free(all);
    free(depth);
    if (fclose(f) != 0) {
        error_setg_errno(errp, errno, "cannot write trace file '%s'", path);
        return false;
    }
    return true;
}
