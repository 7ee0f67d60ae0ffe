# SPDX-License-Identifier: MIT
"""Small helpers shared by the aiolab notebooks.

Nothing here is part of aiolab; it keeps the notebooks about event loops
rather than about plotting.

    QUICK                 True under AIOLAB_QUICK=1 (the test suite): use
                          fewer iterations
    pick(full, quick)     full, or quick under AIOLAB_QUICK=1
    name_thread(name)     give the calling thread the name traces show
    timeline(trace, ...)  draw what every thread did, one lane per
                          (thread, event) pair, from `with aiolab.trace()`
    open_slices(trace)    trace.slices(), plus those cut by the capture
    slice_summary(trace)  count and total time of each slice, per thread
"""
import ctypes
import os

QUICK = os.environ.get("AIOLAB_QUICK") == "1"

# One colour per event, the same in every notebook.
COLOURS = {
    "aio_poll": "#9ecae1",
    "fdmon_wait": "#d9d9d9",
    "run_poll_handlers": "#fd8d3c",
    "aio_bh_call": "#31a354",
    "aio_dispatch_handler": "#74c476",
    "timer_cb": "#756bb1",
    "bql_held": "#de2d26",
    "bql_lock_wait": "#fcbba1",
    "aio_wait_while": "#3182bd",
    "thread_pool_work": "#e6550d",
    "main_loop_wait": "#c6dbef",
}


def pick(full, quick):
    """`full`, or `quick` when the notebook runs under AIOLAB_QUICK=1."""
    return quick if QUICK else full


def name_thread(name):
    """Name the calling thread (the kernel's thread name, at most 15
    bytes), so that aiolab's traces show it.  Call it first thing in the
    thread, before any aiolab call: aiolab reads the name when it first
    sees the thread.  Python's threading.Thread(name=...) only names the
    Python object."""
    libc = ctypes.CDLL(None, use_errno=True)
    PR_SET_NAME = 15
    libc.prctl(PR_SET_NAME, name.encode()[:15], 0, 0, 0)


def slice_summary(trace, names=None):
    """{(thread, slice name): (count, total ms)} for the slices of a
    capture (only those in `names`, if given)."""
    out = {}
    for s in open_slices(trace):
        if names is not None and s.name not in names:
            continue
        n, ms = out.get((s.thread, s.name), (0, 0.0))
        out[(s.thread, s.name)] = (n + 1, ms + (s.end_ns - s.start_ns) / 1e6)
    return out


def open_slices(trace):
    """Like trace.slices(), but also the slices that were already open
    when the capture started (an IOThread asleep in aio_poll: its end is
    in the capture, its begin is not) or still open when it ended: they are
    cut at the capture's edges."""
    from aiolab import Slice

    stacks, out = {}, []
    for e in trace.events:
        stack = stacks.setdefault(e.tid, [])
        if e.phase == "B":
            stack.append(e)
        elif e.phase == "E":
            if stack:
                b = stack.pop()
                out.append(Slice(b.thread, b.tid, b.name, b.label, b.ts_ns,
                                 e.ts_ns))
            else:
                out.append(Slice(e.thread, e.tid, e.name, e.label,
                                 trace.start_ns, e.ts_ns))
    for stack in stacks.values():
        for b in stack:
            out.append(Slice(b.thread, b.tid, b.name, b.label, b.ts_ns,
                             trace.end_ns))
    return sorted(out, key=lambda s: s.start_ns)


def timeline(trace, names=("aio_poll", "fdmon_wait", "bql_held",
                           "bql_lock_wait"), threads=None, marks=(),
             ax=None, title=None, start_ns=None, end_ns=None):
    """Draw the slices of `trace` called `names`, one lane per (thread,
    name), against milliseconds since the capture started.

    threads: names of the threads to show, top to bottom (default: every
    thread with one of the slices or marks, in order of first
    appearance).  marks: names of instant events (aiolab.mark(),
    qemu_bh_schedule, aio_notify...) to draw as ticks on their thread's
    first lane.  start_ns/end_ns: clip to this window (trace clock).
    Returns the matplotlib axes.
    """
    import matplotlib.pyplot as plt

    t0 = trace.start_ns if start_ns is None else start_ns
    t1 = trace.end_ns if end_ns is None else end_ns
    slices = [s for s in open_slices(trace) if s.name in names and
              s.end_ns >= t0 and s.start_ns <= t1]
    ticks = [e for e in trace.events if e.name in marks and e.phase == "i"
             and t0 <= e.ts_ns <= t1]
    seen = {}                               # tid -> name, first seen first
    for x in sorted([(s.start_ns, s.tid, s.thread) for s in slices] +
                    [(e.ts_ns, e.tid, e.thread) for e in ticks]):
        seen.setdefault(x[1], x[2])
    if threads is not None:
        order = [tid for th in threads for tid in seen if seen[tid] == th]
    else:
        order = list(seen)
    lanes = []                              # (tid, slice name), top first
    for tid in order:
        mine = [(tid, n) for n in names
                if any(s.tid == tid and s.name == n for s in slices)]
        lanes += mine or [(tid, "events")]  # a thread with marks only
    if ax is None:
        _, ax = plt.subplots(figsize=(10, 0.45 * max(len(lanes), 2) + 1.2))
    y = {lane: len(lanes) - 1 - i for i, lane in enumerate(lanes)}
    span_ms = (t1 - t0) / 1e6
    for s in slices:
        if (s.tid, s.name) not in y:
            continue
        a = (max(s.start_ns, t0) - t0) / 1e6
        b = (min(s.end_ns, t1) - t0) / 1e6
        # The thinnest slices still get a visible sliver.
        ax.barh(y[(s.tid, s.name)], max(b - a, span_ms / 400), left=a,
                height=0.7, color=COLOURS.get(s.name, "#888888"),
                edgecolor="white", linewidth=0.5)
    first_lane = {}
    for lane in lanes:
        first_lane.setdefault(lane[0], lane)
    for e in ticks:
        if e.tid in first_lane:
            x, yy = (e.ts_ns - t0) / 1e6, y[first_lane[e.tid]] + 0.45
            ax.plot([x], [yy], marker="v", color="black", markersize=6)
            ax.annotate(e.name, (x, yy), xytext=(3, 2),
                        textcoords="offset points", fontsize=8)
    ax.set_yticks([y[lane] for lane in lanes])
    ax.set_yticklabels([f"{seen[tid]}: {n}" for tid, n in lanes])
    ax.set_ylim(-0.6, len(lanes) - 0.2)
    ax.set_xlim(-0.01 * span_ms, 1.04 * span_ms)
    ax.set_xlabel("ms since the capture started")
    if title:
        ax.set_title(title)
    ax.grid(axis="x", alpha=0.3)
    return ax
