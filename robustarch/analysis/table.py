"""Findings on anyone's results: a plain table of models (and, optionally, per-sample minimal ε) read
into the tables a study gives, then analysed by the same `analyze_tables` as a study.

    a = analyze_table("robustbench.csv")                  # or a DataFrame
    a.tables["findings"]
"""

from __future__ import annotations

import re
from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import UserError
from .analyzer import Analysis, analyze_tables
from .claims import resolve
from .noise import binomial_se
from .powerlaw import MAX_ERROR
from .record import TRIAL_COLUMNS
from .stats import N_BOOT

ROBUST = re.compile(r"^(val_)?robust_accuracy@(.+)$")
ROBUST_SE = re.compile(r"^robust_accuracy(?:_se@(.+)|@(.+)_se)$")
ACCURACIES = (
    "clean_accuracy",
    "val_accuracy",
    "attacked_clean_accuracy",
    "train_accuracy",
    "val_attacked_clean_accuracy",
)
NUMBERS = (
    "params",
    "flops",
    "depth",
    "width",
    "lr",
    "batch_size",
    "epochs",
    "max_steps",
    "label_noise",
    "train_fraction",
    "n_attacked",
    "clean_accuracy_se",
)
SE_COLUMNS = ("robust_accuracy_se", "clean_accuracy_se")  # a model number's evaluation SE (analysis.components)
# what each optional input feeds; a missing one is named on the page with what is skipped
OPTIONAL = {
    "params": "the size claims, the parameters plot and the OLS term (no `params` column)",
    "depth": "the depth claims, the depth × width map (no `depth` column)",
    "width": "the depth × width map and the OLS width term (no `width` column)",
    "samples": "the power law, the margin claims and the margin plot (no per-sample table: --samples)",
}


def _eps(text: str, column: str) -> float:
    try:
        value = float(Fraction(text.strip()))
    except (ValueError, ZeroDivisionError):
        raise UserError(
            f"column {column!r}: {text!r} is not an ε (write robust_accuracy@0.03 or robust_accuracy@8/255)"
        ) from None
    if not value >= 0:
        raise UserError(f"column {column!r}: ε must be ≥ 0")
    return value


def read_table(table, what: str = "table") -> pd.DataFrame:
    """A DataFrame as it is, or a .csv / .parquet file read into one (UserError naming the file)."""
    if isinstance(table, pd.DataFrame):
        return table.copy()
    path = Path(table)
    if path.suffix.lower() not in (".csv", ".parquet"):
        raise UserError(f"{path}: {what} must be a .csv or .parquet file")
    try:
        return pd.read_csv(path, comment="#") if path.suffix.lower() == ".csv" else pd.read_parquet(path)
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise UserError(f"{path}: cannot read the {what} ({' '.join(str(exc).split())[:160]})") from None


def _numeric(df: pd.DataFrame, col: str, where: str, lo: float | None = None, hi: float | None = None) -> pd.Series:
    v = pd.to_numeric(df[col], errors="coerce")
    bad = df[col].notna() & v.isna()
    if bad.any():
        raise UserError(f"{where}, column {col!r}: {df.loc[bad, col].iloc[0]!r} is not a number")
    if (lo is not None and (v < lo).any()) or (hi is not None and (v > hi).any()):
        raise UserError(f"{where}, column {col!r}: values must lie in [{lo:g}, {hi:g}] (accuracies are fractions)")
    return v


def _robust_columns(models: pd.DataFrame, where: str) -> tuple[dict, dict]:
    """{ε: column} of robust accuracy on test, and of validation robust accuracy."""
    test, val = {}, {}
    for col in models.columns:
        m = ROBUST.match(str(col))
        if m and not ROBUST_SE.match(str(col)):
            (val if m.group(1) else test)[_eps(m.group(2), col)] = col
    if not test:
        raise UserError(
            f"{where}: no robust accuracy column; name one per ε, e.g. robust_accuracy@0.1 or robust_accuracy@8/255"
        )
    return test, val


def _se_columns(models: pd.DataFrame, test: dict, where: str) -> dict:
    """{ε: column} of the robust accuracy's evaluation SE: `robust_accuracy_se@EPS` or
    `robust_accuracy@EPS_se`, or a plain `robust_accuracy_se` where the table has one ε."""
    out = {}
    for col in models.columns:
        m = ROBUST_SE.match(str(col))
        if m:
            out[_eps(m.group(1) or m.group(2), col)] = col
    if "robust_accuracy_se" in models:
        if len(test) != 1:
            raise UserError(
                f"{where}, column 'robust_accuracy_se': the table has {len(test)} robust accuracy columns; "
                "name the SE of each, e.g. robust_accuracy_se@8/255"
            )
        out[next(iter(test))] = "robust_accuracy_se"
    unknown = set(out) - set(test)
    if unknown:
        raise UserError(f"{where}, column {out[min(unknown)]!r}: no robust_accuracy column at that ε")
    return out


def models_tables(
    models: pd.DataFrame, where: str = "models table"
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, dict]:
    """The models table as (trials, robustness, val_robustness, {model name: trial number})."""
    if "clean_accuracy" not in models:
        raise UserError(f"{where}: no 'clean_accuracy' column (required: clean_accuracy and robust_accuracy@EPS)")
    test, val = _robust_columns(models, where)
    names = models["model"].astype(str) if "model" in models else pd.Series([f"model {i}" for i in range(len(models))])
    if names.duplicated().any():
        raise UserError(f"{where}, column 'model': {names[names.duplicated()].iloc[0]!r} appears twice")
    n = len(models)
    trials = pd.DataFrame({c: [None] * n for c in TRIAL_COLUMNS})
    trials["trial"], trials["state"] = np.arange(n), "COMPLETE"
    trials["arch_summary"] = models["arch"].astype(str).to_numpy() if "arch" in models else names.to_numpy()
    for col in ACCURACIES + NUMBERS:
        if col in models:
            trials[col] = _numeric(models, col, where, *((0, 1) if col in ACCURACIES else (0, None))).to_numpy()
    trials["sanity_invalid"], trials["sanity_warnings"], trials["selection_split"] = "", "", "test"
    _replicates(models, trials, where)
    rob = []
    if "family" in models:
        trials["family"] = models["family"].where(models["family"].notna(), None).astype(object).to_numpy()
    n_att = pd.to_numeric(trials["n_attacked"], errors="coerce")
    if "clean_accuracy_se" not in models and n_att.notna().any():  # binomial, from the samples evaluated
        trials["clean_accuracy_se"] = binomial_se(trials["clean_accuracy"].astype(float), n_att)
    ses = _se_columns(models, test, where)
    for eps, col in test.items():
        v = _numeric(models, col, where, 0, 1).to_numpy()
        se = (
            _numeric(models, ses[eps], where, 0, None).to_numpy(float)
            if eps in ses
            else binomial_se(v.astype(float), n_att.to_numpy(float))
        )
        rob.append(
            pd.DataFrame(
                {
                    "trial": trials["trial"],
                    "attack": "worst_case",
                    "eps": eps,
                    "robust_accuracy": v,
                    "robust_accuracy_se": se,
                    "clean_accuracy": trials["clean_accuracy"],
                    "params": trials["params"],
                    "flops": trials["flops"],
                    "depth": trials["depth"],
                    "width": trials["width"],
                    "arch_summary": trials["arch_summary"],
                }
            )
        )
    robustness = pd.concat(rob, ignore_index=True).dropna(subset=["robust_accuracy"])
    val_clean = trials["val_attacked_clean_accuracy"].fillna(trials["val_accuracy"])
    val_rows = [
        pd.DataFrame(
            {
                "trial": trials["trial"],
                "eps": eps,
                "val_robust_accuracy": _numeric(models, col, where, 0, 1).to_numpy(),
                "val_attacked_clean_accuracy": val_clean,
            }
        )
        for eps, col in val.items()
    ]
    val_robustness = (
        pd.concat(val_rows, ignore_index=True)
        if val_rows
        else pd.DataFrame(columns=["trial", "eps", "val_robust_accuracy", "val_attacked_clean_accuracy"])
    )
    return trials.infer_objects(), robustness, val_robustness, dict(zip(names, trials["trial"]))


def _replicates(models: pd.DataFrame, trials: pd.DataFrame, where: str) -> None:
    """Rows sharing an `arch` and differing in `seed` are one architecture's seeds (`arch_key`,
    `replicate`); per-model evaluation SEs are kept for the variance components."""
    for col in SE_COLUMNS:
        if col in models:
            trials[col] = _numeric(models, col, where, 0, 1).to_numpy()
    if "seed" not in models:
        return
    if "arch" not in models:
        raise UserError(f"{where}: a 'seed' column needs an 'arch' column (rows sharing an arch are its seeds)")
    pairs = models["arch"].astype(str) + " seed " + models["seed"].astype(str)
    if pairs.duplicated().any():
        raise UserError(f"{where}, columns 'arch' and 'seed': {pairs[pairs.duplicated()].iloc[0]!r} appears twice")
    trials["arch_key"] = models["arch"].astype(str).to_numpy()
    trials["replicate"] = models["seed"].to_numpy()


def samples_tables(samples: pd.DataFrame, ids: dict, where: str = "samples table") -> pd.DataFrame:
    """The long per-sample table (model, min_eps, optional margin) in `record.samples_table`'s form."""
    missing = [c for c in ("model", "min_eps") if c not in samples]
    if missing:
        raise UserError(
            f"{where}: no {' or '.join(repr(c) for c in missing)} column (required: model, min_eps; optional: margin)"
        )
    names = samples["model"].astype(str)
    unknown = sorted(set(names) - set(ids))
    if unknown:
        raise UserError(f"{where}, column 'model': {unknown[0]!r} is not a model of the models table")
    eps = _numeric(samples.assign(min_eps=samples["min_eps"].replace({"inf": np.inf})), "min_eps", where, 0, None)
    eps = eps.fillna(np.inf).to_numpy(float)  # empty: never broken
    margin = _numeric(samples, "margin", where) if "margin" in samples else pd.Series(np.nan, index=samples.index)
    # A user's per-sample ε is exact (a minimization attack), not quantized to a grid: it is the
    # minimization source of the power law.
    return pd.DataFrame(
        {
            "trial": names.map(ids).to_numpy(int),
            "margin": margin.to_numpy(float),
            "min_adversarial_eps": eps,
            "broken": np.isfinite(eps),
            "minimization_min_eps": eps,
        }
    )


# inputs a claim cannot do without (claims not listed need only clean and robust accuracy)
CLAIM_NEEDS = {
    "size_adds_little": ("params",),
    "deeper_more_robust": ("params", "depth"),
    "power_law": ("samples",),
    "slope_matches_margin_tail": ("samples", "margin"),
    "universality": ("samples",),
    "margin_explains_slope": ("samples", "margin"),
    "robust_falls_with_memorization": ("label_noise", "train_accuracy"),
    "early_stop_preserves_robustness": ("label_noise",),
}


def skip_missing(findings: pd.DataFrame, have: set[str]) -> pd.DataFrame:
    """Findings whose inputs the table lacks: verdict "skipped", and the sentence says which input."""
    f = findings.copy()
    for i, r in f.iterrows():
        needs = r["needs"] if "needs" in f and isinstance(r["needs"], (list, tuple)) else CLAIM_NEEDS.get(r["key"], ())
        lacking = [n for n in needs if n not in have and not (n == "margin" and "samples" not in have)]
        if lacking:
            what = " and no ".join(
                "per-sample table (--samples)" if n == "samples" else f"{n!r} column" for n in lacking
            )
            f.loc[i, "verdict"] = "skipped"
            f.loc[i, "text"] = f"Skipped — {r['claim'][0].lower()}{r['claim'][1:]}: the input has no {what}."
    return f


def _have(models: pd.DataFrame, samples: pd.DataFrame | None) -> set[str]:
    have = {c for c in models.columns if models[c].notna().any()}
    if samples is not None:
        have |= {"samples"} | ({"margin"} if samples["margin"].notna().any() else set())
    return have


def _notes(models: pd.DataFrame, samples) -> list[str]:
    have = set(models.columns) | ({"samples"} if samples is not None else set())
    notes = [f"Skipped: {what}." for col, what in OPTIONAL.items() if col not in have]
    if "val_accuracy" not in have:
        notes.append(
            "No validation columns (val_accuracy, val_robust_accuracy@EPS): the Pareto front and best model "
            "are chosen on the test numbers they quote."
        )
    return notes


BOOT_REFERENCE_N = 1000  # up to this many models every bootstrap draws N_BOOT resamples, as always
MIN_BOOT = 200  # BCa's tails (2.5%) need a few resamples beyond them


def boot_size(n_models: int, n_boot: int = N_BOOT) -> int:
    """Resamples for bootstraps over `n_models` models: `n_boot` up to BOOT_REFERENCE_N models, then
    n_boot · BOOT_REFERENCE_N / n_models (at least MIN_BOOT).

    Why: a bootstrap percentile's Monte Carlo SE is ≈ 2.7 · SE / √B (normal bootstrap distribution, the
    2.5% quantile) and a correlation's SE ≈ (1 − ρ²)/√n, so ≈ 2.7 / √(n · B): keeping n · B at
    1 000 · 1 000 keeps the printed interval's Monte Carlo error at ≤ 0.003 (a third of a unit in the
    second printed decimal), what B = 1 000 gives at 1 000 models; more resamples would print digits
    the interval does not have, and cost B · n grows no further with n. At 15 625 models: B = 200,
    Monte Carlo SE ≤ 0.0015."""
    if n_models <= BOOT_REFERENCE_N:
        return n_boot
    return max(MIN_BOOT, min(n_boot, -(-n_boot * BOOT_REFERENCE_N // n_models)))


def analyze_table(
    models,
    samples=None,
    *,
    name: str | None = None,
    eps: float | None = None,
    claims: list[str] | None = None,
    n_boot: int | None = None,
    seed: int = 0,
    max_error: float = MAX_ERROR,
) -> Analysis:
    """The findings and every table of the report for results robustarch did not produce.

    `models` (DataFrame, .csv or .parquet; `#` lines in a CSV are comments), one row per model:
      - `clean_accuracy` (required): test accuracy, a fraction in [0, 1];
      - `robust_accuracy@EPS` (at least one): robust accuracy at ε = EPS (a number or a fraction,
        e.g. `robust_accuracy@8/255`), a fraction of all test samples, worst case over the attacks;
      - optional `model` (a unique name), `arch` (the architecture, shown in tooltips), `seed` (the
        training seed: rows sharing an `arch` and differing in `seed` are one architecture's seeds,
        giving the variance components, the ICC claim and the shrunken winner), `robust_accuracy_se`
        and `clean_accuracy_se` (each number's evaluation SE; else the binomial SE from `n_attacked`,
        the attacked sample count), `params`
        (parameter count), `flops` (FLOPs per input, 1 multiply-add = 2 FLOPs), `depth`, `width`,
        `val_accuracy` and `val_robust_accuracy@EPS` (validation numbers: the headline ε and the
        Pareto front are then chosen on them), `attacked_clean_accuracy` (clean accuracy on the
        attacked subset), `train_accuracy`, `lr`, `batch_size`, `epochs`, `max_steps`,
        `label_noise`, `train_fraction`. Other columns are ignored.
      - noise and independence (analysis.noise, docs/verdicts.md): `n_attacked` (test samples each
        model was evaluated on: binomial SEs of its accuracies), or the SEs themselves,
        `clean_accuracy_se` and `robust_accuracy_se@EPS` (or `robust_accuracy@EPS_se`; plain
        `robust_accuracy_se` with one ε); `family` (related models share a name: the tests then
        resample whole families, or say they cannot).
    `samples` (optional, same formats), one row per model × attacked clean-correct sample: `model`,
      `min_eps` (its minimal adversarial ε; empty or `inf`: never broken) and optional `margin`
      (top-1 minus runner-up logit).
    Claims and figures whose columns are missing are skipped; `Analysis.notes` says which and why.
    `eps`: the headline ε (default: analysis.headline's rule). `n_boot`: bootstrap resamples (default
    `boot_size`: 1 000, fewer above 1 000 models, as the printed digits allow). `claims`: the registry names to test
    (analysis.claims; default every claim, those without their columns skipped)."""
    where = str(models) if not isinstance(models, pd.DataFrame) else "models table"
    m = read_table(models, "models table")
    trials, robustness, val, ids = models_tables(m, where)
    s = None
    if samples is not None:
        s = samples_tables(
            read_table(samples, "samples table"),
            ids,
            str(samples) if not isinstance(samples, pd.DataFrame) else "samples table",
        )
    label = name or (Path(models).stem if not isinstance(models, pd.DataFrame) else "table")
    n_boot = boot_size(len(trials)) if n_boot is None else n_boot
    a = analyze_tables(
        trials,
        robustness,
        s,
        name=label,
        val_robustness=val,
        eps=eps,
        n_boot=n_boot,
        seed=seed,
        max_error=max_error,
        source="table",
        notes=_notes(m, s),
        attrs={"objective_eps": None, "robustarch_config": {"claims": _claims(claims)}, "n_boot": n_boot},
    )
    if "findings" in a.tables:
        a.tables["findings"] = skip_missing(a.tables["findings"], _have(m, s))
    return a


def _claims(names) -> list[str] | None:
    """The claim names checked against the registry (a one-line UserError names the known ones)."""
    return None if names is None else [c.key for c in resolve(list(names))]
