#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Make the student copy of the tutorial and notebooks: no solutions.

    /usr/bin/python3 scripts/make-student.py --out build/student

`make student` runs exactly that.  It copies tutorial/ and, if present,
notebooks/ into the output directory, leaving out:

  - every directory named `solution` (the exercises' answers);
  - notebook cells tagged `solution` (cell metadata "tags"); the outputs
    of the remaining cells are cleared as well, so that no printed answer
    survives (running the notebook recreates them);
  - caches and editor debris: __pycache__, .ipynb_checkpoints, *.pyc,
    *.o, *~, .*.swp, .git.

In the copy, tutorial/check.py checks the exercises the other way round:
with no solution/ next to it, an exercise must pass (that is how students
check their answer), where in the full tree the unsolved starter must fail.

The copy is built in a temporary directory and renamed into place, so an
error never leaves half a copy.  An existing output directory is replaced
only if it is empty or was made by this script (it holds a
`.aiolab-student` marker); --force replaces anything else.  Every file
written is listed (-q: only the summary).  Exit status: 0 on success, 1 on
an error (a notebook that is not valid JSON, an output inside the sources,
a refusal to overwrite), with the reason on stderr.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCES = ("tutorial", "notebooks")
SOLUTION_DIRS = {"solution"}
SOLUTION_TAG = "solution"
SKIP_DIRS = {"__pycache__", ".ipynb_checkpoints", ".git"}
SKIP_SUFFIXES = (".pyc", ".o", "~", ".swp")
MARKER = ".aiolab-student"


class Refusal(Exception):
    """A reason not to go on, for stderr."""


def skipped_file(name):
    return name.endswith(SKIP_SUFFIXES) or \
        (name.startswith(".") and name.endswith(".swp"))


def strip_notebook(src, dst):
    """Copy notebook @src to @dst without solution cells and outputs.
    Returns the number of cells removed."""
    try:
        with open(src, encoding="utf-8") as f:
            nb = json.load(f)
    except (OSError, ValueError) as e:
        raise Refusal(f"{src}: not a readable notebook ({e}); refusing to "
                      f"copy it, as it might hold solutions")
    cells = nb.get("cells")
    if not isinstance(cells, list):
        raise Refusal(f"{src}: no cell list (nbformat {nb.get('nbformat')}"
                      f"?); refusing to copy it")
    kept = []
    for cell in cells:
        tags = cell.get("metadata", {}).get("tags", [])
        if SOLUTION_TAG in tags:
            continue
        if cell.get("cell_type") == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
        kept.append(cell)
    nb["cells"] = kept
    with open(dst, "w", encoding="utf-8") as f:
        json.dump(nb, f, indent=1, sort_keys=True, ensure_ascii=False)
        f.write("\n")
    return len(cells) - len(kept)


def copy_tree(src_top, dst_top, report):
    """Copy one source tree; returns (files, solution dirs, cells removed)."""
    files = sol_dirs = cells = 0
    for dirpath, dirnames, filenames in os.walk(src_top):
        rel_dir = os.path.relpath(dirpath, ROOT)
        for d in sorted(dirnames):
            if d in SOLUTION_DIRS:
                sol_dirs += 1
                report(f"left out {os.path.join(rel_dir, d)}/ (solutions)")
        dirnames[:] = sorted(d for d in dirnames
                             if d not in SOLUTION_DIRS and d not in SKIP_DIRS)
        out_dir = os.path.join(dst_top, os.path.relpath(dirpath, src_top))
        os.makedirs(out_dir, exist_ok=True)
        for name in sorted(filenames):
            if skipped_file(name):
                continue
            src = os.path.join(dirpath, name)
            dst = os.path.join(out_dir, name)
            rel = os.path.join(rel_dir, name)
            if os.path.islink(src) or not os.path.isfile(src):
                report(f"left out {rel} (not a regular file)")
                continue
            if name.endswith(".ipynb"):
                removed = strip_notebook(src, dst)
                shutil.copymode(src, dst)
                cells += removed
                note = f" ({removed} solution cell{'s' * (removed != 1)} " \
                       f"removed)" if removed else ""
                report(f"wrote {rel}{note}")
            else:
                shutil.copy2(src, dst)
                report(f"wrote {rel}")
            files += 1
    return files, sol_dirs, cells


def verify(out):
    """Nothing that looks like a solution may be left in @out."""
    problems = []
    for dirpath, dirnames, filenames in os.walk(out):
        for d in dirnames:
            if d in SOLUTION_DIRS:
                problems.append(os.path.join(dirpath, d))
        for name in filenames:
            if not name.endswith(".ipynb"):
                continue
            with open(os.path.join(dirpath, name), encoding="utf-8") as f:
                nb = json.load(f)
            if any(SOLUTION_TAG in c.get("metadata", {}).get("tags", [])
                   for c in nb.get("cells", [])):
                problems.append(os.path.join(dirpath, name))
    if problems:
        raise Refusal("solutions left in the copy: " + ", ".join(problems))


def check_out_dir(out, force):
    """May we (re)place @out?"""
    real = os.path.realpath(out)
    root = os.path.realpath(ROOT)
    if root == real or root.startswith(real.rstrip(os.sep) + os.sep):
        raise Refusal(f"--out {out}: that would replace the repository")
    for top in tuple(os.path.join(ROOT, s) for s in SOURCES):
        top = os.path.realpath(top)
        if real == top or real.startswith(top + os.sep):
            raise Refusal(f"--out {out}: that is (inside) the sources")
    if not os.path.exists(out):
        return
    if not os.path.isdir(out):
        raise Refusal(f"--out {out}: exists and is not a directory")
    if force or not os.listdir(out) or \
            os.path.exists(os.path.join(out, MARKER)):
        return
    raise Refusal(f"--out {out}: exists and was not made by this script "
                  f"(no {MARKER}); use --force to replace it")


def source_commit():
    try:
        p = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short",
                            "HEAD"], stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, text=True)
        return p.stdout.strip() if p.returncode == 0 else "unknown"
    except OSError:
        return "unknown"


def main():
    ap = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="build/student",
                    help="output directory (default: build/student); "
                         "relative paths are taken from the current "
                         "directory")
    ap.add_argument("--force", action="store_true",
                    help="replace --out even if this script did not make it")
    ap.add_argument("--dry-run", action="store_true",
                    help="say what would be written; write nothing")
    ap.add_argument("-q", "--quiet", action="store_true",
                    help="print only the summary")
    args = ap.parse_args()

    out = os.path.abspath(args.out)
    lines = []

    def report(line):
        if args.dry_run and line.startswith("wrote "):
            line = "would write " + line[len("wrote "):]
        lines.append(line)
        if not args.quiet:
            print(line)

    tmp = f"{out}.tmp-{os.getpid()}"
    try:
        check_out_dir(out, args.force)
        present = [s for s in SOURCES if os.path.isdir(os.path.join(ROOT, s))]
        if "tutorial" not in present:
            raise Refusal(f"{os.path.join(ROOT, 'tutorial')}: not found")
        os.makedirs(tmp)
        totals = [0, 0, 0]
        for s in present:
            counts = copy_tree(os.path.join(ROOT, s), os.path.join(tmp, s),
                               report)
            totals = [a + b for a, b in zip(totals, counts)]
        verify(tmp)
        with open(os.path.join(tmp, MARKER), "w") as f:
            f.write("made by scripts/make-student.py from commit "
                    f"{source_commit()}; safe to delete and remake\n")
        if args.dry_run:
            shutil.rmtree(tmp)
        else:
            if os.path.exists(out):
                shutil.rmtree(out)
            os.rename(tmp, out)
    except Refusal as e:
        shutil.rmtree(tmp, ignore_errors=True)
        print(f"make-student: {e}", file=sys.stderr)
        return 1
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise

    where = os.path.relpath(out)
    verb = "would write" if args.dry_run else "wrote"
    print(f"make-student: {verb} {totals[0]} files of "
          f"{' and '.join(d + '/' for d in present)} to {where}, leaving out "
          f"{totals[1]} solution director{'y' if totals[1] == 1 else 'ies'} "
          f"and {totals[2]} solution cell{'' if totals[2] == 1 else 's'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
