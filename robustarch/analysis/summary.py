"""The report's plain-language summary: sentences whose every number comes from an `Analysis`.

Wording follows the numbers: a relation is called positive or negative only when its 95% bootstrap
interval excludes zero; otherwise the sentence says there is no clear relation.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .analyzer import MIN_TRIALS_FOR_STATS, Analysis
from .stats import correlate

NAMES = {"clean_accuracy": "clean accuracy", "log10_params": "parameter count",
         "log10_flops": "FLOPs", "depth": "depth", "width": "width"}


def _f(v, d=2) -> str:
    return "–" if v is None or not math.isfinite(v) else f"{v:.{d}f}".replace("-", "−")


def _g(v) -> str:
    """A coefficient of any size: three significant digits."""
    return "–" if v is None or not math.isfinite(v) else f"{v:.3g}".replace("-", "−")


def _p(p) -> str:
    if p is None or not math.isfinite(p):
        return "p = –"
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def _ci(row) -> str:
    return f"[{_f(row['ci_low'])}, {_f(row['ci_high'])}]"


def _direction(row) -> str:
    lo, hi = row["ci_low"], row["ci_high"]
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return "cannot be judged against"
    if lo > 0:
        return "rises with"
    if hi < 0:
        return "falls with"
    return "shows no clear relation to"


def sentences(a: Analysis) -> list[str]:
    """The summary, one sentence (or short paragraph) per finding."""
    t = a.tables["trials"]
    out = [f"Study {a.study_name!s}: {a.n_total} trials, {a.n_complete} complete with attack results, "
           f"{int((t['state'] != 'COMPLETE').sum())} failed, pruned or unfinished."]
    if a.n_flagged:
        how = ("included in the statistics because include-flagged was set" if a.include_flagged else
               "excluded from the statistics (pass --include-flagged, or include_flagged=True, to include them)")
        out.append(f"{a.n_flagged} model(s) failed an attack sanity check and are {how}.")
    if not a.enough:
        out.append(f"Too few complete trials for statistics: {a.n_used} usable, at least "
                   f"{MIN_TRIALS_FOR_STATS} needed. Tables and plots below show the trials as they are.")
        return out
    for part in (_correlations, _partial_correlation, _linear_fit, _power_law, _margin_tail, _pareto,
                 _phase_diagram):
        out += part(a)
    return out


def _correlations(a: Analysis) -> list[str]:
    out = []
    corr = a.tables["correlations"]
    at = corr[np.isclose(corr["eps"].astype(float), a.eps) & (corr["method"] == "spearman")].set_index("variable")
    parts = []
    for var in ("clean_accuracy", "log10_params", "log10_flops", "depth", "width"):
        if var in at.index:
            r = at.loc[var]
            parts.append(f"{_direction(r)} {NAMES[var]} (Spearman ρ = {_f(r['coef'])} {_ci(r)}, n = {int(r['n'])})")
    if parts:
        out.append(f"Worst-case robust accuracy at ε = {a.eps:g} " + "; ".join(parts) + ".")
    auc = corr[corr["eps"].isna() & (corr["method"] == "spearman") & (corr["variable"] == "clean_accuracy")]
    if not auc.empty:
        r = auc.iloc[0]
        out.append(f"The area under the robust-accuracy ε-curve {_direction(r)} clean accuracy "
                   f"(Spearman ρ = {_f(r['coef'])} {_ci(r)}, n = {int(r['n'])}).")
    return out


def _partial_correlation(a: Analysis) -> list[str]:
    pc = a.tables["partial_correlations"]
    pc = pc[(pc["target"] == "robust_accuracy") & (pc["method"] == "pearson")]
    if pc.empty or not math.isfinite(pc.iloc[0]["coef"]):
        return []
    r = pc.iloc[0]
    verdict = ("so, once clean accuracy is known, size adds no clear information about robustness"
               if r["ci_low"] <= 0 <= r["ci_high"] else
               "so size matters beyond clean accuracy" if math.isfinite(r["ci_low"]) else "")
    return [f"Holding clean accuracy fixed, the partial correlation of robust accuracy with log "
            f"parameter count is r = {_f(r['coef'])} {_ci(r)} ({_p(r['p_value'])}, n = {int(r['n'])})"
            + (f", {verdict}." if verdict else ".")]


def _linear_fit(a: Analysis) -> list[str]:
    coef, fit = a.tables["ols_coefficients"], a.fits.get("ols", {})
    if coef.empty or not math.isfinite(fit.get("r2", math.nan)):
        return []
    c = coef.set_index("term")
    terms = []
    for term, unit in (("depth", "per extra layer"), ("width", "per extra channel"),
                       ("log10_params", "per tenfold parameters")):
        r = c.loc[term]
        terms.append(f"{term.replace('log10_', 'log ')} {_g(r['coef'])} {unit} "
                     f"[{_g(r['ci_low'])}, {_g(r['ci_high'])}]")
    return [f"A linear fit robust ~ clean + log params + depth + width explains R² = {_f(fit['r2'])} "
            f"of the variance (n = {fit['n']}); with clean accuracy held fixed: " + ", ".join(terms) + "."]


def _power_law(a: Analysis) -> list[str]:
    pl = a.fits.get("power_law", {})
    if not pl.get("n_models", 0):
        return []
    s = (f"At small ε adversarial error grows as a power of ε: median slope {_f(pl['median'])} "
         f"(interquartile range {_f(pl['q1'])}–{_f(pl['q3'])}) over {pl['n_models']} models")
    if math.isfinite(pl.get("q_p_value", math.nan)):
        same = pl["q_p_value"] >= 0.05
        s += (f"; Cochran's Q = {_f(pl['cochran_q'], 1)} on {int(pl['q_df'])} df ({_p(pl['q_p_value'])}, "
              f"I² = {_f(100 * pl['i2'], 0)}%): " +
              ("the slopes are consistent with one universal value "
               f"({_f(pl['pooled'])} [{_f(pl['pooled_ci_low'])}, {_f(pl['pooled_ci_high'])}])" if same else
               "the slopes differ between models by more than their fitting uncertainty"))
    sc = a.tables.get("slope_correlations", pd.DataFrame())
    sc = sc[sc["method"] == "spearman"].set_index("variable") if not sc.empty else sc
    if not sc.empty:
        s += "; the slope " + ", ".join(f"{_direction(sc.loc[v])} {NAMES[v]} (ρ = {_f(sc.loc[v, 'coef'])} {_ci(sc.loc[v])})"
                                        for v in ("log10_params", "depth", "width") if v in sc.index)
    return [s + "."]


def _margin_tail(a: Analysis) -> list[str]:
    if not a.fits.get("power_law", {}).get("n_models", 0):
        return []
    fits = a.tables["power_law"]
    fits = fits[fits["in_statistics"].fillna(False).astype(bool)]
    both = fits[["slope", "margin_tail_slope"]].dropna()
    if len(both) < MIN_TRIALS_FOR_STATS:
        return []
    r = pd.Series(correlate(both["slope"], both["margin_tail_slope"], methods=("spearman",))[0])
    return [f"The logit margins explain the law if the slope matches the exponent k of the "
            f"small-margin tail, CDF(margin) ∝ margin^k: median k = {_f(both['margin_tail_slope'].median())} "
            f"vs median slope {_f(both['slope'].median())}; across models the slope "
            f"{_direction(r)} k (Spearman ρ = {_f(r['coef'])} {_ci(r)}, n = {int(r['n'])})."]


def _pareto(a: Analysis) -> list[str]:
    front = a.tables["pareto_front"]
    if front.empty:
        return []
    u = a.used_trials
    best = u.loc[u["robust_accuracy"].idxmax()]
    return [f"{len(front)} model(s) are Pareto-optimal for clean vs robust accuracy; the most robust "
            f"{'of the models in the statistics ' if a.n_flagged and not a.include_flagged else ''}is "
            f"trial {int(best['trial'])} ({best['arch_summary']}) with robust accuracy "
            f"{_f(best['robust_accuracy'], 3)} at clean accuracy {_f(best['clean_accuracy'], 3)}."]


def _phase_diagram(a: Analysis) -> list[str]:
    if a.tables["phase_diagram"].empty:
        return ["Training knobs (learning rate, batch size, training fraction) were not searched: no phase diagram."]
    u = a.used_trials
    out = []
    for knob, name in (("temperature", "the temperature lr/batch"), ("train_fraction", "the training fraction")):
        if u[knob].nunique() > 1:
            r = pd.Series(correlate(u["robust_accuracy"], u[knob], methods=("spearman",))[0])
            out.append(f"Robust accuracy {_direction(r)} {name} (Spearman ρ = {_f(r['coef'])} {_ci(r)}, "
                       f"n = {int(r['n'])}).")
    return out
