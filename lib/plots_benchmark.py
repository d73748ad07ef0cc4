"""Benchmark figures (06_benchmark): the thesis's Figure 14 from a Table 6 (lib.benchmark.table6)."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from lib import models
from lib.benchmark import METRICS, timing_warning
from lib.data.targets import TARGETS
from lib.plots import PALETTE, save, use_style


def figure14(table: pd.DataFrame, path: str | Path | None = None, title: str | None = None):
    """The thesis's Figure 14: per metric a panel of bars (property x model) with std error bars;
    training time on a log axis. Returns the figure (saved to ``path`` when given)."""
    use_style()
    fig, axes = plt.subplots(2, 2, figsize=(12, 7.5))
    props = list(dict.fromkeys(table.index.get_level_values(0)))
    present = set(table.index.get_level_values(1))
    names_m = [m for m in models.MODEL_TABLE if m in present] + sorted(present - set(models.MODEL_TABLE))
    x = np.arange(len(props))
    w = 0.8 / max(len(names_m), 1)
    names = [TARGETS[p].label if p in TARGETS else p for p in props]
    for ax, (m, spec) in zip(axes.flat, METRICS.items(), strict=False):
        lowest = np.inf
        for k, model in enumerate(names_m):
            sub = table.xs(model, level=1) if model in table.index.get_level_values(1) else table.iloc[:0]
            mean = np.array([sub[f"{m}_mean"].get(p, np.nan) for p in props], dtype=float)
            std = np.array([sub[f"{m}_std"].get(p, np.nan) for p in props], dtype=float)
            xk = x + (k - (len(names_m) - 1) / 2) * w
            # one colour per model, the same in every figure (the model table's)
            color = models.get(model).color if model in models.MODEL_TABLE else PALETTE[k % len(PALETTE)]
            ax.bar(xk, mean, w, label=models.display_name(model), color=color)
            ok = np.isfinite(mean) & np.isfinite(std)
            if ok.any():  # error bars only where there is a spread (n >= 2)
                ax.errorbar(xk[ok], mean[ok], yerr=std[ok], fmt="none", ecolor="#3a3a3a", elinewidth=0.8,
                            capsize=2)
            if np.isfinite(mean).any():
                lowest = min(lowest, np.nanmin(mean))
        ax.set_xticks(x, names, rotation=30, ha="right")
        unit = {"target": " (property's unit)", "s": " (s, log scale)", "": ""}[spec.unit]
        ax.set_ylabel(f"{spec.label}{unit}")
        if m == "train_time_s":
            ax.set_yscale("log")
        if m == "test_r2" and lowest < -1:  # a model worse than the mean by far would flatten the others
            ax.set_ylim(-1, 1.05)
            ax.text(0.01, 0.02, f"axis cut at −1 (lowest R² {lowest:.3g})", transform=ax.transAxes,
                    fontsize=8)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncols=len(labels), bbox_to_anchor=(0.5, 1.0))
    if timing_warning(table):
        axes.flat[3].set_title("times from different devices: compare within one", color=PALETTE[1])
    fig.tight_layout(rect=(0, 0, 1, 0.95 if not title else 0.93))
    if title:
        fig.suptitle(title, y=1.02)
    if path is not None:
        save(fig, path)
    return fig
