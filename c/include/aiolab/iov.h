/* SPDX-License-Identifier: MIT */
/*
 * aiolab/iov.h - QEMUIOVector: the scatter/gather list a block request
 * carries (QEMU's include/qemu/iov.h).
 *
 * A request's data is rarely one buffer: a guest's request is a chain of
 * descriptors, and the block layer adds padding in front and behind when
 * a request is not aligned for the host (read-modify-write).  A
 * QEMUIOVector is an array of struct iovec plus the total size.
 *
 *   qemu_iovec_init(q, hint)   owns a growing array (nalloc >= 0)
 *   qemu_iovec_init_buf(q,b,n) one buffer, in q->local_iov (nalloc == -1)
 *   qemu_iovec_init_external   someone else's array   (nalloc == -1)
 *
 * Only the first kind may grow with qemu_iovec_add().  A vector made by
 * qemu_iovec_init_buf() points into itself (iov == &local_iov): do not
 * copy the struct, pass a pointer.
 *
 * Where QEMU differs: QEMU overlays {nalloc, local_iov} and size in a
 * union to save space; aiolab keeps them apart so the fields read plainly.
 */
#ifndef AIOLAB_IOV_H
#define AIOLAB_IOV_H

#include <sys/uio.h>
#include <aiolab/compiler.h>

typedef struct QEMUIOVector {
    struct iovec *iov;       /* the elements */
    int niov;                /* how many are used */
    int nalloc;              /* allocated elements; -1: not ours to grow */
    struct iovec local_iov;  /* the one element of qemu_iovec_init_buf() */
    size_t size;             /* total bytes */
} QEMUIOVector;

/* Every function here works on the caller's memory: any thread. */

/**
 * qemu_iovec_init: an empty vector that owns an array of @alloc_hint
 * elements (grown as needed).  Free it with qemu_iovec_destroy().
 * Context: any thread.
 */
AIOLAB_API void qemu_iovec_init(QEMUIOVector *qiov, int alloc_hint);

/**
 * qemu_iovec_init_buf: a vector of the one buffer @buf[0..@len).  Nothing
 * is allocated; qemu_iovec_destroy() is allowed and does nothing.
 * Context: any thread.
 */
AIOLAB_API void qemu_iovec_init_buf(QEMUIOVector *qiov, const void *buf,
                                    size_t len);

/**
 * qemu_iovec_init_external: a vector over the caller's array @iov of
 * @niov elements (not copied, not freed).  Context: any thread.
 */
AIOLAB_API void qemu_iovec_init_external(QEMUIOVector *qiov,
                                         struct iovec *iov, int niov);

/**
 * qemu_iovec_add: append @base[0..@len).  Only for vectors made with
 * qemu_iovec_init() (aborts otherwise).  Context: any thread.
 */
AIOLAB_API void qemu_iovec_add(QEMUIOVector *qiov, void *base, size_t len);

/**
 * qemu_iovec_concat: append the part [@soffset, @soffset + @sbytes) of
 * @src's elements to @dst (the data is not copied: @dst points into the
 * same buffers).  Context: any thread.
 */
AIOLAB_API void qemu_iovec_concat(QEMUIOVector *dst, QEMUIOVector *src,
                                  size_t soffset, size_t sbytes);

/**
 * qemu_iovec_reset: forget the elements, keep the array.
 * Context: any thread.
 */
AIOLAB_API void qemu_iovec_reset(QEMUIOVector *qiov);

/**
 * qemu_iovec_destroy: free the array of a qemu_iovec_init() vector; does
 * nothing for the other kinds.  Context: any thread.
 */
AIOLAB_API void qemu_iovec_destroy(QEMUIOVector *qiov);

/**
 * qemu_iovec_to_buf: copy @bytes of the vector's data, from @offset, to
 * @buf.  Returns: the bytes copied (less if the vector is shorter).
 * Context: any thread.
 */
AIOLAB_API size_t qemu_iovec_to_buf(QEMUIOVector *qiov, size_t offset,
                                    void *buf, size_t bytes);

/**
 * qemu_iovec_from_buf: copy @bytes from @buf into the vector's buffers,
 * from @offset.  Returns: the bytes copied.  Context: any thread.
 */
AIOLAB_API size_t qemu_iovec_from_buf(QEMUIOVector *qiov, size_t offset,
                                      const void *buf, size_t bytes);

/**
 * qemu_iovec_memset: fill @bytes of the vector's buffers, from @offset,
 * with @fillc.  Returns: the bytes filled.  Context: any thread.
 */
AIOLAB_API size_t qemu_iovec_memset(QEMUIOVector *qiov, size_t offset,
                                    int fillc, size_t bytes);

#endif
