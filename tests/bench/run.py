# SPDX-License-Identifier: MIT
"""aiolab benchmarks, measured beside their peers in the same run.

Command line (from the repository root; `make bench` runs exactly this):

    /usr/bin/python3 tests/bench/run.py --build build/release --out build/bench

    --build DIR    a release build of aiolab (DIR/libaiolab.so, `make RELEASE=1`)
    --out DIR      where the programs, results.json, report.md and the PNG
                   plots go (created)
    --quick        few iterations and 3 runs per figure: a smoke run (~1 min)
    --only ROWS    comma-separated rows, by number or name:
                   1 bh, 2 wakeup, 3 pingpong, 4 timer, 5 fd, 6 coroutine,
                   7 trace, 8 wakeup-idle (informational, no target),
                   9 py-bh, 10 py-roundtrip (the Python package on both
                   bindings beside asyncio and uvloop; they need the
                   default build's modules, `make`); rows 11 and up come
                   from the rows_*.py modules beside this file (--list)
    --runs N       runs per figure (default 7, --quick 3; at least 3)
    --cpus A,B     the loop CPU and the other CPU (default 1,0)
    --no-aiolab    peers only (no aiolab build needed; for debugging)
    --list         the rows and their targets

The runner builds every program itself with $CC (default cc) into OUT/bin:
the peers (floor, libevent, GLib, libuv) and bench-aiolab, linked with
`-Ic/include -L<build> -laiolab -Wl,-rpath,<abs build>`.  The asyncio and
uvloop peers run under this interpreter.

Rules (docs: shared/DESIGN.md section 3): each figure is the median of
--runs process runs, interleaved with the peers' runs (A B C A B C ...);
every row names its thread placement (threads pinned with
sched_setaffinity); every target is evaluated against peers measured in
this same run; each aiolab row is measured with tracing off (the contract:
"a release build, threading checks and tracing off unless the row is about
them") and with tracing on (aiolab's default), so the report shows what
tracing costs on every row; the verdict is the trace-off figure's, and the
trace-on figure is judged against the same bound for information.  Rows
measured one way only (7: tracing itself; 9-10: Python with the package's
defaults) are judged on that figure.

Exit status: 0 when every program ran (targets that MISS are reported, not
failed: timing is measured, never asserted), 1 when a program failed.
"""
import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent

# ---------------------------------------------------------------------------
# What is measured
# ---------------------------------------------------------------------------


class Impl:
    """One implementation in a row: a program, its arguments, its label."""

    def __init__(self, key, prog, args=(), label=None, aiolab=False,
                 trace=None, note=""):
        self.key = key
        # bench-<prog>.c built by build(), or a script in tests/bench
        # ("x.py", run with this interpreter)
        self.prog = prog
        self.args = list(args)
        self.label = label          # filled from the program's JSON if None
        self.aiolab = aiolab
        self.trace = trace          # "on" / "off" for aiolab
        self.note = note


def aiolab_pair(key, args=(), label="aiolab", note=""):
    """The same aiolab measurement with tracing on (default) and off."""
    return [Impl(key, "aiolab", list(args) + ["trace=on"], label, True, "on",
                 note),
            Impl(key + "-notrace", "aiolab", list(args) + ["trace=off"],
                 label + " (trace off)", True, "off", note)]


class Check:
    """One clause of a target: aiolab's figure against a bound.

    bound(med) returns the bound from the medians of this run (a dict
    key -> median), or None when a peer is missing; le means the aiolab
    figure must be <= the bound (else >=), strict means < (or >).
    """

    def __init__(self, text, aiolab_key, bound, le=True, strict=False,
                 metric="value", fmt=None):
        self.fmt = fmt              # formats both figures (default fmt_num)
        self.text = text
        self.aiolab_key = aiolab_key
        self.bound = bound
        self.le = le
        self.strict = strict
        self.metric = metric

    def evaluate(self, med, suffix):
        key = self.aiolab_key + suffix
        a = med.get((key, self.metric))
        b = self.bound(med)
        if a is None or b is None:
            return a, b, None
        if self.le:
            ok = a < b if self.strict else a <= b
        else:
            ok = a > b if self.strict else a >= b
        return a, b, ok


def peer(key, metric="value", scale=1.0, add=0.0):
    def f(med):
        v = med.get((key, metric))
        return None if v is None else v * scale + add
    return f


def const(v):
    return lambda med: v


class Row:
    def __init__(self, num, name, title, unit, placement, impls, checks,
                 what, metrics=("value",), cdf=False, ratio_to=None,
                 logx=False, notrace=True, runs=None, quick_runs=None):
        self.num = num
        self.name = name
        self.title = title
        self.unit = unit
        self.placement = placement
        self.impls = impls
        self.checks = checks
        self.what = what            # one paragraph: what exactly is timed
        self.metrics = metrics      # "value" first; e.g. p99 too
        self.cdf = cdf
        self.ratio_to = ratio_to    # aiolab key the ratio column uses
        self.logx = logx
        self.notrace = notrace      # aiolab also measured with trace off
        # Runs per figure for this row whatever --runs says (at least 3):
        # for rows whose every run is expensive (a guest boots).
        self.runs = runs
        # With --quick (a smoke run, not a measurement): this many runs,
        # if fewer than 3 are enough to show the row works.
        self.quick_runs = quick_runs


def rows(cpu, cpu2):
    one = "1 thread, pinned to CPU %d" % cpu
    other = ("requester pinned to CPU %d, event loop pinned to CPU %d "
             "(other CPU)" % (cpu2, cpu))
    same = ("both event loops pinned to CPU %d (same CPU); the starting "
            "thread waits on CPU %d" % (cpu, cpu2))
    timer = ("event-loop thread pinned to CPU %d (aiolab: the IOThread; its "
             "creator sleeps on CPU %d)" % (cpu, cpu2))
    R = []
    R.append(Row(
        1, "bh", "Deferred callback: schedule + dispatch", "ns/callback",
        one,
        aiolab_pair("aiolab", ["bh"]) + [
            Impl("libevent", "libevent", ["bh"]),
            Impl("libuv", "libuv", ["bh"]),
            Impl("glib-idle", "glib", ["bh", "variant=idle"]),
            Impl("glib-ready", "glib", ["bh", "variant=readytime"]),
            Impl("asyncio", "bench_asyncio.py", ["bh", "loop=asyncio"]),
            Impl("uvloop", "bench_asyncio.py", ["bh", "loop=uvloop"]),
            Impl("floor", "floor", ["bh"]),
        ],
        [Check("aiolab <= 150 ns", "aiolab", const(150.0)),
         Check("aiolab < libevent", "aiolab", peer("libevent"),
               strict=True)],
        "One callback scheduled and then dispatched by one non-blocking loop "
        "iteration, in a loop.  aiolab: qemu_bh_schedule() + "
        "aio_poll(ctx, false) on a fresh aio_context_new() with nothing else "
        "registered; libevent: event_active() + event_base_loop(EVLOOP_ONCE|"
        "EVLOOP_NONBLOCK); libuv: uv_idle_start() + uv_run(UV_RUN_NOWAIT), "
        "the callback stops the idle handle; GLib: g_idle_add() (a new source "
        "each time) or a persistent source armed with "
        "g_source_set_ready_time(0), one g_main_context_iteration(FALSE) "
        "each; asyncio/uvloop: each callback call_soon()s the next, so each "
        "runs in its own loop iteration; floor: set a flag, test it, call "
        "through a function pointer.",
        ratio_to="aiolab"))
    R.append(Row(
        2, "wakeup", "Cross-thread wake-up round trip", "ns",
        other,
        aiolab_pair("aiolab", ["wakeup"],
                    note="IOThread, poll-max-ns 32768 (default), "
                         "adaptive polling") +
        aiolab_pair("aiolab-poll0", ["wakeup", "poll_max_ns=0"],
                    label="aiolab poll-max-ns 0",
                    note="IOThread, polling off: it sleeps") + [
            Impl("libevent", "libevent", ["wakeup"],
                 note="event_active() from the requester, "
                      "evthread_use_pthreads()"),
            Impl("glib", "glib", ["wakeup"]),
            Impl("libuv", "libuv", ["wakeup"]),
            Impl("floor-futex", "floor", ["wakeup", "variant=futex"],
                 note="server sleeps in FUTEX_WAIT"),
            Impl("floor-spin", "floor", ["wakeup", "variant=spin"],
                 note="server busy-polls a flag: the cache-line round trip"),
        ],
        [Check("aiolab p50 <= 2 us", "aiolab", const(2000.0))],
        "The requester stores 0 in a flag, asks the loop thread to run a "
        "callback that stores 1, and spins until it sees 1; back to back, "
        "one sample per round trip (p50 and p99 over 20000).  aiolab: "
        "qemu_bh_schedule() of a BH of an IOThread's context (iothread_create"
        "); libevent: event_active() on another thread's base; GLib: "
        "g_main_context_invoke() into a context run by g_main_loop_run() "
        "on the other thread; libuv: uv_async_send().  Back to back, a "
        "loop that sleeps (poll-max-ns 0, the peers) is sometimes caught "
        "before it has gone to sleep: its distribution is bimodal (see the "
        "CDF) and its p50 can land on either mode from run to run; row 8 "
        "measures sleeping loops cleanly.",
        metrics=("value", "p99"), cdf=True, ratio_to="aiolab", logx=True))
    gap = ["gap_ns=200000"]
    R.append(Row(
        8, "wakeup-idle", "Cross-thread wake-up of an idle loop", "ns",
        other,
        aiolab_pair("aiolab", ["wakeup"] + gap,
                    note="IOThread, poll-max-ns 32768 (default)") +
        aiolab_pair("aiolab-poll0", ["wakeup", "poll_max_ns=0"] + gap,
                    label="aiolab poll-max-ns 0") + [
            Impl("libevent", "libevent", ["wakeup"] + gap),
            Impl("glib", "glib", ["wakeup"] + gap),
            Impl("libuv", "libuv", ["wakeup"] + gap),
            Impl("floor-futex", "floor", ["wakeup", "variant=futex"] + gap,
                 note="server sleeps in FUTEX_WAIT"),
        ],
        [],
        "Row 2 with the requests 200 us apart (5000 samples): longer than "
        "poll-max-ns, so every loop has gone to sleep and each request pays "
        "a real wake-up (eventfd write, futex or IPI, scheduler).  No target: "
        "this row shows what adaptive polling saves in row 2, and what it "
        "cannot save when requests are sparse.",
        metrics=("value", "p99"), cdf=True, ratio_to="aiolab", logx=True))
    R.append(Row(
        3, "pingpong", "Blocking ping-pong between two event loops",
        "ns/round trip",
        same,
        aiolab_pair("aiolab", ["pingpong", "poll_max_ns=0"],
                    note="two IOThreads, poll-max-ns 0") + [
            Impl("libevent", "libevent", ["pingpong"],
                 note="two event_bases, event_active() across"),
            Impl("glib", "glib", ["pingpong"]),
            Impl("libuv", "libuv", ["pingpong"],
                 note="libuv 1.44 on one CPU: the woken loop preempts the "
                      "sender inside uv_async_send() and spins in "
                      "uv__async_spin() (997 x pause, then sched_yield); "
                      "perf shows the time there"),
            Impl("floor", "floor", ["pingpong"],
                 note="two threads in FUTEX_WAIT"),
        ],
        [Check("aiolab <= 1.2 x libevent", "aiolab",
               peer("libevent", scale=1.2))],
        "A token goes back and forth between two event loops that really "
        "sleep; each side's callback hands the token to the other loop "
        "(aiolab: qemu_bh_schedule() of the other IOThread's BH).  The figure "
        "is the p50 of the time between two runs of the first loop's "
        "callback (one round trip: two cross-thread wake-ups and two context "
        "switches on one CPU).",
        metrics=("value", "p99", "mean"), cdf=True, ratio_to="aiolab",
        logx=True))
    R.append(Row(
        4, "timer", "1 ms timer lateness", "ns late",
        timer,
        aiolab_pair("aiolab", ["timer"],
                    note="aio_timer_new() on an IOThread's context "
                         "(poll-max-ns 32768), QEMU_CLOCK_REALTIME") + [
            Impl("libevent", "libevent", ["timer"],
                 note="EVENT_BASE_FLAG_PRECISE_TIMER"),
            Impl("libuv", "libuv", ["timer"]),
            Impl("glib", "glib", ["timer"]),
            Impl("asyncio", "bench_asyncio.py", ["timer", "loop=asyncio"]),
            Impl("floor", "floor", ["timer", "variant=slack1"],
                 note="prctl(PR_SET_TIMERSLACK, 1)"),
            Impl("floor-slack", "floor", ["timer", "variant=default"],
                 note="the default 50 us timer slack, for comparison"),
        ],
        [Check("aiolab p50 <= 35 us", "aiolab", const(35000.0)),
         Check("aiolab p50 <= libevent precise p50 + 3 us", "aiolab",
               peer("libevent", add=3000.0))],
        "A timer armed 1 ms ahead, re-armed from its own callback; lateness "
        "= time the callback starts minus the deadline (1000 samples).  Each "
        "library gets its own finest interface: aiolab ns, libevent us "
        "(timerfd with the precise flag), GLib us ready times (its poll "
        "timeout is rounded up to ms), libuv and asyncio ms.",
        metrics=("value", "p99"), cdf=True, ratio_to="aiolab", logx=True))
    R.append(Row(
        5, "fd", "fd readiness dispatch", "ns/event",
        one,
        aiolab_pair("aiolab-epoll", ["fd", "fdmon=epoll"],
                    label="aiolab epoll",
                    note="aiolab_aio_context_set_fdmon(ctx, \"epoll\")") +
        aiolab_pair("aiolab-poll", ["fd", "fdmon=poll"],
                    label="aiolab poll(2)") + [
            Impl("libevent", "libevent", ["fd"]),
            Impl("libuv", "libuv", ["fd"]),
            Impl("glib", "glib", ["fd"]),
            Impl("floor", "floor", ["fd"], note="raw epoll_wait(0) + read"),
        ],
        [Check("aiolab epoll >= libevent (events/s)", "aiolab-epoll",
               peer("libevent"))],
        "One eventfd written, then one non-blocking loop iteration whose "
        "handler reads it (three system calls per event: write, the fd "
        "monitor's wait, read).  aiolab: aio_set_fd_handler() with no "
        "io_poll, so aio_poll(ctx, false) consults the fd monitor; libevent: "
        "a persistent EV_READ event, EVLOOP_ONCE|EVLOOP_NONBLOCK; libuv: "
        "uv_poll + UV_RUN_NOWAIT; GLib: a unix fd source + one "
        "g_main_context_iteration(FALSE).  Lower ns/event = higher "
        "throughput.",
        ratio_to="aiolab-epoll"))
    R.append(Row(
        6, "coroutine", "Coroutine switch", "ns/switch",
        one,
        aiolab_pair("aiolab", ["coroutine"]) + [
            Impl("swapcontext", "floor", ["coroutine",
                                          "variant=swapcontext"],
                 note="saves and restores the signal mask: a system call"),
            Impl("sigsetjmp", "floor", ["coroutine", "variant=sigsetjmp"],
                 note="QEMU's coroutine-ucontext switch mechanism alone"),
            Impl("builtin-setjmp", "floor", ["coroutine",
                                             "variant=builtin_setjmp"],
                 note="GCC's __builtin_setjmp/longjmp: no glibc, no "
                      "signal mask, only SP/FP/PC saved"),
            Impl("call", "floor", ["coroutine", "variant=call"],
                 note="an indirect function call, for scale"),
        ],
        [Check("aiolab <= 30 ns", "aiolab", const(30.0))],
        "qemu_coroutine_enter() of a coroutine that loops on "
        "qemu_coroutine_yield(): the round trip divided by two.  Peers: the "
        "same bare coroutine switched with swapcontext(), with "
        "sigsetjmp/siglongjmp (QEMU's and aiolab's mechanism, without the "
        "coroutine bookkeeping) and with __builtin_setjmp/__builtin_longjmp.",
        ratio_to="aiolab"))
    R.append(Row(
        7, "trace", "Cost of one recorded trace event", "ns/event",
        one,
        [Impl("aiolab", "aiolab", ["trace", "trace=on"],
              "aiolab_trace_mark (recorded)", True, "on"),
         Impl("aiolab-notrace", "aiolab", ["trace", "trace=off"],
              "aiolab_trace_mark (tracing off)", True, "off"),
         Impl("rdtsc", "floor", ["trace", "variant=rdtsc"],
              "rdtsc alone (minus the empty loop)",
              note="the time stamp every recorded event takes"),
         Impl("empty", "floor", ["trace"], "empty loop (absolute)")],
        [Check("one recorded event <= 15 ns", "aiolab", const(15.0))],
        "aiolab_trace_mark() in a loop minus an empty loop, both timed "
        "alternately in one process (the cost includes the call into the "
        "shared library).  With tracing off the same loop measures the "
        "cost of a disabled event.  The target applies to a recorded event.",
        ratio_to=None, notrace=False))
    py = "Python %d.%d" % sys.version_info[:2]
    R.append(Row(
        9, "py-bh", "Python: a callback scheduled and dispatched",
        "ns/callback", one,
        [Impl("cffi", "bench_python.py", ["bh", "cffi"], None, True, "on",
              "aiolab package, cffi module"),
         Impl("swig", "bench_python.py", ["bh", "swig"], None, True, "on",
              "aiolab package, SWIG module"),
         Impl("asyncio", "bench_python.py", ["bh", "asyncio"]),
         Impl("uvloop", "bench_python.py", ["bh", "uvloop"])],
        [Check("cffi <= 1.6 us", "cffi", const(1600.0)),
         Check("cffi <= asyncio, batch for batch in one process", "cffi",
               const(1.0), metric="vs_asyncio", fmt=fmt_ratio)],
        "A Python function that schedules itself again, one loop iteration "
        "per call, under %s.  aiolab: an aiolab.BH whose callback calls "
        "bh.schedule(), the loop `while left: ctx.poll(True)` on an "
        "aiolab.AioContext (every guard of the package included: closed "
        "and thread checks, exceptions kept from C), the modules linked "
        "with the default build (debug checks on, as `import aiolab` "
        "uses); asyncio/uvloop: loop.call_soon() from the callback, "
        "loop.run_forever() until the last one stops it.  Tracing is on "
        "(the default).  The cffi and SWIG processes also time asyncio, "
        "batch for batch (5 ms each, alternating for 2 s): this machine "
        "has phases of seconds in which every Python loop runs up to 1.8x "
        "slower, so the comparison with asyncio is made within one "
        "process, pair by pair (the median of the ratios); asyncio's and "
        "uvloop's own processes are shown for scale." % py,
        ratio_to="cffi", notrace=False))
    R.append(Row(
        10, "py-roundtrip", "Python: a callback round trip through another "
        "thread's loop", "ns/round trip", other,
        [Impl("cffi", "bench_python.py", ["roundtrip", "cffi"], None, True, "on",
              "IOThread answers the main loop"),
         Impl("swig", "bench_python.py", ["roundtrip", "swig"], None, True, "on",
              "IOThread answers the main loop"),
         Impl("asyncio", "bench_python.py", ["roundtrip", "asyncio"],
              note="call_soon_threadsafe both ways"),
         Impl("uvloop", "bench_python.py", ["roundtrip", "uvloop"],
              note="call_soon_threadsafe both ways")],
        [],
        "The main thread schedules a Python callback on another thread's "
        "loop, which answers by scheduling a Python callback back on the "
        "main thread's loop; the figure is one full round trip.  aiolab: "
        "a BH on an aiolab.IOThread's context answering with a BH on "
        "aiolab.main_loop().ctx, polled with ctx.poll(True) (the GIL is "
        "released while either side waits); asyncio/uvloop: two loops in "
        "two threads, call_soon_threadsafe() each way.  No target: the "
        "issue asks for the figures side by side.",
        ratio_to="cffi", notrace=False))
    # More rows live beside this file in rows_*.py, one module per area:
    # each defines rows(cpu, cpu2, api) returning a list of Row, where api
    # holds Row, Impl, Check, peer, const and aiolab_pair.
    import importlib.util
    import types
    api = types.SimpleNamespace(Row=Row, Impl=Impl, Check=Check, peer=peer,
                                const=const, aiolab_pair=aiolab_pair)
    for path in sorted(HERE.glob("rows_*.py")):
        spec = importlib.util.spec_from_file_location(path.stem, path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        R += mod.rows(cpu, cpu2, api)
    nums = [r.num for r in R]
    if len(set(nums)) != len(nums):
        raise SystemExit("run.py: two rows share a number: %s" % sorted(nums))
    return sorted(R, key=lambda r: r.num)


# ---------------------------------------------------------------------------
# Building the programs
# ---------------------------------------------------------------------------

CFLAGS = ["-O2", "-g", "-std=gnu11", "-D_GNU_SOURCE", "-pthread", "-Wall",
          "-Wno-unused-parameter"]


def pkg_config(pkgs, fallback):
    try:
        out = subprocess.run(["pkg-config", "--cflags", "--libs"] + pkgs,
                             check=True, capture_output=True, text=True)
        return out.stdout.split()
    except (OSError, subprocess.CalledProcessError):
        return fallback


def build(out, build_dir, with_aiolab, log):
    """Build bench-* into out/bin; returns {prog: path or None}."""
    cc = os.environ.get("CC", "cc")
    bindir = out / "bin"
    bindir.mkdir(parents=True, exist_ok=True)
    specs = {
        "floor": [],
        "libevent": pkg_config(["libevent", "libevent_pthreads"],
                               ["-levent_pthreads", "-levent"]),
        "glib": pkg_config(["glib-2.0"], None),
        "libuv": pkg_config(["libuv"], ["-luv"]),
    }
    if with_aiolab:
        absb = str(build_dir.resolve())
        specs["aiolab"] = ["-I" + str(ROOT / "c" / "include"), "-L" + absb,
                           "-laiolab", "-Wl,-rpath," + absb]
    progs = {}
    for name, flags in specs.items():
        src = HERE / ("bench-%s.c" % name)
        exe = bindir / ("bench-" + name)
        if flags is None:
            log("  %-8s skipped (pkg-config found no flags)" % name)
            progs[name] = None
            continue
        cmd = [cc] + CFLAGS + [str(src), "-o", str(exe)] + flags
        r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        if r.returncode != 0:
            log("  %-8s FAILED to build:\n%s" % (name, r.stderr[-3000:]))
            progs[name] = None
            if name == "aiolab":
                raise SystemExit("run.py: bench-aiolab does not build")
            continue
        log("  %-8s %s" % (name, " ".join(cmd)))
        progs[name] = exe
    try:
        import uvloop  # noqa: F401
        have_uvloop = True
    except ImportError:
        have_uvloop = False
    progs["_uvloop"] = have_uvloop
    return progs


# ---------------------------------------------------------------------------
# Running
# ---------------------------------------------------------------------------


# Scripts (Impl prog "x.py") find the builds and a scratch directory here.
SCRIPT_ENV = {}


def child_env():
    env = dict(os.environ)
    env.update(SCRIPT_ENV)
    # The rows choose tracing and the fd monitor themselves.
    for k in ("AIOLAB_TRACE", "AIOLAB_FDMON"):
        env.pop(k, None)
    return env


def run_one(progs, impl, common, timeout):
    if impl.prog.endswith(".py"):
        if "uvloop" in " ".join(impl.args) and not progs["_uvloop"]:
            return None, "uvloop not installed"
        cmd = [sys.executable, str(HERE / impl.prog)] + impl.args + common
    else:
        exe = progs.get(impl.prog)
        if exe is None:
            return None, "bench-%s not built" % impl.prog
        cmd = [str(exe)] + impl.args + common
    try:
        r = subprocess.run(cmd, capture_output=True, text=True,
                           timeout=timeout, env=child_env(), cwd=ROOT)
    except subprocess.TimeoutExpired:
        return None, "timed out after %d s: %s" % (timeout, " ".join(cmd))
    if r.returncode != 0:
        return None, "exit %d: %s\n%s" % (r.returncode, " ".join(cmd),
                                          r.stderr[-2000:])
    try:
        res = json.loads(r.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return None, "bad output from %s: %r" % (" ".join(cmd),
                                                 r.stdout[-500:])
    res["cmd"] = " ".join(cmd)
    return res, None


def cpu_snapshot():
    """(busy, steal) jiffies of the whole machine, our children's CPU s."""
    import resource
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]
    steal = v[7] if len(v) > 7 else 0
    busy = sum(v[:8]) - idle - steal
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return busy, steal, ru.ru_utime + ru.ru_stime, time.monotonic()


def foreign_load(before, after):
    """CPUs' worth of time used by other processes (and stolen by the
    hypervisor) while a row ran: our own programs' CPU time is subtracted."""
    hz = os.sysconf("SC_CLK_TCK")
    wall = after[3] - before[3]
    busy = (after[0] - before[0]) / hz
    steal = (after[1] - before[1]) / hz
    ours = after[2] - before[2]
    return max(0.0, busy - ours) / wall, steal / wall


def measure(row, progs, args, log):
    """Interleaved runs: A B C ... A B C ...; returns {key: [results]}."""
    common = ["cpu=%d" % args.cpu, "cpu2=%d" % args.cpu2]
    if args.quick:
        common.append("quick=1")
    timeout = 60 if args.quick else 180
    results = {impl.key: [] for impl in row.impls}
    errors = {}
    skipped = {}
    runs = max(3, row.runs) if row.runs else args.runs
    if args.quick and row.quick_runs:
        runs = row.quick_runs
    for rep in range(runs):
        for impl in row.impls:
            if impl.key in errors or impl.key in skipped:
                continue
            if impl.aiolab and not args.aiolab:
                skipped[impl.key] = "--no-aiolab"
                continue
            res, err = run_one(progs, impl, common, timeout)
            if res is None:
                if "not built" in err or "not installed" in err:
                    # The program's own last words say why, not the
                    # "exit N: command" line run_one() puts first.
                    lines = [l for l in err.splitlines() if l.strip()]
                    skipped[impl.key] = lines[-1] if lines else err
                else:
                    errors[impl.key] = err
                    log("    %s: ERROR %s" % (impl.key, err))
                continue
            results[impl.key].append(res)
        log("    run %d/%d: %s" % (rep + 1, runs, "  ".join(
            "%s=%s" % (k, fmt_num(v[-1]["value"]))
            for k, v in results.items() if v)))
    return results, errors, skipped


def medians(row, results):
    med = {}
    for impl in row.impls:
        rs = results.get(impl.key) or []
        checked = tuple(c.metric for c in row.checks)
        for m in row.metrics + ("min", "max") + checked:
            vals = [r[m] for r in rs if m in r]
            if vals:
                med[(impl.key, m)] = statistics.median(vals)
    return med


# ---------------------------------------------------------------------------
# Reporting
# ---------------------------------------------------------------------------


def fmt_num(v):
    if v is None:
        return "-"
    a = abs(v)
    if a >= 1e6:
        return "%.2f ms" % (v / 1e6)
    if a >= 1e4:
        return "%.1f us" % (v / 1e3)
    if a >= 1e3:
        return "%.2f us" % (v / 1e3)
    if a >= 100:
        return "%.0f ns" % v
    if a >= 10:
        return "%.1f ns" % v
    return "%.2f ns" % v


def fmt_ratio(v):
    return "-" if v is None else "%.2f x" % v


def label_of(impl, results):
    if impl.label:
        return impl.label
    rs = results.get(impl.key) or []
    return rs[0]["impl"] if rs else impl.key


def verdict(ok):
    return {True: "**PASS**", False: "**MISS**", None: "n/a"}[ok]


def row_table(row, results, med, errors, skipped):
    lines = []
    hdr = ["implementation", "median (%s)" % row.unit]
    for m in row.metrics[1:]:
        hdr.append(m)
    hdr += ["each run", "aiolab / this", "notes"]
    lines.append("| " + " | ".join(hdr) + " |")
    lines.append("|" + "---|" * len(hdr))
    ra = med.get((row.ratio_to, "value")) if row.ratio_to else None
    for impl in row.impls:
        rs = results.get(impl.key) or []
        name = label_of(impl, results)
        if impl.aiolab:
            name = "**%s**" % name
        if not rs:
            why = errors.get(impl.key) or skipped.get(impl.key) or "no data"
            why = why.splitlines()[0]
            lines.append("| %s | %s |" % (name, " | ".join(
                ["-"] * (len(hdr) - 3) + ["", why.replace("|", "/")])))
            continue
        v = med[(impl.key, "value")]
        cells = [name, fmt_num(v)]
        for m in row.metrics[1:]:
            cells.append(fmt_num(med.get((impl.key, m))))
        cells.append(", ".join(fmt_num(r["value"]) for r in rs))
        if ra is not None and v:
            cells.append("%.2f" % (ra / v))
        else:
            cells.append("-")
        notes = [impl.note] if impl.note else []
        extra = rs[0]
        if "backend" in extra:
            notes.append("backend " + extra["backend"])
        if "fdmon" in extra:
            notes.append("fd monitor " + extra["fdmon"])
        if "iops" in extra:
            notes.append("%.1fk IOPS" % (statistics.median(
                r["iops"] for r in rs) / 1e3))
        cpu = [r["cpu_ns_per_request"] for r in rs
               if "cpu_ns_per_request" in r]
        if cpu:
            notes.append("CPU %s/request" % fmt_num(statistics.median(cpu)))
        cpo = [r.get("calls_per_op") for r in rs if "calls_per_op" in r]
        if cpo and min(cpo) < 0.999:
            notes.append("WARNING: callback ran on only %.0f%% of "
                         "iterations" % (100 * min(cpo)))
        if any(r.get("checks") for r in rs):
            notes.append("WARNING: threading checks are ON (not a release "
                         "build)")
        if "poll_max_ns" in extra and not impl.note:
            notes.append("poll-max-ns %d" % extra["poll_max_ns"])
        loop_key = [k for k in extra if k.endswith("_loop_ns")
                    and k != "empty_loop_ns"]
        if "empty_loop_ns" in extra and loop_key:
            notes.append("loop %s vs empty %s" % (
                fmt_num(statistics.median(r[loop_key[0]] for r in rs)),
                fmt_num(statistics.median(r["empty_loop_ns"] for r in rs))))
        if "asyncio_paired" in extra:
            notes.append("asyncio in the same process %s; batch for batch "
                         "%s of it" % (
                             fmt_num(statistics.median(
                                 r["asyncio_paired"] for r in rs)),
                             fmt_ratio(statistics.median(
                                 r["vs_asyncio"] for r in rs))))
        if "rdtsc_same_process_ns" in extra and impl.trace == "on":
            notes.append("rdtsc alone in the same process: %s" % fmt_num(
                statistics.median(r["rdtsc_same_process_ns"] for r in rs)))
        cells.append("; ".join(notes))
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def check_results(row, med):
    """[(check, [(suffix, a, bound, ok)])] for trace on ("") and off."""
    out = []
    for c in row.checks:
        per = []
        for suffix in ("", "-notrace"):
            if suffix and not row.notrace:
                continue
            per.append((suffix,) + c.evaluate(med, suffix))
        out.append((c, per))
    return out


def row_verdict(checks, suffix):
    oks = [ok for _, per in checks for s, a, b, ok in per if s == suffix]
    if not oks or any(ok is None for ok in oks):
        return None
    return all(oks)


def contract_suffix(row):
    """The measurement a row's verdict is about: trace off, where there
    is one (DESIGN.md section 3)."""
    return "-notrace" if row.notrace else ""


def plot_row(row, results, med, out):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    impls = [i for i in row.impls if results.get(i.key)]
    if not impls:
        return []
    files = []
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(impls) + 1.4))
    names = [label_of(i, results) for i in impls]
    vals = [med[(i.key, "value")] for i in impls]
    lo = [v - min(r["value"] for r in results[i.key])
          for v, i in zip(vals, impls)]
    hi = [max(r["value"] for r in results[i.key]) - v
          for v, i in zip(vals, impls)]
    colors = ["#d62728" if i.aiolab and i.trace == "on" else
              "#ff9896" if i.aiolab else "#1f77b4" for i in impls]
    y = list(range(len(impls)))[::-1]
    ax.barh(y, vals, xerr=[lo, hi], color=colors, capsize=3)
    ax.set_yticks(y)
    ax.set_yticklabels(names, fontsize=8)
    positive = [v for v in vals if v > 0]
    if positive and max(positive) / max(min(positive), 1e-9) > 30:
        ax.set_xscale("log")
    for k, c in enumerate(row.checks):
        b = c.bound(med)
        if b is not None and b > 0:
            ax.axvline(b, color="k", ls="--", lw=0.8)
            ax.text(b, len(impls) - 0.5 - 0.5 * k, " target: " + c.text,
                    fontsize=7, va="center",
                    bbox=dict(facecolor="white", alpha=0.7, lw=0))
    ax.set_xlabel("%s (median of %d runs; whiskers: min/max run)"
                  % (row.unit, max(len(results[i.key]) for i in impls)))
    ax.set_title("%d. %s" % (row.num, row.title), fontsize=10)
    fig.tight_layout()
    f = "row%d-%s.png" % (row.num, row.name)
    fig.savefig(out / f, dpi=110)
    plt.close(fig)
    files.append(f)

    if row.cdf:
        fig, ax = plt.subplots(figsize=(8, 4.5))
        for i in impls:
            rs = sorted(results[i.key], key=lambda r: r["value"])
            q = rs[len(rs) // 2].get("quantiles")
            if not q:
                continue
            ax.plot([max(x, 1) for x in q], range(101),
                    label=label_of(i, results),
                    lw=2.2 if i.aiolab else 1.2,
                    ls="-" if (not i.aiolab or i.trace == "on") else ":")
        ax.set_xscale("log")
        ax.set_xlabel("ns (the median run of each)")
        ax.set_ylabel("percentile")
        ax.set_title("%d. %s: distribution" % (row.num, row.title),
                     fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
        fig.tight_layout()
        f = "row%d-%s-cdf.png" % (row.num, row.name)
        fig.savefig(out / f, dpi=110)
        plt.close(fig)
        files.append(f)
    return files


def plot_tracing(done, out):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels, on, off = [], [], []
    for row, results, med in done:
        for impl in row.impls:
            if impl.aiolab and impl.trace == "on" and row.name != "trace":
                a = med.get((impl.key, "value"))
                b = med.get((impl.key + "-notrace", "value"))
                if a and b:
                    labels.append("%d %s\n%s" % (row.num, row.name,
                                                 impl.label))
                    on.append(a / b)
                    off.append(1.0)
    if not labels:
        return None
    fig, ax = plt.subplots(figsize=(8, 0.5 * len(labels) + 1.4))
    y = list(range(len(labels)))[::-1]
    ax.barh(y, on, color="#d62728", label="tracing on / tracing off")
    ax.axvline(1.0, color="k", lw=0.8)
    ax.set_yticks(y)
    ax.set_yticklabels(labels, fontsize=7)
    ax.set_xlabel("aiolab figure with tracing on, relative to tracing off "
                  "(1.0 = no cost)")
    ax.set_title("Tracing's cost per row", fontsize=10)
    fig.tight_layout()
    f = "tracing-cost.png"
    fig.savefig(out / f, dpi=110)
    plt.close(fig)
    return f


def environment(args, build_dir, done_runs):
    def sh(cmd):
        try:
            return subprocess.run(cmd, shell=True, capture_output=True,
                                  text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return "?"
    cpu = sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2").strip()
    env = [
        ("date", datetime.datetime.now().isoformat(timespec="seconds")),
        ("machine", "%s, %s CPUs online (%s), kernel %s" % (
            cpu, os.cpu_count(), sh("nproc"), platform.release())),
        ("clocksource", sh("cat /sys/devices/system/clocksource/"
                           "clocksource0/current_clocksource")),
        ("load before run", sh("cut -d' ' -f1-3 /proc/loadavg")),
        ("compiler", sh("%s --version | head -1" %
                        os.environ.get("CC", "cc"))),
        ("aiolab", "%s, commit %s%s" % (
            build_dir, sh("git -C %s rev-parse --short HEAD 2>/dev/null"
                          % ROOT) or "none",
            " (uncommitted changes)" if sh(
                "git -C %s status --porcelain -- c 2>/dev/null | head -1"
                % ROOT) else "")),
        ("libevent", sh("pkg-config --modversion libevent")),
        ("libuv", sh("pkg-config --modversion libuv")),
        ("GLib", sh("pkg-config --modversion glib-2.0")),
        ("Python", platform.python_version()),
        ("uvloop", sh("%s -c 'import uvloop; print(uvloop.__version__)'"
                      % sys.executable) or "not installed"),
        ("mode", "%s, %d runs per figure, interleaved A B C ... A B C; "
                 "CPUs: loop %d, other %d" % (
                     "quick (smoke)" if args.quick else "full",
                     args.runs, args.cpu, args.cpu2)),
        ("programs run", str(done_runs)),
    ]
    return env


def write_report(args, out, build_dir, done, env, errors_all, wall,
                 trace_plot):
    L = []
    L.append("# aiolab benchmarks")
    L.append("")
    L.append("Generated by `tests/bench/run.py%s` in %.0f s.  Every figure "
             "is the median of %d runs of a separate process, interleaved "
             "with the peers' runs; every target is checked against peers "
             "measured in this same run.  aiolab is measured twice: with "
             "tracing off, as DESIGN.md section 3 asks of a benchmark "
             "(`aiolab_trace_set_enabled(false)`; the verdict), and on, its "
             "default (what tracing costs; judged for information).%s" % (
                 " --quick" if args.quick else "", wall, args.runs,
                 "  **Quick mode: few iterations, figures are noisy; "
                 "a smoke run, not a measurement.**" if args.quick else ""))
    L.append("")
    L.append("| | |")
    L.append("|---|---|")
    for k, v in env:
        L.append("| %s | %s |" % (k, v))
    L.append("")
    L.append("## Summary")
    L.append("")
    L.append("| # | row | placement | aiolab (trace off) | aiolab (trace on) "
             "| tracing cost | target | verdict | with tracing on |")
    L.append("|---|---|---|---|---|---|---|---|---|")
    for row, results, med, checks in done:
        akey = row.checks[0].aiolab_key if row.checks else "aiolab"
        on = med.get((akey, "value"))
        off = med.get((akey + "-notrace", "value")) if row.notrace else None
        cost = "-"
        if on is not None and off:
            cost = "%+.0f%%" % (100 * (on - off) / off)
        targets = "; ".join(c.text for c in row.checks) or \
            "none (informational)"
        L.append("| %d | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            row.num, row.title, row.placement,
            fmt_num(off) if row.notrace else "-", fmt_num(on), cost,
            targets, verdict(row_verdict(checks, contract_suffix(row))),
            verdict(row_verdict(checks, "")).strip("*") if row.notrace
            else "-"))
    L.append("")
    if trace_plot:
        L.append("![tracing cost](%s)" % trace_plot)
        L.append("")
    for row, results, med, checks in done:
        L.append("## %d. %s (%s, lower is better)" % (row.num, row.title,
                                                     row.unit))
        L.append("")
        L.append("*Placement:* %s.  *Interference:* other processes "
                 "used %.2f CPUs and the hypervisor stole %.2f CPUs while "
                 "this row ran%s.  " % (
                     row.placement, row.foreign, row.steal,
                     " (**noisy: figures are less reliable**)"
                     if row.foreign + row.steal > 0.25 else ""))
        L.append(row.what)
        L.append("")
        L += row_table(row, results, med, errors_all.get(row.name, {}),
                       errors_all.get(row.name + "/skipped", {}))
        L.append("")
        if checks:
            L.append("| target | aiolab%s | bound (from this run) | verdict "
                     "| with tracing on | bound | (for information) |" % (
                         ", trace off" if row.notrace else ""))
            L.append("|---|---|---|---|---|---|---|")
        for c, per in checks:
            cells = [c.text]
            by = {suffix: (a, bnd, ok) for suffix, a, bnd, ok in per}
            first = contract_suffix(row)
            for suffix in (first, "") if row.notrace else ("",):
                a, bnd, ok = by.get(suffix, (None, None, None))
                v = verdict(ok)
                f = c.fmt or fmt_num
                cells += [f(a), f(bnd),
                          v if suffix == first else v.strip("*")]
            while len(cells) < 7:
                cells.append("-")
            L.append("| " + " | ".join(cells) + " |")
        L.append("")
        for f in row.plots:
            L.append("![%s](%s)" % (f, f))
        L.append("")
        errs = errors_all.get(row.name, {})
        for k, e in errs.items():
            L.append("**%s failed:**" % k)
            L.append("")
            L.append("```")
            L.append(e.strip())
            L.append("```")
            L.append("")
    L.append("## How to read this")
    L.append("")
    L.append("- *aiolab / this* is aiolab's median divided by this "
             "implementation's: below 1.0 aiolab is faster.")
    L.append("- \"within X% of P\" means at least (1 - X) x P; \"<= 1.2 x "
             "libevent\" uses libevent's median from this run.")
    L.append("- Rows 2-4 give p50 as the median figure; the CDF plots show "
             "each implementation's median run.")
    L.append("- The raw results (every run, every field, and the exact "
             "command line of each program) are in `results.json`.")
    (out / "report.md").write_text("\n".join(L) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default="build/release")
    ap.add_argument("--out", default="build/bench")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", default="")
    ap.add_argument("--runs", type=int, default=0)
    ap.add_argument("--cpus", default="1,0")
    ap.add_argument("--no-aiolab", dest="aiolab", action="store_false")
    ap.add_argument("--list", action="store_true",
                    help="list the rows and their targets, then exit")
    args = ap.parse_args()
    if args.list:
        for r in rows(1, 0):
            print("%2d %-14s %s" % (r.num, r.name, r.title))
            for c in r.checks:
                print("   target: %s" % c.text)
        return 0
    args.runs = args.runs or (3 if args.quick else 7)
    if args.runs < 3:
        ap.error("--runs must be at least 3 (DESIGN.md section 3)")
    args.cpu, args.cpu2 = (int(x) for x in args.cpus.split(","))
    if max(args.cpu, args.cpu2) >= (os.cpu_count() or 1):
        ap.error("--cpus %s: this machine has %d CPUs"
                 % (args.cpus, os.cpu_count()))

    build_dir = Path(args.build)
    if not build_dir.is_absolute():
        build_dir = Path.cwd() / build_dir
    # AIOLAB_BENCH_BUILD: the release build (its bin/ has the tools);
    # AIOLAB_BENCH_SCRATCH: room for disk images (a real file system).
    SCRIPT_ENV["AIOLAB_BENCH_BUILD"] = str(build_dir)
    SCRIPT_ENV["AIOLAB_BENCH_SCRATCH"] = str(Path(args.out).resolve() /
                                             "scratch")
    out = Path(args.out)
    if not out.is_absolute():
        out = Path.cwd() / out
    out.mkdir(parents=True, exist_ok=True)
    Path(SCRIPT_ENV["AIOLAB_BENCH_SCRATCH"]).mkdir(exist_ok=True)

    def log(msg):
        print(msg, flush=True)

    t0 = time.monotonic()
    if args.aiolab and not (build_dir / "libaiolab.so").exists():
        raise SystemExit("run.py: %s/libaiolab.so not found: build it with "
                         "`make RELEASE=1` (or pass --no-aiolab)" % build_dir)
    log("building into %s/bin" % out)
    progs = build(out, build_dir, args.aiolab, log)

    all_rows = rows(args.cpu, args.cpu2)
    if args.only:
        want = set(x.strip() for x in args.only.split(",") if x.strip())
        all_rows = [r for r in all_rows
                    if r.name in want or str(r.num) in want]
        if not all_rows:
            ap.error("--only %s matches no row" % args.only)

    done, errors_all, raw, nprog = [], {}, {}, 0
    failed = False
    for row in all_rows:
        log("row %d %s (%s)" % (row.num, row.name, row.placement))
        before = cpu_snapshot()
        results, errors, skipped = measure(row, progs, args, log)
        row.foreign, row.steal = foreign_load(before, cpu_snapshot())
        log("    other processes used %.2f CPUs, steal %.2f CPUs while "
            "this row ran" % (row.foreign, row.steal))
        nprog += sum(len(v) for v in results.values())
        failed |= bool(errors)
        errors_all[row.name] = errors
        errors_all[row.name + "/skipped"] = skipped
        med = medians(row, results)
        checks = check_results(row, med)
        row.plots = plot_row(row, results, med, out)
        done.append((row, results, med, checks))
        raw[row.name] = {"placement": row.placement, "unit": row.unit,
                         "foreign_cpus": row.foreign,
                         "steal_cpus": row.steal,
                         "runs": results, "errors": errors,
                         "skipped": skipped}
        for c, per in checks:
            log("    target %s: %s" % (c.text, "  ".join(
                "%s %s vs %s %s%s" % (
                    "trace off" if s else "trace on" if row.notrace
                    else "aiolab", (c.fmt or fmt_num)(a),
                    (c.fmt or fmt_num)(b),
                    verdict(ok).strip("*"),
                    "" if s or not row.notrace else " (information)")
                for s, a, b, ok in per)))
    trace_plot = plot_tracing([(r, res, m) for r, res, m, _ in done], out)
    wall = time.monotonic() - t0
    env = environment(args, build_dir, nprog)
    (out / "results.json").write_text(json.dumps(
        {"environment": dict(env), "rows": raw}, indent=1))
    write_report(args, out, build_dir, done, env, errors_all, wall,
                 trace_plot)
    log("wrote %s/report.md (%.0f s)" % (out, wall))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
