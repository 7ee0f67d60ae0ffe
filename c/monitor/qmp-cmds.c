/* SPDX-License-Identifier: MIT */
/*
 * monitor/qmp-cmds.c - QMP commands about the machine and its threads
 * (QEMU's monitor/qmp-cmds.c, system/runstate.c's qmp_* handlers,
 * qom/qom-qmp-cmds.c, iothread.c's qmp_query_iothreads and
 * hw/virtio/virtio-qmp.c): query-status, stop, cont, quit,
 * query-cpus-fast, query-iothreads, object-add, object-del,
 * x-query-virtio, x-query-virtio-status.
 *
 * Each handler runs in the main loop with the BQL held (the iohandler
 * context), so it may call global-state functions directly: vm_stop()
 * pauses the vCPUs and drains before "stop" replies, as QEMU's does.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "monitor/monitor.h"

static AiolabMachine *need_machine(QapiErrorClass *cls, Error **errp)
{
    AiolabMachine *m = aiolab_machine_get_current();

    if (!m) {
        error_setg(errp, "this program has no machine");
    }
    return m;
}

/* --- run state ----------------------------------------------------- */

static bool qmp_query_status(json_t *args, json_t **ret, QapiErrorClass *cls,
                             Error **errp)
{
    *ret = json_pack("{s:b,s:s}", "running", runstate_is_running(),
                     "status", aiolab_runstate_name(runstate_get()));
    return true;
}

static bool qmp_stop(json_t *args, json_t **ret, QapiErrorClass *cls,
                     Error **errp)
{
    if (!need_machine(cls, errp)) {
        return false;
    }
    vm_stop(RUN_STATE_PAUSED);      /* nothing changes unless running */
    return true;
}

static bool qmp_cont(json_t *args, json_t **ret, QapiErrorClass *cls,
                     Error **errp)
{
    if (!need_machine(cls, errp)) {
        return false;
    }
    if (runstate_get() == RUN_STATE_SHUTDOWN) {
        error_setg(errp, "Resetting the Virtual Machine is required");
        return false;
    }
    vm_start();
    return true;
}

static void (*quit_handler)(void *opaque);
static void *quit_opaque;

void monitor_set_quit_handler(void (*fn)(void *opaque), void *opaque)
{
    quit_handler = fn;
    quit_opaque = opaque;
}

static bool qmp_quit(json_t *args, json_t **ret, QapiErrorClass *cls,
                     Error **errp)
{
    if (aiolab_machine_get_current()) {
        qemu_system_shutdown_request(SHUTDOWN_CAUSE_HOST_QMP_QUIT);
    } else if (quit_handler) {
        quit_handler(quit_opaque);
    }
    return true;
}

static bool qmp_query_cpus_fast(json_t *args, json_t **ret,
                                QapiErrorClass *cls, Error **errp)
{
    AiolabMachine *m = need_machine(cls, errp);
    char path[64];
    int i;

    if (!m) {
        return false;
    }
    *ret = json_array();
    for (i = 0; i < aiolab_machine_get_smp(m); i++) {
        snprintf(path, sizeof(path), "/machine/unattached/device[%d]", i);
        json_array_append_new(*ret, json_pack(
            "{s:i,s:s,s:i,s:s}", "cpu-index", i, "qom-path", path,
            "thread-id", aiolab_machine_get_vcpu_thread_id(m, i),
            "target", "aiolab"));
    }
    return true;
}

/* --- IOThreads -------------------------------------------------------- */

static const char *const iothread_params[] = {
    "poll-max-ns", "poll-grow", "poll-shrink", "aio-max-batch",
    "thread-pool-min", "thread-pool-max", NULL,
};

const char *qmp_aio_context_name(AioContext *ctx)
{
    IOThread *its[64];
    size_t n = aiolab_iothread_list(its, 64), i;
    static char id[64];

    if (ctx == qemu_get_aio_context()) {
        return "main-loop";
    }
    for (i = 0; i < n && i < 64; i++) {
        if (iothread_get_aio_context(its[i]) == ctx) {
            char *s = iothread_get_id(its[i]);
            snprintf(id, sizeof(id), "%s", s);
            free(s);
            return id;
        }
    }
    return aiolab_aio_context_get_name(ctx);
}

bool qmp_iothread_add(const char *id, json_t *props, Error **errp)
{
    int64_t v[6] = { 32768, 0, 0, 0, 0, 64 };
    bool set[6] = { false };
    const char *key;
    json_t *val;
    IOThread *it;
    int i;

    json_object_foreach(props, key, val) {
        for (i = 0; iothread_params[i] && strcmp(iothread_params[i], key);
             i++) {
            /* find it */
        }
        if (!iothread_params[i]) {
            error_setg(errp, "Parameter '%s' is unexpected", key);
            return false;
        }
        if (!json_is_integer(val)) {
            error_setg(errp, "Invalid parameter type for '%s', expected: "
                       "integer", key);
            return false;
        }
        v[i] = json_integer_value(val);
        set[i] = true;
        if (v[i] < 0) {
            error_setg(errp, "%s value must be in range [0, %lld]", key,
                       (long long)INT64_MAX);
            return false;
        }
    }
    if (v[4] > v[5]) {
        error_setg(errp, "thread-pool-min (%lld) must not be greater than "
                   "thread-pool-max (%lld)", (long long)v[4],
                   (long long)v[5]);
        return false;
    }
    if (iothread_by_id(id)) {
        error_setg(errp, "attempt to add duplicate property '%s' to object "
                   "(type 'container')", id);
        return false;
    }
    it = iothread_create(id, errp);
    if (!it) {
        return false;
    }
    if (!iothread_set_poll_params(it, v[0], v[1], v[2], errp) ||
        (set[3] && !iothread_set_aio_max_batch(it, v[3], errp)) ||
        ((set[4] || set[5]) &&
         !iothread_set_thread_pool_params(it, v[4], v[5], errp))) {
        iothread_destroy(it);
        return false;
    }
    return true;
}

static bool qmp_query_iothreads(json_t *args, json_t **ret,
                                QapiErrorClass *cls, Error **errp)
{
    IOThread *its[64];
    size_t n = aiolab_iothread_list(its, 64), i;

    *ret = json_array();
    for (i = 0; i < n && i < 64; i++) {
        char *id = iothread_get_id(its[i]);
        json_t *o = json_pack("{s:s,s:i}", "id", id, "thread-id",
                              iothread_get_thread_id(its[i]));
        int p;

        for (p = 0; p < 4; p++) {
            int64_t v = 0;
            aiolab_iothread_get_param(its[i], iothread_params[p], &v);
            json_object_set_new(o, iothread_params[p], json_integer(v));
        }
        json_array_append_new(*ret, o);
        free(id);
    }
    return true;
}

static bool qmp_object_add(json_t *args, json_t **ret, QapiErrorClass *cls,
                           Error **errp)
{
    const char *type = json_string_value(json_object_get(args, "qom-type"));
    const char *id = json_string_value(json_object_get(args, "id"));
    json_t *props;
    bool ok;

    if (strcmp(type, "iothread")) {
        error_setg(errp, "Parameter 'qom-type' does not accept value '%s'",
                   type);
        return false;
    }
    props = json_deep_copy(args);
    json_object_del(props, "qom-type");
    json_object_del(props, "id");
    ok = qmp_iothread_add(id, props, errp);
    json_decref(props);
    return ok;
}

static bool iothread_busy(IOThread *it)
{
    AiolabMachine *m = aiolab_machine_get_current();
    AioContext *ctx = iothread_get_aio_context(it);
    BlockDriverState *nodes[256];
    size_t n = aiolab_bdrv_list(nodes, 256), i;
    char *id = iothread_get_id(it);
    bool busy = m && aiolab_machine_iothread_in_use(m, id);

    free(id);
    for (i = 0; i < n && i < 256 && !busy; i++) {
        busy = bdrv_get_aio_context(nodes[i]) == ctx;
    }
    return busy;
}

static bool qmp_object_del(json_t *args, json_t **ret, QapiErrorClass *cls,
                           Error **errp)
{
    const char *id = json_string_value(json_object_get(args, "id"));
    IOThread *it = iothread_by_id(id);

    if (!it) {
        error_setg(errp, "object '%s' not found", id);
        return false;
    }
    if (iothread_busy(it)) {
        error_setg(errp, "object '%s' is in use, can not be deleted", id);
        return false;
    }
    iothread_destroy(it);
    return true;
}

/* --- virtio ------------------------------------------------------------ */

static int find_virtio(AiolabMachine *m, const char *path)
{
    char p[128];
    int i;

    for (i = 0; i < aiolab_machine_num_devices(m); i++) {
        snprintf(p, sizeof(p), "/machine/peripheral/%s/virtio-backend",
                 aiolab_machine_device_id(m, i));
        if (!strcmp(p, path)) {
            return i;
        }
    }
    return -1;
}

static bool qmp_x_query_virtio(json_t *args, json_t **ret,
                               QapiErrorClass *cls, Error **errp)
{
    AiolabMachine *m = need_machine(cls, errp);
    char p[128];
    int i;

    if (!m) {
        return false;
    }
    *ret = json_array();
    for (i = 0; i < aiolab_machine_num_devices(m); i++) {
        snprintf(p, sizeof(p), "/machine/peripheral/%s/virtio-backend",
                 aiolab_machine_device_id(m, i));
        json_array_append_new(*ret, json_pack("{s:s,s:s}", "path", p, "name",
                                              "virtio-blk"));
    }
    return true;
}

static json_t *decode_status(uint8_t st)
{
    static const struct { uint8_t bit; const char *name; } bits[] = {
        { VIRTIO_CONFIG_S_ACKNOWLEDGE, "VIRTIO_CONFIG_S_ACKNOWLEDGE" },
        { VIRTIO_CONFIG_S_DRIVER, "VIRTIO_CONFIG_S_DRIVER" },
        { VIRTIO_CONFIG_S_FEATURES_OK, "VIRTIO_CONFIG_S_FEATURES_OK" },
        { VIRTIO_CONFIG_S_DRIVER_OK, "VIRTIO_CONFIG_S_DRIVER_OK" },
        { VIRTIO_CONFIG_S_NEEDS_RESET, "VIRTIO_CONFIG_S_NEEDS_RESET" },
        { VIRTIO_CONFIG_S_FAILED, "VIRTIO_CONFIG_S_FAILED" },
    };
    json_t *a = json_array();
    size_t i;

    for (i = 0; i < sizeof(bits) / sizeof(bits[0]); i++) {
        if (st & bits[i].bit) {
            json_array_append_new(a, json_string(bits[i].name));
        }
    }
    return json_pack("{s:o}", "statuses", a);
}

static bool qmp_x_query_virtio_status(json_t *args, json_t **ret,
                                      QapiErrorClass *cls, Error **errp)
{
    AiolabMachine *m = need_machine(cls, errp);
    const char *path = json_string_value(json_object_get(args, "path"));
    VirtIODevice *vdev;
    char last[256];
    json_t *ctxs;
    int i, q;

    if (!m) {
        return false;
    }
    i = find_virtio(m, path);
    if (i < 0) {
        error_setg(errp, "Path %s is not a VirtIODevice", path);
        return false;
    }
    vdev = aiolab_virtio_blk_get_vdev(aiolab_machine_get_device(m, i));
    aiolab_virtio_device_get_last_error(vdev, last, sizeof(last));
    ctxs = json_array();
    for (q = 0; q < virtio_get_num_queues(vdev); q++) {
        json_array_append_new(ctxs, json_string(qmp_aio_context_name(
            aiolab_virtio_blk_get_vq_aio_context(aiolab_machine_get_device(m,
                                                                     i), q))));
    }
    *ret = json_pack("{s:s,s:i,s:b,s:o,s:I,s:I,s:i,s:s,s:b,s:o}",
                     "name", "virtio-blk", "device-id", 2,
                     "broken", aiolab_virtio_device_is_broken(vdev),
                     "status", decode_status(aiolab_virtio_get_status(vdev)),
                     "host-features",
                     (json_int_t)aiolab_virtio_get_host_features(vdev),
                     "guest-features",
                     (json_int_t)aiolab_virtio_get_guest_features(vdev),
                     "num-vqs", virtio_get_num_queues(vdev),
                     "x-last-error", last,
                     "x-ioeventfd-started",
                     (aiolab_virtio_blk_ioeventfd_state(
                          aiolab_machine_get_device(m, i)) &
                      AIOLAB_VIRTIO_BLK_IOEVENTFD_STARTED) != 0,
                     "x-vq-aio-contexts", ctxs);
    return true;
}

const QmpCommand qmp_machine_commands[] = {
    { "query-status", qmp_query_status, { NULL } },
    { "stop", qmp_stop, { NULL } },
    { "cont", qmp_cont, { NULL } },
    { "quit", qmp_quit, { NULL } },
    { "query-cpus-fast", qmp_query_cpus_fast, { NULL } },
    { "query-iothreads", qmp_query_iothreads, { NULL } },
    { "object-add", qmp_object_add, { "qom-type:s", "id:s", "*", NULL } },
    { "object-del", qmp_object_del, { "id:s", NULL } },
    { "x-query-virtio", qmp_x_query_virtio, { NULL } },
    { "x-query-virtio-status", qmp_x_query_virtio_status,
      { "path:s", NULL } },
    { NULL },
};
