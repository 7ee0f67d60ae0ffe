# SPDX-License-Identifier: MIT
"""`make student` (scripts/make-student.py): the copy of the tutorial and
the notebooks that instructors hand out has no solutions in it -- no
solution/ directory, no notebook cell tagged "solution", no output that
would print an answer -- and everything else is there, unchanged.  It
touches no binding, so it is the same test on both."""
import glob
import json
import os
import subprocess
import sys

import pytest

SCRIPT = ("scripts", "make-student.py")


def make_student(root, out, *extra):
    return subprocess.run(
        [sys.executable, os.path.join(root, *SCRIPT), "--out", out, "-q",
         *extra], capture_output=True, text=True, timeout=120)


def files_under(top):
    out = set()
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames[:] = [d for d in dirnames
                       if d not in ("__pycache__", ".ipynb_checkpoints")]
        for name in filenames:
            if name.endswith((".pyc", "~", ".swp")) or \
                    name == ".aiolab-student":
                continue
            out.add(os.path.relpath(os.path.join(dirpath, name), top))
    return out


def test_make_target_runs_the_script(root):
    p = subprocess.run(["make", "-n", "-C", root, "student"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert "scripts/make-student.py --out build/student" in p.stdout


def test_student_copy_has_no_solutions(root, tmp_path):
    out = str(tmp_path / "student")
    p = make_student(root, out)
    assert p.returncode == 0, p.stderr

    # The tutorial: every file but those under solution/, byte for byte.
    src = os.path.join(root, "tutorial")
    want = {f for f in files_under(src)
            if "solution" not in f.split(os.sep)[:-1]}
    got = files_under(os.path.join(out, "tutorial"))
    assert got == want
    assert not glob.glob(os.path.join(out, "**", "solution"), recursive=True)
    for rel in want:
        with open(os.path.join(src, rel), "rb") as a, \
                open(os.path.join(out, "tutorial", rel), "rb") as b:
            assert a.read() == b.read(), rel
    # Each chapter keeps its exercise starters (the student's work).
    for chapter in glob.glob(os.path.join(src, "ch*", "solution")):
        starters = glob.glob(os.path.join(os.path.dirname(chapter),
                                          "exercise-*"))
        assert starters, f"{chapter}: solutions without an exercise"

    # The notebooks: the same cells minus the solutions, and no outputs.
    notebooks = sorted(glob.glob(os.path.join(root, "notebooks", "*.ipynb")))
    assert notebooks
    for path in notebooks:
        with open(path) as f:
            full = json.load(f)
        with open(os.path.join(out, "notebooks",
                               os.path.basename(path))) as f:
            student = json.load(f)
        keep = [c for c in full["cells"]
                if "solution" not in c.get("metadata", {}).get("tags", [])]
        assert len(keep) < len(full["cells"]), \
            f"{path}: no solution cell to leave out"
        assert [c["source"] for c in student["cells"]] == \
            [c["source"] for c in keep], path
        for c in student["cells"]:
            if c["cell_type"] == "code":
                assert c["outputs"] == [] and c["execution_count"] is None
    # notebooks/lab.py and friends come along.
    assert os.path.exists(os.path.join(out, "notebooks", "lab.py"))


def test_refuses_to_replace_foreign_directory(root, tmp_path):
    out = tmp_path / "precious"
    out.mkdir()
    (out / "thesis.tex").write_text("do not delete\n")
    p = make_student(root, str(out))
    assert p.returncode == 1
    assert p.stderr.strip(), "a refusal says why"
    assert (out / "thesis.tex").read_text() == "do not delete\n"
    # Its own earlier output is replaced without --force.
    mine = str(tmp_path / "mine")
    assert make_student(root, mine).returncode == 0
    assert make_student(root, mine).returncode == 0


@pytest.mark.parametrize("bad", ["not json", '{"nbformat": 4}'])
def test_unreadable_notebook_is_refused(root, tmp_path, bad):
    """A notebook it cannot parse might hide solutions: no copy at all."""
    fake = tmp_path / "root"
    for sub in ("scripts", "tutorial", "notebooks"):
        (fake / sub).mkdir(parents=True)
    with open(os.path.join(root, *SCRIPT)) as f:
        (fake / "scripts" / "make-student.py").write_text(f.read())
    (fake / "notebooks" / "ch01-broken.ipynb").write_text(bad)
    out = tmp_path / "out"
    p = make_student(str(fake), str(out))
    assert p.returncode == 1
    assert "ch01-broken.ipynb" in p.stderr
    assert not out.exists()
