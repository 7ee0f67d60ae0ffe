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

void aiolab_home_thread_violation(const char *func, AioContext *ctx)
{
    AiolabThread *self = aiolab_thread_self();
    AioContext *cur = qemu_get_current_aio_context();

    aiolab_die(func, "called outside the home thread of AioContext '%s' "
               "(from thread '%s', whose context is '%s'%s) " RULE_HOME,
               ctx && ctx->name ? ctx->name : "?", self->name,
               cur && cur->name ? cur->name : "none",
               bql_locked() ? ", BQL held" : "");
}

bool aiolab_checks_enabled(void)
{
    return AIOLAB_CHECKS;
}

const char *aiolab_version(void)
{
    return "0.1.0";
}
