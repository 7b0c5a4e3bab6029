"""Goodness of fit of the power law over a whole study, calibrated: per-model statistics are biased
by sparse bins and their sums amplify the bias, so the p-values of the summed Pearson X² and summed
curvature LR come from a parametric bootstrap from each model's fitted power law. (The summed
deviance stayed liberal even so — its null distribution moves with the fitted bin probabilities —
while Pearson's X² keeps its mean near its df.)
"""
from __future__ import annotations

import numpy as np

from .powerlaw import MAX_SLOPE, N_GOF, _mle, _probs, _se, fit_batch


def _sum_p(observed: float, replicates: np.ndarray) -> float:
    return float((1 + (replicates >= observed).sum()) / (len(replicates) + 1))


def _own_p(v: np.ndarray) -> np.ndarray:
    """Each replicate's p-value against all replicates (itself included)."""
    return (v[None, :] >= v[:, None]).sum(1) / len(v)


def calibrated_gof(counts: np.ndarray, x: np.ndarray, *, n_sim: int = N_GOF, seed: int = 0) -> dict:
    """Goodness of fit of one power law per model, summed over models (rows of `counts`), calibrated
    by a parametric bootstrap: `n_sim` studies drawn from each model's fitted power law, refitted.
    p-values of the summed Pearson X², of the summed curvature LR, and of the smaller of those two
    p-values (calibrated on the same replicates, so one p for the form, no Bonferroni)."""
    c = np.atleast_2d(np.asarray(counts, float))
    fit = fit_batch(c, x)
    pi = _probs(fit["theta"], np.column_stack([np.ones_like(x), x]))[0]
    pi = np.clip(pi, 0, None)
    pi /= pi.sum(1, keepdims=True)
    m, n = len(c), c.sum(1).astype(np.int64)
    draws = np.random.default_rng(seed).multinomial(n[None, :], pi[None, :, :], size=(n_sim, m))
    sim = fit_batch(draws.reshape(n_sim * m, -1).astype(float), x, np.tile(fit["theta"], (n_sim, 1)))
    dev_b, lr_b = (sim[k].reshape(n_sim, m).sum(1) for k in ("pearson", "curvature_lr"))
    dev, lr = float(fit["pearson"].sum()), float(fit["curvature_lr"].sum())
    p_dev, p_lr = _sum_p(dev, dev_b), _sum_p(lr, lr_b)
    # each replicate's own p-values against the others: the null distribution of the smaller one
    min_b = np.minimum(_own_p(dev_b), _own_p(lr_b))
    p_min = float((1 + (min_b <= min(p_dev, p_lr)).sum()) / (n_sim + 1))
    return {"pearson": dev, "pearson_df": int(m * (len(x) - 2)), "pearson_p": p_dev, "curvature_lr": lr,
            "curvature_p": p_lr, "p_value": p_min, "n_sim": n_sim,
            "rejected_by": "Pearson X²" if p_dev <= p_lr else "curvature"}


def _slopes(counts: np.ndarray, x: np.ndarray, start: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Slopes (NaN where unbounded) and their Fisher SEs of the power-law fit alone (no curvature)."""
    theta, _ = _mle(counts, x, 2, start)
    unbounded = ((counts[:, :-2].sum(1) == 0) & (counts[:, -2] > 0)) | (theta[:, 1] >= MAX_SLOPE * (1 - 1e-6))
    return np.where(unbounded, np.nan, theta[:, 1]), _se(counts, theta, x)[:, 1]


def _fe_q(slope: np.ndarray, se: np.ndarray, use: np.ndarray) -> np.ndarray:
    """Cochran's Q of each row (replicate) over the columns (models) where `use` holds."""
    w = np.where(use, 1 / np.where(use, se, 1.0) ** 2, 0.0)
    k = np.where(use, slope, 0.0)
    mu = (w * k).sum(-1, keepdims=True) / w.sum(-1, keepdims=True)
    return (w * (k - mu) ** 2).sum(-1)


def calibrated_homogeneity(counts: np.ndarray, x: np.ndarray, *, n_sim: int = N_GOF, seed: int = 0,
                           min_broken: int = 10) -> dict:
    """Cochran's Q that every model (row of `counts`) shares one slope, with a parametric-bootstrap
    p-value: studies drawn from power laws with the common (fixed-effect) slope, each model keeping
    its fitted error at ε_high, refitted with the same Fisher SEs (the χ² reference is off when
    models have a few dozen breaks each)."""
    c = np.atleast_2d(np.asarray(counts, float))
    fit = fit_batch(c, x)
    use = np.isfinite(fit["slope"]) & (fit["slope_se"] > 0)
    q = float(_fe_q(fit["slope"], fit["slope_se"], use))
    w = np.where(use, 1 / np.where(use, fit["slope_se"], 1.0) ** 2, 0.0)
    common = float((w * np.where(use, fit["slope"], 0.0)).sum() / w.sum())
    theta = np.column_stack([fit["theta"][:, 0], np.full(len(c), common)])  # a = log error at ε_high
    pi = np.clip(_probs(theta, np.column_stack([np.ones_like(x), x]))[0], 0, None)
    pi /= pi.sum(1, keepdims=True)
    m, n = len(c), c.sum(1).astype(np.int64)
    draws = np.random.default_rng(seed).multinomial(n[None, :], pi[None, :, :], size=(n_sim, m))
    d = draws.reshape(n_sim * m, -1).astype(float)
    sim = _slopes(d, x, np.tile(theta, (n_sim, 1)))
    ok = (np.isfinite(sim[0]) & (sim[1] > 0) & (d[:, :-1].sum(1) >= min_broken)).reshape(n_sim, m) & use
    q_b = _fe_q(sim[0].reshape(n_sim, m), sim[1].reshape(n_sim, m), ok)
    return {"q": q, "q_df": int(use.sum()) - 1, "p_value": _sum_p(q, q_b), "common_slope": common, "n_sim": n_sim}
