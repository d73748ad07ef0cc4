"""The compendium's figure style and saving, shared by the figure families of ``lib.plots``.

Style: one accent colour per series from :data:`PALETTE`, light grid, no top/right spines, labels
with units from :data:`lib.data.TARGETS`, counts written in the panel corner. :func:`save` writes
PNGs (150 dpi) under figures/.

Every notebook names its figure files with ``lib.plots.figure_file`` (from ``lib.paths``: the profile, and
the seed where one applies, in the name, so a smoke run never overwrites a quick one), writes chemical
formulas with :func:`formula_label`, and every figure of a pipeline-test profile (smoke) carries
:func:`stamp`'s banner.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import matplotlib as mpl
from cycler import cycler
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.text import Text

from lib.data.targets import TARGETS
from lib.paths import FIGURES
from lib.profiles import Profile, not_a_result

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


def unit_of(column: str) -> str:
    """The unit of a target column as figures write it ('eV/atom', 'log₁₀ GPa'; '' when it has none)."""
    t = TARGETS.get(column)
    if t is None or not t.unit or t.unit in ("–", "-"):
        return ""
    return re.sub(r"^log10\((.*)\)$", r"log₁₀ \1", t.unit)


def axis_label(column: str) -> str:
    """'Label (unit)' of a target column, from lib.data.TARGETS (the column itself if unknown)."""
    t = TARGETS.get(column)
    if t is None:
        return column
    unit = unit_of(column)
    return f"{t.label} ({unit})" if unit else t.label


def target_label(column: str) -> str:
    """The plot label of a target column ('Band gap' for 'band_gap'; the column itself if unknown)."""
    t = TARGETS.get(column)
    return t.label if t is not None else column


def formula_label(formula: str) -> str:
    """A chemical formula with subscripts for mathtext: 'Ta2O5' -> 'Ta$_{2}$O$_{5}$' (also '0.5', spaces
    dropped: pymatgen's 'Ta2 O5')."""
    return re.sub(r"(?<=[A-Za-z)\]])(\d+(?:\.\d+)?)", r"$_{\1}$", formula.replace(" ", ""))


def corner_text(ax: Axes, text: str, loc: str = "upper right") -> None:
    """A short note (e.g. the sample size) in a top corner of a panel ("upper right" or "upper left"), on a
    light box."""
    left = loc == "upper left"
    ax.text(
        0.03 if left else 0.97,
        0.95,
        text,
        transform=ax.transAxes,
        ha="left" if left else "right",
        va="top",
        bbox={"boxstyle": "round,pad=0.25", "facecolor": "white", "edgecolor": "none", "alpha": 0.85},
    )


STAMP_GID = "not-a-result"


def stamp(fig: Figure, profile: str | Profile | None) -> Text | None:
    """Put the pipeline-test warning (:func:`lib.profiles.not_a_result`) as a red banner above everything
    drawn in ``fig``, where it hides no data; nothing for a profile whose figures are results.

    Call it last (after titles); calling it again moves the one banner above whatever was added since.
    Returns the banner's text artist (``None`` when there is none).
    """
    for t in [t for t in fig.texts if t.get_gid() == STAMP_GID]:
        t.remove()
    note = not_a_result(profile)
    if note is None:
        return None
    x, y = 0.5, 1.0
    w, h = fig.get_size_inches()
    try:  # above the tight box of what is drawn (suptitle included), centred on it
        if fig.get_layout_engine() is not None:  # constrained layout places the axes when drawn
            fig.draw_without_rendering()
        box = fig.get_tightbbox(fig.canvas.get_renderer())
        x, y, w = (box.x0 + box.x1) / 2 / w, box.y1 / h + 0.08 / h, box.width
    except (AttributeError, ValueError):
        pass
    note = textwrap.fill(note, max(32, int(11 * w)))  # about the figure's width at 10 pt bold
    return fig.text(x, y, note, ha="center", multialignment="center", va="bottom", color="white",
                    fontsize=10, fontweight="bold", gid=STAMP_GID,
                    bbox={"boxstyle": "square,pad=0.4", "facecolor": "#c0392b", "edgecolor": "none"})


def save(fig: Figure, path: str | Path) -> Path:
    """Save a figure; a bare file name goes under figures/. Returns the path written."""
    path = Path(path)
    if not path.is_absolute() and path.parent == Path("."):
        path = FIGURES / path
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path
