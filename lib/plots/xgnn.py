"""XGNN figures (07_xgnn): the thesis's Figures 15-18, the explanations beside the data, training curves,
example graphs.

A class without a kept explanation (no graph reached the keep threshold) is said in words in its panels
(:func:`empty_note`): it is never drawn as bars of zeros, an empty heatmap or a colour bar of nothing.
Every figure of the smoke profile carries its banner (:func:`lib.plots.stamp`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from lib.plots.base import PALETTE, corner_text, save, stamp, target_label, use_style
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


def empty_note(cls: dict, doc: dict | None = None) -> str:
    """'no graph reached p > 0.8 in 1,000 tries': what a class without explanations says in its panels."""
    thr = cls.get("keep_threshold", (doc or {}).get("config", {}).get("keep_threshold", 0.8))
    tries = cls.get("attempts")
    return f"no graph reached p > {thr:g}" + (f"\nin {int(tries):,} tries" if tries is not None else "")


def _say(ax: Axes, text: str, keep_title: bool = True) -> None:
    """A panel with nothing to draw: the reason in words, no ticks, no axis range, no frame."""
    title = ax.get_title()
    ax.cla()
    ax.set_axis_off()
    if keep_title and title:
        ax.set_title(title)
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color=PALETTE[5], fontsize=10,
            wrap=True)


def _property_title(doc: dict) -> str:
    return f"{target_label(doc['property'])} by periodic {doc['labelling']}"


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
        ax, ax2 = axes[c, 0], axes[c, 1]
        ax.set_title(f"class {titles[c]}")
        ax2.set_title(f"edges between labels, class {titles[c].split(' ')[0]}")
        if not expl:  # nothing to count: say so, draw no bars, no heatmap, no colour bar
            note = empty_note(cls, doc)
            _say(ax, f"{note}\n({cls.get('kept', 0)} of {cls.get('requested', '?')} kept):\n"
                     "no explanation of this class")
            _say(ax2, "no explanation, no edges to count")
            continue
        lab, pairs = explanation_counts(expl, nl)
        ax.bar(range(nl), lab, color=PALETTE[c], width=0.8, linewidth=0)
        ax.set_xticks(range(nl), names)
        ax.set_xlim(-0.6, nl - 0.4)
        ax.set_xlabel(doc["labelling"])
        ax.set_ylabel("atoms in the explanations")
        ax.set_ylim(0, max(lab.max(), 1) * 1.18)
        corner_text(ax, f"{cls['kept']} of {cls['requested']} kept, {cls['attempts']:,} tried"
                    f"\n{cls['unique']} distinct graphs")
        im = _lower_heatmap(ax2, pairs, names, cmaps[c], title_axis=doc["labelling"])
        if pairs.sum():
            fig.colorbar(im, ax=ax2, fraction=0.046, pad=0.03, label="edges")
        else:
            corner_text(ax2, "no edges: single-atom graphs")
    acc = doc.get("classifier", {}).get("test_accuracy")
    acc_s = f", classifier test accuracy {acc:.2f}" if acc is not None else ""
    fig.suptitle(f"XGNN explanations: {_property_title(doc)} ({doc['profile']}, seed {doc['seed']}{acc_s})")
    fig.tight_layout()
    stamp(fig, doc.get("profile"))
    if path is not None:
        save(fig, path)
    return fig


def _missing_explanations(table: pd.DataFrame) -> list[str]:
    """Why the explanation side of an enrichment table is empty: one note per class without explanations
    (from the table's attrs, else from its counts)."""
    info = table.attrs.get("explanations") or {}
    lab = table[table["kind"] == "label"]
    notes = []
    for name, col in (("low", "n_low_expl"), ("high", "n_high_expl")):
        if lab[col].sum() > 0:
            continue
        cls = info.get(name, {})
        notes.append(f"class {name}: " + empty_note(cls).replace("\n", " ") if cls
                     else f"class {name}: no explanation")
    return notes


def xgnn_enrichment(table: pd.DataFrame, *, agreement: dict | None = None, path: str | Path | None = None,
                    title: str | None = None) -> Figure:
    """Each label and label pair: log2 of its frequency in the high class over the low class, in the XGNN
    explanations and in the real crystals, side by side (bars for labels, heatmaps for pairs, and one
    scatter of the two against each other).

    Where a class has no explanation, high over low is not defined for the explanations: their panels say
    so and only the crystals' side is drawn. title: default '<property label> by <labelling>: ...' from
    the table's attrs (:func:`lib.xgnn.enrichment_table`).
    """
    use_style()
    lab = table[table["kind"] == "label"].reset_index(drop=True)
    pair = table[table["kind"] == "pair"].reset_index(drop=True)
    names = lab["a"].tolist()
    wide = len(names) > 10
    labelling = table.attrs.get("labelling", "label")
    missing = _missing_explanations(table)
    no_expl = "\n".join(missing) + "\nno enrichment in the explanations" if missing else ""
    fig, axes = plt.subplots(2, 2, figsize=(13, 11) if wide else (10, 8.5), squeeze=False,
                             layout="constrained")

    ex, da = _label_bars(axes[0, 0], lab, names, labelling, missing, wide)
    _pair_heatmaps(fig, axes[1, :], pair, names, labelling, missing, no_expl, wide)

    ax = axes[0, 1]
    ax.set_title("do the explanations tell the data's story?")
    if missing:
        _say(ax, no_expl + ":\nnothing to set beside the crystals")
    else:
        _enrichment_scatter(ax, lab, pair, names, ex, da, agreement)
    if title is None and "property" in table.attrs:
        title = (f"{target_label(table.attrs['property'])} by {labelling}: high vs low class, "
                 "explanations and crystals")
        if table.attrs.get("profile") is not None:
            title += f" ({table.attrs['profile']}, seed {table.attrs.get('seed')})"
    if title:
        fig.suptitle(title)
    stamp(fig, table.attrs.get("profile"))
    if path is not None:
        save(fig, path)
    return fig


def _label_bars(ax: Axes, lab: pd.DataFrame, names: list, labelling: str, missing: list, wide: bool
                ) -> tuple[np.ndarray, np.ndarray]:
    """Each label's enrichment in the high class, explanations beside crystals (the crystals alone where a
    class has no explanation); (log2 in the explanations, NaN then; log2 in the crystals)."""
    nl = len(names)
    x = np.arange(nl)
    ex = lab["log2_expl"].to_numpy(dtype=float)
    da = lab["log2_data"].to_numpy(dtype=float)
    if missing:
        ex = np.full(nl, np.nan)
        ax.bar(x, np.nan_to_num(da), width=0.6, color=PALETTE[2], label="crystals (data)")
    else:
        ax.bar(x - 0.2, np.nan_to_num(ex), width=0.4, color=PALETTE[0], label="XGNN explanations")
        ax.bar(x + 0.2, np.nan_to_num(da), width=0.4, color=PALETTE[2], label="crystals (data)")
    ax.axhline(0, color=PALETTE[5], linewidth=0.8)
    ax.set_xticks(x, names, fontsize=8 if wide else 9)
    ax.set_xlim(-0.6, nl - 0.4)
    ax.set_xlabel(labelling)
    ax.set_ylabel("log₂ (freq. high / freq. low)")
    empty = " and ".join(m.split(":")[0] for m in missing)  # 'class low and class high'
    only = f"\n(crystals only: no explanation of {empty})" if missing else ""
    ax.set_title("atoms: enrichment in the high class" + only, fontsize=9 if missing else None)
    lo, hi = ax.get_ylim()
    for i in range(nl):
        r = lab.iloc[i]
        if not missing and r["n_high_expl"] + r["n_low_expl"]:
            ax.text(i - 0.2, np.nan_to_num(ex[i]), f"{r['n_high_expl']}:{r['n_low_expl']}", rotation=90,
                    ha="center", va="bottom" if ex[i] >= 0 else "top", fontsize=6, color=PALETTE[0])
    ax.set_ylim(lo - 0.15 * (hi - lo), hi + 0.15 * (hi - lo))
    ax.legend(loc="lower left", fontsize=8)

    return ex, da


def _pair_heatmaps(fig: Figure, axes, pair: pd.DataFrame, names: list, labelling: str, missing: list,
                   no_expl: str, wide: bool) -> None:
    """Each label pair's enrichment as lower-triangle heatmaps: explanations (counts high:low) and crystals,
    on one colour scale."""
    nl = len(names)
    idx = {n: i for i, n in enumerate(names)}

    def mat(col):
        m = np.full((nl, nl), np.nan)
        for _, r in pair.iterrows():
            m[idx[r["a"]], idx[r["b"]]] = r[col]
        return m

    m_ex, m_da = mat("log2_expl"), mat("log2_data")
    if missing:
        m_ex[:] = np.nan
    n_hi, n_lo = mat("n_high_expl"), mat("n_low_expl")
    lim = np.nanmax(np.abs(np.concatenate([m_ex[np.isfinite(m_ex)], m_da[np.isfinite(m_da)], [1.0]])))
    lim = float(min(lim, 8.0))

    def fmt_ex(i, j):
        h, lo_ = n_hi[i, j], n_lo[i, j]
        return f"{int(h)}:{int(lo_)}" if np.isfinite(h) and h + lo_ > 0 else ""

    axes[0].set_title("edges in the explanations (counts high:low)")
    im = _lower_heatmap(axes[1], m_da, names, "RdBu_r", annotate=not wide,
                        fmt=(lambda i, j: f"{m_da[i, j]:+.1f}" if np.isfinite(m_da[i, j]) else ""),
                        vlim=(-lim, lim), title_axis=labelling)
    axes[1].set_title("edges in the crystals (CGCNN graph)")
    if missing:
        _say(axes[0], no_expl)
    else:
        _lower_heatmap(axes[0], m_ex, names, "RdBu_r", annotate=True, fmt=fmt_ex, vlim=(-lim, lim),
                       title_axis=labelling)
    fig.colorbar(im, ax=list(axes), shrink=0.8, label="log₂ (freq. high / freq. low)")


def _enrichment_scatter(ax: Axes, lab: pd.DataFrame, pair: pd.DataFrame, names: list, ex: np.ndarray,
                        da: np.ndarray, agreement: dict | None) -> None:
    """The enrichment figure's scatter: explanations against crystals, labels and label pairs."""
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


def xgnn_training(doc: dict, *, path: str | Path | None = None) -> Figure:
    """The generators' training: mean reward per action and p(class) of the final graphs, per class; a class
    whose generator kept no graph says so beside its curve."""
    use_style()
    titles = _xgnn_class_titles(doc)
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    thr = doc["config"]["keep_threshold"]
    notes, drawn = [], 0
    for c in (0, 1):
        cls = doc["classes"][str(c)]
        h = cls.get("history") or {}
        if not h.get("episodes"):
            notes.append(f"class {titles[c].split(' ')[0]}: no training history")
            continue
        drawn += 1
        axes[0].plot(h["episodes"], h["mean_reward"], color=PALETTE[c], marker="o", markersize=3,
                     label=f"class {titles[c]}")
        axes[1].plot(h["episodes"], h["final_probability"], color=PALETTE[c], marker="o", markersize=3)
        if not cls.get("explanations"):
            notes.append(f"class {titles[c].split(' ')[0]}: " + empty_note(cls, doc).replace("\n", " "))
    if not drawn:
        for ax in axes:
            _say(ax, "\n".join(notes))
    else:
        axes[0].set_ylabel("mean reward per action")
        axes[1].set_ylabel("p(class) of the final graphs")
        axes[1].axhline(thr, color=PALETTE[5], linewidth=0.8, linestyle="--", label=f"kept above p = {thr:g}")
        axes[1].set_ylim(0, 1.05)
        for ax in axes:
            ax.set_xlabel("training episodes")
        axes[0].legend(fontsize=8)
        axes[1].legend(fontsize=8, loc="lower right")
        if notes:
            axes[1].set_title("\n".join(notes), fontsize=8, color=PALETTE[1], loc="left")
    fig.suptitle(f"XGNN generators' training: {_property_title(doc)} ({doc['profile']}, seed {doc['seed']})",
                 fontsize=10)
    fig.tight_layout()
    stamp(fig, doc.get("profile"))
    if path is not None:
        save(fig, path)
    return fig


def xgnn_graphs(doc: dict, *, per_class: int = 4, path: str | Path | None = None) -> Figure:
    """The most frequent explanation graphs of each class (atoms on a circle, labelled by group/period),
    with how often each was generated and its mean probability; a class without any says so in its row."""
    use_style()
    fig, axes = plt.subplots(2, per_class, figsize=(2.3 * per_class, 5.0), squeeze=False)
    titles = _xgnn_class_titles(doc)
    for c in (0, 1):
        cls = doc["classes"][str(c)]
        expl = cls["explanations"]
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
                if not top:  # the whole row: the reason, in words
                    ax.text(0.0, 0.5, empty_note(cls, doc).replace("\n", " ") + ": no explanation to show",
                            transform=ax.transAxes, ha="left", va="center", color=PALETTE[5], fontsize=10,
                            in_layout=False)  # spans the row's empty panels
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
    fig.suptitle(f"most frequent XGNN explanations: {_property_title(doc)}\n"
                 f"({doc['profile']}, seed {doc['seed']}; atoms labelled by {doc['labelling']})")
    fig.tight_layout()
    stamp(fig, doc.get("profile"))
    if path is not None:
        save(fig, path)
    return fig
