"""An exponential moving average of a model's weights (``TrainConfig.ema``): ``lib.train.fit`` validates the
averaged weights, keeps them as the best epoch and writes them to the checkpoint."""

from __future__ import annotations

import contextlib

import torch
from torch import nn


class Ema:
    """An exponential moving average of a model's weights and buffers, updated after every optimiser step.

    ``swapped()`` puts the averaged weights into the model for the time of a ``with`` block (validation,
    keeping the best epoch) and the trained ones back after it.
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"ema decay must be in (0, 1), got {decay}")
        self.model, self.decay = model, float(decay)
        self.state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        self._float = [k for k, v in self.state.items() if v.is_floating_point()]
        self.steps = 0

    @torch.no_grad()
    def update(self) -> None:
        # warm-up: the decay grows as (1 + n) / (10 + n) towards its value, so the first, random weights
        # fade out at once (with 0.999 from the first step, 15 % of the initial weights were still in the
        # average after 1,900 steps, and the averaged model was useless)
        self.steps += 1
        decay = min(self.decay, (1.0 + self.steps) / (10.0 + self.steps))
        current = self.model.state_dict()
        torch._foreach_lerp_([self.state[k] for k in self._float], [current[k] for k in self._float],
                             1.0 - decay)
        for k, v in current.items():
            if not v.is_floating_point():
                self.state[k].copy_(v)

    def load(self, state: dict) -> None:
        self.steps = int(state.pop("_steps", 0)) if "_steps" in state else self.steps
        for k, v in state.items():
            self.state[k].copy_(v)

    def saved(self) -> dict:
        """The average and its step count, for the resumable state."""
        return {**self.state, "_steps": torch.tensor(self.steps)}

    @contextlib.contextmanager
    def swapped(self):
        trained = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        self.model.load_state_dict(self.state)
        try:
            yield
        finally:
            self.model.load_state_dict(trained)


__all__ = ["Ema"]
