"""A warning for an objective ε that cannot rank models: all at ~0 robust accuracy, or all as
robust as they are accurate. It names the grid ε that separates the models best.
"""

from __future__ import annotations

import numpy as np

from ..attacks.config import load_suite
from ..metrics import WORST_CASE
from .config import StudyConfig, objective_eps, objective_eps_index

NEAR = 0.02  # robust accuracy within 2 points of 0 (or of clean accuracy) does not rank models
MIN_MODELS = 3


def eps_advice(study, config: StudyConfig) -> str | None:
    """A one-line warning when every complete model so far scores near 0 or near its clean accuracy
    at the objective ε on validation, with the ε of the grid that spreads them most; else None."""
    suite = load_suite(config.suite)
    grid = np.asarray(suite.eps)
    target = objective_eps(config, suite)
    k = objective_eps_index(config, suite)
    rows = []
    for t in study.get_trials(deepcopy=False):
        a = t.user_attrs
        curve = (a.get("val_robust_accuracy") or {}).get(WORST_CASE)
        if t.state.name == "COMPLETE" and curve is not None and a.get("val_attacked_clean_accuracy") is not None:
            rows.append([a["val_attacked_clean_accuracy"], *curve])
    if len(rows) < MIN_MODELS:
        return None
    table = np.asarray(rows, dtype=float)
    clean, robust = table[:, 0], table[:, 1:]
    at = robust[:, k]
    if (at <= NEAR).all():
        state = f"near 0 (robust accuracy <= {NEAR:g})"
    elif (clean - at <= NEAR).all():
        state = f"near their clean accuracy (within {NEAR:g})"
    else:
        return None
    spread = robust.std(axis=0)
    best = int(np.argmax(spread))
    if spread[best] <= NEAR / 2:
        hint = "no ε of the grid separates them: use a suite with " + (
            "smaller ε" if (at <= NEAR).all() else "larger ε"
        )
    else:
        hint = (
            f"ε={grid[best]:g} would separate them (robust accuracy {robust[:, best].min():.2f}-"
            f"{robust[:, best].max():.2f}): set --objective-eps {grid[best]:g} in a new study"
        )
    return (
        f"all {len(rows)} models score {state} at the objective ε={target:g} on validation, "
        f"so the search cannot rank them; {hint}"
    )
