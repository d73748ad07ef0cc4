"""Figures of chapter 08 (electrodes and the cathode screen), in the style of :mod:`lib.plots`.

Every function returns the figure and, given ``profile``, saves it as ``figures/<name>_<profile>.png`` and
``.pdf`` through ``lib.plots.save``. ``stamp`` (e.g. "smoke profile: not meaningful") goes into the title.
Formulas are written with subscripts (:func:`formula_label`). An empty table is said in words on the axes,
never drawn as data.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from ase.data import chemical_symbols
from ase.data.colors import jmol_colors
from ase.visualize.plot import plot_atoms
from matplotlib.patches import Patch
from pymatgen.io.ase import AseAtomsAdaptor

from lib.plots import PALETTE, figure_file, formula_label, save, use_style
from lib.plots import stamp as stamp_banner
from lib.plots.cathodes import ION_COLORS

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

ISO_ENERGIES = (400, 600, 800, 1000)  # Wh/kg


def save_figure(fig: Figure, name: str, profile: str | None) -> list[Path]:
    """``figures/<name>_<profile>.png`` and ``.pdf`` (lib.plots.figure_file; nothing without a profile),
    with the pipeline-test banner of a smoke profile (lib.plots.stamp)."""
    if profile is None:
        return []
    stamp_banner(fig, profile)
    return [save(fig, figure_file(name, profile, ext=ext)) for ext in ("png", "pdf")]


def set_title(ax_or_fig, text: str, stamp: str | None) -> None:
    full = text + (f"\n[{stamp}]" if stamp else "")
    if hasattr(ax_or_fig, "suptitle"):
        ax_or_fig.suptitle(full, color=PALETTE[1] if stamp else "black")
    else:
        ax_or_fig.set_title(full, color=PALETTE[1] if stamp else "black")


def _finish(fig: Figure, target, title: str, stamp: str | None, name: str | None, profile: str | None) -> Figure:
    """Title (on ``target``: an axis or the figure), layout, and the files when ``name`` is given."""
    set_title(target, title, stamp)
    fig.tight_layout()
    if name:
        save_figure(fig, name, profile)
    return fig


def empty_axes(ax: Axes, what: str) -> None:
    ax.text(0.5, 0.5, what, ha="center", va="center", transform=ax.transAxes, color=PALETTE[5], wrap=True)
    ax.set_axis_off()


def _parity_ion(ax: Axes, g: pd.DataFrame, pred: str, ref: str, std: str | None, lim: tuple[float, float],
                ion: str) -> int:
    """One working ion's pairs on the parity plot: σ bars (``std``), points inside ``lim`` and triangles on
    the frame for those beyond; returns how many are beyond."""
    lo, hi = lim
    x, y = g[ref].to_numpy(float), g[pred].to_numpy(float)
    inside = (x >= lo) & (x <= hi) & (y >= lo) & (y <= hi)
    col = ION_COLORS.get(ion, PALETTE[5])
    if std is not None and g[std].notna().any():
        ax.errorbar(
            x[inside],
            y[inside],
            yerr=g[std].to_numpy(float)[inside],
            fmt="none",
            ecolor=col,
            alpha=0.35,
            lw=0.7,
            zorder=2,
        )
    ax.scatter(x[inside], y[inside], s=14, color=col, alpha=0.8, lw=0, zorder=3, label=f"{ion} ({len(g)})")
    ax.scatter(
        np.clip(x[~inside], lo, hi),
        np.clip(y[~inside], lo, hi),
        s=22,
        marker="^",
        color=col,
        alpha=0.9,
        lw=0,
        zorder=3,
        clip_on=False,
    )
    return int((~inside).sum())


def _parity_note(ax: Axes, t: pd.DataFrame, pred: str, ref: str, outside: int) -> None:
    """The parity plot's corner: n, MAE, median error, the share within 0.1 V and how many lie beyond."""
    e = np.abs(t[pred].to_numpy(float) - t[ref].to_numpy(float))
    note = (
        f"n = {len(t)}\nMAE {e.mean():.2f} V\nmedian {np.median(e):.3f} V\n"
        f"within 0.1 V: {np.mean(e <= 0.1):.0%}" + (f"\n{outside} beyond the axes (▲)" if outside else "")
    )
    ax.text(
        0.03,
        0.97,
        note,
        transform=ax.transAxes,
        ha="left",
        va="top",
        fontsize=8,
        bbox={"boxstyle": "round,pad=0.25", "facecolor": "white", "edgecolor": "none", "alpha": 0.85},
    )


def voltage_parity(
    table: pd.DataFrame,
    pred: str,
    ref: str,
    *,
    pred_label: str,
    ref_label: str,
    std: str | None = None,
    title: str = "",
    stamp: str | None = None,
    name: str | None = None,
    profile: str | None = None,
    lim: tuple[float, float] = (-1.0, 7.0),
) -> Figure:
    """``pred`` against ``ref`` voltage (V), one colour per working ion, y = x and ±0.1 V bands; σ bars from
    ``std``. Points beyond ``lim`` are drawn as triangles on the frame and counted in the corner."""
    use_style()
    fig, ax = plt.subplots(figsize=(4.6, 4.4))
    t = table[np.isfinite(table[pred].astype(float)) & np.isfinite(table[ref].astype(float))]
    if t.empty:
        empty_axes(ax, "no pair has both voltages")
    else:
        lo, hi = lim
        xs = np.linspace(lo, hi, 2)
        ax.plot(xs, xs, color=PALETTE[5], lw=0.8, zorder=1)
        ax.fill_between(xs, xs - 0.1, xs + 0.1, color=PALETTE[5], alpha=0.12, lw=0, zorder=0, label="±0.1 V")
        outside = 0
        for ion in t["ion"].value_counts().index:
            outside += _parity_ion(ax, t[t["ion"] == ion], pred, ref, std, lim, ion)
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.set_aspect("equal")
        _parity_note(ax, t, pred, ref, outside)
        ax.legend(loc="lower right", fontsize=7, markerscale=1.2)
    ax.set_xlabel(ref_label)
    ax.set_ylabel(pred_label)
    set_title(ax, title, stamp)
    fig.tight_layout()
    if name:
        save_figure(fig, name, profile)
    return fig


def _iso_lines(ax: Axes, qmax: float, vmax: float) -> None:
    """Curves of equal specific energy V = E / Q, labelled at the top edge."""
    q = np.linspace(1, qmax, 200)
    for e in ISO_ENERGIES:
        v = e / q
        ok = v <= vmax
        ax.plot(q[ok], v[ok], color=PALETTE[5], lw=0.7, ls="--", zorder=1)
        if ok.any():  # labelled where the curve leaves the top of the panel
            ax.text(
                e / vmax,
                vmax,
                f"{e}" + (" Wh/kg" if e == ISO_ENERGIES[-1] else ""),
                fontsize=7,
                color=PALETTE[5],
                va="top",
                ha="left",
            )


def _place_labels(ax: Axes, labels: list[tuple[float, float, str, str]], fontsize: int = 7) -> None:
    """Formula labels next to their points, each moved to the first of a few offsets where it overlaps
    no label placed before it (greedy, in order: the first labels get the best spots); a label with no free
    spot is left out. Call it after the axis limits are set (it measures the labels on screen)."""
    fig = ax.figure
    renderer = fig.canvas.get_renderer()
    placed = []
    offsets = [(4, 3), (4, -10), (-4, 3), (-4, -10), (4, 12), (4, -19), (-4, 12), (-4, -19)]
    for x, y, text, color in labels:
        ann = None
        for dx, dy in offsets:
            if ann is not None:
                ann.remove()
                ann = None
            ann = ax.annotate(
                formula_label(text),
                (x, y),
                xytext=(dx, dy),
                textcoords="offset points",
                fontsize=fontsize,
                color=color,
                bbox={"boxstyle": "round,pad=0.1", "facecolor": "white", "edgecolor": "none", "alpha": 0.75},
                ha="left" if dx > 0 else "right",
                zorder=6,
            )
            box = ann.get_window_extent(renderer)
            if not any(box.overlaps(p) for p in placed):
                placed.append(box)
                break
        else:
            ann.remove()


def _finite_rows(res: pd.DataFrame, x: str, y: str) -> pd.DataFrame:
    """The rows of a screen result with finite ``x`` and ``y`` (the scored candidates)."""
    return (
        res[
            np.isfinite(res.get(x, pd.Series(dtype=float)))
            & np.isfinite(res.get(y, pd.Series(dtype=float)))
        ]
        if len(res)
        else res
    )


def _voltage_capacity_limits(t: pd.DataFrame, known: pd.DataFrame | None) -> tuple[float, float, float]:
    """The voltage range (vmin, vmax) and the largest capacity (qmax) of the voltage-capacity panel."""
    vmin = min(0.0, float(t["voltage"].min()) - 0.3)
    vmax = max(5.5, float(t["voltage"].quantile(0.99)) + 0.3)
    qmax = float(t["capacity_grav"].max()) * 1.08
    if known is not None and len(known) and "capacity_grav_screen" in known:
        qmax = max(qmax, float(np.nanmax(known["capacity_grav_screen"].to_numpy(float), initial=0)) * 1.08)
    return vmin, vmax, qmax


def _voltage_error_bars(ax: Axes, t: pd.DataFrame, passing: pd.DataFrame) -> None:
    """σ_V bars on the passing candidates only."""
    if "voltage_std" in t and passing["voltage_std"].notna().any():
        ax.errorbar(
            passing["capacity_grav"],
            passing["voltage"],
            yerr=passing["voltage_std"],
            fmt="none",
            ecolor="#888888",
            alpha=0.5,
            lw=0.7,
            zorder=2,
        )


def _candidates_by_e_hull(ax: Axes, t: pd.DataFrame, lo_c: float, e_hull_max: float):
    """Every scored candidate at (capacity, voltage), coloured by its clipped E_hull; returns the scatter."""
    return ax.scatter(
        t["capacity_grav"],
        t["voltage"],
        c=t["e_hull_discharged"].clip(lo_c, e_hull_max),
        cmap="viridis_r",
        vmin=lo_c,
        vmax=e_hull_max,
        s=14,
        lw=0.2,
        edgecolor="white",
        zorder=3,
    )


def _passing_rings(ax: Axes, passing: pd.DataFrame) -> None:
    """A ring around each candidate that passes the filters."""
    ax.scatter(
        passing["capacity_grav"],
        passing["voltage"],
        s=30,
        facecolor="none",
        edgecolor=PALETTE[1],
        lw=0.8,
        zorder=4,
        label=f"pass the filters ({len(passing)}; ±σ$_V$ bars)",
    )


def _e_hull_colorbar(fig: Figure, ax: Axes, sc, lo_c: float, e_hull_max: float) -> None:
    """The colour bar of E_hull (clipped at both ends)."""
    fig.colorbar(
        sc,
        ax=ax,
        label=f"E above hull, discharged (eV/atom; clipped to {lo_c:g}…{e_hull_max:g})",
        extend="both",
    )


def _known_diamonds(ax: Axes, known: pd.DataFrame) -> list[tuple[float, float, str, str]]:
    """The known cathodes (the same pipeline, same reaction as MP's) as black diamonds; returns their
    labels."""
    k = known.dropna(subset=["v_ml_screen"])
    k = k[k["same_reaction"]] if "same_reaction" in k else k
    cap = k["capacity_grav_screen"]
    ax.scatter(cap, k["v_ml_screen"], marker="D", s=26, color="black", zorder=5,
               label="known cathodes (same pipeline)")
    return [(q, v, f, "#444444") for q, v, f in zip(cap, k["v_ml_screen"], k["formula"], strict=True)]


def voltage_capacity(
    res: pd.DataFrame,
    *,
    known: pd.DataFrame | None = None,
    n_labels: int = 6,
    title: str = "",
    stamp: str | None = None,
    name: str | None = None,
    profile: str | None = None,
    e_hull_max: float = 0.3,
) -> Figure:
    """Predicted voltage against gravimetric capacity of the screened candidates, coloured by the discharged
    state's energy above the hull (clipped to the screen's lower bound and ``e_hull_max``), the candidates
    that pass the filters circled with σ_V bars, lines of equal specific energy (400-1000 Wh/kg), the top
    ``n_labels`` passing candidates named; known cathodes (``known``, the same pipeline's values) as black
    diamonds."""
    use_style()
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    t = _finite_rows(res, "voltage", "capacity_grav")
    if t.empty:
        empty_axes(ax, "no candidate was scored: nothing to show")
    else:
        vmin, vmax, qmax = _voltage_capacity_limits(t, known)
        _iso_lines(ax, qmax, vmax)
        passing = t[t["passes"]] if "passes" in t else t.iloc[:0]
        _voltage_error_bars(ax, t, passing)
        lo_c = res.attrs.get("min_e_hull", -0.1)
        sc = _candidates_by_e_hull(ax, t, lo_c, e_hull_max)
        _passing_rings(ax, passing)
        _e_hull_colorbar(fig, ax, sc, lo_c, e_hull_max)
        top = t[t["passes"]].head(n_labels) if "passes" in t else t.head(0)
        labels = [(r["capacity_grav"], r["voltage"], r["formula"], "black") for _, r in top.iterrows()]
        if known is not None and len(known):
            labels += _known_diamonds(ax, known)
        ax.legend(loc="upper right", fontsize=7)
        ax.set_xlim(0, qmax)
        ax.set_ylim(vmin, vmax)
        _place_labels(ax, labels)
        n_pass = int(t["passes"].sum()) if "passes" in t else 0
        title = f"{title}: {len(t):,} candidates, {n_pass} pass the filters" if title else title
    ax.set_xlabel("gravimetric capacity (mAh/g)")
    ax.set_ylabel("predicted average voltage (V)")
    return _finish(fig, ax, title, stamp, name, profile)


def _model_error_zone(ax: Axes, lo_e: float) -> None:
    """The zone below the screen's lower E_hull bound, shaded and named."""
    ax.axvspan(-10, lo_e, color=PALETTE[5], alpha=0.08, lw=0, zorder=0)
    ax.text(
        lo_e,
        0.02,
        "model error\nsuspected ",
        transform=ax.get_xaxis_transform(),
        ha="right",
        fontsize=7,
        color=PALETTE[5],
    )


def _pareto_candidates(ax: Axes, t: pd.DataFrame) -> None:
    """Every scored candidate at (E_hull, specific energy)."""
    ax.scatter(
        t["e_hull_discharged"],
        t["specific_energy"],
        s=10,
        color=PALETTE[0],
        alpha=0.5,
        lw=0,
        label="candidates",
    )


def _front_line(ax: Axes, f: pd.DataFrame) -> None:
    """The Pareto front joined, with σ bars (σ_Ef in x, capacity × σ_V in y) on its points only (thousands
    of bars would hide the data)."""
    if f["ef_discharged_std"].notna().any():
        ax.errorbar(
            f["e_hull_discharged"],
            f["specific_energy"],
            xerr=f["ef_discharged_std"],
            yerr=f["capacity_grav"] * f["voltage_std"],
            fmt="none",
            ecolor=PALETTE[1],
            alpha=0.5,
            lw=0.8,
            zorder=3,
        )
    ax.plot(
        f["e_hull_discharged"],
        f["specific_energy"],
        "-o",
        color=PALETTE[1],
        ms=4,
        lw=1.2,
        zorder=4,
        label=f"Pareto front ({len(f)}; ±σ bars)",
    )


def _e_hull_threshold(ax: Axes, thr: float) -> None:
    """The screen's E_hull threshold (dotted, labelled at the top) and E_hull = 0."""
    ax.axvline(thr, color=PALETTE[5], lw=0.8, ls=":")
    ax.text(
        thr,
        1.0,
        f" {thr:g} eV/atom",
        transform=ax.get_xaxis_transform(),
        fontsize=7,
        color=PALETTE[5],
        va="top",
    )
    ax.axvline(0, color=PALETTE[5], lw=0.6)


def _beyond_note(ax: Axes, beyond: int) -> None:
    """How many candidates lie beyond the panel's E_hull range (nothing if none)."""
    if beyond:
        ax.text(
            0.99,
            0.02,
            f"{beyond} beyond 1 eV/atom, not shown",
            transform=ax.transAxes,
            ha="right",
            fontsize=7,
            color=PALETTE[5],
        )


def pareto_front(
    res: pd.DataFrame,
    *,
    title: str = "",
    stamp: str | None = None,
    name: str | None = None,
    profile: str | None = None,
    n_labels: int = 6,
) -> Figure:
    """Predicted specific energy against the discharged state's energy above the hull; the Pareto front
    (no candidate better in both, among those not flagged as model errors) joined and labelled, with σ bars
    from σ_Ef (x) and capacity × σ_V (y); the zone below the screen's lower E_hull bound shaded."""
    use_style()
    fig, ax = plt.subplots(figsize=(6.0, 4.4))
    t = _finite_rows(res, "specific_energy", "e_hull_discharged")
    if t.empty:
        empty_axes(ax, "no candidate was scored: no Pareto front")
    else:
        f = t[t["pareto"]].sort_values("e_hull_discharged")
        _model_error_zone(ax, res.attrs.get("min_e_hull", -0.1))
        _pareto_candidates(ax, t)
        _front_line(ax, f)
        _e_hull_threshold(ax, res.attrs.get("max_e_hull", 0.1))
        ax.legend(loc="best", fontsize=8)
        lo = float(t["e_hull_discharged"].min())
        hi = min(float(t["e_hull_discharged"].max()), 1.0)
        ax.set_xlim(min(lo, -0.05) - 0.02, max(hi, 0.3) + 0.05)
        top = f.sort_values("specific_energy", ascending=False).head(n_labels)
        _place_labels(
            ax,
            [
                (r["e_hull_discharged"], r["specific_energy"], r["formula"], "black")
                for _, r in top.iterrows()
            ],
        )
        _beyond_note(ax, int((t["e_hull_discharged"] > max(hi, 0.3) + 0.05).sum()))
    ax.set_xlabel("E above hull, discharged state (eV/atom; < 0: below the mirror's hull)")
    ax.set_ylabel("predicted specific energy (Wh/kg)")
    return _finish(fig, ax, title, stamp, name, profile)


def top_candidates(
    res: pd.DataFrame,
    *,
    n: int = 6,
    title: str = "",
    stamp: str | None = None,
    name: str | None = None,
    profile: str | None = None,
) -> Figure:
    """The ``n`` best-ranked candidates that pass the screen's filters, drawn (ase's ``plot_atoms``: the
    discharged cell, slightly rotated, atoms coloured by element), each with rank, formula, voltage, capacity
    and E_hull. If none passes, the best-ranked ones are drawn and the title says that none passes."""
    use_style()
    passing = res[res["passes"]] if len(res) and "passes" in res else res.iloc[:0]
    top = (passing if len(passing) else res).head(n)
    if len(res) and not len(passing):
        title = (title + "\n" if title else "") + "none passes the filters: the best-ranked failing ones"
    cols = min(3, max(1, len(top)))
    rows = int(np.ceil(max(1, len(top)) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.3 * cols, 3.4 * rows + 0.6), squeeze=False)
    if top.empty:
        empty_axes(axes[0, 0], "no candidate to draw")
    for ax, (_, r) in zip(axes.flat, top.iterrows(), strict=False):
        atoms = AseAtomsAdaptor.get_atoms(r["discharged"].to_structure())
        plot_atoms(atoms, ax, radii=0.4, rotation="15x,20y,0z", show_unit_cell=2)
        ax.set_axis_off()
        ax.set_title(
            f"#{r['rank']} {formula_label(r['formula'])} ({r['prototype']})\n{r['voltage']:.2f} V, "
            f"{r['capacity_grav']:.0f} mAh/g, E$_{{hull}}$ {r['e_hull_discharged']:+.2f} eV/atom",
            fontsize=8,
        )
    for ax in list(axes.flat)[max(1, len(top)) :]:
        ax.set_visible(False)
    if len(top):  # which colour is which element (ase's jmol colours)

        zs = sorted({int(z) for c in top["discharged"] for z in c.numbers})
        fig.legend(
            handles=[
                Patch(facecolor=jmol_colors[z], edgecolor="black", label=chemical_symbols[z]) for z in zs
            ],
            loc="lower center",
            ncol=min(len(zs), 10),
            fontsize=8,
            bbox_to_anchor=(0.5, -0.01),
        )
    set_title(fig, title, stamp)
    fig.tight_layout()
    if name:
        save_figure(fig, name, profile)
    return fig


__all__ = [
    "formula_label",
    "save_figure",
    "voltage_parity",
    "voltage_capacity",
    "pareto_front",
    "top_candidates",
]
