/* SPDX-License-Identifier: MIT */
/*
 * tools/img-bench.c - `aiolab-img bench`: qemu-img bench on aiolab's block
 * layer.  It drives the layer the way qemu-img bench drives QEMU's:
 *
 *   main thread (BQL held), the main loop's AioContext
 *   ---------------------------------------------------
 *   blk = blk_new_open(...)
 *   t0; submit depth requests: blk_aio_preadv/pwritev(blk, off, qiov,
 *                                                  bench_cb, slot)
 *   while requests remain: aio_poll(ctx, true)
 *       bench_cb(slot, ret)            a request completed
 *         count it; flush due?  (--flush-interval: drain, then
 *                                blk_aio_flush; --no-drain: at once)
 *         resubmit from the callback: next offset, same slot
 *   t1; "Run completed in (t1 - t0) seconds."
 *
 * Each request in flight has its own buffer ("slot"), aligned for
 * O_DIRECT.  Offsets go from -o in steps of -S (default: the buffer size)
 * and wrap to -o before they would pass the end of the image; aiolab's
 * extension --random picks each offset uniformly among those same
 * positions instead, so that the tool can be compared with fio's
 * randread.  --output=json prints one JSON object instead of the two
 * human lines (the benchmark harness reads it), with the process's CPU
 * time over the run (CLOCK_PROCESS_CPUTIME_ID: every thread, the
 * thread pool's and io_uring's kernel workers included) per request.
 *
 * Where QEMU differs: qemu-img bench runs main_loop_wait(false) (the
 * GLib main loop around the main AioContext); aiolab-img polls the main
 * loop's AioContext itself with aio_poll(ctx, true), the loop an
 * IOThread runs.  No --object, no -U effect (no image locking).
 */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "tools/img.h"
#include "util/mem.h"

typedef struct BenchData BenchData;

typedef struct BenchSlot {
    BenchData *b;
    QEMUIOVector qiov;
    void *buf;
} BenchSlot;

/* Everything lives in the main thread: no locks. */
struct BenchData {
    BlockBackend *blk;
    int64_t image_size;
    int64_t start, step, bufsize;   /* -o, -S, -s */
    int64_t next;                   /* next sequential offset */
    int64_t count, depth;           /* -c, -d */
    bool write, random;
    uint64_t rng;
    BdrvRequestFlags wflags;        /* BDRV_REQ_FUA if writethrough */
    int64_t flush_interval;
    bool drain_on_flush;

    int64_t submitted, completed, in_flight;
    int64_t flushes, flushes_in_flight;
    bool flush_due, in_flush;       /* waiting for in_flight == 0 / flush */
    int ret;                        /* first error */
    BenchSlot **free_slots;         /* stack of idle slots */
    int64_t n_free;
};

/* The command line, shaped like qemu-img bench's. */
typedef struct BenchOpts {
    ImgOpenConf open;
    const char *objects[8];         /* --object main-loop,... */
    int n_objects;
    int64_t count, depth, bufsize, step, offset, pattern, flush_interval;
    bool write, no_drain, quiet, random, json;
} BenchOpts;

static void bench_submit(BenchData *b);

static int64_t next_offset(BenchData *b)
{
    int64_t off;

    if (b->random) {
        int64_t slots = (b->image_size - b->start - b->bufsize) / b->step + 1;

        /* xorshift64*: cheap, and the same sequence on every run. */
        b->rng ^= b->rng >> 12;
        b->rng ^= b->rng << 25;
        b->rng ^= b->rng >> 27;
        return b->start +
               (int64_t)((b->rng * 2685821657736338717ULL) % slots) * b->step;
    }
    off = b->next;
    b->next += b->step;
    if (b->next + b->bufsize > b->image_size) {
        b->next = b->start;
    }
    return off;
}

static void bench_flush_cb(void *opaque, int ret)
{
    BenchData *b = opaque;

    if (ret < 0 && !b->ret) {
        b->ret = ret;
    }
    b->flushes_in_flight--;
    if (b->in_flush) {
        b->in_flush = false;
        bench_submit(b);
    }
}

static void bench_flush(BenchData *b)
{
    b->flush_due = false;
    b->flushes++;
    b->flushes_in_flight++;
    b->in_flush = b->drain_on_flush;
    blk_aio_flush(b->blk, bench_flush_cb, b);
}

static void bench_cb(void *opaque, int ret)
{
    BenchSlot *slot = opaque;
    BenchData *b = slot->b;

    if (ret < 0 && !b->ret) {
        b->ret = ret;
    }
    b->completed++;
    b->in_flight--;
    b->free_slots[b->n_free++] = slot;
    if (b->flush_interval && b->completed % b->flush_interval == 0) {
        b->flush_due = true;
    }
    bench_submit(b);
}

/* Flush if one is due, then keep depth requests in flight. */
static void bench_submit(BenchData *b)
{
    if (b->flush_due && (!b->drain_on_flush || b->in_flight == 0)) {
        bench_flush(b);
    }
    if (b->ret || b->in_flush || (b->flush_due && b->drain_on_flush)) {
        return;
    }
    while (b->submitted < b->count && b->in_flight < b->depth) {
        BenchSlot *slot = b->free_slots[--b->n_free];
        int64_t off = next_offset(b);

        /* Count it first: its callback may run before we loop again. */
        b->submitted++;
        b->in_flight++;
        if (b->write) {
            blk_aio_pwritev(b->blk, off, &slot->qiov, b->wflags, bench_cb,
                            slot);
        } else {
            blk_aio_preadv(b->blk, off, &slot->qiov, 0, bench_cb, slot);
        }
    }
}

static bool bench_done(BenchData *b)
{
    if (b->in_flight || b->flushes_in_flight) {
        return false;
    }
    return b->ret || (b->completed == b->count && !b->flush_due);
}

static BenchSlot *bench_slots_new(BenchData *b, int pattern)
{
    BenchSlot *slots = aiolab_xcalloc(b->depth, sizeof(*slots));

    b->free_slots = aiolab_xcalloc(b->depth, sizeof(*b->free_slots));
    for (int64_t i = 0; i < b->depth; i++) {
        if (posix_memalign(&slots[i].buf, 4096, b->bufsize)) {
            img_error("out of memory");
            exit(1);
        }
        memset(slots[i].buf, pattern, b->bufsize);
        slots[i].b = b;
        qemu_iovec_init_buf(&slots[i].qiov, slots[i].buf, b->bufsize);
        b->free_slots[b->n_free++] = &slots[i];
    }
    return slots;
}

static void bench_slots_free(BenchData *b, BenchSlot *slots)
{
    for (int64_t i = 0; i < b->depth; i++) {
        free(slots[i].buf);
    }
    free(slots);
    free(b->free_slots);
}

static double ts_diff(const struct timespec *t0, const struct timespec *t1)
{
    return (t1->tv_sec - t0->tv_sec) + (t1->tv_nsec - t0->tv_nsec) / 1e9;
}

static void bench_print_json(const BenchOpts *o, const ImgImage *img,
                             const BenchData *b, double secs, double cpu)
{
    json_t *j = json_pack(
        "{s:s, s:s, s:s, s:b, s:b, s:s, s:I, s:I, s:I, s:I, s:I, s:b, "
        "s:I, s:I, s:b, s:f, s:f, s:f, s:f, s:f, s:b, s:b, s:I}",
        "command", "bench", "filename", o->open.filename,
        "options", img->options, "direct", img->direct,
        "writethrough", img->writethrough,
        "mode", o->write ? "write" : "read",
        "requests", (json_int_t)b->count, "depth", (json_int_t)b->depth,
        "bufsize", (json_int_t)b->bufsize, "step", (json_int_t)b->step,
        "offset", (json_int_t)b->start, "random", b->random,
        "flush_interval", (json_int_t)b->flush_interval,
        "flushes", (json_int_t)b->flushes, "drain_on_flush",
        b->drain_on_flush, "seconds", secs,
        "ns_per_request", secs * 1e9 / (double)b->count,
        "iops", (double)b->count / secs, "cpu_seconds", cpu,
        "cpu_ns_per_request", cpu * 1e9 / (double)b->count,
        "trace", aiolab_trace_get_enabled(),
        "checks", aiolab_checks_enabled(), "aio_max_batch",
        (json_int_t)aiolab_aio_context_get_aio_max_batch(
            qemu_get_aio_context()));

    json_dumpf(j, stdout, JSON_COMPACT);
    putchar('\n');
    json_decref(j);
}

/* Open, run, report.  Returns the exit status. */
static int bench_run(const BenchOpts *o)
{
    AioContext *ctx = qemu_get_aio_context();
    BenchData b = {
        .count = o->count, .depth = o->depth, .bufsize = o->bufsize,
        .step = o->step ? o->step : o->bufsize, .start = o->offset,
        .write = o->write, .random = o->random, .rng = 0x9e3779b97f4a7c15ULL,
        .flush_interval = o->flush_interval, .drain_on_flush = !o->no_drain,
    };
    struct timespec t0, t1, c0, c1;
    BenchSlot *slots;
    ImgImage img;
    double secs;

    for (int i = 0; i < o->n_objects; i++) {
        if (!img_apply_object(o->objects[i])) {
            return 1;
        }
    }
    if (!img_open(&o->open, &img)) {
        return 1;
    }
    b.blk = img.blk;
    b.wflags = img.writethrough ? BDRV_REQ_FUA : 0;
    b.image_size = blk_getlength(b.blk);
    if (b.image_size < b.start + b.bufsize) {
        img_error("The image (%lld bytes) is too small for requests of "
                  "%lld bytes at offset %lld", (long long)b.image_size,
                  (long long)b.bufsize, (long long)b.start);
        img_close(&img);
        return 1;
    }
    b.next = b.start;
    slots = bench_slots_new(&b, (int)o->pattern);
    if (!o->quiet && !o->json) {
        printf("Sending %lld %s requests, %lld bytes each, %lld in parallel "
               "(%s offset %lld, step size %lld)\n", (long long)b.count,
               b.write ? "write" : "read", (long long)b.bufsize,
               (long long)b.depth, b.random ? "random offsets from"
                                            : "starting at",
               (long long)b.start, (long long)b.step);
        if (b.flush_interval) {
            printf("Sending flush every %lld requests\n",
                   (long long)b.flush_interval);
        }
        fflush(stdout);
    }
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    bench_submit(&b);
    while (!bench_done(&b)) {
        aio_poll(ctx, true);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
    secs = ts_diff(&t0, &t1);
    if (b.ret < 0) {
        img_error("Failed request: %s", strerror(-b.ret));
    } else if (o->json) {
        bench_print_json(o, &img, &b, secs, ts_diff(&c0, &c1));
    } else if (!o->quiet) {
        printf("Run completed in %3.3f seconds.\n", secs);
    }
    bench_slots_free(&b, slots);
    img_close(&img);
    return b.ret < 0 ? 1 : 0;
}

static void bench_usage(FILE *f)
{
    fprintf(f,
"usage: aiolab-img bench [-c count] [-d depth] [-f fmt] [--flush-interval=N]\n"
"           [-i aio] [-n] [--no-drain] [-o offset] [--pattern=byte] [-q]\n"
"           [-s buffer_size] [-S step_size] [-t cache] [-w] [-U]\n"
"           [--image-opts] [--object main-loop,id=ID,...] [--random]\n"
"           [--output=human|json] filename\n"
"\n"
"Run count requests (default 75000) of buffer_size bytes (default 4096),\n"
"depth of them in flight (default 64), through a BlockBackend of\n"
"aiolab's block layer, and time them.  Reads unless -w.\n"
"\n"
"  -f fmt        raw or file (the file driver), or another driver's name\n"
"  --image-opts  filename is an option string: driver=null-co,size=1G\n"
"  -t cache      none, off, directsync (O_DIRECT), writeback (default),\n"
"                writethrough\n"
"  -i aio        threads (default) or io_uring\n"
"  -n            aio=native: not in aiolab (an error, as in qemu-img\n"
"                without -t none)\n"
"  -o offset     first offset; -S step between requests (default\n"
"                buffer_size); offsets wrap to -o at the end of the image\n"
"  --object main-loop,id=ID[,aio-max-batch=N][,thread-pool-min=N]\n"
"                [,thread-pool-max=N]  the main context's properties\n"
"                (aio-max-batch=1: each io_uring request submitted at once)\n"
"  --random      aiolab: uniformly random offsets at those positions\n"
"  --pattern=N   fill the write buffers with byte N (default 0)\n"
"  --flush-interval=N  a flush every N requests (-w only); --no-drain:\n"
"                do not wait for the requests in flight before it\n"
"  --output=json one JSON object with the figures (for scripts)\n"
"  -q            print nothing; -U accepted (aiolab locks no images)\n");
}

enum {
    OPT_FLUSH_INTERVAL = 256, OPT_NO_DRAIN, OPT_PATTERN, OPT_IMAGE_OPTS,
    OPT_RANDOM, OPT_OUTPUT, OPT_OBJECT,
};

static const struct option bench_long_opts[] = {
    { "help", no_argument, NULL, 'h' },
    { "flush-interval", required_argument, NULL, OPT_FLUSH_INTERVAL },
    { "no-drain", no_argument, NULL, OPT_NO_DRAIN },
    { "pattern", required_argument, NULL, OPT_PATTERN },
    { "image-opts", no_argument, NULL, OPT_IMAGE_OPTS },
    { "force-share", no_argument, NULL, 'U' },
    { "random", no_argument, NULL, OPT_RANDOM },
    { "output", required_argument, NULL, OPT_OUTPUT },
    { "object", required_argument, NULL, OPT_OBJECT },
    { NULL, 0, NULL, 0 },
};

/* One option.  Returns 0 to go on, else an exit status + 1. */
static int bench_opt(int c, const char *arg, BenchOpts *o)
{
    switch (c) {
    case 'h': bench_usage(stdout); return 1;
    case 'c':
        if (!img_parse_int(arg, 1, INT32_MAX, &o->count)) {
            img_error("Invalid request count specified: '%s'", arg);
            return 2;
        }
        return 0;
    case 'd':
        if (!img_parse_int(arg, 1, 1024, &o->depth)) {
            img_error("Invalid queue depth specified: '%s' (1 to 1024)",
                      arg);
            return 2;
        }
        return 0;
    case 's':
        if (!img_parse_size(arg, &o->bufsize) || o->bufsize < 1 ||
            o->bufsize > INT32_MAX) {
            img_error("Invalid buffer size specified: '%s'", arg);
            return 2;
        }
        return 0;
    case 'S':
        if (!img_parse_size(arg, &o->step) || o->step < 1 ||
            o->step > INT32_MAX) {
            img_error("Invalid step size specified: '%s'", arg);
            return 2;
        }
        return 0;
    case 'o':
        if (!img_parse_size(arg, &o->offset)) {
            img_error("Invalid offset specified: '%s'", arg);
            return 2;
        }
        return 0;
    case OPT_PATTERN:
        if (!img_parse_int(arg, 0, 0xff, &o->pattern)) {
            img_error("Invalid pattern byte specified: '%s'", arg);
            return 2;
        }
        return 0;
    case OPT_FLUSH_INTERVAL:
        if (!img_parse_int(arg, 1, INT32_MAX, &o->flush_interval)) {
            img_error("Invalid flush interval specified: '%s'", arg);
            return 2;
        }
        return 0;
    case OPT_OUTPUT:
        if (strcmp(arg, "json") && strcmp(arg, "human")) {
            img_error("--output must be used with human or json as "
                      "argument.");
            return 2;
        }
        o->json = !strcmp(arg, "json");
        return 0;
    case OPT_OBJECT:
        if (o->n_objects == 8) {
            img_error("--object: at most 8");
            return 2;
        }
        o->objects[o->n_objects++] = arg;
        return 0;
    case 'f': o->open.fmt = arg; return 0;
    case 't': o->open.cache = arg; return 0;
    case 'i': o->open.aio = arg; return 0;
    case 'n': o->open.native = true; return 0;
    case 'w': o->write = true; return 0;
    case 'q': o->quiet = true; return 0;
    case 'U': return 0;
    case OPT_NO_DRAIN: o->no_drain = true; return 0;
    case OPT_IMAGE_OPTS: o->open.image_opts = true; return 0;
    case OPT_RANDOM: o->random = true; return 0;
    default:
        fprintf(stderr, "Try 'aiolab-img bench --help' for more "
                "information.\n");
        return 2;
    }
}

/* The checks qemu-img makes once every option is known. */
static bool bench_check(BenchOpts *o, int argc, char **argv)
{
    if (optind != argc - 1) {
        img_error("Expecting one image file name");
        return false;
    }
    o->open.filename = argv[optind];
    o->open.writable = o->write;
    if (o->flush_interval && !o->write) {
        img_error("--flush-interval is only available in write tests");
        return false;
    }
    if (o->no_drain && !o->flush_interval) {
        img_error("--no-drain requires --flush-interval");
        return false;
    }
    if (o->open.image_opts && o->open.fmt) {
        img_error("--image-opts and -f are mutually exclusive");
        return false;
    }
    return true;
}

int img_bench(int argc, char **argv)
{
    BenchOpts o = { .count = 75000, .depth = 64, .bufsize = 4096 };
    Error *err = NULL;
    int c, ret;

    optind = 1;
    while ((c = getopt_long(argc, argv, "hc:d:f:i:no:qs:S:t:wU",
                            bench_long_opts, NULL)) != -1) {
        int st = bench_opt(c, optarg, &o);

        if (st) {
            return st - 1;
        }
    }
    if (!bench_check(&o, argc, argv)) {
        return 1;
    }
    aiolab_thread_set_name("main");
    if (qemu_init_main_loop(&err) < 0) {
        img_error("%s", error_get_pretty(err));
        error_free(err);
        return 1;
    }
    bql_lock();
    ret = bench_run(&o);
    bql_unlock();
    return ret;
}
