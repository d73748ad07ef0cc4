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
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
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
from lib.graphs import GraphSet
from lib.metrics import accuracy, regression_metrics
from lib.models.registry import count_parameters, jsonable, model_spec
from lib.normalizer import Normalizer
from lib.records import pick_device


def strict_replace(config: Any, **overrides: Any) -> Any:
    """``dataclasses.replace`` for a frozen config: unknown names are an error (not a silent no-op),
    and a list given for a tuple field becomes a tuple (so the config stays hashable)."""
    known = {f.name for f in fields(config)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise TypeError(f"unknown {type(config).__name__} field(s) {unknown}; known: {sorted(known)}")
    for k, v in overrides.items():
        if isinstance(getattr(config, k), tuple) and isinstance(v, list):
            overrides[k] = tuple(v)
    return replace(config, **overrides)


@dataclass(frozen=True)
class TrainConfig:
    """Training hyperparameters; defaults are the thesis's (the reference CGCNN's) settings."""

    epochs: int = 30
    batch_size: int = 256
    optimizer: str = "sgd"  # sgd | adam | adamw
    lr: float = 0.01
    momentum: float = 0.9  # SGD only
    weight_decay: float = 0.0
    scheduler: str = "multistep"  # multistep | cosine | none (stepped once per epoch)
    milestones: tuple[int, ...] = (100,)  # MultiStepLR
    gamma: float = 0.1  # MultiStepLR
    min_lr: float = 0.0  # cosine
    loss: str | None = None  # mse | l1 | huber | cross_entropy; None: mse (regression), cross_entropy
    task: str = "regression"  # regression | classification
    normalize: bool = True  # standardise the regression target with the training split's mean and std
    grad_clip: float | None = None  # max gradient norm, None: no clipping
    eval_batch_size: int = 1024
    device: str | None = None  # None: cuda if available, else cpu
    num_threads: int | None = None  # torch CPU threads during fit (restored after); None: torch's default
    compile: bool = False  # torch.compile the model's hot path (model.compile_hot_path(), else the model)
    resident: bool | None = None  # a GraphSet copied to the device once, batches made there (None: on CUDA)
    tune_malloc: bool = True  # glibc: keep freed memory for reuse instead of unmapping it (see below)
    ema: float = 0.0  # decay of a moving average of the weights, updated every step (0: off); when on, the
    #                   averaged weights are validated, kept as the best epoch and written to the checkpoint

    def replace(self, **overrides: Any) -> TrainConfig:
        """A copy with some fields changed; unknown names are an error, not a silent no-op."""
        return strict_replace(self, **overrides)

    @property
    def loss_name(self) -> str:
        return self.loss or ("cross_entropy" if self.task == "classification" else "mse")

    def as_dict(self) -> dict:
        d = asdict(self)
        d["milestones"] = list(self.milestones)
        d["loss"] = self.loss_name
        return d


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


def _score(task: str, y_true: np.ndarray, out: np.ndarray) -> dict[str, float]:
    if task == "classification":
        return {"accuracy": accuracy(y_true, out.argmax(axis=1)), "n": int(len(y_true))}
    return regression_metrics(y_true, out)


def _fingerprint(*parts: Any) -> str:
    h = hashlib.sha256()
    for p in parts:
        if isinstance(p, np.ndarray):
            h.update(np.ascontiguousarray(p).tobytes())
        else:
            h.update(json.dumps(p, sort_keys=True, default=str).encode())
    return h.hexdigest()[:16]


class _Ema:
    """An exponential moving average of a model's weights and buffers, updated after every optimiser step.

    ``swapped()`` puts the averaged weights into the model for the time of a ``with`` block (validation,
    keeping the best epoch) and the trained ones back after it.
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"ema decay must be in (0, 1), got {decay}")
        self.model, self.decay = model, float(decay)
        self.state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        self._float = [k for k, v in self.state.items() if v.is_floating_point()]
        self.steps = 0

    @torch.no_grad()
    def update(self) -> None:
        # warm-up: the decay grows as (1 + n) / (10 + n) towards its value, so the first, random weights
        # fade out at once (with 0.999 from the first step, 15 % of the initial weights were still in the
        # average after 1,900 steps, and the averaged model was useless)
        self.steps += 1
        decay = min(self.decay, (1.0 + self.steps) / (10.0 + self.steps))
        current = self.model.state_dict()
        torch._foreach_lerp_([self.state[k] for k in self._float], [current[k] for k in self._float],
                             1.0 - decay)
        for k, v in current.items():
            if not v.is_floating_point():
                self.state[k].copy_(v)

    def load(self, state: dict) -> None:
        self.steps = int(state.pop("_steps", 0)) if "_steps" in state else self.steps
        for k, v in state.items():
            self.state[k].copy_(v)

    def saved(self) -> dict:
        """The average and its step count, for the resumable state."""
        return {**self.state, "_steps": torch.tensor(self.steps)}

    @contextlib.contextmanager
    def swapped(self):
        trained = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        self.model.load_state_dict(self.state)
        try:
            yield
        finally:
            self.model.load_state_dict(trained)


@dataclass
class _State:
    """Everything a resumed run needs, saved after each epoch."""

    epoch: int = 0  # epochs done
    best_metric: float = float("inf")
    best_epoch: int = -1
    best_state: dict | None = None
    curves: dict[str, list] = field(default_factory=dict)
    train_time_s: float = 0.0


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
    resume : go on from ``<run>.state.pt`` if it exists and matches (same data, split, settings).
    callback : called as ``callback(epoch, info)`` after each epoch's state is saved (raise to stop).

    Returns the run record (also written to ``<runs_dir>/<run>.json``, checkpoint beside it).
    """
    cfg = (config or TrainConfig()).replace(**overrides)
    if cfg.task not in ("regression", "classification"):
        raise ValueError(f"unknown task {cfg.task!r}; use regression or classification")
    _loss_fn(cfg)  # a bad loss name fails before anything else
    device = pick_device(cfg.device)
    threads_before = torch.get_num_threads()
    if cfg.num_threads:
        torch.set_num_threads(int(cfg.num_threads))
    try:
        return _fit(model, data, y, split, cfg, device, property=property, seed=seed, profile=profile,
                    model_name=model_name, unit=unit, runs_dir=runs_dir, run_name=run_name,
                    graph_params=graph_params, content_hash=content_hash, extra=extra, resume=resume,
                    progress=progress, callback=callback)
    finally:
        torch.set_num_threads(threads_before)


def _fit(model, data, y, split, cfg: TrainConfig, device: torch.device, *, property, seed, profile,
         model_name, unit, runs_dir, run_name, graph_params, content_hash, extra, resume, progress,
         callback) -> dict:
    classify = cfg.task == "classification"
    loss_fn = _loss_fn(cfg)
    if cfg.tune_malloc and device.type == "cpu":
        tune_malloc()
    prof_name = getattr(profile, "name", profile)
    if model_name is None:  # the table's name for a model of the table, else the class name in lower case
        info = models.for_class(type(model).__name__)
        model_name = info.name if info is not None else type(model).__name__.lower()
    name = run_name or models.run_name(model_name, property, str(prof_name), seed)
    runs_dir = Path(runs_dir) if runs_dir is not None else records.RUNS
    if graph_params is None and hasattr(data, "params"):
        graph_params = data.params
    if content_hash is None:  # a GraphSet knows the hash of the table it was built from
        content_hash = (getattr(data, "report", None) or {}).get("content_hash")
    graph_params = jsonable(graph_params) if graph_params is not None else None

    y = np.asarray(y)
    idx = {k: np.asarray(split[k], dtype=np.int64) for k in ("train", "val", "test")}
    if len(idx["train"]) < 2 or len(idx["val"]) < 1 or len(idx["test"]) < 1:
        raise ValueError(f"split too small: { {k: len(v) for k, v in idx.items()} }")
    check_targets(y, idx, property)
    normalizer = Normalizer.fit(y[idx["train"]]) if (not classify and cfg.normalize) else None
    if classify:
        y_t = torch.as_tensor(y.astype(np.int64), device=device)
    else:
        y_n = normalizer.norm(y.astype(np.float64)) if normalizer else y.astype(np.float64)
        y_t = torch.as_tensor(y_n, dtype=torch.float32, device=device)
    std = normalizer.std if normalizer else 1.0

    if (cfg.resident if cfg.resident is not None else device.type == "cuda") and isinstance(data, GraphSet):
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

    # resumable state: same data, split, model and settings (the number of epochs may grow, except
    # under a cosine schedule, whose shape depends on it)
    key_cfg = {k: v for k, v in cfg.as_dict().items()
               if k not in ("device", "num_threads", "compile", "tune_malloc", "eval_batch_size", "resident")}
    if cfg.scheduler != "cosine":
        key_cfg.pop("epochs")
    if not cfg.ema:  # absent when off, so that the keys of runs made before it existed do not change
        key_cfg.pop("ema")
    key = _fingerprint(key_cfg, jsonable(model_spec(model)), seed, graph_params, idx["train"], idx["val"],
                       idx["test"], y.astype(np.float64))
    st_path = records.state_path(name, runs_dir)
    st = _State()
    resumed_from = None
    ema = _Ema(model, cfg.ema) if cfg.ema else None
    if resume and st_path.exists():
        try:
            saved = records.torch_load(st_path, map_location=device)
        except Exception as err:  # noqa: BLE001 - a corrupt state is reported and replaced, not fatal
            warnings.warn(f"could not read {st_path} ({err}); training {name} from scratch", stacklevel=2)
            saved = None
        if saved is not None and saved.get("key") != key:
            warnings.warn(f"{st_path} belongs to other data or settings; training {name} from scratch",
                          stacklevel=2)
        elif saved is not None and saved["epoch"] > cfg.epochs:
            warnings.warn(f"{st_path} has {saved['epoch']} epochs, more than the {cfg.epochs} asked; "
                          f"training {name} from scratch", stacklevel=2)
        elif saved is not None:
            model.load_state_dict(saved["model"])
            opt.load_state_dict(saved["optimizer"])
            sched.load_state_dict(saved["scheduler"])
            torch.set_rng_state(saved["torch_rng"].cpu())
            if device.type == "cuda" and saved.get("cuda_rng") is not None:
                torch.cuda.set_rng_state(saved["cuda_rng"].cpu(), device)
            if ema is not None:
                ema.load(saved["ema"])
            st = _State(epoch=saved["epoch"], best_metric=saved["best_metric"],
                        best_epoch=saved["best_epoch"], best_state=saved["best_state"],
                        curves=saved["curves"], train_time_s=saved["train_time_s"])
            resumed_from = st.epoch

    metric_name = "accuracy" if classify else "mae"
    for k in ("epoch", f"train_{metric_name}", f"val_{metric_name}", "train_loss", "lr", "epoch_time_s",
              "train_step_time_s"):
        st.curves.setdefault(k, [])

    bar = tqdm(total=cfg.epochs, initial=st.epoch, desc=name, unit="epoch", disable=not progress,
               dynamic_ncols=True)
    if st.epoch:
        bar.set_postfix(train=st.curves[f"train_{metric_name}"][-1], val=st.curves[f"val_{metric_name}"][-1])
    t_fit = time.perf_counter()
    try:
        for epoch in range(st.epoch, cfg.epochs):
            t0 = time.perf_counter()
            model.train()
            lr = opt.param_groups[0]["lr"]
            loss_sum = torch.zeros((), dtype=torch.float64, device=device)
            err_sum = torch.zeros((), dtype=torch.float64, device=device)
            n_seen = 0
            epoch_batches = batches(epoch_order(idx["train"], seed, epoch), cfg.batch_size)
            inner = tqdm(epoch_batches, desc=f"epoch {epoch + 1}", unit="batch", leave=False,
                         disable=not progress or len(epoch_batches) < 20, dynamic_ncols=True)
            for bidx in inner:
                inp = data.batch(bidx).to(device)
                target = y_t[torch.from_numpy(bidx).to(device)]
                out = step_model(inp)
                loss = loss_fn(out, target)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if cfg.grad_clip:
                    nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                opt.step()
                if ema is not None:
                    ema.update()
                with torch.no_grad():
                    loss_sum += loss.detach().double() * len(bidx)
                    if classify:
                        err_sum += (out.argmax(1) == target).sum().double()
                    else:
                        err_sum += (out.detach() - target).abs().sum().double()
                n_seen += len(bidx)
            inner.close()
            sched.step()
            t_train = time.perf_counter() - t0
            train_metric = float(err_sum) / n_seen * (1.0 if classify else std)
            with ema.swapped() if ema is not None else contextlib.nullcontext():
                val_out = predict_data(model, data, idx["val"], normalizer, cfg.eval_batch_size, device)
                val_metric = _score(cfg.task, y[idx["val"]], val_out)[metric_name]
                better = val_metric > st.best_metric if classify else val_metric < st.best_metric
                if st.best_epoch < 0 or better:
                    st.best_metric, st.best_epoch = val_metric, epoch
                    st.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            dt = time.perf_counter() - t0
            st.train_time_s += dt
            st.epoch = epoch + 1
            for k, v in (("epoch", epoch + 1), (f"train_{metric_name}", train_metric),
                         (f"val_{metric_name}", val_metric), ("train_loss", float(loss_sum) / n_seen),
                         ("lr", lr), ("epoch_time_s", dt), ("train_step_time_s", t_train)):
                st.curves[k].append(v)
            records.torch_save({
                "key": key, "epoch": st.epoch, "model": model.state_dict(), "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict(), "torch_rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
                "best_metric": st.best_metric, "best_epoch": st.best_epoch, "best_state": st.best_state,
                "curves": st.curves, "train_time_s": st.train_time_s,
                "ema": ema.saved() if ema is not None else None,
            }, st_path)
            bar.update(1)
            bar.set_postfix(train=f"{train_metric:.4g}", val=f"{val_metric:.4g}")
            if callback is not None:
                callback(epoch, {"train": train_metric, "val": val_metric, "time_s": dt})
    finally:
        bar.close()

    # the best epoch's weights give the test metrics
    if st.best_state is not None:
        model.load_state_dict(st.best_state)
    preds = {k: predict_data(model, data, idx[k], normalizer, cfg.eval_batch_size, device)
             for k in ("val", "test")}
    metrics = {k: _score(cfg.task, y[idx[k]], preds[k]) for k in ("val", "test")}
    n_params, n_bytes = count_parameters(model)
    ids = getattr(data, "material_ids", None)
    test_ids = [str(ids[i]) for i in idx["test"]] if ids is not None else [int(i) for i in idx["test"]]
    spec = model_spec(model)
    record = records.new_record(
        run=name, model=model_name, model_class=spec["class"], property=property, seed=seed, profile=profile,
        split=idx, metrics=metrics, task=cfg.task, unit=unit,
        hparams={"model": jsonable(spec["kwargs"]), "train": cfg.as_dict(), "graph": graph_params},
        train_time_s=st.train_time_s, device=records.device_info(device), n_parameters=n_params,
        parameter_bytes=n_bytes, normalizer=normalizer, content_hash=content_hash,
        checkpoint=records.checkpoint_path(name, runs_dir).name, test_ids=test_ids, y=y, y_pred=preds["test"],
        val_pred=preds["val"],
        extra=extra,
        best_epoch=st.best_epoch + 1, epochs_run=st.epoch,
        time_per_epoch_s=st.train_time_s / max(len(st.curves["epoch"]), 1),
        fit_wall_time_s=time.perf_counter() - t_fit, resumed_from_epoch=resumed_from,
        compiled=cfg.compile, malloc_tuned=_MALLOC_TUNED, curves=st.curves, data_key=key,
    )
    records.save_checkpoint(
        records.checkpoint_path(name, runs_dir), model,
        normalizer=normalizer.as_dict() if normalizer else None, graph_params=graph_params, target=property,
        unit=record["unit"], label=record["label"], task=cfg.task,
        record=json.loads(json.dumps({k: v for k, v in record.items()
                                      if k not in ("curves", "test_predictions", "val_predictions")})),
    )
    records.write_record(record, runs_dir)
    return record


def load_run(name_or_path: str | Path, runs_dir: str | Path | None = None) -> dict:
    """A run record by name or path (see ``lib.records`` for listing and checkpoints)."""
    return records.read_record(name_or_path, runs_dir)


__all__ = ["TrainConfig", "Normalizer", "fit", "predict_data", "pick_device", "seed_everything", "batches",
           "epoch_order", "load_run", "tune_malloc"]
