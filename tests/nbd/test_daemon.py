# SPDX-License-Identifier: MIT
"""aiolab-storage-daemon itself: its command line (QEMU-style errors,
exit status 1, nothing left behind), QMP (exports added and removed at
run time, the NBD server stopped and restarted, BLOCK_EXPORT_DELETED,
quit), shutdown by signal with clients in the middle of their I/O, and
the export following its node between AioContexts and through a
mirror's switch-over while a client verifies every write."""
import json
import os
import signal
import subprocess
import time

from qmp import QMPClient, QMPError
from server import (CMD_READ, RawClient, Skip, file_bytes, make_image,
                    pattern_bytes, run)

MiB = 1 << 20


def qx(q, cmd, args):
    """q.execute() for commands with a "name" argument (block-export-add):
    the arguments as a dict."""
    req = {"execute": cmd, "arguments": args, "id": q.next_id}
    q.next_id += 1
    q.send_raw(json.dumps(req) + "\n")
    reply = q.recv_reply()
    if "error" in reply:
        raise QMPError(reply)
    return reply["return"]


def daemon_argv(env, *args):
    d = env.daemon()
    return d, [d.prog, *args]


def expect_cli_error(env, args, message):
    d, argv = daemon_argv(env, *args)
    rc, out = run(argv, timeout=20, check=False)
    assert rc == 1, (rc, out)
    assert out.strip().splitlines()[-1] == message, out
    return d


def test_command_line_errors(env):
    img = env.path("disk.img")
    make_image(img, MiB)
    sock = env.path("nbd.sock")
    bd = f"driver=file,node-name=disk0,filename={img}"
    srv = f"addr.type=unix,addr.path={sock}"
    p = "aiolab-storage-daemon: "
    expect_cli_error(env, ["--frobnicate"],
                     p + "--frobnicate: unrecognized option (try --help)")
    expect_cli_error(env, ["--blockdev"], p + "--blockdev: requires an "
                     "argument")
    expect_cli_error(env, ["--blockdev", "driver=file,filename=/nonexistent/x,"
                           "node-name=a"],
                     p + "--blockdev driver=file,filename=/nonexistent/x,"
                     "node-name=a: Could not open '/nonexistent/x': No such "
                     "file or directory")
    expect_cli_error(env, ["--blockdev", f"driver=file,filename={img}"],
                     p + f"--blockdev driver=file,filename={img}: "
                     "'node-name' must be specified for the root node")
    expect_cli_error(env, ["--blockdev", bd, "--export",
                           "type=nbd,id=e0,node-name=disk0"],
                     p + "--export type=nbd,id=e0,node-name=disk0: NBD "
                     "server not running")
    expect_cli_error(env, ["--blockdev", bd, "--nbd-server", srv, "--export",
                           "type=nbd,id=e0,node-name=disk1"],
                     p + "--export type=nbd,id=e0,node-name=disk1: Cannot "
                     "find device='' nor node-name='disk1'")
    expect_cli_error(env, ["--blockdev", bd, "--nbd-server", srv, "--export",
                           "type=nbd,id=e0,node-name=disk0,nmae=x"],
                     p + "--export type=nbd,id=e0,node-name=disk0,nmae=x: "
                     "Parameter 'nmae' is unexpected")
    expect_cli_error(env, ["--blockdev", bd, "--nbd-server", srv, "--export",
                           "type=nbd,id=e0,node-name=disk0", "--export",
                           "type=nbd,id=e1,node-name=disk0"],
                     p + "--export type=nbd,id=e1,node-name=disk0: NBD "
                     "server already has export named 'disk0'")
    expect_cli_error(env, ["--blockdev", bd, "--export",
                           "type=fuse,id=e0,node-name=disk0"],
                     p + "--export type=fuse,id=e0,node-name=disk0: export "
                     "type 'fuse' is not available")
    expect_cli_error(env, ["--blockdev", bd, "--nbd-server", srv, "--export",
                           "type=nbd,id=e0,node-name=disk0,iothread=io9"],
                     p + "--export type=nbd,id=e0,node-name=disk0,"
                     "iothread=io9: iothread \"io9\" not found")
    expect_cli_error(env, ["--nbd-server", "addr.type=inet,addr.path=x"],
                     p + "--nbd-server addr.type=inet,addr.path=x: addr.type "
                     "'inet' is not supported (only unix)")
    expect_cli_error(env, ["--object", "memory-backend-ram,id=m"],
                     p + "--object memory-backend-ram,id=m: invalid object "
                     "type: memory-backend-ram")
    expect_cli_error(env, ["--monitor", "chardev=nope"],
                     p + "--monitor chardev=nope: chardev \"nope\" not found")
    # A failed start leaves no socket behind (the server had started).
    assert not os.path.exists(sock)
    _, argv = daemon_argv(env, "--help")
    _, out = run(argv, timeout=10)
    assert "--export [type=]nbd" in out and "--nbd-server" in out, out


def start_qmp(env, image_size=16 * MiB, extra=()):
    img = env.path("disk.img")
    make_image(img, image_size)
    d = env.daemon("aiolab")
    d.start([f"driver=file,node-name=disk0,filename={img}"],
            ["type=nbd,id=exp0,node-name=disk0,name=disk,writable=on"],
            extra=extra)
    return d, QMPClient(d.qmp_sock), img


def test_qmp_exports(env):
    d, q, img = start_qmp(env)
    exps = q.execute("query-block-exports")
    assert exps == [{"id": "exp0", "type": "nbd", "node-name": "disk0",
                     "shutting-down": False}], exps
    q.execute("blockdev-add", driver="null-co", **{"node-name": "null0",
                                                   "size": 4 * MiB,
                                                   "read-zeroes": True})
    qx(q, "block-export-add", {"type": "nbd", "id": "exp1",
                               "node-name": "null0", "name": "zeroes"})
    _, out = run(["nbdinfo", "--size", d.uri("zeroes")])
    assert out.strip() == str(4 * MiB), out
    try:
        qx(q, "block-export-add", {"type": "nbd", "id": "exp1",
                                   "node-name": "null0", "name": "z2"})
        raise AssertionError("duplicate id accepted")
    except QMPError as e:
        assert e.desc == "Block export id 'exp1' is already in use", e.desc
    # A connected client: "safe" refuses, "hard" disconnects it.
    c = RawClient(d.nbd_sock)
    c.connect("zeroes")
    try:
        q.execute("block-export-del", id="exp1")
        raise AssertionError("safe removal of a used export accepted")
    except QMPError as e:
        assert e.desc.startswith("export 'exp1' still in use"), e.desc
    q.execute("block-export-del", id="exp1", mode="hard")
    ev = q.wait_event("BLOCK_EXPORT_DELETED")
    assert ev["data"] == {"id": "exp1"}, ev
    assert c.closed_by_server()
    try:
        q.execute("block-export-del", id="exp1")
        raise AssertionError("removed twice")
    except QMPError as e:
        assert e.desc == "Export 'exp1' is not found", e.desc
    # Stopping the server closes its exports; it can start again.
    q.execute("nbd-server-stop")
    q.wait_event("BLOCK_EXPORT_DELETED")
    assert q.execute("query-block-exports") == []
    assert not os.path.exists(d.nbd_sock)
    q.execute("nbd-server-start", addr={"type": "unix",
                                        "data": {"path": d.nbd_sock}})
    qx(q, "block-export-add", {"type": "nbd", "id": "exp2", "writable": True,
                               "node-name": "disk0", "name": "disk"})
    _, out = run(["qemu-io", "-f", "raw", "-c", "write -P 0x3c 0 64k",
                  d.uri()])
    nodes = [n["node-name"] for n in q.execute("query-named-block-nodes")]
    assert sorted(nodes) == ["disk0", "null0"], nodes
    q.execute("quit")
    rc, err = d.stop()
    assert rc == 0, err
    assert file_bytes(img)[:65536] == b"\x3c" * 65536
    assert not os.path.exists(d.qmp_sock)


def test_sigterm_during_io(env):
    """SIGTERM while fio writes through two connections: the daemon
    drains, flushes and exits 0, removes its sockets and pidfile."""
    img = env.path("disk.img")
    make_image(img, 32 * MiB)
    pid = env.path("daemon.pid")
    d = env.daemon("aiolab")
    d.start([f"driver=file,node-name=disk0,filename={img},aio=threads"],
            ["type=nbd,id=exp0,node-name=disk0,name=disk,writable=on"],
            objects=["iothread,id=io0"], extra=["--pidfile", pid])
    assert int(open(pid).read()) == d.proc.pid
    fios = [subprocess.Popen(
        ["timeout", "-s", "KILL", "60", "fio", "--name=w", "--ioengine=nbd",
         "--uri=" + d.uri(), "--rw=randwrite", "--bs=64k", "--size=32M",
         "--iodepth=16", "--time_based", "--runtime=30"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL) for _ in range(2)]
    try:
        time.sleep(1.0)
        t0 = time.monotonic()
        rc, err = d.stop(signal.SIGTERM)
        dt = time.monotonic() - t0
    finally:
        for f in fios:
            f.wait(timeout=60)
    assert rc == 0, err
    assert dt < 10, dt
    for path in (d.nbd_sock, d.qmp_sock, pid):
        assert not os.path.exists(path), path
    # A client after the daemon is gone: refused, not hung.
    rc, out = run(["qemu-img", "info", d.uri()], check=False)
    assert rc != 0, out


def test_follow_node_between_contexts(env):
    """x-blockdev-set-iothread moves the exported node between the main
    loop and two IOThreads, again and again, while fio verifies its
    writes: each move drains the export (its receive loops park) and
    the connections follow the node (drained_end restarts them there)."""
    img = env.path("disk.img")
    make_image(img, 16 * MiB)
    d = env.daemon("aiolab")
    d.start([f"driver=file,node-name=disk0,filename={img}"],
            ["type=nbd,id=exp0,node-name=disk0,name=disk,writable=on"],
            objects=["iothread,id=io0", "iothread,id=io1"])
    q = QMPClient(d.qmp_sock)
    fio = subprocess.Popen(
        ["timeout", "-s", "KILL", "120", "fio", "--name=v", "--ioengine=nbd",
         "--uri=" + d.uri(), "--rw=randwrite", "--bs=4k", "--size=16M",
         "--iodepth=16", "--verify=crc32c", "--do_verify=1",
         "--verify_fatal=1", "--verify_state_save=0", "--numjobs=1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    moves = 0
    try:
        while fio.poll() is None and moves < 300:
            q.execute("x-blockdev-set-iothread",
                      **{"node-name": "disk0",
                         "iothread": [None, "io0", "io1"][moves % 3]})
            moves += 1
        out = fio.communicate(timeout=120)[0].decode()
    finally:
        if fio.poll() is None:
            fio.kill()
            fio.wait()
    assert fio.returncode == 0, out
    assert moves >= 3, moves
    rc, err = d.stop()
    assert rc == 0, err


def test_mirror_under_export(env):
    """blockdev-mirror of the exported node to another file while qemu-io
    writes through the export; on completion the export's BlockBackend
    is switched to the target inside a drained section, and every write
    is in the target."""
    img, tgt = env.path("disk.img"), env.path("target.img")
    make_image(img, 16 * MiB, seed=5)
    make_image(tgt, 16 * MiB)
    d = env.daemon("aiolab")
    d.start([f"driver=file,node-name=disk0,filename={img}",
             f"driver=file,node-name=tgt0,filename={tgt}"],
            ["type=nbd,id=exp0,node-name=disk0,name=disk,writable=on"],
            objects=["iothread,id=io0"])
    q = QMPClient(d.qmp_sock)
    c = RawClient(d.nbd_sock)
    c.connect()
    q.execute("blockdev-mirror", device="disk0", target="tgt0", sync="full",
              **{"job-id": "m0"})
    written = {}
    for k in range(200):
        off = (k * 7919 % 4096) * 4096
        data = bytes([k % 251 + 1]) * 4096
        assert c.write(off, data) == 0
        written[off] = data
    q.wait_event("BLOCK_JOB_READY", timeout=30)
    q.execute("block-job-complete", device="m0")
    q.wait_event("BLOCK_JOB_COMPLETED", timeout=30)
    for k in range(200, 260):
        off = (k * 7919 % 4096) * 4096
        data = bytes([k % 251 + 1]) * 4096
        assert c.write(off, data) == 0
        written[off] = data
    exps = q.execute("query-block-exports")
    assert exps[0]["node-name"] == "tgt0", exps
    rc, err = d.stop()
    assert rc == 0, err
    src = bytearray(pattern_bytes(16 * MiB, 5))
    for off, data in written.items():
        src[off:off + 4096] = data
    assert file_bytes(tgt) == bytes(src)
