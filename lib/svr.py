"""SOAP-SVR: scikit-learn's ``SVR`` (RBF kernel, default hyperparameters) on sparse SOAP rows -> a run record.

The thesis fed SOAP vectors to ``sklearn.svm.SVR`` with its defaults: RBF kernel, C = 1, epsilon = 0.1,
gamma = "scale" (1 / (n_features * Var(X_train)), the variance over every entry of the matrix), on a
random 80:20 split (no validation set: nothing is tuned). We keep those defaults.

Target scaling (the thesis does not say; a choice we make and record): by default the target is
standardised with the training split's mean and std, exactly as the GNNs' targets are
(``lib.normalizer.Normalizer``), and predictions are mapped back. With ``standardize_target=False`` the SVR
sees raw units, where epsilon = 0.1 is an absolute tube of 0.1 eV/atom or 0.1 log10 GPa: about a tenth
of the spread of a formation energy but a third of that of log10 K, so the two choices differ a lot
across properties. Standardising makes epsilon (and C) mean the same thing for all seven properties.

Speed: libsvm works on the CSR matrix directly (its sparse kernel: a sparse dot product per kernel
value, ~14 nonzeros a row here instead of ~11,000 dense entries), and caches kernel rows in
``cache_size`` MB (sklearn's default 200). A training set of 29,400 crystals has a 29,400^2 float32
kernel of 3.5 GB; a cache that holds it computes each kernel value once, a small one recomputes rows
over and over. The cache changes the speed, never the result, so it is not a hyperparameter.

Records: like the GNNs' (``lib.train.fit``): split sizes, metrics, training wall time, device,
``n_parameters`` = stored numbers of the fitted model (support-vector nonzeros + dual coefficients +
intercept), ``parameter_bytes`` = size of the pickled model (as before: a size, nothing is unpickled),
plus ``n_support``.

The fitted model is saved as data, never as code: ``<run>.svr.npz`` holds the support vectors (CSR
arrays), the dual coefficients, the intercept, the kernel's parameters and the target normaliser, read
back with ``numpy.load(allow_pickle=False)``; :class:`SVRArrays` evaluates sklearn's decision function
from them (equal to ``SVR.predict`` to ~1e-12). A shared results folder is then safe to open: a
pickle runs whatever code its author put in it. Pickled ``.svr.pkl`` files of older versions are
refused (refit them).
"""

from __future__ import annotations

import json
import pickle
import time
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sps

from lib import models, records
from lib.data.table import check_targets
from lib.devices import device_info
from lib.normalizer import Normalizer
from lib.paths import atomic_path

MODEL_NAME = models.get("soap_svr").name
SVR_FORMAT = "compendium-svr/2"  # numpy arrays + JSON; /1 was a pickle (refused)
KERNELS = ("rbf", "linear", "poly", "sigmoid")


def svr_model_path(name: str, runs_dir: str | Path | None = None) -> Path:
    """The saved SVR of run ``name`` (beside its record; the GNNs' checkpoints are ``.pt``)."""
    return Path(runs_dir or records.RUNS) / f"{name}.svr.npz"


@dataclass(frozen=True)
class SVRArrays:
    """A fitted epsilon-SVR as plain arrays, with sklearn's decision function.

    predict(X) = sum_i dual_coef[i] * K(support_vectors[i], x) + intercept, with K the kernel of
    ``sklearn.svm.SVR``: rbf exp(-gamma |x - s|^2), linear x.s, poly (gamma x.s + coef0)^degree,
    sigmoid tanh(gamma x.s + coef0). Predictions are on the scale the SVR was fitted on (standardised
    when the record's normaliser says so: ``Normalizer.denorm`` maps them back).
    """

    support_vectors: sps.csr_matrix
    dual_coef: np.ndarray  # (n_support,)
    intercept: float
    kernel: str
    gamma: float
    coef0: float
    degree: int

    @classmethod
    def from_model(cls, model) -> SVRArrays:
        if model.kernel not in KERNELS:
            raise ValueError(f"an SVR with kernel {model.kernel!r} cannot be saved as arrays; "
                             f"use one of {KERNELS}")
        dual = model.dual_coef_
        dual = np.asarray(dual.todense() if sps.issparse(dual) else dual, dtype=np.float64).reshape(-1)
        return cls(sps.csr_matrix(model.support_vectors_, dtype=np.float64), dual,
                   float(np.asarray(model.intercept_).reshape(-1)[0]), str(model.kernel), float(model._gamma),
                   float(model.coef0), int(model.degree))

    def predict(self, X) -> np.ndarray:
        """The decision function for rows ``X`` (sparse or dense), (n,) float64."""
        X = sps.csr_matrix(X, dtype=np.float64) if sps.issparse(X) else np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.support_vectors.shape[1]:
            raise ValueError(f"rows of {X.shape[-1]} features for a model of {self.support_vectors.shape[1]}")
        dots = X @ self.support_vectors.T
        dots = np.asarray(dots.todense() if sps.issparse(dots) else dots)
        if self.kernel == "rbf":
            xx = np.asarray(X.multiply(X).sum(axis=1)).reshape(-1) if sps.issparse(X) else (X * X).sum(axis=1)
            sv = self.support_vectors
            ss = np.asarray(sv.multiply(sv).sum(axis=1)).reshape(-1)
            k = np.exp(-self.gamma * np.maximum(xx[:, None] + ss[None, :] - 2.0 * dots, 0.0))
        elif self.kernel == "linear":
            k = dots
        elif self.kernel == "poly":
            k = (self.gamma * dots + self.coef0) ** self.degree
        else:
            k = np.tanh(self.gamma * dots + self.coef0)
        return k @ self.dual_coef + self.intercept

    def arrays(self) -> dict[str, np.ndarray]:
        sv = self.support_vectors
        return {"sv_data": sv.data, "sv_indices": sv.indices.astype(np.int64),
                "sv_indptr": sv.indptr.astype(np.int64), "sv_shape": np.asarray(sv.shape, dtype=np.int64),
                "dual_coef": self.dual_coef, "intercept": np.asarray([self.intercept]),
                "kernel": np.asarray([self.kernel, str(self.gamma), str(self.coef0), str(self.degree)])}


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


def save_svr(path: str | Path, model, normalizer: dict, meta: dict) -> Path:
    """Write a fitted SVR as arrays and JSON (``.svr.npz``, atomically): data, never code."""
    arrays = SVRArrays.from_model(model).arrays()
    blob = json.dumps({"format": SVR_FORMAT, "normalizer": normalizer, **meta}, default=_json_default)
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, meta=np.asarray(blob), **arrays)
    return path


def svr_size(model) -> dict[str, int]:
    """What a fitted SVR stores: support vectors, their nonzeros, n_parameters, pickled bytes."""
    sv = model.support_vectors_
    sv_nnz = int(sv.nnz) if sps.issparse(sv) else int(np.count_nonzero(sv))
    n_support = int(model.support_.shape[0])
    return {"n_support": n_support, "support_nnz": sv_nnz,
            "support_dense_size": n_support * int(model.shape_fit_[1]),
            "n_parameters": sv_nnz + int(model.dual_coef_.size) + int(np.size(model.intercept_)),
            "parameter_bytes": len(pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL))}


def _inputs(X, y, split: dict, property: str) -> tuple[Any, np.ndarray, dict[str, np.ndarray]]:
    """X as float64 CSR (or dense), y flat, and the split's train (2+), test (1+) and val indices, checked."""
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    X = sps.csr_matrix(X, dtype=np.float64) if sps.issparse(X) else np.asarray(X, dtype=np.float64)
    if X.shape[0] != len(y):
        raise ValueError(f"{X.shape[0]} SOAP rows for {len(y)} targets")
    idx = {k: np.asarray(v, dtype=np.int64) for k, v in split.items() if k in ("train", "val", "test")}
    if "train" not in idx or "test" not in idx or len(idx["train"]) < 2 or len(idx["test"]) < 1:
        raise ValueError(f"need a train split of 2+ and a test split of 1+, got "
                         f"{ {k: len(v) for k, v in idx.items()} }")
    check_targets(y, idx, property)
    return X, y, idx


def fit_svr(
    X: sps.spmatrix | np.ndarray,
    y: np.ndarray,
    split: dict[str, np.ndarray],
    *,
    C: float = 1.0,
    epsilon: float = 0.1,
    gamma: str | float = "scale",
    kernel: str = "rbf",
    standardize_target: bool = True,
    cache_size: float = 2000.0,
    tol: float = 1e-3,
    max_iter: int = -1,
    property: str = "target",
    seed: int = 0,
    profile: Any = "custom",
    model_name: str = MODEL_NAME,
    unit: str | None = None,
    material_ids: Sequence[str] | None = None,
    featurisation: dict | None = None,
    content_hash: str | None = None,
    runs_dir: str | Path | None = None,
    write: bool = True,
    extra: dict | None = None,
    score_train: bool = False,
    return_model: bool = False,
) -> dict | tuple[dict, Any]:
    """Fit ``SVR`` on ``X[split["train"]]``, score the test (and val, if given) rows; the run record.

    Parameters
    ----------
    X : (n, F) SOAP rows, scipy sparse (kept sparse: libsvm's sparse kernel) or dense.
    y : (n,) targets in the property's units.
    split : ``{"train", "test"}`` positional indices (80:20, ``lib.data.split(n, seed, (0.8, 0.2))``);
        a ``"val"`` entry is scored too but never used for fitting or selection.
    C, epsilon, gamma, kernel, tol, max_iter : ``sklearn.svm.SVR``'s, at its defaults.
    standardize_target : fit on (y - mean_train) / std_train and map predictions back (see module doc).
    cache_size : libsvm kernel cache in MB (speed only; sklearn's default is 200).
    write : write ``<runs_dir>/<run>.json`` and the model's arrays ``<run>.svr.npz`` beside it.
    score_train : also predict the training rows (``metrics["train"]``); off by default, since
        predicting the 29,390 rows of the full formation-energy training split takes about a minute.
    return_model : return ``(record, fitted SVR)`` instead of the record alone.

    The record has the keys of ``lib.train.fit``'s that apply (no epochs, ``best_epoch`` None) and
    ``n_support`` (the SVR's size: number of support vectors) beside ``n_parameters``.
    """
    from sklearn.svm import SVR  # here, not at the top: scikit-learn is needed only to fit

    name = models.run_name(model_name, property, records.profile_name(profile), seed)
    X, y, idx = _inputs(X, y, split, property)
    norm = Normalizer.fit(y[idx["train"]]) if standardize_target else Normalizer(0.0, 1.0)
    model = SVR(kernel=kernel, C=C, epsilon=epsilon, gamma=gamma, tol=tol, cache_size=cache_size,
                max_iter=max_iter)
    t0 = time.perf_counter()
    model.fit(X[idx["train"]], norm.norm(y[idx["train"]]))
    train_time = time.perf_counter() - t0

    t0 = time.perf_counter()
    scored = [k for k in ("train", "val", "test") if k in idx and (k != "train" or score_train)]
    preds = {k: norm.denorm(model.predict(X[idx[k]])) for k in scored}
    predict_time = time.perf_counter() - t0
    size = svr_size(model)
    hparams_model = {"class": "sklearn.svm.SVR", "kernel": kernel, "C": C, "epsilon": epsilon,
                     "gamma": gamma, "gamma_value": float(model._gamma), "tol": tol, "max_iter": max_iter,
                     "standardize_target": bool(standardize_target), "n_features": int(X.shape[1])}
    record = records.new_record(
        run=name, model=model_name, model_class="SVR", property=property, seed=seed, profile=profile,
        split=idx, y=y, predictions=preds, ids=list(material_ids) if material_ids is not None else None,
        unit=unit,
        hparams={"model": hparams_model, "train": {"cache_size_mb": cache_size}, "graph": featurisation},
        train_time_s=train_time, device=device_info("cpu"), n_parameters=size["n_parameters"],
        parameter_bytes=size["parameter_bytes"], normalizer=norm, content_hash=content_hash,
        checkpoint=svr_model_path(name, runs_dir).name if write else None, extra=extra,
        best_epoch=None, epochs_run=None, fit_wall_time_s=train_time, predict_time_s=predict_time,
        predicted_splits=scored, n_iter=int(np.sum(model.n_iter_)), compiled=False,
        **{k: v for k, v in size.items() if k not in ("n_parameters", "parameter_bytes")},
    )
    if write:
        _write(record, model, norm, featurisation, runs_dir)
    return (record, model) if return_model else record


def _write(record: dict, model, norm: Normalizer, featurisation: dict | None, runs_dir) -> None:
    """The fitted model's arrays (``<run>.svr.npz``, with the record but its predictions), then the record."""
    save_svr(svr_model_path(record["run"], runs_dir), model, norm.as_dict(),
             {"target": record["property"], "unit": record["unit"], "featurisation": featurisation,
              "record": {k: v for k, v in record.items() if k != "test_predictions"}})
    records.write_record(record, runs_dir)


def load_svr(path: str | Path) -> dict:
    """A SOAP-SVR saved by :func:`fit_svr`: {"model": :class:`SVRArrays`, "normalizer", "target", "unit",
    "featurisation", "record", "format"}. Read with ``allow_pickle=False``: any file is safe to open.

    ``load_svr(p)["model"].predict(X)`` gives sklearn's ``SVR.predict``; map it back to the target's
    units with ``lib.train.Normalizer.from_dict(blob["normalizer"]).denorm``.
    """
    path = Path(path)
    if path.suffix == ".pkl":
        raise ValueError(f"{path} is a pickled SVR of an older version: it is not opened, since unpickling a "
                         "file runs code. Fit the model again (lib.svr.fit_svr writes .svr.npz).")
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            if meta.get("format") != SVR_FORMAT:
                raise ValueError(f"format {meta.get('format')!r}")
            kernel, gamma, coef0, degree = (str(x) for x in z["kernel"])
            sv = sps.csr_matrix((z["sv_data"], z["sv_indices"], z["sv_indptr"]), shape=tuple(z["sv_shape"]))
            model = SVRArrays(sv, z["dual_coef"].astype(np.float64), float(z["intercept"][0]), kernel,
                              float(gamma), float(coef0), int(degree))
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise ValueError(f"{path} is not a SOAP-SVR saved by lib.svr.fit_svr ({type(exc).__name__}: {exc})") \
            from None
    if model.kernel not in KERNELS or model.dual_coef.shape != (sv.shape[0],):
        raise ValueError(f"{path}: inconsistent SVR arrays")
    return {**meta, "model": model}


__all__ = ["fit_svr", "load_svr", "save_svr", "svr_size", "svr_model_path", "SVRArrays", "MODEL_NAME",
           "SVR_FORMAT"]
