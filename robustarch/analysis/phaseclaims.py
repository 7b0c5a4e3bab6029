"""Martin & Mahoney-style claims of a phase-diagram study (load: label noise; temperature: training
length or lr/batch), each a rank correlation within each label-noise level > 0, pooled over levels
with weights n − 1, so that the noise level itself (which moves both variables) is held fixed.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from .phase import phase_axes
from .verdicts import Z95

MIN_PER_LEVEL = 4  # models per noise level below which a level's correlation is left out


def stratified_spearman(u: pd.DataFrame, x: pd.Series, y: pd.Series) -> dict:
    """Spearman ρ of x and y within each label-noise level > 0, pooled with weights n − 1: under no
    relation each level's ρ has mean 0 and variance 1/(n − 1) exactly (less with ties), so
    z = Σ(n − 1)ρ / √Σ(n − 1) is standard normal at any level size (a Fisher z with n − 3 and a
    handful of models per level rejects too often). ρ, 95% CI, two-sided p, models and levels used."""
    noise = pd.to_numeric(u["label_noise"], errors="coerce").round(6)
    rhos, ws = [], []
    for level in sorted(noise[noise > 0].unique()):
        sel = (noise == level) & x.notna() & y.notna()
        xs, ys = x[sel].to_numpy(float), y[sel].to_numpy(float)
        if len(xs) < MIN_PER_LEVEL or np.ptp(xs) == 0 or np.ptp(ys) == 0:
            continue
        rhos.append(float(stats.spearmanr(xs, ys).statistic))
        ws.append(len(xs) - 1)
    out = {"n": int(sum(ws)) + len(ws), "levels": len(ws), "coef": math.nan, "ci": (math.nan, math.nan), "p": math.nan}
    if not ws:
        return out
    w = np.array(ws, float)
    rho, se = float(np.dot(w, rhos) / w.sum()), 1 / math.sqrt(w.sum())
    out.update(
        coef=rho, ci=(max(-1.0, rho - Z95 * se), min(1.0, rho + Z95 * se)), p=float(2 * stats.norm.sf(abs(rho / se)))
    )
    return out


def _memorization(c, u, row, skip) -> dict:
    r = stratified_spearman(
        u, pd.to_numeric(u["generalization_gap"], errors="coerce"), pd.to_numeric(u["robust_accuracy"], errors="coerce")
    )
    stat = "Spearman ρ (generalization gap, robust accuracy) within noise level"
    if r["n"] < c.min_n or not math.isfinite(r["coef"]):
        return skip(
            c,
            stat,
            r["n"],
            f"{r['n']} models in label-noise levels > 0 with ≥ {MIN_PER_LEVEL} models each (needs ≥ {c.min_n})",
        )
    return row(c, stat, r["n"], r["coef"], r["ci"], r["p"], levels=r["levels"])


def _early_stop(c, u, row, skip) -> dict:
    temperature, _ = phase_axes(u)
    stat = "Spearman ρ (temperature, robust accuracy) within noise level"
    if temperature is None:
        return skip(c, stat, len(u), "no training-length or lr/batch knob varies in the study")
    knob = pd.to_numeric(u[temperature], errors="coerce")
    hot = knob if temperature == "temperature" else -knob  # fewer steps or epochs = stopped earlier = hotter
    r = stratified_spearman(u, hot, pd.to_numeric(u["robust_accuracy"], errors="coerce"))
    if r["n"] < c.min_n or not math.isfinite(r["coef"]):
        return skip(
            c,
            stat,
            r["n"],
            f"{r['n']} models in label-noise levels > 0 with ≥ {MIN_PER_LEVEL} models each (needs ≥ {c.min_n})",
        )
    return row(c, stat, r["n"], r["coef"], r["ci"], r["p"], levels=r["levels"], temperature_knob=temperature)


PHASE_TESTS = {"robust_falls_with_memorization": _memorization, "early_stop_preserves_robustness": _early_stop}
