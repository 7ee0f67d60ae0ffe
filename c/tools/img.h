/* SPDX-License-Identifier: MIT */
/*
 * tools/img.h - the pieces of aiolab-img (c/tools/aiolab-img.c): opening
 * an image the way qemu-img does (img-open.c) and the bench command
 * (img-bench.c).  Not installed.
 */
#ifndef AIOLAB_TOOLS_IMG_H
#define AIOLAB_TOOLS_IMG_H

#include <stdbool.h>
#include <stdint.h>
#include <aiolab/aiolab.h>

/* How to open the image: qemu-img's -f, -t, -i and --image-opts. */
typedef struct ImgOpenConf {
    const char *filename;       /* a file name, or with image_opts an
                                 * option string "driver=...,..." */
    bool image_opts;
    const char *fmt;            /* -f: raw, file, or a driver; NULL: raw */
    const char *cache;          /* -t: none, off, directsync, writeback,
                                 * writethrough; NULL: writeback */
    const char *aio;            /* -i: threads or io_uring; NULL: default */
    bool native;                /* -n: Linux AIO, which aiolab lacks */
    bool writable;
} ImgOpenConf;

/* An open image: the BlockBackend and what the cache mode asks of it. */
typedef struct ImgImage {
    BlockBackend *blk;
    bool writethrough;          /* writes get BDRV_REQ_FUA */
    bool direct;                /* cache.direct=on (O_DIRECT) */
    char *options;              /* the option string bdrv_open() got */
} ImgImage;

/**
 * img_error: print "aiolab-img: message" to stderr (qemu-img's error
 * format: the program's name, then the message).
 * Context: main thread.
 */
void img_error(const char *fmt, ...) AIOLAB_PRINTF(1, 2);

/**
 * img_parse_size: a size with an optional k/K, M, G, T suffix (powers of
 * 1024, as qemu-img's cvtnum) into *@out.
 * Returns: false if @str is not a non-negative size that fits in int64_t.
 * Context: any thread.
 */
bool img_parse_size(const char *str, int64_t *out);

/**
 * img_parse_int: a decimal integer in [@min, @max] into *@out.
 * Returns: false if @str is not one.
 * Context: any thread.
 */
bool img_parse_int(const char *str, int64_t min, int64_t max, int64_t *out);

/**
 * img_apply_object: --object main-loop,id=ID[,aio-max-batch=N]
 * [,thread-pool-min=N][,thread-pool-max=N]: QEMU's main-loop object, the
 * main context's event-loop properties (QEMU's EventLoopBase).  Prints a
 * QEMU-style error for another type, a missing id or an unknown or bad
 * property.
 * Returns: true if applied.
 * Context: main loop, BQL held, after qemu_init_main_loop().
 */
bool img_apply_object(const char *spec);

/**
 * img_open: open @conf's image in a BlockBackend in the main context.
 * Prints a qemu-img style error ("Could not open 'x': ...") on failure.
 * Returns: true with *@img filled, or false.
 * Context: main loop, BQL held.
 */
bool img_open(const ImgOpenConf *conf, ImgImage *img);

/**
 * img_close: drop the BlockBackend and free @img's strings.
 * Context: main loop, BQL held.
 */
void img_close(ImgImage *img);

/**
 * img_bench: the bench command; @argv[0] is "bench".
 * Returns: the exit status (0, or 1 after an error message).
 * Context: main thread, before the main loop exists (it creates it).
 */
int img_bench(int argc, char **argv);

#endif
