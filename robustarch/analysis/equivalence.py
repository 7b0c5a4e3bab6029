"""The "adds little" claim as an equivalence test on a rank partial correlation, honest about the
three things that make "≈ 0" easy: few models, noisy model numbers and related models.

- Fisher-z TOST with Student's t (n − 3 df, the partial correlation's own t test) and the
  Bonett–Wright SE: supported only when the 90% interval lies inside ±margin.
- Noise (`noise`): with per-model SEs the interval is for the disattenuated partial correlation,
  and must lie inside the margin twice: the analytic interval with its endpoints corrected (Hunter
  & Schmidt 2004) and the bootstrap percentile interval with the reliabilities re-estimated in each
  resample. Each is a level-α test; requiring both is an intersection–union test (Berger 1982), so
  its level stays α. Noise pulls a correlation to 0 and can never make this claim pass by itself.
- Related models (a `family` column): the bootstrap resamples whole families, and the analytic
  interval counts families, not models, as its n (the largest possible design effect).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats as sps

from .noise import corrected_partial, error_variance, partial_from_observed, resampled_reliability
from .stats import _weighted_pearson, _weighted_ranks, bca_ci, cluster_counts, resample_counts
from .verdicts import ALPHA, fisher_se, tost

MIN_CLUSTERS = 20  # fewer families: a cluster bootstrap misstates its own SE (Cameron, Gelbach & Miller 2008)


def _pairwise(y, x, z, counts):
    """Weighted rank correlations (y, x), (y, z), (x, z) on every resample in `counts`."""
    ry, rx, rz = (_weighted_ranks(v, counts) for v in (y, x, z))
    return _weighted_pearson(ry, rx, counts), _weighted_pearson(ry, rz, counts), _weighted_pearson(rx, rz, counts)


def _boot_tost(boots: np.ndarray, margin: float) -> dict:
    """Percentile-interval inclusion on bootstrap values: p is the larger one-sided share at or beyond
    the margin, (1 + count)/(B + 1); undefined resamples (reliability too low) count against the claim
    both ways: beyond the margin for "supported", inside it for "contradicted"."""
    b, undefined = len(boots), np.isnan(boots)
    above, below = undefined | (boots >= margin), undefined | (boots <= -margin)
    finite = boots[~undefined]
    ci = tuple(np.quantile(finite, [ALPHA, 1 - ALPHA])) if len(finite) >= 10 else (math.nan, math.nan)
    upper_side = not len(finite) or np.median(finite) >= 0
    not_beyond = ~(boots >= margin) if upper_side else ~(boots <= -margin)  # NaN compares False: counted
    return {
        "p_tost": float((1 + max(above.sum(), below.sum())) / (b + 1)),
        "ci90": (float(ci[0]), float(ci[1])),
        "p_outside": float((1 + not_beyond.sum()) / (b + 1)),
    }


def _analytic(r_obs: float, n_eff: int, margin: float, corr: dict | None) -> dict:
    """Fisher-z TOST of the observed partial with t(n_eff − 3); with noise (`corr`: the other pairwise
    correlations and reliabilities) its margins are the observed values that the correction maps to
    ±margin, and its interval is the corrected endpoints."""
    z = math.atanh(max(-0.999999, min(0.999999, r_obs)))
    se, df = fisher_se(n_eff, r_obs, 1, True), n_eff - 3
    if corr is None:
        t = tost(z, se, -math.atanh(margin), math.atanh(margin), df=df)
        return {**t, "ci90": tuple(math.tanh(v) for v in t["ci90"])}
    g0, g1 = (float(partial_from_observed(v, **corr)) for v in (0.0, 0.01))
    slope = (g1 - g0) / 0.01  # the correction is linear in the observed partial (until |r| reaches 1)
    if not (math.isfinite(slope) and slope > 0):
        return {"p_tost": math.nan, "ci90": (math.nan, math.nan), "p_outside": math.nan, "df": df}
    lo, hi = ((-margin - g0) / slope, (margin - g0) / slope)
    clip = lambda v: math.atanh(max(-0.999999, min(0.999999, v)))
    t = tost(z, se, clip(lo), clip(hi), df=df)
    ends = (g0 + slope * math.tanh(v) for v in t["ci90"])
    return {**t, "ci90": tuple(max(-1.0, min(1.0, e)) for e in ends)}


def _reliabilities(u, keep) -> dict | None:
    """The error variances of robust (ey) and clean (ez) accuracy, {} when they are known to be 0
    (exact numbers), None when the table says nothing about noise."""
    ey, ez = (error_variance(u, c) for c in ("robust_accuracy", "clean_accuracy"))
    if ey is None and ez is None:
        return None
    k = int(keep.sum())
    ey = np.zeros(k) if ey is None else np.nan_to_num(ey[keep])
    ez = np.zeros(k) if ez is None else np.nan_to_num(ez[keep])
    return {"ey": ey, "ez": ez} if (ey > 0).any() or (ez > 0).any() else {}


def size_equivalence(u, margin: float, *, n_boot: int, seed: int, families=None) -> dict:
    """The rank partial correlation of robust accuracy with log10 params given clean accuracy, tested
    for |r| < margin (module docstring). Returns value (corrected where noise is known), value_observed,
    n, n_eff, p_tost, p_outside, ci90, 95% ci, the reliabilities and p_zero (the t test of r = 0)."""
    y, x, z = (u[c].to_numpy(float) for c in ("robust_accuracy", "log10_params", "clean_accuracy"))
    keep = np.isfinite(y) & np.isfinite(x) & np.isfinite(z)
    y, x, z = y[keep], x[keep], z[keep]
    n = len(y)
    groups = None if families is None else np.asarray(families)[keep]
    n_eff = n if groups is None else len(set(groups))
    out = {
        "noise_known": False,
        "n": n,
        "n_eff": n_eff,
        "value": math.nan,
        "value_observed": math.nan,
        "p_tost": math.nan,
        "p_outside": math.nan,
        "ci90": (math.nan, math.nan),
        "ci": (math.nan, math.nan),
        "p_zero": math.nan,
        "reliability_robust": math.nan,
        "reliability_clean": math.nan,
    }
    if n < 5 or min(np.ptp(y), np.ptp(x), np.ptp(z)) == 0:
        return out
    one = np.ones((1, n))
    (ryx,), (ryz,), (rxz,) = _pairwise(y, x, z, one)
    r_obs = float(corrected_partial(ryx, ryz, rxz, 1.0, 1.0, 1.0))
    known = _reliabilities(u, keep)
    noise = known or None
    counts = resample_counts(n, n_boot, seed) if groups is None else cluster_counts(groups, n_boot, seed)
    byx, byz, bxz = _pairwise(y, x, z, counts)
    corr, rel_y, rel_z = None, np.ones(len(counts)), np.ones(len(counts))
    if noise is not None:
        ry_hat, rz_hat = (float(resampled_reliability(v, e, one)[0]) for v, e in ((y, noise["ey"]), (z, noise["ez"])))
        out.update(reliability_robust=ry_hat, reliability_clean=rz_hat)
        corr = {"rxz": ryz, "ryz": rxz, "rel_x": ry_hat, "rel_y": 1.0, "rel_z": rz_hat}
        rel_y, rel_z = resampled_reliability(y, noise["ey"], counts), resampled_reliability(z, noise["ez"], counts)
    value = (
        float(corrected_partial(ryx, ryz, rxz, out["reliability_robust"], 1.0, out["reliability_clean"]))
        if noise is not None
        else r_obs
    )
    boots = corrected_partial(byx, byz, bxz, rel_y, 1.0, rel_z)
    a = _analytic(r_obs, n_eff, margin, corr)
    df = n - 3
    t0 = r_obs * math.sqrt(df / max(1e-300, 1 - r_obs**2))
    out.update(
        noise_known=known is not None,
        value=value,
        value_observed=r_obs,
        p_zero=float(2 * sps.t.sf(abs(t0), df)),
        ci=bca_ci(boots, value, None),
        p_tost=a["p_tost"],
        p_outside=a["p_outside"],
        ci90=a["ci90"],
        ci90_analytic=a["ci90"],
        method="Fisher-z TOST, t with n − 3 df",
    )
    if noise is not None or groups is not None:
        b = _boot_tost(boots, margin)
        out.update(
            p_tost=max(a["p_tost"], b["p_tost"]),
            p_outside=max(a["p_outside"], b["p_outside"]),
            ci90=(min(a["ci90"][0], b["ci90"][0]), max(a["ci90"][1], b["ci90"][1])),
            ci90_boot=b["ci90"],
            method="intersection–union of the Fisher-z TOST and the "
            + ("cluster " if groups is not None else "")
            + "bootstrap percentile TOST"
            + (" on the disattenuated partial correlation" if noise is not None else ""),
        )
    return out
