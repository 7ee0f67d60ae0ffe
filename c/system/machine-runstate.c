/* SPDX-License-Identifier: MIT */
/*
 * system/machine-runstate.c - the toy machine's run state (QEMU's
 * system/runstate.c and system/cpus.c: vm_start, vm_stop, vm_shutdown)
 * and its main loop (qemu_main_loop, main_loop_should_exit).
 *
 * Run states and what moves between them (all in the main loop, BQL):
 *
 *             aiolab_machine_start(autostart)     vm_start (QMP cont)
 *   prelaunch ------------------------------> running <-------------+
 *                                               |  |                |
 *                       vm_stop(PAUSED) (stop)  |  | werror/rerror= |
 *                 +-----------------------------+  | stop: vmstop   |
 *                 v                                v request        |
 *              paused ---------------------->   io-error -----------+
 *                 |      vm_start                   vm_start
 *                 +--------------------------------------------------+
 *   running --guest done, -no-shutdown--> shutdown (quit ends it)
 *
 * vm_stop: pause every vCPU (they leave guest code and park), freeze
 * QEMU_CLOCK_VIRTUAL, the devices' VM-state handlers (virtio stops
 * ioeventfd: host notifiers detached in their IOThreads, the
 * BlockBackend drained and moved home), STOP, bdrv_drain_all().
 * vm_start: RESUME, VIRTUAL ticks again, the handlers in the other order
 * (ioeventfd starts, then virtio-blk's dma_restart re-issues the
 * requests werror=stop parked, each in its queue's AioContext), and the
 * vCPUs go on where they were.
 *
 * Requests from other threads (a vCPU whose guest is done, an IOThread
 * whose request hit werror=stop) are flags the main loop reads in
 * aiolab_machine_main_loop_should_exit(), as QEMU's
 * qemu_system_*_request() are.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <aiolab/machine.h>
#include "system/machine-internal.h"
#include "util/atomic.h"

static const char *const runstate_names[RUN_STATE__MAX] = {
    [RUN_STATE_PRELAUNCH] = "prelaunch",
    [RUN_STATE_RUNNING] = "running",
    [RUN_STATE_PAUSED] = "paused",
    [RUN_STATE_IO_ERROR] = "io-error",
    [RUN_STATE_SHUTDOWN] = "shutdown",
};

static const char *const shutdown_cause_names[SHUTDOWN_CAUSE__MAX] = {
    [SHUTDOWN_CAUSE_NONE] = "none",
    [SHUTDOWN_CAUSE_HOST_QMP_QUIT] = "host-qmp-quit",
    [SHUTDOWN_CAUSE_HOST_SIGNAL] = "host-signal",
    [SHUTDOWN_CAUSE_GUEST_SHUTDOWN] = "guest-shutdown",
};

const char *aiolab_runstate_name(RunState state)
{
    return (unsigned)state < RUN_STATE__MAX ? runstate_names[state] : "?";
}

const char *aiolab_shutdown_cause_name(ShutdownCause cause)
{
    return (unsigned)cause < SHUTDOWN_CAUSE__MAX ? shutdown_cause_names[cause]
                                                 : "?";
}

/* --- run state ------------------------------------------------------- */

RunState runstate_get(void)
{
    AiolabMachine *m = aiolab_machine_get_current();

    return m ? (RunState)qatomic_read(&m->runstate) : RUN_STATE_PRELAUNCH;
}

bool runstate_is_running(void)
{
    return runstate_get() == RUN_STATE_RUNNING;
}

static void runstate_set(AiolabMachine *m, RunState state)
{
    qatomic_set(&m->runstate, state);
}

void vm_start(void)
{
    AiolabMachine *m = current_machine;
    AiolabMachineEvent ev = { .type = AIOLAB_MACHINE_EVENT_RESUME };
    int i;

    if (!m || runstate_is_running()) {
        return;
    }
    machine_emit(m, &ev);
    qemu_clock_enable(QEMU_CLOCK_VIRTUAL, true);
    cpu_enable_ticks();
    runstate_set(m, RUN_STATE_RUNNING);
    /* vm_state_notify(running): the transport first, then the device
     * (QEMU orders the handlers by qdev tree depth) */
    for (i = 0; i < m->ndevs; i++) {
        aiolab_virtio_vmstate_change(m->devs[i]->vdev, true);
        virtio_blk_dma_restart_cb(m->devs[i]->s, true, RUN_STATE_RUNNING);
    }
    resume_all_vcpus(m);
}

static int do_vm_stop(RunState state, bool send_stop)
{
    AiolabMachine *m = current_machine;
    AiolabMachineEvent ev = { .type = AIOLAB_MACHINE_EVENT_STOP };
    int i;

    if (!m) {
        return 0;
    }
    if (!runstate_is_running()) {
        bdrv_drain_all();           /* already stopped: the state stays */
        return 0;
    }
    pause_all_vcpus(m);
    cpu_disable_ticks();
    runstate_set(m, state);
    for (i = m->ndevs - 1; i >= 0; i--) {
        virtio_blk_dma_restart_cb(m->devs[i]->s, false, state);
        aiolab_virtio_vmstate_change(m->devs[i]->vdev, false);
    }
    /* The errors raised so far (the one that asked for this stop too)
     * are sent before the STOP. */
    machine_flush_events(m);
    if (send_stop) {
        machine_emit(m, &ev);
    }
    bdrv_drain_all();
    return 0;
}

int vm_stop(RunState state)
{
    return do_vm_stop(state, true);
}

void vm_shutdown(void)
{
    do_vm_stop(RUN_STATE_SHUTDOWN, false);
}

void qemu_system_vmstop_request(RunState state)
{
    AiolabMachine *m = aiolab_machine_get_current();

    if (m) {
        qatomic_set(&m->vmstop_request, (int)state + 1);
        qemu_notify_event();
    }
}

void qemu_system_shutdown_request(ShutdownCause cause)
{
    AiolabMachine *m = aiolab_machine_get_current();

    if (m) {
        qatomic_set(&m->shutdown_request, (int)cause);
        qemu_notify_event();
    }
}

bool aiolab_machine_main_loop_should_exit(AiolabMachine *m,
                                          ShutdownCause *cause)
{
    int r = qatomic_xchg(&m->vmstop_request, 0);
    ShutdownCause c;

    if (r) {
        vm_stop((RunState)(r - 1));
    }
    c = (ShutdownCause)qatomic_xchg(&m->shutdown_request, 0);
    if (c != SHUTDOWN_CAUSE_NONE) {
        AiolabMachineEvent ev = { .type = AIOLAB_MACHINE_EVENT_SHUTDOWN,
                                  .cause = c };
        machine_emit(m, &ev);
        if (c == SHUTDOWN_CAUSE_GUEST_SHUTDOWN && m->conf.no_shutdown) {
            vm_stop(RUN_STATE_SHUTDOWN);
        } else {
            if (cause) {
                *cause = c;
            }
            return true;
        }
    }
    return false;
}

ShutdownCause aiolab_machine_main_loop(AiolabMachine *m)
{
    ShutdownCause cause = SHUTDOWN_CAUSE_NONE;

    while (!aiolab_machine_main_loop_should_exit(m, &cause)) {
        main_loop_wait(false);
    }
    return cause;
}

