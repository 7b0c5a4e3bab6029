"""How numbers and findings read in the report: number formats and the sentence of each finding,
worded from its verdict so that no sentence claims more than its test supports.
"""
from __future__ import annotations

import math


def f(v, d=2) -> str:
    """A number with `d` decimals and a true minus sign; – when missing."""
    return "–" if v is None or not math.isfinite(v) else f"{v:.{d}f}".replace("-", "−")


def g(v) -> str:
    """A coefficient of any size: three significant digits."""
    return "–" if v is None or not math.isfinite(v) else f"{v:.3g}".replace("-", "−")


def p(value) -> str:
    if value is None or not math.isfinite(value):
        return "p = –"
    return "p < 0.001" if value < 0.001 else f"p = {value:.3f}"


def ci(row) -> str:
    return f"[{f(row['ci_low'])}, {f(row['ci_high'])}]"


def _numbers(r: dict) -> str:
    return (f"{r['statistic']} = {f(r['value'])} {ci(r)}, n = {int(r['n'])}, {p(r['p_value'])}, "
            f"Holm-adjusted {p(r['p_holm'])}")


def _tracks(r: dict) -> str:
    if r["conditional"]:
        head = {"supported": "Conditional on being clean-correct, the share of samples that survive the attack "
                             "(robust / clean accuracy) rises with clean accuracy",
                "not supported": "Conditional on being clean-correct, the share of samples that survive the attack "
                                 "(robust / clean accuracy) shows no clear rise with clean accuracy"}
        tail = "; this conditional form is free of the mechanical link (a sample must be clean-correct to be robust)"
    else:
        head = {"supported": "Robust accuracy rises with clean accuracy",
                "not supported": "Robust accuracy shows no clear rise with clean accuracy"}
        tail = ("; part of this relation is mechanical, since robust accuracy can never exceed clean accuracy "
                "(see the conditional finding)")
    return head[r["verdict"]] + f" ({_numbers(r)})" + tail + "."


def _size(r: dict) -> str:
    m = r["margin"]
    head = {"supported": f"Once clean accuracy is known, model size adds little: the partial correlation of robust "
                         f"accuracy with log10 parameters lies within ±{m:g}",
            "not supported": "Model size matters beyond clean accuracy: the partial correlation of robust accuracy "
                             "with log10 parameters differs from zero",
            "inconclusive": f"Whether model size adds to clean accuracy cannot be told: the interval of the partial "
                            f"correlation is not within ±{m:g}, nor is it clearly away from zero"}
    return head[r["verdict"]] + f" ({_numbers(r)}; clean accuracy held fixed)."


def _power(r: dict) -> str:
    lo, hi = r["window"]
    where = f"on {lo:.3g} ≤ ε ≤ {hi:.3g}, the window shared by all models, from {'; '.join(r['sources'])}"
    if r["verdict"] == "supported":
        return (f"At small ε the adversarial error follows a power law ε^k: the fits pass the goodness-of-fit tests "
                f"(p = {f(r['p_value'], 3)}) {where}; pooled k = {f(r['value'])} {ci(r)} over {int(r['n'])} models.")
    bend = ("curvature in log–log: the error rises faster than any single power of ε (the local slope grows "
            "with ε)" if r["median_curvature"] > 0 else
            "curvature in log–log: the local slope falls as ε grows, so no single power fits")
    return (f"The error is not a single power of ε {where}: {bend} ({r['test']}, {p(r['p_value'])}); a "
            f"least-squares k would be {f(r['value'])} {ci(r)} over {int(r['n'])} models, as a summary only.")


def _margin(r: dict) -> str:
    m = r["margin"]
    head = {"supported": f"The power-law slope matches the exponent of the small-margin tail within ±{m:g}",
            "not supported": "The power-law slope differs from the exponent of the small-margin tail",
            "inconclusive": f"Whether the slope matches the small-margin tail exponent cannot be told: the "
                            f"interval is not within ±{m:g}, nor clearly away from zero"}
    return head[r["verdict"]] + f" ({_numbers(r)})."


def _depth(r: dict) -> str:
    head = {"supported": "At matched parameter count, deeper (hence thinner) nets are more robust",
            "not supported": "At matched parameter count, deeper (hence thinner) nets are not clearly more robust"}
    return head[r["verdict"]] + f" ({_numbers(r)}; pairs of models whose parameter counts differ by ≤ 25%)."


def finding_text(r: dict) -> str:
    """The sentence of one finding row (see findings.findings_table)."""
    if r["verdict"] == "inconclusive" and r["reason"]:
        return f"Inconclusive — {r['claim'].lower()}: {r['reason']}."
    return {"robust_tracks_clean": _tracks, "conditional_tracks_clean": _tracks, "size_adds_little": _size,
            "power_law": _power, "slope_matches_margin_tail": _margin, "deeper_more_robust": _depth}[r["key"]](r)
