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

from .attenuation import CORRECTION_COLUMNS, corrected_correlation, correction_effects, size_flag
from .claims import Claim, resolve
from .components import per_architecture
from .equivalence import MIN_CLUSTERS, size_equivalence
from .gof import N_GOF
from .jointnoise import joint_error
from .noiseclaim import icc_row
from .pairs import depth_pairs
from .phaseclaims import PHASE_TESTS
from .powerclaims import POWER_TESTS
from .stats import N_BOOT, PERMUTATION_N, Resampler, correlate, spearman_permutation_p
from .verdicts import ALPHA, adjusted, deciding_path, hodges_lehmann, holm, holm_family, n_to_decide, verdict
from .wording import finding_text

BIASED_SAMPLERS = ("tpe", "gp", "nsgaii")
# claims whose test has no cluster version: with related models they say they cannot decide
INDEPENDENT_ONLY = {
    "deeper_more_robust": "Wilcoxon signed-rank on matched pairs",
    "robust_falls_with_memorization": "pooled within-level Spearman ρ",
    "early_stop_preserves_robustness": "pooled within-level Spearman ρ",
}
COLUMNS = [
    "key",
    "claim",
    "verdict",
    "statistic",
    "value",
    "ci_low",
    "ci_high",
    "n",
    "test",
    "p_value",
    "p_holm",
    "decided_by",
    "p_decided",
    "p_decided_holm",
    "family_m",
    "family_claims",
    "kind",
    "margin",
    "margin_reason",
    "ci90_low",
    "ci90_high",
    "reliability_robust",
    "reliability_clean",
    *CORRECTION_COLUMNS,
    "families",
    "n_to_decide",
    "reason",
    "text",
]


def _row(c: Claim, statistic: str, n: int, value=math.nan, ci=(math.nan, math.nan), p=math.nan, **extra) -> dict:
    return {
        "key": c.key,
        "claim": c.title,
        "kind": c.kind,
        "statistic": statistic,
        "test": c.test,
        "n": int(n),
        "value": float(value),
        "ci_low": float(ci[0]),
        "ci_high": float(ci[1]),
        "p_value": float(p),
        "direction": c.direction,
        "margin": c.margin,
        "margin_reason": c.margin_reason,
        "center": 0.0,
        "reason": None,
        "reliability_robust": math.nan,
        "reliability_clean": math.nan,
        "value_raw": math.nan,
        "value_corrected": math.nan,
        "corrected_flag": None,
        "corrected_undefined_share": math.nan,
        "verdict_raw": None,
        "verdict_corrected": None,
        "correction_moved_verdict": None,
        "families": None,
        **extra,
    }


def _skip(c: Claim, statistic: str, n: int, reason: str) -> dict:
    return _row(c, statistic, n, reason=reason)


def families(u: pd.DataFrame) -> pd.Series | None:
    """The `family` labels of the models when some family holds more than one model (related
    models: variants of one design, fine-tunes of one checkpoint), else None."""
    if "family" not in u or u["family"].isna().all():
        return None
    fam = u["family"].astype(str).where(u["family"].notna(), "model " + u["trial"].astype(str))
    return fam if fam.duplicated().any() else None


NO_NOISE = (
    "the models' numbers come without evaluation SEs (no n_attacked, clean_accuracy_se or robust_accuracy_se "
    'column), and noise pulls a correlation towards 0, so "adds little" is not claimed on them'
)


def _few_families(c: Claim, statistic: str, n: int, n_families: int) -> dict:
    return _skip(
        c,
        statistic,
        n,
        f"{n} models in {n_families} families of related models: a test that allows for "
        f"related models resamples whole families and needs ≥ {MIN_CLUSTERS} of them",
    )


def _cluster_p(boots: np.ndarray) -> float:
    """Two-sided p of ρ = 0 from cluster-bootstrap values: the level at which the percentile interval
    just excludes 0 (Davison & Hinkley 1997, §4.4)."""
    b = boots[np.isfinite(boots)]
    return float(min(1.0, 2 * (1 + min((b <= 0).sum(), (b >= 0).sum())) / (len(b) + 1))) if len(b) else math.nan


def _tracks(c: Claim, u: pd.DataFrame, n_boot: int, seed: int) -> dict:
    clean_att = (
        u["attacked_clean_accuracy"].fillna(u["clean_accuracy"]).astype(float)
        if "attacked_clean_accuracy" in u
        else u["clean_accuracy"].astype(float)
    )
    robust = u["robust_accuracy"].astype(float)
    conditional = c.key == "conditional_tracks_clean"
    target = robust / clean_att.where(clean_att > 0) if conditional else robust
    clean = u["clean_accuracy"].astype(float)
    keep = (np.isfinite(target) & np.isfinite(clean)).to_numpy()
    fam, extra = families(u), {}
    if fam is not None:
        n_fam = fam[keep].nunique()
        if n_fam < MIN_CLUSTERS:
            return _few_families(c, "Spearman ρ", int(keep.sum()), n_fam)
        res = Resampler(int(keep.sum()), n_boot, seed, groups=fam[keep].to_numpy())
        r = correlate(target[keep], clean[keep], methods=("spearman",), resampler=res)[0]
        r["p_value"] = _cluster_p(res.statistic("spearman", target[keep].to_numpy(), clean[keep].to_numpy()))
        extra = {
            "families": n_fam,
            "bootstrap": "cluster",
            "test": f"Spearman rank correlation; two-sided p from a cluster bootstrap over {n_fam} families "
            "(percentile interval)",
        }
    else:
        res = Resampler(int(keep.sum()), n_boot, seed)  # the resamples `correlate` would draw
        r = correlate(target, clean, methods=("spearman",), resampler=res)[0]
        if math.isfinite(r["coef"]) and r["n"] < PERMUTATION_N:
            r["p_value"] = spearman_permutation_p(target[keep].to_numpy(), clean[keep].to_numpy(), seed=seed)
    if r["n"] < c.min_n or not math.isfinite(r["coef"]):
        return _skip(c, "Spearman ρ", r["n"], f"{r['n']} usable models (needs ≥ {c.min_n}, not constant)")
    joint = joint_error(u)
    if joint is not None:  # noise attenuates ρ (and shared errors inflate it) but leaves the test of 0 valid
        one = np.ones(int(keep.sum()))
        coefs = (one, 0 * one, 0 * one, one)
        if conditional:  # δ(r/c) = (δr − (r/c)·δc) / c, the delta method (clean's error stands for the attacked one's)
            ca, t = clean_att[keep].to_numpy(float), target[keep].to_numpy(float)
            coefs = (1 / ca, -t / ca, 0 * one, one)
        sub = joint.subset(keep)
        fix = corrected_correlation(target[keep].to_numpy(), clean[keep].to_numpy(), sub, res, r["coef"], coefs=coefs)
        rel_t, rel_c = fix.pop("rel")
        extra |= {"reliability_robust": rel_t, "reliability_clean": rel_c, **fix}
    return _row(
        c, "Spearman ρ", r["n"], r["coef"], (r["ci_low"], r["ci_high"]), r["p_value"], conditional=conditional, **extra
    )


def _size(c: Claim, u: pd.DataFrame, n_boot: int, seed: int) -> dict:
    stat = "rank partial correlation (robust accuracy, log10 params | clean accuracy)"
    fam = families(u)
    r = size_equivalence(u, c.margin, n_boot=n_boot, seed=seed, families=None if fam is None else fam.to_numpy())
    if fam is not None and r["n_eff"] < MIN_CLUSTERS:
        return _few_families(c, stat, r["n"], r["n_eff"])
    if r["n_eff"] < c.min_n or not math.isfinite(r["value_observed"]):
        unit = "families" if fam is not None else "usable models"
        return _skip(
            c,
            stat,
            r["n"],
            f"{r['n_eff']} {unit} (needs ≥ {c.min_n}: with fewer, even a partial "
            f"correlation of 0 has a 90% interval wider than ±{c.margin:g})",
        )
    if math.isfinite(r["reliability_robust"]) or math.isfinite(r["reliability_clean"]):
        stat = "disattenuated " + stat
    extra = {
        k: r[k]
        for k in (
            "value_observed",
            "reliability_robust",
            "reliability_clean",
            "n_eff",
            "method",
            "ci90_analytic",
            "ci90_boot",
        )
        if k in r
    }
    if not r["noise_known"]:  # attenuated numbers alone never show "≈ 0": only the contradicted path is open
        extra |= {"p_keys": ("p_outside",), "p_tost_unknown_noise": r["p_tost"], "no_support": NO_NOISE}
    elif math.isfinite(r["reliability_robust"]) or math.isfinite(r["reliability_clean"]):
        extra |= {"value_corrected": r["value"], "ci_corrected": r["ci"], "corrected_flag": size_flag(u, r)}
    return _row(
        c,
        stat,
        r["n"],
        r["value"],
        r["ci"],
        r["p_tost"] if r["noise_known"] else math.nan,
        p_outside=r["p_outside"],
        ci90=r["ci90"],
        p_zero=r["p_zero"],
        families=r["n_eff"] if fam is not None else None,
        **extra,
    )


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
    if c.key in INDEPENDENT_ONLY and families(u) is not None:
        return _skip(
            c,
            "–",
            len(u),
            f"its test ({INDEPENDENT_ONLY[c.key]}) assumes independent models, the "
            f"table puts them in {families(u).nunique()} families of related models, and "
            "no test that allows for families is implemented for it",
        )
    if c.key in PHASE_TESTS:
        return PHASE_TESTS[c.key](c, u, _row, _skip)
    if c.key in POWER_TESTS:
        return POWER_TESTS[c.key](c, power, _row, _skip, n_gof, seed)
    if c.key == "architecture_explains_robust":  # analysis.noiseclaim: needs replicate seeds
        return icc_row(c, u, n_boot=n_boot, seed=seed, row=_row, skip=_skip)
    if c.key in ("robust_tracks_clean", "conditional_tracks_clean"):
        return _tracks(c, u, n_boot, seed)
    return {
        "size_adds_little": lambda: _size(c, u, n_boot, seed),
        "deeper_more_robust": lambda: _depth(c, depth_pairs(u)),
    }[c.key]()


def findings_rows(
    u: pd.DataFrame, power: pd.DataFrame, *, claims=None, n_boot: int = N_BOOT, seed: int = 0, n_gof: int = N_GOF
) -> list[dict]:
    """The finding rows as dicts (every number the sentences use; `findings_table` keeps the columns),
    with one Holm family over every p that can produce a verdict (verdicts.holm_family)."""
    # claims are about architectures: seeds of one architecture enter as their mean (the ICC claim needs the seeds)
    arch_u = per_architecture(u)
    rows = [
        _claim_row(
            c, u if c.key == "architecture_explains_robust" else arch_u, power, n_boot=n_boot, seed=seed, n_gof=n_gof
        )
        for c in resolve(claims)
    ]
    for r in rows:
        if r["reason"]:
            r["p_value"] = math.nan
    holm_family(rows)
    for r in rows:
        r["verdict"] = verdict(r)
        r["decided_by"] = deciding_path(r)
        r["p_decided"] = r.get(r["decided_by"], math.nan) if not r["reason"] else math.nan
        r["p_decided_holm"] = adjusted(r, r["decided_by"]) if not r["reason"] else math.nan
        r["n_to_decide"] = n_to_decide(r) if r["verdict"] == "inconclusive" and not r["reason"] else math.nan
    correction_effects(rows)  # raw against corrected, and whether the correction moved the verdict
    for r in rows:
        r["text"] = finding_text(r)
    return rows


def findings_table(
    u: pd.DataFrame, power: pd.DataFrame, *, claims=None, n_boot: int = N_BOOT, seed: int = 0, n_gof: int = N_GOF
) -> pd.DataFrame:
    """Every claim in `claims` (registry names; None → all) about the models `u` (one row per model,
    with `robust_accuracy` at the headline ε) and their power-law fits `power`
    (powerlaw.power_law_table), Holm-corrected as one family, with verdicts and sentences."""
    rows = findings_rows(u, power, claims=claims, n_boot=n_boot, seed=seed, n_gof=n_gof)
    for r in rows:
        for name in ("ci90", "ci_raw", "ci_corrected"):
            r[f"{name}_low"], r[f"{name}_high"] = r.get(name) or (math.nan, math.nan)
    return pd.DataFrame(rows)[COLUMNS]


def sampler_caveat(attrs: dict) -> str | None:
    """A warning when the study's sampler steers towards good models: its trials are then not a fair
    sample of the space, and not independent either."""
    sampler = str((attrs.get("robustarch_config") or {}).get("sampler") or "").lower()
    if sampler not in BIASED_SAMPLERS:
        return None
    return (
        f"The models were chosen by the {sampler} sampler, which concentrates trials where the objective "
        "is high: they are not a fair sample of the search space, so correlations across them can reflect "
        "the sampler as much as the architectures. Nor are they independent: each proposal depends on every "
        "earlier trial, so all trials form one dependent sequence with no families a cluster bootstrap could "
        "resample, and the tests below treat them as independent: read their p-values as descriptive. For "
        "correlation studies run with --sampler random or --sampler qmc."
    )


def independence_caveat(attrs: dict, u: pd.DataFrame, source: str) -> str | None:
    """What the page must say about the independence of the models: the adaptive sampler (studies),
    the families of related models a table declares, or that a table declares none."""
    if source != "table":
        return sampler_caveat(attrs)
    fam = families(u)
    if fam is not None:
        return (
            f"The table puts its {len(u)} models in {fam.nunique()} families of related models (its `family` "
            f"column): tests that assume independent models resample whole families (a cluster bootstrap, "
            f"with ≥ {MIN_CLUSTERS} families) or say that they cannot decide."
        )
    if "family" in u and u["family"].notna().any():
        return None  # declared, and every model is its own family
    return (
        "The table does not say which models are related (variants of one design, one lab's recipe, fine-tunes "
        "of one checkpoint): the tests treat all models as independent. Related models make a correlation "
        "look surer than it is; add a `family` column naming each model's family to have the tests "
        "resample whole families."
    )


__all__ = [
    "ALPHA",
    "depth_pairs",
    "families",
    "findings_rows",
    "findings_table",
    "holm",
    "independence_caveat",
    "sampler_caveat",
]
