"""Edge features: the Gaussian expansion of distances, the only place distances are expanded."""

from __future__ import annotations

import torch
from torch import nn

# --------------------------------------------------------------------------------------------------
# distance expansion


class GaussianExpansion(nn.Module):
    """Distances -> Gaussian basis: exp(-(d - mu_g)^2 / width^2) for centres mu_g on [start, stop].

    Give the centres by number (``n``, evenly spaced, both ends included) or by ``step``; ``width``
    defaults to ``step``. forward: d (E,) -> (E, G). The centres are a buffer of the model.
    """

    def __init__(
        self,
        start: float,
        stop: float,
        n: int | None = None,
        width: float | None = None,
        *,
        step: float | None = None,
    ) -> None:
        super().__init__()
        if (n is None) == (step is None):
            raise ValueError("give exactly one of n (number of centres) or step (spacing in Å)")
        if step is not None:
            if step <= 0:
                raise ValueError(f"step must be positive, got {step}")
            n = int(round((stop - start) / step)) + 1
            width = step if width is None else width
        if n is None or n < 1:
            raise ValueError(f"need at least one centre, got n={n}")
        if width is None or width <= 0:
            raise ValueError(f"width must be positive, got {width}")
        self.start, self.stop, self.width = float(start), float(stop), float(width)
        self.register_buffer(
            "centers", torch.linspace(float(start), float(stop), int(n), dtype=torch.float32)
        )

    @property
    def n_features(self) -> int:
        """G, the number of centres."""
        return int(self.centers.shape[0])

    def forward(self, d: torch.Tensor) -> torch.Tensor:
        return torch.exp(-((d.unsqueeze(-1) - self.centers) ** 2) / (self.width**2))

    def extra_repr(self) -> str:
        return f"start={self.start:g}, stop={self.stop:g}, n={self.n_features}, width={self.width:g}"


def cgcnn_gaussian(cutoff: float = 8.0, step: float = 0.2) -> GaussianExpansion:
    """Reference CGCNN basis: centres 0..cutoff every ``step`` Å (41 for 8 Å), width = step."""
    return GaussianExpansion(0.0, cutoff, step=step, width=step)


def megnet_gaussian(cutoff: float = 4.0, n: int = 100, width: float = 0.5) -> GaussianExpansion:
    """MEGNet basis: ``n`` = 100 centres on 0..cutoff+1 Å, width 0.5 Å."""
    return GaussianExpansion(0.0, cutoff + 1.0, n=n, width=width)
