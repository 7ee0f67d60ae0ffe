/* SPDX-License-Identifier: MIT */
/*
 * system/machine-stats.c - what the toy machine measures: latency
 * histograms, per-thread CPU time, and the snapshots the report and the
 * QMP queries read.
 *
 * Latency histograms are log-linear (HdrHistogram's idea): values below
 * 32 ns get a bucket each; above, each power of two is cut into 32
 * buckets, so a bucket is at most 1/32 of its value wide and a
 * percentile read from it is within ~3%.  Recording is an index
 * computation and an increment: cheap enough for every request.
 *
 *   bucket index:   v < 32:  v
 *                   else:    e = floor(log2 v) - 5
 *                            32 * (e + 1) + (v >> e) - 32
 *
 * CPU time per thread comes from /proc/self/task/TID/schedstat (the
 * scheduler's ns-precise run time) or, where the kernel lacks it, from
 * utime + stime in /proc/self/task/TID/stat (clock ticks).  A baseline
 * is taken when the measurement begins; threads born later count from
 * zero, threads that have exited are gone.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <aiolab/machine.h>
#include "system/machine-internal.h"
#include "util/atomic.h"
#include "util/mem.h"

/* --- latency histograms ------------------------------------------------ */

static int hist_index(int64_t v)
{
    int e;

    if (v < 32) {
        return v < 0 ? 0 : (int)v;
    }
    e = 63 - __builtin_clzll((uint64_t)v) - AIOLAB_LAT_SUB_BITS;
    if (e + 1 >= AIOLAB_LAT_BUCKETS / 32) {
        return AIOLAB_LAT_BUCKETS - 1;
    }
    return 32 * (e + 1) + (int)((uint64_t)v >> e) - 32;
}

int64_t aiolab_latency_hist_bucket_value(int idx)
{
    int e;

    if (idx < 32) {
        return idx;
    }
    e = idx / 32 - 1;
    return ((int64_t)(idx % 32 + 32) << e) + ((int64_t)1 << e) / 2;
}

void aiolab_latency_hist_add(AiolabLatencyHist *h, int64_t ns)
{
    if (!h->count || ns < h->min_ns) {
        h->min_ns = ns;
    }
    if (!h->count || ns > h->max_ns) {
        h->max_ns = ns;
    }
    h->count++;
    h->sum_ns += ns;
    h->buckets[hist_index(ns)]++;
}

void aiolab_latency_hist_merge(AiolabLatencyHist *dst,
                               const AiolabLatencyHist *src)
{
    int i;

    if (!src->count) {
        return;
    }
    if (!dst->count || src->min_ns < dst->min_ns) {
        dst->min_ns = src->min_ns;
    }
    if (!dst->count || src->max_ns > dst->max_ns) {
        dst->max_ns = src->max_ns;
    }
    dst->count += src->count;
    dst->sum_ns += src->sum_ns;
    for (i = 0; i < AIOLAB_LAT_BUCKETS; i++) {
        dst->buckets[i] += src->buckets[i];
    }
}

int64_t aiolab_latency_hist_percentile(const AiolabLatencyHist *h, double p)
{
    uint64_t rank, seen = 0;
    int64_t v;
    int i;

    if (!h->count) {
        return 0;
    }
    rank = (uint64_t)(p * (double)h->count + 0.999999);
    if (rank < 1) {
        rank = 1;
    }
    for (i = 0; i < AIOLAB_LAT_BUCKETS; i++) {
        seen += h->buckets[i];
        if (seen >= rank) {
            break;
        }
    }
    v = aiolab_latency_hist_bucket_value(i);
    return v < h->min_ns ? h->min_ns : v > h->max_ns ? h->max_ns : v;
}

/* --- per-thread CPU time ----------------------------------------------- */

typedef struct MachineCpuSample {
    int tid;
    int64_t cpu_ns;
} MachineCpuSample;

static int64_t read_thread_cpu_ns(int tid)
{
    char path[64], buf[1024], *p;
    unsigned long long run_ns, utime, stime;
    FILE *f;
    int i;

    snprintf(path, sizeof(path), "/proc/self/task/%d/schedstat", tid);
    f = fopen(path, "r");
    if (f) {
        int ok = fscanf(f, "%llu", &run_ns) == 1;
        fclose(f);
        if (ok) {
            return (int64_t)run_ns;
        }
    }
    snprintf(path, sizeof(path), "/proc/self/task/%d/stat", tid);
    f = fopen(path, "r");
    if (!f) {
        return -1;
    }
    p = fgets(buf, sizeof(buf), f);
    fclose(f);
    p = p ? strrchr(buf, ')') : NULL;     /* comm may contain spaces */
    if (!p) {
        return -1;
    }
    /* After ")": state is field 3; utime and stime are fields 14, 15. */
    for (i = 2; i < 14 && p; i++) {
        p = strchr(p + 1, ' ');
    }
    if (!p || sscanf(p, "%llu %llu", &utime, &stime) != 2) {
        return -1;
    }
    return (int64_t)((utime + stime) * (1000000000.0 / sysconf(_SC_CLK_TCK)));
}

static size_t sample_threads(MachineCpuSample *out, size_t max)
{
    DIR *dir = opendir("/proc/self/task");
    struct dirent *de;
    size_t n = 0;

    if (!dir) {
        return 0;
    }
    while ((de = readdir(dir))) {
        int tid = atoi(de->d_name);
        int64_t ns;

        if (tid <= 0 || (ns = read_thread_cpu_ns(tid)) < 0) {
            continue;
        }
        if (n < max) {
            out[n] = (MachineCpuSample){ tid, ns };
        }
        n++;
    }
    closedir(dir);
    return n;
}

static void thread_name(int tid, char *name, size_t len)
{
    AiolabTraceThread threads[256];
    size_t n = aiolab_trace_threads(threads, 256), i;
    char path[64];
    FILE *f;

    for (i = 0; i < n && i < 256; i++) {
        if (threads[i].tid == tid) {
            snprintf(name, len, "%s", threads[i].name);
            return;
        }
    }
    snprintf(name, len, "tid %d", tid);
    snprintf(path, sizeof(path), "/proc/self/task/%d/comm", tid);
    f = fopen(path, "r");
    if (f) {
        if (fgets(name, len, f)) {
            name[strcspn(name, "\n")] = 0;
        }
        fclose(f);
    }
}

/* The measurement begins: a CPU baseline.  Main loop. */
void machine_stats_start(AiolabMachine *m)
{
    MachineCpuSample buf[512];
    size_t n = sample_threads(buf, 512);

    if (n > 512) {
        n = 512;
    }
    pthread_mutex_lock(&m->stats_lock);
    free(m->cpu_base);
    m->cpu_base = aiolab_xmalloc(sizeof(*m->cpu_base) * (n ? n : 1));
    memcpy(m->cpu_base, buf, sizeof(*buf) * n);
    m->n_cpu_base = n;
    pthread_mutex_unlock(&m->stats_lock);
}

void machine_stats_free(AiolabMachine *m)
{
    free(m->cpu_base);
    m->cpu_base = NULL;
}

size_t aiolab_machine_get_thread_cpu(AiolabMachine *m, AiolabThreadCpu *out,
                                     size_t max)
{
    MachineCpuSample now[512];
    size_t n = sample_threads(now, 512), i, j;

    if (n > 512) {
        n = 512;
    }
    pthread_mutex_lock(&m->stats_lock);
    for (i = 0; i < n && i < max; i++) {
        int64_t base = 0;

        for (j = 0; j < m->n_cpu_base; j++) {
            if (m->cpu_base[j].tid == now[i].tid) {
                base = m->cpu_base[j].cpu_ns;
            }
        }
        out[i].tid = now[i].tid;
        out[i].cpu_ns = now[i].cpu_ns - base;
        thread_name(now[i].tid, out[i].name, sizeof(out[i].name));
    }
    pthread_mutex_unlock(&m->stats_lock);
    return n;
}

/* --- snapshots ---------------------------------------------------------- */

bool aiolab_machine_get_workload_stats(AiolabMachine *m, int vcpu,
                                       AiolabWorkloadStats *out)
{
    CPUState *cpu;

    if (vcpu < 0 || vcpu >= m->conf.smp) {
        return false;
    }
    cpu = m->cpus[vcpu];
    pthread_mutex_lock(&cpu->stats_lock);
    *out = cpu->stats;
    pthread_mutex_unlock(&cpu->stats_lock);
    return true;
}

int64_t aiolab_machine_get_measure_ns(AiolabMachine *m)
{
    int64_t start = qatomic_read(&m->measure_vns);

    return start ? qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL) - start : 0;
}
