/* SPDX-License-Identifier: MIT */
/*
 * system/machine-transport.c - the toy machine's virtio transport: a
 * virtio-mmio style register window (virtio 1.x, 4.2.2; QEMU's
 * hw/virtio/virtio-mmio.c) and the bus callbacks that raise interrupts.
 *
 * Every access here is an MMIO exit: it runs in the vCPU thread that
 * made it, with the BQL held (c/system/vcpu.c: vcpu_mmio_read/write).
 * The one register KVM handles without an exit is QueueNotify once
 * ioeventfd is started: that write becomes an eventfd signal
 * (aiolab_virtio_guest_kick) and never reaches this file.
 *
 *   driver (vCPU 0 at boot)            this window          virtio core
 *   Status = 0                   ->    reset                virtio_reset
 *   Status = ACK | DRIVER
 *   DeviceFeaturesSel/Features   ->    offered bits
 *   DriverFeaturesSel/Features   ->    latched
 *   Status |= FEATURES_OK        ->    virtio_set_features, set_status
 *   QueueSel, QueueNumMax, QueueNum, QueueDesc/Avail/Used, QueueReady
 *                                ->    virtio_queue_set_num/_set_rings
 *   Status |= DRIVER_OK          ->    aiolab_virtio_bus_set_status:
 *                                      ioeventfd starts (virtio-blk moves
 *                                      its host notifiers to their
 *                                      AioContexts)
 *
 * Interrupts: one per queue (an MSI-X vector in QEMU terms): the queue's
 * guest notifier eventfd, which the halted vCPU polls (KVM's irqfd with
 * an in-kernel interrupt controller: no exit, no BQL).  The
 * configuration interrupt (virtio_error's NEEDS_RESET) flags the device
 * and wakes the guest's vCPUs.
 *
 * Where QEMU differs: no 64-bit BAR decoding, no legacy (version 1)
 * registers, no SHM regions; register widths are not checked; QueueNum
 * and QueueReady after DRIVER_OK break the device (queue_is_live()).
 */
#include <errno.h>
#include <string.h>
#include <aiolab/machine.h>
#include "system/machine-internal.h"
#include "util/atomic.h"

static void set_low(uint64_t *reg, uint64_t val)
{
    *reg = (*reg & ~0xffffffffull) | (val & 0xffffffffull);
}

static void set_high(uint64_t *reg, uint64_t val)
{
    *reg = (*reg & 0xffffffffull) | (val << 32);
}

uint64_t transport_mmio_read(MachineDevice *d, uint64_t addr, unsigned size)
{
    VirtIODevice *vdev = d->vdev;

    if (addr >= VIRTIO_MMIO_CONFIG) {
        uint64_t val = 0;
        aiolab_virtio_config_read(vdev, addr - VIRTIO_MMIO_CONFIG, &val,
                                  size > 8 ? 8 : size);
        return val;
    }
    switch (addr) {
    case VIRTIO_MMIO_DEVICE_FEATURES:
        if (d->dev_features_sel > 1) {
            return 0;
        }
        return (uint32_t)(aiolab_virtio_get_host_features(vdev) >>
                          (32 * d->dev_features_sel));
    case VIRTIO_MMIO_QUEUE_NUM_MAX: {
        int n = virtio_queue_get_max_num(vdev, d->queue_sel);
        return n > 0 ? n : 0;
    }
    case VIRTIO_MMIO_QUEUE_READY:
        return virtio_get_queue(vdev, d->queue_sel) &&
               virtio_queue_ready(virtio_get_queue(vdev, d->queue_sel));
    case VIRTIO_MMIO_INTERRUPT_STATUS:
        return aiolab_virtio_isr_read(vdev);
    case VIRTIO_MMIO_STATUS:
        return aiolab_virtio_get_status(vdev);
    case VIRTIO_MMIO_CONFIG_GENERATION:
        return aiolab_virtio_get_config_generation(vdev);
    default:
        return 0;                   /* unknown registers read as zero */
    }
}

static void write_status(MachineDevice *d, uint8_t val)
{
    VirtIODevice *vdev = d->vdev;
    uint8_t old = aiolab_virtio_get_status(vdev);

    if ((val & VIRTIO_CONFIG_S_FEATURES_OK) &&
        !(old & VIRTIO_CONFIG_S_FEATURES_OK)) {
        /* virtio-mmio applies the latched features when FEATURES_OK is
         * written; bits not offered are dropped (and the driver sees
         * FEATURES_OK refused when it re-reads Status). */
        if (virtio_set_features(vdev, d->drv_features) < 0) {
            val &= ~VIRTIO_CONFIG_S_FEATURES_OK;
        }
    }
    aiolab_virtio_bus_set_status(vdev, val);
    if (val == 0) {
        d->dev_features_sel = d->drv_features_sel = d->queue_sel = 0;
        d->drv_features = 0;
        d->q_desc = d->q_avail = d->q_used = 0;
    }
}

/*
 * A queue is live once the driver has set DRIVER_OK: from then on it may
 * run in its IOThread, which reads the queue's size and ring pointers
 * with no lock (the virtio header's "queue idle" rule).  QueueNum and
 * QueueReady written then are refused, and the device breaks
 * (NEEDS_RESET) instead of racing with that thread; a reset (Status 0),
 * which stops ioeventfd first, makes the queues configurable again.
 * The address latches are this window's own state and stay writable.
 *
 * Where QEMU differs: virtio-mmio and virtio-pci apply such writes (only
 * virtio-pci's queue_enable other than 1 is a virtio_error): QEMU's ring
 * accesses go through RCU-protected region caches, so a racing IOThread
 * sees the old rings or the new, never freed memory.  aiolab has no RCU.
 */
static bool queue_is_live(MachineDevice *d, const char *reg)
{
    if (!(aiolab_virtio_get_status(d->vdev) & VIRTIO_CONFIG_S_DRIVER_OK)) {
        return false;
    }
    virtio_error(d->vdev, "%s written for queue %u after DRIVER_OK",
                 reg, d->queue_sel);
    return true;
}

void transport_mmio_write(MachineDevice *d, uint64_t addr, uint64_t val,
                          unsigned size)
{
    VirtIODevice *vdev = d->vdev;

    if (addr >= VIRTIO_MMIO_CONFIG) {
        aiolab_virtio_config_write(vdev, addr - VIRTIO_MMIO_CONFIG, &val,
                                   size > 8 ? 8 : size);
        return;
    }
    switch (addr) {
    case VIRTIO_MMIO_DEVICE_FEATURES_SEL:
        d->dev_features_sel = val;
        break;
    case VIRTIO_MMIO_DRIVER_FEATURES_SEL:
        d->drv_features_sel = val;
        break;
    case VIRTIO_MMIO_DRIVER_FEATURES:
        if (d->drv_features_sel == 0) {
            set_low(&d->drv_features, val);
        } else if (d->drv_features_sel == 1) {
            set_high(&d->drv_features, val);
        }
        break;
    case VIRTIO_MMIO_QUEUE_SEL:
        d->queue_sel = val;
        d->q_desc = d->q_avail = d->q_used = 0;
        break;
    case VIRTIO_MMIO_QUEUE_NUM:
        if (virtio_get_queue(vdev, d->queue_sel) &&
            !queue_is_live(d, "QueueNum")) {
            virtio_queue_set_num(vdev, d->queue_sel, val);
        }
        break;
    case VIRTIO_MMIO_QUEUE_DESC_LOW:
        set_low(&d->q_desc, val);
        break;
    case VIRTIO_MMIO_QUEUE_DESC_HIGH:
        set_high(&d->q_desc, val);
        break;
    case VIRTIO_MMIO_QUEUE_AVAIL_LOW:
        set_low(&d->q_avail, val);
        break;
    case VIRTIO_MMIO_QUEUE_AVAIL_HIGH:
        set_high(&d->q_avail, val);
        break;
    case VIRTIO_MMIO_QUEUE_USED_LOW:
        set_low(&d->q_used, val);
        break;
    case VIRTIO_MMIO_QUEUE_USED_HIGH:
        set_high(&d->q_used, val);
        break;
    case VIRTIO_MMIO_QUEUE_READY:
        if (virtio_get_queue(vdev, d->queue_sel) &&
            !queue_is_live(d, "QueueReady")) {
            /* A bad address breaks the device; the driver sees
             * NEEDS_RESET in Status. */
            if (val) {
                virtio_queue_set_rings(vdev, d->queue_sel, d->q_desc,
                                       d->q_avail, d->q_used);
            } else {
                virtio_queue_set_rings(vdev, d->queue_sel, 0, 0, 0);
            }
        }
        break;
    case VIRTIO_MMIO_QUEUE_NOTIFY:
        /* Reached only without ioeventfd: the handler runs right here,
         * in the vCPU thread, under the BQL (QEMU's
         * virtio_mmio_write -> virtio_queue_notify). */
        virtio_queue_notify(vdev, val);
        break;
    case VIRTIO_MMIO_STATUS:
        write_status(d, val);
        break;
    default:
        break;                      /* unknown registers ignore writes */
    }
}

/*
 * The bus's notify (virtio_notify from the main loop or a BQL holder;
 * virtio_error's configuration interrupt from whichever thread found the
 * error): deliver the interrupt.  Queue interrupts set the queue's guest
 * notifier, as the irqfd path does from IOThreads, so the guest waits on
 * one eventfd whichever way its interrupt comes.
 */
static void machine_bus_notify(void *opaque, int n)
{
    MachineDevice *d = opaque;
    AiolabMachine *m = d->m;
    int i;

    if (n == VIRTIO_CONFIG_IRQ_IDX) {
        /* Pairs with the load in guest_check_config_irq(). */
        qatomic_store_release(&d->config_irq, true);
        for (i = 0; i < m->conf.smp; i++) {
            if (m->cpus[i]) {
                vcpu_ipi(m->cpus[i]);
            }
        }
        return;
    }
    event_notifier_set(
        virtio_queue_get_guest_notifier(virtio_get_queue(d->vdev, n)));
}

const VirtioBusOps machine_bus_ops = {
    .notify = machine_bus_notify,
};
