"""robustarch.analysis.verdicts and the claims' decision rules: equivalence by TOST / interval
inclusion (the sentence's interval and the verdict agree), one Holm family over every verdict path,
and the n of 80% power."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import robustarch
from robustarch.analysis.claims import CLAIMS
from robustarch.analysis.findings import findings_rows
from robustarch.analysis.powerlaw import COLUMNS as POWER_COLUMNS
from robustarch.analysis.verdicts import holm, holm_family, min_n_for_equivalence, tost, verdict


def test_tost_supports_only_when_the_90_interval_lies_inside_the_margin():
    """The issue's case: r = 0.056 at n = 40, margin ±0.3 on Fisher's z. The known-variance test
    (EQNORM) gave p = 0.050 ("supported") while the 90% interval [−0.22, 0.32] crosses the margin."""
    z, se, m = math.atanh(0.056), math.sqrt((1 + 0.056**2 / 2) / 36), math.atanh(0.3)
    t = tost(z, se, -m, m)
    assert t["ci90"][1] > m and t["p_tost"] > 0.05  # crosses the margin: not supported
    rng = np.random.default_rng(0)
    for est, s in zip(rng.uniform(-0.5, 0.5, 400), rng.uniform(0.02, 0.4, 400)):
        t = tost(est, s, -m, m)
        inside = -m < t["ci90"][0] and t["ci90"][1] < m
        assert (t["p_tost"] <= 0.05) == inside  # interval inclusion, exactly


def test_the_size_claim_is_not_supported_when_its_interval_crosses_the_margin():
    """A study of 40 models with exact numbers (SE 0) whose rank partial correlation is small but
    whose t-based 90% interval still reaches past 0.3: inconclusive, and the sentence quotes that
    interval."""
    rng = np.random.default_rng(4)
    for _ in range(200):  # a draw whose estimate sits near 0 with n = 40
        clean = rng.uniform(0.8, 0.99, 40)
        size = 4 + 2 * rng.random(40)
        robust = 0.5 * clean + 0.05 * rng.normal(size=40)
        u = pd.DataFrame(
            {
                "trial": range(40),
                "clean_accuracy": clean,
                "robust_accuracy": robust,
                "log10_params": size,
                "params": 10**size,
                "clean_accuracy_se": 0.0,
                "robust_accuracy_se": 0.0,
            }
        )
        r = findings_rows(u, pd.DataFrame(columns=POWER_COLUMNS), claims=["size_adds_little"], n_boot=200)[0]
        if abs(r["value"]) < 0.1:
            break
    assert r["ci90"][1] > 0.3 or r["ci90"][0] < -0.3
    assert r["verdict"] != "supported"
    assert "90% CI" in r["text"] and "cannot be told" in r["text"]


def test_min_n_is_where_a_zero_estimate_can_first_be_supported():
    n = min_n_for_equivalence(0.3)
    assert CLAIMS["size_adds_little"].min_n == n
    fits = [stats.t.ppf(0.95, k - 3) / math.sqrt(k - 4) < math.atanh(0.3) for k in (n - 1, n)]
    assert fits == [False, True]


def _row(key, p, **extra):
    c = CLAIMS[key]
    return {
        "key": key,
        "claim": c.title,
        "kind": c.kind,
        "value": 0.5,
        "direction": c.direction,
        "margin": c.margin,
        "p_value": p,
        "reason": None,
        "center": 0.0,
        **extra,
    }


def test_the_holm_family_holds_the_supported_paths_too():
    """Universality's "supported" path (p_below) sat outside the family: with a second claim in it,
    p_below = 0.04 said "supported" on its raw value. In one family of two claims it is adjusted."""
    rows = [_row("universality", 0.5, p_below=0.04), _row("robust_tracks_clean", 0.03)]
    holm_family(rows)
    assert rows[0]["holm"]["p_below"] == pytest.approx(holm([0.04, 0.03])[0])  # 0.06
    assert verdict(rows[0]) == "inconclusive" and rows[0]["family_m"] == 2
    alone = [_row("universality", 0.5, p_below=0.04)]
    holm_family(alone)
    assert verdict(alone[0]) == "supported"  # a family of one: the raw p
    eq = [_row("size_adds_little", 0.04, p_outside=0.9), _row("robust_tracks_clean", 0.03)]
    holm_family(eq)
    assert verdict(eq[0]) == "inconclusive" and eq[0]["holm"]["p_value"] == pytest.approx(0.06)


def test_an_undecided_claim_names_the_n_of_80_percent_power_not_a_coin_flip():
    from robustarch.analysis.verdicts import n_to_decide

    r = {**_row("robust_tracks_clean", 0.2), "value": 0.2, "ci_low": -0.1, "ci_high": 0.5, "n": 40}
    se = 0.6 / (2 * stats.norm.ppf(0.975))
    expected = math.ceil(40 * (se * (stats.norm.ppf(0.975) + stats.norm.ppf(0.8)) / 0.2) ** 2)
    assert n_to_decide(r) == expected


def test_robustbench_table_with_families_gives_verdicts_and_the_family_caveat():
    a = robustarch.analyze_table("tests/data/robustbench_cifar10_linf_families.csv", n_boot=300)
    f = a.tables["findings"].set_index("key")
    assert "families of related models" in a.caveat
    tracks = f.loc["robust_tracks_clean"]
    assert tracks["families"] >= 20 and "cluster bootstrap" in tracks["text"]
    assert f.loc["robust_tracks_clean", "verdict"] in ("supported", "inconclusive")
    assert np.isfinite(f.loc["robust_tracks_clean", "reliability_robust"])  # from n_attacked
    plain = robustarch.analyze_table("tests/data/robustbench_cifar10_linf.csv", n_boot=100)
    assert "does not say which models are related" in plain.caveat
