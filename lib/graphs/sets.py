"""Many graphs at once: :class:`GraphBatch` (a batch as one disconnected graph, torch) and :class:`GraphSet`
(a dataset's graphs as flat arrays with offsets; batches by vectorised gathers; saved as one .npz)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lib.graphs.neighbors import GRAPH_CODE_VERSION, CrystalGraph, GraphParams
from lib.paths import atomic_path

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
    return np.arange(total, dtype=np.int64) + np.repeat(
        np.asarray(starts, dtype=np.int64) - out_start, lengths
    )


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

    def __init__(
        self,
        material_ids,
        params: GraphParams,
        numbers,
        atom_ptr,
        edge_src,
        edge_dst,
        distance,
        edge_ptr,
        report: dict | None = None,
        source_index=None,
    ) -> None:
        self.material_ids = np.asarray(material_ids, dtype=str)
        self.params = params
        self.numbers = np.asarray(numbers, dtype=np.int64)
        self.atom_ptr = np.asarray(atom_ptr, dtype=np.int64)
        self.edge_src = np.asarray(edge_src, dtype=np.int32)
        self.edge_dst = np.asarray(edge_dst, dtype=np.int32)
        self.distance = np.asarray(distance, dtype=np.float32)
        self.edge_ptr = np.asarray(edge_ptr, dtype=np.int64)
        n = len(self.material_ids)
        self.source_index = (
            np.arange(n, dtype=np.int64) if source_index is None else np.asarray(source_index, dtype=np.int64)
        )
        if not (len(self.atom_ptr) == len(self.edge_ptr) == n + 1 == len(self.source_index) + 1):
            raise ValueError(
                "material_ids, atom_ptr, edge_ptr and source_index disagree on the number of graphs"
            )
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
        return (
            f"GraphSet({len(self)} crystals, {len(self.numbers)} atoms, {len(self.edge_src)} edges, "
            f"{self.params.tag})"
        )

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
        return CrystalGraph(
            self.numbers[a0:a1].copy(),
            self.edge_src[e0:e1].astype(np.int64),
            self.edge_dst[e0:e1].astype(np.int64),
            self.distance[e0:e1].copy(),
        )

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
        """The crystals at ``indices`` as one :class:`GraphBatch` (vectorised gathers, no Python loop)."""
        _, na, ne, aidx, eidx = self._gather(indices)
        return _batch_from_arrays(
            self.numbers[aidx], self.edge_src[eidx], self.edge_dst[eidx], self.distance[eidx], na, ne
        )

    def subset(self, indices) -> GraphSet:
        """A new GraphSet of the crystals at ``indices`` (in that order); its report is recomputed."""
        idx, na, ne, aidx, eidx = self._gather(indices)
        zero = np.zeros(1, dtype=np.int64)
        return GraphSet(
            self.material_ids[idx],
            self.params,
            self.numbers[aidx],
            np.concatenate([zero, np.cumsum(na)]),
            self.edge_src[eidx],
            self.edge_dst[eidx],
            self.distance[eidx],
            np.concatenate([zero, np.cumsum(ne)]),
            source_index=self.source_index[idx],
        )

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
                z["material_ids"],
                GraphParams.from_dict(json.loads(str(z["params"]))),
                z["numbers"],
                z["atom_ptr"],
                z["edge_src"],
                z["edge_dst"],
                z["distance"],
                z["edge_ptr"],
                report=json.loads(str(z["report"])),
                source_index=z["source_index"],
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
