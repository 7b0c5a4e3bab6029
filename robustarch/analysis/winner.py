"""The winner under noise: architectures ranked on a shrunken estimate μ + reliability·(observed − μ)
of their mean over seeds (the best linear unbiased predictor of a random architecture effect), so
that a lucky seed or test sample does not crown an architecture; each quotes the value predicted for
a fresh seed beside the observed one.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..metrics import pareto_front
from .components import Components, binomial_se, group_keys, variance_components

WINNER_COLUMNS = [
    "arch_key",
    "arch_summary",
    "seeds",
    "trials",
    "observed",
    "reliability",
    "predicted",
    "predicted_sd",
    "val_observed",
    "val_predicted",
    "val_clean_observed",
    "val_clean_predicted",
    "pareto",
]
# The architecture-level Pareto front the report shows when the winner is chosen on shrunken estimates.
FRONT_COLUMNS = [
    "arch_key",
    "arch_summary",
    "seeds",
    "trials",
    "val_clean_observed",
    "val_clean_predicted",
    "val_observed",
    "val_predicted",
    "observed",
    "predicted",
    "predicted_sd",
]


def shrunken(models: pd.DataFrame, value: str, comp: Components | None) -> pd.DataFrame:
    """Per architecture (`arch_key`): seeds, observed mean of `value`, its reliability
    σ²_a / (σ²_a + σ²_w/k) for its k seeds, the shrunken prediction and the SD of the true mean
    given it (√(σ²_a (1 − reliability)), the components taken as known); sorted best first.
    Without components (no replicates) the prediction is NaN and the order is the observed one."""
    g = (
        models.groupby("arch_key", sort=False)[value]
        .agg(["mean", "count"])
        .rename(columns={"mean": "observed", "count": "seeds"})
        .reset_index()
    )
    if comp is None or not math.isfinite(comp.estimate["sigma2_arch"]):
        g["reliability"], g["predicted"], g["predicted_sd"] = np.nan, np.nan, np.nan
        return g.sort_values("observed", ascending=False, kind="stable").reset_index(drop=True)
    s2a, s2w = comp.estimate["sigma2_arch"], comp.estimate["msw"]
    rel = s2a / (s2a + s2w / g["seeds"]) if s2a > 0 else pd.Series(0.0, index=g.index)
    # μ by generalised least squares (each mean weighted by its precision), as the BLUP uses it
    weights = 1 / (s2a + s2w / g["seeds"])
    mu = float(np.sum(weights * g["observed"]) / np.sum(weights))
    g["reliability"] = rel
    g["predicted"] = mu + rel * (g["observed"] - mu)
    g["predicted_sd"] = np.sqrt(np.maximum(s2a * (1 - rel), 0.0))
    return g.sort_values(["predicted", "observed"], ascending=False, kind="stable").reset_index(drop=True)


def _se(m: pd.DataFrame, col: str, n_col: str) -> np.ndarray | None:
    """`<col>_se` where given, else the binomial SE on `n_col` samples (None: unknown)."""
    if f"{col}_se" in m and m[f"{col}_se"].notna().any():
        return pd.to_numeric(m[f"{col}_se"], errors="coerce").to_numpy(float)
    if col in m and n_col in m:
        return binomial_se(pd.to_numeric(m[col], errors="coerce"), pd.to_numeric(m[n_col], errors="coerce"))
    return None


def winner_table(u: pd.DataFrame, *, seed: int = 0) -> tuple[pd.DataFrame, dict[str, Components | None]]:
    """Architectures of the models `u` (analyzer's used trials) best first on the shrunken validation
    robust accuracy (the test one when no validation number was stored), with the test number
    observed and predicted for a fresh seed, and whether the architecture is on the clean/robust
    Pareto front of the shrunken validation estimates. Also the components behind it."""
    m = u.assign(arch_key=group_keys(u))
    on_val = "val_robust_accuracy" in m and m["val_robust_accuracy"].notna().all()
    sel = "val_robust_accuracy" if on_val else "robust_accuracy"
    comps = {}
    for number, col, n_col in (
        ("test", "robust_accuracy", "n_attacked"),
        ("val", sel, "val_n_attacked"),
        ("val_clean", "val_accuracy" if on_val else "clean_accuracy", "val_n_attacked"),
    ):
        values = pd.to_numeric(m[col], errors="coerce") if col in m else pd.Series(np.nan, index=m.index)
        comps[number] = variance_components(
            values.to_numpy(float), m["arch_key"].to_numpy(), _se(m, col, n_col), seed=seed, n_boot=0
        )
    val = shrunken(m, sel, comps["val"])
    test = shrunken(m, "robust_accuracy", comps["test"]).set_index("arch_key")
    clean_col = "val_accuracy" if on_val else "clean_accuracy"
    clean = shrunken(
        m.assign(**{clean_col: pd.to_numeric(m[clean_col], errors="coerce")}), clean_col, comps["val_clean"]
    ).set_index("arch_key")
    out = val.rename(columns={"observed": "val_observed", "predicted": "val_predicted"})[
        ["arch_key", "seeds", "val_observed", "val_predicted"]
    ]
    out = out.join(test[["observed", "reliability", "predicted", "predicted_sd"]], on="arch_key")
    summary = m.groupby("arch_key")["arch_summary"].first() if "arch_summary" in m else None
    out["arch_summary"] = out["arch_key"].map(summary) if summary is not None else out["arch_key"]
    out["trials"] = out["arch_key"].map(m.groupby("arch_key")["trial"].apply(lambda s: ",".join(map(str, s))))
    x = clean.reindex(out["arch_key"])
    out["val_clean_observed"], out["val_clean_predicted"] = x["observed"].to_numpy(), x["predicted"].to_numpy()
    cx = x["predicted"].fillna(x["observed"]).to_numpy(float)
    ry = out["val_predicted"].fillna(out["val_observed"]).to_numpy(float)
    ok = np.isfinite(cx) & np.isfinite(ry)
    out["pareto"] = False
    if ok.any():
        out.loc[np.flatnonzero(ok)[pareto_front(cx[ok], ry[ok])], "pareto"] = True
    return out[WINNER_COLUMNS], comps


def is_shrunken(winner: pd.DataFrame) -> bool:
    """Whether the winner table ranks on shrunken estimates (replicates gave the components)."""
    return not winner.empty and bool(pd.to_numeric(winner["val_predicted"], errors="coerce").notna().any())


def shrunken_front(winner: pd.DataFrame) -> pd.DataFrame:
    """The architectures on the clean/robust front of the shrunken validation estimates, by clean accuracy."""
    front = winner[winner["pareto"].astype(bool)]
    return front[FRONT_COLUMNS].sort_values("val_clean_predicted", kind="stable").reset_index(drop=True)


def winner_trials(winner: pd.DataFrame) -> list[int]:
    """The trials (seeds) of the first architecture of the winner table."""
    return [int(t) for t in str(winner.iloc[0]["trials"]).split(",") if t.strip()] if not winner.empty else []
