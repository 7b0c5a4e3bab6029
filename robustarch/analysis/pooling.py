"""Random-effects pooling of per-model estimates (DerSimonian–Laird via statsmodels' `combine_effects`)
with τ, I², the homogeneity test, a Q-profile upper bound on τ and a prediction interval.

A pooled mean answers "what is the typical model's value"; τ and the prediction interval answer
"how much do models differ" — the question a claim of universality asks.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import optimize, stats
from statsmodels.stats.meta_analysis import combine_effects

CONFIDENCE = 0.95
MIN_STUDIES = 3  # below this τ and the prediction interval are not estimable


def _q_at(tau2: float, y: np.ndarray, v: np.ndarray) -> float:
    """Generalized Q statistic at a given τ² (decreasing in τ²)."""
    w = 1 / (v + tau2)
    mu = (w * y).sum() / w.sum()
    return float((w * (y - mu) ** 2).sum())


def tau_upper(y, v, level: float = CONFIDENCE) -> float:
    """One-sided `level` upper bound on τ by the Q-profile method (Viechtbauer 2007): the τ² at which
    the generalized Q equals the lower (1 − level) χ² quantile. statsmodels gives no interval for τ,
    so this is hand-written."""
    y, v = np.asarray(y, float), np.asarray(v, float)
    target = stats.chi2.ppf(1 - level, len(y) - 1)
    if _q_at(0.0, y, v) <= target:
        return 0.0
    hi = max(1e-6, float(np.var(y)) * 10 + float(v.max()))
    while _q_at(hi, y, v) > target:
        hi *= 4
    return math.sqrt(optimize.brentq(lambda t: _q_at(t, y, v) - target, 0.0, hi, xtol=1e-10))


def pool(effects, variances, *, confidence: float = CONFIDENCE) -> dict:
    """Random-effects (DerSimonian–Laird) pooled mean with its CI, τ, I², Cochran's Q and its p, a
    one-sided upper bound on τ and the prediction interval for a new model's value (Higgins et al.
    2009: t with k − 2 df; hand-written, statsmodels has none). Non-finite or non-positive variances
    are dropped; fewer than `MIN_STUDIES` left gives NaN numbers with k."""
    y, v = np.asarray(effects, float), np.asarray(variances, float)
    keep = np.isfinite(y) & np.isfinite(v) & (v > 0)
    y, v = y[keep], v[keep]
    k = len(y)
    out = {"k": k, "mean": math.nan, "ci_low": math.nan, "ci_high": math.nan, "se": math.nan, "p_zero": math.nan,
           "tau": math.nan, "tau_upper": math.nan, "i2": math.nan, "q": math.nan, "q_df": k - 1, "q_p": math.nan,
           "pi_low": math.nan, "pi_high": math.nan, "fixed_mean": math.nan}
    if k < MIN_STUDIES:
        return out
    with np.errstate(invalid="ignore", divide="ignore"):  # τ² < 0: statsmodels takes √ of a negative variance
        r = combine_effects(y, v, method_re="chi2", alpha=1 - confidence)
    tau2 = max(0.0, float(r.tau2))
    # statsmodels leaves a negative DerSimonian–Laird τ² untruncated (negative weights): τ² = 0 is
    # the fixed-effect pool
    mean, se = (float(r.mean_effect_re), float(r.sd_eff_w_re)) if tau2 > 0 else \
        (float(r.mean_effect_fe), float(r.sd_eff_w_fe))
    z = stats.norm.ppf(0.5 + confidence / 2)
    half_pi = stats.t.ppf(0.5 + confidence / 2, k - 2) * math.sqrt(tau2 + se ** 2)
    homog = r.test_homogeneity()
    out.update(mean=mean, se=se, ci_low=mean - z * se, ci_high=mean + z * se, tau=math.sqrt(tau2),
               tau_upper=tau_upper(y, v, confidence), i2=max(0.0, float(r.i2)), q=float(homog.statistic),
               q_p=float(homog.pvalue), pi_low=mean - half_pi, pi_high=mean + half_pi,
               fixed_mean=float(r.mean_effect_fe), p_zero=float(2 * stats.norm.sf(abs(mean / se))) if se > 0
               else math.nan)
    return out


def slope_summary(fits: pd.DataFrame, confidence: float = CONFIDENCE) -> dict:
    """The distribution of slopes across models (median, IQR, range) and their random-effects pool
    (analysis.pooling: DerSimonian–Laird mean with CI, τ, I², Cochran's Q test that all models share
    one slope, prediction interval). Each slope's variance is its Fisher-information SE² (`slope_se`),
    else the SE implied by its CI."""
    s = fits[[c for c in ("slope", "slope_se", "ci_low", "ci_high") if c in fits]].astype(float)
    s = s[np.isfinite(s["slope"])]
    out = {"n_models": len(s), "median": math.nan, "q1": math.nan, "q3": math.nan, "min": math.nan,
           "max": math.nan, "pooled": math.nan, "pooled_ci_low": math.nan, "pooled_ci_high": math.nan,
           "tau": math.nan, "tau_upper": math.nan, "pi_low": math.nan, "pi_high": math.nan,
           "cochran_q": math.nan, "q_df": math.nan, "q_p_value": math.nan, "i2": math.nan}
    if s.empty:
        return out
    v = s["slope"].to_numpy(float)
    out.update(median=float(np.median(v)), q1=float(np.quantile(v, 0.25)), q3=float(np.quantile(v, 0.75)),
               min=float(v.min()), max=float(v.max()))
    se = s["slope_se"] if "slope_se" in s else (s["ci_high"] - s["ci_low"]) / (2 * stats.norm.ppf(0.5 + confidence / 2))
    r = pool(v, se.to_numpy(float) ** 2, confidence=confidence)
    out.update(pooled=r["mean"], pooled_ci_low=r["ci_low"], pooled_ci_high=r["ci_high"], tau=r["tau"],
               tau_upper=r["tau_upper"], pi_low=r["pi_low"], pi_high=r["pi_high"], cochran_q=r["q"],
               q_df=r["q_df"], q_p_value=r["q_p"], i2=r["i2"])
    return out
