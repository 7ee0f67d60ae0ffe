# SPDX-License-Identifier: MIT
"""Block jobs from Python: the mirror (switch-over under I/O, drains
pausing it, cancel, pause/resume, dismiss, errors), events delivered in
the main loop, queries, and the package's safety rules -- on both
bindings."""
import errno
import os
import sys

import pytest

import aiolab

SIZE = 1 << 20


@pytest.fixture
def gs(main):
    """Global-state code: the main loop with the BQL held."""
    aiolab.bql_lock()
    yield main
    aiolab.bql_unlock()


def file_node(tmp_path, name, fill=None):
    img = tmp_path / f"{name}.img"
    img.write_bytes(fill if fill is not None else b"\0" * SIZE)
    return aiolab.BlockDriverState.open(
        {"driver": "file", "filename": str(img), "aio": "threads",
         "node-name": name}), img


def pattern(seed):
    return bytes((seed * 7 + i) % 251 for i in range(SIZE))


def test_mirror_switch_over_while_writing(gs, tmp_path):
    src, _ = file_node(tmp_path, "src", pattern(1))
    tgt, tgt_img = file_node(tmp_path, "tgt")
    blk = aiolab.BlockBackend()
    blk.insert(src)
    events = []
    lst = aiolab.add_job_listener(lambda e: events.append(e))
    job = aiolab.mirror(src, tgt, job_id="m0", granularity=65536)
    assert job.id == "m0" and aiolab.Job.find("m0") is job
    # Guest writes while the job copies, and after it is ready.
    for i in range(8):
        blk.pwrite(i * 4096 * 7, bytes([i + 1]) * 4096)
    assert job.wait_ready() is True
    done, total = job.progress
    assert done == total >= SIZE
    for i in range(8):
        blk.pwrite(i * 4096 * 11 + 512, bytes([i + 100]) * 1024)
    expect = blk.pread(0, SIZE)
    job.complete()
    assert job.wait() == 0
    assert job.status == "null" and job.completed
    assert blk.bs is tgt                    # switched over
    assert blk.pread(0, SIZE) == expect
    assert tgt_img.read_bytes() == expect
    types = [e.type for e in events if e.id == "m0"]
    assert types.index("READY") < types.index("COMPLETED")
    assert "CANCELLED" not in types and "ERROR" not in types
    done = [e for e in events if e.type == "COMPLETED"][0]
    assert done.ret == 0 and done.error == "" and done.len == done.offset
    statuses = [e.status for e in job.events if e.type == "STATUS_CHANGE"]
    assert statuses[:3] == ["created", "running", "ready"]
    assert statuses[-4:] == ["waiting", "pending", "concluded", "null"]
    assert [e for e in job.events] == [e for e in events if e.id == "m0"]
    lst.remove()
    job.close()
    blk.unref()


def test_drains_pause_the_job(gs):
    src = aiolab.BlockDriverState.open("driver=null-co,size=1M,node-name=s")
    tgt = aiolab.BlockDriverState.open("driver=null-co,size=1M,node-name=t")
    blk = aiolab.BlockBackend()
    blk.insert(src)
    with aiolab.mirror(src, tgt) as job:
        assert job.id == "s"                # the node name by default
        assert job.wait_ready()
        assert job.pause_count == 0
        with src.drained():
            # The drain waited until the job stopped at a pause point.
            assert job.pause_count == 1
            assert job.paused and not job.busy
            assert job.status == "standby"
            with tgt.drained():             # the job's second edge
                assert job.pause_count == 2
            assert job.pause_count == 1
            with pytest.raises(aiolab.Error, match="state 'standby'"):
                job.complete()
        # drained_end runs no job code: it resumes later, in its context.
        assert job.pause_count == 0
        assert job.wait_ready()
        with aiolab.drained_all():
            assert job.pause_count == 2     # both edges quiesced
        assert job.cancel_sync() == 0       # soft cancel of a ready job
        assert blk.bs is src                # ... completes, no switch
    blk.unref()


def test_cancel_before_ready_and_user_pause(gs):
    src = aiolab.BlockDriverState.open("driver=null-co,size=1M,node-name=a")
    tgt = aiolab.BlockDriverState.open("driver=null-co,size=1M,node-name=b")
    job = aiolab.mirror(src, tgt, speed=4096)       # slow: never ready
    assert job.status == "running" and not job.ready
    with pytest.raises(aiolab.Error, match="Can't resume a job that was "
                                           "not paused"):
        job.resume()
    job.pause()
    assert job.user_paused
    with pytest.raises(aiolab.Error, match="already paused"):
        job.pause()
    aiolab.aio_wait_while(None, lambda: not job.paused)
    assert job.status == "paused" and job.pause_count == 1
    job.resume()
    assert not job.user_paused
    job.set_speed(2048)
    assert job.info.speed == 2048
    with pytest.raises(aiolab.Error, match="cannot accept command verb "
                                           "'complete'"):
        job.complete()
    job.cancel()
    assert job.cancel_requested
    assert job.wait() == -errno.ECANCELED
    assert [e.type for e in job.events if e.type != "STATUS_CHANGE"] == \
        ["CANCELLED"]
    assert aiolab.query_block_jobs() == [] and aiolab.jobs() == []
    assert src.quiesce_counter == 0 and aiolab.BlockDriverState.find("a")
    job.close()


def test_manual_dismiss_and_queries(gs):
    a = aiolab.BlockDriverState.open("driver=null-co,size=1M,node-name=a")
    b = aiolab.BlockDriverState.open("driver=null-co,size=1M,node-name=b")
    job = aiolab.mirror(a, b, job_id="keep", auto_dismiss=False)
    job.wait_ready()
    (info,) = aiolab.query_block_jobs()
    assert info.device == "keep" and info.type == "mirror"
    assert info.ready and not info.auto_dismiss and info.error is None
    assert info.len == info.offset == SIZE and info.io_status == "ok"
    assert aiolab.jobs() == [job]
    job.cancel(force=True)
    assert job.wait() == -errno.ECANCELED
    assert job.status == "concluded"
    assert aiolab.query_block_jobs()[0].status == "concluded"
    job.dismiss()
    assert job.status == "null" and aiolab.Job.find("keep") is None
    with pytest.raises(aiolab.Error, match="in state 'null'"):
        job.dismiss()
    job.close()


def test_target_error_fails_the_job(gs):
    a = aiolab.BlockDriverState.open("driver=null-co,size=1M,node-name=a")
    t = aiolab.BlockDriverState.open("driver=null-co,size=1M,node-name=t")
    dbg = aiolab.BlockDriverState.open("driver=blkdebug,image=t,"
                                       "node-name=dbg")
    dbg.inject_error("write", errno.ENOSPC, length=0)
    job = aiolab.mirror(a, dbg)
    assert job.wait() == -errno.ENOSPC
    errs = [e for e in job.events if e.type == "ERROR"]
    assert errs and errs[0].action == "report" and not errs[0].is_read
    done = [e for e in job.events if e.type == "COMPLETED"]
    assert done[0].ret == -errno.ENOSPC and "space" in done[0].error
    job.close()


def test_job_follows_its_node(gs):
    io = aiolab.IOThread("io0")
    src = aiolab.BlockDriverState.open("driver=null-co,size=1M,node-name=s")
    tgt = aiolab.BlockDriverState.open("driver=null-co,size=1M,node-name=t")
    blk = aiolab.BlockBackend()
    blk.insert(src)
    job = aiolab.mirror(src, tgt)
    job.wait_ready()
    main_ctx = aiolab.main_loop().ctx
    assert job.ctx is main_ctx
    blk.set_aio_context(io.ctx)
    assert job.ctx is io.ctx and tgt.ctx is io.ctx
    assert job.wait_ready()
    assert job.complete_sync() == 0
    assert blk.bs is tgt and blk.ctx is io.ctx
    job.close()
    blk.set_aio_context(main_ctx)
    blk.unref()
    io.close()


def test_listener_exception_is_reported_and_raised(gs, monkeypatch):
    seen = []
    monkeypatch.setattr(sys, "unraisablehook", lambda a: seen.append(a))

    def bad(ev):
        if ev.type == "READY":
            raise RuntimeError("listener failed")
    lst = aiolab.add_job_listener(bad)
    a = aiolab.BlockDriverState.open("driver=null-co,size=1M,node-name=a")
    b = aiolab.BlockDriverState.open("driver=null-co,size=1M,node-name=b")
    job = aiolab.mirror(a, b)
    with pytest.raises(RuntimeError, match="listener failed"):
        job.wait_ready()
        aiolab.main_loop().ctx.poll()
    assert seen and isinstance(seen[0].exc_value, RuntimeError)
    lst.remove()
    lst.remove()                            # twice is harmless
    assert job.cancel_sync(force=True) == -errno.ECANCELED
    job.close()


def test_bad_input_and_rules(main):
    with aiolab.bql():
        a = aiolab.BlockDriverState.open("driver=null-co,size=1M,node-name=a")
        b = aiolab.BlockDriverState.open("driver=null-co,size=1M,node-name=b")
        small = aiolab.BlockDriverState.open("driver=null-co,size=4K")
        with pytest.raises(TypeError, match="source"):
            aiolab.mirror("a", b)
        with pytest.raises(TypeError, match="job_id"):
            aiolab.mirror(a, b, job_id=3)
        with pytest.raises(ValueError, match="on_target_error"):
            aiolab.mirror(a, b, on_target_error="explode")
        with pytest.raises(ValueError, match="speed"):
            aiolab.mirror(a, b, speed=-1)
        with pytest.raises(TypeError, match="granularity"):
            aiolab.mirror(a, b, granularity=1.5)
        with pytest.raises(aiolab.Error, match="different sizes"):
            aiolab.mirror(a, small)
        with pytest.raises(aiolab.Error, match="part of the other"):
            aiolab.mirror(a, a)
        with pytest.raises(aiolab.Error, match="granularity"):
            aiolab.mirror(a, b, granularity=1000)
        with pytest.raises(aiolab.Error, match="Invalid job ID"):
            aiolab.mirror(a, b, job_id="#bad")
        with pytest.raises(TypeError):
            aiolab.add_job_listener(42)
        with pytest.raises(TypeError):
            aiolab.Job()
        assert a.quiesce_counter == 0 and aiolab.jobs() == []
        job = aiolab.mirror(a, b, speed=4096)
        with pytest.raises(aiolab.Error, match="Duplicate job ID|in use"):
            aiolab.mirror(a, b, job_id="a")
        with pytest.raises(ValueError):
            job.set_speed(-5)
    # Without the BQL: refused with the C debug build's message.
    with pytest.raises(aiolab.Error, match="requires the BQL"):
        job.complete()
    with pytest.raises(aiolab.Error, match="requires the BQL"):
        aiolab.mirror(a, b)
    assert job.status == "running"          # any thread may look
    with aiolab.bql():
        assert job.cancel_sync() == -errno.ECANCELED
        job.close()
        job.close()                         # twice is harmless
    # Use after close: an aiolab.Error, never a crash.
    for use in (lambda: job.status, lambda: job.progress, job.cancel,
                lambda: job.pause_count):
        with pytest.raises(aiolab.Error, match="released"):
            with aiolab.bql():
                use()
    assert "released" in repr(job)


def test_undrained_switch_loses_a_write(gs, tmp_path):
    """The test-only switch without a drained section: a write held in
    the old node finishes there after the switch; inside a section (what
    bdrv_replace_node() does) it cannot."""
    io = aiolab.IOThread("io0")
    results = {}
    for drained in (False, True):
        tag = "d" if drained else "u"
        f_old, _ = file_node(tmp_path, f"{tag}old-file", b"A" * SIZE)
        f_new, _ = file_node(tmp_path, f"{tag}new-file", b"A" * SIZE)
        old = aiolab.BlockDriverState.open(
            f"driver=blkdebug,image={tag}old-file,node-name={tag}old")
        new = aiolab.BlockDriverState.open(
            f"driver=blkdebug,image={tag}new-file,node-name={tag}new")
        blk = aiolab.BlockBackend()
        blk.insert(old)
        old.break_at("write-aio", "held")
        acked = []

        async def write():
            fut = blk.aio_write(0, b"B" * 4096)
            # Acknowledged when the completion callback runs, which a drain
            # waits for; the task itself resumes later, in a BH of io0.
            fut.add_done_callback(lambda f: acked.append(True))
            await fut
            aiolab.aio_wait_kick()
        io.run(lambda: io.ctx.create_task(write()))
        aiolab.aio_wait_while(None, lambda: not old.is_suspended("held"))
        rel = aiolab.main_loop().ctx.timer(lambda: old.resume("held"),
                                           scale="ms")
        rel.mod(rel.now() + 50)
        if drained:
            with old.drained(), new.drained():
                assert acked                # the drain waited for it
                aiolab.test_replace_node_undrained(old, new)
        else:
            aiolab.test_replace_node_undrained(old, new)
            assert not acked and old.in_flight == 1
        aiolab.aio_wait_while(None, lambda: not acked)
        assert blk.bs is new
        results[drained] = (blk.pread(0, 1), new.in_flight, old.in_flight)
        rel.close()
        blk.unref()
    # Either way the write went to the old node and the guest now reads
    # the new one (no copy here): what differs is when -- after the
    # switch without a section, before it with one.
    assert results[False] == results[True] == (b"A", 0, 0)
    with pytest.raises(TypeError):
        aiolab.test_replace_node_undrained("old", new)
    io.close()


def test_allow_aio_context_change(gs):
    """A BlockBackend with dev ops (a "device") pins its node, unless it
    allows the change, as an export does: then it follows."""
    io = aiolab.IOThread("io0")
    bs = aiolab.BlockDriverState.open("driver=null-co,size=1M")
    user = aiolab.BlockBackend()
    user.insert(bs)
    user.set_dev_ops(drained_begin=lambda: None, drained_end=lambda: None)
    with pytest.raises(aiolab.Error, match="Cannot change iothread of "
                                           "active block backend"):
        bs.change_aio_context(io.ctx)
    assert bs.ctx is aiolab.main_loop().ctx
    user.set_allow_aio_context_change(True)
    moved = []
    user.add_aio_context_notifier(attached=moved.append)
    bs.change_aio_context(io.ctx)
    assert bs.ctx is io.ctx and user.ctx is io.ctx and moved == [io.ctx]
    bs.change_aio_context(aiolab.main_loop().ctx)
    user.set_dev_ops()
    user.unref()
    io.close()
