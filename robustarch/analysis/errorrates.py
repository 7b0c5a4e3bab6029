"""Each finding's test with its measured error rates, for the report's Methods section: size (how
often it rejects at its null, or says "supported" at its margin) and power at a stated alternative,
measured by `benchmarks/calibration.py` and shipped here as data; a study is given the rates of the
simulated scale nearest its number of models (a lookup, not a computation at report time).
"""
from __future__ import annotations

import math

# claim → models in the simulated study → (size, its truth, power, its truth, studies simulated).
# Filled from benchmarks/calibration.py (raw p ≤ 0.05, before Holm; GOF/Q with 39 Monte Carlo replicates).
RATES: dict[str, dict[int, tuple]] = {}
SCALES = {20: "20 models × 100 samples", 40: "40 models × 180 samples", 200: "200 models × 500 samples"}


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
        out.append(f"{r['claim']}: {r['test']}; at {SCALES.get(scale, f'{scale} models')} ({reps} simulated "
                   f"studies) size {_pct(size)} ({size_truth}), power {_pct(power)} ({power_truth}).")
    return out
