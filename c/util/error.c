/* SPDX-License-Identifier: MIT */
/*
 * util/error.c - Error objects (QEMU's util/error.c, message only).
 *
 * error_abort and error_fatal are sentinels: their *addresses* are passed
 * as errp, so error_setg() can tell "abort" and "exit" apart from a real
 * Error ** without any flag argument.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <aiolab/error.h>
#include "util/check.h"
#include "util/mem.h"

struct Error {
    char *msg;
};

Error *error_abort;
Error *error_fatal;

static char *vformat(const char *fmt, va_list ap)
{
    char *s = NULL;

    if (vasprintf(&s, fmt, ap) < 0) {
        aiolab_oom(0);
    }
    return s;
}

/* Deliver @err to @errp: store it, or handle the sentinels. */
static void error_handle(Error **errp, Error *err)
{
    if (errp == &error_abort) {
        fprintf(stderr, "aiolab: unexpected error: %s\n", err->msg);
        abort();
    }
    if (errp == &error_fatal) {
        fprintf(stderr, "aiolab: %s\n", err->msg);
        exit(1);
    }
    if (!errp) {
        error_free(err);
        return;
    }
    AIOLAB_ASSERT(*errp == NULL, "overwrites an error already set: '%s'",
                  (*errp)->msg);
    *errp = err;
}

void error_setg(Error **errp, const char *fmt, ...)
{
    Error *err = aiolab_xcalloc(1, sizeof(*err));
    va_list ap;

    va_start(ap, fmt);
    err->msg = vformat(fmt, ap);
    va_end(ap);
    error_handle(errp, err);
}

void error_setg_errno(Error **errp, int errno_val, const char *fmt, ...)
{
    Error *err = aiolab_xcalloc(1, sizeof(*err));
    char *head;
    va_list ap;

    va_start(ap, fmt);
    head = vformat(fmt, ap);
    va_end(ap);
    err->msg = aiolab_xasprintf("%s: %s", head, strerror(errno_val));
    free(head);
    error_handle(errp, err);
}

void error_propagate(Error **dst_errp, Error *local_err)
{
    if (!local_err) {
        return;
    }
    if (dst_errp && dst_errp != &error_abort && dst_errp != &error_fatal &&
        *dst_errp) {
        error_free(local_err);      /* keep the first error */
        return;
    }
    error_handle(dst_errp, local_err);
}

void error_prepend(Error **errp, const char *fmt, ...)
{
    char *head, *msg;
    va_list ap;

    if (!errp || errp == &error_abort || errp == &error_fatal || !*errp) {
        return;
    }
    va_start(ap, fmt);
    head = vformat(fmt, ap);
    va_end(ap);
    msg = aiolab_xasprintf("%s%s", head, (*errp)->msg);
    free(head);
    free((*errp)->msg);
    (*errp)->msg = msg;
}

const char *error_get_pretty(const Error *err)
{
    return err ? err->msg : NULL;
}

void error_free(Error *err)
{
    if (err) {
        free(err->msg);
        free(err);
    }
}

void error_report_err(Error *err)
{
    if (err) {
        fprintf(stderr, "aiolab: %s\n", err->msg);
        error_free(err);
    }
}

void error_report(const char *fmt, ...)
{
    va_list ap;

    fputs("aiolab: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

void warn_report(const char *fmt, ...)
{
    va_list ap;

    fputs("aiolab: warning: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}
