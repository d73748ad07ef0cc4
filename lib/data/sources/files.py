"""The files a user gives, read one way whether they train a model or are predicted.

Three formats: a CGCNN folder (``id_prop.csv``: ``id,value`` per line, no header, and ``<id>.cif`` files),
CIF files, and JSON Lines snapshots (``.jsonl``, ``.jsonl.xz``, ``.jsonl.gz``; one material per line, as
``lib.data.export_snapshot`` writes them). Training reads them through ``lib.data.load_dataset``'s sources
(``folder``, ``mirror``), prediction through ``lib.predict``; both read them here, so an id, a line or a byte
means the same to both:

- text is UTF-8; undecodable bytes become U+FFFD; ``id_prop.csv`` may start with a byte-order mark; lines end
  at ``\\n`` (a ``\\r`` before it is dropped); blank lines are skipped;
- an id of ``id_prop.csv`` names ``<id>.cif`` in the folder, so it must be a plain file name
  (:func:`id_problem`): not empty, no path separators, no control characters, at most 200 characters;
- a snapshot line that is not a JSON object is reported by its line number; a file that ends in the middle
  of a line or of its compressed stream stops the read (DataUnavailable): what was read would lack rows.

What each reader does with a line is its own business: training needs ``id,value`` and rejects other lines;
prediction needs only the id.
"""

from __future__ import annotations

import gzip
import lzma
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from lib.data.sources.base import DataUnavailable, json_loads, short

ID_PROP = "id_prop.csv"
MAX_ID = 200  # characters
SNAPSHOT_SUFFIXES = (".jsonl", ".jsonl.xz", ".jsonl.gz", ".json.xz", ".json.gz")


def open_text(path: Path, mode: str = "rt", compress_like: Path | None = None):
    """Open plain, .xz or .gz text files (chosen by the suffix of ``compress_like`` or ``path``)."""
    suffix = Path(compress_like or path).suffix
    if suffix == ".xz":
        return lzma.open(path, mode, encoding="utf-8")
    if suffix == ".gz":
        return gzip.open(path, mode, encoding="utf-8")
    return open(path, mode.replace("t", ""), encoding="utf-8")


# ----------------------------------------------------------------------------- JSON Lines


def iter_jsonl(path: Path) -> Iterator[tuple[int, dict | None, str | None]]:
    """``(line number, object, None)`` for each line that is a JSON object, ``(line number, None, why)`` for
    one that is not; blank lines are skipped. A file cut short (mid-line or mid-stream) or that cannot be
    decompressed raises DataUnavailable naming the file; a missing one, FileNotFoundError."""
    k = 0
    try:
        with open_text(path) as fh:
            for k, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    obj = json_loads(line)
                except ValueError as exc:
                    obj, why = None, f"not valid JSON ({short(exc)})"
                else:
                    why = None if isinstance(obj, dict) else f"a JSON {type(obj).__name__}, not an object"
                if why is not None and not line.endswith("\n") and obj is None:
                    raise EOFError(f"the last line ({k}) is cut short")
                yield k, (obj if why is None else None), why
    except (EOFError, OSError, lzma.LZMAError, zlib.error, UnicodeDecodeError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise DataUnavailable(
            f"{path} is truncated or corrupt after line {k} ({short(exc)}): copy or download it again "
            "(for the shared mirror: from ../shared/data; for a snapshot: export it again)"
        ) from None


def read_jsonl(path: Path, bad_lines: list | None = None) -> list[dict]:
    """One JSON object per line (plain, .xz or .gz), as :func:`iter_jsonl` reads them.

    A line that is not a JSON object is skipped and reported: appended to ``bad_lines`` as a rejection
    row (``"<file> line <k>"``, "", "bad line", why) that the table's report keeps; without
    ``bad_lines`` it stops with a ValueError naming the file and line. One broken line costs one row,
    as a broken CIF costs one structure. A truncated or corrupt file stops the load (DataUnavailable).
    """
    out = []
    for k, obj, why in iter_jsonl(path):
        if why is None:
            out.append(obj)
        elif bad_lines is None:
            raise ValueError(f"{path}: line {k} is {why}")
        else:
            bad_lines.append((f"{Path(path).name} line {k}", "", "bad line", f"{path}: line {k} is {why}"))
    return out


def is_snapshot(path: Path) -> bool:
    return Path(path).name.lower().endswith(SNAPSHOT_SUFFIXES)


# ----------------------------------------------------------------------------- CGCNN folders and CIFs


@dataclass(frozen=True)
class IdPropLine:
    """One non-blank line of ``id_prop.csv``: its number, its text, its comma-separated fields (stripped)."""

    number: int
    text: str
    fields: tuple[str, ...]

    @property
    def id(self) -> str:
        return self.fields[0]

    @property
    def where(self) -> str:
        return f"{ID_PROP} line {self.number}"


def id_problem(mid: str) -> str | None:
    """Why ``mid`` cannot name a CIF file in the folder (None if it can)."""
    if not mid:
        return "empty id"
    if len(mid) > MAX_ID:
        return f"an id of {len(mid)} characters (at most {MAX_ID})"
    if any(c in mid for c in "/\\") or mid in (".", ".."):
        return f"{mid!r} is a path, not a file name: ids name <id>.cif inside the folder"
    if any(ord(c) < 32 or ord(c) == 127 for c in mid):
        return f"{mid!r} holds control characters"
    return None


def read_id_prop(folder: Path) -> list[IdPropLine]:
    """The non-blank lines of ``folder/id_prop.csv``, in order."""
    out = []
    with open(Path(folder) / ID_PROP, encoding="utf-8-sig", errors="replace", newline="") as fh:
        for k, line in enumerate(fh, 1):
            line = line.rstrip("\r\n")
            if line.strip():
                out.append(IdPropLine(k, line, tuple(p.strip() for p in line.split(","))))
    return out


def cif_file(folder: Path, mid: str) -> Path:
    """The CIF file that id ``mid`` of ``folder``'s id_prop.csv names."""
    return Path(folder) / f"{mid}.cif"


def read_cif_text(path: Path) -> str:
    """A CIF file's text (undecodable bytes become U+FFFD); OSError if it cannot be read."""
    return Path(path).read_text(encoding="utf-8", errors="replace")


__all__ = ["ID_PROP", "MAX_ID", "SNAPSHOT_SUFFIXES", "open_text", "iter_jsonl", "read_jsonl", "is_snapshot",
           "IdPropLine", "id_problem", "read_id_prop", "cif_file", "read_cif_text"]
