#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Generate the reference part of docs/python.md from the docstrings of
the aiolab package.

    /usr/bin/python3 scripts/gen-python-doc.py           # rewrite it
    /usr/bin/python3 scripts/gen-python-doc.py --check   # exit 1 if stale

docs/python.md has two parts.  Everything down to the line holding
MARKER is written by hand (how bindings are picked, the safety rules) and
kept as it is; everything after it is generated here, from aiolab.__all__:
each private module's docstring introduces its part, then every public
class (its methods and properties, in source order), function and
constant, with signature and docstring.  The output is the same on either
binding (it never prints binding-specific values), so --check can run in
either test pass.  Members without a docstring are listed on stderr.

Needs the extension modules (`make`): it imports the package from
bindings/python.
"""
import argparse
import difflib
import inspect
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOC = os.path.join(ROOT, "docs", "python.md")
MARKER = "<!-- generated below by scripts/gen-python-doc.py -->"

# The parts of the reference: (module, title), in order.  A public name
# goes to the part of the module that defines it.
PARTS = [
    ("aiolab._core", "Contexts, bottom halves, timers, event notifiers"),
    ("aiolab._threads", "The main loop, the BQL, IOThreads, waiting"),
    ("aiolab._tasks", "Tasks"),
    ("aiolab._trace", "Tracing"),
    ("aiolab._asyncio", "asyncio"),
    ("aiolab._job", "Block jobs"),
    ("aiolab._hw", "Guest memory and the driver's ring"),
    ("aiolab._virtio", "virtio-blk: the device and its queues"),
    ("aiolab._driver", "A guest's virtio-blk driver"),
    ("aiolab._machine", "The toy machine"),
    ("aiolab", "The package"),
]

# What an instance is called in the member lists ("ctx.poll()").
INSTANCE_NAMES = {"AioContext": "ctx", "EventNotifier": "notifier",
                  "IOThread": "io", "MainLoop": "main", "Future": "fut",
                  "Trace": "t", "Job": "job", "GuestMemory": "mem",
                  "GuestRing": "ring", "VirtIOBlk": "dev", "VirtQueue": "vq",
                  "VirtQueueElement": "elem", "VirtIOBlkDriver": "drv",
                  "VirtIOBlkRequest": "req", "Machine": "m",
                  "LatencyHist": "hist", "MemReentrancyGuard": "guard"}
# What leaving a `with` block does, when it is not close().
LEAVING = {"IOThread": "stops and destroys it",
           "Trace": "ends the capture", "span": "ends the slice"}
# Values that are the same on every binding and machine, shown as they are.
SHOWN_VALUES = ("CLOCKS", "SCALES")
# Constants described rather than shown (their value depends on the run).
DESCRIBED = {
    "BINDING": "The low-level module in use: `\"cffi\"` or `\"swig\"` "
               "(from `AIOLAB_BINDING`, default cffi).",
    "lib": "The low-level module itself, with the C API under its C names "
           "(`aiolab.lib.aio_poll`, `aiolab.lib.qemu_bh_schedule`, ...). "
           "Arguments and results follow the binding's conventions "
           "(cffi: bytes and cdata; SWIG: str and proxies).",
    "__version__": "The library's version (`aiolab_version()`).",
}


def markdown(doc):
    """A docstring as Markdown: prose as it is, indented blocks (after a
    blank line) as ```text blocks."""
    if not doc:
        return ""
    lines = inspect.cleandoc(doc).split("\n")
    out, k = [], 0
    while k < len(lines):
        line = lines[k]
        starts_block = line.startswith("    ") and (k == 0 or
                                                    not lines[k - 1].strip())
        if not starts_block:
            out.append(line)
            k += 1
            continue
        block = []
        while k < len(lines) and (lines[k].startswith("    ") or
                                  not lines[k].strip()):
            block.append(lines[k][4:])
            k += 1
        while block and not block[-1].strip():
            block.pop()
        out += ["```text"] + block + ["```", ""]
    return "\n".join(out).strip() + "\n"


def signature(obj, drop_self=True):
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return "(...)"
    params = [p for p in sig.parameters.values()
              if not p.name.startswith("_") or p.name.startswith("__")]
    if drop_self and params and params[0].name in ("self", "_cls"):
        params = params[1:]
    return str(sig.replace(parameters=params, return_annotation=sig.empty))


class Writer:
    def __init__(self):
        self.out = []
        self.undocumented = []

    def add(self, text=""):
        self.out.append(text)

    def doc(self, what, obj):
        text = markdown(inspect.getdoc(obj) if not isinstance(obj, property)
                        else obj.__doc__)
        if text:
            self.add(text)
        else:
            self.undocumented.append(what)

    def klass(self, name, cls):
        bases = [b.__name__ for b in cls.__bases__ if b is not object]
        if issubclass(cls, tuple) and hasattr(cls, "_fields"):
            self.add(f"### `{name}` (a named tuple: "
                     f"{', '.join(cls._fields)})")
            self.add()
            self.doc(name, cls)
            return
        init = "" if cls.__init__ is object.__init__ else \
            signature(cls.__init__)
        if issubclass(cls, BaseException):
            init = ""
        base = f", a subclass of `{bases[0]}`" if bases else ""
        self.add(f"### class `{name}{init}`{base}")
        self.add()
        self.doc(name, cls)
        var = INSTANCE_NAMES.get(name, name.lower())
        for attr, value in vars(cls).items():
            if attr.startswith("_") and attr not in ("__enter__",
                                                     "__await__"):
                continue
            what = f"{name}.{attr}"
            if isinstance(value, property):
                kind = "property" if value.fset is None else \
                    "property, settable"
                self.add(f"- `{var}.{attr}` ({kind})")
                text = markdown(value.__doc__)
                if text:
                    self.add("  " + text.strip().replace("\n", "\n  "))
                else:
                    self.undocumented.append(what)
            elif callable(value):
                if attr == "__enter__":
                    self.add(f"- `with {name}(...) as {var}:`: a context "
                             f"manager; leaving the block "
                             f"{LEAVING.get(name, 'closes it')}")
                    continue
                if attr == "__await__":
                    self.add(f"- `await {var}`: awaitable from a task")
                    continue
                self.add(f"- `{var}.{attr}{signature(value)}`")
                text = markdown(inspect.getdoc(value))
                if text:
                    self.add("  " + text.strip().replace("\n", "\n  "))
                else:
                    self.undocumented.append(what)
        self.add()

    def function(self, name, fn):
        self.add(f"### `aiolab.{name}{signature(fn, drop_self=False)}`")
        self.add()
        self.doc(name, fn)
        self.add()

    def value(self, name, value):
        self.add(f"### `aiolab.{name}`")
        self.add()
        if name in SHOWN_VALUES:
            self.add(f"`{value!r}`")
        else:
            self.add(DESCRIBED[name])
        self.add()


def generate():
    sys.path.insert(0, os.path.join(ROOT, "bindings", "python"))
    import aiolab

    names = list(aiolab.__all__) + ["__version__"]
    home = {}
    for name in names:
        obj = getattr(aiolab, name)
        mod = getattr(obj, "__module__", "aiolab") if (
            inspect.isclass(obj) or inspect.isfunction(obj)) else "aiolab"
        home[name] = mod if mod in dict(PARTS) else "aiolab"
    w = Writer()
    w.add(MARKER)
    w.add()
    w.add("## Reference")
    w.add()
    w.add("Generated from the docstrings (`scripts/gen-python-doc.py`); "
          "the names are those of `aiolab.__all__`.")
    w.add()
    for module, title in PARTS:
        members = [n for n in names if home[n] == module]
        if not members:
            continue
        w.add(f"## {title}")
        w.add()
        w.add(f"*From `{module}`.*")
        w.add()
        w.doc(module, sys.modules[module])
        w.add()
        for name in members:
            obj = getattr(aiolab, name)
            if inspect.isclass(obj):
                w.klass(name, obj)
            elif callable(obj) and name != "lib":
                w.function(name, obj)
            else:
                w.value(name, obj)
    text = "\n".join(w.out)
    while "\n\n\n" in text:
        text = text.replace("\n\n\n", "\n\n")
    return text.rstrip() + "\n", w.undocumented


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true",
                    help="do not write; exit 1 if docs/python.md is stale")
    args = ap.parse_args()
    try:
        with open(DOC, encoding="utf-8") as f:
            current = f.read()
    except OSError as e:
        print(f"gen-python-doc: {e}", file=sys.stderr)
        return 1
    if MARKER not in current:
        print(f"gen-python-doc: {DOC} has no line '{MARKER}': the "
              "hand-written part must end with it", file=sys.stderr)
        return 1
    intro = current[:current.index(MARKER)]
    generated, undocumented = generate()
    wanted = intro + generated
    if args.check:
        if current == wanted:
            print("gen-python-doc: docs/python.md is up to date")
            return 0
        diff = difflib.unified_diff(current.splitlines(),
                                    wanted.splitlines(), "docs/python.md",
                                    "generated", lineterm="", n=1)
        print("gen-python-doc: docs/python.md is stale; run "
              "scripts/gen-python-doc.py", file=sys.stderr)
        for line in list(diff)[:40]:
            print(line, file=sys.stderr)
        return 1
    if undocumented:
        print("gen-python-doc: no docstring: " + ", ".join(undocumented),
              file=sys.stderr)
    if current != wanted:
        with open(DOC, "w", encoding="utf-8") as f:
            f.write(wanted)
        print("gen-python-doc: wrote docs/python.md")
    else:
        print("gen-python-doc: docs/python.md is up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
