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
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))

from testrunner import Skip, load_tests, run_case, run_suite  # noqa: E402

__all__ = ["Skip", "Env"]           # test modules raise run.Skip


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


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("-k", help="run tests whose name contains this")
    ap.add_argument("--list", action="store_true")
    args = ap.parse_args()
    sys.path.insert(0, HERE)
    tests = [(f"{m}/{a[5:]}", fn) for m, a, fn in load_tests(HERE)]
    if args.k:
        tests = [t for t in tests if args.k in t[0]]
    if args.list:
        for name, _ in tests:
            print(name)
        return 0
    vm = os.path.join(ROOT, args.build, "bin", "aiolab-vm")
    if not os.access(vm, os.X_OK):
        print(f"# skip: {vm} not built (make)")
        print("# machine: 0 passed, 0 failed, 1 skipped")
        return 0
    return run_suite("machine", [
        (name, lambda fn=fn: run_case(fn, lambda tmp: Env(args.build, tmp),
                                      "aiolab-machine-", 40))
        for name, fn in tests])


if __name__ == "__main__":
    sys.exit(main())
