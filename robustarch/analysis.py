"""Statistics on a study's tables: how robustness relates to clean accuracy and model size.

Every function takes and returns pandas tables, so each number in a report can also be exported.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from .attack import WORST_CASE


def robust_at(robustness: pd.DataFrame, eps: float, attack: str = WORST_CASE) -> pd.DataFrame:
    """One row per trial: robust accuracy at `eps` for `attack`, beside clean accuracy and size."""
    rows = robustness[(robustness["attack"] == attack) & np.isclose(robustness["eps"], eps)]
    return rows.drop(columns=["attack", "eps"]).reset_index(drop=True)


def correlations(table: pd.DataFrame, target: str = "robust_accuracy",
                 against: tuple[str, ...] = ("clean_accuracy", "params", "flops", "depth", "width")
                 ) -> pd.DataFrame:
    """Pearson and Spearman correlation of `target` with each column in `against`, with n and p."""
    rows = []
    for col in against:
        sub = table[[target, col]].dropna()
        n = len(sub)
        row = {"variable": col, "n": n, "pearson_r": np.nan, "pearson_p": np.nan,
               "spearman_rho": np.nan, "spearman_p": np.nan}
        if n >= 3 and sub[col].nunique() > 1 and sub[target].nunique() > 1:
            r = stats.pearsonr(sub[target], sub[col])
            rho = stats.spearmanr(sub[target], sub[col])
            row.update(pearson_r=float(r.statistic), pearson_p=float(r.pvalue),
                       spearman_rho=float(rho.statistic), spearman_p=float(rho.pvalue))
        rows.append(row)
    return pd.DataFrame(rows)
