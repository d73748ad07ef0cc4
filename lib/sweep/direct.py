"""A sweep's GNN runs without Jupyter: the training cells of 03_cgcnn and 04_megnet as one function.

    python -m lib.sweep.direct --profile long --model cgcnn --property formation_energy_per_atom --seed 0
    python -m lib.sweep.direct --profile long --model cgcnn --property band_gap --seed 0 --member 1
    python -m lib.sweep.direct --prepare cgcnn:long:band_gap,formation_energy_per_atom megnet:thesis:efermi

For a machine that has torch and this checkout but no notebook kernel (a lent GPU): each call trains one
run exactly as its notebook would (same rows, graphs, split, recipe and run name, so the record and the
checkpoint are the ones ``make all`` would make and ``lib.records`` archives), and prints one line. It
resumes a stopped run from its last epoch like the notebooks. ``--member S`` trains only the seed-``S``
member of the run's seed ensemble (``<run>_e<S>``, same split; ``--member`` equal to ``--seed``: only the run),
so the members of one ensemble can train in parallel processes; without it the run trains and then the members its profile asks for, one after another.
``--prepare`` builds the dataset table and the graphs of the named runs once, on every core, so that runs
started in parallel afterwards read them from the cache instead of each building its own.
Figures and the executed notebook are not made here: run the notebook (``make all``) where they are wanted;
it finds the record and the checkpoint, and resumes or skips the training.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Sequence

from lib import data, graphs, models, recipes
from lib.profiles import PROFILES, get_profile

#: the graph builder and network of each graph model, as its notebook builds them (defaults of 04's cells)
_MEGNET_DEFAULTS = {"embedding_dim": 16, "n_blocks": 3, "n1": 64, "n2": 32, "n3": 16}


def _graph_params(model: str, recipe):
    if model == "cgcnn":
        return graphs.cgcnn_params(**recipe.graph_kwargs())
    return graphs.megnet_params(**recipe.graph_kwargs())


def _network(model: str, params, recipe):
    if model == "cgcnn":
        from lib.models.cgcnn import CGCNN

        return CGCNN.from_graph_params(params, **recipe.model_kwargs())
    from lib.models.megnet import MEGNet

    return MEGNet(cutoff=params.cutoff, **_MEGNET_DEFAULTS)


def _run_data(model: str, property: str, profile: str, seed: int, n_jobs: int = 2):
    """The rows, graph parameters, graphs and targets of a run, as its notebook makes them (cached)."""
    info = models.get(model)
    if info.graph_kind is None:
        raise ValueError(f"{model!r} is not a graph model; the direct runner trains "
                         f"{', '.join(models.GRAPH_INPUTS)}")
    prof = get_profile(profile)
    recipe = recipes.recipe(model, prof)
    df = data.load_dataset("cgcnn", source="auto", progress=False, verbose=False)
    frame = info.training_rows(df, property, prof, seed)
    params = _graph_params(model, recipe)
    name = f"cgcnn_{property}" if model == "cgcnn" else f"megnet_cgcnn_{property}"  # the notebooks' cache names
    gs = graphs.build_graphs(frame, params, name=name, progress=False, n_jobs=n_jobs)
    return frame, params, gs, frame[property].to_numpy()[gs.source_index]


def prepare(specs: Sequence[str], seed: int = 0, n_jobs: int | None = None) -> list[dict]:
    """Build the dataset table and the graphs of ``model:profile:property[,property...]`` specs (cached)."""
    out = []
    for spec in specs:
        try:
            model, profile, props = spec.split(":")
        except ValueError:
            raise ValueError(f"--prepare {spec!r}: want model:profile:property[,property...]") from None
        for prop in props.split(","):
            t0 = time.perf_counter()
            _, _, gs, _ = _run_data(model, prop, profile, seed, n_jobs or os.cpu_count() or 1)
            out.append({"model": model, "profile": profile, "property": prop, "graphs": len(gs),
                        "seconds": round(time.perf_counter() - t0, 1)})
    return out


def train_run(model: str, property: str, profile: str, seed: int, member: int | None = None,
              epochs: int | None = None, threads: int | None = None, compile: bool | None = None,
              resident: bool | None = None, progress: bool = False, runs_dir=None) -> list[dict]:
    """Train (or resume) one run of ``model`` as its notebook does; return its records (the run's, then its
    ensemble members'). ``member``: only the seed ensemble's member of that initial seed (``seed`` itself: only
    the run, without its members). ``compile``: None is the notebook's choice (CGCNN on more
    than 2,000 training structures); ``resident``: ``TrainConfig.resident`` (None: the graphs stay on a GPU;
    the batches are the same either way); ``runs_dir``: where records go (default results/runs)."""
    from lib.train import fit, seed_everything

    frame, params, gs, y = _run_data(model, property, profile, seed)  # first: it refuses a model without graphs
    info, prof = models.get(model), get_profile(profile)
    recipe = recipes.recipe(model, prof)
    split = data.split(len(gs), seed)
    kw = {"lr": None, "batch_size": None, "epochs": epochs or prof.epochs, "num_threads": threads}
    if model == "cgcnn":
        kw["compile"] = len(split["train"]) > 2000 if compile is None else compile
    config = recipe.train_config(**kw).replace(resident=resident)
    extra = {"dataset": "cgcnn", "recipe": recipe.as_dict()}
    name = info.run_name(property, prof, seed)
    if member is None:
        todo = [None, *(prof.ensemble_seeds(property) if model == "cgcnn" else ())]
    else:
        todo = [None if member == seed else member]
    out = []
    for s in todo:
        seed_everything(seed if s is None else s)
        net = _network(model, params, recipe)
        out.append(fit(net, gs, y, split, config, property=property, seed=seed if s is None else s,
                       profile=prof, model_name=info.record_name(), content_hash=frame.attrs.get("content_hash"),
                       run_name=name if s is None else f"{name}_e{s}", progress=progress, runs_dir=runs_dir,
                       extra=extra if s is None else {**extra, "member_of": name}))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m lib.sweep.direct", description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", choices=sorted(PROFILES), default="smoke")
    ap.add_argument("--model", choices=models.GRAPH_INPUTS, default="cgcnn")
    ap.add_argument("--property", default="formation_energy_per_atom")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--member", type=int, default=None, help="only the ensemble member of this initial "
                    "seed (the run's own seed: only the run)")
    ap.add_argument("--epochs", type=int, default=None, help="default: the profile's")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--no-compile", action="store_true", help="no torch.compile (the notebook compiles CGCNN "
                    "on more than 2,000 training structures)")
    ap.add_argument("--host-batches", action="store_true", help="batches made on the host even on a GPU")
    ap.add_argument("--progress", action="store_true")
    ap.add_argument("--prepare", nargs="+", metavar="MODEL:PROFILE:PROPS", help="only build the dataset table "
                    "and these runs' graphs, on every core (once, before runs start in parallel)")
    a = ap.parse_args(argv)
    t0 = time.perf_counter()
    if a.prepare:
        for line in prepare(a.prepare, a.seed):
            print(json.dumps(line), flush=True)
        return 0
    for rec in train_run(a.model, a.property, a.profile, a.seed, a.member, a.epochs, a.threads,
                         False if a.no_compile else None, False if a.host_batches else None, a.progress):
        print(json.dumps({"run": rec["run"], "test_mae": rec["test_mae"], "epochs": rec["epochs_run"],
                          "best_epoch": rec["best_epoch"], "time_per_epoch_s": round(rec["time_per_epoch_s"], 2),
                          "device": rec["device"].get("name"), "wall_s": round(time.perf_counter() - t0, 1)}),
              flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
