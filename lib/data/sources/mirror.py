"""The project's JSON Lines mirror (../shared/data: the CGCNN dataset) and snapshot files.

A mirror folder holds the CGCNN dataset's files (:data:`MIRROR_FILES`); a snapshot is one JSON Lines file
(plain, .xz or .gz) with ``material_id``, ``cif`` or ``crystal`` and target columns, as
:func:`export_snapshot` writes it.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
from pymatgen.core import Composition

from lib import paths
from lib.data.sources.base import DataUnavailable, Job, Request, no_data_message
from lib.data.sources.files import open_text, read_jsonl
from lib.data.sources.megnet import find_megnet_file, megnet_message, records_megnet
from lib.data.targets import TARGETS
from lib.paths import atomic_path
from lib.structures import Crystal

MIRROR_FILES = {
    "main": "mp_cgcnn_2020.jsonl.xz",
    "elastic": "mp_elastic_cgcnn_2020.jsonl.xz",
    "energy": "mp_energy_2024.csv",
    "ids": "mp-ids-46744.csv",
}
#: the mirror's structure-only files (no energies), read as datasets of their own name: the end members of MP's
#: insertion-electrode pairs that the CGCNN file lacks, and more MP structures for hulls and prototypes
STRUCTURE_FILES = {
    "electrode_structures": "mp_electrode_structures.jsonl.xz",
    "extra_structures": "mp_structures_extra.jsonl.xz",
}


def plan(req: Request) -> Job:
    """A mirror folder (the CGCNN dataset; for megnet, its JSON file if it lies there) or a snapshot file."""
    given = req.mirror if req.mirror is not None else req.path
    mpath = Path(given) if given is not None else paths.default_mirror()
    name = req.name
    if mpath is None:
        raise DataUnavailable(no_data_message(name))
    if not mpath.exists():
        raise DataUnavailable(f"the mirror {mpath} does not exist. " + no_data_message(name))
    if not mpath.is_dir():
        return Job("mirror", [mpath], lambda: records_snapshot(mpath), str(mpath))
    if name == "cgcnn":
        files = [mpath / f for k, f in MIRROR_FILES.items() if k != "ids"]
        missing = [str(f) for f in files if not f.exists()]
        if missing:
            raise DataUnavailable(f"the mirror {mpath} lacks {missing}; see ../shared/data/README.md")
        return Job("mirror", files, lambda: records_cgcnn_mirror(mpath), str(mpath))
    if name in STRUCTURE_FILES:
        f = mpath / STRUCTURE_FILES[name]
        if not f.exists():
            raise DataUnavailable(f"the mirror {mpath} lacks {f.name}; see ../shared/data/README.md")
        return Job("mirror", [f], lambda: records_structures(f), str(f))
    found = find_megnet_file(mpath, req.raw_dir) if name == "megnet" else None
    if found is None:
        raise DataUnavailable(
            f"the mirror {mpath} holds the CGCNN dataset only, not {name!r}. "
            + (megnet_message(req.raw_dir) if name == "megnet"
               else "Give a snapshot file (mirror=path/to/file.jsonl.xz) instead.")
        )
    return Job("figshare", [found], lambda: records_megnet(found), str(mpath))


def records_cgcnn_mirror(mdir: Path) -> tuple[pd.DataFrame, dict]:
    """The CGCNN dataset from the mirror: main file + elastic file (union) + 2024 energies."""
    bad: list[tuple] = []  # broken lines, reported as rejected rows
    main = pd.DataFrame(read_jsonl(mdir / MIRROR_FILES["main"], bad))
    el = pd.DataFrame(read_jsonl(mdir / MIRROR_FILES["elastic"], bad))
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
    return records, {"provider": "mirror", "source": source, "notes": notes, "rejected": bad,
                     "energy_reference": "formation_energy_per_atom_2024"}


def records_structures(path: Path) -> tuple[pd.DataFrame, dict]:
    """A structure-only file of the mirror (:data:`STRUCTURE_FILES`): ``material_id``, ``cif``, ``formula``
    (reduced), ``source``. The rows have no targets, so none is dropped for lacking one (``structures_only``);
    a structure whose atoms do not make its ``formula`` is refused ("formula mismatch"), like any refused CIF."""
    bad: list[tuple] = []
    records = pd.DataFrame(read_jsonl(path, bad))
    keep = np.ones(len(records), bool)
    if "formula" in records.columns:
        for k, (mid, cif, formula) in enumerate(zip(records["material_id"], records["cif"], records["formula"],
                                                     strict=True)):
            got = _cif_reduced_formula(cif)
            if got is not None and formula and got != Composition(formula).reduced_formula:
                bad.append((str(mid), "", "formula mismatch", f"the CIF's atoms make {got}, the file says {formula}"))
                keep[k] = False
    return records[keep].reset_index(drop=True), {
        "provider": "mirror",
        "source": f"mirror:{path.name.split('.')[0]}",
        "notes": [f"{len(records):,} structures from {path.name} (no energies)"],
        "rejected": bad,
        "structures_only": True,
    }


def _cif_reduced_formula(cif: str) -> str | None:
    """The reduced formula of a pymatgen P1 CIF's ``_chemical_formula_sum`` (None when it has none)."""
    for line in cif.splitlines():
        if line.startswith("_chemical_formula_sum"):
            return Composition(line.split(None, 1)[1].strip().strip("'\"")).reduced_formula
    return None


def records_snapshot(path: Path) -> tuple[pd.DataFrame, dict]:
    """A snapshot file (export_snapshot, or any JSON Lines file with material_id and cif)."""
    bad: list[tuple] = []
    rows = read_jsonl(path, bad)
    records = pd.DataFrame(rows)
    if "material_id" not in records.columns:
        raise ValueError(f"{path}: no material_id key; not a snapshot in the project's format")
    return records, {
        "provider": "mirror",
        "source": f"snapshot:{path.name}",
        "notes": [f"{len(records):,} records from {path}"],
        "rejected": bad,
    }

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
    with atomic_path(path) as tmp, open_text(tmp, "wt", compress_like=path) as fh:
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
