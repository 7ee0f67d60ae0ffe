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
 *     aiolab: aio_poll() called outside the home thread of AioContext
 *     'IO io0' (from thread 'main', whose context is 'main') (home thread
 *     only)
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
 * aiolab_dump_state_fd: aiolab_dump_state() to file descriptor @fd (for
 * bindings, which have no FILE *).  Context: any thread.
 */
AIOLAB_API void aiolab_dump_state_fd(int fd);

/*
 * The rules, checkable without aborting, so that a binding can refuse a
 * call with the very message the debug build would abort with.
 */
typedef enum AiolabRule {
    AIOLAB_RULE_HOME_THREAD = 0,   /* may poll @ctx now (aio_poll's rules) */
    AIOLAB_RULE_GLOBAL_STATE = 1,  /* holds the BQL (GLOBAL_STATE_CODE) */
    AIOLAB_RULE_AIO_WAIT = 2,      /* may AIO_WAIT_WHILE on @ctx (or NULL) */
    AIOLAB_RULE_MAIN_LOOP_WAIT = 3,/* main-loop thread with the BQL */
    AIOLAB_RULE_HAS_CONTEXT = 4,   /* the thread has a current AioContext */
    AIOLAB_RULE_BQL_NOT_HELD = 5,  /* may bql_lock(): does not hold it */
    AIOLAB_RULE_BQL_HELD = 6,      /* may bql_unlock(): holds it */
} AiolabRule;

/**
 * aiolab_rule_check: would calling @func (its name, for the message) now,
 * on @ctx where the rule needs one, break @rule?
 * Returns: true if the rule holds; false with the abort message written to
 * @buf (at most @len bytes, NUL-terminated).  Checked in every build.
 * Context: any thread.
 */
AIOLAB_API bool aiolab_rule_check(int rule, const char *func, void *ctx,
                                  char *buf, size_t len);

/**
 * aiolab_install_sigquit_handler: dump state on SIGQUIT (done by
 * qemu_init_main_loop()).  Context: any thread.
 */
AIOLAB_API void aiolab_install_sigquit_handler(void);

/**
 * aiolab_checks_enabled: was this library built with the debug checks?
 * Context: any thread.
 */
AIOLAB_API bool aiolab_checks_enabled(void);

/*
 * Test hooks (aiolab; in every build, cheap when unset).
 */

/**
 * aiolab_set_before_wait_hook: call @hook(@ctx) in aio_poll() just before
 * it sleeps in the fd monitor, after announcing itself in notify_me.  A
 * stress test uses it to widen the lost-wake-up race window.
 * Context: any thread; the hook then runs in every thread that polls.
 */
typedef void AiolabBeforeWaitHook(void *ctx);
AIOLAB_API void aiolab_set_before_wait_hook(AiolabBeforeWaitHook *hook);

/**
 * aiolab_test_inject_bug: re-introduce a classic bug for a teaching or a
 * race test that must show the bad outcome.  @name is one of
 *   "skip-notify-me"  aio_poll() does not announce itself before sleeping
 *                     (the lost wake-up of QEMU's aio_notify.promela;
 *                     tests/c/test-iothread.c shows the stall)
 *   "none"            all off
 * Returns: false for an unknown name.
 * Context: any thread; each aio_poll() reads the setting once, when it
 * starts.
 */
AIOLAB_API bool aiolab_test_inject_bug(const char *name);

#endif
