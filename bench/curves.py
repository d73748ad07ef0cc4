"""Beyond the average voltage (issue 42): voltage curves against measured plateaus, and NEB migration barriers
against published DFT ones, with the seconds each takes on these cores.

    python -m bench curves [--potential sevennet] [--relax] [--materials LiFePO4 ...] [--neb-materials ...]
                           [--no-neb] [--no-curves] [--pairs-only]

A material whose structure MP's electrode pairs lack (or hold only as another polymorph) is looked up
among every structure source (:func:`lib.cathodes.stability.structure_sources`, loaded once, only when
needed) by its MP id, else by formula and space group (:func:`lib.cathodes.curves.find_structure`); the
lines say which id and source were used (``pair`` / ``structure_note``). ``--pairs-only``: the pairs alone.

Prints ``curve_plateau_mae_vs_exp`` (with its n), ``curve_seconds_<material>``, ``curve_avg_voltage_<material>``
(or ``curve_failed_<material>`` with the reason) from :func:`lib.cathodes.curves.curve_bench`, and
``neb_barrier_<material>``, ``neb_barrier_ref_<material>``, ``neb_seconds_<material>`` from
:func:`lib.cathodes.mobility.neb_bench`. Both cache what they compute (``data/curves/``, ``data/neb/``): a second
run reads them back, so the seconds of a cached item are its first run's (``computed_seconds``).
"""

from __future__ import annotations

import argparse
import math

import pandas as pd

from bench import emit

BENCH = "curves"


def _emit(d: dict) -> None:
    d = dict(d)
    name, value, unit = d.pop("name"), d.pop("value"), d.pop("unit", "")
    extra = {k: (v if isinstance(v, (int, float, str, bool)) or v is None else str(v)) for k, v in d.items()
             if not isinstance(v, pd.DataFrame)}
    emit(BENCH, name, math.nan if value is None else value, unit, **extra)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench curves")
    ap.add_argument("--potential", default="sevennet")
    ap.add_argument("--relax", action="store_true", help="relax every ordering (default: static energies)")
    ap.add_argument("--materials", nargs="*", default=None, help="measured materials of the curves (default all)")
    ap.add_argument("--neb-materials", nargs="*", default=None, help="reference materials of the NEB (default all)")
    ap.add_argument("--no-neb", action="store_true")
    ap.add_argument("--no-curves", action="store_true")
    ap.add_argument("--pairs-only", action="store_true",
                    help="MP's electrode pairs alone (default: else every structure source)")
    args = ap.parse_args(argv if argv is not None else [])
    from lib.cathodes.curves import AUTO, sources_loader
    from lib.data.electrodes import load_electrode_pairs

    pairs = load_electrode_pairs()
    # every structure source (71,210 MP structures): loaded once, only if a material is not among MP's pairs
    sources = None if args.pairs_only else sources_loader(AUTO)
    if not args.no_curves:
        from lib.cathodes.curves import curve_bench

        for d in curve_bench(args.potential, args.materials, relax=args.relax, pairs=pairs, sources=sources):
            _emit(d)
    if not args.no_neb:
        from lib.cathodes.mobility import neb_bench

        for d in neb_bench(args.potential, args.neb_materials, pairs=pairs, sources=sources):
            _emit(d)


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
