"""robustarch.analysis.powerlaw / hill / gof / frailty / marginlink: the censored-exponential fits
against direct scipy fits of the same likelihoods, the per-model window against saturation, and the
censored margin link against the truncating one."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import optimize, special, stats

from robustarch.analysis import frailty, hill
from robustarch.analysis.gof import homogeneity_test
from robustarch.analysis.marginlink import gehan, margin_link
from robustarch.analysis.powerlaw import (
    MAX_ERROR,
    MAX_GRID_CELLS,
    fit_power_law,
    pack,
    power_law_table,
    study_grid,
    window_cells,
)


def power_samples(rng, n, k, e0, never=0.0):
    """Minimal ε with P(min ε ≤ e) = (1 − never)(e / e0)^k on [0, e0] (inverse-CDF sampling)."""
    m = e0 * rng.random(n) ** (1 / k)
    m[rng.random(n) < never] = np.inf
    return m


@pytest.mark.parametrize("k", [0.8, 1.5, 2.5])
def test_fit_recovers_a_known_exponent(k):
    m = power_samples(np.random.default_rng(int(10 * k)), 3000, k, 0.3, never=0.1)
    for window in ((0.01, 0.1), None):  # a fixed window, and the model's own
        fit = fit_power_law(m, window)
        assert (
            fit["status"] == "ok" and fit["ci_low"] < k < fit["ci_high"] and fit["slope"] == pytest.approx(k, rel=0.1)
        )
        # error = 0.9 (ε/0.3)^k  →  log10 A = log10 0.9 − k log10 0.3
        assert fit["intercept"] == pytest.approx(math.log10(0.9) - k * math.log10(0.3), abs=0.15)
        assert fit["power_law_ok"] and fit["curvature_p"] > 0.05


def _direct_nll(k: float, y: np.ndarray, low: float) -> float:
    """The censored exponential written from the samples themselves: density k·e^(−ky) below the
    bottom, survival e^(−k·low) at it."""
    inside = y[y < low]
    return -(len(inside) * math.log(k) - k * inside.sum() - k * low * (y >= low).sum())


def test_fit_is_the_censored_exponential_maximum_likelihood():
    m = power_samples(np.random.default_rng(5), 500, 1.3, 0.2)
    c = window_cells(m)
    high, low = c["eps_high"], math.log(10)
    y = np.log(high / m[m < high])
    ref = optimize.minimize_scalar(
        _direct_nll, bounds=(0.01, 20), args=(y, low), method="bounded", options={"xatol": 1e-10}
    )
    k = hill.fit(c["edges"][None], c["counts"][None])[0]
    se = ref.x / math.sqrt((y < low).sum())
    assert abs(k - ref.x) < 0.15 * se  # the fine cells lose (k·L/16)²/12 of the information
    e, n = c["edges"], c["counts"]
    binned = optimize.minimize_scalar(
        lambda v: -hill.loglik(e[None], n[None], np.array([v]))[0],
        bounds=(0.01, 20),
        method="bounded",
        options={"xatol": 1e-10},
    )
    assert k == pytest.approx(binned.x, rel=1e-6)
    assert c["n_broken"] == math.ceil(MAX_ERROR * 500) - 1  # the breaks strictly below the order statistic


def test_grid_fit_is_the_interval_censored_maximum_likelihood():
    rng = np.random.default_rng(3)
    m = np.ceil(power_samples(rng, 2000, 1.5, 0.3) / 0.3 * 256) / 256 * 0.3  # an 8-step bisection
    fit = fit_power_law(m)
    c = window_cells(m, grid=np.unique(m))
    e, n = c["edges"], c["counts"]

    def nll(k):
        s = np.r_[np.exp(-k * e), 0.0]
        p = s[:-1] - s[1:]
        return -(n[n > 0] * np.log(p[n > 0])).sum()

    ref = optimize.minimize_scalar(nll, bounds=(0.01, 20), method="bounded", options={"xatol": 1e-10})
    assert fit["slope"] == pytest.approx(ref.x, rel=1e-6) and fit["slope"] == pytest.approx(1.5, abs=0.2)
    assert fit["eps_high"] in np.unique(m)  # the window tops at a grid value, below the order statistic


def test_rounded_continuous_eps_are_merged_into_fine_grid_cells():
    """ε printed to 6 decimals tie often enough to look quantized, with tens of thousands of distinct
    values: the window's grid cells are merged, on grid values, to the fine cells' resolution, and
    the fit stays the continuous one (it took minutes per bootstrap at 3 000 models before)."""
    rng = np.random.default_rng(5)
    exact = power_samples(rng, 20000, 1.5, 0.3)
    m = exact.round(6)
    grid = study_grid([m])
    assert grid is not None and len(grid) > 10 * MAX_GRID_CELLS
    c = window_cells(m, grid=grid)
    assert len(c["edges"]) <= hill.FINE_CELLS + 1 and c["counts"].sum() == c["n_broken"]
    # every kept edge is a grid value's: a sample still lies inside its cell
    kept = c["eps_high"] / np.exp(c["edges"])
    assert np.all(np.min(np.abs(kept[:, None] / grid[None, :] - 1), axis=1) < 1e-12)
    k = hill.fit(c["edges"][None], c["counts"][None])[0]
    cont = fit_power_law(exact)
    assert k == pytest.approx(cont["slope"], abs=0.2 * cont["slope_se"])


def test_a_saturated_model_s_window_stops_below_its_saturation():
    """A weak model reaches 100% error at ε = 0.03, a strong one at 0.3 (one k): each window tops
    below its own model's saturation and both recover k. One window for all models, topped where the
    pooled error reached 25%, put the weak model's saturation inside it."""
    rng = np.random.default_rng(8)
    eps = {0: power_samples(rng, 400, 1.5, 0.03), 1: power_samples(rng, 400, 1.5, 0.3)}
    samples = pd.DataFrame(
        {
            "trial": np.repeat([0, 1], 400),
            "minimization_min_eps": np.r_[eps[0], eps[1]],
            "min_adversarial_eps": np.r_[eps[0], eps[1]],
            "margin": rng.random(800),
        }
    )
    t = power_law_table(samples, [0, 1]).set_index("trial")
    assert t.loc[0, "eps_high"] < 0.03 and t.loc[1, "eps_high"] < 0.3
    assert t.loc[0, "eps_high"] == pytest.approx(np.sort(eps[0])[99])  # its own 25% of breaks
    assert (t["error_high"] < 0.3).all()  # each window ends at the small-ε quarter of its own model
    for trial in (0, 1):
        assert t.loc[trial, "ci_low"] < 1.5 < t.loc[trial, "ci_high"]


def test_a_window_topped_at_the_grid_s_first_value_is_no_window():
    """ε on the quick suite's grid: a weak model whose window tops at the grid's first value has a
    window of no width (it came out "ok" with k = 1 and SE ∞, and crashed the universality test)."""
    grid = np.array([0.02, 0.05, 0.1, 0.15, 0.2, 0.3])
    rng = np.random.default_rng(2)
    weak = np.r_[np.full(12, 0.02), np.full(60, 0.05), np.full(28, np.inf)]  # its 25% of breaks: at 0.05
    strong = grid[np.searchsorted(grid, power_samples(rng, 100, 1.5, 0.6))[:, None].clip(0, 5)].ravel()
    strong[power_samples(rng, 100, 1.5, 0.6) > 0.3] = np.inf
    eps = np.r_[weak, weak, strong]
    s = pd.DataFrame({"trial": np.repeat([0, 1, 2], 100), "minimization_min_eps": eps, "margin": rng.random(300)})
    t = power_law_table(s.assign(min_adversarial_eps=eps), [0, 1, 2]).set_index("trial")
    assert t.loc[0, "status"].startswith("no usable ε window") and math.isnan(t.loc[0, "slope"])
    from robustarch.analysis.findings import findings_rows

    row = findings_rows(pd.DataFrame({"trial": [0, 1]}), t.reset_index().iloc[:2], claims=["universality"])[0]
    assert row["reason"] and row["verdict"] == "inconclusive"


@pytest.mark.parametrize("name", ["logistic", "exponential"])
def test_fit_rejects_curves_that_are_not_power_laws(name):
    rng = np.random.default_rng(1)
    if name == "logistic":  # an S-shaped CDF in ε: the log–log curve bends upward, then flattens
        u = rng.random(4000)
        m = 0.1 + 0.02 * np.log(u / (1 - u))
        window, bend = (0.01, 0.1), 1
    else:  # 1 − exp(−ε/0.05): local slope falls from 1 as ε grows
        m, window, bend = rng.exponential(0.05, 4000), (0.005, 0.05), -1
    fit = fit_power_law(m[m > 0], window)
    assert fit["status"] == "ok" and not fit["power_law_ok"] and fit["curvature_p"] < 0.01
    assert np.sign(fit["curvature"]) == bend


def test_homogeneity_lr_is_the_likelihood_ratio_of_one_rate():
    rng = np.random.default_rng(2)
    cells = [window_cells(power_samples(rng, 300, k, 0.2)) for k in (1.0, 1.5, 2.0, 1.5)]
    edges, counts = pack(cells)
    nll = lambda k, i: -hill.loglik(edges[i : i + 1], counts[i : i + 1], np.array([k]))[0]  # noqa: E731
    each = sum(optimize.minimize_scalar(nll, bounds=(0.01, 20), args=(i,), method="bounded").fun for i in range(4))
    common = optimize.minimize_scalar(lambda k: sum(nll(k, i) for i in range(4)), bounds=(0.01, 20), method="bounded")
    h = homogeneity_test(edges, counts, n_sim=39)
    assert h["statistic"] == pytest.approx(2 * (common.fun - each), rel=1e-5)
    assert h["common_k"] == pytest.approx(common.x, rel=1e-4) and h["df"] == 3 and h["p_value"] == 1 / 40
    same = pack([window_cells(power_samples(rng, 300, 1.5, 0.2)) for _ in range(4)])
    assert homogeneity_test(*same, n_sim=199)["p_value"] > 0.01


def test_frailty_fit_is_the_gamma_mixture_maximum_likelihood():
    rng = np.random.default_rng(1)
    d = rng.integers(10, 40, 30).astype(float)
    t = rng.gamma(d, 1 / rng.gamma(56.25, 1 / 37.5, 30))  # k ~ Gamma(mean 1.5, SD 0.2)

    def nll(v):
        a, b = math.exp(v[0]), math.exp(v[1])
        return -(special.gammaln(a + d) - special.gammaln(a) + a * math.log(b) - (a + d) * np.log(b + t)).sum()

    ref = optimize.minimize(
        nll, [3, 1], method="Nelder-Mead", options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 5000}
    )
    mu, tau, ll = frailty.fit(d, t)
    a, b = np.exp(ref.x)
    assert mu[0] == pytest.approx(a / b, rel=1e-5) and tau[0] == pytest.approx(math.sqrt(a) / b, rel=1e-4)
    assert ll[0] == pytest.approx(-ref.fun, abs=1e-6)


def _link_model(rng, n=4000, slope=1.0, df=None):
    margin = rng.random(n) ** (1 / 1.5)
    noise = rng.standard_normal(n) if df is None else rng.standard_t(df, n)
    eps = 0.1 * margin**slope * np.exp(0.3 * noise)
    return margin, np.where(eps <= 0.05, eps, np.inf)  # ε beyond the attack's 0.05: never broken


def test_censored_margin_link_is_unbiased_where_dropping_never_broken_samples_is_not():
    rng = np.random.default_rng(4)
    margin, eps = _link_model(rng)
    censored = np.isinf(eps)
    assert 0.3 < censored.mean() < 0.7
    beta, se, n, n_cens = margin_link(eps, margin, censor=0.05)
    assert n == 4000 and n_cens == censored.sum() and beta == pytest.approx(1.0, abs=3 * se)
    drop = stats.linregress(np.log(margin[~censored]), np.log(eps[~censored]))  # the truncating estimator
    assert drop.slope < 1 - 10 * drop.stderr  # truncated at the top: pulled towards 0


def test_censored_margin_link_holds_under_heavy_tailed_noise():
    """t₂ noise, half the samples never broken: the rank estimator assumes no error law and stays on
    the truth; the normal-error Tobit fit it replaced came out at 1.49 here (9 of its SEs high)."""
    margin, eps = _link_model(np.random.default_rng(9), 4000, 1.25, df=2)
    assert 0.3 < np.isinf(eps).mean() < 0.7
    beta, se, _, _ = margin_link(eps, margin, censor=0.05)
    assert beta == pytest.approx(1.25, abs=2.5 * se) and se < 0.05


def test_censored_margin_link_is_the_root_of_gehan_s_rank_score():
    """On 150 samples: the estimate minimizes Gehan's convex loss Σ δ_i (e_j − e_i)⁺ (written out over
    all pairs), and its interval is where the Gehan test, U/√V with V = Σ_i (sample i's share of U)²,
    does not reject."""
    rng = np.random.default_rng(6)
    margin, eps = _link_model(rng, 150, 1.2, df=3)
    x, d = np.log(margin), np.isfinite(eps).astype(float)
    y = np.where(d, np.log(np.where(d, eps, 1.0)), math.log(0.05))

    def pairs(b):
        e = y - b * x
        later = e[None, :] >= e[:, None]  # [i, j]: e_j ≥ e_i
        psi = (x[:, None] - x[None, :]) * (d[:, None] * later - (d[None, :] * later.T))
        return (d[:, None] * np.maximum(0.0, e[None, :] - e[:, None])).sum(), psi

    beta, se, _, _ = margin_link(eps, margin, censor=0.05)
    grid = beta + np.linspace(-0.05, 0.05, 1001)
    assert abs(grid[np.argmin([pairs(b)[0] for b in grid])] - beta) <= 2e-4  # to the root's precision
    (b0,), (lo,), (hi,) = gehan(*(v[None] for v in (x - x.mean(), y, d)), np.array([len(x)]))
    assert b0 == pytest.approx(beta) and se == pytest.approx((hi - lo) / (2 * 1.959964))
    for end, sign in ((lo, -1), (hi, 1)):
        z = [psi.sum() / 2 / math.sqrt((psi.sum(1) ** 2).sum()) for _, psi in (pairs(end - 1e-3), pairs(end + 1e-3))]
        assert z[0] <= sign * 1.959964 <= z[1]  # the test turns at the interval's end


def test_power_law_without_enough_breaks_says_why():
    few = np.array([0.05, 0.06] + [np.inf] * 50)
    fit = fit_power_law(few, (0.01, 0.1))
    assert math.isnan(fit["slope"]) and fit["status"].startswith("only 2 sample(s) broken inside the window")
    assert fit_power_law(np.array([np.inf, np.inf]))["status"] == "never broken at any ε"


def test_the_pooled_bend_is_corrected_for_the_bias_of_the_one_step_curvature():
    """On exact power laws with ~24 breaks per model the one-step ĉ has mean −k²/(2d) (−0.22 in bend
    units): pooled over 200 models that alone would say "bends downward". Less its bootstrap bias it
    is centred on 0."""
    from robustarch.analysis.gof import form_test
    from robustarch.analysis.powerlaw import cells_of

    rng = np.random.default_rng(0)
    s = pd.DataFrame(
        {
            "trial": np.repeat(np.arange(200), 100),
            "minimization_min_eps": np.concatenate([power_samples(rng, 100, 1.5, 0.1) for _ in range(200)]),
            "margin": rng.random(20000),
        }
    )
    t = power_law_table(s.assign(min_adversarial_eps=s["minimization_min_eps"]), range(200))
    ok = t[t["status"] == "ok"]
    span = 2 * ok["window_span"]
    raw = ok["curvature"] * span
    fixed = (ok["curvature"] - form_test(*cells_of(ok), n_sim=39)["c_bias"]) * span
    se = raw.std() / math.sqrt(len(ok))
    assert raw.mean() < -2 * se and abs(fixed.mean()) < 2.5 * se


def test_the_margin_tail_match_pools_without_weights_that_follow_the_estimates():
    """Exponential MLEs k̂ = d/T with SE k̂/√d: weighting each model by its own 1/(k̂² + κ̂²) favours
    models whose κ̂ came out low, pulling the pooled k − κ towards 0. Weights from d alone do not."""
    from robustarch.analysis.findings import findings_rows
    from robustarch.analysis.pooling import pool

    rng = np.random.default_rng(0)
    m, d = 20000, 90
    k, kappa = d / rng.gamma(d, 1 / 1.5, m), d / rng.gamma(d, 1 / 1.75, m)
    power = pd.DataFrame(
        {
            "trial": range(m),
            "status": "ok",
            "slope": k,
            "slope_se": k / math.sqrt(d),
            "margin_tail_slope": kappa,
            "margin_tail_se": kappa / math.sqrt(d),
        }
    )
    row = findings_rows(pd.DataFrame({"trial": range(m)}), power, claims=["slope_matches_margin_tail"])[0]
    truth = -0.25 * d / (d - 1)  # E[d/T] = k·d/(d − 1) for each
    own = pool(k - kappa, (k**2 + kappa**2) / d)
    se = (row["ci_high"] - row["ci_low"]) / (2 * 1.96)
    assert abs(row["value"] - truth) < 3 * se and own["mean"] - truth > 3 * se
