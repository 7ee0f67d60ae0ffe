# SPDX-License-Identifier: MIT
"""asyncio and uvloop peers for tests/bench/run.py.

Usage: /usr/bin/python3 tests/bench/bench_asyncio.py ROW [loop=asyncio|uvloop]
                                                     [cpu=N] [quick=1]
  bh     call_soon from the running callback: each callback is scheduled by
         the previous one, so each runs in its own loop iteration
         (_run_once) - schedule + dispatch, one iteration per callback
  timer  call_later(0.001) re-armed from its own callback; lateness against
         time.monotonic_ns()

Prints one JSON object, like the C programs (see bench.h).
"""
import asyncio
import json
import os
import statistics
import sys
import time


def opts(argv):
    o = {"row": argv[1]}
    for a in argv[2:]:
        k, _, v = a.partition("=")
        o[k] = v
    return o


def new_loop(kind):
    if kind == "uvloop":
        import uvloop
        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def calibrate(batch, quick, floor_ns=5_000_000):
    """Grow n until one batch of n operations takes floor_ns (warming up
    on the way); then time 3 (quick) or 9 batches: per-op medians."""
    n = 1000
    while batch(n) < floor_ns:
        n *= 2
    nb = 3 if quick else 9
    per = [batch(n) / n for _ in range(nb)]
    return {"value": statistics.median(per), "batches": per,
            "ops_per_batch": n}


def row_bh(loop, quick):
    state = {"left": 0}

    def cb():
        state["left"] -= 1
        if state["left"] > 0:
            loop.call_soon(cb)
        else:
            loop.stop()

    def batch(n):
        state["left"] = n
        loop.call_soon(cb)
        t0 = time.perf_counter_ns()
        loop.run_forever()
        return time.perf_counter_ns() - t0

    return calibrate(batch, quick)


def row_timer(loop, quick):
    n = 100 if quick else 1000
    warm = 5
    late = []
    state = {"deadline": 0}
    done = loop.create_future()

    def arm():
        state["deadline"] = time.monotonic_ns() + 1_000_000
        loop.call_later(0.001, cb)

    def cb():
        late.append(time.monotonic_ns() - state["deadline"])
        if len(late) < n + warm:
            arm()
        else:
            done.set_result(None)

    loop.call_soon(arm)
    loop.run_until_complete(done)
    v = sorted(late[warm:])

    def pct(p):
        pos = p / 100 * (len(v) - 1)
        i = int(pos)
        if i + 1 >= len(v):
            return float(v[-1])
        return v[i] * (1 - (pos - i)) + v[i + 1] * (pos - i)

    return {"value": pct(50), "p50": pct(50), "p99": pct(99),
            "p999": pct(99.9), "min": v[0], "max": v[-1],
            "mean": sum(v) / len(v), "n": len(v),
            "quantiles": [pct(p) for p in range(101)]}


def main():
    o = opts(sys.argv)
    os.sched_setaffinity(0, {int(o.get("cpu", 1))})
    kind = o.get("loop", "asyncio")
    quick = o.get("quick", "0") == "1"
    loop = new_loop(kind)
    asyncio.set_event_loop(loop)
    fn = {"bh": row_bh, "timer": row_timer}[o["row"]]
    res = fn(loop, quick)
    label = {"asyncio": "asyncio (Python %d.%d)" % sys.version_info[:2],
             "uvloop": "uvloop"}[kind]
    out = {"row": o["row"], "impl": label}
    out.update(res)
    loop.close()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
