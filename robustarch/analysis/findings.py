"""The study's claims as a table: each with its statistic, 95% CI, n, test, raw and Holm-adjusted p
and a verdict (supported / not supported / inconclusive), so the summary says only what this holds.

Three kinds of claim, each with its own verdict rule (α = 0.05):
- a relation ("robust accuracy rises with clean accuracy"): supported when the Holm-adjusted p is
  below α and the sign is the claimed one; otherwise not supported.
- a negligible effect or a match ("size adds little", "slope = tail exponent"): supported when the
  95% CI lies inside ±margin (an equivalence test); not supported when the Holm-adjusted p shows a
  difference; otherwise inconclusive (the CI is too wide to say).
- a functional form ("error ∝ ε^k"): the form is the null of goodness-of-fit tests, so the verdict
  uses the raw p (Holm would only make rejecting it harder): not supported when p < α.
Every claim is inconclusive, with the reason, when its data are too few.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from .powerlaw import ALPHA, slope_summary
from .stats import N_BOOT, correlate, partial_correlation, percentile_ci
from .wording import finding_text

SMALL_PARTIAL_R = 0.3  # |partial r| within which size "adds little" once clean accuracy is known
SLOPE_MARGIN = 0.25  # |slope − tail exponent| within which they "match"
PARAM_RATIO = 1.25  # two models are at matched size when their parameter counts differ by ≤ 25%
MIN_MODELS = 5
MIN_PAIRS = 8  # with fewer, even all pairs agreeing gives a Wilcoxon p too large to survive Holm
BIASED_SAMPLERS = ("tpe", "gp", "nsgaii")
COLUMNS = ["key", "claim", "verdict", "statistic", "value", "ci_low", "ci_high", "n", "test", "p_value", "p_holm",
           "kind", "text"]


def holm(p_values) -> np.ndarray:
    """Holm's step-down adjusted p-values (NaN entries are not tests and stay NaN): sort the m
    p-values, multiply the i-th smallest by m − i + 1, keep the running maximum, cap at 1."""
    p = np.asarray(p_values, float)
    out = np.full(len(p), np.nan)
    idx = np.flatnonzero(np.isfinite(p))
    order = idx[np.argsort(p[idx], kind="stable")]
    m = len(order)
    running = 0.0
    for i, j in enumerate(order):
        running = max(running, min(1.0, (m - i) * p[j]))
        out[j] = running
    return out


def _row(key: str, claim: str, kind: str, statistic: str, test: str, n: int, value=math.nan, ci=(math.nan, math.nan),
         p=math.nan, reason: str | None = None, **extra) -> dict:
    return {"key": key, "claim": claim, "kind": kind, "statistic": statistic, "test": test, "n": n, "value": value,
            "ci_low": ci[0], "ci_high": ci[1], "p_value": p, "reason": reason, **extra}


def _median_ci(values: np.ndarray, n_boot: int, seed: int) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    return percentile_ci(np.median(values[rng.integers(0, len(values), (n_boot, len(values)))], axis=1))


def _tracks(u: pd.DataFrame, conditional: bool, n_boot: int, seed: int) -> dict:
    clean_att = u["attacked_clean_accuracy"].fillna(u["clean_accuracy"]).astype(float)
    robust = u["robust_accuracy"].astype(float)
    target = robust / clean_att.where(clean_att > 0) if conditional else robust
    r = correlate(target, u["clean_accuracy"], methods=("spearman",), n_boot=n_boot, seed=seed)[0]
    claim = ("Among clean-correct samples, the share that survives the attack rises with clean accuracy"
             if conditional else "Robust accuracy rises with clean accuracy")
    reason = None if r["n"] >= MIN_MODELS and math.isfinite(r["coef"]) else f"{r['n']} usable models"
    key = "conditional_tracks_clean" if conditional else "robust_tracks_clean"
    return _row(key, claim, "relation", "Spearman ρ", "Spearman rank correlation (two-sided)", r["n"], r["coef"],
                (r["ci_low"], r["ci_high"]), r["p_value"], reason, conditional=conditional)


def _size(u: pd.DataFrame, n_boot: int, seed: int) -> dict:
    r = partial_correlation(u["robust_accuracy"], u["log10_params"], u["clean_accuracy"], n_boot=n_boot, seed=seed)
    reason = None if r["n"] >= MIN_MODELS and math.isfinite(r["coef"]) else f"{r['n']} usable models"
    return _row("size_adds_little", "Model size adds little once clean accuracy is known", "negligible",
                "partial Pearson r (robust accuracy, log10 params | clean accuracy)",
                f"t test of the partial correlation; equivalence margin ±{SMALL_PARTIAL_R}", r["n"], r["coef"],
                (r["ci_low"], r["ci_high"]), r["p_value"], reason, margin=SMALL_PARTIAL_R)


def _power_law(power: pd.DataFrame) -> dict:
    ok = power[power["status"] == "ok"]
    claim = "At small ε, adversarial error ∝ ε^k (one power law per model)"
    test = "multinomial deviance χ² and log–log curvature LR test, summed over models (Bonferroni ×2)"
    if len(ok) < 3:
        return _row("power_law", claim, "form", "pooled slope k", test, len(ok),
                    reason=f"{len(ok)} model(s) with a fit ({len(power) - len(ok)} without: too few breaks in "
                           "the common ε window or no per-sample ε)")
    s = slope_summary(ok)
    p_dev = stats.chi2.sf(ok["deviance"].sum(), ok["deviance_df"].sum())
    p_curv = stats.chi2.sf(ok["curvature_lr"].sum(), len(ok))
    return _row("power_law", claim, "form", "pooled slope k", test, len(ok), s["pooled"],
                (s["pooled_ci_low"], s["pooled_ci_high"]),
                min(1.0, 2 * min(p_dev, p_curv)), median_curvature=float(ok["curvature"].median()),
                window=(float(ok["eps_low"].iloc[0]), float(ok["eps_high"].iloc[0])),
                sources=sorted(set(ok["error_source"].dropna())))


def _margin_match(power: pd.DataFrame, n_boot: int, seed: int) -> dict:
    both = power[(power["status"] == "ok")][["slope", "margin_tail_slope"]].dropna()
    d = (both["slope"] - both["margin_tail_slope"]).to_numpy(float)
    claim = "The power-law slope matches the logit-margin tail exponent"
    test = f"Wilcoxon signed-rank on slope − k; equivalence margin ±{SLOPE_MARGIN}"
    if len(d) < MIN_MODELS:
        return _row("slope_matches_margin_tail", claim, "negligible", "median (slope − tail exponent)", test, len(d),
                    reason=f"{len(d)} model(s) with both a slope and a tail exponent")
    p = float(stats.wilcoxon(d).pvalue) if np.any(d != 0) else 1.0
    return _row("slope_matches_margin_tail", claim, "negligible", "median (slope − tail exponent)", test, len(d),
                float(np.median(d)), _median_ci(d, n_boot, seed), p, margin=SLOPE_MARGIN)


def depth_pairs(u: pd.DataFrame, ratio: float = PARAM_RATIO) -> pd.DataFrame:
    """Disjoint pairs of models of different depth whose parameter counts differ by at most `ratio`,
    closest sizes first (each model in one pair at most, so the pairs are independent): the deeper
    one's robust accuracy minus the shallower one's."""
    t = u[["trial", "depth", "width", "params", "robust_accuracy"]].dropna().to_dict("records")
    cand = []
    for i in range(len(t)):
        for j in range(i + 1, len(t)):
            a, b = t[i], t[j]
            gap = abs(math.log(a["params"] / b["params"]))
            if a["depth"] != b["depth"] and gap <= math.log(ratio):
                cand.append((gap, i, j))
    used, rows = set(), []
    for _, i, j in sorted(cand):
        if i in used or j in used:
            continue
        used |= {i, j}
        deep, shallow = (t[i], t[j]) if t[i]["depth"] > t[j]["depth"] else (t[j], t[i])
        rows.append({"deeper_trial": deep["trial"], "shallower_trial": shallow["trial"],
                     "deeper_depth": deep["depth"], "shallower_depth": shallow["depth"],
                     "deeper_width": deep["width"], "shallower_width": shallow["width"],
                     "params_ratio": deep["params"] / shallow["params"],
                     "robust_difference": deep["robust_accuracy"] - shallow["robust_accuracy"]})
    return pd.DataFrame(rows, columns=["deeper_trial", "shallower_trial", "deeper_depth", "shallower_depth",
                                       "deeper_width", "shallower_width", "params_ratio", "robust_difference"])


def _depth(pairs: pd.DataFrame, n_boot: int, seed: int) -> dict:
    d = pairs["robust_difference"].to_numpy(float)
    claim = "At matched parameter count, deeper (thinner) nets are more robust"
    test = f"Wilcoxon signed-rank on disjoint pairs with params within ×{PARAM_RATIO:g}"
    if len(d) < MIN_PAIRS:
        return _row("deeper_more_robust", claim, "relation", "median robust accuracy (deeper − shallower)", test,
                    len(d), reason=f"only {len(d)} disjoint matched-size pair(s) of different depth (< {MIN_PAIRS})")
    p = float(stats.wilcoxon(d).pvalue) if np.any(d != 0) else 1.0
    return _row("deeper_more_robust", claim, "relation", "median robust accuracy (deeper − shallower)", test,
                len(d), float(np.median(d)), _median_ci(d, n_boot, seed), p)


def _verdict(r: dict) -> str:
    if r["reason"]:
        return "inconclusive"
    if r["kind"] == "relation":
        return "supported" if r["p_holm"] < ALPHA and r["value"] > 0 else "not supported"
    if r["kind"] == "form":
        return "not supported" if r["p_value"] < ALPHA else "supported"
    m = r["margin"]
    if -m < r["ci_low"] and r["ci_high"] < m:
        return "supported"
    return "not supported" if r["p_holm"] < ALPHA else "inconclusive"


def findings_table(u: pd.DataFrame, power: pd.DataFrame, *, n_boot: int = N_BOOT, seed: int = 0) -> pd.DataFrame:
    """Every claim about the models `u` (the trials in the statistics, with `robust_accuracy` at the
    headline ε) and their power-law fits `power`, Holm-corrected as one family."""
    rows = [_tracks(u, False, n_boot, seed), _tracks(u, True, n_boot, seed), _size(u, n_boot, seed),
            _power_law(power), _margin_match(power, n_boot, seed), _depth(depth_pairs(u), n_boot, seed)]
    for r, p in zip(rows, holm([r["p_value"] for r in rows])):
        r["p_holm"] = p
        r["verdict"] = _verdict(r)
        r["text"] = finding_text(r)
    return pd.DataFrame(rows)[COLUMNS]


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
