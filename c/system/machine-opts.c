/* SPDX-License-Identifier: MIT */
/*
 * system/machine-opts.c - the -workload option: "key=value,..." into an
 * AiolabWorkloadConf, with QEMU's wording for mistakes (QemuOpts and the
 * QAPI visitors: "Invalid parameter 'x'", "Parameter 'x' expects a
 * size", "Parameter 'rw' does not accept value 'x'").
 *
 * Units: sizes in bytes with optional K/M/G/T suffixes (powers of 1024,
 * as QEMU's qemu_strtosz); runtime= and timeout= in seconds (decimals
 * allowed); mmio-hold=, mmio-period= and poll= in microseconds (poll=
 * also takes "always").
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <aiolab/machine.h>
#include "util/mem.h"

static const char *const wl_names[AIOLAB_WL__MAX] = {
    [AIOLAB_WL_NONE] = "none",
    [AIOLAB_WL_RANDREAD] = "randread",
    [AIOLAB_WL_RANDWRITE] = "randwrite",
    [AIOLAB_WL_RANDRW] = "randrw",
    [AIOLAB_WL_SEQWRITE] = "seqwrite",
    [AIOLAB_WL_SEQREAD] = "seqread",
    [AIOLAB_WL_VERIFY] = "verify",
};

const char *aiolab_workload_type_name(AiolabWorkloadType type)
{
    return (unsigned)type < AIOLAB_WL__MAX ? wl_names[type] : "?";
}

void aiolab_workload_conf_init(AiolabWorkloadConf *conf)
{
    memset(conf, 0, sizeof(*conf));
    conf->rw = AIOLAB_WL_NONE;
    conf->queue = -1;
    conf->bs = 4096;
    conf->iodepth = 1;
    conf->rwmixread = 50;
    conf->seed = 1;
    conf->timeout_ns = 30 * 1000000000LL;
}

static bool parse_size(const char *v, uint64_t *out)
{
    char *end;
    double d;
    uint64_t mul = 1;

    errno = 0;
    d = strtod(v, &end);
    if (end == v || errno || d < 0) {
        return false;
    }
    switch (*end) {
    case 'k': case 'K': mul = 1ull << 10; end++; break;
    case 'm': case 'M': mul = 1ull << 20; end++; break;
    case 'g': case 'G': mul = 1ull << 30; end++; break;
    case 't': case 'T': mul = 1ull << 40; end++; break;
    case 'b': case 'B': end++; break;
    }
    if (*end || d * mul >= 18446744073709551615.0 || d != floor(d * mul) / mul) {
        return false;
    }
    *out = (uint64_t)(d * mul);
    return true;
}

static bool parse_uint(const char *v, uint64_t *out)
{
    char *end;

    if (!*v || *v == '-') {
        return false;
    }
    errno = 0;
    *out = strtoull(v, &end, 10);
    return !*end && !errno;
}

/* A duration in @unit_ns units (1e9: seconds, 1e3: microseconds). */
static bool parse_time(const char *v, double unit_ns, int64_t *out)
{
    char *end;
    double d;

    errno = 0;
    d = strtod(v, &end);
    if (end == v || *end || errno || d < 0 || d * unit_ns > 9e18) {
        return false;
    }
    *out = (int64_t)(d * unit_ns + 0.5);
    return true;
}

static bool set_key(AiolabWorkloadConf *c, const char *key, const char *v,
                    Error **errp)
{
    uint64_t u = 0;
    int64_t t = 0;
    int i;

#define NEED(cond, what)                                                   \
    do {                                                                   \
        if (!(cond)) {                                                     \
            error_setg(errp, "Parameter '%s' expects %s", key, what);      \
            return false;                                                  \
        }                                                                  \
    } while (0)

    if (!strcmp(key, "rw")) {
        for (i = 0; i < AIOLAB_WL__MAX; i++) {
            if (!strcmp(v, wl_names[i])) {
                c->rw = i;
                return true;
            }
        }
        error_setg(errp, "Parameter 'rw' does not accept value '%s'", v);
        return false;
    } else if (!strcmp(key, "device")) {
        NEED(*v && strlen(v) < sizeof(c->device), "a device id");
        strcpy(c->device, v);
    } else if (!strcmp(key, "vcpu")) {
        NEED(parse_uint(v, &u) && u < 1024, "a vCPU index");
        c->vcpu = u;
    } else if (!strcmp(key, "queue")) {
        NEED(parse_uint(v, &u) && u < 1024, "a queue index");
        c->queue = u;
    } else if (!strcmp(key, "bs")) {
        NEED(parse_size(v, &u) && u >= 512 && u <= (16u << 20) && u % 512 == 0,
             "a size: a multiple of 512 up to 16M");
        c->bs = u;
    } else if (!strcmp(key, "iodepth")) {
        NEED(parse_uint(v, &u) && u >= 1 && u <= 1024,
             "a number in range [1, 1024]");
        c->iodepth = u;
    } else if (!strcmp(key, "count")) {
        NEED(parse_uint(v, &u), "a number");
        c->count = u;
    } else if (!strcmp(key, "offset") || !strcmp(key, "size")) {
        NEED(parse_size(v, &u) && u < (1ull << 62), "a size");
        *(!strcmp(key, "offset") ? &c->offset : &c->size) = u;
    } else if (!strcmp(key, "rwmixread")) {
        NEED(parse_uint(v, &u) && u <= 100, "a percentage");
        c->rwmixread = u;
    } else if (!strcmp(key, "seed")) {
        NEED(parse_uint(v, &u), "a number");
        c->seed = u;
    } else if (!strcmp(key, "malformed") || !strcmp(key, "reconfigure")) {
        NEED(parse_uint(v, &u) && u >= 1, "a request number (from 1)");
        *(!strcmp(key, "malformed") ? &c->malformed_at
                                    : &c->reconfigure_at) = u;
    } else if (!strcmp(key, "runtime") || !strcmp(key, "timeout")) {
        NEED(parse_time(v, 1e9, &t) && t > 0, "a duration in seconds");
        *(!strcmp(key, "runtime") ? &c->runtime_ns : &c->timeout_ns) = t;
    } else if (!strcmp(key, "poll") && !strcmp(v, "always")) {
        c->poll_ns = AIOLAB_WORKLOAD_POLL_ALWAYS;
    } else if (!strcmp(key, "mmio-hold") || !strcmp(key, "mmio-period") ||
               !strcmp(key, "poll")) {
        NEED(parse_time(v, 1e3, &t) && t <= 10 * 1000000000LL,
             strcmp(key, "poll") ? "a duration in microseconds (at most 10 s)"
             : "a duration in microseconds (at most 10 s) or 'always'");
        if (!strcmp(key, "mmio-hold")) {
            c->mmio_hold_ns = t;
        } else if (!strcmp(key, "mmio-period")) {
            c->mmio_period_ns = t;
        } else {
            c->poll_ns = t;
        }
    } else {
        error_setg(errp, "Invalid parameter '%s'", key);
        return false;
    }
    return true;
#undef NEED
}

bool aiolab_workload_parse(const char *str, AiolabWorkloadConf *conf,
                           Error **errp)
{
    char *copy = aiolab_xstrdup(str), *p = copy, *next;
    bool ok = true;

    aiolab_workload_conf_init(conf);
    while (ok && p && *p) {
        char *eq;

        next = strchr(p, ',');
        if (next) {
            *next++ = 0;
        }
        eq = strchr(p, '=');
        if (!eq) {
            error_setg(errp, "Expected '=' after parameter '%s'", p);
            ok = false;
            break;
        }
        *eq = 0;
        ok = set_key(conf, p, eq + 1, errp);
        p = next;
    }
    free(copy);
    return ok;
}
