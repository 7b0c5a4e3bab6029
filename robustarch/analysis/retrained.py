"""`robustarch retrain`'s records read back: each retrained seed's numbers at the headline ε, and per
architecture what the search observed, what the shrinkage predicted for fresh seeds, and what the
fresh seeds gave, each with its 95% interval.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

RETRAIN_PREFIX = "retrain:"  # as study.retrain writes them
RETRAIN_COLUMNS = [
    "arch_key",
    "replicate",
    "trial",
    "seed",
    "clean_accuracy",
    "robust_accuracy",
    "val_robust_accuracy",
    "n_attacked",
]
COMPARISON_COLUMNS = [
    "rank",
    "arch_key",
    "arch_summary",
    "seeds",
    "observed",
    "predicted",
    "predicted_low",
    "predicted_high",
    "retrained",
    "retrained_low",
    "retrained_high",
    "retrained_seeds",
    "drop",
]


def _at(curve: list | None, grid: list | None, eps: float | None):
    if not curve or not grid or eps is None:
        return None
    return next((v for e, v in zip(grid, curve) if math.isclose(e, eps)), None)


def retrain_rows(attrs: dict, eps: float | None) -> pd.DataFrame:
    """One row per retrained seed (study attributes `retrain:<arch_key>:<r>`), worst case at `eps`."""
    rows = []
    for name, r in attrs.items():
        if not name.startswith(RETRAIN_PREFIX) or not isinstance(r, dict) or r.get("fail_reason"):
            continue
        rows.append(
            {
                "arch_key": r["arch_key"],
                "replicate": r["replicate"],
                "trial": r["trial"],
                "seed": r["seed"],
                "clean_accuracy": r.get("clean_accuracy"),
                "robust_accuracy": _at((r.get("robust_accuracy") or {}).get("worst_case"), r.get("eps"), eps),
                "val_robust_accuracy": _at((r.get("val_robust_accuracy") or {}).get("worst_case"), r.get("eps"), eps),
                "n_attacked": r.get("n_attacked"),
            }
        )
    return pd.DataFrame(rows, columns=RETRAIN_COLUMNS)


def retrain_comparison(winner: pd.DataFrame, rows: pd.DataFrame, sigma2_within: float) -> pd.DataFrame:
    """Per retrained architecture (in the winner table's order): observed test number of the search,
    predicted mean of R fresh seeds with its 95% prediction interval (the true mean's uncertainty
    plus R seeds' within-architecture spread, √(sd² + σ²_w/R)), and the fresh seeds' mean with its
    t interval; `drop` = observed − retrained."""
    if rows.empty or winner.empty:
        return pd.DataFrame(columns=COMPARISON_COLUMNS)
    out = []
    for rank, w in enumerate(winner.itertuples(index=False), start=1):
        got = pd.to_numeric(rows.loc[rows["arch_key"] == w.arch_key, "robust_accuracy"], errors="coerce").dropna()
        if got.empty:
            continue
        R = len(got)
        half = (stats.t.ppf(0.975, R - 1) * got.std(ddof=1) / math.sqrt(R)) if R > 1 else math.nan
        spread = math.sqrt(w.predicted_sd**2 + sigma2_within / R) if np.isfinite(w.predicted_sd) else math.nan
        out.append(
            {
                "rank": rank,
                "arch_key": w.arch_key,
                "arch_summary": w.arch_summary,
                "seeds": w.seeds,
                "observed": w.observed,
                "predicted": w.predicted,
                "predicted_low": float(np.clip(w.predicted - 1.96 * spread, 0, 1)),
                "predicted_high": float(np.clip(w.predicted + 1.96 * spread, 0, 1)),
                "retrained": got.mean(),
                # an accuracy lies in [0, 1]: the t interval of 2 or 3 seeds often reaches past it
                "retrained_low": float(np.clip(got.mean() - half, 0, 1)),
                "retrained_high": float(np.clip(got.mean() + half, 0, 1)),
                "retrained_seeds": R,
                "drop": w.observed - got.mean(),
            }
        )
    return pd.DataFrame(out, columns=COMPARISON_COLUMNS)


def candidates(trials: pd.DataFrame, robustness: pd.DataFrame, eps: float, k: int, *, seed: int = 0):
    """The `k` best architectures on the shrunken validation robust accuracy (at the objective ε
    `eps`), from a study's trials and robustness tables (analysis.record; complete, unflagged models
    with validation numbers): the winner table's first `k` rows, each naming its trials (to copy the
    architecture from), and the components behind it."""
    from .winner import winner_table

    t = trials[(trials["state"] == "COMPLETE") & trials["sanity_invalid"].fillna("").eq("")].copy()
    wc = robustness[(robustness["attack"] == "worst_case") & np.isclose(robustness["eps"].astype(float), eps)]
    t["robust_accuracy"] = t["trial"].map(wc.set_index("trial")["robust_accuracy"])
    t = t[t["val_robust_accuracy"].notna() & t["robust_accuracy"].notna()]
    if t.empty or k <= 0:
        return pd.DataFrame(), {}
    winner, comps = winner_table(t, seed=seed)
    return winner.head(k), comps
