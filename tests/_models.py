"""Small model wrappers the attack tests share."""
from __future__ import annotations

from torch import nn


class ExpectsNormalized(nn.Module):
    """A model trained on (x - mean) / std: undoes the normalization, then the digits CNN."""

    def __init__(self, model, mean, std):
        super().__init__()
        self.model, self.mean, self.std = model, mean, std

    def forward(self, z):
        return self.model(z * self.std + self.mean)
