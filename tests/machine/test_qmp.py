# SPDX-License-Identifier: MIT
"""aiolab-vm's QMP monitor, driven over its unix socket as a real client
would: the greeting and capabilities negotiation, QEMU's error classes
and messages, events with timestamps (STOP, RESUME, SHUTDOWN,
BLOCK_IO_ERROR), stop/cont around a running guest,
x-blockdev-set-iothread refused for a device's node and allowed for a
node no device holds (while the guest does I/O), objects and nodes
added at run time, a broken device seen through x-query-virtio-status."""
import json
import time

from qmp import QMPClient, QMPError

import run as runner

LONG = "rw=verify,bs=4096,iodepth=4,runtime=30"


def vm_with_qmp(env, *args, start=True):
    """Start the VM frozen (-S), connect, and (@start) let it run: events
    that happen at once are not missed (QMP only sends events to clients
    past capabilities negotiation)."""
    sock = env.path("qmp.sock")
    p = env.start("-S", *args, "-json",
                  "-qmp", f"unix:{sock},server=on,wait=off")
    q = QMPClient(sock)
    if start:
        q.execute("cont")
        q.wait_event("RESUME")
    return p, q


def finish(p, timeout=20):
    out, err = p.communicate(timeout=timeout)
    return p.returncode, json.loads(out.decode()), err.decode()


def expect_error(qmp, cls, desc, name, **args):
    try:
        qmp.execute(name, **args)
    except QMPError as e:
        assert e.cls == cls, (name, e.cls, e.desc)
        assert desc in e.desc, (name, e.desc)
        return
    raise AssertionError(f"{name} {args} did not fail")


def test_session(env):
    sock = env.path("qmp.sock")
    p = env.start("-smp", "2", *env.blockdev(), "-object", "iothread,id=io0",
                  "-device", "virtio-blk,drive=disk0,iothread=io0",
                  "-workload", "vcpu=0," + LONG, "-json",
                  "-qmp", f"unix:{sock},server=on,wait=off")
    q = QMPClient(sock, negotiate=False)
    g = q.greeting["QMP"]
    assert g["version"]["qemu"]["major"] == 9, g
    assert g["capabilities"] == [], g
    assert "aiolab" in g["version"]["package"]

    # capabilities negotiation mode
    r = q.cmd("query-status")
    assert r["error"]["class"] == "CommandNotFound", r
    assert "Expecting capabilities negotiation" in r["error"]["desc"]
    r = q.cmd("qmp_capabilities")
    assert r["return"] == {} and r["id"] == 2, r
    r = q.cmd("qmp_capabilities")
    assert r["error"]["class"] == "CommandNotFound", r
    assert "already complete" in r["error"]["desc"]

    # errors: QEMU's classes and wording
    expect_error(q, "CommandNotFound", "The command no-such-thing has not "
                 "been found", "no-such-thing")
    expect_error(q, "GenericError", "Parameter 'bogus' is unexpected",
                 "query-status", bogus=1)
    expect_error(q, "GenericError", "Parameter 'id' is missing",
                 "object-del")
    expect_error(q, "GenericError", "Invalid parameter type for 'id', "
                 "expected: string", "object-del", id=5)
    for raw, desc in [('{"execute": }\n', "JSON parse error"),
                      ('[1, 2]\n', "QMP input must be a JSON object"),
                      ('{"arguments": {}}\n',
                       "QMP input lacks member 'execute'"),
                      ('{"execute": 1}\n', "'execute' must be a string"),
                      ('{"execute": "stop", "x": 1}\n',
                       "QMP input member 'x' is unexpected")]:
        q.send_raw(raw)
        r = q.recv_reply()
        assert r["error"]["class"] == "GenericError", (raw, r)
        assert desc in r["error"]["desc"], (raw, r)

    # the stream: one command cut in two, two commands in one write; ids
    # of any JSON type come back
    q.send_raw('{"execute": "query-st')
    time.sleep(0.1)
    q.send_raw('atus", "id": {"n": [1]}}{"execute": "query-status", '
               '"id": "two"}\r\n')
    a, b = q.recv_reply(), q.recv_reply()
    assert a["id"] == {"n": [1]} and a["return"]["status"] == "running", a
    assert b["id"] == "two", b

    # a second client gets the events too
    q2 = QMPClient(sock)

    # stop / cont: STOP and RESUME, with timestamps
    assert q.execute("stop") == {}
    ev = q.wait_event("STOP")
    assert set(ev["timestamp"]) == {"seconds", "microseconds"}, ev
    assert isinstance(ev["timestamp"]["microseconds"], int)
    assert "data" not in ev
    q2.wait_event("STOP")
    st = q.execute("query-status")
    assert st == {"running": False, "status": "paused"}, st
    assert q.execute("stop") == {}                  # stopping again: fine
    assert q.execute("cont") == {}
    q.wait_event("RESUME")
    q2.wait_event("RESUME")
    assert q.execute("query-status")["status"] == "running"

    cpus = q.execute("query-cpus-fast")
    assert [c["cpu-index"] for c in cpus] == [0, 1], cpus
    assert all(c["thread-id"] > 0 for c in cpus), cpus
    its = q.execute("query-iothreads")
    assert [i["id"] for i in its] == ["io0"], its
    assert its[0]["poll-max-ns"] == 32768 and its[0]["thread-id"] > 0
    blk = q.execute("query-block")
    assert blk[0]["inserted"]["node-name"] == "disk0", blk
    assert blk[0]["qdev"] == "/machine/peripheral/virtio-blk0/virtio-backend"

    # quit: the reply, then SHUTDOWN, then the connection closes
    assert q.execute("quit") == {}
    ev = q.wait_event("SHUTDOWN")
    assert ev["data"] == {"guest": False, "reason": "host-qmp-quit"}, ev
    assert q.recv() is None
    rc, report, err = finish(p)
    assert rc == 0, err
    w = report["workloads"][0]
    assert w["verify_errors"] == 0 and w["lost"] == 0 and w["verified"], w


def test_set_iothread(env):
    """The device's node is refused (QEMU's two messages) and stays where
    it is; a node no device holds moves while the guest does I/O."""
    p, q = vm_with_qmp(
        env, "-smp", "2", "-object", "iothread,id=io0", "-object",
        "iothread,id=io1", *env.blockdev(),
        "-blockdev", "driver=null-co,size=64M,node-name=scratch",
        "-device", "virtio-blk,drive=disk0,iothread=io0",
        "-workload", "vcpu=0," + LONG, "-workload", "vcpu=1," + LONG)

    def where(node):
        nodes = q.execute("query-named-block-nodes")
        return [n["x-aio-context"] for n in nodes if n["node-name"] == node][0]

    # the guest's driver starts ioeventfd (DRIVER_OK): then the device's
    # BlockBackend and node are in the device's IOThread
    deadline = time.monotonic() + 10
    while where("disk0") != "io0" and time.monotonic() < deadline:
        time.sleep(0.01)
    assert where("disk0") == "io0" and where("scratch") == "main-loop"
    expect_error(q, "GenericError", "Node disk0 is associated with a "
                 "BlockBackend and could be in use (use force=true to "
                 "override this check)", "x-blockdev-set-iothread",
                 **{"node-name": "disk0", "iothread": "io1"})
    expect_error(q, "GenericError", "Cannot change iothread of active "
                 "block backend", "x-blockdev-set-iothread",
                 **{"node-name": "disk0", "iothread": "io1", "force": True})
    expect_error(q, "GenericError", "Cannot change iothread of active "
                 "block backend", "x-blockdev-set-iothread",
                 **{"node-name": "disk0", "iothread": None, "force": True})
    assert where("disk0") == "io0"
    assert q.execute("query-block")[0]["x-aio-context"] == "io0"

    time.sleep(0.1)                         # the guest is busy now
    for target, name in 3 * [("io1", "io1"), ("io0", "io0"),
                             (None, "main-loop")]:
        assert q.execute("x-blockdev-set-iothread", **{
            "node-name": "scratch", "iothread": target}) == {}
        assert where("scratch") == name
        time.sleep(0.02)
    expect_error(q, "GenericError", "Cannot find iothread nope",
                 "x-blockdev-set-iothread",
                 **{"node-name": "scratch", "iothread": "nope"})
    expect_error(q, "GenericError", "Failed to find node with "
                 "node-name='nope'", "x-blockdev-set-iothread",
                 **{"node-name": "nope", "iothread": "io0"})
    assert q.execute("query-status")["status"] == "running"
    q.execute("quit")
    rc, report, err = finish(p)
    assert rc == 0, err
    assert len(report["workloads"]) == 2, report["workloads"]
    for w in report["workloads"]:
        assert w["verify_errors"] == 0 and w["lost"] == 0, w
        assert w["verified"] > 0, w        # quit while it still ran
        assert w["reads"] + w["writes"] > 0


def werror_stop(env, placement):
    """A write fails once with ENOSPC under werror=stop: BLOCK_IO_ERROR,
    then the STOP it caused (QEMU's order), and "io-error"; cont
    re-issues the parked request."""
    p, q = vm_with_qmp(
        env, *env.blockdev(),
        "-blockdev", "driver=blkdebug,image=disk0,node-name=dbg0,"
        "inject-error.0.iotype=write,inject-error.0.errno=28,"
        "inject-error.0.once=on",
        "-object", "iothread,id=io0",
        "-device", f"virtio-blk,drive=dbg0,{placement},werror=stop,id=vd0",
        "-workload", "vcpu=0,rw=verify,iodepth=4,count=400")
    ev = q.wait_event("BLOCK_IO_ERROR")
    d = ev["data"]
    assert d["node-name"] == "dbg0" and d["operation"] == "write", d
    assert d["action"] == "stop" and d["nospace"] is True, d
    assert d["qom-path"] == "/machine/peripheral/vd0/virtio-backend", d
    q.wait_event("STOP")
    order = [e["event"] for e in q.event_log
             if e["event"] in ("BLOCK_IO_ERROR", "STOP")]
    assert order == ["BLOCK_IO_ERROR", "STOP"], order
    assert q.execute("query-status") == {"running": False,
                                         "status": "io-error"}
    q.execute("cont")
    q.wait_event("RESUME")
    ev = q.wait_event("SHUTDOWN")
    assert ev["data"] == {"guest": True, "reason": "guest-shutdown"}, ev
    rc, report, err = finish(p)
    assert rc == 0, err
    w = report["workloads"][0]
    assert w["writes"] + w["reads"] == 400, w
    assert w["verify_errors"] == 0 and w["io_errors"] == 0, w
    assert report["devices"][0]["stats"]["parked"] == 0


def test_werror_stop(env):
    werror_stop(env, "iothread=io0")


def test_werror_stop_ioeventfd_off(env):
    """The error is handled in the main loop, and nothing in vm_stop polls
    it before the STOP: the STOP came first before the fix."""
    werror_stop(env, "ioeventfd=off")


def test_prelaunch(env):
    p, q = vm_with_qmp(env, *env.blockdev(),
                       "-device", "virtio-blk,drive=disk0",
                       "-workload", "vcpu=0,rw=verify,count=100",
                       start=False)
    assert q.execute("query-status") == {"running": False,
                                         "status": "prelaunch"}
    q.execute("cont")
    q.wait_event("RESUME")
    q.wait_event("SHUTDOWN")
    rc, report, err = finish(p)
    assert rc == 0, err
    assert report["workloads"][0]["verify_errors"] == 0


def test_broken_device(env):
    """A malformed ring breaks the device; QMP shows it; the VM (with
    -no-shutdown) stays up and needs a reset to run again."""
    p, q = vm_with_qmp(
        env, "-no-shutdown", *env.blockdev(), "-object", "iothread,id=io0",
        "-device", "virtio-blk,drive=disk0,iothread=io0,id=vd0",
        "-workload", "vcpu=0,rw=randwrite,iodepth=2,count=300,malformed=20")
    q.wait_event("SHUTDOWN")
    q.wait_event("STOP")
    assert q.execute("query-status")["status"] == "shutdown"
    path = "/machine/peripheral/vd0/virtio-backend"
    assert q.execute("x-query-virtio") == [{"path": path,
                                            "name": "virtio-blk"}]
    st = q.execute("x-query-virtio-status", path=path)
    assert st["broken"] is True, st
    assert "VIRTIO_CONFIG_S_NEEDS_RESET" in st["status"]["statuses"], st
    assert "bogus descriptor" in st["x-last-error"], st
    expect_error(q, "GenericError", "Path /nope is not a VirtIODevice",
                 "x-query-virtio-status", path="/nope")
    expect_error(q, "GenericError", "Resetting the Virtual Machine is "
                 "required", "cont")
    q.execute("quit")
    rc, report, err = finish(p)
    assert rc == 2, err
    assert report["devices"][0]["broken"]


def test_objects_and_nodes(env):
    p, q = vm_with_qmp(env, "-object", "iothread,id=io0", *env.blockdev(),
                       "-device", "virtio-blk,drive=disk0,iothread=io0",
                       "-workload", "vcpu=0," + LONG)
    q.execute("object-add", **{"qom-type": "iothread", "id": "io5",
                               "poll-max-ns": 0, "aio-max-batch": 8})
    its = {i["id"]: i for i in q.execute("query-iothreads")}
    assert its["io5"]["poll-max-ns"] == 0, its
    assert its["io5"]["aio-max-batch"] == 8, its
    expect_error(q, "GenericError", "attempt to add duplicate property "
                 "'io5'", "object-add", **{"qom-type": "iothread",
                                           "id": "io5"})
    expect_error(q, "GenericError", "Parameter 'qom-type' does not accept "
                 "value 'memory-backend-ram'", "object-add",
                 **{"qom-type": "memory-backend-ram", "id": "m"})
    expect_error(q, "GenericError", "Parameter 'poll-grw' is unexpected",
                 "object-add", **{"qom-type": "iothread", "id": "io6",
                                  "poll-grw": 1})
    expect_error(q, "GenericError", "object 'io0' is in use, can not be "
                 "deleted", "object-del", id="io0")
    expect_error(q, "GenericError", "object 'io9' not found", "object-del",
                 id="io9")

    q.execute("blockdev-add", driver="null-co", size=1 << 20,
              **{"node-name": "extra", "read-zeroes": True})
    names = [n["node-name"] for n in q.execute("query-named-block-nodes")]
    assert "extra" in names, names
    q.execute("x-blockdev-set-iothread", **{"node-name": "extra",
                                            "iothread": "io5"})
    expect_error(q, "GenericError", "object 'io5' is in use",
                 "object-del", id="io5")
    q.execute("x-blockdev-set-iothread", **{"node-name": "extra",
                                            "iothread": None})
    assert q.execute("object-del", id="io5") == {}
    assert "io5" not in [i["id"] for i in q.execute("query-iothreads")]
    expect_error(q, "GenericError", "'node-name' must be specified",
                 "blockdev-add", driver="null-co")
    expect_error(q, "GenericError", "Parameter 'driver' is missing",
                 "blockdev-add", **{"node-name": "x"})
    q.execute("quit")
    rc, report, err = finish(p)
    assert rc == 0, err


def test_mirror(env):
    """blockdev-mirror to a second image while the guest writes, then
    switch-over: the guest's final sweep reads every block back from the
    target."""
    target = env.path("target.img")
    with open(target, "wb") as f:
        f.truncate(32 << 20)
    # -no-shutdown: on a loaded machine the guest's 3 s can end before
    # the second mirror is cancelled; the VM must stay for QMP.
    p, q = vm_with_qmp(
        env, "-no-shutdown", "-smp", "2", "-object", "iothread,id=io0",
        *env.blockdev(), *env.blockdev("tgt", target),
        "-device", "virtio-blk,drive=disk0,iothread=io0",
        "-workload", "vcpu=0,rw=verify,iodepth=4,runtime=3",
        "-workload", "vcpu=1,rw=verify,iodepth=4,runtime=3")
    r = q.cmd("blockdev-mirror", **{"job-id": "m0", "device": "disk0",
                                    "target": "tgt", "sync": "full"})
    if "error" in r and "not available" in r["error"]["desc"]:
        q.execute("quit")
        p.communicate(timeout=20)
        raise runner.Skip("the mirror job has not landed")
    assert "error" not in r, r
    expect_error(q, "GenericError", "Parameter 'sync' does not accept value "
                 "'most'", "blockdev-mirror", device="disk0", target="tgt",
                 sync="most")
    expect_error(q, "GenericError", "Cannot find device='nope' nor "
                 "node-name='nope'", "blockdev-mirror", device="nope",
                 target="tgt", sync="full")
    expect_error(q, "DeviceNotActive", "Block job 'm9' not found",
                 "block-job-complete", device="m9")
    ev = q.wait_event("BLOCK_JOB_READY", timeout=20)
    assert ev["data"]["device"] == "m0" and ev["data"]["type"] == "mirror"
    jobs = q.execute("query-block-jobs")
    assert jobs[0]["device"] == "m0" and jobs[0]["ready"], jobs
    assert jobs[0]["type"] == "mirror" and jobs[0]["io-status"] == "ok"
    assert jobs[0]["len"] >= 32 << 20, jobs      # plus re-copied writes
    q.execute("block-job-complete", device="m0")
    ev = q.wait_event("BLOCK_JOB_COMPLETED", timeout=20)
    assert "error" not in ev["data"], ev
    assert ev["data"]["offset"] == ev["data"]["len"], ev
    blk = q.execute("query-block")
    assert blk[0]["inserted"]["node-name"] == "tgt", blk
    assert q.execute("query-block-jobs") == []

    # and back, cancelled once ready: the guest stays on tgt
    q.execute("blockdev-mirror", **{"job-id": "m1", "device": "tgt",
                                    "target": "disk0", "sync": "full"})
    q.wait_event("BLOCK_JOB_READY", timeout=20)
    q.execute("block-job-cancel", device="m1", force=True)
    q.wait_event("BLOCK_JOB_CANCELLED", timeout=20)
    blk = q.execute("query-block")
    assert blk[0]["inserted"]["node-name"] == "tgt", blk
    q.wait_event("SHUTDOWN", timeout=20)   # the guest is done
    q.execute("quit")
    rc, report, err = finish(p)
    assert rc == 0, err
    assert len(report["workloads"]) == 2, report["workloads"]
    for w in report["workloads"]:
        assert w["verify_errors"] == 0 and w["lost"] == 0, w
        assert w["finished"] and w["verified"] > 0, w


test_mirror.timeout = 60
