"""The voltage model of earlier rounds (2026-12-06), on the 451 pairs whose two structures the CGCNN mirror holds:
the benchmark pairs with every route's voltage, the fit on a grouped or random split, the comparison on its test
pairs, the card. The shipped models are :mod:`lib.cathodes.voltage_eval`'s, on all 4,401 pairs.

``python -m lib.cathodes.voltage_train ship [--potential NAME] [--with-built]`` writes
``results/voltage_<NAME>_delta_451/`` (model.json, card.json, card.md; default
:data:`lib.cathodes.correction.POTENTIAL`) and ``results/voltage_model_test.csv``; ``python -m bench
electrodes --legacy`` calls :func:`train_and_compare` on both splits. ``python -m lib.cathodes.voltage_train build``
relaxes the charged states of :func:`built_pairs` into the relaxation cache (resumable; a long run).
"""

from __future__ import annotations

import argparse
import json
import math
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from pymatgen.core import Composition
from pymatgen.transformations.standard_transformations import RemoveSpeciesTransformation

from lib import data, pretrained
from lib.cathodes import benchmark as eb
from lib.cathodes import electrodes, potentials
from lib.cathodes.correction import (
    BASE,
    COVERAGE,
    POTENTIAL,
    VoltageModel,
    compare,
    framework_groups,
    grouped_split,
    known_frameworks,
    random_split,
)
from lib.cathodes.potentials import POTENTIALS, get_potential
from lib.cathodes.relax import relax
from lib.cathodes.voltage_model import RELAXER, shipped_folder
from lib.paths import RESULTS, atomic_path
from lib.records import git_commit

#: the potentials whose static voltages the voltage model's tables show beside it (:data:`ROUTES`); every potential
#: of lib.cathodes.potentials.POTENTIALS is compared on all pairs by lib.cathodes.routes
COMPARED = ("chgnet", "sevennet")


def _static_voltages(matched: pd.DataFrame, potential: str, progress: bool) -> pd.DataFrame:
    """``matched`` with ``potential``'s static voltage (the model's base, ``umlip_static_*``) and every known
    potential's (``<name>_static_voltage``), on the same structures."""

    t = potentials.potential_pair_table(matched, potentials.get_potential(potential), relaxed=False, progress=progress)
    for name in COMPARED:
        other = potentials.potential_pair_table(matched, potentials.get_potential(name), relaxed=False,
                                        prefix=f"{name}_static", progress=progress)
        t[f"{name}_static_voltage"] = other[f"{name}_static_voltage"].to_numpy()
    return t


def benchmark_pairs(potential: str = POTENTIAL, gnn: bool = True, progress: bool = False) -> pd.DataFrame:
    """MP's insertion pairs whose two structures the mirror holds, with the DFT route, the static voltage of
    ``potential`` (``umlip_static_voltage``, the model's base) and of every known potential
    (``<name>_static_voltage``), and (``gnn``) the shipped formation-energy ensemble's; ``attrs["counts"]`` says
    how many pairs there are, and how many the mirror holds one or both ends of."""

    table = data.load_dataset("cgcnn", source="auto", progress=False, verbose=False)
    pairs = electrodes.read_pairs()
    ids = set(table["material_id"])
    dft = electrodes.pair_table(electrodes.match_pairs(pairs, table), progress=progress)
    t = _static_voltages(dft, potential, progress)
    if gnn:

        paths = [str(p) for p in pretrained.checkpoints(eb.ENERGY)]
        predict = eb.checkpoint_predictor(paths, require=set(dft["high_mpid"]) | set(dft["low_mpid"]))
        t = t.join(eb.ml_pair_table(dft, predict, progress=progress)[["ml_voltage"]])
    t.attrs["counts"] = {
        "mp_pairs": len(pairs), "discharged_in_mirror": int(pairs["low_mpid"].isin(ids).sum()),
        "charged_in_mirror": int(pairs["high_mpid"].isin(ids).sum()),
        "both_in_mirror": int((pairs["low_mpid"].isin(ids) & pairs["high_mpid"].isin(ids)).sum()),
        "computed": int(t[BASE].notna().sum()),
    }
    return t


def built_pairs(potential: str = POTENTIAL, relaxer: str = RELAXER, limit: int | None = None,
                progress: bool = False, relax_only: bool = False, **relax_kwargs) -> pd.DataFrame:
    """MP's insertion pairs whose discharged structure the mirror holds but not the charged one, where MP's
    charged state holds none of the ion (337 of the 581 discharged-only pairs, 203 of them Li): the charged
    state built by removing every ion from the discharged structure and relaxed with ``relaxer``
    (:func:`lib.cathodes.relax.relax`, cached: a killed run resumes), then every potential's static voltage on
    (built charged state, the mirror's DFT-relaxed discharged state) as in :func:`benchmark_pairs`; ``built``
    True, ``mp_charged_id`` MP's id of the charged state (not in the mirror), ``high_mpid`` the built one's
    (``<discharged id> minus <ion>``). Dropped, and counted in ``attrs["counts"]``: a built framework that is not
    MP's charged formula, a relaxation that failed or did not converge. ``limit``: the first ``limit``
    candidates (Li first, then by battery id). ``relax_only``: relax, return the relaxations' statuses only."""


    table = data.load_dataset("cgcnn", source="auto", progress=False, verbose=False)
    t = table.drop_duplicates("material_id").set_index("material_id")
    have = set(t.index[t[eb.ENERGY].notna()])
    pairs = electrodes.read_pairs()
    cand = pairs[pairs["low_mpid"].isin(have) & ~pairs["high_mpid"].isin(have)].copy()
    cand = cand[[ion not in {e.symbol for e in Composition(f).elements}
                 for ion, f in zip(cand["ion"], cand["high_formula"], strict=True)]]
    cand = cand.assign(_li=cand["ion"].ne("Li")).sort_values(["_li", "battery_id"]).drop(columns="_li")
    counts = {"discharged_only": int((pairs["low_mpid"].isin(have) & ~pairs["high_mpid"].isin(have)).sum()),
              "charged_without_ion": len(cand)}
    if limit is not None:
        cand = cand.head(limit)
    disc = [t.loc[i, "structure"] for i in cand["low_mpid"]]
    hosts = [RemoveSpeciesTransformation([ion]).apply_transformation(d.to_structure())
             for d, ion in zip(disc, cand["ion"], strict=True)]
    same = [h.composition.reduced_formula == Composition(f).reduced_formula
            for h, f in zip(hosts, cand["high_formula"], strict=True)]
    counts["framework_differs"] = int(len(same) - sum(same))
    keep = np.flatnonzero(same)
    cand = cand.iloc[keep].reset_index(drop=True)
    disc, hosts = [disc[k] for k in keep], [hosts[k] for k in keep]
    ids = [f"{i} minus {ion}" for i, ion in zip(cand["low_mpid"], cand["ion"], strict=True)]
    rs = relax(potentials.get_potential(relaxer), hosts, ids=ids, progress=progress, **relax_kwargs)
    ok = np.array([r.ok for r in rs], bool)
    counts["relaxation_not_used"] = int((~ok).sum())
    if relax_only:
        out = cand.assign(built_id=ids, status=[r.status for r in rs], reason=[r.reason for r in rs])
        out.attrs["counts"] = counts
        return out
    cand = cand[ok].reset_index(drop=True)
    matched = cand.assign(
        mp_charged_id=cand["high_mpid"], high_mpid=[i for i, k in zip(ids, ok, strict=True) if k],
        charged=[r.structure for r in rs if r.ok],
        discharged=[d for d, k in zip(disc, ok, strict=True) if k], built=True)
    matched["ef_discharged"] = t.loc[matched["low_mpid"], eb.ENERGY].to_numpy(float)
    matched["formula_charged"] = [c.formula for c in matched["charged"]]
    matched["formula_discharged"] = [d.formula for d in matched["discharged"]]
    out = _static_voltages(matched, potential, progress)
    counts["used"] = int(out[BASE].notna().sum())
    out.attrs["counts"] = counts
    return out


ROUTES = {"formation-energy GNN": "ml_voltage", "mirror DFT": "dft_voltage", "CHGNet static": "chgnet_static_voltage",
          "SevenNet static": "sevennet_static_voltage", "uMLIP relaxed": "umlip_relaxed_voltage"}


def built_for_training(built: pd.DataFrame | None, test: pd.DataFrame, grouped: bool = True) -> pd.DataFrame:
    """The built pairs (:func:`built_pairs`) a model may train on beside ``test``: those with a base voltage
    and a label, and (``grouped``) whose framework's chemical system no test pair shares."""
    if built is None or not len(built):
        return pd.DataFrame()
    b = built[built[BASE].notna() & built["avg_voltage"].notna()]
    if grouped:
        b = b[~framework_groups(b).isin(set(framework_groups(test)))]
    return b


def train_and_compare(t: pd.DataFrame, split: str = "grouped", seed: int = 0, potential: str = POTENTIAL,
                      built: pd.DataFrame | None = None) -> tuple[VoltageModel, pd.DataFrame]:
    """Fit on the training pairs of a ``grouped`` or ``random`` split and compare every route on its test
    (``t`` from :func:`benchmark_pairs` of the same ``potential``). ``built`` (:func:`built_pairs`): pairs with a
    built charged state added to training only, never to test; on the grouped split only those whose
    framework's chemical system no test pair shares (``attrs["built_used"]`` counts them)."""
    t = t[t[BASE].notna() & t["avg_voltage"].notna()].reset_index(drop=True)
    sp = grouped_split(t, seed) if split == "grouped" else random_split(t, seed)
    train = t.iloc[sp["train"]]
    b = built_for_training(built, t.iloc[sp["test"]], grouped=split == "grouped")
    n_built = len(b)
    if n_built:
        train = pd.concat([train, b], ignore_index=True)
    model = VoltageModel.fit(train, seed=seed, potential=potential)
    model.info["n_built"] = n_built
    res = compare(t, sp, model, ROUTES)
    res.attrs["split"] = {k: v.tolist() for k, v in sp.items()}
    res.attrs["test_ids"] = t.iloc[sp["test"]]["battery_id"].tolist()
    res.attrs["built_used"] = n_built
    return model, res


def over_splits(t: pd.DataFrame, seeds=range(10), split: str = "grouped", potential: str = POTENTIAL,
                built: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per split seed: τ, the share of test errors within 1 σ_V (all test pairs; those of the known
    cathodes' chemical systems, which every grouped split puts in test; the others, drawn by the seed) and
    within 2 σ_V (all; heavy tails show as less than a Gaussian's 95.4 %), and the
    voltage model's and its base's Li MAE on that seed's test pairs (:func:`train_and_compare`): how much one
    split's coverage says. Seed 0 is the shipped model's split."""
    known = known_frameworks()
    rows = []
    for seed in seeds:
        model, res = train_and_compare(t, split, seed, potential, built)
        test = res.attrs["test"]
        err = (test["voltage_model"] - test["avg_voltage"]).abs()
        inside = err <= test["voltage_model_sigma"]
        is_known = framework_groups(test).isin(known)
        rows.append({"seed": seed, "split": split, "n_test": len(res.attrs["test_ids"]), "tau": model.tau,
                     "coverage_1sigma": res.attrs["coverage_1sigma"],
                     "coverage_2sigma": float((err <= 2 * test["voltage_model_sigma"]).mean()),
                     "n_known": int(is_known.sum()),
                     "coverage_known": float(inside[is_known].mean()) if is_known.any() else math.nan,
                     "coverage_drawn": float(inside[~is_known].mean()) if (~is_known).any() else math.nan,
                     "built_used": res.attrs["built_used"],
                     "voltage_model_li": _li(res, "voltage model"), "base_li": _li(res, _base_label(potential))})
    return pd.DataFrame(rows)


def _base_label(potential: str) -> str:
    """The ROUTES label of ``potential``'s static voltage."""
    return next((k for k, v in ROUTES.items() if v == f"{potential}_static_voltage"), potential)


def _card(model: VoltageModel, grouped: pd.DataFrame, random_: pd.DataFrame, counts: dict) -> dict:

    def table(res):
        return [{k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in r.items()}
                for r in res.drop(columns=[]).to_dict("records")]


    test = grouped.attrs["test"]
    return {
        "format": "compendium-voltage-card/1", "name": shipped_folder(model.potential).name,
        "property": "avg_voltage", "unit": "V", "potential": model.potential,
        "what": f"MP's average insertion voltage of a charged/discharged pair: the universal potential's static "
                f"voltage ({get_potential(model.potential).name}, DFT-relaxed structures) + a Δ learned by "
                f"gradient-boosted trees",
        "data": {**counts, "used": int(model.info["n_train"]) + len(test), "train": int(model.info["n_train"]),
                 "test": len(test), "dropped": "pairs whose two structures the mirror lacks" + (
                     f" (except {model.info.get('n_built')} with a charged state built by removal and relaxation, "
                     "in training only)" if model.info.get("n_built") else
                     " (charged states built by removal and relaxation are not used in training)")},
        "split": {"kind": "grouped by the framework's chemical system; the known cathodes' systems in test",
                  "seed": model.info["seed"], "test_battery_ids": grouped.attrs["test_ids"]},
        "test_grouped": table(grouped), "test_random": table(random_),
        "sigma": {"tau": model.tau, "calibrated_on": "grouped 5-fold out-of-fold errors of the training pairs",
                  "target_coverage": COVERAGE, "test_coverage_1sigma": grouped.attrs["coverage_1sigma"],
                  "random_split_coverage_1sigma": random_.attrs["coverage_1sigma"]},
        "model": model.info, "commit": git_commit(), "date": time.strftime("%Y-%m-%d"),
        "for": "ranking and screening insertion cathodes of known chemistries by voltage, with σ",
        "not_for": "conversion reactions, multi-step voltage profiles, ions or chemistries far from MP's "
                   "electrodes; pairs whose charged state was built (flagged) are outside its training",
    }


def _li(res: pd.DataFrame, route: str) -> float:
    row = res[(res.route == route) & (res.ion == "Li")]["mae"]
    return float(row.iloc[0]) if len(row) else math.nan


def _card_md(card: dict) -> str:
    g = pd.DataFrame(card["test_grouped"])
    r = pd.DataFrame(card["test_random"])
    piv = g.pivot_table(index="route", columns="ion", values="mae").round(3)
    lines = [f"# {card['name']}: {card['what']}", "",
             f"Trained on {card['data']['train']} pairs, tested on {card['data']['test']} whose framework's chemical "
             f"system no training pair shares ({card['split']['kind']}). MAE vs MP (V) on those test pairs:", "",
             piv.to_markdown(), "",
             f"Random split (what published models use), voltage model Li MAE "
             f"{_li(r, 'voltage model'):.3f} V, CHGNet static {_li(r, 'CHGNet static'):.3f} V, SevenNet static "
             f"{_li(r, 'SevenNet static'):.3f} V.", "",
             f"σ_V = sqrt(spread² + τ²), τ = {card['sigma']['tau']:.3f} V ({card['sigma']['calibrated_on']}); "
             f"{card['sigma']['test_coverage_1sigma']:.0%} of grouped test errors within 1 σ_V.", "",
             f"For: {card['for']}. Not for: {card['not_for']}.", "",
             f"Data: {card['data']}", "", f"Commit {card['commit']}, {card['date']}.", ""]
    return "\n".join(lines)


def ship(folder: str | Path | None = None, progress: bool = True, potential: str = POTENTIAL,
         with_built: bool = False) -> dict:
    """Retrain the model on ``potential`` on the grouped split (seed 0), write ``model.json``, ``card.json``,
    ``card.md`` (in ``pretrained/voltage_<potential>_delta/``) and the test table
    (``results/voltage_model_test.csv``); returns the card. (08_cathodes draws its parity plot.)"""

    # the shipped models are lib.cathodes.voltage_eval's (all 4,401 pairs): the 451-pair model of earlier rounds is
    # written beside the results, never over them
    folder = Path(folder) if folder is not None else RESULTS / f"voltage_{potential}_delta_451"
    t = benchmark_pairs(potential, progress=progress)
    built = built_pairs(potential, progress=progress) if with_built else None
    model, grouped = train_and_compare(t, "grouped", potential=potential, built=built)
    _, random_ = train_and_compare(t, "random", potential=potential, built=built)
    counts = dict(t.attrs["counts"])
    if built is not None:
        counts["built"] = {**built.attrs["counts"], "in_training": grouped.attrs["built_used"]}
    card = _card(model, grouped, random_, counts)
    folder.mkdir(parents=True, exist_ok=True)
    model.save(folder / "model.json")
    with atomic_path(folder / "card.json") as tmp:
        tmp.write_text(json.dumps(card, indent=1))
    (folder / "card.md").write_text(_card_md(card))
    test = grouped.attrs["test"]  # with the model's voltage and σ_V (compare)
    RESULTS.mkdir(parents=True, exist_ok=True)
    keep = ["battery_id", "ion", "formula_charged", "formula_discharged", "framework", "avg_voltage", "dft_voltage",
            "ml_voltage", "chgnet_static_voltage", "sevennet_static_voltage", "umlip_static_voltage", "voltage_model",
            "voltage_model_sigma"]
    test[[c for c in keep if c in test]].to_csv(RESULTS / "voltage_model_test.csv", index=False)
    return card


def main(argv: list[str] | None = None) -> int:
    """``python -m lib.cathodes.voltage_train ship``: retrain and rewrite the shipped voltage model; ``build``:
    relax the built pairs' charged states into the cache (resumable); ``coverage``: τ, σ coverage and MAE over
    ``--seeds`` splits of each kind (:func:`over_splits`; ~1 min a split on a free core)."""
    ap = argparse.ArgumentParser(prog="python -m lib.cathodes.voltage_train", description=main.__doc__)

    ap.add_argument("action", choices=("ship", "build", "coverage"))
    ap.add_argument("--potential", default=POTENTIAL, choices=sorted(POTENTIALS), help="whose static voltage it "
                    "corrects")
    ap.add_argument("--with-built", action="store_true", help="ship: train on the built pairs too (built_pairs)")
    ap.add_argument("--limit", type=int, default=None, help="build: the first N built pairs only")
    ap.add_argument("--device", default=None, help="build: the relaxer's device (default: CUDA when there is one)")
    ap.add_argument("--batch-size", type=int, default=48, help="build: structures relaxed at once")
    ap.add_argument("--seeds", type=int, default=10, help="coverage: split seeds 0..N-1")
    a = ap.parse_args(argv)
    if a.action in ("coverage", "build"):
        warnings.filterwarnings("ignore")  # scipy's logm accuracy notes, once per FIRE step, and sklearn's: noise
    if a.action == "coverage":
        t = benchmark_pairs(a.potential, gnn=False)
        built = built_pairs(a.potential) if a.with_built else None
        for split in ("grouped", "random"):
            d = over_splits(t, range(a.seeds), split, a.potential, built)
            print(d.round(4).to_string(index=False))
            c = d["coverage_1sigma"]
            print(f"{split}: coverage at 1 sigma {c.mean():.3f} +- {c.std(ddof=1):.3f} (mean +- sd over {len(d)} "
                  f"splits; {int(c.between(0.63, 0.73).sum())} within 0.63-0.73; the known cathodes' systems "
                  f"{d['coverage_known'].mean():.3f}, the drawn ones {d['coverage_drawn'].mean():.3f}; at 2 sigma "
                  f"{d['coverage_2sigma'].mean():.3f}, a Gaussian's 0.954); voltage "
                  f"model Li {d['voltage_model_li'].mean():.3f} V, its base {d['base_li'].mean():.3f} V")
        return 0
    if a.action == "build":

        pot = potentials.get_potential(RELAXER)
        if a.device:
            pot.device = a.device
        b = built_pairs(a.potential, limit=a.limit, progress=True, relax_only=True, batch_size=a.batch_size)
        print(f"{len(b)} built charged states relaxed with {pot.name}: {b['status'].value_counts().to_dict()}; "
              f"{b.attrs['counts']}")
        return 0
    card = ship(potential=a.potential, with_built=a.with_built)
    g = pd.DataFrame(card["test_grouped"])
    print(g.pivot_table(index="route", columns="ion", values="mae").round(3).to_string())
    print(f"written to {RESULTS / f'voltage_{a.potential}_delta_451'}")
    return 0


__all__ = ["benchmark_pairs", "built_pairs", "built_for_training", "train_and_compare", "over_splits", "ship",
           "ROUTES"]

if __name__ == "__main__":
    raise SystemExit(main())
