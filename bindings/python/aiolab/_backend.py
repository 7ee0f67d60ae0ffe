# SPDX-License-Identifier: MIT
"""The low-level module behind the package: cffi (default) or SWIG.

AIOLAB_BINDING=cffi|swig picks one; a process holds one.  Both modules
expose the C API under its C names (`lib.aio_poll`, `lib.qemu_bh_schedule`,
...).  This file hides the few places where they differ -- strings,
NULL, handles for callbacks, out-parameters, arrays -- behind one small
object, `B`, that the rest of the package uses.
"""
import os

BINDING = os.environ.get("AIOLAB_BINDING", "cffi")
if BINDING not in ("cffi", "swig"):
    raise ImportError(f"AIOLAB_BINDING must be 'cffi' or 'swig', not "
                      f"{BINDING!r}")


# Callback roles: the index into B.NOTIFIER_CBS (READ, POLL, POLL_READY,
# POLL_BEGIN, POLL_END) and the argument of fd-handler callbacks (READ,
# WRITE, POLL, POLL_READY).
READ, POLL, POLL_READY, POLL_BEGIN, POLL_END, WRITE = range(6)

# A job event (AiolabJobEvent) reaches its Python listener as a tuple of
# these fields, in this order, on either binding.
JOB_EVENT_FIELDS = ("type", "id", "job_type", "status", "len", "offset",
                    "speed", "ret", "error", "is_read", "action")


class _Cffi:
    name = "cffi"
    # A KeyboardInterrupt that _onerror took from a callback: AioContext
    # raises it when the C call returns (see _onerror).
    interrupted = False

    def __init__(self):
        from . import _aiolab_cffi as mod
        self.ffi = ffi = mod.ffi
        self.lib = lib = mod.lib
        self.NULL = ffi.NULL
        self._live = set()      # handles C may still call back through

        # The extern "Python" functions: the opaque is a handle.
        @ffi.def_extern(onerror=self._onerror)
        def _aiolab_void_cb(opaque):
            ffi.from_handle(opaque)()

        @ffi.def_extern(onerror=self._onerror)
        def _aiolab_bool_cb(opaque):
            return bool(ffi.from_handle(opaque)())

        @ffi.def_extern(onerror=self._onerror)
        def _aiolab_int_cb(opaque):
            return int(ffi.from_handle(opaque)())

        @ffi.def_extern(onerror=self._onerror)
        def _aiolab_completion_cb(opaque, ret):
            ffi.from_handle(opaque)(ret)

        # fd handlers: one opaque for all four callbacks, called with
        # the role.
        @ffi.def_extern(onerror=self._onerror)
        def _aiolab_fd_read_cb(opaque):
            ffi.from_handle(opaque)(READ)

        @ffi.def_extern(onerror=self._onerror)
        def _aiolab_fd_write_cb(opaque):
            ffi.from_handle(opaque)(WRITE)

        @ffi.def_extern(onerror=self._onerror)
        def _aiolab_fd_poll_cb(opaque):
            return bool(ffi.from_handle(opaque)(POLL))

        @ffi.def_extern(onerror=self._onerror)
        def _aiolab_fd_poll_ready_cb(opaque):
            ffi.from_handle(opaque)(POLL_READY)

        self.FD_CBS = (lib._aiolab_fd_read_cb, lib._aiolab_fd_write_cb,
                       lib._aiolab_fd_poll_cb, lib._aiolab_fd_poll_ready_cb)

        # An AioContext notifier: attached(ctx address), detach().
        @ffi.def_extern(onerror=self._onerror)
        def _aiolab_attached_cb(ctx, opaque):
            ffi.from_handle(opaque)(int(ffi.cast("uintptr_t", ctx)))

        self.ATTACHED_CB = lib._aiolab_attached_cb

        # A job event listener: fn(the event's fields, JOB_EVENT_FIELDS).
        @ffi.def_extern(onerror=self._onerror)
        def _aiolab_job_event_cb(ev, opaque):
            ffi.from_handle(opaque)((
                ev.type, self.chars(ev.id), self.chars(ev.job_type),
                ev.status, ev.len, ev.offset, ev.speed, ev.ret,
                self.chars(ev.error), bool(ev.is_read), ev.action))

        self.JOB_EVENT_CB = lib._aiolab_job_event_cb

        def addr(e):
            return int(ffi.cast("uintptr_t", e))

        # EventNotifier callbacks get the notifier; one trampoline per role.
        @ffi.def_extern(onerror=self._onerror)
        def _aiolab_notifier_read_cb(e):
            self.notifier_dispatch(addr(e), READ)

        @ffi.def_extern(onerror=self._onerror)
        def _aiolab_notifier_poll_cb(e):
            return bool(self.notifier_dispatch(addr(e), POLL))

        @ffi.def_extern(onerror=self._onerror)
        def _aiolab_notifier_poll_ready_cb(e):
            self.notifier_dispatch(addr(e), POLL_READY)

        @ffi.def_extern(onerror=self._onerror)
        def _aiolab_notifier_poll_begin_cb(e):
            self.notifier_dispatch(addr(e), POLL_BEGIN)

        @ffi.def_extern(onerror=self._onerror)
        def _aiolab_notifier_poll_end_cb(e):
            self.notifier_dispatch(addr(e), POLL_END)

        self.VOID_CB = lib._aiolab_void_cb
        self.BOOL_CB = lib._aiolab_bool_cb
        self.INT_CB = lib._aiolab_int_cb
        self.COMPLETION_CB = lib._aiolab_completion_cb
        self.NOTIFIER_CBS = (lib._aiolab_notifier_read_cb,
                             lib._aiolab_notifier_poll_cb,
                             lib._aiolab_notifier_poll_ready_cb,
                             lib._aiolab_notifier_poll_begin_cb,
                             lib._aiolab_notifier_poll_end_cb)
        self.notifier_dispatch = lambda addr, role: None

    def _onerror(self, exc_type, exc_value, tb):
        # The package's wrappers catch everything; this is the last resort,
        # for an exception raised before a wrapper runs.  In practice that
        # is KeyboardInterrupt: Python runs its SIGINT handler at the entry
        # of the callback.  C cannot take it, and reporting it would lose
        # the Ctrl-C.  It cannot be re-armed from here either (the handler
        # would run again at once, inside this function), so it is kept
        # for the caller: AioContext raises it as soon as the C call that
        # ran the callback returns (SWIG's trampolines re-arm it in C).
        if issubclass(exc_type, KeyboardInterrupt):
            self.interrupted = True
            return None
        from ._core import report_unraisable
        if exc_value is None:
            exc_value = exc_type()
        report_unraisable(exc_value.with_traceback(tb), "(raised outside "
                          "the package's callback wrapper)")
        return None

    # --- values ---------------------------------------------------------
    def s(self, text):
        """A Python str for a `const char *` argument."""
        return text.encode() if text is not None else self.NULL

    def str(self, cstr):
        """A `const char *` result as a Python str (None for NULL)."""
        if cstr == self.NULL:
            return None
        return self.ffi.string(cstr).decode(errors="replace")

    def is_null(self, p):
        return p == self.NULL

    def addr(self, p):
        return int(self.ffi.cast("uintptr_t", p))

    # --- callbacks ------------------------------------------------------
    def handle(self, obj):
        """(opaque, keepalive) for a callback's opaque pointer.

        C holds only the raw pointer, which keeps nothing alive: the
        handle stays in self._live (reachable, so the garbage collector
        cannot free it even inside a reference cycle) until release().
        """
        h = self.ffi.new_handle(obj)
        self._live.add(h)
        return h, h

    def release(self, keepalive):
        self._live.discard(keepalive)

    # --- out-parameters and arrays --------------------------------------
    def errp(self):
        return self.ffi.new("Error **")

    def err_value(self, errp):
        return errp[0]

    def take_error(self, errp):
        """The message of *errp (freeing it), or None."""
        err = errp[0]
        if err == self.NULL:
            return None
        msg = self.str(self.lib.error_get_pretty(err))
        self.lib.error_free(err)
        return msg

    def int64p(self):
        return self.ffi.new("int64_t *")

    def int64_value(self, p):
        return p[0]

    def uint64p(self):
        return self.ffi.new("uint64_t *")

    def uint64_value(self, p):
        return p[0]

    def new_notifier(self):
        return self.ffi.new("EventNotifier *")

    def new_guard(self):
        return self.ffi.new("MemReentrancyGuard *")

    def guard_engaged(self, g):
        return bool(g.engaged_in_io)

    def array(self, ctype, n):
        return self.ffi.new(f"{ctype}[]", max(n, 1))

    def item(self, arr, ctype, i):
        return arr[i]

    def chars(self, field):
        return self.ffi.string(field).decode(errors="replace")

    def take_string(self, cstr):
        """A malloc'd `char *` result: convert, then free it."""
        if cstr == self.NULL:
            return None
        try:
            return self.str(cstr)
        finally:
            self.lib.free(cstr)

    def trace(self, phase, name, arg):
        """aiolab_trace_mark/begin/end with an interned name."""
        n = self.lib.aiolab_intern_string(name.encode())
        fn = {"B": self.lib.aiolab_trace_begin, "E": self.lib.aiolab_trace_end,
              "i": self.lib.aiolab_trace_mark}[phase]
        fn(n, arg)

    # --- memory the C side reads or fills -----------------------------
    def buffer(self, n):
        """(pointer, keepalive) to n zeroed bytes."""
        b = self.ffi.new("char[]", max(n, 1))
        return b, b

    def read_mem(self, p, n):
        return bytes(self.ffi.buffer(p, n))

    def write_mem(self, p, data):
        self.ffi.memmove(p, data, len(data))

    def new_qiov(self):
        return self.ffi.new("QEMUIOVector *")

    def new_devops(self):
        """A BlockDevOps calling its opaque with roles READ (drained_begin),
        WRITE (drained_end), POLL (drained_poll), POLL_READY (resize)."""
        ops = self.ffi.new("BlockDevOps *")
        ops.drained_begin, ops.drained_end, ops.drained_poll, \
            ops.resize_cb = self.FD_CBS
        return ops, ops

    def test_driver_stats(self, bs):
        st = self.ffi.new("AiolabTestDriverStats *")
        if not self.lib.aiolab_test_driver_get_stats(bs, st):
            return None
        return {k: getattr(st, k) for k in (
            "drain_count", "reads", "writes", "flushes", "other",
            "drain_begins", "drain_ends")}

    def rule_check(self, rule, func, ctx):
        buf = self.ffi.new("char[]", 512)
        if self.lib.aiolab_rule_check(rule, self.s(func), ctx, buf, 512):
            return None
        return self.ffi.string(buf).decode(errors="replace")

    def ptr_arg(self, p):
        return p if p is not None else self.NULL


class _Swig:
    name = "swig"
    interrupted = False         # never set: the trampolines re-arm Ctrl-C

    def __init__(self):
        from . import aiolab_swig as mod
        self.lib = mod
        self.NULL = None
        self.VOID_CB = mod.AIOLAB_SWIG_VOID_CB
        self.BOOL_CB = mod.AIOLAB_SWIG_BOOL_CB
        self.INT_CB = mod.AIOLAB_SWIG_INT_CB
        self.COMPLETION_CB = mod.AIOLAB_SWIG_COMPLETION_CB
        self.FD_CBS = (mod.AIOLAB_SWIG_FD_READ_CB, mod.AIOLAB_SWIG_FD_WRITE_CB,
                       mod.AIOLAB_SWIG_FD_POLL_CB,
                       mod.AIOLAB_SWIG_FD_POLL_READY_CB)
        self.ATTACHED_CB = mod.AIOLAB_SWIG_ATTACHED_CB
        self.JOB_EVENT_CB = mod.AIOLAB_SWIG_JOB_EVENT_CB
        self.NOTIFIER_CBS = (mod.AIOLAB_SWIG_NOTIFIER_READ_CB,
                             mod.AIOLAB_SWIG_NOTIFIER_POLL_CB,
                             mod.AIOLAB_SWIG_NOTIFIER_POLL_READY_CB,
                             mod.AIOLAB_SWIG_NOTIFIER_POLL_BEGIN_CB,
                             mod.AIOLAB_SWIG_NOTIFIER_POLL_END_CB)
        self.notifier_dispatch = lambda addr, role: None
        mod.aiolab_swig_set_notifier_dispatch(
            lambda addr, role: self.notifier_dispatch(addr, role))

    def s(self, text):
        return text

    def str(self, cstr):
        return cstr

    def is_null(self, p):
        return p is None

    def addr(self, p):
        return 0 if p is None else self.lib.aiolab_swig_addr(p)

    def handle(self, obj):
        h = self.lib.aiolab_swig_handle_new(obj)
        return h, _SwigHandle(self.lib, h)

    def release(self, keepalive):
        keepalive.free()

    def errp(self):
        p = self.lib.new_errorp()
        self.lib.errorp_assign(p, None)
        return p

    def take_error(self, errp):
        err = self.lib.errorp_value(errp)
        try:
            if err is None:
                return None
            msg = self.lib.error_get_pretty(err)
            self.lib.error_free(err)
            return msg
        finally:
            self.lib.delete_errorp(errp)

    def int64p(self):
        return self.lib.new_int64p()

    def int64_value(self, p):
        v = self.lib.int64p_value(p)
        self.lib.delete_int64p(p)
        return v

    def uint64p(self):
        return self.lib.new_uint64p()

    def uint64_value(self, p):
        v = self.lib.uint64p_value(p)
        self.lib.delete_uint64p(p)
        return v

    def new_notifier(self):
        return _SwigOwned(self.lib.new_notifierp(), self.lib.delete_notifierp)

    def new_guard(self):
        g = self.lib.new_guardp()
        v = self.lib.guardp_value(g)
        v.engaged_in_io = False
        self.lib.guardp_assign(g, v)
        return _SwigOwned(g, self.lib.delete_guardp)

    def guard_engaged(self, g):
        return bool(self.lib.guardp_value(_raw(g)).engaged_in_io)

    _ARRAYS = {
        "AiolabBqlStats": "bqlstats_array",
        "AiolabTraceRecord": "tracerecord_array",
        "AiolabTraceThread": "tracethread_array",
        "AiolabCoroutineInfo": "coroutineinfo_array",
        "IOThread *": "iothreadp_array",
        "BlockDriverState *": "bdrvp_array",
        "BlockJobInfo": "jobinfo_array",
    }

    def array(self, ctype, n):
        name = self._ARRAYS[ctype]
        return _SwigOwned(getattr(self.lib, "new_" + name)(max(n, 1)),
                          getattr(self.lib, "delete_" + name))

    def item(self, arr, ctype, i):
        return getattr(self.lib, self._ARRAYS[ctype] + "_getitem")(_raw(arr),
                                                                   i)

    def chars(self, field):
        return field

    def take_string(self, cstr):
        return cstr             # %newobject: SWIG already freed it

    def trace(self, phase, name, arg):
        self.lib.aiolab_swig_trace(ord(phase), name, arg)

    def buffer(self, n):
        p = self.lib.aiolab_swig_malloc(max(n, 1))
        return p, _SwigOwned(p, self.lib.aiolab_swig_free)

    def read_mem(self, p, n):
        return self.lib.aiolab_swig_read_mem(_raw(p), n)

    def write_mem(self, p, data):
        self.lib.aiolab_swig_write_mem(_raw(p), bytes(data))

    def new_qiov(self):
        return _SwigOwned(self.lib.new_qiovp(), self.lib.delete_qiovp)

    def new_devops(self):
        ops = self.lib.aiolab_swig_devops_new()
        return ops, _SwigOwned(ops, self.lib.aiolab_swig_devops_free)

    def test_driver_stats(self, bs):
        p = self.lib.new_testdrvstatsp()
        try:
            if not self.lib.aiolab_test_driver_get_stats(bs, p):
                return None
            st = self.lib.testdrvstatsp_value(p)
            return {k: getattr(st, k) for k in (
                "drain_count", "reads", "writes", "flushes", "other",
                "drain_begins", "drain_ends")}
        finally:
            self.lib.delete_testdrvstatsp(p)

    def rule_check(self, rule, func, ctx):
        return self.lib.aiolab_swig_rule_check(rule, func, _raw(ctx))

    def ptr_arg(self, p):
        return _raw(p)


class _SwigHandle:
    """A reference to a Python object held for C, dropped by free()."""

    def __init__(self, lib, h):
        self.lib, self.h = lib, h

    def free(self):
        if self.h is not None:
            self.lib.aiolab_swig_handle_free(self.h)
            self.h = None


class _SwigOwned:
    """A SWIG-allocated C object, freed when this wrapper dies."""

    def __init__(self, ptr, deleter):
        self.ptr, self.deleter = ptr, deleter

    def __del__(self):
        if self.ptr is not None:
            self.deleter(self.ptr)
            self.ptr = None


def _raw(p):
    return p.ptr if isinstance(p, _SwigOwned) else p


B = _Cffi() if BINDING == "cffi" else _Swig()
lib = B.lib
raw = _raw
