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
intercept), ``parameter_bytes`` = size of the pickled model, plus ``n_support``.
"""

from __future__ import annotations

import pickle
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sps

from lib import models, records
from lib.data.table import check_targets
from lib.metrics import regression_metrics
from lib.normalizer import Normalizer
from lib.paths import atomic_path

MODEL_NAME = models.get("soap_svr").name


def svr_model_path(name: str, runs_dir: str | Path | None = None) -> Path:
    """The pickled SVR of run ``name`` (beside its record; the GNNs' checkpoints are ``.pt``)."""
    return Path(runs_dir or records.RUNS) / f"{name}.svr.pkl"


def _atomic_bytes(path: Path, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
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
    write : write ``<runs_dir>/<run>.json`` and the pickled model ``<run>.svr.pkl`` beside it.
    score_train : also predict the training rows (``metrics["train"]``); off by default, since
        predicting the 29,390 rows of the full formation-energy training split takes about a minute.
    return_model : return ``(record, fitted SVR)`` instead of the record alone.

    The record has the keys of ``lib.train.fit``'s that apply (no epochs, ``best_epoch`` None) and
    ``n_support`` (the SVR's size: number of support vectors) beside ``n_parameters``.
    """
    from sklearn.svm import SVR  # here, not at the top: scikit-learn is needed only to fit

    name = models.run_name(model_name, property, str(getattr(profile, "name", profile)), seed)
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    X = sps.csr_matrix(X, dtype=np.float64) if sps.issparse(X) else np.asarray(X, dtype=np.float64)
    if X.shape[0] != len(y):
        raise ValueError(f"{X.shape[0]} SOAP rows for {len(y)} targets")
    idx = {k: np.asarray(v, dtype=np.int64) for k, v in split.items() if k in ("train", "val", "test")}
    if "train" not in idx or "test" not in idx or len(idx["train"]) < 2 or len(idx["test"]) < 1:
        raise ValueError(f"need a train split of 2+ and a test split of 1+, got "
                         f"{ {k: len(v) for k, v in idx.items()} }")
    check_targets(y, idx, property)
    norm = Normalizer.fit(y[idx["train"]]) if standardize_target else Normalizer(0.0, 1.0)

    model = SVR(kernel=kernel, C=C, epsilon=epsilon, gamma=gamma, tol=tol, cache_size=cache_size,
                max_iter=max_iter)
    X_train = X[idx["train"]]
    t0 = time.perf_counter()
    model.fit(X_train, norm.norm(y[idx["train"]]))
    train_time = time.perf_counter() - t0

    t0 = time.perf_counter()
    scored = [k for k in ("train", "val", "test") if k in idx and (k != "train" or score_train)]
    preds = {k: norm.denorm(model.predict(X[idx[k]])) for k in scored}
    predict_time = time.perf_counter() - t0
    metrics = {k: regression_metrics(y[idx[k]], preds[k]) for k in scored}
    size = svr_size(model)
    ids = list(material_ids) if material_ids is not None else None
    test_ids = [str(ids[i]) for i in idx["test"]] if ids is not None else [int(i) for i in idx["test"]]
    hparams_model = {"class": "sklearn.svm.SVR", "kernel": kernel, "C": C, "epsilon": epsilon,
                     "gamma": gamma, "gamma_value": float(model._gamma), "tol": tol, "max_iter": max_iter,
                     "standardize_target": bool(standardize_target), "n_features": int(X.shape[1])}
    record = records.new_record(
        run=name, model=model_name, model_class="SVR", property=property, seed=seed, profile=profile,
        split=idx, metrics=metrics, unit=unit,
        hparams={"model": hparams_model, "train": {"cache_size_mb": cache_size}, "graph": featurisation},
        train_time_s=train_time, device=records.device_info("cpu"), n_parameters=size["n_parameters"],
        parameter_bytes=size["parameter_bytes"], normalizer=norm, content_hash=content_hash,
        checkpoint=svr_model_path(name, runs_dir).name if write else None, test_ids=test_ids, y=y,
        y_pred=preds["test"], extra=extra,
        best_epoch=None, epochs_run=None, fit_wall_time_s=train_time, predict_time_s=predict_time,
        predicted_splits=scored, n_iter=int(np.sum(model.n_iter_)), compiled=False,
        **{k: v for k, v in size.items() if k not in ("n_parameters", "parameter_bytes")},
    )
    if write:
        blob = {"format": "compendium-svr/1", "model": model, "normalizer": norm.as_dict(),
                "target": property, "unit": record["unit"], "featurisation": featurisation,
                "record": {k: v for k, v in record.items() if k != "test_predictions"}}
        _atomic_bytes(svr_model_path(name, runs_dir), pickle.dumps(blob, protocol=pickle.HIGHEST_PROTOCOL))
        records.write_record(record, runs_dir)
    return (record, model) if return_model else record


def load_svr(path: str | Path) -> dict:
    """A pickled SOAP-SVR written by :func:`fit_svr`: {"model", "normalizer", "target", "unit", ...}.

    Only open files this project wrote: unpickling runs code.
    """
    with open(path, "rb") as f:
        blob = pickle.load(f)
    if blob.get("format") != "compendium-svr/1":
        raise ValueError(f"{path} is not a SOAP-SVR written by lib.svr.fit_svr")
    return blob


__all__ = ["fit_svr", "load_svr", "svr_size", "svr_model_path", "MODEL_NAME"]
