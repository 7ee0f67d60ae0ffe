/* SPDX-License-Identifier: MIT */
/*
 * hw/virtio-blk.c - the virtio-blk request path (QEMU's
 * hw/block/virtio-blk.c: handle_vq, handle_request, the multi-request
 * merging, completion and error actions, and the restart of requests
 * stopped by rerror/werror=stop).  Realize, ioeventfd and drains are in
 * virtio-blk-device.c.
 *
 * A request's life:
 *
 *   kick --> handle_vq (queue's home thread; one defer_call section)
 *              | virtqueue_pop -> VirtIOBlockReq {elem, ...}
 *              v
 *            handle_request: headers -------- malformed --> virtio_error,
 *              |  type?                                     detach, stop
 *              +- IN/OUT ---- range bad --> IOERR (completed now)
 *              |      \------ ok --> MultiReqBuffer (<= 32, one direction)
 *              +- FLUSH ----- submit pending writes first --> blk_aio_flush
 *              +- GET_ID ---- copy the serial --> OK (completed now)
 *              +- DISCARD / WRITE_ZEROES -- checks --> blk_aio_pdiscard/
 *              |                                      pwrite_zeroes
 *              +- other ----- UNSUPP (completed now)
 *            end of pass: submit_multireq: sort by sector, merge
 *              contiguous runs, one blk_aio_preadv/pwritev per run
 *              |
 *   block layer completes in the submitter's AioContext
 *              v
 *            rw_complete: for each request of the run:
 *              ok -----------------------------> status OK
 *              error: werror/rerror action --+-- report --> IOERR
 *                                            +-- ignore --> OK
 *                                            +-- stop ----> parked on
 *                                                s->rq; VM stop hook
 *            req_complete: status byte, virtqueue_push(in_len),
 *              notify: irqfd (deferred) in an IOThread, else direct
 *
 *   resume (virtio_blk_dma_restart_cb): parked requests, by queue, run
 *   handle_request again in a oneshot BH in their queue's AioContext.
 *
 * Where QEMU differs: QEMU strips the header and status in place from
 * the element's iovecs (iov_discard_front_undoable) and undoes it for
 * restarts; aiolab never edits the element and builds the data vector
 * beside it, so a parked request needs no undo.  QEMU's max_iov and
 * max_transfer come from the driver (blk_get_max_iov/_transfer); aiolab
 * uses IOV_MAX and BDRV_REQUEST_MAX_SECTORS.  No block accounting.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include "hw/virtio-blk-internal.h"
#include "util/mem.h"

#define MAX_TRANSFER ((int64_t)BDRV_REQUEST_MAX_SECTORS << 9)
#define MAX_IOV      IOV_MAX

void virtio_blk_free_request(VirtIOBlockReq *req)
{
    qemu_iovec_destroy(&req->qiov);
    qemu_iovec_destroy(&req->mr_qiov);
    free(req);
}

static uint32_t req_type(VirtIOBlockReq *req)
{
    return ldl_le_p(&req->out.type);
}

static void virtio_blk_req_complete(VirtIOBlockReq *req, uint8_t status)
{
    VirtIOBlock *s = req->dev;
    VirtIODevice *vdev = &s->parent_obj;

    aiolab_trace_mark("virtio_blk_req_complete", status);
    if (status == VIRTIO_BLK_S_IOERR) {
        vblk_stat_add(&s->stats.ioerrors, 1);
    } else if (status == VIRTIO_BLK_S_UNSUPP) {
        vblk_stat_add(&s->stats.unsupported, 1);
    }
    /* The status byte is guest memory; it is published by push's release
     * store of used.idx. */
    *req->in = status;
    virtqueue_push(req->vq, &req->elem, req->in_len);
    /*
     * Chosen by thread, not by ioeventfd state (QEMU commit bfa36802d170):
     * an IOThread must not touch the interrupt controller (it needs the
     * BQL), so it signals the irqfd, batched by the handle pass's
     * defer_call section; the main loop may notify directly.
     */
    if (qemu_in_iothread()) {
        virtio_notify_irqfd(vdev, req->vq);
    } else {
        virtio_notify(vdev, req->vq);
    }
}

static void complete_and_free(VirtIOBlockReq *req, uint8_t status)
{
    virtio_blk_req_complete(req, status);
    virtio_blk_free_request(req);
}

/* --- errors: rerror/werror ---------------------------------------------- */

static BlockErrorAction error_action(VirtIOBlock *s, bool is_read, int error)
{
    switch (is_read ? s->conf.rerror : s->conf.werror) {
    case BLOCKDEV_ON_ERROR_ENOSPC:
        return error == ENOSPC ? BLOCK_ERROR_ACTION_STOP
                               : BLOCK_ERROR_ACTION_REPORT;
    case BLOCKDEV_ON_ERROR_STOP:
        return BLOCK_ERROR_ACTION_STOP;
    case BLOCKDEV_ON_ERROR_IGNORE:
        return BLOCK_ERROR_ACTION_IGNORE;
    case BLOCKDEV_ON_ERROR_REPORT:
    case BLOCKDEV_ON_ERROR_AUTO:
    default:
        return BLOCK_ERROR_ACTION_REPORT;
    }
}

/*
 * Apply the error policy to a failed request.  Returns true if the
 * request was dealt with (completed with IOERR, or parked); false for
 * "ignore": the caller completes it as if it had worked.
 */
static bool virtio_blk_handle_rw_error(VirtIOBlockReq *req, int error,
                                       bool is_read)
{
    VirtIOBlock *s = req->dev;
    BlockErrorAction action = error_action(s, is_read, error);

    aiolab_trace_mark("virtio_blk_rw_error", action);
    /*
     * The event (and for "stop" the stop request) is raised first, so it
     * is queued before anything else can see the failure: the guest its
     * IOERR, a reader of the stats the parked or failed count.  QEMU
     * raises it last, but sends it at once; the machine queues it for
     * its main loop.
     */
    if (s->conf.block_io_error) {
        s->conf.block_io_error(s->conf.opaque, action, is_read, error);
    }
    if (action == BLOCK_ERROR_ACTION_STOP) {
        /* Parked whole: the element stays popped (inuse), its data vector
         * is rebuilt when it is handled again. */
        qemu_iovec_destroy(&req->qiov);
        req->mr_next = NULL;
        req->next = NULL;
        pthread_mutex_lock(&s->rq_lock);
        *s->rq_tail = req;
        s->rq_tail = &req->next;
        vblk_stat_add(&s->stats.parked, 1);
        pthread_mutex_unlock(&s->rq_lock);
    } else if (action == BLOCK_ERROR_ACTION_REPORT) {
        complete_and_free(req, VIRTIO_BLK_S_IOERR);
    }
    return action != BLOCK_ERROR_ACTION_IGNORE;
}

/* --- completions ---------------------------------------------------------- */

static void virtio_blk_rw_complete(void *opaque, int ret)
{
    VirtIOBlockReq *next = opaque;

    /* A merged run's vector was only needed for the submission. */
    qemu_iovec_destroy(&next->mr_qiov);
    while (next) {
        VirtIOBlockReq *req = next;

        next = req->mr_next;
        if (ret) {
            bool is_read = !(req_type(req) & VIRTIO_BLK_T_OUT);

            if (virtio_blk_handle_rw_error(req, -ret, is_read)) {
                continue;
            }
        }
        complete_and_free(req, VIRTIO_BLK_S_OK);
    }
}

static void virtio_blk_flush_complete(void *opaque, int ret)
{
    VirtIOBlockReq *req = opaque;

    if (ret && virtio_blk_handle_rw_error(req, -ret, false)) {
        return;
    }
    complete_and_free(req, VIRTIO_BLK_S_OK);
}

static void virtio_blk_discard_write_zeroes_complete(void *opaque, int ret)
{
    VirtIOBlockReq *req = opaque;

    if (ret && virtio_blk_handle_rw_error(req, -ret, false)) {
        return;
    }
    complete_and_free(req, VIRTIO_BLK_S_OK);
}

/* --- merging and submission ------------------------------------------------ */

static void submit_requests(VirtIOBlock *s, MultiReqBuffer *mrb, int start,
                            int num_reqs, int niov)
{
    VirtIOBlockReq *first = mrb->reqs[start];
    QEMUIOVector *qiov = &first->qiov;
    int64_t offset = first->sector_num << VIRTIO_BLK_SECTOR_BITS;

    if (num_reqs > 1) {
        /* One vector over every member's buffers; the members are chained
         * so that the one completion completes them all. */
        qemu_iovec_init(&first->mr_qiov, niov);
        for (int i = start; i < start + num_reqs; i++) {
            VirtIOBlockReq *r = mrb->reqs[i];

            qemu_iovec_concat(&first->mr_qiov, &r->qiov, 0, r->qiov.size);
            r->mr_next = i + 1 < start + num_reqs ? mrb->reqs[i + 1] : NULL;
        }
        qiov = &first->mr_qiov;
        vblk_stat_add(&s->stats.merged, num_reqs - 1);
    }
    aiolab_trace_mark("virtio_blk_submit_multireq", num_reqs);
    vblk_stat_add(&s->stats.submits_rw, 1);
    if (mrb->is_write) {
        blk_aio_pwritev(s->blk, offset, qiov,
                        qatomic_read(&s->wce) ? 0 : BDRV_REQ_FUA,
                        virtio_blk_rw_complete, first);
    } else {
        blk_aio_preadv(s->blk, offset, qiov, 0, virtio_blk_rw_complete,
                       first);
    }
}

static int compare_sector(const void *a, const void *b)
{
    const VirtIOBlockReq *ra = *(VirtIOBlockReq *const *)a;
    const VirtIOBlockReq *rb = *(VirtIOBlockReq *const *)b;

    return ra->sector_num < rb->sector_num ? -1
         : ra->sector_num > rb->sector_num;
}

void virtio_blk_submit_multireq(VirtIOBlock *s, MultiReqBuffer *mrb)
{
    int start = 0, niov = 0;
    int64_t run_sector = 0, run_bytes = 0;

    if (mrb->num_reqs == 0) {
        return;
    }
    if (mrb->num_reqs > 1) {
        qsort(mrb->reqs, mrb->num_reqs, sizeof(mrb->reqs[0]), compare_sector);
    }
    for (int i = 0; i < (int)mrb->num_reqs; i++) {
        VirtIOBlockReq *req = mrb->reqs[i];

        if (i > start) {
            bool merge = run_sector + (run_bytes >> VIRTIO_BLK_SECTOR_BITS) ==
                             req->sector_num &&
                         niov + req->qiov.niov <= MAX_IOV &&
                         run_bytes + (int64_t)req->qiov.size <= MAX_TRANSFER;

            if (!merge) {
                submit_requests(s, mrb, start, i - start, niov);
                start = i;
                niov = 0;
                run_bytes = 0;
            }
        }
        if (i == start) {
            run_sector = req->sector_num;
        }
        run_bytes += req->qiov.size;
        niov += req->qiov.niov;
    }
    submit_requests(s, mrb, start, mrb->num_reqs - start, niov);
    mrb->num_reqs = 0;
}

/* --- parsing ----------------------------------------------------------------- */

/*
 * QEMU's virtio_blk_sect_range_ok: is [sector, sector + size) a request
 * the disk can take?  Sectors are 512 bytes; the logical block size may
 * be larger, and then both ends must be aligned to it.
 */
static bool sect_range_ok(VirtIOBlock *s, uint64_t sector, uint64_t size)
{
    uint64_t nb_sectors = size >> VIRTIO_BLK_SECTOR_BITS;
    int64_t len = blk_getlength(s->blk);
    uint64_t total_sectors = len > 0 ? (uint64_t)len >> VIRTIO_BLK_SECTOR_BITS
                                     : 0;

    if (nb_sectors > BDRV_REQUEST_MAX_SECTORS) {
        return false;
    }
    if (sector & s->sector_mask) {
        return false;
    }
    if (size % s->conf.logical_block_size) {
        return false;
    }
    return sector <= total_sectors && nb_sectors <= total_sectors - sector;
}

/* Returns the status to complete with, or OK if submitted. */
static uint8_t handle_discard_write_zeroes(VirtIOBlockReq *req,
                                           const uint8_t *seg, bool is_wz)
{
    VirtIOBlock *s = req->dev;
    uint64_t sector = ldq_le_p(seg);
    uint32_t num_sectors = ldl_le_p(seg + 8);
    uint32_t flags = ldl_le_p(seg + 12);
    uint32_t max_sectors = is_wz ? s->conf.max_write_zeroes_sectors
                                 : s->conf.max_discard_sectors;
    uint64_t bytes = (uint64_t)num_sectors << VIRTIO_BLK_SECTOR_BITS;

    if (num_sectors > max_sectors || !sect_range_ok(s, sector, bytes)) {
        return VIRTIO_BLK_S_IOERR;
    }
    if (flags & ~VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP) {
        return VIRTIO_BLK_S_UNSUPP;
    }
    if (is_wz) {
        vblk_stat_add(&s->stats.write_zeroes, 1);
        blk_aio_pwrite_zeroes(s->blk, sector << VIRTIO_BLK_SECTOR_BITS, bytes,
                              flags ? BDRV_REQ_MAY_UNMAP : 0,
                              virtio_blk_discard_write_zeroes_complete, req);
    } else {
        if (flags) {
            return VIRTIO_BLK_S_UNSUPP;     /* UNMAP is for write zeroes */
        }
        vblk_stat_add(&s->stats.discards, 1);
        blk_aio_pdiscard(s->blk, sector << VIRTIO_BLK_SECTOR_BITS, bytes,
                         virtio_blk_discard_write_zeroes_complete, req);
    }
    return VIRTIO_BLK_S_OK;
}

static void handle_rw(VirtIOBlockReq *req, MultiReqBuffer *mrb,
                      QEMUIOVector *out_all, QEMUIOVector *in_all)
{
    VirtIOBlock *s = req->dev;
    bool is_write = req_type(req) & VIRTIO_BLK_T_OUT;
    uint64_t sector = ldq_le_p(&req->out.sector);

    req->sector_num = (int64_t)sector;
    if (is_write) {
        qemu_iovec_init(&req->qiov, out_all->niov);
        qemu_iovec_concat(&req->qiov, out_all, sizeof(req->out),
                          out_all->size - sizeof(req->out));
    } else {
        qemu_iovec_init(&req->qiov, in_all->niov);
        qemu_iovec_concat(&req->qiov, in_all, 0, in_all->size - 1);
    }
    if (!sect_range_ok(s, sector, req->qiov.size)) {
        complete_and_free(req, VIRTIO_BLK_S_IOERR);
        return;
    }
    vblk_stat_add(is_write ? &s->stats.writes : &s->stats.reads, 1);
    /* A batch is one direction, at most 32 requests; merging off means
     * every request goes alone. */
    if (mrb->num_reqs > 0 &&
        (mrb->num_reqs == VIRTIO_BLK_MAX_MERGE_REQS ||
         mrb->is_write != is_write || !s->conf.request_merging)) {
        virtio_blk_submit_multireq(s, mrb);
    }
    mrb->reqs[mrb->num_reqs++] = req;
    mrb->is_write = is_write;
}

int virtio_blk_handle_request(VirtIOBlockReq *req, MultiReqBuffer *mrb)
{
    VirtIOBlock *s = req->dev;
    VirtIODevice *vdev = &s->parent_obj;
    VirtQueueElement *elem = &req->elem;
    QEMUIOVector out_all, in_all;
    struct iovec *last;
    uint32_t type;

    if (elem->out_num < 1 || elem->in_num < 1) {
        virtio_error(vdev, "virtio-blk missing headers");
        return -1;
    }
    qemu_iovec_init_external(&out_all, elem->out_sg, elem->out_num);
    qemu_iovec_init_external(&in_all, elem->in_sg, elem->in_num);
    if (qemu_iovec_to_buf(&out_all, 0, &req->out, sizeof(req->out)) !=
        sizeof(req->out)) {
        virtio_error(vdev, "virtio-blk request outhdr too short");
        return -1;
    }
    last = &elem->in_sg[elem->in_num - 1];
    if (last->iov_len < sizeof(struct virtio_blk_inhdr)) {
        virtio_error(vdev, "virtio-blk request inhdr too short");
        return -1;
    }
    req->in = (uint8_t *)last->iov_base + last->iov_len - 1;
    req->in_len = in_all.size;
    type = req_type(req);

    switch (type & ~(VIRTIO_BLK_T_OUT | VIRTIO_BLK_T_BARRIER)) {
    case VIRTIO_BLK_T_IN:                   /* reads and writes */
        handle_rw(req, mrb, &out_all, &in_all);
        break;
    case VIRTIO_BLK_T_FLUSH:
        vblk_stat_add(&s->stats.flushes, 1);
        /* Writes the guest saw accepted before the flush must be in it. */
        if (mrb->is_write && mrb->num_reqs > 0) {
            virtio_blk_submit_multireq(s, mrb);
        }
        aiolab_trace_mark("virtio_blk_handle_flush", 0);
        blk_aio_flush(s->blk, virtio_blk_flush_complete, req);
        break;
    case VIRTIO_BLK_T_GET_ID: {
        const char *serial = s->serial ? s->serial : "";
        size_t n = MIN(strlen(serial) + 1,
                       MIN(in_all.size - 1, (size_t)VIRTIO_BLK_ID_BYTES));

        vblk_stat_add(&s->stats.get_ids, 1);
        qemu_iovec_from_buf(&in_all, 0, serial, n);
        complete_and_free(req, VIRTIO_BLK_S_OK);
        break;
    }
    case VIRTIO_BLK_T_DISCARD & ~VIRTIO_BLK_T_OUT:
    case VIRTIO_BLK_T_WRITE_ZEROES & ~VIRTIO_BLK_T_OUT: {
        bool is_wz = (type & ~VIRTIO_BLK_T_BARRIER) ==
                     VIRTIO_BLK_T_WRITE_ZEROES;
        size_t payload = out_all.size - sizeof(req->out);
        uint8_t seg[sizeof(struct virtio_blk_discard_write_zeroes)];
        uint8_t status;

        /* One segment only, and the OUT bit (type 10/12 are not these). */
        if (!(type & VIRTIO_BLK_T_OUT) || payload > sizeof(seg)) {
            complete_and_free(req, VIRTIO_BLK_S_UNSUPP);
            break;
        }
        if (qemu_iovec_to_buf(&out_all, sizeof(req->out), seg, sizeof(seg)) !=
            sizeof(seg)) {
            virtio_error(vdev, "virtio-blk discard/write_zeroes header too "
                         "short");
            return -1;
        }
        status = handle_discard_write_zeroes(req, seg, is_wz);
        if (status != VIRTIO_BLK_S_OK) {
            complete_and_free(req, status);
        }
        break;
    }
    default:        /* SCSI, zoned, secure erase, anything else */
        complete_and_free(req, VIRTIO_BLK_S_UNSUPP);
        break;
    }
    return 0;
}

/* --- the handle pass ------------------------------------------------------------ */

void virtio_blk_handle_vq(VirtIOBlock *s, VirtQueue *vq)
{
    MultiReqBuffer mrb = { .num_reqs = 0 };
    /* Already off means an AioContext is busy polling us: leave it so. */
    bool suppress_notifications = virtio_queue_get_notification(vq);
    VirtIOBlockReq *req;

    REQUIRE_NONNULL(s);
    aiolab_trace_begin("virtio_blk_handle_vq", virtio_get_queue_index(vq));
    defer_call_begin();
    do {
        if (suppress_notifications) {
            virtio_queue_set_notification(vq, 0);
        }
        while ((req = virtqueue_pop(vq, sizeof(VirtIOBlockReq)))) {
            req->dev = s;
            req->vq = vq;
            if (virtio_blk_handle_request(req, &mrb)) {
                /* Malformed: the device is broken; drop the element. */
                virtqueue_detach_element(vq, &req->elem, 0);
                virtio_blk_free_request(req);
                break;
            }
        }
        if (suppress_notifications) {
            virtio_queue_set_notification(vq, 1);
        }
        /* The guest may have added a request after our last pop but
         * before notifications were back on, without kicking: look again
         * (set_notification's barrier orders this re-read). */
    } while (!virtio_queue_empty(vq));
    virtio_blk_submit_multireq(s, &mrb);
    defer_call_end();
    aiolab_trace_end("virtio_blk_handle_vq", virtio_get_queue_index(vq));
}

void virtio_blk_handle_output(VirtIODevice *vdev, VirtQueue *vq)
{
    VirtIOBlock *s = (VirtIOBlock *)vdev;

    if (!s->ioeventfd_disabled && !qatomic_load_acquire(&s->ioeventfd_started)) {
        /*
         * A guest that kicks before DRIVER_OK (or a transport that had
         * not started ioeventfd): start it now.  The attach kicks every
         * queue, so this request is handled, in its proper AioContext.
         */
        virtio_device_start_ioeventfd(vdev);
        if (!s->ioeventfd_disabled) {
            return;
        }
    }
    virtio_blk_handle_vq(s, vq);
}

/* --- rerror/werror=stop: parking and restarting ----------------------------------- */

static void virtio_blk_restart_bh(void *opaque)
{
    VirtIOBlockReq *req = opaque;
    VirtIOBlock *s = req->dev;
    MultiReqBuffer mrb = { .num_reqs = 0 };

    aiolab_trace_mark("virtio_blk_restart_bh", virtio_get_queue_index(req->vq));
    defer_call_begin();
    while (req) {
        VirtIOBlockReq *next = req->next;

        req->next = NULL;
        if (virtio_blk_handle_request(req, &mrb)) {
            /* The device broke meanwhile: give these requests up. */
            for (; req; req = next) {
                next = req->next;
                virtqueue_detach_element(req->vq, &req->elem, 0);
                virtio_blk_free_request(req);
            }
            break;
        }
        req = next;
    }
    virtio_blk_submit_multireq(s, &mrb);
    defer_call_end();
    /* Taken by virtio_blk_dma_restart_cb: a drain waited for this BH. */
    blk_dec_in_flight(s->blk);
}

/* Take the whole parked list (s->rq), oldest first; s->rq empty after. */
static VirtIOBlockReq *virtio_blk_take_parked(VirtIOBlock *s)
{
    VirtIOBlockReq *req;

    pthread_mutex_lock(&s->rq_lock);
    req = s->rq;
    s->rq = NULL;
    s->rq_tail = &s->rq;
    qatomic_set(&s->stats.parked, 0);
    pthread_mutex_unlock(&s->rq_lock);
    return req;
}

void virtio_blk_dma_restart_cb(void *opaque, bool running, int state)
{
    VirtIOBlock *s = opaque;
    int nvqs = s->conf.num_queues;
    VirtIOBlockReq *req, **heads, ***tails;

    GLOBAL_STATE_CODE();
    if (!running) {
        return;
    }
    req = virtio_blk_take_parked(s);
    if (!req) {
        return;
    }
    /* Split by queue, keeping each queue's order. */
    heads = aiolab_xcalloc(nvqs, sizeof(*heads));
    tails = aiolab_xcalloc(nvqs, sizeof(*tails));
    for (int i = 0; i < nvqs; i++) {
        tails[i] = &heads[i];
    }
    while (req) {
        VirtIOBlockReq *next = req->next;
        int i = virtio_get_queue_index(req->vq);

        req->next = NULL;
        *tails[i] = req;
        tails[i] = &req->next;
        req = next;
    }
    for (int i = 0; i < nvqs; i++) {
        if (heads[i]) {
            /* In flight until the BH has run: blk_drain waits for it. */
            blk_inc_in_flight(s->blk);
            aio_bh_schedule_oneshot(s->vq_aio_context[i],
                                    virtio_blk_restart_bh, heads[i]);
        }
    }
    free(heads);
    free(tails);
}

void virtio_blk_drop_parked(VirtIOBlock *s)
{
    VirtIOBlockReq *req = virtio_blk_take_parked(s);

    while (req) {
        VirtIOBlockReq *next = req->next;

        virtqueue_detach_element(req->vq, &req->elem, 0);
        virtio_blk_free_request(req);
        req = next;
    }
}
