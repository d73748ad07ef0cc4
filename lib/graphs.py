"""Crystal graphs: atoms are nodes, and each atom receives edges from its periodic neighbours.

Two builders, one for each model family:

- ``cgcnn``: each atom's k nearest neighbours within a cutoff. The thesis's Table 3 uses k = 8 and
  8 Å; the reference CGCNN code uses k = 12.
- ``megnet``: every neighbour within a cutoff (the MEGNet paper uses 4 Å).

Both search neighbours with pymatgen's vectorised ``find_points_in_spheres``, called directly on
the :class:`~lib.structures.Crystal` arrays. Periodic images are included: an atom's own images are
neighbours (a one-atom cell still has edges), and only the atom itself at distance 0 is left out.
Neighbours are sorted by distance, then neighbour index, then image offset, so ties break the same
way on every run.

**Ties (``include_ties=True``, the default).** Every neighbour whose distance equals the k-th
distance to within 1e-5 Å is kept too. The graph is then a function of the distances alone: it does
not depend on the order of the atoms or on the cell (a supercell gives every atom the same multiset
of neighbour distances). The reference CGCNN cuts at exactly k. In a high-symmetry crystal that
keeps an arbitrary subset of a shell of equivalent neighbours (fcc with k = 8 keeps 8 of the 12
nearest), and which subset depends on atom order and on floating-point noise.
``include_ties=False`` gives the reference behaviour.

**Too few neighbours.** An atom with fewer than k neighbours within the cutoff keeps only the ones
it has. The reference pads with fake neighbours at a large distance and warns; here the models read
the edge list, so no padding is needed. Such atoms are counted in ``GraphSet.report``.

**Isolated atoms** (no neighbour at all within the cutoff) can receive no message. This happens to
MEGNet graphs at 4 Å in open structures. ``build_graphs(on_isolated=...)`` sets what to do:
"drop" the structure (the default, as the MEGNet reference skips them), with a one-line summary and
every id in ``report["isolated_ids"]``; "keep" it; or "error". The remedy is a larger cutoff
(5 Å removes most of them).

**Edge direction.** Edge e goes from ``edge_src[e]`` (the neighbour j, which sends) to
``edge_dst[e]`` (the centre atom i, which receives): message passing sums over edges into
``edge_dst``. Edges come grouped by centre atom and sorted by distance within each group.

A whole dataset becomes one :class:`GraphSet`: flat arrays with offsets and no padding. It is built
in parallel worker processes that receive chunks of plain arrays, cached under ``data/graphs/``
(keyed by the dataset content, the builder parameters and :data:`GRAPH_CODE_VERSION`), and batched
for the models with vectorised index arithmetic (:meth:`GraphSet.batch`).

Distances reach the models through :class:`GaussianExpansion`, the only place they are expanded.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from lib.elements import ATOM_FEATURE_SPEC, atom_feature_table  # noqa: F401  (re-exported)
from lib.paths import atomic_path
from lib.structures import Crystal

# Bump when a change in this module changes the graphs built from the same input: old caches are then
# never read again.
GRAPH_CODE_VERSION = 1
TIE_TOL = 1e-5  # Å: neighbours this close to the k-th distance count as tied with it
_SORT_DECIMALS = 6  # distances are compared rounded to 1e-6 Å when ordering neighbours
BUILDERS = ("cgcnn", "megnet")
ON_ISOLATED = ("drop", "keep", "error")

__all__ = [
    "GRAPH_CODE_VERSION", "GraphParams", "cgcnn_params", "megnet_params", "CrystalGraph", "build_graph",
    "GraphSet", "build_graphs", "GraphBatch", "collate", "GaussianExpansion", "cgcnn_gaussian",
    "megnet_gaussian", "ATOM_FEATURE_SPEC", "atom_feature_table", "graph_cache_dir", "summarize", "cache_key",
    "environment_similarity", "graph_sweep",
]


# --------------------------------------------------------------------------------------------------
# parameters


@dataclass(frozen=True)
class GraphParams:
    """How a crystal becomes a graph. Hashable; it goes into the cache key and into checkpoints.

    builder: "cgcnn" (the k nearest neighbours within the cutoff) or "megnet" (every neighbour within it).
    cutoff: neighbour search radius in Å.
    max_neighbors: k for "cgcnn"; None for "megnet".
    include_ties: "cgcnn" only. Also keep neighbours tied with the k-th one (within 1e-5 Å).
    """

    builder: str
    cutoff: float
    max_neighbors: int | None = None
    include_ties: bool = True

    def __post_init__(self) -> None:
        if self.builder not in BUILDERS:
            raise ValueError(f"unknown graph builder {self.builder!r}; known: {', '.join(BUILDERS)}")
        if not (isinstance(self.cutoff, (int, float)) and math.isfinite(self.cutoff) and self.cutoff > 0):
            raise ValueError(f"cutoff must be a positive number of Å, got {self.cutoff!r}")
        object.__setattr__(self, "cutoff", float(self.cutoff))
        if self.builder == "cgcnn":
            if self.max_neighbors is None or int(self.max_neighbors) < 1:
                raise ValueError(f"the cgcnn builder needs max_neighbors >= 1, got {self.max_neighbors!r}")
            object.__setattr__(self, "max_neighbors", int(self.max_neighbors))
        elif self.max_neighbors is not None:
            raise ValueError("the megnet builder keeps every neighbour within the cutoff: max_neighbors=None")
        object.__setattr__(self, "include_ties", bool(self.include_ties))

    def as_dict(self) -> dict:
        """Plain dict for run records and checkpoints."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> GraphParams:
        """Inverse of :meth:`as_dict` (unknown keys are an error)."""
        return cls(**d)

    @property
    def tag(self) -> str:
        """Short readable name, e.g. 'cgcnn-r8-k12' or 'megnet-r4'; used in cache file names."""
        r = f"{self.cutoff:g}".replace(".", "p")
        if self.builder == "cgcnn":
            return f"cgcnn-r{r}-k{self.max_neighbors}" + ("" if self.include_ties else "-noties")
        return f"megnet-r{r}"


def cgcnn_params(cutoff: float = 8.0, max_neighbors: int = 8, include_ties: bool = True) -> GraphParams:
    """CGCNN graphs: k = 8 nearest neighbours within 8 Å (thesis Table 3; the reference code uses k = 12)."""
    return GraphParams("cgcnn", cutoff, max_neighbors, include_ties)


def megnet_params(cutoff: float = 4.0) -> GraphParams:
    """MEGNet graphs: every neighbour within 4 Å (the MEGNet paper)."""
    return GraphParams("megnet", cutoff, None)


# --------------------------------------------------------------------------------------------------
# one crystal


@dataclass
class CrystalGraph:
    """The graph of one crystal (numpy).

    numbers: (n,) int64 atomic numbers.
    edge_src: (E,) int64 neighbour j (sends).  edge_dst: (E,) int64 centre atom i (receives).
    distance: (E,) float32 |r_j + image offset - r_i| in Å.
    """

    numbers: np.ndarray
    edge_src: np.ndarray
    edge_dst: np.ndarray
    distance: np.ndarray
    images: np.ndarray | None = None  # (E, 3) int64 lattice translation of the neighbour, when asked for

    @property
    def n_atoms(self) -> int:
        return len(self.numbers)

    @property
    def n_edges(self) -> int:
        return len(self.edge_src)

    def degree(self) -> np.ndarray:
        """(n,) number of incoming edges (neighbours) of each atom."""
        return np.bincount(self.edge_dst, minlength=self.n_atoms)

    def neighbors(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Neighbour indices and distances of atom i, nearest first."""
        m = self.edge_dst == i
        return self.edge_src[m], self.distance[m]


def _as_crystal(x) -> Crystal:
    if isinstance(x, Crystal):
        return x
    if hasattr(x, "lattice") and hasattr(x, "frac_coords") and hasattr(x, "species"):  # pymatgen Structure
        return Crystal.from_structure(x)
    raise TypeError(f"expected a lib.structures.Crystal or a pymatgen Structure, got {type(x).__name__}")


def _pairs(cart: np.ndarray, lattice: np.ndarray, r: float) -> tuple:
    """All (centre, neighbour, image offset, distance) pairs within r, the atom itself excluded."""
    from pymatgen.optimization.neighbors import find_points_in_spheres

    ctr, nbr, off, dist = find_points_in_spheres(
        cart, cart, r=r, pbc=np.array([1, 1, 1], dtype=np.int64), lattice=lattice, tol=1e-8
    )
    keep = ~((ctr == nbr) & ~off.any(axis=1)) & (dist <= r + 1e-8)
    return ctr[keep], nbr[keep], off[keep], dist[keep]


def _sorted_pairs(ctr, nbr, off, dist) -> tuple:
    """Pairs grouped by centre, nearest first; ties (to 1e-6 Å) broken by neighbour index, then image."""
    order = np.lexsort((off[:, 2], off[:, 1], off[:, 0], nbr, np.round(dist, _SORT_DECIMALS), ctr))
    return ctr[order], nbr[order], off[order], dist[order]


def _knn_select(ctr, nbr, off, dist, n: int, k: int, include_ties: bool) -> tuple:
    """Keep each centre's first k pairs (and, with ties, all within TIE_TOL of the k-th); also dk per centre."""
    counts = np.bincount(ctr, minlength=n)
    starts = np.cumsum(counts) - counts
    rank = np.arange(len(ctr)) - starts[ctr]
    sel = rank < k
    full = counts >= k
    dk = np.full(n, np.inf)
    dk[full] = dist[starts[full] + k - 1]
    if include_ties:
        sel |= dist <= dk[ctr] + TIE_TOL
    return ctr[sel], nbr[sel], off[sel], dist[sel], dk


def _neighbor_edges(lattice: np.ndarray, frac: np.ndarray, params: GraphParams, images: bool = False
                    ) -> tuple[np.ndarray, ...]:
    """(src, dst, distance float64[, image offsets (E, 3)]) of one crystal, grouped by dst, nearest first.

    For "cgcnn" the search first uses a smaller radius that should hold about 3k neighbours at the
    crystal's density; the answer is kept only if every atom's k-th neighbour (plus the tie tolerance)
    lies inside that radius, which makes it identical to the search at the full cutoff. Otherwise
    (open structures, vacuum) the full cutoff is searched.
    """
    lattice = np.ascontiguousarray(lattice, dtype=np.float64)
    cart = np.ascontiguousarray(frac @ lattice)
    n = len(cart)
    out = None
    if params.builder == "megnet":
        ctr, nbr, off, dist = _sorted_pairs(*_pairs(cart, lattice, params.cutoff))
        out = (nbr, ctr, dist, off)
    else:
        k = params.max_neighbors
        volume = abs(float(np.linalg.det(lattice)))
        r0 = (3.0 * k * volume / (n * 4.0 / 3.0 * math.pi)) ** (1.0 / 3.0) if n and volume > 0 else params.cutoff
        if r0 < 0.8 * params.cutoff:
            c2, n2, o2, d2, dk = _knn_select(*_sorted_pairs(*_pairs(cart, lattice, r0)), n, k, params.include_ties)
            if np.all(dk + TIE_TOL <= r0 - 1e-7):
                out = (n2, c2, d2, o2)
        if out is None:
            c2, n2, o2, d2, _ = _knn_select(*_sorted_pairs(*_pairs(cart, lattice, params.cutoff)), n, k,
                                            params.include_ties)
            out = (n2, c2, d2, o2)
    return out if images else out[:3]


def build_graph(crystal: Crystal, params: GraphParams, images: bool = False) -> CrystalGraph:
    """The graph of one crystal (a :class:`Crystal` or a pymatgen Structure) under ``params``.

    images: also return each edge's periodic image of the neighbour (``CrystalGraph.images``, for
    drawing; the dataset caches do not store them).
    """
    c = _as_crystal(crystal)
    res = _neighbor_edges(c.lattice, c.frac_coords, params, images=images)
    return CrystalGraph(c.numbers.copy(), res[0].astype(np.int64), res[1].astype(np.int64),
                        res[2].astype(np.float32), images=res[3].astype(np.int64) if images else None)


# --------------------------------------------------------------------------------------------------
# batches (torch)


@dataclass
class GraphBatch:
    """A batch of crystals as one disconnected graph (torch), indices offset per crystal.

    numbers: (N,) long atomic numbers.  crystal: (N,) long index 0..B-1 of each atom's crystal.
    edge_src, edge_dst: (E,) long batch-global atom indices (message j -> i).  distance: (E,) float.
    n_crystals: B.
    """

    numbers: torch.Tensor
    edge_src: torch.Tensor
    edge_dst: torch.Tensor
    distance: torch.Tensor
    crystal: torch.Tensor
    n_crystals: int

    def to(self, device, non_blocking: bool = False) -> GraphBatch:
        """The same batch on ``device``."""
        return GraphBatch(
            self.numbers.to(device, non_blocking=non_blocking),
            self.edge_src.to(device, non_blocking=non_blocking),
            self.edge_dst.to(device, non_blocking=non_blocking),
            self.distance.to(device, non_blocking=non_blocking),
            self.crystal.to(device, non_blocking=non_blocking),
            self.n_crystals,
        )

    @property
    def n_atoms(self) -> int:
        return int(self.numbers.shape[0])

    @property
    def n_edges(self) -> int:
        return int(self.edge_src.shape[0])

    @property
    def edge_crystal(self) -> torch.Tensor:
        """(E,) crystal index of each edge."""
        return self.crystal.index_select(0, self.edge_dst)


def _batch_from_arrays(numbers, src, dst, dist, n_atoms, n_edges) -> GraphBatch:
    """Offset local indices by each crystal's first atom and wrap as tensors."""
    n_atoms = np.asarray(n_atoms, dtype=np.int64)
    n_edges = np.asarray(n_edges, dtype=np.int64)
    atom_start = np.cumsum(n_atoms) - n_atoms
    shift = np.repeat(atom_start, n_edges)
    b = len(n_atoms)
    return GraphBatch(
        numbers=torch.from_numpy(np.ascontiguousarray(numbers, dtype=np.int64)),
        edge_src=torch.from_numpy(src.astype(np.int64) + shift),
        edge_dst=torch.from_numpy(dst.astype(np.int64) + shift),
        distance=torch.from_numpy(np.ascontiguousarray(dist, dtype=np.float32)),
        crystal=torch.from_numpy(np.repeat(np.arange(b, dtype=np.int64), n_atoms)),
        n_crystals=b,
    )


def collate(graphs: Sequence[CrystalGraph]) -> GraphBatch:
    """One :class:`GraphBatch` from a few :class:`CrystalGraph` (prediction, tests)."""
    if len(graphs) == 0:
        raise ValueError("collate needs at least one graph")
    return _batch_from_arrays(
        np.concatenate([g.numbers for g in graphs]),
        np.concatenate([g.edge_src for g in graphs]),
        np.concatenate([g.edge_dst for g in graphs]),
        np.concatenate([g.distance for g in graphs]),
        [g.n_atoms for g in graphs],
        [g.n_edges for g in graphs],
    )


def _gather_ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenation of arange(s, s + l) for each (s, l), without a Python loop."""
    lengths = np.asarray(lengths, dtype=np.int64)
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    out_start = np.cumsum(lengths) - lengths
    return np.arange(total, dtype=np.int64) + np.repeat(np.asarray(starts, dtype=np.int64) - out_start, lengths)


# --------------------------------------------------------------------------------------------------
# a dataset of graphs


class GraphSet:
    """All graphs of a dataset as flat arrays with offsets (no padding).

    material_ids: (n,) str.  params: the :class:`GraphParams` they were built with.
    numbers: (total_atoms,) int64; crystal c owns atoms atom_ptr[c]:atom_ptr[c+1].
    edge_src, edge_dst: (total_edges,) int32 LOCAL atom indices (within the crystal);
    distance: (total_edges,) float32; crystal c owns edges edge_ptr[c]:edge_ptr[c+1].
    source_index: (n,) int64 row of each graph in the table or list it was built from (rows dropped
    for isolated atoms are missing), so ``df.iloc[gs.source_index]`` lines up with the graphs.
    report: counts of atoms with fewer than k neighbours, isolated atoms (ids), dropped structures.
    """

    def __init__(self, material_ids, params: GraphParams, numbers, atom_ptr, edge_src, edge_dst, distance,
                 edge_ptr, report: dict | None = None, source_index=None) -> None:
        self.material_ids = np.asarray(material_ids, dtype=str)
        self.params = params
        self.numbers = np.asarray(numbers, dtype=np.int64)
        self.atom_ptr = np.asarray(atom_ptr, dtype=np.int64)
        self.edge_src = np.asarray(edge_src, dtype=np.int32)
        self.edge_dst = np.asarray(edge_dst, dtype=np.int32)
        self.distance = np.asarray(distance, dtype=np.float32)
        self.edge_ptr = np.asarray(edge_ptr, dtype=np.int64)
        n = len(self.material_ids)
        self.source_index = (np.arange(n, dtype=np.int64) if source_index is None
                             else np.asarray(source_index, dtype=np.int64))
        if not (len(self.atom_ptr) == len(self.edge_ptr) == n + 1 == len(self.source_index) + 1):
            raise ValueError("material_ids, atom_ptr, edge_ptr and source_index disagree on the number of graphs")
        if self.atom_ptr[-1] != len(self.numbers) or self.edge_ptr[-1] != len(self.edge_src):
            raise ValueError("atom_ptr/edge_ptr do not match the atom and edge arrays")
        self.report = report if report is not None else summarize(self)

    # sizes ------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.material_ids)

    @property
    def n_atoms(self) -> np.ndarray:
        """(n,) atoms per crystal."""
        return np.diff(self.atom_ptr)

    @property
    def n_edges(self) -> np.ndarray:
        """(n,) edges per crystal."""
        return np.diff(self.edge_ptr)

    def __repr__(self) -> str:
        return (f"GraphSet({len(self)} crystals, {len(self.numbers)} atoms, {len(self.edge_src)} edges, "
                f"{self.params.tag})")

    def degrees(self) -> np.ndarray:
        """(total_atoms,) incoming edges (neighbours) of every atom, in atom order."""
        glob = self.edge_dst.astype(np.int64) + np.repeat(self.atom_ptr[:-1], self.n_edges)
        return np.bincount(glob, minlength=len(self.numbers))

    def index_of(self, ids: Iterable[str]) -> np.ndarray:
        """Positions of the given material ids (KeyError naming the first missing one)."""
        pos = {m: i for i, m in enumerate(self.material_ids.tolist())}
        out = []
        for m in ids:
            if m not in pos:
                raise KeyError(f"{m} is not in this GraphSet (dropped, or not in the data it was built from)")
            out.append(pos[m])
        return np.asarray(out, dtype=np.int64)

    # access ------------------------------------------------------------------------------------
    def __getitem__(self, i: int) -> CrystalGraph:
        """The :class:`CrystalGraph` of crystal i."""
        a0, a1 = self.atom_ptr[i], self.atom_ptr[i + 1]
        e0, e1 = self.edge_ptr[i], self.edge_ptr[i + 1]
        return CrystalGraph(self.numbers[a0:a1].copy(), self.edge_src[e0:e1].astype(np.int64),
                            self.edge_dst[e0:e1].astype(np.int64), self.distance[e0:e1].copy())

    def _gather(self, indices) -> tuple:
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        if len(idx) and (idx.min() < -len(self) or idx.max() >= len(self)):
            raise IndexError(f"graph index out of range for a GraphSet of {len(self)}")
        idx = idx % max(len(self), 1)
        na = self.atom_ptr[idx + 1] - self.atom_ptr[idx]
        ne = self.edge_ptr[idx + 1] - self.edge_ptr[idx]
        aidx = _gather_ranges(self.atom_ptr[idx], na)
        eidx = _gather_ranges(self.edge_ptr[idx], ne)
        return idx, na, ne, aidx, eidx

    def batch(self, indices) -> GraphBatch:
        """The crystals at ``indices`` as one :class:`GraphBatch` (vectorised gathers, no per-crystal loop)."""
        _, na, ne, aidx, eidx = self._gather(indices)
        return _batch_from_arrays(self.numbers[aidx], self.edge_src[eidx], self.edge_dst[eidx],
                                  self.distance[eidx], na, ne)

    def subset(self, indices) -> GraphSet:
        """A new GraphSet of the crystals at ``indices`` (in that order); its report is recomputed."""
        idx, na, ne, aidx, eidx = self._gather(indices)
        zero = np.zeros(1, dtype=np.int64)
        return GraphSet(self.material_ids[idx], self.params, self.numbers[aidx],
                        np.concatenate([zero, np.cumsum(na)]), self.edge_src[eidx], self.edge_dst[eidx],
                        self.distance[eidx], np.concatenate([zero, np.cumsum(ne)]),
                        source_index=self.source_index[idx])

    # disk ----------------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Write one uncompressed .npz (atomically: a partial file is never left under the final name)."""
        path = Path(path)
        max_z = int(self.numbers.max()) if len(self.numbers) else 0
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez(
                f,
                material_ids=self.material_ids,
                source_index=self.source_index,
                numbers=self.numbers.astype(np.uint8 if max_z < 256 else np.int64),
                atom_ptr=self.atom_ptr,
                edge_src=self.edge_src,
                edge_dst=self.edge_dst,
                distance=self.distance,
                edge_ptr=self.edge_ptr,
                params=np.array(json.dumps(self.params.as_dict())),
                report=np.array(json.dumps(self.report, default=_json_default)),
                code_version=np.array(GRAPH_CODE_VERSION),
            )
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> GraphSet:
        """Read a GraphSet written by :meth:`save`."""
        with np.load(path, allow_pickle=False) as z:
            return cls(
                z["material_ids"], GraphParams.from_dict(json.loads(str(z["params"]))), z["numbers"],
                z["atom_ptr"], z["edge_src"], z["edge_dst"], z["distance"], z["edge_ptr"],
                report=json.loads(str(z["report"])), source_index=z["source_index"],
            )


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def summarize(gs: GraphSet) -> dict:
    """Counts that say how well the graphs cover the crystals (computed from the degrees alone).

    atoms_fewer_than_k / structures_fewer_than_k: atoms (structures with atoms) that have fewer than
    k neighbours within the cutoff ("cgcnn" only). isolated_atoms / isolated_ids: atoms with no
    neighbour at all, and the ids of the structures that hold them.
    """
    deg = gs.degrees()
    crystal_of_atom = np.repeat(np.arange(len(gs)), gs.n_atoms)
    iso = deg == 0
    iso_struct = np.unique(crystal_of_atom[iso])
    rep: dict[str, Any] = {
        "params": gs.params.as_dict(),
        "n_structures": len(gs),
        "n_atoms": int(len(gs.numbers)),
        "n_edges": int(len(gs.edge_src)),
        "mean_degree": float(deg.mean()) if len(deg) else 0.0,
        "max_degree": int(deg.max()) if len(deg) else 0,
        "isolated_atoms": int(iso.sum()),
        "structures_with_isolated": int(len(iso_struct)),
        "isolated_ids": gs.material_ids[iso_struct].tolist(),
    }
    if gs.params.builder == "cgcnn":
        k = gs.params.max_neighbors
        few = deg < k
        rep["atoms_fewer_than_k"] = int(few.sum())
        rep["structures_fewer_than_k"] = int(len(np.unique(crystal_of_atom[few])))
        rep["edges_beyond_k_from_ties"] = int(np.maximum(deg - k, 0).sum())
    return rep


# --------------------------------------------------------------------------------------------------
# building a dataset's graphs: parallel, cached


def graph_cache_dir() -> Path:
    """Where GraphSets are cached: ``lib.paths.DATA / "graphs"`` (read at call time, so tests can redirect it)."""
    from lib import paths

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
        s, d, r = _neighbor_edges(lattice[c], frac[atom_ptr[c]:atom_ptr[c + 1]], params)
        srcs.append(s.astype(np.int32))
        dsts.append(d.astype(np.int32))
        dists.append(r.astype(np.float32))
        counts[c] = len(s)
    cat = np.concatenate
    return (cat(srcs) if srcs else np.zeros(0, np.int32), cat(dsts) if dsts else np.zeros(0, np.int32),
            cat(dists) if dists else np.zeros(0, np.float32), counts)


def _mp_context():
    import multiprocessing as mp

    methods = mp.get_all_start_methods()
    return mp.get_context("fork" if "fork" in methods and sys.platform.startswith("linux") else "spawn")


def _build_arrays(packed: dict, params: GraphParams, n_jobs: int, progress: bool, desc: str) -> tuple:
    """Edges of all packed crystals, in chunks, on ``n_jobs`` worker processes (in-process when 1)."""
    import multiprocessing as mp

    from tqdm import tqdm

    n = len(packed["lattice"])
    n_jobs = max(1, int(n_jobs if n_jobs and n_jobs > 0 else (os.cpu_count() or 1)))
    if mp.current_process().daemon:  # inside a pool worker: no children allowed, build here
        n_jobs = 1
    size = int(min(512, max(16, math.ceil(n / (8 * n_jobs))))) if n else 1
    bounds = [(a, min(a + size, n)) for a in range(0, n, size)]
    ptr = packed["atom_ptr"]
    pd = params.as_dict()
    tasks = ((packed["lattice"][a:b], packed["frac"][ptr[a]:ptr[b]], ptr[a:b + 1] - ptr[a], pd) for a, b in bounds)
    results = []
    bar = tqdm(total=n, desc=desc, unit="crystal", disable=not progress, file=sys.stderr, mininterval=0.5)
    try:
        if n_jobs == 1 or len(bounds) <= 1:
            for (a, b), t in zip(bounds, tasks):
                results.append(_build_chunk(t))
                bar.update(b - a)
        else:
            from lib.procs import die_with_parent  # workers die with this process, even on SIGKILL

            with _mp_context().Pool(processes=min(n_jobs, len(bounds)), initializer=die_with_parent,
                                    initargs=(os.getpid(),)) as pool:
                for (a, b), r in zip(bounds, pool.imap(_build_chunk, tasks)):
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
    crystals = [_as_crystal(c) for c in crystals]
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
    """Hex key of one GraphSet: data content and ids, builder parameters, isolated-atom policy, code version."""
    ids_hash = hashlib.sha256("\n".join(ids.tolist()).encode()).hexdigest()
    blob = json.dumps({"content": content_hash, "ids": ids_hash, "params": params.as_dict(),
                       "on_isolated": on_isolated, "code": GRAPH_CODE_VERSION, "tie_tol": TIE_TOL},
                      sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def _isolated_message(rep: dict, params: GraphParams, action: str) -> str:
    ids = rep["isolated_ids"]
    shown = ", ".join(ids[:5]) + (", ..." if len(ids) > 5 else "")
    bigger = max(5.0, params.cutoff + 1.0)
    return (f"lib.graphs: {len(ids)} structure(s) have atoms with no neighbour within {params.cutoff:g} Å "
            f"({rep['isolated_atoms']} atoms; {shown}); {action}. Remedy: raise the cutoff (e.g. to "
            f"{bigger:g} Å). All ids are in GraphSet.report['isolated_ids'].")


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
        gs = None
        if path.exists():
            t0 = time.perf_counter()
            try:
                gs = GraphSet.load(path)
            except Exception as exc:  # noqa: BLE001 - a damaged cache is rebuilt (as the data cache is)
                import warnings

                warnings.warn(f"rebuilding the unreadable graph cache {path} ({type(exc).__name__}: {exc})",
                              stacklevel=2)
                path.unlink(missing_ok=True)
        if gs is not None:
            gs.report["loaded_from"] = str(path)
            gs.report["load_seconds"] = time.perf_counter() - t0
            if gs.report.get("dropped_ids") and verbose:
                print(_isolated_message(gs.report["dropped_report"], params, "they were dropped"), file=sys.stderr)
            return gs

    t0 = time.perf_counter()
    packed = _pack(crystals)
    src, dst, dist, counts = _build_arrays(packed, params, n_jobs, progress,
                                           desc=f"graphs {params.tag}" + (f" ({name})" if name else ""))
    edge_ptr = np.concatenate([[0], np.cumsum(counts)])
    gs = GraphSet(ids, params, packed["numbers"], packed["atom_ptr"], src, dst, dist, edge_ptr)
    build_seconds = time.perf_counter() - t0
    rep = gs.report
    dropped: list[str] = []
    if rep["structures_with_isolated"]:
        if on_isolated == "error":
            raise ValueError(_isolated_message(rep, params, "stopping (on_isolated='error')"))
        if on_isolated == "drop":
            dropped = list(rep["isolated_ids"])
            keep = np.setdiff1d(np.arange(len(gs)), gs.index_of(dropped))
            iso_rep = dict(rep)
            gs = gs.subset(keep)
            gs.report["dropped_report"] = {k: iso_rep[k] for k in ("isolated_ids", "isolated_atoms")}
            if verbose:
                print(_isolated_message(iso_rep, params, "they were dropped (on_isolated='drop')"), file=sys.stderr)
        elif verbose:
            print(_isolated_message(rep, params, "they were kept (on_isolated='keep')"), file=sys.stderr)
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


# --------------------------------------------------------------------------------------------------
# distance expansion


class GaussianExpansion(nn.Module):
    """Distances -> Gaussian basis: exp(-(d - mu_g)^2 / width^2) for centres mu_g on [start, stop].

    Give the centres by number (``n``, evenly spaced, both ends included) or by ``step``; ``width``
    defaults to ``step``. forward: d (E,) -> (E, G). The centres are a buffer of the model.
    """

    def __init__(self, start: float, stop: float, n: int | None = None, width: float | None = None, *,
                 step: float | None = None) -> None:
        super().__init__()
        if (n is None) == (step is None):
            raise ValueError("give exactly one of n (number of centres) or step (spacing in Å)")
        if step is not None:
            if step <= 0:
                raise ValueError(f"step must be positive, got {step}")
            n = int(round((stop - start) / step)) + 1
            width = step if width is None else width
        if n is None or n < 1:
            raise ValueError(f"need at least one centre, got n={n}")
        if width is None or width <= 0:
            raise ValueError(f"width must be positive, got {width}")
        self.start, self.stop, self.width = float(start), float(stop), float(width)
        self.register_buffer("centers", torch.linspace(float(start), float(stop), int(n), dtype=torch.float32))

    @property
    def n_features(self) -> int:
        """G, the number of centres."""
        return int(self.centers.shape[0])

    def forward(self, d: torch.Tensor) -> torch.Tensor:
        return torch.exp(-((d.unsqueeze(-1) - self.centers) ** 2) / (self.width ** 2))

    def extra_repr(self) -> str:
        return f"start={self.start:g}, stop={self.stop:g}, n={self.n_features}, width={self.width:g}"


def cgcnn_gaussian(cutoff: float = 8.0, step: float = 0.2) -> GaussianExpansion:
    """Reference CGCNN basis: centres 0..cutoff every ``step`` Å (41 for 8 Å), width = step."""
    return GaussianExpansion(0.0, cutoff, step=step, width=step)


def megnet_gaussian(cutoff: float = 4.0, n: int = 100, width: float = 0.5) -> GaussianExpansion:
    """MEGNet basis: ``n`` = 100 centres on 0..cutoff+1 Å, width 0.5 Å."""
    return GaussianExpansion(0.0, cutoff + 1.0, n=n, width=width)


# --------------------------------------------------------------------------------------------------
# how the hyperparameters shape the graphs (02_graphs)


def environment_similarity(gs: GraphSet) -> np.ndarray:
    """(n,) per crystal: mean cosine similarity between the neighbour-element histograms of its atoms.

    Atom i's histogram counts its neighbours by element. Two atoms whose neighbours have the same
    composition score 1. A Na and a Cl that see only each other score 0. The value is the mean over
    pairs of distinct atoms that have at least one neighbour, and NaN for crystals with fewer than two
    such atoms. As the neighbourhoods grow, every atom sees the crystal's overall composition and the
    score goes to 1: "all atoms look alike".
    """
    from scipy import sparse

    if len(gs) == 0:
        return np.zeros(0)
    elements, el_idx = np.unique(gs.numbers, return_inverse=True)
    n_at = len(gs.numbers)
    shift = np.repeat(gs.atom_ptr[:-1], gs.n_edges)
    dst = gs.edge_dst.astype(np.int64) + shift
    src = gs.edge_src.astype(np.int64) + shift
    h = sparse.csr_matrix((np.ones(len(dst)), (dst, el_idx[src])), shape=(n_at, len(elements)))
    h.sum_duplicates()
    norm = np.sqrt(np.asarray(h.multiply(h).sum(axis=1)).ravel())
    has = norm > 0
    inv = np.zeros(n_at)
    inv[has] = 1.0 / norm[has]
    hn = sparse.diags(inv) @ h
    crystal = np.repeat(np.arange(len(gs)), gs.n_atoms)
    membership = sparse.csr_matrix((np.ones(n_at), (crystal, np.arange(n_at))), shape=(len(gs), n_at))
    s = membership @ hn
    sq = np.asarray(s.multiply(s).sum(axis=1)).ravel()
    m = np.bincount(crystal, weights=has.astype(float), minlength=len(gs))
    out = np.full(len(gs), np.nan)
    ok = m >= 2
    out[ok] = (sq[ok] - m[ok]) / (m[ok] * (m[ok] - 1))
    return out


def graph_sweep(data, params_list: Sequence[GraphParams], n_jobs: int = 2, progress: bool = True,
                cache: bool = False, name: str | None = None):
    """Build the graphs of ``data`` under each parameter set and measure them.

    Returns (table, degrees). table has one row per parameter set: builder, cutoff, k, mean/median/max
    degree, % of atoms with fewer than k neighbours (cgcnn), % of isolated atoms, % of structures with
    an isolated atom, mean neighbour-composition similarity (:func:`environment_similarity`), build
    seconds. degrees maps ``params.tag`` to every atom's number of neighbours. Structures with
    isolated atoms are kept here, because counting them is the point.
    """
    import pandas as pd

    rows, degrees = [], {}
    for p in params_list:
        gs = build_graphs(data, p, cache=cache, n_jobs=n_jobs, progress=progress, name=name, on_isolated="keep",
                          verbose=False)
        deg = gs.degrees()
        rep = gs.report
        n_at = max(rep["n_atoms"], 1)
        n_st = max(rep["n_structures"], 1)
        sim = environment_similarity(gs)
        rows.append({
            "builder": p.builder,
            "cutoff": p.cutoff,
            "k": p.max_neighbors,
            "n_structures": rep["n_structures"],
            "mean_degree": float(deg.mean()) if len(deg) else np.nan,
            "median_degree": float(np.median(deg)) if len(deg) else np.nan,
            "max_degree": int(deg.max()) if len(deg) else 0,
            "pct_atoms_fewer_than_k": 100.0 * rep["atoms_fewer_than_k"] / n_at if p.builder == "cgcnn" else np.nan,
            "pct_atoms_isolated": 100.0 * rep["isolated_atoms"] / n_at,
            "pct_structures_isolated": 100.0 * rep["structures_with_isolated"] / n_st,
            "env_similarity": float(np.nanmean(sim)) if np.isfinite(sim).any() else np.nan,
            "build_seconds": rep.get("build_seconds", np.nan),
        })
        degrees[p.tag] = deg
    return pd.DataFrame(rows), degrees
