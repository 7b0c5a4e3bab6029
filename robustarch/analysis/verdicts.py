"""Decision rules that turn a claim's statistic into one of three verdicts — supported, contradicted,
inconclusive — with the error rates `benchmarks/calibration.py` measures, and the tests they use.

- relation (a claimed sign): supported when the Holm-adjusted two-sided p < α with the claimed sign,
  contradicted when it is significant with the other sign, else inconclusive.
- equivalence (a negligible effect, a match): the exact equivalence test for a normal estimate
  (`tost_normal`; TOST where the margin is wide). Supported when its Holm-adjusted p ≤ α,
  contradicted when the 90% CI lies wholly outside ±margin, else inconclusive.
- form (a functional form): contradicted when its calibrated goodness-of-fit p (Holm-adjusted) < α;
  supported only when it is not rejected and its departure (the curvature) is shown small by TOST.
- heterogeneity (one value for all models): contradicted when the homogeneity test (Holm-adjusted)
  rejects; supported when a calibrated test shows τ below the margin (`p_below` ≤ α).
"""
from __future__ import annotations

import math

import numpy as np
from scipy import stats
from statsmodels.stats.multitest import multipletests

ALPHA = 0.05  # a p ≤ α rejects (Monte Carlo p-values (1 + #)/(B + 1) reach α exactly)
VERDICTS = ("supported", "contradicted", "inconclusive")
Z90 = stats.norm.ppf(1 - ALPHA)  # the 90% CI of a TOST at α = 0.05
Z95 = stats.norm.ppf(1 - ALPHA / 2)


def holm(p_values) -> np.ndarray:
    """Holm-adjusted p-values (statsmodels `multipletests`); NaN entries carry no test and stay NaN,
    so the family is exactly the claims that carry a p."""
    p = np.asarray(p_values, float)
    out = np.full(len(p), np.nan)
    ok = np.isfinite(p)
    if ok.sum() == 1:  # a family of one: Holm is the identity
        out[ok] = p[ok]
    elif ok.any():
        out[ok] = multipletests(p[ok], alpha=ALPHA, method="holm")[1]
    return out


def tost_normal(estimate: float, se: float, low: float, high: float) -> dict:
    """Equivalence test of `low < θ < high` for an asymptotically normal estimate with standard error
    `se`. `p_tost` is the p-value of the exact (uniformly most powerful invariant) test for a normal
    mean (Wellek 2010, §4.4; "EQNORM"): the chance, were θ on the nearer margin, of an estimate at
    most this far from the centre, P(|Z| ≤ |d|) with Z ~ N(half-width, se). Where the margin is
    wide against the SE it equals TOST's larger one-sided p; where it is narrow (a few dozen models)
    TOST is conservative — its simulated size was 3.3% at 40 models for the size claim — and this
    test keeps 5%. Also the 90% CI (TOST's interval, for display) and the one-sided p that θ lies
    beyond the margin on the estimate's side (for "contradicted"). Hand-written: statsmodels'
    equivalence tests take raw samples and are TOST only."""
    if not (math.isfinite(estimate) and math.isfinite(se) and se > 0):
        return {"p_tost": math.nan, "ci90": (math.nan, math.nan), "p_outside": math.nan}
    centre, half = (low + high) / 2, (high - low) / 2
    d = abs(estimate - centre)
    p_equiv = stats.norm.cdf((d - half) / se) - stats.norm.cdf((-d - half) / se)
    beyond = high if estimate >= centre else low
    p_out = stats.norm.sf((estimate - beyond) / se) if beyond == high else stats.norm.cdf((estimate - beyond) / se)
    return {"p_tost": float(p_equiv), "ci90": (estimate - Z90 * se, estimate + Z90 * se),
            "p_outside": float(p_out)}


def fisher_se(n: int, r: float = 0.0, n_controls: int = 0, spearman: bool = False) -> float:
    """Standard error of atanh(r): 1/√(n − 3 − controls), times √(1 + r²/2) for Spearman's ρ
    (Bonett & Wright 2000)."""
    df = n - 3 - n_controls
    if df <= 0:
        return math.nan
    return math.sqrt((1 + r * r / 2 if spearman else 1.0) / df)


def hodges_lehmann(d) -> tuple[float, tuple[float, float]]:
    """The Hodges–Lehmann pseudo-median of paired differences — the quantity the Wilcoxon signed-rank
    test is about — with its distribution-free 95% CI from the Walsh averages (normal approximation
    to the signed-rank critical value). Hand-written: scipy has the test but not this interval."""
    d = np.asarray(d, float)
    n = len(d)
    # The n(n + 1)/2 Walsh averages, built row by row (no index arrays: 3× the memory at thousands of
    # pairs), and only the order statistics used are placed (a partition, not a full sort).
    walsh = np.concatenate([(d[k] + d[k:]) / 2 for k in range(n)]) if n else np.array([])
    m = len(walsh)
    c = int(math.floor(n * (n + 1) / 4 - Z95 * math.sqrt(n * (n + 1) * (2 * n + 1) / 24)))
    mid = sorted({(m - 1) // 2, m // 2} | ({c - 1, m - c} if c >= 1 else set())) if m else []
    if mid:
        walsh.partition(mid)
    median = float((walsh[(m - 1) // 2] + walsh[m // 2]) / 2) if m else math.nan
    if c < 1:
        return median, (math.nan, math.nan)
    return median, (float(walsh[c - 1]), float(walsh[m - c]))


def n_to_decide(row: dict) -> float:
    """Roughly the n at which this claim's test would decide, were the estimate and the spread per
    model what they are now (SE ∝ 1/√n, from the 95% CI): NaN when no n would (an equivalence
    estimate exactly on its margin, a zero effect)."""
    est, (lo, hi), n = row["value"], (row["ci_low"], row["ci_high"]), row["n"]
    if row["kind"] == "form":  # what is undecided is the bend, not k
        est, (lo, hi) = row["curvature"], row["curvature_ci"]
        if math.isfinite(est) and abs(est) >= row["margin"]:
            return math.nan  # no n shows this bend small; only the goodness of fit can decide (wording says so)
    if row["kind"] == "heterogeneity" or not all(math.isfinite(v) for v in (est, lo, hi)) or hi <= lo or not n:
        return math.nan
    se = (hi - lo) / (2 * Z95)
    if row["kind"] in ("equivalence", "form"):
        # Inside the margin, a narrower CI would show equivalence; outside it, a narrower CI would
        # lie wholly outside (contradicted). Only an estimate on the margin itself stays undecided.
        d = est - row.get("center", 0.0)
        need = abs(row["margin"] - abs(d)) / Z90
        c90 = row.get("ci90")
        if c90 is not None and all(math.isfinite(v) for v in c90):
            # the test's own 90% interval, on the half facing the margin (a correlation's is skewed):
            # the bootstrap 95% CI is on another scale and can name an n below the one at hand
            inside = abs(d) < row["margin"]
            half = (c90[1] - est) if (d >= 0) == inside else (est - c90[0])
            se = half / Z90
    else:
        need = abs(est - row.get("center", 0.0)) / Z95
    if need <= 0 or se <= 0:
        return math.nan
    return float(max(n + 1, math.ceil(n * (se / need) ** 2)))  # undecided at n: deciding takes more


def verdict(row: dict) -> str:
    """The verdict of one finding row (see the module docstring); `reason` set → inconclusive."""
    if row.get("reason"):
        return "inconclusive"
    p = row["p_holm"]
    kind = row["kind"]
    if kind == "relation":
        if not p <= ALPHA:
            return "inconclusive"
        return "supported" if np.sign(row["value"] - row.get("center", 0.0)) == row["direction"] else "contradicted"
    if kind == "equivalence":
        if p <= ALPHA:
            return "supported"
        return "contradicted" if row["p_outside"] <= ALPHA else "inconclusive"
    if kind == "form":
        if p <= ALPHA:
            return "contradicted"
        return "supported" if row["p_flat"] <= ALPHA else "inconclusive"
    if kind == "heterogeneity":
        if p <= ALPHA:
            return "contradicted"
        return "supported" if row["p_below"] <= ALPHA else "inconclusive"
    raise ValueError(f"unknown claim kind {kind!r}")
