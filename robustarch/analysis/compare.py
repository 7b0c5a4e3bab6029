"""Two studies side by side (e.g. standard vs adversarial training): the same statistics for each,
and the differences between them.

When both studies trained the same architectures (the `adversarial-training` recipe: one sampler
seed, two training recipes), the trials are paired by architecture and each difference is taken
within a pair: a bootstrap over pairs and a Wilcoxon signed-rank test. Only when no architecture
appears in both are the studies compared as independent samples (each resampled on its own,
Mann–Whitney U), and the page says so.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
from scipy import stats

from ..errors import UserError
from .analyzer import Analysis, analyze
from .stats import N_BOOT, correlate, percentile_ci

METRICS = [
    ("clean_accuracy", "clean accuracy"),
    ("robust_accuracy", "robust accuracy at ε"),
    ("robust_auc", "area under the ε-curve"),
    ("power_law_slope", "power-law slope"),
    ("log10_params", "log10 parameters"),
]
PAIR_KEY = ("arch_summary", "params")  # the same architecture: same spec summary and parameter count
# Within an architecture, trials pair in the order of these sampled knobs, then of trial number: two
# studies run with one sampler seed sample the same (architecture, knobs) sequence.
ORDER = ("lr", "batch_size", "epochs", "max_steps", "train_fraction", "label_noise", "trial")
METRIC_COLUMNS = [
    "metric",
    "design",
    "n_a",
    "mean_a",
    "median_a",
    "n_b",
    "mean_b",
    "median_b",
    "n_pairs",
    "diff_b_minus_a",
    "ci_low",
    "ci_high",
    "test",
    "p_value",
]


def pair_trials(a: Analysis, b: Analysis) -> pd.DataFrame:
    """One row per architecture trained in both studies (the k-th trial of an architecture in A with
    its k-th in B): the key, both trial numbers, and each metric in A, in B and B − A."""
    measured = [m for m, _ in METRICS if m != "log10_params"]  # size is the pair's own, the same in both
    cols = ["trial", *PAIR_KEY, *measured]
    ua, ub = (x.used_trials.copy() for x in (a, b))
    for u in (ua, ub):
        u["params"] = pd.to_numeric(u["params"], errors="coerce")
        order = [c for c in ORDER if c in u]
        u["k"] = u.sort_values(order, kind="stable").groupby(list(PAIR_KEY), dropna=False).cumcount()
    p = ua[cols + ["k"]].merge(ub[cols + ["k"]], on=[*PAIR_KEY, "k"], suffixes=("_a", "_b")).drop(columns="k")
    for m in measured:
        p[f"{m}_diff"] = p[f"{m}_b"] - p[f"{m}_a"]
    order = [*PAIR_KEY, "trial_a", "trial_b", *(f"{m}_{x}" for m in measured for x in ("a", "b", "diff"))]
    return p[order].sort_values("trial_a").reset_index(drop=True)


def _mean_ci(d: np.ndarray, n_boot: int, seed: int) -> tuple[float, float]:
    """95% BCa bootstrap interval of the mean difference over pairs (scipy); percentile where BCa is
    undefined (all differences equal)."""
    if len(d) < 3 or np.ptp(d) == 0:
        return (float(d[0]), float(d[0])) if len(d) and np.ptp(d) == 0 else (math.nan, math.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # BCa's degenerate-jackknife warning: handled by the fallback below
        ci = stats.bootstrap((d,), np.mean, n_resamples=n_boot, method="BCa", random_state=seed).confidence_interval
    if not (math.isfinite(ci.low) and math.isfinite(ci.high)):
        ci = stats.bootstrap(
            (d,), np.mean, n_resamples=n_boot, method="percentile", random_state=seed
        ).confidence_interval
    return float(ci.low), float(ci.high)


def _paired_row(pairs: pd.DataFrame, col: str, n_boot: int, seed: int) -> dict:
    both = pairs[[f"{col}_a", f"{col}_b"]].dropna().to_numpy(float)
    d = both[:, 1] - both[:, 0]
    row = {
        "design": "paired",
        "n_pairs": len(d),
        "diff_b_minus_a": d.mean() if len(d) else math.nan,
        "test": "Wilcoxon signed-rank (two-sided) on the per-architecture differences",
    }
    row["ci_low"], row["ci_high"] = _mean_ci(d, n_boot, seed)
    row["p_value"] = float(stats.wilcoxon(d).pvalue) if len(d) >= 2 and np.any(d != 0) else math.nan
    return row


def _independent_row(x: np.ndarray, y: np.ndarray, n_boot: int, seed: int) -> dict:
    """Mean of y minus mean of x, with a percentile bootstrap CI (each study resampled on its own)."""
    row = {
        "design": "independent",
        "n_pairs": 0,
        "diff_b_minus_a": math.nan,
        "ci_low": math.nan,
        "ci_high": math.nan,
        "test": "Mann–Whitney U (two-sided), independent samples",
        "p_value": math.nan,
    }
    if len(x) >= 2 and len(y) >= 2:
        rng = np.random.default_rng(seed)
        bx = x[rng.integers(0, len(x), (n_boot, len(x)))].mean(1)
        by = y[rng.integers(0, len(y), (n_boot, len(y)))].mean(1)
        row["diff_b_minus_a"] = float(y.mean() - x.mean())
        row["ci_low"], row["ci_high"] = percentile_ci(by - bx)
        row["p_value"] = float(stats.mannwhitneyu(x, y, alternative="two-sided").pvalue)
    return row


def _summary(x: np.ndarray, key: str) -> dict:
    return {
        f"n_{key}": len(x),
        f"mean_{key}": x.mean() if len(x) else math.nan,
        f"median_{key}": np.median(x) if len(x) else math.nan,
    }


def metric_table(a: Analysis, b: Analysis, pairs: pd.DataFrame, *, n_boot: int = N_BOOT, seed: int = 0) -> pd.DataFrame:
    """Per metric: each study's n, mean and median, and B − A: paired when `pairs` is not empty
    (the size metric is then the same in both by construction and left out), else independent."""
    rows = []
    for col, label in METRICS:
        if not pairs.empty and col == "log10_params":
            continue
        x, y = (u[col].dropna().to_numpy(float) for u in (a.used_trials, b.used_trials))
        if not len(x) and not len(y):  # measured in neither study (e.g. no per-sample ε: no slopes)
            continue
        diff = _paired_row(pairs, col, n_boot, seed) if not pairs.empty else _independent_row(x, y, n_boot, seed)
        rows.append({"metric": label, **_summary(x, "a"), **_summary(y, "b"), **diff})
    return pd.DataFrame(rows, columns=METRIC_COLUMNS)


def _correlations(a: Analysis, b: Analysis, n_boot: int, seed: int) -> pd.DataFrame:
    """Spearman ρ of robust accuracy with clean accuracy and log params in each study, and the
    difference B − A with a bootstrap CI (each study resampled on its own)."""
    rows, rng = [], np.random.default_rng(seed)
    for var in ("clean_accuracy", "log10_params"):
        row = {"target": f"robust_accuracy at eps={a.eps:g}", "variable": var}
        boots = []
        for key, u in (("a", a.used_trials), ("b", b.used_trials)):
            r = correlate(u["robust_accuracy"], u[var], methods=("spearman",), n_boot=n_boot, seed=seed)[0]
            row |= {
                f"rho_{key}": r["coef"],
                f"ci_low_{key}": r["ci_low"],
                f"ci_high_{key}": r["ci_high"],
                f"n_{key}": r["n"],
            }
            sub = u[["robust_accuracy", var]].dropna().to_numpy(float)
            if len(sub) >= 4:
                idx = rng.integers(0, len(sub), (n_boot, len(sub)))
                ranks = [stats.rankdata(sub[i], axis=0) for i in idx]
                with np.errstate(invalid="ignore", divide="ignore"):
                    boots.append(np.array([np.corrcoef(r[:, 0], r[:, 1])[0, 1] for r in ranks]))
        row["diff_b_minus_a"] = row.get("rho_b", math.nan) - row.get("rho_a", math.nan)
        row["ci_low"], row["ci_high"] = percentile_ci(boots[1] - boots[0]) if len(boots) == 2 else (math.nan, math.nan)
        rows.append(row)
    return pd.DataFrame(rows)


def identical(a: Analysis, b: Analysis, pairs: pd.DataFrame) -> bool:
    """Whether the two studies hold the same trials with the same numbers (e.g. the same seed and
    sampler with the same training): every difference is then zero by construction."""
    n = min(a.n_used, b.n_used)
    if pairs.empty or len(pairs) != a.n_used or len(pairs) != b.n_used or n == 0:
        return False
    diffs = pairs[[c for c in pairs if c.endswith("_diff")]].to_numpy(float)
    return bool(np.all((diffs == 0) | np.isnan(diffs)))


def compare_tables(a: Analysis, b: Analysis, *, n_boot: int = N_BOOT, seed: int = 0) -> dict[str, pd.DataFrame]:
    """`pairs` (architectures in both studies, see `pair_trials`), `metrics` (B − A per metric,
    paired or independent: column `design`) and `correlations` (Spearman ρ in each study)."""
    pairs = pair_trials(a, b)
    return {
        "pairs": pairs,
        "metrics": metric_table(a, b, pairs, n_boot=n_boot, seed=seed),
        "correlations": _correlations(a, b, n_boot, seed),
    }


def analyze_pair(
    study_a, study_b, *, eps: float | None = None, include_flagged: bool = False, n_boot: int = N_BOOT
) -> tuple[Analysis, Analysis]:
    """Both analyses at one headline ε (default: study A's), which must lie on both grids."""
    if study_a is study_b or study_a.study_name == study_b.study_name:
        raise UserError(f"compare: {study_a.study_name!r} twice; give two different studies")
    a = analyze(study_a, eps=eps, include_flagged=include_flagged, n_boot=n_boot)
    if a.eps is None:
        raise UserError(f"study {study_a.study_name!r} has no complete trial with attack results to compare")
    try:
        b = analyze(study_b, eps=a.eps, include_flagged=include_flagged, n_boot=n_boot)
    except UserError as exc:
        raise UserError(f"study {study_b.study_name!r}: {exc} (the studies must share the headline ε)") from None
    return a, b
