/* SPDX-License-Identifier: MIT */
/*
 * block/file-posix.c - the "file" driver: a host file or block device
 * (QEMU's block/file-posix.c).
 *
 *   "driver=file,filename=disk.img,aio=threads|io_uring,cache.direct=on,
 *    read-only=on,discard=unmap"
 *
 * Two engines carry a request to the kernel:
 *
 *   aio=threads (default)   the request coroutine hands preadv/pwritev/
 *                           fdatasync/fallocate to a worker of the current
 *                           context's thread pool and yields; the
 *                           completion BH wakes it (thread_pool_submit_co)
 *   aio=io_uring            SQEs on the current context's ring, submitted
 *                           in batches; completions arrive through an
 *                           eventfd handler in that context
 *                           (file-io_uring.c)
 *
 * Either way the request runs in the submitter's AioContext; the node's
 * own context only matters for io_uring set-up, which follows it
 * (attach hook).  If the kernel refuses io_uring the node falls back to
 * the thread pool, with a warning.
 *
 * cache.direct=on opens with O_DIRECT: the page cache is bypassed, and
 * the kernel wants offsets, lengths and buffer addresses aligned to the
 * host's block size.  At open the driver probes that size as QEMU's
 * raw_probe_alignment does (the first of 512..4096 at which an O_DIRECT
 * read succeeds) and publishes it as request_alignment, so that the
 * generic layer pads unaligned requests; a caller's buffer that is not
 * aligned in memory is bounced through an aligned copy (on the thread
 * pool, which io_uring requests then use too, as QEMU does).
 *
 * Where QEMU differs: no aio=native (Linux AIO), no file locking, no
 * host_device/host_cdrom drivers, no block status (SEEK_DATA), no
 * preallocation modes; discard and write-zeroes are fallocate() only.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/falloc.h>
#include "block/block_int.h"

#define MAX_BLOCKSIZE 4096

#if defined(__SANITIZE_THREAD__)
#define AIOLAB_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define AIOLAB_TSAN 1
#endif
#endif

typedef struct BDRVRawState {
    int fd;
    bool needs_alignment;           /* O_DIRECT */
    uint32_t request_alignment;
    size_t buf_align;
    bool use_linux_io_uring;        /* atomic: cleared on fallback */
} BDRVRawState;

enum {
    RAW_AIO_READ = QEMU_AIO_READ,
    RAW_AIO_WRITE = QEMU_AIO_WRITE,
    RAW_AIO_FLUSH,
    RAW_AIO_WRITE_ZEROES,
    RAW_AIO_DISCARD,
    RAW_AIO_TRUNCATE,
};

/* What a worker thread needs: it must not touch the block layer. */
typedef struct RawPosixAIOData {
    int type;
    int fd;
    int64_t offset;
    int64_t bytes;
    QEMUIOVector *qiov;
    bool misaligned;                /* bounce through an aligned buffer */
    size_t buf_align;
    BdrvRequestFlags flags;
} RawPosixAIOData;

/* --- worker functions (thread pool) -------------------------------------- */

/* preadv/pwritev until done, EOF or an error.  Returns bytes or -errno. */
static ssize_t raw_rw_vector(RawPosixAIOData *a, QEMUIOVector *qiov)
{
    QEMUIOVector rest;
    size_t done = 0;

    qemu_iovec_init(&rest, qiov->niov);
    while (done < qiov->size) {
        ssize_t n;

        qemu_iovec_reset(&rest);
        qemu_iovec_concat(&rest, qiov, done, qiov->size - done);
        if (a->type == RAW_AIO_WRITE) {
            n = pwritev(a->fd, rest.iov, rest.niov, a->offset + done);
        } else {
            n = preadv(a->fd, rest.iov, rest.niov, a->offset + done);
        }
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            qemu_iovec_destroy(&rest);
            return -errno;
        }
        if (n == 0) {
            break;              /* end of file */
        }
        done += n;
    }
    qemu_iovec_destroy(&rest);
    return done;
}

static int handle_aiocb_rw(void *opaque)
{
    RawPosixAIOData *a = opaque;
    QEMUIOVector bounce_qiov, *qiov = a->qiov;
    void *bounce = NULL;
    ssize_t n;

    if (a->misaligned) {
        /* O_DIRECT and a buffer the kernel would refuse: use our own. */
        if (posix_memalign(&bounce, MAX(a->buf_align, 4096),
                           a->bytes ? a->bytes : 1)) {
            return -ENOMEM;
        }
        if (a->type == RAW_AIO_WRITE) {
            qemu_iovec_to_buf(a->qiov, 0, bounce, a->bytes);
        }
        qemu_iovec_init_buf(&bounce_qiov, bounce, a->bytes);
        qiov = &bounce_qiov;
    }
    n = raw_rw_vector(a, qiov);
    if (n >= 0 && n < a->bytes) {
        if (a->type == RAW_AIO_WRITE) {
            n = -EINVAL;
        } else {
            /* Short read: beyond the end of the file reads as zeroes. */
            qemu_iovec_memset(qiov, n, 0, a->bytes - n);
            n = a->bytes;
        }
    }
    if (bounce) {
        if (n > 0 && a->type == RAW_AIO_READ) {
            qemu_iovec_from_buf(a->qiov, 0, bounce, a->bytes);
        }
        free(bounce);
    }
    return n < 0 ? n : 0;
}

static int handle_aiocb_flush(void *opaque)
{
    RawPosixAIOData *a = opaque;

    return fdatasync(a->fd) < 0 ? -errno : 0;
}

static int raw_fallocate(int fd, int mode, int64_t offset, int64_t bytes)
{
    int ret;

    do {
        ret = fallocate(fd, mode, offset, bytes);
    } while (ret < 0 && errno == EINTR);
    if (ret == 0) {
        return 0;
    }
    return errno == EOPNOTSUPP || errno == ENOSYS ? -ENOTSUP : -errno;
}

static int handle_aiocb_write_zeroes(void *opaque)
{
    RawPosixAIOData *a = opaque;

    if (a->flags & BDRV_REQ_MAY_UNMAP) {
        /* A hole reads as zeroes. */
        if (raw_fallocate(a->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                          a->offset, a->bytes) == 0) {
            return 0;
        }
    }
    return raw_fallocate(a->fd, FALLOC_FL_ZERO_RANGE, a->offset, a->bytes);
}

static int handle_aiocb_discard(void *opaque)
{
    RawPosixAIOData *a = opaque;

    return raw_fallocate(a->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                         a->offset, a->bytes);
}

static int handle_aiocb_truncate(void *opaque)
{
    RawPosixAIOData *a = opaque;

    return ftruncate(a->fd, a->offset) < 0 ? -errno : 0;
}

static int coroutine_fn raw_thread_pool_submit(ThreadPoolFunc *func,
                                               RawPosixAIOData *a)
{
    return thread_pool_submit_co(func, a);
}

/* --- alignment ----------------------------------------------------------- */

/* QEMU's raw_is_io_aligned: Linux refuses misaligned O_DIRECT with
 * EINVAL; any other outcome means the alignment is fine. */
static bool raw_is_io_aligned(int fd, void *buf, size_t len)
{
    ssize_t ret = pread(fd, buf, len, 0);

    return ret >= 0 || errno != EINVAL;
}

static int raw_probe_alignment(BDRVRawState *s, Error **errp)
{
    size_t max_align = MAX_BLOCKSIZE, align;
    void *buf;

    s->request_alignment = 0;
    s->buf_align = 0;
    if (posix_memalign(&buf, max_align, 2 * max_align)) {
        error_setg(errp, "out of memory");
        return -ENOMEM;
    }
    for (align = 512; align <= max_align; align <<= 1) {
        if (raw_is_io_aligned(s->fd, buf, align)) {
            s->request_alignment = align;
            break;
        }
    }
    for (align = 512; align <= max_align; align <<= 1) {
        if (raw_is_io_aligned(s->fd, (char *)buf + align, max_align)) {
            s->buf_align = align;
            break;
        }
    }
    free(buf);
    if (!s->request_alignment || !s->buf_align) {
        error_setg(errp, "Could not find working O_DIRECT alignment; "
                   "try cache.direct=off");
        return -EINVAL;
    }
    return 0;
}

/* --- open, close, size ---------------------------------------------------- */

/* io_uring in @ctx, or fall back to threads for good (with a warning). */
static void raw_setup_io_uring(BlockDriverState *bs, AioContext *ctx)
{
    BDRVRawState *s = bs->opaque;
    Error *local_err = NULL;

#ifdef AIOLAB_TSAN
    /* TSan cannot see what the kernel writes into io_uring's rings, and
     * would report races that are not there. */
    error_setg(&local_err, "not under ThreadSanitizer");
#else
    aio_get_linux_io_uring(ctx, &local_err);
#endif
    if (local_err) {
        warn_report("node '%s': aio=io_uring unavailable (%s); falling "
                    "back to aio=threads", bs->node_name,
                    error_get_pretty(local_err));
        error_free(local_err);
        qatomic_set(&s->use_linux_io_uring, false);
    }
}

static int raw_open(BlockDriverState *bs, BlockOpts *opts, int flags,
                    Error **errp)
{
    BDRVRawState *s = bs->opaque;
    const char *filename = block_opts_get(opts, "filename");
    const char *aio = block_opts_get(opts, "aio");
    int open_flags = O_CLOEXEC;
    int ret;

    if (!filename) {
        error_setg(errp, "The 'file' block driver requires a file name");
        return -EINVAL;
    }
    if (!aio || !strcmp(aio, "threads")) {
        s->use_linux_io_uring = false;
    } else if (!strcmp(aio, "io_uring")) {
        s->use_linux_io_uring = true;
    } else {
        error_setg(errp, "Invalid aio option '%s' (threads or io_uring; "
                   "aiolab has no aio=native)", aio);
        return -EINVAL;
    }
    open_flags |= (flags & BDRV_O_RDWR) ? O_RDWR : O_RDONLY;
    if (flags & BDRV_O_NOCACHE) {
        open_flags |= O_DIRECT;
        s->needs_alignment = true;
    }
    s->fd = open(filename, open_flags);
    if (s->fd < 0) {
        ret = -errno;
        error_setg_errno(errp, -ret, "Could not open '%s'", filename);
        return ret;
    }
    s->request_alignment = 1;
    s->buf_align = 1;
    if (s->needs_alignment) {
        ret = raw_probe_alignment(s, errp);
        if (ret < 0) {
            close(s->fd);
            return ret;
        }
    }
    if (s->use_linux_io_uring) {
        raw_setup_io_uring(bs, bdrv_get_aio_context(bs));
    }
    return 0;
}

static void raw_close(BlockDriverState *bs)
{
    BDRVRawState *s = bs->opaque;

    if (s->fd >= 0) {
        close(s->fd);
        s->fd = -1;
    }
}

static int64_t raw_getlength(BlockDriverState *bs)
{
    BDRVRawState *s = bs->opaque;
    off_t len = lseek(s->fd, 0, SEEK_END);

    return len < 0 ? -errno : len;
}

static void raw_refresh_limits(BlockDriverState *bs)
{
    BDRVRawState *s = bs->opaque;

    bs->bl.request_alignment = s->request_alignment;
    bs->bl.min_mem_alignment = s->buf_align;
}

static void raw_attach_aio_context(BlockDriverState *bs,
                                   AioContext *new_context)
{
    BDRVRawState *s = bs->opaque;

    /* The ring belongs to the context; make sure the new one has one. */
    if (qatomic_read(&s->use_linux_io_uring)) {
        raw_setup_io_uring(bs, new_context);
    }
}

/* --- requests ------------------------------------------------------------- */

static int coroutine_fn raw_co_prw(BlockDriverState *bs, int64_t offset,
                                   int64_t bytes, QEMUIOVector *qiov,
                                   int type)
{
    BDRVRawState *s = bs->opaque;
    RawPosixAIOData a = {
        .type = type, .fd = s->fd, .offset = offset, .bytes = bytes,
        .qiov = qiov, .buf_align = s->buf_align,
    };

    if (s->needs_alignment &&
        !bdrv_qiov_is_aligned(qiov, s->buf_align, s->request_alignment)) {
        a.misaligned = true;
    } else if (qatomic_read(&s->use_linux_io_uring)) {
        LuringState *ring =
            aio_get_linux_io_uring(qemu_get_current_aio_context(), NULL);

        if (ring) {
            return luring_co_submit(ring, s->fd, offset, qiov, type);
        }
    }
    return raw_thread_pool_submit(handle_aiocb_rw, &a);
}

static int coroutine_fn raw_co_preadv(BlockDriverState *bs, int64_t offset,
                                      int64_t bytes, QEMUIOVector *qiov,
                                      BdrvRequestFlags flags)
{
    return raw_co_prw(bs, offset, bytes, qiov, RAW_AIO_READ);
}

static int coroutine_fn raw_co_pwritev(BlockDriverState *bs, int64_t offset,
                                       int64_t bytes, QEMUIOVector *qiov,
                                       BdrvRequestFlags flags)
{
    return raw_co_prw(bs, offset, bytes, qiov, RAW_AIO_WRITE);
}

static int coroutine_fn raw_co_flush_to_disk(BlockDriverState *bs)
{
    BDRVRawState *s = bs->opaque;
    RawPosixAIOData a = { .type = RAW_AIO_FLUSH, .fd = s->fd };

    if (qatomic_read(&s->use_linux_io_uring)) {
        LuringState *ring =
            aio_get_linux_io_uring(qemu_get_current_aio_context(), NULL);

        if (ring) {
            return luring_co_submit(ring, s->fd, 0, NULL, RAW_AIO_FLUSH);
        }
    }
    return raw_thread_pool_submit(handle_aiocb_flush, &a);
}

static int coroutine_fn raw_co_pwrite_zeroes(BlockDriverState *bs,
                                             int64_t offset, int64_t bytes,
                                             BdrvRequestFlags flags)
{
    BDRVRawState *s = bs->opaque;
    RawPosixAIOData a = {
        .type = RAW_AIO_WRITE_ZEROES, .fd = s->fd, .offset = offset,
        .bytes = bytes, .flags = flags,
    };

    return raw_thread_pool_submit(handle_aiocb_write_zeroes, &a);
}

static int coroutine_fn raw_co_pdiscard(BlockDriverState *bs, int64_t offset,
                                        int64_t bytes)
{
    BDRVRawState *s = bs->opaque;
    RawPosixAIOData a = {
        .type = RAW_AIO_DISCARD, .fd = s->fd, .offset = offset,
        .bytes = bytes,
    };

    return raw_thread_pool_submit(handle_aiocb_discard, &a);
}

static int coroutine_fn raw_co_truncate(BlockDriverState *bs, int64_t offset,
                                        bool exact, int prealloc,
                                        BdrvRequestFlags flags, Error **errp)
{
    BDRVRawState *s = bs->opaque;
    RawPosixAIOData a = {
        .type = RAW_AIO_TRUNCATE, .fd = s->fd, .offset = offset,
    };
    int ret;

    if (!exact && raw_getlength(bs) >= offset) {
        return 0;               /* big enough already */
    }
    ret = raw_thread_pool_submit(handle_aiocb_truncate, &a);
    if (ret < 0) {
        error_setg_errno(errp, -ret, "Failed to resize the file");
    }
    return ret;
}

const BlockDriver bdrv_file = {
    .format_name = "file",
    .instance_size = sizeof(BDRVRawState),
    .is_protocol = true,
    .bdrv_open = raw_open,
    .bdrv_close = raw_close,
    .bdrv_getlength = raw_getlength,
    .bdrv_refresh_limits = raw_refresh_limits,
    .bdrv_co_preadv = raw_co_preadv,
    .bdrv_co_pwritev = raw_co_pwritev,
    .bdrv_co_flush_to_disk = raw_co_flush_to_disk,
    .bdrv_co_pwrite_zeroes = raw_co_pwrite_zeroes,
    .bdrv_co_pdiscard = raw_co_pdiscard,
    .bdrv_co_truncate = raw_co_truncate,
    .bdrv_attach_aio_context = raw_attach_aio_context,
};
