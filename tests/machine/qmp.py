# SPDX-License-Identifier: MIT
"""The QMP client of the end-to-end tests: aiolab.qmp
(bindings/python/aiolab/qmp.py), the one the notebooks use too.

It is loaded from its file, not through `import aiolab`: these tests run
build/bin programs and need neither libaiolab nor a built binding, and
the package's __init__ would load both.  Standard library only."""
import importlib.util
import os

_PATH = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "bindings", "python", "aiolab", "qmp.py")
_spec = importlib.util.spec_from_file_location("_aiolab_qmp", _PATH)
_mod = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_mod)

QMPClient = _mod.QMPClient
QMPError = _mod.QMPError

__all__ = ["QMPClient", "QMPError"]
