"""The target normaliser every regression model shares (the GNNs, the SOAP MLP and the SVR)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Normalizer:
    """Standardises a regression target: ``(y - mean) / std``; saved in every checkpoint."""

    mean: float = 0.0
    std: float = 1.0

    @classmethod
    def fit(cls, y: np.ndarray) -> Normalizer:
        y = np.asarray(y, dtype=np.float64)
        std = float(y.std())
        return cls(float(y.mean()), std if std > 0 else 1.0)

    def norm(self, y):
        return (y - self.mean) / self.std

    def denorm(self, y):
        return y * self.std + self.mean

    def as_dict(self) -> dict:
        return {"mean": self.mean, "std": self.std}

    @classmethod
    def from_dict(cls, d: dict) -> Normalizer:
        return cls(float(d["mean"]), float(d["std"]))
