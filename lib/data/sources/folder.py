"""A CGCNN-format folder: ``id_prop.csv`` (``id,value`` per line, no header) and ``<id>.cif`` files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from lib.data.mapping import PropertyMapping
from lib.data.sources.base import DataUnavailable, Job, Request
from lib.data.targets import TARGETS


def plan(req: Request) -> Job:
    """The folder's id_prop.csv and CIFs; ``target`` names the property of id_prop.csv's second column."""
    folder = Path(req.path) if req.path is not None else None
    if folder is None or not (folder / "id_prop.csv").exists():
        raise DataUnavailable(
            f"source='folder' needs path= a CGCNN-format folder with id_prop.csv "
            f"(id,target per line, no header) and <id>.cif files; got {req.path}"
        )
    target = req.target
    if not target:
        raise ValueError(
            "source='folder' needs target= the property name of id_prop.csv's "
            f"second column (e.g. one of {list(TARGETS)})"
        )
    files = [folder / "id_prop.csv", *sorted(folder.glob("*.cif"))]
    return Job("folder", files, lambda: records_folder(folder, target), str(folder), {"target": target})


def records_folder(folder: Path, target: str) -> tuple[pd.DataFrame, dict]:
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
