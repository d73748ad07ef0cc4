"""The compendium's figures, in one style: every notebook draws through these functions.

Style: one accent colour per series from :data:`PALETTE`, light grid, no top/right spines, labels
with units from :data:`lib.data.TARGETS`, counts written in the panel corner. :func:`save` writes
PNGs (150 dpi) under figures/.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from lib.paths import FIGURES

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

PALETTE = ("#2f6690", "#d1495b", "#edae49", "#66a182", "#8d6a9f", "#3a3a3a")
STYLE = {
    "figure.dpi": 100,
    "savefig.dpi": 150,
    "savefig.bbox": "tight",
    "font.size": 10,
    "axes.titlesize": 10,
    "axes.labelsize": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linewidth": 0.6,
    "axes.prop_cycle": None,  # set in use_style from PALETTE
    "legend.frameon": False,
}

#: the thesis's Figure 11 (targets of the CGCNN dataset) and Figure 12 (the elastic targets)
FIG11_TARGETS = ("formation_energy_per_atom", "energy_per_atom", "efermi", "band_gap")
FIG12_TARGETS = ("log10_K_VRH", "log10_G_VRH", "poisson_ratio")


def use_style() -> None:
    """Apply the compendium's matplotlib style (idempotent)."""
    import matplotlib as mpl
    from cycler import cycler

    mpl.rcParams.update({k: v for k, v in STYLE.items() if v is not None})
    mpl.rcParams["axes.prop_cycle"] = cycler(color=list(PALETTE))


def axis_label(column: str) -> str:
    """'Label (unit)' of a target column, from lib.data.TARGETS (the column itself if unknown)."""
    from lib.data import TARGETS

    t = TARGETS.get(column)
    if t is None:
        return column
    unit = re.sub(r"^log10\((.*)\)$", r"log₁₀ \1", t.unit)
    return f"{t.label} ({unit})" if unit and unit != "–" else t.label


def _bins(v: np.ndarray, bins: int | None) -> int | np.ndarray:
    """Histogram bins: one bar per value for coarse discrete data (e.g. 2-decimal ratios), else a count."""
    n_bins = bins or (60 if len(v) >= 10_000 else 40)
    uniq = np.unique(v)
    if 1 < len(uniq) <= max(n_bins, 100):
        mids = (uniq[1:] + uniq[:-1]) / 2
        step = np.min(np.diff(uniq))
        return np.concatenate([[uniq[0] - step / 2], mids, [uniq[-1] + step / 2]])
    return n_bins


def target_histograms(
    df: pd.DataFrame,
    targets: Sequence[str],
    *,
    bins: int | None = None,
    ncols: int | None = None,
    title: str | None = None,
    path: str | Path | None = None,
) -> Figure:
    """One histogram per target column with its n in the corner (the thesis's Figures 11 and 12)."""
    import matplotlib.pyplot as plt

    use_style()
    targets = list(targets)
    ncols = ncols or min(len(targets), 2 if len(targets) == 4 else 3)
    nrows = int(np.ceil(len(targets) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.6 * ncols, 2.8 * nrows), squeeze=False)
    for k, (ax, col) in enumerate(zip(axes.flat, targets, strict=False)):
        v = df[col].dropna().to_numpy() if col in df.columns else np.array([])
        if len(v):
            ax.hist(v, bins=_bins(v, bins), color=PALETTE[k % len(PALETTE)], alpha=0.9, linewidth=0)
            ax.set_ylim(0, ax.get_ylim()[1] * 1.12)  # headroom for the count
        ax.set_xlabel(axis_label(col))
        ax.set_ylabel("materials")
        corner_text(ax, f"n = {len(v):,}")
    for ax in list(axes.flat)[len(targets) :]:
        ax.set_visible(False)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    if path is not None:
        save(fig, path)
    return fig


def corner_text(ax: Axes, text: str) -> None:
    """A short note (e.g. the sample size) in the upper-right corner of a panel, on a light box."""
    ax.text(
        0.97,
        0.95,
        text,
        transform=ax.transAxes,
        ha="right",
        va="top",
        bbox={"boxstyle": "round,pad=0.25", "facecolor": "white", "edgecolor": "none", "alpha": 0.85},
    )


def save(fig: Figure, path: str | Path) -> Path:
    """Save a figure; a bare file name goes under figures/. Returns the path written."""
    path = Path(path)
    if not path.is_absolute() and path.parent == Path("."):
        path = FIGURES / path
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path
