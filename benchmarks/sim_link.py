"""A third generator, for the margin link only, written apart from sim_power.link_samples and from
analysis.marginlink: margins log-normal (not a power tail), per-model noise scales, heavy-tailed
(t, 2 df) or skewed noise, and a fixed attack budget above which samples are never broken.

    python benchmarks/sim_link.py [--reps 600] [--models 6] [--samples 100] [--df 2]

Prints, at the link's two margins (0.75, 1.25) and at 1, how often the claim was "supported" and
"contradicted" (one claim: Holm is the identity), with Monte Carlo SEs.
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

from robustarch.analysis.findings import findings_rows  # noqa: E402
from robustarch.analysis.powerlaw import power_law_table  # noqa: E402

BUDGET = 8 / 255  # the attack's largest ε: beyond it a sample is never broken


def link_study(rng, m: int, n: int, link: float, df: float | None, noise: str = "t") -> pd.DataFrame:
    """m models with n/2…3n/2 samples: log margin ~ N(μ_j, 0.6²), log ε = link·log margin + a_j + s_j·e,
    e ~ t(df) (or a centred log-normal, `noise` = "skew"); a_j puts 5–45% of samples past the budget."""
    rows = []
    for j in range(m):
        size = int(rng.integers(n // 2, 3 * n // 2 + 1))
        log_margin = rng.normal(rng.uniform(-0.5, 0.5), 0.6, size)
        scale = rng.uniform(0.2, 0.6)
        if noise == "skew":  # right-skewed, median 0
            e = np.exp(rng.normal(0, 0.8, size)) - 1.0
        else:
            e = rng.standard_t(df, size) if df else rng.standard_normal(size)
        core = link * log_margin + scale * e
        a = math.log(BUDGET) - np.quantile(link * log_margin, 1 - rng.uniform(0.05, 0.45))
        eps = np.exp(core + a)
        eps = np.where(eps <= BUDGET, eps, np.inf)
        rows.append(pd.DataFrame({"trial": j, "min_adversarial_eps": eps, "margin": np.exp(log_margin)}))
    s = pd.concat(rows, ignore_index=True)
    return s.assign(minimization_min_eps=s["min_adversarial_eps"])


def verdicts(rng, m: int, n: int, link: float, reps: int, df: float | None, noise: str = "t") -> dict:
    out = {"supported": 0, "contradicted": 0, "skipped": 0, "value": []}
    for rep in range(reps):
        s = link_study(rng, m, n, link, df, noise)
        power = power_law_table(s, range(m))
        r = findings_rows(pd.DataFrame({"trial": range(m)}), power, claims=["margin_explains_slope"], seed=rep)[0]
        if r["reason"]:
            out["skipped"] += 1
            continue
        out[r["verdict"]] = out.get(r["verdict"], 0) + 1
        out["value"].append(r["value"])
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=600)
    ap.add_argument("--models", type=int, default=6)
    ap.add_argument("--samples", type=int, default=100)
    ap.add_argument("--df", type=float, default=2.0, help="t degrees of freedom of the noise (0: normal)")
    ap.add_argument("--noise", default="t", choices=("t", "skew"))
    ap.add_argument("--links", default="0.75,1.25,1.0")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    for link in (float(v) for v in a.links.split(",")):
        rng = np.random.default_rng([a.seed, a.models, a.samples, int(100 * link)])
        t0 = time.process_time()
        r = verdicts(rng, a.models, a.samples, link, a.reps, a.df or None, a.noise)
        done = a.reps - r["skipped"]
        rate = {k: r[k] / done for k in ("supported", "contradicted")}
        se = {k: math.sqrt(v * (1 - v) / done) for k, v in rate.items()}
        print(
            f"{a.models}x{a.samples} link {link:g} noise {a.noise} df {a.df:g}: supported {100 * rate['supported']:.1f}% "
            f"± {100 * se['supported']:.1f}, contradicted {100 * rate['contradicted']:.1f}% ± {100 * se['contradicted']:.1f} "
            f"({done} studies, {r['skipped']} skipped; mean estimate {np.mean(r['value']):.3f}, "
            f"median {np.median(r['value']):.3f}) [{time.process_time() - t0:.0f} s CPU]",
            flush=True,
        )


if __name__ == "__main__":
    main()
