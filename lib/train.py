"""One training run, shared by CGCNN, MEGNet and the SOAP MLP: best epoch on validation, a run record.

    cfg = TrainConfig()                                  # the thesis: SGD 0.01, momentum 0.9, 30 epochs
    record = fit(model, graphs, y, split, cfg, property="band_gap", seed=0, profile="smoke")
    record = fit(..., optimizer="adamw", lr=1e-3, scheduler="cosine", epochs=300)   # one override away

``data`` is anything with ``batch(indices) -> input`` where the input has ``.to(device)`` and the model
maps it to predictions (``lib.graphs.GraphSet`` -> ``GraphBatch``; a dense feature set for the SOAP MLP).
``y`` holds one target per item of ``data`` and ``split`` is ``{"train", "val", "test"}`` -> positional
indices (``lib.data.split``).

The loop, top to bottom: targets normalised with the training split's mean and std; each epoch a
permutation of the training indices from ``numpy.random.default_rng([seed, epoch])`` cut into batches;
forward, loss on the normalised target, backward, step; the scheduler steps once per epoch; the
validation MAE (accuracy for classifiers) picks the best epoch, whose weights give the test metrics in
the property's units. After every epoch the whole state (model, optimiser, scheduler, torch RNG, best
so far, curves) is saved atomically to ``<run>.state.pt``; a later ``fit`` with the same run name goes
on from there (also to extend a finished run to more epochs) and ends with the same numbers as an
uninterrupted run on CPU.

The record's ``curves`` hold, per epoch: ``train_mae`` (running mean over the epoch's batches, in
training mode, as the reference reports it), ``val_mae`` (eval mode, after the epoch; ``*_accuracy``
for classifiers), ``train_loss``, ``lr``, ``epoch_time_s`` (whole epoch) and ``train_step_time_s``
(the training batches alone).

Speed on CPU: batches come from ``data.batch`` (vectorised gathers, no DataLoader, no workers); the
epoch's batch index arrays are made at once from one permutation; glibc is told to keep freed memory
(:func:`tune_malloc`, half of a CGCNN step's CPU time went to page faults without it); ``compile=True``
fuses the model's memory-bound part when the model offers ``compile_hot_path``.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import json
import platform as _pf
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from lib import models, records
from lib.data.table import check_targets
from lib.device_graphs import DeviceGraphSet
from lib.devices import device_info, pick_device
from lib.ema import Ema
from lib.graphs import GraphSet
from lib.metrics import score
from lib.models.registry import count_parameters, model_spec
from lib.normalizer import Normalizer
from lib.records import jsonable
from lib.train_config import TrainConfig


def tune_malloc() -> bool:
    """Stop glibc from returning large freed blocks to the OS (Linux only; process-wide, idempotent).

    Every training step allocates and frees tensors of tens of MB (edges x 128 floats). glibc serves
    blocks above 32 MB with fresh ``mmap``s, so each one costs ~10k page faults when first touched:
    on 2 cores that was about half of the CPU time of a CGCNN step (measured: 116k page faults and
    0.29 s of kernel time per step of 256 crystals). With mmap off and a high trim threshold the heap
    keeps those blocks and the next step reuses them. Returns whether the setting was applied.
    """
    global _MALLOC_TUNED
    if _MALLOC_TUNED:
        return True
    if _pf.system() != "Linux" or _pf.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4
        ok = libc.mallopt(M_MMAP_MAX, 0) == 1 and libc.mallopt(M_TRIM_THRESHOLD, 2**31 - 1) == 1
    except OSError:
        return False
    _MALLOC_TUNED = ok
    return ok


_MALLOC_TUNED = False


def seed_everything(seed: int) -> None:
    """Seed torch (CPU and CUDA) before building a model, so its initial weights repeat."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)


def batches(indices: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Cut ``indices`` into consecutive batches; a last batch of one item joins the one before.

    (Batch norm cannot train on a single crystal, which may have a single atom.)
    """
    indices = np.asarray(indices)
    out = [indices[i : i + batch_size] for i in range(0, len(indices), batch_size)]
    if len(out) > 1 and len(out[-1]) < 2:
        last = out.pop()
        out[-1] = np.concatenate([out[-1], last])
    return out


def epoch_order(train_idx: np.ndarray, seed: int, epoch: int) -> np.ndarray:
    """The training indices in this epoch's order: a function of (seed, epoch) only, so resumes repeat it."""
    return np.random.default_rng([seed, epoch]).permutation(np.asarray(train_idx))


def _make_optimizer(cfg: TrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    name = cfg.optimizer.lower()
    if name == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    if name == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    raise ValueError(f"unknown optimizer {cfg.optimizer!r}; use sgd, adam or adamw")


def _make_scheduler(cfg: TrainConfig, opt: torch.optim.Optimizer):
    name = cfg.scheduler.lower()
    if name == "multistep":
        return torch.optim.lr_scheduler.MultiStepLR(opt, milestones=list(cfg.milestones), gamma=cfg.gamma)
    if name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(cfg.epochs, 1), eta_min=cfg.min_lr)
    if name == "none":
        return torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0)
    raise ValueError(f"unknown scheduler {cfg.scheduler!r}; use multistep, cosine or none")


def _loss_fn(cfg: TrainConfig) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    name = cfg.loss_name
    fns = {"mse": F.mse_loss, "l1": F.l1_loss, "huber": F.huber_loss, "cross_entropy": F.cross_entropy}
    if name not in fns:
        raise ValueError(f"unknown loss {name!r}; use {', '.join(fns)}")
    if (name == "cross_entropy") != (cfg.task == "classification"):
        raise ValueError(f"loss {name!r} does not fit task {cfg.task!r}")
    return fns[name]


@torch.inference_mode()
def predict_data(
    model: nn.Module,
    data,
    indices: np.ndarray,
    normalizer: Normalizer | None = None,
    batch_size: int = 1024,
    device: torch.device | str | None = None,
) -> np.ndarray:
    """Model outputs for ``data.batch(indices)`` in eval mode: (n,) in the target's units, or (n, C)."""
    device = pick_device(device) if device is not None else next(model.parameters()).device
    was_training = model.training
    model.eval()
    outs = []
    try:
        for idx in [indices[i : i + batch_size] for i in range(0, len(indices), batch_size)]:
            outs.append(model(data.batch(idx).to(device)).float().cpu().numpy())
    finally:
        model.train(was_training)
    if not outs:
        return np.zeros(0, dtype=np.float64)
    out = np.concatenate(outs).astype(np.float64)
    if normalizer is not None and out.ndim == 1:
        out = normalizer.denorm(out)
    return out


def _fingerprint(*parts: Any) -> str:
    h = hashlib.sha256()
    for p in parts:
        if isinstance(p, np.ndarray):
            h.update(np.ascontiguousarray(p).tobytes())
        else:
            h.update(json.dumps(p, sort_keys=True, default=str).encode())
    return h.hexdigest()[:16]


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """torch's CPU threads set to ``n`` inside the block (None: left as they are), restored after it."""
    before = torch.get_num_threads()
    if n:
        torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(before)


@dataclass
class _Run:
    """What names a run and goes into its record besides the numbers: its name, the model's name in the table,
    the property, seed and profile, where its files go, and what it was trained on."""

    name: str
    model_name: str
    property: str
    seed: int
    profile: Any
    runs_dir: Path
    unit: str | None
    graph_params: Any
    content_hash: str | None
    extra: dict | None

    @classmethod
    def of(cls, model: nn.Module, data, *, model_name, run_name, property, seed, profile, runs_dir, unit,
           graph_params, content_hash, extra) -> _Run:
        """``model_name`` defaults to the table's name of the model's class, else the class name in lower
        case; the graph parameters and content hash to the data's own (a GraphSet knows both)."""
        if model_name is None:
            info = models.for_class(type(model).__name__)
            model_name = info.name if info is not None else type(model).__name__.lower()
        if graph_params is None and hasattr(data, "params"):
            graph_params = data.params
        if content_hash is None:
            content_hash = (getattr(data, "report", None) or {}).get("content_hash")
        return cls(run_name or models.run_name(model_name, property, records.profile_name(profile), seed),
                   model_name, property, seed, profile,
                   Path(runs_dir) if runs_dir is not None else records.RUNS, unit,
                   jsonable(graph_params) if graph_params is not None else None, content_hash, extra)


@dataclass
class _Targets:
    """The targets as the loop sees them: the split's positional indices, the training split's normaliser
    (regression with ``normalize``) and the (normalised) targets as a tensor on the device."""

    y: np.ndarray
    idx: dict[str, np.ndarray]
    normalizer: Normalizer | None
    tensor: torch.Tensor
    task: str

    @classmethod
    def of(cls, y, split: dict, property: str, cfg: TrainConfig, device: torch.device) -> _Targets:
        y = np.asarray(y)
        idx = {k: np.asarray(split[k], dtype=np.int64) for k in ("train", "val", "test")}
        if len(idx["train"]) < 2 or len(idx["val"]) < 1 or len(idx["test"]) < 1:
            raise ValueError(f"split too small: { {k: len(v) for k, v in idx.items()} }")
        check_targets(y, idx, property)
        if cfg.task == "classification":
            return cls(y, idx, None, torch.as_tensor(y.astype(np.int64), device=device), cfg.task)
        normalizer = Normalizer.fit(y[idx["train"]]) if cfg.normalize else None
        y_n = normalizer.norm(y.astype(np.float64)) if normalizer else y.astype(np.float64)
        return cls(y, idx, normalizer, torch.as_tensor(y_n, dtype=torch.float32, device=device), cfg.task)

    @property
    def classify(self) -> bool:
        return self.task == "classification"

    @property
    def metric(self) -> str:
        """The metric that picks the best epoch: accuracy (higher is better) or MAE (lower)."""
        return "accuracy" if self.classify else "mae"

    def better(self, value: float, best: float) -> bool:
        return value > best if self.classify else value < best


@dataclass
class _State:
    """Everything a resumed run needs besides the weights, optimiser and scheduler, saved after each epoch."""

    epoch: int = 0  # epochs done
    best_metric: float = float("inf")
    best_epoch: int = -1
    best_state: dict | None = None
    curves: dict[str, list] = field(default_factory=dict)
    train_time_s: float = 0.0

    def start_curves(self, metric: str) -> None:
        for k in ("epoch", f"train_{metric}", f"val_{metric}", "train_loss", "lr", "epoch_time_s",
                  "train_step_time_s"):
            self.curves.setdefault(k, [])

    def add_epoch(self, **values: float) -> None:
        for k, v in values.items():
            self.curves[k].append(v)

    def saved(self) -> dict:
        return {"epoch": self.epoch, "best_metric": self.best_metric, "best_epoch": self.best_epoch,
                "best_state": self.best_state, "curves": self.curves, "train_time_s": self.train_time_s}

    @classmethod
    def from_saved(cls, saved: dict) -> _State:
        return cls(**{k: saved[k] for k in ("epoch", "best_metric", "best_epoch", "best_state", "curves",
                                            "train_time_s")})


@dataclass
class _Trainer:
    """One run's moving parts on one device: the model (and the module that steps: the model, or a compiled
    copy), optimiser, scheduler, weight average, loss, the data and the targets."""

    cfg: TrainConfig
    device: torch.device
    model: nn.Module
    step_model: nn.Module
    opt: torch.optim.Optimizer
    sched: Any
    ema: Ema | None
    data: Any
    targets: _Targets

    @classmethod
    def build(cls, model: nn.Module, data, targets: _Targets, cfg: TrainConfig, device: torch.device,
              seed: int) -> _Trainer:
        resident = cfg.resident if cfg.resident is not None else device.type == "cuda"
        if resident and isinstance(data, GraphSet):
            data = DeviceGraphSet(data, device)  # same batches, made on the device (lib.device_graphs)
        torch.manual_seed(seed)
        model.to(device)
        opt = _make_optimizer(cfg, model)
        sched = _make_scheduler(cfg, opt)
        step_model = model
        if cfg.compile:
            if hasattr(model, "compile_hot_path"):
                model.compile_hot_path()
            else:
                step_model = torch.compile(model, dynamic=True)
        ema = Ema(model, cfg.ema) if cfg.ema else None
        return cls(cfg, device, model, step_model, opt, sched, ema, data, targets)

    def train_epoch(self, order: np.ndarray, desc: str, progress: bool) -> tuple[float, float]:
        """One pass over the training indices in ``order``: (training metric, mean loss).

        The metric, in the target's units, is the running mean over the epoch's batches, in training mode, as
        the reference reports it.
        """
        cfg, device, t = self.cfg, self.device, self.targets
        loss_fn = _loss_fn(cfg)
        self.model.train()
        loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        err_sum = torch.zeros((), dtype=torch.float64, device=device)
        n_seen = 0
        epoch_batches = batches(order, cfg.batch_size)
        inner = tqdm(epoch_batches, desc=desc, unit="batch", leave=False,
                     disable=not progress or len(epoch_batches) < 20, dynamic_ncols=True)
        for bidx in inner:
            target = t.tensor[torch.from_numpy(bidx).to(device)]
            out = self.step_model(self.data.batch(bidx).to(device))
            loss = loss_fn(out, target)
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip:
                nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
            self.opt.step()
            if self.ema is not None:
                self.ema.update()
            with torch.no_grad():
                loss_sum += loss.detach().double() * len(bidx)
                if t.classify:
                    err_sum += (out.argmax(1) == target).sum().double()
                else:
                    err_sum += (out.detach() - target).abs().sum().double()
            n_seen += len(bidx)
        inner.close()
        self.sched.step()
        std = t.normalizer.std if t.normalizer else 1.0
        return float(err_sum) / n_seen * (1.0 if t.classify else std), float(loss_sum) / n_seen

    def validate(self, st: _State, epoch: int) -> float:
        """The validation metric (of the weight average, when there is one); the best epoch kept in ``st``."""
        t = self.targets
        with self.ema.swapped() if self.ema is not None else contextlib.nullcontext():
            value = score(t.task, t.y[t.idx["val"]], self.predict("val"))[t.metric]
            if st.best_epoch < 0 or t.better(value, st.best_metric):
                st.best_metric, st.best_epoch = value, epoch
                st.best_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        return value

    def predict(self, part: str) -> np.ndarray:
        t = self.targets
        return predict_data(self.model, self.data, t.idx[part], t.normalizer, self.cfg.eval_batch_size,
                            self.device)

    def saved(self, key: str, st: _State) -> dict:
        """The resumable state: weights, optimiser, scheduler, RNGs, the weight average and ``st``."""
        cuda = self.device.type == "cuda"
        return {"key": key, **st.saved(), "model": self.model.state_dict(),
                "optimizer": self.opt.state_dict(), "scheduler": self.sched.state_dict(),
                "torch_rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state(self.device) if cuda else None,
                "ema": self.ema.saved() if self.ema is not None else None}

    def load(self, saved: dict) -> None:
        self.model.load_state_dict(saved["model"])
        self.opt.load_state_dict(saved["optimizer"])
        self.sched.load_state_dict(saved["scheduler"])
        torch.set_rng_state(saved["torch_rng"].cpu())
        if self.device.type == "cuda" and saved.get("cuda_rng") is not None:
            torch.cuda.set_rng_state(saved["cuda_rng"].cpu(), self.device)
        if self.ema is not None:
            self.ema.load(saved["ema"])


def _state_key(cfg: TrainConfig, model: nn.Module, seed: int, graph_params: Any, t: _Targets) -> str:
    """What a saved state must match to be resumed: the data, split, model and settings (the number of epochs
    may grow, except under a cosine schedule, whose shape depends on it)."""
    key_cfg = {k: v for k, v in cfg.as_dict().items()
               if k not in ("device", "num_threads", "compile", "tune_malloc", "eval_batch_size", "resident")}
    if cfg.scheduler != "cosine":
        key_cfg.pop("epochs")
    if not cfg.ema:  # absent when off, so that the keys of runs made before it existed do not change
        key_cfg.pop("ema")
    return _fingerprint(key_cfg, jsonable(model_spec(model)), seed, graph_params, t.idx["train"],
                        t.idx["val"], t.idx["test"], t.y.astype(np.float64))


def _resume(trainer: _Trainer, path: Path, key: str, name: str) -> tuple[_State, int | None]:
    """The state saved at ``path`` loaded into ``trainer`` when it matches ``key`` and does not have more
    epochs than asked: (state, epochs done); else, with a warning that says why, a fresh state and None."""
    try:
        saved = records.torch_load(path, map_location=trainer.device)
    except Exception as err:  # noqa: BLE001 - a corrupt state is reported and replaced, not fatal
        warnings.warn(f"could not read {path} ({err}); training {name} from scratch", stacklevel=3)
        return _State(), None
    if saved.get("key") != key:
        warnings.warn(f"{path} belongs to other data or settings; training {name} from scratch", stacklevel=3)
        return _State(), None
    if saved["epoch"] > trainer.cfg.epochs:
        warnings.warn(f"{path} has {saved['epoch']} epochs, more than the {trainer.cfg.epochs} asked; "
                      f"training {name} from scratch", stacklevel=3)
        return _State(), None
    trainer.load(saved)
    return _State.from_saved(saved), saved["epoch"]


def _train(trainer: _Trainer, st: _State, run: _Run, key: str, progress: bool,
           callback: Callable[[int, dict], None] | None) -> None:
    """The epochs from ``st.epoch`` to the configured number; the state is saved after each."""
    cfg, metric, path = trainer.cfg, trainer.targets.metric, records.state_path(run.name, run.runs_dir)
    bar = tqdm(total=cfg.epochs, initial=st.epoch, desc=run.name, unit="epoch", disable=not progress,
               dynamic_ncols=True)
    if st.epoch:
        bar.set_postfix(train=st.curves[f"train_{metric}"][-1], val=st.curves[f"val_{metric}"][-1])
    try:
        for epoch in range(st.epoch, cfg.epochs):
            t0 = time.perf_counter()
            lr = trainer.opt.param_groups[0]["lr"]
            order = epoch_order(trainer.targets.idx["train"], run.seed, epoch)
            train_metric, loss = trainer.train_epoch(order, f"epoch {epoch + 1}", progress)
            t_train = time.perf_counter() - t0
            val_metric = trainer.validate(st, epoch)
            dt = time.perf_counter() - t0
            st.train_time_s += dt
            st.epoch = epoch + 1
            st.add_epoch(**{"epoch": epoch + 1, f"train_{metric}": train_metric, f"val_{metric}": val_metric,
                            "train_loss": loss, "lr": lr, "epoch_time_s": dt, "train_step_time_s": t_train})
            records.torch_save(trainer.saved(key, st), path)
            bar.update(1)
            bar.set_postfix(train=f"{train_metric:.4g}", val=f"{val_metric:.4g}")
            if callback is not None:
                callback(epoch, {"train": train_metric, "val": val_metric, "time_s": dt})
    finally:
        bar.close()


def _finished_record(run: _Run, key: str, epochs: int) -> dict | None:
    """The record already written for this run trained for all ``epochs`` on the same data and settings (its
    checkpoint beside it, with or without its training state: ``lib.records.restore`` brings back records
    and checkpoints), so that running a finished run again leaves its record and provenance alone; None when
    there is no such record (the run then resumes from its state, or trains)."""
    path = records.record_path(run.name, run.runs_dir)
    if not path.exists() or not records.checkpoint_path(run.name, run.runs_dir).exists():
        return None
    try:
        rec = records.read_record(path)
    except (OSError, ValueError):
        return None
    return rec if rec.get("data_key") == key and rec.get("epochs_run") == epochs else None


def _finish(trainer: _Trainer, st: _State, run: _Run, key: str, resumed_from: int | None,
            fit_wall_time_s: float) -> dict:
    """The best epoch's weights back in the model, its validation and test predictions, the run record, the
    checkpoint; the record (also written)."""
    model, cfg, t = trainer.model, trainer.cfg, trainer.targets
    if st.best_state is not None:
        model.load_state_dict(st.best_state)
    n_params, n_bytes = count_parameters(model)
    spec = model_spec(model)
    checkpoint = records.checkpoint_path(run.name, run.runs_dir)
    record = records.new_record(
        run=run.name, model=run.model_name, model_class=spec["class"], property=run.property, seed=run.seed,
        profile=run.profile, split=t.idx, y=t.y, predictions={k: trainer.predict(k) for k in ("val", "test")},
        ids=getattr(trainer.data, "material_ids", None), task=cfg.task, unit=run.unit,
        hparams={"model": jsonable(spec["kwargs"]), "train": cfg.as_dict(), "graph": run.graph_params},
        train_time_s=st.train_time_s, device=device_info(trainer.device), n_parameters=n_params,
        parameter_bytes=n_bytes, normalizer=t.normalizer, content_hash=run.content_hash,
        checkpoint=checkpoint.name, extra=run.extra,
        best_epoch=st.best_epoch + 1, epochs_run=st.epoch,
        time_per_epoch_s=st.train_time_s / max(len(st.curves["epoch"]), 1),
        fit_wall_time_s=fit_wall_time_s, resumed_from_epoch=resumed_from,
        compiled=cfg.compile, malloc_tuned=_MALLOC_TUNED, curves=st.curves, data_key=key,
    )
    records.save_checkpoint(
        checkpoint, model, normalizer=t.normalizer.as_dict() if t.normalizer else None,
        graph_params=run.graph_params, target=run.property, unit=record["unit"], label=record["label"],
        task=cfg.task, record=json.loads(json.dumps({k: v for k, v in record.items()
                                                     if k not in ("curves", "test_predictions",
                                                                  "val_predictions")})),
    )
    records.write_record(record, run.runs_dir)
    return record


def fit(
    model: nn.Module,
    data,
    y: np.ndarray,
    split: dict[str, np.ndarray],
    config: TrainConfig | None = None,
    *,
    property: str = "target",
    seed: int = 0,
    profile: Any = "custom",
    model_name: str | None = None,
    unit: str | None = None,
    runs_dir: str | Path | None = None,
    run_name: str | None = None,
    graph_params: Any = None,
    content_hash: str | None = None,
    extra: dict | None = None,
    resume: bool = True,
    progress: bool = True,
    callback: Callable[[int, dict], None] | None = None,
    **overrides: Any,
) -> dict:
    """Train ``model`` on ``data``/``y`` with ``split``; return (and write) the run record.

    Parameters
    ----------
    model : an ``nn.Module`` mapping ``data.batch(idx)`` to (B,) predictions or (B, C) class scores.
        Seed before building it (:func:`seed_everything`) for repeatable initial weights.
    data : has ``batch(indices) -> input with .to(device)``; the graph parameters, material ids and
        content hash are taken from its ``params``, ``material_ids`` and ``report["content_hash"]``
        when it has them (a ``GraphSet`` does).
    y : (n,) targets aligned with ``data`` (class labels 0..C-1 for classification).
    split : ``{"train", "val", "test"}`` positional index arrays into ``data``.
    config, **overrides : :class:`TrainConfig` and field overrides (``epochs=4, optimizer="adamw"``).
    property, seed, profile, model_name : name the run ``<model>_<property>_<profile>_s<seed>``
        (``model_name`` defaults to the model's name in ``lib.models.MODEL_TABLE``, else the class name in
        lower case; ``profile`` a name or a Profile).
    unit : the target's unit (default: looked up in ``lib.data.TARGETS``; a column outside it has none).
    runs_dir : where the record, checkpoint and state go (default ``results/runs``); None-able.
    resume : go on from ``<run>.state.pt`` if it exists and matches (same data, split, settings); a run
        already finished (its record, with the same data key and all epochs, and its checkpoint) is returned
        as recorded, untouched, with its weights loaded into ``model``.
    callback : called as ``callback(epoch, info)`` after each epoch's state is saved (raise to stop).

    Returns the run record (also written to ``<runs_dir>/<run>.json``, checkpoint beside it).
    """
    cfg = (config or TrainConfig()).replace(**overrides)
    if cfg.task not in ("regression", "classification"):
        raise ValueError(f"unknown task {cfg.task!r}; use regression or classification")
    _loss_fn(cfg)  # a bad loss name fails before anything else
    device = pick_device(cfg.device)
    with torch_threads(cfg.num_threads):
        if cfg.tune_malloc and device.type == "cpu":
            tune_malloc()
        run = _Run.of(model, data, model_name=model_name, run_name=run_name, property=property, seed=seed,
                      profile=profile, runs_dir=runs_dir, unit=unit, graph_params=graph_params,
                      content_hash=content_hash, extra=extra)
        targets = _Targets.of(y, split, property, cfg, device)
        trainer = _Trainer.build(model, data, targets, cfg, device, seed)
        key = _state_key(cfg, model, seed, run.graph_params, targets)
        done = _finished_record(run, key, cfg.epochs) if resume else None
        if done is not None:  # nothing left to train: the run's record stays as it was written
            saved = records.torch_load(records.checkpoint_path(run.name, run.runs_dir), map_location=device)
            trainer.model.load_state_dict(saved["state_dict"])
            return done
        path = records.state_path(run.name, run.runs_dir)
        fresh = not (resume and path.exists())
        st, resumed_from = (_State(), None) if fresh else _resume(trainer, path, key, run.name)
        st.start_curves(targets.metric)
        t_fit = time.perf_counter()
        _train(trainer, st, run, key, progress, callback)
        return _finish(trainer, st, run, key, resumed_from, time.perf_counter() - t_fit)


__all__ = ["TrainConfig", "Normalizer", "fit", "predict_data", "pick_device", "seed_everything", "batches",
           "epoch_order", "torch_threads", "tune_malloc"]
