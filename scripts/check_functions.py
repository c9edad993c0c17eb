#!/usr/bin/env python3
"""Lists C++ functions longer than a limit (lizard: pip install lizard==1.24.3).

  scripts/check_functions.py [--max 60] [--root DIR] [FOLDER...]   exit 1 listing the long ones
  scripts/check_functions.py --report [--top 10]                    the longest, exempt or not

A function's length is its line span, end - start + 1 (blank and comment lines count).
Folders: kernels models baselines harness (default); files *.h *.cpp *.cu *.cuh.
A function is exempt when its first line, or one of the 3 lines above it, holds a comment
`// one piece: <reason>` (or /* one piece: <reason> */): for a function that reads best whole.
Offenders print as `path:line name (N lines)`.
"""
import argparse
import os
import re
import sys

try:
    import lizard
except ImportError:
    sys.exit("check_functions: needs the lizard package: python3 -m pip install lizard==1.24.3 "
             "(scripts/setup.sh installs it)")

SOURCE_EXTS = (".h", ".cpp", ".cu", ".cuh")
DEFAULT_FOLDERS = ("kernels", "models", "baselines", "harness")
EXEMPT_RE = re.compile(r"(//|/\*|^\s*\*).*\bone piece:\s*\S")


def source_files(root, folders):
    for folder in folders:
        top = os.path.join(root, folder)
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames[:] = sorted(d for d in dirnames
                                 if not d.startswith(".") and d not in ("build", "third_party"))
            for name in sorted(filenames):
                if name.endswith(SOURCE_EXTS):
                    yield os.path.relpath(os.path.join(dirpath, name), root).replace(os.sep, "/")


def functions(root, rel):
    """(start, end, name, exempt) of each function lizard finds in the file."""
    with open(os.path.join(root, rel), encoding="utf-8", errors="replace") as f:
        code = f.read()
    lines = code.split("\n")
    # .cu/.cuh are not lizard extensions: it reads any unknown one as C/C++, which is what we want.
    info = lizard.analyze_file.analyze_source_code(rel, code)
    for fn in info.function_list:
        above = lines[max(0, fn.start_line - 4):fn.start_line]  # 3 lines above and the first
        exempt = any(EXEMPT_RE.search(line) for line in above)
        yield fn.start_line, fn.end_line, fn.name, exempt


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("folders", nargs="*", default=list(DEFAULT_FOLDERS),
                    help="folders under the root (default: %s)" % " ".join(DEFAULT_FOLDERS))
    ap.add_argument("--root", default=os.path.dirname(here), help="repository root (default: this repo)")
    ap.add_argument("--max", type=int, default=60, help="longest allowed line span (default 60)")
    ap.add_argument("--report", action="store_true",
                    help="print the longest functions, exempt or not, and exit 0")
    ap.add_argument("--top", type=int, default=10, help="how many --report prints (default 10)")
    args = ap.parse_args()
    root = os.path.abspath(args.root)

    found = []  # (lines, path, start, name, exempt)
    for rel in source_files(root, [f for f in args.folders if os.path.isdir(os.path.join(root, f))]):
        for start, end, name, exempt in functions(root, rel):
            found.append((end - start + 1, rel, start, name, exempt))
    long_ones = sorted((f for f in found if f[0] > args.max), key=lambda f: (f[1], f[2]))
    offenders = [f for f in long_ones if not f[4]]
    exempt = len(long_ones) - len(offenders)

    if args.report:
        print("%6s  %s" % ("lines", "function"))
        for n, rel, start, name, ex in sorted(found, key=lambda f: (-f[0], f[1], f[2]))[:args.top]:
            print("%6d  %s:%d %s%s" % (n, rel, start, name, "  (one piece)" if ex else ""))
        print("check_functions: %d functions, %d over %d lines (%d exempt as one piece)"
              % (len(found), len(long_ones), args.max, exempt))
        return 0
    for n, rel, start, name, _ in offenders:
        print("%s:%d %s (%d lines)" % (rel, start, name, n))
    note = ", %d more exempt as one piece" % exempt if exempt else ""
    if offenders:
        print("check_functions: FAILED: %d of %d functions over %d lines%s"
              % (len(offenders), len(found), args.max, note))
        return 1
    print("check_functions: OK: %d functions, none over %d lines%s" % (len(found), args.max, note))
    return 0


if __name__ == "__main__":
    sys.exit(main())
