/* cc -Ic/include tutorial/ch01-event-loop/fd-handlers.c -o build/fd-handlers -Lbuild -laiolab -Wl,-rpath,$PWD/build */
/*
 * SPDX-License-Identifier: MIT
 *
 * ch01-event-loop/fd-handlers.c - a pipe, a read handler and aio_poll().
 *
 * One AioContext, polled by this thread (its home thread).  We write into
 * a pipe and watch aio_poll() call our handler; then another thread writes
 * while we sleep in a blocking aio_poll().
 */
#include "../tutorial.h"
#include <pthread.h>
#include <aiolab/aiolab.h>

typedef struct {
    int fd;         /* the pipe's read end */
    int calls;      /* how often on_readable() ran */
    char last;      /* the last byte it read */
} Reader;

/* [region: handler] */
/* Called by aio_poll(), in the context's home thread, when fd is readable. */
static void on_readable(void *opaque)
{
    Reader *r = opaque;

    /* One byte per call: what we leave behind keeps the fd readable. */
    if (read(r->fd, &r->last, 1) == 1) {
        r->calls++;
    }
}
/* [endregion] */

static void write_or_die(int fd, const char *s)
{
    if (write(fd, s, strlen(s)) != (ssize_t)strlen(s)) {
        perror("write");
        exit(1);
    }
}

static void *late_writer(void *opaque)
{
    usleep(50 * 1000);
    write_or_die(*(int *)opaque, "L");
    return NULL;
}

int main(void)
{
    AioContext *ctx = aio_context_new(&error_abort);
    Reader r = { 0 };
    pthread_t th;
    int fds[2];
    int64_t t0;
    bool progress;

    qemu_set_current_aio_context(ctx);      /* this thread polls it */
    if (pipe(fds) < 0) {
        perror("pipe");
        return 1;
    }
    r.fd = fds[0];

    /* [region: register] */
    aio_set_fd_handler(ctx, fds[0], on_readable, NULL, NULL, NULL, &r);

    /* Nothing to read yet: a non-blocking poll returns at once. */
    progress = aio_poll(ctx, false);
    /* [endregion] */
    CHECK("aio_poll(ctx, false) with nothing ready returns false", !progress);
    CHECK_EQ("aio_poll(ctx, false) with nothing ready calls no handler",
             r.calls, 0);

    /* [region: level] */
    write_or_die(fds[1], "ab");
    progress = aio_poll(ctx, false);        /* reads 'a' */
    /* [endregion] */
    CHECK("with data in the pipe, aio_poll(ctx, false) returns true",
          progress);
    CHECK_EQ("that aio_poll called the handler once", r.calls, 1);
    CHECK("a handler that leaves data is called again (level-triggered)",
          aio_poll(ctx, false) && r.calls == 2 && r.last == 'b');
    CHECK("once the pipe is empty, aio_poll(ctx, false) returns false",
          !aio_poll(ctx, false));

    /* [region: blocking] */
    pthread_create(&th, NULL, late_writer, &fds[1]);
    t0 = tut_now_ns();
    progress = aio_poll(ctx, true);         /* sleeps until the write */
    printf("aio_poll(ctx, true) slept %.1f ms, until the other thread "
           "wrote\n", (tut_now_ns() - t0) / 1e6);
    /* [endregion] */
    pthread_join(th, NULL);
    CHECK("a blocking aio_poll returns true once the late write arrives",
          progress);
    CHECK("the blocking aio_poll called the handler for the late write",
          r.calls == 3 && r.last == 'L');

    /* All of io_read, io_write and io_poll NULL: remove the handler. */
    aio_set_fd_handler(ctx, fds[0], NULL, NULL, NULL, NULL, NULL);
    write_or_die(fds[1], "x");
    CHECK("after removing the handler, the fd is no longer watched",
          !aio_poll(ctx, false) && r.calls == 3);

    /* Open it in https://ui.perfetto.dev: find the 50 ms fdmon_wait. */
    CHECK("the Perfetto trace ch01-fd-handlers.json was written",
          aiolab_trace_write_json("ch01-fd-handlers.json", 0, &error_abort));
    close(fds[0]);
    close(fds[1]);
    aio_context_unref(ctx);
    return 0;
}
