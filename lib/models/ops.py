"""Tensor operations the models share: pooling rows into groups (atoms into crystals, edges into atoms)."""

from __future__ import annotations

import torch
from torch import Tensor


def segment_mean(x: Tensor, index: Tensor, n: int) -> Tensor:
    """Mean of the rows of ``x`` (M, F) grouped by ``index`` (M,) into (n, F); empty groups give 0."""
    out = x.new_zeros((n, x.shape[1])).index_add_(0, index, x)
    count = torch.bincount(index, minlength=n).clamp_(min=1).to(x.dtype)
    return out / count[:, None]
