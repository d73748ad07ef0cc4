"""Run the named benchmarks, or all of them: `python -m bench [graphs cgcnn megnet soap ...]`; one benchmark with
its own options: `python -m bench epochs --devices cpu`."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    here = Path(__file__).parent
    known = sorted(m.name for m in pkgutil.iter_modules([str(here)]) if not m.name.startswith("_"))
    if len(argv) > 1 and argv[0] in known and argv[1].startswith("-"):  # one bench with its own options
        bench_main = importlib.import_module(f"bench.{argv[0]}").main
        if not inspect.signature(bench_main).parameters:
            print(f"bench {argv[0]} takes no options", file=sys.stderr)
            return 2
        print(f"# bench {argv[0]}", file=sys.stderr, flush=True)
        bench_main(argv[1:])
        return 0
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
