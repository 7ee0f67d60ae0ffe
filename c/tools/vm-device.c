/* SPDX-License-Identifier: MIT */
/*
 * tools/vm-device.c - aiolab-vm's -device: the keyval form
 * "virtio-blk,drive=disk0,iothread=io0,num-queues=4" and the JSON form
 * '{"driver": "virtio-blk", "drive": "disk0", "num-queues": 4,
 *   "iothread-vq-mapping": [{"iothread": "io0", "vqs": [0, 2]}, ...]}'
 * (QEMU takes a list-valued property only in JSON), both into a
 * VirtIOBlkConf for aiolab_machine_add_virtio_blk(), which realizes the
 * device and reports QEMU's realize errors.
 *
 * Values are typed as QEMU's qdev properties are: in keyval form every
 * value is a string converted by the property ("Parameter 'num-queues'
 * expects uint16"), in JSON form the JSON type must match ("Invalid
 * parameter type for 'num-queues', expected: integer").
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "tools/vm.h"
#include "util/mem.h"

typedef struct DevProp {
    const char *name;
    char type;                  /* s string, b bool, u uint, e on-error */
    uint64_t max;
    size_t off;                 /* offsetof in VirtIOBlkConf */
} DevProp;

#define P(n, t, m, f) { n, t, m, offsetof(VirtIOBlkConf, f) }
static const DevProp props[] = {
    P("id", 's', 0, id),
    P("iothread", 's', 0, iothread),
    P("serial", 's', 0, serial),
    P("num-queues", 'u', 0xffff, num_queues),
    P("queue-size", 'u', 0xffff, queue_size),
    P("logical_block_size", 'u', 0xffffffffu, logical_block_size),
    P("physical_block_size", 'u', 0xffffffffu, physical_block_size),
    P("max-discard-sectors", 'u', 0xffffffffu, max_discard_sectors),
    P("max-write-zeroes-sectors", 'u', 0xffffffffu, max_write_zeroes_sectors),
    P("ioeventfd", 'b', 0, ioeventfd),
    P("request-merging", 'b', 0, request_merging),
    P("config-wce", 'b', 0, config_wce),
    P("write-cache", 'b', 0, write_cache),
    P("discard", 'b', 0, discard),
    P("write-zeroes", 'b', 0, write_zeroes),
    P("werror", 'e', 0, werror),
    P("rerror", 'e', 0, rerror),
    { NULL },
};
#undef P

static const char *const on_error[] = {
    [BLOCKDEV_ON_ERROR_REPORT] = "report",
    [BLOCKDEV_ON_ERROR_IGNORE] = "ignore",
    [BLOCKDEV_ON_ERROR_ENOSPC] = "enospc",
    [BLOCKDEV_ON_ERROR_STOP] = "stop",
    [BLOCKDEV_ON_ERROR_AUTO] = "auto",
};

static const char *const type_names[] = {
    ['s'] = "string", ['b'] = "boolean", ['u'] = "integer", ['e'] = "string",
};

/* Set one property from a JSON value (@keyval: a string to convert). */
static bool set_prop(VirtIOBlkConf *c, const DevProp *p, json_t *v,
                     bool keyval, Error **errp)
{
    char *field = (char *)c + p->off;
    const char *s = json_string_value(v);
    uint64_t u = 0;
    int i;

    if (!keyval && !(p->type == 'b' ? json_is_boolean(v)
                     : p->type == 'u' ? json_is_integer(v)
                     : json_is_string(v))) {
        error_setg(errp, "Invalid parameter type for '%s', expected: %s",
                   p->name, type_names[(int)p->type]);
        return false;
    }
    switch (p->type) {
    case 's':
        *(const char **)field = s;
        return true;
    case 'b':
        if (!keyval) {
            *(bool *)field = json_is_true(v);
        } else if (!strcmp(s, "on") || !strcmp(s, "off")) {
            *(bool *)field = !strcmp(s, "on");
        } else {
            error_setg(errp, "Parameter '%s' expects 'on' or 'off'", p->name);
            return false;
        }
        return true;
    case 'u':
        if (keyval) {
            char *end;
            errno = 0;
            u = strtoull(s, &end, 0);
            if (!*s || *s == '-' || *end || errno) {
                u = UINT64_MAX;
            }
        } else {
            u = json_integer_value(v) < 0 ? UINT64_MAX
                                          : (uint64_t)json_integer_value(v);
        }
        if (u > p->max) {
            error_setg(errp, "Parameter '%s' expects %s", p->name,
                       p->max == 0xffff ? "uint16" : "uint32");
            return false;
        }
        if (p->max == 0xffff) {
            *(uint16_t *)field = u;
        } else {
            *(uint32_t *)field = u;
        }
        return true;
    default:
        for (i = 0; i < (int)(sizeof(on_error) / sizeof(on_error[0])); i++) {
            if (!strcmp(s, on_error[i])) {
                *(BlockdevOnError *)field = i;
                return true;
            }
        }
        error_setg(errp, "Parameter '%s' does not accept value '%s'", p->name,
                   s);
        return false;
    }
}

typedef struct Mapping {
    IOThreadVirtQueueMapping *items;
    uint16_t **vqs;
    size_t n;
} Mapping;

static void mapping_free(Mapping *mp)
{
    size_t i;

    for (i = 0; i < mp->n; i++) {
        free(mp->vqs[i]);
    }
    free(mp->vqs);
    free(mp->items);
}

/* QAPI's [IOThreadVirtQueueMapping], checked for shape and types. */
static bool parse_mapping(json_t *list, Mapping *mp, Error **errp)
{
    size_t i, j;

    if (!json_is_array(list)) {
        error_setg(errp, "Invalid parameter type for 'iothread-vq-mapping', "
                   "expected: array");
        return false;
    }
    mp->n = json_array_size(list);
    mp->items = aiolab_xcalloc(mp->n + 1, sizeof(*mp->items));
    mp->vqs = aiolab_xcalloc(mp->n + 1, sizeof(*mp->vqs));
    for (i = 0; i < mp->n; i++) {
        json_t *item = json_array_get(list, i), *v;
        const char *key;

        if (!json_is_object(item)) {
            error_setg(errp, "Invalid parameter type for "
                       "'iothread-vq-mapping[%zu]', expected: object", i);
            return false;
        }
        json_object_foreach(item, key, v) {
            if (strcmp(key, "iothread") && strcmp(key, "vqs")) {
                error_setg(errp, "Parameter 'iothread-vq-mapping[%zu].%s' is "
                           "unexpected", i, key);
                return false;
            }
        }
        v = json_object_get(item, "iothread");
        if (!v) {
            error_setg(errp, "Parameter 'iothread-vq-mapping[%zu].iothread' "
                       "is missing", i);
            return false;
        }
        if (!json_is_string(v)) {
            error_setg(errp, "Invalid parameter type for "
                       "'iothread-vq-mapping[%zu].iothread', expected: "
                       "string", i);
            return false;
        }
        mp->items[i].iothread = json_string_value(v);
        v = json_object_get(item, "vqs");
        if (!v) {
            continue;
        }
        if (!json_is_array(v)) {
            error_setg(errp, "Invalid parameter type for "
                       "'iothread-vq-mapping[%zu].vqs', expected: array", i);
            return false;
        }
        mp->vqs[i] = aiolab_xcalloc(json_array_size(v) + 1, sizeof(uint16_t));
        for (j = 0; j < json_array_size(v); j++) {
            json_t *e = json_array_get(v, j);
            if (!json_is_integer(e) || json_integer_value(e) < 0 ||
                json_integer_value(e) > 0xffff) {
                error_setg(errp, "Parameter 'iothread-vq-mapping[%zu].vqs[%zu]'"
                           " expects uint16", i, j);
                return false;
            }
            mp->vqs[i][j] = json_integer_value(e);
        }
        mp->items[i].vqs = mp->vqs[i];
        mp->items[i].n_vqs = json_array_size(v);
    }
    return true;
}

static bool fill_conf(json_t *obj, bool keyval, VirtIOBlkConf *c,
                      Mapping *mp, Error **errp)
{
    const char *key;
    json_t *v;
    int i;

    json_object_foreach(obj, key, v) {
        if (!strcmp(key, "driver") || !strcmp(key, "drive")) {
            if (!json_is_string(v)) {
                error_setg(errp, "Invalid parameter type for '%s', expected: "
                           "string", key);
                return false;
            }
            continue;
        }
        if (!strcmp(key, "iothread-vq-mapping")) {
            if (keyval) {
                error_setg(errp, "iothread-vq-mapping takes a list: use the "
                           "JSON form of -device");
                return false;
            }
            if (!parse_mapping(v, mp, errp)) {
                return false;
            }
            c->iothread_vq_mapping = mp->items;
            c->iothread_vq_mapping_len = mp->n;
            continue;
        }
        for (i = 0; props[i].name && strcmp(props[i].name, key); i++) {
            /* find it */
        }
        if (!props[i].name) {
            error_setg(errp, "Property 'virtio-blk-device.%s' not found", key);
            return false;
        }
        if (!set_prop(c, &props[i], v, keyval, errp)) {
            return false;
        }
    }
    return true;
}

bool vm_add_device(AiolabMachine *m, const char *arg, const char **what,
                   Error **errp)
{
    static char driver_name[64];
    VirtIOBlkConf conf;
    Mapping mp = { 0 };
    json_t *obj, *drive;
    const char *driver;
    bool keyval = arg[0] != '{', ok = false;

    *what = NULL;
    if (keyval) {
        obj = keyval_to_json(arg, "driver", errp);
    } else {
        json_error_t jerr;
        obj = json_loads(arg, 0, &jerr);
        if (!obj) {
            error_setg(errp, "JSON parse error, %s", jerr.text);
        } else if (!json_is_object(obj)) {
            error_setg(errp, "-device: JSON must be an object");
            json_decref(obj);
            obj = NULL;
        }
    }
    if (!obj) {
        return false;
    }
    driver = json_string_value(json_object_get(obj, "driver"));
    if (driver) {
        snprintf(driver_name, sizeof(driver_name), "%s", driver);
        *what = driver_name;
    }
    virtio_blk_conf_init(&conf);
    if (!driver) {
        error_setg(errp, "Parameter 'driver' is missing");
    } else if (strcmp(driver, "virtio-blk") &&
               strcmp(driver, "virtio-blk-pci") &&
               strcmp(driver, "virtio-blk-device")) {
        error_setg(errp, "'%s' is not a valid device model name", driver);
    } else if (fill_conf(obj, keyval, &conf, &mp, errp)) {
        drive = json_object_get(obj, "drive");
        if (!drive) {
            error_setg(errp, "drive property not set");
        } else {
            ok = aiolab_machine_add_virtio_blk(m, &conf,
                                               json_string_value(drive),
                                               errp) != NULL;
        }
    }
    mapping_free(&mp);
    json_decref(obj);
    return ok;
}
