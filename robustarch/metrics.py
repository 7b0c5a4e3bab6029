"""Definitions every stage shares, importable without torch: when a distance counts as within ε,
the name of the per-sample worst case, the area under a robust-accuracy ε-curve, and the
clean/robust Pareto front (the study rescores it, the report draws it).

`attacks/` verifies with these tolerances, `study/` scores with the area, and `analysis/` recomputes
both from stored tables on machines that may have no torch at all.
"""

from __future__ import annotations

import numpy as np

# The per-sample worst case over attacks, as named in every result table.
WORST_CASE = "worst_case"
# The slack only absorbs float32 rounding of x + δ (about 1e-7 relative), far below any ε a study uses.
EPS_RTOL = 1e-5
EPS_ATOL = 1e-6


def eps_tolerance(eps: float) -> float:
    """The largest distance that still counts as within ε."""
    return eps * (1 + EPS_RTOL) + EPS_ATOL


def curve_area(eps_grid, robust: np.ndarray, clean: np.ndarray) -> np.ndarray:
    """Normalized area under the robust-accuracy ε-curve: (1/ε_max)∫₀^ε_max robust(ε) dε by the
    trapezoid rule, with robust(0) = clean accuracy on the attacked samples. In [0, 1]; one value
    per row of `robust` (a trial), whose columns follow `eps_grid`.

    >>> float(curve_area([0.1, 0.2], np.array([[0.5, 0.0]]), np.array([1.0]))[0])
    0.5
    """
    grid = np.concatenate([[0.0], np.asarray(eps_grid, float)])
    values = np.column_stack([np.asarray(clean, float), np.asarray(robust, float)])
    return np.trapezoid(values, grid, axis=1) / grid[-1]


def robust_auc(clean: float, eps: list[float], robust: list[float]) -> float:
    """`curve_area` of one model: 1.0 is a model no attack breaks, 0.0 one broken at every ε."""
    return float(curve_area(eps, np.array([robust], float), np.array([clean], float))[0])


def pareto_front(clean: np.ndarray, robust: np.ndarray) -> np.ndarray:
    """True where no other model is at least as good on both and better on one."""
    clean, robust = np.asarray(clean, float), np.asarray(robust, float)
    front = np.ones(len(clean), bool)  # a model with a missing number is never dominated (as NaN compares)
    ok = np.flatnonzero(np.isfinite(clean) & np.isfinite(robust))
    if len(ok) < 2:
        return front
    # One sweep from the most accurate down, O(n log n) (all pairs were n² booleans: 1 GB at 15 625
    # models): dominated when a model of strictly higher clean accuracy is at least as robust, or one
    # of the same clean accuracy is more robust.
    c, r = clean[ok], robust[ok]
    order = np.lexsort((-r, -c))
    cs, rs = c[order], r[order]
    starts = np.flatnonzero(np.r_[True, cs[1:] != cs[:-1]])
    group_best = rs[starts]  # sorted by robust descending within a clean value
    higher = np.r_[-np.inf, np.maximum.accumulate(group_best)[:-1]]  # best robust at strictly higher clean
    group = np.cumsum(np.r_[True, cs[1:] != cs[:-1]]) - 1
    dominated = (higher[group] >= rs) | (group_best[group] > rs)
    front[ok[order]] = ~dominated
    return front
