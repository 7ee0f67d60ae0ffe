/* SPDX-License-Identifier: MIT */
/*
 * monitor/qmp-export.c - QMP commands about block exports and the NBD
 * server (QEMU's block/export/export.c and blockdev-nbd.c qmp_*
 * handlers): block-export-add, block-export-del, query-block-exports,
 * nbd-server-start, nbd-server-stop, and the BLOCK_EXPORT_DELETED event.
 *
 * block-export-add takes QEMU's arguments; nested objects ("addr":
 * {"type": "unix", "path": ...}) are flattened into the export's option
 * string (addr.type=unix,addr.path=...), which the framework and the
 * driver check (aiolab/export.h).  nbd-server-start takes QEMU's
 * SocketAddressLegacy ({"type": "unix", "data": {"path": ...}}) and the
 * flat form ({"type": "unix", "path": ...}).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "monitor/monitor.h"

static bool qmp_block_export_add(json_t *args, json_t **ret,
                                 QapiErrorClass *cls, Error **errp)
{
    char *opts = qmp_blockdev_options(args, errp);
    BlockExport *exp;

    if (!opts) {
        return false;
    }
    exp = blk_exp_add(opts, errp);
    free(opts);
    return exp != NULL;
}

static bool qmp_block_export_del(json_t *args, json_t **ret,
                                 QapiErrorClass *cls, Error **errp)
{
    const char *id = json_string_value(json_object_get(args, "id"));
    json_t *mode = json_object_get(args, "mode");
    BlockExport *exp = blk_exp_find(id);
    bool hard = false;

    if (mode) {
        if (!strcmp(json_string_value(mode), "hard")) {
            hard = true;
        } else if (strcmp(json_string_value(mode), "safe")) {
            error_setg(errp, "Parameter 'mode' does not accept value '%s'",
                       json_string_value(mode));
            return false;
        }
    }
    if (!exp) {
        error_setg(errp, "Export '%s' is not found", id);
        return false;
    }
    if (!exp->user_owned) {
        error_setg(errp, "Export '%s' is already shutting down", id);
        return false;
    }
    /* Connections hold references: "safe" refuses while there are any. */
    if (!hard && __atomic_load_n(&exp->refcount, __ATOMIC_SEQ_CST) > 1) {
        error_setg(errp, "export '%s' still in use (use mode='hard' to "
                   "force client disconnect)", id);
        return false;
    }
    blk_exp_request_shutdown(exp);
    return true;
}

static bool qmp_query_block_exports(json_t *args, json_t **ret,
                                    QapiErrorClass *cls, Error **errp)
{
    BlockExport *exp;

    *ret = json_array();
    for (exp = blk_exp_next(NULL); exp; exp = blk_exp_next(exp)) {
        json_array_append_new(*ret, json_pack(
            "{s:s,s:s,s:s,s:b}", "id", exp->id, "type", exp->drv->type,
            "node-name", bdrv_get_node_name(blk_bs(exp->blk)),
            "shutting-down", !exp->user_owned));
    }
    return true;
}

static bool qmp_nbd_server_start(json_t *args, json_t **ret,
                                 QapiErrorClass *cls, Error **errp)
{
    json_t *addr = json_object_get(args, "addr");
    json_t *data = json_object_get(addr, "data");
    json_t *max = json_object_get(args, "max-connections");
    const char *type = json_string_value(json_object_get(addr, "type"));
    const char *path;
    json_t *flat;
    char *opts;
    bool ok;

    if (json_object_get(args, "tls-creds") ||
        json_object_get(args, "tls-authz")) {
        error_setg(errp, "TLS is not supported by this NBD server");
        return false;
    }
    path = json_string_value(json_object_get(data ? data : addr, "path"));
    if (!type || !path) {
        error_setg(errp, "Parameter 'addr.%s' is missing",
                   type ? "path" : "type");
        return false;
    }
    flat = json_pack("{s:s,s:s,s:I}", "addr.type", type, "addr.path", path,
                     "max-connections", max ? json_integer_value(max) : 0);
    opts = qmp_blockdev_options(flat, errp);
    json_decref(flat);
    ok = opts && nbd_server_start(opts, errp);
    free(opts);
    return ok;
}

static bool qmp_nbd_server_stop(json_t *args, json_t **ret,
                                QapiErrorClass *cls, Error **errp)
{
    return nbd_server_stop(errp);
}

void monitor_export_deleted(const char *id, void *opaque)
{
    qapi_event_send("BLOCK_EXPORT_DELETED", json_pack("{s:s}", "id", id));
}

const QmpCommand qmp_export_commands[] = {
    { "block-export-add", qmp_block_export_add,
      { "type:s", "id:s", "node-name:s", "*", NULL } },
    { "block-export-del", qmp_block_export_del, { "id:s", "mode:s?", NULL } },
    { "query-block-exports", qmp_query_block_exports, { NULL } },
    { "nbd-server-start", qmp_nbd_server_start,
      { "addr:o", "max-connections:i?", "tls-creds:s?", "tls-authz:s?",
        NULL } },
    { "nbd-server-stop", qmp_nbd_server_stop, { NULL } },
    { NULL },
};
