/* cc -Ic/include tutorial/ch01-event-loop/exercise-eof.c -o build/exercise-eof -Lbuild -laiolab -Wl,-rpath,$PWD/build */
/*
 * SPDX-License-Identifier: MIT
 *
 * ch01-event-loop/exercise-eof.c - EXERCISE: stop watching a closed pipe.
 *
 * The writer sends "hello" and closes its end.  read() then returns 0
 * (end of file), and from then on the fd is readable forever: handlers
 * are level-triggered, so on_readable() would run on every aio_poll() and
 * the loop would never go idle.
 *
 * Make on_readable() handle end of file so that all checks pass.  Change
 * only on_readable() (and the Reader struct if you need to).
 */
#include "../tutorial.h"
#include <aiolab/aiolab.h>

typedef struct {
    AioContext *ctx;
    int fd;             /* the pipe's read end */
    int bytes;          /* bytes read so far */
    int eof_seen;       /* how often read() returned 0 */
} Reader;

static void on_readable(void *opaque)
{
    Reader *r = opaque;
    char buf[64];
    ssize_t n = read(r->fd, buf, sizeof(buf));

    if (n > 0) {
        r->bytes += n;
    }
    /* TODO: n == 0 is end of file.  Count it in r->eof_seen, and make
     * aio_poll() stop calling this handler. */
}

int main(void)
{
    Reader r = { .ctx = aio_context_new(&error_abort) };
    int fds[2], polls;

    qemu_set_current_aio_context(r.ctx);
    if (pipe(fds) < 0 || write(fds[1], "hello", 5) != 5) {
        return 1;
    }
    close(fds[1]);                      /* the writer is done */
    r.fd = fds[0];
    aio_set_fd_handler(r.ctx, r.fd, on_readable, NULL, NULL, NULL, &r);

    /* Poll until the loop is idle, but give up after 10 rounds. */
    for (polls = 0; polls < 10; polls++) {
        if (!aio_poll(r.ctx, false)) {
            break;
        }
    }
    printf("aio_poll(ctx, false) made progress %d time(s)\n", polls);

    CHECK_EQ("all five bytes were read", r.bytes, 5);
    CHECK_HINT("after end of file, the loop goes idle", polls < 10,
               "the closed pipe stays readable, so aio_poll() keeps calling "
               "on_readable(); at end of file remove the handler from "
               "inside it: aio_set_fd_handler(ctx, fd, NULL, NULL, NULL, "
               "NULL, NULL)");
    CHECK_EQ_HINT("the handler saw end of file exactly once", r.eof_seen, 1,
                  "read() returning 0 means end of file; count it");
    CHECK("a handler may remove itself: later polls are idle",
          !aio_poll(r.ctx, false));

    aio_set_fd_handler(r.ctx, r.fd, NULL, NULL, NULL, NULL, NULL);
    close(fds[0]);
    aio_context_unref(r.ctx);
    return 0;
}
