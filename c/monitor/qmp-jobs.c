/* SPDX-License-Identifier: MIT */
/*
 * monitor/qmp-jobs.c - QMP commands and events of block jobs (QEMU's
 * blockdev.c qmp_blockdev_mirror and qmp_block_job_*, job-qmp.c, and the
 * BLOCK_JOB_* / JOB_STATUS_CHANGE events): blockdev-mirror,
 * query-block-jobs, block-job-complete, block-job-cancel,
 * block-job-pause, block-job-resume, block-job-set-speed, job-dismiss.
 *
 * The job API is aiolab/blockjob.h; this file only translates.  Job
 * events arrive in the main loop from the job layer's listener and go to
 * every negotiated client.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "monitor/monitor.h"

static const char *const on_error_names[] = {
    "report", "ignore", "enospc", "stop", "auto", NULL,
};

static const char *const io_status_names[] = {
    [BLOCK_DEVICE_IO_STATUS_OK] = "ok",
    [BLOCK_DEVICE_IO_STATUS_FAILED] = "failed",
    [BLOCK_DEVICE_IO_STATUS_NOSPACE] = "nospace",
};

static bool get_on_error(json_t *args, const char *key, BlockdevOnError *out,
                         Error **errp)
{
    const char *v = json_string_value(json_object_get(args, key));
    int i;

    *out = BLOCKDEV_ON_ERROR_REPORT;
    if (!v) {
        return true;
    }
    for (i = 0; on_error_names[i]; i++) {
        if (!strcmp(v, on_error_names[i])) {
            *out = i;
            return true;
        }
    }
    error_setg(errp, "Parameter '%s' does not accept value '%s'", key, v);
    return false;
}

static BlockDriverState *lookup_bs(const char *name, Error **errp)
{
    BlockDriverState *bs = bdrv_find_node(name);

    if (!bs) {
        error_setg(errp, "Cannot find device='%s' nor node-name='%s'", name,
                   name);
    }
    return bs;
}

static bool qmp_blockdev_mirror(json_t *args, json_t **ret,
                                QapiErrorClass *cls, Error **errp)
{
    const char *sync = json_string_value(json_object_get(args, "sync"));
    const char *mode = json_string_value(json_object_get(args, "copy-mode"));
    json_t *auto_dismiss = json_object_get(args, "auto-dismiss");
    json_t *auto_finalize = json_object_get(args, "auto-finalize");
    BlockdevOnError on_source, on_target;
    BlockDriverState *bs, *target;
    Job *job;

    if (strcmp(sync, "full") && strcmp(sync, "top") && strcmp(sync, "none")) {
        error_setg(errp, "Parameter 'sync' does not accept value '%s'", sync);
        return false;
    }
    if (strcmp(sync, "full")) {
        error_setg(errp, "sync mode '%s' is not supported (aiolab mirrors "
                   "whole devices: sync=full)", sync);
        return false;
    }
    if (mode && strcmp(mode, "background")) {
        error_setg(errp, "copy-mode '%s' is not supported (aiolab: "
                   "background only)", mode);
        return false;
    }
    if (json_is_false(auto_finalize)) {
        error_setg(errp, "auto-finalize=false is not supported (aiolab "
                   "finalizes automatically)");
        return false;
    }
    if (json_object_get(args, "replaces")) {
        error_setg(errp, "replaces is not supported");
        return false;
    }
    if (!get_on_error(args, "on-source-error", &on_source, errp) ||
        !get_on_error(args, "on-target-error", &on_target, errp)) {
        return false;
    }
    bs = lookup_bs(json_string_value(json_object_get(args, "device")), errp);
    target = bs ? lookup_bs(json_string_value(json_object_get(args,
                                                              "target")), errp)
                : NULL;
    if (!target) {
        return false;
    }
    job = mirror_start(json_string_value(json_object_get(args, "job-id")),
                       bs, target,
                       json_is_false(auto_dismiss) ? JOB_MANUAL_DISMISS
                                                   : JOB_DEFAULT,
                       json_integer_value(json_object_get(args, "speed")),
                       json_integer_value(json_object_get(args,
                                                          "granularity")),
                       json_integer_value(json_object_get(args, "buf-size")),
                       on_source, on_target,
                       json_string_value(json_object_get(args,
                                                         "filter-node-name")),
                       errp);
    if (!job) {
        return false;
    }
    job_unref(job);                 /* the job list keeps its own */
    return true;
}

static bool qmp_query_block_jobs(json_t *args, json_t **ret,
                                 QapiErrorClass *cls, Error **errp)
{
    BlockJobInfo info[64];
    size_t n = aiolab_block_job_query_all(info, 64), i;

    *ret = json_array();
    for (i = 0; i < n && i < 64; i++) {
        json_t *o = json_pack(
            "{s:s,s:s,s:I,s:I,s:b,s:b,s:I,s:s,s:b,s:s,s:b,s:b}",
            "type", info[i].type, "device", info[i].device,
            "len", (json_int_t)info[i].len,
            "offset", (json_int_t)info[i].offset, "busy", info[i].busy,
            "paused", info[i].paused, "speed", (json_int_t)info[i].speed,
            "io-status", io_status_names[info[i].io_status],
            "ready", info[i].ready, "status", JobStatus_str(info[i].status),
            "auto-finalize", info[i].auto_finalize,
            "auto-dismiss", info[i].auto_dismiss);
        if (info[i].error[0]) {
            json_object_set_new(o, "error", json_string(info[i].error));
        }
        json_array_append_new(*ret, o);
    }
    return true;
}

/* QEMU's find_block_job_locked: DeviceNotActive when there is none. */
static Job *find_job(json_t *args, const char *key, QapiErrorClass *cls,
                     Error **errp)
{
    const char *id = json_string_value(json_object_get(args, key));
    Job *job = job_get(id);

    if (!job) {
        *cls = ERROR_CLASS_DEVICE_NOT_ACTIVE;
        error_setg(errp, "Block job '%s' not found", id);
    }
    return job;
}

static bool run_verb(Job *job, void (*fn)(Job *, Error **), Error **errp)
{
    Error *err = NULL;

    fn(job, &err);
    if (err) {
        error_propagate(errp, err);
        return false;
    }
    return true;
}

static bool qmp_block_job_complete(json_t *args, json_t **ret,
                                   QapiErrorClass *cls, Error **errp)
{
    Job *job = find_job(args, "device", cls, errp);

    return job && run_verb(job, job_complete, errp);
}

static bool qmp_block_job_cancel(json_t *args, json_t **ret,
                                 QapiErrorClass *cls, Error **errp)
{
    Job *job = find_job(args, "device", cls, errp);
    bool force = json_is_true(json_object_get(args, "force"));

    if (!job) {
        return false;
    }
    if (job_user_paused(job) && !force) {
        error_setg(errp, "The block job for device '%s' is currently paused",
                   aiolab_job_get_id(job));
        return false;
    }
    job_cancel(job, force);
    return true;
}

static bool qmp_block_job_pause(json_t *args, json_t **ret,
                                QapiErrorClass *cls, Error **errp)
{
    Job *job = find_job(args, "device", cls, errp);

    return job && run_verb(job, job_user_pause, errp);
}

static bool qmp_block_job_resume(json_t *args, json_t **ret,
                                 QapiErrorClass *cls, Error **errp)
{
    Job *job = find_job(args, "device", cls, errp);

    return job && run_verb(job, job_user_resume, errp);
}

static bool qmp_block_job_set_speed(json_t *args, json_t **ret,
                                    QapiErrorClass *cls, Error **errp)
{
    Job *job = find_job(args, "device", cls, errp);

    return job && block_job_set_speed(job, json_integer_value(
                      json_object_get(args, "speed")), errp);
}

static bool qmp_job_dismiss(json_t *args, json_t **ret, QapiErrorClass *cls,
                            Error **errp)
{
    Job *job = find_job(args, "id", cls, errp);

    return job && run_verb(job, job_dismiss, errp);
}

const QmpCommand qmp_job_commands[] = {
    { "blockdev-mirror", qmp_blockdev_mirror,
      { "job-id:s?", "device:s", "target:s", "sync:s", "speed:i?",
        "granularity:i?", "buf-size:i?", "on-source-error:s?",
        "on-target-error:s?", "filter-node-name:s?", "copy-mode:s?",
        "auto-finalize:b?", "auto-dismiss:b?", "replaces:s?", NULL } },
    { "query-block-jobs", qmp_query_block_jobs, { NULL } },
    { "block-job-complete", qmp_block_job_complete, { "device:s", NULL } },
    { "block-job-cancel", qmp_block_job_cancel,
      { "device:s", "force:b?", NULL } },
    { "block-job-pause", qmp_block_job_pause, { "device:s", NULL } },
    { "block-job-resume", qmp_block_job_resume, { "device:s", NULL } },
    { "block-job-set-speed", qmp_block_job_set_speed,
      { "device:s", "speed:i", NULL } },
    { "job-dismiss", qmp_job_dismiss, { "id:s", NULL } },
    { NULL },
};

/* --- events ------------------------------------------------------------ */

static json_t *job_data(const AiolabJobEvent *ev)
{
    return json_pack("{s:s,s:s,s:I,s:I,s:I}", "type", ev->job_type,
                     "device", ev->id, "len", (json_int_t)ev->len,
                     "offset", (json_int_t)ev->offset,
                     "speed", (json_int_t)ev->speed);
}

void monitor_job_event(const AiolabJobEvent *ev, void *opaque)
{
    json_t *data;

    switch (ev->type) {
    case AIOLAB_JOB_EVENT_STATUS_CHANGE:
        qapi_event_send("JOB_STATUS_CHANGE", json_pack(
            "{s:s,s:s}", "id", ev->id, "status", JobStatus_str(ev->status)));
        break;
    case AIOLAB_JOB_EVENT_READY:
        qapi_event_send("BLOCK_JOB_READY", job_data(ev));
        break;
    case AIOLAB_JOB_EVENT_COMPLETED:
        data = job_data(ev);
        if (ev->ret < 0) {
            json_object_set_new(data, "error", json_string(
                ev->error[0] ? ev->error : strerror(-ev->ret)));
        }
        qapi_event_send("BLOCK_JOB_COMPLETED", data);
        break;
    case AIOLAB_JOB_EVENT_CANCELLED:
        qapi_event_send("BLOCK_JOB_CANCELLED", job_data(ev));
        break;
    case AIOLAB_JOB_EVENT_ERROR:
        qapi_event_send("BLOCK_JOB_ERROR", json_pack(
            "{s:s,s:s,s:s}", "device", ev->id,
            "operation", ev->is_read ? "read" : "write",
            "action", ev->action == BLOCK_ERROR_ACTION_STOP ? "stop"
                      : ev->action == BLOCK_ERROR_ACTION_IGNORE ? "ignore"
                                                                : "report"));
        break;
    }
}
