"""Correlation claims given twice, raw and corrected for attenuation, and how far the correction moved
each verdict.

The corrected value is Fuller's (1987) moment correction, (r − ε) / √(R_x·R_y): Spearman's (1904)
disattenuation after the share ε of the observed correlation that is the two numbers' shared error
(one test sample, one training seed; analysis.jointnoise) is taken out. Its interval is a bootstrap
over architectures in which the reliabilities, ε, and the seed variances and covariance inside them,
are re-estimated on every resample (Padilla & Veprinsky 2012), not the raw interval divided by one
fixed correction, which would leave out the uncertainty of the reliabilities. A corrected value beyond
±1 is kept and flagged: the reliabilities are then too low for the observed correlation.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from .jointnoise import JointError
from .noise import spearman_correction
from .stats import CONFIDENCE, Resampler
from .verdicts import ALPHA, fisher_se, holm, p_keys, tost, verdict
from .wording import f

OUT_OF_RANGE = "beyond ±1: the reliabilities are too low for the observed value (noise estimates and data disagree)"
UNDEFINED = "undefined: a reliability is below 0.1, and the correction would divide by almost nothing"
SAME_TEST = "both come from the raw test of no relation"
# a share of the observed ρ this large from the models' shared errors makes the raw test of ρ = 0 suspect
SHARED_ERROR = "of the raw ρ, {share} is the models' shared clean and robust error, which the raw test of no relation counts as relation"


Coefs = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def corrected_values(r: np.ndarray, x: np.ndarray, y: np.ndarray, joint: JointError, coefs: Coefs, counts) -> dict:
    """Fuller's (1987) moment-corrected correlation on every row of `counts` (B × n), carried to the
    rank scale: (ρ − ε) / √(R_x·R_y), with R = 1 − mean error variance / observed variance and
    ε = mean error covariance / √(var_x·var_y), all on the raw accuracies, where the error moments are
    known (binomial, seed). On the raw scale this is exactly (cov − cov_err) / √((var_x − err_x)
    (var_y − err_y)); applying it to Spearman's ρ, as Spearman (1904) did, assumes ranks attenuate as
    the numbers do: for normal scores ρ_s = (6/π)·asin(r/2), nearly linear (slope 0.955 at r = 0,
    1.04 at |r| = 0.8), so the ratio and the offset carry over to within a few percent of themselves
    (benchmarks/sim_noise.py measures what is left). NaN where a reliability is below 0.1."""
    s1x, s1y, s2x, s2y, sxy = (counts @ np.column_stack([x, y, x * x, y * y, x * y])).T
    total = counts.sum(1)
    e = joint.moments(*coefs, counts)
    with np.errstate(invalid="ignore", divide="ignore"):
        vx, vy = ((s2 - s1 * s1 / total) / (total - 1) for s1, s2 in ((s1x, s2x), (s1y, s2y)))
        rel_x = np.where(vx > 0, np.minimum(1.0, 1 - e[:, 0] / vx), np.nan)
        rel_y = np.where(vy > 0, np.minimum(1.0, 1 - e[:, 1] / vy), np.nan)
        share = e[:, 2] / np.sqrt(vx * vy)
    return {"value": spearman_correction(r - share, rel_x, rel_y), "rel": (rel_x, rel_y), "share": share}


def corrected_boots(x: np.ndarray, y: np.ndarray, joint: JointError, coefs: Coefs, method: str, res: Resampler):
    """The corrected correlation on every resample of `res`, the error moments (seed variances and
    covariance included) re-estimated there. A resample where a reliability is undefined (below 0.1,
    or no replicated architecture drawn to estimate the seed variance) counts as ±∞ in the direction
    of its raw r: the correction is then unbounded, and more than 2.5% of such resamples open that end
    of the interval."""
    r = res.statistic(method, x, y)
    c = corrected_values(r, x, y, joint, coefs, res.counts)["value"]
    with np.errstate(invalid="ignore"):
        return np.where(np.isnan(c) & np.isfinite(r), np.sign(r) * np.inf, c)


def interval(boots: np.ndarray, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The percentile interval of resamples that may be ±∞ (`corrected_boots`), each end an order
    statistic (no interpolation towards ∞). Percentile, not BCa: over 1000 simulated studies of 40
    architectures (25% × 3 seeds) it covered the true corrected ρ in 94.7%, BCa in 97.0%, whose bias
    correction leans on a point estimate that is itself a ratio of noisy numbers (benchmarks/sim_noise.py).
    Hand-written: analysis.stats.percentile_ci drops non-finite resamples, hiding the undefined ones."""
    b = np.sort(boots[~np.isnan(boots)])
    if len(b) < 10:
        return (math.nan, math.nan)
    tail = (1 - confidence) / 2
    lo, hi = int(math.floor(tail * len(b))), int(math.ceil((1 - tail) * len(b))) - 1
    return float(b[lo]), float(b[min(hi, len(b) - 1)])


def corrected_correlation(
    x, y, joint: JointError, res: Resampler, coef: float, method: str = "spearman", coefs: Coefs | None = None
) -> dict:
    """The correlation `coef` of x and y corrected for their errors' variances and covariance
    (`corrected_values`), with its bootstrap 95% percentile CI over the resamples of `res` (the same
    ones as the raw interval) and a flag where it is undefined or beyond ±1. `coefs`: x's error as
    ax·δrobust + bx·δclean and y's likewise, per architecture (default: x robust, y clean)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    one, n = np.ones(len(x)), len(x)
    coefs = (one, 0 * one, 0 * one, one) if coefs is None else coefs
    point = corrected_values(np.array([coef]), x, y, joint, coefs, np.ones((1, n)))
    value = float(point["value"][0])
    boots = corrected_boots(x, y, joint, coefs, method, res)
    flag = UNDEFINED if math.isnan(value) and math.isfinite(coef) else (OUT_OF_RANGE if abs(value) > 1 else None)
    return {
        "value_corrected": value,
        "ci_corrected": interval(boots),
        "corrected_flag": flag,
        # JSON has no ∞: this share says why an end of the interval is open (null there)
        "corrected_undefined_share": float(np.isinf(boots).sum() / max(1, (~np.isnan(boots)).sum())),
        # the part of the observed correlation that is the two numbers' shared error (Fuller's cov_err)
        "error_covariance_share": float(point["share"][0]),
        "rel": [float(v[0]) if k else math.nan for v, k in zip(point["rel"], joint.known)],
    }


def size_raw(r_obs: float, n_eff: int, margin: float) -> dict:
    """The size claim on the raw (attenuated) partial correlation: its Fisher-z 95% t interval and the
    TOST a study would run were the numbers exact (analysis.equivalence's test without the noise)."""
    if not (math.isfinite(r_obs) and n_eff > 4):
        return {"ci": (math.nan, math.nan), "p_tost": math.nan, "p_outside": math.nan}
    z = math.atanh(max(-0.999999, min(0.999999, r_obs)))
    se, df = fisher_se(n_eff, r_obs, 1, True), n_eff - 3
    t = tost(z, se, -math.atanh(margin), math.atanh(margin), df=df)
    q = stats.t.ppf(1 - ALPHA / 2, df)
    return {"ci": (math.tanh(z - q * se), math.tanh(z + q * se)), "p_tost": t["p_tost"], "p_outside": t["p_outside"]}


def size_flag(u: pd.DataFrame, r: dict) -> str | None:
    """Why the size claim's corrected partial correlation is missing although its raw one is not: a
    corrected pairwise rank correlation beyond ±1 (named with its value), or a reliability below 0.1."""
    if math.isfinite(r["value"]) or not math.isfinite(r.get("value_observed", math.nan)):
        return None
    t = u[["robust_accuracy", "log10_params", "clean_accuracy"]].apply(pd.to_numeric, errors="coerce").dropna()
    rho = t.rank().corr().to_numpy()
    rel = [r.get("reliability_robust", 1.0), 1.0, r.get("reliability_clean", 1.0)]
    rel = [v if isinstance(v, float) and math.isfinite(v) else 1.0 for v in rel]
    names = ("robust accuracy", "log10 params", "clean accuracy")
    c = {(i, j): float(spearman_correction(rho[i, j], rel[i], rel[j])) for i, j in ((0, 1), (0, 2), (1, 2))}
    beyond = [f"ρ({names[i]}, {names[j]}) corrected = {f(v)}" for (i, j), v in c.items() if abs(v) > 1]
    if beyond:
        return f"undefined: {'; '.join(beyond)}, {OUT_OF_RANGE}"
    if min(rel) < 0.1:
        return UNDEFINED
    partial = (c[0, 1] - c[0, 2] * c[1, 2]) / math.sqrt((1 - c[0, 2] ** 2) * (1 - c[1, 2] ** 2))
    return f"undefined: the corrected partial correlation would be {f(partial)}, {OUT_OF_RANGE}"


def _in_slot(rows: list[dict], index: int, ps: dict[str, float]) -> dict[str, float]:
    """The Holm-adjusted values the p fields `ps` would have in row `index`'s slot of the family (the
    other claims at their smallest path p, as verdicts.holm_family adjusts a row's own paths): a
    verdict on the raw numbers that adds no member to the family."""
    best: list[float] = []
    slot = 0
    for i, r in enumerate(rows):
        own = [r[k] for k in p_keys(r) if isinstance(r.get(k), (int, float)) and math.isfinite(r[k])]
        if i == index:
            slot = len(best)
            best.append(math.nan)
        elif own and not r.get("reason"):
            best.append(min(own))
    return {k: float(holm([*best[:slot], v, *best[slot + 1 :]])[slot]) for k, v in ps.items()}


def correction_effects(rows: list[dict]) -> None:
    """For every correlation claim with a corrected value, in place: the raw and corrected value and
    95% CI, the verdict on each scale, whether the correction moved it, and the phrase the finding's
    sentence quotes (`correction_text`). Run after the verdicts."""
    for i, r in enumerate(rows):
        if r.get("reason") or r.get("ci_corrected") is None:
            continue
        if r["kind"] == "equivalence":  # the size claim: the official verdict is on the corrected value
            raw = size_raw(r["value_observed"], int(r.get("n_eff") or r["n"]), r["margin"])
            adj = _in_slot(rows, i, {"p_value": raw["p_tost"], "p_outside": raw["p_outside"]})
            on_raw = {**r, "holm": adj, "p_value": raw["p_tost"], "p_outside": raw["p_outside"]}
            r.update(value_raw=r["value_observed"], ci_raw=raw["ci"], verdict_raw=verdict(on_raw))
            r["verdict_corrected"] = r["verdict"]
        else:  # a relation: the official verdict is the raw test of ρ = 0, which the correction leaves as it is
            r.update(value_raw=r["value"], ci_raw=(r["ci_low"], r["ci_high"]), verdict_raw=r["verdict"])
            r["verdict_corrected"] = r["verdict"]
        r["correction_moved_verdict"] = r["verdict_raw"] != r["verdict_corrected"]
        r["correction_text"] = _phrase(r)


def _phrase(r: dict) -> str:
    lo, hi = r["ci_raw"]
    clo, chi = r.get("ci_corrected") or (r["ci_low"], r["ci_high"])
    corrected = f"{f(r['value_corrected'])} [{f(clo)}, {f(chi)}]"
    if r.get("corrected_flag"):
        corrected += f", flagged: {r['corrected_flag']}"
    moved = (
        f"the correction moved the verdict from {r['verdict_raw']} to {r['verdict_corrected']}"
        if r["correction_moved_verdict"]
        else f"verdict {r['verdict_corrected']} on both" + (f": {SAME_TEST}" if r["kind"] == "relation" else "")
    )
    share = r.get("error_covariance_share")
    if r["kind"] == "relation" and isinstance(share, float) and math.isfinite(share) and abs(share) >= 0.005:
        moved += "; " + SHARED_ERROR.format(share=f(share))
    return f"raw {f(r['value_raw'])} [{f(lo)}, {f(hi)}] → corrected for noise {corrected}; {moved}"


# The raw-and-corrected columns, in the findings table and in the attenuation export alike.
CORRECTION_COLUMNS = [
    "value_raw",
    "ci_raw_low",
    "ci_raw_high",
    "value_corrected",
    "ci_corrected_low",
    "ci_corrected_high",
    "corrected_flag",
    "corrected_undefined_share",
    "verdict_raw",
    "verdict_corrected",
    "correction_moved_verdict",
]
ATTENUATION_COLUMNS = ["key", "claim", "statistic", "reliability_robust", "reliability_clean", *CORRECTION_COLUMNS]


def attenuation_table(findings: pd.DataFrame) -> pd.DataFrame:
    """The correlation claims that carry a corrected value: raw against corrected, and the verdicts."""
    if "value_corrected" not in findings:
        return pd.DataFrame(columns=ATTENUATION_COLUMNS)
    rows = findings[findings["verdict_raw"].notna()] if "verdict_raw" in findings else findings.iloc[:0]
    return rows.reindex(columns=ATTENUATION_COLUMNS).reset_index(drop=True)
