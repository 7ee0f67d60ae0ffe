# SPDX-License-Identifier: MIT
"""Property tests (hypothesis): any sequence of BH operations leaves no
leak and runs each scheduled callback exactly as QEMU's rules say."""
from hypothesis import given, settings, strategies as st

import aiolab

OPS = st.lists(st.tuples(st.sampled_from(
    ["schedule", "cancel", "delete", "poll"]), st.integers(0, 3)),
    max_size=60)


@settings(max_examples=60, deadline=None)
@given(OPS)
def test_bh_sequences(ops):
    ctx = aiolab.AioContext()
    try:
        runs = [0] * 4
        bhs = [ctx.bh(lambda i=i: runs.__setitem__(i, runs[i] + 1))
               for i in range(4)]
        expected = [0] * 4
        pending = [False] * 4
        for op, i in ops:
            b = bhs[i]
            if op == "schedule" and not b.deleted:
                b.schedule()
                pending[i] = True
            elif op == "cancel" and not b.deleted:
                b.cancel()
                pending[i] = False
            elif op == "delete":
                b.delete()
                pending[i] = False
            elif op == "poll":
                progress = ctx.poll()
                ran = [p for p in pending]
                for j in range(4):
                    if ran[j]:
                        expected[j] += 1
                pending = [False] * 4
                assert progress == any(ran)
            assert runs == expected
        ctx.close()                 # never "BH leaked"
        assert runs == [e + (1 if p else 0) for e, p in zip(expected,
                                                           pending)]
    finally:
        if not ctx.closed:
            ctx.close()
