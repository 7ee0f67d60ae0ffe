# SPDX-License-Identifier: MIT
"""The notebooks: committed clean, shaped like the tutorial, and run
headless through nbclient on this process's binding.

Each notebook runs in a fresh Debian `python3` kernel with AIOLAB_QUICK=1,
AIOLAB_BINDING set to the binding this pytest process uses, and
bindings/python on PYTHONPATH.  A cell that raises fails the test, unless
it is tagged "raises-exception": those are the exercises' starter checks,
and they must fail (with an AssertionError), so that an exercise cannot be
solved by accident.  The solution cells (tagged "solution", left out of the
student copy by `make student`) must pass.

All tests here are marked `notebooks`: `-m "not notebooks"` skips them.
They work under the forked conftest (each test starts its kernel from its
own forked process, and shuts it down before it returns).
"""
import glob
import json
import os
import time

import pytest

import aiolab

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
NBDIR = os.path.join(ROOT, "notebooks")
NOTEBOOKS = sorted(glob.glob(os.path.join(NBDIR, "*.ipynb")))
CHAPTERS = ["ch00-win-day-one",
            "ch01-event-loop", "ch02-bh-timers-notifiers", "ch03-iothreads",
            "ch04-bql-vcpus", "ch05-waiting-safely",
            "ch06-virtio-blk", "ch07-drained-sections",
            "ch08-changing-aiocontexts", "ch09-multiqueue",
            "chA-coroutines-thread-pool", "chB-block-job",
            "chC-malicious-guests", "chD-real-clients"]
CELL_TIMEOUT = 120          # seconds, per cell
BUDGET = 60                 # seconds per notebook in quick mode (aim: < 20)

pytestmark = pytest.mark.notebooks


def tags(cell):
    return cell.get("metadata", {}).get("tags", [])


def load(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def test_every_chapter_has_a_notebook():
    names = [os.path.basename(p)[:-len(".ipynb")] for p in NOTEBOOKS]
    assert names == CHAPTERS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=os.path.basename)
def test_committed_without_outputs(path):
    """No outputs, no execution counts: the notebooks are sources."""
    nbformat = pytest.importorskip("nbformat")
    nb = load(path)
    nbformat.validate(nbformat.from_dict(nb))
    dirty = [i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code"
             and (c.get("outputs") or c.get("execution_count") is not None)]
    assert not dirty, f"{os.path.basename(path)}: cells {dirty} have " \
        "outputs or execution counts; clear them before committing " \
        "(Kernel > Restart & Clear Output, then save)"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=os.path.basename)
def test_shaped_like_a_chapter(path):
    """Checks, a failing starter check, solutions kept apart and last."""
    nb = load(path)
    cells = nb["cells"]
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    code = [c for c in cells if c["cell_type"] == "code"]
    text = "".join("".join(c["source"]) for c in cells
                   if c["cell_type"] == "markdown")
    for part in ("## The idea", "```text", "Predict, then run",
                 "<details>", "## Exercise", "## Real world"):
        assert part in text, f"no '{part}'"
    assert sum("".join(c["source"]).startswith("# check") for c in code) \
        >= 5
    starters = [i for i, c in enumerate(cells)
                if "raises-exception" in tags(c)]
    solutions = [i for i, c in enumerate(cells) if "solution" in tags(c)]
    assert starters and solutions
    assert max(starters) < min(solutions), \
        "the starter's check must come before the solution"
    # Everything after the first solution cell is solution or prose, so
    # the student copy (solutions removed) runs the same cells up to there.
    late = [i for i in range(min(solutions), len(cells))
            if cells[i]["cell_type"] == "code" and
            "solution" not in tags(cells[i])]
    assert not late, f"code cells {late} follow the solution but are not " \
        "tagged solution: the student copy would run them without it"
    assert len({c.get("id") for c in cells}) == len(cells), "duplicate ids"


@pytest.mark.timeout(CELL_TIMEOUT * 3)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=os.path.basename)
def test_notebook_runs(path, monkeypatch, tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pythonpath = os.path.join(ROOT, "bindings", "python")
    if os.environ.get("PYTHONPATH"):
        pythonpath += os.pathsep + os.environ["PYTHONPATH"]
    # The kernel inherits this (forked) process's environment.
    monkeypatch.setenv("AIOLAB_QUICK", "1")
    monkeypatch.setenv("AIOLAB_BINDING", aiolab.BINDING)
    monkeypatch.setenv("PYTHONPATH", pythonpath)
    monkeypatch.setenv("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    monkeypatch.setenv("MPLCONFIGDIR", str(tmp_path / "mpl"))
    monkeypatch.setenv("TMPDIR", str(tmp_path))    # traces the cells save

    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=CELL_TIMEOUT, kernel_name="python3",
        resources={"metadata": {"path": NBDIR}})
    t0 = time.monotonic()
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError as e:
        pytest.fail(f"{os.path.basename(path)}: a cell failed:\n{e}",
                    pytrace=False)
    elapsed = time.monotonic() - t0
    print(f"{os.path.basename(path)}: {elapsed:.1f} s on {aiolab.BINDING}")

    outputs = [(i, c) for i, c in enumerate(nb.cells)
               if c.cell_type == "code"]
    first = "".join(o.get("text", "") for o in outputs[0][1].outputs)
    assert f"on the {aiolab.BINDING} binding, quick mode True" in first, \
        "the kernel did not get this binding or quick mode"
    for i, cell in outputs:
        errors = [o for o in cell.outputs if o.output_type == "error"]
        if "raises-exception" in tags(cell):
            assert [e.ename for e in errors] == ["AssertionError"], \
                f"cell {i}: the exercise's starter must fail its check " \
                f"with an AssertionError, got {[e.ename for e in errors]}"
        else:
            assert not errors, f"cell {i}: {errors}"
    assert elapsed < BUDGET, f"{elapsed:.0f} s in quick mode (aim: < 20 s)"
