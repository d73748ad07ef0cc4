"""The MEGNet paper's dataset: its public figshare file mp.2018.6.1.json (MP 2018.6.1, 69,239 materials)."""

from __future__ import annotations

import json
import lzma
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from lib.data.sources.base import DataUnavailable, Job, Request, download, short
from lib.data.sources.files import open_text
from lib.data.targets import DATASET_TARGETS

MEGNET_FILE = "mp.2018.6.1.json"
MEGNET_URL = "https://figshare.com/ndownloader/files/15087992"  # mp.2018.6.1.json.zip
MEGNET_PAGE = "https://figshare.com/articles/Graphs_of_materials_project/7451351"


def plan(req: Request) -> Job:
    """The local file (``path``, data/raw/megnet/ or a mirror folder), else a download when allowed."""
    found = (Path(req.path) if req.path is not None
             else find_megnet_file(Path(req.mirror) if req.mirror is not None else None, req.raw_dir))
    if found is None or not found.exists():
        if not req.download:
            raise DataUnavailable(megnet_message(req.raw_dir))
        found = download(MEGNET_URL, req.raw_dir / "megnet" / (MEGNET_FILE + ".zip"), req.progress,
                         what="the MEGNet paper's dataset", help_=megnet_message(req.raw_dir))
    return Job("figshare", [found], lambda: records_megnet(found), str(found))


def megnet_message(raw_dir: Path) -> str:
    return (
        f"the MEGNet dataset (MP 2018.6.1, 69,239 materials) is not mirrored and needs its public file: "
        f"download {MEGNET_URL} (mp.2018.6.1.json.zip, from {MEGNET_PAGE}) and put it at "
        f"{raw_dir / 'megnet' / (MEGNET_FILE + '.zip')} (or unzip it to {raw_dir / 'megnet' / MEGNET_FILE}), "
        "or pass path=; load_dataset('megnet') downloads it itself when the network is reachable."
    )


def find_megnet_file(mirror: Path | None, raw_dir: Path) -> Path | None:
    dirs = [raw_dir / "megnet"] + ([mirror] if mirror is not None and Path(mirror).is_dir() else [])
    for d in dirs:
        for fname in (MEGNET_FILE, MEGNET_FILE + ".zip", MEGNET_FILE + ".gz", MEGNET_FILE + ".xz"):
            if (Path(d) / fname).exists():
                return Path(d) / fname
    return None



def records_megnet(path: Path) -> tuple[pd.DataFrame, dict]:
    """The MEGNet paper's mp.2018.6.1.json (a list of {material_id, structure (CIF), targets})."""
    try:
        if path.suffix == ".zip":
            with zipfile.ZipFile(path) as zf:
                member = next((n for n in zf.namelist() if n.endswith(".json")), None)
                if member is None:
                    raise DataUnavailable(f"{path} holds no .json file; "
                                          + megnet_message(path.parent.parent))
                rows = json.loads(zf.read(member))
        else:
            with open_text(path) as fh:
                rows = json.load(fh)
    except (OSError, EOFError, ValueError, zipfile.BadZipFile, lzma.LZMAError) as exc:
        raise DataUnavailable(f"{path} is truncated or corrupt ({short(exc)}): delete it and load again "
                              "(it is downloaded again), or " + megnet_message(path.parent.parent)) from None
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise DataUnavailable(f"{path} is not the MEGNet file (a JSON list of materials); "
                              + megnet_message(path.parent.parent))
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
