/* SPDX-License-Identifier: MIT */
/*
 * aiolab/compiler.h - small compiler helpers shared by every public header.
 *
 * aiolab builds with -fvisibility=hidden; AIOLAB_API marks the functions
 * that form the public API, so `nm -D build/libaiolab.so` is exactly it.
 */
#ifndef AIOLAB_COMPILER_H
#define AIOLAB_COMPILER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
#define AIOLAB_EXTERN_C extern "C"
#else
#define AIOLAB_EXTERN_C
#endif

#define AIOLAB_API __attribute__((visibility("default")))

/*
 * coroutine_fn: a documentation marker, as in QEMU.  A function marked
 * coroutine_fn may only be called from coroutine context (it may yield).
 * The Python bindings never bind one: a Python frame must not run on a C
 * coroutine stack.
 */
#define coroutine_fn

#define AIOLAB_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#define AIOLAB_NORETURN __attribute__((noreturn))

#endif
