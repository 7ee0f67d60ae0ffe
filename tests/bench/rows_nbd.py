# SPDX-License-Identifier: MIT
"""Rows 30-34 of tests/bench/run.py: the NBD export of
aiolab-storage-daemon beside Debian's qemu-storage-daemon (7.2), the same
node, the same client, the same run (bench_nbd.py runs each pair).

Every figure is ns per request (lower is better); the issue's target is
an IOPS ratio, "aiolab >= 0.95 x qemu-storage-daemon", which reads
"aiolab's ns <= qemu-storage-daemon's ns / 0.95".
"""


def rows(cpu, cpu2, api):
    Row, Impl, Check, peer = api.Row, api.Impl, api.Check, api.peer
    where = ("the daemon pinned to CPU %d (all its threads: main loop and "
             "thread-pool workers), the client pinned to CPU %d"
             % (cpu, cpu2))

    def pair(args):
        """aiolab (tracing on and off) and qemu-storage-daemon."""
        a = args[:1] + ["aiolab"] + args[1:]
        return [Impl("aiolab", "bench_nbd.py", a + ["trace=on"],
                     "aiolab-storage-daemon", True, "on"),
                Impl("aiolab-notrace", "bench_nbd.py", a + ["trace=off"],
                     "aiolab-storage-daemon (trace off)", True, "off"),
                Impl("qsd", "bench_nbd.py", args[:1] + ["qsd"] + args[1:],
                     "qemu-storage-daemon 7.2")]

    target = [Check("aiolab >= 0.95 x qemu-storage-daemon (IOPS)", "aiolab",
                    peer("qsd", scale=1 / 0.95))]
    both = ("Both daemons: --blockdev %s --nbd-server addr.type=unix,"
            "addr.path=SOCK --export type=nbd,id=exp0,node-name=disk0,"
            "name=disk,writable=on; the export in the main loop (QEMU 7.2 "
            "asserts when a client of an IOThread NBD export disconnects). ")
    file_node = ("driver=file,node-name=disk0,filename=IMG,aio=threads "
                 "(a 256 MiB image, read once before each run so that it is "
                 "in the page cache)")
    R = []
    for num, depth, count, qcount in ((30, 1, 30000, 3000),
                                      (31, 32, 100000, 8000)):
        R.append(Row(
            num, "nbd-fio-qd%d" % depth,
            "NBD 4 KiB random reads, fio nbd engine, QD%d" % depth,
            "ns/request", where,
            pair(["nbd-fio-qd%d" % depth, "client=fio", "target=file",
                  "rw=randread", "depth=%d" % depth, "count=%d" % count,
                  "quick_count=%d" % qcount]),
            target,
            both % file_node + "fio --ioengine=nbd --uri=nbd+unix:///disk?"
            "socket=SOCK --rw=randread --bs=4k --iodepth=%d --number_ios=N "
            "(libnbd, one connection).  Each request: the client's write "
            "to the socket, the daemon's read, a coroutine, the file "
            "driver's pread on a thread-pool worker, the reply.  Figure: "
            "fio's run time / requests (1e9 / IOPS)." % depth,
            ratio_to="aiolab"))
    R.append(Row(
        32, "nbd-fio-write-qd32",
        "NBD 4 KiB random writes, fio nbd engine, QD32", "ns/request",
        where,
        pair(["nbd-fio-write-qd32", "client=fio", "target=file",
              "rw=randwrite", "depth=32", "count=100000",
              "quick_count=8000"]),
        target,
        both % file_node + "fio --ioengine=nbd --rw=randwrite --bs=4k "
        "--iodepth=32: each request carries 4 KiB of data to the daemon, "
        "written to the page cache by a worker's pwrite.",
        ratio_to="aiolab"))
    R.append(Row(
        33, "nbd-qemu-img-bench",
        "qemu-img bench over NBD, QD32 4 KiB reads", "ns/request",
        where,
        pair(["nbd-qemu-img-bench", "client=qemu-img", "target=file",
              "depth=32", "count=100000", "quick_count=8000"]),
        target,
        both % file_node + "qemu-img bench -f raw -c N -d 32 -s 4096 "
        "'nbd+unix:///disk?socket=SOCK': QEMU's own NBD client (its "
        "coroutine-based block driver), sequential reads.  Figure: "
        "qemu-img's \"Run completed in\" time / requests.",
        ratio_to="aiolab"))
    R.append(Row(
        34, "nbd-null-qd32",
        "NBD 4 KiB random reads of null-co, fio nbd engine, QD32",
        "ns/request", where,
        pair(["nbd-null-qd32", "client=fio", "target=null", "rw=randread",
              "depth=32", "count=150000", "quick_count=10000"]),
        target,
        both % "driver=null-co,node-name=disk0,size=1073741824" +
        "fio --ioengine=nbd --rw=randread --bs=4k --iodepth=32 on an "
        "export of null-co (completes at once, no data copied): the "
        "figure is the NBD server's own cost per request - socket reads "
        "and writes, parsing, the coroutine, the reply - with nothing "
        "below it.",
        ratio_to="aiolab"))
    return R
