/* SPDX-License-Identifier: MIT */
/*
 * aiolab/debug.h - seeing why something hangs, and the rules the debug
 * build checks.
 *
 * aiolab_dump_state() prints who holds the BQL, every AioContext with its
 * pending BHs, fd handlers and timers, threads waiting in AIO_WAIT_WHILE,
 * and every live coroutine.  qemu_init_main_loop() installs it on SIGQUIT
 * (Ctrl-\), so a hung program can be asked where it is stuck.
 *
 * The debug build (the default; `make RELEASE=1` compiles the checks out)
 * checks the threading rules in every public function and aborts with
 *
 *     aiolab: aio_poll() called outside the AioContext's home thread (home thread only)
 *
 * naming the function and the rule.  docs/aborts.md lists every message.
 */
#ifndef AIOLAB_DEBUG_H
#define AIOLAB_DEBUG_H

#include <stdio.h>
#include <aiolab/compiler.h>

/**
 * aiolab_dump_state: print the state of every context, thread, waiter and
 * coroutine to @f (stderr if NULL).  Best effort: it takes no lock that a
 * hung thread might hold for long, so it may show a moving picture.
 * Context: any thread, also a signal handler (SIGQUIT).
 */
AIOLAB_API void aiolab_dump_state(FILE *f);

/**
 * aiolab_install_sigquit_handler: dump state on SIGQUIT (done by
 * qemu_init_main_loop()).  Context: any thread.
 */
AIOLAB_API void aiolab_install_sigquit_handler(void);

/** aiolab_checks_enabled: was this library built with the debug checks? */
AIOLAB_API bool aiolab_checks_enabled(void);

/*
 * Test hooks (aiolab; in every build, cheap when unset).
 *
 * aiolab_set_before_wait_hook: call @hook(@ctx) in aio_poll() just before
 * it sleeps in the fd monitor, after announcing itself in notify_me.  A
 * stress test uses it to widen the lost-wake-up race window.
 */
typedef void AiolabBeforeWaitHook(void *ctx);
AIOLAB_API void aiolab_set_before_wait_hook(AiolabBeforeWaitHook *hook);

/**
 * aiolab_test_inject_bug: re-introduce a classic bug for a teaching or a
 * race test that must show the bad outcome.  @name is one of
 *   "skip-notify-me"  aio_poll() does not announce itself before sleeping
 *                     (the lost wake-up of QEMU's aio_notify.promela)
 *   "notify-if-unset" aio_notify() skips the eventfd write when notified
 *                     is already set ("BUG2" of aio_notify_accept.promela)
 *   "none"            all off
 * Returns: false for an unknown name.
 */
AIOLAB_API bool aiolab_test_inject_bug(const char *name);

#endif
