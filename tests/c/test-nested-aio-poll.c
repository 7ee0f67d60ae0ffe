/* SPDX-License-Identifier: MIT */
/*
 * tests/c/test-nested-aio-poll.c - a poll handler's io_poll_ready() calls
 * aio_poll() before clearing its condition (catalogue section 6, QEMU
 * commit 6d740fb01b9f).  The handler is off the poll list while its
 * io_poll_ready runs, so the nested poll neither recurses into it nor
 * spins forever, and still dispatches other handlers.
 */
#include <string.h>
#include <aiolab/aiolab.h>
#include "harness.h"

typedef struct {
    AioContext *ctx;
    EventNotifier poll_notifier;
    EventNotifier dummy_notifier;
    bool nested;
    int dummy_reads;
} TestData;

static TestData td;

static void io_read(EventNotifier *n)
{
    event_notifier_test_and_clear(n);
    if (n == &td.dummy_notifier) {
        td.dummy_reads++;
    }
}

static bool io_poll_true(void *opaque)
{
    return true;
}

static bool io_poll_false(void *opaque)
{
    return false;
}

static void io_poll_ready(EventNotifier *n)
{
    ASSERT_FALSE(td.nested);
    td.nested = true;
    event_notifier_set(&td.dummy_notifier);
    /* Must not recurse into us, and must make progress (dummy's read). */
    ASSERT_TRUE(aio_poll(td.ctx, true));
    td.nested = false;
}

static void io_poll_never_ready(EventNotifier *n)
{
    harness_fail(__FILE__, __LINE__, "dummy io_poll_ready must not run");
}

static void test(void)
{
    td.ctx = aio_context_new(&error_abort);
    qemu_set_current_aio_context(td.ctx);
    /* As QEMU's test (which calls aio_get_g_source()): poll or epoll, whose
     * need_wait() rule the first step depends on; io_uring can see fds
     * from userspace and would read the notifier at once. */
    if (!strcmp(aiolab_aio_context_fdmon_name(td.ctx), "io_uring")) {
        aiolab_aio_context_set_fdmon(td.ctx, "poll", &error_abort);
    }
    aio_context_set_poll_params(td.ctx, 1000000, 2, 2, &error_abort);

    event_notifier_init(&td.poll_notifier, true);   /* starts set */
    aio_set_event_notifier(td.ctx, &td.poll_notifier, io_read, io_poll_true,
                           io_poll_ready);
    event_notifier_init(&td.dummy_notifier, false);
    aio_set_event_notifier(td.ctx, &td.dummy_notifier, io_read,
                           io_poll_false, io_poll_never_ready);

    /* 1: every handler is pollable, so no fd check; nothing polled yet:
     * this only consumes the registrations' aio_notify. */
    ASSERT_FALSE(aio_poll(td.ctx, false));
    /* 2: the fd is read; the handler joins the poll list. */
    ASSERT_TRUE(aio_poll(td.ctx, true));
    /* 3: io_poll reports ready -> io_poll_ready -> nested poll. */
    ASSERT_TRUE(aio_poll(td.ctx, true));
    ASSERT_EQ(td.dummy_reads, 1);
    /* 4: and it keeps working. */
    ASSERT_TRUE(aio_poll(td.ctx, true));
    ASSERT_EQ(td.dummy_reads, 2);

    aio_set_event_notifier(td.ctx, &td.dummy_notifier, NULL, NULL, NULL);
    aio_set_event_notifier(td.ctx, &td.poll_notifier, NULL, NULL, NULL);
    event_notifier_cleanup(&td.dummy_notifier);
    event_notifier_cleanup(&td.poll_notifier);
}

static const TestCase tests[] = {
    { "/nested-aio-poll", test },
    { NULL }
};

int main(int argc, char **argv)
{
    return harness_main(argc, argv, tests);
}
