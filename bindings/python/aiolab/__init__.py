# SPDX-License-Identifier: MIT
"""aiolab: a working model of QEMU 9.0's event-loop concurrency, from
Python.

    import aiolab
    ctx = aiolab.AioContext()          # this thread becomes its home
    bh = ctx.bh(lambda: print("hello from a BH"))
    bh.schedule()
    ctx.poll()                         # -> True: the BH ran

The names are QEMU's (AioContext, BH, IOThread, bql, aio_wait_while);
the low-level module (cffi by default, AIOLAB_BINDING=swig for SWIG)
keeps the C names: aiolab.lib.aio_poll, aiolab.lib.qemu_bh_schedule...
"""
from ._backend import B as _B, BINDING, lib
from ._core import (AioContext, BH, Error, EventNotifier, Timer,
                    CLOCKS, SCALES)
from ._threads import (IOThread, MainLoop, aio_wait_kick, aio_wait_while,
                       bql, bql_lock, bql_locked, bql_stats,
                       bql_stats_reset, bql_unlock, main_loop)
from ._tasks import Future, Task, current_task, sleep
from ._trace import (Trace, TraceEvent, Slice, mark, set_tracing, span,
                     trace)
from ._asyncio import attach_to_asyncio
from ._block import (BlockBackend, BlockDriverState, drain_all_begin,
                     drain_all_end, drained_all, nodes)
from ._job import (Job, JobEvent, JobInfo, JobListener, add_job_listener,
                   jobs, mirror, query_block_jobs,
                   test_replace_node_undrained)
from ._hw import GuestMemory, GuestRing, MemReentrancyGuard
from ._virtio import VirtIOBlk, VirtQueue, VirtQueueElement
from ._driver import VirtIOBlkDriver, VirtIOBlkRequest
from ._machine import LatencyHist, Machine

__version__ = _B.str(lib.aiolab_version())


def dump_state():
    """aiolab_dump_state(): who holds the BQL, every context's pending
    BHs, handlers and timers, AIO_WAIT_WHILE waiters, coroutines.  Returns
    the text."""
    import tempfile
    with tempfile.TemporaryFile("w+") as f:
        lib.aiolab_dump_state_fd(f.fileno())
        f.seek(0)
        return f.read()


def checks_enabled():
    """Was the C library built with the debug checks (the default)?"""
    return bool(lib.aiolab_checks_enabled())


__all__ = [
    "AioContext", "BH", "Error", "EventNotifier", "Timer", "IOThread",
    "MainLoop", "main_loop", "bql", "bql_lock", "bql_unlock", "bql_locked",
    "bql_stats", "bql_stats_reset", "aio_wait_while", "aio_wait_kick",
    "Task", "Future", "sleep", "current_task", "trace", "Trace",
    "TraceEvent", "Slice", "mark", "span", "set_tracing", "attach_to_asyncio",
    "dump_state", "checks_enabled", "lib", "BINDING", "CLOCKS", "SCALES",
    "BlockBackend", "BlockDriverState", "drained_all", "drain_all_begin",
    "drain_all_end", "nodes",
    "Job", "JobEvent", "JobInfo", "JobListener", "add_job_listener", "jobs",
    "mirror", "query_block_jobs", "test_replace_node_undrained",
    "GuestMemory", "GuestRing", "VirtIOBlk", "VirtQueue", "VirtQueueElement",
    "VirtIOBlkDriver", "VirtIOBlkRequest", "Machine", "LatencyHist",
    "MemReentrancyGuard",
]
