#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Run aiolab's test suites: `make test` calls this after building.

    /usr/bin/python3 tests/run.py [--only SUITE,...] [--list] [--stress]

Each suite prints its wall time and counts; the last line is the summary
over all suites: "N passed, N failed, N skipped".  A C test binary (see
tests/c/harness.h) reports its own counts; any other command counts as one
test (exit 0 passed, 77 skipped, anything else failed).  Full output goes
to build/test-logs/<suite>/; failures are also echoed here.
"""
import argparse
import glob
import os
import re
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYTHON = "/usr/bin/python3"
LOGS = os.path.join(ROOT, "build", "test-logs")

# C tests that need no fd monitor variant (the others run on three).
FDMON_TESTS = ["test-aio", "test-nested-aio-poll"]


def c_tests(build):
    """The test executables of a build (not their .d dependency files)."""
    return sorted(t for t in glob.glob(os.path.join(ROOT, build, "tests",
                                                    "test-*"))
                  if "." not in os.path.basename(t) and os.access(t, os.X_OK))


def suites(args):
    """(name, [(label, argv, env, kind)]) in the order they run."""
    out = []
    api_check = os.path.join(ROOT, "..", "shared", "tools", "api-check")
    if os.path.exists(api_check):
        out.append(("api-check", [("api-check", [api_check], {}, "cmd")]))
    else:
        print("api-check: ../shared/tools/api-check not found: skipped")
    out.append(("c", [(os.path.basename(t), [t], {}, "harness")
                      for t in c_tests("build")]))
    for fdmon in ("epoll", "io_uring"):
        out.append(("c-" + fdmon,
                    [(t + "@" + fdmon, [os.path.join(ROOT, "build/tests", t)],
                      {"AIOLAB_FDMON": fdmon}, "harness")
                     for t in FDMON_TESTS]))
    out.append(("c-asan", [(os.path.basename(t), [t], {}, "harness")
                           for t in c_tests("build/asan")]))
    # TSan cannot see what the kernel writes into io_uring's rings: the
    # TSan suite stays on poll/epoll (the default).
    # atexit_sleep_ms=0: TSan otherwise sleeps 1 s as each forked case exits.
    tsan_env = {"TSAN_OPTIONS": "atexit_sleep_ms=0 halt_on_error=1"}
    out.append(("c-tsan", [(os.path.basename(t), [t], tsan_env, "harness")
                           for t in c_tests("build/tsan")]))
    machine = os.path.join(ROOT, "tests", "machine", "run.py")
    if os.path.exists(machine):
        out.append(("machine", [("machine", [PYTHON, machine], {},
                                 "harness")]))
    img = os.path.join(ROOT, "tests", "img", "run.py")
    if os.path.exists(img):
        out.append(("img", [("aiolab-img", [PYTHON, img], {}, "harness")]))
    vhost = os.path.join(ROOT, "tests", "vhost", "run.py")
    if os.path.exists(vhost):
        # A real QEMU + Linux guest on the vhost-user-blk export, and a
        # raw front-end that breaks the protocol (about 2 minutes).
        out.append(("vhost", [("vhost-user-blk", [PYTHON, vhost], {},
                               "harness")]))
        # The daemon built with ASan and TSan (its queues' IOThreads and
        # the main loop's teardown), without the reference runs.  The
        # SIGKILL test holds a write at a blkdebug breakpoint before the
        # kill, so it no longer depends on the daemon's speed.
        for san, env in (("asan", {}), ("tsan", tsan_env)):
            out.append(("vhost-" + san, [("vhost-user-blk@" + san, [
                PYTHON, vhost, "--build", "build/" + san, "--no-reference"],
                env, "harness")]))
    nbd = os.path.join(ROOT, "tests", "nbd", "run.py")
    if os.path.exists(nbd):
        out.append(("nbd", [("nbd", [PYTHON, nbd], {}, "harness")]))
        # The daemon built with ASan and TSan, without the reference runs.
        for san, env in (("asan", {}), ("tsan", tsan_env)):
            out.append(("nbd-" + san, [("nbd@" + san, [
                PYTHON, nbd, "--build", "build/" + san, "--no-reference"],
                env, "harness")]))
    fuzz = os.path.join(ROOT, "tests", "fuzz", "run.py")
    if os.path.exists(fuzz):
        # Exit 77 (skipped) when clang cannot build libFuzzer targets.
        out.append(("fuzz-smoke", [("fuzz smoke", [
            PYTHON, fuzz, "smoke", "--time", "10"], {}, "cmd")]))
    for binding in ("cffi", "swig"):
        out.append(("python-" + binding, [(
            "pytest", [PYTHON, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                       "tests/python"],
            {"AIOLAB_BINDING": binding, "AIOLAB_QUICK": "1"}, "pytest")]))
    # make demo, the README's first command, with short runs: exit 1 if
    # the guest saw an error or the mirror did not switch over.
    out.append(("demo-smoke", [("make demo (short)", [
        PYTHON, os.path.join(ROOT, "scripts", "demo.py"), "--runtime", "1",
        "--out", "build/demo-smoke"], {}, "cmd")]))
    tut = os.path.join(ROOT, "tutorial", "check.py")
    if os.path.exists(tut):
        out.append(("tutorial", [("tutorial", [PYTHON, tut], {}, "harness")]))
    out.append(("install", [("make install", [os.path.join(
        ROOT, "tests", "install-check.sh")], {}, "cmd")]))
    docs = os.path.join(ROOT, "tests", "docs-check.py")
    if os.path.exists(docs):
        out.append(("docs", [("docs-check", [PYTHON, docs], {}, "harness")]))
    bench = os.path.join(ROOT, "tests", "bench", "run.py")
    if os.path.exists(bench):
        out.append(("bench-smoke", [("bench --quick", [
            PYTHON, bench, "--build", "build/release", "--out",
            "build/bench-smoke", "--quick"], {}, "cmd")]))
    if args.stress:
        env = {"AIOLAB_TEST_SCALE": os.environ.get("AIOLAB_TEST_SCALE", "20")}
        out = [("stress", [(os.path.basename(t), [t], env, "harness")
                           for t in c_tests("build")] +
                [(os.path.basename(t) + "@tsan", [t], env, "harness")
                 for t in c_tests("build/tsan")])]
    return out


COUNTS = re.compile(r"^# .*: (\d+) passed, (\d+) failed, (\d+) skipped")
PYTEST_COUNT = re.compile(r"(\d+) (passed|failed|skipped|error|errors)\b")


def run(label, argv, env, kind, logdir):
    full_env = dict(os.environ, **env)
    full_env.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    log = os.path.join(logdir, re.sub(r"[^\w.@-]", "_", label) + ".log")
    p = subprocess.run(argv, cwd=ROOT, env=full_env, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    text = p.stdout.decode(errors="replace")
    with open(log, "w") as f:
        f.write(text)
    if kind == "harness":
        m = None
        for line in text.splitlines():
            m = COUNTS.match(line) or m
        if m:
            counts = [int(x) for x in m.groups()]
            if p.returncode not in (0, 1) and counts[1] == 0:
                counts[1] = 1       # crashed after printing its counts
        else:
            counts = [0, 1, 0]      # died before reporting
    elif kind == "pytest":
        counts = [0, 0, 0]
        last = [l for l in text.splitlines() if " in " in l and
                ("passed" in l or "failed" in l or "error" in l)]
        for n, what in PYTEST_COUNT.findall(last[-1] if last else ""):
            idx = {"passed": 0, "failed": 1, "skipped": 2}.get(what, 1)
            counts[idx] += int(n)
        if p.returncode != 0 and counts[1] == 0:
            counts[1] = 1           # pytest itself failed
    elif p.returncode == 0:
        counts = [1, 0, 0]
    elif p.returncode == 77:
        counts = [0, 0, 1]
    else:
        counts = [0, 1, 0]
    if counts[1]:
        print(f"  FAIL {label} (log: {os.path.relpath(log, ROOT)})")
        lines = [l for l in text.splitlines()
                 if not l.startswith("ok ")] if kind == "harness" \
            else text.splitlines()
        for line in lines[-40:]:
            print("    " + line)
    return counts


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", help="comma-separated suite names")
    ap.add_argument("--list", action="store_true", help="list the suites")
    ap.add_argument("--stress", action="store_true",
                    help="long runs (AIOLAB_TEST_SCALE, default 20)")
    args = ap.parse_args()
    all_suites = suites(args)
    if args.list:
        for name, cmds in all_suites:
            print(f"{name}: {len(cmds)} commands")
        return 0
    only = set(args.only.split(",")) if args.only else None
    total = [0, 0, 0]
    t_all = time.time()
    for name, cmds in all_suites:
        if only and name not in only:
            continue
        logdir = os.path.join(LOGS, name)
        os.makedirs(logdir, exist_ok=True)
        t0 = time.time()
        counts = [0, 0, 0]
        for label, argv, env, kind in cmds:
            c = run(label, argv, env, kind, logdir)
            counts = [a + b for a, b in zip(counts, c)]
        total = [a + b for a, b in zip(total, counts)]
        print(f"{name:14s} {time.time() - t0:7.1f}s  {counts[0]} passed, "
              f"{counts[1]} failed, {counts[2]} skipped", flush=True)
    print(f"(total wall time {time.time() - t_all:.0f}s)")
    print(f"{total[0]} passed, {total[1]} failed, {total[2]} skipped")
    return 1 if total[1] else 0


if __name__ == "__main__":
    sys.exit(main())
