/* SPDX-License-Identifier: MIT */
/*
 * tools/vm-report.c - aiolab-vm's final report: per workload and overall
 * IOPS and latency percentiles, each device's placement and state
 * (broken or not), and per thread the CPU time used and the BQL waited
 * for and held since the measurement began.  Human-readable, or JSON
 * (-json) for scripts: scripts/demo.py and tests/machine/ read it.
 */
#include <stdlib.h>
#include <string.h>
#include "monitor/monitor.h"
#include "tools/vm.h"
#include "util/mem.h"

static const char *fmt_ns(int64_t ns, char *buf, size_t len)
{
    if (ns < 10000) {
        snprintf(buf, len, "%lldns", (long long)ns);
    } else if (ns < 10000000) {
        snprintf(buf, len, "%.1fus", ns / 1e3);
    } else if (ns < 10000000000LL) {
        snprintf(buf, len, "%.2fms", ns / 1e6);
    } else {
        snprintf(buf, len, "%.2fs", ns / 1e9);
    }
    return buf;
}

static json_t *lat_json(const AiolabLatencyHist *h)
{
    return json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:f}",
                     "count", (json_int_t)h->count,
                     "p50", (json_int_t)aiolab_latency_hist_percentile(h, .5),
                     "p99", (json_int_t)aiolab_latency_hist_percentile(h, .99),
                     "p99.9",
                     (json_int_t)aiolab_latency_hist_percentile(h, .999),
                     "min", (json_int_t)(h->count ? h->min_ns : 0),
                     "max", (json_int_t)(h->count ? h->max_ns : 0),
                     "mean", h->count ? h->sum_ns / h->count : 0.0);
}

/* The non-empty buckets, [[ns, count], ...]: enough for a CDF plot. */
static json_t *hist_json(const AiolabLatencyHist *h)
{
    json_t *a = json_array();
    int i;

    for (i = 0; i < AIOLAB_LAT_BUCKETS; i++) {
        if (h->buckets[i]) {
            json_array_append_new(a, json_pack(
                "[I,I]", (json_int_t)aiolab_latency_hist_bucket_value(i),
                (json_int_t)h->buckets[i]));
        }
    }
    return a;
}

static double iops_of(const AiolabWorkloadStats *st)
{
    return st->elapsed_ns > 0
               ? (st->reads + st->writes) * 1e9 / st->elapsed_ns : 0;
}

static json_t *workload_json(const AiolabWorkloadStats *st)
{
    AiolabLatencyHist all = st->lat_read;
    double mib = (st->bytes_read + st->bytes_written) / 1048576.0;

    aiolab_latency_hist_merge(&all, &st->lat_write);
    return json_pack(
        "{s:i,s:s,s:s,s:i,s:b,s:I,s:I,s:I,s:I,s:f,s:f,s:I,s:o,s:o,s:o,s:o,"
        "s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:s}",
        "vcpu", st->vcpu, "rw", aiolab_workload_type_name(st->rw),
        "device", st->device, "queue", st->queue, "finished", st->finished,
        "reads", (json_int_t)st->reads, "writes", (json_int_t)st->writes,
        "bytes_read", (json_int_t)st->bytes_read,
        "bytes_written", (json_int_t)st->bytes_written,
        "iops", iops_of(st),
        "mib_s", st->elapsed_ns > 0 ? mib * 1e9 / st->elapsed_ns : 0.0,
        "elapsed_ns", (json_int_t)st->elapsed_ns,
        "lat_ns", lat_json(&all), "read_lat_ns", lat_json(&st->lat_read),
        "write_lat_ns", lat_json(&st->lat_write), "histogram", hist_json(&all),
        "verified", (json_int_t)st->verified,
        "verify_errors", (json_int_t)st->verify_errors,
        "lost", (json_int_t)st->lost, "io_errors", (json_int_t)st->io_errors,
        "kicks", (json_int_t)st->kicks,
        "kicks_suppressed", (json_int_t)st->kicks_suppressed,
        "interrupts", (json_int_t)st->interrupts,
        "mmio_exits", (json_int_t)st->mmio_exits,
        "mmio_hold_ns", (json_int_t)st->mmio_hold_ns, "error", st->error);
}

static json_t *device_json(AiolabMachine *m, int i, int *errors)
{
    VirtIOBlock *s = aiolab_machine_get_device(m, i);
    VirtIODevice *vdev = aiolab_virtio_blk_get_vdev(s);
    BlockDriverState *bs = blk_bs(aiolab_machine_device_blk(m, i));
    AiolabVirtIOBlkStats st;
    json_t *ctxs = json_array();
    char last[256];
    bool broken = aiolab_virtio_device_is_broken(vdev);
    uint64_t irqs = 0, irqs_suppressed = 0;
    int q;

    for (q = 0; q < virtio_get_num_queues(vdev); q++) {
        AiolabVirtQueueStats vs;

        json_array_append_new(ctxs, json_string(qmp_aio_context_name(
            aiolab_virtio_blk_get_vq_aio_context(s, q))));
        aiolab_virtio_queue_get_stats(virtio_get_queue(vdev, q), &vs);
        irqs += vs.notifies + vs.irqfd_notifies;
        irqs_suppressed += vs.suppressed;
    }
    aiolab_virtio_device_get_last_error(vdev, last, sizeof(last));
    aiolab_virtio_blk_get_stats(s, &st);
    *errors += broken;
    return json_pack(
        "{s:s,s:s,s:s,s:i,s:b,s:o,s:b,s:i,s:s,s:{s:I,s:I,s:I,s:I,s:I,s:I,"
        "s:I,s:I,s:I}}",
        "id", aiolab_machine_device_id(m, i),
        "node-name", bs ? bdrv_get_node_name(bs) : "",
        "driver", bs ? bdrv_get_format_name(bs) : "",
        "num-queues", virtio_get_num_queues(vdev),
        "ioeventfd", virtio_device_ioeventfd_enabled(vdev),
        "vq-aio-contexts", ctxs, "broken", broken,
        "status", aiolab_virtio_get_status(vdev), "error", last,
        "stats", "reads", (json_int_t)st.reads, "writes", (json_int_t)st.writes,
        "flushes", (json_int_t)st.flushes, "submits", (json_int_t)st.submits_rw,
        "merged", (json_int_t)st.merged, "ioerrors", (json_int_t)st.ioerrors,
        "parked", (json_int_t)st.parked, "interrupts", (json_int_t)irqs,
        "interrupts_suppressed", (json_int_t)irqs_suppressed);
}

static json_t *threads_json(AiolabMachine *m)
{
    AiolabThreadCpu cpu[256];
    AiolabBqlStats bql[256];
    size_t n = aiolab_machine_get_thread_cpu(m, cpu, 256), nb, i, j;
    json_t *a = json_array();

    nb = aiolab_bql_get_stats(bql, 256);
    nb = nb > 256 ? 256 : nb;
    for (i = 0; i < n && i < 256; i++) {
        json_t *o = json_pack("{s:s,s:i,s:I}", "name", cpu[i].name, "tid",
                              cpu[i].tid, "cpu_ns", (json_int_t)cpu[i].cpu_ns);
        for (j = 0; j < nb; j++) {
            if (bql[j].tid == cpu[i].tid) {
                json_object_set_new(o, "bql", json_pack(
                    "{s:I,s:I,s:I,s:I,s:I,s:I}",
                    "acquisitions", (json_int_t)bql[j].acquisitions,
                    "contended", (json_int_t)bql[j].contended,
                    "wait_ns", (json_int_t)bql[j].wait_ns_total,
                    "wait_ns_max", (json_int_t)bql[j].wait_ns_max,
                    "hold_ns", (json_int_t)bql[j].hold_ns_total,
                    "hold_ns_max", (json_int_t)bql[j].hold_ns_max));
            }
        }
        json_array_append_new(a, o);
    }
    return a;
}

static json_t *report_json(AiolabMachine *m, ShutdownCause cause,
                           int *errors)
{
    json_t *wls = json_array(), *devs = json_array();
    AiolabLatencyHist *all = aiolab_xcalloc(1, sizeof(*all));
    uint64_t ops = 0, verr = 0, lost = 0, ioerr = 0;
    int64_t elapsed = 0;
    int i;

    for (i = 0; i < aiolab_machine_num_devices(m); i++) {
        json_array_append_new(devs, device_json(m, i, errors));
    }
    for (i = 0; i < aiolab_machine_get_smp(m); i++) {
        AiolabWorkloadStats *st = aiolab_xcalloc(1, sizeof(*st));

        aiolab_machine_get_workload_stats(m, i, st);
        if (st->has_io || st->mmio_exits > 0 || st->mmio_hold_ns > 0) {
            json_array_append_new(wls, workload_json(st));
        }
        if (st->has_io) {
            aiolab_latency_hist_merge(all, &st->lat_read);
            aiolab_latency_hist_merge(all, &st->lat_write);
            ops += st->reads + st->writes;
            elapsed = st->elapsed_ns > elapsed ? st->elapsed_ns : elapsed;
        }
        verr += st->verify_errors;
        lost += st->lost;
        ioerr += st->io_errors;
        free(st);
    }
    *errors += verr + lost;
    json_t *r = json_pack(
        "{s:{s:i,s:I,s:s,s:s,s:I},s:o,s:o,s:{s:I,s:f,s:I,s:o,s:o,s:I,s:I,"
        "s:I},s:o,s:i}",
        "machine", "smp", aiolab_machine_get_smp(m),
        "ram", (json_int_t)aiolab_machine_get_ram_size(m),
        "shutdown", aiolab_shutdown_cause_name(cause),
        "runstate", aiolab_runstate_name(runstate_get()),
        "measured_ns", (json_int_t)aiolab_machine_get_measure_ns(m),
        "devices", devs, "workloads", wls,
        "overall", "ops", (json_int_t)ops,
        "iops", elapsed > 0 ? ops * 1e9 / elapsed : 0.0,
        "elapsed_ns", (json_int_t)elapsed, "lat_ns", lat_json(all),
        "histogram", hist_json(all), "verify_errors", (json_int_t)verr,
        "lost", (json_int_t)lost, "io_errors", (json_int_t)ioerr,
        "threads", threads_json(m), "errors", *errors);
    free(all);
    return r;
}

/* --- the human-readable form ----------------------------------------- */

static void print_human(json_t *r, FILE *f)
{
    json_t *mach = json_object_get(r, "machine"), *v, *ov;
    int64_t measured = json_integer_value(json_object_get(mach,
                                                          "measured_ns"));
    char b1[32], b2[32], b3[32];
    size_t i, j;

    fprintf(f, "aiolab-vm: %lld vCPU(s), %lld MiB; guest ran %s; ended by "
            "%s (run state %s)\n",
            (long long)json_integer_value(json_object_get(mach, "smp")),
            (long long)json_integer_value(json_object_get(mach, "ram")) >> 20,
            fmt_ns(measured, b1, sizeof(b1)),
            json_string_value(json_object_get(mach, "shutdown")),
            json_string_value(json_object_get(mach, "runstate")));
    json_array_foreach(json_object_get(r, "devices"), i, v) {
        json_t *ctxs = json_object_get(v, "vq-aio-contexts"), *c;
        fprintf(f, "device %s: node %s (%s), %lld queue(s), ioeventfd %s, "
                "queues in:", json_string_value(json_object_get(v, "id")),
                json_string_value(json_object_get(v, "node-name")),
                json_string_value(json_object_get(v, "driver")),
                (long long)json_integer_value(json_object_get(v, "num-queues")),
                json_is_true(json_object_get(v, "ioeventfd")) ? "on" : "off");
        json_array_foreach(ctxs, j, c) {
            fprintf(f, " %zu:%s", j, json_string_value(c));
        }
        fprintf(f, "; %s\n", json_is_true(json_object_get(v, "broken"))
                ? "BROKEN" : "ok");
        if (json_string_length(json_object_get(v, "error"))) {
            fprintf(f, "  last error: %s\n",
                    json_string_value(json_object_get(v, "error")));
        }
    }
    fprintf(f, "\n%-5s %-9s %-10s %3s %9s %10s %9s %9s %9s %9s %6s %6s\n",
            "vcpu", "rw", "device", "q", "ops", "IOPS", "MiB/s", "p50", "p99",
            "p99.9", "verr", "lost");
    json_array_foreach(json_object_get(r, "workloads"), i, v) {
        json_t *lat = json_object_get(v, "lat_ns");
        const char *rw = json_string_value(json_object_get(v, "rw"));
        if (!strcmp(rw, "none")) {
            fprintf(f, "%-5lld mmio-hold: %lld exits, BQL held %s in "
                    "total\n", (long long)json_integer_value(
                        json_object_get(v, "vcpu")),
                    (long long)json_integer_value(json_object_get(v,
                                                                "mmio_exits")),
                    fmt_ns(json_integer_value(json_object_get(v,
                           "mmio_hold_ns")), b1, sizeof(b1)));
            continue;
        }
        fprintf(f, "%-5lld %-9s %-10s %3lld %9lld %10.0f %9.1f %9s %9s %9s "
                "%6lld %6lld\n",
                (long long)json_integer_value(json_object_get(v, "vcpu")), rw,
                json_string_value(json_object_get(v, "device")),
                (long long)json_integer_value(json_object_get(v, "queue")),
                (long long)(json_integer_value(json_object_get(v, "reads")) +
                            json_integer_value(json_object_get(v, "writes"))),
                json_real_value(json_object_get(v, "iops")),
                json_real_value(json_object_get(v, "mib_s")),
                fmt_ns(json_integer_value(json_object_get(lat, "p50")), b1, 32),
                fmt_ns(json_integer_value(json_object_get(lat, "p99")), b2, 32),
                fmt_ns(json_integer_value(json_object_get(lat, "p99.9")), b3,
                       32),
                (long long)json_integer_value(json_object_get(v,
                                                              "verify_errors")),
                (long long)json_integer_value(json_object_get(v, "lost")));
        if (json_string_length(json_object_get(v, "error"))) {
            fprintf(f, "      first error: %s\n",
                    json_string_value(json_object_get(v, "error")));
        }
    }
    ov = json_object_get(r, "overall");
    fprintf(f, "%-5s %-9s %-10s %3s %9lld %10.0f %9s %9s %9s %9s %6lld %6lld\n",
            "all", "", "", "",
            (long long)json_integer_value(json_object_get(ov, "ops")),
            json_real_value(json_object_get(ov, "iops")), "",
            fmt_ns(json_integer_value(json_object_get(json_object_get(ov,
                   "lat_ns"), "p50")), b1, 32),
            fmt_ns(json_integer_value(json_object_get(json_object_get(ov,
                   "lat_ns"), "p99")), b2, 32),
            fmt_ns(json_integer_value(json_object_get(json_object_get(ov,
                   "lat_ns"), "p99.9")), b3, 32),
            (long long)json_integer_value(json_object_get(ov, "verify_errors")),
            (long long)json_integer_value(json_object_get(ov, "lost")));

    fprintf(f, "\n%-16s %7s %10s %6s %10s %10s %10s %10s %10s\n", "thread",
            "tid", "CPU", "CPU%", "BQL acq", "contended", "wait", "max wait",
            "held");
    json_array_foreach(json_object_get(r, "threads"), i, v) {
        json_t *bql = json_object_get(v, "bql");
        int64_t cpu = json_integer_value(json_object_get(v, "cpu_ns"));
        fprintf(f, "%-16s %7lld %10s %5.1f%%",
                json_string_value(json_object_get(v, "name")),
                (long long)json_integer_value(json_object_get(v, "tid")),
                fmt_ns(cpu, b1, 32), measured ? 100.0 * cpu / measured : 0.0);
        if (bql) {
            fprintf(f, " %10lld %10lld %10s %10s",
                    (long long)json_integer_value(json_object_get(bql,
                                                          "acquisitions")),
                    (long long)json_integer_value(json_object_get(bql,
                                                                "contended")),
                    fmt_ns(json_integer_value(json_object_get(bql, "wait_ns")),
                           b1, 32),
                    fmt_ns(json_integer_value(json_object_get(bql,
                           "wait_ns_max")), b2, 32));
            fprintf(f, " %10s", fmt_ns(json_integer_value(json_object_get(bql,
                    "hold_ns")), b3, 32));
        } else {
            fprintf(f, " %10d", 0);
        }
        fputc('\n', f);
    }
    fprintf(f, "\nguest-visible errors: %lld\n",
            (long long)json_integer_value(json_object_get(r, "errors")));
}

int vm_report(AiolabMachine *m, ShutdownCause cause, bool json, FILE *f)
{
    int errors = 0;
    json_t *r = report_json(m, cause, &errors);

    if (json) {
        json_dumpf(r, f, JSON_INDENT(1));
        fputc('\n', f);
    } else {
        print_human(r, f);
    }
    fflush(f);
    json_decref(r);
    return errors;
}
