# SPDX-License-Identifier: MIT
"""Every function libaiolab.so exports is bound by both low-level modules,
or listed (with its reason) in bindings/c-only.txt -- and nothing else."""
import os
import re
import subprocess

import aiolab


def exported(root):
    out = subprocess.run(["nm", "-D", "--defined-only",
                          os.path.join(root, "build", "libaiolab.so")],
                         capture_output=True, text=True, check=True).stdout
    return {line.split()[2] for line in out.splitlines()
            if len(line.split()) == 3 and line.split()[1] == "T"}


def c_only(root):
    names = set()
    with open(os.path.join(root, "bindings", "c-only.txt")) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line:
                names.add(line)
    return names


def cdef_functions(root):
    names = set()
    cdefs = os.path.join(root, "bindings", "cffi", "cdefs")
    for fn in os.listdir(cdefs):
        text = open(os.path.join(cdefs, fn)).read()
        text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
        text = re.sub(r"typedef[^;]*;", "", text)
        text = re.sub(r"struct\s+\w+\s*\{.*?\}\s*\w*;", "", text, flags=re.S)
        for m in re.finditer(r"(\w+)\s*\([^()]*\)\s*;", text):
            names.add(m.group(1))
    return names


def swig_functions(root):
    text = open(os.path.join(root, "bindings", "swig", "aiolab.i")).read()
    assert '%include "../cffi/cdefs/' in text
    return cdef_functions(root)


def test_coverage(root):
    exp = exported(root)
    only = c_only(root)
    cdefs = cdef_functions(root)
    # What the modules really expose, not only what the files say:
    bound_cffi = {n for n in exp if hasattr(_cffi_lib(), n)}
    bound_swig = {n for n in exp if hasattr(_swig_mod(), n)}
    missing = exp - cdefs - only
    assert not missing, f"exported but neither bound nor in c-only.txt: " \
                        f"{sorted(missing)}"
    stale = only - exp
    assert not stale, f"c-only.txt names functions that do not exist: " \
                      f"{sorted(stale)}"
    both = only & cdefs
    assert not both, f"both bound and listed C-only: {sorted(both)}"
    assert cdefs - exp == set(), f"cdefs declare unexported functions: " \
                                 f"{sorted(cdefs - exp)}"
    assert bound_cffi == exp - only, sorted((exp - only) ^ bound_cffi)
    assert bound_swig == exp - only, sorted((exp - only) ^ bound_swig)
    assert swig_functions(root) == cdefs


def test_every_coroutine_fn_is_c_only(root):
    """coroutine_fn functions must never be bound (a Python frame must not
    run on a C coroutine stack)."""
    only = c_only(root)
    inc = os.path.join(root, "c", "include", "aiolab")
    headers = [os.path.join(d, f) for d, _, files in os.walk(inc)
               for f in files if f.endswith(".h")]
    for fn in headers:
        text = open(fn).read()
        text = re.sub(r"typedef[^;]*;", "", text)
        for m in re.finditer(r"coroutine_fn\s+(\w+)\s*\(", text):
            assert m.group(1) in only, m.group(1)


def _cffi_lib():
    from aiolab import _aiolab_cffi
    return _aiolab_cffi.lib


def _swig_mod():
    from aiolab import aiolab_swig
    return aiolab_swig


def test_binding_selected():
    assert aiolab.BINDING in ("cffi", "swig")
    assert aiolab.BINDING == os.environ.get("AIOLAB_BINDING", "cffi")
