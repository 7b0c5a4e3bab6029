"""The adversarial power law (Cubuk et al. 2017): at small ε, adversarial error ≈ A · ε^slope, fitted
from each model's per-sample minimal ε with a multinomial likelihood, with calibrated goodness of fit.

Adversarial error at ε is the fraction of a model's clean-correct attacked samples with minimal
adversarial ε ≤ ε. Source: `minimization_min_eps` (minimization attacks only, exact per sample) when
the trial stored it, else `min_adversarial_eps` (worst case over all attacks; fixed-ε attacks only
say "broken at this grid ε", so those values are quantized to the suite's grid). `error_source` says
which.

Window (one for all models, so slopes are comparable), chosen from the small-ε end: it ends where
the pooled error of the window models (all their samples together) reaches `MAX_ERROR` and spans
`DECADES` decades below; `N_POINTS` log-spaced points. (The weakest model's 50% error, used before,
put the window's top past the small-ε regime.) The samples fall into the bins between the points
(the last bin: not broken within the window); the bin counts are multinomial. The fit maximizes
that likelihood under F(ε) = exp(a + slope · x), x = ln(ε / ε_high); the slope's SE comes from the
Fisher information. Per model: the deviance against the saturated multinomial and the likelihood
ratio of a quadratic term in x (curvature in log–log) with its estimate and SE. Their sums over
models are biased upward by sparse bins, so `calibrated_gof` gives their p-values by a parametric
bootstrap from each model's fitted power law. The slope's display CI is a seeded percentile
bootstrap over samples; a resample whose breaks all sit in the window's top bin has an unbounded
slope and counts as +∞ (the CI's upper end is then ∞, not a cap).
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from ..metrics import EPS_ATOL, EPS_RTOL  # a break at ε within float slack counts at ε
from .pooling import slope_summary  # noqa: F401  (re-exported: the analyzer's import)
from .stats import CONFIDENCE, N_BOOT

MAX_ERROR = 0.25  # pooled error at the window's top: the small-ε end of the curves
N_POINTS = 8
MIN_POINTS = 5
DECADES = 1.0
MIN_BROKEN = 10  # breaks inside the window below which a fit says nothing
MAX_SLOPE = 200.0  # numerical ceiling of the fit; a slope there is reported as +∞ (an unbounded MLE)
N_GOF = 199  # parametric-bootstrap replicates of the summed goodness-of-fit statistics
ALPHA = 0.05
CURV_ITERS = 40


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
    pooled = np.concatenate([np.asarray(m, float) for m in min_eps]) if len(min_eps) else np.array([])
    broken = pooled[np.isfinite(pooled)]
    if not len(broken):
        return math.nan, math.nan
    high = eps_at_error(pooled, max_error)
    if not math.isfinite(high):  # the pooled error never reaches max_error: up to the largest break
        high = float(broken.max())
    if high <= 0:
        return math.nan, math.nan
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
        gain = l0 - ll[active]
        theta[active], ll[active] = th, l0
        moved = np.abs(t[:, None] * step).max(1) > 1e-7  # slopes to ~1e-7: far below any CI
        active = active[done & moved & (gain > 1e-8)]  # a flat likelihood: the fit has converged
    return theta, ll


def _start(counts: np.ndarray, x: np.ndarray) -> np.ndarray:
    """A feasible start: least squares on continuity-corrected log shares (slope kept positive)."""
    n = counts.sum(1, keepdims=True)
    ly = np.log((np.cumsum(counts[:, :-1], 1) + 0.5) / (n + 1))
    slope = np.clip(np.polyfit(x, ly.T, 1)[0], 0.1, MAX_SLOPE)
    return np.column_stack([ly[:, -1], slope])


def _se(counts: np.ndarray, theta: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Standard errors (B, k) of θ from the expected Fisher information at θ."""
    k = theta.shape[1]
    phi = np.column_stack([x ** p for p in range(k)])
    pi, dpi = _probs(theta, phi)
    info = counts.sum(1)[:, None, None] * np.einsum("bpi,bpj->bij", dpi / np.clip(pi, 1e-12, None)[..., None], dpi)
    cov = np.linalg.pinv(info)
    return np.sqrt(np.clip(np.diagonal(cov, axis1=1, axis2=2), 0, None))


def fit_batch(counts: np.ndarray, x: np.ndarray, start: np.ndarray | None = None, *,
              curvature: bool = True) -> dict[str, np.ndarray]:
    """Power-law fits of many models' bin counts (rows) on points x = ln(ε/ε_high) at once: slope
    (+∞ where unbounded) and its SE, log A, deviance, the curvature LR and the quadratic term with
    its SE (see the module docstring)."""
    c = np.atleast_2d(np.asarray(counts, float))
    th2, ll2 = _mle(c, x, 2, _start(c, x) if start is None else start)
    # every break in the top bin: the likelihood rises without bound in the slope (set exactly)
    unbounded = (c[:, :-2].sum(1) == 0) & (c[:, -2] > 0)
    if curvature:  # 40 steps: rows still moving creep along the monotonicity boundary, LR settled to ~1e-3
        th3, ll3 = _mle(c, x, 3, np.column_stack([th2, np.zeros(len(c))]), iters=CURV_ITERS)
    else:
        th3, ll3 = np.column_stack([th2, np.full(len(c), np.nan)]), ll2
    n = c.sum(1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        sat = (c * np.log(np.where(c > 0, c / n, 1.0))).sum(1)
    expected = n * np.clip(_probs(th2, np.column_stack([np.ones_like(x), x]))[0], 1e-12, None)
    pearson = ((c - expected) ** 2 / expected).sum(1)  # Pearson's X²: its mean stays near its df in sparse bins
    slope = th2[:, 1].copy()
    slope[unbounded | (slope >= MAX_SLOPE * (1 - 1e-6))] = math.inf
    return {"slope": slope, "slope_se": _se(c, th2, x)[:, 1], "log_a": th2[:, 0], "theta": th2,
            "deviance": np.maximum(0.0, 2 * (sat - ll2)), "pearson": pearson,
            "curvature_lr": np.maximum(0.0, 2 * (ll3 - ll2)),
            "curvature": th3[:, 2], "curvature_se": _se(c, th3, x)[:, 2] if curvature else th3[:, 2]}


def fit_counts(counts: np.ndarray, x: np.ndarray) -> dict:
    """One model's fit (see `fit_batch`) with its per-model χ² p-values (uncalibrated: with sparse
    bins they reject too often; the study-level test is `calibrated_gof`)."""
    fit = {k: float(v[0]) for k, v in fit_batch(counts, x).items() if k != "theta"}
    df = len(x) - 2
    return {**fit, "deviance_df": df, "deviance_p": float(stats.chi2.sf(fit["deviance"], df)),
            "curvature_p": float(stats.chi2.sf(fit["curvature_lr"], 1))}


def bootstrap_slopes(counts: np.ndarray, x: np.ndarray, *, n_boot: int = N_BOOT, seed: int = 0) -> np.ndarray:
    """Slopes of `n_boot` resamples of the model's samples: NaN where a resample broke nothing in the
    window (no slope), +∞ where its MLE is unbounded (every break in the top bin)."""
    counts = np.asarray(counts, float)
    n = int(counts.sum())
    draws = np.random.default_rng(seed).multinomial(n, counts / n, size=n_boot).astype(float)
    out = np.full(n_boot, np.nan)
    broke = draws[:, :-1].sum(1) > 0  # the others have no slope: the likelihood rises as A → 0
    if broke.any():
        d = draws[broke]
        slope = _mle(d, x, 2, _start(d, x))[0][:, 1]
        unbounded = (d[:, :-2].sum(1) == 0) | (slope >= MAX_SLOPE * (1 - 1e-6))
        out[broke] = np.where(unbounded, math.inf, slope)
    return out


def boot_ci(values: np.ndarray, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Percentile interval of the defined resamples (NaN dropped, +∞ kept: an upper end of ∞)."""
    v = values[~np.isnan(values)]
    if len(v) < 10:
        return math.nan, math.nan
    lo, hi = np.quantile(v, [(1 - confidence) / 2, (1 + confidence) / 2], method="lower")
    return float(lo), float(hi)


def margin_tail_counts(margins, share: float, *, decades: float = DECADES,
                       n_points: int = N_POINTS) -> np.ndarray | None:
    """Bin counts of the small-margin tail, for CDF(m) ∝ m^k fitted exactly as the ε power law (same
    likelihood, same number of decades, same relative points), on the margins up to their `share`
    quantile — the error share this model reached at ε_high. The paper's explanation of the power
    law: if a sample's margin shrinks about linearly with ε, the error at small ε is this CDF at c·ε."""
    m = np.asarray(margins, float)
    m = m[np.isfinite(m)]
    if not len(m) or not 0 < share <= 1:
        return None
    high = eps_at_error(m, share)
    if not (math.isfinite(high) and high > 0):
        return None
    # The window's top is one of these margins (an order statistic): counted inside, it sits on the
    # top edge and biases the exponent upwards by about k / (breaks) — 0.025 in simulated studies of
    # 45 breaks per model. Below it the margins are an i.i.d. sample of the tail, so the top one and
    # any tied with it go to the last bin.
    c = bin_counts(m[m < high], np.geomspace(high / 10 ** decades, high, n_points))
    c[-1] += float((m >= high).sum())
    return c


def margin_tail_exponent(margins, share: float, *, decades: float = DECADES, n_points: int = N_POINTS) -> float:
    """The exponent of `margin_tail_counts` (NaN when it has no window or < MIN_BROKEN margins in it)."""
    c = margin_tail_counts(margins, share, decades=decades, n_points=n_points)
    if c is None or c[:-1].sum() < MIN_BROKEN:
        return math.nan
    return float(fit_batch(c, np.log(np.geomspace(10 ** -decades, 1, n_points)), curvature=False)["slope"][0])


def margin_link(min_eps, margins) -> tuple[float, float, int]:
    """Slope (and its OLS SE, n) of log minimal ε on log logit margin over the model's broken samples:
    1 when a sample's margin shrinks linearly with ε (ε_min = margin / rate), 0 with no link."""
    e, m = np.asarray(min_eps, float), np.asarray(margins, float)
    ok = np.isfinite(e) & (e > 0) & np.isfinite(m) & (m > 0)
    if ok.sum() < MIN_BROKEN or np.ptp(np.log(m[ok])) == 0:
        return math.nan, math.nan, int(ok.sum())
    lx, ly = np.log(m[ok]), np.log(e[ok])
    lx, ly = lx - lx.mean(), ly - ly.mean()
    sxx = float(lx @ lx)
    slope = float(lx @ ly) / sxx
    resid = ly - slope * lx
    return slope, math.sqrt(float(resid @ resid) / (len(lx) - 2) / sxx), int(ok.sum())  # as scipy's linregress


def fit_power_law(min_eps, window: tuple[float, float] | None = None, *, n_points: int = N_POINTS,
                  n_boot: int = N_BOOT, seed: int = 0, max_error: float = MAX_ERROR) -> dict:
    """One model's fit on `n_points` log-spaced ε in `window` (default: this model's own window,
    see `common_window`). Returns slope with bootstrap CI, intercept (log10 A of error = A ε^slope),
    the window, broken count, the goodness-of-fit numbers, `power_law_ok` and `status`."""
    m = np.asarray(min_eps, float)
    lo, hi = window or common_window([m], max_error=max_error)
    out = _prepare(m, lo, hi, n_points)
    if out["status"] != "ok":
        return out
    x = np.log(np.geomspace(lo, hi, n_points) / hi)
    counts = out.pop("_counts")
    fit = fit_counts(counts, x)
    out.update({k: v for k, v in fit.items() if k != "log_a"})
    out["intercept"] = fit["log_a"] / math.log(10) - fit["slope"] * math.log10(hi)
    out["power_law_ok"] = bool(fit["deviance_p"] >= ALPHA and fit["curvature_p"] >= ALPHA)
    if n_boot:
        boots = bootstrap_slopes(counts, x, n_boot=n_boot, seed=seed)
        out["ci_low"], out["ci_high"] = boot_ci(boots)
        out["boot_undefined"] = float(np.isnan(boots).mean())
    return out


def _prepare(m: np.ndarray, lo: float, hi: float, n_points: int) -> dict:
    """The fit row before fitting: window, counts (`_counts`) and a status saying why not, if not."""
    out = {"slope": math.nan, "slope_se": math.nan, "ci_low": math.nan, "ci_high": math.nan,
           "intercept": math.nan, "eps_low": lo, "eps_high": hi, "n_points": n_points, "n_samples": len(m),
           "n_broken": 0, "error_low": math.nan, "error_high": math.nan, "deviance": math.nan,
           "deviance_df": math.nan, "deviance_p": math.nan, "curvature": math.nan, "curvature_se": math.nan,
           "curvature_lr": math.nan, "curvature_p": math.nan, "boot_undefined": math.nan, "power_law_ok": None,
           "status": "ok"}
    if not np.isfinite(m).any():
        out["status"] = "never broken at any ε"
        return out
    if not (math.isfinite(hi) and hi > lo > 0) or n_points < MIN_POINTS:
        out["status"] = f"no usable ε window (needs ε_high > ε_low > 0 and ≥ {MIN_POINTS} points)"
        return out
    counts = bin_counts(m, np.geomspace(lo, hi, n_points))
    out.update(n_broken=int(counts[:-1].sum()), error_low=float(counts[0] / len(m)),
               error_high=float(counts[:-1].sum() / len(m)), _counts=counts)
    if out["n_broken"] < MIN_BROKEN:
        out["status"] = f"only {out['n_broken']} sample(s) broken inside the window (< {MIN_BROKEN})"
        out.pop("_counts")
    return out


def _sources(samples: pd.DataFrame) -> dict[int, tuple[np.ndarray, np.ndarray, str]]:
    """Per trial: (minimal ε per sample, margins, which ε was used)."""
    if samples.empty:
        return {}
    s = samples.sort_values("trial", kind="stable")
    trials, starts = np.unique(s["trial"].to_numpy(), return_index=True)
    split = {c: np.split(s[c].to_numpy(float), starts[1:]) for c in ("minimization_min_eps", "min_adversarial_eps",
                                                                       "margin")}
    out = {}
    for i, trial in enumerate(trials):
        mini, worst, margin = (split[c][i] for c in ("minimization_min_eps", "min_adversarial_eps", "margin"))
        if len(mini) and not np.isnan(mini).any():
            out[int(trial)] = (mini, margin, "minimization attacks (minimization_min_eps)")
        elif len(worst) and not np.isnan(worst).any():
            out[int(trial)] = (worst, margin, "worst case over all attacks (min_adversarial_eps; fixed-ε attacks "
                                              "quantized to the ε grid)")
    return out


def power_law_table(samples: pd.DataFrame, trials, window_trials=None, *, max_error: float = MAX_ERROR,
                    decades: float = DECADES, n_points: int = N_POINTS, n_boot: int = N_BOOT,
                    seed: int = 0) -> pd.DataFrame:
    """One row per trial in `trials`: the power-law fit (see `fit_power_law`; all models fitted in
    one batch) in the window common to `window_trials` (default: all), the margin-tail exponent over
    the same error shares with its SE, the margin link (`margin_link`) and the bin counts."""
    src = _sources(samples)
    trials = [int(t) for t in trials]
    chosen = [src[t][0] for t in (window_trials if window_trials is not None else trials) if int(t) in src]
    lo, hi = common_window(chosen, max_error=max_error, decades=decades)
    x = np.log(np.geomspace(10 ** -decades, 1, n_points))
    rows, ok = [], []
    for trial in trials:
        if trial not in src:
            rows.append({"trial": trial, "status": "no per-sample ε stored", "error_source": None})
            continue
        m, margins, source = src[trial]
        row = {"trial": trial, **_prepare(m, lo, hi, n_points), "error_source": source}
        row["margin_link_slope"], row["margin_link_se"], row["margin_link_n"] = margin_link(m, margins)
        if row["status"] == "ok":
            ok.append(len(rows))
        rows.append(row)
    if ok:
        _fill_fits([rows[i] for i in ok], [src[rows[i]["trial"]][1] for i in ok], x, hi, n_boot=n_boot, seed=seed,
                   decades=decades)
    table = pd.DataFrame(rows, columns=COLUMNS)
    num = [c for c in COLUMNS[1:] if c not in ("power_law_ok", "status", "error_source", "bin_counts",
                                               "margin_tail_counts")]
    return table.astype({c: float for c in num})


COLUMNS = ["trial", "slope", "slope_se", "ci_low", "ci_high", "intercept", "eps_low", "eps_high", "n_points",
           "n_samples", "n_broken", "error_low", "error_high", "deviance", "deviance_df", "deviance_p", "curvature",
           "curvature_se", "curvature_lr", "curvature_p", "boot_undefined", "power_law_ok", "margin_tail_slope",
           "margin_tail_se", "margin_link_slope", "margin_link_se", "margin_link_n", "status", "error_source",
           "bin_counts", "margin_tail_counts"]


def _fill_fits(rows: list[dict], margins: list[np.ndarray], x: np.ndarray, hi: float, *, n_boot: int,
               seed: int, decades: float) -> None:
    """Fit every usable model (and its margin tail) in one batch and write the numbers into `rows`."""
    counts = np.array([r.pop("_counts") for r in rows])
    fit = fit_batch(counts, x)
    df = len(x) - 2
    tails = [margin_tail_counts(mg, r["error_high"], decades=decades, n_points=len(x)) for r, mg in zip(rows, margins)]
    has_tail = [i for i, c in enumerate(tails) if c is not None and c[:-1].sum() >= MIN_BROKEN]
    tail_fit = fit_batch(np.array([tails[i] for i in has_tail]), x, curvature=False) if has_tail else None
    dev_p, lr_p = stats.chi2.sf(fit["deviance"], df), stats.chi2.sf(fit["curvature_lr"], 1)
    for i, r in enumerate(rows):
        r.update({k: float(fit[k][i]) for k in ("slope", "slope_se", "deviance", "curvature", "curvature_se",
                                                 "curvature_lr")})
        r.update(deviance_df=df, deviance_p=float(dev_p[i]), curvature_p=float(lr_p[i]),
                 intercept=float(fit["log_a"][i]) / math.log(10) - r["slope"] * math.log10(hi),
                 bin_counts=" ".join(str(int(v)) for v in counts[i]), margin_tail_slope=math.nan,
                 margin_tail_se=math.nan, margin_tail_counts="")
        r["power_law_ok"] = bool(r["deviance_p"] >= ALPHA and r["curvature_p"] >= ALPHA)
        if n_boot:
            boots = bootstrap_slopes(counts[i], x, n_boot=n_boot, seed=seed + int(r["trial"]))
            r["ci_low"], r["ci_high"] = boot_ci(boots)
            r["boot_undefined"] = float(np.isnan(boots).mean())
        else:  # Wald interval from the Fisher information
            r["ci_low"], r["ci_high"] = r["slope"] - 1.96 * r["slope_se"], r["slope"] + 1.96 * r["slope_se"]
    for j, i in enumerate(has_tail):
        rows[i]["margin_tail_slope"] = float(tail_fit["slope"][j])
        rows[i]["margin_tail_se"] = float(tail_fit["slope_se"][j])
        rows[i]["margin_tail_counts"] = " ".join(str(int(v)) for v in tails[i])


def counts_of(power: pd.DataFrame, column: str = "bin_counts") -> np.ndarray:
    """The bin counts of the fitted rows of a `power_law_table` (`margin_tail_counts`: of their margin
    tails), as a (models, points + 1) array."""
    return np.array([[float(v) for v in s.split()] for s in power[column]])
