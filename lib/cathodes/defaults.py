"""The battery chapter's defaults, in one place: which universal potential gives a voltage for each working
ion.

The electrode benchmark on all of MP's insertion pairs (``make bench BENCH=electrodes``;
:mod:`lib.cathodes.routes`) ranks every potential whose weights ship in its wheel by its static voltages' MAE
against MP's, per ion, and writes the winner of each ion to :data:`TABLE`
(``pretrained/potential_by_ion.csv``, committed: ion, potential, its MAE with the 95 % interval over chemical
systems, n, the runner-up and the paired interval of runner-up − winner). The screen and ``python -m
lib.predict --voltage`` read it through :func:`potential_for`; an ion the table lacks gets :data:`FALLBACK`.

Only potentials on MP's corrected PBE(+U) scale are eligible (the r2SCAN ones are judged against MP's GGA+U
voltages on another level of theory: their MAE says how far r2SCAN is from GGA+U, not how wrong they are).
"""

from __future__ import annotations

import datetime as _dt
import json
from functools import cache
from pathlib import Path

import pandas as pd

from lib.cathodes.potentials import SCALES
from lib.paths import ROOT

TABLE = ROOT / "pretrained" / "potential_by_ion.csv"
#: every potential's static-voltage errors against MP per ion (route, ion, n, mae, ci_low, ci_high, q68),
#: written by the bench
ERRORS = ROOT / "pretrained" / "potential_errors.csv"
#: the route closest to measured voltages (lib.cathodes.experiment.closest_route), written by the bench
EXPERIMENT_ROUTE = ROOT / "pretrained" / "experiment_route.json"
#: the potential for an ion the table lacks (and before any benchmark ran): the best on Li of the 451-pair
# benchmark
FALLBACK = "sevennet"
#: the potential that relaxes structures the screen builds (batched CHGNet: the fastest relaxer on a CPU)
RELAXER = "chgnet"
COLUMNS = (
    "ion",
    "potential",
    "mae",
    "ci_low",
    "ci_high",
    "q68",
    "n",
    "runner_up",
    "runner_up_mae",
    "gain_ci_low",
    "gain_ci_high",
    "generated",
)


@cache
def _read(path: Path, mtime: float) -> pd.DataFrame:
    t = pd.read_csv(path)
    missing = [c for c in ("ion", "potential") if c not in t.columns]
    if missing:
        raise ValueError(f"{path}: no column(s) {missing}; expected {list(COLUMNS)}")
    return t.astype({"ion": str, "potential": str})


def table(path: str | Path | None = None) -> pd.DataFrame:
    """The per-ion table (empty when it does not exist yet)."""
    p = Path(path) if path is not None else TABLE
    return _read(p, p.stat().st_mtime).copy() if p.is_file() else pd.DataFrame(columns=list(COLUMNS))


def potential_by_ion(path: str | Path | None = None) -> dict[str, str]:
    """ion -> the benchmark's best potential (empty when the table does not exist yet)."""
    t = table(path)
    return dict(zip(t["ion"], t["potential"], strict=True))


def experiment_route(path: str | Path | None = None) -> dict | None:
    """The route closest to experiment (potential, offset in V, σ_V in V, its MAE and n against the measured
    voltages), or None before the bench wrote it."""
    p = Path(path) if path is not None else EXPERIMENT_ROUTE
    return json.loads(p.read_text()) if p.is_file() else None


def sigma_for(ion: str, potential: str, path: str | Path | None = None) -> float:
    """σ_V of ``potential``'s static voltages for ``ion``: the 68.3 % quantile of |V − V_MP| on MP's pairs of
    that ion (:data:`ERRORS`, written by the bench; NaN for an ion or potential it lacks)."""
    p = Path(path) if path is not None else ERRORS
    if not p.is_file():
        return float("nan")
    t = pd.read_csv(p)
    row = t[(t["ion"] == ion) & (t["route"] == f"umlip_static_{potential}")]
    return float(row["q68"].iloc[0]) if len(row) else float("nan")


def potential_for(ion: str, path: str | Path | None = None) -> str:
    """The potential (a name of :data:`lib.cathodes.potentials.POTENTIALS`) for ``ion``'s voltages."""
    return potential_by_ion(path).get(ion, FALLBACK)


def voltage_choice(card_path: str | Path | None = None, ion: str = "Li", split: str = "grouped") -> dict:
    """Which voltage the screen ranks on, as the benchmark supports it: the correction (``"delta"``) when the
    upper end of the 95 % interval of MAE(correction) − MAE(its potential) on the ``split`` splits' test pairs of
    ``ion`` is below 0 (it beats its potential beyond the resampling's doubt), else the potential's static
    voltage (``"potential"``); ``why`` says it in words with the numbers (the shipped correction's card,
    ``pretrained/voltage_<potential>_delta/card.json``, written by ``python -m lib.cathodes.voltage_eval``)."""
    from lib.cathodes.correction import POTENTIAL

    path = Path(card_path) if card_path is not None else ROOT / "pretrained" / f"voltage_{POTENTIAL}_delta" / "card.json"
    rows = []
    if path.exists():
        rows = [r for r in json.loads(path.read_text()).get("splits", [])
                if r.get("ion") == ion and r.get("split") == split]
    if not rows:
        return {"model": "potential", "why": f"no {split}-split result of the correction for {ion} in {path.name}: "
                "the potential's static voltage"}
    r = rows[0]
    better = r["gain_ci_high"] < 0
    return {"model": "delta" if better else "potential", "gain": r["gain"], "gain_ci_high": r["gain_ci_high"],
            "why": f"the correction's {ion} MAE on {split} test pairs is {r['mae']:.3f} V against its potential's "
                   f"{r['base_mae']:.3f} V (difference {r['gain']:+.3f} V, 95 % interval up to "
                   f"{r['gain_ci_high']:+.3f} V over {r['seeds']} splits): "
                   + ("ranking on the corrected voltage" if better else
                      "not better beyond doubt, so ranking on the potential's static voltage")}


def write_table(
    summary: pd.DataFrame,
    paired: pd.DataFrame,
    path: str | Path | None = None,
    prefix: str = "umlip_static_",
    eligible: tuple[str, ...] | None = None,
    min_n: int = 20,
    min_coverage: float = 0.9,
) -> Path:
    """Write the per-ion table from the benchmark's :func:`lib.cathodes.metrics.route_summary` of the static
    routes and :func:`lib.cathodes.metrics.paired_table` against each ion's winner (``paired`` rows of other
    routes, with ``best`` and ``ion``). A potential competes for an ion only with at least ``min_n`` pairs
    judged and a voltage for ``min_coverage`` of the ion's pairs (one whose energies are half computed is not
    ranked on the half it has)."""
    eligible = eligible or tuple(k for k, v in SCALES.items() if v == "total")
    covered = summary["n"] / (summary["n"] + summary["n_missing"]).clip(lower=1)
    s = summary[
        summary["route"].isin([prefix + e for e in eligible])
        & (summary["n"] >= min_n)
        & (covered >= min_coverage)
        & (summary["ion"] != "all")
    ]
    rows = []
    for ion, g in s.groupby("ion"):
        g = g.sort_values("mae")
        best, second = g.iloc[0], (g.iloc[1] if len(g) > 1 else None)
        row = {
            "ion": ion,
            "potential": best["route"].removeprefix(prefix),
            "mae": best["mae"],
            "ci_low": best["ci_low"],
            "ci_high": best["ci_high"],
            "q68": best["q68"],
            "n": int(best["n"]),
        }
        if second is not None:
            d = paired[
                (paired["best"] == best["route"])
                & (paired["route"] == second["route"])
                & (paired["ion"] == ion)
            ]
            row.update(
                runner_up=second["route"].removeprefix(prefix),
                runner_up_mae=second["mae"],
                gain_ci_low=float(d["ci_low"].iloc[0]) if len(d) else float("nan"),
                gain_ci_high=float(d["ci_high"].iloc[0]) if len(d) else float("nan"),
            )
        rows.append(row)
    out = pd.DataFrame(rows, columns=list(COLUMNS[:-1]))
    out["generated"] = _dt.date.today().isoformat()
    p = Path(path) if path is not None else TABLE
    p.parent.mkdir(parents=True, exist_ok=True)
    out.to_csv(p, index=False, float_format="%.4f")
    errors = summary[summary["route"].str.startswith(prefix) & (summary["ion"] != "all") & (summary["n"] > 0)]
    cols = ["route", "ion", "n", "n_missing", "mae", "ci_low", "ci_high", "q68"]
    errors[cols].to_csv(p.with_name(ERRORS.name), index=False, float_format="%.4f")
    return p


__all__ = [
    "TABLE",
    "FALLBACK",
    "RELAXER",
    "table",
    "potential_by_ion",
    "potential_for",
    "sigma_for",
    "write_table",
]
