# SPDX-License-Identifier: MIT
"""Trace capture: `with aiolab.trace() as t:` records what every thread
did (BHs, handlers, polls, sleeps, BQL waits and holds, coroutine and
thread-pool events) and gives it back as a list, slices, or Perfetto
JSON (open at https://ui.perfetto.dev)."""
import collections
import json
import os
import tempfile

from ._backend import B, lib, raw
from ._core import call_errp

TraceEvent = collections.namedtuple(
    "TraceEvent", "ts_ns tid thread phase name label arg")
TraceEvent.__doc__ = """One event: ts_ns (CLOCK_MONOTONIC), tid and thread
(name), phase ('B' begin, 'E' end, 'i' instant), name (e.g. 'aio_bh_call'),
label (the BH, handler or context name, or None) and arg."""

Slice = collections.namedtuple("Slice", "thread tid name label start_ns "
                               "end_ns")


def threads():
    """{tid: thread name} of every thread aiolab has seen."""
    n = lib.aiolab_trace_threads(B.NULL, 0)
    arr = B.array("AiolabTraceThread", n + 8)
    n = min(lib.aiolab_trace_threads(raw(arr), n + 8), n + 8)
    out = {}
    for i in range(n):
        t = B.item(arr, "AiolabTraceThread", i)
        out[t.tid] = B.chars(t.name)
    return out


def collect(since_ns=0):
    """Every recorded event since since_ns, in time order."""
    n = lib.aiolab_trace_collect(B.NULL, 0, since_ns)
    cap = n + 1024
    arr = B.array("AiolabTraceRecord", cap)
    n = min(lib.aiolab_trace_collect(raw(arr), cap, since_ns), cap)
    names = threads()
    out = []
    for i in range(n):
        r = B.item(arr, "AiolabTraceRecord", i)
        phase = r.phase
        if isinstance(phase, bytes):
            phase = phase.decode()
        out.append(TraceEvent(r.ts_ns, r.tid, names.get(r.tid, "?"), phase,
                              B.str(r.name), B.str(r.label), r.arg))
    return out


class Trace:
    """The events recorded between __enter__ and __exit__."""

    def __init__(self):
        self.start_ns = self.end_ns = None
        self.events = []
        self.threads = {}

    def __enter__(self):
        self._was_enabled = lib.aiolab_trace_get_enabled()
        lib.aiolab_trace_set_enabled(True)
        self.start_ns = lib.aiolab_trace_now_ns()
        return self

    def __exit__(self, *exc):
        self.end_ns = lib.aiolab_trace_now_ns()
        self.events = [e for e in collect(self.start_ns)
                       if e.ts_ns <= self.end_ns]
        self.threads = threads()
        lib.aiolab_trace_set_enabled(self._was_enabled)

    def slices(self, name=None):
        """Begin/end pairs as Slice tuples (per thread, properly nested);
        only those called `name` if given."""
        stacks = collections.defaultdict(list)
        out = []
        for e in self.events:
            if e.phase == "B":
                stacks[e.tid].append(e)
            elif e.phase == "E" and stacks[e.tid]:
                b = stacks[e.tid].pop()
                if name is None or b.name == name:
                    out.append(Slice(b.thread, b.tid, b.name, b.label,
                                     b.ts_ns, e.ts_ns))
        return sorted(out, key=lambda s: s.start_ns)

    def count(self, name, phase=None):
        """How many captured events are called name (and have phase, if given)."""
        return sum(1 for e in self.events
                   if e.name == name and (phase is None or e.phase == phase))

    def to_perfetto(self):
        """Chrome trace-event JSON (a dict), as aiolab_trace_write_json
        writes it, for the events of this capture."""
        fd, path = tempfile.mkstemp(suffix=".json")
        os.close(fd)
        try:
            call_errp(lib.aiolab_trace_write_json, B.s(path), self.start_ns)
            with open(path) as f:
                data = json.load(f)
        finally:
            os.unlink(path)
        end_us = self.end_ns / 1000.0
        data["traceEvents"] = [e for e in data["traceEvents"]
                               if e.get("ph") == "M" or e["ts"] <= end_us]
        return data

    def save(self, path):
        """Write the Perfetto JSON to path."""
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError("path must be a str or path")
        with open(path, "w") as f:
            json.dump(self.to_perfetto(), f)
        return path


def trace():
    """`with aiolab.trace() as t:` -- capture events; see Trace."""
    return Trace()


def set_tracing(enabled):
    """Turn recording on or off for every thread (aiolab_trace_set_enabled)."""
    lib.aiolab_trace_set_enabled(bool(enabled))


def _check_name(name, arg):
    if not isinstance(name, str) or not name:
        raise TypeError("name must be a non-empty str")
    if isinstance(arg, bool) or not isinstance(arg, int):
        raise TypeError("arg must be an int")


def mark(name, arg=0):
    """Record an instant event `name` on the calling thread."""
    _check_name(name, arg)
    B.trace("i", name, arg)


class span:
    """`with aiolab.span("request"):` -- a named slice on this thread."""

    def __init__(self, name, arg=0):
        _check_name(name, arg)
        self.name, self.arg = name, arg

    def __enter__(self):
        B.trace("B", self.name, self.arg)
        return self

    def __exit__(self, *exc):
        B.trace("E", self.name, self.arg)
