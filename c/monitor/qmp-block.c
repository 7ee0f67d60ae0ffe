/* SPDX-License-Identifier: MIT */
/*
 * monitor/qmp-block.c - QMP commands about the block layer (QEMU's
 * block/qapi.c, blockdev.c, block/monitor/block-hmp-cmds.c' QMP side):
 * query-block, query-named-block-nodes, blockdev-add and
 * x-blockdev-set-iothread (the block jobs are in qmp-jobs.c).
 *
 * x-blockdev-set-iothread is the lesson of chapter 8 over QMP: it moves
 * a node that no device holds (and everything connected to it) to
 * another AioContext inside a drained section; a node under a virtio-blk
 * device is refused, first by the monitor's own check ("associated with
 * a BlockBackend"), and with force=true by the block layer itself
 * ("Cannot change iothread of active block backend"): in QEMU 9.0 a
 * device's AioContexts are fixed when it is created.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "monitor/monitor.h"
#include "util/mem.h"

/* --- monitor-owned nodes ---------------------------------------------- */

static BlockDriverState **owned;
static size_t n_owned;

void monitor_track_node(BlockDriverState *bs)
{
    owned = aiolab_xrealloc(owned, sizeof(*owned) * (n_owned + 1));
    owned[n_owned++] = bs;
}

void monitor_release_nodes(void)
{
    /* Filters were opened after their children: drop them first. */
    while (n_owned) {
        bdrv_unref(owned[--n_owned]);
    }
    free(owned);
    owned = NULL;
}

/* --- blockdev-add ------------------------------------------------------ */

static void append(char **buf, size_t *len, const char *s)
{
    size_t n = strlen(s);

    *buf = aiolab_xrealloc(*buf, *len + n + 1);
    memcpy(*buf + *len, s, n + 1);
    *len += n;
}

/* A value with each comma doubled, as -blockdev strings escape them. */
static void append_value(char **buf, size_t *len, const char *s)
{
    for (; *s; s++) {
        char c[3] = { *s, *s == ',' ? ',' : 0, 0 };
        append(buf, len, c);
    }
}

static bool flatten(json_t *obj, const char *prefix, char **buf, size_t *len,
                    Error **errp)
{
    const char *key;
    json_t *v;
    char num[32], path[256];

    json_object_foreach(obj, key, v) {
        snprintf(path, sizeof(path), "%s%s", prefix, key);
        if (json_is_object(v)) {
            char sub[sizeof(path) + 2];
            snprintf(sub, sizeof(sub), "%s.", path);
            if (!flatten(v, sub, buf, len, errp)) {
                return false;
            }
            continue;
        }
        if (*len) {
            append(buf, len, ",");
        }
        append(buf, len, path);
        append(buf, len, "=");
        if (json_is_string(v)) {
            append_value(buf, len, json_string_value(v));
        } else if (json_is_boolean(v)) {
            append(buf, len, json_is_true(v) ? "on" : "off");
        } else if (json_is_integer(v)) {
            snprintf(num, sizeof(num), "%lld",
                     (long long)json_integer_value(v));
            append(buf, len, num);
        } else {
            error_setg(errp, "Invalid parameter type for '%s', expected: "
                       "string, integer or boolean", path);
            return false;
        }
    }
    return true;
}

char *qmp_blockdev_options(json_t *args, Error **errp)
{
    char *buf = aiolab_xstrdup("");
    size_t len = 0;

    if (!flatten(args, "", &buf, &len, errp)) {
        free(buf);
        return NULL;
    }
    return buf;
}

static bool qmp_blockdev_add(json_t *args, json_t **ret, QapiErrorClass *cls,
                             Error **errp)
{
    BlockDriverState *bs;
    char *opts;

    if (!json_is_string(json_object_get(args, "node-name"))) {
        error_setg(errp, "'node-name' must be specified for the root node");
        return false;
    }
    opts = qmp_blockdev_options(args, errp);
    if (!opts) {
        return false;
    }
    bs = bdrv_open(NULL, NULL, opts, BDRV_O_RDWR, errp);
    free(opts);
    if (!bs) {
        return false;
    }
    monitor_track_node(bs);
    return true;
}

/* --- queries --------------------------------------------------------- */

static json_t *node_info(BlockDriverState *bs)
{
    return json_pack("{s:s,s:s,s:b,s:{s:I},s:s}",
                     "node-name", bdrv_get_node_name(bs),
                     "drv", bdrv_get_format_name(bs),
                     "ro", bdrv_is_read_only(bs),
                     "image", "virtual-size", (json_int_t)bdrv_getlength(bs),
                     "x-aio-context",
                     qmp_aio_context_name(bdrv_get_aio_context(bs)));
}

static bool qmp_query_block(json_t *args, json_t **ret, QapiErrorClass *cls,
                            Error **errp)
{
    AiolabMachine *m = aiolab_machine_get_current();
    int i, n = m ? aiolab_machine_num_devices(m) : 0;

    *ret = json_array();
    for (i = 0; i < n; i++) {
        BlockBackend *blk = aiolab_machine_device_blk(m, i);
        BlockDriverState *bs = blk_bs(blk);
        char qdev[128];
        json_t *o;

        snprintf(qdev, sizeof(qdev), "/machine/peripheral/%s/virtio-backend",
                 aiolab_machine_device_id(m, i));
        o = json_pack("{s:s,s:s,s:s,s:b,s:b,s:s,s:s}", "device", "",
                      "qdev", qdev, "type", "unknown", "removable", false,
                      "locked", false, "io-status", "ok",
                      "x-aio-context",
                      qmp_aio_context_name(blk_get_aio_context(blk)));
        if (bs) {
            json_object_set_new(o, "inserted", node_info(bs));
        }
        json_array_append_new(*ret, o);
    }
    return true;
}

static bool qmp_query_named_block_nodes(json_t *args, json_t **ret,
                                        QapiErrorClass *cls, Error **errp)
{
    BlockDriverState *nodes[256];
    size_t n = aiolab_bdrv_list(nodes, 256), i;

    *ret = json_array();
    for (i = 0; i < n && i < 256; i++) {
        if (bdrv_get_node_name(nodes[i])[0] != '#') {
            json_array_append_new(*ret, node_info(nodes[i]));
        }
    }
    return true;
}

/* --- x-blockdev-set-iothread --------------------------------------------- */

static bool qmp_x_blockdev_set_iothread(json_t *args, json_t **ret,
                                        QapiErrorClass *cls, Error **errp)
{
    const char *name = json_string_value(json_object_get(args, "node-name"));
    json_t *iothread = json_object_get(args, "iothread");
    json_t *force = json_object_get(args, "force");
    AiolabMachine *m = aiolab_machine_get_current();
    BlockDriverState *bs = bdrv_find_node(name);
    AioContext *ctx;

    if (!bs) {
        error_setg(errp, "Failed to find node with node-name='%s'", name);
        return false;
    }
    /* Protects against accidents (QEMU's bdrv_has_blk() check). */
    if (!json_is_true(force) && m && aiolab_machine_node_in_use(m, bs)) {
        error_setg(errp, "Node %s is associated with a BlockBackend and "
                   "could be in use (use force=true to override this check)",
                   name);
        return false;
    }
    if (json_is_string(iothread)) {
        IOThread *it = iothread_by_id(json_string_value(iothread));
        if (!it) {
            error_setg(errp, "Cannot find iothread %s",
                       json_string_value(iothread));
            return false;
        }
        ctx = iothread_get_aio_context(it);
    } else {
        ctx = qemu_get_aio_context();
    }
    return bdrv_try_change_aio_context(bs, ctx, NULL, errp) == 0;
}

const QmpCommand qmp_block_commands[] = {
    { "query-block", qmp_query_block, { NULL } },
    { "query-named-block-nodes", qmp_query_named_block_nodes,
      { "flat:b?", NULL } },
    { "blockdev-add", qmp_blockdev_add, { "driver:s", "*", NULL } },
    { "x-blockdev-set-iothread", qmp_x_blockdev_set_iothread,
      { "node-name:s", "iothread:n", "force:b?", NULL } },
    { NULL },
};
