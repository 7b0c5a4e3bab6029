"""What counts as an adversarial: our own re-check, never an attack's success flag.

A candidate counts at ε when, clipped to the input bounds, the model (in eval mode) misclassifies it
and its Lp distance to the original is at most ε·(1 + EPS_RTOL) + EPS_ATOL.
"""
from __future__ import annotations

import math

import torch
from torch import nn

# The slack only absorbs float32 rounding of x + δ (about 1e-7 relative), far below any ε a study uses.
EPS_RTOL = 1e-5
EPS_ATOL = 1e-6
_NORM_ORD = {"linf": math.inf, "l2": 2.0, "l1": 1.0}


def eps_tolerance(eps: float) -> float:
    """The largest distance that still counts as within ε."""
    return eps * (1 + EPS_RTOL) + EPS_ATOL


def lp_distance(a: torch.Tensor, b: torch.Tensor, threat_model: str) -> torch.Tensor:
    """Per-sample Lp distance ('linf', 'l2' or 'l1'), in input units."""
    return (a - b).flatten(1).norm(p=_NORM_ORD[threat_model], dim=1)


@torch.no_grad()
def verify(net: nn.Module, x: torch.Tensor, x_adv: torch.Tensor, y: torch.Tensor, *,
           threat_model: str, bounds: tuple[float, float], eps: float | None = None
           ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Re-check candidates: returns `(ok, distance, clipped)`.

    `ok[i]`: the clipped candidate is finite, misclassified by `net` (which the caller keeps in eval
    mode) and, when `eps` is given, within ε (with the tolerance above). `distance` is measured on the
    clipped point, which is also the one to report.
    """
    clipped = x_adv.detach().clamp(*bounds)
    finite = torch.isfinite(clipped.flatten(1)).all(1)
    clipped = torch.where(finite.reshape(-1, *([1] * (x.ndim - 1))), clipped, x)
    pred = net(clipped).argmax(1)
    distance = lp_distance(clipped, x, threat_model)
    ok = finite & (pred != y)
    if eps is not None:
        ok &= distance <= eps_tolerance(eps)
    return ok, distance, clipped
