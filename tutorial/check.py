#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Build and run every tutorial program; check that the chapters hold.

    /usr/bin/python3 tutorial/check.py [--build build] [-k PATTERN] [-v]

For each chapter directory (tutorial/chNN-slug/) it checks:

  examples     every *.c builds against the library in --build, runs under a
               timeout, exits 0 and prints only `check: <claim>: ok` lines;
  exercises    every exercise-*.c STARTER builds, runs and fails its own
               check (a `check: ...: FAILED` line and exit status 1: not a
               crash, not a hang), so an exercise cannot be solved by
               accident; its solution/exercise-*.c passes like an example.
               In a student copy (no solution/ directories, see
               scripts/make-student.py) the exercise itself must pass:
               that is how a student checks their answer;
  build lines  every program's first line is its own build command;
  README.md    every `<!-- region: FILE.c:NAME -->` marker is followed by a
               fenced block equal to that region of FILE.c (the text between
               `/* [region: NAME] */` and `/* [endregion] */`), no ```c
               block lacks a marker, the chapter has its parts (the idea, a
               "predict, then run" question with a folded answer, an
               exercise, "Real world"), and code is cited by symbol, never
               by line number.

Output is one line per test, `ok N name`, `not ok N name` or
`ok N name # SKIP why` (a program that exits 77 is skipped), then
`# tutorial: N passed, N failed, N skipped`; tests/run.py reads that line.
Exit status 0 iff nothing failed.  Programs and their outputs (traces)
go to build/tutorial/<chapter>/ (build/tutorial/<variant>/<chapter>/ for
--build build/<variant>); programs run with that as their current
directory.  --update-regions rewrites README blocks from the sources.
"""
import argparse
import concurrent.futures
import difflib
import os
import re
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))

REGION_BEGIN = re.compile(r"^\s*/\* \[region: ([\w.-]+)\] \*/\s*$")
REGION_END = re.compile(r"^\s*/\* \[endregion\] \*/\s*$")
README_MARK = re.compile(r"^<!-- region: ([\w./-]+\.c):([\w.-]+) -->\s*$")
FENCE = re.compile(r"^```(\S*)\s*$")
CHECK_LINE = re.compile(r"^check: (.*): (ok|FAILED|skipped)\b(.*)$")
LINE_CITE = re.compile(r"\b[\w/.-]+\.[ch]:\d+\b")
# A program that boots a real guest may need longer than --timeout: it
# says so in its header comment, "check.py timeout: 180 s".
TIMEOUT_NOTE = re.compile(r"check\.py timeout: (\d+) s")
BUILD_LINE = ("/* cc -Ic/include tutorial/{src} -o build/{out} -Lbuild "
              "-laiolab -Wl,-rpath,$PWD/build */")
# What every chapter README must have (DESIGN.md section 7).
README_PARTS = [
    ("an ASCII diagram (a ```text block)", re.compile(r"^```text\s*$",
                                                      re.M)),
    ("a 'predict, then run' question", re.compile(r"predict, then run",
                                                  re.I)),
    ("a folded answer", re.compile(r"<details>\s*<summary>")),
    ("an exercise section", re.compile(r"^## .*Exercise", re.M)),
    ("a 'Real world' section", re.compile(r"^## Real world", re.M)),
]
WARN_FLAGS = ["-Wall", "-Wextra", "-Wno-unused-parameter"]


def find_root():
    """The tree holding c/include: the tutorial's parent, or (in a
    student copy under build/student/) a directory above it."""
    d = os.path.dirname(HERE)
    while True:
        if os.path.exists(os.path.join(d, "c", "include", "aiolab",
                                       "aiolab.h")):
            return d
        parent = os.path.dirname(d)
        if parent == d:
            return None
        d = parent


class Program:
    """One C program: an example, an exercise starter or a solution."""

    def __init__(self, chapter, rel, kind):
        self.chapter = chapter          # "ch01-event-loop"
        self.rel = rel                  # "solution/exercise-eof.c"
        self.kind = kind                # "example", "starter", "exercise",
                                        # "solution"
        self.src = os.path.join(HERE, chapter, rel)
        stem = os.path.splitext(os.path.basename(rel))[0]
        self.out_name = stem + ("-solution" if kind == "solution" else "")
        self.name = f"{chapter}/{os.path.splitext(rel)[0]}"
        if kind == "starter":
            self.name += " (the starter must fail its check)"

    def expected_build_line(self):
        return BUILD_LINE.format(src=f"{self.chapter}/{self.rel}",
                                 out=self.out_name)


def discover(pattern):
    """Chapters and their programs, in order."""
    chapters = []
    for entry in sorted(os.listdir(HERE)):
        path = os.path.join(HERE, entry)
        if not (os.path.isdir(path) and re.match(r"ch[0-9A-Z]+-", entry)):
            continue
        sol_dir = os.path.join(path, "solution")
        teacher = os.path.isdir(sol_dir)
        programs, problems = [], []
        solutions = sorted(f for f in os.listdir(sol_dir)
                           if f.endswith(".c")) if teacher else []
        # Examples first, then each exercise followed by its solution.
        for f in sorted(os.listdir(path),
                        key=lambda f: (f.startswith("exercise"), f)):
            if not f.endswith(".c"):
                continue
            if not f.startswith("exercise"):
                programs.append(Program(entry, f, "example"))
            elif not teacher:
                programs.append(Program(entry, f, "exercise"))
            else:
                programs.append(Program(entry, f, "starter"))
                if f in solutions:
                    programs.append(Program(entry, "solution/" + f,
                                            "solution"))
                else:
                    problems.append(f"{entry}/{f}: no solution/{f}")
        for f in solutions:
            if not os.path.exists(os.path.join(path, f)):
                problems.append(f"{entry}/solution/{f}: no starter {f}")
        chapters.append((entry, programs, problems))
    if pattern:
        chapters = [(c, [p for p in progs if pattern in p.name], probs)
                    for c, progs, probs in chapters
                    if pattern in c or any(pattern in p.name for p in progs)]
    return chapters


# --- building ------------------------------------------------------------

def sanitizer_flags(build):
    """Programs linked against a sanitizer build need the same runtime."""
    base = os.path.basename(os.path.normpath(build))
    if base == "asan":
        return None, ["-fsanitize=address,undefined"]
    if base == "tsan":
        return "clang", ["-fsanitize=thread"]
    return None, []


def compile_program(prog, args, root, out_dir):
    """Returns (binary path or None, diagnostics)."""
    with open(prog.src) as f:
        first = f.readline().rstrip("\n")
    if first != prog.expected_build_line():
        return None, ["the first line must be the program's build line:",
                      "  expected: " + prog.expected_build_line(),
                      "  found:    " + first]
    with open(prog.src) as f:
        wide = [n for n, line in enumerate(f, 1)
                if n > 1 and len(line.rstrip("\n")) > 80]
    if wide:
        return None, [f"lines longer than 80 columns: {wide}"]
    os.makedirs(out_dir, exist_ok=True)
    binary = os.path.join(out_dir, prog.out_name)
    san_cc, san_flags = sanitizer_flags(args.build)
    cc = args.cc or san_cc or os.environ.get("CC") or "cc"
    werror = [] if prog.kind in ("starter", "exercise") else ["-Werror"]
    cmd = ([cc, "-std=gnu11", "-g"] + WARN_FLAGS + werror + san_flags +
           ["-I" + os.path.join(root, "c", "include"), prog.src,
            "-o", binary, "-L" + args.build_abs, "-laiolab",
            "-Wl,-rpath," + args.build_abs])
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True)
    if p.returncode != 0:
        return None, ["build failed: " + " ".join(cmd)] + \
            p.stdout.splitlines()[-30:]
    return binary, []


# --- running and judging ---------------------------------------------------

def program_timeout(prog, args):
    """--timeout, or more if the program's first 40 lines ask for it."""
    with open(prog.src) as f:
        head = "".join(f.readline() for _ in range(40))
    m = TIMEOUT_NOTE.search(head)
    return max(args.timeout, float(m.group(1))) if m else args.timeout


def run_program(binary, timeout):
    """Returns (status, output); status is the exit code, or None on a
    timeout.  stderr is merged into the output."""
    env = dict(os.environ)
    try:
        p = subprocess.run([binary], cwd=os.path.dirname(binary), env=env,
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=timeout)
        return p.returncode, p.stdout.decode(errors="replace")
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode(errors="replace")
        return None, out


def describe_status(status):
    if status is None:
        return "timed out"
    if status < 0:
        return f"killed by signal {-status}"
    return f"exit status {status}"


def judge(prog, status, output):
    """Returns ("pass" | "fail" | "skip", [diagnostic lines])."""
    checks = [CHECK_LINE.match(l) for l in output.splitlines()]
    checks = [m for m in checks if m]
    failed = [m for m in checks if m.group(2) == "FAILED"]
    if status == 77:
        why = [l[5:].strip() for l in output.splitlines()
               if l.startswith("skip:")]
        return "skip", why or ["exit status 77"]
    if prog.kind == "starter":
        if status == 1 and failed:
            return "pass", ["starter fails as it should: " +
                            failed[0].group(0)]
        if status == 0:
            return "fail", ["the exercise starter passes its checks: an "
                            "exercise must fail until it is solved"]
        return "fail", [f"the starter must fail a check (exit status 1 and "
                        f"a FAILED line), not crash: {describe_status(status)}"]
    if status != 0 or failed or not checks:
        why = []
        if failed:
            why.append(failed[0].group(0))
        if status != 0:
            why.append(describe_status(status))
        if not checks:
            why.append("no `check: ...: ok` line was printed")
        if prog.kind == "exercise":
            why.append("(the exercise is not solved yet)")
        return "fail", why
    return "pass", []


# --- README regions --------------------------------------------------------

def read_regions(path):
    """{name: text} of one source file; raises ValueError if malformed."""
    regions, current, lines = {}, None, []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n")
            m = REGION_BEGIN.match(line)
            if m:
                if current:
                    raise ValueError(f"{path}:{n}: region '{m.group(1)}' "
                                     f"inside region '{current}'")
                if m.group(1) in regions:
                    raise ValueError(f"{path}:{n}: duplicate region "
                                     f"'{m.group(1)}'")
                current, lines = m.group(1), []
            elif REGION_END.match(line):
                if not current:
                    raise ValueError(f"{path}:{n}: [endregion] without a "
                                     f"region")
                regions[current] = "\n".join(lines)
                current = None
            elif current:
                lines.append(line)
    if current:
        raise ValueError(f"{path}: region '{current}' is not closed")
    return regions


def check_readme(readme, chapter, update=False):
    """Returns a list of problems (empty: the README holds)."""
    problems = []
    base = os.path.dirname(readme)
    with open(readme) as f:
        lines = f.read().split("\n")
    out, i, cache = [], 0, {}
    while i < len(lines):
        line = lines[i]
        fence = FENCE.match(line)
        m = README_MARK.match(line)
        if fence and fence.group(1) == "c":
            problems.append(f"line {i + 1}: a ```c block without a "
                            f"<!-- region: FILE.c:NAME --> marker (code in "
                            f"the docs must come from a compiled file)")
        if fence:
            # Copy the whole block: markers inside code are not markers.
            j = i + 1
            while j < len(lines) and not FENCE.match(lines[j]):
                j += 1
            out.extend(lines[i:j + 1])
            i = j + 1
            continue
        out.append(line)
        i += 1
        if not m:
            if "<!-- region:" in re.sub(r"`[^`]*`", "", line):
                problems.append(f"line {i}: a region marker must be alone "
                                f"on its line: <!-- region: FILE.c:NAME -->")
            continue
        src, name = m.group(1), m.group(2)
        if src not in cache:
            try:
                cache[src] = read_regions(os.path.join(base, src))
            except (OSError, ValueError) as e:
                problems.append(f"line {i}: {e}")
                cache[src] = {}
        want = cache[src].get(name)
        if want is None:
            problems.append(f"line {i}: {src} has no region '{name}'")
            continue
        if i >= len(lines) or not FENCE.match(lines[i]) or \
                FENCE.match(lines[i]).group(1) != "c":
            problems.append(f"line {i}: the marker for {src}:{name} must be "
                            f"followed by a ```c block")
            continue
        j = i + 1
        while j < len(lines) and not FENCE.match(lines[j]):
            j += 1
        have = "\n".join(lines[i + 1:j])
        if have != want:
            diff = difflib.unified_diff(want.split("\n"), have.split("\n"),
                                        f"{src}:{name}", "README.md",
                                        lineterm="", n=1)
            problems.append(f"line {i + 1}: the block differs from "
                            f"{src}:{name}:")
            problems.extend("  " + d for d in list(diff)[:20])
        out.append(lines[i])
        out.extend(want.split("\n"))
        out.append("```")
        i = j + 1
    if update and out != lines:
        with open(readme, "w") as f:
            f.write("\n".join(out))
    if chapter:
        text = "\n".join(lines)
        for what, rx in README_PARTS:
            if not rx.search(text):
                problems.append(f"missing part: {what}")
        for m in LINE_CITE.finditer(text):
            problems.append(f"'{m.group(0)}': cite code by symbol "
                            f"(file: function()), never by line number")
    return problems


# --- main -----------------------------------------------------------------

class Reporter:
    def __init__(self, verbose):
        self.n = 0
        self.counts = {"pass": 0, "fail": 0, "skip": 0}
        self.verbose = verbose

    def report(self, result, name, notes, seconds=None, output=""):
        self.n += 1
        self.counts[result] += 1
        t = f" ({seconds:.2f}s)" if seconds is not None else ""
        if result == "skip":
            print(f"ok {self.n} {name} # SKIP {'; '.join(notes)}")
        else:
            print(f"{'ok' if result == 'pass' else 'not ok'} {self.n} "
                  f"{name}{t}")
        if result == "fail" or self.verbose:
            for note in notes if result != "skip" else []:
                print("# " + note)
            if output and (result == "fail" or self.verbose):
                tail = output.rstrip("\n").split("\n")[-25:]
                print("# output:")
                for line in tail:
                    print("#   " + line)
        sys.stdout.flush()


def main():
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        epilog="See the top of this file, and tutorial/README.md.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build",
                    help="library build directory, relative to the "
                         "repository (default: build; build/asan and "
                         "build/tsan add the sanitizer's flags)")
    ap.add_argument("--root",
                    help="the aiolab tree with c/include and the build "
                         "directory (default: the first directory above "
                         "tutorial/ that has c/include/aiolab/aiolab.h)")
    ap.add_argument("--cc", help="compiler (default: $CC or cc)")
    ap.add_argument("--timeout", type=float, default=60,
                    help="seconds a program may run (default: 60)")
    ap.add_argument("-k", dest="pattern",
                    help="only tests whose name contains PATTERN")
    ap.add_argument("--list", action="store_true",
                    help="list the tests, run nothing")
    ap.add_argument("-v", "--verbose", action="store_true",
                    help="show every program's output")
    ap.add_argument("--update-regions", action="store_true",
                    help="rewrite README code blocks from their regions")
    args = ap.parse_args()

    root = os.path.abspath(args.root) if args.root else find_root()
    if root is None or not os.path.exists(
            os.path.join(root, "c", "include", "aiolab", "aiolab.h")):
        print("# tutorial: cannot find c/include/aiolab/aiolab.h above "
              + HERE)
        print("# tutorial: 0 passed, 1 failed, 0 skipped")
        return 1
    args.build_abs = os.path.abspath(os.path.join(root, args.build))
    out_root = os.path.join(os.path.dirname(HERE), "build", "tutorial")
    if os.path.normpath(args.build) != "build":
        # build/asan -> build/tutorial/asan: variants never share binaries
        out_root = os.path.join(out_root, os.path.basename(
            os.path.normpath(args.build)))
    chapters = discover(args.pattern)
    readmes = [(os.path.join(HERE, "README.md"), None)] + \
        [(os.path.join(HERE, c, "README.md"), c) for c, _, _ in chapters]
    if args.pattern:
        readmes = [r for r in readmes if args.pattern in
                   os.path.relpath(r[0], HERE)]
    if args.list:
        for c, progs, _ in chapters:
            for p in progs:
                print(p.name)
        for r, _ in readmes:
            print(os.path.relpath(r, HERE))
        return 0

    rep = Reporter(args.verbose)
    lib = os.path.join(args.build_abs, "libaiolab.so")
    if not os.path.exists(lib):
        rep.report("fail", "library", [f"{lib} is missing: run `make` "
                                       f"(or pass --build)"])
        print(f"# tutorial: 0 passed, 1 failed, 0 skipped")
        return 1

    programs = [p for _, progs, _ in chapters for p in progs]
    jobs = max(1, os.cpu_count() or 1)
    with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
        built = list(pool.map(
            lambda p: compile_program(
                p, args, root,
                os.path.join(out_root, p.chapter,
                             os.path.dirname(p.rel))), programs))

    for c, _, problems in chapters:
        for problem in problems:
            rep.report("fail", problem.split(":")[0], [problem])
    for prog, (binary, notes) in zip(programs, built):
        if binary is None:
            rep.report("fail", prog.name, notes)
            continue
        t0 = time.time()
        status, output = run_program(binary, program_timeout(prog, args))
        result, why = judge(prog, status, output)
        rep.report(result, prog.name, why, time.time() - t0, output)
    for readme, chapter in readmes:
        name = os.path.relpath(readme, HERE)
        if not os.path.exists(readme):
            rep.report("fail", name, ["missing"])
            continue
        problems = check_readme(readme, chapter, args.update_regions)
        rep.report("fail" if problems else "pass", name + " (regions"
                   + (", parts)" if chapter else ")"), problems)

    c = rep.counts
    print(f"# tutorial: {c['pass']} passed, {c['fail']} failed, "
          f"{c['skip']} skipped")
    return 1 if c["fail"] else 0


if __name__ == "__main__":
    sys.exit(main())
