/* SPDX-License-Identifier: MIT */
/*
 * tools/sd-options.c - aiolab-storage-daemon's command line, with
 * qemu-storage-daemon's shape (storage-daemon/qemu-storage-daemon.c:
 * process_options): each option is acted on as it is read, so order
 * matters (a node before the export that serves it, a --chardev before
 * its --monitor).  Every option but --pidfile and --trace takes the
 * keyval form (key=value,...) or JSON ('{"driver": ...}'); the parsing,
 * the error format and --object/--blockdev are shared with aiolab-vm
 * (opts.c).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "monitor/monitor.h"
#include "tools/opts.h"
#include "tools/sd.h"
#include "util/mem.h"

#define SD_MAX_CHARDEVS 16

typedef struct SdChardev {
    char *id;
    char *path;
    bool wait;
} SdChardev;

static SdChardev chardevs[SD_MAX_CHARDEVS];
static int n_chardevs;
static char *pidfile;
static char *trace_file;

void sd_error(const char *opt, const char *arg, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    opts_verror("aiolab-storage-daemon", opt, arg, fmt, ap);
    va_end(ap);
}

void sd_usage(FILE *f)
{
    fputs(
"usage: aiolab-storage-daemon [options]\n"
"\n"
"Serve aiolab's block layer to clients outside the process, with\n"
"qemu-storage-daemon's command line.\n"
"\n"
"  -h, --help             print this help and exit\n"
"  -V, --version          print the version and exit\n"
"  --blockdev [driver=]file|null-co|blkdebug,node-name=NAME[,...]\n"
"                         a block node (aiolab/block.h lists the options),\n"
"                         e.g. driver=file,node-name=disk0,filename=disk.img,\n"
"                         cache.direct=on,aio=io_uring|threads\n"
"  --object iothread,id=ID[,poll-max-ns=NS][,poll-grow=N][,poll-shrink=N]\n"
"                         [,aio-max-batch=N][,thread-pool-min=N]\n"
"                         [,thread-pool-max=N]\n"
"  --nbd-server addr.type=unix,addr.path=PATH[,max-connections=N]\n"
"                         start the NBD server\n"
"  --export [type=]nbd,id=ID,node-name=NODE[,name=NAME][,description=TEXT]\n"
"           [,writable=on|off][,writethrough=on|off][,iothread=ID]\n"
"           [,fixed-iothread=on|off][,multi-conn=on|off]\n"
"                         an NBD export (needs --nbd-server)\n"
"  --export [type=]vhost-user-blk,id=ID,node-name=NODE,addr.type=unix,\n"
"           addr.path=PATH[,writable=on|off][,writethrough=on|off]\n"
"           [,num-queues=N][,logical-block-size=N][,iothread=ID]\n"
"           [,fixed-iothread=on|off][,iothread-vq-mapping.0.iothread=ID,\n"
"           iothread-vq-mapping.1.iothread=ID,...]\n"
"                         a vhost-user-blk export (if built in)\n"
"  --chardev socket,id=ID,path=PATH,server=on[,wait=on|off]\n"
"  --monitor [chardev=]ID[,mode=control][,pretty=on|off]\n"
"                         a QMP monitor on that socket (pretty: ignored)\n"
"  --pidfile PATH         write the process id to PATH (removed at exit)\n"
"  --trace file=PATH      record aiolab's trace events, written to PATH at\n"
"                         exit (Chrome trace JSON: open it in Perfetto)\n"
"\n"
"--object, --blockdev, --nbd-server, --export, --chardev and --monitor\n"
"also take a JSON object ('{\"driver\": \"file\", ...}'); --OPT=ARG is\n"
"--OPT ARG.  Options act in order: a node before its export.\n"
"\n"
"SIGINT, SIGTERM and SIGHUP (and QMP quit) shut down cleanly: exports\n"
"are closed, nodes drained and flushed, sockets removed.\n"
"docs/storage-daemon.md has the details.\n", f);
}

/* --- the options ---------------------------------------------------------- */

/* The option string the library takes, from keyval or JSON. */
static char *sd_flat_opts(const char *str, const char *implied_key,
                          Error **errp)
{
    json_t *obj = opts_keyval_or_json(str, implied_key, errp);
    char *flat;

    if (!obj) {
        return NULL;
    }
    flat = qmp_blockdev_options(obj, errp);
    json_decref(obj);
    return flat;
}

static bool sd_object(const char *arg, Error **errp)
{
    json_t *kv = opts_keyval_or_json(arg, "qom-type", errp);
    bool ok = opts_add_iothread(kv, errp);

    json_decref(kv);
    return ok;
}

static bool sd_blockdev(const char *arg, Error **errp)
{
    json_t *kv = opts_keyval_or_json(arg, "driver", errp);
    bool ok = opts_add_blockdev(kv, NULL, errp);

    json_decref(kv);
    return ok;
}

static bool sd_export(const char *arg, Error **errp)
{
    char *flat = sd_flat_opts(arg, "type", errp);
    bool ok = flat && blk_exp_add(flat, errp);

    free(flat);
    return ok;
}

static bool sd_nbd_server(const char *arg, Error **errp)
{
    char *flat = sd_flat_opts(arg, NULL, errp);
    bool ok = flat && nbd_server_start(flat, errp);

    free(flat);
    return ok;
}

static bool sd_chardev(const char *arg, Error **errp)
{
    json_t *kv = opts_keyval_or_json(arg, "backend", errp);
    const char *backend, *id, *path, *server, *wait, *key;
    json_t *v;
    bool ok = false;

    if (!kv) {
        return false;
    }
    backend = json_string_value(json_object_get(kv, "backend"));
    id = json_string_value(json_object_get(kv, "id"));
    path = json_string_value(json_object_get(kv, "path"));
    server = json_string_value(json_object_get(kv, "server"));
    wait = json_string_value(json_object_get(kv, "wait"));
    json_object_foreach(kv, key, v) {
        if (strcmp(key, "backend") && strcmp(key, "id") &&
            strcmp(key, "path") && strcmp(key, "server") &&
            strcmp(key, "wait")) {
            error_setg(errp, "Invalid parameter '%s'", key);
            goto out;
        }
    }
    if (!backend || strcmp(backend, "socket")) {
        error_setg(errp, "chardev backend '%s' is not supported (only "
                   "socket)", backend ? backend : "");
    } else if (!id) {
        error_setg(errp, "Parameter 'id' is missing");
    } else if (!path) {
        error_setg(errp, "chardev: socket: no path given (only unix "
                   "sockets are supported)");
    } else if (!server || strcmp(server, "on")) {
        error_setg(errp, "only server=on is supported: the daemon listens");
    } else if (wait && strcmp(wait, "on") && strcmp(wait, "off")) {
        error_setg(errp, "Parameter 'wait' expects 'on' or 'off'");
    } else if (n_chardevs == SD_MAX_CHARDEVS) {
        error_setg(errp, "too many chardevs (at most %d)", SD_MAX_CHARDEVS);
    } else {
        chardevs[n_chardevs].id = aiolab_xstrdup(id);
        chardevs[n_chardevs].path = aiolab_xstrdup(path);
        chardevs[n_chardevs].wait = !wait || !strcmp(wait, "on");
        n_chardevs++;
        ok = true;
    }
out:
    json_decref(kv);
    return ok;
}

static bool sd_monitor(const char *arg, Error **errp)
{
    json_t *kv = opts_keyval_or_json(arg, "chardev", errp), *v;
    const char *id, *mode, *key;
    char spec[256];
    bool ok = false;
    int i;

    if (!kv) {
        return false;
    }
    id = json_string_value(json_object_get(kv, "chardev"));
    mode = json_string_value(json_object_get(kv, "mode"));
    json_object_foreach(kv, key, v) {
        if (strcmp(key, "chardev") && strcmp(key, "mode") &&
            strcmp(key, "pretty")) {
            error_setg(errp, "Invalid parameter '%s'", key);
            json_decref(kv);
            return false;
        }
    }
    if (!id) {
        error_setg(errp, "Parameter 'chardev' is missing");
    } else if (mode && strcmp(mode, "control")) {
        error_setg(errp, "Only QMP monitors (mode=control) are supported");
    } else {
        for (i = 0; i < n_chardevs && strcmp(chardevs[i].id, id); i++) {
            /* find it */
        }
        if (i == n_chardevs) {
            error_setg(errp, "chardev \"%s\" not found", id);
        } else {
            snprintf(spec, sizeof(spec), "unix:%s,server=on,wait=%s",
                     chardevs[i].path, chardevs[i].wait ? "on" : "off");
            ok = monitor_init_qmp(spec, errp);
        }
    }
    json_decref(kv);
    return ok;
}

static bool sd_write_pidfile(const char *path, Error **errp)
{
    FILE *f = fopen(path, "w");

    if (!f || fprintf(f, "%d\n", (int)getpid()) < 0 || fclose(f)) {
        error_setg_errno(errp, errno, "cannot create PID file");
        return false;
    }
    pidfile = aiolab_xstrdup(path);
    return true;
}

const char *sd_pidfile(void)
{
    return pidfile;
}

/* QEMU's --trace [enable=PATTERN][,events=FILE][,file=FILE], reduced to
 * file=: aiolab's trace events are all recorded or none. */
static bool sd_trace(const char *arg, Error **errp)
{
    if (strncmp(arg, "file=", 5) != 0 || !arg[5] || strchr(arg, ',')) {
        error_setg(errp, "expected file=PATH (aiolab records all of its "
                   "trace events: no patterns or event files)");
        return false;
    }
    free(trace_file);
    trace_file = aiolab_xstrdup(arg + 5);
    aiolab_trace_set_enabled(true);
    return true;
}

const char *sd_trace_file(void)
{
    return trace_file;
}

/* --- the table ------------------------------------------------------------ */

typedef struct SdOption {
    const char *name;
    bool (*fn)(const char *arg, Error **errp);
} SdOption;

static const SdOption sd_options[] = {
    { "--blockdev", sd_blockdev },
    { "--object", sd_object },
    { "--nbd-server", sd_nbd_server },
    { "--export", sd_export },
    { "--chardev", sd_chardev },
    { "--monitor", sd_monitor },
    { "--pidfile", sd_write_pidfile },
    { "--trace", sd_trace },
    { NULL, NULL },
};

bool sd_process_args(int argc, char **argv, bool *exit_now)
{
    int i, k;

    *exit_now = false;
    for (i = 1; i < argc; i++) {
        char *opt = argv[i], *eq = NULL, name[64];
        const char *arg;
        Error *err = NULL;

        if (!strcmp(opt, "-h") || !strcmp(opt, "--help")) {
            sd_usage(stdout);
            *exit_now = true;
            return true;
        }
        if (!strcmp(opt, "-V") || !strcmp(opt, "--version")) {
            printf("aiolab-storage-daemon %s (a model of "
                   "qemu-storage-daemon 9.0)\n", aiolab_version());
            *exit_now = true;
            return true;
        }
        snprintf(name, sizeof(name), "%.*s", (int)strcspn(opt, "="), opt);
        for (k = 0; sd_options[k].name && strcmp(sd_options[k].name, name);
             k++) {
            /* find it */
        }
        if (!sd_options[k].name) {
            sd_error(opt, NULL, "unrecognized option (try --help)");
            return false;
        }
        eq = strchr(opt, '=');
        if (eq) {
            arg = eq + 1;
        } else if (i + 1 < argc) {
            arg = argv[++i];
        } else {
            sd_error(name, NULL, "requires an argument");
            return false;
        }
        if (!sd_options[k].fn(arg, &err)) {
            sd_error(name, arg, "%s", error_get_pretty(err));
            error_free(err);
            return false;
        }
    }
    return true;
}
