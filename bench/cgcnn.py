"""Benchmark: seconds per epoch of CGCNN training, as the reference code is run (k = 12, 8 Å, batch 256).

`python -m bench cgcnn` (or `make bench BENCH=cgcnn`). The data are the formation energies of the
CGCNN dataset (mirror), the split is ``lib.data.split(n, seed=0)``; graphs come from lib.graphs' cache
(built first if absent). Figures, each one JSON line (bench/__init__.emit):

- ``epoch_s_full``: one training epoch on the full training split (~29k crystals) with the defaults
  (split linear, eager, malloc tuned, torch threads = cores); ``train_s`` in the line is the training
  batches alone, the value adds the validation pass. Goal <= 60 s on 2 cores (reference CGCNN ~100 s).
- ``epoch_s_full_<variant>``: the same with other settings (below); a compiled variant reports its
  second epoch (the first compiles).
- ``epoch_s_sub<N>_<variant>``: a 2,000-crystal subsample of the training split (third epoch), for a
  quick figure and to compare variants. A variant is ``split`` (the default layer) or ``reference``
  (one linear map on the concatenation [h_i, h_j, e_ij], as the reference code), then flags:
  ``+compile`` (``compile=True``), ``+t1`` (one torch thread), ``+nomalloc`` (glibc's default malloc).
- ``peak_rss_gb`` of every variant is in its line (``peak_rss_gb`` key), and ``cpu_s``, the CPU seconds
  (all threads) of the timed epoch: on a shared machine the wall time of 2 threads suffers most (an
  OpenMP barrier waits for a descheduled thread), so the ``+t1`` variants are the steadier comparison.

Each variant runs in its own process, so process-wide settings (malloc, threads, compiled kernels) do
not leak from one to the next. Every line records the load average before and after: the cores may
be shared. ``--only full|sub`` and ``--n N`` narrow a run; ``--variants a,b`` and ``--full-variants a,b``
pick variants (`python -m bench.cgcnn --only sub --variants split+t1,reference+t1`).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

from bench import emit, peak_rss_gb

BENCH = "cgcnn"
PROP = "formation_energy_per_atom"
K, CUTOFF, BATCH = 12, 8.0, 256
SUB_N = 2000
SUB_VARIANTS = ("split", "split+compile", "split+t1", "reference+t1", "split+nomalloc+t1", "split+compile+t1")


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _graphs(progress: bool = False):
    """The full formation-energy table's k=12 graphs (lib.graphs cache), targets and split."""
    from lib.data import load_dataset, split, target_frame
    from lib.graphs import build_graphs, cgcnn_params

    df = load_dataset("cgcnn", source="auto", progress=progress, verbose=False)
    frame = target_frame(df, PROP)
    gs = build_graphs(frame, cgcnn_params(CUTOFF, K), name=f"cgcnn_{PROP}", progress=progress)
    y = frame[PROP].to_numpy()[gs.source_index]
    return gs, y, split(len(gs), seed=0)


def _cpu_s() -> float:
    """CPU seconds (user + system) of this process so far, all threads."""
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def child(variant: str, n: int | None, epochs: int) -> dict:
    """Train ``epochs`` epochs of one variant in this process; the timing of the last one."""
    import numpy as np

    from lib.models.cgcnn import CGCNN, CGCNNConv
    from lib.train import TrainConfig, fit, seed_everything

    t0 = time.perf_counter()
    gs, y, sp = _graphs()
    load_s = time.perf_counter() - t0
    if n is not None:
        rng = np.random.default_rng(0)
        sp = {"train": np.sort(rng.choice(sp["train"], n, replace=False)),
              "val": sp["val"][: max(n // 8, 2)], "test": sp["test"][: max(n // 8, 2)]}
    cfg = TrainConfig(epochs=epochs, batch_size=BATCH)  # the thesis's SGD settings
    base, *flags = variant.split("+")
    unknown = set(flags) - {"compile", "t1", "nomalloc"}
    if base not in ("split", "reference") or unknown:
        raise ValueError(f"unknown variant {variant!r}: split|reference, then +compile, +t1, +nomalloc")
    if "compile" in flags:
        cfg = cfg.replace(compile=True)
    if "t1" in flags:
        cfg = cfg.replace(num_threads=1)
    if "nomalloc" in flags:
        cfg = cfg.replace(tune_malloc=False)
    if base == "reference":
        CGCNNConv.forward = CGCNNConv.reference_forward  # one Linear on [h_i, h_j, e_ij] per edge
    seed_everything(0)
    model = CGCNN.from_graph_params(gs.params)
    cpu = [_cpu_s()]

    def tick(epoch: int, info: dict) -> None:
        cpu.append(_cpu_s())

    with tempfile.TemporaryDirectory() as runs:
        rec = fit(model, gs, y, sp, cfg, property=PROP, profile="bench", runs_dir=runs, resume=False,
                  progress=False, callback=tick)
    c = rec["curves"]
    n_edges = int(gs.n_edges[sp["train"]].sum())
    return {"epoch_s": c["epoch_time_s"][-1], "train_s": c["train_step_time_s"][-1],
            "first_epoch_s": c["epoch_time_s"][0], "cpu_s": round(cpu[-1] - cpu[-2], 2),
            "n_train": len(sp["train"]), "n_val": len(sp["val"]),
            "edges_per_epoch": n_edges, "load_s": round(load_s, 2), "threads": rec["device"]["torch_threads"],
            "val_mae": c["val_mae"][-1], "peak_rss_gb": round(peak_rss_gb(), 3), "cpu": rec["device"]["name"]}


def _run_child(variant: str, n: int | None, epochs: int) -> dict:
    cmd = [sys.executable, "-m", "bench.cgcnn", "--child", variant, "--epochs", str(epochs)]
    if n is not None:
        cmd += ["--n", str(n)]
    before = _load()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"bench cgcnn variant {variant} failed:\n{proc.stderr[-3000:]}")
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    res["load_before"], res["load_after"] = before, _load()
    return res


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench cgcnn")
    ap.add_argument("--only", choices=("full", "sub"), default=None)
    ap.add_argument("--n", type=int, default=SUB_N, help="subsample size of the quick figures")
    ap.add_argument("--variants", default=",".join(SUB_VARIANTS))
    ap.add_argument("--full-variants", default="split,split+compile,split+t1,split+compile+t1")
    args = ap.parse_args(argv if argv is not None else [])
    t0 = time.perf_counter()
    gs, _, sp = _graphs(progress=True)  # builds the cache once if absent
    print(f"# {gs}; train split {len(sp['train']):,} crystals, graphs ready in "
          f"{time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
    del gs
    common = {"k": K, "cutoff": CUTOFF, "batch_size": BATCH, "property": PROP}
    if args.only in (None, "sub"):
        for v in args.variants.split(","):
            r = _run_child(v, args.n, 3)
            name = f"epoch_s_sub{args.n}_{v.replace('+', '_')}"
            emit(BENCH, name, r.pop("epoch_s"), "s", variant=v, **common, **r)
    if args.only in (None, "full"):
        for v in args.full_variants.split(","):
            r = _run_child(v, None, 2 if "compile" in v else 1)
            name = "epoch_s_full" if v == "split" else f"epoch_s_full_{v.replace('+', '_')}"
            emit(BENCH, name, r.pop("epoch_s"), "s", variant=v, goal="<= 60 s on 2 cores", **common, **r)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--child", default=None)
    ap.add_argument("--n", type=int, default=None)
    ap.add_argument("--epochs", type=int, default=1)
    a, rest = ap.parse_known_args()
    if a.child:
        print(json.dumps(child(a.child, a.n, a.epochs)), flush=True)
    else:
        main(rest)
