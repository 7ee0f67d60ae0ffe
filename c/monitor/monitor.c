/* SPDX-License-Identifier: MIT */
/*
 * monitor/monitor.c - the QMP server: unix-socket listeners and clients
 * on the iohandler context, the JSON stream, capabilities negotiation,
 * dispatch with QEMU's errors, and events.
 *
 * A client's life:
 *
 *   accept --greeting--> [capabilities negotiation mode]
 *        only qmp_capabilities runs; anything else: CommandNotFound
 *   qmp_capabilities --> [command mode]: commands run, events arrive
 *   EOF or error --> handlers removed, fd closed
 *
 * Input is a stream of JSON values.  jansson parses one value at a time
 * (JSON_DISABLE_EOF_CHECK tells it to stop after the first value and
 * report how many bytes it used); a value cut off by the end of what has
 * arrived so far waits for more bytes.  A syntax error answers
 * GenericError and drops the input up to the next newline, as QEMU's
 * lexer resynchronises.
 *
 * Output is queued per client and written without blocking; an fd write
 * handler drains what the socket would not take at once.  At exit
 * monitor_cleanup() writes the rest with the socket blocking.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>
#include "monitor/monitor.h"
#include "util/mem.h"

#define MAX_INPUT (1 << 20)     /* a client sending more unparsed: dropped */

typedef struct QmpClient QmpClient;
typedef struct QmpListener QmpListener;

struct QmpClient {
    int fd;
    bool negotiated;
    char *in;
    size_t in_len, in_cap;
    char *out;
    size_t out_len, out_cap;
    bool want_write;
    QmpClient *next;
};

struct QmpListener {
    int fd;
    char *path;
    bool wait;
    QmpListener *next;
};

static QmpListener *listeners;
static QmpClient *clients;
static bool job_listener;

/* --- output ----------------------------------------------------------- */

static void client_close(QmpClient *c);
static void client_write_ready(void *opaque);

static void client_read(void *opaque);

static void client_update_handlers(QmpClient *c)
{
    qemu_set_fd_handler(c->fd, client_read,
                        c->want_write ? client_write_ready : NULL, c);
}

static void client_flush(QmpClient *c)
{
    while (c->out_len) {
        ssize_t n = write(c->fd, c->out, c->out_len);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && errno == EAGAIN) {
            break;
        }
        if (n <= 0) {
            c->out_len = 0;         /* the client went away */
            break;
        }
        memmove(c->out, c->out + n, c->out_len - n);
        c->out_len -= n;
    }
    if (c->want_write != (c->out_len > 0)) {
        c->want_write = c->out_len > 0;
        client_update_handlers(c);
    }
}

static void client_write_ready(void *opaque)
{
    client_flush(opaque);
}

/* Queue @obj (not stolen) as one line, "\r\n"-terminated as QEMU's. */
static void client_send(QmpClient *c, json_t *obj)
{
    char *s = json_dumps(obj, JSON_COMPACT | JSON_ENCODE_ANY);
    size_t len;

    if (!s) {
        aiolab_oom(0);
    }
    len = strlen(s);

    if (c->out_len + len + 2 > c->out_cap) {
        c->out_cap = (c->out_len + len + 2) * 2;
        c->out = aiolab_xrealloc(c->out, c->out_cap);
    }
    memcpy(c->out + c->out_len, s, len);
    memcpy(c->out + c->out_len + len, "\r\n", 2);
    c->out_len += len + 2;
    free(s);
    client_flush(c);
}

/* --- events ----------------------------------------------------------- */

void qapi_event_send(const char *name, json_t *data)
{
    struct timeval tv;
    json_t *ev;
    QmpClient *c;

    gettimeofday(&tv, NULL);
    ev = json_pack("{s:{s:I,s:I},s:s}", "timestamp", "seconds",
                   (json_int_t)tv.tv_sec, "microseconds",
                   (json_int_t)tv.tv_usec, "event", name);
    if (data) {
        json_object_set_new(ev, "data", data);
    }
    for (c = clients; c; c = c->next) {
        if (c->negotiated) {
            client_send(c, ev);
        }
    }
    json_decref(ev);
}

static const char *const error_actions[] = {
    [BLOCK_ERROR_ACTION_IGNORE] = "ignore",
    [BLOCK_ERROR_ACTION_REPORT] = "report",
    [BLOCK_ERROR_ACTION_STOP] = "stop",
};

void monitor_machine_event(void *opaque, const AiolabMachineEvent *ev)
{
    char qom_path[128];

    switch (ev->type) {
    case AIOLAB_MACHINE_EVENT_STOP:
        qapi_event_send("STOP", NULL);
        break;
    case AIOLAB_MACHINE_EVENT_RESUME:
        qapi_event_send("RESUME", NULL);
        break;
    case AIOLAB_MACHINE_EVENT_SHUTDOWN:
        qapi_event_send("SHUTDOWN", json_pack(
            "{s:b,s:s}", "guest", ev->cause == SHUTDOWN_CAUSE_GUEST_SHUTDOWN,
            "reason", aiolab_shutdown_cause_name(ev->cause)));
        break;
    case AIOLAB_MACHINE_EVENT_BLOCK_IO_ERROR:
        snprintf(qom_path, sizeof(qom_path),
                 "/machine/peripheral/%s/virtio-backend", ev->device);
        qapi_event_send("BLOCK_IO_ERROR", json_pack(
            "{s:s,s:s,s:s,s:s,s:s,s:b,s:s}", "qom-path", qom_path,
            "device", "", "node-name", ev->node_name,
            "operation", ev->is_read ? "read" : "write",
            "action", error_actions[ev->action], "nospace",
            ev->error == ENOSPC, "reason", strerror(ev->error)));
        break;
    }
}

/* --- dispatch ----------------------------------------------------------- */

static const char *const class_names[] = {
    [ERROR_CLASS_GENERIC_ERROR] = "GenericError",
    [ERROR_CLASS_COMMAND_NOT_FOUND] = "CommandNotFound",
    [ERROR_CLASS_DEVICE_NOT_ACTIVE] = "DeviceNotActive",
    [ERROR_CLASS_DEVICE_NOT_FOUND] = "DeviceNotFound",
};

static json_t *error_response(QapiErrorClass cls, const char *desc)
{
    return json_pack("{s:{s:s,s:s}}", "error", "class", class_names[cls],
                     "desc", desc);
}

static const char *type_name(char t)
{
    switch (t) {
    case 's': return "string";
    case 'i': return "integer";
    case 'b': return "boolean";
    case 'o': return "object";
    case 'a': return "array";
    case 'n': return "string or null";
    default:  return "any";
    }
}

static bool type_ok(json_t *v, char t)
{
    switch (t) {
    case 's': return json_is_string(v);
    case 'i': return json_is_integer(v);
    case 'b': return json_is_boolean(v);
    case 'o': return json_is_object(v);
    case 'a': return json_is_array(v);
    case 'n': return json_is_string(v) || json_is_null(v);
    default:  return true;
    }
}

/* QEMU's qobject input visitor errors, for a command's parameters. */
static bool check_args(const QmpCommand *cmd, json_t *args, Error **errp)
{
    bool any_extra = false;
    const char *key;
    json_t *v;
    int i;

    for (i = 0; cmd->params[i]; i++) {
        const char *p = cmd->params[i], *colon = strchr(p, ':');
        char name[64];

        if (!strcmp(p, "*")) {
            any_extra = true;
            continue;
        }
        snprintf(name, sizeof(name), "%.*s", (int)(colon - p), p);
        v = json_object_get(args, name);
        if (!v && colon[2] != '?') {
            error_setg(errp, "Parameter '%s' is missing", name);
            return false;
        }
        if (v && !type_ok(v, colon[1])) {
            error_setg(errp, "Invalid parameter type for '%s', expected: %s",
                       name, type_name(colon[1]));
            return false;
        }
    }
    json_object_foreach(args, key, v) {
        bool known = any_extra;
        for (i = 0; !known && cmd->params[i]; i++) {
            size_t n = strcspn(cmd->params[i], ":");
            known = strlen(key) == n && !strncmp(cmd->params[i], key, n);
        }
        if (!known) {
            error_setg(errp, "Parameter '%s' is unexpected", key);
            return false;
        }
    }
    return true;
}

const QmpCommand *qmp_find_command(const char *name)
{
    const QmpCommand *tables[] = { qmp_machine_commands, qmp_block_commands,
                                   qmp_job_commands, qmp_export_commands };
    size_t t;
    int i;

    for (t = 0; t < sizeof(tables) / sizeof(tables[0]); t++) {
        for (i = 0; tables[t][i].name; i++) {
            if (!strcmp(tables[t][i].name, name)) {
                return &tables[t][i];
            }
        }
    }
    return NULL;
}

static json_t *dispatch(json_t *req, bool *negotiated)
{
    json_t *exec, *args, *ret = NULL;
    QapiErrorClass cls = ERROR_CLASS_GENERIC_ERROR;
    const QmpCommand *cmd;
    Error *err = NULL;
    const char *key, *name;
    json_t *v;
    char desc[256];

    if (!json_is_object(req)) {
        return error_response(cls, "QMP input must be a JSON object");
    }
    json_object_foreach(req, key, v) {
        if (strcmp(key, "execute") && strcmp(key, "arguments") &&
            strcmp(key, "id")) {
            snprintf(desc, sizeof(desc), "QMP input member '%s' is "
                     "unexpected", key);
            return error_response(cls, desc);
        }
    }
    exec = json_object_get(req, "execute");
    if (!exec) {
        return error_response(cls, "QMP input lacks member 'execute'");
    }
    if (!json_is_string(exec)) {
        return error_response(cls, "QMP input member 'execute' must be a "
                              "string");
    }
    args = json_object_get(req, "arguments");
    if (args && !json_is_object(args)) {
        return error_response(cls, "QMP input member 'arguments' must be an "
                              "object");
    }
    name = json_string_value(exec);
    if (!strcmp(name, "qmp_capabilities")) {
        if (*negotiated) {
            return error_response(ERROR_CLASS_COMMAND_NOT_FOUND,
                                  "Capabilities negotiation is already "
                                  "complete, command ignored");
        }
        v = args ? json_object_get(args, "enable") : NULL;
        if (v && json_array_size(v)) {
            snprintf(desc, sizeof(desc), "Capability '%s' not available",
                     json_is_string(json_array_get(v, 0))
                         ? json_string_value(json_array_get(v, 0)) : "?");
            return error_response(cls, desc);
        }
        *negotiated = true;
        return json_pack("{s:{}}", "return");
    }
    if (!*negotiated) {
        return error_response(ERROR_CLASS_COMMAND_NOT_FOUND,
                              "Expecting capabilities negotiation with "
                              "'qmp_capabilities'");
    }
    cmd = qmp_find_command(name);
    if (!cmd) {
        snprintf(desc, sizeof(desc), "The command %s has not been found",
                 name);
        return error_response(ERROR_CLASS_COMMAND_NOT_FOUND, desc);
    }
    args = args ? json_incref(args) : json_object();
    if (check_args(cmd, args, &err) && cmd->fn(args, &ret, &cls, &err)) {
        json_decref(args);
        return json_pack("{s:o}", "return", ret ? ret : json_object());
    }
    json_decref(args);
    json_decref(ret);
    v = error_response(cls, err ? error_get_pretty(err) : "failed");
    error_free(err);
    return v;
}

json_t *monitor_dispatch(json_t *req, bool *negotiated)
{
    json_t *resp = dispatch(req, negotiated);
    json_t *id = json_is_object(req) ? json_object_get(req, "id") : NULL;

    if (id) {
        json_object_set(resp, "id", id);
    }
    return resp;
}

/* --- input ------------------------------------------------------------ */

static void client_parse(QmpClient *c)
{
    size_t pos = 0;

    for (;;) {
        json_error_t jerr;
        json_t *req, *resp;
        bool negotiated;

        while (pos < c->in_len && strchr(" \t\r\n", c->in[pos])) {
            pos++;
        }
        if (pos == c->in_len) {
            break;
        }
        req = json_loadb(c->in + pos, c->in_len - pos,
                         JSON_DISABLE_EOF_CHECK | JSON_DECODE_ANY, &jerr);
        if (!req) {
            char desc[256];
            char *nl;

            if (json_error_code(&jerr) == json_error_premature_end_of_input &&
                c->in_len - pos < MAX_INPUT) {
                break;              /* wait for the rest of the value */
            }
            snprintf(desc, sizeof(desc), "JSON parse error, %s", jerr.text);
            resp = error_response(ERROR_CLASS_GENERIC_ERROR, desc);
            client_send(c, resp);
            json_decref(resp);
            nl = memchr(c->in + pos, '\n', c->in_len - pos);
            pos = nl ? (size_t)(nl - c->in) + 1 : c->in_len;
            continue;
        }
        pos += jerr.position;
        negotiated = c->negotiated;
        resp = monitor_dispatch(req, &negotiated);
        c->negotiated = negotiated;
        client_send(c, resp);
        json_decref(resp);
        json_decref(req);
    }
    memmove(c->in, c->in + pos, c->in_len - pos);
    c->in_len -= pos;
}

static void client_read(void *opaque)
{
    QmpClient *c = opaque;
    ssize_t n;

    if (c->in_cap - c->in_len < 4096) {
        c->in_cap = c->in_cap * 2 + 4096;
        c->in = aiolab_xrealloc(c->in, c->in_cap);
    }
    n = read(c->fd, c->in + c->in_len, c->in_cap - c->in_len);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
        return;
    }
    if (n <= 0) {
        client_close(c);
        return;
    }
    c->in_len += n;
    client_parse(c);
}

static void client_close(QmpClient *c)
{
    QmpClient **p;

    qemu_set_fd_handler(c->fd, NULL, NULL, NULL);
    close(c->fd);
    for (p = &clients; *p; p = &(*p)->next) {
        if (*p == c) {
            *p = c->next;
            break;
        }
    }
    free(c->in);
    free(c->out);
    free(c);
}

static void client_new(int fd)
{
    QmpClient *c = aiolab_xcalloc(1, sizeof(*c));
    json_t *greeting;

    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    c->fd = fd;
    c->next = clients;
    clients = c;
    client_update_handlers(c);
    greeting = json_pack("{s:{s:{s:{s:i,s:i,s:i},s:s},s:[]}}", "QMP",
                         "version", "qemu", "micro", 0, "minor", 0, "major", 9,
                         "package", "aiolab " AIOLAB_VERSION, "capabilities");
    client_send(c, greeting);
    json_decref(greeting);
}

static void listener_accept(void *opaque)
{
    QmpListener *l = opaque;
    int fd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC);

    if (fd >= 0) {
        client_new(fd);
    }
}

/* --- listeners ------------------------------------------------------- */

bool monitor_init_qmp(const char *spec, Error **errp)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    char *copy, *opt, *save = NULL;
    bool server = false, wait = true;
    QmpListener *l;
    int fd;

    if (strncmp(spec, "unix:", 5)) {
        error_setg(errp, "only unix:PATH sockets are supported");
        return false;
    }
    copy = aiolab_xstrdup(spec + 5);
    opt = strtok_r(copy, ",", &save);
    if (!opt || strlen(opt) >= sizeof(sa.sun_path)) {
        error_setg(errp, "UNIX socket path '%s' is too long", opt ? opt : "");
        free(copy);
        return false;
    }
    strcpy(sa.sun_path, opt);
    while ((opt = strtok_r(NULL, ",", &save))) {
        if (!strcmp(opt, "server") || !strcmp(opt, "server=on")) {
            server = true;
        } else if (!strcmp(opt, "server=off")) {
            server = false;
        } else if (!strcmp(opt, "nowait") || !strcmp(opt, "wait=off")) {
            wait = false;
        } else if (!strcmp(opt, "wait=on")) {
            wait = true;
        } else {
            error_setg(errp, "Invalid parameter '%.*s'",
                       (int)strcspn(opt, "="), opt);
            free(copy);
            return false;
        }
    }
    free(copy);
    if (!server) {
        error_setg(errp, "only server=on is supported: aiolab-vm listens");
        return false;
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    unlink(sa.sun_path);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
        listen(fd, 4) < 0) {
        error_setg_errno(errp, errno, "Failed to bind socket to %s",
                         sa.sun_path);
        if (fd >= 0) {
            close(fd);
        }
        return false;
    }
    if (!job_listener) {
        aiolab_job_add_event_listener(monitor_job_event, NULL);
        blk_exp_set_deleted_listener(monitor_export_deleted, NULL);
        job_listener = true;
    }
    l = aiolab_xcalloc(1, sizeof(*l));
    l->fd = fd;
    l->path = aiolab_xstrdup(sa.sun_path);
    l->wait = wait;
    l->next = listeners;
    listeners = l;
    qemu_set_fd_handler(fd, listener_accept, NULL, l);
    return true;
}

void monitor_wait_clients(void)
{
    QmpListener *l;

    for (l = listeners; l; l = l->next) {
        if (l->wait) {
            int fd;

            fprintf(stderr, "%s: QMP: waiting for a connection on %s\n",
                    program_invocation_short_name, l->path);
            bql_unlock();
            fd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC);
            bql_lock();
            if (fd >= 0) {
                client_new(fd);
            }
        }
    }
}

void monitor_cleanup(void)
{
    while (clients) {
        QmpClient *c = clients;

        fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) & ~O_NONBLOCK);
        client_flush(c);
        client_close(c);
    }
    while (listeners) {
        QmpListener *l = listeners;

        qemu_set_fd_handler(l->fd, NULL, NULL, NULL);
        close(l->fd);
        unlink(l->path);
        listeners = l->next;
        free(l->path);
        free(l);
    }
    if (job_listener) {
        aiolab_job_remove_event_listener(monitor_job_event, NULL);
        blk_exp_set_deleted_listener(NULL, NULL);
        job_listener = false;
    }
}
