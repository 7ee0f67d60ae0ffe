/* SPDX-License-Identifier: MIT */
/*
 * block/options.c - the -blockdev style option string:
 *
 *     "driver=file,filename=disk.img,cache.direct=on,node-name=disk0"
 *
 * split at commas into key=value pairs (",," is a literal comma in a
 * value, as in QEMU's QemuOpts).  Each getter marks its key used; after
 * the driver has opened, a key nobody used is an error, so a typo never
 * goes unnoticed.
 *
 * Where QEMU differs: QEMU turns the string into a QDict (keyval_parse)
 * and checks it against a QAPI schema; nested dotted keys become nested
 * dicts.  aiolab keeps a flat list and lets each driver read its own
 * dotted keys ("inject-error.0.errno").
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "block/block_int.h"
#include "util/mem.h"

static BlockOpt *block_opts_find(BlockOpts *opts, const char *key)
{
    int i;

    for (i = 0; i < opts->n; i++) {
        if (!strcmp(opts->v[i].key, key)) {
            return &opts->v[i];
        }
    }
    return NULL;
}

void block_opts_add(BlockOpts *opts, const char *key, const char *value)
{
    opts->v = aiolab_xrealloc(opts->v, (opts->n + 1) * sizeof(*opts->v));
    opts->v[opts->n++] = (BlockOpt){ aiolab_xstrdup(key),
                                     aiolab_xstrdup(value), false };
}

bool block_opts_parse(BlockOpts *opts, const char *str, Error **errp)
{
    size_t len = strlen(str);
    char *buf = aiolab_xmalloc(len + 1);
    const char *p = str;

    while (*p) {
        const char *eq = strchr(p, '=');
        const char *comma = strchr(p, ',');
        size_t n = 0;

        if (!eq || (comma && comma < eq)) {
            error_setg(errp, "Invalid option string '%s': expected "
                       "key=value, got '%.*s'", str,
                       (int)(comma ? comma - p : (long)strlen(p)), p);
            free(buf);
            return false;
        }
        if (eq == p) {
            error_setg(errp, "Invalid option string '%s': empty key", str);
            free(buf);
            return false;
        }
        memcpy(buf, p, eq - p);
        buf[eq - p] = '\0';
        if (block_opts_find(opts, buf)) {
            error_setg(errp, "Invalid option string '%s': '%s' given twice",
                       str, buf);
            free(buf);
            return false;
        }
        /* The value runs to the next single comma; ",," is a comma. */
        char *key = aiolab_xstrdup(buf);
        for (p = eq + 1; *p; p++) {
            if (*p == ',') {
                if (p[1] == ',') {
                    p++;
                } else {
                    break;
                }
            }
            buf[n++] = *p;
        }
        buf[n] = '\0';
        block_opts_add(opts, key, buf);
        free(key);
        if (*p == ',') {
            p++;
        }
    }
    free(buf);
    return true;
}

void block_opts_free(BlockOpts *opts)
{
    int i;

    for (i = 0; i < opts->n; i++) {
        free(opts->v[i].key);
        free(opts->v[i].value);
    }
    free(opts->v);
    opts->v = NULL;
    opts->n = 0;
}

const char *block_opts_get(BlockOpts *opts, const char *key)
{
    BlockOpt *o = block_opts_find(opts, key);

    if (!o) {
        return NULL;
    }
    o->used = true;
    return o->value;
}

const char *block_opts_first_unused(BlockOpts *opts)
{
    int i;

    for (i = 0; i < opts->n; i++) {
        if (!opts->v[i].used) {
            return opts->v[i].key;
        }
    }
    return NULL;
}

bool block_opts_get_bool(BlockOpts *opts, const char *key, bool *out,
                         Error **errp)
{
    const char *v = block_opts_get(opts, key);

    if (!v) {
        return true;
    }
    if (!strcmp(v, "on") || !strcmp(v, "true") || !strcmp(v, "yes")) {
        *out = true;
    } else if (!strcmp(v, "off") || !strcmp(v, "false") ||
               !strcmp(v, "no")) {
        *out = false;
    } else {
        error_setg(errp, "Parameter '%s' expects 'on' or 'off'", key);
        return false;
    }
    return true;
}

/* "64K", "1G", "512": QEMU's qemu_strtosz (binary suffixes). */
bool block_opts_get_size(BlockOpts *opts, const char *key, int64_t *out,
                         Error **errp)
{
    static const char suffixes[] = "kmgtpe";
    const char *v = block_opts_get(opts, key);
    char *end;
    unsigned long long n;
    const char *s;
    int shift = 0;

    if (!v) {
        return true;
    }
    errno = 0;
    n = strtoull(v, &end, 10);
    if (end == v || *v == '-' || errno) {
        goto bad;
    }
    if (*end) {
        s = strchr(suffixes, tolower((unsigned char)*end));
        if (!s || end[1]) {
            goto bad;
        }
        shift = 10 * (int)(s - suffixes + 1);
    }
    if (shift && n > (INT64_MAX >> shift)) {
        goto bad;
    }
    if (n > INT64_MAX) {
        goto bad;
    }
    *out = (int64_t)(n << shift);
    return true;
bad:
    error_setg(errp, "Parameter '%s' expects a non-negative number below "
               "2^63, with an optional suffix k, M, G, T, P or E (got "
               "'%s')", key, v);
    return false;
}

bool block_opts_get_int(BlockOpts *opts, const char *key, int64_t min,
                        int64_t max, int64_t *out, Error **errp)
{
    const char *v = block_opts_get(opts, key);
    char *end;
    long long n;

    if (!v) {
        return true;
    }
    errno = 0;
    n = strtoll(v, &end, 0);
    if (end == v || *end || errno || n < min || n > max) {
        error_setg(errp, "Parameter '%s' expects an integer in [%lld, %lld] "
                   "(got '%s')", key, (long long)min, (long long)max, v);
        return false;
    }
    *out = n;
    return true;
}
