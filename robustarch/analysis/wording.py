"""How numbers and findings read in the report: number formats and the sentence of each finding,
generated from its verdict and statistic so that no sentence claims more than its test supports
(tests/test_wording.py checks every verdict × direction × rejecting test).
"""

from __future__ import annotations

import math

from .verdicts import adjusted


def f(v, d=2) -> str:
    """A number with `d` decimals and a true minus sign; – when missing."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if math.isinf(v):
        return "∞" if v > 0 else "−∞"
    return f"{v:.{d}f}".replace("-", "−")


def g(v) -> str:
    """A coefficient of any size: three significant digits."""
    return "–" if v is None or not math.isfinite(v) else f"{v:.3g}".replace("-", "−")


def p(value) -> str:
    if value is None or not math.isfinite(value):
        return "p = –"
    return "p < 0.001" if value < 0.001 else f"p = {value:.3f}"


def ci(row, low="ci_low", high="ci_high") -> str:
    return f"[{f(row[low])}, {f(row[high])}]"


def family(r: dict) -> str:
    """The Holm family: its tests, and the claims they belong to where that differs."""
    m, k = r["family_m"], r.get("family_claims", r["family_m"])
    return f"{m} claims" if k == m or k is None else f"{m} tests of {k} claims"


def _noise(r: dict) -> str:
    """Measurement noise and related models, where the row has them."""
    bits = []
    rel = [(name, r.get(f"reliability_{name}")) for name in ("robust", "clean")]
    rel = [(name, v) for name, v in rel if isinstance(v, float) and math.isfinite(v)]
    if rel:
        bits.append("reliability across models " + ", ".join(f"{name} accuracy {f(v)}" for name, v in rel))
    if r.get("correction_text"):  # analysis.attenuation: raw → corrected, and what that did to the verdict
        bits.append(r["correction_text"])
    elif isinstance(r.get("value_observed"), float) and rel:
        bits.append(f"observed (attenuated) value {f(r['value_observed'])}")
    if r.get("families"):
        bits.append(f"cluster bootstrap over {int(r['families'])} families of related models")
    return "; " + "; ".join(bits) if bits else ""


def _numbers(r: dict) -> str:
    return (
        f"{r['statistic']} = {f(r['value'])}, 95% CI {ci(r)}, n = {int(r['n'])}, {p(r['p_value'])}, "
        f"Holm-adjusted over {family(r)} {p(r['p_holm'])}{_noise(r)}"
    )


def _path(r: dict, key: str, test: str) -> str:
    """The test of one verdict path with its raw and its Holm-adjusted p: the adjusted p is the one
    that decided (analysis.verdicts.verdict)."""
    return f"{test} {p(r.get(key, math.nan))}, Holm-adjusted over {family(r)} {p(adjusted(r, key))}"


def _decide(r: dict) -> str:
    n = r.get("n_to_decide", math.nan)
    if n is None or not math.isfinite(n):
        return "at this estimate no larger n would decide it"
    return f"were the estimate the truth, n ≈ {int(n)} would give the test 80% power"


# (claimed phrase, opposite phrase, subject of "whether ...") of each relation
RELATIONS = {
    "architecture_explains_robust": (
        "Architecture explains most of the variance in robust accuracy (ICC above 0.5)",
        "Architecture explains less than half of the variance in robust accuracy; the "
        "rest is training seed and finite test sample",
        "architecture explains most of the variance in robust accuracy",
    ),
    "robust_tracks_clean": (
        "Robust accuracy rises with clean accuracy",
        "Robust accuracy falls as clean accuracy rises",
        "robust accuracy rises with clean accuracy",
    ),
    "conditional_tracks_clean": (
        "Among clean-correct samples, the share that survives the attack (robust / clean "
        "accuracy) rises with clean accuracy",
        "Among clean-correct samples, the share that survives the attack falls as clean accuracy rises",
        "the share of clean-correct samples that survive rises with clean accuracy",
    ),
    "deeper_more_robust": (
        "At matched parameter count and clean accuracy, deeper nets are more robust",
        "At matched parameter count and clean accuracy, shallower nets are more robust",
        "deeper nets are more robust at matched parameter count and clean accuracy",
    ),
    "robust_falls_with_memorization": (
        "At fixed label noise, robust accuracy falls as the generalization gap grows",
        "At fixed label noise, robust accuracy rises with the generalization gap",
        "robust accuracy falls as the generalization gap grows at fixed label noise",
    ),
    "early_stop_preserves_robustness": (
        "Under label noise, a higher temperature (earlier stopping) goes with higher robust accuracy",
        "Under label noise, a higher temperature (earlier stopping) goes with lower robust accuracy",
        "stopping early keeps robust accuracy higher under label noise",
    ),
}
TAILS = {
    "robust_tracks_clean": "; part of this relation is mechanical, since robust accuracy can never exceed clean "
    "accuracy (see the conditional finding)",
    "architecture_explains_robust": "; n counts architectures, and the test is of ICC = 0.5, the margin",
    "conditional_tracks_clean": "; this conditional form is free of the mechanical link (a sample must be "
    "clean-correct to be robust)",
}


def _relation(r: dict) -> str:
    claimed, opposite, subject = RELATIONS[r["key"]]
    v = r["verdict"]
    if v == "supported":
        head = claimed
    elif v == "contradicted":
        head = f"Contradicted: {opposite[0].lower()}{opposite[1:]}"
    else:
        head = (
            f"Whether {subject} cannot be told: the estimate is not significantly different from "
            f"{'zero' if not r.get('center') else f(r['center'])} "
            f"({_decide(r)})"
        )
    tail = TAILS.get(r["key"], "")
    if r["key"] == "deeper_more_robust" and "thinner" in r:
        tail = (
            f"; in {int(r['thinner'])} of {int(r['n'])} pairs the deeper net is also the thinner one; pairs "
            f"differ in parameters by ≤ ×1.25 and in clean accuracy by ≤ 0.02"
        )
    if r.get("levels"):
        tail += f"; {int(r['levels'])} label-noise level(s) > 0, each held fixed"
    return f"{head} ({_numbers(r)}){tail}."


# (what is inside the margin, what is outside it, what "cannot be told")
EQUIVALENCES = {
    "size_adds_little": (
        "Once clean accuracy is known, model size adds little: the rank partial correlation of "
        "robust accuracy with log10 parameters lies within ±{m:g}",
        "Model size adds to robustness beyond clean accuracy by more than the margin: the rank "
        "partial correlation of robust accuracy with log10 parameters lies beyond ±{m:g}",
        "whether model size adds little to robustness once clean accuracy is known",
    ),
    "margin_explains_slope": (
        "Each sample's minimal ε is about proportional to its logit margin: the models' mean "
        "within-model slope of log ε on log margin lies within 1 ± {m:g}",
        "Minimal ε is not proportional to the logit margin: the models' mean within-model slope of "
        "log ε on log margin lies outside 1 ± {m:g}",
        "whether minimal ε is proportional to the logit margin",
    ),
    "slope_matches_margin_tail": (
        "The power-law slope matches the exponent of the small-margin tail within ±{m:g} "
        "(a match of distribution shapes only; the margin-link finding tests the "
        "per-sample link)",
        "The power-law slope differs from the exponent of the small-margin tail by more than ±{m:g}",
        "whether the power-law slope matches the small-margin tail exponent",
    ),
}


def _equivalence(r: dict) -> str:
    inside, outside, subject = (s.format(m=r["margin"]) for s in EQUIVALENCES[r["key"]])
    c90 = r.get("ci90", (math.nan, math.nan))
    band = f"90% CI [{f(c90[0])}, {f(c90[1])}]"
    lo, hi = r.get("center", 0.0) - r["margin"], r.get("center", 0.0) + r["margin"]
    whether = f"Whether {subject[len('whether ') :]} cannot be told"
    beyond = _path(r, "p_outside", "test of lying beyond the margin")
    if r["verdict"] == "supported":
        head = f"{inside} ({_path(r, 'p_value', 'equivalence test')}; {band})"
    elif r["verdict"] == "contradicted":
        head = f"Contradicted: {outside[0].lower()}{outside[1:]} ({band} wholly outside the margin; {beyond})"
    elif r.get("no_support"):
        head = f"{whether}: {r['no_support']} ({band})"
    elif not (math.isfinite(c90[0]) and math.isfinite(c90[1])):  # e.g. the noise correction is undefined
        head = f"{whether}: its estimate is undefined here, so there is no interval to compare with the margin"
    elif lo < c90[0] and c90[1] < hi:  # inside at 90%, but not at the level Holm asks of this claim
        head = (
            f"{whether}: the {band} lies inside the margin ±{r['margin']:g}, but the equivalence test does not "
            f"hold after Holm's adjustment ({_path(r, 'p_value', 'equivalence test')}; {_decide(r)})"
        )
    elif c90[1] < lo or c90[0] > hi:  # wholly outside at 90%, but not at Holm's level
        head = (
            f"{whether}: the {band} lies wholly outside the margin ±{r['margin']:g}, but the test of lying "
            f"beyond it does not hold after Holm's adjustment ({beyond}; {_decide(r)})"
        )
    else:
        head = (
            f"{whether}: the {band} is neither inside the margin ±{r['margin']:g} nor wholly outside it ({_decide(r)})"
        )
    extra = (
        "; tail exponents fitted on margins up to each model's error share at ε_high"
        if r["key"] == "slope_matches_margin_tail"
        else ""
    )
    return f"{head} ({_numbers(r)}; margin: {r['margin_reason']}){extra}."


def _power(r: dict) -> str:
    lo, hi = r["window"]
    gof, s = r["gof"], r["summary"]
    where = f"in each model's own small-ε window (ε from {lo:.3g} to {hi:.3g})"
    bend = r["curvature"]
    course = "falls" if bend < 0 else "rises"
    slope_course = (
        f"local slope {course} from {f(r['slope_low'])} to {f(r['slope_high'])} across the window "
        f"(pooled change {f(bend)}, 95% CI [{f(r['curvature_ci'][0])}, {f(r['curvature_ci'][1])}])"
    )
    k = (
        f"random-effects mean of the models' maximum-likelihood k = {f(r['value'])} {ci(r)}, "
        f"τ = {f(s['tau'])}, per-model median k {f(s['median'])} (IQR {f(s['q1'])}–{f(s['q3'])}), "
        f"n = {int(r['n'])} models"
    )
    test = (
        f"score test of curvature summed over models, Σz² = {f(gof['statistic'], 1)} on {gof['df']} models, "
        f"parametric-bootstrap {p(r['p_value'])}, Holm-adjusted over {family(r)} {p(r['p_holm'])}"
    )
    c90 = r.get("curvature_ci90", (math.nan, math.nan))
    band = f"90% CI [{f(c90[0])}, {f(c90[1])}]"
    flat = _path(r, "p_flat", "TOST")
    if r["verdict"] == "supported":
        return (
            f"Consistent with a power law {where}: not rejected ({test}), and the bend is shown small: the "
            f"{slope_course}, {band} within ±{r['margin']:g} ({flat}); {k}."
        )
    if r["verdict"] == "contradicted":
        return (
            f"Not a single power law {where}: the curvature test rejected ({test}); curvature: the "
            f"{slope_course}; {k}, as a summary only."
        )
    if -r["margin"] < c90[0] and c90[1] < r["margin"]:  # inside at 90%, not at the level Holm asks
        return (
            f"Not rejected as a power law {where} ({test}), but the bend cannot be shown small: the {slope_course}, "
            f"{band} within ±{r['margin']:g}, but its TOST does not hold after Holm's adjustment ({flat}; "
            f"{_decide(r)}); {k}."
        )
    why = (
        f"no n would show a bend this size within ±{r['margin']:g}; only the goodness-of-fit test can decide, "
        "and at this n it did not reject"
        if abs(bend) >= r["margin"]
        else _decide(r)
    )
    return (
        f"Not rejected as a power law {where} ({test}), but the bend cannot be shown small: the {slope_course}, "
        f"{band} not within ±{r['margin']:g} ({flat}; {why}); {k}."
    )


def _universality(r: dict) -> str:
    s = r["summary"]
    numbers = (
        f"gamma-frailty τ̂ = {f(r['value'])} with bootstrap-calibrated 95% upper bound {f(r['tau_upper'])}; "
        f"likelihood ratio of one k = {f(s['common_k'])} against one k per model {f(s['lr'], 1)} on "
        f"{int(s['lr_df'])} df, parametric-bootstrap {p(r['p_value'])}, Holm-adjusted over {r['family_m']} "
        f"claims {p(r['p_holm'])}; I² = {f(s['i2'])}, 95% prediction interval for a new model's k "
        f"[{f(s['pi_low'])}, {f(s['pi_high'])}]; n = {int(r['n'])} models"
    )
    below = _path(r, "p_below", f"profile-likelihood test of τ ≥ {r['margin']:g}, parametric bootstrap:")
    if r["verdict"] == "supported":
        return f"One k fits all models: the between-model SD τ is below {r['margin']:g} ({below}; {numbers})."
    if r["verdict"] == "contradicted":
        return f"Contradicted: the models differ in k beyond their fitting noise ({numbers})."
    if r["tau_upper"] < r["margin"]:  # below at 95% (raw p ≤ α), not at the level Holm asks of this claim
        return (
            f"Whether one k fits all models cannot be told: homogeneity is not rejected, and τ's 95% upper bound "
            f"{f(r['tau_upper'])} lies below {r['margin']:g}, but the test of τ ≥ {r['margin']:g} does not hold "
            f"after Holm's adjustment ({below}; {numbers})."
        )
    return (
        f"Whether one k fits all models cannot be told: homogeneity is not rejected, but τ is not shown below "
        f"{r['margin']:g} ({below}; {numbers})."
    )


def finding_text(r: dict) -> str:
    """The sentence of one finding row (see findings.findings_rows)."""
    if r["reason"]:
        return f"Inconclusive — {r['claim'][0].lower()}{r['claim'][1:]}: {r['reason']}."
    if r["key"] == "power_law":
        return _power(r)
    if r["key"] == "universality":
        return _universality(r)
    return _equivalence(r) if r["kind"] == "equivalence" else _relation(r)
