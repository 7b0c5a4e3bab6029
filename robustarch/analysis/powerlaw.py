"""The adversarial power law (Cubuk et al. 2017): at small ε, adversarial error ≈ A · ε^slope.

Adversarial error at ε here is the fraction of a model's clean-correct attacked samples that some
attack broke within ε (worst case over the suite), measured at the suite's ε grid where it is exact.

Fit rule (the "small-ε range before saturation"): keep the grid points whose error is strictly
positive (log defined) and at most `MAX_ERROR` = 0.5 (past half the samples broken the curve bends
towards 1, the saturation regime); with the curve non-decreasing these form one contiguous ε range.
At least 2 points are needed. Fit log10(error) = intercept + slope · log10(ε) by weighted least
squares, each point weighted by 1/var(log error) ≈ n·error/(1 − error) for n samples, so that the
few-sample points at the smallest ε do not dominate. The
95% CI of the slope is a seeded percentile bootstrap over the model's attacked samples, with the ε
range held fixed.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from ..metrics import EPS_ATOL, EPS_RTOL  # a break at ε within float slack counts at ε
from .stats import CONFIDENCE, N_BOOT, percentile_ci

MAX_ERROR = 0.5
MIN_POINTS = 2


def _wls_slopes(lx: np.ndarray, ly: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weighted least-squares slope and intercept of each row of ly (..., points) on lx."""
    with np.errstate(invalid="ignore", divide="ignore"):
        sw = w.sum(-1, keepdims=True)
        mx = (w * lx).sum(-1, keepdims=True) / sw
        my = (w * ly).sum(-1, keepdims=True) / sw
        slope = (w * (lx - mx) * (ly - my)).sum(-1) / (w * (lx - mx) ** 2).sum(-1)
    return slope, my[..., 0] - slope * mx[..., 0]


def _weights(error: np.ndarray, n: int) -> np.ndarray:
    """1 / variance of log(error) for a binomial share: n·p / (1 − p) (delta method)."""
    return n * error / np.clip(1 - error, 1e-9, None)


def _loglog_fit(eps: np.ndarray, error: np.ndarray, n: int) -> tuple[float, float, float]:
    """Slope, intercept and weighted R² of log10(error) on log10(eps); NaN where undefined."""
    lx, ly = np.log10(eps), np.log10(error)
    if len(lx) < 2 or np.ptp(lx) == 0:
        return math.nan, math.nan, math.nan
    w = _weights(error, n)
    slope, intercept = (float(v) for v in _wls_slopes(lx, ly, w))
    my = (w * ly).sum() / w.sum()
    ss_tot = float((w * (ly - my) ** 2).sum())
    ss_res = float((w * (ly - intercept - slope * lx) ** 2).sum())
    r2 = 1 - ss_res / ss_tot if ss_tot > 0 and len(lx) > 2 else math.nan
    return slope, intercept, r2


def bootstrap_slope_ci(eps_grid, min_eps: list[np.ndarray], masks: np.ndarray, *, n_boot: int = N_BOOT,
                       seed: int = 0, confidence: float = CONFIDENCE) -> np.ndarray:
    """Percentile bootstrap CI of the slope for many models at once: (models, 2).

    Resampling a model's n samples with replacement only matters through how many land in each
    "first broken at grid point p" bin, so each resample is a multinomial draw over those bins
    (drawn as a chain of binomials, all models and resamples together). `masks` (models, points):
    each model's fit range, held fixed."""
    grid = np.asarray(eps_grid, float)
    bounds = grid * (1 + EPS_RTOL) + EPS_ATOL
    n_models, n_points = len(min_eps), len(grid)
    out = np.full((n_models, 2), np.nan)
    if n_models == 0:
        return out
    counts = np.stack([np.bincount(np.searchsorted(bounds, np.asarray(m, float), side="left"),
                                   minlength=n_points + 1) for m in min_eps]).astype(float)
    n = counts.sum(1)
    rng = np.random.default_rng(seed)
    left = np.repeat(n[:, None], n_boot, axis=1).astype(np.int64)
    mass = np.ones(n_models)
    draws = np.empty((n_models, n_boot, n_points))
    for k in range(n_points):
        pk = counts[:, k] / np.maximum(n, 1)
        prob = np.clip(np.divide(pk, mass, out=np.zeros_like(pk), where=mass > 1e-12), 0, 1)
        draws[:, :, k] = rng.binomial(left, prob[:, None])
        left -= draws[:, :, k].astype(np.int64)
        mass = mass - pk
    errs = np.cumsum(draws, axis=2) / np.maximum(n, 1)[:, None, None]  # (models, B, points)
    m3 = masks[:, None, :].astype(bool)
    ok = np.where(m3, errs > 0, True).all(2)
    ly = np.log10(np.where(errs > 0, errs, 1.0))
    w = _weights(errs, n[:, None, None]) * m3
    slopes, _ = _wls_slopes(np.log10(np.where(grid > 0, grid, 1.0)), ly, w)
    slopes = np.where(ok, slopes, np.nan)
    for i in range(n_models):
        if masks[i].sum() >= MIN_POINTS and n[i] > 1:
            out[i] = percentile_ci(slopes[i], confidence)
    return out


def error_curve(min_eps: np.ndarray, eps_grid) -> np.ndarray:
    """Fraction of samples with minimal adversarial ε ≤ each grid ε (inf = never broken)."""
    min_eps = np.asarray(min_eps, float)
    grid = np.asarray(eps_grid, float)
    if len(min_eps) == 0:
        return np.full(len(grid), np.nan)
    return (min_eps[None, :] <= (grid * (1 + EPS_RTOL) + EPS_ATOL)[:, None]).mean(1)


def fit_range(eps_grid, error, max_error: float = MAX_ERROR) -> np.ndarray:
    """Boolean mask of the grid points used by the fit (see the module docstring)."""
    error = np.asarray(error, float)
    return np.isfinite(error) & (error > 0) & (error <= max_error) & (np.asarray(eps_grid, float) > 0)


def fit_power_law(eps_grid, min_eps=None, *, error=None, max_error: float = MAX_ERROR,
                  n_boot: int = N_BOOT, seed: int = 0) -> dict:
    """Fit one model's power law. Give `min_eps` (per clean-correct sample, inf = never broken) for
    a bootstrap CI, or only `error` (the error at each grid ε) for the point estimate alone.

    Returns slope, intercept (log10 units), eps_low, eps_high, n_points, r2, ci_low, ci_high and
    `status` ("ok" or why there is no fit)."""
    grid = np.asarray(eps_grid, float)
    if error is None:
        error = error_curve(min_eps, grid)
    error = np.asarray(error, float)
    mask = fit_range(grid, error, max_error)
    out = {"slope": math.nan, "intercept": math.nan, "eps_low": math.nan, "eps_high": math.nan,
           "n_points": int(mask.sum()), "r2": math.nan, "ci_low": math.nan, "ci_high": math.nan,
           "status": "ok"}
    if mask.sum() < MIN_POINTS:
        below = int(((error > 0) & np.isfinite(error)).sum())
        out["status"] = ("never broken at any ε" if below == 0 else
                         f"only {int(mask.sum())} grid point(s) with 0 < error ≤ {max_error:g}")
        return out
    eps_fit = grid[mask]
    n_samples = len(min_eps) if min_eps is not None else 1000  # without samples: near-equal weights
    slope, intercept, r2 = _loglog_fit(eps_fit, error[mask], n_samples)
    out.update(slope=slope, intercept=intercept, eps_low=float(eps_fit.min()),
               eps_high=float(eps_fit.max()), r2=r2)
    if min_eps is not None and len(min_eps) > 1 and n_boot:
        out["ci_low"], out["ci_high"] = bootstrap_slope_ci(grid, [np.asarray(min_eps, float)], mask[None, :],
                                                           n_boot=n_boot, seed=seed)[0]
    return out


def margin_tail_slope(margins, max_share: float = MAX_ERROR, min_samples: int = 20) -> float:
    """Exponent k of the small-margin tail, CDF(m) ∝ m^k: least squares of log10(share) on
    log10(margin quantile) for shares from 2/n (or 0.02) up to `max_share`. The paper's explanation
    of the power law: if a sample's margin shrinks about linearly with ε, the adversarial error at
    small ε is this CDF at c·ε, so its slope should match k."""
    m = np.asarray(margins, float)
    m = m[np.isfinite(m)]
    if len(m) < min_samples:
        return math.nan
    q = np.linspace(max(0.02, 2 / len(m)), max_share, 13)
    v = np.quantile(m, q)
    keep = v > 0
    if keep.sum() < 3 or np.ptp(np.log10(v[keep])) == 0:
        return math.nan
    return float(np.polyfit(np.log10(v[keep]), np.log10(q[keep]), 1)[0])


def power_law_table(samples: pd.DataFrame, curves: pd.DataFrame, eps_grid, *,
                    max_error: float = MAX_ERROR, n_boot: int = N_BOOT, seed: int = 0) -> pd.DataFrame:
    """One row per trial: the power-law fit (see `fit_power_law`).

    `samples`: record.samples_table (per-sample minimal ε); `curves`: one row per trial with
    `trial`, `attacked_clean_accuracy` and the worst-case robust accuracy per grid ε as columns — the
    fallback when a trial stored no per-sample ε."""
    by_trial = {t: g["min_adversarial_eps"].to_numpy() for t, g in samples.groupby("trial")}
    tails = {t: margin_tail_slope(g["margin"].to_numpy()) for t, g in samples.groupby("trial")}
    rows, batch = [], []  # batch: (row index, per-sample ε) of the models bootstrapped together
    for row in curves.to_dict("records"):
        trial = int(row["trial"])
        if trial in by_trial and len(by_trial[trial]) and not np.isnan(by_trial[trial]).any():
            fit = fit_power_law(eps_grid, by_trial[trial], max_error=max_error, n_boot=0)
            fit["error_source"] = "per-sample minimal ε"
            batch.append((len(rows), by_trial[trial]))
        else:
            clean = row.get("attacked_clean_accuracy")
            robust = np.array([row[e] for e in eps_grid], float)
            error = 1 - robust / clean if clean else np.full(len(eps_grid), np.nan)
            fit = fit_power_law(eps_grid, error=error, max_error=max_error)
            fit["error_source"] = "ε-curve (no per-sample ε stored; no CI)"
        rows.append({"trial": trial, **fit, "margin_tail_slope": tails.get(trial, math.nan)})
    if batch:
        grid = np.asarray(eps_grid, float)
        masks = np.stack([fit_range(grid, error_curve(m, grid), max_error) for _, m in batch])
        cis = bootstrap_slope_ci(grid, [m for _, m in batch], masks, n_boot=n_boot, seed=seed)
        for (i, _), (lo, hi) in zip(batch, cis):
            rows[i]["ci_low"], rows[i]["ci_high"] = lo, hi
    cols = ["trial", "slope", "ci_low", "ci_high", "intercept", "eps_low", "eps_high", "n_points", "r2",
            "margin_tail_slope", "status", "error_source"]
    return pd.DataFrame(rows, columns=cols).astype({c: float for c in cols[1:10]})


def slope_summary(fits: pd.DataFrame, confidence: float = CONFIDENCE) -> dict:
    """The distribution of slopes across models, and whether one universal slope fits them all:
    Cochran's Q test of homogeneity with each slope weighted by 1/SE² (SE from its bootstrap CI);
    I² is the share of the spread beyond what each fit's own uncertainty explains."""
    s = fits[["slope", "ci_low", "ci_high"]].astype(float)
    s = s[np.isfinite(s["slope"])]
    out = {"n_models": len(s), "mean": math.nan, "median": math.nan, "sd": math.nan, "q1": math.nan,
           "q3": math.nan, "min": math.nan, "max": math.nan, "pooled": math.nan, "pooled_ci_low": math.nan,
           "pooled_ci_high": math.nan, "cochran_q": math.nan, "q_df": math.nan, "q_p_value": math.nan,
           "i2": math.nan}
    if s.empty:
        return out
    v = s["slope"].to_numpy(float)
    out.update(mean=float(v.mean()), median=float(np.median(v)), sd=float(v.std(ddof=1)) if len(v) > 1 else math.nan,
               q1=float(np.quantile(v, 0.25)), q3=float(np.quantile(v, 0.75)), min=float(v.min()),
               max=float(v.max()))
    z = stats.norm.ppf(0.5 + confidence / 2)
    se = ((s["ci_high"] - s["ci_low"]) / (2 * z)).to_numpy(float)
    ok = np.isfinite(se) & (se > 0)
    if ok.sum() >= 2:
        w = 1 / se[ok] ** 2
        pooled = float((w * v[ok]).sum() / w.sum())
        q = float((w * (v[ok] - pooled) ** 2).sum())
        df = int(ok.sum()) - 1
        half = z / math.sqrt(w.sum())
        out.update(pooled=pooled, pooled_ci_low=pooled - half, pooled_ci_high=pooled + half, cochran_q=q,
                   q_df=df, q_p_value=float(stats.chi2.sf(q, df)), i2=max(0.0, (q - df) / q) if q > 0 else 0.0)
    return out
