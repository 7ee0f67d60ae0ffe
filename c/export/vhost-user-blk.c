/* SPDX-License-Identifier: MIT */
/*
 * export/vhost-user-blk.c - the vhost-user-blk export (QEMU's
 * block/export/vhost-user-blk-server.c): the toy machine's virtio-blk
 * device, unchanged, served to a real QEMU over vhost-user.
 *
 *   QEMU + Linux guest                         aiolab-storage-daemon
 *   ------------------                         ---------------------
 *   virtio_blk driver
 *     | writes descs/avail in guest RAM  ====  the same pages (memfd)
 *     | kick: notify register                  host notifier (the kick fd)
 *     |   --> ioeventfd ------------------->   in the queue's AioContext:
 *     |                                          virtio_blk_handle_vq()
 *     |                                          virtqueue_pop(), parse,
 *     |                                          blk_aio_preadv/pwritev
 *     |                                        completion: used ring,
 *     |   <-- irqfd (the call fd) ----------     virtio_notify_irqfd()
 *   interrupt, reads the used ring
 *
 * What this file adds to the device: the options, the device's own
 * BlockBackend on the node (behind a read-only filter for writable=off,
 * so the block layer refuses writes with -EPERM and the device offers
 * VIRTIO_BLK_F_RO, as QEMU's missing write permission does), the vhost-
 * user server as its transport, and resubmitting requests the in-flight
 * log names after a reconnect.  The request path, merging, FLUSH with a
 * write-back cache (write_cache on, CONFIG_WCE offered), placement of
 * queues in IOThreads: all c/hw/virtio-blk*.c.
 *
 * Options: addr.type=unix, addr.path=PATH, num-queues=N (1),
 * logical-block-size=B (512), and - an aiolab extension in the syntax of
 * virtio-blk's property - iothread-vq-mapping.0.iothread=ID0,
 * iothread-vq-mapping.1.iothread=ID1,...: queue i in IOThread i mod n.
 * iothread=ID (the framework's) puts every queue in that IOThread.
 *
 * Where QEMU differs: QEMU 9.0's export runs every queue in the export's
 * one AioContext (no vq mapping; Debian's 7.2 the same), offers
 * VIRTIO_BLK_F_FLUSH always and reports the cache through config.wce, and
 * parses its own requests (vu_blk_process_req) instead of reusing
 * hw/block/virtio-blk.c; its serial is fixed ("vhost_user_blk"), aiolab's
 * is the export id.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "block/block_int.h"
#include "export/export-int.h"
#include "export/vhost-user-server.h"
#include "hw/virtio-blk-internal.h"

#define VU_BLK_MAX_QUEUES   256     /* the ring index is 8 bits on the wire */
#define VU_BLK_MAX_MAPPING  16

typedef struct VuBlkExport {
    BlockExport common;             /* first: the framework's part */
    BlockBackend *blk;              /* the device's, on the node or filter */
    GuestMemory *mem;
    VuServer *server;
    VirtIOBlock *vblk;
    VuDevOps ops;
} VuBlkExport;

static const char *const vu_blk_options[] = {
    "addr.type", "addr.path", "num-queues", "logical-block-size",
    "iothread-vq-mapping.0.iothread", "iothread-vq-mapping.1.iothread",
    "iothread-vq-mapping.2.iothread", "iothread-vq-mapping.3.iothread",
    "iothread-vq-mapping.4.iothread", "iothread-vq-mapping.5.iothread",
    "iothread-vq-mapping.6.iothread", "iothread-vq-mapping.7.iothread",
    "iothread-vq-mapping.8.iothread", "iothread-vq-mapping.9.iothread",
    "iothread-vq-mapping.10.iothread", "iothread-vq-mapping.11.iothread",
    "iothread-vq-mapping.12.iothread", "iothread-vq-mapping.13.iothread",
    "iothread-vq-mapping.14.iothread", "iothread-vq-mapping.15.iothread",
    NULL
};

/* --- writable=off: a read-only filter in front of the node ---------------- */

static int vu_blk_ro_open(BlockDriverState *bs, BlockOpts *opts, int flags,
                          Error **errp)
{
    return bdrv_open_child_ref(bs, opts, "file", true, errp) ? 0 : -EINVAL;
}

static int64_t vu_blk_ro_getlength(BlockDriverState *bs)
{
    return bs->file ? bdrv_getlength(bs->file->bs) : -ENOMEDIUM;
}

static int coroutine_fn vu_blk_ro_preadv(BlockDriverState *bs, int64_t offset,
                                         int64_t bytes, QEMUIOVector *qiov,
                                         BdrvRequestFlags flags)
{
    return bdrv_co_preadv(bs->file, offset, bytes, qiov, flags);
}

/* Opened without BDRV_O_RDWR: the block layer fails every write, discard
 * and write-zeroes before they reach a driver. */
static const BlockDriver bdrv_vu_blk_ro = {
    .format_name = "vhost-user-blk-ro",
    .is_filter = true,
    .bdrv_open = vu_blk_ro_open,
    .bdrv_getlength = vu_blk_ro_getlength,
    .bdrv_co_preadv = vu_blk_ro_preadv,
};

/* --- what the server asks of the device ------------------------------------- */

static AioContext *vu_blk_queue_ctx(void *opaque, int n)
{
    VuBlkExport *v = opaque;

    return aiolab_virtio_blk_get_vq_aio_context(v->vblk, n);
}

/*
 * In @vq's home thread, the device running: the chains a previous
 * back-end popped and never completed, handled as if popped now (what
 * virtio_blk_handle_vq does for a popped chain; the in-flight log already
 * counts them, so they are taken by head, not from the avail ring).
 */
static void vu_blk_resubmit(void *opaque, VirtQueue *vq,
                            const uint16_t *heads, unsigned int n)
{
    VuBlkExport *v = opaque;
    MultiReqBuffer mrb = { .num_reqs = 0 };

    defer_call_begin();
    for (unsigned int i = 0; i < n; i++) {
        VirtIOBlockReq *req = aiolab_virtqueue_pop_head(
            vq, heads[i], sizeof(VirtIOBlockReq));

        if (!req) {
            break;              /* a bad chain broke the device */
        }
        req->dev = v->vblk;
        req->vq = vq;
        if (virtio_blk_handle_request(req, &mrb)) {
            virtqueue_detach_element(vq, &req->elem, 0);
            virtio_blk_free_request(req);
            break;
        }
    }
    virtio_blk_submit_multireq(v->vblk, &mrb);
    defer_call_end();
}

/* --- options ------------------------------------------------------------------- */

/* The id of the IOThread whose context is @ctx (the framework's
 * iothread=), or NULL; free() it. */
static char *vu_blk_iothread_of(AioContext *ctx)
{
    IOThread *all[64];
    size_t n = aiolab_iothread_list(all, ARRAY_SIZE(all));

    for (size_t i = 0; i < n && i < ARRAY_SIZE(all); i++) {
        if (iothread_get_aio_context(all[i]) == ctx) {
            return iothread_get_id(all[i]);
        }
    }
    return NULL;
}

static bool vu_blk_read_opts(BlockExportOptions *opts, VirtIOBlkConf *conf,
                             IOThreadVirtQueueMapping *map, size_t *nmap,
                             const char **path, Error **errp)
{
    const char *type = blk_exp_opt_get(opts, "addr.type");
    int64_t nq = 1, lbs = 512;

    *path = blk_exp_opt_get(opts, "addr.path");
    if (!type || !*path) {
        error_setg(errp, "Parameter 'addr.%s' is missing",
                   type ? "path" : "type");
        return false;
    }
    if (strcmp(type, "unix") != 0) {
        error_setg(errp, "vhost-user-blk exports listen on unix sockets "
                   "only (addr.type=unix), not '%s'", type);
        return false;
    }
    if (!blk_exp_opt_get_int(opts, "num-queues", 1, VU_BLK_MAX_QUEUES, &nq,
                             errp) ||
        !blk_exp_opt_get_int(opts, "logical-block-size", 512, 32768, &lbs,
                             errp)) {
        return false;
    }
    if (lbs & (lbs - 1)) {
        error_setg(errp, "logical-block-size must be a power of 2 between "
                   "512 and 32768");
        return false;
    }
    conf->num_queues = nq;
    conf->logical_block_size = conf->physical_block_size = lbs;
    *nmap = 0;
    for (int i = 0; i < VU_BLK_MAX_MAPPING; i++) {
        char key[48];
        const char *id;

        snprintf(key, sizeof(key), "iothread-vq-mapping.%d.iothread", i);
        id = blk_exp_opt_get(opts, key);
        if (id && *nmap != (size_t)i) {
            error_setg(errp, "iothread-vq-mapping.%d is missing before "
                       "iothread-vq-mapping.%d", (int)*nmap, i);
            return false;
        }
        if (id) {
            map[(*nmap)++] = (IOThreadVirtQueueMapping) { .iothread = id };
        }
    }
    return true;
}

/* --- the driver --------------------------------------------------------------- */

/* The device's BlockBackend, on the node, or on a read-only filter over
 * it for writable=off. */
static BlockBackend *vu_blk_backend(BlockExport *exp, Error **errp)
{
    BlockDriverState *bs = blk_bs(exp->blk), *ro = NULL;
    BlockBackend *blk;
    char opts[128];
    int ret;

    if (!exp->writable) {
        snprintf(opts, sizeof(opts), "file=%s", bdrv_get_node_name(bs));
        ro = bdrv_new_open_driver(&bdrv_vu_blk_ro, opts, 0, errp);
        if (!ro) {
            return NULL;
        }
        bs = ro;
    }
    blk = blk_new(bdrv_get_aio_context(bs));
    ret = blk_insert_bs(blk, bs, errp);
    if (ro) {
        bdrv_unref(ro);         /* the BlockBackend holds it now */
    }
    if (ret < 0) {
        blk_unref(blk);
        return NULL;
    }
    return blk;
}

static void vu_blk_exp_teardown(VuBlkExport *v)
{
    vu_server_stop(v->server);
    virtio_blk_free(v->vblk);
    vu_server_free(v->server);
    aiolab_guest_mem_free(v->mem);
    if (v->blk) {
        blk_unref(v->blk);
    }
    v->vblk = NULL;
    v->server = NULL;
    v->mem = NULL;
    v->blk = NULL;
}

static int vu_blk_exp_create(BlockExport *exp, BlockExportOptions *opts,
                             Error **errp)
{
    VuBlkExport *v = container_of(exp, VuBlkExport, common);
    IOThreadVirtQueueMapping map[VU_BLK_MAX_MAPPING];
    size_t nmap;
    VirtIOBlkConf conf;
    const char *path;
    char name[160], *iothread;

    virtio_blk_conf_init(&conf);
    if (!vu_blk_read_opts(opts, &conf, map, &nmap, &path, errp)) {
        return -EINVAL;
    }
    conf.id = exp->id;
    conf.serial = exp->id;
    /* Any ring size a front-end picks (QEMU's default is 128). */
    conf.queue_size = VIRTQUEUE_MAX_SIZE;
    conf.write_cache = !exp->writethrough;
    conf.rerror = conf.werror = BLOCKDEV_ON_ERROR_REPORT;
    /* Front-ends come and go; the node stays in the export's IOThread
     * (QEMU's export keeps its AioContext; another export of the node -
     * NBD in the same IOThread - must not be dragged to the main loop
     * at every disconnect or guest reset). */
    conf.keep_aio_context = true;
    conf.iothread = iothread = vu_blk_iothread_of(exp->ctx);
    if (nmap) {
        conf.iothread_vq_mapping = map;
        conf.iothread_vq_mapping_len = nmap;
    }
    v->blk = vu_blk_backend(exp, errp);
    if (!v->blk) {
        free(iothread);
        return -EINVAL;
    }
    conf.blk = v->blk;
    v->mem = aiolab_guest_mem_new();
    snprintf(name, sizeof(name), "vhost-user-blk export '%s'", exp->id);
    v->server = vu_server_new(name, path, v->mem, errp);
    if (v->server) {
        v->vblk = virtio_blk_new(&conf, v->mem, vu_server_bus_ops(),
                                 v->server, errp);
    }
    free(iothread);             /* only needed at realize */
    if (!v->vblk) {
        vu_blk_exp_teardown(v);
        return -EINVAL;
    }
    v->ops = (VuDevOps) {
        .queue_ctx = vu_blk_queue_ctx,
        .resubmit = vu_blk_resubmit,
        .extra_features = exp->writable ? 0 : 1ull << VIRTIO_BLK_F_RO,
    };
    vu_server_set_device(v->server, aiolab_virtio_blk_get_vdev(v->vblk),
                         &v->ops, v);
    vu_server_start(v->server);
    return 0;
}

static void vu_blk_exp_request_shutdown(BlockExport *exp)
{
    VuBlkExport *v = container_of(exp, VuBlkExport, common);

    /* Disconnects the front-end: the device is stopped and drained. */
    vu_server_stop(v->server);
}

static void vu_blk_exp_delete(BlockExport *exp)
{
    vu_blk_exp_teardown(container_of(exp, VuBlkExport, common));
}

const BlockExportDriver blk_exp_vhost_user_blk = {
    .type = "vhost-user-blk",
    .instance_size = sizeof(VuBlkExport),
    .options = vu_blk_options,
    .create = vu_blk_exp_create,
    .delete = vu_blk_exp_delete,
    .request_shutdown = vu_blk_exp_request_shutdown,
};
