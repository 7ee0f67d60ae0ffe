# SPDX-License-Identifier: MIT
"""Block jobs from Python: start a mirror, watch it, and complete, cancel,
pause or resume it (aiolab/blockjob.h, QEMU's job.c and block/mirror.c).

    with aiolab.bql():
        job = aiolab.mirror(src, target)   # mirror_start: copies src
        job.wait_ready()                   # READY: target in sync
        job.complete()                     # switch over, inside a drain
        job.wait()                         # until concluded -> 0

A job is a C coroutine in its node's AioContext; Python drives it from the
main loop, as QEMU's monitor does: every method here that changes a job
(and wait) is global-state code -- main loop, BQL held -- and raises
aiolab.Error elsewhere; the read-only properties (status, progress,
pause_count...) may be read from any thread.  Writing a job driver is C
only: its code runs on a C coroutine stack.

Events (QEMU's JOB_STATUS_CHANGE, BLOCK_JOB_READY, BLOCK_JOB_COMPLETED,
BLOCK_JOB_CANCELLED, BLOCK_JOB_ERROR) reach listeners added with
add_job_listener(), and each Job's `events` list, in the main loop with
the BQL held, in the order they happened.  A listener's exception is
reported at once (sys.unraisablehook) and raised by the main loop's next
Python call (poll, aio_wait_while, wait).
"""
import collections
import weakref
from typing import Any, Dict, List

from ._backend import B, lib, raw, JOB_EVENT_FIELDS
from ._core import (Error, RULE_GLOBAL_STATE, call_errp, check_callable,
                    check_int, check_rule, context_for)

STATUSES = ("undefined", "created", "running", "paused", "ready",
            "standby", "waiting", "pending", "aborting", "concluded",
            "null")
EVENT_TYPES = ("STATUS_CHANGE", "READY", "COMPLETED", "CANCELLED", "ERROR")
ON_ERROR = {"report": 0, "ignore": 1, "enospc": 2, "stop": 3, "auto": 4}
ERROR_ACTIONS = ("ignore", "report", "stop")
IO_STATUSES = ("ok", "failed", "nospace")
JOB_MANUAL_DISMISS = 0x02

JobEvent = collections.namedtuple("JobEvent", [
    "type", "id", "job_type", "status", "len", "offset", "speed", "ret",
    "error", "is_read", "action"])
assert JobEvent._fields == JOB_EVENT_FIELDS
JobEvent.__doc__ = """A job event: `type` is one of EVENT_TYPES
("STATUS_CHANGE", "READY", "COMPLETED", "CANCELLED", "ERROR"); `id` the
job's id; `job_type` "mirror"; `status` the new status (STATUS_CHANGE);
`len`, `offset`, `speed` the progress (READY, COMPLETED, CANCELLED); `ret`
0 or -errno and `error` "" or the message (COMPLETED); `is_read` and
`action` ("ignore", "report", "stop") for ERROR."""

JobInfo = collections.namedtuple("JobInfo", [
    "type", "device", "len", "offset", "busy", "paused", "speed",
    "io_status", "ready", "status", "auto_finalize", "auto_dismiss",
    "error"])
JobInfo.__doc__ = """One entry of query-block-jobs (QEMU's BlockJobInfo):
`device` is the job id, `status` and `io_status` are strings, `error` is
None or why the job failed."""

_jobs: "weakref.WeakValueDictionary[int, Job]" = \
    weakref.WeakValueDictionary()           # C address -> Job
_by_id: Dict[str, Any] = {}     # job id -> weakref to its newest Job
_unclaimed: Dict[str, List[Any]] = {}   # events of jobs not wrapped yet
_listeners: List["JobListener"] = []        # the user's, in order added
_installed: Any = None          # (opaque, keepalive) of the C listener
_CONCLUDED, _NULL = STATUSES.index("concluded"), STATUSES.index("null")


def _gs(func):
    check_rule(RULE_GLOBAL_STATE, func)


def _main_ctx():
    from ._threads import main_loop
    return main_loop().ctx


def _event(fields):
    d = dict(zip(JOB_EVENT_FIELDS, fields))
    d["type"] = EVENT_TYPES[d["type"]]
    d["status"] = STATUSES[d["status"]]
    d["action"] = ERROR_ACTIONS[d["action"]]
    return JobEvent(**d)


def _dispatch(fields):
    """The one C listener (main loop, BQL held): the Job's events list,
    then every user listener, each wrapped so nothing unwinds into C."""
    ev = _event(fields)
    ref = _by_id.get(ev.id)
    job = ref() if ref is not None else None
    if job is not None:
        job.events.append(ev)
    else:
        # mirror_start() may deliver the first events (it polls while it
        # inserts its filter) before it has returned the job to wrap.
        _unclaimed.setdefault(ev.id, []).append(ev)
    if ev.type == "STATUS_CHANGE" and ev.status == "null":
        _by_id.pop(ev.id, None)         # the id may be used again
        _unclaimed.pop(ev.id, None)
    for lst in list(_listeners):
        if lst.active:
            lst.call(ev)


def _install():
    """Register the package's C listener once (main loop, BQL held): C
    queues events only while somebody listens."""
    global _installed
    if _installed is None:
        h, keep = B.handle(_dispatch)
        lib.aiolab_job_add_event_listener(B.JOB_EVENT_CB, h)
        _installed = (h, keep)


class JobListener:
    """A listener added by add_job_listener(); remove() stops it."""

    def __init__(self, fn):
        self.fn = fn
        self.active = True
        self.call = _main_ctx()._safe(fn, f"job listener {fn!r}")

    def remove(self):
        """Stop calling it (also from inside a listener)."""
        self.active = False
        if self in _listeners:
            _listeners.remove(self)


def add_job_listener(fn):
    """Call fn(JobEvent) for every job event, in the main loop with the
    BQL held.  Returns a JobListener (remove() it).  BQL held."""
    check_callable(fn, "fn")
    _gs("aiolab_job_add_event_listener")
    _install()
    lst = JobListener(fn)
    _listeners.append(lst)
    return lst


def _on_error(value, what):
    if value not in ON_ERROR:
        raise ValueError(f"{what} must be one of {sorted(ON_ERROR)}, not "
                         f"{value!r}")
    return ON_ERROR[value]


def mirror(source, target, job_id=None, speed=0, granularity=0,
           buf_size=0, on_source_error="report", on_target_error="report",
           filter_node_name=None, auto_dismiss=True):
    """mirror_start(): copy node `source` to node `target` (same size)
    while `source` stays in use, and return the running Job.

    granularity: bytes per dirty bit (a power of two in [512, 64 MiB], 0:
    64 KiB); buf_size: bytes copied at once at most (0: 1 MiB); speed:
    bytes/s (0: unlimited); on_*_error: "report", "ignore", "enospc",
    "stop"; auto_dismiss=False keeps the concluded job until dismiss().
    The job becomes ready (event READY) when the target is in sync;
    complete() then switches every user of source over to target inside
    a drained section.  Main loop, BQL held.
    """
    from ._block import BlockDriverState
    for what, node in (("source", source), ("target", target)):
        if not isinstance(node, BlockDriverState):
            raise TypeError(f"{what} must be an aiolab.BlockDriverState")
    if job_id is not None and not isinstance(job_id, str):
        raise TypeError("job_id must be a str or None")
    if filter_node_name is not None and not isinstance(filter_node_name,
                                                       str):
        raise TypeError("filter_node_name must be a str or None")
    check_int(speed, "speed", minimum=0)
    check_int(granularity, "granularity", minimum=0, maximum=0xffffffff)
    check_int(buf_size, "buf_size", minimum=0)
    src_err = _on_error(on_source_error, "on_source_error")
    tgt_err = _on_error(on_target_error, "on_target_error")
    _gs("mirror_start")
    _install()
    ptr = call_errp(lib.mirror_start, B.s(job_id), source._live(),
                    target._live(), 0 if auto_dismiss else JOB_MANUAL_DISMISS,
                    speed, granularity, buf_size, src_err, tgt_err,
                    B.s(filter_node_name))
    return Job._wrap(ptr, owned=True)


def test_replace_node_undrained(old, new):
    """TEST ONLY -- never use it for anything else.  bdrv_replace_node()
    without its drained section (aiolab_test_replace_node_undrained):
    every parent of node `old` now points to node `new`, but a request
    already inside `old` stays there, completes there, and is
    acknowledged after the switch although its data is not on `new`.
    The chapter 7 notebook shows that race, then puts the section back
    (bdrv_drained_begin/end of both nodes around this call, which is
    what bdrv_replace_node() does).  Main loop, BQL held."""
    from ._block import BlockDriverState
    for what, node in (("old", old), ("new", new)):
        if not isinstance(node, BlockDriverState):
            raise TypeError(f"{what} must be an aiolab.BlockDriverState")
    _gs("aiolab_test_replace_node_undrained")
    call_errp(lib.aiolab_test_replace_node_undrained, old._live(),
              new._live())


def jobs():
    """Every job not yet dismissed, oldest first (job_next), each as a Job
    holding a reference of its own.  BQL held."""
    _gs("job_next")
    out, ptr = [], lib.job_next(B.NULL)
    while not B.is_null(ptr):
        out.append(Job._wrap(ptr, owned=False))
        ptr = lib.job_next(ptr)
    return out


def query_block_jobs():
    """query-block-jobs: a JobInfo per job, oldest first.  BQL held."""
    _gs("aiolab_block_job_query_all")
    n = lib.aiolab_block_job_query_all(B.NULL, 0)
    arr = B.array("BlockJobInfo", n + 4)
    n = min(lib.aiolab_block_job_query_all(raw(arr), n + 4), n + 4)
    return [_info(B.item(arr, "BlockJobInfo", i)) for i in range(n)]


def _info(st):
    return JobInfo(
        type=B.chars(st.type), device=B.chars(st.device), len=st.len,
        offset=st.offset, busy=bool(st.busy), paused=bool(st.paused),
        speed=st.speed, io_status=IO_STATUSES[st.io_status],
        ready=bool(st.ready), status=STATUSES[st.status],
        auto_finalize=bool(st.auto_finalize),
        auto_dismiss=bool(st.auto_dismiss),
        error=B.chars(st.error) or None)


class Job:
    """A block job (QEMU's Job and BlockJob).  Made by aiolab.mirror(),
    Job.find() or aiolab.jobs(); each holds a reference on the C job, so
    it stays valid after the job concluded, until close()."""

    def __init__(self):
        raise TypeError("use aiolab.mirror(), Job.find() or aiolab.jobs()")

    @classmethod
    def _wrap(cls, ptr, owned):
        """A Job for C pointer ptr.  owned: ptr comes with a reference
        for Python (mirror_start); else one is taken here."""
        addr = B.addr(ptr)
        job = _jobs.get(addr)
        if job is not None and job._ptr is not None:
            if owned:
                lib.job_unref(ptr)      # Python holds one already
            return job
        if not owned:
            lib.job_ref(ptr)
        _install()
        job = cls.__new__(cls)
        job._ptr = ptr
        job._id = B.str(lib.aiolab_job_get_id(ptr))
        job.events = _unclaimed.pop(job._id, [])
        _jobs[addr] = job
        _by_id[job._id] = weakref.ref(job)
        return job

    @classmethod
    def find(cls, job_id):
        """job_get(): the job called job_id (not dismissed), or None.
        BQL held."""
        if not isinstance(job_id, str):
            raise TypeError("job_id must be a str")
        _gs("job_get")
        ptr = lib.job_get(B.s(job_id))
        return None if B.is_null(ptr) else cls._wrap(ptr, owned=False)

    def _live(self):
        if self._ptr is None:
            raise Error(f"job '{self._id}' has been released (close)")
        return self._ptr

    # --- state: any thread (snapshots) ----------------------------------
    @property
    def id(self):
        """The job's id (QEMU's "device" in query-block-jobs)."""
        return self._id

    @property
    def status(self):
        """"created", "running", "paused", "ready", "standby", "waiting",
        "pending", "aborting", "concluded" or "null" (dismissed)."""
        return STATUSES[lib.aiolab_job_get_status(self._live())]

    @property
    def ready(self):
        """Ready or standby: complete() may be called (job_is_ready)."""
        return bool(lib.job_is_ready(self._live()))

    @property
    def completed(self):
        """run() has finished: waiting, pending, aborting, concluded or
        null (job_is_completed)."""
        return bool(lib.job_is_completed(self._live()))

    @property
    def cancelled(self):
        """Hard-cancelled (job_is_cancelled)."""
        return bool(lib.job_is_cancelled(self._live()))

    @property
    def cancel_requested(self):
        """Cancelled at all, soft or hard (job_cancel_requested)."""
        return bool(lib.job_cancel_requested(self._live()))

    @property
    def paused(self):
        """Stopped at a pause point now (QEMU's job->paused)."""
        return bool(lib.aiolab_job_is_paused(self._live()))

    @property
    def busy(self):
        """Running code now: not paused, not sleeping (job->busy)."""
        return bool(lib.aiolab_job_is_busy(self._live()))

    @property
    def pause_count(self):
        """Pause requests now: one per quiesced edge (a drained section of
        one of the job's nodes), one for a user pause."""
        return lib.aiolab_job_get_pause_count(self._live())

    @property
    def progress(self):
        """(bytes done, bytes to do in all); the total grows as guest
        writes dirty what was already copied."""
        cur, tot = B.uint64p(), B.uint64p()
        lib.aiolab_job_get_progress(self._live(), cur, tot)
        return B.uint64_value(cur), B.uint64_value(tot)

    @property
    def ret(self):
        """The result once completed: 0, -errno, -ECANCELED (0 before)."""
        return lib.aiolab_job_get_ret(self._live())

    @property
    def ctx(self):
        """The AioContext its coroutine runs in (follows its nodes)."""
        return context_for(lib.aiolab_job_get_aio_context(self._live()))

    # --- state: main loop ---------------------------------------------------
    @property
    def user_paused(self):
        """Paused by pause() (or by on_*_error="stop").  BQL held."""
        _gs("job_user_paused")
        return bool(lib.job_user_paused(self._live()))

    @property
    def info(self):
        """block_job_query(): this job's JobInfo.  BQL held."""
        _gs("block_job_query")
        arr = B.array("BlockJobInfo", 1)
        lib.block_job_query(self._live(), raw(arr))
        return _info(B.item(arr, "BlockJobInfo", 0))

    # --- verbs: main loop, BQL held --------------------------------------
    def complete(self):
        """block-job-complete: ask a ready job to finish (the mirror:
        switch over).  Returns at once; wait() for the end.  Raises
        aiolab.Error unless the status is "ready" (QEMU's message): a
        job that a drain paused is "standby" until it has run again
        (wait_ready())."""
        _gs("job_complete")
        call_errp(lib.job_complete, self._live())

    def cancel(self, force=False):
        """block-job-cancel.  A ready mirror cancelled without force
        completes without switching over (event COMPLETED); otherwise the
        job stops soon (event CANCELLED).  A concluded job kept for
        dismiss() is dismissed.  Returns at once."""
        _gs("job_cancel")
        lib.job_cancel(self._live(), bool(force))

    def pause(self):
        """block-job-pause: a pause of the user's own (job_user_pause)."""
        _gs("job_user_pause")
        call_errp(lib.job_user_pause, self._live())

    def resume(self):
        """block-job-resume: undo pause() (job_user_resume)."""
        _gs("job_user_resume")
        call_errp(lib.job_user_resume, self._live())

    def dismiss(self):
        """job-dismiss: remove a concluded job that was started with
        auto_dismiss=False."""
        _gs("job_dismiss")
        call_errp(lib.job_dismiss, self._live())

    def set_speed(self, speed):
        """block-job-set-speed: bytes per second, 0 for unlimited."""
        check_int(speed, "speed", minimum=0)
        _gs("block_job_set_speed")
        call_errp(lib.block_job_set_speed, self._live(), speed)

    def complete_sync(self):
        """job_complete_sync(): complete(), then wait until concluded.
        Returns the result (0 or -errno)."""
        _gs("job_complete_sync")
        return call_errp(lib.job_complete_sync, self._live())

    def cancel_sync(self, force=False):
        """job_cancel_sync(): cancel(), then wait until concluded.
        Returns the result (-ECANCELED for a cancelled job)."""
        _gs("job_cancel_sync")
        return lib.job_cancel_sync(self._live(), bool(force))

    def wait_ready(self):
        """Run the main loop (aio_wait_while) until the job's status is
        "ready" -- not "standby": a job paused by a drain or by pause()
        must resume first, and only a ready job accepts complete() -- or
        it has finished, or a user pause holds it.  Returns whether it is
        ready."""
        ready = STATUSES.index("ready")
        self._wait(lambda ptr: lib.aiolab_job_get_status(ptr) != ready and
                   not lib.job_is_completed(ptr) and
                   not lib.job_user_paused(ptr))
        return self.status == "ready"

    def wait(self):
        """Run the main loop (aio_wait_while) until the job has concluded
        (or been dismissed).  Returns the result: 0, -errno or
        -ECANCELED."""
        self._wait(lambda ptr: lib.aiolab_job_get_status(ptr) not in
                   (_CONCLUDED, _NULL))
        return self.ret

    def _wait(self, cond):
        """aio_wait_while(None, cond(ptr)), with a reference of its own
        (a listener may close() this object meanwhile); then deliver the
        events already queued, so that `events` and the listeners have
        seen what led here."""
        from ._threads import aio_wait_while
        ptr = self._live()
        _gs("aio_wait_while")
        lib.job_ref(ptr)
        try:
            aio_wait_while(None, lambda: cond(ptr))
        finally:
            lib.job_unref(ptr)
        ctx = _main_ctx()
        for _ in range(100):
            if not ctx.poll(False):
                break

    # --- lifetime ----------------------------------------------------------
    def close(self):
        """Drop Python's reference (job_unref).  The job itself goes on
        until it concludes; this object is unusable afterwards.  BQL
        held."""
        if self._ptr is None:
            return
        _gs("job_unref")
        ptr, self._ptr = self._ptr, None
        _jobs.pop(B.addr(ptr), None)
        lib.job_unref(ptr)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        if self._ptr is None:
            return f"<aiolab.Job {self._id!r} (released)>"
        return f"<aiolab.Job {self._id!r} {self.status}>"
