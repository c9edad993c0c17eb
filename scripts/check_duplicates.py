#!/usr/bin/env python3
"""Finds blocks of consecutive lines repeated within or across C++ files.

  scripts/check_duplicates.py [--dir harness] [--min 6] [--root DIR]   exit 1 listing each pair
  scripts/check_duplicates.py --count                                  just the number of pairs (exit 0)

Lines are compared after stripping whitespace (runs of blanks count as one) and end-of-line
comments; blank lines, lines of only brackets/punctuation ("}", "});"), comment lines and
#include lines are left out. A block is --min or more such lines in a row that appear again
elsewhere; each two places holding one block are a pair (a block in three places: three pairs),
printed as `a.cpp:10-25 and b.cpp:40-55: N lines`. Files: *.h *.cpp *.cu *.cuh under each --dir.
Python 3 standard library only.
"""
import argparse
import os
import re
import sys

SOURCE_EXTS = (".h", ".cpp", ".cu", ".cuh")
PUNCTUATION_ONLY = re.compile(r"^[{}()\[\];,]*$")
INCLUDE = re.compile(r"^#\s*include\b")


def strip_comments(line, in_block):
    """The line without comments (string literals kept whole); returns (code, still_in_block)."""
    out, i, n = [], 0, len(line)
    while i < n:
        if in_block:
            end = line.find("*/", i)
            if end < 0:
                return "".join(out), True
            i, in_block = end + 2, False
            out.append(" ")
            continue
        c = line[i]
        if c in "\"'":
            j = i + 1
            while j < n and line[j] != c:
                j += 2 if line[j] == "\\" else 1
            out.append(line[i:j + 1])
            i = j + 1
        elif line.startswith("//", i):
            break
        elif line.startswith("/*", i):
            in_block, i = True, i + 2
        else:
            out.append(c)
            i += 1
    return "".join(out), in_block


def significant_lines(path):
    """(normalized text, line number) of each line that counts."""
    result, in_block = [], False
    with open(path, encoding="utf-8", errors="replace") as f:
        for lineno, line in enumerate(f, 1):
            code, in_block = strip_comments(line.rstrip("\n"), in_block)
            code = " ".join(code.split())
            if not code or PUNCTUATION_ONLY.match(code) or INCLUDE.match(code):
                continue
            result.append((code, lineno))
    return result


def source_files(root, dirs):
    for d in dirs:
        for dirpath, dirnames, filenames in os.walk(os.path.join(root, d)):
            dirnames[:] = sorted(x for x in dirnames
                                 if not x.startswith(".") and x not in ("build", "third_party"))
            for name in sorted(filenames):
                if name.endswith(SOURCE_EXTS):
                    yield os.path.relpath(os.path.join(dirpath, name), root).replace(os.sep, "/")


def find_pairs(files, lines, k):
    """[(lines in block, file a, first, last, file b, first, last, first text)], sorted."""
    where = {}  # window of k lines -> [(file index, position)]
    for fi, entries in enumerate(lines):
        texts = [t for t, _ in entries]
        for i in range(len(texts) - k + 1):
            where.setdefault("\n".join(texts[i:i + k]), []).append((fi, i))
    diagonals = {}  # (file a, file b, offset) -> positions in a where a window repeats
    for places in where.values():
        for x in range(len(places)):
            for y in range(x + 1, len(places)):
                (fa, ia), (fb, ib) = places[x], places[y]
                if fa == fb and ib < ia + k:
                    continue  # overlapping windows of one run of repeated lines
                diagonals.setdefault((fa, fb, ib - ia), []).append(ia)
    found = []  # (file a, first, last, file b, first, last) as positions in the line lists
    for (fa, fb, off), starts in diagonals.items():
        starts.sort()
        run_start = prev = starts[0]
        for s in starts[1:] + [None]:
            if s is not None and s == prev + 1:
                prev = s
                continue
            a0, a1 = run_start, prev + k - 1  # inclusive
            if not (fa == fb and a0 + off <= a1):  # one run of repeated lines overlapping itself
                found.append((fa, a0, a1, fb, a0 + off, a1 + off))
            if s is not None:
                run_start = prev = s

    def inside(p, q):  # p's two ranges within q's (a run of N equal lines: keep only N/2 vs N/2)
        return p != q and p[0] == q[0] and p[3] == q[3] and q[1] <= p[1] and p[2] <= q[2] \
            and q[4] <= p[4] and p[5] <= q[5]

    pairs = []
    for p in found:
        if any(inside(p, q) for q in found):
            continue
        fa, a0, a1, fb, b0, b1 = p
        ea, eb = lines[fa], lines[fb]
        a = (files[fa], ea[a0][1], ea[a1][1])
        b = (files[fb], eb[b0][1], eb[b1][1])
        first, second = sorted([a, b])
        pairs.append((a1 - a0 + 1,) + first + second + (ea[a0][0],))
    pairs.sort(key=lambda p: (p[1], p[2], p[4], p[5]))
    return pairs


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", default=os.path.dirname(here), help="repository root (default: this repo)")
    ap.add_argument("--dir", action="append", help="folder under the root to scan, repeatable "
                    "(default: harness)")
    ap.add_argument("--min", type=int, default=6, help="shortest block, in counted lines (default 6)")
    ap.add_argument("--count", action="store_true", help="print only the number of duplicate pairs")
    args = ap.parse_args()
    if args.min < 1:
        ap.error("--min must be at least 1")
    root = os.path.abspath(args.root)
    dirs = args.dir or ["harness"]
    for d in dirs:
        if not os.path.isdir(os.path.join(root, d)):
            ap.error("no folder %s under %s" % (d, root))

    files = list(source_files(root, dirs))
    pairs = find_pairs(files, [significant_lines(os.path.join(root, f)) for f in files], args.min)
    if args.count:
        print(len(pairs))
        return 0
    for n, fa, a0, a1, fb, b0, b1, text in pairs:
        print("%s:%d-%d and %s:%d-%d: %d lines" % (fa, a0, a1, fb, b0, b1, n))
        print("    %s" % (text if len(text) <= 96 else text[:93] + "..."))
    what = "%d files under %s, blocks of %d+ lines" % (len(files), " ".join(dirs), args.min)
    if pairs:
        print("check_duplicates: FAILED: %d duplicate pair(s), %d repeated lines in all (%s)"
              % (len(pairs), sum(p[0] for p in pairs), what))
        return 1
    print("check_duplicates: OK: no duplicate block (%s)" % what)
    return 0


if __name__ == "__main__":
    sys.exit(main())
