/* SPDX-License-Identifier: MIT */
/*
 * aiolab/trace.h - trace events, recorded per thread, exported to Perfetto.
 *
 * Each thread records into its own ring buffer (no lock, no system call:
 * a cycle-counter read and a store), so tracing is cheap enough to leave
 * on.  Events are named after QEMU's trace-events where QEMU has one
 * (aio_co_schedule, poll_grow, poll_shrink, run_poll_handlers_begin, ...).
 * aiolab_trace_write_json() writes Chrome trace-event JSON, which
 * https://ui.perfetto.dev opens: one track per thread, with slices for
 * aio_poll, BHs, fd handlers, sleeps, BQL waits and holds.
 *
 * Recording is on by default; AIOLAB_TRACE=0 in the environment or
 * aiolab_trace_set_enabled(false) turns it off.
 */
#ifndef AIOLAB_TRACE_H
#define AIOLAB_TRACE_H

#include <aiolab/error.h>

/** One exported event. */
typedef struct AiolabTraceRecord {
    int64_t ts_ns;        /* CLOCK_MONOTONIC time, ns */
    int tid;              /* kernel thread id */
    char phase;           /* 'B' begin, 'E' end, 'i' instant, 'C' counter */
    const char *name;     /* event name, e.g. "aio_bh_call" */
    const char *label;    /* BH/handler/context name, or NULL */
    int64_t arg;          /* event-specific value (fd, ns, count...) */
} AiolabTraceRecord;

/** One thread known to the trace (and to the BQL statistics). */
typedef struct AiolabTraceThread {
    int tid;
    char name[32];
} AiolabTraceThread;

/**
 * aiolab_trace_set_enabled: start or stop recording (all threads).
 * Context: any thread.
 */
AIOLAB_API void aiolab_trace_set_enabled(bool enabled);
AIOLAB_API bool aiolab_trace_get_enabled(void);

/**
 * aiolab_trace_clear: forget recorded events (all threads).  Threads still
 * recording may add events concurrently; call it while quiet.
 * Context: any thread.
 */
AIOLAB_API void aiolab_trace_clear(void);

/**
 * aiolab_trace_collect: copy up to @max events, oldest first per thread
 * and merged by time, recorded at or after @since_ns (0 for all).
 * Returns: the number available (may exceed @max).
 * Context: any thread; threads may keep recording (their newest events may
 * be missed).
 */
AIOLAB_API size_t aiolab_trace_collect(AiolabTraceRecord *out, size_t max,
                                       int64_t since_ns);

/**
 * aiolab_trace_threads: up to @max threads; returns how many exist.
 * Context: any thread.
 */
AIOLAB_API size_t aiolab_trace_threads(AiolabTraceThread *out, size_t max);

/**
 * aiolab_trace_write_json: write recorded events (since @since_ns, 0 for
 * all) as Chrome trace-event JSON.  Returns: false with @errp set.
 * Context: any thread; as aiolab_trace_collect(), threads may keep
 * recording.
 */
AIOLAB_API bool aiolab_trace_write_json(const char *path, int64_t since_ns,
                                        Error **errp);

/**
 * aiolab_trace_now_ns: the trace clock (CLOCK_MONOTONIC), ns.
 * Context: any thread.
 */
AIOLAB_API int64_t aiolab_trace_now_ns(void);

/**
 * aiolab_trace_mark: record an instant event @name (a string that must
 * outlive the trace, e.g. a literal) with @arg on the calling thread, for
 * programs and tutorials that want their own marks.
 * Context: any thread.
 */
AIOLAB_API void aiolab_trace_mark(const char *name, int64_t arg);

/**
 * aiolab_trace_begin / aiolab_trace_end: a named slice on the calling
 * thread (e.g. "request" around a guest request).
 * Context: any thread; end in the thread that began the slice.
 */
AIOLAB_API void aiolab_trace_begin(const char *name, int64_t arg);
AIOLAB_API void aiolab_trace_end(const char *name, int64_t arg);

/**
 * aiolab_thread_set_name: name the calling thread for traces, statistics
 * and the dump (also sets the kernel thread name, truncated to 15 bytes).
 * Context: any thread (it names itself).
 */
AIOLAB_API void aiolab_thread_set_name(const char *name);

/**
 * aiolab_intern_string: a copy of @s that lives as long as the process
 * (one per distinct string), for names that traces may print after their
 * owner is gone.  BH and context names are interned automatically.
 * Context: any thread.
 */
AIOLAB_API const char *aiolab_intern_string(const char *s);

#endif
