/* SPDX-License-Identifier: MIT */
/*
 * hw/virtio-blk-internal.h - VirtIOBlock and VirtIOBlockReq, shared by
 * virtio-blk.c (the request path) and virtio-blk-device.c (realize,
 * ioeventfd, drains).  Not a public header.
 */
#ifndef AIOLAB_HW_VIRTIO_BLK_INTERNAL_H
#define AIOLAB_HW_VIRTIO_BLK_INTERNAL_H

#include "hw/virtio-internal.h"

typedef struct VirtIOBlockReq VirtIOBlockReq;

struct VirtIOBlock {
    VirtIODevice parent_obj;        /* first: VirtIODevice * casts to us */

    /* --- Set at realize, then read-only ------------------------------ */
    VirtIOBlkConf conf;             /* a copy; the strings below are ours */
    char *id, *serial;
    BlockBackend *blk;
    uint64_t sector_mask;           /* logical_block_size / 512 - 1 */
    AioContext **vq_aio_context;    /* one per queue */
    QEMUBH *resize_bh;              /* main loop: the config interrupt */

    /* --- Protected by rq_lock: requests parked by rerror/werror=stop -- */
    pthread_mutex_t rq_lock;
    VirtIOBlockReq *rq, **rq_tail;  /* FIFO */

    /* --- Main loop, BQL held (atomic where IOThreads read them) ------- */
    bool ioeventfd_disabled;
    bool ioeventfd_started;         /* atomic reads */
    bool ioeventfd_starting;
    bool ioeventfd_stopping;
    bool wce;                       /* atomic: writeback (else FUA) */

    AiolabVirtIOBlkStats stats;     /* relaxed atomics */
};

struct VirtIOBlockReq {
    VirtQueueElement elem;          /* first: virtqueue_pop allocates us */
    VirtIOBlock *dev;
    VirtQueue *vq;
    int64_t sector_num;
    uint8_t *in;                    /* the status byte, in guest RAM */
    struct virtio_blk_outhdr out;   /* the header, copied, host order */
    size_t in_len;                  /* every in byte, status included */
    QEMUIOVector qiov;              /* the data buffers (IN/OUT) */
    QEMUIOVector mr_qiov;           /* a merged run's vector (its first) */
    VirtIOBlockReq *mr_next;        /* the rest of a merged run */
    VirtIOBlockReq *next;           /* parked list, restart batch */
};

/* The requests gathered during one handle pass (QEMU's MultiReqBuffer). */
typedef struct MultiReqBuffer {
    VirtIOBlockReq *reqs[VIRTIO_BLK_MAX_MERGE_REQS];
    unsigned int num_reqs;
    bool is_write;
} MultiReqBuffer;

static inline void vblk_stat_add(uint64_t *counter, uint64_t n)
{
    qatomic_set(counter, qatomic_read(counter) + n);
}

/* virtio-blk.c */
int virtio_blk_handle_request(VirtIOBlockReq *req, MultiReqBuffer *mrb);
void virtio_blk_submit_multireq(VirtIOBlock *s, MultiReqBuffer *mrb);
void virtio_blk_free_request(VirtIOBlockReq *req);
void virtio_blk_handle_output(VirtIODevice *vdev, VirtQueue *vq);
void virtio_blk_drop_parked(VirtIOBlock *s);

#endif
