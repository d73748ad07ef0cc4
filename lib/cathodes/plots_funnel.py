"""Figures of the screen's funnel and of the known cathodes before and after the universal potential (08).

In the style of :mod:`lib.cathodes.plots` (its saving, titles and the words on an empty axis).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from lib.cathodes.plots import empty_axes, save_figure, set_title
from lib.plots import PALETTE, formula_label, use_style

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def funnel(counts: pd.DataFrame, *, title: str = "", stamp: str | None = None, name: str | None = None,
           profile: str | None = None) -> Figure:
    """The screen's funnel (:func:`lib.cathodes.funnel.funnel_counts`): one bar per stage, its count, and
    beside it how many left there and why."""
    use_style()
    fig, ax = plt.subplots(figsize=(9.0, 0.55 * max(len(counts), 1) + 1.4))
    if counts.empty:
        empty_axes(ax, "no screen was run: no funnel to show")
    else:
        y = np.arange(len(counts))[::-1]
        n = counts["n"].to_numpy(float)
        ax.barh(y, n, color=PALETTE[0], height=0.62)
        ax.set_xscale("symlog", linthresh=10)
        ax.set_xlim(0, max(n.max(), 10) * 60)
        for yi, (_, r) in zip(y, counts.iterrows(), strict=True):
            ax.text(max(r["n"], 1) * 1.12, yi, f"{int(r['n']):,}", va="center", fontsize=9, fontweight="bold")
            if r["dropped"]:
                why = str(r["why"])
                why = why if len(why) < 70 else why[:67] + "..."
                ax.text(max(r["n"], 1) * 2.0, yi, f"−{int(r['dropped']):,}  {why}", va="center", fontsize=7.5,
                        color=PALETTE[5])
        ax.set_yticks(y, counts["stage"])
        ax.set_xlabel("candidates (log scale)")
        ax.spines[["top", "right"]].set_visible(False)
    set_title(ax, title, stamp)
    fig.tight_layout()
    if name:
        save_figure(fig, name, profile)
    return fig


def known_before_after(known: pd.DataFrame, *, title: str = "", stamp: str | None = None, name: str | None = None,
                       profile: str | None = None, tolerance: float = 0.3) -> Figure:
    """The known cathodes through the screen's construction: the GNN route's voltage (open) and the relaxed
    universal potential's (filled) against MP's, joined by an arrow, the ±``tolerance`` band shaded; left,
    the voltages; right, E_hull of the discharged state (GNN on the DFT hull, uMLIP on its own hull)."""
    use_style()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10.5, 0.42 * max(len(known), 3) + 1.8), sharey=True)
    t = known[known["v_mp"].notna()] if len(known) else known
    if t.empty:
        empty_axes(a1, "no known cathode in the mirror")
        empty_axes(a2, "")
    else:
        t = t.sort_values("v_mp").reset_index(drop=True)
        y = np.arange(len(t))
        dv_gnn, dv_u = t["v_ml_screen"] - t["v_mp"], t["umlip_voltage"] - t["v_mp"]
        a1.axvspan(-tolerance, tolerance, color=PALETTE[2], alpha=0.15, lw=0)
        a1.axvline(0, color="black", lw=0.8)
        for yi, g, u in zip(y, dv_gnn, dv_u, strict=True):
            if np.isfinite(g) and np.isfinite(u):
                a1.annotate("", (u, yi), (g, yi), arrowprops={"arrowstyle": "->", "color": "0.6", "lw": 0.8})
        a1.scatter(dv_gnn, y, facecolors="none", edgecolors=PALETTE[1], label="GNN (unrelaxed)", zorder=3)
        a1.scatter(dv_u, y, color=PALETTE[0], label="uMLIP (relaxed)", zorder=3)
        a1.set_xlabel("V − V$_{MP}$ (V), screen construction")
        lab = [f"{formula_label(f)} ({v:.2f} V){'' if s else ' *'}"
               for f, v, s in zip(t["formula"], t["v_mp"], t["same_reaction"], strict=True)]
        a1.set_yticks(y, lab, fontsize=8)
        a1.legend(fontsize=8, loc="lower right")
        a2.axvspan(-0.5, 0.1, color=PALETTE[2], alpha=0.15, lw=0)
        a2.axvline(0, color="black", lw=0.8)
        a2.scatter(t["e_hull_ml"], y, facecolors="none", edgecolors=PALETTE[1], label="GNN, DFT hull", zorder=3)
        a2.scatter(t["umlip_e_hull_discharged"], y, color=PALETTE[0], label="uMLIP, its own hull", zorder=3)
        a2.set_xlabel("E$_{hull}$ of the discharged state (eV/atom),\nthe material left out of its hull")
        a2.legend(fontsize=8, loc="lower right")
    set_title(fig, title, stamp)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    if len(t) and not t["same_reaction"].all():
        fig.text(0.01, 0.01, "* MP's charged state keeps some ions: another reaction than the screen's",
                 fontsize=7, color=PALETTE[5])
    if name:
        save_figure(fig, name, profile)
    return fig


__all__ = ["funnel", "known_before_after"]


def rediscovery(results: pd.DataFrame, *, title: str = "", stamp: str | None = None, name: str | None = None,
                profile: str | None = None, top: float = 5.0) -> Figure:
    """The blind rediscovery (:func:`lib.cathodes.rediscovery.run`): one row per evaluable positive, its rank
    percentile among the passing candidates of its blind run as a bar (the top ``top`` % shaded); a positive
    that is not regenerated, or regenerated but failing, gets no bar but its status in words; positives
    that cannot be evaluated are counted under the axis."""
    use_style()
    ev = results[results["evaluable"].astype(bool)] if len(results) else results
    fig, ax = plt.subplots(figsize=(8.5, 0.32 * max(len(ev), 3) + 1.6))
    if ev.empty:
        empty_axes(ax, "no evaluable positive: nothing to rank")
    else:
        t = ev.assign(_p=ev["passes"].fillna(False).astype(bool) & ev["regenerated"].astype(bool))
        t = t.sort_values(["_p", "rank_pct", "formula"], ascending=[False, True, True]).reset_index(drop=True)
        y = np.arange(len(t))[::-1]
        ax.axvspan(0, top, color=PALETTE[2], alpha=0.18, lw=0, label=f"top {top:g} %")
        for yi, (_, r) in zip(y, t.iterrows(), strict=True):
            if r["_p"]:
                ax.barh(yi, r["rank_pct"], color=PALETTE[0], height=0.62)
                ax.text(r["rank_pct"] + 1, yi, f"{r['rank_pct']:.1f}", va="center", fontsize=7.5)
            else:
                ax.text(1, yi, str(r["status"])[:80], va="center", fontsize=7.5, color=PALETTE[5])
        ax.set_yticks(y, [f"{formula_label(f)} ({i})" for f, i in zip(t["formula"], t["ion"], strict=True)],
                      fontsize=8)
        ax.set_xlim(0, 100)
        ax.set_xlabel("rank percentile among the passing candidates of its blind run (lower is better)")
        ax.legend(fontsize=8, loc="lower right", frameon=False)
        ax.spines[["top", "right"]].set_visible(False)
        n_out = len(results) - len(ev)
        if n_out:
            ax.text(0.0, -0.9 / max(len(t), 3), f"{n_out} positive(s) not evaluable (no ordered structure of the "
                    "formula among the sources)", transform=ax.transAxes, fontsize=7.5, va="top")
    set_title(ax, title, stamp)
    fig.tight_layout()
    if name:
        save_figure(fig, name, profile)
    return fig
