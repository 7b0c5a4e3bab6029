"""The claim "architecture explains most of the variance in robust accuracy": the ICC(1) of robust
accuracy over architectures (replicate seeds within each, analysis.components) against a margin of
one half, with the two-sided p of the F pivot behind the ICC's interval and the verdict of a
relation claim (analysis.verdicts): supported above the margin, contradicted below, else inconclusive.
"""

from __future__ import annotations

import math

import pandas as pd

from .components import group_keys, icc_f_p, model_se, variance_components

STATISTIC = "ICC(1) of robust accuracy over architectures (seed and evaluation noise within)"


def icc_row(c, u: pd.DataFrame, *, n_boot: int = 1000, seed: int = 0, row=None, skip=None) -> dict:
    """The finding row of claim `c` on the models `u` (`robust_accuracy`, `arch_key`, optional
    `robust_accuracy_se` or `n_attacked`). `row`/`skip`: analysis.findings' row builders (a plain dict
    without them, for the calibration benchmark)."""
    row = row or _plain_row
    skip = skip or (lambda c, stat, n, reason: _plain_row(c, stat, n, reason=reason))
    keys = group_keys(u.reset_index(drop=True).assign(trial=range(len(u))) if "trial" not in u else u)
    comp = variance_components(
        u["robust_accuracy"].to_numpy(float),
        keys.to_numpy(),
        model_se(u, "robust_accuracy").to_numpy(float),
        n_boot=n_boot,
        seed=seed,
    )
    if comp is None and keys.nunique() < len(keys):
        return skip(c, STATISTIC, keys.nunique(), f"{keys.nunique()} architectures (needs ≥ {c.min_n})")
    if comp is None:
        return skip(
            c,
            STATISTIC,
            keys.nunique(),
            "no architecture was trained with two or more seeds (run with "
            "--replicates and --replicate-share), so seed noise cannot be told from architecture",
        )
    if comp.n_arch < c.min_n:
        return skip(c, STATISTIC, comp.n_arch, f"{comp.n_arch} architectures (needs ≥ {c.min_n})")
    return row(
        c,
        STATISTIC,
        comp.n_arch,
        comp.icc,
        comp.ci95["icc"],
        icc_f_p(comp, c.margin),
        center=c.margin,
        n_models=comp.n_models,
        n_replicated=comp.n_replicated,
        seeds=comp.k,
        ci90=comp.ci90["icc"],
    )


def _plain_row(c, statistic, n, value=math.nan, ci=(math.nan, math.nan), p=math.nan, **extra) -> dict:
    return {
        "key": c.key,
        "statistic": statistic,
        "n": n,
        "value": value,
        "ci_low": ci[0],
        "ci_high": ci[1],
        "p_value": p,
        "reason": None,
        **extra,
    }
