"""The power-law claims' tests (called by analysis.findings): form, universality, the margin link and
the margin-tail shape, on the per-model fits of analysis.powerlaw. Every p that can give a verdict is
in the row: `p_value` (the claim's main test) and `p_flat` / `p_below` / `p_outside` (the other
direction), for one multiplicity family (analysis.findings)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .frailty import tau_below_test
from .gof import form_test, homogeneity_test, n_replicates
from .pooling import mean_t, pool, slope_summary
from .powerlaw import cells_of
from .verdicts import tost


def _fitted(power: pd.DataFrame) -> pd.DataFrame:
    ok = power[power["status"] == "ok"]
    return ok[np.isfinite(ok["slope"].astype(float)) & (ok["slope"].astype(float) > 0)]


def _equiv(pooled: dict, centre: float, margin: float) -> dict:
    return tost(pooled["mean"], pooled["se"], centre - margin, centre + margin, df=pooled["df"])


def power_law(c, power: pd.DataFrame, row, skip, n_gof: int, seed: int) -> dict:
    ok = _fitted(power)
    stat = "random-effects mean of k"
    if len(ok) < c.min_n:
        return skip(
            c,
            stat,
            len(ok),
            f"{len(ok)} model(s) with a fit ({len(power) - len(ok)} without: too few "
            "breaks in their own ε window or no per-sample ε)",
        )
    edges, counts = cells_of(ok)
    gof = form_test(edges, counts, n_sim=n_gof, seed=seed)
    s = slope_summary(ok)
    span = 2 * ok["window_span"].to_numpy(float)  # local slope k + 2c·ln(ε/ε_high): its change over the window
    # each one-step ĉ less its bootstrap bias (gof.form_test): −k²/(2d), which pooling would not average out
    c_hat = ok["curvature"].to_numpy(float) - gof["c_bias"]
    bend = pool(c_hat * span, (ok["curvature_se"].to_numpy(float) * span) ** 2)
    t = _equiv(bend, 0.0, c.margin)
    return row(
        c,
        stat,
        len(ok),
        s["pooled"],
        (s["pooled_ci_low"], s["pooled_ci_high"]),
        gof["p_value"],
        p_flat=t["p_tost"],
        window=(float(ok["eps_low"].min()), float(ok["eps_high"].max())),
        gof=gof,
        curvature=bend["mean"],
        curvature_ci=(bend["ci_low"], bend["ci_high"]),
        curvature_ci90=t["ci90"],
        slope_low=s["pooled"] - bend["mean"] / 2,
        slope_high=s["pooled"] + bend["mean"] / 2,
        summary=s,
        sources=sorted(set(ok["error_source"].dropna())),
    )


def universality(c, power: pd.DataFrame, row, skip, n_gof: int, seed: int) -> dict:
    ok = _fitted(power)
    ok = ok[np.isfinite(ok["slope"].astype(float))]
    stat = "τ (between-model SD of k)"
    if len(ok) < c.min_n:
        return skip(c, stat, len(ok), f"{len(ok)} model(s) with a finite slope")
    edges, counts = cells_of(ok)
    h = homogeneity_test(edges, counts, n_sim=n_gof, seed=seed)
    b = tau_below_test(edges, counts, c.margin, n_sim=n_replicates(edges, n_gof), seed=seed + 1)
    s = slope_summary(ok)
    return row(
        c,
        stat,
        len(ok),
        b["tau"],
        (0.0, b["tau_upper"]),
        h["p_value"],
        p_below=b["p_below"],
        tau_upper=b["tau_upper"],
        homogeneity=h,
        frailty=b,
        summary={**s, "lr": h["statistic"], "lr_df": h["df"], "common_k": h["common_k"]},
    )


def _pooled_equivalence(c, est, var, centre: float, statistic: str, what: str, row, skip, plain=False) -> dict:
    r = pool(est, var)
    if plain:  # the plain mean's t test (pooling.mean_t); τ and I² stay the random-effects ones
        r |= mean_t(np.asarray(est, float)[np.isfinite(np.asarray(var, float))])
    if r["k"] < c.min_n or not math.isfinite(r["mean"]):
        return skip(c, statistic, r["k"], f"{r['k']} model(s) with {what} (needs ≥ {c.min_n})")
    t = _equiv(r, centre, c.margin)
    return row(
        c,
        statistic,
        r["k"],
        r["mean"],
        (r["ci_low"], r["ci_high"]),
        t["p_tost"],
        p_outside=t["p_outside"],
        ci90=t["ci90"],
        center=centre,
        tau=r["tau"],
        i2=r["i2"],
    )


def margin_link(c, power: pd.DataFrame, row, skip, n_gof: int, seed: int) -> dict:
    p = power.astype({"margin_link_slope": float, "margin_link_se": float})
    # a rank slope's interval widens as the slope grows (corr 0.3 under t₂ noise, benchmarks/sim_link.py):
    # inverse-variance weights leaned the pooled slope down by 0.02, so every model counts once
    return _pooled_equivalence(
        c,
        p["margin_link_slope"].to_numpy(),
        p["margin_link_se"].to_numpy() ** 2,
        1.0,
        "mean over models of the within-model slope of log ε on log margin (censored: Gehan rank estimator)",
        "≥ 10 broken samples with a positive margin",
        row,
        skip,
        plain=True,
    )


def margin_shape(c, power: pd.DataFrame, row, skip, n_gof: int, seed: int) -> dict:
    ok = _fitted(power)
    tail = ok["margin_tail_slope"].astype(float)
    ok = ok[np.isfinite(tail) & (tail > 0)]
    k, kappa = ok["slope"].to_numpy(float), ok["margin_tail_slope"].to_numpy(float)
    # Weights from each model's information alone: Var(k̂) = k²/d with d = (k̂/SE)² free of k̂ (exact for
    # an uncensored exponential). With each model's own k̂² the weights follow the estimates — a model
    # whose κ̂ came out low is both closer to its k̂ and weighted up — and the pooled difference leans
    # towards 0 (15% "supported" of 60 studies at the margin with 200 models).
    d_k, d_t = (k / ok["slope_se"].to_numpy(float)) ** 2, (kappa / ok["margin_tail_se"].to_numpy(float)) ** 2
    d = k - kappa
    v = np.mean(k) ** 2 / d_k + np.mean(kappa) ** 2 / d_t if len(d) else d  # no model: skipped below, no warning
    return _pooled_equivalence(
        c, d, v, 0.0, "pooled (slope − tail exponent)", "a slope and a margin-tail exponent", row, skip
    )


POWER_TESTS = {
    "power_law": power_law,
    "universality": universality,
    "margin_explains_slope": margin_link,
    "slope_matches_margin_tail": margin_shape,
}
