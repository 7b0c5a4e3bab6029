"""The study's claims as a table: each with its statistic, 95% CI, n, test, raw and Holm-adjusted p,
a three-way verdict (analysis.verdicts) and its sentence (analysis.wording).

The claims come from the registry (analysis.claims). One Holm family covers exactly the claims that
carry a p (`family_m` says how many); a claim with too few data, or whose columns are missing or
constant, is inconclusive with the reason and carries no p.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from .claims import DEPTH_CALIPER, PARAM_RATIO, Claim, resolve
from .phaseclaims import PHASE_TESTS
from .pooling import pool, slope_summary
from .powerlaw import DECADES, N_GOF, counts_of
from .gof import calibrated_gof, calibrated_homogeneity, calibrated_shape
from .stats import N_BOOT, correlate, partial_correlation
from .verdicts import ALPHA, Z90, Z95, fisher_se, hodges_lehmann, holm, n_to_decide, tost_normal, verdict
from .wording import finding_text

BIASED_SAMPLERS = ("tpe", "gp", "nsgaii")
COLUMNS = ["key", "claim", "verdict", "statistic", "value", "ci_low", "ci_high", "n", "test", "p_value", "p_holm",
           "family_m", "kind", "margin", "margin_reason", "n_to_decide", "reason", "text"]


def _row(c: Claim, statistic: str, n: int, value=math.nan, ci=(math.nan, math.nan), p=math.nan, **extra) -> dict:
    return {"key": c.key, "claim": c.title, "kind": c.kind, "statistic": statistic, "test": c.test, "n": int(n),
            "value": float(value), "ci_low": float(ci[0]), "ci_high": float(ci[1]), "p_value": float(p),
            "direction": c.direction, "margin": c.margin, "margin_reason": c.margin_reason, "center": 0.0,
            "reason": None, **extra}


def _skip(c: Claim, statistic: str, n: int, reason: str) -> dict:
    return _row(c, statistic, n, reason=reason)


def _tracks(c: Claim, u: pd.DataFrame, n_boot: int, seed: int) -> dict:
    clean_att = u["attacked_clean_accuracy"].fillna(u["clean_accuracy"]).astype(float) \
        if "attacked_clean_accuracy" in u else u["clean_accuracy"].astype(float)
    robust = u["robust_accuracy"].astype(float)
    conditional = c.key == "conditional_tracks_clean"
    target = robust / clean_att.where(clean_att > 0) if conditional else robust
    r = correlate(target, u["clean_accuracy"], methods=("spearman",), n_boot=n_boot, seed=seed)[0]
    if r["n"] < c.min_n or not math.isfinite(r["coef"]):
        return _skip(c, "Spearman ρ", r["n"], f"{r['n']} usable models (needs ≥ {c.min_n}, not constant)")
    return _row(c, "Spearman ρ", r["n"], r["coef"], (r["ci_low"], r["ci_high"]), r["p_value"], conditional=conditional)


def _size(c: Claim, u: pd.DataFrame, n_boot: int, seed: int) -> dict:
    r = partial_correlation(u["robust_accuracy"], u["log10_params"], u["clean_accuracy"], method="spearman",
                            n_boot=n_boot, seed=seed)
    stat = "rank partial correlation (robust accuracy, log10 params | clean accuracy)"
    if r["n"] < c.min_n or not math.isfinite(r["coef"]):
        return _skip(c, stat, r["n"], f"{r['n']} usable models (needs ≥ {c.min_n}: with fewer the equivalence test cannot "
                                      f"show |r| < {c.margin:g} even at r = 0)")
    z, se = math.atanh(max(-0.999999, min(0.999999, r["coef"]))), fisher_se(r["n"], r["coef"], 1, True)
    t = tost_normal(z, se, -math.atanh(c.margin), math.atanh(c.margin))
    return _row(c, stat, r["n"], r["coef"], (r["ci_low"], r["ci_high"]), t["p_tost"], p_outside=t["p_outside"],
                ci90=tuple(math.tanh(v) for v in t["ci90"]), p_zero=r["p_value"])


def _power_law(c: Claim, power: pd.DataFrame, n_gof: int, seed: int) -> dict:
    ok = power[power["status"] == "ok"]
    if len(ok) < c.min_n:
        return _skip(c, "pooled slope k (random effects)", len(ok),
                     f"{len(ok)} model(s) with a fit ({len(power) - len(ok)} without: too few breaks in the common "
                     "ε window or no per-sample ε)")
    x = np.log(np.geomspace(10 ** -DECADES, 1, int(ok["n_points"].iloc[0])))
    gof = calibrated_gof(counts_of(ok), x, n_sim=n_gof, seed=seed)
    s = slope_summary(ok)
    curv = pool(ok["curvature"], ok["curvature_se"] ** 2)
    span = 2 * abs(float(x[0]))  # the local slope k + 2c·x changes by 2c·|x_low| across the window
    t = tost_normal(curv["mean"] * span, curv["se"] * span, -c.margin, c.margin)
    lo_eps, hi_eps = float(ok["eps_low"].iloc[0]), float(ok["eps_high"].iloc[0])
    return _row(c, "pooled slope k (random effects)", len(ok), s["pooled"], (s["pooled_ci_low"], s["pooled_ci_high"]),
                gof["p_value"], p_flat=t["p_tost"], window=(lo_eps, hi_eps), gof=gof,
                curvature=curv["mean"] * span, curvature_ci=(curv["ci_low"] * span, curv["ci_high"] * span),
                slope_low=s["pooled"] - curv["mean"] * span / 2, slope_high=s["pooled"] + curv["mean"] * span / 2, summary=s,
                sources=sorted(set(ok["error_source"].dropna())))


def _universality(c: Claim, power: pd.DataFrame, n_gof: int, seed: int) -> dict:
    ok = power[(power["status"] == "ok") & np.isfinite(power["slope"])]
    s = slope_summary(ok)
    if s["n_models"] < c.min_n or not math.isfinite(s["q_p_value"]):
        return _skip(c, "τ (between-model SD of k)", s["n_models"], f"{s['n_models']} model(s) with a finite slope")
    x = np.log(np.geomspace(10 ** -DECADES, 1, int(ok["n_points"].iloc[0])))
    h = calibrated_homogeneity(counts_of(ok), x, n_sim=n_gof, seed=seed, tau_margin=c.margin)
    return _row(c, "τ (between-model SD of k)", s["n_models"], s["tau"], (0.0, s["tau_upper"]), h["p_value"],
                tau_upper=s["tau_upper"], p_below=h["p_below"], summary={**s, "q_p_value": h["p_value"]})


def _pooled_equivalence(c: Claim, est: pd.Series, var: pd.Series, center: float, statistic: str, what: str) -> dict:
    keep = np.isfinite(est) & np.isfinite(var) & (var > 0)
    r = pool(est[keep], var[keep])
    if r["k"] < c.min_n or not math.isfinite(r["mean"]):
        return _skip(c, statistic, r["k"], f"{r['k']} model(s) with {what} (needs ≥ {c.min_n})")
    t = tost_normal(r["mean"], r["se"], center - c.margin, center + c.margin)
    return _row(c, statistic, r["k"], r["mean"], (r["ci_low"], r["ci_high"]), t["p_tost"], p_outside=t["p_outside"],
                ci90=t["ci90"], center=center, tau=r["tau"], i2=r["i2"])


def _margin_link(c: Claim, power: pd.DataFrame) -> dict:
    return _pooled_equivalence(c, power["margin_link_slope"], power["margin_link_se"] ** 2, 1.0,
                               "pooled slope of log ε on log margin", "≥ 10 broken samples with a positive margin")


def _margin_shape(c: Claim, power: pd.DataFrame, n_gof: int, seed: int) -> dict:
    tails = power["margin_tail_counts"]
    ok = power[(power["status"] == "ok") & tails.notna() & (tails.astype(str) != "")]
    ok = ok[np.isfinite(ok["slope"]) & np.isfinite(ok["margin_tail_slope"])]
    statistic = "pooled (slope − tail exponent)"
    if len(ok) < c.min_n:
        return _skip(c, statistic, len(ok), f"{len(ok)} model(s) with a slope and a margin-tail exponent "
                                            f"(needs ≥ {c.min_n})")
    x = np.log(np.geomspace(10 ** -DECADES, 1, int(ok["n_points"].iloc[0])))
    r = calibrated_shape(counts_of(ok), counts_of(ok, "margin_tail_counts"), x, c.margin, n_sim=n_gof, seed=seed)
    ci = (r["mean"] - Z95 * r["se"], r["mean"] + Z95 * r["se"])
    return _row(c, statistic, len(ok), r["mean"], ci, r["p_equiv"], p_outside=r["p_outside"],
                ci90=(r["mean"] - Z90 * r["se"], r["mean"] + Z90 * r["se"]), tau=r["tau"])


N_BANDS = 200  # bands of the size gap the greedy matching walks through, smallest first


def _band_pairs(t: np.ndarray, alive: np.ndarray, lo: float, hi: float, ratio: float, caliper: float):
    """Pairs i < j of alive models with lo < |log(params_i / params_j)| ≤ hi passing both calipers, in
    the order (gap, clean difference, i, j) the matching takes them."""
    idx = np.flatnonzero(alive)
    logp = np.log(t[idx, 3])
    order = np.argsort(logp, kind="stable")
    ls = logp[order]
    start = np.searchsorted(ls, ls + max(lo - 1e-9, 0.0), side="left")
    stop = np.searchsorted(ls, ls + hi + 1e-9, side="right")
    start = np.maximum(start, np.arange(len(ls)) + 1)
    counts = np.maximum(stop - start, 0)
    first = np.repeat(np.arange(len(ls)), counts)
    second = np.repeat(start, counts) + (np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts))
    a, b = idx[order[first]], idx[order[second]]
    i, j = np.minimum(a, b), np.maximum(a, b)
    gap = np.abs(np.log(t[i, 3] / t[j, 3]))
    dclean = np.abs(t[i, 4] - t[j, 4])
    ok = (t[i, 1] != t[j, 1]) & (gap > lo) & (gap <= hi) & (gap <= math.log(ratio)) & (dclean <= caliper)
    i, j, gap, dclean = i[ok], j[ok], gap[ok], dclean[ok]
    o = np.lexsort((j, i, dclean, gap))  # ties in the row-major pair order they always had
    return i[o], j[o]


def _greedy_pairs(t: np.ndarray, ratio: float, caliper: float) -> list[tuple[int, int]]:
    """Closest pairs first, each model in one pair at most. The gap range is walked in bands, each
    band's pairs made among the models still unmatched: all n² pairs were 2 GB and minutes at 15 625
    models; the order, and so the pairs, are those of sorting every pair at once."""
    alive = np.ones(len(t), bool)
    edges = np.r_[-1.0, np.linspace(0, math.log(ratio), N_BANDS + 1)[1:]]
    out = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        if alive.sum() < 2:
            break
        for a, b in zip(*_band_pairs(t, alive, lo, hi, ratio, caliper)):
            if alive[a] and alive[b]:
                alive[a] = alive[b] = False
                out.append((a, b))
    return out


def depth_pairs(u: pd.DataFrame, ratio: float = PARAM_RATIO, caliper: float = DEPTH_CALIPER) -> pd.DataFrame:
    """Disjoint pairs of models of different depth whose parameter counts differ by at most `ratio`
    and clean accuracies by at most `caliper`, closest first (each model in one pair at most, so the
    pairs are independent): the deeper one's robust accuracy minus the shallower one's, and whether
    the deeper one is also the thinner."""
    cols = ["deeper_trial", "shallower_trial", "deeper_depth", "shallower_depth", "deeper_width", "shallower_width",
            "params_ratio", "clean_difference", "thinner", "robust_difference"]
    t = u[["trial", "depth", "width", "params", "clean_accuracy", "robust_accuracy"]].dropna().to_numpy(float)
    if len(t) < 2:
        return pd.DataFrame(columns=cols)
    rows = []
    for a, b in _greedy_pairs(t, ratio, caliper):
        deep, shallow = (t[a], t[b]) if t[a, 1] > t[b, 1] else (t[b], t[a])
        rows.append([deep[0], shallow[0], deep[1], shallow[1], deep[2], shallow[2], deep[3] / shallow[3],
                     deep[4] - shallow[4], bool(deep[2] < shallow[2]), deep[5] - shallow[5]])
    out = pd.DataFrame(rows, columns=cols)
    return out.astype({"deeper_trial": int, "shallower_trial": int}) if rows else out


def _depth(c: Claim, pairs: pd.DataFrame) -> dict:
    d = pairs["robust_difference"].to_numpy(float)
    stat = "Hodges–Lehmann robust accuracy (deeper − shallower)"
    thinner = int(pairs["thinner"].sum()) if len(pairs) else 0
    if len(d) < c.min_n:
        return _skip(c, stat, len(d), f"only {len(d)} disjoint matched pair(s) of different depth (< {c.min_n})")
    p = float(stats.wilcoxon(d).pvalue) if np.any(d != 0) else 1.0
    est, ci = hodges_lehmann(d)
    return _row(c, stat, len(d), est, ci, p, thinner=thinner)


def _columns_reason(c: Claim, u: pd.DataFrame) -> str | None:
    for col in c.columns:
        if col not in u or pd.to_numeric(u[col], errors="coerce").notna().sum() == 0:
            return f"the study has no {col} column"
        if pd.to_numeric(u[col], errors="coerce").nunique() < 2:
            return f"{col} is constant in the study"
    return None


def _claim_row(c: Claim, u, power, *, n_boot, seed, n_gof) -> dict:
    why = _columns_reason(c, u)
    if why:
        return _skip(c, "–", len(u), why)
    if c.key in PHASE_TESTS:
        return PHASE_TESTS[c.key](c, u, _row, _skip)
    if c.key in ("robust_tracks_clean", "conditional_tracks_clean"):
        return _tracks(c, u, n_boot, seed)
    return {"size_adds_little": lambda: _size(c, u, n_boot, seed),
            "power_law": lambda: _power_law(c, power, n_gof, seed),
            "universality": lambda: _universality(c, power, n_gof, seed), "margin_explains_slope": lambda: _margin_link(c, power),
            "slope_matches_margin_tail": lambda: _margin_shape(c, power, n_gof, seed),
            "deeper_more_robust": lambda: _depth(c, depth_pairs(u))}[c.key]()


def findings_rows(u: pd.DataFrame, power: pd.DataFrame, *, claims=None, n_boot: int = N_BOOT, seed: int = 0,
                  n_gof: int = N_GOF) -> list[dict]:
    """The finding rows as dicts (every number the sentences use; `findings_table` keeps the columns)."""
    rows = [_claim_row(c, u, power, n_boot=n_boot, seed=seed, n_gof=n_gof) for c in resolve(claims)]
    adjusted = holm([r["p_value"] if not r["reason"] else math.nan for r in rows])
    m = int(np.isfinite(adjusted).sum())
    for r, p in zip(rows, adjusted):
        r["p_holm"], r["family_m"] = float(p), m
        if r["reason"]:
            r["p_value"] = math.nan
        r["verdict"] = verdict(r)
        r["n_to_decide"] = n_to_decide(r) if r["verdict"] == "inconclusive" and not r["reason"] else math.nan
        r["text"] = finding_text(r)
    return rows


def findings_table(u: pd.DataFrame, power: pd.DataFrame, *, claims=None, n_boot: int = N_BOOT, seed: int = 0,
                   n_gof: int = N_GOF) -> pd.DataFrame:
    """Every claim in `claims` (registry names; None → all) about the models `u` (one row per model,
    with `robust_accuracy` at the headline ε) and their power-law fits `power`
    (powerlaw.power_law_table), Holm-corrected as one family, with verdicts and sentences."""
    return pd.DataFrame(findings_rows(u, power, claims=claims, n_boot=n_boot, seed=seed, n_gof=n_gof))[COLUMNS]


def sampler_caveat(attrs: dict) -> str | None:
    """A warning when the study's sampler steers towards good models: its trials are then not a fair
    sample of the space, and correlations across them mix the sampler's taste with the relation."""
    sampler = str((attrs.get("robustarch_config") or {}).get("sampler") or "").lower()
    if sampler not in BIASED_SAMPLERS:
        return None
    return (f"The models were chosen by the {sampler} sampler, which concentrates trials where the objective "
            "is high: they are not a fair sample of the search space, so correlations across them can reflect "
            "the sampler as much as the architectures. For correlation studies run with --sampler random or "
            "--sampler qmc.")


__all__ = ["ALPHA", "depth_pairs", "findings_rows", "findings_table", "holm", "sampler_caveat"]
