"""Error metrics (MAE, RMSE, R², accuracy), defined once: training, tables and figures all use these."""

from __future__ import annotations

import numpy as np


def _pair(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(y_true, dtype=np.float64).reshape(-1)
    p = np.asarray(y_pred, dtype=np.float64).reshape(-1)
    if t.shape != p.shape:
        raise ValueError(f"{t.size} targets for {p.size} predictions")
    if t.size == 0:
        raise ValueError("no values to score")
    return t, p


def mae(y_true, y_pred) -> float:
    """Mean absolute error, in the target's units."""
    t, p = _pair(y_true, y_pred)
    return float(np.mean(np.abs(t - p)))


def rmse(y_true, y_pred) -> float:
    """Root mean squared error, in the target's units."""
    t, p = _pair(y_true, y_pred)
    return float(np.sqrt(np.mean((t - p) ** 2)))


def r2(y_true, y_pred) -> float:
    """Coefficient of determination 1 - SS_res/SS_tot (NaN when the targets are constant)."""
    t, p = _pair(y_true, y_pred)
    ss_tot = float(np.sum((t - t.mean()) ** 2))
    if ss_tot == 0.0:
        return float("nan")
    return 1.0 - float(np.sum((t - p) ** 2)) / ss_tot


def accuracy(y_true, y_pred_label) -> float:
    """Fraction of labels predicted exactly (classification)."""
    t, p = _pair(y_true, y_pred_label)
    return float(np.mean(t == p))


def regression_metrics(y_true, y_pred) -> dict[str, float]:
    """{'mae', 'rmse', 'r2', 'n'} of one set of predictions."""
    t, p = _pair(y_true, y_pred)
    return {"mae": mae(t, p), "rmse": rmse(t, p), "r2": r2(t, p), "n": int(t.size)}


def score(task: str, y_true, out) -> dict[str, float]:
    """A fitter's metrics of one split: ``regression_metrics``, or for ``task`` "classification" the accuracy
    of the highest-scoring class of ``out`` (n, C) and n."""
    if task == "classification":
        return {"accuracy": accuracy(y_true, np.asarray(out).argmax(axis=1)), "n": int(len(y_true))}
    return regression_metrics(y_true, out)
