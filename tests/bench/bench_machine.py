# SPDX-License-Identifier: MIT
"""The toy machine's rows of tests/bench/run.py (rows_machine.py): the
whole guest -> virtqueue -> block layer -> completion -> interrupt path of
build/bin/aiolab-vm, and the peers it is held against (fio, qemu-img
bench), each run pinned the way the row says.

Usage: /usr/bin/python3 tests/bench/bench_machine.py ROW IMPL [key=value ...]
                                           cpu=N cpu2=M [quick=1]
  IMPL  vm        aiolab-vm (AIOLAB_BENCH_BUILD/bin/aiolab-vm), one
                  virtio-blk device, vCPU 0 running rw=randread, bs=4096
        fio       fio on the same disk image, one job, rw=randread, bs=4k
        qemu-img  qemu-img bench on null-co (QEMU's block layer, no device)
  keys (vm)
        backend=null|file   null-co (size 1G) or the disk image with
                            cache.direct=on (default null)
        aio=io_uring|threads  the file node's aio= (default io_uring)
        direct=on|off       the file node's cache.direct= (default on; off
                            reads through the host page cache)
        placement=iothread|main  the disk in IOThread io0 (default) or in
                            the main loop
        iodepth=N           the guest's requests in flight (32)
        poll_max_ns=N       io0's poll-max-ns (default: QEMU's 32768)
        aio_max_batch=N     io0's aio-max-batch (default 0: the engine's)
        guest_poll=US|always  the workload's poll= (completion polling)
        pin=split|same      split (default): vCPUs (and the main thread,
                            unless placement=main) on cpu2, the IOThread on
                            cpu; same: every thread on cpu
        hold=1              -smp 2: vCPU 1 holds the BQL for 1 ms every
                            2 ms (mmio-hold=1000,mmio-period=2000)
        trace=on|off        aiolab's tracing (AIOLAB_TRACE=0 when off)
  keys (fio)
        engine=io_uring|psync|...  ioengine (default io_uring)
        iodepth=N
  keys (qemu-img)
        iodepth=N

Pinning (os.sched_setaffinity on kernel thread ids): aiolab-vm starts with
-S and a QMP socket; its vCPU threads (query-cpus-fast) go to cpu2, the
IOThread (query-iothreads) to cpu, the main thread to cpu2 (placement=
iothread) or cpu (placement=main: it is then the I/O thread); then QMP
`cont` starts the guest.  Threads created later (the thread pool's
workers) inherit the mask of the thread that creates them: the I/O
thread's.  fio and qemu-img run under `taskset -c cpu`.

Images: the file backend reads AIOLAB_BENCH_SCRATCH/machine-<size>.img,
written once with pseudo-random data (512 MiB; 64 MiB with quick=1): a
file of holes or unwritten extents would be read without touching the
disk.

Prints one JSON object, like the C programs (see bench.h): value is ns per
request (1e9 / IOPS: lower is better, as in every row), or (row vm-bql)
the p99 latency in ns; also iops, p50, p99, p99.9 (ns, from
the guest's submit to its collection of the completion, fio's lat, i.e.
submission to completion), quantiles (aiolab: 0..100 from the guest's
histogram) and the aiolab run's thread CPU times and interrupt counts.
requests_per_interrupt (aiolab) is how many requests the guest collects
per completion interrupt; fio's iodepth_complete is its histogram of
completions reaped per wait (percent of waits reaping 1-4, 5-8, ... 32):
side by side they show whether requests stream or travel in waves (row
21's note in tests/bench/README.md).
cpu_ns_per_request is the CPU time used per request, which the machine's
other load disturbs much less than the wall time: aiolab-vm, every
thread's CPU time (guest vCPUs, IOThread, main thread; the guest's share
included, which the peers do not have) / the guest's requests; fio, its
job's usr_cpu + sys_cpu over the job's runtime; qemu-img, its process's
rusage (start-up included).
"""
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

import benchargs

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT / "tests" / "machine"))
from qmp import QMPClient  # noqa: E402


def opts(argv):
    return benchargs.parse(argv, __doc__, ('row', 'impl'))


def runtime(o):
    return 0.25 if o.get("quick") == "1" else 2.0


def scratch():
    d = os.environ.get("AIOLAB_BENCH_SCRATCH")
    if not d:
        raise SystemExit("bench_machine.py: AIOLAB_BENCH_SCRATCH is not set "
                         "(run.py sets it)")
    Path(d).mkdir(parents=True, exist_ok=True)
    return Path(d)


def disk_image(o):
    """The disk image, created (fully written) the first time."""
    mib = 64 if o.get("quick") == "1" else 512
    path = scratch() / ("machine-%dM.img" % mib)
    if path.exists() and path.stat().st_size == mib << 20:
        return path
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            for _ in range(mib):
                f.write(os.urandom(1 << 20))
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    return path


def pin(tid, cpu):
    os.sched_setaffinity(tid, {cpu})


def quantiles_from_histogram(hist):
    """Percentiles 0..100 of [[ns, count], ...] (bucket values)."""
    total = sum(c for _, c in hist)
    if not total:
        return None
    out, seen, k = [], 0, 0
    for p in range(101):
        want = max(1, -(-p * total // 100))
        while k < len(hist) and seen + hist[k][1] < want:
            seen += hist[k][1]
            k += 1
        out.append(hist[min(k, len(hist) - 1)][0])
    return out


# --- aiolab-vm ------------------------------------------------------------

def vm_command(o, sock):
    build = os.environ.get("AIOLAB_BENCH_BUILD")
    if not build:
        raise SystemExit("bench_machine.py: AIOLAB_BENCH_BUILD is not set")
    vm = Path(build) / "bin" / "aiolab-vm"
    if not vm.exists():
        raise SystemExit("bench_machine.py: %s not built (make RELEASE=1)"
                         % vm)
    backend = o.get("backend", "null")
    if backend == "null":
        node = "driver=null-co,size=1G,node-name=disk0"
    elif backend == "file":
        node = ("driver=file,filename=%s,cache.direct=%s,aio=%s,"
                "node-name=disk0" % (disk_image(o), o.get("direct", "on"),
                                     o.get("aio", "io_uring")))
    else:
        raise SystemExit("bench_machine.py: backend=%s: null or file"
                         % backend)
    placement = o.get("placement", "iothread")
    if placement not in ("iothread", "main"):
        raise SystemExit("bench_machine.py: placement=%s: iothread or main"
                         % placement)
    io = "iothread,id=io0"
    if "poll_max_ns" in o:
        io += ",poll-max-ns=%d" % int(o["poll_max_ns"])
    if "aio_max_batch" in o:
        io += ",aio-max-batch=%d" % int(o["aio_max_batch"])
    dev = "virtio-blk,drive=disk0"
    if placement == "iothread":
        dev += ",iothread=io0"
    wl = ("vcpu=0,rw=randread,bs=4096,iodepth=%d,runtime=%g"
          % (int(o.get("iodepth", 32)), runtime(o)))
    if "guest_poll" in o:
        wl += ",poll=%s" % o["guest_poll"]
    cmd = [str(vm), "-S", "-qmp", "unix:%s,server=on,wait=off" % sock,
           "-json", "-object", io, "-blockdev", node, "-device", dev,
           "-workload", wl]
    if o.get("hold") == "1":
        cmd += ["-smp", "2", "-workload",
                "vcpu=1,mmio-hold=1000,mmio-period=2000"]
    return cmd


def run_vm(o):
    cpu, cpu2 = int(o.get("cpu", 1)), int(o.get("cpu2", 0))
    env = dict(os.environ)
    env.pop("AIOLAB_TRACE", None)
    if o.get("trace", "on") == "off":
        env["AIOLAB_TRACE"] = "0"
    with tempfile.TemporaryDirectory(prefix="aiolab-bench-") as d:
        sock = os.path.join(d, "qmp.sock")
        cmd = vm_command(o, sock)
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=env)
        try:
            q = QMPClient(sock)
            pin_mode = o.get("pin", "split")
            if pin_mode not in ("split", "same"):
                raise SystemExit("bench_machine.py: pin=%s: split or same"
                                 % pin_mode)
            vcpu_cpu = cpu if pin_mode == "same" else cpu2
            main_cpu = cpu if o.get("placement") == "main" else vcpu_cpu
            pin(p.pid, main_cpu)
            for c in q.execute("query-cpus-fast"):
                pin(c["thread-id"], vcpu_cpu)
            for it in q.execute("query-iothreads"):
                pin(it["thread-id"], cpu)
            q.execute("cont")
            out, err = p.communicate(timeout=60 + 5 * runtime(o))
            q.close()
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
    if p.returncode != 0:
        raise SystemExit("aiolab-vm exited %d: %s\n%s" % (
            p.returncode, " ".join(cmd), err[-2000:]))
    rep = json.loads(out)
    w = rep["workloads"][0]
    lat = w["lat_ns"]
    res = {"iops": w["iops"], "p50": lat["p50"], "p99": lat["p99"],
           "p99.9": lat["p99.9"], "mean": lat["mean"],
           "ops": w["reads"] + w["writes"], "interrupts": w["interrupts"],
           "kicks": w["kicks"], "kicks_suppressed": w["kicks_suppressed"],
           "requests_per_interrupt": (w["reads"] + w["writes"]) /
                                     max(1, w["interrupts"]),
           "threads": {t["name"]: t["cpu_ns"] for t in rep["threads"]},
           "cpu_ns_per_request": sum(t["cpu_ns"] for t in rep["threads"]) /
                                 max(1, w["reads"] + w["writes"]),
           "quantiles": quantiles_from_histogram(
               rep["overall"].get("histogram") or []),
           "vm_cmd": " ".join(cmd)}
    if rep["errors"] or w["lost"] or w["io_errors"]:
        raise SystemExit("aiolab-vm: the guest saw errors: %s" % w["error"])
    bql = [t["bql"] for t in rep["threads"] if t["name"].startswith("CPU 0")]
    if bql:
        res["vcpu0_bql_wait_ns"] = bql[0]["wait_ns"]
    res["impl"] = "aiolab-vm %s%s, %s" % (
        o.get("backend", "null"),
        "" if o.get("backend", "null") == "null"
        else " aio=%s cache.direct=%s" % (o.get("aio", "io_uring"),
                                          o.get("direct", "on")),
        "IOThread" if o.get("placement", "iothread") == "iothread"
        else "main loop")
    return res


# --- the peers ----------------------------------------------------------------

def run_fio(o):
    cpu = int(o.get("cpu", 1))
    img = disk_image(o)
    engine = o.get("engine", "io_uring")
    cmd = ["taskset", "-c", str(cpu), "fio", "--name=bench",
           "--filename=%s" % img, "--direct=1", "--rw=randread", "--bs=4k",
           "--ioengine=%s" % engine, "--iodepth=%d" % int(o.get("iodepth",
                                                                32)),
           "--time_based", "--runtime=%dms" % int(runtime(o) * 1000),
           "--lat_percentiles=1", "--percentile_list=50:99:99.9",
           "--output-format=json"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        raise SystemExit("fio exited %d: %s\n%s" % (r.returncode,
                                                   " ".join(cmd), r.stderr))
    j = json.loads(r.stdout[r.stdout.index("{"):])
    job = j["jobs"][0]
    rd = job["read"]
    pct = rd["lat_ns"]["percentile"]
    # usr_cpu and sys_cpu: percent of the job's runtime (ms).
    cpu_ns = (job["usr_cpu"] + job["sys_cpu"]) / 100 * job["job_runtime"] * 1e6
    return {"iops": rd["iops"], "p50": pct["50.000000"],
            "cpu_ns_per_request": cpu_ns / max(1, rd["total_ios"]),
            "p99": pct["99.000000"], "p99.9": pct["99.900000"],
            "mean": rd["lat_ns"]["mean"], "ops": rd["total_ios"],
            "iodepth_complete": job.get("iodepth_complete"),
            "impl": "fio %s %s" % (j.get("fio version", ""), engine),
            "fio_cmd": " ".join(cmd)}


def run_qemu_img(o):
    cpu = int(o.get("cpu", 1))
    count = 300000 if o.get("quick") == "1" else 2000000
    cmd = ["taskset", "-c", str(cpu), "qemu-img", "bench", "-c", str(count),
           "-d", str(int(o.get("iodepth", 32))), "-s", "4096",
           "--image-opts", "driver=null-co,size=1G"]
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_s = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
    m = re.search(r"Run completed in ([0-9.]+) seconds", r.stdout)
    if r.returncode != 0 or not m:
        raise SystemExit("qemu-img exited %d: %s\n%s%s" % (
            r.returncode, " ".join(cmd), r.stdout, r.stderr))
    ver = subprocess.run(["qemu-img", "--version"], capture_output=True,
                         text=True).stdout.split("\n")[0]
    return {"iops": count / float(m.group(1)), "ops": count,
            "cpu_ns_per_request": cpu_s * 1e9 / count,
            "impl": ver.replace(" version", ""), "qemu_img_cmd": " ".join(cmd)}


def main():
    o = opts(sys.argv)
    for tool in ("fio", "qemu-img"):
        if o["impl"] == tool and not any(
                os.access(os.path.join(p, tool), os.X_OK)
                for p in os.environ.get("PATH", "").split(":")):
            raise SystemExit("%s not installed (make deps-clients)" % tool)
    if o["impl"] == "vm":
        res = run_vm(o)
    elif o["impl"] == "fio":
        res = run_fio(o)
    elif o["impl"] == "qemu-img":
        res = run_qemu_img(o)
    else:
        raise SystemExit("bench_machine.py: unknown IMPL %r" % o["impl"])
    res["row"] = o["row"]
    res["value"] = (res["p99"] if o["row"] == "vm-bql"
                    else 1e9 / res["iops"])
    print(json.dumps(res))


if __name__ == "__main__":
    main()
