"""The compendium's figures, in one style: every notebook draws through these functions.

Style: one accent colour per series from :data:`PALETTE`, light grid, no top/right spines, labels
with units from :data:`lib.data.TARGETS`, counts written in the panel corner. :func:`save` writes
PNGs (150 dpi) under figures/.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from lib.paths import FIGURES

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
    return f"{t.label} ({t.unit})" if t.unit and t.unit != "–" else t.label


def target_histograms(df: pd.DataFrame, targets: Sequence[str], *, bins: int = 60, ncols: int | None = None,
                      title: str | None = None, path: str | Path | None = None):
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
            ax.hist(v, bins=bins, color=PALETTE[k % len(PALETTE)], alpha=0.9, linewidth=0)
        ax.set_xlabel(axis_label(col))
        ax.set_ylabel("materials")
        ax.text(0.97, 0.95, f"n = {len(v):,}", transform=ax.transAxes, ha="right", va="top")
    for ax in list(axes.flat)[len(targets):]:
        ax.set_visible(False)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    if path is not None:
        save(fig, path)
    return fig


def save(fig, path: str | Path) -> Path:
    """Save a figure; a bare file name goes under figures/. Returns the path written."""
    path = Path(path)
    if not path.is_absolute() and path.parent == Path("."):
        path = FIGURES / path
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path
