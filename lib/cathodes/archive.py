"""Committed archives of cache folders: one gzipped JSON-lines file per kind and model under ``records/``.

``data/`` is not tracked by git, so the results that take minutes to compute (relaxations, hulls, voltage
curves, NEB bands) also travel in ``records/<kind>/<model>.jsonl.gz``: one line per cache file, sorted by its
key and gzipped without a time stamp (the same entries give the same bytes, so a rerun changes nothing in
git). A cache reads the archive through when its own file is missing, so a clean clone (CI) finds what an
earlier session computed.

This module is the one shared mechanism of every such archive: the relaxations (:mod:`lib.cathodes.relax`,
``records/relax``), the hulls of chemical systems (:mod:`lib.cathodes.stability`, ``records/hulls``, keyed by
the system's name: ``field="system"``), the voltage curves (:mod:`lib.cathodes.curves`, ``records/curves``)
and the NEB bands (:mod:`lib.cathodes.mobility`, ``records/neb``), the last two written by ``python -m
lib.cathodes.finalists archive``. ``field`` names the record's key (``"key"`` unless said).

- :func:`archive_folder`: merge a folder of ``<key>.json`` files into an archive file;
- :func:`archived`: an archive file as ``{key: record}`` (read once per file version);
- :func:`read_through`: one record, from the cache folder, else from the archive;
- :func:`restore`: write the archived records that a cache folder lacks into it (after that every reader of
  the folder, whichever module, finds them: the curves' and the bands' own readers need no change).
"""

from __future__ import annotations

import functools
import gzip
import json
from collections.abc import Callable
from pathlib import Path

from lib.paths import ARCHIVE, atomic_path


def archive_file(kind: str, name: str, archive_dir: str | Path | None = None) -> Path:
    """``records/<kind>/<name>.jsonl.gz`` (``archive_dir``: the folder holding ``<name>.jsonl.gz``)."""
    return (
        Path(archive_dir) / f"{name}.jsonl.gz"
        if archive_dir is not None
        else ARCHIVE / kind / f"{name}.jsonl.gz"
    )


@functools.cache
def _read(path: Path, mtime: float, field: str = "key") -> dict[str, dict]:
    with gzip.open(path, "rt") as f:
        return {d[field]: d for d in map(json.loads, f) if isinstance(d, dict) and d.get(field)}


def archived(kind: str, name: str, archive_dir: str | Path | None = None, field: str = "key") -> dict[str, dict]:
    """The records of an archive file by key (empty when there is none)."""
    path = archive_file(kind, name, archive_dir)
    return _read(path, path.stat().st_mtime, field) if path.is_file() else {}


def archive_folder(
    folder: str | Path,
    kind: str,
    name: str,
    archive_dir: str | Path | None = None,
    keep: Callable[[dict], bool] | None = None,
    field: str = "key",
) -> tuple[Path, int]:
    """Merge every ``<key>.json`` of ``folder`` (those ``keep`` accepts) into
    ``records/<kind>/<name>.jsonl.gz``:
    a folder's record replaces the archived one of the same key, archived records the folder lacks stay.
    Returns (the file, the number of records in it)."""
    rows = dict(archived(kind, name, archive_dir, field))
    folder = Path(folder)
    for p in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            d = json.loads(p.read_text())
        except ValueError:  # a damaged or half-written file is not archived
            continue
        if not isinstance(d, dict) or (keep is not None and not keep(d)):
            continue
        d.setdefault(field, p.stem)
        rows[d[field]] = d
    target = archive_file(kind, name, archive_dir)
    target.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(rows[k], separators=(",", ":")) + "\n" for k in sorted(rows))
    with atomic_path(target) as tmp:
        tmp.write_bytes(gzip.compress(text.encode(), compresslevel=9, mtime=0))
    return target, len(rows)


def read_through(
    folder: str | Path | None, key: str, kind: str, name: str, archive_dir: str | Path | None = None,
    field: str = "key",
) -> dict | None:
    """The record ``key``: ``folder/<key>.json``, else the archive's; None when neither has it (a damaged
    file counts as missing)."""
    if folder is not None:
        try:
            return json.loads((Path(folder) / f"{key}.json").read_text())
        except FileNotFoundError:
            pass
        except ValueError:
            return None
    return archived(kind, name, archive_dir, field).get(key)


def restore(folder: str | Path, kind: str, name: str, archive_dir: str | Path | None = None,
            field: str = "key") -> int:
    """Write every archived record that ``folder`` has no file of into it (atomically); returns how many.
    Existing files, even damaged ones, are left alone."""
    rows = archived(kind, name, archive_dir, field)
    if not rows:
        return 0
    folder = Path(folder)
    present = {p.stem for p in folder.glob("*.json")} if folder.is_dir() else set()
    n = 0
    for key, d in rows.items():
        if key in present:
            continue
        with atomic_path(folder / f"{key}.json") as tmp:
            tmp.write_text(json.dumps(d))
        n += 1
    return n


__all__ = ["archive_file", "archive_folder", "archived", "read_through", "restore"]
