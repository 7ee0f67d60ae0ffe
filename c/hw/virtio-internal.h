/* SPDX-License-Identifier: MIT */
/*
 * hw/virtio-internal.h - the insides of VirtIODevice and VirtQueue,
 * shared by virtio.c, virtqueue.c and the devices (QEMU's
 * include/hw/virtio/virtio.h keeps these in the public header; aiolab
 * hands out opaque pointers and keeps them here).  Not a public header.
 */
#ifndef AIOLAB_HW_VIRTIO_INTERNAL_H
#define AIOLAB_HW_VIRTIO_INTERNAL_H

#include <pthread.h>
#include <aiolab/aiolab.h>
#include "util/atomic.h"
#include "util/check.h"

/* What a device type provides (QEMU's VirtioDeviceClass, reduced). */
typedef struct VirtioDeviceClass {
    const char *name;
    uint64_t (*get_features)(VirtIODevice *vdev);       /* offered bits */
    void (*get_config)(VirtIODevice *vdev, uint8_t *config);
    void (*set_config)(VirtIODevice *vdev, const uint8_t *config);
    void (*set_status)(VirtIODevice *vdev, uint8_t status);
    void (*reset)(VirtIODevice *vdev);
    int (*start_ioeventfd)(VirtIODevice *vdev);
    void (*stop_ioeventfd)(VirtIODevice *vdev);
} VirtioDeviceClass;

struct VirtQueue {
    VirtIODevice *vdev;
    uint16_t queue_index;
    VirtIOHandleOutput handle_output;

    /* --- Setup: written by the transport while nobody handles the queue.
     * The host views are QEMU's VRingMemoryRegionCaches: each area was
     * translated once, as a whole, into one guest RAM region. */
    unsigned int num;                /* 0: unusable */
    unsigned int num_default;        /* the maximum, from realize */
    uint64_t desc, avail, used;      /* guest physical addresses */
    uint8_t *desc_p, *avail_p, *used_p;  /* NULL until mapped */
    bool enabled;                    /* atomic reads */

    /* --- The queue's home thread (see virtio.h "Threads") ------------- */
    uint16_t last_avail_idx;         /* next avail entry to pop */
    uint16_t shadow_avail_idx;       /* avail.idx as last read */
    uint16_t used_idx;               /* next used entry to fill */
    uint16_t signalled_used;         /* used_idx at the last interrupt */
    bool signalled_used_valid;
    unsigned int inuse;              /* popped, not yet pushed/detached */
    int notification;                /* atomic: last set_notification */

    /* --- Notifiers ----------------------------------------------------- */
    EventNotifier host_notifier;     /* the kick (ioeventfd), if assigned */
    bool host_notifier_enabled;      /* vdev->notifier_lock + BQL to write */
    EventNotifier guest_notifier;    /* the interrupt (irqfd); always valid */

    AiolabVirtQueueStats stats;      /* relaxed atomics */
    const AiolabVirtQueueInflightOps *inflight_ops;
    void *inflight_opaque;
};

struct VirtIODevice {
    const char *name;
    const VirtioDeviceClass *vdc;
    const VirtioBusOps *bus;         /* may be NULL: defaults */
    void *bus_opaque;
    GuestMemory *mem;

    int nvqs;
    VirtQueue *vq;

    /* --- Transport (BQL) -------------------------------------------- */
    uint8_t *config;
    uint32_t config_len;
    uint64_t host_features;
    uint64_t guest_features;         /* atomic reads: IOThreads test bits */
    bool use_ioeventfd;              /* the transport's ioeventfd= */
    bool ioeventfd_started;          /* QEMU's bus->ioeventfd_started */

    /* --- Any thread ---------------------------------------------------- */
    uint8_t status;                  /* atomic: virtio_error ORs NEEDS_RESET */
    uint8_t isr;                     /* atomic */
    bool broken;                     /* atomic */
    uint32_t generation;             /* atomic */
    EventNotifier config_notifier;
    pthread_mutex_t notifier_lock;   /* host_notifier_enabled vs guest kicks */
    pthread_mutex_t error_lock;      /* last_error */
    char *last_error;
};

/* virtio.c: for devices */
void virtio_init(VirtIODevice *vdev, const VirtioDeviceClass *vdc,
                 uint32_t config_len, GuestMemory *mem,
                 const VirtioBusOps *bus, void *bus_opaque);
VirtQueue *virtio_add_queue(VirtIODevice *vdev, int queue_size,
                            VirtIOHandleOutput handle_output);
void virtio_cleanup(VirtIODevice *vdev);
/* Handle @vq now if it is set up, enabled and the device not broken. */
void virtio_queue_notify_vq(VirtQueue *vq);

/* virtqueue.c */
void virtio_queue_reset_state(VirtQueue *vq);
int virtio_queue_map_rings(VirtQueue *vq);

/* Fuzzers set this: virtio_error() records but does not print. */
extern bool aiolab_virtio_error_quiet;

#endif
