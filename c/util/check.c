/* SPDX-License-Identifier: MIT */
/*
 * util/check.c - reporting a broken rule (see check.h and docs/aborts.md).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <aiolab/aiolab.h>
#include "util/aio-internal.h"
#include "util/check.h"
#include "util/thread.h"

extern int aiolab_main_loop_tid;        /* bql.c */

void aiolab_die(const char *func, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "aiolab: %s() ", func);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(stderr);
    abort();
}

static const char *ctx_name(AioContext *ctx)
{
    return ctx && qatomic_read(&ctx->name) ? qatomic_read(&ctx->name) : "none";
}

/* The message of a broken home-thread rule (also used by bindings). */
static void fmt_home(char *buf, size_t len, const char *func, AioContext *ctx)
{
    AiolabThread *self = aiolab_thread_self();
    AioContext *cur = qemu_get_current_aio_context();

    snprintf(buf, len, "aiolab: %s() called outside the home thread of "
             "AioContext '%s' (from thread '%s', whose context is '%s'%s) "
             RULE_HOME, func, ctx ? ctx_name(ctx) : "?", self->name,
             ctx_name(cur), bql_locked() ? ", BQL held" : "");
}

void aiolab_home_thread_violation(const char *func, AioContext *ctx)
{
    char buf[512];

    fmt_home(buf, sizeof(buf), func, ctx);
    fprintf(stderr, "%s\n", buf);
    fflush(stderr);
    abort();
}

void aiolab_fmt_bql_double_lock(char *buf, size_t len, const char *func)
{
    snprintf(buf, len, "aiolab: %s() called by thread '%s', which already "
             "holds the BQL (it is not recursive: use BQL_LOCK_GUARD() where "
             "it may be held)", func, aiolab_thread_self()->name);
}

void aiolab_fmt_bql_not_held(char *buf, size_t len, const char *func)
{
    snprintf(buf, len, "aiolab: %s() called by thread '%s', which does not "
             "hold the BQL", func, aiolab_thread_self()->name);
}

bool aiolab_aio_wait_allowed(AioContext *ctx, const char *func, char *buf,
                             size_t len)
{
    AioContext *main_ctx = qemu_get_aio_context();
    AioContext *cur = qemu_get_current_aio_context();

    if ((ctx && in_aio_context_home_thread(ctx)) ||
        (main_ctx && cur == main_ctx)) {
        return true;
    }
    snprintf(buf, len, "aiolab: AIO_WAIT_WHILE() in %s(): thread '%s' "
             "(context '%s') waits on context '%s': only the main loop (BQL "
             "held) or the context's own thread may wait, because "
             "aio_wait_kick() only wakes the main loop; waiting here would "
             "deadlock " RULE_HOME, func, aiolab_thread_self()->name,
             ctx_name(cur), ctx ? ctx_name(ctx) : "(NULL)");
    return false;
}

bool aiolab_rule_check(int rule, const char *func, void *opaque_ctx,
                       char *buf, size_t len)
{
    AioContext *ctx = opaque_ctx;
    AioContext *main_ctx = qemu_get_aio_context();

    switch (rule) {
    case AIOLAB_RULE_HOME_THREAD:
        if (!ctx || ctx->magic != AIO_CONTEXT_MAGIC) {
            snprintf(buf, len, "aiolab: %s() got a destroyed or invalid "
                     "AioContext (%p)", func, opaque_ctx);
            return false;
        }
        if (!aiolab_is_home_thread(ctx)) {
            fmt_home(buf, len, func, ctx);
            return false;
        }
        if ((ctx == main_ctx || ctx == iohandler_get_aio_context()) &&
            !aiolab_main_ctx_poll_allowed()) {
            snprintf(buf, len, "aiolab: %s() polls the main context without "
                     "the BQL while other threads take it: two threads could "
                     "dispatch it at once " RULE_HOME, func);
            return false;
        }
        return true;
    case AIOLAB_RULE_GLOBAL_STATE:
        if (qemu_in_main_thread()) {
            return true;
        }
        snprintf(buf, len, "aiolab: %s() requires the BQL " RULE_GS, func);
        return false;
    case AIOLAB_RULE_AIO_WAIT:
        return aiolab_aio_wait_allowed(ctx, func, buf, len);
    case AIOLAB_RULE_MAIN_LOOP_WAIT:
        if (!main_ctx) {
            snprintf(buf, len, "aiolab: %s() needs the main loop: call "
                     "qemu_init_main_loop() first", func);
            return false;
        }
        if (aiolab_gettid() != aiolab_main_loop_tid) {
            snprintf(buf, len, "aiolab: %s() must run in the main-loop "
                     "thread " RULE_GS, func);
            return false;
        }
        if (!bql_locked()) {
            snprintf(buf, len, "aiolab: %s() requires the BQL " RULE_GS, func);
            return false;
        }
        return true;
    case AIOLAB_RULE_HAS_CONTEXT:
        if (qemu_get_current_aio_context()) {
            return true;
        }
        snprintf(buf, len, "aiolab: %s() must be called from a thread with "
                 "an AioContext (the completion runs there) " RULE_HOME, func);
        return false;
    case AIOLAB_RULE_BQL_NOT_HELD:
        if (!bql_locked()) {
            return true;
        }
        aiolab_fmt_bql_double_lock(buf, len, func);
        return false;
    case AIOLAB_RULE_BQL_HELD:
        if (bql_locked()) {
            return true;
        }
        aiolab_fmt_bql_not_held(buf, len, func);
        return false;
    default:
        snprintf(buf, len, "aiolab: aiolab_rule_check() got an unknown rule "
                 "%d", rule);
        return false;
    }
}

bool aiolab_checks_enabled(void)
{
    return AIOLAB_CHECKS;
}

const char *aiolab_version(void)
{
    return "0.1.0";
}
