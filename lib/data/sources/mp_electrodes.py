"""MP's insertion-electrode documents, with their structures, through mp-api (network and an API key needed).

    files = fetch_electrodes(battery_ids)          # data/raw/mp_electrodes/chunk-*.json.gz, resumable
    table = read_electrodes(files)                 # one row per electrode, end-member Crystals and energies
    table = load_electrodes()                      # both, for every battery id of the mirror's pairs file

Documents come from ``MPRester().materials.insertion_electrodes.search(battery_ids=..., fields=...)``
(mp-api's ``ElectrodeRester``, emmet's ``InsertionElectrodeDoc``), as plain dicts
(``use_document_model=False``), in chunks of battery ids. Each chunk is written to
``data/raw/mp_electrodes/chunk-<k>-<hash of ids and fields>.json.gz`` atomically by the summary fetch's
mechanism (``lib.data.sources.mp.fetch_chunks``),
so an interrupted fetch resumes and never downloads a saved chunk again; every request has mp-api's
per-request timeout set (``timeout``, seconds) and a failure names the chunk and says how to resume.

The structures are those of the electrode's own entries (``electrode_object``: pymatgen's
``InsertionElectrode`` with ``ComputedStructureEntry`` objects): the fully charged (``id_charge``) and fully
discharged (``id_discharge``) ones become Crystals, with MP's corrected energies per atom, and
:func:`read_electrodes` recomputes the average voltage from those entries with pymatgen as a check.
MP now serialises material ids in its alphabetical form (``mp-aaaborpw``); :func:`legacy_id` turns them
back into ``mp-714944`` so they match the pairs file and the mirror.
"""

from __future__ import annotations

import gzip
import json
import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from pymatgen.apps.battery.insertion_battery import InsertionElectrode
from pymatgen.entries.computed_entries import ComputedStructureEntry

from lib.data.sources import mp
from lib.data.sources.base import DataUnavailable, FetchError
from lib.data.sources.electrode_pairs import read_pairs
from lib.paths import DATA
from lib.structures import parse_structure_dict

RAW_DIR = DATA / "raw" / "mp_electrodes"
FIELDS = [
    "battery_id",
    "working_ion",
    "num_steps",
    "average_voltage",
    "capacity_grav",
    "capacity_vol",
    "energy_grav",
    "energy_vol",
    "id_charge",
    "id_discharge",
    "formula_charge",
    "formula_discharge",
    "fracA_charge",
    "fracA_discharge",
    "framework_formula",
    "material_ids",
    "stability_charge",
    "stability_discharge",
    "max_delta_volume",
    "max_voltage_step",
    "thermo_type",
    "last_updated",
    "electrode_object",
]


def legacy_id(value) -> str:
    """``mp-714944`` from ``mp-714944``, ``mp-aaaborpw`` (MP's alphabetical ids) or an int; other strings
    as they are.

    The alphabetical form is the integer in base 26 with a = 0 ... z = 25 (emmet's ``AlphaID``; a test
    checks the two agree).
    """
    s = str(value)
    m = re.fullmatch(r"([a-z]+)-([a-z]+)", s)
    if not m:
        return s
    n = 0
    for ch in m.group(2):
        n = n * 26 + (ord(ch) - ord("a"))
    return f"{m.group(1)}-{n}"


def chunk_files(
    battery_ids: Sequence[str], out_dir: Path, chunk_size: int
) -> tuple[list[list[str]], list[Path]]:
    """The chunks of ids and the file each is saved to (named by position and a hash of ids and fields)."""
    return mp.chunk_files(battery_ids, out_dir, chunk_size, FIELDS)


def _rester(api_key: str | None):
    """The same bounded mp-api client as the summary fetch (``lib.data.sources.mp.mp_rester``)."""
    key = api_key or os.environ.get("MP_API_KEY")
    if not key:
        raise DataUnavailable(
            "no Materials Project API key: set MP_API_KEY (https://next-gen.materialsproject.org/api)"
        )
    return mp.mp_rester(key)


def _jsonable(doc) -> dict:
    d = doc.model_dump(mode="json") if hasattr(doc, "model_dump") else dict(doc)
    return json.loads(json.dumps({k: d.get(k) for k in FIELDS if k in d}, default=str))


def fetch_electrodes(
    battery_ids: Sequence[str],
    api_key: str | None = None,
    out_dir: str | Path | None = None,
    chunk_size: int = 100,
    timeout: int = 60,
    progress: bool = True,
) -> list[Path]:
    """Download the insertion-electrode documents of ``battery_ids`` (e.g. ``mp-19017_Li``) in chunks.

    Chunks already on disk are not fetched again (not even a client is made when all are there); each new
    chunk is written atomically. ``timeout``: seconds per HTTP request (mp-api's rester timeout). A failed
    request raises :class:`FetchError` naming the chunk; the chunks saved so far stay and the same call
    resumes. Returns the chunk files in order.
    """
    out_dir = Path(out_dir) if out_dir is not None else RAW_DIR

    def search(mpr, chunk: list[str]):
        route = mpr.materials.insertion_electrodes
        if hasattr(route, "timeout"):
            route.timeout = timeout
        return route.search(battery_ids=chunk, fields=list(FIELDS))

    return mp.fetch_chunks([str(b) for b in battery_ids], out_dir, chunk_size, FIELDS,
                           rester=lambda: _rester(api_key), search=search, to_dict=_jsonable,
                           what="MP electrode", progress=progress)


def _entry_by_id(electrode: dict, mid: str):
    """The ComputedStructureEntry (pymatgen) of material ``mid`` among the electrode's entries, or None."""
    for d in list(electrode.get("stable_entries") or []) + list(electrode.get("unstable_entries") or []):
        ids = {legacy_id(d.get("entry_id")), legacy_id((d.get("data") or {}).get("material_id"))}
        if mid in ids:
            return ComputedStructureEntry.from_dict(d)
    return None


def read_electrodes(files: Sequence[str | Path]) -> pd.DataFrame:
    """One row per electrode document in the chunk files.

    Columns: ``battery_id``, ``ion``, ``num_steps``, ``avg_voltage`` (MP's ``average_voltage``, V),
    ``capacity_grav`` (mAh/g), ``energy_grav`` (Wh/kg), ``id_charge`` / ``id_discharge`` (legacy ids),
    ``formula_charge`` / ``formula_discharge``, ``charged`` / ``discharged`` (Crystals from the electrode's
    entries, None if absent), ``energy_charged`` / ``energy_discharged`` (MP's corrected energies, eV/atom),
    ``voltage_recomputed`` (pymatgen's average voltage of the stored electrode object, V) and ``problem``
    (why a row lacks structures). ``attrs["missing"]``: battery ids asked for but not returned.
    """
    rows, asked, got = [], [], set()
    for f in files:
        with gzip.open(f, "rt", encoding="utf-8") as fh:
            payload = json.load(fh)
        asked.extend(payload["ids"])
        for d in payload["docs"]:
            bid = d.get("battery_id") or ""
            m = re.fullmatch(r"(.+)_([A-Z][a-z]?)", bid)
            if m:
                bid = f"{legacy_id(m.group(1))}_{m.group(2)}"
            got.add(bid)
            row = {
                "battery_id": bid,
                "ion": d.get("working_ion"),
                "num_steps": d.get("num_steps"),
                "avg_voltage": d.get("average_voltage"),
                "capacity_grav": d.get("capacity_grav"),
                "energy_grav": d.get("energy_grav"),
                "id_charge": legacy_id(d.get("id_charge")),
                "id_discharge": legacy_id(d.get("id_discharge")),
                "formula_charge": d.get("formula_charge"),
                "formula_discharge": d.get("formula_discharge"),
                "charged": None,
                "discharged": None,
                "energy_charged": np.nan,
                "energy_discharged": np.nan,
                "voltage_recomputed": np.nan,
                "problem": "",
                "retrieved": payload.get("retrieved", ""),
            }
            eo = d.get("electrode_object")
            if not eo:
                row["problem"] = "no electrode_object in the document"
            else:
                try:
                    for end, mid in (("charged", row["id_charge"]), ("discharged", row["id_discharge"])):
                        e = _entry_by_id(eo, mid)
                        if e is None:
                            raise KeyError(f"no entry for {end} id {mid}")
                        row[end] = parse_structure_dict(e.structure.as_dict())
                        row[f"energy_{end}"] = e.energy_per_atom
                    row["voltage_recomputed"] = InsertionElectrode.from_dict(eo).get_average_voltage()
                except Exception as exc:  # noqa: BLE001 - one bad document never stops the table
                    row["problem"] = f"{type(exc).__name__}: {exc}"
            rows.append(row)
    out = pd.DataFrame(rows)
    out.attrs["missing"] = [b for b in asked if b not in got]
    return out


def load_electrodes(
    battery_ids: Sequence[str] | None = None,
    api_key: str | None = None,
    out_dir: str | Path | None = None,
    chunk_size: int = 100,
    timeout: int = 60,
    progress: bool = True,
) -> pd.DataFrame:
    """:func:`fetch_electrodes` then :func:`read_electrodes`; default ids: every battery id of the mirror's
    pairs file (4,401)."""
    if battery_ids is None:
        battery_ids = read_pairs()["battery_id"].tolist()
    files = fetch_electrodes(
        battery_ids,
        api_key=api_key,
        out_dir=out_dir,
        chunk_size=chunk_size,
        timeout=timeout,
        progress=progress,
    )
    return read_electrodes(files)


__all__ = [
    "FIELDS",
    "FetchError",
    "legacy_id",
    "chunk_files",
    "fetch_electrodes",
    "read_electrodes",
    "load_electrodes",
]
