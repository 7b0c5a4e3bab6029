"""Two studies side by side (e.g. standard vs adversarial training): the same statistics for each,
and the differences between them with bootstrap intervals and rank tests.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from .analyzer import Analysis, analyze
from ..errors import UserError
from .stats import N_BOOT, correlate, percentile_ci

METRICS = [("clean_accuracy", "clean accuracy"), ("robust_accuracy", "robust accuracy at ε"),
           ("robust_auc", "area under the ε-curve"), ("power_law_slope", "power-law slope"),
           ("log10_params", "log10 parameters")]


def _mean_diff(x: np.ndarray, y: np.ndarray, n_boot: int, seed: int) -> tuple[float, float, float]:
    """Mean of y minus mean of x, with a percentile bootstrap CI (each study resampled on its own)."""
    rng = np.random.default_rng(seed)
    bx = x[rng.integers(0, len(x), (n_boot, len(x)))].mean(1)
    by = y[rng.integers(0, len(y), (n_boot, len(y)))].mean(1)
    lo, hi = percentile_ci(by - bx)
    return float(y.mean() - x.mean()), lo, hi


def compare_tables(a: Analysis, b: Analysis, *, n_boot: int = N_BOOT, seed: int = 0) -> dict[str, pd.DataFrame]:
    """`metrics`: per metric, each study's n, mean and median, B − A with 95% CI and the Mann–Whitney
    p-value. `correlations`: Spearman ρ of robust accuracy with clean accuracy and log params in
    each study, and the difference B − A with a bootstrap CI."""
    ua, ub = a.used_trials, b.used_trials
    rows = []
    for col, label in METRICS:
        x, y = ua[col].dropna().to_numpy(float), ub[col].dropna().to_numpy(float)
        row = {"metric": label, "n_a": len(x), "mean_a": x.mean() if len(x) else math.nan,
               "median_a": np.median(x) if len(x) else math.nan, "n_b": len(y),
               "mean_b": y.mean() if len(y) else math.nan, "median_b": np.median(y) if len(y) else math.nan,
               "diff_b_minus_a": math.nan, "ci_low": math.nan, "ci_high": math.nan, "mann_whitney_p": math.nan}
        if len(x) >= 2 and len(y) >= 2:
            row["diff_b_minus_a"], row["ci_low"], row["ci_high"] = _mean_diff(x, y, n_boot, seed)
            row["mann_whitney_p"] = float(stats.mannwhitneyu(x, y, alternative="two-sided").pvalue)
        rows.append(row)
    corr_rows = []
    rng = np.random.default_rng(seed)
    for var in ("clean_accuracy", "log10_params"):
        row = {"target": f"robust_accuracy at eps={a.eps:g}", "variable": var}
        boots = []
        for key, u in (("a", ua), ("b", ub)):
            r = correlate(u["robust_accuracy"], u[var], methods=("spearman",), n_boot=n_boot, seed=seed)[0]
            row |= {f"rho_{key}": r["coef"], f"ci_low_{key}": r["ci_low"], f"ci_high_{key}": r["ci_high"],
                    f"n_{key}": r["n"]}
            sub = u[["robust_accuracy", var]].dropna().to_numpy(float)
            if len(sub) >= 4:
                idx = rng.integers(0, len(sub), (n_boot, len(sub)))
                ranks = [stats.rankdata(sub[i], axis=0) for i in idx]
                boots.append(np.array([np.corrcoef(r[:, 0], r[:, 1])[0, 1] for r in ranks]))
        row["diff_b_minus_a"] = row.get("rho_b", math.nan) - row.get("rho_a", math.nan)
        row["ci_low"], row["ci_high"] = (percentile_ci(boots[1] - boots[0]) if len(boots) == 2
                                         else (math.nan, math.nan))
        corr_rows.append(row)
    return {"metrics": pd.DataFrame(rows), "correlations": pd.DataFrame(corr_rows)}


def analyze_pair(study_a, study_b, *, eps: float | None = None, include_flagged: bool = False,
                 n_boot: int = N_BOOT) -> tuple[Analysis, Analysis]:
    """Both analyses at one headline ε (default: study A's), which must lie on both grids."""
    a = analyze(study_a, eps=eps, include_flagged=include_flagged, n_boot=n_boot)
    if a.eps is None:
        raise UserError(f"study {study_a.study_name!r} has no complete trial with attack results to compare")
    try:
        b = analyze(study_b, eps=a.eps, include_flagged=include_flagged, n_boot=n_boot)
    except UserError as exc:
        raise UserError(f"study {study_b.study_name!r}: {exc} (the studies must share the headline ε)") from None
    return a, b

