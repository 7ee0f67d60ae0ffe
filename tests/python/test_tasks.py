# SPDX-License-Identifier: MIT
"""`async def` tasks on an AioContext: the Python image of a coroutine_fn."""
import threading
import time

import pytest

import aiolab


def test_task_sleep_and_result(ctx):
    async def job():
        t0 = time.monotonic()
        await aiolab.sleep(5_000_000)
        return time.monotonic() - t0
    dt = ctx.run_until_complete(job(), timeout=10)
    assert dt >= 0.004


def test_task_runs_only_when_polled(ctx):
    steps = []

    async def job():
        steps.append(1)
        await aiolab.sleep(0)
        steps.append(2)
    task = ctx.create_task(job())
    assert steps == [] and not task.done()     # stepped by BHs only
    ctx.poll()
    assert steps == [1]
    ctx.run_until(task.done, timeout=5)
    assert steps == [1, 2] and task.result() is None


def test_to_thread_runs_on_a_worker(ctx):
    async def job():
        tid = await ctx.to_thread(threading.get_native_id)
        return tid, threading.get_native_id()
    worker, home = ctx.run_until_complete(job(), timeout=10)
    assert worker != home == threading.get_native_id()


def test_to_thread_exception_and_misuse(ctx):
    async def job():
        await ctx.to_thread(lambda: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        ctx.run_until_complete(job(), timeout=10)
    with pytest.raises(aiolab.Error, match="only inside a task"):
        ctx.to_thread(print)
    with pytest.raises(aiolab.Error, match="only inside a task"):
        aiolab.sleep(10)


def test_tasks_await_tasks_and_futures(ctx):
    fut = aiolab.Future()

    async def child(x):
        await aiolab.sleep(1000)
        return x * 2

    async def parent():
        a = ctx.create_task(child(2))
        b = ctx.create_task(child(3))
        v = await fut
        return await a + await b + v
    task = ctx.create_task(parent())
    ctx.poll()
    threading.Timer(0.05, fut.set_result, args=(100,)).start()
    assert ctx.run_until_complete(task, timeout=10) == 110


def test_task_exception(ctx):
    async def job():
        await aiolab.sleep(0)
        raise KeyError("inside")
    task = ctx.create_task(job())
    ctx.run_until(task.done, timeout=5)
    assert isinstance(task.exception(), KeyError)
    with pytest.raises(KeyError):
        task.result()


def test_asyncio_awaitables_refused(ctx):
    import asyncio

    async def job():
        await asyncio.sleep(0)
    task = ctx.create_task(job())
    ctx.run_until(task.done, timeout=5)
    with pytest.raises(aiolab.Error, match="aiolab awaitables only"):
        task.result()


def test_create_task_bad_input(ctx):
    async def job():
        pass
    with pytest.raises(TypeError, match="coroutine"):
        ctx.create_task(job)
    c = job()
    ctx.run_until_complete(c)


def test_task_on_iothread(main):
    with aiolab.IOThread("io0") as io:
        done = threading.Event()
        out = {}

        async def job():
            out["tid"] = threading.get_native_id()
            await aiolab.sleep(1_000_000)
            out["w"] = await io.ctx.to_thread(lambda: 7)
            done.set()
        io.ctx.create_task(job())
        assert done.wait(10)
        assert out == {"tid": io.thread_id, "w": 7}
