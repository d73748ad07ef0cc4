"""A GraphSet held on the training device, its batches gathered there: no per-step host collation.

On a GPU, building each batch on the host (numpy gathers, then a host-to-device copy of every index and
distance array) costs more than the step itself for a small model such as CGCNN. :class:`DeviceGraphSet`
copies the whole set to the device once (the full CGCNN dataset is ~150 MB) and gathers a batch with a few
tensor operations there; ``lib.train.fit`` uses it when training on CUDA (``TrainConfig.resident``). Its
batches equal :meth:`lib.graphs.GraphSet.batch`'s exactly (``tests/test_graphs.py``), so results do not
depend on where batches are made.
"""

from __future__ import annotations

import numpy as np
import torch

from lib.graphs import GraphBatch, GraphSet


def _ranges(starts: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Concatenation of arange(s, s + l) for each (s, l), on the tensors' device."""
    total = int(lengths.sum())
    if total == 0:
        return starts.new_zeros(0)
    out_start = torch.cumsum(lengths, 0) - lengths
    return torch.arange(total, device=starts.device) + torch.repeat_interleave(starts - out_start, lengths)


class DeviceGraphSet:
    """The arrays of a :class:`GraphSet` as tensors on ``device``; ``batch(indices)`` -> GraphBatch there."""

    def __init__(self, graphs: GraphSet, device: str | torch.device):
        self.device = torch.device(device)
        self.graphs = graphs
        self.material_ids, self.params, self.report = graphs.material_ids, graphs.params, graphs.report
        dev = self.device
        self.numbers = torch.as_tensor(np.asarray(graphs.numbers, dtype=np.int64), device=dev)
        self.edge_src = torch.as_tensor(np.asarray(graphs.edge_src, dtype=np.int64), device=dev)
        self.edge_dst = torch.as_tensor(np.asarray(graphs.edge_dst, dtype=np.int64), device=dev)
        self.distance = torch.as_tensor(np.asarray(graphs.distance, dtype=np.float32), device=dev)
        self.atom_ptr = torch.as_tensor(np.asarray(graphs.atom_ptr, dtype=np.int64), device=dev)
        self.edge_ptr = torch.as_tensor(np.asarray(graphs.edge_ptr, dtype=np.int64), device=dev)

    def __len__(self) -> int:
        return len(self.graphs)

    def batch(self, indices) -> GraphBatch:
        """The crystals at ``indices`` (numpy or tensor) as one GraphBatch on the device."""
        idx = torch.as_tensor(np.ascontiguousarray(indices, dtype=np.int64), device=self.device).reshape(-1)
        na = self.atom_ptr[idx + 1] - self.atom_ptr[idx]
        ne = self.edge_ptr[idx + 1] - self.edge_ptr[idx]
        aidx = _ranges(self.atom_ptr[idx], na)
        eidx = _ranges(self.edge_ptr[idx], ne)
        shift = torch.repeat_interleave(torch.cumsum(na, 0) - na, ne)
        b = len(idx)
        return GraphBatch(
            numbers=self.numbers[aidx], edge_src=self.edge_src[eidx] + shift,
            edge_dst=self.edge_dst[eidx] + shift, distance=self.distance[eidx],
            crystal=torch.repeat_interleave(torch.arange(b, device=self.device), na), n_crystals=b)
