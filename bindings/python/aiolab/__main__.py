# SPDX-License-Identifier: MIT
"""python -m aiolab: the version, or a short demo of the package.

    python -m aiolab --version
    python -m aiolab demo [--seconds S] [--trace FILE]

The demo runs the main loop and an IOThread for a few seconds: round trips
from the main loop into the IOThread and back, a vCPU-like thread that
competes for the BQL while the main loop waits in AIO_WAIT_WHILE holding
it, a task that offloads blocking work to the thread pool, and a summary
of what every thread did, read from an aiolab trace (--trace also writes
it as Perfetto JSON).
"""
import argparse
import ctypes
import statistics
import sys
import threading
import time


def library_path():
    """The libaiolab.so this process loaded (from /proc/self/maps)."""
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                if line.rstrip().endswith("/libaiolab.so"):
                    return line.split()[-1]
    except OSError:
        pass
    return "?"


def version_text():
    import aiolab
    return (f"aiolab {aiolab.__version__} ({aiolab.BINDING} binding, "
            f"library {library_path()}, debug checks "
            f"{'on' if aiolab.checks_enabled() else 'off'})")


def name_thread(name):
    """Name the calling thread for traces (before its first aiolab call)."""
    try:
        ctypes.CDLL(None).prctl(15, name.encode()[:15], 0, 0, 0)
    except (OSError, AttributeError):
        pass


def round_trips(main, io, n):
    """n requests main loop -> IOThread (a one-shot BH) -> main loop (an
    event notifier); returns the round-trip times in us."""
    import aiolab
    reply = aiolab.EventNotifier()
    got = []
    main.ctx.set_event_notifier(
        reply, read=lambda e: got.append(e.test_and_clear()))
    times = []
    try:
        for i in range(n):
            t0 = time.perf_counter()
            io.ctx.schedule_oneshot(reply.set)
            while len(got) == i:
                main.ctx.poll(blocking=True)
            times.append((time.perf_counter() - t0) * 1e6)
    finally:
        main.ctx.set_event_notifier(reply, None)
        reply.close()
    return times


def bql_contention(io, seconds):
    """A vCPU thread takes the BQL for 1 ms every 3 ms while the main loop
    repeatedly waits (with the BQL) for 2 ms of work in the IOThread."""
    import aiolab
    stop = threading.Event()

    def vcpu():
        name_thread("vcpu0")
        while not stop.is_set():
            with aiolab.bql():
                time.sleep(0.001)       # an exit handled under the BQL
            time.sleep(0.002)

    th = threading.Thread(target=vcpu)
    th.start()
    waits = 0
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            with aiolab.bql():
                # aio_wait_bh_oneshot(): the main loop waits, BQL held.
                io.run(lambda: time.sleep(0.002))
            waits += 1
            time.sleep(0.001)
    finally:
        stop.set()
        th.join()
    return waits


def offload(io):
    """A task on the IOThread sends blocking work to its thread pool."""
    import aiolab
    done = threading.Event()
    out = {}

    async def job():
        await aiolab.sleep(1_000_000)                   # 1 ms, a timer
        out["worker"] = await io.ctx.to_thread(threading.get_native_id)
        out["home"] = threading.get_native_id()
        done.set()

    io.ctx.create_task(job())
    if not done.wait(10):
        raise RuntimeError("the task did not finish")
    return out


def summary(t):
    """Per thread: polls, time asleep, callbacks, BQL held and waited."""
    rows = {}
    for s in t.slices():
        r = rows.setdefault(s.thread, dict(aio_poll=0, fdmon_wait=0.0,
                                           aio_bh_call=0, bql_held=0.0,
                                           bql_lock_wait=0.0,
                                           thread_pool_work=0))
        ms = (s.end_ns - s.start_ns) / 1e6
        if s.name in ("aio_poll", "aio_bh_call", "thread_pool_work"):
            r[s.name] += 1
        elif s.name in ("fdmon_wait", "bql_held", "bql_lock_wait"):
            r[s.name] += ms
    lines = [f"  {'thread':<10} {'aio_poll':>8} {'asleep':>9} {'BHs':>6} "
             f"{'BQL held':>9} {'BQL wait':>9} {'pool jobs':>9}"]
    for name, r in sorted(rows.items()):
        lines.append(f"  {name:<10} {r['aio_poll']:>8} "
                     f"{r['fdmon_wait']:>7.0f}ms {r['aio_bh_call']:>6} "
                     f"{r['bql_held']:>7.0f}ms {r['bql_lock_wait']:>7.1f}ms "
                     f"{r['thread_pool_work']:>9}")
    return "\n".join(lines)


def demo(seconds, trace_path):
    import aiolab
    print(version_text())
    main = aiolab.main_loop()
    print("main loop: this thread; starting IOThread io0")
    with aiolab.trace() as t:
        with aiolab.IOThread("io0") as io:
            rt = round_trips(main, io, 200)
            print(f"1. 200 round trips main loop -> io0 -> main loop: "
                  f"median {statistics.median(rt):.0f} us, "
                  f"max {max(rt):.0f} us")
            aiolab.bql_stats_reset()
            waits = bql_contention(io, seconds)
            stats = {s["thread"]: s for s in aiolab.bql_stats()}
            v = stats.get("vcpu0", {})
            print(f"2. {waits} waits in the main loop (AIO_WAIT_WHILE with "
                  f"the BQL) while vcpu0 took the BQL "
                  f"{v.get('acquisitions', 0)} times; "
                  f"{v.get('contended', 0)} of them had to wait, "
                  f"at most {v.get('wait_ns_max', 0) / 1e6:.1f} ms")
            out = offload(io)
            print(f"3. a task on io0 (thread {out['home']}) ran blocking "
                  f"work on pool thread {out['worker']} and resumed at "
                  f"home")
    print("what each thread did (from the trace):")
    print(summary(t))
    if trace_path:
        t.save(trace_path)
        print(f"trace written to {trace_path}: open it at "
              f"https://ui.perfetto.dev")
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(
        prog="python -m aiolab", description=__doc__.splitlines()[0],
        epilog=__doc__.split("\n", 2)[2],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--version", action="store_true",
                    help="print the version, binding and library, and exit")
    sub = ap.add_subparsers(dest="command")
    d = sub.add_parser("demo", help="a few seconds of IOThread, BQL and "
                       "trace")
    d.add_argument("--seconds", type=float, default=2.0,
                   help="length of the BQL part (default 2)")
    d.add_argument("--trace", metavar="FILE",
                   help="also write the trace as Perfetto JSON")
    args = ap.parse_args(argv)
    if args.version:
        print(version_text())
        return 0
    if args.command == "demo":
        if not 0 < args.seconds <= 600:
            ap.error("--seconds must be in (0, 600]")
        return demo(args.seconds, args.trace)
    ap.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())
