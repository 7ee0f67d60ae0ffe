#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""gen-api-doc.py - write docs/api.md from the public headers.

    /usr/bin/python3 scripts/gen-api-doc.py            rewrite docs/api.md
    /usr/bin/python3 scripts/gen-api-doc.py --check    exit 1 if it is stale
    /usr/bin/python3 scripts/gen-api-doc.py --missing-context
                                        list API entries with no Context: line

Input: c/include/aiolab/*.h and */*.h (those git tracks), in the order aiolab.h
includes them.  What it reads there:

  - banner comments, which open a section by calling context:
        /* Any thread */    /* Home thread only */    /* Global state ... */
    or a boxed comment between two lines of dashes;
  - kernel-doc comments, /** name: summary ... @arg: ... Returns: ...
    Context: ... */, and the declarations that follow them with no blank
    line in between (a group: e.g. a _full function and its macros);
  - plain comments directly above declarations (their description), and
    free-standing comments (printed where they stand);
  - AIOLAB_API declarations, static inline functions and function-like
    macros (not the AIOLAB_* helpers).  Types are listed by name only.

The output depends only on the headers, so --check can compare it byte for
byte with the committed docs/api.md (tests/docs-check.py does).
"""
import argparse
import difflib
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INCLUDE = os.path.join("c", "include", "aiolab")
OUT = os.path.join("docs", "api.md")


# --- scanning a header into items ------------------------------------------

class Item:
    """A comment, a preprocessor line or a declaration, with its lines."""

    def __init__(self, kind, text, line, blank_before):
        self.kind = kind            # "comment", "cpp" or "decl"
        self.text = text
        self.line = line            # first line, 1-based
        self.blank_before = blank_before


def skip_literal(text, i):
    """@i is at a quote: return the index after the literal."""
    quote = text[i]
    i += 1
    while i < len(text) and text[i] != quote:
        i += 2 if text[i] == "\\" else 1
    return i + 1


def scan(text):
    """Split @text into Items; blank_before says an empty line precedes."""
    items = []
    i, n = 0, len(text)
    newlines = 2                    # the file start counts as a blank line
    while i < n:
        c = text[i]
        if c in " \t\r":
            i += 1
            continue
        if c == "\n":
            newlines += 1
            i += 1
            continue
        start = i
        line = text.count("\n", 0, i) + 1
        blank = newlines >= 2
        newlines = 0
        if text.startswith("/*", i):
            end = text.find("*/", i + 2)
            end = n if end < 0 else end + 2
            items.append(Item("comment", text[start:end], line, blank))
            i = end
            # A comment that ends its line leaves the newline to count.
            continue
        if text.startswith("//", i):
            end = text.find("\n", i)
            i = n if end < 0 else end
            continue
        if c == "#":
            j = i
            while True:
                end = text.find("\n", j)
                if end < 0:
                    end = n
                    break
                if text[end - 1] == "\\":
                    j = end + 1
                    continue
                break
            items.append(Item("cpp", text[start:end], line, blank))
            i = end
            continue
        # A declaration: up to ';' at depth 0, or a function body's '}'.
        depth = 0
        j = i
        while j < n:
            ch = text[j]
            if ch in "\"'":
                j = skip_literal(text, j)
                continue
            if text.startswith("/*", j):
                end = text.find("*/", j + 2)
                j = n if end < 0 else end + 2
                continue
            if ch in "({[":
                depth += 1
            elif ch in ")}]":
                depth -= 1
                if ch == "}" and depth == 0:
                    head = text[start:text.rfind("{", start, j)]
                    if head.rstrip().endswith(")"):
                        j += 1          # a function body: no ';'
                        break
            elif ch == ";" and depth == 0:
                j += 1
                break
            j += 1
        items.append(Item("decl", text[start:j], line, blank))
        i = j
    return items


# --- comments ---------------------------------------------------------------

def comment_lines(comment):
    """The lines of a /* */ comment without the markers and leading ' * '."""
    body = comment[2:-2]
    if body.startswith("*"):
        body = body[1:]
    out = []
    for raw in body.split("\n"):
        m = re.match(r"^\s*\* ?(.*)$", raw.rstrip())
        out.append(m.group(1) if m else raw.strip())
    while out and not out[0].strip():
        out.pop(0)
    while out and not out[-1].strip():
        out.pop()
    return out


def is_dashes(s):
    return bool(re.match(r"^\s*-{8,}\s*$", s))


BANNER_RE = re.compile(r"^/\*\s*((?:Any thread|Home thread only|Global state)"
                       r"[^*]*?)\s*\*/$")


def banner_text(comment):
    """The section title if @comment is a banner, else None."""
    m = BANNER_RE.match(comment.strip())
    if m:
        return m.group(1).strip()
    lines = comment.split("\n")
    if len(lines) >= 3 and re.match(r"^/\*\s*-{8,}\s*$", lines[0]) and \
            re.match(r"^\s*\*\s*-{8,}\s*\*/$", lines[-1]):
        inner = [re.sub(r"^\s*\*\s?", "", s).strip() for s in lines[1:-1]]
        return " ".join(s for s in inner if s)
    return None


KDOC_NAME = re.compile(r"^([A-Za-z_]\w*(?:\s*/\s*[A-Za-z_]\w*)*):\s*(.*)$")
SECTION = re.compile(r"(?:(?<=\s)|^)(Returns|Context):\s*")


class KernelDoc:
    def __init__(self, comment):
        lines = comment_lines(comment)
        m = KDOC_NAME.match(lines[0].strip()) if lines else None
        self.name = m.group(1) if m else None
        self.desc = []              # lines before the arguments
        self.args = []              # [name, [lines]]
        self.more = []              # description after the arguments
        self.returns = []
        self.context = []
        cur = self.desc
        first = [m.group(2)] if m else lines[:1]
        in_arg = False
        for line in first + lines[1:]:
            am = re.match(r"^@(\w+):\s*(.*)$", line.strip())
            if am:
                self.args.append([am.group(1), [am.group(2)]])
                cur = self.args[-1][1]
                in_arg = True
                continue
            if in_arg and (not line.strip() or not line.startswith(" ")):
                # An argument continues on indented lines only.
                in_arg = False
                cur = self.more
            # "Returns:" / "Context:" may start in the middle of a line.
            while True:
                sm = SECTION.search(line)
                if not sm:
                    break
                before = line[:sm.start()].rstrip()
                if before.strip():
                    cur.append(before)
                cur = self.returns if sm.group(1) == "Returns" else \
                    self.context
                line = line[sm.end():]
            cur.append(line)


def render_text(lines):
    """Comment lines as markdown: paragraphs, indented runs as text blocks."""
    out, para, pre = [], [], []

    def flush_para():
        if para:
            out.append(escape(join_lines(para)))
            out.append("")
            para.clear()

    def flush_pre():
        if pre:
            while pre and not pre[-1].strip():
                pre.pop()
            indent = min(len(s) - len(s.lstrip()) for s in pre if s.strip())
            out.append("```text")
            out.extend(s[indent:] for s in pre)
            out.append("```")
            out.append("")
            pre.clear()

    for s in lines:
        if not s.strip():
            if pre:
                pre.append("")
            else:
                flush_para()
            continue
        if s.startswith("  ") or (pre and s.startswith(" ")) or \
                is_dashes(s):
            flush_para()
            pre.append(s)
        else:
            flush_pre()
            para.append(s)
    flush_pre()
    flush_para()
    return out


def escape(s):
    """Escape what markdown would eat in prose taken from comments (code
    spans between backticks are left alone)."""
    parts = re.split(r"(`[^`]*`)", s)
    for i in range(0, len(parts), 2):
        p = parts[i].replace("\\", "\\\\")
        p = p.replace("<", "&lt;").replace(">", "&gt;").replace("*", "\\*")
        parts[i] = p
    return "".join(parts)


def join_lines(lines):
    """Join comment lines into one paragraph ("zeroed-then-" + "cleaned"
    stays one word)."""
    text = ""
    for s in lines:
        s = s.strip()
        if not s:
            continue
        if re.search(r"([A-Za-z]-|/)$", text):
            text += s
        else:
            text += (" " if text else "") + s
    return text


def one_line(lines):
    return escape(join_lines(lines))


# --- declarations -----------------------------------------------------------

def strip_comments(s):
    return re.sub(r"/\*.*?\*/", " ", s, flags=re.S)


def last_paren_group(s):
    """(start, end) of the last top-level (...) in @s, or None."""
    depth, end = 0, None
    for i in range(len(s) - 1, -1, -1):
        if s[i] == ")":
            if depth == 0:
                end = i
            depth += 1
        elif s[i] == "(":
            depth -= 1
            if depth == 0:
                return i, end
    return None


def decl_signature(item):
    """(name, signature) for an API declaration item, or None."""
    text = strip_comments(item.text).strip()
    if item.kind == "cpp":
        m = re.match(r"#\s*define\s+([A-Za-z_]\w*)\(([^)]*)\)", text)
        if not m or m.group(1).startswith("AIOLAB_"):
            return None
        return m.group(1), "#define %s(%s)" % (m.group(1), m.group(2))
    if text.startswith("typedef") or text.startswith("struct "):
        return None
    api = text.startswith("AIOLAB_API")
    inline = text.startswith("static inline")
    if not (api or inline):
        return None
    if inline:
        text = text[:text.index("{")].rstrip() + ";"
    text = re.sub(r"^AIOLAB_API\s+", "", text)
    # Attributes after the parameter list do not belong in the docs.
    text = re.sub(r"\s*(AIOLAB_PRINTF\([^)]*\)|AIOLAB_NORETURN)", "", text)
    text = " ".join(text.split())
    text = text.replace("( ", "(").replace(" )", ")")
    body = text.rstrip(";")
    grp = last_paren_group(body)
    if grp and body.endswith(")"):
        names = re.findall(r"[A-Za-z_]\w*", body[:grp[0]])
    else:
        names = re.findall(r"[A-Za-z_]\w*", body)
    if not names:
        return None
    return names[-1], wrap_signature(text)


def wrap_signature(sig, width=79):
    """Break a long prototype after commas, aligned under its '('."""
    if len(sig) <= width or "(" not in sig:
        return sig
    grp = last_paren_group(sig.rstrip(";"))
    if not grp:
        return sig
    open_at = grp[0]
    head, params = sig[:open_at + 1], sig[open_at + 1:]
    parts = params.split(", ")
    lines, cur = [], head
    for k, p in enumerate(parts):
        piece = p + (", " if k < len(parts) - 1 else "")
        if len(cur) + len(piece.rstrip()) > width and cur.strip() != \
                head.strip() and cur != " " * len(head):
            lines.append(cur.rstrip())
            cur = " " * len(head)
        cur += piece
    lines.append(cur.rstrip())
    return "\n".join(lines)


def typedef_name(item):
    text = strip_comments(item.text).strip()
    if not text.startswith("typedef"):
        return None
    grp = last_paren_group(text.rstrip(";"))
    if grp and text.rstrip(";").endswith(")") and "{" not in text:
        before = text[:grp[0]]
        names = re.findall(r"[A-Za-z_]\w*", before)
    else:
        names = re.findall(r"[A-Za-z_]\w*", text)
    return names[-1] if names else None


# --- one header -------------------------------------------------------------

class Entry:
    def __init__(self, doc):
        self.doc = doc              # comment Item or None
        self.decls = []             # (name, signature)
        self.notes = []             # comments inside the group
        self.section = None


def parse_header(path):
    """The blocks of one header, in order, and its type names.

    Blocks: ("intro", lines), ("banner", title), ("text", lines),
    ("type", name, lines), ("entry", Entry).  A comment documents what
    follows it with no blank line in between: declarations (an Entry), or
    a typedef (then the comment is the type's, unless API declarations
    follow the typedef at once: then it documents them).
    """
    with open(path) as f:
        items = scan(f.read())
    blocks, types = [], []
    state = {"pending": None, "held": []}
    intro_done = False
    entry = None
    section = None

    def flush():
        pending, held = state["pending"], state["held"]
        if pending is not None:
            lines = comment_lines(pending.text)
            if held and not re.search(r"\btypedef\b", lines[0]):
                blocks.append(("type", held[0], lines))
            else:
                blocks.append(("text", lines))
        state["pending"], state["held"] = None, []

    for it in items:
        adjacent = not it.blank_before
        if it.kind == "comment":
            if "SPDX-License-Identifier" in it.text:
                continue
            if entry and adjacent and not it.text.startswith("/**") and \
                    state["pending"] is None:
                # Inside a group: a note on it, or (if a blank line
                # follows) the doc of what comes next.
                state["pending"] = it
                continue
            flush()
            entry = None
            title = banner_text(it.text)
            if title:
                section = title
                blocks.append(("banner", title))
                continue
            if not intro_done:
                blocks.append(("intro", comment_lines(it.text)))
                intro_done = True
                continue
            state["pending"] = it
            continue
        intro_done = True
        sig = decl_signature(it)
        tname = typedef_name(it) if it.kind == "decl" else None
        if tname:
            types.append(tname)
        if sig is None:
            if tname and state["pending"] is not None and adjacent:
                state["held"].append(tname)
            elif it.kind == "decl" or not adjacent:
                flush()
            if it.kind == "decl" or not adjacent:
                entry = None
            continue
        if entry and adjacent and not state["held"]:
            if state["pending"] is not None:
                entry.notes.append(comment_lines(state["pending"].text))
                state["pending"] = None
            entry.decls.append(sig)
            continue
        if state["pending"] is not None and adjacent:
            entry = Entry(state["pending"])
            state["pending"], state["held"] = None, []
        else:
            flush()
            entry = Entry(None)
        entry.section = section
        entry.decls.append(sig)
        blocks.append(("entry", entry))
    flush()
    return blocks, types


def header_names():
    """The public headers: those git tracks (work in progress that is not
    yet added stays out of the docs), or every .h outside a git tree."""
    inc = os.path.join(ROOT, INCLUDE)
    try:
        p = subprocess.run(["git", "ls-files", "--", INCLUDE], cwd=ROOT,
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        tracked = [os.path.relpath(f, INCLUDE) for f in
                   p.stdout.decode().splitlines()] if p.returncode == 0 \
            else None
    except OSError:
        tracked = None
    if not tracked:
        tracked = [os.path.relpath(os.path.join(d, f), inc)
                   for d, _, files in os.walk(inc) for f in files]
    return sorted(f for f in tracked if f.endswith(".h") and
                  os.path.exists(os.path.join(inc, f)))


def header_order():
    inc = os.path.join(ROOT, INCLUDE)
    names = header_names()
    order = []
    with open(os.path.join(inc, "aiolab.h")) as f:
        for m in re.finditer(r"#include <aiolab/([\w./-]+\.h)>", f.read()):
            if m.group(1) in names and m.group(1) not in order:
                order.append(m.group(1))
    order += [n for n in names if n not in order and n != "aiolab.h"]
    if "aiolab.h" in names:
        order.append("aiolab.h")
    return order


def anchor(title):
    a = title.strip().lower()
    a = re.sub(r"[^\w\- ]", "", a)
    return a.replace(" ", "-")


def render_entry(e, out, missing):
    kd = KernelDoc(e.doc.text) if e.doc is not None and \
        e.doc.text.startswith("/**") else None
    title = kd.name if kd and kd.name else e.decls[0][0]
    plain = comment_lines(e.doc.text) if e.doc is not None and not kd \
        else None
    if plain:
        # A plain comment may still name what it documents: "NAME(): ...".
        m = re.match(r"^([A-Za-z_]\w*)(?:\(\))?(\s*/\s*\w+)?:\s*(.*)$",
                     plain[0])
        if m and m.group(1) in [n for n, _ in e.decls]:
            title = m.group(1) + (m.group(2) or "")
            plain = [m.group(3)] + plain[1:]
    out.append("#### `%s`" % title)
    out.append("")
    out.append("```c")
    for _, sig in e.decls:
        out.append(sig)
    out.append("```")
    out.append("")
    if kd:
        desc = list(kd.desc)
        if desc and re.match(r"^[a-z]+\b(?![_(])", desc[0]):
            desc[0] = desc[0][0].upper() + desc[0][1:]
        out.extend(render_text(desc))
        if kd.args:
            for name, lines in kd.args:
                out.append("- `@%s`: %s" % (name, one_line(lines)))
            out.append("")
        out.extend(render_text(kd.more))
        if kd.returns:
            out.append("**Returns:** %s" % one_line(kd.returns))
            out.append("")
    elif plain:
        out.extend(render_text(plain))
    for note in e.notes:
        out.extend(render_text(note))
    if kd and kd.context:
        out.append("**Context:** %s" % one_line(kd.context))
    else:
        where = "section *%s*" % escape(e.section) if e.section \
            else "no section"
        out.append("**Context:** not stated (%s)" % where)
        missing.append(title)
    out.append("")


def generate():
    out = [
        "# aiolab C API reference",
        "",
        "<!-- Generated by scripts/gen-api-doc.py from c/include/aiolab/*.h."
        " Do not edit: change the header comments, then run",
        "     /usr/bin/python3 scripts/gen-api-doc.py",
        "     tests/docs-check.py fails while this file is stale. -->",
        "",
        "Every public function, grouped by header and, inside a header, by",
        "the banner sections that say who may call them.  Each entry gives",
        "the signature, the header's comment and its **Context** line, in",
        "QEMU's vocabulary: *any thread*, *home thread* (the thread that",
        "polls the AioContext), *main loop, BQL held* (QEMU's",
        "`GLOBAL_STATE_CODE`), *coroutine_fn*.  [threading.md](threading.md)",
        "explains these rules; [aborts.md](aborts.md) lists what the debug",
        "build prints when one is broken.",
        "",
        "`#include <aiolab/aiolab.h>` gives all of it.",
        "",
        "## Headers",
        "",
    ]
    order = header_order()
    for h in order:
        out.append("- [`aiolab/%s`](#%s)" % (h, anchor("aiolab/" + h)))
    out.append("")
    missing = []
    for h in order:
        blocks, types = parse_header(os.path.join(ROOT, INCLUDE, h))
        out.append("## aiolab/%s" % h)
        out.append("")
        for b in blocks:
            if b[0] == "intro":
                lines = b[1]
                if lines and re.match(r"^aiolab/[\w.-]+ - ", lines[0]):
                    first = re.sub(r"^aiolab/[\w.-]+ - ", "", lines[0])
                    if re.match(r"^[a-z]+\b(?!_)", first):
                        first = first[0].upper() + first[1:]
                    lines = [first] + lines[1:]
                out.extend(render_text(lines))
                if types:
                    out.append("Types: " + ", ".join("`%s`" % t
                                                     for t in types) + ".")
                    out.append("")
            elif b[0] == "banner":
                out.append("### %s" % escape(b[1]))
                out.append("")
            elif b[0] == "text":
                out.extend(render_text(b[1]))
            elif b[0] == "type":
                lines = list(b[2])  # its comment, maybe "Name: ..."
                if lines and lines[0].startswith(b[1] + ":"):
                    lines[0] = lines[0][len(b[1]) + 1:].lstrip()
                text = render_text(lines)
                if text:
                    text[0] = "Type `%s`: %s" % (b[1], text[0])
                out.extend(text)
            else:
                render_entry(b[1], out, missing)
    while out and not out[-1]:
        out.pop()
    return "\n".join(out) + "\n", missing


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true",
                    help="exit 1 if docs/api.md differs from the headers")
    ap.add_argument("--missing-context", action="store_true",
                    help="list entries whose comment has no Context: line")
    args = ap.parse_args()
    text, missing = generate()
    path = os.path.join(ROOT, OUT)
    if args.missing_context:
        for name in missing:
            print(name)
        return 0
    if args.check:
        try:
            with open(path) as f:
                old = f.read()
        except FileNotFoundError:
            print("%s does not exist: run scripts/gen-api-doc.py" % OUT)
            return 1
        if old != text:
            diff = difflib.unified_diff(old.splitlines(), text.splitlines(),
                                        OUT + " (committed)",
                                        OUT + " (from the headers)",
                                        lineterm="", n=1)
            for i, line in enumerate(diff):
                if i == 40:
                    print("...")
                    break
                print(line)
            print("%s is stale: run /usr/bin/python3 scripts/gen-api-doc.py"
                  % OUT)
            return 1
        return 0
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
