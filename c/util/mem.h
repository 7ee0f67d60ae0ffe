/* SPDX-License-Identifier: MIT */
/*
 * util/mem.h - allocation that cannot fail (GLib's g_malloc family).
 *
 * aiolab's convention, as QEMU's: memory the program itself needs (its
 * objects, queues, names) comes from these helpers, which abort with a
 * message naming the size when the allocator says no.  Sizes a guest or
 * a client chooses (a descriptor chain's buffers, an NBD request's
 * payload, a vhost-user message's regions) are different: they are
 * checked against a limit first and allocated with plain malloc(), and
 * a failure fails that request or client, never the process.
 */
#ifndef AIOLAB_UTIL_MEM_H
#define AIOLAB_UTIL_MEM_H

#include <stddef.h>
#include <aiolab/compiler.h>

void *aiolab_xmalloc(size_t size);
void *aiolab_xcalloc(size_t nmemb, size_t size);
void *aiolab_xrealloc(void *ptr, size_t size);
/* reallocarray(): aborts on overflow of @nmemb * @size too. */
void *aiolab_xreallocarray(void *ptr, size_t nmemb, size_t size);
char *aiolab_xstrdup(const char *s);
char *aiolab_xstrndup(const char *s, size_t n);
char *aiolab_xasprintf(const char *fmt, ...) AIOLAB_PRINTF(1, 2);

#endif
