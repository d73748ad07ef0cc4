"""`python -m book --profile smoke`: build the book (see book/__init__.py); `make book PROFILE=smoke`."""

from __future__ import annotations

import argparse
from pathlib import Path

from book import EXECUTED, MATHJAX_DIR, OUT, ROOT, build


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m book",
        description="Build a static HTML book of README.md, docs/ and one executed copy per chapter of a "
                    "profile (formation energy, SOAP-SVR, the group labelling, the lowest seed where there "
                    "are several).")
    ap.add_argument("--profile", default="smoke", help="whose executed chapters (default: smoke)")
    ap.add_argument("--executed", type=Path, default=EXECUTED,
                    help=f"the executed notebooks (default: {EXECUTED.relative_to(ROOT)})")
    ap.add_argument("--out", type=Path, default=OUT,
                    help="staged sources go to OUT/src, the site to OUT/site "
                         f"(default: {OUT.relative_to(ROOT)})")
    args = ap.parse_args(argv)
    site, chapters = build(args.profile, args.out, executed=args.executed)
    for ch in chapters:
        shown = ch.executed.name if ch.executed else "not run: a page that says what to run"
        print(f"{ch.stem:14s} {shown}")
    local = (site / MATHJAX_DIR / "MathJax.js").is_file()
    print(f"formulas: MathJax in {(site / MATHJAX_DIR).relative_to(site.parent)}/ (offline)" if local else
          "formulas: MathJax from its CDN when read (jupyter-server-mathjax not installed)")
    print(f"book: {site / 'index.html'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
