# SPDX-License-Identifier: MIT
"""IOThreads, the main loop, the BQL, AIO_WAIT_WHILE, and the safety
rules around threads: callbacks on IOThreads and pool workers, the GIL
released by blocking calls, misuse caught with the C message."""
import os
import subprocess
import sys
import threading
import time

import pytest

import aiolab


def test_iothread_lifecycle(main):
    with aiolab.IOThread("io0") as io:
        assert io.poll_max_ns == 32768
        assert io.poll_grow == 0 and io.poll_shrink == 0
        assert io.thread_pool_max == 64
        assert io.ctx.name == "IO io0"
        assert io.thread_id > 0
        name = io.run(lambda: threading.current_thread().ident)
        assert name != threading.main_thread().ident
        io.poll_max_ns = 1000
        io.poll_grow, io.poll_shrink = 2, 2
        assert (io.poll_max_ns, io.poll_grow, io.poll_shrink) == (1000, 2, 2)
        io.aio_max_batch = 16
        assert io.aio_max_batch == 16
        io.set_thread_pool(2, 8)
        assert (io.thread_pool_min, io.thread_pool_max) == (2, 8)
    with pytest.raises(aiolab.Error, match="destroyed"):
        io.poll_max_ns


def test_iothread_bad_values(main):
    with aiolab.IOThread("io0") as io:
        with pytest.raises(aiolab.Error, match="Duplicate ID 'io0'"):
            aiolab.IOThread("io0")
        with pytest.raises(aiolab.Error, match="poll-max-ns value must"):
            io.poll_max_ns = -1
        assert io.poll_max_ns == 32768
        with pytest.raises(aiolab.Error, match="bad thread-pool"):
            io.set_thread_pool(9, 3)
        with pytest.raises(TypeError):
            io.poll_max_ns = "fast"
    with pytest.raises(aiolab.Error, match="identifier"):
        aiolab.IOThread("9lives")
    with pytest.raises(TypeError):
        aiolab.IOThread(7)


def test_callbacks_on_iothread_and_pool(main):
    with aiolab.IOThread("io0") as io:
        where = []
        done = threading.Event()

        async def job():
            where.append(threading.get_native_id())
            w = await io.ctx.to_thread(threading.get_native_id)
            where.append(w)
            done.set()
        io.ctx.create_task(job())
        assert done.wait(10)
        assert where[0] == io.thread_id
        assert where[1] not in (io.thread_id, threading.get_native_id())


def test_iothread_exception_reraised(main):
    io = aiolab.IOThread("io0")
    seen = []
    old = sys.unraisablehook
    sys.unraisablehook = lambda a: seen.append(a.exc_value)
    try:
        def bad():
            raise KeyError("in the IOThread")
        io.ctx.schedule_oneshot(bad)
        deadline = time.time() + 5
        while not seen and time.time() < deadline:
            time.sleep(0.01)
        assert seen, "reported at once through sys.unraisablehook"
        with pytest.raises(KeyError):
            io.poll_max_ns                 # its next method raises it
        io.ctx.schedule_oneshot(bad)
        time.sleep(0.2)
        with pytest.raises(KeyError):
            io.stop()                      # or stop()
    finally:
        sys.unraisablehook = old
        io.close()


def test_wrong_thread_poll_same_message_as_c(main, root):
    with aiolab.IOThread("io0") as io:
        with pytest.raises(aiolab.Error) as exc:
            io.ctx.poll()
    msg = str(exc.value)
    assert msg.startswith("aiolab: aio_poll() called outside the home "
                          "thread of AioContext 'IO io0'")
    # The C debug build aborts with the same text.
    code = ("import aiolab; aiolab.main_loop();\n"
            "io = aiolab.IOThread('io0')\n"
            "aiolab.lib.aio_poll(io.ctx._ptr, False)\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True,
                       text=True, env=dict(os.environ, PYTHONPATH=os.path.join(
                           root, "bindings", "python")), timeout=30)
    assert p.returncode != 0
    assert msg in p.stderr


def test_bql(main):
    assert not aiolab.bql_locked()
    with aiolab.bql():
        assert aiolab.bql_locked()
        with aiolab.bql():              # like BQL_LOCK_GUARD: nests
            assert aiolab.bql_locked()
        assert aiolab.bql_locked()
        with pytest.raises(aiolab.Error, match="already holds the BQL"):
            aiolab.bql_lock()
    assert not aiolab.bql_locked()
    with pytest.raises(aiolab.Error, match="does not hold the BQL"):
        aiolab.bql_unlock()
    stats = {s["thread"]: s for s in aiolab.bql_stats()}
    assert stats["main"]["acquisitions"] >= 1
    aiolab.bql_stats_reset()
    assert aiolab.bql_stats() == []


def test_bql_contention_and_gil_released(main):
    """A thread blocked in bql_lock() (C) must not hold the GIL."""
    aiolab.bql_lock()
    got = threading.Event()
    t = threading.Thread(target=lambda: (aiolab.bql_lock(), got.set(),
                                         aiolab.bql_unlock()))
    t.start()
    time.sleep(0.1)                 # it waits for the BQL ...
    ticks = sum(1 for _ in range(1000))     # ... and we still run Python
    assert ticks == 1000 and not got.is_set()
    aiolab.bql_unlock()
    t.join(5)
    assert got.is_set()
    s = {x["thread"]: x for x in aiolab.bql_stats()}
    assert any(x["contended"] >= 1 for x in s.values())


def test_blocking_poll_releases_gil(ctx):
    counter = [0]
    stop = threading.Event()

    def spin():
        while not stop.is_set():
            counter[0] += 1
    t = threading.Thread(target=spin)
    t.start()
    timer = ctx.timer(stop.set)
    timer.mod_ns(300_000_000, relative=True)
    before = counter[0]
    while not stop.is_set():
        ctx.poll(True)              # 300 ms in C, without the GIL
    t.join()
    assert counter[0] - before > 1000


def test_aio_wait_while(main):
    with aiolab.IOThread("io0") as io:
        done = []

        def work():
            time.sleep(0.05)
            done.append(1)
            aiolab.aio_wait_kick()
        io.ctx.schedule_oneshot(work)
        assert aiolab.aio_wait_while(io.ctx, lambda: not done) is True
        assert done == [1]
        assert aiolab.aio_wait_while(io.ctx, lambda: False) is False


def test_aio_wait_across_iothreads_refused(main):
    with aiolab.IOThread("io0") as a, aiolab.IOThread("io1") as b:
        def wait_on_b():
            aiolab.aio_wait_while(b.ctx, lambda: True)
        with pytest.raises(aiolab.Error, match="waits on context 'IO io1'"):
            a.run(wait_on_b)


def test_main_loop_wait_and_timers(main):
    ran = []
    t = main.timer(lambda: ran.append(aiolab.bql_locked()))
    t.mod_ns(1_000_000, relative=True)
    # a nested poll of the main context does not run main-loop timers
    time.sleep(0.01)
    main.ctx.poll()
    assert ran == []
    main.wait()
    assert ran == [True]
    r, w = os.pipe()
    got = []
    main.set_fd_handler(r, read=lambda: got.append(os.read(r, 1)))
    os.write(w, b"q")
    main.ctx.poll()                 # iohandler: not by nested polls
    assert got == []
    main.wait()
    assert got == [b"q"]
    main.set_fd_handler(r)


def test_main_loop_notify_from_thread(main):
    threading.Timer(0.1, main.notify).start()
    t0 = time.time()
    main.wait()                     # would block forever otherwise
    assert time.time() - t0 < 5


def test_keyboard_interrupt_is_prompt(root):
    code = r"""
import aiolab, threading, time, sys
ctx = aiolab.AioContext()
# another Python thread that may receive the SIGINT
threading.Thread(target=lambda: time.sleep(30), daemon=True).start()
print("ready", flush=True)
t0 = time.time()
try:
    ctx.poll(True)          # nothing will ever happen
except KeyboardInterrupt:
    print("interrupted after %.2f s" % (time.time() - t0), flush=True)
"""
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                         text=True, env=dict(os.environ, PYTHONPATH=os.path.join(
                             root, "bindings", "python")))
    assert p.stdout.readline().strip() == "ready"
    time.sleep(0.3)
    p.send_signal(2)
    out, _ = p.communicate(timeout=10)
    assert "interrupted after" in out
    assert float(out.split()[2]) < 2.0


def test_exception_outside_the_wrapper(root):
    """An exception raised before the package's callback wrapper runs --
    in practice a KeyboardInterrupt, as Python runs its SIGINT handler at
    the entry of the C callback -- is never lost: Ctrl-C reaches the code
    that polls, anything else goes to the default sys.unraisablehook."""
    code = r"""
import aiolab
from aiolab import _core
ctx = aiolab.AioContext()
e = aiolab.EventNotifier()
ctx.set_event_notifier(e, read=lambda n: n.test_and_clear())
ctx.poll()
def raising(exc):
    def dispatch(addr, role):
        raise exc
    return dispatch
_core.B.notifier_dispatch = raising(RuntimeError("boom"))
e.set()
ctx.poll(True)
print("reported", flush=True)
_core.B.notifier_dispatch = raising(KeyboardInterrupt())
try:
    ctx.poll(True)
    ctx.poll(False)
except KeyboardInterrupt:
    print("interrupted", flush=True)
"""
    p = subprocess.run([sys.executable, "-c", code], capture_output=True,
                       text=True, timeout=60, env=dict(
                           os.environ, PYTHONPATH=os.path.join(
                               root, "bindings", "python")))
    assert p.stdout.split() == ["reported", "interrupted"], (p.stdout,
                                                             p.stderr)
    assert "RuntimeError: boom" in p.stderr, p.stderr
    assert "TypeError" not in p.stderr, p.stderr


def test_dump_state(main):
    text = aiolab.dump_state()
    assert "=== aiolab state" in text and "AioContext 'main'" in text
