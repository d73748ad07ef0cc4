"""``load_dataset``: one call for every source, behind one dispatcher (:data:`SOURCES`)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from lib import paths
from lib.data.cache import cached_table
from lib.data.sources import folder, megnet, mirror, mp, optimade
from lib.data.sources.base import DataUnavailable, Request, no_data_message

#: source name -> its plan(request) -> Job; "auto" picks one of them (:func:`resolve_source`)
PLANNERS = {"mp": mp.plan, "optimade": optimade.plan, "mirror": mirror.plan, "folder": folder.plan,
            "figshare": megnet.plan}
SOURCES = ("auto", *PLANNERS)


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
    cache_dir = Path(cache_dir) if cache_dir is not None else paths.DATA / "processed"
    raw_dir = Path(raw_dir) if raw_dir is not None else paths.DATA / "raw"
    key = api_key or os.environ.get("MP_API_KEY") or None
    src = resolve_source(name, source, mirror, path, key)
    req = Request(name=name, mirror=Path(mirror) if mirror is not None else None,
                  path=Path(path) if path is not None else None, target=target, api_key=key, ids=ids,
                  optimade_filter=optimade_filter, providers=providers, max_entries=max_entries,
                  chunk_size=chunk_size, download=download, raw_dir=raw_dir, progress=progress)
    job = PLANNERS[src](req)
    return cached_table(job, name=name, target=target, cache=cache, cache_dir=cache_dir, verbose=verbose,
                        n_jobs=n_jobs, progress=progress)


def resolve_source(name: str, source: str, mirror, path, key) -> str:
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
    if mirror is not None or paths.default_mirror() is not None:
        return "mirror"
    if key:
        return "mp"
    raise DataUnavailable(no_data_message(name))
