# SPDX-License-Identifier: MIT
"""pytest setup for aiolab's Python tests.

Every test runs on the binding AIOLAB_BINDING names (cffi or swig): make
test runs the whole directory once per binding, in separate processes (a
process holds one low-level module).  Each test runs in its own forked
process (--forked, set in pytest.ini): the main loop and a thread's home
context are process-wide, so tests must not share them.
"""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "bindings", "python"))

import pytest   # noqa: E402

import aiolab   # noqa: E402


def pytest_report_header(config):
    return f"aiolab binding: {aiolab.BINDING}"


@pytest.fixture
def ctx():
    """A fresh AioContext whose home is this (the main) thread."""
    c = aiolab.AioContext()
    yield c
    if not c.closed:
        c.close()


@pytest.fixture
def main():
    """The main loop (this thread becomes the main-loop thread)."""
    return aiolab.main_loop()


@pytest.fixture
def root():
    return ROOT
