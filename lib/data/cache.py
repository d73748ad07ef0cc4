"""The processed cache: one parquet per dataset and inputs under data/processed/, rebuilt when unreadable.

Keyed by the inputs' names, sizes and modification times, :data:`FORMAT_VERSION` and the structure checks'
version and limits (:mod:`lib.validate`: raising a limit rebuilds the table): a changed input is
never read stale, and the second load of the full CGCNN dataset takes about a second.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
import warnings
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from lib.data.sources.base import Job
from lib.data.table import _REJECTED_COLUMNS, RejectedTable, build_table, content_hash, summary
from lib.data.targets import TARGETS
from lib.paths import atomic_path
from lib.structures import crystals_from_flat, crystals_to_flat
from lib.validate import CHECKS_VERSION, current_limits

FORMAT_VERSION = 2  # bump when the processed table changes for the same inputs (2: PBE energy scale)


def _file_fingerprint(files: Sequence[Path]) -> list[list]:
    out = []
    for f in files:
        st = Path(f).stat()
        out.append([Path(f).name, st.st_size, st.st_mtime_ns])
    return out


def _slug(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", s).strip("-") or "data"


def cached_table(
    job: Job,
    *,
    name: str,
    target: str | None,
    cache: bool,
    cache_dir: Path,
    verbose: bool,
    n_jobs: int | None,
    progress: bool,
) -> pd.DataFrame:
    """Read the processed table of ``job``'s inputs from the cache, or build it (and cache it)."""
    src, files, builder, origin, params = job.source, job.files, job.build, job.origin, job.params
    key_obj = {
        "format": FORMAT_VERSION,
        "name": name,
        "source": src,
        "params": params or {},
        "inputs": _file_fingerprint(files),
        # which structures are accepted depends on the checks and their limits (lib.validate)
        "checks": [CHECKS_VERSION, current_limits().as_dict()],
    }
    key = hashlib.sha256(json.dumps(key_obj, sort_keys=True).encode()).hexdigest()[:16]
    stem = f"{_slug(name)}-{src}" + (f"-{_slug(target)}" if target else "")
    out = cache_dir / f"{stem}-{key}.parquet"
    if cache and out.exists():
        try:
            df = _read_parquet(out)
            df.attrs["origin"] = origin
            if verbose:
                print(summary(df) + f"\n  (cached {_rel(out)})")
            return df
        except Exception as exc:  # noqa: BLE001 - a corrupt cache is rebuilt, not fatal
            warnings.warn(f"rebuilding unreadable cache {out}: {exc}", stacklevel=2)
    t0 = time.perf_counter()
    records, meta = builder()
    df, rejected = build_table(records, meta, n_jobs=n_jobs, progress=progress)
    drops = dict(
        Counter(
            f"{t}: {r}" if t else r for t, r in zip(rejected["target"], rejected["reason"], strict=True)
        ).most_common()
    )
    attrs = {
        "name": name,
        "source": src,
        "origin": origin,
        "notes": meta.get("notes", []),
        "drops": drops,
        "build_seconds": round(time.perf_counter() - t0, 1),
    }
    if cache:
        cache_dir.mkdir(parents=True, exist_ok=True)
        _write_parquet(df, attrs, rejected, out)
        for old in cache_dir.glob(f"{stem}-*.parquet"):
            if old != out and re.fullmatch(re.escape(stem) + r"-[0-9a-f]{16}\.parquet", old.name):
                old.unlink(missing_ok=True)
        df = _read_parquet(out)  # the first load returns exactly what later loads return
        df.attrs["origin"] = origin
    else:
        df.attrs.update(attrs)
        df.attrs["rejected"] = rejected
        df.attrs["content_hash"] = content_hash(df)
    if verbose:
        print(
            summary(df)
            + f"\n  (built in {attrs['build_seconds']} s"
            + (f", cached {_rel(out)})" if cache else ")")
        )
    return df


def _rel(p: Path) -> str:
    try:
        return str(p.relative_to(Path.cwd()))
    except ValueError:
        return str(p)


def _write_parquet(df: pd.DataFrame, attrs: dict, rejected: pd.DataFrame, out: Path) -> None:

    flat = crystals_to_flat(list(df["structure"]))
    off = flat["offsets"]
    cols = {
        "material_id": pa.array(df["material_id"].astype(str).tolist(), pa.string()),
        "lattice": pa.FixedSizeListArray.from_arrays(pa.array(flat["lattices"].reshape(-1)), 9),
        "frac_coords": pa.ListArray.from_arrays(
            pa.array(off * 3, pa.int32()), pa.array(flat["frac_coords"].reshape(-1))
        ),
        "numbers": pa.ListArray.from_arrays(
            pa.array(off, pa.int32()), pa.array(flat["numbers"].astype(np.int16))
        ),
    }
    for c in df.columns:
        if c in ("material_id", "structure"):
            continue
        if c in TARGETS or pd.api.types.is_float_dtype(df[c]):
            cols[c] = pa.array(df[c].to_numpy(dtype=np.float64, na_value=np.nan), pa.float64())
        else:
            cols[c] = pa.array(df[c].astype(str).tolist(), pa.string())
    meta = dict(attrs, format=FORMAT_VERSION, rejected=rejected.to_dict("list"))
    table = pa.table(cols).replace_schema_metadata({"lib.data": json.dumps(meta)})
    with atomic_path(out) as tmp:
        pq.write_table(table, tmp, compression="zstd")


def _read_parquet(path: Path) -> pd.DataFrame:
    """The cached table, Crystals rebuilt vectorised from the arrow list offsets."""
    table = pq.read_table(path)
    meta = json.loads(table.schema.metadata[b"lib.data"])
    if meta.get("format") != FORMAT_VERSION:
        raise ValueError(f"format {meta.get('format')} != {FORMAT_VERSION}")

    def flat(col: str) -> tuple[np.ndarray, np.ndarray]:
        arr = table.column(col).combine_chunks()
        lengths = pc.list_value_length(arr).to_numpy(zero_copy_only=False)
        offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        return arr.flatten().to_numpy(zero_copy_only=False), offsets

    lat = table.column("lattice").combine_chunks().flatten().to_numpy(zero_copy_only=False)
    frac, _ = flat("frac_coords")
    nums, offsets = flat("numbers")
    crystals = crystals_from_flat(lat.reshape(-1, 3, 3), frac.reshape(-1, 3), nums, offsets)
    rest = [c for c in table.column_names if c not in ("lattice", "frac_coords", "numbers")]
    df = table.select(rest).to_pandas()
    df.insert(1, "structure", pd.Series(crystals, index=df.index, dtype=object))
    df.attrs = {k: v for k, v in meta.items() if k not in ("rejected", "format")}
    df.attrs["rejected"] = RejectedTable(pd.DataFrame(meta["rejected"], columns=list(_REJECTED_COLUMNS)))
    df.attrs["content_hash"] = content_hash(df)
    df.attrs["cache_path"] = str(path)
    return df
