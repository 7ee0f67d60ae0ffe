# SPDX-License-Identifier: MIT
"""Tasks: `async def` functions running on an AioContext -- the Python
image of a coroutine_fn.

A C coroutine_fn yields and is resumed by a BH or a completion callback
(aio_co_wake).  A Task does the same with a Python coroutine: it is
stepped (coro.send) only from BHs in its context's thread, and an awaited
operation (aiolab.sleep, ctx.to_thread, another Task, a Future) resumes
it by scheduling the next step as a BH.  No Python frame ever runs on a C
coroutine stack.

    async def work():
        await aiolab.sleep(1_000_000)            # 1 ms, on a context timer
        n = await ctx.to_thread(os.cpu_count)    # on ctx's thread pool
        return n

    task = ctx.create_task(work())
    ctx.run_until_complete(task)
"""
import threading

from ._backend import B, lib
from ._core import (AioContext, Error, RULE_HOME_THREAD, check_callable,
                    check_int, check_rule)

_current = threading.local()        # the task being stepped in this thread


def current_task():
    """The Task running in this thread now, or None."""
    return getattr(_current, "task", None)


class Future:
    """A result that arrives later.  set_result()/set_exception() from any
    thread; tasks awaiting it resume in their own context's thread."""

    def __init__(self):
        self._lock = threading.Lock()
        self._done = False
        self._result = None
        self._exc = None
        self._callbacks = []

    def done(self):
        """Has a result or an exception been set?"""
        with self._lock:
            return self._done

    def result(self):
        """The result; raises the exception, or Error if not ready."""
        with self._lock:
            if not self._done:
                raise Error("the result is not ready yet")
            if self._exc is not None:
                raise self._exc
            return self._result

    def exception(self):
        """The exception, or None; Error if not ready."""
        with self._lock:
            if not self._done:
                raise Error("the result is not ready yet")
            return self._exc

    def _finish(self, result, exc):
        with self._lock:
            if self._done:
                raise Error("this Future already has a result")
            self._done, self._result, self._exc = True, result, exc
            callbacks, self._callbacks = self._callbacks, []
        for cb in callbacks:
            cb(self)

    def set_result(self, result):
        """Complete with a result (any thread)."""
        self._finish(result, None)

    def set_exception(self, exc):
        """Complete with an exception (any thread)."""
        if not isinstance(exc, BaseException):
            raise TypeError("set_exception() needs an exception")
        self._finish(None, exc)

    def add_done_callback(self, fn):
        """fn(future) when done (at once if already done).  fn runs in the
        thread that completes the future: keep it short."""
        check_callable(fn, "fn")
        with self._lock:
            if not self._done:
                self._callbacks.append(fn)
                return
        fn(self)

    def __await__(self):
        if not self.done():
            yield self
        return self.result()


class Task(Future):
    """An `async def` coroutine stepped by BHs on one AioContext."""

    def __init__(self, ctx, coro, name=None):
        super().__init__()
        if not isinstance(ctx, AioContext):
            raise TypeError("ctx must be an aiolab.AioContext")
        if not hasattr(coro, "send") or not hasattr(coro, "throw"):
            raise TypeError("create_task() needs a coroutine (call the "
                            "async def function), not "
                            f"{type(coro).__name__}")
        self.ctx = ctx
        self.name = name or getattr(coro, "__qualname__", "task")
        self._coro = coro
        self._retrieved = False
        ctx._oneshot(lambda: self._step(None, None), "aiolab_task_step")

    def _wakeup(self, future):
        exc = future._exc
        value = None if exc else future._result
        if self.ctx.closed:
            return
        self.ctx._oneshot(lambda: self._step(value, exc), "aiolab_task_step")

    def _step(self, value, exc):
        prev = getattr(_current, "task", None)
        _current.task = self
        try:
            if exc is not None:
                awaited = self._coro.throw(exc)
            else:
                awaited = self._coro.send(value)
        except StopIteration as stop:
            self._finish(stop.value, None)
            return
        except BaseException as e:                 # noqa: B902
            self._finish(None, e)
            if isinstance(e, (KeyboardInterrupt, SystemExit)):
                self.ctx._record(e, f"task {self.name}")
            return
        finally:
            _current.task = prev
        if not isinstance(awaited, Future):
            self._coro.close()
            self._finish(None, Error(
                f"task {self.name} awaited {awaited!r}: aiolab tasks can "
                "await aiolab awaitables only (aiolab.sleep, ctx.to_thread, "
                "a Task or Future), not asyncio ones"))
            return
        awaited.add_done_callback(self._wakeup)

    def result(self):
        """The task's return value; raises its exception, or Error if not done."""
        self._retrieved = True
        return super().result()

    def exception(self):
        """The exception the task raised, or None; Error if not done."""
        self._retrieved = True
        return super().exception()

    def __repr__(self):
        state = "done" if self.done() else "pending"
        return f"<aiolab.Task {self.name!r} {state}>"

    def __del__(self):
        if self._done and self._exc is not None and not self._retrieved:
            from ._core import report_unraisable
            report_unraisable(self._exc, f"task {self.name} (exception "
                              "never retrieved)")


def sleep(ns):
    """Awaitable: resume after ns nanoseconds (QEMU_CLOCK_REALTIME), on a
    timer of the running task's context (qemu_co_sleep_ns)."""
    check_int(ns, "ns", minimum=0)
    task = current_task()
    if task is None:
        raise Error("aiolab.sleep() is valid only inside a task running on "
                    "an AioContext (ctx.create_task)")
    fut = Future()
    box = []

    def fire():
        t = box.pop()
        t.close()
        fut.set_result(None)
    t = task.ctx.timer(fire)
    box.append(t)
    t.mod_ns(ns, relative=True)
    return fut


def to_thread(ctx, fn, *args):
    """Awaitable: fn(*args) on ctx's thread pool (thread_pool_submit_aio);
    the task resumes in ctx with its result (or exception)."""
    check_callable(fn, "fn")
    task = current_task()
    if task is None or task.ctx is not ctx:
        raise Error("to_thread() is valid only inside a task running on "
                    "this AioContext (it submits to this context's thread "
                    "pool, from its thread)")
    ptr = ctx._live()
    check_rule(RULE_HOME_THREAD, "thread_pool_submit_aio", ptr)
    fut = Future()
    outcome = {}
    keeps = []

    def work():                 # on a worker thread
        try:
            outcome["result"] = fn(*args)
        except BaseException as e:             # noqa: B902
            outcome["exc"] = e
        return 0

    def done(ret):              # in ctx's thread, once
        try:
            if ret < 0:
                import os
                fut.set_exception(OSError(-ret, os.strerror(-ret)))
            elif "exc" in outcome:
                fut.set_exception(outcome["exc"])
            else:
                fut.set_result(outcome.get("result"))
        finally:
            for k in keeps:
                ctx._retire(k)

    hw, kw = B.handle(work)
    hd, kd = B.handle(done)
    keeps += [kw, kd]
    lib.thread_pool_submit_aio(B.INT_CB, hw, B.COMPLETION_CB, hd)
    return fut
