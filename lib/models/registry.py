"""A registry of the torch models by class name, so that checkpoints rebuild them; model sizes.

Every registered model keeps the arguments it was built with in ``model.init_kwargs``, captured once by
:func:`register` from its constructor's signature (as matgl's ``save_args`` does: nothing is typed twice);
a checkpoint stores ``{"class": name, "kwargs": init_kwargs}`` (see :func:`model_spec`) and
:func:`build_model` rebuilds it. Models register themselves with :func:`register`; a name not yet
registered makes :func:`build_model` import every module of this package once (so a MEGNet checkpoint
works without its caller importing ``lib.models.megnet`` first).
"""

from __future__ import annotations

import functools
import importlib
import inspect
import pkgutil
from typing import Any

from torch import nn

import lib.models as package

#: registered class name -> class (``lib.models.MODEL_TABLE`` is the table of models as the project runs them)
MODELS: dict[str, type[nn.Module]] = {}


#: a constructor argument annotated with one of these is recorded as that type (``cutoff=8`` -> 8.0)
_CASTS = {"int": int, "float": float, "bool": bool}


def register(cls: type[nn.Module]) -> type[nn.Module]:
    """Class decorator: make ``cls`` buildable by name from a checkpoint.

    Its ``__init__`` is wrapped so that every instance keeps the arguments it was built with in
    ``init_kwargs``: all of the signature's parameters, defaults included, an ``int``, ``float`` or ``bool``
    annotation applied. A class may define ``canonical_args(args) -> args`` (a staticmethod) to record an
    argument as it is resolved (CGCNN: its atom feature table instead of None); the model is then built
    from exactly what is recorded.
    """
    init = cls.__init__
    signature = inspect.signature(init)
    params = list(signature.parameters.values())[1:]
    if any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in params):
        raise TypeError(f"{cls.__name__}: a registered model names each constructor argument (no *args)")

    @functools.wraps(init)
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        bound = signature.bind(self, *args, **kwargs)
        bound.apply_defaults()
        given = {p.name: _cast(p, bound.arguments[p.name]) for p in params}
        if type(self) is cls and hasattr(cls, "canonical_args"):
            given = cls.canonical_args(given)
        init(self, **given)
        if type(self) is cls:
            self.init_kwargs = given

    cls.__init__ = __init__
    MODELS[cls.__name__] = cls
    return cls


def _cast(param: inspect.Parameter, value: Any) -> Any:
    cast = _CASTS.get(param.annotation if isinstance(param.annotation, str) else
                      getattr(param.annotation, "__name__", ""))
    return cast(value) if cast is not None and value is not None else value


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


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(number of trainable parameters, their size in bytes)."""
    params = [p for p in model.parameters() if p.requires_grad]
    return sum(p.numel() for p in params), sum(p.numel() * p.element_size() for p in params)


__all__ = ["MODELS", "register", "get_model_class", "model_spec", "build_model", "count_parameters"]
