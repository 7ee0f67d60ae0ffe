/* SPDX-License-Identifier: MIT */
/*
 * aiolab-vm - the toy machine, with QEMU's command-line shape.
 *
 *   build/bin/aiolab-vm -smp 2 -m 128M \
 *       -object iothread,id=io0 \
 *       -blockdev driver=file,filename=disk.img,node-name=disk0 \
 *       -device virtio-blk,drive=disk0,iothread=io0 \
 *       -workload vcpu=0,rw=randread,bs=4096,iodepth=4,runtime=2 \
 *       -workload vcpu=1,mmio-hold=1000,mmio-period=2000 \
 *       -qmp unix:/tmp/qmp.sock,server=on,wait=off -trace-file trace.json
 *
 * What main() does is QEMU's qemu_init() + qemu_main_loop(), in order:
 * read the whole command line; start the main loop and take the BQL;
 * create IOThreads, nodes, the machine, devices, workloads and monitors
 * (any error: a message, exit status 1, no guest has run); start the
 * vCPUs; run the main loop until the guest is done, a QMP "quit" or a
 * signal; print the report; tear everything down in the reverse order.
 * docs/machine.md is the reference for every option and QMP command.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include "monitor/monitor.h"
#include "tools/tool-main.h"
#include "tools/vm.h"

/* SIGINT/SIGTERM, from the main loop (tool_signals_init). */
static void signal_shutdown(void *opaque)
{
    qemu_system_shutdown_request(SHUTDOWN_CAUSE_HOST_SIGNAL);
}

/* Create everything the options name.  Returns false after printing. */
static bool build(const VmOptions *o, AiolabMachine **mp)
{
    AiolabMachineConf mc = { .smp = o->smp, .ram_size = o->ram_size,
                             .no_shutdown = o->no_shutdown };
    AiolabMachine *m;
    Error *err = NULL;
    int i;

    for (i = 0; i < o->n_objects; i++) {
        if (!vm_add_object(o->objects[i], &err)) {
            vm_error_err("-object", o->objects[i], err);
            return false;
        }
    }
    for (i = 0; i < o->n_blockdevs; i++) {
        if (!vm_add_blockdev(o->blockdevs[i], &err)) {
            vm_error_err("-blockdev", o->blockdevs[i], err);
            return false;
        }
    }
    m = *mp = aiolab_machine_new(&mc, &err);
    if (!m) {
        vm_error_err("-smp", NULL, err);
        return false;
    }
    aiolab_machine_set_event_handler(m, monitor_machine_event, NULL);
    for (i = 0; i < o->n_devices; i++) {
        const char *what;
        if (!vm_add_device(m, o->devices[i], &what, &err)) {
            /* The JSON form is long: name the driver, as in
             * "-device virtio-blk: ..." */
            vm_error_err("-device", o->devices[i][0] == '{' && what
                         ? what : o->devices[i], err);
            return false;
        }
    }
    for (i = 0; i < o->n_workloads; i++) {
        AiolabWorkloadConf wc;
        if (!aiolab_workload_parse(o->workloads[i], &wc, &err) ||
            !aiolab_machine_set_workload(m, &wc, &err)) {
            vm_error_err("-workload", o->workloads[i], err);
            return false;
        }
    }
    for (i = 0; i < o->n_qmps; i++) {
        if (!monitor_init_qmp(o->qmps[i], &err)) {
            vm_error_err("-qmp", o->qmps[i], err);
            return false;
        }
    }
    return true;
}

static void teardown(AiolabMachine *m)
{
    job_cancel_sync_all();          /* as QEMU's qemu_cleanup() */
    monitor_cleanup();
    aiolab_machine_free(m);
    monitor_release_nodes();
    tool_destroy_iothreads();
    tool_signals_cleanup();
}

int main(int argc, char **argv)
{
    AiolabMachine *m = NULL;
    ShutdownCause cause;
    Error *err = NULL;
    VmOptions o;
    bool exit_now;
    int errors;

    if (!vm_parse_args(argc, argv, &o, &exit_now)) {
        return 1;
    }
    if (exit_now) {
        return 0;
    }
    aiolab_thread_set_name("main");
    if (qemu_init_main_loop(&err) < 0) {
        error_report_err(err);
        return 1;
    }
    bql_lock();
    if (!build(&o, &m)) {
        monitor_cleanup();
        return 1;
    }
    monitor_wait_clients();
    if (!aiolab_machine_start(m, !o.freeze, &err)) {
        vm_error_err("-m", o.ram_arg, err);
        monitor_cleanup();
        return 1;
    }
    tool_signals_init((const int[]){ SIGINT, SIGTERM, 0 }, signal_shutdown,
                      NULL);

    cause = aiolab_machine_main_loop(m);

    vm_shutdown();
    errors = vm_report(m, cause, o.json, stdout);
    if (o.report_file) {
        FILE *f = fopen(o.report_file, "w");
        if (f) {
            vm_report(m, cause, o.json, f);
            fclose(f);
        } else {
            vm_error("-report-file", o.report_file, "cannot write it");
        }
    }
    if (o.trace_file && !aiolab_trace_write_json(o.trace_file, 0, &err)) {
        vm_error_err("-trace-file", o.trace_file, err);
    }
    teardown(m);
    bql_unlock();
    return errors ? 2 : 0;
}
