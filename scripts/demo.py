#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""scripts/demo.py - `make demo`: the toy machine, three short runs.

    /usr/bin/python3 scripts/demo.py [--build build] [--out build/demo]
                                     [--runtime SECONDS]

1. The guest reads its disk (randread, iodepth 4) on vCPU 0 while vCPU 1
   emulates a slow device: it takes the BQL for 1 ms of every 2 ms,
   sleeping while it holds it.  The disk is handled by the main loop,
   which must hold the BQL to run anything: its requests wait.
2. The same, with the disk in an IOThread, which never takes the BQL.
3. A mirror of the disk to a second image, with the switch-over, while
   the guest keeps writing and verifying.

Prints a side-by-side summary; writes the Perfetto traces, the JSON
reports and plots (latency CDFs, BQL waits) under --out.  Exit status 0
when every part ran and the guest saw no error (no verify mismatch, no
lost request, a completed switch-over); 1 otherwise, with the reasons on
stderr (make test runs it as the demo-smoke suite).
"""
import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "machine"))

PROBLEMS = []       # what went wrong, for the exit status


def run_vm(vm, args, trace):
    cmd = [vm, "-json", "-trace-file", trace, *args]
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=120)
    if p.returncode not in (0, 2):
        sys.exit(f"demo: aiolab-vm failed ({p.returncode}):\n"
                 f"{' '.join(cmd)}\n{p.stderr.decode()}")
    if p.returncode == 2:
        PROBLEMS.append(f"the guest saw errors in {os.path.basename(trace)}'s"
                        f" run: {p.stderr.decode().strip()}")
    return json.loads(p.stdout)


def contention_run(vm, out, disk, runtime, iothread):
    name = "iothread" if iothread else "main-loop"
    dev = "virtio-blk,drive=disk0" + (",iothread=io0" if iothread else "")
    report = run_vm(vm, [
        "-smp", "2", "-object", "iothread,id=io0",
        "-blockdev", f"driver=file,filename={disk},node-name=disk0",
        "-device", dev,
        "-workload", f"vcpu=0,rw=randread,bs=4096,iodepth=4,runtime={runtime}",
        "-workload", "vcpu=1,mmio-hold=1000,mmio-period=2000",
    ], os.path.join(out, f"{name}.trace.json"))
    with open(os.path.join(out, f"{name}.report.json"), "w") as f:
        json.dump(report, f, indent=1)
    return report


def thread(report, name):
    for t in report["threads"]:
        if t["name"] == name:
            return t
    return {"cpu_ns": 0, "bql": {}}


def us(ns):
    return f"{ns / 1000:.0f} us" if ns < 10_000_000 else f"{ns / 1e6:.1f} ms"


def summary(a, b):
    wa, wb = a["workloads"][0], b["workloads"][0]
    rows = [
        ("guest IOPS (vCPU 0, randread QD4)", f"{wa['iops']:.0f}",
         f"{wb['iops']:.0f}", wb["iops"] / max(wa["iops"], 1)),
    ]
    for p in ("p50", "p99", "p99.9"):
        rows.append((f"latency {p}", us(wa["lat_ns"][p]), us(wb["lat_ns"][p]),
                     wb["lat_ns"][p] / max(wa["lat_ns"][p], 1)))
    for who, label in (("main", "main loop"), ("IO io0", "IOThread io0"),
                       ("CPU 0/toy", "vCPU 0 (the guest)")):
        ta, tb = thread(a, who), thread(b, who)
        rows.append((f"{label}: BQL taken",
                     str(ta.get("bql", {}).get("acquisitions", 0)),
                     str(tb.get("bql", {}).get("acquisitions", 0)), None))
        rows.append((f"{label}: waiting for the BQL",
                     us(ta.get("bql", {}).get("wait_ns", 0)),
                     us(tb.get("bql", {}).get("wait_ns", 0)), None))
    hold = thread(a, "CPU 1/toy").get("bql", {}).get("hold_ns", 0)
    rows.append(("vCPU 1 (slow device): BQL held", us(hold),
                 us(thread(b, "CPU 1/toy").get("bql", {}).get("hold_ns", 0)),
                 None))
    w = max(len(r[0]) for r in rows)
    print(f"\n{'':{w}}  {'disk in main loop':>18}  {'disk in IOThread':>18}"
          f"  {'ratio':>7}")
    for label, x, y, ratio in rows:
        r = f"{ratio:7.2f}" if ratio is not None else ""
        print(f"{label:{w}}  {x:>18}  {y:>18}  {r:>7}")


def plots(out, a, b):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("demo: matplotlib is missing (make deps): no plots")
        return []
    files = []
    fig, ax = plt.subplots(figsize=(7, 4))
    for rep, label in ((a, "disk in the main loop"), (b, "disk in an IOThread")):
        hist = rep["workloads"][0]["histogram"]
        total = sum(c for _, c in hist)
        xs, ys, seen = [], [], 0
        for v, c in hist:
            seen += c
            xs.append(v / 1000)
            ys.append(seen / total)
        ax.step(xs, ys, where="post", label=label)
    ax.set_xscale("log")
    ax.set_xlabel("request latency (us)")
    ax.set_ylabel("fraction of requests")
    ax.set_title("Guest randread QD4 while vCPU 1 holds the BQL 1 ms in 2")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    files.append(os.path.join(out, "latency-cdf.png"))
    fig.tight_layout()
    fig.savefig(files[-1], dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 4))
    names = ["main", "CPU 0/toy", "CPU 1/toy", "IO io0"]
    for i, (rep, label) in enumerate(((a, "main loop"), (b, "IOThread"))):
        waits = [thread(rep, n).get("bql", {}).get("wait_ns", 0) / 1e6
                 for n in names]
        ax.bar([x + i * 0.4 for x in range(len(names))], waits, width=0.4,
               label=f"disk in {label}")
    ax.set_xticks([x + 0.2 for x in range(len(names))], names)
    ax.set_ylabel("time waiting for the BQL (ms)")
    ax.set_title("Who waited for the BQL")
    ax.legend()
    files.append(os.path.join(out, "bql-wait.png"))
    fig.tight_layout()
    fig.savefig(files[-1], dpi=110)
    plt.close(fig)
    return files


def mirror_run(vm, out, disk, runtime):
    from qmp import QMPClient
    target = os.path.join(out, "mirror-target.img")
    with open(target, "wb") as f:
        f.truncate(os.path.getsize(disk))
    sock = os.path.join(out, "qmp.sock")
    p = subprocess.Popen([
        vm, "-S", "-no-shutdown", "-json", "-smp", "2",
        "-object", "iothread,id=io0",
        "-blockdev", f"driver=file,filename={disk},node-name=disk0",
        "-blockdev", f"driver=file,filename={target},node-name=target0",
        "-device", "virtio-blk,drive=disk0,iothread=io0",
        "-workload", f"vcpu=0,rw=verify,iodepth=4,runtime={runtime}",
        "-workload", f"vcpu=1,rw=verify,iodepth=4,runtime={runtime}",
        "-trace-file", os.path.join(out, "mirror.trace.json"),
        "-qmp", f"unix:{sock},server=on,wait=off"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    q = QMPClient(sock)
    q.execute("cont")
    time.sleep(runtime / 4)
    r = q.cmd("blockdev-mirror", **{"job-id": "mirror0", "device": "disk0",
                                    "target": "target0", "sync": "full"})
    if "error" in r:
        q.execute("quit")
        p.communicate(timeout=60)
        print(f"\n3. mirror: refused ({r['error']['desc']})")
        PROBLEMS.append(f"blockdev-mirror refused: {r['error']['desc']}")
        return
    t0 = time.monotonic()
    q.wait_event("BLOCK_JOB_READY", timeout=60)
    t_ready = time.monotonic() - t0
    q.execute("block-job-complete", device="mirror0")
    ev = q.wait_event("BLOCK_JOB_COMPLETED", timeout=60)
    # -no-shutdown: a guest that is done leaves the machine stopped
    # ("shutdown"), so the monitor stays up whatever finishes first.
    status = q.execute("query-status")["status"]
    node = q.execute("query-block")[0]["inserted"]["node-name"]
    q.wait_event("SHUTDOWN", timeout=120)       # the guest is done
    q.execute("quit")
    out_json, _ = p.communicate(timeout=60)
    rep = json.loads(out_json)
    with open(os.path.join(out, "mirror.report.json"), "w") as f:
        json.dump(rep, f, indent=1)
    verr = sum(w["verify_errors"] + w["lost"] for w in rep["workloads"])
    ops = sum(w["reads"] + w["writes"] for w in rep["workloads"])
    print(f"\n3. mirror disk0 -> target0 while 2 vCPUs write and verify:")
    print(f"   ready after {t_ready:.2f} s, switched over "
          f"({'error: ' + ev['data']['error'] if 'error' in ev['data'] else 'ok'}"
          f"); the device now uses node {node}")
    print(f"   {ops} guest requests, {verr} mismatches or lost requests")
    if "error" in ev["data"]:
        PROBLEMS.append(f"the mirror failed: {ev['data']['error']}")
    if status != "running":
        PROBLEMS.append(f"the guest had finished before the switch-over "
                        f"(status {status}): try a longer --runtime")
    if node != "target0":
        PROBLEMS.append(f"the device uses node {node} after the switch-over")
    if verr or p.returncode != 0:
        PROBLEMS.append(f"the guest saw {verr} mismatches or lost requests "
                        f"during the mirror (aiolab-vm exit {p.returncode})")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("--out", default="build/demo")
    ap.add_argument("--runtime", type=float, default=2.0)
    args = ap.parse_args()
    vm = os.path.join(ROOT, args.build, "bin", "aiolab-vm")
    out = os.path.join(ROOT, args.out)
    os.makedirs(out, exist_ok=True)
    disk = os.path.join(out, "disk.img")
    with open(disk, "wb") as f:
        f.truncate(64 << 20)
    print("aiolab demo: a toy VM with a virtio-blk disk (build/bin/aiolab-vm)")
    print(f"  vCPU 0: random 4 KiB reads, 4 at a time, {args.runtime:g} s")
    print("  vCPU 1: an MMIO exit to a slow device every 2 ms, holding the "
          "BQL for 1 ms")
    print("\n1. disk in the main loop (-device virtio-blk,drive=disk0) ...")
    a = contention_run(vm, out, disk, args.runtime, iothread=False)
    print("2. disk in an IOThread (-device virtio-blk,drive=disk0,"
          "iothread=io0) ...")
    b = contention_run(vm, out, disk, args.runtime, iothread=True)
    summary(a, b)
    print("\nThe main loop runs the disk's completions only while it holds "
          "the BQL, so every\nrequest that lands while vCPU 1 holds it waits; "
          "the IOThread never takes the BQL.")
    mirror_run(vm, out, disk, args.runtime)
    files = plots(out, a, b)
    print("\nWritten under " + os.path.relpath(out, ROOT) + "/:")
    for f in sorted(os.listdir(out)):
        if f.endswith((".json", ".png")):
            print("  " + f)
    print("Open main-loop.trace.json in https://ui.perfetto.dev and find the "
          "BQL holder:\nCPU 1/toy's 'mmio exit (slow device, BQL held)' "
          "slices, and 'main' waiting (bql_lock_wait).")
    for problem in PROBLEMS:
        print("demo: FAILED: " + problem, file=sys.stderr)
    return 1 if PROBLEMS else 0


if __name__ == "__main__":
    sys.exit(main())
