#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""docs-check.py - keep docs/ honest: every check compares a document with
the code it describes.

    /usr/bin/python3 tests/docs-check.py [-v] [--list-aborts]

Prints one harness line per check ("ok N name" / "not ok N name", details
on "# " lines) and ends with "# docs: N passed, N failed, N skipped".
Exit status 0 iff nothing failed.  The checks:

  api-doc        docs/api.md is what scripts/gen-api-doc.py makes of the
                 headers (gen-api-doc.py --check)
  aborts         every abort message the library can print appears in
                 docs/aborts.md (the longest fixed part of its format
                 string), with the function that prints it
  code-refs      every `path: symbol` / path: symbol() reference in docs/
                 and tutorial/ Markdown names an aiolab file that exists
                 and contains the symbol; a `c/...` path exists (QEMU
                 paths, or any path written after "QEMU's", are skipped)
  line-numbers   no file.c:NNN references to aiolab sources
  trace-events   every trace event name of c/util/trace.c is in
                 docs/tracing.md
  code-blocks    a ```c block in docs/ must follow <!-- region: FILE:NAME -->
                 and equal that region of FILE (docs/api.md is exempt:
                 it is generated and checked by api-doc)
  gdb-commands   the gdb commands docs/debugging.md describes are the ones
                 scripts/aiolab-gdb.py registers
  env-vars       every AIOLAB_* environment variable the library reads is
                 documented in docs/
  example NAME   docs/examples/NAME.c compiles against build/ and runs
                 (skipped when build/libaiolab.so is missing)
"""
import argparse
import glob
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYTHON = "/usr/bin/python3"


def read(rel):
    with open(os.path.join(ROOT, rel), errors="replace") as f:
        return f.read()


def squash(s):
    return " ".join(s.split())


# --- a little C reading -------------------------------------------------------

def strip_c_comments(text):
    """Blank out comments (keeping newlines and string literals)."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if c in "\"'":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            out.append(text[i:j + 1])
            i = j + 1
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        else:
            out.append(c)
            i += 1
    return "".join(out)


def call_args(text, open_paren):
    """Split the argument list starting at text[open_paren] == '('.
    Returns (args, index after ')')."""
    depth, i, start, args = 0, open_paren, open_paren + 1, []
    while i < len(text):
        c = text[i]
        if c in "\"'":
            j = i + 1
            while j < len(text) and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            i = j + 1
            continue
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
            if depth == 0:
                args.append(text[start:i].strip())
                return args, i + 1
        elif c == "," and depth == 1:
            args.append(text[start:i].strip())
            start = i + 1
        i += 1
    return args, i


ESCAPES = {"n": "\n", "t": "\t", "\\": "\\", "\"": "\"", "'": "'", "0": "\0"}


def string_value(expr, macros):
    """The value of a concatenation of string literals and string macros
    (RULE_GS ...), or None if @expr is anything else."""
    out, i, seen = [], 0, False
    expr = expr.strip()
    while i < len(expr):
        c = expr[i]
        if c.isspace() or expr.startswith("\\\n", i):
            i += 1
        elif c == "\"":
            j = i + 1
            while expr[j] != "\"":
                if expr[j] == "\\":
                    out.append(ESCAPES.get(expr[j + 1], expr[j + 1]))
                    j += 2
                else:
                    out.append(expr[j])
                    j += 1
            i = j + 1
            seen = True
        else:
            m = re.match(r"[A-Za-z_]\w*", expr[i:])
            if not m or m.group(0) not in macros:
                return None
            out.append(macros[m.group(0)])
            i += m.end()
            seen = True
    return "".join(out) if seen else None


def string_macros(texts):
    """#define NAME "literal" ... from the given (comment-stripped) texts;
    the literals may follow on continuation lines."""
    macros = {}
    for text in texts:
        for m in re.finditer(r"^[ \t]*#[ \t]*define[ \t]+([A-Za-z_]\w*)[ \t]+"
                             r"((?:(?:\\\n[ \t]*)?"
                             r"\"(?:[^\"\\]|\\.)*\"[ \t]*)+)$", text, re.M):
            macros[m.group(1)] = string_value(m.group(2), {})
    return macros


def preprocessor_spans(text):
    """[(start, end, macro name or None)] of every preprocessor directive."""
    spans = []
    for m in re.finditer(r"^[ \t]*#(?:[^\n]*\\\n)*[^\n]*", text, re.M):
        d = re.match(r"[ \t]*#[ \t]*define[ \t]+([A-Za-z_]\w*)", m.group(0))
        spans.append((m.start(), m.end(), d.group(1) if d else None))
    return spans


def function_spans(text):
    """[(start, end, name)] of the function bodies in a comment-stripped
    C file (top level braces whose header ends in a parameter list)."""
    blanked = list(text)
    for s, e, _ in preprocessor_spans(text):
        for k in range(s, e):
            if blanked[k] != "\n":
                blanked[k] = " "
    t = "".join(blanked)
    spans, depth, i, last_end = [], 0, 0, 0
    body_start = None
    while i < len(t):
        c = t[i]
        if c in "\"'":
            j = i + 1
            while j < len(t) and t[j] != c:
                j += 2 if t[j] == "\\" else 1
            i = j + 1
            continue
        if c == "{":
            if depth == 0:
                head = t[last_end:i]
                body_start = i if head.rstrip().endswith(")") and \
                    "=" not in head else None
                head_text = head
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                if body_start is not None:
                    spans.append((body_start, i + 1,
                                  function_name(head_text)))
                last_end = i + 1
        elif c == ";" and depth == 0:
            last_end = i + 1
        i += 1
    return spans


def function_name(head):
    """The name declared by a function header such as
    "QEMUBH *(aio_bh_new)(AioContext *ctx, ...)"."""
    head = head.rstrip()
    depth = 0
    for i in range(len(head) - 1, -1, -1):
        if head[i] == ")":
            depth += 1
        elif head[i] == "(":
            depth -= 1
            if depth == 0:
                names = re.findall(r"[A-Za-z_]\w*", head[:i])
                return names[-1] if names else None
    return None


def enclosing(spans, pos):
    for s, e, name in spans:
        if s <= pos < e:
            return name
    return None


# --- the abort messages ---------------------------------------------------------

class AbortSite:
    """One place that can print an abort message."""

    def __init__(self, path, fmt, funcs, how):
        self.path = path            # repository-relative
        self.fmt = fmt              # the format string (its text part)
        self.funcs = funcs          # names printed as "<func>()", may be []
        self.how = how              # "aiolab_die", "AIOLAB_REQUIRE", ...

    def key(self):
        """The distinctive fixed part: the longest piece of the format
        between conversions, not counting the shared rule suffixes."""
        text = self.fmt
        for rule in RULE_TEXTS:
            text = text.replace(rule, "\x00")
        pieces = re.split(CONVERSION + r"|\x00", text)
        pieces = [squash(p) for p in pieces]
        best = max(pieces, key=len)
        return best if len(best) >= 6 else squash(self.fmt)


CONVERSION = r"%[-+ #0]*\d*(?:\.\d+)?(?:hh|h|ll|l|z|j|t|L)?[diouxXcspn%]"
RULE_TEXTS = []
# Macros whose message names the offending argument, not a rule: the
# functions that use them are too many to list and need not be.
GENERIC_MACROS = {"REQUIRE_NONNULL", "REQUIRE_LIVE"}
ABORT_CALLS = ("aiolab_die", "AIOLAB_REQUIRE", "AIOLAB_ASSERT")


def tracked(pattern_dir, exts):
    """Files under @pattern_dir with one of @exts that git tracks (work in
    progress not yet added is left out), or all of them outside git."""
    try:
        p = subprocess.run(["git", "ls-files", "--", pattern_dir], cwd=ROOT,
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        files = p.stdout.decode().splitlines() if p.returncode == 0 else []
    except OSError:
        files = []
    if not files:
        files = [os.path.relpath(f, ROOT) for f in
                 glob.glob(os.path.join(ROOT, pattern_dir, "**", "*"),
                           recursive=True)]
    return sorted(f for f in files if f.endswith(exts) and
                  os.path.isfile(os.path.join(ROOT, f)))


def c_sources():
    return tracked("c", (".c", ".h"))


def find_abort_sites():
    """Every abort message in c/, with the functions that print it."""
    sources = {p: strip_c_comments(read(p)) for p in c_sources()}
    macros = string_macros(sources.values())
    RULE_TEXTS[:] = sorted((v for k, v in macros.items()
                            if k.startswith("RULE_")), key=len, reverse=True)
    sites = []
    # Macros that carry a message (GLOBAL_STATE_CODE, REQUIRE_COROUTINE,
    # ...), and macros that only wrap one of those (REQUIRE_BH).
    msg_macros = {}             # name -> [AbortSite] (funcs filled later)
    wrappers = {}               # name -> wrapped macro name
    for path, text in sources.items():
        fspans = function_spans(text)
        cspans = preprocessor_spans(text)
        for m in re.finditer(r"\b(%s)\s*\(" % "|".join(ABORT_CALLS), text):
            how = m.group(1)
            args, _ = call_args(text, m.end() - 1)
            if len(args) < 2:
                continue
            fmt = string_value(args[1], macros)
            if fmt is None or not fixed_text(fmt):
                continue            # macro definitions, "%s" relays
            macro = next((name for s, e, name in cspans
                          if s <= m.start() < e), None)
            if macro:
                site = AbortSite(path, fmt, [], how)
                msg_macros.setdefault(macro, []).append(site)
                sites.append(site)
                continue
            func = enclosing(fspans, m.start())
            if how == "aiolab_die":
                named = args[0].strip()
                if named == "__func__":
                    funcs = [func]
                elif string_value(named, macros) is not None:
                    funcs = [string_value(named, macros)]
                else:
                    # Passed in: the callers that pass their __func__.
                    funcs = callers_passing_func(sources, func)
            else:
                funcs = [func]
            sites.append(AbortSite(path, fmt, [f for f in funcs if f], how))
        # fprintf(stderr, "...") directly followed by abort()
        for m in re.finditer(r"\bfprintf\s*\(\s*stderr\s*,", text):
            args, end = call_args(text, m.start() + m.group(0).index("("))
            if not re.match(r"\s*;\s*(?:fflush\s*\(\s*stderr\s*\)\s*;"
                            r"\s*)?abort\s*\(\s*\)", text[end:]):
                continue
            fmt = string_value(args[1], macros)
            if fmt is not None and fixed_text(fmt):
                sites.append(AbortSite(path, fmt.rstrip("\n"),
                                       [enclosing(fspans, m.start())],
                                       "fprintf+abort"))
        # Messages formatted into a buffer, "aiolab: %s() ...", to be
        # printed by an abort or raised by a binding (aiolab_rule_check).
        for m in re.finditer(r"\bsnprintf\s*\(", text):
            args, _ = call_args(text, m.end() - 1)
            fmt = string_value(args[2], macros) if len(args) > 2 else None
            head = re.match(r"aiolab: (%s|[A-Za-z_]\w*)\(\) ", fmt or "")
            if not head:
                continue
            if head.group(1) != "%s":
                funcs = [head.group(1)]
            elif re.fullmatch(r"func\w*", args[3]):
                funcs = callers_passing_func(sources,
                                             enclosing(fspans, m.start()))
            else:
                funcs = []
            sites.append(AbortSite(path, fmt[head.end():], funcs,
                                   "snprintf"))
        for s, e, name in cspans:
            if not name:
                continue
            body = text[s:e]
            w = re.search(r"\b(REQUIRE_[A-Z_]+|GLOBAL_STATE_CODE|"
                          r"HOME_THREAD_CODE)\s*\(", body[len(name) + 8:])
            if w and w.group(1) != name:
                wrappers.setdefault(name, w.group(1))
    # HOME_THREAD_CODE() prints check.c's aiolab_home_thread_violation().
    home_sites = [s for s in sites if s.path.endswith("check.c") and
                  "outside the home thread" in s.fmt]
    msg_macros.setdefault("HOME_THREAD_CODE", []).extend(home_sites)
    # Who uses each message macro (directly or through a wrapper)?
    def resolve(name):
        seen = set()
        while name in wrappers and name not in seen:
            seen.add(name)
            name = wrappers[name]
        return name
    for path, text in sources.items():
        fspans = function_spans(text)
        for m in re.finditer(r"\b([A-Z][A-Z_]+)\s*\(", text):
            target = resolve(m.group(1))
            if target not in msg_macros or target in GENERIC_MACROS:
                continue
            func = enclosing(fspans, m.start())
            if func:
                for site in msg_macros[target]:
                    if func not in site.funcs:
                        site.funcs.append(func)
    return sites


def fixed_text(fmt):
    """@fmt without its conversions: is there any text to look for?"""
    return re.sub(CONVERSION, "", fmt).strip()


def callers_passing_func(sources, callee, depth=0):
    """Functions whose name reaches @callee as its function-name argument:
    they call it with __func__, or pass on a name they were given."""
    out = []
    if not callee or depth > 3:
        return out
    for text in sources.values():
        fspans = function_spans(text)
        for m in re.finditer(r"\b%s\s*\(" % re.escape(callee), text):
            args, _ = call_args(text, m.end() - 1)
            caller = enclosing(fspans, m.start())
            if not caller or caller == callee:
                continue
            if "__func__" in args:
                names = [caller]
            elif any(re.fullmatch(r"func\w*", a) for a in args):
                names = callers_passing_func(sources, caller, depth + 1)
            else:
                continue
            out += [n for n in names if n not in out]
    return out


# --- the checks ---------------------------------------------------------------
# Each returns (status, [detail lines]); status is "ok", "fail" or "skip".

def check_api_doc():
    p = subprocess.run([PYTHON, os.path.join(ROOT, "scripts",
                                             "gen-api-doc.py"), "--check"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       cwd=ROOT)
    lines = p.stdout.decode(errors="replace").splitlines()
    return ("ok" if p.returncode == 0 else "fail"), lines


def check_aborts():
    path = os.path.join("docs", "aborts.md")
    if not os.path.exists(os.path.join(ROOT, path)):
        return "fail", ["%s does not exist" % path]
    doc = squash(read(path))
    problems = []
    for site in find_abort_sites():
        key = site.key()
        if key not in doc:
            problems.append("%s: message not in %s: %r (format %r)" %
                            (site.path, path, key, site.fmt))
            continue
        if site.how == "fprintf+abort":
            continue            # the message carries its own prefix
        for func in site.funcs:
            # A whole name: virtio_blk_new() does not name blk_new().
            if not re.search(r"(?<![\w])%s\(\)" % re.escape(func), doc):
                problems.append("%s: %s() can print %r, but %s does not "
                                "name %s()" % (site.path, func, key, path,
                                               func))
    return ("fail" if problems else "ok"), problems


def markdown_files():
    files = sorted(glob.glob(os.path.join(ROOT, "docs", "*.md")))
    files += sorted(glob.glob(os.path.join(ROOT, "tutorial", "**", "*.md"),
                              recursive=True))
    return [os.path.relpath(f, ROOT) for f in files]


# Paths that are aiolab's even before they exist; anything else that does
# not exist is taken for a QEMU path (util/async.c, tests/unit/...).
AIOLAB_PREFIXES = ("c/", "scripts/", "bindings/", "tutorial/", "notebooks/",
                   "tests/c/", "tests/python/", "tests/bench/", "tests/fuzz/",
                   "tests/docs-check.py", "tests/run.py", "aiolab/")
REF_RE = re.compile(r"(?P<pre>`?)(?P<path>(?:[\w.-]+/)+[\w.-]+\.(?:c|h|py|md|"
                    r"txt|sh)):[ \t]+(?P<tick>`?)(?P<sym>[A-Za-z_]\w*)"
                    r"(?P<paren>\(\))?")
PATH_SPAN_RE = re.compile(r"`((?:c|scripts|tests|bindings|tutorial|"
                          r"notebooks|docs)/[\w./-]+)`")


def aiolab_path(path):
    """The repository path @path refers to, or None for a foreign path."""
    if path.startswith("aiolab/"):
        return os.path.join("c", "include", path)
    if os.path.exists(os.path.join(ROOT, path)):
        return path
    if path.startswith(AIOLAB_PREFIXES) or re.match(r"docs/[\w.-]+\.md$",
                                                    path):
        return path
    return None


def without_fences(text):
    """@text with fenced blocks blanked (references there are code)."""
    out, fence = [], False
    for line in text.split("\n"):
        if line.lstrip().startswith("```"):
            fence = not fence
            out.append("")
            continue
        out.append("" if fence else line)
    return "\n".join(out)


def qemu_context(text, start):
    """Is the path at @start introduced as QEMU's ("QEMU's `scripts/...`")?"""
    return bool(re.search(r"QEMU's\s+`?$", text[max(0, start - 12):start]))


def check_code_refs():
    problems, n = [], 0
    for md in markdown_files():
        text = without_fences(read(md))
        for m in REF_RE.finditer(text):
            if qemu_context(text, m.start("path") - len(m.group("pre"))):
                continue
            whole_span = m.group("pre") == "`" and \
                text[m.end():m.end() + 1] == "`"
            if not (m.group("paren") or m.group("tick") or whole_span):
                continue        # prose such as "docs/x.md: every ..."
            real = aiolab_path(m.group("path"))
            if real is None:
                continue        # a QEMU reference
            n += 1
            full = os.path.join(ROOT, real)
            if not os.path.isfile(full):
                problems.append("%s: %s: no such file" % (md, real))
                continue
            if not re.search(r"\b%s\b" % re.escape(m.group("sym")),
                             read(real)):
                problems.append("%s: %s does not contain %s" %
                                (md, real, m.group("sym")))
        for m in PATH_SPAN_RE.finditer(text):
            if qemu_context(text, m.start()):
                continue
            path = m.group(1).rstrip("/.")
            if "*" in path or "<" in path:
                continue
            real = aiolab_path(path)
            if real and not os.path.exists(os.path.join(ROOT, real)) and \
                    not real.startswith(("tutorial/", "notebooks/",
                                         "bindings/", "tests/python/",
                                         "tests/fuzz/")):
                problems.append("%s: `%s` does not exist" % (md, path))
    return ("fail" if problems else "ok"), \
        problems or ["%d references checked" % n]


LINE_RE = re.compile(r"\b((?:[\w.-]+/)*([\w.-]+\.(?:c|h|py|S))):(\d+)\b")


def check_line_numbers():
    names = set()
    for top in ("c", "scripts", "tests", "bindings", "tutorial"):
        for f in glob.glob(os.path.join(ROOT, top, "**", "*"),
                           recursive=True):
            names.add(os.path.basename(f))
    problems = []
    for md in markdown_files():
        for k, line in enumerate(read(md).split("\n"), 1):
            for m in LINE_RE.finditer(line):
                if m.group(2) in names or \
                        os.path.exists(os.path.join(ROOT, m.group(1))):
                    problems.append("%s: line %d: %s: refer to code by "
                                    "symbol, not by line number" %
                                    (md, k, m.group(0)))
    return ("fail" if problems else "ok"), problems


def trace_event_names():
    text = read(os.path.join("c", "util", "trace.c"))
    return re.findall(r"\[TE_\w+\]\s*=\s*\"([^\"]+)\"", text)


def check_trace_events():
    path = os.path.join("docs", "tracing.md")
    if not os.path.exists(os.path.join(ROOT, path)):
        return "fail", ["%s does not exist" % path]
    doc = read(path)
    names = trace_event_names()
    missing = [n for n in names if "`%s`" % n not in doc]
    if not names:
        return "fail", ["no event names found in c/util/trace.c"]
    return ("fail" if missing else "ok"), \
        ["%s does not describe `%s`" % (path, n) for n in missing]


REGION_MARK = re.compile(r"<!--\s*region:\s*([^:\s]+):([\w-]+)\s*-->")


def region_text(path, name):
    """The lines between /* [region: NAME] */ and /* [endregion] */,
    dedented, or None."""
    lines = read(path).split("\n")
    start = None
    for k, line in enumerate(lines):
        if re.search(r"/\*\s*\[region:\s*%s\]\s*\*/" % re.escape(name),
                     line):
            start = k + 1
        elif start is not None and re.search(r"/\*\s*\[endregion\]\s*\*/",
                                             line):
            body = lines[start:k]
            indent = min((len(s) - len(s.lstrip()) for s in body
                          if s.strip()), default=0)
            return [s[indent:].rstrip() for s in body]
    return None


def check_code_blocks():
    problems, n = [], 0
    for md in sorted(glob.glob(os.path.join(ROOT, "docs", "*.md"))):
        rel = os.path.relpath(md, ROOT)
        if rel == os.path.join("docs", "api.md"):
            continue            # generated from the headers (api-doc)
        lines = read(rel).split("\n")
        k = 0
        while k < len(lines):
            m = re.match(r"^\s*```\s*(\S*)", lines[k])
            if not m:
                mark = REGION_MARK.search(lines[k])
                if mark:
                    j = k + 1
                    while j < len(lines) and not lines[j].strip():
                        j += 1
                    if j >= len(lines) or \
                            not re.match(r"^\s*```\s*c\s*$", lines[j]):
                        problems.append("%s: line %d: region marker not "
                                        "followed by a ```c block" %
                                        (rel, k + 1))
                k += 1
                continue
            lang = m.group(1).lower()
            end = k + 1
            while end < len(lines) and not lines[end].strip().startswith(
                    "```"):
                end += 1
            if lang == "c":
                n += 1
                j = k - 1
                while j >= 0 and not lines[j].strip():
                    j -= 1
                mark = REGION_MARK.search(lines[j]) if j >= 0 else None
                if not mark:
                    problems.append("%s: line %d: a ```c block must be a "
                                    "region include (<!-- region: FILE:NAME "
                                    "-->): no pasted code" % (rel, k + 1))
                else:
                    src, name = mark.group(1), mark.group(2)
                    if not os.path.isfile(os.path.join(ROOT, src)):
                        problems.append("%s: line %d: %s: no such file" %
                                        (rel, k + 1, src))
                    else:
                        want = region_text(src, name)
                        got = [s.rstrip() for s in lines[k + 1:end]]
                        if want is None:
                            problems.append("%s: line %d: %s has no region "
                                            "'%s'" % (rel, k + 1, src, name))
                        elif want != got:
                            problems.append("%s: line %d: the block differs "
                                            "from %s region '%s'" %
                                            (rel, k + 1, src, name))
            k = end + 1
    return ("fail" if problems else "ok"), \
        problems or ["%d C blocks checked" % n]


def check_gdb_commands():
    script = os.path.join("scripts", "aiolab-gdb.py")
    doc_path = os.path.join("docs", "debugging.md")
    if not os.path.exists(os.path.join(ROOT, script)):
        return "skip", ["%s does not exist yet" % script]
    registered = set(re.findall(r"super\(\)\.__init__\(\s*\"(aiolab [\w-]+)\"",
                                read(script)))
    doc = read(doc_path)
    documented = set(re.findall(r"`(aiolab [a-z][\w-]*)", doc))
    problems = ["%s registers `%s`, which %s does not describe" %
                (script, c, doc_path) for c in sorted(registered - documented)]
    problems += ["%s describes `%s`, which %s does not register" %
                 (doc_path, c, script) for c in sorted(documented - registered)]
    return ("fail" if problems else "ok"), problems


def check_env_vars():
    used = set()
    for path in c_sources():
        used.update(re.findall(r"getenv\(\s*\"(AIOLAB_\w+)\"", read(path)))
    docs = "".join(read(md) for md in markdown_files()
                   if md.startswith("docs"))
    missing = sorted(v for v in used if v not in docs)
    return ("fail" if missing else "ok"), \
        ["the library reads %s, which no file in docs/ mentions" % v
         for v in missing]


def run_example(src, build):
    """Compile and run docs/examples/<name>.c (its first comment says so)."""
    lib = os.path.join(ROOT, build, "libaiolab.so")
    if not os.path.exists(lib):
        return "skip", ["%s not built (run make)" % os.path.relpath(lib, ROOT)]
    name = os.path.splitext(os.path.basename(src))[0]
    outdir = os.path.join(ROOT, build, "docs-examples")
    os.makedirs(outdir, exist_ok=True)
    exe = os.path.join(outdir, name)
    cc = [os.environ.get("CC", "cc"), "-std=gnu11", "-Wall", "-Wextra",
          "-Werror", "-Wno-unused-parameter", "-O1", "-g", "-pthread",
          "-I" + os.path.join(ROOT, "c", "include"),
          os.path.join(ROOT, src), "-o", exe,
          "-L" + os.path.join(ROOT, build), "-laiolab",
          "-Wl,-rpath," + os.path.join(ROOT, build)]
    p = subprocess.run(cc, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if p.returncode:
        return "fail", ["compile failed: " + " ".join(cc)] + \
            p.stdout.decode(errors="replace").splitlines()
    try:
        p = subprocess.run([exe], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=60, cwd=ROOT)
    except subprocess.TimeoutExpired:
        return "fail", ["%s timed out" % src]
    lines = p.stdout.decode(errors="replace").splitlines()
    if p.returncode == 77:
        return "skip", lines
    return ("ok" if p.returncode == 0 else "fail"), \
        lines + ([] if p.returncode == 0 else ["exit status %d" %
                                                p.returncode])


def all_checks():
    checks = [
        ("api-doc: docs/api.md matches the headers", check_api_doc),
        ("aborts: every abort message is in docs/aborts.md", check_aborts),
        ("code-refs: path: symbol references resolve", check_code_refs),
        ("line-numbers: no file:NNN references", check_line_numbers),
        ("trace-events: every event is in docs/tracing.md",
         check_trace_events),
        ("code-blocks: C blocks in docs/ are region includes",
         check_code_blocks),
        ("gdb-commands: docs/debugging.md matches scripts/aiolab-gdb.py",
         check_gdb_commands),
        ("env-vars: AIOLAB_* variables are documented", check_env_vars),
    ]
    for src in sorted(glob.glob(os.path.join(ROOT, "docs", "examples",
                                             "*.c"))):
        rel = os.path.relpath(src, ROOT)
        checks.append(("example: %s builds and runs" % rel,
                       lambda rel=rel: run_example(rel, "build")))
    return checks


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-v", "--verbose", action="store_true",
                    help="print details of passing checks too")
    ap.add_argument("--list-aborts", action="store_true",
                    help="print every abort message found in c/ and exit")
    args = ap.parse_args()
    if args.list_aborts:
        for s in find_abort_sites():
            print("%-28s %-36s %s" % (s.path, ",".join(s.funcs) or "-",
                                      s.fmt))
        return 0
    counts = {"ok": 0, "fail": 0, "skip": 0}
    for k, (name, fn) in enumerate(all_checks(), 1):
        try:
            status, details = fn()
        except Exception as e:          # a broken check is a failure
            status, details = "fail", ["%s: %s" % (type(e).__name__, e)]
        counts[status] += 1
        if status == "ok":
            print("ok %d %s" % (k, name))
        elif status == "skip":
            print("ok %d %s # SKIP %s" % (k, name,
                                          details[0] if details else ""))
            details = details[1:]
        else:
            print("not ok %d %s" % (k, name))
        if status == "fail" or args.verbose:
            for line in details:
                print("# " + line)
        sys.stdout.flush()
    print("# docs: %d passed, %d failed, %d skipped" %
          (counts["ok"], counts["fail"], counts["skip"]))
    return 1 if counts["fail"] else 0


if __name__ == "__main__":
    sys.exit(main())
