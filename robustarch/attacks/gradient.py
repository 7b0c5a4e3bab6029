"""The native gradient engine: FGSM/FGM and PGD written directly in torch, batched, with per-sample
stops (a sample leaves the batch once misclassified). `native` wraps them as attack objects.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

LOSSES = ("ce", "margin")
# Madry et al. (2018, appendix): a step of 2.5·ε/steps lets PGD travel the ball's diameter and back.
DEFAULT_REL_STEP = 2.5


@dataclass(frozen=True)
class PGDParams:
    threat_model: str  # 'linf' or 'l2'
    steps: int = 40
    rel_stepsize: float | None = None  # step = rel_stepsize · ε; None: 2.5 / steps
    abs_stepsize: float | None = None  # step in input units, overrides rel_stepsize
    random_start: bool = True
    loss: str = "ce"  # 'ce' (cross-entropy, Madry et al.) or 'margin' (best other logit - true logit, C&W)

    def step_size(self, eps: float) -> float:
        if self.abs_stepsize is not None:
            return self.abs_stepsize
        rel = self.rel_stepsize if self.rel_stepsize is not None else DEFAULT_REL_STEP / self.steps
        return rel * eps


def _margin_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Best other logit minus the true logit (Carlini & Wagner): does not saturate like softmax."""
    true = logits.gather(1, y[:, None])[:, 0]
    other = logits.masked_fill(F.one_hot(y, logits.shape[1]).bool(), float("-inf")).amax(1)
    return (other - true).sum()


_LOSSES = {"ce": lambda logits, y: F.cross_entropy(logits, y, reduction="sum"), "margin": _margin_loss}


def _flat_norm(t: torch.Tensor, p: float) -> torch.Tensor:
    return t.flatten(1).norm(p=p, dim=1).reshape(-1, *([1] * (t.ndim - 1)))


def _project(delta: torch.Tensor, eps: float, threat_model: str) -> torch.Tensor:
    if threat_model == "linf":
        return delta.clamp(-eps, eps)
    norm = _flat_norm(delta, 2.0)
    return delta * torch.clamp(eps / norm.clamp_min(1e-12), max=1.0)


def _random_start(x: torch.Tensor, eps: float, threat_model: str, gen: torch.Generator) -> torch.Tensor:
    if threat_model == "linf":
        return (torch.rand(x.shape, generator=gen, device="cpu").to(x) * 2 - 1) * eps
    # Uniform in the L2 ball: a Gaussian direction, radius ε·u^(1/d).
    direction = torch.randn(x.shape, generator=gen, device="cpu").to(x)
    direction = direction / _flat_norm(direction, 2.0).clamp_min(1e-12)
    d = x[0].numel()
    radius = torch.rand(len(x), generator=gen, device="cpu").to(x) ** (1.0 / d) * eps
    return direction * radius.reshape(-1, *([1] * (x.ndim - 1)))


def _ascent_direction(grad: torch.Tensor, threat_model: str) -> torch.Tensor:
    if threat_model == "linf":
        return grad.sign()
    return grad / _flat_norm(grad, 2.0).clamp_min(1e-12)


def pgd(
    net: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    params: PGDParams,
    bounds: tuple[float, float],
    *,
    gen: torch.Generator,
    init: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Projected gradient ascent on the cross-entropy, within the ε-ball and `bounds`.

    Returns `(x_adv, found)`: `found[i]` says the attack saw sample i misclassified, and `x_adv[i]`
    is that point (else the last iterate). A sample leaves the batch once misclassified, so a batch
    that breaks early costs little. `init` (a point per sample, e.g. an adversarial found at a larger
    ε) replaces the random start; it is projected into this ball first.
    """
    lo, hi = bounds
    if init is not None:
        delta = _project(init - x, eps, params.threat_model)
    elif params.random_start:
        delta = _random_start(x, eps, params.threat_model, gen)
    else:
        delta = torch.zeros_like(x)
    x_adv = (x + delta).clamp(lo, hi)
    found = torch.zeros(len(x), dtype=torch.bool, device=x.device)
    active = torch.arange(len(x), device=x.device)
    step = params.step_size(eps)
    for t in range(params.steps + 1):
        xa = x_adv[active].requires_grad_(t < params.steps)
        with torch.set_grad_enabled(t < params.steps):
            logits = net(xa)
            is_adv = logits.argmax(1) != y[active]
        found[active[is_adv]] = True
        if t == params.steps:
            break
        # The loss of each sample depends on its own input only (eval mode), so summing is exact.
        loss = _LOSSES[params.loss](logits, y[active])
        (grad,) = torch.autograd.grad(loss, xa)
        keep = ~is_adv
        xs, gs, idx = xa.detach()[keep], grad[keep], active[keep]
        if len(idx) == 0:
            break
        moved = xs + step * _ascent_direction(gs, params.threat_model)
        x0 = x[idx]
        x_adv[idx] = (x0 + _project(moved - x0, eps, params.threat_model)).clamp(lo, hi)
        active = idx
    return x_adv, found


def fgsm_all_eps(
    net: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps_grid: tuple[float, ...],
    threat_model: str,
    bounds: tuple[float, float],
) -> list[torch.Tensor]:
    """One gradient, one ray: the FGSM (Linf) or FGM (L2) point at every ε of the grid.

    Returns a list (one per ε) of clipped candidate points; the caller verifies them.
    """
    xg = x.clone().requires_grad_(True)
    loss = F.cross_entropy(net(xg), y, reduction="sum")
    (grad,) = torch.autograd.grad(loss, xg)
    direction = _ascent_direction(grad, threat_model)
    return [(x + eps * direction).clamp(*bounds) for eps in eps_grid]


def huge_eps(threat_model: str, bounds: tuple[float, float], x: torch.Tensor) -> float:
    """An ε whose ball covers the whole input box: any point in bounds is allowed."""
    width = bounds[1] - bounds[0]
    n = x[0].numel()
    return width * {"linf": 1.0, "l2": math.sqrt(n), "l1": float(n)}[threat_model]
