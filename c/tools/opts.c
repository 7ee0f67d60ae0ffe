/* SPDX-License-Identifier: MIT */
/*
 * tools/opts.c - the command-line pieces aiolab-vm (vm-options.c) and
 * aiolab-storage-daemon (sd-options.c) share: "PROG: OPT ARG: message"
 * errors, keyval strings (QEMU's util/keyval.c, reduced to flat keys),
 * -object iothread and -blockdev.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "monitor/monitor.h"
#include "tools/opts.h"
#include "util/mem.h"

void opts_verror(const char *prog, const char *opt, const char *arg,
                 const char *fmt, va_list ap)
{
    fprintf(stderr, "%s: %s%s%s: ", prog, opt, arg ? " " : "", arg ? arg : "");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

/* --- keyval and JSON ------------------------------------------------------ */

json_t *opts_keyval(const char *str, const char *implied_key, bool unique,
                    Error **errp)
{
    json_t *obj = json_object();
    char *buf = aiolab_xmalloc(strlen(str) + 1);
    const char *p = str, *key;
    bool first = true;

    while (*p) {
        char *o = buf, *eq;

        /* one element, with ",," unescaped */
        while (*p && !(*p == ',' && p[1] != ',')) {
            if (*p == ',') {
                p++;
            }
            *o++ = *p++;
        }
        *o = 0;
        if (*p == ',') {
            p++;
        }
        eq = strchr(buf, '=');
        if (!eq && !(first && implied_key)) {
            error_setg(errp, "Expected '=' after parameter '%s'", buf);
            goto fail;
        }
        if (eq) {
            *eq = 0;
        }
        key = eq ? buf : implied_key;
        if (unique && json_object_get(obj, key)) {
            error_setg(errp, "Parameter '%s' given twice", key);
            goto fail;
        }
        json_object_set_new(obj, key, json_string(eq ? eq + 1 : buf));
        first = false;
    }
    free(buf);
    return obj;

fail:
    json_decref(obj);
    free(buf);
    return NULL;
}

json_t *opts_keyval_or_json(const char *str, const char *implied_key,
                            Error **errp)
{
    json_error_t jerr;
    json_t *obj;

    if (str[0] != '{') {
        return opts_keyval(str, implied_key, true, errp);
    }
    obj = json_loads(str, 0, &jerr);
    if (!obj || !json_is_object(obj)) {
        error_setg(errp, "JSON parse error, %s",
                   obj ? "not an object" : jerr.text);
        json_decref(obj);
        return NULL;
    }
    return obj;
}

/* --- -object iothread, -blockdev ------------------------------------------ */

bool opts_add_iothread(json_t *kv, Error **errp)
{
    const char *type, *id, *key;
    json_t *props, *v;
    bool ok = true;

    if (!kv) {
        return false;
    }
    type = json_string_value(json_object_get(kv, "qom-type"));
    id = json_string_value(json_object_get(kv, "id"));
    if (!type) {
        error_setg(errp, "Parameter 'qom-type' is missing");
        return false;
    }
    if (strcmp(type, "iothread")) {
        error_setg(errp, "invalid object type: %s", type);
        return false;
    }
    if (!id) {
        error_setg(errp, "Parameter 'id' is missing");
        return false;
    }
    props = json_object();
    json_object_foreach(kv, key, v)
    {
        const char *s = json_string_value(v);
        char *end;
        long long n;

        if (!strcmp(key, "qom-type") || !strcmp(key, "id")) {
            continue;
        }
        errno = 0;
        n = s ? strtoll(s, &end, 10) : 0;
        if (!s || !*s || *end || errno) {
            error_setg(errp, "Parameter '%s' expects an integer", key);
            ok = false;
            break;
        }
        json_object_set_new(props, key, json_integer(n));
    }
    ok = ok && qmp_iothread_add(id, props, errp);
    json_decref(props);
    return ok;
}

bool opts_add_blockdev(json_t *kv, const char *flat, Error **errp)
{
    BlockDriverState *bs = NULL;
    char *made = NULL;

    if (!kv) {
        return false;
    }
    if (!json_object_get(kv, "node-name")) {
        error_setg(errp, "'node-name' must be specified for the root node");
        return false;
    }
    if (!flat) {
        flat = made = qmp_blockdev_options(kv, errp);
    }
    if (flat) {
        bs = bdrv_open(NULL, NULL, flat, BDRV_O_RDWR, errp);
    }
    free(made);
    if (bs) {
        monitor_track_node(bs); /* released at exit */
    }
    return bs != NULL;
}
