# SPDX-License-Identifier: MIT
"""An AioContext driven by an asyncio loop (as in Jupyter)."""
import asyncio
import threading

import aiolab


def test_bh_from_thread_wakes_asyncio(ctx):
    loop = asyncio.new_event_loop()
    got = []
    done = asyncio.Event() if False else None
    n = 300

    async def main():
        handle = aiolab.attach_to_asyncio(ctx, loop)
        fut = loop.create_future()
        bh = ctx.bh(lambda: (got.append(1),
                             len(got) == n and loop.call_soon(
                                 fut.set_result, None)))

        def pinger():
            for i in range(n):
                bh.schedule()
                while len(got) <= i:
                    pass
        threading.Thread(target=pinger, daemon=True).start()
        await asyncio.wait_for(fut, 20)
        handle.detach()
        bh.delete()
    loop.run_until_complete(main())
    loop.close()
    assert len(got) == n
    del done


def test_timer_and_fd_under_asyncio(ctx):
    import os
    loop = asyncio.new_event_loop()
    events = []

    async def main():
        handle = aiolab.attach_to_asyncio(ctx, loop)
        t = ctx.timer(lambda: events.append("timer"))
        t.mod_ns(20_000_000, relative=True)
        r, w = os.pipe()
        ctx.add_reader(r, lambda: (events.append(os.read(r, 1)),
                                   ctx.remove_reader(r)))
        loop.call_later(0.01, os.write, w, b"z")
        for _ in range(200):
            if len(events) == 2:
                break
            await asyncio.sleep(0.01)
        handle.detach()
        t.close()
    loop.run_until_complete(main())
    loop.close()
    assert sorted(map(str, events)) == sorted(["timer", str(b"z")])
