/* SPDX-License-Identifier: MIT */
/*
 * system/vcpu-guest.c - the guest's virtio-blk driver: what Linux's
 * drivers/block/virtio_blk.c and drivers/virtio/virtio_mmio.c do, small.
 * It runs in vCPU threads as guest code: it never takes the BQL itself;
 * every register access is an MMIO exit (vcpu_mmio_read/write), and a
 * kick is an exit only without ioeventfd.
 *
 * Boot (vCPU 0, once per device; virtio 1.x 3.1.1):
 *   reset; ACKNOWLEDGE; DRIVER; read the offered features; accept
 *   VERSION_1, EVENT_IDX, MQ, FLUSH, BLK_SIZE, SEG_MAX; FEATURES_OK and
 *   check it stuck; read capacity, blk_size, num_queues from config
 *   space; set up each queue (size, three ring addresses, ready);
 *   DRIVER_OK.  Any refusal: Status = FAILED and the device is unusable.
 *
 * Requests (any vCPU, on the queue blk-mq maps it to):
 *   lock the queue; for each request: a chain of three buffers
 *     [header: type, sector]  (device-readable)
 *     [data: bs bytes]        (readable for writes, writable for reads)
 *     [status: 1 byte]        (device-writable)
 *   published in the avail ring; decide whether the device wants a kick
 *   (EVENT_IDX's avail_event / NO_NOTIFY); unlock; kick.
 *   Completions: lock; collect used entries (any vCPU may collect those
 *   of another sharing the queue, and then sends it an IPI); unlock.
 *   Halting: ask for an interrupt (EVENT_IDX: used_event = the next
 *   entry), re-check the used ring (the race with a completion that
 *   came just before), then sleep in poll() on the queue's interrupt
 *   eventfd and the vCPU's kick eventfd.
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
#include "util/mem.h"

#define GUEST_FEATURES ((1ull << VIRTIO_F_VERSION_1) |              \
                        (1ull << VIRTIO_RING_F_EVENT_IDX) |         \
                        (1ull << VIRTIO_BLK_F_MQ) |                 \
                        (1ull << VIRTIO_BLK_F_FLUSH) |              \
                        (1ull << VIRTIO_BLK_F_BLK_SIZE) |           \
                        (1ull << VIRTIO_BLK_F_SEG_MAX))

void guest_stats_add(CPUState *cpu, uint64_t *field, uint64_t n)
{
    pthread_mutex_lock(&cpu->stats_lock);
    *field += n;
    pthread_mutex_unlock(&cpu->stats_lock);
}

/* --- boot: probing a device ----------------------------------------- */

static bool probe_fail(CPUState *cpu, MachineDevice *d, const char *why)
{
    snprintf(d->guest_error, sizeof(d->guest_error), "%s", why);
    vcpu_mmio_write(cpu, d, VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_FAILED, 4);
    qatomic_set(&d->guest_failed, true);
    return false;
}

/* The selected queue's three ring addresses, as 32-bit register halves. */
static void write_ring_addrs(CPUState *cpu, MachineDevice *d, uint64_t desc,
                             uint64_t avail, uint64_t used)
{
    vcpu_mmio_write(cpu, d, VIRTIO_MMIO_QUEUE_DESC_LOW, desc, 4);
    vcpu_mmio_write(cpu, d, VIRTIO_MMIO_QUEUE_DESC_HIGH, desc >> 32, 4);
    vcpu_mmio_write(cpu, d, VIRTIO_MMIO_QUEUE_AVAIL_LOW, avail, 4);
    vcpu_mmio_write(cpu, d, VIRTIO_MMIO_QUEUE_AVAIL_HIGH, avail >> 32, 4);
    vcpu_mmio_write(cpu, d, VIRTIO_MMIO_QUEUE_USED_LOW, used, 4);
    vcpu_mmio_write(cpu, d, VIRTIO_MMIO_QUEUE_USED_HIGH, used >> 32, 4);
}

static bool setup_queue(CPUState *cpu, MachineDevice *d, GuestQueue *q)
{
    uint64_t desc, avail, used;
    unsigned num;

    vcpu_mmio_write(cpu, d, VIRTIO_MMIO_QUEUE_SEL, q->index, 4);
    num = vcpu_mmio_read(cpu, d, VIRTIO_MMIO_QUEUE_NUM_MAX, 4);
    if (num > q->max_num) {
        num = q->max_num;
    }
    if (num == 0 || (num & (num - 1))) {
        return false;
    }
    vcpu_mmio_write(cpu, d, VIRTIO_MMIO_QUEUE_NUM, num, 4);
    aiolab_vring_layout(num, q->ring_gpa, &desc, &avail, &used);
    write_ring_addrs(cpu, d, desc, avail, used);
    if (aiolab_vring_init(&q->vr, d->m->mem, num, desc, avail, used,
                          d->event_idx) < 0) {
        return false;
    }
    q->by_head = aiolab_xcalloc(num, sizeof(*q->by_head));
    vcpu_mmio_write(cpu, d, VIRTIO_MMIO_QUEUE_READY, 1, 4);
    q->ready = true;
    return true;
}

/*
 * A buggy or malicious driver (the reconfigure=N workload knob): select
 * the live queue @q again and write it a new size (half) and a new
 * layout, then QueueReady, all after DRIVER_OK.  The device's IOThread
 * is reading that queue's size and ring pointers meanwhile; the
 * transport must refuse (c/system/machine-transport.c: queue_is_live()).
 */
void guest_reconfigure_queue(CPUState *cpu, GuestQueue *q)
{
    MachineDevice *d = q->dev;
    unsigned num = q->vr.num > 1 ? q->vr.num / 2 : 1;
    uint64_t desc, avail, used;

    aiolab_vring_layout(num, q->ring_gpa, &desc, &avail, &used);
    vcpu_mmio_write(cpu, d, VIRTIO_MMIO_QUEUE_SEL, q->index, 4);
    vcpu_mmio_write(cpu, d, VIRTIO_MMIO_QUEUE_NUM, num, 4);
    write_ring_addrs(cpu, d, desc, avail, used);
    vcpu_mmio_write(cpu, d, VIRTIO_MMIO_QUEUE_READY, 1, 4);
}

/*
 * Probe @d: the virtio 1.x initialisation sequence.  Returns: false if
 * the device was refused (d->guest_error says why).
 * Context: vCPU 0's guest code, at boot.
 */
bool guest_probe_device(CPUState *cpu, MachineDevice *d)
{
    uint64_t features;
    uint8_t status;
    int i, nq;

    vcpu_mmio_write(cpu, d, VIRTIO_MMIO_STATUS, 0, 4);        /* reset */
    status = VIRTIO_CONFIG_S_ACKNOWLEDGE;
    vcpu_mmio_write(cpu, d, VIRTIO_MMIO_STATUS, status, 4);
    status |= VIRTIO_CONFIG_S_DRIVER;
    vcpu_mmio_write(cpu, d, VIRTIO_MMIO_STATUS, status, 4);

    vcpu_mmio_write(cpu, d, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0, 4);
    features = vcpu_mmio_read(cpu, d, VIRTIO_MMIO_DEVICE_FEATURES, 4);
    vcpu_mmio_write(cpu, d, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1, 4);
    features |= vcpu_mmio_read(cpu, d, VIRTIO_MMIO_DEVICE_FEATURES, 4) << 32;
    features &= GUEST_FEATURES;
    if (!(features & (1ull << VIRTIO_F_VERSION_1))) {
        return probe_fail(cpu, d, "the device does not offer VERSION_1");
    }
    vcpu_mmio_write(cpu, d, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0, 4);
    vcpu_mmio_write(cpu, d, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)features,
                    4);
    vcpu_mmio_write(cpu, d, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1, 4);
    vcpu_mmio_write(cpu, d, VIRTIO_MMIO_DRIVER_FEATURES, features >> 32, 4);
    status |= VIRTIO_CONFIG_S_FEATURES_OK;
    vcpu_mmio_write(cpu, d, VIRTIO_MMIO_STATUS, status, 4);
    if (!(vcpu_mmio_read(cpu, d, VIRTIO_MMIO_STATUS, 4) &
          VIRTIO_CONFIG_S_FEATURES_OK)) {
        return probe_fail(cpu, d, "the device refused FEATURES_OK");
    }
    d->event_idx = features & (1ull << VIRTIO_RING_F_EVENT_IDX);

    d->capacity_bytes = vcpu_mmio_read(cpu, d, VIRTIO_MMIO_CONFIG +
                        offsetof(struct virtio_blk_config, capacity), 8) *
                        VIRTIO_BLK_SECTOR_SIZE;
    d->blk_size = VIRTIO_BLK_SECTOR_SIZE;
    if (features & (1ull << VIRTIO_BLK_F_BLK_SIZE)) {
        d->blk_size = vcpu_mmio_read(cpu, d, VIRTIO_MMIO_CONFIG +
                      offsetof(struct virtio_blk_config, blk_size), 4);
    }
    nq = 1;
    if (features & (1ull << VIRTIO_BLK_F_MQ)) {
        nq = vcpu_mmio_read(cpu, d, VIRTIO_MMIO_CONFIG +
             offsetof(struct virtio_blk_config, num_queues), 2);
    }
    if (nq < 1 || nq > d->num_queues) {
        return probe_fail(cpu, d, "bad num_queues in config space");
    }
    for (i = 0; i < nq; i++) {
        if (!setup_queue(cpu, d, &d->queues[i])) {
            return probe_fail(cpu, d, "cannot set up a virtqueue");
        }
    }
    d->guest_num_queues = nq;

    status |= VIRTIO_CONFIG_S_DRIVER_OK;
    vcpu_mmio_write(cpu, d, VIRTIO_MMIO_STATUS, status, 4);
    if (vcpu_mmio_read(cpu, d, VIRTIO_MMIO_STATUS, 4) &
        VIRTIO_CONFIG_S_NEEDS_RESET) {
        return probe_fail(cpu, d, "the device needs a reset after DRIVER_OK");
    }
    qatomic_set(&d->guest_ready, true);
    return true;
}

/*
 * Has @d failed?  A pending configuration interrupt is handled here: the
 * driver reads Status (an MMIO exit) and gives up on a device that
 * needs a reset, as a driver without reset support would.
 */
bool guest_device_failed(CPUState *cpu, MachineDevice *d)
{
    /* Pairs with the store-release in machine_bus_notify(). */
    if (qatomic_load_acquire(&d->config_irq) &&
        qatomic_xchg(&d->config_irq, false)) {
        if (vcpu_mmio_read(cpu, d, VIRTIO_MMIO_STATUS, 4) &
            VIRTIO_CONFIG_S_NEEDS_RESET) {
            qatomic_set(&d->guest_failed, true);
        }
    }
    return qatomic_read(&d->guest_failed);
}

/* --- requests --------------------------------------------------------- */

/*
 * Publish @n requests (headers already written) on @q and kick if the
 * device wants it.  @malformed: the first request's data buffer points
 * past the end of guest RAM (a buggy or malicious guest).
 * Returns: how many were published (fewer when the ring is full).
 */
int guest_submit(CPUState *cpu, GuestQueue *q, GuestReq **reqs, int n,
                 bool malformed)
{
    MachineDevice *d = q->dev;
    AiolabWorkloadConf *c = &cpu->wl.conf;
    bool kick;
    int i;

    pthread_mutex_lock(&q->lock);
    for (i = 0; i < n; i++) {
        GuestReq *r = reqs[i];
        AiolabVringBuf bufs[3] = {
            { r->hdr_gpa, sizeof(struct virtio_blk_outhdr), false },
            { r->data_gpa, c->bs, !r->is_write },
            { r->status_gpa, 1, true },
        };
        int head;

        if (malformed && i == 0) {
            bufs[1].gpa = aiolab_machine_get_ram_size(d->m) + (1ull << 30);
        }
        *r->status = 0xff;
        r->done = false;
        r->submit_ns = vcpu_now();
        head = aiolab_vring_add_chain(&q->vr, bufs, 3);
        if (head < 0) {
            break;                      /* ring full: try again later */
        }
        q->by_head[head] = r;
        r->in_flight = true;
    }
    kick = i > 0 && aiolab_vring_kick_needed(&q->vr);
    pthread_mutex_unlock(&q->lock);

    if (kick) {
        vcpu_queue_notify(cpu, d, q->index);
    } else if (i > 0) {
        guest_stats_add(cpu, &cpu->stats.kicks_suppressed, 1);
    }
    return i;
}

/*
 * Collect every used entry of @q, marking each request done for its
 * owner; owners other than @cpu get an IPI.
 */
void guest_collect(CPUState *cpu, GuestQueue *q)
{
    CPUState *others[MACHINE_MAX_CPUS];
    int n_others = 0, i;
    uint32_t id, len;
    int64_t now = vcpu_now();

    pthread_mutex_lock(&q->lock);
    while (aiolab_vring_get_used(&q->vr, &id, &len)) {
        GuestReq *r = id < q->vr.num ? q->by_head[id] : NULL;

        if (!r) {
            continue;                   /* not ours: a device bug */
        }
        q->by_head[id] = NULL;
        r->done = true;
        r->used_len = len;
        r->done_ns = now;
        if (r->owner != cpu) {
            for (i = 0; i < n_others && others[i] != r->owner; i++) {
                /* already listed */
            }
            if (i == n_others) {
                others[n_others++] = r->owner;
            }
        }
    }
    pthread_mutex_unlock(&q->lock);
    for (i = 0; i < n_others; i++) {
        vcpu_ipi(others[i]);
    }
}

/* Has another vCPU sent us an IPI (it collected one of our requests)
 * since we last asked?  Polling guests ask instead of halting. */
bool guest_ipi_pending(CPUState *cpu)
{
    return qatomic_read(&cpu->ipi) && qatomic_xchg(&cpu->ipi, false);
}

/*
 * A polling driver's queue (Linux's virtqueue_disable_cb on a poll
 * queue): ask the device for no interrupt.  A polling vCPU never halts,
 * so it never asks for one either; this also keeps a used_event left
 * from an earlier halt, or the one used.idx would pass every 64K
 * entries, from being crossed.  With EVENT_IDX the device signals when
 * used.idx moves past used_event since its last check
 * (vring_need_event), so used_event goes half the index space away from
 * the entries in use, again after each collection.  (One behind the
 * next entry would not do: a device that checks after the guest has
 * collected the entry sees used.idx step right past it.)  Without
 * EVENT_IDX, VRING_AVAIL_F_NO_INTERRUPT.  Only for a queue this vCPU
 * alone uses: a vCPU sharing it may be halted, waiting for the
 * interrupt it asked for.
 */
void guest_suppress_interrupts(GuestQueue *q)
{
    if (q->users != 1) {
        return;
    }
    pthread_mutex_lock(&q->lock);
    if (q->vr.event_idx) {
        aiolab_vring_set_used_event(&q->vr,
                                    (uint16_t)(q->vr.last_used_idx + 0x8000));
    } else {
        aiolab_vring_set_no_interrupt(&q->vr, true);
    }
    pthread_mutex_unlock(&q->lock);
}

/* Is a used entry waiting to be collected? */
bool guest_used_pending(GuestQueue *q)
{
    bool pending;

    pthread_mutex_lock(&q->lock);
    pending = aiolab_vring_used_idx(&q->vr) != q->vr.last_used_idx;
    pthread_mutex_unlock(&q->lock);
    return pending;
}

/*
 * HLT: sleep until @q's interrupt, an IPI, an exit request or
 * @timeout_ns.  With @q, interrupts are requested first and the used
 * ring re-checked.
 * Returns: 1 interrupt (or work already pending), 0 timeout or IPI, -1
 * exit request.
 */
int guest_halt(CPUState *cpu, GuestQueue *q, int64_t timeout_ns)
{
    struct pollfd fds[2];
    struct timespec ts;
    int nfds = 1;

    if (vcpu_should_exit(cpu)) {
        return -1;
    }
    if (q) {
        pthread_mutex_lock(&q->lock);
        if (q->vr.event_idx) {
            aiolab_vring_set_used_event(&q->vr, q->vr.last_used_idx);
        }
        /* The used_event store before the used.idx load: pairs with the
         * device's barrier between publishing used.idx and reading
         * used_event (virtio_should_notify). */
        smp_mb();
        if (aiolab_vring_used_idx(&q->vr) != q->vr.last_used_idx) {
            pthread_mutex_unlock(&q->lock);
            return 1;
        }
        pthread_mutex_unlock(&q->lock);
    }
    fds[0] = (struct pollfd){ event_notifier_get_fd(&cpu->kick), POLLIN, 0 };
    if (q) {
        fds[1] = (struct pollfd){ event_notifier_get_fd(q->irq), POLLIN, 0 };
        nfds = 2;
    }
    ts.tv_sec = timeout_ns / 1000000000;
    ts.tv_nsec = timeout_ns % 1000000000;
    aiolab_trace_begin("guest halt", 0);
    if (ppoll(fds, nfds, &ts, NULL) < 0) {
        fds[0].revents = fds[1].revents = 0;
    }
    aiolab_trace_end("guest halt", 0);
    if (fds[0].revents) {
        event_notifier_test_and_clear(&cpu->kick);
    }
    if (vcpu_should_exit(cpu)) {
        return -1;
    }
    if (nfds == 2 && fds[1].revents) {
        if (event_notifier_test_and_clear(q->irq)) {
            guest_stats_add(cpu, &cpu->stats.interrupts, 1);
        }
        return 1;
    }
    return 0;
}
