# SPDX-License-Identifier: MIT
"""The block layer from Python: nodes, BlockBackends, drained sections,
AioContext changes and notifiers, blkdebug -- on both bindings."""
import errno
import os
import subprocess
import sys
import threading
import time

import pytest

import aiolab


@pytest.fixture
def gs(main):
    """Global-state code: the main loop with the BQL held."""
    aiolab.bql_lock()
    yield main
    aiolab.bql_unlock()


def test_open_and_sync_io(gs, tmp_path):
    img = tmp_path / "disk.img"
    img.write_bytes(b"\0" * 65536)
    blk = aiolab.BlockBackend.open(
        {"driver": "file", "filename": str(img), "aio": "threads",
         "node-name": "disk0"})
    bs = blk.bs
    assert bs.node_name == "disk0" and bs.driver == "file"
    assert blk.length == 65536
    blk.pwrite(4096, b"hello" * 200)
    assert blk.pread(4096, 5) == b"hello"
    blk.flush()
    blk.pwrite_zeroes(4096, 512)
    assert blk.pread(4096, 5) == b"\0" * 5
    assert aiolab.BlockDriverState.find("disk0") is bs
    assert bs in aiolab.nodes()
    with pytest.raises(OSError) as e:
        blk.pread(-2, 512)
    assert e.value.errno == errno.EIO
    blk.unref()
    assert img.read_bytes()[4096 + 512:4096 + 517] == (b"hello" * 200)[512:517]


def test_bad_input(gs, tmp_path):
    with pytest.raises(aiolab.Error, match="[Uu]nknown driver"):
        aiolab.BlockDriverState.open("driver=floppy")
    with pytest.raises(aiolab.Error):
        aiolab.BlockDriverState.open({"driver": "file", "filename":
                                      str(tmp_path / "missing.img")})
    with pytest.raises(TypeError):
        aiolab.BlockDriverState.open(42)
    ro = aiolab.BlockBackend.open("driver=null-co,size=1M", read_only=True)
    with pytest.raises(OSError):
        ro.pwrite(0, b"x" * 512)
    ro.unref()


def test_drain_requires_bql(main, root):
    with aiolab.bql():
        bs = aiolab.BlockDriverState.open("driver=null-co,size=1M")
    with pytest.raises(aiolab.Error) as exc:
        with bs.drained():
            pass
    assert str(exc.value) == ("aiolab: bdrv_drained_begin() requires the "
                              "BQL (GLOBAL_STATE_CODE: main loop, BQL held)")
    # The C debug build aborts with the same text.
    code = ("import aiolab; aiolab.main_loop()\n"
            "with aiolab.bql():\n"
            "    bs = aiolab.BlockDriverState.open('driver=null-co,size=1M')\n"
            "aiolab.lib.bdrv_drained_begin(bs._ptr)\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True,
                       text=True, timeout=30, env=dict(
                           os.environ, PYTHONPATH=os.path.join(
                               root, "bindings", "python")))
    assert p.returncode != 0 and str(exc.value) in p.stderr


def test_drained_section_parks_requests(gs):
    """Catalogue §9 item 9: a request issued on a drained BlockBackend is
    parked, not counted in flight, and completes after the last end."""
    bs = aiolab.BlockDriverState.open("driver=null-co,size=1M")
    blk = aiolab.BlockBackend()
    blk.insert(bs)
    done = []

    async def write():
        await blk.aio_write(0, b"x" * 512)
        done.append(1)
    with bs.drained():
        assert bs.quiesce_counter == 1 and blk.in_drain
        task = gs.ctx.create_task(write())
        for _ in range(20):
            gs.ctx.poll()
        assert done == [] and blk.in_flight == 0     # parked
    gs.ctx.run_until(task.done, timeout=5)
    assert done == [1] and task.result() is None
    assert bs.quiesce_counter == 0
    blk.unref()
    bs.unref()


def test_aio_from_iothread(gs):
    with aiolab.IOThread("io0") as io:
        bs = aiolab.BlockDriverState.open("driver=null-co,size=1M,"
                                          "read-zeroes=on")
        blk = aiolab.BlockBackend()
        blk.insert(bs)
        blk.set_disable_request_queuing(True)
        bs.change_aio_context(io.ctx)
        assert bs.ctx is io.ctx and blk.ctx is io.ctx
        out = {}
        finished = threading.Event()

        async def job():
            out["data"] = await blk.aio_read(0, 8)
            out["tid"] = threading.get_native_id()
            finished.set()
        io.ctx.create_task(job())
        aiolab.bql_unlock()
        try:
            assert finished.wait(10)
        finally:
            aiolab.bql_lock()
        assert out == {"data": b"\0" * 8, "tid": io.thread_id}
        bs.change_aio_context(gs.ctx)
        blk.unref()
        bs.unref()


def test_notifiers_and_refusal(gs):
    with aiolab.IOThread("io0") as io:
        bs = aiolab.BlockDriverState.open("driver=null-co,size=1M")
        events = []
        n = bs.add_aio_context_notifier(
            attached=lambda ctx: events.append(("attached", ctx.name)),
            detach=lambda: events.append("detach"))
        bs.change_aio_context(io.ctx)
        assert events == ["detach", ("attached", "IO io0")]
        bs.change_aio_context(gs.ctx)
        n.remove()
        blk = aiolab.BlockBackend()
        blk.insert(bs)
        dev = []
        blk.set_dev_ops(drained_begin=lambda: dev.append("begin"),
                        drained_end=lambda: dev.append("end"))
        with pytest.raises(aiolab.Error,
                           match="Cannot change iothread of active block "
                                 "backend"):
            bs.change_aio_context(io.ctx)
        assert bs.ctx is gs.ctx                 # nothing changed
        with bs.drained():
            with bs.drained():                  # only 0->1 and 1->0 call
                pass
        assert dev == ["begin", "end"]
        blk.unref()
        bs.unref()


def test_blkdebug_errors_and_pause(gs):
    base = aiolab.BlockDriverState.open(
        "driver=null-co,size=1M,node-name=base0")
    dbg = aiolab.BlockDriverState.open("driver=blkdebug,image=base0,"
                                       "node-name=dbg0")
    blk = aiolab.BlockBackend()
    blk.insert(dbg)
    dbg.inject_error("write", errno.ENOSPC, offset=0, length=4096)
    with pytest.raises(OSError) as e:
        blk.pwrite(0, b"x" * 512)
    assert e.value.errno == errno.ENOSPC
    blk.pwrite(8192, b"x" * 512)                # outside the range: fine
    dbg.clear_errors()
    blk.pwrite(0, b"x" * 512)
    assert dbg.in_flight == 0 and blk.in_flight == 0
    # A pause point holds a request in flight until resumed.
    dbg.break_at("write_aio", "w1")
    task = gs.ctx.create_task(_write(blk))
    for _ in range(50):
        gs.ctx.poll()
        if dbg.is_suspended("w1"):
            break
    assert dbg.is_suspended("w1") and blk.in_flight == 1
    dbg.resume("w1")
    gs.ctx.run_until(task.done, timeout=5)
    assert blk.in_flight == 0
    blk.unref()
    dbg.unref()
    base.unref()


async def _write(blk):
    await blk.aio_write(0, b"y" * 512)


def test_drain_all_and_test_driver(gs):
    bs = aiolab.BlockDriverState.open("driver=aiolab-test,size=1M")
    assert bs.test_driver_stats()["drain_count"] == 0
    with aiolab.drained_all():
        assert bs.quiesce_counter == 1
        assert bs.test_driver_stats()["drain_count"] == 1
    assert bs.test_driver_stats()["drain_begins"] == 1
    bs.unref()


def test_unbalanced_end_refused(gs):
    bs = aiolab.BlockDriverState.open("driver=null-co,size=1M")
    with pytest.raises(aiolab.Error, match="unbalanced"):
        bs.drained_end()
    bs.unref()
    with pytest.raises(aiolab.Error, match="released"):
        bs.drain()
    _ = time
