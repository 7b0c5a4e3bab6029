"""robustarch.analysis.wording: every finding's sentence, over verdict × direction × which test
rejected, says no more than its numbers — the verdict comes from analysis.verdicts on the same row,
and the numbers quoted in the sentence are parsed back and checked against the margin."""

from __future__ import annotations

import math
import re

import pytest

from robustarch.analysis.claims import CLAIMS
from robustarch.analysis.verdicts import holm_family, n_to_decide, verdict
from robustarch.analysis.wording import finding_text

BANNED = ("hence thinner", "least-squares", "no clear rise", "smaller half", "matters beyond", "family of")
NUM = r"(−?\d+\.\d+|−?∞)"


def _num(s: str) -> float:
    return float(s.replace("−", "-").replace("∞", "inf"))


def row(key: str, value: float, ci: tuple, p: float, **extra) -> dict:
    c = CLAIMS[key]
    r = {
        "key": key,
        "claim": c.title,
        "kind": c.kind,
        "statistic": "stat",
        "test": c.test,
        "n": 40,
        "value": value,
        "ci_low": ci[0],
        "ci_high": ci[1],
        "p_value": p,
        "p_holm": min(1.0, 3 * p),
        "family_m": 3,
        "direction": c.direction,
        "margin": c.margin,
        "margin_reason": c.margin_reason,
        "center": 0.0,
        "reason": None,
        **extra,
    }
    r["verdict"] = verdict(r)
    r["n_to_decide"] = n_to_decide(r) if r["verdict"] == "inconclusive" else math.nan
    return r


RELATIONS = [k for k, c in CLAIMS.items() if c.kind == "relation"]


@pytest.mark.parametrize("key", RELATIONS)
@pytest.mark.parametrize(
    "sign,p,expected",
    [(1, 0.001, "supported"), (-1, 0.001, "contradicted"), (1, 0.2, "inconclusive"), (-1, 0.2, "inconclusive")],
)
def test_relation_sentences_follow_sign_and_p(key, sign, p, expected):
    d = CLAIMS[key].direction
    v = 0.4 * sign * d
    r = row(key, v, (v - 0.3, v + 0.3), p, thinner=4, levels=2)
    assert r["verdict"] == expected
    text = finding_text(r)
    assert not any(b in text for b in BANNED)
    assert "Holm-adjusted over 3 claims" in text and "n = 40" in text
    quoted = _num(re.search(r"stat = " + NUM, text).group(1))
    assert quoted == pytest.approx(v, abs=0.005)
    if expected == "supported":
        assert "cannot be told" not in text and not text.startswith("Contradicted")
    elif expected == "contradicted":
        assert text.startswith("Contradicted:")
    else:
        assert "cannot be told" in text and re.search(r"n ≈ \d+", text)
    if key == "deeper_more_robust":  # "thinner" only with the count of pairs where it holds
        assert "in 4 of 40 pairs the deeper net is also the thinner one" in text


EQUIV = [k for k, c in CLAIMS.items() if c.kind == "equivalence"]


@pytest.mark.parametrize("key", EQUIV)
@pytest.mark.parametrize(
    "offset,half,expected",
    [(0.0, 0.05, "supported"), (0.6, 0.05, "contradicted"), (-0.6, 0.05, "contradicted"), (0.1, 0.4, "inconclusive")],
)
def test_equivalence_sentences_quote_a_90_ci_that_matches_the_verdict(key, offset, half, expected):
    m = CLAIMS[key].margin
    center = 1.0 if key == "margin_explains_slope" else 0.0
    v = center + offset * m / 0.3
    lo90, hi90 = v - half, v + half
    inside = center - m < lo90 and hi90 < center + m
    outside = hi90 < center - m or lo90 > center + m
    p_tost = 0.01 if inside else 0.3
    p_out = 0.01 if outside else 0.4
    r = row(key, v, (v - 1.2 * half, v + 1.2 * half), p_tost, p_outside=p_out, ci90=(lo90, hi90), center=center)
    r["p_holm"] = p_tost
    r["verdict"] = verdict(r)
    r["n_to_decide"] = n_to_decide(r) if r["verdict"] == "inconclusive" else math.nan
    assert r["verdict"] == expected
    text = finding_text(r)
    assert not any(b in text for b in BANNED)
    a, b = (_num(s) for s in re.search(r"90% CI \[" + NUM + r", " + NUM + r"\]", text).groups())
    if expected == "supported":  # the quoted interval and the equivalence test that decided
        assert center - m < a and b < center + m and "equivalence test p = 0.010" in text
        assert "inside the margin" not in text  # the exact test may decide with the 90% CI at the margin
    elif expected == "contradicted":
        assert (b < center - m or a > center + m) and "wholly outside" in text
    else:
        assert not (center - m < a and b < center + m) and "cannot be told" in text
    assert r["margin_reason"] in text
    if key == "slope_matches_margin_tail":
        assert "distribution shapes only" in text or expected != "supported"
        assert "margins up to each model's error share at ε_high" in text


def power_row(p_gof: float, bend: float, half: float) -> dict:
    gof = {"statistic": 45.0, "df": 40, "p_value": p_gof, "n_sim": 199}
    summary = {"tau": 0.1, "median": 1.5, "q1": 1.3, "q3": 1.7}
    h90 = 1.645 * half / 1.96
    flat = abs(bend) + h90 < 0.2
    return row(
        "power_law",
        1.5,
        (1.4, 1.6),
        p_gof,
        gof=gof,
        summary=summary,
        window=(0.001, 0.01),
        curvature=bend,
        curvature_ci=(bend - half, bend + half),
        curvature_ci90=(bend - h90, bend + h90),
        p_flat=0.01 if flat else 0.4,
        slope_low=1.5 - bend / 2,
        slope_high=1.5 + bend / 2,
    )


@pytest.mark.parametrize(
    "p_gof,bend,half,expected",
    [
        (0.3, 0.02, 0.05, "supported"),
        (0.3, -0.1, 0.4, "inconclusive"),
        (0.001, -0.5, 0.1, "contradicted"),
        (0.001, 0.5, 0.1, "contradicted"),
        (0.001, 0.05, 0.1, "contradicted"),
    ],
)
def test_power_law_sentences_name_the_test_and_the_bend(p_gof, bend, half, expected):
    r = power_row(p_gof, bend, half)
    assert r["verdict"] == expected
    text = finding_text(r)
    assert not any(b in text for b in BANNED)
    a, b = (_num(s) for s in re.search(r"local slope (?:falls|rises) from " + NUM + " to " + NUM, text).groups())
    assert ("falls" in text) == (b < a)  # the course of the slope is the one quoted
    c90 = re.search(r"90% CI \[" + NUM + ", " + NUM + r"\]", text)
    lo90, hi90 = (_num(s) for s in c90.groups()) if c90 else (math.nan, math.nan)
    if expected == "supported":
        assert text.startswith("Consistent with a power law in each model's own small-ε window") and abs(b - a) < 0.2
        assert -0.2 < lo90 and hi90 < 0.2  # the sentence and its interval agree
    elif expected == "contradicted":
        assert text.startswith("Not a single power law") and "curvature test rejected" in text
        assert "consistent with" not in text.lower()
    else:
        assert "Not rejected" in text and "cannot be shown small" in text and "Consistent" not in text
        assert lo90 <= -0.2 or hi90 >= 0.2
    assert "random-effects mean of the models' maximum-likelihood k" in text


@pytest.mark.parametrize(
    "p_q,p_below,expected", [(0.5, 0.02, "supported"), (0.001, 0.02, "contradicted"), (0.5, 0.3, "inconclusive")]
)
def test_universality_sentences(p_q, p_below, expected):
    s = {"i2": 0.2, "lr": 30.0, "lr_df": 39, "common_k": 1.5, "pi_low": 1.2, "pi_high": 1.8}
    upper = 0.08 if p_below <= 0.05 else 0.12  # the bound is calibrated to agree with the test
    r = row("universality", 0.03, (0.0, upper), p_q, tau_upper=upper, p_below=p_below, summary=s)
    assert r["verdict"] == expected
    text = finding_text(r)
    found = re.search(r"test of τ ≥ 0.1, parametric bootstrap: p = " + NUM, text)
    if expected == "contradicted":  # the homogeneity test decided: no claim about τ's size
        assert found is None
    else:
        quoted = _num(found.group(1))
        assert quoted == pytest.approx(p_below)
    if expected == "supported":
        assert quoted <= 0.05 and text.startswith("One k fits all models")
    elif expected == "contradicted":
        assert text.startswith("Contradicted: the models differ in k")
    else:
        assert quoted > 0.05 and "cannot be told" in text and "not shown below 0.1" in text


def test_a_skipped_claim_says_why_and_carries_no_number():
    r = row("size_adds_little", math.nan, (math.nan, math.nan), math.nan, reason="params is constant in the study")
    assert r["verdict"] == "inconclusive"
    assert finding_text(r) == (
        "Inconclusive — model size adds little once clean accuracy is known: params is constant in the study."
    )


@pytest.mark.parametrize("key", EQUIV)
def test_an_inconclusive_equivalence_outside_its_margin_names_the_n_that_would_contradict_it(key):
    """An estimate beyond the margin whose CI still straddles it: a larger n narrows the CI to wholly
    outside the margin, so the sentence must name that n (not say that no n would decide)."""
    m = CLAIMS[key].margin
    center = 1.0 if key == "margin_explains_slope" else 0.0
    v, half = center + 1.4 * m, 0.6 * m  # 90% CI [0.8 m, 2.0 m] from the center: across the margin
    r = row(key, v, (v - 1.2 * half, v + 1.2 * half), 0.8, p_outside=0.3, ci90=(v - half, v + half), center=center)
    r["p_holm"] = 0.8
    r["verdict"] = verdict(r)
    assert r["verdict"] == "inconclusive"
    n = n_to_decide(r)
    assert math.isfinite(n) and n > r["n"]
    assert f"n ≈ {int(n)} would give the test 80% power" in finding_text({**r, "n_to_decide": n})


def test_an_undecided_claim_never_names_an_n_below_the_one_it_has():
    """The size claim of cubuk2017-digits: rank partial 0.54, its test's 90% interval [0.30, 0.71]
    (skewed: Fisher z) just touching the margin 0.3 at n = 40. The bootstrap 95% CI alone implied
    n ≈ 32; the test's own interval, on the side facing the margin, gives the n of 80% power:
    40·(SE·(z_0.95 + z_0.8)/gap)² with SE = (0.538 − 0.300)/z_0.95 and gap 0.238, i.e. 40·(1 + z_0.8/z_0.95)²
    — not the n ≈ 41 at which the interval would just touch the margin (a coin flip)."""
    r = row("size_adds_little", 0.538, (0.201, 0.707), 0.949, p_outside=0.054, ci90=(0.300, 0.710))
    r["n"] = 40
    assert verdict(r) == "inconclusive"
    z90, z80 = 1.6448536, 0.8416212
    assert n_to_decide(r) == math.ceil(40 * (1 + z80 / z90) ** 2)


def test_a_large_bend_the_fit_test_did_not_reject_names_no_n():
    """A bend far beyond its margin can never be shown small: the sentence must not name an n that
    'would decide it' (only the goodness-of-fit test can, by rejecting)."""
    r = power_row(0.5, 1.14, 0.36)
    assert r["verdict"] == "inconclusive" and math.isnan(n_to_decide(r))
    text = finding_text({**r, "n_to_decide": n_to_decide(r)})
    assert "no n would show a bend this size within ±0.2" in text and "would decide it" not in text


def _in_family(r: dict, other_p: float) -> dict:
    """`r` in one Holm family with a second claim whose p is `other_p` (verdicts.holm_family), its
    verdict and sentence from the adjusted p-values."""
    rows = [r, row("robust_tracks_clean", 0.4, (0.1, 0.7), other_p)]
    holm_family(rows)
    r["verdict"] = verdict(r)
    r["n_to_decide"] = n_to_decide(r) if r["verdict"] == "inconclusive" else math.nan
    return r


@pytest.mark.parametrize("raw,adj,expected", [(0.01, 0.02, "supported"), (0.03, 0.06, "inconclusive")])
def test_power_law_sentences_quote_the_holm_adjusted_tost_that_decided(raw, adj, expected):
    """The bend's TOST (p_flat) is in the Holm family: the sentence quotes its adjusted p, and a 90%
    interval inside the margin whose TOST fails after Holm is said to be so, not called "not within"."""
    r = _in_family({**power_row(0.3, 0.02, 0.05), "p_flat": raw}, 0.04)
    assert r["holm"]["p_flat"] == pytest.approx(adj) and r["verdict"] == expected
    text = finding_text(r)
    lo90, hi90 = (_num(s) for s in re.search(r"90% CI \[" + NUM + ", " + NUM + r"\]", text).groups())
    assert -0.2 < lo90 and hi90 < 0.2  # the interval is inside the margin in both cases
    assert f"TOST p = {raw:.3f}, Holm-adjusted over 2 claims p = {adj:.3f}" in text
    if expected == "supported":
        assert text.startswith("Consistent with a power law")
    else:
        assert "not within" not in text and "does not hold after Holm's adjustment" in text


@pytest.mark.parametrize("raw,adj,expected", [(0.01, 0.02, "supported"), (0.03, 0.06, "inconclusive")])
def test_universality_sentences_quote_the_holm_adjusted_test_of_tau_below_the_margin(raw, adj, expected):
    s = {"i2": 0.2, "lr": 30.0, "lr_df": 39, "common_k": 1.5, "pi_low": 1.2, "pi_high": 1.8}
    r = _in_family(row("universality", 0.03, (0.0, 0.08), 0.5, tau_upper=0.08, p_below=raw, summary=s), 0.04)
    assert r["verdict"] == expected
    text = finding_text(r)
    assert f"parametric bootstrap: p = {raw:.3f}, Holm-adjusted over 2 claims p = {adj:.3f}" in text
    if expected == "inconclusive":  # the bound 0.08 < 0.1 is printed: the sentence says why it does not decide
        assert "upper bound 0.08 lies below 0.1" in text and "not shown below" not in text


@pytest.mark.parametrize("raw,adj,expected", [(0.01, 0.02, "contradicted"), (0.03, 0.06, "inconclusive")])
def test_a_contradicted_equivalence_quotes_the_holm_adjusted_p_of_lying_beyond_the_margin(raw, adj, expected):
    v = 0.6
    r = _in_family(row("size_adds_little", v, (0.4, 0.8), 0.9, p_outside=raw, ci90=(0.45, 0.75)), 0.04)
    assert r["verdict"] == expected
    text = finding_text(r)
    assert f"test of lying beyond the margin p = {raw:.3f}, Holm-adjusted over 2 claims p = {adj:.3f}" in text
    assert "wholly outside" in text and "neither inside" not in text


def test_an_undefined_corrected_estimate_is_said_so_not_compared_with_the_margin():
    """cubuk2017-digits of 2026-12-07: ρ(log10 params, clean) corrected for noise came out 1.04, so the
    disattenuated partial correlation is undefined; the sentence said its '90% CI [–, –] is neither inside
    the margin nor wholly outside it'."""
    r = row("size_adds_little", math.nan, (math.nan, math.nan), math.nan, p_outside=math.nan, ci90=(math.nan, math.nan))
    text = finding_text(r)
    assert "undefined" in text and "neither inside" not in text, text
