# SPDX-License-Identifier: MIT
"""Packaging, stubs and docs of the Python package.

Cheap, on every binding:
  - the type stubs (__init__.pyi) name every public class, method,
    property and parameter of the package, and nothing it lacks;
    py.typed ships;
  - docs/python.md is what scripts/gen-python-doc.py makes of the
    docstrings, and its ```python examples run;
  - `python -m aiolab --version` and `python -m aiolab demo` work from the
    tree.

Slow, marked `packaging` and run in the cffi pass only (they cover both
bindings in one go, so `make test`'s two passes run them once):
  - the supported install: `python3 -m venv --system-site-packages` and
    `pip install --no-build-isolation .` of a copy of the git-tracked tree
    into a temporary directory (about a minute: make, swig, two
    extensions), then --version and the demo from the installed copy on
    both bindings, with no PYTHONPATH or LD_LIBRARY_PATH: the extensions
    find the bundled libaiolab.so through their $ORIGIN rpath;
  - mypy's stubtest and a strict type check of a small program against the
    stubs, if python3-mypy is installed (skipped otherwise).
"""
import ast
import inspect
import os
import re
import shutil
import subprocess
import sys

import pytest

import aiolab

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
PKG = os.path.join(ROOT, "bindings", "python", "aiolab")
PYTHON = "/usr/bin/python3"



def slow(test):
    """Marked `packaging`; binding-independent, so only in the cffi pass."""
    test = pytest.mark.packaging(test)
    return pytest.mark.skipif(aiolab.BINDING != "cffi",
                              reason="covers both bindings; runs once, in "
                              "the cffi pass")(test)


def tree_env(**extra):
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "bindings",
                                                   "python"))
    env.update(extra)
    return env


# --- stubs ----------------------------------------------------------------

def stub_tree():
    with open(os.path.join(PKG, "__init__.pyi")) as f:
        return ast.parse(f.read())


def stub_params(fn):
    """Parameter names of a stub def, without self."""
    a = fn.args
    names = [p.arg for p in a.posonlyargs + a.args]
    names += ["*" + a.vararg.arg] if a.vararg else []
    names += [p.arg for p in a.kwonlyargs]
    names += ["**" + a.kwarg.arg] if a.kwarg else []
    return names[1:] if names[:1] in (["self"], ["cls"]) else names


def runtime_params(fn):
    out = []
    for p in inspect.signature(fn).parameters.values():
        if p.name.startswith("_") and not p.name.startswith("__"):
            continue                # private (Timer's _tlg)
        prefix = {p.VAR_POSITIONAL: "*", p.VAR_KEYWORD: "**"}.get(p.kind,
                                                                   "")
        out.append(prefix + p.name)
    return out[1:] if out[:1] in (["self"], ["_cls"]) else out


def stub_classes(tree):
    return {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}


def stub_members(cls_node, classes):
    """name -> def node or "attr", including the stub's base classes."""
    members, mine = {}, set()
    for base in cls_node.bases:
        name = getattr(base, "id", None) or getattr(
            getattr(base, "value", None), "id", None)
        if name in classes:
            members.update(stub_members(classes[name], classes))
    for n in cls_node.body:
        if isinstance(n, ast.FunctionDef):
            if n.name not in mine:      # the first def (before .setter)
                members[n.name] = n
            mine.add(n.name)
        elif isinstance(n, ast.AnnAssign):
            members[n.target.id] = "attr"
    return members


def test_stubs_and_py_typed_ship():
    assert os.path.exists(os.path.join(PKG, "py.typed"))
    with open(os.path.join(ROOT, "pyproject.toml")) as f:
        text = f.read()
    assert re.search(r'aiolab = \["py.typed", "\*.pyi"\]', text)


def test_stubs_match_the_package():
    tree = stub_tree()
    top = set()
    for n in tree.body:
        if isinstance(n, (ast.ClassDef, ast.FunctionDef)):
            top.add(n.name)
        elif isinstance(n, ast.AnnAssign):
            top.add(n.target.id)
    missing = set(aiolab.__all__) - top
    assert not missing, f"public names without a stub: {sorted(missing)}"
    classes = stub_classes(tree)
    problems = []
    for name in aiolab.__all__:
        obj = getattr(aiolab, name)
        if inspect.isclass(obj) and name in classes:
            members = stub_members(classes[name], classes)
            runtime = {}
            for klass in reversed(obj.__mro__[:-1]):
                if klass.__module__.startswith("aiolab"):
                    runtime.update(vars(klass))
            for attr, value in runtime.items():
                public = not attr.startswith("_") or attr in (
                    "__init__", "__enter__", "__exit__", "__await__")
                if not public or (attr == "__init__" and
                                  issubclass(obj, tuple)):
                    continue
                if attr not in members:
                    problems.append(f"{name}.{attr}: not in the stub")
                elif callable(value) and not isinstance(value, property) \
                        and members[attr] != "attr" and \
                        stub_params(members[attr]) != runtime_params(value):
                    problems.append(
                        f"{name}.{attr}: stub {stub_params(members[attr])}"
                        f" != package {runtime_params(value)}")
            for attr, node in members.items():
                if node != "attr" and not hasattr(obj, attr):
                    problems.append(f"{name}.{attr}: in the stub only")
        elif inspect.isfunction(obj):
            node = next(n for n in tree.body
                        if isinstance(n, ast.FunctionDef) and n.name == name)
            if stub_params(node) != runtime_params(obj):
                problems.append(f"{name}: stub {stub_params(node)} != "
                                f"package {runtime_params(obj)}")
    assert not problems, "\n".join(problems)


@slow
@pytest.mark.timeout(600)
def test_stubs_with_mypy(tmp_path):
    pytest.importorskip("mypy", reason="python3-mypy is not installed")
    config = tmp_path / "mypy.ini"
    private = ",".join(["aiolab._backend", "aiolab._core", "aiolab._threads",
                        "aiolab._tasks", "aiolab._trace", "aiolab._asyncio",
                        "aiolab.aiolab_swig", "aiolab.__main__"])
    config.write_text("[mypy]\nignore_missing_imports = True\n"
                      f"cache_dir = {tmp_path / 'cache'}\n"
                      f"[mypy-{private}]\nignore_errors = True\n")
    allow = tmp_path / "allowlist"
    # Timer(..., _tlg) is private; the private modules have no stubs.
    allow.write_text("aiolab.Timer.__init__\naiolab\\._.*\n"
                     "aiolab.aiolab_swig.*\naiolab.__main__.*\n")
    env = tree_env(MYPYPATH=os.path.join(ROOT, "bindings", "python"))
    p = subprocess.run([PYTHON, "-m", "mypy.stubtest", "aiolab",
                        "--mypy-config-file", str(config),
                        "--allowlist", str(allow),
                        "--ignore-unused-allowlist"], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=500)
    assert p.returncode == 0, p.stdout + p.stderr
    program = tmp_path / "uses_aiolab.py"
    program.write_text('''
import aiolab

with aiolab.AioContext(name="typed") as ctx:
    bh = ctx.bh(lambda: None, name="b")
    bh.schedule()
    progress: bool = ctx.poll(blocking=False)

    async def job() -> int:
        await aiolab.sleep(1000)
        n: int = await ctx.to_thread(len, "abc")
        return n

    result: int = ctx.run_until_complete(job(), timeout=5)
    timer = ctx.timer(lambda: None, scale="ms")
    timer.mod(timer.now() + 5)
    with aiolab.trace() as t:
        ctx.notify()
    names = [s.name for s in t.slices("aio_poll")]
with aiolab.IOThread("io0", poll_max_ns=1000) as io:
    io.poll_max_ns = 2000
    value: int = io.run(lambda: 3)
with aiolab.bql():
    locked: bool = aiolab.bql_locked()
''')
    p = subprocess.run([PYTHON, "-m", "mypy", "--strict", "--config-file",
                        str(config), str(program)], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=500)
    assert p.returncode == 0, p.stdout + p.stderr


# --- docs/python.md ---------------------------------------------------------

def test_python_doc_is_current():
    p = subprocess.run([PYTHON, os.path.join(ROOT, "scripts",
                                             "gen-python-doc.py"), "--check"],
                       env=tree_env(), capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr


def doc_examples():
    with open(os.path.join(ROOT, "docs", "python.md")) as f:
        text = f.read()
    return re.findall(r"^```python\n(.*?)^```", text, re.M | re.S)


@pytest.mark.parametrize("index", range(len(doc_examples())))
def test_python_doc_examples_run(index, tmp_path):
    code = doc_examples()[index]
    p = subprocess.run([PYTHON, "-c", code], cwd=tmp_path, env=tree_env(),
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr


def test_doc_has_examples():
    assert len(doc_examples()) >= 2


# --- python -m aiolab, from the tree ----------------------------------------

def run_main(python, args, env, cwd):
    return subprocess.run([python, "-m", "aiolab"] + args, env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def check_version(out, binding, library):
    assert out.startswith(f"aiolab {aiolab.__version__} ({binding} binding,"
                          f" library {library}"), out


def check_demo(p):
    assert p.returncode == 0, p.stdout + p.stderr
    for line in ("1. 200 round trips", "2. ", "3. a task on io0",
                 "what each thread did"):
        assert line in p.stdout, p.stdout
    assert re.search(r"^  IO io0 +[1-9]", p.stdout, re.M), p.stdout


def test_main_from_the_tree(tmp_path):
    p = run_main(PYTHON, ["--version"], tree_env(), tmp_path)
    assert p.returncode == 0, p.stderr
    check_version(p.stdout, aiolab.BINDING,
                  os.path.join(ROOT, "build", "libaiolab.so"))
    trace = tmp_path / "demo.json"
    p = run_main(PYTHON, ["demo", "--seconds", "0.3", "--trace", str(trace)],
                 tree_env(), tmp_path)
    check_demo(p)
    assert trace.stat().st_size > 0
    p = run_main(PYTHON, ["demo", "--seconds", "-1"], tree_env(), tmp_path)
    assert p.returncode == 2 and "--seconds" in p.stderr


# --- the supported install ----------------------------------------------------

def copy_tracked_tree(dst):
    """The git-tracked files (as they are in the work tree), so that work
    in progress elsewhere in the tree stays out of the build."""
    p = subprocess.run(["git", "-C", ROOT, "ls-files", "-z"],
                       capture_output=True, timeout=60)
    if p.returncode != 0:
        pytest.skip("not a git checkout: cannot tell the sources apart")
    for rel in p.stdout.decode().split("\0"):
        src = os.path.join(ROOT, rel)
        if not rel or not os.path.isfile(src):
            continue
        os.makedirs(os.path.join(dst, os.path.dirname(rel)), exist_ok=True)
        shutil.copy2(src, os.path.join(dst, rel))


@slow
@pytest.mark.timeout(900)
def test_venv_install(tmp_path):
    for tool in ("make", "swig", "cc"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    src, venv = tmp_path / "src", tmp_path / "venv"
    copy_tracked_tree(src)
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "LD_LIBRARY_PATH", "AIOLAB_BINDING",
                        "VIRTUAL_ENV")}
    env.update(PIP_DISABLE_PIP_VERSION_CHECK="1",
               PIP_ROOT_USER_ACTION="ignore", PIP_NO_INPUT="1")
    subprocess.run([PYTHON, "-m", "venv", "--system-site-packages",
                    str(venv)], check=True, env=env, timeout=120)
    # --no-index: everything needed is a Debian package already; never
    # reach for the network.
    p = subprocess.run([str(venv / "bin" / "pip"), "install",
                        "--no-build-isolation", "--no-index", "."],
                       cwd=src, env=env, capture_output=True, text=True,
                       timeout=800)
    assert p.returncode == 0, (p.stdout + p.stderr)[-6000:]

    python = str(venv / "bin" / "python")
    where = subprocess.run(
        [python, "-c", "import aiolab, os; "
         "print(os.path.dirname(aiolab.__file__))"], cwd=tmp_path, env=env,
        capture_output=True, text=True, timeout=60)
    assert where.returncode == 0, where.stderr
    site = where.stdout.strip()
    assert site.startswith(str(venv)), site
    shipped = set(os.listdir(site))
    for name in ("libaiolab.so", "__init__.pyi", "py.typed", "__main__.py",
                 "aiolab_swig.py"):
        assert name in shipped, sorted(shipped)
    exts = [n for n in shipped if n.startswith(("_aiolab_cffi.",
                                                "_aiolab_swig."))]
    assert len(exts) == 2, sorted(shipped)
    for ext in exts:
        dyn = subprocess.run(["readelf", "-d", os.path.join(site, ext)],
                             capture_output=True, text=True, timeout=60)
        assert "[$ORIGIN]" in dyn.stdout, dyn.stdout

    library = os.path.join(site, "libaiolab.so")
    for binding in ("cffi", "swig"):
        benv = dict(env, AIOLAB_BINDING=binding)
        p = run_main(python, ["--version"], benv, tmp_path)
        assert p.returncode == 0, p.stderr
        check_version(p.stdout, binding, library)
        check_demo(run_main(python, ["demo", "--seconds", "0.5"], benv,
                            tmp_path))
    p = subprocess.run([str(venv / "bin" / "aiolab"), "--version"], env=env,
                       cwd=tmp_path, capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0 and p.stdout.startswith("aiolab "), p.stderr
