"""MEGNet (Chen, Ye, Zuo, Zheng & Ong, Chem. Mater. 31, 3564 (2019)) as a plain PyTorch module.

Follows the reference Keras implementation (materialsvirtuallab/megnet, ``make_megnet_model``):

- atoms: embedding of the atomic number (16) -> dense (64, 32);
- bonds: Gaussian expansion of the distance (100 centres on 0..cutoff+1 Å, width 0.5) -> dense (64, 32);
- state: a global vector (default two zeros) -> dense (64, 32);
- three MEGNet blocks; every block but the first starts with its own dense (64, 32) on each of the
  three; then the edge -> node -> state updates, each a three-layer MLP (64, 64, 32):
  e'_k = φe([v_i, v_j, e_k, u]), v'_i = φv([mean_k→i e'_k, v_i, u]), u' = φu([mean e', mean v', u]);
  the block's output is added to its input (residual);
- Set2Set readouts (3 steps, 16 hidden) over atoms and over bonds, concatenated with the state;
- head dense (32, 16) -> 1 (or, for classification, 2 log-probabilities: a log-softmax, as CGCNN's head).

All activations are the paper's shifted softplus ``softplus(x) - ln 2``. Message passing uses
``index_add_`` / ``scatter_reduce`` over the edge list of :class:`lib.graphs.GraphBatch`; there is no
Python loop over atoms or edges.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from lib.graphs import GraphBatch, megnet_gaussian
from lib.models.ops import segment_mean
from lib.models.registry import register


class ShiftedSoftplus(nn.Module):
    """softplus(x) - ln 2: zero at zero, MEGNet's activation."""

    def forward(self, x: Tensor) -> Tensor:
        return nn.functional.softplus(x) - math.log(2.0)


def mlp(sizes: list[int]) -> nn.Sequential:
    """Dense layers of the given sizes, each followed by the shifted softplus (as in MEGNet)."""
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:], strict=True):
        layers += [nn.Linear(a, b), ShiftedSoftplus()]
    return nn.Sequential(*layers)


class Set2Set(nn.Module):
    """Set2Set readout (Vinyals et al. 2016) as in MEGNet: order-invariant attention pooling per group.

    Inputs x (M, F) are first projected to m (M, H). With q* = 0, for each of ``steps`` steps:
    an LSTM step whose only input is q* gives h (B, H); scores e = m·h[group], softmax within each
    group, r = Σ softmax(e) m; q* = [h, r]. Returns q* (B, 2H). Like the reference, the LSTM step is a
    single dense map of q* (2H -> 4H) (no separate hidden-state weights); gates use the logistic
    sigmoid where Keras used its hard sigmoid.
    """

    def __init__(self, in_dim: int, hidden: int = 16, steps: int = 3):
        super().__init__()
        self.hidden, self.steps = hidden, steps
        self.proj = nn.Linear(in_dim, hidden)
        self.lstm = nn.Linear(2 * hidden, 4 * hidden)
        with torch.no_grad():  # unit forget bias, as Keras' default
            self.lstm.bias.zero_()
            self.lstm.bias[hidden : 2 * hidden] = 1.0

    def forward(self, x: Tensor, index: Tensor, n: int) -> Tensor:
        m = self.proj(x)
        h = x.new_zeros((n, self.hidden))
        c = x.new_zeros((n, self.hidden))
        q_star = x.new_zeros((n, 2 * self.hidden))
        for _ in range(self.steps):  # a fixed 3 steps over the whole batch, not a loop over atoms
            i, f, g, o = self.lstm(q_star).chunk(4, dim=-1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
            e = (m * h.index_select(0, index)).sum(-1)
            e_max = e.new_full((n,), -torch.inf).scatter_reduce_(0, index, e, "amax", include_self=True)
            a = torch.exp(e - e_max.index_select(0, index))
            denom = a.new_zeros(n).index_add_(0, index, a)
            a = a / denom.index_select(0, index)
            r = m.new_zeros((n, self.hidden)).index_add_(0, index, a[:, None] * m)
            q_star = torch.cat([h, r], dim=-1)
        return q_star


class MEGNetBlock(nn.Module):
    """One MEGNet block: optional dense pre-processing, edge -> node -> state updates, residual."""

    def __init__(self, dim: int = 32, hidden: tuple[int, int] = (64, 32),
                 update: tuple[int, int, int] = (64, 64, 32), pre: bool = True):
        super().__init__()
        self.pre = pre
        if pre:
            self.pre_v, self.pre_e, self.pre_u = (mlp([dim, *hidden]) for _ in range(3))
        d = hidden[-1] if pre else dim
        self.phi_e = mlp([4 * d, *update])
        self.phi_v = mlp([d + update[-1] + d, *update])
        self.phi_u = mlp([update[-1] + update[-1] + d, *update])

    def edge_update(self, v: Tensor, e: Tensor, u: Tensor, src: Tensor, dst: Tensor,
                    edge_graph: Tensor) -> Tensor:
        """φe([v_i, v_j, e_ij, u]) (E, 32) with its first layer split: W = [W_i | W_j | W_e | W_u].

        ``W_i v`` and ``W_j v`` are computed once per atom (one (N, d) @ (d, 2·64) product) and ``W_u u``
        once per crystal, then gathered per edge; only ``W_e e`` is a per-edge product (32 x 64 instead
        of 128 x 64 multiply-adds). Same parameters and values as the concatenated form
        (:meth:`edge_update_reference`).
        """
        first = self.phi_e[0]
        w, d = first.weight, v.shape[1]
        h = first.out_features
        pv = v @ torch.cat([w[:, :d], w[:, d : 2 * d]], dim=0).t()  # (N, 2h)
        z = torch.nn.functional.linear(e, w[:, 2 * d : 3 * d], first.bias)
        z = z + pv[:, :h].index_select(0, dst) + pv[:, h:].index_select(0, src)
        z = z + (u @ w[:, 3 * d :].t()).index_select(0, edge_graph)
        return self.phi_e[2:](self.phi_e[1](z))

    def edge_update_reference(self, v: Tensor, e: Tensor, u: Tensor, src: Tensor, dst: Tensor,
                              edge_graph: Tensor) -> Tensor:
        """φe on the explicit concatenation [v_i, v_j, e_ij, u] (tests only)."""
        return self.phi_e(torch.cat([v[dst], v[src], e, u[edge_graph]], dim=-1))

    def forward(self, v: Tensor, e: Tensor, u: Tensor, src: Tensor, dst: Tensor, atom_graph: Tensor,
                edge_graph: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        v0, e0, u0 = v, e, u
        if self.pre:
            v, e, u = self.pre_v(v), self.pre_e(e), self.pre_u(u)
        n_graphs = u.shape[0]
        e_new = self.edge_update(v, e, u, src, dst, edge_graph)
        v_new = self.phi_v(torch.cat([segment_mean(e_new, dst, v.shape[0]), v, u.index_select(0, atom_graph)],
                                     dim=-1))
        u_new = self.phi_u(torch.cat([segment_mean(e_new, edge_graph, n_graphs),
                                      segment_mean(v_new, atom_graph, n_graphs), u], dim=-1))
        return v0 + v_new, e0 + e_new, u0 + u_new


@register
class MEGNet(nn.Module):
    """MEGNet regression (one output) or classification (two classes) model on a :class:`GraphBatch`.

    forward(batch) -> (B,) predictions (normalised units), or (B, 2) log-probabilities if ``classification``
    (as CGCNN's classification head, so that XGNN explains either; ``F.cross_entropy`` gives the same loss on
    them as on logits).
    """

    def __init__(self, cutoff: float = 4.0, n_gaussians: int = 100, gaussian_width: float = 0.5,
                 embedding_dim: int = 16, n_blocks: int = 3, n1: int = 64, n2: int = 32, n3: int = 16,
                 state_dim: int = 2, set2set_steps: int = 3, max_z: int = 100, classification: bool = False):
        super().__init__()
        self.state_dim = state_dim
        self.classification = classification
        self.expand = megnet_gaussian(cutoff=cutoff, n=n_gaussians, width=gaussian_width)
        self.embedding = nn.Embedding(max_z + 1, embedding_dim)
        self.ff_v = mlp([embedding_dim, n1, n2])
        self.ff_e = mlp([n_gaussians, n1, n2])
        self.ff_u = mlp([state_dim, n1, n2])
        self.blocks = nn.ModuleList(
            MEGNetBlock(n2, (n1, n2), (n1, n1, n2), pre=i > 0) for i in range(n_blocks)
        )
        self.s2s_v = Set2Set(n2, n3, set2set_steps)
        self.s2s_e = Set2Set(n2, n3, set2set_steps)
        self.head = nn.Sequential(mlp([4 * n3 + n2, n2, n3]), nn.Linear(n3, 2 if classification else 1))

    def forward(self, batch: GraphBatch) -> Tensor:
        n = batch.n_crystals
        src, dst = batch.edge_src, batch.edge_dst
        atom_graph = batch.crystal
        edge_graph = atom_graph.index_select(0, dst)
        v = self.ff_v(self.embedding(batch.numbers))
        e = self.ff_e(self.expand(batch.distance))
        u = self.ff_u(v.new_zeros((n, self.state_dim)))
        for block in self.blocks:
            v, e, u = block(v, e, u, src, dst, atom_graph, edge_graph)
        out = self.head(torch.cat([self.s2s_v(v, atom_graph, n), self.s2s_e(e, edge_graph, n), u], dim=-1))
        return torch.log_softmax(out, dim=-1) if self.classification else out.squeeze(-1)
