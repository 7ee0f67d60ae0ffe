# SPDX-License-Identifier: MIT
"""Rows 11-17 of tests/bench/run.py: aiolab's block layer, driven by
`aiolab-img bench`, beside qemu-img bench (Debian's qemu-utils 7.2) and fio
on the same image in the same run (bench_block.py runs each program).

Every figure is ns per request (lower is better); the issue's targets are
IOPS ratios, so "aiolab >= 0.95 x fio" reads "aiolab's ns <= fio's ns /
0.95".  tests/bench/README.md explains each row and target.
"""


def rows(cpu, cpu2, api):
    Row, Impl, Check, peer = api.Row, api.Impl, api.Check, api.peer
    one = ("each program pinned to CPU %d with taskset, all of its "
           "threads (thread-pool workers, io_uring kernel workers) "
           "included" % cpu)

    # bench_block.py ROW TOOL key=value...: the row's name comes first in
    # every argument list (common[0]).
    def aiolab(key, args, label, note=""):
        """aiolab-img bench with tracing on (default) and off."""
        return [Impl(key, "bench_block.py",
                     args[:1] + ["aiolab"] + args[1:] + ["trace=on"],
                     label, True, "on", note),
                Impl(key + "-notrace", "bench_block.py",
                     args[:1] + ["aiolab"] + args[1:] + ["trace=off"],
                     label + " (trace off)", True, "off", note)]

    def tool(key, name, args, label, note=""):
        return Impl(key, "bench_block.py", args[:1] + [name] + args[1:],
                    label, note=note)

    R = []
    # --- O_DIRECT random reads: the disk's latency and the layer's
    # overhead on top of it, beside fio.
    for num, depth, count, qcount in ((11, 1, 20000, 1500),
                                      (12, 32, 60000, 6000)):
        common = ["odirect-qd%d" % depth, "target=odirect",
                  "depth=%d" % depth, "count=%d" % count,
                  "quick_count=%d" % qcount]
        fio_peers = [tool("fio-io_uring", "fio", common + ["engine=io_uring"],
                          "fio io_uring randread"),
                     tool("fio-libaio", "fio", common + ["engine=libaio"],
                          "fio libaio randread")]
        # aiolab's default: the requests a completion pass submits wait
        # for the end of its defer_call section (QEMU 9.0's batching).
        batched = [] if depth == 1 else [Impl(
            "aiolab-batched", "bench_block.py",
            common[:1] + ["aiolab"] + common[1:] +
            ["aio=io_uring", "pattern=random", "trace=on"],
            "aiolab-img bench -i io_uring --random (default batching)",
            True, "on", "submissions batched per completion pass")]
        if depth == 1:
            fio_peers.append(tool("fio-psync", "fio",
                                  common + ["engine=psync"],
                                  "fio psync randread"))
        R.append(Row(
            num, "odirect-qd%d" % depth,
            "O_DIRECT 4 KiB random reads, QD%d, 256 MiB file" % depth,
            "ns/request", one,
            aiolab("aiolab", common + ["aio=io_uring", "pattern=random",
                                       "batch=1"],
                   "aiolab-img bench -i io_uring --random, "
                   "aio-max-batch=1",
                   note="--object main-loop,id=ml0,aio-max-batch=1: each "
                        "request submitted at once, as fio and qemu-img "
                        "7.2 do") + batched + fio_peers + [
                tool("qemu-img", "qemu", common + ["aio=io_uring",
                                                   "pattern=seq"],
                     "qemu-img bench -i io_uring (sequential)",
                     note="qemu-img bench has no random mode"),
                Impl("aiolab-seq", "bench_block.py",
                     common[:1] + ["aiolab"] + common[1:] +
                     ["aio=io_uring", "pattern=seq", "trace=on"],
                     "aiolab-img bench -i io_uring (sequential)", True,
                     "on", "qemu-img's command line exactly")],
            [Check("aiolab >= 0.95 x fio io_uring (IOPS)", "aiolab",
                   peer("fio-io_uring", scale=1 / 0.95))],
            "4 KiB reads at random 4 KiB-aligned offsets of a 256 MiB file "
            "opened with O_DIRECT (cache.direct=on / -t none), %d in flight; "
            "each completion submits the next request.  aiolab: "
            "aiolab-img bench --random -t none --object main-loop,id=ml0,"
            "aio-max-batch=1 --image-opts driver=file,filename=IMG,"
            "aio=io_uring (a BlockBackend, blk_aio_preadv from the "
            "completion callback, the main AioContext polled).  "
            "aio-max-batch=1 submits each request to the ring at once; by "
            "default aiolab, like QEMU 9.0, holds the requests that a "
            "completion pass submits until the pass ends and submits them "
            "in one io_uring_enter() (fewer system calls, shown at QD32): "
            "on this machine's virtual disk that batching leaves the "
            "device idle while the pass runs and cost 8-25%% of the IOPS "
            "at QD32 in our runs, so the target is judged with the knob "
            "QEMU gives for it (the main-loop object's aio-max-batch).  "
            "At QD1 the two are the same; what is left there is the "
            "wake-up path: aiolab's loop sleeps in epoll_wait() on the "
            "ring's own fd, io_uring's task work interrupts it (EINTR) and "
            "it is called again - 3 system calls per request, where fio's "
            "io_uring engine, which waits inside io_uring_enter(), makes 2.  "
            "The notes give each tool's CPU time per request, which the "
            "machine's other load disturbs much less than the wall time.  "
            "fio: rw=randread, direct=1, the same file "
            "and depth, invalidate=0, number_ios=N; the target compares "
            "like with like, fio's io_uring engine (default options: no "
            "fixed buffers, no SQPOLL), and libaio%s is shown beside it.  "
            "qemu-img bench 7.2 only reads sequentially (offset += 4 KiB), "
            "so it is shown with aiolab-img on exactly its command line.  "
            "Figure: wall time of the run / requests (1e9 / IOPS).  The "
            "device is this machine's virtual disk: its latency dominates."
            % (depth, " and psync" if depth == 1 else ""),
            ratio_to="aiolab"))

    # --- Page cache through io_uring at QD32: the layer's cost per request
    # when the kernel answers from memory.
    pc = ["pagecache-qd32", "target=pagecache", "depth=32",
          "count=400000", "quick_count=30000", "pattern=seq"]
    R.append(Row(
        13, "pagecache-qd32",
        "Page-cache 4 KiB reads, io_uring, QD32, 256 MiB file",
        "ns/request", one,
        aiolab("aiolab", pc + ["aio=io_uring"],
               "aiolab-img bench -i io_uring") + [
            tool("qemu-img", "qemu", pc + ["aio=io_uring"],
                 "qemu-img bench -i io_uring"),
            tool("fio-io_uring", "fio", pc + ["engine=io_uring"],
                 "fio io_uring read (sequential)", note="for scale")],
        [Check("aiolab >= 1.2 x qemu-img bench io_uring (IOPS)", "aiolab",
               peer("qemu-img", scale=1 / 1.2))],
        "qemu-img bench's own loop on both block layers with the same "
        "command line: -c N -d 32 --image-opts driver=file,filename=IMG,"
        "aio=io_uring, sequential 4 KiB reads of a 256 MiB file that is in "
        "the page cache (read once before each run), so io_uring completes "
        "most reads inline and the figure is mostly the block layer's and "
        "the event loop's own cost per request.  fio's io_uring engine on "
        "the same reads is shown for scale (no target).",
        ratio_to="aiolab"))

    # --- null-co: nothing below the block layer at all.
    for num, depth, bound, count, qcount in ((14, 1, 0.75, 1000000, 50000),
                                             (15, 32, 1.0, 2000000, 100000)):
        common = ["null-qd%d" % depth, "target=null", "depth=%d" % depth,
                  "count=%d" % count, "quick_count=%d" % qcount,
                  "pattern=seq"]
        R.append(Row(
            num, "null-qd%d" % depth,
            "null-co: the block layer's cost per request, QD%d" % depth,
            "ns/request", one,
            aiolab("aiolab", common, "aiolab-img bench") + [
                tool("qemu-img", "qemu", common, "qemu-img bench")],
            [Check("aiolab <= %.2f x qemu-img bench (ns/request)" % bound,
                   "aiolab", peer("qemu-img", scale=bound))],
            "-c N -d %d --image-opts driver=null-co,size=1G on both tools: "
            "the null-co driver completes a read without yielding, so the "
            "figure is the whole path of one request - blk_aio_preadv, a "
            "coroutine, the BlockBackend and node in-flight accounting, the "
            "driver call, the completion callback (deferred to a BH since "
            "the request finished before blk_aio_preadv returned), and the "
            "event loop iteration that runs it." % depth,
            ratio_to="aiolab"))

    # --- aio=threads: a request handed to a thread-pool worker and back.
    for num, depth, count, qcount in ((16, 1, 100000, 8000),
                                      (17, 32, 200000, 15000)):
        th = ["threads-qd%d" % depth, "target=pagecache",
              "depth=%d" % depth, "count=%d" % count,
              "quick_count=%d" % qcount, "pattern=seq", "aio=threads"]
        extra = [tool("fio-psync", "fio", th + ["engine=psync"],
                      "fio psync read (sequential)",
                      note="one pread per request, no thread hop: the "
                           "floor")] if depth == 1 else []
        R.append(Row(
            num, "threads-qd%d" % depth,
            "Page-cache 4 KiB reads, aio=threads, QD%d" % depth,
            "ns/request", one,
            aiolab("aiolab", th, "aiolab-img bench -i threads") + [
                tool("qemu-img", "qemu", th, "qemu-img bench -i threads")] +
            extra,
            [Check("aiolab >= qemu-img bench -i threads (IOPS)", "aiolab",
                   peer("qemu-img"))],
            "qemu-img bench's loop on both block layers, -c N -d %d "
            "--image-opts driver=file,filename=IMG,aio=threads, sequential "
            "4 KiB reads from the page cache: each request goes to a "
            "worker of the context's thread pool (preadv there), and its "
            "completion comes back through a BH.  The whole process is on "
            "one CPU, so every request costs two thread switches; the "
            "figure compares the two thread pools' hand-offs." % depth,
            ratio_to="aiolab"))
    return R
