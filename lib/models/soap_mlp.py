"""SOAP-MLP: CGCNN's head after pooling, fed a SOAP vector instead of the pooled atom features.

In CGCNN the pooled crystal vector goes through ``conv_to_fc`` (to H = 128), softplus, ``n_h - 1``
further [linear 128 -> 128, softplus], and a linear output (``lib.models.cgcnn.CGCNN.forward``). The
thesis's SOAP-MLP is that head with the SOAP vector (``lib.soap``, ~11,000 features) in place of the
pooled vector:

    x (B, F) --linear--> (B, H) -> softplus -> (n_h - 1) x [linear (H, H) -> softplus] -> linear -> (B,)

``n_h`` counts the dense layers of width H as CGCNN's ``n_h`` does (the first one included), so the
default ``n_h=1`` is CGCNN's default head. CGCNN also applies a softplus to the pooled vector before
``conv_to_fc``; there it acts on averages of softplus outputs (all positive), whereas a SOAP vector is
mostly exact zeros with a few small negative entries, so it is off by default (``input_softplus``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lib.models.registry import register


@register
class SoapMLP(nn.Module):
    """Dense head on a SOAP vector: forward(x (B, F) float) -> (B,) predictions (normalised target).

    n_features : length F of the SOAP vector (``lib.soap.n_features``).
    h_fea_len : hidden width H (128, CGCNN's default).
    n_h : dense layers of width H, the input -> H map included (1, CGCNN's default).
    input_softplus : apply CGCNN's softplus to the input vector first (False; see the module docstring).
    """

    def __init__(self, n_features: int, h_fea_len: int = 128, n_h: int = 1, input_softplus: bool = False):
        super().__init__()
        if n_features < 1 or h_fea_len < 1 or n_h < 1:
            raise ValueError(f"need n_features, h_fea_len, n_h >= 1; got {n_features}, {h_fea_len}, {n_h}")
        self.input_softplus = input_softplus
        self.fc_in = nn.Linear(n_features, h_fea_len)
        self.fcs = nn.ModuleList(nn.Linear(h_fea_len, h_fea_len) for _ in range(n_h - 1))
        self.fc_out = nn.Linear(h_fea_len, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, F) SOAP vectors, dense or sparse COO (``lib.soap.SoapSet``'s batches) -> (B,) predictions."""
        if x.layout != torch.strided and self.input_softplus:
            x = x.to_dense()  # softplus(0) != 0: the input is no longer sparse
        if self.input_softplus:
            x = F.softplus(x)
        if x.layout == torch.strided:
            h = self.fc_in(x)
        else:  # ~21 nonzeros of ~11,000 per row: a sparse product, same numbers as the dense one
            h = torch.sparse.mm(x, self.fc_in.weight.t()) + self.fc_in.bias
        h = F.softplus(h)
        for fc in self.fcs:
            h = F.softplus(fc(h))
        return self.fc_out(h).squeeze(1)


__all__ = ["SoapMLP"]
