# SPDX-License-Identifier: MIT
"""tests/lib/testrunner.py - the runner that tests/machine/run.py,
tests/nbd/run.py and tests/vhost/run.py share: it finds the test_* functions of a folder's
test_*.py files, runs each with a fresh temporary directory under its
own time limit (SIGALRM), and prints the harness lines tests/run.py
reads ("ok N name (1.23s)", "ok N name # skip why", "not ok N name"
followed by "# " lines of detail, then "# SUITE: N passed, N failed, N
skipped").  Standard library only.

A suite supplies what differs: how to build the Env a test receives,
what to add to a failure's detail (a daemon's stderr), and which
variants of a test to run (a test marked with .kinds runs once per
kind).  A test's own attributes: .timeout (seconds), .kinds (list).
"""
import argparse
import glob
import importlib.util
import os
import shutil
import signal
import sys
import tempfile
import time
import traceback


class Skip(Exception):
    """Raised by a test that cannot run here (a missing tool, a known
    bug of the reference).  Matched by class name, since a suite's test
    modules may import their own Skip class."""


def load_tests(folder):
    """[(module name, function name, function)] of folder/test_*.py, in
    file order, then line order within a file."""
    tests = []
    for path in sorted(glob.glob(os.path.join(folder, "test_*.py"))):
        name = os.path.splitext(os.path.basename(path))[0]
        spec = importlib.util.spec_from_file_location(name, path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        for attr in dir(mod):
            fn = getattr(mod, attr)
            if attr.startswith("test_") and callable(fn):
                tests.append((name, fn.__code__.co_firstlineno, attr, fn))
    tests.sort(key=lambda t: (t[0], t[1]))
    return [(m, a, fn) for m, _, a, fn in tests]


def kind_cases(folder):
    """[(name, function, kind)] of load_tests(folder): a test marked with
    .kinds once per kind ("module/test/kind", without the test_
    prefixes), any other once with kind None ("module/test")."""
    out = []
    for m, a, fn in load_tests(folder):
        for k in getattr(fn, "kinds", [None]):
            out.append((f"{m[5:]}/{a[5:]}" + (f"/{k}" if k else ""), fn, k))
    return out


def _alarm_handler(signum, frame):
    raise TimeoutError("test timed out")


def run_case(fn, make_env, prefix, default_timeout, on_failure=None,
             tmp_dir=None):
    """Run fn(env) in a fresh temporary directory (in @tmp_dir, else the
    system's): (status, detail) with status "ok", "not ok" or "skip".
    make_env(tmp) builds the Env; it must have cleanup(), called whatever
    happens.  on_failure(env) may return more text for a failure's
    detail."""
    if tmp_dir:
        os.makedirs(tmp_dir, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=prefix, dir=tmp_dir)
    env = None
    status, detail = "ok", ""
    signal.alarm(int(getattr(fn, "timeout", default_timeout)))
    try:
        env = make_env(tmp)
        fn(env)
    except Exception as e:
        if type(e).__name__ == "Skip":
            status, detail = "skip", str(e)
        else:
            status, detail = "not ok", traceback.format_exc()
            if env is not None and on_failure:
                detail += on_failure(env)
    finally:
        signal.alarm(0)
        if env is not None:
            env.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)
    return status, detail


def run_suite(suite, cases):
    """Run cases, [(name, callable returning (status, detail))], print
    the harness lines; returns the exit status (1 iff a case failed)."""
    signal.signal(signal.SIGALRM, _alarm_handler)
    counts = [0, 0, 0]
    for i, (name, case) in enumerate(cases, 1):
        t0 = time.monotonic()
        status, detail = case()
        dt = time.monotonic() - t0
        if status == "skip":
            print(f"ok {i} {name} # skip {detail}")
            counts[2] += 1
        else:
            print(f"{status} {i} {name} ({dt:.2f}s)")
            counts[0 if status == "ok" else 1] += 1
            for line in detail.rstrip().splitlines():
                print("# " + line)
        sys.stdout.flush()
    print(f"# {suite}: {counts[0]} passed, {counts[1]} failed, "
          f"{counts[2]} skipped")
    return 1 if counts[1] else 0


def suite_main(suite, doc, folder, run):
    """The main() of a suite whose tests may run per kind (nbd, vhost):
    options --build DIR, -k SUBSTRING (only those), -x SUBSTRING (leave
    those out; repeatable), --no-reference (leave out the kind "qsd", the
    qemu-storage-daemon runs, for sanitizer builds of ours), --list.
    run(args, fn, kind) runs one case: (status, detail), as run_case.
    Returns the exit status."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("-k", help="run tests whose name contains this")
    ap.add_argument("-x", action="append", default=[],
                    help="leave out tests whose name contains this")
    ap.add_argument("--no-reference", action="store_true",
                    help="leave out the qemu-storage-daemon runs (for the "
                    "sanitizer builds of our daemon)")
    ap.add_argument("--list", action="store_true")
    args = ap.parse_args()
    tests = [t for t in kind_cases(folder)
             if not (args.no_reference and t[2] == "qsd")
             and (not args.k or args.k in t[0])
             and not any(x in t[0] for x in args.x)]
    if args.list:
        for name, _, _ in tests:
            print(name)
        return 0
    return run_suite(suite, [
        (name, lambda fn=fn, kind=kind: run(args, fn, kind))
        for name, fn, kind in tests])
