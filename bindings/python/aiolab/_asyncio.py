# SPDX-License-Identifier: MIT
"""Run an AioContext inside an asyncio event loop (Jupyter's, say).

The adapter drives the context with aio_context_prepare/check/dispatch,
the job QEMU gives to its GSource callbacks.  Waiting on the context's fd
alone would lose wake-ups: aio_notify() writes the notifier only while a
waiter has announced itself, and prepare() is that announcement.

    handle = aiolab.attach_to_asyncio(ctx)     # in the loop's thread
    ...                                        # ctx's BHs, timers, fds run
    handle.detach()
"""
import asyncio

from ._core import Error


class AsyncioAttachment:
    def __init__(self, ctx, loop):
        self.ctx, self.loop = ctx, loop
        self._timer = None
        self._scheduled = False
        self._fd = ctx.fileno()
        self._attached = True
        loop.add_reader(self._fd, self._run)
        self._arm()

    def _arm(self):
        """Announce (prepare) and arrange to run when it is time."""
        if not self._attached:
            return
        ns = self.ctx.prepare()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if ns == 0:
            if not self._scheduled:
                self._scheduled = True
                self.loop.call_soon(self._run)
        elif ns > 0:
            self._timer = self.loop.call_later(ns / 1e9, self._run)
        # ns < 0: nothing until the fd becomes readable.

    def _run(self):
        self._scheduled = False
        if not self._attached or self.ctx.closed:
            return
        try:
            if self.ctx.check():
                self.ctx.dispatch()
        finally:
            self._arm()

    def detach(self):
        """Stop driving the context from the loop."""
        if not self._attached:
            return
        self._attached = False
        self.loop.remove_reader(self._fd)
        if self._timer is not None:
            self._timer.cancel()
        if not self.ctx.closed:
            self.ctx.check()        # withdraw the last announcement


def attach_to_asyncio(ctx, loop=None):
    """Drive ctx from an asyncio loop (default: the running one, else the
    current thread's).  Call it in ctx's home thread, which must be the
    loop's thread.  Returns an object with detach()."""
    if loop is None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = asyncio.get_event_loop_policy().get_event_loop()
    if not isinstance(loop, asyncio.AbstractEventLoop):
        raise TypeError("loop must be an asyncio event loop")
    if ctx.closed:
        raise Error("this AioContext is closed")
    return AsyncioAttachment(ctx, loop)
