"""The report's plain-language summary: sentences whose every number comes from an `Analysis`.

A relation appears here only as the sentence of a finding (analysis.findings), worded from its
verdict; the other sentences describe the study, the chosen model and the rescored numbers.
"""

from __future__ import annotations

import math

import pandas as pd

from .analyzer import MIN_TRIALS_FOR_STATS, Analysis
from .phase import label, phase_axes
from .wording import f as _f
from .wording import g as _g

UNITS = {
    "depth": "per extra cell",
    "width": "per extra channel",
    "log10_params": "per tenfold parameters",
    "clean_accuracy": "per unit of clean accuracy",
}
NAMES = {
    "clean_accuracy": "clean accuracy",
    "log10_params": "log10 parameter count",
    "depth": "depth (cells)",
    "width": "width (channels)",
}


def sentences(a: Analysis) -> list[str]:
    """The summary, one sentence (or short paragraph) per item."""
    t = a.tables["trials"]
    out = [
        f"Study {a.study_name!s}: {a.n_total} trials, {a.n_complete} complete with attack results, "
        f"{int((t['state'] != 'COMPLETE').sum())} failed, pruned or unfinished."
    ]
    if a.n_flagged:
        how = (
            "included in the statistics because include-flagged was set"
            if a.include_flagged
            else "excluded from the statistics (pass --include-flagged, or include_flagged=True, to include them)"
        )
        out.append(
            f"{a.n_flagged} model(s) failed an attack sanity check and are {how}; only checks of severity "
            f'"invalid" exclude a model.'
        )
    warned = int(t["sanity_warnings"].fillna("").ne("").sum())
    if warned:
        out.append(f'{warned} model(s) failed a sanity check of severity "warning": marked, kept in the statistics.')
    if not a.enough:
        out.append(
            f"Too few complete trials for statistics: {a.n_used} usable, at least "
            f"{MIN_TRIALS_FOR_STATS} needed. Tables and plots below show the trials as they are."
        )
        return out
    if a.caveat:
        out.append(a.caveat)
    out += list(a.tables["findings"]["text"])
    for part in (_best, _rescore, _phase_diagram):
        out += part(a)
    return out


SHRUNKEN = "the shrunken estimate μ + reliability·(observed − μ) of each architecture's mean over its seeds"


def selection_text(a: Analysis) -> str:
    """How the best model and the Pareto front were chosen (the methods section says it too)."""
    on = f" on {SHRUNKEN}" if a.shrunken else ""
    if a.selection_split == "val":
        return f"chosen on the validation subset (robust and clean accuracy there){on}, quoted with test-split numbers"
    return (
        f"chosen on the test split itself{on}: this study stored no validation robust accuracy (studies "
        "stored before the validation split have none), so the chosen model's numbers are optimistic"
    )


def _best(a: Analysis) -> list[str]:
    best = a.best_trial
    if best is None:
        return []
    flagged = "of the models in the statistics " if a.n_flagged and not a.include_flagged else ""
    if a.shrunken:
        return [_best_architecture(a, flagged)]
    return [
        f"{len(a.tables['pareto_front'])} model(s) are Pareto-optimal for clean vs robust accuracy and the most "
        f"robust {flagged}is trial {int(best['trial'])} ({best['arch_summary']}), both {selection_text(a)}: "
        f"test robust accuracy {_f(best['robust_accuracy'], 3)} at test clean accuracy "
        f"{_f(best['clean_accuracy'], 3)}."
    ]


def _best_architecture(a: Analysis, flagged: str) -> str:
    """The winner and front on shrunken estimates (replicates): observed beside predicted, so the
    sentence quotes what a fresh seed of the chosen architecture is expected to give."""
    w = a.tables["winner"].iloc[0]
    split = "validation" if a.selection_split == "val" else "test"
    seeds = int(w["seeds"])
    return (
        f"{len(a.tables['pareto_front'])} architecture(s) are Pareto-optimal for clean vs robust accuracy and the "
        f"most robust architecture {flagged}is {w['arch_summary']} ({seeds} seed{'s' if seeds > 1 else ''}: trial(s) "
        f"{w['trials']}), both {selection_text(a)}: {split} robust accuracy {_f(w['val_observed'], 3)} observed, "
        f"{_f(w['val_predicted'], 3)} shrunken; test robust accuracy {_f(w['observed'], 3)} observed, "
        f"{_f(w['predicted'], 3)} ± {_f(2 * w['predicted_sd'], 3)} predicted on a fresh seed (the observed number "
        "of a winner overstates it: it was chosen for being high)."
    )


def _rescore(a: Analysis) -> list[str]:
    r = a.tables.get("rescore", pd.DataFrame())
    r = r[r["search_robust_accuracy"].notna() & r["eps"].apply(lambda e: math.isclose(e, a.eps))] if not r.empty else r
    if r.empty:
        return []
    invalid = r["sanity_invalid"].fillna("").ne("")
    note = (
        f" ({int(invalid.sum())} rescore(s) failed an invalid-severity sanity check and are left out of this sentence)"
        if invalid.any()
        else ""
    )
    r = r[~invalid]
    if r.empty:
        return ["Every rescore failed an invalid-severity sanity check: no drop is quoted; see the rescore table."]
    suites = ", ".join(sorted(set(r["suite"].dropna().astype(str))))
    spread = f" (median; range {_f(r['drop'].min(), 3)} to {_f(r['drop'].max(), 3)})" if len(r) > 1 else ""
    return [
        f"{len(r)} model(s) were re-attacked with the {suites} suite on the test split: at ε = {a.eps:g} their "
        f"robust accuracy drops by {_f(r['drop'].median(), 3)}{spread} from the search's numbers{note}; see "
        f"the rescore table."
    ]


def _phase_diagram(a: Analysis) -> list[str]:
    temperature, loads = phase_axes(a.used_trials)
    if a.tables["phase_diagram"].empty:
        return [
            "The training knobs of a phase diagram (a load: label noise or training fraction; a temperature: "
            "training length or lr/batch) did not both vary: no phase diagram."
        ]
    return [
        f"The phase diagram shows clean test accuracy, generalization gap and robust accuracy over "
        f"{' and '.join(label(k) for k in loads)} × {label(temperature)}; it describes the cells and tests "
        f"nothing."
    ]


def ols_sentence(a: Analysis) -> str | None:
    """The linear fit in words: which predictors are held fixed for each coefficient, and which
    were dropped (constant or collinear)."""
    coef, fit = a.tables.get("ols_coefficients", pd.DataFrame()), a.fits.get("ols", {})
    if coef.empty or not math.isfinite(fit.get("r2", math.nan)):
        return None
    c = coef.set_index("term")
    used = [t for t in c.index if t != "intercept"]
    terms = []
    for term in used:
        others = [NAMES.get(o, o) for o in used if o != term]
        fixed = f"{', '.join(others)} held fixed" if others else "nothing else held fixed"
        terms.append(
            f"{NAMES.get(term, term)}: {_g(c.loc[term, 'coef'])} {UNITS.get(term, '')} "
            f"[{_g(c.loc[term, 'ci_low'])}, {_g(c.loc[term, 'ci_high'])}], VIF {_f(c.loc[term, 'vif'], 1)}, "
            f"with {fixed}"
        )
    s = (
        f"Linear fit robust accuracy ~ {' + '.join(NAMES.get(t, t) for t in used)}: R² = {_f(fit['r2'])} "
        f"(n = {fit['n']}). " + "; ".join(terms) + "."
    )
    if fit.get("dropped"):
        s += f" Dropped before fitting: {fit['dropped']}."
    return s
