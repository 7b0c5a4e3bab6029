"""Sanity checks of an attack evaluation (Carlini et al. 2019, "On Evaluating Adversarial Robustness").

Each check is a named flag with the numbers behind it; a failed flag means the robust accuracy is
suspect (most often: gradient masking, or attacks too weak), not that the code crashed.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..metrics import eps_tolerance
from .base import AttackKind
from .result import min_eps

# Per-sample exceptions allowed before a per-sample comparison fails: random starts make a weaker
# attack win on the odd sample by luck (seen: FGSM at ε=0.10 where FMN needed 0.102, on 2 of 198
# samples); a systematic pattern is what the checks look for.
MAX_VIOLATION_FRACTION = 0.02
MAX_ZERO_GRADIENT_FRACTION = 0.05
MIN_BROKEN_UNBOUNDED = 0.99
MAX_STEP_DOUBLING_CHANGE = 0.01  # robust accuracy, as a fraction (1 point)


def grid_level(eps: np.ndarray, grid: tuple[float, ...]) -> np.ndarray:
    """Index of the smallest grid ε at which a sample with minimal adversarial ε `eps` counts as
    broken (len(grid) when never; -1 for samples misclassified clean, whose ε is 0)."""
    out = np.full(len(eps), len(grid))
    for k in reversed(range(len(grid))):
        out[eps <= eps_tolerance(grid[k])] = k
    out[eps == 0] = -1
    return out


def _weaker_wins(per_sample, grid, strong: list[str], weak: list[str]) -> dict:
    """How often the `weak` attacks broke a sample at a smaller grid ε than every `strong` one."""
    attacked = per_sample["clean_correct"].to_numpy(dtype=bool).copy()
    for a in strong + weak:  # only samples every compared attack saw
        attacked &= ~np.isnan(per_sample[f"eps_{a}"].to_numpy(dtype=float))
    s = grid_level(min_eps(per_sample, strong), grid)[attacked]
    w = grid_level(min_eps(per_sample, weak), grid)[attacked]
    n = int(attacked.sum())
    bad = int((w < s).sum())
    fraction = bad / n if n else 0.0
    return {"ok": fraction <= MAX_VIOLATION_FRACTION, "violations": bad, "n": n,
            "fraction": fraction, "allowed_fraction": MAX_VIOLATION_FRACTION,
            "strong": strong, "weak": weak}


def sanity_checks(per_sample: pd.DataFrame, curve: pd.DataFrame, grid: tuple[float, ...],
                  kinds: dict[str, AttackKind], extras: dict) -> dict[str, dict]:
    """All checks that the suite's attacks allow; `kinds` maps attack label → its `AttackKind`."""
    checks: dict[str, dict] = {}
    # Our curves come from per-sample minimal ε, so they cannot rise unless that bookkeeping is
    # broken; the flag guards it (per-ε reruns, as Foolbox sweeps do, can rise).
    increases = {a: float(np.max(np.diff(g.sort_values("eps")["robust_accuracy"].to_numpy()), initial=0.0))
                 for a, g in curve.groupby("attack")}
    worst = max(increases.values(), default=0.0)
    checks["curve_non_increasing"] = {"ok": worst <= 1e-12, "max_increase": worst,
                                      "max_increase_per_attack": increases}
    if "large_eps" in extras:
        info = extras["large_eps"]
        checks["large_eps_chance_level"] = {"ok": info["robust_accuracy"] <= info["chance"], **info}
    minimization = [a for a, k in kinds.items() if k == AttackKind.MINIMIZATION]
    if minimization:
        cols = per_sample[[f"eps_{a}" for a in minimization]].to_numpy(dtype=float)
        seen = per_sample["clean_correct"].to_numpy(dtype=bool) & ~np.isnan(cols).all(axis=1)
        best = min_eps(per_sample, minimization)[seen]
        broken = float(np.isfinite(best).mean()) if len(best) else 1.0
        checks["unbounded_minimization_breaks_all"] = {
            "ok": broken >= MIN_BROKEN_UNBOUNDED, "fraction_broken": broken,
            "required": MIN_BROKEN_UNBOUNDED, "attacks": minimization}
    gradient = [a for a, k in kinds.items() if k != AttackKind.GRADIENT_FREE]
    iterative = [a for a, k in kinds.items() if k in (AttackKind.ITERATIVE, AttackKind.MINIMIZATION)]
    single = [a for a, k in kinds.items() if k == AttackKind.SINGLE_STEP]
    if iterative and single:
        checks["iterative_at_least_single_step"] = _weaker_wins(per_sample, grid, iterative, single)
    free = [a for a, k in kinds.items() if k == AttackKind.GRADIENT_FREE]
    if free and gradient:
        checks["gradient_free_not_stronger"] = _weaker_wins(per_sample, grid, gradient, free)
    grad = extras["gradients"]
    checks["gradients_finite_nonzero"] = {
        "ok": grad["finite"] and grad["fraction_zero"] <= MAX_ZERO_GRADIENT_FRACTION,
        "allowed_fraction_zero": MAX_ZERO_GRADIENT_FRACTION, **grad}
    if "step_doubling" in extras:
        info = extras["step_doubling"]
        checks["step_doubling_stable"] = {"ok": info["max_change"] < MAX_STEP_DOUBLING_CHANGE,
                                          "allowed_change": MAX_STEP_DOUBLING_CHANGE, **info}
    return checks
