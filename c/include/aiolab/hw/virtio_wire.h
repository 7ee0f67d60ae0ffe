/* SPDX-License-Identifier: MIT */
/*
 * aiolab/hw/virtio_wire.h - what a virtio 1.x driver and device agree on
 * in guest memory: the split virtqueue layout, its flags, the device
 * status bits and the transport-independent feature bits.  Written from
 * the virtio 1.x specification (sections 2.1, 2.7 and 6); QEMU takes the
 * same definitions from Linux's include/uapi/linux/virtio_ring.h and
 * virtio_config.h ("standard-headers").
 *
 * Everything in guest memory is little-endian (VIRTIO_F_VERSION_1).
 *
 * A split virtqueue of @num entries (a power of 2, at most 32768 by the
 * spec; QEMU and aiolab stop at VIRTQUEUE_MAX_SIZE = 1024) is three areas
 * at guest physical addresses the driver chooses:
 *
 *   descriptor table (16-byte aligned), num * 16 bytes, driver writes
 *   +------------------+--------+--------+--------+
 *   | addr (le64)      | len    | flags  | next   |  x num
 *   |                  | (le32) | (le16) | (le16) |
 *   +------------------+--------+--------+--------+
 *     flags: NEXT (chain continues at `next`), WRITE (device writes this
 *     buffer; else it reads it), INDIRECT (addr/len is a table of more
 *     descriptors)
 *
 *   avail ring (2-byte aligned), 6 + 2 * num bytes, driver writes
 *   +--------+--------+---------+---------+-----+------------+
 *   | flags  | idx    | ring[0] | ring[1] | ... | used_event |
 *   +--------+--------+---------+---------+-----+------------+
 *     ring[i % num]: head descriptor index of a chain the driver offers;
 *     idx: free-running count of entries written (wraps at 65536)
 *     used_event (EVENT_IDX only): "interrupt me when used idx passes this"
 *
 *   used ring (4-byte aligned), 6 + 8 * num bytes, device writes
 *   +--------+--------+-------------------+-----+--------------+
 *   | flags  | idx    | ring[0]: id, len  | ... | avail_event  |
 *   +--------+--------+-------------------+-----+--------------+
 *     ring[i % num]: {head index (le32), bytes written to the chain (le32)}
 *     avail_event (EVENT_IDX only): "kick me when avail idx passes this"
 *
 * Ordering (the one rule that makes it work): each side writes the ring
 * entry, then a write barrier, then idx; the other side reads idx, then
 * a read barrier, then the entries.
 */
#ifndef AIOLAB_HW_VIRTIO_WIRE_H
#define AIOLAB_HW_VIRTIO_WIRE_H

#include <aiolab/compiler.h>

/* --- device status (virtio 1.x 2.1) ---------------------------------- */
#define VIRTIO_CONFIG_S_ACKNOWLEDGE   1
#define VIRTIO_CONFIG_S_DRIVER        2
#define VIRTIO_CONFIG_S_DRIVER_OK     4
#define VIRTIO_CONFIG_S_FEATURES_OK   8
#define VIRTIO_CONFIG_S_NEEDS_RESET   0x40
#define VIRTIO_CONFIG_S_FAILED        0x80

/* --- transport-independent feature bits (virtio 1.x 6) --------------- */
#define VIRTIO_F_NOTIFY_ON_EMPTY      24   /* legacy */
#define VIRTIO_F_ANY_LAYOUT           27   /* legacy */
#define VIRTIO_RING_F_INDIRECT_DESC   28
#define VIRTIO_RING_F_EVENT_IDX       29
#define VIRTIO_F_VERSION_1            32
#define VIRTIO_F_ACCESS_PLATFORM      33   /* never offered by aiolab */
#define VIRTIO_F_RING_PACKED          34   /* never offered by aiolab */

/* --- descriptor flags ------------------------------------------------ */
#define VRING_DESC_F_NEXT             1
#define VRING_DESC_F_WRITE            2
#define VRING_DESC_F_INDIRECT         4

/* --- ring flags ------------------------------------------------------ */
#define VRING_USED_F_NO_NOTIFY        1    /* device: "don't kick me" */
#define VRING_AVAIL_F_NO_INTERRUPT    1    /* driver: "don't interrupt me" */

#define VIRTQUEUE_MAX_SIZE            1024 /* entries per queue, iovecs per element */
#define VIRTIO_QUEUE_MAX              1024 /* queues per device */

/* The layouts, for drivers and tests; the device reads fields one by one
 * (see c/hw/virtqueue.c), never through these structs. */
struct vring_desc {
    uint64_t addr;   /* le64 guest physical address */
    uint32_t len;    /* le32 */
    uint16_t flags;  /* le16 VRING_DESC_F_* */
    uint16_t next;   /* le16 */
};

struct vring_used_elem {
    uint32_t id;     /* le32 head index */
    uint32_t len;    /* le32 bytes written by the device */
};

/* Byte offsets inside the avail and used areas. */
#define VRING_AVAIL_FLAGS_OFF         0
#define VRING_AVAIL_IDX_OFF           2
#define VRING_AVAIL_RING_OFF(i)       (4 + 2 * (uint64_t)(i))
#define VRING_AVAIL_USED_EVENT_OFF(num) VRING_AVAIL_RING_OFF(num)
#define VRING_USED_FLAGS_OFF          0
#define VRING_USED_IDX_OFF            2
#define VRING_USED_RING_OFF(i)        (4 + 8 * (uint64_t)(i))
#define VRING_USED_AVAIL_EVENT_OFF(num) VRING_USED_RING_OFF(num)

/** vring_desc_size / vring_avail_size / vring_used_size: bytes of each
 * area for a queue of @num entries (with the EVENT_IDX fields, which a
 * device may touch whether or not EVENT_IDX was negotiated).
 * Context: any thread (pure). */
static inline uint64_t vring_desc_size(unsigned num)
{
    return 16ull * num;
}
static inline uint64_t vring_avail_size(unsigned num)
{
    return 6ull + 2ull * num;
}
static inline uint64_t vring_used_size(unsigned num)
{
    return 6ull + 8ull * num;
}

/**
 * vring_need_event: with EVENT_IDX, should the side that moved an index
 * from @old to @new_idx notify the other, which asked to be told once the
 * index passes @event_idx?  True when @event_idx lies in [old, new_idx),
 * computed modulo 2^16 so that it works across the wrap.
 * Context: any thread (pure).
 */
static inline bool vring_need_event(uint16_t event_idx, uint16_t new_idx,
                                    uint16_t old)
{
    return (uint16_t)(new_idx - event_idx - 1) < (uint16_t)(new_idx - old);
}

#endif
