"""Check that every ``docs/methods.md#<id>`` citation in the repository has an anchor.

Code, tests, task files and the README cite sections of the methods document as
``docs/methods.md#<id>``; the document marks each section with an explicit HTML
anchor ``<a id="<id>"></a>`` before its heading.  This script lists every cited id
that has no anchor (``file:line: id``) and exits 1, so a renamed or deleted
section cannot leave dangling citations.  It also checks the document's own
``](#id)`` links and refuses duplicate anchors.

Usage::

    python docs/check_citations.py            # the repository this file lives in
    python docs/check_citations.py --root DIR

Exit status: 0 when every citation resolves, 1 when some do not, 2 when the
methods document is missing (a usage error).  Standard library only.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

METHODS = Path("docs") / "methods.md"
SUFFIXES = frozenset({".py", ".md", ".yaml", ".yml"})
#: Folders never searched: version control, environments, build and cache output.
SKIP_DIRS = frozenset({".git", ".hg", ".venv", "venv", "node_modules", "build", "dist",
                       "__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache",
                       ".hypothesis"})
ID = r"[A-Za-z0-9][A-Za-z0-9._-]*"
#: ``docs/methods.md#<id>``, or ``methods.md#<id>`` as written inside ``docs/``.
CITATION = re.compile(rf"(?<![\w-])(?:docs/)?methods\.md#({ID})")
ANCHOR = re.compile(rf"""<a\s+(?:id|name)\s*=\s*["']({ID})["']""")
LOCAL_LINK = re.compile(rf"\]\(#({ID})\)")
#: Inline code spans, where the document may show an anchor without defining it.
CODE_SPAN = re.compile(r"`[^`\n]*`")
SUMMARY = "Check that every docs/methods.md#<id> citation in the repository has an anchor."


@dataclass(frozen=True)
class Citation:
    """One cited id and where it was found."""

    path: Path
    line: int
    ident: str

    def describe(self, root: Path) -> str:
        return f"{self.path.relative_to(root)}:{self.line}: {self.ident}"


def clean(ident: str) -> str:
    """Drop sentence punctuation that the id pattern swallows (``#b.2.`` -> ``b.2``)."""
    return ident.rstrip(".-")


def anchors(text: str) -> tuple[set[str], list[str]]:
    """Anchor ids of the methods document and the ids defined more than once."""
    seen: set[str] = set()
    duplicates: list[str] = []
    for match in ANCHOR.finditer(CODE_SPAN.sub("", text)):
        ident = match.group(1)
        if ident in seen:
            duplicates.append(ident)
        seen.add(ident)
    return seen, duplicates


def source_files(root: Path) -> Iterator[Path]:
    """Repository files that may cite the methods document, in a stable order."""
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if any(part in SKIP_DIRS or part.endswith(".egg-info") for part in rel.parts[:-1]):
            continue
        if path.suffix in SUFFIXES and path.is_file():
            yield path


def citations(path: Path) -> Iterator[Citation]:
    """Every ``methods.md#<id>`` citation in one file (undecodable bytes are ignored)."""
    text = path.read_text(encoding="utf-8", errors="replace")
    for number, line in enumerate(text.splitlines(), start=1):
        for match in CITATION.finditer(line):
            yield Citation(path, number, clean(match.group(1)))


def local_links(path: Path) -> Iterator[Citation]:
    """The methods document's own ``](#id)`` links."""
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        for match in LOCAL_LINK.finditer(line):
            yield Citation(path, number, match.group(1))


def check(root: Path) -> tuple[list[Citation], list[str], int]:
    """(unresolved citations, duplicate anchors, number of citations checked)."""
    methods = root / METHODS
    known, duplicates = anchors(methods.read_text(encoding="utf-8"))
    found = [c for path in source_files(root) for c in citations(path)]
    found += list(local_links(methods))
    missing = [c for c in found if c.ident not in known]
    return missing, duplicates, len(found)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=SUMMARY)
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent,
                        help="repository root (default: the one this script is in)")
    args = parser.parse_args(argv)
    root = args.root.resolve()
    if not (root / METHODS).is_file():
        print(f"error: {root / METHODS} not found; pass --root with the repository root",
              file=sys.stderr)
        return 2
    missing, duplicates, total = check(root)
    for ident in duplicates:
        print(f"{METHODS}: anchor {ident!r} is defined more than once")
    for citation in missing:
        print(f"{citation.describe(root)} (no anchor <a id=\"{citation.ident}\"> in {METHODS})")
    if missing or duplicates:
        print(f"{len(missing)} of {total} citations unresolved, {len(duplicates)} duplicate "
              "anchors", file=sys.stderr)
        return 1
    print(f"{total} citations of {METHODS}, all resolved")
    return 0


if __name__ == "__main__":
    sys.exit(main())
