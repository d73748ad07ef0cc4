"""Benchmark scripts: `python -m bench [NAME ...]` (or `make bench BENCH=NAME`).

Each module ``bench/<name>.py`` defines ``main() -> None`` and reports every figure with :func:`emit`,
which prints one JSON object per line and appends it to results/bench.jsonl, so figures from different
machines and commits accumulate as data.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import time

from lib.paths import RESULTS


def _commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def emit(bench: str, metric: str, value: float, unit: str, **extra) -> dict:
    """Print one figure as a JSON line and append it to results/bench.jsonl."""
    rec = {"bench": bench, "metric": metric, "value": round(float(value), 4), "unit": unit, **extra}
    rec.setdefault("cores", os.cpu_count())
    rec.update(host=platform.node(), commit=_commit(), time=time.strftime("%Y-%m-%dT%H:%M:%S"))
    print(json.dumps(rec), flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    with open(RESULTS / "bench.jsonl", "a") as f:
        f.write(json.dumps(rec) + "\n")
    return rec


def peak_rss_gb() -> float:
    """Peak resident memory of this process and its finished children, in GB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    scale = 1e-9 if sys.platform == "darwin" else 1e-6  # bytes on macOS, KiB on Linux
    return max(own, kids) * scale
