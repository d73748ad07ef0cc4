"""Held-out sets: structures kept out of a profile's training, validation and test rows altogether.

``electrodes``: every structure of the Materials Project insertion-electrode pairs (the mirror's
``mp_insertion_electrodes.csv``, both the charged and the discharged material of each of its 4,401 pairs).
Models trained without them (the ``best`` profile, whose models are shipped) predict electrode voltages
for 08_cathodes leak-free: none of the benchmark's structures was seen in training or model selection.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pandas as pd

from lib import paths
from lib.data.sources.base import DataUnavailable

ELECTRODE_FILE = "mp_insertion_electrodes.csv"
HOLDOUTS = {"electrodes": f"both materials of every MP insertion-electrode pair ({ELECTRODE_FILE})"}


@cache
def _electrode_ids(path: Path) -> frozenset[str]:
    pairs = pd.read_csv(path, usecols=["high_mpid", "low_mpid"])
    return frozenset(pairs["high_mpid"].astype(str)) | frozenset(pairs["low_mpid"].astype(str))


def holdout_ids(name: str | None, mirror: str | Path | None = None) -> frozenset[str]:
    """The material ids of held-out set ``name`` (None: none)."""
    if name is None:
        return frozenset()
    if name not in HOLDOUTS:
        raise ValueError(f"unknown held-out set {name!r}; known: {', '.join(HOLDOUTS)}")
    folder = Path(mirror) if mirror is not None else paths.default_mirror()
    if folder is None or not (folder / ELECTRODE_FILE).exists():
        raise DataUnavailable(f"the held-out set {name!r} needs {ELECTRODE_FILE} from the data mirror "
                              "(../shared/data or COMPENDIUM_MIRROR)")
    return _electrode_ids(folder / ELECTRODE_FILE)


def without_holdout(df: pd.DataFrame, name: str | None) -> pd.DataFrame:
    """``df`` without the rows of held-out set ``name`` (its attrs kept)."""
    if name is None:
        return df
    out = df[~df["material_id"].astype(str).isin(holdout_ids(name))]
    out.attrs = dict(df.attrs)
    out.attrs["holdout"] = name
    return out
