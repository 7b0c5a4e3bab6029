"""Sanity probes that need the model (Carlini et al. 2019): input gradients, PGD with a ball that
covers the whole input box, and every iterative attack rerun with twice its steps. `sanity` turns
their numbers, with the result tables, into flags.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .base import AttackKind
from .gradient import PGDParams, huge_eps, pgd
from .result import robust_fraction
from .run import SuiteRun, chunks


def input_gradients(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict:
    """Cross-entropy gradients w.r.t. the inputs: finite, and how often exactly zero."""
    if len(x) == 0:
        return {"finite": True, "fraction_zero": 0.0, "median_grad_l1": 0.0, "n": 0}
    x = x.clone().requires_grad_(True)
    loss = nn.functional.cross_entropy(net(x), y, reduction="sum")
    (grad,) = torch.autograd.grad(loss, x)
    norms = grad.flatten(1).abs().sum(1)
    return {"finite": bool(torch.isfinite(grad).all()), "fraction_zero": float((norms == 0).float().mean()),
            "median_grad_l1": float(norms.median()), "n": len(x)}


def large_eps(run: SuiteRun, num_classes: int) -> dict:
    """PGD at an ε whose ball is the whole input box: accuracy must fall to chance or below."""
    cfg = run.cfg
    e = huge_eps(cfg.threat_model, run.bounds, run.x)
    threat = cfg.threat_model if cfg.threat_model in ("linf", "l2") else "l2"
    params = PGDParams(threat, steps=20)
    gen = torch.Generator().manual_seed(run.seed + 7)
    broken = 0
    for chunk in chunks(run.correct_idx, cfg.batch_size):
        cand, _ = pgd(run.net, run.x[chunk], run.y[chunk], e, params, run.bounds, gen=gen)
        broken += int(run.verify(chunk, cand)[0].sum())  # within the box = within ε by construction
    n = len(run.y)
    return {"eps": e, "robust_accuracy": (len(run.correct_idx) - broken) / n,
            "chance": 1.0 / num_classes, "n": n}


def step_doubling(run: SuiteRun) -> dict:
    """Rerun each iterative attack with twice its steps: robust accuracy must barely move."""
    changes, detail = [], {}
    for i, attack in enumerate(run.attacks):
        doubled = attack.with_steps_factor(2) if attack.kind == AttackKind.ITERATIVE else None
        if doubled is None:
            continue
        eps_doubled, _ = run.run_attack(i, doubled)
        a = [robust_fraction(run.eps_broken[attack.label], e)[0] for e in run.cfg.eps]
        b = [robust_fraction(eps_doubled, e)[0] for e in run.cfg.eps]
        detail[attack.label] = {"steps": a, "double_steps": b}
        changes.append(float(np.max(np.abs(np.array(a) - np.array(b)))))
    return {"max_change": max(changes, default=0.0), "curves": detail}
