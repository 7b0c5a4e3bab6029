"""Correlations corrected for attenuation (analysis.attenuation): the corrected value and its bootstrap
interval on constructed cases with known reliability, a corrected value beyond ±1 flagged and shown,
the verdict on raw and corrected numbers; and the winner and Pareto front chosen on shrunken estimates."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from robustarch.analysis.attenuation import OUT_OF_RANGE, corrected_correlation, interval
from robustarch.analysis.components import per_architecture
from robustarch.analysis.findings import findings_rows
from robustarch.analysis.jointnoise import EVAL_COV, eval_covariance, joint_error
from robustarch.analysis.stats import Resampler

NO_POWER = pd.DataFrame()


def _pair(
    n_arch: int,
    r: float,
    seeds,
    *,
    seed_sd: float = 0.0,
    se: tuple[float, float] = (0.0, 0.0),
    seed=0,
    seed_corr: float = 0.0,
    eval_corr: float = 0.0,
):
    """Models of `n_arch` architectures whose true (robust, clean) numbers have Pearson r = `r` (unit
    variance), each model measured with a training-seed error (SD `seed_sd`, the two numbers' seed
    errors correlated `seed_corr`) and an evaluation error whose SE is stated in the table (`se`,
    robust and clean; correlated `eval_corr`, its covariance stated in the `EVAL_COV` column)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(2, n_arch))
    truth = np.vstack([z[0], r * z[0] + math.sqrt(1 - r * r) * z[1]])
    g = np.repeat(np.arange(n_arch), seeds)
    s, e = rng.normal(size=(2, len(g))), rng.normal(size=(2, len(g)))
    s[1] = seed_corr * s[0] + math.sqrt(1 - seed_corr**2) * s[1]
    e[1] = eval_corr * e[0] + math.sqrt(1 - eval_corr**2) * e[1]
    cols = {}
    for i, name in enumerate(("robust_accuracy", "clean_accuracy")):
        cols |= {name: truth[i][g] + seed_sd * s[i] + se[i] * e[i], f"{name}_se": np.full(len(g), se[i])}
    cols[EVAL_COV] = np.full(len(g), eval_corr * se[0] * se[1])
    return pd.DataFrame({"trial": np.arange(len(g)), "arch_key": [f"a{a}" for a in g], **cols})


def test_the_correction_recovers_a_correlation_of_known_reliability():
    """Evaluation noise only, stated in the SE columns: reliability 1/(1 + 1) = 0.5 for robust and
    1/(1 + 0.25) = 0.8 for clean accuracy, so a true r of 0.6 is seen as 0.6·√0.4 ≈ 0.38."""
    u = _pair(4000, 0.6, 1, se=(1.0, 0.5))
    x, y = u["robust_accuracy"].to_numpy(), u["clean_accuracy"].to_numpy()
    res = Resampler(len(u), 300, 0)
    raw = float(np.corrcoef(x, y)[0, 1])
    fix = corrected_correlation(x, y, joint_error(u), res, raw, "pearson")
    assert raw == pytest.approx(0.6 * math.sqrt(0.4), abs=0.03)
    assert fix["rel"] == pytest.approx([0.5, 0.8], abs=0.03)
    assert fix["value_corrected"] == pytest.approx(0.6, abs=0.04)
    lo, hi = fix["ci_corrected"]
    assert lo < 0.6 < hi and raw < lo  # the interval is for the corrected value, not the attenuated one
    assert fix["corrected_flag"] is None and fix["corrected_undefined_share"] == 0


def test_the_seed_variance_in_the_correction_is_estimated_from_the_replicates():
    """Training-seed noise only (SD 1 against an architecture SD of 1), a quarter of the architectures
    with 3 seeds: an architecture's mean has reliability 1/(1 + 1/k), across the study
    1/(1 + ¼·⅓ + ¾) ≈ 0.545 for both numbers; the claim's corrected ρ is near the true rank correlation
    (6/π)·asin(0.7/2) and its interval, re-estimating the seed variance in every resample, covers it."""
    seeds = np.where(np.arange(2000) < 500, 3, 1)
    u = _pair(2000, 0.7, seeds, seed_sd=1.0, seed=1)
    row = findings_rows(u, NO_POWER, claims=["robust_tracks_clean"], n_boot=300)[0]
    assert row["reliability_robust"] == pytest.approx(1 / (1 + 1 / 12 + 0.75), abs=0.04)
    assert row["reliability_clean"] == pytest.approx(1 / (1 + 1 / 12 + 0.75), abs=0.04)
    true = 6 / math.pi * math.asin(0.35)
    assert row["value"] < true - 0.2  # the raw ρ is attenuated
    assert row["value_corrected"] == pytest.approx(true, abs=0.05)
    lo, hi = row["ci_corrected"]
    assert lo < true < hi and hi - lo > row["ci_high"] - row["ci_low"]
    # a relation's verdict comes from the test of ρ = 0, which the correction cannot move
    assert row["verdict_raw"] == row["verdict_corrected"] == row["verdict"] == "supported"
    assert "→ corrected for noise" in row["text"] and "verdict supported on both" in row["text"]
    arch = per_architecture(u)
    seed_variance = lambda counts: joint_error(arch).seed_covariance(counts)[:, 0]  # robust's σ²_seed
    assert seed_variance(np.ones((1, len(arch))))[0] == pytest.approx(1.0, abs=0.1)
    draws = Resampler(len(arch), 50, 0).counts
    assert np.ptp(seed_variance(draws)) > 0  # re-estimated, not fixed, in each resample


def test_a_corrected_value_beyond_one_is_flagged_and_shown():
    """The SE columns claim far more noise than there is (SE 0.7 on numbers measured exactly): the
    correction divides a raw ρ near 0.94 by √(R·R) ≈ 0.5 and gives about 1.9, which is shown and
    flagged, neither clipped to 1 nor dropped."""
    u = _pair(200, 0.95, 1, seed=2).assign(robust_accuracy_se=0.7, clean_accuracy_se=0.7)
    row = findings_rows(u, NO_POWER, claims=["robust_tracks_clean"], n_boot=200)[0]
    assert row["value_corrected"] > 1.2 and math.isfinite(row["value_corrected"])
    assert row["corrected_flag"] == OUT_OF_RANGE
    assert "flagged: beyond ±1" in row["text"] and row["ci_corrected"][1] > 1
    rows = findings_rows(
        u.assign(log10_params=np.random.default_rng(0).normal(size=len(u)), params=1.0),
        NO_POWER,
        claims=["robust_tracks_clean", "size_adds_little"],
        n_boot=100,
    )
    size = rows[1]
    assert math.isnan(size["value"]) and "beyond ±1" in size["corrected_flag"]  # the partial has no value
    assert "corrected = " in size["corrected_flag"]  # the pairwise value beyond ±1 is named


def test_undefined_resamples_open_the_interval_instead_of_vanishing():
    finite = np.linspace(0.1, 0.5, 950)
    assert interval(np.r_[finite, np.full(50, np.inf)])[1] == np.inf  # 5% unbounded above
    lo, hi = interval(np.r_[finite, np.full(10, np.inf)])  # 1%: the 97.5% quantile is still finite
    assert math.isfinite(hi) and lo == pytest.approx(np.quantile(finite, 0.025), abs=0.01)


def test_the_page_says_when_the_correction_moved_a_verdict():
    """On noisy robust accuracy (reliability 0.3) the raw rank partial correlation of robust accuracy
    and size looks small and a plain TOST would call size negligible; corrected it is beyond the
    margin: the raw verdict is "supported", the corrected one is not, and the row says so."""
    rng = np.random.default_rng(0)
    n = 400
    size = rng.normal(size=n)
    clean = 0.5 * size + math.sqrt(0.75) * rng.normal(size=n)
    robust = 0.5 * clean + 0.4 * size + 0.6 * rng.normal(size=n)
    sd = math.sqrt(np.var(robust) * 0.7 / 0.3)
    u = pd.DataFrame(
        {
            "trial": range(n),
            "clean_accuracy": clean,
            "clean_accuracy_se": 0.0,
            "robust_accuracy": robust + rng.normal(0, sd, n),
            "robust_accuracy_se": sd,
            "log10_params": size,
            "params": 10 ** (5 + size),
        }
    )
    r = findings_rows(u, NO_POWER, claims=["size_adds_little"], n_boot=300)[0]
    assert r["verdict_raw"] == "supported" and r["verdict_corrected"] == r["verdict"] != "supported"
    assert r["correction_moved_verdict"] and "the correction moved the verdict from supported" in r["text"]
    assert r["value_raw"] == r["value_observed"] and abs(r["value_corrected"]) > abs(r["value_raw"])


def test_methods_quote_the_corrected_intervals_simulated_coverage():
    from robustarch.analysis.errorrates import CORRECTED_COVERAGE, error_rate_lines
    from robustarch.analysis.findings import findings_table

    u = _pair(40, 0.6, np.where(np.arange(40) < 10, 3, 1), seed_sd=0.5, se=(0.5, 0.5), seed=3)
    f = findings_table(u, NO_POWER, claims=["robust_tracks_clean"], n_boot=100).to_dict("records")
    rate, design, reps = CORRECTED_COVERAGE["robust_tracks_clean"][60]
    line = error_rate_lines(f, len(u))[0]
    assert f"noise-corrected 95% CI covered the true ρ in {100 * rate:.1f}% of {reps} simulated studies" in line
    assert "not at 7" in error_rate_lines(f, 7)[0]  # no rate quoted at an n that was not simulated


def test_correlated_errors_are_taken_out_of_the_covariance_not_only_the_variances():
    """True r = 0.3 (unit variances); each model's two numbers carry evaluation errors of SE 1
    correlated 0.5 (covariance 0.5, stated). Observed: cov 0.8, variances 2, r ≈ 0.4, reliabilities
    0.5. Dividing by the reliabilities alone gives 0.8; Fuller's (0.4 − 0.5/2) / 0.5 gives 0.3."""
    u = _pair(6000, 0.3, 1, se=(1.0, 1.0), eval_corr=0.5, seed=4)
    x, y = u["robust_accuracy"].to_numpy(), u["clean_accuracy"].to_numpy()
    raw = float(np.corrcoef(x, y)[0, 1])
    res = Resampler(len(u), 300, 0)
    fix = corrected_correlation(x, y, joint_error(u), res, raw, "pearson")
    variance_only = corrected_correlation(x, y, joint_error(u.assign(**{EVAL_COV: 0.0})), res, raw, "pearson")
    assert raw == pytest.approx(0.4, abs=0.03)
    assert fix["error_covariance_share"] == pytest.approx(0.25, abs=0.02)
    assert fix["value_corrected"] == pytest.approx(0.3, abs=0.05)
    assert variance_only["value_corrected"] == pytest.approx(0.8, abs=0.06)
    lo, hi = fix["ci_corrected"]
    assert lo < 0.3 < hi and variance_only["ci_corrected"][0] > 0.6


def test_the_seed_covariance_is_estimated_from_replicates():
    """Seed errors only (SD 1), correlated 0.6 between a model's clean and robust number, true r 0.2,
    1500 architectures × 2 seeds: the within-architecture covariance estimates the seed covariance
    (0.6), and the claim's corrected ρ recovers the true rank correlation, where the variance-only
    correction (the seed covariance left in) overshoots by about 0.6·(1/2)/(1 + 1/2) / R ≈ 0.4."""
    u = _pair(1500, 0.2, 2, seed_sd=1.0, seed_corr=0.6, seed=5)
    arch = per_architecture(u)
    joint = joint_error(arch)
    assert joint.seed_covariance(np.ones((1, len(arch))))[0] == pytest.approx([1.0, 1.0, 0.6], abs=0.08)
    row = findings_rows(u, NO_POWER, claims=["robust_tracks_clean"], n_boot=200)[0]
    true = 6 / math.pi * math.asin(0.1)
    assert row["value_corrected"] == pytest.approx(true, abs=0.06)
    lo, hi = row["ci_corrected"]
    assert lo < true < hi
    naive = row["value"] / math.sqrt(row["reliability_robust"] * row["reliability_clean"])
    assert naive > true + 0.25  # what dividing by the reliabilities alone would have said


def test_one_test_sample_gives_the_nested_covariance():
    """Per-sample outcomes on one test sample, robust-correct ⊂ clean-correct: the covariance of the
    two accuracies over repeated samples is r(1 − c)/n, which `eval_covariance` reads off the SEs."""
    rng = np.random.default_rng(6)
    n, c, r = 200, 0.85, 0.35
    clean_ok = rng.random((20000, n)) < c
    robust_ok = clean_ok & (rng.random((20000, n)) < r / c)
    acc = np.stack([robust_ok.mean(1), clean_ok.mean(1)])
    table = pd.DataFrame(
        {"robust_accuracy": [r], "clean_accuracy": [c], "clean_accuracy_se": [math.sqrt(c * (1 - c) / n)]}
    )
    assert eval_covariance(table)[0] == pytest.approx(r * (1 - c) / n, rel=1e-9)
    assert np.cov(acc)[0, 1] == pytest.approx(r * (1 - c) / n, rel=0.05)
