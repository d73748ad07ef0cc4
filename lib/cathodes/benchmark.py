"""The electrode benchmark: DFT consistency, its outliers, and leak-free machine-learned voltages.

(a) **DFT consistency.** Voltages from the mirror's DFT formation energies (``lib.electrodes``) against
MP's ``avg_voltage`` for the pairs whose two structures the mirror holds: :func:`voltage_metrics` (MAE,
median absolute error, RMSE, fraction within 0.1 / 0.3 / 0.5 V, Spearman ρ; overall and per working ion)
and :func:`explain_outliers`, which checks each large deviation against the data: the mirror's structure
is another formula than the pairs file's; pymatgen's electrode hull drops a state; MP's 2024 formation
energies of the same ids (the mirror's ``mp_energy_2024.csv``) reproduce MP's voltage, i.e. the 2020
energies changed between releases (re-relaxations, corrections); a 2024 energy that is r2SCAN, not PBE.
A multi-step electrode is *not* a cause by itself: the average voltage between the two end members is
the Δx-weighted mean of the steps, which telescopes to the end members' energies (a test checks this on
pymatgen). :func:`voltage_metrics` is the one place the numbers are computed.

(b) **Machine-learned voltages.** Any formation-energy predictor ``predict(crystals) -> (mean, std or
None)`` (eV/atom per structure: one model or a seed ensemble, :func:`checkpoint_predictor`) gives the
voltages of the same pairs: :func:`ml_pair_table`, σ_V propagated from σ of the two energies.

(c) **Leak-free split.** :func:`group_split` puts every structure of the benchmark pairs (charged and
discharged; optionally every structure sharing a reduced formula with one) out of training and
validation; :func:`train_formation_models` trains CGCNN formation-energy models on it with
``lib.train.fit`` and records the held-out set's hash in each run record, so a checkpoint can be
checked for leaks before it is used (:func:`check_leak_free`).
"""

from __future__ import annotations

import argparse
import hashlib
import math
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from lib import pretrained
from lib.cathodes.electrodes import (
    PairGeometry,
    check_pair,
    composition_key,
    composition_keys,
    match_pairs,
    pair_table,
    read_pairs,
    voltages_from_energies,
)
from lib.cathodes.potentials import POTENTIALS, FormationEnergyModel, energy_model, pair_crystals
from lib.cathodes.relax import relax
from lib.cathodes.screen import ef_2024_by_id
from lib.data import load_dataset, target_frame
from lib.data import split as random_split
from lib.data.holdout import holdout_ids
from lib.graphs import build_graphs, cgcnn_params
from lib.models.cgcnn import CGCNN
from lib.paths import RESULTS, default_mirror
from lib.predictor import Predictor, open_checkpoint
from lib.profiles import get_profile
from lib.structures import Crystal
from lib.train import TrainConfig, fit, seed_everything

ENERGY = "formation_energy_per_atom"
RUNS_DIR = RESULTS / "electrodes" / "runs"  # not results/runs: 06_benchmark and the sweep read that one
THRESHOLDS = (0.1, 0.3, 0.5)  # V


# ----------------------------------------------------------------------------------------------
# (a) metrics and outliers
# ----------------------------------------------------------------------------------------------


def _metrics(pred: np.ndarray, ref: np.ndarray) -> dict:

    ok = np.isfinite(pred) & np.isfinite(ref)
    p, r = pred[ok], ref[ok]
    if not len(p):
        return {"n": 0}
    e = np.abs(p - r)
    out = {
        "n": int(len(p)),
        "mae": float(e.mean()),
        "median_ae": float(np.median(e)),
        "rmse": float(np.sqrt(np.mean((p - r) ** 2))),
    }
    for t in THRESHOLDS:
        out[f"within_{t:g}"] = float(np.mean(e <= t))
    out["spearman"] = (
        float(spearmanr(p, r).statistic) if len(p) > 2 and np.ptp(p) > 0 and np.ptp(r) > 0 else math.nan
    )
    out["n_missing"] = int((~ok).sum())
    return out


def voltage_metrics(
    table: pd.DataFrame, pred: str = "dft_voltage", ref: str = "avg_voltage", by: str | None = "ion"
) -> pd.DataFrame:
    """Errors of ``pred`` against ``ref`` (V): n, MAE, median absolute error, RMSE, the fraction within
    0.1 / 0.3 / 0.5 V, Spearman ρ and the pairs without a value; one row "all", then one per ``by`` group
    (largest first). A group whose values are all missing has n = 0."""
    p = table[pred].to_numpy(dtype=float)
    r = table[ref].to_numpy(dtype=float)
    rows = [{"group": "all", **_metrics(p, r)}]
    if by is not None:
        for g in table[by].value_counts().index:
            m = (table[by] == g).to_numpy()
            rows.append({"group": str(g), **_metrics(p[m], r[m])})
    return pd.DataFrame(rows).set_index("group")


def energies_2024(table: pd.DataFrame | None = None, mirror: str | Path | None = None) -> pd.DataFrame:
    """MP's 2024 formation energies of the mirror's ids (``mp_energy_2024.csv``): ``ef_2024`` (eV/atom),
    ``material_id_2024`` and ``pbe`` (False where lib.data found the 2024 total energy on the r2SCAN scale,
    i.e. ``table.attrs['rejected']`` says "not on the PBE energy scale"; None when no table is given)."""
    mirror = Path(mirror) if mirror is not None else default_mirror()
    if mirror is None:
        raise FileNotFoundError("no data mirror: set COMPENDIUM_MIRROR")
    e = pd.read_csv(mirror / "mp_energy_2024.csv", dtype={"material_id": str, "material_id_2024": str})
    e = e.rename(columns={"formation_energy_per_atom_2024": "ef_2024"}).set_index("material_id")
    e = e[["material_id_2024", "ef_2024"]].copy()
    e["pbe"] = None
    if table is not None and "rejected" in table.attrs:
        rej = table.attrs["rejected"]
        r2scan = set(
            rej.loc[
                (rej["target"] == "energy_per_atom") & (rej["reason"] == "not on the PBE energy scale"),
                "material_id",
            ]
        )
        e["pbe"] = [mid not in r2scan for mid in e.index]
    return e


def _release_change(r: pd.Series, geo: PairGeometry, e_c: pd.Series, e_d: pd.Series, v24: float,
                    agree: float) -> tuple[str, str]:
    """The cause and detail of an outlier that MP's 2024 energies fix or bring closer: each end's energy
    change, what it does to the voltage (coefficient × change) and whether its id was remapped in 2024."""
    close = abs(v24 - r["avg_voltage"]) <= agree
    cause = "energies changed between releases" if close else "energies changed, 2024 closer"
    a_c, a_d = geo.coefficients
    ends = []
    for end, e, ef_old, sign, a in (
        ("charged", e_c, r["ef_charged"], 1, a_c),
        ("discharged", e_d, r["ef_discharged"], -1, a_d),
    ):
        d_ef = e["ef_2024"] - ef_old
        mid = r["high_mpid"] if end == "charged" else r["low_mpid"]
        remap = f" (now {e['material_id_2024']})" if e["material_id_2024"] != mid else ""
        ends.append(f"{end} {mid}{remap} {d_ef:+.3f} eV/atom -> {sign * a * d_ef:+.2f} V")
    detail = f"2024 energies give {v24:.2f} V (MP {r['avg_voltage']:.2f} V); " + "; ".join(ends)
    return cause, detail


def _outlier_cause(r: pd.Series, e2024: pd.DataFrame | None, pred: str, agree: float) -> dict:
    """One outlier's ``cause``, ``detail``, ``v_2024`` and ``multi_material`` (:func:`explain_outliers`)."""
    prefix = r["battery_id"].rsplit("_", 1)[0]
    multi = prefix not in (r["high_mpid"], r["low_mpid"])
    v24, cause, detail = math.nan, "unexplained", ""
    geo: PairGeometry | None = None
    try:
        geo = check_pair(r["charged"], r["discharged"], r["ion"])
    except ValueError as exc:
        detail = str(exc)
    have24 = e2024 is not None and r["high_mpid"] in e2024.index and r["low_mpid"] in e2024.index
    if geo is not None and have24:
        e_c, e_d = e2024.loc[r["high_mpid"]], e2024.loc[r["low_mpid"]]
        v24 = float(geo.voltage(e_c["ef_2024"], e_d["ef_2024"])[0])
    if not r.get("formula_ok", True):
        cause = "structure mismatch"
        detail = (
            f"mirror {r['high_mpid']} is {r['formula_charged']} (file: {r['high_formula']}), "
            f"{r['low_mpid']} is {r['formula_discharged']} (file: {r['low_formula']})"
        )
    elif r.get("dft_note", ""):
        cause = "hull"
        detail = f"{r['dft_note']}; V = {r[pred]:.2f} V"
    elif (
        have24
        and np.isfinite(v24)
        and (
            abs(v24 - r["avg_voltage"]) <= agree
            or abs(v24 - r["avg_voltage"]) < 0.5 * abs(r[pred] - r["avg_voltage"])
        )
    ):
        cause, detail = _release_change(r, geo, e_c, e_d, v24, agree)
    elif have24 and (e_c["pbe"] is False or e_d["pbe"] is False):
        cause = "2024 energy is r2SCAN"
        detail = f"2024 energies give {v24:.2f} V, but an end's 2024 energy is on the r2SCAN scale"
    elif have24:
        detail = f"2024 energies give {v24:.2f} V (MP {r['avg_voltage']:.2f} V)"
    return {"cause": cause, "detail": detail, "v_2024": v24, "multi_material": multi}


def explain_outliers(
    table: pd.DataFrame,
    e2024: pd.DataFrame | None = None,
    threshold: float = 0.3,
    pred: str = "dft_voltage",
    agree: float = 0.1,
) -> pd.DataFrame:
    """Every pair whose ``pred`` voltage misses MP's ``avg_voltage`` by more than ``threshold`` V, with the
    cause the data supports, checked in this order:
    - ``structure mismatch``: a mirror structure has another reduced formula than the pairs file names;
    - ``hull``: pymatgen's electrode dropped a state (the mirror's energies put the discharged state above
      the charged state + ion line);
    - ``energies changed between releases``: with MP's 2024 formation energies of the same two ids the
      voltage agrees with MP's within ``agree`` V; ``detail`` gives each end's energy change, what it does
      to the voltage (coefficient × change) and whether its id was remapped in 2024;
    - ``energies changed, 2024 closer``: the 2024 voltage is off by more than ``agree`` but by less than
      half the 2020 error;
    - ``2024 energy is r2SCAN``: the 2024 voltage misses too, and one end's 2024 energy is r2SCAN (not
      comparable with MP's PBE electrodes);
    - ``unexplained``: none of these.

    ``multi_material`` marks electrodes whose battery id names neither end (MP grouped more materials into
    them: intermediates or unstable entries); by itself that is no cause (see the module docstring).
    """
    err = table[pred] - table["avg_voltage"]
    out = table[err.abs() > threshold].copy()
    out["error"] = err[out.index]
    rows = [_outlier_cause(r, e2024, pred, agree) for _, r in out.iterrows()]
    info = pd.DataFrame(rows, index=out.index, columns=["cause", "detail", "v_2024", "multi_material"])
    cols = [
        "battery_id",
        "ion",
        "high_formula",
        "high_mpid",
        "low_formula",
        "low_mpid",
        "avg_voltage",
        pred,
        "error",
    ]
    return out[cols].join(info).sort_values("error", key=np.abs, ascending=False)


def voltages_2024(dft: pd.DataFrame, e2024: pd.DataFrame) -> pd.DataFrame:
    """The pairs of ``dft`` whose two ends have MP 2024 formation energies on the PBE scale
    (:func:`lib.cathodes.screen.ef_2024_by_id`), with ``e2024_voltage``: the voltage from those energies
    (:func:`voltages_from_energies`, equal to pymatgen's)."""
    ef = ef_2024_by_id(e2024)
    t = dft[dft["high_mpid"].isin(ef) & dft["low_mpid"].isin(ef)].copy()
    geos = [check_pair(c, d, i) for c, d, i in zip(t["charged"], t["discharged"], t["ion"], strict=True)]
    t["e2024_voltage"] = voltages_from_energies(geos, t["high_mpid"].map(ef), t["low_mpid"].map(ef))[0]
    return t


@dataclass
class DFTConsistency:
    """Section 1 of 08: the mirror's DFT voltages against MP's, their outliers and MP's 2024 energies."""

    dft: pd.DataFrame  # the pairs with both ends in the mirror, their electrodes (pair_table)
    metrics: pd.DataFrame  # voltage_metrics of dft_voltage against MP
    outliers: pd.DataFrame  # explain_outliers
    causes: pd.DataFrame  # pairs per outlier cause
    multi_share: tuple[float, float]  # share of multi-material electrodes among the outliers, among all pairs
    metrics_2024: pd.DataFrame  # voltage_metrics of the 2024-energy voltages
    e2024: pd.DataFrame  # energies_2024
    coverage: pd.DataFrame  # pairs by which ends the mirror holds, per ion


def dft_consistency(table: pd.DataFrame, pairs: pd.DataFrame, threshold: float = 0.3) -> DFTConsistency:
    """The mirror's DFT formation energies against MP's voltages, on the pairs the mirror holds both ends of."""
    matched = match_pairs(pairs, table)
    dft = pair_table(matched, progress=False)
    e2024 = energies_2024(table)
    outliers = explain_outliers(dft, e2024, threshold=threshold)
    ids = set(dft["high_mpid"]) | set(dft["low_mpid"])
    multi_all = float((~dft["battery_id"].str.rsplit("_", n=1).str[0].isin(ids)).mean())
    cov = pd.DataFrame(matched.attrs["coverage"]).T
    return DFTConsistency(
        dft=dft, metrics=voltage_metrics(dft), outliers=outliers,
        causes=outliers["cause"].value_counts().to_frame("pairs"),
        multi_share=(float(outliers["multi_material"].mean()) if len(outliers) else float("nan"), multi_all),
        metrics_2024=voltage_metrics(voltages_2024(dft, e2024), pred="e2024_voltage", by=None), e2024=e2024,
        coverage=cov.assign(total=cov.sum(axis=1)))


@dataclass
class GNNVoltages:
    """Section 2 of 08: formation-energy GNN voltages on the pairs, held out of the models' training."""

    predict: FormationEnergyModel
    ml: pd.DataFrame  # ml_pair_table
    metrics: pd.DataFrame  # against the mirror's DFT and against MP
    amplification: float  # V moved by independent 0.1 eV/atom errors of both states, median pair
    seen: set[str]  # known-cathode structures the models may have trained on
    note: str  # which models, how many members, trained here or shipped


def gnn_voltages(table: pd.DataFrame, pairs: pd.DataFrame, dft: pd.DataFrame, checkpoints="shipped",
                 known_ids: Iterable[str] = (), **train) -> GNNVoltages:
    """The shipped formation-energy ensemble (``checkpoints="shipped"``), given checkpoints, or (None) CGCNNs
    trained here on :func:`group_split` (``train``: profile, seeds, n_max, epochs, by, threads), checked
    leak-free
    for the benchmark's structures; their voltages on ``dft``'s pairs."""
    bench_ids = set(dft["high_mpid"]) | set(dft["low_mpid"])
    held = bench_ids | set(known_ids)
    sigma_scale = 1.0
    if isinstance(checkpoints, str) and checkpoints == "shipped":
        checkpoints = [str(p) for p in pretrained.checkpoints(ENERGY)]
        sigma_scale = float(pretrained.card(ENERGY).get("sigma_scale") or 1.0)
        note = f"the shipped {ENERGY} ensemble: {len(checkpoints)} members, σ scale {sigma_scale:.2f}"
    elif checkpoints is None:
        records = train_formation_models(table, held, progress=False, **train)
        checkpoints = [r["checkpoint_path"] for r in records]
        note = f"{len(records)} CGCNN(s) trained here on the group split"
    else:
        note = f"{len(checkpoints)} given checkpoint(s)"
    predict = checkpoint_predictor(checkpoints, require=bench_ids, sigma_scale=sigma_scale)
    ml = ml_pair_table(dft, predict, progress=False)
    metrics = pd.concat({"GNN vs DFT (mirror)": voltage_metrics(ml, pred="ml_voltage", ref="dft_voltage"),
                         "GNN vs MP": voltage_metrics(ml, pred="ml_voltage", ref="avg_voltage")})
    amp = np.array([check_pair(c, d, i).coefficients
                    for c, d, i in zip(ml["charged"], ml["discharged"], ml["ion"], strict=True)])
    return GNNVoltages(predict, ml, metrics, float(0.1 * np.median(np.hypot(amp[:, 0], amp[:, 1]))),
                       seen_in_training(predict.records, held - bench_ids), note)


# ----------------------------------------------------------------------------------------------
# (c) the leak-free group split
# ----------------------------------------------------------------------------------------------


def ids_hash(ids: Iterable[str]) -> str:
    """A short stable hash of a set of ids (order and duplicates do not matter)."""
    return hashlib.sha256("\n".join(sorted(set(map(str, ids)))).encode()).hexdigest()[:16]


def group_split(
    df: pd.DataFrame,
    seed: int,
    exclude_ids: Iterable[str],
    fractions: Sequence[float] = (0.8, 0.1, 0.1),
    by: str = "id",
) -> dict[str, np.ndarray]:
    """A deterministic train/val/test split (positional indices) with ``exclude_ids`` held out.

    Every row whose ``material_id`` is in ``exclude_ids`` goes to test, and with ``by="formula"`` also every
    row that shares a reduced formula with one of them (its polymorphs). The other rows are split at
    random by ``fractions`` exactly like ``lib.data.split`` (same seed, same permutation rule), and their
    test part joins the held-out rows. Returns ``{"train", "val", "test", "held_out"}`` (sorted; held_out
    is the part of test that was excluded). No held-out row can reach training or validation.
    """
    if by not in ("id", "formula"):
        raise ValueError(f"by must be 'id' or 'formula', got {by!r}")
    if "material_id" not in df.columns:
        raise ValueError("group_split needs a material_id column")
    excl = set(map(str, exclude_ids))
    ids = df["material_id"].astype(str).to_numpy()
    held = np.isin(ids, list(excl))
    if by == "formula":
        if "structure" not in df.columns:
            raise ValueError("by='formula' needs a structure column")
        keys = composition_keys(df["structure"].tolist())
        held_keys = {k for k, h in zip(keys, held, strict=True) if h}
        held |= np.array([k in held_keys for k in keys], dtype=bool)
    rest = np.flatnonzero(~held)
    parts = random_split(len(rest), seed, fractions)
    out = {k: np.sort(rest[v]).astype(np.int64) for k, v in parts.items()}
    held_idx = np.flatnonzero(held).astype(np.int64)
    out["test"] = np.sort(np.concatenate([out.get("test", np.zeros(0, np.int64)), held_idx]))
    out["held_out"] = held_idx
    if "val" not in out:
        out["val"] = np.zeros(0, np.int64)
    return out


# ----------------------------------------------------------------------------------------------
# (b) predictors and machine-learned voltages
# ----------------------------------------------------------------------------------------------


def checkpoint_predictor(checkpoints: Sequence[str | Path], device: str = "cpu", require: Iterable[str] = (),
                         sigma_scale: float = 1.0):
    """A :class:`lib.cathodes.potentials.FormationEnergyModel`, called as ``predict(crystals) -> (mean, std or
    None)`` in eV/atom, from one or more formation-energy checkpoints
    (``lib.predictor.Predictor``: one checkpoint gives std None; a seed ensemble the members' mean and
    standard deviation, times ``sigma_scale``). ``require``: benchmark ids that must have been held out of
    the checkpoints' training (:func:`check_leak_free`).
    """
    if not checkpoints:
        raise ValueError("no checkpoints given")
    pred = Predictor([open_checkpoint(p, device) for p in checkpoints], sigma_scale=sigma_scale)
    if pred.first.target != ENERGY:
        raise ValueError(f"{pred.first.path} predicts {pred.first.target!r}, not {ENERGY}")
    require = list(require)
    if require:
        check_leak_free([c.record for c in pred.checkpoints], require)

    def predict(crystals: Sequence[Crystal]) -> tuple[np.ndarray, np.ndarray | None]:
        mean, std, _ = pred.predict_crystals(list(crystals))
        return mean, std

    return FormationEnergyModel(predict, name=f"cgcnn-{len(pred.checkpoints)}",
                                records=[c.record or {} for c in pred.checkpoints],
                                checkpoints=[str(c.path) for c in pred.checkpoints])


def seen_in_training(records: Sequence[dict], ids: Iterable[str]) -> set[str]:
    """The ``ids`` some run record may have trained on: not held out by its :func:`group_split` nor by its
    profile's held-out set (``lib.data.holdout``, e.g. the best profile's "electrodes", the shipped models').
    A record with neither may have trained on all of them."""
    need = set(map(str, ids))
    seen: set[str] = set()
    for rec in records:
        gs = rec.get("group_split") or {}
        holdout = (rec.get("profile_settings") or {}).get("holdout")
        held = set(gs.get("excluded_ids", [])) | (set(holdout_ids(holdout)) if holdout else set())
        seen |= need - held
    return seen


def check_leak_free(records: Sequence[dict], benchmark_ids: Iterable[str]) -> None:
    """Raise unless every run record was trained without all ``benchmark_ids`` (:func:`seen_in_training`)."""
    need = set(map(str, benchmark_ids))
    for rec in records:
        gs = rec.get("group_split") or {}
        holdout = (rec.get("profile_settings") or {}).get("holdout")
        if not gs and not holdout:
            raise ValueError(
                f"run {rec.get('run', '?')} has no group-split record: it may have trained on the "
                "benchmark structures, so its voltages could leak. Train with "
                "lib.electrode_benchmark.train_formation_models"
            )
        missing = seen_in_training([rec], need)
        if missing:
            raise ValueError(
                f"run {rec.get('run', '?')} was not trained with these ids held out: {len(missing)} "
                f"benchmark ids not held out (e.g. {sorted(missing)[:3]}); its voltages could leak"
            )


def ml_pair_table(matched: pd.DataFrame, predict, prefix: str = "ml", progress: bool = True) -> pd.DataFrame:
    """Voltages etc. of the matched pairs from predicted formation energies (``predict(crystals) ->
    (mean, std or None)``, eV/atom), through pymatgen like the DFT ones (:func:`lib.electrodes.pair_table`).

    Adds ``<prefix>_ef_charged``/``_discharged`` and their σ, the electrode columns with ``prefix``, and
    ``<prefix>_voltage_std`` (σ_V from the two σ as independent errors; NaN for a single model). Each
    distinct structure is predicted once.
    """
    ids = pd.unique(pd.concat([matched["high_mpid"], matched["low_mpid"]]))
    crystals = {
        **dict(zip(matched["high_mpid"], matched["charged"], strict=True)),
        **dict(zip(matched["low_mpid"], matched["discharged"], strict=True)),
    }
    mean, std = energy_model(predict).energies([crystals[i] for i in ids])
    mean = pd.Series(np.asarray(mean, float), index=ids)
    std = pd.Series(np.asarray(std, float) if std is not None else np.full(len(ids), np.nan), index=ids)
    t = matched.copy()
    t[f"{prefix}_ef_charged"] = mean[t["high_mpid"]].to_numpy()
    t[f"{prefix}_ef_discharged"] = mean[t["low_mpid"]].to_numpy()
    t[f"{prefix}_ef_charged_std"] = std[t["high_mpid"]].to_numpy()
    t[f"{prefix}_ef_discharged_std"] = std[t["low_mpid"]].to_numpy()
    t = pair_table(t, f"{prefix}_ef_charged", f"{prefix}_ef_discharged", prefix=prefix, progress=progress)
    sig = []
    for c, d, ion, sc, sd in zip(
        t["charged"],
        t["discharged"],
        t["ion"],
        t[f"{prefix}_ef_charged_std"],
        t[f"{prefix}_ef_discharged_std"],
        strict=True,
    ):
        try:
            sig.append(float(check_pair(c, d, ion).voltage(0.0, 0.0, sc, sd)[1]))
        except ValueError:
            sig.append(math.nan)
    t[f"{prefix}_voltage_std"] = sig
    return t


def _subsample(sp: dict, seed: int, n_max: int | None) -> tuple[np.ndarray, np.ndarray]:
    """The split's training and validation rows, subsampled to ``n_max`` together in their ratio."""
    rng = np.random.default_rng([seed, 8])
    tr, va = sp["train"], sp["val"]
    if n_max is not None and len(tr) + len(va) > n_max:
        k_tr = int(round(n_max * len(tr) / (len(tr) + len(va))))
        tr = np.sort(rng.choice(tr, size=k_tr, replace=False))
        va = np.sort(rng.choice(va, size=max(1, n_max - k_tr), replace=False))
    return tr, va


def _graph_split(gs, sub: pd.DataFrame, n_tr: int, n_va: int) -> dict[str, np.ndarray]:
    """Train / val / test positions in the graph set of ``sub``'s first ``n_tr``, next ``n_va`` and remaining
    rows (a structure without a graph is left out)."""
    pos = {mid: i for i, mid in enumerate(gs.material_ids)}
    ids = sub["material_id"].to_numpy()

    def where(idx, _ids=ids, _pos=pos):
        return np.array(sorted(_pos[m] for m in _ids[idx] if m in _pos), dtype=np.int64)

    return {
        "train": where(np.arange(n_tr)),
        "val": where(np.arange(n_tr, n_tr + n_va)),
        "test": where(np.arange(n_tr + n_va, len(sub))),
    }


def _seed_data(frame: pd.DataFrame, seed: int, exclude: list[str], by: str, n_max: int | None, params,
               profile_name: str, progress: bool):
    """One seed's data: the group split holding ``exclude`` out, subsampled, as cached CGCNN graphs;
    returns (graphs, targets, split, ids held out)."""
    sp = group_split(frame, seed, exclude, by=by)
    tr, va = _subsample(sp, seed, n_max)
    rows = np.concatenate([tr, va, sp["held_out"]])
    sub = frame.iloc[rows].reset_index(drop=True)
    sub.attrs = {"content_hash": None}
    gs = build_graphs(
        sub,
        params,
        name=f"electrodes_{profile_name}_s{seed}",
        n_jobs=1 if len(sub) < 3000 else 2,
        progress=progress,
        verbose=False,
    )
    y = sub[ENERGY].to_numpy(dtype=float)[gs.source_index]
    split = _graph_split(gs, sub, len(tr), len(va))
    held_ids = sorted(frame["material_id"].iloc[sp["held_out"]].astype(str))
    return gs, y, split, held_ids


def _group_split_record(by: str, exclude: list[str], held_ids: list[str], split: dict) -> dict:
    """What a run record keeps of its group split (``extra`` of lib.train's ``fit``)."""
    return {
        "group_split": {
            "by": by,
            "excluded_ids": exclude,
            "excluded_hash": ids_hash(exclude),
            "held_out_ids": held_ids,
            "n_train": int(len(split["train"])),
            "n_val": int(len(split["val"])),
        }
    }


def train_formation_models(
    table: pd.DataFrame,
    exclude_ids: Iterable[str],
    profile: str = "smoke",
    seeds: Sequence[int] | None = None,
    n_max: int | None | str = "profile",
    epochs: int | None = None,
    by: str = "id",
    threads: int | None = 1,
    runs_dir: str | Path | None = None,
    progress: bool = True,
    **model_kwargs,
) -> list[dict]:
    """CGCNN formation-energy models on the group split, one per seed; returns their run records.

    ``table``: the ``lib.data`` table. For each seed, :func:`group_split` holds ``exclude_ids`` out; training
    and validation are subsampled to ``n_max`` structures together (default: the profile's ``n_max``; None:
    all), in the split's 8:1 ratio; the test set is the held-out structures, so the record's test MAE is the
    formation-energy error on the benchmark structures. Graphs: CGCNN's (k = 8, 8 Å), cached. Runs are
    named ``cgcnn-groupsplit_formation_energy_per_atom_<profile>_s<seed>`` under ``results/electrodes/runs``
    (not results/runs, which 06_benchmark reads); each record keeps the ids it was asked to hold out
    (``group_split.excluded_ids``) and those the table had (``held_out_ids``), so :func:`check_leak_free`
    can verify it. A finished run is not trained again (``fit`` resumes).
    """
    prof = get_profile(profile)
    seeds = list(prof.seeds_gnn if seeds is None else seeds)
    n_max = prof.n_max if n_max == "profile" else n_max
    epochs = epochs or prof.epochs
    runs_dir = Path(runs_dir) if runs_dir is not None else RUNS_DIR
    frame = target_frame(table, ENERGY)
    exclude = sorted(set(map(str, exclude_ids)))
    params = cgcnn_params()
    records = []
    for seed in seeds:
        gs, y, split, held_ids = _seed_data(frame, seed, exclude, by, n_max, params, prof.name, progress)
        seed_everything(seed)
        model = CGCNN.from_graph_params(params, **model_kwargs)
        cfg = TrainConfig(epochs=epochs, num_threads=threads)
        rec = fit(
            model,
            gs,
            y,
            split,
            cfg,
            property=ENERGY,
            seed=seed,
            profile=prof,
            model_name="cgcnn-groupsplit",
            runs_dir=runs_dir,
            progress=progress,
            extra=_group_split_record(by, exclude, held_ids, split),
        )
        rec["checkpoint_path"] = str(runs_dir / rec["checkpoint"])
        records.append(rec)
    return records


# ----------------------------------------------------------------------------------------------
# relaxing the benchmark's structures (a long run, resumable, in shards)
# ----------------------------------------------------------------------------------------------


def benchmark_structures(matched: pd.DataFrame, seed: int = 0) -> dict[str, Crystal]:
    """Every distinct structure of the matched pairs (:func:`lib.cathodes.potentials.pair_crystals`), in the order a long relaxation
    run takes them: the Li pairs' structures first, then the other ions', each group in a seeded shuffle, so
    that a run stopped early holds a random sample of the chapter's own Li benchmark rather than the first
    ids of one chemistry."""
    rng = np.random.default_rng(seed)
    li = matched["ion"].eq("Li").to_numpy()
    order = [*rng.permutation(np.flatnonzero(li)), *rng.permutation(np.flatnonzero(~li))]
    crystals = pair_crystals(matched)
    out: dict[str, Crystal] = {}
    for i in order:
        for mid in (matched["high_mpid"].iat[i], matched["low_mpid"].iat[i]):
            out.setdefault(mid, crystals[mid])
    return out


def shard_of(items: list, shard: tuple[int, int], reverse: bool = False) -> list:
    """Every ``n``-th item from the ``k``-th (``shard`` = (k, n)), counted from the end with ``reverse``: the
    shards of one order cover it once, and a reversed run meets a forward one in the middle."""
    k, n = shard
    if not 0 <= k < n:
        raise ValueError(f"shard {k}/{n}: want 0 <= k < n")
    return (items[::-1] if reverse else list(items))[k::n]


def relax_benchmark(model, shard: tuple[int, int] = (0, 1), reverse: bool = False, seed: int = 0,
                    progress: bool = True, **relax_kwargs) -> list:
    """Relax (into the cache) the structures of the electrode benchmark: the 451 pairs of MP's insertion
    electrodes whose two ends the mirror holds, in :func:`benchmark_structures`'s order (``reverse``: from the
    end, so that a second machine meets the first in the middle), every ``shard[1]``-th from ``shard[0]``.
    Done ones are read from the cache; the :class:`lib.cathodes.relax.Relaxation` of each is returned."""

    table = load_dataset("cgcnn", source="auto", progress=False, verbose=False)
    structures = benchmark_structures(pair_table(match_pairs(read_pairs(), table), progress=False), seed)
    ids = shard_of(list(structures), shard, reverse)
    return relax(model, [structures[i] for i in ids], ids=ids, progress=progress, **relax_kwargs)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m lib.cathodes.benchmark relax [--shard K/N] [--reverse] [--device cuda]``: relax the electrode
    benchmark's structures into the cache (resumable; ``python -m lib.cathodes.relax archive`` keeps them)."""

    warnings.filterwarnings("ignore")  # scipy's logm accuracy notes and torch's, once per step: noise in a log

    ap = argparse.ArgumentParser(prog="python -m lib.cathodes.benchmark", description=main.__doc__)
    ap.add_argument("action", choices=("relax",))
    ap.add_argument("--potential", default="chgnet", choices=sorted(POTENTIALS))
    ap.add_argument("--device", default=None, help="cpu, cuda, ... (default: CUDA when there is one)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--shard", default="0/1", help="K/N: every N-th structure from the K-th")
    ap.add_argument("--reverse", action="store_true", help="from the end of the order")
    ap.add_argument("--batch-size", type=int, default=48, help="structures relaxed at once")
    ap.add_argument("--no-progress", action="store_true")
    a = ap.parse_args(argv)
    k, n = (int(x) for x in a.shard.split("/"))
    model = POTENTIALS[a.potential](threads=a.threads, device=a.device)
    rs = relax_benchmark(model, (k, n), a.reverse, progress=not a.no_progress, batch_size=a.batch_size)
    counts = pd.Series([r.status for r in rs]).value_counts().to_dict()
    print(f"{model.name}: {len(rs)} structures of shard {k}/{n}: {counts}")
    return 0


__all__ = [
    "voltage_metrics",
    "energies_2024",
    "explain_outliers",
    "group_split",
    "ids_hash",
    "composition_key",
    "composition_keys",
    "checkpoint_predictor",
    "check_leak_free",
    "seen_in_training",
    "ml_pair_table",
    "train_formation_models",
    "benchmark_structures",
    "shard_of",
    "relax_benchmark",
]

if __name__ == "__main__":
    raise SystemExit(main())
