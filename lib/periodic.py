"""Periodic-table labels of the elements: group (1..18) and period (1..7), read from pymatgen.

XGNN (07_xgnn) explains a CGCNN classifier whose atoms carry nothing but one of these labels, so the
mapping from atomic numbers to labels lives here, once, and is applied when the classifier's inputs
are built (``lib.xgnn.LabelledGraphs``), never by rewriting the graph cache.

Two labellings, each a table indexed by the atomic number Z (0..118):

- ``"group"``: the IUPAC group 1..18 (pymatgen's ``Element.group``). Hydrogen is in group 1.
  **Lanthanides and actinides (La–Lu, Ac–Lr) are in group 3**, as pymatgen places them (the f-block
  drawn below group 3: Sc, Y and the whole f-block share a label). They make up a small share of the
  dataset's atoms (mostly in intermetallics and oxides); a separate "f-block" label would give
  the generator a 19th candidate that no crystal outside those few carries.
- ``"period"``: the row 1..7 (``Element.row``); lanthanides are in period 6 and actinides in 7.

Labels are numbered from 1 as in the periodic table; the *index* used as a model input is the label
minus one (0..17 or 0..6), see :func:`label_index_table`.
"""

from __future__ import annotations

from functools import cache

import numpy as np
from pymatgen.core.periodic_table import Element

Z_MAX = 118
#: labelling name -> number of labels
LABELLINGS: dict[str, int] = {"group": 18, "period": 7}

__all__ = ["Z_MAX", "LABELLINGS", "group", "period", "label_numbers", "label_index_table", "to_label_index",
           "n_labels", "label_names", "label_title", "check_labelling"]


def check_labelling(labelling: str) -> str:
    """``labelling`` if known, else a ValueError naming the known ones."""
    if labelling not in LABELLINGS:
        raise ValueError(f"unknown labelling {labelling!r}; known: {', '.join(LABELLINGS)}")
    return labelling


@cache
def _tables() -> dict[str, np.ndarray]:
    grp = np.zeros(Z_MAX + 1, dtype=np.int64)
    per = np.zeros(Z_MAX + 1, dtype=np.int64)
    for z in range(1, Z_MAX + 1):
        el = Element.from_Z(z)
        grp[z] = int(el.group)  # 3 for La-Lu and Ac-Lr (pymatgen)
        per[z] = int(el.row)  # 6 for La-Lu, 7 for Ac-Lr
    grp.setflags(write=False)
    per.setflags(write=False)
    return {"group": grp, "period": per}


def label_numbers(labelling: str) -> np.ndarray:
    """(Z_MAX + 1,) int64: the group (1..18) or period (1..7) of every atomic number; 0 at Z = 0."""
    return _tables()[check_labelling(labelling)]


def group(z: int) -> int:
    """Periodic group 1..18 of atomic number ``z`` (lanthanides and actinides: 3)."""
    return int(label_numbers("group")[_check_z(z)])


def period(z: int) -> int:
    """Period (row) 1..7 of atomic number ``z``."""
    return int(label_numbers("period")[_check_z(z)])


def _check_z(z: int) -> int:
    z = int(z)
    if not 1 <= z <= Z_MAX:
        raise ValueError(f"atomic number must be in 1..{Z_MAX}, got {z}")
    return z


@cache
def label_index_table(labelling: str) -> np.ndarray:
    """(Z_MAX + 1,) int64: the model-input index (label − 1, so 0..n−1) of every Z; −1 at Z = 0."""
    t = label_numbers(labelling) - 1
    t.setflags(write=False)
    return t


def to_label_index(numbers, labelling: str) -> np.ndarray:
    """Label indices (0..n−1) of an array of atomic numbers; a ValueError names any Z outside 1..118."""
    z = np.asarray(numbers, dtype=np.int64)
    bad = (z < 1) | (z > Z_MAX)
    if bad.any():
        raise ValueError(f"atomic numbers outside 1..{Z_MAX}: {sorted(set(z[bad].tolist()))[:10]}")
    return label_index_table(labelling)[z]


def n_labels(labelling: str) -> int:
    """18 for "group", 7 for "period"."""
    return LABELLINGS[check_labelling(labelling)]


def label_names(labelling: str) -> list[str]:
    """Tick labels of the label indices: '1'..'18' or '1'..'7'."""
    return [str(i + 1) for i in range(n_labels(labelling))]


def label_title(labelling: str) -> str:
    """Axis title of a labelling: 'group' or 'period'."""
    return check_labelling(labelling)
