/* SPDX-License-Identifier: MIT */
/*
 * aiolab/defer-call.h - batch work until the end of a section.
 *
 * Between defer_call_begin() and the matching defer_call_end(), a call to
 * defer_call(fn, opaque) is remembered instead of made; the outermost end
 * makes each remembered (fn, opaque) pair once, however often it was
 * deferred.  virtio-blk's handle_vq pass uses it so that 32 completions
 * raise one interrupt (one eventfd write), and submissions are batched.
 * Outside a section, defer_call() calls at once.
 *
 * Per thread; sections nest.
 */
#ifndef AIOLAB_DEFER_CALL_H
#define AIOLAB_DEFER_CALL_H

#include <aiolab/compiler.h>

/**
 * defer_call_begin / defer_call_end / defer_call: open a section, close
 * it (the outermost end makes the deferred calls), and defer a call.
 * Context: any thread.  A section belongs to the calling thread: begin
 * and end in the same thread (a coroutine must not move to another
 * thread inside one).
 */
AIOLAB_API void defer_call_begin(void);
AIOLAB_API void defer_call_end(void);
AIOLAB_API void defer_call(void (*fn)(void *), void *opaque);

#endif
