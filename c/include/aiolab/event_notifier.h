/* SPDX-License-Identifier: MIT */
/*
 * aiolab/event_notifier.h - a counter one thread sets and another waits on.
 *
 * On Linux an EventNotifier is an eventfd: event_notifier_set() writes 1 to
 * it, which makes it readable; event_notifier_test_and_clear() reads (and so
 * resets) it.  Registered in an AioContext with aio_set_event_notifier(), it
 * is how one thread wakes another's event loop: it is the ioeventfd of a
 * virtqueue and the irqfd that interrupts the guest.
 *
 * Where QEMU differs: QEMU falls back to a pipe where eventfd is missing;
 * aiolab requires eventfd (Linux only).
 */
#ifndef AIOLAB_EVENT_NOTIFIER_H
#define AIOLAB_EVENT_NOTIFIER_H

#include <aiolab/compiler.h>

/* A complete type: it may live on the stack or inside another struct. */
typedef struct EventNotifier {
    int rfd;        /* the eventfd, -1 when not initialised */
    int wfd;        /* the same fd (QEMU keeps two for the pipe fallback) */
    bool initialized;
} EventNotifier;

typedef void EventNotifierHandler(EventNotifier *e);

/**
 * event_notifier_init: create the eventfd behind @e.
 * @active: start set (readable) when non-zero; a virtqueue's host notifier
 *          starts set so that a kick that arrives before a handler is
 *          attached is not lost.
 * Returns: 0, or -errno.
 * Context: any thread.
 */
AIOLAB_API int event_notifier_init(EventNotifier *e, int active);

/**
 * event_notifier_init_fd: make @e a notifier over @fd, an eventfd created
 * elsewhere (a vhost-user kick or call fd received over a socket).  @e
 * owns @fd from now on: event_notifier_cleanup() closes it.
 * Context: any thread.
 */
AIOLAB_API void event_notifier_init_fd(EventNotifier *e, int fd);

/**
 * event_notifier_cleanup: close the eventfd.  It must no longer be
 * registered in any AioContext.  Safe on an uninitialised (zeroed-then-
 * cleaned) notifier.
 * Context: any thread.
 */
AIOLAB_API void event_notifier_cleanup(EventNotifier *e);

/**
 * event_notifier_set: make @e readable; wakes a poller waiting on it.
 * Returns: 0, or -errno.
 * Context: any thread (it is a write(2) on an eventfd).
 */
AIOLAB_API int event_notifier_set(EventNotifier *e);

/**
 * event_notifier_test_and_clear: consume the pending set, if any.
 * Returns: 1 if @e was set, 0 if not.
 * Context: any thread; normally the thread whose handler it is.
 */
AIOLAB_API int event_notifier_test_and_clear(EventNotifier *e);

/**
 * event_notifier_get_fd: the fd to poll for readability.
 * Context: any thread.
 */
AIOLAB_API int event_notifier_get_fd(const EventNotifier *e);

#endif
