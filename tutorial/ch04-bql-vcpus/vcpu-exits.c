/* cc -Ic/include tutorial/ch04-bql-vcpus/vcpu-exits.c -o build/vcpu-exits -Lbuild -laiolab -Wl,-rpath,$PWD/build */
/*
 * SPDX-License-Identifier: MIT
 *
 * ch04-bql-vcpus/vcpu-exits.c - a vCPU takes the BQL on every exit.
 *
 * One vCPU reads the disk, one request at a time.  With ioeventfd=off,
 * each kick (the guest writing the queue number to the device's notify
 * register) is an MMIO exit: the vCPU leaves guest code, takes the BQL
 * and runs the device model itself.  With ioeventfd=on (the default) the
 * same write becomes an eventfd signal: no exit, no BQL, and the main
 * loop handles the queue.  We count exits and BQL acquisitions for both,
 * and check in the trace where each piece ran.
 */
#include "../tutorial.h"
#include "../toy.h"

typedef struct Run {
    AiolabWorkloadStats st;
    AiolabBqlStats vcpu_bql;
    int vcpu;                   /* the vCPU's thread id */
    size_t handlers;            /* virtio_blk_handle_vq slices */
    int handler_tid;            /* the thread that ran them (-1: several) */
    size_t exits_under_bql;     /* "mmio exit" slices inside a BQL hold */
    size_t exits_traced;        /* "mmio exit" slices (boot included) */
    size_t halts, halts_under_bql;
} Run;

/* How many of @s's slices begin inside one of @held's of the same thread. */
static size_t count_under(const ToySlice *s, size_t n, const ToySlice *held,
                          size_t n_held)
{
    size_t i, k = 0;

    for (i = 0; i < n; i++) {
        k += toy_inside_on(held, n_held, s[i].begin_ns, s[i].tid) != NULL;
    }
    return k;
}

static Run run(bool ioeventfd, int count)
{
    AiolabMachine *m = toy_machine(1);
    int64_t t0 = aiolab_trace_now_ns();
    size_t n_held, n, i;
    ToySlice *held, *s;
    VirtIOBlkConf conf;
    ToyTrace t;
    Run r;

    /* [region: device] */
    virtio_blk_conf_init(&conf);
    conf.ioeventfd = ioeventfd;     /* -device virtio-blk,...,ioeventfd= */
    aiolab_machine_add_virtio_blk(m, &conf, "disk0", &error_abort);
    toy_workload(m, "vcpu=0,rw=randread,iodepth=1,count=%d", count);
    toy_run(m);
    /* [endregion] */

    r.st = toy_stats(m, 0);
    r.vcpu = aiolab_machine_get_vcpu_thread_id(m, 0);
    r.vcpu_bql = toy_bql(r.vcpu);
    t = toy_trace_since(t0);
    held = toy_slices(&t, "bql_held", r.vcpu, &n_held);

    s = toy_slices(&t, "virtio_blk_handle_vq", 0, &n);
    r.handlers = n;
    r.handler_tid = n ? s[0].tid : 0;
    for (i = 0; i < n; i++) {
        r.handler_tid = s[i].tid == r.handler_tid ? r.handler_tid : -1;
    }
    free(s);
    s = toy_slices(&t, "mmio exit", r.vcpu, &n);
    r.exits_traced = n;
    r.exits_under_bql = count_under(s, n, held, n_held);
    free(s);
    s = toy_slices(&t, "guest halt", r.vcpu, &n);
    r.halts = n;
    r.halts_under_bql = count_under(s, n, held, n_held);
    free(s);

    free(held);
    toy_trace_free(&t);
    aiolab_machine_free(m);
    return r;
}

static void print_run(const char *what, const Run *r)
{
    printf("%-14s %5llu kicks %5llu MMIO exits %5llu BQL acquisitions; "
           "queue handled by '%s'\n", what,
           (unsigned long long)r->st.kicks,
           (unsigned long long)r->st.mmio_exits,
           (unsigned long long)r->vcpu_bql.acquisitions,
           r->handler_tid > 0 ? toy_thread_name(r->handler_tid) : "?");
}

int main(void)
{
    Run off, on100, on400;

    toy_init();
    toy_disk("disk0", 16);

    off = run(false, 400);
    print_run("ioeventfd=off", &off);
    /* [region: exits] */
    CHECK_EQ("ioeventfd=off: the vCPU exited once per kick",
             off.st.mmio_exits, off.st.kicks);
    CHECK("... and took the BQL on every exit",
          off.vcpu_bql.acquisitions >= off.st.mmio_exits &&
          off.exits_under_bql == off.exits_traced);
    CHECK("... and ran the queue handler itself, in the exit",
          off.handlers > 0 && off.handler_tid == off.vcpu);
    /* [endregion] */
    printf("(the trace also shows the %zu register accesses of boot, one "
           "exit each)\n", off.exits_traced - (size_t)off.st.mmio_exits);

    on100 = run(true, 100);
    on400 = run(true, 400);
    print_run("ioeventfd=on", &on100);
    print_run("ioeventfd=on", &on400);
    CHECK("ioeventfd=on: a kick is not an exit",
          on100.st.kicks > 0 && on100.st.mmio_exits == 0 &&
          on400.st.mmio_exits == 0);
    CHECK_EQ("... and the vCPU's BQL acquisitions do not grow with the "
             "requests (100 vs 400)", on100.vcpu_bql.acquisitions,
             on400.vcpu_bql.acquisitions);
    CHECK("... because the main loop handles the queue",
          on400.handlers > 0 && on400.handler_tid == getpid());
    CHECK("a halted vCPU never holds the BQL",
          off.halts > 0 && on400.halts > 0 &&
          off.halts_under_bql == 0 && on400.halts_under_bql == 0);
    bql_unlock();
    return 0;
}
