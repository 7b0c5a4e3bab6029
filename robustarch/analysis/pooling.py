"""Random-effects pooling of per-model estimates: statsmodels' `combine_effects` (DerSimonian–Laird
τ²) with the Hartung–Knapp(–Sidik–Jonkman) SE and t with k − 1 degrees of freedom (Hartung & Knapp
2001; IntHout et al. 2014: the z interval is too narrow with few models), τ, I², Cochran's Q, the
prediction interval; the claims test the pooled mean by TOST (analysis.verdicts.tost).

A pooled mean answers "what is the typical model's value"; τ and the prediction interval answer
"how much do models differ".
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.meta_analysis import combine_effects

CONFIDENCE = 0.95
MIN_STUDIES = 3  # below this τ, the t interval and the prediction interval are not estimable


def pool(effects, variances, *, confidence: float = CONFIDENCE) -> dict:
    """Random-effects pooled mean with its Hartung–Knapp SE, t CI (df = k − 1), τ, I², Cochran's Q
    and its p, and the prediction interval for a new model's value (Higgins et al. 2009: t with
    k − 2 df; statsmodels has none). Non-finite or non-positive variances are dropped; fewer than
    `MIN_STUDIES` left gives NaN numbers with k."""
    y, v = np.asarray(effects, float), np.asarray(variances, float)
    keep = np.isfinite(y) & np.isfinite(v) & (v > 0)
    y, v = y[keep], v[keep]
    k = len(y)
    keys = ("mean", "ci_low", "ci_high", "se", "tau", "i2", "q", "q_p", "pi_low", "pi_high", "fixed_mean")
    out: dict = {"k": k, "df": k - 1, "q_df": k - 1} | dict.fromkeys(keys, math.nan)
    if k < MIN_STUDIES:
        return out
    with np.errstate(invalid="ignore", divide="ignore"):  # τ² < 0: statsmodels takes √ of a negative variance
        r = combine_effects(y, v, method_re="chi2", alpha=1 - confidence)
    tau2 = max(0.0, float(r.tau2))
    # statsmodels leaves a negative DerSimonian–Laird τ² untruncated (negative weights): τ² = 0 is the
    # fixed-effect pool, with its own Hartung–Knapp scale
    mean, se = (
        (float(r.mean_effect_re), float(r.sd_eff_w_re_hksj))
        if tau2 > 0
        else (float(r.mean_effect_fe), float(r.sd_eff_w_fe_hksj))
    )
    tq = stats.t.ppf(0.5 + confidence / 2, k - 1)
    half_pi = stats.t.ppf(0.5 + confidence / 2, k - 2) * math.sqrt(tau2 + se**2) if k > 2 else math.nan
    homog = r.test_homogeneity()
    out.update(
        mean=mean,
        se=se,
        ci_low=mean - tq * se,
        ci_high=mean + tq * se,
        tau=math.sqrt(tau2),
        i2=max(0.0, float(r.i2)),
        q=float(homog.statistic),
        q_p=float(homog.pvalue),
        pi_low=mean - half_pi,
        pi_high=mean + half_pi,
        fixed_mean=float(r.mean_effect_fe),
    )
    return out


def mean_t(effects, *, confidence: float = CONFIDENCE) -> dict:
    """The plain mean over models with its one-sample t interval (SE = SD/√k, k − 1 df): the
    two-stage "summary statistics" test, for per-model estimates whose SEs move with the estimates
    themselves (inverse-variance weights would then lean the pooled mean one way)."""
    y = np.asarray(effects, float)
    y = y[np.isfinite(y)]
    k = len(y)
    if k < MIN_STUDIES:
        return {"k": k, "df": k - 1, "mean": math.nan, "se": math.nan, "ci_low": math.nan, "ci_high": math.nan}
    mean, se = float(y.mean()), float(y.std(ddof=1) / math.sqrt(k))
    half = stats.t.ppf(0.5 + confidence / 2, k - 1) * se
    return {"k": k, "df": k - 1, "mean": mean, "se": se, "ci_low": mean - half, "ci_high": mean + half}


def slope_summary(fits: pd.DataFrame, confidence: float = CONFIDENCE) -> dict:
    """The distribution of slopes across models (median, IQR, range) and their random-effects pool
    (`pool`: mean with Hartung–Knapp CI, τ, I², Cochran's Q, prediction interval), each slope with
    its Fisher-information variance."""
    s = fits[[c for c in ("slope", "slope_se") if c in fits]].astype(float)
    v = s["slope"].to_numpy(float)
    ok = np.isfinite(v)
    v = v[ok]
    r = pool(v, s["slope_se"].to_numpy(float)[ok] ** 2 if len(v) else v, confidence=confidence)
    q = np.quantile(v, [0.25, 0.5, 0.75]) if len(v) else np.full(3, math.nan)
    return {
        "n_models": len(v),
        "median": float(q[1]),
        "q1": float(q[0]),
        "q3": float(q[2]),
        "min": float(v.min()) if len(v) else math.nan,
        "max": float(v.max()) if len(v) else math.nan,
        "pooled": r["mean"],
        "pooled_ci_low": r["ci_low"],
        "pooled_ci_high": r["ci_high"],
        "tau": r["tau"],
        "pi_low": r["pi_low"],
        "pi_high": r["pi_high"],
        "cochran_q": r["q"],
        "q_df": r["q_df"] if len(v) else math.nan,
        "q_p_value": r["q_p"],
        "i2": r["i2"],
    }
