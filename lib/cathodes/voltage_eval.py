"""The voltage models judged alike on MP's 4,401 pairs: splits, exclusions, runs, statistics, shipping.

Two models of our own, one table of pairs (:func:`voltage_pairs`: every MP pair with both structures,
:func:`lib.data.electrodes.load_electrode_pairs`, and the static voltage of the correction's potential,
:data:`lib.cathodes.correction.POTENTIAL`, from its archived energies):

- ``delta``: the potential's static voltage + the gradient-boosted correction
  (:class:`lib.cathodes.correction.VoltageModel`; σ_V from grouped out-of-fold errors of its training pairs);
- ``gnn``: the CGCNN on both states (:mod:`lib.cathodes.voltage_gnn`; σ_V calibrated on validation pairs).

**Splits** (:func:`split`): ``grouped`` — the framework's chemical system is the group; every known cathode's
system (:data:`lib.cathodes.screen.KNOWN_CATHODES`) is in test, then systems drawn with the seed
(:func:`lib.cathodes.correction.grouped_split`); the GNN's validation pairs are whole systems of the training
side. ``random`` — pairs drawn at random (the split the published voltage models report); validation drawn
from training. The GNN starts from random weights and sees nothing but its training pairs, so a grouped test
system reaches it through no pre-training either.

**Exclusions** (:func:`exclusion`): battery ids kept out of training and validation of every split and of the
shipped models (``--exclude FILE``), and with ``--exclude-systems`` every pair of their frameworks' chemical
systems too: a user's own test set stays unseen. An id that is not one of MP's pairs is an error.

**Runs** (:func:`run`): one model on one split; its test predictions are written to
``records/voltage_models/<model>_<split>_s<seed>.csv.gz`` (battery id, ion, system, voltage, σ_V, MP's voltage,
the base potential's voltage) with a JSON beside it (sizes, seconds, σ calibration); a run whose record
exists is read back, and a GNN run resumes from its last epoch (``data/voltage_gnn_runs/``). The CPU queue
runs them: ``python -m lib.cathodes.voltage_eval run --model gnn --split grouped --seeds 0 1 2 3 4``.

**Statistics** (:func:`summary`, :func:`bench_lines`): per model, split kind and ion, the MAE over the test
pairs of all seeds pooled (= the mean of the splits' MAEs weighted by their sizes) with a 95 % interval that
resamples chemical systems (:func:`lib.cathodes.metrics.bootstrap_mae`), the base potential's MAE on the same
rows and the paired difference MAE(model) − MAE(base) with its interval
(:func:`lib.cathodes.metrics.paired_difference`), the share of test errors within 1 σ_V averaged over the
seeds' test sets.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from lib.cathodes import voltage_gnn
from lib.cathodes.correction import (
    BASE,
    POTENTIAL,
    VoltageModel,
    framework_groups,
    grouped_split,
    random_split,
)
from lib.cathodes.metrics import bootstrap_mae, paired_difference, system_of
from lib.cathodes.potentials import get_potential, potential_pair_table
from lib.data.electrodes import load_electrode_pairs
from lib.paths import DATA, ROOT, atomic_path

MODELS = ("delta", "gnn")
SPLITS = ("grouped", "random")
RECORDS = ROOT / "records" / "voltage_models"
RUNS = DATA / "voltage_gnn_runs"
VAL = 0.1  # the share of the training side the GNN validates on (whole systems on a grouped split)


# ----------------------------------------------------------------------------------------------
# the pairs and what is kept out
# ----------------------------------------------------------------------------------------------


@functools.cache
def _voltage_pairs(potential: str) -> pd.DataFrame:
    pairs = load_electrode_pairs()
    t = potential_pair_table(pairs, get_potential(potential), prefix="umlip_static", progress=False,
                             cached_only=True)
    t["system"] = [system_of(f, ion) for f, ion in zip(t["low_formula"], t["ion"], strict=True)]
    return t.reset_index(drop=True)


def voltage_pairs(potential: str = POTENTIAL) -> pd.DataFrame:
    """Every MP pair with both structures, MP's voltage, the system, and ``potential``'s static voltage (the
    correction's base, ``umlip_static_voltage``; NaN with the reason in ``umlip_static_error`` where its
    energies are not computed yet: ``python -m lib.cathodes.potentials static NAME``)."""
    return _voltage_pairs(potential).copy()


def read_ids(path: str | Path) -> list[str]:
    """Battery ids from a file, one per line (blank lines and ``#`` comments skipped)."""
    out = []
    for line in Path(path).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            out.append(line)
    return out


def exclusion(pairs: pd.DataFrame, ids: Sequence[str] = (), systems: bool = False) -> np.ndarray:
    """A mask of the pairs to keep out of training and validation: the battery ``ids`` and (``systems``) every
    pair whose framework's chemical system one of them has. An id that is not a pair here raises."""
    ids = list(dict.fromkeys(ids))
    unknown = sorted(set(ids) - set(pairs["battery_id"]))
    if unknown:
        raise ValueError(f"{len(unknown)} of the {len(ids)} excluded ids are not pairs here: {unknown[:5]}")
    mask = pairs["battery_id"].isin(ids).to_numpy().copy()
    if systems and mask.any():
        groups = framework_groups(pairs)
        mask = mask | groups.isin(set(groups[mask])).to_numpy()
    return mask


def split(pairs: pd.DataFrame, kind: str, seed: int, excluded: np.ndarray | None = None,
          val: float = VAL) -> dict[str, np.ndarray]:
    """Row positions of ``train``, ``val`` and ``test`` of a ``grouped`` or ``random`` split of the pairs that
    are not ``excluded`` (those are in none of the three)."""
    if kind not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, not {kind!r}")
    keep = np.flatnonzero(~excluded) if excluded is not None else np.arange(len(pairs))
    sub = pairs.iloc[keep].reset_index(drop=True)
    sp = grouped_split(sub, seed) if kind == "grouped" else random_split(sub, seed)
    train = sp["train"]
    rng = np.random.default_rng([seed, 39])
    if kind == "grouped":
        groups = framework_groups(sub).to_numpy()[train]
        names = sorted(set(groups))
        size = pd.Series(groups).value_counts()
        chosen, n = set(), 0
        for i in rng.permutation(len(names)):
            if n >= val * len(train):
                break
            chosen.add(names[i])
            n += int(size[names[i]])
        is_val = np.isin(groups, list(chosen))
    else:
        is_val = np.zeros(len(train), bool)
        is_val[rng.permutation(len(train))[: int(round(val * len(train)))]] = True
    return {"train": keep[train[~is_val]], "val": keep[train[is_val]], "test": keep[sp["test"]]}


# ----------------------------------------------------------------------------------------------
# runs
# ----------------------------------------------------------------------------------------------


def record_path(model: str, kind: str, seed: int, folder: Path = RECORDS) -> Path:
    return folder / f"{model}_{kind}_s{seed}.csv.gz"


def _fit(model: str, pairs: pd.DataFrame, sp: dict, seed: int, folder: Path | None, progress: bool,
         cfg: voltage_gnn.GNNConfig | None = None):
    if model == "delta":  # its σ comes from out-of-fold errors of its own training pairs: train and val together
        fit_rows = np.concatenate([sp["train"], sp["val"]])
        return VoltageModel.fit(pairs.iloc[fit_rows], seed=seed, potential=POTENTIAL)
    if model == "gnn":
        cfg = cfg or voltage_gnn.GNNConfig(seed=seed)
        return voltage_gnn.fit(pairs, sp["train"], sp["val"], cfg, folder=folder, progress=progress)
    raise ValueError(f"model must be one of {MODELS}, not {model!r}")


def run(model: str, kind: str, seed: int, pairs: pd.DataFrame | None = None, excluded: np.ndarray | None = None,
        records: Path | None = RECORDS, progress: bool = False, cfg: voltage_gnn.GNNConfig | None = None,
        runs: Path = RUNS) -> pd.DataFrame:
    """The test predictions of ``model`` trained on split (``kind``, ``seed``); read back from ``records`` when
    there (None: always trained, nothing written)."""
    path = record_path(model, kind, seed, records) if records is not None else None
    if path is not None and path.exists() and excluded is None:
        return pd.read_csv(path)
    pairs = voltage_pairs() if pairs is None else pairs
    usable = pairs["avg_voltage"].notna() & (pairs[BASE].notna() if model == "delta" else True)
    excluded = (np.zeros(len(pairs), bool) if excluded is None else np.asarray(excluded)) | ~usable.to_numpy()
    sp = split(pairs, kind, seed, excluded)
    folder = runs / f"{model}_{kind}_s{seed}" if model == "gnn" and records is not None else None
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    m = _fit(model, pairs, sp, seed, folder, progress, cfg)
    seconds = time.perf_counter() - t0
    test = pairs.iloc[sp["test"]]
    v, s = m.predict(test)
    out = pd.DataFrame({"battery_id": test["battery_id"].to_numpy(), "ion": test["ion"].to_numpy(),
                        "system": test["system"].to_numpy(), "model": model, "split": kind, "seed": seed,
                        "voltage": v, "sigma": s, "reference": test["avg_voltage"].to_numpy(float),
                        "base": test[BASE].to_numpy(float)})
    info = {"model": model, "split": kind, "seed": seed, "n_train": len(sp["train"]), "n_val": len(sp["val"]),
            "n_test": len(sp["test"]), "n_excluded": int(excluded.sum()), "seconds": round(seconds, 1),
            "potential": POTENTIAL, "torch_threads": torch.get_num_threads(),
            **{k: v for k, v in (m.info or {}).items() if k != "history"}}
    if model == "gnn":
        info["k"] = m.k
    else:
        info["tau"] = m.tau
    out.attrs["info"] = info
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            out.to_csv(tmp, index=False, compression="gzip")
        path.with_suffix("").with_suffix(".json").write_text(json.dumps(info, indent=1))
    return out


def load_runs(folder: Path = RECORDS) -> pd.DataFrame:
    """Every archived run's test predictions, one table (empty when there are none)."""
    files = sorted(Path(folder).glob("*_s*.csv.gz"))
    return pd.concat([pd.read_csv(f) for f in files], ignore_index=True) if files else pd.DataFrame(
        columns=["battery_id", "ion", "system", "model", "split", "seed", "voltage", "sigma", "reference", "base"])


# ----------------------------------------------------------------------------------------------
# statistics
# ----------------------------------------------------------------------------------------------


def summary(runs: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """One row per (model, split, ion incl. ``all``): seeds, n (test rows pooled over seeds), MAE with its
    system-bootstrap interval, the base potential's MAE on the same rows, the paired difference model − base with
    its interval (``gain``, ``gain_ci_low``, ``gain_ci_high``; negative: the model is closer to MP), and the
    coverage of 1 σ_V averaged over the seeds."""
    rows = []
    for (model, kind), g in runs.groupby(["model", "split"], sort=True):
        for ion in ["all", *g["ion"].value_counts().index]:
            s = g if ion == "all" else g[g["ion"] == ion]
            ok = s["voltage"].notna() & s["reference"].notna()
            s = s[ok]
            if not len(s):
                continue
            err = (s["voltage"] - s["reference"]).abs().to_numpy()
            lo, hi = bootstrap_mae(err, s["system"].to_numpy(), seed=seed)
            base_err = (s["base"] - s["reference"]).to_numpy()
            d = paired_difference(err, base_err, s["system"].to_numpy(), seed=seed)
            cover = [float(np.mean(np.abs(x["voltage"] - x["reference"]) <= x["sigma"]))
                     for _, x in s.groupby("seed") if x["sigma"].notna().any()]
            rows.append({"model": model, "split": kind, "ion": ion, "seeds": int(s["seed"].nunique()), "n": len(s),
                         "systems": int(s["system"].nunique()), "mae": float(err.mean()), "ci_low": lo, "ci_high": hi,
                         "base_mae": float(np.nanmean(np.abs(base_err))) if np.isfinite(base_err).any() else math.nan,
                         "gain": d["diff"], "gain_ci_low": d["ci_low"], "gain_ci_high": d["ci_high"],
                         "coverage_1sigma_mean": float(np.mean(cover)) if cover else math.nan})
    return pd.DataFrame(rows)


def bench_lines(runs: pd.DataFrame) -> list[tuple[str, float, str, dict]]:
    """The bench's lines (name, value, unit, extra) from :func:`summary`: ``voltage_<model>_mae_<ion>_vs_mp_<split>``
    with ``_ci_low`` / ``_ci_high``, ``voltage_base_mae_<ion>_vs_mp_<split>_<model>`` (the potential on the same
    pairs), ``voltage_<model>_gain_<ion>_<split>`` with ``_ci_low`` / ``_ci_high`` (MAE(model) − MAE(base)) and
    ``voltage_<model>_coverage_1sigma_mean_<split>``."""
    out = []
    for r in summary(runs).itertuples(index=False):
        tag, extra = f"{r.ion}_vs_mp_{r.split}", {"n": r.n, "seeds": r.seeds, "systems": r.systems}
        out += [(f"voltage_{r.model}_mae_{tag}", r.mae, "V", extra),
                (f"voltage_{r.model}_mae_{tag}_ci_low", r.ci_low, "V", {}),
                (f"voltage_{r.model}_mae_{tag}_ci_high", r.ci_high, "V", {}),
                (f"voltage_base_mae_{tag}_{r.model}", r.base_mae, "V", {"potential": POTENTIAL}),
                (f"voltage_{r.model}_gain_{r.ion}_{r.split}", r.gain, "V", {}),
                (f"voltage_{r.model}_gain_ci_low_{r.ion}_{r.split}", r.gain_ci_low, "V", {}),
                (f"voltage_{r.model}_gain_ci_high_{r.ion}_{r.split}", r.gain_ci_high, "V", {})]
        if r.ion == "all":
            out.append((f"voltage_{r.model}_coverage_1sigma_mean_{r.split}", r.coverage_1sigma_mean, "",
                        {"goal": "0.63-0.73", "seeds": r.seeds}))
    return out


__all__ = ["MODELS", "SPLITS", "RECORDS", "voltage_pairs", "read_ids", "exclusion", "split", "run", "load_runs",
           "summary", "bench_lines", "record_path", "routes_on_tests", "ship", "write_card"]


def routes_on_tests(runs: pd.DataFrame, long: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """Every route of the electrode benchmark's long table (:func:`lib.cathodes.routes.all_routes`: constant, GNN
    formation-energy route, each potential's static voltage ...) and every voltage model, on the **same** test
    rows: per split kind, the rows (pair, seed) that every model of ``runs`` has, each route's MAE there with its
    interval (``route``, ``split``, ``ion``, ``n``, ``mae``, ``ci_low``, ``ci_high``)."""
    rows = []
    wide_routes = long.pivot_table(index="battery_id", columns="route", values="voltage", aggfunc="first")
    for kind, g in runs.groupby("split"):
        w = g.pivot_table(index=["battery_id", "seed"], columns="model", values="voltage", aggfunc="first")
        w = w.dropna().reset_index()
        meta = g.drop_duplicates(["battery_id", "seed"]).set_index(["battery_id", "seed"])
        w = w.join(meta[["ion", "system", "reference"]], on=["battery_id", "seed"])
        columns = [(f"voltage_{m}", w[m]) for m in MODELS if m in w]  # the models' own rows (their seeds)
        columns += [(r, wide_routes[r].reindex(w["battery_id"])) for r in wide_routes.columns]
        for route, values in columns:
            v = np.asarray(values, float)
            for ion in ["all", *w["ion"].value_counts().index]:
                m = np.isfinite(v) & ((w["ion"] == ion).to_numpy() if ion != "all" else True)
                if not m.any():
                    continue
                e = np.abs(v[m] - w["reference"].to_numpy(float)[m])
                lo, hi = bootstrap_mae(e, w["system"].to_numpy()[m], seed=seed)
                rows.append({"route": route, "split": kind, "ion": ion,
                             "n": int(m.sum()), "of": int((w["ion"] == ion).sum()) if ion != "all" else len(w),
                             "mae": float(e.mean()), "ci_low": lo, "ci_high": hi})
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------------------------
# shipping
# ----------------------------------------------------------------------------------------------

GNN_FOLDER = ROOT / "pretrained" / "voltage_gnn"
TRAINING_IDS = "training_battery_ids.txt"


def shipped_folder(model: str) -> Path:
    """Where the shipped model of a kind lives: ``pretrained/voltage_<potential>_delta/`` or
    ``pretrained/voltage_gnn/``."""
    from lib.cathodes.voltage_model import shipped_folder as delta_folder

    return delta_folder(POTENTIAL) if model == "delta" else GNN_FOLDER


def _card_md(model: str, card: dict) -> str:
    s = pd.DataFrame(card["splits"])
    lines = [f"# Voltage model: {card['title']}", "", card["what"], "",
             f"Trained on {card['data']['train']:,} of MP's {card['data']['pairs']:,} insertion pairs "
             f"({card['data']['excluded']} kept out; ids in `{TRAINING_IDS}`); "
             f"{card['data'].get('val', 0)} validation pairs. Training: {card['training']['seconds']:.0f} s at "
             f"{card['training']['threads']} thread(s). σ_V: {card['sigma']['rule']}.", "",
             "Test MAE vs MP (V), pooled over the seeds of each split kind (95 % interval: chemical systems "
             "resampled); `base`: the potential's static voltage on the same pairs; `gain`: MAE(model) − MAE(base).",
             "", "| split | ion | seeds | n | MAE [95 %] | base | gain [95 %] | coverage 1σ |", "|---|---|---|---|---|---|---|---|"]
    for r in s.itertuples(index=False):
        lines.append(f"| {r.split} | {r.ion} | {r.seeds} | {r.n} | {r.mae:.3f} [{r.ci_low:.3f}, {r.ci_high:.3f}] | "
                     f"{r.base_mae:.3f} | {r.gain:+.3f} [{r.gain_ci_low:+.3f}, {r.gain_ci_high:+.3f}] | "
                     + (f"{r.coverage_1sigma_mean:.3f} |" if r.ion == "all" else " |"))
    if s.empty:
        lines.append("| no split run archived yet | | | | | | | |")
    lines += ["", "Regenerate: `python -m lib.cathodes.voltage_eval run --model " + model + "` then `ship --model "
              + model + "` (docs/voltage_model.md)."]
    return "\n".join(lines) + "\n"


def ship(model: str, pairs: pd.DataFrame | None = None, excluded: np.ndarray | None = None,
         epochs: int | None = None, progress: bool = True) -> Path:
    """Train ``model`` on every usable pair not ``excluded`` and write it with its card (data, the archived
    splits' MAEs per ion with intervals, σ calibration, training time) and its training battery ids. The GNN
    keeps 10 % of the systems for validation (early stopping and σ_V); the correction's σ_V comes from grouped
    out-of-fold errors. For the card's test: the grouped seed-0 split model goes beside it (``grouped_s0/``)."""
    pairs = voltage_pairs() if pairs is None else pairs
    usable = pairs["avg_voltage"].notna() & (pairs[BASE].notna() if model == "delta" else True)
    out_mask = (np.zeros(len(pairs), bool) if excluded is None else np.asarray(excluded)) | ~usable.to_numpy()
    folder = shipped_folder(model)
    folder.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    keep = np.flatnonzero(~out_mask)
    if model == "delta":
        m = VoltageModel.fit(pairs.iloc[keep], seed=0, potential=POTENTIAL)
        m.save(folder / "model.json")
        train_ids, n_val = pairs["battery_id"].iloc[keep], 0
        sigma = {"tau": m.tau, "rule": f"sqrt(spread² + τ²), τ = {m.tau:.3f} V from grouped 5-fold out-of-fold "
                 "errors of the training pairs"}
        s0 = split(pairs, "grouped", 0, ~usable.to_numpy())  # the split model the card's test recomputes
        VoltageModel.fit(pairs.iloc[np.concatenate([s0["train"], s0["val"]])], seed=0, potential=POTENTIAL).save(
            _mkdir(folder / "grouped_s0") / "model.json")
    else:
        sp = split(pairs, "grouped", 0, out_mask)
        train = np.concatenate([sp["train"], sp["test"]])  # every system but the validation ones
        cfg = voltage_gnn.GNNConfig(**({"epochs": epochs} if epochs else {}))
        m = voltage_gnn.fit(pairs, train, sp["val"], cfg, folder=_mkdir(RUNS / "gnn_shipped"), progress=progress)
        m.save(folder)
        # the grouped seed-0 split model, rebuilt from its finished run (its state holds the best weights)
        s0 = split(pairs, "grouped", 0, ~usable.to_numpy())
        voltage_gnn.fit(pairs, s0["train"], s0["val"], cfg, folder=RUNS / "gnn_grouped_s0").save(
            _mkdir(folder / "grouped_s0"))
        train_ids, n_val = pairs["battery_id"].iloc[train], len(sp["val"])
        sigma = {"k": m.k, "rule": f"k · b, the Laplace scale b of the scale head times k = {m.k:.3f}, set so that "
                 "68.3 % of the validation errors are within 1 σ_V"}
    seconds = time.perf_counter() - t0
    (folder / TRAINING_IDS).write_text("\n".join(sorted(train_ids)) + "\n")
    card = {"model": model, "potential": POTENTIAL if model == "delta" else None,
            "title": {"delta": f"{POTENTIAL} static voltage + gradient-boosted correction",
                      "gnn": "CGCNN on both states of a pair"}[model],
            "what": {"delta": "V = V_static(" + POTENTIAL + ") + Δ(pair features); lib.cathodes.correction.",
                     "gnn": "V = head(f(discharged), f(charged), their difference, ion, ion contents), f a CGCNN "
                            "encoder trained from scratch on MP's pair voltages; lib.cathodes.voltage_gnn."}[model],
            "data": {"pairs": len(pairs), "train": len(train_ids), "val": n_val, "excluded": int(out_mask.sum()),
                     "unusable": int((~usable).sum())},
            "training": {"seconds": round(seconds, 1), "threads": torch.get_num_threads(), "info": {
                k: v for k, v in (m.info or {}).items() if k != "history"}},
            "sigma": sigma}
    return write_card(model, card)


def write_card(model: str, card: dict | None = None) -> Path:
    """(Re)write the shipped model's card with the archived splits' statistics as they are now (``card``: the
    rest of it; default: the card already there), so runs that finish after the model was shipped join it."""
    folder = shipped_folder(model)
    card = dict(card if card is not None else json.loads((folder / "card.json").read_text()))
    runs = load_runs()
    runs = runs[runs["model"] == model]
    s = summary(runs) if len(runs) else pd.DataFrame()
    s0 = runs[(runs["split"] == "grouped") & (runs["seed"] == 0)]
    card["splits"] = s.to_dict("records")
    card["split_model"] = {"folder": "grouped_s0", "split": "grouped", "seed": 0,
                           "test_battery_ids": sorted(s0["battery_id"]),
                           "test_mae": {ion: float((g["voltage"] - g["reference"]).abs().mean())
                                        for ion, g in [("all", s0), *s0.groupby("ion")]} if len(s0) else {}}
    (folder / "card.json").write_text(json.dumps(card, indent=1, default=float))
    (folder / "card.md").write_text(_card_md(model, card))
    return folder


def _mkdir(p: Path) -> Path:
    p.mkdir(parents=True, exist_ok=True)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m lib.cathodes.voltage_eval run --model gnn --split grouped --seeds 0 1 2 3 4``: train and
    archive the splits' runs (resumable); ``summary``: the table of every archived run; ``ship --model
    {delta,gnn}``: train on every pair not excluded and write ``pretrained/`` with its card."""
    ap = argparse.ArgumentParser(prog="python -m lib.cathodes.voltage_eval", description=main.__doc__)
    ap.add_argument("action", choices=("run", "summary", "ship", "card"))
    ap.add_argument("--model", choices=MODELS, default="delta")
    ap.add_argument("--split", choices=SPLITS, nargs="+", default=list(SPLITS))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--exclude", help="a file of battery ids (one per line) kept out of training and validation")
    ap.add_argument("--exclude-systems", action="store_true",
                    help="with --exclude: also every pair of the same framework chemical system")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--epochs", type=int, default=None, help="GNN epochs (default: GNNConfig's)")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    if a.action == "summary":
        print(summary(load_runs()).round(3).to_string(index=False))
        return 0
    if a.action == "card":
        print(f"written to {write_card(a.model)}")
        return 0
    pairs = voltage_pairs()
    excluded = exclusion(pairs, read_ids(a.exclude), a.exclude_systems) if a.exclude else None
    if excluded is not None:
        print(f"{int(excluded.sum())} pairs kept out of training and validation", flush=True)
    if a.action == "run":
        for kind in a.split:
            for seed in a.seeds:
                cfg = voltage_gnn.GNNConfig(seed=seed, **({"epochs": a.epochs} if a.epochs else {}))
                t = run(a.model, kind, seed, pairs, excluded, progress=True, cfg=cfg,
                        records=RECORDS if excluded is None else None)
                e = (t["voltage"] - t["reference"]).abs()
                print(f"{a.model} {kind} seed {seed}: test MAE {e.mean():.3f} V on {len(t)} pairs "
                      f"(base {(t['base'] - t['reference']).abs().mean():.3f} V)", flush=True)
        return 0
    folder = ship(a.model, pairs, excluded, epochs=a.epochs)
    print(f"written to {folder}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
