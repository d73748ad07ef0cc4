"""A CGCNN-format folder: ``id_prop.csv`` (``id,value`` per line, no header) and ``<id>.cif`` files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from lib.data.mapping import PropertyMapping
from lib.data.sources.base import DataUnavailable, Job, Request
from lib.data.sources.files import ID_PROP, cif_file, id_problem, read_cif_text, read_id_prop
from lib.data.targets import TARGETS


def plan(req: Request) -> Job:
    """The folder's id_prop.csv and CIFs; ``target`` names the property of id_prop.csv's second column."""
    folder = Path(req.path) if req.path is not None else None
    if folder is None or not (folder / ID_PROP).exists():
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
    files = [folder / ID_PROP, *sorted(folder.glob("*.cif"))]
    return Job("folder", files, lambda: records_folder(folder, target), str(folder), {"target": target})


def records_folder(folder: Path, target: str) -> tuple[pd.DataFrame, dict]:
    """A CGCNN-format folder: id_prop.csv (id,value; no header) and <id>.cif files (read by ``files``).

    Each line must be ``id,value``: a line with another number of fields ("bad line"), an id that is
    not a plain file name ("bad id", e.g. ``../x``), a value that is not a number ("bad target value")
    or an id without ``<id>.cif`` ("no structure") is reported with its line number and left out; an
    empty value is a missing target. Blank lines are skipped. Undecodable bytes become U+FFFD.
    """
    ids, vals, rejected = [], [], []
    for line in read_id_prop(folder):
        parts, where = line.fields, line.where
        label = parts[0] if parts[0] and id_problem(parts[0]) is None else where
        if len(parts) != 2:
            rejected.append((label, target, "bad line",
                             f"{where}: {len(parts)} field(s) in {line.text[:80]!r}, expected 'id,value'"))
            continue
        problem = id_problem(parts[0])
        if problem is not None:
            rejected.append((label if parts[0] else where, target,
                             "no material id" if not parts[0] else "bad id", f"{where}: {problem}"))
            continue
        try:
            value = float(parts[1]) if parts[1] != "" else np.nan
        except ValueError:
            rejected.append((parts[0], target, "bad target value", f"{where}: {parts[1][:80]!r}"))
            continue
        ids.append(parts[0])
        vals.append(value)
    cifs, kept_ids, kept_vals, missing = [], [], [], 0
    seen: set[str] = set()
    for mid, v in zip(ids, vals, strict=True):
        f = cif_file(folder, mid)
        if mid in seen:  # a duplicate: build_table reports it; its file is read once
            text = None
        else:
            try:
                text = read_cif_text(f)
            except OSError as exc:
                missing += 1
                rejected.append((mid, "", "no structure", f"no readable file {f.name} in {folder} "
                                 f"({exc.strerror or type(exc).__name__})"))
                continue
        seen.add(mid)
        kept_ids.append(mid)
        kept_vals.append(v)
        cifs.append(text if text is not None else "")
    records = pd.DataFrame({"material_id": kept_ids, "cif": cifs, target: kept_vals})
    provider = "folder"
    # the folder's one column is taken as it is, in the unit of the standard column of that name
    mapping = PropertyMapping(provider, target, target, TARGETS[target].unit if target in TARGETS else "")
    notes = [f"{len(ids):,} ids in {folder / ID_PROP}; {missing} without a CIF file; "
             f"{len(rejected) - missing} line(s) not usable"]
    return records, {
        "provider": provider,
        "source": f"folder:{folder.name}",
        "notes": notes,
        "rejected": rejected,
        "expect": [target],
        "mappings": [mapping],
    }
