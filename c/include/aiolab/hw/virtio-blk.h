/* SPDX-License-Identifier: MIT */
/*
 * aiolab/hw/virtio-blk.h - the virtio-blk device (QEMU 9.0's
 * hw/block/virtio-blk.c): guest requests on N virtqueues become block
 * layer requests on a BlockBackend, handled in the main loop or in
 * IOThreads exactly as QEMU places them.
 *
 * Placement (vq_aio_context[i] is where queue i's kicks are handled):
 *
 *   ioeventfd=off         a kick is an MMIO exit: the vCPU takes the BQL
 *                         and runs handle_vq itself; completions come in
 *                         the main loop (virtio_notify)
 *   ioeventfd=on          kicks are host notifiers in the main loop's
 *   (no iothread)         AioContext; completions there (virtio_notify)
 *   iothread=T            every queue's host notifier in T's AioContext,
 *                         with poll handlers; completions in T through
 *                         the irqfd, batched per handle_vq pass; the BQL
 *                         is never taken on the I/O path
 *   iothread-vq-mapping   queue i in the IOThread the mapping names
 *                         (round-robin, or explicit lists of vqs)
 *
 * The lifecycle (main loop, BQL held):
 *
 *   virtio_blk_new (realize) --> driver negotiates, sets up queues
 *        --> DRIVER_OK: virtio_device_start_ioeventfd()
 *              host notifiers assigned, blk moved to vq_aio_context[0]
 *              (failure only warns), attached in each vq's context
 *              unless drained (then drained_end attaches)
 *        --> drained_begin/end (BlockDevOps): detach / re-attach + kick
 *        --> stop: per vq, in its context: detach + a last read;
 *              unassign; blk_drain; blk back to the main loop
 *        --> virtio_blk_free (unrealize)
 *
 * A request (see c/hw/virtio-blk.c for the whole path): popped in
 * handle_vq, parsed; reads/writes gathered into a batch (<= 32, sorted,
 * contiguous runs merged) and submitted when the pass ends, the
 * direction changes or a flush arrives; completed with a status byte,
 * pushed with the number of in bytes, and notified.
 *
 * Where QEMU differs: no SCSI passthrough or zoned devices (UNSUPP), no
 * secure erase, no geometry, no migration, no block accounting or I/O
 * status; the BlockBackend's error policy and write-cache flag live in
 * the device's configuration (aiolab's block layer has neither); a VM
 * stop is a callback; IOThread references are not counted (aiolab
 * IOThreads have no refcount: do not destroy one a device uses).
 */
#ifndef AIOLAB_HW_VIRTIO_BLK_H
#define AIOLAB_HW_VIRTIO_BLK_H

#include <aiolab/block-backend.h>
#include <aiolab/iothread.h>
#include <aiolab/hw/virtio.h>
#include <aiolab/hw/virtio_blk_wire.h>

typedef struct VirtIOBlock VirtIOBlock;

/** One item of iothread-vq-mapping (QAPI IOThreadVirtQueueMapping). */
typedef struct IOThreadVirtQueueMapping {
    const char *iothread;       /* an IOThread id */
    const uint16_t *vqs;        /* NULL: no "vqs" member (round-robin) */
    size_t n_vqs;
} IOThreadVirtQueueMapping;

/**
 * VirtIOBlkConf: the device's properties.  Fill it with
 * virtio_blk_conf_init() (QEMU's defaults), then set what you need.
 */
typedef struct VirtIOBlkConf {
    const char *id;                     /* device id, for messages */
    BlockBackend *blk;                  /* drive= (required) */
    const char *iothread;               /* iothread= id, or NULL */
    const IOThreadVirtQueueMapping *iothread_vq_mapping;  /* or NULL */
    size_t iothread_vq_mapping_len;
    uint16_t num_queues;                /* VIRTIO_BLK_AUTO_NUM_QUEUES: 1 */
    uint16_t queue_size;                /* 256 */
    uint32_t logical_block_size;        /* 512 */
    uint32_t physical_block_size;       /* 512 */
    bool request_merging;               /* true */
    bool config_wce;                    /* offer CONFIG_WCE: true */
    bool write_cache;                   /* writeback (else FUA writes): true */
    bool discard;                       /* offer DISCARD: true */
    bool write_zeroes;                  /* offer WRITE_ZEROES: true */
    uint32_t max_discard_sectors;       /* BDRV_REQUEST_MAX_SECTORS */
    uint32_t max_write_zeroes_sectors;  /* BDRV_REQUEST_MAX_SECTORS */
    const char *serial;                 /* GET_ID answer, or NULL ("") */
    bool ioeventfd;                     /* the transport's ioeventfd=: true */
    /*
     * false (QEMU's virtio-blk device): every ioeventfd stop moves the
     * BlockBackend - and with it the node - back to the main loop, and
     * the next start moves it to queue 0's context again.  true: it stays
     * where it is across stop/start, as QEMU's vhost-user-blk export keeps
     * its AioContext while front-ends come and go (the export sets it: a
     * front-end's disconnect must not move a node that other exports of
     * it serve from their IOThread into the main loop).
     */
    bool keep_aio_context;
    BlockdevOnError rerror;             /* REPORT */
    BlockdevOnError werror;             /* ENOSPC */
    /*
     * Called for every I/O error after its action is decided (QEMU's
     * blk_error_action: the BLOCK_IO_ERROR event; for STOP, a VM stop
     * request).  It runs in the thread that completed the request - an
     * IOThread too - so it must only request the stop (asynchronously,
     * as qemu_system_vm_stop_request does), never wait for it.
     */
    void (*block_io_error)(void *opaque, BlockErrorAction action,
                           bool is_read, int error);
    void *opaque;
} VirtIOBlkConf;

#define VIRTIO_BLK_AUTO_NUM_QUEUES 0xffff
#define VIRTIO_BLK_MAX_MERGE_REQS  32
/* QEMU's BDRV_REQUEST_MAX_SECTORS: MIN(SIZE_MAX, INT_MAX) >> 9 */
#define BDRV_REQUEST_MAX_SECTORS   (0x7fffffff >> 9)

/** Device counters (racy snapshots). */
typedef struct AiolabVirtIOBlkStats {
    uint64_t reads, writes, flushes, get_ids, discards, write_zeroes;
    uint64_t unsupported;       /* completed UNSUPP */
    uint64_t ioerrors;          /* completed IOERR */
    uint64_t submits_rw;        /* blk_aio_preadv/pwritev calls */
    uint64_t merged;            /* requests that rode in another's submit */
    uint64_t parked;            /* requests on the rerror/werror=stop list now */
} AiolabVirtIOBlkStats;

/**
 * virtio_blk_conf_init: QEMU's property defaults (see VirtIOBlkConf).
 * Context: any thread.
 */
AIOLAB_API void virtio_blk_conf_init(VirtIOBlkConf *conf);

/**
 * virtio_blk_new: realize a virtio-blk device on @conf->blk, whose
 * queues live in @mem, plugged into a transport @bus (NULL: defaults; see
 * VirtioBusOps) with @bus_opaque for its callbacks.
 *
 * Fails, with QEMU's message in @errp, on: a missing drive ("drive
 * property not set") or medium; num-queues 0 or above VIRTIO_QUEUE_MAX
 * (1024: "invalid num-queues property (N), must be at most 1024", where
 * QEMU aborts in virtio_add_queue()); queue-size <= 2, not a
 * power of 2 or above 1024; max-discard-sectors or
 * max-write-zeroes-sectors of 0 or above BDRV_REQUEST_MAX_SECTORS while
 * offered; a logical block size that is not a power of 2 >= 512; both
 * iothread and iothread-vq-mapping ("iothread and iothread-vq-mapping
 * properties cannot be set at the same time"); an iothread with a
 * transport without notifiers ("device is incompatible with iothread
 * (transport does not support notifiers)") or with ioeventfd off
 * ("ioeventfd is required for iothread"); an unknown iothread; and each
 * iothread-vq-mapping error: "IOThread \"%s\" object does not exist",
 * "duplicate IOThread name \"%s\" in iothread-vq-mapping", "either all
 * items in iothread-vq-mapping must have vqs or none of them must have
 * it", "vq index %u for IOThread \"%s\" must be less than num_queues %u
 * in iothread-vq-mapping", "cannot assign vq %u to IOThread \"%s\"
 * because it is already assigned", "missing vq %u IOThread assignment in
 * iothread-vq-mapping".
 *
 * On success the device is attached to the BlockBackend
 * (blk_set_dev_ops: drained_begin/end, resize; no drained_poll), its
 * queues exist at their maximum size, not yet set up, and ioeventfd is
 * not started (the transport starts it on DRIVER_OK).
 * Returns: the device, or NULL.
 * Context: main loop, BQL held.
 */
AIOLAB_API VirtIOBlock *virtio_blk_new(const VirtIOBlkConf *conf,
                                       GuestMemory *mem,
                                       const VirtioBusOps *bus,
                                       void *bus_opaque, Error **errp);

/**
 * virtio_blk_free: unrealize: stop ioeventfd, drain the BlockBackend,
 * drop parked requests, detach from the BlockBackend (which the caller
 * still owns) and free.  NULL is allowed.
 * Context: main loop, BQL held.
 */
AIOLAB_API void virtio_blk_free(VirtIOBlock *s);

/** aiolab_virtio_blk_get_vdev: the VirtIODevice inside (QEMU's
 * VIRTIO_DEVICE(s) cast).  Context: any thread. */
AIOLAB_API VirtIODevice *aiolab_virtio_blk_get_vdev(VirtIOBlock *s);

/**
 * virtio_blk_handle_vq: one handle pass over @vq (what a kick runs):
 * defer_call_begin; loop { disable notifications; pop and handle until
 * the queue is empty or a request is malformed; enable notifications }
 * while the queue is not empty; submit the pending batch;
 * defer_call_end (the irqfd and the batched submissions fire here).
 * Context: the queue's home thread.
 */
AIOLAB_API void virtio_blk_handle_vq(VirtIOBlock *s, VirtQueue *vq);

/**
 * virtio_blk_dma_restart_cb: the VM-state handler: when the VM runs
 * again (@running), requests parked by rerror/werror=stop are split by
 * queue and re-issued by a oneshot BH in each queue's AioContext; the
 * BlockBackend counts one request in flight per BH until it has run, so
 * a drain waits for them.  @state is ignored.
 * Context: main loop, BQL held.
 */
AIOLAB_API void virtio_blk_dma_restart_cb(void *opaque, bool running,
                                          int state);

/**
 * aiolab_virtio_blk_get_vq_aio_context: where queue @n is handled when
 * ioeventfd is started (QEMU's s->vq_aio_context[n]).
 * Context: any thread.
 */
AIOLAB_API AioContext *aiolab_virtio_blk_get_vq_aio_context(VirtIOBlock *s,
                                                           int n);

/**
 * aiolab_virtio_blk_ioeventfd_state: QEMU's four flags
 * (ioeventfd_started, _starting, _stopping, _disabled) as bits 0-3.
 * Context: any thread (a snapshot).
 */
#define AIOLAB_VIRTIO_BLK_IOEVENTFD_STARTED   1
#define AIOLAB_VIRTIO_BLK_IOEVENTFD_STARTING  2
#define AIOLAB_VIRTIO_BLK_IOEVENTFD_STOPPING  4
#define AIOLAB_VIRTIO_BLK_IOEVENTFD_DISABLED  8
AIOLAB_API unsigned aiolab_virtio_blk_ioeventfd_state(VirtIOBlock *s);

/** aiolab_virtio_blk_get_stats: the device's counters.
 * Context: any thread. */
AIOLAB_API void aiolab_virtio_blk_get_stats(VirtIOBlock *s,
                                            AiolabVirtIOBlkStats *stats);

#endif
