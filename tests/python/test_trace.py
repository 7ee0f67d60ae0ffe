# SPDX-License-Identifier: MIT
"""Trace capture from Python."""
import json

import aiolab


def test_capture_bh(ctx, tmp_path):
    bh = ctx.bh(lambda: None, name="traced_bh")
    with aiolab.trace() as t:
        bh.schedule()
        ctx.poll(True)          # a blocking poll is a slice (it is ready)
        aiolab.mark("python-mark", 5)
    names = {(e.name, e.phase, e.label) for e in t.events}
    assert ("qemu_bh_schedule", "i", "traced_bh") in names
    assert ("aio_bh_call", "B", "traced_bh") in names
    assert ("python-mark", "i", None) in names
    assert t.count("aio_poll", "B") == 1
    s = t.slices("aio_bh_call")
    assert len(s) == 1 and s[0].label == "traced_bh"
    assert s[0].end_ns >= s[0].start_ns
    assert all(t.start_ns <= e.ts_ns <= t.end_ns for e in t.events)
    assert t.threads[t.events[0].tid] == t.events[0].thread
    path = t.save(str(tmp_path / "t.json"))
    data = json.load(open(path))
    assert any(e.get("name", "").startswith("aio_bh_call") for e in
               data["traceEvents"])
    bh.delete()


def test_bql_and_iothread_in_trace(main):
    with aiolab.trace() as t:
        with aiolab.IOThread("io0") as io:
            io.run(lambda: None)
    assert t.slices("bql_held")
    assert "IO io0" in t.threads.values()


def test_disable(ctx):
    aiolab.set_tracing(False)
    try:
        with aiolab.trace() as t:       # a capture turns it on for its span
            ctx.notify()
            ctx.poll(True)      # notified: returns at once
        assert t.count("aio_poll") == 2
    finally:
        aiolab.set_tracing(True)
