"""Results as tables: read what trials stored (Optuna user attributes) into tidy pandas frames.

`trials_table`: one row per trial. `robustness_table`: one row per trial × attack × ε (tidy).
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from .errors import UserError

TRIAL_COLUMNS = ["trial", "state", "arch_summary", "params", "flops", "depth", "width",
                 "clean_accuracy", "val_accuracy", "objective", "median_min_eps", "train_seconds",
                 "attack_seconds", "fail_reason", "sanity_ok"]


def _trials(study):
    return study.get_trials(deepcopy=False)


def trials_table(study) -> pd.DataFrame:
    """One row per trial: state, architecture, size (params; FLOPs per input, 1 MAC = 2 FLOPs),
    clean accuracy, the objective, timings and the failure reason if any."""
    rows = []
    for t in _trials(study):
        a = t.user_attrs
        sanity = a.get("sanity")
        rows.append({
            "trial": t.number, "state": t.state.name, "arch_summary": a.get("arch_summary"),
            "params": a.get("params"), "flops": a.get("flops"), "depth": a.get("depth"),
            "width": a.get("width"), "clean_accuracy": a.get("clean_accuracy"),
            "val_accuracy": a.get("val_accuracy"), "objective": t.value if t.values else None,
            "median_min_eps": a.get("median_min_eps"), "train_seconds": a.get("train_seconds"),
            "attack_seconds": a.get("attack_seconds"),
            "fail_reason": a.get("fail_reason") or a.get("rejected"),
            "sanity_ok": all(sanity.values()) if sanity else None,
        })
    return pd.DataFrame(rows, columns=TRIAL_COLUMNS)


def robustness_table(study) -> pd.DataFrame:
    """Tidy: one row per complete trial × attack × ε, with `robust_accuracy` and the trial's
    clean accuracy and size beside it. `attack == "worst_case"` is the per-sample worst case."""
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


def export_table(table: pd.DataFrame, path: str | Path) -> Path:
    """Write `table` as CSV or Parquet, chosen by the file suffix."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise UserError(f"{path}: unknown table format {suffix or '(none)'}; use .csv or .parquet")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if suffix == ".csv":
            table.to_csv(path, index=False)
        else:
            table.to_parquet(path, index=False)
    except OSError as exc:
        raise UserError(f"{path}: cannot write ({exc.strerror})") from None
    return path
