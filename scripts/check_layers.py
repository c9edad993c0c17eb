#!/usr/bin/env python3
"""Checks that every project include goes to the same or a lower layer (cmake/layers.txt).

  scripts/check_layers.py [--root DIR] [--layers FILE]

Scans *.h *.cpp *.cu *.cuh under the root (not build*/, third_party/, hidden folders) and reports
  - every upward include: `path:line: includes "x" (layer N name) from layer M name`   (error)
  - files in no layer: a warning, an error for files under a `require` glob (harness/**)
  - cycles between folders (a/ includes b/ and b/ includes a/, directly or not)          (error);
    a folder whose files sit in two layers (models/ and its *_plugin.cpp) is one node per layer,
    so that models/x_plugin.cpp -> harness/api -> models/ is no cycle: the layers order them
Exit 0 with a one-line summary when clean, 1 on an error, 2 when cmake/layers.txt is wrong.
Python 3 standard library only.
"""
import argparse
import math
import os
import posixpath
import re
import sys

SOURCE_EXTS = (".h", ".cpp", ".cu", ".cuh")
INCLUDE_RE = re.compile(r'^\s*#\s*include\s*"([^"]+)"')


def die(msg):
    """A wrong layer table or argument: exit 2, unlike a finding (exit 1)."""
    print("check_layers: " + msg, file=sys.stderr)
    sys.exit(2)


def skip_dir(name):
    return (name.startswith(".") or name in ("build", "third_party", "__pycache__")
            or name.startswith(("build-", "build_", "cmake-build")))


def glob_to_regex(glob):
    """'*' matches inside one path component, '**' any number of components."""
    parts = glob.strip("/").split("/")
    out = ""
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if part == "**":
            out += ".*" if last else "(?:[^/]+/)*"
            continue
        for c in part:
            out += "[^/]*" if c == "*" else "[^/]" if c == "?" else re.escape(c)
        if not last:
            out += "/"
    return re.compile(out)


class Rule:
    def __init__(self, rank, name, globs, lineno):
        self.rank = rank  # int, or math.inf for "top"
        self.name = name
        self.lineno = lineno
        self.include = [glob_to_regex(g) for g in globs if not g.startswith("!")]
        self.exclude = [glob_to_regex(g[1:]) for g in globs if g.startswith("!")]
        self.globs = globs

    def matches(self, path):
        return (any(r.fullmatch(path) for r in self.include)
                and not any(r.fullmatch(path) for r in self.exclude))

    def label(self):
        return "layer %s %s" % ("top" if self.rank == math.inf else self.rank, self.name)


class Table:
    def __init__(self, path):
        self.rules, self.required, self.folders = [], [], set()
        self._cache = {}
        if not os.path.isfile(path):
            die("no layer table at %s (use --layers)" % path)
        with open(path, encoding="utf-8") as f:
            for lineno, raw in enumerate(f, 1):
                fields = raw.split("#", 1)[0].split()
                if not fields:
                    continue
                if fields[0] == "require":
                    self.required += [glob_to_regex(g) for g in fields[1:]]
                    continue
                if len(fields) < 3:
                    die("%s:%d: expected LAYER NAME GLOB..., got %r" % (path, lineno, raw.strip()))
                if fields[0] == "top":
                    rank = math.inf
                elif fields[0].isdigit():
                    rank = int(fields[0])
                else:
                    die("%s:%d: layer must be a number or 'top', got %r" % (path, lineno, fields[0]))
                self.rules.append(Rule(rank, fields[1], fields[2:], lineno))
                for g in fields[2:]:
                    first = g.lstrip("!").split("/")[0]
                    if not any(c in first for c in "*?["):
                        self.folders.add(first)
        if not self.rules:
            die("%s: no layer rules" % path)
        self.path = path

    def rule_for(self, rel):
        """The one rule that takes rel, or None. Two rules taking one file is an error (exit 2)."""
        if rel not in self._cache:
            hits = [r for r in self.rules if r.matches(rel)]
            if len(hits) > 1:
                die("%s: %s is taken by several rules (lines %s); make the globs exclusive"
                    % (self.path, rel, ", ".join(str(r.lineno) for r in hits)))
            self._cache[rel] = hits[0] if hits else None
        return self._cache[rel]

    def is_required(self, rel):
        return any(r.fullmatch(rel) for r in self.required)


def strip_block_comments(line, in_block):
    """Removes /* ... */ spans from line; returns (code, still_in_block)."""
    out, i = "", 0
    while i < len(line):
        if in_block:
            end = line.find("*/", i)
            if end < 0:
                return out, True
            i, in_block = end + 2, False
        else:
            start = line.find("/*", i)
            slash = line.find("//", i)
            if start < 0 or (0 <= slash < start):
                return out + line[i:], False
            out += line[i:start]
            i, in_block = start + 2, True
    return out, in_block


def quoted_includes(abspath):
    """(line number, path) of each #include "path" outside comments."""
    result, in_block = [], False
    with open(abspath, encoding="utf-8", errors="replace") as f:
        for lineno, line in enumerate(f, 1):
            code, in_block = strip_block_comments(line, in_block)
            m = INCLUDE_RE.match(code)
            if m:
                result.append((lineno, m.group(1)))
    return result


def resolve(root, table, src, inc):
    """Repository path of a quoted include, or None for a third-party one.

    Like the compiler: first next to the including file, then from the root when the first
    component is a project folder."""
    here = posixpath.normpath(posixpath.join(posixpath.dirname(src), inc))
    if not here.startswith("../") and here != ".." and os.path.isfile(os.path.join(root, here)):
        return here
    if inc.split("/")[0] in table.folders:
        return posixpath.normpath(inc)
    return None


def source_files(root):
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not skip_dir(d))
        for name in sorted(filenames):
            if name.endswith(SOURCE_EXTS):
                yield posixpath.relpath(os.path.join(dirpath, name), root).replace(os.sep, "/")


def folder_of(path):
    return posixpath.dirname(path) or "."


def node_names(table, paths):
    """Cycle-graph node of each path: its folder, or "folder (layer name)" for a folder whose
    files belong to more than one layer."""
    rules_in = {}
    for p in paths:
        rules_in.setdefault(folder_of(p), set()).add(table.rule_for(p))
    names = {}
    for p in paths:
        folder, rule = folder_of(p), table.rule_for(p)
        split = len(rules_in[folder]) > 1
        names[p] = "%s (%s)" % (folder, rule.name if rule else "no layer") if split else folder
    return names


def find_cycles(edges):
    """Strongly connected components (Tarjan) with more than one folder, each as one cycle."""
    graph = {}
    for (a, b) in edges:
        graph.setdefault(a, set()).add(b)
        graph.setdefault(b, set())
    index, low, stack, on_stack, sccs = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                sccs.append(set(comp))

    sys.setrecursionlimit(max(1000, 4 * len(graph) + 100))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    cycles = []
    for comp in sccs:  # shortest way from the smallest folder back to itself, inside the component
        start = min(comp)
        prev, frontier, found = {start: None}, [start], None
        while frontier and found is None:
            nxt = []
            for v in frontier:
                for w in sorted(graph[v] & comp):
                    if w == start:
                        found = v
                        break
                    if w not in prev:
                        prev[w] = v
                        nxt.append(w)
                if found is not None:
                    break
            frontier = nxt
        path = [start]
        v = found
        while v is not None and v != start:
            path.append(v)
            v = prev[v]
        path = [start] + list(reversed(path[1:])) + [start]
        cycles.append(path)
    return sorted(cycles)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", default=os.path.dirname(here), help="repository root (default: this repo)")
    ap.add_argument("--layers", help="layer table (default: ROOT/cmake/layers.txt)")
    args = ap.parse_args()
    root = os.path.abspath(args.root)
    if not os.path.isdir(root):
        die("no folder %s" % root)
    table = Table(args.layers or os.path.join(root, "cmake", "layers.txt"))

    upward, unlayered_err, unlayered_warn = [], [], []
    links = []  # (src, target, "path:line includes x")
    files = includes = 0
    for src in source_files(root):
        files += 1
        rule = table.rule_for(src)
        if rule is None:
            (unlayered_err if table.is_required(src) else unlayered_warn).append(src)
        for lineno, inc in quoted_includes(os.path.join(root, src)):
            target = resolve(root, table, src, inc)
            if target is None:
                continue
            includes += 1
            links.append((src, target, '%s:%d includes "%s"' % (src, lineno, inc)))
            to = table.rule_for(target)
            if rule is not None and to is not None and to.rank > rule.rank:
                upward.append('%s:%d: includes "%s" (%s) from %s' % (src, lineno, inc, to.label(), rule.label()))

    node = node_names(table, {p for link in links for p in link[:2]})
    edges = {}  # (node, node) -> the first include that links them
    for src, target, where in links:
        if node[src] != node[target]:
            edges.setdefault((node[src], node[target]), where)
    cycles = find_cycles(edges)
    for line in upward:
        print(line)
    for src in unlayered_err:
        print("%s: error: in no layer (every file here must match a rule in %s)" % (src, table.path))
    for src in unlayered_warn:
        print("%s: warning: in no layer" % src)
    for cyc in cycles:
        print("folder cycle: " + " -> ".join(cyc))
        for a, b in zip(cyc, cyc[1:]):
            print("  %s -> %s: %s" % (a, b, edges[(a, b)]))

    layers = len({r.rank for r in table.rules})
    warn = "; %d file(s) in no layer (warning)" % len(unlayered_warn) if unlayered_warn else ""
    if upward or unlayered_err or cycles:
        print("check_layers: FAILED: %d upward include(s), %d unlayered file(s) under a required "
              "folder, %d folder cycle(s)%s" % (len(upward), len(unlayered_err), len(cycles), warn))
        return 1
    print("check_layers: OK: %d files, %d project includes, %d layers, no upward include, "
          "no folder cycle%s" % (files, includes, layers, warn))
    return 0


if __name__ == "__main__":
    sys.exit(main())
