"""How much of a model number is architecture, training seed and finite test sample: a one-way
random-effects decomposition over architectures (replicate seeds within each), with the evaluation
variance of each number (its binomial SE) taken out of the within-architecture spread.

    c = variance_components(values, groups, eval_se=se)     # point estimates and bootstrap CIs
    c.table()                                                # one row per quantity, 95% CI
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from .jointnoise import CLEAN, EVAL_COV, ROBUST, WITHIN_EVAL_COV, WITHIN_SP, eval_covariance
from .noise import SEED_SUFFIX, WITHIN_EVAL_SUFFIX, WITHIN_SS_SUFFIX, binomial_se

N_BOOT_COMPONENTS = 1000
QUANTITIES = (
    "sigma2_arch",
    "sigma2_seed",
    "sigma2_eval",
    "share_arch",
    "share_seed",
    "share_eval",
    "icc",
    "reliability_1",
    "reliability_k",
)


def spearman_brown(icc: float | np.ndarray, k: float) -> float | np.ndarray:
    """Reliability of a mean over k seeds from the single-seed ICC (Spearman–Brown)."""
    icc = np.asarray(icc, float)
    return k * icc / (1 + (k - 1) * icc)


def _group_stats(values: np.ndarray, groups: np.ndarray, eval_var: np.ndarray):
    """Per architecture: count, sum, sum of squares, and the sum of its numbers' evaluation variances."""
    codes, index = np.unique(groups, return_inverse=True)
    a = len(codes)
    n = np.bincount(index, minlength=a).astype(float)
    s = np.bincount(index, values, minlength=a)
    ss = np.bincount(index, values * values, minlength=a)
    ev = np.bincount(index, eval_var, minlength=a)
    return codes, n, s, ss, ev


def _estimate(w: np.ndarray, n, s, ss, ev, k: float) -> dict[str, np.ndarray]:
    """The ANOVA (method-of-moments) components for each row of group weights `w` (B × a; a weight
    of 2 is a group drawn twice). Unbalanced one-way random effects (Searle, Casella & McCulloch 1992,
    §3.6): E[MSW] = σ²_w, E[MSB] = σ²_w + n0 σ²_a, n0 = (N − Σn²/N)/(a − 1). Hand-written and
    vectorised over resamples: MixedLM (REML, identical when the design is balanced and the estimate
    positive) takes ~50 ms a fit, too slow for 1000 resamples in each of 1000 simulated studies."""
    N = w @ n
    groups = w.sum(1)
    ssw = w @ (ss - s * s / n)
    ssb = w @ (s * s / n) - (w @ s) ** 2 / N
    df_w, df_b = N - groups, groups - 1
    with np.errstate(invalid="ignore", divide="ignore"):
        msw = np.where(df_w > 0, ssw / df_w, np.nan)
        msb = ssb / df_b
        n0 = (N - (w @ (n * n)) / N) / df_b
        sa = np.maximum((msb - msw) / n0, 0.0)
        # the evaluation variance inside the within-architecture mean square: each group's mean
        # variance weighted by its n − 1 degrees of freedom, as the mean square weights its residuals
        se2 = np.where(df_w > 0, (w @ ((n - 1) * ev / n)) / df_w, np.nan)
        ss_seed = np.maximum(msw - se2, 0.0)
        total = sa + ss_seed + se2
        icc = sa / (sa + msw)
    return {
        "sigma2_arch": sa,
        "sigma2_seed": ss_seed,
        "sigma2_eval": se2,
        "share_arch": sa / total,
        "share_seed": ss_seed / total,
        "share_eval": se2 / total,
        "icc": icc,
        "reliability_1": icc,
        "reliability_k": spearman_brown(icc, k),
        "msb": msb,
        "msw": msw,
        "n0": n0,
    }


@dataclass
class Components:
    """Point estimates (`estimate`) and bootstrap percentile CIs (`ci95`, `ci90`) of the variance
    components of one model number over architectures; `k` is the seeds per replicated architecture."""

    n_arch: int
    n_models: int
    n_replicated: int
    k: float
    estimate: dict[str, float]
    ci95: dict[str, tuple[float, float]] = field(default_factory=dict)
    ci90: dict[str, tuple[float, float]] = field(default_factory=dict)

    @property
    def icc(self) -> float:
        return self.estimate["icc"]

    def reliability(self, k: float = 1.0) -> float:
        """Reliability of one architecture's mean over `k` seeds (1: a single-seed number)."""
        return float(spearman_brown(self.icc, k))

    def table(self, what: str = "robust_accuracy") -> pd.DataFrame:
        rows = [
            {
                "quantity": q,
                "number": what,
                "estimate": self.estimate[q],
                "ci_low": self.ci95.get(q, (math.nan, math.nan))[0],
                "ci_high": self.ci95.get(q, (math.nan, math.nan))[1],
                "n_arch": self.n_arch,
                "n_models": self.n_models,
                "n_replicated": self.n_replicated,
                "k": self.k,
            }
            for q in QUANTITIES
        ]
        return pd.DataFrame(rows)


def variance_components(
    values, groups, eval_se=None, *, n_boot: int = N_BOOT_COMPONENTS, seed: int = 0
) -> Components | None:
    """Architecture, seed and evaluation variance of `values` (one per trained model; `groups` names
    each one's architecture; `eval_se` its evaluation SE, e.g. `binomial_se`), with percentile CIs
    from a bootstrap over architectures (a resampled architecture keeps all its seeds). None when no
    architecture has two seeds (the within-architecture spread is then unknown) or there are fewer
    than three architectures."""
    values = np.asarray(values, float)
    groups = np.asarray(groups)
    eval_var = np.zeros(len(values)) if eval_se is None else np.nan_to_num(np.asarray(eval_se, float) ** 2)
    ok = np.isfinite(values)
    codes, n, s, ss, ev = _group_stats(values[ok], groups[ok], eval_var[ok])
    replicated = int((n >= 2).sum())
    if replicated == 0 or len(codes) < 3:
        return None
    k = float(np.median(n[n >= 2]))
    point = _estimate(np.ones((1, len(codes))), n, s, ss, ev, k)
    c = Components(len(codes), int(n.sum()), replicated, k, {q: float(v[0]) for q, v in point.items()})
    if n_boot:
        w = np.random.default_rng(seed).multinomial(len(codes), np.full(len(codes), 1 / len(codes)), size=n_boot)
        boot = _estimate(w.astype(float), n, s, ss, ev, k)
        jack = _estimate(1.0 - np.eye(len(codes)), n, s, ss, ev, k)
        for q in QUANTITIES:
            c.ci95[q] = bca(c.estimate[q], boot[q], jack[q], 95)
            c.ci90[q] = bca(c.estimate[q], boot[q], jack[q], 90)
    # The ICC (and the reliabilities, monotone in it) take the F interval: with few replicated
    # architectures the bootstrap's within-architecture spread rests on a handful of groups, and its
    # interval covered the true ICC in 91.8% of 400 simulated 40-architecture studies (25% x 3
    # seeds) against 93.6% for the F interval (benchmarks/sim_noise.py).
    for level, ci in ((95, c.ci95), (90, c.ci90)):
        lo, hi = icc_f_interval(c, level)
        ci["icc"] = ci["reliability_1"] = (lo, hi)
        ci["reliability_k"] = tuple(float(spearman_brown(v, k)) for v in (lo, hi))
    return c


def _f_parts(c: Components) -> tuple[float, int, int, float]:
    e = c.estimate
    F = e["msb"] / e["msw"] if e["msw"] > 0 else math.nan
    return F, c.n_arch - 1, c.n_models - c.n_arch, e["n0"]


def icc_f_interval(c: Components, level: float = 95) -> tuple[float, float]:
    """The ICC(1)'s interval from F = MSB/MSW ~ (1 + n0 θ) F(a − 1, N − a), θ = σ²_a/σ²_w: exact for a
    balanced normal design (Searle 1971), with n0 for an unbalanced one (Donner 1979)."""
    F, df_b, df_w, n0 = _f_parts(c)
    if not (math.isfinite(F) and df_w > 0):  # no spread within architectures: the F pivot is undefined
        return (math.nan, math.nan)
    tail = (1 - level / 100) / 2
    hi_q, lo_q = stats.f.ppf([1 - tail, tail], df_b, df_w)
    theta = [(F / q - 1) / n0 for q in (hi_q, lo_q)]
    return tuple(float(max(t, 0.0) / (1 + max(t, 0.0))) for t in theta)


def icc_f_p(c: Components, center: float) -> float:
    """Two-sided p of H0 ICC = `center` from the same F pivot (the interval's inversion)."""
    F, df_b, df_w, n0 = _f_parts(c)
    if not (math.isfinite(F) and df_w > 0 and 0 <= center < 1):
        return math.nan
    f0 = F / (1 + n0 * center / (1 - center))
    return float(min(1.0, 2 * min(stats.f.cdf(f0, df_b, df_w), stats.f.sf(f0, df_b, df_w))))


def bca(estimate: float, boot: np.ndarray, jack: np.ndarray, level: float) -> tuple[float, float]:
    """Efron's bias-corrected and accelerated interval from resamples over architectures and the
    leave-one-architecture-out jackknife. Hand-written: scipy.stats.bootstrap resamples rows, not
    groups of rows, and is not vectorised over our sufficient statistics."""
    b, j = boot[np.isfinite(boot)], jack[np.isfinite(jack)]
    if len(b) == 0 or not math.isfinite(estimate):
        return (math.nan, math.nan)
    share = (np.sum(b < estimate) + 0.5 * np.sum(b == estimate)) / len(b)
    z0 = stats.norm.ppf(min(max(share, 1 / (2 * len(b))), 1 - 1 / (2 * len(b))))
    d = j.mean() - j if len(j) > 2 else np.zeros(1)
    denom = 6 * np.sum(d * d) ** 1.5
    acc = float(np.sum(d**3) / denom) if denom > 0 else 0.0
    z = stats.norm.ppf([(1 - level / 100) / 2, 1 - (1 - level / 100) / 2])
    q = stats.norm.cdf(z0 + (z0 + z) / (1 - acc * (z0 + z)))
    lo, hi = np.quantile(b, np.clip(q, 0, 1))
    return float(lo), float(hi)


def group_keys(trials: pd.DataFrame) -> pd.Series:
    """Each model's architecture: `arch_key` where stored (replicates and duplicate proposals share
    it), else the model itself (a study stored before replicates existed: one seed each)."""
    own = "model:" + trials["trial"].astype(str)
    if "arch_key" not in trials:
        return own
    return (
        trials["arch_key"].where(trials["arch_key"].notna() & (trials["arch_key"].astype(str) != ""), own).astype(str)
    )


def model_se(trials: pd.DataFrame, number: str) -> pd.Series:
    """`<number>_se` where given (a table's own column, or analysis.noise's), else the binomial SE
    from the attacked sample count (`n_attacked`), else NaN."""
    col = f"{number}_se"
    if col in trials and pd.to_numeric(trials[col], errors="coerce").notna().any():
        return pd.to_numeric(trials[col], errors="coerce")
    if "n_attacked" in trials:
        return pd.Series(
            binomial_se(
                pd.to_numeric(trials[number], errors="coerce"), pd.to_numeric(trials["n_attacked"], errors="coerce")
            ),
            index=trials.index,
        )
    return pd.Series(np.nan, index=trials.index)


def per_architecture(u: pd.DataFrame) -> pd.DataFrame:
    """One row per architecture when some have several seeds: numeric columns averaged over its
    seeds (an `*_se` column becomes the SE of that mean, √(mean SE²/k)), the rest from its first trial. A claim about architectures then counts architectures, not
    seeds (replicate seeds counted as models would overstate n). Unchanged without replicates."""
    keys = group_keys(u) if "trial" in u else None
    if keys is None or keys.nunique() == len(u):
        return u
    numeric = [
        c
        for c in u.columns
        if pd.api.types.is_numeric_dtype(u[c]) and not pd.api.types.is_bool_dtype(u[c]) and c != "trial"
    ]
    grouped = u.assign(_arch=keys.to_numpy()).groupby("_arch", sort=False)
    out = grouped.first()
    out[numeric] = grouped[numeric].mean()
    out["seeds"] = grouped.size()
    for col in [c for c in numeric if c.endswith("_se")]:  # the evaluation SE of a mean over k seeds
        out[col] = np.sqrt(grouped[col].apply(lambda v: np.mean(np.square(v))) / out["seeds"])
    # The training-seed noise left in each architecture's mean (σ²_seed / k, k = its seeds; a
    # single-seed architecture carries all of it): analysis.noise adds it to the evaluation variance,
    # so the correlation and equivalence claims' reliabilities count both noise sources.
    for number in ("robust_accuracy", "clean_accuracy"):
        if number in u and number + SEED_SUFFIX not in u:
            c = variance_components(
                pd.to_numeric(u[number], errors="coerce"), keys.to_numpy(), model_se(u, number).to_numpy(), n_boot=0
            )
            if c is not None and math.isfinite(c.estimate["sigma2_seed"]):
                out[number + SEED_SUFFIX] = np.sqrt(c.estimate["sigma2_seed"] / out["seeds"].to_numpy(float))
                within = within_sums(u[number], keys.to_numpy(), model_se(u, number))
                out[number + WITHIN_SS_SUFFIX] = within["ss"].reindex(out.index).fillna(0.0)
                out[number + WITHIN_EVAL_SUFFIX] = within["eval"].reindex(out.index).fillna(0.0)
    _joint_sums(u, keys, out)
    return out.reset_index(drop=True)


def _joint_sums(u: pd.DataFrame, keys: pd.Series, out: pd.DataFrame) -> None:
    """In place on the architecture table `out`: the evaluation covariance of each architecture's mean
    robust and clean accuracy (mean of its seeds' / k, as their SEs), and the within-architecture
    cross-products of the two numbers with their evaluation part (analysis.jointnoise), from which a
    bootstrap over architectures re-estimates the seed covariance of the two."""
    cov = eval_covariance(u.assign(**{n + "_se": model_se(u, n) for n in (ROBUST, CLEAN) if n in u}))
    if cov is None:
        return
    per = pd.Series(cov, index=u.index).groupby(keys.to_numpy()).mean().reindex(out.index)
    out[EVAL_COV] = per / out["seeds"]
    if not all(c + WITHIN_SS_SUFFIX in out for c in (ROBUST, CLEAN)):
        return
    r, c = (pd.to_numeric(u[n], errors="coerce").to_numpy(float) for n in (ROBUST, CLEAN))
    ok = np.isfinite(r) & np.isfinite(c)
    g = pd.Series(keys.to_numpy()[ok])
    dr, dc = (v[ok] - pd.Series(v[ok]).groupby(g).transform("mean").to_numpy() for v in (r, c))
    sums = pd.DataFrame({"sp": dr * dc, "cov": cov[ok], "n": 1.0}).groupby(g.to_numpy()).sum()
    out[WITHIN_SP] = sums["sp"].reindex(out.index).fillna(0.0)
    out[WITHIN_EVAL_COV] = ((sums["n"] - 1) * sums["cov"] / sums["n"]).reindex(out.index).fillna(0.0)


def within_sums(values, groups, eval_se) -> pd.DataFrame:
    """Per architecture (index): the sum of squares of its seeds' numbers around their mean (`ss`)
    and their evaluation variance on the same k − 1 degrees of freedom (`eval`, (k − 1)·mean SE²);
    summed over architectures they give `variance_components`' MSW and mean SE², so a bootstrap over
    architectures re-estimates the seed variance from the sums it draws (analysis.jointnoise.JointError)."""
    values = pd.to_numeric(pd.Series(np.asarray(values, float)), errors="coerce").to_numpy(float)
    eval_var = np.nan_to_num(np.asarray(eval_se, float) ** 2)
    ok = np.isfinite(values)
    codes, n, s, ss, ev = _group_stats(values[ok], np.asarray(groups)[ok], eval_var[ok])
    return pd.DataFrame({"ss": ss - s * s / n, "eval": (n - 1) * ev / n}, index=codes)
