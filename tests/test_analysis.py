"""robustarch.analysis.stats / powerlaw / analysis: numbers checked against direct scipy computations."""

from __future__ import annotations

import math

import numpy as np
import optuna
import pandas as pd
import pytest
from _studies import EPS, make_study
from scipy import stats

from robustarch.analysis import analyze, pareto_front
from robustarch.analysis.pooling import slope_summary
from robustarch.analysis.powerlaw import MAX_ERROR, margin_tail_exponent
from robustarch.analysis.record import trials_table
from robustarch.analysis.stats import bootstrap_statistic, correlate, ols, partial_correlation
from robustarch.metrics import curve_area

optuna.logging.set_verbosity(optuna.logging.WARNING)

# A fixed table with ties in both columns (ties are where rank statistics go wrong).
X = np.array([0.91, 0.95, 0.88, 0.97, 0.93, 0.90, 0.95, 0.99, 0.86, 0.92, 0.94, 0.97])
Y = np.array([0.40, 0.52, 0.31, 0.60, 0.45, 0.45, 0.50, 0.71, 0.22, 0.41, 0.55, 0.58])
Z = np.array([3.1, 4.2, 2.9, 5.0, 3.8, 3.3, 4.1, 5.5, 2.5, 3.6, 4.4, 4.9])


@pytest.mark.parametrize(
    "method,fn", [("pearson", stats.pearsonr), ("spearman", stats.spearmanr), ("kendall", stats.kendalltau)]
)
def test_correlation_matches_scipy(method, fn):
    row = next(r for r in correlate(X, Y, n_boot=300) if r["method"] == method)
    ref = fn(X, Y)
    assert row["n"] == len(X)
    assert row["coef"] == pytest.approx(ref.statistic, abs=1e-12)
    assert row["p_value"] == pytest.approx(ref.pvalue, rel=1e-9)
    assert row["ci_low"] < row["coef"] < row["ci_high"]


@pytest.mark.parametrize(
    "method,fn", [("pearson", stats.pearsonr), ("spearman", stats.spearmanr), ("kendall", stats.kendalltau)]
)
def test_bootstrap_resamples_equal_scipy_on_the_drawn_samples(method, fn):
    """Our vectorized resample statistic is exactly scipy's statistic on the explicit resample."""
    rng = np.random.default_rng(3)
    idx = rng.integers(0, len(X), size=(20, len(X)))
    counts = np.stack([np.bincount(i, minlength=len(X)) for i in idx]).astype(float)
    ours = bootstrap_statistic(method, X, Y, counts)
    ref = [fn(X[i], Y[i]).statistic for i in idx]
    np.testing.assert_allclose(ours, ref, atol=1e-6)


@pytest.mark.parametrize(
    "method,fn", [("pearson", stats.pearsonr), ("spearman", stats.spearmanr), ("kendall", stats.kendalltau)]
)
def test_bootstrap_ci_is_seeded_and_equals_scipys_bca_on_the_same_resamples(method, fn):
    a = correlate(X, Y, methods=(method,), n_boot=2000, seed=7)[0]
    b = correlate(X, Y, methods=(method,), n_boot=2000, seed=7)[0]
    assert (a["ci_low"], a["ci_high"]) == (b["ci_low"], b["ci_high"])
    # scipy draws rng.integers(0, n, (B, n)) from the same seed: the very resamples of resample_counts
    ref = stats.bootstrap(
        (X, Y),
        lambda x, y: fn(x, y).statistic,
        paired=True,
        vectorized=False,
        n_resamples=2000,
        method="BCa",
        rng=np.random.default_rng(7),
    ).confidence_interval
    assert a["ci_low"] == pytest.approx(ref.low, abs=1e-6) and a["ci_high"] == pytest.approx(ref.high, abs=1e-6)


def test_constant_or_short_input_gives_nan_not_an_error():
    rows = correlate([1, 2, 3], [1, 1, 1])
    assert all(math.isnan(r["coef"]) and r["n"] == 3 for r in rows)


@pytest.mark.parametrize("method", ["pearson", "spearman"])
def test_partial_correlation_matches_the_textbook_formula(method):
    x, y, z = (stats.rankdata(v) for v in (X, Y, Z)) if method == "spearman" else (X, Y, Z)
    rxy, rxz, ryz = (stats.pearsonr(a, b).statistic for a, b in ((x, y), (x, z), (y, z)))
    expected = (rxy - rxz * ryz) / math.sqrt((1 - rxz**2) * (1 - ryz**2))
    got = partial_correlation(X, Y, Z, method=method, n_boot=500)
    assert got["coef"] == pytest.approx(expected, abs=1e-10)
    n = len(X)
    t = expected * math.sqrt((n - 3) / (1 - expected**2))
    assert got["p_value"] == pytest.approx(2 * stats.t.sf(abs(t), n - 3), rel=1e-9)
    assert got["ci_low"] < got["coef"] < got["ci_high"]


def test_ols_with_one_predictor_equals_linregress_with_hc3_errors():
    coef, fit = ols(pd.DataFrame({"y": Y, "x": X}), "y", ["x"])
    ref = stats.linregress(X, Y)
    c = coef.set_index("term")
    assert c.loc["x", "coef"] == pytest.approx(ref.slope)
    assert c.loc["intercept", "coef"] == pytest.approx(ref.intercept)
    assert fit["r2"] == pytest.approx(ref.rvalue**2) and fit["cov_type"] == "HC3"
    # HC3 (MacKinnon & White 1985), computed directly: (X'X)⁻¹ X' diag(e² / (1 − h)²) X (X'X)⁻¹
    design = np.column_stack([np.ones(len(X)), X])
    bread = np.linalg.inv(design.T @ design)
    e = Y - design @ np.array([ref.intercept, ref.slope])
    h = np.einsum("ij,jk,ik->i", design, bread, design)
    cov = bread @ (design.T * (e / (1 - h)) ** 2) @ design @ bread
    se = np.sqrt(np.diag(cov))
    assert c.loc["x", "std_err"] == pytest.approx(se[1]) and c.loc["intercept", "std_err"] == pytest.approx(se[0])
    assert c.loc["x", "std_err"] != pytest.approx(ref.stderr)  # not the equal-variance SE
    q = stats.t.ppf(0.975, len(X) - 2)
    assert c.loc["x", "ci_low"] == pytest.approx(ref.slope - q * se[1])
    assert c.loc["x", "p_value"] == pytest.approx(2 * stats.t.sf(abs(ref.slope / se[1]), len(X) - 2))


def test_ols_recovers_known_coefficients():
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"a": rng.normal(size=400), "b": rng.normal(size=400)})
    df["y"] = 1.5 + 2.0 * df["a"] - 0.5 * df["b"] + rng.normal(scale=0.1, size=400)
    coef, fit = ols(df, "y", ["a", "b"])
    c = coef.set_index("term")
    for term, true in (("intercept", 1.5), ("a", 2.0), ("b", -0.5)):
        assert c.loc[term, "ci_low"] < true < c.loc[term, "ci_high"]
    assert fit["r2"] > 0.99 and fit["n"] == 400


def test_margin_tail_exponent_is_recovered():
    rng = np.random.default_rng(2)
    margins = 3.0 * rng.random(5000) ** (1 / 2.0)  # CDF(m) = (m / 3)^2
    assert margin_tail_exponent(margins, 0.5) == pytest.approx(2.0, abs=0.1)
    assert math.isnan(margin_tail_exponent(margins[:5], 0.5))  # too few samples in the tail


def test_ols_drops_constant_and_collinear_predictors_and_reports_vif():
    rng = np.random.default_rng(4)
    df = pd.DataFrame({"a": rng.normal(size=60), "b": rng.normal(size=60), "const": 3.0})
    df["a_plus_b"] = df["a"] + 2 * df["b"]  # an exact linear combination: not identifiable
    df["y"] = 1 + df["a"] - df["b"] + rng.normal(scale=0.1, size=60)
    coef, fit = ols(df, "y", ["a", "const", "b", "a_plus_b"])
    assert list(coef["term"]) == ["intercept", "a", "b"] and fit["predictors"] == "a + b"
    assert "const (constant)" in fit["dropped"] and "a_plus_b (collinear with intercept + a + b)" in fit["dropped"]
    # VIF of a: 1 / (1 − R²) of a regressed on b (with intercept), computed directly.
    r2 = stats.linregress(df["b"], df["a"]).rvalue ** 2
    assert coef.set_index("term").loc["a", "vif"] == pytest.approx(1 / (1 - r2))
    ref, _ = ols(df, "y", ["a", "b"])
    np.testing.assert_allclose(coef["coef"], ref["coef"])


def test_slope_summary_pools_with_random_effects_and_tells_universal_from_heterogeneous_slopes():
    same = pd.DataFrame({"slope": [1.50, 1.52, 1.48, 1.51], "slope_se": [0.1] * 4})
    differ = pd.DataFrame({"slope": [0.8, 1.5, 2.2, 3.0], "slope_se": [0.05] * 4})
    s, d = slope_summary(same), slope_summary(differ)
    assert s["q_p_value"] > 0.5 and d["q_p_value"] < 1e-6
    assert s["median"] == pytest.approx(1.505) and s["n_models"] == 4
    assert s["q1"] == pytest.approx(np.quantile([1.50, 1.52, 1.48, 1.51], 0.25))
    assert s["pooled_ci_low"] < 1.5 < s["pooled_ci_high"] and s["tau"] == 0 and s["i2"] == 0
    # DerSimonian–Laird by hand: τ² = (Q − df) / (Σw − Σw²/Σw), then weights 1 / (v + τ²)
    v, w = np.full(4, 0.05**2), np.full(4, 1 / 0.05**2)
    k = differ["slope"].to_numpy()
    q = float((w * (k - k.mean()) ** 2).sum())
    tau2 = (q - 3) / (w.sum() - (w**2).sum() / w.sum())
    assert d["tau"] == pytest.approx(math.sqrt(tau2)) and d["i2"] == pytest.approx((q - 3) / q)
    assert d["pooled"] == pytest.approx(k.mean())
    ws = 1 / (v + tau2)  # Hartung–Knapp: the weighted residual variance, t with k − 1 df
    se = math.sqrt((ws * (k - k.mean()) ** 2).sum() / 3 / ws.sum())
    assert d["pooled_ci_high"] - d["pooled_ci_low"] == pytest.approx(2 * stats.t.ppf(0.975, 3) * se)
    half = math.sqrt(tau2 + se**2)  # the prediction interval is much wider than the CI
    assert d["pi_high"] - d["pi_low"] == pytest.approx(2 * stats.t.ppf(0.975, 2) * half)


def test_curve_area_is_the_trapezoid_from_clean_accuracy_at_zero():
    area = curve_area([0.1, 0.2], np.array([[0.6, 0.2]]), np.array([1.0]))
    assert area[0] == pytest.approx(((1.0 + 0.6) / 2 * 0.1 + (0.6 + 0.2) / 2 * 0.1) / 0.2)


def test_pareto_front_matches_brute_force():
    rng = np.random.default_rng(1)
    c, r = rng.random(60).round(2), rng.random(60).round(2)
    front = pareto_front(c, r)
    for i in range(60):
        dominated = any(c[j] >= c[i] and r[j] >= r[i] and (c[j] > c[i] or r[j] > r[i]) for j in range(60))
        assert front[i] == (not dominated)


@pytest.fixture(scope="module")
def study():
    return make_study(30, n_flagged=3, seed=1)


@pytest.fixture(scope="module")
def analysis(study):
    return analyze(study, n_boot=300)


def test_flagged_models_are_left_out_of_statistics_by_default(study, analysis):
    corr = analysis.tables["correlations"]
    assert analysis.n_flagged == 3 and analysis.n_used == 27
    assert set(corr["n"]) == {27}
    t = analysis.tables["trials"]
    assert not t.loc[t["flagged"], "in_statistics"].any() and not t.loc[t["flagged"], "pareto"].any()
    used = t[t["in_statistics"]]
    assert (used["pareto"].to_numpy() == pareto_front(used["clean_accuracy"], used["robust_accuracy"])).all()
    with_flagged = analyze(study, include_flagged=True, n_boot=200)
    assert set(with_flagged.tables["correlations"]["n"]) == {30}


def test_trial_area_and_headline_robust_accuracy(study, analysis):
    t = analysis.tables["trials"].set_index("trial")
    a = study.trials[5].user_attrs
    curve = a["robust_accuracy"]["worst_case"]
    expected = np.trapezoid([a["attacked_clean_accuracy"], *curve], [0.0, *EPS]) / EPS[-1]
    assert t.loc[5, "robust_auc"] == pytest.approx(expected)
    assert analysis.eps == 0.05 and t.loc[5, "robust_accuracy"] == curve[EPS.index(0.05)]


def test_correlation_table_equals_scipy_on_the_trials(study, analysis):
    t = trials_table(study)
    t = t[(t["state"] == "COMPLETE") & t["sanity_ok"]]
    eps_i = EPS.index(0.05)
    robust = [study.trials[n].user_attrs["robust_accuracy"]["worst_case"][eps_i] for n in t["trial"]]
    corr = analysis.tables["correlations"]
    row = corr[(corr["eps"] == 0.05) & (corr["variable"] == "log10_params") & (corr["method"] == "kendall")].iloc[0]
    ref = stats.kendalltau(robust, np.log10(t["params"].astype(float)))
    assert row["coef"] == pytest.approx(ref.statistic) and row["p_value"] == pytest.approx(ref.pvalue)
    row = corr[(corr["eps"] == 0.05) & (corr["variable"] == "clean_accuracy") & (corr["method"] == "pearson")].iloc[0]
    assert row["coef"] == pytest.approx(stats.pearsonr(robust, t["clean_accuracy"]).statistic)
    assert len(corr) == (len(EPS) + 1) * 5 * 3  # every ε and the area × 5 variables × 3 methods


def test_power_law_table_has_one_fit_per_complete_trial_each_in_its_own_window(analysis):
    pl = analysis.tables["power_law"]
    assert len(pl) == 30
    # Each window tops at its own model's MAX_ERROR share of the samples it ever breaks (grid ε: at the
    # grid value below that order statistic), so no window reaches its model's saturation.
    used = pl[pl["in_statistics"] & (pl["status"] == "ok")]
    assert pl["eps_high"].nunique() > 1
    assert (used["error_high"] <= MAX_ERROR + 1e-9).all()
    fitted = pl[pl["status"] == "ok"]
    assert ((fitted["ci_low"] <= fitted["slope"]) & (fitted["slope"] <= fitted["ci_high"])).all()
    assert set(pl["error_source"]) == {
        "worst case over all attacks (min_adversarial_eps; fixed-ε attacks quantized to the ε grid)"
    }  # this synthetic study stored no minimization ε
    assert analysis.fits["power_law"]["n_models"] == int(np.isfinite(used["slope"]).sum())


def test_too_few_trials_give_tables_but_no_statistics():
    a = analyze(make_study(3, n_flagged=1), n_boot=100)
    assert not a.enough and a.n_used == 2 and a.tables["correlations"].empty
    assert len(a.tables["trials"]) == 6 and len(a.tables["power_law"]) == 3
