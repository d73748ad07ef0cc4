"""Benchmark figures (06_benchmark): the thesis's Figure 14 from a Table 6 (lib.benchmark.table6).

One panel per property for the test MAE (each in its property's unit), one for R² and one for the training
time (log axis) by property; each model in its colour (lib.models.MODEL_TABLE), our mean as a solid bar and,
where :func:`lib.benchmark.with_thesis` added them, the thesis's as a hatched, lighter bar of the same colour
beside it; error bars one standard deviation over the runs (only where n >= 2).
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.colors import to_rgba
from matplotlib.patches import Patch

from lib import literature, models
from lib.benchmark import describe_devices, table_devices, timing_warning
from lib.plots.base import PALETTE, save, stamp, target_label, unit_of, use_style

THESIS_HATCH = "////"
ERR = {"fmt": "none", "ecolor": "#3a3a3a", "elinewidth": 0.8, "capsize": 2}


def _color(model: str, k: int) -> str:
    """The model table's colour (the same in every figure); a model outside it gets one of the palette."""
    return models.get(model).color if model in models.MODEL_TABLE else PALETTE[k % len(PALETTE)]


def _value(table: pd.DataFrame, prop: str, model: str, col: str) -> float:
    if col not in table.columns or (prop, model) not in table.index:
        return math.nan
    v = table.loc[(prop, model), col]
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def _pair(ax: Axes, x: float, width: float, color: str, ours: tuple[float, float],
          thesis: tuple[float, float] | None) -> None:
    """Our bar (solid) and, when given, the thesis's (hatched, lighter) right of it; std error bars where
    there is a spread. ``thesis`` None: the table has no thesis columns, our bar takes the whole width."""
    (m, s), half = ours, width / 2
    xo = x - half / 2 if thesis is not None else x
    wo = half if thesis is not None else width
    if np.isfinite(m):
        ax.bar(xo, m, wo, color=color, linewidth=0)
        if np.isfinite(s):
            ax.errorbar(xo, m, yerr=s, **ERR)
    if thesis is not None and np.isfinite(thesis[0]):
        ax.bar(x + half / 2, thesis[0], half, facecolor=to_rgba(color, 0.3), edgecolor=color, linewidth=0.6,
               hatch=THESIS_HATCH)
        if np.isfinite(thesis[1]):
            ax.errorbar(x + half / 2, thesis[0], yerr=thesis[1], **ERR)


def _thesis(table: pd.DataFrame, prop: str, model: str, metric: str, has: bool) -> tuple[float, float] | None:
    return (_value(table, prop, model, f"thesis_{metric}"),
            _value(table, prop, model, f"thesis_{metric}_std")) if has else None


def _ours(table: pd.DataFrame, prop: str, model: str, metric: str) -> tuple[float, float]:
    return _value(table, prop, model, f"{metric}_mean"), _value(table, prop, model, f"{metric}_std")


def _thesis_devices(table: pd.DataFrame, names_m: list[str]) -> str:
    """'its own CPU; SOAP-MLP on its GPU' from the thesis_train_device column."""
    if "thesis_train_device" not in table.columns:
        return ""
    dev = table["thesis_train_device"].replace("", np.nan).dropna()
    if dev.empty:
        return ""
    by_model = {m: sorted(set(dev.xs(m, level=1))) for m in names_m if m in dev.index.get_level_values(1)}
    common = pd.Series([d for ds in by_model.values() for d in ds]).mode().iloc[0]
    others = [f"{models.display_name(m)} on its {'/'.join(ds)}" for m, ds in by_model.items()
              if ds != [common]]
    return f"the thesis's times are its own {common}" + ("; " + ", ".join(others) if others else "")


def figure14(table: pd.DataFrame, path: str | Path | None = None, title: str | None = None,
             profile: str | None = None):
    """The thesis's Figure 14, one panel per property: the test MAE in the property's unit (a panel each),
    R² and the training time (log axis) by property; ours beside the thesis's (``thesis_<metric>`` columns
    of :func:`lib.benchmark.with_thesis`; without them ours alone). Returns the figure (saved to ``path``).

    Panels carry labels for tests and readers: ``mae:<property>``, ``r2``, ``train_time_s``, ``legend``.
    profile: the runs' (a smoke table gets its banner, :func:`lib.plots.stamp`).
    """
    use_style()
    props = list(dict.fromkeys(table.index.get_level_values(0)))
    present = set(table.index.get_level_values(1))
    names_m = [m for m in models.MODEL_TABLE if m in present] + sorted(present - set(models.MODEL_TABLE))
    colors = {m: _color(m, k) for k, m in enumerate(names_m)}
    has = {m: f"thesis_{m}" in table.columns and table[f"thesis_{m}"].notna().any()
           for m in ("test_mae", "test_r2", "train_time_s")}
    ncols = 4
    top = max(1, math.ceil((len(props) + 1) / ncols))
    fig = plt.figure(figsize=(15, 3.0 * top + 3.6))
    grid = fig.add_gridspec(top + 1, ncols, height_ratios=[1] * top + [1.25])

    # a model that ran on other properties but not this one: the thesis's bar alone, "not run" in words
    unrun = literature.thesis_table6() if has["test_mae"] else None
    for i, prop in enumerate(props):  # one MAE panel per property, in its unit
        _mae_panel(fig.add_subplot(grid[i // ncols, i % ncols], label=f"mae:{prop}"), table, prop, names_m,
                   colors, has, unrun)
    # the legend and what the bars are, in the first free slot of the top rows
    _legend_panel(fig.add_subplot(grid[len(props) // ncols, len(props) % ncols], label="legend"), names_m,
                  colors, has)
    _r2_panel(fig.add_subplot(grid[top, : ncols // 2], label="r2"), table, props, names_m, colors, has)
    _time_panel(fig.add_subplot(grid[top, ncols // 2:], label="train_time_s"), table, props, names_m, colors,
                has)
    fig.tight_layout(h_pad=1.2)
    if title:
        fig.suptitle(title, y=1.01)
    stamp(fig, profile)
    if path is not None:
        save(fig, path)
    return fig


def _mae_panel(ax, table: pd.DataFrame, prop: str, names_m: list[str], colors: dict, has: dict,
               unrun: pd.DataFrame | None) -> None:
    """The test MAE of each model on ``prop``, in its unit, beside the thesis's."""
    here = [m for m in names_m if (prop, m) in table.index or (
        unrun is not None and (prop, m) in unrun.index and np.isfinite(unrun.loc[(prop, m), "test_mae"]))]
    for j, m in enumerate(here):
        if (prop, m) in table.index:
            _pair(ax, j, 0.8, colors[m], _ours(table, prop, m, "test_mae"),
                  _thesis(table, prop, m, "test_mae", has["test_mae"]))
        else:
            _pair(ax, j, 0.8, colors[m], (math.nan, math.nan),
                  (float(unrun.loc[(prop, m), "test_mae"]), float(unrun.loc[(prop, m), "test_mae_std"])))
    ticks = [f"{models.display_name(m)}\n" + (f"n = {_value(table, prop, m, 'n'):.0f}"
                                              if (prop, m) in table.index else "not run") for m in here]
    ax.set_xticks(range(len(here)), ticks, fontsize=8)
    ax.set_xlim(-0.6, max(len(here), 1) - 0.4)
    unit = unit_of(prop)
    ax.set_ylabel(f"test MAE ({unit})" if unit else "test MAE")
    ax.set_title(target_label(prop))
    ax.set_ylim(0, ax.get_ylim()[1])


def _legend_panel(ax, names_m: list[str], colors: dict, has: dict) -> None:
    """The models' colours and, in words, what the bars are."""
    ax.set_axis_off()
    handles = [Patch(color=colors[m], label=models.display_name(m)) for m in names_m]
    if any(has.values()):
        handles.append(Patch(facecolor=to_rgba("#3a3a3a", 0.3), edgecolor="#3a3a3a", hatch=THESIS_HATCH,
                             label="thesis (its Table 6)"))
    ax.legend(handles=handles, loc="upper left", fontsize=9, frameon=False, title="bars", title_fontsize=9)
    thesis_line = ("Hatched, lighter: the thesis's mean\n(n = 10 GNN, 2 SOAP runs);\n"
                   "\"not run\": the thesis's bar alone.\n"
                   if any(has.values()) else "")
    caption = ("Solid: our mean over n runs (random splits).\n" + thesis_line
               + "Error bars: ± 1 std over the runs\n(only where n ≥ 2).")
    ax.text(0.0, 0.0, caption, transform=ax.transAxes, va="bottom", ha="left", fontsize=8, color="#3a3a3a")


def _grouped(props: list[str], names_m: list[str]) -> tuple[np.ndarray, float, list[str]]:
    """Bar positions of a panel by property: (x of each property, bar width, wrapped property labels)."""
    return (np.arange(len(props)), 0.8 / max(len(names_m), 1),
            [textwrap.fill(target_label(p), 11) for p in props])


def _r2_panel(ax, table: pd.DataFrame, props: list[str], names_m: list[str], colors: dict, has: dict) -> None:
    """R² by property; an axis cut at -1 (said in the title) when one model is far worse than the rest."""
    x, w, short = _grouped(props, names_m)
    lowest, where = np.inf, ""
    for k, m in enumerate(names_m):
        for i, prop in enumerate(props):
            ours = _ours(table, prop, m, "test_r2")
            th = _thesis(table, prop, m, "test_r2", has["test_r2"])
            _pair(ax, x[i] + (k - (len(names_m) - 1) / 2) * w, w, colors[m], ours, th)
            for v in (ours[0], th[0] if th else math.nan):
                if np.isfinite(v) and v < lowest:
                    lowest, where = v, f"{models.display_name(m)}, {target_label(prop)}"
    ax.axhline(0, color=PALETTE[5], linewidth=0.6)
    ax.set_xticks(x, short, fontsize=8)
    ax.set_ylabel("test R²")
    if lowest < -1:  # one model far worse than the mean would flatten the others: cut, and say so above
        ax.set_ylim(-1, 1.05)
        low = f"{lowest:.3g}".replace("-", "−")
        ax.set_title(f"R² by property (axis cut at −1; lowest R² {low}: {where})")
    else:
        ax.set_ylim(min(0.0, lowest - 0.05) if np.isfinite(lowest) else 0.0, 1.05)
        ax.set_title("R² by property")


def _time_panel(ax, table: pd.DataFrame, props: list[str], names_m: list[str], colors: dict, has: dict
                ) -> None:
    """Training time by property (log axis), with where each source timed it."""
    x, w, short = _grouped(props, names_m)
    for k, m in enumerate(names_m):
        for i, prop in enumerate(props):
            _pair(ax, x[i] + (k - (len(names_m) - 1) / 2) * w, w, colors[m],
                  _ours(table, prop, m, "train_time_s"),
                  _thesis(table, prop, m, "train_time_s", has["train_time_s"]))
    ax.set_yscale("log")
    ax.set_xticks(x, short, fontsize=8)
    ax.set_ylabel("training time (s, log axis)")
    labels = table_devices(table)
    lines = [f"ours: timed {describe_devices(labels)}" if labels else "ours: device unknown"]
    thesis_dev = _thesis_devices(table, names_m) if has["train_time_s"] else ""
    if thesis_dev:
        lines.append(thesis_dev + ": compare within one source")
    ax.set_title("Training time by property\n" + "\n".join(lines), fontsize=8,
                 color=PALETTE[1] if timing_warning(table) else "#3a3a3a")
