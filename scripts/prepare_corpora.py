#!/usr/bin/env python3
"""Builds the campaign's corpora from installed Debian and PyPI packages: one file per document.

    scripts/prepare_corpora.py [--out corpora]      # scripts/setup.sh --corpora installs and runs it

  OUT/text/  long English documents:
             bible/     the King James Bible (Debian bible-kjv), one document per book (66):
                        the only book-length text Debian ships
             pydoc/     the Python 3.11 documentation's reStructuredText sources (python3.11-doc)
             perldoc/   Perl's manual pages in POD (perl-doc)
             debref/    the Debian Reference, one document per chapter, HTML to text
                        (debian-reference-en)
             gnustd/    the GNU Coding Standards and Maintainer Information (gnu-standards)
  OUT/code/  source code:
             python/    the CPython 3.11 standard library (Debian python3.11, /usr/lib/python3.11)
             torch/     the Python sources of the pinned torch wheel (PyPI)
  OUT/MANIFEST.json     byte and document counts per part, package versions, the book-length share

The harness reads a folder as data source "dir" (harness/io/data.h): documents in sorted path
order, every 10th held out, so the split is by document. Nothing is downloaded; a missing package
is an error naming it. The output is the same on every machine with the same package versions.
"""
import argparse
import gzip
import html.parser
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

TEXT_PACKAGES = ["bible-kjv", "python3.11-doc", "perl-doc", "debian-reference-en", "gnu-standards"]
CODE_PACKAGES = ["python3.11"]


def die(msg):
    print(f"prepare_corpora: {msg}", file=sys.stderr)
    sys.exit(1)


def version(package):
    r = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package], capture_output=True,
                       text=True)
    if r.returncode != 0:
        die(f"the Debian package '{package}' is not installed (scripts/setup.sh --corpora "
            f"installs it)")
    return r.stdout


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    data = text.encode("utf-8") if isinstance(text, str) else text
    path.write_bytes(data)
    return len(data)


# --- text

BOOK = re.compile(r"^([1-3]?[A-Za-z]+)(\d+):(\d+) (.*)$")


def bible(out):
    """The KJV, one document per book; verse references dropped, a blank line between chapters."""
    text = subprocess.run(["bible", "-f", "Gen1:1-Rev22:21"], capture_output=True, text=True,
                          check=True).stdout
    books, order = {}, []
    last_chapter = {}
    for line in text.splitlines():
        m = BOOK.match(line)
        if not m:
            continue  # the program's blank lines
        book, chapter, verse = m.group(1), int(m.group(2)), m.group(4)
        if book not in books:
            books[book] = []
            order.append(book)
        if last_chapter.get(book) not in (None, chapter):
            books[book].append("")
        last_chapter[book] = chapter
        books[book].append(verse)
    if len(order) != 66:
        die(f"the KJV printed {len(order)} books, expected 66")
    return {f"{i + 1:02d}_{b}.txt": "\n".join(books[b]) + "\n" for i, b in enumerate(order)}


def pydoc(out):
    root = Path("/usr/share/doc/python3.11/html/_sources")
    if not root.is_dir():
        die(f"{root} is missing (Debian python3.11-doc)")
    return {str(p.relative_to(root)).replace("/", "__"): p.read_bytes()
            for p in sorted(root.rglob("*.rst.txt"))}


def perldoc(out):
    roots = sorted(Path("/usr/share/perl").glob("5.*/pod"))
    if not roots:
        die("/usr/share/perl/5.*/pod is missing (Debian perl-doc)")
    return {p.name: p.read_bytes() for p in sorted(roots[-1].glob("*.pod"))}


class _Text(html.parser.HTMLParser):
    """HTML to text: the text nodes, a newline after each block element; scripts dropped."""

    BLOCKS = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "dt", "dd",
              "table", "title"}

    def __init__(self):
        super().__init__()
        self.parts, self.skip = [], 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self.skip += 1

    def handle_endtag(self, tag):
        if tag in ("script", "style"):
            self.skip -= 1
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data):
        if not self.skip:
            self.parts.append(data)

    def text(self):
        t = "".join(self.parts)
        t = re.sub(r"[ \t]+\n", "\n", t)
        return re.sub(r"\n{3,}", "\n\n", t).strip() + "\n"


def debref(out):
    root = Path("/usr/share/debian-reference")
    files = sorted(root.glob("*.en.html"))
    if not files:
        die(f"{root}/*.en.html is missing (Debian debian-reference-en)")
    docs = {}
    for f in files:
        p = _Text()
        p.feed(f.read_text(encoding="utf-8", errors="replace"))
        docs[f.name.replace(".html", ".txt")] = p.text()
    return docs


def gnustd(out):
    docs = {}
    for name in ("standards", "maintain"):
        f = Path(f"/usr/share/info/{name}.info.gz")
        if not f.exists():
            die(f"{f} is missing (Debian gnu-standards)")
        docs[f"{name}.txt"] = gzip.decompress(f.read_bytes())
    return docs


# --- code

def python_stdlib(out):
    root = Path("/usr/lib/python3.11")
    if not root.is_dir():
        die(f"{root} is missing (Debian python3.11)")
    return {str(p.relative_to(root)).replace("/", "__"): p.read_bytes()
            for p in sorted(root.rglob("*.py")) if "site-packages" not in p.parts
            and "dist-packages" not in p.parts}


def torch_sources(out):
    try:
        import torch
    except ImportError:
        die("the torch wheel is not installed (scripts/setup.sh installs it)")
    root = Path(torch.__file__).parent
    return {str(p.relative_to(root)).replace("/", "__"): p.read_bytes()
            for p in sorted(root.rglob("*.py"))}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="corpora", help="output folder (default: corpora)")
    args = ap.parse_args()
    out = Path(args.out)
    versions = {p: version(p) for p in TEXT_PACKAGES + CODE_PACKAGES}
    import torch  # noqa: E402  (its version goes in the manifest)
    versions["torch (PyPI)"] = torch.__version__

    parts = {"text": {"bible": bible, "pydoc": pydoc, "perldoc": perldoc, "debref": debref,
                      "gnustd": gnustd},
             "code": {"python": python_stdlib, "torch": torch_sources}}
    manifest = {"versions": versions, "corpora": {}}
    if out.exists():
        shutil.rmtree(out)
    for corpus, builders in parts.items():
        total_bytes, total_docs, rows = 0, 0, {}
        for part, build in builders.items():
            docs = build(out)
            n = sum(write(out / corpus / part / name, text) for name, text in docs.items())
            rows[part] = {"documents": len(docs), "bytes": n}
            total_bytes += n
            total_docs += len(docs)
            print(f"{corpus}/{part}: {len(docs)} documents, {n / 1e6:.2f} MB")
        manifest["corpora"][corpus] = {"documents": total_docs, "bytes": total_bytes, "parts": rows}
        print(f"{corpus}: {total_docs} documents, {total_bytes / 1e6:.2f} MB")
    text = manifest["corpora"]["text"]
    text["book_length_bytes"] = text["parts"]["bible"]["bytes"]
    text["book_length_share"] = text["book_length_bytes"] / text["bytes"]
    (out / "MANIFEST.json").write_text(json.dumps(manifest, indent=2) + "\n")
    print(f"book-length share of the text: {100 * text['book_length_share']:.1f}%")


if __name__ == "__main__":
    main()
