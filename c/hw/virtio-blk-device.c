/* SPDX-License-Identifier: MIT */
/*
 * hw/virtio-blk-device.c - the virtio-blk device around the request path:
 * realize checks, iothread-vq-mapping, features and configuration space,
 * ioeventfd start/stop, the BlockDevOps drain callbacks, reset and
 * unrealize (QEMU 9.0's hw/block/virtio-blk.c; until 9.0 the ioeventfd
 * half lived in dataplane/virtio-blk.c and was called "dataplane").
 *
 * ioeventfd, as QEMU 9.0 runs it (every step in the main loop, BQL held):
 *
 *              start                                     stop
 *   STOPPED ----------> STARTING -------------> STARTED ------> STOPPING
 *      ^      guest notifiers, host notifiers      |   per vq, in its
 *      |      assigned; blk_set_aio_context        |   context: detach,
 *      |      (drains! so started is still false:  |   last read; then
 *      |      drained_end must not attach yet)     |   unassign, started
 *      |      started = true; attach unless        |   = false, blk_drain,
 *      |      drained (drained_end will)           |   blk to main loop
 *      |                                           |   (unless conf's
 *      |                                           |   keep_aio_context)
 *      +-------------------------------------------+-----------+
 *   any failure: DISABLED (kicks handled inline, under the BQL, for good)
 *
 *   drained_begin (blk quiesced 0 -> 1): if STARTED, detach every vq's host
 *     notifier: kicks pile up in the eventfds, requests in flight finish.
 *   drained_end (1 -> 0): if STARTED, attach again: notifications back on,
 *     and a kick, so what piled up is handled.  No drained_poll.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "hw/virtio-blk-internal.h"
#include "util/mem.h"

/* --- properties and realize checks ----------------------------------------- */

void virtio_blk_conf_init(VirtIOBlkConf *conf)
{
    REQUIRE_NONNULL(conf);
    *conf = (VirtIOBlkConf) {
        .num_queues = VIRTIO_BLK_AUTO_NUM_QUEUES,
        .queue_size = 256,
        .logical_block_size = 512,
        .physical_block_size = 512,
        .request_merging = true,
        .config_wce = true,
        .write_cache = true,
        .discard = true,
        .write_zeroes = true,
        .max_discard_sectors = BDRV_REQUEST_MAX_SECTORS,
        .max_write_zeroes_sectors = BDRV_REQUEST_MAX_SECTORS,
        .ioeventfd = true,
        .rerror = BLOCKDEV_ON_ERROR_REPORT,
        .werror = BLOCKDEV_ON_ERROR_ENOSPC,
    };
}

static bool is_power_of_2(uint64_t v)
{
    return v && !(v & (v - 1));
}

static bool check_conf(VirtIOBlkConf *conf, Error **errp)
{
    if (!conf->blk) {
        error_setg(errp, "drive property not set");
        return false;
    }
    if (!blk_bs(conf->blk)) {
        error_setg(errp, "Device needs media, but drive is empty");
        return false;
    }
    if (conf->num_queues == VIRTIO_BLK_AUTO_NUM_QUEUES) {
        conf->num_queues = 1;
    }
    if (!conf->num_queues) {
        error_setg(errp, "num-queues property must be larger than 0");
        return false;
    }
    /* QEMU 9.0 has no such check and aborts in virtio_add_queue(). */
    if (conf->num_queues > VIRTIO_QUEUE_MAX) {
        error_setg(errp, "invalid num-queues property (%u), must be at "
                   "most %d", conf->num_queues, VIRTIO_QUEUE_MAX);
        return false;
    }
    if (conf->queue_size <= 2) {
        error_setg(errp, "invalid queue-size property (%u), must be > 2",
                   conf->queue_size);
        return false;
    }
    if (!is_power_of_2(conf->queue_size) ||
        conf->queue_size > VIRTQUEUE_MAX_SIZE) {
        error_setg(errp, "invalid queue-size property (%u), must be a power "
                   "of 2 (max %d)", conf->queue_size, VIRTQUEUE_MAX_SIZE);
        return false;
    }
    if (!is_power_of_2(conf->logical_block_size) ||
        conf->logical_block_size < 512 || conf->logical_block_size > 32768 ||
        !is_power_of_2(conf->physical_block_size) ||
        conf->physical_block_size < conf->logical_block_size) {
        error_setg(errp, "invalid block sizes (logical %u, physical %u): "
                   "powers of 2, 512 <= logical <= physical, logical <= 32768",
                   conf->logical_block_size, conf->physical_block_size);
        return false;
    }
    if (conf->discard && (!conf->max_discard_sectors ||
                          conf->max_discard_sectors > BDRV_REQUEST_MAX_SECTORS)) {
        error_setg(errp, "invalid max-discard-sectors property (%u), must be "
                   "between 1 and %d", conf->max_discard_sectors,
                   (int)BDRV_REQUEST_MAX_SECTORS);
        return false;
    }
    if (conf->write_zeroes &&
        (!conf->max_write_zeroes_sectors ||
         conf->max_write_zeroes_sectors > BDRV_REQUEST_MAX_SECTORS)) {
        error_setg(errp, "invalid max-write-zeroes-sectors property (%u), "
                   "must be between 1 and %d", conf->max_write_zeroes_sectors,
                   (int)BDRV_REQUEST_MAX_SECTORS);
        return false;
    }
    return true;
}

static bool validate_iothread_vq_mapping(const VirtIOBlkConf *conf,
                                         Error **errp)
{
    const IOThreadVirtQueueMapping *list = conf->iothread_vq_mapping;
    size_t n = conf->iothread_vq_mapping_len;
    uint16_t nq = conf->num_queues;
    bool *assigned = aiolab_xcalloc(nq, sizeof(bool));
    bool ok = false;

    for (size_t i = 0; i < n; i++) {
        const char *name = list[i].iothread ? list[i].iothread : "";

        if (!iothread_by_id(name)) {
            error_setg(errp, "IOThread \"%s\" object does not exist", name);
            goto out;
        }
        for (size_t j = 0; j < i; j++) {
            if (list[j].iothread && strcmp(list[j].iothread, name) == 0) {
                error_setg(errp, "duplicate IOThread name \"%s\" in "
                           "iothread-vq-mapping", name);
                goto out;
            }
        }
        if (i > 0 && !list[i].vqs != !list[0].vqs) {
            error_setg(errp, "either all items in iothread-vq-mapping must "
                       "have vqs or none of them must have it");
            goto out;
        }
        for (size_t k = 0; list[i].vqs && k < list[i].n_vqs; k++) {
            uint16_t vq = list[i].vqs[k];

            if (vq >= nq) {
                error_setg(errp, "vq index %u for IOThread \"%s\" must be "
                           "less than num_queues %u in iothread-vq-mapping",
                           vq, name, nq);
                goto out;
            }
            if (assigned[vq]) {
                error_setg(errp, "cannot assign vq %u to IOThread \"%s\" "
                           "because it is already assigned", vq, name);
                goto out;
            }
            assigned[vq] = true;
        }
    }
    if (n > 0 && list[0].vqs) {
        for (uint16_t vq = 0; vq < nq; vq++) {
            if (!assigned[vq]) {
                error_setg(errp, "missing vq %u IOThread assignment in "
                           "iothread-vq-mapping", vq);
                goto out;
            }
        }
    }
    ok = true;
out:
    free(assigned);
    return ok;
}

/* Fill vq_aio_context[] (QEMU's virtio_blk_vq_aio_context_init). */
static AioContext **vq_aio_context_init(const VirtIOBlkConf *conf,
                                        const VirtioBusOps *bus, Error **errp)
{
    uint16_t nq = conf->num_queues;
    AioContext **ctxs;

    if (conf->iothread && conf->iothread_vq_mapping) {
        error_setg(errp, "iothread and iothread-vq-mapping properties cannot "
                   "be set at the same time");
        return NULL;
    }
    if (conf->iothread || conf->iothread_vq_mapping) {
        if (bus && bus->no_notifiers) {
            error_setg(errp, "device is incompatible with iothread "
                       "(transport does not support notifiers)");
            return NULL;
        }
        if (!conf->ioeventfd) {
            error_setg(errp, "ioeventfd is required for iothread");
            return NULL;
        }
    }
    if (conf->iothread_vq_mapping &&
        !validate_iothread_vq_mapping(conf, errp)) {
        return NULL;
    }
    if (conf->iothread && !iothread_by_id(conf->iothread)) {
        /* Where QEMU differs: QEMU's iothread= is a QOM link, whose own
         * lookup reports a missing object. */
        error_setg(errp, "IOThread \"%s\" object does not exist",
                   conf->iothread);
        return NULL;
    }
    ctxs = aiolab_xcalloc(nq, sizeof(*ctxs));
    for (uint16_t i = 0; i < nq; i++) {
        ctxs[i] = qemu_get_aio_context();
    }
    if (conf->iothread) {
        AioContext *ctx =
            iothread_get_aio_context(iothread_by_id(conf->iothread));

        for (uint16_t i = 0; i < nq; i++) {
            ctxs[i] = ctx;
        }
    }
    for (size_t t = 0; t < conf->iothread_vq_mapping_len; t++) {
        const IOThreadVirtQueueMapping *m = &conf->iothread_vq_mapping[t];
        AioContext *ctx = iothread_get_aio_context(iothread_by_id(m->iothread));

        if (m->vqs) {               /* explicit */
            for (size_t k = 0; k < m->n_vqs; k++) {
                ctxs[m->vqs[k]] = ctx;
            }
        } else {                    /* round-robin: vq i -> entry i mod n */
            for (size_t i = t; i < nq; i += conf->iothread_vq_mapping_len) {
                ctxs[i] = ctx;
            }
        }
    }
    return ctxs;
}

/* --- features, configuration space, status, reset ---------------------------- */

static VirtIOBlock *VIRTIO_BLK(VirtIODevice *vdev)
{
    return (VirtIOBlock *)vdev;
}

static uint64_t virtio_blk_get_features(VirtIODevice *vdev)
{
    VirtIOBlock *s = VIRTIO_BLK(vdev);
    uint64_t f = (1ull << VIRTIO_BLK_F_SEG_MAX) |
                 (1ull << VIRTIO_BLK_F_BLK_SIZE) |
                 (1ull << VIRTIO_BLK_F_TOPOLOGY);

    /* FLUSH: a volatile cache the guest must flush (QEMU offers it when
     * the cache is writeback or the guest may turn it on: CONFIG_WCE). */
    if (s->conf.write_cache || s->conf.config_wce) {
        f |= 1ull << VIRTIO_BLK_F_FLUSH;
    }
    if (s->conf.config_wce) {
        f |= 1ull << VIRTIO_BLK_F_CONFIG_WCE;
    }
    if (bdrv_is_read_only(blk_bs(s->blk))) {
        f |= 1ull << VIRTIO_BLK_F_RO;
    }
    if (s->conf.num_queues > 1) {
        f |= 1ull << VIRTIO_BLK_F_MQ;
    }
    if (s->conf.discard) {
        f |= 1ull << VIRTIO_BLK_F_DISCARD;
    }
    if (s->conf.write_zeroes) {
        f |= 1ull << VIRTIO_BLK_F_WRITE_ZEROES;
    }
    return f;
}

static void virtio_blk_update_config(VirtIODevice *vdev, uint8_t *config)
{
    VirtIOBlock *s = VIRTIO_BLK(vdev);
    struct virtio_blk_config c;
    int64_t len = blk_getlength(s->blk);
    uint32_t lbs = s->conf.logical_block_size;

    memset(&c, 0, sizeof(c));
    stq_le_p(&c.capacity, len > 0 ? (uint64_t)len >> VIRTIO_BLK_SECTOR_BITS
                                  : 0);
    /* Two descriptors carry the header and the status. */
    stl_le_p(&c.seg_max, s->conf.queue_size - 2);
    stl_le_p(&c.blk_size, lbs);
    c.physical_block_exp = __builtin_ctz(s->conf.physical_block_size / lbs);
    c.wce = qatomic_read(&s->wce);
    stw_le_p(&c.num_queues, s->conf.num_queues);
    stl_le_p(&c.max_discard_sectors, s->conf.max_discard_sectors);
    stl_le_p(&c.max_discard_seg, 1);
    stl_le_p(&c.discard_sector_alignment, lbs >> VIRTIO_BLK_SECTOR_BITS);
    stl_le_p(&c.max_write_zeroes_sectors, s->conf.max_write_zeroes_sectors);
    stl_le_p(&c.max_write_zeroes_seg, 1);
    c.write_zeroes_may_unmap = 1;
    memcpy(config, &c, vdev->config_len);
}

static void virtio_blk_set_config(VirtIODevice *vdev, const uint8_t *config)
{
    const struct virtio_blk_config *c = (const void *)config;

    /* The one writable field: writeback (1) or writethrough (0). */
    qatomic_set(&VIRTIO_BLK(vdev)->wce, c->wce != 0);
}

static void virtio_blk_set_status(VirtIODevice *vdev, uint8_t status)
{
    VirtIOBlock *s = VIRTIO_BLK(vdev);

    if (!(status & VIRTIO_CONFIG_S_DRIVER_OK)) {
        return;
    }
    /* A driver that cannot toggle the cache gets what it can flush: a
     * writeback cache only if it negotiated FLUSH. */
    if (!virtio_vdev_has_feature(vdev, VIRTIO_BLK_F_CONFIG_WCE)) {
        qatomic_set(&s->wce,
                    virtio_vdev_has_feature(vdev, VIRTIO_BLK_F_FLUSH));
    }
}

static void virtio_blk_reset(VirtIODevice *vdev)
{
    VirtIOBlock *s = VIRTIO_BLK(vdev);

    AIOLAB_ASSERT(!s->ioeventfd_started, "virtio-blk reset with ioeventfd "
                  "started");
    blk_drain(s->blk);
    /* After the drain: completions during it may have parked more. */
    virtio_blk_drop_parked(s);
    qatomic_set(&s->wce, s->conf.write_cache);
}

/* --- ioeventfd ------------------------------------------------------------------ */

static void ioeventfd_attach(VirtIOBlock *s)
{
    for (uint16_t i = 0; i < s->conf.num_queues; i++) {
        virtio_queue_aio_attach_host_notifier(
            virtio_get_queue(&s->parent_obj, i), s->vq_aio_context[i]);
    }
}

static void ioeventfd_detach(VirtIOBlock *s)
{
    for (uint16_t i = 0; i < s->conf.num_queues; i++) {
        virtio_queue_aio_detach_host_notifier(
            virtio_get_queue(&s->parent_obj, i), s->vq_aio_context[i]);
    }
}

static int virtio_blk_start_ioeventfd(VirtIODevice *vdev)
{
    VirtIOBlock *s = VIRTIO_BLK(vdev);
    uint16_t nvqs = s->conf.num_queues;
    Error *local_err = NULL;
    int r;

    if (s->ioeventfd_started || s->ioeventfd_starting) {
        return 0;
    }
    s->ioeventfd_starting = true;
    /* Guest notifiers (irqfds): the core keeps one per queue for good. */
    for (uint16_t i = 0; i < nvqs; i++) {
        r = virtio_bus_set_host_notifier(vdev, i, true);
        if (r != 0) {
            error_report("virtio-blk failed to set host notifier (%d)", r);
            while (i--) {
                virtio_bus_set_host_notifier(vdev, i, false);
                virtio_bus_cleanup_host_notifier(vdev, i);
            }
            s->ioeventfd_disabled = true;
            s->ioeventfd_starting = false;
            return -ENOSYS;
        }
    }
    /*
     * Co-locate the BlockBackend with queue 0, for block jobs and the
     * like.  It drains; failing is fine (another user keeps it elsewhere):
     * the multiqueue block layer runs requests in any context.
     */
    r = blk_set_aio_context(s->blk, s->vq_aio_context[0], &local_err);
    if (r < 0) {
        warn_report("%s", error_get_pretty(local_err));
        error_free(local_err);
    }
    /* Only now: during the drain above, drained_end must not attach. */
    s->ioeventfd_starting = false;
    qatomic_store_release(&s->ioeventfd_started, true);
    /* Drained now?  Then drained_end attaches (and kicks) later. */
    if (!blk_in_drain(s->blk)) {
        ioeventfd_attach(s);
    }
    return 0;
}

static void nothing_bh(void *opaque)
{
}

/*
 * Let every queue's context finish what it is running.  A completion in
 * an IOThread drops the BlockBackend's in-flight count inside its
 * callback, but the irqfd write it deferred (virtio_notify_irqfd's
 * defer_call) happens when the surrounding section ends - after the
 * thread-pool or io_uring completion handler returns - so a drain can
 * end in between.  A oneshot BH in that context runs only after the
 * handler, so once it has run nothing there reads a guest notifier any
 * more, and the caller may close it or free the queues.
 */
static void quiesce_vq_contexts(VirtIOBlock *s)
{
    for (uint16_t i = 0; i < s->conf.num_queues; i++) {
        AioContext *ctx = s->vq_aio_context[i];
        uint16_t j;

        for (j = 0; j < i && s->vq_aio_context[j] != ctx; j++) {
        }
        if (j == i && ctx != qemu_get_aio_context()) {
            aio_wait_bh_oneshot(ctx, nothing_bh, NULL);
        }
    }
}

/* Context: a BH in the vq's AioContext. */
static void ioeventfd_stop_vq_bh(void *opaque)
{
    VirtQueue *vq = opaque;

    virtio_queue_aio_detach_host_notifier(vq, qemu_get_current_aio_context());
    /* A kick may have come after the last dispatch: handle it here, in
     * the queue's own thread, while it is still the queue's home. */
    virtio_queue_host_notifier_read(virtio_queue_get_host_notifier(vq));
}

static void virtio_blk_stop_ioeventfd(VirtIODevice *vdev)
{
    VirtIOBlock *s = VIRTIO_BLK(vdev);
    uint16_t nvqs = s->conf.num_queues;
    bool *pending, any = false;

    if (!s->ioeventfd_started || s->ioeventfd_stopping) {
        return;
    }
    if (s->ioeventfd_disabled) {        /* better luck next time */
        s->ioeventfd_disabled = false;
        qatomic_set(&s->ioeventfd_started, false);
        return;
    }
    s->ioeventfd_stopping = true;
    if (!blk_in_drain(s->blk)) {        /* drained: already detached */
        for (uint16_t i = 0; i < nvqs; i++) {
            aio_wait_bh_oneshot(s->vq_aio_context[i], ioeventfd_stop_vq_bh,
                                virtio_get_queue(vdev, i));
        }
    }
    pending = aiolab_xcalloc(nvqs, sizeof(bool));
    for (uint16_t i = 0; i < nvqs; i++) {
        virtio_bus_set_host_notifier(vdev, i, false);
    }
    for (uint16_t i = 0; i < nvqs; i++) {
        pending[i] = virtio_bus_cleanup_host_notifier(vdev, i);
        any |= pending[i];
    }
    /* Before draining, so that drained_begin/end stop (de)attaching. */
    qatomic_set(&s->ioeventfd_started, false);
    /* In-flight I/O and restart BHs. */
    blk_drain(s->blk);
    /*
     * A kick that slipped in between the per-vq last read and unassign.
     * Where QEMU differs: QEMU handles it inside the cleanup, before the
     * drain, in the main thread - while the queue's IOThread may still be
     * completing requests on the same ring.  aiolab waits for the drain,
     * so each ring has one thread at a time, then handles it inline.
     */
    if (any) {
        for (uint16_t i = 0; i < nvqs; i++) {
            if (pending[i]) {
                virtio_blk_handle_vq(s, virtio_get_queue(vdev, i));
            }
        }
        blk_drain(s->blk);
    }
    free(pending);
    /*
     * The drain ended, but a queue's IOThread may still be between its
     * last completion and that completion's deferred irqfd write: wait
     * for it, so that once stop returns no other thread touches the
     * guest notifiers (a transport may close or replace them: the
     * vhost-user export on disconnect or SET_VRING_CALL, every user in
     * virtio_blk_free).  Where QEMU differs: QEMU 9.0's stop does not
     * wait for the queues' contexts here.
     */
    quiesce_vq_contexts(s);
    /* Back to the main loop, unless another user keeps it elsewhere or
     * the device was told to stay (an export: keep_aio_context). */
    if (!s->conf.keep_aio_context) {
        blk_set_aio_context(s->blk, qemu_get_aio_context(), NULL);
    }
    s->ioeventfd_stopping = false;
}

/* --- BlockDevOps ------------------------------------------------------------------ */

static void virtio_blk_drained_begin(void *opaque)
{
    VirtIOBlock *s = opaque;

    if (qatomic_read(&s->ioeventfd_started)) {
        ioeventfd_detach(s);
    }
}

static void virtio_blk_drained_end(void *opaque)
{
    VirtIOBlock *s = opaque;

    if (qatomic_read(&s->ioeventfd_started)) {
        ioeventfd_attach(s);
    }
}

/*
 * The configuration interrupt needs the BQL, and resize_cb may run in an
 * IOThread: bounce to the main loop.  Where QEMU differs: QEMU schedules
 * a oneshot BH; aiolab's BH belongs to the device, so unrealize can
 * delete it if it is still pending (no use after free).
 */
static void virtio_resize_bh(void *opaque)
{
    virtio_notify_config(opaque);
}

static void virtio_blk_resize(void *opaque)
{
    VirtIOBlock *s = opaque;

    qemu_bh_schedule(s->resize_bh);
}

static const BlockDevOps virtio_block_ops = {
    .resize_cb = virtio_blk_resize,
    .drained_begin = virtio_blk_drained_begin,
    .drained_end = virtio_blk_drained_end,
    /* No drained_poll: a drain waits for the BlockBackend's in_flight. */
};

static const VirtioDeviceClass virtio_blk_class = {
    .name = "virtio-blk",
    .get_features = virtio_blk_get_features,
    .get_config = virtio_blk_update_config,
    .set_config = virtio_blk_set_config,
    .set_status = virtio_blk_set_status,
    .reset = virtio_blk_reset,
    .start_ioeventfd = virtio_blk_start_ioeventfd,
    .stop_ioeventfd = virtio_blk_stop_ioeventfd,
};

/* --- realize / unrealize ----------------------------------------------------------- */

VirtIOBlock *virtio_blk_new(const VirtIOBlkConf *conf_in, GuestMemory *mem,
                            const VirtioBusOps *bus, void *bus_opaque,
                            Error **errp)
{
    VirtIOBlkConf conf = *conf_in;
    AioContext **ctxs;
    VirtIOBlock *s;
    uint32_t config_len;

    GLOBAL_STATE_CODE();
    REQUIRE_NONNULL(mem);
    if (!check_conf(&conf, errp)) {
        return NULL;
    }
    ctxs = vq_aio_context_init(&conf, bus, errp);
    if (!ctxs) {
        return NULL;
    }
    s = aiolab_xcalloc(1, sizeof(*s));
    s->id = conf.id ? aiolab_xstrdup(conf.id) : NULL;
    s->serial = conf.serial ? aiolab_xstrdup(conf.serial) : NULL;
    /* The mapping is only needed at realize; keep no dangling pointers. */
    conf.id = s->id;
    conf.serial = s->serial;
    conf.iothread = NULL;
    conf.iothread_vq_mapping = NULL;
    conf.iothread_vq_mapping_len = 0;
    s->conf = conf;
    s->blk = conf.blk;
    s->sector_mask = conf.logical_block_size / VIRTIO_BLK_SECTOR_SIZE - 1;
    s->vq_aio_context = ctxs;
    s->wce = conf.write_cache;
    s->rq_tail = &s->rq;
    pthread_mutex_init(&s->rq_lock, NULL);

    config_len = conf.write_zeroes ? VIRTIO_BLK_CFG_SIZE_WZ
               : conf.discard ? VIRTIO_BLK_CFG_SIZE_DISCARD
               : VIRTIO_BLK_CFG_SIZE_MIN;
    virtio_init(&s->parent_obj, &virtio_blk_class, config_len, mem, bus,
                bus_opaque);
    s->parent_obj.use_ioeventfd = conf.ioeventfd;
    for (uint16_t i = 0; i < conf.num_queues; i++) {
        virtio_add_queue(&s->parent_obj, conf.queue_size,
                         virtio_blk_handle_output);
    }
    /* One coroutine per request in flight, half the rings' worth. */
    qemu_coroutine_inc_pool_size(conf.num_queues * conf.queue_size / 2);
    if (!virtio_device_ioeventfd_enabled(&s->parent_obj)) {
        s->ioeventfd_disabled = true;
    }
    s->resize_bh = aio_bh_new(qemu_get_aio_context(), virtio_resize_bh,
                              &s->parent_obj);
    blk_set_dev_ops(s->blk, &virtio_block_ops, s);
    return s;
}

void virtio_blk_free(VirtIOBlock *s)
{
    if (!s) {
        return;
    }
    GLOBAL_STATE_CODE();
    virtio_device_stop_ioeventfd(&s->parent_obj);
    blk_drain(s->blk);
    virtio_blk_drop_parked(s);
    blk_set_dev_ops(s->blk, NULL, NULL);
    qemu_bh_delete(s->resize_bh);
    qemu_coroutine_dec_pool_size(s->conf.num_queues * s->conf.queue_size / 2);
    virtio_cleanup(&s->parent_obj);
    pthread_mutex_destroy(&s->rq_lock);
    free(s->vq_aio_context);
    free(s->id);
    free(s->serial);
    free(s);
}

/* --- accessors ----------------------------------------------------------------------- */

VirtIODevice *aiolab_virtio_blk_get_vdev(VirtIOBlock *s)
{
    REQUIRE_NONNULL(s);
    return &s->parent_obj;
}

AioContext *aiolab_virtio_blk_get_vq_aio_context(VirtIOBlock *s, int n)
{
    REQUIRE_NONNULL(s);
    AIOLAB_REQUIRE(n >= 0 && n < s->conf.num_queues, "got queue %d of a "
                   "device with %u queues", n, s->conf.num_queues);
    return s->vq_aio_context[n];
}

unsigned aiolab_virtio_blk_ioeventfd_state(VirtIOBlock *s)
{
    REQUIRE_NONNULL(s);
    return (qatomic_read(&s->ioeventfd_started) ?
                AIOLAB_VIRTIO_BLK_IOEVENTFD_STARTED : 0) |
           (qatomic_read(&s->ioeventfd_starting) ?
                AIOLAB_VIRTIO_BLK_IOEVENTFD_STARTING : 0) |
           (qatomic_read(&s->ioeventfd_stopping) ?
                AIOLAB_VIRTIO_BLK_IOEVENTFD_STOPPING : 0) |
           (qatomic_read(&s->ioeventfd_disabled) ?
                AIOLAB_VIRTIO_BLK_IOEVENTFD_DISABLED : 0);
}

void aiolab_virtio_blk_get_stats(VirtIOBlock *s, AiolabVirtIOBlkStats *st)
{
    REQUIRE_NONNULL(s);
    st->reads = qatomic_read(&s->stats.reads);
    st->writes = qatomic_read(&s->stats.writes);
    st->flushes = qatomic_read(&s->stats.flushes);
    st->get_ids = qatomic_read(&s->stats.get_ids);
    st->discards = qatomic_read(&s->stats.discards);
    st->write_zeroes = qatomic_read(&s->stats.write_zeroes);
    st->unsupported = qatomic_read(&s->stats.unsupported);
    st->ioerrors = qatomic_read(&s->stats.ioerrors);
    st->submits_rw = qatomic_read(&s->stats.submits_rw);
    st->merged = qatomic_read(&s->stats.merged);
    st->parked = qatomic_read(&s->stats.parked);
}
