# SPDX-License-Identifier: MIT
"""Row 35 of tests/bench/run.py: the vhost-user-blk export of
aiolab-storage-daemon beside Debian's qemu-storage-daemon (7.2), both
serving a real Linux guest under Debian's QEMU with TCG, interleaved in
the same run (bench_vhost.py: one boot per run, three workloads per
boot; a boot costs ~10 s under TCG, so the row has 3 runs per daemon
whatever --runs says, 1 with --quick, and one row rather than one per
workload).

Informational, without a target: under TCG the emulated guest (its
block layer and virtio_blk driver, QEMU's emulated PCI and its kick and
call eventfds) costs far more per request than either back-end, so the
guest-side figures of the two daemons differ by the guest's noise, not
by the back-end (the issue compares back-ends on the NBD rows, 30-34).
What does compare the back-ends is the daemon's own CPU time per
request: the cpu columns.
"""


def rows(cpu, cpu2, api):
    Row, Impl = api.Row, api.Impl
    where = ("the daemon pinned to CPU %d (all its threads), QEMU (TCG "
             "vCPU, main loop, everything) pinned to CPU %d"
             % (cpu, cpu2))
    args = ["phases=read1,write1,read8", "bs=4096", "count=3000",
            "quick_count=600"]
    impls = [Impl("aiolab", "bench_vhost.py",
                  ["vhost-guest", "aiolab"] + args + ["trace=on"],
                  "aiolab-storage-daemon", True, "on"),
             Impl("qsd", "bench_vhost.py", ["vhost-guest", "qsd"] + args,
                  "qemu-storage-daemon 7.2")]
    return [Row(
        35, "vhost-guest",
        "vhost-user-blk to a real Linux guest (TCG): 4 KiB O_DIRECT random "
        "reads QD1; writes QD1, reads QD8", "ns/request", where, impls, [],
        "One run = one boot of Debian's cloud kernel under "
        "qemu-system-x86_64 -accel tcg -smp 1 -m 256M with "
        "-device vhost-user-blk-pci,num-queues=1 on the daemon's socket.  "
        "Both daemons: --blockdev driver=file,node-name=disk0,filename=IMG,"
        "aio=threads (64 MiB of random data in the page cache) --export "
        "type=vhost-user-blk,id=exp0,node-name=disk0,addr.type=unix,"
        "addr.path=SOCK,writable=on,num-queues=1, in the main loop.  The "
        "guest's /init runs tests/bench/vhost-guest-io.c (static) three "
        "times on /dev/vda, 4 KiB O_DIRECT requests at random aligned "
        "offsets, timed in the guest with CLOCK_MONOTONIC: read1 (one "
        "thread, one request in flight: the figure), write1 (the same, "
        "writing), read8 (8 threads: up to 8 requests in the virtqueue); "
        "3000 requests each (600 with --quick).  Figures: guest run time "
        "/ requests (1e9 / guest IOPS).  cpu columns: the daemon's CPU "
        "time (its threads' schedstat) during that workload / requests - "
        "the back-end's own cost, comparable between the daemons.  No "
        "target, informational: under TCG the guest is the bottleneck "
        "(the NBD rows compare the back-ends).  3 runs per daemon "
        "whatever --runs says (1 with --quick), tracing on only: each run "
        "is a boot.",
        metrics=("value", "daemon_cpu_ns", "write1",
                 "write1_daemon_cpu_ns", "read8", "read8_daemon_cpu_ns"),
        ratio_to="aiolab", notrace=False, runs=3, quick_runs=1)]
