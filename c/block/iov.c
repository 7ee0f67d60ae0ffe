/* SPDX-License-Identifier: MIT */
/*
 * block/iov.c - QEMUIOVector helpers (see aiolab/iov.h).
 *
 * Plain memory manipulation: nothing here knows about threads.  The
 * walk in iov_walk() is the one loop every copy/fill below shares.
 */
#include <stdlib.h>
#include <string.h>
#include <aiolab/iov.h>
#include "util/check.h"
#include "util/mem.h"

void qemu_iovec_init(QEMUIOVector *qiov, int alloc_hint)
{
    REQUIRE_NONNULL(qiov);
    if (alloc_hint < 1) {
        alloc_hint = 1;
    }
    qiov->iov = aiolab_xmalloc(alloc_hint * sizeof(struct iovec));
    qiov->niov = 0;
    qiov->nalloc = alloc_hint;
    qiov->local_iov = (struct iovec){ NULL, 0 };
    qiov->size = 0;
}

void qemu_iovec_init_buf(QEMUIOVector *qiov, const void *buf, size_t len)
{
    REQUIRE_NONNULL(qiov);
    qiov->local_iov.iov_base = (void *)buf;
    qiov->local_iov.iov_len = len;
    qiov->iov = &qiov->local_iov;
    qiov->niov = 1;
    qiov->nalloc = -1;
    qiov->size = len;
}

void qemu_iovec_init_external(QEMUIOVector *qiov, struct iovec *iov,
                              int niov)
{
    int i;

    REQUIRE_NONNULL(qiov);
    qiov->iov = iov;
    qiov->niov = niov;
    qiov->nalloc = -1;
    qiov->local_iov = (struct iovec){ NULL, 0 };
    qiov->size = 0;
    for (i = 0; i < niov; i++) {
        qiov->size += iov[i].iov_len;
    }
}

void qemu_iovec_add(QEMUIOVector *qiov, void *base, size_t len)
{
    REQUIRE_NONNULL(qiov);
    AIOLAB_REQUIRE(qiov->nalloc != -1, "on a vector it does not own (made "
                   "by qemu_iovec_init_buf or _init_external): only "
                   "qemu_iovec_init() vectors grow");
    if (qiov->niov == qiov->nalloc) {
        qiov->nalloc = 2 * qiov->nalloc + 1;
        qiov->iov = aiolab_xreallocarray(qiov->iov, qiov->nalloc,
                                         sizeof(struct iovec));
    }
    qiov->iov[qiov->niov].iov_base = base;
    qiov->iov[qiov->niov].iov_len = len;
    qiov->size += len;
    qiov->niov++;
}

void qemu_iovec_concat(QEMUIOVector *dst, QEMUIOVector *src, size_t soffset,
                       size_t sbytes)
{
    int i;

    REQUIRE_NONNULL(dst);
    REQUIRE_NONNULL(src);
    for (i = 0; i < src->niov && sbytes > 0; i++) {
        size_t len = src->iov[i].iov_len;

        if (soffset >= len) {
            soffset -= len;
            continue;
        }
        len = MIN(len - soffset, sbytes);
        qemu_iovec_add(dst, (char *)src->iov[i].iov_base + soffset, len);
        sbytes -= len;
        soffset = 0;
    }
}

void qemu_iovec_reset(QEMUIOVector *qiov)
{
    REQUIRE_NONNULL(qiov);
    AIOLAB_REQUIRE(qiov->nalloc != -1, "on a vector it does not own");
    qiov->niov = 0;
    qiov->size = 0;
}

void qemu_iovec_destroy(QEMUIOVector *qiov)
{
    REQUIRE_NONNULL(qiov);
    if (qiov->nalloc != -1) {
        free(qiov->iov);
    }
    memset(qiov, 0, sizeof(*qiov));
}

/*
 * Call @fn(element part, @opaque) for the bytes [@offset, @offset +
 * @bytes) of the vector.  Returns the bytes visited.
 */
static size_t iov_walk(QEMUIOVector *qiov, size_t offset, size_t bytes,
                       void (*fn)(void *base, size_t len, void *opaque),
                       void *opaque)
{
    size_t done = 0;
    int i;

    for (i = 0; i < qiov->niov && done < bytes; i++) {
        size_t len = qiov->iov[i].iov_len;

        if (offset >= len) {
            offset -= len;
            continue;
        }
        len = MIN(len - offset, bytes - done);
        fn((char *)qiov->iov[i].iov_base + offset, len, opaque);
        done += len;
        offset = 0;
    }
    return done;
}

static void to_buf_fn(void *base, size_t len, void *opaque)
{
    char **p = opaque;

    memcpy(*p, base, len);
    *p += len;
}

static void from_buf_fn(void *base, size_t len, void *opaque)
{
    const char **p = opaque;

    memcpy(base, *p, len);
    *p += len;
}

static void memset_fn(void *base, size_t len, void *opaque)
{
    memset(base, *(int *)opaque, len);
}

size_t qemu_iovec_to_buf(QEMUIOVector *qiov, size_t offset, void *buf,
                         size_t bytes)
{
    char *p = buf;

    return iov_walk(qiov, offset, bytes, to_buf_fn, &p);
}

size_t qemu_iovec_from_buf(QEMUIOVector *qiov, size_t offset,
                           const void *buf, size_t bytes)
{
    const char *p = buf;

    return iov_walk(qiov, offset, bytes, from_buf_fn, &p);
}

size_t qemu_iovec_memset(QEMUIOVector *qiov, size_t offset, int fillc,
                         size_t bytes)
{
    return iov_walk(qiov, offset, bytes, memset_fn, &fillc);
}
