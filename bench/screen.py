"""Benchmark: the every-framework cathode screen and its blind rediscovery (issue 41, items 1 and 4).

`python -m bench screen` (or `make bench BENCH=screen`); with options: `python -m bench screen --profile smoke
--positives FILE --no-potential`. One JSON line per figure (bench/__init__.emit), each with the load average:

- ``screen_candidates_<profile>``: the candidates the profile's generator yields
  (:data:`lib.cathodes.candidates.FRAMEWORK_SIZES`; its pool, built or read back from
  ``data/rediscovery/<profile>/pool``), with the substitutions tried, the frameworks and the dropped rows by
  reason; ``screen_substitutions_<profile>`` the substitutions tried;
- ``screen_per_hour_<stage>``: candidates an hour through each stage on one core here: ``generate``
  (substitution, charge balance, volume, StructureMatcher against the known structures and the candidates so
  far), ``hull`` (the DFT hull energy of every candidate's formula), ``stage1`` (the blind composition models:
  fit and predict, per positive), ``gnn`` (the shipped GNN voltage model on both states, a sample), ``static``
  (the universal potential's static energies of both states, a sample), ``relax`` (both states relaxed, a
  sample); ``screen_peak_rss_gb``;
- ``screen_projection_1e6_<stage>_<where>``: hours for 10^6 candidates on one core here, on a Dask cluster and
  on one GPU, from the measured rates and the assumptions printed with each line (the funnel's shares, the
  cluster's size and efficiency, the GPU's speed-ups: assumed, not measured here);
- ``rediscovery_regenerated_share``, ``rediscovery_median_rank_pct`` (misses at 100),
  ``rediscovery_median_rank_pct_regenerated`` (over the regenerated, passing ones), ``rediscovery_enrichment_top5`` and one
  ``rediscovery_rank_pct_<formula>`` per positive (:mod:`lib.cathodes.rediscovery`: the positives' systems
  held out of the frameworks, the hull and the stage-1 models; each line says what is blind and what is
  in-sample).

The default is the ``quick`` profile (its pool is built once, ~1 h on one core, then read back) and the
default positives (the experimental table's cathodes and KNOWN_CATHODES); ``--profile smoke`` takes minutes.
"""

from __future__ import annotations

import argparse
import os
import time
from collections import Counter

import numpy as np
import pandas as pd

from bench import emit, peak_rss_gb
from lib.cathodes import candidates as cg
from lib.cathodes import rediscovery as R

BENCH = "screen"
#: the assumptions of the projections (printed with every projection line)
FUNNEL = {"generate": 1.0, "hull": 1.0, "stage1": 1.0, "gnn": 1.0, "static": 0.1, "relax": 0.01}
CLUSTER = {"cores": 256, "efficiency": 0.8}
#: one H100 against one CPU core here, per stage (assumed from batched-inference speed-ups reported for
#: CGCNN-like models and universal potentials; no GPU was measured in this benchmark); CPU-bound stages run on
#: its 16 cores
GPU = {"gnn": 100.0, "static": 200.0, "relax": 50.0, "cpu_cores": 16}


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _pool_lines(profile: str, ctx: R.Context, seconds_context: float) -> dict[str, float]:
    """The candidates' count and the generation and hull rates; returns {stage: candidates per hour}."""
    folder = ctx.folder / "pool"
    rows = R.read_pool(folder)
    m = rows.attrs["manifest"]
    kinds = rows["kind"].value_counts()
    drops = Counter(rows.loc[rows["kind"] == "dropped", "category"])
    n_c, n_rows = int(kinds.get("candidate", 0)), len(rows)
    known = int((ctx.pool.cands["known_as"].fillna("") != "").sum())
    routes = dict(Counter(ctx.pool.cands["route"]))
    emit(BENCH, f"screen_candidates_{profile}", n_c, "candidates", frameworks=m["n_frameworks"],
         substitutions=n_rows, dropped=dict(drops), known_kept=known, routes=routes,
         ions=dict(Counter(ctx.pool.cands["ion"])), pool=str(folder))
    emit(BENCH, f"screen_substitutions_{profile}", n_rows, "substitutions", frameworks=m["n_frameworks"])
    sec = sum(c["seconds"] for c in m["chunks"])
    rates = {}
    if sec > 0:
        rates["generate"] = n_c / sec * 3600
        emit(BENCH, "screen_per_hour_generate", rates["generate"], "candidates/h",
             substitutions_per_hour=n_rows / sec * 3600, seconds=sec, profile=profile,
             load=[c.get("load") for c in m["chunks"]][-3:],
             note="one core; includes StructureMatcher against the known structures and earlier candidates")
    d = ctx.pool.seconds
    if "hull" in d:
        rates["hull"] = len(ctx.pool.cands) / max(d["hull"], 1e-9) * 3600
        emit(BENCH, "screen_per_hour_hull", rates["hull"], "candidates/h", formulas=d.get("hull_formulas"),
             seconds=d["hull"], profile=profile, load=_load())
    return rates


def _stage1_line(res: pd.DataFrame, profile: str) -> float:
    new = res[~res["cached"].astype(bool)] if "cached" in res else res
    src = new if len(new) else res
    n, sec = src["candidates_ranked"].sum(), src["seconds"].sum()
    fit = [t.get("seconds", np.nan) for t in src["training"]] if "training" in src else []
    rate = n / sec * 3600 if sec else np.nan
    emit(BENCH, "screen_per_hour_stage1", rate, "candidates/h", positives=len(src), seconds=float(sec),
         fit_seconds_mean=float(np.nanmean(fit)) if len(fit) else None, profile=profile,
         note="per positive: both models refitted without its systems, then every surviving candidate scored"
         + ("" if len(new) else "; timings of the cached results"), load=_load())
    return rate


def _sample(ctx: R.Context, n: int, seed: int = 0) -> pd.DataFrame:
    ids = ctx.pool.cands["candidate_id"]
    pick = ids.sample(min(n, len(ids)), random_state=seed).tolist()
    return R.read_pool(ctx.folder / "pool", structures=True, ids=pick).set_index("candidate_id").loc[pick]


def _gnn_line(ctx: R.Context, n: int) -> float:
    from lib.cathodes.voltage_model import load_gnn

    st = _sample(ctx, n)
    g = load_gnn()
    pairs = pd.DataFrame({"ion": st["ion"].to_numpy(), "charged": list(st["charged"]),
                          "discharged": list(st["discharged"]),
                          "formula_charged": st["formula_charged"].to_numpy(),
                          "formula_discharged": st["formula"].to_numpy()})
    before, t0 = _load(), time.perf_counter()
    g.predict(pairs)
    sec = time.perf_counter() - t0
    rate = len(st) / sec * 3600
    emit(BENCH, "screen_per_hour_gnn", rate, "candidates/h", n=len(st), seconds=sec, load_before=before,
         load_after=_load(),
         note="shipped GNN voltage model (in-sample for MP's systems), graphs of both states")
    return rate


def _potential_lines(ctx: R.Context, name: str, n_static: int, n_relax: int) -> dict[str, float]:
    from lib.cathodes.potentials import get_potential
    from lib.cathodes.relax import relax

    pot = get_potential(name)
    out = {}
    st = _sample(ctx, n_static, seed=1)
    structures = list(st["discharged"]) + list(st["charged"])
    pot.energies(structures[:1], cache=None)  # loads the model: not timed
    before, t0 = _load(), time.perf_counter()
    pot.energies(structures, cache=None)
    sec = time.perf_counter() - t0
    out["static"] = len(st) / sec * 3600
    emit(BENCH, "screen_per_hour_static", out["static"], "candidates/h", model=pot.name,
         structures=len(structures), seconds=sec, load_before=before, load_after=_load(),
         note="static energies of both states, no cache")
    if n_relax > 0:
        st = _sample(ctx, n_relax, seed=2)
        structures = list(st["discharged"]) + list(st["charged"])
        before, t0 = _load(), time.perf_counter()
        rs = relax(pot, structures, cache=None, progress=False)
        sec = time.perf_counter() - t0
        out["relax"] = len(st) / sec * 3600
        emit(BENCH, "screen_per_hour_relax", out["relax"], "candidates/h", model=pot.name,
             structures=len(structures), converged=sum(r.ok for r in rs), seconds=sec, load_before=before,
             load_after=_load(), note="both states relaxed (lib.cathodes.relax, batched FIRE), no cache")
    return out


def _projections(rates: dict[str, float], n: float = 1e6) -> None:
    """Hours for ``n`` candidates per stage and in all: one core here, a Dask cluster, one GPU (module
    docstring)."""
    totals = {"one_core": 0.0, "dask": 0.0, "gpu": 0.0}
    for stage, rate in rates.items():
        if not rate or not np.isfinite(rate):
            continue
        work = n * FUNNEL[stage]
        one = work / rate
        dask = one / (CLUSTER["cores"] * CLUSTER["efficiency"])
        gpu = one / GPU[stage] if stage in GPU else one / GPU["cpu_cores"]
        gpu_note = (f"{GPU[stage]:g}x one core here (assumed)" if stage in GPU
                    else f"CPU-bound: the GPU node's {GPU['cpu_cores']} cores")
        notes = {"one_core": "the measured rate on one core here", "gpu": gpu_note,
                 "dask": f"{CLUSTER['cores']} cores at {CLUSTER['efficiency']:g} parallel efficiency "
                         "(assumed)"}
        for where, h in (("one_core", one), ("dask", dask), ("gpu", gpu)):
            totals[where] += h
            emit(BENCH, f"screen_projection_1e6_{stage}_{where}", h, "h", share_reaching=FUNNEL[stage],
                 rate_here=rate, assumption=notes[where])
    for where, h in totals.items():
        emit(BENCH, f"screen_projection_1e6_total_{where}", h, "h", stages=sorted(rates), funnel=FUNNEL,
             cluster=CLUSTER, gpu=GPU,
             note="assumed shares reaching each stage; the GPU speed-ups are assumptions")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench screen")
    ap.add_argument("--profile", default="quick", choices=sorted(cg.FRAMEWORK_SIZES))
    ap.add_argument("--positives", help="file of positives (lib.cathodes.rediscovery.read_positives); "
                    "default: the experimental table's cathodes and KNOWN_CATHODES")
    ap.add_argument("--limit", type=int, help="the first N positives only")
    ap.add_argument("--dask-scheduler", metavar="ADDRESS", help="build the profile's pool on this Dask cluster "
                    "(the large profile's way: python -m bench screen --profile large --dask-scheduler tcp://host:8786)")
    ap.add_argument("--potential", default="sevennet",
                    help="the universal potential of the static/relax rates")
    ap.add_argument("--no-potential", action="store_true", help="skip the potential's and the GNN's rates")
    ap.add_argument("--static-n", type=int, default=8, help="candidates of the static-energy rate")
    ap.add_argument("--relax-n", type=int, default=1, help="candidates of the relaxation rate (0: none)")
    ap.add_argument("--gnn-n", type=int, default=64, help="candidates of the GNN rate")
    args = ap.parse_args(argv if argv is not None else [])
    import torch

    torch.set_num_threads(1)
    before, t0 = _load(), time.perf_counter()
    ctx = R.context(args.profile, progress=True, client=R.client_for(args.dask_scheduler))
    rates = _pool_lines(args.profile, ctx, time.perf_counter() - t0)
    positives = R.read_positives(args.positives) if args.positives else R.default_positives()
    if args.limit:
        positives = positives[: args.limit]
    res = R.run(positives, ctx, progress=True)
    rates["stage1"] = _stage1_line(res, args.profile)
    if not args.no_potential:
        rates["gnn"] = _gnn_line(ctx, args.gnn_n)
        rates.update(_potential_lines(ctx, args.potential, args.static_n, args.relax_n))
    emit(BENCH, "screen_peak_rss_gb", peak_rss_gb(), "GB", profile=args.profile, load_before=before,
         load_after=_load())
    _projections(rates)
    s = R.summarize(res)
    blind = R.BLIND[ctx.stage1_kind]["note"]
    common = {"profile": args.profile, "positives": s["n"], "not_evaluable": s["not_evaluable"],
              "blind": blind}
    emit(BENCH, "rediscovery_regenerated_share", s["regenerated_share"], "fraction", **common)
    emit(BENCH, "rediscovery_median_rank_pct", s["median_rank_pct"], "percent",
         median_of_passing=s["median_rank_pct_passing"],
         note="positives not regenerated or failing count as 100",
         **common)
    emit(BENCH, "rediscovery_median_rank_pct_regenerated", s["median_rank_pct_passing"], "percent",
         n=int(round(s["passing_share"] * s["n"])), note="over the regenerated positives that pass stage 1 (the "
         "issue's goal: the median rank percentile of the regenerated)", **common)
    emit(BENCH, "rediscovery_enrichment_top5", s["enrichment_top5"], "x random", in_top=s["in_top"], **common)
    for _, r in res.iterrows():
        name = r["formula"] + ("" if r["ion"] == "Li" else f"_{r['ion']}")
        emit(BENCH, f"rediscovery_rank_pct_{name}", r["rank_pct"], "percent", status=r["status"],
             evaluable=bool(r["evaluable"]), passing=int(r.get("passing", 0)),
             route=r.get("route") if isinstance(r.get("route"), str) else None,
             framework=r.get("framework_id") if isinstance(r.get("framework_id"), str) else None,
             held_out=r["held_out_systems"], profile=args.profile)


if __name__ == "__main__":
    main()
