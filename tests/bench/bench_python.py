# SPDX-License-Identifier: MIT
"""Python rows of tests/bench/run.py: aiolab's package on either binding,
and asyncio / uvloop measured the same way.

Usage: /usr/bin/python3 tests/bench/bench_python.py ROW IMPL
                                   [cpu=N] [cpu2=M] [quick=1]
  ROW   bh        a callback that schedules itself again: schedule +
                  dispatch of one Python callback, one loop iteration each
        roundtrip a callback on another thread's loop that answers with a
                  callback on ours: one cross-thread round trip
  IMPL  cffi | swig      aiolab's package (AIOLAB_BINDING), a BH on an
                         AioContext polled from Python (bh) or an IOThread
                         answering the main thread (roundtrip)
                         (bh: timed batch for batch against asyncio's
                         call_soon in the same process; the JSON adds
                         asyncio_paired and vs_asyncio, the median ratio)
        asyncio | uvloop call_soon (bh), call_soon_threadsafe both ways
                         between two loops in two threads (roundtrip)

Prints one JSON object, like the C programs (see bench.h).
"""
import json
import os
import sys
import threading
import time
from pathlib import Path

import benchargs

# The asyncio side of row 9 is row 1's (one program measures both ways).
from bench_asyncio import bh_batch, calibrate, new_loop, paired, row_bh

ROOT = Path(__file__).resolve().parent.parent.parent


def opts(argv):
    return benchargs.parse(argv, __doc__, ('row', 'impl'))


# --- aiolab -----------------------------------------------------------------

def aiolab_import(binding):
    os.environ["AIOLAB_BINDING"] = binding
    sys.path.insert(0, str(ROOT / "bindings" / "python"))
    import aiolab
    return aiolab


def aiolab_bh(aiolab, o):
    """The aiolab callback timed batch for batch against asyncio's
    call_soon in this process (paired(): the row's check compares them
    in the same phase of the machine)."""
    ctx = aiolab.AioContext("bench")
    state = {"left": 0}
    bh = None

    def cb():
        state["left"] -= 1
        if state["left"] > 0:
            bh.schedule()

    bh = ctx.bh(cb, "bench_bh")

    def batch(n):
        state["left"] = n
        bh.schedule()
        t0 = time.perf_counter_ns()
        poll = ctx.poll
        while state["left"] > 0:
            poll(True)
        return time.perf_counter_ns() - t0

    loop = new_loop("asyncio")
    res = paired([("aiolab", batch), ("asyncio", bh_batch(loop))],
                 o["quick"])
    loop.close()
    bh.delete()
    ctx.close()
    return res


def aiolab_roundtrip(aiolab, o):
    ctx = aiolab.main_loop().ctx
    state = {"left": 0}
    with aiolab.IOThread("bench-io") as io:
        io.ctx.schedule_oneshot(
            lambda: os.sched_setaffinity(0, {o["cpu"]}))
        ping = pong = None

        def on_io():                 # runs in the IOThread
            pong.schedule()

        def on_main():               # runs in this thread
            state["left"] -= 1
            if state["left"] > 0:
                ping.schedule()

        ping = io.ctx.bh(on_io, "bench_ping")
        pong = ctx.bh(on_main, "bench_pong")

        def batch(n):
            state["left"] = n
            t0 = time.perf_counter_ns()
            ping.schedule()
            poll = ctx.poll
            while state["left"] > 0:
                poll(True)
            return time.perf_counter_ns() - t0

        res = calibrate(batch, o["quick"], 20_000_000)
        ping.delete()
        pong.delete()
    return res


# --- asyncio / uvloop -------------------------------------------------------

def asyncio_bh(kind, o):
    loop = new_loop(kind)
    res = row_bh(loop, o["quick"])
    loop.close()
    return res


def asyncio_roundtrip(kind, o):
    main = new_loop(kind)
    other = new_loop(kind)
    started = threading.Event()

    def serve():
        os.sched_setaffinity(0, {o["cpu"]})
        other.call_soon(started.set)
        other.run_forever()

    t = threading.Thread(target=serve, name="bench-io")
    t.start()
    started.wait()
    state = {"left": 0}

    def on_other():
        main.call_soon_threadsafe(on_main)

    def on_main():
        state["left"] -= 1
        if state["left"] > 0:
            other.call_soon_threadsafe(on_other)
        else:
            main.stop()

    def batch(n):
        state["left"] = n
        t0 = time.perf_counter_ns()
        other.call_soon_threadsafe(on_other)
        main.run_forever()
        return time.perf_counter_ns() - t0

    res = calibrate(batch, o["quick"], 20_000_000)
    other.call_soon_threadsafe(other.stop)
    t.join()
    other.close()
    main.close()
    return res


def main():
    o = opts(sys.argv)
    o["quick"] = o.get("quick", "0") == "1"
    o["cpu"] = int(o.get("cpu", 1))
    o["cpu2"] = int(o.get("cpu2", 0))
    impl = o["impl"]
    if o["row"] not in ("bh", "roundtrip"):
        raise SystemExit("bench_python.py: unknown row %r (bh, roundtrip)"
                         % o["row"])
    # bh: everything on the loop CPU; roundtrip: this thread is the
    # requester on the other CPU, the answering loop on the loop CPU.
    os.sched_setaffinity(0, {o["cpu"] if o["row"] == "bh" else o["cpu2"]})
    py = "Python %d.%d" % sys.version_info[:2]
    if impl in ("cffi", "swig"):
        aiolab = aiolab_import(impl)
        fn = aiolab_bh if o["row"] == "bh" else aiolab_roundtrip
        res = fn(aiolab, o)
        label = "aiolab %s (%s)" % (impl, py)
    elif impl in ("asyncio", "uvloop"):
        fn = asyncio_bh if o["row"] == "bh" else asyncio_roundtrip
        res = fn(impl, o)
        label = "%s (%s)" % (impl, py) if impl == "asyncio" else "uvloop"
    else:
        raise SystemExit("bench_python.py: unknown implementation %r "
                         "(cffi, swig, asyncio, uvloop)" % impl)
    out = {"row": o["row"], "impl": label}
    out.update(res)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
