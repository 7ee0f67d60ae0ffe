# SPDX-License-Identifier: MIT
"""Run by test_clients.py's test_nbdsh inside nbdsh (python3-libnbd under
/usr/bin/python3): `nbdsh -c "exec(open(THIS).read())"` with NBD_URI (a
writable 8 MiB export) and NBD_URI_RO (the same node, read-only) in the
environment.  Raises on the first failed check; prints a final line the
test looks for.  Leaves stripe i (MiB i, i < 4) filled with 0xa0 + i."""
import errno
import os

import nbd

MiB = 1 << 20
uri, uri_ro = os.environ["NBD_URI"], os.environ["NBD_URI_RO"]


def connect(u, strict=True):
    h = nbd.NBD()
    if not strict:
        h.set_strict_mode(0)        # send what the server must refuse
    h.connect_uri(u)
    return h


def expect_errno(fn, want):
    try:
        fn()
    except nbd.Error as e:
        # python3-libnbd gives the errno's name ("EINVAL").
        assert e.errno in (want, errno.errorcode[want]), (e.errno, want,
                                                           e.string)
        return
    raise AssertionError(f"no error (wanted errno {want})")


h = connect(uri)
assert h.get_size() == 8 * MiB
assert h.get_structured_replies_negotiated()
assert h.can_flush() and h.can_fua() and h.can_trim() and h.can_zero()
assert not h.is_read_only()
assert h.get_block_size(nbd.SIZE_MAXIMUM) >= MiB

# Round trips, aligned and not.
for off, n in [(0, 4096), (1, 1), (4095, 2), (12345, 54321), (MiB - 7, 14),
               (8 * MiB - 512, 512)]:
    buf = bytes((off + i) % 251 for i in range(n))
    h.pwrite(buf, off)
    assert h.pread(n, off) == buf, (off, n)
h.pwrite(b"\x01" * 65536, 2 * MiB, nbd.CMD_FLAG_FUA)
h.flush()
assert h.pread(65536, 2 * MiB) == b"\x01" * 65536

# Write zeroes, with and without a hole allowed, and fast zero (which
# may refuse with ENOTSUP but must not half-do it).
h.pwrite(b"\x02" * 8192, 3 * MiB)
h.zero(4096, 3 * MiB)
assert h.pread(8192, 3 * MiB) == bytes(4096) + b"\x02" * 4096
h.zero(4096, 3 * MiB + 4096, nbd.CMD_FLAG_NO_HOLE)
assert h.pread(8192, 3 * MiB) == bytes(8192)
h.pwrite(b"\x03" * 4096, 3 * MiB)
try:
    h.zero(4096, 3 * MiB, nbd.CMD_FLAG_FAST_ZERO)
    assert h.pread(4096, 3 * MiB) == bytes(4096)
except nbd.Error as e:
    assert e.errno in (errno.ENOTSUP, "ENOTSUP"), e
    assert h.pread(4096, 3 * MiB) == b"\x03" * 4096
h.trim(65536, 4 * MiB)
h.pwrite(b"\x04" * 4096, 4 * MiB)
assert h.pread(4096, 4 * MiB) == b"\x04" * 4096

# What a strict client would not send: the server refuses it and the
# connection goes on.
hs = connect(uri, strict=False)
expect_errno(lambda: hs.pread(4096, 8 * MiB), errno.EINVAL)
expect_errno(lambda: hs.pread(2, 8 * MiB - 1), errno.EINVAL)
# The protocol asks for ENOSPC on writes past the end; QEMU 7.2 (the
# reference) answers EINVAL.
past_end = errno.EINVAL if os.environ.get("NBD_SERVER") == "qsd" \
    else errno.ENOSPC
expect_errno(lambda: hs.pwrite(b"x" * 4096, 8 * MiB - 100), past_end)
expect_errno(lambda: hs.zero(4096, 8 * MiB), past_end)
expect_errno(lambda: hs.pread(512, 0, nbd.CMD_FLAG_NO_HOLE), errno.EINVAL)
assert hs.pread(4096, 0) == h.pread(4096, 0)
hs.shutdown()
hr = connect(uri_ro, strict=False)
assert hr.is_read_only() and hr.can_multi_conn()
# The protocol asks for EPERM; QEMU 7.2 refuses with EINVAL (commands
# its read-only export does not advertise).
ro_err = errno.EINVAL if os.environ.get("NBD_SERVER") == "qsd" \
    else errno.EPERM
expect_errno(lambda: hr.pwrite(b"x" * 512, 0), ro_err)
expect_errno(lambda: hr.trim(512, 0), ro_err)
expect_errno(lambda: hr.zero(512, 0), ro_err)
assert hr.pread(4096, 0) == h.pread(4096, 0)
hr.shutdown()

# Many requests in flight on one connection (more than the server takes
# at once), and four connections at once, each on its own stripe.
handles = [connect(uri) for _ in range(4)]
bufs = [bytes([0xa0 + i]) * MiB for i in range(4)]
cookies = []
for i, hh in enumerate(handles):
    mine = []
    for k in range(64):
        b = nbd.Buffer.from_bytearray(bytearray(bufs[i][k * 16384:
                                                        (k + 1) * 16384]))
        mine.append(hh.aio_pwrite(b, i * MiB + k * 16384))
    cookies.append(mine)
for hh, mine in zip(handles, cookies):
    while hh.aio_in_flight() > 0:
        hh.poll(-1)
    assert all(hh.aio_command_completed(c) for c in mine)
    hh.flush()
for i in range(4):
    assert h.pread(MiB, i * MiB) == bufs[i], i
for hh in handles:
    hh.shutdown()
h.shutdown()
print("libnbd client: all checks passed")
