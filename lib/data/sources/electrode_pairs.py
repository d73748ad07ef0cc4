"""MP's insertion-electrode pairs as the mirror holds them (``mp_insertion_electrodes.csv``): the file's reader.

The electrochemistry on top of them is :mod:`lib.cathodes.electrodes`, which hands these names on.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from lib.paths import default_mirror

#: MP's working ions and their charge z (the largest oxidation state, as pymatgen's voltage uses)
WORKING_IONS: dict[str, int] = {
    "Li": 1,
    "Na": 1,
    "K": 1,
    "Rb": 1,
    "Cs": 1,
    "Mg": 2,
    "Ca": 2,
    "Zn": 2,
    "Al": 3,
    "Y": 3,
}
PAIRS_FILE = "mp_insertion_electrodes.csv"
PAIR_COLUMNS = ("high_formula", "high_mpid", "low_formula", "low_mpid", "avg_voltage", "battery_id")


class ElectrodeError(ValueError):
    """An input that cannot be an insertion electrode; the message says which and why."""


def read_pairs(path: str | Path | None = None) -> pd.DataFrame:
    """MP's insertion-electrode pairs (the mirror's ``mp_insertion_electrodes.csv``, or ``path``).

    Columns as in the file: ``high_formula``/``high_mpid`` (the charged end), ``low_formula``/``low_mpid``
    (the discharged end), ``avg_voltage`` (V, MP's average over the whole electrode), ``battery_id``
    (``<id>_<ion>``, the id being the smallest material id MP grouped into this electrode); added:
    ``ion`` (the suffix of battery_id) and ``z``. Raises :class:`ElectrodeError` for a missing column,
    an unknown ion or a non-finite voltage, naming the rows.
    """
    if path is None:
        mirror = default_mirror()
        if mirror is None:
            raise FileNotFoundError(
                f"no data mirror found for {PAIRS_FILE}: set COMPENDIUM_MIRROR or pass path="
            )
        path = Path(mirror) / PAIRS_FILE
    df = pd.read_csv(path, dtype={c: str for c in PAIR_COLUMNS if c != "avg_voltage"})
    missing = [c for c in PAIR_COLUMNS if c not in df.columns]
    if missing:
        raise ElectrodeError(f"{path}: missing column(s) {missing}; expected {list(PAIR_COLUMNS)}")
    df["ion"] = df["battery_id"].str.rsplit("_", n=1).str[-1]
    bad = df[~df["ion"].isin(list(WORKING_IONS))]
    if len(bad):
        raise ElectrodeError(
            f"{path}: {len(bad)} row(s) with an unknown working ion, e.g. battery_id "
            f"{bad['battery_id'].iloc[0]!r}; known: {', '.join(WORKING_IONS)}"
        )
    v = pd.to_numeric(df["avg_voltage"], errors="coerce")
    if v.isna().any():
        raise ElectrodeError(
            f"{path}: non-numeric avg_voltage in row(s) {list(np.flatnonzero(v.isna())[:5])}"
        )
    df["avg_voltage"] = v.astype(float)
    df["z"] = df["ion"].map(WORKING_IONS).astype(int)
    df.attrs["source"] = str(path)
    return df


__all__ = ["WORKING_IONS", "PAIRS_FILE", "PAIR_COLUMNS", "ElectrodeError", "read_pairs"]
