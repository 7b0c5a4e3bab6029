"""Variance components, the ICC claim and the shrunken winner (analysis.components, noiseclaim,
winner) on fixed tables, checked against statsmodels' MixedLM and against hand computations."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

from robustarch.analysis.claims import CLAIMS
from robustarch.analysis.components import binomial_se, spearman_brown, variance_components
from robustarch.analysis.noiseclaim import icc_row
from robustarch.analysis.winner import shrunken


def _table(sizes, s2a=0.01, s2w=0.002, seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    a = rng.normal(0, math.sqrt(s2a), len(sizes))
    g = np.repeat(np.arange(len(sizes)), sizes)
    return pd.DataFrame({"arch": g, "y": 0.4 + a[g] + rng.normal(0, math.sqrt(s2w), len(g))})


def _mixedlm(t: pd.DataFrame) -> tuple[float, float]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = smf.mixedlm("y ~ 1", t, groups=t["arch"]).fit(reml=True)
    return float(fit.cov_re.iloc[0, 0]), float(fit.scale)


def test_components_equal_mixedlm_reml_on_a_balanced_table():
    t = _table([3] * 12)
    c = variance_components(t["y"], t["arch"], n_boot=0)
    s2a, s2w = _mixedlm(t)
    assert c.estimate["sigma2_arch"] == pytest.approx(s2a, rel=1e-3)
    assert c.estimate["msw"] == pytest.approx(s2w, rel=1e-3)
    assert c.icc == pytest.approx(s2a / (s2a + s2w), rel=1e-3)


def test_components_are_close_to_mixedlm_reml_on_an_unbalanced_table():
    """2 to 4 seeds per architecture: the within-architecture variance agrees closely; σ²_a differs
    more, since unbalanced moment and REML estimators weight the architectures differently (both are
    consistent: the unbiasedness test below checks ours)."""
    t = _table([2, 3, 4] * 8, seed=3)
    c = variance_components(t["y"], t["arch"], n_boot=0)
    s2a, s2w = _mixedlm(t)
    assert c.estimate["msw"] == pytest.approx(s2w, rel=0.02)
    assert c.estimate["sigma2_arch"] == pytest.approx(s2a, rel=0.3)


def test_components_are_unbiased_in_the_25_percent_by_3_design():
    """40 architectures, 10 with 3 seeds: over 2000 simulated tables the mean estimates hit the truth
    (a wrong n0 for unbalanced designs misses σ²_a by far more than 5%)."""
    a, w = [], []
    for seed in range(2000):
        c = variance_components(
            _table([3] * 10 + [1] * 30, seed=seed)["y"], _table([3] * 10 + [1] * 30)["arch"], n_boot=0
        )
        a.append((c.estimate["msb"] - c.estimate["msw"]) / c.estimate["n0"])  # before truncation at 0
        w.append(c.estimate["msw"])
    assert np.mean(a) == pytest.approx(0.01, rel=0.05)
    assert np.mean(w) == pytest.approx(0.002, rel=0.05)


def test_the_evaluation_variance_is_taken_out_of_the_within_spread():
    t = _table([3] * 12, s2w=0.004)
    se = np.full(len(t), math.sqrt(0.0015))
    c = variance_components(t["y"], t["arch"], se, n_boot=0)
    e = c.estimate
    assert e["sigma2_eval"] == pytest.approx(0.0015)
    assert e["sigma2_seed"] == pytest.approx(e["msw"] - 0.0015)
    assert e["share_arch"] + e["share_seed"] + e["share_eval"] == pytest.approx(1.0)
    assert c.icc == pytest.approx(variance_components(t["y"], t["arch"], n_boot=0).icc)  # the ICC needs no SE


def test_intervals_cover_the_estimates_and_reliability_follows_spearman_brown():
    t = _table([3] * 10 + [1] * 30)
    c = variance_components(t["y"], t["arch"], binomial_se(t["y"], 200), n_boot=300)
    for q in ("icc", "share_arch", "sigma2_arch"):
        lo, hi = c.ci95[q]
        assert lo <= c.estimate[q] <= hi
    assert c.estimate["reliability_k"] == pytest.approx(3 * c.icc / (1 + 2 * c.icc))
    assert spearman_brown(0.5, 1) == pytest.approx(0.5)


def test_without_replicates_there_are_no_components():
    t = _table([1] * 20)
    assert variance_components(t["y"], t["arch"]) is None


def test_shrinkage_on_a_constructed_case():
    """Two architectures with known components: σ²_a = 0.01, σ²_w = 0.004 (MSW), k = 1 and 4 seeds."""
    models = pd.DataFrame({"arch_key": ["a"] + ["b"] * 4, "v": [0.6, 0.3, 0.3, 0.3, 0.3]})

    class Known:
        estimate = {"sigma2_arch": 0.01, "msw": 0.004}

    w = shrunken(models, "v", Known()).set_index("arch_key")
    rel = {"a": 0.01 / (0.01 + 0.004), "b": 0.01 / (0.01 + 0.001)}
    weights = {k: 1 / (0.01 + 0.004 / n) for k, n in (("a", 1), ("b", 4))}
    mu = (weights["a"] * 0.6 + weights["b"] * 0.3) / sum(weights.values())
    for k, obs in (("a", 0.6), ("b", 0.3)):
        assert w.loc[k, "reliability"] == pytest.approx(rel[k])
        assert w.loc[k, "predicted"] == pytest.approx(mu + rel[k] * (obs - mu))
    assert w.loc["a", "predicted"] < 0.6 and w.loc["b", "predicted"] > 0.3  # both pulled to μ, a more (1 seed)


def _claim(icc: float, sizes, seed: int = 0) -> dict:
    s2w = 0.002
    t = _table(sizes, s2a=icc / (1 - icc) * s2w, s2w=s2w, seed=seed)
    u = pd.DataFrame({"robust_accuracy": t["y"], "arch_key": t["arch"].astype(str), "trial": range(len(t))})
    return icc_row(CLAIMS["architecture_explains_robust"], u, n_boot=200)


def test_the_icc_claim_is_supported_contradicted_or_says_why_not():
    high, low = _claim(0.9, [3] * 30), _claim(0.1, [3] * 30)
    assert high["value"] > 0.5 and high["ci_low"] > 0.5 and high["p_value"] < 0.05
    assert low["value"] < 0.5 and low["ci_high"] < 0.5 and low["p_value"] < 0.05
    single = _claim(0.9, [1] * 30)
    assert single["reason"] and "two or more seeds" in single["reason"]


def _replicated_models() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for a in range(10):
        effect = rng.normal(0, 0.1)
        for s in range(3):
            r = float(np.clip(0.4 + effect + rng.normal(0, 0.04), 0, 1))
            rows.append(
                {"arch": f"a{a}", "seed": s, "clean_accuracy": 0.95, "robust_accuracy@0.1": r, "n_attacked": 200}
            )
    return pd.DataFrame(rows)


def test_analyze_reads_seeds_of_one_arch_as_replicates(tmp_path):
    from robustarch.analysis import analyze_table
    from robustarch.report import write_analysis

    models = _replicated_models()
    a = analyze_table(models, n_boot=100)
    vc = a.tables["variance_components"].set_index(["number", "quantity"])
    direct = variance_components(
        models["robust_accuracy@0.1"], models["arch"], binomial_se(models["robust_accuracy@0.1"], 200), n_boot=0
    )
    assert vc.loc[("robust_accuracy", "icc"), "estimate"] == pytest.approx(direct.icc)
    assert vc.loc[("robust_accuracy", "icc"), "n_arch"] == 10
    assert len(a.tables["winner"]) == 10 and a.tables["winner"]["predicted"].notna().all()
    path = write_analysis(a, tmp_path / "t.json", "json")
    doc = __import__("json").loads(path.read_text())
    assert any(r["quantity"] == "icc" for r in doc["variance_components"])
    with_se = analyze_table(models.assign(robust_accuracy_se=0.01), n_boot=0).tables["variance_components"]
    assert with_se.set_index(["number", "quantity"]).loc[
        ("robust_accuracy", "sigma2_eval"), "estimate"
    ] == pytest.approx(1e-4)


def test_analyze_refuses_a_seed_without_arch_and_a_repeated_seed():
    from robustarch.analysis import analyze_table
    from robustarch.errors import UserError

    models = _replicated_models()
    with pytest.raises(UserError, match="'seed' column needs an 'arch'"):
        analyze_table(models.drop(columns="arch"), n_boot=0)
    with pytest.raises(UserError, match="appears twice"):
        analyze_table(models.assign(seed=0), n_boot=0)


def test_claims_count_architectures_not_seeds():
    from robustarch.analysis import analyze_table

    models = _replicated_models().assign(clean_accuracy=lambda d: 0.9 + 0.01 * d.index % 7 / 7)
    f = analyze_table(models, n_boot=50).tables["findings"].set_index("key")
    assert f.loc["robust_tracks_clean", "n"] == 10  # 10 architectures × 3 seeds: n = 10, not 30
    assert f.loc["architecture_explains_robust", "n"] == 10


def test_per_architecture_numbers_carry_the_seed_noise_into_the_claims_reliability():
    """With replicates, each architecture's mean carries σ²_seed / k of training-seed noise (all of it
    for a single-seed architecture); analysis.noise adds it to the evaluation variance, so the
    reliability the correlation and equivalence claims use counts both noise sources."""
    from robustarch.analysis.components import per_architecture
    from robustarch.analysis.noise import error_variance, reliability

    rng = np.random.default_rng(3)
    arch_effect = rng.normal(0.5, 0.1, 60)
    seeds = np.where(np.arange(60) < 20, 3, 1)  # a 1/3 × 3 reliability subsample
    arch_of = np.repeat(np.arange(60), seeds)
    u = pd.DataFrame(
        {
            "trial": np.arange(len(arch_of)),
            "arch_key": [f"a{a}" for a in arch_of],
            "robust_accuracy": arch_effect[arch_of] + rng.normal(0, 0.05, len(arch_of)),
            "robust_accuracy_se": 0.01,
        }
    )
    arch = per_architecture(u)
    assert len(arch) == 60 and sorted(arch["seeds"].unique()) == [1, 3]
    sd = arch.set_index(arch["seeds"])["robust_accuracy_seed_sd"]
    assert sd.loc[1].iloc[0] == pytest.approx(np.sqrt(3) * sd.loc[3].iloc[0])
    assert 0.03 < sd.loc[1].iloc[0] < 0.07  # the true seed SD is 0.05 (estimated from 20 architectures)
    err = error_variance(arch, "robust_accuracy")
    with_seed = reliability(arch["robust_accuracy"], np.sqrt(err))
    eval_only = reliability(arch["robust_accuracy"], arch["robust_accuracy_se"])
    assert with_seed < eval_only - 0.05


def test_the_report_chooses_the_shrunken_winner_over_the_raw_one():
    """A lucky single-seed architecture has the best validation number (0.60) and would win on raw
    numbers; one with three consistent seeds (0.56–0.58) has the best shrunken estimate, since a single
    seed is shrunk further towards μ. The summary, the best model and the Pareto front follow the
    shrunken validation estimate and quote the fresh-seed prediction beside the observed number; the
    test split, where the lucky one is best, chooses nothing."""
    from robustarch.analysis import analyze_table
    from robustarch.analysis.summary import sentences

    rng = np.random.default_rng(5)
    rows = []

    def add(arch: str, val: float, test: float) -> None:
        seed = sum(r["arch"] == arch for r in rows)
        rows.append(
            {
                "arch": arch,
                "seed": seed,
                "clean_accuracy": 0.9 + rng.normal(0, 0.01),
                "val_accuracy": 0.9 + rng.normal(0, 0.01),
                "robust_accuracy@0.1": test,
                "val_robust_accuracy@0.1": val,
                "n_attacked": 200,
            }
        )

    for a in range(16):
        effect = rng.normal(0, 0.04)
        for _ in range(3):
            add(f"net{a}", 0.40 + effect + rng.normal(0, 0.05), 0.40 + effect + rng.normal(0, 0.05))
    add("lucky", 0.60, 0.70)
    for v in (0.56, 0.57, 0.58):
        add("steady", v, 0.50)
    a = analyze_table(pd.DataFrame(rows), n_boot=0)
    used = a.used_trials
    assert used.loc[used["val_robust_accuracy"].idxmax(), "arch_key"] == "lucky"  # the raw winner
    assert used.loc[used["robust_accuracy"].idxmax(), "arch_key"] == "lucky"  # and the test split's best
    win = a.tables["winner"].set_index("arch_key")
    assert win.loc["steady", "val_predicted"] > win.loc["lucky", "val_predicted"]
    assert win.loc["lucky", "val_predicted"] < 0.60 and win.loc["steady", "val_predicted"] < 0.57
    assert a.shrunken and a.best_trial["arch_key"] == "steady" and a.best_trial["val_robust_accuracy"] == 0.58
    front = set(a.tables["pareto_front"]["arch_key"])
    assert "steady" in front  # the front is of architectures, on shrunken estimates
    assert set(a.tables["trials"].loc[a.tables["trials"]["pareto"], "arch_key"]) == front
    s = " ".join(sentences(a))
    w = win.loc["steady"]
    assert "the most robust architecture is steady (3 seeds" in s and "shrunken estimate" in s
    assert f"test robust accuracy {w['observed']:.3f} observed, {w['predicted']:.3f} ± " in s
    assert "predicted on a fresh seed" in s
