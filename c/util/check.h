/* SPDX-License-Identifier: MIT */
/*
 * util/check.h - the threading rules, checkable.
 *
 * In the debug build (AIOLAB_CHECKS=1, the default) every public function
 * states its rule with one of these macros; a violation aborts with
 *
 *     aiolab: <function>() <what went wrong> (<rule>)
 *
 * e.g. "aiolab: iothread_create() requires the BQL (GLOBAL_STATE_CODE:
 * main loop, BQL held)".  The release build compiles them out.  Aborts that
 * guard memory safety whatever the build (a leaked BH, a coroutine entered
 * twice) use aiolab_die() directly and stay in both builds, as in QEMU.
 */
#ifndef AIOLAB_UTIL_CHECK_H
#define AIOLAB_UTIL_CHECK_H

#include <aiolab/compiler.h>
#include "util/atomic.h"

#ifndef AIOLAB_CHECKS
#define AIOLAB_CHECKS 1
#endif

/* Print "aiolab: <func>() <message>" and abort().  Any build. */
void aiolab_die(const char *func, const char *fmt, ...)
    AIOLAB_PRINTF(2, 3) AIOLAB_NORETURN;

/* A rule every build checks (cheap, and breaking it corrupts memory). */
#define AIOLAB_ASSERT(cond, ...) do {                                     \
    if (unlikely(!(cond))) {                                              \
        aiolab_die(__func__, __VA_ARGS__);                                \
    }                                                                     \
} while (0)

#if AIOLAB_CHECKS
#define AIOLAB_REQUIRE(cond, ...) AIOLAB_ASSERT(cond, __VA_ARGS__)
#else
#define AIOLAB_REQUIRE(cond, ...) do { } while (0)
#endif

/* Rule texts, shared with docs/aborts.md and the Python layer. */
#define RULE_GS   "(GLOBAL_STATE_CODE: main loop, BQL held)"
#define RULE_HOME "(home thread only)"
#define RULE_CO   "(coroutine_fn: coroutine context only)"
#define RULE_NOCO "(no_coroutine_fn: never from a coroutine)"

bool qemu_in_main_thread(void);
/* May this thread poll the main context now?  (bql.c) */
bool aiolab_main_ctx_poll_allowed(void);

/* Global state: the caller must hold the BQL. */
#define GLOBAL_STATE_CODE() \
    AIOLAB_REQUIRE(qemu_in_main_thread(), "requires the BQL " RULE_GS)

/* A pointer argument must not be NULL. */
#define REQUIRE_NONNULL(p) \
    AIOLAB_REQUIRE((p) != NULL, "got NULL for '%s'", #p)

/* An object must be alive: its magic field still holds its magic. */
#define REQUIRE_LIVE(p, magic_value, type_name) do {                      \
    REQUIRE_NONNULL(p);                                                   \
    AIOLAB_REQUIRE((p)->magic == (magic_value),                           \
                   "got a destroyed or invalid %s (%p)", type_name,       \
                   (void *)(p));                                          \
} while (0)

struct AioContext;
/* Abort naming the context and thread, for the home-thread rule. */
void aiolab_home_thread_violation(const char *func, struct AioContext *ctx)
    AIOLAB_NORETURN;
/* in_aio_context_home_thread(), with the iohandler context counted as
 * the main context (it is polled by the main loop). */
bool aiolab_is_home_thread(struct AioContext *ctx);
/* The BQL misuse messages (bql.c aborts with them). */
void aiolab_fmt_bql_double_lock(char *buf, size_t len, const char *func);
void aiolab_fmt_bql_not_held(char *buf, size_t len, const char *func);

/* The AIO_WAIT_WHILE rule; false with the message in @buf. */
bool aiolab_aio_wait_allowed(struct AioContext *ctx, const char *func,
                             char *buf, size_t len);

#define HOME_THREAD_CODE(ctx) do {                                        \
    if (AIOLAB_CHECKS && unlikely(!aiolab_is_home_thread(ctx))) {         \
        aiolab_home_thread_violation(__func__, (ctx));                    \
    }                                                                     \
} while (0)

#endif
