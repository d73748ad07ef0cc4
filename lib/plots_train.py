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

from lib import models
from lib.data.targets import TARGETS
from lib.plots import PALETTE, axis_label, corner_text, save, stamp, target_label, unit_of, use_style

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
