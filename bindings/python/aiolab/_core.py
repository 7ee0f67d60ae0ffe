# SPDX-License-Identifier: MIT
"""AioContext and what lives in it: BHs, timers, fd handlers, event
notifiers.  The Python face of c/util/async.c and c/util/aio-posix.c.

Three rules keep Python safe here:

* A callback never lets an exception unwind into C.  The exception is
  reported at once through sys.unraisablehook and stored on the context;
  the next Python call on that context (poll(), wait, an IOThread method)
  raises it.
* An object keeps its callback alive for as long as C can call it: a
  handler that is removed, or a BH that is deleted, may still be running
  in its context's thread, so its handle is only dropped later, by a BH
  in that thread.
* Rules the C debug build would abort on (polling from the wrong thread,
  ...) are checked first and raised as aiolab.Error with the same message.
"""
import os
import signal
import sys
import threading
import types
import weakref

from ._backend import (B, lib, raw, READ, POLL, POLL_READY, POLL_BEGIN,
                       POLL_END, WRITE)

# Called on every poll(): a module global is one lookup, not two.
_get_ident = threading.get_ident

# Rule numbers of aiolab_rule_check() (aiolab/debug.h).
RULE_HOME_THREAD = 0
RULE_GLOBAL_STATE = 1
RULE_AIO_WAIT = 2
RULE_MAIN_LOOP_WAIT = 3
RULE_HAS_CONTEXT = 4
RULE_BQL_NOT_HELD = 5
RULE_BQL_HELD = 6

CLOCKS = {"realtime": 0, "virtual": 1, "host": 2, "virtual_rt": 3}
SCALES = {"ns": 1, "us": 1000, "ms": 1000000}


class Error(Exception):
    """An aiolab error: bad input, a broken threading rule, a closed
    object, or an error returned by the C library."""


def check_rule(rule, func, ctx_ptr=None):
    msg = B.rule_check(rule, func, B.ptr_arg(ctx_ptr))
    if msg:
        raise Error(msg)


def call_errp(fn, *args):
    """Call a C function taking `Error **errp` last; raise its Error."""
    errp = B.errp()
    ret = fn(*args, errp)
    msg = B.take_error(errp)
    if msg:
        raise Error(msg)
    return ret


def _find_unraisable_args_type():
    """sys.UnraisableHookArgs is not importable; learn it from one event
    (the default hook accepts nothing else)."""
    got = []
    old = sys.unraisablehook
    sys.unraisablehook = lambda args: got.append(type(args))
    try:
        class _Probe:
            def __del__(self):
                raise RuntimeError("probe")
        _Probe()
    finally:
        sys.unraisablehook = old
    return got[0] if got else None


_UnraisableHookArgs = _find_unraisable_args_type()


def report_unraisable(exc, what):
    """Report a callback's exception now, as Python does for __del__."""
    msg = f"Exception in aiolab callback {what}"
    if _UnraisableHookArgs is not None:
        hook_args = _UnraisableHookArgs((type(exc), exc, exc.__traceback__,
                                         msg, None))
    else:
        hook_args = types.SimpleNamespace(
            exc_type=type(exc), exc_value=exc,
            exc_traceback=exc.__traceback__, err_msg=msg, object=None)
    try:
        sys.unraisablehook(hook_args)
    except Exception:
        pass


def check_callable(fn, what):
    if not callable(fn):
        raise TypeError(f"{what} must be callable, not {type(fn).__name__}")


INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1
INT_MAX = (1 << 31) - 1


def check_int(value, what, minimum=None, maximum=None):
    """@value as an int for C: a TypeError or ValueError naming @what, never
    the binding's OverflowError.  Without bounds, C's int64_t bounds; give
    maximum=INT_MAX for a C int, U64 and so on for unsigned fields."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int, not {type(value).__name__}")
    lo = INT64_MIN if minimum is None else minimum
    hi = INT64_MAX if maximum is None else maximum
    if value < lo:
        raise ValueError(f"{what} must be >= {lo}, not {value}")
    if value > hi:
        raise ValueError(f"{what} must be <= {hi}, not {value}")
    return value


_contexts = weakref.WeakValueDictionary()   # address -> AioContext
_notifiers = {}                 # address -> EventNotifier, for callbacks
_notifiers_lock = threading.Lock()


def _notifier_dispatch(addr, role):
    with _notifiers_lock:
        n = _notifiers.get(addr)
    if n is None:
        return False
    return n._dispatch(role)


B.notifier_dispatch = _notifier_dispatch


class AioContext:
    """An event loop: fd handlers, bottom halves (BHs) and timers, polled
    by one thread at a time, its home thread.

    AioContext() creates a context whose home is the calling thread (as
    QEMU's qemu_set_current_aio_context); aiolab.main_loop().ctx and
    IOThread.ctx are the contexts of the main loop and of IOThreads.
    """

    def __init__(self, name=None):
        cur = lib.qemu_get_current_aio_context()
        if not B.is_null(cur) and not lib.bql_locked():
            raise Error(f"this thread already polls AioContext "
                        f"'{B.str(lib.aiolab_aio_context_get_name(cur))}': "
                        "close() it first, or create the new context in "
                        "another thread (a thread has one home context)")
        ptr = call_errp(lib.aio_context_new)
        self._init(ptr, owned=True)
        if name is not None:
            self.name = name
        lib.qemu_set_current_aio_context(ptr)
        self._install_sigwake()

    @classmethod
    def _wrap(cls, ptr):
        self = cls.__new__(cls)
        self._init(ptr, owned=False)
        return self

    def _init(self, ptr, owned):
        _contexts[B.addr(ptr)] = self
        self._ptr = ptr
        self._owned = owned
        self._lock = threading.Lock()
        self._pending = []              # exceptions from callbacks
        self._bhs = set()               # live BH objects
        self._timers = set()
        self._fds = {}                  # fd -> _FdHandler
        self._retired = []              # keepalives to drop in home thread
        self._reap_scheduled = False
        self._sigwake = None
        self._iothread = None
        self._depth = 0                 # Python callbacks running now
        self._checked_thread = None     # passed the home-thread check

    # --- state ----------------------------------------------------------
    def _live(self):
        if self._ptr is None:
            raise Error("this AioContext is closed")
        return self._ptr

    @property
    def closed(self):
        """True once close() has freed the context."""
        return self._ptr is None

    @property
    def name(self):
        """The context's name, shown in traces and the dump ('main', 'IO io0', ...)."""
        return B.str(lib.aiolab_aio_context_get_name(self._live()))

    @name.setter
    def name(self, value):
        if not isinstance(value, str) or not value:
            raise TypeError("name must be a non-empty str")
        lib.aiolab_aio_context_set_name(self._live(), B.s(value))

    def __repr__(self):
        if self._ptr is None:
            return "<aiolab.AioContext (closed)>"
        return f"<aiolab.AioContext {self.name!r}>"

    def _record(self, exc, what):
        """A callback raised: report it now, raise it later."""
        report_unraisable(exc, what)
        with self._lock:
            self._pending.append(exc)

    def _reraise(self):
        if B.interrupted:           # Ctrl-C taken by the cffi binding
            B.interrupted = False
            raise KeyboardInterrupt
        with self._lock:
            if not self._pending:
                return
            exc = self._pending.pop(0)
        raise exc

    def _safe(self, fn, what, default=None):
        """Wrap a user callback so that nothing unwinds into C."""
        def call(*args):
            self._depth += 1
            try:
                return fn(*args)
            except BaseException as exc:      # noqa: B902 (by design)
                self._record(exc, what)
                return default
            finally:
                self._depth -= 1
        return call

    def _retire(self, keepalive):
        """Drop a callback handle once C can no longer be running it.

        A removed handler (or deleted BH) may be running right now in the
        home thread, so the handle goes on a list.  A context that Python
        polls drops the list when a poll() returns (nothing is running
        then), or at once from the home thread outside callbacks; an
        IOThread's context (polled by C) drops it from a BH.
        """
        if keepalive is None:
            return
        with self._lock:
            self._retired.append(keepalive)
        if self._iothread is None:
            if self._depth == 0 and self._ptr is not None and \
                    B.rule_check(RULE_HOME_THREAD, "retire",
                                 self._ptr) is None:
                self._reap()
            return
        with self._lock:
            if self._reap_scheduled or self._ptr is None:
                return
            self._reap_scheduled = True
        self._oneshot(self._reap, "aiolab_reap_handles")

    def _reap(self):
        with self._lock:
            retired, self._retired = self._retired, []
            self._reap_scheduled = False
        for keepalive in retired:
            B.release(keepalive)

    def _oneshot(self, fn, name):
        """Schedule fn (which must not raise) once in the home thread."""
        box = []

        def run():
            try:
                fn()
            finally:
                B.release(box[0])
        h, keep = B.handle(run)
        box.append(keep)
        lib.aio_bh_schedule_oneshot_full(self._live(), B.VOID_CB, h,
                                         B.s(name))

    # --- polling --------------------------------------------------------
    def poll(self, blocking=False):
        """Run one iteration of the loop (aio_poll).

        With blocking=True, wait for an event or the next timer.  Returns
        True if a callback other than the notifier or an idle BH ran.
        Home thread only.  Raises the first exception a callback raised.
        """
        ptr = self._ptr
        if ptr is None:
            raise Error("this AioContext is closed")
        if self._pending:
            self._reraise()
        # The home thread never changes: check it once per thread.
        me = _get_ident()
        if me != self._checked_thread:
            check_rule(RULE_HOME_THREAD, "aio_poll", ptr)
            self._checked_thread = me
        if not blocking:
            progress = lib.aio_poll(ptr, False)
        else:
            # Something ready (a BH, an expired timer): this poll will not
            # sleep and needs no wake-up fd (the busy loop's case, where
            # swapping the fd twice would double the cost of a poll).
            # Ctrl-C then interrupts the next poll that waits.
            progress = lib.aiolab_aio_poll_ready(ptr)
            if progress >= 0:
                progress = bool(progress)
            elif self._sigwake is not None:
                progress = self._sigwake.poll(ptr)
            else:
                progress = lib.aio_poll(ptr, True)
        if self._retired and self._depth == 0:
            self._reap()
        if self._pending or B.interrupted:
            self._reraise()
        return progress

    def run_until(self, predicate, timeout=None):
        """Poll (blocking) until predicate() is true, or timeout seconds
        pass (then raise TimeoutError).  Home thread only."""
        import time
        deadline = None if timeout is None else time.monotonic() + timeout
        t = None
        while not predicate():
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("condition not met in time")
                if t is None:
                    t = self.timer(lambda: None)
                t.mod_ns(int(left * 1e9), relative=True)
            self.poll(blocking=True)
        if t is not None:
            t.close()

    def notify(self):
        """Make the current or next blocking poll return (aio_notify).
        Any thread."""
        lib.aio_notify(self._live())

    def compute_timeout(self):
        """What a blocking poll would wait now, in ns (-1 forever).
        Home thread only."""
        ptr = self._live()
        check_rule(RULE_HOME_THREAD, "aiolab_aio_context_compute_timeout",
                   ptr)
        return lib.aiolab_aio_context_compute_timeout(ptr)

    # --- BHs --------------------------------------------------------------
    def bh(self, fn, name=None, guard=None):
        """A bottom half running fn() in this context's thread each time
        it is scheduled.  guard: a device's MemReentrancyGuard, engaged
        while fn runs (aio_bh_new_guarded).  Any thread."""
        return BH(self, fn, name, guard)

    def schedule_oneshot(self, fn, name=None):
        """Run fn() once, soon, in this context's thread
        (aio_bh_schedule_oneshot).  Any thread."""
        check_callable(fn, "fn")
        safe = self._safe(fn, name or getattr(fn, "__name__", "oneshot"))
        self._oneshot(safe, name or getattr(fn, "__name__", "oneshot"))

    # --- timers -----------------------------------------------------------
    def timer(self, fn, clock="realtime", scale="ns"):
        """A timer running fn() in this context's thread when it expires.
        Arm it with .mod(); any thread."""
        return Timer(self, fn, clock, scale)

    # --- fd handlers --------------------------------------------------------
    def set_fd_handler(self, fd, read=None, write=None, poll=None,
                       poll_ready=None):
        """aio_set_fd_handler: register (or, with all None, remove) fd's
        callbacks.  poll() -> bool is a busy-poll check (needs poll_ready).
        Any thread."""
        fd = _fileno(fd)
        for what, fn in (("read", read), ("write", write), ("poll", poll),
                         ("poll_ready", poll_ready)):
            if fn is not None:
                check_callable(fn, what)
        ptr = self._live()
        old = self._fds.pop(fd, None)
        if read or write or poll:
            h = _FdHandler(self, fd, read, write, poll, poll_ready)
            self._fds[fd] = h
            lib.aio_set_fd_handler(ptr, fd, *h.c_args())
        else:
            lib.aio_set_fd_handler(ptr, fd, B.NULL, B.NULL, B.NULL, B.NULL,
                                   B.NULL)
        if old:
            old.retire()

    def add_reader(self, fd, fn):
        """Call fn() whenever fd is readable (level-triggered)."""
        fd = _fileno(fd)
        old = self._fds.get(fd)
        self.set_fd_handler(fd, read=fn, write=old and old.write)

    def remove_reader(self, fd):
        """Stop watching fd for reading."""
        fd = _fileno(fd)
        old = self._fds.get(fd)
        self.set_fd_handler(fd, read=None, write=old and old.write)

    def add_writer(self, fd, fn):
        """Call fn() whenever fd is writable."""
        fd = _fileno(fd)
        old = self._fds.get(fd)
        self.set_fd_handler(fd, read=old and old.read, write=fn)

    def remove_writer(self, fd):
        """Stop watching fd for writing."""
        fd = _fileno(fd)
        old = self._fds.get(fd)
        self.set_fd_handler(fd, read=old and old.read, write=None)

    # --- event notifiers ----------------------------------------------------
    def set_event_notifier(self, notifier, read=None, poll=None,
                           poll_ready=None):
        """aio_set_event_notifier: call read() when notifier is set; all
        None removes it.  Any thread."""
        if not isinstance(notifier, EventNotifier):
            raise TypeError("notifier must be an aiolab.EventNotifier")
        notifier._attach(self, read, poll, poll_ready)

    def set_event_notifier_poll(self, notifier, begin=None, end=None):
        """aio_set_event_notifier_poll: callbacks when busy-polling of the
        notifier starts and stops."""
        if not isinstance(notifier, EventNotifier):
            raise TypeError("notifier must be an aiolab.EventNotifier")
        notifier._attach_poll(self, begin, end)

    # --- parameters -----------------------------------------------------------
    def set_poll_params(self, max_ns, grow=0, shrink=0):
        """Adaptive polling: poll-max-ns, poll-grow, poll-shrink."""
        for v, what in ((max_ns, "max_ns"), (grow, "grow"),
                        (shrink, "shrink")):
            check_int(v, what)
        call_errp(lib.aio_context_set_poll_params, self._live(), max_ns,
                  grow, shrink)

    @property
    def poll_params(self):
        """(poll-max-ns, poll-grow, poll-shrink) of this context."""
        ptrs = [B.int64p() for _ in range(3)]
        lib.aiolab_aio_context_get_poll_params(self._live(), *ptrs)
        return tuple(B.int64_value(p) for p in ptrs)

    @property
    def poll_ns(self):
        """The current adaptive busy-poll time, ns."""
        return lib.aiolab_aio_context_get_poll_ns(self._live())

    @property
    def fdmon(self):
        """The fd monitor: 'poll', 'epoll' or 'io_uring'."""
        return B.str(lib.aiolab_aio_context_fdmon_name(self._live()))

    @fdmon.setter
    def fdmon(self, name):
        if not isinstance(name, str):
            raise TypeError("fdmon must be a str")
        call_errp(lib.aiolab_aio_context_set_fdmon, self._live(), B.s(name))

    def set_thread_pool_params(self, min, max):
        """Bounds of this context's thread pool (thread-pool-min/-max)."""
        check_int(min, "min")
        check_int(max, "max")
        call_errp(lib.aio_context_set_thread_pool_params, self._live(), min,
                  max)

    def thread_pool_stats(self):
        """A dict describing this context's thread pool, or None."""
        st = B.ffi.new("AiolabThreadPoolStats *") if B.name == "cffi" \
            else None
        if st is None:
            return _swig_pool_stats(self._live())
        if not lib.aiolab_thread_pool_get_stats(self._live(), st):
            return None
        return {k: getattr(st, k) for k in (
            "cur_threads", "idle_threads", "max_threads", "min_threads",
            "queued", "completed", "threads_created")}

    # --- tasks ----------------------------------------------------------------
    def create_task(self, coro, name=None):
        """Run an `async def` coroutine as a task on this context: the
        Python image of a coroutine_fn.  Any thread."""
        from ._tasks import Task
        return Task(self, coro, name)

    def to_thread(self, fn, *args):
        """Awaitable: run fn(*args) on this context's thread pool and
        resume with its result.  Only inside a task running on this
        context."""
        from ._tasks import to_thread
        return to_thread(self, fn, *args)

    def run_until_complete(self, awaitable, timeout=None):
        """Poll until a task (or coroutine, made a task) is done; return
        its result.  Home thread only."""
        from ._tasks import Task
        task = awaitable if isinstance(awaitable, Task) else \
            self.create_task(awaitable)
        self.run_until(task.done, timeout)
        return task.result()

    # --- embedding ------------------------------------------------------------
    def fileno(self):
        """The fd to wait on in a foreign loop (aio_context_get_fd)."""
        ptr = self._live()
        check_rule(RULE_HOME_THREAD, "aio_context_get_fd", ptr)
        return lib.aio_context_get_fd(ptr)

    def prepare(self):
        """aio_context_prepare(): announce a wait; ns until the next timer, -1 for none, 0 if work is ready.  Home thread only."""
        ptr = self._live()
        check_rule(RULE_HOME_THREAD, "aio_context_prepare", ptr)
        return lib.aio_context_prepare(ptr)

    def check(self):
        """aio_context_check(): withdraw the announcement; True if dispatch() has work.  Home thread only."""
        ptr = self._live()
        check_rule(RULE_HOME_THREAD, "aio_context_check", ptr)
        return lib.aio_context_check(ptr)

    def dispatch(self):
        """aio_context_dispatch(): run ready BHs, handlers and timers.  Home thread only."""
        ptr = self._live()
        check_rule(RULE_HOME_THREAD, "aio_context_dispatch", ptr)
        lib.aio_context_dispatch(ptr)
        self._reraise()

    # --- lifetime -------------------------------------------------------------
    def close(self):
        """Run what is pending to completion, delete every BH, timer and
        handler, and free the context.  Home thread only.  Raises
        aiolab.Error (and leaves the context open) if BHs keep coming."""
        if self._ptr is None:
            return
        if not self._owned:
            raise Error(f"AioContext '{self.name}' belongs to "
                        f"{'an IOThread' if self._iothread else 'the main loop'}"
                        " and is closed with it")
        ptr = self._ptr
        check_rule(RULE_HOME_THREAD, "aio_context_unref", ptr)
        for _ in range(1000):
            while lib.aio_poll(ptr, False):
                pass
            if lib.aiolab_aio_context_compute_timeout(ptr) != 0:
                break
        else:
            raise Error(f"AioContext '{self.name}' still has pending BHs "
                        "after 1000 polls; not closed")
        for bh in list(self._bhs):
            bh.delete()
        for t in list(self._timers):
            t.close()
        for fd in list(self._fds):
            self.set_fd_handler(fd)
        if self._sigwake:
            self._sigwake.close(self)
            self._sigwake = None
        while lib.aio_poll(ptr, False):      # run the reap BHs
            pass
        self._reap()
        lib.aiolab_clear_current_aio_context(ptr)
        self._ptr = None
        lib.aio_context_unref(ptr)
        self._reraise()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self._owned:
            self.close()

    def _install_sigwake(self):
        """Let SIGINT wake a blocking poll in the main thread at once."""
        if threading.current_thread() is threading.main_thread():
            self._sigwake = _SigWake(self)


def context_for(ptr):
    """The AioContext object for a C pointer (or its address, from a C
    callback): the one Python already has, or a new, unowned wrapper."""
    if ptr is None or (not isinstance(ptr, int) and B.is_null(ptr)):
        return None
    addr = ptr if isinstance(ptr, int) else B.addr(ptr)
    ctx = _contexts.get(addr)
    if ctx is not None and ctx._ptr is not None:
        return ctx
    if isinstance(ptr, int):
        raise Error(f"no Python object for AioContext at 0x{addr:x}")
    return AioContext._wrap(ptr)


def _swig_pool_stats(ptr):
    st = lib.AiolabThreadPoolStats()
    if not lib.aiolab_thread_pool_get_stats(ptr, st):
        return None
    return {k: getattr(st, k) for k in (
        "cur_threads", "idle_threads", "max_threads", "min_threads",
        "queued", "completed", "threads_created")}


def _fileno(fd):
    if hasattr(fd, "fileno"):
        fd = fd.fileno()
    check_int(fd, "fd", minimum=0, maximum=INT_MAX)
    return fd


class _FdHandler:
    """The callbacks of one fd.  aio_set_fd_handler() passes one opaque to
    all four; the trampolines call this object with their role."""

    def __init__(self, ctx, fd, read, write, poll, poll_ready):
        self.ctx, self.fd = ctx, fd
        self.read, self.write = read, write
        name = f"fd {fd}"
        self.fns = {}
        for role, fn, default in ((READ, read, None), (WRITE, write, None),
                                  (POLL, poll, False),
                                  (POLL_READY, poll_ready, None)):
            if fn is not None:
                self.fns[role] = ctx._safe(fn, f"{name}", default)
        h, self.keep = B.handle(self)
        self.h = h

    def __call__(self, role):
        fn = self.fns.get(role)
        return fn() if fn else False

    def c_args(self):
        r, w, p, pr = B.FD_CBS
        f = self.fns
        return [r if READ in f else B.NULL, w if WRITE in f else B.NULL,
                p if POLL in f else B.NULL,
                pr if POLL_READY in f else B.NULL, self.h]

    def retire(self):
        self.ctx._retire(self.keep)
        self.keep = None


class BH:
    """A bottom half (QEMUBH).  schedule() from any thread; the callback
    runs in the context's thread, once per schedule (several schedules
    before it runs make one run)."""

    def __init__(self, ctx, fn, name=None, guard=None):
        check_callable(fn, "fn")
        if name is not None and not isinstance(name, str):
            raise TypeError("name must be a str")
        if guard is not None and not hasattr(guard, "_guard_ptr"):
            raise TypeError("guard must be an aiolab.MemReentrancyGuard")
        self.ctx = ctx
        self.name = name or getattr(fn, "__name__", "bh")
        safe = ctx._safe(fn, f"BH '{self.name}'")
        safe.guard = guard      # C uses it until the handle is retired
        h, self._keep = B.handle(safe)
        self._ptr = lib.aio_bh_new_full(
            ctx._live(), B.VOID_CB, h, B.s(self.name),
            guard._guard_ptr() if guard is not None else B.NULL)
        ctx._bhs.add(self)

    def _live(self):
        if self._ptr is None:
            raise Error(f"BH '{self.name}' was deleted")
        return self._ptr

    def schedule(self):
        """Run the callback soon (qemu_bh_schedule).  Any thread."""
        ptr = self._ptr                 # _live(), inline: the hot path
        if ptr is None:
            self._live()
        lib.qemu_bh_schedule(ptr)

    def schedule_idle(self):
        """Run it within 10 ms; not counted as progress."""
        lib.qemu_bh_schedule_idle(self._live())

    def cancel(self):
        """Unschedule it if it has not run (exact only in its thread)."""
        lib.qemu_bh_cancel(self._live())

    def delete(self):
        """Cancel and free it (qemu_bh_delete); it never runs again."""
        if self._ptr is None:
            return
        lib.qemu_bh_delete(self._ptr)
        self._ptr = None
        self.ctx._bhs.discard(self)
        self.ctx._retire(self._keep)
        self._keep = None

    @property
    def deleted(self):
        """True once delete() was called."""
        return self._ptr is None

    def __repr__(self):
        return f"<aiolab.BH {self.name!r}{' deleted' if self.deleted else ''}>"


class Timer:
    """A QEMUTimer in a context.  mod()/delete() from any thread; the
    callback runs in the context's thread."""

    def __init__(self, ctx, fn, clock="realtime", scale="ns", _tlg=None):
        check_callable(fn, "fn")
        if clock not in CLOCKS:
            raise ValueError(f"clock must be one of {sorted(CLOCKS)}, not "
                             f"{clock!r}")
        if scale not in SCALES:
            raise ValueError(f"scale must be one of {sorted(SCALES)}, not "
                             f"{scale!r}")
        self.ctx, self.clock, self.scale = ctx, clock, scale
        safe = ctx._safe(fn, f"timer {getattr(fn, '__name__', '')}")
        h, self._keep = B.handle(safe)
        if _tlg == "main":
            new = {"ns": lib.timer_new_ns, "us": lib.timer_new_us,
                   "ms": lib.timer_new_ms}[scale]
            self._ptr = new(CLOCKS[clock], B.VOID_CB, h)
        else:
            self._ptr = lib.aio_timer_new(ctx._live(), CLOCKS[clock],
                                          SCALES[scale], B.VOID_CB, h)
        ctx._timers.add(self)

    def _live(self):
        if self._ptr is None:
            raise Error("this Timer is closed")
        return self._ptr

    def now(self):
        """The timer's clock now, in its scale."""
        return lib.qemu_clock_get_ns(CLOCKS[self.clock]) // SCALES[self.scale]

    def mod(self, expire_time):
        """Arm it to expire at expire_time (its clock, its scale)."""
        check_int(expire_time, "expire_time")
        lib.timer_mod(self._live(), expire_time)

    def mod_ns(self, ns, relative=False):
        """Arm it at ns (absolute, or from now if relative)."""
        check_int(ns, "ns")
        if relative:
            ns += lib.qemu_clock_get_ns(CLOCKS[self.clock])
        lib.timer_mod_ns(self._live(), ns)

    def mod_anticipate(self, expire_time):
        """Arm it, but only ever earlier than it is armed."""
        check_int(expire_time, "expire_time")
        lib.timer_mod_anticipate(self._live(), expire_time)

    def delete(self):
        """Disarm it (timer_del)."""
        lib.timer_del(self._live())

    @property
    def pending(self):
        """Is the timer armed?"""
        return lib.timer_pending(self._live())

    @property
    def expire_time_ns(self):
        """Expiry in ns, or -1."""
        v = lib.timer_expire_time_ns(self._live())
        return -1 if v >= 2**63 else v

    def close(self):
        """Disarm and free it.  From another thread the free happens in
        the context's thread (its callback may be running there)."""
        if self._ptr is None:
            return
        ptr, keep = self._ptr, self._keep
        self._ptr = self._keep = None
        self.ctx._timers.discard(self)
        lib.timer_del(ptr)
        home = B.rule_check(RULE_HOME_THREAD, "timer_free",
                            B.ptr_arg(self.ctx._ptr)) is None \
            if self.ctx._ptr is not None else True
        if home:
            lib.timer_free(ptr)
            self.ctx._retire(keep)
        else:
            def free():
                lib.timer_free(ptr)
                B.release(keep)
            self.ctx._oneshot(free, "aiolab_timer_free")


class EventNotifier:
    """An eventfd one thread sets and an AioContext waits on."""

    def __init__(self, active=False):
        self._e = B.new_notifier()
        ret = lib.event_notifier_init(raw(self._e), 1 if active else 0)
        if ret < 0:
            raise OSError(-ret, os.strerror(-ret))
        self._addr = B.addr(raw(self._e))
        self._ctx = None
        self._cbs = [None] * 5
        self._keeps = []
        self._closed = False

    def _live(self):
        if self._closed:
            raise Error("this EventNotifier is closed")
        return raw(self._e)

    def set(self):
        """Make it readable (event_notifier_set).  Any thread."""
        ret = lib.event_notifier_set(self._live())
        if ret < 0:
            raise OSError(-ret, os.strerror(-ret))

    def test_and_clear(self):
        """Consume the pending set; True if it was set."""
        return bool(lib.event_notifier_test_and_clear(self._live()))

    def fileno(self):
        """The eventfd, to poll for readability."""
        return lib.event_notifier_get_fd(self._live())

    def _dispatch(self, role):
        fn = self._cbs[role]
        return fn() if fn else False

    def _attach(self, ctx, read, poll, poll_ready):
        e = self._live()
        for what, fn in (("read", read), ("poll", poll),
                         ("poll_ready", poll_ready)):
            if fn is not None:
                check_callable(fn, what)
        if self._ctx is not None and self._ctx is not ctx:
            raise Error("this EventNotifier is registered in another "
                        "AioContext; remove it there first")
        wrap = (lambda fn, kind, d=None: ctx._safe(
            lambda: fn(self), f"{kind} of EventNotifier", d)
            if fn else None)
        self._cbs[READ] = wrap(read, "read")
        self._cbs[POLL] = (ctx._safe(poll, "poll of EventNotifier", False)
                           if poll else None)
        self._cbs[POLL_READY] = wrap(poll_ready, "poll_ready")
        with _notifiers_lock:
            _notifiers[self._addr] = self
        cbs = B.NOTIFIER_CBS
        if read or poll:
            self._ctx = ctx
            lib.aio_set_event_notifier(
                ctx._live(), e, cbs[READ] if read else B.NULL,
                cbs[POLL] if poll else B.NULL,
                cbs[POLL_READY] if poll_ready else B.NULL)
        else:
            lib.aio_set_event_notifier(ctx._live(), e, B.NULL, B.NULL,
                                       B.NULL)
            self._ctx = None

    def _attach_poll(self, ctx, begin, end):
        for what, fn in (("begin", begin), ("end", end)):
            if fn is not None:
                check_callable(fn, what)
        self._cbs[POLL_BEGIN] = ctx._safe(lambda: begin(self),
                                          "poll_begin") if begin else None
        self._cbs[POLL_END] = ctx._safe(lambda: end(self),
                                        "poll_end") if end else None
        cbs = B.NOTIFIER_CBS
        lib.aio_set_event_notifier_poll(
            ctx._live(), self._live(),
            cbs[POLL_BEGIN] if begin else B.NULL,
            cbs[POLL_END] if end else B.NULL)

    def close(self):
        """Close the eventfd.  It must not be registered any more."""
        if self._closed:
            return
        if self._ctx is not None and not self._ctx.closed:
            raise Error("this EventNotifier is still registered in "
                        f"AioContext '{self._ctx.name}': remove it first "
                        "(set_event_notifier(n, None))")
        lib.event_notifier_cleanup(raw(self._e))
        self._closed = True
        with _notifiers_lock:
            _notifiers.pop(self._addr, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class _SigWake:
    """A pipe registered in a context and made the signal wake-up fd while
    the main thread blocks in poll(), so that Ctrl-C interrupts it at once
    even when the signal is delivered to another thread."""

    def __init__(self, ctx):
        self.r, self.w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.bytes = b""

        def drain():
            try:
                self.bytes += os.read(self.r, 512)
            except BlockingIOError:
                pass
        # Pollable (io_poll never ready), so that it does not change which
        # polls consult the fd monitor.
        self.handler = (drain, lambda: False, lambda: None)
        ctx.set_fd_handler(self.r, read=drain, poll=lambda: False,
                           poll_ready=lambda: None)
        lib.aio_poll(ctx._ptr, False)       # consume the registration notify

    def poll(self, ptr):
        """A blocking aio_poll() that may sleep (AioContext.poll() runs
        the ones that will not without the wake-up fd)."""
        try:
            old = signal.set_wakeup_fd(self.w, warn_on_full_buffer=False)
        except ValueError:
            return lib.aio_poll(ptr, True)
        try:
            return lib.aio_poll(ptr, True)
        finally:
            signal.set_wakeup_fd(old)
            if self.bytes and old >= 0:
                try:
                    os.write(old, self.bytes)   # hand them on (asyncio)
                except OSError:
                    pass
            self.bytes = b""

    def close(self, ctx):
        ctx.set_fd_handler(self.r)
        os.close(self.r)
        os.close(self.w)
