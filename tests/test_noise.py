"""robustarch.analysis.noise and the claims that use it: every model's accuracies carry an evaluation
SE from its own per-sample outcomes, the reliability of a column across models, the disattenuated
size claim (never "supported" on attenuated numbers), and the cluster bootstrap over families."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from _studies import make_study
from scipy import stats

from robustarch.analysis import analyze
from robustarch.analysis.findings import findings_rows
from robustarch.analysis.noise import binomial_se, disattenuate, reliability, resampled_reliability
from robustarch.analysis.powerlaw import COLUMNS as POWER_COLUMNS
from robustarch.analysis.record import robustness_table, samples_table, trials_table
from robustarch.analysis.stats import Resampler
from robustarch.analysis.verdicts import tost

NO_POWER = pd.DataFrame(columns=POWER_COLUMNS)


def test_each_models_se_comes_from_its_own_per_sample_outcomes():
    study = make_study(6, n_samples=150, n_flagged=0, n_failed=0, seed=2)
    rob, smp, t = robustness_table(study), samples_table(study), trials_table(study).set_index("trial")
    wc = rob[rob["attack"] == "worst_case"]
    for _, r in wc.iterrows():
        n = t.loc[r["trial"], "n_attacked"]
        survived = (smp.loc[smp["trial"] == r["trial"], "min_adversarial_eps"] > r["eps"]).sum()
        p = survived / n  # the mean of n per-sample 0/1 outcomes (not clean-correct counts as 0)
        assert r["robust_accuracy"] == pytest.approx(p, abs=1e-6)
        assert r["robust_accuracy_se"] == pytest.approx(math.sqrt(p * (1 - p) / n), abs=1e-6)
    c = t["clean_accuracy"].astype(float)
    np.testing.assert_allclose(t["clean_accuracy_se"].astype(float), np.sqrt(c * (1 - c) / t["n_attacked"]))
    a = analyze(study, n_boot=50)
    u = a.used_trials.set_index("trial")
    at = wc[np.isclose(wc["eps"], a.eps)].set_index("trial")["robust_accuracy_se"]
    np.testing.assert_allclose(u["robust_accuracy_se"], at.reindex(u.index))


def test_reliability_is_the_share_of_true_variance():
    rng = np.random.default_rng(0)
    true = rng.normal(0, 1, 20000)
    se = np.full(20000, 0.5)  # error variance 0.25 against true variance 1: reliability 0.8
    assert reliability(true + rng.normal(0, se), se) == pytest.approx(0.8, abs=0.01)
    assert reliability(true + rng.normal(0, 1, 20000), np.zeros(20000), seed_var=1.0) == pytest.approx(0.5, abs=0.01)
    counts = np.ones((1, 20000))
    assert resampled_reliability(true, se**2, counts)[0] == pytest.approx(reliability(true, se), abs=1e-9)
    assert binomial_se(0.5, 100) == pytest.approx(0.05)
    assert disattenuate(0.4, 0.8, 0.5) == pytest.approx(0.4 / math.sqrt(0.4))


def _attenuated_study(with_se: bool, n: int = 400, reliability_robust: float = 0.3, seed: int = 0) -> pd.DataFrame:
    """True numbers with a partial correlation of robust accuracy and size given clean accuracy
    (rank partial 0.48, beyond the 0.3 margin), robust accuracy then measured with heavy noise."""
    rng = np.random.default_rng(seed)
    size = rng.normal(size=n)
    clean = 0.5 * size + math.sqrt(0.75) * rng.normal(size=n)
    robust = 0.5 * clean + 0.4 * size + 0.6 * rng.normal(size=n)
    sd = math.sqrt(np.var(robust) * (1 - reliability_robust) / reliability_robust)
    u = pd.DataFrame(
        {
            "trial": range(n),
            "clean_accuracy": clean,
            "robust_accuracy": robust + rng.normal(0, sd, n),
            "log10_params": size,
            "params": 10 ** (5 + size),
        }
    )
    return u.assign(robust_accuracy_se=sd, clean_accuracy_se=0.0) if with_se else u


def test_an_equivalence_is_never_supported_on_attenuated_numbers():
    u = _attenuated_study(with_se=True)
    r = findings_rows(u, NO_POWER, claims=["size_adds_little"], n_boot=300)[0]
    # the trap: on the measured numbers the partial correlation looks small, and a plain TOST passes
    z, se = math.atanh(r["value_observed"]), 1 / math.sqrt(len(u) - 4)
    assert tost(z, se, -math.atanh(0.3), math.atanh(0.3))["p_tost"] < 0.05
    assert r["reliability_robust"] == pytest.approx(0.3, abs=0.1)
    assert r["value"] > 0.3 > r["value_observed"]  # corrected for noise, beyond the margin
    assert r["verdict"] != "supported" and "disattenuated" in r["statistic"]
    bare = findings_rows(_attenuated_study(with_se=False), NO_POWER, claims=["size_adds_little"], n_boot=300)[0]
    assert bare["verdict"] != "supported" and "without evaluation SEs" in bare["text"]


def _families(n_families: int, per: int, seed: int = 0) -> pd.DataFrame:
    """Robust and clean accuracy unrelated at the model level, each with a family effect."""
    rng = np.random.default_rng(seed)
    fam = np.repeat(np.arange(n_families), per)
    clean = 0.9 + 0.03 * rng.normal(size=n_families)[fam] + 0.02 * rng.normal(size=len(fam))
    robust = 0.4 + 0.05 * rng.normal(size=n_families)[fam] + 0.03 * rng.normal(size=len(fam))
    return pd.DataFrame(
        {"trial": range(len(fam)), "clean_accuracy": clean, "robust_accuracy": robust, "family": [f"f{g}" for g in fam]}
    )


def test_related_models_are_resampled_as_whole_families():
    u = _families(25, 4)
    r = findings_rows(u, NO_POWER, claims=["robust_tracks_clean"], n_boot=400)[0]
    assert r["families"] == 25 and "cluster bootstrap over 25 families" in r["text"]
    assert r["p_value"] != pytest.approx(stats.spearmanr(u["robust_accuracy"], u["clean_accuracy"]).pvalue)
    counts = Resampler(len(u), 50, 0, groups=u["family"].to_numpy()).counts
    for g in range(25):  # every member of a family is drawn as often as its family
        block = counts[:, 4 * g : 4 * g + 4]
        assert (block == block[:, :1]).all()
    few = findings_rows(_families(4, 10), NO_POWER, claims=["robust_tracks_clean"], n_boot=100)[0]
    assert few["reason"] and "4 families" in few["reason"] and "≥ 20" in few["reason"]
    assert few["verdict"] == "inconclusive"
