"""The model under attack: normalization as part of the model, its state restored afterwards, and
the checks that inputs lie in bounds and outputs are (batch, classes) logits.
"""
from __future__ import annotations

import warnings

import numpy as np
import torch
from torch import nn

from ..errors import UserError


class Normalized(nn.Module):
    """The model as a function of inputs in `bounds`: (x - mean) / std, then the model."""

    def __init__(self, model: nn.Module, mean, std):
        super().__init__()
        self.model = model
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32).reshape(1, -1, 1, 1))
        self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32).reshape(1, -1, 1, 1))

    def forward(self, x):
        return self.model((x - self.mean) / self.std)


class ModelState:
    """Remembers device, train/eval mode and requires_grad of every parameter, to restore them."""

    def __init__(self, model: nn.Module):
        self.model = model
        self.modes = [(m, m.training) for m in model.modules()]
        self.grads = [(p, p.requires_grad) for p in model.parameters()]
        self.device = next((p.device for p in model.parameters()), torch.device("cpu"))

    def restore(self):
        self.model.to(self.device)
        for m, mode in self.modes:
            m.training = mode
        for p, flag in self.grads:
            p.requires_grad_(flag)


def check_inputs(x: torch.Tensor, y: torch.Tensor, bounds: tuple[float, float]) -> None:
    lo, hi = bounds
    if x.ndim < 2 or y.ndim != 1 or len(x) != len(y) or len(x) == 0:
        raise UserError(f"inputs must be a non-empty batch (n, ...) with n labels; got x {tuple(x.shape)}, "
                        f"y {tuple(y.shape)}")
    xmin, xmax = float(x.min()), float(x.max())
    if not (np.isfinite(xmin) and np.isfinite(xmax)) or xmin < lo - 1e-6 or xmax > hi + 1e-6:
        raise UserError(f"inputs lie in [{xmin:.4g}, {xmax:.4g}], outside the declared bounds "
                        f"[{lo:g}, {hi:g}]: give un-normalized inputs and pass mean/std, or fix bounds")


def checked_logits(net: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int) -> torch.Tensor:
    """The model's logits on `x`, after checking they are (batch, classes) logits that fit `y`."""
    outs = []
    with torch.no_grad():
        for chunk in x.split(batch_size):
            out = net(chunk)
            if not isinstance(out, torch.Tensor):
                raise UserError(f"the model must return a tensor of logits; got {type(out).__name__}")
            if out.ndim != 2 or len(out) != len(chunk) or out.shape[1] < 2:
                raise UserError(f"the model must return a (batch, classes) tensor of logits; for a "
                                f"batch of {len(chunk)} it returned shape {tuple(out.shape)}")
            outs.append(out.float())
    logits = torch.cat(outs)
    if int(y.max()) >= logits.shape[1] or int(y.min()) < 0:
        raise UserError(f"labels range over [{int(y.min())}, {int(y.max())}] but the model returns "
                        f"{logits.shape[1]} classes")
    sums = logits.sum(1)
    if bool(((logits >= 0) & (logits <= 1)).all()) and torch.allclose(sums, torch.ones_like(sums), atol=1e-3):
        warnings.warn("the model's outputs look like softmax probabilities, not logits: gradient "
                      "attacks are weaker on probabilities (vanishing gradients); return logits",
                      stacklevel=3)
    return logits
