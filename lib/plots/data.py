"""Figures of the data (01_fetch, 05_soap): the targets' distributions (the thesis's Figures 11-12) and
how sparse the SOAP descriptors are."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import scipy.sparse as sps
from matplotlib.figure import Figure

from lib.plots.base import PALETTE, axis_label, corner_text, save, stamp, use_style
from lib.soap import sparsity as soap_sparsity

#: the thesis's Figure 11 (targets of the CGCNN dataset) and Figure 12 (the elastic targets)
FIG11_TARGETS = ("formation_energy_per_atom", "energy_per_atom", "efermi", "band_gap")
FIG12_TARGETS = ("log10_K_VRH", "log10_G_VRH", "poisson_ratio")



def _bins(v: np.ndarray, bins: int | None) -> int | np.ndarray:
    """Histogram bins: one bar per value for coarse discrete data (e.g. 2-decimal ratios), else a count."""
    n_bins = bins or (60 if len(v) >= 10_000 else 40)
    uniq = np.unique(v)
    if 1 < len(uniq) <= max(n_bins, 100):
        mids = (uniq[1:] + uniq[:-1]) / 2
        step = np.min(np.diff(uniq))
        return np.concatenate([[uniq[0] - step / 2], mids, [uniq[-1] + step / 2]])
    return n_bins


def _num(x: float) -> str:
    """3 significant digits, a true minus sign, no negative zero."""
    return f"{x + 0.0:.3g}".replace("-", "−")


def view_range(v: np.ndarray, clip: tuple[float, float] | None) -> tuple[float, float] | None:
    """The x range a histogram shows: the ``clip`` percentiles of ``v`` (None: all of it). A range that
    would leave nothing out, or collapse to a point, is None too."""
    if clip is None or len(v) == 0:
        return None
    lo, hi = (float(x) for x in np.percentile(v, clip))
    if hi <= lo or (lo <= v.min() and hi >= v.max()):
        return None
    return lo, hi


def target_histograms(
    df: pd.DataFrame,
    targets: Sequence[str],
    *,
    bins: int | None = None,
    ncols: int | None = None,
    title: str | None = None,
    clip: tuple[float, float] | None = (0.5, 99.5),
    profile: str | None = None,
    path: str | Path | None = None,
) -> Figure:
    """One histogram per target column with its n in the corner (the thesis's Figures 11 and 12).

    clip: the percentiles the x axis shows (default the 0.5th to the 99.5th: a few outliers such as a
    formation energy of −13.6 eV/atom would otherwise leave most of the panel empty); the panel says how
    many values lie outside and the range of all of them. None: every value.
    profile: only for a sample that depends on the profile (its smoke banner, :func:`lib.plots.stamp`).
    """
    use_style()
    targets = list(targets)
    ncols = ncols or min(len(targets), 2 if len(targets) == 4 else 3)
    nrows = int(np.ceil(len(targets) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.6 * ncols, 2.8 * nrows), squeeze=False)
    for k, (ax, col) in enumerate(zip(axes.flat, targets, strict=False)):
        v = df[col].dropna().to_numpy(dtype=float) if col in df.columns else np.array([])
        view = view_range(v, clip)
        shown = v if view is None else v[(v >= view[0]) & (v <= view[1])]
        note = f"n = {len(v):,}"
        if len(shown):
            ax.hist(shown, bins=_bins(shown, bins), color=PALETTE[k % len(PALETTE)], alpha=0.9, linewidth=0)
            ax.set_ylim(0, ax.get_ylim()[1] * (1.3 if view else 1.12))  # headroom for the note
        else:
            ax.text(0.5, 0.5, "no values", transform=ax.transAxes, ha="center", va="center", color=PALETTE[5])
            ax.set_xticks([])
            ax.set_yticks([])
        if view is not None:
            note += (f"\n{len(v) - len(shown):,} outside the view"
                     f"\n(all: {_num(v.min())} to {_num(v.max())})")
        ax.set_xlabel(axis_label(col))
        ax.set_ylabel("materials")
        corner_text(ax, note)
    for ax in list(axes.flat)[len(targets) :]:
        ax.set_visible(False)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    stamp(fig, profile)
    if path is not None:
        save(fig, path)
    return fig


def soap_sparsity_histogram(X: sps.spmatrix, path: str | Path | None = None, title: str | None = None,
                            profile: str | None = None):
    """Histogram of the nonzeros per crystal, with the vector's length and mean fill in the corner."""
    use_style()
    st = soap_sparsity(X)
    nnz = np.diff(sps.csr_matrix(X).indptr)
    fig, ax = plt.subplots(figsize=(4.2, 2.8))
    ax.hist(nnz, bins=np.arange(-1.5, nnz.max() + 3, 3), color=PALETTE[0], linewidth=0)  # 3 per pair
    ax.set_ylim(0, ax.get_ylim()[1] * 1.45)  # headroom: the note covers no bar
    ax.set_xlabel("nonzero SOAP entries per crystal")
    ax.set_ylabel("crystals")
    corner_text(ax, f"{st['n_features']:,} features\nmean {st['nnz_mean']:.1f} nonzero "
                    f"({100 * st['density']:.2f} %)\nn = {st['n']:,}")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    stamp(fig, profile)
    if path is not None:
        save(fig, path)
    return fig
