# SPDX-License-Identifier: MIT
"""The block layer from Python: nodes (BlockDriverState), BlockBackends,
drained sections, AioContext changes and their notifiers.

    with aiolab.bql():
        bs = aiolab.BlockDriverState.open("driver=null-co,size=1M")
        blk = aiolab.BlockBackend()
        blk.insert(bs)
        blk.pwrite(0, b"x" * 512)
        with bs.drained():              # bdrv_drained_begin/end
            assert blk.in_flight == 0

Management calls (open, drains, context changes) are global-state code:
hold the BQL (`with aiolab.bql():`), or they raise with the message the C
debug build would abort with.  I/O (pread, aio_read...) runs in the
calling thread's current AioContext, as in QEMU 9.0.
"""
import contextlib
import os
import weakref

from ._backend import B, lib, raw
from ._core import (INT_MAX, AioContext, Error, RULE_GLOBAL_STATE,
                    RULE_HAS_CONTEXT, call_errp, check_callable, check_int,
                    check_rule, context_for)
from ._tasks import Future

BDRV_O_RDWR = 0x0002
BDRV_O_NOCACHE = 0x0020
BDRV_REQ_MAY_UNMAP = 0x4

_nodes: "weakref.WeakValueDictionary[int, BlockDriverState]" = \
    weakref.WeakValueDictionary()           # address -> BlockDriverState
# Raised by the call that changed a context:
_notifier_excs: "list[BaseException]" = []


def _gs(func):
    check_rule(RULE_GLOBAL_STATE, func)


def _check_io(ret, what):
    if ret < 0:
        raise OSError(-ret, f"{what}: {os.strerror(-ret)}")
    return ret


def _options(options):
    """A -blockdev option string from a str or a dict."""
    if options is None:
        return None
    if isinstance(options, dict):
        parts = []
        for k, v in options.items():
            if isinstance(v, bool):
                v = "on" if v else "off"
            parts.append(f"{k}={v}")
        return ",".join(parts)
    if isinstance(options, str):
        return options
    raise TypeError("options must be a str ('driver=null-co,size=1M') or "
                    "a dict")


class _ContextNotifier:
    """An AioContext notifier pair: attached(ctx), detach().  One opaque
    for both C callbacks: called with the context's address, or nothing."""

    def __init__(self, owner, attached, detach, add, remove):
        self.owner = owner
        self.attached, self.detach = attached, detach
        self._remove = remove
        self.h, self.keep = B.handle(self)
        add(owner._live(), B.ATTACHED_CB, B.VOID_CB, self.h)

    def __call__(self, addr=None):
        try:
            if addr is None:
                if self.detach:
                    self.detach()
            elif self.attached:
                self.attached(context_for(addr))
        except BaseException as exc:            # noqa: B902
            # Runs in the main loop, inside a drained section: report it
            # and raise it from the call that changed the context.
            from ._core import report_unraisable
            report_unraisable(exc, "AioContext notifier")
            _notifier_excs.append(exc)

    def remove(self):
        """Stop being called (bdrv/blk_remove_aio_context_notifier)."""
        if self.keep is None:
            return
        _gs("bdrv_remove_aio_context_notifier")
        self._remove(self.owner._live(), B.ATTACHED_CB, B.VOID_CB, self.h)
        B.release(self.keep)
        self.keep = None


class BlockDriverState:
    """A node of the block graph (QEMU's BlockDriverState)."""

    def __init__(self):
        raise TypeError("use BlockDriverState.open() or .find()")

    @classmethod
    def _wrap(cls, ptr, owned):
        if B.is_null(ptr):
            return None
        addr = B.addr(ptr)
        node = _nodes.get(addr)
        if node is None or node._ptr is None:
            node = cls.__new__(cls)
            node._ptr, node._owned = ptr, owned
            node._notifiers = []
            _nodes[addr] = node
        return node

    @classmethod
    def open(cls, options=None, filename=None, reference=None,
             read_only=False, nocache=False):
        """bdrv_open(): a node from a -blockdev style option string (or
        dict), e.g. "driver=file,filename=disk.img,aio=threads,node-name=d0".
        Main loop, BQL held."""
        _gs("bdrv_open")
        flags = (0 if read_only else BDRV_O_RDWR) | \
            (BDRV_O_NOCACHE if nocache else 0)
        ptr = call_errp(lib.bdrv_open, B.s(filename), B.s(reference),
                        B.s(_options(options)), flags)
        return cls._wrap(ptr, owned=True)

    @classmethod
    def find(cls, node_name):
        """bdrv_find_node(): the node called node_name, or None."""
        _gs("bdrv_find_node")
        return cls._wrap(lib.bdrv_find_node(B.s(node_name)), owned=False)

    def _live(self):
        if self._ptr is None:
            raise Error("this node has been released (unref)")
        return self._ptr

    @property
    def node_name(self):
        """The node name (auto-generated '#blockN' if none was given)."""
        return B.str(lib.bdrv_get_node_name(self._live()))

    @property
    def driver(self):
        """The driver's name ('file', 'null-co', 'blkdebug', ...)."""
        return B.str(lib.bdrv_get_format_name(self._live()))

    @property
    def length(self):
        """Length in bytes."""
        return _check_io(lib.bdrv_getlength(self._live()), "bdrv_getlength")

    @property
    def read_only(self):
        """Was it opened read-only?"""
        return lib.bdrv_is_read_only(self._live())

    @property
    def ctx(self):
        """The AioContext the node lives in."""
        return context_for(lib.bdrv_get_aio_context(self._live()))

    @property
    def in_flight(self):
        """Requests in flight on the node (bdrv_get_in_flight)."""
        return lib.bdrv_get_in_flight(self._live())

    @property
    def quiesce_counter(self):
        """How many drained sections hold the node."""
        return lib.bdrv_get_quiesce_counter(self._live())

    @property
    def refcnt(self):
        """The node's reference count."""
        return lib.aiolab_bdrv_get_refcnt(self._live())

    @property
    def request_alignment(self):
        """The smallest request alignment the node needs (512 or 4096 with O_DIRECT)."""
        return lib.aiolab_bdrv_get_request_alignment(self._live())

    def child(self, name):
        """The node behind this node's child edge `name` ("file",
        "image", ...), or None."""
        c = lib.aiolab_bdrv_find_child(self._live(), B.s(name))
        return None if B.is_null(c) else \
            BlockDriverState._wrap(lib.aiolab_bdrv_child_bs(c), owned=False)

    # --- drained sections -----------------------------------------------
    def drained_begin(self):
        """bdrv_drained_begin(): quiesce the node and its parents, waiting until nothing is in flight.  BQL held."""
        _gs("bdrv_drained_begin")
        lib.bdrv_drained_begin(self._live())

    def drained_end(self):
        """bdrv_drained_end(): end the section (never polls).  BQL held."""
        _gs("bdrv_drained_end")
        if self.quiesce_counter <= 0:
            raise Error(f"bdrv_drained_end() on node '{self.node_name}', "
                        "which is not drained (unbalanced end)")
        lib.bdrv_drained_end(self._live())

    @contextlib.contextmanager
    def drained(self):
        """`with bs.drained():` -- the node and its parents quiesced: no
        request in flight and none issued until the block ends."""
        self.drained_begin()
        try:
            yield self
        finally:
            self.drained_end()

    def drain(self):
        """bdrv_drain(): begin and end at once."""
        _gs("bdrv_drain")
        lib.bdrv_drain(self._live())

    # --- AioContext changes ----------------------------------------------------
    def change_aio_context(self, ctx):
        """bdrv_try_change_aio_context(): move the node's whole connected
        graph to ctx inside a drain, or raise (and change nothing)."""
        if not isinstance(ctx, AioContext):
            raise TypeError("ctx must be an aiolab.AioContext")
        _gs("bdrv_try_change_aio_context")
        del _notifier_excs[:]
        call_errp(lib.bdrv_try_change_aio_context, self._live(), ctx._live(),
                  B.NULL)
        _raise_notifier_exc()

    def add_aio_context_notifier(self, attached=None, detach=None):
        """Call detach() before the node leaves its context and
        attached(new_ctx) after it arrives.  Returns an object with
        remove()."""
        for what, fn in (("attached", attached), ("detach", detach)):
            if fn is not None:
                check_callable(fn, what)
        _gs("bdrv_add_aio_context_notifier")
        n = _ContextNotifier(self, attached, detach,
                             lib.bdrv_add_aio_context_notifier,
                             lib.bdrv_remove_aio_context_notifier)
        self._notifiers.append(n)
        return n

    # --- I/O and the rest ---------------------------------------------------
    def flush(self):
        """bdrv_flush(): flush the node."""
        return _check_io(lib.bdrv_flush(self._live()), "bdrv_flush")

    def unref(self):
        """Drop this Python object's reference (bdrv_unref)."""
        if self._ptr is None:
            return
        _gs("bdrv_unref")
        for n in self._notifiers:
            n.remove()
        ptr, self._ptr = self._ptr, None
        if self._owned:
            lib.bdrv_unref(ptr)

    close = unref

    # blkdebug (the fault and latency injector)
    def break_at(self, event, tag):
        """Suspend the next request reaching `event` ("read_aio",
        "write_aio", "flush_to_disk"...) under `tag`."""
        return _check_io(lib.aiolab_blkdebug_break(self._live(), B.s(event),
                                                   B.s(tag)), "break")

    def resume(self, tag):
        """Resume the request suspended under tag (blkdebug)."""
        return _check_io(lib.aiolab_blkdebug_resume(self._live(), B.s(tag)),
                         "resume")

    def is_suspended(self, tag):
        """Is a request suspended under tag (blkdebug)?"""
        return lib.aiolab_blkdebug_is_suspended(self._live(), B.s(tag))

    def inject_error(self, iotype="write", errno=5, offset=0, length=-1,
                     once=False):
        """Fail requests of iotype ("read", "write", "flush", "any")
        overlapping [offset, offset+length) with -errno."""
        check_int(errno, "errno", minimum=1, maximum=INT_MAX)
        return _check_io(lib.aiolab_blkdebug_inject_error(
            self._live(), B.s(iotype), errno, offset, length, bool(once)),
            "inject_error")

    def clear_errors(self):
        """Remove every injected error rule (blkdebug)."""
        return _check_io(lib.aiolab_blkdebug_clear_errors(self._live()),
                         "clear_errors")

    def set_latency_ns(self, ns):
        """Delay every request by ns (blkdebug)."""
        check_int(ns, "ns", minimum=0)
        return _check_io(lib.aiolab_blkdebug_set_latency_ns(self._live(), ns),
                         "set_latency_ns")

    def test_driver_stats(self):
        """The aiolab-test driver's counters (drain_count, reads...)."""
        return B.test_driver_stats(self._live())

    def __repr__(self):
        if self._ptr is None:
            return "<aiolab.BlockDriverState (released)>"
        return f"<aiolab.BlockDriverState {self.node_name!r} " \
               f"{self.driver}>"


def nodes():
    """Every node of the graph (aiolab_bdrv_list)."""
    _gs("aiolab_bdrv_list")
    n = lib.aiolab_bdrv_list(B.NULL, 0)
    arr = B.array("BlockDriverState *", n + 8)
    n = min(lib.aiolab_bdrv_list(raw(arr), n + 8), n + 8)
    return [BlockDriverState._wrap(B.item(arr, "BlockDriverState *", i),
                                   owned=False) for i in range(n)]


def drain_all_begin():
    """bdrv_drain_all_begin(): quiesce every node.  BQL held."""
    _gs("bdrv_drain_all_begin")
    lib.bdrv_drain_all_begin()


def drain_all_end():
    """bdrv_drain_all_end().  BQL held."""
    _gs("bdrv_drain_all_end")
    lib.bdrv_drain_all_end()


@contextlib.contextmanager
def drained_all():
    """`with aiolab.drained_all():` -- every node quiesced."""
    drain_all_begin()
    try:
        yield
    finally:
        drain_all_end()


class BlockBackend:
    """A user's handle on a node (what a device or export holds)."""

    def __init__(self, ctx=None):
        _gs("blk_new")
        if ctx is None:
            from ._threads import main_loop
            ctx = main_loop().ctx
        if not isinstance(ctx, AioContext):
            raise TypeError("ctx must be an aiolab.AioContext")
        self._ptr = lib.blk_new(ctx._live())
        self._dev = None
        self._notifiers = []

    @classmethod
    def open(cls, options, filename=None, read_only=False, nocache=False):
        """blk_new_open(): a BlockBackend on a new node."""
        _gs("blk_new_open")
        flags = (0 if read_only else BDRV_O_RDWR) | \
            (BDRV_O_NOCACHE if nocache else 0)
        self = cls.__new__(cls)
        self._ptr = call_errp(lib.blk_new_open, B.s(filename), B.NULL,
                              B.s(_options(options)), flags)
        self._dev = None
        self._notifiers = []
        return self

    def _live(self):
        if self._ptr is None:
            raise Error("this BlockBackend is closed")
        return self._ptr

    # --- graph ------------------------------------------------------------
    def insert(self, bs):
        """blk_insert_bs(): make bs the BlockBackend's root node."""
        if not isinstance(bs, BlockDriverState):
            raise TypeError("bs must be an aiolab.BlockDriverState")
        _gs("blk_insert_bs")
        call_errp(lib.blk_insert_bs, self._live(), bs._live())

    def remove_bs(self):
        """blk_remove_bs(): detach the root node."""
        _gs("blk_remove_bs")
        lib.blk_remove_bs(self._live())

    @property
    def bs(self):
        """The root node, or None."""
        return BlockDriverState._wrap(lib.blk_bs(self._live()), owned=False)

    @property
    def ctx(self):
        """The BlockBackend's home AioContext."""
        return context_for(lib.blk_get_aio_context(self._live()))

    def set_aio_context(self, ctx):
        """blk_set_aio_context(): move it (and its node's graph) to ctx."""
        if not isinstance(ctx, AioContext):
            raise TypeError("ctx must be an aiolab.AioContext")
        _gs("blk_set_aio_context")
        del _notifier_excs[:]
        call_errp(lib.blk_set_aio_context, self._live(), ctx._live())
        _raise_notifier_exc()

    def add_aio_context_notifier(self, attached=None, detach=None):
        """Like BlockDriverState.add_aio_context_notifier(), following whichever node is the root."""
        for what, fn in (("attached", attached), ("detach", detach)):
            if fn is not None:
                check_callable(fn, what)
        _gs("blk_add_aio_context_notifier")
        n = _ContextNotifier(self, attached, detach,
                             lib.blk_add_aio_context_notifier,
                             lib.blk_remove_aio_context_notifier)
        self._notifiers.append(n)
        return n

    def set_dev_ops(self, drained_begin=None, drained_end=None,
                    drained_poll=None, resize=None):
        """blk_set_dev_ops(): attach a "device": its callbacks run on the
        BlockBackend's 0->1 and 1->0 quiesce transitions.  With a device
        attached, AioContext changes through the node are refused."""
        for what, fn in (("drained_begin", drained_begin),
                         ("drained_end", drained_end),
                         ("drained_poll", drained_poll), ("resize", resize)):
            if fn is not None:
                check_callable(fn, what)
        _gs("blk_set_dev_ops")
        _check_no_device(self, "set_dev_ops")
        from ._backend import READ, WRITE, POLL, POLL_READY
        fns = {READ: drained_begin, WRITE: drained_end, POLL: drained_poll,
               POLL_READY: resize}

        def dispatch(role):
            fn = fns.get(role)
            if fn is None:
                return False
            try:
                return fn()
            except BaseException as exc:        # noqa: B902
                from ._core import report_unraisable
                report_unraisable(exc, "BlockDevOps callback")
                return False
        ops, keep_ops = B.new_devops()
        h, keep_h = B.handle(dispatch)
        lib.blk_set_dev_ops(self._live(), ops, h)
        self._dev = (keep_ops, keep_h)

    def set_disable_request_queuing(self, disable):
        """Let requests proceed while drained (block jobs, tests) instead of parking them."""
        _gs("blk_set_disable_request_queuing")
        lib.blk_set_disable_request_queuing(self._live(), bool(disable))

    def set_allow_aio_context_change(self, allow):
        """Let the graph move this BlockBackend to another AioContext even
        with dev ops set (blk_set_allow_aio_context_change): what an
        export that follows its node does; a device leaves it off, and
        moves of its node are refused."""
        _gs("blk_set_allow_aio_context_change")
        lib.blk_set_allow_aio_context_change(self._live(), bool(allow))

    @property
    def in_flight(self):
        """Requests counted in flight on the BlockBackend (parked ones are not)."""
        return lib.blk_get_in_flight(self._live())

    @property
    def in_drain(self):
        """Is the BlockBackend drained (blk_in_drain)?"""
        _gs("blk_in_drain")
        return lib.blk_in_drain(self._live())

    @property
    def length(self):
        """Length in bytes."""
        return _check_io(lib.blk_getlength(self._live()), "blk_getlength")

    def drain(self):
        """blk_drain(): drain and wait for its own requests."""
        _gs("blk_drain")
        lib.blk_drain(self._live())

    # --- synchronous I/O (polls the caller's current context) -------------
    def _sync_check(self, func):
        check_rule(RULE_HAS_CONTEXT, func)

    def pread(self, offset, nbytes):
        """Read nbytes at offset; bytes.  Polls the caller's context."""
        check_int(nbytes, "nbytes", minimum=0)
        check_int(offset, "offset")
        self._sync_check("blk_pread")
        buf, keep = B.buffer(nbytes)
        _check_io(lib.blk_pread(self._live(), offset, nbytes, raw(buf), 0),
                  "blk_pread")
        return B.read_mem(buf, nbytes)

    def pwrite(self, offset, data):
        """Write data at offset.  Polls the caller's context."""
        data = bytes(data)
        check_int(offset, "offset")
        self._sync_check("blk_pwrite")
        buf, keep = B.buffer(len(data))
        B.write_mem(buf, data)
        _check_io(lib.blk_pwrite(self._live(), offset, len(data), raw(buf),
                                 0), "blk_pwrite")

    def flush(self):
        """Flush to stable storage.  Polls the caller's context."""
        self._sync_check("blk_flush")
        _check_io(lib.blk_flush(self._live()), "blk_flush")

    def pwrite_zeroes(self, offset, nbytes, may_unmap=False):
        """Write nbytes of zeroes at offset (may_unmap: may leave a hole)."""
        self._sync_check("blk_pwrite_zeroes")
        _check_io(lib.blk_pwrite_zeroes(self._live(), offset, nbytes,
                                        BDRV_REQ_MAY_UNMAP if may_unmap
                                        else 0), "blk_pwrite_zeroes")

    def pdiscard(self, offset, nbytes):
        """Discard nbytes at offset."""
        self._sync_check("blk_pdiscard")
        _check_io(lib.blk_pdiscard(self._live(), offset, nbytes),
                  "blk_pdiscard")

    def truncate(self, size, exact=True):
        """Resize to size bytes (blk_truncate)."""
        _gs("blk_truncate")
        errp = B.errp()
        ret = lib.blk_truncate(self._live(), size, bool(exact), 0, 0, errp)
        msg = B.take_error(errp)
        if ret < 0:
            raise OSError(-ret, msg or os.strerror(-ret))

    # --- asynchronous I/O: awaitables -------------------------------------
    def _aio(self, func, submit, on_done):
        """Submit with submit(cb, opaque) in the caller's context; the
        returned Future resolves there (never inside the call)."""
        check_rule(RULE_HAS_CONTEXT, func)
        fut = Future()
        box = []

        def done(ret):
            try:
                if ret < 0:
                    fut.set_exception(OSError(-ret, f"{func}: "
                                              f"{os.strerror(-ret)}"))
                else:
                    fut.set_result(on_done())
            finally:
                keep = box.pop()
                ctx = _current_ctx()
                if ctx is not None:
                    ctx._retire(keep)
                else:
                    B.release(keep)
        h, keep = B.handle(done)
        box.append(keep)
        submit(B.COMPLETION_CB, h)
        return fut

    def aio_read(self, offset, nbytes):
        """Awaitable bytes (blk_aio_preadv) in the caller's context."""
        check_int(offset, "offset")
        check_int(nbytes, "nbytes", minimum=0)
        buf, bkeep = B.buffer(nbytes)
        qiov = B.new_qiov()
        lib.qemu_iovec_init_buf(raw(qiov), raw(buf), nbytes)

        def submit(cb, h):
            lib.blk_aio_preadv(self._live(), offset, raw(qiov), 0, cb, h)

        def result():
            # The closure keeps qiov and the buffer alive until here.
            data = B.read_mem(buf, nbytes)
            del qiov_keep[:]
            return data
        qiov_keep = [qiov, bkeep]
        return self._aio("blk_aio_preadv", submit, result)

    def aio_write(self, offset, data):
        """Awaitable (blk_aio_pwritev) in the caller's context."""
        check_int(offset, "offset")
        data = bytes(data)
        buf, bkeep = B.buffer(len(data))
        B.write_mem(buf, data)
        qiov = B.new_qiov()
        lib.qemu_iovec_init_buf(raw(qiov), raw(buf), len(data))
        qiov_keep = [qiov, bkeep]

        def submit(cb, h):
            lib.blk_aio_pwritev(self._live(), offset, raw(qiov), 0, cb, h)

        def result():
            del qiov_keep[:]
        return self._aio("blk_aio_pwritev", submit, result)

    def aio_flush(self):
        """Awaitable flush (blk_aio_flush) in the caller's context."""
        return self._aio("blk_aio_flush", lambda cb, h: lib.blk_aio_flush(
            self._live(), cb, h), lambda: None)

    # --- lifetime -------------------------------------------------------------
    def unref(self):
        """Release the BlockBackend (blk_unref).  Refused while a
        VirtIOBlk device uses it (close the device first)."""
        if self._ptr is None:
            return
        _gs("blk_unref")
        _check_no_device(self, "unref")
        for n in self._notifiers:
            n.remove()
        ptr, self._ptr = self._ptr, None
        lib.blk_unref(ptr)

    close = unref

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.unref()

    def __repr__(self):
        return "<aiolab.BlockBackend>" if self._ptr else \
            "<aiolab.BlockBackend (closed)>"


def _check_no_device(blk, what):
    dev = getattr(blk, "_device", None)
    if dev is not None and not dev.closed:
        raise Error(f"BlockBackend.{what}: {dev!r} uses this BlockBackend "
                    "(close the device first)")


def _raise_notifier_exc():
    if _notifier_excs:
        exc = _notifier_excs.pop(0)
        del _notifier_excs[:]
        raise exc


def _current_ctx():
    ptr = lib.qemu_get_current_aio_context()
    return None if B.is_null(ptr) else context_for(ptr)

