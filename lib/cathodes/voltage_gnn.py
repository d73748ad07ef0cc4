"""A voltage model of the thesis's own family: a CGCNN that reads both states of a pair and gives its voltage.

    V = head( f(discharged), f(charged), f(discharged) − f(charged), ion, ion contents )

``f`` is a CGCNN encoder (:class:`lib.models.cgcnn.CGCNN`: its convolutions and mean pooling, the crystal vector
before the regression layers) on the k-nearest-neighbour graphs of :mod:`lib.graphs`, shared by the two states;
the head is a small dense network on the two crystal vectors, their difference, the working ion (one-hot over
:data:`lib.cathodes.correction.IONS`) and the ions per framework atom of both states. It is trained from
scratch on MP's pair voltages alone (no formation-energy pre-training: nothing the shipped formation-energy
CGCNN saw can leak into a grouped test), with an L1 loss on the voltage.

**σ_V.** A second head, on the same crystal vectors but detached from the encoder (so it never pulls the
voltage's features), learns a Laplace scale ``b`` of each pair's error (negative log-likelihood of ``|y − V|``
with V held fixed); σ_V = ``k · b`` with ``k`` set on the **validation** pairs only so that 68.3 % of their
errors are within 1 σ_V (:func:`calibrate`).

**Training** (:func:`fit`): Adam, cosine learning rate over ``epochs``, batches of pairs (both states of each
pair in one graph batch), the epoch with the lowest validation MAE kept. A run writes its whole state
(weights, optimiser, scheduler, best weights, history) to ``<folder>/state.pt`` after every epoch, atomically;
started again on the same folder it resumes from the last finished epoch and ends where an uninterrupted run
would (the epoch's order of pairs is drawn from ``(seed, epoch)``, nothing else is random).

Shipped as plain tensors and JSON (:meth:`GNNVoltageModel.save`: ``model.pt`` holds a state dict of tensors only,
loaded with ``weights_only=True``; ``card.json``); the splits, the benchmark and the shipping are
:mod:`lib.cathodes.voltage_eval`.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from pymatgen.core import Composition
from torch import nn
from tqdm.auto import tqdm

from lib.cathodes.correction import COVERAGE, IONS
from lib.graphs import GraphSet, build_graphs, cgcnn_params
from lib.models.cgcnn import CGCNN
from lib.paths import atomic_path

FORMAT = "compendium-voltage-gnn/1"
#: the scalars beside the two crystal vectors: the ion one-hot, then ions per framework atom (discharged,
#: charged) and their difference
SCALARS = (*(f"ion_{i}" for i in IONS), "x_discharged", "x_charged", "dx")


@dataclass
class GNNConfig:
    """The network and its training (fixed before any test set was looked at)."""

    atom_fea_len: int = 64
    n_conv: int = 3
    hidden: int = 128
    epochs: int = 20
    batch_pairs: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-5
    seed: int = 0
    graph: dict = field(default_factory=lambda: cgcnn_params().as_dict())


# ----------------------------------------------------------------------------------------------
# inputs
# ----------------------------------------------------------------------------------------------


def _ion_content(formula: str, ion: str) -> float:
    comp = Composition(formula)
    n_fw = sum(a for e, a in comp.items() if e.symbol != ion)
    return float(comp[ion] / n_fw) if n_fw else math.nan


def pair_scalars(pairs: pd.DataFrame) -> np.ndarray:
    """(n, len(SCALARS)): the working ion one-hot and the ions per framework atom of both states."""
    xd = np.array([_ion_content(f, i) for f, i in zip(pairs["formula_discharged"], pairs["ion"], strict=True)])
    xc = np.array([_ion_content(f, i) for f, i in zip(pairs["formula_charged"], pairs["ion"], strict=True)])
    onehot = np.array([[float(ion == i) for i in IONS] for ion in pairs["ion"]]).reshape(len(pairs), len(IONS))
    return np.column_stack([onehot, xd, xc, xd - xc]).astype(np.float32)


def pair_graphs(pairs: pd.DataFrame, graph: dict | None = None, progress: bool = False,
                cache: bool = True) -> tuple[GraphSet, np.ndarray, np.ndarray]:
    """The graphs of every distinct structure of ``pairs`` (cached by :func:`lib.graphs.build_graphs`) and each
    pair's rows in it: ``(graphs, charged_rows, discharged_rows)``. Structures are keyed by ``high_mpid`` /
    ``low_mpid`` when the table has them (MP's pairs share end members), else by position."""
    ids_c = pairs["high_mpid"].astype(str).to_numpy() if "high_mpid" in pairs else \
        np.array([f"{i}-charged" for i in range(len(pairs))])
    ids_d = pairs["low_mpid"].astype(str).to_numpy() if "low_mpid" in pairs else \
        np.array([f"{i}-discharged" for i in range(len(pairs))])
    crystals = {**dict(zip(ids_c, pairs["charged"], strict=True)), **dict(zip(ids_d, pairs["discharged"],
                                                                               strict=True))}
    ids = list(crystals)
    params = cgcnn_params() if graph is None else type(cgcnn_params()).from_dict(graph)
    gs = build_graphs([crystals[i] for i in ids], params, ids=ids, n_jobs=1, progress=progress, cache=cache,
                      name="electrode_pairs", on_isolated="keep", verbose=False)
    row = {m: k for k, m in enumerate(gs.material_ids)}
    return gs, np.array([row[i] for i in ids_c]), np.array([row[i] for i in ids_d])


# ----------------------------------------------------------------------------------------------
# the network
# ----------------------------------------------------------------------------------------------


class PairVoltageNet(nn.Module):
    """CGCNN encoder shared by both states, a voltage head and a detached scale head (module docstring)."""

    def __init__(self, cfg: GNNConfig):
        super().__init__()
        self.encoder = CGCNN(atom_fea_len=cfg.atom_fea_len, n_conv=cfg.n_conv, cutoff=cfg.graph["cutoff"])
        n_in = 3 * cfg.atom_fea_len + len(SCALARS)
        self.head = nn.Sequential(nn.Linear(n_in, cfg.hidden), nn.Softplus(), nn.Linear(cfg.hidden, cfg.hidden),
                                  nn.Softplus(), nn.Linear(cfg.hidden, 1))
        self.scale = nn.Sequential(nn.Linear(n_in, cfg.hidden // 2), nn.Softplus(), nn.Linear(cfg.hidden // 2, 1))

    def forward(self, batch, n_pairs: int, scalars: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``batch``: the charged structures of ``n_pairs`` pairs, then their discharged ones. Returns the
        (normalised) voltage and the log Laplace scale, each (n_pairs,)."""
        f = F.softplus(self.encoder.crystal_features(batch))
        fc, fd = f[:n_pairs], f[n_pairs:]
        x = torch.cat([fd, fc, fd - fc, scalars], dim=1)
        return self.head(x).squeeze(1), self.scale(x.detach()).squeeze(1)


def _forward(net, gs, rows_c, rows_d, scalars, idx):
    b = gs.batch(np.concatenate([rows_c[idx], rows_d[idx]]))
    return net(b, len(idx), torch.from_numpy(scalars[idx]))


def _predict_raw(net, gs, rows_c, rows_d, scalars, batch_pairs=256) -> tuple[np.ndarray, np.ndarray]:
    net.eval()
    mu, logb = [], []
    with torch.no_grad():
        for s in range(0, len(rows_c), batch_pairs):
            idx = np.arange(s, min(s + batch_pairs, len(rows_c)))
            m, lb = _forward(net, gs, rows_c, rows_d, scalars, idx)
            mu.append(m.numpy())
            logb.append(lb.numpy())
    if not mu:
        return np.zeros(0), np.zeros(0)
    return np.concatenate(mu), np.concatenate(logb)


def calibrate(err: np.ndarray, b: np.ndarray, coverage: float = COVERAGE) -> float:
    """The factor ``k`` for which ``coverage`` of |err| are within ``k · b`` (validation errors only)."""
    r = np.abs(np.asarray(err, float)) / np.asarray(b, float)
    r = r[np.isfinite(r)]
    return float(np.quantile(r, coverage)) if len(r) else math.nan


# ----------------------------------------------------------------------------------------------
# the model a user gets
# ----------------------------------------------------------------------------------------------


@dataclass
class GNNVoltageModel:
    """A trained :class:`PairVoltageNet` with its target scaling, σ calibration and what it was trained on."""

    net: PairVoltageNet
    cfg: GNNConfig
    y_mean: float
    y_std: float
    k: float
    info: dict = field(default_factory=dict)

    def predict(self, pairs: pd.DataFrame, progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """(voltage, σ_V) of each pair (``ion``, ``charged``, ``discharged``, ``formula_charged``,
        ``formula_discharged``; ``high_mpid``/``low_mpid`` optional)."""
        if not len(pairs):
            return np.zeros(0), np.zeros(0)
        gs, rc, rd = pair_graphs(pairs, self.cfg.graph, progress=progress, cache=False)
        mu, logb = _predict_raw(self.net, gs, rc, rd, pair_scalars(pairs))
        return mu * self.y_std + self.y_mean, self.k * np.exp(logb) * self.y_std

    def save(self, folder: str | Path) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(folder / "model.pt") as tmp:
            torch.save({k: v.detach().clone() for k, v in self.net.state_dict().items()}, tmp)
        meta = {"format": FORMAT, "config": asdict(self.cfg), "y_mean": self.y_mean, "y_std": self.y_std,
                "k": self.k, "info": self.info}
        with atomic_path(folder / "model.json") as tmp:
            tmp.write_text(json.dumps(meta, indent=1))
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> GNNVoltageModel:
        folder = Path(folder)
        if not (folder / "model.json").exists():
            raise FileNotFoundError(f"no GNN voltage model in {folder} (python -m lib.cathodes.voltage_eval ship "
                                    "--model gnn)")
        meta = json.loads((folder / "model.json").read_text())
        if meta.get("format") != FORMAT:
            raise ValueError(f"not a GNN voltage model of this compendium (format {meta.get('format')!r})")
        cfg = GNNConfig(**meta["config"])
        net = PairVoltageNet(cfg)
        net.load_state_dict(torch.load(folder / "model.pt", weights_only=True))
        net.eval()
        return cls(net, cfg, float(meta["y_mean"]), float(meta["y_std"]), float(meta["k"]), meta.get("info") or {})


# ----------------------------------------------------------------------------------------------
# training
# ----------------------------------------------------------------------------------------------


def _save_state(path: Path, state: dict) -> None:
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def fit(pairs: pd.DataFrame, train: np.ndarray, val: np.ndarray, cfg: GNNConfig | None = None,
        folder: str | Path | None = None, progress: bool = False, stop_after: int | None = None) -> GNNVoltageModel:
    """Train on the rows ``train`` of ``pairs`` (MP's ``avg_voltage`` the target), keep the epoch with the lowest
    MAE on the rows ``val`` and calibrate σ_V there. ``folder``: where the run's state is written after every
    epoch (and read back: a run started again resumes). ``stop_after``: return after that many epochs of this
    call, as a killed run would stop (tests)."""
    cfg = cfg or GNNConfig()
    train, val = np.asarray(train), np.asarray(val)
    if not len(train) or not len(val):
        raise ValueError(f"need training and validation pairs (got {len(train)} and {len(val)})")
    y = pairs["avg_voltage"].to_numpy(np.float32)
    if not np.isfinite(y[train]).all() or not np.isfinite(y[val]).all():
        raise ValueError("every training and validation pair needs MP's avg_voltage")
    gs, rc, rd = pair_graphs(pairs, cfg.graph, progress=progress)
    scalars = pair_scalars(pairs)
    y_mean, y_std = float(y[train].mean()), float(y[train].std())
    yn = torch.from_numpy((y - y_mean) / y_std)
    torch.manual_seed(cfg.seed)
    net = PairVoltageNet(cfg)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs)
    state_path = Path(folder) / "state.pt" if folder is not None else None
    start, best, history = 0, (math.inf, None, -1), []
    if state_path is not None and state_path.exists():
        st = torch.load(state_path, weights_only=False)
        if st["config"] != asdict(cfg) or st["n_train"] != len(train) or st["n_val"] != len(val):
            raise ValueError(f"{state_path} belongs to another run (config or split differs): remove it")
        net.load_state_dict(st["net"])
        opt.load_state_dict(st["opt"])
        sched.load_state_dict(st["sched"])
        start, history = st["epoch"], st["history"]
        best = (st["best_mae"], st["best_net"], st["best_epoch"])
    t0 = time.perf_counter()
    bar = tqdm(range(start, cfg.epochs), desc="GNN voltage model", disable=not progress, unit="epoch")
    done_here = 0
    for epoch in bar:
        net.train()
        order = train[np.random.default_rng([cfg.seed, epoch]).permutation(len(train))]
        losses = []
        for s in range(0, len(order), cfg.batch_pairs):
            idx = order[s : s + cfg.batch_pairs]
            if len(idx) < 2:  # batch norm needs two crystals of each state
                continue
            mu, logb = _forward(net, gs, rc, rd, scalars, idx)
            target = yn[idx]
            l1 = (mu - target).abs()
            nll = logb + l1.detach() / logb.exp()
            loss = l1.mean() + nll.mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(l1.mean().item())
        sched.step()
        mu_v, _ = _predict_raw(net, gs, rc[val], rd[val], scalars[val])
        val_mae = float(np.mean(np.abs(mu_v * y_std + y_mean - y[val])))
        history.append({"epoch": epoch + 1, "train_l1_V": float(np.mean(losses)) * y_std, "val_mae_V": val_mae})
        if val_mae < best[0]:
            best = (val_mae, {k: v.detach().clone() for k, v in net.state_dict().items()}, epoch + 1)
        bar.set_postfix(val_mae=f"{val_mae:.3f}", best=f"{best[0]:.3f}")
        if state_path is not None:
            _save_state(state_path, {"config": asdict(cfg), "n_train": len(train), "n_val": len(val),
                                     "epoch": epoch + 1, "net": net.state_dict(), "opt": opt.state_dict(),
                                     "sched": sched.state_dict(), "history": history, "best_mae": best[0],
                                     "best_net": best[1], "best_epoch": best[2]})
        done_here += 1
        if stop_after is not None and done_here >= stop_after and epoch + 1 < cfg.epochs:
            return None
    net.load_state_dict(best[1])
    mu_v, logb_v = _predict_raw(net, gs, rc[val], rd[val], scalars[val])
    err_v = mu_v * y_std + y_mean - y[val]
    k = calibrate(err_v, np.exp(logb_v) * y_std)
    info = {"n_train": int(len(train)), "n_val": int(len(val)), "best_epoch": best[2], "val_mae": best[0],
            "val_coverage_1sigma": float(np.mean(np.abs(err_v) <= k * np.exp(logb_v) * y_std)),
            "history": history, "train_seconds_this_call": round(time.perf_counter() - t0, 1),
            "torch_threads": torch.get_num_threads()}
    return GNNVoltageModel(net.eval(), cfg, y_mean, y_std, k, info)


__all__ = ["FORMAT", "SCALARS", "GNNConfig", "PairVoltageNet", "GNNVoltageModel", "pair_scalars", "pair_graphs",
           "calibrate", "fit"]
