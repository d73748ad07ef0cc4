"""Training and shipping the voltage model (:mod:`lib.cathodes.voltage_model`): the benchmark pairs with every
route's voltage, the fit on a grouped or random split, the comparison on its test pairs, the card.

``python -m lib.cathodes.voltage_train ship [--potential NAME]`` rewrites ``pretrained/voltage_<NAME>_delta/``
(model.json, card.json, card.md; default :data:`lib.cathodes.voltage_model.POTENTIAL`) and
``results/voltage_model_test.csv``; ``make bench BENCH=electrodes`` calls
:func:`train_and_compare` on both splits.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import pandas as pd

from lib.cathodes.voltage_model import (
    BASE,
    COVERAGE,
    POTENTIAL,
    VoltageModel,
    compare,
    grouped_split,
    random_split,
    shipped_folder,
)
from lib.paths import atomic_path


def benchmark_pairs(potential: str = POTENTIAL, gnn: bool = True, progress: bool = False) -> pd.DataFrame:
    """MP's insertion pairs whose two structures the mirror holds, with the DFT route, the static voltage of
    ``potential`` (``umlip_static_voltage``, the model's base) and of every known potential
    (``<name>_static_voltage``), and (``gnn``) the shipped formation-energy ensemble's; ``attrs["counts"]`` says
    how many pairs there are, and how many the mirror holds one or both ends of."""
    from lib import data
    from lib.cathodes import benchmark as eb
    from lib.cathodes import electrodes, potentials

    table = data.load_dataset("cgcnn", source="auto", progress=False, verbose=False)
    pairs = electrodes.read_pairs()
    ids = set(table["material_id"])
    dft = electrodes.pair_table(electrodes.match_pairs(pairs, table), progress=progress)
    t = eb.potential_pair_table(dft, potentials.get_potential(potential), relaxed=False, progress=progress)
    for name in potentials.POTENTIALS:  # every potential's static voltage on the same pairs, for the table
        other = eb.potential_pair_table(dft, potentials.get_potential(name), relaxed=False, prefix=f"{name}_static",
                                        progress=progress)
        t[f"{name}_static_voltage"] = other[f"{name}_static_voltage"].to_numpy()
    if gnn:
        from lib import pretrained

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


ROUTES = {"formation-energy GNN": "ml_voltage", "mirror DFT": "dft_voltage", "CHGNet static": "chgnet_static_voltage",
          "SevenNet static": "sevennet_static_voltage", "uMLIP relaxed": "umlip_relaxed_voltage"}


def train_and_compare(t: pd.DataFrame, split: str = "grouped", seed: int = 0, potential: str = POTENTIAL
                      ) -> tuple[VoltageModel, pd.DataFrame]:
    """Fit on the training pairs of a ``grouped`` or ``random`` split and compare every route on its test
    (``t`` from :func:`benchmark_pairs` of the same ``potential``)."""
    t = t[t[BASE].notna() & t["avg_voltage"].notna()].reset_index(drop=True)
    sp = grouped_split(t, seed) if split == "grouped" else random_split(t, seed)
    model = VoltageModel.fit(t.iloc[sp["train"]], seed=seed, potential=potential)
    res = compare(t, sp, model, ROUTES)
    res.attrs["split"] = {k: v.tolist() for k, v in sp.items()}
    res.attrs["test_ids"] = t.iloc[sp["test"]]["battery_id"].tolist()
    return model, res


def _card(model: VoltageModel, grouped: pd.DataFrame, random_: pd.DataFrame, counts: dict) -> dict:
    from lib.records import git_commit

    def table(res):
        return [{k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in r.items()}
                for r in res.drop(columns=[]).to_dict("records")]

    from lib.cathodes.potentials import get_potential

    test = grouped.attrs["test"]
    return {
        "format": "compendium-voltage-card/1", "name": shipped_folder(model.potential).name,
        "property": "avg_voltage", "unit": "V", "potential": model.potential,
        "what": f"MP's average insertion voltage of a charged/discharged pair: the universal potential's static "
                f"voltage ({get_potential(model.potential).name}, DFT-relaxed structures) + a Δ learned by "
                f"gradient-boosted trees",
        "data": {**counts, "used": int(model.info["n_train"]) + len(test), "train": int(model.info["n_train"]),
                 "test": len(test), "dropped": "pairs whose two structures the mirror lacks (charged states built "
                 "by removal and relaxation are not used in training)"},
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


def ship(folder: str | Path | None = None, progress: bool = True, potential: str = POTENTIAL) -> dict:
    """Retrain the model on ``potential`` on the grouped split (seed 0), write ``model.json``, ``card.json``,
    ``card.md`` (in ``pretrained/voltage_<potential>_delta/``) and the test table
    (``results/voltage_model_test.csv``); returns the card. (08_cathodes draws its parity plot.)"""
    from lib.paths import RESULTS

    folder = Path(folder) if folder is not None else shipped_folder(potential)
    t = benchmark_pairs(potential, progress=progress)
    model, grouped = train_and_compare(t, "grouped", potential=potential)
    _, random_ = train_and_compare(t, "random", potential=potential)
    card = _card(model, grouped, random_, t.attrs["counts"])
    folder.mkdir(parents=True, exist_ok=True)
    model.save(folder / "model.json")
    with atomic_path(folder / "card.json") as tmp:
        tmp.write_text(json.dumps(card, indent=1))
    (folder / "card.md").write_text(_card_md(card))
    test = grouped.attrs["test"]
    v, s = model.predict(test)
    test = test.assign(voltage_model=v, voltage_model_sigma=s)
    RESULTS.mkdir(parents=True, exist_ok=True)
    keep = ["battery_id", "ion", "formula_charged", "formula_discharged", "framework", "avg_voltage", "dft_voltage",
            "ml_voltage", "chgnet_static_voltage", "sevennet_static_voltage", "umlip_static_voltage", "voltage_model",
            "voltage_model_sigma"]
    test[[c for c in keep if c in test]].to_csv(RESULTS / "voltage_model_test.csv", index=False)
    return card


def main(argv: list[str] | None = None) -> int:
    """``python -m lib.cathodes.voltage_train ship``: retrain and rewrite the shipped voltage model."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m lib.cathodes.voltage_train", description=main.__doc__)
    from lib.cathodes.potentials import POTENTIALS

    ap.add_argument("action", choices=("ship",))
    ap.add_argument("--potential", default=POTENTIAL, choices=sorted(POTENTIALS), help="whose static voltage it "
                    "corrects")
    a = ap.parse_args(argv)
    card = ship(potential=a.potential)
    g = pd.DataFrame(card["test_grouped"])
    print(g.pivot_table(index="route", columns="ion", values="mae").round(3).to_string())
    print(f"written to {shipped_folder(a.potential)}")
    return 0


__all__ = ["benchmark_pairs", "train_and_compare", "ship", "ROUTES"]

if __name__ == "__main__":
    raise SystemExit(main())
