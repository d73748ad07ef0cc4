"""The standard table: splits, subsets, content hashes, Table 2, and building it from source records.

Each source turns its input into *records* (see ``lib.data.sources``); :func:`build_table` makes the
standard table from them, giving every left-out row or value a reason.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import math
import multiprocessing as mp
import os
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pandas as pd

from lib.data.energy import energy_scale
from lib.data.mapping import PROPERTY_MAP, PropertyMapping
from lib.data.sources.base import tqdm
from lib.data.targets import POISSON_RANGE, TARGETS, Target
from lib.procs import die_with_parent
from lib.structures import (
    Crystal,
    StructureError,
    crystal_from_arrays,
    crystals_to_flat,
    parse_cif,
    parse_optimade,
    parse_structure_dict,
)
from lib.validate import check_many


class RejectedTable(pd.DataFrame):
    """The rejection report (material_id, target, reason, detail) kept in ``df.attrs["rejected"]``.

    A plain DataFrame, except that ``==`` between two reports is one bool: pandas compares ``attrs``
    with ``==`` when it concatenates or merges frames, which a DataFrame in ``attrs`` would break.
    """
    _metadata: list[str] = []

    @property
    def _constructor(self):
        return RejectedTable

    def __eq__(self, other):  # type: ignore[override]
        return isinstance(other, pd.DataFrame) and pd.DataFrame(self).equals(pd.DataFrame(other))

    def __ne__(self, other):  # type: ignore[override]
        return not self.__eq__(other)

    __hash__ = None  # type: ignore[assignment]


_REJECTED_COLUMNS = ("material_id", "target", "reason", "detail")


def _rejected_frame(rows: Iterable[tuple]) -> RejectedTable:
    rows = list(rows)
    return RejectedTable(pd.DataFrame(rows, columns=list(_REJECTED_COLUMNS)).astype(str))



def split(
    n_or_df: int | pd.DataFrame, seed: int, fractions: Sequence[float] = (0.8, 0.1, 0.1)
) -> dict[str, np.ndarray]:
    """Deterministic random split into positional indices: {"train","val","test"} or {"train","test"}.

    ``numpy.random.default_rng(seed)`` permutes ``range(n)``; val/test get floor(fraction * n) rows
    and train the rest; each part is returned sorted. Disjoint and covering by construction.
    """
    n = len(n_or_df) if isinstance(n_or_df, pd.DataFrame) else int(n_or_df)
    fr = [float(f) for f in fractions]
    if len(fr) not in (2, 3) or any(f < 0 for f in fr) or not math.isclose(sum(fr), 1.0, abs_tol=1e-6):
        raise ValueError(
            f"fractions must be 2 or 3 non-negative numbers summing to 1, got {tuple(fractions)}"
        )
    names = ("train", "val", "test") if len(fr) == 3 else ("train", "test")
    perm = np.random.default_rng(seed).permutation(n)
    sizes = [int(math.floor(f * n + 1e-9)) for f in fr[1:]]
    bounds = np.cumsum([n - sum(sizes), *sizes])
    parts = np.split(perm, bounds[:-1])
    return {k: np.sort(p).astype(np.int64) for k, p in zip(names, parts, strict=True)}


def check_targets(y: np.ndarray, split: dict[str, np.ndarray], property: str) -> None:
    """A clear error if a split holds a missing or non-finite target (every fitter calls this first)."""
    y = np.asarray(y)
    for k, v in split.items():
        bad = ~np.isfinite(y[np.asarray(v, dtype=np.int64)].astype(np.float64))
        if bad.any():
            raise ValueError(f"{int(bad.sum())} missing/non-finite targets in the {k} split of {property!r} "
                             "(drop them first, e.g. lib.data.target_frame)")


def target_frame(df: pd.DataFrame, target: str, n_max: int | None = None, seed: int = 0) -> pd.DataFrame:
    """The rows that have ``target`` (optionally a deterministic random subsample of ``n_max`` rows).

    The index is reset (positions = labels). ``attrs["content_hash"]`` becomes the hash of these rows
    (ids, structures, this target) and ``attrs["dataset_hash"]`` keeps the full table's.
    """
    if target not in df.columns:
        known = [c for c in TARGETS if c in df.columns]
        raise KeyError(f"no target column {target!r}; this table has {known}")
    out = df[df[target].notna()]
    if n_max is not None and len(out) > n_max:
        pick = np.sort(np.random.default_rng(seed).choice(len(out), size=int(n_max), replace=False))
        out = out.iloc[pick]
    out = out.reset_index(drop=True)
    out.attrs = dict(df.attrs)
    out.attrs["dataset_hash"] = df.attrs.get("dataset_hash", df.attrs.get("content_hash"))
    out.attrs["target"] = target
    out.attrs["content_hash"] = content_hash(out, [target])
    return out


def content_hash(df: pd.DataFrame, columns: Sequence[str] | None = None) -> str:
    """A stable sha256 of ids, structures (exact bytes) and target columns (not source/date)."""
    h = hashlib.sha256(b"lib.data content v1\n")
    h.update("\n".join(df["material_id"].astype(str).tolist()).encode())
    flat = crystals_to_flat(list(df["structure"]))
    for key in ("lattices", "offsets", "frac_coords", "numbers"):
        arr = np.ascontiguousarray(flat[key], dtype=np.int64 if key in ("offsets", "numbers") else np.float64)
        h.update(key.encode())
        h.update(arr.tobytes())
    cols = [c for c in TARGETS if c in df.columns] if columns is None else list(columns)
    for col in cols:
        v = df[col].to_numpy(dtype=np.float64, copy=True, na_value=np.nan)
        v[np.isnan(v)] = np.nan  # one NaN bit pattern
        h.update(col.encode())
        h.update(v.tobytes())
    return h.hexdigest()


def target_table(df: pd.DataFrame, targets: Sequence[str] | None = None) -> pd.DataFrame:
    """The thesis's Table 2: instances per property with units, plus the values dropped and why."""
    drops = df.attrs.get("drops", {})
    rows = []
    for col in targets or [c for c in TARGETS if c in df.columns]:
        t = TARGETS.get(col, Target(col, col, "", ""))
        n = int(df[col].notna().sum()) if col in df.columns else 0
        if targets is None and n == 0:
            continue
        dropped = {k.split(": ", 1)[1]: v for k, v in drops.items() if k.startswith(col + ": ")}
        rows.append(
            {
                "property": t.label,
                "column": col,
                "unit": t.unit,
                "instances": n,
                "dropped": sum(dropped.values()),
                "why dropped": "; ".join(f"{k} ({v})" for k, v in dropped.items()),
                "note": t.note,
            }
        )
    return pd.DataFrame(rows)


def summary(df: pd.DataFrame) -> str:
    """Short text report of a loaded table: size, source, drops by reason (one line each)."""
    a = df.attrs
    lines = [
        f"{a.get('name', '?')} from {a.get('source', '?')}: {len(df):,} materials"
        + (f" ({a['origin']})" if a.get("origin") else "")
    ]
    for reason, count in a.get("drops", {}).items():
        lines.append(f"  left out: {reason}: {count:,}")
    return "\n".join(lines)


#
# Each source turns its input into "records": a DataFrame with material_id, one structure column
# (cif: CIF text, pmg: pymatgen Structure dict, optimade: OPTIMADE attributes, crystal: exact arrays),
# the provider's property fields, and optionally source/retrieved; plus meta = {"provider": name or
# a per-row Series, "source": label or Series, "notes": [...], "rejected": [...], "expect": [...]}.


def build_table(
    records: pd.DataFrame, meta: dict, *, n_jobs: int | None, progress: bool
) -> tuple[pd.DataFrame, RejectedTable]:
    """records -> (standard table, rejected rows); every left-out row or value gets a reason.

    In order: ids (duplicates and blanks), structures, target values through the mapping table, the rules
    that hold whatever the provider, the PBE energy-scale check, rows left without any target.
    """
    rejected: list[tuple] = list(meta.get("rejected", []))
    records = records.reset_index(drop=True)
    ids = records["material_id"].astype(str)
    keep = _usable_ids(records, ids, rejected)
    crystals = _structures(records, ids, keep, rejected, n_jobs, progress)
    values, extras = _mapped_values(records, ids, keep, meta, rejected)
    _general_rules(values, ids, keep, rejected)
    _energy_scale_check(records, values, crystals, ids, keep, meta, rejected)
    _drop_targetless(values, extras, ids, keep, meta, rejected)
    src, retrieved = _provenance(records, meta)
    table = pd.DataFrame({"material_id": ids, "structure": pd.Series(crystals, dtype=object)})
    for col in TARGETS:
        table[col] = values[col]
    for col, v in extras.items():
        table[col] = v
    table["source"] = [str(x) for x in src]
    table["retrieved"] = [str(x) for x in retrieved]
    table = table[keep].reset_index(drop=True)
    return table, _rejected_frame(rejected)


def _usable_ids(records: pd.DataFrame, ids: pd.Series, rejected: list) -> np.ndarray:
    """Rows to keep so far: the first of each id, and none without an id."""
    dup = ids.duplicated(keep="first").to_numpy()
    for mid in ids[dup]:
        rejected.append((mid, "", "duplicated id", "the same material_id appears again; kept the first"))
    keep = ~dup
    blank = (ids.str.strip() == "") | records["material_id"].isna()
    for k in np.flatnonzero(blank.to_numpy() & keep):
        rejected.append((f"row {k}", "", "no material id", "empty material_id"))
    return keep & ~blank.to_numpy()


def _structures(records: pd.DataFrame, ids: pd.Series, keep: np.ndarray, rejected: list,
                n_jobs: int | None, progress: bool) -> list[Crystal | None]:
    """Each kept row's Crystal, from its first structure column with a value; a row that gives none is
    rejected with the reason and no longer kept (``keep`` is updated)."""
    kinds = [k for k in ("crystal", "cif", "pmg", "optimade") if k in records.columns]
    if not kinds:
        raise ValueError("records without a structure column")
    items = []
    for row in records[kinds].itertuples(index=False):
        for kind, val in zip(kinds, row, strict=True):
            if val is not None and not (isinstance(val, float) and math.isnan(val)):
                items.append((kind, val))
                break
        else:
            items.append(("none", None))
    results = _parse_all([it for it, k in zip(items, keep, strict=True) if k], n_jobs, progress)
    crystals: list[Crystal | None] = [None] * len(records)
    for idx, res in zip(np.flatnonzero(keep), results, strict=True):
        if isinstance(res, Crystal):
            crystals[idx] = res
        else:
            reason, detail = res
            rejected.append((ids[idx], "", reason, detail))
            keep[idx] = False
    return crystals


def _mapped_values(records: pd.DataFrame, ids: pd.Series, keep: np.ndarray, meta: dict, rejected: list
                   ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The standard target columns and any other mapped ones, through the mapping table (plus a source's own
    mappings, e.g. a folder's one column), provider by provider; the first mapping with a value wins."""
    maps = PROPERTY_MAP + tuple(meta.get("mappings", ()))
    providers = meta["provider"]
    prov = (
        np.asarray(providers, dtype=object)
        if isinstance(providers, pd.Series | list)
        else np.full(len(records), providers, dtype=object)
    )
    values: dict[str, np.ndarray] = {c: np.full(len(records), np.nan) for c in TARGETS}
    extras: dict[str, np.ndarray] = {}
    for p in dict.fromkeys(prov.tolist()):
        rows = prov == p
        sub = records[rows]
        sub_ids = ids[rows].to_numpy()
        sub_keep = keep[rows]
        for m in (m for m in maps if m.provider == p):
            if m.field.split(".")[0] not in sub.columns:
                continue
            v = _extract(sub, m)
            if m.transform == "log10":
                bad = np.isfinite(v) & (v <= 0)
                for mid, raw in zip(sub_ids[bad & sub_keep], v[bad & sub_keep] / m.factor, strict=True):
                    rejected.append((mid, m.column, "non-positive modulus", f"{m.field} = {raw:g} {m.unit}"))
                with np.errstate(divide="ignore", invalid="ignore"):
                    v = np.where(bad, np.nan, np.log10(np.where(bad, 1.0, v)))
            col = (
                values[m.column]
                if m.column in values
                else extras.setdefault(m.column, np.full(len(records), np.nan))
            )
            col[rows] = np.where(np.isnan(col[rows]), v, col[rows])
    return values, extras


def _general_rules(values: dict[str, np.ndarray], ids: pd.Series, keep: np.ndarray, rejected: list) -> None:
    """The rules whatever the provider: no infinite value, a Poisson ratio within POISSON_RANGE."""
    for col, v in values.items():
        inf = np.isinf(v)
        for mid in ids[inf & keep]:
            rejected.append((mid, col, "not finite", "infinite value"))
        v[inf] = np.nan
    pr = values["poisson_ratio"]
    out = np.isfinite(pr) & ((pr < POISSON_RANGE[0]) | (pr > POISSON_RANGE[1]))
    for mid, x in zip(ids[out & keep], pr[out & keep], strict=True):
        rejected.append((mid, "poisson_ratio", "outside [0, 0.5]", f"poisson_ratio = {x:g}"))
    pr[out] = np.nan


def _energy_scale_check(records: pd.DataFrame, values: dict[str, np.ndarray], crystals: list, ids: pd.Series,
                        keep: np.ndarray, meta: dict, rejected: list) -> None:
    """Total energies of another functional (MP 2024 mixes PBE and r2SCAN), checked against a formation
    energy of the same release that the source names (``meta["energy_reference"]``, a records column)."""
    ref_col = meta.get("energy_reference")
    if not ref_col or ref_col not in records.columns:
        return
    e = values["energy_per_atom"]
    ef = pd.to_numeric(records[ref_col], errors="coerce").to_numpy(dtype=float)
    use = keep & np.isfinite(e) & np.isfinite(ef)
    nums = [c.numbers if c is not None else None for c in crystals]
    scale = energy_scale(nums, np.where(use, e, np.nan), np.where(use, ef, np.nan))
    off = use & ~scale.on_scale
    for mid, res, und in zip(ids[off], scale.residual[off], scale.undetermined[off], strict=True):
        if und:
            rejected.append((mid, "energy_per_atom", "energy scale undetermined",
                             "an element too rare among the PBE energies to fit its reference"))
        else:
            rejected.append((mid, "energy_per_atom", "not on the PBE energy scale",
                             f"E - E_f - sum x mu = {res:+.2f} eV/atom (an r2SCAN energy?)"))
    e[off] = np.nan
    meta.setdefault("notes", []).append("energy_per_atom: " + scale.note)


def _drop_targetless(values: dict[str, np.ndarray], extras: dict[str, np.ndarray], ids: pd.Series,
                     keep: np.ndarray, meta: dict, rejected: list) -> None:
    """A row with no target at all has nothing to model (e.g. a NaN in a folder's id_prop.csv); a source of
    structures only (``meta["structures_only"]``: the mirror's electrode and extra structures) keeps them all."""
    if meta.get("structures_only"):
        return
    expect = [c for c in (meta.get("expect") or list(TARGETS)) if c in values]
    empty = np.all([np.isnan(values[c]) for c in expect], axis=0)
    for e in extras.values():
        empty &= np.isnan(e)
    for mid in ids[empty & keep]:
        rejected.append((mid, expect[0] if len(expect) == 1 else "", "missing target value",
                         "no value for " + ("the target" if len(expect) == 1 else "any target")))
    keep &= ~empty


def _provenance(records: pd.DataFrame, meta: dict) -> tuple[np.ndarray, np.ndarray]:
    """Each row's source and retrieval date: the record's own, else the source's (today when it has none)."""
    today = _dt.date.today().isoformat()
    src, ret = meta.get("source", ""), meta.get("retrieved", today)
    src = (
        np.asarray(src, dtype=object)
        if isinstance(src, pd.Series | list)
        else np.full(len(records), src, dtype=object)
    )
    if "source" in records.columns:
        given = records["source"].to_numpy(dtype=object)
        src = np.where(pd.isna(given), src, given)
    retrieved = np.full(len(records), ret, dtype=object)
    if "retrieved" in records.columns:
        given = records["retrieved"].to_numpy(dtype=object)
        retrieved = np.where(pd.isna(given) | (given == ""), retrieved, given)
    return src, retrieved


def _extract(sub: pd.DataFrame, m: PropertyMapping) -> np.ndarray:
    """One provider field as float64 (NaN where absent), times the mapping's factor."""
    parts = m.field.split(".")
    col = sub[parts[0]]
    if len(parts) == 1 and pd.api.types.is_numeric_dtype(col.dtype):
        return col.to_numpy(dtype=np.float64, na_value=np.nan) * m.factor
    companion = None
    if m.pick == "vrh" and m.field.endswith("_value"):
        cname = m.field[: -len("_value")] + "_type"
        companion = sub[cname] if cname in sub.columns else None
    out = np.full(len(sub), np.nan)
    for k, val in enumerate(col.tolist()):
        for key in parts[1:]:
            val = val.get(key) if isinstance(val, Mapping) else None
        if isinstance(val, list | tuple | np.ndarray):
            vals = [x for x in val if x is not None]
            if not vals:
                continue
            if m.pick == "min":
                val = min(vals)
            elif m.pick == "vrh" and companion is not None and isinstance(companion.iloc[k], list | tuple):
                types = list(companion.iloc[k])
                val = (
                    val[types.index("voigt_reuss_hill_average")]
                    if "voigt_reuss_hill_average" in types
                    else vals[0]
                )
            else:
                val = vals[0]
        try:
            out[k] = float(val) * m.factor if val is not None else np.nan
        except (TypeError, ValueError):
            out[k] = np.nan
    return out


def _parse_one(item: tuple[str, object], check: bool = True) -> Crystal | tuple[str, str]:
    """One structure input -> Crystal, or (reason, detail). ``check=False``: the caller runs
    lib.validate's checks (``_parse_chunk`` does, for many crystals at once)."""
    kind, val = item
    try:
        if kind == "cif":
            return parse_cif(val, check=check)
        if kind == "crystal":
            if not isinstance(val, Mapping):
                return ("bad structure", f"a 'crystal' field of type {type(val).__name__}, not a mapping")
            return crystal_from_arrays(val.get("lattice"), val.get("frac_coords"), val.get("numbers"), check)
        if kind == "pmg":
            if hasattr(val, "as_dict"):
                return Crystal.from_structure(val, check=check)
            return parse_structure_dict(val, check=check)
        if kind == "optimade":
            return parse_optimade(val, check=check)
        return ("no structure", "the source gives no structure for this material")
    except StructureError as exc:
        return (exc.reason, str(exc))
    except Exception as exc:  # noqa: BLE001 - one bad structure must not stop the dataset
        return ("bad structure", f"{type(exc).__name__}: {exc}")


def _parse_chunk(items: list[tuple[str, object]]) -> list[Crystal | tuple[str, str]]:
    """Parse, then check every crystal at once (lib.validate.check_many: the same rules, vectorised)."""
    out = [_parse_one(it, check=False) for it in items]
    made = [k for k, res in enumerate(out) if isinstance(res, Crystal)]
    for k, err in zip(made, check_many([out[k] for k in made]), strict=True):
        if err is not None:
            out[k] = (err.reason, str(err))
    return out


def _parse_all(
    items: list[tuple[str, object]], n_jobs: int | None, progress: bool
) -> list[Crystal | tuple[str, str]]:
    """Parse many structures: a tqdm bar, and a process pool on both cores for big inputs (its workers
    die with this process: lib.procs.die_with_parent)."""
    n = len(items)
    n_jobs = n_jobs if n_jobs is not None else min(2, os.cpu_count() or 1)
    chunk = 500
    chunks = [items[i : i + chunk] for i in range(0, n, chunk)]
    out: list = []
    bar = tqdm(
        total=n,
        desc="parsing structures",
        unit="structure",
        disable=not progress or n < 1000,
        mininterval=1.0,
    )
    if n_jobs > 1 and n >= 4000:
        ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else None
        with ProcessPoolExecutor(max_workers=n_jobs, mp_context=ctx, initializer=die_with_parent,
                                 initargs=(os.getpid(),)) as pool:
            for res in pool.map(_parse_chunk, chunks):
                out.extend(res)
                bar.update(len(res))
    else:
        for ch in chunks:
            out.extend(_parse_chunk(ch))
            bar.update(len(ch))
    bar.close()
    return out
