"""What counts as an adversarial: our own re-check, never an attack's success flag.

A candidate counts at ε when, clipped to the input bounds, the model (in eval mode) misclassifies it
and its Lp distance to the original is at most ε·(1 + EPS_RTOL) + EPS_ATOL (`robustarch.metrics`).
For a random model (an `ExpectedLogits` average over draws) two independent averages must agree.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..metrics import eps_tolerance
from .model import ExpectedLogits

_NORM_ORD = {"linf": math.inf, "l2": 2.0, "l1": 1.0}


def lp_distance(a: torch.Tensor, b: torch.Tensor, threat_model: str) -> torch.Tensor:
    """Per-sample Lp distance ('linf', 'l2' or 'l1'), in input units."""
    return (a - b).flatten(1).norm(p=_NORM_ORD[threat_model], dim=1)


@torch.no_grad()
def verify(
    net: nn.Module,
    x: torch.Tensor,
    x_adv: torch.Tensor,
    y: torch.Tensor,
    *,
    threat_model: str,
    bounds: tuple[float, float],
    eps: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Re-check candidates: returns `(ok, distance, clipped)`.

    `ok[i]`: the clipped candidate is finite, misclassified by `net` (which the caller keeps in eval
    mode) and, when `eps` is given, within ε (with the tolerance above). `distance` is measured on the
    clipped point, which is also the one to report.
    """
    clipped = x_adv.detach().clamp(*bounds)
    finite = torch.isfinite(clipped.flatten(1)).all(1)
    clipped = torch.where(finite.reshape(-1, *([1] * (x.ndim - 1))), clipped, x)
    ok = finite & (net(clipped).argmax(1) != y)
    if isinstance(net, ExpectedLogits):
        # Attacks stop at the first point their own average misclassifies, i.e. on the boundary,
        # where one fresh average is a coin flip: a second, independent one must agree, so that a
        # noise flip (probability p) counts with probability p² only.
        ok &= net(clipped).argmax(1) != y
    distance = lp_distance(clipped, x, threat_model)
    if eps is not None:
        ok &= distance <= eps_tolerance(eps)
    return ok, distance, clipped
