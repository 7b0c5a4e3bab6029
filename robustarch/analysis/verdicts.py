"""Decision rules that turn a claim's statistic into one of three verdicts — supported, contradicted,
inconclusive — with the error rates `benchmarks/calibration.py` measures, and the tests they use.

Every p that can produce a verdict ("supported" and "contradicted" paths alike, `P_KEYS`) is in one
Holm family (`holm_family`); each rule below reads Holm-adjusted p-values.

- relation (a claimed sign): supported when the two-sided p ≤ α with the claimed sign,
  contradicted when it is significant with the other sign, else inconclusive.
- equivalence (a negligible effect, a match): TOST / interval inclusion (`tost`, with t degrees of
  freedom where the estimate has them). Supported when the TOST p ≤ α (the 90% interval inside the
  margin), contradicted when the one-sided p of lying beyond the margin ≤ α, else inconclusive.
- form (a functional form): contradicted when its calibrated goodness-of-fit p ≤ α; supported
  only when it is not rejected and its departure (the curvature) is shown small (`p_flat` ≤ α).
- heterogeneity (one value for all models): contradicted when the homogeneity test rejects;
  supported when a test shows τ below the margin (`p_below` ≤ α).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

ALPHA = 0.05  # a p ≤ α rejects (Monte Carlo p-values (1 + #)/(B + 1) reach α exactly)
VERDICTS = ("supported", "contradicted", "inconclusive")
Z90 = stats.norm.ppf(1 - ALPHA)  # the 90% CI of a TOST at α = 0.05
Z95 = stats.norm.ppf(1 - ALPHA / 2)
POWER = 0.8  # the power at which `n_to_decide` names an n
Z_POWER = stats.norm.ppf(POWER)


def holm(p_values) -> np.ndarray:
    """Holm-adjusted p-values, as statsmodels `multipletests(method="holm")` gives them (the sorted
    p times m, m − 1, …, 1, made monotone, capped at 1); NaN entries carry no test and stay NaN, so
    the family is exactly the finite p-values given. Hand-written because statsmodels' Holm branch
    calls `gc.collect()`, 0.1–0.2 s each of the dozen calls per report once a study's tables are in
    memory (tests/test_findings.py checks the two agree)."""
    p = np.asarray(p_values, float)
    out = np.full(len(p), np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    order = ok[np.argsort(p[ok])]
    out[order] = np.minimum(1.0, np.maximum.accumulate(p[order] * np.arange(len(order), 0, -1)))
    return out


# The row fields holding a p that can produce a verdict, per kind (a row may name its own in
# `p_keys`): "supported" paths and "contradicted" paths alike, so that more claims make every verdict
# harder, not only "contradicted". A relation's two directions share its two-sided p.
P_KEYS = {
    "relation": ("p_value",),
    "equivalence": ("p_value", "p_outside"),
    "form": ("p_value", "p_flat"),
    "heterogeneity": ("p_value", "p_below"),
}


def p_keys(row: dict) -> tuple[str, ...]:
    return tuple(row.get("p_keys") or P_KEYS.get(row["kind"], ("p_value",)))


def holm_family(rows: list[dict]) -> None:
    """One Holm family over the claims, holding every p that can produce a verdict, in place.

    A claim's paths (`p_keys`: "supported" and "contradicted") are exclusive decisions about one
    quantity — an interval cannot lie both inside and wholly outside a margin — so at most one of
    them can reject, and the claim takes one slot in the family (Shaffer 1986: Holm with logically
    related hypotheses). Each path's p is adjusted as Holm would adjust it in that slot, the other
    claims holding their smallest path p. `holm` maps each of a row's p fields to its adjusted
    value, `p_holm` is that of its `p_value`, `family_m` counts the claims in the family and
    `family_claims` the same (kept for the sentences)."""
    paths = []
    for i, r in enumerate(rows):
        r["holm"] = {}
        ps = {
            k: float(r[k])
            for k in p_keys(r)
            if not r.get("reason") and isinstance(r.get(k), (int, float)) and math.isfinite(r[k])
        }
        if ps:
            paths.append((i, ps))
    best = [min(ps.values()) for _, ps in paths]
    for slot, (i, ps) in enumerate(paths):
        for k, v in ps.items():
            rows[i]["holm"][k] = float(holm(best[:slot] + [v] + best[slot + 1 :])[slot])
    for r in rows:
        r["p_holm"] = r["holm"].get("p_value", math.nan)
        r["family_m"] = r["family_claims"] = len(paths)


def adjusted(row: dict, key: str) -> float:
    """The Holm-adjusted value of the row's p field `key` (a row never put in a family: its raw p,
    a family of one)."""
    if key in (row.get("holm") or {}):
        return row["holm"][key]
    if key == "p_value" and "p_holm" in row:
        return row["p_holm"]
    v = row.get(key, math.nan)
    return v if isinstance(v, (int, float)) else math.nan


def tost(estimate: float, se: float, low: float, high: float, df: float | None = None) -> dict:
    """Two one-sided tests (Schuirmann 1987) of `low < θ < high` for an estimate with standard error
    `se`, on Student's t with `df` degrees of freedom (None: normal). `p_tost` is the larger one-sided
    p, so p_tost ≤ α exactly when the (1 − 2α) interval `ci90` lies inside (low, high): interval
    inclusion, the sentence's interval and the verdict cannot disagree. `p_outside` is the one-sided p
    that θ lies beyond the margin on the estimate's side (for "contradicted"). Replaces Wellek's
    exact test for a known variance (EQNORM), which with an estimated SE can say "supported" while
    the 90% interval crosses the margin (Berger & Hsu 1996). Hand-written: statsmodels' TOST
    functions take raw samples, not an estimate with its SE and df."""
    if not (math.isfinite(estimate) and math.isfinite(se) and se > 0):
        return {"p_tost": math.nan, "ci90": (math.nan, math.nan), "p_outside": math.nan, "df": df}
    dist = stats.norm if df is None else stats.t(df)
    p_low, p_high = dist.sf((estimate - low) / se), dist.cdf((estimate - high) / se)
    q = dist.ppf(1 - ALPHA)
    centre = (low + high) / 2
    p_out = dist.sf((estimate - high) / se) if estimate >= centre else dist.cdf((estimate - low) / se)
    return {
        "p_tost": float(max(p_low, p_high)),
        "ci90": (estimate - q * se, estimate + q * se),
        "p_outside": float(p_out),
        "df": df,
    }


def min_n_for_equivalence(margin: float, n_params: int = 3) -> int:
    """The fewest models at which a Fisher-z TOST (t with n − `n_params` df, SE 1/√(n − n_params − 1))
    can show |r| < `margin` at all, i.e. with r = 0: below it even a zero estimate has a 90% interval
    wider than the margin, so the claim could never be supported."""
    n = n_params + 3
    while stats.t.ppf(1 - ALPHA, n - n_params) / math.sqrt(n - n_params - 1) >= math.atanh(margin):
        n += 1
    return n


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
    """The n at which this claim's test would have 80% power were the estimate the truth and the
    spread per model what it is now (SE ∝ 1/√n, from the test's own interval): the usual
    normal-approximation sample size, n·(SE·(z_crit + z_0.8)/gap)², where gap is the estimate's
    distance to zero (relation) or to the margin (equivalence). Not the n at which the interval would
    just touch the bound (that is a coin flip). NaN when no n would decide (an equivalence estimate
    exactly on its margin, a zero effect)."""
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
        need = abs(row["margin"] - abs(d)) / (Z90 + Z_POWER)
        c90 = row.get("ci90")
        if c90 is not None and all(math.isfinite(v) for v in c90):
            # the test's own 90% interval, on the half facing the margin (a correlation's is skewed):
            # the bootstrap 95% CI is on another scale and can name an n below the one at hand
            inside = abs(d) < row["margin"]
            half = (c90[1] - est) if (d >= 0) == inside else (est - c90[0])
            se = half / Z90
    else:
        need = abs(est - row.get("center", 0.0)) / (Z95 + Z_POWER)
    if need <= 0 or se <= 0:
        return math.nan
    return float(max(n + 1, math.ceil(n * (se / need) ** 2)))  # undecided at n: 80% power takes more


# the second path of each kind and the name a reader knows it by (the first is always `p_value`)
PATH_NAMES = {
    "p_outside": "test of lying beyond the margin",
    "p_flat": "TOST on the bend",
    "p_below": "test of τ at or above the margin",
}
# per two-path kind: (the verdict its `p_value` gives, the verdict its second path gives); `verdict`
# and `deciding_path` both read it
TWO_PATHS = {
    "equivalence": ("supported", "contradicted"),
    "form": ("contradicted", "supported"),
    "heterogeneity": ("contradicted", "supported"),
}


def deciding_path(row: dict) -> str:
    """The p field whose test gave the row's verdict: the second path (`P_KEYS`) where the verdict is
    the one only it can give, else `p_value` (an inconclusive row: its main test)."""
    kind = row.get("kind")
    if kind in TWO_PATHS and row.get("verdict") == TWO_PATHS[kind][1]:
        return P_KEYS[kind][1]
    return "p_value"


def verdict(row: dict) -> str:
    """The verdict of one finding row (see the module docstring), on Holm-adjusted p-values (every
    path's, `holm_family`); `reason` set → inconclusive."""
    if row.get("reason"):
        return "inconclusive"
    p = adjusted(row, "p_value")
    kind = row["kind"]
    if kind == "relation":
        if not p <= ALPHA:
            return "inconclusive"
        return "supported" if np.sign(row["value"] - row.get("center", 0.0)) == row["direction"] else "contradicted"
    if kind in TWO_PATHS:  # the main test first, then the second path (P_KEYS)
        first, second = TWO_PATHS[kind]
        if p <= ALPHA:
            return first
        return second if adjusted(row, P_KEYS[kind][1]) <= ALPHA else "inconclusive"
    raise ValueError(f"unknown claim kind {kind!r}")
