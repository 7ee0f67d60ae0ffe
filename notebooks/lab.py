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

The toy machine (chapters 0, 4, 6, 9), driven through build/bin/aiolab-vm
as a subprocess with its QEMU-shaped command line (docs/machine.md):

    run_vm(args, trace=None)   run aiolab-vm -json ARGS; the report, a dict
    VMError                    aiolab-vm refused its command line (status 1)
    file_disk(node, mib)       a sparse scratch image, as a -blockdev string
    scratch(name)              a path in this session's scratch directory
    load_trace(path)           a -trace-file, shaped like aiolab.trace()'s
                               captures (so timeline() draws it)
    covering(slices, times)    which slice, if any, contains each time
    thread_report(report, name)  one thread's row of the report
    hist_percentile(hist, p)   a percentile of a report's histogram
    latency_cdf(hist, ...)     plot a report's latency histogram as a CDF
    QMP(path)                  a QMP client for -qmp unix:PATH
                               (aiolab.qmp.QMPClient)
    VMProcess(args, trace=None)  aiolab-vm in the background, started
                               with -S and a QMP monitor: .qmp, .finish()
"""
import collections
import ctypes
import json
import os
import subprocess
import tempfile

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
    # the toy machine's
    "guest halt": "#e0e0e0",
    "mmio exit": "#fb6a4a",
    "mmio exit (slow device, BQL held)": "#a50f15",
    "virtio_blk_handle_vq": "#08519c",
    "request": "#6baed6",
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
    cut at the capture's edges.  Begins and ends are paired per thread
    and name: a bql_held slice may start inside one main_loop_wait and end
    inside the next."""
    from aiolab import Slice

    stacks, out = {}, []
    for e in trace.events:
        stack = stacks.setdefault((e.tid, e.name), [])
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


# --- the toy machine: aiolab-vm as a subprocess ----------------------------

def _find_root():
    """The aiolab tree: the first directory above notebooks/ with
    c/include/aiolab/aiolab.h (a student copy lives in build/student/)."""
    d = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    while not os.path.exists(os.path.join(d, "c", "include", "aiolab",
                                          "aiolab.h")):
        parent = os.path.dirname(d)
        if parent == d:
            return os.path.dirname(os.path.dirname(os.path.abspath(
                __file__)))
        d = parent
    return d


ROOT = _find_root()
_scratch_dir = None


class VMError(Exception):
    """aiolab-vm refused its command line or failed to start (exit status
    1): .status, .message (its one-line error, QEMU's wording), .cmd."""

    def __init__(self, status, message, cmd):
        super().__init__(message)
        self.status, self.message, self.cmd = status, message, cmd


def vm_binary():
    """build/bin/aiolab-vm of this tree ($AIOLAB_VM overrides it)."""
    path = os.environ.get("AIOLAB_VM") or os.path.join(ROOT, "build", "bin",
                                                       "aiolab-vm")
    if not os.access(path, os.X_OK):
        raise FileNotFoundError(f"{path} is missing: run `make` in {ROOT}")
    return path


def scratch(name):
    """A path called name in this session's scratch directory (under
    $TMPDIR), for disk images and traces."""
    global _scratch_dir
    if _scratch_dir is None:
        _scratch_dir = tempfile.mkdtemp(prefix="aiolab-notebook-")
    return os.path.join(_scratch_dir, name)


def file_disk(node="disk0", mib=64):
    """A sparse mib MiB image in the scratch directory, returned as the
    -blockdev argument that opens it as node `node`."""
    path = scratch(node + ".img")
    with open(path, "wb") as f:
        f.truncate(mib << 20)
    return f"driver=file,filename={path},node-name={node}"


def run_vm(args, trace=None, timeout=120):
    """Run `aiolab-vm -json ARGS` (args: a list, one item per shell word)
    and return its report as a dict (docs/machine.md, "The report").
    trace: a path for -trace-file (Perfetto JSON), or None.  Exit status 2
    (the guest saw errors) still returns the report: look at
    report["errors"].  Raises VMError for status 1 (a bad option: the
    message is aiolab-vm's), RuntimeError for anything else."""
    cmd = [vm_binary(), "-json"] + [str(a) for a in args]
    if trace:
        cmd += ["-trace-file", str(trace)]
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, timeout=timeout)
    if p.returncode == 1:
        msg = p.stderr.strip().splitlines()
        raise VMError(1, msg[-1] if msg else "exit status 1", cmd)
    if p.returncode not in (0, 2):
        raise RuntimeError(f"aiolab-vm exited with {p.returncode}:\n"
                           f"{' '.join(cmd)}\n{p.stderr}")
    return json.loads(p.stdout)


def thread_report(report, name):
    """The report's row for the thread called name (the first one), with
    a "bql" entry of zeros if it never took the BQL."""
    for t in report["threads"]:
        if t["name"] == name:
            return dict(t, bql=t.get("bql") or dict(
                acquisitions=0, contended=0, wait_ns=0, wait_ns_max=0,
                hold_ns=0, hold_ns_max=0))
    raise KeyError(f"no thread {name!r} in the report: "
                   f"{[t['name'] for t in report['threads']]}")


def hist_percentile(hist, p):
    """The value (ns) below which a fraction p of a report histogram's
    requests ([[ns, count], ...], e.g. report["overall"]["histogram"])
    fall."""
    total = sum(c for _, c in hist)
    seen = 0
    for v, c in hist:
        seen += c
        if seen >= p * total:
            return v
    return 0


def latency_cdf(hist, ax=None, label=None, **kw):
    """Plot a report histogram ([[ns, count], ...]) as a CDF against
    microseconds on a log axis.  Returns the axes."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4))
    total = sum(c for _, c in hist) or 1
    xs, ys, seen = [], [], 0
    for v, c in hist:
        seen += c
        xs.append(v / 1000)
        ys.append(seen / total)
    ax.step(xs, ys, where="post", label=label, **kw)
    ax.set_xscale("log")
    ax.set_xlabel("request latency (us)")
    ax.set_ylabel("fraction of requests")
    ax.grid(True, which="both", alpha=0.3)
    return ax


VMEvent = collections.namedtuple("VMEvent",
                                 "ts_ns tid thread phase name label arg")


class VMTrace:
    """A -trace-file, loaded.  Shaped like an aiolab.trace() capture, so
    that timeline() and open_slices() take it:

    events    VMEvent(ts_ns, tid, thread, phase, name, label, arg), in
              time order; name is the event's own ("aio_poll"), without
              the label Perfetto shows after it
    threads   {tid: name}
    start_ns, end_ns   the first and last event
    first_ns  {tid: that thread's first event}: each thread keeps only
              its newest 32768 events, so a busy thread's record may
              begin later than the others'
    """

    def __init__(self, data):
        self.threads = {e["tid"]: e["args"]["name"]
                        for e in data["traceEvents"] if e.get("ph") == "M"}
        events = []
        for e in data["traceEvents"]:
            if e.get("ph") not in ("B", "E", "i"):
                continue
            args = e.get("args", {})
            label = args.get("label")
            name = e["name"]
            if label and name.endswith(" " + label):
                name = name[:-len(label) - 1]
            events.append(VMEvent(int(round(e["ts"] * 1000)), e["tid"],
                                  self.threads.get(e["tid"], "?"), e["ph"],
                                  name, label, args.get("arg", 0)))
        events.sort(key=lambda e: e.ts_ns)
        self.events = events
        self.start_ns = events[0].ts_ns if events else 0
        self.end_ns = events[-1].ts_ns if events else 0
        self.first_ns = {}
        for e in events:
            self.first_ns.setdefault(e.tid, e.ts_ns)

    def tid(self, thread):
        """The tid of the (first) thread called `thread`."""
        for tid, name in self.threads.items():
            if name == thread:
                return tid
        raise KeyError(f"no thread {thread!r}: {sorted(self.threads.values())}")

    def slices(self, name=None, thread=None):
        """Begin/end pairs as aiolab.Slice tuples, in order of their
        beginning; only those called `name` and on `thread` (a name) if
        given.  Begins and ends are paired per thread and name (a
        bql_held slice need not nest with main_loop_wait's); slices cut by
        the ring's start are left out."""
        from aiolab import Slice

        stacks = collections.defaultdict(list)
        out = []
        for e in self.events:
            if (thread is not None and e.thread != thread) or \
                    (name is not None and e.name != name):
                continue
            if e.phase == "B":
                stacks[(e.tid, e.name)].append(e)
            elif e.phase == "E" and stacks[(e.tid, e.name)]:
                b = stacks[(e.tid, e.name)].pop()
                out.append(Slice(b.thread, b.tid, b.name, b.label,
                                 b.ts_ns, e.ts_ns))
        return sorted(out, key=lambda s: s.start_ns)

    def instants(self, name, thread=None):
        """The instant events called name (on `thread`, if given)."""
        return [e for e in self.events if e.phase == "i" and e.name == name
                and (thread is None or e.thread == thread)]

    def count(self, name, phase=None, thread=None):
        """How many events are called name (with phase, on thread, if
        given)."""
        return sum(1 for e in self.events if e.name == name and
                   (phase is None or e.phase == phase) and
                   (thread is None or e.thread == thread))


def load_trace(path):
    """Load a trace aiolab-vm wrote with -trace-file."""
    with open(path) as f:
        return VMTrace(json.load(f))


def covering(slices, times_ns):
    """For each time in times_ns, the slice of `slices` (not overlapping
    each other, as one thread's slices of one name) that contains it, or
    None."""
    import bisect

    slices = sorted(slices, key=lambda s: s.start_ns)
    starts = [s.start_ns for s in slices]
    out = []
    for t in times_ns:
        i = bisect.bisect_right(starts, t) - 1
        out.append(slices[i] if i >= 0 and t <= slices[i].end_ns else None)
    return out


def QMP(path, timeout=10.0):
    """A QMP client for -qmp unix:PATH, connected and past capabilities
    negotiation: aiolab.qmp.QMPClient.  execute(name, **arguments)
    returns "return" or raises aiolab.qmp.QMPError (a RuntimeError);
    events that arrive meanwhile are kept in .events and .event_log;
    wait_event(name) waits for one."""
    from aiolab.qmp import QMPClient
    return QMPClient(path, timeout=timeout)


class VMProcess:
    """aiolab-vm -json -S ARGS in the background, with a QMP monitor on a
    scratch socket: .qmp is a connected QMP client, the guest waits for
    .qmp.execute("cont"); finish() waits for the end and returns the
    report (run_vm's rules)."""

    _count = 0

    def __init__(self, args, trace=None):
        VMProcess._count += 1
        self.sock = scratch(f"q{VMProcess._count}.sock")
        self.cmd = [vm_binary(), "-json", "-S"] + [str(a) for a in args] + \
            ["-qmp", f"unix:{self.sock},server=on,wait=off"]
        if trace:
            self.cmd += ["-trace-file", str(trace)]
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        try:
            self.qmp = QMP(self.sock)
        except OSError:
            _, err = self.proc.communicate(timeout=60)
            msg = err.strip().splitlines()
            raise VMError(self.proc.returncode,
                          msg[-1] if msg else "no QMP monitor", self.cmd)

    def finish(self, timeout=120):
        """Wait for aiolab-vm to exit; its report."""
        out, err = self.proc.communicate(timeout=timeout)
        self.qmp.close()
        if self.proc.returncode not in (0, 2):
            raise RuntimeError(f"aiolab-vm exited with "
                               f"{self.proc.returncode}:\n{err}")
        return json.loads(out)

