"""CGCNN's atom feature vectors: nine element properties, each one-hot encoded, 92 numbers per element.

The CGCNN paper (Xie & Grossman, PRL 2018, supplementary Table S2) describes each atom by nine
properties of its element, every one cut into categories and one-hot encoded. Its code ships the
result as ``atom_init.json`` without the script that made it. :data:`ATOM_FEATURE_SPEC` is that
table written out (which property, which bins, which data source) and :func:`atom_feature_table`
rebuilds the vectors from pymatgen's element data, so the features are documented and reproducible.

The layout follows the reference ``atom_init.json``, and it differs from the paper's table in two
places. The paper lists 18 groups and 9 periods, which would add up to 93 numbers. The file has
92: 19 group slots (slot 0 holds La-Yb and Ac-No, which have no group number) and 7 periods.

Checked against a copy of the reference ``atom_init.json`` (the CGCNN repository's
data/sample-regression file), 21 of elements 1-100 agree on all 92 numbers. By property:
group, period, first ionization energy and block agree for 100 of 100 elements, valence electrons
for 99, atomic volume for 80, electronegativity for 77, electron affinity for 62 and covalent
radius for 43. The differences come from the data, not the bins. The reference's radii look like
Pyykkö's single-bond radii, one bin smaller than Cordero's for most transition metals and
lanthanides. Its gases have other molar volumes, and it leaves out many negative or uncertain
electron affinities. The reference file itself is not part of this project.

Models look the vectors up by atomic number (``table[numbers]``, a buffer inside the model), so no
per-atom float features are ever stored on disk.

Data sources (pymatgen's ``periodic_table.json`` unless stated otherwise):

- group, period, block: from the atomic number (``Element.group``, ``Element.row``,
  ``Element.block``), with La-Yb and Ac-No moved to group slot 0, and He (1s2) in the s block.
- electronegativity: Pauling ``Element.X``.
- covalent radius: Cordero et al., Dalton Trans. 2008, as shipped by ASE (``ase.data.covalent_radii``).
  pymatgen has no covalent radii. ASE has none for Z > 96, so those elements get no bin for it.
- valence electrons: from the group: g for groups 1-12, g - 10 for groups 13-18 (He: 2), and 2
  (the outer s pair) for La-Yb and Ac-No. This is the rule the reference file follows.
- first ionization energy: ``Element.ionization_energies[0]`` in eV, binned on ln(eV) over 1.3-3.3.
- electron affinity: ``Element.electron_affinity`` in eV, binned linearly over -3 to 3.7.
- atomic volume: ``Element.molar_volume`` in cm³/mol, binned on ln over 1.5-4.3.

When a value is missing (for example the electronegativity of He, or any property of the heaviest
elements) that feature's bins stay all zero. So a row sums to the number of properties the element
has data for, at most nine.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd
from ase.data import covalent_radii
from pymatgen.core.periodic_table import Element


@dataclass(frozen=True)
class FeatureSpec:
    """One property of the atom vector: where it comes from and how it is cut into one-hot bins.

    kind: "category" (value v goes to slot ``categories.index(v)``), "linear" (``n`` equal bins on
    [lo, hi]) or "log" (``n`` equal bins of ln(value) on [lo, hi]). Values outside [lo, hi] go to
    the first or last bin.
    """

    name: str
    n: int
    kind: str
    source: str
    unit: str = ""
    lo: float | None = None
    hi: float | None = None
    categories: tuple = ()

    def edges(self) -> np.ndarray | None:
        """The n+1 bin edges (on the ln scale for "log"); None for categories."""
        if self.kind == "category":
            return None
        return np.linspace(self.lo, self.hi, self.n + 1)

    def bin(self, value) -> int | None:
        """The slot of ``value`` in 0..n-1, or None when the value is missing."""
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return None
        if self.kind == "category":
            return self.categories.index(value) if value in self.categories else None
        x = float(value)
        if self.kind == "log":
            if x <= 0:
                return None
            x = math.log(x)
        k = int(math.floor((x - self.lo) / ((self.hi - self.lo) / self.n)))
        return min(max(k, 0), self.n - 1)


ATOM_FEATURE_SPEC: tuple[FeatureSpec, ...] = (
    FeatureSpec("group", 19, "category", "Element.group; slot 0 = La-Yb, Ac-No (no group)",
                categories=tuple(range(19))),
    FeatureSpec("period", 7, "category", "Element.row", categories=tuple(range(1, 8))),
    FeatureSpec("electronegativity", 10, "linear", "Element.X (Pauling)", "", 0.5, 4.0),
    FeatureSpec("covalent_radius", 10, "linear", "ase.data.covalent_radii (Cordero 2008) x 100", "pm",
                25.0, 250.0),
    FeatureSpec("valence_electrons", 12, "category", "from the group (see module docstring)",
                categories=tuple(range(1, 13))),
    FeatureSpec("first_ionization_energy", 10, "log", "Element.ionization_energies[0]", "eV", 1.3, 3.3),
    FeatureSpec("electron_affinity", 10, "linear", "Element.electron_affinity", "eV", -3.0, 3.7),
    FeatureSpec("block", 4, "category", "Element.block", categories=("s", "p", "d", "f")),
    FeatureSpec("atomic_volume", 10, "log", "Element.molar_volume", "cm³/mol", 1.5, 4.3),
)
N_ATOM_FEATURES = sum(s.n for s in ATOM_FEATURE_SPEC)  # 92


def feature_slices() -> dict[str, slice]:
    """Column range of each property in the 92-long vector, e.g. {"group": slice(0, 19), ...}."""
    out, start = {}, 0
    for s in ATOM_FEATURE_SPEC:
        out[s.name] = slice(start, start + s.n)
        start += s.n
    return out


def _no_group(z: int) -> bool:
    """La-Yb and Ac-No: the f-block rows, which have no group number in the reference vectors."""
    return 57 <= z <= 70 or 89 <= z <= 102


def element_properties(z: int) -> dict:
    """The raw values the nine features are binned from, for atomic number ``z`` (None = missing)."""
    el = Element.from_Z(z)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        group = 0 if _no_group(z) else int(el.group)
        x = el.X
        ies = el.ionization_energies
        ie = ies[0] if ies else None
        try:
            ea = el.electron_affinity
        except KeyError:
            ea = None
        vol = el.molar_volume
        block = "s" if z == 2 else el.block  # pymatgen puts He (1s2) in the p block with group 18
    if group == 0:
        valence = 2
    elif group <= 12:
        valence = group
    else:
        valence = 2 if z == 2 else group - 10
    r_cov = float(covalent_radii[z]) * 100 if z <= 96 else None
    return {
        "group": group,
        "period": int(el.row),
        "electronegativity": None if x is None or math.isnan(x) else float(x),
        "covalent_radius": r_cov,
        "valence_electrons": valence,
        "first_ionization_energy": None if ie is None else float(ie),
        "electron_affinity": None if ea is None else float(ea),
        "block": block,
        "atomic_volume": None if vol is None else float(vol),
    }


@lru_cache(maxsize=4)
def _table(max_z: int) -> np.ndarray:
    table = np.zeros((max_z + 1, N_ATOM_FEATURES), dtype=np.float32)
    slices = feature_slices()
    for z in range(1, max_z + 1):
        props = element_properties(z)
        for spec in ATOM_FEATURE_SPEC:
            k = spec.bin(props[spec.name])
            if k is not None:
                table[z, slices[spec.name].start + k] = 1.0
    table.setflags(write=False)
    return table


def atom_feature_table(max_z: int = 100) -> np.ndarray:
    """(max_z+1, 92) float32: row Z is the one-hot vector of element Z; row 0 is zeros (padding).

    Built from :data:`ATOM_FEATURE_SPEC` (cached; a fresh writable copy is returned).
    """
    if not 1 <= max_z <= 118:
        raise ValueError(f"max_z must be in 1..118, got {max_z}")
    return _table(int(max_z)).copy()


def feature_table_frame(max_z: int = 100):
    """The raw property values and their bins, one row per element (a pandas DataFrame, for reading)."""
    rows = []
    for z in range(1, max_z + 1):
        props = element_properties(z)
        row = {"Z": z, "symbol": Element.from_Z(z).symbol}
        for spec in ATOM_FEATURE_SPEC:
            row[spec.name] = props[spec.name]
            row[spec.name + "_bin"] = spec.bin(props[spec.name])
        rows.append(row)
    return pd.DataFrame(rows).set_index("Z")


def spec_frame():
    """:data:`ATOM_FEATURE_SPEC` as a table: name, number of bins, range or categories, unit, source."""
    rows = []
    for s in ATOM_FEATURE_SPEC:
        if s.kind == "category":
            rng = ", ".join(map(str, s.categories))
        else:
            rng = f"{s.lo:g} .. {s.hi:g}" + (" (ln)" if s.kind == "log" else "")
        rows.append({"feature": s.name, "bins": s.n, "kind": s.kind, "range / categories": rng,
                     "unit": s.unit, "source": s.source})
    return pd.DataFrame(rows)


@lru_cache(maxsize=1)
def element_table() -> dict[str, tuple[int, float]]:
    """symbol -> (Z, Pauling electronegativity) for the elements pymatgen knows (NaN X kept as NaN)."""
    table = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for el in Element:
            if el.Z > 118:
                continue
            table[el.symbol] = (int(el.Z), float(el.X))
    return table
