/* SPDX-License-Identifier: MIT */
/*
 * util/mem.h - allocation that cannot fail (GLib's g_malloc family).
 *
 * aiolab's convention, as QEMU's: memory the program itself needs (its
 * objects, queues, names) comes from these helpers, which abort with a
 * message naming the size when the allocator says no.  Sizes a guest or
 * a client chooses (an NBD request's payload, a vhost-user message's
 * tables) are different: they are checked against a limit first and
 * allocated with plain malloc(), and a failure fails that request or
 * client, never the process.
 *
 * Header-only: the library, the programs (c/tools, c/monitor, which link
 * the library but see only its API) and the tests use the same code.
 */
#ifndef AIOLAB_UTIL_MEM_H
#define AIOLAB_UTIL_MEM_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <aiolab/compiler.h>

/* Report "aiolab: out of memory (@size bytes)" and abort(). */
AIOLAB_NORETURN static inline void aiolab_oom(size_t size)
{
    if (size) {
        fprintf(stderr, "aiolab: out of memory (failed to allocate %zu "
                "bytes)\n", size);
    } else {
        fprintf(stderr, "aiolab: out of memory\n");
    }
    fflush(stderr);
    abort();
}

static inline void *aiolab_xcheck(void *p, size_t size)
{
    if (!p && size) {
        aiolab_oom(size);
    }
    return p;
}

static inline size_t aiolab_xmul(size_t nmemb, size_t size)
{
    if (size && nmemb > SIZE_MAX / size) {
        fprintf(stderr, "aiolab: allocation of %zu x %zu bytes overflows "
                "size_t\n", nmemb, size);
        fflush(stderr);
        abort();
    }
    return nmemb * size;
}

static inline void *aiolab_xmalloc(size_t size)
{
    return aiolab_xcheck(malloc(size), size);
}

static inline void *aiolab_xcalloc(size_t nmemb, size_t size)
{
    size_t total = aiolab_xmul(nmemb, size);

    return aiolab_xcheck(calloc(nmemb, size), total);
}

static inline void *aiolab_xrealloc(void *ptr, size_t size)
{
    return aiolab_xcheck(realloc(ptr, size), size);
}

/* realloc() of @nmemb elements of @size bytes, the product checked. */
static inline void *aiolab_xreallocarray(void *ptr, size_t nmemb,
                                         size_t size)
{
    size_t total = aiolab_xmul(nmemb, size);

    return aiolab_xcheck(realloc(ptr, total), total);
}

/* strdup(); NULL stays NULL. */
static inline char *aiolab_xstrdup(const char *s)
{
    return s ? aiolab_xcheck(strdup(s), strlen(s) + 1) : NULL;
}

static inline char *aiolab_xstrndup(const char *s, size_t n)
{
    return s ? aiolab_xcheck(strndup(s, n), strnlen(s, n) + 1) : NULL;
}

AIOLAB_PRINTF(1, 2)
static inline char *aiolab_xasprintf(const char *fmt, ...)
{
    va_list ap;
    char *s;
    int n;

    va_start(ap, fmt);
    n = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (n < 0) {
        aiolab_oom(0);
    }
    return s;
}

#endif
