"""Figures of the electrode benchmark on all of MP's pairs (08): every route's MAE by ion with its interval,
and the parity of the best route by ion. Each takes the tables of :mod:`lib.cathodes.metrics` /
:mod:`lib.cathodes.routes`
and returns ``[png, pdf]`` paths (``name`` given) under figures/."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from lib.paths import figure_file
from lib.plots.base import PALETTE, save, stamp, use_style

ION_COLORS = {
    "Li": PALETTE[0],
    "Na": PALETTE[1],
    "K": PALETTE[2],
    "Mg": PALETTE[3],
    "Ca": PALETTE[4],
    "Zn": "#7a5c3e",
    "Al": "#999999",
    "Rb": "#d17fb0",
    "Cs": "#4aa3a3",
    "Y": "#b8b800",
}
#: how the routes are labelled in the figures
ROUTE_LABELS = {
    "constant": "constant (ion median)",
    "dft": "mirror DFT (2020)",
    "gnn": "CGCNN formation energies",
    "umlip_static_chgnet": "CHGNet 0.3.0",
    "umlip_static_sevennet": "SevenNet-0",
    "umlip_static_sevennet_l3i5": "SevenNet-l3i5",
    "umlip_static_sevennet_mf0": "SevenNet-MF-0 (PBE)",
    "umlip_static_chgnet_r2scan": "CHGNet r2SCAN",
    "voltage_model": "voltage model (SevenNet-0 + correction)",
    "voltage_gnn": "voltage model (CGCNN on both states)",
    "umlip_static_sevennet_mf0_r2scan": "SevenNet-MF-0 (r2SCAN)",
}


def route_label(route: str) -> str:
    if route in ROUTE_LABELS:
        return ROUTE_LABELS[route]
    if route.startswith("umlip_relaxed_"):
        return ROUTE_LABELS.get("umlip_static_" + route.removeprefix("umlip_relaxed_"), route) + ", relaxed"
    return route


def _files(fig, name: str | None, profile: str | None = None) -> list:
    """``figures/<name>.png`` and ``.pdf`` (``<name>_<profile>`` with the pipeline-test banner of a smoke profile
    when a profile is given); nothing without a name."""
    if not name:
        return []
    if profile is None:
        return [save(fig, f"{name}.{ext}") for ext in ("png", "pdf")]
    stamp(fig, profile)
    return [save(fig, figure_file(name, profile, ext=ext)) for ext in ("png", "pdf")]


def route_mae(
    summary: pd.DataFrame, name: str | None = None, min_n: int = 20, profile: str | None = None
) -> list:
    """MAE against MP (V) by ion (columns of groups) and route (bars), with the 95 % interval over chemical
    systems; an ion × route cell with fewer than ``min_n`` pairs is left empty and counted in the note, a route
    with no cell drawn is left out of the legend, and a route with a voltage for under 90 % of the pairs is
    labelled partial."""
    use_style()
    s = summary[summary["ion"] != "all"]
    ions = [
        i
        for i in summary[summary["route"] == "constant"].sort_values("n", ascending=False)["ion"]
        if i != "all"
    ]
    order = ["constant", "gnn", "dft"] + sorted(
        r for r in s["route"].unique() if r.startswith("umlip_static")
    )
    order += sorted(r for r in s["route"].unique() if r.startswith("umlip_relaxed")) + ["voltage_model"]
    order = [r for r in order if r in set(s["route"])]
    fig, ax = plt.subplots(figsize=(11, 5.2))
    width = 0.85 / max(len(order), 1)
    cmap = plt.get_cmap("tab10")
    skipped, absent = 0, []
    overall = summary[summary["ion"] == "all"].set_index("route")
    for k, route in enumerate(order):
        g = s[s["route"] == route].set_index("ion").reindex(ions)
        ok = (g["n"] >= min_n).to_numpy()
        skipped += int((g["n"].fillna(0) > 0).to_numpy().sum() - ok.sum())
        label = route_label(route)
        if route in overall.index:
            n, miss = int(overall.loc[route, "n"]), int(overall.loc[route, "n_missing"])
            if n < 0.9 * (n + miss) and route != "dft":
                label += f" (partial: {n:,} of {n + miss:,})"
        if not ok.any():
            absent.append(route_label(route))
            label = "_nolegend_"
        x = np.arange(len(ions)) + (k - (len(order) - 1) / 2) * width
        m, lo, hi = (g[c].to_numpy(float) for c in ("mae", "ci_low", "ci_high"))
        ax.bar(
            x[ok],
            m[ok],
            width,
            color=cmap(k % 10),
            label=label,
            yerr=np.vstack([m[ok] - lo[ok], hi[ok] - m[ok]]),
            error_kw={"lw": 0.8, "capsize": 1.5},
        )
    n_li = summary.query("route == 'constant'").set_index("ion")["n"]
    ax.set_xticks(np.arange(len(ions)), [f"{i}\n({int(n_li.get(i, 0))})" for i in ions])
    ax.set_ylabel("MAE against MP's voltage (V)")
    ax.set_xlabel("working ion (pairs)")
    ax.legend(ncol=5, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), frameon=False)
    note = "error bars: 95 % interval, chemical systems resampled"
    if skipped:
        note += f"; {skipped} ion × route cells with < {min_n} pairs not drawn"
    if absent:
        note += f" (none of {', '.join(absent)})"
    ax.set_title(
        "Every route on every MP insertion pair (in-sample for the potentials: trained on MP's "
        f"relaxations)\n{note}",
        fontsize=9,
    )
    fig.tight_layout()
    out = _files(fig, name, profile)
    plt.close(fig)
    return out


def voltage_models(summary: pd.DataFrame, name: str | None = None, profile: str | None = None,
                   min_n: int = 20) -> list:
    """The voltage models of our own against their base potential (:func:`lib.cathodes.voltage_eval.summary`):
    test MAE by ion, one panel per split kind, the model's bar beside the potential's on the same test pairs,
    with 95 % intervals (systems resampled); an ion with fewer than ``min_n`` test rows is left out (counted).
    Without any archived run the figure says so in words."""
    use_style()
    kinds = [k for k in ("grouped", "random") if k in set(summary.get("split", pd.Series(dtype=str)))]
    fig, axes = plt.subplots(1, max(len(kinds), 1), figsize=(6 * max(len(kinds), 1), 4.2), squeeze=False)
    if not kinds:
        axes[0, 0].text(0.5, 0.5, "no voltage-model run archived yet\n(python -m lib.cathodes.voltage_eval run)",
                        ha="center", va="center", transform=axes[0, 0].transAxes)
        axes[0, 0].set_axis_off()
    models = sorted(summary["model"].unique()) if kinds else []
    colours = {"base": "#999999", "delta": PALETTE[0], "gnn": PALETTE[1]}
    labels = {"delta": "SevenNet-0 + correction", "gnn": "CGCNN on both states", "base": "SevenNet-0 static"}
    for ax, kind in zip(axes[0], kinds, strict=False):
        s = summary[(summary["split"] == kind) & (summary["n"] >= min_n)]
        ions = ["all", *[i for i in s[s["ion"] != "all"].sort_values("n", ascending=False)["ion"].unique()]]
        bars = [*models, "base"]
        width = 0.8 / len(bars)
        for k, m in enumerate(bars):
            src = s[s["model"] == (models[0] if m == "base" and "delta" not in models else
                                   "delta" if m == "base" else m)].set_index("ion").reindex(ions)
            col = "base_mae" if m == "base" else "mae"
            x = np.arange(len(ions)) + (k - (len(bars) - 1) / 2) * width
            y = src[col].to_numpy(float)
            err = None
            if m != "base":
                err = np.vstack([y - src["ci_low"].to_numpy(float), src["ci_high"].to_numpy(float) - y])
            ax.bar(x, y, width, color=colours.get(m, "k"), label=labels.get(m, m), yerr=err,
                   error_kw={"lw": 0.8, "capsize": 1.5})
        n = s[s["model"] == models[0]].set_index("ion").reindex(ions)["n"].fillna(0).astype(int)
        seeds = int(s["seeds"].max()) if len(s) else 0
        ax.set_xticks(np.arange(len(ions)), [f"{i}\n({v})" for i, v in zip(ions, n, strict=True)], fontsize=8)
        ax.set_title(f"{kind} splits ({seeds} seeds pooled; test rows per ion)", fontsize=9)
        ax.set_ylabel("test MAE against MP's voltage (V)")
        dropped = int((summary[(summary["split"] == kind)]["n"] < min_n).sum())
        if dropped:
            ax.text(0.99, 0.97, f"{dropped} model × ion cells with < {min_n} rows not drawn", ha="right",
                    va="top", fontsize=7, transform=ax.transAxes)
    if kinds:
        axes[0, 0].legend(fontsize=7, frameon=False)
    fig.suptitle("Voltage models of our own on MP's 4,401 pairs (error bars: 95 %, chemical systems resampled)",
                 fontsize=10)
    fig.tight_layout()
    out = _files(fig, name, profile)
    plt.close(fig)
    return out


def route_parity(long: pd.DataFrame, route: str, name: str | None = None, profile: str | None = None) -> list:
    """Predicted against MP's voltage of one route, one panel per ion (largest first), MAE and n in each."""
    use_style()
    t = long[(long["route"] == route)]
    ions = list(t["ion"].value_counts().index)
    cols = 5
    rows = int(np.ceil(len(ions) / cols)) or 1
    fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols, 2.6 * rows), squeeze=False)
    lo, hi = -1.0, 6.0
    for ax, ion in zip(axes.flat, ions, strict=False):
        g = t[(t["ion"] == ion)]
        ok = g["voltage"].notna() & g["reference"].notna()
        ax.plot([lo, hi], [lo, hi], color="0.6", lw=0.8)
        ax.scatter(
            g.loc[ok, "reference"],
            g.loc[ok, "voltage"],
            s=5,
            alpha=0.5,
            color=ION_COLORS.get(ion, "k"),
            rasterized=True,
        )
        mae = float((g.loc[ok, "voltage"] - g.loc[ok, "reference"]).abs().mean()) if ok.any() else np.nan
        xy = g.loc[ok, ["reference", "voltage"]].to_numpy(float)
        outside = int(((xy < lo) | (xy > hi)).any(axis=1).sum())
        notes = [f"{int((~ok).sum())} without a voltage"] if (~ok).any() else []
        notes += [f"{outside} outside the frame"] if outside else []
        ax.set_title(
            f"{ion}: MAE {mae:.2f} V, n {int(ok.sum())}" + (f"\n({'; '.join(notes)})" if notes else ""),
            fontsize=8,
        )
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.set_aspect("equal")
    for ax in list(axes.flat)[len(ions) :]:
        ax.set_axis_off()
    for ax in axes[:, 0]:
        ax.set_ylabel("predicted (V)")
    for ax in axes[-1, :]:
        ax.set_xlabel("MP (V)")
    fig.suptitle(f"{route_label(route)} against MP's voltages, by working ion")
    fig.tight_layout()
    out = _files(fig, name, profile)
    plt.close(fig)
    return out


def experiment_parity(
    table: pd.DataFrame, name: str | None = None, routes: list[str] | None = None, profile: str | None = None
) -> list:
    """Each route's voltage against the measured one (lib.cathodes.experiment.experiment_table), one panel per
    route (MP's own listed voltage first), MAE and n in each; rows whose pair was built from the structure
    sources (``match == "built"``, when the table has the column) are drawn hollow and counted apart in the
    title; a table without compared rows says so in words."""
    use_style()
    routes = routes or (
        ["mp"]
        + sorted(
            r for r in table["route"].unique()
            if r.startswith(("umlip_static", "umlip_relaxed")) and not r.endswith("+offset")
        )
        + ["gnn", "voltage_model", "voltage_gnn"]
    )
    routes = [r for r in routes if r in set(table["route"])]
    has_built = "match" in table.columns and table["match"].eq("built").any()
    cols = 4
    rows = max(int(np.ceil(len(routes) / cols)), 1)
    fig, axes = plt.subplots(rows, cols, figsize=(2.8 * cols, 2.8 * rows), squeeze=False)
    if not routes:
        axes[0, 0].text(0.5, 0.5, "no experimental row matched an MP pair", ha="center", va="center")
    for ax, route in zip(axes.flat, routes, strict=False):
        g = table[(table["route"] == route) & table["voltage"].notna()]
        if g.empty:  # said in words, never drawn as if it were data
            ax.text(0.5, 0.5, f"{route_label(route)}:\nno voltage on these rows yet", ha="center",
                    va="center", transform=ax.transAxes, fontsize=8, color="0.4")
            ax.set_axis_off()
            continue
        ax.plot([0, 6], [0, 6], color="0.6", lw=0.8)
        built = g["match"].eq("built") if "match" in g.columns else pd.Series(False, index=g.index)
        for ion, h in g[~built].groupby("ion"):
            ax.scatter(h["voltage_exp"], h["voltage"], s=14, color=ION_COLORS.get(ion, "k"), label=ion)
        for ion, h in g[built].groupby("ion"):
            ax.scatter(h["voltage_exp"], h["voltage"], s=16, facecolors="none",
                       edgecolors=ION_COLORS.get(ion, "k"), label=f"{ion}, built")
        title = "MP (GGA+U), listed" if route == "mp" else route_label(route)
        parts = []
        for label, h in (("MP pair", g[~built]), ("built", g[built])):
            if len(h):
                mae_h = float((h["voltage"] - h["voltage_exp"]).abs().mean())
                parts.append(f"{label}: {mae_h:.2f} V, n {len(h)}")
        ax.set_title(f"{title}\n" + "; ".join(parts), fontsize=7 if has_built else 8)
        ax.set_xlim(0, 6)
        ax.set_ylim(0, 6)
        ax.set_aspect("equal")
        ax.set_xlabel("measured (V)")
    for ax in list(axes.flat)[max(len(routes), 1) :]:
        ax.set_axis_off()
    axes[0, 0].set_ylabel("route (V)")
    axes[0, 0].legend(fontsize=7)
    fig.suptitle("Voltages against experiment (data/experimental_voltages.csv): filled, rows whose reaction MP "
                 "has; hollow, pairs built from the structure sources (MAE per class)" if has_built else
                 "Voltages against experiment (data/experimental_voltages.csv), rows whose reaction MP has",
                 fontsize=9 if has_built else None)
    fig.tight_layout()
    out = _files(fig, name, profile)
    plt.close(fig)
    return out


__all__ = ["ION_COLORS", "ROUTE_LABELS", "route_label", "route_mae", "route_parity", "experiment_parity"]


def finalist_curves(t: pd.DataFrame, n: int = 5, name: str | None = None, profile: str | None = None,
                    path=None, max_barrier: float | None = None, cutoff: float | None = None) -> list:
    """The screen's finalists (:func:`lib.cathodes.finalists.finalists`, re-ranked or not): left, the voltage
    curves of the first ``n`` (``final_rank`` if present, else ``rank``) as voltage against the capacity
    delivered from the charged state (mAh/g), the cutoff dotted; right, each one's lowest hop barrier as a bar
    (hatched: from an unconverged band; no bar: no barrier, with the reason's first words), ``max_barrier``
    dashed. Returns ``[png, pdf]`` under figures/ (``name`` given) plus ``path`` when given."""
    use_style()
    order = "final_rank" if "final_rank" in t.columns else "rank"
    t = t.sort_values(order).head(n) if order in t.columns else t.head(n)
    info = t.attrs.get("finalists", {})
    cutoff = cutoff if cutoff is not None else info.get("settings", {}).get("cutoff", 4.5)
    max_barrier = max_barrier if max_barrier is not None else t.attrs.get("max_barrier")
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(9.5, 3.8), gridspec_kw={"width_ratios": [1.6, 1]})
    labels = []
    for k, (_, r) in enumerate(t.iterrows()):
        color = PALETTE[k % len(PALETTE)]
        label = f"{int(r[order]) if order in t.columns else k + 1}. {r.get('formula', '')}"
        labels.append(label)
        steps = r.get("curve")
        if not isinstance(steps, list) or not steps:
            ax.plot([], [], color=color, ls=":", label=f"{label}: no curve")
            continue
        steps = sorted(steps, key=lambda s: s["x_charge"])
        q, xs, vs = 0.0, [], []
        for s in steps:
            xs += [q, q + s["capacity_grav"]]
            vs += [s["voltage"], s["voltage"]]
            q += s["capacity_grav"]
        below = r.get("capacity_below_cutoff", np.nan)
        ax.plot(xs, vs, color=color, lw=2, label=f"{label}: {below:.0f} mAh/g below {cutoff:g} V")
    ax.axhline(cutoff, color="0.35", ls=":", lw=1)
    ax.text(ax.get_xlim()[1], cutoff, f"cutoff {cutoff:g} V ", ha="right", va="bottom", fontsize=7,
            color="0.35")
    lo, hi = ax.get_ylim()
    ax.set_ylim(lo - 0.25 * len(t) - 0.2, max(hi, cutoff) + 0.2)  # room for the legend below the curves
    ax.set_xlabel("capacity from the charged state (mAh/g)")
    ax.set_ylabel("voltage (V vs metal)")
    ax.set_title("voltage curves")
    ax.legend(fontsize=7, loc="lower left")
    ys = np.arange(len(t))[::-1]
    for k, ((_, r), y) in enumerate(zip(t.iterrows(), ys, strict=True)):
        b, status = float(r.get("barrier", np.nan)), r.get("barrier_status", "")
        color = PALETTE[k % len(PALETTE)]
        if np.isfinite(b):
            bx.barh(y, b, color=color, hatch="//" if status != "ok" else None, alpha=0.85,
                    edgecolor="white" if status == "ok" else "0.3")
            bx.text(b, y, f" {b:.2f} eV", va="center", fontsize=7)
        else:
            why = str(r.get("barrier_reason", "") or status)[:38]
            bx.text(0.01, y, f"no barrier: {why}", va="center", fontsize=7, color="0.4")
    if max_barrier is not None:
        bx.axvline(max_barrier, color=PALETTE[1], ls="--", lw=1, label=f"max {max_barrier:g} eV")
        bx.legend(fontsize=7, loc="lower right")
    bx.set_yticks(ys, labels, fontsize=7)
    bx.set_xlabel("lowest hop barrier (eV; hatched: unconverged band)")
    bx.set_title("migration barrier")
    lim = np.nanmax(np.r_[t.get("barrier", pd.Series(dtype=float)).to_numpy(float), max_barrier or 0, 0.1])
    bx.set_xlim(0, lim * 1.35)
    fig.tight_layout()
    out = _files(fig, name, profile)
    if path is not None:
        out.append(save(fig, path))
    plt.close(fig)
    return out


__all__ += ["finalist_curves"]
