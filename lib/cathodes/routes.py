"""Every route to a voltage on every MP electrode pair: one long table, one row per pair and route.

A *route* is a way from two structures to a voltage, named as the bench prints it:

- ``constant``: each ion's median MP voltage (over the same pairs: the baseline any model must beat);
- ``dft``: the mirror's 2020 DFT formation energies, where the CGCNN file holds both ends;
- ``gnn``: the shipped CGCNN formation-energy ensemble (``pretrained/``), which held every structure of all
  4,401 pairs out of training and model selection (``lib.data.holdout``: ``electrodes``) — out of sample for
  the structures, not for their chemistry;
- ``umlip_static_<potential>``: a universal potential's static energies of MP's (DFT-relaxed) structures and
  its own relaxed metal of the ion (:data:`lib.cathodes.potentials.POTENTIALS`: ``chgnet``, ``sevennet``,
  ``sevennet_l3i5``, ``sevennet_mf0`` on MP's MP2020-corrected PBE(+U) scale; ``chgnet_r2scan``,
  ``sevennet_mf0_r2scan`` on uncorrected r2SCAN);
- ``umlip_relaxed_<potential>``: both ends and the metal relaxed with it (a sample: :func:`relaxed_sample`).

Every voltage goes through pymatgen's ``InsertionElectrode`` (:func:`lib.cathodes.electrodes.pair_table`). A
pair a route cannot judge keeps its row with ``voltage`` NaN and the reason in ``error`` (frameworks that
differ, an ion content that does not grow on discharge, an energy or relaxation that failed): counted, never
dropped.

**In sample.** The potentials were trained on MP's relaxations: MPtrj (CHGNet, SevenNet-0, -l3i5, -MF-0's PBE
head; MP's 2021 database) and MP's r2SCAN calculations (the r2SCAN heads), which hold most of these
structures. Their numbers against MP's voltages are therefore in-sample tests. MP's multivalent-cathode
calculations (``mvc-`` ids) are not materials of MP's main database, from which MPtrj was drawn: a pair with
an ``mvc-`` end (791 pairs, mostly Ca, Zn, Mg, Y, Al) has at least one structure the potentials did not see
(:func:`outside_training`; the bench reports them apart).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import torch

from lib.cathodes.benchmark import ml_pair_table
from lib.cathodes.electrodes import pair_table
from lib.cathodes.metrics import system_of
from lib.cathodes.potentials import POTENTIALS, get_potential, pair_crystals, potential_pair_table
from lib.cathodes.relax import relax
from lib.cathodes.voltage_model import predict_pairs
from lib.data.electrodes import load_electrode_pairs

#: the columns of a route table
COLUMNS = ("battery_id", "ion", "system", "route", "voltage", "reference", "error")


def _long(pairs: pd.DataFrame, route: str, voltage, error) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "battery_id": pairs["battery_id"].to_numpy(),
            "ion": pairs["ion"].to_numpy(),
            "system": systems(pairs),
            "route": route,
            "voltage": np.asarray(voltage, float),
            "reference": pairs["avg_voltage"].to_numpy(float),
            "error": np.asarray(error, dtype=object),
        }
    )


def systems(pairs: pd.DataFrame) -> np.ndarray:
    """The framework chemical system of every pair (:func:`lib.cathodes.metrics.system_of`)."""
    if "system" in pairs.columns:
        return pairs["system"].to_numpy()
    return np.array([system_of(f, ion) for f, ion in zip(pairs["low_formula"], pairs["ion"], strict=True)])


def outside_training(pairs: pd.DataFrame) -> np.ndarray:
    """Pairs with an end member from MP's multivalent-cathode calculations (``mvc-``), outside MPtrj (module
    docstring)."""
    return (pairs["high_mpid"].str.startswith("mvc-") | pairs["low_mpid"].str.startswith("mvc-")).to_numpy()


def constant_route(pairs: pd.DataFrame) -> pd.DataFrame:
    """Each ion's median MP voltage over ``pairs``."""
    v = pairs.groupby("ion")["avg_voltage"].transform("median")
    return _long(pairs, "constant", v, [""] * len(pairs))


def _from_table(pairs: pd.DataFrame, t: pd.DataFrame, route: str, prefix: str) -> pd.DataFrame:
    err = t[f"{prefix}_error"].fillna("").to_numpy(dtype=object)
    return _long(pairs, route, t[f"{prefix}_voltage"], err)


def dft_route(pairs: pd.DataFrame, progress: bool = False) -> pd.DataFrame:
    """The mirror's DFT formation energies; pairs without both ends in the CGCNN file say so."""
    have = pairs["ef_charged"].notna() & pairs["ef_discharged"].notna()
    t = pair_table(pairs[have], prefix="dft", progress=progress)
    out = _long(pairs, "dft", np.nan, "no DFT energy of both ends in the mirror")
    idx = np.flatnonzero(have.to_numpy())
    out.loc[idx, "voltage"] = t["dft_voltage"].to_numpy(float)
    out.loc[idx, "error"] = t["dft_error"].fillna("").to_numpy(dtype=object)
    return out


def gnn_route(pairs: pd.DataFrame, predict: Callable, progress: bool = False) -> pd.DataFrame:
    """Formation energies from ``predict(crystals) -> (mean, std or None)`` (eV/atom), e.g. the shipped
    ensemble."""
    t = ml_pair_table(pairs, predict, prefix="gnn", progress=progress)
    out = _from_table(pairs, t, "gnn", "gnn")
    out["sigma"] = t["gnn_voltage_std"].to_numpy(float)
    return out


def static_route(
    pairs: pd.DataFrame, model, name: str, progress: bool = False, cached_only: bool = False
) -> pd.DataFrame:
    """A potential's static energies (cached with its relaxations; only the missing ones are computed, or
    none:
    ``cached_only``, and a pair whose energies are not cached yet says so)."""
    t = potential_pair_table(
        pairs, model, relaxed=False, prefix="umlip_static", progress=progress, cached_only=cached_only
    )
    return _from_table(pairs, t, f"umlip_static_{name}", "umlip_static")


def relaxed_route(
    pairs: pd.DataFrame, model, name: str, progress: bool = False, **relax_kwargs
) -> pd.DataFrame:
    """Both ends relaxed with the potential (cached and archived; a pair whose either end did not converge
    says
    why)."""
    t = potential_pair_table(
        pairs, model, relaxed=True, prefix="umlip_relaxed", progress=progress, **relax_kwargs
    )
    return _from_table(pairs, t, f"umlip_relaxed_{name}", "umlip_relaxed")


def voltage_model_route(pairs: pd.DataFrame, model=None, card: dict | None = None,
                        trained_ids: set[str] | None = None) -> pd.DataFrame:
    """The shipped voltage model (:mod:`lib.cathodes.voltage_model`: its potential's static voltage + the learned
    correction) as a route, ``voltage_model``, with its σ_V in ``sigma``; ``model`` default: the shipped one.
    The pairs it was trained on get no voltage and say so (on them it is in sample): ``trained_ids`` (default,
    for the shipped model or with its ``card``: its ``training_battery_ids.txt``); a ``card`` of the older form (trained on the pairs with
    both ends in the CGCNN mirror but its test ids) says the same without that file."""
    from lib.cathodes.voltage_model import training_ids

    t = predict_pairs(pairs[["ion", "charged", "discharged", "high_mpid", "low_mpid", "avg_voltage"]], model)
    v = t["voltage_model"].to_numpy(float)
    err = np.where(np.isnan(v), t["umlip_static_error"].fillna("").replace("", "no base voltage"), "")
    if trained_ids is None and (model is None or card is not None):  # the shipped model: its own list, if any
        trained_ids = training_ids()
    if trained_ids is not None:
        trained = pairs["battery_id"].isin(trained_ids).to_numpy()
    elif card is not None and "split" in card and "test_battery_ids" in card["split"] and "source_charged" in pairs:
        both = (
            pairs["source_charged"].eq("mp_cgcnn_2020") & pairs["source_discharged"].eq("mp_cgcnn_2020")
        ).to_numpy()
        trained = both & ~pairs["battery_id"].isin(card["split"]["test_battery_ids"]).to_numpy()
    else:
        trained = np.zeros(len(pairs), bool)
    v = np.where(trained, np.nan, v)
    err = np.where(trained, "in the voltage model's training (in sample)", err)
    out = _long(pairs, "voltage_model", v, err)
    out["sigma"] = t["voltage_model_sigma"].to_numpy(float)
    return out


def subset(pairs: pd.DataFrame, n: int | None, seed: int = 0) -> pd.DataFrame:
    """A seeded random subset of ``n`` pairs (all of them for None or n ≥ len), in the table's order."""
    if n is None or n >= len(pairs):
        return pairs
    return pairs.iloc[np.sort(np.random.default_rng(seed).choice(len(pairs), n, replace=False))].reset_index(
        drop=True
    )


def relaxed_sample(
    pairs: pd.DataFrame, n_li: int = 400, n_other: int = 50, min_pairs: int = 100, seed: int = 0
) -> pd.DataFrame:
    """A stratified random sample for relaxations: ``n_li`` Li pairs and ``n_other`` of every other ion with
    at least ``min_pairs`` pairs (all of an ion with fewer than asked), drawn with ``seed``; ordered so that
    any
    prefix of it is itself spread over the ions (a partial run is still a stratified sample)."""
    rng = np.random.default_rng(seed)
    counts = pairs["ion"].value_counts()
    parts = []
    for ion, n in counts.items():
        want = n_li if ion == "Li" else (n_other if n >= min_pairs else 0)
        if want:
            idx = rng.permutation(np.flatnonzero(pairs["ion"].eq(ion).to_numpy()))[: min(want, n)]
            parts.append(pd.DataFrame({"row": idx, "rank": np.arange(len(idx)) / want}))
    order = pd.concat(parts).sort_values(["rank", "row"], kind="stable")["row"].to_numpy()
    return pairs.iloc[order].reset_index(drop=True)


def route_table(parts: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """The routes' long tables as one (a route may cover a subset of the pairs: the relaxed sample)."""
    return pd.concat(list(parts), ignore_index=True)


def all_routes(
    pairs: pd.DataFrame,
    potentials: Sequence[str] = (),
    relaxed: Sequence[str] = (),
    predict=None,
    sample: pd.DataFrame | None = None,
    progress: bool = False,
    cached_only: bool = False,
    relax_cached_only: bool = True,
    **relax_kwargs,
) -> pd.DataFrame:
    """The long table of every route on ``pairs``: constant, DFT, the GNN (``predict``), each named
    potential's static voltages (:data:`lib.cathodes.potentials.POTENTIALS`), and the relaxed voltages of
    ``relaxed`` on ``sample`` (default :func:`relaxed_sample`). ``cached_only``: compute no static energy;
    ``relax_cached_only`` (default): relax nothing here (relaxations are hours: the CPU queue's job, ``python
    -m lib.cathodes.routes relax``); what the
    cache lacks is a pending pair."""
    parts = [constant_route(pairs), dft_route(pairs, progress)]
    if predict is not None:
        parts.append(gnn_route(pairs, predict, progress))
    parts += [static_route(pairs, get_potential(name), name, progress, cached_only) for name in potentials]
    if relaxed:
        sample = relaxed_sample(pairs) if sample is None else sample
        parts += [
            relaxed_route(
                sample, get_potential(name), name, progress, cached_only=relax_cached_only, **relax_kwargs
            )
            for name in relaxed
        ]
    return route_table(parts)


def best_routes(summary: pd.DataFrame, prefix: str = "umlip_static_", min_n: int = 20) -> dict[str, str]:
    """Per ion, the route of ``prefix`` with the lowest MAE (at least ``min_n`` pairs judged): the table the
    screen
    and ``lib.predict --voltage`` read their default potential from (:mod:`lib.cathodes.defaults`)."""
    s = summary[summary["route"].str.startswith(prefix) & (summary["n"] >= min_n)]
    s = s[s["ion"] != "all"]
    return {ion: g.sort_values("mae")["route"].iloc[0].removeprefix(prefix) for ion, g in s.groupby("ion")}


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m lib.cathodes.routes relax POTENTIAL [--li 400] [--other 50]``: relax both ends of the
    stratified sample of MP's pairs (:func:`relaxed_sample`; in its order, so a run stopped part-way leaves a
    stratified prefix) with the potential, cached as each finishes; ``python -m lib.cathodes.relax archive``
    keeps
    them."""
    ap = argparse.ArgumentParser(prog="python -m lib.cathodes.routes", description=main.__doc__)
    ap.add_argument("action", choices=("relax",))
    ap.add_argument("potential", choices=sorted(POTENTIALS))
    ap.add_argument("--li", type=int, default=400)
    ap.add_argument("--other", type=int, default=50)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=16)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    sample = relaxed_sample(load_electrode_pairs(), a.li, a.other)
    structures = pair_crystals(sample)
    ids = list(
        dict.fromkeys(i for pair in zip(sample["high_mpid"], sample["low_mpid"], strict=True) for i in pair)
    )
    model = POTENTIALS[a.potential](threads=a.threads)
    rs = relax(model, [structures[i] for i in ids], ids=ids, batch_size=a.batch_size)
    print(f"{a.potential}: {sum(r.ok for r in rs)} of {len(rs)} structures converged", flush=True)
    return 0


__all__ = [
    "COLUMNS",
    "systems",
    "outside_training",
    "constant_route",
    "dft_route",
    "gnn_route",
    "static_route",
    "relaxed_route",
    "voltage_model_route",
    "subset",
    "relaxed_sample",
    "route_table",
    "all_routes",
    "best_routes",
]

if __name__ == "__main__":
    raise SystemExit(main())
