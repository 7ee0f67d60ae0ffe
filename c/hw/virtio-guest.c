/* SPDX-License-Identifier: MIT */
/*
 * hw/virtio-guest.c - the driver's side of a split ring (see
 * aiolab/hw/virtio-guest.h): what a guest kernel does, for guests that
 * live in this process.
 *
 * Barriers, mirrored from the device side (c/hw/virtqueue.c):
 *   publish:  avail entry, then avail.idx with release   (device: acquire)
 *   collect:  used.idx with acquire, then the entry      (device: release)
 *   kick?:    full barrier between publishing avail.idx and reading the
 *             device's NO_NOTIFY flag / avail_event; the device has one
 *             between re-enabling notifications and re-reading avail.idx.
 *             Without the pair, each side can decide the other will act.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <aiolab/aiolab.h>
#include "util/atomic.h"
#include "util/check.h"
#include "util/mem.h"

uint64_t aiolab_vring_layout(unsigned num, uint64_t base, uint64_t *desc,
                             uint64_t *avail, uint64_t *used)
{
    uint64_t d = (base + 15) & ~15ull;
    uint64_t a = d + vring_desc_size(num);
    uint64_t u = (a + vring_avail_size(num) + 3) & ~3ull;

    if (desc) {
        *desc = d;
    }
    if (avail) {
        *avail = a;
    }
    if (used) {
        *used = u;
    }
    return u + vring_used_size(num) - base;
}

int aiolab_vring_init(AiolabVring *vr, GuestMemory *mem, unsigned num,
                      uint64_t desc, uint64_t avail, uint64_t used,
                      bool event_idx)
{
    REQUIRE_NONNULL(vr);
    memset(vr, 0, sizeof(*vr));
    if (num == 0 || num > 32768 || (num & (num - 1))) {
        return -EINVAL;
    }
    vr->mem = mem;
    vr->num = num;
    vr->desc = desc;
    vr->avail = avail;
    vr->used = used;
    vr->event_idx = event_idx;
    vr->desc_p = aiolab_guest_mem_translate(mem, desc, vring_desc_size(num));
    vr->avail_p = aiolab_guest_mem_translate(mem, avail,
                                             vring_avail_size(num));
    vr->used_p = aiolab_guest_mem_translate(mem, used, vring_used_size(num));
    if (!vr->desc_p || !vr->avail_p || !vr->used_p) {
        return -EFAULT;
    }
    memset(vr->desc_p, 0, vring_desc_size(num));
    memset(vr->avail_p, 0, vring_avail_size(num));
    memset(vr->used_p, 0, vring_used_size(num));
    vr->next_free = aiolab_xcalloc(num, sizeof(uint16_t));
    vr->chain_len = aiolab_xcalloc(num, sizeof(uint16_t));
    for (unsigned i = 0; i < num; i++) {
        vr->next_free[i] = (i + 1) % num;
    }
    vr->num_free = num;
    return 0;
}

void aiolab_vring_cleanup(AiolabVring *vr)
{
    free(vr->next_free);
    free(vr->chain_len);
    vr->next_free = vr->chain_len = NULL;
}

void aiolab_vring_set_desc(AiolabVring *vr, unsigned i, uint64_t addr,
                           uint32_t len, uint16_t flags, uint16_t next)
{
    uint8_t *p = vr->desc_p + 16 * (size_t)(i % vr->num);

    stq_le_p(p, addr);
    stl_le_p(p + 8, len);
    stw_le_p(p + 12, flags);
    stw_le_p(p + 14, next);
}

void aiolab_vring_publish(AiolabVring *vr, uint16_t head)
{
    uint16_t *ring = (uint16_t *)(vr->avail_p +
                                  VRING_AVAIL_RING_OFF(vr->avail_idx %
                                                       vr->num));

    qatomic_set(ring, head);
    vr->avail_idx++;
    /* The entry (and the descriptors) before the index.  Pairs with the
     * device's acquire load of avail.idx in vring_avail_idx(). */
    qatomic_store_release((uint16_t *)(vr->avail_p + VRING_AVAIL_IDX_OFF),
                          vr->avail_idx);
}

int aiolab_vring_add_chain(AiolabVring *vr, const AiolabVringBuf *bufs,
                           unsigned n)
{
    uint16_t head, i;

    if (n == 0 || n > vr->num_free) {
        return -ENOSPC;
    }
    head = i = vr->free_head;
    for (unsigned k = 0; k < n; k++) {
        uint16_t next = vr->next_free[i];
        uint16_t flags = (bufs[k].write ? VRING_DESC_F_WRITE : 0) |
                         (k + 1 < n ? VRING_DESC_F_NEXT : 0);

        aiolab_vring_set_desc(vr, i, bufs[k].gpa, bufs[k].len, flags,
                              k + 1 < n ? next : 0);
        if (k + 1 < n) {
            i = next;
        } else {
            vr->free_head = next;
        }
    }
    vr->num_free -= n;
    vr->chain_len[head] = n;
    aiolab_vring_publish(vr, head);
    return head;
}

bool aiolab_vring_get_used(AiolabVring *vr, uint32_t *id, uint32_t *len)
{
    uint16_t used_idx = aiolab_vring_used_idx(vr);
    const uint8_t *e;
    uint32_t head;

    if (used_idx == vr->last_used_idx) {
        return false;
    }
    e = vr->used_p + VRING_USED_RING_OFF(vr->last_used_idx % vr->num);
    head = qatomic_read((const uint32_t *)e);
    if (id) {
        *id = head;
    }
    if (len) {
        *len = qatomic_read((const uint32_t *)(e + 4));
    }
    vr->last_used_idx++;
    if (vr->next_free && head < vr->num && vr->chain_len[head]) {
        /* Managed mode: the chain's descriptors go back on the free list
         * (they are consecutive in the free-list order they came from). */
        uint16_t last = head;

        for (unsigned k = 1; k < vr->chain_len[head]; k++) {
            last = vr->next_free[last];
        }
        vr->next_free[last] = vr->free_head;
        vr->free_head = head;
        vr->num_free += vr->chain_len[head];
        vr->chain_len[head] = 0;
    }
    return true;
}

bool aiolab_vring_kick_needed(AiolabVring *vr)
{
    uint16_t old = vr->kicked_idx, new_idx = vr->avail_idx;

    vr->kicked_idx = new_idx;
    /* Publish avail.idx before reading what the device asked for; pairs
     * with smp_mb() in virtio_queue_set_notification(). */
    smp_mb();
    if (vr->event_idx) {
        return vring_need_event(aiolab_vring_avail_event(vr), new_idx, old);
    }
    return !(aiolab_vring_used_flags(vr) & VRING_USED_F_NO_NOTIFY);
}

void aiolab_vring_set_no_interrupt(AiolabVring *vr, bool on)
{
    uint16_t *flags = (uint16_t *)(vr->avail_p + VRING_AVAIL_FLAGS_OFF);

    qatomic_set(flags, on ? VRING_AVAIL_F_NO_INTERRUPT : 0);
}

void aiolab_vring_set_used_event(AiolabVring *vr, uint16_t idx)
{
    qatomic_set((uint16_t *)(vr->avail_p +
                             VRING_AVAIL_USED_EVENT_OFF(vr->num)), idx);
    /* Pairs with the device's smp_mb() in virtio_should_notify(). */
    smp_mb();
}

uint16_t aiolab_vring_used_idx(AiolabVring *vr)
{
    /* Pairs with the device's release store in virtqueue_flush(). */
    return qatomic_load_acquire((uint16_t *)(vr->used_p +
                                             VRING_USED_IDX_OFF));
}

uint16_t aiolab_vring_used_flags(AiolabVring *vr)
{
    return qatomic_read((uint16_t *)(vr->used_p + VRING_USED_FLAGS_OFF));
}

uint16_t aiolab_vring_avail_event(AiolabVring *vr)
{
    return qatomic_read((uint16_t *)(vr->used_p +
                                     VRING_USED_AVAIL_EVENT_OFF(vr->num)));
}
