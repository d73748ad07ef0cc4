"""XGNN (Yuan, Tang, Hu & Ji, KDD 2020): model-level explanations of a CGCNN classifier, by generating graphs.

Three parts, top to bottom.

**The classifier.** A property is discretised at the median of its training split: a value ≤ the
median is class 0 ("low"), above it class 1 ("high"). A CGCNN with the classification head
(:func:`make_classifier`) reads atoms that carry only a periodic label, their group (18 labels) or
their period (7), as one-hot rows of an identity table (:mod:`lib.periodic` maps atomic numbers to
labels; :class:`LabelledGraphs` applies the map when a batch is built, the graph cache is untouched).

*Edges carry no geometry.* XGNN's generated graphs have atoms and bonds but no positions, so the
classifier must be one that can read them: it is built with ``use_distance=False`` and every edge gets
the same constant feature (1,). The real crystals keep their CGCNN graphs (k = 8 nearest neighbours
within 8 Å, ties kept, several images of one neighbour possible), read as connectivity only.

*Messages are averaged, not summed* (``CGCNN(aggregate="mean")``). A crystal's atom has 8 or more
neighbours, a generated graph's at most 4. With the reference's sum, the convolution's batch norm
(fitted on crystals) sends every small graph to nearly the same output: measured on 3,000 crystals
(classifiers of 8 epochs), 2,000 graphs of an untrained generator all got p(high band gap) in
0.68-0.74 and p(high formation energy) in 0.47-0.53, so no graph could reach 0.8 and nothing could
be explained. With the mean, an atom reads the labels around it whatever their number; the same
graphs then span p = 0.00-0.92 (band gap) and
0.03-1.00 (formation energy), at test accuracies of 0.74 vs 0.79 (band gap, by group, 8 epochs) and
0.90 vs 0.88 (formation energy). The classifier thus learns which labels sit next to which; a
generated graph is still smaller and sparser than any crystal (an explanation says what drives the
classifier, not what a crystal looks like: see the enrichment comparison below).

**The generator** (:class:`XGNNPolicy`, :class:`XGNN`). The graph grows one edge per step. A GCN (a
linear map of the one-hot labels, then three graph convolutions with symmetric normalisation and self
loops) embeds the current graph together with one isolated candidate node per label. An MLP scores the
existing atoms and the start atom is sampled from their softmax; a second MLP scores every node given
the start atom's embedding ``[x_j, x_start]``, and the end node is sampled among the existing atoms
(not the start) and the candidates (a candidate adds a new atom of its label). Candidates are the
labels that occur in the classifier's training crystals: a label the classifier never saw (group 18)
has an untrained embedding that a generator could exploit.

Reward of the action that makes G_{t+1} (the paper's Eqs. 3-6, two classes):

    R_t = p(c | G_{t+1}) - 1/2  +  λ1 · mean_i [p(c | Ĝ_i) - 1/2]        (valid G_{t+1})
    R_t = -λ2                                                        (invalid G_{t+1})

where Ĝ_1..Ĝ_m are ``n_rollouts`` = m Monte-Carlo rollouts of the current policy from G_{t+1} to the end
of the episode (``max_steps`` actions in all), λ1 = ``rollout_weight`` = 1 and λ2 = ``rules_weight`` =
2 (the paper's code: hyp1 = 1, hyp2 = 2, 10 rollouts; its rules reward is −1, times λ2). The classifier
is never asked about an invalid graph. The policy gradient step (REINFORCE) minimises
``-R_t · (log p_start + log p_end)`` after every action (the paper writes its Eq. 7 with cross-entropy
terms; this is the REINFORCE gradient: an action with a positive reward becomes more likely, one with a
negative reward less). An action is **rolled back** when
R_t < 0: invalid actions always, and valid ones that lower the target probability below what the
rollouts promise.

Two additions of ours, for robustness, chosen on the quick profile's classifiers with 7 generator seeds
per case. With the paper's algorithm alone (Adam, lr 0.01), 2 of 7 generators for the formation energy by
group (class low) and 1 of 7 for the band gap by period (class high) never sampled a graph above 0.8
after 500 episodes: some never find a good action (every reward negative, every action rolled back),
others find one and then collapse after a large update. (1) A **baseline**: the policy gradient uses
R_t minus the mean R_t of the step over the batch's episodes (``baseline``; the expected gradient is
unchanged, its variance lower), so that among all-negative rewards the less bad actions still gain.
(2) The generator **keeps its best weights** (``keep_best``): after every batch of episodes it samples
64 graphs, scores the share that would be kept (p > 0.8), and training ends with the best-scoring
weights, as ``lib.train`` keeps the best epoch. With both, every one of 7 seeds kept 42-97% of its
graphs in the three hardest cases, at 500 and at 2,000 episodes. The rollback, the rules penalty and the
reward itself are the paper's; the rollback decision uses R_t, not the baselined value.

Validity (the thesis's rules): at most 6 atoms, at most 4 neighbours per atom, no self-loop, no
duplicate edge. Graphs are undirected; the classifier sees each edge as two directed edges.

Everything is batched: ``batch_episodes`` episodes run side by side, their m rollouts each run as one
batch of B·m dense graphs, and every classifier call collates all graphs of that call into one
``GraphBatch`` (:meth:`GraphState.to_batch`), so a step costs a handful of tensor operations whatever B.

**Explanations** (:meth:`XGNN.explain`). The trained policy grows graphs for ``max_steps`` actions from
a start atom of a random allowed label; invalid actions are undone, the other actions are the policy's
own (``rollback_generation=False``: with training's reward rollback, a start atom far from the class could
never grow, since each single step still leaves p < 1/2). A graph is kept when the classifier gives its
class a probability above 0.8, until ``Profile.xgnn_per_class`` are kept (or ``max_attempts`` graphs,
default 200 per requested one, were tried); the file records how many were tried. :func:`explain_classifier`
does both classes and writes ``results/xgnn/<property>_<labelling>_<profile>_s<seed>.json``.

**Beside the data** (:func:`enrichment_table`). For each label and label pair: its frequency in the high
class over the low class (log2, with a pseudo-count of 1/2) in the explanations and in the real crystals
(atoms, and the CGCNN graph's directed edges), side by side.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lib import periodic
from lib.graphs import GraphBatch, GraphSet

CLASS_NAMES = ("low", "high")
#: the thesis's figure numbers (15/16: band gap by group/period, 17/18: formation energy)
THESIS_FIGURES = {
    ("band_gap", "group"): "fig15_xgnn_band_gap_group.png",
    ("band_gap", "period"): "fig16_xgnn_band_gap_period.png",
    ("formation_energy_per_atom", "group"): "fig17_xgnn_formation_energy_per_atom_group.png",
    ("formation_energy_per_atom", "period"): "fig18_xgnn_formation_energy_per_atom_period.png",
}

__all__ = [
    "CLASS_NAMES", "THESIS_FIGURES", "CLASSIFIER_TRAINING", "LabelledGraphs", "discretise", "make_classifier",
    "ClassifierRun",
    "train_classifier", "XGNNConfig", "GraphState", "step", "XGNNPolicy", "XGNN", "training_episodes",
    "explain_classifier", "explanations_path", "load_explanations", "graph_problems", "canonical_form",
    "explanation_counts", "crystal_counts", "enrichment", "enrichment_table", "enrichment_agreement",
    "figure_name", "classifier_model_name",
]


# ==================================================================================================
# the classifier


class LabelledGraphs:
    """A :class:`~lib.graphs.GraphSet` seen through a labelling: ``batch()`` turns atomic numbers into
    label indices (group − 1 or period − 1) for the classifier; the GraphSet itself is not changed.

    Quacks like a GraphSet for ``lib.train.fit``: ``batch``, ``__len__``, ``params``, ``material_ids``.
    """

    def __init__(self, graphs: GraphSet, labelling: str) -> None:
        self.graphs = graphs
        self.labelling = periodic.check_labelling(labelling)
        self.n_labels = periodic.n_labels(labelling)
        z = graphs.numbers
        bad = (z < 1) | (z > periodic.Z_MAX)
        if bad.any():
            atom = int(np.flatnonzero(bad)[0])
            crystal = int(np.searchsorted(graphs.atom_ptr, atom, side="right") - 1)
            raise ValueError(f"{graphs.material_ids[crystal]} has atomic number {int(z[atom])}, which has no "
                             f"periodic {labelling}; drop it from the table first")
        self._table = torch.from_numpy(periodic.label_index_table(labelling).copy())

    @property
    def params(self):
        return self.graphs.params

    @property
    def material_ids(self) -> np.ndarray:
        return self.graphs.material_ids

    def __len__(self) -> int:
        return len(self.graphs)

    def __repr__(self) -> str:
        return f"LabelledGraphs({self.labelling}, {self.graphs!r})"

    def batch(self, indices) -> GraphBatch:
        """``graphs.batch(indices)`` with ``numbers`` replaced by label indices (N,) in 0..n_labels−1."""
        b = self.graphs.batch(indices)
        return dataclasses.replace(b, numbers=self._table.index_select(0, b.numbers))

    def atom_labels(self) -> np.ndarray:
        """(total_atoms,) label index of every atom of the set, in atom order."""
        return periodic.label_index_table(self.labelling)[self.graphs.numbers]


def discretise(values: np.ndarray, train_idx: np.ndarray) -> tuple[np.ndarray, float]:
    """(labels, threshold): class 1 where the value is above the training split's median, else 0."""
    values = np.asarray(values, dtype=np.float64)
    thr = float(np.median(values[np.asarray(train_idx)]))
    return (values > thr).astype(np.int64), thr


def make_classifier(labelling: str, **kwargs: Any):
    """A CGCNN classifier on one-hot labels, connectivity only (``use_distance=False``), neighbours averaged
    (``aggregate="mean"``, see the module docstring).

    kwargs go to :class:`lib.models.cgcnn.CGCNN` (defaults: the thesis's Table 3 sizes).
    """
    from lib.models.cgcnn import CGCNN

    n = periodic.n_labels(labelling)
    kwargs = {"atom_features": np.eye(n, dtype=np.float32), "use_distance": False, "classification": True,
              "aggregate": "mean", **kwargs}
    return CGCNN(**kwargs)


#: how the label classifiers train, over lib.train's defaults (the thesis's SGD, lr 0.01, momentum 0.9):
#: batches of 64 instead of 256. On the quick profile's 1,200 training crystals, batches of 256 make 5
#: steps an epoch; the epoch with the best validation accuracy was then a classifier that gave every test
#: crystal p(high band gap) = 0.43-0.54 (accurate, but never confident), and no generated graph reached
#: p > 0.8 in 30,000 tries. With 64: 68% of the test crystals above 0.8 (0.80 test accuracy), and the
#: generators find explanations for both classes.
CLASSIFIER_TRAINING = {"batch_size": 64}


def classifier_model_name(labelling: str) -> str:
    """The ``model`` of a classifier's run record: ``cgcnn_cls_group`` or ``cgcnn_cls_period``."""
    return f"cgcnn_cls_{periodic.check_labelling(labelling)}"


@dataclass
class ClassifierRun:
    """A trained (or loaded) label classifier with the data it was trained on."""

    model: nn.Module  # eval mode; forward(GraphBatch of label indices) -> (B, 2) log-probabilities
    property: str
    labelling: str
    threshold: float  # class 1: value > threshold (the training split's median)
    graphs: LabelledGraphs
    values: np.ndarray  # (n,) the property, aligned with graphs
    y: np.ndarray  # (n,) class labels
    split: dict[str, np.ndarray]
    labels_seen: np.ndarray  # label indices that occur in the training crystals
    record: dict

    @property
    def n_labels(self) -> int:
        return periodic.n_labels(self.labelling)

    @property
    def test_accuracy(self) -> float:
        return float(self.record["metrics"]["test"]["accuracy"])

    def summary(self) -> dict:
        """One row for a table: run, threshold, class balance, split sizes, accuracies."""
        tr = self.y[self.split["train"]]
        return {
            "run": self.record["run"], "property": self.property, "labelling": self.labelling,
            "threshold": self.threshold, "unit": self.record.get("unit"),
            "train_share_high": float(tr.mean()), **{f"n_{k}": int(len(v)) for k, v in self.split.items()},
            "val_accuracy": float(self.record["metrics"]["val"]["accuracy"]),
            "test_accuracy": self.test_accuracy, "epochs": self.record.get("epochs_run"),
            "train_time_s": self.record.get("train_time_s"),
        }


def train_classifier(
    df,
    property: str,
    labelling: str,
    profile: Any = "smoke",
    seed: int = 0,
    *,
    graph_params=None,
    runs_dir: str | Path | None = None,
    n_jobs: int = 2,
    progress: bool = True,
    model_kwargs: dict | None = None,
    config=None,
    **overrides: Any,
) -> ClassifierRun:
    """Train the label classifier of ``property`` (or go on from / reload its saved state).

    The profile's subsample (``n_max``) of the rows that have the property, their CGCNN graphs (cached
    by ``lib.graphs``), the random 80:10:10 split of ``seed``, the median split of the training values,
    then ``lib.train.fit`` with the classification task and the profile's epochs. The run record is
    ``<runs_dir>/cgcnn_cls_<labelling>_<property>_<profile>_s<seed>.json`` (default ``results/runs``) and
    holds the test accuracy; a finished run is reloaded from its saved state instead of retrained.
    ``overrides`` are TrainConfig fields; without ``config``, :data:`CLASSIFIER_TRAINING` applies first.
    """
    from lib import data as ldata
    from lib.graphs import build_graphs, cgcnn_params
    from lib.profiles import get_profile
    from lib.train import TrainConfig, fit, seed_everything

    prof = get_profile(profile)
    periodic.check_labelling(labelling)
    frame = ldata.target_frame(df, property, n_max=prof.n_max, seed=seed)
    params = graph_params or cgcnn_params()
    gs = build_graphs(frame, params, name=f"cgcnn_{property}", n_jobs=n_jobs, progress=progress)
    values = frame[property].to_numpy(dtype=np.float64)[gs.source_index]
    sp = ldata.split(len(gs), seed)
    y, thr = discretise(values, sp["train"])
    lg = LabelledGraphs(gs, labelling)
    crystal_of_atom = np.repeat(np.arange(len(gs)), gs.n_atoms)
    train_atoms = np.isin(crystal_of_atom, sp["train"])
    seen = np.unique(lg.atom_labels()[train_atoms])

    seed_everything(seed)
    model = make_classifier(labelling, **(model_kwargs or {}))
    base = {"task": "classification", "epochs": prof.epochs,
            **(CLASSIFIER_TRAINING if config is None else {})}
    cfg = (config or TrainConfig()).replace(**{**base, **overrides})
    extra = {"xgnn": {
        "labelling": labelling, "threshold": thr,
        "class_rule": "class 1 (high): value > the training split's median; class 0 (low): value <= it",
        "train_share_high": float(y[sp["train"]].mean()), "labels_seen": (seen + 1).tolist(),
        "edges": "CGCNN k-nearest graph, connectivity only (constant edge feature), messages averaged",
    }}
    record = fit(model, lg, y, sp, cfg, property=property, seed=seed, profile=prof,
                 model_name=classifier_model_name(labelling), runs_dir=runs_dir,
                 content_hash=frame.attrs.get("content_hash"), progress=progress, extra=extra)
    model.eval()
    return ClassifierRun(model, property, labelling, thr, lg, values, y, sp, seen, record)


# ==================================================================================================
# the generator: graph states, rules, policy


@dataclass(frozen=True)
class XGNNConfig:
    """Generator settings. Defaults: the thesis's rules and the XGNN paper's weights."""

    max_atoms: int = 6  # rule: at most 6 atoms
    max_degree: int = 4  # rule: at most 4 neighbours per atom
    max_steps: int = 10  # actions per episode (and per generated explanation)
    n_rollouts: int = 10  # m, Monte-Carlo rollouts per action
    rollout_weight: float = 1.0  # λ1
    rules_weight: float = 2.0  # λ2: an invalid action earns −λ2
    gcn_dims: tuple[int, ...] = (8, 16, 24, 32)  # input map, then one GCN layer per further entry
    lr: float = 0.01  # Adam (the paper's)
    batch_episodes: int = 32  # episodes run side by side (one policy step each per action)
    keep_threshold: float = 0.8  # an explanation is kept when p(its class) is above this
    generate_batch: int = 256  # graphs grown side by side while explaining
    max_attempts: int | None = None  # per class, give up after this many graphs; None: 200 per requested
    num_threads: int | None = 1  # torch threads while training/explaining (tiny tensors: 1 is fastest)
    baseline: bool = True  # subtract the step's mean reward over the batch's episodes (not in the paper)
    keep_best: bool = True  # end training with the weights whose policy samples scored best (see train)
    eval_graphs: int = 64  # policy samples scored after every batch of episodes (for keep_best and history)
    mask_invalid: bool = False  # True: invalid actions get probability 0 (not the paper: it penalises them)
    rollback_generation: bool = False  # while explaining, also undo actions that push p(class) below 1/2

    def replace(self, **overrides: Any) -> XGNNConfig:
        """A copy with some fields changed (unknown names are an error)."""
        from lib.train import strict_replace

        return strict_replace(self, **overrides)

    def as_dict(self) -> dict:
        d = asdict(self)
        d["gcn_dims"] = list(self.gcn_dims)
        return d


@dataclass
class GraphState:
    """A batch of B small undirected graphs as dense tensors (atoms fill slots 0..n−1 in order).

    labels: (B, M) long label index, −1 for an empty slot.  adj: (B, M, M) bool, symmetric.
    """

    labels: torch.Tensor
    adj: torch.Tensor

    @classmethod
    def single_atoms(cls, labels: torch.Tensor, max_atoms: int) -> GraphState:
        """B one-atom graphs with the given (B,) labels."""
        b = labels.shape[0]
        lab = torch.full((b, max_atoms), -1, dtype=torch.long)
        lab[:, 0] = labels
        return cls(lab, torch.zeros(b, max_atoms, max_atoms, dtype=torch.bool))

    @property
    def size(self) -> int:
        return int(self.labels.shape[0])

    @property
    def n_atoms(self) -> torch.Tensor:
        """(B,) atoms per graph."""
        return (self.labels >= 0).sum(1)

    def degree(self) -> torch.Tensor:
        """(B, M) neighbours of every slot."""
        return self.adj.sum(2)

    def select(self, index: torch.Tensor) -> GraphState:
        """The graphs at ``index`` (bool mask or indices)."""
        return GraphState(self.labels[index], self.adj[index])

    def repeat(self, m: int) -> GraphState:
        """Each graph m times in a row: (B·m) graphs, graph b's copies at b·m..b·m+m−1."""
        return GraphState(self.labels.repeat_interleave(m, 0), self.adj.repeat_interleave(m, 0))

    def where(self, cond: torch.Tensor, other: GraphState) -> GraphState:
        """Graph b from self where cond[b], else from ``other``."""
        return GraphState(torch.where(cond[:, None], self.labels, other.labels),
                          torch.where(cond[:, None, None], self.adj, other.adj))

    def to_batch(self) -> GraphBatch:
        """One ``GraphBatch`` of all B graphs (each edge both ways, distance 0), for the classifier."""
        exists = self.labels >= 0
        gid = exists.reshape(-1).cumsum(0).reshape(exists.shape) - 1
        b, i, j = self.adj.nonzero(as_tuple=True)  # both directions: adj is symmetric
        crystal = torch.arange(self.size).unsqueeze(1).expand_as(exists)[exists]
        return GraphBatch(numbers=self.labels[exists], edge_src=gid[b, j], edge_dst=gid[b, i],
                          distance=torch.zeros(b.shape[0]), crystal=crystal, n_crystals=self.size)

    def graphs(self) -> list[tuple[list[int], list[tuple[int, int]]]]:
        """Plain (labels, edges i < j) per graph."""
        lab = self.labels.numpy()
        b, i, j = (t.numpy() for t in torch.triu(self.adj, diagonal=1).nonzero(as_tuple=True))
        out = []
        starts = np.searchsorted(b, np.arange(self.size + 1))
        for k in range(self.size):
            s, e = starts[k], starts[k + 1]
            out.append(([int(x) for x in lab[k][lab[k] >= 0]], list(zip(i[s:e].tolist(), j[s:e].tolist(),
                                                                         strict=True))))
        return out


def step(state: GraphState, start: torch.Tensor, end: torch.Tensor, max_degree: int = 4
         ) -> tuple[GraphState, torch.Tensor]:
    """Apply one action per graph: an edge start–end, where end ≥ M means "a new atom of label end − M".

    Returns (new state, valid (B,) bool). An invalid action (a new atom beyond M = max atoms, a self
    loop, a duplicate edge, an atom beyond ``max_degree`` neighbours) leaves its graph unchanged.
    """
    bsz, m = state.labels.shape
    ar = torch.arange(bsz)
    n = state.n_atoms
    is_new = end >= m
    tgt = torch.where(is_new, n, end)
    tgt_c = tgt.clamp(max=m - 1)
    deg = state.degree()
    invalid = (
        (is_new & (n >= m))
        | (~is_new & (end == start))
        | (~is_new & state.adj[ar, start, tgt_c])
        | (deg[ar, start] >= max_degree)
        | (~is_new & (deg[ar, tgt_c] >= max_degree))
        | (start >= n)
    )
    valid = ~invalid
    labels = state.labels.clone()
    adj = state.adj.clone()
    rows = ar[valid & is_new]
    labels[rows, n[rows]] = end[rows] - m
    v = ar[valid]
    adj[v, start[v], tgt[v]] = True
    adj[v, tgt[v], start[v]] = True
    return GraphState(labels, adj), valid


def graph_problems(labels, edges, max_atoms: int = 6, max_degree: int = 4) -> list[str]:
    """What breaks the rules in one graph (empty when valid): too many atoms, self-loops, duplicate
    edges, too many neighbours, edges to atoms that do not exist, a disconnected graph."""
    labels = list(labels)
    n = len(labels)
    out = []
    if n > max_atoms:
        out.append(f"{n} atoms > {max_atoms}")
    seen: set[tuple[int, int]] = set()
    deg = [0] * n
    for i, j in edges:
        i, j = int(i), int(j)
        if i == j:
            out.append(f"self-loop at {i}")
            continue
        if not (0 <= i < n and 0 <= j < n):
            out.append(f"edge ({i}, {j}) outside the {n} atoms")
            continue
        key = (min(i, j), max(i, j))
        if key in seen:
            out.append(f"duplicate edge {key}")
        seen.add(key)
        deg[i] += 1
        deg[j] += 1
    out += [f"atom {k} has {d} > {max_degree} neighbours" for k, d in enumerate(deg) if d > max_degree]
    if n > 1:
        reach, todo = {0}, [0]
        while todo:
            a = todo.pop()
            for i, j in seen:
                for x, y in ((i, j), (j, i)):
                    if x == a and y not in reach:
                        reach.add(y)
                        todo.append(y)
        if len(reach) < n:
            out.append("disconnected")
    return out


def _gumbel_argmax(logits: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """One sample per row from softmax(logits) (Gumbel-max with a seeded generator)."""
    u = torch.rand(logits.shape, generator=gen).clamp_(1e-12, 1.0 - 1e-7)
    return (logits.detach() - torch.log(-torch.log(u))).argmax(1)


class XGNNPolicy(nn.Module):
    """The XGNN graph generator: a GCN over the graph plus one candidate node per label, two MLP heads.

    embed(state) -> (slots (B, M, D), candidates (L, D)): GCN embeddings. A candidate is an isolated
    node (its only neighbour is itself), so its embedding is the same in every graph and is computed
    once per call; the slots of empty atoms are computed too and masked later.
    act(state, ...) -> start (B,), end (B,) in 0..M+L−1 (≥ M: a candidate),
    log p(start) + log p(end | start) (B,).
    """

    def __init__(self, n_labels: int, dims: tuple[int, ...] = (8, 16, 24, 32), start_hidden: int = 16,
                 end_hidden: int = 24) -> None:
        super().__init__()
        self.n_labels = n_labels
        self.inp = nn.Linear(n_labels, dims[0])
        self.gcn = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:], strict=True))
        self.dim = d = dims[-1]
        self.mlp_start = nn.Sequential(nn.Linear(d, start_hidden), nn.ReLU(), nn.Linear(start_hidden, 1))
        self.mlp_end = nn.Sequential(nn.Linear(2 * d, end_hidden), nn.ReLU(), nn.Linear(end_hidden, 1))

    def _layers(self, x: torch.Tensor, a: torch.Tensor | None) -> torch.Tensor:
        h = F.relu(self.inp(x))
        for lin in self.gcn:
            h = lin(h)
            h = F.relu(torch.bmm(a, h) if a is not None else h)
        return h

    def embed(self, state: GraphState) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, M, D) embeddings of the slots (GCN with D^-1/2 (A + I) D^-1/2) and (L, D) of the candidates."""
        m = state.labels.shape[1]
        exists = (state.labels >= 0).unsqueeze(-1).float()
        x = F.one_hot(state.labels.clamp(min=0), self.n_labels).float() * exists
        a = state.adj.float() + torch.eye(m)
        dinv = a.sum(2).rsqrt()
        a = dinv.unsqueeze(2) * a * dinv.unsqueeze(1)
        return self._layers(x, a), self._layers(torch.eye(self.n_labels), None)

    def act(self, state: GraphState, allowed: torch.Tensor, gen: torch.Generator, *,
            mask_invalid: bool = False, max_degree: int = 4
            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Sample (start, end) for every graph; log p(start) + log p(end | start) keeps its graph for
        the gradient. ``allowed`` (L,) bool: labels that may be added as new atoms."""
        bsz, m = state.labels.shape
        ar = torch.arange(bsz)
        hs, hc = self.embed(state)
        exists = state.labels >= 0
        deg = state.degree()
        s_mask = exists
        if mask_invalid:
            s_ok = exists & (deg < max_degree)
            s_mask = torch.where(s_ok.any(1, keepdim=True), s_ok, exists)
        s_logits = self.mlp_start(hs).squeeze(-1).masked_fill(~s_mask, float("-inf"))
        start = _gumbel_argmax(s_logits, gen)
        # MLP_end([x_j, x_start]): its first layer splits into W_j x_j + W_s x_start (+ b), so the
        # candidates' part is computed once for all graphs
        lin1, lin2 = self.mlp_end[0], self.mlp_end[2]
        w_j, w_s = lin1.weight[:, : self.dim], lin1.weight[:, self.dim :]
        z = torch.cat([hs @ w_j.t(), (hc @ w_j.t()).unsqueeze(0).expand(bsz, -1, -1)], 1)
        z = z + F.linear(hs[ar, start], w_s, lin1.bias).unsqueeze(1)
        e_logits = lin2(F.relu(z)).squeeze(-1)  # (B, M + L)
        e_mask = torch.cat([exists, allowed.unsqueeze(0).expand(bsz, -1)], 1)
        e_mask[ar, start] = False
        if mask_invalid:
            ok = e_mask.clone()
            ok[:, :m] &= ~state.adj[ar, start] & (deg < max_degree)
            ok[:, m:] &= (state.n_atoms < m).unsqueeze(1)
            e_mask = torch.where(ok.any(1, keepdim=True), ok, e_mask)
        e_logits = e_logits.masked_fill(~e_mask, float("-inf"))
        end = _gumbel_argmax(e_logits, gen)
        logp = F.log_softmax(s_logits, 1)[ar, start] + F.log_softmax(e_logits, 1)[ar, end]
        return start, end, logp


# ==================================================================================================
# training and explaining


class _threads:
    """Context: torch CPU threads set to n (None: unchanged) and restored after."""

    def __init__(self, n: int | None) -> None:
        self.n = n

    def __enter__(self):
        self.old = torch.get_num_threads()
        self.change = bool(self.n) and int(self.n) != self.old
        if self.change:
            torch.set_num_threads(int(self.n))

    def __exit__(self, *exc):
        if self.change:
            torch.set_num_threads(self.old)


def _canonical_seed(*parts: int) -> int:
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1)[0])


class XGNN:
    """Trains the generator for one target class of a classifier and generates its explanations.

    model: maps a ``GraphBatch`` whose ``numbers`` are label indices to (B, C) log-probabilities (the
    CGCNN classification head; any such module, e.g. a toy one in the tests). It is used in eval mode
    and never trained here.
    """

    def __init__(self, model: nn.Module, n_labels: int, target: int, config: XGNNConfig | None = None,
                 allowed_labels=None, seed: int = 0) -> None:
        self.model = model.eval()
        # the classifier may sit on a GPU (lib.train picks CUDA when there is one); graphs are built on
        # the CPU and each classifier call moves its one batch there
        tensors = itertools.chain(model.parameters(), model.buffers())
        self.device = next((t.device for t in tensors), torch.device("cpu"))
        self.n_labels = int(n_labels)
        self.target = int(target)
        self.cfg = config or XGNNConfig()
        allowed = torch.zeros(self.n_labels, dtype=torch.bool)
        if allowed_labels is None:
            allowed[:] = True
        else:
            allowed[torch.as_tensor(np.asarray(allowed_labels, dtype=np.int64))] = True
        if not allowed.any():
            raise ValueError("no label is allowed as a new atom")
        self.allowed = allowed
        self._allowed_idx = torch.nonzero(allowed).squeeze(1)
        self.seed = int(seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(_canonical_seed(self.seed, 1))
            self.policy = XGNNPolicy(self.n_labels, tuple(self.cfg.gcn_dims))
        self.gen = torch.Generator().manual_seed(_canonical_seed(self.seed, 2))
        self.opt = torch.optim.Adam(self.policy.parameters(), lr=self.cfg.lr)
        self.history: dict[str, list] = {"episodes": [], "mean_reward": [], "valid_fraction": [],
                                         "rolled_back_fraction": [], "final_probability": [],
                                         "sample_probability": [], "time_s": []}
        self.episodes_done = 0
        self.train_time_s = 0.0
        self.best: dict[str, Any] = {"score": -1.0, "episodes": 0, "state": None}

    # helpers -------------------------------------------------------------------------------------
    def initial(self, b: int) -> GraphState:
        """b one-atom graphs, labels drawn uniformly from the allowed labels."""
        k = torch.randint(len(self._allowed_idx), (b,), generator=self.gen)
        return GraphState.single_atoms(self._allowed_idx[k], self.cfg.max_atoms)

    @torch.no_grad()
    def probability(self, state: GraphState, chunk: int = 8192) -> torch.Tensor:
        """(B,) p(target class | graph) from the classifier, many graphs per forward call."""
        with _threads(self.cfg.num_threads):
            out = [self.model(state.select(slice(i, i + chunk)).to_batch().to(self.device))[:, self.target]
                   .exp().float().cpu() for i in range(0, state.size, chunk)]
        return torch.cat(out) if out else torch.zeros(0)

    def _act(self, state: GraphState):
        return self.policy.act(state, self.allowed, self.gen, mask_invalid=self.cfg.mask_invalid,
                               max_degree=self.cfg.max_degree)

    @torch.no_grad()
    def rollout(self, state: GraphState, steps: int) -> GraphState:
        """The current policy run ``steps`` actions from ``state`` (invalid actions are no-ops)."""
        with _threads(self.cfg.num_threads):
            for _ in range(steps):
                start, end, _ = self._act(state)
                state, _ = step(state, start, end, self.cfg.max_degree)
        return state

    def rewards(self, new: GraphState, valid: torch.Tensor, steps_left: int) -> torch.Tensor:
        """(B,) R_t of the actions that made ``new``: feedback + λ1·rollouts, or −λ2 when invalid."""
        cfg = self.cfg
        r = torch.full((new.size,), -float(cfg.rules_weight))
        if valid.any():
            nv = new.select(valid)
            fb = self.probability(nv) - 0.5
            if cfg.n_rollouts > 0 and cfg.rollout_weight != 0:
                rolled = self.rollout(nv.repeat(cfg.n_rollouts), steps_left)
                fb = fb + cfg.rollout_weight * (self.probability(rolled) - 0.5).view(nv.size, -1).mean(1)
            r[valid] = fb
        return r

    # training ------------------------------------------------------------------------------------
    def train(self, episodes: int, progress: bool = True) -> dict[str, list]:
        """REINFORCE for ``episodes`` more episodes, ``batch_episodes`` at a time; returns the history
        (per batch of episodes: mean reward per action, share of valid actions, of rolled-back ones,
        mean p(target) of the training episodes' final graphs, and of ``eval_graphs`` graphs sampled
        from the policy as :meth:`explain` samples them).

        With ``keep_best`` the policy ends with the weights whose sampled graphs scored best (the share
        above ``keep_threshold``, ties broken by the mean p(target)), as ``lib.train`` keeps the best
        epoch: an update can make the policy collapse onto graphs the classifier does not like, and it
        rarely recovers.
        """
        from tqdm.auto import tqdm

        cfg = self.cfg
        iters = math.ceil(max(int(episodes), 0) / cfg.batch_episodes)
        bar = tqdm(range(iters), desc=f"XGNN class {self.target}", unit="batch", disable=not progress,
                   dynamic_ncols=True)
        self.policy.train()
        with _threads(cfg.num_threads):
            self._train(bar)
        bar.close()
        if cfg.keep_best and self.best["state"] is not None:
            self.policy.load_state_dict(self.best["state"])
        return self.history

    def _train(self, bar) -> None:
        cfg = self.cfg
        for _ in bar:
            t0 = time.perf_counter()
            state = self.initial(cfg.batch_episodes)
            r_sum = v_sum = back_sum = 0.0
            for t in range(cfg.max_steps):
                start, end, logp = self._act(state)
                new, valid = step(state, start, end, cfg.max_degree)
                r = self.rewards(new, valid, cfg.max_steps - t - 1)
                adv = r - r.mean() if cfg.baseline else r
                loss = -(adv * logp).mean()
                self.opt.zero_grad(set_to_none=True)
                loss.backward()
                self.opt.step()
                keep = valid & (r >= 0)
                state = new.where(keep, state)
                r_sum += float(r.mean())
                v_sum += float(valid.float().mean())
                back_sum += float((~keep).float().mean())
            p_final = float(self.probability(state).mean())
            p_eval = self.sample(cfg.eval_graphs)[1] if cfg.eval_graphs else torch.full((1,), float("nan"))
            p_sample = float(p_eval.mean())
            # score: the share of sampled graphs that would be kept, the mean probability breaking ties
            score = float((p_eval > cfg.keep_threshold).float().mean()) + 1e-3 * p_sample
            if score > self.best["score"]:
                self.best = {"score": score, "episodes": self.episodes_done + cfg.batch_episodes,
                             "state": {k: v.detach().clone() for k, v in self.policy.state_dict().items()}}
            dt = time.perf_counter() - t0
            self.train_time_s += dt
            self.episodes_done += cfg.batch_episodes
            h = self.history
            h["episodes"].append(self.episodes_done)
            h["mean_reward"].append(r_sum / cfg.max_steps)
            h["valid_fraction"].append(v_sum / cfg.max_steps)
            h["rolled_back_fraction"].append(back_sum / cfg.max_steps)
            h["final_probability"].append(p_final)
            h["sample_probability"].append(p_sample)
            h["time_s"].append(dt)
            bar.set_postfix(reward=f"{h['mean_reward'][-1]:.3f}", p=f"{p_final:.2f}")

    # generating ----------------------------------------------------------------------------------
    @torch.no_grad()
    def sample(self, n: int, rollback: bool | None = None) -> tuple[GraphState, torch.Tensor]:
        """n graphs grown by the policy for ``max_steps`` actions, and p(target) of each.

        Invalid actions are no-ops; with ``rollback`` (default ``cfg.rollback_generation``) an action
        after which p(target) < 1/2 is undone too.
        """
        cfg = self.cfg
        rollback = cfg.rollback_generation if rollback is None else rollback
        with _threads(cfg.num_threads):
            state = self.initial(n)
            for _ in range(cfg.max_steps):
                start, end, _ = self._act(state)
                new, valid = step(state, start, end, cfg.max_degree)
                keep = valid
                if rollback and valid.any():
                    keep = valid.clone()
                    keep[valid] = self.probability(new.select(valid)) >= 0.5
                state = new.where(keep, state)
            return state, self.probability(state)

    def explain(self, n: int, keep_threshold: float | None = None, max_attempts: int | None = None,
                progress: bool = False) -> dict:
        """Generate graphs until ``n`` have p(target) > ``keep_threshold`` (or ``max_attempts`` were made).

        Returns {"explanations": [{"labels", "edges", "probability"}...], "kept", "requested",
        "attempts", "acceptance", "unique", "time_s"}; labels are label indices (0-based).
        """
        from tqdm.auto import tqdm

        cfg = self.cfg
        thr = cfg.keep_threshold if keep_threshold is None else float(keep_threshold)
        if max_attempts is None:
            max_attempts = cfg.max_attempts if cfg.max_attempts is not None else max(1000, 200 * int(n))
        kept: list[dict] = []
        attempts = 0
        t0 = time.perf_counter()
        bar = tqdm(total=n, desc=f"explanations class {self.target}", disable=not progress,
                   dynamic_ncols=True)
        with _threads(cfg.num_threads):
            attempts = self._explain(n, thr, max_attempts, kept, bar)
        bar.close()
        unique = len({canonical_form(e["labels"], e["edges"]) for e in kept})
        return {"explanations": kept, "kept": len(kept), "requested": int(n), "attempts": attempts,
                "max_attempts": max_attempts, "acceptance": len(kept) / attempts if attempts else 0.0,
                "unique": unique, "keep_threshold": thr, "time_s": time.perf_counter() - t0}

    def _explain(self, n: int, thr: float, max_attempts: int, kept: list, bar) -> int:
        cfg = self.cfg
        attempts = 0
        while len(kept) < n and attempts < max_attempts:
            b = min(cfg.generate_batch, max_attempts - attempts)
            state, p = self.sample(b)
            ok = torch.nonzero(p > thr).squeeze(1).tolist()
            need = n - len(kept)
            take = ok[:need]
            attempts += (take[-1] + 1) if len(take) == need and take else b
            if take:
                graphs = state.select(torch.as_tensor(take)).graphs()
                for (lab, edges), k in zip(graphs, take, strict=True):
                    kept.append({"labels": lab, "edges": [list(e) for e in edges],
                                 "probability": float(p[k])})
                bar.update(len(take))
        return attempts

    def state_dict(self) -> dict:
        """Policy weights, optimiser, sampler state and history (to save a trained generator)."""
        return {"policy": self.policy.state_dict(), "optimizer": self.opt.state_dict(),
                "generator": self.gen.get_state(), "history": self.history,
                "episodes_done": self.episodes_done, "best": self.best,
                "train_time_s": self.train_time_s, "config": self.cfg.as_dict(), "target": self.target}

    def load_state_dict(self, sd: dict) -> None:
        self.policy.load_state_dict(sd["policy"])
        self.opt.load_state_dict(sd["optimizer"])
        self.gen.set_state(sd["generator"])
        self.history = sd["history"]
        self.episodes_done = int(sd["episodes_done"])
        self.train_time_s = float(sd["train_time_s"])
        self.best = sd.get("best", self.best)


def canonical_form(labels, edges) -> tuple:
    """A key equal for isomorphic labelled graphs (exact: permutations within (label, degree) classes)."""
    n = len(labels)
    deg = [0] * n
    for i, j in edges:
        deg[i] += 1
        deg[j] += 1
    keyed = sorted(range(n), key=lambda k: (labels[k], deg[k]))
    groups = [list(g) for _, g in itertools.groupby(keyed, key=lambda k: (labels[k], deg[k]))]
    best = None
    for perm in itertools.product(*(itertools.permutations(g) for g in groups)):
        order = [k for part in perm for k in part]
        pos = {k: r for r, k in enumerate(order)}
        e = tuple(sorted((min(pos[i], pos[j]), max(pos[i], pos[j])) for i, j in edges))
        if best is None or e < best:
            best = e
    return tuple(labels[k] for k in keyed), best


# ==================================================================================================
# the whole run for one classifier: both classes, one JSON file


def training_episodes(profile: Any) -> int:
    """Generator training episodes per class: ``100 · Profile.xgnn_epochs`` (smoke 100, quick 500,
    thesis 2000)."""
    from lib.profiles import get_profile

    return 100 * int(get_profile(profile).xgnn_epochs)


def explanations_path(property: str, labelling: str, profile: str, seed: int,
                      out_dir: str | Path | None = None) -> Path:
    """``results/xgnn/<property>_<labelling>_<profile>_s<seed>.json``."""
    from lib.paths import RESULTS

    return Path(out_dir or RESULTS / "xgnn") / f"{property}_{labelling}_{profile}_s{seed}.json"


def load_explanations(path: str | Path) -> dict:
    """An explanations file written by :func:`explain_classifier`."""
    with open(path) as f:
        return json.load(f)


def explain_classifier(
    clf: ClassifierRun,
    profile: Any = "smoke",
    seed: int = 0,
    config: XGNNConfig | None = None,
    *,
    per_class: int | None = None,
    episodes: int | None = None,
    out_dir: str | Path | None = None,
    reuse: bool = True,
    progress: bool = True,
) -> dict:
    """Train one generator per class of ``clf`` and keep ``per_class`` explanations of each; write the JSON.

    per_class, episodes: default ``Profile.xgnn_per_class`` and :func:`training_episodes`. With
    ``reuse``, an existing file made with the same classifier run, settings and sizes is read back
    instead. Each class's trained generator is saved beside the JSON (``.class<c>.pt``).
    Labels in the file are the periodic numbers (group 1..18 or period 1..7), edges pairs of atom
    positions, probability p(class | graph).
    """
    from lib import records
    from lib.profiles import get_profile

    prof = get_profile(profile)
    cfg = config or XGNNConfig()
    per_class = prof.xgnn_per_class if per_class is None else int(per_class)
    episodes = training_episodes(prof) if episodes is None else int(episodes)
    path = explanations_path(clf.property, clf.labelling, prof.name, seed, out_dir)
    key = {"classifier_run": clf.record["run"], "classifier_data_key": clf.record.get("data_key"),
           "config": cfg.as_dict(), "per_class": per_class, "episodes": episodes, "seed": seed}
    if reuse and path.exists():
        try:
            doc = load_explanations(path)
            if doc.get("key") == key:
                doc["path"] = str(path)
                return doc
        except (OSError, json.JSONDecodeError):
            pass

    doc: dict[str, Any] = {
        "property": clf.property, "labelling": clf.labelling, "profile": prof.name, "seed": seed,
        "label_names": periodic.label_names(clf.labelling), "threshold": clf.threshold,
        "unit": clf.record.get("unit"), "class_names": list(CLASS_NAMES),
        "classifier": {"run": clf.record["run"], "test_accuracy": clf.test_accuracy,
                       "val_accuracy": clf.record["metrics"]["val"]["accuracy"],
                       "checkpoint": clf.record.get("checkpoint")},
        "labels_allowed": (np.asarray(clf.labels_seen) + 1).tolist(),
        "config": cfg.as_dict(), "per_class": per_class, "episodes": episodes, "key": key,
        "classes": {},
    }
    t_all = time.perf_counter()
    for c in (0, 1):
        gen = XGNN(clf.model, clf.n_labels, c, cfg, allowed_labels=clf.labels_seen,
                   seed=_canonical_seed(seed, c))
        gen.train(episodes, progress=progress)
        res = gen.explain(per_class, progress=progress)
        records.torch_save(gen.state_dict(), path.with_suffix(f".class{c}.pt"))
        for e in res["explanations"]:
            e["labels"] = [int(x) + 1 for x in e["labels"]]
        doc["classes"][str(c)] = {
            "name": CLASS_NAMES[c], **{k: v for k, v in res.items() if k != "explanations"},
            "train_time_s": gen.train_time_s, "episodes": gen.episodes_done,
            "best_episodes": gen.best["episodes"], "best_score": gen.best["score"],
            "history": gen.history,
            "explanations": res["explanations"],
        }
    doc["wall_time_s"] = time.perf_counter() - t_all
    doc["device"] = records.device_info("cpu")
    doc["git_commit"] = records.git_commit()
    doc["created"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    records.write_json(path, doc)
    doc["path"] = str(path)
    return doc


def figure_name(property: str, labelling: str) -> str:
    """The thesis's file name for Figures 15-18, ``xgnn_<property>_<labelling>.png`` for the others."""
    return THESIS_FIGURES.get((property, labelling), f"xgnn_{property}_{labelling}.png")


# ==================================================================================================
# counting: explanations and crystals


def _pair_index(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unordered pairs as (row ≥ col)."""
    return np.maximum(a, b), np.minimum(a, b)


def explanation_counts(explanations: list[dict], n_labels: int, one_based: bool = True
                       ) -> tuple[np.ndarray, np.ndarray]:
    """(atoms per label (L,), undirected edges per label pair (L, L), lower triangle) of explanations."""
    off = 1 if one_based else 0
    lab_counts = np.zeros(n_labels, dtype=np.int64)
    pairs = np.zeros((n_labels, n_labels), dtype=np.int64)
    for e in explanations:
        lab = np.asarray(e["labels"], dtype=np.int64) - off
        np.add.at(lab_counts, lab, 1)
        if e["edges"]:
            ed = np.asarray(e["edges"], dtype=np.int64)
            r, c = _pair_index(lab[ed[:, 0]], lab[ed[:, 1]])
            np.add.at(pairs, (r, c), 1)
    return lab_counts, pairs


def crystal_counts(graphs: LabelledGraphs, indices=None) -> tuple[np.ndarray, np.ndarray]:
    """(atoms per label (L,), directed CGCNN edges per label pair (L, L), lower triangle) of crystals."""
    gs = graphs.graphs if indices is None else graphs.graphs.subset(np.asarray(indices))
    nl = graphs.n_labels
    lab = periodic.label_index_table(graphs.labelling)[gs.numbers]
    shift = np.repeat(gs.atom_ptr[:-1], gs.n_edges)
    src = lab[gs.edge_src.astype(np.int64) + shift]
    dst = lab[gs.edge_dst.astype(np.int64) + shift]
    r, c = _pair_index(src, dst)
    pairs = np.bincount(r * nl + c, minlength=nl * nl).reshape(nl, nl)
    return np.bincount(lab, minlength=nl), pairs


def enrichment(high: np.ndarray, low: np.ndarray, cells: int | None = None, pseudo: float = 0.5
               ) -> np.ndarray:
    """log2 of the frequency in the high class over the low class, with ``pseudo`` added to each count.

    cells: the number of categories the frequencies are over (default: high.size). NaN where both
    counts are zero.
    """
    high = np.asarray(high, dtype=np.float64)
    low = np.asarray(low, dtype=np.float64)
    k = high.size if cells is None else cells
    fh = (high + pseudo) / (high.sum() + pseudo * k)
    fl = (low + pseudo) / (low.sum() + pseudo * k)
    out = np.log2(fh / fl)
    return np.where((high + low) > 0, out, np.nan)


def enrichment_table(doc: dict, clf: ClassifierRun, pseudo: float = 0.5):
    """One row per label and per label pair: counts and log2 enrichment (high/low) in the explanations
    and in the real crystals of the classifier's data (all its crystals, classed by the same median)."""
    import pandas as pd

    nl = clf.n_labels
    names = periodic.label_names(clf.labelling)
    ex = {c: explanation_counts(doc["classes"][str(c)]["explanations"], nl) for c in (0, 1)}
    da = {c: crystal_counts(clf.graphs, np.flatnonzero(clf.y == c)) for c in (0, 1)}
    tri = np.tril_indices(nl)
    rows = []
    for kind in ("label", "pair"):
        if kind == "label":
            e_hi, e_lo, d_hi, d_lo = ex[1][0], ex[0][0], da[1][0], da[0][0]
            keys = [(names[i], "") for i in range(nl)]
        else:
            e_hi, e_lo, d_hi, d_lo = (x[1][tri] for x in (ex[1], ex[0], da[1], da[0]))
            keys = [(names[i], names[j]) for i, j in zip(*tri, strict=True)]
        le = enrichment(e_hi, e_lo, pseudo=pseudo)
        ld = enrichment(d_hi, d_lo, pseudo=pseudo)
        for k, (a, b) in enumerate(keys):
            rows.append({"kind": kind, "a": a, "b": b, "n_high_expl": int(e_hi[k]),
                         "n_low_expl": int(e_lo[k]), "log2_expl": le[k], "n_high_data": int(d_hi[k]),
                         "n_low_data": int(d_lo[k]), "log2_data": ld[k]})
    out = pd.DataFrame(rows)
    out.attrs.update(property=clf.property, labelling=clf.labelling, pseudo=pseudo)
    return out


def enrichment_agreement(table, min_count: int = 3) -> dict:
    """Spearman correlation of explanation vs data enrichment, over labels and over pairs that occur at
    least ``min_count`` times in the explanations (NaN with fewer than 3 such rows)."""
    from scipy.stats import spearmanr

    out = {}
    for kind in ("label", "pair"):
        t = table[(table["kind"] == kind) & ((table["n_high_expl"] + table["n_low_expl"]) >= min_count)]
        t = t.dropna(subset=["log2_expl", "log2_data"])
        rho = float(spearmanr(t["log2_expl"], t["log2_data"]).statistic) if len(t) >= 3 else float("nan")
        sign = float((np.sign(t["log2_expl"]) == np.sign(t["log2_data"])).mean()) if len(t) else float("nan")
        out[kind] = {"n": int(len(t)), "spearman": rho, "same_sign": sign}
    return out

