# SPDX-License-Identifier: MIT
"""The main loop, the BQL, IOThreads and AIO_WAIT_WHILE."""
import contextlib
import sys
import threading

from ._backend import B, lib, raw
from ._core import (AioContext, Error, Timer, RULE_AIO_WAIT,
                    RULE_BQL_HELD, RULE_BQL_NOT_HELD, RULE_GLOBAL_STATE,
                    RULE_MAIN_LOOP_WAIT, call_errp, check_callable,
                    check_int, check_rule)

# --- the BQL ------------------------------------------------------------


def bql_locked():
    """Does the calling thread hold the BQL?"""
    return lib.bql_locked()


def bql_lock():
    """Take the BQL (the GIL is released while waiting for it)."""
    check_rule(RULE_BQL_NOT_HELD, "bql_lock")
    lib.bql_lock()


def bql_unlock():
    """Release the BQL (the calling thread must hold it)."""
    check_rule(RULE_BQL_HELD, "bql_unlock")
    lib.bql_unlock()


@contextlib.contextmanager
def bql():
    """`with aiolab.bql():` -- hold the BQL for the block.  Like
    BQL_LOCK_GUARD(): if the thread already holds it, nothing happens."""
    taken = not lib.bql_locked()
    if taken:
        lib.bql_lock()
    try:
        yield
    finally:
        if taken:
            lib.bql_unlock()


def bql_stats():
    """Per-thread BQL statistics: a list of dicts (times in ns)."""
    n = lib.aiolab_bql_get_stats(B.NULL, 0)
    arr = B.array("AiolabBqlStats", n + 8)
    n = min(lib.aiolab_bql_get_stats(raw(arr), n + 8), n + 8)
    out = []
    for i in range(n):
        s = B.item(arr, "AiolabBqlStats", i)
        out.append(dict(thread=B.chars(s.thread_name), tid=s.tid,
                        acquisitions=s.acquisitions, contended=s.contended,
                        wait_ns_total=s.wait_ns_total,
                        wait_ns_max=s.wait_ns_max,
                        hold_ns_total=s.hold_ns_total,
                        hold_ns_max=s.hold_ns_max))
    return out


def bql_stats_reset():
    """Zero every thread's BQL statistics."""
    lib.aiolab_bql_reset_stats()


# --- the main loop --------------------------------------------------------


class MainLoop:
    """The main loop: the main AioContext (`ctx`), the iohandler context,
    and main_loop_wait().  The thread that first calls aiolab.main_loop()
    becomes the main-loop thread."""

    def __init__(self):
        call_errp(lib.qemu_init_main_loop)
        self.ctx = AioContext._wrap(lib.qemu_get_aio_context())
        self.iohandler_ctx = AioContext._wrap(lib.iohandler_get_aio_context())
        self.thread = threading.current_thread()
        self.ctx._install_sigwake()

    def wait(self, blocking=True):
        """One main_loop_wait(): sleep (without the BQL) until something in
        the main or iohandler context or a main-loop timer is ready, then
        run it with the BQL.  Takes the BQL for the call if this thread
        does not hold it.  Main-loop thread only."""
        with bql():
            check_rule(RULE_MAIN_LOOP_WAIT, "main_loop_wait")
            self.ctx._reraise()
            lib.main_loop_wait(0 if blocking else 1)
        self.ctx._reraise()
        self.iohandler_ctx._reraise()

    def bh(self, fn, name=None):
        """A BH in the main context (qemu_bh_new)."""
        return self.ctx.bh(fn, name)

    def timer(self, fn, clock="realtime", scale="ns"):
        """A main-loop timer (timer_new_ns/us/ms): run only by wait(),
        never by a nested poll of the main context."""
        return Timer(self.ctx, fn, clock, scale, _tlg="main")

    def set_fd_handler(self, fd, read=None, write=None):
        """qemu_set_fd_handler: an fd handler in the iohandler context."""
        self.iohandler_ctx.set_fd_handler(fd, read=read, write=write)

    def notify(self):
        """qemu_notify_event(): wake the main loop.  Any thread."""
        lib.qemu_notify_event()


_main_loop = None
_main_loop_lock = threading.Lock()


def main_loop():
    """The main loop, created on first use (qemu_init_main_loop)."""
    global _main_loop
    with _main_loop_lock:
        if _main_loop is None:
            cur = lib.qemu_get_current_aio_context()
            if not B.is_null(cur) and not lib.bql_locked():
                raise Error(
                    "this thread already polls AioContext "
                    f"'{B.str(lib.aiolab_aio_context_get_name(cur))}': the "
                    "main loop needs a thread of its own (close that "
                    "context first)")
            _main_loop = MainLoop()
        return _main_loop


# --- IOThreads ----------------------------------------------------------


_PARAMS = ("poll-max-ns", "poll-grow", "poll-shrink", "aio-max-batch",
           "thread-pool-min", "thread-pool-max")


class IOThread:
    """An IOThread: a thread running aio_poll(ctx, true) on its own
    context.  A context manager: leaving the block stops and destroys it.

    Exceptions raised by callbacks running in it are reported at once
    and re-raised by its next method call, or by stop()/close().
    """

    def __init__(self, id, **params):
        if not isinstance(id, str):
            raise TypeError("id must be a str")
        main_loop()
        with bql():
            self._ptr = call_errp(lib.iothread_create, B.s(id))
        self.id = id
        self.ctx = AioContext._wrap(lib.iothread_get_aio_context(self._ptr))
        self.ctx._iothread = self
        self._stopped = False
        try:
            for key, value in params.items():
                setattr(self, key, value)
        except Exception:
            self.close()
            raise

    def _live(self):
        if self._ptr is None:
            raise Error(f"IOThread '{self.id}' is destroyed")
        self.ctx._reraise()
        return self._ptr

    @property
    def thread_id(self):
        """The kernel tid of the thread."""
        return lib.iothread_get_thread_id(self._live())

    def _get(self, name):
        p = B.int64p()
        if not lib.aiolab_iothread_get_param(self._live(), B.s(name), p):
            raise Error(f"unknown IOThread property {name}")
        return B.int64_value(p)

    def _set_poll(self, **kw):
        max_ns = kw.get("max_ns", self._get("poll-max-ns"))
        grow = kw.get("grow", self._get("poll-grow"))
        shrink = kw.get("shrink", self._get("poll-shrink"))
        for v, what in ((max_ns, "poll_max_ns"), (grow, "poll_grow"),
                        (shrink, "poll_shrink")):
            check_int(v, what)
        with bql():
            call_errp(lib.iothread_set_poll_params, self._live(), max_ns,
                      grow, shrink)

    poll_max_ns = property(lambda self: self._get("poll-max-ns"),
                           lambda self, v: self._set_poll(max_ns=v),
                           doc="poll-max-ns: longest busy-poll (ns)")
    poll_grow = property(lambda self: self._get("poll-grow"),
                         lambda self, v: self._set_poll(grow=v),
                         doc="poll-grow (0 = double)")
    poll_shrink = property(lambda self: self._get("poll-shrink"),
                           lambda self, v: self._set_poll(shrink=v),
                           doc="poll-shrink (0 = drop to zero)")

    @property
    def aio_max_batch(self):
        """aio-max-batch: the largest io_uring submission batch (0 = default)."""
        return self._get("aio-max-batch")

    @aio_max_batch.setter
    def aio_max_batch(self, v):
        check_int(v, "aio_max_batch")
        with bql():
            call_errp(lib.iothread_set_aio_max_batch, self._live(), v)

    @property
    def thread_pool_min(self):
        """thread-pool-min of the IOThread's context."""
        return self._get("thread-pool-min")

    @thread_pool_min.setter
    def thread_pool_min(self, v):
        self.set_thread_pool(v, self.thread_pool_max)

    @property
    def thread_pool_max(self):
        """thread-pool-max of the IOThread's context."""
        return self._get("thread-pool-max")

    @thread_pool_max.setter
    def thread_pool_max(self, v):
        self.set_thread_pool(self.thread_pool_min, v)

    def set_thread_pool(self, min, max):
        """Set thread-pool-min and thread-pool-max together."""
        check_int(min, "thread_pool_min")
        check_int(max, "thread_pool_max")
        with bql():
            call_errp(lib.iothread_set_thread_pool_params, self._live(),
                      min, max)

    def run(self, fn):
        """Run fn() in the IOThread and wait for it (aio_wait_bh_oneshot,
        from the main loop); return its result, raise its exception."""
        check_callable(fn, "fn")
        ptr = self._live()
        out = {}

        def call():
            try:
                out["r"] = fn()
            except BaseException as e:          # noqa: B902
                out["e"] = e
        h, keep = B.handle(call)
        with bql():
            check_rule(RULE_GLOBAL_STATE, "aio_wait_bh_oneshot")
            lib.aio_wait_bh_oneshot(lib.iothread_get_aio_context(ptr),
                                    B.VOID_CB, h)
        B.release(keep)
        if "e" in out:
            raise out["e"]
        return out.get("r")

    def stop(self):
        """Stop and join the thread (idempotent); then re-raise a pending
        callback exception."""
        if self._ptr is not None and not self._stopped:
            with bql():
                lib.iothread_stop(self._ptr)
            self._stopped = True
        self.ctx._reraise()

    join = stop

    def close(self):
        """Stop the thread and free it and its context.  Refused while a
        device or machine uses it (IOThreads have no reference count)."""
        if self._ptr is None:
            return
        users = [u for u in self.__dict__.get("_users", ()) if not u.closed]
        if users:
            raise Error(f"IOThread '{self.id}' is used by {users[0]!r}: "
                        "close it first")
        ptr = self._ptr
        try:
            self.stop()
        finally:
            self.ctx._reap()
            with bql():
                lib.iothread_destroy(ptr)
            self._ptr = None
            self.ctx._ptr = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return f"<aiolab.IOThread {self.id!r}{'' if self._ptr else ' closed'}>"


# --- AIO_WAIT_WHILE ---------------------------------------------------------


def aio_wait_while(ctx, predicate):
    """AIO_WAIT_WHILE(ctx, predicate()): poll until predicate() is false.

    In ctx's home thread it polls ctx; in the main loop it polls the main
    context and relies on aio_wait_kick() from whoever changes the
    condition.  Anywhere else it raises (it would deadlock).
    Returns True if it had to wait."""
    check_callable(predicate, "predicate")
    ptr = None if ctx is None else ctx._live()
    check_rule(RULE_AIO_WAIT, "aio_wait_while", B.ptr_arg(ptr))
    # The caller's frame only: inspect.stack() reads the source of every
    # frame, milliseconds in a notebook, with the BQL held.
    caller = sys._getframe(1)
    poll_ctx = lib.aiolab_aio_wait_begin(
        B.ptr_arg(ptr), B.s("aio_wait_while"), B.s(caller.f_code.co_filename),
        caller.f_lineno, B.s(getattr(predicate, "__name__", "predicate")))
    waited = False
    wrapper = ctx if ctx is not None and B.addr(ptr) == B.addr(poll_ctx) \
        else main_loop().ctx
    try:
        while predicate():
            wrapper._reraise()
            lib.aio_poll(poll_ctx, True)
            waited = True
        wrapper._reraise()
    finally:
        lib.aiolab_aio_wait_end()
    return waited


def aio_wait_kick():
    """Wake AIO_WAIT_WHILE waiters to re-check their condition."""
    lib.aio_wait_kick()
