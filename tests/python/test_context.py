# SPDX-License-Identifier: MIT
"""AioContext from Python: the same semantics as tests/c/test-aio.c."""
import os

import pytest

import aiolab


def test_bh_schedule_runs_once(ctx):
    n = []
    bh = ctx.bh(lambda: n.append(1))
    bh.schedule()
    bh.schedule()                   # scheduled twice before it runs: once
    assert n == []
    assert ctx.poll() is True
    assert n == [1]
    assert ctx.poll() is False
    bh.delete()


def test_bh_reschedule_runs_next_poll(ctx):
    n = []

    def cb():
        n.append(1)
        if len(n) < 10:
            bh.schedule()
    bh = ctx.bh(cb)
    bh.schedule()
    assert ctx.poll() and len(n) == 1        # not again in the same poll
    assert ctx.poll(True) and len(n) == 2
    while len(n) < 10:
        ctx.poll(True)
    assert len(n) == 10 and ctx.poll() is False
    bh.delete()


def test_bh_cancel_delete(ctx):
    n = []
    bh = ctx.bh(lambda: n.append(1))
    bh.schedule()
    bh.cancel()
    assert ctx.poll() is False and n == []
    bh.schedule()
    bh.delete()
    assert bh.deleted
    assert ctx.poll() in (False, True) and n == []
    with pytest.raises(aiolab.Error, match="deleted"):
        bh.schedule()


def test_bh_lifo_order_and_idle(ctx):
    order = []
    bhs = [ctx.bh(lambda i=i: order.append(i)) for i in range(3)]
    for b in bhs:
        b.schedule()
    assert ctx.poll()
    assert order == [2, 1, 0]
    idle = ctx.bh(lambda: order.append("idle"))
    idle.schedule_idle()
    assert 0 < ctx.compute_timeout() <= 10_000_000
    assert ctx.poll(True) is False          # idle is not progress
    assert order[-1] == "idle"


def test_oneshot_and_notify(ctx):
    n = []
    ctx.schedule_oneshot(lambda: n.append(1))
    assert ctx.poll() and n == [1]
    ctx.notify()
    assert ctx.poll(True) is False          # woken, nothing ran
    assert ctx.poll() is False


def test_fd_handlers(ctx):
    r, w = os.pipe()
    got = []
    ctx.add_reader(r, lambda: got.append(os.read(r, 1)))
    os.write(w, b"ab")
    assert ctx.poll() and got == [b"a"]
    assert ctx.poll() and got == [b"a", b"b"]      # level-triggered
    assert ctx.poll() is False
    writes = []
    ctx.add_writer(w, lambda: (writes.append(1), ctx.remove_writer(w)))
    assert ctx.poll() and writes == [1]
    ctx.remove_reader(r)
    os.write(w, b"c")
    assert ctx.poll() in (True, False) and got == [b"a", b"b"]
    os.close(r)
    os.close(w)


def test_handler_removes_itself(ctx):
    r, w = os.pipe()
    got = []

    def cb():
        got.append(os.read(r, 1))
        ctx.remove_reader(r)
    ctx.add_reader(r, cb)
    os.write(w, b"xy")
    assert ctx.poll() and got == [b"x"]
    ctx.poll()
    assert got == [b"x"]


def test_timers(ctx):
    fired = []
    t = ctx.timer(lambda: fired.append(1))
    assert not t.pending and t.expire_time_ns == -1
    t.mod_ns(2_000_000, relative=True)
    assert t.pending
    ctx.run_until(lambda: fired, timeout=5)
    assert fired == [1] and not t.pending
    t.mod(t.now() + 10**9)
    t.mod_anticipate(t.now() + 10**12)          # later: ignored
    assert t.expire_time_ns < t.now() + 2 * 10**9
    t.delete()
    assert not t.pending
    t.close()
    with pytest.raises(aiolab.Error):
        t.mod(0)


def test_event_notifier(ctx):
    e = aiolab.EventNotifier()
    got = []
    ctx.set_event_notifier(e, read=lambda n: got.append(n.test_and_clear()))
    assert ctx.poll() is False
    e.set()
    assert ctx.poll() and got == [True]
    assert e.test_and_clear() is False
    ctx.set_event_notifier(e, None)
    e.close()


def test_event_notifier_poll_callbacks(ctx):
    ctx.set_poll_params(1_000_000, 2, 2)
    e = aiolab.EventNotifier(active=True)
    calls = []
    ready = [False]

    def read(n):
        n.test_and_clear()
        calls.append("read")

    def poll():
        return ready[0]

    def poll_ready(n):
        ready[0] = False
        calls.append("poll_ready")
    ctx.set_event_notifier(e, read=read, poll=poll, poll_ready=poll_ready)
    ctx.set_event_notifier_poll(e, begin=lambda n: calls.append("begin"),
                                end=lambda n: calls.append("end"))
    ctx.poll()
    assert ctx.poll(True) and "read" in calls      # joins the poll list
    ready[0] = True
    assert ctx.poll(True) and "poll_ready" in calls
    ctx.set_event_notifier(e, None)
    e.close()


def test_exception_reraised_and_reported(ctx):
    seen = []
    import sys
    old = sys.unraisablehook
    sys.unraisablehook = lambda a: seen.append(a.exc_value)
    try:
        def bad():
            raise ValueError("boom")
        ctx.schedule_oneshot(bad)
        with pytest.raises(ValueError, match="boom"):
            ctx.poll()
        assert len(seen) == 1            # reported at once
        assert ctx.poll() is False       # raised once
    finally:
        sys.unraisablehook = old


def test_close_runs_pending_and_use_after_close(ctx):
    n = []
    ctx.schedule_oneshot(lambda: n.append(1))
    bh = ctx.bh(lambda: n.append(2))
    bh.schedule()
    ctx.close()                           # runs them, no "BH leaked"
    assert sorted(n) == [1, 2]
    assert ctx.closed
    for op in (ctx.poll, ctx.notify, lambda: ctx.bh(print),
               lambda: ctx.schedule_oneshot(print)):
        with pytest.raises(aiolab.Error, match="closed"):
            op()
    ctx.close()                           # idempotent


def test_new_context_after_close():
    a = aiolab.AioContext("first")
    with pytest.raises(aiolab.Error, match="already polls AioContext"):
        aiolab.AioContext()
    a.close()
    b = aiolab.AioContext("second")
    assert b.name == "second"
    b.close()


def test_bad_input(ctx):
    with pytest.raises(TypeError):
        ctx.bh(42)
    with pytest.raises(TypeError):
        ctx.schedule_oneshot("not callable")
    with pytest.raises(ValueError):
        ctx.timer(print, clock="sundial")
    with pytest.raises(ValueError):
        ctx.timer(print, scale="fortnights")
    with pytest.raises(TypeError):
        ctx.add_reader("x", print)
    with pytest.raises(ValueError):
        ctx.add_reader(-1, print)
    with pytest.raises(aiolab.Error, match="poll-max-ns value must be"):
        ctx.set_poll_params(-1)
    with pytest.raises(TypeError):
        ctx.set_poll_params(1.5)
    with pytest.raises(aiolab.Error, match="bad thread-pool-min"):
        ctx.set_thread_pool_params(5, 1)
    with pytest.raises(aiolab.Error, match="unknown fd monitor"):
        ctx.fdmon = "kqueue"
    with pytest.raises(TypeError, match="EventNotifier"):
        ctx.set_event_notifier(1, read=print)


def test_absurd_ints_are_value_errors(ctx):
    """Integers C cannot hold are a ValueError naming the parameter, the
    same on both bindings (not cffi's or SWIG's own OverflowError, whose
    SWIG text names a C function the user never called)."""
    t = ctx.timer(print)
    with pytest.raises(ValueError, match="ns must be <= 9223372036854775807"):
        t.mod_ns(2 ** 70)
    with pytest.raises(ValueError, match="ns must be >= -9223372036854775808"):
        t.mod_ns(-2 ** 64)
    t.close()
    with pytest.raises(ValueError, match="fd must be <= 2147483647"):
        ctx.add_reader(2 ** 40, print)
    with pytest.raises(ValueError, match="max_ns must be <= "):
        ctx.set_poll_params(2 ** 64)
    with pytest.raises(ValueError, match="max must be <= "):
        ctx.set_thread_pool_params(1, 2 ** 63)


def test_fdmon_and_poll_params(ctx):
    assert ctx.fdmon in ("poll", "epoll", "io_uring")
    ctx.fdmon = "epoll"
    assert ctx.fdmon == "epoll"
    ctx.set_poll_params(32768, 0, 0)
    assert ctx.poll_params == (32768, 0, 0)
    assert ctx.poll_ns == 0


def test_embedding_primitives(ctx):
    fd = ctx.fileno()
    assert fd >= 0 and ctx.fdmon == "epoll"
    ctx.prepare()
    ctx.check()
    n = []
    ctx.schedule_oneshot(lambda: n.append(1))
    assert ctx.prepare() == 0
    assert ctx.check()
    ctx.dispatch()
    assert n == [1]
