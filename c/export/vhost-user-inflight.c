/* SPDX-License-Identifier: MIT */
/*
 * export/vhost-user-inflight.c - the shared in-flight log
 * (VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD; the layout and the three update
 * points are drawn in vhost-user-int.h).
 *
 * Why it exists: after the back-end dies, the front-end (QEMU) cannot
 * ask it where each ring was, so it rewinds each ring to its used index.
 * That is right only if requests complete in the order they were popped.
 * A block device completes them out of order:
 *
 *   popped A0 A1 A2; A1 completes (used.idx = 1); the back-end dies.
 *   Rewound to 1, the next back-end pops A1 again (its head may already
 *   carry a new request) and A2, and never A0: the guest waits forever.
 *
 * The log, in memory the front-end keeps, says which heads are in flight
 * (A0 and A2, oldest first): the next back-end resubmits exactly those and
 * resumes popping at used.idx + 2.
 *
 * Crash consistency: the process may die between any two stores (a
 * SIGKILL), so the order of the stores is what matters (each is a plain
 * aligned store the compiler may not move past its neighbours: relaxed
 * atomics with release where the order is load-bearing):
 *   pop:    the log's entry is set after last_avail_idx moved (dying in
 *           between loses nothing: popping resumes at used + logged,
 *           which is that very entry again);
 *   fill:   the batch list is linked before the used entry is written;
 *   flush:  the ring's used.idx is published before the batch's entries
 *           are cleared and the log's used_idx follows (dying in between:
 *           the log's used_idx lags the ring's; recovery clears the batch).
 *
 * Threads: the log of a ring is written by its queue's home thread while
 * the device runs, and read and repaired by the main loop (BQL) while it
 * is stopped.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include "export/vhost-user-int.h"
#include "util/mem.h"

uint64_t vu_inflight_queue_size(uint16_t queue_size)
{
    uint64_t n = sizeof(VuQueueRegionSplit) +
                 (uint64_t)queue_size * sizeof(VuDescStateSplit);

    return (n + VU_INFLIGHT_ALIGN - 1) & ~(uint64_t)(VU_INFLIGHT_ALIGN - 1);
}

static VuQueueRegionSplit *vu_inflight_queue(VuInflight *inf, int q)
{
    return (VuQueueRegionSplit *)((uint8_t *)inf->base + inf->offset +
                                  q * vu_inflight_queue_size(inf->queue_size));
}

static bool vu_inflight_queue_size_ok(uint16_t queue_size, Error **errp)
{
    if (queue_size == 0 || queue_size > VIRTQUEUE_MAX_SIZE ||
        (queue_size & (queue_size - 1))) {
        error_setg(errp, "in-flight log for queues of %u entries (a power "
                   "of 2 up to %d)", queue_size, VIRTQUEUE_MAX_SIZE);
        return false;
    }
    return true;
}

void vu_inflight_free(VuInflight *inf)
{
    if (inf->base) {
        munmap(inf->base, inf->map_len);
    }
    if (inf->fd >= 0) {
        close(inf->fd);
    }
    *inf = (VuInflight) { .fd = -1 };
}

bool vu_inflight_new(VuInflight *inf, uint16_t num_queues,
                     uint16_t queue_size, Error **errp)
{
    uint64_t size;
    int fd;

    if (!vu_inflight_queue_size_ok(queue_size, errp)) {
        return false;
    }
    size = num_queues * vu_inflight_queue_size(queue_size);
    fd = memfd_create("aiolab-vhost-inflight", MFD_CLOEXEC);
    if (fd < 0 || ftruncate(fd, size) < 0) {
        error_setg_errno(errp, errno, "cannot create the in-flight log");
        if (fd >= 0) {
            close(fd);
        }
        return false;
    }
    inf->base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (inf->base == MAP_FAILED) {
        error_setg_errno(errp, errno, "cannot map the in-flight log");
        inf->base = NULL;
        close(fd);
        return false;
    }
    inf->fd = fd;
    inf->map_len = inf->size = size;
    inf->offset = 0;
    inf->num_queues = num_queues;
    inf->queue_size = queue_size;
    /* A fresh memfd reads as zeros: no entry in flight. */
    for (int q = 0; q < num_queues; q++) {
        VuQueueRegionSplit *r = vu_inflight_queue(inf, q);

        r->version = VU_INFLIGHT_VERSION;
        r->desc_num = queue_size;
    }
    return true;
}

bool vu_inflight_map(VuInflight *inf, int fd, const VhostUserInflight *req,
                     Error **errp)
{
    uint64_t need;
    struct stat st;

    if (!vu_inflight_queue_size_ok(req->queue_size, errp)) {
        return false;
    }
    need = req->num_queues * vu_inflight_queue_size(req->queue_size);
    if (req->mmap_size < need || req->mmap_size > INT64_MAX ||
        req->mmap_offset > INT64_MAX - req->mmap_size) {
        error_setg(errp, "in-flight log of 0x%" PRIx64 " bytes at offset 0x%"
                   PRIx64 " for %u queues of %u (0x%" PRIx64 " needed)",
                   req->mmap_size, req->mmap_offset, req->num_queues,
                   req->queue_size, need);
        return false;
    }
    /* The whole area the front-end describes must exist (a file shorter
     * than what we map would SIGBUS us on first touch). */
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
        (uint64_t)st.st_size < req->mmap_offset + req->mmap_size) {
        error_setg(errp, "the in-flight log's fd is not a file of at least "
                   "0x%" PRIx64 " bytes", req->mmap_offset + req->mmap_size);
        return false;
    }
    inf->map_len = req->mmap_offset + need;
    inf->base = mmap(NULL, inf->map_len, PROT_READ | PROT_WRITE, MAP_SHARED,
                     fd, 0);
    if (inf->base == MAP_FAILED) {
        error_setg_errno(errp, errno, "cannot map the in-flight log");
        *inf = (VuInflight) { .fd = -1 };
        return false;
    }
    inf->fd = fd;
    inf->size = req->mmap_size;
    inf->offset = req->mmap_offset;
    inf->num_queues = req->num_queues;
    inf->queue_size = req->queue_size;
    for (int q = 0; q < inf->num_queues; q++) {
        VuQueueRegionSplit *r = vu_inflight_queue(inf, q);

        if (r->version == 0) {          /* never used: a fresh log */
            memset(r, 0, vu_inflight_queue_size(inf->queue_size));
            r->version = VU_INFLIGHT_VERSION;
            r->desc_num = inf->queue_size;
        } else if (r->version != VU_INFLIGHT_VERSION ||
                   r->desc_num != inf->queue_size) {
            error_setg(errp, "in-flight log of queue %d: version %u with %u "
                       "entries (expected version %d with %u)", q,
                       r->version, r->desc_num, VU_INFLIGHT_VERSION,
                       inf->queue_size);
            munmap(inf->base, inf->map_len);
            *inf = (VuInflight) { .fd = -1 };
            return false;
        }
    }
    return true;
}

static int vu_cmp_counter(const void *a, const void *b, void *opaque)
{
    VuQueueRegionSplit *r = opaque;
    uint64_t ca = r->desc[*(const uint16_t *)a].counter;
    uint64_t cb = r->desc[*(const uint16_t *)b].counter;

    return ca < cb ? -1 : ca > cb;
}

bool vu_inflight_recover(VuVring *vr, uint16_t used_idx, Error **errp)
{
    VuInflight *inf = &vr->server->inflight;
    VuQueueRegionSplit *r = vu_inflight_queue(inf, vr->index);
    unsigned int num = inf->queue_size, n = 0;
    uint64_t max_counter = 0;

    if (vr->num && vr->num != num) {
        error_setg(errp, "vring %d has %u entries but its in-flight log %u",
                   vr->index, vr->num, num);
        return false;
    }
    /* Died between publishing used.idx and clearing the batch: the batch
     * (the last used_idx - r->used_idx heads filled) is complete. */
    if (r->used_idx != used_idx) {
        uint16_t batch = used_idx - r->used_idx;
        uint16_t head = r->last_batch_head;

        for (unsigned int i = 0; i < batch && head < num; i++) {
            r->desc[head].inflight = 0;
            head = r->desc[head].next;
        }
        r->used_idx = used_idx;
    }
    free(vr->resubmit);
    vr->resubmit = aiolab_xmalloc(num * sizeof(uint16_t));
    for (unsigned int i = 0; i < num; i++) {
        if (r->desc[i].inflight) {
            vr->resubmit[n++] = i;
            max_counter = MAX(max_counter, r->desc[i].counter);
        }
    }
    /* Oldest first, as the guest submitted them. */
    qsort_r(vr->resubmit, n, sizeof(uint16_t), vu_cmp_counter, r);
    vr->n_resubmit = n;
    vr->counter = max_counter + 1;
    vr->log = r;
    return true;
}

/* --- the three update points (the queue's home thread) ------------------- */

static void vu_inflight_popped(void *opaque, VirtQueue *vq, unsigned int head)
{
    VuVring *vr = opaque;
    VuDescStateSplit *d = &vr->log->desc[head];

    qatomic_set(&d->counter, vr->counter++);
    /* The counter before the flag: a log read after a crash never sees
     * an entry in flight with a stale age.  Pairs with nothing in this
     * process (the reader is the next one, after our death). */
    smp_wmb();
    qatomic_set(&d->inflight, 1);
}

static void vu_inflight_filled(void *opaque, VirtQueue *vq, unsigned int head)
{
    VuVring *vr = opaque;
    VuQueueRegionSplit *r = vr->log;

    qatomic_set(&r->desc[head].next, r->last_batch_head);
    qatomic_set(&r->last_batch_head, (uint16_t)head);
    /* Linked before the used entry is written (virtqueue_fill next). */
    smp_wmb();
}

static void vu_inflight_flushed(void *opaque, VirtQueue *vq,
                                uint16_t used_idx)
{
    VuVring *vr = opaque;
    VuQueueRegionSplit *r = vr->log;
    uint16_t batch = used_idx - r->used_idx;
    uint16_t head = r->last_batch_head;
    unsigned int num = vr->server->inflight.queue_size;

    /* used.idx was published by virtqueue_flush's release store. */
    for (unsigned int i = 0; i < batch && head < num; i++) {
        qatomic_set(&r->desc[head].inflight, 0);
        head = r->desc[head].next;
    }
    smp_wmb();
    qatomic_set(&r->used_idx, used_idx);
}

const AiolabVirtQueueInflightOps vu_inflight_ops = {
    .popped = vu_inflight_popped,
    .filled = vu_inflight_filled,
    .flushed = vu_inflight_flushed,
};
