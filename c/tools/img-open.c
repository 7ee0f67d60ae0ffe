/* SPDX-License-Identifier: MIT */
/*
 * tools/img-open.c - aiolab-img's way into the block layer: qemu-img's
 * -f / -t / -i / -n / --image-opts turned into one -blockdev style option
 * string and open flags, then blk_new_open().
 *
 *   -f raw t.img -t none -i io_uring
 *       -> "driver=file,filename=t.img,aio=io_uring" + BDRV_O_NOCACHE
 *   --image-opts driver=null-co,size=1G
 *       -> "driver=null-co,size=1G"
 *
 * Cache modes are QEMU's (bdrv_parse_cache_mode): none/off and directsync
 * open with O_DIRECT; writethrough and directsync make every write
 * BDRV_REQ_FUA (the block layer adds the flush), as QEMU's BlockBackend
 * does when its write cache is off.
 *
 * --object main-loop,id=ID,aio-max-batch=N sets the main context's
 * properties, as QEMU's main-loop object does: aio-max-batch bounds how
 * many io_uring requests wait for one submission (0: the engine's default,
 * a whole defer_call section).
 *
 * Where QEMU differs: there is no "raw" format driver in aiolab, so
 * "-f raw" opens the file driver directly (QEMU puts a thin raw node over
 * the file node; "--image-opts driver=file,filename=..." gives QEMU the
 * same one-node graph, and the benchmarks use that).  No cache=unsafe
 * (aiolab cannot ignore flushes), no aio=native (Linux AIO), no image
 * locking (-U is accepted and changes nothing).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tools/img.h"
#include "util/mem.h"

void img_error(const char *fmt, ...)
{
    va_list ap;

    fputs("aiolab-img: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

bool img_parse_int(const char *str, int64_t min, int64_t max, int64_t *out)
{
    char *end;
    long long v;

    if (!str || !*str) {
        return false;
    }
    errno = 0;
    v = strtoll(str, &end, 10);
    if (errno || *end || v < min || v > max) {
        return false;
    }
    *out = v;
    return true;
}

bool img_parse_size(const char *str, int64_t *out)
{
    static const char units[] = "bkmgt";
    const char *u;
    char *end;
    double v;
    int shift = 0;

    if (!str || !*str || *str == '-') {
        return false;
    }
    errno = 0;
    v = strtod(str, &end);
    if (errno || end == str || v < 0) {
        return false;
    }
    if (*end) {
        u = strchr(units, *end | 0x20);
        if (!u || end[1]) {
            return false;
        }
        shift = 10 * (u - units);
    }
    v *= (double)(1ULL << shift);
    if (v >= 9223372036854775807.0 || (shift == 0 && v != (int64_t)v)) {
        return false;
    }
    *out = (int64_t)v;
    return true;
}

/* The value of @key in a "k=v,k2=v2" string (",," not unescaped), or
 * NULL; malloc'ed. */
static char *opt_value(const char *opts, const char *key)
{
    size_t klen = strlen(key);
    const char *p = opts;

    while (p && *p) {
        if (!strncmp(p, key, klen) && p[klen] == '=') {
            const char *v = p + klen + 1;
            size_t n = strcspn(v, ",");

            return aiolab_xstrndup(v, n);
        }
        p = strchr(p, ',');
        while (p && p[1] == ',') {
            p = strchr(p + 2, ',');
        }
        p = p ? p + 1 : NULL;
    }
    return NULL;
}

/* "driver=<drv>,filename=<name with ',' doubled>" */
static char *file_options(const char *drv, const char *filename)
{
    size_t n = strlen(filename);
    char *s = aiolab_xmalloc(strlen(drv) + 2 * n + 32), *q;

    q = s + sprintf(s, "driver=%s,filename=", drv);
    for (; *filename; filename++) {
        *q++ = *filename;
        if (*filename == ',') {
            *q++ = ',';
        }
    }
    *q = '\0';
    return s;
}

/* -t: QEMU's cache modes.  Returns false after an error message. */
static bool parse_cache(const char *mode, ImgImage *img)
{
    if (!mode || !strcmp(mode, "writeback")) {
        return true;
    }
    if (!strcmp(mode, "none") || !strcmp(mode, "off")) {
        img->direct = true;
    } else if (!strcmp(mode, "directsync")) {
        img->direct = img->writethrough = true;
    } else if (!strcmp(mode, "writethrough")) {
        img->writethrough = true;
    } else if (!strcmp(mode, "unsafe")) {
        img_error("Invalid cache option: 'unsafe' is not available in "
                  "aiolab (it cannot ignore flushes); use writeback");
        return false;
    } else {
        img_error("Invalid cache option: '%s' (none, off, directsync, "
                  "writeback, writethrough)", mode);
        return false;
    }
    return true;
}

/* -i / -n.  Returns false after an error message. */
static bool check_aio(const ImgOpenConf *conf, bool direct)
{
    const char *aio = conf->native ? "native" : conf->aio;

    if (!aio || !strcmp(aio, "threads") || !strcmp(aio, "io_uring")) {
        return true;
    }
    if (!strcmp(aio, "native")) {
        if (!direct) {
            img_error("Could not open '%s': aio=native was specified, but "
                      "it requires cache.direct=on, which was not "
                      "specified.", conf->filename);
        } else {
            img_error("Could not open '%s': aio=native (Linux AIO) is not "
                      "modelled by aiolab; use -i io_uring or -i threads",
                      conf->filename);
        }
        return false;
    }
    img_error("Invalid aio option '%s' (threads or io_uring)", aio);
    return false;
}

/* One "key=value" of a main-loop object into *@v.  Returns false after
 * an error message. */
static bool object_prop(const char *kv, const char *key, int64_t *v)
{
    size_t n = strlen(key);

    if (strncmp(kv, key, n) || kv[n] != '=') {
        return false;
    }
    if (!img_parse_int(kv + n + 1, 0, INT32_MAX, v)) {
        img_error("Parameter '%s' expects a non-negative integer, got '%s'",
                  key, kv + n + 1);
        *v = -2;
    }
    return true;
}

bool img_apply_object(const char *spec)
{
    char *copy = aiolab_xstrdup(spec), *save = NULL, *kv;
    int64_t batch = -1, tmin = -1, tmax = -1, *v;
    bool has_id = false, ok = true;
    Error *err = NULL;

    kv = strtok_r(copy, ",", &save);
    if (!kv || (strcmp(kv, "main-loop") && strcmp(kv, "qom-type=main-loop"))) {
        img_error("Invalid object type '%s' (aiolab-img knows main-loop)",
                  kv ? kv : "");
        free(copy);
        return false;
    }
    while (ok && (kv = strtok_r(NULL, ",", &save))) {
        v = NULL;
        if (!strncmp(kv, "id=", 3) && kv[3]) {
            has_id = true;
            continue;
        }
        if (object_prop(kv, "aio-max-batch", &batch)) {
            v = &batch;
        } else if (object_prop(kv, "thread-pool-min", &tmin)) {
            v = &tmin;
        } else if (object_prop(kv, "thread-pool-max", &tmax)) {
            v = &tmax;
        } else {
            img_error("Property 'main-loop.%.*s' not found",
                      (int)strcspn(kv, "="), kv);
        }
        ok = v && *v != -2;
    }
    if (ok && !has_id) {
        img_error("Parameter 'id' is missing");
        ok = false;
    }
    if (ok && batch >= 0) {
        aio_context_set_aio_params(qemu_get_aio_context(), batch);
    }
    if (ok && (tmin >= 0 || tmax >= 0)) {
        aio_context_set_thread_pool_params(qemu_get_aio_context(),
                                           tmin >= 0 ? tmin : 0,
                                           tmax >= 0 ? tmax : 64, &err);
        if (err) {
            img_error("%s", error_get_pretty(err));
            error_free(err);
            ok = false;
        }
    }
    free(copy);
    return ok;
}

bool img_open(const ImgOpenConf *conf, ImgImage *img)
{
    Error *err = NULL;
    char *drv, *opts;
    int flags = conf->writable ? BDRV_O_RDWR : 0;

    memset(img, 0, sizeof(*img));
    if (!parse_cache(conf->cache, img) || !check_aio(conf, img->direct)) {
        return false;
    }
    if (conf->image_opts) {
        opts = aiolab_xstrdup(conf->filename);
    } else {
        const char *fmt = conf->fmt;

        opts = file_options(!fmt || !strcmp(fmt, "raw") ? "file" : fmt,
                            conf->filename);
    }
    drv = opt_value(opts, "driver");
    if (conf->aio && drv && !strcmp(drv, "file")) {
        char *aio = opt_value(opts, "aio");

        /* An aio= in --image-opts wins, as an explicit option does in
         * QEMU; other drivers have no engine to choose. */
        if (!aio) {
            char *more = aiolab_xmalloc(strlen(opts) + strlen(conf->aio) + 8);

            sprintf(more, "%s,aio=%s", opts, conf->aio);
            free(opts);
            opts = more;
        }
        free(aio);
    }
    free(drv);
    if (img->direct) {
        flags |= BDRV_O_NOCACHE;
    }
    img->blk = blk_new_open(NULL, NULL, opts, flags, &err);
    if (!img->blk) {
        img_error("Could not open '%s': %s", conf->filename,
                  error_get_pretty(err));
        error_free(err);
        free(opts);
        return false;
    }
    img->options = opts;
    return true;
}

void img_close(ImgImage *img)
{
    blk_unref(img->blk);
    img->blk = NULL;
    free(img->options);
    img->options = NULL;
}
