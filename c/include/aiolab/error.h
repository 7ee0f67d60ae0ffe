/* SPDX-License-Identifier: MIT */
/*
 * aiolab/error.h - the Error object of management functions.
 *
 * Management functions take `Error **errp` last.  On failure they set *errp
 * to a new Error and return false, NULL or -errno.  Pass NULL to ignore the
 * error, &error_abort to abort with its message, &error_fatal to print it and
 * exit(1).  I/O functions return -errno instead; misuse (wrong thread,
 * missing BQL, destroyed object) aborts, naming the rule and the function.
 *
 * Where QEMU differs: QEMU's Error also records an ErrorClass and a hint
 * list; aiolab keeps the message only (the QMP monitor picks the class).
 */
#ifndef AIOLAB_ERROR_H
#define AIOLAB_ERROR_H

#include <aiolab/compiler.h>

typedef struct Error Error;

/* Any thread */

/**
 * error_abort: pass &error_abort as errp to abort on error.
 * Context: any thread (only its address is used; it is never written).
 */
AIOLAB_API extern Error *error_abort;
/**
 * error_fatal: pass &error_fatal as errp to print the error and exit(1).
 * Context: any thread (only its address is used; it is never written).
 */
AIOLAB_API extern Error *error_fatal;

/**
 * error_setg: set *errp to a new Error with a printf-style message.
 * @errp: where to store it; NULL ignores it, &error_abort aborts,
 *        &error_fatal exits.  *errp must be NULL on entry.
 * Context: any thread.
 */
AIOLAB_API void error_setg(Error **errp, const char *fmt, ...)
    AIOLAB_PRINTF(2, 3);

/**
 * error_setg_errno: like error_setg(), with ": strerror(errno_val)" appended.
 * Context: any thread.
 */
AIOLAB_API void error_setg_errno(Error **errp, int errno_val,
                                 const char *fmt, ...) AIOLAB_PRINTF(3, 4);

/**
 * error_propagate: move @local_err into *@dst_errp (or report it according
 * to the special values).  Frees @local_err if *@dst_errp is already set.
 * Context: any thread.
 */
AIOLAB_API void error_propagate(Error **dst_errp, Error *local_err);

/**
 * error_prepend: prefix the message of *@errp with a printf-style string.
 * Does nothing when @errp or *@errp is NULL.
 * Context: any thread.
 */
AIOLAB_API void error_prepend(Error **errp, const char *fmt, ...)
    AIOLAB_PRINTF(2, 3);

/**
 * error_get_pretty: the human-readable message.  Valid until error_free().
 * Context: any thread.
 */
AIOLAB_API const char *error_get_pretty(const Error *err);

/** error_free: free @err; NULL is allowed.  Context: any thread. */
AIOLAB_API void error_free(Error *err);

/**
 * error_report_err: print "aiolab: <message>" to stderr and free @err.
 * Context: any thread.
 */
AIOLAB_API void error_report_err(Error *err);

/**
 * error_report: print a printf-style message to stderr, QEMU's way of
 * reporting a problem that has no caller to return it to.
 * Context: any thread.
 */
AIOLAB_API void error_report(const char *fmt, ...) AIOLAB_PRINTF(1, 2);

/**
 * warn_report: like error_report(), prefixed with "warning: ".
 * Context: any thread.
 */
AIOLAB_API void warn_report(const char *fmt, ...) AIOLAB_PRINTF(1, 2);

#endif
