"""CGCNN (Xie & Grossman, PRL 120, 145301 (2018)) on edge lists, with the convolution's linear map split.

The network, as in the reference implementation (github.com/txie-93/cgcnn, ``cgcnn/model.py``):

    atom vectors (N, F)  --linear-->  (N, A)
    n_conv x  h_i <- softplus(h_i + BN(sum_j sigma(z_ij^f) * softplus(z_ij^c))),
              z_ij = BN(W [h_i, h_j, e_ij] + b)  split in halves z^f (filter), z^c (core)
    mean over the atoms of each crystal (B, A) -> softplus -> linear (B, H) -> softplus
    (n_h - 1) x [linear -> softplus]  ->  linear -> (B,) regression | (B, 2) log-probabilities

Edges are a list (``edge_src`` = neighbour j that sends, ``edge_dst`` = centre i that receives), so a
crystal may have any number of neighbours per atom (ties at the k-th distance included); messages are
summed with ``index_add_``: no Python loop over atoms or edges.

Speed: ``W [h_i, h_j, e_ij]`` equals ``W_s h_i + W_n h_j + W_e e_ij`` with ``W = [W_s | W_n | W_e]``.
The first two terms are computed once per atom, ``(N, A) @ (A, 4A)``, and gathered per edge, so an
edge costs ``G x 2A`` multiply-adds (41 x 128) instead of ``(2A + G) x 2A`` (169 x 128). The weight is
kept as the reference's single ``fc_full`` (same parameters, same state-dict layout), and
:meth:`CGCNNConv.reference_forward` computes the concatenated form for tests.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lib.graphs import atom_feature_table, cgcnn_gaussian
from lib.models.ops import segment_mean
from lib.models.registry import register


class CGCNNConv(nn.Module):
    """One CGCNN convolution on an edge list.

    forward(h (N, A), edge_fea (E, G), edge_src (E,), edge_dst (E,)) -> (N, A).
    """

    def __init__(self, atom_fea_len: int, edge_fea_len: int, aggregate: str = "sum"):
        super().__init__()
        self.atom_fea_len = atom_fea_len
        self.edge_fea_len = edge_fea_len
        self.aggregate = aggregate
        self.fc_full = nn.Linear(2 * atom_fea_len + edge_fea_len, 2 * atom_fea_len)
        self.bn1 = nn.BatchNorm1d(2 * atom_fea_len)
        self.bn2 = nn.BatchNorm1d(atom_fea_len)

    def edge_term(self, edge_fea: torch.Tensor) -> torch.Tensor:
        """``W_e e_ij + b``: (E, G) -> (E, 2A), the only per-edge matrix product."""
        a2 = 2 * self.atom_fea_len
        return F.linear(edge_fea, self.fc_full.weight[:, a2:], self.fc_full.bias)

    def atom_terms(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(W_s h, W_n h)``, each (N, 2A), from one (N, A) @ (A, 4A) product."""
        a = self.atom_fea_len
        w = self.fc_full.weight
        w_atoms = torch.cat([w[:, :a], w[:, a : 2 * a]], dim=0)  # (4A, A)
        p = h @ w_atoms.t()
        return p[:, : 2 * a], p[:, 2 * a :]

    def forward(
        self,
        h: torch.Tensor,
        edge_fea: torch.Tensor,
        edge_src: torch.Tensor,
        edge_dst: torch.Tensor,
    ) -> torch.Tensor:
        """Split-linear convolution (same values as :meth:`reference_forward`)."""
        p_self, p_nbr = self.atom_terms(h)
        e = self.edge_term(edge_fea)  # (E, 2A), a fresh tensor: accumulate into it in place
        if self._fused is not None:
            bn = self.bn1
            if self.training and bn.num_batches_tracked is not None:
                bn.num_batches_tracked.add_(1)
            for t in (e, p_self, p_nbr, edge_src, edge_dst):
                torch._dynamo.mark_dynamic(t, 0)
            try:
                msg = self._fused(e, p_self, p_nbr, edge_src, edge_dst, bn.weight, bn.bias,
                                  bn.running_mean, bn.running_var, self.training, bn.momentum, bn.eps)
            except torch._dynamo.exc.BackendCompilerFailed as err:  # e.g. no C++ compiler on this machine
                warnings.warn(f"torch.compile failed ({str(err).splitlines()[0][:200]}); CGCNN goes on "
                              "uncompiled", stacklevel=2)
                self._fused = None
                if self.training and bn.num_batches_tracked is not None:
                    bn.num_batches_tracked.add_(-1)
                return self.forward(h, edge_fea, edge_src, edge_dst)
        else:
            e += p_self.index_select(0, edge_dst)
            e += p_nbr.index_select(0, edge_src)
            msg = self._gate(e)
        return self._sum(h, msg, edge_dst)

    def reference_forward(
        self, h: torch.Tensor, edge_fea: torch.Tensor, edge_src: torch.Tensor, edge_dst: torch.Tensor
    ) -> torch.Tensor:
        """The reference's form: one linear map on the concatenation [h_i, h_j, e_ij] (tests only)."""
        z = self.fc_full(torch.cat([h[edge_dst], h[edge_src], edge_fea], dim=1))
        return self._sum(h, self._gate(z), edge_dst)

    def _gate(self, z: torch.Tensor) -> torch.Tensor:
        """(E, 2A) -> (E, A): batch norm, then sigmoid(filter) * softplus(core)."""
        filt, core = self.bn1(z).chunk(2, dim=1)
        return torch.sigmoid(filt) * F.softplus(core)

    def _sum(self, h: torch.Tensor, msg: torch.Tensor, edge_dst: torch.Tensor) -> torch.Tensor:
        """Sum (or average) the messages into their centre atoms, batch norm, residual, softplus: (N, A)."""
        if self.aggregate == "mean":
            summed = segment_mean(msg, edge_dst, h.shape[0])
        else:
            summed = torch.zeros_like(h).index_add_(0, edge_dst, msg)
        return F.softplus(h + self.bn2(summed))

    _fused = None  # set by CGCNN.compile_hot_path(): a torch.compile'd _fused_messages


def _fused_messages(e, p_self, p_nbr, edge_src, edge_dst, weight, bias, running_mean, running_var,
                    training: bool, momentum: float, eps: float) -> torch.Tensor:
    """Gather + add + batch norm + gate as one pure function, for torch.compile to fuse (E, A)."""
    z = e + p_self[edge_dst] + p_nbr[edge_src]
    z = F.batch_norm(z, running_mean, running_var, weight, bias, training, momentum, eps)
    filt, core = z.chunk(2, dim=1)
    return torch.sigmoid(filt) * F.softplus(core)


@register
class CGCNN(nn.Module):
    """Crystal Graph Convolutional Neural Network on a ``lib.graphs.GraphBatch``.

    Parameters (defaults: the thesis's Table 3, which are the reference's defaults)
    ----------
    atom_features : (Zmax+1, F) table of atom vectors, row Z for atomic number Z; kept as a
        non-trainable buffer. None: CGCNN's 92-long one-hot vectors (``lib.graphs.atom_feature_table``).
        07_xgnn passes a table of periodic group/period one-hots instead.
    atom_fea_len : hidden atom features A (64).
    n_conv : convolutions (3).
    h_fea_len : features after pooling H (128).
    n_h : hidden dense layers after pooling, the first being the pooled -> H map (1).
    cutoff, step : Gaussian basis of the distances, centres 0..cutoff every ``step`` Å, width ``step``
        (take ``cutoff`` from the graphs' ``GraphParams``).
    use_distance : False for graphs without geometry (XGNN's generated graphs): every edge gets the
        same constant feature (1,), so only connectivity matters; ``batch.distance`` is not read.
    aggregate : "sum" (the reference) or "mean" of the messages into an atom. 07_xgnn uses "mean": its
        generated graphs have at most 4 neighbours per atom where crystals have 8 or more, and with a
        sum the batch norm fitted on crystals maps every small graph to nearly the same output.
    classification : two-class head. The output is then (B, 2) **log-probabilities** (log-softmax,
        as the reference), with dropout (p=``dropout``) after pooling as the reference; ``exp`` gives
        probabilities, and ``F.cross_entropy`` / ``F.nll_loss`` both give the right loss on it.
        Regression outputs (B,).

    forward(batch) -> (B,) or (B, 2), where ``batch`` has ``numbers`` (N,), ``edge_src``/``edge_dst``
    (E,), ``distance`` (E,), ``crystal`` (N,) in 0..B-1 and ``n_crystals`` = B.
    """

    @staticmethod
    def canonical_args(args: dict) -> dict:
        """The arguments as a checkpoint keeps them (``lib.models.registry.register``): the atom feature table
        itself, a float32 tensor (None: CGCNN's one-hot table), and ``aggregate`` only when it is not the
        reference's sum, so that the specs (and resume keys) of runs made before it existed do not change."""
        table = args["atom_features"] if args["atom_features"] is not None else atom_feature_table()
        args = {**args, "atom_features": torch.as_tensor(np.asarray(table, dtype=np.float32)).clone()}
        if args.get("aggregate") == "sum":
            del args["aggregate"]
        return args

    def __init__(
        self,
        atom_features: np.ndarray | torch.Tensor | None = None,
        atom_fea_len: int = 64,
        n_conv: int = 3,
        h_fea_len: int = 128,
        n_h: int = 1,
        cutoff: float = 8.0,
        step: float = 0.2,
        use_distance: bool = True,
        classification: bool = False,
        n_classes: int = 2,
        dropout: float = 0.5,
        aggregate: str = "sum",
    ):
        super().__init__()
        if aggregate not in ("sum", "mean"):
            raise ValueError(f"aggregate must be 'sum' or 'mean', got {aggregate!r}")
        if atom_features is None:
            atom_features = atom_feature_table()
        table = torch.as_tensor(np.asarray(atom_features, dtype=np.float32)).clone()
        if table.ndim != 2:
            raise ValueError(f"atom_features must be a (Zmax+1, F) table, got shape {tuple(table.shape)}")
        if n_h < 1 or n_conv < 0:
            raise ValueError(f"need n_h >= 1 and n_conv >= 0, got n_h={n_h}, n_conv={n_conv}")
        self.classification = classification
        self.use_distance = use_distance
        self.register_buffer("atom_features", table)
        if use_distance:
            self.expansion = cgcnn_gaussian(cutoff=cutoff, step=step)
            with torch.no_grad():
                edge_fea_len = int(self.expansion(torch.zeros(1)).shape[-1])
        else:
            self.expansion = None
            edge_fea_len = 1
        self.edge_fea_len = edge_fea_len
        self.embedding = nn.Linear(table.shape[1], atom_fea_len)
        self.convs = nn.ModuleList(CGCNNConv(atom_fea_len, edge_fea_len, aggregate) for _ in range(n_conv))
        self.conv_to_fc = nn.Linear(atom_fea_len, h_fea_len)
        self.fcs = nn.ModuleList(nn.Linear(h_fea_len, h_fea_len) for _ in range(n_h - 1))
        self.dropout = nn.Dropout(dropout) if classification else nn.Identity()
        self.fc_out = nn.Linear(h_fea_len, n_classes if classification else 1)

    @classmethod
    def from_graph_params(cls, params, **kwargs) -> CGCNN:
        """A CGCNN whose Gaussian basis reaches the graphs' cutoff (``params``: GraphParams or dict)."""
        cutoff = params["cutoff"] if isinstance(params, dict) else params.cutoff
        kwargs.setdefault("cutoff", cutoff)
        return cls(**kwargs)

    def compile_hot_path(self, **compile_kwargs) -> CGCNN:
        """torch.compile the memory-bound part of every convolution (gather, batch norm, gate) and the
        Gaussian expansion; the matrix products and the scatter stay eager.

        Only the number of edges and atoms is dynamic (``mark_dynamic`` on dim 0): with the feature
        sizes fixed, inductor writes tighter loops than with ``dynamic=True`` (measured 66 vs 84 ms of
        CPU per fused forward+backward of 85k edges, eager 100 ms). On CPU inductor writes C++ kernels
        (gcc); the first batches take ~10-20 s to compile.
        """
        fused = torch.compile(_fused_messages, **compile_kwargs)
        for conv in self.convs:
            conv._fused = fused
        if self.expansion is not None:
            self._expand = torch.compile(self.expansion.forward, **compile_kwargs)
        return self

    _expand = None

    def edge_features(self, batch) -> torch.Tensor:
        """(E, G) Gaussian-expanded distances, or (E, 1) ones without geometry."""
        if self.expansion is None:
            return torch.ones(batch.edge_src.shape[0], 1, device=self.atom_features.device)
        if self._expand is not None:
            torch._dynamo.mark_dynamic(batch.distance, 0)
            try:
                return self._expand(batch.distance)
            except torch._dynamo.exc.BackendCompilerFailed:  # warned about by the convolutions
                self._expand = None
        return self.expansion(batch.distance)

    def atom_embeddings(self, batch) -> torch.Tensor:
        """(N, A) atom features after the convolutions."""
        # linear map of the table's rows, then one row per atom: same values as mapping the gathered
        # (N, F) vectors, at (Zmax+1) x F x A multiply-adds instead of N x F x A.
        h = self.embedding(self.atom_features).index_select(0, batch.numbers)
        if len(self.convs):
            edge_fea = self.edge_features(batch)
            for conv in self.convs:
                h = conv(h, edge_fea, batch.edge_src, batch.edge_dst)
        return h

    def crystal_features(self, batch) -> torch.Tensor:
        """(B, A) mean of each crystal's atom features."""
        return segment_mean(self.atom_embeddings(batch), batch.crystal, int(batch.n_crystals))

    def forward(self, batch) -> torch.Tensor:
        """(B,) predictions (normalised target), or (B, 2) log-probabilities when classifying."""
        x = F.softplus(self.conv_to_fc(F.softplus(self.crystal_features(batch))))
        x = self.dropout(x)
        for fc in self.fcs:
            x = F.softplus(fc(x))
        out = self.fc_out(x)
        if self.classification:
            return F.log_softmax(out, dim=1)
        return out.squeeze(1)
