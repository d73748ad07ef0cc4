"""Measured voltages of known intercalation electrodes (``data/experimental_voltages.csv``, committed).

One row per electrode reaction measured in a cell: the working ``ion``, the ``discharged_formula`` and
``charged_formula`` of the two ends of the cycled range (``x_discharged`` > ``x_charged`` ions per formula
unit), the ``structure_type``, the measured average (or plateau) ``voltage_exp`` (V vs the ion's metal) with a
``voltage_note``, and the source: ``source_authors``, ``source_year``, ``source_journal``, ``source_locator``
(table, page, abstract), ``source_quote`` (the sentence or row the number comes from) and ``source_url``. How
the rows were found and which sources disagree: ``data/experimental_voltages.md``.

:func:`read_experimental_voltages` checks every row and refuses the file, naming rows and reasons, when a row
lacks a source or a quote, names an unknown ion, has formulas pymatgen cannot read, a voltage that is not a
number, or ends whose ion contents contradict the formulas or do not grow on discharge.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from pymatgen.core import Composition

from lib.data.sources.electrode_pairs import WORKING_IONS
from lib.paths import DATA

FILE = DATA / "experimental_voltages.csv"
COLUMNS = (
    "id",
    "ion",
    "discharged_formula",
    "charged_formula",
    "x_discharged",
    "x_charged",
    "structure_type",
    "voltage_exp",
    "voltage_note",
    "source_authors",
    "source_year",
    "source_journal",
    "source_locator",
    "source_quote",
    "source_url",
)
#: the columns a row cannot lack
REQUIRED = (
    "id",
    "ion",
    "discharged_formula",
    "charged_formula",
    "voltage_exp",
    "source_journal",
    "source_locator",
    "source_quote",
)


class ExperimentalDataError(ValueError):
    """A row of the experimental table that cannot be used; the message names the rows and why."""


def _problems(r: pd.Series) -> list[str]:
    out = [f"no {c}" for c in REQUIRED if pd.isna(r.get(c)) or not str(r.get(c)).strip()]
    if out:
        return out
    if r["ion"] not in WORKING_IONS:
        out.append(f"unknown ion {r['ion']!r}")
        return out
    try:
        d, c = Composition(r["discharged_formula"]), Composition(r["charged_formula"])
    except (ValueError, KeyError) as exc:
        return [f"unreadable formula ({exc})"]
    try:
        v = float(r["voltage_exp"])
    except (TypeError, ValueError):
        return [f"voltage_exp {r['voltage_exp']!r} is not a number"]
    if not -1 < v < 7:
        out.append(f"voltage_exp {v} V outside -1..7 V")
    fd = Composition({e: a for e, a in d.items() if e.symbol != r["ion"]})
    fc = Composition({e: a for e, a in c.items() if e.symbol != r["ion"]})
    if fd.reduced_formula != fc.reduced_formula:
        out.append(f"frameworks differ: {fd.reduced_formula} vs {fc.reduced_formula}")
    elif fd != fc:  # the same framework, but written per another formula unit
        out.append(f"the two formulas are per different formula units ({fd.formula} vs {fc.formula})")
    xd, xc = d[r["ion"]], c[r["ion"]]
    for name, x in (("x_discharged", xd), ("x_charged", xc)):
        if pd.notna(r.get(name)) and abs(float(r[name]) - x) > 1e-6:
            out.append(f"{name} {r[name]} but the formula holds {x:g} {r['ion']}")
    if not xd > xc:
        out.append(f"the discharged end holds no more {r['ion']} than the charged one")
    return out


def read_experimental_voltages(path: str | Path | None = None) -> pd.DataFrame:
    """The experimental table (module docstring), checked; ``voltage_exp`` as float, ``source_year`` as
    text."""
    path = Path(path) if path is not None else FILE
    t = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    missing = [c for c in COLUMNS if c not in t.columns]
    if missing:
        raise ExperimentalDataError(f"{path}: missing column(s) {missing}; expected {list(COLUMNS)}")
    dup = t["id"][t["id"].duplicated()].tolist()
    bad = {rid: ["duplicated id"] for rid in dup}
    for _, r in t.iterrows():
        p = _problems(r)
        if p:
            bad.setdefault(str(r["id"]), []).extend(p)
    if bad:
        lines = "; ".join(f"{k}: {', '.join(v)}" for k, v in list(bad.items())[:10])
        raise ExperimentalDataError(f"{path}: {len(bad)} row(s) cannot be used: {lines}")
    t["voltage_exp"] = t["voltage_exp"].astype(float)
    for c in ("x_discharged", "x_charged"):
        t[c] = pd.to_numeric(t[c])
    t.attrs["source"] = str(path)
    return t


__all__ = ["FILE", "COLUMNS", "REQUIRED", "ExperimentalDataError", "read_experimental_voltages"]
