"""The README and docs/: every relative link leads somewhere, the README stays short, every page is reachable.

The README is what a newcomer reads (issue 27: at most 250 lines); each chapter's and topic's detail lives in
one page of docs/, linked from the README.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
PAGES = [README, *sorted(DOCS.glob("*.md"))]
MAX_README_LINES = 250

_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


def _prose(text: str) -> str:
    """The text without fenced code blocks and code spans (a `[x](y)` there is code, not a link)."""
    text = re.sub(r"^(```|~~~).*?^\1[^\n]*$", "", text, flags=re.S | re.M)
    return re.sub(r"(`+)(?:(?!\1).)+?\1", "", text)


def links(page: Path) -> list[str]:
    """The targets of the Markdown links and images of a page."""
    return _LINK.findall(_prose(page.read_text(encoding="utf-8")))


def slug(heading: str) -> str:
    """A heading's anchor as GitHub and mkdocs' toc both make it for plain headings:
    "The book (`make book`)" -> "the-book-make-book"."""
    text = unicodedata.normalize("NFKD", heading).replace("`", "")
    text = re.sub(r"[^\w\s-]", "", text).strip().lower()
    return re.sub(r"\s+", "-", text)


def anchors(page: Path) -> set[str]:
    """Every heading anchor of a page (GitHub numbers repeated headings: x, x-1, ...)."""
    seen: dict[str, int] = {}
    out = set()
    for line in _prose(page.read_text(encoding="utf-8")).splitlines():
        m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if m:
            s = slug(m[1])
            out.add(s if s not in seen else f"{s}-{seen[s]}")
            seen[s] = seen.get(s, 0) + 1
    return out


def test_slug_and_link_parsing():
    assert slug("The book (`make book`)") == "the-book-make-book"
    assert slug("What is validated, the limits, and how to raise them") == (
        "what-is-validated-the-limits-and-how-to-raise-them")
    assert slug("id_prop.csv and broken files") == "id_propcsv-and-broken-files"
    page = "see [a](docs/a.md#x) and ![f](f.png \"t\"), not `[b](c.md)` nor\n```\n[d](e.md)\n```\n"
    assert _LINK.findall(_prose(page)) == ["docs/a.md#x", "f.png"]


def test_docs_exist():
    names = {p.stem for p in DOCS.glob("*.md")}
    for topic in ("data", "validation", "graphs", "models", "predictors", "sweep", "benchmark", "bench",
                  "xgnn", "cathodes"):
        assert topic in names, f"docs/{topic}.md is missing"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page: Path):
    bad = []
    for target in links(page):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto:: not checked (no network)
            continue
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            bad.append(f"{target}: no {dest.relative_to(ROOT) if dest.is_relative_to(ROOT) else dest}")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            bad.append(f"{target}: no heading #{anchor} in {dest.relative_to(ROOT)}")
    assert not bad, f"{page.relative_to(ROOT)}: broken links:\n" + "\n".join(bad)


def test_readme_is_short():
    n = len(README.read_text(encoding="utf-8").splitlines())
    assert n <= MAX_README_LINES, (
        f"README.md has {n} lines (at most {MAX_README_LINES}): move the detail to a page of docs/")


def test_every_page_is_linked_from_the_readme():
    linked = {(README.parent / t.partition("#")[0]).resolve() for t in links(README)}
    orphans = [p.name for p in DOCS.glob("*.md") if p.resolve() not in linked]
    assert not orphans, f"docs pages the README does not link: {orphans}"


def test_docs_link_back_to_the_readme():
    for page in DOCS.glob("*.md"):
        assert "../README.md" in links(page), f"docs/{page.name} has no link back to the README"
