# SPDX-License-Identifier: MIT
"""The command line every bench_*.py program shares:

    PROG POSITIONAL... [key=value ...]

parse(argv, doc, names) returns {name: positional, ..., key: value}.
-h, --help (or too few positionals) prints the program's docstring;
a word that is not key=value is an error naming it.
"""
import os


def parse(argv, doc, names):
    prog = os.path.basename(argv[0])
    n = len(names)
    if len(argv) < n + 1 or argv[1] in ("-h", "--help"):
        print(doc)
        raise SystemExit(0 if len(argv) > 1 else 2)
    o = dict(zip(names, argv[1:n + 1]))
    for a in argv[n + 1:]:
        k, sep, v = a.partition("=")
        if not sep or not k:
            raise SystemExit("%s: %r is not key=value" % (prog, a))
        o[k] = v
    return o
