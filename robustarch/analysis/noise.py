"""A model's number is a measurement: how much of the spread between models is noise, and the
correlations corrected for it (classical test theory: observed = true + independent error).

Noise enters through per-model columns beside a metric `X` (e.g. `robust_accuracy`):
- `X_se`: the evaluation SE of that model's number (finite test sample; `binomial_se` of its
  per-sample outcomes, `record.trials_table` / `analyze_table`);
- `X_seed_sd`: the training-seed SD of that number (from replicate runs; 0 when not known).
Their squares add to each model's error variance (`error_variance`). The reliability of X across
the models is the share of the observed between-model variance that is not error (`reliability`);
a correlation between two noisy metrics is attenuated by √(R_x·R_y) and corrected by Spearman's
(1904) disattenuation (`disattenuate`, `corrected_partial`). Everything takes bootstrap count
matrices too, so reliabilities are re-estimated inside each resample (Padilla & Veprinsky 2012).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

SE_SUFFIX, SEED_SUFFIX = "_se", "_seed_sd"
# Per architecture (analysis.components.per_architecture): the sum of squares of its seeds around
# their mean, and its seeds' evaluation variance on the same degrees of freedom, (k − 1)·mean(SE²).
# Summed over the architectures a resample draws they give that resample's own seed variance.
WITHIN_SS_SUFFIX, WITHIN_EVAL_SUFFIX = "_within_ss", "_within_eval"
MIN_RELIABILITY = 0.1  # below this the correction divides by almost nothing: the corrected r says nothing


def binomial_se(p, n) -> np.ndarray:
    """The SE of an accuracy p measured on n independent test samples: √(p(1 − p)/n) (NaN for n < 1)."""
    p, n = np.asarray(p, float), np.asarray(n, float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n >= 1, np.sqrt(np.clip(p * (1 - p), 0, None) / np.where(n >= 1, n, 1)), np.nan)


def error_variance(table: pd.DataFrame, column: str, seed_var: float = 0.0) -> np.ndarray | None:
    """Each model's error variance of `column`: `column_se`² + `column_seed_sd`² + `seed_var` (the
    columns that exist); None when the table says nothing about the noise of `column`. A model with a
    missing SE is given the mean of the others' (its number is no better measured than theirs)."""
    parts = [c for c in (column + SE_SUFFIX, column + SEED_SUFFIX) if c in table]
    if not parts and not seed_var:
        return None
    total = np.full(len(table), float(seed_var))
    for c in parts:
        v = pd.to_numeric(table[c], errors="coerce").to_numpy(float) ** 2
        if np.isfinite(v).any():
            total += np.where(np.isfinite(v), v, np.nanmean(v))
    return total


def reliability(values, eval_se, seed_var: float = 0.0) -> float:
    """The share of the observed between-model variance of `values` that is true variance:
    1 − (mean of eval_se² + seed_var) / var(values), at most 1 and NaN when the variance is 0.
    A value ≤ 0 means the spread is all noise."""
    v = np.asarray(values, float)
    err = np.asarray(eval_se, float) ** 2 + seed_var
    keep = np.isfinite(v) & np.isfinite(err)
    if keep.sum() < 2:
        return math.nan
    var = float(np.var(v[keep], ddof=1))
    return math.nan if var <= 0 else min(1.0, 1 - float(err[keep].mean()) / var)


def resampled_reliability(values: np.ndarray, err_var: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """`reliability` on every bootstrap resample of `counts` (B × n: how often each model is drawn),
    as a few matrix products: weighted variance (ddof 1) and weighted mean error variance."""
    w = counts
    total = w.sum(1)
    s1, s2, e = (w @ np.column_stack([values, values * values, err_var])).T
    with np.errstate(invalid="ignore", divide="ignore"):
        var = (s2 - s1 * s1 / total) / (total - 1)
        return np.where(var > 0, np.minimum(1.0, 1 - (e / total) / var), np.nan)


def spearman_correction(r, rel_x, rel_y):
    """Spearman's correction for attenuation, r / √(R_x·R_y), unclipped: a value beyond ±1 is kept
    (the reliabilities are then too low for the observed r, and a page flags it); NaN only where a
    reliability is below `MIN_RELIABILITY` (the correction would divide by almost nothing)."""
    r, rx, ry = (np.asarray(v, float) for v in (r, rel_x, rel_y))
    ok = (rx >= MIN_RELIABILITY) & (ry >= MIN_RELIABILITY)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(ok, r / np.sqrt(np.where(ok, rx * ry, 1.0)), np.nan)


def disattenuate(r, rel_x, rel_y):
    """`spearman_correction` inside [−1, 1], NaN outside: for composing corrected correlations (a
    partial correlation of corrected pairwise ones has no meaning once one of them leaves [−1, 1])."""
    out = spearman_correction(r, rel_x, rel_y)
    with np.errstate(invalid="ignore"):
        return np.where(np.abs(out) < 1, out, np.nan)


def corrected_partial(rxy, rxz, ryz, rel_x, rel_y, rel_z):
    """The partial correlation of x and y given z from disattenuated pairwise correlations: noise in
    x or y attenuates it, noise in z (the variable held fixed) leaves part of z's effect in it; both
    are undone here (Spearman 1904; e.g. Hunter & Schmidt 2004, ch. 3). Arrays broadcast (one value
    per bootstrap resample)."""
    cxy, cxz, cyz = disattenuate(rxy, rel_x, rel_y), disattenuate(rxz, rel_x, rel_z), disattenuate(ryz, rel_y, rel_z)
    with np.errstate(invalid="ignore", divide="ignore"):
        den = (1 - cxz**2) * (1 - cyz**2)
        out = (cxy - cxz * cyz) / np.sqrt(np.where(den > 0, den, np.nan))
    return np.where(np.abs(out) < 1, out, np.nan)


def partial_from_observed(p_obs, rxz, ryz, rel_x, rel_y, rel_z):
    """The corrected partial correlation at which the observed partial would be `p_obs`, the other
    pairwise correlations and the reliabilities held at their estimates: maps the endpoints of an
    interval for the observed partial to an interval for the corrected one (the endpoint correction
    of Hunter & Schmidt 2004, ch. 3; monotone in `p_obs`)."""
    with np.errstate(invalid="ignore"):
        rxy = np.asarray(p_obs, float) * math.sqrt(max(0.0, (1 - rxz**2) * (1 - ryz**2))) + rxz * ryz
    return corrected_partial(rxy, rxz, ryz, rel_x, rel_y, rel_z)
