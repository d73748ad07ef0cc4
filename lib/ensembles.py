"""Seed ensembles: several models of one recipe on one split, their mean, its uncertainty and its calibration.

    ens = ensembles.combine(records)         # the members' run records: same rows, same split, other seeds
    ens["test"]["mean"], ens["test"]["std"]  # per test structure: the members' mean and standard deviation
    cal = ensembles.calibration(ens)         # MAE of the mean vs the members', coverage, ranking, the σ scale

The spread of a few members (σ, their standard deviation) measures how much the models disagree, which is
not the whole error: it is usually too small. :func:`sigma_scale` finds the factor s that puts 68.3 % of the
validation errors within s·σ (a Gaussian's share within 1σ), and the test set then shows how well s·σ is
calibrated: the share of errors within 1 and 2 σ (68 % and 95 % for a Gaussian), a
reliability table (RMSE of the errors against σ, binned by σ), and whether σ ranks the errors (Spearman).
Shipped ensembles carry their scale in their card; ``lib.predict`` applies it.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from lib.metrics import regression_metrics


def combine(records: list[dict]) -> dict:
    """The members' predictions on their common validation and test sets: per split y_true, the (M, n)
    predictions, their mean and standard deviation (ddof 1); a clear error if the splits differ."""
    if len(records) < 2:
        raise ValueError(f"an ensemble needs at least 2 members, got {len(records)}")
    ids = [r["test_predictions"]["id"] for r in records]
    if any(i != ids[0] for i in ids[1:]):
        raise ValueError("the members were tested on different structures: an ensemble needs one split "
                         "(the same rows and split seed, other initial seeds)")
    out: dict = {"members": [r["run"] for r in records], "property": records[0]["property"],
                 "unit": records[0].get("unit"), "ids": ids[0]}
    for part in ("val", "test"):
        key = f"{part}_predictions"
        if not all(key in r for r in records):
            continue
        y = np.asarray(records[0][key]["y_true"], dtype=float)
        if any(not np.array_equal(np.asarray(r[key]["y_true"], dtype=float), y) for r in records[1:]):
            raise ValueError(f"the members' {part} targets differ: not one split")
        preds = np.vstack([np.asarray(r[key]["y_pred"], dtype=float) for r in records])
        out[part] = {"y": y, "preds": preds, "mean": preds.mean(axis=0), "std": preds.std(axis=0, ddof=1)}
    return out


#: the share of a Gaussian within one standard deviation, erf(1/√2)
WITHIN_1SIGMA = math.erf(1 / math.sqrt(2))


def sigma_scale(y: np.ndarray, mean: np.ndarray, std: np.ndarray) -> float:
    """The factor s that puts 68.3 % of these (validation) errors within s·σ: the 68.3 % quantile of |error| / σ.

    Not the RMS of error / σ: GNN errors have heavy tails (a few structures off by eV), and matching their RMS
    made σ so wide on the shipped formation-energy ensemble that 93 % of the test errors lay within 1σ. Matched
    at 1σ, the tails show as a 2σ coverage below 95 %, which the calibration reports.
    """
    ok = std > 0
    if not ok.any():
        return float("nan")
    return float(np.quantile(np.abs(y[ok] - mean[ok]) / std[ok], WITHIN_1SIGMA))


def reliability(y: np.ndarray, mean: np.ndarray, std: np.ndarray, bins: int = 8) -> pd.DataFrame:
    """Structures binned by σ (equal counts): mean σ, RMSE and MAE of the errors, n per bin."""
    order = np.argsort(std, kind="stable")
    rows = []
    for part in np.array_split(order, min(bins, len(order))):
        err = y[part] - mean[part]
        rows.append({"sigma": float(std[part].mean()), "rmse": float(np.sqrt(np.mean(err**2))),
                     "mae": float(np.mean(np.abs(err))), "n": int(len(part))})
    return pd.DataFrame(rows)


def calibration(ens: dict, part: str = "test") -> dict:
    """How good the ensemble's mean is and how honest its σ: on ``part`` (default test), with σ scaled by
    :func:`sigma_scale` fitted on the validation set (1 when there is none)."""
    d = ens[part]
    y, mean, std = d["y"], d["mean"], d["std"]
    scale = sigma_scale(ens["val"]["y"], ens["val"]["mean"], ens["val"]["std"]) if "val" in ens else 1.0
    if not math.isfinite(scale):
        scale = 1.0
    err = np.abs(y - mean)
    member_mae = [float(np.mean(np.abs(y - p))) for p in d["preds"]]
    out = {
        "n": int(len(y)), "members": len(d["preds"]), **{f"ensemble_{k}": v for k, v in
                                                         regression_metrics(y, mean).items() if k != "n"},
        "member_mae": member_mae, "member_mae_mean": float(np.mean(member_mae)),
        "sigma_scale": scale, "sigma_median": float(np.median(std)),
        "spearman_sigma_error": float(spearmanr(std, err).statistic) if np.ptp(std) > 0 else float("nan"),
    }
    for label, s in (("raw", 1.0), ("scaled", scale)):
        for k in (1, 2):
            out[f"within_{k}sigma_{label}"] = float(np.mean(err <= k * s * std))
    out["reliability"] = reliability(y, mean, scale * std)
    return out


__all__ = ["WITHIN_1SIGMA", "combine", "sigma_scale", "reliability", "calibration"]
