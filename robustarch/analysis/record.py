"""Results as tables: read what trials stored (Optuna user attributes) into tidy pandas frames.

`trials_table`: one row per trial. `robustness_table`: one row per trial × attack × ε (tidy).
`samples_table`: one row per trial × attacked clean-correct sample (logit margin, minimal ε).
`rescore_table`: one row per trial re-attacked after the search (`rescore:<trial>` study attributes).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import UserError
from .noise import binomial_se

TRIAL_COLUMNS = [
    "trial",
    "state",
    "arch_summary",
    "params",
    "flops",
    "depth",
    "width",
    "clean_accuracy",
    "val_accuracy",
    "attacked_clean_accuracy",
    "n_attacked",
    "median_min_eps",
    "lr",
    "batch_size",
    "train_fraction",
    "epochs",
    "recipe",
    "train_seconds",
    "attack_seconds",
    "fail_reason",
    "sanity_ok",
    "sanity_failed",
    "sanity_invalid",
    "sanity_warnings",
    "train_accuracy",
    "label_noise",
    "max_steps",
    "selection_split",
    "val_robust_accuracy",
    "val_attacked_clean_accuracy",
    "val_n_attacked",
    "clean_accuracy_se",
    "family",
    "arch_key",
    "replicate",
    "train_seed",
]  # replicate seeds (analysis.components); empty before
RESCORE_COLUMNS = [
    "trial",
    "suite",
    "split",
    "eps",
    "search_robust_accuracy",
    "rescored_robust_accuracy",
    "drop",
    "search_clean_accuracy",
    "rescored_clean_accuracy",
    "n_attacked",
    "seconds",
    "sanity_invalid",
    "rescored_on_search_samples",
    "n_compared",
    "same_samples",
]
TRAIN_KNOBS = ("lr", "batch_size", "train_fraction", "epochs", "recipe", "label_noise", "max_steps")


def _trials(study):
    return study.get_trials(deepcopy=False)


class StudySnapshot:
    """A study read once: its name, directions, user attributes and every trial (one bulk
    `get_trials`), answering `get_trials` from memory. A report reads the trials a dozen times
    (trials, robustness, samples, provenance, recipes...); on PostgreSQL each read is a full query of
    every trial's attributes, seconds at thousands of trials. The stored study is untouched, so plain
    Optuna reads it as before.

    >>> snap = StudySnapshot(study)  # doctest: +SKIP
    """

    def __init__(self, study):
        self.study_name = study.study_name
        self.directions = study.directions
        self.user_attrs = dict(study.user_attrs)
        self.system_attrs = dict(getattr(study, "system_attrs", {}) or {})
        self._storage = getattr(study, "_storage", None)
        self._study_id = getattr(study, "_study_id", None)
        self._all = study.get_trials(deepcopy=False)

    def get_trials(self, deepcopy: bool = False, states=None):
        import copy

        trials = self._all if states is None else [t for t in self._all if t.state in states]
        return copy.deepcopy(trials) if deepcopy else list(trials)

    @property
    def trials(self):
        return self.get_trials(deepcopy=False)


def snapshot(study):
    """`StudySnapshot(study)`, or the snapshot itself (reading twice gains nothing)."""
    return study if study is None or isinstance(study, StudySnapshot) else StudySnapshot(study)


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


def trials_table(study, eps: float | None = None) -> pd.DataFrame:
    """One row per trial (any state): architecture, size (params; FLOPs per input, 1 multiply-add =
    2 FLOPs), clean accuracy on the test split, the objective value(s) (`objective` for one objective,
    `objective_<name>` for several), training knobs from `train_config`, timings in seconds, the
    failure/rejection reason, and the attack sanity checks (`sanity_ok`; `sanity_failed` names the
    failed checks, comma-separated; `sanity_invalid` the failed checks that invalidate the model,
    `sanity_warnings` those only shown). `selection_split` is "val" when the objective was measured on
    a validation subset, else "test" (studies stored before that split existed);
    `val_robust_accuracy` is its worst-case robust accuracy at `eps` (default: the study's
    objective ε), empty where not stored. `clean_accuracy_se` is the binomial evaluation SE over the
    `n_attacked` samples (an upper bound where the whole test split was larger); `family` is empty
    (a study's trials are one sampler's sequence, analysis.findings.sampler_caveat)."""
    eps = study.user_attrs.get("objective_eps") if eps is None else eps
    names = objective_names(study)
    obj_cols = _objective_columns(names)
    rows = []
    for t in _trials(study):
        a = t.user_attrs
        sanity = a.get("sanity") or {}
        train = a.get("train_config") or {}
        row = {
            "trial": t.number,
            "state": t.state.name,
            "arch_summary": a.get("arch_summary"),
            "params": a.get("params"),
            "flops": a.get("flops"),
            "depth": a.get("depth"),
            "width": a.get("width"),
            "clean_accuracy": a.get("clean_accuracy"),
            "val_accuracy": a.get("val_accuracy"),
            "attacked_clean_accuracy": a.get("attacked_clean_accuracy"),
            "n_attacked": a.get("n_attacked"),
            "median_min_eps": _finite_or_none(a.get("median_min_eps")),
            "train_seconds": a.get("train_seconds"),
            "attack_seconds": a.get("attack_seconds"),
            "fail_reason": a.get("fail_reason") or a.get("rejected"),
            "sanity_ok": all(sanity.values()) if sanity else None,
            "sanity_failed": ", ".join(sorted(k for k, ok in sanity.items() if not ok)),
            **_sanity_severity(a, sanity),
            "train_accuracy": a.get("train_accuracy"),
            "selection_split": a.get("selection_split") or ("val" if "val_robust_accuracy" in a else "test"),
            "val_attacked_clean_accuracy": a.get("val_attacked_clean_accuracy"),
            "val_n_attacked": a.get("val_n_attacked"),
            "val_robust_accuracy": _val_robust(a, eps),
            "clean_accuracy_se": _se(a.get("clean_accuracy"), a.get("n_attacked")),
            "family": None,
            "arch_key": a.get("arch_key"),
            "replicate": a.get("replicate"),
            "train_seed": ((a.get("provenance") or {}).get("seeds") or {}).get("training"),
        }
        for knob in TRAIN_KNOBS:
            row[knob] = train.get(knob)
        values = t.values if t.values is not None else [None] * len(obj_cols)
        row.update(zip(obj_cols, values))
        rows.append(row)
    return pd.DataFrame(rows, columns=TRIAL_COLUMNS + obj_cols)


def _se(accuracy, n) -> float | None:
    """The evaluation SE of an accuracy that is the mean of n per-sample 0/1 outcomes (binomial). A
    clean accuracy measured on more test samples than the n attacked has a smaller SE: this bounds it."""
    if accuracy is None or not n:
        return None
    return float(binomial_se(accuracy, n))


def _sanity_severity(a: dict, sanity: dict) -> dict:
    """Failed checks split by severity. Studies stored before severities existed have no
    `sanity_invalid`: every failed check there counts as invalid, as it did then."""
    failed = sorted(k for k, ok in sanity.items() if not ok)
    if "sanity_invalid" in a or "sanity_warnings" in a:
        invalid, warnings = sorted(a.get("sanity_invalid") or []), sorted(a.get("sanity_warnings") or [])
    else:
        invalid, warnings = failed, []
    return {"sanity_invalid": ", ".join(invalid), "sanity_warnings": ", ".join(warnings)}


def _val_robust(a: dict, eps: float | None):
    """Worst-case robust accuracy on the validation subset at `eps` (None where not stored)."""
    val = (a.get("val_robust_accuracy") or {}).get("worst_case")
    if val is None or eps is None:
        return None
    return next((v for e, v in zip(a.get("eps") or [], val) if math.isclose(e, eps)), None)


def rescore_table(study) -> pd.DataFrame:
    """One row per rescored trial × ε: the search's worst-case robust accuracy (test split, its
    `n_attacked` samples) beside the rescore's (`rescore:<trial>` study attribute, usually a stronger
    suite, on its own `n_attacked` samples, at least the search's) and the drop (search − rescore).
    The drop is measured on the same samples: `rescored_on_search_samples` is the rescore's worst
    case over the `n_compared` test samples the search attacked (`same_samples` true). Rescores
    stored before that was recorded compare with the rescore's own samples (`same_samples` false).
    ε the search did not measure leave `search_robust_accuracy` and `drop` empty."""
    trials = {t.number: t.user_attrs for t in _trials(study)}
    rows = []
    for key, r in sorted(study.user_attrs.items()):
        if not key.startswith("rescore:") or not key[8:].isdigit():
            continue
        trial = int(key[8:])
        a = trials.get(trial, {})
        search = dict(zip(a.get("eps") or [], (a.get("robust_accuracy") or {}).get("worst_case") or []))
        rescored = (r.get("robust_accuracy") or {}).get("worst_case") or []
        same = r.get("n_compared") is not None
        compared = r.get("compared_robust_accuracy") or [None] * len(rescored)
        for i, (eps, value) in enumerate(zip(r.get("eps") or [], rescored)):
            before = next((v for e, v in search.items() if math.isclose(e, eps)), None)
            drop = (
                (r.get("drop") or [None] * len(rescored))[i] if same else (None if before is None else before - value)
            )
            rows.append(
                {
                    "trial": trial,
                    "suite": r.get("suite"),
                    "split": r.get("split"),
                    "eps": eps,
                    "search_robust_accuracy": before,
                    "rescored_robust_accuracy": value,
                    "drop": drop,
                    "search_clean_accuracy": a.get("clean_accuracy"),
                    "rescored_clean_accuracy": r.get("clean_accuracy"),
                    "n_attacked": r.get("n_attacked"),
                    "seconds": r.get("seconds"),
                    "sanity_invalid": ", ".join(r.get("sanity_invalid") or []),
                    "rescored_on_search_samples": compared[i],
                    "n_compared": r.get("n_compared"),
                    "same_samples": same,
                }
            )
    return pd.DataFrame(rows, columns=RESCORE_COLUMNS)


def _finite_or_none(value):
    return None if value is None or (isinstance(value, float) and not math.isfinite(value)) else value


def robustness_table(study) -> pd.DataFrame:
    """Tidy: one row per complete trial × attack × ε, with `robust_accuracy` (fraction of all attacked
    samples that are clean-correct and unbroken), its evaluation SE `robust_accuracy_se` (binomial:
    the mean of `n_attacked` per-sample 0/1 outcomes) and the trial's clean accuracy and size beside it.
    `attack == "worst_case"` is the per-sample worst case over the suite's attacks."""
    rows = []
    for t in _trials(study):
        a = t.user_attrs
        if t.state.name != "COMPLETE" or "robust_accuracy" not in a:
            continue
        for attack, values in a["robust_accuracy"].items():
            for eps, value in zip(a["eps"], values):
                rows.append(
                    {
                        "trial": t.number,
                        "attack": attack,
                        "eps": eps,
                        "robust_accuracy": value,
                        "robust_accuracy_se": a.get("n_attacked"),  # the SE once all rows are in
                        "clean_accuracy": a["clean_accuracy"],
                        "params": a["params"],
                        "flops": a["flops"],
                        "depth": a["depth"],
                        "width": a["width"],
                        "arch_summary": a["arch_summary"],
                    }
                )
    table = pd.DataFrame(
        rows,
        columns=[
            "trial",
            "attack",
            "eps",
            "robust_accuracy",
            "robust_accuracy_se",
            "clean_accuracy",
            "params",
            "flops",
            "depth",
            "width",
            "arch_summary",
        ],
    )
    return _with_se(table)


def _with_se(table: pd.DataFrame) -> pd.DataFrame:
    """`robust_accuracy_se` from the n_attacked held there: `_se` of every row in one array
    operation (one call per row took 4 s of a 5 000-trial report: 165 000 rows)."""
    acc = pd.to_numeric(table["robust_accuracy"], errors="coerce").to_numpy(float)
    n = pd.to_numeric(table["robust_accuracy_se"], errors="coerce").to_numpy(float)
    ok = np.isfinite(acc) & np.isfinite(n) & (n != 0)
    if not ok.any():  # as `_se` row by row: None where no SE
        table["robust_accuracy_se"] = None
        return table
    table["robust_accuracy_se"] = np.where(ok, binomial_se(np.where(ok, acc, 0.0), np.where(ok, n, 1.0)), np.nan)
    return table


def val_robustness_table(study) -> pd.DataFrame:
    """Tidy: one row per complete trial × ε with its worst-case robust accuracy on the validation
    subset and that subset's clean accuracy (trials that stored none are absent)."""
    rows = []
    for t in _trials(study):
        a = t.user_attrs
        val = (a.get("val_robust_accuracy") or {}).get("worst_case")
        if t.state.name != "COMPLETE" or val is None:
            continue
        for eps, value in zip(a.get("eps") or [], val):
            rows.append(
                {
                    "trial": t.number,
                    "eps": eps,
                    "val_robust_accuracy": value,
                    "val_attacked_clean_accuracy": a.get("val_attacked_clean_accuracy"),
                }
            )
    return pd.DataFrame(rows, columns=["trial", "eps", "val_robust_accuracy", "val_attacked_clean_accuracy"])


def samples_table(study) -> pd.DataFrame:
    """One row per complete trial × attacked clean-correct sample: `margin` (top-1 minus runner-up
    logit), `min_adversarial_eps` (smallest ε at which any attack broke it; inf = never broken) and
    `broken` (False where no attack broke it), and `minimization_min_eps` (smallest ε found by the
    minimization attacks alone; NaN where the trial did not store it — older studies)."""
    trials, margins, min_eps, min_eps_min = [], [], [], []
    for t in _trials(study):
        a = t.user_attrs
        if t.state.name != "COMPLETE" or "margins" not in a:
            continue
        m = np.asarray(a.get("margins") or [], dtype=float)
        trials.append(np.full(len(m), t.number))
        margins.append(m)
        min_eps.append(_eps_list(a.get("min_adversarial_eps"), len(m)))
        min_eps_min.append(_eps_list(a.get("minimization_min_eps"), len(m)))
    cat = lambda parts, dtype: np.concatenate(parts) if parts else np.array([], dtype=dtype)
    eps = cat(min_eps, float)
    # `broken` spells out what inf means: JSON has no infinity (pandas writes null, as for missing).
    return pd.DataFrame(
        {
            "trial": cat(trials, int),
            "margin": cat(margins, float),
            "min_adversarial_eps": eps,
            "broken": np.isfinite(eps),
            "minimization_min_eps": cat(min_eps_min, float),
        }
    )


def _eps_list(values, n: int) -> np.ndarray:
    """A stored per-sample ε list as floats: None (never broken) → inf, missing list → NaN."""
    if values is None or len(values) != n:
        return np.full(n, np.nan)
    return np.array([np.inf if v is None else v for v in values], dtype=float)


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
