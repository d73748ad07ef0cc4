"""Datasets: one tidy table per dataset, from the Materials Project, OPTIMADE, a mirror or a folder.

:func:`load_dataset` returns the *standard table*, one row per material:

- ``material_id`` (str), ``structure`` (a :class:`lib.structures.Crystal`: the fast array form the
  graph builders and caches use; ``crystal.to_structure()`` gives the pymatgen ``Structure``);
- one float64 column per target of :data:`TARGETS`, in the thesis's units (Table 2), NaN where a
  material lacks that target: ``formation_energy_per_atom`` (eV/atom), ``energy_per_atom``
  (eV/atom), ``efermi`` (eV), ``band_gap`` (eV), ``log10_K_VRH`` and ``log10_G_VRH`` (log10 of GPa),
  ``poisson_ratio`` (dimensionless);
- ``source`` (where the row came from) and ``retrieved`` (ISO date the row was read from it).

``df.attrs`` carries ``content_hash`` (a stable hash of ids, structures and targets, cited by run
records), ``rejected`` (material_id, target, reason, detail: every material or value left out, and
why), ``drops`` (counts by reason) and ``notes``.

Sources (``source=``): ``"mp"`` (mp-api's MPRester, key from ``MP_API_KEY``, resumable chunks under
data/raw/mp/), ``"optimade"`` (OQMD and NOMAD through OPTIMADE; provider names and units mapped by
:data:`PROPERTY_MAP`), ``"mirror"`` (the project's JSON Lines snapshot format, e.g. ../shared/data,
or a file written by :func:`export_snapshot`), ``"folder"`` (a CGCNN-format folder: id_prop.csv +
<id>.cif), ``"figshare"`` (the MEGNet paper's public mp.2018.6.1.json) and ``"auto"``.

Processed tables are cached in data/processed/ as parquet (Crystals as flat list columns), keyed by
the inputs' sizes and modification times and :data:`FORMAT_VERSION`: a changed input is never read
stale, and the second load of the full CGCNN dataset takes about a second.
"""

from __future__ import annotations

import datetime as _dt
import gzip
import hashlib
import json
import lzma
import math
import os
import re
import time
import warnings
import zipfile
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from lib.paths import DATA, atomic_path, default_mirror
from lib.structures import (
    Crystal,
    StructureError,
    crystals_from_flat,
    crystals_to_flat,
    parse_cif,
    parse_structure_dict,
)

with warnings.catch_warnings():  # tqdm.auto warns when a notebook has no ipywidgets; text bars are fine
    warnings.simplefilter("ignore")
    from tqdm.auto import tqdm

try:  # orjson (an mp-api dependency) reads the JSON Lines mirror ~3x faster
    import orjson as _orjson

    _loads = _orjson.loads
except ImportError:  # pragma: no cover
    _orjson = None
    _loads = json.loads

FORMAT_VERSION = 2  # bump when the processed table changes for the same inputs (2: PBE energy scale)

# ----------------------------------------------------------------------------------------------
# targets
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """One modelled property: its column, plot label, unit and the thesis's description."""

    column: str
    label: str
    unit: str
    description: str
    note: str = ""


TARGETS: dict[str, Target] = {
    t.column: t
    for t in (
        Target(
            "formation_energy_per_atom",
            "Formation energy",
            "eV/atom",
            "DFT (PBE/PBE+U) formation energy per atom relative to the elements, with MP's corrections",
        ),
        Target(
            "energy_per_atom",
            "Energy per atom",
            "eV/atom",
            "DFT total energy per atom",
            "From the MP summary API of 2024-04-25 (mp_energy_2024.csv), joined by material id to the "
            "2020 structures: for the same ids the 2024 formation energy differs from the 2020 one by "
            "0.026 eV/atom at the median. MP 2024 mixes PBE (GGA/GGA+U) and r2SCAN total energies, whose "
            "absolute scales differ by eV/atom; only the values on the PBE scale are kept (see "
            "energy_scale: 25,414 of the 36,179 in the CGCNN table), so the target is one functional's.",
        ),
        Target("efermi", "Fermi energy", "eV", "Fermi energy of the DFT calculation"),
        Target("band_gap", "Band gap", "eV", "PBE band gap (0 for metals)"),
        Target(
            "log10_K_VRH",
            "Bulk modulus K_VRH",
            "log10(GPa)",
            "Voigt-Reuss-Hill average bulk modulus K_VRH from the elastic tensor, as log10 of GPa",
            "Non-positive moduli have no logarithm and are dropped.",
        ),
        Target(
            "log10_G_VRH",
            "Shear modulus G_VRH",
            "log10(GPa)",
            "Voigt-Reuss-Hill average shear modulus G_VRH from the elastic tensor, as log10 of GPa",
            "Non-positive moduli have no logarithm and are dropped.",
        ),
        Target(
            "poisson_ratio",
            "Poisson ratio",
            "–",
            "Homogeneous Poisson ratio from the elastic tensor",
            "Values outside [0, 0.5] are dropped, as in the thesis.",
        ),
    )
}

#: the targets each paper's dataset has
DATASET_TARGETS: dict[str, tuple[str, ...]] = {
    "cgcnn": tuple(TARGETS),
    "megnet": ("formation_energy_per_atom", "band_gap", "log10_K_VRH", "log10_G_VRH"),
}

POISSON_RANGE = (0.0, 0.5)

# ----------------------------------------------------------------------------------------------
# the one mapping table: provider property names and units -> standard columns
# ----------------------------------------------------------------------------------------------

EV_PER_JOULE = 1.0 / 1.602176634e-19  # exact (SI 2019)


@dataclass(frozen=True)
class PropertyMapping:
    """How one provider field becomes a standard column: value * factor, then the transform.

    field: the provider's name ("a.b" reads key b of a dict field); unit: the provider's unit;
    transform: "x" (as is) or "log10" (of value * factor, non-positive values dropped);
    pick: how a list value becomes one number ("first", "min", "vrh": the entry whose companion
    ``<field minus _value>_type`` is voigt_reuss_hill_average, else the first).
    """

    provider: str
    field: str
    column: str
    unit: str
    factor: float = 1.0
    transform: str = "x"
    pick: str = "first"
    note: str = ""


_NMD = "_nmd_results_properties_"
_J, _PA = EV_PER_JOULE, 1e-9  # J -> eV, Pa -> GPa
# fmt: off
PROPERTY_MAP: tuple[PropertyMapping, ...] = (
    # provider  provider field                    standard column          provider unit  conversion
    # Materials Project summary documents (mp-api 0.46, emmet SummaryDoc)
    PropertyMapping("mp", "formation_energy_per_atom", "formation_energy_per_atom", "eV/atom"),
    PropertyMapping("mp", "energy_per_atom", "energy_per_atom", "eV/atom"),
    PropertyMapping("mp", "efermi", "efermi", "eV"),
    PropertyMapping("mp", "band_gap", "band_gap", "eV"),
    PropertyMapping("mp", "bulk_modulus.vrh", "log10_K_VRH", "GPa", transform="log10"),
    PropertyMapping("mp", "shear_modulus.vrh", "log10_G_VRH", "GPa", transform="log10"),
    PropertyMapping("mp", "homogeneous_poisson", "poisson_ratio", "1"),
    # the project's JSON Lines mirror and snapshots (raw mirror files and export_snapshot files)
    PropertyMapping("mirror", "formation_energy_per_atom", "formation_energy_per_atom", "eV/atom"),
    PropertyMapping("mirror", "energy_per_atom", "energy_per_atom", "eV/atom"),
    PropertyMapping("mirror", "efermi", "efermi", "eV"),
    PropertyMapping("mirror", "band_gap", "band_gap", "eV"),
    PropertyMapping("mirror", "log10_K_VRH", "log10_K_VRH", "log10(GPa)"),
    PropertyMapping("mirror", "log10_G_VRH", "log10_G_VRH", "log10(GPa)"),
    PropertyMapping("mirror", "K_VRH", "log10_K_VRH", "GPa", transform="log10"),
    PropertyMapping("mirror", "G_VRH", "log10_G_VRH", "GPa", transform="log10"),
    PropertyMapping("mirror", "poisson_ratio", "poisson_ratio", "1"),
    # the MEGNet paper's mp.2018.6.1.json (figshare): moduli in log10(GPa), the unit of its models;
    # a file whose moduli look like GPa (median > 4) is read through the *_GPa rows instead
    PropertyMapping("megnet", "formation_energy_per_atom", "formation_energy_per_atom", "eV/atom"),
    PropertyMapping("megnet", "band_gap", "band_gap", "eV"),
    PropertyMapping("megnet", "K_VRH", "log10_K_VRH", "log10(GPa)"),
    PropertyMapping("megnet", "G_VRH", "log10_G_VRH", "log10(GPa)"),
    PropertyMapping("megnet", "K_VRH_GPa", "log10_K_VRH", "GPa", transform="log10"),
    PropertyMapping("megnet", "G_VRH_GPa", "log10_G_VRH", "GPa", transform="log10"),
    # OQMD through OPTIMADE (qmpy's provider fields, eV)
    PropertyMapping("oqmd", "_oqmd_delta_e", "formation_energy_per_atom", "eV/atom"),
    PropertyMapping("oqmd", "_oqmd_band_gap", "band_gap", "eV"),
    PropertyMapping("oqmd", "_oqmd_stability", "energy_above_hull", "eV/atom",
                    note="OQMD's hull distance (negative below the hull); an extra column, not a target"),
    # NOMAD through OPTIMADE: results.* quantities flattened with "_nmd_" and "_", in SI units
    PropertyMapping("nomad", _NMD + "electronic_band_structure_electronic_band_gap_value", "band_gap", "J",
                    factor=_J, pick="min"),
    PropertyMapping("nomad", _NMD + "electronic_dos_electronic_band_gap_value", "band_gap", "J",
                    factor=_J, pick="min"),
    PropertyMapping("nomad", _NMD + "mechanical_bulk_modulus_value", "log10_K_VRH", "Pa",
                    factor=_PA, transform="log10", pick="vrh"),
    PropertyMapping("nomad", _NMD + "mechanical_shear_modulus_value", "log10_G_VRH", "Pa",
                    factor=_PA, transform="log10", pick="vrh"),
)
# fmt: on

# ----------------------------------------------------------------------------------------------
# public locations of the original data
# ----------------------------------------------------------------------------------------------

MEGNET_FILE = "mp.2018.6.1.json"
MEGNET_URL = "https://figshare.com/ndownloader/files/15087992"  # mp.2018.6.1.json.zip
MEGNET_PAGE = "https://figshare.com/articles/Graphs_of_materials_project/7451351"
CGCNN_IDS_URL = "https://raw.githubusercontent.com/txie-93/cgcnn/master/data/material-data/mp-ids-46744.csv"
MP_KEY_URL = "https://next-gen.materialsproject.org/api"
OPTIMADE_PROVIDERS: dict[str, str] = {
    "oqmd": "https://oqmd.org/optimade",
    "nomad": "https://nomad-lab.eu/prod/v1/optimade",
}
OPTIMADE_STRUCTURE_FIELDS = (
    "lattice_vectors",
    "cartesian_site_positions",
    "species_at_sites",
    "species",
    "dimension_types",
    "chemical_formula_reduced",
)
MP_FIELDS = [
    "material_id",
    "structure",
    "energy_per_atom",
    "formation_energy_per_atom",
    "efermi",
    "band_gap",
    "bulk_modulus",
    "shear_modulus",
    "homogeneous_poisson",
]
MIRROR_FILES = {
    "main": "mp_cgcnn_2020.jsonl.xz",
    "elastic": "mp_elastic_cgcnn_2020.jsonl.xz",
    "energy": "mp_energy_2024.csv",
    "ids": "mp-ids-46744.csv",
}
SOURCES = ("auto", "mp", "optimade", "mirror", "folder", "figshare")


class DataUnavailable(RuntimeError):
    """No source can be read (no mirror, no key, no network): the message says what to do."""


class FetchError(RuntimeError):
    """A download stopped part-way; what was fetched is kept and the same call resumes."""


class RejectedTable(pd.DataFrame):
    """The rejection report (material_id, target, reason, detail) kept in ``df.attrs["rejected"]``.

    A plain DataFrame, except that ``==`` between two reports is one bool: pandas compares ``attrs``
    with ``==`` when it concatenates or merges frames, which a DataFrame in ``attrs`` would break.
    """

    _metadata: list[str] = []

    @property
    def _constructor(self):
        return RejectedTable

    def __eq__(self, other):  # type: ignore[override]
        return isinstance(other, pd.DataFrame) and pd.DataFrame(self).equals(pd.DataFrame(other))

    def __ne__(self, other):  # type: ignore[override]
        return not self.__eq__(other)

    __hash__ = None  # type: ignore[assignment]


_REJECTED_COLUMNS = ("material_id", "target", "reason", "detail")


def _rejected_frame(rows: Iterable[tuple]) -> RejectedTable:
    rows = list(rows)
    return RejectedTable(pd.DataFrame(rows, columns=list(_REJECTED_COLUMNS)).astype(str))


# ----------------------------------------------------------------------------------------------
# public helpers
# ----------------------------------------------------------------------------------------------


def split(
    n_or_df: int | pd.DataFrame, seed: int, fractions: Sequence[float] = (0.8, 0.1, 0.1)
) -> dict[str, np.ndarray]:
    """Deterministic random split into positional indices: {"train","val","test"} or {"train","test"}.

    ``numpy.random.default_rng(seed)`` permutes ``range(n)``; val/test get floor(fraction * n) rows
    and train the rest; each part is returned sorted. Disjoint and covering by construction.
    """
    n = len(n_or_df) if isinstance(n_or_df, pd.DataFrame) else int(n_or_df)
    fr = [float(f) for f in fractions]
    if len(fr) not in (2, 3) or any(f < 0 for f in fr) or not math.isclose(sum(fr), 1.0, abs_tol=1e-6):
        raise ValueError(
            f"fractions must be 2 or 3 non-negative numbers summing to 1, got {tuple(fractions)}"
        )
    names = ("train", "val", "test") if len(fr) == 3 else ("train", "test")
    perm = np.random.default_rng(seed).permutation(n)
    sizes = [int(math.floor(f * n + 1e-9)) for f in fr[1:]]
    bounds = np.cumsum([n - sum(sizes), *sizes])
    parts = np.split(perm, bounds[:-1])
    return {k: np.sort(p).astype(np.int64) for k, p in zip(names, parts, strict=True)}


def target_frame(df: pd.DataFrame, target: str, n_max: int | None = None, seed: int = 0) -> pd.DataFrame:
    """The rows that have ``target`` (optionally a deterministic random subsample of ``n_max`` rows).

    The index is reset (positions = labels). ``attrs["content_hash"]`` becomes the hash of these rows
    (ids, structures, this target) and ``attrs["dataset_hash"]`` keeps the full table's.
    """
    if target not in df.columns:
        known = [c for c in TARGETS if c in df.columns]
        raise KeyError(f"no target column {target!r}; this table has {known}")
    out = df[df[target].notna()]
    if n_max is not None and len(out) > n_max:
        pick = np.sort(np.random.default_rng(seed).choice(len(out), size=int(n_max), replace=False))
        out = out.iloc[pick]
    out = out.reset_index(drop=True)
    out.attrs = dict(df.attrs)
    out.attrs["dataset_hash"] = df.attrs.get("dataset_hash", df.attrs.get("content_hash"))
    out.attrs["target"] = target
    out.attrs["content_hash"] = content_hash(out, [target])
    return out


def content_hash(df: pd.DataFrame, columns: Sequence[str] | None = None) -> str:
    """A stable sha256 of ids, structures (exact bytes) and target columns (not source/date)."""
    h = hashlib.sha256(b"lib.data content v1\n")
    h.update("\n".join(df["material_id"].astype(str).tolist()).encode())
    flat = crystals_to_flat(list(df["structure"]))
    for key in ("lattices", "offsets", "frac_coords", "numbers"):
        arr = np.ascontiguousarray(flat[key], dtype=np.int64 if key in ("offsets", "numbers") else np.float64)
        h.update(key.encode())
        h.update(arr.tobytes())
    cols = [c for c in TARGETS if c in df.columns] if columns is None else list(columns)
    for col in cols:
        v = df[col].to_numpy(dtype=np.float64, copy=True, na_value=np.nan)
        v[np.isnan(v)] = np.nan  # one NaN bit pattern
        h.update(col.encode())
        h.update(v.tobytes())
    return h.hexdigest()


def target_table(df: pd.DataFrame, targets: Sequence[str] | None = None) -> pd.DataFrame:
    """The thesis's Table 2: instances per property with units, plus the values dropped and why."""
    drops = df.attrs.get("drops", {})
    rows = []
    for col in targets or [c for c in TARGETS if c in df.columns]:
        t = TARGETS.get(col, Target(col, col, "", ""))
        n = int(df[col].notna().sum()) if col in df.columns else 0
        if targets is None and n == 0:
            continue
        dropped = {k.split(": ", 1)[1]: v for k, v in drops.items() if k.startswith(col + ": ")}
        rows.append(
            {
                "property": t.label,
                "column": col,
                "unit": t.unit,
                "instances": n,
                "dropped": sum(dropped.values()),
                "why dropped": "; ".join(f"{k} ({v})" for k, v in dropped.items()),
                "note": t.note,
            }
        )
    return pd.DataFrame(rows)


def summary(df: pd.DataFrame) -> str:
    """Short text report of a loaded table: size, source, drops by reason (one line each)."""
    a = df.attrs
    lines = [
        f"{a.get('name', '?')} from {a.get('source', '?')}: {len(df):,} materials"
        + (f" ({a['origin']})" if a.get("origin") else "")
    ]
    for reason, count in a.get("drops", {}).items():
        lines.append(f"  left out: {reason}: {count:,}")
    return "\n".join(lines)


def export_snapshot(df: pd.DataFrame, path: str | Path) -> Path:
    """Write a table in the project's snapshot format (JSON Lines; .xz/.gz compressed by suffix).

    One JSON object per material: ``material_id``, ``cif`` (P1 CIF, portable), ``crystal`` (the exact
    arrays, so that reading back gives bit-identical structures and the same content hash), the
    target columns (null for NaN), ``source`` and ``retrieved``. Read it with
    ``load_dataset(name, source="mirror", mirror=path)``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    targets = [c for c in TARGETS if c in df.columns]
    extra = [c for c in ("source", "retrieved") if c in df.columns]
    with atomic_path(path) as tmp, _open_text(tmp, "wt", compress_like=path) as fh:
        for rec in df[["material_id", "structure", *targets, *extra]].itertuples(index=False):
            c: Crystal = rec[1]
            obj = {
                "material_id": str(rec[0]),
                "cif": c.to_cif(str(rec[0])),
                "crystal": {
                    "lattice": c.lattice.tolist(),
                    "frac_coords": c.frac_coords.tolist(),
                    "numbers": c.numbers.tolist(),
                },
            }
            for k, col in enumerate(targets):
                v = rec[2 + k]
                obj[col] = None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)
            for k, col in enumerate(extra):
                obj[col] = str(rec[2 + len(targets) + k])
            fh.write(json.dumps(obj) + "\n")
    return path


# ----------------------------------------------------------------------------------------------
# load_dataset
# ----------------------------------------------------------------------------------------------


#: MP's PBE elemental reference energies (eV/atom; O with MP2020's correction) of three common elements. They
#: tell which family of energies in a table is the PBE one: r2SCAN's lie 0.5-3.4 eV/atom lower for these.
PBE_REFERENCES = {3: -1.909, 8: -4.952, 14: -5.425}
#: largest |E - E_f - sum_i x_i mu_i| (eV/atom) of an energy on the PBE scale. On the mirror the PBE family
#: fits to 5e-5 eV/atom at the median and 8e-4 at the 99th percentile; the r2SCAN values miss by 0.1-80.
ENERGY_SCALE_TOL = 0.05


@dataclass
class EnergyScale:
    """Result of :func:`energy_scale`: which energies are on the PBE scale, and the fitted references."""

    on_scale: np.ndarray  # bool per row (True also where no check was made: too few rows in all)
    undetermined: np.ndarray  # bool per row: has an element too rare among the PBE energies to check it
    residual: np.ndarray  # E - E_f - sum_i x_i mu_i in eV/atom (NaN where a value is missing)
    references: dict[int, float]  # fitted elemental reference energy per atomic number (eV/atom)
    checked: bool  # False: too few rows, or no dominant PBE family; nothing was flagged
    note: str


def energy_scale(numbers: Sequence[np.ndarray], energy: np.ndarray, formation: np.ndarray,
                 tol: float = ENERGY_SCALE_TOL, min_rows: int = 500, min_count: int = 5) -> EnergyScale:
    """Which total energies per atom are PBE (GGA/GGA+U) energies, in a table that mixes functionals.

    A formation energy is E_f = E - sum_i x_i mu_i, with x_i the atomic fractions and mu_i the elemental
    reference energies of the functional E was computed with. Given energies and formation energies from
    the same release (MP 2024 mixes PBE and r2SCAN), the energies of one functional satisfy this with one set
    of mu_i to numerical precision, and those of another functional miss it by their different references.
    The mu_i are fitted by least squares, dropping the rows that miss by more than 0.5 eV/atom, then by
    more than ``tol``, and refitting until the set stops changing. This finds the dominant family (PBE is
    70 % of MP 2024's energies), and the result is accepted only if that family fits tightly (median
    residual below tol / 10) and its references for Li, O and Si (each in at least 50 of its rows) agree
    with :data:`PBE_REFERENCES` within 0.1 eV/atom; otherwise nothing is flagged and ``checked`` is False.
    A row with an element in fewer than ``min_count`` rows of the family cannot be checked (that element's
    reference is fitted to those rows): it counts as off the scale, marked ``undetermined``.
    """
    energy = np.asarray(energy, dtype=float)
    formation = np.asarray(formation, dtype=float)
    n = len(energy)
    ok = np.isfinite(energy) & np.isfinite(formation)
    residual = np.full(n, np.nan)
    if ok.sum() < min_rows:
        return EnergyScale(np.ones(n, bool), np.zeros(n, bool), residual, {}, False,
                           f"energy scale not checked: {int(ok.sum())} rows with both energies "
                           f"(< {min_rows})")
    rows = np.flatnonzero(ok)
    zmax = max(int(np.max(numbers[i])) for i in rows) + 1
    x = np.zeros((len(rows), zmax))
    for k, i in enumerate(rows):
        z, c = np.unique(numbers[i], return_counts=True)
        x[k, z] = c / c.sum()
    y = energy[rows] - formation[rows]
    keep = np.ones(len(rows), bool)
    for it in range(50):  # fit, drop the rows that miss (0.5 eV/atom at first, then tol), refit, until stable
        mu = np.linalg.lstsq(x[keep], y[keep], rcond=None)[0]
        r = y - x @ mu
        new = np.abs(r) <= (0.5 if it < 5 else tol)
        if new.sum() < min_count or (new == keep).all():
            break
        keep = new
    count = (x[keep] > 0).sum(axis=0)
    anchors = {z: float(mu[z]) for z in PBE_REFERENCES if z < len(count) and count[z] >= 50}
    tight = keep.sum() >= min_count and np.median(np.abs(r[keep])) <= tol / 10
    if not (tight and anchors and all(abs(v - PBE_REFERENCES[z]) < 0.1 for z, v in anchors.items())):
        return EnergyScale(np.ones(n, bool), np.zeros(n, bool), residual, {}, False,
                           "energy scale not checked: the largest consistent family of energies is not PBE "
                           "(or there is none)")
    # an element in only a few PBE rows has a reference fitted to them: it would absorb any energy
    rare = ((x > 0) & (count < min_count)).any(axis=1)
    residual[rows] = r
    on, und = np.ones(n, bool), np.zeros(n, bool)
    on[rows] = (np.abs(r) <= tol) & ~rare
    und[rows] = rare
    refs = {z: float(mu[z]) for z in range(len(count)) if count[z] >= min_count}
    return EnergyScale(on, und, residual, refs, True,
                       f"{int(on[rows].sum()):,} of {len(rows):,} energies on the PBE scale "
                       f"(|E - E_f - sum x mu| <= {tol} eV/atom, median {np.median(np.abs(r[keep])):.1e}; "
                       f"{int(rare.sum())} with an element in < {min_count} PBE rows left unchecked)")


def load_dataset(
    name: str = "cgcnn",
    source: str = "auto",
    mirror: str | Path | None = None,
    *,
    path: str | Path | None = None,
    target: str | None = None,
    api_key: str | None = None,
    ids: Sequence[str] | None = None,
    optimade_filter: str | None = None,
    providers: Sequence[str] | Mapping[str, str] = ("oqmd", "nomad"),
    max_entries: int | None = None,
    chunk_size: int = 1000,
    download: bool = True,
    cache: bool = True,
    cache_dir: str | Path | None = None,
    raw_dir: str | Path | None = None,
    n_jobs: int | None = None,
    progress: bool = True,
    verbose: bool = True,
) -> pd.DataFrame:
    """Load a dataset as the standard table (see the module docstring), building and caching it once.

    name: "cgcnn" (the CGCNN paper's MP ids), "megnet" (the MEGNet paper's MP 2018.6.1 set), or any
    label for folder/optimade/snapshot data. For ``cgcnn`` from the mirror the table is the union
    of mp_cgcnn_2020 (36,737 materials with formation energy, band gap, Fermi energy) and the
    elastic file (3,191 materials, 7 of them not in the main file): 36,744 rows, of which 36,737
    have the main targets; energy_per_atom (MP 2024) is joined to the main file's ids (36,179), and
    the 25,414 of them on the PBE energy scale are kept (:func:`energy_scale`).

    source: "auto" (a mirror if given or found, else the MP API if a key is set, else an error that
    says how to get data; for megnet: the MEGNet JSON file, local or downloaded), "mp", "optimade",
    "mirror", "folder" or "figshare". mirror: a mirror folder or a snapshot file. path: the CGCNN
    folder (folder) or the MEGNet JSON/zip (figshare). target: the property of a folder's
    id_prop.csv. ids: MP ids to fetch (default: the dataset's list). optimade_filter, providers
    (names of :data:`OPTIMADE_PROVIDERS` or {name: base_url}), max_entries: OPTIMADE query.
    download: allow downloading public files (MEGNet JSON, CGCNN id list). cache: read/write the
    processed parquet under cache_dir (default data/processed). raw_dir: downloads (data/raw).
    """
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}; known: {', '.join(SOURCES)}")
    cache_dir = Path(cache_dir) if cache_dir is not None else DATA / "processed"
    raw_dir = Path(raw_dir) if raw_dir is not None else DATA / "raw"
    key = api_key or os.environ.get("MP_API_KEY") or None
    src = _resolve_source(name, source, mirror, path, key, raw_dir)
    opts = dict(name=name, target=target, n_jobs=n_jobs, progress=progress)

    if src == "mirror":
        given = mirror if mirror is not None else path
        mpath = Path(given) if given is not None else default_mirror()
        if mpath is None:
            raise DataUnavailable(_no_data_message(name))
        if not mpath.exists():
            raise DataUnavailable(f"the mirror {mpath} does not exist. " + _no_data_message(name))
        if mpath.is_dir():
            if name == "cgcnn":
                files = [mpath / f for k, f in MIRROR_FILES.items() if k != "ids"]
                missing = [str(f) for f in files if not f.exists()]
                if missing:
                    raise DataUnavailable(f"the mirror {mpath} lacks {missing}; see ../shared/data/README.md")
                builder = lambda: _records_cgcnn_mirror(mpath)  # noqa: E731
            else:
                found = _find_megnet_file(mpath, raw_dir) if name == "megnet" else None
                if found is None:
                    raise DataUnavailable(
                        f"the mirror {mpath} holds the CGCNN dataset only, not {name!r}. "
                        + (
                            _megnet_message(raw_dir)
                            if name == "megnet"
                            else "Give a snapshot file (mirror=path/to/file.jsonl.xz) instead."
                        )
                    )
                files = [found]
                src = "figshare"
                builder = lambda: _records_megnet(found)  # noqa: E731
        else:
            files = [mpath]
            builder = lambda: _records_snapshot(mpath)  # noqa: E731
        return _cached(src, files, builder, cache, cache_dir, str(mpath), verbose, **opts)

    if src == "folder":
        folder = Path(path) if path is not None else None
        if folder is None or not (folder / "id_prop.csv").exists():
            raise DataUnavailable(
                f"source='folder' needs path= a CGCNN-format folder with id_prop.csv "
                f"(id,target per line, no header) and <id>.cif files; got {path}"
            )
        if not target:
            raise ValueError(
                "source='folder' needs target= the property name of id_prop.csv's "
                f"second column (e.g. one of {list(TARGETS)})"
            )
        files = [folder / "id_prop.csv", *sorted(folder.glob("*.cif"))]
        return _cached(
            src,
            files,
            lambda: _records_folder(folder, target),
            cache,
            cache_dir,
            str(folder),
            verbose,
            params={"target": target},
            **opts,
        )

    if src == "figshare":
        found = (
            Path(path)
            if path is not None
            else _find_megnet_file(Path(mirror) if mirror is not None else None, raw_dir)
        )
        if found is None or not found.exists():
            if not download:
                raise DataUnavailable(_megnet_message(raw_dir))
            found = _download(
                MEGNET_URL,
                raw_dir / "megnet" / (MEGNET_FILE + ".zip"),
                progress,
                what="the MEGNet paper's dataset",
                help_=_megnet_message(raw_dir),
            )
        return _cached(
            src, [found], lambda: _records_megnet(found), cache, cache_dir, str(found), verbose, **opts
        )

    if src == "mp":
        if not key:
            raise DataUnavailable(
                "source='mp' needs a Materials Project API key: get one at "
                + MP_KEY_URL
                + " and `export MP_API_KEY=<your key>` (or pass api_key=). Without network, use the "
                "offline mirror: load_dataset(name, source='mirror', mirror='../shared/data')."
            )
        id_list = list(ids) if ids is not None else _dataset_ids(name, mirror, path, raw_dir, download)
        chunk_files = _fetch_mp(id_list, key, raw_dir / "mp" / name, chunk_size, progress)
        return _cached(
            src,
            chunk_files,
            lambda: _records_mp(chunk_files, id_list),
            cache,
            cache_dir,
            f"MP API, {len(id_list):,} ids",
            verbose,
            **opts,
        )

    if src == "optimade":
        if not optimade_filter:
            raise ValueError(
                "source='optimade' needs optimade_filter=, e.g. "
                '\'elements HAS ALL "Li","O" AND nelements=3\''
            )
        if isinstance(providers, str):
            providers = (providers,)
        unknown = [p for p in providers if not isinstance(providers, Mapping) and p not in OPTIMADE_PROVIDERS]
        if unknown:
            raise ValueError(
                f"unknown OPTIMADE provider(s) {unknown}: known {list(OPTIMADE_PROVIDERS)}, "
                "or pass providers={name: base_url}"
            )
        prov = (
            dict(providers)
            if isinstance(providers, Mapping)
            else {p: OPTIMADE_PROVIDERS[p] for p in providers}
        )
        page_files: dict[str, list[Path]] = {}
        for pname, base in prov.items():
            page_files[pname] = _fetch_optimade(
                pname, base, optimade_filter, raw_dir / "optimade", max_entries, progress
            )
        files = [f for fs in page_files.values() for f in fs]
        return _cached(
            src,
            files,
            lambda: _records_optimade(page_files, max_entries),
            cache,
            cache_dir,
            f"OPTIMADE {', '.join(prov)}: {optimade_filter}",
            verbose,
            params={"filter": optimade_filter, "max_entries": max_entries},
            **opts,
        )
    raise AssertionError(src)  # pragma: no cover


def _resolve_source(name: str, source: str, mirror, path, key, raw_dir: Path) -> str:
    """The concrete source that "auto" stands for here (see load_dataset)."""
    if source != "auto":
        return source
    if path is not None:
        p = Path(path)
        if p.is_dir():
            return "folder"
        return "figshare" if name == "megnet" else "mirror"
    if name == "megnet":
        if mirror is not None and Path(mirror).is_file():
            return "mirror"
        return "figshare"  # local copy if any, else a download, else a clear error
    if mirror is not None or default_mirror() is not None:
        return "mirror"
    if key:
        return "mp"
    raise DataUnavailable(_no_data_message(name))


def _no_data_message(name: str) -> str:
    return (
        f"no data source for {name!r}: no mirror was given or found and MP_API_KEY is not set. Either\n"
        f"  - use the offline mirror: load_dataset({name!r}, mirror='/path/to/shared/data') or "
        "`export COMPENDIUM_MIRROR=/path/to/shared/data` (the folder with mp_cgcnn_2020.jsonl.xz; "
        "the project looks at ../shared/data by default), or\n"
        f"  - fetch from the Materials Project: get an API key at {MP_KEY_URL}, "
        "`export MP_API_KEY=<your key>`, and run again (downloads resume), or\n"
        "  - give your own data: a CGCNN folder (source='folder', path=..., target=...) or a "
        "snapshot file (source='mirror', mirror='file.jsonl.xz')."
    )


def _megnet_message(raw_dir: Path) -> str:
    return (
        f"the MEGNet dataset (MP 2018.6.1, 69,239 materials) is not mirrored and needs its public file: "
        f"download {MEGNET_URL} (mp.2018.6.1.json.zip, from {MEGNET_PAGE}) and put it at "
        f"{raw_dir / 'megnet' / (MEGNET_FILE + '.zip')} (or unzip it to {raw_dir / 'megnet' / MEGNET_FILE}), "
        "or pass path=; load_dataset('megnet') downloads it itself when the network is reachable."
    )


def _find_megnet_file(mirror: Path | None, raw_dir: Path) -> Path | None:
    dirs = [raw_dir / "megnet"] + ([mirror] if mirror is not None and Path(mirror).is_dir() else [])
    for d in dirs:
        for fname in (MEGNET_FILE, MEGNET_FILE + ".zip", MEGNET_FILE + ".gz", MEGNET_FILE + ".xz"):
            if (Path(d) / fname).exists():
                return Path(d) / fname
    return None


# ----------------------------------------------------------------------------------------------
# the processed cache
# ----------------------------------------------------------------------------------------------


def _file_fingerprint(files: Sequence[Path]) -> list[list]:
    out = []
    for f in files:
        st = Path(f).stat()
        out.append([Path(f).name, st.st_size, st.st_mtime_ns])
    return out


def _slug(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", s).strip("-") or "data"


def _cached(
    src: str,
    files: Sequence[Path],
    builder,
    cache: bool,
    cache_dir: Path,
    origin: str,
    verbose: bool,
    *,
    name: str,
    target: str | None,
    n_jobs: int | None,
    progress: bool,
    params: dict | None = None,
) -> pd.DataFrame:
    """Read the processed table for these inputs from the cache, or build it (and cache it)."""
    key_obj = {
        "format": FORMAT_VERSION,
        "name": name,
        "source": src,
        "params": params or {},
        "inputs": _file_fingerprint(files),
    }
    key = hashlib.sha256(json.dumps(key_obj, sort_keys=True).encode()).hexdigest()[:16]
    stem = f"{_slug(name)}-{src}" + (f"-{_slug(target)}" if target else "")
    out = cache_dir / f"{stem}-{key}.parquet"
    if cache and out.exists():
        try:
            df = _read_parquet(out)
            df.attrs["origin"] = origin
            if verbose:
                print(summary(df) + f"\n  (cached {_rel(out)})")
            return df
        except Exception as exc:  # noqa: BLE001 - a corrupt cache is rebuilt, not fatal
            warnings.warn(f"rebuilding unreadable cache {out}: {exc}", stacklevel=2)
    t0 = time.perf_counter()
    records, meta = builder()
    df, rejected = _build_table(records, meta, n_jobs=n_jobs, progress=progress)
    drops = dict(
        Counter(
            f"{t}: {r}" if t else r for t, r in zip(rejected["target"], rejected["reason"], strict=True)
        ).most_common()
    )
    attrs = {
        "name": name,
        "source": src,
        "origin": origin,
        "notes": meta.get("notes", []),
        "drops": drops,
        "build_seconds": round(time.perf_counter() - t0, 1),
    }
    if cache:
        cache_dir.mkdir(parents=True, exist_ok=True)
        _write_parquet(df, attrs, rejected, out)
        for old in cache_dir.glob(f"{stem}-*.parquet"):
            if old != out and re.fullmatch(re.escape(stem) + r"-[0-9a-f]{16}\.parquet", old.name):
                old.unlink(missing_ok=True)
        df = _read_parquet(out)  # the first load returns exactly what later loads return
        df.attrs["origin"] = origin
    else:
        df.attrs.update(attrs)
        df.attrs["rejected"] = rejected
        df.attrs["content_hash"] = content_hash(df)
    if verbose:
        print(
            summary(df)
            + f"\n  (built in {attrs['build_seconds']} s"
            + (f", cached {_rel(out)})" if cache else ")")
        )
    return df


def _short(exc: BaseException) -> str:
    """An exception as one short line (network errors nest long reprs)."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:160]}{'...' if len(text) > 160 else ''}"


def _rel(p: Path) -> str:
    try:
        return str(p.relative_to(Path.cwd()))
    except ValueError:
        return str(p)


def _write_parquet(df: pd.DataFrame, attrs: dict, rejected: pd.DataFrame, out: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    flat = crystals_to_flat(list(df["structure"]))
    off = flat["offsets"]
    cols = {
        "material_id": pa.array(df["material_id"].astype(str).tolist(), pa.string()),
        "lattice": pa.FixedSizeListArray.from_arrays(pa.array(flat["lattices"].reshape(-1)), 9),
        "frac_coords": pa.ListArray.from_arrays(
            pa.array(off * 3, pa.int32()), pa.array(flat["frac_coords"].reshape(-1))
        ),
        "numbers": pa.ListArray.from_arrays(
            pa.array(off, pa.int32()), pa.array(flat["numbers"].astype(np.int16))
        ),
    }
    for c in df.columns:
        if c in ("material_id", "structure"):
            continue
        if c in TARGETS or pd.api.types.is_float_dtype(df[c]):
            cols[c] = pa.array(df[c].to_numpy(dtype=np.float64, na_value=np.nan), pa.float64())
        else:
            cols[c] = pa.array(df[c].astype(str).tolist(), pa.string())
    meta = dict(attrs, format=FORMAT_VERSION, rejected=rejected.to_dict("list"))
    table = pa.table(cols).replace_schema_metadata({"lib.data": json.dumps(meta)})
    with atomic_path(out) as tmp:
        pq.write_table(table, tmp, compression="zstd")


def _read_parquet(path: Path) -> pd.DataFrame:
    """The cached table, Crystals rebuilt vectorised from the arrow list offsets."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    meta = json.loads(table.schema.metadata[b"lib.data"])
    if meta.get("format") != FORMAT_VERSION:
        raise ValueError(f"format {meta.get('format')} != {FORMAT_VERSION}")

    def flat(col: str) -> tuple[np.ndarray, np.ndarray]:
        arr = table.column(col).combine_chunks()
        lengths = pc.list_value_length(arr).to_numpy(zero_copy_only=False)
        offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        return arr.flatten().to_numpy(zero_copy_only=False), offsets

    lat = table.column("lattice").combine_chunks().flatten().to_numpy(zero_copy_only=False)
    frac, _ = flat("frac_coords")
    nums, offsets = flat("numbers")
    crystals = crystals_from_flat(lat.reshape(-1, 3, 3), frac.reshape(-1, 3), nums, offsets)
    rest = [c for c in table.column_names if c not in ("lattice", "frac_coords", "numbers")]
    df = table.select(rest).to_pandas()
    df.insert(1, "structure", pd.Series(crystals, index=df.index, dtype=object))
    df.attrs = {k: v for k, v in meta.items() if k not in ("rejected", "format")}
    df.attrs["rejected"] = RejectedTable(pd.DataFrame(meta["rejected"], columns=list(_REJECTED_COLUMNS)))
    df.attrs["content_hash"] = content_hash(df)
    df.attrs["cache_path"] = str(path)
    return df


# ----------------------------------------------------------------------------------------------
# building the standard table from source records
# ----------------------------------------------------------------------------------------------
#
# Each source turns its input into "records": a DataFrame with material_id, one structure column
# (cif: CIF text, pmg: pymatgen Structure dict, optimade: OPTIMADE attributes, crystal: exact arrays),
# the provider's property fields, and optionally source/retrieved; plus meta = {"provider": name or
# a per-row Series, "source": label or Series, "notes": [...], "rejected": [...], "expect": [...]}.


def _build_table(
    records: pd.DataFrame, meta: dict, *, n_jobs: int | None, progress: bool
) -> tuple[pd.DataFrame, RejectedTable]:
    """records -> (standard table, rejected rows); every left-out row or value gets a reason."""
    rejected: list[tuple] = list(meta.get("rejected", []))
    records = records.reset_index(drop=True)
    ids = records["material_id"].astype(str)
    # duplicated ids: keep the first
    dup = ids.duplicated(keep="first").to_numpy()
    for mid in ids[dup]:
        rejected.append((mid, "", "duplicated id", "the same material_id appears again; kept the first"))
    keep = ~dup
    # missing ids
    blank = (ids.str.strip() == "") | records["material_id"].isna()
    for k in np.flatnonzero(blank.to_numpy() & keep):
        rejected.append((f"row {k}", "", "no material id", "empty material_id"))
    keep &= ~blank.to_numpy()

    # structures
    kinds = [k for k in ("crystal", "cif", "pmg", "optimade") if k in records.columns]
    if not kinds:
        raise ValueError("records without a structure column")
    items = []
    for row in records[kinds].itertuples(index=False):
        for kind, val in zip(kinds, row, strict=True):
            if val is not None and not (isinstance(val, float) and math.isnan(val)):
                items.append((kind, val))
                break
        else:
            items.append(("none", None))
    results = _parse_all([it for it, k in zip(items, keep, strict=True) if k], n_jobs, progress)
    crystals: list[Crystal | None] = [None] * len(records)
    for idx, res in zip(np.flatnonzero(keep), results, strict=True):
        if isinstance(res, Crystal):
            crystals[idx] = res
        else:
            reason, detail = res
            rejected.append((ids[idx], "", reason, detail))
            keep[idx] = False

    # targets, through the mapping table (plus a source's own mappings, e.g. a folder's one column)
    maps = PROPERTY_MAP + tuple(meta.get("mappings", ()))
    providers = meta["provider"]
    prov = (
        np.asarray(providers, dtype=object)
        if isinstance(providers, pd.Series | list)
        else np.full(len(records), providers, dtype=object)
    )
    values: dict[str, np.ndarray] = {c: np.full(len(records), np.nan) for c in TARGETS}
    extras: dict[str, np.ndarray] = {}
    for p in dict.fromkeys(prov.tolist()):
        rows = prov == p
        sub = records[rows]
        sub_ids = ids[rows].to_numpy()
        sub_keep = keep[rows]
        for m in (m for m in maps if m.provider == p):
            if m.field.split(".")[0] not in sub.columns:
                continue
            v = _extract(sub, m)
            if m.transform == "log10":
                bad = np.isfinite(v) & (v <= 0)
                for mid, raw in zip(sub_ids[bad & sub_keep], v[bad & sub_keep] / m.factor, strict=True):
                    rejected.append((mid, m.column, "non-positive modulus", f"{m.field} = {raw:g} {m.unit}"))
                with np.errstate(divide="ignore", invalid="ignore"):
                    v = np.where(bad, np.nan, np.log10(np.where(bad, 1.0, v)))
            col = (
                values[m.column]
                if m.column in values
                else extras.setdefault(m.column, np.full(len(records), np.nan))
            )
            col[rows] = np.where(np.isnan(col[rows]), v, col[rows])  # the first mapping with a value wins
    # the generic rules, whatever the provider
    for col, v in values.items():
        inf = np.isinf(v)
        for mid in ids[inf & keep]:
            rejected.append((mid, col, "not finite", "infinite value"))
        v[inf] = np.nan
    pr = values["poisson_ratio"]
    out = np.isfinite(pr) & ((pr < POISSON_RANGE[0]) | (pr > POISSON_RANGE[1]))
    for mid, x in zip(ids[out & keep], pr[out & keep], strict=True):
        rejected.append((mid, "poisson_ratio", "outside [0, 0.5]", f"poisson_ratio = {x:g}"))
    pr[out] = np.nan
    # total energies of another functional (MP 2024 mixes PBE and r2SCAN): checked against a formation energy
    # of the same release, named by the source (meta["energy_reference"], a records column)
    ref_col = meta.get("energy_reference")
    if ref_col and ref_col in records.columns:
        e = values["energy_per_atom"]
        ef = pd.to_numeric(records[ref_col], errors="coerce").to_numpy(dtype=float)
        use = keep & np.isfinite(e) & np.isfinite(ef)
        nums = [c.numbers if c is not None else None for c in crystals]
        scale = energy_scale(nums, np.where(use, e, np.nan), np.where(use, ef, np.nan))
        off = use & ~scale.on_scale
        for mid, res, und in zip(ids[off], scale.residual[off], scale.undetermined[off], strict=True):
            if und:
                rejected.append((mid, "energy_per_atom", "energy scale undetermined",
                                 "an element too rare among the PBE energies to fit its reference"))
            else:
                rejected.append((mid, "energy_per_atom", "not on the PBE energy scale",
                                 f"E - E_f - sum x mu = {res:+.2f} eV/atom (an r2SCAN energy?)"))
        e[off] = np.nan
        meta.setdefault("notes", []).append("energy_per_atom: " + scale.note)
    # a row with no target at all has nothing to model (e.g. a NaN in a folder's id_prop.csv)
    expect = [c for c in (meta.get("expect") or list(TARGETS)) if c in values]
    empty = np.all([np.isnan(values[c]) for c in expect], axis=0)
    for e in extras.values():
        empty &= np.isnan(e)
    for mid in ids[empty & keep]:
        rejected.append(
            (
                mid,
                expect[0] if len(expect) == 1 else "",
                "missing target value",
                "no value for " + ("the target" if len(expect) == 1 else "any target"),
            )
        )
    keep &= ~empty

    today = _dt.date.today().isoformat()
    src, ret = meta.get("source", ""), meta.get("retrieved", today)
    src = (
        np.asarray(src, dtype=object)
        if isinstance(src, pd.Series | list)
        else np.full(len(records), src, dtype=object)
    )
    if "source" in records.columns:
        given = records["source"].to_numpy(dtype=object)
        src = np.where(pd.isna(given), src, given)
    retrieved = np.full(len(records), ret, dtype=object)
    if "retrieved" in records.columns:
        given = records["retrieved"].to_numpy(dtype=object)
        retrieved = np.where(pd.isna(given) | (given == ""), retrieved, given)
    table = pd.DataFrame({"material_id": ids, "structure": pd.Series(crystals, dtype=object)})
    for col in TARGETS:
        table[col] = values[col]
    for col, v in extras.items():
        table[col] = v
    table["source"] = [str(x) for x in src]
    table["retrieved"] = [str(x) for x in retrieved]
    table = table[keep].reset_index(drop=True)
    return table, _rejected_frame(rejected)


def _extract(sub: pd.DataFrame, m: PropertyMapping) -> np.ndarray:
    """One provider field as float64 (NaN where absent), times the mapping's factor."""
    parts = m.field.split(".")
    col = sub[parts[0]]
    if len(parts) == 1 and pd.api.types.is_numeric_dtype(col.dtype):
        return col.to_numpy(dtype=np.float64, na_value=np.nan) * m.factor
    companion = None
    if m.pick == "vrh" and m.field.endswith("_value"):
        cname = m.field[: -len("_value")] + "_type"
        companion = sub[cname] if cname in sub.columns else None
    out = np.full(len(sub), np.nan)
    for k, val in enumerate(col.tolist()):
        for key in parts[1:]:
            val = val.get(key) if isinstance(val, Mapping) else None
        if isinstance(val, list | tuple | np.ndarray):
            vals = [x for x in val if x is not None]
            if not vals:
                continue
            if m.pick == "min":
                val = min(vals)
            elif m.pick == "vrh" and companion is not None and isinstance(companion.iloc[k], list | tuple):
                types = list(companion.iloc[k])
                val = (
                    val[types.index("voigt_reuss_hill_average")]
                    if "voigt_reuss_hill_average" in types
                    else vals[0]
                )
            else:
                val = vals[0]
        try:
            out[k] = float(val) * m.factor if val is not None else np.nan
        except (TypeError, ValueError):
            out[k] = np.nan
    return out


def _parse_one(item: tuple[str, object]) -> Crystal | tuple[str, str]:
    """One structure input -> Crystal, or (reason, detail)."""
    kind, val = item
    try:
        if kind == "cif":
            return parse_cif(val)
        if kind == "crystal":
            return Crystal(val["lattice"], val["frac_coords"], val["numbers"])
        if kind == "pmg":
            if hasattr(val, "as_dict"):
                return Crystal.from_structure(val)
            return parse_structure_dict(val)
        if kind == "optimade":
            return _crystal_from_optimade(val)
        return ("no structure", "the source gives no structure for this material")
    except StructureError as exc:
        return (exc.reason, str(exc))
    except Exception as exc:  # noqa: BLE001 - one bad structure must not stop the dataset
        return ("bad structure", f"{type(exc).__name__}: {exc}")


def _parse_chunk(items: list[tuple[str, object]]) -> list[Crystal | tuple[str, str]]:
    return [_parse_one(it) for it in items]


def _parse_all(
    items: list[tuple[str, object]], n_jobs: int | None, progress: bool
) -> list[Crystal | tuple[str, str]]:
    """Parse many structures: a tqdm bar, and a process pool on both cores for big inputs."""

    n = len(items)
    n_jobs = n_jobs if n_jobs is not None else min(2, os.cpu_count() or 1)
    chunk = 500
    chunks = [items[i : i + chunk] for i in range(0, n, chunk)]
    out: list = []
    bar = tqdm(
        total=n,
        desc="parsing structures",
        unit="structure",
        disable=not progress or n < 1000,
        mininterval=1.0,
    )
    if n_jobs > 1 and n >= 4000:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else None
        with ProcessPoolExecutor(max_workers=n_jobs, mp_context=ctx) as pool:
            for res in pool.map(_parse_chunk, chunks):
                out.extend(res)
                bar.update(len(res))
    else:
        for ch in chunks:
            out.extend(_parse_chunk(ch))
            bar.update(len(ch))
    bar.close()
    return out


def _crystal_from_optimade(attrs: Mapping) -> Crystal:
    """An OPTIMADE structure (lattice_vectors, cartesian_site_positions, species_at_sites, species)."""
    lat, pos, sites = (
        attrs.get(k) for k in ("lattice_vectors", "cartesian_site_positions", "species_at_sites")
    )
    if lat is None or pos is None or sites is None:
        raise StructureError(
            "no structure", "lattice_vectors, cartesian_site_positions or species_at_sites missing"
        )
    dims = attrs.get("dimension_types")
    if dims is not None and list(dims) != [1, 1, 1]:
        raise StructureError("not periodic", f"dimension_types = {list(dims)}; only 3D crystals are used")
    species = {s["name"]: s for s in (attrs.get("species") or [])}
    from lib.structures import _element_table

    table = _element_table()
    numbers = []
    for name in sites:
        sp = species.get(name, {"chemical_symbols": [name], "concentration": [1.0]})
        syms, conc = sp.get("chemical_symbols", []), sp.get("concentration", [1.0])
        if len(syms) != 1 or abs(float(conc[0]) - 1.0) > 1e-6 or syms[0] in ("vacancy", "X"):
            raise StructureError("partial occupancy", f"species {name!r} = {syms} with concentrations {conc}")
        if syms[0] not in table:
            raise StructureError("unknown element", f"unknown chemical symbol {syms[0]!r}")
        numbers.append(table[syms[0]][0])
    lattice = np.asarray(lat, dtype=np.float64)
    cart = np.asarray(pos, dtype=np.float64).reshape(-1, 3)
    if lattice.shape != (3, 3) or not np.all(np.isfinite(lattice)) or abs(np.linalg.det(lattice)) < 1e-8:
        raise StructureError("bad structure", "lattice_vectors is not a 3x3 non-singular matrix")
    frac = np.linalg.solve(lattice.T, cart.T).T
    return Crystal(lattice, frac, numbers)


# ----------------------------------------------------------------------------------------------
# sources -> records
# ----------------------------------------------------------------------------------------------


def _open_text(path: Path, mode: str = "rt", compress_like: Path | None = None):
    """Open plain, .xz or .gz text files (chosen by the suffix of ``compress_like`` or ``path``)."""
    suffix = Path(compress_like or path).suffix
    if suffix == ".xz":
        return lzma.open(path, mode, encoding="utf-8")
    if suffix == ".gz":
        return gzip.open(path, mode, encoding="utf-8")
    return open(path, mode.replace("t", ""), encoding="utf-8")


def _read_jsonl(path: Path) -> list[dict]:
    """One JSON object per line (plain, .xz or .gz); a clear error naming the line if one is broken."""
    out = []
    with _open_text(path) as fh:
        for k, line in enumerate(fh, 1):
            if line.strip():
                try:
                    out.append(_loads(line))
                except ValueError as exc:
                    raise ValueError(f"{path}: line {k} is not valid JSON ({exc})") from None
    return out


def _records_cgcnn_mirror(mdir: Path) -> tuple[pd.DataFrame, dict]:
    """The CGCNN dataset from the mirror: main file + elastic file (union) + 2024 energies."""
    main = pd.DataFrame(_read_jsonl(mdir / MIRROR_FILES["main"]))
    el = pd.DataFrame(_read_jsonl(mdir / MIRROR_FILES["elastic"]))
    en = pd.read_csv(mdir / MIRROR_FILES["energy"],
                     usecols=["material_id", "energy_per_atom", "formation_energy_per_atom_2024"])
    en = en.drop_duplicates("material_id")
    main = main[["material_id", "cif", "formation_energy_per_atom", "band_gap", "efermi"]]
    main = main.merge(en, on="material_id", how="left")  # energy joined to the main file's ids only
    el_cols = ["material_id", "K_VRH", "G_VRH", "poisson_ratio"]
    main_ids = set(main["material_id"])
    overlap = el[el["material_id"].isin(main_ids)].merge(
        main[["material_id", "cif"]], on="material_id", suffixes=("", "_main")
    )
    n_diff = int((overlap["cif"] != overlap["cif_main"]).sum())
    main = main.merge(el[el_cols], on="material_id", how="left")
    el_only = el[~el["material_id"].isin(main_ids)][["material_id", "cif", "K_VRH", "G_VRH", "poisson_ratio"]]
    records = pd.concat([main, el_only], ignore_index=True)
    source = [f"mirror:{MIRROR_FILES['main'].split('.')[0]}"] * len(main) + [
        f"mirror:{MIRROR_FILES['elastic'].split('.')[0]}"
    ] * len(el_only)
    notes = [
        f"{len(main):,} materials from {MIRROR_FILES['main']}, {len(el):,} from {MIRROR_FILES['elastic']} "
        f"({len(el_only)} of them not in the main file): {len(records):,} in all",
        f"energy_per_atom from {MIRROR_FILES['energy']} (MP 2024) for "
        f"{int(main['energy_per_atom'].notna().sum()):,} of the main file's materials",
        f"elastic entries whose CIF differs from the main file's (main file's kept): {n_diff}",
    ]
    return records, {"provider": "mirror", "source": source, "notes": notes,
                     "energy_reference": "formation_energy_per_atom_2024"}


def _records_snapshot(path: Path) -> tuple[pd.DataFrame, dict]:
    """A snapshot file (export_snapshot, or any JSON Lines file with material_id and cif)."""
    rows = _read_jsonl(path)
    records = pd.DataFrame(rows)
    if "material_id" not in records.columns:
        raise ValueError(f"{path}: no material_id key; not a snapshot in the project's format")
    return records, {
        "provider": "mirror",
        "source": f"snapshot:{path.name}",
        "notes": [f"{len(records):,} records from {path}"],
    }


def _records_folder(folder: Path, target: str) -> tuple[pd.DataFrame, dict]:
    """A CGCNN-format folder: id_prop.csv (id,value; no header) and <id>.cif files."""
    ids, vals, rejected = [], [], []
    with open(folder / "id_prop.csv", encoding="utf-8") as fh:
        for k, line in enumerate(fh, 1):
            if not line.strip():
                continue
            parts = [p.strip() for p in line.split(",")]
            try:
                value = float(parts[1]) if len(parts) > 1 and parts[1] != "" else np.nan
            except ValueError:
                rejected.append((parts[0], target, "bad target value", f"id_prop.csv line {k}: {parts[1]!r}"))
                continue
            ids.append(parts[0])
            vals.append(value)
    cifs = []
    for mid in ids:
        f = folder / f"{mid}.cif"
        cifs.append(f.read_text(encoding="utf-8", errors="replace") if f.exists() else None)
    missing = [mid for mid, c in zip(ids, cifs, strict=True) if c is None]
    records = pd.DataFrame({"material_id": ids, "cif": cifs, target: vals})
    provider = "folder"
    # the folder's one column is taken as it is, in the unit of the standard column of that name
    mapping = PropertyMapping(provider, target, target, TARGETS[target].unit if target in TARGETS else "")
    notes = [f"{len(ids):,} ids in {folder / 'id_prop.csv'}; {len(missing)} without a CIF file"]
    return records, {
        "provider": provider,
        "source": f"folder:{folder.name}",
        "notes": notes,
        "rejected": rejected,
        "expect": [target],
        "mappings": [mapping],
    }


def _records_megnet(path: Path) -> tuple[pd.DataFrame, dict]:
    """The MEGNet paper's mp.2018.6.1.json (a list of {material_id, structure (CIF), targets})."""
    if path.suffix == ".zip":
        with zipfile.ZipFile(path) as zf:
            member = next((n for n in zf.namelist() if n.endswith(".json")), None)
            if member is None:
                raise DataUnavailable(f"{path} holds no .json file; " + _megnet_message(path.parent.parent))
            rows = json.loads(zf.read(member))
    else:
        with _open_text(path) as fh:
            rows = json.load(fh)
    records = pd.DataFrame(rows).rename(columns={"structure": "cif"})
    notes = [f"{len(records):,} materials from {path.name} (MEGNet paper, MP 2018.6.1)"]
    for col in ("K_VRH", "G_VRH"):
        if col in records.columns:
            v = pd.to_numeric(records[col], errors="coerce")
            med = float(np.nanmedian(v)) if v.notna().any() else float("nan")
            gpa = med > 4  # log10(GPa) of real moduli stays below ~3: these are GPa
            if gpa:
                records = records.drop(columns=[col])
                notes.append(
                    f"{col} looked like GPa (median {med:.3g}), not log10(GPa): logged (mapping {col}_GPa)"
                )
            records[col + "_GPa" if gpa else col] = v
    return records, {
        "provider": "megnet",
        "source": f"figshare:{MEGNET_FILE}",
        "notes": notes,
        "expect": list(DATASET_TARGETS["megnet"]),
    }


# --- Materials Project -------------------------------------------------------------------------


def _dataset_ids(name: str, mirror, path, raw_dir: Path, download: bool) -> list[str]:
    """The MP ids of a paper's dataset (cgcnn: mp-ids-46744.csv; megnet: the ids in its JSON file)."""
    if name == "cgcnn":
        cands = [Path(mirror) / MIRROR_FILES["ids"]] if mirror is not None and Path(mirror).is_dir() else []
        dm = default_mirror()
        if dm is not None:
            cands.append(dm / MIRROR_FILES["ids"])
        cands.append(raw_dir / MIRROR_FILES["ids"])
        for c in cands:
            if c.exists():
                return _read_id_list(c)
        if download:
            return _read_id_list(
                _download(
                    CGCNN_IDS_URL, raw_dir / MIRROR_FILES["ids"], False, what="the CGCNN id list", help_=""
                )
            )
        raise DataUnavailable(
            f"the CGCNN id list is not here: download {CGCNN_IDS_URL} to {raw_dir / MIRROR_FILES['ids']}"
        )
    if name == "megnet":
        found = Path(path) if path is not None else _find_megnet_file(None, raw_dir)
        if found is None or not found.exists():
            raise DataUnavailable("the MEGNet id list comes from its JSON file: " + _megnet_message(raw_dir))
        records, _ = _records_megnet(found)
        return records["material_id"].astype(str).tolist()
    raise ValueError(f"source='mp' knows the ids of 'cgcnn' and 'megnet'; for {name!r} pass ids=[...]")


def _read_id_list(path: Path) -> list[str]:
    with open(path, encoding="utf-8") as fh:
        return [ln.split(",")[0].strip() for ln in fh if ln.strip()]


def _mp_rester(api_key: str):
    """mp-api's MPRester (raw dicts, no progress bars); a clear DataUnavailable if it cannot start."""
    try:
        from mp_api.client import MPRester
    except ImportError as exc:
        raise DataUnavailable(f"mp-api is not installed ({exc}); `pip install mp-api`") from None
    try:
        return MPRester(api_key, mute_progress_bars=True, use_document_model=False)
    except Exception as exc:  # noqa: BLE001 - network, auth and server errors all end here
        raise DataUnavailable(
            f"cannot reach the Materials Project API ({_short(exc)}). Check the network and "
            "MP_API_KEY, or use the offline mirror (source='mirror')"
        ) from None


def _doc_to_dict(doc) -> dict:
    """A summary document (dict or emmet model) as JSON-ready dict with a pymatgen structure dict."""
    d = doc.model_dump() if hasattr(doc, "model_dump") else dict(doc)
    out = {}
    for k in MP_FIELDS:
        v = d.get(k)
        if k == "structure" and v is not None and hasattr(v, "as_dict"):
            v = v.as_dict()
        elif k == "material_id" and v is not None:
            v = str(v)
        out[k] = v
    return out


def _fetch_mp(ids: list[str], api_key: str, out_dir: Path, chunk_size: int, progress: bool) -> list[Path]:
    """Download summary documents in chunks of ids; chunks already on disk are never fetched again."""

    chunks = [ids[i : i + chunk_size] for i in range(0, len(ids), chunk_size)]
    files = []
    for k, ch in enumerate(chunks):
        digest = hashlib.sha256(("\n".join(ch) + "|" + ",".join(MP_FIELDS)).encode()).hexdigest()[:10]
        files.append(out_dir / f"chunk-{k:05d}-{digest}.json.gz")
    todo = [k for k, f in enumerate(files) if not f.exists()]
    if not todo:
        return files
    out_dir.mkdir(parents=True, exist_ok=True)
    rester = _mp_rester(api_key)
    bar = tqdm(
        total=len(chunks),
        initial=len(chunks) - len(todo),
        desc="MP summary chunks",
        disable=not progress,
        unit="chunk",
    )
    try:
        with rester as mpr:
            for k in todo:
                try:
                    docs = mpr.materials.summary.search(material_ids=chunks[k], fields=list(MP_FIELDS))
                except Exception as exc:  # noqa: BLE001 - say where it stopped; keep what is saved
                    done = len(chunks) - len(todo) + todo.index(k)
                    raise FetchError(
                        f"the Materials Project fetch stopped at chunk {k + 1}/{len(chunks)} "
                        f"({chunks[k][0]} ... {chunks[k][-1]}): {type(exc).__name__}: {exc}. "
                        f"{done} chunk(s) are saved under {out_dir}; run the same call again to resume "
                        "(saved chunks are not downloaded again)."
                    ) from exc
                payload = {
                    "ids": chunks[k],
                    "fields": MP_FIELDS,
                    "retrieved": _dt.date.today().isoformat(),
                    "docs": [_doc_to_dict(d) for d in docs],
                }
                with atomic_path(files[k]) as tmp, gzip.open(tmp, "wt", encoding="utf-8") as fh:
                    json.dump(payload, fh, default=str)
                bar.update(1)
    finally:
        bar.close()
    return files


def _records_mp(files: list[Path], ids: list[str]) -> tuple[pd.DataFrame, dict]:
    rows, retrieved, asked = [], [], []
    for f in files:
        with gzip.open(f, "rt", encoding="utf-8") as fh:
            payload = json.load(fh)
        asked.extend(payload["ids"])
        for d in payload["docs"]:
            d = dict(d)
            d["pmg"] = d.pop("structure", None)
            rows.append(d)
            retrieved.append(payload.get("retrieved", ""))
    records = pd.DataFrame(rows) if rows else pd.DataFrame(columns=["material_id", "pmg"])
    records["retrieved"] = retrieved
    got = set(records["material_id"].astype(str))
    rejected = [
        (
            mid,
            "",
            "not returned by the MP API",
            "no summary document for this id (deprecated or merged into another material?)",
        )
        for mid in asked
        if mid not in got
    ]
    return records, {
        "provider": "mp",
        "source": "mp-api",
        "rejected": rejected,
        "notes": [f"{len(records):,} summary documents for {len(asked):,} requested ids"],
        "energy_reference": "formation_energy_per_atom",  # the same summary document's
    }


# --- OPTIMADE ----------------------------------------------------------------------------------


def _next_link(payload: Mapping) -> str | None:
    nxt = (payload.get("links") or {}).get("next")
    if isinstance(nxt, Mapping):
        nxt = nxt.get("href")
    return nxt or None


def _fetch_optimade(
    provider: str,
    base_url: str,
    flt: str,
    out_root: Path,
    max_entries: int | None,
    progress: bool,
    page_limit: int = 100,
) -> list[Path]:
    """Follow links.next from {base}/v1/structures, one saved page per request; resumes from disk."""
    import requests

    fields = [*OPTIMADE_STRUCTURE_FIELDS, *(m.field for m in PROPERTY_MAP if m.provider == provider)]
    fields += [
        m.field[: -len("_value")] + "_type"
        for m in PROPERTY_MAP
        if m.provider == provider and m.pick == "vrh"
    ]
    url = base_url.rstrip("/") + "/v1/structures"
    params = {"filter": flt, "response_fields": ",".join(dict.fromkeys(fields)), "page_limit": page_limit}
    digest = hashlib.sha256(json.dumps([url, params, max_entries], sort_keys=True).encode()).hexdigest()[:12]
    out_dir = out_root / provider / digest
    pages = sorted(out_dir.glob("page-*.json")) if out_dir.exists() else []
    n_entries, nxt = 0, None
    for p in pages:
        payload = json.loads(p.read_text(encoding="utf-8"))
        n_entries += len(payload.get("data", []))
        nxt = _next_link(payload)
    if pages and (nxt is None or (max_entries is not None and n_entries >= max_entries)):
        return pages
    out_dir.mkdir(parents=True, exist_ok=True)
    bar = tqdm(desc=f"OPTIMADE {provider}", unit="entry", initial=n_entries, disable=not progress)
    request_url, request_params = (nxt, None) if pages else (url, params)
    try:
        while request_url:
            try:
                resp = requests.get(
                    request_url,
                    params=request_params,
                    timeout=60,
                    headers={"Accept": "application/vnd.api+json, application/json"},
                )
            except requests.RequestException as exc:
                raise DataUnavailable(
                    f"cannot reach the {provider} OPTIMADE endpoint {url} ({_short(exc)}); "
                    f"{len(pages)} page(s) are saved under {out_dir} and a later call resumes"
                ) from None
            if resp.status_code != 200:
                raise FetchError(
                    f"{provider} OPTIMADE answered HTTP {resp.status_code} for {resp.url}: "
                    f"{resp.text[:300]!r}; {len(pages)} page(s) kept under {out_dir}"
                )
            payload = resp.json()
            page = out_dir / f"page-{len(pages):05d}.json"
            page.write_text(json.dumps(payload), encoding="utf-8")
            pages.append(page)
            n_entries += len(payload.get("data", []))
            bar.update(len(payload.get("data", [])))
            request_url, request_params = _next_link(payload), None
            if max_entries is not None and n_entries >= max_entries:
                break
    finally:
        bar.close()
    return pages


def _records_optimade(
    page_files: dict[str, list[Path]], max_entries: int | None
) -> tuple[pd.DataFrame, dict]:
    rows, provider, notes = [], [], []
    for pname, pages in page_files.items():
        entries = []
        for p in pages:
            entries.extend(json.loads(p.read_text(encoding="utf-8")).get("data", []))
        if max_entries is not None:
            entries = entries[:max_entries]
        for e in entries:
            attrs = dict(e.get("attributes") or {})
            row = {k: v for k, v in attrs.items() if k.startswith("_")}
            row["material_id"] = f"{pname}:{e.get('id')}"
            row["optimade"] = attrs
            rows.append(row)
            provider.append(pname)
        notes.append(f"{len(entries):,} entries from {pname}")
    records = pd.DataFrame(rows) if rows else pd.DataFrame(columns=["material_id", "optimade"])
    return records, {"provider": provider, "source": [f"optimade:{p}" for p in provider], "notes": notes}


# --- downloads ---------------------------------------------------------------------------------


def _download(url: str, dest: Path, progress: bool, *, what: str, help_: str) -> Path:
    """Stream a public file to dest (atomically); DataUnavailable with ``help_`` if unreachable."""
    import requests

    try:
        with atomic_path(dest) as tmp, requests.get(url, stream=True, timeout=(10, 120)) as resp:
            resp.raise_for_status()
            total = int(resp.headers.get("content-length") or 0) or None
            with (
                open(tmp, "wb") as fh,
                tqdm(
                    total=total, unit="B", unit_scale=True, desc=f"downloading {what}", disable=not progress
                ) as bar,
            ):
                for block in resp.iter_content(1 << 20):
                    fh.write(block)
                    bar.update(len(block))
    except requests.RequestException as exc:
        raise DataUnavailable(f"cannot download {what} from {url} ({_short(exc)}). {help_}") from None
    return dest


__all__ = [
    "TARGETS",
    "DATASET_TARGETS",
    "PROPERTY_MAP",
    "Target",
    "PropertyMapping",
    "DataUnavailable",
    "FetchError",
    "RejectedTable",
    "load_dataset",
    "export_snapshot",
    "split",
    "target_frame",
    "target_table",
    "content_hash",
    "summary",
    "OPTIMADE_PROVIDERS",
    "MEGNET_URL",
]
