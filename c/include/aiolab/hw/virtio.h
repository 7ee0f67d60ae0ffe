/* SPDX-License-Identifier: MIT */
/*
 * aiolab/hw/virtio.h - the virtio core: a device's virtqueues, how
 * elements are popped and pushed, when the guest is interrupted, and the
 * host notifiers (ioeventfd) that kick a queue in an AioContext (QEMU's
 * hw/virtio/virtio.c and virtio-bus.c, include/hw/virtio/virtio.h).
 *
 * Who is who:
 *
 *   guest driver                 device (this layer)            AioContext
 *   ------------                 -------------------            ----------
 *   write descs, avail ring
 *   kick ------------------> host notifier (EventNotifier) --> read handler
 *                                                               handle_output
 *                            virtqueue_pop() -> element
 *                            ... I/O ...
 *                            virtqueue_push(elem, len)
 *   <-------- interrupt ---- virtio_notify() / virtio_notify_irqfd()
 *   read used ring                 (guest notifier, or the bus's notify)
 *
 * A request's life on one queue (QEMU's split ring, virtio 1.x 2.7):
 *
 *   guest: avail[idx % num] = head; avail.idx++     (wmb before idx)
 *       |
 *   pop: last_avail_idx != avail.idx -> head = avail[last_avail_idx++]
 *       |  walk the chain (or its indirect table), validate every
 *       |  descriptor, map buffers -> element {index = head, out_sg,
 *       |  in_sg}; inuse++            (a bad chain: virtio_error, broken)
 *       v
 *   device owns the element (in flight) ... unpop: last_avail_idx--
 *       |                                  detach: drop it, inuse--
 *   push: used[used_idx % num] = {head, len}; used.idx++ (wmb); inuse--
 *       |
 *   notify? (NO_INTERRUPT flag, or EVENT_IDX's used_event) -> interrupt
 *
 * Threads.  A queue has one home at a time: the thread that runs its
 * handle_output - the AioContext it is attached to when ioeventfd is
 * started (an IOThread, or the main loop), otherwise the thread that
 * holds the BQL (a vCPU doing an MMIO notify, or the main loop).  Every
 * virtqueue_* and notification function below runs in that home; the
 * transport changes a queue's setup (num, rings, base) only while nobody
 * handles it (ioeventfd stopped, or the queue otherwise quiesced).  No
 * function here takes the BQL: the device code is the same under the BQL
 * and in an IOThread, which is the whole point of QEMU 9.0's multiqueue.
 *
 * A malformed chain never makes the device read or write outside guest
 * RAM: it breaks the device (virtio_error: `broken`, NEEDS_RESET and a
 * configuration interrupt with VERSION_1), after which every pop returns
 * NULL and kicks are ignored until virtio_reset().
 *
 * Where QEMU differs: split rings only (no packed rings), no legacy
 * (pre-1.0) byte order, no migration, no IOMMU, no MSI-X vectors (a bus
 * callback gets the queue number instead); the bus is a small ops table
 * given at device creation rather than a QOM bus; ISR and config space
 * are read through functions instead of a PCI BAR.
 */
#ifndef AIOLAB_HW_VIRTIO_H
#define AIOLAB_HW_VIRTIO_H

#include <sys/uio.h>
#include <aiolab/aio.h>
#include <aiolab/event_notifier.h>
#include <aiolab/hw/guest-memory.h>
#include <aiolab/hw/virtio_wire.h>

typedef struct VirtIODevice VirtIODevice;
typedef struct VirtQueue VirtQueue;

/**
 * VirtQueueElement: one popped descriptor chain.  virtqueue_pop()
 * allocates it at the start of a caller-sized struct (a device puts it
 * first in its request, like VirtIOBlockReq) with the four arrays after
 * it; free() the whole thing.
 */
typedef struct VirtQueueElement {
    unsigned int index;       /* head descriptor index: the used ring's id */
    unsigned int len;         /* (unused by split rings; QEMU's field) */
    unsigned int ndescs;      /* ring slots it holds: 1 for split rings */
    unsigned int out_num;     /* device-readable iovecs */
    unsigned int in_num;      /* device-writable iovecs (after the out ones) */
    uint64_t *in_addr;        /* guest address of each in_sg[i] */
    uint64_t *out_addr;
    struct iovec *in_sg;      /* host addresses inside guest RAM */
    struct iovec *out_sg;
} VirtQueueElement;

/** A queue's handler: called when the queue is kicked. */
typedef void (*VirtIOHandleOutput)(VirtIODevice *vdev, VirtQueue *vq);

/* virtio_notify()'s queue number for the configuration interrupt. */
#define VIRTIO_CONFIG_IRQ_IDX (-1)

/**
 * VirtioBusOps: what a transport (QEMU's VirtioBusClass, reduced) tells
 * the core.  Every member may be NULL/false; a NULL table means all
 * defaults.  The toy machine's transport and the vhost-user export fill
 * in what they need.
 */
typedef struct VirtioBusOps {
    /*
     * Raise the interrupt of queue @n, or the configuration interrupt when
     * @n is VIRTIO_CONFIG_IRQ_IDX (QEMU's MSI-X/INTx path).  Called by
     * virtio_notify() in the main loop or a BQL holder, and for the
     * configuration interrupt by virtio_error() in whatever thread found
     * the error (so it must be thread-safe).  NULL: the core sets the
     * queue's guest notifier (or the configuration notifier) instead.
     */
    void (*notify)(void *opaque, int n);
    /*
     * ioeventfd: on @assign, initialise @e as queue @n's host notifier
     * (e.g. event_notifier_init_fd(e, dup(kick_fd)) for vhost-user); on
     * !@assign, stop routing kicks to it (the core cleans @e up after).
     * Returns 0 or -errno.  NULL: the core makes a fresh eventfd, and a
     * guest kicks it with aiolab_virtio_guest_kick().
     */
    int (*set_host_notifier)(void *opaque, int n, EventNotifier *e,
                             bool assign);
    /* The transport cannot do host/guest notifiers at all: such a device
     * runs with ioeventfd disabled and refuses an iothread. */
    bool no_notifiers;
} VirtioBusOps;

/** Per-queue counters (racy snapshots; written by the queue's home). */
typedef struct AiolabVirtQueueStats {
    uint64_t pops;            /* elements popped */
    uint64_t pushes;          /* elements completed (used entries) */
    uint64_t notifies;        /* interrupts raised directly */
    uint64_t irqfd_notifies;  /* interrupts deferred to the irqfd */
    uint64_t suppressed;      /* notifications suppressed by the guest */
    uint64_t kicks;           /* handle_output calls */
} AiolabVirtQueueStats;

/* ---------------------------------------------------------------------
 * Queue home thread: popping and pushing (see "Threads" above)
 * --------------------------------------------------------------------- */

/**
 * virtqueue_pop: take the next available chain off @vq, validated and
 * mapped, as an element at the start of a new @sz-byte allocation
 * (@sz >= sizeof(VirtQueueElement)).
 *
 * Returns NULL quietly when the device is broken or the queue disabled,
 * the ring is not set up, or nothing is available.  Returns NULL after
 * virtio_error() (the device is then broken) for each rule of the split
 * ring: "Virtqueue size exceeded" (inuse >= num), "Guest says index %u is
 * available" (head >= num; that head counts as consumed), "Region caches
 * not initialized", "Invalid size for indirect buffer table", "Cannot map
 * indirect buffer", "Incorrect order for descriptors" (readable after
 * writable), "virtio: zero sized buffers are not allowed", "virtio: too
 * many write descriptors in indirect table" (more than 1024 iovecs),
 * "virtio: bogus descriptor or out of resources" (a buffer outside guest
 * RAM), "Looped descriptor" (more descriptors than the table holds),
 * "Desc next is %u" (next out of range).  last_avail_idx is never rewound
 * on an error.  With EVENT_IDX, a successful pop publishes avail_event.
 * Context: the queue's home thread.
 */
AIOLAB_API void *virtqueue_pop(VirtQueue *vq, size_t sz);

/**
 * virtqueue_push: complete @elem: one used entry {elem->index, @len}
 * (@len = bytes the device wrote into in_sg), then used.idx++ behind a
 * write barrier, and inuse--.  On a broken device only inuse changes.
 * Does not notify: call virtio_notify() or virtio_notify_irqfd() after.
 * The caller still frees @elem.
 * Context: the queue's home thread.
 */
AIOLAB_API void virtqueue_push(VirtQueue *vq, const VirtQueueElement *elem,
                               unsigned int len);

/**
 * virtqueue_fill / virtqueue_flush: push in two steps, for batches: fill
 * writes the used entry at used_idx + @idx without publishing it; flush
 * publishes @count filled entries at once (used.idx += @count).
 * Context: the queue's home thread.
 */
AIOLAB_API void virtqueue_fill(VirtQueue *vq, const VirtQueueElement *elem,
                               unsigned int len, unsigned int idx);
AIOLAB_API void virtqueue_flush(VirtQueue *vq, unsigned int count);

/**
 * virtqueue_detach_element: give up @elem without a used entry (the
 * guest never sees it completed; inuse -= ndescs).
 * Context: the queue's home thread.
 */
AIOLAB_API void virtqueue_detach_element(VirtQueue *vq,
                                         const VirtQueueElement *elem,
                                         unsigned int len);

/**
 * virtqueue_unpop: put @elem back: the next pop returns the same chain
 * again (last_avail_idx--, then detach).
 * Context: the queue's home thread.
 */
AIOLAB_API void virtqueue_unpop(VirtQueue *vq, const VirtQueueElement *elem,
                                unsigned int len);

/**
 * virtio_queue_empty: nothing available?  Also true when the ring is not
 * set up or the device is broken or disabled (so a handle loop and a
 * poll handler stop).  Re-reads avail.idx when the cached copy says
 * empty.  Context: the queue's home thread.
 */
AIOLAB_API int virtio_queue_empty(VirtQueue *vq);

/** virtio_queue_ready: are the rings set up?  Context: any thread. */
AIOLAB_API int virtio_queue_ready(VirtQueue *vq);

/**
 * virtio_queue_set_notification: ask the guest to kick (@enable 1) or not
 * (0).  With EVENT_IDX it writes avail_event = avail.idx (re-read);
 * otherwise it sets or clears VRING_USED_F_NO_NOTIFY.  Enabling ends with
 * a full barrier, so a following virtio_queue_empty() cannot miss a
 * request the guest added without kicking.
 * Context: the queue's home thread (also a BQL holder while the queue's
 * host notifier is detached, as attach does).
 */
AIOLAB_API void virtio_queue_set_notification(VirtQueue *vq, int enable);

/** virtio_queue_get_notification: the last value set (cached).
 * Context: any thread. */
AIOLAB_API int virtio_queue_get_notification(VirtQueue *vq);

/**
 * virtio_should_notify: does the guest want an interrupt now?  With
 * NOTIFY_ON_EMPTY, yes when nothing is in flight and the ring is empty;
 * without EVENT_IDX, unless the guest set VRING_AVAIL_F_NO_INTERRUPT;
 * with EVENT_IDX, when used.idx moved past used_event since the last
 * interrupt (vring_need_event), and always the first time after the
 * used index was published past a stale signalled value.
 * Context: the queue's home thread.
 */
AIOLAB_API bool virtio_should_notify(VirtIODevice *vdev, VirtQueue *vq);

/**
 * virtio_notify: if virtio_should_notify(), set ISR bit 0 and raise the
 * queue's interrupt now: the bus's notify callback, or else the queue's
 * guest notifier.
 * Context: the queue's home thread when it is the main loop or a BQL
 * holder (QEMU's virtio_notify needs the BQL: the interrupt controller
 * lives there).  From an IOThread use virtio_notify_irqfd().
 */
AIOLAB_API void virtio_notify(VirtIODevice *vdev, VirtQueue *vq);

/**
 * virtio_notify_irqfd: if virtio_should_notify(), set ISR bit 0
 * (atomically) and defer_call(event_notifier_set, guest notifier): inside
 * a defer_call_begin/end section (one handle_vq pass) any number of
 * completions raise one interrupt, when the section ends.
 * Context: the queue's home thread, normally an IOThread.
 */
AIOLAB_API void virtio_notify_irqfd(VirtIODevice *vdev, VirtQueue *vq);

/**
 * AiolabVirtQueueInflightOps: observers of a queue's elements, for a
 * vhost-user backend's shared in-flight log (INFLIGHT_SHMFD), which lets
 * the requests in flight when the backend died be resubmitted after it
 * reconnects.  @popped: a chain left the avail ring (after validation);
 * @filled: its used entry is about to be written; @flushed: used.idx is
 * now @used_idx (every entry filled before it is published).  Called in
 * the queue's home thread, inside virtqueue_pop/fill/flush.
 * Not part of QEMU's device model (libvhost-user has the same three
 * points: vu_queue_inflight_get/_pre_put/_post_put).
 */
typedef struct AiolabVirtQueueInflightOps {
    void (*popped)(void *opaque, VirtQueue *vq, unsigned int head);
    void (*filled)(void *opaque, VirtQueue *vq, unsigned int head);
    void (*flushed)(void *opaque, VirtQueue *vq, uint16_t used_idx);
} AiolabVirtQueueInflightOps;

/**
 * aiolab_virtio_queue_set_inflight_ops: install (or with NULL remove)
 * the observers.  Context: the transport, queue idle.
 */
AIOLAB_API void aiolab_virtio_queue_set_inflight_ops(
    VirtQueue *vq, const AiolabVirtQueueInflightOps *ops, void *opaque);

/**
 * aiolab_virtqueue_pop_head: map the chain at descriptor @head as an
 * element, validated exactly as virtqueue_pop() does, without consuming
 * an avail entry: a reconnected vhost-user backend resubmits the heads
 * its in-flight log says were popped but never used.  inuse counts it.
 * Returns: NULL after virtio_error() (bad head or chain), or when the
 * device is broken or the rings are not set up.
 * Context: the queue's home thread.
 */
AIOLAB_API void *aiolab_virtqueue_pop_head(VirtQueue *vq, unsigned int head,
                                           size_t sz);

/* ---------------------------------------------------------------------
 * Host notifiers (ioeventfd) in an AioContext
 * --------------------------------------------------------------------- */

/**
 * virtio_queue_aio_attach_host_notifier: handle @vq's kicks in @ctx:
 * re-enable guest notifications if they were left disabled (a detach
 * during busy polling skips the poll_end that would have), register the
 * host notifier with a read handler (test-and-clear, then handle), a poll
 * handler ("rings set up and not empty") with its ready callback, and
 * poll_begin/poll_end that disable/enable notifications while @ctx busy
 * polls; then kick it once (event_notifier_set) so requests that arrived
 * while detached are processed.
 * Context: the BQL holder (drained_end, ioeventfd start) or @ctx's home
 * thread; the queue's host notifier must be assigned.
 */
AIOLAB_API void virtio_queue_aio_attach_host_notifier(VirtQueue *vq,
                                                      AioContext *ctx);

/**
 * virtio_queue_aio_attach_host_notifier_no_poll: the same without the
 * poll callbacks (QEMU uses it for queues that are rarely busy).
 * Context: as virtio_queue_aio_attach_host_notifier().
 */
AIOLAB_API void virtio_queue_aio_attach_host_notifier_no_poll(VirtQueue *vq,
                                                              AioContext *ctx);

/**
 * virtio_queue_aio_detach_host_notifier: stop handling @vq's kicks in
 * @ctx (aio_set_event_notifier(ctx, n, NULL, NULL, NULL)).  Kicks keep
 * accumulating in the eventfd.  Notifications may be left disabled.
 * Context: any thread (the BQL holder in drained_begin, or @ctx's own
 * thread in ioeventfd stop).  A handler already running in @ctx may
 * finish its pass after this returns.
 */
AIOLAB_API void virtio_queue_aio_detach_host_notifier(VirtQueue *vq,
                                                      AioContext *ctx);

/**
 * virtio_queue_host_notifier_read: the read handler: if @n was set, clear
 * it and handle its queue (virtio_queue_notify_vq).
 * Context: the queue's home thread.
 */
AIOLAB_API void virtio_queue_host_notifier_read(EventNotifier *n);

/**
 * virtio_queue_get_host_notifier / virtio_queue_get_guest_notifier: the
 * queue's two EventNotifiers.  The host notifier is valid while assigned
 * (ioeventfd started); the guest notifier always (the core creates an
 * eventfd per queue; a guest driver may poll its fd for interrupts).
 * Context: any thread.
 */
AIOLAB_API EventNotifier *virtio_queue_get_host_notifier(VirtQueue *vq);
AIOLAB_API EventNotifier *virtio_queue_get_guest_notifier(VirtQueue *vq);

/**
 * aiolab_virtio_queue_set_guest_notifier_fd: make @fd (an eventfd
 * received from elsewhere: vhost-user SET_VRING_CALL) the queue's guest
 * notifier, closing the previous one; @fd < 0 makes a fresh eventfd.
 * The queue takes ownership of @fd.  Returns 0 or -errno.
 * Context: the queue's home thread (e.g. through aio_wait_bh_oneshot),
 * or while nothing handles the queue.
 */
AIOLAB_API int aiolab_virtio_queue_set_guest_notifier_fd(VirtQueue *vq,
                                                         int fd);

/**
 * virtio_queue_notify: the MMIO notify path, as a vCPU's write to the
 * queue-notify register without ioeventfd: if the host notifier is
 * assigned, set it (the handler runs in its AioContext); else handle the
 * queue right here, inline.  Ignored while the device is broken.
 * Context: the BQL holder (a vCPU thread, or the main loop).
 */
AIOLAB_API void virtio_queue_notify(VirtIODevice *vdev, int n);

/**
 * aiolab_virtio_guest_kick: what a guest's write to the queue-notify
 * register does in the toy machine.  With the host notifier assigned it
 * sets the eventfd without taking the BQL (KVM's ioeventfd: no exit to
 * userspace); otherwise it is an MMIO exit: take the BQL (unless held)
 * and call virtio_queue_notify().  Safe against a concurrent ioeventfd
 * start/stop: a kick lands either in the eventfd before the notifier is
 * unassigned (stop reads it one last time) or in the BQL path after.
 * Context: any thread (a vCPU) holding no lock but possibly the BQL.
 */
AIOLAB_API void aiolab_virtio_guest_kick(VirtIODevice *vdev, int n);

/**
 * virtio_bus_set_host_notifier: assign (create, or have the bus's
 * set_host_notifier provide, then set once so no kick is lost) or
 * unassign queue @n's host notifier.  Unassigning stops guest kicks from
 * reaching it; virtio_bus_cleanup_host_notifier() then reads it one last
 * time and closes it.  Returns 0 or -errno.
 * Where QEMU differs: takes the device, not its bus.
 * Context: main loop, BQL held (ioeventfd start/stop).
 */
AIOLAB_API int virtio_bus_set_host_notifier(VirtIODevice *vdev, int n,
                                            bool assign);
/**
 * virtio_bus_cleanup_host_notifier: after unassigning: test-and-clear the
 * notifier once more and close it.
 * Returns: true if a kick was pending (the caller must handle the queue:
 * QEMU handles it right there; see virtio-blk's ioeventfd stop).
 * Context: main loop, BQL held.
 */
AIOLAB_API bool virtio_bus_cleanup_host_notifier(VirtIODevice *vdev, int n);

/**
 * virtio_device_start_ioeventfd / virtio_device_stop_ioeventfd: ask the
 * device to move its queues onto host notifiers in their AioContexts, or
 * back.  start returns 0, or -ENOSYS when ioeventfd is disabled or
 * unavailable (the device then handles kicks inline, under the BQL).
 * When stop returns, every request is complete and no queue's context
 * touches the queues' guest notifiers any more (virtio-blk waits for
 * the deferred irqfd writes of the last completions): the caller may
 * replace or close them.
 * Context: main loop, BQL held.
 */
AIOLAB_API int virtio_device_start_ioeventfd(VirtIODevice *vdev);
AIOLAB_API void virtio_device_stop_ioeventfd(VirtIODevice *vdev);
/** virtio_device_ioeventfd_enabled: may this device use ioeventfd at all?
 * Context: any thread. */
AIOLAB_API bool virtio_device_ioeventfd_enabled(VirtIODevice *vdev);

/* ---------------------------------------------------------------------
 * Queue setup: the transport, while nobody handles the queue
 * --------------------------------------------------------------------- */

/** virtio_get_num_queues: how many queues the device has.
 * Context: any thread. */
AIOLAB_API int virtio_get_num_queues(VirtIODevice *vdev);
/** virtio_get_queue: queue @n (NULL if out of range).
 * Context: any thread. */
AIOLAB_API VirtQueue *virtio_get_queue(VirtIODevice *vdev, int n);
/** virtio_get_queue_index: @vq's number.  Context: any thread. */
AIOLAB_API int virtio_get_queue_index(VirtQueue *vq);
/** aiolab_virtio_queue_get_device: @vq's device.  Context: any thread. */
AIOLAB_API VirtIODevice *aiolab_virtio_queue_get_device(VirtQueue *vq);

/**
 * virtio_queue_set_num: the queue size the driver chose (a power of 2,
 * at most the device's maximum; other values are ignored, leaving the
 * queue unusable until fixed).  Context: the transport (BQL), queue idle.
 */
AIOLAB_API void virtio_queue_set_num(VirtIODevice *vdev, int n, int num);
/** virtio_queue_get_num / virtio_queue_get_max_num: current and maximum
 * size.  Context: any thread. */
AIOLAB_API int virtio_queue_get_num(VirtIODevice *vdev, int n);
AIOLAB_API int virtio_queue_get_max_num(VirtIODevice *vdev, int n);

/**
 * virtio_queue_set_rings: the guest physical addresses of the three
 * areas (0, 0, 0 tears the queue down).  Each must lie wholly in one
 * guest RAM region and be aligned (desc 16, avail 2, used 4), and the
 * used ring, which the device writes, must not overlap the other two.
 * If not, the device is broken ("Cannot map desc", "Cannot map avail",
 * "Cannot map used", "Misaligned vring", or "Used ring overlaps the
 * avail ring or the descriptor table") and -EFAULT/-EINVAL returned, so
 * a vhost-user export can also drop the client.  Returns 0 on success.
 * Context: the transport (BQL), queue idle.
 */
AIOLAB_API int virtio_queue_set_rings(VirtIODevice *vdev, int n,
                                      uint64_t desc, uint64_t avail,
                                      uint64_t used);

/**
 * virtio_queue_set_last_avail_idx: vhost-user SET_VRING_BASE: where
 * popping resumes (also resets the cached avail index).
 * virtio_queue_get_last_avail_idx: GET_VRING_BASE (after stopping).
 * virtio_queue_update_used_idx: re-read used.idx from the ring (a queue
 * taken over from a previous backend).
 * Context: the transport, queue idle.
 */
AIOLAB_API void virtio_queue_set_last_avail_idx(VirtIODevice *vdev, int n,
                                                unsigned int idx);
AIOLAB_API unsigned int virtio_queue_get_last_avail_idx(VirtIODevice *vdev,
                                                        int n);
AIOLAB_API void virtio_queue_update_used_idx(VirtIODevice *vdev, int n);
/** aiolab_virtio_queue_get_used_idx / _get_inuse: for tests and
 * vhost-user.  Context: any thread (racy snapshots). */
AIOLAB_API unsigned int aiolab_virtio_queue_get_used_idx(VirtIODevice *vdev,
                                                         int n);
AIOLAB_API unsigned int aiolab_virtio_queue_get_inuse(VirtIODevice *vdev,
                                                      int n);

/**
 * aiolab_virtio_queue_set_enabled: vhost-user SET_VRING_ENABLE (and the
 * toy's queue_enable): a disabled queue pops nothing and ignores kicks.
 * Queues start enabled.  Context: the transport, queue idle.
 */
AIOLAB_API void aiolab_virtio_queue_set_enabled(VirtIODevice *vdev, int n,
                                                bool enabled);
AIOLAB_API bool aiolab_virtio_queue_is_enabled(VirtIODevice *vdev, int n);

/** aiolab_virtio_queue_get_stats: @vq's counters.
 * Context: any thread. */
AIOLAB_API void aiolab_virtio_queue_get_stats(VirtQueue *vq,
                                              AiolabVirtQueueStats *stats);

/* ---------------------------------------------------------------------
 * The device: features, status, config space, errors
 * --------------------------------------------------------------------- */

/** aiolab_virtio_device_get_name: "virtio-blk" etc.
 * Context: any thread. */
AIOLAB_API const char *aiolab_virtio_device_get_name(VirtIODevice *vdev);

/**
 * aiolab_virtio_get_host_features: the features the device offers
 * (device bits, plus VERSION_1, INDIRECT_DESC, EVENT_IDX).
 * aiolab_virtio_get_guest_features: those the driver accepted.
 * virtio_vdev_has_feature: was @fbit negotiated?
 * Context: any thread.
 */
AIOLAB_API uint64_t aiolab_virtio_get_host_features(VirtIODevice *vdev);
AIOLAB_API uint64_t aiolab_virtio_get_guest_features(VirtIODevice *vdev);
AIOLAB_API bool virtio_vdev_has_feature(VirtIODevice *vdev,
                                        unsigned int fbit);

/**
 * virtio_set_features: the driver's feature choice (vhost-user
 * SET_FEATURES, or the toy's driver-features register).  Bits the device
 * did not offer are dropped.  Returns: 0; -1 if @val had bits not
 * offered; -EINVAL once FEATURES_OK is set (features are frozen).
 * Context: the transport (BQL), device not running.
 */
AIOLAB_API int virtio_set_features(VirtIODevice *vdev, uint64_t val);

/**
 * virtio_set_status: store the device status written by the driver
 * (the device is told first).  This is the status only: ioeventfd is
 * the transport's business (see aiolab_virtio_bus_set_status()).
 * Returns: 0, or -EINVAL if FEATURES_OK is set without VERSION_1.
 * Context: the transport (BQL).
 */
AIOLAB_API int virtio_set_status(VirtIODevice *vdev, uint8_t val);
/** aiolab_virtio_get_status: the status byte (with NEEDS_RESET once
 * broken).  Context: any thread. */
AIOLAB_API uint8_t aiolab_virtio_get_status(VirtIODevice *vdev);

/**
 * aiolab_virtio_bus_set_status: what a transport does when the driver
 * writes the status register (QEMU's virtio-pci rules): without
 * DRIVER_OK, stop ioeventfd first; then virtio_set_status(); with
 * DRIVER_OK, start ioeventfd after; a status of 0 resets the device.
 * Returns: virtio_set_status()'s result.
 * Context: main loop, BQL held (a vCPU's MMIO write, or vhost-user).
 */
AIOLAB_API int aiolab_virtio_bus_set_status(VirtIODevice *vdev, uint8_t val);

/**
 * aiolab_virtio_vmstate_change: the VM starts (@running) or stops: a
 * started driver (DRIVER_OK) gets ioeventfd started on run and stopped
 * on stop (QEMU's virtio_vmstate_change + the transport's hook).
 * Context: main loop, BQL held.
 */
AIOLAB_API void aiolab_virtio_vmstate_change(VirtIODevice *vdev,
                                             bool running);

/**
 * virtio_reset: back to the state after realize: the device's reset,
 * every queue torn down (rings 0, indices 0, notifications on), status
 * and features 0, not broken.  ioeventfd must be stopped.
 * Context: main loop, BQL held.
 */
AIOLAB_API void virtio_reset(VirtIODevice *vdev);

/**
 * virtio_error: the guest did something the device cannot accept:
 * report "<device>: <message>", and with VERSION_1 negotiated set
 * NEEDS_RESET and raise the configuration interrupt; then mark the
 * device broken: pops return NULL and kicks do nothing until reset.
 * Context: any thread handling the device.
 */
AIOLAB_API void virtio_error(VirtIODevice *vdev, const char *fmt, ...)
    AIOLAB_PRINTF(2, 3);

/** aiolab_virtio_device_is_broken: has virtio_error() run since the
 * last reset?  Context: any thread. */
AIOLAB_API bool aiolab_virtio_device_is_broken(VirtIODevice *vdev);

/**
 * aiolab_virtio_device_get_last_error: copy the last virtio_error()
 * message ("" if none) into @buf (NUL-terminated, truncated to @len).
 * Returns: its full length.
 * Context: any thread.
 */
AIOLAB_API size_t aiolab_virtio_device_get_last_error(VirtIODevice *vdev,
                                                      char *buf, size_t len);

/**
 * virtio_notify_config: the configuration changed: if DRIVER_OK, set ISR
 * bit 1, bump the generation and raise the configuration interrupt (the
 * bus's notify(VIRTIO_CONFIG_IRQ_IDX), or else the config notifier).
 * Context: any thread (see VirtioBusOps.notify).
 */
AIOLAB_API void virtio_notify_config(VirtIODevice *vdev);

/** aiolab_virtio_get_config_notifier: set by configuration interrupts
 * when the bus has no notify callback.  Context: any thread. */
AIOLAB_API EventNotifier *aiolab_virtio_get_config_notifier(
    VirtIODevice *vdev);

/**
 * aiolab_virtio_isr_read: read and clear the interrupt status (bit 0: a
 * queue, bit 1: configuration), as reading the ISR register does.
 * Context: any thread.
 */
AIOLAB_API uint8_t aiolab_virtio_isr_read(VirtIODevice *vdev);

/**
 * aiolab_virtio_get_config_len: bytes of configuration space.
 * aiolab_virtio_config_read: copy up to @len bytes at @offset (the device
 * refreshes it first); aiolab_virtio_config_write: the driver writes
 * (only writable fields take effect).  Return: bytes copied (0 when
 * @offset is past the end).
 * aiolab_virtio_get_config_generation: bumped by every config change.
 * Context: the transport (BQL).
 */
AIOLAB_API uint32_t aiolab_virtio_get_config_len(VirtIODevice *vdev);
AIOLAB_API size_t aiolab_virtio_config_read(VirtIODevice *vdev,
                                            uint32_t offset, void *buf,
                                            size_t len);
AIOLAB_API size_t aiolab_virtio_config_write(VirtIODevice *vdev,
                                             uint32_t offset,
                                             const void *buf, size_t len);
AIOLAB_API uint32_t aiolab_virtio_get_config_generation(VirtIODevice *vdev);

/** aiolab_virtio_get_guest_memory: the device's guest memory.
 * Context: any thread. */
AIOLAB_API GuestMemory *aiolab_virtio_get_guest_memory(VirtIODevice *vdev);

#endif
