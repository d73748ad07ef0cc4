"""Benchmark: electrode voltages on every MP pair (every route, every potential), experiment, throughput.

`python -m bench electrodes` (or `make bench BENCH=electrodes`). Figures, one JSON line each
(bench/__init__.emit), every line with the load average where it matters (the cores may be shared). The
benchmark is all 4,401 pairs of MP's insertion electrodes (lib.data.electrodes: both structures of each);
``<ion>`` is ``all`` or a working ion; every voltage goes through pymatgen (``lib.cathodes.electrodes``):

- ``<route>_<stat>_<ion>_vs_mp`` for every route of ``lib.cathodes.routes`` (``constant``, ``dft``, ``gnn``,
  ``umlip_static_<potential>`` for every potential of ``--potentials``, ``umlip_relaxed_<potential>`` on the
  stratified relaxed sample) and ``<stat>`` ``mae``, ``n``, ``mae_ci_low`` / ``mae_ci_high`` (95 %, chemical
  systems resampled), ``median_ae``, ``within_0.1``, ``within_0.3``, ``spearman``; the same with
  ``_vs_mp_outside_training`` on the pairs with an ``mvc-`` end (not in MPtrj); ``<route>_refused`` with the
  reasons of the pairs a route has no voltage for (pending energies with ``--cached-only``).
- ``paired_<route>_minus_<best>_<ion>``: MAE(route) − MAE(best static potential) on the same pairs, with its
  interval; ``potential_by_ion``: the per-ion default table written to ``pretrained/potential_by_ion.csv``.
- ``exp_mae_<route>`` / ``exp_n_<route>``: against the measured voltages of ``data/experimental_voltages.csv``
  on the rows whose reaction MP has (``mp``: MP's listed voltage; ``<route>+offset``: a constant offset fitted
  leave-one-chemistry-out); ``exp_best_minus_mp`` with its interval.
- ``static_per_s_<potential>`` / ``static_per_s_one_by_one_<potential>``: static energies a second as the
  bench computes them and with the potential's own ASE calculator one structure at a time (``--static-n``
  structures).
- ``relax_per_minute_batched`` / ``relax_per_minute_one_by_one`` / ``relax_speedup``: batched relaxations
  against ASE's FIRE on the potential's own calculator one after another (``--relax-n``;
  ``--throughput-only``: that alone).
- ``screen_seconds_<size>`` and ``screen_candidates_<size>``: generating and scoring the cathode screen.
- ``--legacy``: the 451-pair lines of earlier rounds (the voltage model trained on the mirror's pairs and its
  comparison table, relaxations of those pairs, SevenNet at CHGNet's minima); ``--train``: a CGCNN trained
  here on the 451-pair group split (``gnn_trained_*``).

The potentials were trained on MP's relaxations (MPtrj; the r2SCAN heads on MP's r2SCAN data): their lines are
in-sample tests of them, except the ``outside_training`` ones.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from pymatgen.transformations.standard_transformations import RemoveSpeciesTransformation

from bench import emit
from lib import data, pretrained
from lib.cathodes import benchmark as eb
from lib.cathodes import candidates, electrodes, potentials, relax, screen
from lib.cathodes.hull import Hull

BENCH = "electrodes"
STATS = (("mae", "V"), ("median_ae", "V"), ("within_0.1", "fraction"), ("n", "pairs"))


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _emit_metrics(prefix: str, m, suffix: str = "", **extra) -> None:
    for group, row in m.iterrows():
        if not row["n"]:
            continue
        for stat, unit in STATS:
            emit(BENCH, f"{prefix}_{stat}_{group}{suffix}", row[stat], unit, **extra)


def _predictor(args, table, pairs, dft, runs: str):
    """The GNN predictor (shipped, given or trained here) and a label for the lines."""
    bench_ids = set(dft["high_mpid"]) | set(dft["low_mpid"])
    paths = args.checkpoints
    if paths is None and os.environ.get("BENCH_ELECTRODE_CHECKPOINTS"):
        paths = [p for p in os.environ["BENCH_ELECTRODE_CHECKPOINTS"].replace(",", ":").split(":") if p]
    if not args.train:
        scale = 1.0
        if not paths:
            paths = [str(p) for p in pretrained.checkpoints(eb.ENERGY)]
            scale = float(pretrained.card(eb.ENERGY).get("sigma_scale") or 1.0)
        return eb.checkpoint_predictor(paths, require=bench_ids, sigma_scale=scale), ",".join(
            os.path.basename(p) for p in paths)
    held = bench_ids | screen.known_cathode_ids(table, pairs)
    before, t0 = _load(), time.perf_counter()
    rec = eb.train_formation_models(table, held, profile="quick", seeds=[0], n_max=args.n, epochs=args.epochs,
                                    threads=1, runs_dir=runs, progress=False)[0]
    label = f"cgcnn group split, {rec['split_sizes']['train']} train, {args.epochs} epochs, seed 0"
    emit(BENCH, "train_seconds", time.perf_counter() - t0, "s", model=label, load_before=before, load_after=_load())
    emit(BENCH, "formation_mae_heldout", rec["test_mae"], "eV/atom", model=label, n=rec["split_sizes"]["test"])
    return eb.checkpoint_predictor([rec["checkpoint_path"]], require=held), label


def _umlip(dft, ml, pot, relaxed_too: bool = True, rescore=()):
    """The universal potential's and the constant's lines on the benchmark pairs; returns the static table
    (with the GNN's voltages) and (``relaxed_too``) the relaxed voltages joined."""
    out = None
    for relaxed in (False, True) if relaxed_too else (False,):
        before, t0 = _load(), time.perf_counter()
        t = potentials.potential_pair_table(ml, pot, relaxed=relaxed, progress=True)
        kind = "relaxed" if relaxed else "static"
        extra = {"model": pot.name, "load_before": before, "load_after": _load()}
        emit(BENCH, f"umlip_{kind}_seconds", time.perf_counter() - t0, "s", pairs=len(t), **extra)
        for ref, suffix in (("avg_voltage", "_vs_mp"), ("dft_voltage", "_vs_dft")):
            _emit_metrics(f"umlip_{kind}", eb.voltage_metrics(t, pred=f"umlip_{kind}_voltage", ref=ref), suffix,
                          model=pot.name)
        if relaxed:
            bad = t["umlip_relaxed_error"].fillna("").ne("")
            emit(BENCH, "umlip_relaxed_failed", int(bad.sum()), "pairs", model=pot.name,
                 reasons=t.loc[bad, "umlip_relaxed_error"].str.slice(0, 80).value_counts().head(5).to_dict())
            out = out.join(t[["umlip_relaxed_voltage"]])
            for other in rescore:  # the other potentials' energies at these minima (relaxations read back)
                r = potentials.potential_pair_table(ml, pot, relaxed=True, rescore=other, progress=True)
                for ref, suffix in (("avg_voltage", "_vs_mp"), ("dft_voltage", "_vs_dft")):
                    _emit_metrics("umlip_rescored", eb.voltage_metrics(r, pred="umlip_rescored_voltage", ref=ref),
                                  suffix, model=f"{other.name} at {pot.name} minima")
        else:
            out = t  # built from ml: the GNN's voltages are in it
    return out


def _voltage_model(relaxed: pd.Series | None) -> None:
    """The voltage model (lib.cathodes.voltage_model, on its default potential) trained here on the grouped and
    the random split (seed 0), and every route on the same test pairs
    (``<route>_mae_<ion>_vs_mp_grouped_test`` /
    ``_random_test``; ``relaxed``: the relaxed uMLIP voltages by battery id, for their row)."""
    from lib.cathodes import voltage_train as vm

    t = vm.benchmark_pairs(vm.POTENTIAL, progress=False)  # static energies from the cache the lines above filled
    if relaxed is not None:
        t["umlip_relaxed_voltage"] = t["battery_id"].map(relaxed)
    names = {"constant": "constant", "formation-energy GNN": "gnn", "CHGNet static": "umlip_static_chgnet",
             "SevenNet static": "umlip_static_sevennet", "uMLIP relaxed": "umlip_relaxed", "mirror DFT": "dft",
             "voltage model": "voltage_model"}
    for split in ("grouped", "random"):
        before, t0 = _load(), time.perf_counter()
        model, res = vm.train_and_compare(t, split, potential=vm.POTENTIAL)
        extra = {"split": split, "load_before": before, "load_after": _load()}
        emit(BENCH, f"voltage_model_seconds_{split}", time.perf_counter() - t0, "s", n_train=model.info["n_train"],
             potential=model.potential, **extra)
        for r in res.itertuples():
            if not r.n:
                continue
            if r.route == "voltage model":
                name = f"voltage_model_mae_{r.ion}_vs_mp" + ("" if split == "grouped" else "_random")
            else:
                name = f"{names[r.route]}_mae_{r.ion}_vs_mp_{split}_test"
            emit(BENCH, name, r.mae, "V", n=r.n, se=r.se, **extra)
        emit(BENCH, f"voltage_model_coverage_1sigma_{split}", res.attrs["coverage_1sigma"], "fraction",
             tau=model.tau, **extra)


def _throughput(table, pairs, pot, n: int, batch_size: int = 48) -> None:
    """Batched relaxations against the potential's own optimizer (lib.cathodes.relax.relax_one_by_one), one
    after another, on the same structures."""
    t = table.drop_duplicates("material_id").set_index("material_id")
    li = [i for i in pairs.loc[pairs["ion"] == "Li", "low_mpid"].unique() if i in t.index]
    # cathodes of the size the screen relaxes (12-32 atoms once Li is removed), the first n by id
    sized = [i for i in sorted(li) if 12 <= int((t.loc[i, "structure"].numbers != 3).sum()) <= 32]
    small = sized[:n]
    structures = [RemoveSpeciesTransformation(["Li"]).apply_transformation(t.loc[i, "structure"].to_structure())
                  for i in small]
    atoms = sum(len(s) for s in structures)
    before, t0 = _load(), time.perf_counter()
    batched = relax.relax(pot, structures, cache=None, progress=False, batch_size=batch_size)
    tb = time.perf_counter() - t0
    mid = _load()
    t0 = time.perf_counter()
    single = relax.relax_one_by_one(pot, structures)
    ts = time.perf_counter() - t0
    device = getattr(getattr(pot, "calculator", None), "device", None) or next(pot.model.parameters()).device
    common = {"structures": len(structures), "atoms": atoms, "model": pot.name, "threads": torch.get_num_threads(),
              "device": str(device), "batch_size": batch_size}
    emit(BENCH, "relax_per_minute_batched", 60 * len(structures) / tb, "relaxations/min", seconds=tb,
         converged=sum(r.ok for r in batched), steps=sum(r.steps for r in batched), load_before=before,
         load_after=mid, **common)
    emit(BENCH, "relax_per_minute_one_by_one", 60 * len(structures) / ts, "relaxations/min", seconds=ts,
         steps=sum(r["steps"] for r in single), load_before=mid, load_after=_load(), **common)
    emit(BENCH, "relax_speedup", ts / tb, "x", **common)
    de = [abs(b.energy_per_atom - s["energy_per_atom"]) for b, s in zip(batched, single, strict=True) if b.ok]
    emit(BENCH, "relax_max_energy_difference", max(de) if de else float("nan"), "eV/atom", **common)


def _screen(args, table, pairs, predict, label) -> None:
    size = candidates.SCREEN_SIZES[args.screen]
    before, t0 = _load(), time.perf_counter()
    protos = candidates.find_prototypes(table, pairs, n_extra=size.n_extra)
    cands, _ = candidates.generate_candidates(table, protos, progress=False, **size.kwargs())
    res = screen.screen(cands, predict, Hull(table), progress=False)
    emit(BENCH, f"screen_seconds_{args.screen}", time.perf_counter() - t0, "s", model=label,
         tried=cands.attrs.get("n_tried"), load_before=before, load_after=_load())
    emit(BENCH, f"screen_candidates_{args.screen}", len(res), "candidates", passing=int(res["passes"].sum()))


ALL_STATS = (("mae", "V"), ("n", "pairs"), ("mae_ci_low", "V"), ("mae_ci_high", "V"), ("median_ae", "V"),
             ("within_0.1", "fraction"), ("within_0.3", "fraction"), ("spearman", "rho"))


def _emit_routes(summary: pd.DataFrame, suffix: str = "_vs_mp", **extra) -> None:
    """``<route>_<stat>_<ion><suffix>`` for every row of a route summary (lib.cathodes.metrics.route_summary)."""
    for d in summary.to_dict("records"):
        if not d["n"]:
            continue
        d["mae_ci_low"], d["mae_ci_high"] = d["ci_low"], d["ci_high"]
        for stat, unit in ALL_STATS:
            emit(BENCH, f"{d['route']}_{stat}_{d['ion']}{suffix}", d[stat], unit, systems=d["systems"], **extra)


def _static_throughput(pairs, names, n: int) -> None:
    """Static energies a second with each potential as the benchmark computes them (lib.cathodes.potentials, no
    cache) and with the potential's own ASE calculator one structure at a time, on the same ``n`` structures."""
    from pymatgen.io.ase import AseAtomsAdaptor

    rng = np.random.default_rng(1)
    idx = rng.choice(len(pairs), n, replace=False)
    structures = [pairs["discharged"].iloc[i].to_structure() for i in idx]
    atoms = sum(len(s) for s in structures)
    for name in names:
        pot = potentials.get_potential(name)
        pot.energies(structures[:1], cache=None)  # load the weights outside the timing
        before, t0 = _load(), time.perf_counter()
        pot.energies(structures, cache=None)
        tb = time.perf_counter() - t0
        calc = pot.ase_calculator()
        t0 = time.perf_counter()
        for s in structures:
            a = AseAtomsAdaptor.get_atoms(s)
            a.calc = calc
            a.get_potential_energy()
        ts = time.perf_counter() - t0
        common = {"structures": n, "atoms": atoms, "model": pot.name, "threads": torch.get_num_threads(),
                  "load_before": before, "load_after": _load()}
        emit(BENCH, f"static_per_s_{name}", n / tb, "structures/s", seconds=tb, **common)
        emit(BENCH, f"static_per_s_one_by_one_{name}", n / ts, "structures/s", seconds=ts, **common)


def _experiment_emit(s: pd.DataFrame, suffix: str = "", **extra) -> None:
    """``exp_mae_<route><suffix>`` / ``exp_n_<route><suffix>`` of an experiment summary."""
    for r in s.to_dict("records"):
        if r["n"]:
            emit(BENCH, f"exp_mae_{r['route']}{suffix}", r["mae"], "V", ci_low=r["ci_low"],
                 ci_high=r["ci_high"], bias=r["bias"], **extra)
            emit(BENCH, f"exp_n_{r['route']}{suffix}", r["n"], "rows", **extra)


def _experiment_built(exp: pd.DataFrame, pairs: pd.DataFrame, pot_name: str, names, relax_now: bool = False):
    """The pairs of the experiment's reaction where MP has none
    (lib.cathodes.experiment.build_experiment_pairs: discharged end from every structure source, charged end
    an MP structure of the same framework or built by removing ions) and their voltages: every potential of
    ``names`` static, and relaxed with ``pot_name`` (the default potential; cached relaxations only unless
    ``relax_now``: ``python -m lib.cathodes.experiment built --relax`` makes them)."""
    from lib.cathodes import experiment as cx
    from lib.cathodes.stability import structure_sources

    t0 = time.perf_counter()
    pot = potentials.get_potential(pot_name)
    built = cx.build_experiment_pairs(exp, pairs, structure_sources(), energies=pot)
    emit(BENCH, "exp_built_rows", int(built["charged_candidates"].map(len).gt(0).sum()), "rows",
         status=built["status"].value_counts().to_dict(), seconds=time.perf_counter() - t0)
    parts = []
    for name in names:
        try:
            parts.append(cx.built_voltages(built, {name: potentials.get_potential(name)}))
        except Exception as exc:  # noqa: BLE001 - a potential that cannot load is said, the others go on
            emit(BENCH, f"exp_built_refused_{name}", 0, "rows", reason=f"{type(exc).__name__}: {exc}"[:200])
    parts.append(cx.built_voltages(built, {}, relax_model=pot, relax_name=pot_name,
                                   cached_only=not relax_now))
    parts.append(cx.model_voltages(built, pot))  # the voltage models of our own: out of sample on these
    bl = pd.concat(parts, ignore_index=True) if parts else None
    return built, bl


def _experiment(pairs: pd.DataFrame, long: pd.DataFrame, relax_now: bool = False) -> None:
    """Every route against measured voltages (lib.cathodes.experiment), in two classes never averaged
    together except in the union: the rows whose reaction MP has (``exp_mae_<route>`` / ``exp_n_<route>`` with
    intervals, MP's listed voltage as ``mp``, a constant offset per route fitted leave-one-chemistry-out
    (``<route>+offset``), the best route's paired interval against MP's) and the rows whose pair was built
    from the structure sources (``exp_mae_<route>_built`` / ``exp_n_<route>_built``: every static potential
    route and the default potential relaxed; MP lists no voltage for them), and both together where a route
    has a voltage (``exp_mae_<route>_union``). MP's ``other range`` pairs (another reaction) are in none of
    them; such a row is in the built class when its own reaction could be built."""
    from lib.cathodes import defaults
    from lib.cathodes import experiment as cx
    from lib.data.experimental import read_experimental_voltages
    from lib.plots import cathodes as plots_cathodes

    exp = read_experimental_voltages()
    pot_name = defaults.potential_for("Li")
    pot = potentials.get_potential(pot_name)
    low = dict(zip(pairs["low_mpid"], pairs["discharged"], strict=True))
    e = pd.Series(pot.energies(list(low.values()))[0], index=list(low))  # cached: the static route has them
    m = cx.match_experiment(exp, pairs, e)
    names = [r.removeprefix("umlip_static_") for r in long["route"].unique()
             if r.startswith("umlip_static_") and r.removeprefix("umlip_static_") in potentials.POTENTIALS]
    built, bl = _experiment_built(exp, pairs, pot_name, names, relax_now)
    m = cx.with_built(m, built)
    emit(BENCH, "exp_rows", len(exp), "rows", matches=m["match"].value_counts().to_dict(),
         mp_matches=m["mp_match"].value_counts().to_dict(), built=int(m["built"].sum()), potential=pot.name)
    t = cx.experiment_table(m, long, bl)
    tm = t[t["match"] == "same reaction"]
    tm = pd.concat([tm, cx.loco_offset(tm)], ignore_index=True)
    s = cx.experiment_summary(tm)
    _experiment_emit(s)
    best = s[(s["route"] != "mp") & (s["n"] > 0)].iloc[0]
    emit(BENCH, "exp_best_minus_mp", best["vs_mp"], "V", route=best["route"], ci_low=best["vs_mp_ci_low"],
         ci_high=best["vs_mp_ci_high"], n=best["vs_mp_n"])
    closest = cx.closest_route(tm, s)
    if closest is not None:
        defaults.EXPERIMENT_ROUTE.write_text(json.dumps({**closest, "generated": time.strftime("%Y-%m-%d"),
                                                         "rows": int(closest["n"])}, indent=1) + "\n")
        emit(BENCH, "exp_route", closest["mae"], "V", **{k: v for k, v in closest.items() if k != "mae"})
    tb = t[t["match"] == "built"]
    tb = pd.concat([tb, cx.loco_offset(tb)], ignore_index=True)
    sb = cx.experiment_summary(tb) if len(tb) else s.iloc[:0]
    _experiment_emit(sb, "_built", note="rows whose pair was built from the structure sources; MP lists no "
                                        "voltage for them")
    emit(BENCH, "exp_n_mp_built", 0, "rows", note="MP has no pair of these reactions: no listed voltage")
    tu = pd.concat([t, cx.loco_offset(t)], ignore_index=True)
    su = cx.experiment_summary(tu)
    _experiment_emit(su, "_union", note="MP-matched and built rows together where the route has a voltage")
    out = Path("results") / "electrodes"
    out.mkdir(parents=True, exist_ok=True)
    m.to_csv(out / "experiment_matches.csv", index=False)
    built.drop(columns=["discharged", "charged_candidates"]).assign(
        n_charged_candidates=built["charged_candidates"].map(len)).to_csv(out / "experiment_built.csv",
                                                                          index=False)
    if bl is not None:
        bl.to_csv(out / "experiment_built_voltages.csv", index=False)
    s.to_csv(out / "experiment_summary.csv", index=False)
    sb.to_csv(out / "experiment_summary_built.csv", index=False)
    su.to_csv(out / "experiment_summary_union.csv", index=False)
    f = plots_cathodes.experiment_parity(t, name="route_parity_experiment")
    emit(BENCH, "figure", 0, "file", files=[str(p) for p in f])


def _all_pairs(args) -> pd.DataFrame:
    """Every route on every one of MP's 4,401 pairs (lib.cathodes.routes), per ion, with 95 % intervals over
    chemical systems; the paired interval of each route against the best; the per-ion default table; figures."""
    from lib.cathodes import defaults, routes
    from lib.cathodes import metrics as cm
    from lib.data.electrodes import load_electrode_pairs, pair_ids
    from lib.plots import cathodes as plots_cathodes

    before, t0 = _load(), time.perf_counter()
    pairs = load_electrode_pairs()
    emit(BENCH, "pairs_read", len(pairs), "pairs", of=pairs.attrs["n_pairs"], refused=pairs.attrs["drops"],
         seconds=time.perf_counter() - t0)
    scale = float(pretrained.card(eb.ENERGY).get("sigma_scale") or 1.0)
    predict = eb.checkpoint_predictor([str(p) for p in pretrained.checkpoints(eb.ENERGY)], require=pair_ids(pairs),
                                      sigma_scale=scale)
    sample = routes.relaxed_sample(pairs, args.relax_li, args.relax_other)
    long = routes.all_routes(pairs, args.potentials, args.relaxed_potentials, predict, sample=sample, progress=True,
                             cached_only=args.cached_only, relax_cached_only=not args.relax_now)
    emit(BENCH, "routes_seconds", time.perf_counter() - t0, "s", pairs=len(pairs), load_before=before,
         load_after=_load())
    bad = long[long["voltage"].isna()]
    for route, g in bad.groupby("route"):
        emit(BENCH, f"{route}_refused", len(g), "pairs", reasons=g["error"].str.slice(0, 70).value_counts()
             .head(6).to_dict())
    summary = cm.route_summary(long)
    _emit_routes(summary)
    outside = set(pairs.loc[routes.outside_training(pairs), "battery_id"])
    _emit_routes(cm.route_summary(long[long["battery_id"].isin(outside)]), "_vs_mp_outside_training",
                 note="pairs with an mvc- end (MP's multivalent-cathode calculations, not in MPtrj)")
    static = summary[summary["route"].str.startswith("umlip_static_") & summary["ion"].eq("all")]
    pbe = [f"umlip_static_{k}" for k, v in potentials.SCALES.items() if v == "total"]
    best = static[static["route"].isin(pbe)].sort_values("mae")["route"].iloc[0] if len(static) else "gnn"
    # against each static route only: those are the ones a best route or an ion's default can be
    static_routes = [r for r in long["route"].unique() if r.startswith("umlip_static_")]
    paired = pd.concat([cm.paired_table(long, r) for r in static_routes], ignore_index=True)
    for r in paired[paired["best"] == best].itertuples(index=False):
        if r.n:
            emit(BENCH, f"paired_{r.route}_minus_{best}_{r.ion}", r.diff, "V", ci_low=r.ci_low, ci_high=r.ci_high,
                 n=r.n, systems=r.systems)
    table = defaults.write_table(summary, paired)
    emit(BENCH, "potential_by_ion", 0, "table", file=str(table.relative_to(table.parents[1])),
         table=defaults.potential_by_ion(table))
    out = Path("results") / "electrodes"
    out.mkdir(parents=True, exist_ok=True)
    long.to_csv(out / "routes_all_pairs.csv", index=False)
    summary.to_csv(out / "routes_summary.csv", index=False)
    paired.to_csv(out / "routes_paired.csv", index=False)
    for f in plots_cathodes.route_mae(summary, name="route_mae_by_ion"), plots_cathodes.route_parity(
            long, best, name="route_parity_best"):
        emit(BENCH, "figure", 0, "file", files=[str(p) for p in f])
    _experiment(pairs, long)
    _voltage_models(long)
    if args.static_n:
        _static_throughput(pairs, args.potentials, args.static_n)
    return long


def _voltage_models(long: pd.DataFrame) -> None:
    """The voltage models of our own (lib.cathodes.voltage_eval) on the grouped and random splits' test pairs, from
    the archived runs (records/voltage_models/; `python -m lib.cathodes.voltage_eval run` makes them): MAE per ion
    pooled over the seeds with intervals, the base potential on the same pairs, the paired gain, the coverage;
    and every route of ``long`` on the rows both models have (``voltage_route_mae_<route>_<ion>_<split>``)."""
    from lib.cathodes import voltage_eval as ve

    runs = ve.load_runs()
    if runs.empty:
        emit(BENCH, "voltage_models_runs", 0, "runs", note="none archived: python -m lib.cathodes.voltage_eval run")
        return
    emit(BENCH, "voltage_models_runs", runs.groupby(["model", "split", "seed"]).ngroups, "runs",
         models=runs.groupby(["model", "split"])["seed"].nunique().to_dict().__repr__())
    for name, value, unit, extra in ve.bench_lines(runs):
        emit(BENCH, name, value, unit, **extra)
    same = ve.routes_on_tests(runs, long)
    for r in same[same["ion"].isin(["all", "Li"])].itertuples(index=False):
        emit(BENCH, f"voltage_route_mae_{r.route}_{r.ion}_{r.split}", r.mae, "V", n=r.n, of=r.of, ci_low=r.ci_low,
             ci_high=r.ci_high)
    out = Path("results") / "electrodes"
    out.mkdir(parents=True, exist_ok=True)
    ve.summary(runs).to_csv(out / "voltage_models_summary.csv", index=False)
    same.to_csv(out / "voltage_models_same_pairs.csv", index=False)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench electrodes")
    ap.add_argument("--checkpoints", nargs="*", default=None, help="formation-energy checkpoints (group split)")
    ap.add_argument("--train", action="store_true", help="train a small CGCNN on the group split instead")
    ap.add_argument("--n", type=int, default=3000, help="training+validation structures of --train")
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--potentials", nargs="+", default=sorted(potentials.POTENTIALS),
                    help="universal potentials (lib.cathodes.potentials): static voltages of each on all pairs")
    ap.add_argument("--relaxed-potentials", nargs="*", default=["sevennet"], help="the ones whose relaxed voltages "
                    "are reported on the stratified sample (read from the cache the CPU queue fills: `python -m "
                    "lib.cathodes.routes relax NAME`; --relax-now relaxes what is missing here, ~20 s a structure)")
    ap.add_argument("--relax-now", action="store_true", help="relax the sample's missing structures here")
    ap.add_argument("--relax-li", type=int, default=400, help="Li pairs of the relaxed sample")
    ap.add_argument("--relax-other", type=int, default=50, help="pairs of every other ion with >= 100 pairs")
    ap.add_argument("--cached-only", action="store_true", help="compute no static energy: report what the cache (the "
                    "CPU queue's, records/relax/) holds, the rest as pending pairs")
    ap.add_argument("--static-n", type=int, default=24, help="structures of the static-throughput lines (0: none)")
    ap.add_argument("--legacy", action="store_true", help="also the 451-pair lines of earlier rounds (the voltage "
                    "model on the mirror's pairs, relaxations of those pairs, the rescored ones)")
    ap.add_argument("--relax-n", type=int, default=8, help="structures of the relaxation-speed figure (0: none)")
    ap.add_argument("--relax-potential", default=None, help="the potential of that figure (default: the first of "
                    "--potentials)")
    ap.add_argument("--relax-batch", type=int, default=48, help="structures relaxed at once in that figure")
    ap.add_argument("--throughput-only", action="store_true", help="only the relaxation-speed figure (a GPU's "
                    "check: bench/gpu_session.sh)")
    ap.add_argument("--no-umlip", action="store_true", help="skip the universal potential's (and the voltage "
                    "model's) lines")
    ap.add_argument("--no-relaxed", action="store_true", help="the universal potential's static lines only")
    ap.add_argument("--screen", default="smoke", help="screen size to time (smoke | quick | thesis | none)")
    args = ap.parse_args(argv if argv is not None else [])
    warnings.filterwarnings("ignore")
    before = _load()
    table = data.load_dataset("cgcnn", source="auto", progress=False, verbose=False)
    pairs = electrodes.read_pairs()
    relax_pot = potentials.get_potential(args.relax_potential or args.potentials[0])
    if args.throughput_only:
        _throughput(table, pairs, relax_pot, args.relax_n or 8, args.relax_batch)
        return
    if not args.no_umlip:
        _all_pairs(args)
    t0 = time.perf_counter()
    dft = electrodes.pair_table(electrodes.match_pairs(pairs, table), progress=False)
    emit(BENCH, "dft_seconds", time.perf_counter() - t0, "s", pairs=len(dft))
    with tempfile.TemporaryDirectory() as runs:
        predict, label = _predictor(args, table, pairs, dft, runs)
        if args.train:  # a CGCNN trained here on the 451-pair group split (its own check)
            ml = eb.ml_pair_table(dft, predict, progress=False)
            for ref, suffix in (("dft_voltage", "_vs_dft"), ("avg_voltage", "_vs_mp")):
                _emit_metrics("gnn_trained", eb.voltage_metrics(ml, pred="ml_voltage", ref=ref), suffix, model=label)
        if args.legacy and not args.no_umlip:
            ml = eb.ml_pair_table(dft, predict, progress=False)
            relaxed = None
            for name in ("chgnet", "sevennet"):
                others = [potentials.get_potential(o) for o in ("chgnet", "sevennet") if o != name]
                out = _umlip(dft, ml, potentials.get_potential(name), relaxed_too=name == "sevennet"
                             and not args.no_relaxed, rescore=others)
                if "umlip_relaxed_voltage" in out and relaxed is None:
                    relaxed = out.set_index("battery_id")["umlip_relaxed_voltage"]
            _voltage_model(relaxed)
        if args.relax_n and not args.no_umlip:
            _throughput(table, pairs, relax_pot, args.relax_n, args.relax_batch)
        if args.screen != "none":
            _screen(args, table, pairs, predict, label)


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
