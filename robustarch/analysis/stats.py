"""Correlation statistics with bootstrap confidence intervals, partial correlation and OLS.

Point estimates and p-values come straight from scipy; confidence intervals are seeded BCa
bootstraps over trials (the resamples scipy.stats.bootstrap would draw from the same seed). A
bootstrap resample is a vector of counts `w` (how often each trial was drawn), so all B resamples of
one pair are a few matrix products instead of B scipy calls; the jackknife is the resample set
1 − I. Hand-written because scipy's `bootstrap` draws its own resamples per call, while a report
shares one set across some 120 column pairs (benchmarks/report.py times it).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from .kendall import KENDALL_BOOT_MAX_N, kendall_ci

METHODS = ("pearson", "spearman", "kendall")
N_BOOT = 1000
CONFIDENCE = 0.95
MIN_N = 4  # below this a correlation and its interval say nothing
JACKKNIFE_MAX_N = 600  # above: BCa without acceleration (the n × n jackknife of Kendall's τ grows as n³)


def resample_counts(n: int, n_boot: int = N_BOOT, seed: int = 0) -> np.ndarray:
    """(n_boot, n) counts: row b says how often each of the n items is drawn in resample b."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(n_boot, n)) + n * np.arange(n_boot)[:, None]
    return np.bincount(idx.ravel(), minlength=n_boot * n).reshape(n_boot, n).astype(np.float64)


def cluster_counts(groups, n_boot: int = N_BOOT, seed: int = 0) -> np.ndarray:
    """(n_boot, n) counts of a cluster bootstrap: whole groups (families of related models) are drawn
    with replacement and every member of a drawn group comes with it (Davison & Hinkley 1997, §3.8;
    Cameron, Gelbach & Miller 2008)."""
    codes = pd.factorize(pd.Series(groups).astype(str))[0]
    return resample_counts(int(codes.max()) + 1, n_boot, seed)[:, codes]


def _weighted_pearson(a: np.ndarray, b: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Pearson r of each resample; `a`, `b` are (B, n) or (n,), `w` (B, n) counts."""
    total = w.sum(1)
    if a.ndim == 1 and b.ndim == 1:  # the five weighted moments of all resamples in one product
        sa, sb, saa, sbb, sab = (w @ np.column_stack([a, b, a * a, b * b, a * b])).T
    else:
        wa, wb = w * a, w * b
        sa, sb, saa, sbb, sab = wa.sum(1), wb.sum(1), (wa * a).sum(1), (wb * b).sum(1), (wa * b).sum(1)
    cov = sab - sa * sb / total
    var = (saa - sa * sa / total) * (sbb - sb * sb / total)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(var > 1e-18, cov / np.sqrt(np.where(var > 0, var, 1.0)), np.nan)


def _weighted_ranks(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Mid-ranks (as scipy.stats.rankdata) of each original item inside each resample: the items
    strictly below, plus half the items equal to it (its own copies included), plus one half."""
    order = np.argsort(x, kind="stable")
    xs = x[order]
    new = np.r_[True, xs[1:] != xs[:-1]]
    starts = np.flatnonzero(new)  # first item of each group of equal values
    group = np.cumsum(new) - 1
    # items as rows (n, B): the gathers and scatters by item move whole rows, twice as fast as columns
    wt = np.ascontiguousarray(w.T)[order]
    equal = np.add.reduceat(wt, starts, axis=0)  # (groups, B): copies per distinct value
    mid = np.cumsum(equal, axis=0) - 0.5 * equal + 0.5  # below + half the equal ones + one half
    ranks = np.empty_like(wt, dtype=float)
    ranks[order] = mid[group]
    return np.ascontiguousarray(ranks.T)


def _sign_matrix(x: np.ndarray) -> np.ndarray:
    return np.sign(x[:, None] - x[None, :]).astype(np.float32)


class Resampler:
    """One set of bootstrap resamples over n items, shared by every pair of columns correlated on
    those items, with the per-column work (ranks, tie counts) done once per column."""

    def __init__(self, n: int, n_boot: int = N_BOOT, seed: int = 0, *, counts: np.ndarray | None = None, groups=None):
        if groups is not None:  # a cluster bootstrap, with its leave-one-group-out jackknife
            counts = cluster_counts(groups, n_boot, seed)
        self.counts = resample_counts(n, n_boot, seed) if counts is None else np.asarray(counts, float)
        self.groups = None if groups is None else pd.factorize(pd.Series(groups).astype(str))[0]
        self._w32 = self.counts.astype(np.float32)  # counts and sign sums stay exact (< 2**24)
        self._cache: dict = {}

    def jackknife(self) -> Resampler | None:
        """The leave-one-out resamples of the same n items (None above `JACKKNIFE_MAX_N`)."""
        n = self.counts.shape[1]
        if n > JACKKNIFE_MAX_N:
            return None
        if "jackknife" not in self._cache:
            drop = np.eye(n) if self.groups is None else np.eye(self.groups.max() + 1)[:, self.groups]
            self._cache["jackknife"] = Resampler(n, counts=1.0 - drop)
        return self._cache["jackknife"]

    def _cached(self, kind, x, make):
        key = (kind, x.tobytes())
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    def _ranks(self, x):
        """Per resample, √w · (rank − weighted mean) scaled to unit norm: then a Spearman ρ of two
        columns is one row-wise dot product."""

        def make():
            r = _weighted_ranks(x, self.counts)
            w = self.counts
            total = w.sum(1, keepdims=True)
            r -= (w * r).sum(1, keepdims=True) / total
            z = np.sqrt(w) * r
            with np.errstate(invalid="ignore", divide="ignore"):
                return z / np.linalg.norm(z, axis=1, keepdims=True)

        return self._cached("rank", x, make)

    def _untied(self, x):
        """Per resample, w^T |sign(x_i - x_j)| w: twice the pairs not tied in x."""
        return self._cached(
            "untied", x, lambda: ((self._w32 @ np.abs(_sign_matrix(x))) * self._w32).sum(1, dtype=np.float64)
        )

    def statistic(self, method: str, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """The correlation `method` of x and y on every resample (B values)."""
        x, y = np.asarray(x, float), np.asarray(y, float)
        w = self.counts
        if method == "pearson":
            return _weighted_pearson(x, y, w)
        if method == "spearman":
            return np.einsum("bn,bn->b", self._ranks(x), self._ranks(y))  # NaN rows: a constant resample
        if method == "kendall":
            # tau-b of a resample: copies of one item tie with each other and count nowhere.
            s = _sign_matrix(x) * _sign_matrix(y)
            num = ((self._w32 @ s) * self._w32).sum(1, dtype=np.float64)
            tx, ty = self._untied(x), self._untied(y)
            with np.errstate(invalid="ignore", divide="ignore"):
                return np.where((tx > 0) & (ty > 0), num / np.sqrt(tx * ty), np.nan)
        raise ValueError(f"unknown correlation method {method!r}")


def bootstrap_statistic(method: str, x: np.ndarray, y: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """The correlation `method` of x and y on every resample in `counts` (see `resample_counts`)."""
    return Resampler(counts.shape[1], counts=counts).statistic(method, x, y)


def percentile_ci(values: np.ndarray, confidence: float = CONFIDENCE) -> tuple[float, float]:
    values = values[np.isfinite(values)]
    if len(values) < 10:
        return (math.nan, math.nan)
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(values, [alpha, 1 - alpha])
    return float(lo), float(hi)


def bca_ci(
    boots: np.ndarray, estimate: float, jackknife: np.ndarray | None, confidence: float = CONFIDENCE
) -> tuple[float, float]:
    """The BCa interval (Efron 1987) as scipy.stats.bootstrap computes it — bias correction from the
    share of resamples below the estimate, acceleration from the jackknife — for resamples drawn
    elsewhere (see the module docstring). Without a jackknife (very large n) the acceleration is 0;
    where the bias correction is undefined (every resample on one side) the percentile interval."""
    b = boots[np.isfinite(boots)]
    if len(b) < 10 or not math.isfinite(estimate):
        return (math.nan, math.nan)
    share = float(((b < estimate).sum() + (b <= estimate).sum()) / (2 * len(b)))  # scipy's mid-rank share
    if not 0 < share < 1:
        return percentile_ci(boots, confidence)
    z0 = stats.norm.ppf(share)
    a = 0.0
    if jackknife is not None:
        j = jackknife[np.isfinite(jackknife)]
        d = j.mean() - j
        den = 6 * float((d**2).sum()) ** 1.5
        a = float((d**3).sum()) / den if den > 0 else 0.0
    z = stats.norm.ppf([(1 - confidence) / 2, (1 + confidence) / 2])
    levels = stats.norm.cdf(z0 + (z0 + z) / (1 - a * (z0 + z)))
    if not np.all(np.isfinite(levels)):
        return percentile_ci(boots, confidence)
    lo, hi = np.percentile(b, 100 * levels)
    return float(lo), float(hi)


def _scipy_corr(method: str, x, y):
    fn = {"pearson": stats.pearsonr, "spearman": stats.spearmanr, "kendall": stats.kendalltau}[method]
    res = fn(x, y)
    return float(res.statistic), float(res.pvalue)


PERMUTATION_N = 30  # below this many pairs a Spearman p comes from permutations, not the t approximation
N_PERMUTATIONS = 9999


def spearman_permutation_p(x, y, n_perm: int = N_PERMUTATIONS, seed: int = 0) -> float:
    """Two-sided permutation p of Spearman's ρ = 0, (1 + #{|ρ*| ≥ |ρ|})/(n_perm + 1), on mid-ranks:
    exact in distribution under exchangeability, ties included, where scipy's t approximation runs
    liberal with few models and many ties (7% at 10 models with tied, saturated clean accuracies,
    benchmarks/sim_adversarial.py). Hand-written and vectorised: all permutations are one matrix
    product; scipy's `permutation_test` loops in Python per call."""
    rx, ry = stats.rankdata(x), stats.rankdata(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    scale = math.sqrt(float((rx**2).sum() * (ry**2).sum()))
    if scale == 0:
        return math.nan
    rng = np.random.default_rng(seed)
    perms = rng.permuted(np.tile(ry, (n_perm, 1)), axis=1)
    null = perms @ rx / scale
    rho = float(rx @ ry) / scale
    return float((1 + (np.abs(null) >= abs(rho) - 1e-12).sum()) / (n_perm + 1))


def correlate(
    x, y, *, methods=METHODS, n_boot: int = N_BOOT, seed: int = 0, resampler: Resampler | None = None
) -> list[dict]:
    """Each method's coefficient, two-sided p-value, n and bootstrap 95% CI for paired x, y (NaN
    pairs dropped). Constant or too-short inputs give NaN numbers with the n; above
    `KENDALL_BOOT_MAX_N` pairs Kendall's τ has no interval (its bootstrap is quadratic). Pass a `resampler`
    (built for the same n items) to share resamples and per-column work across many pairs."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    n = len(x)
    usable = n >= MIN_N and np.ptp(x) > 0 and np.ptp(y) > 0
    if usable and (resampler is None or resampler.counts.shape[1] != n):
        resampler = Resampler(n, n_boot, seed)
    rows = []
    for method in methods:
        row = {"method": method, "n": n, "coef": math.nan, "p_value": math.nan, "ci_low": math.nan, "ci_high": math.nan}
        if usable:
            row["coef"], row["p_value"] = _scipy_corr(method, x, y)
            if method == "kendall" and n > KENDALL_BOOT_MAX_N:  # its bootstrap is O(B·n²): see analysis.kendall
                row["ci_low"], row["ci_high"] = kendall_ci(x, y, row["coef"])
                rows.append(row)
                continue
            jack = resampler.jackknife()
            row["ci_low"], row["ci_high"] = bca_ci(
                resampler.statistic(method, x, y),
                row["coef"],
                jack.statistic(method, x, y) if jack is not None else None,
            )
        rows.append(row)
    return rows


def _residuals(v: np.ndarray, z: np.ndarray) -> np.ndarray:
    design = np.column_stack([np.ones_like(z), z])
    coef, *_ = np.linalg.lstsq(design, v, rcond=None)
    return v - design @ coef


def _partial_from_pairwise(rxy, rxz, ryz):
    with np.errstate(invalid="ignore", divide="ignore"):
        return (rxy - rxz * ryz) / np.sqrt((1 - rxz**2) * (1 - ryz**2))


def partial_correlation(x, y, z, *, method: str = "pearson", n_boot: int = N_BOOT, seed: int = 0) -> dict:
    """Correlation of x and y with z held fixed: the correlation of the residuals of x ~ z and
    y ~ z (linear; `spearman` does this on ranks). p-value from a t test with n − 3 degrees of
    freedom; BCa bootstrap 95% CI over items (each resample via the first-order partial-correlation
    formula, which equals the residual correlation)."""
    x, y, z = (np.asarray(v, float) for v in (x, y, z))
    keep = np.isfinite(x) & np.isfinite(y) & np.isfinite(z)
    x, y, z = x[keep], y[keep], z[keep]
    n = len(x)
    out = {"method": method, "n": n, "coef": math.nan, "p_value": math.nan, "ci_low": math.nan, "ci_high": math.nan}
    if method not in ("pearson", "spearman"):
        raise ValueError(f"unknown partial correlation method {method!r}")
    if n < MIN_N + 1 or min(np.ptp(x), np.ptp(y), np.ptp(z)) == 0:
        return out
    xs, ys, zs = (stats.rankdata(v) for v in (x, y, z)) if method == "spearman" else (x, y, z)
    rx, ry = _residuals(xs, zs), _residuals(ys, zs)
    if np.ptp(rx) < 1e-12 or np.ptp(ry) < 1e-12:
        return out
    r = float(np.corrcoef(rx, ry)[0, 1])
    df = n - 3
    t = r * math.sqrt(df / max(1e-300, 1 - r * r))
    counts = resample_counts(n, n_boot, seed)
    if method == "spearman":
        xs, ys, zs = (_weighted_ranks(v, counts) for v in (x, y, z))
    boots = _partial_from_pairwise(
        _weighted_pearson(xs, ys, counts), _weighted_pearson(xs, zs, counts), _weighted_pearson(ys, zs, counts)
    )
    n_jack = n if n <= JACKKNIFE_MAX_N else 0
    jack = 1.0 - np.eye(n_jack)
    if method == "spearman" and n_jack:
        xj, yj, zj = (_weighted_ranks(v, jack) for v in (x, y, z))
    else:
        xj, yj, zj = x, y, z
    jacks = (
        _partial_from_pairwise(
            _weighted_pearson(xj, yj, jack), _weighted_pearson(xj, zj, jack), _weighted_pearson(yj, zj, jack)
        )
        if n_jack
        else None
    )
    lo, hi = bca_ci(boots, r, jacks)
    out.update(coef=r, p_value=float(2 * stats.t.sf(abs(t), df)), ci_low=lo, ci_high=hi)
    return out


def _usable_predictors(X: np.ndarray, names: list[str]) -> tuple[list[int], list[str]]:
    """Indices of the predictors to keep, and why each other one was dropped: constant columns (no
    information beside the intercept), then any column that adds no rank to the ones kept before it
    (an exact linear combination: its coefficient would not be identifiable)."""
    keep, dropped = [], []
    base = np.ones((len(X), 1))
    for i, name in enumerate(names):
        col = X[:, i]
        if np.ptp(col) == 0:
            dropped.append(f"{name} (constant)")
            continue
        cand = np.column_stack([base, X[:, keep], col])
        scale = np.abs(cand).max(0)
        if np.linalg.matrix_rank(cand / np.where(scale > 0, scale, 1)) < cand.shape[1]:
            dropped.append(f"{name} (collinear with {' + '.join(['intercept', *(names[j] for j in keep)])})")
            continue
        keep.append(i)
    return keep, dropped


def vif(X: np.ndarray) -> np.ndarray:
    """Variance inflation factor of each column of X (no intercept column; statsmodels'
    `variance_inflation_factor` on X with an intercept): 1 / (1 − R²) of the column regressed on the
    others. Above ~10 its coefficient is unstable."""
    from statsmodels.stats.outliers_influence import variance_inflation_factor

    design = np.column_stack([np.ones(len(X)), X])
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.array([variance_inflation_factor(design, j + 1) for j in range(X.shape[1])], float)


def ols(
    table: pd.DataFrame, target: str, predictors: list[str], confidence: float = CONFIDENCE
) -> tuple[pd.DataFrame, dict]:
    """Ordinary least squares `target ~ 1 + predictors` on the complete rows of `table` (statsmodels
    OLS) with heteroskedasticity-robust HC3 standard errors: the target (an accuracy in [0, 1]) has
    no equal variance across models.

    Constant predictors and predictors collinear with earlier ones are dropped first (the fit's
    `dropped` says which and why; `predictors` lists those used). Returns the coefficient table
    (term, coef, std_err, t, p_value, ci_low, ci_high with t-based intervals, vif) and the fit (n,
    r2, adj_r2, residual std, cov_type). Too few rows → empty table, NaN fit.
    """
    import statsmodels.api as sm

    sub = table[[target, *predictors]].apply(pd.to_numeric, errors="coerce").dropna()
    keep, dropped = _usable_predictors(sub[predictors].to_numpy(float), predictors)
    used = [predictors[i] for i in keep]
    n, k = len(sub), len(used) + 1
    fit = {
        "n": n,
        "r2": math.nan,
        "adj_r2": math.nan,
        "resid_std": math.nan,
        "target": target,
        "predictors": " + ".join(used),
        "dropped": "; ".join(dropped),
        "cov_type": "HC3",
    }
    cols = ["term", "coef", "std_err", "t", "p_value", "ci_low", "ci_high", "vif"]
    if n <= k + 1:
        return pd.DataFrame(columns=cols), fit
    X = np.column_stack([np.ones(n), sub[used].to_numpy(float)])
    y = sub[target].to_numpy(float)
    res = sm.OLS(y, X).fit(cov_type="HC3", use_t=True)
    ci = np.asarray(res.conf_int(alpha=1 - confidence))
    ss_tot = float(((y - y.mean()) ** 2).sum())
    fit.update(
        r2=float(res.rsquared) if ss_tot > 0 else math.nan,
        adj_r2=float(res.rsquared_adj) if ss_tot > 0 else math.nan,
        resid_std=math.sqrt(float(res.scale)),
    )
    rows = pd.DataFrame(
        {
            "term": ["intercept", *used],
            "coef": res.params,
            "std_err": res.bse,
            "t": res.tvalues,
            "p_value": res.pvalues,
            "ci_low": ci[:, 0],
            "ci_high": ci[:, 1],
            "vif": [math.nan, *vif(X[:, 1:])],
        }
    )
    return rows, fit
