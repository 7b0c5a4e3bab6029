"""Small model wrappers the attack tests share."""

from __future__ import annotations

import torch
from torch import nn


class ExpectsNormalized(nn.Module):
    """A model trained on (x - mean) / std: undoes the normalization, then the digits CNN."""

    def __init__(self, model, mean, std):
        super().__init__()
        self.model, self.mean, self.std = model, mean, std

    def forward(self, z):
        return self.model(z * self.std + self.mean)


def threshold_linear() -> nn.Module:
    """A 2-d linear classifier: class 1 iff x1 + x2 > 1 (the nearest adversarial of (0.3, 0.3) is
    0.2 away in L∞)."""
    net = nn.Linear(2, 2)
    with torch.no_grad():
        net.weight.copy_(torch.tensor([[0.0, 0.0], [1.0, 1.0]]))
        net.bias.copy_(torch.tensor([0.0, -1.0]))
    return net.eval()
