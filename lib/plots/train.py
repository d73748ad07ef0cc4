"""Figures of a training run, drawn from its run record alone: parity plot and learning curves.

Both read only the record (``test_predictions``, ``curves``, ``metrics``, ``profile``), so a run trained
elsewhere draws the same figures. Style, labels and saving come from :mod:`lib.plots`; a record of the smoke
profile gets its banner (:func:`lib.plots.stamp`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator
from scipy.stats import norm

from lib import models
from lib.data.targets import TARGETS
from lib.plots.base import PALETTE, axis_label, corner_text, save, stamp, target_label, unit_of, use_style

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def _title(record: dict) -> str:
    """'CGCNN, Band gap (quick, seed 0)': the model's display name and the property's label."""
    return (f"{models.display_name(record['model'])}, {target_label(record['property'])} "
            f"({record.get('profile', '?')}, seed {record.get('seed', '?')})")


def parity_plot(record: dict, path: str | Path | None = None, ax: Axes | None = None) -> Figure:
    """Predicted against DFT values on the test set, the y = x line, MAE / R² / n in the corner."""
    use_style()
    tp = record["test_predictions"]
    t = np.asarray(tp["y_true"], dtype=float)
    p = np.asarray(tp["y_pred"], dtype=float)
    if ax is None:
        fig, ax = plt.subplots(figsize=(3.8, 3.6))
    else:
        fig = ax.figure
    lo, hi = float(min(t.min(), p.min())), float(max(t.max(), p.max()))
    pad = 0.03 * (hi - lo or 1.0)
    ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color=PALETTE[5], linewidth=0.8, zorder=1)
    big = len(t) > 2000
    ax.scatter(t, p, s=5 if big else 12, alpha=0.4 if big else 0.8, color=PALETTE[0], linewidth=0, zorder=2)
    ax.set_xlim(lo - pad, hi + pad)
    ax.set_ylim(lo - pad, hi + pad)
    ax.set_aspect("equal")
    label = axis_label(record["property"])
    ax.set_xlabel(f"DFT {label}")
    ax.set_ylabel(f"predicted {label}")
    m = record["metrics"]["test"]
    r2 = f"{m['r2']:.3f}".replace("-", "−")
    # upper left: off the diagonal, where a parity plot has the fewest points (upper right is its end)
    corner_text(ax, f"{models.display_name(record['model'])}, test set\nMAE {m['mae']:.3g}\nR² {r2}"
                    f"\nn = {m['n']:,}", loc="upper left")
    ax.set_title(_title(record), loc="left")
    fig.tight_layout()
    stamp(fig, record.get("profile"))
    if path is not None:
        save(fig, path)
    return fig


def learning_curves(record: dict, path: str | Path | None = None, ax: Axes | None = None,
                    log: bool | None = None) -> Figure:
    """Training and validation MAE (accuracy for classifiers) per epoch; the kept epoch is marked.

    The training value is the running mean over the epoch's batches in training mode (as the
    reference CGCNN reports it); the validation value is computed after the epoch in eval mode.
    ``log``: logarithmic y axis (default: when the curve spans more than a factor of 10).
    """
    use_style()
    c = record["curves"]
    metric = "accuracy" if "val_accuracy" in c else "mae"
    ep = np.asarray(c["epoch"])
    tr = np.asarray(c[f"train_{metric}"], dtype=float)
    va = np.asarray(c[f"val_{metric}"], dtype=float)
    if ax is None:
        fig, ax = plt.subplots(figsize=(4.4, 3.0))
    else:
        fig = ax.figure
    style = {"marker": "o", "markersize": 3} if len(ep) <= 30 else {}
    ax.plot(ep, tr, color=PALETTE[0], label="training", **style)
    ax.plot(ep, va, color=PALETTE[1], label="validation", **style)
    best = record.get("best_epoch")
    if best:
        ax.axvline(best, color=PALETTE[5], linewidth=0.8, linestyle=":", zorder=0)
        ax.text(best, 0.98, " kept", transform=ax.get_xaxis_transform(), ha="left", va="top", fontsize=8,
                color=PALETTE[5])
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    vals = np.concatenate([tr, va])
    vals = vals[np.isfinite(vals) & (vals > 0)]
    if metric == "mae" and (log or (log is None and len(vals) and vals.max() > 10 * vals.min())):
        ax.set_yscale("log")
    ax.set_xlabel("epoch")
    unit = unit_of(record["property"]) if record["property"] in TARGETS else record.get("unit")
    mae_label = f"MAE ({unit})" if unit and unit not in ("–", "-") else "MAE"
    ax.set_ylabel("accuracy" if metric == "accuracy" else mae_label)
    ax.set_title(_title(record), loc="left")
    ax.legend()
    fig.tight_layout()
    stamp(fig, record.get("profile"))
    if path is not None:
        save(fig, path)
    return fig


__all__ = ["parity_plot", "learning_curves"]


def calibration_plot(cal: dict, ens: dict, profile: str | None = None, path: str | Path | None = None
                     ) -> Figure:
    """A seed ensemble on the test set (lib.ensembles.calibration): (a) each member's MAE beside the
    ensemble mean's; (b) reliability: the RMSE of the errors against σ (scaled on the validation set),
    binned by σ, beside y = x (a calibrated σ lies on it); (c) coverage: the share of errors within k·σ
    against k, raw and scaled σ, beside a Gaussian's."""
    use_style()
    unit = ens.get("unit") or ""
    u = f" ({unit})" if unit and unit != "–" else ""
    fig, axes = plt.subplots(1, 3, figsize=(11.5, 3.6))
    ax = axes[0]
    names = [f"seed {k}" for k in range(len(cal["member_mae"]))] + ["ensemble"]
    vals = [*cal["member_mae"], cal["ensemble_mae"]]
    ax.bar(range(len(vals)), vals, color=[PALETTE[0]] * len(cal["member_mae"]) + [PALETTE[1]], width=0.7)
    ax.set_xticks(range(len(vals)), names)
    ax.set_ylabel(f"test MAE{u}")
    ax.set_ylim(0, max(vals) * 1.08)
    ax.set_title(f"(a) {cal['members']} members and their mean", loc="left")
    ax = axes[1]
    rel = cal["reliability"]
    top = float(max(rel["sigma"].max(), rel["rmse"].max())) * 1.1
    ax.plot([0, top], [0, top], color=PALETTE[5], linewidth=0.8, label="calibrated: RMSE = σ")
    ax.plot(rel["sigma"], rel["rmse"], marker="o", color=PALETTE[1], label="ensemble (bins of equal n)")
    ax.set_xlim(0, top)
    ax.set_ylim(0, top)
    ax.set_xlabel(f"σ × {cal['sigma_scale']:.2f} (scale fitted on validation){u}")
    ax.set_ylabel(f"RMSE of the errors{u}")
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title(f"(b) reliability; Spearman(σ, |error|) = {cal['spearman_sigma_error']:.2f}", loc="left")
    ax = axes[2]
    d = ens["test"]
    err = np.abs(d["y"] - d["mean"])
    k = np.linspace(0, 3, 61)
    ax.plot(k, 2 * norm.cdf(k) - 1, color=PALETTE[5], linewidth=0.8, label="Gaussian")
    for s, lab, c in ((1.0, "raw σ", PALETTE[0]), (cal["sigma_scale"], "scaled σ", PALETTE[1])):
        ax.plot(k, [(err <= kk * s * d["std"]).mean() for kk in k], color=c, label=lab)
    ax.set_xlabel("k")
    ax.set_ylabel("share of test errors within k·σ")
    ax.set_ylim(0, 1.02)
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title(f"(c) coverage: {100 * cal['within_1sigma_scaled']:.0f} % within 1σ, "
                 f"{100 * cal['within_2sigma_scaled']:.0f} % within 2σ", loc="left")
    fig.suptitle(f"{target_label(ens['property'])}: a seed ensemble on one split (n = {cal['n']:,} test)")
    fig.tight_layout()
    stamp(fig, profile)
    if path is not None:
        save(fig, path)
    return fig
