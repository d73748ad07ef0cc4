"""Run the named benchmarks, or all of them: `python -m bench [graphs cgcnn megnet soap ...]`."""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    here = Path(__file__).parent
    known = sorted(m.name for m in pkgutil.iter_modules([str(here)]) if not m.name.startswith("_"))
    names = [n for a in argv for n in a.replace(",", " ").split()] or known
    unknown = [n for n in names if n not in known]
    if unknown:
        print(f"unknown benchmark(s) {unknown}; known: {known}", file=sys.stderr)
        return 2
    for name in names:
        print(f"# bench {name}", file=sys.stderr, flush=True)
        importlib.import_module(f"bench.{name}").main()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
