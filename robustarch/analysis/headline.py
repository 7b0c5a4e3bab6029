"""The headline ε of the findings: where the models differ, chosen before the test numbers are seen.

At an ε where every model is broken (or none is) every correlation compares zeros. So, unless the
user or the recipe fixes it, the headline ε is chosen on the validation split: the grid ε at which
the median model keeps closest to half of its clean accuracy.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..errors import UserError

KEEP_SHARE = 0.5  # the validation rule's target: the median model keeps this share of its clean accuracy
MIN_MODELS = 5  # models with validation numbers at every grid ε the rule needs


def on_grid(eps, grid) -> float | None:
    """The grid's own float for `eps` (None when `eps` is None or not on the grid)."""
    if eps is None:
        return None
    return next((g for g in grid if math.isclose(float(eps), g)), None)


def retained_share(val: pd.DataFrame, grid) -> pd.Series:
    """Median over models of validation robust accuracy / validation clean accuracy (of the attacked
    samples), per grid ε; only models with a number at every grid ε count."""
    v = val.dropna(subset=["val_robust_accuracy", "val_attacked_clean_accuracy"])
    v = v[v["val_attacked_clean_accuracy"] > 0]
    wide = v.assign(share=v["val_robust_accuracy"] / v["val_attacked_clean_accuracy"]).pivot_table(
        index="trial", columns="eps", values="share"
    )
    cols = [c for c in wide.columns if on_grid(c, grid) is not None]
    if len(cols) < len(grid):
        return pd.Series(dtype=float)
    wide = wide[cols].dropna()
    if len(wide) < MIN_MODELS:
        return pd.Series(dtype=float)
    return wide.median(axis=0)


def choose_eps(
    grid: list[float], *, requested=None, attrs: dict | None = None, val: pd.DataFrame | None = None
) -> tuple[float | None, str]:
    """(headline ε, how it was chosen): `requested` (the --eps flag / `eps=`), else the recipe's
    `headline_eps`, else the validation rule (module docstring), else the study's objective ε,
    else the middle of the grid."""
    attrs = attrs or {}
    if not grid:
        return None, "no ε grid: no model has attack results"
    if requested is not None:
        if on_grid(requested, grid) is None:
            raise UserError(f"--eps {requested:g} is not on the study's ε grid {grid}")
        return on_grid(requested, grid), "given by the user (--eps)"
    fixed = on_grid((attrs.get("robustarch_config") or {}).get("headline_eps"), grid)
    if fixed is not None:
        return fixed, "fixed by the recipe (headline_eps)"
    share = retained_share(val, grid) if val is not None and not val.empty else pd.Series(dtype=float)
    if not share.empty:
        best = float(share.index[int(np.argmin(np.abs(share.to_numpy() - KEEP_SHARE)))])
        return on_grid(best, grid), (
            f"chosen on the validation split before the test numbers were read: the grid ε at which the median "
            f"model keeps closest to {KEEP_SHARE:g} of its clean accuracy (median share kept there "
            f"{share[best]:.2f})"
        )
    stored = on_grid(attrs.get("objective_eps"), grid)
    if stored is not None:
        return stored, (
            "the study's objective ε (too few models with validation robust accuracy at every grid ε "
            f"to choose it on validation, {MIN_MODELS} needed)"
        )
    return grid[(len(grid) - 1) // 2], "the middle of the ε grid (no validation numbers and no objective ε)"
