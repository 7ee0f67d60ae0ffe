# SPDX-License-Identifier: MIT
"""tests/vhost/guest.py - a real Linux guest for the vhost-user-blk tests.

Debian's cloud kernel (downloaded with `apt-get download`, unpacked with
`dpkg-deb -x` into build/guest/, never installed) boots under Debian's
qemu-system-x86_64 with TCG, from an initramfs made here of busybox-static
and the virtio modules.  Its /init (written below) exercises the disk and
prints "AIOLAB ..." lines on the serial console; check_run() reads them.

    kernel = ensure_kernel()                   # Skip if truly impossible
    initrd = build_initramfs(tmp, kernel, patterns)
    g = Guest(kernel, initrd, sock, tmp, smp=2, queues=2)
    g.wait_for("AIOLAB done") ...

What the guest does, in order (each step prints one line):
  size, write cache mode, read-only flag, number of hardware queues;
  read0: sha256 of the whole disk, read with O_DIRECT;
  writing: W writers at once (each pinned to a CPU, so every queue gets
  requests), each writing its own pattern file PASSES times over its own
  region with O_DIRECT, then fsync (a FLUSH); "wrote W rc=N" per writer;
  sync: fsync of the device (FLUSH); sums: each region read back with
  O_DIRECT; discard: blkdiscard of the scratch region after the writers'
  regions; read1: the writers' regions read through the page cache after
  drop_caches; done; then power off.
Standard library only.
"""
import glob
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CACHE = os.path.join(ROOT, "build", "guest")
QEMU = "/usr/bin/qemu-system-x86_64"
BUSYBOX = "/bin/busybox"
# The modules virtio_blk needs (each one's depends= must be among them:
# a kernel that changes them fails loudly); loaded in dependency order.
MODULES = ["virtio_ring", "virtio", "virtio_pci_legacy_dev",
           "virtio_pci_modern_dev", "virtio_pci", "virtio_blk"]
BS = 4096                     # the writers' block size


class Skip(Exception):
    """A prerequisite that cannot exist on this machine."""


def _run(argv, **kw):
    return subprocess.run(argv, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, **kw)


def _kernel_package():
    """The current linux-image-*-cloud-amd64 package (the meta-package's
    dependency), running apt-get update once if the lists are missing."""
    for attempt in range(2):
        p = _run(["apt-cache", "depends", "linux-image-cloud-amd64"])
        m = re.search(r"Depends: (linux-image-[0-9][^\s]*-cloud-amd64)\b",
                      p.stdout)
        if m:
            return m.group(1)
        if attempt == 0 and os.geteuid() == 0:
            _run(["apt-get", "update", "-qq"])
    raise Skip("no linux-image-cloud-amd64 in the apt lists (apt-cache "
               "depends: %s)" % p.stdout.strip()[-200:])


def _modinfo_depends(path):
    with open(path, "rb") as f:
        data = f.read()
    m = re.search(rb"depends=([^\0]*)\0", data)
    deps = m.group(1).decode() if m else ""
    return [d for d in deps.split(",") if d]


def _load_order(moddir):
    """MODULES sorted so that each comes after what it depends on."""
    deps = {name: _modinfo_depends(os.path.join(moddir, name + ".ko"))
            for name in MODULES}
    order = []
    while len(order) < len(MODULES):
        ready = [n for n in MODULES if n not in order and
                 all(d in order for d in deps[n])]
        if not ready:
            missing = {n: [d for d in deps[n] if d not in MODULES]
                       for n in MODULES if n not in order}
            raise RuntimeError(f"module dependencies outside MODULES or "
                               f"circular: {missing}")
        order += ready
    return order


def ensure_kernel():
    """build/guest/<package>/{vmlinuz, modules/*.ko}: fetched once.
    Returns the directory; raises Skip if it cannot be had."""
    if not shutil.which("apt-get") or not shutil.which("dpkg-deb"):
        raise Skip("not a Debian system (no apt-get/dpkg-deb)")
    os.makedirs(CACHE, exist_ok=True)
    have = sorted(glob.glob(os.path.join(CACHE, "linux-image-*",
                                         "vmlinuz")))
    pkg = None
    try:
        pkg = _kernel_package()
    except Skip:
        if not have:
            raise
    if pkg is None or os.path.exists(os.path.join(CACHE, pkg, "vmlinuz")):
        return os.path.dirname(have[-1]) if pkg is None \
            else os.path.join(CACHE, pkg)
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        p = _run(["apt-get", "download", pkg], cwd=tmp)
        debs = glob.glob(os.path.join(tmp, "*.deb"))
        if p.returncode != 0 or not debs:
            if have:
                return os.path.dirname(have[-1])
            raise Skip("apt-get download %s failed: %s" %
                       (pkg, p.stdout.strip()[-300:]))
        x = os.path.join(tmp, "x")
        p = _run(["dpkg-deb", "-x", debs[0], x])
        if p.returncode != 0:
            raise RuntimeError("dpkg-deb -x failed: " + p.stdout)
        out = os.path.join(tmp, pkg)
        os.makedirs(os.path.join(out, "modules"))
        shutil.copy(glob.glob(os.path.join(x, "boot", "vmlinuz-*"))[0],
                    os.path.join(out, "vmlinuz"))
        for name in MODULES:
            found = glob.glob(os.path.join(x, "lib", "modules", "*",
                                           "kernel", "**", name + ".ko"),
                              recursive=True)
            if not found:
                raise RuntimeError(f"{pkg} has no {name}.ko (built in? "
                                   "then update MODULES)")
            shutil.copy(found[0], os.path.join(out, "modules"))
        order = _load_order(os.path.join(out, "modules"))
        with open(os.path.join(out, "modules.order"), "w") as f:
            f.write(" ".join(order) + "\n")
        os.rename(out, os.path.join(CACHE, pkg))
    return os.path.join(CACHE, pkg)


# The start of every /init here and in tests/bench/bench_vhost.py: the
# file systems, say() (an AIOLAB line on the console), the virtio modules
# (@MODULES@, in load order), and a wait for /dev/vda.
INIT_PRELUDE = r"""#!/bin/sh
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
say() { echo "AIOLAB $*" > /dev/ttyS0; }
for m in @MODULES@; do
    insmod /lib/$m.ko || say "fail insmod $m"
done
i=0
while [ ! -b /dev/vda ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done
if [ ! -b /dev/vda ]; then say "fail no /dev/vda"; poweroff -f; fi
"""

INIT = INIT_PRELUDE + r"""W=@WRITERS@; BLOCKS=@BLOCKS@; PASSES=@PASSES@; NCPU=$(nproc)
say "size $(blockdev --getsize64 /dev/vda)"
say "wcache $(cat /sys/block/vda/queue/write_cache | tr ' ' _)"
say "ro $(cat /sys/block/vda/ro)"
say "mq $(ls /sys/block/vda/mq | wc -l)"
say "read0 $(dd if=/dev/vda bs=64k iflag=direct 2>/dev/null | sha256sum | cut -d' ' -f1)"
say "writing"
w=0
while [ $w -lt $W ]; do
    (
        p=0; rc=0
        while [ $p -lt $PASSES ] && [ $rc -eq 0 ]; do
            taskset -c $((w % NCPU)) dd if=/data/w$w of=/dev/vda bs=@BS@ \
                seek=$((w * BLOCKS)) count=$BLOCKS oflag=direct \
                conv=notrunc,fsync 2>/tmp/err$w
            rc=$?
            p=$((p+1))
        done
        say "wrote $w rc=$rc $(tail -n1 /tmp/err$w | tr ' ' _)"
    ) &
    w=$((w+1))
done
wait
sync /dev/vda; say "sync rc=$?"
w=0
while [ $w -lt $W ]; do
    say "sum $w $(dd if=/dev/vda bs=@BS@ skip=$((w * BLOCKS)) count=$BLOCKS iflag=direct 2>/dev/null | sha256sum | cut -d' ' -f1)"
    w=$((w+1))
done
blkdiscard -o $((W * BLOCKS * @BS@)) -l $((BLOCKS * @BS@)) /dev/vda 2>/dev/null
say "discard rc=$?"
echo 3 > /proc/sys/vm/drop_caches
say "read1 $(dd if=/dev/vda bs=@BS@ count=$((W * BLOCKS)) 2>/dev/null | sha256sum | cut -d' ' -f1)"
say "done"
poweroff -f
"""


def _write_file(path, data, mode=0o644):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, mode)


def build_initramfs(tmp, kernel, patterns, passes=1):
    """Write tmp/initrd.cpio: busybox, the modules, /init, and each
    writer's pattern file /data/wN (all the same size, a multiple of BS).
    Returns its path."""
    if not os.path.exists(BUSYBOX):
        raise Skip("busybox-static is not installed (make deps-clients)")
    blocks = len(patterns[0]) // BS
    assert all(len(p) == blocks * BS for p in patterns)
    root = os.path.join(tmp, "initramfs")
    shutil.rmtree(root, ignore_errors=True)
    for d in ("bin", "lib", "proc", "sys", "dev", "tmp", "data"):
        os.makedirs(os.path.join(root, d))
    shutil.copy(BUSYBOX, os.path.join(root, "bin", "busybox"))
    for applet in ("sh", "mount", "insmod", "sleep", "cat", "tr", "ls",
                   "wc", "dd", "sha256sum", "cut", "taskset", "nproc",
                   "tail", "sync", "blkdiscard", "blockdev", "poweroff",
                   "echo"):
        os.symlink("busybox", os.path.join(root, "bin", applet))
    order = install_modules(kernel, os.path.join(root, "lib"))
    init = (INIT.replace("@MODULES@", " ".join(order))
            .replace("@WRITERS@", str(len(patterns)))
            .replace("@BLOCKS@", str(blocks))
            .replace("@PASSES@", str(passes))
            .replace("@BS@", str(BS)))
    _write_file(os.path.join(root, "init"), init.encode(), 0o755)
    for i, p in enumerate(patterns):
        _write_file(os.path.join(root, "data", f"w{i}"), p)
    return pack_initramfs(root, os.path.join(tmp, "initrd.cpio"))


def install_modules(kernel, libdir):
    """Copy the virtio modules of @kernel (ensure_kernel's directory) into
    @libdir: their names in load order, for INIT_PRELUDE's @MODULES@."""
    for name in MODULES:
        shutil.copy(os.path.join(kernel, "modules", name + ".ko"), libdir)
    with open(os.path.join(kernel, "modules.order")) as f:
        return f.read().split()


def pack_initramfs(root, out):
    """Directory @root as a newc cpio archive @out (cpio, else busybox's);
    returns @out."""
    cpio = shutil.which("cpio")
    names = subprocess.run(["find", "."], cwd=root, stdout=subprocess.PIPE,
                           check=True).stdout
    argv = [cpio, "-o", "-H", "newc", "--quiet"] if cpio else \
        [BUSYBOX, "cpio", "-o", "-H", "newc"]
    with open(out, "wb") as f:
        subprocess.run(argv, cwd=root, input=names, stdout=f,
                       stderr=subprocess.DEVNULL, check=True)
    return out


class Guest:
    """qemu-system-x86_64 -accel tcg under `timeout`, its serial console
    collected line by line (self.lines), the AIOLAB lines parsed."""

    def __init__(self, kernel, initrd, sock, tmp, smp=1, queues=1,
                 reconnect=False, mem_mb=256, timeout=150):
        if not os.path.exists(QEMU):
            raise Skip("qemu-system-x86 is not installed (make "
                       "deps-clients)")
        chardev = f"socket,id=c0,path={sock}"
        if reconnect:
            chardev += ",reconnect=1"
        self.argv = [
            "timeout", "-s", "KILL", str(timeout), QEMU,
            "-accel", "tcg", "-machine", "pc", "-cpu", "max",
            "-smp", str(smp), "-m", f"{mem_mb}M",
            "-object", f"memory-backend-memfd,id=mem,size={mem_mb}M,"
                       "share=on",
            "-numa", "node,memdev=mem",
            "-chardev", chardev,
            "-device", f"vhost-user-blk-pci,chardev=c0,num-queues={queues}",
            "-kernel", os.path.join(kernel, "vmlinuz"),
            "-initrd", initrd,
            "-append", "console=ttyS0 panic=-1 quiet loglevel=3",
            "-display", "none", "-serial", "stdio", "-monitor", "none",
            "-no-reboot", "-nodefaults",
        ]
        self.log = open(os.path.join(tmp, "guest.log"), "w")
        self.lines = []
        self.cond = threading.Condition()
        # The console on stdout, QEMU's own messages on stderr: in one
        # pipe a message ("Failed to set msg fds" when the back-end dies)
        # could land in the middle of a console line and hide it.
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE,
                                     stdin=subprocess.DEVNULL)
        self.reader = threading.Thread(target=self._read,
                                       args=(self.proc.stdout, True),
                                       daemon=True)
        self.err_reader = threading.Thread(target=self._read,
                                           args=(self.proc.stderr, False),
                                           daemon=True)
        self.reader.start()
        self.err_reader.start()

    def _read(self, stream, console):
        """Collect @stream's lines (whole lines: QEMU's stderr ones among
        the console's); the console's EOF ends self.lines."""
        for raw in stream:
            line = raw.decode(errors="replace").rstrip("\r\n")
            with self.cond:
                if not self.log.closed:
                    self.log.write(line + "\n")
                    self.log.flush()
                self.lines.append(line)
                self.cond.notify_all()
        if console:
            with self.cond:
                self.lines.append(None)         # EOF
                self.cond.notify_all()

    def wait_for(self, prefix, timeout=120):
        """The first AIOLAB line starting with @prefix (or None at EOF or
        after @timeout seconds)."""
        deadline = time.monotonic() + timeout
        want = "AIOLAB " + prefix
        with self.cond:
            i = 0
            while True:
                while i < len(self.lines):
                    line = self.lines[i]
                    if line is None:
                        return None
                    if line.startswith(want):
                        return line
                    i += 1
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(left)

    def wait(self, timeout=150):
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            rc = self.proc.wait()
        self.reader.join(5)
        self.err_reader.join(5)
        with self.cond:
            self.log.close()
        return rc

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()

    def results(self):
        """The AIOLAB lines as a dict: key -> rest of the line; 'wrote'
        and 'sum' as lists indexed by writer."""
        r = {"wrote": {}, "sum": {}, "fail": []}
        for line in self.lines:
            if not line or not line.startswith("AIOLAB "):
                continue
            words = line.split()[1:]
            key = words[0]
            if key in ("wrote", "sum"):
                r[key][int(words[1])] = " ".join(words[2:])
            elif key == "fail":
                r["fail"].append(" ".join(words[1:]))
            else:
                r[key] = " ".join(words[1:])
        return r

    def tail(self, n=30):
        return "\n".join(l for l in self.lines[-n:] if l is not None)


def sha(data):
    return hashlib.sha256(data).hexdigest()


def check_run(res, patterns, image=None, disk_size=None):
    """The harness's verdict on one guest run: a list of problems (empty:
    everything the guest and the image say is right)."""
    bad = []
    if res["fail"]:
        bad.append("guest: " + "; ".join(res["fail"]))
    if "done" not in res:
        bad.append("the guest did not finish (no 'done')")
    if disk_size is not None and res.get("size") != str(disk_size):
        bad.append(f"disk size {res.get('size')} != {disk_size}")
    if res.get("wcache") != "write_back":
        bad.append(f"write cache is {res.get('wcache')}, not write back: "
                   "VIRTIO_BLK_F_FLUSH missing")
    for i, p in enumerate(patterns):
        wrote = res["wrote"].get(i, "")
        if not wrote.startswith("rc=0"):
            bad.append(f"writer {i}: {wrote or 'never finished'}")
        if res["sum"].get(i) != sha(p):
            bad.append(f"writer {i}: read back {res['sum'].get(i)}, "
                       f"wrote {sha(p)}")
    if res.get("sync") != "rc=0":
        bad.append(f"sync: {res.get('sync')}")
    if res.get("discard") != "rc=0":
        bad.append(f"discard (blkdiscard of the scratch region): "
                   f"{res.get('discard')}")
    if res.get("read1") != sha(b"".join(patterns)):
        bad.append(f"buffered read-back {res.get('read1')} != "
                   f"{sha(b''.join(patterns))}")
    if image is not None:
        with open(image, "rb") as f:
            for i, p in enumerate(patterns):
                f.seek(i * len(p))
                if f.read(len(p)) != p:
                    bad.append(f"image: writer {i}'s region differs")
    return bad
