# SPDX-License-Identifier: MIT
"""Machine.report(): the dict aiolab-vm -json prints (c/tools/vm-report.c),
built from the same C accessors, so a notebook reads the same fields a
script reading aiolab-vm's output does."""
from ._backend import B, lib
from ._threads import bql_stats


def _workload(st):
    lat = st["lat_read"].__class__()
    lat.merge(st["lat_read"])
    lat.merge(st["lat_write"])
    el = st["elapsed_ns"]
    ops = st["reads"] + st["writes"]
    mib = (st["bytes_read"] + st["bytes_written"]) / 1048576.0
    out = {k: st[k] for k in (
        "vcpu", "rw", "device", "queue", "finished", "reads", "writes",
        "bytes_read", "bytes_written")}
    out.update(iops=ops * 1e9 / el if el > 0 else 0.0,
               mib_s=mib * 1e9 / el if el > 0 else 0.0, elapsed_ns=el,
               lat_ns=lat.summary(), read_lat_ns=st["lat_read"].summary(),
               write_lat_ns=st["lat_write"].summary(),
               histogram=[list(b) for b in lat.buckets()])
    out.update({k: st[k] for k in (
        "verified", "verify_errors", "lost", "io_errors", "kicks",
        "kicks_suppressed", "interrupts", "mmio_exits", "mmio_hold_ns",
        "error")})
    return out, lat


def _device(m, dev, name):
    st = dev.stats
    ptr = m._ptr
    i = [d for d, _ in m._devices].index(dev)
    bs = lib.blk_bs(lib.aiolab_machine_device_blk(ptr, i))
    has_bs = not B.is_null(bs)
    return {
        "id": name,
        "node-name": B.str(lib.bdrv_get_node_name(bs)) if has_bs else "",
        "driver": B.str(lib.bdrv_get_format_name(bs)) if has_bs else "",
        "num-queues": dev.num_queues, "ioeventfd": dev.ioeventfd_enabled,
        "vq-aio-contexts": dev.vq_contexts, "broken": dev.broken,
        "status": dev.status, "error": dev.last_error,
        "stats": {"reads": st["reads"], "writes": st["writes"],
                  "flushes": st["flushes"], "submits": st["submits_rw"],
                  "merged": st["merged"], "ioerrors": st["ioerrors"],
                  "parked": st["parked"]},
    }


def _threads(m):
    bql = {s["tid"]: s for s in bql_stats()}
    out = []
    for t in m.thread_cpu():
        o = dict(name=t["name"], tid=t["tid"], cpu_ns=t["cpu_ns"])
        s = bql.get(t["tid"])
        if s is not None:
            o["bql"] = dict(acquisitions=s["acquisitions"],
                            contended=s["contended"],
                            wait_ns=s["wait_ns_total"],
                            wait_ns_max=s["wait_ns_max"],
                            hold_ns=s["hold_ns_total"],
                            hold_ns_max=s["hold_ns_max"])
        out.append(o)
    return out


def machine_report(m):
    """The report of Machine m (see Machine.report)."""
    from ._machine import LatencyHist
    devices = [_device(m, d, name) for d, name in m._devices]
    errors = sum(d["broken"] for d in devices)
    workloads, total = [], LatencyHist()
    ops = verr = lost = ioerr = elapsed = 0
    for v in range(m.smp):
        st = m.workload_stats(v)
        if st["has_io"] or st["mmio_exits"] > 0 or st["mmio_hold_ns"] > 0:
            w, lat = _workload(st)
            workloads.append(w)
            if st["has_io"]:
                total.merge(lat)
                ops += st["reads"] + st["writes"]
                elapsed = max(elapsed, st["elapsed_ns"])
        verr += st["verify_errors"]
        lost += st["lost"]
        ioerr += st["io_errors"]
    errors += verr + lost
    return {
        "machine": {"smp": m.smp, "ram": m.ram_size, "shutdown": m._cause,
                    "runstate": m.runstate, "measured_ns": m.measured_ns},
        "devices": devices,
        "workloads": workloads,
        "overall": {"ops": ops,
                    "iops": ops * 1e9 / elapsed if elapsed > 0 else 0.0,
                    "elapsed_ns": elapsed, "lat_ns": total.summary(),
                    "histogram": [list(b) for b in total.buckets()],
                    "verify_errors": verr, "lost": lost,
                    "io_errors": ioerr},
        "threads": _threads(m),
        "errors": errors,
    }
