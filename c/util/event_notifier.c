/* SPDX-License-Identifier: MIT */
/*
 * util/event_notifier.c - EventNotifier over eventfd(2).
 *
 * An eventfd holds a 64-bit counter: write() adds to it (readable when
 * non-zero), read() returns it and resets it to 0.  So any number of sets
 * before a test_and_clear collapse into one wake-up, which is exactly the
 * semantics of a "kick".
 */
#include <errno.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <aiolab/event_notifier.h>
#include "util/check.h"

int event_notifier_init(EventNotifier *e, int active)
{
    int fd;

    REQUIRE_NONNULL(e);
    fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (fd < 0) {
        e->rfd = e->wfd = -1;
        e->initialized = false;
        return -errno;
    }
    e->rfd = e->wfd = fd;
    e->initialized = true;
    if (active) {
        event_notifier_set(e);
    }
    return 0;
}

void event_notifier_init_fd(EventNotifier *e, int fd)
{
    REQUIRE_NONNULL(e);
    AIOLAB_REQUIRE(fd >= 0, "got an invalid fd %d", fd);
    e->rfd = e->wfd = fd;
    e->initialized = true;
}

void event_notifier_cleanup(EventNotifier *e)
{
    REQUIRE_NONNULL(e);
    if (!e->initialized) {
        return;
    }
    close(e->rfd);
    e->rfd = e->wfd = -1;
    e->initialized = false;
}

int event_notifier_set(EventNotifier *e)
{
    static const uint64_t value = 1;
    ssize_t ret;

    REQUIRE_NONNULL(e);
    AIOLAB_REQUIRE(e->initialized, "on an EventNotifier that is not "
                   "initialised (or was cleaned up)");
    do {
        ret = write(e->wfd, &value, sizeof(value));
    } while (ret < 0 && errno == EINTR);
    /* EAGAIN: the counter is at its maximum, i.e. already set. */
    if (ret < 0 && errno != EAGAIN) {
        return -errno;
    }
    return 0;
}

int event_notifier_test_and_clear(EventNotifier *e)
{
    uint64_t value;
    ssize_t ret;

    REQUIRE_NONNULL(e);
    AIOLAB_REQUIRE(e->initialized, "on an EventNotifier that is not "
                   "initialised (or was cleaned up)");
    do {
        ret = read(e->rfd, &value, sizeof(value));
    } while (ret < 0 && errno == EINTR);
    return ret == sizeof(value) && value > 0;
}

int event_notifier_get_fd(const EventNotifier *e)
{
    REQUIRE_NONNULL(e);
    return e->rfd;
}
