# SPDX-License-Identifier: MIT
"""A real Linux guest (Debian's cloud kernel, under Debian's QEMU with
TCG) on aiolab-storage-daemon's vhost-user-blk export: the guest's own
virtio_blk driver reads, writes patterns with O_DIRECT from several
writers, flushes, reads back and discards; the harness checks what the
guest printed and the image file.  guest.py has the guest's side."""
import json
import os
import re
import time

import guest
from daemon import vhost_export_args

DISK = 16 << 20
MiB = 1 << 20


def patterns(n, size):
    return [os.urandom(size) for _ in range(n)]


def boot(env, pats, queues=1, smp=1, iothreads=(), mapping=False,
         writable=True, reconnect=False, passes=1, node_prefix=(),
         trace=None, kind=None):
    """Start the daemon, then QEMU on its socket: (daemon, guest)."""
    kernel = guest.ensure_kernel()
    initrd = guest.build_initramfs(env.tmp, kernel, pats, passes)
    image = env.path("disk.img")
    sock = env.path("vu.sock")
    if not os.path.exists(image):
        env.image("disk.img", DISK)
    d = env.daemon(kind)
    args = vhost_export_args(d.kind, image, sock, writable, queues,
                             iothreads, mapping, node_prefix)
    d.start(args, [sock], trace)
    env.boot_args = (args, sock, trace)
    g = guest.Guest(kernel, initrd, sock, env.tmp, smp=smp, queues=queues,
                    reconnect=reconnect)
    env.guests.append(g)
    return d, g


def finish(env, d, g, pats, writeback=True):
    """Wait for the guest, stop the daemon cleanly (drain, flush), and
    check everything: returns the guest's results."""
    rc = g.wait()
    assert rc == 0, f"QEMU exited with {rc}"
    assert d.stop() == 0, "the daemon did not exit cleanly on SIGTERM"
    res = g.results()
    bad = guest.check_run(res, pats, env.path("disk.img"), DISK)
    if not writeback:
        # The reference daemon reports a write-through cache (QEMU 7.2's
        # export sets config.wce to 0); everything else must hold.
        bad = [b for b in bad if "write cache" not in b]
    assert not bad, "\n".join(bad)
    assert res["read0"] == guest.sha(bytes(DISK)), "the disk was not empty"
    return res


def test_one_queue(env):
    """One queue in the main loop: the guest's data round-trips, FLUSH is
    negotiated (write-back cache), the image holds every pattern."""
    pats = patterns(4, MiB)
    d, g = boot(env, pats)
    res = finish(env, d, g, pats, writeback=env.kind == "aiolab")
    assert res["mq"] == "1" and res["ro"] == "0", res


test_one_queue.kinds = ["aiolab", "qsd"]
test_one_queue.timeout = 120


def _events(trace):
    with open(trace) as f:
        data = json.load(f)
    return data["traceEvents"] if isinstance(data, dict) else data


def _handled_by(trace):
    """{thread name: {queue: handle passes}} from a daemon trace."""
    events = _events(trace)
    names = {(e["pid"], e["tid"]): e["args"]["name"] for e in events
             if e.get("ph") == "M" and e.get("name") == "thread_name"}
    out = {}
    for e in events:
        if e.get("name") == "virtio_blk_handle_vq" and e.get("ph") in \
                ("B", "X"):
            t = names.get((e["pid"], e["tid"]), str(e["tid"]))
            q = e.get("args", {}).get("arg")
            out.setdefault(t, {}).setdefault(q, 0)
            out[t][q] += 1
    return out


def test_two_queues_two_iothreads(env):
    """-smp 2 with 2 queues spread over 2 IOThreads (iothread-vq-mapping):
    the guest's blk-mq sees 2 hardware queues, its writers (one pinned
    per CPU) use both, and the daemon's trace shows queue 0 handled only
    in io0 and queue 1 only in io1, and the guest's FLUSHes arriving.  (Debian's qemu-storage-daemon 7.2
    binds an export to one IOThread: no reference run.)"""
    pats = patterns(4, MiB)
    trace = env.path("trace.json")
    d, g = boot(env, pats, queues=2, smp=2, iothreads=("io0", "io1"),
                mapping=True, trace=trace)
    res = finish(env, d, g, pats)
    assert res["mq"] == "2", f"the guest sees {res['mq']} queues"
    by = _handled_by(trace)
    io0 = [t for t in by if t.endswith("io0")]
    io1 = [t for t in by if t.endswith("io1")]
    assert io0 and io1, f"queues handled by {by}"
    assert by[io0[0]].get(0, 0) > 0 and by[io1[0]].get(1, 0) > 0, by
    assert 1 not in by[io0[0]] and 0 not in by[io1[0]], by
    flushes = sum(1 for e in _events(trace)
                  if e.get("name") == "virtio_blk_handle_flush")
    assert flushes > 0, "the guest sent no FLUSH (write-back cache?)"


test_two_queues_two_iothreads.timeout = 150


def test_reconnect_after_sigkill(env):
    """The daemon is SIGKILLed with a guest write in flight, a new daemon
    takes the socket, QEMU reconnects (reconnect=1) and hands it the
    in-flight log: the new daemon resubmits what was in flight, the
    writers finish and every byte is right.

    Deterministic: the first daemon's blkdebug node holds the first write
    that reaches it at a breakpoint for good (nothing resumes it), so
    once any writer reports its writes done, that held write - popped,
    hence in the in-flight log - is still in flight, whatever the load.
    The second daemon has no breakpoint."""
    pats = patterns(4, MiB // 4)
    brk = ",break.0.event=write-aio,break.0.tag=held"
    dbg = "driver=blkdebug,node-name=disk0,image=file0"
    d, g = boot(env, pats, iothreads=("io0",), reconnect=True, passes=2,
                node_prefix=(dbg + brk,))
    assert g.wait_for("writing", 90), "the guest never started writing"
    # Another writer finished: writes reached the daemon, and the first
    # of them is held at the breakpoint (its writer cannot finish).
    done = g.wait_for("wrote", 60)
    assert done, "no writer finished beside the held write"
    assert d.alive(), "the first daemon died before the kill"
    d.kill()                            # SIGKILL, by its own PID
    args, sock, trace = env.boot_args
    args = [a.replace(brk, "") for a in args]
    d2 = env.daemon()
    d2.start(args, [sock])
    line = d2.wait_stderr("in flight in the log", timeout=30)
    assert line, "the new daemon never saw requests in flight"
    n = int(re.search(r"(\d+) requests? in flight", line).group(1))
    assert n > 0, line
    finish(env, d2, g, pats)


test_reconnect_after_sigkill.timeout = 120


def test_read_only_export_fails_writes(env):
    """The negative control: with writable=off the guest sees a read-only
    disk (VIRTIO_BLK_F_RO), its writes fail, the image stays empty - and
    the harness's check reports exactly that, so it can fail."""
    pats = patterns(2, MiB // 4)
    d, g = boot(env, pats, writable=False)
    assert g.wait() == 0
    assert d.stop() == 0
    res = g.results()
    assert res["ro"] == "1", res
    bad = guest.check_run(res, pats, env.path("disk.img"), DISK)
    for i in range(len(pats)):
        assert any(b.startswith(f"writer {i}: rc=") for b in bad), bad
        assert any(b == f"image: writer {i}'s region differs"
                   for b in bad), bad
    with open(env.path("disk.img"), "rb") as f:
        assert f.read() == bytes(DISK), "a write reached the image"


test_read_only_export_fails_writes.timeout = 120
