"""What every source shares: the request it is given, the job it returns, errors, file and HTTP helpers.

A source module (mirror, folder, megnet, mp, optimade) has one function, ``plan(request) -> Job``: it
fetches what must be fetched (resumably, under ``request.raw_dir``) and returns the input files (which key
the processed cache) and a ``build()`` that turns them into *records*: a DataFrame with ``material_id``,
one structure column (``cif``: CIF text, ``pmg``: pymatgen Structure dict, ``optimade``: OPTIMADE
attributes, ``crystal``: exact arrays), the provider's property fields, and optionally source/retrieved;
plus meta = {"provider": name or a per-row list, "source": label or list, "notes": [...], "rejected":
[...], "expect": [...], "mappings": [...], "energy_reference": column}. ``lib.data.table.build_table``
makes the standard table of them.
"""

from __future__ import annotations

import gzip
import json
import lzma
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from lib.paths import atomic_path

with warnings.catch_warnings():  # tqdm.auto warns when a notebook has no ipywidgets; text bars are fine
    warnings.simplefilter("ignore")
    from tqdm.auto import tqdm

try:  # orjson (an mp-api dependency) reads the JSON Lines mirror ~3x faster
    import orjson as _orjson

    _loads = _orjson.loads
except ImportError:  # pragma: no cover
    _orjson = None
    _loads = json.loads

MP_KEY_URL = "https://next-gen.materialsproject.org/api"


class DataUnavailable(RuntimeError):
    """No source can be read (no mirror, no key, no network): the message says what to do."""


class FetchError(RuntimeError):
    """A download stopped part-way; what was fetched is kept and the same call resumes."""


@dataclass(frozen=True)
class Request:
    """What ``load_dataset`` was asked for (see its docstring for each field)."""

    name: str
    mirror: Path | None
    path: Path | None
    target: str | None
    api_key: str | None
    ids: Sequence[str] | None
    optimade_filter: str | None
    providers: Sequence[str] | Mapping[str, str]
    max_entries: int | None
    chunk_size: int
    download: bool
    raw_dir: Path
    progress: bool


@dataclass
class Job:
    """A source's answer: the input files (they key the cache) and how to turn them into records."""

    source: str  # the concrete source, as recorded in the table's attrs ("mirror", "figshare", ...)
    files: list[Path]
    build: Callable[[], tuple[pd.DataFrame, dict]]
    origin: str  # where the data came from, in words (a path, "MP API, 46,744 ids", an OPTIMADE query)
    params: dict = field(default_factory=dict)  # what else keys the cache (a folder's target, a filter)


def short(exc: BaseException) -> str:
    """An exception as one short line (network errors nest long reprs)."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:160]}{'...' if len(text) > 160 else ''}"


def no_data_message(name: str) -> str:
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


def open_text(path: Path, mode: str = "rt", compress_like: Path | None = None):
    """Open plain, .xz or .gz text files (chosen by the suffix of ``compress_like`` or ``path``)."""
    suffix = Path(compress_like or path).suffix
    if suffix == ".xz":
        return lzma.open(path, mode, encoding="utf-8")
    if suffix == ".gz":
        return gzip.open(path, mode, encoding="utf-8")
    return open(path, mode.replace("t", ""), encoding="utf-8")


def read_jsonl(path: Path) -> list[dict]:
    """One JSON object per line (plain, .xz or .gz); a clear error naming the line if one is broken."""
    out = []
    with open_text(path) as fh:
        for k, line in enumerate(fh, 1):
            if line.strip():
                try:
                    out.append(_loads(line))
                except ValueError as exc:
                    raise ValueError(f"{path}: line {k} is not valid JSON ({exc})") from None
    return out


def download(url: str, dest: Path, progress: bool, *, what: str, help_: str) -> Path:
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
        raise DataUnavailable(f"cannot download {what} from {url} ({short(exc)}). {help_}") from None
    return dest
