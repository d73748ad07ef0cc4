"""Benchmark: electrode voltages from formation energies (DFT and ML) and the cathode screen's speed.

`python -m bench electrodes` (or `make bench BENCH=electrodes`). Figures, one JSON line each
(bench/__init__.emit), every line with the load average before and after (the cores may be shared):

- ``dft_<stat>_<group>``: the mirror's DFT formation energies -> voltages (through pymatgen) against MP's
  ``avg_voltage`` for the 451 pairs whose two structures the mirror holds: ``mae``, ``median_ae``,
  ``within_0.1`` (fraction) and ``n``, for all pairs and per working ion.
- ``ml_<stat>_<group>_vs_dft`` / ``_vs_mp``: the same pairs' voltages from formation-energy checkpoints
  trained on the leak-free group split (every benchmark structure out of training and validation). The
  checkpoints come from ``--checkpoints a.pt b.pt`` or ``BENCH_ELECTRODE_CHECKPOINTS`` (paths separated by
  ``:`` or ``,``) and must carry a group-split record holding the benchmark out; without them a small CGCNN
  is trained here on the group split (``--n`` structures, ``--epochs``, seed 0, 1 thread: about a minute
  on 2 cores), and ``train_seconds`` and ``formation_mae_heldout`` are reported too. ``model`` in each line
  names the checkpoints.
- ``screen_seconds_<size>`` and ``screen_candidates_<size>``: generating and scoring the cathode screen
  (``lib.cathodes.SCREEN_SIZES``, default smoke) with those models.

Trained runs go to a temporary directory (results/electrodes is not touched).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import warnings

from bench import emit
from lib import data
from lib.cathodes import candidates, electrodes, screen
from lib.cathodes import benchmark as eb

BENCH = "electrodes"


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _emit_metrics(prefix: str, m, suffix: str = "", **extra) -> None:
    for group, row in m.iterrows():
        if not row["n"]:
            continue
        for stat, unit in (("mae", "V"), ("median_ae", "V"), ("within_0.1", "fraction"), ("n", "pairs")):
            emit(BENCH, f"{prefix}_{stat}_{group}{suffix}", row[stat], unit, **extra)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.electrodes")
    ap.add_argument(
        "--checkpoints", nargs="*", default=None, help="formation-energy checkpoints (group split)"
    )
    ap.add_argument("--n", type=int, default=3000, help="training+validation structures of the quick model")
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--screen", default="smoke", help="screen size to time (smoke | quick | thesis | none)")
    args = ap.parse_args(argv if argv is not None else [])
    warnings.filterwarnings("ignore")


    before = _load()
    table = data.load_dataset("cgcnn", source="auto", progress=False, verbose=False)
    pairs = electrodes.read_pairs()
    t0 = time.perf_counter()
    dft = electrodes.pair_table(electrodes.match_pairs(pairs, table), progress=False)
    dft_s = time.perf_counter() - t0
    _emit_metrics("dft", eb.voltage_metrics(dft), load_before=before, load_after=_load())
    emit(BENCH, "dft_seconds", dft_s, "s", pairs=len(dft), load_before=before, load_after=_load())

    bench_ids = set(dft["high_mpid"]) | set(dft["low_mpid"])
    held = bench_ids | screen.known_cathode_ids(table, pairs)
    paths = args.checkpoints
    if paths is None and os.environ.get("BENCH_ELECTRODE_CHECKPOINTS"):
        paths = [p for p in os.environ["BENCH_ELECTRODE_CHECKPOINTS"].replace(",", ":").split(":") if p]
    with tempfile.TemporaryDirectory() as runs:
        if paths:
            label = ",".join(os.path.basename(p) for p in paths)
            predict = eb.checkpoint_predictor(paths, require=bench_ids)
        else:
            before = _load()
            t0 = time.perf_counter()
            recs = eb.train_formation_models(
                table,
                held,
                profile="quick",
                seeds=[0],
                n_max=args.n,
                epochs=args.epochs,
                threads=1,
                runs_dir=runs,
                progress=False,
            )
            train_s = time.perf_counter() - t0
            rec = recs[0]
            label = f"cgcnn group split, {rec['split_sizes']['train']} train, {args.epochs} epochs, seed 0"
            emit(BENCH, "train_seconds", train_s, "s", model=label, load_before=before, load_after=_load())
            emit(
                BENCH,
                "formation_mae_heldout",
                rec["test_mae"],
                "eV/atom",
                model=label,
                n=rec["split_sizes"]["test"],
            )
            predict = eb.checkpoint_predictor([rec["checkpoint_path"]], require=held)
        before = _load()
        ml = eb.ml_pair_table(dft, predict, progress=False)
        _emit_metrics(
            "ml",
            eb.voltage_metrics(ml, pred="ml_voltage", ref="dft_voltage"),
            "_vs_dft",
            model=label,
            load_before=before,
            load_after=_load(),
        )
        _emit_metrics(
            "ml", eb.voltage_metrics(ml, pred="ml_voltage", ref="avg_voltage"), "_vs_mp", model=label
        )
        if args.screen != "none":
            size = candidates.SCREEN_SIZES[args.screen]
            before = _load()
            t0 = time.perf_counter()
            protos = candidates.find_prototypes(table, pairs, n_extra=size.n_extra)
            cands, _ = candidates.generate_candidates(table, protos, progress=False, **size.kwargs())
            res = screen.screen(cands, predict, screen.Hull(table), progress=False)
            emit(
                BENCH,
                f"screen_seconds_{args.screen}",
                time.perf_counter() - t0,
                "s",
                model=label,
                tried=cands.attrs.get("n_tried"),
                load_before=before,
                load_after=_load(),
            )
            emit(
                BENCH,
                f"screen_candidates_{args.screen}",
                len(res),
                "candidates",
                passing=int(res["passes"].sum()),
            )


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
