"""What a trained candidate is scored on: the study's suite on a validation subset (the objective:
models are selected on validation data) and on the test split (recorded for the report only).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..attacks.base import AttackKind
from ..attacks.result import AttackResult
from ..attacks.suite import AttackSuite
from ..metrics import WORST_CASE, robust_auc
from ..training.data import Dataset
from ..training.train import accuracy


def curves(result: AttackResult) -> dict[str, list[float]]:
    """Robust accuracy per attack (and worst case), ascending ε."""
    return {a: g.sort_values("eps")["robust_accuracy"].round(6).tolist() for a, g in result.curve.groupby("attack")}


def _listed(values) -> list:
    """Per-sample ε as JSON: None for never broken (JSON has no infinity)."""
    return [None if math.isinf(v) else round(float(v), 6) for v in values]


def minimization_min_eps(result: AttackResult) -> list | None:
    """Per clean-correct sample, the smallest distance the minimization attacks found (continuous,
    unlike fixed-ε attacks whose ε sits on the grid); None when the suite has no such attack."""
    labels = [label for label, kind in result.kinds.items() if kind == AttackKind.MINIMIZATION]
    if not labels:
        return None
    ps = result.per_sample
    cols = ps[[f"eps_{a}" for a in labels]].to_numpy(dtype=float)
    best = np.where(np.isnan(cols), np.inf, cols).min(axis=1)
    return _listed(best[ps["clean_correct"].to_numpy(dtype=bool)])


def report_attrs(result: AttackResult, clean_accuracy: float) -> dict:
    """The test-split numbers a report quotes (never used to select a model)."""
    correct = result.per_sample["clean_correct"].to_numpy()
    return {
        "clean_accuracy": clean_accuracy,
        "robust_accuracy": curves(result),
        "attacked_clean_accuracy": result.clean_accuracy,
        "n_attacked": len(correct),
        "median_min_eps": result.median_min_eps,
        "min_adversarial_eps": _listed(result.per_sample["min_adversarial_eps"][correct]),
        "minimization_min_eps": minimization_min_eps(result),
        "margins": [round(float(v), 4) for v in result.per_sample["margin"][correct]],
        "sanity": {k: bool(v["ok"]) for k, v in result.sanity.items()},
        "sanity_details": result.sanity,
        "attack_seconds": round(result.seconds, 3),
    }


def val_attrs(result: AttackResult, clean_accuracy: float) -> dict:
    return {
        "selection_split": "val",
        "val_clean_accuracy": clean_accuracy,
        "val_robust_accuracy": curves(result),
        "val_attacked_clean_accuracy": result.clean_accuracy,
        "val_n_attacked": len(result.per_sample),
        "val_sanity_invalid": result.invalid_checks,
        "val_attack_seconds": round(result.seconds, 3),
    }


def robust_value(result: AttackResult, eps: float, metric: str, grid: tuple[float, ...]) -> float:
    """The objective's robust term: worst case at `eps`, or the area under the worst-case curve."""
    if metric == "auc":
        return round(robust_auc(result.clean_accuracy, list(grid), curves(result)[WORST_CASE]), 6)
    return result.robust_accuracy(eps, WORST_CASE)


def evaluate(
    suite: AttackSuite, model: torch.nn.Module, data: Dataset, device: torch.device, seed: int
) -> tuple[AttackResult, float, AttackResult, float]:
    """(validation result, validation clean accuracy, test result, test clean accuracy)."""
    val = suite.run(model, data.val.x, data.val.y, seed=seed)
    test = suite.run(model, data.test.x, data.test.y, seed=seed)
    return val, accuracy(model, data.val, device), test, accuracy(model, data.test, device)
