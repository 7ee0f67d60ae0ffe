# SPDX-License-Identifier: MIT
"""Clients that break the protocol, written byte by byte (server.py's
RawClient): garbage, truncated messages, oversized requests, offsets out
of range, hang-ups in the middle of a request, a client that never reads
its replies.  The daemon must answer what the protocol lets it answer,
drop a client that it cannot, log a clear line for that, and go on
serving the others, whose data stays intact.  Tests marked @reference
run against qemu-storage-daemon too: there the protocol fixes the
outcome, whichever server gives it."""
import socket
import struct
import time

from server import (CMD_DISC, CMD_READ, CMD_TRIM, CMD_WRITE, EINVAL, ENOSPC,
                    FLAG_NO_HOLE, OPT_GO, OPT_INFO, OPT_LIST, OPT_STARTTLS,
                    OPTS_MAGIC, REP_ACK, REP_ERR_INVALID, REP_ERR_POLICY,
                    REP_ERR_UNKNOWN, REP_ERR_UNSUP, REP_SERVER, REQUEST_MAGIC,
                    NBDError, RawClient, make_image, reference, run)

MiB = 1 << 20


def start(env, size=8 * MiB, **kw):
    img = env.path("disk.img")
    make_image(img, size)
    return env.daemon().start_file(img, **kw), img


def good_client(d):
    """A client that keeps working through the others' misbehaviour."""
    c = RawClient(d.nbd_sock)
    c.connect()
    return c


def check_alive(d, c):
    """The daemon still serves: @c (connected before) and a new client."""
    stamp = bytes(range(256)) * 16
    assert c.write(7 * MiB, stamp) == 0
    err, data = c.read(7 * MiB, len(stamp))
    assert err == 0 and data == stamp
    _, out = run(["qemu-io", "-f", "raw", "-c", "read -P 0 0 4k", d.uri()])
    assert "fail" not in out.lower(), out


def stop_and_log(d):
    rc, err = d.stop()
    assert rc == 0, (rc, err)
    return err


def dropped(c):
    assert c.closed_by_server(), "the server did not drop the client"


@reference
def test_garbage_client_flags(env):
    d, _ = start(env)
    c = good_client(d)
    bad = RawClient(d.nbd_sock)
    bad.hello(flags=0xdeadbeef)
    dropped(bad)
    bad = RawClient(d.nbd_sock)
    bad.recv_exact(18)
    bad.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 10)
    dropped(bad)
    check_alive(d, c)
    err = stop_and_log(d)
    if d.kind == "aiolab":
        assert "unsupported client flags 0xdeadbeef, disconnecting" in err, \
            err


def test_bad_and_huge_options(env):
    d, _ = start(env)
    c = good_client(d)
    bad = RawClient(d.nbd_sock)
    bad.hello()
    bad.send(struct.pack(">QII", 0x1122334455667788, OPT_GO, 0))
    dropped(bad)
    bad = RawClient(d.nbd_sock)
    bad.hello()
    bad.send(struct.pack(">QII", OPTS_MAGIC, OPT_GO, 1 << 30))
    dropped(bad)
    bad = RawClient(d.nbd_sock)
    bad.hello()
    bad.send(struct.pack(">QII", OPTS_MAGIC, OPT_GO, 100) + b"x" * 10)
    bad.close()
    time.sleep(0.1)
    check_alive(d, c)
    err = stop_and_log(d)
    assert "bad option magic 0x1122334455667788, disconnecting" in err, err
    assert "option 7 (GO) of 1073741824 bytes is longer than any valid " \
        "option, disconnecting" in err, err
    assert "connection lost in the middle of option GO" in err, err


@reference
def test_option_errors(env):
    """Errors the handshake answers: the client may go on haggling."""
    d, _ = start(env)
    c = RawClient(d.nbd_sock)
    c.hello()
    try:
        c.go("nope")
        raise AssertionError("GO for a missing export succeeded")
    except NBDError as e:
        assert e.args[0] == REP_ERR_UNKNOWN, e
    c.option(99)
    assert c.opt_reply()[1] == REP_ERR_UNSUP
    c.option(OPT_STARTTLS)
    assert c.opt_reply()[1] == REP_ERR_POLICY
    c.option(OPT_LIST, b"junk")
    assert c.opt_reply()[1] == REP_ERR_INVALID
    c.option(OPT_LIST)
    _, rtype, data = c.opt_reply()
    assert rtype == REP_SERVER and data[4:4 + 4] == b"disk", data
    assert c.opt_reply()[1] == REP_ACK
    # INFO whose lengths do not add up: 5 info requests announced, 1 sent.
    c.option(OPT_INFO, struct.pack(">I", 4) + b"disk" + struct.pack(">HH",
                                                                     5, 3))
    assert c.opt_reply()[1] == REP_ERR_INVALID
    # A name longer than the data.
    c.option(OPT_GO, struct.pack(">I", 4000) + b"disk" + struct.pack(">H", 0))
    assert c.opt_reply()[1] == REP_ERR_INVALID
    c.go("disk", structured=False)
    assert c.size == 8 * MiB
    assert c.write(0, b"\x42" * 512) == 0
    assert c.read(0, 512) == (0, b"\x42" * 512)
    stop_and_log(d)


@reference
def test_oldstyle_export_name(env):
    """A newstyle client without fixed newstyle: only EXPORT_NAME, and
    the reply ends with 124 zero bytes."""
    d, _ = start(env)
    c = RawClient(d.nbd_sock)
    c.hello(flags=0)
    c.option(1, b"disk")
    size, flags = struct.unpack(">QH", c.recv_exact(10))
    assert size == 8 * MiB and flags & 1, (size, flags)
    assert c.recv_exact(124) == bytes(124)
    assert c.write(4096, b"\x24" * 4096) == 0
    assert c.read(4096, 4096) == (0, b"\x24" * 4096)
    c.request(CMD_DISC)
    assert c.closed_by_server()
    bad = RawClient(d.nbd_sock)
    bad.hello(flags=0)
    bad.option(1, b"missing")
    dropped(bad)
    stop_and_log(d)


@reference
def test_refused_requests(env):
    """Requests the server answers with an error: the connection goes on
    (the protocol's errno; QEMU 7.2 answers EINVAL to writes past the
    end, where the protocol asks for ENOSPC)."""
    d, _ = start(env)
    for structured in (False, True):
        c = RawClient(d.nbd_sock)
        c.connect(structured=structured)
        assert c.read(8 * MiB, 512)[0] == EINVAL
        assert c.read(2 ** 64 - 512, 512)[0] == EINVAL
        want = EINVAL if d.kind == "qsd" else ENOSPC
        assert c.write(8 * MiB - 1, b"xx") == want
        assert c.cmd(CMD_TRIM, 8 * MiB, 4096)[0] == EINVAL
        assert c.cmd(99, 0, 0)[0] == EINVAL
        assert c.cmd(CMD_READ, 0, 512, flags=FLAG_NO_HOLE)[0] == EINVAL
        assert c.write(0, b"ok" * 256) == 0
        assert c.read(0, 512) == (0, b"ok" * 256)
        c.close()
    stop_and_log(d)


def test_dropped_requests(env):
    """What cannot be answered: the client is dropped, with a log line."""
    d, img = start(env)
    c = good_client(d)
    bad = good_client(d)
    bad.send(struct.pack(">IHHQQI", 0x12345678, 0, CMD_READ, 1, 0, 512))
    dropped(bad)
    bad = good_client(d)
    bad.request(CMD_WRITE, 0, 64 * MiB)      # longer than any payload
    dropped(bad)
    bad = good_client(d)
    bad.send(struct.pack(">IHHQ", REQUEST_MAGIC, 0, CMD_WRITE, 5))
    bad.close()                                # a truncated header
    bad = good_client(d)
    bad.request(CMD_WRITE, MiB, MiB, b"\x66" * 1000)
    bad.close()                                # the data cut short
    time.sleep(0.2)
    check_alive(d, c)
    bad = good_client(d)
    # A read longer than any payload is refused, not dropped.
    assert bad.read(0, 64 * MiB)[0] == EINVAL
    err = stop_and_log(d)
    assert "bad request magic 0x12345678, disconnecting" in err, err
    assert "write longer than the maximum payload (67108864 bytes, at " \
        "most 33554432), disconnecting" in err, err
    assert "connection lost in the middle of a request header" in err, err
    assert "connection lost in the middle of the data of a WRITE " \
        "request" in err, err
    with open(img, "rb") as f:
        f.seek(MiB)
        assert f.read(1000) == bytes(1000), "a cut-short write was written"


def test_many_bad_clients_during_fio(env):
    """Fifty misbehaving connections while fio verifies its writes on
    another connection of the same export."""
    import subprocess
    d, _ = start(env, size=16 * MiB)
    fio = subprocess.Popen(
        ["timeout", "-s", "KILL", "120", "fio", "--name=v", "--ioengine=nbd",
         "--uri=" + d.uri(), "--rw=randwrite", "--bs=4k", "--size=16M",
         "--iodepth=16", "--verify=crc32c", "--do_verify=1",
         "--verify_fatal=1", "--verify_state_save=0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        for i in range(50):
            bad = RawClient(d.nbd_sock)
            if i % 3 == 0:
                bad.send(bytes(range(256)) * (i + 1))
            elif i % 3 == 1:
                bad.connect()
                bad.request(CMD_WRITE, 0, 4096, b"\x01" * 100)
            else:
                bad.connect()
                for k in range(8):
                    bad.request(CMD_READ, k * MiB, MiB, cookie=k)
            bad.close()
        out = fio.communicate(timeout=120)[0].decode()
    finally:
        if fio.poll() is None:
            fio.kill()
            fio.wait()
    assert fio.returncode == 0, out
    assert "err= 0" in out, out
    stop_and_log(d)


def test_client_that_never_reads(env):
    """A client that sends reads and never reads the replies fills its
    socket: the server's sends yield, the others are still served."""
    d, _ = start(env, size=64 * MiB)
    c = good_client(d)
    slow = good_client(d)
    slow.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    for k in range(32):
        slow.request(CMD_READ, k * MiB, MiB, cookie=k)
    time.sleep(0.3)
    check_alive(d, c)
    slow.close()
    time.sleep(0.2)
    check_alive(d, c)
    stop_and_log(d)


@reference
def test_disc_after_writes(env):
    """NBD_CMD_DISC with writes in flight: the server must handle them,
    then close the connection.  aiolab also answers them first; QEMU 7.2
    writes the data but drops the replies."""
    d, img = start(env)
    c = good_client(d)
    for k in range(8):
        c.request(CMD_WRITE, k * 65536, 65536, bytes([k + 1]) * 65536,
                  cookie=100 + k)
    c.request(CMD_DISC)
    if d.kind == "aiolab":
        cookies = sorted(c.reply()[0] for _ in range(8))
        assert cookies == list(range(100, 108)), cookies
    assert c.closed_by_server()
    stop_and_log(d)
    with open(img, "rb") as f:
        for k in range(8):
            assert f.read(65536) == bytes([k + 1]) * 65536, k
