#!/usr/bin/env python3
"""Checks the rules of the layout (docs/ARCHITECTURE.md "Rooms"):

1. Includes point down only: include/replog <- protocol <- storage <- node <- tools.
   A library file may include its own layer and the layers below it, never above.
2. No function in the library (include/, protocol/, storage/, node/) is longer
   than MAX_LINES lines (tests, tools and benchmarks are exempt).

Exits non-zero with one line per breach. Usage: check_layers.py SOURCE_DIR
"""
import os
import re
import sys

LAYERS = ["include/replog", "protocol", "storage", "node", "tools"]
MAX_LINES = 80
INCLUDE = re.compile(r'^\s*#\s*include\s*[<"]([^>"]+)[>"]')


def layer_of_file(path):
    for i, layer in enumerate(LAYERS):
        if path.startswith(layer + "/"):
            return i
    return None


def layer_of_include(name):
    if name.startswith("replog/"):
        return 0
    for i, layer in enumerate(LAYERS[1:], start=1):
        if name.startswith(layer + "/"):
            return i
    return None


def sources(root):
    for top in LAYERS:
        base = os.path.join(root, top)
        for dirpath, _, files in os.walk(base):
            for f in files:
                if f.endswith((".h", ".cc")):
                    full = os.path.join(dirpath, f)
                    yield os.path.relpath(full, root), full


def check_includes(rel, text, breaches):
    mine = layer_of_file(rel)
    for n, line in enumerate(text.splitlines(), 1):
        m = INCLUDE.match(line)
        if not m:
            continue
        theirs = layer_of_include(m.group(1))
        if theirs is not None and theirs > mine:
            breaches.append("%s:%d includes %s, a layer above it (%s)" % (rel, n, m.group(1), LAYERS[theirs]))


def function_lengths(text):
    """Yields (first line, length) of each top-level function or method body.

    A body starts at a line ending in '{' whose text looks like a function
    head (has ')' and is not a control statement, class, struct, namespace or
    enum), and ends where its braces balance. Good enough for this code base's
    formatting (clang-format, Google style)."""
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        head = stripped.endswith("{") and ")" in stripped and not re.match(
            r"(if|for|while|switch|else|do|try|catch|namespace|class|struct|enum|union)\b", stripped)
        if head and not line.startswith(" " * 4) and "=" not in stripped.split("(")[0]:
            depth, j = 0, i
            while j < len(lines):
                code = re.sub(r'"(\\.|[^"\\])*"|\'(\\.|[^\'\\])*\'|//.*', "", lines[j])
                depth += code.count("{") - code.count("}")
                if depth <= 0 and j > i or (depth == 0 and j == i and "}" in code):
                    break
                j += 1
            yield i + 1, j - i + 1
            i = j + 1
            continue
        i += 1


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "."
    breaches = []
    for rel, full in sources(root):
        with open(full, encoding="utf-8") as f:
            text = f.read()
        check_includes(rel, text, breaches)
        if rel.startswith("tools/"):
            continue
        for first, length in function_lengths(text):
            if length > MAX_LINES:
                breaches.append("%s:%d: a function of %d lines (at most %d)" % (rel, first, length, MAX_LINES))
    for b in breaches:
        print(b)
    print("layout: %d breaches" % len(breaches))
    return 1 if breaches else 0


if __name__ == "__main__":
    sys.exit(main())
