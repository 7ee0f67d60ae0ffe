/* SPDX-License-Identifier: MIT */
/*
 * system/vcpu.c - vCPU threads (QEMU's accel/kvm/kvm-accel-ops.c
 * kvm_vcpu_thread_fn, kvm_cpu_exec and system/cpus.c's pause/resume).
 *
 * A vCPU thread holds the BQL whenever it is not running guest code,
 * exactly like QEMU's:
 *
 *   bql_lock()
 *   loop:
 *     if cpu_can_run:                 not stopping, not stopped, not done
 *       exit_request = false
 *       bql_unlock()
 *       vcpu_exec()  -------------->  guest code ("KVM_RUN"), no BQL
 *                                       MMIO exit: bql_lock, the
 *                                         transport, bql_unlock, go on
 *                                       ioeventfd kick: an eventfd
 *                                         write, no exit, no BQL
 *                                       HLT: poll the interrupt eventfd
 *                    <--------------  returns on exit_request (a kick)
 *       bql_lock()                      or when the guest is done
 *     qemu_wait_io_event:
 *       while idle (stopped/done): wait on halt_cond, BQL dropped
 *       stop requested -> stopped = true, signal pause_cond
 *
 * vm_stop's pause_all_vcpus() sets cpu->stop and kicks every vCPU
 * (exit_request + its kick eventfd, QEMU's SIG_IPI), then waits on
 * pause_cond with the BQL dropped until each has parked.
 *
 * Why exit_request is cleared with the BQL held, after checking
 * cpu->stop: a stop that arrives later sets exit_request after the
 * clear, so guest code sees it; clearing it inside vcpu_exec() could
 * erase a stop that came in between (QEMU's kvm_cpu_exec closes the same
 * window with kvm_cpu_kick_self).
 *
 * Where QEMU differs: QEMU's condvars are waited on with the BQL itself
 * as their mutex (qemu_cond_wait_bql); aiolab's BQL is not exported as
 * a mutex, so cond_wait_bql() waits on m->cpu_lock, taken before the BQL
 * is dropped so that no broadcast is missed.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <aiolab/machine.h>
#include "system/machine-internal.h"
#include "util/atomic.h"
#include "util/thread.h"

int64_t vcpu_vclock(void)
{
    return qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL);
}

int64_t vcpu_now(void)
{
    return qemu_clock_get_ns(QEMU_CLOCK_REALTIME);
}

/*
 * Wait on @cond with the BQL dropped.  The caller checked its condition
 * with the BQL held; the signaller changes it with the BQL held and
 * broadcasts with cpu_lock held.  Taking cpu_lock before dropping the
 * BQL closes the window in which a broadcast could be missed.
 * Lock order: BQL, then cpu_lock (never the reverse).
 */
void cond_wait_bql(AiolabMachine *m, pthread_cond_t *cond)
{
    pthread_mutex_lock(&m->cpu_lock);
    bql_unlock();
    pthread_cond_wait(cond, &m->cpu_lock);
    pthread_mutex_unlock(&m->cpu_lock);
    bql_lock();
}

static void cond_broadcast(AiolabMachine *m, pthread_cond_t *cond)
{
    pthread_mutex_lock(&m->cpu_lock);
    pthread_cond_broadcast(cond);
    pthread_mutex_unlock(&m->cpu_lock);
}

/* QEMU's qemu_cpu_kick: make the vCPU leave guest code.  BQL held. */
void qemu_cpu_kick(CPUState *cpu)
{
    /* Pairs with the load in vcpu_should_exit(); the eventfd write wakes
     * a halted guest, the broadcast an idle vCPU thread. */
    qatomic_set(&cpu->exit_request, true);
    smp_mb();
    event_notifier_set(&cpu->kick);
    cond_broadcast(cpu->m, &cpu->halt_cond);
}

/* An inter-processor interrupt: wake a halted guest (the eventfd) or
 * tell a polling one (the flag, read by guest_ipi_pending()); no exit.
 * Any thread. */
void vcpu_ipi(CPUState *cpu)
{
    qatomic_set(&cpu->ipi, true);
    event_notifier_set(&cpu->kick);
}

bool vcpu_should_exit(CPUState *cpu)
{
    return qatomic_read(&cpu->exit_request);
}

/* --- MMIO exits ------------------------------------------------------- */

/*
 * An access to the device's register window that KVM cannot handle in
 * the kernel: the vCPU leaves KVM_RUN, takes the BQL, runs the device
 * model and goes back (kvm_cpu_exec's KVM_EXIT_MMIO case).
 */
uint64_t vcpu_mmio_read(CPUState *cpu, MachineDevice *d, uint64_t addr,
                        unsigned size)
{
    uint64_t val;

    bql_lock();
    aiolab_trace_begin("mmio exit", (int64_t)addr);
    val = transport_mmio_read(d, addr, size);
    aiolab_trace_end("mmio exit", (int64_t)addr);
    bql_unlock();
    guest_stats_add(cpu, &cpu->stats.mmio_exits, 1);
    return val;
}

void vcpu_mmio_write(CPUState *cpu, MachineDevice *d, uint64_t addr,
                     uint64_t val, unsigned size)
{
    bql_lock();
    aiolab_trace_begin("mmio exit", (int64_t)addr);
    transport_mmio_write(d, addr, val, size);
    aiolab_trace_end("mmio exit", (int64_t)addr);
    bql_unlock();
    guest_stats_add(cpu, &cpu->stats.mmio_exits, 1);
}

/*
 * The guest writes queue @n's number to QueueNotify.  With ioeventfd the
 * kernel turns the write into an eventfd signal and the vCPU never
 * leaves guest code (aiolab_virtio_guest_kick also copes with ioeventfd
 * being started or stopped meanwhile); without it, an MMIO exit in
 * which this vCPU runs the queue's handler itself, under the BQL.
 */
void vcpu_queue_notify(CPUState *cpu, MachineDevice *d, int n)
{
    guest_stats_add(cpu, &cpu->stats.kicks, 1);
    if (d->ioeventfd) {
        aiolab_virtio_guest_kick(d->vdev, n);
    } else {
        vcpu_mmio_write(cpu, d, VIRTIO_MMIO_QUEUE_NOTIFY, n, 4);
    }
}

/* --- guest code ----------------------------------------------------- */

/* Boot: vCPU 0 probes every device; the others wait for it. */
static bool vcpu_boot(CPUState *cpu)
{
    AiolabMachine *m = cpu->m;
    int i;

    if (cpu->cpu_index == 0) {
        for (i = 0; i < m->ndevs; i++) {
            guest_probe_device(cpu, m->devs[i]);
        }
        /* Publishes the devices' guest state (queues, capacity); pairs
         * with the load-acquire below. */
        qatomic_store_release(&m->booted, true);
        for (i = 1; i < m->conf.smp; i++) {
            vcpu_ipi(m->cpus[i]);
        }
        return true;
    }
    if (qatomic_load_acquire(&m->booted)) {
        return true;
    }
    guest_halt(cpu, NULL, 100 * SCALE_MS);
    return false;
}

/* QEMU's kvm_cpu_exec: run guest code until an exit request. */
static int vcpu_exec(CPUState *cpu)
{
    AiolabMachine *m = cpu->m;

    while (!vcpu_should_exit(cpu)) {
        switch (cpu->phase) {
        case GUEST_BOOT:
            if (vcpu_boot(cpu)) {
                cpu->phase = GUEST_WAIT_GO;
                machine_vcpu_ready(cpu);
            }
            break;
        case GUEST_WAIT_GO:
            /* Pairs with the store-release in machine_go_bh(). */
            if (!qatomic_load_acquire(&m->go)) {
                guest_halt(cpu, NULL, 100 * SCALE_MS);
                break;
            }
            cpu->phase = cpu->has_workload ? GUEST_RUN : GUEST_DONE;
            break;
        case GUEST_RUN:
        case GUEST_DRAIN:
        case GUEST_SWEEP:
            if (workload_run(cpu) == EXCP_HLT) {
                cpu->phase = GUEST_DONE;
            }
            break;
        case GUEST_DONE:
            return EXCP_HLT;
        }
    }
    return EXCP_INTERRUPT;
}

/* --- the thread ------------------------------------------------------- */

static bool cpu_can_run(CPUState *cpu)
{
    return !cpu->stop && !cpu->stopped && !cpu->finished;
}

static bool cpu_thread_is_idle(CPUState *cpu)
{
    if (cpu->stop || cpu->unplug) {
        return false;
    }
    return cpu->stopped || cpu->finished;
}

/* QEMU's qemu_wait_io_event.  BQL held. */
static void qemu_wait_io_event(CPUState *cpu)
{
    while (cpu_thread_is_idle(cpu)) {
        cond_wait_bql(cpu->m, &cpu->halt_cond);
    }
    if (cpu->stop) {
        cpu->stop = false;
        cpu->stopped = true;
        cond_broadcast(cpu->m, &cpu->m->pause_cond);
    }
}

static void *vcpu_thread_fn(void *opaque)
{
    CPUState *cpu = opaque;
    char name[32];

    snprintf(name, sizeof(name), "CPU %d/toy", cpu->cpu_index);
    aiolab_thread_set_name(name);
    qatomic_set(&cpu->thread_id, aiolab_gettid());

    bql_lock();
    cpu->created = true;
    cond_broadcast(cpu->m, &cpu->m->created_cond);
    while (!cpu->unplug) {
        if (cpu_can_run(cpu)) {
            qatomic_set(&cpu->exit_request, false);
            bql_unlock();
            int r = vcpu_exec(cpu);
            bql_lock();
            if (r == EXCP_HLT && !cpu->finished) {
                cpu->finished = true;
                machine_vcpu_finished(cpu);
            }
        }
        qemu_wait_io_event(cpu);
    }
    bql_unlock();
    return NULL;
}

/* Create the vCPU thread, stopped (as QEMU's are until vm_start).  BQL. */
bool vcpu_create(AiolabMachine *m, CPUState *cpu, Error **errp)
{
    int ret;

    cpu->stopped = true;
    ret = pthread_create(&cpu->thread, NULL, vcpu_thread_fn, cpu);
    if (ret) {
        error_setg_errno(errp, ret, "cannot create vCPU %d", cpu->cpu_index);
        return false;
    }
    while (!cpu->created) {
        cond_wait_bql(m, &m->created_cond);
    }
    return true;
}

static bool all_vcpus_paused(AiolabMachine *m)
{
    int i;

    for (i = 0; i < m->conf.smp; i++) {
        CPUState *cpu = m->cpus[i];
        if (cpu->created && !cpu->stopped) {
            return false;
        }
    }
    return true;
}

/* QEMU's pause_all_vcpus.  Main loop, BQL held. */
void pause_all_vcpus(AiolabMachine *m)
{
    int i;

    for (i = 0; i < m->conf.smp; i++) {
        CPUState *cpu = m->cpus[i];
        if (cpu->created && !cpu->stopped) {
            cpu->stop = true;
            qemu_cpu_kick(cpu);
        }
    }
    while (!all_vcpus_paused(m)) {
        cond_wait_bql(m, &m->pause_cond);
    }
}

/* QEMU's resume_all_vcpus.  Main loop, BQL held. */
void resume_all_vcpus(AiolabMachine *m)
{
    int i;

    for (i = 0; i < m->conf.smp; i++) {
        CPUState *cpu = m->cpus[i];
        cpu->stop = false;
        cpu->stopped = false;
        qemu_cpu_kick(cpu);
    }
}

/* Stop every vCPU thread and join it.  Main loop, BQL held. */
void vcpu_unplug_all(AiolabMachine *m)
{
    int i;

    pause_all_vcpus(m);
    for (i = 0; i < m->conf.smp; i++) {
        CPUState *cpu = m->cpus[i];
        if (cpu->created) {
            cpu->unplug = true;
            qemu_cpu_kick(cpu);
        }
    }
    bql_unlock();
    for (i = 0; i < m->conf.smp; i++) {
        if (m->cpus[i]->created) {
            pthread_join(m->cpus[i]->thread, NULL);
        }
    }
    bql_lock();
}
