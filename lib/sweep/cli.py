"""``python -m lib.sweep``: the command line of the sweep (`make all`)."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence

from lib.profiles import PROFILES
from lib.sweep.plan import plan
from lib.sweep.schedule import sweep

# ----------------------------------------------------------------------------- CLI


def _split(values: Sequence[str] | None) -> list[str] | None:
    if not values:
        return None
    return [v for x in values for v in x.replace(",", " ").split()]


def main(argv: Sequence[str] | None = None) -> int:
    """The CLI: `python -m lib.sweep --profile quick [--only 03,04] [--properties ...] [--jobs N] ...`."""
    ap = argparse.ArgumentParser(prog="python -m lib.sweep",
                                 description="The sweep behind `make all`: every notebook run of a profile, "
                                             "in order, in parallel.",
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="quick", choices=list(PROFILES), help="run scale (lib/profiles.py)")
    ap.add_argument("--only", nargs="+", metavar="STAGE", help="stages to run: 03,04 (or cgcnn megnet...)")
    ap.add_argument("--properties", nargs="+", metavar="P", help="properties of 03/04/05/07 (default: all 7)")
    ap.add_argument("--seeds", nargs="+", metavar="S", help="override the profile's seeds")
    ap.add_argument("--jobs", "-j", type=int, help="parallel runs on this machine (default: the cores)")
    ap.add_argument("--threads", type=int, help="threads per run (default: cores // jobs; 1 on Dask)")
    ap.add_argument("--dask-scheduler", metavar="ADDRESS",
                    help="run every run as a task on this Dask scheduler (tcp://host:8786)")
    ap.add_argument("--root", help="project root on the workers, if not where each worker's lib is installed")
    ap.add_argument("--timeout", type=float, help="seconds per run before it is killed (default: none)")
    ap.add_argument("--force", action="store_true", help="run even runs that are done")
    ap.add_argument("--dry-run", "-n", action="store_true", help="list what would run, run nothing")
    ap.add_argument("--no-progress", action="store_true", help="no progress bar, one line per run")
    a = ap.parse_args(argv)

    def _terminate(signum, frame):  # `kill` (or a batch system's time limit) stops the runs, as Ctrl-C does
        raise KeyboardInterrupt(f"signal {signum}")

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminate)
    try:
        runs = plan(a.profile, only=_split(a.only), properties=_split(a.properties),
                    seeds=[int(s) for s in _split(a.seeds)] if a.seeds else None)
    except ValueError as err:
        ap.error(str(err))
    if a.dry_run:
        print(f"{len(runs)} runs in the {a.profile} profile:")
    try:
        summary = sweep(runs, jobs=a.jobs, threads=a.threads, scheduler=a.dask_scheduler, root=a.root,
                        force=a.force, dry_run=a.dry_run, timeout=a.timeout, profile=a.profile,
                        progress=not a.no_progress)
    except ConnectionError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted: the runs in progress were stopped; finished runs keep their records, and the "
              "same command resumes from there", file=sys.stderr)
        return 130
    if a.dry_run:
        for r in summary.results:
            print(f"  {r.status:8s} {r.name}" + (f"  ({r.message})" if r.message else ""))
    print(summary.format())
    return summary.exit_code
