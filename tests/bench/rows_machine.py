# SPDX-License-Identifier: MIT
"""Rows 20-23 of tests/bench/run.py: the toy machine (build/bin/aiolab-vm)
end to end - guest driver, virtqueue, virtio-blk, block layer, completion,
interrupt - beside fio and qemu-img bench.  The programs are
bench_machine.py (its docstring says exactly what each runs); the rows are
described in tests/bench/README.md and the tuned QD1 configuration in
docs/machine.md ("Polling")."""

SCRIPT = "bench_machine.py"


def rows(cpu, cpu2, api):
    Row, Impl, Check, peer = api.Row, api.Impl, api.Check, api.peer

    class SameTraceCheck(Check):
        """aiolab against another aiolab figure with the same tracing:
        the bound's key gets the suffix too."""

        def __init__(self, text, aiolab_key, peer_key, scale, metric):
            super().__init__(text, aiolab_key,
                             peer(peer_key, metric, scale=scale), le=True,
                             metric=metric)
            self.peer_key = peer_key
            self.scale = scale

        def evaluate(self, med, suffix):
            a = med.get((self.aiolab_key + suffix, self.metric))
            p = med.get((self.peer_key + suffix, self.metric))
            if a is None or p is None:
                return a, None if p is None else p * self.scale, None
            return a, p * self.scale, a <= p * self.scale

    def vm(key, args, label, note=""):
        """aiolab-vm with tracing on (its default) and off; args[0] is
        the row."""
        args = [args[0], "vm"] + args[1:]
        return [Impl(key, SCRIPT, args + ["trace=on"], label, True, "on",
                     note),
                Impl(key + "-notrace", SCRIPT, args + ["trace=off"],
                     label + " (trace off)", True, "off", note)]

    pinned = ("vCPU 0 and the main thread pinned to CPU %d, IOThread io0 "
              "(and the workers it starts) pinned to CPU %d; the peer pinned "
              "to CPU %d (taskset)" % (cpu2, cpu, cpu))
    R = []
    R.append(Row(
        20, "vm-null", "Toy machine, null-co, QD32: guest to completion "
        "interrupt vs qemu-img bench", "ns/request", pinned,
        vm("aiolab", ["vm-null", "backend=null", "iodepth=32"],
           "aiolab-vm null-co, IOThread",
           "-device virtio-blk,iothread=io0; guest rw=randread,bs=4096,"
           "iodepth=32, interrupts") +
        [Impl("qemu-img", SCRIPT, ["vm-null", "qemu-img", "iodepth=32"],
              note="qemu-img bench -d 32 -s 4096 --image-opts "
                   "driver=null-co,size=1G (reads; QEMU's block layer, no "
                   "device, no guest)")],
        [Check("aiolab >= 0.4 x qemu-img bench IOPS (ns <= 2.5 x)",
               "aiolab", peer("qemu-img", scale=1 / 0.4))],
        "4 KiB reads at queue depth 32 on a null-co node (size 1G, "
        "read-zeroes off: nothing is copied).  aiolab: the whole path of "
        "the toy machine - the guest driver on vCPU 0 builds each request "
        "in guest RAM, publishes it in the avail ring and kicks the "
        "ioeventfd; IOThread io0 pops it, runs blk_aio_preadv, pushes the "
        "used entry and signals the irqfd (once per handle pass); the "
        "halted guest wakes on it and collects - with QEMU's defaults "
        "(poll-max-ns 32768, EVENT_IDX).  The figure is ns per request, "
        "1e9 / IOPS, where IOPS is what the guest completed over its 2 s "
        "run (aiolab-vm -json).  Peer: `qemu-img bench` of QEMU 7.2 on the "
        "same null-co node at -d 32, IOPS = count / its reported run time: "
        "QEMU's block layer and coroutines alone, on one CPU.",
        metrics=("value", "p50", "p99"), ratio_to="aiolab"))
    R.append(Row(
        21, "vm-file", "Toy machine, file with O_DIRECT, QD32 vs fio",
        "ns/request", pinned,
        vm("aiolab", ["vm-file", "backend=file", "aio=io_uring",
                      "iodepth=32"],
           "aiolab-vm file aio=io_uring, IOThread",
           "-blockdev driver=file,cache.direct=on,aio=io_uring; "
           "guest iodepth=32, interrupts") +
        [Impl("aiolab-polling", SCRIPT,
              ["vm-file", "vm", "backend=file", "aio=io_uring",
               "iodepth=32", "guest_poll=always", "poll_max_ns=200000",
               "aio_max_batch=1", "trace=off"],
              "aiolab-vm polling (trace off)", True, "off",
              "reported, not checked: row 22's polling configuration "
              "(-object iothread,poll-max-ns=200000; -workload "
              "poll=always) with aio-max-batch=1, one request per "
              "io_uring_enter() (QEMU 9.0's io_uring ignores "
              "aio-max-batch; README, row 21 note)"),
         Impl("fio", SCRIPT, ["vm-file", "fio", "engine=io_uring",
                              "iodepth=32"],
              note="fio --ioengine=io_uring --direct=1 --iodepth=32 "
                   "(aio=io_uring's own engine)")],
        [Check("aiolab >= 0.9 x fio IOPS (ns <= fio / 0.9)", "aiolab",
               peer("fio", scale=1 / 0.9))],
        "4 KiB random reads at queue depth 32 from a fully written 512 MiB "
        "image file opened with O_DIRECT, on this machine's disk.  aiolab: "
        "the row 20 path with the file node (aio=io_uring: the IOThread's "
        "io_uring ring, its completions polled by the IOThread); fio: one "
        "job with the io_uring engine, the same file, size, block size and "
        "depth.  fio's engine matches aio=io_uring; both submit with "
        "io_uring_enter and reap from the completion ring.  Figures are ns "
        "per request (1e9 / IOPS); p50 and p99 are request latencies "
        "(fio: its lat, submission to completion).",
        metrics=("value", "p50", "p99"), ratio_to="aiolab"))
    R.append(Row(
        22, "vm-qd1", "Toy machine, file with O_DIRECT, QD1: default and "
        "polling vs fio", "ns/request", pinned,
        vm("aiolab-default", ["vm-qd1", "backend=file", "aio=io_uring",
                              "iodepth=1"],
           "aiolab-vm default",
           "poll-max-ns 32768 (QEMU's default), the guest halts for its "
           "interrupt") +
        vm("aiolab", ["vm-qd1", "backend=file", "aio=io_uring", "iodepth=1",
                      "poll_max_ns=200000", "guest_poll=always"],
           "aiolab-vm polling",
           "-object iothread,poll-max-ns=200000; -workload poll=always "
           "(the guest polls its used ring, no interrupts)") +
        [Impl("fio", SCRIPT, ["vm-qd1", "fio", "engine=io_uring",
                              "iodepth=1"],
              note="fio --ioengine=io_uring --iodepth=1 --direct=1")],
        [Check("aiolab polling >= 0.8 x fio IOPS (ns <= fio / 0.8)",
               "aiolab", peer("fio", scale=1 / 0.8))],
        "Row 21 at queue depth 1: every request waits for the one before, "
        "so the figure, ns per request, is the mean latency.  By default each request crosses "
        "CPUs twice - the guest's kick wakes the IOThread on the other "
        "CPU, the IOThread's irqfd wakes the halted vCPU - and a wake-up of "
        "an idle CPU costs several to ~50 us here, against a disk that "
        "answers in ~25 us; QEMU's adaptive polling (poll-max-ns 32768) "
        "helps only when the next kick comes within the window.  Tuned: "
        "poll-max-ns 200 us, above the disk's latency, so the IOThread "
        "stays awake polling the virtqueue and its io_uring completion "
        "ring between requests, and the guest polls its used ring instead "
        "of halting (workload poll=always: interrupts stay suppressed "
        "through EVENT_IDX); no thread sleeps.  docs/machine.md, "
        "\"Polling\", explains the two.",
        metrics=("value", "p50", "p99"), ratio_to="aiolab"))
    R.append(Row(
        23, "vm-bql", "Toy machine under BQL contention: p99 latency, "
        "IOThread vs main loop", "ns",
        "vCPU 0 and vCPU 1 pinned to CPU %d; the thread handling the disk "
        "(IOThread io0, or the main thread for the main-loop placement) "
        "pinned to CPU %d" % (cpu2, cpu),
        vm("aiolab", ["vm-bql", "backend=file", "aio=threads", "direct=off",
                      "iodepth=4", "hold=1", "placement=iothread"],
           "aiolab-vm IOThread", "-device virtio-blk,iothread=io0") +
        vm("main", ["vm-bql", "backend=file", "aio=threads", "direct=off",
                    "iodepth=4", "hold=1", "placement=main"],
           "aiolab-vm main loop", "-device virtio-blk (no iothread)"),
        [SameTraceCheck("IOThread p99 <= 0.2 x main-loop p99", "aiolab",
                        "main", 0.2, "value")],
        "A fixed configuration: -smp 2; vCPU 0 runs rw=randread, bs=4096, "
        "iodepth=4 on the image file with QEMU's defaults (aio=threads, "
        "cache.direct=off: the reads hit the host page cache, so the disk's "
        "own latency does not hide what the BQL does; the demo's "
        "configuration) while "
        "vCPU 1 makes an MMIO exit every 2 ms that holds the BQL for 1 ms, "
        "sleeping (-workload vcpu=1,mmio-hold=1000,mmio-period=2000).  With "
        "the disk in the main loop every kick and completion needs the BQL "
        "(main_loop_wait takes it around dispatch), so a request that "
        "arrives during a hold waits for it; in IOThread io0 the I/O path "
        "never takes the BQL.  The figure is the p99 of the guest's "
        "request latency (guest submit to guest collect, over a 2 s run); "
        "the check compares the placements with the same tracing.  The CDF "
        "shows the whole distribution (the median run of each).",
        metrics=("value", "p50", "p99.9"), cdf=True, ratio_to="aiolab",
        logx=True))
    return R
