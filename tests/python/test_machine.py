# SPDX-License-Identifier: MIT
"""The toy machine from Python (aiolab.Machine) on this process's
binding: a verify workload in each placement reports zero mismatches,
the report has aiolab-vm's fields, the run state moves as QEMU's does,
a malformed ring breaks only the device, and bad input raises."""
import threading

import pytest

import aiolab


@pytest.fixture
def disk(main, tmp_path):
    """A 16 MiB raw file, node "disk0"."""
    path = tmp_path / "disk.img"
    with open(path, "wb") as f:
        f.truncate(16 << 20)
    with aiolab.bql():
        bs = aiolab.BlockDriverState.open(f"driver=file,filename={path},"
                                          "aio=threads,node-name=disk0")
    yield bs


def clean(st, min_ops):
    assert st["error"] == ""
    assert st["finished"]
    assert st["verify_errors"] == 0 and st["lost"] == 0
    assert st["io_errors"] == 0
    assert st["reads"] + st["writes"] >= min_ops
    assert st["verified"] > 0


@pytest.mark.parametrize("placement", ["ioeventfd-off", "main-loop",
                                       "iothread"])
def test_verify_reports_no_mismatch(disk, placement):
    io = aiolab.IOThread("io0") if placement == "iothread" else None
    with aiolab.Machine(smp=1, ram_size="32M") as m:
        dev = m.add_virtio_blk("disk0", id="vd0", iothread=io,
                               ioeventfd=placement != "ioeventfd-off")
        assert dev.id == "vd0" and m.devices == [dev]
        m.add_workload("vcpu=0,rw=verify,bs=4096,iodepth=4,count=400")
        assert m.runstate == "prelaunch"
        m.start()
        assert m.running
        assert m.run(timeout=60) == "guest-shutdown"
        assert m.guest_done
        clean(m.workload_stats(0), 400)
        r = m.report()
        assert r["errors"] == 0
        assert r["machine"]["smp"] == 1 and r["machine"]["ram"] == 32 << 20
        assert r["machine"]["shutdown"] == "guest-shutdown"
        d, = r["devices"]
        assert d["id"] == "vd0" and d["node-name"] == "disk0"
        assert d["driver"] == "file" and not d["broken"]
        assert d["vq-aio-contexts"] == ["io0" if io else "main-loop"]
        assert d["ioeventfd"] == (placement != "ioeventfd-off")
        w, = r["workloads"]
        assert w["rw"] == "verify" and w["verify_errors"] == 0
        assert w["lost"] == 0 and w["reads"] + w["writes"] >= 400
        assert r["overall"]["ops"] == w["reads"] + w["writes"]
        assert r["overall"]["lat_ns"]["count"] == r["overall"]["ops"]
        lat = r["overall"]["lat_ns"]
        assert 0 < lat["min"] <= lat["p50"] <= lat["p99"] <= lat["max"]
        assert sum(n for _, n in r["overall"]["histogram"]) == lat["count"]
        names = {t["name"] for t in r["threads"]}
        assert {"main", "CPU 0/toy"} <= names
        vcpu = next(t for t in r["threads"] if t["name"] == "CPU 0/toy")
        assert vcpu["tid"] == m.vcpu_thread_id(0)
        if placement == "ioeventfd-off":
            # every kick is an MMIO exit: the vCPU takes the BQL
            assert w["mmio_exits"] > 0 and vcpu["bql"]["acquisitions"] > 0
        if io:
            assert "IO io0" in names
        assert [e["event"] for e in m.events] == ["RESUME", "SHUTDOWN"]
        assert m.events[1]["cause"] == "guest-shutdown"
        if io:
            with pytest.raises(aiolab.Error, match="is used by"):
                io.close()
    assert dev.closed
    if io:
        io.close()


def test_prelaunch_cont_and_stop(disk):
    with aiolab.IOThread("io0") as io, aiolab.Machine(smp=2) as m:
        m.add_virtio_blk(disk, iothread=io, num_queues=2)
        m.add_workload(vcpu=0, rw="verify", bs=4096, iodepth=2, count=200)
        m.add_workload(vcpu=1, rw="verify", bs=4096, iodepth=2, count=200)
        m.start(autostart=False)                # -S
        assert m.runstate == "prelaunch" and not m.running
        m.cont()
        assert m.runstate == "running"
        m.stop()
        assert m.runstate == "paused"
        m.stop()                                # not running: unchanged
        assert m.runstate == "paused"
        m.cont()
        assert m.run(timeout=60) == "guest-shutdown"
        for v in range(2):
            clean(m.workload_stats(v), 200)
        assert [e["event"] for e in m.events] == ["RESUME", "STOP", "RESUME",
                                                  "SHUTDOWN"]
        assert m.devices[0].vq_contexts == ["io0", "io0"]


def test_malformed_ring_breaks_only_the_device(disk):
    with aiolab.IOThread("io0") as io, aiolab.Machine() as m:
        dev = m.add_virtio_blk("disk0", iothread=io)
        m.add_workload("vcpu=0,rw=randwrite,iodepth=4,count=400,"
                       "malformed=100")
        m.start()
        assert m.run(timeout=60) == "guest-shutdown"
        m.vm_shutdown()
        assert dev.broken
        assert dev.last_error == \
            "virtio: bogus descriptor or out of resources"
        assert dev.status & dev.VIRTIO_CONFIG_S_NEEDS_RESET
        st = m.workload_stats(0)
        assert st["finished"] and st["lost"] > 0 and st["writes"] < 100
        assert "needs a reset" in st["error"]
        r = m.report()
        assert r["devices"][0]["broken"] and r["errors"] > 0
        with pytest.raises(aiolab.Error, match="belongs to a machine"):
            dev.kick(0)
        with pytest.raises(aiolab.Error, match="belongs to a machine"):
            dev.reset()


def test_request_shutdown_and_timeout(disk):
    with aiolab.Machine() as m:
        m.add_virtio_blk("disk0")
        m.add_workload("vcpu=0,rw=randread,iodepth=1,runtime=30")
        m.start()
        with pytest.raises(TimeoutError):
            m.run(timeout=0.2)
        assert m.running and not m.guest_done
        m.request_shutdown()
        assert m.run(timeout=30) == "host-qmp-quit"
        assert m.measured_ns > 0


def test_machine_bad_input(disk):
    with pytest.raises(TypeError):
        aiolab.Machine(smp="2")
    with pytest.raises(ValueError):
        aiolab.Machine(ram_size="12X")
    with pytest.raises(aiolab.Error):
        aiolab.Machine(smp=0)
    m = aiolab.Machine(ram_size=16 << 20)
    with pytest.raises(aiolab.Error, match="exists"):
        aiolab.Machine()
    with pytest.raises(aiolab.Error, match="can't find value 'nope'"):
        m.add_virtio_blk("nope")
    with pytest.raises(TypeError):
        m.add_virtio_blk(42)
    with pytest.raises(TypeError, match="IOThread"):
        m.add_virtio_blk("disk0", iothread="io0")
    m.add_virtio_blk("disk0")
    with pytest.raises(aiolab.Error, match="in use"):
        m.add_virtio_blk("disk0")
    with pytest.raises(aiolab.Error, match="Invalid parameter 'speed'"):
        m.add_workload("vcpu=0,speed=3")
    with pytest.raises(aiolab.Error):
        m.add_workload(vcpu=5, rw="randread")       # no vCPU 5
    with pytest.raises(TypeError):
        m.add_workload("vcpu=0", rw="verify")
    with pytest.raises(aiolab.Error, match="start"):
        m.run()
    with pytest.raises(ValueError):
        m.stop("sleepy")
    errors = []

    def elsewhere():
        try:
            m.start()
        except aiolab.Error as e:
            errors.append(str(e))
    t = threading.Thread(target=elsewhere)
    t.start()
    t.join()
    assert errors and "main-loop thread" in errors[0]
    m.close()
    m.close()                                       # idempotent
    with pytest.raises(aiolab.Error, match="closed"):
        m.smp
    with pytest.raises(aiolab.Error, match="closed"):
        m.request_shutdown()


def test_latency_hist():
    h = aiolab.LatencyHist()
    assert h.count == 0 and h.percentile(0.5) == 0 and h.buckets() == []
    for ns in range(1000, 101000, 1000):
        h.add(ns)
    assert h.count == 100 and h.min_ns == 1000 and h.max_ns == 100000
    assert abs(h.percentile(0.5) - 50000) <= 0.03 * 50000
    assert abs(h.percentile(0.99) - 99000) <= 0.03 * 99000
    assert h.mean_ns == pytest.approx(50500)
    assert sum(n for _, n in h.buckets()) == 100
    g = aiolab.LatencyHist()
    g.add(5)
    g.merge(h)
    assert g.count == 101 and g.min_ns == 5
    assert set(g.summary()) == {"count", "p50", "p99", "p99.9", "min",
                                "max", "mean"}
    with pytest.raises(ValueError):
        h.percentile(1.5)
    with pytest.raises(TypeError):
        h.percentile("p99")
    with pytest.raises(TypeError):
        h.merge([1, 2])
    with pytest.raises(TypeError):
        h.add(1.5)


def test_ctrl_c_is_a_shutdown_request(disk):
    """SIGINT while run() sleeps in the main loop: it wakes at once and
    ends the run as QEMU's SIGINT does (cause host-signal)."""
    import os
    import signal
    with aiolab.Machine() as m:
        m.add_virtio_blk("disk0")
        m.add_workload("vcpu=0,rw=randread,iodepth=1,runtime=30")
        m.start()
        t = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
        t.start()
        assert m.run(timeout=20) == "host-signal"   # not TimeoutError
        t.join()
        assert not m.guest_done                     # 30 s of workload
        assert m.events[-1]["event"] == "SHUTDOWN"
        assert m.events[-1]["cause"] == "host-signal"
