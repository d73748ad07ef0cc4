"""XGNN figures (07_xgnn): the thesis's Figures 15-18, the explanations beside the data, training curves,
example graphs."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from lib.data.targets import TARGETS
from lib.plots import PALETTE, corner_text, save, use_style
from lib.xgnn.analysis import explanation_counts
from lib.xgnn.generator import canonical_form


def _xgnn_class_titles(doc: dict) -> list[str]:
    """'low (≤ 0.67 eV)' / 'high (> 0.67 eV)' from an explanations document."""
    unit = doc.get("unit") or ""
    unit = "" if unit in ("–", "-") else f" {unit}"
    thr = doc.get("threshold")
    if thr is None:
        return ["class 0 (low)", "class 1 (high)"]
    return [f"low (≤ {thr:.3g}{unit})", f"high (> {thr:.3g}{unit})"]


def _lower_heatmap(ax: Axes, counts: np.ndarray, names: Sequence[str], cmap: str, annotate: bool = True,
                   fmt=None, vlim: tuple[float, float] | None = None, title_axis: str = ""):
    """Lower-triangle heatmap of a symmetric label-pair matrix (rows ≥ columns), counts written in cells."""
    n = len(names)
    m = np.array(counts, dtype=float)
    mask = np.triu(np.ones((n, n), dtype=bool), k=1)
    shown = np.ma.masked_array(m, mask=mask | ~np.isfinite(m))
    kw = {} if vlim is None else {"vmin": vlim[0], "vmax": vlim[1]}
    im = ax.imshow(shown, cmap=cmap, origin="upper", aspect="equal", **kw)
    ax.set_xticks(range(n), names, fontsize=7 if n > 10 else 9)
    ax.set_yticks(range(n), names, fontsize=7 if n > 10 else 9)
    ax.set_xlabel(title_axis)
    ax.set_ylabel(title_axis)
    ax.grid(False)
    if annotate:
        lim = np.nanmax(np.abs(m[~mask])) if np.isfinite(m[~mask]).any() else 1.0
        for i in range(n):
            for j in range(i + 1):
                v = m[i, j]
                if not np.isfinite(v) or (fmt is None and v == 0):
                    continue
                text = fmt(i, j) if fmt is not None else f"{int(v)}"
                if not text:
                    continue
                dark = abs(v) > 0.6 * lim if lim else False
                ax.text(j, i, text, ha="center", va="center", fontsize=6 if n > 10 else 8,
                        color="white" if dark else "#222222")
    return im


def xgnn_explanations(doc: dict, *, path: str | Path | None = None) -> Figure:
    """The thesis's Figures 15-18: per class, how often each label occurs in the explanations (left) and
    how often each pair of labels is joined by an edge (right, counts in the cells)."""
    use_style()
    names = doc["label_names"]
    nl = len(names)
    wide = nl > 10
    fig, axes = plt.subplots(2, 2, figsize=(12.5, 9.5) if wide else (9.5, 7.5),
                             gridspec_kw={"width_ratios": [1.1, 1]}, squeeze=False)
    titles = _xgnn_class_titles(doc)
    cmaps = ("Blues", "Reds")
    for c in (0, 1):
        cls = doc["classes"][str(c)]
        expl = cls["explanations"]
        lab, pairs = explanation_counts(expl, nl)
        ax = axes[c, 0]
        ax.bar(range(nl), lab, color=PALETTE[c], width=0.8, linewidth=0)
        ax.set_xticks(range(nl), names)
        ax.set_xlim(-0.6, nl - 0.4)
        ax.set_xlabel(doc["labelling"])
        ax.set_ylabel("atoms in the explanations")
        ax.set_title(f"class {titles[c]}")
        if lab.sum():
            ax.set_ylim(0, lab.max() * 1.18)
        corner_text(ax, f"{cls['kept']} of {cls['requested']} kept, {cls['attempts']:,} tried"
                    f"\n{cls['unique']} distinct graphs")
        ax2 = axes[c, 1]
        im = _lower_heatmap(ax2, pairs, names, cmaps[c], title_axis=doc["labelling"])
        ax2.set_title(f"edges between labels, class {titles[c].split(' ')[0]}")
        fig.colorbar(im, ax=ax2, fraction=0.046, pad=0.03, label="edges")
        if not expl:
            for a in (ax, ax2):
                a.text(0.5, 0.5, f"no explanation with p > {cls.get('keep_threshold', 0.8):g}", ha="center",
                       va="center", transform=a.transAxes, color=PALETTE[5])
    t = TARGETS.get(doc["property"])
    acc = doc.get("classifier", {}).get("test_accuracy")
    acc_s = f", classifier test accuracy {acc:.2f}" if acc is not None else ""
    fig.suptitle(f"XGNN explanations: {t.label if t else doc['property']} by periodic {doc['labelling']} "
                 f"({doc['profile']}, seed {doc['seed']}{acc_s})")
    fig.tight_layout()
    if path is not None:
        save(fig, path)
    return fig


def xgnn_enrichment(table: pd.DataFrame, *, agreement: dict | None = None, path: str | Path | None = None,
                    title: str | None = None) -> Figure:
    """Each label and label pair: log2 of its frequency in the high class over the low class, in the XGNN
    explanations and in the real crystals, side by side (bars for labels, heatmaps for pairs, and one
    scatter of the two against each other)."""
    use_style()
    lab = table[table["kind"] == "label"].reset_index(drop=True)
    pair = table[table["kind"] == "pair"].reset_index(drop=True)
    names = lab["a"].tolist()
    nl = len(names)
    idx = {n: i for i, n in enumerate(names)}
    wide = nl > 10
    fig, axes = plt.subplots(2, 2, figsize=(13, 11) if wide else (10, 8.5), squeeze=False,
                             layout="constrained")

    ax = axes[0, 0]
    x = np.arange(nl)
    ex = lab["log2_expl"].to_numpy(dtype=float)
    da = lab["log2_data"].to_numpy(dtype=float)
    ax.bar(x - 0.2, np.nan_to_num(ex), width=0.4, color=PALETTE[0], label="XGNN explanations")
    ax.bar(x + 0.2, np.nan_to_num(da), width=0.4, color=PALETTE[2], label="crystals (data)")
    ax.axhline(0, color=PALETTE[5], linewidth=0.8)
    ax.set_xticks(x, names, fontsize=8 if wide else 9)
    ax.set_xlim(-0.6, nl - 0.4)
    ax.set_xlabel(table.attrs.get("labelling", "label"))
    ax.set_ylabel("log₂ (freq. high / freq. low)")
    ax.set_title("atoms: enrichment in the high class")
    lo, hi = ax.get_ylim()
    for i in range(nl):
        r = lab.iloc[i]
        if r["n_high_expl"] + r["n_low_expl"]:
            ax.text(i - 0.2, np.nan_to_num(ex[i]), f"{r['n_high_expl']}:{r['n_low_expl']}", rotation=90,
                    ha="center", va="bottom" if ex[i] >= 0 else "top", fontsize=6, color=PALETTE[0])
    ax.set_ylim(lo - 0.15 * (hi - lo), hi + 0.15 * (hi - lo))
    ax.legend(loc="lower left", fontsize=8)

    def mat(col):
        m = np.full((nl, nl), np.nan)
        for _, r in pair.iterrows():
            m[idx[r["a"]], idx[r["b"]]] = r[col]
        return m

    m_ex, m_da = mat("log2_expl"), mat("log2_data")
    n_hi, n_lo = mat("n_high_expl"), mat("n_low_expl")
    lim = np.nanmax(np.abs(np.concatenate([m_ex[np.isfinite(m_ex)], m_da[np.isfinite(m_da)], [1.0]])))
    lim = float(min(lim, 8.0))

    def fmt_ex(i, j):
        h, lo_ = n_hi[i, j], n_lo[i, j]
        return f"{int(h)}:{int(lo_)}" if np.isfinite(h) and h + lo_ > 0 else ""

    im = _lower_heatmap(axes[1, 0], m_ex, names, "RdBu_r", annotate=True, fmt=fmt_ex, vlim=(-lim, lim),
                        title_axis=table.attrs.get("labelling", ""))
    axes[1, 0].set_title("edges in the explanations (counts high:low)")
    _lower_heatmap(axes[1, 1], m_da, names, "RdBu_r", annotate=not wide,
                   fmt=(lambda i, j: f"{m_da[i, j]:+.1f}" if np.isfinite(m_da[i, j]) else ""),
                   vlim=(-lim, lim), title_axis=table.attrs.get("labelling", ""))
    axes[1, 1].set_title("edges in the crystals (CGCNN graph)")
    fig.colorbar(im, ax=axes[1, :].tolist(), shrink=0.8, label="log₂ (freq. high / freq. low)")

    ax = axes[0, 1]
    pe, pd_ = pair["log2_expl"].to_numpy(dtype=float), pair["log2_data"].to_numpy(dtype=float)
    n_pair = (pair["n_high_expl"] + pair["n_low_expl"]).to_numpy(dtype=float)
    ok = np.isfinite(pe) & np.isfinite(pd_) & (n_pair > 0)
    ax.scatter(pd_[ok], pe[ok], s=8 + 4 * np.sqrt(n_pair[ok]), color=PALETTE[4], alpha=0.45, linewidth=0,
               label="label pairs (size: edges in explanations)")
    n_lab = (lab["n_high_expl"] + lab["n_low_expl"]).to_numpy(dtype=float)
    okl = np.isfinite(ex) & np.isfinite(da) & (n_lab > 0)
    ax.scatter(da[okl], ex[okl], s=28, color=PALETTE[0], label="labels", zorder=3)
    for i in np.flatnonzero(okl):
        ax.annotate(names[i], (da[i], ex[i]), fontsize=7, xytext=(3, 2), textcoords="offset points")
    ax.axhline(0, color=PALETTE[5], linewidth=0.6)
    ax.axvline(0, color=PALETTE[5], linewidth=0.6)
    ax.set_xlabel("log₂ enrichment in the crystals")
    ax.set_ylabel("log₂ enrichment in the explanations")
    ax.set_title("do the explanations tell the data's story?")
    ax.legend(loc="best", fontsize=7)
    if agreement:
        def _rho(v: float) -> str:
            return "n/a" if not np.isfinite(v) else f"{v:+.2f}"

        lines = [f"{k}s: Spearman {_rho(v['spearman'])}, same sign {v['same_sign']:.0%} (n={v['n']})"
                 for k, v in agreement.items() if v["n"]]
        if lines:
            ax.text(0.03, 0.97, "\n".join(lines), transform=ax.transAxes, va="top", fontsize=7,
                    bbox={"boxstyle": "round,pad=0.25", "facecolor": "white", "edgecolor": "none",
                          "alpha": 0.85})
    if title:
        fig.suptitle(title)
    if path is not None:
        save(fig, path)
    return fig


def xgnn_training(doc: dict, *, path: str | Path | None = None) -> Figure:
    """The generators' training: mean reward per action and p(class) of the final graphs, per class."""
    use_style()
    titles = _xgnn_class_titles(doc)
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    for c in (0, 1):
        h = doc["classes"][str(c)]["history"]
        if not h["episodes"]:
            continue
        axes[0].plot(h["episodes"], h["mean_reward"], color=PALETTE[c], marker="o", markersize=3,
                     label=f"class {titles[c]}")
        axes[1].plot(h["episodes"], h["final_probability"], color=PALETTE[c], marker="o", markersize=3)
    axes[0].set_ylabel("mean reward per action")
    axes[1].set_ylabel("p(class) of the final graphs")
    axes[1].axhline(doc["config"]["keep_threshold"], color=PALETTE[5], linewidth=0.8, linestyle="--")
    for ax in axes:
        ax.set_xlabel("training episodes")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    if path is not None:
        save(fig, path)
    return fig


def xgnn_graphs(doc: dict, *, per_class: int = 4, path: str | Path | None = None) -> Figure:
    """The most frequent explanation graphs of each class (atoms on a circle, labelled by group/period),
    with how often each was generated and its mean probability."""
    use_style()
    fig, axes = plt.subplots(2, per_class, figsize=(2.3 * per_class, 5.0), squeeze=False)
    titles = _xgnn_class_titles(doc)
    for c in (0, 1):
        expl = doc["classes"][str(c)]["explanations"]
        groups: dict = {}
        for e in expl:
            groups.setdefault(canonical_form(e["labels"], [tuple(x) for x in e["edges"]]), []).append(e)
        top = sorted(groups.values(), key=lambda g: (-len(g), -np.mean([e["probability"] for e in g])))
        for k in range(per_class):
            ax = axes[c, k]
            ax.set_axis_off()
            ax.set_aspect("equal")
            if k == 0:
                ax.text(-0.1, 0.5, f"class {titles[c]}", transform=ax.transAxes, rotation=90, ha="right",
                        va="center")
            if k >= len(top):
                continue
            e = top[k][0]
            n = len(e["labels"])
            ang = np.pi / 2 + 2 * np.pi * np.arange(n) / max(n, 1)
            xy = np.c_[np.cos(ang), np.sin(ang)] * (0 if n == 1 else 1)
            for i, j in e["edges"]:
                ax.plot(*xy[[i, j]].T, color=PALETTE[5], linewidth=1.2, zorder=1)
            ax.scatter(xy[:, 0], xy[:, 1], s=330, color=PALETTE[c], zorder=2, linewidth=0)
            for (x, y), lab in zip(xy, e["labels"], strict=True):
                ax.text(x, y, str(lab), ha="center", va="center", color="white", fontsize=9, zorder=3)
            ax.set_xlim(-1.4, 1.4)
            ax.set_ylim(-1.5, 1.4)
            p = np.mean([x["probability"] for x in top[k]])
            ax.set_title(f"×{len(top[k])}, p = {p:.2f}", fontsize=9)
    fig.suptitle(f"most frequent explanations (atoms labelled by {doc['labelling']})")
    fig.tight_layout()
    if path is not None:
        save(fig, path)
    return fig
