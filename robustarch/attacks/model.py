"""The model under attack: normalization and (for random models) averaging over draws as part of the
model, its state restored afterwards, and checks that inputs lie in bounds and outputs are logits.
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


class ExpectedLogits(nn.Module):
    """Expectation over transformation (Athalye et al. 2018) for a model whose output is random in
    eval mode (dropout left on, random preprocessing): the mean logits over `draws` forward passes.

    Attacks then follow the gradient of the expectation, and `verify` judges the averaged prediction,
    so a single unlucky draw neither breaks a clean sample nor counts as an adversarial.
    """

    def __init__(self, model: nn.Module, draws: int):
        super().__init__()
        self.model, self.draws = model, draws

    def forward(self, x):
        # Separate passes, not one batch of repeated inputs: a random transform may draw once per
        # batch (a random resize), and would then give every copy the same draw.
        return torch.stack([self.model(x) for _ in range(self.draws)]).mean(0)


class ZeroGradientPath(nn.Module):
    """A model whose output does not depend on its input through autograd (preprocessing in numpy,
    `.detach()`): gradient attacks would crash on it. This adds a zero-valued term that links the
    output to the input, so they run and see what such a model gives them — a zero gradient — and
    the gradient and large-ε checks flag the evaluation invalid instead of the program failing."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x):
        out = self.model(x)
        if out.requires_grad or not x.requires_grad:
            return out
        return out + 0.0 * x.flatten(1).sum(1, keepdim=True)


def has_gradient_path(net: nn.Module, x: torch.Tensor) -> bool:
    """Whether autograd connects the model's output to its input (on one sample)."""
    with torch.enable_grad():
        return bool(net(x[:1].clone().requires_grad_(True)).requires_grad)


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
        raise UserError(
            f"inputs must be a non-empty batch (n, ...) with n labels; got x {tuple(x.shape)}, y {tuple(y.shape)}"
        )
    xmin, xmax = float(x.min()), float(x.max())
    if not (np.isfinite(xmin) and np.isfinite(xmax)) or xmin < lo - 1e-6 or xmax > hi + 1e-6:
        raise UserError(
            f"inputs lie in [{xmin:.4g}, {xmax:.4g}], outside the declared bounds "
            f"[{lo:g}, {hi:g}]: give un-normalized inputs and pass mean/std, or fix bounds"
        )


def checked_logits(net: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int) -> torch.Tensor:
    """The model's logits on `x`, after checking they are (batch, classes) logits that fit `y`."""
    outs = []
    with torch.no_grad():
        for chunk in x.split(batch_size):
            try:
                out = net(chunk)
            except RuntimeError as exc:  # a layout or dtype the model does not take: name both sides
                reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                raise UserError(
                    f"the model failed on float32 inputs of shape {tuple(chunk.shape)}, laid out as "
                    f"(n, C, H, W): {reason}"
                ) from None
            if not isinstance(out, torch.Tensor):
                raise UserError(f"the model must return a tensor of logits; got {type(out).__name__}")
            if out.ndim != 2 or len(out) != len(chunk) or out.shape[1] < 2:
                raise UserError(
                    f"the model must return a (batch, classes) tensor of logits; for a "
                    f"batch of {len(chunk)} it returned shape {tuple(out.shape)}"
                )
            outs.append(out.float())
    logits = torch.cat(outs)
    if int(y.max()) >= logits.shape[1] or int(y.min()) < 0:
        raise UserError(
            f"labels range over [{int(y.min())}, {int(y.max())}] but the model returns {logits.shape[1]} classes"
        )
    sums = logits.sum(1)
    if bool(((logits >= 0) & (logits <= 1)).all()) and torch.allclose(sums, torch.ones_like(sums), atol=1e-3):
        warnings.warn(
            "the model's outputs look like softmax probabilities, not logits: gradient "
            "attacks are weaker on probabilities (vanishing gradients); return logits",
            stacklevel=3,
        )
    return logits
