# SPDX-License-Identifier: MIT
"""Install the aiolab Python package, with libaiolab and both low-level
modules, into a virtual environment:

    /usr/bin/python3 -m venv --system-site-packages VENV
    VENV/bin/pip install --no-build-isolation .

(Debian's Python is externally managed, PEP 668: install into a venv.
--system-site-packages lets the venv use Debian's python3-cffi;
--no-build-isolation lets the build use Debian's setuptools and cffi
instead of downloading them.)

The build runs make for libaiolab.so alone (BUILD= a directory under
setuptools' build_temp, so the tree's own build/ is left alone), builds
the cffi module from bindings/cffi/build.py: make_ffi() and the SWIG module
from bindings/swig/aiolab.i (swig -threads, as the Makefile does), links
both with rpath $ORIGIN and puts libaiolab.so next to them in the package:
the installed extensions need no LD_LIBRARY_PATH.  Metadata is in
pyproject.toml.
"""
import importlib.util
import os
import re
import shutil
import subprocess

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = os.path.dirname(os.path.abspath(__file__))
INCLUDE = os.path.join(ROOT, "c", "include")


def version():
    with open(os.path.join(INCLUDE, "aiolab", "aiolab.h")) as f:
        return re.search(r'#define AIOLAB_VERSION "([^"]+)"', f.read())[1]


def cffi_build_module():
    """bindings/cffi/build.py, imported (it is a script, not a package)."""
    path = os.path.join(ROOT, "bindings", "cffi", "build.py")
    spec = importlib.util.spec_from_file_location("aiolab_cffi_build", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


class BuildAiolab(build_ext):
    """libaiolab.so by make, then the two extension modules against it."""

    def run(self):
        temp = os.path.abspath(self.build_temp)
        libdir = os.path.join(temp, "libaiolab")
        self.make_library(libdir)
        for ext in self.extensions:
            if ext.name == "aiolab._aiolab_cffi":
                self.prepare_cffi(ext, libdir, os.path.join(temp, "cffi"))
            elif ext.name == "aiolab._aiolab_swig":
                self.prepare_swig(ext, libdir, os.path.join(temp, "swig"))
        super().run()
        # The library goes where the extensions are ($ORIGIN).
        pkg = os.path.dirname(self.get_ext_fullpath("aiolab._aiolab_cffi"))
        self.copy_file(os.path.join(libdir, "libaiolab.so"),
                       os.path.join(pkg, "libaiolab.so"))
        self.copy_file(os.path.join(temp, "swig", "aiolab_swig.py"),
                       os.path.join(pkg, "aiolab_swig.py"))

    def make_library(self, libdir):
        jobs = str(os.cpu_count() or 1)
        cmd = ["make", "-C", ROOT, "-j", jobs, f"BUILD={libdir}",
               os.path.join(libdir, "libaiolab.so")]
        self.announce("building libaiolab: " + " ".join(cmd), level=2)
        subprocess.run(cmd, check=True)

    def prepare_cffi(self, ext, libdir, gendir):
        """Generate the C source with the tree's make_ffi(); compile it as
        an ordinary extension, linked with rpath $ORIGIN."""
        ffi = cffi_build_module().make_ffi([libdir], "$ORIGIN")
        generated = ffi.distutils_extension(tmpdir=gendir, verbose=False)
        for attr in ("sources", "include_dirs", "library_dirs", "libraries",
                     "extra_compile_args", "extra_link_args"):
            setattr(ext, attr, list(getattr(generated, attr)))

    def prepare_swig(self, ext, libdir, gendir):
        """swig -threads, as the Makefile does; rpath $ORIGIN."""
        os.makedirs(gendir, exist_ok=True)
        wrap = os.path.join(gendir, "aiolab_swig_wrap.c")
        subprocess.run(["swig", "-python", "-threads", "-w451",
                        f"-I{INCLUDE}", "-o", wrap, "-outdir", gendir,
                        os.path.join(ROOT, "bindings", "swig", "aiolab.i")],
                       check=True)
        ext.sources = [wrap]
        ext.include_dirs = [INCLUDE]
        ext.library_dirs = [libdir]
        ext.libraries = ["aiolab"]
        ext.extra_compile_args = ["-std=gnu11", "-Wno-unused-parameter"]
        ext.extra_link_args = ["-Wl,-rpath,$ORIGIN"]


setup(
    version=version(),
    # The sources are made by BuildAiolab.run(), just before compiling.
    ext_modules=[Extension("aiolab._aiolab_cffi", sources=[]),
                 Extension("aiolab._aiolab_swig", sources=[])],
    cmdclass={"build_ext": BuildAiolab},
)
