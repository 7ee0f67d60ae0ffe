/* SPDX-License-Identifier: MIT */
/*
 * aiolab/hw/virtio-guest.h - the DRIVER's side of a split virtqueue, for
 * a guest that lives in the same process (the toy machine's guest, the
 * tests, the fuzzers' seed generator).  What Linux's
 * drivers/virtio/virtio_ring.c does, small: lay the three areas out in
 * guest RAM, write descriptors, publish heads in the avail ring with the
 * right barriers, decide whether a kick is needed, and collect used
 * entries.  Kicking and waiting for interrupts go through the device's
 * notifiers (virtio.h: aiolab_virtio_guest_kick(),
 * virtio_queue_get_guest_notifier()).
 *
 * Two ways to fill a ring; use one per ring:
 *   managed  aiolab_vring_add_chain() takes descriptors from a free list
 *            and aiolab_vring_get_used() returns them to it;
 *   raw      aiolab_vring_set_desc() + aiolab_vring_publish() write
 *            whatever you like - how the tests build malformed chains.
 *
 * Not part of QEMU (QEMU is the device); names are aiolab_.
 */
#ifndef AIOLAB_HW_VIRTIO_GUEST_H
#define AIOLAB_HW_VIRTIO_GUEST_H

#include <aiolab/hw/guest-memory.h>
#include <aiolab/hw/virtio_wire.h>

/** A driver's view of one split ring.  Fields are the driver's own. */
typedef struct AiolabVring {
    GuestMemory *mem;
    unsigned num;                  /* entries (a power of 2) */
    uint64_t desc, avail, used;    /* guest physical addresses */
    uint8_t *desc_p, *avail_p, *used_p;   /* host views (translated once) */
    bool event_idx;                /* VIRTIO_RING_F_EVENT_IDX negotiated */
    uint16_t avail_idx;            /* the driver's next avail.idx */
    uint16_t kicked_idx;           /* avail.idx at the last kick decision */
    uint16_t last_used_idx;        /* used entries collected */
    /* managed mode: free descriptors, chained through next_free */
    uint16_t free_head;
    unsigned num_free;
    uint16_t *next_free;
    uint16_t *chain_len;           /* descriptors per head in flight */
} AiolabVring;

/** One buffer of a chain: @write means device-writable. */
typedef struct AiolabVringBuf {
    uint64_t gpa;
    uint32_t len;
    bool write;
} AiolabVringBuf;

/**
 * aiolab_vring_layout: a compact layout starting at @base (16-aligned):
 * desc table, avail ring, used ring (4-aligned).  Any out pointer may be
 * NULL.  Returns: the bytes it spans.
 * Context: any thread (pure).
 */
AIOLAB_API uint64_t aiolab_vring_layout(unsigned num, uint64_t base,
                                        uint64_t *desc, uint64_t *avail,
                                        uint64_t *used);

/**
 * aiolab_vring_init: take the three areas (zeroing them) as a ring of
 * @num entries, every descriptor free.  Returns: 0, -EINVAL (num not a
 * power of 2 in [1, 32768]), or -EFAULT (an area is not in guest RAM).
 * Free with aiolab_vring_cleanup().
 * Context: the driver's thread.
 */
AIOLAB_API int aiolab_vring_init(AiolabVring *vr, GuestMemory *mem,
                                 unsigned num, uint64_t desc, uint64_t avail,
                                 uint64_t used, bool event_idx);
/** aiolab_vring_cleanup: free the driver's bookkeeping.
 * Context: the driver's thread. */
AIOLAB_API void aiolab_vring_cleanup(AiolabVring *vr);

/**
 * aiolab_vring_add_chain: managed mode: write @n buffers as one chain
 * from free descriptors and publish its head (avail entry, write
 * barrier, avail.idx).  Returns: the head, or -ENOSPC.
 * Context: the driver's thread.
 */
AIOLAB_API int aiolab_vring_add_chain(AiolabVring *vr,
                                      const AiolabVringBuf *bufs,
                                      unsigned n);

/**
 * aiolab_vring_get_used: collect the next used entry, if the device has
 * published one (reads used.idx, then a read barrier, then the entry);
 * in managed mode its descriptors go back to the free list.
 * Returns: true with *@id (head) and *@len (bytes written) set.
 * Context: the driver's thread.
 */
AIOLAB_API bool aiolab_vring_get_used(AiolabVring *vr, uint32_t *id,
                                      uint32_t *len);

/**
 * aiolab_vring_kick_needed: after publishing, does the device want a
 * kick?  Without EVENT_IDX: unless it set VRING_USED_F_NO_NOTIFY; with
 * it: if avail.idx passed avail_event since the last call (full barrier
 * first, as Linux's virtqueue_kick_prepare).
 * Context: the driver's thread.
 */
AIOLAB_API bool aiolab_vring_kick_needed(AiolabVring *vr);

/**
 * aiolab_vring_set_desc / aiolab_vring_publish: raw mode: write
 * descriptor @i (any values: malformed on purpose if you like); publish
 * @head as the next avail entry.  Context: the driver's thread.
 */
AIOLAB_API void aiolab_vring_set_desc(AiolabVring *vr, unsigned i,
                                      uint64_t addr, uint32_t len,
                                      uint16_t flags, uint16_t next);
AIOLAB_API void aiolab_vring_publish(AiolabVring *vr, uint16_t head);

/**
 * aiolab_vring_set_no_interrupt: set or clear VRING_AVAIL_F_NO_INTERRUPT.
 * aiolab_vring_set_used_event: with EVENT_IDX, "interrupt me when
 * used.idx passes @idx".
 * aiolab_vring_used_idx: the device's used.idx (acquire).
 * aiolab_vring_used_flags / aiolab_vring_avail_event: what the device
 * asked of the driver.
 * Context: the driver's thread.
 */
AIOLAB_API void aiolab_vring_set_no_interrupt(AiolabVring *vr, bool on);
AIOLAB_API void aiolab_vring_set_used_event(AiolabVring *vr, uint16_t idx);
AIOLAB_API uint16_t aiolab_vring_used_idx(AiolabVring *vr);
AIOLAB_API uint16_t aiolab_vring_used_flags(AiolabVring *vr);
AIOLAB_API uint16_t aiolab_vring_avail_event(AiolabVring *vr);

#endif
