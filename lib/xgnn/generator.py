"""The XGNN generator: graph states, validity rules, the GCN policy, REINFORCE training, explanations.

See ``lib.xgnn``'s docstring for the algorithm, the reward and the two additions of ours (a baseline and
keep-best weights).
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from lib.graphs import GraphBatch
from lib.train_config import strict_replace


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
