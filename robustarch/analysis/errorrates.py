"""Each finding's test with its measured error rates, for the report's Methods section: size (how
often it rejects at its null, or says "supported" at its margin) and power at a stated alternative,
measured by `benchmarks/calibration.py` and shipped here as data; a study is given the rates of the
simulated scale nearest its number of models (a lookup, not a computation at report time).
"""
from __future__ import annotations

import math

# claim → models in the simulated study → (size, its truth, power, its truth, studies simulated).
# Filled from benchmarks/calibration.py --reps 1000 (2026-11-30: raw p ≤ 0.05, before Holm; the
# calibrated tests with 39 Monte Carlo replicates; 1000 studies per scenario and scale).
RATES: dict[str, dict[int, tuple]] = {
    'robust_tracks_clean': {
        20: (0.058, 'ρ = 0', 0.573, 'latent r = 0.5', 1000),
        40: (0.054, 'ρ = 0', 0.882, 'latent r = 0.5', 1000),
        200: (0.048, 'ρ = 0', 1.0, 'latent r = 0.5', 1000),
    },
    'conditional_tracks_clean': {
        20: (0.06, 'share ⟂ clean', 0.563, 'latent r = 0.5', 1000),
        40: (0.062, 'share ⟂ clean', 0.892, 'latent r = 0.5', 1000),
        200: (0.05, 'share ⟂ clean', 1.0, 'latent r = 0.5', 1000),
    },
    'size_adds_little': {
        40: (0.056, 'rank partial = 0.3 (the margin)', 0.268, 'rank partial = 0', 1000),
        200: (0.055, 'rank partial = 0.3 (the margin)', 0.99, 'rank partial = 0', 1000),
    },
    'deeper_more_robust': {
        20: (0.048, 'no depth effect', 0.457, 'deeper +0.03', 1000),
        40: (0.04, 'no depth effect', 0.75, 'deeper +0.03', 1000),
        200: (0.037, 'no depth effect', 0.977, 'deeper +0.03', 1000),
    },
    'robust_falls_with_memorization': {
        20: (0.058, 'ρ = 0 within level', 0.187, 'ρ = −0.5 within level', 1000),
        40: (0.057, 'ρ = 0 within level', 0.45, 'ρ = −0.5 within level', 1000),
        200: (0.053, 'ρ = 0 within level', 0.997, 'ρ = −0.5 within level', 1000),
    },
    'early_stop_preserves_robustness': {
        20: (0.06, 'ρ = 0 within level', 0.442, 'ρ = 0.5 within level', 1000),
        40: (0.048, 'ρ = 0 within level', 0.86, 'ρ = 0.5 within level', 1000),
        200: (0.049, 'ρ = 0 within level', 1.0, 'ρ = 0.5 within level', 1000),
    },
    # The power-law claims: benchmarks/calibration.py's adversarial family (benchmarks/sim_power.py:
    # saturating per-model power laws, never-broken shares 0–50%, unequal sample counts; 39 bootstrap
    # replicates), 2026-12-07, on the studies counted (fewer than 1000: a shared machine). Equivalence
    # claims: the larger of the rates at either margin. docs/power-law.md has every cell.
    'power_law': {
        10: (0.055, 'saturating power laws, one k', math.nan, 'not measured', 200),
        20: (0.057, 'saturating power laws, one k', 0.07, 'exponential CDF', 300),
        200: (0.067, 'saturating power laws, one k', math.nan, 'not measured', 30),
    },
    'universality': {
        10: (0.065, 'saturating power laws, one k', math.nan, 'not measured', 200),
        20: (0.033, 'saturating power laws, one k', 0.48, 'τ = 0.3', 300),
        200: (0.0, 'saturating power laws, one k', 0.967, 'τ = 0.1', 30),
    },
    'margin_explains_slope': {
        6: (0.082, 'link slope 0.75 or 1.25 (the margins), t₂ noise, 0–50% censored', math.nan, 'not measured', 600),
        20: (0.068, 'link slope 0.75 or 1.25 (the margins), t₂ noise, 0–50% censored', 1.0, 'link slope 1', 600),
        200: (0.833, 'link slope 1.25 (the margin), t₂ noise: "contradicted" (not calibrated)', math.nan,
              'not measured', 30),
    },
    'slope_matches_margin_tail': {
        20: (0.04, 'tail exponent = k ± 0.25 (the margins)', 0.37, 'tail exponent = k', 400),
        200: (0.083, 'tail exponent = k + 0.25 (the margin; not shown calibrated)', math.nan, 'not measured', 60),
    },
}
SCALES = {6: "6 models × 100 samples", 10: "10 models × 100 samples", 20: "20 models × 100 samples",
          40: "40 models × 180 samples", 200: "200 models × 500 samples"}
# Claims whose "supported" comes from a second test (not the p in the Holm family): its size, the
# rate of "supported" when the truth sits on the margin, per scale (benchmarks/calibration.py).
SUPPORT_SIZES: dict[str, tuple[str, dict[int, float]]] = {
    # the gamma-frailty test of τ ≥ margin at τ = 0.1 (adversarial family; 200, 300 and 30 studies); at
    # 200 models the LR test rejects one k first in 97% of such studies, so "supported" was never said
    "universality": ("τ = 0.1, the margin", {10: 0.030, 20: 0.037, 200: 0.0}),
    # TOST on the pooled bend at ±0.2 a decade (200 and 90 studies): no "supported" at 20 models (the
    # bend's SE is wider than the margin)
    "power_law": ("bend ±0.2 a decade, the margin", {20: 0.0, 200: 0.078}),
}


def _pct(v) -> str:
    return "–" if v is None or not math.isfinite(v) else f"{100 * v:.1f}%"


def error_rate_lines(findings, n_models: int) -> list[str]:
    """One line per finding that carries a p: its test, then its simulated size and power at the
    scale nearest `n_models` (or why there is none)."""
    out = []
    for r in findings:
        if isinstance(r.get("reason"), str) or r.get("verdict") == "skipped":
            continue
        by_scale = RATES.get(r["key"], {})
        if not by_scale or n_models < 1:
            out.append(f"{r['claim']}: {r['test']}; not simulated.")
            continue
        scale = min(by_scale, key=lambda s: abs(math.log(s / n_models)))
        size, size_truth, power, power_truth, reps = by_scale[scale]
        extra = ""
        if r["key"] in SUPPORT_SIZES:
            truth, sizes = SUPPORT_SIZES[r["key"]]
            if scale in sizes:
                extra = f"; its \"supported\" test: size {_pct(sizes[scale])} ({truth})"
        out.append(f"{r['claim']}: {r['test']}; at {SCALES.get(scale, f'{scale} models')} ({reps} simulated "
                   f"studies) size {_pct(size)} ({size_truth}), power {_pct(power)} ({power_truth}){extra}.")
    return out
