/* SPDX-License-Identifier: MIT */
/*
 * aiolab-img - qemu-img's shape on aiolab's block layer.
 *
 *   build/bin/aiolab-img create -f raw disk.img 256M
 *   build/bin/aiolab-img info disk.img
 *   build/bin/aiolab-img bench -c 100000 -d 32 -t none -i io_uring disk.img
 *   build/bin/aiolab-img bench -d 1 --image-opts driver=null-co,size=1G
 *
 * bench (img-bench.c) is the one that matters: it runs qemu-img bench's
 * loop - a BlockBackend, blk_aio_preadv/pwritev at a queue depth, each
 * completion callback submitting the next request, the main loop's
 * AioContext polled - so that the same command line can be timed on
 * QEMU's block layer and on aiolab's (tests/bench/rows_block.py does).
 * create and info are the minimum to make and inspect a raw image.
 * docs/img.md is the reference.
 *
 * Where QEMU differs: raw images only (no format drivers: -f raw is the
 * file driver itself), no --object, no convert/check/commit/... commands.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "tools/img.h"

static void usage(FILE *f)
{
    fprintf(f,
"aiolab-img - qemu-img's shape on aiolab's block layer\n"
"usage: aiolab-img [--help | --version] command [command options]\n"
"\n"
"Commands:\n"
"  create [-f raw] [-q] filename size   make a raw image of size bytes\n"
"                                        (suffixes k, M, G, T)\n"
"  info [-f fmt] [--image-opts] [--output=human|json] filename\n"
"  bench [options] filename              time requests through a\n"
"                                        BlockBackend (bench --help)\n"
"\n"
"Errors are printed as 'aiolab-img: message' with exit status 1.\n");
}

static int img_create(int argc, char **argv)
{
    const char *fmt = "raw";
    bool quiet = false;
    Error *err = NULL;
    int64_t size;
    int c, fd, ret;
    BlockBackend *blk;

    optind = 1;
    while ((c = getopt(argc, argv, "hf:q")) != -1) {
        switch (c) {
        case 'h':
            printf("usage: aiolab-img create [-f raw] [-q] filename size\n");
            return 0;
        case 'f': fmt = optarg; break;
        case 'q': quiet = true; break;
        default: return 1;
        }
    }
    if (strcmp(fmt, "raw") && strcmp(fmt, "file")) {
        img_error("Unknown file format '%s' (aiolab has raw only)", fmt);
        return 1;
    }
    if (optind != argc - 2) {
        img_error("Expecting image file name and size");
        return 1;
    }
    if (!img_parse_size(argv[optind + 1], &size)) {
        img_error("Invalid image size specified. You may use k, M, G or T "
                  "suffixes for kilobytes, megabytes, gigabytes and "
                  "terabytes.");
        return 1;
    }
    if (!quiet) {
        printf("Formatting '%s', fmt=raw size=%lld\n", argv[optind],
               (long long)size);
    }
    fd = open(argv[optind], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        img_error("%s: Could not create '%s': %s", argv[optind],
                  argv[optind], strerror(errno));
        return 1;
    }
    close(fd);
    /* The size is set through the block layer: blk_truncate(). */
    if (qemu_init_main_loop(&err) < 0) {
        img_error("%s", error_get_pretty(err));
        error_free(err);
        return 1;
    }
    bql_lock();
    blk = blk_new_open(argv[optind], NULL, NULL, BDRV_O_RDWR, &err);
    ret = blk ? blk_truncate(blk, size, true, 0, 0, &err) : -EIO;
    if (ret < 0) {
        img_error("%s: %s", argv[optind], error_get_pretty(err));
        error_free(err);
    }
    blk_unref(blk);
    bql_unlock();
    return ret < 0 ? 1 : 0;
}

static int img_info(int argc, char **argv)
{
    static const struct option long_opts[] = {
        { "help", no_argument, NULL, 'h' },
        { "image-opts", no_argument, NULL, 'I' },
        { "output", required_argument, NULL, 'O' },
        { "force-share", no_argument, NULL, 'U' },
        { NULL, 0, NULL, 0 },
    };
    ImgOpenConf conf = { 0 };
    bool json = false;
    Error *err = NULL;
    ImgImage img;
    struct stat st;
    int64_t len;
    int c;

    optind = 1;
    while ((c = getopt_long(argc, argv, "hf:U", long_opts, NULL)) != -1) {
        switch (c) {
        case 'h':
            printf("usage: aiolab-img info [-f fmt] [--image-opts] "
                   "[--output=human|json] filename\n");
            return 0;
        case 'f': conf.fmt = optarg; break;
        case 'I': conf.image_opts = true; break;
        case 'U': break;
        case 'O':
            if (strcmp(optarg, "json") && strcmp(optarg, "human")) {
                img_error("--output must be used with human or json as "
                          "argument.");
                return 1;
            }
            json = !strcmp(optarg, "json");
            break;
        default: return 1;
        }
    }
    if (optind != argc - 1) {
        img_error("Expecting one image file name");
        return 1;
    }
    conf.filename = argv[optind];
    if (qemu_init_main_loop(&err) < 0) {
        img_error("%s", error_get_pretty(err));
        error_free(err);
        return 1;
    }
    bql_lock();
    if (!img_open(&conf, &img)) {
        bql_unlock();
        return 1;
    }
    len = blk_getlength(img.blk);
    if (json) {
        printf("{\"filename\": \"%s\", \"format\": \"%s\", "
               "\"virtual-size\": %lld}\n", conf.filename,
               bdrv_get_format_name(blk_bs(img.blk)), (long long)len);
    } else {
        printf("image: %s\nfile format: %s\n"
               "virtual size: %lld bytes\n", conf.filename,
               bdrv_get_format_name(blk_bs(img.blk)), (long long)len);
        if (!conf.image_opts && stat(conf.filename, &st) == 0) {
            printf("disk size: %lld bytes\n", (long long)st.st_blocks * 512);
        }
    }
    img_close(&img);
    bql_unlock();
    return 0;
}

int main(int argc, char **argv)
{
    const char *cmd;

    if (argc < 2) {
        img_error("Not enough arguments");
        fprintf(stderr, "Try 'aiolab-img --help' for more information\n");
        return 1;
    }
    cmd = argv[1];
    if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(cmd, "-V") || !strcmp(cmd, "--version")) {
        printf("aiolab-img 0.1.0 (aiolab, a model of QEMU 9.0's block "
               "layer)\n");
        return 0;
    }
    if (!strcmp(cmd, "bench")) {
        return img_bench(argc - 1, argv + 1);
    }
    if (!strcmp(cmd, "create")) {
        return img_create(argc - 1, argv + 1);
    }
    if (!strcmp(cmd, "info")) {
        return img_info(argc - 1, argv + 1);
    }
    img_error("Command not found: %s", cmd);
    return 1;
}
