"""The adversarial power law (Cubuk et al. 2017): at small ε, adversarial error ≈ A · ε^slope, fitted
from each model's per-sample minimal ε with a multinomial likelihood and tested for goodness of fit.

Adversarial error at ε is the fraction of a model's clean-correct attacked samples with minimal
adversarial ε ≤ ε. Source: `minimization_min_eps` (minimization attacks only, exact per sample) when
the trial stored it, else `min_adversarial_eps` (worst case over all attacks; fixed-ε attacks only
say "broken at this grid ε", so those values are quantized to the suite's grid). `error_source` says
which.

Window (one for all models, so slopes are comparable): the upper end is the smallest ε at which
any model's error reaches `MAX_ERROR` (no model is past saturation inside it), the lower end
`DECADES` decades below; `N_POINTS` log-spaced points. The samples fall into the bins between the
points (the last bin: not broken within the window); the bin counts are multinomial, so zero counts
enter the likelihood as they are and nothing needs a log of zero. The fit maximizes that likelihood
under F(ε) = exp(a + slope · x), x = ln(ε / ε_high). Goodness of fit: the deviance against the
saturated multinomial (χ², points − 2 df) and a likelihood-ratio test of a quadratic term in x
(curvature in log–log, 1 df). The slope's 95% CI is a seeded percentile bootstrap over samples
(multinomial redraws of the bin counts, every resample kept; resamples with no break in the window
have no slope and are counted in `boot_undefined`).
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from ..metrics import EPS_ATOL, EPS_RTOL  # a break at ε within float slack counts at ε
from .stats import CONFIDENCE, N_BOOT, percentile_ci

MAX_ERROR = 0.5
N_POINTS = 8
MIN_POINTS = 5
DECADES = 1.0
MIN_BROKEN = 10  # breaks inside the window below which a fit says nothing
MAX_SLOPE = 20.0  # resamples whose breaks all sit in the top bin push the slope here, not to ∞
ALPHA = 0.05


def error_curve(min_eps: np.ndarray, eps_grid) -> np.ndarray:
    """Fraction of samples with minimal adversarial ε ≤ each grid ε (inf = never broken)."""
    min_eps = np.asarray(min_eps, float)
    grid = np.asarray(eps_grid, float)
    if len(min_eps) == 0:
        return np.full(len(grid), np.nan)
    return (min_eps[None, :] <= (grid * (1 + EPS_RTOL) + EPS_ATOL)[:, None]).mean(1)


def eps_at_error(min_eps: np.ndarray, share: float) -> float:
    """The smallest ε at which the error reaches `share` (inf when it never does)."""
    m = np.sort(np.asarray(min_eps, float))
    if len(m) == 0:
        return math.inf
    return float(m[max(0, math.ceil(share * len(m)) - 1)])


def common_window(min_eps: list[np.ndarray], *, max_error: float = MAX_ERROR,
                  decades: float = DECADES) -> tuple[float, float]:
    """(ε_low, ε_high) shared by all models (see the module docstring); NaN when nothing broke."""
    reach = [eps_at_error(m, max_error) for m in min_eps]
    finite = [r for r in reach if math.isfinite(r) and r > 0]
    if not finite:  # no model reaches max_error: the window ends at the largest break seen
        broken = [float(np.max(m[np.isfinite(m)])) for m in min_eps if np.isfinite(m).any()]
        finite = [max(broken)] if broken and max(broken) > 0 else []
    if not finite:
        return math.nan, math.nan
    high = min(finite)
    return high / 10 ** decades, high


def bin_counts(min_eps: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Samples per bin: ≤ grid[0], (grid[j-1], grid[j]] for each j, and > grid[-1] (last bin)."""
    bounds = np.asarray(grid, float) * (1 + EPS_RTOL) + EPS_ATOL
    idx = np.searchsorted(bounds, np.asarray(min_eps, float), side="left")
    return np.bincount(idx, minlength=len(grid) + 1).astype(float)


def _probs(theta: np.ndarray, phi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bin probabilities (B, P+1) and their derivatives (B, P+1, k) under F = exp(θ · φ(x))."""
    f = np.exp(np.clip(theta @ phi.T, -700, 50))
    df = f[..., None] * phi
    pi = np.concatenate([f[:, :1], np.diff(f, axis=1), 1 - f[:, -1:]], axis=1)
    dpi = np.concatenate([df[:, :1], np.diff(df, axis=1), -df[:, -1:]], axis=1)
    return pi, dpi


def _loglik(counts: np.ndarray, pi: np.ndarray) -> np.ndarray:
    """Multinomial log-likelihood per row; −inf where the parameters give an impossible curve."""
    bad = (pi < 0).any(1) | ((pi <= 0) & (counts > 0)).any(1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ll = (counts * np.log(np.where(counts > 0, pi, 1.0))).sum(1)
    return np.where(bad, -np.inf, ll)


def _mle(counts: np.ndarray, x: np.ndarray, k: int, start: np.ndarray, iters: int = 80) -> tuple[np.ndarray, np.ndarray]:
    """Maximum-likelihood θ of each row of `counts` by Fisher scoring with step halving (every
    accepted step raises the likelihood, so a feasible start stays feasible). Rows stop once their
    step is negligible, so one slow row does not keep the others iterating."""
    phi = np.column_stack([x ** p for p in range(k)])
    theta = start.astype(float).copy()
    ll = _loglik(counts, _probs(theta, phi)[0])
    n = counts.sum(1)
    active = np.flatnonzero(np.isfinite(ll))
    for _ in range(iters):
        if not len(active):
            break
        c, th, l0 = counts[active], theta[active], ll[active]
        pi, dpi = _probs(th, phi)
        safe = np.clip(pi, 1e-12, None)
        grad = ((np.where(c > 0, c / safe, 0.0))[..., None] * dpi).sum(1)
        info = n[active, None, None] * np.einsum("bpi,bpj->bij", dpi / safe[..., None], dpi)
        step = np.linalg.solve(info + 1e-9 * np.eye(k), grad[..., None])[..., 0]
        t, done = np.ones(len(active)), np.zeros(len(active), bool)
        for _ in range(30):
            todo = np.flatnonzero(~done)
            cand = th[todo] + t[todo, None] * step[todo]
            cand[:, 1] = np.clip(cand[:, 1], 0.0, MAX_SLOPE)
            ll_c = _loglik(c[todo], _probs(cand, phi)[0])
            ok = ll_c >= l0[todo]
            th[todo[ok]], l0[todo[ok]] = cand[ok], ll_c[ok]
            done[todo[ok]] = True
            t[todo[~ok]] /= 2
            if done.all():
                break
        theta[active], ll[active] = th, l0
        moved = np.abs(t[:, None] * step).max(1) > 1e-7  # slopes to ~1e-7: far below any CI
        active = active[done & moved]
    return theta, ll


def _start(counts: np.ndarray, x: np.ndarray) -> np.ndarray:
    """A feasible start: least squares on continuity-corrected log shares (slope kept positive)."""
    n = counts.sum(1, keepdims=True)
    ly = np.log((np.cumsum(counts[:, :-1], 1) + 0.5) / (n + 1))
    slope = np.clip(np.polyfit(x, ly.T, 1)[0], 0.1, MAX_SLOPE)
    return np.column_stack([ly[:, -1], slope])


def fit_counts(counts: np.ndarray, x: np.ndarray) -> dict:
    """Power-law fit of one model's bin counts on points x = ln(ε/ε_high), with its two goodness-of-
    fit tests (see the module docstring)."""
    c = np.asarray(counts, float)[None, :]
    (a, slope), ll = (v[0] for v in _mle(c, x, 2, _start(c, x)))
    (_, _, curv), ll_q = (v[0] for v in _mle(c, x, 3, np.array([[a, slope, 0.0]])))
    n = c.sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        sat = float((c * np.log(np.where(c > 0, c / n, 1.0))).sum())
    dev, df = max(0.0, 2 * (sat - ll)), len(x) - 2
    lr = max(0.0, 2 * (ll_q - ll))
    return {"slope": float(slope), "log_a": float(a), "deviance": dev, "deviance_df": df,
            "deviance_p": float(stats.chi2.sf(dev, df)), "curvature": float(curv), "curvature_lr": lr,
            "curvature_p": float(stats.chi2.sf(lr, 1))}


def bootstrap_slopes(counts: np.ndarray, x: np.ndarray, *, n_boot: int = N_BOOT, seed: int = 0) -> np.ndarray:
    """Slopes of `n_boot` resamples of the model's samples (NaN where a resample broke nothing in
    the window: its slope is undefined)."""
    counts = np.asarray(counts, float)
    n = int(counts.sum())
    draws = np.random.default_rng(seed).multinomial(n, counts / n, size=n_boot).astype(float)
    out = np.full(n_boot, np.nan)
    broke = draws[:, :-1].sum(1) > 0  # the others have no slope: the likelihood rises as A → 0
    if broke.any():
        out[broke] = _mle(draws[broke], x, 2, _start(draws[broke], x))[0][:, 1]
    return out


def margin_tail_exponent(margins, share: float, *, decades: float = DECADES, n_points: int = N_POINTS) -> float:
    """Exponent k of the small-margin tail, CDF(m) ∝ m^k, fitted exactly as the ε power law (same
    likelihood, same number of decades) on the margins up to the quantile `share` — the error share
    the ε window reached. The paper's explanation of the power law: if a sample's margin shrinks
    about linearly with ε, the error at small ε is this CDF at c·ε, so the slopes should match."""
    m = np.asarray(margins, float)
    m = m[np.isfinite(m)]
    if not len(m) or not 0 < share <= 1:
        return math.nan
    high = eps_at_error(m, share)
    fit = fit_power_law(m, (high / 10 ** decades, high), n_points=n_points, n_boot=0)
    return fit["slope"]


def fit_power_law(min_eps, window: tuple[float, float] | None = None, *, n_points: int = N_POINTS,
                  n_boot: int = N_BOOT, seed: int = 0, max_error: float = MAX_ERROR) -> dict:
    """One model's fit on `n_points` log-spaced ε in `window` (default: this model's own window,
    see `common_window`). Returns slope with bootstrap CI, intercept (log10 A of error = A ε^slope),
    the window, broken count, the goodness-of-fit numbers, `power_law_ok` and `status`."""
    m = np.asarray(min_eps, float)
    lo, hi = window or common_window([m], max_error=max_error)
    out = {"slope": math.nan, "ci_low": math.nan, "ci_high": math.nan, "intercept": math.nan,
           "eps_low": lo, "eps_high": hi, "n_points": n_points, "n_samples": len(m), "n_broken": 0,
           "error_low": math.nan, "error_high": math.nan, "deviance": math.nan, "deviance_df": math.nan,
           "deviance_p": math.nan, "curvature": math.nan, "curvature_lr": math.nan, "curvature_p": math.nan,
           "boot_undefined": math.nan, "power_law_ok": None, "status": "ok"}
    if not np.isfinite(m).any():
        out["status"] = "never broken at any ε"
        return out
    if not (math.isfinite(hi) and hi > lo > 0) or n_points < MIN_POINTS:
        out["status"] = f"no usable ε window (needs ε_high > ε_low > 0 and ≥ {MIN_POINTS} points)"
        return out
    grid = np.geomspace(lo, hi, n_points)
    counts = bin_counts(m, grid)
    out.update(n_broken=int(counts[:-1].sum()), error_low=float(counts[0] / len(m)),
               error_high=float(counts[:-1].sum() / len(m)))
    if out["n_broken"] < MIN_BROKEN:
        out["status"] = f"only {out['n_broken']} sample(s) broken inside the window (< {MIN_BROKEN})"
        return out
    x = np.log(grid / hi)
    fit = fit_counts(counts, x)
    out.update({k: v for k, v in fit.items() if k != "log_a"})
    out["intercept"] = fit["log_a"] / math.log(10) - fit["slope"] * math.log10(hi)
    out["power_law_ok"] = bool(fit["deviance_p"] >= ALPHA and fit["curvature_p"] >= ALPHA)
    if n_boot:
        boots = bootstrap_slopes(counts, x, n_boot=n_boot, seed=seed)
        out["ci_low"], out["ci_high"] = percentile_ci(boots)
        out["boot_undefined"] = float(np.isnan(boots).mean())
    return out


def _sources(samples: pd.DataFrame) -> dict[int, tuple[np.ndarray, np.ndarray, str]]:
    """Per trial: (minimal ε per sample, margins, which ε was used)."""
    out = {}
    for trial, g in samples.groupby("trial"):
        mini, worst = g["minimization_min_eps"].to_numpy(float), g["min_adversarial_eps"].to_numpy(float)
        if len(mini) and not np.isnan(mini).any():
            out[int(trial)] = (mini, g["margin"].to_numpy(float), "minimization attacks (minimization_min_eps)")
        elif len(worst) and not np.isnan(worst).any():
            out[int(trial)] = (worst, g["margin"].to_numpy(float),
                               "worst case over all attacks (min_adversarial_eps; fixed-ε attacks quantized "
                               "to the ε grid)")
    return out


def power_law_table(samples: pd.DataFrame, trials, window_trials=None, *, max_error: float = MAX_ERROR,
                    decades: float = DECADES, n_points: int = N_POINTS, n_boot: int = N_BOOT,
                    seed: int = 0) -> pd.DataFrame:
    """One row per trial in `trials`: the power-law fit (see `fit_power_law`) in the window common
    to `window_trials` (default: all), and the margin-tail exponent over the same error shares."""
    src = _sources(samples)
    trials = [int(t) for t in trials]
    chosen = [src[t][0] for t in (window_trials if window_trials is not None else trials) if int(t) in src]
    window = common_window(chosen, max_error=max_error, decades=decades)
    rows = []
    for trial in trials:
        if trial not in src:
            rows.append({"trial": trial, "status": "no per-sample ε stored", "error_source": None})
            continue
        m, margins, source = src[trial]
        fit = fit_power_law(m, window, n_points=n_points, n_boot=n_boot, seed=seed + trial)
        tail = margin_tail_exponent(margins, fit["error_high"], decades=decades,
                                    n_points=n_points) if fit["status"] == "ok" else math.nan
        rows.append({"trial": trial, **fit, "margin_tail_slope": tail, "error_source": source})
    cols = ["trial", "slope", "ci_low", "ci_high", "intercept", "eps_low", "eps_high", "n_points", "n_samples",
            "n_broken", "error_low", "error_high", "deviance", "deviance_df", "deviance_p", "curvature",
            "curvature_lr", "curvature_p", "boot_undefined", "power_law_ok", "margin_tail_slope", "status",
            "error_source"]
    table = pd.DataFrame(rows, columns=cols)
    num = [c for c in cols[1:] if c not in ("power_law_ok", "status", "error_source")]
    return table.astype({c: float for c in num})


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
