"""The Materials Project API (mp-api's MPRester): summary documents by id, in resumable chunks.

Each chunk of ids is saved as gzip JSON under ``data/raw/mp/<dataset>/``; chunks already on disk are never
fetched again, so an interrupted fetch resumes. The key comes from ``MP_API_KEY`` (or ``api_key=``);
``MP_API_ENDPOINT`` points the client at another server (a proxy, a test server).

Time is bounded: mp-api retries HTTP 429/502/504 itself (3 times, honouring Retry-After) and gives its
requests a timeout, but its heartbeat (asked when the client starts) has none, so a server that never
answers would hang forever. The client is therefore started within :data:`MP_START_TIMEOUT` seconds
and each chunk fetched within :data:`MP_CHUNK_TIMEOUT` seconds (``lib.data.sources.base.within``), else
DataUnavailable / FetchError say what happened; saved chunks are kept.
"""

from __future__ import annotations

import datetime as _dt
import gzip
import hashlib
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from lib import paths
from lib.data.sources.base import (
    MP_KEY_URL,
    DataUnavailable,
    FetchError,
    Job,
    Request,
    short,
    tqdm,
    within,
)
from lib.data.sources.megnet import find_megnet_file, megnet_message, records_megnet
from lib.data.sources.mirror import MIRROR_FILES
from lib.paths import atomic_path

#: seconds to start mp-api's client (its heartbeat request has no timeout of its own)
MP_START_TIMEOUT = 60.0
#: seconds for one chunk of summary documents (mp-api's own retries and waits included)
MP_CHUNK_TIMEOUT = 600.0
CGCNN_IDS_URL = "https://raw.githubusercontent.com/txie-93/cgcnn/master/data/material-data/mp-ids-46744.csv"
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


def plan(req: Request) -> Job:
    """Fetch (or find on disk) the summary documents of the dataset's ids."""
    if not req.api_key:
        raise DataUnavailable(
            "source='mp' needs a Materials Project API key: get one at "
            + MP_KEY_URL
            + " and `export MP_API_KEY=<your key>` (or pass api_key=). Without network, use the "
            "offline mirror: load_dataset(name, source='mirror', mirror='../shared/data')."
        )
    id_list = (list(req.ids) if req.ids is not None
               else dataset_ids(req.name, req.mirror, req.path, req.raw_dir, req.download))
    files = fetch_mp(id_list, req.api_key, req.raw_dir / "mp" / req.name, req.chunk_size, req.progress)
    return Job("mp", files, lambda: records_mp(files, id_list), f"MP API, {len(id_list):,} ids")


def dataset_ids(name: str, mirror, path, raw_dir: Path, download: bool) -> list[str]:
    """The MP ids of a paper's dataset (cgcnn: mp-ids-46744.csv; megnet: the ids in its JSON file)."""
    if name == "cgcnn":
        cands = [Path(mirror) / MIRROR_FILES["ids"]] if mirror is not None and Path(mirror).is_dir() else []
        dm = paths.default_mirror()
        if dm is not None:
            cands.append(dm / MIRROR_FILES["ids"])
        cands.append(raw_dir / MIRROR_FILES["ids"])
        for c in cands:
            if c.exists():
                return _read_id_list(c)
        if download:
            return _read_id_list(
                download(
                    CGCNN_IDS_URL, raw_dir / MIRROR_FILES["ids"], False, what="the CGCNN id list", help_=""
                )
            )
        raise DataUnavailable(
            f"the CGCNN id list is not here: download {CGCNN_IDS_URL} to {raw_dir / MIRROR_FILES['ids']}"
        )
    if name == "megnet":
        found = Path(path) if path is not None else find_megnet_file(None, raw_dir)
        if found is None or not found.exists():
            raise DataUnavailable("the MEGNet id list comes from its JSON file: " + megnet_message(raw_dir))
        records, _ = records_megnet(found)
        return records["material_id"].astype(str).tolist()
    raise ValueError(f"source='mp' knows the ids of 'cgcnn' and 'megnet'; for {name!r} pass ids=[...]")


def _read_id_list(path: Path) -> list[str]:
    with open(path, encoding="utf-8") as fh:
        return [ln.split(",")[0].strip() for ln in fh if ln.strip()]


def mp_rester(api_key: str):
    """mp-api's MPRester (raw dicts, no progress bars), started within MP_START_TIMEOUT seconds; a clear
    DataUnavailable if it cannot start."""
    try:
        from mp_api.client import MPRester
    except ImportError as exc:
        raise DataUnavailable(f"mp-api is not installed ({exc}); `pip install mp-api`") from None
    endpoint = os.environ.get("MP_API_ENDPOINT") or None
    kwargs = {"mute_progress_bars": True, "use_document_model": False}
    if endpoint:
        kwargs["endpoint"] = endpoint
    where = endpoint or "the Materials Project API"
    hint = "Check the network and MP_API_KEY, or use the offline mirror (source='mirror')"
    try:
        return within(MP_START_TIMEOUT, lambda: MPRester(api_key, **kwargs), DataUnavailable(
            f"{where} did not answer within {MP_START_TIMEOUT:g} s (its heartbeat request hangs). {hint}"))
    except DataUnavailable:
        raise
    except Exception as exc:  # noqa: BLE001 - network, auth and server errors all end here
        raise DataUnavailable(f"cannot reach the Materials Project API ({short(exc)}). {hint}") from None


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


def chunk_files(ids: Sequence[str], out_dir: Path, chunk_size: int, fields: Sequence[str]
                ) -> tuple[list[list[str]], list[Path]]:
    """The chunks of ids and the file each is saved to (named by position and a hash of ids and fields)."""
    chunks = [list(ids[i : i + chunk_size]) for i in range(0, len(ids), chunk_size)]
    files = []
    for k, ch in enumerate(chunks):
        digest = hashlib.sha256(("\n".join(ch) + "|" + ",".join(fields)).encode()).hexdigest()[:10]
        files.append(out_dir / f"chunk-{k:05d}-{digest}.json.gz")
    return chunks, files


def fetch_chunks(ids: Sequence[str], out_dir: Path, chunk_size: int, fields: Sequence[str], *,
                 rester: Callable[[], Any], search: Callable[[Any, list[str]], Sequence],
                 to_dict: Callable[[Any], dict], what: str, progress: bool) -> list[Path]:
    """Documents of ``ids`` downloaded in resumable chunks (the summary fetch's and the electrodes').

    Each chunk is ``search(client, chunk_ids)`` (within MP_CHUNK_TIMEOUT seconds) on the client that
    ``rester()`` makes (only when a chunk is missing), its documents mapped by ``to_dict`` and saved as gzip
    JSON ``{"ids", "fields", "retrieved", "docs"}`` atomically. Chunks on disk are never fetched again; a
    failure raises FetchError naming ``what`` stopped at which chunk, and the same call resumes.
    """
    chunks, files = chunk_files(ids, out_dir, chunk_size, fields)
    todo = [k for k, f in enumerate(files) if not f.exists()]
    if not todo:
        return files
    out_dir.mkdir(parents=True, exist_ok=True)
    client = rester()
    bar = tqdm(total=len(chunks), initial=len(chunks) - len(todo), desc=f"{what} chunks",
               disable=not progress, unit="chunk")
    try:
        with client as mpr:
            for n_done, k in enumerate(todo):
                where = (f"the {what} fetch stopped at chunk {k + 1}/{len(chunks)} "
                         f"({chunks[k][0]} ... {chunks[k][-1]})")
                saved = len(chunks) - len(todo) + n_done
                again = (f"{saved} chunk(s) are saved under {out_dir}; run the same call again to resume "
                         "(saved chunks are not downloaded again).")
                try:
                    docs = within(MP_CHUNK_TIMEOUT, lambda k=k: search(mpr, chunks[k]),
                                  FetchError(f"{where}: no answer within {MP_CHUNK_TIMEOUT:g} s. {again}"))
                except FetchError:
                    raise
                except Exception as exc:  # noqa: BLE001 - say where it stopped; keep what is saved
                    text = " ".join(str(exc).split())[:500]
                    raise FetchError(f"{where}: {type(exc).__name__}: {text}. {again}") from exc
                payload = {"ids": chunks[k], "fields": list(fields),
                           "retrieved": _dt.date.today().isoformat(), "docs": [to_dict(d) for d in docs]}
                with atomic_path(files[k]) as tmp, gzip.open(tmp, "wt", encoding="utf-8") as fh:
                    json.dump(payload, fh, default=str)
                bar.update(1)
    finally:
        bar.close()
    return files


def fetch_mp(ids: list[str], api_key: str, out_dir: Path, chunk_size: int, progress: bool) -> list[Path]:
    """Download summary documents in chunks of ids; chunks already on disk are never fetched again."""
    return fetch_chunks(
        ids, out_dir, chunk_size, MP_FIELDS, rester=lambda: mp_rester(api_key),
        search=lambda mpr, ch: mpr.materials.summary.search(material_ids=ch, fields=list(MP_FIELDS)),
        to_dict=_doc_to_dict, what="Materials Project", progress=progress)


def records_mp(files: list[Path], ids: list[str]) -> tuple[pd.DataFrame, dict]:
    rows, retrieved, asked = [], [], []
    for f in files:
        try:
            with gzip.open(f, "rt", encoding="utf-8") as fh:
                payload = json.load(fh)
        except (OSError, EOFError, ValueError) as exc:  # written atomically, so only damage on disk
            raise FetchError(f"the saved chunk {f} cannot be read ({short(exc)}): delete it and run the same "
                             "call again (it is downloaded again)") from None
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
