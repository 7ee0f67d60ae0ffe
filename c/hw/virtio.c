/* SPDX-License-Identifier: MIT */
/*
 * hw/virtio.c - the virtio device core: queues, host and guest
 * notifiers, features, status, configuration space and errors (QEMU's
 * hw/virtio/virtio.c and virtio-bus.c, minus the ring code, which is in
 * virtqueue.c).
 *
 * A queue's host notifier, as ioeventfd start/stop and drains move it:
 *
 *            assign (BQL)                  attach(ctx)
 *   (none) -----------------> ASSIGNED -----------------> ATTACHED
 *      ^    eventfd made SET   (kicks       <-----------   (ctx's thread
 *      |    so no kick is lost  pile up)     detach(ctx)    handles them)
 *      |                          |  unassign (BQL): guest kicks now go
 *      +--------------------------+  the BQL way; cleanup reads the
 *         cleanup: last read, close  eventfd one last time, then closes
 *
 * The guest's kick (aiolab_virtio_guest_kick) checks "assigned?" under
 * notifier_lock, and unassign flips it under the same lock: a kick
 * either lands in the eventfd before unassign (and cleanup's last read
 * sees it) or takes the BQL path after - never into a closed fd.
 * Lock order: BQL, then notifier_lock (never the other way).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "hw/virtio-internal.h"
#include "util/mem.h"

bool aiolab_virtio_error_quiet;

/* --- creation ------------------------------------------------------------ */

void virtio_init(VirtIODevice *vdev, const VirtioDeviceClass *vdc,
                 uint32_t config_len, GuestMemory *mem,
                 const VirtioBusOps *bus, void *bus_opaque)
{
    vdev->name = vdc->name;
    vdev->vdc = vdc;
    vdev->bus = bus;
    vdev->bus_opaque = bus_opaque;
    vdev->mem = mem;
    vdev->config_len = config_len;
    vdev->config = aiolab_xcalloc(1, config_len ? config_len : 1);
    vdev->vq = aiolab_xcalloc(VIRTIO_QUEUE_MAX, sizeof(VirtQueue));
    vdev->host_features = (1ull << VIRTIO_F_VERSION_1) |
                          (1ull << VIRTIO_RING_F_INDIRECT_DESC) |
                          (1ull << VIRTIO_RING_F_EVENT_IDX);
    if (vdc->get_features) {
        vdev->host_features |= vdc->get_features(vdev);
    }
    pthread_mutex_init(&vdev->notifier_lock, NULL);
    pthread_mutex_init(&vdev->error_lock, NULL);
    AIOLAB_ASSERT(event_notifier_init(&vdev->config_notifier, 0) == 0,
                  "cannot create an eventfd");
}

VirtQueue *virtio_add_queue(VirtIODevice *vdev, int queue_size,
                            VirtIOHandleOutput handle_output)
{
    VirtQueue *vq;

    AIOLAB_ASSERT(vdev->nvqs < VIRTIO_QUEUE_MAX, "too many virtqueues");
    AIOLAB_ASSERT(queue_size > 0 && queue_size <= VIRTQUEUE_MAX_SIZE,
                  "bad queue size %d", queue_size);
    vq = &vdev->vq[vdev->nvqs];
    vq->vdev = vdev;
    vq->queue_index = vdev->nvqs++;
    vq->handle_output = handle_output;
    vq->num_default = queue_size;
    virtio_queue_reset_state(vq);
    AIOLAB_ASSERT(event_notifier_init(&vq->guest_notifier, 0) == 0,
                  "cannot create an eventfd");
    return vq;
}

void virtio_cleanup(VirtIODevice *vdev)
{
    for (int i = 0; i < vdev->nvqs; i++) {
        AIOLAB_ASSERT(!vdev->vq[i].host_notifier_enabled,
                      "virtqueue %d still has its host notifier assigned "
                      "(stop ioeventfd before freeing the device)", i);
        event_notifier_cleanup(&vdev->vq[i].guest_notifier);
    }
    event_notifier_cleanup(&vdev->config_notifier);
    pthread_mutex_destroy(&vdev->notifier_lock);
    pthread_mutex_destroy(&vdev->error_lock);
    free(vdev->last_error);
    free(vdev->config);
    free(vdev->vq);
}

/* --- accessors ------------------------------------------------------------ */

int virtio_get_num_queues(VirtIODevice *vdev)
{
    REQUIRE_NONNULL(vdev);
    return vdev->nvqs;
}

VirtQueue *virtio_get_queue(VirtIODevice *vdev, int n)
{
    REQUIRE_NONNULL(vdev);
    return n >= 0 && n < vdev->nvqs ? &vdev->vq[n] : NULL;
}

int virtio_get_queue_index(VirtQueue *vq)
{
    REQUIRE_NONNULL(vq);
    return vq->queue_index;
}

VirtIODevice *aiolab_virtio_queue_get_device(VirtQueue *vq)
{
    REQUIRE_NONNULL(vq);
    return vq->vdev;
}

static VirtQueue *queue_or_die(VirtIODevice *vdev, int n, const char *func)
{
    REQUIRE_NONNULL(vdev);
    if (n < 0 || n >= vdev->nvqs) {
        aiolab_die(func, "got queue %d of a device with %d queues", n,
                   vdev->nvqs);
    }
    return &vdev->vq[n];
}

void virtio_queue_set_num(VirtIODevice *vdev, int n, int num)
{
    VirtQueue *vq = queue_or_die(vdev, n, __func__);

    /* A power of 2 no larger than the maximum; anything else leaves the
     * queue unusable (QEMU's virtio-pci ignores such writes too). */
    if (num <= 0 || num > (int)vq->num_default || (num & (num - 1))) {
        vq->num = 0;
    } else {
        vq->num = num;
    }
    virtio_queue_map_rings(vq);
}

int virtio_queue_get_num(VirtIODevice *vdev, int n)
{
    return queue_or_die(vdev, n, __func__)->num;
}

int virtio_queue_get_max_num(VirtIODevice *vdev, int n)
{
    return queue_or_die(vdev, n, __func__)->num_default;
}

int virtio_queue_set_rings(VirtIODevice *vdev, int n, uint64_t desc,
                           uint64_t avail, uint64_t used)
{
    VirtQueue *vq = queue_or_die(vdev, n, __func__);

    vq->desc = desc;
    vq->avail = avail;
    vq->used = used;
    return virtio_queue_map_rings(vq);
}

void virtio_queue_set_last_avail_idx(VirtIODevice *vdev, int n,
                                     unsigned int idx)
{
    VirtQueue *vq = queue_or_die(vdev, n, __func__);

    vq->last_avail_idx = vq->shadow_avail_idx = idx;
}

unsigned int virtio_queue_get_last_avail_idx(VirtIODevice *vdev, int n)
{
    return qatomic_read(&queue_or_die(vdev, n, __func__)->last_avail_idx);
}

void virtio_queue_update_used_idx(VirtIODevice *vdev, int n)
{
    VirtQueue *vq = queue_or_die(vdev, n, __func__);

    if (vq->used_p) {
        vq->used_idx = qatomic_load_acquire(
            (uint16_t *)(vq->used_p + VRING_USED_IDX_OFF));
        vq->signalled_used_valid = false;
    }
}

unsigned int aiolab_virtio_queue_get_used_idx(VirtIODevice *vdev, int n)
{
    return qatomic_read(&queue_or_die(vdev, n, __func__)->used_idx);
}

unsigned int aiolab_virtio_queue_get_inuse(VirtIODevice *vdev, int n)
{
    return qatomic_read(&queue_or_die(vdev, n, __func__)->inuse);
}

void aiolab_virtio_queue_set_enabled(VirtIODevice *vdev, int n, bool enabled)
{
    qatomic_set(&queue_or_die(vdev, n, __func__)->enabled, enabled);
}

bool aiolab_virtio_queue_is_enabled(VirtIODevice *vdev, int n)
{
    return qatomic_read(&queue_or_die(vdev, n, __func__)->enabled);
}

void aiolab_virtio_queue_get_stats(VirtQueue *vq, AiolabVirtQueueStats *st)
{
    REQUIRE_NONNULL(vq);
    st->pops = qatomic_read(&vq->stats.pops);
    st->pushes = qatomic_read(&vq->stats.pushes);
    st->notifies = qatomic_read(&vq->stats.notifies);
    st->irqfd_notifies = qatomic_read(&vq->stats.irqfd_notifies);
    st->suppressed = qatomic_read(&vq->stats.suppressed);
    st->kicks = qatomic_read(&vq->stats.kicks);
}

GuestMemory *aiolab_virtio_get_guest_memory(VirtIODevice *vdev)
{
    REQUIRE_NONNULL(vdev);
    return vdev->mem;
}

/* --- kicks ------------------------------------------------------------------ */

void virtio_queue_notify_vq(VirtQueue *vq)
{
    VirtIODevice *vdev = vq->vdev;

    if (vq->desc_p && vq->handle_output && !qatomic_read(&vdev->broken) &&
        qatomic_read(&vq->enabled)) {
        qatomic_set(&vq->stats.kicks, qatomic_read(&vq->stats.kicks) + 1);
        vq->handle_output(vdev, vq);
    }
}

void virtio_queue_host_notifier_read(EventNotifier *n)
{
    VirtQueue *vq = container_of(n, VirtQueue, host_notifier);

    if (event_notifier_test_and_clear(n)) {
        virtio_queue_notify_vq(vq);
    }
}

/* Busy polling: "is there work?" - without touching the eventfd. */
static bool host_notifier_aio_poll(void *opaque)
{
    EventNotifier *n = opaque;
    VirtQueue *vq = container_of(n, VirtQueue, host_notifier);

    /* virtio_queue_empty() is true for a broken device: no busy loop. */
    return vq->desc_p && !virtio_queue_empty(vq);
}

static void host_notifier_aio_poll_ready(EventNotifier *n)
{
    virtio_queue_notify_vq(container_of(n, VirtQueue, host_notifier));
}

/* While the AioContext busy-polls the ring, guest kicks are wasted work:
 * ask the guest not to send them; ask again when polling stops. */
static void host_notifier_aio_poll_begin(EventNotifier *n)
{
    virtio_queue_set_notification(container_of(n, VirtQueue, host_notifier),
                                  0);
}

static void host_notifier_aio_poll_end(EventNotifier *n)
{
    virtio_queue_set_notification(container_of(n, VirtQueue, host_notifier),
                                  1);
}

static void attach_host_notifier(VirtQueue *vq, AioContext *ctx, bool poll)
{
    REQUIRE_NONNULL(vq);
    REQUIRE_NONNULL(ctx);
    AIOLAB_REQUIRE(vq->host_notifier.initialized, "on virtqueue %u, whose "
                   "host notifier is not assigned", vq->queue_index);
    /*
     * A detach while ctx was busy polling skipped poll_end, leaving guest
     * notifications off: the guest would stop kicking and hang (QEMU
     * commit 5bdbaebcce18).  Turn them back on first.
     */
    if (!virtio_queue_get_notification(vq)) {
        virtio_queue_set_notification(vq, 1);
    }
    aio_set_event_notifier(ctx, &vq->host_notifier,
                           virtio_queue_host_notifier_read,
                           poll ? host_notifier_aio_poll : NULL,
                           poll ? host_notifier_aio_poll_ready : NULL);
    if (poll) {
        aio_set_event_notifier_poll(ctx, &vq->host_notifier,
                                    host_notifier_aio_poll_begin,
                                    host_notifier_aio_poll_end);
    }
    /* Requests may have arrived while nobody listened: look now, in ctx. */
    event_notifier_set(&vq->host_notifier);
}

void virtio_queue_aio_attach_host_notifier(VirtQueue *vq, AioContext *ctx)
{
    attach_host_notifier(vq, ctx, true);
}

void virtio_queue_aio_attach_host_notifier_no_poll(VirtQueue *vq,
                                                   AioContext *ctx)
{
    attach_host_notifier(vq, ctx, false);
}

void virtio_queue_aio_detach_host_notifier(VirtQueue *vq, AioContext *ctx)
{
    REQUIRE_NONNULL(vq);
    aio_set_event_notifier(ctx, &vq->host_notifier, NULL, NULL, NULL);
}

EventNotifier *virtio_queue_get_host_notifier(VirtQueue *vq)
{
    REQUIRE_NONNULL(vq);
    return &vq->host_notifier;
}

EventNotifier *virtio_queue_get_guest_notifier(VirtQueue *vq)
{
    REQUIRE_NONNULL(vq);
    return &vq->guest_notifier;
}

int aiolab_virtio_queue_set_guest_notifier_fd(VirtQueue *vq, int fd)
{
    EventNotifier fresh;

    REQUIRE_NONNULL(vq);
    if (fd >= 0) {
        event_notifier_init_fd(&fresh, fd);
    } else {
        int ret = event_notifier_init(&fresh, 0);

        if (ret < 0) {
            return ret;
        }
    }
    event_notifier_cleanup(&vq->guest_notifier);
    vq->guest_notifier = fresh;
    return 0;
}

void virtio_queue_notify(VirtIODevice *vdev, int n)
{
    VirtQueue *vq = virtio_get_queue(vdev, n);

    GLOBAL_STATE_CODE();
    if (!vq || !vq->desc_p || qatomic_read(&vdev->broken)) {
        return;
    }
    aiolab_trace_mark("virtio_queue_notify", n);
    if (qatomic_read(&vq->host_notifier_enabled)) {
        event_notifier_set(&vq->host_notifier);
    } else {
        virtio_queue_notify_vq(vq);
    }
}

void aiolab_virtio_guest_kick(VirtIODevice *vdev, int n)
{
    VirtQueue *vq = virtio_get_queue(vdev, n);

    if (!vq) {
        return;                     /* a write to a queue that isn't there */
    }
    pthread_mutex_lock(&vdev->notifier_lock);
    if (vq->host_notifier_enabled) {
        /* KVM's ioeventfd: the write becomes an eventfd signal, no exit. */
        event_notifier_set(&vq->host_notifier);
        pthread_mutex_unlock(&vdev->notifier_lock);
        return;
    }
    pthread_mutex_unlock(&vdev->notifier_lock);
    {
        /* An MMIO exit: the vCPU handles it under the BQL. */
        BQL_LOCK_GUARD();
        virtio_queue_notify(vdev, n);
    }
}

int virtio_bus_set_host_notifier(VirtIODevice *vdev, int n, bool assign)
{
    VirtQueue *vq = queue_or_die(vdev, n, __func__);
    const VirtioBusOps *bus = vdev->bus;
    int ret = 0;

    GLOBAL_STATE_CODE();
    if (assign) {
        AIOLAB_REQUIRE(!vq->host_notifier.initialized, "on virtqueue %d, "
                       "whose host notifier is already assigned", n);
        if (bus && bus->set_host_notifier) {
            ret = bus->set_host_notifier(vdev->bus_opaque, n,
                                         &vq->host_notifier, true);
            if (ret == 0) {
                event_notifier_set(&vq->host_notifier);
            }
        } else {
            /* Created set: a kick that comes before the handler is
             * attached is not lost (QEMU's virtio_bus_set_host_notifier). */
            ret = event_notifier_init(&vq->host_notifier, 1);
        }
        if (ret < 0) {
            return ret;
        }
        pthread_mutex_lock(&vdev->notifier_lock);
        qatomic_set(&vq->host_notifier_enabled, true);
        pthread_mutex_unlock(&vdev->notifier_lock);
    } else {
        pthread_mutex_lock(&vdev->notifier_lock);
        qatomic_set(&vq->host_notifier_enabled, false);
        pthread_mutex_unlock(&vdev->notifier_lock);
        if (bus && bus->set_host_notifier) {
            bus->set_host_notifier(vdev->bus_opaque, n, &vq->host_notifier,
                                   false);
        }
    }
    return 0;
}

bool virtio_bus_cleanup_host_notifier(VirtIODevice *vdev, int n)
{
    VirtQueue *vq = queue_or_die(vdev, n, __func__);
    bool pending;

    GLOBAL_STATE_CODE();
    if (!vq->host_notifier.initialized) {
        return false;
    }
    pending = event_notifier_test_and_clear(&vq->host_notifier);
    event_notifier_cleanup(&vq->host_notifier);
    return pending;
}

bool virtio_device_ioeventfd_enabled(VirtIODevice *vdev)
{
    REQUIRE_NONNULL(vdev);
    return vdev->use_ioeventfd && !(vdev->bus && vdev->bus->no_notifiers);
}

int virtio_device_start_ioeventfd(VirtIODevice *vdev)
{
    int ret;

    GLOBAL_STATE_CODE();
    if (!virtio_device_ioeventfd_enabled(vdev) || !vdev->vdc->start_ioeventfd) {
        return -ENOSYS;
    }
    if (vdev->ioeventfd_started) {
        return 0;
    }
    ret = vdev->vdc->start_ioeventfd(vdev);
    if (ret < 0) {
        error_report("%s: failed. Fallback to userspace (slower).", __func__);
        return ret;
    }
    vdev->ioeventfd_started = true;
    return 0;
}

void virtio_device_stop_ioeventfd(VirtIODevice *vdev)
{
    GLOBAL_STATE_CODE();
    if (!vdev->ioeventfd_started) {
        return;
    }
    vdev->vdc->stop_ioeventfd(vdev);
    vdev->ioeventfd_started = false;
}

/* --- features, status, reset ------------------------------------------------ */

const char *aiolab_virtio_device_get_name(VirtIODevice *vdev)
{
    REQUIRE_NONNULL(vdev);
    return vdev->name;
}

uint64_t aiolab_virtio_get_host_features(VirtIODevice *vdev)
{
    REQUIRE_NONNULL(vdev);
    return vdev->host_features;
}

uint64_t aiolab_virtio_get_guest_features(VirtIODevice *vdev)
{
    REQUIRE_NONNULL(vdev);
    return qatomic_read(&vdev->guest_features);
}

bool virtio_vdev_has_feature(VirtIODevice *vdev, unsigned int fbit)
{
    return fbit < 64 && (qatomic_read(&vdev->guest_features) >> fbit) & 1;
}

int virtio_set_features(VirtIODevice *vdev, uint64_t val)
{
    REQUIRE_NONNULL(vdev);
    if (qatomic_read(&vdev->status) & VIRTIO_CONFIG_S_FEATURES_OK) {
        return -EINVAL;             /* frozen once accepted */
    }
    qatomic_set(&vdev->guest_features, val & vdev->host_features);
    return (val & ~vdev->host_features) ? -1 : 0;
}

int virtio_set_status(VirtIODevice *vdev, uint8_t val)
{
    uint8_t old;

    REQUIRE_NONNULL(vdev);
    old = qatomic_read(&vdev->status);
    /* aiolab is modern-only: a driver that did not take VERSION_1 cannot
     * complete feature negotiation (it sees FEATURES_OK not stick). */
    if ((val & VIRTIO_CONFIG_S_FEATURES_OK) &&
        !(old & VIRTIO_CONFIG_S_FEATURES_OK) &&
        !virtio_vdev_has_feature(vdev, VIRTIO_F_VERSION_1)) {
        return -EINVAL;
    }
    if (vdev->vdc->set_status) {
        vdev->vdc->set_status(vdev, val);
    }
    /* NEEDS_RESET stays until a reset (status 0): the driver cannot
     * clear it by writing the status back without it. */
    if (val != 0) {
        val |= old & VIRTIO_CONFIG_S_NEEDS_RESET;
    }
    qatomic_set(&vdev->status, val);
    return 0;
}

uint8_t aiolab_virtio_get_status(VirtIODevice *vdev)
{
    REQUIRE_NONNULL(vdev);
    return qatomic_read(&vdev->status);
}

void virtio_reset(VirtIODevice *vdev)
{
    GLOBAL_STATE_CODE();
    REQUIRE_NONNULL(vdev);
    AIOLAB_REQUIRE(!vdev->ioeventfd_started, "while ioeventfd is started "
                   "(stop it first, as the transport does)");
    if (vdev->vdc->reset) {
        vdev->vdc->reset(vdev);
    }
    qatomic_set(&vdev->status, 0);
    qatomic_set(&vdev->guest_features, 0);
    qatomic_set(&vdev->isr, 0);
    for (int i = 0; i < vdev->nvqs; i++) {
        virtio_queue_reset_state(&vdev->vq[i]);
    }
    qatomic_store_release(&vdev->broken, false);
}

int aiolab_virtio_bus_set_status(VirtIODevice *vdev, uint8_t val)
{
    int ret;

    GLOBAL_STATE_CODE();
    if (!(val & VIRTIO_CONFIG_S_DRIVER_OK)) {
        virtio_device_stop_ioeventfd(vdev);
    }
    ret = virtio_set_status(vdev, val);
    if (ret == 0 && (val & VIRTIO_CONFIG_S_DRIVER_OK)) {
        virtio_device_start_ioeventfd(vdev);
    }
    if (val == 0) {
        virtio_reset(vdev);
    }
    return ret;
}

void aiolab_virtio_vmstate_change(VirtIODevice *vdev, bool running)
{
    GLOBAL_STATE_CODE();
    if (running && (qatomic_read(&vdev->status) & VIRTIO_CONFIG_S_DRIVER_OK)) {
        virtio_device_start_ioeventfd(vdev);
    } else if (!running) {
        virtio_device_stop_ioeventfd(vdev);
    }
}

/* --- errors and the configuration interrupt ---------------------------------- */

void virtio_error(VirtIODevice *vdev, const char *fmt, ...)
{
    va_list ap;
    char *msg;

    va_start(ap, fmt);
    if (vasprintf(&msg, fmt, ap) < 0) {
        msg = NULL;
    }
    va_end(ap);
    if (!aiolab_virtio_error_quiet) {
        error_report("%s: %s", vdev->name, msg ? msg : fmt);
    }
    aiolab_trace_mark("virtio_error", 0);
    pthread_mutex_lock(&vdev->error_lock);
    free(vdev->last_error);
    vdev->last_error = msg;
    pthread_mutex_unlock(&vdev->error_lock);
    if (virtio_vdev_has_feature(vdev, VIRTIO_F_VERSION_1)) {
        qatomic_or(&vdev->status, VIRTIO_CONFIG_S_NEEDS_RESET);
        virtio_notify_config(vdev);
    }
    qatomic_store_release(&vdev->broken, true);
}

bool aiolab_virtio_device_is_broken(VirtIODevice *vdev)
{
    REQUIRE_NONNULL(vdev);
    return qatomic_load_acquire(&vdev->broken);
}

size_t aiolab_virtio_device_get_last_error(VirtIODevice *vdev, char *buf,
                                           size_t len)
{
    size_t full;

    REQUIRE_NONNULL(vdev);
    pthread_mutex_lock(&vdev->error_lock);
    full = vdev->last_error ? strlen(vdev->last_error) : 0;
    if (len) {
        snprintf(buf, len, "%s", vdev->last_error ? vdev->last_error : "");
    }
    pthread_mutex_unlock(&vdev->error_lock);
    return full;
}

void virtio_notify_config(VirtIODevice *vdev)
{
    REQUIRE_NONNULL(vdev);
    if (!(qatomic_read(&vdev->status) & VIRTIO_CONFIG_S_DRIVER_OK)) {
        return;
    }
    qatomic_or(&vdev->isr, 2);
    qatomic_inc(&vdev->generation);
    if (vdev->bus && vdev->bus->notify) {
        vdev->bus->notify(vdev->bus_opaque, VIRTIO_CONFIG_IRQ_IDX);
    } else {
        event_notifier_set(&vdev->config_notifier);
    }
}

EventNotifier *aiolab_virtio_get_config_notifier(VirtIODevice *vdev)
{
    REQUIRE_NONNULL(vdev);
    return &vdev->config_notifier;
}

uint8_t aiolab_virtio_isr_read(VirtIODevice *vdev)
{
    REQUIRE_NONNULL(vdev);
    return qatomic_xchg(&vdev->isr, 0);
}

/* --- configuration space --------------------------------------------------------- */

uint32_t aiolab_virtio_get_config_len(VirtIODevice *vdev)
{
    REQUIRE_NONNULL(vdev);
    return vdev->config_len;
}

/* An access to the config space at @offset: false if @offset is outside
 * it; else vdev->config is refreshed from the device and *@len cut to
 * what lies inside. */
static bool virtio_config_access(VirtIODevice *vdev, uint32_t offset,
                                 size_t *len)
{
    if (offset >= vdev->config_len) {
        return false;
    }
    if (vdev->vdc->get_config) {
        vdev->vdc->get_config(vdev, vdev->config);
    }
    *len = MIN(*len, vdev->config_len - offset);
    return true;
}

size_t aiolab_virtio_config_read(VirtIODevice *vdev, uint32_t offset,
                                 void *buf, size_t len)
{
    REQUIRE_NONNULL(vdev);
    if (!virtio_config_access(vdev, offset, &len)) {
        return 0;
    }
    memcpy(buf, vdev->config + offset, len);
    return len;
}

size_t aiolab_virtio_config_write(VirtIODevice *vdev, uint32_t offset,
                                  const void *buf, size_t len)
{
    REQUIRE_NONNULL(vdev);
    if (!virtio_config_access(vdev, offset, &len)) {
        return 0;
    }
    memcpy(vdev->config + offset, buf, len);
    if (vdev->vdc->set_config) {
        vdev->vdc->set_config(vdev, vdev->config);
    }
    return len;
}

uint32_t aiolab_virtio_get_config_generation(VirtIODevice *vdev)
{
    REQUIRE_NONNULL(vdev);
    return qatomic_read(&vdev->generation);
}
