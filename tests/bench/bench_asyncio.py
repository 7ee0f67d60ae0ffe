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

import benchargs


def opts(argv):
    return benchargs.parse(argv, __doc__, ('row',))


def new_loop(kind):
    if kind == "uvloop":
        import uvloop
        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def batch_size(batch, floor_ns):
    """Grow n until one batch of n operations takes floor_ns (warming up
    on the way)."""
    n = 1000
    while batch(n) < floor_ns:
        n *= 2
    return n


def calibrate(batch, quick, floor_ns=5_000_000):
    """Time 3 (quick) or 9 batches of batch_size(): per-op medians."""
    n = batch_size(batch, floor_ns)
    nb = 3 if quick else 9
    per = [batch(n) / n for _ in range(nb)]
    return {"value": statistics.median(per), "batches": per,
            "ops_per_batch": n}


def paired(batches, quick, floor_ns=5_000_000):
    """Time several implementations batch for batch in one process.

    batches is [(name, batch)]; the first is the one measured, the
    others its references.  This machine runs in phases a few seconds
    long in which every Python loop is up to 1.8x slower (the host's
    doing: tests/bench/README.md, row 9), so figures from separate
    processes compare whichever phases they drew.  Here the batches run
    round-robin, A B A B ..., for 0.3 s (quick) or 2 s, and two adjacent
    batches share the phase.  Returns the first's per-op median as
    value and, for each reference X, X_paired (its per-op median here)
    and vs_X: the median over rounds of first / X.
    """
    sizes = [batch_size(b, floor_ns) for _, b in batches]
    per = {name: [] for name, _ in batches}
    end = time.monotonic() + (0.3 if quick else 2.0)
    rounds = 0
    while rounds < 3 or time.monotonic() < end:
        for (name, b), n in zip(batches, sizes):
            per[name].append(b(n) / n)
        rounds += 1
    first = batches[0][0]
    out = {"value": statistics.median(per[first]), "batches": per[first],
           "ops_per_batch": sizes[0], "rounds": rounds}
    for name, _ in batches[1:]:
        out[name + "_paired"] = statistics.median(per[name])
        out["vs_" + name] = statistics.median(
            a / b for a, b in zip(per[first], per[name]))
    return out


def bh_batch(loop):
    """A batch(n) function: n callbacks, each call_soon()ing the next."""
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

    return batch


def row_bh(loop, quick):
    return calibrate(bh_batch(loop), quick)


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
