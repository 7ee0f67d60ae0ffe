/* SPDX-License-Identifier: MIT */
/*
 * util/mem.c - allocation that cannot fail (see mem.h).
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "util/check.h"
#include "util/mem.h"

static void *checked(void *p, size_t size, const char *func)
{
    if (unlikely(!p && size)) {
        aiolab_die(func, "failed to allocate %zu bytes (out of memory)",
                   size);
    }
    return p;
}

void *aiolab_xmalloc(size_t size)
{
    return checked(malloc(size), size, __func__);
}

void *aiolab_xcalloc(size_t nmemb, size_t size)
{
    if (size && nmemb > SIZE_MAX / size) {
        aiolab_die(__func__, "%zu x %zu bytes overflow size_t", nmemb, size);
    }
    return checked(calloc(nmemb, size), nmemb * size, __func__);
}

void *aiolab_xrealloc(void *ptr, size_t size)
{
    return checked(realloc(ptr, size), size, __func__);
}

void *aiolab_xreallocarray(void *ptr, size_t nmemb, size_t size)
{
    if (size && nmemb > SIZE_MAX / size) {
        aiolab_die(__func__, "%zu x %zu bytes overflow size_t", nmemb, size);
    }
    return checked(realloc(ptr, nmemb * size), nmemb * size, __func__);
}

char *aiolab_xstrdup(const char *s)
{
    return s ? checked(strdup(s), strlen(s) + 1, __func__) : NULL;
}

char *aiolab_xstrndup(const char *s, size_t n)
{
    return s ? checked(strndup(s, n), strnlen(s, n) + 1, __func__) : NULL;
}

char *aiolab_xasprintf(const char *fmt, ...)
{
    va_list ap;
    char *s;
    int n;

    va_start(ap, fmt);
    n = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (n < 0) {
        aiolab_die(__func__, "failed to format a string (out of memory)");
    }
    return s;
}
