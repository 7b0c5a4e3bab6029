"""Results as tables: read what trials stored (Optuna user attributes) into tidy pandas frames.

`trials_table`: one row per trial. `robustness_table`: one row per trial × attack × ε (tidy).
`samples_table`: one row per trial × attacked clean-correct sample (logit margin, minimal ε).
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import UserError

TRIAL_COLUMNS = ["trial", "state", "arch_summary", "params", "flops", "depth", "width",
                 "clean_accuracy", "val_accuracy", "attacked_clean_accuracy", "n_attacked",
                 "median_min_eps", "lr", "batch_size", "train_fraction", "epochs", "recipe",
                 "train_seconds", "attack_seconds", "fail_reason", "sanity_ok", "sanity_failed"]
TRAIN_KNOBS = ("lr", "batch_size", "train_fraction", "epochs", "recipe")


def _trials(study):
    return study.get_trials(deepcopy=False)


def objective_names(study) -> list[str]:
    """Names of the study's objectives: the `objective_names` study attribute, else `objective`
    (one objective) or `objective_0`, `objective_1`, ... ."""
    names = study.user_attrs.get("objective_names")
    n = len(study.directions)
    if names and len(names) == n:
        return [str(v) for v in names]
    return ["objective"] if n == 1 else [f"objective_{i}" for i in range(n)]


def _objective_columns(names: list[str]) -> list[str]:
    return ["objective"] if names == ["objective"] else [f"objective_{n}" for n in names]


def trials_table(study) -> pd.DataFrame:
    """One row per trial (any state): architecture, size (params; FLOPs per input, 1 multiply-add =
    2 FLOPs), clean accuracy on the test split, the objective value(s) (`objective` for one objective,
    `objective_<name>` for several), training knobs from `train_config`, timings in seconds, the
    failure/rejection reason, and the attack sanity checks (`sanity_ok`; `sanity_failed` names the
    failed checks, comma-separated)."""
    names = objective_names(study)
    obj_cols = _objective_columns(names)
    rows = []
    for t in _trials(study):
        a = t.user_attrs
        sanity = a.get("sanity") or {}
        train = a.get("train_config") or {}
        row = {
            "trial": t.number, "state": t.state.name, "arch_summary": a.get("arch_summary"),
            "params": a.get("params"), "flops": a.get("flops"), "depth": a.get("depth"),
            "width": a.get("width"), "clean_accuracy": a.get("clean_accuracy"),
            "val_accuracy": a.get("val_accuracy"),
            "attacked_clean_accuracy": a.get("attacked_clean_accuracy"), "n_attacked": a.get("n_attacked"),
            "median_min_eps": _finite_or_none(a.get("median_min_eps")),
            "train_seconds": a.get("train_seconds"), "attack_seconds": a.get("attack_seconds"),
            "fail_reason": a.get("fail_reason") or a.get("rejected"),
            "sanity_ok": all(sanity.values()) if sanity else None,
            "sanity_failed": ", ".join(sorted(k for k, ok in sanity.items() if not ok)),
        }
        for knob in TRAIN_KNOBS:
            row[knob] = train.get(knob)
        values = t.values if t.values is not None else [None] * len(obj_cols)
        row.update(zip(obj_cols, values))
        rows.append(row)
    return pd.DataFrame(rows, columns=TRIAL_COLUMNS + obj_cols)


def _finite_or_none(value):
    return None if value is None or (isinstance(value, float) and not math.isfinite(value)) else value


def robustness_table(study) -> pd.DataFrame:
    """Tidy: one row per complete trial × attack × ε, with `robust_accuracy` (fraction of all attacked
    samples that are clean-correct and unbroken) and the trial's clean accuracy and size beside it.
    `attack == "worst_case"` is the per-sample worst case over the suite's attacks."""
    rows = []
    for t in _trials(study):
        a = t.user_attrs
        if t.state.name != "COMPLETE" or "robust_accuracy" not in a:
            continue
        for attack, values in a["robust_accuracy"].items():
            for eps, value in zip(a["eps"], values):
                rows.append({"trial": t.number, "attack": attack, "eps": eps, "robust_accuracy": value,
                             "clean_accuracy": a["clean_accuracy"], "params": a["params"],
                             "flops": a["flops"], "depth": a["depth"], "width": a["width"],
                             "arch_summary": a["arch_summary"]})
    return pd.DataFrame(rows, columns=["trial", "attack", "eps", "robust_accuracy", "clean_accuracy",
                                       "params", "flops", "depth", "width", "arch_summary"])


def samples_table(study) -> pd.DataFrame:
    """One row per complete trial × attacked clean-correct sample: `margin` (top-1 minus runner-up
    logit), `min_adversarial_eps` (smallest ε at which any attack broke it; inf = never broken) and
    `broken` (False where no attack broke it)."""
    trials, margins, min_eps = [], [], []
    for t in _trials(study):
        a = t.user_attrs
        if t.state.name != "COMPLETE" or "margins" not in a:
            continue
        m = np.asarray(a.get("margins") or [], dtype=float)
        e = a.get("min_adversarial_eps")
        e = np.full(len(m), np.nan) if e is None else np.array([np.inf if v is None else v for v in e], dtype=float)
        trials.append(np.full(len(m), t.number))
        margins.append(m)
        min_eps.append(e)
    cat = (lambda parts, dtype: np.concatenate(parts) if parts else np.array([], dtype=dtype))
    eps = cat(min_eps, float)
    # `broken` spells out what inf means: JSON has no infinity (pandas writes null, as for missing).
    return pd.DataFrame({"trial": cat(trials, int), "margin": cat(margins, float),
                         "min_adversarial_eps": eps, "broken": np.isfinite(eps)})


def export_table(table: pd.DataFrame, path: str | Path) -> Path:
    """Write `table` as CSV, JSON (records) or Parquet, chosen by the file suffix."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet", ".json"):
        raise UserError(f"{path}: unknown table format {suffix or '(none)'}; use .csv, .json or .parquet")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if suffix == ".csv":
            table.to_csv(path, index=False)
        elif suffix == ".json":
            table.to_json(path, orient="records", indent=1)
        else:
            table.to_parquet(path, index=False)
    except OSError as exc:
        raise UserError(f"{path}: cannot write ({exc.strerror})") from None
    return path
