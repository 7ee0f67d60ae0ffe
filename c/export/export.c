/* SPDX-License-Identifier: MIT */
/*
 * export/export.c - the block export framework (QEMU's
 * block/export/export.c): option checking, the BlockBackend every export
 * serves through, the IOThread an export runs in, references, shutdown
 * and deletion.  aiolab/export.h draws an export's life.
 *
 * Threads: everything here runs in the main loop with the BQL held,
 * except blk_exp_ref/unref, which a driver calls from its export's
 * AioContext (an IOThread) when a connection comes or goes.  The last
 * unref therefore cannot free the export where it stands: it schedules
 * the deletion into the main loop, the only thread that touches the list
 * of exports (as QEMU's blk_exp_delete_bh).
 *
 * Where QEMU differs: see aiolab/export.h.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "block/block_int.h"
#include "export/export-int.h"
#include "util/mem.h"

#define RULE_EXP_REF "(an export is referenced by whoever uses it)"

struct BlockExportOptions {
    BlockOpts opts;
    const BlockExportDriver *drv;
};

/* The built-in drivers, as QEMU's blk_exp_drivers[]. */
static const BlockExportDriver *const blk_exp_drivers[] = {
    &blk_exp_nbd,
    &blk_exp_vhost_user_blk,
    NULL
};

/* The keys every export has; blk_exp_add() reads them itself. */
static const char *const common_options[] = {
    "type", "id", "node-name", "writable", "writethrough", "iothread",
    "fixed-iothread", NULL
};

/* Types QEMU knows, for a clearer error when aiolab lacks one. */
static const char *const qemu_types[] = {
    "nbd", "vhost-user-blk", "fuse", "vduse-blk", NULL
};

/* --- Main loop, BQL held -------------------------------------------- */
static BlockExport *block_exports;
static const BlockExportDriver **registered;
static size_t n_registered;
static void (*deleted_listener)(const char *id, void *opaque);
static void *deleted_opaque;

static bool str_in(const char *const *list, const char *s)
{
    for (; list && *list; list++) {
        if (!strcmp(*list, s)) {
            return true;
        }
    }
    return false;
}

static const BlockExportDriver *find_driver(const char *type)
{
    size_t i;

    for (i = 0; blk_exp_drivers[i]; i++) {
        if (!strcmp(blk_exp_drivers[i]->type, type)) {
            return blk_exp_drivers[i];
        }
    }
    for (i = 0; i < n_registered; i++) {
        if (!strcmp(registered[i]->type, type)) {
            return registered[i];
        }
    }
    return NULL;
}

bool blk_exp_driver_available(const char *type)
{
    GLOBAL_STATE_CODE();
    REQUIRE_NONNULL(type);
    return find_driver(type) != NULL;
}

void blk_exp_driver_register(const BlockExportDriver *drv)
{
    GLOBAL_STATE_CODE();
    REQUIRE_NONNULL(drv);
    AIOLAB_ASSERT(drv->type && drv->create && drv->delete &&
                  drv->request_shutdown &&
                  drv->instance_size >= sizeof(BlockExport),
                  "export driver '%s' lacks type, create, delete, "
                  "request_shutdown or a large enough instance_size",
                  drv->type ? drv->type : "?");
    AIOLAB_ASSERT(!find_driver(drv->type), "export type '%s' registered "
                  "twice", drv->type);
    registered = aiolab_xreallocarray(registered, n_registered + 1,
                                      sizeof(*registered));
    registered[n_registered++] = drv;
}

void blk_exp_set_deleted_listener(void (*fn)(const char *id, void *opaque),
                                  void *opaque)
{
    GLOBAL_STATE_CODE();
    deleted_listener = fn;
    deleted_opaque = opaque;
}

BlockExport *blk_exp_find(const char *id)
{
    BlockExport *exp;

    GLOBAL_STATE_CODE();
    REQUIRE_NONNULL(id);
    for (exp = block_exports; exp; exp = exp->next) {
        if (!strcmp(exp->id, id)) {
            return exp;
        }
    }
    return NULL;
}

BlockExport *blk_exp_next(BlockExport *exp)
{
    GLOBAL_STATE_CODE();
    return exp ? exp->next : block_exports;
}

/* QEMU's id_wellformed(): a letter, then letters, digits, '-', '.', '_'. */
static bool id_wellformed(const char *id)
{
    size_t i;

    if (!((id[0] >= 'a' && id[0] <= 'z') || (id[0] >= 'A' && id[0] <= 'Z'))) {
        return false;
    }
    for (i = 1; id[i]; i++) {
        char c = id[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_')) {
            return false;
        }
    }
    return true;
}

/* --- options ---------------------------------------------------------- */

const char *blk_exp_opt_get(BlockExportOptions *opts, const char *key)
{
    GLOBAL_STATE_CODE();
    REQUIRE_NONNULL(opts);
    AIOLAB_REQUIRE(str_in(opts->drv->options, key) ||
                   str_in(common_options, key),
                   "export driver '%s' reads option '%s', which is not in "
                   "its options table", opts->drv->type, key);
    return block_opts_get(&opts->opts, key);
}

bool blk_exp_opt_get_bool(BlockExportOptions *opts, const char *key,
                          bool *out, Error **errp)
{
    blk_exp_opt_get(opts, key);     /* the table check */
    return block_opts_get_bool(&opts->opts, key, out, errp);
}

bool blk_exp_opt_get_int(BlockExportOptions *opts, const char *key,
                         int64_t min, int64_t max, int64_t *out, Error **errp)
{
    blk_exp_opt_get(opts, key);
    return block_opts_get_int(&opts->opts, key, min, max, out, errp);
}

/* --- the BlockBackend's callbacks, forwarded to the driver ------------- */

static void exp_drained_begin(void *opaque)
{
    BlockExport *exp = opaque;

    if (exp->drv->drained_begin) {
        exp->drv->drained_begin(exp);
    }
}

static void exp_drained_end(void *opaque)
{
    BlockExport *exp = opaque;

    if (exp->drv->drained_end) {
        exp->drv->drained_end(exp);
    }
}

static bool exp_drained_poll(void *opaque)
{
    BlockExport *exp = opaque;

    return exp->drv->drained_poll && exp->drv->drained_poll(exp);
}

static const BlockDevOps export_dev_ops = {
    .drained_begin = exp_drained_begin,
    .drained_end = exp_drained_end,
    .drained_poll = exp_drained_poll,
};

static void exp_attached_aio_context(AioContext *new_ctx, void *opaque)
{
    BlockExport *exp = opaque;

    exp->ctx = new_ctx;
    if (exp->drv->attach_aio_context) {
        exp->drv->attach_aio_context(exp, new_ctx);
    }
}

static void exp_detach_aio_context(void *opaque)
{
    BlockExport *exp = opaque;

    if (exp->drv->detach_aio_context) {
        exp->drv->detach_aio_context(exp);
    }
}

/* --- adding ------------------------------------------------------------ */

typedef struct ExpCommon {
    const char *id, *node_name, *iothread;
    bool writable, writethrough, fixed_iothread;
} ExpCommon;

/* The driver and the framework's keys; every key must be someone's. */
static const BlockExportDriver *exp_read_common(BlockExportOptions *o,
                                                ExpCommon *c, Error **errp)
{
    const char *type = block_opts_get(&o->opts, "type");
    int i;

    if (!type) {
        error_setg(errp, "Parameter 'type' is missing");
        return NULL;
    }
    o->drv = find_driver(type);
    if (!o->drv) {
        if (str_in(qemu_types, type)) {
            error_setg(errp, "export type '%s' is not available", type);
        } else {
            error_setg(errp, "Parameter 'type' does not accept value '%s'",
                       type);
        }
        return NULL;
    }
    for (i = 0; i < o->opts.n; i++) {
        const char *key = o->opts.v[i].key;

        if (!str_in(common_options, key) && !str_in(o->drv->options, key)) {
            error_setg(errp, "Parameter '%s' is unexpected", key);
            return NULL;
        }
    }
    c->id = block_opts_get(&o->opts, "id");
    c->node_name = block_opts_get(&o->opts, "node-name");
    c->iothread = block_opts_get(&o->opts, "iothread");
    if (!c->id || !c->node_name) {
        error_setg(errp, "Parameter '%s' is missing",
                   c->id ? "node-name" : "id");
        return NULL;
    }
    if (!block_opts_get_bool(&o->opts, "writable", &c->writable, errp) ||
        !block_opts_get_bool(&o->opts, "writethrough", &c->writethrough,
                             errp) ||
        !block_opts_get_bool(&o->opts, "fixed-iothread", &c->fixed_iothread,
                             errp)) {
        return NULL;
    }
    if (!id_wellformed(c->id)) {
        error_setg(errp, "Invalid block export id");
        return NULL;
    }
    if (blk_exp_find(c->id)) {
        error_setg(errp, "Block export id '%s' is already in use", c->id);
        return NULL;
    }
    return o->drv;
}

/*
 * The AioContext the export will run in: its IOThread's if the node can
 * move there, else the node's own (an error only with fixed-iothread=on).
 */
static bool exp_pick_context(BlockDriverState *bs, const ExpCommon *c,
                             AioContext **ctx, Error **errp)
{
    IOThread *iothread;
    AioContext *new_ctx;

    *ctx = bdrv_get_aio_context(bs);
    if (!c->iothread) {
        return true;
    }
    iothread = iothread_by_id(c->iothread);
    if (!iothread) {
        error_setg(errp, "iothread \"%s\" not found", c->iothread);
        return false;
    }
    new_ctx = iothread_get_aio_context(iothread);
    if (bdrv_try_change_aio_context(bs, new_ctx, NULL,
                                    c->fixed_iothread ? errp : NULL) == 0) {
        *ctx = new_ctx;
        return true;
    }
    return !c->fixed_iothread;
}

BlockExport *blk_exp_add(const char *options, Error **errp)
{
    BlockExportOptions o = { { NULL, 0 }, NULL };
    const BlockExportDriver *drv;
    BlockExport *exp = NULL;
    BlockDriverState *bs;
    BlockBackend *blk = NULL;
    AioContext *ctx;
    ExpCommon c = { NULL };

    GLOBAL_STATE_CODE();
    REQUIRE_NONNULL(options);
    if (!block_opts_parse(&o.opts, options, errp) ||
        !(drv = exp_read_common(&o, &c, errp))) {
        goto fail;
    }
    bs = bdrv_find_node(c.node_name);
    if (!bs) {
        error_setg(errp, "Cannot find device='' nor node-name='%s'",
                   c.node_name);
        goto fail;
    }
    if (bdrv_is_read_only(bs) && c.writable) {
        error_setg(errp, "Cannot export read-only node as writable");
        goto fail;
    }
    if (!exp_pick_context(bs, &c, &ctx, errp)) {
        goto fail;
    }
    blk = blk_new(ctx);
    if (!c.fixed_iothread) {
        blk_set_allow_aio_context_change(blk, true);
    }
    if (blk_insert_bs(blk, bs, errp) < 0) {
        goto fail;
    }
    exp = aiolab_xcalloc(1, drv->instance_size);
    *exp = (BlockExport) {
        .drv = drv, .id = aiolab_xstrdup(c.id), .blk = blk,
        .writable = c.writable,
        .writethrough = c.writethrough, .refcount = 1, .user_owned = true,
        .ctx = blk_get_aio_context(blk),
    };
    if (drv->create(exp, &o, errp) < 0) {
        goto fail;
    }
    blk_set_dev_ops(blk, &export_dev_ops, exp);
    blk_add_aio_context_notifier(blk, exp_attached_aio_context,
                                 exp_detach_aio_context, exp);
    exp->next = block_exports;
    block_exports = exp;
    block_opts_free(&o.opts);
    return exp;

fail:
    block_opts_free(&o.opts);
    blk_unref(blk);
    if (exp) {
        free(exp->id);
        free(exp);
    }
    return NULL;
}

/* --- references, shutdown, deletion ------------------------------------- */

void blk_exp_ref(BlockExport *exp)
{
    REQUIRE_NONNULL(exp);
    AIOLAB_ASSERT(qatomic_read(&exp->refcount) > 0, "export '%s' has no "
                  "reference left to copy " RULE_EXP_REF, exp->id);
    qatomic_inc(&exp->refcount);
}

/* Flush what the clients wrote, so the image is complete on disk. */
static void exp_flush(BlockExport *exp)
{
    int ret;

    if (!exp->writable) {
        return;
    }
    ret = blk_flush(exp->blk);
    if (ret < 0) {
        error_report("export '%s': flush at deletion failed: %s", exp->id,
                     strerror(-ret));
    }
}

/* Main loop: the refcount reached 0, so nothing uses the export now. */
static void blk_exp_delete_bh(void *opaque)
{
    BlockExport *exp = opaque, **p;

    AIOLAB_ASSERT(qatomic_read(&exp->refcount) == 0, "export '%s' deleted "
                  "with references " RULE_EXP_REF, exp->id);
    for (p = &block_exports; *p != exp; p = &(*p)->next) {
        AIOLAB_ASSERT(*p, "export '%s' is not in the list", exp->id);
    }
    *p = exp->next;
    blk_remove_aio_context_notifier(exp->blk, exp_attached_aio_context,
                                    exp_detach_aio_context, exp);
    blk_set_dev_ops(exp->blk, NULL, NULL);
    exp->drv->delete(exp);
    blk_drain(exp->blk);
    exp_flush(exp);
    blk_unref(exp->blk);
    if (deleted_listener) {
        deleted_listener(exp->id, deleted_opaque);
    }
    free(exp->id);
    free(exp);
}

void blk_exp_unref(BlockExport *exp)
{
    REQUIRE_NONNULL(exp);
    AIOLAB_ASSERT(qatomic_read(&exp->refcount) > 0, "export '%s' unreferenced "
                  "more often than referenced " RULE_EXP_REF, exp->id);
    if (qatomic_fetch_sub(&exp->refcount, 1) == 1) {
        /* Only the main loop touches the list of exports. */
        aio_bh_schedule_oneshot(qemu_get_aio_context(), blk_exp_delete_bh,
                                exp);
    }
}

void blk_exp_request_shutdown(BlockExport *exp)
{
    GLOBAL_STATE_CODE();
    REQUIRE_NONNULL(exp);
    /* Not the user's any more: shutdown was requested already, and the
     * user's reference is gone. */
    if (!exp->user_owned) {
        return;
    }
    exp->drv->request_shutdown(exp);
    exp->user_owned = false;
    blk_exp_unref(exp);
}

static bool exp_has_type(const char *type)
{
    BlockExport *exp;

    for (exp = block_exports; exp; exp = exp->next) {
        if (!type || !strcmp(exp->drv->type, type)) {
            return true;
        }
    }
    return false;
}

void blk_exp_close_all_type(const char *type)
{
    BlockExport *exp, *next;

    GLOBAL_STATE_CODE();
    AIOLAB_REQUIRE(!qemu_in_coroutine(), "called from a coroutine "
                   RULE_NOCO);
    for (exp = block_exports; exp; exp = next) {
        next = exp->next;
        if (!type || !strcmp(exp->drv->type, type)) {
            blk_exp_request_shutdown(exp);
        }
    }
    /* The deletion BHs and the drivers' disconnects run in here. */
    AIO_WAIT_WHILE(NULL, exp_has_type(type));
}

void blk_exp_close_all(void)
{
    blk_exp_close_all_type(NULL);
}
