"""A registry of the torch models by class name, so that checkpoints rebuild them; model sizes.

Every registered model keeps the keyword arguments it was built with in ``model.init_kwargs``; a
checkpoint stores ``{"class": name, "kwargs": init_kwargs}`` (see :func:`model_spec`) and
:func:`build_model` rebuilds it. Models register themselves with :func:`register`; a name not yet
registered makes :func:`build_model` import every module of this package once (so a MEGNet checkpoint
works without its caller importing ``lib.models.megnet`` first).
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

import numpy as np
import torch
from torch import nn

import lib.models as package

#: registered class name -> class (``lib.models.MODEL_TABLE`` is the table of models as the project runs them)
MODELS: dict[str, type[nn.Module]] = {}


def register(cls: type[nn.Module]) -> type[nn.Module]:
    """Class decorator: make ``cls`` buildable by name from a checkpoint."""
    MODELS[cls.__name__] = cls
    return cls


def get_model_class(name: str) -> type[nn.Module]:
    """The registered model class of that name (imports this package's modules if needed)."""
    if name not in MODELS:
        for mod in pkgutil.iter_modules(package.__path__):
            importlib.import_module(f"{package.__name__}.{mod.name}")
    try:
        return MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model class {name!r}; registered: {', '.join(sorted(MODELS))}") from None


def model_spec(model: nn.Module) -> dict[str, Any]:
    """``{"class": ..., "kwargs": ...}``: everything needed to rebuild ``model`` (without its weights)."""
    kwargs = getattr(model, "init_kwargs", None)
    if kwargs is None:
        raise TypeError(f"{type(model).__name__} keeps no init_kwargs; register it and store them")
    return {"class": type(model).__name__, "kwargs": dict(kwargs)}


def build_model(spec: dict[str, Any]) -> nn.Module:
    """A fresh model from :func:`model_spec`'s dict (weights are the caller's business)."""
    return get_model_class(spec["class"])(**spec["kwargs"])


def jsonable(value: Any) -> Any:
    """Hyperparameters for a JSON run record: arrays/tensors become a short description, not data."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, torch.Tensor | np.ndarray):
        return {"array_shape": list(value.shape), "dtype": str(value.dtype)}
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if hasattr(value, "as_dict"):
        return jsonable(value.as_dict())
    return repr(value)


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(number of trainable parameters, their size in bytes)."""
    params = [p for p in model.parameters() if p.requires_grad]
    return sum(p.numel() for p in params), sum(p.numel() * p.element_size() for p in params)


__all__ = ["MODELS", "register", "get_model_class", "model_spec", "build_model", "jsonable",
           "count_parameters"]
