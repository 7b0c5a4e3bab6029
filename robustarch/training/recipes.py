"""Training recipes: the loss of one batch, clean or adversarial (L∞, ε in input scale).

`standard` is plain cross-entropy; `fgsm-rs` is "fast is better than free" (Wong, Rice & Kolter 2020):
one FGSM step of size 1.25ε from a uniform random start; `pgd` is Madry et al. (2018): cross-entropy on
a K-step PGD example with a random start; `trades` is Zhang et al. (2019): clean cross-entropy plus β
times the KL divergence between the clean and the adversarial predictions.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

RECIPES = ("standard", "fgsm-rs", "pgd", "trades")


def _input_grad(loss: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
    # autograd.grad, not backward(): the weights' .grad must not collect the attack's gradients
    return torch.autograd.grad(loss, delta)[0]


def _uniform(x: torch.Tensor, eps: float, generator: torch.Generator) -> torch.Tensor:
    noise = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    return (noise * 2 - 1) * eps


def fgsm_rs(model: nn.Module, x, y, eps: float, bounds, generator) -> torch.Tensor:
    lo, hi = bounds
    delta = _uniform(x, eps, generator).requires_grad_(True)
    grad = _input_grad(F.cross_entropy(model((x + delta).clamp(lo, hi)), y), delta)
    delta = (delta.detach() + 1.25 * eps * grad.sign()).clamp(-eps, eps)
    return (x + delta).clamp(lo, hi)


def pgd(model: nn.Module, x, y, eps: float, steps: int, bounds, generator) -> torch.Tensor:
    lo, hi = bounds
    step_size = 2.5 * eps / steps  # Madry et al.: enough to reach the boundary of the ball from anywhere
    x_adv = (x + _uniform(x, eps, generator)).clamp(lo, hi)
    for _ in range(steps):
        x_adv.requires_grad_(True)
        grad = _input_grad(F.cross_entropy(model(x_adv), y), x_adv)
        x_adv = torch.min(torch.max(x_adv.detach() + step_size * grad.sign(), x - eps), x + eps).clamp(lo, hi)
    return x_adv.detach()


def trades_example(model: nn.Module, x, eps: float, steps: int, bounds, generator) -> torch.Tensor:
    lo, hi = bounds
    step_size = 2.5 * eps / steps
    was_training = model.training
    model.eval()  # as in the TRADES reference code: the attack does not update batch-norm statistics
    with torch.no_grad():
        p_clean = F.softmax(model(x), dim=1)
    noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    x_adv = (x + 0.001 * noise).clamp(lo, hi)
    for _ in range(steps):
        x_adv.requires_grad_(True)
        kl = F.kl_div(F.log_softmax(model(x_adv), dim=1), p_clean, reduction="sum")
        grad = _input_grad(kl, x_adv)
        x_adv = torch.min(torch.max(x_adv.detach() + step_size * grad.sign(), x - eps), x + eps).clamp(lo, hi)
    model.train(was_training)
    return x_adv.detach()


def recipe_loss(
    recipe: str,
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    eps: float,
    steps: int,
    beta: float,
    bounds: tuple[float, float],
    generator: torch.Generator,
    label_smoothing: float = 0.0,
) -> torch.Tensor:
    """The training loss of one batch under `recipe` (see the module docstring). `label_smoothing`
    softens the training targets of the cross-entropy terms (airbench uses 0.2 on CIFAR-10); the
    attacks inside the recipes keep hard labels."""

    def ce(logits):
        return F.cross_entropy(logits, y, label_smoothing=label_smoothing)

    if recipe == "standard" or eps <= 0:
        return ce(model(x))
    if recipe == "fgsm-rs":
        return ce(model(fgsm_rs(model, x, y, eps, bounds, generator)))
    if recipe == "pgd":
        return ce(model(pgd(model, x, y, eps, steps, bounds, generator)))
    if recipe == "trades":
        x_adv = trades_example(model, x, eps, steps, bounds, generator)
        logits = model(x)
        kl = F.kl_div(F.log_softmax(model(x_adv), dim=1), F.softmax(logits, dim=1), reduction="batchmean")
        return ce(logits) + beta * kl
    raise ValueError(f"unknown recipe {recipe!r}")


def pgd_accuracy(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    eps: float,
    steps: int,
    bounds: tuple[float, float],
    seed: int = 0,
    batch_size: int = 1024,
) -> torch.Tensor:
    """Accuracy of `model` (eval mode) under `steps`-step L∞ PGD at `eps`, as a 0-d device tensor
    (no host sync here). The random start is drawn from `seed` every call, so two epochs' models
    are compared on the same starts: a model selection signal (Rice et al. 2020), not an evaluation
    — the study's attack suite measures robustness."""
    was_training = model.training
    model.eval()
    generator = torch.Generator(device=x.device).manual_seed(seed)
    correct = torch.zeros((), device=x.device, dtype=torch.long)
    for i in range(0, len(y), batch_size):
        xb, yb = x[i : i + batch_size], y[i : i + batch_size]
        with torch.enable_grad():
            x_adv = pgd(model, xb, yb, eps, steps, bounds, generator) if eps > 0 else xb
        with torch.no_grad():
            correct += (model(x_adv).argmax(1) == yb).sum()
    model.train(was_training)
    return correct.float() / max(len(y), 1)
