"""Calibration of the noise findings on simulated studies with a known truth: architecture, training
seed and evaluation noise drawn separately, then the real code (analysis.components, analysis.winner).

    python benchmarks/sim_noise.py [--reps 1000] [--scenarios icc,claim,corrected,conditional,winner] [--out table.csv]

- icc: how often the ICC's bootstrap 95% CI covers the true ICC (40 architectures with a 25% × 3
  reliability subsample; 200 architectures with 2 seeds each).
- claim: the "architecture explains most of the variance" claim at its margin (size: how often its
  raw p < 5%, split into wrong "supported" and "contradicted") and at an ICC of 0.8 (power).
- corrected: how often the 95% CI of the claim "robust accuracy rises with clean accuracy" corrected
  for attenuation (analysis.attenuation: reliabilities and seed variance re-estimated in each
  resample) covers the true rank correlation of the architectures' noise-free numbers, in both
  designs; and, to break it, with each model's clean and robust seed errors correlated (0.5), or its
  evaluation errors drawn as on one test sample (a robust-correct sample is clean-correct), whose
  covariance the correction takes out (analysis.jointnoise: read off the SEs for the one-sample row;
  the other rows state a zero evaluation covariance).
- conditional: the same coverage for the conditional claim (robust / clean accuracy against clean
  accuracy), whose target's error shares clean accuracy's.
- winner: the winner chosen on the shrunken estimate, retrained on fresh seeds: its mean drop
  (observed − fresh-seed value) against the mean drop the shrinkage predicted, and the raw winner's
  bias (chosen on the observed number) beside it.

A model's number is μ + a + s + e: a ~ N(0, σ²_a) per architecture, s ~ N(0, σ²_s) per seed, e ~
N(0, p(1 − p)/n) with p = μ + a + s its true accuracy and n attacked samples (the binomial SE a
finite test sample gives). The truth is σ²_a / (σ²_a + σ²_s + E[p(1 − p)]/n).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from robustarch.analysis.claims import CLAIMS  # noqa: E402
from robustarch.analysis.components import variance_components  # noqa: E402
from robustarch.analysis.findings import findings_rows  # noqa: E402
from robustarch.analysis.jointnoise import EVAL_COV  # noqa: E402
from robustarch.analysis.noiseclaim import icc_row  # noqa: E402
from robustarch.analysis.winner import shrunken  # noqa: E402

MU, N_EVAL = 0.35, 200  # the quick suite's attacked samples at a typical robust accuracy
DESIGNS = {"40 arch, 25% x 3": (40, 0.25, 3), "200 arch x 2": (200, 1.0, 2)}
N_BOOT = 1000
CASES: list[int] = []  # --cases: which rows of a scenario to run (by index; all when empty)


def seeds_per_arch(n_arch: int, share: float, k: int) -> np.ndarray:
    n = np.ones(n_arch, int)
    n[: int(round(share * n_arch))] = k
    return n


def split_variance(icc: float, seed_share_of_within: float = 0.5) -> tuple[float, float]:
    """(σ²_a, σ²_s) giving `icc` when the evaluation variance is the binomial one at MU, N_EVAL and
    the seed variance is `seed_share_of_within` of the within-architecture variance."""
    s2e = MU * (1 - MU) / N_EVAL  # E[p(1 − p)] is refined by `truth`; this only sets the scale
    s2w = s2e / (1 - seed_share_of_within)
    return icc / (1 - icc) * s2w, s2w - s2e


def truth(s2a: float, s2s: float, rng) -> dict:
    p = MU + rng.normal(0, math.sqrt(s2a), 2_000_000) + rng.normal(0, math.sqrt(s2s), 2_000_000)
    s2e = float(np.mean(np.clip(p * (1 - p), 0, None)) / N_EVAL)
    return {"icc": s2a / (s2a + s2s + s2e), "s2e": s2e}


def draw_study(rng, n: np.ndarray, s2a: float, s2s: float):
    """(values, groups, eval SE, per-architecture true mean) of one simulated study."""
    a = rng.normal(0, math.sqrt(s2a), len(n))
    groups = np.repeat(np.arange(len(n)), n)
    p = MU + a[groups] + rng.normal(0, math.sqrt(s2s), len(groups))
    se = np.sqrt(np.clip(p * (1 - p), 0, None) / N_EVAL)
    y = p + rng.normal(0, 1, len(p)) * se
    # a user sees the SE of the observed number, not of the true one
    return y, groups, np.sqrt(np.clip(y * (1 - y), 0, None) / N_EVAL), MU + a


def icc_coverage(reps: int, seed: int) -> list[dict]:
    rows = []
    for design, (n_arch, share, k) in DESIGNS.items():
        rng = np.random.default_rng(seed)
        s2a, s2s = split_variance(0.6)
        true = truth(s2a, s2s, rng)["icc"]
        n = seeds_per_arch(n_arch, share, k)
        hits = []
        for r in range(reps):
            y, g, se, _ = draw_study(rng, n, s2a, s2s)
            c = variance_components(y, g, se, n_boot=N_BOOT, seed=r)
            lo, hi = c.ci95["icc"]
            hits.append(lo <= true <= hi)
        rows.append(_rate("ICC 95% CI coverage", design, true, hits))
    return rows


def claim_rates(reps: int, seed: int) -> list[dict]:
    c = CLAIMS["architecture_explains_robust"]
    rows = []
    for design, (n_arch, share, k) in DESIGNS.items():
        for label, icc in (("size (at the margin)", c.margin), ("power", 0.8)):
            rng = np.random.default_rng(seed)
            s2a, s2s = split_variance(icc)
            true = truth(s2a, s2s, rng)["icc"]
            n = seeds_per_arch(n_arch, share, k)
            p, sup, con = [], [], []
            for r in range(reps):
                y, g, se, _ = draw_study(rng, n, s2a, s2s)
                row = icc_row(
                    c, pd.DataFrame({"robust_accuracy": y, "arch_key": g, "robust_accuracy_se": se}), n_boot=0, seed=r
                )
                p.append(row["p_value"] < 0.05)
                sup.append(p[-1] and row["value"] > c.margin)
                con.append(p[-1] and row["value"] < c.margin)
            rows.append(_rate(f"claim {label}: p < 5%", design, true, p))
            rows.append(_rate(f"claim {label}: supported", design, true, sup))
            rows.append(_rate(f"claim {label}: contradicted", design, true, con))
    return rows


MU_CLEAN, R_ARCH = 0.85, 0.5  # clean accuracy's mean; Pearson r of the architectures' true clean and robust numbers


def draw_pair(rng, n: np.ndarray, icc: float = 0.6, seed_corr: float = 0.0, nested: bool = False) -> pd.DataFrame:
    """One simulated study of clean and robust accuracy (each with ICC `icc`, its seed variance half
    of its within-architecture variance): the architectures' true numbers correlate with Pearson
    r = R_ARCH; seed errors of one model correlate with `seed_corr`; binomial evaluation noise,
    independent between the two numbers or (`nested`) as on one test sample, where a robust-correct
    sample is clean-correct: correlation √(p_r(1 − p_c) / (p_c(1 − p_r))), about 0.31 here."""
    g = np.repeat(np.arange(len(n)), n)
    z = rng.normal(size=(2, len(n)))
    e = rng.normal(size=(2, len(g)))
    e[1] = seed_corr * e[0] + math.sqrt(1 - seed_corr**2) * e[1]
    ev = rng.normal(size=(2, len(g)))
    if nested:
        c = math.sqrt(MU * (1 - MU_CLEAN) / (MU_CLEAN * (1 - MU)))
        ev[1] = c * ev[0] + math.sqrt(1 - c * c) * ev[1]
    cols = {}
    for name, mu, arch, seed_err, eval_err in (
        ("robust_accuracy", MU, z[0], e[0], ev[0]),
        ("clean_accuracy", MU_CLEAN, R_ARCH * z[0] + math.sqrt(1 - R_ARCH**2) * z[1], e[1], ev[1]),
    ):
        s2e = mu * (1 - mu) / N_EVAL
        s2a, s2s = icc / (1 - icc) * 2 * s2e, s2e
        p = mu + math.sqrt(s2a) * arch[g] + math.sqrt(s2s) * seed_err
        y = p + eval_err * np.sqrt(np.clip(p * (1 - p), 0, None) / N_EVAL)
        cols |= {name: y, name + "_se": np.sqrt(np.clip(y * (1 - y), 0, None) / N_EVAL)}
    # what the analysis is told about the evaluation design: separate samples say so with a zero
    # covariance; one test sample gives only the SEs, from which the nested covariance is read
    if not nested:
        cols[EVAL_COV] = np.zeros(len(g))
    return pd.DataFrame({"trial": np.arange(len(g)), "arch_key": [f"a{i}" for i in g], **cols})


def corrected_coverage(reps: int, seed: int) -> list[dict]:
    """Coverage of the corrected Spearman ρ's 95% CI; the truth is the rank correlation of the
    architectures' true numbers, (6/π)·asin(r/2) for normal ones. Also how often the corrected value
    was flagged beyond ±1 or undefined."""
    true = 6 / math.pi * math.asin(R_ARCH / 2)
    rows = []
    cases = [(d, 0.0, False) for d in DESIGNS] + [("40 arch, 25% x 3", 0.5, False), ("40 arch, 25% x 3", 0.0, True)]
    cases = [cases[i] for i in CASES] if CASES else cases
    for design, seed_corr, nested in cases:
        rng = np.random.default_rng(seed)
        n = seeds_per_arch(*DESIGNS[design])
        hits, flagged, raw = [], [], []
        for r in range(reps):
            u = draw_pair(rng, n, seed_corr=seed_corr, nested=nested)
            row = findings_rows(u, pd.DataFrame(), claims=["robust_tracks_clean"], n_boot=N_BOOT, seed=r)[0]
            lo, hi = row["ci_corrected"]
            hits.append(lo <= true <= hi)
            flagged.append(row["corrected_flag"] is not None)
            raw.append(row["ci_low"] <= true <= row["ci_high"])
        label = f" (seed errors correlated {seed_corr:g})" if seed_corr else ""
        label += " (evaluation errors of one test sample)" if nested else ""
        rows.append(_rate("corrected ρ 95% CI coverage" + label, design, true, hits))
        if not label:
            rows.append(_rate("raw ρ 95% CI coverage of the true ρ", design, true, raw))
            rows.append(_rate("corrected ρ flagged (beyond ±1 or undefined)", design, true, flagged))
    return rows


def conditional_coverage(reps: int, seed: int, icc: float = 0.6) -> list[dict]:
    """The same coverage for the conditional claim (robust / clean accuracy against clean accuracy):
    its target's error shares clean accuracy's, which the correction assumes independent. Truth: the
    rank correlation of the architectures' true share and clean accuracy, from 10⁶ drawn architectures."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(2, 1_000_000))
    sd = [math.sqrt(icc / (1 - icc) * 2 * mu * (1 - mu) / N_EVAL) for mu in (MU, MU_CLEAN)]
    robust, clean = MU + sd[0] * z[0], MU_CLEAN + sd[1] * (R_ARCH * z[0] + math.sqrt(1 - R_ARCH**2) * z[1])
    true = float(pd.Series(robust / clean).rank().corr(pd.Series(clean).rank()))
    rows = []
    for design in [d for i, d in enumerate(DESIGNS) if not CASES or i in CASES]:
        rng = np.random.default_rng(seed)
        n = seeds_per_arch(*DESIGNS[design])
        hits = []
        for r in range(reps):
            row = findings_rows(
                draw_pair(rng, n), pd.DataFrame(), claims=["conditional_tracks_clean"], n_boot=N_BOOT, seed=r
            )[0]
            hits.append(row["ci_corrected"][0] <= true <= row["ci_corrected"][1])
        rows.append(_rate("conditional claim: corrected ρ 95% CI coverage", design, true, hits))
    return rows


def winner_drop(reps: int, seed: int, fresh: int = 3) -> list[dict]:
    """Mean over studies of (observed − fresh-seed mean) of the shrunken winner, against the mean
    predicted drop (observed − shrunken); the raw winner's bias (observed − true mean) beside it."""
    n_arch, share, k = DESIGNS["40 arch, 25% x 3"]
    rng = np.random.default_rng(seed)
    s2a, s2s = split_variance(0.6)
    n = seeds_per_arch(n_arch, share, k)
    gap, raw_bias, predicted, observed_drop = [], [], [], []
    for _r in range(reps):
        y, g, se, true_mean = draw_study(rng, n, s2a, s2s)
        c = variance_components(y, g, se, n_boot=0)
        w = shrunken(pd.DataFrame({"arch_key": g, "value": y}), "value", c)
        best = w.iloc[0]
        arch = int(best["arch_key"])
        p = true_mean[arch] + rng.normal(0, math.sqrt(s2s), fresh)
        retrained = float(np.mean(p + rng.normal(0, 1, fresh) * np.sqrt(p * (1 - p) / N_EVAL)))
        observed_drop.append(best["observed"] - retrained)
        predicted.append(best["observed"] - best["predicted"])
        gap.append(observed_drop[-1] - predicted[-1])
        raw = pd.Series(y).groupby(g).mean()
        raw_bias.append(float(raw.max() - true_mean[int(raw.idxmax())]))
    mc = float(np.std(gap, ddof=1) / math.sqrt(reps))
    return [
        {
            "check": "winner: mean retrain drop (shrunken winner)",
            "design": "40 arch, 25% x 3",
            "truth": float(np.mean(predicted)),
            "rate": float(np.mean(observed_drop)),
            "mc_se": mc,
            "reps": reps,
            "within_2_mc_se": bool(abs(np.mean(gap)) <= 2 * mc),
        },
        {
            "check": "winner: raw winner's bias (observed − true mean)",
            "design": "40 arch, 25% x 3",
            "truth": 0.0,
            "rate": float(np.mean(raw_bias)),
            "mc_se": float(np.std(raw_bias, ddof=1) / math.sqrt(reps)),
            "reps": reps,
        },
    ]


def _rate(check: str, design: str, true: float, hits) -> dict:
    hits = np.asarray(hits, float)
    rate = float(hits.mean())
    return {
        "check": check,
        "design": design,
        "truth": true,
        "rate": rate,
        "mc_se": math.sqrt(rate * (1 - rate) / len(hits)),
        "reps": len(hits),
    }


SCENARIOS = {
    "icc": icc_coverage,
    "claim": claim_rates,
    "corrected": corrected_coverage,
    "conditional": conditional_coverage,
    "winner": winner_drop,
}


def main(argv=None) -> pd.DataFrame:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--scenarios", default=",".join(SCENARIOS))
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--cases", default="", help="rows of corrected/conditional to run, e.g. 0,2 (to split runs)")
    args = ap.parse_args(argv)
    CASES[:] = [int(v) for v in args.cases.split(",") if v]
    rows = []
    for name in args.scenarios.split(","):
        start = time.perf_counter()
        rows += SCENARIOS[name](args.reps, args.seed)
        print(f"# {name}: {time.perf_counter() - start:.0f} s", file=sys.stderr)
    table = pd.DataFrame(rows)
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    if args.out:
        table.to_csv(args.out, index=False)
    return table


if __name__ == "__main__":
    main()
