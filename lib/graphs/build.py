"""Building a dataset's graphs: in parallel worker processes (which die with their parent), cached under
data/graphs/ by the data's content hash and the parameters (:func:`build_graphs`)."""

from __future__ import annotations

import hashlib
import json
import math
import multiprocessing as mp
import os
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tqdm import tqdm

from lib import paths
from lib.graphs.neighbors import (
    GRAPH_CODE_VERSION,
    ON_ISOLATED,
    TIE_TOL,
    GraphParams,
    _neighbor_edges,
    as_crystal,
)
from lib.graphs.sets import GraphSet
from lib.procs import die_with_parent
from lib.structures import Crystal

# --------------------------------------------------------------------------------------------------
# building a dataset's graphs: parallel, cached


def graph_cache_dir() -> Path:
    """Where GraphSets are cached: ``lib.paths.DATA / "graphs"`` (read at call time: tests redirect it)."""
    return Path(paths.DATA) / "graphs"


def _pack(crystals: Sequence[Crystal]) -> dict:
    """Flat arrays of many crystals: lattices (n,3,3), frac (A,3), numbers (A,), atom_ptr (n+1,)."""
    n_atoms = np.fromiter((len(c.numbers) for c in crystals), dtype=np.int64, count=len(crystals))
    atom_ptr = np.concatenate([[0], np.cumsum(n_atoms)])
    return {
        "lattice": np.stack([c.lattice for c in crystals]) if crystals else np.zeros((0, 3, 3)),
        "frac": np.concatenate([c.frac_coords for c in crystals]) if crystals else np.zeros((0, 3)),
        "numbers": np.concatenate([c.numbers for c in crystals]) if crystals else np.zeros(0, np.int64),
        "atom_ptr": atom_ptr,
    }


def _build_chunk(args) -> tuple:
    """Worker: graphs of a chunk of packed crystals -> (edge_src, edge_dst, distance, edges per crystal)."""
    lattice, frac, atom_ptr, params_dict = args
    params = GraphParams.from_dict(params_dict)
    srcs, dsts, dists = [], [], []
    counts = np.zeros(len(lattice), dtype=np.int64)
    for c in range(len(lattice)):
        s, d, r = _neighbor_edges(lattice[c], frac[atom_ptr[c] : atom_ptr[c + 1]], params)
        srcs.append(s.astype(np.int32))
        dsts.append(d.astype(np.int32))
        dists.append(r.astype(np.float32))
        counts[c] = len(s)
    cat = np.concatenate
    return (
        cat(srcs) if srcs else np.zeros(0, np.int32),
        cat(dsts) if dsts else np.zeros(0, np.int32),
        cat(dists) if dists else np.zeros(0, np.float32),
        counts,
    )


def _mp_context():

    methods = mp.get_all_start_methods()
    return mp.get_context("fork" if "fork" in methods and sys.platform.startswith("linux") else "spawn")


def _build_arrays(packed: dict, params: GraphParams, n_jobs: int, progress: bool, desc: str) -> tuple:
    """Edges of all packed crystals, in chunks, on ``n_jobs`` worker processes (in-process when 1)."""
    n = len(packed["lattice"])
    n_jobs = max(1, int(n_jobs if n_jobs and n_jobs > 0 else (os.cpu_count() or 1)))
    if mp.current_process().daemon:  # inside a pool worker: no children allowed, build here
        n_jobs = 1
    size = int(min(512, max(16, math.ceil(n / (8 * n_jobs))))) if n else 1
    bounds = [(a, min(a + size, n)) for a in range(0, n, size)]
    ptr = packed["atom_ptr"]
    pd = params.as_dict()
    tasks = (
        (packed["lattice"][a:b], packed["frac"][ptr[a] : ptr[b]], ptr[a : b + 1] - ptr[a], pd)
        for a, b in bounds
    )
    results = []
    bar = tqdm(total=n, desc=desc, unit="crystal", disable=not progress, file=sys.stderr, mininterval=0.5)
    try:
        if n_jobs == 1 or len(bounds) <= 1:
            for (a, b), t in zip(bounds, tasks, strict=True):
                results.append(_build_chunk(t))
                bar.update(b - a)
        else:
            with _mp_context().Pool(
                processes=min(n_jobs, len(bounds)), initializer=die_with_parent, initargs=(os.getpid(),)
            ) as pool:
                for (a, b), r in zip(bounds, pool.imap(_build_chunk, tasks), strict=True):
                    results.append(r)
                    bar.update(b - a)
    finally:
        bar.close()
    if not results:
        return np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0, np.float32), np.zeros(0, np.int64)
    return tuple(np.concatenate([r[i] for r in results]) for i in range(4))


def _ids_and_crystals(data, ids) -> tuple[list, np.ndarray, str | None]:
    """(crystals, material ids, content hash or None) from a lib.data DataFrame or a list of crystals."""
    content_hash = None
    if hasattr(data, "columns") and hasattr(data, "attrs"):  # a pandas DataFrame
        if "structure" not in data.columns:
            raise ValueError("the table needs a 'structure' column of lib.structures.Crystal")
        crystals = data["structure"].tolist()
        if ids is None and "material_id" in data.columns:
            ids = data["material_id"].astype(str).tolist()
        content_hash = data.attrs.get("content_hash")
    else:
        crystals = list(data)
    crystals = [as_crystal(c) for c in crystals]
    if ids is None:
        ids = [str(i) for i in range(len(crystals))]
    ids = np.asarray([str(i) for i in ids], dtype=str)
    if len(ids) != len(crystals):
        raise ValueError(f"{len(ids)} ids for {len(crystals)} crystals")
    return crystals, ids, content_hash


def _hash_crystals(crystals: Sequence[Crystal]) -> str:
    h = hashlib.sha256()
    for c in crystals:
        h.update(np.ascontiguousarray(c.lattice, dtype=np.float64).tobytes())
        h.update(np.ascontiguousarray(c.frac_coords, dtype=np.float64).tobytes())
        h.update(np.ascontiguousarray(c.numbers, dtype=np.int64).tobytes())
    return h.hexdigest()


def cache_key(content_hash: str, ids: np.ndarray, params: GraphParams, on_isolated: str) -> str:
    """Hex key of one GraphSet: data content and ids, builder parameters, isolated atoms, code version."""
    ids_hash = hashlib.sha256("\n".join(ids.tolist()).encode()).hexdigest()
    blob = json.dumps(
        {
            "content": content_hash,
            "ids": ids_hash,
            "params": params.as_dict(),
            "on_isolated": on_isolated,
            "code": GRAPH_CODE_VERSION,
            "tie_tol": TIE_TOL,
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def _isolated_message(rep: dict, params: GraphParams, action: str) -> str:
    ids = rep["isolated_ids"]
    shown = ", ".join(ids[:5]) + (", ..." if len(ids) > 5 else "")
    bigger = max(5.0, params.cutoff + 1.0)
    return (
        f"lib.graphs: {len(ids)} structure(s) have atoms with no neighbour within {params.cutoff:g} Å "
        f"({rep['isolated_atoms']} atoms; {shown}); {action}. Remedy: raise the cutoff (e.g. to "
        f"{bigger:g} Å). All ids are in GraphSet.report['isolated_ids']."
    )


def build_graphs(
    df_or_crystals,
    params: GraphParams,
    ids: Sequence[str] | None = None,
    cache: bool = True,
    n_jobs: int = 2,
    progress: bool = True,
    name: str | None = None,
    on_isolated: str = "drop",
    cache_dir: str | os.PathLike | None = None,
    verbose: bool = True,
) -> GraphSet:
    """The graphs of a whole dataset, built once and cached.

    df_or_crystals: a ``lib.data`` table (``structure`` column of :class:`Crystal`, ``material_id``;
        its ``attrs["content_hash"]`` is used when present, else the arrays are hashed) or a list of
        :class:`Crystal` / pymatgen Structures (with ``ids``, or positions as ids).
    cache: read/write ``<cache_dir>/<name>-<params.tag>-<key>.npz`` (default dir ``data/graphs``). The
        key covers the data, the ids, every parameter, ``on_isolated`` and :data:`GRAPH_CODE_VERSION`,
        so a changed parameter builds a new cache and never reads a stale one.
    n_jobs: worker processes (each gets chunks of plain arrays); 1 builds in this process.
    on_isolated: what to do with a structure that has an atom with no neighbour within the cutoff:
        "drop" it (summary line, ids in ``report["isolated_ids"]``), "keep" it, or "error".
    verbose: print that one-line summary when structures have isolated atoms.
    """
    if on_isolated not in ON_ISOLATED:
        raise ValueError(f"on_isolated must be one of {ON_ISOLATED}, got {on_isolated!r}")
    if isinstance(params, dict):
        params = GraphParams.from_dict(params)
    crystals, ids, content_hash = _ids_and_crystals(df_or_crystals, ids)
    path = None
    if cache:
        key = cache_key(content_hash or _hash_crystals(crystals), ids, params, on_isolated)
        stem = (name or "graphs").replace("/", "_")
        path = Path(cache_dir) if cache_dir is not None else graph_cache_dir()
        path = path / f"{stem}-{params.tag}-{key[:16]}.npz"
        gs = _cached(path, params, verbose)
        if gs is not None:
            return gs

    t0 = time.perf_counter()
    packed = _pack(crystals)
    src, dst, dist, counts = _build_arrays(
        packed, params, n_jobs, progress, desc=f"graphs {params.tag}" + (f" ({name})" if name else "")
    )
    edge_ptr = np.concatenate([[0], np.cumsum(counts)])
    gs = GraphSet(ids, params, packed["numbers"], packed["atom_ptr"], src, dst, dist, edge_ptr)
    build_seconds = time.perf_counter() - t0
    gs, dropped = _isolated(gs, params, on_isolated, verbose)
    gs.report.update(
        n_structures_in=len(crystals),
        dropped_ids=dropped,
        on_isolated=on_isolated,
        build_seconds=build_seconds,
        n_jobs=n_jobs,
        content_hash=content_hash,
        code_version=GRAPH_CODE_VERSION,
    )
    if path is not None:
        gs.save(path)
        gs.report["saved_to"] = str(path)
    return gs


def _cached(path: Path, params: GraphParams, verbose: bool) -> GraphSet | None:
    """The graph set cached at ``path`` (None: none there, or a damaged one, removed with a warning)."""
    if not path.exists():
        return None
    t0 = time.perf_counter()
    try:
        gs = GraphSet.load(path)
    except Exception as exc:  # noqa: BLE001 - a damaged cache is rebuilt (as the data cache is)
        warnings.warn(f"rebuilding the unreadable graph cache {path} ({type(exc).__name__}: {exc})",
                      stacklevel=3)
        path.unlink(missing_ok=True)
        return None
    gs.report["loaded_from"] = str(path)
    gs.report["load_seconds"] = time.perf_counter() - t0
    if gs.report.get("dropped_ids") and verbose:
        print(_isolated_message(gs.report["dropped_report"], params, "they were dropped"), file=sys.stderr)
    return gs


def _isolated(gs: GraphSet, params: GraphParams, on_isolated: str, verbose: bool
              ) -> tuple[GraphSet, list[str]]:
    """Structures with an atom that has no neighbour: dropped, kept or an error, as ``on_isolated`` says;
    (the graph set, the dropped ids)."""
    rep = gs.report
    if not rep["structures_with_isolated"]:
        return gs, []
    if on_isolated == "error":
        raise ValueError(_isolated_message(rep, params, "stopping (on_isolated='error')"))
    if on_isolated == "keep":
        if verbose:
            print(_isolated_message(rep, params, "they were kept (on_isolated='keep')"), file=sys.stderr)
        return gs, []
    dropped = list(rep["isolated_ids"])
    keep = np.setdiff1d(np.arange(len(gs)), gs.index_of(dropped))
    iso_rep = dict(rep)
    gs = gs.subset(keep)
    gs.report["dropped_report"] = {k: iso_rep[k] for k in ("isolated_ids", "isolated_atoms")}
    if verbose:
        print(_isolated_message(iso_rep, params, "they were dropped (on_isolated='drop')"), file=sys.stderr)
    return gs, dropped
