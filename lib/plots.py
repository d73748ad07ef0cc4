"""The compendium's figure style and saving, shared by the figure families ``lib.plots_*``.

Style: one accent colour per series from :data:`PALETTE`, light grid, no top/right spines, labels
with units from :data:`lib.data.TARGETS`, counts written in the panel corner. :func:`save` writes
PNGs (150 dpi) under figures/.
"""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib as mpl
from cycler import cycler
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from lib.data.targets import TARGETS
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

def use_style() -> None:
    """Apply the compendium's matplotlib style (idempotent)."""
    mpl.rcParams.update({k: v for k, v in STYLE.items() if v is not None})
    mpl.rcParams["axes.prop_cycle"] = cycler(color=list(PALETTE))


def axis_label(column: str) -> str:
    """'Label (unit)' of a target column, from lib.data.TARGETS (the column itself if unknown)."""
    t = TARGETS.get(column)
    if t is None:
        return column
    unit = re.sub(r"^log10\((.*)\)$", r"log₁₀ \1", t.unit)
    return f"{t.label} ({unit})" if unit and unit != "–" else t.label


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
