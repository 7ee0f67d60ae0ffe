# SPDX-License-Identifier: MIT
"""aiolab-vm from the command line: each placement runs a verify
workload with zero mismatches and puts the queues where QEMU would;
malformed options fail with QEMU-style errors and change nothing; a
malformed guest ring breaks only the device; the trace and the
human-readable report are written."""
import hashlib
import json
import os

VERIFY = "rw=verify,bs=4096,iodepth=4,runtime=0.4"


def verify_clean(report, n_workloads):
    wls = [w for w in report["workloads"] if w["rw"] == "verify"]
    assert len(wls) == n_workloads, wls
    for w in wls:
        assert w["finished"], w
        assert w["verify_errors"] == 0, w
        assert w["lost"] == 0, w
        assert w["io_errors"] == 0, w
        assert w["verified"] > 0, w
        assert w["reads"] + w["writes"] > 50, w
    assert report["errors"] == 0, report["errors"]
    assert report["overall"]["verify_errors"] == 0
    for d in report["devices"]:
        assert not d["broken"], d


def contexts(report):
    return report["devices"][0]["vq-aio-contexts"]


def test_placement_ioeventfd_off(env):
    rc, r, err = env.run_json(
        "-smp", "2", *env.blockdev(),
        "-device", "virtio-blk,drive=disk0,ioeventfd=off,num-queues=2",
        "-workload", "vcpu=0," + VERIFY, "-workload", "vcpu=1," + VERIFY)
    assert rc == 0, err
    verify_clean(r, 2)
    assert not r["devices"][0]["ioeventfd"]
    # every kick was an MMIO exit, so the vCPUs took the BQL for each
    for w in r["workloads"]:
        assert w["mmio_exits"] >= w["kicks"] > 0, w
        t = [t for t in r["threads"] if t["name"] == f"CPU {w['vcpu']}/toy"]
        assert t[0]["bql"]["acquisitions"] >= w["kicks"], t


def test_placement_main_loop(env):
    rc, r, err = env.run_json(
        "-smp", "2", *env.blockdev(),
        "-device", "virtio-blk,drive=disk0,num-queues=2",
        "-workload", "vcpu=0," + VERIFY, "-workload", "vcpu=1," + VERIFY)
    assert rc == 0, err
    verify_clean(r, 2)
    assert contexts(r) == ["main-loop", "main-loop"]
    for w in r["workloads"]:
        assert w["queue"] == w["vcpu"]
        assert w["mmio_exits"] == 0, w           # after boot: none
    main = [t for t in r["threads"] if t["name"] == "main"][0]
    assert main["bql"]["acquisitions"] > 0


def test_placement_iothread(env):
    rc, r, err = env.run_json(
        "-smp", "2", "-object", "iothread,id=io0", *env.blockdev(),
        "-device", "virtio-blk,drive=disk0,iothread=io0,num-queues=2",
        "-workload", "vcpu=0," + VERIFY, "-workload", "vcpu=1," + VERIFY)
    assert rc == 0, err
    verify_clean(r, 2)
    assert contexts(r) == ["io0", "io0"]
    io0 = [t for t in r["threads"] if t["name"] == "IO io0"]
    assert io0 and io0[0].get("bql", {}).get("acquisitions", 0) == 0, io0
    assert io0[0]["cpu_ns"] > 0


def test_placement_vq_mapping_round_robin(env):
    dev = {"driver": "virtio-blk", "drive": "disk0", "num-queues": 4,
           "iothread-vq-mapping": [{"iothread": "io0"}, {"iothread": "io1"}]}
    rc, r, err = env.run_json(
        "-smp", "4", "-object", "iothread,id=io0", "-object",
        "iothread,id=io1", *env.blockdev(), "-device", json.dumps(dev),
        *sum((["-workload", f"vcpu={i}," + VERIFY] for i in range(4)), []))
    assert rc == 0, err
    verify_clean(r, 4)
    assert contexts(r) == ["io0", "io1", "io0", "io1"]
    assert sorted(w["queue"] for w in r["workloads"]) == [0, 1, 2, 3]
    for t in r["threads"]:
        if t["name"].startswith("IO "):
            assert t.get("bql", {}).get("acquisitions", 0) == 0, t


def test_placement_vq_mapping_explicit(env):
    dev = {"driver": "virtio-blk", "drive": "disk0", "num-queues": 3,
           "iothread-vq-mapping": [{"iothread": "io0", "vqs": [0, 2]},
                                   {"iothread": "io1", "vqs": [1]}]}
    rc, r, err = env.run_json(
        "-smp", "3", "-object", "iothread,id=io0", "-object",
        "iothread,id=io1", *env.blockdev(), "-device", json.dumps(dev),
        *sum((["-workload", f"vcpu={i}," + VERIFY] for i in range(3)), []))
    assert rc == 0, err
    verify_clean(r, 3)
    assert contexts(r) == ["io0", "io1", "io0"]


def test_shared_queue_and_mmio_hold(env):
    """Three vCPUs share one queue in an IOThread while a fourth holds the
    BQL 1 ms of every 2: no error, and the holder's time shows up."""
    rc, r, err = env.run_json(
        "-smp", "4", "-object", "iothread,id=io0", *env.blockdev(),
        "-device", "virtio-blk,drive=disk0,iothread=io0",
        *sum((["-workload", f"vcpu={i}," + VERIFY] for i in range(3)), []),
        "-workload", "vcpu=3,mmio-hold=1000,mmio-period=2000")
    assert rc == 0, err
    verify_clean(r, 3)
    hold = [w for w in r["workloads"] if w["vcpu"] == 3][0]
    assert hold["mmio_exits"] > 10 and hold["finished"], hold
    cpu3 = [t for t in r["threads"] if t["name"] == "CPU 3/toy"][0]
    assert cpu3["bql"]["hold_ns"] >= hold["mmio_exits"] * 1000000 * 0.9


def test_malformed_ring_breaks_only_the_device(env):
    rc, r, err = env.run_json(
        *env.blockdev(), "-object", "iothread,id=io0",
        "-device", "virtio-blk,drive=disk0,iothread=io0",
        "-workload", "vcpu=0,rw=randwrite,iodepth=4,count=500,malformed=50")
    assert rc == 2, (rc, err)                 # guest-visible errors
    dev = r["devices"][0]
    assert dev["broken"], dev
    assert "bogus descriptor" in dev["error"], dev
    w = r["workloads"][0]
    assert w["lost"] > 0 and w["finished"], w
    assert "needs a reset" in w["error"], w
    assert "bogus descriptor" in err


def test_trace_and_human_report(env):
    trace = env.path("trace.json")
    rc, out, err = env.run(
        "-smp", "2", *env.blockdev(),
        "-device", "virtio-blk,drive=disk0",
        "-workload", "vcpu=0,rw=randread,iodepth=2,runtime=0.2",
        "-workload", "vcpu=1,mmio-hold=500", "-trace-file", trace,
        "-report-file", env.path("report.txt"))
    assert rc == 0, err
    for text in (out, open(env.path("report.txt")).read()):
        assert "device virtio-blk0: node disk0 (file)" in text, text
        assert "randread" in text and "p99.9" in text
        assert "mmio-hold:" in text
        assert "guest-visible errors: 0" in text
    with open(trace) as f:
        events = json.load(f)
    events = events["traceEvents"] if isinstance(events, dict) else events
    names = {e.get("name") for e in events}
    assert "mmio exit (slow device, BQL held)" in names, sorted(names)[:40]


def test_count_and_seqwrite(env):
    rc, r, err = env.run_json(
        *env.blockdev(), "-device", "virtio-blk,drive=disk0",
        "-workload", "vcpu=0,rw=seqwrite,bs=64k,iodepth=8,count=256")
    assert rc == 0, err
    w = r["workloads"][0]
    assert w["writes"] == 256 and w["reads"] == 0, w
    assert w["bytes_written"] == 256 * 65536
    lat = w["lat_ns"]
    assert 0 < lat["p50"] <= lat["p99"] <= lat["p99.9"] <= lat["max"], lat


def test_completion_polling(env):
    """poll=always: the guest polls its used ring and asks for no
    interrupt (EVENT_IDX's used_event kept away), so the device raises
    none on a queue of its own but its very first (QEMU always signals the
    first check); the default halts and is woken by one per completion at
    QD1.  Shared queues keep their interrupts (a sharer may be halted)
    and a polling vCPU still sees the IPI of one that collected for it."""
    for placement in (["-object", "iothread,id=io0,poll-max-ns=100000",
                       "-device", "virtio-blk,drive=disk0,iothread=io0"],
                      ["-device", "virtio-blk,drive=disk0"]):
        for poll in (",poll=always", ""):
            rc, r, err = env.run_json(
                *env.blockdev(), *placement, "-workload",
                "vcpu=0,rw=randread,iodepth=1,count=300" + poll)
            assert rc == 0, err
            w = r["workloads"][0]
            dev = r["devices"][0]["stats"]
            assert w["reads"] == 300 and w["lost"] == 0, w
            if poll:
                assert w["interrupts"] == 0, (placement, w)
                assert dev["interrupts"] <= 1, (placement, dev)
                assert dev["interrupts_suppressed"] >= 299, (placement, dev)
            else:
                assert w["interrupts"] > 0, (placement, w)
                assert dev["interrupts"] >= w["interrupts"], (placement, dev)
    # bounded polling, then halting
    rc, r, err = env.run_json(
        *env.blockdev(), "-object", "iothread,id=io0",
        "-device", "virtio-blk,drive=disk0,iothread=io0",
        "-workload", "vcpu=0," + VERIFY + ",poll=50")
    assert rc == 0, err
    verify_clean(r, 1)
    # one queue, two vCPUs: one polls, one halts; then both poll
    for polls in ((",poll=always", ""), (",poll=always", ",poll=always")):
        rc, r, err = env.run_json(
            "-smp", "2", "-object", "iothread,id=io0", *env.blockdev(),
            "-device", "virtio-blk,drive=disk0,iothread=io0,num-queues=1",
            "-workload", "vcpu=0," + VERIFY + polls[0],
            "-workload", "vcpu=1," + VERIFY + polls[1])
        assert rc == 0, err
        verify_clean(r, 2)
        assert [w["queue"] for w in r["workloads"]] == [0, 0]


BAD = [
    (["-bogus"], "aiolab-vm: -bogus: invalid option"),
    (["-smp"], "aiolab-vm: -smp: requires an argument"),
    (["-smp", "0"], "aiolab-vm: -smp 0: Invalid CPU topology"),
    (["-m", "lots"], "aiolab-vm: -m lots: Parameter 'size' expects"),
    (["-object", "iothread"], "-object iothread: Parameter 'id' is missing"),
    (["-object", "iothread,id=io0,poll-max-ns=-5"],
     "poll-max-ns value must be in range [0, 9223372036854775807]"),
    (["-object", "iothread,id=io0,poll-grow=x"],
     "Parameter 'poll-grow' expects an integer"),
    (["-object", "thing,id=a"], "invalid object type: thing"),
    (["-blockdev", "driver=null-co,size=1M"],
     "'node-name' must be specified for the root node"),
    (["-blockdev", "driver=nope,node-name=x"], "Unknown driver 'nope'"),
    (["DISK", "-device", "virtio-blk,drive=nope"],
     "-device virtio-blk,drive=nope: Property 'virtio-blk-device.drive' "
     "can't find value 'nope'"),
    (["DISK", "-device", "virtio-net,drive=disk0"],
     "'virtio-net' is not a valid device model name"),
    (["DISK", "-device", "virtio-blk,drive=disk0,bogus=1"],
     "Property 'virtio-blk-device.bogus' not found"),
    (["DISK", "-device", "virtio-blk,drive=disk0,ioeventfd=yes"],
     "Parameter 'ioeventfd' expects 'on' or 'off'"),
    (["DISK", "-device", "virtio-blk,drive=disk0,iothread=io9"],
     "IOThread \"io9\" object does not exist"),
    (["DISK", "-object", "iothread,id=io0", "-device",
      "virtio-blk,drive=disk0,iothread=io0,ioeventfd=off"],
     "ioeventfd is required for iothread"),
    (["DISK", "-device", "virtio-blk,drive=disk0,queue-size=100"],
     "queue-size"),
    (["DISK", "-device", "virtio-blk,drive=disk0", "-device",
      "virtio-blk,drive=disk0"], "it's in use"),
    (["DISK", "-object", "iothread,id=io0", "-device",
      '{"driver":"virtio-blk","drive":"disk0","num-queues":4,'
      '"iothread-vq-mapping":[{"iothread":"io0","vqs":[0,1,2,3,5]}]}'],
     "aiolab-vm: -device virtio-blk: vq index 5 for IOThread \"io0\" must "
     "be less than num_queues 4 in iothread-vq-mapping"),
    (["DISK", "-object", "iothread,id=io0", "-device",
      '{"driver":"virtio-blk","drive":"disk0","num-queues":2,'
      '"iothread-vq-mapping":[{"iothread":"io0","vqs":[0]}]}'],
     "missing vq 1 IOThread assignment in iothread-vq-mapping"),
    (["DISK", "-object", "iothread,id=io0", "-device",
      '{"driver":"virtio-blk","drive":"disk0","iothread":"io0",'
      '"iothread-vq-mapping":[{"iothread":"io0"}]}'],
     "iothread and iothread-vq-mapping properties cannot be set at the "
     "same time"),
    (["DISK", "-device", '{"driver":"virtio-blk","drive":"disk0",'
      '"num-queues":"2"}'],
     "Invalid parameter type for 'num-queues', expected: integer"),
    (["DISK", "-device", '{"driver":"virtio-blk",'], "JSON parse error"),
    (["DISK", "-device", "virtio-blk,drive=disk0",
      "-workload", "vcpu=3,rw=randread"], "vcpu=3 does not exist"),
    (["DISK", "-device", "virtio-blk,drive=disk0",
      "-workload", "vcpu=0,rw=sideways"],
     "Parameter 'rw' does not accept value 'sideways'"),
    (["DISK", "-device", "virtio-blk,drive=disk0",
      "-workload", "vcpu=0,rw=randread,bs=100"], "Parameter 'bs' expects"),
    (["DISK", "-device", "virtio-blk,drive=disk0",
      "-workload", "vcpu=0,rw=randread,colour=red"],
     "Invalid parameter 'colour'"),
    (["DISK", "-device", "virtio-blk,drive=disk0",
      "-workload", "vcpu=0,rw=randread,poll=sometimes"],
     "Parameter 'poll' expects a duration in microseconds (at most 10 s) "
     "or 'always'"),
    (["-qmp", "tcp:localhost:4444"], "only unix:PATH sockets"),
]


def test_bad_options(env):
    """QEMU-style messages, exit status 1, no report, and nothing changed:
    the disk is untouched and no QMP socket is left behind."""
    before = hashlib.sha256(open(env.disk, "rb").read()).hexdigest()
    sock = env.path("qmp.sock")
    for args, msg in BAD:
        args = sum((env.blockdev() if a == "DISK" else [a] for a in args), [])
        if "-device" in args and "-workload" not in args:
            # were the option accepted, the guest would write to the disk
            args += ["-workload", "vcpu=0,rw=randwrite,count=10"]
        rc, out, err = env.run("-qmp", f"unix:{sock},server=on,wait=off",
                               *args)
        assert rc == 1, (args, rc, out, err)
        assert msg in err, (args, err)
        assert err.startswith("aiolab-vm: "), err
        assert out == "", (args, out)
        assert not os.path.exists(sock), args
    after = hashlib.sha256(open(env.disk, "rb").read()).hexdigest()
    assert before == after


def test_help(env):
    rc, out, err = env.run("--help")
    assert rc == 0 and "-workload" in out and "-qmp" in out, out
    rc, out, err = env.run("--version")
    assert rc == 0 and out.startswith("aiolab-vm "), out
