/* SPDX-License-Identifier: MIT */
/*
 * tutorial/toy.h - helpers for the chapters that run the toy machine
 * (chapters 0, 4, 6 and 9): build a machine the way aiolab-vm's command
 * line does, run it, and read its statistics and its trace.
 *
 * Everything a chapter teaches stays in the chapter's own program: which
 * device, which placement, which workloads, what is checked.  This header
 * only hides the bookkeeping: parsing a workload string, finding one
 * thread's BQL statistics, pairing the begin and end events of a trace
 * into slices.  Include it after tutorial.h:
 *
 *     #include "../tutorial.h"
 *     #include "../toy.h"
 *
 * The machine API itself is c/include/aiolab/machine.h; the command line
 * it mirrors is docs/machine.md.
 */
#ifndef AIOLAB_TUTORIAL_TOY_H
#define AIOLAB_TUTORIAL_TOY_H

#include <stdarg.h>
#include <aiolab/aiolab.h>

/*
 * toy_init: become the main loop thread, with the BQL held, as QEMU's
 * main() does before it creates anything (qemu_init_main_loop()).
 */
static inline void toy_init(void)
{
    qemu_init_main_loop(&error_abort);
    bql_lock();
}

/*
 * toy_disk: a sparse @mib MiB file @node.img in the current directory,
 * opened as node @node (-blockdev driver=file,filename=...,node-name=...).
 * The file is unlinked at once: the node keeps it open.
 */
static inline BlockDriverState *toy_disk(const char *node, int mib)
{
    char path[96], opts[256];
    BlockDriverState *bs;
    int fd;

    snprintf(path, sizeof(path), "%s.img", node);
    fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || ftruncate(fd, (off_t)mib << 20) < 0) {
        perror(path);
        exit(1);
    }
    close(fd);
    snprintf(opts, sizeof(opts), "driver=file,filename=%s,node-name=%s",
             path, node);
    bs = bdrv_open(NULL, NULL, opts, BDRV_O_RDWR, &error_abort);
    unlink(path);
    return bs;
}

/* toy_machine: -smp @smp -m 64M, not started yet. */
static inline AiolabMachine *toy_machine(int smp)
{
    AiolabMachineConf mc = { .smp = smp, .ram_size = 64 << 20 };

    return aiolab_machine_new(&mc, &error_abort);
}

/* toy_workload: -workload FMT (printf-style), for the machine @m. */
static inline void toy_workload(AiolabMachine *m, const char *fmt, ...)
{
    AiolabWorkloadConf w;
    char str[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(str, sizeof(str), fmt, ap);
    va_end(ap);
    aiolab_workload_parse(str, &w, &error_abort);
    aiolab_machine_set_workload(m, &w, &error_abort);
}

/*
 * toy_run: start the vCPUs and run the main loop until the guest has
 * finished its workloads (QEMU's qemu_main_loop()).  The BQL statistics
 * and the CPU times count from the moment every vCPU has booted.
 */
static inline ShutdownCause toy_run(AiolabMachine *m)
{
    aiolab_machine_start(m, true, &error_abort);
    return aiolab_machine_main_loop(m);
}

/* toy_stats: what vCPU @vcpu's workload did. */
static inline AiolabWorkloadStats toy_stats(AiolabMachine *m, int vcpu)
{
    AiolabWorkloadStats st;

    if (!aiolab_machine_get_workload_stats(m, vcpu, &st)) {
        fprintf(stderr, "no vCPU %d\n", vcpu);
        exit(1);
    }
    return st;
}

/* toy_bql: thread @tid's BQL statistics (zeros: it never took the BQL). */
static inline AiolabBqlStats toy_bql(int tid)
{
    AiolabBqlStats all[64], none;
    size_t n = aiolab_bql_get_stats(all, 64), i;

    for (i = 0; i < n && i < 64; i++) {
        if (all[i].tid == tid) {
            return all[i];
        }
    }
    memset(&none, 0, sizeof(none));
    none.tid = tid;
    return none;
}

/* toy_queue_stats: queue @q's counters (pops, notifies, irqfd...). */
static inline AiolabVirtQueueStats toy_queue_stats(VirtIOBlock *s, int q)
{
    AiolabVirtQueueStats st;

    aiolab_virtio_queue_get_stats(
        virtio_get_queue(aiolab_virtio_blk_get_vdev(s), q), &st);
    return st;
}

/* toy_cpu_ns: CPU time thread @tid used since the measurement began. */
static inline int64_t toy_cpu_ns(AiolabMachine *m, int tid)
{
    AiolabThreadCpu all[64];
    size_t n = aiolab_machine_get_thread_cpu(m, all, 64), i;

    for (i = 0; i < n && i < 64; i++) {
        if (all[i].tid == tid) {
            return all[i].cpu_ns;
        }
    }
    return 0;
}

/* toy_us: ns as microseconds, for printing. */
static inline double toy_us(int64_t ns)
{
    return ns / 1000.0;
}

/* ---------------------------------------------------------------------
 * Reading the trace
 * --------------------------------------------------------------------- */

/* Every event recorded since some moment, merged by time. */
typedef struct ToyTrace {
    AiolabTraceRecord *r;
    size_t n;
} ToyTrace;

/* One slice: a begin event and its end, on one thread. */
typedef struct ToySlice {
    int tid;
    int64_t begin_ns, end_ns;
    int64_t arg;                /* the end event's argument */
} ToySlice;

/*
 * toy_trace_since: collect the events recorded since @since_ns (taken
 * with aiolab_trace_now_ns()).  Each thread's ring keeps its newest
 * 32768 events: keep runs short enough, or the oldest are gone.
 */
static inline ToyTrace toy_trace_since(int64_t since_ns)
{
    ToyTrace t;
    size_t want = aiolab_trace_collect(NULL, 0, since_ns) + 1024;

    t.r = calloc(want, sizeof(*t.r));
    t.n = aiolab_trace_collect(t.r, want, since_ns);
    if (t.n > want) {
        t.n = want;
    }
    return t;
}

static inline void toy_trace_free(ToyTrace *t)
{
    free(t->r);
    t->r = NULL;
    t->n = 0;
}

/* toy_trace_count: events @name of phase @phase on thread @tid (0: all). */
static inline size_t toy_trace_count(const ToyTrace *t, const char *name,
                                     char phase, int tid)
{
    size_t i, n = 0;

    for (i = 0; i < t->n; i++) {
        n += t->r[i].phase == phase && !strcmp(t->r[i].name, name) &&
             (!tid || t->r[i].tid == tid);
    }
    return n;
}

/*
 * toy_slices: the slices called @name on thread @tid (0: every thread),
 * in order of their beginning; *@n gets how many.  A slice whose begin
 * was lost (the ring wrapped) or whose end is not recorded yet is left
 * out.  Free the result with free().
 */
static inline ToySlice *toy_slices(const ToyTrace *t, const char *name,
                                   int tid, size_t *n)
{
    ToySlice *out = calloc(t->n / 2 + 1, sizeof(*out));
    size_t i, j, k = 0;

    for (i = 0; i < t->n; i++) {
        const AiolabTraceRecord *b = &t->r[i];
        int depth = 0;

        if (b->phase != 'B' || strcmp(b->name, name) ||
            (tid && b->tid != tid)) {
            continue;
        }
        for (j = i + 1; j < t->n; j++) {    /* its end: same thread */
            const AiolabTraceRecord *e = &t->r[j];

            if (e->tid != b->tid || strcmp(e->name, name)) {
                continue;
            }
            if (e->phase == 'B') {
                depth++;
            } else if (e->phase == 'E' && depth-- == 0) {
                out[k++] = (ToySlice){ b->tid, b->ts_ns, e->ts_ns, e->arg };
                break;
            }
        }
    }
    *n = k;
    return out;
}

/*
 * toy_inside_on: the one of the @n slices @s on thread @tid (0: any
 * thread) that time @ts is inside, or NULL.  Ask for the thread you mean:
 * the clocks of two CPUs can differ by a few ns, so one thread's slice
 * can seem to overlap the next holder's (the BQL's hand-over).
 */
static inline const ToySlice *toy_inside_on(const ToySlice *s, size_t n,
                                            int64_t ts, int tid)
{
    size_t i;

    for (i = 0; i < n && s[i].begin_ns <= ts; i++) {
        if ((!tid || s[i].tid == tid) && ts <= s[i].end_ns) {
            return &s[i];
        }
    }
    return NULL;
}

/* toy_inside: is time @ts inside one of the @n slices @s (any thread)? */
static inline const ToySlice *toy_inside(const ToySlice *s, size_t n,
                                         int64_t ts)
{
    return toy_inside_on(s, n, ts, 0);
}

/* toy_thread_name: the name the trace gives thread @tid. */
static inline const char *toy_thread_name(int tid)
{
    static AiolabTraceThread th[128];
    size_t n = aiolab_trace_threads(th, 128), i;

    for (i = 0; i < n && i < 128; i++) {
        if (th[i].tid == tid) {
            return th[i].name;
        }
    }
    return "?";
}

#endif
