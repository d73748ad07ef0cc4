"""Errors of voltage routes with intervals a reader can trust: per ion, bootstrapped over chemical systems.

Pairs of one chemical system are not independent (LiFePO4 → FePO4 and Li2FePO4F → LiFePO4F share their errors'
causes: the same transition metal's U, the same anion), so every interval here resamples **systems**, not
pairs (a cluster bootstrap): :func:`system_of` names a pair's system (the framework's elements, without the
working ion), :func:`bootstrap_mae` gives the 95 % percentile interval of the MAE, :func:`paired_difference`
that of MAE(a) − MAE(b) on the pairs both routes have (the same resampled systems for both, so what the two
routes share cancels). :func:`route_summary` is the one table of every route and ion (n, MAE with its
interval, median error, share within 0.1 and 0.3 V, Spearman ρ) that the bench prints and the docs show.

Routes come as a *long* table (:func:`lib.cathodes.routes.route_table`): one row per pair and route with
``battery_id``, ``ion``, ``system``, ``route``, ``voltage``, ``reference`` (the voltage it is judged against)
and ``error`` (why a pair has no voltage; empty otherwise).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from pymatgen.core import Composition
from scipy.stats import spearmanr

N_BOOT = 2000
LEVEL = 0.95


def system_of(formula: str, ion: str) -> str:
    """The chemical system of a pair's framework: its elements without the working ion, sorted ("Fe-O-P")."""
    return "-".join(sorted(el.symbol for el in Composition(formula).elements if el.symbol != ion))


def _weights(n_groups: int, n_boot: int, seed: int) -> np.ndarray:
    """How often each group is drawn in each bootstrap sample: an (n_boot, n_groups) matrix of counts."""
    rng = np.random.default_rng(seed)
    return rng.multinomial(n_groups, np.full(n_groups, 1.0 / n_groups), size=n_boot).astype(float)


def _cluster_sums(values: np.ndarray, groups: Sequence) -> tuple[np.ndarray, np.ndarray]:
    codes, _ = pd.factorize(pd.Series(list(groups)), sort=True)
    return np.bincount(codes, weights=values), np.bincount(codes).astype(float)


def bootstrap_mae(
    abs_err, groups, n_boot: int = N_BOOT, level: float = LEVEL, seed: int = 0
) -> tuple[float, float]:
    """The percentile interval (``level``) of the mean of ``abs_err`` when whole groups are resampled with
    replacement; (nan, nan) without errors. One group: the interval is that group's MAE (no spread to
    draw)."""
    e = np.asarray(abs_err, float)
    if not len(e):
        return math.nan, math.nan
    s, n = _cluster_sums(e, groups)
    w = _weights(len(s), n_boot, seed)
    stats = (w @ s) / (w @ n)
    a = (1 - level) / 2
    return float(np.quantile(stats, a)), float(np.quantile(stats, 1 - a))


def paired_difference(
    err_a, err_b, groups, n_boot: int = N_BOOT, level: float = LEVEL, seed: int = 0
) -> dict:
    """MAE(a) − MAE(b) (V) on the same pairs and its cluster-bootstrap interval: ``{"diff", "ci_low",
    "ci_high", "n", "systems"}``; ``err_a`` / ``err_b`` are signed or absolute errors of the two routes, NaN
    where a route has
    none (those pairs are left out of both)."""
    a, b = np.abs(np.asarray(err_a, float)), np.abs(np.asarray(err_b, float))
    ok = np.isfinite(a) & np.isfinite(b)
    g = np.asarray(list(groups), dtype=object)[ok]
    d = a[ok] - b[ok]
    if not len(d):
        return {"diff": math.nan, "ci_low": math.nan, "ci_high": math.nan, "n": 0, "systems": 0}
    lo, hi = bootstrap_mae(
        d, g, n_boot, level, seed
    )  # the same resampling gives the mean difference's interval
    return {
        "diff": float(d.mean()),
        "ci_low": lo,
        "ci_high": hi,
        "n": int(len(d)),
        "systems": int(len(set(g))),
    }


def error_stats(pred, ref, groups, seed: int = 0) -> dict:
    """n, MAE and its system-bootstrap interval, median error, shares within 0.1 and 0.3 V, the 68.3 %
    quantile of the absolute error (``q68``: a σ_V that covers 68.3 % of these pairs), Spearman ρ, the
    number of systems; pairs where either value is missing are left out (and counted as ``n_missing``)."""
    p, r = np.asarray(pred, float), np.asarray(ref, float)
    ok = np.isfinite(p) & np.isfinite(r)
    g = np.asarray(list(groups), dtype=object)[ok]
    e = np.abs(p[ok] - r[ok])
    if not len(e):
        return {"n": 0, "n_missing": int((~ok).sum())}
    lo, hi = bootstrap_mae(e, g, seed=seed)
    rho = (
        float(spearmanr(p[ok], r[ok]).statistic)
        if len(e) > 2 and np.ptp(p[ok]) > 0 and np.ptp(r[ok]) > 0
        else math.nan
    )
    return {
        "n": int(len(e)),
        "mae": float(e.mean()),
        "ci_low": lo,
        "ci_high": hi,
        "median_ae": float(np.median(e)),
        "within_0.1": float(np.mean(e <= 0.1)),
        "within_0.3": float(np.mean(e <= 0.3)),
        "q68": float(np.quantile(e, 0.683)),
        "spearman": rho,
        "systems": int(len(set(g))),
        "n_missing": int((~ok).sum()),
    }


def route_summary(long: pd.DataFrame, by: str = "ion", seed: int = 0) -> pd.DataFrame:
    """:func:`error_stats` of every route, overall ("all") and per ``by`` group (largest first): one row per
    (route, group)."""
    rows = []
    groups = ["all", *long[by].value_counts().index]
    for route, t in long.groupby("route", sort=False):
        for g in groups:
            s = t if g == "all" else t[t[by] == g]
            if len(s):
                rows.append(
                    {"route": route, by: g, **error_stats(s["voltage"], s["reference"], s["system"], seed)}
                )
    return pd.DataFrame(rows)


def paired_table(long: pd.DataFrame, best: str, by: str = "ion", seed: int = 0) -> pd.DataFrame:
    """For every other route and group: MAE(other) − MAE(``best``) on the pairs both have, with its interval
    (positive: ``best`` is better; the interval above 0: better beyond the resampling's doubt)."""
    wide = long.pivot_table(
        index=["battery_id", by, "system"], columns="route", values="voltage", aggfunc="first"
    )
    ref = long.drop_duplicates("battery_id").set_index("battery_id")["reference"]
    wide = wide.reset_index()
    r = ref.reindex(wide["battery_id"]).to_numpy()
    rows = []
    for other in [c for c in wide.columns if c not in ("battery_id", by, "system", best)]:
        for g in ["all", *long[by].value_counts().index]:
            m = np.ones(len(wide), bool) if g == "all" else (wide[by] == g).to_numpy()
            if not m.any() or best not in wide.columns:
                continue
            d = paired_difference(
                wide.loc[m, other].to_numpy(float) - r[m],
                wide.loc[m, best].to_numpy(float) - r[m],
                wide.loc[m, "system"],
                seed=seed,
            )
            rows.append({"route": other, "best": best, by: g, **d})
    return pd.DataFrame(rows)


__all__ = [
    "system_of",
    "bootstrap_mae",
    "paired_difference",
    "error_stats",
    "route_summary",
    "paired_table",
    "N_BOOT",
    "LEVEL",
]
