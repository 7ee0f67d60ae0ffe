/* SPDX-License-Identifier: MIT */
/*
 * hw/virtqueue.c - split virtqueues: popping and validating descriptor
 * chains, pushing used entries, and notification suppression (QEMU's
 * virtqueue_split_pop and friends in hw/virtio/virtio.c).
 *
 * The guest owns the memory this code reads, and may be malicious or
 * racing with us.  So:
 *   - every guest address goes through aiolab_guest_mem_translate()/
 *     _map_sg(): nothing outside guest RAM is ever touched;
 *   - a descriptor is copied out of guest memory once and only the copy
 *     is looked at (no double fetch);
 *   - every index read from the guest is range-checked before use, and
 *     every loop is bounded (the table size, and 1024 iovecs);
 *   - any violation breaks the device (virtio_error) instead of being
 *     "fixed up": a driver that wrote it is buggy or hostile.
 *
 * A chain, as virtqueue_pop() walks it:
 *
 *   avail[last_avail_idx % num] = head  (head < num, else "Guest says...")
 *        |
 *   desc[head] -- INDIRECT? --> table = desc[head].addr, len/16 entries
 *        |                      ("Invalid size...", "Cannot map...")
 *        v                      walk restarts at table[0]
 *   for each descriptor (at most `max` of them, else "Looped descriptor"):
 *       WRITE ? append to in_sg : append to out_sg (after any in:
 *       "Incorrect order for descriptors"); len 0: "zero sized";
 *       outside RAM: "bogus descriptor"; > 1024 iovecs: "too many"
 *       NEXT ? next < max (else "Desc next is %u") : done
 *
 * Memory ordering with the driver (virtio 1.x 2.7.13 and 2.7.7):
 *   avail.idx is loaded with acquire before the entries it covers are
 *   read; used entries are stored before used.idx is stored with release.
 *   Fields both sides touch at any time (flags, event indices) use
 *   relaxed atomic accesses, which is what a plain aligned 16-bit move is
 *   on the CPUs QEMU runs on; the set_notification/should_notify pair is
 *   ordered by full barriers, as QEMU's smp_mb() calls.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "hw/virtio-internal.h"
#include "util/mem.h"

/* --- ring field accessors (host views validated by map_rings) ---------- */

static inline uint16_t ring_ld16(const uint8_t *base, uint64_t off)
{
    return qatomic_read((const uint16_t *)(base + off));
}

static inline void ring_st16(uint8_t *base, uint64_t off, uint16_t v)
{
    qatomic_set((uint16_t *)(base + off), v);
}

static inline void ring_st32(uint8_t *base, uint64_t off, uint32_t v)
{
    qatomic_set((uint32_t *)(base + off), v);
}

/* avail.idx, refreshing the cached copy.  Pairs with the driver's write
 * barrier (release) between the avail entries and avail.idx. */
static uint16_t vring_avail_idx(VirtQueue *vq)
{
    vq->shadow_avail_idx =
        qatomic_load_acquire((const uint16_t *)(vq->avail_p +
                                                VRING_AVAIL_IDX_OFF));
    return vq->shadow_avail_idx;
}

static inline bool vq_has_feature(VirtQueue *vq, unsigned fbit)
{
    return virtio_vdev_has_feature(vq->vdev, fbit);
}

static inline void stat_inc(uint64_t *counter)
{
    qatomic_set(counter, qatomic_read(counter) + 1);
}

/*
 * inuse, used_idx and last_avail_idx are the home thread's, but the
 * accessors (tests, vhost-user's GET_VRING_BASE, the dump) read them
 * from other threads: the home thread stores them with relaxed atomics.
 */
static inline void inuse_add(VirtQueue *vq, int delta)
{
    qatomic_set(&vq->inuse, vq->inuse + delta);
}

/* --- setup ------------------------------------------------------------- */

static uint8_t *map_area(VirtQueue *vq, uint64_t gpa, uint64_t size,
                         unsigned align)
{
    uint8_t *p = aiolab_guest_mem_translate(vq->vdev->mem, gpa, size);

    /* Ring fields are accessed as aligned words: the guest address and
     * the host address must both honour the spec's alignment. */
    if (p && (((uintptr_t)p | gpa) & (align - 1))) {
        return NULL;
    }
    return p;
}

static bool areas_overlap(uint64_t a, uint64_t a_size, uint64_t b,
                          uint64_t b_size)
{
    return a < b + b_size && b < a + a_size;
}

/* QEMU's virtio_init_region_cache: translate the three areas. */
int virtio_queue_map_rings(VirtQueue *vq)
{
    VirtIODevice *vdev = vq->vdev;
    unsigned num = vq->num;
    uint64_t used_size = vring_used_size(num);

    vq->desc_p = vq->avail_p = vq->used_p = NULL;
    if (!vq->desc || !num) {
        return 0;                   /* torn down, or not set up yet */
    }
    if (vq->desc & 15 || vq->avail & 1 || vq->used & 3) {
        virtio_error(vdev, "Misaligned vring");
        return -EINVAL;
    }
    /*
     * aiolab's addition (QEMU maps the areas without this check): the
     * device writes the used ring, so laid over the avail ring every push
     * would move avail.idx, and one handle pass would pop forever.
     */
    if (areas_overlap(vq->used, used_size, vq->avail, vring_avail_size(num)) ||
        areas_overlap(vq->used, used_size, vq->desc, vring_desc_size(num))) {
        virtio_error(vdev, "Used ring overlaps the avail ring or the "
                           "descriptor table");
        return -EINVAL;
    }
    vq->desc_p = map_area(vq, vq->desc, vring_desc_size(num), 16);
    if (!vq->desc_p) {
        virtio_error(vdev, "Cannot map desc");
        return -EFAULT;
    }
    vq->used_p = map_area(vq, vq->used, used_size, 4);
    if (!vq->used_p) {
        vq->desc_p = NULL;
        virtio_error(vdev, "Cannot map used");
        return -EFAULT;
    }
    vq->avail_p = map_area(vq, vq->avail, vring_avail_size(num), 2);
    if (!vq->avail_p) {
        vq->desc_p = vq->used_p = NULL;
        virtio_error(vdev, "Cannot map avail");
        return -EFAULT;
    }
    return 0;
}

void virtio_queue_reset_state(VirtQueue *vq)
{
    vq->desc = vq->avail = vq->used = 0;
    vq->desc_p = vq->avail_p = vq->used_p = NULL;
    vq->num = vq->num_default;
    vq->last_avail_idx = vq->shadow_avail_idx = vq->used_idx = 0;
    vq->signalled_used = 0;
    vq->signalled_used_valid = false;
    vq->inuse = 0;
    qatomic_set(&vq->notification, 1);
    qatomic_set(&vq->enabled, true);
}

/* --- emptiness and notification suppression ---------------------------- */

static bool vq_disabled(VirtQueue *vq)
{
    return qatomic_read(&vq->vdev->broken) || !qatomic_read(&vq->enabled);
}

int virtio_queue_ready(VirtQueue *vq)
{
    REQUIRE_NONNULL(vq);
    return vq->avail != 0;
}

int virtio_queue_empty(VirtQueue *vq)
{
    REQUIRE_NONNULL(vq);
    if (vq_disabled(vq) || !vq->avail_p) {
        return 1;
    }
    if (vq->shadow_avail_idx != vq->last_avail_idx) {
        return 0;
    }
    return vring_avail_idx(vq) == vq->last_avail_idx;
}

void virtio_queue_set_notification(VirtQueue *vq, int enable)
{
    REQUIRE_NONNULL(vq);
    qatomic_set(&vq->notification, enable);
    if (!vq->avail_p || !vq->used_p) {
        return;
    }
    if (vq_has_feature(vq, VIRTIO_RING_F_EVENT_IDX)) {
        /* "Kick me when avail.idx passes what I see now." */
        ring_st16(vq->used_p, VRING_USED_AVAIL_EVENT_OFF(vq->num),
                  vring_avail_idx(vq));
    } else {
        uint16_t flags = ring_ld16(vq->used_p, VRING_USED_FLAGS_OFF);

        flags = enable ? flags & ~VRING_USED_F_NO_NOTIFY
                       : flags | VRING_USED_F_NO_NOTIFY;
        ring_st16(vq->used_p, VRING_USED_FLAGS_OFF, flags);
    }
    if (enable) {
        /*
         * The caller re-checks the ring next (handle_vq's loop condition).
         * Order "notifications on" before that load of avail.idx; pairs
         * with the driver's barrier between publishing avail.idx and
         * reading our flags/avail_event to decide whether to kick.
         * Without it both sides can miss each other: a lost request.
         */
        smp_mb();
    }
}

int virtio_queue_get_notification(VirtQueue *vq)
{
    REQUIRE_NONNULL(vq);
    return qatomic_read(&vq->notification);
}

bool virtio_should_notify(VirtIODevice *vdev, VirtQueue *vq)
{
    uint16_t old, new_idx;
    bool valid;

    REQUIRE_NONNULL(vq);
    if (qatomic_read(&vdev->broken) || !vq->avail_p) {
        return false;
    }
    /* Publish used.idx before reading what the driver asked for.  Pairs
     * with the driver's barrier between writing used_event/flags and
     * re-reading used.idx. */
    smp_mb();
    if (virtio_vdev_has_feature(vdev, VIRTIO_F_NOTIFY_ON_EMPTY) &&
        vq->inuse == 0 && virtio_queue_empty(vq)) {
        return true;
    }
    if (!virtio_vdev_has_feature(vdev, VIRTIO_RING_F_EVENT_IDX)) {
        return !(ring_ld16(vq->avail_p, VRING_AVAIL_FLAGS_OFF) &
                 VRING_AVAIL_F_NO_INTERRUPT);
    }
    valid = vq->signalled_used_valid;
    vq->signalled_used_valid = true;
    old = vq->signalled_used;
    new_idx = vq->signalled_used = vq->used_idx;
    return !valid ||
           vring_need_event(ring_ld16(vq->avail_p,
                                      VRING_AVAIL_USED_EVENT_OFF(vq->num)),
                            new_idx, old);
}

/* --- pop ----------------------------------------------------------------- */

typedef struct VRingDesc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags;
    uint16_t next;
} VRingDesc;

/* Copy descriptor @i of @table out of guest memory (once: no re-reads). */
static void read_desc(const uint8_t *table, unsigned i, VRingDesc *d)
{
    const uint8_t *p = table + 16 * (size_t)i;

    d->addr = ldq_le_p(p);
    d->len = ldl_le_p(p + 8);
    d->flags = lduw_le_p(p + 12);
    d->next = lduw_le_p(p + 14);
}

/* Map one descriptor's buffer after the @n iovecs already in @iov. */
static bool map_desc(VirtIODevice *vdev, const VRingDesc *d,
                     struct iovec *iov, uint64_t *addr, unsigned *n)
{
    unsigned first = *n;
    int ret;

    if (d->len == 0) {
        virtio_error(vdev, "virtio: zero sized buffers are not allowed");
        return false;
    }
    ret = aiolab_guest_mem_map_sg(vdev->mem, d->addr, d->len, iov, n,
                                  VIRTQUEUE_MAX_SIZE);
    if (ret == -ENOBUFS) {
        virtio_error(vdev, "virtio: too many write descriptors in "
                     "indirect table");
        return false;
    } else if (ret < 0) {
        virtio_error(vdev, "virtio: bogus descriptor or out of resources");
        return false;
    }
    for (unsigned i = first, off = 0; i < *n; off += iov[i].iov_len, i++) {
        addr[i] = d->addr + off;
    }
    return true;
}

/*
 * One allocation: the caller's @sz bytes (the element first), then the
 * address arrays, then the iovec arrays (QEMU's virtqueue_alloc_element).
 */
static VirtQueueElement *alloc_element(size_t sz, unsigned out_num,
                                       unsigned in_num)
{
    size_t in_addr_ofs = (sz + 7) & ~(size_t)7;
    size_t out_addr_ofs = in_addr_ofs + in_num * sizeof(uint64_t);
    size_t in_sg_ofs = out_addr_ofs + out_num * sizeof(uint64_t);
    size_t out_sg_ofs = in_sg_ofs + in_num * sizeof(struct iovec);
    size_t total = out_sg_ofs + out_num * sizeof(struct iovec);
    uint8_t *p = aiolab_xmalloc(total);
    VirtQueueElement *elem = (VirtQueueElement *)p;

    memset(p, 0, sz);
    elem->out_num = out_num;
    elem->in_num = in_num;
    elem->in_addr = (uint64_t *)(p + in_addr_ofs);
    elem->out_addr = (uint64_t *)(p + out_addr_ofs);
    elem->in_sg = (struct iovec *)(p + in_sg_ofs);
    elem->out_sg = (struct iovec *)(p + out_sg_ofs);
    return elem;
}

/*
 * Walk the chain at @head into @iov/@addr: out buffers first, then in.
 * Returns false after virtio_error().
 */
static bool walk_chain(VirtQueue *vq, unsigned head, struct iovec *iov,
                       uint64_t *addr, unsigned *out_num, unsigned *in_num)
{
    VirtIODevice *vdev = vq->vdev;
    const uint8_t *table = vq->desc_p;
    unsigned max = vq->num, seen = 0, n = 0;
    VRingDesc d;

    read_desc(table, head, &d);
    if (d.flags & VRING_DESC_F_INDIRECT) {
        if (d.len == 0 || d.len % 16 != 0) {
            virtio_error(vdev, "Invalid size for indirect buffer table");
            return false;
        }
        table = aiolab_guest_mem_translate(vdev->mem, d.addr, d.len);
        if (!table) {
            virtio_error(vdev, "Cannot map indirect buffer");
            return false;
        }
        max = d.len / 16;
        read_desc(table, 0, &d);
    }
    for (;;) {
        /* Each descriptor is visited once in a well-formed chain, so more
         * than the table holds means next pointers form a cycle. */
        if (++seen > max) {
            virtio_error(vdev, "Looped descriptor");
            return false;
        }
        if (d.flags & VRING_DESC_F_WRITE) {
            if (!map_desc(vdev, &d, iov, addr, &n)) {
                return false;
            }
            *in_num = n - *out_num;
        } else {
            if (n > *out_num) {
                virtio_error(vdev, "Incorrect order for descriptors");
                return false;
            }
            if (!map_desc(vdev, &d, iov, addr, &n)) {
                return false;
            }
            *out_num = n;
        }
        if (!(d.flags & VRING_DESC_F_NEXT)) {
            return true;
        }
        if (d.next >= max) {
            virtio_error(vdev, "Desc next is %u", d.next);
            return false;
        }
        read_desc(table, d.next, &d);
    }
}

/* Walk the chain at @head and make it an element.  NULL after an error. */
static VirtQueueElement *map_element(VirtQueue *vq, unsigned head, size_t sz)
{
    /* QEMU keeps these on the stack too: 24 KiB, no allocation unless the
     * chain is valid. */
    struct iovec iov[VIRTQUEUE_MAX_SIZE];
    uint64_t addr[VIRTQUEUE_MAX_SIZE];
    unsigned out_num = 0, in_num = 0;
    VirtQueueElement *elem;

    if (!walk_chain(vq, head, iov, addr, &out_num, &in_num)) {
        return NULL;                /* nothing to unmap: RAM stays mapped */
    }
    elem = alloc_element(sz, out_num, in_num);
    elem->index = head;
    elem->ndescs = 1;
    memcpy(elem->out_sg, iov, out_num * sizeof(iov[0]));
    memcpy(elem->out_addr, addr, out_num * sizeof(addr[0]));
    memcpy(elem->in_sg, iov + out_num, in_num * sizeof(iov[0]));
    memcpy(elem->in_addr, addr + out_num, in_num * sizeof(addr[0]));
    inuse_add(vq, 1);
    stat_inc(&vq->stats.pops);
    return elem;
}

void *aiolab_virtqueue_pop_head(VirtQueue *vq, unsigned int head, size_t sz)
{
    REQUIRE_NONNULL(vq);
    AIOLAB_REQUIRE(sz >= sizeof(VirtQueueElement), "got a size (%zu) "
                   "smaller than VirtQueueElement", sz);
    if (vq_disabled(vq) || !vq->desc_p || !vq->avail_p || !vq->used_p) {
        return NULL;
    }
    if (vq->inuse >= vq->num) {
        virtio_error(vq->vdev, "Virtqueue size exceeded");
        return NULL;
    }
    if (head >= vq->num) {
        virtio_error(vq->vdev, "Guest says index %u is available", head);
        return NULL;
    }
    return map_element(vq, head, sz);
}

void aiolab_virtio_queue_set_inflight_ops(VirtQueue *vq,
                                          const AiolabVirtQueueInflightOps *ops,
                                          void *opaque)
{
    REQUIRE_NONNULL(vq);
    vq->inflight_ops = ops;
    vq->inflight_opaque = opaque;
}

void *virtqueue_pop(VirtQueue *vq, size_t sz)
{
    VirtIODevice *vdev;
    VirtQueueElement *elem;
    unsigned head;

    REQUIRE_NONNULL(vq);
    AIOLAB_REQUIRE(sz >= sizeof(VirtQueueElement), "got a size (%zu) "
                   "smaller than VirtQueueElement", sz);
    vdev = vq->vdev;
    if (virtio_queue_empty(vq)) {
        return NULL;                /* also: broken, disabled, no rings */
    }
    if (!vq->desc_p || !vq->used_p) {
        virtio_error(vdev, "Region caches not initialized");
        return NULL;
    }
    if (vq->inuse >= vq->num) {
        virtio_error(vdev, "Virtqueue size exceeded");
        return NULL;
    }
    /* Consumed from here on, valid or not: last_avail_idx never rewinds. */
    head = ring_ld16(vq->avail_p,
                     VRING_AVAIL_RING_OFF(vq->last_avail_idx % vq->num));
    qatomic_set(&vq->last_avail_idx, vq->last_avail_idx + 1);
    if (head >= vq->num) {
        virtio_error(vdev, "Guest says index %u is available", head);
        return NULL;
    }
    if (virtio_vdev_has_feature(vdev, VIRTIO_RING_F_EVENT_IDX)) {
        ring_st16(vq->used_p, VRING_USED_AVAIL_EVENT_OFF(vq->num),
                  vq->last_avail_idx);
    }
    elem = map_element(vq, head, sz);
    if (elem && vq->inflight_ops && vq->inflight_ops->popped) {
        vq->inflight_ops->popped(vq->inflight_opaque, vq, head);
    }
    return elem;
}

/* --- push ---------------------------------------------------------------- */

void virtqueue_fill(VirtQueue *vq, const VirtQueueElement *elem,
                    unsigned int len, unsigned int idx)
{
    unsigned slot;

    REQUIRE_NONNULL(vq);
    REQUIRE_NONNULL(elem);
    /* QEMU unmaps the element here, marking @len bytes of in_sg dirty for
     * migration; aiolab keeps guest RAM mapped and does not migrate. */
    if (qatomic_read(&vq->vdev->broken) || !vq->used_p) {
        return;
    }
    if (vq->inflight_ops && vq->inflight_ops->filled) {
        vq->inflight_ops->filled(vq->inflight_opaque, vq, elem->index);
    }
    slot = (uint16_t)(vq->used_idx + idx) % vq->num;
    ring_st32(vq->used_p, VRING_USED_RING_OFF(slot), elem->index);
    ring_st32(vq->used_p, VRING_USED_RING_OFF(slot) + 4, len);
}

void virtqueue_flush(VirtQueue *vq, unsigned int count)
{
    uint16_t old, new_idx;

    REQUIRE_NONNULL(vq);
    if (qatomic_read(&vq->vdev->broken) || !vq->used_p) {
        inuse_add(vq, -(int)count);
        return;
    }
    old = vq->used_idx;
    new_idx = old + count;
    /* The entries before the index: pairs with the driver's read barrier
     * between loading used.idx and reading the entries. */
    qatomic_store_release((uint16_t *)(vq->used_p + VRING_USED_IDX_OFF),
                          new_idx);
    qatomic_set(&vq->used_idx, new_idx);
    inuse_add(vq, -(int)count);
    /*
     * should_notify compares the driver's used_event against
     * (signalled_used, used_idx], which only works while that window is
     * shorter than 2^16.  If this flush carried used_idx past
     * signalled_used (a whole wrap without interrupts), the window is
     * meaningless: forget it, and the next check notifies.
     */
    if ((uint16_t)(new_idx - vq->signalled_used) < (uint16_t)(new_idx - old)) {
        vq->signalled_used_valid = false;
    }
    qatomic_set(&vq->stats.pushes, qatomic_read(&vq->stats.pushes) + count);
    if (vq->inflight_ops && vq->inflight_ops->flushed) {
        vq->inflight_ops->flushed(vq->inflight_opaque, vq, new_idx);
    }
}

void virtqueue_push(VirtQueue *vq, const VirtQueueElement *elem,
                    unsigned int len)
{
    virtqueue_fill(vq, elem, len, 0);
    virtqueue_flush(vq, 1);
}

void virtqueue_detach_element(VirtQueue *vq, const VirtQueueElement *elem,
                              unsigned int len)
{
    REQUIRE_NONNULL(vq);
    REQUIRE_NONNULL(elem);
    inuse_add(vq, -(int)elem->ndescs);
}

void virtqueue_unpop(VirtQueue *vq, const VirtQueueElement *elem,
                     unsigned int len)
{
    REQUIRE_NONNULL(vq);
    qatomic_set(&vq->last_avail_idx, vq->last_avail_idx - 1);
    virtqueue_detach_element(vq, elem, len);
}

/* --- notify ---------------------------------------------------------------- */

static void raise_queue_irq(VirtIODevice *vdev, VirtQueue *vq)
{
    if (vdev->bus && vdev->bus->notify) {
        vdev->bus->notify(vdev->bus_opaque, vq->queue_index);
    } else {
        event_notifier_set(&vq->guest_notifier);
    }
}

void virtio_notify(VirtIODevice *vdev, VirtQueue *vq)
{
    if (!virtio_should_notify(vdev, vq)) {
        stat_inc(&vq->stats.suppressed);
        return;
    }
    aiolab_trace_mark("virtio_notify", vq->queue_index);
    stat_inc(&vq->stats.notifies);
    qatomic_or(&vdev->isr, 1);
    raise_queue_irq(vdev, vq);
}

static void irqfd_set(void *opaque)
{
    event_notifier_set(opaque);
}

void virtio_notify_irqfd(VirtIODevice *vdev, VirtQueue *vq)
{
    if (!virtio_should_notify(vdev, vq)) {
        stat_inc(&vq->stats.suppressed);
        return;
    }
    aiolab_trace_mark("virtio_notify_irqfd", vq->queue_index);
    stat_inc(&vq->stats.irqfd_notifies);
    /*
     * The ISR bit is set before the eventfd write the guest wakes on.
     * defer_call() batches and de-duplicates per (fn, opaque): inside one
     * handle_vq pass, N completions are one write(2).
     */
    qatomic_or(&vdev->isr, 1);
    defer_call(irqfd_set, &vq->guest_notifier);
}
