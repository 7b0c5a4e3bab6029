"""Simulated studies built to break the verdicts of the model-level claims (correlation, "adds little",
depth, memorization, early stopping): written apart from `calibration.models`, with what real studies
have and that generator leaves out.

- measured numbers: each model's clean and robust accuracy are counts over its own test samples
  (binomial, robust ⊂ clean-correct), with the sample count set so that robust accuracy's
  reliability across models is a stated R (0.7–0.95), and unequal counts across models (×0.3–×1.7);
  the tables carry the binomial SEs a study derives (`*_se`), or not (`se=False`);
- ties: counts over as few as 50 samples, clean accuracy rounded to 1/100;
- saturation: clean accuracy piled up near 1 (1 − exponential, capped at 1);
- related models: models in families that share a random part of every latent (ICC 0.5), with or
  without the `family` column that declares them.

The truth is set on the models' true numbers (before measurement): at a relation's null, or at the
"adds little" margin (rank partial correlation 0.3 of the true numbers).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import optimize, stats

ICC = 0.5  # share of each latent's variance that a family shares


def _spearman_of_latent(r: float) -> float:
    return 6 / math.pi * math.asin(r / 2)


def latent_for_partial(target: float, r_yc: float = 0.5, r_cs: float = 0.5) -> float:
    """The latent normal corr(robust, size) whose rank partial correlation given clean accuracy is `target`."""

    def gap(r_ys):
        a, b, c = (_spearman_of_latent(v) for v in (r_ys, r_yc, r_cs))
        return (a - b * c) / math.sqrt((1 - b * b) * (1 - c * c)) - target

    return optimize.brentq(gap, -0.95, 0.95)


def _latents(rng, m: int, corr: np.ndarray, n_families: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Uniform latents (m × k) with the given normal correlation; with families, a share ICC of each
    latent's variance is the family's (the same correlation within and between families)."""
    k = len(corr)
    z = rng.multivariate_normal(np.zeros(k), corr, size=m)
    fam = None
    if n_families:
        fam = rng.integers(0, n_families, m)
        shared = rng.multivariate_normal(np.zeros(k), corr, size=n_families)
        z = math.sqrt(ICC) * shared[fam] + math.sqrt(1 - ICC) * z
    return stats.norm.cdf(z), fam


def _measure(
    rng, clean: np.ndarray, robust: np.ndarray, reliability: float, n_min: int = 10, clean_factor: float | None = 10.0
):
    """Counts over each model's own test samples: n_i attacked samples (unequal: n̄ × U(0.3, 1.7)),
    the clean-correct ones binomial, the robust ones a binomial subset of those; n̄ is set so that the
    mean binomial variance of robust accuracy is (1 − R)/R × its true between-model variance. Clean
    accuracy is counted on the whole test split, `clean_factor` × n_i samples that include the
    attacked ones (None: exact); the attacked subset's own clean accuracy is returned too."""
    m = len(clean)
    w = rng.uniform(0.3, 1.7, m)
    err = float(np.var(robust, ddof=1)) * (1 - reliability) / reliability
    n = np.maximum(n_min, np.round(float(np.mean(robust * (1 - robust) / w)) / err * w)).astype(int)
    c = rng.binomial(n, clean)
    r = rng.binomial(c, np.where(clean > 0, robust / clean, 0))
    if clean_factor is None:
        return clean, np.zeros(m), r / n, n, c / n
    n_clean = np.round(clean_factor * n).astype(int)
    clean_m = (c + rng.binomial(n_clean - n, clean)) / n_clean
    return clean_m, np.sqrt(clean_m * (1 - clean_m) / n_clean), r / n, n, c / n


def adversarial_models(
    rng,
    m: int,
    *,
    r_yc: float = 0.0,
    r_ys: float = 0.0,
    conditional: bool = False,
    reliability: float | None = None,
    se: bool = True,
    n_families: int = 0,
    declare: bool = True,
    saturated: bool = False,
    ties: bool = False,
    clean_noise: bool = True,
) -> pd.DataFrame:
    """One row per model, with the claims' columns and, where measured, the binomial SEs a study derives."""
    r_cs = 0.5
    corr = np.array([[1, r_cs, 0.0 if conditional else r_ys], [r_cs, 1, r_yc], [0.0 if conditional else r_ys, r_yc, 1]])
    u, fam = _latents(rng, m, corr, n_families)  # size, clean, robust latents
    log10_params = 4 + 2 * u[:, 0]
    depth = rng.integers(2, 9, m)
    width = np.round(np.sqrt(10**log10_params / depth)).clip(1)
    params = depth * width**2
    clean = 1 - 0.02 * -np.log1p(-u[:, 1] * 0.999) if saturated else 0.80 + 0.19 * u[:, 1] ** 0.5
    clean = np.clip(clean, 0.5, 1.0)
    robust = clean * u[:, 2] if conditional else 0.45 * u[:, 2] ** 2
    robust = np.minimum(robust, clean)
    out = {
        "trial": np.arange(m),
        "params": params,
        "log10_params": np.log10(params),
        "depth": depth.astype(float),
        "width": width,
    }
    if reliability is not None or ties:
        clean_m, clean_se, robust_m, n, attacked = _measure(
            rng, clean, robust, reliability or 0.9, n_min=50 if ties else 10, clean_factor=10.0 if clean_noise else None
        )
        if ties:  # few samples and a rounded clean accuracy: many exact ties in both columns
            clean_m, robust_m = np.round(clean_m, 2), np.round(robust_m * n / 5) * 5 / n
        out |= {"clean_accuracy": clean_m, "robust_accuracy": robust_m, "attacked_clean_accuracy": attacked}
        if se:
            out |= {"clean_accuracy_se": clean_se, "robust_accuracy_se": np.sqrt(robust_m * (1 - robust_m) / n)}
    else:
        out |= {
            "clean_accuracy": clean,
            "robust_accuracy": robust,
            "clean_accuracy_se": np.zeros(m),
            "robust_accuracy_se": np.zeros(m),
        }
    out.setdefault("attacked_clean_accuracy", out["clean_accuracy"])
    if fam is not None and declare:
        out["family"] = [f"f{g}" for g in fam]
    return pd.DataFrame(out)


def _mk(**kw):
    return lambda r, m, n: adversarial_models(r, m, **kw)


SIZE_AT_MARGIN = {"r_yc": 0.5}  # r_ys is set lazily (a root find) in `size_margin`


def size_margin(**kw):
    r_ys = latent_for_partial(0.3)
    return lambda r, m, n: adversarial_models(r, m, r_ys=r_ys, **SIZE_AT_MARGIN, **kw)


def size_zero(**kw):
    r_ys = latent_for_partial(0.0)
    return lambda r, m, n: adversarial_models(r, m, r_ys=r_ys, **SIZE_AT_MARGIN, **kw)


# name: (claim, what the rate is, the truth, model-table maker, samples maker)
SCENARIOS = {
    "adv_tracks_ties_saturated": (
        "robust_tracks_clean",
        "size",
        "ρ = 0; clean near 1, ties (50–100 samples)",
        _mk(saturated=True, ties=True),
        None,
    ),
    "adv_conditional_ties_saturated": (
        "conditional_tracks_clean",
        "size",
        "share ⟂ clean; clean near 1, ties",
        _mk(conditional=True, saturated=True, ties=True),
        None,
    ),
    "adv_tracks_noise0.7": (
        "robust_tracks_clean",
        "size",
        "ρ = 0; reliability 0.7, unequal counts",
        _mk(reliability=0.7),
        None,
    ),
    "adv_size_margin_noise0.7": (
        "size_adds_little",
        "size",
        "rank partial 0.3 (margin); reliability 0.7",
        size_margin(reliability=0.7),
        None,
    ),
    "adv_size_margin_noise0.8": (
        "size_adds_little",
        "size",
        "rank partial 0.3 (margin); reliability 0.8",
        size_margin(reliability=0.8),
        None,
    ),
    "adv_size_margin_noise0.95": (
        "size_adds_little",
        "size",
        "rank partial 0.3 (margin); reliability 0.95",
        size_margin(reliability=0.95),
        None,
    ),
    "adv_size_margin_robustnoise0.8": (
        "size_adds_little",
        "size",
        "rank partial 0.3; robust reliability 0.8, clean exact (the issue's case)",
        size_margin(reliability=0.8, clean_noise=False),
        None,
    ),
    "adv_size_margin_noise0.8_nose": (
        "size_adds_little",
        "size",
        "rank partial 0.3; reliability 0.8, no SE columns",
        size_margin(reliability=0.8, se=False),
        None,
    ),
    "adv_size_margin_saturated": (
        "size_adds_little",
        "size",
        "rank partial 0.3; clean near 1, ties",
        size_margin(saturated=True, ties=True),
        None,
    ),
    "adv_size_zero_noise0.8": (
        "size_adds_little",
        "power",
        "rank partial 0; reliability 0.8",
        size_zero(reliability=0.8),
        None,
    ),
    "adv_tracks_families4": (
        "robust_tracks_clean",
        "size",
        "ρ = 0; 4 declared families (ICC 0.5)",
        _mk(n_families=4),
        None,
    ),
    "adv_tracks_families4_undeclared": (
        "robust_tracks_clean",
        "size",
        "ρ = 0; 4 undeclared families (ICC 0.5)",
        _mk(n_families=4, declare=False),
        None,
    ),
    "adv_tracks_families25": (
        "robust_tracks_clean",
        "size",
        "ρ = 0; 25 declared families (ICC 0.5)",
        _mk(n_families=25),
        None,
    ),
    "adv_size_margin_families50": (
        "size_adds_little",
        "size",
        "rank partial 0.3; 50 declared families",
        size_margin(n_families=50),
        None,
    ),
    "adv_size_margin_families4_undeclared": (
        "size_adds_little",
        "size",
        "rank partial 0.3; 4 undeclared families",
        size_margin(n_families=4, declare=False),
        None,
    ),
}


def noisy(make, reliability: float):
    """A model-table maker of `calibration` whose robust accuracy is then measured as counts over each
    model's own unequal test samples at robust reliability `reliability` (clean accuracy as given)."""

    def maker(rng, m, n):
        u = make(rng, m, n)
        robust = np.clip(u["robust_accuracy"].to_numpy(float), 0.0, 1.0)
        clean = np.maximum(u["clean_accuracy"].to_numpy(float), robust)
        _, _, robust_m, size, _ = _measure(rng, clean, robust, reliability, clean_factor=None)
        return u.assign(robust_accuracy=robust_m, robust_accuracy_se=np.sqrt(robust_m * (1 - robust_m) / size))

    return maker


def _calibration():
    import calibration  # the registry imports this module: import it back lazily

    return calibration


SCENARIOS |= {
    "adv_depth_null_noise0.8": (
        "deeper_more_robust",
        "size",
        "no depth effect; reliability 0.8, unequal counts",
        noisy(lambda r, m, n: _calibration().matched_depth_models(r, m, 0.0), 0.8),
        None,
    ),
    "adv_memorization_null_noise0.8": (
        "robust_falls_with_memorization",
        "size",
        "ρ = 0 within level; reliability 0.8",
        noisy(lambda r, m, n: _calibration().phase_models(r, m, 0.0, "memorization"), 0.8),
        None,
    ),
    "adv_early_null_noise0.8": (
        "early_stop_preserves_robustness",
        "size",
        "ρ = 0 within level; reliability 0.8",
        noisy(lambda r, m, n: _calibration().phase_models(r, m, 0.0, "early"), 0.8),
        None,
    ),
}
