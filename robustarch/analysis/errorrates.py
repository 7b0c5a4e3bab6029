"""Each finding's test with its measured error rates, for the report's Methods section: size (how
often it rejects at its null, or says "supported" at its margin) and power at a stated alternative,
measured by `benchmarks/calibration.py` and shipped here as data; a study is given the rates of a
simulated scale only where its number of models was simulated (within ×1.25), and "not measured at
this n" elsewhere (a lookup, not a computation at report time).
"""

from __future__ import annotations

import math

# claim → models in the simulated study → (size, its truth, power, its truth, studies simulated).
# benchmarks/calibration.py, runs of 2026-12-07 and 2026-12-08 (issue 24): raw p ≤ 0.05, before
# Holm; bootstrap B = 200, Monte Carlo replicates 39; studies per cell in the last field (1000 each);
# the 10-model rates of the rank-correlation claims are from the run of 2026-12-07 before it (their
# tests are unchanged). docs/verdicts.md and docs/power-law.md have every cell with its Monte Carlo SE.
RATES: dict[str, dict[int, tuple]] = {
    # The model-level claims (the calibration.models family). Size: p ≤ 0.05 for a relation;
    # "supported" at the margin for an equivalence.
    "robust_tracks_clean": {
        10: (0.055, "ρ = 0", 0.281, "latent r = 0.5", 1000),
        20: (0.054, "ρ = 0", 0.569, "latent r = 0.5", 1000),
        40: (0.042, "ρ = 0", 0.896, "latent r = 0.5", 1000),
        200: (0.038, "ρ = 0", 1.0, "latent r = 0.5", 1000),
        500: (0.046, "ρ = 0", 1.0, "latent r = 0.5", 1000),
    },
    "conditional_tracks_clean": {
        10: (0.048, "share ⟂ clean", 0.252, "latent r = 0.5", 1000),
        20: (0.060, "share ⟂ clean", 0.558, "latent r = 0.5", 1000),
        40: (0.062, "share ⟂ clean", 0.886, "latent r = 0.5", 1000),
        200: (0.049, "share ⟂ clean", 1.0, "latent r = 0.5", 1000),
        500: (0.048, "share ⟂ clean", 1.0, "latent r = 0.5", 1000),
    },
    "size_adds_little": {
        40: (0.020, "rank partial = 0.3 (the margin)", 0.130, "rank partial = 0", 1000),
        200: (0.044, "rank partial = 0.3 (the margin)", 0.991, "rank partial = 0", 1000),
        500: (0.055, "rank partial = 0.3 (the margin)", 1.0, "rank partial = 0", 1000),
    },
    "deeper_more_robust": {
        20: (0.048, "no depth effect", 0.457, "deeper +0.03", 1000),
        40: (0.052, "no depth effect", 0.725, "deeper +0.03", 1000),
        200: (0.034, "no depth effect", 0.986, "deeper +0.03", 1000),
        500: (0.036, "no depth effect", 0.999, "deeper +0.03", 1000),
    },
    "robust_falls_with_memorization": {
        20: (0.058, "ρ = 0 within level", 0.187, "ρ = −0.5 within level", 1000),
        40: (0.052, "ρ = 0 within level", 0.475, "ρ = −0.5 within level", 1000),
        200: (0.071, "ρ = 0 within level", 0.998, "ρ = −0.5 within level", 1000),
        500: (0.059, "ρ = 0 within level", 1.0, "ρ = −0.5 within level", 1000),
    },
    "early_stop_preserves_robustness": {
        20: (0.060, "ρ = 0 within level", 0.442, "ρ = 0.5 within level", 1000),
        40: (0.056, "ρ = 0 within level", 0.860, "ρ = 0.5 within level", 1000),
        200: (0.052, "ρ = 0 within level", 1.0, "ρ = 0.5 within level", 1000),
        500: (0.051, "ρ = 0 within level", 1.0, "ρ = 0.5 within level", 1000),
    },
    # The power-law claims: the adversarial family (benchmarks/sim_power.py: saturating per-model power
    # laws, never-broken shares 0–50%, unequal sample counts), 1000 studies a cell (2026-12-08; 6 models:
    # 2026-12-07). Equivalence claims: the larger of the "supported" rates at either margin.
    "power_law": {
        20: (0.054, "saturating power laws, one k", 0.062, "exponential CDF", 1000),
        200: (0.048, "saturating power laws, one k", math.nan, "not measured", 1000),
        500: (0.046, "saturating power laws, one k", math.nan, "not measured", 1000),
    },
    "universality": {
        20: (0.041, "saturating power laws, one k", 0.544, "τ = 0.3", 1000),
        200: (0.055, "saturating power laws, one k", 0.941, "τ = 0.1", 1000),
        500: (0.059, "saturating power laws, one k", math.nan, "not measured", 1000),
    },
    "margin_explains_slope": {
        6: (0.044, "link slope 0.75 or 1.25 (the margins), t₂ noise, 0–50% censored", 0.999, "link slope 1", 1000),
        20: (0.060, "link slope 0.75 or 1.25 (the margins), t₂ noise, 0–50% censored", 1.0, "link slope 1", 1000),
        200: (0.063, "link slope 0.75 or 1.25 (the margins), t₂ noise, 0–50% censored", math.nan, "not measured", 1000),
        500: (0.059, "link slope 0.75 or 1.25 (the margins), t₂ noise, 0–50% censored", math.nan, "not measured", 1000),
    },
    "slope_matches_margin_tail": {
        20: (0.039, "tail exponent = k ± 0.25 (the margins)", 0.208, "tail exponent = k", 1000),
        200: (0.033, "tail exponent = k ± 0.25 (the margins; not calibrated there)", math.nan, "not measured", 1000),
    },
    # benchmarks/sim_noise.py --reps 1000 (2026-12-07): keyed by trained models, 60 = 40 architectures with a
    # random 25% × 3 seeds, 400 = 200 architectures × 2 seeds; power at a true ICC of 0.8
    "architecture_explains_robust": {
        60: (0.06, "ICC = 0.5 (the margin), 40 architectures, 25% × 3 seeds", 0.724, "ICC = 0.8", 1000),
        400: (0.044, "ICC = 0.5 (the margin), 200 architectures × 2 seeds", 1.0, "ICC = 0.8", 1000),
    },
}
# benchmarks/sim_noise.py --reps 1000 --scenarios corrected,conditional (2026-12-07, after the error
# covariance correction, analysis.jointnoise): how often the 95% CI of the noise-corrected ρ (Fuller's
# moment correction; percentile bootstrap over architectures, reliabilities, seed variances and
# covariance re-estimated in each resample) covered the true rank correlation of the architectures'
# noise-free numbers (true ICC 0.6, latent r 0.5, 200 attacked samples). Keyed by trained models as the
# ICC claim: 60 = 40 architectures with a random 25% × 3 seeds, 400 = 200 architectures × 2 seeds.
# With a model's seed errors correlated 0.5: 95.5% of 1000; evaluation errors of one test sample: 95.7%
# of 1000 (40 architectures). The conditional claim at 40 architectures ran 500 studies (MC SE 0.9%).
CORRECTED_COVERAGE: dict[str, dict[int, tuple[float, str, int]]] = {
    "robust_tracks_clean": {
        60: (
            0.951,
            "40 architectures, 25% × 3 seeds; 95.5% with seed errors correlated 0.5, 95.7% on one test sample",
            1000,
        ),
        400: (0.953, "200 architectures × 2 seeds", 1000),
    },
    "conditional_tracks_clean": {
        60: (0.960, "40 architectures, 25% × 3 seeds", 500),
        400: (0.957, "200 architectures × 2 seeds", 1000),
    },
}
# simulated conditions where a corrected interval left 93–97% (none since the covariance correction)
CORRECTED_OFF_BAND: dict[str, str] = {}
SCALES = {
    6: "6 models × 100 samples",
    10: "10 models × 100 samples",
    20: "20 models × 100 samples",
    40: "40 models × 180 samples",
    200: "200 models × 500 samples",
    500: "500 models × 500 samples",
}
MODEL_LEVEL = (
    "robust_tracks_clean",
    "conditional_tracks_clean",
    "size_adds_little",
    "deeper_more_robust",
    "robust_falls_with_memorization",
    "early_stop_preserves_robustness",
)  # their samples do not matter
# Claims whose "supported" comes from a second test (not the p in the Holm family): its size, the
# rate of "supported" when the truth sits on the margin, per scale (benchmarks/calibration.py).
SUPPORT_SIZES: dict[str, tuple[str, dict[int, float]]] = {
    # the gamma-frailty test of τ ≥ margin at τ = 0.1 (adversarial family, 1000 studies a cell); at 200
    # models the LR test rejects one k first in most such studies
    "universality": ("τ = 0.1, the margin", {20: 0.039, 200: 0.048}),
    # TOST on the pooled bend at ±0.2 a decade (1000 studies a margin): no "supported" at 20 models (the
    # bend's SE is wider than the margin)
    "power_law": ("bend ±0.2 a decade, the margin", {20: 0.0, 200: 0.098}),
}


# claim → the simulated conditions (both families) under which a verdict path's rate left
# [3.5%, 6.5%], with the rate, the studies and where it was measured; from the same runs as RATES.
OFF_BAND: dict[str, list[str]] = {
    "robust_tracks_clean": [
        "related models the table does not declare (4 families, ICC 0.5): 15.9% at 20, 24.1% at 40, 55.3% at 200 "
        "and 68.2% at 500 models (declared in a `family` column, the claim says it cannot decide with fewer than "
        "20 families)",
        "25 declared families at 500 models: 7.1% ± 0.8 (1000 studies; 6.3% at 200, 5.6% at 40 models)",
        "noise at reliability 0.7 with unequal sample counts at 500 models: 6.7% ± 0.8 (1000 studies)",
    ],
    "conditional_tracks_clean": [
        "clean accuracy saturated near 1 with ties (50–100 samples per model): 9.8% ± 0.9 at 500 models "
        '(1000 studies, nearly all "contradicted"); 5.8% at 200, 4.4% at 20'
    ],
    "size_adds_little": [
        'conservative at its margin: "supported" in 2.0% ± 0.4 at 40 models with exact numbers, 0–1% at 40 '
        'models with noise at reliability 0.7–0.95 or clean accuracy near 1 with ties ("contradicted" 1.8–3.2% '
        "there); interval inclusion with t df and the noise correction's intersection–union test cost power",
        'noise at reliability 0.7 at 500 models: supported 6.3% ± 0.8 but "contradicted" 2.4% ± 0.5 (1000 studies)',
        'no SE columns: never "supported" (by design); contradicted 2.0–3.3%',
        "related models the table does not declare (4 families): contradicted 15.2% at 40; supported 26.5% and "
        "contradicted 29.9% at 200; 35.5% and 34.6% at 500 models; declared (50 families): 0.0–0.7% each way "
        "at 200 and 500 models, conservative",
    ],
    "deeper_more_robust": ["slightly conservative at 200 models: 3.4% ± 0.6 (1000 studies)"],
    "robust_falls_with_memorization": [
        "7.1% ± 0.8 at 200 models (1000 studies; 4.3% there with noise at reliability 0.8)"
    ],
    # the power-law claims (benchmarks/sim_power.py and the original generator; docs/power-law.md has every cell)
    "power_law": [
        '"supported" (TOST on the pooled bend, ±0.2 a decade) is never said at 20 models × 100 samples (0 of 1000 '
        "at either margin: the bend's SE is wider than the margin); at 200 models × 500 samples "
        '"supported" in 9.8% ± 0.9 where the log–log slope falls 0.2 a decade (the margin; liberal) and 4.6% '
        "where it rises 0.2 (1000 studies each)",
    ],
    "universality": [
        '"supported" (τ below 0.1) at its margin with 4 families of related models the test is not told of: '
        "13.4% ± 1.1 at 200 models × 500 samples (1000 studies; 5.4% at 20 models)",
    ],
    "slope_matches_margin_tail": [
        '"supported" at the +0.25 margin at 20 models: 2.5% ± 0.5 (1000 studies), conservative; at 200 models × '
        '500 samples "supported" 3.3% ± 0.6 and 2.8% ± 0.5 (conservative) and "contradicted" 7.5% ± 0.8 and '
        "7.4% ± 0.8 (liberal) at the two margins (1000 studies each)"
    ],
}


def _pct(v) -> str:
    return "–" if v is None or not math.isfinite(v) else f"{100 * v:.1f}%"


MATCH = 1.25  # a study's n is "at" a simulated scale within this factor of it; elsewhere no rate is quoted


def measured_scale(by_scale: dict, n_models: int) -> int | None:
    """The simulated number of models this study's n matches (within ×`MATCH`), or None: then the
    rates are not measured at this n and none is quoted (a 5-model study is not a 20-model one)."""
    if n_models < 1 or not by_scale:
        return None
    scale = min(by_scale, key=lambda s: abs(math.log(s / n_models)))
    return scale if abs(math.log(scale / n_models)) <= math.log(MATCH) else None


def _off_band(key: str) -> str:
    """The simulated conditions where this claim's verdict rates left [3.5%, 6.5%] (not calibrated there)."""
    cases = OFF_BAND.get(key, [])
    return f" Not calibrated under: {'; '.join(cases)}." if cases else ""


def corrected_coverage_text(r: dict, n_models: int) -> str:
    """The simulated coverage of a finding's noise-corrected CI at this study's n (or where it was
    simulated, or that it was not), for rows that carry a corrected value; else ''."""
    if not isinstance(r.get("verdict_raw"), str) or r.get("kind") == "equivalence":
        return ""
    by_scale = CORRECTED_COVERAGE.get(r["key"], {})
    if not by_scale:
        return " Its noise-corrected 95% CI: coverage not simulated."
    scale = measured_scale(by_scale, n_models)
    off = f" Not calibrated under: {CORRECTED_OFF_BAND[r['key']]}." if r["key"] in CORRECTED_OFF_BAND else ""
    if scale is None:
        where = ", ".join(str(s) for s in sorted(by_scale))
        return f" Its noise-corrected 95% CI: coverage simulated at {where} trained models, not at {n_models}.{off}"
    rate, design, reps = by_scale[scale]
    return (
        f" Its noise-corrected 95% CI covered the true ρ in {_pct(rate)} of {reps} simulated studies ({design}).{off}"
    )


def error_rate_lines(findings, n_models: int) -> list[str]:
    """One line per finding that carries a p: its test, then its simulated size and power where this
    study's number of models was simulated ("not measured at this n" elsewhere), and the adversarial
    conditions under which it is not calibrated."""
    out = []
    for r in findings:
        if isinstance(r.get("reason"), str) or r.get("verdict") == "skipped":
            continue
        out.append(_claim_line(r, n_models) + corrected_coverage_text(r, n_models))
    return out


def _claim_line(r: dict, n_models: int) -> str:
    """`error_rate_lines` for one finding: its simulated size and power at this n, or why not."""
    by_scale = RATES.get(r["key"], {})
    if not by_scale:
        return f"{r['claim']}: {r['test']}; not simulated."
    scale = measured_scale(by_scale, n_models)
    if scale is None:
        where = ", ".join(str(s) for s in sorted(by_scale))
        return (
            f"{r['claim']}: {r['test']}; error rates not measured at this n ({n_models} models; simulated "
            f"at {where} models).{_off_band(r['key'])}"
        )
    size, size_truth, power, power_truth, reps = by_scale[scale]
    extra = ""
    if r["key"] in SUPPORT_SIZES:
        truth, sizes = SUPPORT_SIZES[r["key"]]
        if scale in sizes:
            extra = f'; its "supported" test: size {_pct(sizes[scale])} ({truth})'
    where = f"{scale} models" if r["key"] in MODEL_LEVEL else SCALES.get(scale, f"{scale} models")
    return (
        f"{r['claim']}: {r['test']}; at {where} ({reps} simulated "
        f"studies) size {_pct(size)} ({size_truth}), power {_pct(power)} ({power_truth}){extra}."
        f"{_off_band(r['key'])}"
    )
