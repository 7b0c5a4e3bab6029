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
    'power_law': {
        20: (0.059, 'exact power law, one k = 1.5', 0.081, 'exponential CDF', 1000),
        40: (0.058, 'exact power law, one k = 1.5', 0.124, 'exponential CDF', 1000),
        200: (0.04, 'exact power law, one k = 1.5', 0.713, 'exponential CDF', 1000),
    },
    'universality': {
        20: (0.057, 'exact power law, one k = 1.5', 0.424, 'power laws, k ~ U(1, 2)', 1000),
        40: (0.051, 'exact power law, one k = 1.5', 0.948, 'power laws, k ~ U(1, 2)', 1000),
        200: (0.048, 'exact power law, one k = 1.5', 1.0, 'power laws, k ~ U(1, 2)', 1000),
    },
    'margin_explains_slope': {
        20: (0.04, 'link slope 1.25 (the margin)', 1.0, 'link slope 1', 1000),
        40: (0.045, 'link slope 1.25 (the margin)', 1.0, 'link slope 1', 1000),
        200: (0.049, 'link slope 1.25 (the margin)', 1.0, 'link slope 1', 1000),
    },
    'slope_matches_margin_tail': {
        20: (0.054, 'tail exponent = k + 0.25 (the margin)', 0.504, 'tail exponent = k, no per-sample link', 1000),
        40: (0.054, 'tail exponent = k + 0.25 (the margin)', 0.993, 'tail exponent = k, no per-sample link', 1000),
        200: (0.046, 'tail exponent = k + 0.25 (the margin)', 1.0, 'tail exponent = k, no per-sample link', 1000),
    },
    # benchmarks/sim_noise.py --reps 1000 (2026-12-07): keyed by trained models, 60 = 40 architectures with a
    # random 25% × 3 seeds, 400 = 200 architectures × 2 seeds; power at a true ICC of 0.8
    'architecture_explains_robust': {
        60: (0.06, 'ICC = 0.5 (the margin), 40 architectures, 25% × 3 seeds', 0.724, 'ICC = 0.8', 1000),
        400: (0.044, 'ICC = 0.5 (the margin), 200 architectures × 2 seeds', 1.0, 'ICC = 0.8', 1000),
    },
}
SCALES = {20: "20 models × 100 samples", 40: "40 models × 180 samples", 200: "200 models × 500 samples"}
# Claims whose "supported" comes from a second test (not the p in the Holm family): its size, the
# rate of "supported" when the truth sits on the margin, per scale (benchmarks/calibration.py).
SUPPORT_SIZES: dict[str, tuple[str, dict[int, float]]] = {
    # the parametric-bootstrap test of τ ≥ margin, 1000 studies per scale (3000 at 20 models: 3.4,
    # 2.7 and 4.7% in three runs of 1000); at 200 models the homogeneity test rejects first in 98%
    # of them, so "supported" was said in 1.3%
    "universality": ("τ = 0.1, the margin", {20: 0.036, 40: 0.057, 200: 0.050}),
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
