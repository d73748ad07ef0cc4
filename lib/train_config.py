"""How a model trains, as one frozen dataclass (:class:`TrainConfig`); no torch here, so the model table's
recipes (``lib.models``) can name their settings without importing the training loop (``lib.train``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any


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
    tune_malloc: bool = True  # glibc keeps freed memory for reuse instead of unmapping it (lib.train)
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


__all__ = ["TrainConfig", "strict_replace"]
