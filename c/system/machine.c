/* SPDX-License-Identifier: MIT */
/*
 * system/machine.c - the toy machine: assembly (guest RAM, devices,
 * vCPUs, workloads), the guest's milestones (boot, go, done), events,
 * teardown and inspection.  The run state and the main loop are in
 * machine-runstate.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <aiolab/machine.h>
#include "system/machine-internal.h"
#include "util/atomic.h"
#include "util/mem.h"

AiolabMachine *current_machine;

AiolabMachine *aiolab_machine_get_current(void)
{
    return qatomic_load_acquire(&current_machine);
}

/* --- events --------------------------------------------------------- */

/*
 * BLOCK_IO_ERRORs raised in any thread, waiting for the main loop.  The
 * queue grows as needed: every error is sent, in the order raised.
 */
typedef struct MachineQueuedEvent {
    int dev;
    bool is_read;
    BlockErrorAction action;
    int error;
} MachineQueuedEvent;

typedef struct MachineEventQueue {
    size_t n, cap;
    MachineQueuedEvent *ev;
} MachineEventQueue;

void machine_emit(AiolabMachine *m, const AiolabMachineEvent *ev)
{
    if (m->event_fn) {
        m->event_fn(m->event_opaque, ev);
    }
}

/*
 * Main loop, BQL: send the BLOCK_IO_ERRORs other threads queued.  Run by
 * the event BH, and by vm_stop before its STOP, so that an error that
 * stopped the VM is sent before the STOP (QEMU's blk_error_action sends
 * the event from the failing thread before it requests the stop).
 */
void machine_flush_events(AiolabMachine *m)
{
    MachineEventQueue q;
    size_t i;

    pthread_mutex_lock(&m->event_lock);
    q = *m->events;
    memset(m->events, 0, sizeof(*m->events));
    pthread_mutex_unlock(&m->event_lock);
    for (i = 0; i < q.n; i++) {
        MachineDevice *d = m->devs[q.ev[i].dev];
        BlockDriverState *bs = blk_bs(d->blk);
        AiolabMachineEvent ev = {
            .type = AIOLAB_MACHINE_EVENT_BLOCK_IO_ERROR,
            .device = d->id,
            .node_name = bs ? bdrv_get_node_name(bs) : "",
            .is_read = q.ev[i].is_read,
            .action = q.ev[i].action,
            .error = q.ev[i].error,
        };
        machine_emit(m, &ev);
    }
    free(q.ev);
}

static void machine_event_bh(void *opaque)
{
    machine_flush_events(opaque);
}

/*
 * virtio-blk's block_io_error callback (QEMU's blk_error_action): runs
 * in whichever thread completed the request, an IOThread too, so it
 * queues the event and, for "stop", asks the main loop to stop the VM.
 * The event is queued before the stop is requested: the main loop that
 * sees the request finds the event already queued.
 */
void machine_io_error(void *opaque, BlockErrorAction action, bool is_read,
                      int error)
{
    MachineDevice *d = opaque;
    AiolabMachine *m = d->m;
    MachineEventQueue *q = m->events;

    pthread_mutex_lock(&m->event_lock);
    if (q->n == q->cap) {
        q->cap = q->cap ? q->cap * 2 : 16;
        q->ev = aiolab_xreallocarray(q->ev, q->cap, sizeof(q->ev[0]));
    }
    q->ev[q->n++] = (MachineQueuedEvent) {
        .dev = d->index,
        .is_read = is_read,
        .action = action,
        .error = error < 0 ? -error : error,
    };
    pthread_mutex_unlock(&m->event_lock);
    qemu_bh_schedule(m->event_bh);
    if (action == BLOCK_ERROR_ACTION_STOP) {
        qemu_system_vmstop_request(RUN_STATE_IO_ERROR);
    }
}

void aiolab_machine_set_event_handler(AiolabMachine *m,
                                      AiolabMachineEventFunc *fn,
                                      void *opaque)
{
    m->event_fn = fn;
    m->event_opaque = opaque;
}

/* --- creation ------------------------------------------------------- */

static void machine_go_bh(void *opaque);

AiolabMachine *aiolab_machine_new(const AiolabMachineConf *conf, Error **errp)
{
    AiolabMachine *m;
    int i;

    if (current_machine) {
        error_setg(errp, "a machine exists already");
        return NULL;
    }
    if (conf->smp < 1 || conf->smp > MACHINE_MAX_CPUS) {
        error_setg(errp, "Invalid SMP CPUs %d. The max CPUs supported by "
                   "machine 'aiolab' is %d", conf->smp, MACHINE_MAX_CPUS);
        return NULL;
    }
    if (!conf->ram_size || conf->ram_size % 4096) {
        error_setg(errp, "ram size must be a non-zero multiple of 4 KiB");
        return NULL;
    }
    m = aiolab_xcalloc(1, sizeof(*m));
    m->conf = *conf;
    m->mem = aiolab_guest_mem_new();
    if (!aiolab_guest_mem_add_ram(m->mem, 0, conf->ram_size, "aiolab.ram",
                                  errp)) {
        aiolab_guest_mem_free(m->mem);
        free(m);
        return NULL;
    }
    m->ram_next = 0x1000;               /* page 0 stays unused */
    pthread_mutex_init(&m->cpu_lock, NULL);
    pthread_cond_init(&m->pause_cond, NULL);
    pthread_cond_init(&m->created_cond, NULL);
    pthread_mutex_init(&m->stats_lock, NULL);
    pthread_mutex_init(&m->event_lock, NULL);
    m->events = aiolab_xcalloc(1, sizeof(*m->events));
    m->runstate = RUN_STATE_PRELAUNCH;
    for (i = 0; i < conf->smp; i++) {
        CPUState *cpu = aiolab_xcalloc(1, sizeof(*cpu));

        cpu->m = m;
        cpu->cpu_index = i;
        event_notifier_init(&cpu->kick, 0);
        pthread_cond_init(&cpu->halt_cond, NULL);
        pthread_mutex_init(&cpu->stats_lock, NULL);
        cpu->stats.vcpu = i;
        cpu->stats.queue = -1;
        m->cpus[i] = cpu;
    }
    m->go_bh = qemu_bh_new(machine_go_bh, m);
    m->event_bh = qemu_bh_new(machine_event_bh, m);
    /* Pairs with the load-acquire in aiolab_machine_get_current(). */
    qatomic_store_release(&current_machine, m);
    return m;
}

static MachineDevice *find_device(AiolabMachine *m, const char *id)
{
    int i;

    for (i = 0; i < m->ndevs; i++) {
        if (!id || !id[0] || !strcmp(m->devs[i]->id, id)) {
            return m->devs[i];
        }
    }
    return NULL;
}

static void free_device(MachineDevice *d)
{
    size_t i;
    int q;

    for (i = 0; i < d->n_mapping; i++) {
        free(d->mapping_iothreads[i]);
    }
    free(d->mapping_iothreads);
    for (q = 0; d->queues && q < d->num_queues; q++) {
        if (d->queues[q].ready) {
            aiolab_vring_cleanup(&d->queues[q].vr);
        }
        free(d->queues[q].by_head);
        pthread_mutex_destroy(&d->queues[q].lock);
    }
    free(d->queues);
    free(d);
}

VirtIOBlock *aiolab_machine_add_virtio_blk(AiolabMachine *m,
                                           const VirtIOBlkConf *conf,
                                           const char *drive, Error **errp)
{
    VirtIOBlkConf c = *conf;
    BlockDriverState *bs;
    MachineDevice *d;
    size_t i;
    int q;

    if (m->started || m->ndevs == MACHINE_MAX_DEVICES) {
        error_setg(errp, m->started ? "devices must be added before the "
                   "machine starts" : "too many devices");
        return NULL;
    }
    bs = drive ? bdrv_find_node(drive) : NULL;
    if (!bs) {
        error_setg(errp, "Property 'virtio-blk-device.drive' can't find "
                   "value '%s'", drive ? drive : "");
        return NULL;
    }
    if (aiolab_machine_node_in_use(m, bs)) {
        error_setg(errp, "Property 'virtio-blk-device.drive' can't take "
                   "value '%s', it's in use", drive);
        return NULL;
    }
    d = aiolab_xcalloc(1, sizeof(*d));
    d->m = m;
    d->index = m->ndevs;
    if (conf->id) {
        snprintf(d->id, sizeof(d->id), "%s", conf->id);
    } else {
        snprintf(d->id, sizeof(d->id), "virtio-blk%d", m->ndevs);
    }
    for (i = 0; i < (size_t)m->ndevs; i++) {
        if (!strcmp(m->devs[i]->id, d->id)) {
            error_setg(errp, "Duplicate ID '%s' for device", d->id);
            free(d);
            return NULL;
        }
    }
    d->blk = blk_new(qemu_get_aio_context());
    if (blk_insert_bs(d->blk, bs, errp) < 0) {
        blk_unref(d->blk);
        free(d);
        return NULL;
    }
    c.id = d->id;
    c.blk = d->blk;
    c.block_io_error = machine_io_error;
    c.opaque = d;
    d->s = virtio_blk_new(&c, m->mem, &machine_bus_ops, d, errp);
    if (!d->s) {
        blk_unref(d->blk);
        free(d);
        return NULL;
    }
    d->vdev = aiolab_virtio_blk_get_vdev(d->s);
    d->ioeventfd = conf->ioeventfd;
    snprintf(d->iothread, sizeof(d->iothread), "%s",
             conf->iothread ? conf->iothread : "");
    d->n_mapping = conf->iothread_vq_mapping ? conf->iothread_vq_mapping_len
                                             : 0;
    d->mapping_iothreads = aiolab_xcalloc(d->n_mapping + 1, sizeof(char *));
    for (i = 0; i < d->n_mapping; i++) {
        d->mapping_iothreads[i] =
            aiolab_xstrdup(conf->iothread_vq_mapping[i].iothread);
    }
    d->num_queues = virtio_get_num_queues(d->vdev);
    d->queue_size = virtio_queue_get_max_num(d->vdev, 0);
    d->queues = aiolab_xcalloc(d->num_queues, sizeof(*d->queues));
    for (q = 0; q < d->num_queues; q++) {
        GuestQueue *gq = &d->queues[q];

        gq->dev = d;
        gq->index = q;
        gq->max_num = d->queue_size;
        gq->irq = virtio_queue_get_guest_notifier(virtio_get_queue(d->vdev,
                                                                   q));
        pthread_mutex_init(&gq->lock, NULL);
    }
    m->devs[m->ndevs++] = d;
    return d->s;
}

/* --- workloads ------------------------------------------------------ */

bool aiolab_machine_set_workload(AiolabMachine *m,
                                 const AiolabWorkloadConf *conf,
                                 Error **errp)
{
    AiolabWorkloadConf c = *conf;
    MachineDevice *d = NULL;
    CPUState *cpu;
    int64_t len;

    if (m->started) {
        error_setg(errp, "workloads must be set before the machine starts");
        return false;
    }
    if (c.vcpu < 0 || c.vcpu >= m->conf.smp) {
        error_setg(errp, "vcpu=%d does not exist (the machine has %d vCPU%s)",
                   c.vcpu, m->conf.smp, m->conf.smp > 1 ? "s" : "");
        return false;
    }
    cpu = m->cpus[c.vcpu];
    if (cpu->has_workload) {
        error_setg(errp, "vCPU %d has a workload already", c.vcpu);
        return false;
    }
    if (c.rw != AIOLAB_WL_NONE) {
        if (c.mmio_hold_ns) {
            error_setg(errp, "mmio-hold cannot be combined with rw=%s: give "
                       "the BQL holder a vCPU of its own",
                       aiolab_workload_type_name(c.rw));
            return false;
        }
        d = find_device(m, c.device);
        if (!d && c.device[0]) {
            error_setg(errp, "Device '%s' not found", c.device);
            return false;
        } else if (!d) {
            error_setg(errp, "rw=%s needs a virtio-blk device",
                       aiolab_workload_type_name(c.rw));
            return false;
        }
        len = blk_getlength(d->blk) / VIRTIO_BLK_SECTOR_SIZE *
              VIRTIO_BLK_SECTOR_SIZE;
        if (c.bs % VIRTIO_BLK_SECTOR_SIZE) {
            error_setg(errp, "bs=%u is not a multiple of 512", c.bs);
            return false;
        }
        if (c.offset % c.bs) {
            error_setg(errp, "offset=%lld is not a multiple of bs=%u",
                       (long long)c.offset, c.bs);
            return false;
        }
        if (c.offset + (int64_t)c.bs > len ||
            (c.size && c.offset + c.size > len)) {
            error_setg(errp, "the region (offset=%lld, size=%lld) does not "
                       "fit on %s's %lld-byte disk with bs=%u",
                       (long long)c.offset, (long long)c.size, d->id,
                       (long long)len, c.bs);
            return false;
        }
        if (c.queue >= d->num_queues) {
            error_setg(errp, "queue=%d is out of range (device '%s' has %d "
                       "queue%s)", c.queue, d->id, d->num_queues,
                       d->num_queues > 1 ? "s" : "");
            return false;
        }
        if (!c.runtime_ns && !c.count) {
            c.runtime_ns = 1000000000;
        }
        snprintf(c.device, sizeof(c.device), "%s", d->id);
    }
    if (c.mmio_hold_ns && !c.mmio_period_ns) {
        c.mmio_period_ns = 2 * c.mmio_hold_ns;
    }
    if (c.mmio_hold_ns > c.mmio_period_ns) {
        error_setg(errp, "mmio-hold must not exceed mmio-period");
        return false;
    }
    cpu->wl.conf = c;
    cpu->wl.dev = d;
    cpu->wl.has_io = d != NULL;
    cpu->has_workload = true;
    m->n_workloads++;
    m->n_io_workloads += d != NULL;
    return true;
}

/* Regions: verify workloads with size=0 share the rest of their disk. */
static bool assign_regions(AiolabMachine *m, Error **errp)
{
    int i, j;

    for (i = 0; i < m->conf.smp; i++) {
        Workload *w = &m->cpus[i]->wl;
        int64_t len, size, share = 0, nth = 0;

        if (!w->has_io) {
            continue;
        }
        len = blk_getlength(w->dev->blk) / VIRTIO_BLK_SECTOR_SIZE *
              VIRTIO_BLK_SECTOR_SIZE;
        size = w->conf.size ? w->conf.size : len - w->conf.offset;
        w->region_off = w->conf.offset;
        if (w->conf.rw == AIOLAB_WL_VERIFY && !w->conf.size) {
            for (j = 0; j < m->conf.smp; j++) {
                Workload *o = &m->cpus[j]->wl;
                if (o->has_io && o->dev == w->dev &&
                    o->conf.rw == AIOLAB_WL_VERIFY && !o->conf.size &&
                    o->conf.offset == w->conf.offset) {
                    nth += j < i;
                    share++;
                }
            }
            size = size / share / w->conf.bs * w->conf.bs;
            w->region_off += nth * size;
        }
        w->nblocks = size / w->conf.bs;
        if (w->nblocks < 1) {
            error_setg(errp, "vCPU %d's region holds no block of %u bytes", i,
                       w->conf.bs);
            return false;
        }
    }
    /* Two verify workloads writing the same blocks would each see the
     * other's data as corruption. */
    for (i = 0; i < m->conf.smp; i++) {
        Workload *a = &m->cpus[i]->wl;
        for (j = i + 1; j < m->conf.smp; j++) {
            Workload *b = &m->cpus[j]->wl;
            if (a->has_io && b->has_io && a->dev == b->dev &&
                (a->conf.rw == AIOLAB_WL_VERIFY ||
                 b->conf.rw == AIOLAB_WL_VERIFY) &&
                a->region_off < b->region_off + b->nblocks * b->conf.bs &&
                b->region_off < a->region_off + a->nblocks * a->conf.bs) {
                error_setg(errp, "the regions of vCPU %d and vCPU %d overlap "
                           "and one of them verifies: give them disjoint "
                           "offset=/size=", i, j);
                return false;
            }
        }
    }
    return true;
}

static bool layout_rings(AiolabMachine *m, Error **errp)
{
    int i, q;

    for (i = 0; i < m->ndevs; i++) {
        MachineDevice *d = m->devs[i];
        for (q = 0; q < d->num_queues; q++) {
            uint64_t size = aiolab_vring_layout(d->queue_size, 0, NULL, NULL,
                                                NULL);
            uint64_t gpa = (m->ram_next + 4095) & ~4095ull;

            if (gpa + size > m->conf.ram_size) {
                error_setg(errp, "not enough guest RAM for the virtqueues of "
                           "%s: raise -m", d->id);
                return false;
            }
            d->queues[q].ring_gpa = gpa;
            m->ram_next = gpa + size;
        }
    }
    return true;
}

bool aiolab_machine_start(AiolabMachine *m, bool autostart, Error **errp)
{
    int i;

    if (m->started) {
        error_setg(errp, "the machine has started already");
        return false;
    }
    if (!assign_regions(m, errp) || !layout_rings(m, errp)) {
        return false;
    }
    for (i = 0; i < m->conf.smp; i++) {
        CPUState *cpu = m->cpus[i];
        Workload *w = &cpu->wl;

        if (!cpu->has_workload) {
            continue;
        }
        if (w->has_io) {
            int qi = w->conf.queue >= 0 ? w->conf.queue
                                        : i % w->dev->num_queues;
            w->q = &w->dev->queues[qi];
            w->q->users++;
            cpu->stats.queue = qi;
            snprintf(cpu->stats.device, sizeof(cpu->stats.device), "%s",
                     w->dev->id);
        }
        cpu->stats.rw = w->conf.rw;
        cpu->stats.has_io = w->has_io;
        if (!workload_setup(m, cpu, errp)) {
            return false;
        }
    }
    m->io_running = m->n_io_workloads;
    m->wl_running = m->n_workloads;
    for (i = 0; i < m->conf.smp; i++) {
        if (!vcpu_create(m, m->cpus[i], errp)) {
            return false;
        }
    }
    m->started = true;
    if (autostart) {
        vm_start();
    }
    return true;
}

/* --- the guest's milestones (vCPU threads) ------------------------------ */

/* Every vCPU has booted: begin the measurement, then let them go. */
static void machine_go_bh(void *opaque)
{
    AiolabMachine *m = opaque;
    int i;

    aiolab_bql_reset_stats();
    machine_stats_start(m);
    for (i = 0; i < m->conf.smp; i++) {
        CPUState *cpu = m->cpus[i];

        /* vCPU 0's boot exits are not part of its workload */
        pthread_mutex_lock(&cpu->stats_lock);
        cpu->stats.mmio_exits = cpu->stats.kicks = 0;
        cpu->stats.kicks_suppressed = cpu->stats.interrupts = 0;
        pthread_mutex_unlock(&cpu->stats_lock);
    }
    qatomic_set(&m->measure_vns, qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL) | 1);
    aiolab_trace_mark("measurement begins", 0);
    /* Pairs with the load-acquire in vcpu_exec(). */
    qatomic_store_release(&m->go, true);
    for (i = 0; i < m->conf.smp; i++) {
        vcpu_ipi(m->cpus[i]);
    }
}

void machine_vcpu_ready(CPUState *cpu)
{
    AiolabMachine *m = cpu->m;

    if (qatomic_add_fetch(&m->ready_vcpus, 1) == m->conf.smp) {
        qemu_bh_schedule(m->go_bh);
    }
}

/* vCPU @cpu's guest code ended.  Its thread, BQL held. */
void machine_vcpu_finished(CPUState *cpu)
{
    AiolabMachine *m = cpu->m;
    int i;

    pthread_mutex_lock(&cpu->stats_lock);
    cpu->stats.finished = true;
    pthread_mutex_unlock(&cpu->stats_lock);
    if (!cpu->has_workload) {
        return;
    }
    if (cpu->wl.has_io && qatomic_sub_fetch(&m->io_running, 1) == 0) {
        for (i = 0; i < m->conf.smp; i++) {
            vcpu_ipi(m->cpus[i]);       /* mmio-hold vCPUs end with I/O */
        }
    }
    if (qatomic_sub_fetch(&m->wl_running, 1) == 0) {
        qemu_system_shutdown_request(SHUTDOWN_CAUSE_GUEST_SHUTDOWN);
    }
}

bool aiolab_machine_guest_done(AiolabMachine *m)
{
    return m->started && qatomic_read(&m->io_running) == 0;
}

/* --- teardown ------------------------------------------------------- */

static void nothing_bh(void *opaque)
{
}

/*
 * Let every queue's context finish what it is running.  A completion in
 * an IOThread drops the BlockBackend's in-flight count inside its
 * callback, but the irqfd write it deferred (defer_call) happens when the
 * surrounding BH returns: a drain can end in between.  A oneshot BH in
 * that context runs only after it, so once it has run nothing there
 * touches the device's guest notifiers any more, and they may be closed.
 */
static void quiesce_queue_contexts(MachineDevice *d)
{
    int q, p;

    for (q = 0; q < d->num_queues; q++) {
        AioContext *ctx = aiolab_virtio_blk_get_vq_aio_context(d->s, q);

        for (p = 0; p < q; p++) {
            if (aiolab_virtio_blk_get_vq_aio_context(d->s, p) == ctx) {
                break;
            }
        }
        if (p == q && ctx != qemu_get_aio_context()) {
            aio_wait_bh_oneshot(ctx, nothing_bh, NULL);
        }
    }
}

void aiolab_machine_free(AiolabMachine *m)
{
    int i;

    if (!m) {
        return;
    }
    if (m->started) {
        vcpu_unplug_all(m);
    }
    for (i = 0; i < m->ndevs; i++) {
        virtio_device_stop_ioeventfd(m->devs[i]->vdev);
        blk_drain(m->devs[i]->blk);
        quiesce_queue_contexts(m->devs[i]);
        virtio_blk_free(m->devs[i]->s);
        blk_unref(m->devs[i]->blk);
        free_device(m->devs[i]);
    }
    for (i = 0; i < m->conf.smp; i++) {
        CPUState *cpu = m->cpus[i];
        workload_free(cpu);
        event_notifier_cleanup(&cpu->kick);
        pthread_cond_destroy(&cpu->halt_cond);
        pthread_mutex_destroy(&cpu->stats_lock);
        free(cpu);
    }
    qemu_bh_delete(m->go_bh);
    qemu_bh_delete(m->event_bh);
    machine_stats_free(m);
    free(m->events->ev);
    free(m->events);
    aiolab_guest_mem_free(m->mem);
    qatomic_store_release(&current_machine, NULL);
    free(m);
}

/* --- inspection ----------------------------------------------------- */

int aiolab_machine_get_smp(AiolabMachine *m)
{
    return m->conf.smp;
}

uint64_t aiolab_machine_get_ram_size(AiolabMachine *m)
{
    return m->conf.ram_size;
}

int aiolab_machine_get_vcpu_thread_id(AiolabMachine *m, int i)
{
    return i >= 0 && i < m->conf.smp ? qatomic_read(&m->cpus[i]->thread_id)
                                     : 0;
}

int aiolab_machine_num_devices(AiolabMachine *m)
{
    return m->ndevs;
}

VirtIOBlock *aiolab_machine_get_device(AiolabMachine *m, int i)
{
    return i >= 0 && i < m->ndevs ? m->devs[i]->s : NULL;
}

const char *aiolab_machine_device_id(AiolabMachine *m, int i)
{
    return i >= 0 && i < m->ndevs ? m->devs[i]->id : NULL;
}

BlockBackend *aiolab_machine_device_blk(AiolabMachine *m, int i)
{
    return i >= 0 && i < m->ndevs ? m->devs[i]->blk : NULL;
}

const char *aiolab_machine_device_iothread(AiolabMachine *m, int i)
{
    return i >= 0 && i < m->ndevs && m->devs[i]->iothread[0]
               ? m->devs[i]->iothread : NULL;
}

bool aiolab_machine_node_in_use(AiolabMachine *m, BlockDriverState *bs)
{
    int i;

    for (i = 0; i < m->ndevs; i++) {
        if (blk_bs(m->devs[i]->blk) == bs) {
            return true;
        }
    }
    return false;
}

bool aiolab_machine_iothread_in_use(AiolabMachine *m, const char *id)
{
    size_t j;
    int i;

    for (i = 0; i < m->ndevs; i++) {
        MachineDevice *d = m->devs[i];
        if (!strcmp(d->iothread, id)) {
            return true;
        }
        for (j = 0; j < d->n_mapping; j++) {
            if (!strcmp(d->mapping_iothreads[j], id)) {
                return true;
            }
        }
    }
    return false;
}
