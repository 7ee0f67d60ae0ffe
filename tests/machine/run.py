#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""tests/machine/run.py - end-to-end tests of build/bin/aiolab-vm.

    /usr/bin/python3 tests/machine/run.py [--build DIR] [-k SUBSTRING] [--list]

Runs every test_* function of tests/machine/test_*.py, each with a fresh
temporary directory (a disk image made there) and its own time limit,
and prints harness lines ("ok N name", "not ok N name" with "# " details)
ending with "# machine: N passed, N failed, N skipped", as tests/run.py
expects.  Exit status 0 iff nothing failed.  Standard library only.
"""
import argparse
import glob
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


class Skip(Exception):
    pass


class Env:
    """What a test gets: the aiolab-vm binary, a temporary directory, a
    32 MiB disk image in it, and helpers to run the VM."""

    def __init__(self, build, tmp):
        self.vm = os.path.join(ROOT, build, "bin", "aiolab-vm")
        self.tmp = tmp
        self.disk = os.path.join(tmp, "disk.img")
        with open(self.disk, "wb") as f:
            f.truncate(32 << 20)
        self.procs = []

    def path(self, name):
        return os.path.join(self.tmp, name)

    def blockdev(self, node="disk0", path=None):
        return ["-blockdev", f"driver=file,filename={path or self.disk},"
                             f"node-name={node}"]

    def run(self, *args, timeout=60):
        """Run aiolab-vm to the end: (exit status, stdout, stderr)."""
        p = subprocess.run([self.vm, *args], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=timeout,
                           stdin=subprocess.DEVNULL)
        return p.returncode, p.stdout.decode(), p.stderr.decode()

    def run_json(self, *args, timeout=60):
        """Run with -json: (exit status, report dict, stderr)."""
        import json
        rc, out, err = self.run("-json", *args, timeout=timeout)
        try:
            report = json.loads(out)
        except ValueError:
            raise AssertionError(f"no JSON report (rc {rc}): {out!r} "
                                 f"{err!r}")
        return rc, report, err

    def start(self, *args):
        """Start aiolab-vm in the background; stop() or wait() it."""
        p = subprocess.Popen([self.vm, *args], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE,
                             stdin=subprocess.DEVNULL)
        self.procs.append(p)
        return p

    def cleanup(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.wait()


def load_tests():
    tests = []
    sys.path.insert(0, HERE)
    for path in sorted(glob.glob(os.path.join(HERE, "test_*.py"))):
        name = os.path.splitext(os.path.basename(path))[0]
        spec = importlib.util.spec_from_file_location(name, path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        for attr in dir(mod):
            fn = getattr(mod, attr)
            if attr.startswith("test_") and callable(fn):
                line = fn.__code__.co_firstlineno
                tests.append((name, line, attr, fn))
    tests.sort(key=lambda t: (t[0], t[1]))
    return [(f"{m}/{a[5:]}", fn) for m, _, a, fn in tests]


def alarm_handler(signum, frame):
    raise TimeoutError("test timed out")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("-k", help="run tests whose name contains this")
    ap.add_argument("--list", action="store_true")
    args = ap.parse_args()
    tests = load_tests()
    if args.k:
        tests = [t for t in tests if args.k in t[0]]
    if args.list:
        for name, _ in tests:
            print(name)
        return 0
    vm = os.path.join(ROOT, args.build, "bin", "aiolab-vm")
    counts = [0, 0, 0]
    if not os.access(vm, os.X_OK):
        print(f"# skip: {vm} not built (make)")
        print("# machine: 0 passed, 0 failed, 1 skipped")
        return 0
    signal.signal(signal.SIGALRM, alarm_handler)
    for i, (name, fn) in enumerate(tests, 1):
        tmp = tempfile.mkdtemp(prefix="aiolab-machine-")
        env = Env(args.build, tmp)
        t0 = time.monotonic()
        status, detail = "ok", ""
        signal.alarm(int(getattr(fn, "timeout", 40)))
        try:
            fn(env)
        except Exception as e:
            # test modules raise run.Skip: the same class under another
            # module name than this script's __main__.Skip
            if type(e).__name__ != "Skip":
                status, detail = "not ok", traceback.format_exc()
            else:
                status, detail = "skip", str(e)
        finally:
            signal.alarm(0)
            env.cleanup()
            shutil.rmtree(tmp, ignore_errors=True)
        dt = time.monotonic() - t0
        if status == "skip":
            print(f"ok {i} {name} # skip {detail}")
            counts[2] += 1
        else:
            print(f"{status} {i} {name} ({dt:.2f}s)")
            counts[0 if status == "ok" else 1] += 1
        for line in detail.rstrip().splitlines() if status != "skip" else []:
            print("# " + line)
        sys.stdout.flush()
    print(f"# machine: {counts[0]} passed, {counts[1]} failed, "
          f"{counts[2]} skipped")
    return 1 if counts[1] else 0


if __name__ == "__main__":
    sys.exit(main())
