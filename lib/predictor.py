"""Predictors: a trained checkpoint or a seed ensemble of them, loaded once, predicting crystals in batches.

:class:`Predictor` (one checkpoint, or an ensemble: mean and σ, scaled by a shipped ensemble's calibration),
:func:`open_checkpoint` (a checkpoint with a clear error for the files people give by mistake),
:func:`load_predictor` (a shipped model by name, or checkpoints) and :func:`predict_crystals` (batched, one
structure's failure reported for it alone). Reading the user's files and the command line are
:mod:`lib.predict`'s; this module is what the rest of the compendium (e.g. the cathode benchmark) needs to
predict with a model, without the command line.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from lib import pretrained
from lib.graphs import GraphParams, as_crystal, build_graph, collate
from lib.records import Checkpoint, load_checkpoint
from lib.structures import Crystal, StructureError
from lib.validate import check_arrays

#: checkpoints trained on fewer crystals than this (or in the smoke profile) predict with a warning
MIN_TRAIN = 1000


class CheckpointError(ValueError):
    """A file given as a checkpoint that is not one (a record, a training state, an SVR, something else)."""


def _reason(exc: BaseException) -> str:
    msg = str(exc).strip().splitlines()
    reason = getattr(exc, "reason", None)
    text = msg[-1] if msg else type(exc).__name__
    return f"{reason}: {text}" if reason and reason not in text else text


# ----------------------------------------------------------------------------- checkpoints and ensembles


def open_checkpoint(path: str | Path, device: str | torch.device | None = None) -> Checkpoint:
    """``load_checkpoint`` with a clear error for the files people give by mistake."""
    p = Path(path)
    name = p.name
    stem = name.split(".")[0]
    if name.endswith(".state.pt"):
        raise CheckpointError(f"{p} is the resumable training state of run {stem}; predict with its "
                              f"checkpoint {p.with_name(stem + '.pt')}")
    if name.endswith(".json"):
        raise CheckpointError(f"{p} is a run record (JSON); predict with the checkpoint beside it, "
                              f"{p.with_name(stem + '.pt')}")
    if name.endswith(".svr.pkl"):
        raise CheckpointError(f"{p} is a SOAP-SVR, which predicts from SOAP descriptors (lib.soap, lib.svr); "
                              "lib.predict serves the graph models (CGCNN, MEGNet): their .pt checkpoints")
    if not p.exists():
        raise CheckpointError(f"no checkpoint {p}")
    try:
        ckpt = load_checkpoint(p, device)
    except ValueError as exc:
        raise CheckpointError(str(exc)) from None
    except Exception as exc:  # noqa: BLE001 - not a torch file, or one that is not plain data
        raise CheckpointError(f"{p} is not a checkpoint of this project ({type(exc).__name__}); give a .pt "
                              "file written by lib.train.fit (results/runs/*.pt) or a shipped model (--model)"
                              ) from None
    if not ckpt.graph_params:
        raise CheckpointError(f"{p} has no graph parameters: not a graph model's checkpoint")
    return ckpt


@dataclass
class Predictor:
    """One checkpoint or several (an ensemble: seeds of one recipe) predicting one property."""

    checkpoints: list[Checkpoint]
    name: str = ""
    sigma_scale: float = 1.0  # σ = scale x the members' standard deviation (a shipped ensemble's card has it)

    def __post_init__(self) -> None:
        if not self.checkpoints:
            raise CheckpointError("no checkpoint given")
        targets = {(c.target, c.unit, c.task) for c in self.checkpoints}
        if len(targets) > 1:
            raise CheckpointError(f"an ensemble predicts one property; these checkpoints predict "
                                  f"{sorted(targets)}")

    @property
    def first(self) -> Checkpoint:
        return self.checkpoints[0]

    @property
    def column(self) -> str:
        c = self.first
        return f"{c.target} [class]" if c.task == "classification" else c.column

    @property
    def sigma_column(self) -> str | None:
        """The σ column, only for an ensemble of regressors."""
        if len(self.checkpoints) < 2 or self.first.task == "classification":
            return None
        c = self.first
        return f"{c.target} σ [{c.unit}]" if c.unit else f"{c.target} σ"

    def warnings(self) -> list[str]:
        """Why these predictions may not be meaningful (smoke profile, few training crystals)."""
        out = []
        for c in self.checkpoints:
            rec = c.record or {}
            n_train = (rec.get("split_sizes") or {}).get("train")
            if rec.get("profile") == "smoke":
                out.append(f"{c.path.name} was trained in the smoke profile ({n_train} crystals, "
                           f"{rec.get('epochs_run')} epochs): its predictions are not meaningful")
            elif n_train is not None and n_train < MIN_TRAIN:
                out.append(f"{c.path.name} was trained on only {n_train} crystals (< {MIN_TRAIN}): "
                           "expect large errors")
        return out

    def predict_crystals(self, crystals: Sequence[Crystal], batch_size: int = 256
                         ) -> tuple[np.ndarray, np.ndarray | None, list[str]]:
        """(mean, σ or None, errors) for crystals; a structure fails if any member fails on it."""
        values, errors = [], [""] * len(crystals)
        for c in self.checkpoints:
            v, e = predict_crystals(c, crystals, batch_size=batch_size)
            values.append(v)
            errors = [a or b for a, b in zip(errors, e, strict=True)]
        stack = np.vstack(values)
        bad = np.array([bool(e) for e in errors], dtype=bool)
        stack[:, bad] = np.nan
        mean = stack.mean(axis=0)
        std = self.sigma_scale * stack.std(axis=0, ddof=1) if self.sigma_column else None
        return mean, std, errors


def load_predictor(model: str | None = None, checkpoints: Sequence[str | Path | Checkpoint] = (),
                   device: str | torch.device | None = None) -> Predictor:
    """A shipped model by name (``model``, see ``lib.pretrained``) or the given checkpoints."""
    if model is not None and checkpoints:
        raise CheckpointError("give a shipped model (--model) or checkpoints (-c), not both")
    if model is not None:
        try:
            paths = pretrained.checkpoints(model)
        except KeyError as exc:
            raise CheckpointError(str(exc.args[0])) from None
        scale = float(pretrained.card(model).get("sigma_scale") or 1.0)
        return Predictor([open_checkpoint(p, device) for p in paths], name=model, sigma_scale=scale)
    ckpts = [c if isinstance(c, Checkpoint) else open_checkpoint(c, device) for c in checkpoints]
    return Predictor(ckpts, name=", ".join(str(c.path.name) for c in ckpts if c.path))


class _GraphList:
    """A list of graphs with the ``batch(indices)`` interface of ``GraphSet``."""

    def __init__(self, graphs):
        self.graphs = graphs

    def batch(self, indices):
        return collate([self.graphs[i] for i in indices])


def predict_crystals(
    checkpoint: Checkpoint | str | Path,
    crystals: Sequence[Crystal],
    batch_size: int = 256,
    device: str | torch.device | None = None,
) -> tuple[np.ndarray, list[str]]:
    """One checkpoint's predictions for crystals: (n,) in the target's units (NaN where it failed), reasons.

    For a classifier the values are the predicted class. Structures are batched; a batch that fails
    is retried one structure at a time, so one bad structure costs only its own row.
    """
    ckpt = checkpoint if isinstance(checkpoint, Checkpoint) else open_checkpoint(checkpoint, device)
    params = GraphParams.from_dict(ckpt.graph_params)
    n = len(crystals)
    values = np.full(n, np.nan)
    errors = [""] * n
    graphs: list = [None] * n
    for i, c in enumerate(crystals):
        try:  # the crystals may come from anywhere: the same checks as every parser's
            c = as_crystal(c)
            check_arrays(c.lattice, c.frac_coords, c.numbers)
        except (StructureError, TypeError) as exc:
            errors[i] = f"invalid structure: {_reason(exc)}"
            continue
        try:
            g = build_graph(c, params)
            lonely = np.setdiff1d(np.arange(len(c)), np.asarray(g.edge_dst))
            if len(lonely):
                raise ValueError(f"{len(lonely)} atom(s) with no neighbour within {params.cutoff:g} Å "
                                 "(the model cannot pass them messages)")
            graphs[i] = g
        except Exception as exc:  # noqa: BLE001
            errors[i] = f"graph: {_reason(exc)}"
    ok = np.array([i for i in range(n) if graphs[i] is not None], dtype=np.int64)
    data = _GraphList(graphs)
    model, dev = ckpt.model, ckpt.device

    @torch.inference_mode()
    def run(idx: np.ndarray) -> np.ndarray:
        out = model(data.batch(idx).to(dev)).float().cpu().numpy()
        if ckpt.task == "classification":
            return out.argmax(axis=1).astype(np.float64)
        out = out.astype(np.float64)
        return ckpt.normalizer.denorm(out) if ckpt.normalizer is not None else out

    model.eval()
    for start in range(0, len(ok), batch_size):
        idx = ok[start : start + batch_size]
        try:
            values[idx] = run(idx)
        except Exception:  # noqa: BLE001 - find the structure(s) that break the batch
            for i in idx:
                try:
                    values[i] = run(np.array([i]))[0]
                except Exception as exc:  # noqa: BLE001
                    errors[i] = f"model: {_reason(exc)}"
    return values, errors


