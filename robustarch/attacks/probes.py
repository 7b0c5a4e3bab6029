"""Sanity probes that need the model (Carlini et al. 2019): repeated forward passes, input gradients,
PGD with a ball covering the whole input box, iterative attacks rerun with twice their steps.

`sanity` turns their numbers, with the result tables, into flags.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .base import AttackKind
from .gradient import PGDParams, _margin_loss, _random_start, huge_eps, pgd
from .result import robust_fraction
from .run import SuiteRun, chunks

# The probes use the margin loss (best other logit − true logit): cross-entropy saturates when the
# logits are large (a CNN's logits ×1000 give exactly zero gradients in float32 and a PGD that never
# moves) although the model is as robust as before; the margin's gradient is only scaled.
LARGE_EPS_STEPS = 100  # ample: on the digits CNNs every sample breaks within a few dozen steps
# From the clean point, sign steps can run into a corner of the box where the margin gradient points
# outwards and stall there. Samples that survive get this many more runs, each from a random point
# near the clean one: off that path, yet close enough (a tenth of the box width per pixel) that a model
# with no usable gradient, which never moves the iterate, still classifies it as the clean image.
LARGE_EPS_RESTARTS = 2
LARGE_EPS_RESTART_RADIUS = 0.1  # × box width: the L∞ radius; in L2 the radius is this × √d (same scale per pixel)
DETERMINISM_PASSES = 3
# Logits that differ by more than this (relative to their largest magnitude) between passes make the
# model random; GPU kernels that reorder sums change logits by ~1e-6 relative, dropout by ~1.
DETERMINISM_RTOL = 1e-3


def determinism(net: nn.Module, x: torch.Tensor, first: torch.Tensor) -> dict:
    """Run `net` (eval mode) again on `x`, whose logits were `first`: does its output change?"""
    changed, max_change = torch.zeros(len(x), dtype=torch.bool, device=x.device), 0.0
    with torch.no_grad():
        for _ in range(DETERMINISM_PASSES - 1):
            again = net(x).float()
            max_change = max(max_change, float((again - first).abs().max()))
            changed |= again.argmax(1) != first.argmax(1)
    scale = float(first.abs().max()) + 1e-12
    return {
        "random": max_change > DETERMINISM_RTOL * scale,
        "passes": DETERMINISM_PASSES,
        "max_relative_logit_change": max_change / scale,
        "fraction_predictions_changed": float(changed.float().mean()),
        "n": len(x),
    }


def input_gradients(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict:
    """Margin-loss gradients w.r.t. the inputs: finite, and how often exactly zero."""
    if len(x) == 0:
        return {"loss": "margin", "finite": True, "fraction_zero": 0.0, "median_grad_l1": 0.0, "n": 0}
    x = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(_margin_loss(net(x), y), x)
    norms = grad.flatten(1).abs().sum(1)
    return {
        "loss": "margin",
        "finite": bool(torch.isfinite(grad).all()),
        "fraction_zero": float((norms == 0).float().mean()),
        "median_grad_l1": float(norms.median()),
        "n": len(x),
    }


def large_eps(run: SuiteRun, num_classes: int) -> dict:
    """Margin-loss PGD from the clean point, at an ε whose ball is the whole input box: any point
    in bounds is allowed, so only a model that is constant on the box may keep a sample. Samples it
    keeps get `LARGE_EPS_RESTARTS` more runs from random points near the clean one."""
    cfg = run.cfg
    e = huge_eps(cfg.threat_model, run.bounds, run.x)
    threat = cfg.threat_model if cfg.threat_model in ("linf", "l2") else "l2"
    params = PGDParams(threat, steps=LARGE_EPS_STEPS, random_start=False, loss="margin")
    width = run.bounds[1] - run.bounds[0]
    radius = LARGE_EPS_RESTART_RADIUS * width * (1.0 if threat == "linf" else run.x[0].numel() ** 0.5)
    gen = torch.Generator().manual_seed(run.seed + 7)
    broken, by_restart = 0, 0
    for chunk in chunks(run.correct_idx, cfg.batch_size):
        x, y = run.x[chunk], run.y[chunk]
        cand, _ = pgd(run.net, x, y, e, params, run.bounds, gen=gen)
        ok = run.verify(chunk, cand)[0]  # within the box = within ε by construction
        for _ in range(LARGE_EPS_RESTARTS):
            left = (~ok).nonzero().flatten()
            if len(left) == 0:
                break
            start = (x[left] + _random_start(x[left], radius, threat, gen)).clamp(*run.bounds)
            cand, _ = pgd(run.net, x[left], y[left], e, params, run.bounds, gen=gen, init=start)
            now = run.verify(chunk[left], cand)[0]
            ok[left[now]] = True
            by_restart += int(now.sum())
        broken += int(ok.sum())
    n = len(run.y)
    return {
        "eps": e,
        "robust_accuracy": (len(run.correct_idx) - broken) / n,
        "steps": LARGE_EPS_STEPS,
        "restarts": LARGE_EPS_RESTARTS,
        "broken_by_restarts": by_restart,
        "loss": "margin",
        "chance": 1.0 / num_classes,
        "n": n,
    }


# Foolbox's gradient attacks by the loss they ascend (class-name parts): its FGSM/FGM, PGD, BIM and
# DDN use cross-entropy; FMN, C&W and EAD logit differences. Others (DeepFool's loss is a setting) count
# as unknown and stay out of the comparison.
_FOOLBOX_LOSSES = {
    "ce": ("FastGradient", "FGSM", "FGM", "PGD", "ProjectedGradientDescent", "BasicIterative", "DDN"),
    "margin": ("FMN", "CarliniWagner", "EAD"),
}


def attack_losses(run: SuiteRun) -> dict[str, str | None]:
    """Per attack label, the loss family it ascends ('ce', 'margin' or None when unknown), for the
    `cross_entropy_not_saturated` check."""
    out = {}
    for attack in run.attacks:
        loss = attack.loss
        if loss is None:
            name = getattr(attack, "name", "")  # a Foolbox attack's class name
            loss = next(
                (family for family, parts in _FOOLBOX_LOSSES.items() if any(part in name for part in parts)), None
            )
        out[attack.label] = loss
    return out


def step_doubling(run: SuiteRun) -> tuple[dict, dict[str, tuple[np.ndarray, torch.Tensor]]]:
    """Rerun each iterative attack with twice its steps: robust accuracy must barely move.

    Returns the check's numbers (the curves of both runs, as they came out) and, per attack, the
    doubled run's per-sample ε and adversarials, for the suite to keep wherever they are stronger.
    """
    changes, detail, doubled_runs = [], {}, {}
    for i, attack in enumerate(run.attacks):
        doubled = attack.with_steps_factor(2) if attack.kind == AttackKind.ITERATIVE else None
        if doubled is None:
            continue
        eps_doubled, adv_doubled = run.run_attack(i, doubled)
        doubled_runs[attack.label] = (eps_doubled, adv_doubled)
        a = [robust_fraction(run.eps_broken[attack.label], e)[0] for e in run.cfg.eps]
        b = [robust_fraction(eps_doubled, e)[0] for e in run.cfg.eps]
        detail[attack.label] = {"steps": a, "double_steps": b}
        changes.append(float(np.max(np.abs(np.array(a) - np.array(b)))))
    return {"max_change": max(changes, default=0.0), "curves": detail}, doubled_runs


def keep_stronger(run: SuiteRun, doubled_runs: dict[str, tuple[np.ndarray, torch.Tensor]]) -> int:
    """Where the doubled-steps run broke a sample at a smaller ε, that verified adversarial is a
    better answer for the attack (and so for the worst case): keep it. Returns how many samples."""
    improved = 0
    for label, (eps_doubled, adv_doubled) in doubled_runs.items():
        better = eps_doubled < run.eps_broken[label]  # NaN (not seen) compares False
        run.eps_broken[label] = np.where(better, eps_doubled, run.eps_broken[label])
        rows = torch.as_tensor(np.flatnonzero(better), device=run.x.device)
        run.adv[label][rows] = adv_doubled[rows]
        improved += int(better.sum())
    return improved
