# SPDX-License-Identifier: MIT
"""The toy machine in this process (aiolab/machine.h): guest RAM, vCPU
threads running a small virtio-blk guest driver in C, virtio-blk devices
placed in the main loop or in IOThreads, the run state, and the report
aiolab-vm prints.

    with aiolab.bql():
        aiolab.BlockDriverState.open("driver=file,filename=disk.img,"
                                     "node-name=disk0")
    with aiolab.IOThread("io0") as io, aiolab.Machine(smp=1) as m:
        m.add_virtio_blk("disk0", iothread=io)
        m.add_workload("vcpu=0,rw=verify,bs=4096,iodepth=4,count=2000")
        m.start()
        m.run()                             # until the guest is done
        print(m.report()["overall"]["iops"])

The machine is QEMU-style global state: one per process, made and run by
the main-loop thread (the package takes the BQL for each call; run()
releases it while the main loop sleeps, as main_loop_wait does).  The
vCPUs are C threads: no Python runs on them.
"""
import signal
import threading
import time

from ._backend import B, lib, raw
from ._core import INT_MAX, Error, call_errp, check_int
from ._hwbackend import H, MACHINE_EVENT_FIELDS
from ._threads import bql, main_loop
from ._blkconf import make_blk_conf
from ._virtio import VirtIOBlk

RUNSTATES = ("prelaunch", "running", "paused", "io-error", "shutdown")
SHUTDOWN_CAUSES = ("none", "host-qmp-quit", "host-signal", "guest-shutdown")
EVENT_NAMES = ("STOP", "RESUME", "SHUTDOWN", "BLOCK_IO_ERROR")
ACTIONS = ("ignore", "report", "stop")
_SUFFIX = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


def _size(value, what):
    """An int, or a str with a K/M/G suffix."""
    if isinstance(value, str):
        v = value.strip().upper()
        mult = _SUFFIX.get(v[-1:], 1)
        digits = v[:-1] if v[-1:] in _SUFFIX else v
        if not digits.isdigit():
            raise ValueError(f"{what} must be a size like 128M, not "
                             f"{value!r}")
        return int(digits) * mult
    return check_int(value, what, minimum=1)


class LatencyHist:
    """A latency histogram (AiolabLatencyHist: log-linear, 32 buckets
    per power of 2, so a percentile is within 3% of the true value)."""

    def __init__(self):
        self._h = H.new("AiolabLatencyHist")

    @classmethod
    def _copy(cls, src):
        self = cls()
        H.copy_struct(raw(self._h), src, "AiolabLatencyHist")
        return self

    def add(self, ns):
        """Record one value (ns)."""
        lib.aiolab_latency_hist_add(raw(self._h), check_int(ns, "ns"))

    def merge(self, other):
        """Add other's values into this histogram."""
        if not isinstance(other, LatencyHist):
            raise TypeError("other must be an aiolab.LatencyHist")
        lib.aiolab_latency_hist_merge(raw(self._h), raw(other._h))

    def percentile(self, p):
        """The value at fraction p (0.5, 0.99, 0.999) of the recorded
        ones; 0 when empty."""
        if isinstance(p, bool) or not isinstance(p, (int, float)):
            raise TypeError("p must be a number")
        if not 0 <= p <= 1:
            raise ValueError(f"p must be in [0, 1], not {p}")
        return lib.aiolab_latency_hist_percentile(raw(self._h), float(p))

    count = property(lambda self: self._h.count, doc="Values recorded.")
    min_ns = property(lambda self: self._h.min_ns if self._h.count else 0,
                      doc="The smallest value (0 when empty).")
    max_ns = property(lambda self: self._h.max_ns if self._h.count else 0,
                      doc="The largest value (0 when empty).")

    @property
    def mean_ns(self):
        """The mean value (0.0 when empty)."""
        return self._h.sum_ns / self._h.count if self._h.count else 0.0

    def buckets(self):
        """The non-empty buckets as [(value ns, count)] (a bucket's middle
        value): enough for a CDF plot."""
        return [(lib.aiolab_latency_hist_bucket_value(i), n)
                for i, n in H.hist_buckets(self._h)]

    def summary(self):
        """count, p50, p99, p99.9, min, max, mean: aiolab-vm's lat_ns."""
        return {"count": self.count, "p50": self.percentile(.5),
                "p99": self.percentile(.99), "p99.9": self.percentile(.999),
                "min": self.min_ns, "max": self.max_ns, "mean": self.mean_ns}

    def __repr__(self):
        return f"<aiolab.LatencyHist {self.count} values, p50 " \
               f"{self.percentile(.5)} ns>"


def _workload_spec(spec, kw):
    if spec is not None and kw:
        raise TypeError("give a spec string or keyword arguments, not both")
    if spec is None:
        parts = []
        for k, v in kw.items():
            if isinstance(v, bool):
                v = "on" if v else "off"
            parts.append(f"{k.replace('_', '-')}={v}")
        spec = ",".join(parts)
    if not isinstance(spec, str):
        raise TypeError("spec must be a str like 'vcpu=0,rw=verify,"
                        "count=100'")
    return spec


class Machine:
    """The toy machine: Machine(smp=1, ram_size="128M",
    no_shutdown=False).  Add devices and workloads, start(), run().
    Main-loop thread (the BQL is taken for each call).  One at a time per
    process; close() frees it (a context manager)."""

    def __init__(self, smp=1, ram_size=128 << 20, no_shutdown=False):
        check_int(smp, "smp", maximum=INT_MAX)
        conf = H.new("AiolabMachineConf")
        conf.smp, conf.ram_size = smp, _size(ram_size, "ram_size")
        conf.no_shutdown = bool(no_shutdown)
        self._main = main_loop()
        self._check_thread("Machine")
        with bql():
            self._ptr = call_errp(lib.aiolab_machine_new, raw(conf))
        self.events = []            # dicts, in the order they came
        self._devices = []          # (VirtIOBlk, id)
        self._iothreads = []
        self._h, self._keep = B.handle(self._on_event)
        with bql():
            lib.aiolab_machine_set_event_handler(self._ptr,
                                                 H.MACHINE_EVENT_CB, self._h)
        self._started = False
        self._cause = "none"

    # --- state ------------------------------------------------------------
    def _check_thread(self, what):
        if threading.current_thread() is not self._main.thread:
            raise Error(f"Machine.{what}: the machine is global state: only "
                        "the main-loop thread may drive it")

    def _live(self, what="use"):
        if self._ptr is None:
            raise Error("this Machine is closed")
        self._check_thread(what)
        return self._ptr

    def _on_event(self, fields):
        ev = dict(zip(MACHINE_EVENT_FIELDS, fields))
        ev["event"] = EVENT_NAMES[ev.pop("type")]
        ev["cause"] = SHUTDOWN_CAUSES[ev["cause"]]
        ev["action"] = ACTIONS[ev["action"]]
        self.events.append(ev)

    @property
    def smp(self):
        """Number of vCPUs."""
        return lib.aiolab_machine_get_smp(self._live())

    @property
    def ram_size(self):
        """Bytes of guest RAM."""
        return lib.aiolab_machine_get_ram_size(self._live())

    @property
    def runstate(self):
        """"prelaunch", "running", "paused", "io-error" or "shutdown"."""
        self._live()
        return RUNSTATES[lib.runstate_get()]

    @property
    def running(self):
        """Is the VM running?"""
        self._live()
        return bool(lib.runstate_is_running())

    @property
    def guest_done(self):
        """Has every vCPU with an I/O workload finished?"""
        return bool(lib.aiolab_machine_guest_done(self._live()))

    @property
    def measured_ns(self):
        """Guest time since the measurement began (frozen while stopped)."""
        return lib.aiolab_machine_get_measure_ns(self._live())

    def vcpu_thread_id(self, i):
        """vCPU i's kernel thread id (0 before it runs)."""
        check_int(i, "i", 0, self.smp - 1)
        return lib.aiolab_machine_get_vcpu_thread_id(self._ptr, i)

    # --- building it --------------------------------------------------------
    def add_virtio_blk(self, drive, **props):
        """-device virtio-blk,drive=NODE: a device on node drive (a
        BlockDriverState or its node name) with VirtIOBlk's properties
        (id, iothread=IOThread, iothread_vq_mapping, num_queues,
        queue_size, ioeventfd, rerror, werror, serial...).  Returns the
        device (inspect it; the guest drives it)."""
        from ._block import BlockDriverState
        ptr = self._live("add_virtio_blk")
        if isinstance(drive, BlockDriverState):
            drive = drive.node_name
        if not isinstance(drive, str):
            raise TypeError("drive must be a node name or an "
                            "aiolab.BlockDriverState")
        conf, users = make_blk_conf(None, **props)
        with bql():
            dptr = call_errp(lib.aiolab_machine_add_virtio_blk, ptr,
                             conf.ptr(), B.s(drive))
        i = lib.aiolab_machine_num_devices(ptr) - 1
        dev = VirtIOBlk._wrap(dptr, None, users, machine=self)
        self._devices.append((dev, B.str(lib.aiolab_machine_device_id(ptr,
                                                                       i))))
        self._iothreads += users
        return dev

    def _device_id(self, dev):
        for d, name in self._devices:
            if d is dev:
                return name
        return None

    @property
    def devices(self):
        """The devices, in creation order."""
        self._live()
        return [d for d, _ in self._devices]

    def add_workload(self, spec=None, **kw):
        """-workload: "vcpu=0,rw=verify,bs=4096,iodepth=4,count=1000" or
        the same as keywords (rw="randread", mmio_hold=1000, ...).  rw is
        none, randread, randwrite, randrw, seqwrite, seqread or verify;
        runtime is in seconds, mmio-hold/mmio-period/poll in
        microseconds.  Errors use aiolab-vm's wording."""
        ptr = self._live("add_workload")
        spec = _workload_spec(spec, kw)
        conf = H.new("AiolabWorkloadConf")
        call_errp(lib.aiolab_workload_parse, B.s(spec), raw(conf))
        with bql():
            call_errp(lib.aiolab_machine_set_workload, ptr, raw(conf))

    def start(self, autostart=True):
        """Lay out the guest in RAM and create the vCPU threads; with
        autostart, vm_start() (else the machine waits in "prelaunch", as
        with -S, until cont())."""
        ptr = self._live("start")
        if self._started:
            raise Error("Machine.start: already started")
        with bql():
            call_errp(lib.aiolab_machine_start, ptr, bool(autostart))
        self._started = True

    # --- running it ---------------------------------------------------------
    def run(self, timeout=None):
        """The main loop (QEMU's qemu_main_loop): main_loop_wait() until a
        shutdown request - the guest finishing, shutdown(), or Ctrl-C
        (cause "host-signal").  Returns the cause.  With timeout
        (seconds), raises TimeoutError if the guest is not done by then
        (the machine stays as it is)."""
        ptr = self._live("run")
        if not self._started:
            raise Error("Machine.run: start() the machine first")
        deadline = None if timeout is None else time.monotonic() + timeout
        cause = H.out("ShutdownCause")
        tick = self._main.timer(lambda: None)
        wake = self._sigwake()
        try:
            while True:
                try:
                    with bql():
                        if lib.aiolab_machine_main_loop_should_exit(
                                ptr, raw(cause)):
                            break
                    if deadline is not None:
                        left = deadline - time.monotonic()
                        if left <= 0:
                            raise TimeoutError(
                                f"the guest was not done after {timeout} s")
                        tick.mod_ns(int(min(left, 1.0) * 1e9), relative=True)
                    self._main.wait(blocking=True)
                except KeyboardInterrupt:
                    # As QEMU's SIGINT: a shutdown request, cause
                    # host-signal, handled by the next round.
                    lib.qemu_system_shutdown_request(
                        SHUTDOWN_CAUSES.index("host-signal"))
        finally:
            tick.close()
            if wake is not None:
                signal.set_wakeup_fd(wake)
        self._cause = SHUTDOWN_CAUSES[H.value(cause, "ShutdownCause")]
        return self._cause

    def _sigwake(self):
        """Let Ctrl-C wake a sleeping main_loop_wait (the main context's
        signal pipe); returns the previous wake-up fd, or None."""
        sw = getattr(self._main.ctx, "_sigwake", None)
        if sw is None or threading.current_thread() is not \
                threading.main_thread():
            return None
        try:
            return signal.set_wakeup_fd(sw.w, warn_on_full_buffer=False)
        except ValueError:
            return None

    def stop(self, state="paused"):
        """vm_stop(): the vCPUs park, ioeventfd stops (which drains), the
        run state becomes state ("paused" or "io-error"); STOP."""
        self._live("stop")
        if state not in ("paused", "io-error"):
            raise ValueError("state must be 'paused' or 'io-error'")
        with bql():
            lib.vm_stop(RUNSTATES.index(state))

    def cont(self):
        """vm_start(): RESUME, ioeventfd starts, parked requests are
        re-issued, the vCPUs go on (QMP cont)."""
        self._live("cont")
        if not self._started:
            raise Error("Machine.cont: start() the machine first")
        with bql():
            lib.vm_start()

    def vm_shutdown(self):
        """vm_stop("shutdown") without the STOP event, as a program does
        on its way out (QEMU's qemu_cleanup): afterwards the devices are
        quiet (ioeventfd stopped in their IOThreads)."""
        self._live("vm_shutdown")
        with bql():
            lib.vm_shutdown()

    def request_shutdown(self):
        """Ask the main loop to end (QMP quit: cause host-qmp-quit); run()
        returns.  Any thread may ask."""
        if self._ptr is None:
            raise Error("this Machine is closed")
        lib.qemu_system_shutdown_request(
            SHUTDOWN_CAUSES.index("host-qmp-quit"))

    def request_stop(self, state="paused"):
        """qemu_system_vmstop_request(): stop at the next round of run()
        (any thread may ask)."""
        if self._ptr is None:
            raise Error("this Machine is closed")
        if state not in ("paused", "io-error"):
            raise ValueError("state must be 'paused' or 'io-error'")
        lib.qemu_system_vmstop_request(RUNSTATES.index(state))

    # --- what happened ------------------------------------------------------
    def workload_stats(self, vcpu):
        """vCPU vcpu's workload counters (reads, writes, verified,
        verify_errors, lost, io_errors, kicks, interrupts, mmio_exits,
        elapsed_ns, error...) with its latencies as LatencyHists
        (lat_read, lat_write)."""
        ptr = self._live("workload_stats")
        check_int(vcpu, "vcpu", 0, self.smp - 1)
        st = H.new("AiolabWorkloadStats")
        lib.aiolab_machine_get_workload_stats(ptr, vcpu, raw(st))
        out = {k: getattr(st, k) for k in (
            "vcpu", "queue", "reads", "writes", "bytes_read",
            "bytes_written", "io_errors", "verified", "verify_errors",
            "lost", "kicks", "kicks_suppressed", "interrupts", "mmio_exits",
            "mmio_hold_ns", "elapsed_ns")}
        out.update(rw=B.str(lib.aiolab_workload_type_name(st.rw)),
                   device=H.chars(st.device), has_io=bool(st.has_io),
                   finished=bool(st.finished), error=H.chars(st.error),
                   lat_read=LatencyHist._copy(_member(st, "lat_read")),
                   lat_write=LatencyHist._copy(_member(st, "lat_write")))
        return out

    def thread_cpu(self):
        """CPU time of each thread of the process since the measurement
        began: [{tid, name, cpu_ns}]."""
        ptr = self._live("thread_cpu")
        n = lib.aiolab_machine_get_thread_cpu(ptr, B.NULL, 0) + 8
        arr = H.array("AiolabThreadCpu", n)
        n = min(lib.aiolab_machine_get_thread_cpu(ptr, raw(arr), n), n)
        out = []
        for i in range(n):
            t = H.item(arr, "AiolabThreadCpu", i)
            out.append(dict(tid=t.tid, name=H.chars(t.name),
                            cpu_ns=t.cpu_ns))
        return out

    def report(self):
        """aiolab-vm's -json report as a dict: machine, devices,
        workloads, overall, threads, errors."""
        from ._report import machine_report
        self._live("report")
        return machine_report(self)

    # --- lifetime -----------------------------------------------------------
    @property
    def closed(self):
        """Has close() run?"""
        return self._ptr is None

    def close(self):
        """Stop the vCPUs and join them, unrealize the devices, free guest
        RAM.  Nodes and IOThreads stay (they are yours)."""
        if self._ptr is None:
            return
        self._check_thread("close")
        ptr, self._ptr = self._ptr, None
        with bql():
            lib.aiolab_machine_free(ptr)
        B.release(self._keep)
        for dev, _ in self._devices:
            dev._forget()
        self._devices = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        if self._ptr is None:
            return "<aiolab.Machine (closed)>"
        return f"<aiolab.Machine smp={self.smp} {self.runstate}, " \
               f"{len(self._devices)} device(s)>"


def _member(st, name):
    """The address of struct member name, for C calls."""
    if B.name == "cffi":
        return B.ffi.addressof(st, name)
    return getattr(st, name)
