/* SPDX-License-Identifier: MIT */
/*
 * export/nbd-conn.c - one NBD connection's socket: buffered reads and
 * vectored writes that yield their coroutine while the socket has
 * nothing to give or no room to take, woken by fd handlers in the
 * connection's AioContext (QEMU's qio_channel_yield() and
 * qio_channel_readv_all(), which nbd/server.c reads through).
 *
 * The read handler stays installed while the receive loop (or the
 * handshake) runs, and is removed when it parks: a level-triggered
 * handler that nobody waits for would fire at every poll.  Installing
 * it once per loop rather than once per wait saves a system call per
 * request with the epoll and io_uring fd monitors.
 *
 *   reader waits:  c->reader = self, yield  <-- readable: the handler
 *                                              clears c->reader, enters
 *   drain/close:   nbd_client_interrupt()   <-- a BH of c->ctx, only if
 *                                              the reader waits for the
 *                                              first byte of a request
 *
 * Where QEMU differs: QEMU reads a request header with one recvmsg per
 * header; aiolab reads up to 64 KiB at a time and takes headers from
 * that buffer, so a client at queue depth 16 costs one read(2) for many
 * requests.  A payload larger than the buffer is read straight into the
 * request's own buffer.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "export/nbd-int.h"
#include "util/mem.h"

static unsigned next_client_id;
bool nbd_quiet;

void nbd_log(const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    if (nbd_quiet) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    error_report("%s", msg);
}

NBDClient *nbd_client_new(int fd, AioContext *ctx)
{
    NBDClient *c = aiolab_xcalloc(1, sizeof(*c));

    c->inbuf = aiolab_xmalloc(NBD_INBUF_SIZE);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    c->id = qatomic_fetch_add(&next_client_id, 1) + 1;
    c->fd = fd;
    c->ctx = ctx;
    c->refcount = 1;
    qemu_co_mutex_init(&c->send_lock);
    return c;
}

void nbd_client_ref(NBDClient *c)
{
    AIOLAB_ASSERT(qatomic_read(&c->refcount) > 0, "NBD client %u has no "
                  "reference left to copy", c->id);
    qatomic_inc(&c->refcount);
}

void nbd_client_unref(NBDClient *c)
{
    AIOLAB_ASSERT(qatomic_read(&c->refcount) > 0, "NBD client %u "
                  "unreferenced more often than referenced", c->id);
    if (qatomic_fetch_sub(&c->refcount, 1) != 1) {
        return;
    }
    AIOLAB_ASSERT(!c->read_handler && !c->writer && !c->listed,
                  "NBD client %u freed while still listed or polled", c->id);
    close(c->fd);
    if (c->exp) {
        blk_exp_unref(&c->exp->common);
    }
    free(c->inbuf);
    free(c);
}

/* --- handlers ---------------------------------------------------------- */

/* Enter @co, which waited on @c: directly from a handler or BH, queued
 * behind the running coroutine from inside one. */
static void nbd_client_wake(NBDClient *c, Coroutine *co)
{
    if (qemu_in_coroutine()) {
        aio_co_enter(c->ctx, co);
    } else {
        qemu_aio_coroutine_enter(c->ctx, co);
    }
}

static void nbd_client_readable(void *opaque);
static void nbd_client_writable(void *opaque);

static void nbd_client_update_handlers(NBDClient *c)
{
    aio_set_fd_handler(c->ctx, c->fd,
                       c->read_handler ? nbd_client_readable : NULL,
                       c->writer ? nbd_client_writable : NULL, NULL, NULL,
                       c);
}

static void nbd_client_readable(void *opaque)
{
    NBDClient *c = opaque;
    Coroutine *co = c->reader;

    if (!co) {
        /* Nobody waits (cannot happen while the loop keeps the handler;
         * removing it stops a level-triggered spin if it ever did). */
        c->read_handler = false;
        nbd_client_update_handlers(c);
        return;
    }
    c->reader = NULL;
    c->interruptible = false;
    nbd_client_wake(c, co);
}

static void nbd_client_writable(void *opaque)
{
    NBDClient *c = opaque;
    Coroutine *co = c->writer;

    c->writer = NULL;
    nbd_client_update_handlers(c);
    if (co) {
        nbd_client_wake(c, co);
    }
}

void nbd_client_set_read_handler(NBDClient *c, bool on)
{
    if (c->read_handler != on) {
        c->read_handler = on;
        nbd_client_update_handlers(c);
    }
}

void nbd_client_interrupt(NBDClient *c)
{
    Coroutine *co = c->reader;

    if (co && c->interruptible) {
        c->reader = NULL;
        c->interruptible = false;
        nbd_client_wake(c, co);
    }
}

void nbd_client_shutdown(NBDClient *c, int how)
{
    Coroutine *co;

    if (!c->closing || how == SHUT_RDWR) {
        shutdown(c->fd, how);
    }
    c->closing = true;
    /* The shutdown makes the socket readable (EOF) and writable (EPIPE);
     * wake the waiters now rather than at the next poll. */
    if ((co = c->reader)) {
        c->reader = NULL;
        c->interruptible = false;
        nbd_client_wake(c, co);
    }
    if ((co = c->writer)) {
        c->writer = NULL;
        nbd_client_update_handlers(c);
        nbd_client_wake(c, co);
    }
}

/* --- reading and writing, in the connection's coroutines ------------------ */

static void coroutine_fn nbd_co_wait_readable(NBDClient *c, bool first)
{
    c->reader = qemu_coroutine_self();
    c->interruptible = first;
    nbd_client_set_read_handler(c, true);
    qemu_coroutine_yield();
}

int coroutine_fn nbd_co_read(NBDClient *c, void *buf, size_t len,
                             bool first)
{
    uint8_t *p = buf;
    bool started = false;

    while (len) {
        size_t avail = c->in_end - c->in_pos;
        ssize_t n;

        if (avail) {
            n = MIN(avail, len);
            memcpy(p, c->inbuf + c->in_pos, n);
            c->in_pos += n;
            p += n;
            len -= n;
            started = true;
            continue;
        }
        if (c->closing) {
            return first && !started ? -EAGAIN : -EIO;
        }
        if (first && !started && qatomic_read(&c->quiescing)) {
            return -EAGAIN;
        }
        if (len >= NBD_INBUF_SIZE) {
            n = read(c->fd, p, len);
        } else {
            n = read(c->fd, c->inbuf, NBD_INBUF_SIZE);
        }
        if (n > 0) {
            if (len >= NBD_INBUF_SIZE) {
                p += n;
                len -= n;
                started = true;
            } else {
                c->in_pos = 0;
                c->in_end = n;
            }
        } else if (n == 0) {
            return first && !started ? -EPIPE : -EIO;
        } else if (errno == EAGAIN) {
            nbd_co_wait_readable(c, first && !started);
        } else if (errno != EINTR) {
            return -EIO;
        }
    }
    return 0;
}

int coroutine_fn nbd_co_skip(NBDClient *c, uint64_t len)
{
    uint8_t scratch[4096];

    while (len) {
        size_t n = MIN(len, sizeof(scratch));
        int ret = nbd_co_read(c, scratch, n, false);

        if (ret < 0) {
            return ret;
        }
        len -= n;
    }
    return 0;
}

int coroutine_fn nbd_co_writev(NBDClient *c, struct iovec *iov, int niov)
{
    while (niov > 0) {
        struct msghdr msg = { .msg_iov = iov, .msg_iovlen = niov };
        ssize_t n = sendmsg(c->fd, &msg, MSG_NOSIGNAL);

        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno != EAGAIN) {
                return -EIO;
            }
            c->writer = qemu_coroutine_self();
            nbd_client_update_handlers(c);
            qemu_coroutine_yield();
            continue;
        }
        while (niov > 0 && (size_t)n >= iov->iov_len) {
            n -= iov->iov_len;
            iov++;
            niov--;
        }
        if (niov > 0) {
            iov->iov_base = (uint8_t *)iov->iov_base + n;
            iov->iov_len -= n;
        }
    }
    return 0;
}
